//! `warden idp …`: identity providers (OIDC sign-in, ID-JAG issuers, workload identity
//! issuers).

use std::path::PathBuf;

use anyhow::{anyhow, bail};
use clap::Subcommand;
use warden_proto::admin::{GroupMapping, IdpUpdate, IdpView, NewIdp};

use super::given;
use super::server::{read_pem, read_secret_line};
use crate::admin::with_admin;
use crate::{output, Common};

/// The fields `idp update --unset` clears (to their default, where they have one).
const UNSETTABLE: [&str; 11] = [
    "display-name",
    "client-id",
    "client-secret",
    "groups-claim",
    "group-map",
    "domains",
    "tenants",
    "audiences",
    "scopes",
    "jwks-uri",
    "issuer-ca",
];

/// `warden idp` subcommands.
#[derive(Subcommand, Debug)]
pub enum IdpCmd {
    /// Register an identity provider.
    Add(Box<AddArgs>),
    /// List identity providers.
    List,
    /// Show one identity provider (never its client secret).
    Show {
        /// The IdP's name.
        name: String,
    },
    /// Change some fields of an identity provider; `--unset FIELD` clears one.
    Update(Box<UpdateArgs>),
    /// Remove an identity provider and revoke its users' sessions (refused while clients
    /// are bound to its workload identities).
    Remove {
        /// The IdP's name.
        name: String,
    },
}

/// The fields `add` and `update` share.
#[derive(clap::Args, Debug, Default)]
pub struct IdpFields {
    /// What the IdP is trusted for: `login` (users sign in), `id-jag` (clients present its
    /// ID-JAGs), `workload` (workloads present its tokens). Repeatable; on update,
    /// replaces the uses.
    #[arg(long = "use", value_name = "login|id-jag|workload", value_parser = ["login", "id-jag", "workload"])]
    pub uses: Vec<String>,
    /// Warden's client id at the IdP (needed for `login`).
    // Its own id: `client_id` is the global admin client's (`--admin-client-id`).
    #[arg(id = "idp_client_id", long = "client-id", value_name = "ID")]
    pub client_id: Option<String>,
    /// Read Warden's client secret at the IdP from stdin (one line); sealed with the
    /// master key, never shown.
    #[arg(long)]
    pub client_secret_stdin: bool,
    /// The sign-in button label.
    #[arg(long, value_name = "TEXT")]
    pub display_name: Option<String>,
    /// Map an IdP group to a Warden group, `IDP_GROUP=WARDEN_GROUP`. Repeatable.
    #[arg(long = "group-map", value_name = "IDP_GROUP=WARDEN_GROUP", value_parser = group_mapping)]
    pub group_map: Vec<(String, String)>,
    /// The ID-token claim that lists the user's groups (default `groups`).
    #[arg(long, value_name = "CLAIM")]
    pub groups_claim: Option<String>,
    /// Route users whose address is in this domain to this IdP. Repeatable; a domain
    /// belongs to one IdP.
    #[arg(long = "domain", value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// A tenant accepted by an issuer with `{tenantid}` (Entra multi-tenant). Repeatable.
    #[arg(long = "tenant", value_name = "TENANT_ID")]
    pub tenants: Vec<String>,
    /// An audience accepted on workload tokens besides Warden's issuer. Repeatable.
    #[arg(long = "audience", value_name = "AUD")]
    pub audiences: Vec<String>,
    /// An OIDC scope requested at sign-in (default `openid email profile`; must include
    /// `openid`). Repeatable.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// The IdP's JWKS URL, to skip discovery of its keys.
    #[arg(long, value_name = "URL")]
    pub jwks_uri: Option<String>,
    /// PEM file of the trust anchors for the IdP's https endpoints.
    #[arg(long, value_name = "FILE")]
    pub issuer_ca: Option<PathBuf>,
}

/// Arguments of `warden idp add`.
#[derive(clap::Args, Debug, Default)]
pub struct AddArgs {
    /// Name: lowercase letters, digits, `-` and `_`.
    pub name: String,
    /// The issuer identifier, e.g. `https://acme.okta.com`; for Entra multi-tenant,
    /// `https://login.microsoftonline.com/{tenantid}/v2.0` with `--tenant`.
    #[arg(long, value_name = "URL")]
    pub issuer: String,
    /// Register it disabled.
    #[arg(long)]
    pub disabled: bool,
    /// The other fields.
    #[command(flatten)]
    pub fields: IdpFields,
}

