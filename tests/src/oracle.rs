//! The access-control oracle harness: compares what a read path returned with what the one access
//! rule ([`cairn_domain::acl`]) says a viewer may see, and records every mismatch.

use std::collections::BTreeSet;
use std::fmt;

/// A deterministic PRNG (SplitMix64): reproducible from a printed seed, no dependency.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() { None } else { items.get(self.below(items.len() as u64) as usize) }
    }
}

/// One disagreement between a read path and the oracle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub path: String,
    pub viewer: String,
    /// Returned but not allowed: a leak.
    pub leaked: Vec<i64>,
    /// Allowed but not returned.
    pub missing: Vec<i64>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as {}: leaked {:?}, missing {:?}", self.path, self.viewer, self.leaked, self.missing)
    }
}

/// Counts compared cases and collects mismatches.
#[derive(Debug, Default)]
pub struct Oracle {
    pub cases: usize,
    pub mismatches: Vec<Mismatch>,
}

impl Oracle {
    /// Compares a set-valued read path: every id in `universe` is one case (seen or not seen).
    pub fn compare(&mut self, path: &str, viewer: &str, universe: &BTreeSet<i64>, expected: &BTreeSet<i64>, got: &BTreeSet<i64>) {
        self.cases += universe.len().max(got.len());
        let leaked: Vec<i64> = got.difference(expected).copied().collect();
        let missing: Vec<i64> = expected.difference(got).copied().collect();
        if !leaked.is_empty() || !missing.is_empty() {
            self.mismatches.push(Mismatch { path: path.into(), viewer: viewer.into(), leaked, missing });
        }
    }

    /// Compares a single yes/no read (a view answering 200 or 404).
    pub fn compare_one(&mut self, path: &str, viewer: &str, id: i64, expected: bool, got: bool) {
        self.cases += 1;
        if expected != got {
            let (leaked, missing) = if got { (vec![id], vec![]) } else { (vec![], vec![id]) };
            self.mismatches.push(Mismatch { path: path.into(), viewer: viewer.into(), leaked, missing });
        }
    }

    pub fn leaks(&self) -> usize {
        self.mismatches.iter().filter(|m| !m.leaked.is_empty()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[i64]) -> BTreeSet<i64> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_read_path_that_leaks_is_caught() {
        let mut oracle = Oracle::default();
        let universe = set(&[1, 2, 3]);
        // A broken read path that ignores the access rule and returns everything.
        oracle.compare("events/index", "user of org 2", &universe, &set(&[2]), &universe);
        assert_eq!(oracle.leaks(), 1);
        assert_eq!(oracle.mismatches[0].leaked, vec![1, 3]);
        oracle.compare_one("events/view", "user of org 2", 1, false, true);
        assert_eq!(oracle.leaks(), 2);
    }

    #[test]
    fn a_correct_read_path_passes_and_a_missing_item_is_reported() {
        let mut oracle = Oracle::default();
        oracle.compare("x", "v", &set(&[1, 2]), &set(&[1]), &set(&[1]));
        assert!(oracle.mismatches.is_empty());
        oracle.compare("x", "v", &set(&[1, 2]), &set(&[1, 2]), &set(&[1]));
        assert_eq!(oracle.mismatches[0].missing, vec![2]);
        assert_eq!(oracle.leaks(), 0);
        assert_eq!(oracle.cases, 4);
    }

    #[test]
    fn the_rng_is_reproducible() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
    }
}
