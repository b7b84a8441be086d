//! The hot-chunk lifecycle: the `transient`/`ready` state machine of `hot:chunk:{c:08}`.
//!
//! ```text
//!            open (absent)                    open (ready)
//!   absent ──────────────▶ transient ──▶ ready ◀────────── (reopen, dir present)
//!     ▲      mark transient    wipe, create,  │  │
//!     │                        sync, mark     │  └── dir missing ─▶ HotVolumeLost (fatal)
//!     │                        ready          │
//!     └──── delete key ◀── rmdir, sync ◀── transient ◀── discard (mark transient)
//! ```
//!
//! Commit order and crash reconciliation (every step before the next is synced):
//!
//! **open_hot_db_for_chunk**, key absent or `transient`:
//! 1. put `transient` — crash before: nothing changed; crash after: key `transient`.
//! 2. remove the directory, sync `hot/` — crash after: `transient`, no directory.
//! 3. create the directory (syncing `hot/`, and the root when `hot/` was new), create the
//!    RocksDB, write its meta record (synced) — crash after: `transient`, a whole or
//!    partial store.
//! 4. sync the directory, `hot/` and the root — crash after: `transient`, a durable store.
//! 5. put `ready` — done.
//!
//! A crash anywhere leaves key `transient` (or absent, before step 1): the next open wipes
//! and recreates, the next discard removes. No height is lost: heights are only written
//! after step 5.
//!
//! **open_hot_db_for_chunk**, key `ready`: the directory (and RocksDB's `CURRENT` inside it)
//! must exist, else [`HotError::HotVolumeLost`], never a re-creation. The store opens, its
//! meta record is checked against the chunk, and its highest height is the watermark.
//!
//! **put_height**: one synced write batch; nothing else.
//!
//! **discard_hot_db_for_chunk** (refused while a store or view of the chunk is open):
//! 1. put `transient` — crash after: `transient` with the directory.
//! 2. remove the directory — crash after: `transient`, directory gone or partly gone.
//! 3. sync `hot/` — crash after: `transient`, the removal durable.
//! 4. delete the key — done ("key absent ⟹ directory gone").
//!
//! Re-running the discard after a crash at any step finishes it; so does an open (which
//! wipes a `transient` chunk), and [`HotTier::sweep_transient`] at startup.

use std::path::Path;
use std::sync::Arc;

use storage_traits::kv::KvStore;

use crate::catalog::{Catalog, ChunkState, hot_key};
use crate::error::{HotError, Result};
use crate::fsync::{create_dir_all_durable, fsync_dir, fsync_parent, remove_dir_all_durable};
use crate::geometry::ChunkId;
use crate::hook::Hook;
use crate::hot::{HotOptions, HotShared, HotStore, HotView, ROCKSDB_MARKER};

/// The hot tier of one storage root: opens, views and discards per-chunk hot stores,
/// keeping the catalog's hot keys in step. See the module docs for the commit order.
pub struct HotTier<S: KvStore> {
    catalog: Arc<Catalog<S>>,
    options: HotOptions,
    hook: Hook,
}

impl<S: KvStore> std::fmt::Debug for HotTier<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotTier")
            .field("catalog", &self.catalog)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Whether `dir` holds a hot store; otherwise what is missing.
fn presence(dir: &Path) -> std::result::Result<(), String> {
    if !dir.is_dir() {
        return Err(String::new());
    }
    if !dir.join(ROCKSDB_MARKER).is_file() {
        return Err(format!(
            " (the directory exists but holds no database: {ROCKSDB_MARKER} is missing)"
        ));
    }
    Ok(())
}

impl<S: KvStore> HotTier<S> {
    /// The hot tier over `catalog`.
    pub fn new(catalog: Arc<Catalog<S>>, options: HotOptions) -> Self {
        HotTier {
            catalog,
            options,
            hook: Hook::default(),
        }
    }

    /// Installs a crash hook that stops operations at a chosen step (tests only).
    #[cfg(any(test, feature = "crash-hooks"))]
    pub fn with_crash_hook(mut self, hook: Arc<crate::hook::CrashHook>) -> Self {
        self.hook.inner = Some(hook);
        self
    }

    /// The catalog.
    pub fn catalog(&self) -> &Arc<Catalog<S>> {
        &self.catalog
    }

    /// The options new stores are opened with.
    pub fn options(&self) -> HotOptions {
        self.options
    }

