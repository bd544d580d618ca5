use std::path::Path;

use super::*;

fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Config::load(text, env, Path::new("/data"))
}

const MIN: &str = "version = 1\npublic_url = \"http://127.0.0.1:8080/\"\n";

#[test]
fn template_loads_with_defaults() {
    let c = load(&Config::template("https://auth.example.com"), &[]).unwrap();
    assert_eq!(c.issuer, "https://auth.example.com");
    assert_eq!(c.listen.to_string(), "0.0.0.0:443");
    assert_eq!(c.database.url.expose(), "sqlite:///data/warden.db");
    assert_eq!(c.tokens.access_token_ttl, 900);
    assert_eq!(c.gateway.leeway, 30);
    assert_eq!(c.tokens.signing_alg, SigningAlg::Es256);
}

#[test]
fn minimal_file_and_trailing_slash() {
    let c = load(MIN, &[]).unwrap();
    assert_eq!(c.public_url, "http://127.0.0.1:8080");
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let text = format!("{MIN}\n[tokens]\naccess_token_ttl = \"5m\"\nacess_ttl = \"5m\"\n");
    let e = load(&text, &[]).unwrap_err();
    assert_eq!(e.key, "tokens.acess_ttl");
    assert_eq!(e.origin.as_deref(), Some("warden.toml line 6"));
    assert!(e.message.contains("unknown field"), "{e}");
}

#[test]
fn unknown_top_level_key() {
    let e = load(&format!("{MIN}colour = \"blue\"\n"), &[]).unwrap_err();
    assert_eq!(e.key, "colour");
}

#[test]
fn missing_version_and_wrong_version() {
    let e = load("public_url = \"http://127.0.0.1:1\"\n", &[]).unwrap_err();
    assert!(e.message.contains("version"), "{e}");
    let e = load("version = 9\npublic_url = \"http://127.0.0.1:1\"\n", &[]).unwrap_err();
    assert_eq!(e.key, "version");
}

#[test]
fn syntax_error_gives_line() {
    let e = load("version = 1\npublic_url = \n", &[]).unwrap_err();
    assert!(e.origin.unwrap().contains("line"));
}

#[test]
fn env_overrides_apply_and_are_named_in_errors() {
    let c = load(
        MIN,
        &[
            ("WARDEN_TOKENS__ACCESS_TOKEN_TTL", "5m"),
            ("WARDEN_LISTEN", "127.0.0.1:9"),
        ],
    )
    .unwrap();
    assert_eq!(c.tokens.access_token_ttl, 300);
    assert_eq!(c.listen.to_string(), "127.0.0.1:9");
    let e = load(MIN, &[("WARDEN_GATEWAY__LEEWAY", "301")]).unwrap_err();
    assert_eq!(e.key, "gateway.leeway");
    assert_eq!(
        e.origin.as_deref(),
        Some("environment WARDEN_GATEWAY__LEEWAY")
    );
    let e = load(MIN, &[("WARDEN_NOPE", "1")]).unwrap_err();
    assert_eq!(e.key, "nope");
    // Reserved variables are not config.
    assert!(load(
        MIN,
        &[("WARDEN_MASTER_KEY", "x"), ("WARDEN_DATA_DIR", "/x")]
    )
    .is_ok());
}

#[test]
fn database_url_forms() {
    let c = load(MIN, &[("WARDEN_DATABASE_URL", "postgres://u:pw@db/warden")]).unwrap();
    assert_eq!(c.database.url.expose(), "postgres://u:pw@db/warden");
    assert!(
        !format!("{c:?}").contains("pw@"),
        "Debug must not show the database password"
    );
    let e = load(MIN, &[("WARDEN_DATABASE_URL", "mysql://u:hunter2@db/x")]).unwrap_err();
    assert_eq!(e.key, "database.url");
    assert!(!e.to_string().contains("hunter2"));
}

#[test]
fn wrong_type_does_not_echo_the_value() {
    let text = format!("{MIN}[database]\nurl = 42\n");
    assert!(load(&text, &[]).is_err());
    let text = format!("{MIN}[login]\nmax_failures = \"s3cr3t-value\"\n");
    let e = load(&text, &[]).unwrap_err();
    assert_eq!(e.key, "login.max_failures");
    assert!(!e.to_string().contains("s3cr3t-value"), "{e}");
}

#[test]
fn local_login_is_on_unless_turned_off() {
    assert!(load(MIN, &[]).unwrap().login.local);
    let text = format!("{MIN}[login]\nlocal = false\n");
    assert!(!load(&text, &[]).unwrap().login.local);
    let c = load(MIN, &[("WARDEN_LOGIN__LOCAL", "false")]).unwrap();
    assert!(!c.login.local);
    let e = load(MIN, &[("WARDEN_LOGIN__LOCAL", "maybe")]).unwrap_err();
    assert_eq!(e.key, "login.local");
}

