//! `warden server …`: the registry of MCP servers.

use anyhow::{anyhow, bail};
use clap::Subcommand;
use warden_proto::admin::{NewServer, ServerView, ToolGroupView};

use crate::admin::with_admin;
use crate::{output, Common};

/// `warden server` subcommands.
#[derive(Subcommand, Debug)]
pub enum ServerCmd {
    /// Register an MCP server behind the gateway.
    Add(AddArgs),
    /// List registered servers (the built-in `admin` resource included).
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
    /// Access-token lifetime for this server, e.g. `15m` (default from config, at most
    /// `tokens.max_access_token_ttl`).
    #[arg(long)]
    pub token_ttl: Option<String>,
    /// Clock-skew leeway for this server, `0s`..`300s` (default from config).
    #[arg(long)]
    pub leeway: Option<String>,
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
        let secs = |v: &Option<String>, key: &str| -> anyhow::Result<Option<i64>> {
            v.as_deref()
                .map(|t| {
                    warden_core::config::parse_duration(t).map_err(|m| anyhow!("--{key}: {m}"))
                })
                .transpose()
        };
        Ok(NewServer {
            name: self.name.clone(),
            upstream: self.upstream.clone(),
            canonical_uri: self.canonical_uri.clone(),
            tool_groups: self
                .scopes
                .iter()
                .map(|g| parse_group(g))
                .collect::<anyhow::Result<_>>()?,
            access_token_ttl_secs: secs(&self.token_ttl, "token-ttl")?,
            leeway_secs: secs(&self.leeway, "leeway")?,
        })
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
    // Arguments are checked before anything is opened.
    let new = match &cmd {
        ServerCmd::Add(args) => Some(args.to_new()?),
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
        };
        let new = args.to_new().unwrap();
        assert_eq!(new.tool_groups[0].tools, ["a", "b"]);
        assert_eq!(new.access_token_ttl_secs, Some(600));
        assert_eq!(new.leeway_secs, None);
        assert!(parse_group("noequals").is_err());
        assert!(parse_group("s=").is_err());
    }
}
