//! `jwt::verify` (and `verify_access_token`) written on `jsonwebtoken` instead of ring:
//! the crate does the parsing and the signature, and every rule it cannot express is glue,
//! marked as such.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::{Map, Value};
use warden_core::jwt::{self, Audience, Expiry, JwtError, Validation, AT_JWT_TYP, MAX_TOKEN_LEN};

/// A verification key bound to one algorithm, as `jwt::VerifyingKey` is.
pub struct Key {
    pub kid: Option<String>,
    pub alg: Algorithm,
    key: DecodingKey,
}

impl Key {
    /// The crate's key, for timing its bare `decode`.
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

/// `VerifyingKey::from_jwk`. The crate turns any JWK into a key (an `oct` JWK into an
/// HMAC key, a P-384 one into an EC key) without saying which algorithm it is for: the
/// binding to one algorithm is glue.
pub fn key_from_jwk(jwk: &Value) -> Result<Key, &'static str> {
    let parsed: Jwk = serde_json::from_value(jwk.clone()).map_err(|_| "JWK")?;
    let declared = match parsed.common.key_algorithm {
        None => None,
        Some(a) => Some(Algorithm::try_from(a).map_err(|_| "JWK alg")?),
    };
    let alg = match &parsed.algorithm {
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        AlgorithmParameters::RSA(_) => match declared {
            None => Algorithm::RS256,
            Some(a) if a.family() == AlgorithmFamily::Rsa => a,
            Some(_) => return Err("RSA alg"),
        },
        _ => return Err("JWK kty/crv"),
    };
    if declared.is_some_and(|d| d != alg) {
        return Err("JWK alg");
    }
    let key = DecodingKey::from_jwk(&parsed).map_err(|_| "JWK member")?;
    Ok(Key {
        kid: parsed.common.key_id.clone(),
        alg,
        key,
    })
}

fn refusal(e: &jsonwebtoken::errors::Error) -> JwtError {
    match e.kind() {
        ErrorKind::InvalidSignature => JwtError::BadSignature,
        ErrorKind::InvalidIssuer => JwtError::WrongIssuer,
        ErrorKind::InvalidAudience => JwtError::WrongAudience,
        ErrorKind::ExpiredSignature => JwtError::Expired,
        ErrorKind::ImmatureSignature => JwtError::NotYetValid,
        ErrorKind::InvalidAlgorithm => JwtError::AlgNotAllowed(String::new()),
        ErrorKind::MissingRequiredClaim(c) | ErrorKind::InvalidClaimFormat(c) => match c.as_str() {
            "iss" => JwtError::WrongIssuer,
            "aud" => JwtError::WrongAudience,
            _ => JwtError::Claim("exp"),
        },
        _ => JwtError::Malformed,
    }
}

/// `jwt::verify`.
pub fn verify<'k>(
    token: &str,
    lookup: impl FnOnce(Option<&str>) -> Vec<&'k Key>,
    v: &Validation,
    now: i64,
) -> Result<Map<String, Value>, JwtError> {
    verify_with(token, lookup, v, now, Expiry::Enforce)
}

/// `jwt::verify_access_token`.
pub fn verify_access_token(
    token: &str,
    keys: &[Key],
    issuer: &str,
    audience: Audience<'_>,
    leeway: i64,
    expiry: Expiry,
    now: i64,
) -> Result<Map<String, Value>, JwtError> {
    if keys.is_empty() {
        return Err(JwtError::NoKeys);
    }
    let mut algorithms: Vec<String> = keys.iter().map(|k| alg_name(k.alg).to_owned()).collect();
    algorithms.sort_unstable();
    algorithms.dedup();
    let v = Validation {
        algorithms,
        typ: vec![AT_JWT_TYP.to_owned()],
        issuer: issuer.to_owned(),
        audience: match audience {
            Audience::Exactly(aud) => Some(aud.to_owned()),
            Audience::AnyOne => None,
        },
        leeway,
    };
    let lookup = |kid: Option<&str>| -> Vec<&Key> {
        keys.iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .collect()
    };
    let claims = verify_with(token, lookup, &v, now, expiry)?;
    // Glue: the crate's audience rule is "contains one of", never "exactly one".
    if !jwt::single_audience(claims.get("aud")) {
        return Err(JwtError::SharedAudience);
    }
    Ok(claims)
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        _ => "",
    }
}

