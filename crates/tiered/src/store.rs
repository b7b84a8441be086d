//! The tiered store: opening and reconciling the tiers, ingest, read routing and status.
//!
//! # Commit order of one height
//!
//! 1. the finalised state: `write_block` (one synced transaction; it validates the block
//!    and writes nothing when the block is refused);
//! 2. the hot store of the height's chunk: `put_height` with the raw payload (one synced
//!    RocksDB batch; the chunk's hot store is created first when the height opens a chunk);
//! 3. acknowledge: the tip moves and `ingest` returns `Ok`.
//!
//! A crash before 1 leaves nothing; between 1 and 2 the finalised state is one height
//! ahead of the payload tier; after 2 both hold the height (it may not have been
//! acknowledged, and the caller resumes at `tip() + 1`). Open reconciles: the tier that is
//! behind catches up from the other — the payload tier re-encodes the block the finalised
//! state returns (`IndexedBlock` round-trips byte for byte), the finalised state decodes
//! the payload. Nothing is acknowledged before it is durable in both.
//!
//! The finalised state goes first because it is the one that validates: a refused block
//! must not reach the hot store, which has no delete.
//!
//! # The raw payload of a height
//!
//! `IndexedBlock::to_bytes()`: the block's canonical versioned encoding (`storage-traits`),
//! the same bytes the fixture format and `coldpack::LocalDirBackend` carry. The payload pack
//! of a chunk holds one record per height with exactly these bytes; `read_block` decodes
//! them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::RangeInclusive;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coldpack::derived::TxidPrefixExtractor;
use coldpack::{BulkBackend, Cas, FreezeConfig, Freezer, PackReader};
use finalised_state::DefaultFinalisedState;
use hotchunk::{
    ChunkId, ChunkState, ColdState, DefaultCatalog, Geometry, HotStore, HotTier, HotView, Kind,
    Layout, RocksStore,
};
use storage_traits::Versioned;
use storage_traits::capability::{DbWrite, IndexedBlockExt};
use storage_traits::model::{Height, IndexedBlock};

use crate::config::{PAYLOAD_KIND, TieredConfig};
use crate::error::{Error, Result};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values are caches and handles re-derived from disk; a panic while one
    // was held leaves nothing inconsistent on disk.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn kind(name: &str) -> Result<Kind> {
    Ok(Kind::named(name)?)
}

fn not_available(what: String) -> Error {
    Error::Storage(storage_traits::Error::NotAvailable { what })
}

/// Which tier serves a height.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// The chunk's hot store (the chunk is not frozen yet).
    Hot,
    /// The chunk's payload pack.
    Cold,
}

/// One chunk as the catalog sees it (for `strata status`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkStatus {
    /// The chunk.
    pub chunk: u32,
    /// Its heights.
    pub heights: RangeInclusive<u32>,
    /// Its hot store's key (`None`: no hot store).
    pub hot: Option<ChunkState>,
    /// Each configured kind's key (`None`: no file).
    pub cold: Vec<(String, Option<ColdState>)>,
}

/// What [`TieredStore::open`] repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Hot stores whose interrupted create or discard was finished.
    pub swept_hot: Vec<u32>,
    /// coldpack's reconciliation of interrupted freezes and prunes.
    pub cold: coldpack::process::ReconcileReport,
    /// Heights the payload tier re-derived from the finalised state.
    pub hot_caught_up: Option<RangeInclusive<u32>>,
    /// Heights the finalised state re-derived from the payload tier.
    pub finalised_caught_up: Option<RangeInclusive<u32>>,
}

/// Wakes the background lifecycle: a chunk closed, or it must stop.
#[derive(Default)]
pub(crate) struct Signal {
    state: Mutex<SignalState>,
    cv: Condvar,
}

#[derive(Default)]
struct SignalState {
    pending: bool,
    stop: bool,
}

impl Signal {
    pub(crate) fn notify(&self) {
        lock(&self.state).pending = true;
        self.cv.notify_all();
    }

