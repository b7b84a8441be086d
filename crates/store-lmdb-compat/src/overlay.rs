//! The in-memory overlay of a write transaction: what it has written to one table, over the
//! snapshot it started from (its "base"). Everything here is in physical keys (composites on
//! duplicate-sorted tables).
//!
//! Three layers, newest-wins in this order when a key is looked up:
//!
//! 1. `points`: point puts and deletes (`None` is a delete), in a `BTreeMap`.
//! 2. `run`: rows appended by `insert_sorted` in strictly ascending order, kept as the puts
//!    of a `WriteBatch` (no allocation per row, and the commit writes that batch as it is). A row only joins the run when its key is greater
//!    than every key of `points` and of the run, so nothing in `points` is older than a run
//!    row it could shadow; a later point write to the same key lands in `points` and wins.
//! 3. `deleted`: ranges deleted from the base (`clear`, and `delete` on a duplicate-sorted
//!    table). They hide base rows only: a range delete removes the overlay's own rows in the
//!    range at the time it happens, and rows written afterwards are visible.
//!
//! At commit the overlay becomes one `WriteBatch`: range deletes first, then the run, then
//! the point writes, so later writes override earlier ones exactly as above. When one table
//! has a run and no range deletes (a bulk load), the run's own batch is that batch, with
//! the rest appended to it.

use std::collections::BTreeMap;
use std::ops::Bound;

use rocksdb::{ColumnFamily, WriteBatch};

use crate::bounds::Span;

/// A set of disjoint, non-adjacent physical key ranges `[start, end)`; `end == None` is
/// unbounded.
#[derive(Default, Debug)]
pub(crate) struct RangeSet {
    ranges: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

fn max_end(a: Option<Vec<u8>>, b: Option<Vec<u8>>) -> Option<Vec<u8>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    }
}

impl RangeSet {
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Adds `span`, merging it with the ranges it overlaps or touches.
    pub fn insert(&mut self, span: Span) {
        let Span {
            lower: mut start,
            upper: mut end,
        } = span;
        if end.as_ref().is_some_and(|e| *e <= start) {
            return;
        }
        if let Some((ps, pe)) = self
            .ranges
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(start.as_slice())))
            .next_back()
            && pe.as_ref().is_none_or(|pe| *pe >= start)
        {
            start = ps.clone();
            end = max_end(pe.clone(), end);
        }
        let upper = match &end {
            Some(e) => Bound::Included(e.as_slice()),
            None => Bound::Unbounded,
        };
        let absorbed: Vec<Vec<u8>> = self
            .ranges
            .range::<[u8], _>((Bound::Included(start.as_slice()), upper))
            .map(|(k, _)| k.clone())
            .collect();
        for k in absorbed {
            if let Some(e) = self.ranges.remove(&k) {
                end = max_end(end, e);
            }
        }
        self.ranges.insert(start, end);
    }

    /// The range holding `key`, if any.
    pub fn find(&self, key: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
        let (s, e) = self
            .ranges
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()?;
        match e {
            Some(e) if key >= e.as_slice() => None,
            _ => Some((s.as_slice(), e.as_deref())),
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        !self.ranges.is_empty() && self.find(key).is_some()
    }

    /// The ranges, in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.ranges
            .iter()
            .map(|(s, e)| (s.as_slice(), e.as_deref()))
    }
}

/// Where one row of a [`SortedRun`] lives in its batch's bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RunRow {
    key_start: usize,
    key_len: usize,
    value_start: usize,
    value_len: usize,
}

/// The bytes of the varint32/64 RocksDB writes before a length.
fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// Rows in strictly ascending key order, stored as the puts of a `WriteBatch` that the
/// commit writes as it is: one copy of each row (into the batch), not two (into an arena,
/// then into the batch at commit), which on a bulk load was a fifth of the time over raw
/// RocksDB. The rows are read back in place from the batch's bytes: RocksDB encodes a put
/// as `[tag][cf id varint][key len varint][key][value len varint][value]`, so after each
/// put the value ends the batch and the key ends just before the value's length. That
/// layout is checked on every run's first row and pinned by a unit test.
#[derive(Default)]
pub(crate) struct SortedRun {
    batch: WriteBatch,
    rows: Vec<RunRow>,
    /// Some rows were removed from `rows` while their puts stay in `batch`: the batch can
    /// no longer be written as it is.
    removed: bool,
}

impl std::fmt::Debug for SortedRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SortedRun")
            .field("rows", &self.rows.len())
            .field("batch_bytes", &self.batch.size_in_bytes())
            .field("removed", &self.removed)
            .finish()
    }
}

impl SortedRun {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// The key and value of row `i`.
    pub fn row(&self, i: usize) -> (&[u8], &[u8]) {
        let r = self.rows[i];
        let data = self.batch.data();
        (
            &data[r.key_start..r.key_start + r.key_len],
            &data[r.value_start..r.value_start + r.value_len],
        )
    }

