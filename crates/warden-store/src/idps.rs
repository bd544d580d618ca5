//! The identity-provider registry: the OIDC issuers users sign in with, and the issuers
//! whose ID-JAGs and workload tokens clients present.

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Transaction};

use crate::error::conflict;
use crate::sql::{bool_int, col, col_bool, col_json, to_json};
use crate::{Redacted, Store, StoreError};

/// A registered identity provider.
#[derive(Clone, PartialEq, Eq)]
pub struct IdpRecord {
    /// Unique short name.
    pub name: String,
    /// The issuer identifier; for Entra multi-tenant, a template with `{tenantid}`.
    pub issuer: String,
    /// The sign-in button label, if not the name.
    pub display_name: Option<String>,
    /// What the IdP is trusted for: `login`, `id-jag`, `workload` (see
    /// `warden_core::idp::IdpUse`).
    pub uses: Vec<String>,
    /// Warden's OIDC client id at the IdP (for `login`).
    pub client_id: Option<String>,
    /// Warden's OIDC client secret, sealed with the master key by the caller.
    pub client_secret_sealed: Option<Vec<u8>>,
    /// The ID-token claim that lists the user's groups.
    pub groups_claim: String,
    /// IdP group to Warden group, in order.
    pub group_map: Vec<(String, String)>,
    /// Email domains routed to this IdP at sign-in; each belongs to one IdP only.
    pub domains: Vec<String>,
    /// Tenants accepted when the issuer is a `{tenantid}` template.
    pub tenants: Vec<String>,
    /// Audiences accepted on workload tokens besides Warden's issuer.
    pub audiences: Vec<String>,
    /// OIDC scopes requested at sign-in.
    pub scopes: Vec<String>,
    /// The JWKS URL, when discovery is skipped.
    pub jwks_uri: Option<String>,
    /// PEM trust anchors for the IdP's https endpoints.
    pub issuer_ca: Option<String>,
    /// A disabled IdP signs nobody in and its tokens are refused.
    pub disabled: bool,
    /// UNIX seconds.
    pub created_at: i64,
    /// UNIX seconds.
    pub updated_at: i64,
}

/// Storage for identity providers.
#[async_trait]
pub trait IdpStore: Send + Sync {
    /// Inserts an IdP and its domains; `Conflict("idp name")` or `Conflict("idp domain")`.
    async fn create(&self, idp: &IdpRecord) -> Result<(), StoreError>;
    /// The IdP with this name.
    async fn get(&self, name: &str) -> Result<Option<IdpRecord>, StoreError>;
    /// All IdPs, ordered by name.
    async fn list(&self) -> Result<Vec<IdpRecord>, StoreError>;
    /// Replaces every field except `name` and `created_at`, domains included, atomically;
    /// `NotFound` if absent, `Conflict("idp domain")` if a domain belongs to another IdP.
    async fn update(&self, idp: &IdpRecord) -> Result<(), StoreError>;
    /// Deletes the IdP and its domains; false if it did not exist.
    /// `Conflict("idp (clients bound to its workloads)")` while a client is bound to one
    /// of its workload identities. Linked user identities stay.
    async fn delete(&self, name: &str) -> Result<bool, StoreError>;
    /// The IdP that `domain` (lowercase) routes to.
    async fn find_by_domain(&self, domain: &str) -> Result<Option<IdpRecord>, StoreError>;
}

const IDP_COLUMNS: &str = "name, issuer, display_name, uses, client_id, client_secret_sealed, \
     groups_claim, group_map, tenants, audiences, scopes, jwks_uri, issuer_ca, disabled, \
     created_at, updated_at";

/// Binds the columns an update rewrites, `issuer` to `disabled` in [`IDP_COLUMNS`] order.
fn bind_settings<'q>(
    query: Query<'q, Any, AnyArguments<'q>>,
    idp: &'q IdpRecord,
) -> Result<Query<'q, Any, AnyArguments<'q>>, StoreError> {
    Ok(query
        .bind(&idp.issuer)
        .bind(idp.display_name.as_deref())
        .bind(to_json(&idp.uses, "idp uses")?)
        .bind(idp.client_id.as_deref())
        .bind(idp.client_secret_sealed.clone())
        .bind(&idp.groups_claim)
        .bind(to_json(&idp.group_map, "group map")?)
        .bind(to_json(&idp.tenants, "tenants")?)
        .bind(to_json(&idp.audiences, "audiences")?)
        .bind(to_json(&idp.scopes, "scopes")?)
        .bind(idp.jwks_uri.as_deref())
        .bind(idp.issuer_ca.as_deref())
        .bind(bool_int(idp.disabled)))
}

// === impl IdpRecord ===

impl IdpRecord {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(IdpRecord {
            name: col(row, "name")?,
            issuer: col(row, "issuer")?,
            display_name: col(row, "display_name")?,
            uses: col_json(row, "uses")?,
            client_id: col(row, "client_id")?,
            client_secret_sealed: col(row, "client_secret_sealed")?,
            groups_claim: col(row, "groups_claim")?,
            group_map: col_json(row, "group_map")?,
            domains: Vec::new(),
            tenants: col_json(row, "tenants")?,
            audiences: col_json(row, "audiences")?,
            scopes: col_json(row, "scopes")?,
            jwks_uri: col(row, "jwks_uri")?,
            issuer_ca: col(row, "issuer_ca")?,
            disabled: col_bool(row, "disabled")?,
            created_at: col(row, "created_at")?,
            updated_at: col(row, "updated_at")?,
        })
    }
}

