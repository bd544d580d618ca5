//! The sender constraint of a gateway request (RFC 9449 §7): whether the token may be
//! used by whoever sent it.
//!
//! A token with `cnf.jkt` (Warden's or an external issuer's) is accepted only with the
//! `DPoP` scheme and a proof, for this request, by the key it is bound to; a token
//! without `cnf` is a bearer token and is refused with the `DPoP` scheme. The rules are
//! [`warden_core::dpop::check_binding`]; the proof, its nonce and its replay are
//! [`crate::dpop::Dpop::accept`]'s, shared with the token endpoint.

use axum::http::request::Parts;
use warden_core::credentials::AccessToken;
use warden_core::dpop;

use super::challenge::GatewayError;
use super::registry::Protected;
use super::validate::Principal;
use crate::dpop::{Dpop, ProofFailure, Request};
use crate::App;

/// Checks that `presented` may be used by this request, given the validated token's
/// binding: `htu` is the URI the request was sent to (the server's canonical URI, or its
/// legacy message endpoint), as Warden publishes it.
pub(super) async fn confirm(
    app: &App,
    server: &Protected,
    htu: &str,
    parts: &Parts,
    presented: AccessToken<'_>,
    principal: &Principal,
    now: i64,
) -> Result<(), GatewayError> {
    // With the Bearer scheme a `DPoP` header changes nothing (§7.2): a bound token is
    // refused below, an unbound one is a bearer token.
    let proof = match presented.dpop {
        true => Dpop::header(&parts.headers).map_err(GatewayError::Dpop)?,
        false => None,
    };
    let accepted = match proof {
        Some(proof) => {
            let request = Request {
                method: parts.method.as_str(),
                uri: htu,
                access_token: Some(presented.token),
                expected_jkt: None,
            };
            let accepted = app.dpop.accept(&app.store, proof, &request, now).await;
            Some(accepted.map_err(|failure| match failure {
                ProofFailure::Refused(e) => GatewayError::Dpop(e),
                ProofFailure::Unavailable => GatewayError::ReplayCheckUnavailable,
            })?)
        }
        None => None,
    };
    let jkt = accepted.as_ref().map(|proof| proof.jkt.as_str());
    dpop::require_binding(server.require_dpop, principal.cnf().is_some())
        .and_then(|()| dpop::check_binding(principal.cnf(), jkt, presented.dpop))
        .map_err(GatewayError::Dpop)
}
