//! `warden server …`: the registry of MCP servers.

use std::path::PathBuf;

use anyhow::{anyhow, bail};
use clap::Subcommand;
use serde_json::{Map, Value};
use warden_core::config::Config;
use warden_core::keys::Sealer;
use warden_core::scope::valid_token;
use warden_core::secret::SecretString;
use warden_core::uri::CanonicalUri;
use warden_proto::admin::{ServerView, ToolGroupView};
use warden_store::{ServerRecord, ServerStore, StoreError, ToolGroup};

use crate::{datadir, output, Common};

/// `warden server` subcommands.
#[derive(Subcommand, Debug)]
pub enum ServerCmd {
    /// Register an MCP server behind the gateway.
    Add(Box<AddArgs>),
    /// List registered servers.
    List,
    /// Show one server.
    Show {
        /// The server's name.
        name: String,
    },
    /// Remove a server.
    Remove {
        /// The server's name.
        name: String,
    },
}

/// Arguments of `warden server add`.
#[derive(clap::Args, Debug)]
pub struct AddArgs {
    /// Name: lowercase letters, digits, `-` and `_`; it becomes the path `/mcp/NAME`.
    pub name: String,
    /// The upstream MCP endpoint (Streamable HTTP URL).
    #[arg(long)]
    pub upstream: String,
    /// A tool group: `SCOPE=TOOL[,TOOL…]`. Repeatable.
    #[arg(long = "scope", value_name = "SCOPE=TOOLS")]
    pub scopes: Vec<String>,
    /// The canonical URI (default `{public_url}/mcp/{name}`).
    #[arg(long)]
    pub canonical_uri: Option<String>,
    /// Access-token lifetime for this server, e.g. `15m` (default from config).
    #[arg(long)]
    pub token_ttl: Option<String>,
    /// Clock-skew leeway for this server, `0s`..`300s` (default from config).
    #[arg(long)]
    pub leeway: Option<String>,
    /// Where this server's tokens come from.
    #[command(flatten)]
    pub issuer: IssuerArgs,
    /// How the upstream is reached.
    #[command(flatten)]
    pub connection: UpstreamArgs,
}

/// Where a server's tokens come from: this Warden (the default) or the organisation's own
/// authorization server.
#[derive(clap::Args, Debug, Default)]
pub struct IssuerArgs {
    /// The issuer of this server's tokens when it is not this Warden (your Keycloak,
    /// Okta, Entra…): JWTs are checked with its JWKS (discovered from its metadata),
    /// opaque tokens by introspection.
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// The tokens' format: `jwt` (the default) or `opaque`.
    #[arg(long, value_name = "jwt|opaque", value_parser = ["jwt", "opaque"])]
    pub token_format: Option<String>,
    /// With an external issuer: also accept JWT access tokens whose `typ` is `JWT` (or
    /// absent), as many IdPs issue, besides `at+jwt`.
    #[arg(long)]
    pub accept_jwt_typ: bool,
    /// With an external issuer and opaque tokens: its RFC 7662 introspection endpoint.
    #[arg(long, value_name = "URL")]
    pub introspection_endpoint: Option<String>,
    /// Warden's client id at the introspection endpoint.
    #[arg(long, value_name = "ID")]
    pub introspection_client_id: Option<String>,
    /// Read that client's secret from stdin (one line). It is sealed with the master key
    /// before it is stored, and is never taken from the command line.
    #[arg(long)]
    pub introspection_client_secret_stdin: bool,
    /// Accept introspection answers that carry no `aud` (some IdPs omit it). By default
    /// they are refused.
    #[arg(long)]
    pub introspection_allow_missing_aud: bool,
    /// PEM file of the CA(s) that issued the external issuer's certificate; it replaces
    /// the public roots for this server's issuer.
    #[arg(long, value_name = "FILE")]
    pub issuer_ca: Option<PathBuf>,
}

