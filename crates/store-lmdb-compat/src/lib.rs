//! `store-lmdb-compat`: the RocksDB backend of Strata, with LMDB-shaped semantics.
//!
//! A host that writes heavily gets an LSM tree; a host ported from LMDB keeps the semantics
//! it was written against. [`RocksStore`] implements the `storage-traits` backend traits
//! ([`KvStore`], [`KvRead`], [`KvWrite`]) and passes the same conformance suite as
//! `store-redb`:
//!
//! - **Named databases** → column families: each table is a column family named exactly as
//!   the table (`txid_location_1_0_0`), created on first open. The table's kind (plain or
//!   duplicate-sorted, and the key length) is recorded in the default column family and
//!   checked on every open, as LMDB refuses to open a `DUPSORT` database without the flag.
//! - **`DUP_SORT`** → composite keys: a pair `(key, value)` of a duplicate-sorted table is
//!   stored as the column-family key `key ‖ value` with an empty value. Keys of such a table
//!   have a fixed length, so the split is unambiguous; bytewise order of composites is
//!   key-then-value order, and a pair is stored once because it *is* the key.
//! - **Read transactions** → RocksDB snapshots ([`RocksSnapshot`]).
//! - **The write transaction** → a buffered overlay ([`RocksWriteTxn`]) that reads its own
//!   writes, committed as one atomic `WriteBatch`, synced (`fsync` of the WAL) for
//!   [`Durability::Synced`]. One writer at a time, as in LMDB.
//! - **`MDB_NOOVERWRITE`-style puts** → the trait's `put_if_absent_or_identical`, which
//!   this backend does not override: it behaves exactly as in `store-redb`.
//!
//! No RocksDB type appears in the public API: RocksDB errors reach callers as
//! [`storage_traits::Error::Backend`] with a [`StoreError`] source.

#![deny(missing_docs)]

mod bounds;
mod options;
mod overlay;
mod read;
mod write;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use rocksdb::{Cache, ColumnFamily, ColumnFamilyDescriptor, DB, WriteOptions};
use storage_traits::kv::{KvStore, TableKind, TableSpec};
use storage_traits::{Error, Result};

pub use options::{Compression, DEFAULT_BLOCK_CACHE_BYTES, DEFAULT_MAX_OPEN_FILES, RocksOptions};
pub use read::RocksSnapshot;
pub use write::RocksWriteTxn;

// Re-exported so a host can name the traits through this crate alone.
pub use storage_traits::kv::{Durability, KvRead, KvWrite};

/// The backend's name in errors.
pub const BACKEND: &str = "rocksdb";

/// Where this crate keeps its own records in the default column family (tables never use
/// the default column family: the name `default` is refused).
const TABLE_KIND_PREFIX: &[u8] = b"strata/table-kind/";

/// What went wrong inside this backend. It reaches callers as the `source` of
/// [`storage_traits::Error::Backend`] (backend `rocksdb`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An error reported by RocksDB, as RocksDB words it (`IO error: …`, `Corruption: …`).
    #[error("{message}")]
    RocksDb {
        /// RocksDB's message.
        message: String,
    },
    /// A key of the wrong length written to a duplicate-sorted table.
    #[error(
        "key {key} has {actual} bytes but the keys of duplicate-sorted table {table} have {expected}"
    )]
    DupKeyLength {
        /// The table.
        table: String,
        /// The key, in hex.
        key: String,
        /// The table's key length.
        expected: usize,
        /// The key's length.
        actual: usize,
    },
    /// The same table name given twice to `open`.
    #[error("table {table} is listed twice")]
    DuplicateTable {
        /// The table.
        table: String,
    },
    /// A table name RocksDB cannot take as a column family name.
    #[error("table name {table:?} is not usable as a column family name: {reason}")]
    BadTableName {
        /// The table.
        table: String,
        /// Why.
        reason: &'static str,
    },
    /// A table opened with a different kind than it was created with.
    #[error("table {table} was created as {stored} and cannot be opened as {requested}")]
    TableKindMismatch {
        /// The table.
        table: String,
        /// The kind recorded at creation.
        stored: String,
        /// The kind asked for now.
        requested: String,
    },
    /// The record of a table's kind does not decode.
    #[error("the recorded kind of table {table} does not decode: {bytes}")]
    BadTableKindRecord {
        /// The table.
        table: String,
        /// The record, in hex.
        bytes: String,
    },
    /// A column family RocksDB did not hand back after opening.
    #[error("column family {table} is missing after open")]
    MissingColumnFamily {
        /// The table.
        table: String,
    },
}

pub(crate) fn rocks_error(
    operation: &'static str,
    table: Option<&str>,
    e: rocksdb::Error,
) -> Error {
    Error::backend(
        BACKEND,
        operation,
        table,
        StoreError::RocksDb {
            message: e.into_string(),
        },
    )
}

