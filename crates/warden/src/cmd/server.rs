//! `warden server …`: the registry of MCP servers.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail};
use clap::Subcommand;
use serde_json::{Map, Value};
use warden_core::secret::SecretString;
use warden_core::server_settings::{Credential, ServerSettings, Unmapped, UpstreamAuthMode};
use warden_proto::admin::{NewServer, ServerUpdate, ServerView, ToolGroupView};

use crate::admin::with_admin;
use crate::{output, Common};

/// `warden server` subcommands.
#[derive(Subcommand, Debug)]
pub enum ServerCmd {
    /// Register an MCP server behind the gateway.
    ///
    /// Every tool, resource and prompt the upstream offers needs a scope: `--scope
    /// SCOPE=ENTRY[,ENTRY…]` maps entries to a scope, where an entry is a tool name, a
    /// tool-name prefix ending in `*` (`notes_*`), `resource:URI-PREFIX`
    /// (`resource:note://`) or `prompt:NAME`. Anything no `--scope` maps is denied and
    /// hidden from lists, unless `--unmapped-tools allow` (or `--unmapped-resources`,
    /// `--unmapped-prompts`) lets any valid token for the server use it. At least one
    /// `--scope` is required: with none, no client can get a token for the server.
    ///
    /// Credentials for the upstream (`--static-header`, `--env`,
    /// `--upstream-client-secret-stdin`) are sealed with the master key before they are
    /// stored, and shown back only as "set". Pass a secret with `--static-header-stdin
    /// NAME` rather than on the command line, where it would land in the shell's history.
    ///
    /// `--upstream-auth` says what the upstream receives: `assertion` (the default),
    /// `static`, or a token from the upstream's own authorization server,
    /// `client-credentials` (Warden's own) or `token-exchange` (the user's), e.g.
    ///
    ///     echo "$SECRET" | warden server add crm --upstream https://crm.example/mcp \
    ///         --scope crm:read=search --upstream-auth client-credentials \
    ///         --upstream-client-id warden --upstream-client-secret-stdin \
    ///         --upstream-scope crm.read
    #[command(verbatim_doc_comment)]
    Add(Box<AddArgs>),
    /// List registered servers (the built-in `admin` resource included).
    List,
    /// Show one server.
    Show {
        /// The server's name.
        name: String,
    },
    /// Change a registered server: only the fields given change, and the result is
    /// checked like a registration (a scope the policy grants cannot be dropped).
    ///
    /// `--scope` replaces every tool group (entries as for `add`: `tool`, `prefix*`,
    /// `resource:URI-PREFIX`, `prompt:NAME`; anything unmapped is denied and hidden unless
    /// `--unmapped-tools`/`--unmapped-resources`/`--unmapped-prompts allow`). A repeatable
    /// setting (`--static-header`, `--env`, `--allowed-origin`) replaces the whole list;
    /// `--unset SETTING` removes one setting.
    #[command(verbatim_doc_comment)]
    Update(Box<UpdateArgs>),
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
    /// The upstream MCP endpoint: a Streamable HTTP (or legacy SSE) URL, or
    /// `stdio:COMMAND [ARGS]` for a stdio server the gateway runs per session (on the data
    /// dir only: the admin API refuses to register a command).
    #[arg(long)]
    pub upstream: String,
    /// A tool group: `SCOPE=ENTRY[,ENTRY…]`, an entry being a tool name, a tool-name
    /// prefix ending in `*`, `resource:URI-PREFIX` or `prompt:NAME`. Repeatable; at least
    /// one is required. Anything no group maps is denied (see `--unmapped-tools`).
    #[arg(long = "scope", value_name = "SCOPE=TOOLS")]
    pub scopes: Vec<String>,
    /// The canonical URI (default `{public_url}/mcp/{name}`).
    #[arg(long)]
    pub canonical_uri: Option<String>,
    /// Access-token lifetime for this server, e.g. `15m` (default from config, at most
    /// `tokens.max_access_token_ttl`).
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
    /// The other per-server settings.
    #[command(flatten)]
    pub settings: SettingArgs,
}

