//! Compact JWS for access tokens (RFC 9068), signed and verified strictly.
//!
//! Verification is written to refuse first: the algorithm must be on the caller's
//! allow-list *and* match the key's own algorithm (so `none` and HS256-with-a-public-key
//! cannot pass), the `typ` must be the one expected, and every time check takes `now`.

// Why hand-written rather than the `jsonwebtoken` crate (12, aws-lc backend), measured by
// `cargo bench --manifest-path bench/jose/Cargo.toml` (interleaved medians, 2-core machine):
// - The crate cannot be given `now` (its exp/nbf checks read the system clock) and never
//   checks `typ` or `iat`; it accepts a fractional `exp`, an array `iss` that holds the
//   issuer, an `aud` naming other resources too, `crit: ["b64"]`, and an `oct` JWK as a
//   key. Made to pass every case of `jwt/tests.rs`, it needs this file's rules as glue
//   around it: it would replace only the base64/JSON parsing and the signature call.
// - ES256, Warden's default: signing an access token is 1.5x slower with the crate (it
//   rebuilds the key pair from PKCS#8 on every call: 26.8 against 17.8 us); verifying is
//   the same (58.2 against 58.4 us). EdDSA is faster with it (sign 15.9 against 21.9 us,
//   verify 35.4 against 36.9 us), all from aws-lc's Ed25519 against ring's, not from the
//   crate's JOSE code.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::keys::{KeyError, SigningKey};

/// The `typ` of an RFC 9068 access token.
pub const AT_JWT_TYP: &str = "at+jwt";

/// Largest token accepted for parsing, to bound work on hostile input.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A JOSE header as Warden reads it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Header {
    /// The signature algorithm.
    pub alg: String,
    /// The media type of the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// The key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Critical extensions; any present means refusal (none are understood).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crit: Option<Value>,
    /// The public key that signed the token, carried in the token itself (RFC 7515
    /// §4.1.3). Only [`verify_with_embedded_key`] reads it (a DPoP proof is signed this
    /// way); the key-ring verifiers ignore it, so a token can never bring its own key to
    /// them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwk: Option<Value>,
}

/// Why a token was refused. The gateway turns every one into `invalid_token`; the
/// reason goes to the audit log, never to the client.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    /// Not three base64url parts of JSON, or too large.
    #[error("malformed token")]
    Malformed,
    /// `alg` not on the allow-list, or not the key's algorithm.
    #[error("algorithm {0:?} not allowed")]
    AlgNotAllowed(String),
    /// `typ` is not the expected one.
    #[error("unexpected typ")]
    WrongTyp,
    /// A `crit` header is present.
    #[error("unsupported critical header")]
    Crit,
    /// No key with this `kid` is known.
    #[error("unknown key id")]
    UnknownKid,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// `iss` differs from the expected issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain the expected audience.
    #[error("wrong audience")]
    WrongAudience,
    /// `exp` is in the past beyond the leeway.
    #[error("expired")]
    Expired,
    /// `nbf` (or `iat`) is in the future beyond the leeway.
    #[error("not yet valid")]
    NotYetValid,
    /// A required claim is missing or has the wrong type.
    #[error("missing or invalid claim {0}")]
    Claim(&'static str),
    /// `aud` names more than one audience (Warden's tokens are for exactly one server).
    #[error("token audience is not exactly one resource")]
    SharedAudience,
    /// There is no key to verify with.
    #[error("no verification key available")]
    NoKeys,
    /// Signing failed.
    #[error("signing failed")]
    Sign,
    /// The `jwk` header of a self-signed token is missing, is not a supported public key,
    /// or is a key of another algorithm than the header's `alg`.
    #[error("unusable key in the header")]
    HeaderKey,
    /// The `jwk` header of a self-signed token holds private or symmetric key material.
    #[error("private key material in the header")]
    PrivateHeaderKey,
}

impl From<KeyError> for JwtError {
    fn from(_: KeyError) -> Self {
        JwtError::Sign
    }
}

