//! `cairnctl bench freetext` and `cairnctl bench warninglists`: the pure engines, in process, on one
//! core, each beside a same-run baseline (a plain whitespace split of the same text; a `HashSet`
//! lookup of the same values).

use crate::BoxError;
use cairn_domain::freetext::{self, Mode, Options};
use cairn_domain::warninglist::Warninglists;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The report files of the corpus (the documents the scorer reads).
const CORPUS_DOCS: [(&str, &str); 6] = [
    ("eset_xdspy", "README.adoc"),
    ("eset_winnti_group", "README.adoc"),
    ("eset_backdoordiplomacy", "README.adoc"),
    ("avast_cacheflow", "README.md"),
    ("avast_blustealer", "README.md"),
    ("unit42_ta551_ursnif_2020-07-09", "report.txt"),
];

#[derive(Args)]
pub(crate) struct FreetextArgs {
    /// The scored corpus (its six reports are the "corpus-like text").
    #[arg(long, default_value = "tests/freetext/corpus")]
    corpus: PathBuf,
    /// Runs per input; the fastest counts.
    #[arg(long, default_value_t = 5)]
    runs: u32,
}

#[derive(Args)]
pub(crate) struct WarninglistArgs {
    /// Values checked one at a time (latency percentiles).
    #[arg(long, default_value_t = 100_000)]
    checks: usize,
}

