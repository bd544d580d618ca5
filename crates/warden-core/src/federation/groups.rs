//! Group mapping: which Warden groups a provider's groups claim puts a user in.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// Longest Warden group name in bytes, as the policy file allows.
pub const MAX_GROUP_NAME_LEN: usize = 64;

/// Longest provider group accepted in a mapping, in characters (a directory DN can be
/// long).
const MAX_IDP_GROUP_LEN: usize = 1024;

/// Why an `IDP_GROUP=WARDEN_GROUP` mapping does not parse. The text is not repeated: the
/// caller shows the argument it passed.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum GroupMapError {
    /// There is no `=`.
    #[error("expected IDP_GROUP=WARDEN_GROUP")]
    NoSeparator,
    /// Nothing before the `=`.
    #[error("the provider's group (before `=`) is empty")]
    EmptyIdpGroup,
    /// The provider's group is too long or holds control characters.
    #[error(
        "the provider's group (before `=`) must be at most 1024 characters, without control characters"
    )]
    InvalidIdpGroup,
    /// Nothing after the `=`.
    #[error("the Warden group (after `=`) is empty")]
    EmptyWardenGroup,
    /// The Warden group is too long or holds other than `A-Z a-z 0-9 . _ - :`.
    #[error("the Warden group (after `=`) must be 1-64 of A-Z a-z 0-9 . _ - :")]
    InvalidWardenGroup,
}

/// The Warden groups a user is in, from the provider's `claims`.
///
/// - `groups_claim` names the claim: a top-level claim of that exact name if there is one
///   (namespaced claims such as `https://example.com/groups` contain dots), else a dotted
///   path into nested objects (Keycloak's `realm_access.roles`);
/// - its value is an array of strings (other entries are ignored) or a single string;
/// - only provider groups listed in `map` (provider group, Warden group) give Warden
///   groups: an unmapped group gives nothing;
/// - the result is sorted and has no duplicates.
pub fn map_groups(
    claims: &Map<String, Value>,
    groups_claim: &str,
    map: &[(String, String)],
) -> Vec<String> {
    let provider: Vec<&str> = match lookup(claims, groups_claim) {
        Some(Value::String(g)) => vec![g.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let warden: BTreeSet<&str> = map
        .iter()
        .filter(|(idp, _)| provider.contains(&idp.as_str()))
        .map(|(_, warden)| warden.as_str())
        .collect();
    warden.into_iter().map(str::to_owned).collect()
}

/// The claim named `path`: exactly that name, else the dotted path.
fn lookup<'c>(claims: &'c Map<String, Value>, path: &str) -> Option<&'c Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut segments = path.split('.');
    let first = claims.get(segments.next()?)?;
    segments.try_fold(first, |v, segment| v.as_object()?.get(segment))
}

/// Parses one `IDP_GROUP=WARDEN_GROUP` mapping.
///
/// The text splits at the last `=`, since a provider group may be a directory DN
/// (`CN=Admins,OU=Groups,DC=corp=admins`) while a Warden group has none. Surrounding
/// spaces are trimmed from both sides. The pair must pass [`check_group_mapping`].
pub fn parse_group_mapping(text: &str) -> Result<(String, String), GroupMapError> {
    let (idp, warden) = text.rsplit_once('=').ok_or(GroupMapError::NoSeparator)?;
    let (idp, warden) = (idp.trim(), warden.trim());
    check_group_mapping(idp, warden)?;
    Ok((idp.to_owned(), warden.to_owned()))
}

/// Checks one (provider group, Warden group) pair: the provider's group is 1-1024 characters
/// without control characters (spaces are fine: `Domain Users`); the Warden group follows
/// the rule of user groups, 1-64 of `A-Z a-z 0-9 . _ - :`.
pub fn check_group_mapping(idp: &str, warden: &str) -> Result<(), GroupMapError> {
    if idp.is_empty() {
        return Err(GroupMapError::EmptyIdpGroup);
    }
    if idp.chars().count() > MAX_IDP_GROUP_LEN || idp.chars().any(char::is_control) {
        return Err(GroupMapError::InvalidIdpGroup);
    }
    if warden.is_empty() {
        return Err(GroupMapError::EmptyWardenGroup);
    }
    let charset = warden
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c));
    if warden.len() > MAX_GROUP_NAME_LEN || !charset {
        return Err(GroupMapError::InvalidWardenGroup);
    }
    Ok(())
}
