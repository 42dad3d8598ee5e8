//! `substring` lists: MISP reports the first entry, in list order, that occurs in the value
//! (`str_contains` over the list). An Aho–Corasick automaton finds that entry in one pass over
//! the value instead of one pass per entry (the disposable-email list has ~5 000 entries).

/// One automaton state.
#[derive(Debug, Clone)]
struct Node {
    /// Goto transitions, sorted by byte.
    next: Vec<(u8, u32)>,
    fail: u32,
    /// The smallest entry index that ends here or at a suffix state (`u32::MAX`: none).
    best: u32,
}

/// The entries of one `substring` list, searchable together.
#[derive(Debug, Clone)]
pub(crate) struct Substrings {
    entries: Vec<String>,
    nodes: Vec<Node>,
}

impl Substrings {
    /// Empty entries are dropped (every value would contain them).
    pub(crate) fn build<'a>(entries: impl IntoIterator<Item = &'a str>) -> Self {
        let entries: Vec<String> = entries.into_iter().filter(|e| !e.is_empty()).map(str::to_string).collect();
        let mut nodes = vec![Node { next: Vec::new(), fail: 0, best: u32::MAX }];
        for (i, e) in entries.iter().enumerate() {
            let mut state = 0usize;
            for &b in e.as_bytes() {
                state = match nodes[state].next.binary_search_by_key(&b, |(c, _)| *c) {
                    Ok(k) => nodes[state].next[k].1 as usize,
                    Err(k) => {
                        let id = u32::try_from(nodes.len()).unwrap_or(u32::MAX);
                        nodes[state].next.insert(k, (b, id));
                        nodes.push(Node { next: Vec::new(), fail: 0, best: u32::MAX });
                        id as usize
                    }
                };
            }
            let idx = u32::try_from(i).unwrap_or(u32::MAX);
            nodes[state].best = nodes[state].best.min(idx);
        }
        // Breadth-first: failure links, and `best` inherited along them.
        let mut queue = std::collections::VecDeque::new();
        for &(_, child) in &nodes[0].next {
            queue.push_back(child as usize);
        }
        while let Some(s) = queue.pop_front() {
            let children = nodes[s].next.clone();
            for (b, child) in children {
                let mut f = nodes[s].fail as usize;
                let fail = loop {
                    if let Ok(k) = nodes[f].next.binary_search_by_key(&b, |(c, _)| *c) {
                        break nodes[f].next[k].1;
                    }
                    if f == 0 {
                        break 0;
                    }
                    f = nodes[f].fail as usize;
                };
                let child = child as usize;
                nodes[child].fail = fail;
                nodes[child].best = nodes[child].best.min(nodes[fail as usize].best);
                queue.push_back(child);
            }
        }
        Substrings { entries, nodes }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(String::as_str)
    }

    /// The first entry (in list order) that occurs in `value`.
    pub(crate) fn first_in(&self, value: &str) -> Option<&str> {
        let mut state = 0usize;
        let mut best = u32::MAX;
        for &b in value.as_bytes() {
            loop {
                if let Ok(k) = self.nodes[state].next.binary_search_by_key(&b, |(c, _)| *c) {
                    state = self.nodes[state].next[k].1 as usize;
                    break;
                }
                if state == 0 {
                    break;
                }
                state = self.nodes[state].fail as usize;
            }
            best = best.min(self.nodes[state].best);
            if best == 0 {
                break;
            }
        }
        self.entries.get(best as usize).map(String::as_str)
    }

    /// Bytes held, for memory accounting.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.iter().map(String::capacity).sum::<usize>()
            + self.nodes.iter().map(|n| n.next.capacity() * 8 + 24 + 8).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_entry_in_list_order_wins_not_the_leftmost() {
        let s = Substrings::build(["amail.com", "guerrillamail.com", "mail"]);
        assert_eq!(s.first_in("x@guerrillamail.com"), Some("amail.com"));
        assert_eq!(s.first_in("mailbox"), Some("mail"));
        assert_eq!(s.first_in("nothing here"), None);
    }

    #[test]
    fn overlapping_entries_are_found_through_failure_links() {
        let s = Substrings::build(["abcd", "bcx", "cde"]);
        assert_eq!(s.first_in("xxabcxx"), Some("bcx"));
        assert_eq!(s.first_in("abcde"), Some("abcd"));
        assert_eq!(s.first_in("zcdez"), Some("cde"));
    }
}
