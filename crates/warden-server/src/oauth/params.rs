//! Form parameters of OAuth requests, parsed strictly.
//!
//! RFC 6749 §3.1/§3.2: parameters must not be repeated (except `resource`, RFC 8707),
//! and a parameter sent without a value is treated as omitted.

use std::collections::HashMap;
use std::fmt;

use super::OAuthError;

/// Largest form body accepted on OAuth endpoints.
pub const MAX_FORM_BYTES: usize = 64 * 1024;
/// Largest single parameter value.
pub const MAX_VALUE_BYTES: usize = 8 * 1024;

/// Parameters that may legitimately repeat.
const REPEATABLE: &[&str] = &["resource"];

/// Parsed parameters. `Debug` lists only the names: values may be secrets.
#[derive(Default)]
pub struct Params {
    single: HashMap<String, String>,
    multi: HashMap<String, Vec<String>>,
}

impl Params {
    /// Parses an `application/x-www-form-urlencoded` body or query string.
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        if body.len() > MAX_FORM_BYTES {
            return Err(OAuthError::invalid_request("request too large"));
        }
        let mut p = Params::default();
        for (k, v) in url::form_urlencoded::parse(body) {
            if v.is_empty() {
                continue;
            }
            if v.len() > MAX_VALUE_BYTES || k.len() > 128 {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {} is too long",
                    printable(&k)
                )));
            }
            if REPEATABLE.contains(&k.as_ref()) {
                p.multi
                    .entry(k.into_owned())
                    .or_default()
                    .push(v.into_owned());
            } else if p.single.insert(k.to_string(), v.into_owned()).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {} is repeated",
                    printable(&k)
                )));
            }
        }
        Ok(p)
    }

    /// A single-valued parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.single.get(name).map(String::as_str)
    }

    /// A required single-valued parameter.
    pub fn require(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
    }

    /// Every value of a repeatable parameter.
    pub fn all(&self, name: &str) -> &[String] {
        self.multi.get(name).map_or(&[], Vec::as_slice)
    }
}

/// A parameter name safe to echo in a description.
fn printable(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(40)
        .collect()
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.single.keys().map(String::as_str).collect();
        names.extend(self.multi.keys().map(String::as_str));
        names.sort_unstable();
        f.debug_struct("Params").field("names", &names).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_except_resource() {
        let e = Params::parse(b"grant_type=a&grant_type=b").unwrap_err();
        assert!(e.description.contains("grant_type is repeated"));
        let p = Params::parse(b"resource=a&resource=b&scope=x").unwrap();
        assert_eq!(p.all("resource"), ["a", "b"]);
        assert_eq!(p.get("scope"), Some("x"));
    }

    #[test]
    fn empty_values_count_as_absent_and_debug_hides_values() {
        let p = Params::parse(b"scope=&client_secret=hunter2").unwrap();
        assert_eq!(p.get("scope"), None);
        assert!(!format!("{p:?}").contains("hunter2"));
        assert!(p.require("scope").is_err());
    }

    #[test]
    fn oversize_is_refused() {
        let big = format!("a={}", "x".repeat(MAX_VALUE_BYTES + 1));
        assert!(Params::parse(big.as_bytes()).is_err());
        assert!(Params::parse(&vec![b'a'; MAX_FORM_BYTES + 1]).is_err());
    }
}
