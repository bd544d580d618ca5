//! Admin operations, run on the data dir or, with `--server URL`, through a running
//! server's admin API. Both ways return the same wire types, so `--json` output has one
//! shape; locally the operations are the very functions the admin API calls, so they
//! validate, refuse and audit alike.

use anyhow::anyhow;
use warden_core::secret::SecretString;
use warden_proto::admin::{
    ChainReport, ClientUpdate, ClientView, ConsentFilter, ConsentView, ConsentsRevoked,
    CreatedClient, EventPage, EventQuery, FleetStatus, IdpRemoved, IdpUpdate, IdpView, KeyView,
    NewClient, NewIdp, NewServer, NewUser, PolicyApplied, PolicyProblem, PolicyView, Removed,
    RotateKey, RotateSecret, RotatedSecret, ServerUpdate, ServerView, UserView,
};
use warden_server::admin::{self as ops, Actor, AdminError};
use warden_server::App;
use warden_store::Store;

use crate::remote::Remote;
use crate::{datadir, Common};

/// Where admin commands run.
pub enum Admin {
    /// On the data dir: the same operations the admin API runs.
    Local {
        /// The application state over the data dir's store.
        app: App,
        /// The store, to close at the end.
        store: Store,
    },
    /// Against a running server's admin API.
    Remote(Remote),
}

/// The admin client's credentials for `--server`.
fn credentials(common: &Common) -> anyhow::Result<(String, SecretString)> {
    let id = common.client_id.clone().ok_or_else(|| {
        anyhow!("--server needs the admin client's id: --admin-client-id or WARDEN_ADMIN_CLIENT_ID")
    })?;
    let secret = common.client_secret.clone().ok_or_else(|| {
        anyhow!("--server needs the admin client's secret: WARDEN_ADMIN_CLIENT_SECRET (or --admin-client-secret)")
    })?;
    Ok((id, secret))
}

fn local<T>(r: Result<T, AdminError>) -> anyhow::Result<T> {
    r.map_err(|e| anyhow!(e.detail()))
}

// === impl Admin ===

impl Admin {
    /// Opens the data dir, or connects to `--server`.
    pub async fn open(common: &Common) -> anyhow::Result<Admin> {
        if let Some(url) = &common.server {
            let (id, secret) = credentials(common)?;
            let remote = Remote::connect(url, common.ca_file.as_deref(), &id, &secret).await?;
            return Ok(Admin::Remote(remote));
        }
        let o = datadir::open(&common.data_dir).await?;
        let app = App::new(o.config, o.store.clone(), &o.master, o.clock)
            .await
            .map_err(|e| anyhow!("{e} (data dir {})", common.data_dir.display()))?;
        Ok(Admin::Local {
            app,
            store: o.store,
        })
    }

    /// Whether commands go to a running server.
    pub fn is_remote(&self) -> bool {
        matches!(self, Admin::Remote(_))
    }

    /// Flushes the audit log and closes the store (locally).
    pub async fn close(self) {
        if let Admin::Local { app, store } = self {
            app.shutdown().await;
            store.close().await;
        }
    }

    /// Registered servers.
    pub async fn servers(&self) -> anyhow::Result<Vec<ServerView>> {
        match self {
            Admin::Local { app, .. } => local(ops::servers::list(app).await),
            Admin::Remote(r) => r.get(&["servers"]).await,
        }
    }

    /// One server.
    pub async fn server(&self, name: &str) -> anyhow::Result<ServerView> {
        match self {
            Admin::Local { app, .. } => local(ops::servers::get(app, name).await),
            Admin::Remote(r) => r.get(&["servers", name]).await,
        }
    }

    /// Registers a server.
    pub async fn add_server(&self, new: &NewServer) -> anyhow::Result<ServerView> {
        match self {
            Admin::Local { app, .. } => local(ops::servers::create(app, &Actor::Local, new).await),
            Admin::Remote(r) => r.post(&["servers"], new).await,
        }
    }

    /// Changes some fields of a server.
    pub async fn update_server(
        &self,
        name: &str,
        patch: &ServerUpdate,
    ) -> anyhow::Result<ServerView> {
        match self {
            Admin::Local { app, .. } => {
                local(ops::servers::update(app, &Actor::Local, name, patch).await)
            }
            Admin::Remote(r) => r.patch(&["servers", name], patch).await,
        }
    }

