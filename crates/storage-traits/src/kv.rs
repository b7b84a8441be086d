//! The key-value backend traits. They never see a backend: `store-redb` and
//! `store-lmdb-compat` implement them, and the conformance suite (feature `conformance`)
//! holds every implementation to the same behaviour.
//!
//! The model is LMDB's: named tables of byte keys ordered bytewise; any number of read
//! snapshots; one write transaction at a time (a second `begin_write` waits for the first
//! to commit or drop); a dropped write transaction leaves nothing behind.

use std::ops::{Bound, ControlFlow};

use crate::error::Result;

/// How a table stores its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TableKind {
    /// One value per key.
    Plain,
    /// Many values per key (LMDB `DUP_SORT`): each (key, value) pair is stored once, a key's
    /// values iterate in bytewise value order. Keys are exactly `key_len` bytes.
    DupSort {
        /// The fixed key length.
        key_len: usize,
    },
}

/// A named table a store is opened with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TableSpec {
    /// The table's name, with its version suffix (`txid_location_1_0_0`).
    pub name: &'static str,
    /// Plain or duplicate-sorted.
    pub kind: TableKind,
}

impl TableSpec {
    /// A plain table.
    pub const fn plain(name: &'static str) -> Self {
        TableSpec {
            name,
            kind: TableKind::Plain,
        }
    }

    /// A duplicate-sorted table with keys of `key_len` bytes.
    pub const fn dup_sort(name: &'static str, key_len: usize) -> Self {
        TableSpec {
            name,
            kind: TableKind::DupSort { key_len },
        }
    }
}

/// Whether a commit waits for the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Durability {
    /// The commit returns once its data is on stable storage (fsync).
    Synced,
    /// The commit is atomic and visible at once, but may be lost by a crash until a later
    /// synced commit or [`KvStore::sync`]. It is never torn: after a crash the store holds a
    /// prefix of the commit sequence.
    Buffered,
}

/// A range of keys, by bounds on the key bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    /// Lower bound.
    pub start: Bound<Vec<u8>>,
    /// Upper bound.
    pub end: Bound<Vec<u8>>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> Self {
        KeyRange {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// Keys in `[start, end)`.
    pub fn half_open(start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) -> Self {
        KeyRange {
            start: Bound::Included(start.into()),
            end: Bound::Excluded(end.into()),
        }
    }

    /// Keys in `[start, end]`.
    pub fn inclusive(start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) -> Self {
        KeyRange {
            start: Bound::Included(start.into()),
            end: Bound::Included(end.into()),
        }
    }

    /// Keys `>= start`.
    pub fn from(start: impl Into<Vec<u8>>) -> Self {
        KeyRange {
            start: Bound::Included(start.into()),
            end: Bound::Unbounded,
        }
    }

    /// Keys that start with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Self {
        KeyRange {
            start: Bound::Included(prefix.to_vec()),
            end: match prefix_successor(prefix) {
                Some(end) => Bound::Excluded(end),
                None => Bound::Unbounded,
            },
        }
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let above = match &self.start {
            Bound::Included(s) => key >= s.as_slice(),
            Bound::Excluded(s) => key > s.as_slice(),
            Bound::Unbounded => true,
        };
        let below = match &self.end {
            Bound::Included(e) => key <= e.as_slice(),
            Bound::Excluded(e) => key < e.as_slice(),
            Bound::Unbounded => true,
        };
        above && below
    }

    /// Whether no key can lie in the range (start above end).
    pub fn is_empty(&self) -> bool {
        match (&self.start, &self.end) {
            (Bound::Included(s), Bound::Included(e)) => s > e,
            (Bound::Included(s), Bound::Excluded(e))
            | (Bound::Excluded(s), Bound::Included(e))
            | (Bound::Excluded(s), Bound::Excluded(e)) => s >= e,
            _ => false,
        }
    }
}

/// The smallest key greater than every key starting with `prefix`, or `None` when there is
/// none (the prefix is empty or all `0xFF`).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Iteration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Ascending keys.
    Forward,
    /// Descending keys.
    Reverse,
}

/// An owned key and value.
pub type KvPair = (Vec<u8>, Vec<u8>);

/// The visitor of [`KvRead::visit_range`]: borrowed key and value bytes in, continue or stop
/// out.
pub type RowVisitor<'a> = dyn FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>> + 'a;

/// An iterator over rows, each possibly a backend error.
pub type KvIter<'a> = Box<dyn Iterator<Item = Result<KvPair>> + 'a>;

/// A key-value store: a set of named tables.
pub trait KvStore: Send + Sync {
    /// A consistent read snapshot.
    type Snapshot<'a>: KvRead
    where
        Self: 'a;
    /// A write transaction.
    type Writer<'a>: KvWrite
    where
        Self: 'a;

    /// A short name for the backend, used in errors (`redb`, `rocksdb`).
    fn backend_name(&self) -> &'static str;

    /// The tables the store was opened with.
    fn tables(&self) -> &[TableSpec];

    /// A read snapshot: it sees every commit made before it was taken and none after.
    fn begin_read(&self) -> Result<Self::Snapshot<'_>>;

    /// The write transaction. Waits while another one is open.
    fn begin_write(&self) -> Result<Self::Writer<'_>>;

    /// The value under `key` (on a duplicate-sorted table, its first value) as a snapshot
    /// taken now would read it: for a lone read that needs no snapshot around it, which a
    /// backend may then skip setting up (RocksDB reads the latest committed state
    /// atomically without one).
    fn get_latest(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.begin_read()?.get(table, key)
    }

