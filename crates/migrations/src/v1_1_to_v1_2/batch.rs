//! One batch of an index stage (A or B): scan, verify and decode, sort and checksum, write.
//!
//! The calling thread reads the source rows and writes the batch; worker threads
//! ([`crate::MigrationOptions::worker_threads`]) do the CPU work in between, beside the
//! reads and the writes instead of after them:
//!
//! 1. **scan** (calling thread): walks the source rows from `next` in height order, checks
//!    each row's key, framing and height, and copies its checksummed bytes (`key ‖ item`)
//!    and stored checksum into chunks;
//! 2. **decode** (workers, meanwhile): verifies each chunk's checksums (BLAKE2b over
//!    several rows at once) and decodes its rows into entries, split into [`BUCKETS`] key
//!    ranges. The scan counts the decoded entries in row order and stops reading once the
//!    batch budget is reached; rows it read ahead past that point are left to the next
//!    batch;
//! 3. **seal** (workers): each key range's entries are sorted (a counting sort into small
//!    sub-ranges by the key bits after the range's, then each sub-range sorted where it
//!    lies, in cache), checked for duplicate keys, and given their stored values in key
//!    order — the entries' checksums, several at once;
//! 4. **write** (calling thread): the key ranges are inserted in key order, each as soon
//!    as it is sealed, and the batch commits with its progress watermark in one synced
//!    transaction. Sealing runs a few ranges ahead of the insert (a bounded pipeline, one
//!    range per worker and one more), and an inserted range's buffers are handed back to
//!    seal a later one, so the sealed rows of a batch take a few ranges' memory, reused,
//!    rather than a second copy of the batch in fresh pages.
//!
//! The calling thread never idles while there is work: when the decoders fall behind it
//! decodes the next chunk itself, and while it waits for them it takes queued work.
//!
//! The batch is exactly the sequential one (the rows up to the one that fills the budget),
//! nothing is written before each of its rows has verified, and the errors are those of a
//! sequential scan, in its order: for the first bad row, its key, framing, checksum, then
//! content or height; then duplicate keys (smallest first); then existing entries (in key
//! order).
//!
//! With `worker_threads == 0` the same work runs on the calling thread, in the same order.

use std::collections::{BTreeMap, VecDeque};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::Scope;
use std::time::Instant;

use blake2b_simd::many::{HashManyJob, hash_many};
use storage_traits::kv::{Direction, KeyRange, KvRead, KvStore, KvWrite};
use storage_traits::model::{Height, TxLocation};
use storage_traits::table::MetadataHeights;
use storage_traits::{Durability, TableKey, TableWrite, blake2b256};

use super::{
    ENTRY_ESTIMATE, Entry, IndexStage, MAX_KEY, check_existing, location_item, report,
    split_var_entry,
};
use crate::error::{MigrationError, Result};
use crate::framework::{MigrationContext, ProgressEvent};

/// Key ranges per batch, sealed independently: the write starts on the first range while
/// the workers seal the others.
const BUCKETS: usize = 32;

/// Bytes of source rows per chunk: enough to keep the hash lanes busy and the hand-overs
/// rare, small enough that the workers start early and little is read past a batch's end.
/// A small batch budget makes chunks smaller, down to [`MIN_CHUNK_BYTES`].
const CHUNK_BYTES: usize = 256 << 10;
const MIN_CHUNK_BYTES: usize = 4 << 10;

/// Chunks in flight per worker; past that, the scan decodes the next chunk itself.
const CHUNKS_PER_WORKER: usize = 2;

/// Entries hashed per `hash_many` call: enough for the 4-way AVX2 lanes many times over,
/// small enough to stay on the stack and in L1.
const HASH_BATCH: usize = 32;

/// A stored `StoredEntryFixed<TxLocation>`: `[0x01] [0x01 tag, BE u32 height, BE u16
/// index] [BLAKE2b-256(key ‖ tagged item)]`.
type LocationValue = [u8; 40];

/// What one batch did.
pub(super) struct BatchDone {
    /// The next height to process.
    pub next: Height,
    /// The entries the batch's rows imply (written or found present).
    pub entries: u64,
}

/// Scans, verifies, seals and commits one batch from `next`.
pub(super) fn run_batch<S: KvStore>(
    ctx: &mut MigrationContext<'_, S>,
    spec: &IndexStage,
    next: Height,
    tip: Height,
    fast: bool,
    started: Instant,
) -> Result<BatchDone> {
    let workers = ctx.options.worker_threads;
    std::thread::scope(|scope| {
        let mut pool = Pool::start(scope, workers, spec);
        let scanned = scan(ctx, spec, next, tip, &mut pool, started)?;
        commit_batch(
            ctx.store,
            spec,
            &mut pool,
            scanned.buckets,
            fast,
            scanned.next,
        )?;
        Ok(BatchDone {
            next: scanned.next,
            entries: scanned.entries,
        })
    })
}

/// A scanned batch: where the next one starts, and its entries by key range, in pieces.
struct Scanned {
    next: Height,
    entries: u64,
    buckets: Vec<Vec<Vec<Entry>>>,
}

