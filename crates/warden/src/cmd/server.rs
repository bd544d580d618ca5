//! `warden server …`: the registry of MCP servers.

use anyhow::{anyhow, bail};
use clap::Subcommand;
use warden_core::scope::valid_token;
use warden_core::uri::CanonicalUri;
use warden_proto::admin::{ServerView, ToolGroupView};
use warden_store::{ServerRecord, ServerStore, StoreError, ToolGroup};

use crate::{datadir, output, Common};

/// `warden server` subcommands.
#[derive(Subcommand, Debug)]
pub enum ServerCmd {
    /// Register an MCP server behind the gateway.
    Add(AddArgs),
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
        token_format: "jwt".into(),
        access_token_ttl_secs: dur(&args.token_ttl, default_ttl, "token-ttl", 30..=86_400)?,
        leeway_secs: dur(&args.leeway, default_leeway, "leeway", 0..=300)?,
        issuer: None,
        settings: serde_json::json!({}),
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
            let rec = build_record(
                &args,
                &o.config.public_url,
                o.config.tokens.access_token_ttl,
                o.config.gateway.leeway,
                o.clock.now(),
            )?;
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
}