    pub fn key(&self, i: usize) -> &[u8] {
        let r = self.rows[i];
        &self.batch.data()[r.key_start..r.key_start + r.key_len]
    }

    pub fn last_key(&self) -> Option<&[u8]> {
        self.rows.len().checked_sub(1).map(|i| self.key(i))
    }

    /// Appends a row, a put into `cf`; the caller guarantees `key > self.last_key()`.
    /// Fails (writing nothing the commit would use) if RocksDB laid the put out otherwise
    /// than this type reads it back.
    pub fn push(&mut self, cf: &ColumnFamily, key: &[u8], value: &[u8]) -> Result<(), String> {
        self.batch.put_cf(cf, key, value);
        let end = self.batch.size_in_bytes();
        let value_start = end - value.len();
        let key_start = value_start - varint_len(value.len()) - key.len();
        let row = RunRow {
            key_start,
            key_len: key.len(),
            value_start,
            value_len: value.len(),
        };
        self.rows.push(row);
        if self.rows.len() == 1 && self.row(0) != (key, value) {
            self.rows.clear();
            self.batch.clear();
            return Err(format!(
                "RocksDB's WriteBatch does not encode a put as expected ({} bytes)",
                end
            ));
        }
        Ok(())
    }

    /// The batch to write at commit, when it holds exactly the run's rows.
    pub fn into_batch(self) -> Option<WriteBatch> {
        (!self.removed).then_some(self.batch)
    }

    /// Whether the batch holds exactly the run's rows (see [`SortedRun::into_batch`]).
    pub fn batch_is_exact(&self) -> bool {
        !self.removed
    }

    /// The index range of the rows inside `span`.
    pub fn index_range(&self, span: &Span) -> std::ops::Range<usize> {
        let data = self.batch.data();
        let key = |r: &RunRow| &data[r.key_start..r.key_start + r.key_len];
        let lo = self
            .rows
            .partition_point(|r| key(r) < span.lower.as_slice());
        let hi = match &span.upper {
            Some(u) => self.rows.partition_point(|r| key(r) < u.as_slice()),
            None => self.rows.len(),
        };
        lo..hi.max(lo)
    }

    /// The value stored under `key`, if the run holds it.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let data = self.batch.data();
        let i = self
            .rows
            .partition_point(|r| &data[r.key_start..r.key_start + r.key_len] < key);
        (i < self.rows.len() && self.key(i) == key).then(|| self.row(i).1)
    }

    /// Forgets the rows inside `span` (their puts stay in the batch, which the commit then
    /// no longer writes as it is).
    pub fn remove_span(&mut self, span: &Span) {
        let r = self.index_range(span);
        if !r.is_empty() {
            self.rows.drain(r);
            self.removed = true;
        }
        if self.rows.is_empty() {
            self.batch.clear();
            self.removed = false;
        }
    }
}

/// What a write transaction did to one table.
#[derive(Default, Debug)]
pub(crate) struct Overlay {
    /// Point writes; `None` deletes the key. Newest layer.
    pub points: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Sorted appends, shadowed by `points`.
    pub run: SortedRun,
    /// Ranges deleted from the base.
    pub deleted: RangeSet,
}

/// How the overlay answers a point lookup.
pub(crate) enum Lookup<'a> {
    /// The overlay holds this value.
    Value(&'a [u8]),
    /// The overlay deleted the key (or a range holding it).
    Deleted,
    /// The overlay does not know: ask the base.
    Base,
}

impl Overlay {
    pub fn is_empty(&self) -> bool {
        self.points.is_empty() && self.run.is_empty() && self.deleted.is_empty()
    }

    /// The greatest key the overlay holds (points or run).
    fn last_key(&self) -> Option<&[u8]> {
        let p = self.points.last_key_value().map(|(k, _)| k.as_slice());
        match (p, self.run.last_key()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether a row with `key` may join the run.
    pub fn can_append(&self, key: &[u8]) -> bool {
        self.last_key().is_none_or(|last| key > last)
    }

    pub fn lookup(&self, key: &[u8]) -> Lookup<'_> {
        if let Some(slot) = self.points.get(key) {
            return match slot {
                Some(v) => Lookup::Value(v),
                None => Lookup::Deleted,
            };
        }
        if let Some(v) = self.run.get(key) {
            return Lookup::Value(v);
        }
        if self.deleted.contains(key) {
            return Lookup::Deleted;
        }
        Lookup::Base
    }

    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        match self.points.get_mut(key) {
            Some(slot) => *slot = Some(value.to_vec()),
            None => {
                self.points.insert(key.to_vec(), Some(value.to_vec()));
            }
        }
    }

    pub fn put_owned(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.points.insert(key, Some(value));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.points.insert(key, None);
    }

