//! The catalog: a small synced key-value store holding the state of every chunk.
//!
//! One table (`catalog`) of ASCII keys, each value a version byte and a state byte:
//!
//! | key | value | states |
//! | --- | --- | --- |
//! | `hot:chunk:{c:08}` | `[0x01][state]` | `0x01` transient, `0x02` ready |
//! | `chunk:{c:08}:{kind}` | `[0x01][state]` | `0x01` freezing, `0x02` frozen, `0x03` pruning |
//! | `config:geometry` | [`Geometry::to_bytes`] | pinned at first open |
//! | `config:{name}` | caller's bytes | free-form settings of higher crates |
//!
//! Every write is one synced, atomic transaction of the backend ([`Durability::Synced`]):
//! a [`CatalogBatch`] of any number of keys lands entirely or not at all. The catalog also
//! holds the storage root's lock (`{root}/LOCK`, an advisory `flock`): a second process (or
//! a second catalog in this one) on the same root is refused with [`HotError::Locked`].
//!
//! The catalog is generic over the backend ([`KvStore`]); [`Catalog::open_rocksdb`] (the
//! default: see the crate README) and [`Catalog::open_redb`] open it on either.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, Weak};

use storage_traits::kv::{Direction, Durability, KvRead, KvStore, KvWrite, TableSpec};
use store_lmdb_compat::RocksStore;
use store_redb::RedbStore;

use crate::error::{HotError, Result};
use crate::fsync::create_dir_all_durable;
use crate::geometry::{ChunkId, Geometry};
use crate::hot::HotShared;
use crate::layout::{Kind, Layout};

/// The catalog's one table.
pub const CATALOG_TABLE: &str = "catalog";
const TABLES: &[TableSpec] = &[TableSpec::plain(CATALOG_TABLE)];

/// The version byte of every state value.
pub const STATE_VALUE_VERSION: u8 = 1;

const HOT_PREFIX: &str = "hot:chunk:";
const COLD_PREFIX: &str = "chunk:";
const CONFIG_PREFIX: &str = "config:";
const GEOMETRY_KEY: &str = "config:geometry";

/// The backends a catalog directory may be named after; only one may exist per root.
const BACKEND_DIRS: &[&str] = &["rocksdb", "redb"];

/// The state of a chunk's hot store (`hot:chunk:{c:08}`). An absent key means no hot store
/// exists (and no directory: "key absent ⟹ directory gone").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChunkState {
    /// A create or a discard is under way (or was, when a crash struck): the directory may
    /// be absent, partial or whole, and is never read. Open wipes and recreates it; discard
    /// removes it.
    Transient,
    /// The directory exists and holds a usable RocksDB for the chunk.
    Ready,
}

impl ChunkState {
    fn code(self) -> u8 {
        match self {
            ChunkState::Transient => 1,
            ChunkState::Ready => 2,
        }
    }

    /// The state's name (`transient`, `ready`).
    pub fn name(self) -> &'static str {
        match self {
            ChunkState::Transient => "transient",
            ChunkState::Ready => "ready",
        }
    }
}

/// The state of one kind of a chunk's cold artifacts (`chunk:{c:08}:{kind}`). An absent key
/// means no file of that kind exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ColdState {
    /// Being written at its canonical path; not to be read. Marked before any byte is
    /// written.
    Freezing,
    /// Complete and durable (file, directory entry and any new parent synced).
    Frozen,
    /// Being deleted; not to be read. Marked before the unlink.
    Pruning,
}

impl ColdState {
    fn code(self) -> u8 {
        match self {
            ColdState::Freezing => 1,
            ColdState::Frozen => 2,
            ColdState::Pruning => 3,
        }
    }

    /// The state's name (`freezing`, `frozen`, `pruning`).
    pub fn name(self) -> &'static str {
        match self {
            ColdState::Freezing => "freezing",
            ColdState::Frozen => "frozen",
            ColdState::Pruning => "pruning",
        }
    }
}

/// The catalog key of a chunk's hot store: `hot:chunk:{c:08}`.
pub fn hot_key(chunk: ChunkId) -> String {
    format!("{HOT_PREFIX}{chunk}")
}

