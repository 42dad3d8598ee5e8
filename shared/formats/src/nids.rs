//! MISP's NIDS exports: Suricata (`returnFormat: suricata`) and Snort (`returnFormat: snort`).
//!
//! Sources: MISP `app/Lib/Export/NidsExport.php` (shared rules, header, Snort),
//! `NidsSuricataExport.php` (Suricata's own rule loop and overrides, 2.4.18x/2.5 shape with
//! `metadata:`), `NidsSnortExport.php` (Snort = the shared rules).
//!
//! # Output
//! The header is MISP's `explain()` comment block (10 lines, the last one `# `), then one line per
//! rule; lines are joined with `\n` and there is **no trailing newline** (MISP's footer is
//! `implode("\n", $rules)`). With no rules the body is the header alone.
//!
//! # Rule line
//! `alert <proto> <src_ip> <src_port> -> <dst_ip> <dst_port> (msg: "MISP e<event_id> …"; <content>
//! <tag> classtype:trojan-activity; sid:<sid>; rev:1; priority:<threat_level_id>;
//! reference:url,<baseurl>/events/view/<event_id>; …)`
//! - Snort: the msg is `MISP e<id> [<tags>] <text>` (attribute tags, then event tags in the Event
//!   scope, joined by `,`) and the line ends `;) ` (with MISP's trailing space).
//! - Suricata: the msg is `MISP e<id> <text>`; the tags move to a `metadata:` option after the
//!   reference: each tag converted (`tlp:white` → `tlp white`, `a:b="c d"` → `a:b c_d`, plain
//!   `x y` → `misp-tag x_y`, a `misp-galaxy:mitre-attack-pattern` tag also yields
//!   `mitre_tactic_id T…`), then `misp_event_uuid <uuid>`, `misp_ioc <value with _ for spaces>`,
//!   `created_at <attribute date Y_m_d>`, `updated_at <today Y_m_d>`, joined by `,`; the line
//!   ends `;)`.
//!
//! # Sids
//! `sid = user.nids_sid + attribute.id * 10 + 1`, then `+1` for each further rule of the same
//! attribute ("leave 9 possible rules per attribute type").
//!
//! # Rules per type (both flavours unless noted)
//! - `ip-dst`, `ip-dst|port`: `ip $HOME_NET any -> <ip> <port|any>`, msg `Outgoing To IP: <value>`.
//! - `ip-src`, `ip-src|port`: `ip <ip> <port|any> -> $HOME_NET any`, msg `Incoming From IP: <value>`.
//! - `email-src` / `email-dst` / `email-subject` / `email-attachment`: `tcp $EXTERNAL_NET any ->
//!   $SMTP_SERVERS 25` matching `MAIL FROM|3a|` / `RCPT TO|3a|` / `Subject|3a|` / the
//!   `Content-Disposition` filename; `email` gets both the source and destination rule (Snort
//!   reuses the sid, Suricata increments it).
//! - `domain` / `hostname`: Snort: a UDP and a TCP DNS rule on port 53 (raw DNS name
//!   `|len|label…|00|`, hostnames prefixed `|01|`) and an HTTP `Host` rule with a `pcre`; Suricata:
//!   `dns.query`, `http.host` and `tls.sni` rules (`startswith; endswith;`).
//! - `domain|ip`: the domain rules, then the `ip-dst` and `ip-src` rules for the IP.
//! - `url`: Snort: `http_uri` content on `$HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS`; Suricata:
//!   by scheme — `http` (host header + uri path), `https` (`tls.sni`, only without a path), `ssh`
//!   / `ftp` (only for IP hosts), anything else an `http.uri` content rule.
//! - `user-agent`: an HTTP header (Snort) / `http_user_agent` (Suricata) rule.
//! - `snort`: the value itself, with sid/rev/classtype/msg/reference rewritten or added.
//! - Suricata only: `ja3-fingerprint-md5` (`ja3.hash`), `ja3s-fingerprint-md5` (`ja3s.hash`),
//!   `cookie` (`http.cookie`), `email-x-mailer` / `email-message-id`, `filename` (`content`
//!   `startswith; endswith;`), `pattern-in-file` (`file.data; pcre`), `filename-pattern`
//!   (`file.name; pcre`). Hash types produce no rule (MISP has that code commented out).
//! - Values go through MISP's `replaceIllegalChars` (`|`→`|7c|`, `"`→`|22|`, `;`→`|3b|`,
//!   `:`→`|3a|`, `\`→`|5c|`, `0x`→`|30 78|`) where MISP applies it.
//!
//! # Divergences from MISP
//! - The header names the flavour for Snort too (MISP prints the format before setting it).
//! - A `snort` value without a `msg` gets `msg: "MISP e<id> … snort-rule"` (MISP appends an
//!   undefined variable, i.e. a bare `;`).
//! - Suricata's `email-x-mailer`/`email-message-id` msg names the field (MISP looks up the wrong
//!   key and prints an empty name), and `pattern-in-file`/`filename-pattern` write
//!   `pcre:"/…/";` (MISP writes literal backslashes before the quotes).
//! - Allowedlisted values are expected to be removed by the caller, as MISP's restSearch does
//!   before the exporter sees them, so no `#OVERRULED BY WHITELIST#` lines are produced.

