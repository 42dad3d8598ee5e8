//! A deliberately small Prometheus text-format registry: named counters and gauges backed by atomics.
//! Services register what they measure once and `render` writes the exposition format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

#[derive(Debug)]
struct Metric {
    kind: Kind,
    help: &'static str,
    // label set (rendered as `{k="v",...}`) -> value
    values: Mutex<BTreeMap<String, Arc<AtomicI64>>>,
}

/// Process-wide registry; clone freely.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    metrics: Arc<Mutex<BTreeMap<&'static str, Arc<Metric>>>>,
}

/// A handle to one (metric, labels) value.
#[derive(Clone, Debug)]
pub struct Handle(Arc<AtomicI64>);

impl Handle {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Registry {
    pub fn global() -> &'static Registry {
        static GLOBAL: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
        GLOBAL.get_or_init(Registry::default)
    }

    pub fn counter(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)]) -> Handle {
        self.handle(name, help, Kind::Counter, labels)
    }

    pub fn gauge(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)]) -> Handle {
        self.handle(name, help, Kind::Gauge, labels)
    }

    fn handle(&self, name: &'static str, help: &'static str, kind: Kind, labels: &[(&str, &str)]) -> Handle {
        let metric = {
            let mut metrics = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
            metrics
                .entry(name)
                .or_insert_with(|| Arc::new(Metric { kind, help, values: Mutex::new(BTreeMap::new()) }))
                .clone()
        };
        let key = render_labels(labels);
        let mut values = metric.values.lock().unwrap_or_else(|e| e.into_inner());
        Handle(values.entry(key).or_insert_with(|| Arc::new(AtomicI64::new(0))).clone())
    }

    /// The Prometheus text exposition of every registered metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let metrics = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        for (name, metric) in metrics.iter() {
            let kind = match metric.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP {name} {}", metric.help);
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let values = metric.values.lock().unwrap_or_else(|e| e.into_inner());
            for (labels, value) in values.iter() {
                let _ = writeln!(out, "{name}{labels} {}", value.load(Ordering::Relaxed));
            }
        }
        out
    }
}

fn render_labels(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")))
        .collect();
    format!("{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges_with_labels() {
        let r = Registry::default();
        r.counter("cairn_test_total", "A test counter.", &[("projector", "indexer")]).add(3);
        r.gauge("cairn_lag", "Lag.", &[]).set(7);
        let text = r.render();
        assert!(text.contains("# TYPE cairn_test_total counter"));
        assert!(text.contains("cairn_test_total{projector=\"indexer\"} 3"));
        assert!(text.contains("cairn_lag 7"));
    }
}
