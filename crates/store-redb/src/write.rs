//! The write transaction: a redb write transaction with cached table handles.

use std::cell::OnceCell;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;

use redb::{MultimapTable, ReadableTable, ReadableTableMetadata, Table};
use storage_traits::kv::{
    Direction, Durability, KeyRange, KvIter, KvRead, KvWrite, RowVisitor, TableKind, TableSpec,
};
use storage_traits::{Error, Result};

use crate::read::{
    dup_first, dup_range, dup_values, dup_visit, plain_get, plain_range, plain_visit,
};
use crate::store::{BACKEND, Bytes, RedbStore, backend_err, dup_def, plain_def};

/// An open table of the write transaction.
///
/// The `'static` is a lie told once, in [`RedbWriter`]: each handle really borrows the
/// transaction that the writer owns. See the safety comment there.
enum WriteTable<'t> {
    Plain(Table<'t, Bytes, Bytes>),
    Dup(MultimapTable<'t, Bytes, Bytes>),
}

/// The write transaction: a redb write transaction. Nothing it does is visible to
/// snapshots until [`KvWrite::commit`]; dropping it aborts. It reads its own writes.
///
/// A table is opened on first use and its handle kept until commit, so a put costs one
/// B-tree insert, not a table open and close as well.
pub struct RedbWriter<'s> {
    store: &'s RedbStore,
    // SAFETY: every handle in `tables` borrows `*txn`, the `WriteTransaction` inside the
    // `Arc` (its heap address does not change while the `Arc` lives, however the writer is
    // moved). The handles are typed `'static` because Rust cannot name that borrow. This is
    // sound because:
    // - `tables` is declared before `txn`, so it is dropped first (a handle's drop writes its
    //   root back into the transaction); `commit` drops it explicitly before unwrapping `txn`;
    // - `txn` is never cloned, so `Arc::try_unwrap` in `commit` succeeds once `tables` is gone;
    // - no handle, and nothing borrowed from one, leaves this module with a lifetime longer
    //   than the `&self`/`&mut self` it was reached through.
    tables: Box<[OnceCell<WriteTable<'static>>]>,
    txn: Arc<redb::WriteTransaction>,
}

impl std::fmt::Debug for RedbWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbWriter").finish_non_exhaustive()
    }
}

impl<'s> RedbWriter<'s> {
    pub(crate) fn new(store: &'s RedbStore) -> Result<Self> {
        // Blocks while another write transaction is open (redb admits one at a time).
        let mut txn = store
            .db
            .begin_write()
            .map_err(|e| backend_err("begin_write", None, e))?;
        txn.set_quick_repair(store.options.quick_repair);
        Ok(RedbWriter {
            store,
            tables: store.specs.iter().map(|_| OnceCell::new()).collect(),
            txn: Arc::new(txn),
        })
    }

    fn txn(&self) -> &'static redb::WriteTransaction {
        // SAFETY: see the field comment on `tables`; the returned reference is only used to
        // open handles that are stored in `self.tables`.
        unsafe { &*Arc::as_ptr(&self.txn) }
    }

    fn open(&self, spec: &TableSpec) -> Result<WriteTable<'static>> {
        let txn = self.txn();
        Ok(match spec.kind {
            TableKind::Plain => WriteTable::Plain(
                txn.open_table(plain_def(spec.name))
                    .map_err(|e| backend_err("open_table", Some(spec.name), e))?,
            ),
            TableKind::DupSort { .. } => WriteTable::Dup(
                txn.open_multimap_table(dup_def(spec.name))
                    .map_err(|e| backend_err("open_table", Some(spec.name), e))?,
            ),
        })
    }

    /// The handle of `table` (opened on first use) and its spec.
    #[inline]
    fn table(&self, table: &str) -> Result<(&WriteTable<'static>, &'s TableSpec)> {
        let i = self.store.table_index(table)?;
        let spec = &self.store.specs[i];
        let cell = &self.tables[i];
        if let Some(t) = cell.get() {
            return Ok((t, spec));
        }
        let opened = self.open(spec)?;
        // The cell is empty (it was a moment ago and the writer is not shared across
        // threads), so `opened` is the handle stored.
        Ok((cell.get_or_init(|| opened), spec))
    }

    #[inline]
    fn table_mut(&mut self, table: &str) -> Result<(&mut WriteTable<'static>, &'s TableSpec)> {
        let i = self.store.table_index(table)?;
        let spec = &self.store.specs[i];
        if self.tables[i].get().is_none() {
            let opened = self.open(spec)?;
            let _ = self.tables[i].set(opened);
        }
        match self.tables[i].get_mut() {
            Some(t) => Ok((t, spec)),
            None => Err(Error::backend(
                BACKEND,
                "open_table",
                Some(spec.name),
                "table handle missing after open",
            )),
        }
    }
}

