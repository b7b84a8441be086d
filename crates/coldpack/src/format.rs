//! The `.pack` byte layout: constants, the trailer, the codec. `FORMAT.md` is the
//! specification; this module is its code, and the golden test pins them together.
//!
//! ```text
//! file    = record_0 ‖ … ‖ record_{n-1} ‖ index ‖ trailer
//! record  = stored bytes ‖ crc32c(height u32 LE ‖ stored bytes) u32 LE
//! index   = n × (stored_len u32 LE ‖ raw_len u32 LE)
//! trailer = 96 bytes, below
//! ```

use std::path::Path;

use crate::error::{Error, Result};

/// The first eight bytes of the trailer.
pub const MAGIC: [u8; 8] = *b"STRTPACK";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The trailer's length in bytes.
pub const TRAILER_LEN: usize = 96;
/// Bytes of the index per record.
pub const INDEX_ENTRY_LEN: usize = 8;
/// Bytes after each record's stored bytes (its CRC32C).
pub const RECORD_CRC_LEN: usize = 4;
/// The largest decoded record (raw length) a pack may hold.
pub const MAX_RECORD_LEN: u32 = 16 << 20;
/// The largest stored (possibly compressed) record: the zstd bound of the largest raw one.
pub const MAX_STORED_LEN: u32 = MAX_RECORD_LEN + (MAX_RECORD_LEN >> 7) + 1024;
/// How many bytes of the tail `open` reads speculatively: trailer and index together in
/// one read for packs of up to `(TAIL_READ - TRAILER_LEN) / 8` = 32,756 records.
pub const TAIL_READ: usize = 256 << 10;
/// zstd frames may not declare a window above 2^24 bytes (our records are at most 16 MiB).
pub const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// Flag bit: every record is followed by its CRC32C (required in version 1).
pub const FLAG_RECORD_CRC32C: u32 = 1 << 0;
/// Flag bit: the trailer carries a BLAKE2b-256 content hash (required in version 1).
pub const FLAG_CONTENT_HASH: u32 = 1 << 1;
/// The flags a version-1 pack carries: exactly these bits.
pub const FLAGS_V1: u32 = FLAG_RECORD_CRC32C | FLAG_CONTENT_HASH;

/// Record kind: the raw payload of one height per record (`IndexedBlock::to_bytes()`).
pub const RECORD_KIND_PAYLOAD: u32 = 1;
/// Record kind: a sorted key index, fixed-size entries `key ‖ height u32 BE`, packed
/// into records of at most [`KEY_INDEX_ENTRIES_PER_RECORD`] entries.
pub const RECORD_KIND_KEY_INDEX: u32 = 2;
/// Entries per record of a key-index pack (the last record may hold fewer).
pub const KEY_INDEX_ENTRIES_PER_RECORD: usize = 4096;

/// How record bytes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Stored as is (codec byte 0, level 0).
    None,
    /// One zstd frame per record (codec byte 1) at `level` (-7..=22, not 0), single
    /// threaded, content size in the frame header, no frame checksum (the record CRC
    /// covers the stored bytes).
    Zstd {
        /// The compression level.
        level: i32,
    },
}

impl Codec {
    /// The codec byte of the trailer.
    pub fn id(self) -> u8 {
        match self {
            Codec::None => 0,
            Codec::Zstd { .. } => 1,
        }
    }

    /// The level field of the trailer.
    pub fn level(self) -> i16 {
        match self {
            Codec::None => 0,
            // Checked by `validate` before any write.
            Codec::Zstd { level } => level.clamp(-7, 22) as i16,
        }
    }

    /// The codec-version field: 0 for none, `ZSTD_versionNumber()` of the linked library
    /// for zstd (the bytes of a compressed pack are deterministic for one library version
    /// and level; the trailer says which).
    pub fn library_version(self) -> u32 {
        match self {
            Codec::None => 0,
            Codec::Zstd { .. } => zstd::zstd_safe::version_number(),
        }
    }

    /// Whether the level is one this format records.
    pub fn validate(self) -> std::result::Result<(), String> {
        match self {
            Codec::None => Ok(()),
            Codec::Zstd { level } if (-7..=22).contains(&level) && level != 0 => Ok(()),
            Codec::Zstd { level } => Err(format!(
                "zstd level {level} is not in -7..=22 without 0 (0 would mean 'default', which is not a level)"
            )),
        }
    }

    fn from_fields(id: u8, level: i16) -> std::result::Result<Codec, String> {
        match (id, level) {
            (0, 0) => Ok(Codec::None),
            (0, l) => Err(format!("codec none with level {l} (must be 0)")),
            (1, l) => {
                let c = Codec::Zstd { level: l.into() };
                c.validate().map(|()| c)
            }
            (id, _) => Err(format!("unknown codec {id}")),
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Codec::None => f.write_str("none"),
            Codec::Zstd { level } => write!(f, "zstd-{level}"),
        }
    }
}

/// The decoded, verified trailer of a pack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trailer {
    /// The format version (1).
    pub version: u32,
    /// The flags ([`FLAGS_V1`]).
    pub flags: u32,
    /// The codec and its level.
    pub codec: Codec,
    /// The codec library version the writer linked (0 for none).
    pub codec_version: u32,
    /// What the records hold ([`RECORD_KIND_PAYLOAD`], [`RECORD_KIND_KEY_INDEX`], or a
    /// host's own value).
    pub record_kind: u32,
    /// The height of record 0 (for a key index: the chunk's first height).
    pub first_height: u32,
    /// How many records.
    pub record_count: u32,
    /// Bytes of the records region (records with their CRCs).
    pub data_size: u64,
    /// Bytes of the index region (`8 × record_count`).
    pub index_size: u64,
    /// CRC32C of the index region.
    pub index_crc32c: u32,
    /// BLAKE2b-256 of every byte before the trailer.
    pub content_hash: [u8; 32],
}