use std::fmt::Write as _;
use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::record::{Attribute, Event, Scope, utc};

/// MISP's `NidsExport::$classtype`.
pub const CLASSTYPE: &str = "trojan-activity";

const SESSION_TAG: &str = "tag:session,600,seconds;";

/// Which IDS the rules are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NidsFlavour {
    Suricata,
    Snort,
}

impl NidsFlavour {
    fn name(self) -> &'static str {
        match self {
            NidsFlavour::Suricata => "suricata",
            NidsFlavour::Snort => "snort",
        }
    }
}

/// What the NIDS export needs from the user, the instance and the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NidsOptions {
    pub flavour: NidsFlavour,
    /// The requesting user's `nids_sid` (MISP's default for new users is 4000000).
    pub nids_sid: i64,
    /// `MISP.baseurl`, without a trailing slash.
    pub base_url: String,
    /// Event scope adds the event's tags to each rule.
    pub scope: Scope,
    /// Suricata's `updated_at` metadata.
    pub now: DateTime<Utc>,
}

/// The comment block MISP writes first (`NidsExport::explain`).
fn header_lines(flavour: NidsFlavour) -> [String; 10] {
    [
        format!("# MISP export of IDS rules - optimized for {}", flavour.name()),
        "#".to_string(),
        "# These NIDS rules contain some variables that need to exist in your configuration.".to_string(),
        "# Make sure you have set:".to_string(),
        "#".to_string(),
        "# $HOME_NET     - Your internal network range".to_string(),
        "# $EXTERNAL_NET - The network considered as outside".to_string(),
        "# $SMTP_SERVERS - All your internal SMTP servers".to_string(),
        "# $HTTP_PORTS   - The ports used to contain HTTP traffic (not required with suricata export)"
            .to_string(),
        "# ".to_string(),
    ]
}

/// Streams MISP's Suricata or Snort rules.
#[derive(Debug, Clone)]
pub struct NidsWriter {
    options: NidsOptions,
}

/// Everything the rules of one attribute share.
struct RuleContext {
    /// `msg: "MISP e12 [tags] %s"` before and after the `%s`.
    msg_prefix: String,
    /// `; <reference>` and, for Suricata, `; metadata:…`, up to the closing `)`.
    trailer: String,
    priority: u8,
    reference: String,
}

/// One rule's variable parts, in `sprintf` order.
struct Rule<'a> {
    proto: &'a str,
    src_ip: &'a str,
    src_port: &'a str,
    dst_ip: &'a str,
    dst_port: &'a str,
    msg: String,
    content: String,
    tag: &'a str,
}

impl NidsWriter {
    /// A writer for one flavour, user and instance.
    pub fn new(options: NidsOptions) -> NidsWriter {
        NidsWriter { options }
    }

    /// Writes the comment header.
    pub fn begin(&mut self, out: &mut String) {
        out.push_str(&header_lines(self.options.flavour).join("\n"));
    }

    /// Writes the attribute's rules (each preceded by a newline).
    pub fn push(&mut self, event: &Event, attribute: &Attribute, out: &mut String) {
        let ctx = self.context(event, attribute);
        let mut sid = self.options.nids_sid + attribute.id * 10 + 1;
        let rules = match self.options.flavour {
            NidsFlavour::Snort => snort_rules(&ctx, attribute, &mut sid),
            NidsFlavour::Suricata => suricata_rules(&ctx, attribute, &mut sid),
        };
        for rule in rules {
            out.push('\n');
            out.push_str(&rule);
        }
    }

    /// MISP's footer adds nothing after the last rule.
    pub fn finish(&mut self, _out: &mut String) {}

    fn context(&self, event: &Event, attribute: &Attribute) -> RuleContext {
        let mut tags: Vec<&str> = attribute.tags.iter().map(String::as_str).collect();
        if self.options.scope == Scope::Event {
            tags.extend(event.tags.iter().map(String::as_str));
        }
        let reference = format!(
            "reference:url,{}/events/view/{}",
            self.options.base_url, event.id
        );
        match self.options.flavour {
            NidsFlavour::Snort => RuleContext {
                msg_prefix: format!("msg: \"MISP e{} [{}] ", event.id, tags.join(",")),
                trailer: format!("; {reference};) "),
                priority: event.threat_level_id,
                reference,
            },
            NidsFlavour::Suricata => {
                let mut meta = tags_to_metadata(&tags);
                meta.push(format!("misp_event_uuid {}", event.uuid));
                meta.push(format!("misp_ioc {}", attribute.value().replace(' ', "_")));
                meta.push(format!(
                    "created_at {}",
                    utc(attribute.timestamp).format("%Y_%m_%d")
                ));
                meta.push(format!(
                    "updated_at {}",
                    self.options.now.format("%Y_%m_%d")
                ));
                RuleContext {
                    msg_prefix: format!("msg: \"MISP e{} ", event.id),
                    trailer: format!("; {reference}; metadata:{};)", meta.join(",")),
                    priority: event.threat_level_id,
                    reference,
                }
            }
        }
    }
}

