//! The hot store of one chunk: a RocksDB (through `store-lmdb-compat`) with two tables.
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `ledgers` | height, `u32` big-endian | the payload framed by [`crate::codec`] |
//! | `meta` | `chunk` | `[0x01][chunk u32 BE][first height u32 BE][last height u32 BE]` |
//!
//! Each height is one synced atomic write batch, so after any crash a height is fully
//! present or fully absent. Heights arrive in order, one at a time, with no gaps: the
//! highest key of `ledgers` is the chunk's watermark, and every height from the chunk's
//! first to the watermark is present.

use std::borrow::Cow;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use storage_traits::kv::{Direction, Durability, KeyRange, KvRead, KvStore, KvWrite, TableSpec};
use store_lmdb_compat::{RocksOptions, RocksStore};

use crate::codec::{self, Codec};
use crate::error::{HotError, Result};
use crate::geometry::{ChunkId, Geometry};
use crate::hook::Hook;

/// The table of payloads, keyed by big-endian height.
pub const LEDGERS_TABLE: &str = "ledgers";
/// The table of the store's own record (which chunk it holds).
pub const META_TABLE: &str = "meta";
const META_KEY: &[u8] = b"chunk";
const META_VERSION: u8 = 1;

pub(crate) const HOT_TABLES: &[TableSpec] = &[
    TableSpec::plain(LEDGERS_TABLE),
    TableSpec::plain(META_TABLE),
];

/// The file RocksDB keeps in every database directory; its absence under a `ready` key is
/// hot-volume loss (opening would otherwise create an empty database in its place).
pub(crate) const ROCKSDB_MARKER: &str = "CURRENT";

/// The visitor of [`HotView::for_each_height`]: a height and its payload in, continue or
/// stop out.
pub type HeightVisitor<'a> = dyn FnMut(u32, &[u8]) -> Result<ControlFlow<()>> + 'a;

/// Options of the hot stores a [`crate::HotTier`] opens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HotOptions {
    /// How new payloads are stored (each value records its codec; default none).
    pub codec: Codec,
    /// RocksDB tuning of each chunk's store.
    pub rocks: RocksOptions,
}

/// What is shared by a chunk's writer and its views: the open database.
pub(crate) struct HotShared {
    pub(crate) chunk: ChunkId,
    pub(crate) dir: PathBuf,
    pub(crate) first: u32,
    pub(crate) last: u32,
    pub(crate) store: RocksStore,
}

impl HotShared {
    /// Opens the database in `dir` (which must already be a chunk store, or be new when
    /// `create` is set, in which case the meta record is written, synced).
    pub(crate) fn open(
        geometry: &Geometry,
        chunk: ChunkId,
        dir: &Path,
        options: RocksOptions,
        create: bool,
    ) -> Result<Self> {
        let first = geometry.first_height(chunk)?;
        let last = geometry.last_height(chunk)?;
        let store =
            RocksStore::open(dir, HOT_TABLES, options).map_err(|source| HotError::Storage {
                operation: "open hot store",
                path: dir.to_path_buf(),
                chunk: Some(chunk),
                height: None,
                source: Box::new(source),
            })?;
        let shared = HotShared {
            chunk,
            dir: dir.to_path_buf(),
            first,
            last,
            store,
        };
        let mut record = Vec::with_capacity(13);
        record.push(META_VERSION);
        record.extend_from_slice(&chunk.0.to_be_bytes());
        record.extend_from_slice(&first.to_be_bytes());
        record.extend_from_slice(&last.to_be_bytes());
        if create {
            let mut w = shared
                .store
                .begin_write()
                .map_err(shared.storage("begin write", None))?;
            w.put(META_TABLE, META_KEY, &record)
                .map_err(shared.storage("write meta record", None))?;
            w.commit(Durability::Synced)
                .map_err(shared.storage("commit meta record", None))?;
        } else {
            let stored = shared
                .store
                .begin_read()
                .map_err(shared.storage("begin read", None))?
                .get(META_TABLE, META_KEY)
                .map_err(shared.storage("read meta record", None))?;
            match stored {
                Some(s) if s == record => {}
                Some(s) => {
                    return Err(shared.corrupt(
                        None,
                        format!(
                            "the meta record {} is not this chunk's ({}): the directory holds another chunk or another geometry",
                            hex::encode(&s),
                            hex::encode(&record)
                        ),
                    ));
                }
                None => {
                    return Err(shared.corrupt(
                        None,
                        "the meta record is missing: not a hot store this crate created".to_owned(),
                    ));
                }
            }
        }
        Ok(shared)
    }

