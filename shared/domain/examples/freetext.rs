//! Development helper: runs the freetext extractor over standard input and prints the candidates
//! as JSON, the shape `shared/data/freetext/corpus/evaluate.py --cmd` reads.
//!
//! `freetext [compat|default] [repeat]`; with a repeat count the extraction runs that many times and
//! the fastest run's throughput goes to standard error. The TLD list comes from `$CAIRN_DATA_DIR/warninglists/lists/tlds/list.json`
//! (MISP's fallback list when it is missing).

use std::io::Read;

use cairn_domain::freetext::{Mode, TldSet, extract};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mode = match std::env::args().nth(1).as_deref() {
        Some("compat") => Mode::Compat,
        _ => Mode::Default,
    };
    let tlds = match std::env::var_os("CAIRN_DATA_DIR") {
        Some(dir) => {
            let text = std::fs::read_to_string(std::path::Path::new(&dir).join("warninglists/lists/tlds/list.json"))?;
            let doc: serde_json::Value = serde_json::from_str(&text)?;
            let names = doc["list"].as_array().map(|l| l.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>());
            TldSet::from_names(names.unwrap_or_default())
        }
        None => TldSet::misp_fallback(),
    };
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input)?;
    let repeat: u32 = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(0);
    if repeat > 0 {
        let mut best = std::time::Duration::MAX;
        for _ in 0..repeat {
            let started = std::time::Instant::now();
            std::hint::black_box(extract(&input, mode, &tlds));
            best = best.min(started.elapsed());
        }
        eprintln!("{} bytes in {best:?}: {:.1} MB/s", input.len(), input.len() as f64 / best.as_secs_f64() / 1e6);
    }
    println!("{}", serde_json::to_string_pretty(&extract(&input, mode, &tlds))?);
    Ok(())
}