/// The catalog key of a chunk's cold artifact of `kind`: `chunk:{c:08}:{kind}`.
pub fn cold_key(chunk: ChunkId, kind: &Kind) -> String {
    format!("{COLD_PREFIX}{chunk}:{kind}")
}

fn corrupt(key: &[u8], value: &[u8], reason: impl Into<String>) -> HotError {
    HotError::CorruptCatalog {
        key: String::from_utf8_lossy(key).into_owned(),
        value_hex: hex::encode(value),
        reason: reason.into(),
    }
}

fn decode_state(key: &[u8], value: &[u8]) -> Result<u8> {
    match value {
        [STATE_VALUE_VERSION, code] => Ok(*code),
        [v, _] => Err(corrupt(key, value, format!("unknown value version {v}"))),
        _ => Err(corrupt(key, value, "a state value is 2 bytes")),
    }
}

fn decode_hot(key: &[u8], value: &[u8]) -> Result<ChunkState> {
    match decode_state(key, value)? {
        1 => Ok(ChunkState::Transient),
        2 => Ok(ChunkState::Ready),
        c => Err(corrupt(key, value, format!("unknown hot state {c}"))),
    }
}

fn decode_cold(key: &[u8], value: &[u8]) -> Result<ColdState> {
    match decode_state(key, value)? {
        1 => Ok(ColdState::Freezing),
        2 => Ok(ColdState::Frozen),
        3 => Ok(ColdState::Pruning),
        c => Err(corrupt(key, value, format!("unknown cold state {c}"))),
    }
}

/// Parses the digits of a chunk id: at least eight (zero-padded), more only for ids of
/// nine or ten digits.
fn parse_chunk(key: &[u8], digits: &[u8]) -> Result<ChunkId> {
    if !(8..=10).contains(&digits.len()) || !digits.iter().all(u8::is_ascii_digit) {
        return Err(corrupt(
            key,
            &[],
            "the chunk id is not 8 to 10 decimal digits",
        ));
    }
    let n = digits
        .iter()
        .try_fold(0u32, |n, d| {
            n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
        })
        .ok_or_else(|| corrupt(key, &[], "the chunk id overflows u32"))?;
    if digits.len() > 8 && digits[0] == b'0' {
        return Err(corrupt(
            key,
            &[],
            "a chunk id longer than 8 digits is not zero-padded",
        ));
    }
    Ok(ChunkId(n))
}

/// A set of catalog changes committed atomically by [`Catalog::commit`].
#[derive(Clone, Debug, Default)]
pub struct CatalogBatch {
    ops: Vec<(String, Option<Vec<u8>>)>,
}

impl CatalogBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `hot:chunk:{c:08}`.
    pub fn put_hot(&mut self, chunk: ChunkId, state: ChunkState) -> &mut Self {
        self.ops.push((
            hot_key(chunk),
            Some(vec![STATE_VALUE_VERSION, state.code()]),
        ));
        self
    }

    /// Deletes `hot:chunk:{c:08}`.
    pub fn delete_hot(&mut self, chunk: ChunkId) -> &mut Self {
        self.ops.push((hot_key(chunk), None));
        self
    }

    /// Sets `chunk:{c:08}:{kind}`.
    pub fn put_cold(&mut self, chunk: ChunkId, kind: &Kind, state: ColdState) -> &mut Self {
        self.ops.push((
            cold_key(chunk, kind),
            Some(vec![STATE_VALUE_VERSION, state.code()]),
        ));
        self
    }

    /// Deletes `chunk:{c:08}:{kind}`.
    pub fn delete_cold(&mut self, chunk: ChunkId, kind: &Kind) -> &mut Self {
        self.ops.push((cold_key(chunk, kind), None));
        self
    }

    /// Sets `config:{name}` (not `config:geometry`, which the catalog owns).
    pub fn put_config(&mut self, name: &str, value: &[u8]) -> &mut Self {
        self.ops
            .push((format!("{CONFIG_PREFIX}{name}"), Some(value.to_vec())));
        self
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// The catalog of one storage root. See the module docs.
pub struct Catalog<S: KvStore> {
    // Fields drop in declaration order: the store closes before the lock is released.
    store: S,
    layout: Layout,
    dir: PathBuf,
    backend_dir: &'static str,
    /// The open hot stores and views of each chunk, so a discard can refuse while one is
    /// open and a second writable open is refused before RocksDB's own lock would.
    pub(crate) handles: Mutex<HashMap<ChunkId, Weak<HotShared>>>,
    _lock: File,
}

impl<S: KvStore> std::fmt::Debug for Catalog<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("dir", &self.dir)
            .field("backend", &self.store.backend_name())
            .field("geometry", &self.layout.geometry())
            .finish_non_exhaustive()
    }
}

