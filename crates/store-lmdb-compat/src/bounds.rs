//! Translating a [`KeyRange`] on a table's keys into bounds on the keys stored in its
//! column family ("physical" keys).
//!
//! On a plain table the two are the same. On a duplicate-sorted table a row is stored under
//! the composite key `key ‖ value` (keys have a fixed length `L`), so a bound on `key` has to
//! become a bound on composites. Because every table key has exactly `L` bytes, the
//! composites whose key lies in a range are one contiguous run, and its ends can be computed
//! exactly (see [`physical_bounds`]).

use std::ops::Bound;

use storage_traits::kv::{KeyRange, TableKind, prefix_successor};

/// A contiguous run of physical keys: `lower <= k` and, when `upper` is set, `k < upper`.
/// This is RocksDB's own shape (`iterate_lower_bound` inclusive, `iterate_upper_bound`
/// exclusive) and a shape `BTreeMap::range` accepts without panicking once non-empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    /// Inclusive lower bound; empty means "from the first key".
    pub lower: Vec<u8>,
    /// Exclusive upper bound; `None` means "to the last key".
    pub upper: Option<Vec<u8>>,
}

impl Span {
    /// Every physical key.
    pub fn all() -> Self {
        Span {
            lower: Vec::new(),
            upper: None,
        }
    }

    /// The physical keys starting with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Self {
        Span {
            lower: prefix.to_vec(),
            upper: prefix_successor(prefix),
        }
    }

    /// Whether `key` lies in the span.
    #[cfg(test)]
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.lower.as_slice() && self.upper.as_ref().is_none_or(|u| key < u.as_slice())
    }

    /// `None` when no key can lie in the span.
    fn non_empty(self) -> Option<Self> {
        match &self.upper {
            Some(u) if *u <= self.lower => None,
            _ => Some(self),
        }
    }
}

/// The smallest key strictly greater than `key` in bytewise order.
pub(crate) fn immediate_successor(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.extend_from_slice(key);
    k.push(0);
    k
}

/// The physical span holding exactly the rows whose table key lies in `range`, or `None`
/// when there are none.
pub(crate) fn physical_bounds(kind: TableKind, range: &KeyRange) -> Option<Span> {
    match kind {
        TableKind::Plain => plain_bounds(range),
        TableKind::DupSort { key_len } => dup_bounds(key_len, range),
    }
}

fn plain_bounds(range: &KeyRange) -> Option<Span> {
    let lower = match &range.start {
        Bound::Included(s) => s.clone(),
        Bound::Excluded(s) => immediate_successor(s),
        Bound::Unbounded => Vec::new(),
    };
    let upper = match &range.end {
        Bound::Included(e) => Some(immediate_successor(e)),
        Bound::Excluded(e) => Some(e.clone()),
        Bound::Unbounded => None,
    };
    Span { lower, upper }.non_empty()
}

/// Bounds for a duplicate-sorted table whose keys are all `l` bytes long. A composite is
/// `c = k ‖ v` with `|k| = l`; for a bound `b`:
///
/// - `k >= b`: if `|b| <= l`, exactly `c >= b`; if `|b| > l`, `k` can only exceed `b` by
///   exceeding `b[..l]` (equal would make `k` a proper prefix of `b`, so smaller), i.e.
///   `c >= succ(b[..l])`.
/// - `k > b`: if `|b| < l`, `k != b` always, so the same as `k >= b`; if `|b| >= l`,
///   `k > b[..l]`, i.e. `c >= succ(b[..l])`.
/// - `k <= b`: if `|b| >= l`, `k <= b[..l]`, i.e. `c < succ(b[..l])`; if `|b| < l`, `k < b`,
///   i.e. `c < b`.
/// - `k < b`: if `|b| <= l`, exactly `c < b`; if `|b| > l`, `k <= b[..l]`, i.e.
///   `c < succ(b[..l])`.
///
/// `succ(p)` is the prefix successor; when it does not exist (`p` all `0xFF`) a lower bound
/// makes the span empty and an upper bound makes it unbounded.
fn dup_bounds(l: usize, range: &KeyRange) -> Option<Span> {
    let lower = match &range.start {
        Bound::Included(b) if b.len() <= l => b.clone(),
        Bound::Excluded(b) if b.len() < l => b.clone(),
        Bound::Included(b) | Bound::Excluded(b) => prefix_successor(&b[..l])?,
        Bound::Unbounded => Vec::new(),
    };
    let upper = match &range.end {
        Bound::Included(b) if b.len() < l => Some(b.clone()),
        Bound::Excluded(b) if b.len() <= l => Some(b.clone()),
        Bound::Included(b) | Bound::Excluded(b) => prefix_successor(&b[..l]),
        Bound::Unbounded => None,
    };
    Span { lower, upper }.non_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte string over a small alphabet up to `max_len` bytes.
    fn strings(max_len: usize) -> Vec<Vec<u8>> {
        let alphabet = [0x00u8, 0x01, 0x7F, 0xFF];
        let mut out = vec![Vec::new()];
        let mut frontier = vec![Vec::new()];
        for _ in 0..max_len {
            let mut next = Vec::new();
            for s in &frontier {
                for b in alphabet {
                    let mut t = s.clone();
                    t.push(b);
                    next.push(t);
                }
            }
            out.extend(next.iter().cloned());
            frontier = next;
        }
        out
    }

    fn bounds(values: &[Vec<u8>]) -> Vec<Bound<Vec<u8>>> {
        let mut out = vec![Bound::Unbounded];
        for v in values {
            out.push(Bound::Included(v.clone()));
            out.push(Bound::Excluded(v.clone()));
        }
        out
    }

    /// The composite translation agrees with the logical definition on every pair of
    /// bounds and every composite, for keys of 2 bytes and bounds of 0 to 3 bytes.
    #[test]
    fn dup_bounds_match_the_logical_range_exhaustively() {
        let l = 2;
        let keys: Vec<Vec<u8>> = strings(l).into_iter().filter(|k| k.len() == l).collect();
        let values: Vec<Vec<u8>> = strings(1);
        let bound_values = strings(3);
        let bs = bounds(&bound_values);
        for start in &bs {
            for end in &bs {
                let range = KeyRange {
                    start: start.clone(),
                    end: end.clone(),
                };
                let span = dup_bounds(l, &range);
                for k in &keys {
                    for v in &values {
                        let composite = [k.as_slice(), v.as_slice()].concat();
                        let want = range.contains(k);
                        let got = span.as_ref().is_some_and(|s| s.contains(&composite));
                        assert_eq!(
                            want, got,
                            "range {range:?} key {k:?} value {v:?} span {span:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn plain_bounds_match_the_logical_range_exhaustively() {
        let keys = strings(3);
        let bs = bounds(&strings(2));
        for start in &bs {
            for end in &bs {
                let range = KeyRange {
                    start: start.clone(),
                    end: end.clone(),
                };
                let span = plain_bounds(&range);
                for k in &keys {
                    let got = span.as_ref().is_some_and(|s| s.contains(k));
                    assert_eq!(range.contains(k), got, "range {range:?} key {k:?}");
                }
            }
        }
    }
}
