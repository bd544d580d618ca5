use std::borrow::Cow;

use super::*;

const JWT: &str = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLTQyIiwiYXVkIjoiaHR0cHM6Ly9tY3AifQ.MEUCIQDx3sigpart";
const JWT_NO_SIG: &str = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhdHRhY2tlciJ9.";
const JWE: &str = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.OKOawDo13gRp2oj.48V1_ALb6US04U3b.5eym8TW_c8SuK0lt.XFBoMYUZodetZdvTiFvSkQ";

/// Each line holds secrets; every listed fragment must be gone after redaction.
fn secret_cases() -> Vec<(String, Vec<&'static str>)> {
    let mut cases: Vec<(String, Vec<&'static str>)> = vec![
        // JWTs anywhere.
        (format!("issued {JWT} to client"), vec!["eyJzdWIiOiJ1c2VyLTQyIiwi", "MEUCIQDx3sigpart"]),
        (format!("alg none token {JWT_NO_SIG} rejected"), vec!["eyJzdWIiOiJhdHRhY2tlciJ9"]),
        (format!("jwe={JWE}"), vec!["OKOawDo13gRp2oj", "XFBoMYUZodetZdvTiFvSkQ"]),
        (format!("\"authorization\":\"Bearer {JWT}\""), vec!["MEUCIQDx3sigpart"]),
        (format!("x_{JWT}"), vec!["MEUCIQDx3sigpart"]),
        // Bearer / Basic, any case.
        ("Authorization: Bearer abc.def-ghi~jk+l/m=".into(), vec!["abc.def-ghi~jk+l/m"]),
        ("authorization: basic dXNlcjpwYXNzd29yZA==".into(), vec!["dXNlcjpwYXNzd29yZA"]),
        ("sent BEARER Zx9Qm2 upstream".into(), vec!["Zx9Qm2"]),
        ("hdr=\"Bearer opaque-tok-77\"".into(), vec!["opaque-tok-77"]),
        // A scheme word where the credential would be: the next credential still goes.
        ("Bearer  Basic Qz9Mk7Lp2Xv== ".into(), vec!["Qz9Mk7Lp2Xv"]),
        ("Bearer BEARER Bearer Zq8Tok".into(), vec!["Zq8Tok"]),
        ("authorization=Bearer lf-bearer-1 next=1".into(), vec!["lf-bearer-1"]),
        // A key whose bare value is a scheme word, and more scheme words after it (found
        // by the redact fuzz target).
        (")code=bearer\t Basic Qz9Mk7Lp2Xv== ".into(), vec!["Qz9Mk7Lp2Xv"]),
        ("token=Basic bearer BASIC Zq5Tok next=1".into(), vec!["Zq5Tok"]),
        // ... and a key right after the scheme word, with its own scheme and credential.
        (")code=bearer authorization=Bearer Qz9Mk7Lp2Xv \u{12}\"i".into(), vec!["Qz9Mk7Lp2Xv"]),
        ("code=bearer password: \"Zq4Pw\" next=1".into(), vec!["Zq4Pw"]),
        // A bare value followed by what looks like a `Debug` wrapper's body.
        ("client_secret=Qz9Mk7Lp2Xv {le: [aEyj]}".into(), vec!["Qz9Mk7Lp2Xv"]),
        ("token=Qz8Tok (\"x\")".into(), vec!["Qz8Tok"]),
        ("client_secret=Qz7Sec {le:[REDACTED]: x".into(), vec!["Qz7Sec"]),
        // A key glued to the bracketed value before it.
        ("token: [1, 2]password=Qz6Pw".into(), vec!["Qz6Pw"]),
        // Header map Debug.
        (
            r#"headers={"authorization": "Bearer abc", "cookie": "sid=Ck9x; theme=dark", "content-type": "text/plain"}"#.into(),
            vec!["abc\"", "Ck9x", "theme=dark"],
        ),
        (
            r#"{"set-cookie": "__Host-sid=Sx81; Path=/; Secure", "proxy-authorization": "Basic Zm9vOmJhcg=="}"#.into(),
            vec!["Sx81", "Zm9vOmJhcg"],
        ),
        (r#"{"x-api-key": "ak-991", "X-Auth-Token": "xat-5"}"#.into(), vec!["ak-991", "xat-5"]),
        // Form and query strings.
        (
            "grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&code_verifier=dBjftJeZ4CVPmB92&redirect_uri=https%3A%2F%2Fapp%2Fcb".into(),
            vec!["SplxlOBeZQQYbYS6WxSbIA", "dBjftJeZ4CVPmB92"],
        ),
        ("client_id=app&client_secret=cs-5ecret&scope=read".into(), vec!["cs-5ecret"]),
        ("grant_type=refresh_token&refresh_token=rt-0a1b2c".into(), vec!["rt-0a1b2c"]),
        (
            "subject_token=st-11&actor_token=at-22&assertion=as-33&client_assertion=ca-44".into(),
            vec!["st-11", "at-22", "as-33", "ca-44"],
        ),
        ("GET /cb?code=qc-77&state=s1 HTTP/1.1".into(), vec!["qc-77"]),
        ("redirect to https://app/cb#access_token=frag-tok&token_type=Bearer".into(), vec!["frag-tok"]),
        ("uri=/authorize?id_token_hint=hint-9&prompt=none".into(), vec!["hint-9"]),
        // logfmt, as written by the human formatter.
        (
            "access_token=at_v1 id_token=it_v2 token=t_v3 password=pw_v4 passwd=pw_v5 secret=s_v6".into(),
            vec!["at_v1", "it_v2", "t_v3", "pw_v4", "pw_v5", "s_v6"],
        ),
        ("csrf=cf_1 csrf_token=cf_2 api_key=ak_3 master_key=mk_4".into(), vec!["cf_1", "cf_2", "ak_3", "mk_4"]),
        ("password=\"pw with spaces\" user=bob".into(), vec!["pw with spaces"]),
        ("refresh_token=Some(\"opt-rt\") next=1".into(), vec!["opt-rt"]),
        ("PASSWORD=UpperPw Client-Secret=UpperCs".into(), vec!["UpperPw", "UpperCs"]),
        ("span{code=spanc0de}: handling".into(), vec!["spanc0de"]),
        // JSON, including escaped quotes and JSON nested in a JSON string.
        (r#"{"password":"hunter2","user":"bob"}"#.into(), vec!["hunter2"]),
        (r#"{"client_secret":"Xq1\"Yq2\"Zq3","n":1}"#.into(), vec!["Xq1", "Yq2", "Zq3"]),
        (r#"{"code" : "spaced-code"}"#.into(), vec!["spaced-code"]),
        (r#"{"message":"body {\"code\":\"nested-c1\",\"state\":\"s\"}"}"#.into(), vec!["nested-c1"]),
        (r#"{"req":"Req { password: \"pw-in-json\", user: \"u\" }"}"#.into(), vec!["pw-in-json"]),
        (r#"{"b":"{\"password\":\"Ee1\\\"Ee2\"}"}"#.into(), vec!["Ee1", "Ee2"]),
        (r#"{"password":"\"dbg-quoted\""}"#.into(), vec!["dbg-quoted"]),
        (r#"{"password":"trailing-bs\\"}"#.into(), vec!["trailing-bs"]),
        // Debug of structs.
        (
            r#"Req { password: "hunter2", refresh_token: Some("rt-123"), user: "bob" }"#.into(),
            vec!["hunter2", "rt-123"],
        ),
        (r#"Creds { client_secret: SecretString("wrapped-cs") }"#.into(), vec!["wrapped-cs"]),
        (r#"Req { code: Some(AuthCode { inner: "deep-code" }) }"#.into(), vec!["deep-code"]),
        (r#"Login { password: [104, 117, 110, 116] }"#.into(), vec!["104, 117"]),
        (r#"Body { token: b"byte-tok" }"#.into(), vec!["byte-tok"]),
        (r#"Object {"code": String("json-value-code")}"#.into(), vec!["json-value-code"]),
        (r"Creds { password: 'single-q' }".into(), vec!["single-q"]),
        // Unterminated quote: the rest of the line goes.
        (r#"password="unterminated secret"#.into(), vec!["unterminated secret"]),
    ];
    for prefix in SECRET_PREFIXES {
        cases.push((
            format!("minted {prefix}AbC123_-xyz for client"),
            vec!["AbC123_-xyz"],
        ));
        cases.push((format!("glued:{prefix}Qq9"), vec!["Qq9"]));
    }
    cases
}

/// Lines without secrets; each must come back unchanged.
const NEAR_MISSES: &[&str] = &[
    "code_challenge=abc",
    "code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
    "state=xyz",
    "error=invalid_grant",
    "client_id=abc",
    "error_code=E42 status_code=200 http.status_code=401",
    r#"{"error":"invalid_token","error_description":"token: expired"}"#,
    r#"{"access_token":"[REDACTED]","token_type":"Bearer","expires_in":900}"#,
    "token_type=Bearer expires_in=900",
    "grant_type=refresh_token&scope=read",
    "requested_token_type=urn:ietf:params:oauth:token-type:access_token",
    "token_endpoint_auth_method=client_secret_basic",
    "2026-01-01T00:00:00Z INFO warden_server::oauth::token: issued token for client app",
    r#"WWW-Authenticate: Bearer error="invalid_token", resource_metadata="https://as/.well-known/x""#,
    "Bearer token missing; basic auth is not supported",
    "Basic Auth disabled for this client",
    "Req { code: 400, token: None, password: [REDACTED], secret: Sensitive }",
    r#"{"authorization": Sensitive}"#,
    "request 7f3c2a4e-9b1d-4c8e-a5f6-0d2e8b7c1a93 completed in 12ms",
    "the quick brown fox jumps over the lazy dog",
    "response_type=code&code_challenge_method=S256&state=s",
    "code= state=kept",
    "",
];

#[test]
fn patterns_compile() {
    assert!(PATTERNS.is_some());
}

#[test]
fn every_secret_shape_vanishes() {
    for (line, secrets) in secret_cases() {
        let out = redact(&line);
        for secret in secrets {
            assert!(
                !out.contains(secret),
                "{secret:?} survived in {out:?} (from {line:?})"
            );
        }
        assert!(out.contains(REDACTED), "nothing redacted in {line:?}");
    }
}

#[test]
fn near_misses_survive_without_allocating() {
    for &line in NEAR_MISSES {
        let out = redact(line);
        assert_eq!(out, line);
        assert!(matches!(out, Cow::Borrowed(_)), "allocated for {line:?}");
    }
}

#[test]
fn redaction_keeps_structure() {
    assert_eq!(
        redact("grant_type=authorization_code&code=abc&state=s1"),
        "grant_type=authorization_code&code=[REDACTED]&state=s1"
    );
    assert_eq!(
        redact(r#"{"password":"a\"b","user":"bob"}"#),
        r#"{"password":"[REDACTED]","user":"bob"}"#
    );
    assert_eq!(
        redact(r#"Req { refresh_token: Some("rt"), user: "u" }"#),
        r#"Req { refresh_token: Some("[REDACTED]"), user: "u" }"#
    );
    assert_eq!(
        redact(r#"{"h":"{\"cookie\": \"sid=1\"}"}"#),
        r#"{"h":"{\"cookie\": \"[REDACTED]\"}"}"#
    );
    assert_eq!(
        redact("Authorization: Bearer abc"),
        "Authorization: Bearer [REDACTED]"
    );
    assert_eq!(
        redact("Login { password: [104, 117], user: \"u\" }"),
        "Login { password: [REDACTED], user: \"u\" }"
    );
    assert_eq!(
        redact(r#"C { secret: secrecy::SecretBox<str>("x") }"#),
        r#"C { secret: secrecy::SecretBox<str>("x") }"#.replace("\"x\"", "\"[REDACTED]\"")
    );
    assert_eq!(
        redact("minted wdn_rt_AAAA-bbb_9 ok"),
        "minted [REDACTED] ok"
    );
}

#[test]
fn json_lines_stay_valid_json() {
    for (line, _) in secret_cases() {
        if serde_json::from_str::<serde_json::Value>(&line).is_ok() {
            let out = redact(&line);
            assert!(
                serde_json::from_str::<serde_json::Value>(&out).is_ok(),
                "broke JSON: {out}"
            );
        }
    }
}

#[test]
fn redaction_is_idempotent() {
    for (line, _) in secret_cases() {
        let once = redact(&line).into_owned();
        assert_eq!(redact(&once), once);
    }
}

#[test]
fn prefilter_covers_every_key() {
    let keys = [
        "password",
        "passwd",
        "passphrase",
        "client_secret",
        "secret",
        "code",
        "code_verifier",
        "device_code",
        "refresh_token",
        "access_token",
        "id_token",
        "token",
        "subject_token",
        "actor_token",
        "assertion",
        "client_assertion",
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api_key",
        "apikey",
        "master_key",
        "private_key",
        "csrf",
        "csrf_token",
        "credentials",
        "id_token_hint",
    ];
    let Some(patterns) = PATTERNS.as_ref() else {
        panic!("patterns did not compile");
    };
    for key in keys {
        for variant in [key.to_owned(), key.replace('_', "-"), key.to_uppercase()] {
            let line = format!("{variant}=v4lue");
            assert!(
                patterns.prefilter.is_match(&line),
                "prefilter misses {variant}"
            );
            assert!(!redact(&line).contains("v4lue"), "{variant} not redacted");
        }
    }
    for prefix in SECRET_PREFIXES {
        assert!(patterns.prefilter.is_match(prefix));
    }
}

#[test]
fn state_and_challenge_keys_are_not_secret() {
    for key in [
        "state",
        "code_challenge",
        "code_challenge_method",
        "error_code",
        "nonce",
    ] {
        let line = format!("{key}=keepme");
        assert_eq!(redact(&line), line);
    }
}

#[test]
fn long_line_without_secrets_is_borrowed() {
    let line = "GET /mcp/files 200 ".repeat(500);
    assert!(matches!(redact(&line), Cow::Borrowed(_)));
}