    fn storage(
        &self,
        operation: &'static str,
        height: Option<u32>,
    ) -> impl FnOnce(storage_traits::Error) -> HotError + '_ {
        move |source| HotError::Storage {
            operation,
            path: self.dir.clone(),
            chunk: Some(self.chunk),
            height,
            source: Box::new(source),
        }
    }

    fn corrupt(&self, height: Option<u32>, reason: String) -> HotError {
        HotError::CorruptHot {
            chunk: self.chunk,
            height,
            path: self.dir.clone(),
            reason,
        }
    }

    fn decode_key(&self, key: &[u8]) -> Result<u32> {
        let b: [u8; 4] = key.try_into().map_err(|_| {
            self.corrupt(
                None,
                format!("key {} of table ledgers is not 4 bytes", hex::encode(key)),
            )
        })?;
        let h = u32::from_be_bytes(b);
        if h < self.first || h > self.last {
            return Err(self.corrupt(
                Some(h),
                format!(
                    "height {h} is outside the chunk ({}..={})",
                    self.first, self.last
                ),
            ));
        }
        Ok(h)
    }

    /// The highest committed height, checking the store starts at the chunk's first height.
    pub(crate) fn read_watermark(&self) -> Result<Option<u32>> {
        let snap = self
            .store
            .begin_read()
            .map_err(self.storage("begin read", None))?;
        let Some((last_key, _)) = snap
            .last(LEDGERS_TABLE)
            .map_err(self.storage("read watermark", None))?
        else {
            return Ok(None);
        };
        let top = self.decode_key(&last_key)?;
        let bottom = match snap
            .first(LEDGERS_TABLE)
            .map_err(self.storage("read first height", None))?
        {
            Some((k, _)) => self.decode_key(&k)?,
            None => top,
        };
        if bottom != self.first {
            return Err(self.corrupt(
                Some(bottom),
                format!(
                    "the lowest stored height is {bottom}, not the chunk's first {}",
                    self.first
                ),
            ));
        }
        Ok(Some(top))
    }

    fn get(&self, height: u32) -> Result<Option<Vec<u8>>> {
        if height < self.first || height > self.last {
            return Ok(None);
        }
        let value = self
            .store
            .begin_read()
            .map_err(self.storage("begin read", Some(height)))?
            .get(LEDGERS_TABLE, &height.to_be_bytes())
            .map_err(self.storage("read height", Some(height)))?;
        value
            .map(|v| {
                codec::decode(&v)
                    .map(Cow::into_owned)
                    .map_err(|reason| self.corrupt(Some(height), reason))
            })
            .transpose()
    }

    fn visit(&self, from: u32, to: u32, visit: &mut HeightVisitor<'_>) -> Result<()> {
        let snap = self
            .store
            .begin_read()
            .map_err(self.storage("begin read", None))?;
        let range = KeyRange::inclusive(from.to_be_bytes(), to.to_be_bytes());
        // The backend's visitor returns its own error type; ours travels beside it.
        let mut ours: Option<HotError> = None;
        let result = snap.visit_range(LEDGERS_TABLE, range, Direction::Forward, &mut |k, v| {
            let step = self.decode_key(k).and_then(|h| {
                let payload = codec::decode(v).map_err(|reason| self.corrupt(Some(h), reason))?;
                visit(h, &payload)
            });
            match step {
                Ok(flow) => Ok(flow),
                Err(e) => {
                    ours = Some(e);
                    Ok(ControlFlow::Break(()))
                }
            }
        });
        if let Some(e) = ours {
            return Err(e);
        }
        result.map_err(self.storage("scan heights", None))
    }
}

/// The writable hot store of one chunk, from [`crate::HotTier::open_hot_db_for_chunk`].
/// Dropping it closes the database (once every [`HotView`] of it is gone too).
pub struct HotStore {
    pub(crate) shared: Arc<HotShared>,
    pub(crate) watermark: Option<u32>,
    pub(crate) codec: Codec,
    pub(crate) hook: Hook,
}

impl std::fmt::Debug for HotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotStore")
            .field("chunk", &self.shared.chunk)
            .field("dir", &self.shared.dir)
            .field("watermark", &self.watermark)
            .field("codec", &self.codec)
            .finish()
    }
}

