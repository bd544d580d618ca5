//! Identity providers at run time: the organisation's IdPs that people sign in with, and
//! the issuers of the ID-JAGs and workload tokens that clients present.
//!
//! A registered IdP ([`warden_store::IdpRecord`]) is compiled into a [`Provider`] when it
//! is used: its client secret opened with the master key, its trust anchors parsed. Its
//! discovery document is fetched from the issuer (for a multi-tenant template, from the
//! `organizations` document that names the template as its issuer), validated by
//! [`ProviderMetadata::parse`] and cached for [`METADATA_TTL`]. Its signing keys come from
//! the shared issuer key cache ([`crate::issuer::keys`]), refetched once on an unknown
//! `kid`. Single-use values (sign-in `state`, assertion `jti`s) are claimed in the table
//! every replica shares ([`crate::dpop::Dpop::claim_once`]). Every rule a token must satisfy is in [`warden_core::federation`]; this module
//! only fetches what those rules need.
//!
//! When the IdP cannot be reached, callers get [`Unavailable`]: a sign-in ends on a "try
//! again" page, a grant in `temporarily_unavailable`, never in a verdict on the token.

use std::sync::Arc;

use axum::http::Uri;
use warden_core::federation::{FederationError, ProviderMetadata, TENANT_PLACEHOLDER};
use warden_core::idp::IdpUse;
use warden_core::jwt::VerifyingKey;
use warden_core::secret::SecretString;
use warden_store::{IdpRecord, IdpStore, StoreError};

use crate::gateway::tls::TrustRoots;
use crate::issuer::keys::{KeySource, VerifyError};
use crate::issuer::{check_idp_url, discovery_urls, get_json};
use crate::oauth::fetch::TtlCache;
use crate::App;

/// How long a provider's validated discovery document is used, seconds.
pub const METADATA_TTL: i64 = 600;

/// Providers whose documents are cached at once, at most.
const MAX_CACHED_METADATA: usize = 256;

/// What is fetched from a multi-tenant provider in place of the tenant: Entra's
/// `organizations` document names the `{tenantid}` template as its issuer.
const TENANT_DISCOVERY: &str = "organizations";

/// The run-time state of federation.
pub struct Federation {
    /// Validated discovery documents, by IdP name and issuer.
    metadata: TtlCache<Arc<ProviderMetadata>>,
}

/// A registered IdP, ready to use.
pub struct Provider {
    /// The registration.
    pub record: IdpRecord,
    /// Trust anchors for the IdP's `https://` endpoints; the public web PKI if `None`.
    pub roots: Option<TrustRoots>,
    /// A `jwks_uri` that replaces discovery of the keys.
    jwks_uri: Option<Uri>,
    /// Warden's client secret at the IdP, opened.
    secret: Option<SecretString>,
}

/// The IdP cannot be reached, or its document or keys are unusable for now. The
/// `&'static str` says why, for the log; nothing from the request is in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable(pub &'static str);

/// Why a token from an IdP was not accepted.
#[derive(Debug)]
pub enum TokenRefusal {
    /// The token breaks a rule.
    Refused(FederationError),
    /// The IdP's keys cannot be had: the token may be good.
    Unavailable(Unavailable),
}

// === impl Federation ===

impl Federation {
    /// Empty caches.
    pub fn new() -> Self {
        Self {
            metadata: TtlCache::new(MAX_CACHED_METADATA),
        }
    }

    /// Drops expired entries.
    pub fn purge(&self, now: i64) {
        self.metadata.purge(now);
    }
}

impl Default for Federation {
    fn default() -> Self {
        Self::new()
    }
}

// === impl Provider ===

impl Provider {
    /// Compiles a registration: opens the client secret, parses the trust anchors and
    /// the `jwks_uri`. An error means the registration is unusable (it is logged, and the
    /// IdP treated as unavailable).
    pub fn compile(app: &App, record: IdpRecord) -> Result<Self, String> {
        let roots = match &record.issuer_ca {
            None => None,
            Some(pem) => Some(TrustRoots::from_pem(pem, "issuer_ca")?),
        };
        let jwks_uri = match &record.jwks_uri {
            None => None,
            Some(u) => Some(check_idp_url(u, "jwks_uri")?),
        };
        let secret = match &record.client_secret_sealed {
            None => None,
            Some(sealed) => Some(warden_core::idp::open_client_secret(
                &app.sealer,
                &record.name,
                sealed,
            )?),
        };
        Ok(Self {
            record,
            roots,
            jwks_uri,
            secret,
        })
    }

    /// Whether the IdP is enabled and trusted for `what`.
    pub fn serves(&self, what: IdpUse) -> bool {
        !self.record.disabled && self.record.uses.iter().any(|u| u == what.as_str())
    }

    /// The IdP's name.
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// Warden's client id and secret at the IdP, for the code exchange.
    pub fn client_credentials(&self) -> Option<(&str, &SecretString)> {
        Some((self.record.client_id.as_deref()?, self.secret.as_ref()?))
    }