impl Trailer {
    /// The 96 trailer bytes, its own CRC32C last.
    pub fn encode(&self) -> [u8; TRAILER_LEN] {
        let mut t = [0u8; TRAILER_LEN];
        t[0..8].copy_from_slice(&MAGIC);
        t[8..12].copy_from_slice(&self.version.to_le_bytes());
        t[12..16].copy_from_slice(&self.flags.to_le_bytes());
        t[16] = self.codec.id();
        t[17] = 0;
        t[18..20].copy_from_slice(&self.codec.level().to_le_bytes());
        t[20..24].copy_from_slice(&self.codec_version.to_le_bytes());
        t[24..28].copy_from_slice(&self.record_kind.to_le_bytes());
        t[28..32].copy_from_slice(&self.first_height.to_le_bytes());
        t[32..36].copy_from_slice(&self.record_count.to_le_bytes());
        // t[36..40] reserved, zero.
        t[40..48].copy_from_slice(&self.data_size.to_le_bytes());
        t[48..56].copy_from_slice(&self.index_size.to_le_bytes());
        t[56..60].copy_from_slice(&self.index_crc32c.to_le_bytes());
        t[60..92].copy_from_slice(&self.content_hash);
        let crc = crc32c::crc32c(&t[..92]);
        t[92..96].copy_from_slice(&crc.to_le_bytes());
        t
    }

    /// Decodes and checks a trailer read from a file of `file_len` bytes.
    pub fn decode(path: &Path, t: &[u8], file_len: u64) -> Result<Trailer> {
        let corrupt = |reason: String| Error::CorruptPack {
            path: path.to_path_buf(),
            reason,
        };
        if t.len() != TRAILER_LEN {
            return Err(corrupt(format!(
                "trailer is {} bytes, not {TRAILER_LEN}",
                t.len()
            )));
        }
        if t[0..8] != MAGIC {
            return Err(corrupt(format!(
                "bad magic {} (expected {})",
                hex::encode(&t[0..8]),
                hex::encode(MAGIC)
            )));
        }
        let stored_crc = le32(&t[92..96]);
        let crc = crc32c::crc32c(&t[..92]);
        if stored_crc != crc {
            return Err(corrupt(format!(
                "trailer checksum mismatch: stored {stored_crc:08x}, computed {crc:08x}"
            )));
        }
        let version = le32(&t[8..12]);
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let flags = le32(&t[12..16]);
        if flags != FLAGS_V1 {
            return Err(corrupt(format!(
                "flags {flags:#x}; version 1 requires exactly {FLAGS_V1:#x}"
            )));
        }
        if t[17] != 0 || t[36..40] != [0; 4] {
            return Err(corrupt("reserved trailer bytes are not zero".into()));
        }
        let codec =
            Codec::from_fields(t[16], i16::from_le_bytes([t[18], t[19]])).map_err(corrupt)?;
        let codec_version = le32(&t[20..24]);
        if codec == Codec::None && codec_version != 0 {
            return Err(corrupt(format!(
                "codec none with codec version {codec_version} (must be 0)"
            )));
        }
        let record_kind = le32(&t[24..28]);
        let first_height = le32(&t[28..32]);
        let record_count = le32(&t[32..36]);
        let data_size = le64(&t[40..48]);
        let index_size = le64(&t[48..56]);
        let index_crc32c = le32(&t[56..60]);
        let mut content_hash = [0u8; 32];
        content_hash.copy_from_slice(&t[60..92]);

        if record_count > 0 && first_height.checked_add(record_count - 1).is_none() {
            return Err(corrupt(format!(
                "{record_count} records from height {first_height} overflow u32"
            )));
        }
        if index_size != INDEX_ENTRY_LEN as u64 * u64::from(record_count) {
            return Err(corrupt(format!(
                "index size {index_size} for {record_count} records (must be {})",
                INDEX_ENTRY_LEN as u64 * u64::from(record_count)
            )));
        }
        let expect = data_size
            .checked_add(index_size)
            .and_then(|s| s.checked_add(TRAILER_LEN as u64));
        if expect != Some(file_len) {
            return Err(corrupt(format!(
                "file is {file_len} bytes; data {data_size} + index {index_size} + trailer {TRAILER_LEN} disagree"
            )));
        }
        Ok(Trailer {
            version,
            flags,
            codec,
            codec_version,
            record_kind,
            first_height,
            record_count,
            data_size,
            index_size,
            index_crc32c,
            content_hash,
        })
    }
}

/// The per-record CRC32C: over the record's height (u32 LE) and its stored bytes, so a
/// record moved to another position fails too.
pub fn record_crc(height: u32, stored: &[u8]) -> u32 {
    crate::crc::crc32c_append(crc32c::crc32c(&height.to_le_bytes()), stored)
}

pub(crate) fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

pub(crate) fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// BLAKE2b-256 (unkeyed, no salt or personalisation), the hash of content hashes and
/// object names.
pub fn blake2b256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(
        blake2b_simd::Params::new()
            .hash_length(32)
            .hash(data)
            .as_bytes(),
    );
    out
}

/// A fresh BLAKE2b-256 state.
pub fn blake2b256_state() -> blake2b_simd::State {
    blake2b_simd::Params::new().hash_length(32).to_state()
}

pub(crate) fn finalize32(state: &blake2b_simd::State) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(state.finalize().as_bytes());
    out
}
