//! MISP's DNS Response Policy Zone export (`returnFormat: rpz`).
//!
//! Facts from MISP `app/Lib/Export/RPZExport.php` and the `Plugin.RPZ_*` server settings
//! (`app/Model/Server.php` / settings definitions):
//! - Types: `ip-src`, `ip-dst` (IP block), `domain` (domain block), `hostname` (hostname block),
//!   `domain|ip` (its domain to the domain block, its IP to the IP block). Values are
//!   de-duplicated per block, in first-seen order.
//! - Header: `$TTL <ttl>;`, `@               SOA <ns> <email> (<serial> <refresh> <retry>
//!   <expiry> <minimum_ttl>)`, `                NS <ns>` (and `NS <ns_alt>` when set), a blank
//!   line. `$date` in the serial becomes `YYYYMMDD`, `$time` the Unix time.
//! - Each non-empty block: a `; The following … will <explanation>` comment, its lines, a blank
//!   line. Blocks come in the order IP, domain, hostname.
//! - IP line: `<prefix>.<reversed address>.rpz-ip CNAME <action>` (prefix 32/128 or the CIDR's;
//!   IPv6 reversed by colon groups with `::` written `zz`). Domain: `<d> CNAME <action>` and
//!   `*.<d> CNAME <action>`. Hostname: `<h> CNAME <action>`.
//! - Policies (setting id → action): DROP 0 → `rpz-drop.`, NXDOMAIN 1 → `.`, NODATA 2 → `*.`,
//!   Local-Data 3 → the walled garden, PASSTHRU 4 → `rpz-passthru.`, TCP-only 5 →
//!   `rpz-tcp-only.`.
//! - Defaults: policy NXDOMAIN, walled garden `127.0.0.1`, serial `$date00`, refresh `2h`, retry
//!   `30m`, expiry `30d`, minimum TTL `1h`, TTL `1w`, ns `localhost.`, no alternate ns, email
//!   `root.localhost`.
//! - The format is restrictive.
//!
//! Divergence: MISP detects IPv6 on the whole value, so an IPv6 CIDR (`2001:db8::/32`) is
//! reversed as if it were IPv4; Cairn checks the address part and reverses it as IPv6.
//!
//! Like MISP, the zone is written at [`RpzWriter::finish`]: its blocks are grouped by kind, so
//! the writer keeps the distinct values until then.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::Ipv6Addr;

use chrono::{DateTime, Utc};

use crate::record::{Attribute, Event};

/// An RPZ policy action (`Plugin.RPZ_policy`, restSearch `policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RpzPolicy {
    Drop,
    #[default]
    Nxdomain,
    Nodata,
    /// `Local-Data` (formerly `walled-garden`): answer with the walled garden.
    LocalData,
    Passthru,
    TcpOnly,
}

impl RpzPolicy {
    /// Parses the restSearch `policy` name. MISP ignores unknown names (falls back to the
    /// setting), so this returns `None` for them.
    pub fn from_name(name: &str) -> Option<RpzPolicy> {
        Some(match name {
            "DROP" => RpzPolicy::Drop,
            "NXDOMAIN" => RpzPolicy::Nxdomain,
            "NODATA" => RpzPolicy::Nodata,
            "Local-Data" => RpzPolicy::LocalData,
            "PASSTHRU" => RpzPolicy::Passthru,
            "TCP-only" => RpzPolicy::TcpOnly,
            _ => return None,
        })
    }

    /// Parses the numeric `Plugin.RPZ_policy` setting.
    pub fn from_setting_id(id: u8) -> Option<RpzPolicy> {
        Some(match id {
            0 => RpzPolicy::Drop,
            1 => RpzPolicy::Nxdomain,
            2 => RpzPolicy::Nodata,
            3 => RpzPolicy::LocalData,
            4 => RpzPolicy::Passthru,
            5 => RpzPolicy::TcpOnly,
            _ => return None,
        })
    }

    fn explanation(self) -> &'static str {
        match self {
            RpzPolicy::LocalData => "returns the defined alternate location.",
            RpzPolicy::Nxdomain => {
                "return NXDOMAIN (name does not exist) irrespective of actual result received."
            }
            RpzPolicy::Nodata => {
                "returns NODATA (name exists but no answers returned) irrespective of actual result received."
            }
            RpzPolicy::Drop => "timeout.",
            RpzPolicy::Passthru => {
                "lets queries through, but allows for logging the hits (useful for testing)."
            }
            RpzPolicy::TcpOnly => "force the client to use TCP.",
        }
    }
}

/// The zone settings (restSearch parameters over `Plugin.RPZ_*` settings over these defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpzOptions {
    pub policy: RpzPolicy,
    pub walled_garden: String,
    pub ns: String,
    /// Empty = no second NS record.
    pub ns_alt: String,
    pub email: String,
    /// May contain `$date` and `$time`.
    pub serial: String,
    pub refresh: String,
    pub retry: String,
    pub expiry: String,
    pub minimum_ttl: String,
    pub ttl: String,
    /// Substituted for `$date` / `$time` in the serial.
    pub now: DateTime<Utc>,
}

impl RpzOptions {
    /// MISP's `Plugin.RPZ_*` defaults at `now`.
    pub fn new(now: DateTime<Utc>) -> RpzOptions {
        RpzOptions {
            policy: RpzPolicy::Nxdomain,
            walled_garden: "127.0.0.1".to_string(),
            ns: "localhost.".to_string(),
            ns_alt: String::new(),
            email: "root.localhost".to_string(),
            serial: "$date00".to_string(),
            refresh: "2h".to_string(),
            retry: "30m".to_string(),
            expiry: "30d".to_string(),
            minimum_ttl: "1h".to_string(),
            ttl: "1w".to_string(),
            now,
        }
    }