#[test]
fn public_url_rules() {
    for bad in [
        "ftp://x",
        "http://example.com",
        "https://u:p@x.example",
        "https://x.example/?a=1",
        "nope",
    ] {
        let text = format!("version = 1\npublic_url = \"{bad}\"\n");
        assert_eq!(load(&text, &[]).unwrap_err().key, "public_url", "{bad}");
    }
    let c = load(
        "version = 1\npublic_url = \"https://x.example/auth/\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(c.issuer, "https://x.example/auth");
}

#[test]
fn ranges_and_relations() {
    let e = load(
        &format!("{MIN}[tokens]\nrefresh_token_ttl = \"100d\"\nsession_ttl = \"10d\"\n"),
        &[],
    )
    .unwrap_err();
    assert_eq!(e.key, "tokens.refresh_token_ttl");
    let e = load(&format!("{MIN}[tokens]\nsigning_alg = \"none\"\n"), &[]).unwrap_err();
    assert_eq!(e.key, "tokens.signing_alg");
    let e = load(&format!("{MIN}[tokens]\ncode_ttl = \"1 hour\"\n"), &[]).unwrap_err();
    assert_eq!(e.key, "tokens.code_ttl");
}

#[test]
fn registration_and_exchange_defaults_and_overrides() {
    let c = load(&Config::template("https://auth.example.com"), &[]).unwrap();
    let r = &c.registration;
    assert!(r.enabled && r.metadata_documents);
    assert!(r.initial_access_tokens.is_empty());
    assert_eq!(
        (r.rate_per_minute, r.burst, r.global_per_minute),
        (10, 30, 600)
    );
    assert_eq!(r.reap_unused_after, 7 * 86_400);
    assert_eq!(r.fetch_timeout, 3);
    assert!(r.fetch_allow_addresses.is_empty());
    assert_eq!(c.exchange.max_delegation_depth, 3);
    let c = load(
        MIN,
        &[
            (
                "WARDEN_REGISTRATION__FETCH_ALLOW_ADDRESSES",
                "127.0.0.1/32, ::1",
            ),
            ("WARDEN_REGISTRATION__DENY_HOSTS", "*.evil.example"),
            ("WARDEN_EXCHANGE__MAX_DELEGATION_DEPTH", "2"),
        ],
    )
    .unwrap();
    assert_eq!(c.registration.fetch_allow_addresses.len(), 2);
    assert!(c.registration.deny_hosts[0].matches("a.evil.example"));
    assert_eq!(c.exchange.max_delegation_depth, 2);
    let text = format!(
        "{MIN}[registration]\ninitial_access_tokens = [\"{}\"]\nallow_hosts = [\"app.example.com\"]\n",
        "0f".repeat(32)
    );
    let c = load(&text, &[]).unwrap();
    assert_eq!(c.registration.initial_access_tokens, vec![[0x0f; 32]]);
}

#[test]
fn registration_refusals_name_the_key() {
    let cases = [
        (
            "fetch_allow_addresses = [\"10.0.0.0/40\"]",
            "registration.fetch_allow_addresses",
        ),
        ("allow_hosts = \"a/b\"", "registration.allow_hosts"),
        (
            "initial_access_tokens = [\"wdn_iat_abc\"]",
            "registration.initial_access_tokens",
        ),
        ("fetch_timeout = \"5m\"", "registration.fetch_timeout"),
        ("burst = 0", "registration.burst"),
        (
            "rate_per_minute = 100\nglobal_per_minute = 10",
            "registration.global_per_minute",
        ),
        ("colour = 1", "registration.colour"),
    ];
    for (line, key) in cases {
        let e = load(&format!("{MIN}[registration]\n{line}\n"), &[]).unwrap_err();
        assert_eq!(e.key, key, "{line}");
        assert!(!e.to_string().contains("wdn_iat_abc"), "{e}");
    }
    let e = load(&format!("{MIN}[exchange]\nmax_delegation_depth = 0\n"), &[]).unwrap_err();
    assert_eq!(e.key, "exchange.max_delegation_depth");
}

#[test]
fn secret_policy_and_token_lifetime_ceiling() {
    let c = load(MIN, &[]).unwrap();
    assert_eq!(c.secrets.max_age, 90 * 86_400);
    assert_eq!(c.secrets.expiry_warning, 14 * 86_400);
    assert_eq!(c.tokens.max_access_token_ttl, 3_600);
    let e = load(&format!("{MIN}[tokens]\naccess_token_ttl = \"2h\"\n"), &[]).unwrap_err();
    assert_eq!(e.key, "tokens.access_token_ttl");
    let e = load(
        &format!("{MIN}[secrets]\nmax_age = \"10d\"\nexpiry_warning = \"10d\"\n"),
        &[],
    )
    .unwrap_err();
    assert_eq!(e.key, "secrets.expiry_warning");
    // The admin CLI's credentials are not config overrides.
    assert!(load(
        MIN,
        &[
            ("WARDEN_ADMIN_CLIENT_SECRET", "x"),
            ("WARDEN_ADMIN_CLIENT_ID", "y"),
            ("WARDEN_ADMIN_CA_FILE", "ca.pem")
        ]
    )
    .is_ok());
}

#[test]
fn dpop_defaults_file_and_environment() {
    let c = load(&Config::template("https://auth.example.com"), &[]).unwrap();
    assert_eq!(c.dpop, super::DpopSettings::default());
    assert!(!c.dpop.nonce);
    assert_eq!((c.dpop.proof_max_age, c.dpop.leeway), (60, 5));
    let c = load(
        &format!("{MIN}[dpop]\nnonce = true\nproof_max_age = \"2m\"\n"),
        &[
            ("WARDEN_DPOP__LEEWAY", "10s"),
            ("WARDEN_DPOP__NONCE_ROTATION", "1m"),
        ],
    )
    .unwrap();
    assert!(c.dpop.nonce);
    assert_eq!(
        (c.dpop.proof_max_age, c.dpop.leeway, c.dpop.nonce_rotation),
        (120, 10, 60)
    );
    let e = load(&format!("{MIN}[dpop]\nleeway = \"5m\"\n"), &[]).unwrap_err();
    assert_eq!(e.key, "dpop.leeway");
    let e = load(&format!("{MIN}[dpop]\nnonces = true\n"), &[]).unwrap_err();
    assert!(e.to_string().contains("nonces"), "{e}");
}