/// Arguments of `warden idp update`.
#[derive(clap::Args, Debug, Default)]
pub struct UpdateArgs {
    /// The IdP's name.
    pub name: String,
    /// A new issuer identifier.
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// Disable it: sign-ins and its tokens are refused, its users' sessions revoked.
    #[arg(long, conflicts_with = "enable")]
    pub disable: bool,
    /// Enable it again.
    #[arg(long)]
    pub enable: bool,
    /// Clear a field (its default applies again), e.g. `--unset domains`. Repeatable.
    #[arg(long = "unset", value_name = "FIELD", value_parser = UNSETTABLE)]
    pub unset: Vec<String>,
    /// The fields to change (list flags replace the whole list).
    #[command(flatten)]
    pub fields: IdpFields,
}

/// Parses `IDP_GROUP=WARDEN_GROUP`.
fn group_mapping(text: &str) -> Result<(String, String), String> {
    warden_core::idp::parse_group_mapping(text)
}

fn mappings(pairs: &[(String, String)]) -> Vec<GroupMapping> {
    pairs
        .iter()
        .map(|(a, b)| GroupMapping {
            idp_group: a.clone(),
            group: b.clone(),
        })
        .collect()
}

// === impl IdpFields ===

impl IdpFields {
    fn secret(&self) -> anyhow::Result<Option<String>> {
        if !self.client_secret_stdin {
            return Ok(None);
        }
        let s = read_secret_line("the client secret")?;
        Ok(Some(s.expose().to_owned()))
    }

    fn issuer_ca(&self) -> anyhow::Result<Option<String>> {
        self.issuer_ca
            .as_ref()
            .map(|p| read_pem(p, "issuer-ca"))
            .transpose()
    }
}

// === impl AddArgs ===

impl AddArgs {
    /// The registration these arguments describe (reads stdin for the secret).
    pub fn to_new(&self) -> anyhow::Result<NewIdp> {
        let f = &self.fields;
        if f.uses.is_empty() {
            bail!("name at least one --use: login, id-jag or workload");
        }
        Ok(NewIdp {
            name: self.name.clone(),
            issuer: self.issuer.clone(),
            uses: f.uses.clone(),
            display_name: f.display_name.clone(),
            client_id: f.client_id.clone(),
            client_secret: f.secret()?,
            groups_claim: f.groups_claim.clone(),
            group_map: mappings(&f.group_map),
            domains: f.domains.clone(),
            tenants: f.tenants.clone(),
            audiences: f.audiences.clone(),
            scopes: f.scopes.clone(),
            jwks_uri: f.jwks_uri.clone(),
            issuer_ca: f.issuer_ca()?,
            disabled: self.disabled,
        })
    }
}

// === impl UpdateArgs ===

impl UpdateArgs {
    /// The partial update these arguments describe; an error if they change nothing or
    /// contradict each other (reads stdin for the secret).
    pub fn to_patch(&self) -> anyhow::Result<IdpUpdate> {
        let f = &self.fields;
        let mut patch = IdpUpdate {
            issuer: self.issuer.clone(),
            uses: given(&f.uses),
            display_name: f.display_name.clone().map(Some),
            client_id: f.client_id.clone().map(Some),
            client_secret: f.secret()?.map(Some),
            groups_claim: f.groups_claim.clone().map(Some),
            group_map: given(&f.group_map).map(|m| mappings(&m)),
            domains: given(&f.domains),
            tenants: given(&f.tenants),
            audiences: given(&f.audiences),
            scopes: given(&f.scopes).map(Some),
            jwks_uri: f.jwks_uri.clone().map(Some),
            issuer_ca: f.issuer_ca()?.map(Some),
            disabled: match (self.disable, self.enable) {
                (true, _) => Some(true),
                (false, true) => Some(false),
                (false, false) => None,
            },
        };
        for field in &self.unset {
            let taken = match field.as_str() {
                "display-name" => patch.display_name.replace(None).is_some(),
                "client-id" => patch.client_id.replace(None).is_some(),
                "client-secret" => patch.client_secret.replace(None).is_some(),
                "groups-claim" => patch.groups_claim.replace(None).is_some(),
                "group-map" => patch.group_map.replace(Vec::new()).is_some(),
                "domains" => patch.domains.replace(Vec::new()).is_some(),
                "tenants" => patch.tenants.replace(Vec::new()).is_some(),
                "audiences" => patch.audiences.replace(Vec::new()).is_some(),
                "scopes" => patch.scopes.replace(None).is_some(),
                "jwks-uri" => patch.jwks_uri.replace(None).is_some(),
                "issuer-ca" => patch.issuer_ca.replace(None).is_some(),
                other => bail!(
                    "--unset {other}: not a field; one of {}",
                    UNSETTABLE.join(", ")
                ),
            };
            if taken {
                bail!("--unset {field} and a flag setting it contradict each other");
            }
        }
        if patch == IdpUpdate::default() {
            bail!(
                "nothing to change: give at least one field flag, --unset, --disable or --enable"
            );
        }
        Ok(patch)
    }
}