/// Signs `claims` with `key`, with header `typ`.
pub fn sign<C: Serialize + ?Sized>(
    claims: &C,
    typ: &str,
    key: &SigningKey,
) -> Result<String, JwtError> {
    let header = Header {
        alg: key.alg().as_str().to_owned(),
        typ: Some(typ.to_owned()),
        kid: Some(key.kid().to_owned()),
        crit: None,
        jwk: None,
    };
    let h = serde_json::to_vec(&header).map_err(|_| JwtError::Sign)?;
    let c = serde_json::to_vec(claims).map_err(|_| JwtError::Sign)?;
    let mut out = String::with_capacity((h.len() + c.len()) * 4 / 3 + 100);
    URL_SAFE_NO_PAD.encode_string(h, &mut out);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(c, &mut out);
    let sig = key.sign(out.as_bytes())?;
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(sig, &mut out);
    Ok(out)
}

/// A public key that verifies signatures, parsed from a JWK.
#[derive(Clone, Debug)]
pub struct VerifyingKey {
    /// The key id.
    pub kid: Option<String>,
    /// The JOSE algorithm this key verifies; fixed by the key, never by the token.
    pub alg: String,
    material: KeyMaterial,
}

#[derive(Clone, Debug)]
enum KeyMaterial {
    Ec(Vec<u8>),
    Ed(Vec<u8>),
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

impl VerifyingKey {
    /// Parses a public JWK (EC P-256, OKP Ed25519 or RSA). Private parts are ignored. An
    /// RSA key without an `alg` member verifies RS256.
    pub fn from_jwk(jwk: &Value) -> Result<Self, KeyError> {
        Self::from_jwk_or_rsa_alg(jwk, "RS256")
    }

    /// [`VerifyingKey::from_jwk`], with `rsa_alg` for an RSA key that names no `alg` (an
    /// RSA key serves the RS* and PS* algorithms alike; EC and OKP keys have one each).
    fn from_jwk_or_rsa_alg(jwk: &Value, rsa_alg: &str) -> Result<Self, KeyError> {
        let s = |k: &str| jwk.get(k).and_then(Value::as_str);
        let b = |k: &str| -> Result<Vec<u8>, KeyError> {
            s(k).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                .ok_or(KeyError::Invalid("JWK member"))
        };
        let kid = s("kid").map(str::to_owned);
        let (alg, material) = match (s("kty"), s("crv")) {
            (Some("EC"), Some("P-256")) => {
                let (x, y) = (b("x")?, b("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(KeyError::Invalid("EC point"));
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                ("ES256", KeyMaterial::Ec(point))
            }
            (Some("OKP"), Some("Ed25519")) => ("EdDSA", KeyMaterial::Ed(b("x")?)),
            (Some("RSA"), _) => {
                let alg = s("alg").unwrap_or(rsa_alg);
                if !matches!(
                    alg,
                    "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512"
                ) {
                    return Err(KeyError::Invalid("RSA alg"));
                }
                return Ok(Self {
                    kid,
                    alg: alg.to_owned(),
                    material: KeyMaterial::Rsa {
                        n: b("n")?,
                        e: b("e")?,
                    },
                });
            }
            _ => return Err(KeyError::Invalid("JWK kty/crv")),
        };
        if let Some(declared) = s("alg") {
            if declared != alg {
                return Err(KeyError::Invalid("JWK alg"));
            }
        }
        Ok(Self {
            kid,
            alg: alg.to_owned(),
            material,
        })
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match &self.material {
            KeyMaterial::Ec(point) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(msg, sig)
                    .is_ok()
            }
            KeyMaterial::Ed(x) => UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(msg, sig)
                .is_ok(),
            KeyMaterial::Rsa { n, e } => {
                let params: &signature::RsaParameters = match self.alg.as_str() {
                    "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                    "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                    "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                    "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                    "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
                    "PS512" => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => return false,
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, msg, sig)
                    .is_ok()
            }
        }
    }
}

/// What a token must satisfy, besides its signature.
#[derive(Clone, Debug)]
pub struct Validation {
    /// Algorithms accepted. `none` and HMAC names are refused even if listed.
    pub algorithms: Vec<String>,
    /// Accepted `typ` values, compared case-insensitively with an optional
    /// `application/` prefix (RFC 8725 §3.11). Empty means `typ` is not checked.
    pub typ: Vec<String>,
    /// The exact `iss` expected.
    pub issuer: String,
    /// The audience that must appear in `aud`.
    pub audience: Option<String>,
    /// Clock-skew tolerance, seconds.
    pub leeway: i64,
}

/// A token that parsed: its header, claims, and the signing input and signature.
#[derive(Debug)]
pub struct Parsed {
    /// The JOSE header.
    pub header: Header,
    /// The claims set.
    pub claims: Map<String, Value>,
    signing_input_len: usize,
    signature: Vec<u8>,
}

/// Parses a compact JWS without verifying it.
pub fn parse(token: &str) -> Result<Parsed, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.splitn(4, '.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let dec = |p: &str| URL_SAFE_NO_PAD.decode(p).map_err(|_| JwtError::Malformed);
    let header: Header = serde_json::from_slice(&dec(h)?).map_err(|_| JwtError::Malformed)?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&dec(c)?).map_err(|_| JwtError::Malformed)?;
    Ok(Parsed {
        header,
        claims,
        signing_input_len: h.len() + 1 + c.len(),
        signature: dec(s)?,
    })
}

/// Whether a `typ` header names `expected`: compared case-insensitively, with an
/// optional `application/` prefix on either side (RFC 8725 §3.11).
pub fn typ_matches(actual: &str, expected: &str) -> bool {
    let norm = |t: &str| {
        let t = t.to_ascii_lowercase();
        t.strip_prefix("application/")
            .map(str::to_owned)
            .unwrap_or(t)
    };
    norm(actual) == norm(expected)
}

/// Whether the time claims (`exp`, `nbf`, `iat`) are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Refuse a token past `exp` (or before `nbf`/`iat`) beyond the leeway.
    Enforce,
    /// Accept a token whatever its time claims: only for revoking it (RFC 7009), where
    /// an expired token is still the caller's to revoke.
    Ignore,
}

