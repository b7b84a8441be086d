//! `hotchunk`: per-chunk hot stores for the newest heights, and the storage primitives the
//! cold tier builds on.
//!
//! The newest heights arrive one at a time and are durable the moment they are
//! acknowledged. Each chunk of heights (10,000 by default) gets its own RocksDB, so a
//! finished chunk can be frozen (by `coldpack`) and its hot store dropped whole.
//!
//! - [`Geometry`], [`ChunkId`], [`BucketId`]: heights ↔ chunks ↔ buckets.
//! - [`Layout`], [`Kind`]: the canonical paths under a storage root.
//! - [`Catalog`]: the synced key-value catalog of chunk states ([`ChunkState`] of the hot
//!   store, [`ColdState`] of each cold [`Kind`]), multi-key atomic [`CatalogBatch`]es, and
//!   the storage root's lock.
//! - [`fsync_file`], [`fsync_dir`], [`barrier_new_file`], …: the fsync barriers.
//! - [`HotTier`]: [`HotTier::open_hot_db_for_chunk`], [`HotTier::discard_hot_db_for_chunk`],
//!   [`HotTier::open_view`], [`HotTier::forget_lost_chunk`], [`HotTier::sweep_transient`];
//!   the commit order and crash reconciliation of each step are in [`lifecycle`].
//! - [`HotStore`] (writes: one synced batch per height) and [`HotView`] (reads, for
//!   freezing).
//!
//! The crate freezes nothing.

#![deny(missing_docs)]

pub mod catalog;
pub mod codec;
mod error;
pub mod fsync;
pub mod geometry;
mod hook;
mod hot;
pub mod layout;
pub mod lifecycle;

pub use catalog::{
    CATALOG_TABLE, Catalog, CatalogBatch, ChunkState, ColdState, STATE_VALUE_VERSION, cold_key,
    hot_key,
};
pub use codec::Codec;
pub use error::{HotError, Result};
pub use fsync::{
    barrier_new_file, create_dir_all_durable, fsync_dir, fsync_file, fsync_parent,
    remove_dir_all_durable,
};
pub use geometry::{BucketId, ChunkId, DEFAULT_CHUNK_SIZE, DEFAULT_CHUNKS_PER_BUCKET, Geometry};
#[cfg(any(test, feature = "crash-hooks"))]
pub use hook::CrashHook;
pub use hot::{HeightVisitor, HotOptions, HotStore, HotView, LEDGERS_TABLE, META_TABLE};
pub use layout::{Kind, Layout};
pub use lifecycle::HotTier;

// The backends a catalog opens on, so a host can name them through this crate.
pub use store_lmdb_compat::{RocksOptions, RocksStore};
pub use store_redb::RedbStore;

/// The default catalog: RocksDB (see the README for why).
pub type DefaultCatalog = Catalog<RocksStore>;
