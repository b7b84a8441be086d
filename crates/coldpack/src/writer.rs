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
    finalize32,
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
pub struct PackWriter<W: Write + Send + 'static> {
    stream: Stream<W>,
    opts: PackOptions,
    index: Vec<u8>,
    data_size: u64,
    count: u32,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    scratch: Vec<u8>,
}

/// The file sink: a file created at its final path, written in [`CHUNK`]-sized pieces,
/// fsynced at the end.
///
/// Full chunks are written with **direct I/O** (`O_DIRECT`) where the filesystem allows it:
/// the device reads them from the writer's buffer, so the kernel neither copies them into
/// the page cache nor keeps per-page state for writeback. A buffered write of the same
/// bytes costs the writer thread about three times the CPU (profiled: the copy into the
/// page cache, ext4's per-page delayed-allocation work, then writeback), and on a shared
/// machine that CPU is taken from the hashing thread. The last, partial chunk, the index
/// and the trailer are written buffered (their lengths are not block multiples). Where
/// direct I/O is refused (tmpfs, an alignment the device does not accept), every write is
/// buffered and writeback is started early instead. The bytes and the fsync in
/// [`PackWriter::finish`] are the same either way.
pub struct PackFile {
    file: File,
    /// Bytes written so far.
    written: u64,
    /// Bytes whose writeback has been started (buffered writes).
    kicked: u64,
    /// Whether the descriptor is in direct-I/O mode.
    direct: bool,
}

/// Start the writeback of every this many buffered bytes as soon as they are written, so
/// the disk works while the writer hashes and the final fsync has little left to do.
const WRITEBACK_EVERY: u64 = 8 << 20;

/// What direct I/O needs aligned: buffer address, file offset and length. 4 KiB covers
/// devices with 512-byte and with 4 KiB logical blocks.
const DIRECT_ALIGN: usize = 4096;

impl PackFile {
    fn new(file: File) -> PackFile {
        let mut f = PackFile {
            file,
            written: 0,
            kicked: 0,
            direct: false,
        };
        f.direct = f.set_direct(true).is_ok();
        f
    }

    /// Turns `O_DIRECT` on or off for the descriptor.
    fn set_direct(&mut self, on: bool) -> std::io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let fd = self.file.as_raw_fd();
            // SAFETY: fcntl with F_GETFL/F_SETFL only reads and sets the descriptor's
            // status flags; `fd` is open for the lifetime of `self.file`. The kernel refuses
            // O_DIRECT (EINVAL) on a filesystem without direct I/O.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
            if flags < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let flags = if on {
                flags | libc::O_DIRECT
            } else {
                flags & !libc::O_DIRECT
            };
            // SAFETY: as above.
            if unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
            self.direct = on;
            Ok(())
        }
        #[cfg(not(target_os = "linux"))]
        {
            self.direct = false;
            if on {
                Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
            } else {
                Ok(())
            }
        }
    }

    /// Writes the longest prefix of `buf` that direct I/O can take, and returns how much
    /// it wrote. Stops (and leaves the rest to buffered writes) when the filesystem refuses
    /// a direct write with `EINVAL` (nothing is written then) or writes a length that
    /// leaves the file offset unaligned.
    fn write_direct(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let aligned = if (buf.as_ptr() as usize).is_multiple_of(DIRECT_ALIGN)
            && self.written.is_multiple_of(DIRECT_ALIGN as u64)
        {
            buf.len() - buf.len() % DIRECT_ALIGN
        } else {
            0
        };
        let mut done = 0;
        while done < aligned {
            match self.file.write(&buf[done..aligned]) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    done += n;
                    self.written += n as u64;
                    if !n.is_multiple_of(DIRECT_ALIGN) {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if is_einval(&e) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

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

fn is_einval(e: &std::io::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        e.raw_os_error() == Some(libc::EINVAL)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = e;
        false
    }
}

impl Write for PackFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }
    fn write_all(&mut self, mut buf: &[u8]) -> std::io::Result<()> {
        if self.direct {
            let n = self.write_direct(buf)?;
            buf = &buf[n..];
            if !buf.is_empty() {
                // An unaligned tail (the end of the pack), or a refused direct write: the
                // rest of the file is written buffered. Buffered writes start at or after
                // the end of the direct ones, so no page is written both ways.
                self.set_direct(false)?;
                self.kicked = self.written;
            }
        }
        if buf.is_empty() {
            return Ok(());
        }
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
        PackWriter::new(PackFile::new(file), path, opts)
    }

    /// Writes the index and trailer, flushes and fsyncs the file (not its directory:
    /// the caller's protocol does that).
    pub fn finish(self) -> Result<PackSummary> {
        let path = self.stream.path.clone();
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

impl<W: Write + Send + 'static> PackWriter<W> {
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
            stream: Stream::new(out, path),
            opts,
            index: Vec::new(),
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
            path: self.stream.path.clone(),
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
                    .map_err(|e| Error::io(&self.stream.path, e))?;
                &self.scratch
            }
        };
        let crc = self.stream.put_checked(record_crc_seed(height), stored)?;
        self.stream.put(&crc.to_le_bytes())?;
        self.index
            .extend_from_slice(&(stored.len() as u32).to_le_bytes());
        self.index.extend_from_slice(&raw_len.to_le_bytes());
        self.data_size += stored.len() as u64 + 4;
        self.count += 1;
        Ok(())
    }

    /// Writes the index and the trailer and returns the sink (flushed) with the summary.
    pub fn finish_into(mut self) -> Result<(W, PackSummary)> {
        let index = std::mem::take(&mut self.index);
        self.stream.put(&index)?;
        let mut state = self.stream.finish()?;
        let path = &self.stream.path;
        let trailer = Trailer {
            version: FORMAT_VERSION,
            flags: FLAGS_V1,
            codec: self.opts.codec,
            codec_version: self.opts.codec.library_version(),
            record_kind: self.opts.record_kind,
            first_height: self.opts.first_height,
            record_count: self.count,
            data_size: self.data_size,
            index_size: index.len() as u64,
            index_crc32c: crate::crc::crc32c(&index),
            content_hash: finalize32(&state),
        };
        let bytes = trailer.encode();
        let Some(mut out) = self.stream.out.take() else {
            return Err(self.stream.gone());
        };
        out.write_all(&bytes).map_err(io(path))?;
        out.flush().map_err(io(path))?;
        state.update(&bytes);
        let summary = PackSummary {
            object_hash: finalize32(&state),
            size: self.data_size + index.len() as u64 + TRAILER_LEN as u64,
            trailer,
        };
        Ok((out, summary))
    }
}

