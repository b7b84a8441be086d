//! [`RowCache`]: the transparent rows the write path and validation read outputs from.
//!
//! An input names the output it spends by txid and index; its value and script live in the
//! `transparent` row of the block that created it. A spam block's row is 2 MB and an input
//! needs 30 bytes of it, and the inputs of later blocks spend from hundreds of such rows in
//! no useful order. So rows are kept as their encodings with an index of where each
//! transaction starts ([`EncodedTransparentList`]): a read decodes one output, never a list.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use storage_traits::entry::StoredEntry;
use storage_traits::kv::KvRead;
use storage_traits::model::{
    EncodedTransparentList, Height, TransparentCompactTx, TxLocation, TxOutCompact,
};
use storage_traits::table::{Table, Transparent, row_corrupt, verified_item_bytes};
use storage_traits::{Error, Result, TableKey};

/// The most the cache holds by default: a fixed bound, part of the sync's fixed memory base
/// rather than of the batch budget.
pub(crate) const ROW_CACHE_BYTES: usize = 64 << 20;

/// Transparent rows by height, least recently used evicted first, by bytes held.
///
/// **Verification.** A row's BLAKE2b checksum is verified the first time the cache reads it;
/// the cache remembers the heights it has verified (a bit each), so a row evicted and read
/// again later is not hashed again. This is what RocksDB does with its block cache (a block
/// is verified when it is read from its file, not each time it is used), with the process's
/// own reads standing in for the cache: the bytes are the same committed, immutable row.
/// Full validation (`validate`) and every other read path verify each read.
///
/// **Validity.** An entry is valid while the row at its height is unchanged. Rows change only
/// when a block is deleted ([`RowCache::forget`] that height) or a write fails after reading
/// its own uncommitted rows ([`RowCache::clear`]); the owners call those.
pub(crate) struct RowCache {
    /// The most the rows may hold, in bytes.
    cap: usize,
    /// Bytes held.
    bytes: usize,
    /// Height → (row, its size, the tick it was last used at).
    rows: HashMap<u32, (Arc<EncodedTransparentList>, usize, u64)>,
    /// Last-use tick → height: the eviction order.
    by_use: BTreeMap<u64, u32>,
    tick: u64,
    /// Bit `h` set: the row at height `h` has been verified by this cache.
    verified: Vec<u64>,
}

impl Default for RowCache {
    fn default() -> Self {
        RowCache::with_byte_cap(ROW_CACHE_BYTES)
    }
}

impl RowCache {
    /// An empty cache holding at most `cap` bytes of rows.
    pub(crate) fn with_byte_cap(cap: usize) -> Self {
        RowCache {
            cap,
            bytes: 0,
            rows: HashMap::new(),
            by_use: BTreeMap::new(),
            tick: 0,
            verified: Vec::new(),
        }
    }

    /// Output `vout` of the transaction at `location`; `None` when the row has no such
    /// transaction or output. A missing row is corruption (a location points at it).
    pub(crate) fn output(
        &mut self,
        r: &impl KvRead,
        location: TxLocation,
        vout: u32,
    ) -> Result<Option<TxOutCompact>> {
        let row = self.row(r, location.block_height)?;
        row.output(usize::from(location.tx_index), vout)
            .map_err(|e| corrupt_row(location.block_height, e))
    }

    /// The transparent part of the transaction at `location`; `None` when it has none.
    pub(crate) fn tx(
        &mut self,
        r: &impl KvRead,
        location: TxLocation,
    ) -> Result<Option<TransparentCompactTx>> {
        let row = self.row(r, location.block_height)?;
        row.tx(usize::from(location.tx_index))
            .map_err(|e| corrupt_row(location.block_height, e))
    }

    /// The row at `height`, from the cache or read (and verified, the first time) from `r`.
    pub(crate) fn row(
        &mut self,
        r: &impl KvRead,
        height: u32,
    ) -> Result<Arc<EncodedTransparentList>> {
        if let Some((row, _, used)) = self.rows.get_mut(&height) {
            self.by_use.remove(used);
            self.tick += 1;
            *used = self.tick;
            self.by_use.insert(self.tick, height);
            return Ok(Arc::clone(row));
        }
        let key = Height(height).encode_key();
        let value = r
            .get(Transparent::NAME, &key)?
            .ok_or_else(|| Error::Corrupt {
                table: Transparent::NAME,
                key: hex::encode(&key),
                height: Some(height),
                reason: "a txid_location entry points at a height with no transparent row"
                    .to_owned(),
            })?;
        let item_len = if self.is_verified(height) {
            <Transparent as Table>::Entry::split(&value)
                .map_err(|e| row_corrupt::<Transparent>(&key, e))?
                .0
                .len()
        } else {
            let item_len = verified_item_bytes::<Transparent>(&key, &value)?.len();
            self.set_verified(height, true);
            item_len
        };
        let row = index_stored(height, value, item_len)?;
        self.insert(height, Arc::clone(&row));
        Ok(row)
    }