/// Takes `{root}/LOCK`, creating the root if needed.
fn lock_root(layout: &Layout) -> Result<File> {
    let root = layout.root();
    create_dir_all_durable(root)?;
    let lock_file = layout.lock_file();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_file)
        .map_err(|e| HotError::io("open lock file", &lock_file, None, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => {
            tracing::warn!(root = %root.display(), "storage root is locked by another holder");
            Err(HotError::Locked {
                root: root.to_path_buf(),
                lock_file,
            })
        }
        Err(TryLockError::Error(e)) => Err(HotError::io("lock storage root", &lock_file, None, e)),
    }
}

impl Catalog<RocksStore> {
    /// Opens (creating when missing) the catalog of `layout`'s root on RocksDB, in
    /// `{root}/catalog/rocksdb`.
    pub fn open_rocksdb(layout: Layout) -> Result<Self> {
        Catalog::open_with(layout, "rocksdb", store_lmdb_compat::open)
    }
}

impl Catalog<RedbStore> {
    /// Opens (creating when missing) the catalog of `layout`'s root on redb, in
    /// `{root}/catalog/redb`.
    pub fn open_redb(layout: Layout) -> Result<Self> {
        Catalog::open_with(layout, "redb", RedbStore::open)
    }
}

impl<S: KvStore> Catalog<S> {
    /// Opens the catalog on any backend: `open` opens (creating when missing) a store in a
    /// directory with the given tables. `backend_dir` names the directory under
    /// `{root}/catalog/`; a root whose catalog lives under another backend's name is
    /// refused, as opening an empty catalog there would read as "no hot store is ready" and
    /// wipe them all.
    pub fn open_with(
        layout: Layout,
        backend_dir: &'static str,
        open: impl FnOnce(&Path, &[TableSpec]) -> storage_traits::Result<S>,
    ) -> Result<Self> {
        let lock = lock_root(&layout)?;
        let dir = layout.catalog_dir(backend_dir);
        for other in BACKEND_DIRS.iter().filter(|b| **b != backend_dir) {
            let other_dir = layout.catalog_dir(other);
            if other_dir.exists() {
                return Err(HotError::IncompatibleCatalog {
                    path: dir,
                    reason: format!(
                        "this root's catalog is {} (backend {other}); open it with that backend",
                        other_dir.display()
                    ),
                });
            }
        }
        create_dir_all_durable(&dir)?;
        let store = open(&dir, TABLES).map_err(|source| HotError::Storage {
            operation: "open catalog",
            path: dir.clone(),
            chunk: None,
            height: None,
            source: Box::new(source),
        })?;
        let catalog = Catalog {
            store,
            layout,
            dir,
            backend_dir,
            handles: Mutex::new(HashMap::new()),
            _lock: lock,
        };
        catalog.pin_geometry()?;
        tracing::info!(path = %catalog.dir.display(), backend = catalog.store.backend_name(),
            geometry = ?catalog.layout.geometry(), "catalog opened");
        Ok(catalog)
    }

    fn storage(&self, operation: &'static str) -> impl FnOnce(storage_traits::Error) -> HotError {
        let path = self.dir.clone();
        move |source| HotError::Storage {
            operation,
            path,
            chunk: None,
            height: None,
            source: Box::new(source),
        }
    }

