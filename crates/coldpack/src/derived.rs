//! Derived indexes: a host-supplied extractor turns each payload into fixed-size keys; the
//! freezer sorts them into a key-index pack (`RECORD_KIND_KEY_INDEX`).
//!
//! Entry = `key [16] ‖ height u32 BE` (20 bytes), sorted bytewise (so by key, then height),
//! packed [`KEY_INDEX_ENTRIES_PER_RECORD`] to a record. A lookup binary-searches the records
//! by their first entries, then the record.

use std::path::Path;

use storage_traits::Versioned;
use storage_traits::model::IndexedBlock;

use crate::error::{Error, Result};
use crate::format::{KEY_INDEX_ENTRIES_PER_RECORD, RECORD_KIND_KEY_INDEX};
use crate::reader::{PackReader, ReadAt};

/// Key length of a key-index entry.
pub const KEY_LEN: usize = 16;
/// Length of one entry (key and big-endian height).
pub const ENTRY_LEN: usize = KEY_LEN + 4;

/// Turns a payload into the keys of a derived index.
pub trait KeyExtractor: Send + Sync {
    /// Appends the keys of the payload at `height` to `out`.
    fn extract(&self, height: u32, payload: &[u8], out: &mut Vec<[u8; KEY_LEN]>) -> Result<()>;
}

/// The txid-prefix extractor for `IndexedBlock` payloads: key = the first 16 bytes of each
/// txid (in stored order).
#[derive(Clone, Copy, Debug, Default)]
pub struct TxidPrefixExtractor;

impl KeyExtractor for TxidPrefixExtractor {
    fn extract(&self, height: u32, payload: &[u8], out: &mut Vec<[u8; KEY_LEN]>) -> Result<()> {
        let block = IndexedBlock::from_bytes(payload)?;
        let got = block.header.height().map(|h| h.0);
        if got != Some(height) {
            return Err(Error::SourceMismatch {
                source_name: "payload".into(),
                chunk: 0,
                reason: format!("the payload at height {height} holds block {got:?}"),
            });
        }
        for tx in &block.transactions {
            let mut k = [0u8; KEY_LEN];
            k.copy_from_slice(&tx.txid.0[..KEY_LEN]);
            out.push(k);
        }
        Ok(())
    }
}

/// Sorted key-index entries of one chunk, ready to be written.
#[derive(Default)]
pub struct KeyIndexBuilder {
    entries: Vec<[u8; ENTRY_LEN]>,
    scratch: Vec<[u8; KEY_LEN]>,
}

impl KeyIndexBuilder {
    /// Adds the keys `extractor` finds in the payload at `height`.
    pub fn add(&mut self, extractor: &dyn KeyExtractor, height: u32, payload: &[u8]) -> Result<()> {
        self.scratch.clear();
        extractor.extract(height, payload, &mut self.scratch)?;
        for k in &self.scratch {
            let mut e = [0u8; ENTRY_LEN];
            e[..KEY_LEN].copy_from_slice(k);
            e[KEY_LEN..].copy_from_slice(&height.to_be_bytes());
            self.entries.push(e);
        }
        Ok(())
    }

    /// The records of the pack: entries sorted and deduplicated, 4,096 to a record.
    pub fn into_records(mut self) -> Vec<Vec<u8>> {
        self.entries.sort_unstable();
        self.entries.dedup();
        self.entries
            .chunks(KEY_INDEX_ENTRIES_PER_RECORD)
            .map(|c| c.concat())
            .collect()
    }
}

/// Lookups in a key-index pack.
pub struct KeyIndexReader<R: ReadAt = std::fs::File> {
    pack: PackReader<R>,
}

impl KeyIndexReader<std::fs::File> {
    /// Opens a key-index pack.
    pub fn open(path: &Path) -> Result<Self> {
        KeyIndexReader::new(PackReader::open(path)?)
    }
}

impl<R: ReadAt> KeyIndexReader<R> {
    /// Wraps an open pack, checking its record kind.
    pub fn new(pack: PackReader<R>) -> Result<Self> {
        if pack.trailer().record_kind != RECORD_KIND_KEY_INDEX {
            return Err(Error::CorruptPack {
                path: pack.path().to_path_buf(),
                reason: format!(
                    "record kind {} is not a key index ({RECORD_KIND_KEY_INDEX})",
                    pack.trailer().record_kind
                ),
            });
        }
        Ok(KeyIndexReader { pack })
    }

    fn record(&self, i: u32) -> Result<Vec<u8>> {
        let r = self.pack.read(i)?;
        if r.is_empty() || r.len() % ENTRY_LEN != 0 {
            return Err(Error::CorruptPack {
                path: self.pack.path().to_path_buf(),
                reason: format!(
                    "key-index record {i} is {} bytes, not whole entries",
                    r.len()
                ),
            });
        }
        Ok(r)
    }

    /// Every height whose payload yielded `key`, ascending.
    pub fn lookup(&self, key: &[u8; KEY_LEN]) -> Result<Vec<u32>> {
        let n = self.pack.record_count();
        // The last record whose first key is below `key` may hold the first match; matches
        // may continue into following records.
        let (mut lo, mut hi) = (0u32, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.record(mid)?[..KEY_LEN] < key[..] {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut out = Vec::new();
        let mut i = lo.saturating_sub(1);
        while i < n {
            let r = self.record(i)?;
            let mut past = false;
            for e in r.chunks_exact(ENTRY_LEN) {
                match e[..KEY_LEN].cmp(&key[..]) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => {
                        out.push(u32::from_be_bytes([e[16], e[17], e[18], e[19]]))
                    }
                    std::cmp::Ordering::Greater => {
                        past = true;
                        break;
                    }
                }
            }
            if past {
                break;
            }
            i += 1;
        }
        Ok(out)
    }

    /// The underlying pack.
    pub fn pack(&self) -> &PackReader<R> {
        &self.pack
    }
}
