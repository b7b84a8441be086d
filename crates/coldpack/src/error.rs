//! The one error type of `coldpack`.

use std::path::PathBuf;

/// Shorthand for results carrying [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while writing, reading, freezing or storing packs.
///
/// Every variant names where: the path, the chunk, the kind, the height, the record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operation on a path failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A pack whose trailer or index is not a valid version-1 pack.
    #[error("corrupt pack {}: {reason}", path.display())]
    CorruptPack {
        /// The pack (or `<memory>`).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A pack of a format version this build does not read.
    #[error("pack {} has format version {found}; this build reads version {supported}", path.display())]
    UnsupportedVersion {
        /// The pack.
        path: PathBuf,
        /// The version in its trailer.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },

    /// A record whose bytes do not match its checksum, or that does not decode.
    #[error("corrupt record {record} (height {height}) at offset {offset} of pack {}: {reason}", path.display())]
    CorruptRecord {
        /// The pack.
        path: PathBuf,
        /// The record number.
        record: u32,
        /// The height the record holds.
        height: u32,
        /// Its byte offset in the pack.
        offset: u64,
        /// What is wrong.
        reason: String,
    },

    /// A record number past the end of a pack.
    #[error("pack {} holds records 0..{count}; record {record} asked for", path.display())]
    RecordOutOfRange {
        /// The pack.
        path: PathBuf,
        /// The record asked for.
        record: u64,
        /// How many the pack holds.
        count: u32,
    },

    /// The writer was misused (records out of order, too long, too many).
    #[error("pack writer for {}: {reason}", path.display())]
    Writer {
        /// The pack being written.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// A content-addressed object whose bytes do not hash to its name, or that does not
    /// parse as the object it should be.
    #[error("corrupt object {hash} at {}: {reason}", path.display())]
    CorruptObject {
        /// The object's name (BLAKE2b-256 hex).
        hash: String,
        /// Its path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// An object that a tree, commit or ref names but the store does not hold.
    #[error("missing object {hash} (named by {referrer})")]
    MissingObject {
        /// The missing object's name.
        hash: String,
        /// Who names it (a ref, a commit, a tree entry).
        referrer: String,
    },

    /// A ref name or ref file that is not valid.
    #[error("bad ref {name}: {reason}")]
    BadRef {
        /// The ref.
        name: String,
        /// What is wrong.
        reason: String,
    },

    /// `verify` found packs whose bytes do not match their names.
    #[error("verify of {reference}: {} damaged pack(s): {}", damaged.len(), damaged.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("; "))]
    VerifyFailed {
        /// The ref walked.
        reference: String,
        /// Each damaged pack, with what is wrong.
        damaged: Vec<DamagedPack>,
    },

    /// Hot-volume loss: the catalog says a chunk's hot store is `ready` but it will not
    /// open. Never healed automatically.
    #[error(
        "hot store of chunk {chunk} is marked ready but cannot be opened ({reason}); the hot volume was lost: restore it, or delete the chunk's hot key and re-derive the chunk from the bulk backend"
    )]
    HotStoreLost {
        /// The chunk.
        chunk: u32,
        /// Why it would not open.
        reason: String,
    },

    /// Cold-volume loss: the catalog says a kind of a chunk is `frozen` but its pack is
    /// missing or unreadable.
    #[error(
        "pack {} of chunk {chunk} kind {kind} is marked frozen but {reason}; the cold volume was lost: restore the file, or delete the key and rebuild the chunk",
        path.display()
    )]
    FrozenPackLost {
        /// The chunk.
        chunk: u32,
        /// The kind.
        kind: String,
        /// The canonical path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The bulk backend did not cover the chunk within the allowed wait.
    #[error(
        "bulk backend does not cover chunk {chunk} (needs height {needed}, backend tip {}) after waiting {waited_ms} ms",
        tip.map_or_else(|| "none".to_owned(), |t| t.to_string())
    )]
    BackendCoverageTimeout {
        /// The chunk.
        chunk: u32,
        /// The last height of the chunk.
        needed: u32,
        /// The backend's tip when the wait gave up.
        tip: Option<u32>,
        /// How long it waited.
        waited_ms: u64,
    },

    /// No source can supply the chunk (no ready hot store, no usable pack, no backend).
    #[error("no source for chunk {chunk}: {reason}")]
    NoSource {
        /// The chunk.
        chunk: u32,
        /// Why each source was refused.
        reason: String,
    },

    /// A source yielded something other than exactly the chunk's heights in order.
    #[error("source {source_name} for chunk {chunk} is inconsistent: {reason}")]
    SourceMismatch {
        /// Which source.
        source_name: String,
        /// The chunk.
        chunk: u32,
        /// What is wrong.
        reason: String,
    },

    /// A kind the freezer does not know (no extractor registered for it).
    #[error("unknown kind {kind}: {reason}")]
    UnknownKind {
        /// The kind.
        kind: String,
        /// Why.
        reason: String,
    },

    /// The catalog (or another collaborator) failed.
    #[error("catalog error during {operation}: {source}")]
    Catalog {
        /// What was being done.
        operation: String,
        /// The catalog's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// An error from the shared foundation (decoding a payload, a fixture backend).
    #[error(transparent)]
    Storage(#[from] storage_traits::Error),

    /// An error from the fixture reader behind the local bulk backend.
    #[error(transparent)]
    Fixture(#[from] fixtures::Error),

    /// A simulated stop at a protocol step (crash tests only).
    #[error("stopped at protocol step {0:?}")]
    Stopped(crate::process::Step),
}

/// One pack that `verify` found damaged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamagedPack {
    /// The manifest entry's kind.
    pub kind: String,
    /// The chunk.
    pub chunk: u32,
    /// The object's name.
    pub hash: String,
    /// The object's path.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for DamagedPack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} chunk {} object {} ({}): {}",
            self.kind,
            self.chunk,
            self.hash,
            self.path.display(),
            self.reason
        )
    }
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A catalog error during `operation`.
    pub fn catalog(
        operation: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Catalog {
            operation: operation.into(),
            source: source.into(),
        }
    }

    /// Whether this error means data was lost (fatal, never retried).
    pub fn is_loss(&self) -> bool {
        matches!(
            self,
            Error::HotStoreLost { .. } | Error::FrozenPackLost { .. }
        )
    }
}

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}
