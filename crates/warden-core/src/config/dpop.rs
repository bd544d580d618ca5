//! The `[dpop]` section: sender-constrained tokens (RFC 9449) at the token endpoint and
//! the gateway.

use serde::Deserialize;

use super::raw::{duration, RawDuration};
use super::{invalid, ConfigError};

/// DPoP settings; durations in seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpopSettings {
    /// Whether the token endpoint and the gateway require server nonces (RFC 9449 §8,
    /// §9) in proofs. Off by default: a nonce costs a client one extra round trip.
    pub nonce: bool,
    /// How often the server nonce changes; a nonce is accepted for one to two of these.
    pub nonce_rotation: i64,
    /// How long after its `iat` a proof is accepted (RFC 9449 §11.1).
    pub proof_max_age: i64,
    /// Clock-skew tolerance for a proof's `iat`, both ways.
    pub leeway: i64,
    /// Proofs remembered in memory per process, in front of the shared replay table.
    pub replay_cache_entries: usize,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDpop {
    nonce: Option<bool>,
    nonce_rotation: Option<RawDuration>,
    proof_max_age: Option<RawDuration>,
    leeway: Option<RawDuration>,
    replay_cache_entries: Option<u64>,
}

// === impl RawDpop ===

impl RawDpop {
    pub(super) fn validate(self) -> Result<DpopSettings, ConfigError> {
        let entries = self.replay_cache_entries.unwrap_or(100_000);
        if !(1_000..=10_000_000).contains(&entries) {
            return Err(invalid(
                "dpop.replay_cache_entries",
                "must be between 1000 and 10000000",
            ));
        }
        Ok(DpopSettings {
            nonce: self.nonce.unwrap_or(false),
            nonce_rotation: duration("dpop.nonce_rotation", self.nonce_rotation, 300, 10..=3_600)?,
            proof_max_age: duration("dpop.proof_max_age", self.proof_max_age, 60, 5..=600)?,
            leeway: duration("dpop.leeway", self.leeway, 5, 0..=60)?,
            replay_cache_entries: usize::try_from(entries)
                .map_err(|_| invalid("dpop.replay_cache_entries", "too large"))?,
        })
    }
}

impl Default for DpopSettings {
    fn default() -> Self {
        // The defaults of an empty section; validation of nothing cannot fail.
        DpopSettings {
            nonce: false,
            nonce_rotation: 300,
            proof_max_age: 60,
            leeway: 5,
            replay_cache_entries: 100_000,
        }
    }
}

pub(super) const TEMPLATE: &str = r#"
[dpop]
nonce = false               # require server nonces (DPoP-Nonce) in proofs, token endpoint and gateway
nonce_rotation = "5m"       # a nonce is accepted for one to two of these
proof_max_age = "60s"       # how long after its iat a proof is accepted (5s..10m)
leeway = "5s"               # clock-skew tolerance for a proof's iat (0s..60s)
replay_cache_entries = 100000  # proofs remembered per process in front of the shared replay table
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_empty_section() {
        assert_eq!(
            RawDpop::default().validate().unwrap(),
            DpopSettings::default()
        );
    }

    #[test]
    fn out_of_range_values_name_the_key() {
        let raw = RawDpop {
            proof_max_age: Some(RawDuration::Seconds(3_600)),
            ..RawDpop::default()
        };
        assert_eq!(raw.validate().unwrap_err().key, "dpop.proof_max_age");
        let raw = RawDpop {
            replay_cache_entries: Some(10),
            ..RawDpop::default()
        };
        assert_eq!(raw.validate().unwrap_err().key, "dpop.replay_cache_entries");
    }
}
