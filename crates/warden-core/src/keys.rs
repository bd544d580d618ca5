//! The master key, encryption at rest, and signing keys.
//!
//! The master key (32 random bytes) never encrypts anything directly: purpose-specific
//! subkeys are derived from it with HKDF, so a signing-key ciphertext and a client-secret
//! hash can never be confused for each other.

use std::fmt;

use argon2::password_hash::rand_core::OsRng;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::hkdf;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rsa::traits::PublicKeyParts as _;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::secret::{random_bytes, SecretHasher};

/// Errors about keys. None of them carries key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The master key text is not 32 bytes of base64.
    #[error("the master key must be 32 bytes, base64 or base64url encoded")]
    MasterKeyFormat,
    /// Decryption failed: wrong master key, or the ciphertext was altered.
    #[error("cannot decrypt: the master key does not match, or the data was altered")]
    Decrypt,
    /// A key could not be generated or parsed.
    #[error("invalid key material for {0}")]
    Invalid(&'static str),
    /// The random generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// The algorithm is not one Warden signs with.
    #[error("unsupported signing algorithm {0:?} (supported: ES256, EdDSA, RS256)")]
    UnsupportedAlg(String),
}

/// The 32-byte master key.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// A new random master key.
    pub fn generate() -> Result<Self, KeyError> {
        Ok(Self(Zeroizing::new(
            random_bytes::<32>().map_err(|_| KeyError::Random)?,
        )))
    }

    /// Parses base64 (standard or url-safe, padding optional), ignoring surrounding space.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let t = text.trim();
        let bytes = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(t.trim_end_matches('='))
                .or_else(|_| STANDARD.decode(t))
                .map_err(|_| KeyError::MasterKeyFormat)?,
        );
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::MasterKeyFormat)?;
        Ok(Self(Zeroizing::new(arr)))
    }

    /// The base64url text form, for writing the key file once.
    pub fn encode(&self) -> Zeroizing<String> {
        Zeroizing::new(URL_SAFE_NO_PAD.encode(self.0.as_slice()))
    }

    fn derive(&self, purpose: &'static [u8]) -> Zeroizing<[u8; 32]> {
        struct Len32;
        impl hkdf::KeyType for Len32 {
            fn len(&self) -> usize {
                32
            }
        }
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"warden master key v1");
        let prk = salt.extract(self.0.as_slice());
        let mut out = Zeroizing::new([0u8; 32]);
        // HKDF-expand of 32 bytes from SHA-256 cannot fail (limit is 255 * 32).
        let info = [purpose];
        if let Ok(okm) = prk.expand(&info, Len32) {
            let _ = okm.fill(out.as_mut_slice());
        }
        out
    }

    /// The sealer that encrypts signing keys and other data at rest.
    pub fn sealer(&self) -> Sealer {
        let key = self.derive(b"seal");
        Sealer {
            // AES-256 accepts any 32-byte key.
            key: UnboundKey::new(&AES_256_GCM, key.as_slice())
                .ok()
                .map(LessSafeKey::new),
        }
    }

    /// The keyed hasher for client secrets.
    pub fn secret_hasher(&self) -> SecretHasher {
        SecretHasher::new(self.derive(b"client-secret").as_slice())
    }

    /// The keyed MAC that binds a gateway session id to the identity that opened it, so a
    /// session id presented with another identity's token is refused on every replica.
    pub fn session_binder(&self) -> SecretHasher {
        SecretHasher::new(self.derive(b"gateway-session").as_slice())
    }

    /// The key of DPoP server nonces (RFC 9449 §8, §9): every replica holds the master
    /// key, so every replica accepts the nonces any of them issued.
    pub fn dpop_nonce_key(&self) -> crate::dpop::NonceKey {
        crate::dpop::NonceKey::new(self.derive(b"dpop-nonce").as_slice())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

/// AES-256-GCM encryption at rest, bound to a context string (such as a key id).
pub struct Sealer {
    key: Option<LessSafeKey>,
}

const SEAL_VERSION: u8 = 1;

impl Sealer {
    /// Encrypts `plain`; `context` must be given again to open it.
    pub fn seal(&self, context: &str, plain: &[u8]) -> Result<Vec<u8>, KeyError> {
        let key = self.key.as_ref().ok_or(KeyError::Invalid("seal key"))?;
        let nonce_bytes = random_bytes::<12>().map_err(|_| KeyError::Random)?;
        let mut buf = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(context.as_bytes()),
            &mut buf,
        )
        .map_err(|_| KeyError::Invalid("seal"))?;
        let mut out = Vec::with_capacity(1 + 12 + buf.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Decrypts what [`Sealer::seal`] produced with the same context.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let key = self.key.as_ref().ok_or(KeyError::Decrypt)?;
        if sealed.len() < 1 + 12 + aead::AES_256_GCM.tag_len() || sealed[0] != SEAL_VERSION {
            return Err(KeyError::Decrypt);
        }
        let nonce: [u8; 12] = sealed[1..13].try_into().map_err(|_| KeyError::Decrypt)?;
        let mut buf = Zeroizing::new(sealed[13..].to_vec());
        let plain_len = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                buf.as_mut_slice(),
            )
            .map_err(|_| KeyError::Decrypt)?
            .len();
        buf.truncate(plain_len);
        Ok(buf)
    }
}

