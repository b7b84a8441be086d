//! `migrations`: versioned, resumable migrations of the Strata finalised state.
//!
//! - [`framework`]: the [`Migration`] step trait (from, to, kind, run), the [`Runner`] that
//!   walks a store from its recorded version to a target through the steps the host
//!   registers (a missing step is [`MigrationError::MissingStep`], naming both versions),
//!   the [`MigrationContext`] and progress reporting (tracing and a callback).
//! - [`host`]: what steps need from the host — [`MigrationHost`] (write path, validation,
//!   removal of v0) and [`BlockSource`].
//! - The steps: [`V0ToV1`] (shadow build and promotion), [`V1_0ToV1_1`] (metadata only),
//!   [`V1_1ToV1_2`] (`txid_location`, `spent`, accumulator; three re-entrant stages).
//! - [`alpha`]: the 0.4.0-alpha.1 compatibility rule.
//! - [`rebuild`]: the accumulator's bulk rebuild from `transparent` + `spent`.
//! - [`v0`]: the legacy v0 layout and its reader.
//! - `fixture` (feature `fixture-writers`): writers for real v0, v1.0 and v1.1 stores.
//!
//! The crate depends on `storage-traits` and `accumulator`, never on `finalised-state`:
//! steps are generic over the key-value store, and the host composes them. See the README
//! for progress keys and crash semantics.

pub mod alpha;
pub mod error;
#[cfg(feature = "fixture-writers")]
pub mod fixture;
pub mod framework;
pub mod host;
pub mod rebuild;
pub mod schema;
pub mod v0;
mod v0_to_v1;
mod v1_0_to_v1_1;
mod v1_1_to_v1_2;

pub use alpha::reconcile_alpha_txid_location_index;
pub use error::{MigrationError, Result};
pub use framework::{
    Migration, MigrationContext, MigrationKind, MigrationOptions, MigrationProgress, PlannedStep,
    ProgressEvent, Runner, Stage, read_metadata, write_metadata,
};
pub use host::{BlockSource, MigrationHost, VecSource};
pub use rebuild::{commitment_from_tables, rebuild_from_tables};
pub use schema::{V0_0_0, V1_0_0, V1_1_0, V1_2_0, schema_hash_for};
pub use v0_to_v1::V0ToV1;
pub use v1_0_to_v1_1::V1_0ToV1_1;
pub use v1_1_to_v1_2::V1_1ToV1_2;

/// A runner with every step of this crate: v0 → v1.0 → v1.1 → v1.2.
pub fn all_steps<S: storage_traits::KvStore>() -> Runner<S> {
    Runner::new()
        .register(V0ToV1)
        .register(V1_0ToV1_1)
        .register(V1_1ToV1_2)
}
