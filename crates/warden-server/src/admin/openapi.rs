//! `GET /admin/v1/openapi.json`: the admin API's OpenAPI 3.1 document.
//!
//! The document is written by hand in `openapi.json` beside this file. Tests hold it to
//! the code: every path it lists answers (the router test walks them), and every schema
//! has exactly the fields the wire types serialize.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::AdminError;
use crate::App;

/// The document as written, before the public URL is filled in.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// The document for this deployment: its server URL and token endpoint filled in.
pub fn document_for(public_url: &str, issuer: &str) -> Result<Value, AdminError> {
    let mut doc: Value = serde_json::from_str(DOCUMENT).map_err(|e| {
        AdminError::Internal(format!("the OpenAPI document does not parse: {e}").into())
    })?;
    doc["servers"] = serde_json::json!([{ "url": public_url }]);
    doc["components"]["securitySchemes"]["warden"]["flows"]["clientCredentials"]["tokenUrl"] =
        Value::String(format!("{issuer}/oauth/token"));
    Ok(doc)
}

/// `GET /admin/v1/openapi.json` (public: it holds no secret).
pub async fn document(State(app): State<App>) -> Response {
    match document_for(&app.config.public_url, &app.config.issuer) {
        Ok(doc) => Json(doc).into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde::Serialize;
    use serde_json::json;
    use warden_proto::admin::*;

    use super::*;

    fn properties(doc: &Value, schema: &str) -> BTreeSet<String> {
        doc["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("schema {schema} has no properties"))
            .keys()
            .cloned()
            .collect()
    }

    fn fields<T: Serialize>(v: &T) -> BTreeSet<String> {
        serde_json::to_value(v)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }

    fn check<T: Serialize>(doc: &Value, schema: &str, sample: &T) {
        assert_eq!(properties(doc, schema), fields(sample), "schema {schema}");
    }

    #[test]
    fn the_settings_schema_lists_exactly_the_settable_settings() {
        use warden_core::server_settings::ServerSettings;
        let doc = document_for("https://w.example", "https://w.example").unwrap();
        let settable: BTreeSet<String> = ServerSettings::settable().map(str::to_owned).collect();
        assert_eq!(properties(&doc, "ServerSettings"), settable);
        let schemas = &doc["components"]["schemas"];
        let patchable: BTreeSet<String> = schemas["ServerUpdate"]["properties"]["settings"]
            ["propertyNames"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(patchable, settable);
    }

    #[test]
    fn the_document_parses_and_its_schemas_match_the_wire_types() {
        let doc = document_for("https://w.example", "https://w.example").unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["servers"][0]["url"], "https://w.example");
        let tool = ToolGroupView {
            scope: "s".into(),
            tools: vec![],
        };
        check(&doc, "ToolGroup", &tool);
        let server = ServerView {
            name: "n".into(),
            canonical_uri: "u".into(),
            upstream: "u".into(),
            tool_groups: vec![tool.clone()],
            token_format: "jwt".into(),
            access_token_ttl_secs: 1,
            leeway_secs: 1,
            issuer: Some("i".into()),
            settings: serde_json::Map::from_iter([("transport".to_owned(), json!("sse"))]),
            created_at: 1,
        };
        check(&doc, "ServerView", &server);
        check(
            &doc,
            "ServerUpdate",
            &ServerUpdate {
                upstream: Some("u".into()),
                canonical_uri: Some("u".into()),
                tool_groups: Some(vec![tool.clone()]),
                access_token_ttl_secs: Some(1),
                leeway_secs: Some(1),
                issuer: Some(None),
                token_format: Some("jwt".into()),
                settings: Some(serde_json::Map::new()),
                introspection_client_secret: Some("s".into()),
            },
        );
        check(
            &doc,
            "PolicyView",
            &PolicyView {
                version: 1,
                updated_at: Some(1),
                source: String::new(),
                policy: json!({}),
            },
        );
        check(
            &doc,
            "PolicyApplied",
            &PolicyApplied {
                dry_run: true,
                version: 1,
                changes: vec![],
            },
        );
        let problem = PolicyProblem {
            line: Some(1),
            message: "m".into(),
        };
        check(&doc, "PolicyProblem", &problem);
        let refused = crate::admin::AdminError::InvalidPolicy(vec![problem]);
        let body = json!({ "error": refused.code(), "error_description": refused.to_string(), "errors": [] });
        check(&doc, "PolicyError", &body);
        check(
            &doc,
            "ConsentView",
            &ConsentView {
                client_id: "c".into(),
                resource: "r".into(),
                scopes: vec![],
                granted_at: 1,
            },
        );
        check(
            &doc,
            "ConsentsRevoked",
            &ConsentsRevoked {
                consents_removed: 1,
                sessions_revoked: 1,
            },
        );
        check(
            &doc,
            "NewServer",
            &NewServer {
                name: "n".into(),
                upstream: "u".into(),
                canonical_uri: Some("u".into()),
                tool_groups: vec![tool],
                access_token_ttl_secs: Some(1),
                leeway_secs: Some(1),
                issuer: Some("i".into()),
                token_format: Some("jwt".into()),
                settings: Some(serde_json::Map::new()),
                introspection_client_secret: Some("s".into()),
            },
        );
        let client = ClientView {
            client_id: "c".into(),
            name: "n".into(),
            client_type: "public".into(),
            redirect_uris: vec![],
            grant_types: vec![],
            scopes: vec![],
            token_endpoint_auth_method: "none".into(),
            active_secrets: 0,
            created_at: 1,
            last_used_at: None,
            workloads: vec![WorkloadView {
                idp: "k8s".into(),
                subject: "sa".into(),
            }],
        };
        check(&doc, "ClientView", &client);
        check(&doc, "WorkloadView", &client.workloads[0]);
        check(&doc, "WorkloadBinding", &client.workloads[0]);
        check(
            &doc,
            "ClientUpdate",
            &ClientUpdate {
                name: Some("n".into()),
                redirect_uris: Some(vec![]),
                grant_types: Some(vec![]),
                scopes: Some(vec![]),
                workloads: Some(vec![]),
            },
        );
        let mapping = GroupMapping {
            idp_group: "eng".into(),
            group: "staff".into(),
        };
        check(&doc, "GroupMapping", &mapping);
        let idp = IdpView {
            name: "n".into(),
            issuer: "i".into(),
            display_name: None,
            uses: vec!["login".into()],
            client_id: None,
            client_secret_set: true,
            groups_claim: "groups".into(),
            group_map: vec![mapping.clone()],
            domains: vec![],
            tenants: vec![],
            audiences: vec![],
            scopes: vec![],
            jwks_uri: None,
            issuer_ca: None,
            disabled: false,
            created_at: 1,
            updated_at: 1,
        };
        check(&doc, "IdpView", &idp);
        check(
            &doc,
            "NewIdp",
            &NewIdp {
                name: "n".into(),
                issuer: "i".into(),
                uses: vec![],
                display_name: Some("d".into()),
                client_id: Some("c".into()),
                client_secret: Some("s".into()),
                groups_claim: Some("g".into()),
                group_map: vec![],
                domains: vec![],
                tenants: vec![],
                audiences: vec![],
                scopes: vec![],
                jwks_uri: Some("j".into()),
                issuer_ca: Some("p".into()),
                disabled: false,
            },
        );
        check(
            &doc,
            "IdpUpdate",
            &IdpUpdate {
                issuer: Some("i".into()),
                uses: Some(vec![]),
                display_name: Some(None),
                client_id: Some(None),
                client_secret: Some(None),
                groups_claim: Some(None),
                group_map: Some(vec![mapping]),
                domains: Some(vec![]),
                tenants: Some(vec![]),
                audiences: Some(vec![]),
                scopes: Some(None),
                jwks_uri: Some(None),
                issuer_ca: Some(None),
                disabled: Some(true),
            },
        );
        check(
            &doc,
            "IdpRemoved",
            &IdpRemoved {
                removed: "n".into(),
                sessions_revoked: 0,
            },
        );
        // The schema repeats the view's fields (see its description); this keeps them in step.
        let created = CreatedClient {
            client: client.clone(),
            client_secret: Some("s".into()),
        };
        check(&doc, "CreatedClient", &created);
        check(&doc, "NewClient", &NewClient::default());
        check(
            &doc,
            "RotateSecret",
            &RotateSecret {
                overlap_secs: Some(1),
            },
        );
        check(
            &doc,
            "RotatedSecret",
            &RotatedSecret {
                client,
                secret_id: "s".into(),
                client_secret: "x".into(),
                previous_secrets_expire_at: None,
            },
        );
        check(
            &doc,
            "UserView",
            &UserView {
                id: "u".into(),
                username: "n".into(),
                groups: vec![],
                disabled: false,
                created_at: 1,
            },
        );
        check(
            &doc,
            "NewUser",
            &NewUser {
                username: "n".into(),
                password: "p".into(),
                groups: vec![],
            },
        );
        check(
            &doc,
            "KeyView",
            &KeyView {
                kid: "k".into(),
                alg: "ES256".into(),
                state: "active".into(),
                publish_at: 1,
                activate_at: 1,
                retire_at: None,
                remove_at: None,
            },
        );
        check(&doc, "RotateKey", &RotateKey::default());
        check(
            &doc,
            "Removed",
            &Removed {
                removed: "x".into(),
            },
        );
        check(
            &doc,
            "EventView",
            &EventView {
                seq: 1,
                ts_ms: 1,
                kind: "k".into(),
                client_id: None,
                subject: None,
                server: None,
                detail: json!({}),
                prev_hash: String::new(),
                hash: String::new(),
            },
        );
        check(
            &doc,
            "EventPage",
            &EventPage {
                events: vec![],
                truncated: true,
                next_after_seq: Some(1),
            },
        );
        check(
            &doc,
            "ChainReport",
            &ChainReport {
                checked: 1,
                first_broken: None,
            },
        );
        let finding = Finding {
            severity: Severity::Warning,
            reason: "r".into(),
        };
        check(&doc, "Finding", &finding);
        let key = KeyPosture {
            kid: None,
            alg: None,
            active_since: None,
            age_secs: None,
            rotation_interval_secs: 1,
            next_kid: None,
            findings: vec![],
        };
        check(&doc, "KeyPosture", &key);
        let server = ServerPosture {
            name: "n".into(),
            canonical_uri: "u".into(),
            audience_binding: true,
            pkce_enforced: true,
            token_format: "jwt".into(),
            token_lifetime_secs: 1,
            max_token_lifetime_secs: 1,
            leeway_secs: 1,
            issuer: "warden".into(),
            issuer_reachable: Some(true),
            findings: vec![finding],
        };
        check(&doc, "ServerPosture", &server);
        let secret = SecretPosture {
            id: "s".into(),
            created_at: 1,
            age_secs: 1,
            max_age_at: 1,
            expires_at: None,
            state: "active".into(),
        };
        check(&doc, "SecretPosture", &secret);
        let client = ClientPosture {
            client_id: "c".into(),
            name: "n".into(),
            secrets: vec![secret],
            findings: vec![],
        };
        check(&doc, "ClientPosture", &client);
        check(
            &doc,
            "FleetStatus",
            &FleetStatus {
                issuer: "i".into(),
                checked_at: 1,
                ok: true,
                violations: 0,
                warnings: 0,
                pkce: "p".into(),
                signing_key: key,
                servers: vec![server],
                clients: vec![client],
            },
        );
    }
}