/// The audience a Warden access token must name.
#[derive(Clone, Copy, Debug)]
pub enum Audience<'a> {
    /// Exactly this resource, and nothing else.
    Exactly(&'a str),
    /// Any one resource (introspection, revocation and token exchange look at tokens for
    /// every server).
    AnyOne,
}

/// What a Warden access token must satisfy besides a signature by one of its keys.
#[derive(Clone, Copy, Debug)]
pub struct AccessTokenRule<'a> {
    /// Warden's issuer identifier.
    pub issuer: &'a str,
    /// The audience rule.
    pub audience: Audience<'a>,
    /// Clock-skew tolerance, seconds.
    pub leeway: i64,
    /// Whether expiry is checked.
    pub expiry: Expiry,
}

/// Which header `typ` values a token may carry. Each kind of JWT is told apart by its
/// `typ` (RFC 8725 §3.11), compared case-insensitively with an optional `application/`
/// prefix.
#[derive(Clone, Copy, Debug)]
pub enum TypRule<'a> {
    /// Present, and one of these.
    OneOf(&'a [&'a str]),
    /// Absent, or one of these: for tokens whose issuers may leave `typ` out (ID tokens,
    /// platform tokens).
    AbsentOr(&'a [&'a str]),
    /// Not checked.
    Any,
}

/// What a token signed by one of an issuer's keys must satisfy besides its signature.
#[derive(Clone, Copy, Debug)]
pub struct KeyRingRule<'a> {
    /// The header `typ` accepted.
    pub typ: TypRule<'a>,
    /// The exact `iss` expected.
    pub issuer: &'a str,
    /// When set, `aud` (a string or an array) must contain at least one of these; an
    /// empty list accepts nothing.
    pub audience: Option<&'a [&'a str]>,
    /// Clock-skew tolerance, seconds.
    pub leeway: i64,
    /// Whether expiry is checked.
    pub expiry: Expiry,
}