/// Arguments of `warden server update`.
#[derive(clap::Args, Debug, Default)]
pub struct UpdateArgs {
    /// The server's name.
    pub name: String,
    /// A new upstream MCP endpoint.
    #[arg(long)]
    pub upstream: Option<String>,
    /// Replace every tool group: `SCOPE=ENTRY[,ENTRY…]` (entries as for `add`).
    /// Repeatable.
    #[arg(long = "scope", value_name = "SCOPE=TOOLS")]
    pub scopes: Vec<String>,
    /// A new canonical URI (still unique across the fleet).
    #[arg(long)]
    pub canonical_uri: Option<String>,
    /// A new access-token lifetime, e.g. `10m`.
    #[arg(long)]
    pub token_ttl: Option<String>,
    /// A new clock-skew leeway, `0s`..`300s`.
    #[arg(long)]
    pub leeway: Option<String>,
    /// Trust this external issuer for the server's tokens.
    #[arg(long, value_name = "URL", conflicts_with = "warden_issuer")]
    pub issuer: Option<String>,
    /// Go back to this Warden's own tokens (drops the external issuer's settings).
    #[arg(long)]
    pub warden_issuer: bool,
    /// The tokens' format: `jwt` or `opaque`.
    #[arg(long, value_name = "jwt|opaque", value_parser = ["jwt", "opaque"])]
    pub token_format: Option<String>,
    /// With an external issuer: whether JWTs with `typ: JWT` are accepted too.
    #[arg(long, value_name = "true|false")]
    pub accept_jwt_typ: Option<bool>,
    /// With an external issuer's JWTs: replace the audience names (not URLs) a token may
    /// carry besides the canonical URI. Repeatable; `--no-extra-audiences` clears them.
    #[arg(
        long = "extra-audience",
        value_name = "NAME",
        conflicts_with = "no_extra_audiences"
    )]
    pub extra_audiences: Vec<String>,
    /// Accept no audience besides the canonical URI again.
    #[arg(long)]
    pub no_extra_audiences: bool,
    /// A new RFC 7662 introspection endpoint of the external issuer.
    #[arg(long, value_name = "URL")]
    pub introspection_endpoint: Option<String>,
    /// A new client id at the introspection endpoint.
    #[arg(long, value_name = "ID")]
    pub introspection_client_id: Option<String>,
    /// Read a new introspection client secret from stdin (one line).
    #[arg(long)]
    pub introspection_client_secret_stdin: bool,
    /// PEM file of the CA(s) of the external issuer.
    #[arg(long, value_name = "FILE")]
    pub issuer_ca: Option<PathBuf>,
    /// PEM file of the CA(s) of an `https` upstream.
    #[arg(long, value_name = "FILE")]
    pub upstream_ca: Option<PathBuf>,
    /// The upstream's transport: `streamable-http` or `sse`.
    #[arg(long, value_name = "streamable-http|sse", value_parser = ["streamable-http", "sse"])]
    pub transport: Option<String>,
    /// For a stdio upstream: replace its processes' environment, `KEY=VALUE`. Repeatable.
    /// The values are sealed before they are stored.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<NamedValue>,
    /// Remove a setting (its default applies again), e.g. `--unset challenge_scope`.
    /// Repeatable.
    #[arg(long = "unset", value_name = "SETTING", value_parser = settable_name)]
    pub unset: Vec<String>,
    /// The other per-server settings.
    #[command(flatten)]
    pub settings: SettingArgs,
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
    /// With an external issuer's JWTs: an audience name (not a URL) a token may carry
    /// besides this server's canonical URI, e.g. Keycloak's `account`. Repeatable.
    #[arg(long = "extra-audience", value_name = "NAME")]
    pub extra_audiences: Vec<String>,
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
    /// For a stdio upstream: an environment variable of its processes, `KEY=VALUE`.
    /// Repeatable. The processes get nothing else of Warden's environment. The values are
    /// sealed with the master key before they are stored, and never shown back.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<NamedValue>,
}

