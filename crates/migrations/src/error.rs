//! The migrations crate's error type.

use storage_traits::model::{DbVersion, MigrationStatus, TxLocation};

/// Shorthand for results carrying [`MigrationError`].
pub type Result<T, E = MigrationError> = std::result::Result<T, E>;

/// Everything that can stop a migration. Every variant names what and where: the versions,
/// the table, the key in hex, the height.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// The host registered no step starting at the store's version.
    #[error(
        "no migration step from version {from} is registered (the store is at {from}, the target is {target}); \
         this build cannot migrate the store"
    )]
    MissingStep {
        /// The version the store is at.
        from: DbVersion,
        /// The version the host asked for.
        target: DbVersion,
    },

    /// The store is at a version newer than the target: migrations never go backwards.
    #[error(
        "the store is at version {found}, newer than the target {target}; migrations never downgrade"
    )]
    NewerThanTarget {
        /// The store's version.
        found: DbVersion,
        /// The target.
        target: DbVersion,
    },

    /// A registered step does not lead towards the target (`to` not above `from`, or past
    /// the target).
    #[error("migration step {from} -> {to} does not lead to the target {target}")]
    InvalidStep {
        /// The step's source version.
        from: DbVersion,
        /// The step's destination version.
        to: DbVersion,
        /// The target.
        target: DbVersion,
    },

    /// A step returned without recording its destination version.
    #[error(
        "migration step {from} -> {to} finished but the store records version {found} (status {status:?})"
    )]
    StepDidNotAdvance {
        /// The step's source version.
        from: DbVersion,
        /// The step's destination version.
        to: DbVersion,
        /// The version recorded afterwards.
        found: DbVersion,
        /// The status recorded afterwards.
        status: MigrationStatus,
    },

    /// A store with data but no metadata row, which no step can interpret.
    #[error("the store has no metadata row; cannot tell its version")]
    NoMetadata,

    /// An existing index entry that decodes and verifies but points elsewhere.
    #[error(
        "conflicting entry in table {table} at key {key} (found while indexing height {height}): \
         it records {stored:?}, the block data says {expected:?}"
    )]
    Conflict {
        /// The table.
        table: &'static str,
        /// The key, in hex.
        key: String,
        /// The height whose data produced the expected entry.
        height: u32,
        /// What the stored entry says.
        stored: TxLocation,
        /// What the block data says.
        expected: TxLocation,
    },

    /// The same key produced twice by the block data (a duplicate txid or a double spend).
    #[error("duplicate key {key} in table {table}: produced at {first:?} and again at {second:?}")]
    Duplicate {
        /// The table.
        table: &'static str,
        /// The key, in hex.
        key: String,
        /// The first location that produced it.
        first: TxLocation,
        /// The second.
        second: TxLocation,
    },

    /// An index entry the block data implies but the table lacks.
    #[error("missing entry in table {table} at key {key} (implied by height {height})")]
    MissingEntry {
        /// The table.
        table: &'static str,
        /// The key, in hex.
        key: String,
        /// The height whose data implies it.
        height: u32,
    },

    /// An index whose row count does not match the block data after it was built.
    #[error(
        "table {table} holds {found} rows after stage {stage}, the block data implies {expected}"
    )]
    CountMismatch {
        /// The table.
        table: &'static str,
        /// The stage that built it.
        stage: &'static str,
        /// Rows present.
        found: u64,
        /// Rows the block data implies.
        expected: u64,
    },

    /// A step that needs the host (the v0 → v1 shadow build) ran without one, or the host
    /// lacks what the step needs.
    #[error("migration step {from} -> {to} needs {what} from the host: {hint}")]
    HostRequired {
        /// The step's source version.
        from: DbVersion,
        /// The step's destination version.
        to: DbVersion,
        /// What is missing.
        what: &'static str,
        /// What the operator can do.
        hint: String,
    },

    /// The block source ends below the legacy store it replaces.
    #[error(
        "the block source reaches height {source_tip:?}, below the v0 store's tip {v0_tip}; cannot promote a shorter v1 store"
    )]
    SourceBehind {
        /// The source's tip.
        source_tip: Option<u32>,
        /// The v0 store's tip.
        v0_tip: u32,
    },

    /// The shadow store failed validation; it was not promoted and v0 was left in place.
    #[error(
        "the v1 shadow store failed validation and was not promoted (v0 still serves): {source}"
    )]
    ShadowInvalid {
        /// The validation failure.
        #[source]
        source: storage_traits::Error,
    },

    /// The accumulator arithmetic failed (overflow, bad input order).
    #[error("accumulator rebuild failed: {0}")]
    Accumulator(#[from] accumulator::AccumulatorError),

    /// The storage layer failed, or a row failed to decode or verify.
    #[error(transparent)]
    Storage(#[from] storage_traits::Error),
}

impl MigrationError {
    /// Converts into the storage layer's error, for hosts whose API returns it: storage
    /// errors pass through, the rest become [`storage_traits::Error::Incompatible`] at `path`.
    pub fn into_storage(self, path: impl Into<std::path::PathBuf>) -> storage_traits::Error {
        match self {
            MigrationError::Storage(e) => e,
            other => storage_traits::Error::Incompatible {
                path: path.into(),
                reason: format!("migration failed: {other}"),
            },
        }
    }
}