/// Verifies a token signed by one of `keys`, an issuer's key ring: the one entry point for
/// Warden's own tokens and for tokens from identity providers and workload platforms.
///
/// - The algorithm allow-list is the algorithms of `keys`, so an asymmetric issuer's
///   tokens never verify under HMAC or `none`;
/// - a key is tried only if its `kid` equals the header's (every key when the header has
///   none) and its own algorithm is the header's `alg`;
/// - then `typ`, `iss`, `aud` and the time claims as `rule` says.
pub fn verify_with_key_ring(
    token: &str,
    keys: &[std::sync::Arc<VerifyingKey>],
    rule: &KeyRingRule<'_>,
    now: i64,
) -> Result<Map<String, Value>, JwtError> {
    if keys.is_empty() {
        return Err(JwtError::NoKeys);
    }
    let mut algorithms: Vec<String> = keys.iter().map(|k| k.alg.clone()).collect();
    algorithms.sort_unstable();
    algorithms.dedup();
    let checks = Checks {
        algorithms: &algorithms,
        typ: rule.typ,
        issuer: rule.issuer,
        audience: rule.audience,
        leeway: rule.leeway,
    };
    let lookup = |kid: Option<&str>| -> Vec<&VerifyingKey> {
        keys.iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .map(|k| &**k)
            .collect()
    };
    verify_with(token, lookup, &checks, now, rule.expiry)
}

/// Verifies one of Warden's own access tokens: the one function for the gateway, the
/// admin API, introspection, revocation and token exchange.
///
/// - [`verify_with_key_ring`] over Warden's key ring;
/// - `typ` must be `at+jwt` (RFC 9068 §2.1);
/// - `iss` must be `rule.issuer`;
/// - `aud` must name exactly one resource (a string, or an array of one), and with
///   [`Audience::Exactly`] that resource;
/// - time claims as `rule.expiry` says, with `rule.leeway`.
pub fn verify_access_token(
    token: &str,
    keys: &[std::sync::Arc<VerifyingKey>],
    rule: &AccessTokenRule<'_>,
    now: i64,
) -> Result<Map<String, Value>, JwtError> {
    let exactly;
    let audience = match rule.audience {
        Audience::Exactly(aud) => {
            exactly = [aud];
            Some(&exactly[..])
        }
        Audience::AnyOne => None,
    };
    let key_ring_rule = KeyRingRule {
        typ: TypRule::OneOf(&[AT_JWT_TYP]),
        issuer: rule.issuer,
        audience,
        leeway: rule.leeway,
        expiry: rule.expiry,
    };
    let claims = verify_with_key_ring(token, keys, &key_ring_rule, now)?;
    if !single_audience(claims.get("aud")) {
        return Err(JwtError::SharedAudience);
    }
    Ok(claims)
}

/// Whether `aud` names exactly one audience: a string, or an array of one string.
pub fn single_audience(aud: Option<&Value>) -> bool {
    match aud {
        Some(Value::String(_)) => true,
        Some(Value::Array(list)) => matches!(list.as_slice(), [Value::String(_)]),
        _ => false,
    }
}

/// Verifies `token` against the keys `lookup` returns for its `kid`, then the claims.
///
/// `lookup` receives the `kid` (if any) and returns candidate keys; a key is used only if
/// its own algorithm equals the header's `alg`.
pub fn verify<'k>(
    token: &str,
    lookup: impl FnOnce(Option<&str>) -> Vec<&'k VerifyingKey>,
    v: &Validation,
    now: i64,
) -> Result<Map<String, Value>, JwtError> {
    v.with_checks(|checks| verify_with(token, lookup, checks, now, Expiry::Enforce))
}

/// The checks of a [`Validation`] or a [`KeyRingRule`], borrowed: what the one verifier
/// below reads.
struct Checks<'a> {
    algorithms: &'a [String],
    typ: TypRule<'a>,
    issuer: &'a str,
    audience: Option<&'a [&'a str]>,
    leeway: i64,
}

