//! The Lambda Function URL shell: the same function answers EventBridge's schedule (the poll
//! loop) and HTTP requests from its Function URL (`POST /webhooks/<forge-name>`). This module
//! tells them apart, turns a Function URL request into [`super::judge`]'s arguments, runs one
//! tick of the pools a webhook names, and builds the HTTP response.
//!
//! The Function URL's AuthType is NONE: the forge's signature is the authentication. A
//! request failing it gets 401 with no forge or Auto Scaling call (on a cold start the
//! configuration, which holds the secret, is first read from SSM as for any invocation).

use super::{forge_name_in_path, judge, Headers, Verdict, MAX_BODY_BYTES};
use crate::runloop::Scaler;
use aws_lambda_events::event::lambda_function_urls::{LambdaFunctionUrlRequest, LambdaFunctionUrlResponse};
use base64::Engine;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// Whether an invocation payload is a Function URL HTTP request (payload format 2.0 carries
/// `requestContext.http`; EventBridge events do not).
pub fn is_function_url_request(payload: &serde_json::Value) -> bool {
    payload.pointer("/requestContext/http").is_some_and(|h| h.is_object())
}

/// A response with a status and a one-line JSON body.
pub fn response(status: u16, body: String) -> LambdaFunctionUrlResponse {
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    let mut answer = LambdaFunctionUrlResponse::default();
    answer.status_code = i64::from(status);
    answer.headers = headers;
    answer.body = Some(body);
    answer
}

fn plain(status: u16, outcome: &str, detail: &str) -> LambdaFunctionUrlResponse {
    let (status, body) = refusal(status, outcome, detail);
    response(status, body)
}

/// A status and its one-line JSON body.
pub type Refusal = (u16, String);

fn refusal(status: u16, outcome: &str, detail: &str) -> Refusal {
    (status, serde_json::json!({ "outcome": outcome, "detail": detail }).to_string())
}

/// A request already checked for method, path and size: the forge name, headers and body.
#[derive(Debug)]
pub struct Checked {
    pub forge: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// The pure half: method, path, size and body encoding; an error is the answer to give.
pub fn check_request(request: &LambdaFunctionUrlRequest) -> Result<Checked, Refusal> {
    let method = request.request_context.http.method.as_deref().unwrap_or("");
    if !method.eq_ignore_ascii_case("POST") {
        return Err(refusal(405, "method not allowed", "webhooks are POST /webhooks/<forge-name>"));
    }
    let path = request.raw_path.as_deref().or(request.request_context.http.path.as_deref()).unwrap_or("");
    let Some(forge) = forge_name_in_path(path) else {
        return Err(refusal(404, "not found", "webhooks are POST /webhooks/<forge-name>"));
    };
    let raw = request.body.as_deref().unwrap_or("");
    // Base64 is 4/3 of the bytes: anything past this cannot decode to 1 MiB or less.
    if raw.len() > MAX_BODY_BYTES / 3 * 4 + 4 {
        return Err((413, Verdict::TooLarge.body()));
    }
    let body = if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|_| refusal(400, "malformed", "the body is not valid base64"))?
    } else {
        raw.as_bytes().to_vec()
    };
    if body.len() > MAX_BODY_BYTES {
        return Err((413, Verdict::TooLarge.body()));
    }
    let headers =
        Headers::from_pairs(request.headers.iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v))));
    Ok(Checked { forge: forge.to_string(), headers, body })
}

/// Answers one Function URL invocation: judge against the scaler's configuration (loaded or
/// refreshed as for a scheduled invocation), and on a job event tick the named pools once.
pub async fn handle(scaler: &mut Scaler, payload: serde_json::Value, now: DateTime<Utc>) -> LambdaFunctionUrlResponse {
    let request: LambdaFunctionUrlRequest = match serde_json::from_value(payload) {
        Ok(r) => r,
        Err(e) => return plain(400, "malformed", &format!("not a Function URL request: {e}")),
    };
    let checked = match check_request(&request) {
        Ok(c) => c,
        Err((status, body)) => return response(status, body),
    };
    if let Err(e) = scaler.refresh(now).await {
        tracing::error!(target: "forge_scaler::webhook", error = %e, "no valid configuration to judge a webhook with");
        return plain(503, "unavailable", "no valid configuration");
    }
    let Some(config) = scaler.config() else {
        return plain(503, "unavailable", "no valid configuration");
    };
    let verdict = judge(config, &checked.forge, &checked.headers, &checked.body, now);
    super::server::log_verdict(&checked.forge, &verdict);
    if let Verdict::Tick(pools) = &verdict {
        let only: BTreeSet<String> = pools.iter().cloned().collect();
        match scaler.tick_pools(&only).await {
            Ok(summary) => tracing::info!(
                target: "forge_scaler::webhook",
                forge = %checked.forge,
                raises = summary.pools.iter().map(|p| p.raises).sum::<u32>(),
                "webhook tick done"
            ),
            // The webhook was right; the next scheduled tick retries what failed.
            Err(e) => tracing::error!(target: "forge_scaler::webhook", error = %e, "webhook tick failed"),
        }
    }
    response(verdict.status(), verdict.body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, body: &str, base64: bool) -> LambdaFunctionUrlRequest {
        serde_json::from_value(serde_json::json!({
            "version": "2.0",
            "rawPath": path,
            "headers": { "X-GitHub-Event": "workflow_job" },
            "requestContext": { "timeEpoch": 0, "http": { "method": method, "path": path } },
            "body": body,
            "isBase64Encoded": base64
        }))
        .unwrap()
    }

    #[test]
    fn a_scheduled_event_is_not_a_function_url_request_and_a_url_request_is() {
        let scheduled: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/scheduled-event.json")).unwrap();
        assert!(!is_function_url_request(&scheduled));
        assert!(!is_function_url_request(&serde_json::json!({})));
        assert!(is_function_url_request(&serde_json::json!({"requestContext": {"http": {"method": "POST"}}})));
    }

    #[test]
    fn a_post_to_a_webhooks_path_yields_the_forge_headers_and_decoded_body() {
        let checked = check_request(&request("POST", "/webhooks/gh", "e30=", true)).unwrap();
        assert_eq!(checked.forge, "gh");
        assert_eq!(checked.body, b"{}");
        assert_eq!(checked.headers.get("x-github-event"), Some("workflow_job"));
        assert_eq!(check_request(&request("POST", "/webhooks/gh", "{}", false)).unwrap().body, b"{}");
    }

    #[test]
    fn wrong_method_wrong_path_bad_base64_and_oversize_bodies_are_refused() {
        assert_eq!(check_request(&request("GET", "/webhooks/gh", "", false)).unwrap_err().0, 405);
        assert_eq!(check_request(&request("POST", "/hooks/gh", "", false)).unwrap_err().0, 404);
        assert_eq!(check_request(&request("POST", "/webhooks/gh", "%%%", true)).unwrap_err().0, 400);
        let big = " ".repeat(MAX_BODY_BYTES + 1);
        assert_eq!(check_request(&request("POST", "/webhooks/gh", &big, false)).unwrap_err().0, 413);
        let big64 = base64::engine::general_purpose::STANDARD.encode(vec![b' '; MAX_BODY_BYTES + 1]);
        assert_eq!(check_request(&request("POST", "/webhooks/gh", &big64, true)).unwrap_err().0, 413);
        let at_cap = " ".repeat(MAX_BODY_BYTES);
        assert!(check_request(&request("POST", "/webhooks/gh", &at_cap, false)).is_ok());
    }
}
