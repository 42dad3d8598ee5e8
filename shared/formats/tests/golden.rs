//! Golden tests: every format renders `tests/data/fixture_event.json` (one Event with every
//! common attribute type) and an empty result exactly like the committed `tests/data/*.expected`
//! files.
//!
//! The writers do not filter, so the golden files also show non-IDS rows that a restrictive
//! restSearch would have dropped before they reached the writer.
//!
//! Regenerate after an intended change with
//! `CAIRN_WRITE_FIXTURES=1 cargo test -p cairn-formats --test golden`, then review the diff.

use std::path::PathBuf;

use cairn_formats::bro::{BroGroup, BroOptions, BroWriter};
use cairn_formats::csv::{CsvOptions, CsvWriter};
use cairn_formats::hashes::HashesWriter;
use cairn_formats::hosts::{HostsOptions, HostsWriter};
use cairn_formats::netfilter::{NetfilterOptions, NetfilterWriter};
use cairn_formats::nids::{NidsFlavour, NidsOptions, NidsWriter};
use cairn_formats::rpz::{RpzOptions, RpzPolicy, RpzWriter};
use cairn_formats::stix2::{Stix2Options, Stix2Writer};
use cairn_formats::text::TextWriter;
use cairn_formats::{Attribute, Event, Scope};
use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use uuid::Uuid;

#[derive(Deserialize)]
struct Fixture {
    event: Event,
    attributes: Vec<Attribute>,
}

fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn fixture() -> (Event, Vec<Attribute>) {
    let text = std::fs::read_to_string(data_path("fixture_event.json")).expect("fixture readable");
    let fixture: Fixture = serde_json::from_str(&text).expect("fixture parses");
    let attributes = fixture
        .attributes
        .into_iter()
        .map(|mut attribute| {
            attribute.event_id = fixture.event.id;
            attribute
        })
        .collect();
    (fixture.event, attributes)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0)
        .single()
        .expect("valid date")
}

