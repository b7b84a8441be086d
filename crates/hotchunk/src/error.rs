//! The crate's error type. Every variant names what it was doing and where: the chunk, the
//! height, the catalog key, the path.

use std::path::PathBuf;

use crate::geometry::ChunkId;

/// Shorthand for results carrying [`HotError`].
pub type Result<T, E = HotError> = std::result::Result<T, E>;

/// Everything that can go wrong in the hot tier and the catalog.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HotError {
    /// A chunk geometry that cannot work (zero chunk size, zero chunks per bucket).
    #[error("invalid chunk geometry: {reason}")]
    InvalidGeometry {
        /// What is wrong.
        reason: String,
    },

    /// A height below the geometry's first height, or a chunk whose heights overflow `u32`.
    #[error(
        "height {height} is outside the geometry (first height {first_height}, chunk size {chunk_size})"
    )]
    HeightOutOfRange {
        /// The height.
        height: u64,
        /// The geometry's first height.
        first_height: u32,
        /// The geometry's chunk size.
        chunk_size: u32,
    },

    /// A kind name that cannot be a catalog key segment or a directory name.
    #[error("invalid kind name {name:?}: {reason}")]
    InvalidKind {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// The storage root is held by another process (or another catalog in this one).
    #[error(
        "storage root {} is already in use: another process holds {}; stop it first (two processes on one root would corrupt each other's hot stores)",
        root.display(),
        lock_file.display()
    )]
    Locked {
        /// The storage root.
        root: PathBuf,
        /// The lock file.
        lock_file: PathBuf,
    },

    /// The catalog on disk was created with another geometry, or another backend's catalog
    /// is present.
    #[error("cannot open the catalog at {}: {reason}", path.display())]
    IncompatibleCatalog {
        /// The catalog's directory.
        path: PathBuf,
        /// Why, and what the operator can do.
        reason: String,
    },

    /// A catalog value that does not decode (unknown version or state byte).
    #[error("corrupt catalog value under key {key:?} (value {value_hex}): {reason}")]
    CorruptCatalog {
        /// The key, as ASCII.
        key: String,
        /// The stored value, in hex.
        value_hex: String,
        /// What is wrong.
        reason: String,
    },

    /// The catalog key of a chunk says `ready` but the chunk's hot directory is missing: the
    /// hot volume was lost (or is not mounted). Never repaired automatically, since
    /// recreating the directory would silently drop acknowledged heights.
    #[error(
        "hot volume lost: catalog key {key} says chunk {chunk} (heights {first_height}..={last_height}) is ready, \
         but its hot store {} is missing{detail}. Its acknowledged heights are not on this machine. \
         Either restore or remount the hot volume so that {} exists again and reopen; or accept the loss: \
         call `hotchunk::HotTier::forget_lost_chunk(ChunkId({}))` (it deletes key {key}, and only while the \
         directory is missing), then re-ingest heights {first_height}..={last_height} from the bulk backend.",
        path.display(),
        path.display(),
        chunk.0
    )]
    HotVolumeLost {
        /// The chunk.
        chunk: ChunkId,
        /// Its catalog key (`hot:chunk:{c:08}`).
        key: String,
        /// The missing directory.
        path: PathBuf,
        /// The chunk's first height.
        first_height: u32,
        /// The chunk's last height.
        last_height: u32,
        /// What exactly is missing (the directory, or RocksDB's `CURRENT` file inside it).
        detail: String,
    },

    /// `forget_lost_chunk` on a chunk whose hot store is still there.
    #[error(
        "chunk {chunk}'s hot store {} is present, so it is not lost; refusing to forget it (use discard_hot_db_for_chunk to drop it on purpose)",
        path.display()
    )]
    NotLost {
        /// The chunk.
        chunk: ChunkId,
        /// Its directory.
        path: PathBuf,
    },

    /// A hot store or view of the chunk is still open where the operation needs none open
    /// (a discard, a second writable open).
    #[error(
        "chunk {chunk}'s hot store {} is still open ({holders}); close every HotStore and HotView of it before {operation}",
        path.display()
    )]
    ChunkInUse {
        /// The chunk.
        chunk: ChunkId,
        /// Its directory.
        path: PathBuf,
        /// What was refused (`discarding it`, `opening it for writing`).
        operation: &'static str,
        /// Who holds it (`a writable HotStore`, `2 handles`).
        holders: String,
    },

    /// A read-only view asked for a chunk that is not `ready` in the catalog.
    #[error("chunk {chunk} has no ready hot store (catalog key {key} is {state}); nothing to view at {}", path.display())]
    NotReady {
        /// The chunk.
        chunk: ChunkId,
        /// Its catalog key.
        key: String,
        /// The key's state (`absent`, `transient`).
        state: &'static str,
        /// Its directory.
        path: PathBuf,
    },

    /// A height handed to a chunk's hot store that is not the next one it expects.
    #[error(
        "chunk {chunk} ({}) expects height {expected} next, got {height}{}",
        path.display(),
        if *expected > u64::from(*last_height) { " (the chunk is full)" } else { "" }
    )]
    NotNextHeight {
        /// The chunk.
        chunk: ChunkId,
        /// The height given.
        height: u32,
        /// The height expected.
        expected: u64,
        /// The chunk's last height.
        last_height: u32,
        /// The store's directory.
        path: PathBuf,
    },

    /// A stored row of a hot store that does not decode, or a store holding another chunk.
    #[error("corrupt hot store of chunk {chunk} at {}{}: {reason}", path.display(), height.map(|h| format!(", height {h}")).unwrap_or_default())]
    CorruptHot {
        /// The chunk.
        chunk: ChunkId,
        /// The height of the row, when a row is at fault.
        height: Option<u32>,
        /// The store's directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A payload that the codec refused (too large to frame, or compression failed).
    #[error("cannot encode the payload of height {height} for chunk {chunk}: {reason}")]
    Encode {
        /// The chunk.
        chunk: ChunkId,
        /// The height.
        height: u32,
        /// Why.
        reason: String,
    },

    /// A filesystem operation failed.
    #[error("{operation} failed on {}{}: {source}", path.display(), chunk.map(|c| format!(" (chunk {c})")).unwrap_or_default())]
    Io {
        /// What was being done (`fsync`, `remove hot directory`, …).
        operation: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The chunk concerned, when one is.
        chunk: Option<ChunkId>,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The key-value backend (catalog or hot store) failed.
    #[error("{operation} failed on {}{}{}: {source}", path.display(),
        chunk.map(|c| format!(" (chunk {c})")).unwrap_or_default(),
        height.map(|h| format!(" at height {h}")).unwrap_or_default())]
    Storage {
        /// What was being done (`commit height`, `catalog commit`, `open hot store`).
        operation: &'static str,
        /// The store's directory.
        path: PathBuf,
        /// The chunk concerned, when one is.
        chunk: Option<ChunkId>,
        /// The height concerned, when one is.
        height: Option<u32>,
        /// The backend's error (boxed: it is large, and errors travel in every `Result`).
        #[source]
        source: Box<storage_traits::Error>,
    },

    /// A simulated power loss: the crash hook stopped the operation before step `step`.
    /// Only produced with the `crash-hooks` feature (tests).
    #[error("stopped at step {step} ({name}) by the crash hook (simulated power loss)")]
    SimulatedCrash {
        /// The step's ordinal in the hook's count.
        step: u64,
        /// The step's name (`open: mark transient`, …).
        name: &'static str,
    },
}

impl HotError {
    pub(crate) fn io(
        operation: &'static str,
        path: impl Into<PathBuf>,
        chunk: Option<ChunkId>,
        source: std::io::Error,
    ) -> Self {
        HotError::Io {
            operation,
            path: path.into(),
            chunk,
            source,
        }
    }

    /// Whether this is the simulated crash of the test hook.
    pub fn is_simulated_crash(&self) -> bool {
        matches!(self, HotError::SimulatedCrash { .. })
    }
}
