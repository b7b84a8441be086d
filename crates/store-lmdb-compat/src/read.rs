//! Reads: snapshots, the base cursor over a snapshot, and the merge of a write
//! transaction's overlay with its base.

use std::collections::btree_map;
use std::ops::ControlFlow;

use rocksdb::{DB, DBRawIteratorWithThreadMode, ReadOptions, SnapshotWithThreadMode};
use storage_traits::kv::{Direction, KeyRange, KvIter, KvPair, KvRead, RowVisitor, TableKind};
use storage_traits::{Error, Result};

use crate::bounds::{Span, physical_bounds};
use crate::overlay::{Lookup, Overlay, Overlays, RangeSet, SortedRun};
use crate::{Resolved, RocksStore, rocks_error};

pub(crate) type Snap<'a> = SnapshotWithThreadMode<'a, DB>;
type RawIter<'a> = DBRawIteratorWithThreadMode<'a, DB>;

/// A consistent read snapshot of every table (a RocksDB snapshot). It sees every commit
/// made before it was taken and none after.
pub struct RocksSnapshot<'a> {
    store: &'a RocksStore,
    snap: Snap<'a>,
}

impl<'a> RocksSnapshot<'a> {
    pub(crate) fn new(store: &'a RocksStore) -> Self {
        RocksSnapshot {
            store,
            snap: store.db().snapshot(),
        }
    }
}

impl std::fmt::Debug for RocksSnapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksSnapshot")
            .field("path", &self.store.path())
            .finish_non_exhaustive()
    }
}

impl KvRead for RocksSnapshot<'_> {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        View::new(self.store, &self.snap, None).get(table, key)
    }

    fn range(&self, table: &str, range: KeyRange, direction: Direction) -> Result<KvIter<'_>> {
        View::new(self.store, &self.snap, None).range(table, &range, direction)
    }

    fn get_dup(&self, table: &str, key: &[u8]) -> Result<Vec<Vec<u8>>> {
        View::new(self.store, &self.snap, None).get_dup(table, key)
    }

    fn len(&self, table: &str) -> Result<u64> {
        View::new(self.store, &self.snap, None).len(table)
    }

    fn visit_range(
        &self,
        table: &str,
        range: KeyRange,
        direction: Direction,
        visit: &mut RowVisitor<'_>,
    ) -> Result<()> {
        View::new(self.store, &self.snap, None).visit_range(table, &range, direction, visit)
    }
}

/// A read view: a snapshot, plus a write transaction's overlays when there is one.
pub(crate) struct View<'v> {
    store: &'v RocksStore,
    snap: &'v Snap<'v>,
    overlays: Option<&'v Overlays>,
}

impl<'v> View<'v> {
    pub fn new(store: &'v RocksStore, snap: &'v Snap<'v>, overlays: Option<&'v Overlays>) -> Self {
        View {
            store,
            snap,
            overlays,
        }
    }

    /// The table's overlay when it holds anything, with the bytes its run rows live in.
    fn overlay(&self, t: &Resolved<'_>) -> Option<(&'v Overlay, &'v [u8])> {
        let overlays = self.overlays?;
        overlays
            .table(t.index)
            .filter(|o| !o.is_empty())
            .map(|o| (o, overlays.run_data()))
    }

    fn read_options(&self, span: Option<&Span>) -> ReadOptions {
        let mut ro = ReadOptions::default();
        ro.set_snapshot(self.snap);
        if let Some(span) = span {
            if !span.lower.is_empty() {
                ro.set_iterate_lower_bound(span.lower.clone());
            }
            if let Some(u) = &span.upper {
                ro.set_iterate_upper_bound(u.clone());
            }
        }
        ro
    }

