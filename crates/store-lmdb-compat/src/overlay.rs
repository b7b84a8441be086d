//! The in-memory overlay of a write transaction: what it has written to one table, over the
//! snapshot it started from (its "base"). Everything here is in physical keys (composites on
//! duplicate-sorted tables).
//!
//! Three layers, newest-wins in this order when a key is looked up:
//!
//! 1. `points`: point puts and deletes (`None` is a delete), in a `BTreeMap`.
//! 2. `run`: rows appended in strictly ascending order (by `insert_sorted`, and by any put
//!    whose key is past everything the table holds), kept as puts of a `WriteBatch` that
//!    every table's run shares (no allocation per row, and the commit writes that batch as
//!    it is). A row only joins the run when its key is greater than every key of `points`
//!    and of the run, so nothing in `points` is older than a run row it could shadow; a
//!    later point write to the same key lands in `points` and wins.
//! 3. `deleted`: ranges deleted from the base (`clear`, and `delete` on a duplicate-sorted
//!    table). They hide base rows only: a range delete removes the overlay's own rows in the
//!    range at the time it happens, and rows written afterwards are visible.
//!
//! At commit the overlays become one `WriteBatch`: per table, range deletes first, then the
//! run, then the point writes, so later writes override earlier ones exactly as above. When
//! the shared run batch holds exactly the run rows and no table with a run has range
//! deletes (a bulk load), that batch is the commit's batch, with the rest appended to it:
//! tables are column families, so only the order within a table matters.

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

/// Rows of one table in strictly ascending key order, appended as puts to the transaction's
/// shared run batch ([`Overlays::runs`]): every table's appends go into that one
/// `WriteBatch`, which the commit writes as it is. Each row is copied once (into the batch),
/// not three times (into the overlay, into a batch at commit, into the memtable beside both):
/// on a bulk load the copies were a fifth of the time over raw RocksDB, and the commit's
/// second copy was memory the batch budget did not see. The rows are read back in place from
/// the batch's bytes: RocksDB encodes a put as `[tag][cf id varint][key len varint][key]
/// [value len varint][value]`, so after each put the value ends the batch and the key ends
/// just before the value's length. That layout is checked on every run's first row and
/// pinned by a unit test.
#[derive(Default, Debug)]
pub(crate) struct SortedRun {
    rows: Vec<RunRow>,
}

impl SortedRun {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// The key and value of row `i`, from the run batch's bytes `data`.
    pub fn row<'d>(&self, data: &'d [u8], i: usize) -> (&'d [u8], &'d [u8]) {
        let r = self.rows[i];
        (
            &data[r.key_start..r.key_start + r.key_len],
            &data[r.value_start..r.value_start + r.value_len],
        )
    }

    pub fn key<'d>(&self, data: &'d [u8], i: usize) -> &'d [u8] {
        let r = self.rows[i];
        &data[r.key_start..r.key_start + r.key_len]
    }

    pub fn last_key<'d>(&self, data: &'d [u8]) -> Option<&'d [u8]> {
        self.rows.len().checked_sub(1).map(|i| self.key(data, i))
    }

    /// Appends a row as a put into `cf` at the end of `batch`; the caller guarantees
    /// `key > self.last_key()`. Fails (leaving a put in `batch` that no run owns, which the
    /// caller must account for) if RocksDB laid the put out otherwise than this type reads it
    /// back.
    fn push(
        &mut self,
        batch: &mut WriteBatch,
        cf: &ColumnFamily,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), String> {
        batch.put_cf(cf, key, value);
        let end = batch.size_in_bytes();
        let value_start = end - value.len();
        let key_start = value_start - varint_len(value.len()) - key.len();
        let row = RunRow {
            key_start,
            key_len: key.len(),
            value_start,
            value_len: value.len(),
        };
        self.rows.push(row);
        if self.rows.len() == 1 && self.row(batch.data(), 0) != (key, value) {
            self.rows.clear();
            return Err(format!(
                "RocksDB's WriteBatch does not encode a put as expected ({} bytes)",
                end
            ));
        }
        Ok(())
    }

    /// The index range of the rows inside `span`.
    pub fn index_range(&self, data: &[u8], span: &Span) -> std::ops::Range<usize> {
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
    pub fn get<'d>(&self, data: &'d [u8], key: &[u8]) -> Option<&'d [u8]> {
        let i = self
            .rows
            .partition_point(|r| &data[r.key_start..r.key_start + r.key_len] < key);
        (i < self.rows.len() && self.key(data, i) == key).then(|| self.row(data, i).1)
    }

    /// Forgets the rows inside `span` (their puts stay in the batch). Whether any were.
    fn remove_span(&mut self, data: &[u8], span: &Span) -> bool {
        let r = self.index_range(data, span);
        if r.is_empty() {
            return false;
        }
        self.rows.drain(r);
        true
    }
}

