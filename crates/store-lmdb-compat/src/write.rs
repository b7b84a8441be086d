//! The write transaction: an overlay per table over a snapshot, committed as one
//! `WriteBatch`.

use rocksdb::{WriteBatch, WriteOptions};
use storage_traits::kv::{
    Direction, Durability, KeyRange, KvIter, KvRead, KvWrite, RowVisitor, TableKind,
};
use storage_traits::{Error, Result};

use crate::bounds::{Span, immediate_successor};
use crate::overlay::Overlays;
use crate::read::{Snap, View};
use crate::{BACKEND, Resolved, RocksStore, StoreError, rocks_error};

/// A range delete covering at most this many base rows becomes point deletes: range
/// tombstones cost every later read that crosses them until compaction drops them, while a
/// few point deletes cost nothing afterwards.
const POINT_DELETE_LIMIT: usize = 64;

/// The write transaction. Reads see its own writes; nothing is visible to snapshots until
/// [`KvWrite::commit`], which writes one atomic `WriteBatch`. Dropping it discards
/// everything. Only one exists at a time: [`storage_traits::KvStore::begin_write`] waits
/// for the previous one to commit or drop.
///
/// Writes are buffered in memory until commit, so bulk loads should commit in chunks. Rows
/// written in ascending key order per table (bulk loads) are buffered once, as the puts of
/// the batch the commit writes; other writes are buffered in ordered maps and copied into
/// the batch at commit.
pub struct RocksWriteTxn<'a> {
    store: &'a RocksStore,
    base: Snap<'a>,
    overlays: Overlays,
    /// Reused for composite keys.
    scratch: Vec<u8>,
}

impl<'a> RocksWriteTxn<'a> {
    /// The caller holds the writer lock; this transaction releases it on drop.
    pub(crate) fn new(store: &'a RocksStore) -> Self {
        RocksWriteTxn {
            store,
            base: store.db().snapshot(),
            overlays: Overlays::new(store.tables.len()),
            scratch: Vec::new(),
        }
    }

    fn view(&self) -> View<'_> {
        View::new(self.store, &self.base, Some(&self.overlays))
    }

    fn dup_key_error(
        operation: &'static str,
        t: &Resolved<'_>,
        key: &[u8],
        expected: usize,
    ) -> Error {
        Error::backend(
            BACKEND,
            operation,
            Some(t.spec.name),
            StoreError::DupKeyLength {
                table: t.spec.name.to_owned(),
                key: hex::encode(key),
                expected,
                actual: key.len(),
            },
        )
    }

    /// Adds the delete of the base rows in `[start, end)` to `batch`.
    fn emit_range_delete(
        &self,
        batch: &mut WriteBatch,
        t: &Resolved<'_>,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<usize> {
        let view = self.view();
        let span = Span {
            lower: start.to_vec(),
            upper: end.map(<[u8]>::to_vec),
        };
        let mut cursor = view.base_cursor(t, &span, true);
        let mut keys = Vec::new();
        while let Some(k) = cursor.key() {
            if keys.len() == POINT_DELETE_LIMIT {
                break;
            }
            keys.push(k.to_vec());
            cursor.advance();
        }
        cursor.status(t.spec.name)?;
        if cursor.key().is_none() {
            // Every row in the range is known: delete them one by one.
            for k in &keys {
                batch.delete_cf(t.cf, k);
            }
            return Ok(keys.len());
        }
        let end = match end {
            Some(e) => e.to_vec(),
            // RocksDB range deletes need an end key: just past the last row there is.
            None => match view.base_last_key(t, start)? {
                Some(last) => immediate_successor(&last),
                None => return Ok(0),
            },
        };
        batch.delete_range_cf(t.cf, start, end.as_slice());
        Ok(1)
    }
}

fn batch_layout_error(table: &str, operation: &'static str, reason: String) -> Error {
    Error::backend(
        BACKEND,
        operation,
        Some(table),
        StoreError::RocksDb { message: reason },
    )
}

impl Drop for RocksWriteTxn<'_> {
    fn drop(&mut self) {
        self.store.release_writer();
    }
}

impl std::fmt::Debug for RocksWriteTxn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksWriteTxn")
            .field("path", &self.store.path())
            .finish_non_exhaustive()
    }
}

impl KvRead for RocksWriteTxn<'_> {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.view().get(table, key)
    }

    fn range(&self, table: &str, range: KeyRange, direction: Direction) -> Result<KvIter<'_>> {
        self.view().range(table, &range, direction)
    }

    fn get_dup(&self, table: &str, key: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.view().get_dup(table, key)
    }

    fn len(&self, table: &str) -> Result<u64> {
        self.view().len(table)
    }

    fn visit_range(
        &self,
        table: &str,
        range: KeyRange,
        direction: Direction,
        visit: &mut RowVisitor<'_>,
    ) -> Result<()> {
        self.view().visit_range(table, &range, direction, visit)
    }
}