/// Reads the source rows from `next`, hands them to the decoders in chunks, and counts the
/// decoded entries in row order until the budget is reached, the tip is passed or a bad row
/// is found.
fn scan<S: KvStore>(
    ctx: &mut MigrationContext<'_, S>,
    spec: &IndexStage,
    next: Height,
    tip: Height,
    pool: &mut Pool<'_>,
    started: Instant,
) -> Result<Scanned> {
    let store = ctx.store;
    let budget = ctx.options.write_batch_bytes.max(1);
    let every = ctx.options.progress_every_heights.max(1);
    let chunk_bytes = budget.clamp(MIN_CHUNK_BYTES, CHUNK_BYTES);
    let in_flight = pool.workers.max(1) * CHUNKS_PER_WORKER;
    let mut count = Count::new(spec.key_len + ENTRY_ESTIMATE, budget, next);
    let mut chunk = RowChunk::default();
    let mut sent = 0usize;
    // The next height the reader expects, and its error at the first row it could not
    // hand out (the batch's error only if the rows before it do not fill the budget).
    let mut read_next = next;
    let mut read_failure: Option<MigrationError> = None;
    let mut reported = next;
    // One snapshot per batch: a read transaction held across the batch commits would pin
    // every page they replace (redb) or the memtables (RocksDB).
    let snap = store.begin_read()?;
    snap.visit_range(
        spec.source,
        KeyRange::inclusive(next.encode_key(), tip.encode_key()),
        Direction::Forward,
        &mut |key: &[u8], value: &[u8]| {
            match read_row(spec, read_next, key, value) {
                Ok((height, item, checksum)) => {
                    chunk.push(key, item, height, checksum);
                    read_next = Height(height.0 + 1);
                }
                Err(e) => {
                    read_failure = Some(e);
                    return Ok(ControlFlow::Break(()));
                }
            }
            if chunk.bytes.len() < chunk_bytes {
                return Ok(ControlFlow::Continue(()));
            }
            let full = std::mem::replace(&mut chunk, count.spare.pop().unwrap_or_default());
            while let Some(done) = pool.try_done() {
                count.take(done);
            }
            if sent - count.received < in_flight {
                pool.submit(Work::Decode(sent, full));
            } else {
                // The workers are behind: decode this chunk here rather than wait for them.
                pool.run_here(Work::Decode(sent, full));
            }
            sent += 1;
            while let Some(done) = pool.try_done() {
                count.take(done);
            }
            if count.next.0 >= reported.0.saturating_add(every) {
                reported = count.next;
                report(
                    ctx,
                    spec.stage,
                    ProgressEvent::Progress,
                    Some(reported),
                    Some(tip),
                    started,
                );
            }
            Ok(if count.settled() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        },
    )?;
    drop(snap);
    if !chunk.rows.is_empty() && !count.settled() {
        pool.submit(Work::Decode(sent, chunk));
        sent += 1;
    }
    while !count.settled() && count.received < sent {
        match pool.next_done() {
            Some(done) => count.take(done),
            None => break,
        }
    }
    if let Some(e) = count.failure {
        return Err(e);
    }
    let next = match count.last {
        Some(last) => Height(last.0 + 1),
        None => {
            // Every row read is in the batch, and the budget is not full.
            if let Some(e) = read_failure {
                return Err(e);
            }
            if read_next <= tip {
                return Err(storage_traits::Error::Corrupt {
                    table: spec.source,
                    key: hex::encode(read_next.encode_key()),
                    height: Some(read_next.0),
                    reason: format!("rows end below the tip {tip}"),
                }
                .into());
            }
            read_next
        }
    };
    Ok(Scanned {
        next,
        entries: count.entries,
        buckets: count.buckets,
    })
}

/// The decoded chunks, counted in row order whatever order the workers finish them in.
struct Count {
    per_entry: usize,
    budget: usize,
    /// Decoded chunks waiting for the ones before them.
    pending: BTreeMap<usize, Decoded>,
    /// Decoded chunks received, counted or pending.
    received: usize,
    /// The next chunk to count.
    next_seq: usize,
    /// Entries of the counted rows.
    entries: u64,
    /// The height after the last counted row.
    next: Height,
    /// The counted rows' entries by key range, in pieces (one per chunk).
    buckets: Vec<Vec<Vec<Entry>>>,
    /// The batch's last row, once the budget is full.
    last: Option<Height>,
    /// The first bad row, if the budget is not full before it.
    failure: Option<MigrationError>,
    /// Chunks back from the decoders, for reuse.
    spare: Vec<RowChunk>,
}

impl Count {
    fn new(per_entry: usize, budget: usize, next: Height) -> Count {
        Count {
            per_entry,
            budget,
            pending: BTreeMap::new(),
            received: 0,
            next_seq: 0,
            entries: 0,
            next,
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            last: None,
            failure: None,
            spare: Vec::new(),
        }
    }

    /// Whether the batch's rows are known: the budget is full or a bad row ends the scan.
    fn settled(&self) -> bool {
        self.last.is_some() || self.failure.is_some()
    }

    fn take(&mut self, done: Done) {
        let Done::Decoded(seq, decoded, mut chunk) = done else {
            return;
        };
        self.received += 1;
        chunk.clear();
        self.spare.push(chunk);
        if self.settled() {
            return;
        }
        self.pending.insert(seq, decoded);
        while let Some(decoded) = self.pending.remove(&self.next_seq) {
            self.next_seq += 1;
            self.count(decoded);
            if self.settled() {
                self.pending.clear();
                return;
            }
        }
    }

    fn count(&mut self, decoded: Decoded) {
        let Decoded {
            rows,
            buckets,
            bad_row,
        } = decoded;
        for &(height, n) in &rows {
            self.entries += n as u64;
            self.next = Height(height.0 + 1);
            if self.entries.saturating_mul(self.per_entry as u64) >= self.budget as u64 {
                self.last = Some(height);
                break;
            }
        }
        for (all, mut piece) in self.buckets.iter_mut().zip(buckets) {
            if let Some(last) = self.last {
                // A piece is in row order: keep the entries of rows up to the last one.
                piece.truncate(piece.partition_point(|e| e.1.block_height <= last.0));
            }
            if !piece.is_empty() {
                all.push(piece);
            }
        }
        if self.last.is_none() {
            self.failure = bad_row;
        }
    }
}

/// Checks a source row's key, framing and height (the reader's part of the sequential
/// checks): its height, item bytes and stored checksum. The error is the one a sequential
/// scan reports for the row: at a wrong height, its checksum or content come first.
fn read_row<'v>(
    spec: &IndexStage,
    expected: Height,
    key: &[u8],
    value: &'v [u8],
) -> Result<(Height, &'v [u8], [u8; 32])> {
    let height = Height::decode_key(key).map_err(|e| storage_traits::Error::Corrupt {
        table: spec.source,
        key: hex::encode(key),
        height: None,
        reason: e.to_string(),
    })?;
    let (item, checksum) = split_var_entry(spec.source, key, height, value)?;
    if height != expected {
        if blake2b256(&[key, item]) != checksum {
            return Err(checksum_mismatch(spec.source, key, height).into());
        }
        (spec.entries)(height, item, &mut Vec::new())
            .map_err(|e| content_error(spec, key, height, e))?;
        return Err(storage_traits::Error::Corrupt {
            table: spec.source,
            key: hex::encode(key),
            height: Some(height.0),
            reason: format!("gap in the stored heights: expected {expected}"),
        }
        .into());
    }
    Ok((height, item, checksum))
}

