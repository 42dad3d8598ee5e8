//! A STIX 2.1 bundle for MISP Events (`returnFormat: stix2`), shaped like misp-stix's output.
//!
//! MISP itself shells out to misp-stix (`app/files/scripts/stix2/misp2stix2.py`, STIX 2.1 by
//! default). The facts below were read from misp-stix 2026.10.12 (`misp2stix/misp_to_stix2.py`,
//! `misp_to_stix21.py`, `stix2_mapping.py`, `stix21_mapping.py`, `exportparser.py`,
//! `misp_stix_mapping.py`) and checked against its output for `tests/data/fixture_event.json`
//! (`tests/data/stix2_misp_stix_reference.json`); the crate's tests compare the two object by
//! object.
//!
//! # Per Event
//! - `identity--<creator org uuid>` (`identity_class: organization`, created/modified = the
//!   event timestamp), once per bundle.
//! - `report--<event uuid>` when the event is published (with `published` = publish timestamp),
//!   otherwise `grouping--<event uuid>` with `context: suspicious-activity`. Its labels are
//!   `Threat-Report`, `misp:tool="MISP-STIX-Converter"` and the event tags; TLP tags become
//!   `object_marking_refs`. `object_refs` lists every object below except identities and marking
//!   definitions. An event without attributes gets a `note--<event uuid>` so `object_refs` is not
//!   empty.
//! - Per attribute (ids are `<stix type>--<attribute uuid>`): an `observed-data` with its SCOs,
//!   and — when `to_ids` — an `indicator` plus a `based-on` `relationship` (its id a UUIDv5 of
//!   `"<indicator id> - based-on - <observed-data id>"` in misp-stix's namespace). Relationships
//!   come after all attributes, then the marking definitions first used by the event.
//! - Attributes in MISP Objects are grouped into one `x-misp-object--<object uuid>` per object
//!   (misp-stix's fallback for objects it has no template mapping for).
//! - Common fields: `created_by_ref` (the identity), `created`/`modified` = the attribute
//!   timestamp (millisecond precision, as the stix2 library writes them), labels
//!   `misp:type="…"`, `misp:category="…"` plus the attribute's tags, `kill_chain_phases`
//!   `misp-category`/<category> on indicators, `valid_from` = the timestamp, `description` = the
//!   comment, `first_observed`/`last_observed` from `first_seen`/`last_seen` (else the timestamp).
//! - TLP tags (`tlp:white|green|amber|red` → the STIX TLP 1.0 markings, `tlp:clear` /
//!   `tlp:amber+strict` → the TLP 2.0 extension markings) become `object_marking_refs`; the
//!   `misp:confidence-level` tags also set `confidence`.
//!
//! # Attribute types
//! | MISP type | SCOs | indicator pattern |
//! |---|---|---|
//! | `ip-src`, `ip-dst` | network-traffic (`src_ref`/`dst_ref`, `protocols: [tcp]`), ipv4-addr/ipv6-addr | `network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '…'` |
//! | `ip-src\|port`, `ip-dst\|port` | the same plus `src_port`/`dst_port` | … `AND network-traffic:dst_port = '…'` |
//! | `domain`, `hostname` | domain-name | `domain-name:value = '…'` |
//! | `domain\|ip` | domain-name (`resolves_to_refs`), ipv4/ipv6-addr | `domain-name:value = '…' AND domain-name:resolves_to_refs[*].value = '…'` |
//! | `url`, `link`, `uri` | url | `url:value = '…'` |
//! | `email` | email-addr | `email-addr:value = '…'` |
//! | `email-src`, `email-dst` | email-message (`from_ref` / `to_refs`), email-addr | `email-message:from_ref.value` / `email-message:to_refs[*].value` |
//! | `email-subject` | email-message (`subject`) | `email-message:subject = '…'` |
//! | `md5`, `sha1`, `sha256`, `sha512` | file (`hashes`) | `file:hashes.MD5` / `file:hashes.'SHA-1'` … |
//! | `filename` | file (`name`) | `file:name = '…'` |
//! | `filename\|md5`, `…\|sha1`, `…\|sha256`, `…\|sha512` | file (`hashes`, `name`) | `file:name = '…' AND file:hashes.… = '…'` |
//! | `mutex` | mutex | `mutex:name = '…'` |
//! | `regkey` | windows-registry-key (hive abbreviations expanded) | `windows-registry-key:key = '…'` |
//! | `AS` | autonomous-system (`number`) | `autonomous-system:number = '…'` |
//! | `vulnerability` | — a `vulnerability` SDO with a `cve` external reference | — |
//! | `user-agent` | — (indicator only when `to_ids`) | `network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = '…'` |
//! | `snort`, `yara`, `sigma`, `suricata` | — (always an indicator) | the value, `pattern_type` = the type |
//! | anything else, malformed hashes/ports/AS numbers | — an `x-misp-attribute` custom object | — |
//!
//! Pattern values escape `\` and `'` with a backslash.
//!
//! # Divergences from misp-stix
//! - Registry keys: misp-stix copies MISP's `HKLM\…` through, which STIX 2.1 (and
//!   stix2-validator) rejects; Cairn writes the full hive name (`HKEY_LOCAL_MACHINE\…`) in both
//!   the SCO and the pattern.
//! - `url`/`link`/`uri` values without a scheme (`/gate.php`, `evil.com/x`): misp-stix writes a
//!   `url` object whose value is not a URI (invalid STIX); Cairn writes an `x-misp-attribute`.
//! - `x-misp-object` timestamps: the records carry no Object timestamp, so the newest member
//!   attribute's timestamp stands in.
//! - Relationship ids are misp-stix's UUIDv5s, so stix2-validator warns (not errors) that they
//!   are not UUIDv4, exactly as it does for MISP's own output; SCO ids reuse the attribute uuid
//!   (warned as not UUIDv5), also as misp-stix does.
//!
//! # Not covered
//! misp-stix's object-template mappings (file, domain-ip, email, … objects become native STIX
//! here only as `x-misp-object`), galaxies/clusters, sightings, analyst data, event reports,
//! attachments/malware samples, and the less common attribute types (they become
//! `x-misp-attribute`).