impl RuleContext {
    fn render(&self, rule: Rule<'_>, sid: i64) -> String {
        format!(
            "alert {} {} {} -> {} {} ({}{}\"; {} {} classtype:{CLASSTYPE}; sid:{sid}; rev:1; priority:{}{}",
            rule.proto,
            rule.src_ip,
            rule.src_port,
            rule.dst_ip,
            rule.dst_port,
            self.msg_prefix,
            rule.msg,
            rule.content,
            rule.tag,
            self.priority,
            self.trailer,
        )
    }
}

/// `NidsSuricataExport::convertTagsToMeta`.
fn tags_to_metadata(tags: &[&str]) -> Vec<String> {
    let mut results = Vec::new();
    for tag in tags {
        let parts: Vec<&str> = tag.split(':').collect();
        if parts.len() == 1 {
            results.push(format!("misp-tag {}", tag.replace(' ', "_")));
            continue;
        }
        let namespace = parts[0];
        let predicate: Vec<&str> = parts[1].split('=').collect();
        if predicate.len() == 1 {
            results.push(format!("{namespace} {}", parts[1].replace(' ', "_")));
            continue;
        }
        if namespace == "misp-galaxy" && predicate[0] == "mitre-attack-pattern" {
            if let Some(id) = mitre_technique_id(predicate[1]) {
                results.push(format!("mitre_tactic_id {id}"));
            }
        }
        results.push(format!(
            "{namespace}:{} {}",
            predicate[0],
            predicate[1].trim_matches('"').replace(' ', "_")
        ));
    }
    results
}

/// The first `T\d{1,4}(\.\d{0,3})?` in `s`.
fn mitre_technique_id(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    for start in 0..bytes.len() {
        if bytes[start] != b'T' {
            continue;
        }
        let mut end = start + 1;
        while end < bytes.len() && end - start <= 4 && bytes[end].is_ascii_digit() {
            end += 1;
        }
        if end == start + 1 {
            continue;
        }
        if end < bytes.len() && bytes[end] == b'.' {
            let mut frac = end + 1;
            while frac < bytes.len() && frac - end <= 3 && bytes[frac].is_ascii_digit() {
                frac += 1;
            }
            end = frac;
        }
        return Some(s[start..end].to_string());
    }
    None
}

/// `NidsExport::replaceIllegalChars` (PHP `strtr`: longest match first, no re-scanning).
pub fn replace_illegal_chars(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("0x") {
            out.push_str("|30 78|");
            rest = &rest[2..];
            continue;
        }
        match c {
            '|' => out.push_str("|7c|"),
            '"' => out.push_str("|22|"),
            ';' => out.push_str("|3b|"),
            ':' => out.push_str("|3a|"),
            '\\' => out.push_str("|5c|"),
            other => out.push(other),
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// PHP `preg_quote` without a delimiter.
fn preg_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '.' | '\\' | '+' | '*' | '?' | '[' | '^' | ']' | '$' | '(' | ')' | '{' | '}' | '='
            | '!' | '<' | '>' | '|' | ':' | '-' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\0' => out.push_str("\\000"),
            other => out.push(other),
        }
    }
    out
}

/// `NidsExport::dnsNameToRawFormat`: `|06|foobar|03|com|00|`, hostnames prefixed `|01|`.
fn dns_name_to_raw(name: &str, hostname: bool) -> String {
    let mut raw = String::new();
    if hostname {
        raw.push_str("|01|");
    }
    for label in name.split('.') {
        let _ = write!(raw, "|{:02x}|{label}", label.len());
    }
    raw.push_str("|00|");
    raw
}

/// `NidsExport::getIpPort`: `[ip, port]` for `…|port` types, `[value, "any"]` otherwise.
fn ip_port<'a>(attr_type: &str, value: &'a str) -> (&'a str, &'a str) {
    if attr_type.contains("port") {
        let mut parts = value.splitn(3, '|');
        let ip = parts.next().unwrap_or_default();
        let port = parts.next().unwrap_or_default();
        (ip, port)
    } else {
        (value, "any")
    }
}

fn ip_dst_rule(ctx: &RuleContext, attr_type: &str, value: &str, sid: i64) -> String {
    let (ip, port) = ip_port(attr_type, value);
    let rule = Rule {
        proto: "ip",
        src_ip: "$HOME_NET",
        src_port: "any",
        dst_ip: ip,
        dst_port: port,
        msg: format!("Outgoing To IP: {value}"),
        content: String::new(),
        tag: "",
    };
    ctx.render(rule, sid)
}

fn ip_src_rule(ctx: &RuleContext, attr_type: &str, value: &str, sid: i64) -> String {
    let (ip, port) = ip_port(attr_type, value);
    let rule = Rule {
        proto: "ip",
        src_ip: ip,
        src_port: port,
        dst_ip: "$HOME_NET",
        dst_port: "any",
        msg: format!("Incoming From IP: {value}"),
        content: String::new(),
        tag: "",
    };
    ctx.render(rule, sid)
}

/// The four SMTP rules share everything but the matched header and the message.
fn smtp_rule(ctx: &RuleContext, content: String, msg: String, sid: i64) -> String {
    let rule = Rule {
        proto: "tcp",
        src_ip: "$EXTERNAL_NET",
        src_port: "any",
        dst_ip: "$SMTP_SERVERS",
        dst_port: "25",
        msg,
        content,
        tag: SESSION_TAG,
    };
    ctx.render(rule, sid)
}