fn checksum_mismatch(table: &'static str, key: &[u8], height: Height) -> storage_traits::Error {
    storage_traits::Error::ChecksumMismatch {
        table,
        key: hex::encode(key),
        height: Some(height.0),
    }
}

fn content_error(
    spec: &IndexStage,
    key: &[u8],
    height: Height,
    e: storage_traits::Error,
) -> MigrationError {
    storage_traits::Error::Corrupt {
        table: spec.source,
        key: hex::encode(key),
        height: Some(height.0),
        reason: format!("{}: {e}", spec.source_type),
    }
    .into()
}

/// Source rows' checksummed bytes (`key ‖ item`, back to back) with their stored checksums.
#[derive(Default)]
struct RowChunk {
    bytes: Vec<u8>,
    rows: Vec<ChunkRow>,
}

struct ChunkRow {
    start: usize,
    key_end: usize,
    end: usize,
    height: Height,
    checksum: [u8; 32],
}

impl RowChunk {
    fn push(&mut self, key: &[u8], item: &[u8], height: Height, checksum: [u8; 32]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(key);
        let key_end = self.bytes.len();
        self.bytes.extend_from_slice(item);
        self.rows.push(ChunkRow {
            start,
            key_end,
            end: self.bytes.len(),
            height,
            checksum,
        });
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.rows.clear();
    }
}

/// A decoded chunk.
struct Decoded {
    /// Height and entry count of each row, in order, up to the first bad row.
    rows: Vec<(Height, usize)>,
    /// Their entries by key range, each in row order.
    buckets: Vec<Vec<Entry>>,
    /// The first bad row's error: what a sequential scan reports for it.
    bad_row: Option<MigrationError>,
}

/// Verifies the rows of `chunk` (all checksums at once) and decodes them, up to the first
/// bad one.
fn decode_chunk(spec: &IndexStage, chunk: &RowChunk, entries: &mut Vec<Entry>) -> Decoded {
    let params = checksum_params();
    let mut jobs: Vec<HashManyJob<'_>> = chunk
        .rows
        .iter()
        .map(|r| HashManyJob::new(&params, &chunk.bytes[r.start..r.end]))
        .collect();
    hash_many(jobs.iter_mut());
    let mut rows = Vec::with_capacity(chunk.rows.len());
    let mut bad_row = None;
    // Every entry takes at least `key_len` bytes of its row (its txid or outpoint), so this
    // is enough: no regrowth, and the thread's buffer is reused from chunk to chunk.
    entries.clear();
    entries.reserve(chunk.bytes.len() / spec.key_len);
    for (job, row) in jobs.iter().zip(&chunk.rows) {
        let key = &chunk.bytes[row.start..row.key_end];
        if job.to_hash().as_bytes() != row.checksum {
            bad_row = Some(checksum_mismatch(spec.source, key, row.height).into());
            break;
        }
        let item = &chunk.bytes[row.key_end..row.end];
        let before = entries.len();
        if let Err(e) = (spec.entries)(row.height, item, entries) {
            entries.truncate(before);
            bad_row = Some(content_error(spec, key, row.height, e));
            break;
        }
        rows.push((row.height, entries.len() - before));
    }
    // Split by key range, each piece allocated at its size.
    let mut sizes = [0usize; BUCKETS];
    for e in entries.iter() {
        sizes[bucket_of(spec, &e.0)] += 1;
    }
    let mut buckets: Vec<Vec<Entry>> = sizes.iter().map(|&n| Vec::with_capacity(n)).collect();
    for e in entries.drain(..) {
        buckets[bucket_of(spec, &e.0)].push(e);
    }
    Decoded {
        rows,
        buckets,
        bad_row,
    }
}

/// The BLAKE2b-256 parameters of every checksum: 32-byte output, no key, salt or
/// personalisation (as `storage_traits::blake2b256`).
fn checksum_params() -> blake2b_simd::Params {
    let mut params = blake2b_simd::Params::new();
    params.hash_length(32);
    params
}

/// The key range of `key`: the top bits of its first varying byte. The bytes before
/// `spread_byte` are the same in every key of a stage, so the ranges are in key order; the
/// varying bytes start a txid, uniformly distributed, so the ranges are of similar sizes.
fn bucket_of(spec: &IndexStage, key: &[u8; MAX_KEY]) -> usize {
    usize::from(key[spec.spread_byte]) * BUCKETS / 256
}

/// The 8 key bytes from `spread_byte`, as one big-endian integer: the bytes before
/// `spread_byte` are the same in every key of a stage, so ordering by this, then by the whole
/// key, is the byte order; the bytes start a txid, so they almost always differ.
fn sort_prefix(spread_byte: usize, key: &[u8; MAX_KEY]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&key[spread_byte..spread_byte + 8]);
    u64::from_be_bytes(word)
}

/// The bits of a key's first varying byte that pick its key range (see [`bucket_of`]).
const BUCKET_BITS: u32 = BUCKETS.trailing_zeros();