/// What a write transaction did to one table.
#[derive(Default, Debug)]
pub(crate) struct Overlay {
    /// Point writes; `None` deletes the key. Newest layer.
    pub points: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Sorted appends (in the shared run batch), shadowed by `points`.
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
    fn last_key<'a>(&'a self, data: &'a [u8]) -> Option<&'a [u8]> {
        let p = self.points.last_key_value().map(|(k, _)| k.as_slice());
        match (p, self.run.last_key(data)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether a row with `key` may join the run.
    fn can_append(&self, data: &[u8], key: &[u8]) -> bool {
        self.last_key(data).is_none_or(|last| key > last)
    }

    pub fn lookup<'a>(&'a self, data: &'a [u8], key: &[u8]) -> Lookup<'a> {
        if let Some(slot) = self.points.get(key) {
            return match slot {
                Some(v) => Lookup::Value(v),
                None => Lookup::Deleted,
            };
        }
        if let Some(v) = self.run.get(data, key) {
            return Lookup::Value(v);
        }
        if self.deleted.contains(key) {
            return Lookup::Deleted;
        }
        Lookup::Base
    }

    fn put(&mut self, key: &[u8], value: &[u8]) {
        match self.points.get_mut(key) {
            Some(slot) => *slot = Some(value.to_vec()),
            None => {
                self.points.insert(key.to_vec(), Some(value.to_vec()));
            }
        }
    }
}

/// A write transaction's overlays: one per table, and the run batch their sorted appends
/// share.
pub(crate) struct Overlays {
    tables: Vec<Overlay>,
    /// The puts of every table's run, in the order they were appended.
    runs: WriteBatch,
    /// Every put in `runs` belongs to a run row (none was forgotten since), so the batch may
    /// be written as it is.
    runs_exact: bool,
}

impl std::fmt::Debug for Overlays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlays")
            .field("tables", &self.tables)
            .field("run_batch_bytes", &self.runs.size_in_bytes())
            .field("runs_exact", &self.runs_exact)
            .finish()
    }
}

impl Overlays {
    /// Empty overlays for `tables` tables.
    pub fn new(tables: usize) -> Self {
        Overlays {
            tables: (0..tables).map(|_| Overlay::default()).collect(),
            runs: WriteBatch::default(),
            runs_exact: true,
        }
    }

    /// The overlay of table `i`.
    pub fn table(&self, i: usize) -> Option<&Overlay> {
        self.tables.get(i)
    }

    /// Every table's overlay, by table index.
    pub fn tables(&self) -> &[Overlay] {
        &self.tables
    }

    /// The bytes of the run batch, where run rows are read from.
    pub fn run_data(&self) -> &[u8] {
        self.runs.data()
    }