    /// Records the geometry at first open; refuses another one later.
    fn pin_geometry(&self) -> Result<()> {
        let want = self.layout.geometry();
        match self.get_raw(GEOMETRY_KEY)? {
            Some(bytes) => {
                let stored = Geometry::from_bytes(&bytes)?;
                if stored != want {
                    return Err(HotError::IncompatibleCatalog {
                        path: self.dir.clone(),
                        reason: format!(
                            "the root was created with geometry {stored:?} and is opened with {want:?}; \
                             open it with the geometry it was created with"
                        ),
                    });
                }
                Ok(())
            }
            None => {
                let mut w = self
                    .store
                    .begin_write()
                    .map_err(self.storage("catalog begin write"))?;
                w.put(CATALOG_TABLE, GEOMETRY_KEY.as_bytes(), &want.to_bytes())
                    .map_err(self.storage("catalog put"))?;
                w.commit(Durability::Synced)
                    .map_err(self.storage("catalog commit"))
            }
        }
    }

    fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.store
            .begin_read()
            .map_err(self.storage("catalog read"))?
            .get(CATALOG_TABLE, key.as_bytes())
            .map_err(self.storage("catalog get"))
    }

    /// The storage root's layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The geometry the root was created with.
    pub fn geometry(&self) -> Geometry {
        self.layout.geometry()
    }

    /// The catalog's directory (`{root}/catalog/{backend}`).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The backend directory name (`rocksdb`, `redb`).
    pub fn backend(&self) -> &'static str {
        self.backend_dir
    }

    /// The state of `chunk`'s hot store, `None` when it has none.
    pub fn hot_state(&self, chunk: ChunkId) -> Result<Option<ChunkState>> {
        let key = hot_key(chunk);
        self.get_raw(&key)?
            .map(|v| decode_hot(key.as_bytes(), &v))
            .transpose()
    }

    /// The state of `chunk`'s cold artifact of `kind`, `None` when it has none.
    pub fn cold_state(&self, chunk: ChunkId, kind: &Kind) -> Result<Option<ColdState>> {
        let key = cold_key(chunk, kind);
        self.get_raw(&key)?
            .map(|v| decode_cold(key.as_bytes(), &v))
            .transpose()
    }

    /// A `config:{name}` value.
    pub fn config(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.get_raw(&format!("{CONFIG_PREFIX}{name}"))
    }

    /// Every chunk with a hot key, ascending.
    pub fn hot_chunks(&self) -> Result<Vec<(ChunkId, ChunkState)>> {
        let snap = self
            .store
            .begin_read()
            .map_err(self.storage("catalog read"))?;
        let rows = snap
            .prefix(CATALOG_TABLE, HOT_PREFIX.as_bytes(), Direction::Forward)
            .map_err(self.storage("catalog scan"))?;
        let mut out = Vec::new();
        for row in rows {
            let (key, value) = row.map_err(self.storage("catalog scan"))?;
            let chunk = parse_chunk(&key, &key[HOT_PREFIX.len()..])?;
            out.push((chunk, decode_hot(&key, &value)?));
        }
        Ok(out)
    }

    /// Every chunk with a cold key of `kind`, ascending.
    pub fn cold_chunks(&self, kind: &Kind) -> Result<Vec<(ChunkId, ColdState)>> {
        let snap = self
            .store
            .begin_read()
            .map_err(self.storage("catalog read"))?;
        let rows = snap
            .prefix(CATALOG_TABLE, COLD_PREFIX.as_bytes(), Direction::Forward)
            .map_err(self.storage("catalog scan"))?;
        let mut out = Vec::new();
        for row in rows {
            let (key, value) = row.map_err(self.storage("catalog scan"))?;
            // chunk:{c:08}:{kind}
            let rest = &key[COLD_PREFIX.len()..];
            let Some(colon) = rest.iter().position(|b| *b == b':') else {
                return Err(corrupt(&key, &value, "not a chunk:{c:08}:{kind} key"));
            };
            if &rest[colon + 1..] != kind.name().as_bytes() {
                continue;
            }
            out.push((
                parse_chunk(&key, &rest[..colon])?,
                decode_cold(&key, &value)?,
            ));
        }
        Ok(out)
    }

    /// Commits `batch` as one synced atomic transaction: after a crash either every change
    /// is on disk or none is.
    pub fn commit(&self, batch: &CatalogBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        if let Some((key, _)) = batch.ops.iter().find(|(k, _)| k == GEOMETRY_KEY) {
            return Err(HotError::IncompatibleCatalog {
                path: self.dir.clone(),
                reason: format!("{key} is pinned at creation and cannot be changed"),
            });
        }
        let mut w = self
            .store
            .begin_write()
            .map_err(self.storage("catalog begin write"))?;
        for (key, value) in &batch.ops {
            match value {
                Some(v) => w.put(CATALOG_TABLE, key.as_bytes(), v),
                None => w.delete(CATALOG_TABLE, key.as_bytes()),
            }
            .map_err(self.storage("catalog write"))?;
        }
        w.commit(Durability::Synced)
            .map_err(self.storage("catalog commit"))?;
        tracing::debug!(keys = batch.ops.len(), "catalog batch committed");
        Ok(())
    }

    /// Sets one hot key (one synced transaction).
    pub fn put_hot(&self, chunk: ChunkId, state: ChunkState) -> Result<()> {
        self.commit(CatalogBatch::new().put_hot(chunk, state))
    }

    /// Deletes one hot key (one synced transaction).
    pub fn delete_hot(&self, chunk: ChunkId) -> Result<()> {
        self.commit(CatalogBatch::new().delete_hot(chunk))
    }

    /// Sets one cold key (one synced transaction).
    pub fn put_cold(&self, chunk: ChunkId, kind: &Kind, state: ColdState) -> Result<()> {
        self.commit(CatalogBatch::new().put_cold(chunk, kind, state))
    }

    /// Deletes one cold key (one synced transaction).
    pub fn delete_cold(&self, chunk: ChunkId, kind: &Kind) -> Result<()> {
        self.commit(CatalogBatch::new().delete_cold(chunk, kind))
    }

    pub(crate) fn handles(&self) -> MutexGuard<'_, HashMap<ChunkId, Weak<HotShared>>> {
        // The map is only ever inserted into or pruned; a poisoned lock is still sound.
        self.handles.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_have_the_documented_bytes() {
        assert_eq!(hot_key(ChunkId(42)), "hot:chunk:00000042");
        assert_eq!(
            cold_key(ChunkId(7), &Kind::LEDGERS),
            "chunk:00000007:ledgers"
        );
        let mut b = CatalogBatch::new();
        b.put_hot(ChunkId(1), ChunkState::Transient)
            .put_hot(ChunkId(1), ChunkState::Ready)
            .put_cold(ChunkId(1), &Kind::LEDGERS, ColdState::Freezing)
            .put_cold(ChunkId(1), &Kind::LEDGERS, ColdState::Frozen)
            .put_cold(ChunkId(1), &Kind::LEDGERS, ColdState::Pruning);
        let values: Vec<_> = b.ops.iter().map(|(_, v)| v.clone().unwrap()).collect();
        assert_eq!(
            values,
            vec![vec![1, 1], vec![1, 2], vec![1, 1], vec![1, 2], vec![1, 3]]
        );
    }

    #[test]
    fn state_decoding_is_total() {
        let k = b"hot:chunk:00000001";
        assert_eq!(decode_hot(k, &[1, 1]).unwrap(), ChunkState::Transient);
        assert_eq!(decode_hot(k, &[1, 2]).unwrap(), ChunkState::Ready);
        assert_eq!(decode_cold(k, &[1, 3]).unwrap(), ColdState::Pruning);
        for bad in [&[][..], &[1], &[2, 1], &[1, 0], &[1, 3, 0], &[1, 9]] {
            assert!(decode_hot(k, bad).is_err(), "{bad:?}");
        }
        assert!(decode_cold(k, &[1, 4]).is_err());
        assert!(parse_chunk(k, b"0000001").is_err());
        assert!(parse_chunk(k, b"0000001x").is_err());
        assert_eq!(parse_chunk(k, b"99999999").unwrap(), ChunkId(99_999_999));
        assert_eq!(parse_chunk(k, b"4294967295").unwrap(), ChunkId(u32::MAX));
        assert!(parse_chunk(k, b"4294967296").is_err());
        assert!(parse_chunk(k, b"012345678").is_err());
    }
}