fn email_src_rule(ctx: &RuleContext, value: &str, sid: i64) -> String {
    let v = replace_illegal_chars(value);
    let content = format!(
        "flow:established,to_server; content:\"MAIL FROM|3a|\"; nocase; content:\"{v}\"; fast_pattern; nocase; content:\"|0D 0A 0D 0A|\"; within:8192;"
    );
    smtp_rule(ctx, content, format!("Source Email Address: {v}"), sid)
}

fn email_dst_rule(ctx: &RuleContext, value: &str, sid: i64) -> String {
    let v = replace_illegal_chars(value);
    let content = format!(
        "flow:established,to_server; content:\"RCPT TO|3a|\"; nocase; content:\"{v}\"; fast_pattern; nocase; content:\"|0D 0A 0D 0A|\"; within:8192;"
    );
    smtp_rule(ctx, content, format!("Destination Email Address: {v}"), sid)
}

fn email_subject_rule(ctx: &RuleContext, value: &str, sid: i64) -> String {
    let v = replace_illegal_chars(value);
    let content = format!(
        "flow:established,to_server; content:\"Subject|3a|\"; nocase; content:\"{v}\"; fast_pattern; nocase; content:\"|0D 0A 0D 0A|\"; within:8192;"
    );
    smtp_rule(ctx, content, "Bad Email Subject".to_string(), sid)
}

fn email_attachment_rule(ctx: &RuleContext, value: &str, sid: i64) -> String {
    let v = replace_illegal_chars(value);
    let content = format!(
        "flow:established,to_server; content:\"Content-Disposition|3a| attachment|3b| filename|3d 22|\"; content:\"{v}|22|\"; fast_pattern; content:\"|0D 0A 0D 0A|\"; within:8192;"
    );
    smtp_rule(ctx, content, "Bad Email Attachment".to_string(), sid)
}

/// Snort's three DNS/HTTP rules for a domain or hostname (`NidsExport::domainRule`/`hostnameRule`).
fn snort_name_rules(
    ctx: &RuleContext,
    value: &str,
    hostname: bool,
    sid: &mut i64,
    rules: &mut Vec<String>,
) {
    let v = replace_illegal_chars(value);
    let label = if hostname { "Hostname" } else { "Domain" };
    let dns = format!(
        "content:\"|01 00 00 01 00 00 00 00 00 01|\"; depth:10; offset:2; content:\"{}\"; fast_pattern; nocase;",
        dns_name_to_raw(&v, hostname)
    );
    let dns_rule = |proto: &'static str, content: String| Rule {
        proto,
        src_ip: "any",
        src_port: "any",
        dst_ip: "any",
        dst_port: "53",
        msg: format!("{label}: {v}"),
        content,
        tag: "",
    };
    rules.push(ctx.render(dns_rule("udp", dns.clone()), *sid));
    *sid += 1;
    rules.push(ctx.render(dns_rule("tcp", format!("{dns} flow:established;")), *sid));
    *sid += 1;
    let http = if hostname {
        format!(
            "flow:to_server,established; content: \"Host|3a| {v}\"; nocase; http_header; pcre: \"/(^|[^A-Za-z0-9-\\.]){}[^A-Za-z0-9-\\.]/H\";",
            preg_quote(&v)
        )
    } else {
        format!(
            "flow:to_server,established; content: \"Host|3a|\"; nocase; http_header; content:\"{v}\"; fast_pattern; nocase; http_header; pcre: \"/(^|[^A-Za-z0-9-]){}[^A-Za-z0-9-\\.]/H\";",
            preg_quote(&v)
        )
    };
    let rule = Rule {
        proto: "tcp",
        src_ip: "$HOME_NET",
        src_port: "any",
        dst_ip: "$EXTERNAL_NET",
        dst_port: "$HTTP_PORTS",
        msg: format!("Outgoing HTTP {label}: {v}"),
        content: http,
        tag: SESSION_TAG,
    };
    rules.push(ctx.render(rule, *sid));
}

/// Suricata's DNS, HTTP and TLS rules for a domain or hostname.
fn suricata_name_rules(
    ctx: &RuleContext,
    value: &str,
    hostname: bool,
    sid: &mut i64,
    rules: &mut Vec<String>,
) {
    let v = replace_illegal_chars(value);
    let label = if hostname { "Hostname" } else { "Domain" };
    let dns = Rule {
        proto: "dns",
        src_ip: "any",
        src_port: "any",
        dst_ip: "any",
        dst_port: "any",
        msg: format!("{label} {v}"),
        content: format!("dns.query; content:\"{v}\"; startswith; endswith;"),
        tag: "",
    };
    rules.push(ctx.render(dns, *sid));
    *sid += 1;
    let http = Rule {
        proto: "http",
        src_ip: "$HOME_NET",
        src_port: "any",
        dst_ip: "$EXTERNAL_NET",
        dst_port: "any",
        msg: format!("Outgoing HTTP {label} {v}"),
        content: format!(
            "flow:to_server,established; http.host; content:\"{v}\"; startswith; endswith;"
        ),
        tag: SESSION_TAG,
    };
    rules.push(ctx.render(http, *sid));
    *sid += 1;
    let tls = Rule {
        proto: "tls",
        src_ip: "$HOME_NET",
        src_port: "any",
        dst_ip: "$EXTERNAL_NET",
        dst_port: "any",
        msg: format!("Outgoing HTTPS {label} {v}"),
        content: format!(
            "flow:to_server,established; tls.sni; content:\"{v}\"; startswith; endswith;"
        ),
        tag: SESSION_TAG,
    };
    rules.push(ctx.render(tls, *sid));
}

