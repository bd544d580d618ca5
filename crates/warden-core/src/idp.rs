//! The rules of the identity-provider registry, with no I/O: what an IdP is trusted
//! for, how its fields are checked, and how its client secret is sealed at rest.
//!
//! The admin API validates every registration and update with these functions; the
//! sign-in and jwt-bearer flows read the stored record and open the secret with
//! [`open_client_secret`].

use std::fmt;
use std::str::FromStr;

use crate::keys::Sealer;
use crate::secret::SecretString;

pub use crate::federation::TENANT_PLACEHOLDER;
/// The ID-token claim that lists a user's groups, unless the IdP says otherwise.
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";
/// The OIDC scopes requested at sign-in, unless the IdP says otherwise.
pub const DEFAULT_SCOPES: [&str; 3] = ["openid", "email", "profile"];
/// Longest field value (a claim, tenant, audience, domain, group) accepted.
pub const MAX_FIELD_LEN: usize = 255;
/// Most values one list field (domains, tenants, audiences, scopes, group map) holds.
pub const MAX_LIST_LEN: usize = 100;

/// What an IdP is trusted for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IdpUse {
    /// Users sign in with it (OpenID Connect; Warden is a confidential client).
    Login,
    /// Clients present its identity assertion JWT authorization grants (SEP-990).
    IdJag,
    /// Workloads present its tokens as client credentials (SEP-1933).
    Workload,
}

// === impl IdpUse ===

impl IdpUse {
    /// Every use, in display order.
    pub const ALL: [IdpUse; 3] = [IdpUse::Login, IdpUse::IdJag, IdpUse::Workload];

    /// The wire and CLI name: `login`, `id-jag` or `workload`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdpUse::Login => "login",
            IdpUse::IdJag => "id-jag",
            IdpUse::Workload => "workload",
        }
    }

    /// Parses a wire name; the error lists the valid ones.
    pub fn parse(text: &str) -> Result<IdpUse, String> {
        IdpUse::ALL
            .into_iter()
            .find(|u| u.as_str() == text)
            .ok_or_else(|| format!("use {text:?} is not one of login, id-jag, workload"))
    }

    /// Parses a list of uses: at least one, none twice, in [`IdpUse::ALL`] order.
    pub fn parse_all(texts: &[String]) -> Result<Vec<IdpUse>, String> {
        let mut uses = texts
            .iter()
            .map(|t| IdpUse::parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        if uses.is_empty() {
            return Err(
                "an identity provider needs at least one use (login, id-jag, workload)".into(),
            );
        }
        uses.sort_unstable();
        uses.dedup();
        Ok(uses)
    }
}

impl fmt::Display for IdpUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IdpUse {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IdpUse::parse(s)
    }
}

/// Whether `name` is a registry name (a server's or an IdP's): 1-63 of `a-z 0-9 - _`,
/// starting with a letter or digit.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

/// Checks an IdP name (see [`valid_name`]).
pub fn validate_name(name: &str) -> Result<(), String> {
    if !valid_name(name) {
        return Err(format!(
            "identity provider name {name:?} must be 1-63 of a-z 0-9 - _ and start with a letter or digit"
        ));
    }
    Ok(())
}

