//! `store-redb`: the [redb](https://docs.rs/redb) backend of Strata.
//!
//! [`RedbStore`] implements the key-value traits of `storage-traits`
//! ([`KvStore`](storage_traits::KvStore), [`KvRead`](storage_traits::KvRead),
//! [`KvWrite`](storage_traits::KvWrite)) on one redb database file:
//!
//! - the file is `<dir>/strata.redb` ([`DB_FILE_NAME`]); the directory is created if missing;
//! - every table of the spec list is created at open, in one synced write transaction;
//!   [`TableKind::Plain`](storage_traits::kv::TableKind::Plain) tables are redb tables
//!   `&[u8] → &[u8]`, [`TableKind::DupSort`](storage_traits::kv::TableKind::DupSort) tables
//!   are redb multimap tables (a key's values iterate in bytewise order, a pair is stored
//!   once);
//! - snapshots ([`RedbSnapshot`]) are redb read transactions; the write transaction
//!   ([`RedbWriter`]) is a redb write transaction — redb admits one at a time and
//!   `begin_write` blocks while another is open;
//! - [`Durability::Synced`](storage_traits::Durability::Synced) commits with redb's
//!   `Durability::Immediate` (fsync before `commit` returns);
//!   [`Durability::Buffered`](storage_traits::Durability::Buffered) commits with redb's
//!   `Durability::None`: atomic and visible at once, but after a crash the database reopens at
//!   the last durable commit (a prefix of the commit sequence, never a torn transaction).
//!   [`KvStore::sync`](storage_traits::KvStore::sync) makes every earlier commit durable with
//!   an empty immediate commit.
//!
//! Errors: every redb error becomes
//! [`Error::Backend`](storage_traits::Error::Backend) with `backend: "redb"`, the operation and
//! the table; a database file that is already open (in this process or another) is
//! [`Error::Locked`](storage_traits::Error::Locked).
//!
//! ```no_run
//! use storage_traits::{Durability, KvRead, KvStore, KvWrite, TableSpec};
//! use store_redb::RedbStore;
//!
//! # fn main() -> storage_traits::Result<()> {
//! const TABLES: &[TableSpec] = &[TableSpec::plain("headers_1_0_0")];
//! let store = RedbStore::open(std::path::Path::new("/var/lib/indexer/db"), TABLES)?;
//! let mut w = store.begin_write()?;
//! w.put("headers_1_0_0", &7u32.to_be_bytes(), b"header bytes")?;
//! w.commit(Durability::Synced)?;
//! assert!(store.begin_read()?.get("headers_1_0_0", &7u32.to_be_bytes())?.is_some());
//! # Ok(())
//! # }
//! ```

mod iter;
mod read;
mod store;
mod write;

pub use read::RedbSnapshot;
pub use store::{BACKEND, DB_FILE_NAME, RedbOptions, RedbStore};
pub use write::RedbWriter;
