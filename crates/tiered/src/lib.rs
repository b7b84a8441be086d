//! `tiered`: the tiered store — the layer that drives `hotchunk` and `coldpack` beside the
//! finalised state.
//!
//! - [`TieredStore::ingest`]: each height's block into the finalised state, then its raw
//!   payload (`IndexedBlock::to_bytes()`) into its chunk's hot store; the commit order and
//!   the reconciliation at open are in [`store`].
//! - [`TieredStore::resolve`] / [`TieredStore::execute`] / [`TieredStore::tick`]: the
//!   resolver's [`Plan`] (chunks to freeze, hot stores to discard, packs to prune) and the
//!   executor (bounded workers, retries); [`TieredStore::start_lifecycle`] runs ticks in
//!   the background; [`TieredStore::backfill`] materialises missing chunks from the bulk
//!   backend in parallel. See [`lifecycle`].
//! - [`TieredStore::read_payload`] / [`TieredStore::read_block`]: read routing — the hot
//!   store while the chunk is hot, else the pack; `NotAvailable` when no tier holds the
//!   height, `NotYetSynced` above the tip.
//! - [`TieredStore::chunk_states`], [`TieredStore::verify`], [`TieredStore::gc`]: status
//!   and maintenance.

#![deny(missing_docs)]

pub mod config;
mod error;
pub mod lifecycle;
pub mod store;

pub use coldpack::{BulkBackend, LocalDirBackend, SourceKind};
pub use config::{PAYLOAD_KIND, Retention, TXID_INDEX_KIND, TieredConfig};
pub use error::{Error, Result};
pub use hotchunk::{ChunkState, ColdState, Geometry};
pub use lifecycle::{
    DiscardReason, FreezeTask, FrozenChunk, Lifecycle, LifecycleStats, Plan, Report, TaskFailure,
    TickSpan,
};
pub use store::{ChunkStatus, OpenReport, Tier, TieredStore};
