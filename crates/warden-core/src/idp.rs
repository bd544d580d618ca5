//! What a registered identity provider is trusted for, and how its client secret is
//! sealed at rest.

use crate::keys::Sealer;
use crate::secret::SecretString;

/// What an identity provider is trusted for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdpUse {
    /// People sign in to Warden through it (OpenID Connect).
    Login,
    /// Its ID-JAGs are accepted at the token endpoint (SEP-990).
    IdJag,
    /// Its workload tokens are accepted at the token endpoint (SEP-1933).
    Workload,
}

impl IdpUse {
    /// Every use.
    pub const ALL: [IdpUse; 3] = [IdpUse::Login, IdpUse::IdJag, IdpUse::Workload];

    /// The name used in the CLI, the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            IdpUse::Login => "login",
            IdpUse::IdJag => "id-jag",
            IdpUse::Workload => "workload",
        }
    }

    /// The use named `text`.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.as_str() == text)
    }
}

fn context(idp: &str) -> String {
    format!("idp:{idp}:client_secret")
}

/// Seals Warden's client secret at IdP `idp` for storage.
pub fn seal_client_secret(sealer: &Sealer, idp: &str, secret: &str) -> Result<Vec<u8>, String> {
    sealer
        .seal(&context(idp), secret.as_bytes())
        .map_err(|_| "cannot seal the client secret".to_owned())
}

/// Opens what [`seal_client_secret`] sealed for the same `idp`.
pub fn open_client_secret(
    sealer: &Sealer,
    idp: &str,
    sealed: &[u8],
) -> Result<SecretString, String> {
    let plain = sealer.open(&context(idp), sealed).map_err(|_| {
        format!(
            "the client secret of identity provider {idp:?} cannot be opened with this master key"
        )
    })?;
    let text = std::str::from_utf8(&plain)
        .map_err(|_| format!("the client secret of identity provider {idp:?} is not text"))?;
    Ok(SecretString::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::MasterKey;

    #[test]
    fn uses_round_trip() {
        for u in IdpUse::ALL {
            assert_eq!(IdpUse::parse(u.as_str()), Some(u));
        }
        assert_eq!(IdpUse::parse("LOGIN"), None);
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_idp() {
        let sealer = MasterKey::generate().unwrap().sealer();
        let sealed = seal_client_secret(&sealer, "corp", "s3cret").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(
            open_client_secret(&sealer, "corp", &sealed)
                .unwrap()
                .expose(),
            "s3cret"
        );
        assert!(open_client_secret(&sealer, "other", &sealed).is_err());
    }
}
