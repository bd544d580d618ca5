//! Email-domain routing: which provider signs in an address.

/// The provider that signs in `email`: the one whose domains include the part after the
/// last `@`, compared ASCII-case-insensitively and exactly (a subdomain is another
/// domain).
///
/// `None` when no provider claims the domain, when the address is malformed (no `@`, an
/// empty local part or domain, white space or control characters, a domain starting or
/// ending with `.`), and when two providers claim the domain: that is a misconfiguration,
/// and no guess is made.
pub fn idp_for_email<'a>(email: &str, candidates: &[(&'a str, &[String])]) -> Option<&'a str> {
    let (local, domain) = email.rsplit_once('@')?;
    let malformed = local.is_empty()
        || domain.is_empty()
        || domain.starts_with('.')
        || domain.ends_with('.')
        || email.chars().any(|c| c.is_whitespace() || c.is_control());
    if malformed {
        return None;
    }
    let mut matching = candidates
        .iter()
        .filter(|(_, domains)| domains.iter().any(|d| d.eq_ignore_ascii_case(domain)))
        .map(|(name, _)| *name);
    match (matching.next(), matching.next()) {
        (Some(name), None) => Some(name),
        _ => None,
    }
}
