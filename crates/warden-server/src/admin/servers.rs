//! The server registry through the admin API: `/admin/v1/servers`.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing;
use axum::{Extension, Json, Router};
use serde_json::json;
use warden_core::config::Config;
use warden_core::keys::Sealer;
use warden_core::scope::valid_token;
use warden_core::uri::CanonicalUri;
use warden_proto::admin::{NewServer, Removed, ServerView, ToolGroupView};
use warden_store::{ServerRecord, ServerStore, StoreError, ToolGroup};

use super::auth::Caller;
use super::{
    audit, is_builtin, parse_body, resource_uri, Actor, AdminError, Subjects, ADMIN_SERVER, PREFIX,
};
use crate::App;

/// Shortest access-token lifetime a server may have, seconds.
pub const MIN_TOKEN_TTL: i64 = 30;
/// Largest clock-skew leeway a server may have, seconds.
pub const MAX_LEEWAY: i64 = 300;

fn invalid(msg: impl Into<Cow<'static, str>>) -> AdminError {
    AdminError::InvalidRequest(msg.into())
}

/// Checks a server name.
pub fn validate_name(name: &str) -> Result<(), AdminError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if !ok {
        return Err(invalid(format!(
            "server name {name:?} must be 1-63 of a-z 0-9 - _ and start with a letter or digit"
        )));
    }
    if name == ADMIN_SERVER {
        return Err(invalid(
            "the server name `admin` is reserved for the admin API",
        ));
    }
    Ok(())
}

