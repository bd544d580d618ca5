//! The fleet policy through the admin API: `GET` and `PUT /admin/v1/policy`, the very
//! operations `warden apply` and `warden policy show` run on a data dir, and the check
//! that keeps an applied policy valid when the registry changes under it.
//!
//! `PUT` takes the same TOML document as `warden apply -f`, checked by the same parser:
//! a refusal lists every problem with its line. The version is the `ETag`; a `PUT` with
//! `If-Match` applies only on that version (412 otherwise), and without it still never
//! overwrites a policy applied between its read and its write.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use warden_core::policy::{diff, Policy, Registry};
use warden_core::scope::ScopeSet;
use warden_proto::admin::{PolicyApplied, PolicyProblem, PolicyView};
use warden_store::{
    ClientRecord, ClientStore, PolicyStore, ServerRecord, ServerStore, StoreError, StoredPolicy,
};

use super::auth::Caller;
use super::{audit, Actor, AdminError, Subjects, PREFIX};
use crate::App;

/// Largest policy document accepted, bytes.
pub const MAX_POLICY_BYTES: usize = 1 << 20;

/// The registry as the store holds it now, to check a policy against.
pub struct StoreRegistry {
    servers: Vec<ServerRecord>,
    clients: Vec<ClientRecord>,
}

/// One `PUT`: the document and how to apply it.
#[derive(Clone, Copy, Debug)]
pub struct ApplyRequest<'a> {
    /// The policy document (TOML), as `warden apply -f` reads it.
    pub source: &'a str,
    /// Report the changes and change nothing.
    pub dry_run: bool,
    /// Apply only if the current version is this one (`If-Match`).
    pub expected_version: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutQuery {
    #[serde(default)]
    dry_run: bool,
}

// === impl StoreRegistry ===

impl StoreRegistry {
    /// Reads every server and client.
    pub async fn load(app: &App) -> Result<Self, AdminError> {
        Ok(StoreRegistry {
            servers: ServerStore::list(&app.store).await?,
            clients: ClientStore::list(&app.store).await?,
        })
    }
}

impl Registry for StoreRegistry {
    fn server_scopes(&self, name: &str) -> Option<ScopeSet> {
        self.servers
            .iter()
            .find(|s| s.name == name)
            .map(|s| ScopeSet::from_iter_valid(s.tool_groups.iter().map(|g| g.scope.clone())))
    }

    fn client_id(&self, key: &str) -> Option<String> {
        if let Some(c) = self.clients.iter().find(|c| c.client_id == key) {
            return Some(c.client_id.clone());
        }
        let mut named = self.clients.iter().filter(|c| c.name == key);
        match (named.next(), named.next()) {
            (Some(c), None) => Some(c.client_id.clone()),
            _ => None,
        }
    }
}

/// The stored policy record and its evaluated form (the empty policy before any apply).
async fn stored(app: &App) -> Result<(Option<StoredPolicy>, Policy), AdminError> {
    let current = PolicyStore::current(&app.store).await?;
    let policy = match &current {
        Some(c) => serde_json::from_str(&c.document).map_err(|e| {
            tracing::error!(error = %e, "the stored policy cannot be decoded");
            AdminError::Internal("the stored policy cannot be read".into())
        })?,
        None => Policy::default(),
    };
    Ok((current, policy))
}

/// The policy in force, with its version.
pub async fn get(app: &App) -> Result<PolicyView, AdminError> {
    let (current, policy) = stored(app).await?;
    let policy = serde_json::to_value(&policy)
        .map_err(|_| AdminError::Internal("the policy cannot be encoded".into()))?;
    Ok(match current {
        Some(c) => PolicyView {
            version: c.version,
            updated_at: Some(c.updated_at),
            source: c.source,
            policy,
        },
        None => PolicyView {
            version: 0,
            updated_at: None,
            source: String::new(),
            policy,
        },
    })
}

/// Checks a policy document against the registry and, unless it is a dry run or changes
/// nothing, makes it the policy in force (audited as `policy.applied`). On any refusal
/// nothing changes.
pub async fn apply(
    app: &App,
    actor: &Actor,
    req: ApplyRequest<'_>,
) -> Result<PolicyApplied, AdminError> {
    if req.source.len() > MAX_POLICY_BYTES {
        return Err(AdminError::InvalidRequest(
            format!("the policy document is larger than {MAX_POLICY_BYTES} bytes").into(),
        ));
    }
    let registry = StoreRegistry::load(app).await?;
    let new = Policy::parse(req.source, &registry).map_err(|errors| {
        AdminError::InvalidPolicy(
            errors
                .into_iter()
                .map(|e| PolicyProblem {
                    line: e.line,
                    message: e.message,
                })
                .collect(),
        )
    })?;
    let (current, old) = stored(app).await?;
    let version = current.as_ref().map_or(0, |c| c.version);
    if let Some(expected) = req.expected_version {
        if expected != version {
            return Err(stale(expected, version));
        }
    }
    let changes = diff(&old, &new);
    if req.dry_run || changes.is_empty() {
        return Ok(PolicyApplied {
            dry_run: req.dry_run,
            version,
            changes,
        });
    }
    let document = serde_json::to_string(&new)
        .map_err(|_| AdminError::Internal("the policy cannot be encoded".into()))?;
    let now = app.clock.now();
    let next = match PolicyStore::replace(&app.store, version, &document, req.source, now).await {
        Ok(v) => v,
        Err(StoreError::Conflict(_)) => {
            return Err(match req.expected_version {
                Some(expected) => stale(expected, version + 1),
                None => AdminError::Conflict(
                    "the policy was applied by someone else meanwhile; review it and re-apply"
                        .into(),
                ),
            })
        }
        Err(e) => return Err(e.into()),
    };
    // This process at once; other replicas at their next maintenance pass.
    if let Err(e) = app.policy.refresh(&app.store).await {
        tracing::warn!(error = %e, "cannot reload the policy just applied");
    }
    audit(
        app,
        actor,
        "policy.applied",
        Subjects::default(),
        json!({ "version": next, "changes": changes }),
    )
    .await?;
    Ok(PolicyApplied {
        dry_run: false,
        version: next,
        changes,
    })
}

