//! Reading a pack: one read of the tail on open, one read per record, every read verified.
//!
//! Decoding is total: any bytes give a pack or an error. Allocations on open are bounded
//! by the file's length (the index is checked against it before anything is sized from
//! it); a record read allocates its stored length (bounded by the verified index) and, for
//! zstd, at most its declared raw length (at most [`MAX_RECORD_LEN`]), grown only as the
//! decoder produces output.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, io};
use crate::format::{
    Codec, INDEX_ENTRY_LEN, MAX_RECORD_LEN, MAX_STORED_LEN, RECORD_CRC_LEN, TAIL_READ, TRAILER_LEN,
    Trailer, ZSTD_WINDOW_LOG_MAX, blake2b256_state, finalize32, le32, record_crc,
};

/// Positional reads: a file, or bytes in memory.
pub trait ReadAt {
    /// The length in bytes.
    fn size(&self) -> std::io::Result<u64>;
    /// Fills `buf` from `offset`; a short source is an error.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

impl ReadAt for File {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn size(&self) -> std::io::Result<u64> {
        (**self).size()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }
}

impl ReadAt for [u8] {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.len() as u64)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let start = usize::try_from(offset).ok().filter(|&s| s <= self.len());
        let end = start.and_then(|s| s.checked_add(buf.len()));
        match (start, end) {
            (Some(s), Some(e)) if e <= self.len() => {
                buf.copy_from_slice(&self[s..e]);
                Ok(())
            }
            _ => Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
        }
    }
}

impl ReadAt for Vec<u8> {
    fn size(&self) -> std::io::Result<u64> {
        self.as_slice().size()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.as_slice().read_exact_at(buf, offset)
    }
}

/// An open, verified pack.
pub struct PackReader<R: ReadAt = File> {
    src: R,
    path: PathBuf,
    trailer: Trailer,
    /// Record start offsets, then the end of the records region.
    offsets: Vec<u64>,
    raw_lens: Vec<u32>,
}

impl<R: ReadAt> std::fmt::Debug for PackReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackReader")
            .field("path", &self.path)
            .field("trailer", &self.trailer)
            .finish()
    }
}

impl PackReader<File> {
    /// Opens the pack at `path`: one read of the tail (trailer and index) for packs of up
    /// to 32,756 records, a second one for the rest of a larger index.
    ///
    /// The file is opened with `O_NOATIME` where the kernel allows it (the caller owns the
    /// file): a pack never changes, so its access time says nothing, and skipping it takes
    /// the kernel's atime check off every record read (~6% of a small record's read here).
    /// Where it is refused (`EPERM`: someone else's file) the pack is opened plainly.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = open_noatime(path).map_err(io(path))?;
        PackReader::from_source(file, path)
    }
}

impl PackReader<Vec<u8>> {
    /// A pack held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        PackReader::from_source(bytes, Path::new("<memory>"))
    }
}

impl<R: ReadAt> PackReader<R> {
    /// Opens a pack over any positional source; `path` names it in errors.
    pub fn from_source(src: R, path: &Path) -> Result<Self> {
        let path = path.to_path_buf();
        let corrupt = |reason: String| Error::CorruptPack {
            path: path.clone(),
            reason,
        };
        let len = src.size().map_err(io(&path))?;
        if len < TRAILER_LEN as u64 {
            return Err(corrupt(format!(
                "{len} bytes, shorter than the {TRAILER_LEN}-byte trailer"
            )));
        }
        // One speculative read of the tail: the trailer, and the index when it fits.
        let tail_len = len.min(TAIL_READ as u64) as usize;
        let mut tail = vec![0u8; tail_len];
        src.read_exact_at(&mut tail, len - tail_len as u64)
            .map_err(io(&path))?;
        let trailer = Trailer::decode(&path, &tail[tail_len - TRAILER_LEN..], len)?;
        // The trailer has checked index_size + data_size + TRAILER_LEN == len, so the
        // index is no longer than the file.
        let index_size = trailer.index_size as usize;
        let index: Vec<u8> = if index_size + TRAILER_LEN <= tail_len {
            tail.truncate(tail_len - TRAILER_LEN);
            tail.split_off(tail.len() - index_size)
        } else {
            let mut idx = vec![0u8; index_size];
            src.read_exact_at(&mut idx, trailer.data_size)
                .map_err(io(&path))?;
            idx
        };
        let crc = crate::crc::crc32c(&index);
        if crc != trailer.index_crc32c {
            return Err(corrupt(format!(
                "index checksum mismatch: trailer {:08x}, computed {crc:08x}",
                trailer.index_crc32c
            )));
        }
        let n = trailer.record_count as usize;
        let mut offsets = Vec::with_capacity(n + 1);
        let mut raw_lens = Vec::with_capacity(n);
        let mut off = 0u64;
        for (i, e) in index.chunks_exact(INDEX_ENTRY_LEN).enumerate() {
            let stored = le32(&e[0..4]);
            let raw = le32(&e[4..8]);
            let bad = if stored > MAX_STORED_LEN || raw > MAX_RECORD_LEN {
                Some(format!(
                    "stored length {stored} / raw length {raw} above the limits {MAX_STORED_LEN} / {MAX_RECORD_LEN}"
                ))
            } else if trailer.codec == Codec::None && stored != raw {
                Some(format!(
                    "stored length {stored} differs from raw length {raw} without compression"
                ))
            } else {
                None
            };
            if let Some(reason) = bad {
                return Err(corrupt(format!("index entry {i}: {reason}")));
            }
            offsets.push(off);
            raw_lens.push(raw);
            off += u64::from(stored) + RECORD_CRC_LEN as u64;
            if off > trailer.data_size {
                return Err(corrupt(format!(
                    "index entry {i} ends at {off}, past the records region ({} bytes)",
                    trailer.data_size
                )));
            }
        }
        if off != trailer.data_size {
            return Err(corrupt(format!(
                "index covers {off} bytes; the records region is {}",
                trailer.data_size
            )));
        }
        offsets.push(off);
        Ok(PackReader {
            src,
            path,
            trailer,
            offsets,
            raw_lens,
        })
    }

