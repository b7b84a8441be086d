//! Writing a pack: records streamed in height order, then the index and the trailer.
//!
//! The writer is deterministic: the bytes depend only on the payloads, the options
//! (codec, level, record kind, first height) and, for zstd, the linked library version
//! (recorded in the trailer). Nothing else (no time, no path, no buffer size) reaches
//! the file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::error::{Error, Result, io};
use crate::format::{
    Codec, FLAGS_V1, FORMAT_VERSION, MAX_RECORD_LEN, TRAILER_LEN, Trailer, blake2b256_state,
    finalize32, record_crc,
};

/// What a pack is written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackOptions {
    /// How records are stored.
    pub codec: Codec,
    /// What the records hold (see [`crate::format::RECORD_KIND_PAYLOAD`]).
    pub record_kind: u32,
    /// The height of the first record.
    pub first_height: u32,
}

/// A finished pack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackSummary {
    /// Its trailer.
    pub trailer: Trailer,
    /// BLAKE2b-256 of the whole file: its object name in the content-addressed store.
    pub object_hash: [u8; 32],
    /// Its length in bytes.
    pub size: u64,
}

impl PackSummary {
    /// The object name in hex.
    pub fn object_hex(&self) -> String {
        hex::encode(self.object_hash)
    }
}

/// Streams records into a pack. `W` is the sink; [`PackWriter::create_new`] writes a
/// file at its final path and fsyncs it in [`PackWriter::finish`].
pub struct PackWriter<W: Write> {
    out: W,
    path: PathBuf,
    opts: PackOptions,
    index: Vec<u8>,
    hasher: HashPipe,
    data_size: u64,
    count: u32,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    scratch: Vec<u8>,
}

/// The file sink: a file created at its final path, written in 1 MiB chunks, fsynced
/// at the end.
pub struct PackFile {
    file: File,
    /// Bytes written so far.
    written: u64,
    /// Bytes whose writeback has been started.
    kicked: u64,
}

/// Start the writeback of every this many bytes as soon as they are written, so the disk
/// works while the writer hashes and the final fsync has little left to do.
const WRITEBACK_EVERY: u64 = 8 << 20;

impl PackFile {
    fn kick_writeback(&mut self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let len = self.written - self.kicked;
            // SAFETY: sync_file_range only reads its integer arguments; the descriptor is
            // open for the lifetime of `self.file`. SYNC_FILE_RANGE_WRITE starts writeback
            // without waiting; the fsync in `finish` is still what makes the data durable,
            // so a failure here only loses the overlap and is ignored.
            let _ = unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    self.kicked as libc::off64_t,
                    len as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                )
            };
        }
        self.kicked = self.written;
    }
}

impl Write for PackFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.file.write_all(buf)?;
        self.written += buf.len() as u64;
        if self.written - self.kicked >= WRITEBACK_EVERY {
            self.kick_writeback();
        }
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl PackWriter<PackFile> {
    /// Creates the pack at `path`, which must not exist (`O_CREAT | O_EXCL`: a pack is
    /// written once at its final path, never over another file's inode).
    pub fn create_new(path: &Path, opts: PackOptions) -> Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io(path))?;
        let sink = PackFile {
            file,
            written: 0,
            kicked: 0,
        };
        PackWriter::new(sink, path, opts)
    }

    /// Writes the index and trailer, flushes and fsyncs the file (not its directory:
    /// the caller's protocol does that).
    pub fn finish(self) -> Result<PackSummary> {
        let path = self.path.clone();
        let (sink, summary) = self.finish_into()?;
        sink.file.sync_all().map_err(io(&path))?;
        Ok(summary)
    }
}

impl PackWriter<Vec<u8>> {
    /// A writer into memory (tests, fuzzing, objects built before they are stored).
    pub fn in_memory(opts: PackOptions) -> Result<Self> {
        PackWriter::new(Vec::new(), Path::new("<memory>"), opts)
    }
}