    /// A cursor over the snapshot's rows of `t` inside `span`, positioned on the first row
    /// in `direction`.
    pub fn base_cursor(&self, t: &Resolved<'v>, span: &Span, forward: bool) -> BaseCursor<'v> {
        let ro = self.read_options(Some(span));
        let mut it = self.store.db().raw_iterator_cf_opt(t.cf, ro);
        if forward {
            it.seek_to_first();
        } else {
            it.seek_to_last();
        }
        BaseCursor {
            it,
            forward,
            exhausted: false,
        }
    }

    fn base_get(&self, t: &Resolved<'_>, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let ro = self.read_options(None);
        match self.store.db().get_pinned_cf_opt(t.cf, key, &ro) {
            Ok(v) => Ok(v.map(|v| v.to_vec())),
            Err(e) => Err(rocks_error("get", Some(t.spec.name), e)),
        }
    }

    /// Physical rows of `t` in `span`, merged with the overlay when there is one.
    fn rows(&self, t: &Resolved<'v>, span: &Span, forward: bool) -> Rows<'v> {
        let base = self.base_cursor(t, span, forward);
        match self.overlay(t) {
            None => Rows::Base(base),
            Some((o, data)) => Rows::Merged(Box::new(Merged::new(base, o, data, span, forward))),
        }
    }

    pub fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let t = self.store.resolve(table)?;
        match t.spec.kind {
            TableKind::Plain => match self.overlay(&t).map(|(o, data)| o.lookup(data, key)) {
                Some(Lookup::Value(v)) => Ok(Some(v.to_vec())),
                Some(Lookup::Deleted) => Ok(None),
                Some(Lookup::Base) | None => self.base_get(&t, key),
            },
            TableKind::DupSort { key_len } => {
                if key.len() != key_len {
                    return Ok(None);
                }
                let mut rows = self.rows(&t, &Span::prefix(key), true);
                rows.step(|k, _| dup_value(t.spec.name, k, key_len), t.spec.name)
                    .transpose()
            }
        }
    }

    pub fn get_dup(&self, table: &str, key: &[u8]) -> Result<Vec<Vec<u8>>> {
        let t = self.store.resolve(table)?;
        let key_len = match t.spec.kind {
            TableKind::DupSort { key_len } => key_len,
            // A plain table holds at most one value per key.
            TableKind::Plain => return Ok(self.get(table, key)?.into_iter().collect()),
        };
        if key.len() != key_len {
            return Ok(Vec::new());
        }
        let mut rows = self.rows(&t, &Span::prefix(key), true);
        let mut out = Vec::new();
        while let Some(v) = rows.step(|k, _| dup_value(t.spec.name, k, key_len), t.spec.name) {
            out.push(v?);
        }
        Ok(out)
    }

    pub fn range(&self, table: &str, range: &KeyRange, direction: Direction) -> Result<KvIter<'v>> {
        let t = self.store.resolve(table)?;
        let Some(span) = physical_bounds(t.spec.kind, range) else {
            return Ok(Box::new(std::iter::empty()));
        };
        let rows = self.rows(&t, &span, direction == Direction::Forward);
        Ok(Box::new(PairIter {
            rows,
            table: t.spec.name,
            key_len: match t.spec.kind {
                TableKind::Plain => None,
                TableKind::DupSort { key_len } => Some(key_len),
            },
        }))
    }

    /// The rows of [`View::range`], lent to `visit` straight from RocksDB's iterator (or
    /// the overlay), without an allocation per row.
    pub fn visit_range(
        &self,
        table: &str,
        range: &KeyRange,
        direction: Direction,
        visit: &mut RowVisitor<'_>,
    ) -> Result<()> {
        let t = self.store.resolve(table)?;
        let Some(span) = physical_bounds(t.spec.kind, range) else {
            return Ok(());
        };
        let name = t.spec.name;
        let key_len = match t.spec.kind {
            TableKind::Plain => None,
            TableKind::DupSort { key_len } => Some(key_len),
        };
        let mut rows = self.rows(&t, &span, direction == Direction::Forward);
        while let Some(flow) = rows.step(
            |k, v| match key_len {
                None => visit(k, v),
                Some(l) if k.len() >= l => visit(&k[..l], &k[l..]),
                Some(l) => Err(short_composite(name, k, l)),
            },
            name,
        ) {
            if let ControlFlow::Break(()) = flow? {
                break;
            }
        }
        Ok(())
    }

    pub fn len(&self, table: &str) -> Result<u64> {
        let t = self.store.resolve(table)?;
        let mut rows = self.rows(&t, &Span::all(), true);
        let mut n = 0u64;
        while let Some(r) = rows.step(|_, _| Ok(()), t.spec.name) {
            r?;
            n += 1;
        }
        Ok(n)
    }