    /// Table `i`'s value at `key`, as far as the overlay knows.
    #[cfg(test)]
    pub fn lookup(&self, i: usize, key: &[u8]) -> Lookup<'_> {
        self.tables[i].lookup(self.runs.data(), key)
    }

    /// Whether a row with `key` would join table `i`'s run.
    pub fn can_append(&self, i: usize, key: &[u8]) -> bool {
        self.tables[i].can_append(self.runs.data(), key)
    }

    /// Appends a row to table `i`'s run; the caller checked [`Overlays::can_append`].
    pub fn append(
        &mut self,
        i: usize,
        cf: &ColumnFamily,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), String> {
        let pushed = self.tables[i].run.push(&mut self.runs, cf, key, value);
        if pushed.is_err() {
            // The put is in the batch but no run owns it: the batch must not be written.
            self.runs_exact = false;
        }
        pushed
    }

    /// Stores `value` under `key` in table `i`: appended to its run when the key is past
    /// everything the table holds (bulk loads and ascending writes), a point write otherwise.
    pub fn put(
        &mut self,
        i: usize,
        cf: &ColumnFamily,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), String> {
        if self.can_append(i, key) {
            self.append(i, cf, key, value)
        } else {
            self.tables[i].put(key, value);
            Ok(())
        }
    }

    /// Deletes `key` of table `i`.
    pub fn delete(&mut self, i: usize, key: Vec<u8>) {
        self.tables[i].points.insert(key, None);
    }

    /// Deletes every key of table `i` in `span`: the overlay's own rows now, the base's at
    /// commit.
    pub fn delete_span(&mut self, i: usize, span: Span) {
        let overlay = &mut self.tables[i];
        let doomed: Vec<Vec<u8>> = overlay
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
            overlay.points.remove(&k);
        }
        if overlay.run.remove_span(self.runs.data(), &span) {
            self.runs_exact = false;
        }
        overlay.deleted.insert(span);
    }

    /// Empties table `i`.
    pub fn clear(&mut self, i: usize) {
        let overlay = &mut self.tables[i];
        overlay.points.clear();
        if !overlay.run.is_empty() {
            self.runs_exact = false;
        }
        overlay.run = SortedRun::default();
        overlay.deleted = RangeSet::default();
        overlay.deleted.insert(Span::all());
    }

    /// The run batch, to be written as it is with every other write appended after it, when
    /// that is sound: it holds exactly the run rows, and no table with run rows has range
    /// deletes (those must precede the table's run). `None` otherwise, leaving the batch.
    pub fn take_exact_runs(&mut self) -> Option<WriteBatch> {
        let sound = self.runs_exact
            && self
                .tables
                .iter()
                .all(|o| o.run.is_empty() || o.deleted.is_empty());
        sound.then(|| std::mem::take(&mut self.runs))
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
            let mut o = Overlays::new(1);
            let mut expect = Vec::new();
            for (i, &len) in lens.iter().enumerate() {
                let key = [vec![i as u8], vec![0xAB; lens[lens.len() - 1 - i] % 300]].concat();
                let value = vec![i as u8 ^ 0x5A; len];
                assert!(o.can_append(0, &key));
                o.put(0, cf, &key, &value).unwrap();
                expect.push((key, value));
            }
            let run = &o.tables()[0].run;
            assert_eq!(run.len(), lens.len());
            assert!(o.tables()[0].points.is_empty());
            for (i, (k, v)) in expect.iter().enumerate() {
                assert_eq!(
                    run.row(o.run_data(), i),
                    (k.as_slice(), v.as_slice()),
                    "row {i}"
                );
                assert_eq!(run.get(o.run_data(), k), Some(v.as_slice()));
            }
            let batch = o.take_exact_runs().unwrap();
            assert_eq!(batch.len(), lens.len());
        });
    }

    /// Two tables' runs share one batch, each reading back its own rows.
    #[test]
    fn runs_of_two_tables_share_the_batch() {
        with_cf(|cf| {
            let mut o = Overlays::new(2);
            for k in [b"a", b"b", b"c"] {
                o.put(0, cf, k, b"zero").unwrap();
                o.put(1, cf, k, b"one").unwrap();
            }
            for (i, v) in [(0, &b"zero"[..]), (1, &b"one"[..])] {
                assert_eq!(o.tables()[i].run.len(), 3);
                assert!(matches!(o.lookup(i, b"b"), Lookup::Value(x) if x == v));
            }
            assert_eq!(o.take_exact_runs().unwrap().len(), 6);
        });
    }

    #[test]
    fn removing_rows_stops_the_batch_from_being_written_as_is() {
        with_cf(|cf| {
            let mut o = Overlays::new(1);
            for k in [b"a", b"b", b"c"] {
                o.put(0, cf, k, b"v").unwrap();
            }
            o.delete_span(0, span(b"b", Some(b"c")));
            let run = &o.tables()[0].run;
            assert_eq!(run.len(), 2);
            assert_eq!(run.row(o.run_data(), 1), (&b"c"[..], &b"v"[..]));
            assert!(o.take_exact_runs().is_none());
        });
    }

    /// A table with a run and a range delete cannot have its run written first.
    #[test]
    fn a_range_delete_beside_a_run_stops_the_batch_from_being_written_as_is() {
        with_cf(|cf| {
            let mut o = Overlays::new(1);
            o.delete_span(0, span(b"x", None));
            o.put(0, cf, b"a", b"v").unwrap();
            assert!(o.take_exact_runs().is_none());
        });
    }

    #[test]
    fn points_shadow_the_run_and_range_deletes_remove_overlay_rows() {
        with_cf(points_shadow_the_run);
    }

    fn points_shadow_the_run(cf: &ColumnFamily) {
        let mut o = Overlays::new(1);
        for k in [b"a", b"b", b"c", b"d"] {
            assert!(o.can_append(0, k));
            o.put(0, cf, k, b"run").unwrap();
        }
        assert!(!o.can_append(0, b"c"));
        o.put(0, cf, b"b", b"point").unwrap();
        o.delete(0, b"c".to_vec());
        assert!(matches!(o.lookup(0, b"a"), Lookup::Value(b"run")));
        assert!(matches!(o.lookup(0, b"b"), Lookup::Value(b"point")));
        assert!(matches!(o.lookup(0, b"c"), Lookup::Deleted));
        assert!(matches!(o.lookup(0, b"e"), Lookup::Base));
        o.delete_span(0, span(b"b", Some(b"d")));
        assert!(matches!(o.lookup(0, b"b"), Lookup::Deleted));
        assert!(matches!(o.lookup(0, b"d"), Lookup::Value(b"run")));
        assert_eq!(o.tables()[0].run.len(), 2);
        o.put(0, cf, b"bb", b"after").unwrap();
        assert!(matches!(o.lookup(0, b"bb"), Lookup::Value(b"after")));
        o.clear(0);
        assert!(matches!(o.lookup(0, b"a"), Lookup::Deleted));
        assert!(o.tables()[0].run.is_empty() && o.tables()[0].points.is_empty());
    }
}
