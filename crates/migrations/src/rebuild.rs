//! The bulk rebuild of the txout-set accumulator from the `transparent` and `spent` tables
//! (v1.1 → v1.2 stage C, and the host's rebuild after a bulk sync). It lives here, below
//! `finalised-state`, because both crates need it.

use accumulator::{Accumulator, SetCommitment, UnspentOutput};
use storage_traits::kv::{Direction, KeyRange, KvRead};
use storage_traits::model::{Height, Outpoint};
use storage_traits::table::{
    ACCUMULATOR_KEY, Spent, Transparent, TxOutSetAccumulator, Txids, decode_row,
};
use storage_traits::{Error, Result, Table, TableKey, TableRead};

/// The accumulator error as a storage error naming the accumulator row.
pub fn accumulator_error(e: accumulator::AccumulatorError) -> Error {
    Error::Corrupt {
        table: TxOutSetAccumulator::NAME,
        key: hex::encode(ACCUMULATOR_KEY.encode_key()),
        height: None,
        reason: e.to_string(),
    }
}

/// The accumulator rebuilt from the `transparent` and `spent` tables visible to `r`,
/// holding about `memory_bytes` of outpoints at a time (see [`commitment_from_tables`]).
/// Never reads the stored accumulator.
pub fn rebuild_from_tables(r: &impl KvRead, memory_bytes: usize) -> Result<Accumulator> {
    commitment_from_tables(r, memory_bytes, u32::MAX, &mut |_| {})
}

/// [`rebuild_from_tables`], calling `progress` with the next height every `every` heights
/// of each pass.
pub fn rebuild_from_tables_with_progress(
    r: &impl KvRead,
    memory_bytes: usize,
    every: u32,
    progress: &mut dyn FnMut(Height),
) -> Result<Accumulator> {
    commitment_from_tables(r, memory_bytes, every, progress)
}

/// An outpoint as `txid ‖ LE index`: the `spent` key without its version tag, so the
/// `spent` table's key order is the order of these bytes.
type OutpointBytes = [u8; 36];

fn outpoint_bytes(op: &Outpoint) -> OutpointBytes {
    let mut key = [0u8; 36];
    key[..32].copy_from_slice(&op.prev_txid.0);
    key[32..].copy_from_slice(&op.prev_index.to_le_bytes());
    key
}

/// The top 32 bits of a txid (or of an outpoint's bytes): what splits the work into passes
/// and indexes the spent outpoints of a pass.
fn prefix_of(key: &[u8]) -> u64 {
    u64::from(u32::from_be_bytes([key[0], key[1], key[2], key[3]]))
}

/// One past the largest [`prefix_of`].
const PREFIX_END: u64 = 1 << 32;

/// The most unspent outputs waiting to be hashed (4.5 MiB): enough chunks of the parallel
/// rebuild for every thread, and no more, since memory the buffer takes is memory the
/// spent outpoints cannot have.
const BUFFER_OUTPUTS: usize = 1 << 16;

/// Bytes a spent outpoint takes while held: its 36 bytes and at most its share of the
/// index (a 4-byte bucket start per one or two outpoints).
const SPENT_ENTRY_BYTES: usize = 40;

/// The spent outpoints whose txid prefix lies in `prefixes`, sorted, with an index of
/// buckets of about two outpoints each (by txid prefix): a membership test reads one
/// index entry and a few adjacent outpoints, a cache miss or two, however large the pass.
struct SpentRuns {
    prefixes: std::ops::Range<u64>,
    /// Sorted, as the `spent` table is.
    outpoints: Vec<OutpointBytes>,
    /// A bucket is the prefixes `prefixes.start + (b << shift)` up to the next bucket's.
    shift: u32,
    /// `starts[b]..starts[b + 1]` is bucket `b`'s run of `outpoints`.
    starts: Vec<u32>,
}

impl SpentRuns {
    /// Reads the `spent` rows of `prefixes` (each row's checksum verified).
    fn read(r: &impl KvRead, prefixes: std::ops::Range<u64>, capacity: usize) -> Result<SpentRuns> {
        // A key is the 0x01 version tag, the txid and the index: the rows of a prefix
        // range are one key range.
        let bound = |prefix: u64| -> Vec<u8> {
            match u32::try_from(prefix) {
                Ok(p) => [&[0x01][..], &p.to_be_bytes()].concat(),
                Err(_) => vec![0x02],
            }
        };
        let range = KeyRange::half_open(bound(prefixes.start), bound(prefixes.end));
        let mut outpoints = Vec::with_capacity(capacity);
        for row in r.range(Spent::NAME, range, Direction::Forward)? {
            let (k, v) = row?;
            decode_row::<Spent>(&k, &v)?;
            outpoints.push(outpoint_bytes(&Outpoint::decode_key(&k)?));
        }
        // A forward range is in key order (every backend's contract, checked by the
        // conformance suite): the runs rely on it.
        debug_assert!(outpoints.windows(2).all(|w| w[0] < w[1]));
        let width = prefixes.end - prefixes.start;
        let wanted_buckets = (outpoints.len() as u64 / 2).max(1);
        let shift = (width / wanted_buckets).max(1).ilog2();
        let buckets = usize::try_from(((width - 1) >> shift) + 1).unwrap_or(usize::MAX);
        let mut starts = Vec::with_capacity(buckets + 1);
        let mut at = 0usize;
        for b in 0..buckets {
            starts.push(at as u32);
            let bucket_end = prefixes.start + ((b as u64 + 1) << shift);
            while at < outpoints.len() && prefix_of(&outpoints[at]) < bucket_end {
                at += 1;
            }
        }
        starts.push(at as u32);
        // The key range holds only keys of these prefixes.
        debug_assert_eq!(at, outpoints.len());
        Ok(SpentRuns {
            prefixes,
            outpoints,
            shift,
            starts,
        })
    }

