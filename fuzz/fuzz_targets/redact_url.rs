//! URL redaction: never panics, and never returns a query value or a password it was given
//! (unless that text also appears in the parts that are shown: scheme, host, port, path, keys).
#![no_main]
use forge_scaler::redact;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let shown = redact::redact_url(&text);
    if let Ok(url) = url::Url::parse(text.trim()) {
        // Keys are shown (encoded as the serializer writes them): a value equal to a key is not a leak.
        let keys: Vec<String> = url
            .query_pairs()
            .map(|(k, _)| url::form_urlencoded::byte_serialize(k.as_bytes()).collect::<String>())
            .collect();
        let visible = format!(
            "{}://{}:{}{}?{}={}",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.port().map(|p| p.to_string()).unwrap_or_default(),
            url.path(),
            keys.join("=***&"),
            redact::MASK
        );
        let mut secrets: Vec<String> = url.password().map(str::to_string).into_iter().collect();
        secrets.extend(url.query_pairs().map(|(_, v)| url::form_urlencoded::byte_serialize(v.as_bytes()).collect()));
        for secret in secrets.iter().filter(|s| s.len() >= 6 && !visible.contains(s.as_str())) {
            assert!(!shown.contains(secret.as_str()), "{secret:?} shown in {shown:?}");
        }
    }
});