/// The CRC-32C state after a record's height prefix (`FORMAT.md`: the record CRC covers
/// `height u32 LE ‖ stored`); [`crate::crc::crc32c_append`] of the stored bytes finishes it,
/// equal to [`crate::format::record_crc`].
fn record_crc_seed(height: u32) -> u32 {
    crc32c::crc32c(&height.to_le_bytes())
}

/// The bytes of a pack on their way out. They are staged in [`CHUNK`]-sized buffers; each
/// full chunk goes down a pipeline of two threads: the **hashing thread** (BLAKE2b-256 of
/// everything written, fed in write order, so the hash is that of one pass over the file)
/// hands it on to the **writing thread**, which writes it to the sink. The writer's own
/// thread meanwhile compresses, checksums and stages the next chunk. The three overlap: a
/// freeze costs about the longest of them (the hash, on a machine with a core free for it),
/// not their sum. The hash comes first so that a slow write never starves it (the writing
/// thread's time is mostly spent waiting for the device, not on a core). A pack smaller than
/// one chunk starts no thread: it is written and hashed inline at the end.
struct Stream<W: Write + Send + 'static> {
    /// The sink; `None` while the writing thread has it.
    out: Option<W>,
    path: PathBuf,
    staged: Chunk,
    pipeline: Option<Pipeline<W>>,
}