fn snort_url_rule(ctx: &RuleContext, value: &str, sid: i64) -> String {
    let v = replace_illegal_chars(value);
    let rule = Rule {
        proto: "tcp",
        src_ip: "$HOME_NET",
        src_port: "any",
        dst_ip: "$EXTERNAL_NET",
        dst_port: "$HTTP_PORTS",
        msg: format!("Outgoing HTTP URL: {v}"),
        content: format!("flow:to_server,established; content:\"{v}\"; nocase; http_uri;"),
        tag: SESSION_TAG,
    };
    ctx.render(rule, sid)
}

/// The parts of PHP's `parse_url` the Suricata URL rule reads.
#[derive(Debug, Default, PartialEq, Eq)]
struct UrlParts {
    scheme: Option<String>,
    host: String,
    port: Option<String>,
    path: Option<String>,
}

fn parse_url(value: &str) -> UrlParts {
    let Some((scheme, rest)) = value.split_once("://") else {
        return UrlParts::default();
    };
    let valid_scheme = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme {
        return UrlParts::default();
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = if host_port.starts_with('[') {
        match host_port.find(']') {
            Some(close) => {
                let port = host_port[close + 1..]
                    .strip_prefix(':')
                    .filter(|p| !p.is_empty());
                (&host_port[..=close], port)
            }
            None => (host_port, None),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                (host, Some(port))
            }
            Some((host, "")) => (host, None),
            _ => (host_port, None),
        }
    };
    let path = tail.starts_with('/').then(|| {
        let end = tail.find(['?', '#']).unwrap_or(tail.len());
        tail[..end].to_string()
    });
    UrlParts {
        scheme: Some(scheme.to_string()),
        host: host.to_string(),
        port: port.map(str::to_string),
        path,
    }
}

/// `NidsExport::getProtocolPort`.
fn protocol_port(scheme: &str, port: Option<&str>) -> String {
    match port {
        Some(port) => port.to_string(),
        None => match scheme {
            "http" => "$HTTP_PORTS",
            "https" => "443",
            "ssh" => "22",
            "ftp" => "[20,21]",
            _ => "any",
        }
        .to_string(),
    }
}

fn is_ip(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok()
}

/// `NidsSuricataExport::urlRule`.
fn suricata_url_rule(ctx: &RuleContext, value: &str, sid: i64) -> Option<String> {
    let url = parse_url(value);
    let msg = format!("Outgoing URL {}", replace_illegal_chars(value));
    let scheme = url.scheme.as_deref().unwrap_or_default();
    let port = url.port.as_deref();
    let (proto, src_ip, src_port, dst_ip, dst_port, content, tag): (
        &str,
        &str,
        String,
        String,
        String,
        String,
        &str,
    ) = match scheme {
        "http" => {
            let host = replace_illegal_chars(&url.host);
            let host = host.trim_matches(['[', ']']).to_string();
            let dst_ip = if is_ip(&host) {
                host.clone()
            } else {
                "$EXTERNAL_NET".to_string()
            };
            let content = match &url.path {
                None => {
                    format!("flow:to_server,established; http.header; content:\"{host}\"; nocase;")
                }
                Some(path) => format!(
                    "flow:to_server,established; http.header; content:\"{host}\"; fast_pattern; nocase; http.uri; content:\"{path}\"; nocase;"
                ),
            };
            (
                "http",
                "$HOME_NET",
                "any".into(),
                dst_ip,
                protocol_port(scheme, port),
                content,
                SESSION_TAG,
            )
        }
        "https" => {
            if url.path.is_some() {
                return None;
            }
            let host = replace_illegal_chars(&url.host);
            let content = format!("tls.sni; content:\"{host}\"; nocase;");
            (
                "tls",
                "$HOME_NET",
                "any".into(),
                "$EXTERNAL_NET".into(),
                protocol_port(scheme, port),
                content,
                SESSION_TAG,
            )
        }
        "ssh" | "ftp" => {
            if !is_ip(&url.host) {
                return None;
            }
            let (dst_port, content) = if scheme == "ssh" {
                (
                    "$SSH_PORTS".to_string(),
                    "flow:to_server; app-layer-protocol:ssh;".to_string(),
                )
            } else {
                (
                    protocol_port(scheme, port),
                    "flow:to_server; app-layer-protocol:ftp;".to_string(),
                )
            };
            (
                "tcp",
                "$HOME_NET",
                "any".into(),
                url.host.clone(),
                dst_port,
                content,
                "",
            )
        }
        _ => {
            let content = format!(
                "flow:to_server,established; http.uri; content:\"{}\"; fast_pattern; nocase;",
                replace_illegal_chars(value)
            );
            (
                "http",
                "$HOME_NET",
                "any".into(),
                "$EXTERNAL_NET".into(),
                "any".into(),
                content,
                SESSION_TAG,
            )
        }
    };
    let rule = Rule {
        proto,
        src_ip,
        src_port: &src_port,
        dst_ip: &dst_ip,
        dst_port: &dst_port,
        msg,
        content,
        tag,
    };
    Some(ctx.render(rule, sid))
}