/// The RocksDB store: a set of tables, each a column family.
pub struct RocksStore {
    db: DB,
    tables: Vec<TableSpec>,
    index: HashMap<&'static str, usize>,
    path: PathBuf,
    options: RocksOptions,
    writer_busy: Mutex<bool>,
    writer_free: Condvar,
    // The cache outlives the database that charges it (fields drop in declaration order).
    _cache: Cache,
}

/// Opens (creating when missing) the store in `dir` with `tables` and default
/// [`RocksOptions`]. The shape of a conformance-suite opener.
pub fn open(dir: &Path, tables: &[TableSpec]) -> Result<RocksStore> {
    RocksStore::open(dir, tables, RocksOptions::default())
}

/// A resolved table: its position, its spec and its column family.
pub(crate) struct Resolved<'a> {
    pub index: usize,
    pub spec: TableSpec,
    pub cf: &'a ColumnFamily,
}

fn kind_record(kind: TableKind) -> Vec<u8> {
    match kind {
        TableKind::Plain => vec![0],
        TableKind::DupSort { key_len } => {
            let mut r = vec![1];
            r.extend_from_slice(&(key_len as u64).to_be_bytes());
            r
        }
    }
}

fn describe_kind(kind: TableKind) -> String {
    match kind {
        TableKind::Plain => "a plain table".to_owned(),
        TableKind::DupSort { key_len } => {
            format!("a duplicate-sorted table with {key_len}-byte keys")
        }
    }
}

fn decode_kind_record(table: &str, bytes: &[u8]) -> Result<TableKind> {
    let bad = || {
        Error::backend(
            BACKEND,
            "open",
            Some(table),
            StoreError::BadTableKindRecord {
                table: table.to_owned(),
                bytes: hex::encode(bytes),
            },
        )
    };
    match bytes {
        [0] => Ok(TableKind::Plain),
        [1, rest @ ..] => {
            let len: [u8; 8] = rest.try_into().map_err(|_| bad())?;
            let key_len = usize::try_from(u64::from_be_bytes(len)).map_err(|_| bad())?;
            Ok(TableKind::DupSort { key_len })
        }
        _ => Err(bad()),
    }
}

/// Whether a RocksDB open error means another handle holds the directory's `LOCK` file:
/// another process (`While lock file: …/LOCK: Resource temporarily unavailable`) or this
/// one (`lock hold by current process …`).
fn is_lock_error(message: &str) -> bool {
    message.contains("LOCK")
        && (message.contains("While lock file") || message.contains("lock hold by current process"))
}