impl Validation {
    /// Runs `f` with this validation's checks (an empty `typ` list is [`TypRule::Any`]).
    fn with_checks<T>(&self, f: impl FnOnce(&Checks<'_>) -> T) -> T {
        let typ: Vec<&str> = self.typ.iter().map(String::as_str).collect();
        let audience: Option<[&str; 1]> = self.audience.as_deref().map(|a| [a]);
        f(&Checks {
            algorithms: &self.algorithms,
            typ: if typ.is_empty() {
                TypRule::Any
            } else {
                TypRule::OneOf(&typ)
            },
            issuer: &self.issuer,
            audience: audience.as_ref().map(|a| &a[..]),
            leeway: self.leeway,
        })
    }
}

fn verify_with<'k>(
    token: &str,
    lookup: impl FnOnce(Option<&str>) -> Vec<&'k VerifyingKey>,
    v: &Checks<'_>,
    now: i64,
    expiry: Expiry,
) -> Result<Map<String, Value>, JwtError> {
    let parsed = parse(token)?;
    check_header(&parsed.header, v.algorithms, v.typ)?;
    check_signature(token, &parsed, &lookup(parsed.header.kid.as_deref()))?;
    match expiry {
        Expiry::Enforce => {
            validate_identity(&parsed.claims, v)?;
            validate_times(&parsed.claims, v.leeway, now)?;
        }
        Expiry::Ignore => validate_identity(&parsed.claims, v)?,
    }
    Ok(parsed.claims)
}

/// Members of a JWK that hold private or symmetric key material (RFC 7518 §6.2.2,
/// §6.3.2 and §6.4.1): a public key carries none of them.
pub const PRIVATE_JWK_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What a token signed by the key in its own `jwk` header must satisfy: see
/// [`verify_with_embedded_key`].
#[derive(Clone, Copy, Debug)]
pub struct EmbeddedKeyRule<'a> {
    /// Algorithms accepted. `none` and HMAC names are refused even if listed.
    pub algorithms: &'a [&'a str],
    /// The header `typ` accepted.
    pub typ: TypRule<'a>,
}

/// Verifies a token signed by the public key it carries in its `jwk` header, as a DPoP
/// proof is (RFC 9449 §4.3), and returns its header and claims. No claim is checked:
/// what a self-signed token proves is possession of the key, and its claims are the
/// caller's to judge.
///
/// The header passes the same checks as every other token (`alg` on `rule.algorithms`
/// and never `none` or HMAC, no `crit`, `typ` as `rule.typ` says); then the `jwk` must
/// be present, hold no private member ([`PRIVATE_JWK_MEMBERS`]), be a key Warden can
/// verify with, and be a key of the header's `alg`, and the signature must verify with
/// it. The header's `kid`, if any, is ignored.
pub fn verify_with_embedded_key(
    token: &str,
    rule: &EmbeddedKeyRule<'_>,
) -> Result<(Header, Map<String, Value>), JwtError> {
    let parsed = parse(token)?;
    check_header(&parsed.header, rule.algorithms, rule.typ)?;
    let jwk = parsed
        .header
        .jwk
        .as_ref()
        .and_then(Value::as_object)
        .ok_or(JwtError::HeaderKey)?;
    if PRIVATE_JWK_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(JwtError::PrivateHeaderKey);
    }
    let alg = parsed.header.alg.as_str();
    let key = VerifyingKey::from_jwk_or_rsa_alg(&Value::Object(jwk.clone()), alg)
        .map_err(|_| JwtError::HeaderKey)?;
    if key.alg != alg {
        return Err(JwtError::HeaderKey);
    }
    check_signature(token, &parsed, &[&key])?;
    Ok((parsed.header, parsed.claims))
}

/// The header checks every token passes before any key is tried: `alg` on the allow-list
/// and never `none` or HMAC, no `crit`, and `typ` as `typ` says.
fn check_header(
    header: &Header,
    algorithms: &[impl AsRef<str>],
    typ: TypRule<'_>,
) -> Result<(), JwtError> {
    let alg = header.alg.as_str();
    let forbidden = alg.eq_ignore_ascii_case("none") || alg.starts_with("HS");
    if forbidden || !algorithms.iter().any(|a| a.as_ref() == alg) {
        return Err(JwtError::AlgNotAllowed(alg.chars().take(16).collect()));
    }
    if header.crit.is_some() {
        return Err(JwtError::Crit);
    }
    check_typ(header.typ.as_deref(), typ)
}