use std::collections::HashSet;
use std::fmt::Write as _;

use chrono::{DateTime, Timelike, Utc};
use serde_json::Value;
use uuid::{Uuid, uuid};

use crate::record::{Attribute, Event, utc, utc_micros};

/// misp-stix's namespace for relationship UUIDv5s (`abstract.py::_UUIDv4`).
const RELATIONSHIP_NAMESPACE: Uuid = uuid!("76beed5f-7251-457e-8c2a-b45f7b589d3d");

const EMPTY_EVENT_NOTE: &str =
    "This MISP Event is empty and contains no attribute, object, galaxy or tag.";

/// What the STIX writer needs that the records do not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stix2Options {
    /// The bundle's id (misp-stix uses the event uuid for a one-event export). Must be a real
    /// (v1–v5) UUID: stix2-validator rejects the nil UUID.
    pub bundle_id: Uuid,
}

/// Streams a STIX 2.1 bundle, one Event (with its attributes) at a time.
#[derive(Debug, Clone)]
pub struct Stix2Writer {
    options: Stix2Options,
    wrote_object: bool,
    identities: HashSet<Uuid>,
    markings: HashSet<&'static str>,
}

impl Stix2Writer {
    /// A writer for one bundle.
    pub fn new(options: Stix2Options) -> Stix2Writer {
        Stix2Writer {
            options,
            wrote_object: false,
            identities: HashSet::new(),
            markings: HashSet::new(),
        }
    }

    /// Opens the bundle.
    pub fn begin(&mut self, out: &mut String) {
        let _ = write!(
            out,
            "{{\"type\":\"bundle\",\"id\":\"bundle--{}\"",
            self.options.bundle_id
        );
    }

    /// Writes one Event's objects. `attributes` are the event's visible attributes, standalone
    /// ones and Object members alike, in MISP's order.
    pub fn push_event(&mut self, event: &Event, attributes: &[Attribute], out: &mut String) {
        let mut ctx = EventContext::new(event);
        for attribute in attributes.iter().filter(|a| !a.in_object()) {
            ctx.attribute(attribute);
        }
        let mut objects: Vec<Uuid> = Vec::new();
        for attribute in attributes {
            if let Some(uuid) = attribute.object_uuid {
                if !objects.contains(&uuid) {
                    objects.push(uuid);
                }
            }
        }
        for object_uuid in objects {
            let members: Vec<&Attribute> = attributes
                .iter()
                .filter(|a| a.object_uuid == Some(object_uuid))
                .collect();
            ctx.custom_object(object_uuid, &members);
        }
        let (identity, report, objects, trailing) = ctx.finish(&mut self.markings);
        if self.identities.insert(event.orgc_uuid) {
            self.write_object(&identity, out);
        }
        self.write_object(&report, out);
        for object in objects {
            self.write_object(&object, out);
        }
        for object in trailing {
            self.write_object(&object, out);
        }
    }

    /// Closes the bundle. A bundle without events has no `objects` member (STIX forbids an
    /// empty list).
    pub fn finish(&mut self, out: &mut String) {
        if self.wrote_object {
            out.push_str("\n]}\n");
        } else {
            out.push_str("}\n");
        }
    }

