//! End-to-end: careless logging through the real subscriber stack leaks nothing.

use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE};
use http::{HeaderMap, HeaderValue};
use warden_telemetry::{capture, LogFormat, REDACTED};

const JWT: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJhbGljZSIsImF1ZCI6Imh0dHBzOi8vbWNwLmV4YW1wbGUvZmlsZXMifQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU";

/// A request struct that (wrongly) derives `Debug` over secrets.
#[derive(Debug)]
#[allow(dead_code)]
struct TokenRequest {
    grant_type: &'static str,
    username: &'static str,
    password: String,
    refresh_token: Option<String>,
    client_id: &'static str,
}

const SECRETS: &[&str] = &[
    "AuthZhdr-Secret-1",
    "sid-cookie-value-2",
    "hunter2-password-3",
    "rt-refresh-value-4",
    "SplxlOBeZQQYbYS6WxSbIA",
    "dBjftJeZ4CVP-verifier",
    "eyJzdWIiOiJhbGljZSIs",
    "c2lnbmF0dXJlLWJ5dGVz",
    "wdn_at_Opaque9token",
    "Opaque9token",
    "span-code-5",
];

const KEPT: &[&str] = &[
    "alice-the-user",
    "client-app-7",
    "application/x-www-form-urlencoded",
    "grant_type=authorization_code",
    "code_challenge_method=S256",
    "state=af0ifjsldkj",
    "token request",
];

fn log_carelessly() {
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_static("Bearer AuthZhdr-Secret-1"),
    );
    headers.insert(
        COOKIE,
        HeaderValue::from_static("__Host-sid=sid-cookie-value-2"),
    );
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let request = TokenRequest {
        grant_type: "password",
        username: "alice-the-user",
        password: "hunter2-password-3".to_owned(),
        refresh_token: Some("rt-refresh-value-4".to_owned()),
        client_id: "client-app-7",
    };
    let body = "grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA\
                &code_verifier=dBjftJeZ4CVP-verifier&code_challenge_method=S256&state=af0ifjsldkj";

    let span = tracing::info_span!("token", code = "span-code-5");
    let _entered = span.enter();
    tracing::info!(?headers, "token request");
    tracing::info!(?request, "token request");
    tracing::warn!("token request body {body} with bearer {JWT}");
    tracing::error!(token = "wdn_at_Opaque9token", body, "token request");
    tracing::debug!(password = %request.password, "token request");
}

fn check(format: LogFormat) -> String {
    let (subscriber, logs) = capture(format);
    tracing::subscriber::with_default(subscriber, log_carelessly);
    let out = logs.contents();
    assert_eq!(out.lines().count(), 5, "{out}");
    for secret in SECRETS {
        assert!(
            !out.contains(secret),
            "{secret} leaked in {format:?} output:\n{out}"
        );
    }
    for kept in KEPT {
        assert!(
            out.contains(kept),
            "{kept} lost in {format:?} output:\n{out}"
        );
    }
    assert!(out.contains(REDACTED));
    out
}

#[test]
fn json_output_leaks_nothing_and_stays_json() {
    let out = check(LogFormat::Json);
    for line in out.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        // flatten_event puts fields at the top level.
        assert!(event["message"]
            .as_str()
            .unwrap()
            .starts_with("token request"));
        assert!(event.get("level").is_some());
    }
    assert!(out.contains(r#""password":"[REDACTED]""#), "{out}");
}

#[test]
fn pretty_output_leaks_nothing() {
    let out = check(LogFormat::Pretty);
    assert!(out.contains("password=[REDACTED]"), "{out}");
    assert!(!out.contains('\u{1b}'), "no ANSI escapes expected");
}

#[test]
fn captures_are_independent() {
    let (first, first_logs) = capture(LogFormat::Json);
    let (second, second_logs) = capture(LogFormat::Json);
    tracing::subscriber::with_default(first, || tracing::info!("one"));
    tracing::subscriber::with_default(second, || tracing::info!("two"));
    assert!(first_logs.contents().contains("one"));
    assert!(!first_logs.contents().contains("two"));
    assert!(second_logs.contents().contains("two"));
}