fn user_agent_rule(ctx: &RuleContext, flavour: NidsFlavour, value: &str, sid: i64) -> String {
    let v = replace_illegal_chars(value);
    let rule = match flavour {
        NidsFlavour::Snort => Rule {
            proto: "tcp",
            src_ip: "$HOME_NET",
            src_port: "any",
            dst_ip: "$EXTERNAL_NET",
            dst_port: "$HTTP_PORTS",
            msg: format!("Outgoing User-Agent: {v}"),
            content: format!("flow:to_server,established; content:\"{v}\"; http_header;"),
            tag: SESSION_TAG,
        },
        NidsFlavour::Suricata => Rule {
            proto: "http",
            src_ip: "$HOME_NET",
            src_port: "any",
            dst_ip: "$EXTERNAL_NET",
            dst_port: "any",
            msg: format!("Outgoing User-Agent {v}"),
            content: format!(
                "flow:to_server,established; content:\"{v}\"; fast_pattern; http_user_agent;"
            ),
            tag: SESSION_TAG,
        },
    };
    ctx.render(rule, sid)
}

/// A Suricata rule on `tcp any any -> any any` (the newer single-keyword rules).
fn suricata_any_rule(
    ctx: &RuleContext,
    proto: &str,
    msg: String,
    content: String,
    tag: &str,
    sid: i64,
) -> String {
    let rule = Rule {
        proto,
        src_ip: "any",
        src_port: "any",
        dst_ip: "any",
        dst_port: "any",
        msg,
        content,
        tag,
    };
    ctx.render(rule, sid)
}

fn snort_rules(ctx: &RuleContext, attribute: &Attribute, sid: &mut i64) -> Vec<String> {
    let value = attribute.value();
    let kind = attribute.attr_type.as_str();
    let mut rules = Vec::new();
    match kind {
        "ip-dst" | "ip-dst|port" => rules.push(ip_dst_rule(ctx, kind, &value, *sid)),
        "ip-src" | "ip-src|port" => rules.push(ip_src_rule(ctx, kind, &value, *sid)),
        "email" => {
            // MISP's shared loop gives both rules the same sid.
            rules.push(email_src_rule(ctx, &value, *sid));
            rules.push(email_dst_rule(ctx, &value, *sid));
        }
        "email-src" => rules.push(email_src_rule(ctx, &value, *sid)),
        "email-dst" => rules.push(email_dst_rule(ctx, &value, *sid)),
        "email-subject" => rules.push(email_subject_rule(ctx, &value, *sid)),
        "email-attachment" => rules.push(email_attachment_rule(ctx, &value, *sid)),
        "domain" => snort_name_rules(ctx, &value, false, sid, &mut rules),
        "hostname" => snort_name_rules(ctx, &value, true, sid, &mut rules),
        "domain|ip" => {
            snort_name_rules(ctx, &attribute.value1, false, sid, &mut rules);
            *sid += 1;
            rules.push(ip_dst_rule(ctx, kind, &attribute.value2, *sid));
            *sid += 1;
            rules.push(ip_src_rule(ctx, kind, &attribute.value2, *sid));
        }
        "url" => rules.push(snort_url_rule(ctx, &value, *sid)),
        "user-agent" => rules.push(user_agent_rule(ctx, NidsFlavour::Snort, &value, *sid)),
        "snort" => rules.push(snort_passthrough(ctx, &value, *sid)),
        _ => {}
    }
    rules
}