    fn action(&self) -> &str {
        match self.policy {
            RpzPolicy::LocalData => &self.walled_garden,
            RpzPolicy::Nxdomain => ".",
            RpzPolicy::Nodata => "*.",
            RpzPolicy::Drop => "rpz-drop.",
            RpzPolicy::Passthru => "rpz-passthru.",
            RpzPolicy::TcpOnly => "rpz-tcp-only.",
        }
    }
}

/// Distinct values in first-seen order.
#[derive(Debug, Clone, Default)]
struct Block {
    seen: HashSet<String>,
    values: Vec<String>,
}

impl Block {
    fn add(&mut self, value: &str) {
        if self.seen.insert(value.to_string()) {
            self.values.push(value.to_string());
        }
    }
}

/// Collects RPZ values and writes the zone at the end.
#[derive(Debug, Clone)]
pub struct RpzWriter {
    options: RpzOptions,
    ips: Block,
    domains: Block,
    hostnames: Block,
}

impl RpzWriter {
    /// A writer with empty blocks.
    pub fn new(options: RpzOptions) -> RpzWriter {
        RpzWriter {
            options,
            ips: Block::default(),
            domains: Block::default(),
            hostnames: Block::default(),
        }
    }

    /// Nothing is written before the end (MISP builds the zone in its footer).
    pub fn begin(&mut self, _out: &mut String) {}

    /// Records the attribute's value(s) in their block.
    pub fn push(&mut self, _event: &Event, attribute: &Attribute, _out: &mut String) {
        match attribute.attr_type.as_str() {
            "ip-src" | "ip-dst" => self.ips.add(&attribute.value1),
            "domain" => self.domains.add(&attribute.value1),
            "hostname" => self.hostnames.add(&attribute.value1),
            "domain|ip" => {
                self.domains.add(&attribute.value1);
                self.ips.add(&attribute.value2);
            }
            _ => {}
        }
    }

    /// Writes the whole zone.
    pub fn finish(&mut self, out: &mut String) {
        let o = &self.options;
        let serial = o
            .serial
            .replace("$date", &o.now.format("%Y%m%d").to_string())
            .replace("$time", &o.now.timestamp().to_string());
        let _ = writeln!(out, "$TTL {};", o.ttl);
        let _ = writeln!(
            out,
            "@               SOA {} {} ({} {} {} {} {})",
            o.ns, o.email, serial, o.refresh, o.retry, o.expiry, o.minimum_ttl
        );
        let _ = writeln!(out, "                NS {}", o.ns);
        if !o.ns_alt.is_empty() {
            let _ = writeln!(out, "                NS {}", o.ns_alt);
        }
        out.push('\n');
        let action = o.action();
        let explanation = o.policy.explanation();
        if !self.ips.values.is_empty() {
            let _ = writeln!(
                out,
                "; The following list of IP addresses will {explanation}"
            );
            for ip in &self.ips.values {
                let _ = writeln!(out, "{}.rpz-ip CNAME {action}", rpz_ip(ip));
            }
            out.push('\n');
        }
        if !self.domains.values.is_empty() {
            let _ = writeln!(
                out,
                "; The following domain names and all of their sub-domains will {explanation}"
            );
            for domain in &self.domains.values {
                let _ = writeln!(out, "{domain} CNAME {action}");
                let _ = writeln!(out, "*.{domain} CNAME {action}");
            }
            out.push('\n');
        }
        if !self.hostnames.values.is_empty() {
            let _ = writeln!(out, "; The following hostnames will {explanation}");
            for hostname in &self.hostnames.values {
                let _ = writeln!(out, "{hostname} CNAME {action}");
            }
            out.push('\n');
        }
    }
}

/// `<prefix>.<reversed labels>` for an IP or CIDR (`RPZExport::convertIp`).
fn rpz_ip(input: &str) -> String {
    let (address, prefix) = match input.find('/') {
        Some(slash) if slash > 0 => (&input[..slash], Some(&input[slash + 1..])),
        _ => (input, None),
    };
    let ipv6 = address.parse::<Ipv6Addr>().is_ok();
    let prefix = prefix.unwrap_or(if ipv6 { "128" } else { "32" });
    let reversed: Vec<String> = if ipv6 {
        let marked = address.replace("::", ":zz:");
        marked
            .split(':')
            .filter(|part| !part.is_empty())
            .rev()
            .map(str::to_string)
            .collect()
    } else {
        address.split('.').rev().map(str::to_string).collect()
    };
    format!("{prefix}.{}", reversed.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_are_reversed_with_their_prefix() {
        assert_eq!(rpz_ip("192.0.2.44"), "32.44.2.0.192");
        assert_eq!(rpz_ip("198.51.100.0/24"), "24.0.100.51.198");
        assert_eq!(rpz_ip("2001:db8::1"), "128.1.zz.db8.2001");
        assert_eq!(rpz_ip("2001:db8::/32"), "32.zz.db8.2001");
    }

    #[test]
    fn policy_names_and_ids_match_misp() {
        assert_eq!(
            RpzPolicy::from_name("Local-Data"),
            Some(RpzPolicy::LocalData)
        );
        assert_eq!(RpzPolicy::from_name("walled-garden"), None);
        assert_eq!(RpzPolicy::from_setting_id(5), Some(RpzPolicy::TcpOnly));
        assert_eq!(RpzPolicy::default(), RpzPolicy::Nxdomain);
    }
}