    /// The path (or `<memory>`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The verified trailer.
    pub fn trailer(&self) -> &Trailer {
        &self.trailer
    }

    /// How many records.
    pub fn record_count(&self) -> u32 {
        self.trailer.record_count
    }

    /// The height of record 0.
    pub fn first_height(&self) -> u32 {
        self.trailer.first_height
    }

    /// The total length in bytes.
    pub fn size(&self) -> u64 {
        self.trailer.data_size + self.trailer.index_size + TRAILER_LEN as u64
    }

    /// Record `i`'s byte offset.
    pub fn record_offset(&self, i: u32) -> Option<u64> {
        self.offsets.get(i as usize).copied()
    }

    /// Record `i`'s stored length (without its CRC).
    pub fn stored_len(&self, i: u32) -> Option<u32> {
        let i = i as usize;
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => Some((b - a) as u32 - RECORD_CRC_LEN as u32),
            _ => None,
        }
    }

    /// Record `i`, verified and decoded: one read.
    pub fn read(&self, i: u32) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_into(i, &mut out)?;
        Ok(out)
    }

    /// The record holding `height`.
    pub fn read_height(&self, height: u32) -> Result<Vec<u8>> {
        let i = height
            .checked_sub(self.trailer.first_height)
            .ok_or(Error::RecordOutOfRange {
                path: self.path.clone(),
                record: u64::from(height),
                count: self.trailer.record_count,
            })?;
        self.read(i)
    }

    /// Record `i` into `out` (cleared first): one read, the CRC checked, then decoded.
    pub fn read_into(&self, i: u32, out: &mut Vec<u8>) -> Result<()> {
        let (Some(&start), Some(&end)) = (
            self.offsets.get(i as usize),
            self.offsets.get(i as usize + 1),
        ) else {
            return Err(Error::RecordOutOfRange {
                path: self.path.clone(),
                record: u64::from(i),
                count: self.trailer.record_count,
            });
        };
        let height = self.trailer.first_height + i;
        let stored_len = (end - start) as usize - RECORD_CRC_LEN;
        match self.trailer.codec {
            Codec::None => {
                // Reuse the caller's buffer: only bytes it never held are zero-filled.
                let n = stored_len + RECORD_CRC_LEN;
                if out.len() > n {
                    out.truncate(n);
                } else {
                    out.resize(n, 0);
                }
                let res = self
                    .src
                    .read_exact_at(out, start)
                    .map_err(io(&self.path))
                    .and_then(|()| self.check_crc(i, height, start, out));
                if let Err(e) = res {
                    out.clear();
                    return Err(e);
                }
                out.truncate(stored_len);
            }
            Codec::Zstd { .. } => {
                let mut stored = vec![0u8; stored_len + RECORD_CRC_LEN];
                self.src
                    .read_exact_at(&mut stored, start)
                    .map_err(io(&self.path))?;
                self.check_crc(i, height, start, &stored)?;
                stored.truncate(stored_len);
                out.clear();
                let raw_len = self.raw_lens[i as usize];
                decompress(&stored, raw_len, out).map_err(|reason| Error::CorruptRecord {
                    path: self.path.clone(),
                    record: i,
                    height,
                    offset: start,
                    reason,
                })?;
            }
        }
        Ok(())
    }

    /// Record `i`, verified, as a slice of `scratch`: one read. `scratch` only grows (it
    /// is never shrunk or zero-filled again below its high-water mark), so a reader that
    /// reuses it pays for the read and the CRC, nothing else.
    pub fn read_ref<'b>(&self, i: u32, scratch: &'b mut Vec<u8>) -> Result<&'b [u8]> {
        if self.trailer.codec != Codec::None {
            self.read_into(i, scratch)?;
            return Ok(&scratch[..]);
        }
        let (Some(&start), Some(&end)) = (
            self.offsets.get(i as usize),
            self.offsets.get(i as usize + 1),
        ) else {
            return Err(Error::RecordOutOfRange {
                path: self.path.clone(),
                record: u64::from(i),
                count: self.trailer.record_count,
            });
        };
        let n = (end - start) as usize;
        if scratch.len() < n {
            scratch.resize(n, 0);
        }
        let buf = &mut scratch[..n];
        self.src.read_exact_at(buf, start).map_err(io(&self.path))?;
        self.check_crc(i, self.trailer.first_height + i, start, buf)?;
        Ok(&scratch[..n - RECORD_CRC_LEN])
    }

    fn check_crc(&self, i: u32, height: u32, offset: u64, rec: &[u8]) -> Result<()> {
        let (body, crc) = rec.split_at(rec.len() - RECORD_CRC_LEN);
        let stored = le32(crc);
        let computed = record_crc(height, body);
        if stored != computed {
            return Err(Error::CorruptRecord {
                path: self.path.clone(),
                record: i,
                height,
                offset,
                reason: format!(
                    "record checksum mismatch: stored {stored:08x}, computed {computed:08x}"
                ),
            });
        }
        Ok(())
    }

    /// Every record in order, each verified.
    pub fn iter(&self) -> impl Iterator<Item = Result<Vec<u8>>> + '_ {
        (0..self.trailer.record_count).map(move |i| self.read(i))
    }

    /// Reads the whole file in order: checks every record's CRC, the content hash in the
    /// trailer, and returns the BLAKE2b-256 of the whole file (its object name).
    pub fn verify_full(&self) -> Result<[u8; 32]> {
        let mut state = blake2b256_state();
        let mut buf = Vec::new();
        for i in 0..self.trailer.record_count {
            let start = self.offsets[i as usize];
            let end = self.offsets[i as usize + 1];
            buf.resize((end - start) as usize, 0);
            self.src
                .read_exact_at(&mut buf, start)
                .map_err(io(&self.path))?;
            self.check_crc(i, self.trailer.first_height + i, start, &buf)?;
            state.update(&buf);
        }
        let tail_len = self.trailer.index_size as usize + TRAILER_LEN;
        buf.resize(tail_len, 0);
        self.src
            .read_exact_at(&mut buf, self.trailer.data_size)
            .map_err(io(&self.path))?;
        state.update(&buf[..self.trailer.index_size as usize]);
        let content = finalize32(&state);
        if content != self.trailer.content_hash {
            return Err(Error::CorruptPack {
                path: self.path.clone(),
                reason: format!(
                    "content hash mismatch: trailer {}, computed {}",
                    hex::encode(self.trailer.content_hash),
                    hex::encode(content)
                ),
            });
        }
        state.update(&buf[self.trailer.index_size as usize..]);
        Ok(finalize32(&state))
    }
}