fn spinner(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!("{what:<24} [{{bar:40}}] {{pos}}/{{len}} {{per_sec}} eta {{eta}}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// The fastest of `runs` runs of `f`.
fn best(runs: u32, mut f: impl FnMut()) -> Duration {
    (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn mb_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

pub(crate) fn freetext(data_dir: &Path, args: &FreetextArgs) -> Result<(), BoxError> {
    let mut corpus = String::new();
    for (doc, file) in CORPUS_DOCS {
        corpus.push_str(&std::fs::read_to_string(args.corpus.join(doc).join(file)).map_err(|e| format!("{}: {e}", args.corpus.join(doc).display()))?);
        corpus.push('\n');
    }
    let (tlds, vendors) = cairn_api::warninglists::freetext_lists(&data_dir.join("warninglists"), Mode::Default);
    let x10 = corpus.repeat(10);
    let x100 = corpus.repeat(100);
    // Repeated text is partly free (a token seen before is resolved once); this variant changes
    // every digit in every copy, so nearly every indicator token is new.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let unique: String = x100
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                char::from(b'0' + (seed % 10) as u8)
            } else {
                c
            }
        })
        .collect();
    let adversarial: Vec<(&str, Vec<u8>)> = vec![
        ("1 MB without separators", "a1b2c3d4e5".repeat(100_000).into_bytes()),
        ("1 MB of `a.`", "a.".repeat(500_000).into_bytes()),
        ("100k `[.]`", "[.]".repeat(100_000).into_bytes()),
        ("1 MB of `@`", "@".repeat(1_000_000).into_bytes()),
        ("1 MB of `a@b.`", "a@b.".repeat(250_000).into_bytes()),
        ("1 MB of `|`", "|".repeat(1_000_000).into_bytes()),
    ];
    let steps = 5 * 2 + adversarial.len() as u64;
    let bar = spinner(steps, "freetext");
    println!("freetext extraction, one thread, best of {} runs (corpus = the 6 scored reports, {} bytes)", args.runs, corpus.len());
    println!("{:<30} {:>10} {:>12} {:>10}", "input", "bytes", "time", "MB/s");
    let mut times = std::collections::HashMap::new();
    for mode in [Mode::Default, Mode::Compat] {
        let options = Options { mode, tlds: &tlds, security_vendor_domains: &vendors };
        for (name, text) in [("corpus ×10", &x10), ("corpus ×100", &x100), ("corpus ×100, new digits", &unique)] {
            let d = best(args.runs, || {
                std::hint::black_box(freetext::extract_with(text.as_bytes(), &options));
            });
            times.insert((format!("{mode:?}"), name), d);
            println!("{:<30} {:>10} {:>12.1?} {:>10.1}", format!("{name} ({mode:?})"), text.len(), d, mb_per_s(text.len(), d));
            bar.inc(1);
        }
        // The same text through a bare whitespace split: the floor any tokenizer pays.
        let d = best(args.runs, || {
            std::hint::black_box(x100.split_whitespace().count());
        });
        println!("{:<30} {:>10} {:>12.1?} {:>10.1}", "baseline: split_whitespace ×100", x100.len(), d, mb_per_s(x100.len(), d));
        bar.inc(2);
    }
    for mode in ["Default", "Compat"] {
        let (t10, t100) = (times[&(mode.to_string(), "corpus ×10")], times[&(mode.to_string(), "corpus ×100")]);
        println!("linearity ({mode}): 10× the input took {:.2}× the time (goal ≤ 11×)", t100.as_secs_f64() / t10.as_secs_f64());
    }
    println!("{:<30} {:>10} {:>12} {:>10}", "adversarial input (default)", "bytes", "time", "found");
    let options = Options { mode: Mode::Default, tlds: &tlds, security_vendor_domains: &vendors };
    for (name, text) in &adversarial {
        let mut found = 0;
        let d = best(args.runs.min(3), || found = freetext::extract_with(text, &options).len());
        println!("{name:<30} {:>10} {d:>12.1?} {found:>10}", text.len());
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

/// Values shaped like the indicators warninglists are asked about, with their attribute types.
fn probe_values(n: usize) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(n);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let known = ["8.8.8.8", "1.1.1.1", "google.com", "www.microsoft.com", "d41d8cd98f00b204e9800998ecf8427e", "10.1.2.3"];
    for i in 0..n {
        let r = next();
        let v = match i % 6 {
            0 => ("ip-dst", format!("{}.{}.{}.{}", r & 255, (r >> 8) & 255, (r >> 16) & 255, (r >> 24) & 255)),
            1 => ("domain", format!("host{}.example{}.com", r % 100_000, r % 97)),
            2 => ("url", format!("https://cdn{}.example.net/path/{}", r % 1000, r)),
            3 => ("md5", format!("{:016x}{:016x}", r, next())),
            4 => ("email-src", format!("user{}@mail{}.example.org", r % 1000, r % 50)),
            _ => ("hostname", known[(r % known.len() as u64) as usize].to_string()),
        };
        out.push(v);
    }
    out
}

pub(crate) fn warninglists(data_dir: &Path, args: &WarninglistArgs) -> Result<(), BoxError> {
    let dir = data_dir.join("warninglists/lists");
    let mut keys: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e} (scripts/run or scripts/test fetch the lists)", dir.display()))?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    keys.sort();
    let rss_before = rss_kib("VmRSS:");
    let bar = spinner(keys.len() as u64, "loading warninglists");
    let started = Instant::now();
    let mut lists = Warninglists::new(Mode::Default);
    for key in &keys {
        let text = std::fs::read_to_string(dir.join(key).join("list.json"))?;
        lists.load(key, &text)?;
        bar.inc(1);
    }
    lists.enable_all();
    let load = started.elapsed();
    bar.finish_and_clear();
    let peak = rss_kib("VmHWM:").saturating_sub(rss_before);
    println!(
        "load: {} lists, {} entries in {load:.2?}; peak RSS growth {:.1} MB (compiled heap {:.1} MB)",
        keys.len(),
        lists.entry_count(),
        peak as f64 / 1024.0,
        lists.heap_bytes() as f64 / 1e6
    );
    let values = probe_values(args.checks);
    let bar = spinner(values.len() as u64, "checking values");
    let mut latencies = Vec::with_capacity(values.len());
    let mut hits = 0usize;
    for (i, (t, v)) in values.iter().enumerate() {
        let s = Instant::now();
        hits += usize::from(!lists.check_all(t, v).is_empty());
        latencies.push(s.elapsed());
        if i % 1000 == 0 {
            bar.set_position(i as u64);
        }
    }
    bar.finish_and_clear();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "check (all 119 lists enabled, per value): p50 {:.1?}, p99 {:.1?}, max {:.1?}; {hits} of {} values hit a list",
        pct(0.50),
        pct(0.99),
        latencies.last().copied().unwrap_or_default(),
        values.len()
    );
    let batch: Vec<_> = values.iter().take(10_000).collect();
    let d = best(3, || {
        for (t, v) in &batch {
            std::hint::black_box(lists.check_all(t, v));
        }
    });
    println!("batch: 10,000 attributes checked in {d:.1?}");
    let set: std::collections::HashSet<&str> = values.iter().map(|(_, v)| v.as_str()).collect();
    let d = best(3, || {
        for (_, v) in &batch {
            std::hint::black_box(set.contains(v.as_str()));
        }
    });
    println!("baseline: 10,000 lookups in one std HashSet in {d:.1?}");
    Ok(())
}
