//! MISP's netfilter export (`returnFormat: netfilter`): one `iptables` command per address.
//!
//! Facts from MISP `app/Lib/Export/NetfilterExport.php`:
//! - Types and the address used: `ip-src`, `ip-dst` (the value), `domain|ip` (the second half),
//!   `ip-src|port`, `ip-dst|port` (the first half). Other types print nothing.
//! - Line: `iptables -A INPUT -s <ip> -j <action>` + `\n`; `netfilter_action` defaults to `DROP`.
//! - No header, no footer, no de-duplication. The format is *not* restrictive.

use crate::record::{Attribute, Event};

/// MISP's default action.
pub const DEFAULT_ACTION: &str = "DROP";

/// The restSearch parameters the netfilter export reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetfilterOptions {
    /// `netfilter_action`.
    pub action: String,
}

impl Default for NetfilterOptions {
    fn default() -> NetfilterOptions {
        NetfilterOptions {
            action: DEFAULT_ACTION.to_string(),
        }
    }
}

/// The address a netfilter rule is written for, if the type has one.
pub fn address_of(attribute: &Attribute) -> Option<&str> {
    match attribute.attr_type.as_str() {
        "ip-src" | "ip-dst" => Some(&attribute.value1),
        "domain|ip" => Some(&attribute.value2),
        "ip-src|port" | "ip-dst|port" => Some(&attribute.value1),
        _ => None,
    }
}

/// Streams MISP's netfilter export.
#[derive(Debug, Clone, Default)]
pub struct NetfilterWriter {
    options: NetfilterOptions,
}

impl NetfilterWriter {
    /// A writer using `options.action`.
    pub fn new(options: NetfilterOptions) -> NetfilterWriter {
        NetfilterWriter { options }
    }

    /// The netfilter export has no header.
    pub fn begin(&mut self, _out: &mut String) {}

    /// Writes one `iptables` line for an address attribute.
    pub fn push(&mut self, _event: &Event, attribute: &Attribute, out: &mut String) {
        if let Some(ip) = address_of(attribute) {
            out.push_str("iptables -A INPUT -s ");
            out.push_str(ip);
            out.push_str(" -j ");
            out.push_str(&self.options.action);
            out.push('\n');
        }
    }

    /// The netfilter export has no footer.
    pub fn finish(&mut self, _out: &mut String) {}
}
