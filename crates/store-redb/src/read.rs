//! Read snapshots: redb read transactions with lazily opened, cached table handles, and the
//! read operations shared with the write transaction.

use std::ops::Bound;
use std::sync::OnceLock;

use redb::{
    ReadOnlyMultimapTable, ReadOnlyTable, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    ReadableTableMetadata,
};
use std::ops::ControlFlow;
use storage_traits::Result;

use storage_traits::kv::{Direction, KeyRange, KvIter, KvRead, RowVisitor, TableKind};

use crate::iter::{DupIter, PlainIter};
use crate::store::{Bytes, RedbStore, backend_err, dup_def, plain_def};

/// An open table of a read transaction.
pub(crate) enum ReadTable {
    Plain(ReadOnlyTable<Bytes, Bytes>),
    Dup(ReadOnlyMultimapTable<Bytes, Bytes>),
}

/// A consistent read snapshot: a redb read transaction. It sees every commit made before it
/// was taken and none after. Table handles are opened on first use and kept for the
/// snapshot's life, so point reads cost one B-tree lookup each.
pub struct RedbSnapshot<'s> {
    store: &'s RedbStore,
    // Declared before `txn`: the handles are released first.
    tables: Box<[OnceLock<ReadTable>]>,
    txn: redb::ReadTransaction,
}

impl std::fmt::Debug for RedbSnapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbSnapshot").finish_non_exhaustive()
    }
}

impl<'s> RedbSnapshot<'s> {
    pub(crate) fn new(store: &'s RedbStore) -> Result<Self> {
        let txn = store
            .db
            .begin_read()
            .map_err(|e| backend_err("begin_read", None, e))?;
        Ok(RedbSnapshot {
            store,
            tables: store.specs.iter().map(|_| OnceLock::new()).collect(),
            txn,
        })
    }

    /// The open handle of `table`, and the table's `'static` name (for iterator errors).
    #[inline]
    fn table(&self, table: &str) -> Result<(&ReadTable, &'static str)> {
        let i = self.store.table_index(table)?;
        let spec = &self.store.specs[i];
        let cell = &self.tables[i];
        if let Some(t) = cell.get() {
            return Ok((t, spec.name));
        }
        let opened = match spec.kind {
            TableKind::Plain => ReadTable::Plain(
                self.txn
                    .open_table(plain_def(spec.name))
                    .map_err(|e| backend_err("open_table", Some(spec.name), e))?,
            ),
            TableKind::DupSort { .. } => ReadTable::Dup(
                self.txn
                    .open_multimap_table(dup_def(spec.name))
                    .map_err(|e| backend_err("open_table", Some(spec.name), e))?,
            ),
        };
        // Another thread may have won the race; either handle reads the same snapshot.
        Ok((cell.get_or_init(|| opened), spec.name))
    }
}

// `#[inline]` on the point operations: without it a call from another crate cannot be
// inlined (no LTO by default), and in a loop of random point reads the call boundary alone
// measured ~10% (the CPU overlaps fewer of the next lookup's cache misses).
impl KvRead for RedbSnapshot<'_> {
    #[inline]
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.table(table)?.0 {
            ReadTable::Plain(t) => plain_get(t, table, key),
            ReadTable::Dup(t) => dup_first(t, table, key),
        }
    }

    fn range(&self, table: &str, range: KeyRange, direction: Direction) -> Result<KvIter<'_>> {
        match self.table(table)? {
            (ReadTable::Plain(t), name) => plain_range(t, name, range, direction),
            (ReadTable::Dup(t), name) => dup_range(t, name, range, direction),
        }
    }

    #[inline]
    fn get_dup(&self, table: &str, key: &[u8]) -> Result<Vec<Vec<u8>>> {
        match self.table(table)?.0 {
            ReadTable::Plain(t) => Ok(plain_get(t, table, key)?.into_iter().collect()),
            ReadTable::Dup(t) => dup_values(t, table, key),
        }
    }

    fn len(&self, table: &str) -> Result<u64> {
        match self.table(table)?.0 {
            ReadTable::Plain(t) => t.len(),
            ReadTable::Dup(t) => t.len(),
        }
        .map_err(|e| backend_err("len", Some(table), e))
    }

    fn is_empty(&self, table: &str) -> Result<bool> {
        Ok(self.len(table)? == 0)
    }

    fn visit_range(
        &self,
        table: &str,
        range: KeyRange,
        direction: Direction,
        visit: &mut RowVisitor<'_>,
    ) -> Result<()> {
        match self.table(table)?.0 {
            ReadTable::Plain(t) => plain_visit(t, table, range, direction, visit),
            ReadTable::Dup(t) => dup_visit(t, table, range, direction, visit),
        }
    }
}

// The read operations, generic over redb's read-only and read-write table handles so that
// snapshots and write transactions share one implementation.

#[inline]
pub(crate) fn plain_get<T: ReadableTable<Bytes, Bytes>>(
    t: &T,
    table: &str,
    key: &[u8],
) -> Result<Option<Vec<u8>>> {
    Ok(t.get(key)
        .map_err(|e| backend_err("get", Some(table), e))?
        .map(|v| v.value().to_vec()))
}

