//! MISP's hosts-file blocklist (`returnFormat: hosts`).
//!
//! Facts from MISP `app/Lib/Export/HostsExport.php`:
//! - Only `domain` attributes (MISP adds `type = domain` to the query; this writer also skips
//!   anything else).
//! - Header: `# Blocklist in the HOSTS format` and `# Generated: <Y-m-d H:i:s O>` (server time;
//!   here the caller's `now`, written in UTC as `+0000`).
//! - One `<ip_address> <domain>` line per distinct domain; `ip_address` defaults to `0.0.0.0`.
//! - No footer. The format is restrictive (`$non_restrictive_export = false`).

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::record::{Attribute, Event};

/// MISP's default sink address (`HostsExport::$default_ip_address`).
pub const DEFAULT_IP_ADDRESS: &str = "0.0.0.0";

/// The restSearch parameters the hosts export reads, plus the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsOptions {
    /// `ip_address`.
    pub ip_address: String,
    /// When the file is generated (printed in the header).
    pub now: DateTime<Utc>,
}

impl HostsOptions {
    /// MISP's defaults at `now`.
    pub fn new(now: DateTime<Utc>) -> HostsOptions {
        HostsOptions {
            ip_address: DEFAULT_IP_ADDRESS.to_string(),
            now,
        }
    }
}

/// Streams MISP's hosts export.
#[derive(Debug, Clone)]
pub struct HostsWriter {
    options: HostsOptions,
    seen: HashSet<String>,
}

impl HostsWriter {
    /// A writer with no domain seen yet.
    pub fn new(options: HostsOptions) -> HostsWriter {
        HostsWriter {
            options,
            seen: HashSet::new(),
        }
    }

    /// Writes the two comment lines.
    pub fn begin(&mut self, out: &mut String) {
        out.push_str("# Blocklist in the HOSTS format\n");
        out.push_str(&format!(
            "# Generated: {}\n",
            self.options.now.format("%Y-%m-%d %H:%M:%S +0000")
        ));
    }

    /// Writes a line for a domain not seen before.
    pub fn push(&mut self, _event: &Event, attribute: &Attribute, out: &mut String) {
        if attribute.attr_type != "domain" || self.seen.contains(&attribute.value1) {
            return;
        }
        out.push_str(&self.options.ip_address);
        out.push(' ');
        out.push_str(&attribute.value1);
        out.push('\n');
        self.seen.insert(attribute.value1.clone());
    }

    /// The hosts export has no footer.
    pub fn finish(&mut self, _out: &mut String) {}
}
