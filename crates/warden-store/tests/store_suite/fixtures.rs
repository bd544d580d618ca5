//! Sample records for the suite.

use serde_json::json;
use warden_store::{
    AuthCodeRecord, ClientRecord, ClientSecret, NewAuditEvent, RefreshFamily, ServerRecord,
    ToolGroup, UserRecord,
};

pub const NOW: i64 = 1_700_000_000;

pub fn hash(tag: &str) -> Vec<u8> {
    let mut h = tag.as_bytes().to_vec();
    h.resize(32, 0xA5);
    h
}

pub fn secret(id: &str, created_at: i64) -> ClientSecret {
    ClientSecret {
        id: id.to_owned(),
        hash: hash(id),
        created_at,
        expires_at: None,
    }
}

pub fn client(id: &str, name: &str) -> ClientRecord {
    ClientRecord {
        client_id: id.to_owned(),
        name: name.to_owned(),
        confidential: true,
        redirect_uris: vec!["https://app.example/cb".to_owned()],
        grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
        scopes: vec!["files:read".to_owned()],
        token_endpoint_auth_method: "client_secret_basic".to_owned(),
        secrets: vec![secret(&format!("{id}-s1"), NOW)],
        metadata: json!({ "logo_uri": "https://app.example/logo.png", "contacts": ["a@b.example"] }),
        created_at: NOW,
        updated_at: NOW,
        last_used_at: None,
    }
}

pub fn user(id: &str, username: &str) -> UserRecord {
    UserRecord {
        id: id.to_owned(),
        username: username.to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        groups: vec!["staff".to_owned()],
        disabled: false,
        created_at: NOW,
        updated_at: NOW,
    }
}

pub fn server(name: &str, uri: &str) -> ServerRecord {
    ServerRecord {
        name: name.to_owned(),
        canonical_uri: uri.to_owned(),
        upstream: "http://127.0.0.1:9000/mcp".to_owned(),
        tool_groups: vec![ToolGroup {
            scope: "files:read".to_owned(),
            tools: vec!["read_file".to_owned(), "list_dir".to_owned()],
        }],
        token_format: "jwt".to_owned(),
        access_token_ttl_secs: 900,
        leeway_secs: 30,
        issuer: None,
        settings: json!({ "upstream_auth": { "kind": "none" } }),
        created_at: NOW,
        updated_at: NOW,
    }
}

pub fn code(tag: &str, expires_at: i64) -> AuthCodeRecord {
    AuthCodeRecord {
        code_hash: hash(tag),
        client_id: "c1".to_owned(),
        subject: "u1".to_owned(),
        redirect_uri: "https://app.example/cb".to_owned(),
        scopes: vec!["files:read".to_owned()],
        resources: vec!["https://mcp.example/files".to_owned()],
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
        nonce: Some("n-1".to_owned()),
        session_id: Some("sess-1".to_owned()),
        family_id: format!("fam-{tag}"),
        auth_time: NOW - 5,
        created_at: NOW,
        expires_at,
        used_at: None,
        dpop_jkt: Some("jkt-code".into()),
    }
}

pub fn family(id: &str, token: &str) -> RefreshFamily {
    RefreshFamily {
        id: id.to_owned(),
        client_id: "c1".to_owned(),
        subject: "u1".to_owned(),
        scopes: vec!["files:read".to_owned()],
        resources: vec!["https://mcp.example/files".to_owned()],
        session_id: Some("sess-1".to_owned()),
        current_hash: hash(token),
        generation: 0,
        token_expires_at: NOW + 3600,
        session_expires_at: NOW + 86_400,
        created_at: NOW,
        rotated_at: NOW,
        revoked_at: None,
        revoked_reason: None,
        grace: None,
        parent_family: None,
        dpop_jkt: Some("jkt-1".into()),
    }
}

pub fn event(ts: i64, kind: &str) -> NewAuditEvent {
    NewAuditEvent {
        ts,
        kind: kind.to_owned(),
        client_id: Some("c1".to_owned()),
        subject: Some("u1".to_owned()),
        server: None,
        detail: json!({ "ip": "192.0.2.1", "zeta": 1, "alpha": [1, 2] }).into(),
    }
}