pub(crate) fn dup_first<T: ReadableMultimapTable<Bytes, Bytes>>(
    t: &T,
    table: &str,
    key: &[u8],
) -> Result<Option<Vec<u8>>> {
    let mut values = t.get(key).map_err(|e| backend_err("get", Some(table), e))?;
    values
        .next()
        .transpose()
        .map(|v| v.map(|v| v.value().to_vec()))
        .map_err(|e| backend_err("get", Some(table), e))
}

pub(crate) fn dup_values<T: ReadableMultimapTable<Bytes, Bytes>>(
    t: &T,
    table: &str,
    key: &[u8],
) -> Result<Vec<Vec<u8>>> {
    let values = t
        .get(key)
        .map_err(|e| backend_err("get_dup", Some(table), e))?;
    let mut out = Vec::with_capacity(usize::try_from(values.len()).unwrap_or(0));
    for v in values {
        out.push(
            v.map_err(|e| backend_err("get_dup", Some(table), e))?
                .value()
                .to_vec(),
        );
    }
    Ok(out)
}

/// A range of byte keys as redb takes it.
type ByteBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// The range's bounds as redb takes them, or `None` when no key can lie in it (redb, like
/// `BTreeMap`, must not be handed a range whose start lies above its end).
fn bounds(range: &KeyRange) -> Option<ByteBounds<'_>> {
    if range.is_empty() {
        return None;
    }
    Some((as_slice(&range.start), as_slice(&range.end)))
}

fn as_slice(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

pub(crate) fn plain_range<'a, T: ReadableTable<Bytes, Bytes>>(
    t: &'a T,
    table: &'static str,
    range: KeyRange,
    direction: Direction,
) -> Result<KvIter<'a>> {
    let Some(b) = bounds(&range) else {
        return Ok(Box::new(std::iter::empty()));
    };
    let inner = t
        .range::<&[u8]>(b)
        .map_err(|e| backend_err("range", Some(table), e))?;
    Ok(PlainIter::boxed(inner, table, direction))
}

pub(crate) fn dup_range<'a, T: ReadableMultimapTable<Bytes, Bytes>>(
    t: &'a T,
    table: &'static str,
    range: KeyRange,
    direction: Direction,
) -> Result<KvIter<'a>> {
    let Some(b) = bounds(&range) else {
        return Ok(Box::new(std::iter::empty()));
    };
    let inner = t
        .range::<&[u8]>(b)
        .map_err(|e| backend_err("range", Some(table), e))?;
    Ok(DupIter::boxed(inner, table, direction))
}

/// `visit_range` on a plain table: rows are lent straight from redb's pages.
pub(crate) fn plain_visit<T: ReadableTable<Bytes, Bytes>>(
    t: &T,
    table: &str,
    range: KeyRange,
    direction: Direction,
    visit: &mut RowVisitor<'_>,
) -> Result<()> {
    let Some(b) = bounds(&range) else {
        return Ok(());
    };
    let rows = t
        .range::<&[u8]>(b)
        .map_err(|e| backend_err("range", Some(table), e))?;
    match direction {
        Direction::Forward => visit_rows(rows, table, visit),
        Direction::Reverse => visit_rows(rows.rev(), table, visit),
    }
}

fn visit_rows<'a>(
    rows: impl Iterator<
        Item = std::result::Result<
            (redb::AccessGuard<'a, Bytes>, redb::AccessGuard<'a, Bytes>),
            redb::StorageError,
        >,
    >,
    table: &str,
    visit: &mut RowVisitor<'_>,
) -> Result<()> {
    for row in rows {
        let (k, v) = row.map_err(|e| backend_err("range", Some(table), e))?;
        if visit(k.value(), v.value())?.is_break() {
            break;
        }
    }
    Ok(())
}

/// `visit_range` on a duplicate-sorted table: every (key, value) pair, by key then value.
pub(crate) fn dup_visit<T: ReadableMultimapTable<Bytes, Bytes>>(
    t: &T,
    table: &str,
    range: KeyRange,
    direction: Direction,
    visit: &mut RowVisitor<'_>,
) -> Result<()> {
    let Some(b) = bounds(&range) else {
        return Ok(());
    };
    let mut keys = t
        .range::<&[u8]>(b)
        .map_err(|e| backend_err("range", Some(table), e))?;
    let reverse = direction == Direction::Reverse;
    let err = |e| backend_err("range", Some(table), e);
    loop {
        let next = if reverse {
            keys.next_back()
        } else {
            keys.next()
        };
        let Some(entry) = next else {
            return Ok(());
        };
        let (key, mut values) = entry.map_err(err)?;
        loop {
            let value = if reverse {
                values.next_back()
            } else {
                values.next()
            };
            let Some(value) = value else {
                break;
            };
            if let ControlFlow::Break(()) = visit(key.value(), value.map_err(err)?.value())? {
                return Ok(());
            }
        }
    }
}