    fn lost(&self, chunk: ChunkId, dir: &Path, detail: String) -> Result<HotError> {
        let g = self.catalog.geometry();
        Ok(HotError::HotVolumeLost {
            chunk,
            key: hot_key(chunk),
            path: dir.to_path_buf(),
            first_height: g.first_height(chunk)?,
            last_height: g.last_height(chunk)?,
            detail,
        })
    }

    /// How many live handles (stores and views) `chunk` has; prunes dead entries.
    fn live_handles(
        handles: &mut std::collections::HashMap<ChunkId, std::sync::Weak<HotShared>>,
        chunk: ChunkId,
    ) -> Option<Arc<HotShared>> {
        handles.retain(|_, w| w.strong_count() > 0);
        handles.get(&chunk).and_then(std::sync::Weak::upgrade)
    }

    /// Opens `chunk`'s hot store for writing, creating it when the catalog has no `ready`
    /// key for it:
    /// - `ready` → open the existing store (its watermark is the highest committed height);
    ///   a missing directory is [`HotError::HotVolumeLost`];
    /// - `transient` or absent → wipe any directory and create an empty store (durably),
    ///   then mark it `ready`.
    ///
    /// Refused with [`HotError::ChunkInUse`] while another store or view of the chunk is
    /// open.
    pub fn open_hot_db_for_chunk(&self, chunk: ChunkId) -> Result<HotStore> {
        let layout = self.catalog.layout();
        let geometry = layout.geometry();
        let dir = layout.hot_chunk_dir(chunk);
        let mut handles = self.catalog.handles();
        if let Some(live) = Self::live_handles(&mut handles, chunk) {
            return Err(HotError::ChunkInUse {
                chunk,
                path: dir,
                operation: "opening it for writing",
                holders: format!("{} open handle(s)", Arc::strong_count(&live) - 1),
            });
        }
        let state = self.catalog.hot_state(chunk)?;
        let shared = match state {
            Some(ChunkState::Ready) => {
                if let Err(detail) = presence(&dir) {
                    let e = self.lost(chunk, &dir, detail)?;
                    tracing::error!(chunk = chunk.0, path = %dir.display(), "{e}");
                    return Err(e);
                }
                HotShared::open(&geometry, chunk, &dir, self.options.rocks, false)?
            }
            None | Some(ChunkState::Transient) => {
                tracing::info!(chunk = chunk.0, path = %dir.display(),
                    state = state.map_or("absent", ChunkState::name), "creating hot store");
                self.hook.step("open: mark transient")?;
                self.catalog.put_hot(chunk, ChunkState::Transient)?;
                self.hook.step("open: wipe directory")?;
                remove_dir_all_durable(&dir).map_err(|e| with_chunk(e, chunk))?;
                self.hook.step("open: create store")?;
                create_dir_all_durable(&dir).map_err(|e| with_chunk(e, chunk))?;
                let shared = HotShared::open(&geometry, chunk, &dir, self.options.rocks, true)?;
                self.hook.step("open: sync directory")?;
                fsync_dir(&dir).map_err(|e| with_chunk(e, chunk))?;
                fsync_parent(&dir).map_err(|e| with_chunk(e, chunk))?;
                fsync_dir(layout.root()).map_err(|e| with_chunk(e, chunk))?;
                self.hook.step("open: mark ready")?;
                self.catalog.put_hot(chunk, ChunkState::Ready)?;
                shared
            }
        };
        let watermark = shared.read_watermark()?;
        let shared = Arc::new(shared);
        handles.insert(chunk, Arc::downgrade(&shared));
        tracing::info!(chunk = chunk.0, path = %dir.display(), ?watermark, "hot store open");
        Ok(HotStore {
            shared,
            watermark,
            codec: self.options.codec,
            hook: self.hook.clone(),
        })
    }