fn suricata_rules(ctx: &RuleContext, attribute: &Attribute, sid: &mut i64) -> Vec<String> {
    let value = attribute.value();
    let kind = attribute.attr_type.as_str();
    let mut rules = Vec::new();
    match kind {
        "ip-dst" | "ip-dst|port" => rules.push(ip_dst_rule(ctx, kind, &value, *sid)),
        "ip-src" | "ip-src|port" => rules.push(ip_src_rule(ctx, kind, &value, *sid)),
        "email" => {
            rules.push(email_src_rule(ctx, &value, *sid));
            *sid += 1;
            rules.push(email_dst_rule(ctx, &value, *sid));
        }
        "email-src" => rules.push(email_src_rule(ctx, &value, *sid)),
        "email-dst" => rules.push(email_dst_rule(ctx, &value, *sid)),
        "email-subject" => rules.push(email_subject_rule(ctx, &value, *sid)),
        "email-attachment" => rules.push(email_attachment_rule(ctx, &value, *sid)),
        "email-x-mailer" | "email-message-id" => {
            let v = replace_illegal_chars(&value);
            let (keyword, requires, name) = if kind == "email-x-mailer" {
                (
                    "email.x_mailer",
                    "requires: version>=8.0.0; ",
                    "Email X-mailer",
                )
            } else {
                ("email.message_id", "", "Email Message-ID")
            };
            let content = format!("{keyword}; {requires}content:\"{v}\"; nocase;");
            rules.push(suricata_any_rule(
                ctx,
                "tcp",
                format!("{name} {v}"),
                content,
                "",
                *sid,
            ));
        }
        "domain" => suricata_name_rules(ctx, &value, false, sid, &mut rules),
        "hostname" => suricata_name_rules(ctx, &value, true, sid, &mut rules),
        "domain|ip" => {
            suricata_name_rules(ctx, &attribute.value1, false, sid, &mut rules);
            *sid += 1;
            rules.push(ip_dst_rule(ctx, kind, &attribute.value2, *sid));
            *sid += 1;
            rules.push(ip_src_rule(ctx, kind, &attribute.value2, *sid));
        }
        "url" => rules.extend(suricata_url_rule(ctx, &value, *sid)),
        "user-agent" => rules.push(user_agent_rule(ctx, NidsFlavour::Suricata, &value, *sid)),
        "ja3-fingerprint-md5" | "ja3s-fingerprint-md5" => {
            let v = replace_illegal_chars(&value);
            let (keyword, name) = if kind == "ja3-fingerprint-md5" {
                ("ja3.hash", "JA3 Hash")
            } else {
                ("ja3s.hash", "JA3S Hash")
            };
            let content = format!("{keyword}; content:\"{v}\"; fast_pattern;");
            rules.push(suricata_any_rule(
                ctx,
                "tls",
                format!("{name}: {v}"),
                content,
                SESSION_TAG,
                *sid,
            ));
        }
        "snort" => rules.push(snort_passthrough(ctx, &value, *sid)),
        "filename" => {
            let v = replace_illegal_chars(&value);
            let content = format!("content:\"{v}\"; startswith; endswith;");
            rules.push(suricata_any_rule(
                ctx,
                "tcp",
                format!("Filename {v}"),
                content,
                "",
                *sid,
            ));
        }
        "pattern-in-file" | "filename-pattern" => {
            let v = replace_illegal_chars(&value);
            let (keyword, name) = if kind == "pattern-in-file" {
                ("file.data", "Pattern in File")
            } else {
                ("file.name", "Filename Pattern")
            };
            let content = format!("{keyword}; pcre:\"/{v}/\";");
            rules.push(suricata_any_rule(
                ctx,
                "tcp",
                format!("{name} {v}"),
                content,
                "",
                *sid,
            ));
        }
        "cookie" => {
            let v = replace_illegal_chars(&value);
            let rule = Rule {
                proto: "http",
                src_ip: "$HOME_NET",
                src_port: "any",
                dst_ip: "$EXTERNAL_NET",
                dst_port: "any",
                msg: format!("Cookie {v}"),
                content: format!("http.cookie; content:\"{v}\"; nocase;"),
                tag: SESSION_TAG,
            };
            rules.push(ctx.render(rule, *sid));
        }
        _ => {}
    }
    rules
}

fn is_pcre_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

fn skip_spaces(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_pcre_space(s[i]) {
        i += 1;
    }
    i
}

/// Replaces every non-overlapping match found by `matcher` (which returns the match end for a
/// match starting at `i`) with `replacement(matched text)`; returns the text and the count.
fn replace_all(
    s: &str,
    matcher: impl Fn(&[u8], usize) -> Option<usize>,
    replacement: impl Fn(&str) -> String,
) -> (String, usize) {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut count = 0;
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if let Some(end) = matcher(bytes, i).filter(|_| s.is_char_boundary(i)) {
            out.push_str(&s[copied..i]);
            out.push_str(&replacement(&s[i..end]));
            count += 1;
            i = end.max(i + 1);
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&s[copied..]);
    (out, count)
}

/// `/<word>\s*:\s*[0-9]+\s*;/`
fn match_numbered(word: &'static str) -> impl Fn(&[u8], usize) -> Option<usize> {
    move |s, i| {
        if !s[i..].starts_with(word.as_bytes()) {
            return None;
        }
        let mut j = skip_spaces(s, i + word.len());
        if s.get(j) != Some(&b':') {
            return None;
        }
        j = skip_spaces(s, j + 1);
        let digits = j;
        while j < s.len() && s[j].is_ascii_digit() {
            j += 1;
        }
        if j == digits {
            return None;
        }
        j = skip_spaces(s, j);
        (s.get(j) == Some(&b';')).then_some(j + 1)
    }
}

/// `/classtype:[a-zA-Z_-]+;/`
fn match_classtype(s: &[u8], i: usize) -> Option<usize> {
    let word = b"classtype:";
    if !s[i..].starts_with(word) {
        return None;
    }
    let mut j = i + word.len();
    let start = j;
    while j < s.len() && (s[j].is_ascii_alphabetic() || s[j] == b'_' || s[j] == b'-') {
        j += 1;
    }
    (j > start && s.get(j) == Some(&b';')).then_some(j + 1)
}

/// `/msg\s*:\s*"(.*?)"\s*;/` — the lazy group ends at the first `"` followed by `\s*;`.
fn match_msg(s: &[u8], i: usize) -> Option<usize> {
    if !s[i..].starts_with(b"msg") {
        return None;
    }
    let mut j = skip_spaces(s, i + 3);
    if s.get(j) != Some(&b':') {
        return None;
    }
    j = skip_spaces(s, j + 1);
    if s.get(j) != Some(&b'"') {
        return None;
    }
    let mut k = j + 1;
    while k < s.len() {
        if s[k] == b'"' {
            let after = skip_spaces(s, k + 1);
            if s.get(after) == Some(&b';') {
                return Some(after + 1);
            }
        }
        k += 1;
    }
    None
}

