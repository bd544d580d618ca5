//! PKCE (RFC 7636), S256 only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::digest;

use crate::secret::ct_eq;

/// Why a PKCE parameter is refused.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum PkceError {
    /// No `code_challenge` was sent.
    #[error("code_challenge is required")]
    MissingChallenge,
    /// A method other than S256 (including `plain`, or none given).
    #[error("code_challenge_method must be S256")]
    Method,
    /// The challenge is not 43 base64url characters.
    #[error("code_challenge must be 43 base64url characters")]
    ChallengeFormat,
    /// The verifier is not 43–128 unreserved characters.
    #[error("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]")]
    VerifierFormat,
    /// The verifier does not match the challenge.
    #[error("code_verifier does not match the code_challenge")]
    Mismatch,
}

/// Checks the authorization request's challenge and method.
///
/// The method must be given and be `S256`: RFC 7636 defaults a missing method to `plain`,
/// which OAuth 2.1 and the MCP spec forbid.
pub fn check_challenge(challenge: Option<&str>, method: Option<&str>) -> Result<(), PkceError> {
    let challenge = challenge.ok_or(PkceError::MissingChallenge)?;
    if method != Some("S256") {
        return Err(PkceError::Method);
    }
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(PkceError::ChallengeFormat);
    }
    Ok(())
}

/// The S256 challenge of `verifier`.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

/// Checks a token request's verifier against the stored challenge, in constant time.
pub fn verify(verifier: &str, challenge: &str) -> Result<(), PkceError> {
    if !(43..=128).contains(&verifier.len())
        || !verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        return Err(PkceError::VerifierFormat);
    }
    if ct_eq(s256(verifier).as_bytes(), challenge.as_bytes()) {
        Ok(())
    } else {
        Err(PkceError::Mismatch)
    }
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(s256(v), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(
            verify(v, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
            Ok(())
        );
    }

    #[test]
    fn refusals() {
        let c = s256(&"a".repeat(43));
        assert_eq!(
            check_challenge(None, Some("S256")),
            Err(PkceError::MissingChallenge)
        );
        assert_eq!(
            check_challenge(Some(&c), Some("plain")),
            Err(PkceError::Method)
        );
        assert_eq!(check_challenge(Some(&c), None), Err(PkceError::Method));
        assert_eq!(
            check_challenge(Some("short"), Some("S256")),
            Err(PkceError::ChallengeFormat)
        );
        assert_eq!(check_challenge(Some(&c), Some("S256")), Ok(()));
        assert_eq!(verify(&"b".repeat(43), &c), Err(PkceError::Mismatch));
        assert_eq!(verify("short", &c), Err(PkceError::VerifierFormat));
        assert_eq!(verify(&"a".repeat(129), &c), Err(PkceError::VerifierFormat));
        assert_eq!(
            verify(&format!("{}!", "a".repeat(43)), &c),
            Err(PkceError::VerifierFormat)
        );
    }
}
