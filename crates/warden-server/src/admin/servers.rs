//! The server registry through the admin API: `/admin/v1/servers`.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing;
use axum::{Extension, Json, Router};
use serde_json::json;
use serde_json::{Map, Value};
use warden_core::config::Config;
use warden_core::keys::Sealer;
use warden_core::scope::valid_token;
use warden_core::server_settings::{Credential, ServerSettings, TokenFormat, UpstreamAuthMode};
use warden_core::uri::CanonicalUri;
use warden_proto::admin::{NewServer, Removed, ServerUpdate, ServerView, ToolGroupView};
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
    if !warden_core::idp::valid_name(name) {
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

/// The prefix of a stdio upstream: `stdio:<command line>`, a process the gateway runs.
pub const STDIO_PREFIX: &str = "stdio:";

fn validate_upstream(text: &str) -> Result<(), AdminError> {
    if let Some(command) = text.strip_prefix(STDIO_PREFIX) {
        // The command line itself is checked when the registration is compiled.
        if command.trim().is_empty() {
            return Err(invalid(
                "a stdio upstream needs a command: stdio:COMMAND [ARGS]",
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

/// Why a registration needs a tool group: a server that defines no scope is one no
/// client can be granted a token for (every request for it gets `invalid_scope`).
const NO_SCOPE: &str = "a server needs at least one tool group (a scope and the tools it \
     grants, e.g. `--scope notes:read=search,read`): with none, no client can get a token \
     for it";

/// Validates a registration against the config's policy and builds its record, with
/// every credential setting sealed and the whole registration compiled the way the
/// gateway will compile it, so a bad one is refused now rather than at first use.
pub fn build_sealed(
    new: &NewServer,
    config: &Config,
    sealer: &Sealer,
    now: i64,
) -> Result<ServerRecord, AdminError> {
    build_keeping(new, None, config, sealer, now)
}

/// [`build_sealed`], keeping an already sealed introspection secret when `new` brings
/// none (an update that does not change it).
fn build_keeping(
    new: &NewServer,
    sealed: Option<Value>,
    config: &Config,
    sealer: &Sealer,
    now: i64,
) -> Result<ServerRecord, AdminError> {
    let mut rec = build(new, config, now)?;
    if let Some(format) = &new.token_format {
        let format: TokenFormat = format
            .parse()
            .map_err(|_| invalid("token_format must be jwt or opaque"))?;
        rec.token_format = format.as_str().to_owned();
    }
    if let Some(issuer) = &new.issuer {
        if issuer != &config.issuer {
            crate::issuer::check_idp_url(issuer, "issuer").map_err(invalid)?;
        }
        rec.issuer = Some(issuer.clone());
    }
    // The settings a registration may carry are the fields of `ServerSettings`, less the
    // internal ones.
    let mut settings = match &new.settings {
        Some(map) => {
            if let Some(k) = map.keys().find(|k| ServerSettings::is_internal(k)) {
                return Err(invalid(format!(
                    "setting {k:?} cannot be set here{}",
                    if k == "introspection_client_secret" {
                        ": give it as the introspection_client_secret field, to be sealed"
                    } else {
                        ""
                    }
                )));
            }
            ServerSettings::parse_map(map).map_err(invalid)?
        }
        None => ServerSettings::default(),
    };
    settings.introspection_client_secret = match (&new.introspection_client_secret, sealed) {
        (Some(secret), _) => Some(Credential::clear(secret.clone())),
        (None, Some(kept)) => Some(
            serde_json::from_value(kept)
                .map_err(|_| invalid("the stored introspection client secret does not parse"))?,
        ),
        (None, None) => None,
    };
    settings
        .seal_credentials(sealer, &rec.name)
        .map_err(invalid)?;
    rec.settings = settings.to_value();
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
        issuer: r.issuer.clone(),
        // Credentials are shown as "set"; a record whose settings no longer parse shows
        // none (the gateway refuses it, and logs why).
        settings: ServerSettings::parse(&r.settings)
            .map(|s| s.redacted())
            .unwrap_or_default(),
        created_at: r.created_at,
    }
}

/// The registration request that `rec` stands for with `patch` applied, and the sealed
/// introspection secret to keep if the patch brings no new one.
fn patched(rec: &ServerRecord, patch: &ServerUpdate) -> (NewServer, Option<Value>) {
    let mut settings: Map<String, Value> = rec.settings.as_object().cloned().unwrap_or_default();
    let mut sealed = settings.remove("introspection_client_secret");
    let issuer = match &patch.issuer {
        None => rec.issuer.clone(),
        Some(None) => {
            ServerSettings::clear_external(&mut settings);
            sealed = None;
            None
        }
        Some(Some(issuer)) => Some(issuer.clone()),
    };
    if let Some(mode) = patch.settings.as_ref().and_then(|s| s.get("upstream_auth")) {
        // Leaving the token modes drops Warden's client at the upstream's authorization
        // server, unless the same patch sets it again (which the checks then refuse).
        let token_mode = mode
            .as_str()
            .and_then(|m| m.parse::<UpstreamAuthMode>().ok())
            .is_some_and(UpstreamAuthMode::uses_upstream_as);
        if !token_mode {
            ServerSettings::clear_upstream_client(&mut settings);
        }
    }
    for (k, v) in patch.settings.iter().flatten() {
        if v.is_null() {
            settings.remove(k);
        } else {
            settings.insert(k.clone(), v.clone());
        }
    }
    let groups = || {
        rec.tool_groups
            .iter()
            .map(|g| ToolGroupView {
                scope: g.scope.clone(),
                tools: g.tools.clone(),
            })
            .collect()
    };
    let new = NewServer {
        name: rec.name.clone(),
        upstream: patch
            .upstream
            .clone()
            .unwrap_or_else(|| rec.upstream.clone()),
        canonical_uri: Some(
            patch
                .canonical_uri
                .clone()
                .unwrap_or_else(|| rec.canonical_uri.clone()),
        ),
        tool_groups: patch.tool_groups.clone().unwrap_or_else(groups),
        access_token_ttl_secs: Some(
            patch
                .access_token_ttl_secs
                .unwrap_or(rec.access_token_ttl_secs),
        ),
        leeway_secs: Some(patch.leeway_secs.unwrap_or(rec.leeway_secs)),
        issuer,
        token_format: Some(
            patch
                .token_format
                .clone()
                .unwrap_or_else(|| rec.token_format.clone()),
        ),
        settings: Some(settings),
        introspection_client_secret: patch.introspection_client_secret.clone(),
    };
    (new, sealed)
}

/// Changes some fields of a registered server. The result is validated exactly like a
/// registration (canonical URI, uniqueness, scopes, lifetime, leeway, issuer, settings),
/// and refused if the policy grants a scope it would no longer define; on any refusal
/// nothing changes. Safe against concurrent updates: one that lost a race is re-applied
/// to the fresh record.
pub async fn update(
    app: &App,
    actor: &Actor,
    name: &str,
    patch: &ServerUpdate,
) -> Result<ServerView, AdminError> {
    for _attempt in 0..3 {
        let old = find(app, name).await?;
        if is_builtin(&old) {
            return Err(invalid(
                "the admin resource is built in: its settings follow the config",
            ));
        }
        local_only_stdio(actor, &old)?;
        if patch.tool_groups.as_ref().is_some_and(Vec::is_empty) {
            return Err(invalid(NO_SCOPE));
        }
        let (new, sealed) = patched(&old, patch);
        let now = app.clock.now();
        let mut rec = build_keeping(&new, sealed, &app.config, &app.sealer, now)?;
        local_only_stdio(actor, &rec)?;
        rec.created_at = old.created_at;
        rec.updated_at = old.updated_at;
        if rec == old {
            // Nothing to write, and nothing to audit.
            return Ok(view(&old));
        }
        let changed = changes(&old, &rec);
        rec.updated_at = now.max(old.updated_at + 1);
        super::policy::check_server_scopes(app, &rec).await?;
        match ServerStore::update_if_unchanged(&app.store, &rec, old.updated_at).await {
            Ok(()) => {}
            Err(StoreError::Conflict(what)) if what.contains("changed concurrently") => continue,
            Err(StoreError::Conflict(what)) => {
                return Err(AdminError::Conflict(
                    format!("a server with this {what} is already registered").into(),
                ))
            }
            Err(StoreError::NotFound) => {
                return Err(AdminError::NotFound(
                    format!("no server named {name:?}").into(),
                ))
            }
            Err(e) => return Err(e.into()),
        }
        // After the write, so a read racing it cannot re-cache the old registration.
        app.servers_by_uri.clear();
        app.gateway.registry.invalidate(&rec.name);
        audit(
            app,
            actor,
            "server.updated",
            Subjects {
                server: Some(rec.name.clone()),
                ..Default::default()
            },
            json!({ "changes": changed }),
        )
        .await?;
        return Ok(view(&rec));
    }
    Err(AdminError::Conflict(
        "the server kept changing while this update was applied; try again".into(),
    ))
}

/// What an update changed, for the audit log: field names with old and new values,
/// never a setting's value (a setting may carry a credential).
fn changes(old: &ServerRecord, new: &ServerRecord) -> Value {
    let scopes = |r: &ServerRecord| -> Vec<String> {
        r.tool_groups.iter().map(|g| g.scope.clone()).collect()
    };
    let fields = [
        (
            "canonical_uri",
            json!(old.canonical_uri),
            json!(new.canonical_uri),
        ),
        ("upstream", json!(old.upstream), json!(new.upstream)),
        (
            "tool_groups",
            json!(old.tool_groups),
            json!(new.tool_groups),
        ),
        (
            "token_format",
            json!(old.token_format),
            json!(new.token_format),
        ),
        (
            "access_token_ttl_secs",
            json!(old.access_token_ttl_secs),
            json!(new.access_token_ttl_secs),
        ),
        (
            "leeway_secs",
            json!(old.leeway_secs),
            json!(new.leeway_secs),
        ),
        ("issuer", json!(old.issuer), json!(new.issuer)),
    ];
    let mut out = Map::new();
    for (k, a, b) in fields {
        if a == b {
            continue;
        }
        // Tool groups are summarised by their scopes.
        let (a, b) = if k == "tool_groups" {
            (json!(scopes(old)), json!(scopes(new)))
        } else {
            (a, b)
        };
        out.insert(k.to_owned(), json!({ "from": a, "to": b }));
    }
    let empty = Map::new();
    let (a, b) = (
        old.settings.as_object().unwrap_or(&empty),
        new.settings.as_object().unwrap_or(&empty),
    );
    let mut changed: Vec<&str> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .map(String::as_str)
        .collect();
    changed.sort_unstable();
    changed.dedup();
    if !changed.is_empty() {
        out.insert("settings".into(), json!(changed));
    }
    Value::Object(out)
}

/// Refuses a stdio server to anyone but the local CLI: its upstream and `env` are a
/// command line and environment Warden runs on its own host, so only someone who holds
/// the data dir (and could run anything there anyway) may set them. An admin client may
/// still read and remove one.
fn local_only_stdio(actor: &Actor, rec: &ServerRecord) -> Result<(), AdminError> {
    if matches!(actor, Actor::Local) || !rec.upstream.starts_with(STDIO_PREFIX) {
        return Ok(());
    }
    Err(invalid(format!(
        "server {:?} has a stdio upstream, a command Warden runs on its own host: register or change it with the CLI on the data dir, not through the admin API",
        rec.name
    )))
}

/// Registers a server.
pub async fn create(app: &App, actor: &Actor, new: &NewServer) -> Result<ServerView, AdminError> {
    let rec = build_sealed(new, &app.config, &app.sealer, app.clock.now())?;
    if rec.tool_groups.is_empty() {
        return Err(invalid(NO_SCOPE));
    }
    local_only_stdio(actor, &rec)?;
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
    super::policy::check_server_removal(app, name).await?;
    let deleted = ServerStore::delete(&app.store, name).await?;
    app.servers_by_uri.clear();
    app.gateway.registry.invalidate(name);
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
async fn update_h(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<ServerView>, AdminError> {
    let patch: ServerUpdate = parse_body(&body)?;
    update(&app, &Actor::Client(caller.client_id), &name, &patch)
        .await
        .map(Json)
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
            routing::get(get_h).patch(update_h).delete(remove_h),
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
        let mut n = new("n", &[]);
        n.upstream = "stdio:  ".into();
        assert!(bad(n).contains("needs a command"));
    }

    #[test]
    fn a_stdio_upstream_is_registered_by_the_local_cli_only() {
        let c = config();
        let sealer = warden_core::keys::MasterKey::generate().unwrap().sealer();
        let mut n = new("tool", &[("tool:use", &["echo"])]);
        n.upstream = "stdio:python3 -u server.py --flag 'a b'".into();
        let mut settings = Map::new();
        settings.insert("env".into(), json!({ "MODE": "demo" }));
        n.settings = Some(settings);
        let rec = build_sealed(&n, &c, &sealer, 1).unwrap();
        assert!(local_only_stdio(&Actor::Local, &rec).is_ok());
        let e = local_only_stdio(&Actor::Client("c".into()), &rec).unwrap_err();
        assert!(e.to_string().contains("CLI on the data dir"), "{e}");
        let mut http = new("web", &[]);
        http.upstream = "http://127.0.0.1:9000/mcp".into();
        let rec = build_sealed(&http, &c, &sealer, 1).unwrap();
        assert!(local_only_stdio(&Actor::Client("c".into()), &rec).is_ok());
        n.settings = Some(Map::from_iter([("env".to_owned(), json!("x"))]));
        assert!(build_sealed(&n, &c, &sealer, 1)
            .unwrap_err()
            .to_string()
            .contains("settings.env"));
    }
}