/// The `(.*?)` of a `msg` match.
fn msg_group(matched: &str) -> &str {
    let open = matched.find('"').map_or(0, |p| p + 1);
    let close = matched.rfind('"').unwrap_or(matched.len());
    matched.get(open..close).unwrap_or_default()
}

/// `/reference\s*:\s*.+?;/` — at least one character between the colon and the `;`.
fn match_reference(s: &[u8], i: usize) -> Option<usize> {
    if !s[i..].starts_with(b"reference") {
        return None;
    }
    let j = skip_spaces(s, i + 9);
    if s.get(j) != Some(&b':') {
        return None;
    }
    let from = j + 2;
    (from..s.len()).find(|&k| s[k] == b';').map(|k| k + 1)
}

/// `/;\s*\)/`
fn match_close(s: &[u8], i: usize) -> Option<usize> {
    if s[i] != b';' {
        return None;
    }
    let j = skip_spaces(s, i + 1);
    (s.get(j) == Some(&b')')).then_some(j + 1)
}

/// `NidsExport::snortRule`: the attribute's own rule with MISP's sid, rev, classtype, msg and
/// reference forced in.
fn snort_passthrough(ctx: &RuleContext, value: &str, sid: i64) -> String {
    let rule = value.replace(['\r', '\n'], " ");
    let (rule, sids) = replace_all(&rule, match_numbered("sid"), |_| format!("sid:{sid};"));
    let (rule, revs) = replace_all(&rule, match_numbered("rev"), |_| "rev:1;".to_string());
    let (rule, classtypes) = replace_all(&rule, match_classtype, |_| {
        format!("classtype:{CLASSTYPE};")
    });
    let (rule, msgs) = replace_all(&rule, match_msg, |m| {
        format!("{}snort-rule | {}\";", ctx.msg_prefix, msg_group(m))
    });
    let (rule, _) = replace_all(&rule, match_reference, |_| format!("{};", ctx.reference));
    let (rule, references) = replace_all(&rule, match_reference, |_| format!("{};", ctx.reference));
    let mut extra = String::new();
    if sids == 0 {
        let _ = write!(extra, "sid:{sid};");
    }
    if revs == 0 {
        extra.push_str("rev:1;");
    }
    if classtypes == 0 {
        let _ = write!(extra, "classtype:{CLASSTYPE};");
    }
    if msgs == 0 {
        let _ = write!(extra, "{}snort-rule\";", ctx.msg_prefix);
    }
    if references == 0 {
        let _ = write!(extra, "{};", ctx.reference);
    }
    replace_all(&rule, match_close, |_| format!("; {extra})")).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn illegal_characters_are_hex_escaped_like_strtr() {
        assert_eq!(
            replace_illegal_chars("a|b\"c;d:e\\f0xg"),
            "a|7c|b|22|c|3b|d|3a|e|5c|f|30 78|g"
        );
    }

    #[test]
    fn dns_names_are_length_prefixed() {
        assert_eq!(
            dns_name_to_raw("foobar.com", false),
            "|06|foobar|03|com|00|"
        );
        assert_eq!(
            dns_name_to_raw("foobar.com", true),
            "|01||06|foobar|03|com|00|"
        );
    }

    #[test]
    fn tags_become_suricata_metadata() {
        let meta = tags_to_metadata(&[
            "tlp:white",
            "misp-galaxy:threat-actor=\"Sofacy\"",
            "misp-galaxy:mitre-attack-pattern=\"Spearphishing - T1566.001\"",
            "plain tag",
        ]);
        assert_eq!(
            meta,
            [
                "tlp white",
                "misp-galaxy:threat-actor Sofacy",
                "mitre_tactic_id T1566.001",
                "misp-galaxy:mitre-attack-pattern Spearphishing_-_T1566.001",
                "misp-tag plain_tag",
            ]
        );
    }

    #[test]
    fn urls_are_split_like_parse_url() {
        let url = parse_url("http://user@host.example:8080/a/b?c#d");
        assert_eq!(url.scheme.as_deref(), Some("http"));
        assert_eq!(url.host, "host.example");
        assert_eq!(url.port.as_deref(), Some("8080"));
        assert_eq!(url.path.as_deref(), Some("/a/b"));
        assert_eq!(parse_url("https://secure.example.org").path, None);
        assert_eq!(parse_url("evil.example.com/x").scheme, None);
    }

    #[test]
    fn snort_passthrough_rewrites_misp_keywords() {
        let ctx = RuleContext {
            msg_prefix: "msg: \"MISP e1 [] ".to_string(),
            trailer: String::new(),
            priority: 1,
            reference: "reference:url,https://m/events/view/1".to_string(),
        };
        let rule = snort_passthrough(
            &ctx,
            "alert tcp any any -> any 80 (msg:\"x\"; sid:5; rev:3;)",
            41,
        );
        assert_eq!(
            rule,
            "alert tcp any any -> any 80 (msg: \"MISP e1 [] snort-rule | x\"; sid:41; rev:1; \
             classtype:trojan-activity;reference:url,https://m/events/view/1;)"
        );
    }
}
