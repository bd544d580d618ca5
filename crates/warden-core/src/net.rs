//! Address and host rules for outbound fetches (client metadata documents, JWKS URLs).
//!
//! Warden fetches URLs that clients choose, so every address it would connect to is first
//! classified here: only globally routable unicast addresses are fetched, unless an
//! operator-configured allowlist ([`Cidr`]) names a private range. Host policy
//! ([`HostPattern`]) decides which domains may serve client metadata at all.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP network: an address and a prefix length.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a [`Cidr`] or [`HostPattern`] did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetParseError {
    /// Not `ADDRESS` or `ADDRESS/PREFIX`.
    #[error("expected an IP address or network such as 10.1.0.0/16 or fd00::/8")]
    Cidr,
    /// The prefix is longer than the address.
    #[error("prefix length out of range")]
    Prefix,
    /// Not a host name or `*.domain` pattern.
    #[error("expected a host name such as app.example.com or a pattern such as *.example.com")]
    Host,
}

impl Cidr {
    /// Whether `ip` lies in this network. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = NetParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = canonical(addr.parse::<IpAddr>().map_err(|_| NetParseError::Cidr)?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| NetParseError::Cidr)?,
            None => max,
        };
        if prefix > max {
            return Err(NetParseError::Prefix);
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cidr({self})")
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` is a globally routable unicast address: not loopback, private, link-local,
/// unique-local, shared (CGNAT), documentation, benchmarking, multicast, broadcast,
/// unspecified or reserved. Addresses that embed an IPv4 address (mapped, NAT64, 6to4)
/// are judged by the embedded one.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let refused = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10, shared address space (carrier-grade NAT).
        || (a == 100 && (b & 0xc0) == 64)
        // 192.0.0.0/24, IETF protocol assignments.
        || (a == 192 && b == 0 && c == 0)
        // 198.18.0.0/15, benchmarking.
        || (a == 198 && (b & 0xfe) == 18)
        // 240.0.0.0/4, reserved.
        || a >= 240;
    !refused
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address they embed.
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
        let [_, _, _, _, _, _, hi, lo] = seg;
        return is_public_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    if seg[0] == 0x2002 {
        return is_public_v4(Ipv4Addr::from(
            (u32::from(seg[1]) << 16) | u32::from(seg[2]),
        ));
    }
    let refused = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // fc00::/7, unique local.
        || (seg[0] & 0xfe00) == 0xfc00
        // fe80::/10, link-local; fec0::/10, deprecated site-local.
        || (seg[0] & 0xffc0) == 0xfe80
        || (seg[0] & 0xffc0) == 0xfec0
        // ::/96, IPv4-compatible (deprecated), and other addresses in ::/8.
        || seg[0] == 0
        // 2001:db8::/32, documentation.
        || (seg[0] == 0x2001 && seg[1] == 0x0db8)
        // 100::/64, discard-only.
        || (seg[0] == 0x0100 && seg[1..4] == [0, 0, 0]);
    !refused
}

/// Whether Warden may connect to `ip`: a public address, or one inside `allow`.
pub fn may_connect(ip: IpAddr, allow: &[Cidr]) -> bool {
    is_public(ip) || allow.iter().any(|c| c.contains(ip))
}

/// A host name, or `*.domain` for every subdomain of `domain` (not `domain` itself).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HostPattern {
    suffix: bool,
    name: String,
}

impl HostPattern {
    /// Whether `host` (a DNS name or IP literal, as in a URL) matches, case-insensitively.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.suffix {
            host.len() > self.name.len() + 1
                && host.ends_with(&self.name)
                && host.as_bytes()[host.len() - self.name.len() - 1] == b'.'
        } else {
            host == self.name
        }
    }
}

impl FromStr for HostPattern {
    type Err = NetParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().trim_end_matches('.').to_ascii_lowercase();
        let (suffix, name) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest.to_owned()),
            None => (false, s),
        };
        let ok = !name.is_empty()
            && name.len() <= 253
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']'))
            && !name.split('.').any(str::is_empty);
        if !ok {
            return Err(NetParseError::Host);
        }
        Ok(HostPattern { suffix, name })
    }
}

impl fmt::Debug for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.suffix {
            write!(f, "HostPattern(*.{})", self.name)
        } else {
            write!(f, "HostPattern({})", self.name)
        }
    }
}

/// Host policy: `deny` always wins; a non-empty `allow` list admits only its hosts.
pub fn host_permitted(host: &str, allow: &[HostPattern], deny: &[HostPattern]) -> bool {
    if deny.iter().any(|p| p.matches(host)) {
        return false;
    }
    allow.is_empty() || allow.iter().any(|p| p.matches(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_loopback_and_link_local_are_not_public() {
        for s in [
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "192.0.2.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "2001:db8::1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(ip(s)), "{s} must not count as public");
        }
        for s in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(ip(s)), "{s} is public");
        }
    }

    #[test]
    fn allowlist_admits_only_its_networks() {
        let allow: Vec<Cidr> = vec!["127.0.0.1".parse().unwrap(), "fd00::/8".parse().unwrap()];
        assert!(may_connect(ip("127.0.0.1"), &allow));
        assert!(may_connect(ip("::ffff:127.0.0.1"), &allow));
        assert!(!may_connect(ip("127.0.0.2"), &allow));
        assert!(may_connect(ip("fd12::1"), &allow));
        assert!(!may_connect(ip("10.0.0.1"), &allow));
        assert!(!may_connect(ip("::1"), &allow));
        assert!(may_connect(ip("8.8.8.8"), &[]));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("10.1.2.3")));
        assert!(!all.contains(ip("::1")));
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(
            "10.1.0.0/16".parse::<Cidr>().unwrap().to_string(),
            "10.1.0.0/16"
        );
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
        assert_eq!("10.0.0.0/33".parse::<Cidr>(), Err(NetParseError::Prefix));
        assert_eq!("example.com".parse::<Cidr>(), Err(NetParseError::Cidr));
        assert_eq!("10.0.0.0/x".parse::<Cidr>(), Err(NetParseError::Cidr));
    }

    #[test]
    fn host_patterns() {
        let exact: HostPattern = "App.Example.com".parse().unwrap();
        let wild: HostPattern = "*.example.com".parse().unwrap();
        assert!(exact.matches("app.example.com"));
        assert!(exact.matches("APP.example.com."));
        assert!(!exact.matches("x.app.example.com"));
        assert!(wild.matches("a.example.com"));
        assert!(wild.matches("a.b.example.com"));
        assert!(!wild.matches("example.com"));
        assert!(!wild.matches("badexample.com"));
        assert!("".parse::<HostPattern>().is_err());
        assert!("a..b".parse::<HostPattern>().is_err());
        assert!("a/b".parse::<HostPattern>().is_err());
        let deny = vec!["evil.example.com".parse().unwrap()];
        assert!(!host_permitted(
            "evil.example.com",
            std::slice::from_ref(&wild),
            &deny
        ));
        assert!(host_permitted(
            "good.example.com",
            std::slice::from_ref(&wild),
            &deny
        ));
        assert!(!host_permitted("other.org", &[wild], &deny));
        assert!(host_permitted("other.org", &[], &deny));
    }
}