    /// The IdP's validated discovery document, cached for [`METADATA_TTL`].
    pub async fn metadata(
        &self,
        app: &App,
        now: i64,
    ) -> Result<Arc<ProviderMetadata>, Unavailable> {
        let key = format!("{} {}", self.record.name, self.record.issuer);
        if let Some(hit) = app.federation.metadata.get(&key, now) {
            return Ok(hit);
        }
        let fetch_from = self
            .record
            .issuer
            .replace(TENANT_PLACEHOLDER, TENANT_DISCOVERY);
        let mut last = Unavailable("the identity provider publishes no metadata document");
        for url in discovery_urls(&fetch_from) {
            let Ok(uri) = url.parse::<Uri>() else {
                continue;
            };
            let doc = match get_json(app, self.roots.as_ref(), uri).await {
                Ok((doc, _)) => doc,
                Err(why) => {
                    last = Unavailable(why);
                    continue;
                }
            };
            let metadata = ProviderMetadata::parse(&doc, &self.record.issuer).map_err(|e| {
                tracing::warn!(idp = %self.record.name, reason = e.reason(), "the identity provider's metadata document is unusable");
                Unavailable("the identity provider's metadata document is unusable")
            })?;
            let metadata = Arc::new(metadata);
            app.federation.metadata.insert(
                key,
                Arc::clone(&metadata),
                now.saturating_add(METADATA_TTL),
                now,
            );
            return Ok(metadata);
        }
        tracing::warn!(idp = %self.record.name, reason = last.0, "cannot fetch the identity provider's metadata");
        Err(last)
    }

    /// Verifies a token with the IdP's keys: `check` runs with the current key set and,
    /// on an unknown `kid`, once more after a (debounced) refetch.
    ///
    /// Keys come from the registration's `jwks_uri` when set; otherwise, for a sign-in
    /// (`metadata` given) from the document's `jwks_uri`, and for grants from discovery.
    pub async fn verify<T>(
        &self,
        app: &App,
        metadata: Option<&ProviderMetadata>,
        now: i64,
        check: impl Fn(&[Arc<VerifyingKey>]) -> Result<T, FederationError>,
    ) -> Result<T, TokenRefusal> {
        let unusable = || TokenRefusal::Unavailable(Unavailable("unusable jwks_uri"));
        let jwks_uri = match (&self.jwks_uri, metadata) {
            (Some(uri), _) => Some(uri.clone()),
            (None, Some(m)) => {
                Some(check_idp_url(&m.jwks_uri, "jwks_uri").map_err(|_| unusable())?)
            }
            // A multi-tenant template is not an issuer to discover keys from: its
            // document names the keys.
            (None, None) if warden_core::federation::is_issuer_template(&self.record.issuer) => {
                let m = self
                    .metadata(app, now)
                    .await
                    .map_err(TokenRefusal::Unavailable)?;
                Some(check_idp_url(&m.jwks_uri, "jwks_uri").map_err(|_| unusable())?)
            }
            (None, None) => None,
        };
        let source = KeySource {
            issuer: &self.record.issuer,
            jwks_uri: jwks_uri.as_ref(),
            roots: self.roots.as_ref(),
        };
        app.issuers
            .keys
            .verify(
                app,
                source,
                now,
                |set| check(set.keys()),
                FederationError::wants_fresh_keys,
            )
            .await
            .map_err(|e| match e {
                VerifyError::Unavailable => TokenRefusal::Unavailable(Unavailable(
                    "the identity provider's keys cannot be fetched",
                )),
                VerifyError::Refused(e) => TokenRefusal::Refused(e),
            })
    }
}

// === lookups ===

/// The IdP registered as `name`, compiled. `Ok(None)` if there is none or it cannot be
/// compiled (logged).
pub async fn provider(app: &App, name: &str) -> Result<Option<Provider>, StoreError> {
    let Some(record) = IdpStore::get(&app.store, name).await? else {
        return Ok(None);
    };
    Ok(compile_logged(app, record))
}

/// The enabled IdP trusted for `what` whose issuer is exactly `iss`. (Grants name one
/// issuer; a multi-tenant template is for sign-in only.)
pub async fn provider_for_issuer(
    app: &App,
    iss: &str,
    what: IdpUse,
) -> Result<Option<Provider>, StoreError> {
    let found = IdpStore::list(&app.store)
        .await?
        .into_iter()
        .find(|r| r.issuer == iss && r.uses.iter().any(|u| u == what.as_str()));
    Ok(found
        .and_then(|r| compile_logged(app, r))
        .filter(|p| p.serves(what)))
}

/// The enabled IdPs trusted for sign-in, by name.
pub async fn login_providers(app: &App) -> Result<Vec<IdpRecord>, StoreError> {
    Ok(IdpStore::list(&app.store)
        .await?
        .into_iter()
        .filter(|r| !r.disabled && r.uses.iter().any(|u| u == IdpUse::Login.as_str()))
        .collect())
}

fn compile_logged(app: &App, record: IdpRecord) -> Option<Provider> {
    let name = record.name.clone();
    match Provider::compile(app, record) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!(idp = %name, error = %e, "the identity provider's registration is unusable");
            None
        }
    }
}
