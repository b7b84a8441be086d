//! The cargo-feature glue that picks a key-value backend. Nothing outside this module
//! names a backend.

use std::path::Path;

use storage_traits::Result;
use storage_traits::kv::{KvStore, TableSpec};

/// A key-value backend the finalised state can open.
pub trait Backend: KvStore + Sized {
    /// The backend's name, also the subdirectory of the store directory holding its files.
    const NAME: &'static str;

    /// Opens or creates the backend's files in `dir` with `tables`.
    fn open_in(dir: &Path, tables: &[TableSpec]) -> Result<Self>;
}

/// The names of every backend this crate knows, compiled in or not, so a store written by
/// one is recognised (and refused with a clear message) by a build with the other.
pub const KNOWN_BACKENDS: &[&str] = &["redb", "rocksdb"];

#[cfg(feature = "redb")]
impl Backend for store_redb::RedbStore {
    const NAME: &'static str = "redb";

    fn open_in(dir: &Path, tables: &[TableSpec]) -> Result<Self> {
        store_redb::RedbStore::open(dir, tables)
    }
}

#[cfg(feature = "rocksdb")]
impl Backend for store_lmdb_compat::RocksStore {
    const NAME: &'static str = "rocksdb";

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
