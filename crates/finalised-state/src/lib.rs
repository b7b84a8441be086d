//! `finalised-state`: the v1.2 finalised-state database of a Zcash indexer.
//!
//! [`FinalisedState`] composes a key-value backend (redb by default, RocksDB with the
//! `rocksdb` feature), the v1 tables of `storage-traits`, and the txout-set accumulator. It
//! implements the v1.2 contract of the Zaino changelog: checksum-protected rows,
//! `txid_location` and `spent` indices, address history, the accumulator with its freshness
//! watermark, validation, and every read trait of `storage_traits::capability`.
//!
//! # Layout
//!
//! A store lives in `<base>/<network>/v1/`: a lock file `strata.lock` (an exclusive
//! advisory lock held while the store is open, so a second process gets
//! [`storage_traits::Error::Locked`]) and one subdirectory named after the backend
//! (`redb/` or `rocksdb/`) with the backend's files. A build with the other backend refuses
//! the store instead of creating an empty one beside it.
//!
//! # Commit order and crash safety
//!
//! - `write_block` writes one block in one synced transaction: every per-height row, the
//!   hash → height row, `txid_location` for every transaction, `spent` for every input,
//!   the address-history events, and (when fresh) the accumulator with its watermark.
//!   A crash leaves the block wholly present or wholly absent.
//! - Bulk sync (`write_blocks`) stages whole blocks into batches (a share of
//!   `sync_write_batch_bytes` each), and commits each in one synced transaction with the
//!   random-keyed indices in key order, on a second thread while it stages the next;
//!   commits stay in order.
//!   The tip (the last `headers` row) therefore always has every index below it. The
//!   accumulator is not maintained per block: its watermark stays below the tip until the
//!   bulk rebuild at the end of the range, committed with the new watermark. A crash
//!   before that leaves a stale accumulator, which every open reconciles by rebuilding it.
//! - The metadata row is written before any block of a new store, and changed only by
//!   migrations (in the same transaction as the data they describe).

mod backend;
mod config;
pub mod migrate;
mod rows;
mod state;
mod txoutset;
mod validate;
mod write;

pub use backend::{Backend, DefaultBackend, KNOWN_BACKENDS};
pub use config::{Config, Network, OpenValidation};
pub use migrate::MigrationPlan;
pub use state::{AccumulatorStatus, FinalisedState};
pub use storage_traits::{Error, Result};
pub use txoutset::RecomputedTxOutSet;
pub use write::SyncProgress;

/// The finalised state over the default backend of this build.
pub type DefaultFinalisedState = FinalisedState<DefaultBackend>;
