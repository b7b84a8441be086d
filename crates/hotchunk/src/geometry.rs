//! Chunk geometry: which heights a chunk holds, which bucket a chunk sits in.
//!
//! A chunk is the unit of ingestion and freezing: `chunk_size` consecutive heights starting
//! at the geometry's first height. Chunk `c` holds heights
//! `first_height + c·chunk_size ..= first_height + (c+1)·chunk_size − 1`. Buckets group
//! `chunks_per_bucket` consecutive chunks under one directory so no directory of cold files
//! grows past a thousand entries.
//!
//! | geometry | first height | chunk size | chunk 0 | chunk 1 |
//! | --- | --- | --- | --- | --- |
//! | [`Geometry::STELLAR`] | 2 | 10,000 | 2..=10001 | 10002..=20001 |
//! | [`Geometry::ZCASH`] | 0 | 10,000 | 0..=9999 | 10000..=19999 |

use std::fmt;
use std::ops::RangeInclusive;

use crate::error::{HotError, Result};

/// The default number of heights in a chunk.
pub const DEFAULT_CHUNK_SIZE: u32 = 10_000;
/// The default number of chunks in a bucket (one directory of cold files).
pub const DEFAULT_CHUNKS_PER_BUCKET: u32 = 1_000;

/// A chunk's number. Displays as eight zero-padded digits (`00000042`), the form used in
/// catalog keys and paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChunkId(pub u32);

impl ChunkId {
    /// The chunk before this one, if any.
    pub fn prev(self) -> Option<ChunkId> {
        self.0.checked_sub(1).map(ChunkId)
    }

    /// The chunk after this one, if any.
    pub fn next(self) -> Option<ChunkId> {
        self.0.checked_add(1).map(ChunkId)
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08}", self.0)
    }
}

/// A bucket's number (`chunk / chunks_per_bucket`). Displays as five zero-padded digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BucketId(pub u32);

impl fmt::Display for BucketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:05}", self.0)
    }
}

/// How heights map to chunks and chunks to buckets. Pinned in the catalog on first open
/// (a store written with one geometry is refused under another).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    first_height: u32,
    chunk_size: u32,
    chunks_per_bucket: u32,
}

impl Geometry {
    /// Stellar-style ledgers: the first ledger is 2, 10,000 per chunk, 1,000 chunks a bucket.
    pub const STELLAR: Geometry = Geometry {
        first_height: 2,
        chunk_size: DEFAULT_CHUNK_SIZE,
        chunks_per_bucket: DEFAULT_CHUNKS_PER_BUCKET,
    };

    /// Zcash-style blocks: the first block is 0, 10,000 per chunk, 1,000 chunks a bucket.
    pub const ZCASH: Geometry = Geometry {
        first_height: 0,
        chunk_size: DEFAULT_CHUNK_SIZE,
        chunks_per_bucket: DEFAULT_CHUNKS_PER_BUCKET,
    };

    /// A geometry with the given first height, chunk size and bucket width. Both sizes must
    /// be at least 1.
    pub fn new(first_height: u32, chunk_size: u32, chunks_per_bucket: u32) -> Result<Self> {
        if chunk_size == 0 {
            return Err(HotError::InvalidGeometry {
                reason: "the chunk size must be at least 1".to_owned(),
            });
        }
        if chunks_per_bucket == 0 {
            return Err(HotError::InvalidGeometry {
                reason: "a bucket must hold at least 1 chunk".to_owned(),
            });
        }
        Ok(Geometry {
            first_height,
            chunk_size,
            chunks_per_bucket,
        })
    }

    /// The first height of the chain (2 for Stellar, 0 for Zcash).
    pub fn genesis_height(&self) -> u32 {
        self.first_height
    }

    /// Heights per chunk.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Chunks per bucket.
    pub fn chunks_per_bucket(&self) -> u32 {
        self.chunks_per_bucket
    }

    fn out_of_range(&self, height: u64) -> HotError {
        HotError::HeightOutOfRange {
            height,
            first_height: self.first_height,
            chunk_size: self.chunk_size,
        }
    }

    /// The chunk holding `height`. Heights below the first height belong to no chunk.
    pub fn chunk_of(&self, height: u32) -> Result<ChunkId> {
        let offset = height
            .checked_sub(self.first_height)
            .ok_or_else(|| self.out_of_range(u64::from(height)))?;
        Ok(ChunkId(offset / self.chunk_size))
    }

    /// The first height of `chunk`.
    pub fn first_height(&self, chunk: ChunkId) -> Result<u32> {
        let h = u64::from(chunk.0) * u64::from(self.chunk_size) + u64::from(self.first_height);
        u32::try_from(h).map_err(|_| self.out_of_range(h))
    }

