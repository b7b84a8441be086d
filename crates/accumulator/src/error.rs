//! The crate's error type.

use std::fmt;

/// A counter of the accumulator, named in overflow and underflow errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// `transactions`.
    Transactions,
    /// `transaction_outputs`.
    TransactionOutputs,
    /// `bytes_serialized`.
    BytesSerialized,
    /// `total_zatoshis`.
    TotalZatoshis,
}

impl Field {
    /// The field's name as stored and as `gettxoutsetinfo` reports it.
    pub fn name(self) -> &'static str {
        match self {
            Field::Transactions => "transactions",
            Field::TransactionOutputs => "transaction_outputs",
            Field::BytesSerialized => "bytes_serialized",
            Field::TotalZatoshis => "total_zatoshis",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that can go wrong in the accumulator.
///
/// An operation that returns an error leaves the accumulator it was called on unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccumulatorError {
    /// Adding would overflow a u64 counter.
    #[error("accumulator overflow in {field}{}", fmt_txid(txid))]
    Overflow {
        /// The counter that would overflow.
        field: Field,
        /// The transaction being applied, in hex (internal order), when there was one.
        txid: Option<String>,
    },

    /// Removing would take a counter below zero: the caller removed something that was
    /// never added.
    #[error("accumulator underflow in {field}{}", fmt_txid(txid))]
    Underflow {
        /// The counter that would underflow.
        field: Field,
        /// The transaction being applied, in hex (internal order), when there was one.
        txid: Option<String>,
    },

    /// A transaction delta that contradicts itself: it removes more counted outputs than the
    /// transaction had unspent.
    #[error(
        "inconsistent delta for txid {txid}: {counted_unspent_before} counted unspent outputs \
         before, {added} added, {removed} removed"
    )]
    InconsistentDelta {
        /// The transaction, in hex (internal order).
        txid: String,
        /// What the caller said the transaction had before.
        counted_unspent_before: u64,
        /// Counted outputs the delta adds.
        added: u64,
        /// Counted outputs the delta removes.
        removed: u64,
    },

    /// The same output appears twice in one list of a delta, or twice in a rebuild input.
    #[error("output {txid}:{vout} appears twice")]
    DuplicateOutput {
        /// The transaction, in hex (internal order).
        txid: String,
        /// The output index.
        vout: u32,
    },

    /// A rebuild input that breaks the input contract: the outputs of one transaction must
    /// be adjacent, with strictly ascending output indexes.
    #[error("rebuild input out of order at {txid}:{vout}: {reason}")]
    UnorderedInput {
        /// The transaction, in hex (internal order).
        txid: String,
        /// The output index.
        vout: u32,
        /// What was wrong.
        reason: &'static str,
    },

    /// A stored accumulator whose counters contradict each other (for example
    /// `bytes_serialized != transaction_outputs * 65`).
    #[error("invalid stored accumulator: {reason}")]
    InvalidStored {
        /// What was wrong.
        reason: String,
    },

    /// The stored entry's checksum does not match its key and body.
    #[error("checksum mismatch in table {table} at key {key}")]
    ChecksumMismatch {
        /// The table the entry belongs to.
        table: &'static str,
        /// The key, in hex.
        key: String,
    },

    /// An error from the storage layer: bytes that do not decode (a stored entry, a
    /// serialised MuHash state), or a failed read of the caller's rebuild input.
    #[error(transparent)]
    Storage(#[from] storage_traits::Error),
}

fn fmt_txid(txid: &Option<String>) -> String {
    txid.as_ref()
        .map(|t| format!(" (txid {t})"))
        .unwrap_or_default()
}

/// Shorthand for results carrying [`AccumulatorError`].
pub type Result<T, E = AccumulatorError> = std::result::Result<T, E>;