impl fmt::Debug for IdpRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdpRecord")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("display_name", &self.display_name)
            .field("uses", &self.uses)
            .field("client_id", &self.client_id)
            .field(
                "client_secret_sealed",
                &self.client_secret_sealed.as_ref().map(|_| Redacted),
            )
            .field("groups_claim", &self.groups_claim)
            .field("group_map", &self.group_map)
            .field("domains", &self.domains)
            .field("tenants", &self.tenants)
            .field("audiences", &self.audiences)
            .field("scopes", &self.scopes)
            .field("jwks_uri", &self.jwks_uri)
            .field("issuer_ca", &self.issuer_ca.as_ref().map(|_| "<pem>"))
            .field("disabled", &self.disabled)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

// === impl Store ===

impl Store {
    /// Loads IdPs matching `filter` (a WHERE clause over `idps i`, one `?`) with their
    /// domains.
    async fn idps_where(
        &self,
        filter: &str,
        arg: Option<&str>,
    ) -> Result<Vec<IdpRecord>, StoreError> {
        let idps_sql = format!("SELECT {IDP_COLUMNS} FROM idps i {filter} ORDER BY name");
        let domains_sql = format!(
            "SELECT d.idp_name, d.domain FROM idp_domains d JOIN idps i ON i.name = d.idp_name \
             {filter} ORDER BY d.idp_name, d.position"
        );
        let (idps_sql, domains_sql) = (self.q(&idps_sql), self.q(&domains_sql));
        let mut idps_q = sqlx::query(&idps_sql);
        let mut domains_q = sqlx::query(&domains_sql);
        if let Some(arg) = arg {
            idps_q = idps_q.bind(arg);
            domains_q = domains_q.bind(arg);
        }
        let idp_rows = idps_q.fetch_all(self.db()?).await?;
        let domain_rows = domains_q.fetch_all(self.db()?).await?;
        let mut domains: HashMap<String, Vec<String>> = HashMap::new();
        for row in &domain_rows {
            let owner: String = col(row, "idp_name")?;
            domains.entry(owner).or_default().push(col(row, "domain")?);
        }
        idp_rows
            .iter()
            .map(|row| {
                let mut idp = IdpRecord::from_row(row)?;
                idp.domains = domains.remove(&idp.name).unwrap_or_default();
                Ok(idp)
            })
            .collect()
    }

    async fn insert_domains(
        &self,
        tx: &mut Transaction<'_, Any>,
        idp: &IdpRecord,
    ) -> Result<(), StoreError> {
        let sql = self.q("INSERT INTO idp_domains (domain, idp_name, position) VALUES (?, ?, ?)");
        for (position, domain) in (0i64..).zip(&idp.domains) {
            sqlx::query(&sql)
                .bind(domain)
                .bind(&idp.name)
                .bind(position)
                .execute(&mut **tx)
                .await
                .map_err(conflict(&[], "idp domain"))?;
        }
        Ok(())
    }
}

#[async_trait]
impl IdpStore for Store {
    async fn create(&self, idp: &IdpRecord) -> Result<(), StoreError> {
        let mut tx = self.db()?.begin().await?;
        let sql = self
            .q(&format!(
                "INSERT INTO idps ({IDP_COLUMNS}) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .into_owned();
        bind_settings(sqlx::query(&sql).bind(&idp.name), idp)?
            .bind(idp.created_at)
            .bind(idp.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(conflict(&[], "idp name"))?;
        self.insert_domains(&mut tx, idp).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get(&self, name: &str) -> Result<Option<IdpRecord>, StoreError> {
        Ok(self.idps_where("WHERE i.name = ?", Some(name)).await?.pop())
    }

    async fn list(&self) -> Result<Vec<IdpRecord>, StoreError> {
        self.idps_where("", None).await
    }

    async fn update(&self, idp: &IdpRecord) -> Result<(), StoreError> {
        let mut tx = self.db()?.begin().await?;
        // The UPDATE comes first so SQLite takes the write lock before anything is read.
        let sql = self
            .q(
                "UPDATE idps SET issuer = ?, display_name = ?, uses = ?, client_id = ?, \
                client_secret_sealed = ?, groups_claim = ?, group_map = ?, tenants = ?, \
                audiences = ?, scopes = ?, jwks_uri = ?, issuer_ca = ?, disabled = ?, \
                updated_at = ? WHERE name = ?",
            )
            .into_owned();
        let done = bind_settings(sqlx::query(&sql), idp)?
            .bind(idp.updated_at)
            .bind(&idp.name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query(&self.q("DELETE FROM idp_domains WHERE idp_name = ?"))
            .bind(&idp.name)
            .execute(&mut *tx)
            .await?;
        self.insert_domains(&mut tx, idp).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<bool, StoreError> {
        // Domains go with the IdP through ON DELETE CASCADE; bound clients hold it.
        let done = sqlx::query(&self.q("DELETE FROM idps WHERE name = ?"))
            .bind(name)
            .execute(self.db()?)
            .await
            .map_err(|e| match StoreError::from(e) {
                // The bindings' foreign key refused the delete.
                StoreError::NotFound => {
                    StoreError::Conflict("idp (clients bound to its workloads)".into())
                }
                other => other,
            })?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_by_domain(&self, domain: &str) -> Result<Option<IdpRecord>, StoreError> {
        Ok(self
            .idps_where(
                "WHERE i.name = (SELECT idp_name FROM idp_domains WHERE domain = ?)",
                Some(domain),
            )
            .await?
            .pop())
    }
}
