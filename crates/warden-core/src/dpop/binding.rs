//! The binding of a token to a DPoP key (RFC 9449 §6, §7.1, §7.2).

use serde_json::{json, Value};

use super::DpopError;

/// The confirmation claim of a token bound to the key with thumbprint `jkt` (RFC 9449
/// §6.1): `{"jkt": jkt}`, the value of `cnf` in the token and in its introspection.
pub fn cnf_for(jkt: &str) -> Value {
    json!({ "jkt": jkt })
}

/// What a protected resource must check about a token's binding, once the token and any
/// proof have been verified:
///
/// - `claims_cnf` is the token's `cnf` (from its claims or its introspection);
/// - `proof_jkt` is [`Proof::jkt`](super::Proof::jkt) of the request's proof, verified
///   by [`verify_proof`](super::verify_proof) with this token as `access_token`, or
///   `None` when the request has no `DPoP` header;
/// - `scheme_is_dpop` is whether the `Authorization` scheme was `DPoP` rather than
///   `Bearer`.
///
/// The rules:
/// - a token with `cnf.jkt` came with the `DPoP` scheme (§7.2: a DPoP-bound token
///   received as a bearer token MUST be refused), with a proof (§7.1), by the key the
///   token is bound to (§6, §7.1);
/// - a token with a `cnf` that has no `jkt` is bound by a method Warden does not support
///   (such as mTLS `x5t#S256`) and is refused rather than taken as a bearer token;
/// - a token with no `cnf` is a bearer token: with the `DPoP` scheme it is refused, since
///   §4.3 step 12 asks to confirm that the key the token is bound to is the proof's and
///   such a token is bound to none; with the `Bearer` scheme it passes, and a `DPoP`
///   header sent along changes nothing.
pub fn check_binding(
    claims_cnf: Option<&Value>,
    proof_jkt: Option<&str>,
    scheme_is_dpop: bool,
) -> Result<(), DpopError> {
    let Some(cnf) = claims_cnf else {
        return if scheme_is_dpop {
            Err(DpopError::UnboundTokenAsDpop)
        } else {
            Ok(())
        };
    };
    let bound_to = cnf
        .as_object()
        .and_then(|cnf| cnf.get("jkt"))
        .and_then(Value::as_str)
        .ok_or(DpopError::UnsupportedConfirmation)?;
    if !scheme_is_dpop {
        return Err(DpopError::BoundTokenAsBearer);
    }
    check_key(bound_to, proof_jkt.ok_or(DpopError::MissingProof)?)
}

/// Where only DPoP-bound tokens are accepted (a server's `require_dpop`, a client's
/// `dpop_bound_access_tokens`, RFC 9449 §5.2): `bound` says whether the token is, or at
/// the token endpoint whether the token about to be issued would be.
pub fn require_binding(required: bool, bound: bool) -> Result<(), DpopError> {
    if required && !bound {
        Err(DpopError::BindingRequired)
    } else {
        Ok(())
    }
}

/// Who must hold the key a grant is bound to, at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantHolder {
    /// The grant is bound to the key itself: an authorization code with `dpop_jkt`
    /// (§10), a public client's refresh token (§5), a bound subject token in token
    /// exchange. The proof must be by that key.
    Key,
    /// The grant is held by an authenticated confidential client, whose refresh tokens
    /// are bound to its credentials rather than to a key (§5): any key may prove, but a
    /// proof is still required, so that no token issued from a bound grant is a bearer
    /// token.
    ConfidentialClient,
}

/// The key a token issued at the token endpoint is bound to, from the grant's binding
/// and the request's proof (verified already): the one rule for every grant.
///
/// - `bound_to` is the key the grant is bound to (`dpop_jkt` of a code, the key of a
///   refresh family, the `cnf.jkt` of a subject token), or `None`;
/// - `proof_jkt` is [`Proof::jkt`](super::Proof::jkt) of the request's proof, if any.
///
/// A bound grant without a proof is refused ([`DpopError::MissingProof`]): a binding is
/// never dropped. A proof by another key than the grant's is refused when
/// `holder` is [`GrantHolder::Key`]. Otherwise the new token is bound to the proof's key,
/// if there is a proof: an unbound grant may become bound, never the reverse.
pub fn grant_binding(
    bound_to: Option<&str>,
    holder: GrantHolder,
    proof_jkt: Option<&str>,
) -> Result<Option<String>, DpopError> {
    match (bound_to, proof_jkt) {
        (Some(_), None) => Err(DpopError::MissingProof),
        (Some(bound), Some(proof)) => {
            if holder == GrantHolder::Key {
                check_key(bound, proof)?;
            }
            Ok(Some(proof.to_owned()))
        }
        (None, proof) => Ok(proof.map(str::to_owned)),
    }
}

/// Whether the proof's key, `proof_jkt`, is the key `bound_to` names: the one comparison
/// of thumbprints, for tokens, codes and refresh tokens alike.
pub(super) fn check_key(bound_to: &str, proof_jkt: &str) -> Result<(), DpopError> {
    // Thumbprints are public; equality is all that matters.
    if bound_to == proof_jkt {
        Ok(())
    } else {
        Err(DpopError::KeyMismatch)
    }
}
