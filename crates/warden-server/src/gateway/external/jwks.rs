//! A server's external issuer's JWTs, checked with the issuer's signing keys (fetched and
//! cached by [`crate::issuer::keys`], refetched once on an unknown `kid`).

use serde_json::{Map, Value};
use warden_core::jwt::{self, JwtError, Validation, AT_JWT_TYP};

use super::{normalize, ExternalIssuer, JwksSettings};
use crate::gateway::registry::Protected;
use crate::gateway::validate::{Principal, Rejection};
use crate::issuer::keys::{KeySet, KeySource, VerifyError};
use crate::App;

// === verification ===

/// Verifies `token` with the issuer's keys, refetching once on an unknown `kid`.
pub async fn verify(
    app: &App,
    server: &Protected,
    issuer: &ExternalIssuer,
    settings: &JwksSettings,
    token: &str,
    now: i64,
) -> Result<Principal, Rejection> {
    let source = KeySource {
        issuer: &issuer.issuer,
        jwks_uri: settings.jwks_uri.as_ref(),
        roots: issuer.roots.as_ref(),
    };
    let claims = app
        .issuers
        .keys
        .verify(
            app,
            source,
            now,
            |keys| check(keys, server, issuer, settings, token, now),
            |e| matches!(e, Rejection::Jwt(JwtError::UnknownKid)),
        )
        .await
        .map_err(|e| match e {
            VerifyError::Unavailable => {
                Rejection::IssuerUnavailable("the issuer's keys cannot be fetched")
            }
            VerifyError::Refused(rejection) => rejection,
        })?;
    let claims = normalize(&claims, token)?;
    Principal::from_claims(&claims, server)
}

/// Signature, header and claims, with one key set.
fn check(
    keys: &KeySet,
    server: &Protected,
    issuer: &ExternalIssuer,
    settings: &JwksSettings,
    token: &str,
    now: i64,
) -> Result<Map<String, Value>, Rejection> {
    let typ = if settings.accept_jwt_typ {
        // `typ` is then `at+jwt`, `JWT` or absent; anything else (an ID token's
        // `id+jwt`, a logout token) is still refused.
        let parsed = jwt::parse(token).map_err(Rejection::Jwt)?;
        if let Some(typ) = parsed.header.typ.as_deref() {
            if !jwt::typ_matches(typ, AT_JWT_TYP) && !jwt::typ_matches(typ, "JWT") {
                return Err(Rejection::Jwt(JwtError::WrongTyp));
            }
        }
        Vec::new()
    } else {
        vec![AT_JWT_TYP.to_owned()]
    };
    let validation = Validation {
        algorithms: keys.algorithms().to_vec(),
        typ,
        issuer: issuer.issuer.clone(),
        audience: Some(server.canonical_uri.to_string()),
        leeway: server.leeway,
    };
    let claims =
        jwt::verify(token, |kid| keys.for_kid(kid), &validation, now).map_err(Rejection::Jwt)?;
    // The same single-audience rule as Warden's own tokens, except for the names the
    // registration allows besides the canonical URI (which `verify` found in `aud`).
    if !audience_allowed(
        claims.get("aud"),
        &server.canonical_uri,
        &settings.extra_audiences,
    ) {
        return Err(Rejection::SharedAudience);
    }
    Ok(claims)
}

/// Whether `aud` names this resource and nothing else but `extra` names.
fn audience_allowed(aud: Option<&Value>, canonical: &str, extra: &[String]) -> bool {
    if jwt::single_audience(aud) {
        return true;
    }
    match aud {
        Some(Value::Array(list)) => {
            !extra.is_empty()
                && list.iter().all(|a| {
                    a.as_str()
                        .is_some_and(|a| a == canonical || extra.iter().any(|e| e == a))
                })
        }
        _ => false,
    }
}