    pub(crate) fn set_stop(&self, stop: bool) {
        lock(&self.state).stop = stop;
        self.cv.notify_all();
    }

    /// Waits up to `timeout` for a notification; clears it. Returns whether to stop.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        let mut g = lock(&self.state);
        if !g.pending && !g.stop {
            g = self
                .cv
                .wait_timeout(g, timeout)
                .map_or_else(|p| p.into_inner().0, |(g, _)| g);
        }
        g.pending = false;
        g.stop
    }
}

/// The ingest side: the open hot store of the chunk being written.
#[derive(Default)]
struct Writer {
    store: Option<HotStore>,
    /// A height reached the finalised state but not the hot store (an error between the
    /// two commits): the next ingest catches the hot store up first.
    behind: bool,
}

pub(crate) struct Inner {
    pub(crate) config: TieredConfig,
    pub(crate) layout: Layout,
    pub(crate) catalog: Arc<DefaultCatalog>,
    pub(crate) tier: HotTier<RocksStore>,
    pub(crate) cas: Cas,
    pub(crate) freeze: FreezeConfig,
    pub(crate) finalised: DefaultFinalisedState,
    pub(crate) backend: Option<Arc<dyn BulkBackend>>,
    writer: Mutex<Writer>,
    /// The acknowledged tip: durable in both tiers.
    tip: Mutex<Option<u32>>,
    /// Read handles of hot chunks, shared with the writer when it is the same chunk.
    views: Mutex<HashMap<u32, HotView>>,
    /// Open payload packs.
    packs: Mutex<HashMap<u32, Arc<PackReader>>>,
    /// Readers hold it shared; dropping a read handle before a discard or prune takes it
    /// exclusively, so no read handle of a chunk is open while it is discarded.
    pub(crate) routing: RwLock<()>,
    /// Serialises ticks, backfills and GC.
    pub(crate) lifecycle_lock: Mutex<()>,
    pub(crate) signal: Signal,
}

/// The tiered store: a finalised state, per-chunk hot stores for the newest heights, and
/// immutable packs for frozen chunks, under one storage root. Cheap to clone (the clones
/// share everything); one process per root (the catalog's lock).
///
/// ```no_run
/// use tiered::{TieredConfig, TieredStore};
/// # fn blocks() -> Vec<storage_traits::model::IndexedBlock> { Vec::new() }
/// let store = TieredStore::open(TieredConfig::new("/var/lib/strata"), None)?;
/// let lifecycle = store.start_lifecycle();      // freezes closed chunks in the background
/// for block in blocks() {
///     store.ingest(block)?;                      // durable in both tiers when Ok
/// }
/// let payload = store.read_payload(0)?;          // hot store or pack
/// lifecycle.stop()?;
/// # Ok::<(), tiered::Error>(())
/// ```
#[derive(Clone)]
pub struct TieredStore {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for TieredStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredStore")
            .field("root", &self.inner.config.root)
            .field("tip", &self.tip())
            .finish_non_exhaustive()
    }
}

impl TieredStore {
    /// Opens (creating when missing) the store at `config.root`, then reconciles it:
    /// finishes interrupted hot-store creates and discards, reconciles interrupted freezes
    /// and prunes (coldpack), and lets the tier that is behind catch up (see the module
    /// docs). `backend` is the bulk backend backfills read from (`None`: backfill only from
    /// local sources).
    pub fn open(config: TieredConfig, backend: Option<Arc<dyn BulkBackend>>) -> Result<Self> {
        Self::open_with_report(config, backend).map(|(s, _)| s)
    }