    /// A read-only view of `chunk`'s hot store, for freezing. It shares the database of an
    /// open [`HotStore`] of the chunk, or opens the store when none is open; the catalog
    /// must say `ready` ([`HotError::NotReady`] otherwise) and the directory must exist
    /// ([`HotError::HotVolumeLost`] otherwise).
    pub fn open_view(&self, chunk: ChunkId) -> Result<HotView> {
        let layout = self.catalog.layout();
        let dir = layout.hot_chunk_dir(chunk);
        let mut handles = self.catalog.handles();
        if let Some(live) = Self::live_handles(&mut handles, chunk) {
            return Ok(HotView { shared: live });
        }
        match self.catalog.hot_state(chunk)? {
            Some(ChunkState::Ready) => {}
            other => {
                return Err(HotError::NotReady {
                    chunk,
                    key: hot_key(chunk),
                    state: other.map_or("absent", ChunkState::name),
                    path: dir,
                });
            }
        }
        if let Err(detail) = presence(&dir) {
            return Err(self.lost(chunk, &dir, detail)?);
        }
        let shared = Arc::new(HotShared::open(
            &layout.geometry(),
            chunk,
            &dir,
            self.options.rocks,
            false,
        )?);
        handles.insert(chunk, Arc::downgrade(&shared));
        Ok(HotView { shared })
    }

    /// Drops `chunk`'s hot store: mark `transient`, remove the directory, sync `hot/`,
    /// delete the key. Idempotent: re-running it after a crash at any step finishes the
    /// job, and a chunk with neither key nor directory is left as it is. Refused with
    /// [`HotError::ChunkInUse`] while a store or view of the chunk is open, so a freeze's
    /// read handle is always closed before its chunk is discarded.
    pub fn discard_hot_db_for_chunk(&self, chunk: ChunkId) -> Result<()> {
        let dir = self.catalog.layout().hot_chunk_dir(chunk);
        let mut handles = self.catalog.handles();
        if let Some(live) = Self::live_handles(&mut handles, chunk) {
            return Err(HotError::ChunkInUse {
                chunk,
                path: dir,
                operation: "discarding it",
                holders: format!("{} open handle(s)", Arc::strong_count(&live) - 1),
            });
        }
        let state = self.catalog.hot_state(chunk)?;
        if state.is_none() && !dir.exists() {
            return Ok(());
        }
        tracing::info!(chunk = chunk.0, path = %dir.display(),
            state = state.map_or("absent", ChunkState::name), "discarding hot store");
        self.hook.step("discard: mark transient")?;
        self.catalog.put_hot(chunk, ChunkState::Transient)?;
        self.hook.step("discard: remove directory")?;
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(HotError::io("remove hot directory", &dir, Some(chunk), e)),
        }
        self.hook.step("discard: sync parent")?;
        let hot_root = self.catalog.layout().hot_root();
        if hot_root.is_dir() {
            fsync_dir(&hot_root).map_err(|e| with_chunk(e, chunk))?;
        }
        self.hook.step("discard: delete key")?;
        self.catalog.delete_hot(chunk)?;
        Ok(())
    }

    /// The recovery from [`HotError::HotVolumeLost`] when the volume cannot be restored:
    /// forgets `chunk`'s hot store (deletes its key, through a discard) so the chunk can be
    /// re-ingested from the bulk backend. Refused with [`HotError::NotLost`] when the store
    /// is present, as that would throw away acknowledged heights.
    pub fn forget_lost_chunk(&self, chunk: ChunkId) -> Result<()> {
        let dir = self.catalog.layout().hot_chunk_dir(chunk);
        if presence(&dir).is_ok() {
            return Err(HotError::NotLost { chunk, path: dir });
        }
        tracing::warn!(chunk = chunk.0, path = %dir.display(),
            "forgetting a lost hot store; its heights must be re-ingested");
        self.discard_hot_db_for_chunk(chunk)
    }

    /// Finishes every interrupted create or discard: discards each chunk whose key is
    /// `transient`. Returns the chunks swept. Run at startup (opens reconcile on their own,
    /// so this only reclaims space of chunks nobody will open again).
    pub fn sweep_transient(&self) -> Result<Vec<ChunkId>> {
        let mut swept = Vec::new();
        for (chunk, state) in self.catalog.hot_chunks()? {
            if state == ChunkState::Transient {
                self.discard_hot_db_for_chunk(chunk)?;
                swept.push(chunk);
            }
        }
        Ok(swept)
    }
}

/// Adds the chunk to an I/O error that lacks one.
fn with_chunk(e: HotError, chunk: ChunkId) -> HotError {
    match e {
        HotError::Io {
            operation,
            path,
            chunk: None,
            source,
        } => HotError::Io {
            operation,
            path,
            chunk: Some(chunk),
            source,
        },
        other => other,
    }
}