    /// Removes a server.
    pub async fn remove_server(&self, name: &str) -> anyhow::Result<Removed> {
        match self {
            Admin::Local { app, .. } => local(ops::servers::remove(app, &Actor::Local, name).await),
            Admin::Remote(r) => r.delete(&["servers", name]).await,
        }
    }

    /// Clients.
    pub async fn clients(&self) -> anyhow::Result<Vec<ClientView>> {
        match self {
            Admin::Local { app, .. } => local(ops::clients::list(app).await),
            Admin::Remote(r) => r.get(&["clients"]).await,
        }
    }

    /// One client, by id or unique name.
    pub async fn client(&self, key: &str) -> anyhow::Result<ClientView> {
        match self {
            Admin::Local { app, .. } => local(ops::clients::get(app, key).await),
            Admin::Remote(r) => r.get(&["clients", key]).await,
        }
    }

    /// Registers a client.
    pub async fn add_client(&self, new: &NewClient) -> anyhow::Result<CreatedClient> {
        match self {
            Admin::Local { app, .. } => local(ops::clients::create(app, &Actor::Local, new).await),
            Admin::Remote(r) => r.post(&["clients"], new).await,
        }
    }

    /// Changes some fields of a client.
    pub async fn update_client(
        &self,
        key: &str,
        patch: &ClientUpdate,
    ) -> anyhow::Result<ClientView> {
        match self {
            Admin::Local { app, .. } => {
                local(ops::clients::update(app, &Actor::Local, key, patch).await)
            }
            Admin::Remote(r) => r.patch(&["clients", key], patch).await,
        }
    }

    /// Identity providers.
    pub async fn idps(&self) -> anyhow::Result<Vec<IdpView>> {
        match self {
            Admin::Local { app, .. } => local(ops::idps::list(app).await),
            Admin::Remote(r) => r.get(&["idps"]).await,
        }
    }

    /// One identity provider.
    pub async fn idp(&self, name: &str) -> anyhow::Result<IdpView> {
        match self {
            Admin::Local { app, .. } => local(ops::idps::get(app, name).await),
            Admin::Remote(r) => r.get(&["idps", name]).await,
        }
    }

    /// Registers an identity provider.
    pub async fn add_idp(&self, new: &NewIdp) -> anyhow::Result<IdpView> {
        match self {
            Admin::Local { app, .. } => local(ops::idps::create(app, &Actor::Local, new).await),
            Admin::Remote(r) => r.post(&["idps"], new).await,
        }
    }

    /// Changes some fields of an identity provider.
    pub async fn update_idp(&self, name: &str, patch: &IdpUpdate) -> anyhow::Result<IdpView> {
        match self {
            Admin::Local { app, .. } => {
                local(ops::idps::update(app, &Actor::Local, name, patch).await)
            }
            Admin::Remote(r) => r.patch(&["idps", name], patch).await,
        }
    }

    /// Removes an identity provider.
    pub async fn remove_idp(&self, name: &str) -> anyhow::Result<IdpRemoved> {
        match self {
            Admin::Local { app, .. } => local(ops::idps::remove(app, &Actor::Local, name).await),
            Admin::Remote(r) => r.delete(&["idps", name]).await,
        }
    }

    /// Removes a client.
    pub async fn remove_client(&self, key: &str) -> anyhow::Result<Removed> {
        match self {
            Admin::Local { app, .. } => local(ops::clients::remove(app, &Actor::Local, key).await),
            Admin::Remote(r) => r.delete(&["clients", key]).await,
        }
    }

    /// Rotates a client's secret.
    pub async fn rotate_secret(
        &self,
        key: &str,
        req: &RotateSecret,
    ) -> anyhow::Result<RotatedSecret> {
        match self {
            Admin::Local { app, .. } => {
                local(ops::clients::rotate_secret(app, &Actor::Local, key, req).await)
            }
            Admin::Remote(r) => r.post(&["clients", key, "secrets"], req).await,
        }
    }

    /// Users.
    pub async fn users(&self) -> anyhow::Result<Vec<UserView>> {
        match self {
            Admin::Local { app, .. } => local(ops::users::list(app).await),
            Admin::Remote(r) => r.get(&["users"]).await,
        }
    }

    /// One user.
    pub async fn user(&self, username: &str) -> anyhow::Result<UserView> {
        match self {
            Admin::Local { app, .. } => local(ops::users::get(app, username).await),
            Admin::Remote(r) => r.get(&["users", username]).await,
        }
    }