    /// [`TieredStore::open`], also saying what was repaired.
    pub fn open_with_report(
        config: TieredConfig,
        backend: Option<Arc<dyn BulkBackend>>,
    ) -> Result<(Self, OpenReport)> {
        check_config(&config)?;
        std::fs::create_dir_all(&config.root)
            .map_err(|e| Error::Storage(storage_traits::Error::io(config.root.clone(), e)))?;
        let layout = Layout::new(&config.root, config.geometry);
        let catalog = Arc::new(DefaultCatalog::open_rocksdb(layout.clone())?);
        let tier = HotTier::new(catalog.clone(), config.hot);
        let cas = Cas::open(config.cas_dir())?;
        let mut freeze = FreezeConfig::new(PAYLOAD_KIND, config.pack_codec);
        if config.txid_index {
            freeze = freeze.with_key_index(
                crate::config::TXID_INDEX_KIND,
                Arc::new(TxidPrefixExtractor),
                config.pack_codec,
            );
        }
        freeze.backend_timeout = config.backend_timeout;
        freeze.backend_poll = config.backend_poll;
        let finalised = DefaultFinalisedState::open(config.finalised_config())?;
        let inner = Inner {
            config,
            layout,
            catalog,
            tier,
            cas,
            freeze,
            finalised,
            backend,
            writer: Mutex::new(Writer::default()),
            tip: Mutex::new(None),
            views: Mutex::new(HashMap::new()),
            packs: Mutex::new(HashMap::new()),
            routing: RwLock::new(()),
            lifecycle_lock: Mutex::new(()),
            signal: Signal::default(),
        };
        let report = inner.recover()?;
        tracing::info!(root = %inner.config.root.display(), tip = ?*lock(&inner.tip), ?report, "tiered store open");
        Ok((
            TieredStore {
                inner: Arc::new(inner),
            },
            report,
        ))
    }

    /// The acknowledged tip: every height up to it is durable in both tiers.
    pub fn tip(&self) -> Option<u32> {
        *lock(&self.inner.tip)
    }

    /// The height [`TieredStore::ingest`] expects next.
    pub fn next_height(&self) -> u32 {
        self.inner.next_height()
    }

    /// Ingests the next block: the finalised state first (which validates it), then its
    /// raw payload into its chunk's hot store. When this returns `Ok` the height is
    /// durable in both and readable. A chunk whose last height this was is closed, and the
    /// background lifecycle (if started) is woken to freeze it.
    pub fn ingest(&self, block: IndexedBlock) -> Result<()> {
        let inner = &*self.inner;
        let mut w = lock(&inner.writer);
        if w.behind {
            inner.catch_up(&mut w)?;
            w.behind = false;
        }
        let height = block
            .header
            .height()
            .ok_or_else(|| Error::BlockWithoutHeight {
                hash: block.header.hash().to_string(),
            })?
            .0;
        let expected = inner.next_height();
        if height != expected {
            return Err(Error::NotNextHeight { height, expected });
        }
        let payload = block.to_bytes();
        inner.finalised.write_block(block)?;
        w.behind = true;
        inner.put_payload(&mut w, height, &payload)?;
        w.behind = false;
        *lock(&inner.tip) = Some(height);
        Ok(())
    }

    /// The raw payload of `height` (`IndexedBlock::to_bytes()`), from the hot store while
    /// its chunk is hot, else from the chunk's payload pack. Above the tip:
    /// `NotYetSynced`; held by no tier (pruned past retention, or a lost hot store that was
    /// forgotten): `NotAvailable`.
    pub fn read_payload(&self, height: u32) -> Result<Vec<u8>> {
        self.read_routed(height).map(|(_, b)| b)
    }

    /// [`TieredStore::read_payload`], also saying which tier served it.
    pub fn read_routed(&self, height: u32) -> Result<(Tier, Vec<u8>)> {
        let tip = self.tip();
        if tip.is_none_or(|t| height > t) {
            return Err(Error::Storage(storage_traits::Error::NotYetSynced {
                height,
                tip,
            }));
        }
        self.inner.read_stored(height)
    }