    /// The last height of `chunk`. A chunk whose last height does not fit in `u32` is out of
    /// range as a whole (no partial chunks).
    pub fn last_height(&self, chunk: ChunkId) -> Result<u32> {
        let h = (u64::from(chunk.0) + 1) * u64::from(self.chunk_size)
            + u64::from(self.first_height)
            - 1;
        u32::try_from(h).map_err(|_| self.out_of_range(h))
    }

    /// The heights of `chunk`, first to last.
    pub fn heights(&self, chunk: ChunkId) -> Result<RangeInclusive<u32>> {
        Ok(self.first_height(chunk)?..=self.last_height(chunk)?)
    }

    /// The bucket holding `chunk`.
    pub fn bucket_of(&self, chunk: ChunkId) -> BucketId {
        BucketId(chunk.0 / self.chunks_per_bucket)
    }

    /// The geometry's persisted form (the catalog's `config:geometry` value):
    /// `[version 0x01][first_height u32 BE][chunk_size u32 BE][chunks_per_bucket u32 BE]`.
    pub fn to_bytes(&self) -> [u8; 13] {
        let mut b = [0u8; 13];
        b[0] = 1;
        b[1..5].copy_from_slice(&self.first_height.to_be_bytes());
        b[5..9].copy_from_slice(&self.chunk_size.to_be_bytes());
        b[9..13].copy_from_slice(&self.chunks_per_bucket.to_be_bytes());
        b
    }

    /// Decodes [`Geometry::to_bytes`]; any other byte string is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = |reason: &str| HotError::InvalidGeometry {
            reason: format!("stored geometry {}: {reason}", hex::encode(bytes)),
        };
        let b: &[u8; 13] = bytes.try_into().map_err(|_| bad("not 13 bytes long"))?;
        if b[0] != 1 {
            return Err(bad("unknown version"));
        }
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Geometry::new(word(1), word(5), word(9))
    }
}

impl Default for Geometry {
    /// [`Geometry::ZCASH`].
    fn default() -> Self {
        Geometry::ZCASH
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stellar_matches_the_reference_formulas() {
        let g = Geometry::STELLAR;
        // chunkID(seq) = (seq-2)/10_000; first = c*10_000+2; last = (c+1)*10_000+1.
        for seq in [2u32, 3, 10_001, 10_002, 58_600_123, u32::MAX - 20_000] {
            let c = g.chunk_of(seq).unwrap();
            assert_eq!(c.0, (seq - 2) / 10_000);
            assert_eq!(g.first_height(c).unwrap(), c.0 * 10_000 + 2);
            assert_eq!(g.last_height(c).unwrap(), (c.0 + 1) * 10_000 + 1);
            assert!(g.heights(c).unwrap().contains(&seq));
        }
        assert!(g.chunk_of(1).is_err());
        assert!(g.chunk_of(0).is_err());
        assert_eq!(g.bucket_of(ChunkId(5_860)), BucketId(5));
        assert_eq!(ChunkId(5_860).to_string(), "00005860");
        assert_eq!(BucketId(5).to_string(), "00005");
    }

    #[test]
    fn zcash_starts_at_zero() {
        let g = Geometry::ZCASH;
        assert_eq!(g.chunk_of(0).unwrap(), ChunkId(0));
        assert_eq!(g.chunk_of(9_999).unwrap(), ChunkId(0));
        assert_eq!(g.chunk_of(10_000).unwrap(), ChunkId(1));
        assert_eq!(g.heights(ChunkId(1)).unwrap(), 10_000..=19_999);
    }

    #[test]
    fn custom_sizes_and_overflow() {
        let g = Geometry::new(7, 3, 2).unwrap();
        assert_eq!(g.heights(ChunkId(0)).unwrap(), 7..=9);
        assert_eq!(g.chunk_of(10).unwrap(), ChunkId(1));
        assert_eq!(g.bucket_of(ChunkId(3)), BucketId(1));
        assert!(Geometry::new(0, 0, 1).is_err());
        assert!(Geometry::new(0, 1, 0).is_err());
        // The last chunk that fits entirely in u32 is fine; the next is refused, not wrapped.
        let g = Geometry::ZCASH;
        let last = g.chunk_of(u32::MAX).unwrap();
        assert!(g.last_height(last).is_err());
        assert!(g.last_height(last.prev().unwrap()).is_ok());
    }

    #[test]
    fn geometry_bytes_round_trip_and_reject() {
        let g = Geometry::new(2, 10_000, 1_000).unwrap();
        let b = g.to_bytes();
        assert_eq!(
            hex::encode(b),
            "01_00000002_00002710_000003e8".replace('_', "")
        );
        assert_eq!(Geometry::from_bytes(&b).unwrap(), g);
        assert!(Geometry::from_bytes(&b[..12]).is_err());
        let mut v2 = b;
        v2[0] = 2;
        assert!(Geometry::from_bytes(&v2).is_err());
        let mut zero = b;
        zero[5..9].copy_from_slice(&0u32.to_be_bytes());
        assert!(Geometry::from_bytes(&zero).is_err());
    }
}