    /// Whether `key` (of a prefix this holds) is spent.
    fn contains(&self, key: &OutpointBytes) -> bool {
        let b = ((prefix_of(key) - self.prefixes.start) >> self.shift) as usize;
        let run = &self.outpoints[self.starts[b] as usize..self.starts[b + 1] as usize];
        run.binary_search(key).is_ok()
    }
}

/// The commitment `C` (the XOR-BLAKE2b accumulator, MuHash3072, or both) of every counted
/// unspent output in the `transparent` and `spent` tables visible to `r`, calling
/// `progress` with the next height every `every` heights of each pass. Never reads the
/// stored accumulator.
///
/// Memory is bounded by `memory_bytes`, not by the chain: half of it holds spent
/// outpoints (36 bytes each), and up to [`BUFFER_OUTPUTS`] unspent outputs (no more than
/// the other half) wait to be hashed. When the `spent` table does not fit its half, the
/// work is split by the top bits of the txid into passes that each hold one range of spent
/// outpoints — a contiguous range of the `spent` table — and walk `transparent` and
/// `txids` in height order for the outputs of that range. Each pass is sequential reads only; the cost of a membership test does not grow
/// with the table. Outputs are fed to the commitment transaction by transaction (one
/// transaction's outputs adjacent with ascending indexes, as its rebuild input contract
/// asks), hashed in parallel on the current rayon pool.
pub fn commitment_from_tables<C: SetCommitment>(
    r: &impl KvRead,
    memory_bytes: usize,
    every: u32,
    progress: &mut dyn FnMut(Height),
) -> Result<C> {
    let every = every.max(1);
    let half = (memory_bytes / 2).max(1);
    let spent_rows = usize::try_from(r.len(Spent::NAME)?).unwrap_or(usize::MAX);
    let spent_bytes = spent_rows.saturating_mul(SPENT_ENTRY_BYTES);
    let passes = spent_bytes.div_ceil(half).clamp(1, 1 << 16);
    let buffer_outputs = (half / size_of::<UnspentOutput>()).clamp(1, BUFFER_OUTPUTS);
    tracing::debug!(spent_rows, passes, buffer_outputs, "txout set from tables");
    let mut commitment = C::empty();
    let mut unspent: Vec<UnspentOutput> = Vec::with_capacity(buffer_outputs);
    for pass in 0..passes {
        let (pass, passes) = (pass as u64, passes as u64);
        let prefixes = pass * PREFIX_END / passes..(pass + 1) * PREFIX_END / passes;
        // Txids are hash outputs: a pass holds about its share of the rows (an eighth more
        // room before the vector grows).
        let expected = spent_rows / passes as usize;
        let spent = SpentRuns::read(r, prefixes.clone(), expected + expected / 8 + 16)?;
        let mut txids_rows = r.rows::<Txids>(KeyRange::all(), Direction::Forward)?;
        for (n, row) in r
            .rows::<Transparent>(KeyRange::all(), Direction::Forward)?
            .enumerate()
        {
            let (height, list) = row?;
            if n > 0 && (n as u32).is_multiple_of(every) {
                progress(height);
            }
            let corrupt = |reason: String| Error::Corrupt {
                table: Txids::NAME,
                key: hex::encode(height.encode_key()),
                height: Some(height.0),
                reason,
            };
            let txids = match txids_rows.next() {
                Some(Ok((h, txids))) if h == height => txids,
                Some(Ok((h, _))) => {
                    return Err(corrupt(format!(
                        "the txids row after the previous one is at height {h}, the transparent row at {height}"
                    )));
                }
                Some(Err(e)) => return Err(e),
                None => return Err(corrupt("missing row for a stored height".to_owned())),
            };
            for (i, tx) in list.0.iter().enumerate() {
                let Some(tx) = tx else { continue };
                let txid = txids.0.get(i).copied().ok_or_else(|| Error::Corrupt {
                    table: Transparent::NAME,
                    key: hex::encode(height.encode_key()),
                    height: Some(height.0),
                    reason: format!("transaction {i} has no txid in {}", Txids::NAME),
                })?;
                if !spent.prefixes.contains(&prefix_of(&txid.0)) {
                    continue;
                }
                for (vout, out) in tx.vout.iter().enumerate() {
                    if !accumulator::is_counted(out) {
                        continue;
                    }
                    let outpoint = Outpoint {
                        prev_txid: txid,
                        prev_index: vout as u32,
                    };
                    if !spent.contains(&outpoint_bytes(&outpoint)) {
                        unspent.push((outpoint, *out));
                    }
                }
                // Only between transactions, so none spans two calls.
                if unspent.len() >= buffer_outputs {
                    commitment = commitment.merge(fold(&unspent)?).map_err(accumulator_error)?;
                    unspent.clear();
                }
            }
        }
    }
    commitment
        .merge(fold(&unspent)?)
        .map_err(accumulator_error)
}

/// The commitment of `outputs`, hashed in parallel.
fn fold<C: SetCommitment>(outputs: &[UnspentOutput]) -> Result<C> {
    accumulator::rebuild_from_slice(outputs).map_err(accumulator_error)
}