    /// The block at `height`, decoded from its payload (routed as
    /// [`TieredStore::read_payload`]).
    pub fn read_block(&self, height: u32) -> Result<IndexedBlock> {
        let payload = self.read_payload(height)?;
        decode_payload(height, &payload)
    }

    /// The finalised state (every index and read trait of `storage_traits::capability`).
    /// Write to it only through [`TieredStore::ingest`].
    pub fn finalised(&self) -> &DefaultFinalisedState {
        &self.inner.finalised
    }

    /// The configuration.
    pub fn config(&self) -> &TieredConfig {
        &self.inner.config
    }

    /// The geometry.
    pub fn geometry(&self) -> Geometry {
        self.inner.layout.geometry()
    }

    /// The canonical paths.
    pub fn layout(&self) -> &Layout {
        &self.inner.layout
    }

    /// The catalog of chunk states.
    pub fn catalog(&self) -> &DefaultCatalog {
        &self.inner.catalog
    }

    /// The content-addressed store of packs, manifests, commits and refs.
    pub fn cas(&self) -> &Cas {
        &self.inner.cas
    }

    /// Every chunk the catalog knows (a hot key or a cold key of a configured kind), with
    /// its states, ascending.
    pub fn chunk_states(&self) -> Result<Vec<ChunkStatus>> {
        let inner = &*self.inner;
        let g = inner.layout.geometry();
        let hot: BTreeMap<u32, ChunkState> = inner
            .catalog
            .hot_chunks()?
            .into_iter()
            .map(|(c, s)| (c.0, s))
            .collect();
        let mut chunks: BTreeSet<u32> = hot.keys().copied().collect();
        let mut cold: BTreeMap<&str, BTreeMap<u32, ColdState>> = BTreeMap::new();
        for k in inner.config.kinds() {
            let m: BTreeMap<u32, ColdState> = inner
                .catalog
                .cold_chunks(&kind(k)?)?
                .into_iter()
                .map(|(c, s)| (c.0, s))
                .collect();
            chunks.extend(m.keys().copied());
            cold.insert(k, m);
        }
        chunks
            .into_iter()
            .map(|c| -> Result<ChunkStatus> {
                Ok(ChunkStatus {
                    chunk: c,
                    heights: g.heights(ChunkId(c))?,
                    hot: hot.get(&c).copied(),
                    cold: cold
                        .iter()
                        .map(|(k, m)| ((*k).to_owned(), m.get(&c).copied()))
                        .collect(),
                })
            })
            .collect()
    }

    /// Re-hashes every pack `refs/heads/main` names; returns how many were checked.
    pub fn verify(&self) -> Result<usize> {
        Ok(self.inner.cas.verify(coldpack::cas::MAIN)?)
    }

    /// Deletes every object of the store no ref reaches (see `coldpack`'s GC).
    pub fn gc(&self) -> Result<coldpack::cas::GcReport> {
        let inner = &*self.inner;
        let _l = lock(&inner.lifecycle_lock);
        let _w = inner.routing.write().unwrap_or_else(|p| p.into_inner());
        lock(&inner.packs).clear();
        Ok(inner.freezer().gc()?)
    }

    /// Every way the catalog, the canonical files and main disagree (empty when they
    /// agree).
    pub fn disagreements(&self) -> Result<Vec<String>> {
        Ok(self.inner.freezer().disagreements()?)
    }
}

pub(crate) fn decode_payload(height: u32, payload: &[u8]) -> Result<IndexedBlock> {
    let block = IndexedBlock::from_bytes(payload)?;
    let got = block.header.height().map(|h| h.0);
    if got != Some(height) {
        return Err(Error::Storage(storage_traits::Error::Corrupt {
            table: "payload",
            key: hex_height(height),
            height: Some(height),
            reason: format!("the payload holds the block of height {got:?}"),
        }));
    }
    Ok(block)
}