/// How the upstream is reached.
#[derive(clap::Args, Debug, Default)]
pub struct UpstreamArgs {
    /// PEM file of the CA(s) that issued an `https` upstream's certificate; it replaces
    /// the public roots for this upstream.
    #[arg(long, value_name = "FILE")]
    pub upstream_ca: Option<PathBuf>,
    /// The upstream's transport: `streamable-http`, or `sse` for the legacy HTTP+SSE
    /// transport (the default when the upstream's path ends in `/sse`).
    #[arg(long, value_name = "streamable-http|sse", value_parser = ["streamable-http", "sse"])]
    pub transport: Option<String>,
}

/// Checks a server name.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if !ok {
        bail!("server name {name:?} must be 1-63 of a-z 0-9 - _ and start with a letter or digit");
    }
    Ok(())
}

/// Parses `SCOPE=TOOL,TOOL`.
pub fn parse_group(text: &str) -> anyhow::Result<ToolGroup> {
    let (scope, tools) = text
        .split_once('=')
        .ok_or_else(|| anyhow!("--scope {text:?}: expected SCOPE=TOOL[,TOOL…]"))?;
    if !valid_token(scope) {
        bail!("--scope {text:?}: {scope:?} is not a valid OAuth scope");
    }
    let tools: Vec<String> = tools
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if tools.is_empty() {
        bail!("--scope {text:?}: name at least one tool");
    }
    Ok(ToolGroup {
        scope: scope.to_owned(),
        tools,
    })
}

fn read_pem(path: &PathBuf, flag: &str) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow!("--{flag} {}: {e}", path.display()))?;
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        bail!(
            "--{flag} {}: no PEM certificate in the file",
            path.display()
        );
    }
    Ok(text)
}

/// The token-source part of a registration: `(issuer, token_format)`, with the settings
/// it needs written into `settings`. The introspection secret is added by
/// [`finish_record`].
fn token_source(
    args: &IssuerArgs,
    settings: &mut Map<String, Value>,
) -> anyhow::Result<(Option<String>, String)> {
    let format = args.token_format.clone().unwrap_or_else(|| "jwt".into());
    let introspection = args.introspection_endpoint.is_some()
        || args.introspection_client_id.is_some()
        || args.introspection_client_secret_stdin
        || args.introspection_allow_missing_aud;
    let Some(issuer) = &args.issuer else {
        if introspection || args.accept_jwt_typ || args.issuer_ca.is_some() {
            bail!("--introspection-*, --accept-jwt-typ and --issuer-ca need --issuer (an external issuer)");
        }
        return Ok((None, format));
    };
    warden_server::gateway::external::check_idp_url(issuer, "--issuer").map_err(|e| anyhow!(e))?;
    if let Some(path) = &args.issuer_ca {
        settings.insert(
            "issuer_ca".into(),
            Value::String(read_pem(path, "issuer-ca")?),
        );
    }
    if format == "jwt" {
        if introspection {
            bail!("--introspection-* apply to --token-format opaque");
        }
        if args.accept_jwt_typ {
            settings.insert("accept_jwt_typ".into(), Value::Bool(true));
        }
        return Ok((Some(issuer.clone()), format));
    }
    if args.accept_jwt_typ {
        bail!("--accept-jwt-typ applies to --token-format jwt");
    }
    let (Some(endpoint), Some(client_id), true) = (
        &args.introspection_endpoint,
        &args.introspection_client_id,
        args.introspection_client_secret_stdin,
    ) else {
        bail!(
            "opaque tokens from an external issuer need --introspection-endpoint, \
             --introspection-client-id and --introspection-client-secret-stdin"
        );
    };
    warden_server::gateway::external::check_idp_url(endpoint, "--introspection-endpoint")
        .map_err(|e| anyhow!(e))?;
    if client_id.is_empty() {
        bail!("--introspection-client-id must not be empty");
    }
    settings.insert(
        "introspection_endpoint".into(),
        Value::String(endpoint.clone()),
    );
    settings.insert(
        "introspection_client_id".into(),
        Value::String(client_id.clone()),
    );
    if args.introspection_allow_missing_aud {
        settings.insert("introspection_requires_aud".into(), Value::Bool(false));
    }
    Ok((Some(issuer.clone()), format))
}