fn print_one(v: &IdpView) {
    let or_none = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    let map: Vec<String> = v
        .group_map
        .iter()
        .map(|m| format!("{}={}", m.idp_group, m.group))
        .collect();
    println!("name           {}", v.name);
    println!("issuer         {}", v.issuer);
    println!("display name   {}", or_none(&v.display_name));
    println!("uses           {}", v.uses.join(", "));
    println!(
        "state          {}",
        if v.disabled { "disabled" } else { "enabled" }
    );
    println!("client id      {}", or_none(&v.client_id));
    println!(
        "client secret  {}",
        if v.client_secret_set { "set" } else { "-" }
    );
    println!("scopes         {}", v.scopes.join(" "));
    println!("groups claim   {}", v.groups_claim);
    println!("group map      {}", map.join(" "));
    println!("domains        {}", v.domains.join(" "));
    println!("tenants        {}", v.tenants.join(" "));
    println!("audiences      {}", v.audiences.join(" "));
    println!("jwks uri       {}", or_none(&v.jwks_uri));
    println!(
        "issuer ca      {}",
        if v.issuer_ca.is_some() { "(PEM)" } else { "-" }
    );
    println!("created        {}", output::time(v.created_at));
}

/// Runs a `warden idp` subcommand.
pub async fn run(common: &Common, cmd: IdpCmd) -> anyhow::Result<()> {
    // Arguments (and stdin) are read before anything is opened.
    let new = match &cmd {
        IdpCmd::Add(args) => Some(args.to_new()?),
        _ => None,
    };
    let patch = match &cmd {
        IdpCmd::Update(args) => Some(args.to_patch()?),
        _ => None,
    };
    with_admin(common, async |admin| match cmd {
        IdpCmd::Add(_) => {
            let new = new.ok_or_else(|| anyhow!("no registration"))?;
            let v = admin.add_idp(&new).await?;
            if common.json {
                output::json(&v)
            } else {
                println!("Registered identity provider {} ({})", v.name, v.issuer);
                Ok(())
            }
        }
        IdpCmd::List => {
            let all = admin.idps().await?;
            if common.json {
                return output::json(&all);
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|v| {
                    vec![
                        v.name.clone(),
                        v.issuer.clone(),
                        v.uses.join(","),
                        v.domains.join(" "),
                        if v.disabled { "disabled" } else { "enabled" }.to_owned(),
                    ]
                })
                .collect();
            output::table(&["NAME", "ISSUER", "USES", "DOMAINS", "STATE"], &rows);
            Ok(())
        }
        IdpCmd::Show { name } => {
            let v = admin.idp(&name).await?;
            if common.json {
                output::json(&v)
            } else {
                print_one(&v);
                Ok(())
            }
        }
        IdpCmd::Update(args) => {
            let patch = patch.ok_or_else(|| anyhow!("no update"))?;
            let v = admin.update_idp(&args.name, &patch).await?;
            if common.json {
                output::json(&v)
            } else {
                println!("Updated identity provider {}", v.name);
                Ok(())
            }
        }
        IdpCmd::Remove { name } => {
            let removed = admin.remove_idp(&name).await?;
            if common.json {
                output::json(&removed)
            } else {
                println!(
                    "Removed identity provider {} ({} session(s) of its users revoked)",
                    removed.removed, removed.sessions_revoked
                );
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
    fn an_update_must_change_something_and_unset_must_not_contradict() {
        let none = UpdateArgs {
            name: "okta".into(),
            ..Default::default()
        };
        assert!(none
            .to_patch()
            .unwrap_err()
            .to_string()
            .contains("nothing to change"));
        let mut both = UpdateArgs {
            name: "okta".into(),
            unset: vec!["domains".into()],
            ..Default::default()
        };
        both.fields.domains = vec!["example.com".into()];
        assert!(both
            .to_patch()
            .unwrap_err()
            .to_string()
            .contains("contradict"));
        let unset = UpdateArgs {
            name: "okta".into(),
            unset: vec!["scopes".into(), "client-secret".into(), "domains".into()],
            disable: true,
            ..Default::default()
        };
        let p = unset.to_patch().unwrap();
        assert_eq!(p.scopes, Some(None));
        assert_eq!(p.client_secret, Some(None));
        assert_eq!(p.domains, Some(vec![]));
        assert_eq!(p.disabled, Some(true));
    }

    #[test]
    fn add_needs_a_use() {
        let a = AddArgs {
            name: "okta".into(),
            issuer: "https://okta.example".into(),
            ..Default::default()
        };
        assert!(a.to_new().unwrap_err().to_string().contains("--use"));
    }
}
