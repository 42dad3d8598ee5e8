//! A compact set of strings: the entries in one buffer, an open-addressing table of indices.
//!
//! Two and a half million warninglist entries as `HashSet<String>` cost well over 200 MB (a heap
//! allocation, a `String` and a table slot each); here an entry costs its bytes, a 4-byte offset
//! and about 8 bytes of table. The hash is computed once per probed value and reused for every
//! list ([`hash`]), so checking a value against dozens of lists is a handful of table probes.

/// FxHash-style hash of a byte string (fast, not collision-resistant: the entries are trusted
/// data, and a colliding probe only costs an extra comparison).
pub(crate) fn hash(s: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h: u64 = s.len() as u64;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    for &b in chunks.remainder() {
        h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
    }
    // Final avalanche so the low bits (the table index) depend on every byte.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// A set of distinct strings, in insertion order.
#[derive(Debug, Clone, Default)]
pub(crate) struct StrSet {
    bytes: Vec<u8>,
    /// `ends[i]` is where entry `i` ends in `bytes` (it starts where the previous one ends).
    ends: Vec<u32>,
    /// Entry index + 1; 0 is an empty slot. Length is a power of two, at most half full.
    table: Vec<u32>,
}

impl StrSet {
    /// The set of `entries` (duplicates kept once).
    pub(crate) fn build<'a>(entries: impl IntoIterator<Item = &'a str>, size_hint: usize) -> Self {
        let mut set = Self::with_capacity(size_hint);
        for e in entries {
            set.insert(e);
        }
        set.shrink();
        set
    }

    /// An empty set sized for `n` entries.
    pub(crate) fn with_capacity(n: usize) -> Self {
        StrSet { bytes: Vec::new(), ends: Vec::with_capacity(n), table: vec![0; (n.max(4) * 2).next_power_of_two()] }
    }

    /// Releases spare capacity once every entry is in.
    pub(crate) fn shrink(&mut self) {
        self.bytes.shrink_to_fit();
        self.ends.shrink_to_fit();
    }

    fn entry(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.bytes[start..self.ends[i] as usize]
    }

    /// Entry `i` as text (entries are inserted as `&str`, so always UTF-8).
    pub(crate) fn get(&self, i: usize) -> &str {
        std::str::from_utf8(self.entry(i)).unwrap_or_default()
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Adds `e` unless it is there already.
    pub(crate) fn insert(&mut self, e: &str) {
        if (self.ends.len() + 1) * 2 > self.table.len() {
            self.grow();
        }
        let h = hash(e.as_bytes());
        let mask = self.table.len() - 1;
        let mut slot = (h as usize) & mask;
        loop {
            match self.table[slot] {
                0 => break,
                i if self.entry(i as usize - 1) == e.as_bytes() => return,
                _ => slot = (slot + 1) & mask,
            }
        }
        self.bytes.extend_from_slice(e.as_bytes());
        self.ends.push(u32::try_from(self.bytes.len()).unwrap_or(u32::MAX));
        self.table[slot] = u32::try_from(self.ends.len()).unwrap_or(u32::MAX);
    }

    fn grow(&mut self) {
        let size = (self.table.len() * 2).max(8);
        let mut table = vec![0u32; size];
        let mask = size - 1;
        for i in 0..self.ends.len() {
            let mut slot = (hash(self.entry(i)) as usize) & mask;
            while table[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            table[slot] = u32::try_from(i + 1).unwrap_or(u32::MAX);
        }
        self.table = table;
    }

    /// Whether `s`, whose [`hash`] is `h`, is in the set.
    pub(crate) fn contains_hashed(&self, h: u64, s: &[u8]) -> bool {
        let mask = self.table.len() - 1;
        let mut slot = (h as usize) & mask;
        loop {
            match self.table[slot] {
                0 => return false,
                i if self.entry(i as usize - 1) == s => return true,
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, s: &str) -> bool {
        self.contains_hashed(hash(s.as_bytes()), s.as_bytes())
    }

    /// Bytes held (entries, offsets and table), for memory accounting.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.ends.capacity() * 4 + self.table.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_finds_its_entries_and_nothing_else() {
        let words: Vec<String> = (0..10_000).map(|i| format!("host{i}.example")).collect();
        let set = StrSet::build(words.iter().map(String::as_str).chain(["host1.example", ""]), 4);
        assert_eq!(set.len(), 10_001);
        assert!(words.iter().all(|w| set.contains(w)));
        assert!(set.contains(""));
        assert!(!set.contains("host10000.example") && !set.contains("HOST1.example"));
        assert_eq!(set.get(0), "host0.example");
        assert_eq!(set.iter().nth(2), Some("host2.example"));
    }
}
