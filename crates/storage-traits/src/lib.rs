//! `storage-traits`: the foundation of Strata.
//!
//! - [`codec`]: canonical CompactSize, a bounds-checked reader, versioned serialisation.
//! - [`model`]: the chain data model with the exact byte layouts of the reference.
//! - [`entry`]: checksum-protected stored values (`StoredEntryFixed`, `StoredEntryVar`).
//! - [`table`]: the [`Table`] trait, the v1 table set, the schema hash, typed access.
//! - [`capability`]: capability flags and the extension traits `finalised-state` implements.
//! - [`kv`]: the key-value backend traits that `store-redb` and `store-lmdb-compat` implement.
//! - `conformance` (feature `conformance`): the suite every backend's tests run.
//!
//! This crate depends on no backend, directly or transitively; CI checks it.

pub mod capability;
pub mod codec;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod entry;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod kv;
pub mod model;
pub mod table;

pub use capability::Capability;
pub use codec::{FixedLen, Reader, Versioned};
pub use entry::{StoredEntry, StoredEntryFixed, StoredEntryVar, blake2b256};
pub use error::{Error, Result};
pub use kv::{Direction, Durability, KeyRange, KvRead, KvStore, KvWrite, PutOutcome, TableSpec};
pub use table::{Table, TableKey, TableRead, TableWrite};