impl RocksStore {
    /// Opens (creating when missing) the store in `dir`, with a column family per table.
    ///
    /// Column families already in the directory but not in `tables` are opened too (RocksDB
    /// requires it) and left untouched. A directory held open by another process, or by
    /// another handle in this one, is [`Error::Locked`].
    pub fn open(dir: &Path, tables: &[TableSpec], options: RocksOptions) -> Result<Self> {
        let mut index = HashMap::with_capacity(tables.len());
        for (i, t) in tables.iter().enumerate() {
            let bad = |reason| {
                Error::backend(
                    BACKEND,
                    "open",
                    Some(t.name),
                    StoreError::BadTableName {
                        table: t.name.to_owned(),
                        reason,
                    },
                )
            };
            if t.name == rocksdb::DEFAULT_COLUMN_FAMILY_NAME {
                return Err(bad("`default` is RocksDB's own column family"));
            }
            if t.name.is_empty() || t.name.contains('\0') {
                return Err(bad("empty or containing NUL"));
            }
            if index.insert(t.name, i).is_some() {
                return Err(Error::backend(
                    BACKEND,
                    "open",
                    Some(t.name),
                    StoreError::DuplicateTable {
                        table: t.name.to_owned(),
                    },
                ));
            }
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;

        let cache = Cache::new_lru_cache(options.block_cache_bytes);
        let rocks_opts = options.to_rocksdb(&cache);
        // A new directory has no column families yet; any other failure to list them will
        // resurface, better worded, from the open itself.
        let existing = DB::list_cf(&rocks_opts, dir).unwrap_or_default();
        let mut names: Vec<String> = vec![rocksdb::DEFAULT_COLUMN_FAMILY_NAME.to_owned()];
        names.extend(tables.iter().map(|t| t.name.to_owned()));
        for name in existing {
            if !names.contains(&name) {
                tracing::debug!(path = %dir.display(), column_family = %name,
                    "opening a column family that is not one of the store's tables");
                names.push(name);
            }
        }
        let descriptors = names
            .iter()
            .map(|n| ColumnFamilyDescriptor::new(n, rocks_opts.clone()));
        let db = DB::open_cf_descriptors(&rocks_opts, dir, descriptors).map_err(|e| {
            let message = e.into_string();
            if is_lock_error(&message) {
                tracing::warn!(path = %dir.display(), %message, "store is locked");
                Error::Locked {
                    path: dir.to_path_buf(),
                }
            } else {
                Error::backend(BACKEND, "open", None, StoreError::RocksDb { message })
            }
        })?;

        let store = RocksStore {
            db,
            tables: tables.to_vec(),
            index,
            path: dir.to_path_buf(),
            options,
            writer_busy: Mutex::new(false),
            writer_free: Condvar::new(),
            _cache: cache,
        };
        store.check_table_kinds()?;
        tracing::info!(
            path = %dir.display(),
            tables = tables.len(),
            max_open_files = options.max_open_files,
            block_cache_bytes = options.block_cache_bytes,
            compression = ?options.compression,
            "opened rocksdb store"
        );
        Ok(store)
    }

    /// Records each new table's kind, and refuses a table opened with another kind than it
    /// was created with.
    fn check_table_kinds(&self) -> Result<()> {
        let mut batch = rocksdb::WriteBatch::default();
        for t in &self.tables {
            let key = [TABLE_KIND_PREFIX, t.name.as_bytes()].concat();
            let stored = self
                .db
                .get_pinned(&key)
                .map_err(|e| rocks_error("open", Some(t.name), e))?;
            match stored {
                None => batch.put(&key, kind_record(t.kind)),
                Some(bytes) => {
                    let stored = decode_kind_record(t.name, &bytes)?;
                    if stored != t.kind {
                        return Err(Error::backend(
                            BACKEND,
                            "open",
                            Some(t.name),
                            StoreError::TableKindMismatch {
                                table: t.name.to_owned(),
                                stored: describe_kind(stored),
                                requested: describe_kind(t.kind),
                            },
                        ));
                    }
                }
            }
        }
        if !batch.is_empty() {
            let mut wo = WriteOptions::default();
            wo.set_sync(true);
            self.db
                .write_opt(batch, &wo)
                .map_err(|e| rocks_error("open", None, e))?;
        }
        Ok(())
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options the store was opened with.
    pub fn options(&self) -> RocksOptions {
        self.options
    }

    pub(crate) fn db(&self) -> &DB {
        &self.db
    }

    pub(crate) fn resolve(&self, table: &str) -> Result<Resolved<'_>> {
        // Callers almost always pass the very `&'static str` the store was opened with
        // (`T::NAME`, a `const`): find it by address first, a few pointer compares, and
        // hash the name only when that misses.
        let index = match self.tables.iter().position(|s| std::ptr::eq(s.name, table)) {
            Some(i) => i,
            None => *self.index.get(table).ok_or_else(|| Error::UnknownTable {
                table: table.to_owned(),
            })?,
        };
        let spec = self.tables[index];
        let cf = self.db.cf_handle(spec.name).ok_or_else(|| {
            Error::backend(
                BACKEND,
                "resolve table",
                Some(spec.name),
                StoreError::MissingColumnFamily {
                    table: spec.name.to_owned(),
                },
            )
        })?;
        Ok(Resolved { index, spec, cf })
    }

    /// Waits until no write transaction is open, then marks one open.
    fn acquire_writer(&self) {
        // The mutex guards a bool that is never left half-updated, so a poisoned lock is
        // still sound to use.
        let mut busy = self.writer_busy.lock().unwrap_or_else(|p| p.into_inner());
        while *busy {
            busy = self
                .writer_free
                .wait(busy)
                .unwrap_or_else(|p| p.into_inner());
        }
        *busy = true;
    }

    pub(crate) fn release_writer(&self) {
        let mut busy = self.writer_busy.lock().unwrap_or_else(|p| p.into_inner());
        *busy = false;
        drop(busy);
        self.writer_free.notify_one();
    }
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.path)
            .field("tables", &self.tables)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl KvStore for RocksStore {
    type Snapshot<'a> = RocksSnapshot<'a>;
    type Writer<'a> = RocksWriteTxn<'a>;

    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn tables(&self) -> &[TableSpec] {
        &self.tables
    }

    fn begin_read(&self) -> Result<RocksSnapshot<'_>> {
        Ok(RocksSnapshot::new(self))
    }

    /// A plain table's value read straight from the database, without taking and releasing
    /// a snapshot (two trips through RocksDB's database mutex): a single `Get` reads one
    /// consistent state on its own.
    fn get_latest(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let t = self.resolve(table)?;
        match t.spec.kind {
            TableKind::Plain => self
                .db
                .get_pinned_cf(t.cf, key)
                .map(|v| v.map(|v| v.to_vec()))
                .map_err(|e| rocks_error("get", Some(t.spec.name), e)),
            TableKind::DupSort { .. } => self.begin_read()?.get(table, key),
        }
    }

    fn begin_write(&self) -> Result<RocksWriteTxn<'_>> {
        self.acquire_writer();
        // Taken after the writer lock, so it holds every earlier commit; no one else can
        // commit until this transaction ends, so it stays the latest state throughout.
        Ok(RocksWriteTxn::new(self))
    }

    fn sync(&self) -> Result<()> {
        self.db
            .flush_wal(true)
            .map_err(|e| rocks_error("sync", None, e))
    }
}

#[cfg(test)]
mod tests;