    fn write_object(&mut self, object: &str, out: &mut String) {
        out.push_str(if self.wrote_object {
            ",\n"
        } else {
            ",\"objects\":[\n"
        });
        out.push_str(object);
        self.wrote_object = true;
    }
}

/// A JSON object written field by field, in order (independent of serde_json's map ordering).
struct Obj(String);

impl Obj {
    fn new(kind: &str, id: &str) -> Obj {
        let mut obj = Obj(String::from("{"));
        obj.str("type", kind);
        obj.str("spec_version", "2.1");
        obj.str("id", id);
        obj
    }

    fn raw(&mut self, key: &str, json: &str) -> &mut Obj {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push_str(&json_string(key));
        self.0.push(':');
        self.0.push_str(json);
        self
    }

    fn str(&mut self, key: &str, value: &str) -> &mut Obj {
        self.raw(key, &json_string(value))
    }

    fn strs(&mut self, key: &str, values: &[String]) -> &mut Obj {
        let items: Vec<String> = values.iter().map(|v| json_string(v)).collect();
        self.raw(key, &format!("[{}]", items.join(",")))
    }

    fn strs_if_any(&mut self, key: &str, values: &[String]) -> &mut Obj {
        if !values.is_empty() {
            self.strs(key, values);
        }
        self
    }

    fn done(&mut self) -> String {
        let mut s = std::mem::take(&mut self.0);
        s.push('}');
        s
    }
}