    /// Indexes the row the write path has just encoded for `height` (a stored entry's
    /// bytes) and caches it as verified: its checksum was computed from these bytes. The
    /// row is returned for the batch, which stores it from the same buffer. The owner
    /// clears the cache if the write does not commit.
    pub(crate) fn insert_written(
        &mut self,
        height: u32,
        value: Vec<u8>,
    ) -> Result<Arc<EncodedTransparentList>> {
        let key = Height(height).encode_key();
        let (item, _) = <Transparent as Table>::Entry::split(&value)
            .map_err(|e| row_corrupt::<Transparent>(&key, e))?;
        let item_len = item.len();
        let row = index_stored(height, value, item_len)?;
        self.set_verified(height, true);
        self.insert(height, Arc::clone(&row));
        Ok(row)
    }

    /// Drops the row at `height` and what the cache knew of it (its block is being deleted).
    pub(crate) fn forget(&mut self, height: u32) {
        if let Some((_, size, used)) = self.rows.remove(&height) {
            self.by_use.remove(&used);
            self.bytes -= size;
        }
        self.set_verified(height, false);
    }

    /// Drops everything (a write failed, possibly after reading rows it did not commit).
    pub(crate) fn clear(&mut self) {
        *self = RowCache::with_byte_cap(self.cap);
    }

    fn is_verified(&self, height: u32) -> bool {
        self.verified
            .get(height as usize / 64)
            .is_some_and(|w| w & (1 << (height % 64)) != 0)
    }

    fn set_verified(&mut self, height: u32, verified: bool) {
        let word = height as usize / 64;
        if verified && self.verified.len() <= word {
            self.verified.resize(word + 1, 0);
        }
        if let Some(w) = self.verified.get_mut(word) {
            if verified {
                *w |= 1 << (height % 64);
            } else {
                *w &= !(1 << (height % 64));
            }
        }
    }

    /// Caches `row`, evicting the least recently used rows to make room. A row larger than
    /// the whole cache is not kept.
    fn insert(&mut self, height: u32, row: Arc<EncodedTransparentList>) {
        let size = row.heap_size() + 64;
        if let Some((_, old_size, used)) = self.rows.remove(&height) {
            self.by_use.remove(&used);
            self.bytes -= old_size;
        }
        if size > self.cap {
            return;
        }
        while self.bytes + size > self.cap {
            let Some((_, evicted)) = self.by_use.pop_first() else {
                break;
            };
            if let Some((_, evicted_size, _)) = self.rows.remove(&evicted) {
                self.bytes -= evicted_size;
            }
        }
        self.tick += 1;
        self.by_use.insert(self.tick, height);
        self.rows.insert(height, (row, size, self.tick));
        self.bytes += size;
    }
}

/// Indexes a stored `transparent` value whose item is `item_len` bytes, keeping the whole
/// value (its item is followed by the 32-byte checksum and nothing else: `split` checked).
fn index_stored(
    height: u32,
    value: Vec<u8>,
    item_len: usize,
) -> Result<Arc<EncodedTransparentList>> {
    let end = value.len() - 32;
    let item = end - item_len..end;
    EncodedTransparentList::within(value, item)
        .map(Arc::new)
        .map_err(|e| corrupt_row(height, e))
}

