//! User passwords, hashed with argon2id.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

/// Errors from password hashing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    /// Empty or over 1024 bytes.
    #[error("password must be 1 to 1024 bytes")]
    Length,
    /// The hasher failed.
    #[error("password hashing failed")]
    Hash,
}

fn hasher() -> Argon2<'static> {
    // OWASP's second recommended argon2id setting: m=19 MiB, t=2, p=1.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` to a PHC string.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.is_empty() || password.len() > 1024 {
        return Err(PasswordError::Length);
    }
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hash)
}

/// Whether `password` matches the PHC string `stored` (constant-time inside argon2).
pub fn verify(password: &str, stored: &str) -> bool {
    // A federated user has no password (an empty hash): nothing ever matches it.
    if password.len() > 1024 || stored.is_empty() {
        return false;
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, verified against when a user does not exist so that
/// "no such user" and "wrong password" take the same time.
pub fn dummy_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$SBYKd16DmU6H3vFY8PYl5dlwj2Wz3KPqCsE3ZBbsG7U"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_hash_matches_no_password() {
        assert!(!verify("", ""));
        assert!(!verify("anything", ""));
    }

    #[test]
    fn hash_and_verify() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse", &h));
        assert!(!verify("correct horsf", &h));
        assert!(!verify("x", "not a phc string"));
        assert_eq!(hash(""), Err(PasswordError::Length));
        assert!(!verify("anything", dummy_hash()));
    }
}
