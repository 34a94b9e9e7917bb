//! URL redaction for every message and log line: userinfo, every query value and the
//! fragment are masked, and a URL that does not parse is never printed raw. Pure functions
//! shared by the forge adapters and (for bad configured URLs) the config checks.

use url::Url;

/// What replaces a masked part.
pub const MASK: &str = "***";

/// `url` with its userinfo dropped, every query value replaced by `***` (keys kept, so a
/// reader still sees `?status=***&page=***`) and the fragment dropped.
pub fn redact(url: &Url) -> String {
    if url.cannot_be_a_base() {
        // `user:password` parses as scheme `user` with path `password`: show the scheme only.
        return format!("{}:{MASK}", url.scheme());
    }
    let mut u = url.clone();
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.set_fragment(None);
    let keys: Vec<String> = u.query_pairs().map(|(k, _)| k.into_owned()).collect();
    if keys.is_empty() {
        u.set_query(None);
    } else {
        u.query_pairs_mut().clear().extend_pairs(keys.iter().map(|k| (k.as_str(), MASK)));
    }
    u.to_string()
}

/// As [`redact`], for text that may not even parse as a URL (a bad configured `url`): a
/// parseable URL is redacted; anything else keeps only its scheme and host-looking part,
/// with userinfo, path tail, query and fragment masked, so no secret in it is printed.
pub fn redact_url(text: &str) -> String {
    match Url::parse(text.trim()) {
        Ok(url) if !url.cannot_be_a_base() => return redact(&url),
        Ok(_) => return format!("(not a URL, {} characters)", text.trim().chars().count()),
        Err(_) => {}
    }
    let text = text.trim();
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) if is_scheme(scheme) => (Some(scheme), rest),
        _ => (None, text),
    };
    // The authority ends at the first `/`, `?` or `#`; userinfo ends at its last `@`.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = match authority.rfind('@') {
        Some(at) => format!("{MASK}@{}", &authority[at + 1..]),
        None => authority.to_string(),
    };
    let host: String = host.chars().filter(|c| !c.is_control() && !c.is_whitespace()).take(100).collect();
    let mut out = match scheme {
        Some(s) => format!("{s}://{host}"),
        None => host,
    };
    if !tail.is_empty() {
        out.push_str("/...");
    }
    if scheme.is_none() && authority.contains(':') && !authority.contains('@') {
        // No scheme: `user:password` or `host:port` cannot be told apart; mask it.
        return format!("(not a URL, {} characters)", text.chars().count());
    }
    out
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `text` with each of `secrets` (at least 4 characters long, so a short one does not mask
/// half the message) replaced by `***`: for excerpts of answers a forge may have echoed a
/// credential into.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| s.chars().count() >= 4) {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_every_query_value_and_the_fragment_are_masked() {
        let u = Url::parse("https://user:pw@ci.example.com/api?access_token=abc&api_key=k1&page=2#frag").unwrap();
        let r = redact(&u);
        for secret in ["user", "pw", "abc", "k1", "=2", "frag"] {
            assert!(!r.contains(secret), "{secret} in {r}");
        }
        assert_eq!(r, "https://ci.example.com/api?access_token=***&api_key=***&page=***");
    }

    #[test]
    fn a_url_without_query_is_unchanged() {
        let u = Url::parse("http://127.0.0.1:8080/gitea/api/v1/").unwrap();
        assert_eq!(redact(&u), "http://127.0.0.1:8080/gitea/api/v1/");
    }

    #[test]
    fn unparseable_urls_never_show_userinfo_query_or_path() {
        for (text, secret) in [
            ("ftp//user:hunter22@host?token=abc", "hunter22"),
            ("https://user:hunter22@exa mple.com/?secret=abc", "hunter22"),
            ("https://ci.example.com:99999/x?secret=abc", "abc"),
            ("user:hunter22", "hunter22"),
            ("ci.example.com/?k=hunter22", "hunter22"),
        ] {
            let r = redact_url(text);
            assert!(!r.contains(secret) && !r.contains("abc"), "{text} -> {r}");
        }
        assert_eq!(redact_url("https://ci.example.com:99999/x?secret=abc"), "https://ci.example.com:99999/...");
        assert_eq!(
            redact_url("https://u:p@ci.example.com/a?b=c"),
            "https://ci.example.com/a?b=***",
            "parseable: as redact"
        );
    }

    #[test]
    fn scrub_masks_long_enough_secrets_only() {
        let secrets = vec!["s3cr3t-token".to_string(), "ab".to_string()];
        assert_eq!(scrub("bad token s3cr3t-token for ab", &secrets), "bad token *** for ab");
    }
}