    /// Makes every earlier commit durable, including [`Durability::Buffered`] ones.
    fn sync(&self) -> Result<()>;
}

/// Reads, shared by snapshots and write transactions (which see their own writes).
pub trait KvRead {
    /// The value under `key`. On a duplicate-sorted table, the key's first value.
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Rows whose keys lie in `range`, in `direction`. On a duplicate-sorted table, every
    /// (key, value) pair, ordered by key and then value.
    fn range(&self, table: &str, range: KeyRange, direction: Direction) -> Result<KvIter<'_>>;

    /// The values stored under `key` of a duplicate-sorted table, in value order.
    fn get_dup(&self, table: &str, key: &[u8]) -> Result<Vec<Vec<u8>>>;

    /// The number of rows (pairs, on a duplicate-sorted table).
    fn len(&self, table: &str) -> Result<u64>;

    /// The row with the smallest key.
    fn first(&self, table: &str) -> Result<Option<KvPair>> {
        self.range(table, KeyRange::all(), Direction::Forward)?
            .next()
            .transpose()
    }

    /// The row with the largest key.
    fn last(&self, table: &str) -> Result<Option<KvPair>> {
        self.range(table, KeyRange::all(), Direction::Reverse)?
            .next()
            .transpose()
    }

    /// Rows whose keys start with `prefix`.
    fn prefix(&self, table: &str, prefix: &[u8], direction: Direction) -> Result<KvIter<'_>> {
        self.range(table, KeyRange::prefix(prefix), direction)
    }

    /// Whether the table has no rows.
    fn is_empty(&self, table: &str) -> Result<bool> {
        Ok(self.first(table)?.is_none())
    }

    /// The rows of [`KvRead::range`], same order, lent to `visit` as borrowed bytes instead
    /// of owned pairs, so a backend that can read rows in place (redb) allocates nothing per
    /// row: for long scans that only decode or aggregate. `visit` returns
    /// [`ControlFlow::Break`] to stop early; an error from it stops the scan and is returned.
    fn visit_range(
        &self,
        table: &str,
        range: KeyRange,
        direction: Direction,
        visit: &mut RowVisitor<'_>,
    ) -> Result<()> {
        for row in self.range(table, range, direction)? {
            let (key, value) = row?;
            if visit(&key, &value)?.is_break() {
                break;
            }
        }
        Ok(())
    }
}

/// Whether `put_if_absent_or_identical` wrote anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PutOutcome {
    /// The key was absent; the value was written.
    Inserted,
    /// The same value was already stored; nothing changed.
    AlreadyPresent,
}

/// A write transaction. Nothing it does is visible to snapshots until [`KvWrite::commit`];
/// dropping it without committing discards everything.
pub trait KvWrite: KvRead {
    /// Stores `value` under `key`, replacing any value. On a duplicate-sorted table, adds
    /// the pair (a pair already present is stored once).
    fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<()>;

    /// Removes `key` (every value of it, on a duplicate-sorted table). Absent keys are fine.
    fn delete(&mut self, table: &str, key: &[u8]) -> Result<()>;

    /// Removes one (key, value) pair of a duplicate-sorted table. Absent pairs are fine.
    fn delete_dup(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<()>;

    /// Stores `value` under an absent `key`; accepts an identical stored value; fails with
    /// [`crate::Error::Conflict`] on a different one, writing nothing.
    fn put_if_absent_or_identical(
        &mut self,
        table: &str,
        key: &[u8],
        value: &[u8],
    ) -> Result<PutOutcome> {
        match self.get(table, key)? {
            None => {
                self.put(table, key, value)?;
                Ok(PutOutcome::Inserted)
            }
            Some(existing) if existing == value => Ok(PutOutcome::AlreadyPresent),
            Some(_) => Err(crate::Error::Conflict {
                table: table.to_owned(),
                key: hex::encode(key),
            }),
        }
    }

    /// Puts a batch of rows already sorted by strictly ascending key. Backends may use the
    /// order for an append-friendly path; unsorted input is an
    /// [`crate::Error::UnsortedInsert`] and leaves the transaction as it was before the
    /// call's first out-of-order key (the transaction should then be dropped).
    fn insert_sorted(
        &mut self,
        table: &str,
        rows: &mut dyn Iterator<Item = (&[u8], &[u8])>,
    ) -> Result<u64> {
        let mut previous: Option<Vec<u8>> = None;
        let mut n = 0;
        for (key, value) in rows {
            if let Some(prev) = &previous
                && key <= prev.as_slice()
            {
                return Err(crate::Error::UnsortedInsert {
                    table: table.to_owned(),
                    key: hex::encode(key),
                    previous: hex::encode(prev),
                });
            }
            self.put(table, key, value)?;
            previous = Some(key.to_vec());
            n += 1;
        }
        Ok(n)
    }

    /// Removes every row of the table.
    fn clear(&mut self, table: &str) -> Result<()>;

    /// Commits atomically with the given durability.
    fn commit(self, durability: Durability) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successor_carries() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_successor(&[]), None);
    }

    #[test]
    fn prefix_range_contains_exactly_the_prefixed_keys() {
        let r = KeyRange::prefix(&[1, 0xFF]);
        assert!(r.contains(&[1, 0xFF]));
        assert!(r.contains(&[1, 0xFF, 0xFF, 0xFF]));
        assert!(!r.contains(&[2]));
        assert!(!r.contains(&[1, 0xFE, 0xFF]));
    }
}
