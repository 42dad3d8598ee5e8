//! The warninglist probes (67 distinct (type, value) pairs; the README counts 68): every hit MISP's matching gives across the 119 lists of
//! pymispwarninglists 1.7.0 (`tests/data/freetext/README.md`).
//!
//! The lists themselves are data fetched at setup, not part of the repository: the test reads
//! `$CAIRN_DATA_DIR/warninglists/lists/<name>/list.json` and skips, saying so, without them.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use cairn_domain::warninglist::{Mode, Warninglists};
use serde_json::Value;

const PROBES: &str = include_str!("data/freetext/misp_warninglist_vectors.json");

/// (list, list type, matched entry, matched part) — one hit as the vectors record it.
type HitKey = (String, String, String, String);

fn lists_dir() -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("CAIRN_DATA_DIR") else {
        println!("skipped: CAIRN_DATA_DIR is not set (the lists come from pymispwarninglists 1.7.0)");
        return None;
    };
    let lists = PathBuf::from(dir).join("warninglists/lists");
    if !lists.is_dir() {
        println!("skipped: {} is missing", lists.display());
        return None;
    }
    Some(lists)
}

fn load_all(mode: Mode) -> Option<Warninglists> {
    let dir = lists_dir()?;
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("the lists directory reads")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    let started = Instant::now();
    let mut w = Warninglists::new(mode);
    for name in &names {
        let path = dir.join(name).join("list.json");
        let text = std::fs::read_to_string(&path).expect("a list.json reads");
        w.load(name, &text).expect("the list loads");
    }
    w.enable_all();
    println!(
        "loaded {} lists, {} entries, ~{} MB of entries, in {:?}",
        w.lists().count(),
        w.entry_count(),
        w.heap_bytes() / 1_000_000,
        started.elapsed()
    );
    Some(w)
}

fn probes() -> Vec<(String, String, BTreeSet<HitKey>)> {
    let doc: Value = serde_json::from_str(PROBES).expect("the probes parse");
    doc.as_array()
        .expect("an array of probes")
        .iter()
        .map(|p| {
            let hits = p["hits"]
                .as_array()
                .expect("hits")
                .iter()
                .map(|h| {
                    let s = |k: &str| h[k].as_str().expect("a string").to_string();
                    (s("list"), s("list_type"), s("match"), s("matched_part"))
                })
                .collect();
            (p["type"].as_str().expect("type").to_string(), p["value"].as_str().expect("value").to_string(), hits)
        })
        .collect()
}

fn hits(w: &Warninglists, t: &str, v: &str) -> BTreeSet<HitKey> {
    w.check_all(t, v).into_iter().map(|h| (h.list, h.list_type.to_string(), h.matched, h.value)).collect()
}

#[test]
fn every_probe_gives_exactly_misps_hits() {
    let Some(w) = load_all(Mode::Compat) else { return };
    assert_eq!(w.lists().count(), 119);
    assert_eq!(w.lists().map(|l| l.len() + l.unusable.len()).sum::<usize>(), 2_510_044);
    let probes = probes();
    assert_eq!(probes.len(), 67);
    let mut failures = Vec::new();
    for (t, v, want) in &probes {
        let got = hits(&w, t, v);
        if got != *want {
            failures.push(format!("{t} {v:?}\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Latency, for information (the benchmarks assert it on a release build).
    let mut times = Vec::new();
    for _ in 0..50 {
        for (t, v, _) in &probes {
            let started = Instant::now();
            std::hint::black_box(w.check(t, v, true));
            times.push(started.elapsed());
        }
    }
    times.sort();
    println!("check: p50 {:?}, p99 {:?}, max {:?}", times[times.len() / 2], times[times.len() * 99 / 100], times[times.len() - 1]);
}

#[test]
fn the_default_mode_differs_only_on_the_documented_probes() {
    let Some(w) = load_all(Mode::Default) else { return };
    // The phone_numbers list works (its `/g` patterns are accepted); hostnames ignore case and ports.
    let differs = ["+12125550199", "https://WWW.GOOGLE.COM/x", "google.com:443/x", "GOOGLE.COM"];
    for (t, v, want) in probes() {
        let got = hits(&w, &t, &v);
        if differs.contains(&v.as_str()) {
            assert_ne!(got, want, "{t} {v:?} should differ from MISP by default");
        } else {
            assert_eq!(got, want, "{t} {v:?}");
        }
    }
}
