//! Secret values as types: generation, hashing and constant-time comparison.
//!
//! Every secret Warden mints carries a recognisable prefix (`wdn_rt_`, `wdn_cs_`, …) so
//! that the log redactor and secret scanners can find one even where it was never meant
//! to be. Nothing here derives `Debug`; the impls print `[REDACTED]`.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The kinds of secret Warden mints, each with its own prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    /// An opaque access token.
    AccessToken,
    /// A refresh token.
    RefreshToken,
    /// An authorization code.
    AuthCode,
    /// A client secret.
    ClientSecret,
    /// An initial access token for dynamic registration.
    InitialAccessToken,
    /// A browser session identifier.
    Session,
    /// A CSRF token.
    Csrf,
}

impl SecretKind {
    /// The prefix that marks this kind of secret.
    pub fn prefix(self) -> &'static str {
        match self {
            SecretKind::AccessToken => "wdn_at_",
            SecretKind::RefreshToken => "wdn_rt_",
            SecretKind::AuthCode => "wdn_ac_",
            SecretKind::ClientSecret => "wdn_cs_",
            SecretKind::InitialAccessToken => "wdn_iat_",
            SecretKind::Session => "wdn_sess_",
            SecretKind::Csrf => "wdn_csrf_",
        }
    }
}

/// A secret string. It zeroizes on drop and never prints itself.
///
/// It has no `PartialEq`: `==` on strings stops at the first differing byte, which leaks
/// how much of a guess was right. Compare a secret with [`ct_eq`] on its bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Call sites are the places a secret leaves its wrapper: keep few.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

/// Errors from the system random generator.
#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomError;

/// Fills `N` bytes from the system CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut buf = [0u8; N];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| RandomError)?;
    Ok(buf)
}

/// Mints a new secret of `kind`: its prefix and 256 random bits, base64url.
pub fn generate(kind: SecretKind) -> Result<SecretString, RandomError> {
    let mut bytes = random_bytes::<32>()?;
    let token = format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes));
    bytes.zeroize();
    Ok(SecretString(token))
}

/// A random identifier that is not secret (client ids, `jti`, key ids): 128 bits as 32
/// lowercase hex digits.
///
/// Hex rather than base64url: an id is typed on command lines, and a base64url id starts
/// with `-` one time in 64, which every argument parser takes for an option.
pub fn random_id() -> Result<String, RandomError> {
    Ok(hex(&random_bytes::<16>()?))
}

/// `bytes` as lowercase hex, two digits a byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The SHA-256 of a high-entropy token, which is what the store keeps.
///
/// Plain SHA-256 is enough for 256-bit random tokens: there is nothing to brute-force.
pub fn token_hash(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Keyed hashing of client secrets.
///
/// Client secrets are random and high-entropy, so a slow password hash buys nothing and
/// would cap the token endpoint at a few dozen requests per second. A keyed HMAC means a
/// stolen database alone does not even allow an offline check of a guessed secret.
#[derive(Clone)]
pub struct SecretHasher {
    key: hmac::Key,
}

impl SecretHasher {
    /// A hasher keyed from `key_material` (derived from the master key).
    pub fn new(key_material: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key_material),
        }
    }

    /// The keyed hash of `secret`.
    pub fn hash(&self, secret: &str) -> Vec<u8> {
        hmac::sign(&self.key, secret.as_bytes()).as_ref().to_vec()
    }

    /// Whether `secret` matches `stored`, in constant time.
    pub fn verify(&self, secret: &str, stored: &[u8]) -> bool {
        hmac::verify(&self.key, secret.as_bytes(), stored).is_ok()
    }
}

impl fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHasher([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_hex_and_never_look_like_an_option() {
        for _ in 0..256 {
            let id = random_id().unwrap();
            assert_eq!(id.len(), 32);
            assert!(id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
        assert_ne!(random_id().unwrap(), random_id().unwrap());
    }

    #[test]
    fn generated_secrets_are_prefixed_unique_and_long() {
        let a = generate(SecretKind::RefreshToken).unwrap();
        let b = generate(SecretKind::RefreshToken).unwrap();
        assert!(a.expose().starts_with("wdn_rt_"));
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), "wdn_rt_".len() + 43);
    }

    #[test]
    fn debug_never_prints_the_value() {
        let s = SecretString::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        let h = SecretHasher::new(b"k");
        assert!(!format!("{h:?}").contains('k') || format!("{h:?}").contains("REDACTED"));
    }

    #[test]
    fn keyed_hash_verifies_only_the_right_secret_and_key() {
        let h = SecretHasher::new(b"key one");
        let stored = h.hash("wdn_cs_abc");
        assert!(h.verify("wdn_cs_abc", &stored));
        assert!(!h.verify("wdn_cs_abd", &stored));
        assert!(!SecretHasher::new(b"key two").verify("wdn_cs_abc", &stored));
    }

    /// Whether `T` implements `PartialEq`, decided at compile time by method resolution:
    /// the by-reference impl is found first when it applies, the fallback otherwise.
    struct EqProbe<T>(std::marker::PhantomData<T>);

    trait HasEq {
        fn has_eq(&self) -> bool {
            true
        }
    }
    impl<T: PartialEq> HasEq for EqProbe<T> {}

    trait LacksEq {
        fn has_eq(&self) -> bool {
            false
        }
    }
    impl<T> LacksEq for &EqProbe<T> {}

    #[test]
    #[allow(
        clippy::needless_borrow,
        reason = "the explicit borrow is what lets the probe's by-reference impl be tried first"
    )]
    fn secret_string_has_no_variable_time_equality() {
        // The probe itself answers both ways.
        assert!((&EqProbe::<String>(std::marker::PhantomData)).has_eq());
        assert!(!(&EqProbe::<SecretHasher>(std::marker::PhantomData)).has_eq());
        // A secret can only be compared through `ct_eq`.
        assert!(!(&EqProbe::<SecretString>(std::marker::PhantomData)).has_eq());
        let a = SecretString::new("wdn_cs_same");
        assert!(ct_eq(a.expose().as_bytes(), b"wdn_cs_same"));
        assert!(!ct_eq(a.expose().as_bytes(), b"wdn_cs_sama"));
    }

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }
}