/// The per-server settings that `add` and `update` share: one flag per field of
/// [`ServerSettings`] that no other flag group sets.
#[derive(clap::Args, Debug, Default)]
pub struct SettingArgs {
    /// A header sent to the upstream with every request (an API key, say), `NAME=VALUE`.
    /// Repeatable. The value is sealed before it is stored and never shown back; prefer
    /// `--static-header-stdin`, which keeps it out of the shell's history.
    #[arg(long = "static-header", value_name = "NAME=VALUE")]
    pub static_headers: Vec<NamedValue>,
    /// A static header whose value is read from stdin (one line, after the introspection
    /// client secret if that is read too).
    #[arg(long, value_name = "NAME")]
    pub static_header_stdin: Option<String>,
    /// How the gateway authenticates to the upstream: `assertion` (the default: Warden's
    /// signed assertion), `static` (the static headers), `client-credentials` (Warden's
    /// own token from the upstream's authorization server) or `token-exchange` (a token
    /// for the user from the upstream's authorization server, RFC 8693). The token modes
    /// need `--upstream-client-id` and `--upstream-client-secret-stdin`.
    #[arg(long, value_name = "MODE")]
    pub upstream_auth: Option<UpstreamAuthMode>,
    /// Warden's client id at the upstream's authorization server.
    #[arg(long, value_name = "ID")]
    pub upstream_client_id: Option<String>,
    /// Read that client's secret from stdin (one line, after the other secrets read from
    /// stdin). It is sealed before it is stored and never shown back.
    #[arg(long)]
    pub upstream_client_secret_stdin: bool,
    /// A scope to ask of the upstream's authorization server. Repeatable.
    #[arg(long = "upstream-scope", value_name = "SCOPE")]
    pub upstream_scopes: Vec<String>,
    /// The upstream's authorization server (its issuer URL), instead of discovering it
    /// from the upstream's protected-resource metadata.
    #[arg(long, value_name = "URL")]
    pub upstream_issuer: Option<String>,
    /// Tools that no `--scope` maps: `deny` (the default: refused, and hidden from
    /// `tools/list`) or `allow` (any valid token for the server may call them).
    #[arg(long, value_name = "allow|deny")]
    pub unmapped_tools: Option<Unmapped>,
    /// Resources that no `resource:` entry covers: `deny` (the default) or `allow`.
    #[arg(long, value_name = "allow|deny")]
    pub unmapped_resources: Option<Unmapped>,
    /// Prompts that no `prompt:` entry names: `deny` (the default) or `allow`.
    #[arg(long, value_name = "allow|deny")]
    pub unmapped_prompts: Option<Unmapped>,
    /// The `scope` the gateway's 401 challenge asks for, space-separated, e.g.
    /// `"notes:read"` (default: every scope of the server).
    #[arg(long, value_name = "SCOPES")]
    pub challenge_scope: Option<String>,
    /// Accept and issue only DPoP-bound tokens for this server (RFC 9449):
    /// `--require-dpop` or `--require-dpop true`; `--require-dpop false` turns it off.
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true")]
    pub require_dpop: Option<bool>,
    /// A browser origin allowed to call the server, besides the gateway's own and
    /// loopback, e.g. `https://app.example`. Repeatable.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// Time allowed to the upstream's response headers, e.g. `30s` (default 120s, at
    /// most 1h).
    #[arg(long, value_name = "DURATION")]
    pub upstream_timeout: Option<String>,
    /// The `resource_name` of the server's protected-resource metadata (default: its
    /// name).
    #[arg(long, value_name = "NAME")]
    pub resource_name: Option<String>,
    /// For a stdio upstream: most processes at once (default 32).
    #[arg(long, value_name = "N")]
    pub max_processes: Option<u64>,
    /// With an external issuer's JWTs: its JWKS URL, instead of discovering it from the
    /// issuer's metadata.
    #[arg(long, value_name = "URL")]
    pub jwks_uri: Option<String>,
    /// With an external issuer's opaque tokens: the longest a positive introspection
    /// answer is cached, e.g. `30s` (default 60s, at most 1h).
    #[arg(long, value_name = "DURATION")]
    pub introspection_cache: Option<String>,
}

/// A duration flag's value in seconds, e.g. `--token-ttl 10m`.
fn duration_flag(value: &Option<String>, flag: &str) -> anyhow::Result<Option<i64>> {
    value
        .as_deref()
        .map(|t| warden_core::config::parse_duration(t).map_err(|m| anyhow!("--{flag}: {m}")))
        .transpose()
}

/// Checks a `--unset` name against the settable settings.
fn settable_name(name: &str) -> Result<String, String> {
    if ServerSettings::settable().any(|s| s == name) {
        Ok(name.to_owned())
    } else {
        let all: Vec<&str> = ServerSettings::settable().collect();
        Err(format!("not a setting; one of: {}", all.join(", ")))
    }
}

/// A `NAME=VALUE` flag whose value may be a secret (`--env`, `--static-header`): `Debug`
/// shows the name only.
#[derive(Clone)]
pub struct NamedValue {
    /// The variable's or header's name.
    pub name: String,
    /// Its value.
    pub value: SecretString,
}

impl std::str::FromStr for NamedValue {
    type Err = String;

