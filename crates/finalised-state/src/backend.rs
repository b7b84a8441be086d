//! The cargo-feature glue that picks a key-value backend. Nothing outside this module
//! names a backend.

use std::path::Path;

use storage_traits::Result;
use storage_traits::kv::{KvStore, TableSpec};

/// A key-value backend the finalised state can open.
pub trait Backend: KvStore + Sized {
    /// The backend's name, also the subdirectory of the store directory holding its files.
    const NAME: &'static str;

    /// The share of `sync_write_batch_bytes` one bulk-sync batch gets: the sync holds the
    /// batch it stages and the one it commits, the latter both as its own rows (which
    /// staging reads until it is committed) and as the backend's copy in the write
    /// transaction, and each of the two threads' allocator arenas keeps some freed memory.
    /// How much the backend's copy costs differs, so the share is measured per backend
    /// (quick ingest shape, peak RSS against the budget, target at most 1.25x; README
    /// "Bulk sync and crash safety").
    const SYNC_BATCH_SHARE: usize;

    /// Opens or creates the backend's files in `dir` with `tables`.
    fn open_in(dir: &Path, tables: &[TableSpec]) -> Result<Self>;
}

/// The names of every backend this crate knows, compiled in or not, so a store written by
/// one is recognised (and refused with a clear message) by a build with the other.
pub const KNOWN_BACKENDS: &[&str] = &["redb", "rocksdb"];

#[cfg(feature = "redb")]
impl Backend for store_redb::RedbStore {
    const NAME: &'static str = "redb";
    /// Halves: peak RSS 0.79–1.15x the budget (quarters 0.14x, but each commit costs redb
    /// a sync and a write of its dirty pages: quarters took 125–130 s on the 10k-block
    /// ingest shape, halves 83–95 s).
    const SYNC_BATCH_SHARE: usize = 2;

    fn open_in(dir: &Path, tables: &[TableSpec]) -> Result<Self> {
        store_redb::RedbStore::open(dir, tables)
    }
}

#[cfg(feature = "rocksdb")]
impl Backend for store_lmdb_compat::RocksStore {
    const NAME: &'static str = "rocksdb";
    /// Quarters: peak RSS 0.60–1.51x the budget (halves 1.7–2.0x, thirds 1.3–1.9x); the
    /// write batch, the memtable and their allocator arena grow with the batch.
    const SYNC_BATCH_SHARE: usize = 4;

    fn open_in(dir: &Path, tables: &[TableSpec]) -> Result<Self> {
        store_lmdb_compat::open(dir, tables)
    }
}

/// The backend this build uses by default: RocksDB when the `rocksdb` feature is on,
/// otherwise redb.
#[cfg(feature = "rocksdb")]
pub type DefaultBackend = store_lmdb_compat::RocksStore;

/// The backend this build uses by default: RocksDB when the `rocksdb` feature is on,
/// otherwise redb.
#[cfg(all(feature = "redb", not(feature = "rocksdb")))]
pub type DefaultBackend = store_redb::RedbStore;