/// Opens `path` read-only, with `O_NOATIME` on Linux when permitted.
fn open_noatime(path: &Path) -> std::io::Result<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOATIME)
            .open(path)
        {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
            other => return other,
        }
    }
    File::open(path)
}

/// Decompresses one zstd frame of exactly `raw_len` bytes into `out`, never holding more
/// than `raw_len + 1` bytes of output and refusing windows above 2^24.
fn decompress(stored: &[u8], raw_len: u32, out: &mut Vec<u8>) -> std::result::Result<(), String> {
    // The record must be exactly one frame: no trailing bytes, no second frame.
    let frame = zstd::zstd_safe::find_frame_compressed_size(stored)
        .map_err(|code| format!("zstd: {}", zstd::zstd_safe::get_error_name(code)))?;
    if frame != stored.len() {
        return Err(format!(
            "zstd frame is {frame} bytes; the record stores {}",
            stored.len()
        ));
    }
    let mut dec = zstd::stream::read::Decoder::with_buffer(stored).map_err(|e| e.to_string())?;
    dec.window_log_max(ZSTD_WINDOW_LOG_MAX)
        .map_err(|e| e.to_string())?;
    let mut dec = dec.single_frame();
    // Start small and let the output grow with what the decoder really produces.
    out.reserve((raw_len as usize).min(stored.len().saturating_mul(4) + 4096));
    (&mut dec)
        .take(u64::from(raw_len) + 1)
        .read_to_end(out)
        .map_err(|e| format!("zstd: {e}"))?;
    if out.len() != raw_len as usize {
        return Err(format!(
            "decompressed to {} bytes; the index says {raw_len}",
            if out.len() > raw_len as usize {
                "more".to_owned()
            } else {
                out.len().to_string()
            }
        ));
    }
    Ok(())
}