    /// Creates a user.
    pub async fn add_user(&self, new: NewUser) -> anyhow::Result<UserView> {
        match self {
            Admin::Local { app, .. } => local(ops::users::create(app, &Actor::Local, new).await),
            Admin::Remote(r) => r.post(&["users"], &new).await,
        }
    }

    /// Removes a user.
    pub async fn remove_user(&self, username: &str) -> anyhow::Result<Removed> {
        match self {
            Admin::Local { app, .. } => {
                local(ops::users::remove(app, &Actor::Local, username).await)
            }
            Admin::Remote(r) => r.delete(&["users", username]).await,
        }
    }

    /// Signing keys.
    pub async fn keys(&self) -> anyhow::Result<Vec<KeyView>> {
        match self {
            Admin::Local { app, .. } => local(ops::keys::list(app).await),
            Admin::Remote(r) => r.get(&["keys"]).await,
        }
    }

    /// Rotates the signing key now.
    pub async fn rotate_key(&self, req: &RotateKey) -> anyhow::Result<KeyView> {
        match self {
            Admin::Local { app, .. } => local(ops::keys::rotate(app, &Actor::Local, req).await),
            Admin::Remote(r) => r.post(&["keys", "rotate"], req).await,
        }
    }

    /// One page of audit events; its `next_after_seq` continues it.
    pub async fn events(&self, q: &EventQuery) -> anyhow::Result<EventPage> {
        match self {
            Admin::Local { app, .. } => local(ops::events::query(app, q).await),
            Admin::Remote(r) => r.get_query(&["events"], q).await,
        }
    }

    /// Verifies the audit chain.
    pub async fn verify_events(&self) -> anyhow::Result<ChainReport> {
        match self {
            Admin::Local { app, .. } => local(ops::events::verify(app).await),
            Admin::Remote(r) => r.get(&["events", "verify"]).await,
        }
    }

    /// The policy in force.
    pub async fn policy(&self) -> anyhow::Result<PolicyView> {
        match self {
            Admin::Local { app, .. } => local(ops::policy::get(app).await),
            Admin::Remote(r) => r.get(&["policy"]).await,
        }
    }

    /// Applies a policy document (or checks it, on a dry run). A refused document gives
    /// its problems, each with its line.
    pub async fn apply_policy(
        &self,
        source: &str,
        dry_run: bool,
    ) -> anyhow::Result<Result<PolicyApplied, Vec<PolicyProblem>>> {
        match self {
            Admin::Local { app, .. } => {
                let req = ops::policy::ApplyRequest {
                    source,
                    dry_run,
                    expected_version: None,
                };
                match ops::policy::apply(app, &Actor::Local, req).await {
                    Ok(applied) => Ok(Ok(applied)),
                    Err(AdminError::InvalidPolicy(problems)) => Ok(Err(problems)),
                    Err(e) => Err(anyhow!(e.detail())),
                }
            }
            Admin::Remote(r) => r.apply_policy(source, dry_run).await,
        }
    }

    /// A user's consents.
    pub async fn consents(&self, username: &str) -> anyhow::Result<Vec<ConsentView>> {
        match self {
            Admin::Local { app, .. } => local(ops::consents::list(app, username).await),
            Admin::Remote(r) => r.get(&["users", username, "consents"]).await,
        }
    }

    /// Withdraws a user's consents and revokes their sessions.
    pub async fn revoke_consents(
        &self,
        username: &str,
        filter: &ConsentFilter,
    ) -> anyhow::Result<ConsentsRevoked> {
        match self {
            Admin::Local { app, .. } => {
                local(ops::consents::revoke(app, &Actor::Local, username, filter).await)
            }
            Admin::Remote(r) => {
                r.delete_query(&["users", username, "consents"], filter)
                    .await
            }
        }
    }

    /// Fleet posture.
    pub async fn status(&self) -> anyhow::Result<FleetStatus> {
        match self {
            Admin::Local { app, .. } => local(ops::status::fleet(app).await),
            Admin::Remote(r) => r.get(&["status"]).await,
        }
    }
}

/// Runs `f` on an opened [`Admin`] and closes it whatever `f` returned.
pub async fn with_admin<T>(
    common: &Common,
    f: impl AsyncFnOnce(&Admin) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let admin = Admin::open(common).await?;
    let result = f(&admin).await;
    admin.close().await;
    result
}
