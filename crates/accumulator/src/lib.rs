//! `accumulator`: the order-independent summary of the finalised transparent UTXO set that
//! serves `gettxoutsetinfo` (v1.2 `tx_out_set_info_accumulator`).
//!
//! - [`digest`]: the 81-byte per-output message and its BLAKE2b-256 digest.
//! - [`Accumulator`]: the XOR-BLAKE2b accumulator (`transactions`, `transaction_outputs`,
//!   `bytes_serialized`, `hash_serialized`, `total_zatoshis`), maintained incrementally by
//!   per-transaction deltas ([`TxDelta`]) with checked arithmetic, and converted to and from
//!   its stored form (`StoredEntryFixed<TxOutSetInfo>` under `ACCUMULATOR_KEY`).
//! - [`mod@rebuild`]: the parallel bulk rebuild from the unspent outputs (rayon), and the
//!   [`SetCommitment`] trait that lets partial results combine.
//! - [`freshness`]: the built-height watermark and [`Freshness`].
//! - `muhash` (feature `muhash`): MuHash3072, Bitcoin Core's secure multiset hash, as an
//!   opt-in second commitment.
//!
//! This crate does no I/O: the finalised-state crate reads and writes the rows; this crate
//! computes, encodes and verifies them.
//!
//! # What is counted
//!
//! Only P2PKH and P2SH outputs ([`is_counted`]); every other script type is treated as
//! provably unspendable, as zcashd's `IsUnspendable()` does. `bytes_serialized` is
//! `transaction_outputs × 65` by construction (the message without its 16-byte tag).
//!
//! # Threat models
//!
//! **XOR-BLAKE2b (`hash_serialized`) detects accidents, not adversaries.** XOR is linear
//! over GF(2): given a few more than 256 outputs whose digests an attacker can choose among
//! (a few hundred chosen outputs), Gaussian elimination finds a subset whose digests XOR to
//! zero, or to any target, so two different UTXO sets can be made to share a hash
//! (Wagner's generalised birthday attack makes it cheap even with fewer degrees of
//! freedom). Use it to catch corruption, missed or doubled updates and diverging
//! rebuilds — failures nobody steered — not to prove a set to a party that could have
//! influenced it. It is not byte-equal to zcashd's `hash_serialized`.
//!
//! **MuHash3072 is a secure multiset hash.** Combining elements by multiplication modulo a
//! 3072-bit prime, with elements derived from a hash, is collision resistant under
//! discrete-logarithm-style assumptions: finding two distinct multisets with the same hash
//! is believed to be as hard as breaking a discrete logarithm in that group. It costs a
//! 3072-bit modular multiplication per update (see the README for measured rates), which is
//! why it is opt-in.
//!
//! Both are commutative and invertible, so both can be maintained incrementally and
//! rebuilt in any order and on any number of threads with the same result.

pub mod accumulator;
pub mod digest;
pub mod error;
pub mod freshness;
#[cfg(feature = "muhash")]
pub mod muhash;
pub mod rebuild;

pub use accumulator::{Accumulator, FinalisedTxOutSetInfoAccumulator, TxDelta};
pub use digest::{DOMAIN_TAG, ENTRY_LEN, MESSAGE_LEN, entry_digest, entry_message, is_counted};
pub use error::{AccumulatorError, Field, Result};
pub use freshness::{Freshness, watermark_entry, watermark_from_stored_bytes};
#[cfg(feature = "muhash")]
pub use muhash::{MuHash3072, TxOutSetMuHash};
pub use rebuild::{
    SetCommitment, UnspentOutput, rebuild, rebuild_from_slice, rebuild_from_slice_with_chunk,
    try_rebuild,
};
