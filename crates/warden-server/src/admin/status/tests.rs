use serde_json::json;
use warden_store::{ClientSecret, ToolGroup};

use super::*;

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn config() -> Config {
    Config::load(
        &Config::template("http://127.0.0.1:8080"),
        Vec::new(),
        std::path::Path::new("/d"),
    )
    .unwrap()
}

fn server(name: &str) -> ServerRecord {
    ServerRecord {
        name: name.into(),
        canonical_uri: format!("http://127.0.0.1:8080/mcp/{name}"),
        upstream: "http://127.0.0.1:9/mcp".into(),
        tool_groups: vec![ToolGroup {
            scope: format!("{name}:use"),
            tools: vec!["t".into()],
        }],
        token_format: "jwt".into(),
        access_token_ttl_secs: 900,
        leeway_secs: 30,
        issuer: None,
        settings: json!({}),
        created_at: NOW,
        updated_at: NOW,
    }
}

fn key(kid: &str, activate_at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        alg: "ES256".into(),
        public_jwk: "{}".into(),
        private_key_enc: vec![],
        created_at: activate_at,
        publish_at: activate_at,
        activate_at,
        retire_at: None,
        remove_at: None,
    }
}

fn client(id: &str, secrets: &[(i64, Option<i64>)]) -> ClientRecord {
    ClientRecord {
        client_id: id.into(),
        name: id.into(),
        confidential: true,
        redirect_uris: vec![],
        grant_types: vec!["client_credentials".into()],
        scopes: vec![],
        token_endpoint_auth_method: "client_secret_basic".into(),
        secrets: secrets
            .iter()
            .enumerate()
            .map(|(i, (created_at, expires_at))| ClientSecret {
                id: format!("{id}-s{i}"),
                hash: vec![0; 32],
                created_at: *created_at,
                expires_at: *expires_at,
            })
            .collect(),
        metadata: json!({}),
        created_at: NOW,
        updated_at: NOW,
        last_used_at: None,
    }
}

fn reasons(f: &[Finding]) -> Vec<(Severity, String)> {
    f.iter().map(|f| (f.severity, f.reason.clone())).collect()
}

#[test]
fn a_fleet_in_policy_has_no_findings() {
    let s = posture(
        &[server("notes"), server("other")],
        &[client("c", &[(NOW - DAY, None)])],
        &[key("k1", NOW - DAY)],
        &config(),
        NOW,
    );
    assert!(s.ok, "{s:#?}");
    assert_eq!((s.violations, s.warnings), (0, 0));
    assert!(s
        .servers
        .iter()
        .all(|p| p.audience_binding && p.pkce_enforced));
    assert_eq!(s.signing_key.kid.as_deref(), Some("k1"));
    assert_eq!(s.signing_key.age_secs, Some(DAY));
    assert_eq!(s.clients[0].secrets[0].state, "active");
}

#[test]
fn servers_out_of_policy_are_flagged_with_the_reason() {
    let mut long = server("long");
    long.access_token_ttl_secs = 2 * 3_600;
    let mut skewed = server("skewed");
    skewed.leeway_secs = 301;
    let mut twin = server("twin");
    twin.canonical_uri = server("notes").canonical_uri;
    let mut sloppy = server("sloppy");
    sloppy.canonical_uri = "HTTP://127.0.0.1:8080/mcp/sloppy/".into();
    let s = posture(
        &[server("notes"), twin, long, skewed, sloppy],
        &[],
        &[key("k1", NOW)],
        &config(),
        NOW,
    );
    assert!(!s.ok);
    let by = |n: &str| s.servers.iter().find(|p| p.name == n).unwrap();
    assert!(!by("notes").audience_binding && !by("twin").audience_binding);
    assert!(by("twin").findings[0].reason.contains("shared with notes"));
    assert!(by("long").findings[0]
        .reason
        .contains("tokens.max_access_token_ttl"));
    assert_eq!(by("long").token_lifetime_secs, 7_200);
    assert!(by("skewed").findings[0].reason.contains("leeway 301s"));
    assert!(!by("sloppy").audience_binding);
    assert!(by("sloppy").findings[0].reason.contains("canonical form"));
    assert_eq!(s.violations, 5);
}

#[test]
fn the_signing_key_is_judged_against_the_rotation_interval() {
    let c = config();
    let s = posture(&[], &[], &[], &c, NOW);
    assert_eq!(s.violations, 1);
    assert!(s.signing_key.findings[0].reason.contains("no signing key"));

    // Due: the successor should be published a day before the interval ends.
    let age = c.keys.rotation_interval - c.keys.publish_ahead + 2 * 3_600;
    let s = posture(&[], &[], &[key("k1", NOW - age)], &c, NOW);
    assert_eq!(reasons(&s.signing_key.findings)[0].0, Severity::Warning);
    assert!(s.ok);
    // With the successor published, all is well.
    let s = posture(
        &[],
        &[],
        &[key("k1", NOW - age), key("k2", NOW + DAY)],
        &c,
        NOW,
    );
    assert!(s.signing_key.findings.is_empty());
    assert_eq!(s.signing_key.next_kid.as_deref(), Some("k2"));
    // Overdue: the schedule has not run.
    let age = c.keys.rotation_interval + 2 * 3_600;
    let s = posture(&[], &[], &[key("k1", NOW - age)], &c, NOW);
    assert!(!s.ok);
    assert!(s.signing_key.findings[0]
        .reason
        .contains("keys.rotation_interval"));
}

#[test]
fn client_secrets_are_judged_against_max_age() {
    let c = config();
    let max = c.secrets.max_age;
    let s = posture(
        &[],
        &[
            client("old", &[(NOW - max - DAY, None)]),
            client("soon", &[(NOW - max + 3 * DAY, None)]),
            // Rotated: the old secret retires, the new one is young.
            client(
                "rotated",
                &[(NOW - max - DAY, Some(NOW + 3_600)), (NOW, None)],
            ),
            client("dead", &[(NOW - DAY, Some(NOW - 1))]),
        ],
        &[key("k1", NOW)],
        &c,
        NOW,
    );
    let by = |n: &str| s.clients.iter().find(|p| p.client_id == n).unwrap();
    let old = reasons(&by("old").findings);
    assert_eq!(old[0].0, Severity::Violation);
    assert!(old[0].1.contains("over secrets.max_age (90d)"), "{old:?}");
    assert!(old[0].1.contains("warden client rotate-secret old"));
    let soon = reasons(&by("soon").findings);
    assert_eq!(soon[0].0, Severity::Warning);
    assert!(soon[0].1.contains("in 3d"), "{soon:?}");
    assert!(by("rotated").findings.is_empty());
    assert_eq!(by("rotated").secrets[0].state, "retiring");
    assert_eq!(by("dead").secrets[0].state, "expired");
    assert!(by("dead").findings[0].reason.contains("no working secret"));
    assert_eq!((s.violations, s.warnings), (1, 2));
}

#[test]
fn durations_read_naturally() {
    assert_eq!(human(90 * DAY), "90d");
    assert_eq!(human(36 * 3_600), "36h");
    assert_eq!(human(900), "15m");
    assert_eq!(human(30), "30s");
    assert_eq!(human(12 * DAY + 5), "12d");
}