/// Sub-range bits for a key range of `n` entries: enough for sub-ranges of about 8 entries
/// (a few hundred bytes, sorted where they lie), at most what 4 key bytes hold.
fn sub_bits(n: usize) -> u32 {
    (usize::BITS - (n / 8).leading_zeros()).clamp(1, 32 - BUCKET_BITS)
}

/// The sub-range of `key` within its key range: the `bits` key bits that follow the key
/// range's own. Within a key range, key order implies sub-range order.
fn sub_of(spread_byte: usize, bits: u32, key: &[u8; MAX_KEY]) -> usize {
    let mut word = [0u8; 4];
    word.copy_from_slice(&key[spread_byte..spread_byte + 4]);
    ((u32::from_be_bytes(word) << BUCKET_BITS) >> (32 - bits)) as usize
}

/// The order of a key range's entries: key bytes (the sort prefix first, which almost
/// always decides), then location. Equal keys are duplicates; ordered by location, the first
/// two are the two earliest, as rows are read in location order.
fn entry_order(spread_byte: usize, a: &Entry, b: &Entry) -> std::cmp::Ordering {
    sort_prefix(spread_byte, &a.0)
        .cmp(&sort_prefix(spread_byte, &b.0))
        .then_with(|| a.0.cmp(&b.0))
        .then_with(|| a.1.cmp(&b.1))
}

/// A key range, sorted, with the stored value of every entry. Its buffers are reused: the
/// writer hands an inserted range back to be sealed again (see `commit_batch`).
#[derive(Default)]
struct Sealed {
    /// The entries in key order.
    entries: Vec<Entry>,
    /// Their stored values, in the same order.
    values: Vec<LocationValue>,
    /// Where each sub-range starts in `entries` (and, last, their end).
    starts: Vec<usize>,
    /// The counting sort's cursors.
    cursors: Vec<usize>,
}

impl Sealed {
    fn rows(&self, key_len: usize) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .zip(&self.values)
            .map(move |(e, v)| (&e.0[..key_len], &v[..]))
    }
}

/// Seals a key range into `out`'s buffers: sorts its pieces' entries by key (ties, which
/// are duplicates, by location), rejects duplicate keys (the smallest key first, with its
/// two earliest locations) and computes every entry's stored value, in key order.
///
/// The sort is a counting sort of the entries into small sub-ranges by the key bits after
/// the key range's (keys start with a txid: uniformly distributed, so a sub-range holds a
/// few entries whatever the input), then a comparison sort of each sub-range where it lies,
/// in cache; a skewed input only makes some sub-ranges longer. The entries are then read
/// once, in order. The pieces are freed on return.
fn seal(spec: &IndexStage, pieces: Vec<Vec<Entry>>, mut out: Sealed) -> Result<Sealed> {
    let spread = spec.spread_byte;
    let n: usize = pieces.iter().map(Vec::len).sum();
    let bits = sub_bits(n);
    let subs = 1usize << bits;
    out.starts.clear();
    out.starts.resize(subs + 1, 0);
    for e in pieces.iter().flatten() {
        out.starts[sub_of(spread, bits, &e.0) + 1] += 1;
    }
    for s in 1..=subs {
        out.starts[s] += out.starts[s - 1];
    }
    out.cursors.clear();
    out.cursors.extend_from_slice(&out.starts[..subs]);
    // Every slot below `n` is written once by the scatter: a reused buffer's old entries
    // need no clearing, only the growth is filled.
    out.entries.truncate(n);
    out.entries.resize(n, ([0; MAX_KEY], TxLocation::default()));
    for e in pieces.iter().flatten() {
        let cursor = &mut out.cursors[sub_of(spread, bits, &e.0)];
        out.entries[*cursor] = *e;
        *cursor += 1;
    }
    drop(pieces);
    for s in 0..subs {
        out.entries[out.starts[s]..out.starts[s + 1]]
            .sort_unstable_by(|a, b| entry_order(spread, a, b));
    }
    if let Some(pair) = out.entries.windows(2).find(|p| p[0].0 == p[1].0) {
        return Err(MigrationError::Duplicate {
            table: spec.table,
            key: hex::encode(&pair[0].0[..spec.key_len]),
            first: pair[0].1,
            second: pair[1].1,
        });
    }
    out.values.clear();
    out.values.reserve(n);
    for group in out.entries.chunks(HASH_BATCH) {
        push_values(spec.key_len, group, &mut out.values);
    }
    Ok(out)
}

