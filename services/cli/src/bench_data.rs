//! Synthetic but realistic attribute values for the search and correlator benchmarks: deterministic
//! (the same index always gives the same value), mostly unique, a pool of values shared by a few
//! Events each, and a handful of over-correlating values held by hundreds of attributes.

use std::collections::HashSet;

/// Values shared by a few attributes each (they correlate in pairs and triples).
pub(crate) const SHARED_POOL: u64 = 10_000;
/// Per mille of attributes drawn from the shared pool.
const SHARED_PER_MILLE: u64 = 25;
/// Per mille of attributes holding one of the over-correlating values.
const OVER_PER_MILLE: u64 = 5;

/// Values that show up everywhere (resolvers, big platforms, empty-file hashes, TLP strings in text).
pub(crate) const OVER_CORRELATING: [(&str, &str); 12] = [
    ("ip-dst", "8.8.8.8"),
    ("ip-dst", "1.1.1.1"),
    ("ip-src", "192.168.1.1"),
    ("domain", "google.com"),
    ("domain", "microsoft.com"),
    ("hostname", "www.google.com"),
    ("md5", "d41d8cd98f00b204e9800998ecf8427e"),
    ("sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("url", "https://www.google.com/"),
    ("text", "TLP:WHITE"),
    ("email-src", "noreply@example.com"),
    ("filename", "invoice.pdf.exe"),
];

/// SplitMix64: a good 64-bit mix of a counter.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A small deterministic random source.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        mix(self.0)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const WORDS: [&str; 16] = [
    "update", "cdn", "mail", "secure", "login", "cloud", "static", "api", "portal", "files", "sync", "news", "shop", "data", "auth", "img",
];
const TLDS: [&str; 8] = ["com", "net", "org", "info", "ru", "cn", "io", "biz"];

fn domain(h: u64) -> String {
    format!("{}{}.{}{}.{}", WORDS[(h % 16) as usize], (h >> 8) % 10_000, WORDS[((h >> 24) % 16) as usize], (h >> 32) % 1_000, TLDS[((h >> 44) % 8) as usize])
}

fn ipv4(h: u64) -> String {
    // Public-looking addresses: first octet 11..=223.
    format!("{}.{}.{}.{}", 11 + (h % 213), (h >> 8) & 255, (h >> 16) & 255, 1 + ((h >> 24) % 254))
}

fn hex(h: u64, chars: usize) -> String {
    let mut s = String::with_capacity(chars);
    let mut i = 0u64;
    while s.len() < chars {
        s.push_str(&format!("{:016x}", mix(h ^ i)));
        i += 1;
    }
    s.truncate(chars);
    s
}

/// One generated attribute: MISP type, value (`a|b` for composites) and `to_ids`.
#[derive(Clone, Debug)]
pub(crate) struct Value {
    pub(crate) attr_type: &'static str,
    pub(crate) value: String,
    pub(crate) to_ids: bool,
}

impl Value {
    /// (value1, value2) as stored.
    pub(crate) fn halves(&self) -> (String, String) {
        match self.value.split_once('|') {
            Some((a, b)) => (a.to_string(), b.to_string()),
            None => (self.value.clone(), String::new()),
        }
    }

    /// A plausible MISP category for the type.
    pub(crate) fn category(&self) -> &'static str {
        match self.attr_type {
            "ip-dst" | "ip-src" | "ip-dst|port" | "domain" | "hostname" | "url" => "Network activity",
            "md5" | "sha1" | "sha256" | "filename" | "filename|sha256" => "Payload delivery",
            "email-src" => "Payload delivery",
            _ => "Other",
        }
    }
}

/// The unique value of kind `kind` (0..100 picks the type mix) for seed `h`.
fn unique(kind: u64, h: u64) -> Value {
    let (attr_type, value, to_ids) = match kind {
        0..=24 => ("ip-dst", ipv4(h), true),
        25..=39 => ("domain", domain(h), true),
        40..=49 => ("url", format!("https://{}/{}/{}.php", domain(h), WORDS[((h >> 50) % 16) as usize], hex(h, 10)), true),
        50..=59 => ("md5", hex(h, 32), true),
        60..=67 => ("sha256", hex(h, 64), true),
        68..=72 => ("filename|sha256", format!("{}_{}.exe|{}", WORDS[(h % 16) as usize], (h >> 20) % 100_000, hex(h, 64)), true),
        73..=77 => ("email-src", format!("{}.{}@{}", WORDS[((h >> 4) % 16) as usize], (h >> 12) % 100_000, domain(h >> 3)), true),
        78..=82 => ("hostname", format!("{}.{}", WORDS[((h >> 6) % 16) as usize], domain(h)), true),
        83..=86 => ("ip-dst|port", format!("{}|{}", ipv4(h), [80, 443, 8080, 4444, 53][(h >> 40) as usize % 5]), true),
        87..=89 => ("sha1", hex(h, 40), true),
        90..=92 => ("comment", format!("seen in campaign wave {} ({})", (h >> 10) % 1000, hex(h, 6)), false),
        93..=96 => ("text", format!("operator handle {}", hex(h, 12)), false),
        _ => ("ip-src", ipv4(h), false),
    };
    Value { attr_type, value, to_ids }
}

/// Attribute number `index` of the data set (`seed` separates data sets).
pub(crate) fn value(seed: u64, index: u64) -> Value {
    let h = mix(seed ^ index.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let pick = h % 1000;
    if pick < OVER_PER_MILLE {
        let (t, v) = OVER_CORRELATING[((h >> 10) % OVER_CORRELATING.len() as u64) as usize];
        return Value { attr_type: t, value: v.to_string(), to_ids: false };
    }
    if pick < OVER_PER_MILLE + SHARED_PER_MILLE {
        return shared(seed, (h >> 10) % SHARED_POOL);
    }
    unique((h >> 12) % 100, h)
}

/// Entry `j` of the shared pool.
pub(crate) fn shared(seed: u64, j: u64) -> Value {
    let h = mix(seed ^ 0x5a5a_0000_0000 ^ j);
    unique(h % 90, h)
}

/// The attributes of one Event: `n` values starting at global index `first`, without a (type, value)
/// repeated inside the Event (MISP refuses duplicates within an Event; a repeat is replaced by a
/// unique value).
pub(crate) fn event_values(seed: u64, first: u64, n: u64) -> Vec<Value> {
    let mut seen = HashSet::with_capacity(n as usize);
    (first..first + n)
        .map(|i| {
            let mut v = value(seed, i);
            let mut salt = 0;
            while !seen.insert((v.attr_type, v.value.clone())) {
                salt += 1;
                let h = mix(seed ^ i ^ (salt << 48));
                v = unique((h >> 12) % 90, h);
            }
            v
        })
        .collect()
}