/// Checks an https endpoint of an IdP (`what` names the field): `https://`, or `http://`
/// to a loopback host only; no credentials, query or fragment.
pub fn validate_url(text: &str, what: &str) -> Result<(), String> {
    let url =
        url::Url::parse(text).map_err(|_| format!("{what} {text:?} is not an absolute URL"))?;
    let Some(host) = url.host() else {
        return Err(format!("{what} {text:?} has no host"));
    };
    let ok_scheme = match url.scheme() {
        "https" => true,
        "http" => crate::uri::is_loopback_host(&host),
        _ => false,
    };
    if !ok_scheme {
        return Err(format!(
            "{what} must use https (http only for a loopback host)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{what} must not carry credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() || text.contains(['?', '#']) {
        return Err(format!("{what} must not have a query or fragment"));
    }
    Ok(())
}

/// Checks an issuer identifier. It may hold [`TENANT_PLACEHOLDER`] once, in its path;
/// `has_tenants` says whether tenants are configured, which the placeholder requires and
/// a plain issuer refuses.
pub fn validate_issuer(issuer: &str, has_tenants: bool) -> Result<(), String> {
    let templated = issuer.contains(TENANT_PLACEHOLDER);
    let concrete = issuer.replacen(TENANT_PLACEHOLDER, "tenant", 1);
    if concrete.contains(['{', '}']) {
        return Err(format!(
            "issuer {issuer:?}: the only placeholder allowed is {TENANT_PLACEHOLDER}, once"
        ));
    }
    validate_url(&concrete, "issuer")?;
    if templated {
        let host_end = issuer
            .find("://")
            .map(|i| i + 3)
            .and_then(|start| issuer[start..].find('/').map(|j| start + j));
        if host_end.is_none_or(|end| issuer.find(TENANT_PLACEHOLDER) < Some(end)) {
            return Err(format!(
                "issuer {issuer:?}: {TENANT_PLACEHOLDER} may stand only in the path"
            ));
        }
    }
    match (templated, has_tenants) {
        (true, false) => Err(format!(
            "issuer {issuer:?} is a multi-tenant template: name the accepted tenants with --tenant"
        )),
        (false, true) => Err(format!(
            "tenants apply only to an issuer with {TENANT_PLACEHOLDER} in its path"
        )),
        _ => Ok(()),
    }
}

/// The issuer of one tenant of a templated issuer (the template itself when it has no
/// placeholder).
pub fn tenant_issuer(issuer: &str, tenant: &str) -> String {
    issuer.replacen(TENANT_PLACEHOLDER, tenant, 1)
}

/// Checks a short printable token (a claim name, tenant, audience, group, subject):
/// 1-255 bytes, no whitespace or control characters.
pub fn validate_token(text: &str, what: &str) -> Result<(), String> {
    let ok = !text.is_empty()
        && text.len() <= MAX_FIELD_LEN
        && !text.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(format!(
            "{what} {text:?} must be 1-{MAX_FIELD_LEN} characters without spaces or control characters"
        ));
    }
    Ok(())
}

/// Checks a tenant id: letters, digits, `-`, `_` and `.` only (it becomes part of an
/// issuer URL's path).
pub fn validate_tenant(tenant: &str) -> Result<(), String> {
    let ok = !tenant.is_empty()
        && tenant.len() <= 64
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !ok {
        return Err(format!(
            "tenant {tenant:?} must be 1-64 of A-Z a-z 0-9 - _ ."
        ));
    }
    Ok(())
}

/// Checks an email domain and returns it in lowercase: DNS labels of letters, digits and
/// `-`, at least two of them.
pub fn normalize_domain(domain: &str) -> Result<String, String> {
    let lower = domain.to_ascii_lowercase();
    let labels: Vec<&str> = lower.split('.').collect();
    let ok = lower.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !ok {
        return Err(format!(
            "domain {domain:?} is not a domain name (like example.com)"
        ));
    }
    Ok(lower)
}

/// Parses a group-map entry `IDP_GROUP=WARDEN_GROUP` (the rule is
/// [`crate::federation::parse_group_mapping`]'s), with an error naming the entry.
pub fn parse_group_mapping(entry: &str) -> Result<(String, String), String> {
    crate::federation::parse_group_mapping(entry)
        .map_err(|e| format!("group map entry {entry:?}: {e}"))
}

/// Checks one group-map pair (see [`crate::federation::check_group_mapping`]).
pub fn check_group_mapping(from: &str, to: &str) -> Result<(), String> {
    crate::federation::check_group_mapping(from, to)
        .map_err(|e| format!("group map entry {from:?}={to:?}: {e}"))
}

/// The sealing context of an IdP's client secret: bound to the IdP, so a sealed secret
/// copied to another IdP's record does not open.
pub fn seal_context(idp: &str) -> String {
    format!("warden:idp:{idp}:client_secret")
}

/// Seals an IdP's client secret for the store.
pub fn seal_client_secret(sealer: &Sealer, idp: &str, secret: &str) -> Result<Vec<u8>, String> {
    sealer
        .seal(&seal_context(idp), secret.as_bytes())
        .map_err(|_| "cannot seal the client secret".to_owned())
}

/// Opens an IdP's stored client secret.
pub fn open_client_secret(
    sealer: &Sealer,
    idp: &str,
    sealed: &[u8],
) -> Result<SecretString, String> {
    let plain = sealer.open(&seal_context(idp), sealed).map_err(|_| {
        format!("the client secret of identity provider {idp} does not open with this master key")
    })?;
    let text = std::str::from_utf8(&plain)
        .map_err(|_| format!("the client secret of identity provider {idp} is not text"))?;
    Ok(SecretString::new(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_parse_and_print() {
        for u in IdpUse::ALL {
            assert_eq!(IdpUse::parse(u.as_str()), Ok(u));
            assert_eq!(u.to_string().parse::<IdpUse>(), Ok(u));
        }
        assert!(IdpUse::parse("LOGIN")
            .unwrap_err()
            .contains("login, id-jag"));
        let all = IdpUse::parse_all(&["workload".into(), "login".into(), "login".into()]);
        assert_eq!(all, Ok(vec![IdpUse::Login, IdpUse::Workload]));
        assert!(IdpUse::parse_all(&[])
            .unwrap_err()
            .contains("at least one use"));
    }

    #[test]
    fn names_follow_the_registry_rule() {
        assert!(validate_name("okta-prod_1").is_ok());
        for bad in ["", "Okta", "-x", "a b", "a:b", &"x".repeat(64)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn issuers_are_https_or_loopback_without_query_or_fragment() {
        assert!(validate_issuer("https://idp.example.com", false).is_ok());
        assert!(validate_issuer("https://idp.example.com/oauth2/default", false).is_ok());
        assert!(validate_issuer("http://127.0.0.1:9000", false).is_ok());
        assert!(validate_issuer("http://localhost:9000/realms/x", false).is_ok());
        let bad = |i: &str| validate_issuer(i, false).unwrap_err();
        assert!(bad("http://idp.example.com").contains("https"));
        assert!(bad("ftp://idp.example.com").contains("https"));
        assert!(bad("https://idp.example.com/?a=b").contains("query"));
        assert!(bad("https://idp.example.com/#x").contains("fragment"));
        assert!(bad("https://idp.example.com/?").contains("query"));
        assert!(bad("https://u:p@idp.example.com").contains("credentials"));
        assert!(bad("idp.example.com").contains("absolute URL"));
    }

    #[test]
    fn a_tenant_template_needs_tenants_and_only_it_takes_them() {
        let entra = "https://login.microsoftonline.com/{tenantid}/v2.0";
        assert!(validate_issuer(entra, true).is_ok());
        assert!(validate_issuer(entra, false)
            .unwrap_err()
            .contains("--tenant"));
        assert!(validate_issuer("https://idp.example.com", true)
            .unwrap_err()
            .contains("tenants apply only"));
        assert!(validate_issuer("https://{tenantid}.example.com/", true)
            .unwrap_err()
            .contains("only in the path"));
        assert!(validate_issuer("https://x.example/{other}", false)
            .unwrap_err()
            .contains("placeholder"));
        assert_eq!(
            tenant_issuer(entra, "t-1"),
            "https://login.microsoftonline.com/t-1/v2.0"
        );
        assert!(validate_tenant("9188040d-6c67-4c5b-b112-36a304b66dad").is_ok());
        assert!(validate_tenant("a/b").is_err());
    }

    #[test]
    fn domains_are_lowercased_dns_names() {
        assert_eq!(normalize_domain("Example.COM"), Ok("example.com".into()));
        for bad in [
            "", "example", "a..b", "-a.com", "a b.com", "a@b.com", "*.a.com",
        ] {
            assert!(normalize_domain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn group_map_entries_are_pairs_of_non_empty_names() {
        assert_eq!(
            parse_group_mapping("Engineering=staff"),
            Ok(("Engineering".into(), "staff".into()))
        );
        // A directory DN as the IdP group: the last `=` separates.
        assert_eq!(
            parse_group_mapping("CN=Admins,DC=corp=admins"),
            Ok(("CN=Admins,DC=corp".into(), "admins".into()))
        );
        assert_eq!(
            parse_group_mapping("eng=two words").unwrap_err(),
            "group map entry \"eng=two words\": the Warden group (after `=`) must be 1-64 of A-Z a-z 0-9 . _ - :"
        );
        for bad in ["nogroup", "=staff", "eng=", "=", "eng=a/b"] {
            assert!(parse_group_mapping(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_client_secret_is_sealed_to_its_idp() {
        let sealer = crate::keys::MasterKey::generate().unwrap().sealer();
        let sealed = seal_client_secret(&sealer, "okta", "hunter2").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            open_client_secret(&sealer, "okta", &sealed)
                .unwrap()
                .expose(),
            "hunter2"
        );
        assert!(open_client_secret(&sealer, "other", &sealed).is_err());
    }
}