/// A JWS algorithm Warden can sign with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningAlg {
    /// ECDSA P-256 with SHA-256 (the default).
    Es256,
    /// Ed25519.
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys: for relying parties that only
    /// speak RSA.
    Rs256,
}

impl SigningAlg {
    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Es256 => "ES256",
            SigningAlg::EdDsa => "EdDSA",
            SigningAlg::Rs256 => "RS256",
        }
    }

    /// Parses a JOSE algorithm name.
    pub fn parse(name: &str) -> Result<Self, KeyError> {
        match name {
            "ES256" => Ok(SigningAlg::Es256),
            "EdDSA" => Ok(SigningAlg::EdDsa),
            "RS256" => Ok(SigningAlg::Rs256),
            other => Err(KeyError::UnsupportedAlg(other.to_owned())),
        }
    }
}

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa {
        pair: RsaKeyPair,
        /// Modulus and exponent, big-endian, for the JWK.
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

/// A private signing key, with its key id.
pub struct SigningKey {
    kid: String,
    alg: SigningAlg,
    pkcs8: Zeroizing<Vec<u8>>,
    pair: Pair,
}

impl SigningKey {
    /// Generates a new key of `alg` with key id `kid`.
    pub fn generate(alg: SigningAlg, kid: String) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = match alg {
            SigningAlg::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| KeyError::Random)?
            }
            SigningAlg::EdDsa => {
                Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Random)?
            }
            SigningAlg::Rs256 => {
                // ring cannot generate RSA keys; the `rsa` crate does, once per rotation.
                let key =
                    rsa::RsaPrivateKey::new(&mut OsRng, 2048).map_err(|_| KeyError::Random)?;
                let der = key
                    .to_pkcs8_der()
                    .map_err(|_| KeyError::Invalid("RS256 private key"))?;
                return Self::from_pkcs8(alg, kid, der.as_bytes());
            }
        };
        Self::from_pkcs8(alg, kid, pkcs8.as_ref())
    }

    /// Loads a key from its PKCS#8 DER form.
    pub fn from_pkcs8(alg: SigningAlg, kid: String, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let pair = match alg {
            SigningAlg::Es256 => Pair::Ecdsa(
                EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    pkcs8,
                    &SystemRandom::new(),
                )
                .map_err(|_| KeyError::Invalid("ES256 private key"))?,
            ),
            SigningAlg::EdDsa => Pair::Ed25519(
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
                    .map_err(|_| KeyError::Invalid("EdDSA private key"))?,
            ),
            SigningAlg::Rs256 => {
                let bad = |_| KeyError::Invalid("RS256 private key");
                let parsed = rsa::RsaPrivateKey::from_pkcs8_der(pkcs8).map_err(bad)?;
                Pair::Rsa {
                    pair: RsaKeyPair::from_pkcs8(pkcs8)
                        .map_err(|_| KeyError::Invalid("RS256 private key"))?,
                    n: parsed.n().to_bytes_be(),
                    e: parsed.e().to_bytes_be(),
                }
            }
        };
        Ok(Self {
            kid,
            alg,
            pkcs8: Zeroizing::new(pkcs8.to_vec()),
            pair,
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The PKCS#8 DER form, to be sealed before storage.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// Signs `msg`, returning the JWS signature bytes.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.pair {
            Pair::Ecdsa(p) => p
                .sign(&SystemRandom::new(), msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Random),
            Pair::Ed25519(p) => Ok(p.sign(msg).as_ref().to_vec()),
            Pair::Rsa { pair, .. } => {
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    msg,
                    &mut sig,
                )
                .map_err(|_| KeyError::Random)?;
                Ok(sig)
            }
        }
    }

    /// The public key as a JWK, with `kid`, `alg` and `use`.
    pub fn public_jwk(&self) -> Value {
        match &self.pair {
            Pair::Ecdsa(p) => {
                // Uncompressed point: 0x04 || X (32) || Y (32).
                let pk = p.public_key().as_ref();
                let (x, y) = if pk.len() == 65 {
                    (&pk[1..33], &pk[33..65])
                } else {
                    (&pk[0..0], &pk[0..0])
                };
                json!({
                    "kty": "EC", "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
                    "kid": self.kid, "alg": "ES256", "use": "sig",
                })
            }
            Pair::Ed25519(p) => json!({
                "kty": "OKP", "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(p.public_key().as_ref()),
                "kid": self.kid, "alg": "EdDSA", "use": "sig",
            }),
            Pair::Rsa { n, e, .. } => json!({
                "kty": "RSA",
                "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e),
                "kid": self.kid, "alg": "RS256", "use": "sig",
            }),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_round_trips_through_text() {
        let k = MasterKey::generate().unwrap();
        let again = MasterKey::parse(&format!("  {}\n", k.encode().as_str())).unwrap();
        assert_eq!(k.0.as_slice(), again.0.as_slice());
        assert_eq!(
            MasterKey::parse("c2hvcnQ").unwrap_err(),
            KeyError::MasterKeyFormat
        );
        assert_eq!(
            MasterKey::parse("%%%").unwrap_err(),
            KeyError::MasterKeyFormat
        );
    }

    #[test]
    fn sealed_data_opens_only_with_same_key_and_context() {
        let k = MasterKey::generate().unwrap();
        let sealed = k.sealer().seal("kid-1", b"private key bytes").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"private"));
        assert_eq!(
            k.sealer().open("kid-1", &sealed).unwrap().as_slice(),
            b"private key bytes"
        );
        assert_eq!(
            k.sealer().open("kid-2", &sealed).unwrap_err(),
            KeyError::Decrypt
        );
        let other = MasterKey::generate().unwrap();
        assert_eq!(
            other.sealer().open("kid-1", &sealed).unwrap_err(),
            KeyError::Decrypt
        );
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            k.sealer().open("kid-1", &tampered).unwrap_err(),
            KeyError::Decrypt
        );
        assert_eq!(
            k.sealer().open("kid-1", &[1, 2]).unwrap_err(),
            KeyError::Decrypt
        );
    }

    #[test]
    fn subkeys_differ_by_purpose() {
        let k = MasterKey::generate().unwrap();
        assert_ne!(
            k.derive(b"seal").as_slice(),
            k.derive(b"client-secret").as_slice()
        );
        assert_ne!(
            k.derive(b"dpop-nonce").as_slice(),
            k.derive(b"gateway-session").as_slice()
        );
    }

    #[test]
    fn signing_keys_reload_from_pkcs8_and_publish_jwks() {
        for alg in [SigningAlg::Es256, SigningAlg::EdDsa, SigningAlg::Rs256] {
            let key = SigningKey::generate(alg, "k1".into()).unwrap();
            let again = SigningKey::from_pkcs8(alg, "k1".into(), key.pkcs8()).unwrap();
            assert_eq!(key.public_jwk(), again.public_jwk());
            let jwk = key.public_jwk();
            assert_eq!(jwk["kid"], "k1");
            assert_eq!(jwk["alg"], alg.as_str());
            assert!(
                jwk.get("d").is_none(),
                "private part must never be in a JWK"
            );
            assert!(!format!("{key:?}").contains("pkcs8"));
        }
        assert!(SigningAlg::parse("none").is_err());
        assert!(SigningAlg::parse("HS256").is_err());
    }
}