fn verify_with<'k>(
    token: &str,
    lookup: impl FnOnce(Option<&str>) -> Vec<&'k Key>,
    v: &Validation,
    now: i64,
    expiry: Expiry,
) -> Result<Map<String, Value>, JwtError> {
    // Glue: the crate parses input of any size.
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed);
    }
    // The crate refuses `alg: none` here (no such `Algorithm`), and any `crit` but `b64`.
    let header = jsonwebtoken::decode_header(token).map_err(|e| refusal(&e))?;
    let alg = header.alg;
    // Glue: the crate verifies HS256 if it is listed and the key is an HMAC key.
    let name = alg_name(alg);
    if alg.family() == AlgorithmFamily::Hmac || !v.algorithms.iter().any(|a| a == name) {
        return Err(JwtError::AlgNotAllowed(name.to_owned()));
    }
    // Glue: the crate accepts `crit: ["b64"]` with `b64: true`; Warden accepts no `crit`.
    if header.crit.is_some() {
        return Err(JwtError::Crit);
    }
    // Glue: the crate never looks at `typ`.
    if !v.typ.is_empty() {
        let typ = header.typ.as_deref().ok_or(JwtError::WrongTyp)?;
        if !v.typ.iter().any(|t| typ_matches(typ, t)) {
            return Err(JwtError::WrongTyp);
        }
    }
    // Glue: the crate has no key ring; a key is tried only for its own algorithm.
    let candidates: Vec<&Key> = lookup(header.kid.as_deref())
        .into_iter()
        .filter(|k| k.alg == alg)
        .collect();
    if candidates.is_empty() {
        return Err(JwtError::UnknownKid);
    }
    let mut rule = jsonwebtoken::Validation::new(alg);
    // The crate's time checks read the system clock (`get_current_timestamp`), so they
    // cannot be given `now`: off here, done after.
    rule.validate_exp = false;
    rule.validate_nbf = false;
    rule.leeway = 0;
    rule.set_issuer(&[&v.issuer]);
    match &v.audience {
        Some(aud) => {
            rule.set_audience(&[aud]);
            rule.set_required_spec_claims(&["exp", "iss", "aud"]);
        }
        None => {
            rule.validate_aud = false;
            rule.set_required_spec_claims(&["exp", "iss"]);
        }
    }
    let mut last = JwtError::BadSignature;
    for key in candidates {
        match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &rule) {
            Ok(data) => {
                let claims = data.claims;
                // Glue: Warden's own claim rules again. The crate cannot be given
                // `now`, accepts a fractional `exp`, never checks `iat`, and accepts an
                // array `iss` that contains the issuer.
                match expiry {
                    Expiry::Enforce => jwt::validate_claims(&claims, v, now)?,
                    Expiry::Ignore => {
                        if claims.get("iss").and_then(Value::as_str) != Some(&v.issuer) {
                            return Err(JwtError::WrongIssuer);
                        }
                    }
                }
                return Ok(claims);
            }
            Err(e) => {
                last = refusal(&e);
                if last != JwtError::BadSignature {
                    return Err(last);
                }
            }
        }
    }
    Err(last)
}

/// RFC 8725 §3.11: compared without case, `application/` optional.
fn typ_matches(actual: &str, expected: &str) -> bool {
    let bare = |t: &str| -> String {
        let t = t.to_ascii_lowercase();
        match t.strip_prefix("application/") {
            Some(rest) => rest.to_owned(),
            None => t,
        }
    };
    bare(actual) == bare(expected)
}