/// Appends the stored values of `group` (at most [`HASH_BATCH`] entries), their checksums
/// computed together with `blake2b_simd::many`.
fn push_values(key_len: usize, group: &[Entry], out: &mut Vec<LocationValue>) {
    let params = checksum_params();
    let mut messages = [[0u8; MAX_KEY + 7]; HASH_BATCH];
    for (m, (key, loc)) in messages.iter_mut().zip(group) {
        m[..key_len].copy_from_slice(&key[..key_len]);
        m[key_len..key_len + 7].copy_from_slice(&location_item(*loc));
    }
    let message = |i: usize| &messages[i][..key_len + 7];
    let mut push = |jobs: &[HashManyJob<'_>]| {
        for (job, (_, loc)) in jobs.iter().zip(group) {
            out.push(location_value(*loc, job.to_hash().as_bytes()));
        }
    };
    if group.len() == HASH_BATCH {
        // The common case: a full group, jobs on the stack.
        let mut jobs: [HashManyJob<'_>; HASH_BATCH] =
            std::array::from_fn(|i| HashManyJob::new(&params, message(i)));
        hash_many(jobs.iter_mut());
        push(&jobs);
    } else {
        let mut jobs: Vec<HashManyJob<'_>> = (0..group.len())
            .map(|i| HashManyJob::new(&params, message(i)))
            .collect();
        hash_many(jobs.iter_mut());
        push(&jobs);
    }
}

/// The stored `StoredEntryFixed<TxLocation>` value of every entry, the checksums computed
/// [`HASH_BATCH`] at a time with `blake2b_simd::many` (as [`seal`] does).
#[cfg(test)]
pub(super) fn location_values(key_len: usize, entries: &[Entry]) -> Vec<LocationValue> {
    let mut values = Vec::with_capacity(entries.len());
    for group in entries.chunks(HASH_BATCH) {
        push_values(key_len, group, &mut values);
    }
    values
}

fn location_value(loc: TxLocation, checksum: &[u8]) -> LocationValue {
    let mut out = [0u8; 40];
    out[0] = storage_traits::entry::ENTRY_VERSION;
    out[1..8].copy_from_slice(&location_item(loc));
    out[8..].copy_from_slice(checksum);
    out
}

/// Seals the key ranges, inserts them in key order and commits them with the watermark
/// `next`.
fn commit_batch<S: KvStore>(
    store: &S,
    spec: &IndexStage,
    pool: &mut Pool<'_>,
    buckets: Vec<Vec<Vec<Entry>>>,
    fast: bool,
    next: Height,
) -> Result<()> {
    let n = spec.key_len;
    let mut sealed: Vec<Option<Result<Sealed>>> = (0..BUCKETS).map(|_| None).collect();
    let mut w = store.begin_write()?;
    if fast {
        // Only this stage's own rows in the table: nothing to check, so each range goes in
        // as soon as it is sealed. A bounded pipeline: a few ranges are sealed ahead of the
        // insert, and each inserted range's buffers go back to seal a later one, so the
        // sealed rows reuse memory instead of touching fresh pages.
        let ahead = (pool.workers + 1).min(BUCKETS);
        let mut pending = buckets.into_iter().enumerate();
        for (i, pieces) in pending.by_ref().take(ahead) {
            pool.submit(Work::Seal(i, pieces, Sealed::default()));
        }
        for i in 0..BUCKETS {
            let s = take_sealed(pool, &mut sealed, i)?;
            w.insert_sorted(spec.table, &mut s.rows(n))?;
            if let Some((j, pieces)) = pending.next() {
                pool.submit(Work::Seal(j, pieces, s));
            }
        }
    } else {
        for (i, pieces) in buckets.into_iter().enumerate() {
            pool.submit(Work::Seal(i, pieces, Sealed::default()));
        }
        // Every duplicate is reported before any existing entry, as in a sequential pass.
        let all = (0..BUCKETS)
            .map(|i| take_sealed(pool, &mut sealed, i))
            .collect::<Result<Vec<_>>>()?;
        for s in &all {
            let mut missing = Vec::with_capacity(s.entries.len());
            for row in s.entries.iter().zip(&s.values) {
                if !check_existing(&w, spec.table, &row.0.0[..n], row.0.1)? {
                    missing.push(row);
                }
            }
            w.insert_sorted(
                spec.table,
                &mut missing.iter().map(|(e, v)| (&e.0[..n], &v[..])),
            )?;
        }
    }
    pool.close();
    w.put_row::<MetadataHeights>(&spec.progress_key, next)?;
    w.commit(Durability::Synced)?;
    Ok(())
}

/// Key range `i`, sealed: waits for it, doing queued work meanwhile, and keeps the other
/// ranges that arrive first.
fn take_sealed(
    pool: &mut Pool<'_>,
    sealed: &mut [Option<Result<Sealed>>],
    i: usize,
) -> Result<Sealed> {
    loop {
        if let Some(s) = sealed[i].take() {
            return s;
        }
        match pool.next_done() {
            Some(Done::Sealed(j, s)) => sealed[j] = Some(s),
            Some(Done::Decoded(..)) => {}
            // Only if a worker panicked; the scope re-raises its panic.
            None => panic!("migration workers stopped before sealing key range {i}"),
        }
    }
}

/// Work for the workers.
enum Work {
    /// Verify and decode a chunk of source rows (its sequence number in the batch).
    Decode(usize, RowChunk),
    /// Seal key range `i` from its pieces, into the given buffers.
    Seal(usize, Vec<Vec<Entry>>, Sealed),
}

/// Work done.
enum Done {
    /// A decoded chunk, and its buffers for reuse.
    Decoded(usize, Decoded, RowChunk),
    Sealed(usize, Result<Sealed>),
}

/// Does `work`; `scratch` is the thread's decoding buffer, kept across chunks.
fn do_work(spec: &IndexStage, work: Work, scratch: &mut Vec<Entry>) -> Done {
    match work {
        Work::Decode(seq, chunk) => Done::Decoded(seq, decode_chunk(spec, &chunk, scratch), chunk),
        Work::Seal(i, pieces, out) => Done::Sealed(i, seal(spec, pieces, out)),
    }
}

/// The workers of one batch, or the calling thread when there are none.
struct Pool<'s> {
    spec: &'s IndexStage,
    workers: usize,
    /// Work for the workers; `None` with no workers, or once closed.
    work: Option<Sender<Work>>,
    /// Work done by the workers.
    done: Option<Receiver<Done>>,
    /// Work done on the calling thread (no workers, or none left).
    done_here: VecDeque<Done>,
    /// The workers' queue, from which the calling thread takes work instead of waiting.
    queue: Option<Arc<Mutex<Receiver<Work>>>>,
    /// Tells the workers to skip the work still queued (the batch failed).
    abort: Arc<AtomicBool>,
    /// The calling thread's decoding buffer.
    scratch: Vec<Entry>,
}