/// Reads a secret from the first line of stdin.
pub fn read_secret_line(what: &str) -> anyhow::Result<SecretString> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| anyhow!("cannot read {what} from stdin: {e}"))?;
    let secret = SecretString::new(line.trim_end_matches(['\r', '\n']));
    line.clear();
    if secret.expose().is_empty() {
        bail!("{what} on stdin is empty");
    }
    Ok(secret)
}

/// Seals the introspection client secret into `rec`, then checks the whole registration
/// the way the gateway will compile it, so a bad one is refused now, not at first use.
pub fn finish_record(
    rec: &mut ServerRecord,
    secret: Option<&SecretString>,
    config: &Config,
    sealer: &Sealer,
) -> anyhow::Result<()> {
    if let Some(secret) = secret {
        let sealed =
            warden_server::gateway::external::seal_secret(sealer, &rec.name, secret.expose())
                .map_err(|e| anyhow!(e))?;
        if let Some(settings) = rec.settings.as_object_mut() {
            settings.insert("introspection_client_secret".into(), sealed);
        }
    }
    warden_server::gateway::registry::Protected::compile(rec, config, sealer)
        .map(drop)
        .map_err(|e| anyhow!("invalid registration: {e}"))
}

fn validate_upstream(text: &str) -> anyhow::Result<()> {
    let url =
        url::Url::parse(text).map_err(|_| anyhow!("--upstream {text:?} is not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!("--upstream must be an http(s) URL");
    }
    if !url.username().is_empty() || url.password().is_some() {
        bail!("--upstream must not embed credentials");
    }
    Ok(())
}

/// Builds a validated registration.
pub fn build_record(
    args: &AddArgs,
    public_url: &str,
    default_ttl: i64,
    default_leeway: i64,
    now: i64,
) -> anyhow::Result<ServerRecord> {
    validate_name(&args.name)?;
    validate_upstream(&args.upstream)?;
    let uri_text = args
        .canonical_uri
        .clone()
        .unwrap_or_else(|| format!("{public_url}/mcp/{}", args.name));
    let canonical =
        CanonicalUri::parse(&uri_text).map_err(|e| anyhow!("canonical URI {uri_text:?}: {e}"))?;
    let mut groups: Vec<ToolGroup> = Vec::new();
    for g in &args.scopes {
        let g = parse_group(g)?;
        if groups.iter().any(|x| x.scope == g.scope) {
            bail!("scope {} is given twice", g.scope);
        }
        if let Some(t) = g
            .tools
            .iter()
            .find(|t| groups.iter().any(|x| x.tools.contains(t)))
        {
            bail!("tool {t} is in two groups; a tool belongs to one scope");
        }
        groups.push(g);
    }
    let mut settings = Map::new();
    let (issuer, token_format) = token_source(&args.issuer, &mut settings)?;
    if let Some(path) = &args.connection.upstream_ca {
        if !args.upstream.starts_with("https://") {
            bail!("--upstream-ca applies to an https upstream");
        }
        settings.insert(
            "upstream_ca".into(),
            Value::String(read_pem(path, "upstream-ca")?),
        );
    }
    if let Some(transport) = &args.connection.transport {
        settings.insert("transport".into(), Value::String(transport.clone()));
    }
    let dur = |v: &Option<String>,
               d: i64,
               key: &str,
               range: std::ops::RangeInclusive<i64>|
     -> anyhow::Result<i64> {
        let secs = match v {
            Some(t) => {
                warden_core::config::parse_duration(t).map_err(|m| anyhow!("--{key}: {m}"))?
            }
            None => d,
        };
        if !range.contains(&secs) {
            bail!(
                "--{key} must be between {}s and {}s",
                range.start(),
                range.end()
            );
        }
        Ok(secs)
    };
    Ok(ServerRecord {
        name: args.name.clone(),
        canonical_uri: canonical.as_str().to_owned(),
        upstream: args.upstream.clone(),
        tool_groups: groups,
        token_format,
        access_token_ttl_secs: dur(&args.token_ttl, default_ttl, "token-ttl", 30..=86_400)?,
        leeway_secs: dur(&args.leeway, default_leeway, "leeway", 0..=300)?,
        issuer,
        settings: Value::Object(settings),
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

/// Registers a server, mapping a duplicate to a clear message.
pub async fn add(store: &warden_store::Store, rec: &ServerRecord) -> anyhow::Result<()> {
    match ServerStore::create(store, rec).await {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict(what)) => bail!("a server with this {what} is already registered"),
        Err(e) => Err(anyhow!("cannot register the server: {e}")),
    }
}

fn print_one(v: &ServerView) {
    println!("name           {}", v.name);
    println!("canonical uri  {}", v.canonical_uri);
    println!("upstream       {}", v.upstream);
    println!("token format   {}", v.token_format);
    println!("token ttl      {}s", v.access_token_ttl_secs);
    println!("leeway         {}s", v.leeway_secs);
    println!("created        {}", output::time(v.created_at));
    for g in &v.tool_groups {
        println!("scope          {} = {}", g.scope, g.tools.join(", "));
    }
}

/// Runs a `warden server` subcommand.
pub async fn run(common: &Common, cmd: ServerCmd) -> anyhow::Result<()> {
    let o = datadir::open(&common.data_dir).await?;
    let store = &o.store;
    match cmd {
        ServerCmd::Add(args) => {
            let mut rec = build_record(
                &args,
                &o.config.public_url,
                o.config.tokens.access_token_ttl,
                o.config.gateway.leeway,
                o.clock.now(),
            )?;
            let secret = if args.issuer.introspection_client_secret_stdin {
                Some(read_secret_line("the introspection client secret")?)
            } else {
                None
            };
            finish_record(&mut rec, secret.as_ref(), &o.config, &o.master.sealer())?;
            add(store, &rec).await?;
            if common.json {
                output::json(&view(&rec))?;
            } else {
                println!("Registered {} at {}", rec.name, rec.canonical_uri);
            }
        }
        ServerCmd::List => {
            let all: Vec<ServerView> = ServerStore::list(store).await?.iter().map(view).collect();
            if common.json {
                output::json(&all)?;
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|s| {
                        let scopes: Vec<&str> =
                            s.tool_groups.iter().map(|g| g.scope.as_str()).collect();
                        vec![
                            s.name.clone(),
                            s.canonical_uri.clone(),
                            s.upstream.clone(),
                            scopes.join(" "),
                        ]
                    })
                    .collect();
                output::table(&["NAME", "CANONICAL URI", "UPSTREAM", "SCOPES"], &rows);
            }
        }
        ServerCmd::Show { name } => {
            let rec = ServerStore::get(store, &name)
                .await?
                .ok_or_else(|| anyhow!("no server named {name:?}"))?;
            if common.json {
                output::json(&view(&rec))?;
            } else {
                print_one(&view(&rec));
            }
        }
        ServerCmd::Remove { name } => {
            if !ServerStore::delete(store, &name).await? {
                bail!("no server named {name:?}");
            }
            if common.json {
                output::json(&serde_json::json!({ "removed": name }))?;
            } else {
                println!("Removed {name}");
            }
        }
    }
    o.store.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(name: &str, scopes: &[&str]) -> AddArgs {
        AddArgs {
            name: name.into(),
            upstream: "http://127.0.0.1:9000/mcp".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            canonical_uri: None,
            token_ttl: None,
            leeway: None,
            issuer: IssuerArgs::default(),
            connection: UpstreamArgs::default(),
        }
    }

    #[test]
    fn builds_the_default_canonical_uri_and_groups() {
        let r = build_record(
            &args("notes", &["notes:read=a,b", "notes:write=c"]),
            "http://127.0.0.1:8080",
            900,
            30,
            1,
        )
        .unwrap();
        assert_eq!(r.canonical_uri, "http://127.0.0.1:8080/mcp/notes");
        assert_eq!(r.tool_groups.len(), 2);
        assert_eq!(r.tool_groups[0].tools, ["a", "b"]);
    }

    #[test]
    fn refuses_bad_input() {
        let base = "http://127.0.0.1:8080";
        assert!(build_record(&args("Bad Name", &[]), base, 900, 30, 1).is_err());
        assert!(build_record(&args("n", &["noequals"]), base, 900, 30, 1).is_err());
        assert!(build_record(&args("n", &["a=x", "a=y"]), base, 900, 30, 1).is_err());
        assert!(build_record(&args("n", &["a=x", "b=x"]), base, 900, 30, 1).is_err());
        assert!(build_record(&args("n", &["bad\"scope=x"]), base, 900, 30, 1).is_err());
        let mut a = args("n", &[]);
        a.canonical_uri = Some("https://x.example/mcp#frag".into());
        assert!(build_record(&a, base, 900, 30, 1).is_err());
        let mut a = args("n", &[]);
        a.leeway = Some("301s".into());
        assert!(build_record(&a, base, 900, 30, 1).is_err());
        let mut a = args("n", &[]);
        a.upstream = "ftp://x".into();
        assert!(build_record(&a, base, 900, 30, 1).is_err());
    }

    fn external(f: impl FnOnce(&mut IssuerArgs)) -> anyhow::Result<ServerRecord> {
        let mut a = args("n", &[]);
        a.issuer.issuer = Some("https://idp.example/realms/acme".into());
        f(&mut a.issuer);
        build_record(&a, "http://127.0.0.1:8080", 900, 30, 1)
    }

    fn opaque(i: &mut IssuerArgs) {
        i.token_format = Some("opaque".into());
        i.introspection_endpoint = Some("https://idp.example/introspect".into());
        i.introspection_client_id = Some("warden".into());
        i.introspection_client_secret_stdin = true;
    }

    #[test]
    fn external_issuers_are_validated() {
        let r = external(|i| i.accept_jwt_typ = true).unwrap();
        assert_eq!(r.issuer.as_deref(), Some("https://idp.example/realms/acme"));
        assert_eq!(r.token_format, "jwt");
        assert_eq!(r.settings["accept_jwt_typ"], true);

        let r = external(opaque).unwrap();
        assert_eq!(r.token_format, "opaque");
        assert_eq!(
            r.settings["introspection_endpoint"],
            "https://idp.example/introspect"
        );
        assert!(r.settings.get("introspection_client_secret").is_none());

        // Opaque without the introspection settings, or with the secret not from stdin.
        assert!(external(|i| i.token_format = Some("opaque".into())).is_err());
        assert!(external(|i| {
            opaque(i);
            i.introspection_client_secret_stdin = false;
        })
        .is_err());
        // Introspection settings with JWTs; a plain-http issuer; flags without an issuer.
        assert!(external(|i| i.introspection_client_id = Some("w".into())).is_err());
        assert!(external(|i| i.issuer = Some("http://idp.example".into())).is_err());
        let mut a = args("n", &[]);
        a.issuer.accept_jwt_typ = true;
        assert!(build_record(&a, "http://127.0.0.1:8080", 900, 30, 1).is_err());
    }

    #[test]
    fn the_introspection_secret_is_sealed_and_the_record_compiled() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(
            &Config::template("http://127.0.0.1:8080"),
            std::iter::empty(),
            dir.path(),
        )
        .unwrap();
        let master = warden_core::keys::MasterKey::generate().unwrap();
        let mut r = external(opaque).unwrap();
        let secret = SecretString::new("idp-s3cret");
        finish_record(&mut r, Some(&secret), &config, &master.sealer()).unwrap();
        let stored = r.settings.to_string();
        assert!(
            stored.contains("sealed") && !stored.contains("idp-s3cret"),
            "{stored}"
        );
        // Without the secret the registration does not compile.
        let mut bare = external(opaque).unwrap();
        assert!(finish_record(&mut bare, None, &config, &master.sealer()).is_err());
    }

    #[test]
    fn upstream_options() {
        let mut a = args("n", &[]);
        a.connection.transport = Some("sse".into());
        let r = build_record(&a, "http://127.0.0.1:8080", 900, 30, 1).unwrap();
        assert_eq!(r.settings["transport"], "sse");
        let mut a = args("n", &[]);
        a.connection.upstream_ca = Some("/nonexistent.pem".into());
        assert!(
            build_record(&a, "http://127.0.0.1:8080", 900, 30, 1).is_err(),
            "http upstream"
        );
    }
}
