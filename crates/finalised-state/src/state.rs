//! Opening a store, its metadata, and every read trait.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use accumulator::Freshness;
use storage_traits::capability::*;
use storage_traits::kv::{Direction, KeyRange, KvRead, KvWrite};
use storage_traits::model::*;
use storage_traits::table::*;
use storage_traits::{Capability, Durability, Error, Result, TableKey};

use crate::backend::{Backend, KNOWN_BACKENDS};
use crate::config::{Config, OpenValidation};
use crate::migrate::MigrateOptions;
use crate::rows::RowCache;

/// The finalised-state database over backend `B`.
pub struct FinalisedState<B: Backend> {
    pub(crate) store: B,
    pub(crate) dir: PathBuf,
    pub(crate) config: Config,
    /// The open lock file; dropping it releases the lock.
    _lock: File,
    /// The tip as last committed: height and hash. Updated only under the write lock.
    pub(crate) tip: Mutex<Option<(Height, BlockHash)>>,
    /// Every height at or below this has passed full read-back validation (or the write
    /// path's checks in this process).
    pub(crate) validated_tip: Mutex<Option<Height>>,
    /// Serialises this process's writers, so tip checks and commits do not interleave, and
    /// holds the transparent rows they read outputs from (kept across writes: a block
    /// written height by height spends from the same recent rows as its predecessors).
    pub(crate) write_lock: Mutex<RowCache>,
}