impl<'s> Pool<'s> {
    fn start(scope: &'s Scope<'s, '_>, workers: usize, spec: &'s IndexStage) -> Pool<'s> {
        let abort = Arc::new(AtomicBool::new(false));
        let (work, done, queue) = if workers == 0 {
            (None, None, None)
        } else {
            let (work_tx, work_rx) = channel::<Work>();
            let (done_tx, done_rx) = channel::<Done>();
            let work_rx = Arc::new(Mutex::new(work_rx));
            for _ in 0..workers {
                let (work_rx, done_tx, abort) = (work_rx.clone(), done_tx.clone(), abort.clone());
                scope.spawn(move || {
                    let mut scratch = Vec::new();
                    loop {
                        // The lock is held only while waiting for the next item.
                        let next = match work_rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(work) = next else { return };
                        if abort.load(Ordering::Relaxed) {
                            continue;
                        }
                        if done_tx.send(do_work(spec, work, &mut scratch)).is_err() {
                            return;
                        }
                    }
                });
            }
            (Some(work_tx), Some(done_rx), Some(work_rx))
        };
        Pool {
            spec,
            workers,
            work,
            done,
            done_here: VecDeque::new(),
            queue,
            abort,
            scratch: Vec::new(),
        }
    }

    fn submit(&mut self, work: Work) {
        let work = match &self.work {
            Some(tx) => match tx.send(work) {
                Ok(()) => return,
                // No worker left to take it (one panicked; the scope re-raises that).
                Err(e) => e.0,
            },
            None => work,
        };
        self.run_here(work);
    }

    /// Does `work` on the calling thread.
    fn run_here(&mut self, work: Work) {
        let done = do_work(self.spec, work, &mut self.scratch);
        self.done_here.push_back(done);
    }

    /// No more work: the workers stop once the queue is empty.
    fn close(&mut self) {
        self.work = None;
    }

    /// Done work, if any, without waiting.
    fn try_done(&mut self) -> Option<Done> {
        self.done_here
            .pop_front()
            .or_else(|| self.done.as_ref().and_then(|rx| rx.try_recv().ok()))
    }

    /// Done work; until some is, the calling thread does queued work itself. `None` if
    /// none can come.
    fn next_done(&mut self) -> Option<Done> {
        loop {
            if let Some(done) = self.try_done() {
                return Some(done);
            }
            // A worker holds the lock only while the queue is empty.
            let queued = self
                .queue
                .as_ref()
                .and_then(|q| q.try_lock().ok().and_then(|rx| rx.try_recv().ok()));
            match queued {
                Some(work) => self.run_here(work),
                None => return self.wait_done(),
            }
        }
    }

    /// Done work, waiting for it; `None` if none can come.
    fn wait_done(&mut self) -> Option<Done> {
        self.done_here
            .pop_front()
            .or_else(|| self.done.as_ref().and_then(|rx| rx.recv().ok()))
    }
}

