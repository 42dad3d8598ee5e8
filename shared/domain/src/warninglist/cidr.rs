//! MISP's `CidrTool`: which network of a list holds an address.
//!
//! IPv4: the list's networks in a hash set, probed for each prefix length the list uses, shortest
//! first, so the widest matching network is reported. IPv6: the networks in list order, the first
//! that holds the address wins. An entry without `/` is a host (`/32`, `/128`); networks are
//! reported as MISP writes them (`8.8.8.8/32`, `fe80::/10`, IPv6 compressed and lower-cased).

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::freetext::php;

/// The networks of one `cidr` list.
#[derive(Debug, Clone, Default)]
pub(crate) struct CidrSet {
    /// `(network << 8) | prefix` for every IPv4 network.
    v4: HashSet<u64>,
    /// Bit `n` set when some IPv4 network has prefix length `n`.
    v4_prefixes: u64,
    /// IPv6 networks in list order: (network, prefix).
    v6: Vec<(u128, u8)>,
}

fn v4_mask(bits: u8) -> u32 {
    if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits)) }
}

fn v6_mask(bits: u8) -> u128 {
    if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) }
}

impl CidrSet {
    /// The networks among `entries`; entries that are not `ip` or `ip/prefix` are returned apart.
    pub(crate) fn build<'a>(entries: impl IntoIterator<Item = &'a str>) -> (Self, Vec<String>) {
        let mut set = CidrSet::default();
        let mut rejected = Vec::new();
        for e in entries {
            let (addr, bits) = match e.split_once('/') {
                Some((a, b)) => (a, b.parse::<u8>().ok()),
                None => (e, None),
            };
            let explicit = e.contains('/');
            if php::validate_ip_v4_only(addr) {
                match (addr.parse::<Ipv4Addr>(), if explicit { bits.filter(|b| *b <= 32) } else { Some(32) }) {
                    (Ok(ip), Some(bits)) => {
                        let net = u32::from(ip) & v4_mask(bits);
                        set.v4.insert((u64::from(net) << 8) | u64::from(bits));
                        set.v4_prefixes |= 1 << bits;
                    }
                    _ => rejected.push(e.to_string()),
                }
            } else if php::validate_ip_v6_only(addr) {
                match (addr.parse::<Ipv6Addr>(), if explicit { bits.filter(|b| *b <= 128) } else { Some(128) }) {
                    (Ok(ip), Some(bits)) => set.v6.push((u128::from(ip) & v6_mask(bits), bits)),
                    _ => rejected.push(e.to_string()),
                }
            } else {
                rejected.push(e.to_string());
            }
        }
        (set, rejected)
    }

    pub(crate) fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// The list's network holding `ip`, written as MISP reports it.
    pub(crate) fn find(&self, ip: &ParsedIp) -> Option<(String, u8)> {
        match ip.addr {
            Addr::V4(a) => {
                let mut prefixes = self.v4_prefixes;
                while prefixes != 0 {
                    let bits = u8::try_from(prefixes.trailing_zeros()).unwrap_or(0);
                    prefixes &= prefixes - 1;
                    let net = a & v4_mask(bits);
                    if self.v4.contains(&((u64::from(net) << 8) | u64::from(bits))) {
                        return Some((format!("{}/{bits}", Ipv4Addr::from(net)), bits));
                    }
                }
                None
            }
            Addr::V6(a) => self
                .v6
                .iter()
                .find(|(net, bits)| a & v6_mask(*bits) == *net)
                .map(|(net, bits)| (format!("{}/{bits}", Ipv6Addr::from(*net)), *bits)),
        }
    }
}

/// Addresses and networks (`ip` or `ip/prefix`, IPv4 or IPv6) to check an address against, parsed and
/// matched as `cidr` warninglists are (API keys' `allowed_ips` use it).
#[derive(Debug, Clone, Default)]
pub struct Networks(CidrSet);

impl Networks {
    /// # Errors
    /// The entries that are not an address or a network.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, Vec<String>> {
        let (set, rejected) = CidrSet::build(entries);
        if rejected.is_empty() { Ok(Self(set)) } else { Err(rejected) }
    }

    /// Is `ip` in one of the networks? An IPv4-mapped IPv6 address counts as IPv4.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let addr = match ip {
            std::net::IpAddr::V4(a) => Addr::V4(u32::from(a)),
            std::net::IpAddr::V6(a) => a.to_ipv4_mapped().map_or(Addr::V6(u128::from(a)), |v4| Addr::V4(u32::from(v4))),
        };
        self.0.find(&ParsedIp { addr, mask: None }).is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Addr {
    V4(u32),
    V6(u128),
}

/// A value read the way `CidrTool::contains` reads it: the address before the first `/`, and
/// the text between the first and second `/` as the value's own prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedIp<'a> {
    pub(crate) addr: Addr,
    pub(crate) mask: Option<&'a str>,
}