    fn from_str(pair: &str) -> Result<Self, String> {
        match pair.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok(Self {
                name: name.to_owned(),
                value: SecretString::new(value),
            }),
            _ => Err("expected NAME=VALUE".into()),
        }
    }
}

impl std::fmt::Debug for NamedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}=[REDACTED]", self.name)
    }
}

/// `NAME=VALUE` flags as a map of credentials.
fn credential_pairs(pairs: &[NamedValue]) -> Option<BTreeMap<String, Credential>> {
    (!pairs.is_empty()).then(|| {
        pairs
            .iter()
            .map(|p| (p.name.clone(), Credential::Clear(p.value.clone())))
            .collect()
    })
}

/// Reads the PEM certificate file given to `--{flag}`.
pub fn read_pem(path: &PathBuf, flag: &str) -> anyhow::Result<String> {
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
    settings: &mut ServerSettings,
) -> anyhow::Result<(Option<String>, String)> {
    let format = args.token_format.clone().unwrap_or_else(|| "jwt".into());
    let introspection = args.introspection_endpoint.is_some()
        || args.introspection_client_id.is_some()
        || args.introspection_client_secret_stdin
        || args.introspection_allow_missing_aud;
    let Some(issuer) = &args.issuer else {
        if introspection
            || args.accept_jwt_typ
            || args.issuer_ca.is_some()
            || !args.extra_audiences.is_empty()
        {
            bail!("--introspection-*, --accept-jwt-typ, --extra-audience and --issuer-ca need --issuer (an external issuer)");
        }
        return Ok((None, format));
    };
    warden_server::issuer::check_idp_url(issuer, "--issuer").map_err(|e| anyhow!(e))?;
    if let Some(path) = &args.issuer_ca {
        settings.issuer_ca = Some(read_pem(path, "issuer-ca")?);
    }
    if format == "jwt" {
        if introspection {
            bail!("--introspection-* apply to --token-format opaque");
        }
        if args.accept_jwt_typ {
            settings.accept_jwt_typ = Some(true);
        }
        if !args.extra_audiences.is_empty() {
            settings.extra_audiences = Some(args.extra_audiences.clone());
        }
        return Ok((Some(issuer.clone()), format));
    }
    if args.accept_jwt_typ || !args.extra_audiences.is_empty() {
        bail!("--accept-jwt-typ and --extra-audience apply to --token-format jwt");
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
    warden_server::issuer::check_idp_url(endpoint, "--introspection-endpoint")
        .map_err(|e| anyhow!(e))?;
    if client_id.is_empty() {
        bail!("--introspection-client-id must not be empty");
    }
    settings.introspection_endpoint = Some(endpoint.clone());
    settings.introspection_client_id = Some(client_id.clone());
    if args.introspection_allow_missing_aud {
        settings.introspection_requires_aud = Some(false);
    }
    Ok((Some(issuer.clone()), format))
}

// === impl SettingArgs ===

impl SettingArgs {
    /// Writes the settings these flags give into `settings`. Reads stdin for
    /// `--static-header-stdin`.
    fn apply(&self, settings: &mut ServerSettings) -> anyhow::Result<()> {
        let mut headers = credential_pairs(&self.static_headers);
        if let Some(name) = &self.static_header_stdin {
            let value = read_secret_line(&format!("the value of header {name}"))?;
            headers
                .get_or_insert_with(BTreeMap::new)
                .insert(name.clone(), Credential::Clear(value));
        }
        if headers.is_some() {
            settings.static_headers = headers;
        }
        if let Some(mode) = self.upstream_auth {
            settings.upstream_auth = Some(mode);
        }
        if let Some(id) = &self.upstream_client_id {
            settings.upstream_client_id = Some(id.clone());
        }
        if self.upstream_client_secret_stdin {
            let secret = read_secret_line("the upstream client secret")?;
            settings.upstream_client_secret = Some(Credential::Clear(secret));
        }
        if !self.upstream_scopes.is_empty() {
            settings.upstream_scopes = Some(self.upstream_scopes.clone());
        }
        if let Some(issuer) = &self.upstream_issuer {
            warden_server::issuer::check_idp_url(issuer, "--upstream-issuer")
                .map_err(|e| anyhow!(e))?;
            settings.upstream_issuer = Some(issuer.clone());
        }
        settings.unmapped_tools = self.unmapped_tools.or(settings.unmapped_tools);
        settings.unmapped_resources = self.unmapped_resources.or(settings.unmapped_resources);
        settings.unmapped_prompts = self.unmapped_prompts.or(settings.unmapped_prompts);
        if let Some(v) = &self.challenge_scope {
            settings.challenge_scope = Some(v.clone());
        }
        settings.require_dpop = self.require_dpop.or(settings.require_dpop);
        if !self.allowed_origins.is_empty() {
            settings.allowed_origins = Some(self.allowed_origins.clone());
        }
        if let Some(t) = duration_flag(&self.upstream_timeout, "upstream-timeout")? {
            settings.upstream_timeout_secs =
                Some(u64::try_from(t).map_err(|_| anyhow!("--upstream-timeout: negative"))?);
        }
        if let Some(v) = &self.resource_name {
            settings.resource_name = Some(v.clone());
        }
        if let Some(n) = self.max_processes {
            settings.max_processes = Some(n);
        }
        if let Some(u) = &self.jwks_uri {
            warden_server::issuer::check_idp_url(u, "--jwks-uri").map_err(|e| anyhow!(e))?;
            settings.jwks_uri = Some(u.clone());
        }
        if let Some(t) = duration_flag(&self.introspection_cache, "introspection-cache")? {
            settings.introspection_cache_secs = Some(t);
        }
        Ok(())
    }
}

/// The settings as the request's `settings` object, checked the way the server will
/// check them (`whole`: a registration's; else an update's, whose settings are checked
/// together only once merged with the stored ones); `None` when there are none.
fn settings_map(
    settings: &ServerSettings,
    whole: bool,
) -> anyhow::Result<Option<Map<String, Value>>> {
    let value = settings.to_value();
    // The same parse the server runs: a bad value is reported before anything is opened.
    if whole {
        ServerSettings::parse(&value).map_err(|e| anyhow!(e))?;
    } else {
        ServerSettings::parse_patch(&value).map_err(|e| anyhow!(e))?;
    }
    Ok(match value {
        Value::Object(map) if !map.is_empty() => Some(map),
        _ => None,
    })
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

/// Parses `SCOPE=TOOL,TOOL` (the server checks the scope and the tools).
pub fn parse_group(text: &str) -> anyhow::Result<ToolGroupView> {
    let (scope, tools) = text
        .split_once('=')
        .ok_or_else(|| anyhow!("--scope {text:?}: expected SCOPE=TOOL[,TOOL…]"))?;
    let tools: Vec<String> = tools
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if tools.is_empty() {
        bail!("--scope {text:?}: name at least one tool");
    }
    Ok(ToolGroupView {
        scope: scope.to_owned(),
        tools,
    })
}

// === impl AddArgs ===

impl AddArgs {
    /// The registration request these arguments describe.
    pub fn to_new(&self) -> anyhow::Result<NewServer> {
        if self.scopes.is_empty() {
            bail!(
                "give at least one --scope SCOPE=TOOL[,TOOL…]: with none, no client can get a \
                 token for the server (tools no scope maps are denied unless \
                 --unmapped-tools allow)"
            );
        }
        let mut settings = ServerSettings::default();
        let (issuer, token_format) = token_source(&self.issuer, &mut settings)?;
        if let Some(path) = &self.connection.upstream_ca {
            if !self.upstream.starts_with("https://") {
                bail!("--upstream-ca applies to an https upstream");
            }
            settings.upstream_ca = Some(read_pem(path, "upstream-ca")?);
        }
        if let Some(transport) = &self.connection.transport {
            settings.transport = Some(transport.parse().map_err(|e: String| anyhow!(e))?);
        }
        let stdio = self.upstream.starts_with("stdio:");
        if let Some(env) = credential_pairs(&self.connection.env) {
            if !stdio {
                bail!("--env applies to a stdio upstream");
            }
            settings.env = Some(env);
        }
        if self.settings.max_processes.is_some() && !stdio {
            bail!("--max-processes applies to a stdio upstream");
        }
        if self.issuer.issuer.is_none()
            && (self.settings.jwks_uri.is_some() || self.settings.introspection_cache.is_some())
        {
            bail!("--jwks-uri and --introspection-cache need --issuer (an external issuer)");
        }
        // The introspection secret is read first, then a static header's value.
        let secret = if self.issuer.introspection_client_secret_stdin {
            Some(read_secret_line("the introspection client secret")?)
        } else {
            None
        };
        self.settings.apply(&mut settings)?;
        Ok(NewServer {
            issuer,
            token_format: Some(token_format),
            settings: settings_map(&settings, true)?,
            introspection_client_secret: secret.map(|s: SecretString| s.expose().to_owned()),
            name: self.name.clone(),
            upstream: self.upstream.clone(),
            canonical_uri: self.canonical_uri.clone(),
            tool_groups: self
                .scopes
                .iter()
                .map(|g| parse_group(g))
                .collect::<anyhow::Result<_>>()?,
            access_token_ttl_secs: duration_flag(&self.token_ttl, "token-ttl")?,
            leeway_secs: duration_flag(&self.leeway, "leeway")?,
        })
    }
}

// === impl UpdateArgs ===

impl UpdateArgs {
    /// The partial update these arguments describe; an error if they change nothing.
    pub fn to_patch(&self) -> anyhow::Result<ServerUpdate> {
        let mut settings = ServerSettings {
            accept_jwt_typ: self.accept_jwt_typ,
            extra_audiences: (!self.extra_audiences.is_empty())
                .then(|| self.extra_audiences.clone()),
            introspection_endpoint: self.introspection_endpoint.clone(),
            introspection_client_id: self.introspection_client_id.clone(),
            env: credential_pairs(&self.env),
            ..Default::default()
        };
        if let Some(path) = &self.issuer_ca {
            settings.issuer_ca = Some(read_pem(path, "issuer-ca")?);
        }
        if let Some(path) = &self.upstream_ca {
            settings.upstream_ca = Some(read_pem(path, "upstream-ca")?);
        }
        if let Some(t) = &self.transport {
            settings.transport = Some(t.parse().map_err(|e: String| anyhow!(e))?);
        }
        // The introspection secret is read first, then a static header's value.
        let secret = if self.introspection_client_secret_stdin {
            Some(read_secret_line("the introspection client secret")?)
        } else {
            None
        };
        self.settings.apply(&mut settings)?;
        let mut settings = settings_map(&settings, false)?.unwrap_or_default();
        if self.no_extra_audiences {
            settings.insert("extra_audiences".into(), Value::Null);
        }
        for name in &self.unset {
            if settings.contains_key(name) {
                bail!("--unset {name} and a flag setting it contradict each other");
            }
            settings.insert(name.clone(), Value::Null);
        }
        let issuer = match (&self.issuer, self.warden_issuer) {
            (Some(i), _) => Some(Some(i.clone())),
            (None, true) => Some(None),
            (None, false) => None,
        };
        let tool_groups = if self.scopes.is_empty() {
            None
        } else {
            Some(
                self.scopes
                    .iter()
                    .map(|g| parse_group(g))
                    .collect::<anyhow::Result<_>>()?,
            )
        };
        let patch = ServerUpdate {
            upstream: self.upstream.clone(),
            canonical_uri: self.canonical_uri.clone(),
            tool_groups,
            access_token_ttl_secs: duration_flag(&self.token_ttl, "token-ttl")?,
            leeway_secs: duration_flag(&self.leeway, "leeway")?,
            issuer,
            token_format: self.token_format.clone(),
            settings: (!settings.is_empty()).then_some(settings),
            introspection_client_secret: None,
        };
        if patch == ServerUpdate::default() && secret.is_none() {
            bail!("nothing to change: give at least one of --upstream, --scope, --canonical-uri, --token-ttl, --leeway, --issuer, …");
        }
        Ok(ServerUpdate {
            introspection_client_secret: secret.map(|s: SecretString| s.expose().to_owned()),
            ..patch
        })
    }
}

fn print_one(v: &ServerView) {
    println!("name           {}", v.name);
    println!("canonical uri  {}", v.canonical_uri);
    println!("upstream       {}", v.upstream);
    println!("token format   {}", v.token_format);
    if let Some(issuer) = &v.issuer {
        println!("issuer         {issuer}");
    }
    println!("token ttl      {}s", v.access_token_ttl_secs);
    println!("leeway         {}s", v.leeway_secs);
    println!("created        {}", output::time(v.created_at));
    for g in &v.tool_groups {
        println!("scope          {} = {}", g.scope, g.tools.join(", "));
    }
    for (k, value) in &v.settings {
        let shown = match value {
            Value::String(pem) if pem.contains("-----BEGIN") => "(PEM)".to_owned(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        println!("setting        {k} = {shown}");
    }
}

/// Runs a `warden server` subcommand.
pub async fn run(common: &Common, cmd: ServerCmd) -> anyhow::Result<()> {
    // Arguments are checked before anything is opened.
    let new = match &cmd {
        ServerCmd::Add(args) => Some(args.to_new()?),
        _ => None,
    };
    let patch = match &cmd {
        ServerCmd::Update(args) => Some(args.to_patch()?),
        _ => None,
    };
    with_admin(common, async |admin| match cmd {
        ServerCmd::Add(_) => {
            let new = new.ok_or_else(|| anyhow!("no registration"))?;
            let v = admin.add_server(&new).await?;
            if common.json {
                output::json(&v)
            } else {
                println!("Registered {} at {}", v.name, v.canonical_uri);
                Ok(())
            }
        }
        ServerCmd::List => {
            let all = admin.servers().await?;
            if common.json {
                return output::json(&all);
            }
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
            Ok(())
        }
        ServerCmd::Show { name } => {
            let v = admin.server(&name).await?;
            if common.json {
                output::json(&v)
            } else {
                print_one(&v);
                Ok(())
            }
        }
        ServerCmd::Update(args) => {
            let patch = patch.ok_or_else(|| anyhow!("no update"))?;
            let v = admin.update_server(&args.name, &patch).await?;
            if common.json {
                output::json(&v)
            } else {
                println!("Updated {} at {}", v.name, v.canonical_uri);
                Ok(())
            }
        }
        ServerCmd::Remove { name } => {
            let removed = admin.remove_server(&name).await?;
            if common.json {
                output::json(&removed)
            } else {
                println!("Removed {}", removed.removed);
                Ok(())
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tool_groups_and_durations() {
        let args = AddArgs {
            name: "notes".into(),
            upstream: "http://127.0.0.1:9000/mcp".into(),
            scopes: vec!["notes:read=a, b".into(), "notes:write=c".into()],
            canonical_uri: None,
            token_ttl: Some("10m".into()),
            leeway: None,
            issuer: IssuerArgs::default(),
            connection: UpstreamArgs::default(),
            settings: SettingArgs::default(),
        };
        let new = args.to_new().unwrap();
        assert_eq!(new.tool_groups[0].tools, ["a", "b"]);
        assert_eq!(new.access_token_ttl_secs, Some(600));
        assert_eq!(new.leeway_secs, None);
        assert!(parse_group("noequals").is_err());
        assert!(parse_group("s=").is_err());
    }

    #[test]
    fn external_issuer_flags_become_settings_and_are_checked() {
        let base = || AddArgs {
            name: "kc".into(),
            upstream: "http://127.0.0.1:9000/mcp".into(),
            scopes: vec!["kc:use=t".into()],
            canonical_uri: None,
            token_ttl: None,
            leeway: None,
            issuer: IssuerArgs::default(),
            connection: UpstreamArgs::default(),
            settings: SettingArgs::default(),
        };
        let mut a = base();
        a.issuer.issuer = Some("https://idp.example/realms/x".into());
        a.issuer.accept_jwt_typ = true;
        let new = a.to_new().unwrap();
        assert_eq!(new.issuer.as_deref(), Some("https://idp.example/realms/x"));
        assert_eq!(new.settings.unwrap()["accept_jwt_typ"], true);
        a.issuer.extra_audiences = vec!["account".into()];
        let new = a.to_new().unwrap();
        assert_eq!(
            new.settings.unwrap()["extra_audiences"],
            serde_json::json!(["account"])
        );
        // Extra audiences need an external issuer's JWTs.
        let mut a = base();
        a.issuer.extra_audiences = vec!["account".into()];
        assert!(a.to_new().is_err());
        a.issuer.issuer = Some("https://idp.example".into());
        a.issuer.token_format = Some("opaque".into());
        assert!(a.to_new().is_err());
        // Introspection settings without an external issuer, or without the secret.
        let mut a = base();
        a.issuer.introspection_endpoint = Some("https://idp.example/introspect".into());
        assert!(a.to_new().is_err());
        let mut a = base();
        a.issuer.issuer = Some("https://idp.example".into());
        a.issuer.token_format = Some("opaque".into());
        a.issuer.introspection_endpoint = Some("https://idp.example/introspect".into());
        a.issuer.introspection_client_id = Some("warden".into());
        assert!(a.to_new().is_err(), "the secret must come from stdin");
        let mut a = base();
        a.connection.transport = Some("sse".into());
        assert_eq!(a.to_new().unwrap().settings.unwrap()["transport"], "sse");
    }

    #[test]
    fn a_registration_needs_a_scope() {
        let mut a = AddArgs {
            name: "notes".into(),
            upstream: "http://127.0.0.1:9000/mcp".into(),
            scopes: vec![],
            canonical_uri: None,
            token_ttl: None,
            leeway: None,
            issuer: IssuerArgs::default(),
            connection: UpstreamArgs::default(),
            settings: SettingArgs::default(),
        };
        let e = a.to_new().unwrap_err().to_string();
        assert!(e.contains("at least one --scope"), "{e}");
        a.scopes = vec!["notes:read=search".into()];
        assert!(a.to_new().is_ok());
    }

    #[test]
    fn every_setting_has_a_flag() {
        let a = AddArgs {
            name: "notes".into(),
            upstream: "stdio:srv".into(),
            scopes: vec!["notes:read=search".into()],
            canonical_uri: None,
            token_ttl: None,
            leeway: None,
            issuer: IssuerArgs::default(),
            connection: UpstreamArgs {
                env: vec!["TOKEN=env-s3cret".parse().unwrap()],
                ..Default::default()
            },
            settings: SettingArgs {
                static_headers: vec!["x-api-key=hdr-s3cret".parse().unwrap()],
                unmapped_tools: Some(Unmapped::Allow),
                unmapped_resources: Some(Unmapped::Deny),
                unmapped_prompts: Some(Unmapped::Allow),
                challenge_scope: Some("notes:read notes:write".into()),
                allowed_origins: vec!["https://app.example".into()],
                upstream_timeout: Some("30s".into()),
                resource_name: Some("Notes".into()),
                max_processes: Some(4),
                require_dpop: Some(true),
                ..Default::default()
            },
        };
        let printed = format!("{a:?}");
        assert!(
            !printed.contains("s3cret") && printed.contains("TOKEN"),
            "{printed}"
        );
        let s = Value::Object(a.to_new().unwrap().settings.unwrap());
        assert_eq!(s["unmapped_tools"], "allow");
        assert_eq!(s["unmapped_resources"], "deny");
        assert_eq!(s["unmapped_prompts"], "allow");
        assert_eq!(s["challenge_scope"], "notes:read notes:write");
        assert_eq!(s["allowed_origins"][0], "https://app.example");
        assert_eq!(s["upstream_timeout_secs"], 30);
        assert_eq!(s["resource_name"], "Notes");
        assert_eq!(s["max_processes"], 4);
        assert_eq!(s["require_dpop"], true);
        assert_eq!(s["static_headers"]["x-api-key"], "hdr-s3cret");
        assert_eq!(s["env"]["TOKEN"], "env-s3cret");
        // Checked like the server checks them.
        let mut bad = UpdateArgs {
            name: "notes".into(),
            ..Default::default()
        };
        bad.settings.challenge_scope = Some("a \"b".into());
        assert!(bad.to_patch().is_err());
        assert!(settable_name("challenge_scope").is_ok());
        assert!(settable_name("builtin").is_err());
        let unset = UpdateArgs {
            name: "notes".into(),
            unset: vec!["challenge_scope".into()],
            ..Default::default()
        };
        assert_eq!(
            unset.to_patch().unwrap().settings.unwrap()["challenge_scope"],
            Value::Null
        );
    }

    #[test]
    fn update_flags_become_a_partial_update() {
        let u = UpdateArgs {
            name: "notes".into(),
            upstream: Some("http://127.0.0.1:9001/mcp".into()),
            scopes: vec!["notes:read=a".into()],
            leeway: Some("10s".into()),
            warden_issuer: true,
            accept_jwt_typ: Some(false),
            ..Default::default()
        };
        let p = u.to_patch().unwrap();
        assert_eq!(p.upstream.as_deref(), Some("http://127.0.0.1:9001/mcp"));
        assert_eq!(p.tool_groups.unwrap()[0].tools, ["a"]);
        assert_eq!(p.leeway_secs, Some(10));
        assert_eq!(p.access_token_ttl_secs, None);
        assert_eq!(p.issuer, Some(None));
        assert_eq!(p.settings.unwrap()["accept_jwt_typ"], false);
        let nothing = UpdateArgs {
            name: "notes".into(),
            ..Default::default()
        };
        assert!(nothing
            .to_patch()
            .unwrap_err()
            .to_string()
            .contains("nothing to change"));
    }
}