/// A transparent row whose layout does not decode, as an error naming the row.
pub(crate) fn corrupt_row(height: u32, e: Error) -> Error {
    row_corrupt::<Transparent>(&Height(height).encode_key(), e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_traits::kv::{KvStore, KvWrite};
    use storage_traits::model::{ScriptType, TransparentTxList};
    use storage_traits::table::{TableWrite, V1_TABLES};
    use storage_traits::{Durability, TableRead};

    fn list(outputs: usize, value: u64) -> TransparentTxList {
        TransparentTxList(vec![
            None,
            Some(TransparentCompactTx {
                vin: Vec::new(),
                vout: vec![
                    TxOutCompact {
                        value,
                        script_hash: [7; 20],
                        script_type: ScriptType::P2pkh,
                    };
                    outputs
                ],
            }),
        ])
    }

    fn at(height: u32) -> TxLocation {
        TxLocation {
            block_height: height,
            tx_index: 1,
        }
    }

    /// Rows in a real store: outputs read through the cache are the stored ones; the cache
    /// evicts least recently used rows first and stays within its cap; a flipped byte is
    /// caught the first time a row is read, with the table and height.
    #[test]
    fn reads_evicts_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_redb::RedbStore::open(dir.path(), V1_TABLES).unwrap();
        let mut w = store.begin_write().unwrap();
        for h in 0..5u32 {
            w.put_row::<Transparent>(&Height(h), list(100, u64::from(h)))
                .unwrap();
        }
        w.commit(Durability::Synced).unwrap();
        let r = store.begin_read().unwrap();
        // Room for three rows, sized as the cache sizes a row it reads.
        let one = RowCache::default().row(&r, 0).unwrap().heap_size();
        let mut cache = RowCache::with_byte_cap(3 * (one + 64));
        for h in 0..3 {
            assert_eq!(
                cache.output(&r, at(h), 99).unwrap().unwrap().value,
                u64::from(h)
            );
        }
        assert_eq!(cache.output(&r, at(0), 100).unwrap(), None);
        assert_eq!(
            cache
                .output(
                    &r,
                    TxLocation {
                        block_height: 0,
                        tx_index: 0
                    },
                    0
                )
                .unwrap(),
            None
        );
        cache.row(&r, 3).unwrap(); // evicts 1, the least recently used
        assert!(!cache.rows.contains_key(&1));
        for h in [0, 2, 3] {
            assert!(cache.rows.contains_key(&h), "row {h} evicted");
        }
        assert!(cache.bytes <= cache.cap);
        assert_eq!(
            cache.tx(&r, at(4)).unwrap(),
            list(100, 4).0[1].clone(),
            "a whole transaction"
        );
        // Height 5 has no row: corruption, since a location pointed there.
        let err = cache.output(&r, at(5), 0).unwrap_err().to_string();
        assert!(
            err.contains("transparent") && err.contains("00000005"),
            "{err}"
        );

        // A flipped byte in a row never read is caught, naming the table and height.
        drop(r);
        let mut w = store.begin_write().unwrap();
        let key = Height(6).encode_key();
        let mut value = <Transparent as Table>::Entry::encode(&key, &list(10, 6));
        value[20] ^= 1;
        w.put(Transparent::NAME, &key, &value).unwrap();
        w.commit(Durability::Synced).unwrap();
        let r = store.begin_read().unwrap();
        let err = cache.output(&r, at(6), 0).unwrap_err();
        assert!(
            matches!(
                err,
                Error::ChecksumMismatch {
                    table,
                    height: Some(6),
                    ..
                } if table == Transparent::NAME
            ),
            "{err}"
        );
        assert!(r.get_row::<Transparent>(&Height(6)).is_err());
    }

    /// A forgotten height is read and verified again (its block was deleted and another may
    /// take its place); a cleared cache knows nothing.
    #[test]
    fn forget_and_clear_drop_rows_and_verification() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_redb::RedbStore::open(dir.path(), V1_TABLES).unwrap();
        let mut w = store.begin_write().unwrap();
        w.put_row::<Transparent>(&Height(0), list(3, 1)).unwrap();
        w.commit(Durability::Synced).unwrap();
        let mut cache = RowCache::default();
        let r = store.begin_read().unwrap();
        assert_eq!(cache.output(&r, at(0), 0).unwrap().unwrap().value, 1);
        assert!(cache.is_verified(0));
        cache.forget(0);
        assert!(!cache.is_verified(0) && cache.rows.is_empty() && cache.bytes == 0);
        drop(r);

        // A different block at height 0, with a corrupt row: caught, because forgotten.
        let mut w = store.begin_write().unwrap();
        let key = Height(0).encode_key();
        let mut value = <Transparent as Table>::Entry::encode(&key, &list(3, 2));
        value[20] ^= 1;
        w.put(Transparent::NAME, &key, &value).unwrap();
        w.commit(Durability::Synced).unwrap();
        let r = store.begin_read().unwrap();
        assert!(cache.output(&r, at(0), 0).is_err());
        cache.set_verified(70, true);
        cache.clear();
        assert!(!cache.is_verified(70) && cache.verified.is_empty());
    }
}