impl<'a> ParsedIp<'a> {
    pub(crate) fn parse(value: &'a str) -> Option<Self> {
        let mut parts = value.split('/');
        let ip = parts.next()?;
        let mask = parts.next();
        let addr = if php::validate_ip_v4_only(ip) {
            Addr::V4(u32::from(ip.trim().parse::<Ipv4Addr>().ok()?))
        } else if php::validate_ip_v6_only(ip) {
            Addr::V6(u128::from(ip.trim().parse::<Ipv6Addr>().ok()?))
        } else {
            return None;
        };
        Some(ParsedIp { addr, mask })
    }

    /// MISP's last rule: a value with its own prefix matches only a network at least as wide
    /// (`$valueMask < $matchMask` refuses; `""` and `"0"` count as no prefix, as PHP's truthiness).
    pub(crate) fn fits(&self, match_bits: u8) -> bool {
        match self.mask {
            None | Some("") | Some("0") => true,
            Some(m) if php::is_numeric(m) => m.trim().parse::<f64>().map_or(true, |v| v >= f64::from(match_bits)),
            // PHP 8 compares a non-numeric string with a numeric one as strings.
            Some(m) => m >= match_bits.to_string().as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_match_allowed_networks() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
        let nets = |e: &[&str]| Networks::parse(e.iter().copied()).expect("networks");
        assert!(nets(&["192.0.2.0/24"]).contains(ip("192.0.2.7")));
        assert!(!nets(&["192.0.2.0/24"]).contains(ip("192.0.3.7")));
        assert!(nets(&["127.0.0.1"]).contains(ip("127.0.0.1")));
        assert!(nets(&["127.0.0.0/8"]).contains(ip("::ffff:127.0.0.1")));
        assert!(nets(&["2001:db8::/32"]).contains(ip("2001:db8::5")));
        assert!(!nets(&["2001:db8::/32"]).contains(ip("2001:db9::5")));
        assert!(nets(&["0.0.0.0/0"]).contains(ip("10.1.2.3")));
        assert_eq!(Networks::parse(["10.0.0.0/33", "nonsense", "10.0.0.0/8"]).err(), Some(vec!["10.0.0.0/33".to_string(), "nonsense".to_string()]));
    }

    fn set(entries: &[&str]) -> CidrSet {
        CidrSet::build(entries.iter().copied()).0
    }

    fn find(s: &CidrSet, v: &str) -> Option<String> {
        let ip = ParsedIp::parse(v)?;
        s.find(&ip).filter(|(_, bits)| ip.fits(*bits)).map(|(m, _)| m)
    }

    #[test]
    fn the_widest_ipv4_network_is_reported_in_misps_notation() {
        let s = set(&["8.8.8.8", "8.8.8.0/24", "10.0.0.0/8"]);
        assert_eq!(find(&s, "8.8.8.8").as_deref(), Some("8.8.8.0/24"));
        assert_eq!(find(&s, "8.8.8.9").as_deref(), Some("8.8.8.0/24"));
        assert_eq!(find(&s, "10.1.2.3").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(find(&s, "11.0.0.1"), None);
        assert_eq!(find(&set(&["8.8.8.8"]), "8.8.8.8").as_deref(), Some("8.8.8.8/32"));
    }

    #[test]
    fn a_value_network_must_lie_inside_the_list_network() {
        let s = set(&["192.168.0.0/16"]);
        assert_eq!(find(&s, "192.168.0.0/24").as_deref(), Some("192.168.0.0/16"));
        assert_eq!(find(&s, "192.168.0.0/16").as_deref(), Some("192.168.0.0/16"));
        assert_eq!(find(&s, "192.0.0.0/7"), None);
        assert_eq!(find(&s, "192.168.0.0/0").as_deref(), Some("192.168.0.0/16"));
    }

    #[test]
    fn ipv6_networks_are_scanned_in_list_order_and_written_compressed() {
        let s = set(&["FE80::/10", "2001:4860:4000::/36", "2001:4860:4860::8888"]);
        assert_eq!(find(&s, "fe80::1").as_deref(), Some("fe80::/10"));
        assert_eq!(find(&s, "2001:4860:4860::8888").as_deref(), Some("2001:4860:4000::/36"));
        assert_eq!(find(&s, "::1"), None);
    }

    #[test]
    fn non_ip_entries_and_values_are_set_aside() {
        let (s, rejected) = CidrSet::build(["1.2.3.4/33", "example.com", "1.2.3.0/24"]);
        assert_eq!(rejected, vec!["1.2.3.4/33".to_string(), "example.com".to_string()]);
        assert_eq!(s.len(), 1);
        assert_eq!(ParsedIp::parse("example.com"), None);
    }
}