impl<W: Write> PackWriter<W> {
    /// A writer over any sink; `path` only names it in errors.
    pub fn new(out: W, path: &Path, opts: PackOptions) -> Result<Self> {
        let path = path.to_path_buf();
        opts.codec.validate().map_err(|reason| Error::Writer {
            path: path.clone(),
            reason,
        })?;
        let compressor = match opts.codec {
            Codec::None => None,
            Codec::Zstd { level } => {
                let mut c = zstd::bulk::Compressor::new(level).map_err(io(&path))?;
                // Pin every parameter that shapes the frame, so the bytes depend on the
                // level and the library version only.
                for p in [
                    zstd::zstd_safe::CParameter::ChecksumFlag(false),
                    zstd::zstd_safe::CParameter::ContentSizeFlag(true),
                    zstd::zstd_safe::CParameter::DictIdFlag(false),
                    zstd::zstd_safe::CParameter::NbWorkers(0),
                ] {
                    c.set_parameter(p).map_err(io(&path))?;
                }
                Some(c)
            }
        };
        Ok(PackWriter {
            out,
            path,
            opts,
            index: Vec::new(),
            hasher: HashPipe::start(),
            data_size: 0,
            count: 0,
            compressor,
            scratch: Vec::new(),
        })
    }

    /// How many records so far.
    pub fn record_count(&self) -> u32 {
        self.count
    }

    /// The height the next record holds.
    pub fn next_height(&self) -> Option<u32> {
        self.opts.first_height.checked_add(self.count)
    }

    /// Appends the record of the next height.
    pub fn push(&mut self, payload: &[u8]) -> Result<()> {
        let writer_err = |reason: String| Error::Writer {
            path: self.path.clone(),
            reason,
        };
        let Some(height) = self.next_height() else {
            return Err(writer_err("height overflows u32".into()));
        };
        if payload.len() > MAX_RECORD_LEN as usize {
            return Err(writer_err(format!(
                "record of height {height} is {} bytes; a pack record holds at most {MAX_RECORD_LEN}",
                payload.len()
            )));
        }
        let raw_len = payload.len() as u32;
        let stored: &[u8] = match self.compressor.as_mut() {
            None => payload,
            Some(c) => {
                self.scratch.clear();
                self.scratch
                    .reserve(zstd::zstd_safe::compress_bound(payload.len()));
                c.compress_to_buffer(payload, &mut self.scratch)
                    .map_err(|e| Error::io(&self.path, e))?;
                &self.scratch
            }
        };
        let crc = record_crc(height, stored).to_le_bytes();
        self.hasher.pending.extend_from_slice(stored);
        self.hasher.pending.extend_from_slice(&crc);
        if self.hasher.pending.len() >= CHUNK {
            self.hasher.flush(&mut self.out, &self.path, false)?;
        }
        self.index
            .extend_from_slice(&(stored.len() as u32).to_le_bytes());
        self.index.extend_from_slice(&raw_len.to_le_bytes());
        self.data_size += stored.len() as u64 + 4;
        self.count += 1;
        Ok(())
    }

    /// Writes the index and the trailer and returns the sink (flushed) with the summary.
    pub fn finish_into(mut self) -> Result<(W, PackSummary)> {
        self.hasher.pending.extend_from_slice(&self.index);
        self.hasher.flush(&mut self.out, &self.path, true)?;
        let mut state = self.hasher.finish(&self.path)?;
        let trailer = Trailer {
            version: FORMAT_VERSION,
            flags: FLAGS_V1,
            codec: self.opts.codec,
            codec_version: self.opts.codec.library_version(),
            record_kind: self.opts.record_kind,
            first_height: self.opts.first_height,
            record_count: self.count,
            data_size: self.data_size,
            index_size: self.index.len() as u64,
            index_crc32c: crate::crc::crc32c(&self.index),
            content_hash: finalize32(&state),
        };
        let bytes = trailer.encode();
        self.out.write_all(&bytes).map_err(io(&self.path))?;
        self.out.flush().map_err(io(&self.path))?;
        state.update(&bytes);
        let summary = PackSummary {
            object_hash: finalize32(&state),
            size: self.data_size + self.index.len() as u64 + TRAILER_LEN as u64,
            trailer,
        };
        Ok((self.out, summary))
    }
}

/// The BLAKE2b-256 of everything written, computed on a second thread: the writer writes a
/// 1 MiB chunk to the sink, then hands it to the hasher and fills the next one, so hashing
/// overlaps compression, CRCs and I/O (a freeze costs about the longer of the two, not
/// their sum, when the machine has a core for each). The hasher is fed in write order, so
/// the hash is the same as one pass over the file. A pack smaller than one chunk is hashed
/// inline (no thread).
struct HashPipe {
    pending: Vec<u8>,
    worker: Option<Worker>,
    /// The state of a pack hashed inline.
    inline: Option<blake2b_simd::State>,
}

