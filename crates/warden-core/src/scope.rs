//! Scopes: parsing of the space-separated `scope` parameter and set algebra.

use std::collections::BTreeSet;
use std::fmt;

/// Why a scope string is invalid.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScopeError {
    /// A character outside RFC 6749's `scope-token` set.
    #[error("scope contains a character outside %x21 / %x23-5B / %x5D-7E")]
    Charset,
    /// Too many or too long.
    #[error("too many scopes or a scope too long")]
    TooLarge,
}

/// A set of scope tokens, kept sorted so its text form is stable.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(BTreeSet<String>);

/// Whether `token` is a valid RFC 6749 §3.3 scope-token.
pub fn valid_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 128
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

impl ScopeSet {
    /// Parses a space-delimited scope parameter. Repeated tokens collapse.
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        let mut set = BTreeSet::new();
        for tok in text.split(' ').filter(|t| !t.is_empty()) {
            if tok.len() > 128 {
                return Err(ScopeError::TooLarge);
            }
            if !valid_token(tok) {
                return Err(ScopeError::Charset);
            }
            set.insert(tok.to_owned());
            if set.len() > 256 {
                return Err(ScopeError::TooLarge);
            }
        }
        Ok(Self(set))
    }

    /// A set from known-valid tokens.
    pub fn from_iter_valid<I: IntoIterator<Item = S>, S: Into<String>>(it: I) -> Self {
        Self(
            it.into_iter()
                .map(Into::into)
                .filter(|s: &String| valid_token(s))
                .collect(),
        )
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `scope` is in the set.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The scopes in both sets.
    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    /// The scopes in either set.
    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.union(&other.0).cloned().collect())
    }

    /// Iterates in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The scopes as a vector, sorted.
    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
            first = false;
        }
        Ok(())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopeSet({self})")
    }
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_normalises_and_validates() {
        let s = ScopeSet::parse("notes:write  notes:read notes:read").unwrap();
        assert_eq!(s.to_string(), "notes:read notes:write");
        assert!(ScopeSet::parse("").unwrap().is_empty());
        assert_eq!(ScopeSet::parse("a\"b"), Err(ScopeError::Charset));
        assert_eq!(ScopeSet::parse("a\\b"), Err(ScopeError::Charset));
        assert_eq!(ScopeSet::parse("caf\u{e9}"), Err(ScopeError::Charset));
        assert_eq!(ScopeSet::parse("a\tb"), Err(ScopeError::Charset));
        assert_eq!(ScopeSet::parse(&"x".repeat(129)), Err(ScopeError::TooLarge));
    }

    #[test]
    fn algebra() {
        let a = ScopeSet::parse("r w").unwrap();
        let b = ScopeSet::parse("r").unwrap();
        assert!(b.is_subset(&a));
        assert!(!a.is_subset(&b));
        assert_eq!(a.intersection(&b), b);
        assert_eq!(b.union(&ScopeSet::parse("w").unwrap()), a);
    }
}