fn json_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// `created`/`modified`: the stix2 library forces millisecond precision.
fn timestamp_ms(dt: DateTime<Utc>) -> String {
    dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Other timestamps keep only the fractional digits they have.
fn timestamp_any(dt: DateTime<Utc>) -> String {
    let mut s = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
    let micros = dt.nanosecond() / 1000;
    if micros != 0 {
        let frac = format!("{micros:06}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Backslash-escapes `\` and `'` (misp-stix `_escape_pattern_value`).
fn escape_pattern(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

/// The marking definitions misp-stix knows, by tag name.
fn marking(tag: &str) -> Option<(&'static str, &'static str)> {
    Some(match tag {
        "tlp:white" => (
            "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
            "white",
        ),
        "tlp:green" => (
            "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
            "green",
        ),
        "tlp:amber" => (
            "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
            "amber",
        ),
        "tlp:red" => (
            "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
            "red",
        ),
        "tlp:clear" => (
            "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
            "clear",
        ),
        "tlp:amber+strict" => (
            "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
            "amber+strict",
        ),
        _ => return None,
    })
}

/// The marking definition object for a marking id.
fn marking_object(id: &str, level: &str) -> String {
    let mut obj = Obj::new("marking-definition", id);
    let name = format!("TLP:{}", level.to_uppercase());
    if matches!(level, "clear" | "amber+strict") {
        obj.str("created", "2022-10-01T00:00:00.000Z").str("name", &name).raw(
            "extensions",
            &format!(
                "{{\"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d\":{{\"extension_type\":\"property-extension\",\"tlp_2_0\":{}}}}}",
                json_string(level)
            ),
        );
    } else {
        obj.str("created", "2017-01-20T00:00:00.000Z")
            .str("definition_type", "tlp")
            .str("name", &name)
            .raw("definition", &format!("{{\"tlp\":{}}}", json_string(level)));
    }
    obj.done()
}

fn confidence_of(tag: &str) -> Option<u8> {
    Some(match tag {
        "misp:confidence-level=\"completely-confident\"" => 100,
        "misp:confidence-level=\"usually-confident\"" => 75,
        "misp:confidence-level=\"fairly-confident\"" => 50,
        "misp:confidence-level=\"rarely-confident\"" => 25,
        "misp:confidence-level=\"unconfident\"" => 0,
        _ => return None,
    })
}

/// Labels, marking refs and confidence derived from a list of tags (misp-stix `_handle_markings`).
struct Tagging {
    labels: Vec<String>,
    marking_refs: Vec<String>,
    confidence: Option<u8>,
}

/// An SCO's JSON and id.
struct Sco {
    id: String,
    json: String,
}

/// How one attribute maps to STIX.
/// Whether a value starts with a URI scheme (`http:`, `hxxp:`, `ftp:`…), as RFC 3986 requires of
/// an absolute URI.
fn has_scheme(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once(':') else { return false };
    !rest.is_empty()
        && scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

enum Shape {
    Observable {
        scos: Vec<Sco>,
        pattern: String,
    },
    IndicatorOnly {
        pattern: String,
        pattern_type: Option<String>,
    },
    Vulnerability,
    Custom,
}

/// Collects one Event's objects in misp-stix's order.
struct EventContext<'e> {
    event: &'e Event,
    identity_id: String,
    objects: Vec<String>,
    refs: Vec<String>,
    relationships: Vec<(String, String, String)>,
    /// Marking ids first used in this event, with their level, in order.
    used_markings: Vec<(&'static str, &'static str)>,
}

impl<'e> EventContext<'e> {
    fn new(event: &'e Event) -> EventContext<'e> {
        EventContext {
            event,
            identity_id: format!("identity--{}", event.orgc_uuid),
            objects: Vec::new(),
            refs: Vec::new(),
            relationships: Vec::new(),
            used_markings: Vec::new(),
        }
    }

    fn push(&mut self, id: String, json: String) {
        self.refs.push(id);
        self.objects.push(json);
    }

    fn tagging(&mut self, base_labels: Vec<String>, tags: &[String]) -> Tagging {
        let mut tagging = Tagging {
            labels: base_labels,
            marking_refs: Vec::new(),
            confidence: None,
        };
        for tag in tags {
            if let Some((id, level)) = marking(tag) {
                tagging.marking_refs.push(id.to_string());
                if !self.used_markings.iter().any(|(used, _)| *used == id) {
                    self.used_markings.push((id, level));
                }
                continue;
            }
            if let Some(score) = confidence_of(tag) {
                tagging.confidence = Some(tagging.confidence.map_or(score, |c| c.min(score)));
            }
            tagging.labels.push(tag.clone());
        }
        tagging
    }

    fn apply(&self, obj: &mut Obj, tagging: &Tagging) {
        obj.strs_if_any("labels", &tagging.labels);
        obj.strs_if_any("object_marking_refs", &tagging.marking_refs);
        if let Some(confidence) = tagging.confidence {
            obj.raw("confidence", &confidence.to_string());
        }
    }

    fn attribute_labels(attribute: &Attribute) -> Vec<String> {
        let mut labels = Vec::new();
        if !attribute.attr_type.is_empty() {
            labels.push(format!("misp:type=\"{}\"", attribute.attr_type));
        }
        if !attribute.category.is_empty() {
            labels.push(format!("misp:category=\"{}\"", attribute.category));
        }
        labels
    }

    fn attribute(&mut self, attribute: &Attribute) {
        match shape(attribute) {
            Shape::Observable { scos, pattern } => {
                let observed_id = self.observed_data(attribute, &scos);
                for sco in scos {
                    self.push(sco.id, sco.json);
                }
                if attribute.to_ids {
                    let indicator_id = self.indicator(attribute, &pattern, None);
                    self.relationships.push((
                        indicator_id,
                        observed_id,
                        timestamp_ms(utc(attribute.timestamp)),
                    ));
                }
            }
            Shape::IndicatorOnly {
                pattern,
                pattern_type,
            } => {
                self.indicator(attribute, &pattern, pattern_type.as_deref());
            }
            Shape::Vulnerability => self.vulnerability(attribute),
            Shape::Custom => self.custom_attribute(attribute),
        }
    }

    fn observed_data(&mut self, attribute: &Attribute, scos: &[Sco]) -> String {
        let id = format!("observed-data--{}", attribute.uuid);
        let timestamp = utc(attribute.timestamp);
        let mut first = attribute.first_seen.map_or(timestamp, utc_micros);
        let mut last = attribute.last_seen.map_or(timestamp, utc_micros);
        if first > last {
            if attribute.last_seen.is_some() {
                first = last;
            } else {
                last = first;
            }
        }
        let tagging = self.tagging(Self::attribute_labels(attribute), &attribute.tags);
        let mut obj = Obj::new("observed-data", &id);
        obj.str("created_by_ref", &self.identity_id)
            .str("created", &timestamp_ms(timestamp))
            .str("modified", &timestamp_ms(timestamp))
            .str("first_observed", &timestamp_any(first))
            .str("last_observed", &timestamp_any(last))
            .raw("number_observed", "1")
            .strs(
                "object_refs",
                &scos.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
            );
        self.apply(&mut obj, &tagging);
        let json = obj.done();
        self.push(id.clone(), json);
        id
    }

    fn indicator(
        &mut self,
        attribute: &Attribute,
        pattern: &str,
        pattern_type: Option<&str>,
    ) -> String {
        let id = format!("indicator--{}", attribute.uuid);
        let timestamp = utc(attribute.timestamp);
        let tagging = self.tagging(Self::attribute_labels(attribute), &attribute.tags);
        let mut obj = Obj::new("indicator", &id);
        obj.str("created_by_ref", &self.identity_id)
            .str("created", &timestamp_ms(timestamp))
            .str("modified", &timestamp_ms(timestamp));
        if !attribute.comment.is_empty() {
            obj.str("description", &attribute.comment);
        }
        obj.str("pattern", pattern)
            .str("pattern_type", pattern_type.unwrap_or("stix"))
            .str("pattern_version", "2.1")
            .str("valid_from", &timestamp_any(timestamp))
            .raw(
                "kill_chain_phases",
                &format!(
                    "[{{\"kill_chain_name\":\"misp-category\",\"phase_name\":{}}}]",
                    json_string(&attribute.category)
                ),
            );
        self.apply(&mut obj, &tagging);
        let json = obj.done();
        self.push(id.clone(), json);
        id
    }

    fn vulnerability(&mut self, attribute: &Attribute) {
        let id = format!("vulnerability--{}", attribute.uuid);
        let timestamp = timestamp_ms(utc(attribute.timestamp));
        let tagging = self.tagging(Self::attribute_labels(attribute), &attribute.tags);
        let mut obj = Obj::new("vulnerability", &id);
        obj.str("created_by_ref", &self.identity_id)
            .str("created", &timestamp)
            .str("modified", &timestamp)
            .str("name", &attribute.value())
            .raw(
                "external_references",
                &format!(
                    "[{{\"source_name\":\"cve\",\"external_id\":{}}}]",
                    json_string(&attribute.value())
                ),
            );
        self.apply(&mut obj, &tagging);
        let json = obj.done();
        self.push(id, json);
    }

    fn custom_attribute(&mut self, attribute: &Attribute) {
        let id = format!("x-misp-attribute--{}", attribute.uuid);
        let timestamp = timestamp_ms(utc(attribute.timestamp));
        let tagging = self.tagging(Self::attribute_labels(attribute), &attribute.tags);
        let mut obj = Obj::new("x-misp-attribute", &id);
        obj.str("created_by_ref", &self.identity_id)
            .str("created", &timestamp)
            .str("modified", &timestamp);
        self.apply(&mut obj, &tagging);
        obj.str("x_misp_category", &attribute.category)
            .str("x_misp_type", &attribute.attr_type)
            .str("x_misp_value", &attribute.value());
        if !attribute.comment.is_empty() {
            obj.str("x_misp_comment", &attribute.comment);
        }
        let json = obj.done();
        self.push(id, json);
    }

    fn custom_object(&mut self, object_uuid: Uuid, members: &[&Attribute]) {
        let Some(first) = members.first() else { return };
        let id = format!("x-misp-object--{object_uuid}");
        let name = first.object_name.clone().unwrap_or_default();
        let meta_category = first.object_meta_category.clone().unwrap_or_default();
        // The records carry no object timestamp: the newest member stands in for it.
        let timestamp = timestamp_ms(utc(members
            .iter()
            .map(|a| a.timestamp)
            .max()
            .unwrap_or_default()));
        let attributes: Vec<String> = members
            .iter()
            .map(|a| {
                let mut item = String::from("{");
                let relation = a
                    .object_relation
                    .clone()
                    .unwrap_or_default()
                    .replace("(s)", "");
                let _ = write!(
                    item,
                    "\"type\":{},\"object_relation\":{},\"value\":{}",
                    json_string(&a.attr_type),
                    json_string(&relation),
                    json_string(&a.value())
                );
                if !a.category.is_empty() {
                    let _ = write!(item, ",\"category\":{}", json_string(&a.category));
                }
                if !a.comment.is_empty() {
                    let _ = write!(item, ",\"comment\":{}", json_string(&a.comment));
                }
                if a.to_ids {
                    item.push_str(",\"to_ids\":true");
                }
                let _ = write!(item, ",\"uuid\":\"{}\"}}", a.uuid);
                item
            })
            .collect();
        let mut obj = Obj::new("x-misp-object", &id);
        obj.str("created_by_ref", &self.identity_id)
            .str("created", &timestamp)
            .str("modified", &timestamp)
            .strs(
                "labels",
                &[
                    format!("misp:name=\"{}\"", name.replace('|', "-")),
                    format!("misp:meta-category=\"{meta_category}\""),
                ],
            )
            .raw("x_misp_attributes", &format!("[{}]", attributes.join(",")))
            .str("x_misp_meta_category", &meta_category)
            .str("x_misp_name", &name);
        let json = obj.done();
        self.push(id, json);
    }

    /// Returns the identity, the report/grouping, the attribute objects and relationships, and
    /// what misp-stix writes last (new marking definitions, then the empty-event note).
    fn finish(
        mut self,
        emitted: &mut HashSet<&'static str>,
    ) -> (String, String, Vec<String>, Vec<String>) {
        let event = self.event;
        let event_time = timestamp_ms(utc(event.timestamp));
        let mut identity = Obj::new("identity", &self.identity_id);
        identity
            .str("created", &event_time)
            .str("modified", &event_time)
            .str("name", &event.orgc_name)
            .str("identity_class", "organization");
        let identity = identity.done();

        let labels = vec![
            "Threat-Report".to_string(),
            "misp:tool=\"MISP-STIX-Converter\"".to_string(),
        ];
        let tagging = self.tagging(labels, &event.tags);

        for (source, target, time) in std::mem::take(&mut self.relationships) {
            let name = format!("{source} - based-on - {target}");
            let id = format!(
                "relationship--{}",
                Uuid::new_v5(&RELATIONSHIP_NAMESPACE, name.as_bytes())
            );
            let mut obj = Obj::new("relationship", &id);
            obj.str("created", &time)
                .str("modified", &time)
                .str("relationship_type", "based-on")
                .str("source_ref", &source)
                .str("target_ref", &target);
            let json = obj.done();
            self.push(id, json);
        }

        let mut trailing = Vec::new();
        for (id, level) in &self.used_markings {
            if emitted.insert(id) {
                trailing.push(marking_object(id, level));
            }
        }

        let published = event.published && event.publish_timestamp != 0;
        let report_id = if published {
            format!("report--{}", event.uuid)
        } else {
            format!("grouping--{}", event.uuid)
        };
        if self.refs.is_empty() {
            let note_id = format!("note--{}", event.uuid);
            let mut note = Obj::new("note", &note_id);
            note.str("created_by_ref", &self.identity_id)
                .str("created", &event_time)
                .str("modified", &event_time)
                .str("content", EMPTY_EVENT_NOTE)
                .strs("object_refs", std::slice::from_ref(&report_id));
            let json = note.done();
            trailing.push(json);
            self.refs.push(note_id);
        }

        let name = if event.info.is_empty() {
            "MISP Event exported to STIX 2.1 with misp-stix."
        } else {
            event.info.as_str()
        };
        let mut report = Obj::new(if published { "report" } else { "grouping" }, &report_id);
        report
            .str("created_by_ref", &self.identity_id)
            .str("created", &event_time)
            .str("modified", &event_time)
            .str("name", name);
        if published {
            report.str("published", &timestamp_any(utc(event.publish_timestamp)));
        } else {
            report.str("context", "suspicious-activity");
        }
        report.strs("object_refs", &self.refs);
        self.apply(&mut report, &tagging);
        (identity, report.done(), self.objects, trailing)
    }
}

fn sco(kind: &str, uuid: Uuid, fields: &[(&str, String)]) -> Sco {
    let id = format!("{kind}--{uuid}");
    let mut obj = Obj::new(kind, &id);
    for (key, json) in fields {
        obj.raw(key, json);
    }
    Sco {
        id,
        json: obj.done(),
    }
}

fn address_type(ip: &str) -> &'static str {
    if ip.contains(':') {
        "ipv6-addr"
    } else {
        "ipv4-addr"
    }
}

/// A value STIX integer properties write back unchanged (misp-stix `_is_canonical_integer`).
fn canonical_integer(value: &str) -> Option<u64> {
    let n: u64 = value.parse().ok()?;
    (value.bytes().all(|b| b.is_ascii_digit()) && n.to_string() == value).then_some(n)
}

/// (pattern hash name, SCO hashes key, hex length) for the hash types mapped natively.
fn hash_kind(hash_type: &str) -> Option<(&'static str, &'static str, usize)> {
    Some(match hash_type {
        "md5" => ("MD5", "MD5", 32),
        "sha1" => ("'SHA-1'", "SHA-1", 40),
        "sha256" => ("'SHA-256'", "SHA-256", 64),
        "sha512" => ("'SHA-512'", "SHA-512", 128),
        _ => return None,
    })
}

fn valid_hash(value: &str, len: usize) -> bool {
    value.len() == len && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// How misp-stix maps the attribute (see the module table).
fn shape(attribute: &Attribute) -> Shape {
    let uuid = attribute.uuid;
    let v1 = attribute.value1.as_str();
    let v2 = attribute.value2.as_str();
    let js = json_string;
    match attribute.attr_type.as_str() {
        kind @ ("ip-src" | "ip-dst") => {
            let dir = &kind[3..];
            let addr = address_type(v1);
            let addr_id = format!("{addr}--{uuid}");
            let traffic = sco(
                "network-traffic",
                uuid,
                &[
                    (&format!("{dir}_ref"), js(&addr_id)),
                    ("protocols", "[\"tcp\"]".into()),
                ],
            );
            let pattern = format!(
                "[network-traffic:{dir}_ref.type = '{addr}' AND network-traffic:{dir}_ref.value = '{}']",
                escape_pattern(v1)
            );
            Shape::Observable {
                scos: vec![traffic, sco(addr, uuid, &[("value", js(v1))])],
                pattern,
            }
        }
        kind @ ("ip-src|port" | "ip-dst|port") => {
            let Some(port) = canonical_integer(v2).filter(|p| *p <= 65535) else {
                return Shape::Custom;
            };
            let dir = &kind[3..6];
            let addr = address_type(v1);
            let addr_id = format!("{addr}--{uuid}");
            let traffic = sco(
                "network-traffic",
                uuid,
                &[
                    (&format!("{dir}_ref"), js(&addr_id)),
                    (&format!("{dir}_port"), port.to_string()),
                    ("protocols", "[\"tcp\"]".into()),
                ],
            );
            let pattern = format!(
                "[network-traffic:{dir}_ref.type = '{addr}' AND network-traffic:{dir}_ref.value = '{}' AND network-traffic:{dir}_port = '{port}']",
                escape_pattern(v1)
            );
            Shape::Observable {
                scos: vec![traffic, sco(addr, uuid, &[("value", js(v1))])],
                pattern,
            }
        }
        "domain" | "hostname" => Shape::Observable {
            scos: vec![sco("domain-name", uuid, &[("value", js(v1))])],
            pattern: format!("[domain-name:value = '{}']", escape_pattern(v1)),
        },
        "domain|ip" => {
            if v2.is_empty() {
                return Shape::Custom;
            }
            let addr = address_type(v2);
            let addr_id = format!("{addr}--{uuid}");
            let domain = sco(
                "domain-name",
                uuid,
                &[
                    ("value", js(v1)),
                    ("resolves_to_refs", format!("[{}]", js(&addr_id))),
                ],
            );
            Shape::Observable {
                scos: vec![domain, sco(addr, uuid, &[("value", js(v2))])],
                pattern: format!(
                    "[domain-name:value = '{}' AND domain-name:resolves_to_refs[*].value = '{}']",
                    escape_pattern(v1),
                    escape_pattern(v2)
                ),
            }
        }
        // STIX's `url:value` must be an absolute URI (RFC 3986); MISP values such as `/gate.php`
        // (`uri`) or `evil.com/x` (scheme-less `url`) become custom attributes instead of
        // invalid observables (misp-stix writes them as `url` objects the validator refuses).
        "url" | "link" | "uri" if !has_scheme(v1) => Shape::Custom,
        "url" | "link" | "uri" => Shape::Observable {
            scos: vec![sco("url", uuid, &[("value", js(v1))])],
            pattern: format!("[url:value = '{}']", escape_pattern(v1)),
        },
        "email" => Shape::Observable {
            scos: vec![sco("email-addr", uuid, &[("value", js(v1))])],
            pattern: format!("[email-addr:value = '{}']", escape_pattern(v1)),
        },
        kind @ ("email-src" | "email-dst") => {
            let addr_id = format!("email-addr--{uuid}");
            let (field, json, pattern_path) = if kind == "email-src" {
                ("from_ref", js(&addr_id), "from_ref")
            } else {
                ("to_refs", format!("[{}]", js(&addr_id)), "to_refs[*]")
            };
            let message = sco(
                "email-message",
                uuid,
                &[("is_multipart", "false".into()), (field, json)],
            );
            Shape::Observable {
                scos: vec![message, sco("email-addr", uuid, &[("value", js(v1))])],
                pattern: format!(
                    "[email-message:{pattern_path}.value = '{}']",
                    escape_pattern(v1)
                ),
            }
        }
        "email-subject" => Shape::Observable {
            scos: vec![sco(
                "email-message",
                uuid,
                &[("is_multipart", "false".into()), ("subject", js(v1))],
            )],
            pattern: format!("[email-message:subject = '{}']", escape_pattern(v1)),
        },
        "filename" => Shape::Observable {
            scos: vec![sco("file", uuid, &[("name", js(v1))])],
            pattern: format!("[file:name = '{}']", escape_pattern(v1)),
        },
        kind if hash_kind(kind).is_some() => {
            let Some((pattern_name, key, len)) = hash_kind(kind) else {
                return Shape::Custom;
            };
            if !valid_hash(v1, len) {
                return Shape::Custom;
            }
            Shape::Observable {
                scos: vec![sco(
                    "file",
                    uuid,
                    &[("hashes", format!("{{{}:{}}}", js(key), js(v1)))],
                )],
                pattern: format!("[file:hashes.{pattern_name} = '{v1}']"),
            }
        }
        kind if kind.strip_prefix("filename|").and_then(hash_kind).is_some() => {
            let Some((pattern_name, key, len)) = kind.strip_prefix("filename|").and_then(hash_kind)
            else {
                return Shape::Custom;
            };
            if !valid_hash(v2, len) {
                return Shape::Custom;
            }
            Shape::Observable {
                scos: vec![sco(
                    "file",
                    uuid,
                    &[
                        ("hashes", format!("{{{}:{}}}", js(key), js(v2))),
                        ("name", js(v1)),
                    ],
                )],
                pattern: format!(
                    "[file:name = '{}' AND file:hashes.{pattern_name} = '{v2}']",
                    escape_pattern(v1)
                ),
            }
        }
        "mutex" => Shape::Observable {
            scos: vec![sco("mutex", uuid, &[("name", js(v1))])],
            pattern: format!("[mutex:name = '{}']", escape_pattern(v1)),
        },
        "regkey" => {
            let key = expand_hive(v1.trim());
            Shape::Observable {
                scos: vec![sco("windows-registry-key", uuid, &[("key", js(&key))])],
                pattern: format!(
                    "[windows-registry-key:key = '{}']",
                    sanitise_registry_key(&escape_pattern(&key))
                ),
            }
        }
        "AS" => {
            let digits = v1
                .strip_prefix("AS")
                .or_else(|| v1.strip_prefix("as"))
                .unwrap_or(v1);
            let Some(number) = canonical_integer(digits) else {
                return Shape::Custom;
            };
            Shape::Observable {
                scos: vec![sco(
                    "autonomous-system",
                    uuid,
                    &[("number", number.to_string())],
                )],
                pattern: format!("[autonomous-system:number = '{number}']"),
            }
        }
        "vulnerability" => Shape::Vulnerability,
        "user-agent" if attribute.to_ids => Shape::IndicatorOnly {
            pattern: format!(
                "[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = '{}']",
                escape_pattern(v1)
            ),
            pattern_type: None,
        },
        kind @ ("snort" | "yara" | "sigma" | "suricata") => Shape::IndicatorOnly {
            pattern: format!("[{}]", attribute.value()),
            pattern_type: Some(kind.to_string()),
        },
        _ => Shape::Custom,
    }
}

/// STIX 2.1 requires the full hive name (`HKEY_LOCAL_MACHINE`, …) at the start of a registry key
/// and stix2-validator rejects MISP's usual abbreviations (`HKLM\…`), which misp-stix copies
/// through; Cairn expands them.
fn expand_hive(key: &str) -> String {
    const HIVES: [(&str, &str); 5] = [
        ("HKLM", "HKEY_LOCAL_MACHINE"),
        ("HKCU", "HKEY_CURRENT_USER"),
        ("HKCR", "HKEY_CLASSES_ROOT"),
        ("HKCC", "HKEY_CURRENT_CONFIG"),
        ("HKU", "HKEY_USERS"),
    ];
    for (short, long) in HIVES {
        let Some(head) = key.get(..short.len()) else {
            continue;
        };
        let rest = &key[short.len()..];
        if head.eq_ignore_ascii_case(short) && (rest.is_empty() || rest.starts_with('\\')) {
            return format!("{long}{rest}");
        }
    }
    key.to_string()
}

/// misp-stix `_sanitise_registry_key_value`.
fn sanitise_registry_key(value: &str) -> String {
    let sanitized = value.trim();
    if sanitized.contains('%') && !sanitized.contains("\\\\%") {
        if sanitized.contains("\\%") {
            return sanitized.replace("\\%", "\\\\%");
        }
        return sanitized.replace('%', "\\\\%");
    }
    sanitized.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_follow_the_stix2_library() {
        let dt = utc(1_709_290_001);
        assert_eq!(timestamp_ms(dt), "2024-03-01T10:46:41.000Z");
        assert_eq!(timestamp_any(dt), "2024-03-01T10:46:41Z");
        assert_eq!(
            timestamp_any(utc_micros(1_709_290_001_250_000)),
            "2024-03-01T10:46:41.25Z"
        );
    }

    #[test]
    fn relationship_ids_match_misp_stix() {
        let name = "indicator--a0000000-0000-4000-8000-000000000100 - based-on - observed-data--a0000000-0000-4000-8000-000000000100";
        assert_eq!(
            Uuid::new_v5(&RELATIONSHIP_NAMESPACE, name.as_bytes()).to_string(),
            "38532efd-cdca-56f6-81cc-026975d740c2"
        );
    }

    #[test]
    fn registry_hive_abbreviations_are_expanded() {
        assert_eq!(
            expand_hive(r"HKLM\Software\Run"),
            r"HKEY_LOCAL_MACHINE\Software\Run"
        );
        assert_eq!(expand_hive(r"hkcu\x"), r"HKEY_CURRENT_USER\x");
        assert_eq!(expand_hive("HKU"), "HKEY_USERS");
        assert_eq!(expand_hive(r"HKEY_USERS\x"), r"HKEY_USERS\x");
        assert_eq!(expand_hive(r"HKLMX\x"), r"HKLMX\x");
    }

    #[test]
    fn pattern_values_escape_quotes_and_backslashes() {
        assert_eq!(escape_pattern(r"HKLM\Run 'x'"), r"HKLM\\Run \'x\'");
    }
}