fn validate_upstream(text: &str) -> Result<(), AdminError> {
    if let Some(command) = text.strip_prefix(STDIO_PREFIX) {
        // The command line itself is checked when the registration is compiled.
        if command.trim().is_empty() {
            return Err(invalid(
                "a stdio upstream needs a command: stdio:PROGRAM [ARG]…",
            ));
        }
        return Ok(());
    }
    let url = url::Url::parse(text)
        .map_err(|_| invalid(format!("upstream {text:?} is not an absolute URL")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid("upstream must be an http(s) URL or stdio:COMMAND"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("upstream must not embed credentials"));
    }
    Ok(())
}

fn validate_groups(groups: &[ToolGroupView]) -> Result<Vec<ToolGroup>, AdminError> {
    let mut out: Vec<ToolGroup> = Vec::new();
    for g in groups {
        if !valid_token(&g.scope) {
            return Err(invalid(format!("{:?} is not a valid OAuth scope", g.scope)));
        }
        if g.scope.starts_with("admin:") {
            return Err(invalid(format!(
                "scope {} is reserved: admin:* scopes belong to the admin API",
                g.scope
            )));
        }
        if out.iter().any(|x| x.scope == g.scope) {
            return Err(invalid(format!("scope {} is given twice", g.scope)));
        }
        let tools: Vec<String> = g.tools.iter().map(|t| t.trim().to_owned()).collect();
        if tools.is_empty() || tools.iter().any(String::is_empty) {
            return Err(invalid(format!(
                "scope {}: name at least one tool, and no empty names",
                g.scope
            )));
        }
        if let Some(t) = tools
            .iter()
            .find(|t| out.iter().any(|x| x.tools.contains(t)))
        {
            return Err(invalid(format!(
                "tool {t} is in two groups; a tool belongs to one scope"
            )));
        }
        out.push(ToolGroup {
            scope: g.scope.clone(),
            tools,
        });
    }
    Ok(out)
}

/// Settings a registration may carry; anything else is refused.
const SETTINGS: &[&str] = &[
    "accept_jwt_typ",
    "introspection_endpoint",
    "introspection_client_id",
    "introspection_requires_aud",
    "introspection_cache_secs",
    "issuer_ca",
    "jwks_uri",
    "upstream_ca",
    "transport",
    "unmapped_tools",
    "unmapped_resources",
    "unmapped_prompts",
    "allowed_origins",
    "upstream_timeout_secs",
    "resource_name",
    "static_headers",
    "env",
    "max_processes",
];

/// How a stdio upstream's upstream field starts.
const STDIO_PREFIX: &str = "stdio:";

/// A stdio upstream is a command Warden runs on its own host, so only someone holding
/// the data dir and master key may register one: through the admin API, `admin:write`
/// would otherwise amount to running any program on the gateway's machine.
pub fn check_stdio_actor(actor: &Actor, upstream: &str) -> Result<(), AdminError> {
    if upstream.starts_with(STDIO_PREFIX) && !matches!(actor, Actor::Local) {
        return Err(invalid(
            "stdio upstreams run a command on the Warden host and can only be registered \
             locally (warden server add on the data dir, without --server)",
        ));
    }
    Ok(())
}

/// Validates a registration against the config's policy and builds its record, with
/// the introspection secret sealed and the whole registration compiled the way the
/// gateway will compile it, so a bad one is refused now rather than at first use.
pub fn build_sealed(
    new: &NewServer,
    config: &Config,
    sealer: &Sealer,
    now: i64,
) -> Result<ServerRecord, AdminError> {
    let mut rec = build(new, config, now)?;
    if let Some(format) = &new.token_format {
        if !matches!(format.as_str(), "jwt" | "opaque") {
            return Err(invalid("token_format must be jwt or opaque"));
        }
        rec.token_format = format.clone();
    }
    if let Some(issuer) = &new.issuer {
        if issuer != &config.issuer {
            crate::gateway::external::check_idp_url(issuer, "issuer").map_err(invalid)?;
        }
        rec.issuer = Some(issuer.clone());
    }
    if let Some(settings) = &new.settings {
        if let Some(k) = settings.keys().find(|k| !SETTINGS.contains(&k.as_str())) {
            return Err(invalid(format!("unknown setting {k:?}")));
        }
        rec.settings = serde_json::Value::Object(settings.clone());
    }
    if let Some(secret) = &new.introspection_client_secret {
        let sealed =
            crate::gateway::external::seal_secret(sealer, &rec.name, secret).map_err(invalid)?;
        if let Some(map) = rec.settings.as_object_mut() {
            map.insert("introspection_client_secret".into(), sealed);
        }
    }
    crate::gateway::registry::Protected::compile(&rec, config, sealer)
        .map(drop)
        .map_err(|e| invalid(format!("invalid registration: {e}")))?;
    Ok(rec)
}

/// Validates a registration against the config's policy and builds its record.
pub fn build(new: &NewServer, config: &Config, now: i64) -> Result<ServerRecord, AdminError> {
    validate_name(&new.name)?;
    validate_upstream(&new.upstream)?;
    let uri_text = new
        .canonical_uri
        .clone()
        .unwrap_or_else(|| format!("{}/mcp/{}", config.public_url, new.name));
    let canonical = CanonicalUri::parse(&uri_text)
        .map_err(|e| invalid(format!("canonical URI {uri_text:?}: {e}")))?;
    if canonical.as_str() == resource_uri(config) {
        return Err(invalid(format!(
            "canonical URI {} is reserved for the admin API",
            canonical.as_str()
        )));
    }
    let tool_groups = validate_groups(&new.tool_groups)?;
    let max_ttl = config.tokens.max_access_token_ttl;
    let ttl = new
        .access_token_ttl_secs
        .unwrap_or(config.tokens.access_token_ttl);
    if !(MIN_TOKEN_TTL..=max_ttl).contains(&ttl) {
        return Err(invalid(format!(
            "the access-token lifetime must be between {MIN_TOKEN_TTL}s and {max_ttl}s (tokens.max_access_token_ttl)"
        )));
    }
    let leeway = new.leeway_secs.unwrap_or(config.gateway.leeway);
    if !(0..=MAX_LEEWAY).contains(&leeway) {
        return Err(invalid(format!(
            "the leeway must be between 0s and {MAX_LEEWAY}s"
        )));
    }
    Ok(ServerRecord {
        name: new.name.clone(),
        canonical_uri: canonical.as_str().to_owned(),
        upstream: new.upstream.clone(),
        tool_groups,
        token_format: "jwt".into(),
        access_token_ttl_secs: ttl,
        leeway_secs: leeway,
        issuer: None,
        settings: json!({}),
        created_at: now,
        updated_at: now,
    })
}

/// The admin view of a record.
pub fn view(r: &ServerRecord) -> ServerView {
    ServerView {
        name: r.name.clone(),
        canonical_uri: r.canonical_uri.clone(),
        upstream: r.upstream.clone(),
        tool_groups: r
            .tool_groups
            .iter()
            .map(|g| ToolGroupView {
                scope: g.scope.clone(),
                tools: g.tools.clone(),
            })
            .collect(),
        token_format: r.token_format.clone(),
        access_token_ttl_secs: r.access_token_ttl_secs,
        leeway_secs: r.leeway_secs,
        created_at: r.created_at,
    }
}

/// Registers a server.
pub async fn create(app: &App, actor: &Actor, new: &NewServer) -> Result<ServerView, AdminError> {
    check_stdio_actor(actor, &new.upstream)?;
    let rec = build_sealed(new, &app.config, &app.sealer, app.clock.now())?;
    // The name is checked first for the clearer message; the store's unique keys still
    // decide a race.
    if ServerStore::get(&app.store, &rec.name).await?.is_some() {
        return Err(AdminError::Conflict(
            format!("a server named {:?} is already registered", rec.name).into(),
        ));
    }
    match ServerStore::create(&app.store, &rec).await {
        Ok(()) => {}
        Err(StoreError::Conflict(what)) => {
            return Err(AdminError::Conflict(
                format!("a server with this {what} is already registered").into(),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let scopes: Vec<&str> = rec.tool_groups.iter().map(|g| g.scope.as_str()).collect();
    audit(
        app,
        actor,
        "server.registered",
        Subjects {
            server: Some(rec.name.clone()),
            ..Default::default()
        },
        json!({
            "canonical_uri": rec.canonical_uri,
            "upstream": rec.upstream,
            "scopes": scopes,
            "access_token_ttl_secs": rec.access_token_ttl_secs,
            "leeway_secs": rec.leeway_secs,
        }),
    )
    .await?;
    Ok(view(&rec))
}

/// Every registered server, by name.
pub async fn list(app: &App) -> Result<Vec<ServerView>, AdminError> {
    Ok(ServerStore::list(&app.store)
        .await?
        .iter()
        .map(view)
        .collect())
}

async fn find(app: &App, name: &str) -> Result<ServerRecord, AdminError> {
    ServerStore::get(&app.store, name)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no server named {name:?}").into()))
}

/// One server.
pub async fn get(app: &App, name: &str) -> Result<ServerView, AdminError> {
    Ok(view(&find(app, name).await?))
}

/// Removes a server (never the built-in admin resource).
pub async fn remove(app: &App, actor: &Actor, name: &str) -> Result<Removed, AdminError> {
    let rec = find(app, name).await?;
    if is_builtin(&rec) {
        return Err(AdminError::InvalidRequest(
            "the admin resource is built in and cannot be removed".into(),
        ));
    }
    let deleted = ServerStore::delete(&app.store, name).await?;
    app.servers_by_uri.clear();
    if !deleted {
        return Err(AdminError::NotFound(
            format!("no server named {name:?}").into(),
        ));
    }
    audit(
        app,
        actor,
        "server.removed",
        Subjects {
            server: Some(rec.name.clone()),
            ..Default::default()
        },
        json!({ "canonical_uri": rec.canonical_uri }),
    )
    .await?;
    Ok(Removed { removed: rec.name })
}

// === handlers ===

async fn list_h(State(app): State<App>) -> Result<Json<Vec<ServerView>>, AdminError> {
    list(&app).await.map(Json)
}

#[tracing::instrument(skip_all)]
async fn create_h(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<(StatusCode, Json<ServerView>), AdminError> {
    let new: NewServer = parse_body(&body)?;
    let created = create(&app, &Actor::Client(caller.client_id), &new).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn get_h(
    State(app): State<App>,
    Path(name): Path<String>,
) -> Result<Json<ServerView>, AdminError> {
    get(&app, &name).await.map(Json)
}

#[tracing::instrument(skip_all)]
async fn remove_h(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Removed>, AdminError> {
    remove(&app, &Actor::Client(caller.client_id), &name)
        .await
        .map(Json)
}

/// `/admin/v1/servers` and `/admin/v1/servers/{name}`.
pub fn routes() -> Router<App> {
    Router::new()
        .route(
            &format!("{PREFIX}/servers"),
            routing::get(list_h).post(create_h),
        )
        .route(
            &format!("{PREFIX}/servers/{{name}}"),
            routing::get(get_h).delete(remove_h),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::load(
            &Config::template("http://127.0.0.1:8080"),
            Vec::new(),
            std::path::Path::new("/d"),
        )
        .unwrap()
    }

    fn new(name: &str, groups: &[(&str, &[&str])]) -> NewServer {
        NewServer {
            name: name.into(),
            upstream: "http://127.0.0.1:9000/mcp".into(),
            canonical_uri: None,
            tool_groups: groups
                .iter()
                .map(|(s, t)| ToolGroupView {
                    scope: (*s).into(),
                    tools: t.iter().map(|x| (*x).into()).collect(),
                })
                .collect(),
            access_token_ttl_secs: None,
            leeway_secs: None,
            ..Default::default()
        }
    }

    #[test]
    fn builds_the_default_canonical_uri_and_policy_defaults() {
        let r = build(
            &new(
                "notes",
                &[("notes:read", &["a", "b"]), ("notes:write", &["c"])],
            ),
            &config(),
            1,
        )
        .unwrap();
        assert_eq!(r.canonical_uri, "http://127.0.0.1:8080/mcp/notes");
        assert_eq!(r.tool_groups[0].tools, ["a", "b"]);
        assert_eq!((r.access_token_ttl_secs, r.leeway_secs), (900, 30));
    }

    #[test]
    fn stdio_upstreams_are_accepted_only_from_the_local_cli() {
        let c = config();
        let sealer = warden_core::keys::MasterKey::generate().unwrap().sealer();
        let mut n = new("local", &[("notes:read", &["notes_list"])]);
        n.upstream = "stdio:/usr/bin/env python3 server.py".into();
        let rec = build_sealed(&n, &c, &sealer, 1).unwrap();
        assert_eq!(rec.upstream, "stdio:/usr/bin/env python3 server.py");
        assert!(check_stdio_actor(&Actor::Local, &n.upstream).is_ok());
        let remote = check_stdio_actor(&Actor::Client("ops".into()), &n.upstream)
            .unwrap_err()
            .to_string();
        assert!(remote.contains("only be registered locally"), "{remote}");
        assert!(check_stdio_actor(&Actor::Client("ops".into()), "http://127.0.0.1:1/mcp").is_ok());
        n.upstream = "stdio:   ".into();
        let empty = build(&n, &c, 1).unwrap_err().to_string();
        assert!(empty.contains("needs a command"), "{empty}");
        n.upstream = "stdio:prog 'unterminated".into();
        assert!(build_sealed(&n, &c, &sealer, 1).is_err());
    }

    #[test]
    fn refuses_bad_input() {
        let c = config();
        let bad = |n: NewServer| build(&n, &c, 1).unwrap_err().to_string();
        assert!(bad(new("Bad Name", &[])).contains("server name"));
        assert!(bad(new("admin", &[])).contains("reserved"));
        assert!(bad(new("n", &[("a", &["x"]), ("a", &["y"])])).contains("twice"));
        assert!(bad(new("n", &[("a", &["x"]), ("b", &["x"])])).contains("two groups"));
        assert!(bad(new("n", &[("bad\"scope", &["x"])])).contains("not a valid OAuth scope"));
        assert!(bad(new("n", &[("admin:write", &["x"])])).contains("reserved"));
        assert!(bad(new("n", &[("a", &[])])).contains("at least one tool"));
        let mut n = new("n", &[]);
        n.canonical_uri = Some("https://x.example/mcp#frag".into());
        assert!(bad(n).contains("fragment"));
        let mut n = new("n", &[]);
        n.canonical_uri = Some("http://127.0.0.1:8080/admin".into());
        assert!(bad(n).contains("reserved"));
        let mut n = new("n", &[]);
        n.leeway_secs = Some(301);
        assert!(bad(n).contains("leeway"));
        let mut n = new("n", &[]);
        n.access_token_ttl_secs = Some(3_601);
        assert!(bad(n).contains("max_access_token_ttl"));
        let mut n = new("n", &[]);
        n.upstream = "ftp://x".into();
        assert!(bad(n).contains("http(s)"));
    }
}