/// The accumulator with its freshness against the tip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccumulatorStatus {
    /// The stored summary (zero for an empty store).
    pub info: TxOutSetInfo,
    /// The height it was built to, if any.
    pub built_height: Option<Height>,
    /// Fresh when built to the tip.
    pub freshness: Freshness,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the store inconsistent (the
    // guarded values are caches re-read from disk), so poisoning is not an error.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn lock_store_dir(dir: &Path) -> Result<File> {
    let path = dir.join("strata.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(Error::Locked {
            path: dir.to_path_buf(),
        }),
        Err(TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

/// Refuses a store directory that holds another backend's files.
pub(crate) fn refuse_other_backend<B: Backend>(dir: &std::path::Path) -> Result<()> {
    for other in KNOWN_BACKENDS.iter().filter(|n| **n != B::NAME) {
        if dir.join(other).exists() {
            return Err(Error::Incompatible {
                path: dir.to_path_buf(),
                reason: format!(
                    "the store was written by the {other} backend; open it with a build \
                         that uses {other} (cargo feature `{other}`)"
                ),
            });
        }
    }
    Ok(())
}

impl<B: Backend> FinalisedState<B> {
    /// Opens (or creates) the store of `config` in `<base>/<network>/v1/`.
    ///
    /// A new store gets metadata at version 1.2.0 with this build's schema hash. A store of
    /// a newer version is refused; an older one needs the migrations (refused until the host
    /// composes them); a schema-hash mismatch at the same version is refused unless
    /// `allow_schema_mismatch`. A stale accumulator is rebuilt, then full validation runs
    /// when `open_validation` is `Full`.
    pub fn open(config: Config) -> Result<Self> {
        Self::open_with(config, MigrateOptions::default())
    }

    /// [`FinalisedState::open`] with what a migration may need: a block source for the
    /// v0 → v1 shadow build and a progress callback.
    pub fn open_with(config: Config, migrate_options: MigrateOptions) -> Result<Self> {
        let dir = config.store_dir();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let lock_file = lock_store_dir(&dir)?;
        refuse_other_backend::<B>(&dir)?;
        let span = tracing::info_span!("open", dir = %dir.display(), backend = B::NAME);
        let _enter = span.enter();
        let store = B::open_in(&dir.join(B::NAME), V1_TABLES)?;
        let state = FinalisedState {
            store,
            dir,
            config,
            _lock: lock_file,
            tip: Mutex::new(None),
            validated_tip: Mutex::new(None),
            write_lock: Mutex::new(RowCache::default()),
        };
        state.check_metadata(migrate_options)?;
        *lock(&state.tip) = state.read_tip()?;
        if state.config.capabilities.contains(Capability::WRITE_CORE) {
            state.reconcile_accumulator()?;
        }
        if state.config.open_validation == OpenValidation::Full {
            state.validate_all()?;
        }
        tracing::info!(tip = ?state.tip(), "finalised state open");
        Ok(state)
    }

    /// The store directory (`<base>/<network>/v1`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What the store serves.
    pub fn capabilities(&self) -> Capability {
        self.config.capabilities
    }

    /// The underlying key-value store, for tools that compare stores table by table.
    pub fn kv(&self) -> &B {
        &self.store
    }

    /// The tip height, `None` for an empty store.
    pub fn tip(&self) -> Option<Height> {
        lock(&self.tip).map(|(h, _)| h)
    }

    /// The highest height below which every block has been validated.
    pub fn validated_tip(&self) -> Option<Height> {
        *lock(&self.validated_tip)
    }

    pub(crate) fn require(&self, cap: Capability) -> Result<()> {
        self.config.capabilities.require(cap)
    }

    fn check_metadata(&self, migrate_options: MigrateOptions) -> Result<()> {
        let r = self.store.begin_read()?;
        let meta = r.get_row::<Metadata>(&METADATA_KEY)?;
        drop(r);
        let incompatible = |reason: String| Error::Incompatible {
            path: self.dir.clone(),
            reason,
        };
        let Some(meta) = meta else {
            // A v0 store beside the v1 directory: build v1 from it (shadow + promotion).
            if crate::migrate::v0_store_present(self) {
                return crate::migrate::migrate(self, migrate_options);
            }
            let r = self.store.begin_read()?;
            for spec in V1_TABLES {
                if !r.is_empty(spec.name)? {
                    return Err(incompatible(format!(
                        "table {} holds data but the store has no metadata row; restore it or \
                         rebuild the store",
                        spec.name
                    )));
                }
            }
            drop(r);
            let meta = DbMetadata {
                version: DB_VERSION_LATEST,
                schema_hash: schema_hash(),
                migration_status: MigrationStatus::Empty,
            };
            let mut w = self.store.begin_write()?;
            w.put_row::<Metadata>(&METADATA_KEY, meta)?;
            w.commit(Durability::Synced)?;
            tracing::info!(version = %DB_VERSION_LATEST, "created a new store");
            return Ok(());
        };
        // 0.4.0-alpha.1 stores (>= 1.2.0 with an empty txid_location) go back to 1.1.0.
        let meta = crate::migrate::reconcile_alpha(self, meta)?;
        if meta.version > DB_VERSION_LATEST {
            return Err(incompatible(format!(
                "the store is at version {}, newer than this build's {DB_VERSION_LATEST}; \
                 upgrade Strata to open it",
                meta.version
            )));
        }
        // An older version, or an interrupted migration: run (or resume) the steps.
        if meta.version < DB_VERSION_LATEST || meta.migration_status != MigrationStatus::Empty {
            return crate::migrate::migrate(self, migrate_options);
        }
        if meta.schema_hash != schema_hash() {
            if !self.config.allow_schema_mismatch {
                return Err(incompatible(format!(
                    "schema hash mismatch at version {}: the store records {}, this build has \
                     {}; the table layouts may differ. Set allow_schema_mismatch to open it anyway",
                    meta.version,
                    hex::encode(meta.schema_hash),
                    hex::encode(schema_hash())
                )));
            }
            tracing::warn!(
                recorded = %hex::encode(meta.schema_hash),
                expected = %hex::encode(schema_hash()),
                "schema hash mismatch accepted by configuration"
            );
        }
        Ok(())
    }

    pub(crate) fn read_tip(&self) -> Result<Option<(Height, BlockHash)>> {
        let r = self.store.begin_read()?;
        let last = r
            .rows::<Headers>(KeyRange::all(), Direction::Reverse)?
            .next();
        match last {
            None => Ok(None),
            Some(row) => {
                let (h, header) = row?;
                Ok(Some((h, header.hash())))
            }
        }
    }

    /// The stored accumulator, its watermark, and whether it is fresh.
    pub fn accumulator_status(&self) -> Result<AccumulatorStatus> {
        let r = self.store.begin_read()?;
        let info = r
            .get_row::<TxOutSetAccumulator>(&ACCUMULATOR_KEY)?
            .unwrap_or_default();
        let built_height = r.get_row::<MetadataHeights>(&ACCUMULATOR_BUILT_HEIGHT_KEY)?;
        let freshness = match self.tip() {
            Some(tip) => Freshness::classify(built_height, tip),
            None => Freshness::Fresh,
        };
        Ok(AccumulatorStatus {
            info,
            built_height,
            freshness,
        })
    }

    /// Rebuilds a stale accumulator (left by a bulk sync that stopped before its rebuild).
    fn reconcile_accumulator(&self) -> Result<()> {
        let status = self.accumulator_status()?;
        if status.freshness.is_fresh() {
            return Ok(());
        }
        tracing::warn!(built = ?status.built_height, tip = ?self.tip(), "accumulator is stale; rebuilding");
        self.rebuild_accumulator()
    }

    /// Rebuilds the accumulator in bulk from the `transparent` and `spent` tables and
    /// commits it with the tip as its watermark. Never trusts the stored one. Holds about half
    /// of `sync_write_batch_bytes` in spent outpoints at a time, whatever the chain's size
    /// ([`migrations::commitment_from_tables`]).
    pub fn rebuild_accumulator(&self) -> Result<()> {
        self.require(Capability::WRITE_CORE)?;
        let _guard = lock(&self.write_lock);
        let Some(tip) = self.tip() else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let mut w = self.store.begin_write()?;
        // The helper lives in the lower crate, which the v1.1 -> v1.2 migration also uses.
        let acc = migrations::rebuild_from_tables(&w, self.config.sync_write_batch_bytes)?;
        w.put_row::<TxOutSetAccumulator>(&ACCUMULATOR_KEY, acc.info())?;
        w.put_row::<MetadataHeights>(&ACCUMULATOR_BUILT_HEIGHT_KEY, tip)?;
        w.commit(Durability::Synced)?;
        tracing::info!(
            tip = tip.0,
            outputs = acc.transaction_outputs(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "accumulator rebuilt"
        );
        Ok(())
    }

    /// The verified row of `T` at `key` in the latest committed state, for a lookup that
    /// reads nothing else (no snapshot is set up around it).
    fn latest_row<T: Table>(&self, key: &T::Key) -> Result<Option<ValueOf<T>>> {
        let key_bytes = key.encode_key();
        self.store
            .get_latest(T::NAME, &key_bytes)?
            .map(|v| decode_row::<T>(&key_bytes, &v))
            .transpose()
    }

    /// The stored row of `T` at `key`, or `NotAvailable` naming what was missing.
    pub(crate) fn must_get<T: Table>(
        r: &impl KvRead,
        key: &T::Key,
        what: impl FnOnce() -> String,
    ) -> Result<ValueOf<T>> {
        r.get_row::<T>(key)?
            .ok_or_else(|| Error::NotAvailable { what: what() })
    }

    /// Checks that `height` is stored, validating it on demand when above the validated tip.
    pub(crate) fn check_readable(&self, height: Height) -> Result<()> {
        match self.tip() {
            Some(tip) if height <= tip => {}
            tip => {
                return Err(Error::NotYetSynced {
                    height: height.0,
                    tip: tip.map(|t| t.0),
                });
            }
        }
        if height.0 < self.config.start_height.0 {
            return Err(Error::NotAvailable {
                what: format!(
                    "height {height}: below the store's start height {}",
                    self.config.start_height
                ),
            });
        }
        if self.validated_tip().is_some_and(|v| height <= v) {
            return Ok(());
        }
        self.validate_on_demand(height)
    }
}

/// Small helpers shared by reads, writes and validation.
pub(crate) struct Self_;

impl Self_ {
    pub(crate) fn txids_at(r: &impl KvRead, height: Height) -> Result<TxidList> {
        r.get_row::<Txids>(&height)?.ok_or_else(|| Error::Corrupt {
            table: Txids::NAME,
            key: hex::encode(height.encode_key()),
            height: Some(height.0),
            reason: "missing row for a stored height".to_owned(),
        })
    }
}

/// The accumulator error as a storage error naming the accumulator row (the lower crate's
/// helper, which its rebuild uses too).
pub(crate) use migrations::rebuild::accumulator_error;

fn range_heights(start: Height, end: Height) -> impl Iterator<Item = Height> {
    (start.0..=end.0).map(Height)
}

impl<B: Backend> DbRead for FinalisedState<B> {
    fn db_height(&self) -> Result<Option<Height>> {
        self.require(Capability::READ_CORE)?;
        Ok(self.tip())
    }

    fn get_block_height(&self, hash: &BlockHash) -> Result<Option<Height>> {
        self.require(Capability::READ_CORE)?;
        self.latest_row::<Heights>(hash)
    }

    fn get_block_hash(&self, height: Height) -> Result<Option<BlockHash>> {
        self.require(Capability::READ_CORE)?;
        Ok(self
            .store
            .begin_read()?
            .get_row::<Headers>(&height)?
            .map(|h| h.hash()))
    }

    fn get_metadata(&self) -> Result<DbMetadata> {
        self.require(Capability::READ_CORE)?;
        Self::must_get::<Metadata>(&self.store.begin_read()?, &METADATA_KEY, || {
            "the metadata row".to_owned()
        })
    }
}

macro_rules! per_height {
    ($self:ident, $cap:expr, $table:ty, $height:expr) => {{
        $self.require($cap)?;
        $self.check_readable($height)?;
        let h = $height;
        Self::must_get::<$table>(&$self.store.begin_read()?, &h, || {
            format!("{} at height {h}", <$table>::NAME)
        })
    }};
}

macro_rules! per_range {
    ($self:ident, $cap:expr, $table:ty, $start:expr, $end:expr) => {{
        $self.require($cap)?;
        if $start > $end {
            return Ok(Vec::new());
        }
        $self.check_readable($end)?;
        for h in range_heights($start, $end) {
            $self.check_readable(h)?;
        }
        let r = $self.store.begin_read()?;
        range_heights($start, $end)
            .map(|h| {
                Self::must_get::<$table>(&r, &h, || format!("{} at height {h}", <$table>::NAME))
            })
            .collect()
    }};
}

impl<B: Backend> FinalisedState<B> {
    /// The entry of a per-transaction list at `location`, or `NotAvailable`.
    fn tx_entry<T: Clone>(list: &[T], location: TxLocation, table: &str) -> Result<T> {
        list.get(location.tx_index as usize)
            .cloned()
            .ok_or_else(|| Error::NotAvailable {
                what: format!(
                    "transaction {} of block {} in {table}",
                    location.tx_index, location.block_height
                ),
            })
    }
}

impl<B: Backend> BlockCoreExt for FinalisedState<B> {
    fn get_block_header(&self, height: Height) -> Result<BlockHeaderData> {
        per_height!(self, Capability::BLOCK_CORE_EXT, Headers, height)
    }

    fn get_block_range_headers(&self, start: Height, end: Height) -> Result<Vec<BlockHeaderData>> {
        per_range!(self, Capability::BLOCK_CORE_EXT, Headers, start, end)
    }

    fn get_block_txids(&self, height: Height) -> Result<TxidList> {
        per_height!(self, Capability::BLOCK_CORE_EXT, Txids, height)
    }

    fn get_block_range_txids(&self, start: Height, end: Height) -> Result<Vec<TxidList>> {
        per_range!(self, Capability::BLOCK_CORE_EXT, Txids, start, end)
    }

    fn get_txid(&self, location: TxLocation) -> Result<TxId> {
        let list = per_height!(
            self,
            Capability::BLOCK_CORE_EXT,
            Txids,
            Height(location.block_height)
        )?;
        Self::tx_entry(&list.0, location, Txids::NAME)
    }

    fn get_tx_location(&self, txid: &TxId) -> Result<Option<TxLocation>> {
        self.require(Capability::BLOCK_CORE_EXT)?;
        self.latest_row::<TxidLocation>(txid)
    }
}

impl<B: Backend> BlockTransparentExt for FinalisedState<B> {
    fn get_transparent(&self, location: TxLocation) -> Result<Option<TransparentCompactTx>> {
        let list = per_height!(
            self,
            Capability::BLOCK_TRANSPARENT_EXT,
            Transparent,
            Height(location.block_height)
        )?;
        Self::tx_entry(&list.0, location, Transparent::NAME)
    }

    fn get_block_transparent(&self, height: Height) -> Result<TransparentTxList> {
        per_height!(self, Capability::BLOCK_TRANSPARENT_EXT, Transparent, height)
    }

    fn get_block_range_transparent(
        &self,
        start: Height,
        end: Height,
    ) -> Result<Vec<TransparentTxList>> {
        per_range!(
            self,
            Capability::BLOCK_TRANSPARENT_EXT,
            Transparent,
            start,
            end
        )
    }

    fn get_previous_output(&self, outpoint: Outpoint) -> Result<TxOutCompact> {
        self.require(Capability::BLOCK_TRANSPARENT_EXT)?;
        let r = self.store.begin_read()?;
        crate::write::previous_output(&mut RowCache::with_byte_cap(0), &r, &outpoint)?.ok_or_else(
            || Error::NotAvailable {
                what: format!(
                    "output {}:{} (unknown transaction or index out of range)",
                    outpoint.prev_txid, outpoint.prev_index
                ),
            },
        )
    }
}

impl<B: Backend> BlockShieldedExt for FinalisedState<B> {
    fn get_sapling(&self, location: TxLocation) -> Result<Option<SaplingCompactTx>> {
        let list = per_height!(
            self,
            Capability::BLOCK_SHIELDED_EXT,
            Sapling,
            Height(location.block_height)
        )?;
        Self::tx_entry(&list.0, location, Sapling::NAME)
    }

    fn get_block_sapling(&self, height: Height) -> Result<SaplingTxList> {
        per_height!(self, Capability::BLOCK_SHIELDED_EXT, Sapling, height)
    }

    fn get_block_range_sapling(&self, start: Height, end: Height) -> Result<Vec<SaplingTxList>> {
        per_range!(self, Capability::BLOCK_SHIELDED_EXT, Sapling, start, end)
    }

    fn get_orchard(&self, location: TxLocation) -> Result<Option<OrchardCompactTx>> {
        let list = per_height!(
            self,
            Capability::BLOCK_SHIELDED_EXT,
            Orchard,
            Height(location.block_height)
        )?;
        Self::tx_entry(&list.0, location, Orchard::NAME)
    }

    fn get_block_orchard(&self, height: Height) -> Result<OrchardTxList> {
        per_height!(self, Capability::BLOCK_SHIELDED_EXT, Orchard, height)
    }

    fn get_block_range_orchard(&self, start: Height, end: Height) -> Result<Vec<OrchardTxList>> {
        per_range!(self, Capability::BLOCK_SHIELDED_EXT, Orchard, start, end)
    }

    fn get_block_commitment_tree_data(&self, height: Height) -> Result<CommitmentTreeData> {
        per_height!(self, Capability::BLOCK_SHIELDED_EXT, CommitmentTree, height)
    }

    fn get_block_range_commitment_tree_data(
        &self,
        start: Height,
        end: Height,
    ) -> Result<Vec<CommitmentTreeData>> {
        per_range!(
            self,
            Capability::BLOCK_SHIELDED_EXT,
            CommitmentTree,
            start,
            end
        )
    }
}

impl<B: Backend> FinalisedState<B> {
    /// The whole indexed block at `height` from one snapshot.
    fn read_block(&self, r: &impl KvRead, height: Height) -> Result<IndexedBlock> {
        let what = |t: &str| format!("{t} at height {height}");
        let header = Self::must_get::<Headers>(r, &height, || what(Headers::NAME))?;
        let txids = Self::must_get::<Txids>(r, &height, || what(Txids::NAME))?;
        let transparent = Self::must_get::<Transparent>(r, &height, || what(Transparent::NAME))?;
        let sapling = Self::must_get::<Sapling>(r, &height, || what(Sapling::NAME))?;
        let orchard = Self::must_get::<Orchard>(r, &height, || what(Orchard::NAME))?;
        let commitment_tree_data =
            Self::must_get::<CommitmentTree>(r, &height, || what(CommitmentTree::NAME))?;
        let n = txids.0.len();
        if transparent.0.len() != n || sapling.0.len() != n || orchard.0.len() != n {
            return Err(Error::Corrupt {
                table: Transparent::NAME,
                key: hex::encode(height.encode_key()),
                height: Some(height.0),
                reason: format!(
                    "per-transaction lists disagree: {n} txids, {} transparent, {} sapling, {} orchard",
                    transparent.0.len(),
                    sapling.0.len(),
                    orchard.0.len()
                ),
            });
        }
        let transactions = txids
            .0
            .into_iter()
            .zip(transparent.0)
            .zip(sapling.0)
            .zip(orchard.0)
            .map(|(((txid, transparent), sapling), orchard)| IndexedTx {
                txid,
                transparent,
                sapling,
                orchard,
            })
            .collect();
        Ok(IndexedBlock {
            header,
            transactions,
            commitment_tree_data,
        })
    }

    fn compact_block(
        &self,
        r: &impl KvRead,
        height: Height,
        filter: PoolTypeFilter,
    ) -> Result<CompactBlock> {
        let block = self.read_block(r, height)?;
        let vtx = block
            .transactions
            .iter()
            .enumerate()
            .filter_map(|(i, tx)| {
                let mut ctx = CompactTx {
                    index: i as u16,
                    txid: tx.txid,
                    vin: Vec::new(),
                    vout: Vec::new(),
                    spends: Vec::new(),
                    outputs: Vec::new(),
                    actions: Vec::new(),
                };
                let mut selected = false;
                if filter.contains(PoolTypeFilter::TRANSPARENT)
                    && let Some(t) = &tx.transparent
                {
                    ctx.vin = t.vin.clone();
                    ctx.vout = t.vout.clone();
                    selected |= !t.vin.is_empty() || !t.vout.is_empty();
                }
                if filter.contains(PoolTypeFilter::SAPLING)
                    && let Some(s) = &tx.sapling
                {
                    ctx.spends = s.spends.clone();
                    ctx.outputs = s.outputs.clone();
                    selected |= !s.spends.is_empty() || !s.outputs.is_empty();
                }
                if filter.contains(PoolTypeFilter::ORCHARD)
                    && let Some(o) = &tx.orchard
                {
                    ctx.actions = o.actions.clone();
                    selected |= !o.actions.is_empty();
                }
                selected.then_some(ctx)
            })
            .collect();
        Ok(CompactBlock {
            height,
            hash: block.header.hash(),
            prev_hash: block.header.parent_hash(),
            time: block.header.data().time,
            vtx,
            tree_sizes: block.commitment_tree_data.sizes,
        })
    }
}

impl<B: Backend> IndexedBlockExt for FinalisedState<B> {
    fn get_chain_block(&self, height: Height) -> Result<Option<IndexedBlock>> {
        self.require(Capability::CHAIN_BLOCK_EXT)?;
        if self.tip().is_none_or(|tip| height > tip) {
            return Ok(None);
        }
        self.check_readable(height)?;
        self.read_block(&self.store.begin_read()?, height).map(Some)
    }
}

impl<B: Backend> CompactBlockExt for FinalisedState<B> {
    fn get_compact_block(&self, height: Height, filter: PoolTypeFilter) -> Result<CompactBlock> {
        self.require(Capability::COMPACT_BLOCK_EXT)?;
        self.check_readable(height)?;
        self.compact_block(&self.store.begin_read()?, height, filter)
    }

    fn get_compact_block_stream(
        &self,
        start: Height,
        end: Height,
        filter: PoolTypeFilter,
    ) -> Result<CompactBlockStream<'_>> {
        self.require(Capability::COMPACT_BLOCK_EXT)?;
        if start <= end {
            self.check_readable(end)?;
        }
        // One snapshot for the whole stream, so it is consistent even while blocks are
        // written or deleted.
        let r = self.store.begin_read()?;
        Ok(Box::new(
            range_heights(start, end)
                .take_while(move |_| start <= end)
                .map(move |h| {
                    self.check_readable(h)?;
                    self.compact_block(&r, h, filter)
                }),
        ))
    }
}

impl<B: Backend> FinalisedState<B> {
    fn addr_events(&self, addr: AddrScript) -> Result<Vec<AddrEvent>> {
        self.require(Capability::TRANSPARENT_HIST_EXT)?;
        self.store
            .begin_read()?
            .get_dup_rows::<AddressHistory>(&addr)
    }
}

fn in_range(e: &AddrEvent, start: Height, end: Height) -> bool {
    (start.0..=end.0).contains(&e.tx_location.block_height)
}

impl<B: Backend> TransparentHistExt for FinalisedState<B> {
    fn addr_records(&self, addr: AddrScript) -> Result<Option<Vec<AddrEvent>>> {
        let events = self.addr_events(addr)?;
        Ok((!events.is_empty()).then_some(events))
    }

    fn addr_and_index_records(
        &self,
        addr: AddrScript,
        location: TxLocation,
    ) -> Result<Option<Vec<AddrEvent>>> {
        let events: Vec<AddrEvent> = self
            .addr_events(addr)?
            .into_iter()
            .filter(|e| e.tx_location == location)
            .collect();
        Ok((!events.is_empty()).then_some(events))
    }

    fn addr_tx_locations_by_range(
        &self,
        addr: AddrScript,
        start: Height,
        end: Height,
    ) -> Result<Option<Vec<TxLocation>>> {
        let mut locations: Vec<TxLocation> = self
            .addr_events(addr)?
            .iter()
            .filter(|e| in_range(e, start, end))
            .map(|e| e.tx_location)
            .collect();
        locations.dedup();
        Ok((!locations.is_empty()).then_some(locations))
    }

    fn addr_utxos_by_range(
        &self,
        addr: AddrScript,
        start: Height,
        end: Height,
    ) -> Result<Option<Vec<AddrUtxo>>> {
        let utxos: Vec<AddrUtxo> = self
            .addr_events(addr)?
            .iter()
            .filter(|e| in_range(e, start, end) && !e.is_input() && e.flags & AddrEvent::SPENT == 0)
            .map(|e| (e.tx_location, e.index, e.value))
            .collect();
        Ok((!utxos.is_empty()).then_some(utxos))
    }

    fn addr_balance_by_range(&self, addr: AddrScript, start: Height, end: Height) -> Result<i64> {
        let mut balance: i128 = 0;
        for e in self
            .addr_events(addr)?
            .iter()
            .filter(|e| in_range(e, start, end))
        {
            if e.is_input() {
                balance -= i128::from(e.value);
            } else {
                balance += i128::from(e.value);
            }
        }
        i64::try_from(balance).map_err(|_| Error::NotAvailable {
            what: format!("balance {balance} of an address does not fit in i64"),
        })
    }

    fn get_outpoint_spender(&self, outpoint: Outpoint) -> Result<Option<TxLocation>> {
        self.require(Capability::TRANSPARENT_HIST_EXT)?;
        self.latest_row::<Spent>(&outpoint)
    }

    fn get_outpoint_spenders(&self, outpoints: &[Outpoint]) -> Result<Vec<Option<TxLocation>>> {
        self.require(Capability::TRANSPARENT_HIST_EXT)?;
        let r = self.store.begin_read()?;
        outpoints.iter().map(|o| r.get_row::<Spent>(o)).collect()
    }

    fn get_tx_out_set_info_accumulator(&self) -> Result<TxOutSetInfo> {
        self.require(Capability::TRANSPARENT_HIST_EXT)?;
        Ok(self.accumulator_status()?.info)
    }
}