impl<W: Write + Send + 'static> Stream<W> {
    fn new(out: W, path: PathBuf) -> Stream<W> {
        Stream {
            out: Some(out),
            path,
            staged: Chunk::new(),
            pipeline: None,
        }
    }

    /// Appends `bytes` to the stream.
    fn put(&mut self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            let (piece, rest) = bytes.split_at(bytes.len().min(self.staged.room()));
            self.staged.append(piece);
            if self.staged.room() == 0 {
                self.ship()?;
            }
            bytes = rest;
        }
        Ok(())
    }

    /// Appends `bytes` and returns `crc32c_append(crc, bytes)`, computed piece by piece as
    /// the bytes are staged, so each piece is copied while the CRC has just brought it into
    /// cache (one pass over the caller's memory from DRAM, not two).
    fn put_checked(&mut self, mut crc: u32, mut bytes: &[u8]) -> Result<u32> {
        while !bytes.is_empty() {
            let n = bytes.len().min(self.staged.room()).min(CRC_PIECE);
            let (piece, rest) = bytes.split_at(n);
            crc = crate::crc::crc32c_append(crc, piece);
            self.staged.append(piece);
            if self.staged.room() == 0 {
                self.ship()?;
            }
            bytes = rest;
        }
        Ok(crc)
    }

    /// Sends the staged chunk down the pipeline (started at the first full chunk).
    fn ship(&mut self) -> Result<()> {
        let full = std::mem::replace(&mut self.staged, Chunk::new());
        if self.pipeline.is_none() {
            let Some(out) = self.out.take() else {
                return Err(self.gone());
            };
            self.pipeline = Some(Pipeline::start(out));
        }
        let sent = self
            .pipeline
            .as_ref()
            .and_then(|p| p.to_hash.as_ref())
            .is_some_and(|tx| tx.send(full).is_ok());
        if sent { Ok(()) } else { Err(self.stop()) }
    }

    /// Writes what is staged, waits for the pipeline and returns the hash state of
    /// everything written; the sink is back in `self.out`.
    fn finish(&mut self) -> Result<blake2b_simd::State> {
        let last = std::mem::replace(&mut self.staged, Chunk::empty());
        if self.pipeline.is_none() {
            // A pack smaller than one chunk: written and hashed here.
            let Some(out) = self.out.as_mut() else {
                return Err(self.gone());
            };
            out.write_all(last.bytes()).map_err(io(&self.path))?;
            let mut st = blake2b256_state();
            st.update(last.bytes());
            return Ok(st);
        }
        if last.len > 0 {
            let sent = self
                .pipeline
                .as_ref()
                .and_then(|p| p.to_hash.as_ref())
                .is_some_and(|tx| tx.send(last).is_ok());
            if !sent {
                return Err(self.stop());
            }
        }
        let Some(mut p) = self.pipeline.take() else {
            return Err(self.gone());
        };
        let (state, out, written) = p.join();
        self.out = out;
        match (state, written) {
            (Some(state), Some(Ok(()))) => Ok(state),
            (_, Some(Err(e))) => Err(Error::io(&self.path, e)),
            _ => Err(self.failed()),
        }
    }

    /// Stops the pipeline after a failed hand-off and returns why it failed: the writing
    /// thread's I/O error, or a thread that stopped.
    fn stop(&mut self) -> Error {
        let Some(mut p) = self.pipeline.take() else {
            return self.gone();
        };
        let (_, out, written) = p.join();
        self.out = out;
        match written {
            Some(Err(e)) => Error::io(&self.path, e),
            _ => self.failed(),
        }
    }

    fn failed(&self) -> Error {
        Error::Writer {
            path: self.path.clone(),
            reason: "the hashing or writing thread stopped".into(),
        }
    }

    fn gone(&self) -> Error {
        Error::Writer {
            path: self.path.clone(),
            reason: "the sink was lost to an earlier failure".into(),
        }
    }
}

/// The hashing and writing threads of a [`Stream`].
struct Pipeline<W> {
    to_hash: Option<SyncSender<Chunk>>,
    hasher: Option<JoinHandle<blake2b_simd::State>>,
    /// Returns the sink and the first write error.
    writer: Option<JoinHandle<(W, std::io::Result<()>)>>,
}

impl<W: Write + Send + 'static> Pipeline<W> {
    fn start(mut out: W) -> Pipeline<W> {
        let (to_hash, hash_rx) = sync_channel::<Chunk>(HASH_QUEUE);
        let (to_write, write_rx) = sync_channel::<Chunk>(WRITE_QUEUE);
        let hasher = std::thread::spawn(move || {
            let mut state = blake2b256_state();
            for chunk in hash_rx {
                state.update(chunk.bytes());
                if to_write.send(chunk).is_err() {
                    // The writing thread stopped on an error; the writer learns it at its
                    // next hand-off, when this thread is gone.
                    break;
                }
            }
            state
        });
        let writer = std::thread::spawn(move || {
            for chunk in write_rx {
                if let Err(e) = out.write_all(chunk.bytes()) {
                    return (out, Err(e));
                }
            }
            (out, Ok(()))
        });
        Pipeline {
            to_hash: Some(to_hash),
            hasher: Some(hasher),
            writer: Some(writer),
        }
    }
}