impl Drop for Pool<'_> {
    fn drop(&mut self) {
        // On an early return the queued work is moot: let the workers skip it.
        self.abort.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{SPENT_STAGE, TXID_LOCATION_STAGE};
    use super::*;
    use storage_traits::codec::put_compact_size;
    use storage_traits::model::{TransparentCompactTx, TransparentTxList, TxId, TxInCompact};
    use storage_traits::table::{Transparent, encode_row};
    use storage_traits::{StoredEntry, StoredEntryFixed, Table};

    /// A `transparent` row at `h`: one transaction spending output 0 of txid `[h; 32]`.
    fn transparent_row(h: u32) -> (Vec<u8>, Vec<u8>) {
        let list = TransparentTxList(vec![Some(TransparentCompactTx {
            vin: vec![TxInCompact {
                prevout_txid: TxId([h as u8; 32]),
                prevout_index: 0,
            }],
            vout: vec![],
        })]);
        encode_row::<Transparent>(&Height(h), list)
    }

    /// A row whose checksum is right but whose item does not decode (option tag 2).
    fn undecodable_row(h: u32) -> (Vec<u8>, Vec<u8>) {
        let key = Height(h).encode_key();
        let item = [1u8, 1, 2];
        let mut value = vec![storage_traits::entry::ENTRY_VERSION];
        put_compact_size(&mut value, item.len() as u64);
        value.extend_from_slice(&item);
        value.extend_from_slice(&blake2b256(&[&key, &item]));
        (key, value)
    }

    fn chunk_of(rows: &[(Vec<u8>, Vec<u8>)], first: u32) -> RowChunk {
        let mut chunk = RowChunk::default();
        for (i, (k, v)) in rows.iter().enumerate() {
            let (h, item, checksum) =
                read_row(&SPENT_STAGE, Height(first + i as u32), k, v).unwrap();
            chunk.push(k, item, h, checksum);
        }
        chunk
    }

    #[test]
    fn decoding_stops_at_the_first_bad_row_with_its_sequential_error() {
        let mut rows: Vec<_> = (10..30).map(transparent_row).collect();
        let good = decode_chunk(&SPENT_STAGE, &chunk_of(&rows, 10), &mut Vec::new());
        assert!(good.bad_row.is_none());
        assert_eq!(good.rows.len(), 20);
        assert!(good.rows.iter().all(|&(_, n)| n == 1));
        assert_eq!(good.buckets.iter().map(Vec::len).sum::<usize>(), 20);
        // Each piece is in row order, in its key range.
        for (b, piece) in good.buckets.iter().enumerate() {
            assert!(
                piece
                    .windows(2)
                    .all(|p| p[0].1.block_height < p[1].1.block_height)
            );
            assert!(piece.iter().all(|e| bucket_of(&SPENT_STAGE, &e.0) == b));
        }

        // Row 18 does not decode, row 15 has a bad checksum: 15 is the error.
        rows[8] = undecodable_row(18);
        let last = rows[5].1.len() - 1;
        rows[5].1[last] ^= 1;
        let bad = decode_chunk(&SPENT_STAGE, &chunk_of(&rows, 10), &mut Vec::new());
        assert_eq!(bad.rows.len(), 5);
        match bad.bad_row {
            Some(MigrationError::Storage(storage_traits::Error::ChecksumMismatch {
                table,
                height,
                ..
            })) => assert_eq!((table, height), (Transparent::NAME, Some(15))),
            other => panic!("expected a checksum mismatch, got {other:?}"),
        }
        rows[5] = transparent_row(15);
        let bad = decode_chunk(&SPENT_STAGE, &chunk_of(&rows, 10), &mut Vec::new());
        assert_eq!(bad.rows.len(), 8);
        match bad.bad_row {
            Some(MigrationError::Storage(storage_traits::Error::Corrupt {
                table,
                height,
                reason,
                ..
            })) => {
                assert_eq!((table, height), (Transparent::NAME, Some(18)));
                assert!(reason.contains("TransparentTxList"), "{reason}");
            }
            other => panic!("expected a decoding error, got {other:?}"),
        }
        // At a wrong height the reader reports the row's own content error first.
        let (k, v) = undecodable_row(40);
        let err = read_row(&SPENT_STAGE, Height(39), &k, &v).unwrap_err();
        assert!(err.to_string().contains("TransparentTxList"), "{err}");
        let (k, v) = transparent_row(40);
        let err = read_row(&SPENT_STAGE, Height(39), &k, &v).unwrap_err();
        assert!(err.to_string().contains("gap"), "{err}");
    }

    #[test]
    fn counting_is_in_row_order_and_ends_at_the_budget() {
        // Five chunks of four rows (heights 0..20), one entry each, finishing out of order;
        // the budget fills at the 10th entry (height 9, in chunk 2); chunk 3 has a bad row,
        // which is past the batch's end and so not its error.
        let per_entry = SPENT_STAGE.key_len + ENTRY_ESTIMATE;
        let rows: Vec<_> = (0..20).map(transparent_row).collect();
        let mut chunks: Vec<Decoded> = rows
            .chunks(4)
            .enumerate()
            .map(|(i, r)| decode_chunk(&SPENT_STAGE, &chunk_of(r, 4 * i as u32), &mut Vec::new()))
            .collect();
        chunks[3].bad_row = Some(MigrationError::NoMetadata);
        let mut count = Count::new(per_entry, 10 * per_entry, Height(0));
        let mut arrived: Vec<(usize, Decoded)> = chunks.into_iter().enumerate().collect();
        arrived.swap(0, 3);
        arrived.swap(1, 2);
        for (seq, decoded) in arrived {
            count.take(Done::Decoded(seq, decoded, RowChunk::default()));
        }
        assert_eq!(count.received, 5);
        assert_eq!(count.last, Some(Height(9)));
        assert!(count.failure.is_none());
        assert_eq!(count.entries, 10);
        let mut heights: Vec<u32> = count
            .buckets
            .iter()
            .flatten()
            .flatten()
            .map(|e| e.1.block_height)
            .collect();
        heights.sort_unstable();
        assert_eq!(heights, (0..10).collect::<Vec<_>>());

        // The same with a budget past the bad row: the bad row is the error.
        let mut count = Count::new(per_entry, 100 * per_entry, Height(0));
        for (seq, r) in rows.chunks(4).enumerate() {
            let mut decoded =
                decode_chunk(&SPENT_STAGE, &chunk_of(r, 4 * seq as u32), &mut Vec::new());
            if seq == 3 {
                decoded.bad_row = Some(MigrationError::NoMetadata);
            }
            count.take(Done::Decoded(seq, decoded, RowChunk::default()));
        }
        assert!(matches!(count.failure, Some(MigrationError::NoMetadata)));
        assert_eq!(count.last, None);
    }

    #[test]
    fn batched_checksums_match_the_typed_entry() {
        // Every group shape: empty, partial, full, full + partial.
        for n in [0usize, 1, 5, HASH_BATCH, HASH_BATCH + 3, 3 * HASH_BATCH] {
            for key_len in [32usize, 37] {
                let entries: Vec<Entry> = (0..n)
                    .map(|i| {
                        let mut key = [0u8; MAX_KEY];
                        for (j, b) in key[..key_len].iter_mut().enumerate() {
                            *b = (i * 31 + j * 7) as u8;
                        }
                        let loc = TxLocation {
                            block_height: 1000 + i as u32,
                            tx_index: i as u16,
                        };
                        (key, loc)
                    })
                    .collect();
                let values = location_values(key_len, &entries);
                assert_eq!(values.len(), n);
                for ((key, loc), v) in entries.iter().zip(&values) {
                    assert_eq!(
                        v.to_vec(),
                        StoredEntryFixed::<TxLocation>::new(&key[..key_len], *loc).to_bytes()
                    );
                }
            }
        }
    }

    /// Keys that tie on the sort prefix and differ after it, and keys that differ in every
    /// position, for both stages, in pieces.
    fn test_entries(spec: &IndexStage) -> Vec<Entry> {
        (0..200u32)
            .map(|i| {
                let mut key = [0u8; MAX_KEY];
                key[..spec.key_len].fill(1);
                let x = i.wrapping_mul(2_654_435_761);
                key[1..5].copy_from_slice(&(x % 7).to_be_bytes());
                key[20..24].copy_from_slice(&x.to_be_bytes());
                key[spec.key_len - 1] = (i % 3) as u8;
                let loc = TxLocation {
                    block_height: i,
                    tx_index: 0,
                };
                (key, loc)
            })
            .collect()
    }

    fn pieces_of(entries: &[Entry]) -> Vec<Vec<Entry>> {
        vec![
            entries[..7].to_vec(),
            Vec::new(),
            entries[7..150].to_vec(),
            entries[150..].to_vec(),
        ]
    }

    /// Checks `out` against `want` (the entries in key order): keys, locations and stored
    /// values.
    fn assert_sealed(spec: &IndexStage, out: &Sealed, want: &[Entry]) {
        assert_eq!(out.entries.len(), want.len());
        assert_eq!(out.values.len(), want.len());
        for ((got, value), (key, loc)) in out.entries.iter().zip(&out.values).zip(want) {
            assert_eq!(got, &(*key, *loc));
            assert_eq!(
                value.to_vec(),
                StoredEntryFixed::<TxLocation>::new(&key[..spec.key_len], *loc).to_bytes()
            );
        }
        let rows: Vec<(&[u8], &[u8])> = out.rows(spec.key_len).collect();
        assert_eq!(rows.len(), want.len());
        for ((k, v), (key, value)) in rows.iter().zip(out.entries.iter().zip(&out.values)) {
            assert_eq!((*k, *v), (&key.0[..spec.key_len], &value[..]));
        }
    }

    #[test]
    fn sealing_sorts_by_key_bytes_and_stores_each_entry() {
        for spec in [&TXID_LOCATION_STAGE, &SPENT_STAGE] {
            let entries = test_entries(spec);
            let mut by_bytes = entries.clone();
            by_bytes.sort_unstable_by_key(|e| e.0);
            // Sealed twice into the same buffers, as the pipeline reuses them.
            let mut out = Sealed::default();
            for _ in 0..2 {
                out = seal(spec, pieces_of(&entries), out).unwrap();
                assert_sealed(spec, &out, &by_bytes);
            }
        }
    }

    /// Random key ranges as the stages make them, checked against a plain sort by key bytes
    /// then location, and against a plain search for the smallest duplicate: sizes across
    /// the sub-range widths, outpoints of the same transaction (keys equal up to the output
    /// index), keys equal in their first 8 varying bytes only, a skewed range whose keys
    /// share their first 4 varying bytes (one sub-range), and duplicates.
    #[test]
    fn sealing_matches_a_plain_sort_on_random_key_ranges() {
        use storage_traits::conformance::child::SplitMix64;
        for seed in 0..40u64 {
            let mut rng = SplitMix64(seed);
            for spec in [&TXID_LOCATION_STAGE, &SPENT_STAGE] {
                let spread = spec.spread_byte;
                let n = match seed % 5 {
                    0 => (rng.next() % 4) as usize,
                    1 => (rng.next() % 40) as usize,
                    _ => (rng.next() % 5_000) as usize,
                };
                let skewed = seed % 7 == 3;
                // A duplicate in a third of the ranges (the sealed rows are checked in the
                // others).
                let duplicates = seed % 3 == 0;
                let mut entries: Vec<Entry> = Vec::with_capacity(n);
                for i in 0..n {
                    let mut key = [0u8; MAX_KEY];
                    if spread > 0 {
                        key[0] = 1;
                    }
                    let r = rng.next() % 10;
                    if i > 0 && (r < 2 || (r == 2 && duplicates)) {
                        // Like an earlier key: the same txid (another output), the same
                        // first 8 bytes only, or the same key (a duplicate).
                        key = entries[(rng.next() % i as u64) as usize].0;
                        match r {
                            0 => key[spec.key_len - 1] ^= 1 + (rng.next() % 255) as u8,
                            1 => key[spread + 8 + (rng.next() % 8) as usize] ^= 0x80,
                            _ => {}
                        }
                    } else {
                        for b in &mut key[spread..spec.key_len] {
                            *b = rng.next() as u8;
                        }
                        if skewed {
                            // One key range, one 4-byte prefix.
                            key[spread..spread + 4].copy_from_slice(&[0x42, 7, 7, 7]);
                        } else {
                            // One key range (the top bits of the first varying byte).
                            key[spread] &= 0x07;
                        }
                    }
                    // Rows in height order; several entries per row.
                    let loc = TxLocation {
                        block_height: (i / 3) as u32,
                        tx_index: (i % 3) as u16,
                    };
                    entries.push((key, loc));
                }
                let mut want = entries.clone();
                want.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
                let duplicate = want.windows(2).find(|p| p[0].0 == p[1].0);
                // Pieces as the decoders make them: consecutive runs in row order.
                let cut = |x: u64| {
                    if n == 0 {
                        0
                    } else {
                        (x % (n as u64 + 1)) as usize
                    }
                };
                let (mut a, mut b) = (cut(rng.next()), cut(rng.next()));
                if a > b {
                    std::mem::swap(&mut a, &mut b);
                }
                let pieces = vec![
                    entries[..a].to_vec(),
                    entries[a..b].to_vec(),
                    entries[b..].to_vec(),
                ];
                match (seal(spec, pieces, Sealed::default()), duplicate) {
                    (Ok(out), None) => assert_sealed(spec, &out, &want),
                    (
                        Err(MigrationError::Duplicate {
                            key, first, second, ..
                        }),
                        Some(pair),
                    ) => {
                        assert_eq!(key, hex::encode(&pair[0].0[..spec.key_len]));
                        assert_eq!((first, second), (pair[0].1, pair[1].1));
                    }
                    (Err(e), _) => panic!("seed {seed}: unexpected error {e}"),
                    (Ok(_), Some(_)) => panic!("seed {seed}: duplicate not found"),
                }
            }
        }
    }

    #[test]
    fn sealing_reports_the_smallest_duplicate_with_its_two_earliest_locations() {
        let mut entries = test_entries(&SPENT_STAGE);
        let mut by_bytes = entries.clone();
        by_bytes.sort_unstable_by_key(|e| e.0);
        // The 10th and 20th smallest keys, spent again later; the 10th three times.
        let (small, large) = (by_bytes[10], by_bytes[20]);
        let at = |h: u32| TxLocation {
            block_height: h,
            tx_index: 1,
        };
        entries.push((large.0, at(300)));
        entries.push((small.0, at(301)));
        entries.push((small.0, at(302)));
        let pieces = vec![entries[..100].to_vec(), entries[100..].to_vec()];
        match seal(&SPENT_STAGE, pieces, Sealed::default()) {
            Err(MigrationError::Duplicate {
                key, first, second, ..
            }) => {
                assert_eq!(key, hex::encode(small.0));
                assert_eq!((first, second), (small.1, at(301)));
            }
            Err(e) => panic!("expected a duplicate, got {e}"),
            Ok(_) => panic!("expected a duplicate"),
        }
    }
}