impl HotStore {
    /// The chunk.
    pub fn chunk(&self) -> ChunkId {
        self.shared.chunk
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.shared.dir
    }

    /// The chunk's heights.
    pub fn heights(&self) -> std::ops::RangeInclusive<u32> {
        self.shared.first..=self.shared.last
    }

    /// The highest committed height (the chunk's watermark), `None` when empty.
    pub fn watermark(&self) -> Option<u32> {
        self.watermark
    }

    /// The height [`HotStore::put_height`] expects next, `None` when the chunk is full.
    pub fn next_height(&self) -> Option<u32> {
        match self.watermark {
            None => Some(self.shared.first),
            Some(w) if w < self.shared.last => Some(w + 1),
            Some(_) => None,
        }
    }

    /// Whether every height of the chunk is committed.
    pub fn is_complete(&self) -> bool {
        self.watermark == Some(self.shared.last)
    }

    /// Commits `height` with `payload` as one synced atomic write batch: when this returns
    /// `Ok` the height is on disk (acknowledged); after a crash it is fully present or fully
    /// absent. `height` must be [`HotStore::next_height`].
    pub fn put_height(&mut self, height: u32, payload: &[u8]) -> Result<()> {
        let expected = match self.watermark {
            None => u64::from(self.shared.first),
            Some(w) => u64::from(w) + 1,
        };
        if u64::from(height) != expected || height > self.shared.last {
            return Err(HotError::NotNextHeight {
                chunk: self.shared.chunk,
                height,
                expected,
                last_height: self.shared.last,
                path: self.shared.dir.clone(),
            });
        }
        let value = codec::encode(self.codec, payload).map_err(|reason| HotError::Encode {
            chunk: self.shared.chunk,
            height,
            reason,
        })?;
        self.hook.step("ingest: commit height")?;
        let s = &self.shared;
        let mut w = s
            .store
            .begin_write()
            .map_err(s.storage("begin write", Some(height)))?;
        w.put(LEDGERS_TABLE, &height.to_be_bytes(), &value)
            .map_err(s.storage("write height", Some(height)))?;
        w.commit(Durability::Synced)
            .map_err(s.storage("commit height", Some(height)))?;
        // Committed and synced; a crash from here on keeps the height though the caller
        // never saw the acknowledgement.
        self.hook.step("ingest: acknowledge")?;
        self.watermark = Some(height);
        Ok(())
    }

    /// The payload of `height`, `None` when it is not (yet) stored.
    pub fn get(&self, height: u32) -> Result<Option<Vec<u8>>> {
        self.shared.get(height)
    }

    /// A read-only view of this chunk sharing the open database (it sees later commits).
    pub fn view(&self) -> HotView {
        HotView {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// A read-only view of one chunk's hot store, for freezing. It keeps the database open:
/// drop every view of a chunk before discarding it (a discard refuses while one is open).
#[derive(Clone)]
pub struct HotView {
    pub(crate) shared: Arc<HotShared>,
}

impl std::fmt::Debug for HotView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotView")
            .field("chunk", &self.shared.chunk)
            .field("dir", &self.shared.dir)
            .finish()
    }
}

impl HotView {
    /// The chunk.
    pub fn chunk(&self) -> ChunkId {
        self.shared.chunk
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.shared.dir
    }

    /// The chunk's heights.
    pub fn heights(&self) -> std::ops::RangeInclusive<u32> {
        self.shared.first..=self.shared.last
    }

    /// The highest committed height now, `None` when empty.
    pub fn watermark(&self) -> Result<Option<u32>> {
        self.shared.read_watermark()
    }

    /// Whether every height of the chunk is committed.
    pub fn is_complete(&self) -> Result<bool> {
        Ok(self.watermark()? == Some(self.shared.last))
    }

    /// The payload of `height`, `None` when it is not stored.
    pub fn get(&self, height: u32) -> Result<Option<Vec<u8>>> {
        self.shared.get(height)
    }

    /// Calls `visit` with each stored height in `from..=to` and its payload, ascending, from
    /// one consistent snapshot; `visit` returns [`ControlFlow::Break`] to stop early, and an
    /// error from it stops the scan and is returned.
    pub fn for_each_height(
        &self,
        from: u32,
        to: u32,
        mut visit: impl FnMut(u32, &[u8]) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        if from > to {
            return Ok(());
        }
        self.shared.visit(from, to, &mut visit)
    }
}