    /// The greatest key of the snapshot's `t` at or above `lower`.
    pub fn base_last_key(&self, t: &Resolved<'v>, lower: &[u8]) -> Result<Option<Vec<u8>>> {
        let span = Span {
            lower: lower.to_vec(),
            upper: None,
        };
        let c = self.base_cursor(t, &span, false);
        match c.key() {
            Some(k) => Ok(Some(k.to_vec())),
            None => c.status(t.spec.name).map(|()| None),
        }
    }
}

/// A RocksDB raw iterator over a snapshot, walking in one direction.
pub(crate) struct BaseCursor<'a> {
    it: RawIter<'a>,
    forward: bool,
    exhausted: bool,
}

impl BaseCursor<'_> {
    pub fn key(&self) -> Option<&[u8]> {
        if self.exhausted { None } else { self.it.key() }
    }

    fn item(&self) -> Option<(&[u8], &[u8])> {
        if self.exhausted { None } else { self.it.item() }
    }

    pub fn advance(&mut self) {
        if self.forward {
            self.it.next();
        } else {
            self.it.prev();
        }
    }

    /// Moves past the range `[start, end)` in the walking direction.
    fn skip_range(&mut self, start: &[u8], end: Option<&[u8]>) {
        if self.forward {
            match end {
                Some(e) => self.it.seek(e),
                None => self.exhausted = true,
            }
        } else {
            self.it.seek_for_prev(start);
            if self.it.key().is_some_and(|k| k >= start) {
                self.it.prev();
            }
        }
    }

    /// The iterator's error, once it stops being valid.
    pub fn status(&self, table: &str) -> Result<()> {
        self.it
            .status()
            .map_err(|e| rocks_error("iterate", Some(table), e))
    }
}

/// Physical rows: straight from the snapshot, or merged with an overlay.
enum Rows<'a> {
    Base(BaseCursor<'a>),
    Merged(Box<Merged<'a>>),
}

impl Rows<'_> {
    /// Hands the next row to `f`, borrowed; `None` at the end.
    fn step<R>(
        &mut self,
        f: impl FnOnce(&[u8], &[u8]) -> Result<R>,
        table: &'static str,
    ) -> Option<Result<R>> {
        match self {
            Rows::Base(c) => match c.item() {
                Some((k, v)) => {
                    let r = f(k, v);
                    c.advance();
                    Some(r)
                }
                None => c.status(table).err().map(Err),
            },
            Rows::Merged(m) => m.step(f, table),
        }
    }
}

/// Which layer the next merged row comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layer {
    Points,
    Run,
    Base,
}

/// The overlay's point writes and sorted run merged with the base rows, newest layer
/// winning on equal keys, deleted base ranges skipped.
struct Merged<'a> {
    base: BaseCursor<'a>,
    points: btree_map::Range<'a, Vec<u8>, Option<Vec<u8>>>,
    points_head: Option<(&'a Vec<u8>, &'a Option<Vec<u8>>)>,
    run: &'a SortedRun,
    /// The bytes the run's rows live in.
    run_data: &'a [u8],
    run_lo: usize,
    run_hi: usize,
    deleted: &'a RangeSet,
    forward: bool,
    failed: bool,
}

impl<'a> Merged<'a> {
    fn new(
        base: BaseCursor<'a>,
        overlay: &'a Overlay,
        run_data: &'a [u8],
        span: &Span,
        forward: bool,
    ) -> Self {
        use std::ops::Bound;
        let points = overlay.points.range::<[u8], _>((
            Bound::Included(span.lower.as_slice()),
            match &span.upper {
                Some(u) => Bound::Excluded(u.as_slice()),
                None => Bound::Unbounded,
            },
        ));
        let run = overlay.run.index_range(run_data, span);
        let mut m = Merged {
            base,
            points,
            points_head: None,
            run: &overlay.run,
            run_data,
            run_lo: run.start,
            run_hi: run.end,
            deleted: &overlay.deleted,
            forward,
            failed: false,
        };
        m.pull_point();
        m
    }