    /// Deletes every key in `span`: the overlay's own rows now, the base's at commit.
    pub fn delete_span(&mut self, span: Span) {
        let doomed: Vec<Vec<u8>> = self
            .points
            .range::<[u8], _>((
                Bound::Included(span.lower.as_slice()),
                match &span.upper {
                    Some(u) => Bound::Excluded(u.as_slice()),
                    None => Bound::Unbounded,
                },
            ))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.points.remove(&k);
        }
        self.run.remove_span(&span);
        self.deleted.insert(span);
    }

    /// Empties the table.
    pub fn clear(&mut self) {
        self.points.clear();
        self.run = SortedRun::default();
        self.deleted = RangeSet::default();
        self.deleted.insert(Span::all());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(lower: &[u8], upper: Option<&[u8]>) -> Span {
        Span {
            lower: lower.to_vec(),
            upper: upper.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn range_set_merges_overlapping_and_touching_ranges() {
        let mut s = RangeSet::default();
        s.insert(span(b"c", Some(b"e")));
        s.insert(span(b"g", Some(b"i")));
        assert!(s.contains(b"c") && s.contains(b"d\xff") && !s.contains(b"e"));
        assert!(!s.contains(b"b") && !s.contains(b"f") && s.contains(b"h"));
        s.insert(span(b"e", Some(b"g")));
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            vec![(&b"c"[..], Some(&b"i"[..]))]
        );
        s.insert(span(b"a", Some(b"d")));
        s.insert(span(b"x", None));
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            vec![(&b"a"[..], Some(&b"i"[..])), (&b"x"[..], None)]
        );
        assert!(s.contains(&[0xFF; 9]));
        s.insert(span(b"h", Some(b"z")));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![(&b"a"[..], None)]);
        s.insert(span(b"q", Some(b"b")));
        assert_eq!(s.iter().count(), 1);
    }

    /// A real column family to put rows into.
    fn with_cf(f: impl FnOnce(&ColumnFamily)) {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let db = rocksdb::DB::open_cf(&opts, dir.path(), ["t"]).unwrap();
        f(db.cf_handle("t").unwrap());
    }

    /// The run reads rows back from the batch's bytes: every length around the varint
    /// boundaries, keys and values alike, and an empty value.
    #[test]
    fn run_rows_read_back_from_the_batch() {
        with_cf(|cf| {
            let lens = [0usize, 1, 127, 128, 129, 16_383, 16_384, 16_385, 2_097_152];
            let mut run = SortedRun::default();
            let mut expect = Vec::new();
            for (i, &len) in lens.iter().enumerate() {
                let key = [vec![i as u8], vec![0xAB; lens[lens.len() - 1 - i] % 300]].concat();
                let value = vec![i as u8 ^ 0x5A; len];
                run.push(cf, &key, &value).unwrap();
                expect.push((key, value));
            }
            assert_eq!(run.len(), lens.len());
            for (i, (k, v)) in expect.iter().enumerate() {
                assert_eq!(run.row(i), (k.as_slice(), v.as_slice()), "row {i}");
                assert_eq!(run.get(k), Some(v.as_slice()));
            }
            assert!(run.batch_is_exact());
            let batch = run.into_batch().unwrap();
            assert_eq!(batch.len(), lens.len());
        });
    }

    #[test]
    fn removing_rows_stops_the_batch_from_being_written_as_is() {
        with_cf(|cf| {
            let mut run = SortedRun::default();
            for k in [b"a", b"b", b"c"] {
                run.push(cf, k, b"v").unwrap();
            }
            run.remove_span(&span(b"b", Some(b"c")));
            assert_eq!(run.len(), 2);
            assert!(!run.batch_is_exact());
            assert_eq!(run.row(1), (&b"c"[..], &b"v"[..]));
            run.remove_span(&span(b"a", None));
            assert!(run.is_empty() && run.batch_is_exact());
        });
    }

    #[test]
    fn points_shadow_the_run_and_range_deletes_remove_overlay_rows() {
        with_cf(points_shadow_the_run);
    }

    fn points_shadow_the_run(cf: &ColumnFamily) {
        let mut o = Overlay::default();
        for k in [b"a", b"b", b"c", b"d"] {
            assert!(o.can_append(k));
            o.run.push(cf, k, b"run").unwrap();
        }
        assert!(!o.can_append(b"c"));
        o.put(b"b", b"point");
        o.delete(b"c".to_vec());
        assert!(matches!(o.lookup(b"a"), Lookup::Value(b"run")));
        assert!(matches!(o.lookup(b"b"), Lookup::Value(b"point")));
        assert!(matches!(o.lookup(b"c"), Lookup::Deleted));
        assert!(matches!(o.lookup(b"e"), Lookup::Base));
        o.delete_span(span(b"b", Some(b"d")));
        assert!(matches!(o.lookup(b"b"), Lookup::Deleted));
        assert!(matches!(o.lookup(b"d"), Lookup::Value(b"run")));
        assert_eq!(o.run.len(), 2);
        o.put(b"bb", b"after");
        assert!(matches!(o.lookup(b"bb"), Lookup::Value(b"after")));
        o.clear();
        assert!(matches!(o.lookup(b"a"), Lookup::Deleted));
        assert!(o.run.is_empty() && o.points.is_empty());
    }
}