fn hex_height(h: u32) -> String {
    h.to_be_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn check_config(c: &TieredConfig) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::Config {
            reason: reason.to_owned(),
        })
    };
    if c.workers == 0 {
        return bad("workers must be at least 1");
    }
    if c.retention.payload_chunks == Some(0) || c.retention.index_chunks == Some(0) {
        return bad("a retention of 0 chunks would drop the chunk being written; use at least 1");
    }
    Ok(())
}

impl Inner {
    pub(crate) fn tip(&self) -> Option<u32> {
        *lock(&self.tip)
    }

    fn next_height(&self) -> u32 {
        self.tip()
            .map_or(self.layout.geometry().genesis_height(), |t| t + 1)
    }

    /// A freezer over the real catalog, layout, hot tier, store and (when configured) the
    /// bulk backend.
    pub(crate) fn freezer(&self) -> Freezer<'_> {
        let f = Freezer::new(&*self.catalog, &self.layout, &self.cas, self.freeze.clone())
            .with_hot(&self.tier);
        match &self.backend {
            Some(b) => f.with_backend(&**b),
            None => f,
        }
    }

    /// The highest height the payload tier holds: the top of the hot stores and of the
    /// frozen payload packs.
    fn payload_tip(&self) -> Result<Option<u32>> {
        let mut top: Option<u32> = None;
        for (c, state) in self.catalog.hot_chunks()? {
            if state == ChunkState::Ready {
                let view = self.tier.open_view(c)?;
                top = top.max(view.watermark()?);
            }
        }
        let g = self.layout.geometry();
        for (c, state) in self.catalog.cold_chunks(&kind(PAYLOAD_KIND)?)? {
            if state == ColdState::Frozen {
                top = top.max(Some(g.last_height(c)?));
            }
        }
        Ok(top)
    }

    fn recover(&self) -> Result<OpenReport> {
        let mut report = OpenReport {
            swept_hot: self
                .tier
                .sweep_transient()?
                .into_iter()
                .map(|c| c.0)
                .collect(),
            cold: self.freezer().reconcile(now_secs())?,
            ..OpenReport::default()
        };
        let mut w = lock(&self.writer);
        let (hot, fin) = self.catch_up(&mut w)?;
        report.hot_caught_up = hot;
        report.finalised_caught_up = fin;
        Ok(report)
    }

    /// Brings the tier that is behind up to the other, then sets the tip.
    #[allow(clippy::type_complexity)]
    fn catch_up(
        &self,
        w: &mut Writer,
    ) -> Result<(Option<RangeInclusive<u32>>, Option<RangeInclusive<u32>>)> {
        let genesis = self.layout.geometry().genesis_height();
        let payload = self.payload_tip()?;
        let fin = self.finalised.tip().map(|h| h.0);
        let mut hot_range = None;
        let mut fin_range = None;
        if fin > payload {
            let (from, to) = (payload.map_or(genesis, |p| p + 1), fin.unwrap_or(genesis));
            tracing::warn!(
                from,
                to,
                "the payload tier is behind the finalised state; re-deriving payloads"
            );
            for h in from..=to {
                let block = self
                    .finalised
                    .get_chain_block(Height(h))?
                    .ok_or_else(|| not_available(format!("block {h} of the finalised state")))?;
                self.put_payload(w, h, &block.to_bytes())?;
            }
            hot_range = Some(from..=to);
        } else if payload > fin {
            let (from, to) = (fin.map_or(genesis, |f| f + 1), payload.unwrap_or(genesis));
            tracing::warn!(
                from,
                to,
                "the finalised state is behind the payload tier; writing blocks from payloads"
            );
            for h in from..=to {
                let bytes = self.read_stored(h).map(|(_, b)| b).map_err(|e| {
                    if e.is_not_available() {
                        Error::Disagree {
                            root: self.config.root.clone(),
                            reason: format!(
                                "the finalised state ends at {fin:?} and the payload tier at {to}, \
                                 but no tier holds height {h} to catch the finalised state up \
                                 (pruned past retention?): backfill the missing chunks from the \
                                 bulk backend, or restore the finalised state"
                            ),
                        }
                    } else {
                        e
                    }
                })?;
                self.finalised.write_block(decode_payload(h, &bytes)?)?;
            }
            fin_range = Some(from..=to);
        }
        *lock(&self.tip) = fin.max(payload);
        Ok((hot_range, fin_range))
    }

    /// Writes `height`'s payload into its chunk's hot store, opening (creating) the store
    /// when the height starts a new chunk, and closing it when the chunk is complete.
    fn put_payload(&self, w: &mut Writer, height: u32, payload: &[u8]) -> Result<()> {
        let chunk = self.layout.geometry().chunk_of(height)?;
        if w.store.as_ref().map(HotStore::chunk) != Some(chunk) {
            w.store = None;
            // A cached read handle of the chunk would make the open refuse (ChunkInUse);
            // readers wait until the writer holds it (then they share its database).
            let _x = self.routing.write().unwrap_or_else(|p| p.into_inner());
            lock(&self.views).remove(&chunk.0);
            w.store = Some(self.tier.open_hot_db_for_chunk(chunk)?);
        }
        let Some(store) = w.store.as_mut() else {
            unreachable!("the store was just opened")
        };
        store.put_height(height, payload)?;
        if store.is_complete() {
            w.store = None;
            tracing::info!(chunk = chunk.0, "chunk closed");
            self.signal.notify();
        }
        Ok(())
    }

    /// A stored height's payload from whichever tier holds it (no tip check).
    pub(crate) fn read_stored(&self, height: u32) -> Result<(Tier, Vec<u8>)> {
        let g = self.layout.geometry();
        let chunk = g.chunk_of(height).map_err(|_| {
            not_available(format!(
                "height {height}: below the first height {}",
                g.genesis_height()
            ))
        })?;
        let _r = self.routing.read().unwrap_or_else(|p| p.into_inner());
        let payload_kind = kind(PAYLOAD_KIND)?;
        if self.catalog.cold_state(chunk, &payload_kind)? == Some(ColdState::Frozen) {
            let pack = self.pack(chunk)?;
            return Ok((Tier::Cold, pack.read_height(height)?));
        }
        let hot = self.catalog.hot_state(chunk)?;
        if hot == Some(ChunkState::Ready)
            && let Some(bytes) = self.view(chunk)?.get(height)?
        {
            return Ok((Tier::Hot, bytes));
        }
        Err(not_available(format!(
            "height {height} (chunk {chunk}): no payload pack is frozen and the hot store is {}; \
             the chunk was pruned past retention or its hot store was lost (backfill it from \
             the bulk backend)",
            hot.map_or("absent", ChunkState::name)
        )))
    }

    fn pack(&self, chunk: ChunkId) -> Result<Arc<PackReader>> {
        let mut packs = lock(&self.packs);
        if let Some(p) = packs.get(&chunk.0) {
            return Ok(p.clone());
        }
        let path = self.layout.pack_path(&kind(PAYLOAD_KIND)?, chunk);
        let pack = PackReader::open(&path).map_err(|e| coldpack::Error::FrozenPackLost {
            chunk: chunk.0,
            kind: PAYLOAD_KIND.to_owned(),
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let pack = Arc::new(pack);
        packs.insert(chunk.0, pack.clone());
        Ok(pack)
    }

    fn view(&self, chunk: ChunkId) -> Result<HotView> {
        let mut views = lock(&self.views);
        if let Some(v) = views.get(&chunk.0) {
            return Ok(v.clone());
        }
        let v = self.tier.open_view(chunk)?;
        views.insert(chunk.0, v.clone());
        Ok(v)
    }

    /// Drops the cached read handles of `chunk` (the caller holds `routing` exclusively).
    pub(crate) fn drop_handles(&self, chunk: u32) {
        lock(&self.views).remove(&chunk);
        lock(&self.packs).remove(&chunk);
    }
}
