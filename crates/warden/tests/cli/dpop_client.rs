//! A DPoP client built on oauth4webapi against a running Warden with server nonces on:
//! a bound client-credentials token for a server that requires DPoP, a tool called
//! through the gateway, and what a holder of the token without its key could try
//! refused (the same proof replayed, no proof, the bearer scheme).

use crate::support::*;

#[test]
fn oauth4webapi_gets_a_bound_token_and_calls_a_tool_that_a_thief_cannot() {
    let Some(interop) = interop_dir("oauth4webapi DPoP client") else {
        return;
    };
    let (f, _upstream) = demo_fixture(&["--require-dpop"]);
    let _warden = f.serve(&[("WARDEN_DPOP__NONCE", "true")]);
    let out = node(&interop)
        .arg("dpop_client.mjs")
        .env("WARDEN_ISSUER", &f.base)
        .env("WARDEN_CLIENT_ID", &f.client_id)
        .env("WARDEN_CLIENT_SECRET", &f.client_secret)
        .env("WARDEN_RESOURCE", format!("{}/mcp/demo", f.base))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    // RFC 6749 §7.1: the token type is case-insensitive (oauth4webapi lowercases it).
    assert_eq!(
        result["token_type"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("dpop"),
        "{result}"
    );
    // Nonces are on: the first token request was answered `use_dpop_nonce`.
    assert!(result["nonce_retries"].as_u64() >= Some(1), "{result}");
    assert_eq!(result["initialize"], 200, "{result}");
    assert_eq!(result["session"], true, "{result}");
    assert_eq!(result["call"], 200, "{result}");
    assert_eq!(result["call_has_result"], true, "{result}");
    for refused in ["replay", "no_proof", "as_bearer"] {
        assert_eq!(result[refused], 401, "{refused}: {result}");
    }
    let challenge = result["replay_challenge"].as_str().unwrap();
    assert!(
        challenge.starts_with("DPoP ") && challenge.contains("invalid_dpop_proof"),
        "{challenge}"
    );
}