struct Worker {
    tx: Option<SyncSender<Vec<u8>>>,
    handle: Option<JoinHandle<blake2b_simd::State>>,
}

/// Chunk buffers kept between packs. A fresh buffer costs a page fault (and the kernel
/// zeroing the page) per 4 KiB the first time it is filled — about a fifth of the writer
/// thread's time when every pack allocated its own — so hashed chunks come back here and
/// the next chunk, of this pack or the next one, reuses them. At most [`POOL_MAX`] buffers
/// of at most [`POOL_BUFFER_MAX`] bytes are kept.
static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// Enough for the chunks in flight of one pack (the channel's [`IN_FLIGHT`], the one being
/// hashed, the one being filled) and a second pack freezing at the same time.
const POOL_MAX: usize = 2 * (IN_FLIGHT + 2);
/// A buffer grown past this by a large record is freed rather than kept.
const POOL_BUFFER_MAX: usize = 4 * CHUNK;
/// Chunks queued for the hashing thread at most (the writer waits when it is this far
/// ahead).
const IN_FLIGHT: usize = 4;

fn pooled_buffer() -> Vec<u8> {
    let reused = POOL.lock().ok().and_then(|mut p| p.pop());
    reused.unwrap_or_else(|| Vec::with_capacity(2 * CHUNK))
}

fn return_buffer(mut buf: Vec<u8>) {
    if buf.capacity() > POOL_BUFFER_MAX {
        return;
    }
    buf.clear();
    if let Ok(mut pool) = POOL.lock()
        && pool.len() < POOL_MAX
    {
        pool.push(buf);
    }
}

impl HashPipe {
    fn start() -> HashPipe {
        HashPipe {
            pending: pooled_buffer(),
            worker: None,
            inline: None,
        }
    }

    fn spawn() -> Worker {
        let (tx, rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        let handle = std::thread::spawn(move || {
            let mut state = blake2b256_state();
            for buf in rx {
                state.update(&buf);
                return_buffer(buf);
            }
            state
        });
        Worker {
            tx: Some(tx),
            handle: Some(handle),
        }
    }

    /// Writes the pending bytes to `out` and hands them to the hasher; `last` when no more
    /// bytes follow (a pack that never filled a chunk is then hashed inline).
    fn flush(&mut self, out: &mut impl Write, path: &Path, last: bool) -> Result<()> {
        out.write_all(&self.pending).map_err(io(path))?;
        if last && self.worker.is_none() {
            let mut st = blake2b256_state();
            st.update(&self.pending);
            self.inline = Some(st);
            self.pending.clear();
            return Ok(());
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        let w = self.worker.get_or_insert_with(HashPipe::spawn);
        let full = std::mem::replace(&mut self.pending, pooled_buffer());
        let sent = w.tx.as_ref().map(|tx| tx.send(full).is_ok());
        if sent != Some(true) {
            return Err(Error::Writer {
                path: path.to_path_buf(),
                reason: "the hashing thread has stopped".into(),
            });
        }
        Ok(())
    }

    /// Waits for the hasher and returns its state (everything flushed so far).
    fn finish(&mut self, path: &Path) -> Result<blake2b_simd::State> {
        if let Some(st) = self.inline.take() {
            return Ok(st);
        }
        let state = self.worker.as_mut().and_then(|w| {
            w.tx = None;
            w.handle.take().and_then(|h| h.join().ok())
        });
        state.ok_or_else(|| Error::Writer {
            path: path.to_path_buf(),
            reason: "the hashing thread failed".into(),
        })
    }
}

impl Drop for HashPipe {
    fn drop(&mut self) {
        return_buffer(std::mem::take(&mut self.pending));
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Bytes handed to the sink (and to the hashing thread) at a time.
const CHUNK: usize = 1 << 20;

/// Builds a whole pack in memory.
pub fn pack_to_vec<'a>(
    opts: PackOptions,
    records: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(Vec<u8>, PackSummary)> {
    let mut w = PackWriter::in_memory(opts)?;
    for r in records {
        w.push(r)?;
    }
    w.finish_into()
}