    fn pull_point(&mut self) {
        self.points_head = if self.forward {
            self.points.next()
        } else {
            self.points.next_back()
        };
    }

    fn run_head(&self) -> Option<usize> {
        if self.run_lo >= self.run_hi {
            None
        } else if self.forward {
            Some(self.run_lo)
        } else {
            Some(self.run_hi - 1)
        }
    }

    fn pop_run(&mut self) {
        if self.forward {
            self.run_lo += 1;
        } else {
            self.run_hi -= 1;
        }
    }

    fn skip_deleted_base(&mut self) {
        if self.deleted.is_empty() {
            return;
        }
        while let Some(k) = self.base.key() {
            match self.deleted.find(k) {
                None => return,
                Some((s, e)) => self.base.skip_range(s, e),
            }
        }
    }

    fn step<R>(
        &mut self,
        f: impl FnOnce(&[u8], &[u8]) -> Result<R>,
        table: &'static str,
    ) -> Option<Result<R>> {
        if self.failed {
            return None;
        }
        loop {
            self.skip_deleted_base();
            let run: &'a SortedRun = self.run;
            let p = self.points_head.map(|(k, _)| k.as_slice());
            let data: &'a [u8] = self.run_data;
            let r = self.run_head().map(|i| run.key(data, i));
            let b = self.base.key();
            let mut best: Option<(Layer, &[u8])> = None;
            // Newest layer first, so an equal key keeps the newer layer.
            for (layer, key) in [(Layer::Points, p), (Layer::Run, r), (Layer::Base, b)] {
                let Some(key) = key else { continue };
                let better = match best {
                    None => true,
                    Some((_, bk)) => {
                        if self.forward {
                            key < bk
                        } else {
                            key > bk
                        }
                    }
                };
                if better {
                    best = Some((layer, key));
                }
            }
            let Some((layer, key)) = best else {
                return match self.base.status(table) {
                    Ok(()) => None,
                    Err(e) => {
                        self.failed = true;
                        Some(Err(e))
                    }
                };
            };
            let run_eq = r == Some(key);
            let base_eq = b == Some(key);
            match layer {
                Layer::Points => {
                    let (k, v) = self.points_head.take()?;
                    self.pull_point();
                    if run_eq {
                        self.pop_run();
                    }
                    if base_eq {
                        self.base.advance();
                    }
                    if let Some(v) = v {
                        return Some(f(k, v));
                    }
                }
                Layer::Run => {
                    let i = self.run_head()?;
                    let (k, v) = run.row(data, i);
                    self.pop_run();
                    if base_eq {
                        self.base.advance();
                    }
                    return Some(f(k, v));
                }
                Layer::Base => {
                    let (k, v) = self.base.item()?;
                    let out = f(k, v);
                    self.base.advance();
                    return Some(out);
                }
            }
        }
    }
}

fn short_composite(table: &'static str, composite: &[u8], key_len: usize) -> Error {
    Error::Corrupt {
        table,
        key: hex::encode(composite),
        height: None,
        reason: format!(
            "a duplicate-sorted row's composite key is shorter than the {key_len}-byte key"
        ),
    }
}

/// The value half of a duplicate-sorted table's composite key.
fn dup_value(table: &'static str, composite: &[u8], key_len: usize) -> Result<Vec<u8>> {
    composite
        .get(key_len..)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| short_composite(table, composite, key_len))
}

/// Physical rows as owned table rows: composites of a duplicate-sorted table split back
/// into (key, value).
struct PairIter<'a> {
    rows: Rows<'a>,
    table: &'static str,
    key_len: Option<usize>,
}

impl Iterator for PairIter<'_> {
    type Item = Result<KvPair>;

    fn next(&mut self) -> Option<Result<KvPair>> {
        let key_len = self.key_len;
        let table = self.table;
        self.rows.step(
            |k, v| match key_len {
                None => Ok((k.to_vec(), v.to_vec())),
                Some(l) if k.len() >= l => Ok((k[..l].to_vec(), k[l..].to_vec())),
                Some(l) => Err(short_composite(table, k, l)),
            },
            table,
        )
    }
}