impl KvWrite for RocksWriteTxn<'_> {
    fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<()> {
        let t = self.store.resolve(table)?;
        let put = match t.spec.kind {
            TableKind::Plain => self.overlays.put(t.index, t.cf, key, value),
            TableKind::DupSort { key_len } => {
                if key.len() != key_len {
                    return Err(Self::dup_key_error("put", &t, key, key_len));
                }
                let composite = &mut self.scratch;
                composite.clear();
                composite.extend_from_slice(key);
                composite.extend_from_slice(value);
                self.overlays.put(t.index, t.cf, composite, &[])
            }
        };
        put.map_err(|e| batch_layout_error(table, "put", e))
    }

    fn delete(&mut self, table: &str, key: &[u8]) -> Result<()> {
        let t = self.store.resolve(table)?;
        match t.spec.kind {
            TableKind::Plain => self.overlays.delete(t.index, key.to_vec()),
            // A key of another length has no rows.
            TableKind::DupSort { key_len } if key.len() != key_len => {}
            TableKind::DupSort { .. } => self.overlays.delete_span(t.index, Span::prefix(key)),
        }
        Ok(())
    }

    fn delete_dup(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<()> {
        let t = self.store.resolve(table)?;
        match t.spec.kind {
            // The pair is present only when the key holds exactly this value.
            TableKind::Plain => {
                if self.view().get(table, key)?.as_deref() == Some(value) {
                    self.overlays.delete(t.index, key.to_vec());
                }
            }
            TableKind::DupSort { key_len } if key.len() != key_len => {}
            TableKind::DupSort { .. } => self.overlays.delete(t.index, [key, value].concat()),
        }
        Ok(())
    }

    /// Rows in ascending order past everything the transaction already wrote to the table
    /// join its run (no allocation per row: they become the batch's puts as they are); the
    /// rest are ordinary puts.
    fn insert_sorted(
        &mut self,
        table: &str,
        rows: &mut dyn Iterator<Item = (&[u8], &[u8])>,
    ) -> Result<u64> {
        let t = self.store.resolve(table)?;
        let mut previous: Vec<u8> = Vec::new();
        let mut first = true;
        let mut n = 0u64;
        for (key, value) in rows {
            if !first && key <= previous.as_slice() {
                return Err(Error::UnsortedInsert {
                    table: table.to_owned(),
                    key: hex::encode(key),
                    previous: hex::encode(&previous),
                });
            }
            let put = match t.spec.kind {
                TableKind::Plain => self.overlays.put(t.index, t.cf, key, value),
                TableKind::DupSort { key_len } => {
                    if key.len() != key_len {
                        return Err(Self::dup_key_error("insert_sorted", &t, key, key_len));
                    }
                    let composite = &mut self.scratch;
                    composite.clear();
                    composite.extend_from_slice(key);
                    composite.extend_from_slice(value);
                    self.overlays.put(t.index, t.cf, composite, &[])
                }
            };
            put.map_err(|e| batch_layout_error(table, "insert_sorted", e))?;
            previous.clear();
            previous.extend_from_slice(key);
            first = false;
            n += 1;
        }
        Ok(n)
    }

    fn clear(&mut self, table: &str) -> Result<()> {
        let t = self.store.resolve(table)?;
        self.overlays.clear(t.index);
        Ok(())
    }

    fn commit(mut self, durability: Durability) -> Result<()> {
        // A bulk load (runs holding exactly their rows, no range deletes beside a run)
        // writes the shared run batch as it is, with the other writes appended: its rows are
        // copied once, not twice. Appending is sound: tables are column families, so only
        // the order within a table matters, and a table's point writes belong after its run.
        let exact = self.overlays.take_exact_runs();
        let copy_runs = exact.is_none();
        let mut batch = exact.unwrap_or_default();
        let mut range_deletes = 0usize;
        for (i, overlay) in self.overlays.tables().iter().enumerate() {
            if overlay.is_empty() {
                continue;
            }
            let t = self.store.resolve(self.store.tables[i].name)?;
            // Range deletes first, then the run, then the point writes: the batch applies
            // in order, so each layer overrides the older ones as the overlay did.
            for (start, end) in overlay.deleted.iter() {
                range_deletes += self.emit_range_delete(&mut batch, &t, start, end)?;
            }
            if copy_runs {
                for r in 0..overlay.run.len() {
                    let (k, v) = overlay.run.row(self.overlays.run_data(), r);
                    batch.put_cf(t.cf, k, v);
                }
            }
            for (k, v) in &overlay.points {
                match v {
                    Some(v) => batch.put_cf(t.cf, k, v),
                    None => batch.delete_cf(t.cf, k),
                }
            }
        }
        let synced = durability == Durability::Synced;
        if batch.is_empty() {
            // Nothing to write; a synced commit still promises earlier buffered ones.
            return if synced {
                self.store
                    .db()
                    .flush_wal(true)
                    .map_err(|e| rocks_error("commit", None, e))
            } else {
                Ok(())
            };
        }
        let ops = batch.len();
        let bytes = batch.size_in_bytes();
        let mut wo = WriteOptions::default();
        wo.set_sync(synced);
        self.store
            .db()
            .write_opt(batch, &wo)
            .map_err(|e| rocks_error("commit", None, e))?;
        tracing::debug!(
            ops,
            bytes,
            range_deletes,
            ?durability,
            "committed write batch"
        );
        Ok(())
    }
}