fn stale(expected: i64, version: i64) -> AdminError {
    AdminError::PreconditionFailed(
        format!(
            "the policy is no longer at version {expected} (now {version}): fetch it, review, and apply again"
        )
        .into(),
    )
}

/// Refuses a registration of `rec` that would leave the policy in force granting a scope
/// the server no longer defines: a policy is only applied when valid against the
/// registry, and a registry change must keep it so.
pub async fn check_server_scopes(app: &App, rec: &ServerRecord) -> Result<(), AdminError> {
    let (current, policy) = stored(app).await?;
    let Some(current) = current else {
        return Ok(());
    };
    let defined: Vec<&str> = rec.tool_groups.iter().map(|g| g.scope.as_str()).collect();
    let mut granted = Vec::new();
    for (kind, rules) in [("client", &policy.clients), ("group", &policy.groups)] {
        for (who, rule) in rules {
            for scope in rule.servers.get(&rec.name).into_iter().flatten() {
                if !defined.contains(&scope.as_str()) {
                    granted.push(format!("{kind} {who} is granted {scope}"));
                }
            }
        }
    }
    if granted.is_empty() {
        return Ok(());
    }
    Err(AdminError::Conflict(
        format!(
            "the policy (version {}) grants scopes server {:?} would no longer define ({}): apply a policy without them first",
            current.version,
            rec.name,
            granted.join("; ")
        )
        .into(),
    ))
}

/// Refuses removing server `name` while the policy in force has a rule for it: the
/// policy would then name a server that does not exist.
pub async fn check_server_removal(app: &App, name: &str) -> Result<(), AdminError> {
    let (current, policy) = stored(app).await?;
    let Some(current) = current else {
        return Ok(());
    };
    let rules: Vec<String> = [("client", &policy.clients), ("group", &policy.groups)]
        .into_iter()
        .flat_map(|(kind, rules)| {
            rules
                .iter()
                .filter(|(_, rule)| rule.servers.contains_key(name))
                .map(move |(who, _)| format!("{kind} {who}"))
        })
        .collect();
    if rules.is_empty() {
        return Ok(());
    }
    Err(AdminError::Conflict(
        format!(
            "the policy (version {}) has rules for server {name:?} ({}): apply a policy without them first",
            current.version,
            rules.join(", ")
        )
        .into(),
    ))
}

/// The version named by `If-Match: "N"`, if the header is there (`*` names none).
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, AdminError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse::<i64>().ok())
        .filter(|v| *v >= 0)
        .map(Some)
        .ok_or_else(|| {
            AdminError::InvalidRequest(
                "If-Match must be the policy's ETag, a version in quotes such as \"3\"".into(),
            )
        })
}

fn with_etag(version: i64, mut resp: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

// === handlers ===

async fn get_h(State(app): State<App>) -> Result<Response, AdminError> {
    let view = get(&app).await?;
    Ok(with_etag(view.version, Json(view).into_response()))
}

#[tracing::instrument(skip_all)]
async fn put_h(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<PutQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let Query(q) = q.map_err(|e| AdminError::InvalidRequest(e.body_text().into()))?;
    let expected_version = if_match(&headers)?;
    let source = std::str::from_utf8(&body).map_err(|_| {
        AdminError::InvalidRequest("the policy document must be UTF-8 text (TOML)".into())
    })?;
    let req = ApplyRequest {
        source,
        dry_run: q.dry_run,
        expected_version,
    };
    let applied = apply(&app, &Actor::Client(caller.client_id), req).await?;
    Ok(with_etag(applied.version, Json(applied).into_response()))
}

/// `/admin/v1/policy`.
pub fn routes() -> Router<App> {
    Router::new().route(&format!("{PREFIX}/policy"), routing::get(get_h).put(put_h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_takes_a_quoted_version() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::IF_MATCH, HeaderValue::from_str(v).unwrap());
            m
        };
        assert_eq!(if_match(&HeaderMap::new()).unwrap(), None);
        assert_eq!(if_match(&h("\"3\"")).unwrap(), Some(3));
        assert_eq!(if_match(&h("*")).unwrap(), None);
        for bad in ["3", "W/\"3\"", "\"x\"", "\"-1\""] {
            assert!(if_match(&h(bad)).is_err(), "{bad}");
        }
    }
}
