//! The one error type of `tiered`.

/// Shorthand for results carrying [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the tiered store. Reads of heights no tier holds are
/// `Storage(NotAvailable)`, reads above the tip `Storage(NotYetSynced)` (see
/// [`Error::is_not_available`], [`Error::is_not_yet_synced`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The finalised state failed, or a read's `NotAvailable` / `NotYetSynced`.
    #[error(transparent)]
    Storage(#[from] storage_traits::Error),

    /// The catalog or a hot store failed (including hot-volume loss).
    #[error(transparent)]
    Hot(#[from] hotchunk::HotError),

    /// Freezing, a pack or the object store failed (including cold-volume loss).
    #[error(transparent)]
    Cold(#[from] coldpack::Error),

    /// `ingest` was given a height other than the next one.
    #[error("ingest of height {height} refused: the next height is {expected}")]
    NotNextHeight {
        /// The block's height.
        height: u32,
        /// The height the store expects.
        expected: u32,
    },

    /// A block whose header carries no height.
    #[error("ingest refused: the block {hash} has no height in its header")]
    BlockWithoutHeight {
        /// The block's hash.
        hash: String,
    },

    /// A configuration that cannot work.
    #[error("invalid tiered-store configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },

    /// The tiers disagree in a way open cannot repair on its own.
    #[error("the tiers of {} disagree: {reason}", root.display())]
    Disagree {
        /// The storage root.
        root: std::path::PathBuf,
        /// What disagrees, and what the operator can do.
        reason: String,
    },

    /// The background lifecycle thread panicked.
    #[error("the lifecycle thread panicked: {0}")]
    LifecyclePanicked(String),
}

impl Error {
    /// A read of a height no tier holds (pruned past retention, lost hot store forgotten,
    /// never frozen): not the same as a height above the tip.
    pub fn is_not_available(&self) -> bool {
        matches!(
            self,
            Error::Storage(storage_traits::Error::NotAvailable { .. })
        )
    }

    /// A read of a height above the tip: it may be readable later.
    pub fn is_not_yet_synced(&self) -> bool {
        matches!(
            self,
            Error::Storage(storage_traits::Error::NotYetSynced { .. })
        )
    }

    /// Data was lost (a `ready` hot store that will not open, a `frozen` pack that is
    /// missing): fatal, never retried; the message says how to recover.
    pub fn is_loss(&self) -> bool {
        match self {
            Error::Cold(e) => e.is_loss(),
            Error::Hot(hotchunk::HotError::HotVolumeLost { .. }) => true,
            _ => false,
        }
    }
}