/// The signature of `parsed` (parsed from `token`) under one of `candidates`: only a key
/// whose own algorithm is the header's `alg` is tried.
fn check_signature(
    token: &str,
    parsed: &Parsed,
    candidates: &[&VerifyingKey],
) -> Result<(), JwtError> {
    let alg = parsed.header.alg.as_str();
    let mut candidates = candidates.iter().filter(|k| k.alg == alg).peekable();
    if candidates.peek().is_none() {
        return Err(JwtError::UnknownKid);
    }
    let input = &token.as_bytes()[..parsed.signing_input_len];
    if candidates.any(|k| k.verify(input, &parsed.signature)) {
        Ok(())
    } else {
        Err(JwtError::BadSignature)
    }
}

/// The header `typ` against `rule`.
fn check_typ(typ: Option<&str>, rule: TypRule<'_>) -> Result<(), JwtError> {
    let (accepted, absent_ok) = match rule {
        TypRule::Any => return Ok(()),
        TypRule::OneOf(accepted) => (accepted, false),
        TypRule::AbsentOr(accepted) => (accepted, true),
    };
    match typ {
        None if absent_ok => Ok(()),
        Some(typ) if accepted.iter().any(|t| typ_matches(typ, t)) => Ok(()),
        _ => Err(JwtError::WrongTyp),
    }
}

/// Checks `iss`, `aud`, `exp`, `nbf` and `iat` of verified claims.
pub fn validate_claims(
    claims: &Map<String, Value>,
    v: &Validation,
    now: i64,
) -> Result<(), JwtError> {
    v.with_checks(|checks| validate_identity(claims, checks))?;
    validate_times(claims, v.leeway, now)
}

/// `iss` and `aud`.
fn validate_identity(claims: &Map<String, Value>, v: &Checks<'_>) -> Result<(), JwtError> {
    if claims.get("iss").and_then(Value::as_str) != Some(v.issuer) {
        return Err(JwtError::WrongIssuer);
    }
    if let Some(expected) = v.audience {
        let named = |a: &Value| a.as_str().is_some_and(|a| expected.contains(&a));
        let ok = match claims.get("aud") {
            Some(Value::Array(list)) => list.iter().any(named),
            Some(a) => named(a),
            None => false,
        };
        if !ok {
            return Err(JwtError::WrongAudience);
        }
    }
    Ok(())
}

/// `exp` (required), `nbf` and `iat`, with the leeway.
fn validate_times(claims: &Map<String, Value>, leeway: i64, now: i64) -> Result<(), JwtError> {
    let int = |name: &'static str| -> Result<Option<i64>, JwtError> {
        match claims.get(name) {
            None => Ok(None),
            Some(val) => val.as_i64().map(Some).ok_or(JwtError::Claim(name)),
        }
    };
    let exp = int("exp")?.ok_or(JwtError::Claim("exp"))?;
    if now > exp.saturating_add(leeway) {
        return Err(JwtError::Expired);
    }
    if let Some(nbf) = int("nbf")? {
        if nbf > now.saturating_add(leeway) {
            return Err(JwtError::NotYetValid);
        }
    }
    if let Some(iat) = int("iat")? {
        check_issued_at(iat, None, leeway, now)?;
    }
    Ok(())
}

/// `iat` against `now`: refused as [`JwtError::NotYetValid`] when later than
/// `now + leeway`, and, with a `max_age`, as [`JwtError::Expired`] when earlier than
/// `now - max_age - leeway` (a token that carries no `exp`, such as a DPoP proof, is
/// accepted for `max_age` seconds after it was made).
pub fn check_issued_at(
    iat: i64,
    max_age: Option<i64>,
    leeway: i64,
    now: i64,
) -> Result<(), JwtError> {
    if iat > now.saturating_add(leeway) {
        return Err(JwtError::NotYetValid);
    }
    match max_age {
        Some(max_age) if now > iat.saturating_add(max_age).saturating_add(leeway) => {
            Err(JwtError::Expired)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