/// Duplicate-sorted keys are exactly `key_len` bytes (the RocksDB backend's composite keys
/// depend on it); redb would not care, but both backends refuse the same input.
fn check_dup_key(spec: &TableSpec, key: &[u8], operation: &'static str) -> Result<()> {
    match spec.kind {
        TableKind::DupSort { key_len } if key.len() != key_len => Err(Error::backend(
            BACKEND,
            operation,
            Some(spec.name),
            format!(
                "key {} is {} bytes; the duplicate-sorted table takes {key_len}-byte keys",
                hex_key(key),
                key.len()
            ),
        )),
        _ => Ok(()),
    }
}

fn hex_key(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn unsorted(table: &str, key: &[u8], previous: &[u8]) -> Error {
    Error::UnsortedInsert {
        table: table.to_owned(),
        key: hex_key(key),
        previous: hex_key(previous),
    }
}

// `#[inline]` on the point operations, as on the snapshot's (see there).
impl KvRead for RedbWriter<'_> {
    #[inline]
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.table(table)?.0 {
            WriteTable::Plain(t) => plain_get(t, table, key),
            WriteTable::Dup(t) => dup_first(t, table, key),
        }
    }

    fn range(&self, table: &str, range: KeyRange, direction: Direction) -> Result<KvIter<'_>> {
        match self.table(table)? {
            (WriteTable::Plain(t), spec) => plain_range(t, spec.name, range, direction),
            (WriteTable::Dup(t), spec) => dup_range(t, spec.name, range, direction),
        }
    }

    fn get_dup(&self, table: &str, key: &[u8]) -> Result<Vec<Vec<u8>>> {
        match self.table(table)?.0 {
            WriteTable::Plain(t) => Ok(plain_get(t, table, key)?.into_iter().collect()),
            WriteTable::Dup(t) => dup_values(t, table, key),
        }
    }

    fn len(&self, table: &str) -> Result<u64> {
        match self.table(table)?.0 {
            WriteTable::Plain(t) => t.len(),
            WriteTable::Dup(t) => t.len(),
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
            WriteTable::Plain(t) => plain_visit(t, table, range, direction, visit),
            WriteTable::Dup(t) => dup_visit(t, table, range, direction, visit),
        }
    }
}

impl KvWrite for RedbWriter<'_> {
    #[inline]
    fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<()> {
        match self.table_mut(table)? {
            (WriteTable::Plain(t), _) => t.insert(key, value).map(drop),
            (WriteTable::Dup(t), spec) => {
                check_dup_key(spec, key, "put")?;
                t.insert(key, value).map(drop)
            }
        }
        .map_err(|e| backend_err("put", Some(table), e))
    }

    fn delete(&mut self, table: &str, key: &[u8]) -> Result<()> {
        match self.table_mut(table)?.0 {
            WriteTable::Plain(t) => t.remove(key).map(drop),
            // The removed values are handed back as an iterator; dropping it frees them.
            WriteTable::Dup(t) => t.remove_all(key).map(drop),
        }
        .map_err(|e| backend_err("delete", Some(table), e))
    }

    fn delete_dup(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<()> {
        let op = |e: redb::StorageError| backend_err("delete_dup", Some(table), e);
        match self.table_mut(table)?.0 {
            WriteTable::Plain(t) => {
                let matches = t.get(key).map_err(op)?.is_some_and(|v| v.value() == value);
                if matches {
                    t.remove(key).map_err(op)?;
                }
                Ok(())
            }
            WriteTable::Dup(t) => t.remove(key, value).map(drop).map_err(op),
        }
    }

    fn insert_sorted(
        &mut self,
        table: &str,
        rows: &mut dyn Iterator<Item = (&[u8], &[u8])>,
    ) -> Result<u64> {
        match self.table_mut(table)? {
            (WriteTable::Plain(t), spec) => insert_sorted_plain(t, spec.name, rows),
            (WriteTable::Dup(t), spec) => {
                // Multimap tables have no cursor: insert pair by pair, checking the order.
                let mut previous: Vec<u8> = Vec::new();
                let mut n = 0u64;
                for (key, value) in rows {
                    if n > 0 && key <= previous.as_slice() {
                        return Err(unsorted(spec.name, key, &previous));
                    }
                    check_dup_key(spec, key, "insert_sorted")?;
                    t.insert(key, value)
                        .map_err(|e| backend_err("insert_sorted", Some(spec.name), e))?;
                    previous.clear();
                    previous.extend_from_slice(key);
                    n += 1;
                }
                Ok(n)
            }
        }
    }

    fn clear(&mut self, table: &str) -> Result<()> {
        let i = self.store.table_index(table)?;
        let spec = &self.store.specs[i];
        // Close the handle, drop the table (its pages are freed wholesale, without visiting
        // each row) and recreate it empty, so that it exists at commit.
        drop(self.tables[i].take());
        let txn = self.txn();
        let deleted = match spec.kind {
            TableKind::Plain => txn.delete_table(plain_def(spec.name)),
            TableKind::DupSort { .. } => txn.delete_multimap_table(dup_def(spec.name)),
        };
        deleted.map_err(|e| backend_err("clear", Some(spec.name), e))?;
        let reopened = self.open(spec)?;
        let _ = self.tables[i].set(reopened);
        Ok(())
    }

    fn commit(self, durability: Durability) -> Result<()> {
        let started = Instant::now();
        let RedbWriter { store, tables, txn } = self;
        let opened = tables.iter().filter(|c| c.get().is_some()).count();
        // Every handle goes before the transaction it borrows (see the field comment).
        drop(tables);
        let mut txn = Arc::try_unwrap(txn).map_err(|_| {
            Error::backend(
                BACKEND,
                "commit",
                None,
                "the write transaction is still shared",
            )
        })?;
        txn.set_durability(match durability {
            Durability::Synced => redb::Durability::Immediate,
            Durability::Buffered => redb::Durability::None,
        })
        .map_err(|e| backend_err("commit", None, e))?;
        txn.commit().map_err(|e| backend_err("commit", None, e))?;
        tracing::trace!(
            ?durability,
            tables_written = opened,
            quick_repair = store.options.quick_repair,
            elapsed_us = started.elapsed().as_micros() as u64,
            "redb write transaction committed"
        );
        Ok(())
    }
}