impl<W> Pipeline<W> {
    /// Closes the pipeline and waits for both threads: the hash state, the sink and the
    /// write result (`None` for a thread that panicked).
    fn join(
        &mut self,
    ) -> (
        Option<blake2b_simd::State>,
        Option<W>,
        Option<std::io::Result<()>>,
    ) {
        self.to_hash = None;
        let state = self.hasher.take().and_then(|h| h.join().ok());
        let written = self.writer.take().and_then(|h| h.join().ok());
        match written {
            Some((out, res)) => (state, Some(out), Some(res)),
            None => (state, None, None),
        }
    }
}

impl<W> Drop for Pipeline<W> {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

/// How many bytes of a record the CRC reads before they are copied: small enough that
/// the copy finds them in L1/L2.
const CRC_PIECE: usize = 64 << 10;

/// A staging buffer: up to [`CHUNK`] bytes at a [`DIRECT_ALIGN`]-aligned address inside
/// `buf` (so a full chunk can be written with direct I/O).
struct Chunk {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl Chunk {
    /// A buffer from the pool, or a new one.
    fn new() -> Chunk {
        let reused = POOL.lock().ok().and_then(|mut p| p.pop());
        let buf = reused.unwrap_or_else(|| vec![0; CHUNK + DIRECT_ALIGN]);
        // `align_offset` may in principle decline (usize::MAX); the chunk then starts
        // unaligned and is written buffered.
        let start = buf.as_ptr().align_offset(DIRECT_ALIGN).min(DIRECT_ALIGN);
        Chunk { buf, start, len: 0 }
    }

    /// A placeholder holding no buffer.
    fn empty() -> Chunk {
        Chunk {
            buf: Vec::new(),
            start: 0,
            len: 0,
        }
    }

    fn room(&self) -> usize {
        CHUNK - self.len
    }

    /// Appends `bytes` (at most [`Chunk::room`] of them).
    fn append(&mut self, bytes: &[u8]) {
        let at = self.start + self.len;
        self.buf[at..at + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        return_chunk_buffer(std::mem::take(&mut self.buf));
    }
}

/// Chunk buffers kept between packs. A fresh buffer costs a page fault (and the kernel
/// zeroing the page) per 4 KiB the first time it is filled — about a fifth of the writer
/// thread's time when every pack allocated its own — so hashed chunks come back here and
/// the next chunk, of this pack or the next one, reuses them. At most [`POOL_MAX`] are kept.
static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// Enough for the chunks in flight of one pack (both queues, the one being hashed, the one
/// being written, the one being filled) and a second pack freezing at the same time.
const POOL_MAX: usize = 2 * (HASH_QUEUE + WRITE_QUEUE + 3);
/// Chunks queued for the hashing thread at most (the writer waits when it is this far
/// ahead).
const HASH_QUEUE: usize = 4;
/// Chunks hashed and queued for the writing thread at most.
const WRITE_QUEUE: usize = 2;

fn return_chunk_buffer(buf: Vec<u8>) {
    if buf.len() != CHUNK + DIRECT_ALIGN {
        return;
    }
    if let Ok(mut pool) = POOL.lock()
        && pool.len() < POOL_MAX
    {
        pool.push(buf);
    }
}

/// Bytes staged, written and hashed at a time (a multiple of [`DIRECT_ALIGN`]).
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Whole aligned chunks go out with direct I/O where the filesystem allows it; the first
    /// unaligned write turns it off for the rest of the file; the file holds exactly the
    /// bytes written, in order, either way.
    #[test]
    fn pack_file_mixes_direct_and_buffered_writes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mixed");
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
            .unwrap();
        let mut f = PackFile::new(file);
        let direct_at_open = f.direct;
        let mut want = Vec::new();
        let mut chunk = Chunk::new();
        for round in 0..3u8 {
            while chunk.room() > 0 {
                let piece = [round; 4000];
                let n = piece.len().min(chunk.room());
                chunk.append(&piece[..n]);
            }
            f.write_all(chunk.bytes()).unwrap();
            want.extend_from_slice(chunk.bytes());
            chunk = Chunk::new();
        }
        assert_eq!(f.direct, direct_at_open, "aligned chunks keep the mode");
        for tail in [&b"an unaligned tail"[..], &[7u8; 5000][..]] {
            f.write_all(tail).unwrap();
            want.extend_from_slice(tail);
            assert!(!f.direct, "after an unaligned write everything is buffered");
        }
        f.file.sync_all().unwrap();
        assert_eq!(f.written, want.len() as u64);
        assert!(std::fs::read(&p).unwrap() == want);
    }
}
