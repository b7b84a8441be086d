//! The one error type of `storage-traits`, shared by the backends and the crates above.

use std::path::PathBuf;

/// Shorthand for results carrying [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong below the finalised state.
///
/// Every variant says *what* and *where*: the type or table, the key in hex, the height when
/// the key carries one, the path for I/O.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes that do not decode as the named type.
    #[error("cannot decode {type_name}: {reason}")]
    Decode {
        /// The type being decoded.
        type_name: &'static str,
        /// What was wrong with the bytes.
        reason: String,
    },

    /// A stored value whose checksum does not match its key and body.
    #[error("checksum mismatch in table {table} at key {key}{}", fmt_height(*height))]
    ChecksumMismatch {
        /// The table the row was read from.
        table: &'static str,
        /// The row's key, in hex.
        key: String,
        /// The height the key names, when it names one.
        height: Option<u32>,
    },

    /// A stored row that cannot be decoded (a torn or foreign value, or a decoder bug).
    #[error("corrupt row in table {table} at key {key}{}: {reason}", fmt_height(*height))]
    Corrupt {
        /// The table the row was read from.
        table: &'static str,
        /// The row's key, in hex.
        key: String,
        /// The height the key names, when it names one.
        height: Option<u32>,
        /// What was wrong.
        reason: String,
    },

    /// `put_if_absent_or_identical` found a different value already stored under the key.
    #[error("conflicting value in table {table} at key {key}: a different value is already stored")]
    Conflict {
        /// The table written to.
        table: String,
        /// The key, in hex.
        key: String,
    },

    /// `insert_sorted` was handed keys that are not strictly ascending.
    #[error("unsorted bulk insert into table {table}: key {key} does not follow {previous}")]
    UnsortedInsert {
        /// The table written to.
        table: String,
        /// The offending key, in hex.
        key: String,
        /// The key before it, in hex.
        previous: String,
    },

    /// A table that the store was not opened with.
    #[error("unknown table {table}: the store was not opened with it")]
    UnknownTable {
        /// The table asked for.
        table: String,
    },

    /// A trait method was called on a store that does not serve its capability.
    #[error("feature unavailable: {capability}")]
    FeatureUnavailable {
        /// The name of the missing capability, e.g. `TRANSPARENT_HIST_EXT`.
        capability: &'static str,
    },

    /// An operation on a path failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The key-value backend failed.
    #[error(
        "{backend} backend error during {operation}{}: {source}",
        fmt_table(table)
    )]
    Backend {
        /// Which backend (`redb`, `rocksdb`).
        backend: &'static str,
        /// What was being done (`open`, `commit`, `get`, …).
        operation: &'static str,
        /// The table involved, when one was.
        table: Option<String>,
        /// The backend's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A block that cannot be written (or a stored block that fails validation).
    #[error("invalid block at height {height} (hash {hash}): {reason}")]
    InvalidBlock {
        /// The block's height.
        height: u32,
        /// The block's hash, hex in stored order.
        hash: String,
        /// What is wrong.
        reason: String,
    },

    /// Data that no tier of the store holds (pruned, never stored, or below the start height).
    #[error("not available: {what}")]
    NotAvailable {
        /// What was asked for.
        what: String,
    },

    /// A height above the synced tip.
    #[error("height {height} is not yet synced (tip {})", tip.map_or_else(|| "none".to_owned(), |t| t.to_string()))]
    NotYetSynced {
        /// The height asked for.
        height: u32,
        /// The current tip, if any.
        tip: Option<u32>,
    },

    /// A store this build cannot open as it is: a newer version, a schema-hash mismatch, a
    /// migration that is needed but not available, another backend's files.
    #[error("cannot open store at {}: {reason}", path.display())]
    Incompatible {
        /// The store's directory.
        path: PathBuf,
        /// Why, and what the operator can do.
        reason: String,
    },

    /// Two processes tried to open the same store.
    #[error("{} is already open in another process (lock held)", path.display())]
    Locked {
        /// The store's directory or file.
        path: PathBuf,
    },
}

fn fmt_height(height: Option<u32>) -> String {
    height.map(|h| format!(" (height {h})")).unwrap_or_default()
}

fn fmt_table(table: &Option<String>) -> String {
    table
        .as_ref()
        .map(|t| format!(" on table {t}"))
        .unwrap_or_default()
}

impl Error {
    /// A decode error for `type_name`.
    pub fn decode(type_name: &'static str, reason: impl Into<String>) -> Self {
        Error::Decode {
            type_name,
            reason: reason.into(),
        }
    }

    /// A backend error, boxing the backend's own error.
    pub fn backend(
        backend: &'static str,
        operation: &'static str,
        table: Option<&str>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Backend {
            backend,
            operation,
            table: table.map(str::to_owned),
            source: source.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