/// Sorted bulk insert. When the first row is past the table's last key (an append: rows
/// keyed by height, or any empty table), the rows go through a redb write cursor at the end
/// of the table, which buffers them and builds the new leaves in one pass instead of one
/// root-to-leaf descent and leaf rewrite per row. Otherwise every row of the call is put
/// one by one, like [`KvWrite::put`] (a key already present is overwritten): a cursor only moves entry by entry and applies
/// its buffered inserts at each move, so for random keys (txids, outpoints) into a table
/// holding many it walked the whole table per batch and rewrote a leaf per row (a bulk
/// sync's `spent` and `txid_location` inserts took 4× the time of plain puts at 100,000
/// blocks).
fn insert_sorted_plain(
    t: &mut Table<'static, Bytes, Bytes>,
    table: &'static str,
    rows: &mut dyn Iterator<Item = (&[u8], &[u8])>,
) -> Result<u64> {
    let op = |e: redb::Error| backend_err("insert_sorted", Some(table), e);
    let Some((first_key, first_value)) = rows.next() else {
        return Ok(0);
    };
    let last = t.last().map_err(|e| op(e.into()))?;
    let appends = match &last {
        None => true,
        Some((k, _)) => k.value() < first_key,
    };
    drop(last);
    if !appends {
        let mut previous: Option<&[u8]> = None;
        let mut n = 0u64;
        for (key, value) in std::iter::once((first_key, first_value)).chain(rows) {
            if let Some(previous) = previous
                && key <= previous
            {
                return Err(unsorted(table, key, previous));
            }
            t.insert(key, value).map_err(|e| op(e.into()))?;
            previous = Some(key);
            n += 1;
        }
        return Ok(n);
    }
    let mut cursor = t
        .upper_bound_mut(Bound::<&[u8]>::Unbounded)
        .map_err(|e| op(e.into()))?;
    let mut n = 0u64;
    let mut result = Ok(());
    for (key, value) in std::iter::once((first_key, first_value)).chain(rows) {
        // The cursor checks the order: `insert_before` refuses, changing nothing, a key not
        // above the entry before the gap, which is the last key inserted.
        match cursor.insert_before(key, value) {
            Ok(()) => n += 1,
            Err(redb::CursorError::UnorderedKey) => {
                result = match cursor.peek_prev() {
                    Ok(Some((k, _))) => Err(unsorted(table, key, k.value())),
                    Ok(None) => Err(unsorted(table, key, &[])),
                    Err(e) => Err(op(e.into())),
                };
                break;
            }
            Err(e) => {
                result = Err(op(e.into()));
                break;
            }
        }
    }
    // Closing splices the buffered inserts: after an out-of-order key the rows before it
    // stay written, exactly as with the trait's default implementation.
    let closed = cursor.close().map_err(|e| op(e.into()));
    result?;
    closed?;
    Ok(n)
}