/// Compares with the golden file, or rewrites it when `CAIRN_WRITE_FIXTURES=1`.
fn golden(name: &str, actual: &str) {
    let path = data_path(name);
    if std::env::var("CAIRN_WRITE_FIXTURES").as_deref() == Ok("1") {
        std::fs::write(&path, actual).expect("golden file writable");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing {name}; run with CAIRN_WRITE_FIXTURES=1"));
    assert!(
        expected == actual,
        "{name} differs from the golden file:\n--- actual ---\n{actual}\n--- end ---"
    );
}

/// Every per-attribute writer has the same four calls; this drives one over rows.
macro_rules! render {
    ($writer:expr, $event:expr, $attributes:expr) => {{
        let mut writer = $writer;
        let mut out = String::new();
        writer.begin(&mut out);
        for attribute in $attributes {
            writer.push($event, attribute, &mut out);
        }
        writer.finish(&mut out);
        out
    }};
}

#[test]
fn csv_default_columns() {
    let (event, attributes) = fixture();
    golden(
        "csv.expected",
        &render!(CsvWriter::new(CsvOptions::default()), &event, &attributes),
    );
    golden(
        "csv_empty.expected",
        &render!(
            CsvWriter::new(CsvOptions::default()),
            &event,
            &[] as &[Attribute]
        ),
    );
}

#[test]
fn csv_event_scope_with_context() {
    let (event, attributes) = fixture();
    let options = CsvOptions {
        include_context: true,
        scope: Scope::Event,
        ..CsvOptions::default()
    };
    golden(
        "csv_context.expected",
        &render!(CsvWriter::new(options), &event, &attributes),
    );
}

#[test]
fn csv_requested_attributes_and_headerless() {
    let (event, attributes) = fixture();
    let requested = CsvOptions {
        requested_attributes: Some(vec!["value".into(), "event_id".into()]),
        include_context: true,
        ..CsvOptions::default()
    };
    golden(
        "csv_requested.expected",
        &render!(CsvWriter::new(requested), &event, &attributes[..3]),
    );
    let headerless = CsvOptions {
        headerless: true,
        ..CsvOptions::default()
    };
    golden(
        "csv_headerless.expected",
        &render!(CsvWriter::new(headerless), &event, &attributes[..2]),
    );
}

#[test]
fn text_unique_values() {
    let (event, attributes) = fixture();
    golden(
        "text.expected",
        &render!(TextWriter::new(), &event, &attributes),
    );
    golden(
        "text_empty.expected",
        &render!(TextWriter::new(), &event, &[] as &[Attribute]),
    );
}

#[test]
fn hashes_one_per_line() {
    let (event, attributes) = fixture();
    golden(
        "hashes.expected",
        &render!(HashesWriter::new(), &event, &attributes),
    );
    golden(
        "hashes_empty.expected",
        &render!(HashesWriter::new(), &event, &[] as &[Attribute]),
    );
}

fn nids(flavour: NidsFlavour, scope: Scope) -> NidsWriter {
    NidsWriter::new(NidsOptions {
        flavour,
        nids_sid: 4_000_000,
        base_url: "https://misp.example.org".to_string(),
        scope,
        now: now(),
    })
}

#[test]
fn suricata_rules() {
    let (event, attributes) = fixture();
    golden(
        "suricata.expected",
        &render!(
            nids(NidsFlavour::Suricata, Scope::Event),
            &event,
            &attributes
        ),
    );
    golden(
        "suricata_empty.expected",
        &render!(
            nids(NidsFlavour::Suricata, Scope::Event),
            &event,
            &[] as &[Attribute]
        ),
    );
}

#[test]
fn snort_rules() {
    let (event, attributes) = fixture();
    golden(
        "snort.expected",
        &render!(
            nids(NidsFlavour::Snort, Scope::Attribute),
            &event,
            &attributes
        ),
    );
    golden(
        "snort_empty.expected",
        &render!(
            nids(NidsFlavour::Snort, Scope::Attribute),
            &event,
            &[] as &[Attribute]
        ),
    );
}

#[test]
fn rpz_zone() {
    let (event, attributes) = fixture();
    golden(
        "rpz.expected",
        &render!(RpzWriter::new(RpzOptions::new(now())), &event, &attributes),
    );
    golden(
        "rpz_empty.expected",
        &render!(
            RpzWriter::new(RpzOptions::new(now())),
            &event,
            &[] as &[Attribute]
        ),
    );
    let local_data = RpzOptions {
        policy: RpzPolicy::LocalData,
        walled_garden: "walled.example.org.".to_string(),
        ns_alt: "ns2.example.org.".to_string(),
        serial: "$time".to_string(),
        ..RpzOptions::new(now())
    };
    golden(
        "rpz_local_data.expected",
        &render!(RpzWriter::new(local_data), &event, &attributes[..6]),
    );
}

#[test]
fn hosts_blocklist() {
    let (event, attributes) = fixture();
    golden(
        "hosts.expected",
        &render!(
            HostsWriter::new(HostsOptions::new(now())),
            &event,
            &attributes
        ),
    );
    golden(
        "hosts_empty.expected",
        &render!(
            HostsWriter::new(HostsOptions::new(now())),
            &event,
            &[] as &[Attribute]
        ),
    );
}

#[test]
fn netfilter_commands() {
    let (event, attributes) = fixture();
    golden(
        "netfilter.expected",
        &render!(
            NetfilterWriter::new(NetfilterOptions::default()),
            &event,
            &attributes
        ),
    );
    golden(
        "netfilter_empty.expected",
        &render!(
            NetfilterWriter::new(NetfilterOptions::default()),
            &event,
            &[] as &[Attribute]
        ),
    );
}

fn bro() -> BroWriter {
    BroWriter::new(BroOptions {
        groups: BroGroup::parse("all"),
        base_url: "https://misp.example.org".to_string(),
        host_org_name: Some("Cairn Host".to_string()),
    })
}

#[test]
fn bro_intel() {
    let (event, attributes) = fixture();
    golden("bro.expected", &render!(bro(), &event, &attributes));
    golden(
        "bro_empty.expected",
        &render!(bro(), &event, &[] as &[Attribute]),
    );
}

fn stix2(event: &Event, attributes: &[Attribute]) -> String {
    let mut writer = Stix2Writer::new(Stix2Options {
        bundle_id: event.uuid,
    });
    let mut out = String::new();
    writer.begin(&mut out);
    writer.push_event(event, attributes, &mut out);
    writer.finish(&mut out);
    out
}

/// The fixture as STIX 2.1; `tests/data/stix2_fixture.json` is the file to run
/// `stix2_validator` on.
#[test]
fn stix2_bundle() {
    let (event, attributes) = fixture();
    golden("stix2_fixture.json", &stix2(&event, &attributes));

    let bundle_id = Uuid::parse_str("7b2f0c1e-6d1a-4f5e-9c3b-2a1d0e9f8c7b").expect("uuid");
    let mut writer = Stix2Writer::new(Stix2Options { bundle_id });
    let mut out = String::new();
    writer.begin(&mut out);
    writer.finish(&mut out);
    golden("stix2_empty.expected", &out);

    let unpublished = Event {
        published: false,
        tags: Vec::new(),
        ..event
    };
    golden(
        "stix2_unpublished_empty_event.json",
        &stix2(&unpublished, &[]),
    );
}

/// misp-stix 2026.10.12's conversion of the same fixture (`misp_stix_converter export -v 2.1`)
/// holds the same objects, field for field.
#[test]
fn stix2_matches_misp_stix_object_for_object() {
    let (event, attributes) = fixture();
    let ours: serde_json::Value =
        serde_json::from_str(&stix2(&event, &attributes)).expect("our bundle parses");
    let text = std::fs::read_to_string(data_path("stix2_misp_stix_reference.json"))
        .expect("reference readable");
    let reference: serde_json::Value = serde_json::from_str(&text).expect("reference parses");
    let ours = ours["objects"].as_array().expect("objects");
    let mut theirs = reference["objects"].as_array().expect("objects").clone();
    // The one documented divergence: full registry hive names (stix2-validator rejects `HKLM\`).
    for object in &mut theirs {
        for field in ["key", "pattern"] {
            if let Some(text) = object[field].as_str() {
                let expanded = text.replace("HKLM\\", "HKEY_LOCAL_MACHINE\\");
                object[field] = serde_json::Value::String(expanded);
            }
        }
    }
    let ids = |objects: &[serde_json::Value]| -> Vec<String> {
        objects
            .iter()
            .map(|o| o["id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(ids(ours), ids(&theirs), "same objects in the same order");
    for (mine, reference) in ours.iter().zip(&theirs) {
        assert_eq!(mine, reference, "object {} differs", reference["id"]);
    }
    assert_eq!(
        reference["id"],
        serde_json::json!(format!("bundle--{}", event.uuid))
    );
}

/// PyMISP's `test_search_stix` unpacks `*_, ip_address, indicator, _ = stix2['objects']` for an
/// unpublished event holding a text attribute and an IDS `ip-src`.
#[test]
fn stix2_ends_with_address_indicator_and_relationship_like_pymisp_expects() {
    let (event, attributes) = fixture();
    let unpublished = Event {
        published: false,
        tags: Vec::new(),
        ..event
    };
    let text = attributes
        .iter()
        .find(|a| a.attr_type == "text")
        .cloned()
        .expect("text attribute");
    let ip = Attribute {
        tags: Vec::new(),
        ..attributes[0].clone()
    };
    let bundle: serde_json::Value =
        serde_json::from_str(&stix2(&unpublished, &[text, ip])).expect("bundle parses");
    let objects = bundle["objects"].as_array().expect("objects");
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        kinds,
        [
            "identity",
            "grouping",
            "x-misp-attribute",
            "observed-data",
            "network-traffic",
            "ipv4-addr",
            "indicator",
            "relationship"
        ]
    );
    let [.., ip_address, indicator, _] = objects.as_slice() else {
        panic!("too few objects")
    };
    assert_eq!(ip_address["value"], "8.8.8.8");
    assert_eq!(
        indicator["pattern"],
        "[network-traffic:src_ref.type = 'ipv4-addr' AND network-traffic:src_ref.value = '8.8.8.8']"
    );
}

/// Flushing `out` after every row gives the same bytes as one buffer.
#[test]
fn output_can_be_flushed_between_rows() {
    let (event, attributes) = fixture();
    let whole = render!(
        nids(NidsFlavour::Suricata, Scope::Event),
        &event,
        &attributes
    );
    let mut writer = nids(NidsFlavour::Suricata, Scope::Event);
    let mut flushed = String::new();
    let mut out = String::new();
    writer.begin(&mut out);
    for attribute in &attributes {
        flushed.push_str(&out);
        out.clear();
        writer.push(&event, attribute, &mut out);
    }
    writer.finish(&mut out);
    flushed.push_str(&out);
    assert_eq!(flushed, whole);
}

/// misp-stix turns an unpublished Event without attributes into a grouping and a note.
#[test]
fn stix2_empty_unpublished_event_matches_misp_stix() {
    let (event, _) = fixture();
    let unpublished = Event {
        published: false,
        tags: Vec::new(),
        ..event
    };
    let ours: serde_json::Value =
        serde_json::from_str(&stix2(&unpublished, &[])).expect("our bundle parses");
    let text = std::fs::read_to_string(data_path("stix2_misp_stix_empty_reference.json"))
        .expect("reference readable");
    let reference: serde_json::Value = serde_json::from_str(&text).expect("reference parses");
    assert_eq!(ours, reference);
}

/// Several Events in one bundle share their creator's identity and the marking definitions.
#[test]
fn stix2_bundle_writes_shared_identity_and_markings_once() {
    let (event, attributes) = fixture();
    let second = Event {
        id: 13,
        uuid: Uuid::from_u128(0x5e0f3c6a_7b1e_4c4f_9a53_2f6d0c1e8a02),
        ..event.clone()
    };
    let mut writer = Stix2Writer::new(Stix2Options {
        bundle_id: event.uuid,
    });
    let mut out = String::new();
    writer.begin(&mut out);
    writer.push_event(&event, &attributes[..2], &mut out);
    writer.push_event(&second, &[], &mut out);
    writer.finish(&mut out);
    let bundle: serde_json::Value = serde_json::from_str(&out).expect("bundle parses");
    let count = |kind: &str| {
        bundle["objects"]
            .as_array()
            .expect("objects")
            .iter()
            .filter(|o| o["type"] == kind)
            .count()
    };
    assert_eq!(count("identity"), 1);
    assert_eq!(count("report"), 2);
    assert_eq!(
        count("marking-definition"),
        2,
        "tlp:white and tlp:green, once each"
    );
    assert_eq!(
        count("note"),
        1,
        "the attribute-less second event gets misp-stix's note, tags or not"
    );
}
