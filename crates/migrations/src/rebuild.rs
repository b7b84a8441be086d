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
/// holding about half of `memory_bytes` in spent outpoints at a time (see
/// [`commitment_from_tables`], which also takes a progress callback). Never reads the
/// stored accumulator.
pub fn rebuild_from_tables(r: &impl KvRead, memory_bytes: usize) -> Result<Accumulator> {
    commitment_from_tables(r, memory_bytes, u32::MAX, &mut |_| {})
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

/// The top 32 bits of a txid (or of an outpoint's bytes): what indexes the spent
/// outpoints of a pass.
fn prefix_of(key: &[u8]) -> u64 {
    u64::from(u32::from_be_bytes([key[0], key[1], key[2], key[3]]))
}

/// One past the largest [`prefix_of`].
const PREFIX_END: u64 = 1 << 32;

/// The most unspent outputs waiting to be hashed (4.5 MiB): eight chunks of the parallel
/// rebuild, enough to keep a few threads busy; memory the buffer takes is memory the spent
/// outpoints cannot have.
const BUFFER_OUTPUTS: usize = 1 << 16;

/// Bytes a spent outpoint takes while held: its 36 bytes and at most its share of the
/// index (an 8-byte bucket start per one or two outpoints).
const SPENT_ENTRY_BYTES: usize = 44;

/// The spent outpoints of one pass — those whose txid lies in `first..end` — sorted, with
/// an index of buckets of about two outpoints each by the txid's top 32 bits: a
/// membership test reads one index entry and a few adjacent outpoints, a cache miss or two
/// however large the pass.
struct SpentPass {
    /// The pass's first txid.
    first: [u8; 32],
    /// The next pass's first txid (`None`: this is the last pass).
    end: Option<[u8; 32]>,
    /// Sorted, as the `spent` table is.
    outpoints: Vec<OutpointBytes>,
    /// Bucket `b` holds the prefixes from `prefix_of(first) + (b << shift)` up to the next
    /// bucket's.
    shift: u32,
    /// `starts[b]..starts[b + 1]` is bucket `b`'s run of `outpoints`.
    starts: Vec<usize>,
}

impl SpentPass {
    /// Indexes `outpoints`: sorted, every txid in `first..end`.
    fn new(first: [u8; 32], end: Option<[u8; 32]>, outpoints: Vec<OutpointBytes>) -> SpentPass {
        debug_assert!(outpoints.windows(2).all(|w| w[0] < w[1]));
        let base = prefix_of(&first);
        // Txids below `end` may share its prefix.
        let top = end.map_or(PREFIX_END, |e| prefix_of(&e) + 1);
        let width = top.saturating_sub(base).max(1);
        let wanted_buckets = (outpoints.len() as u64 / 2).max(1);
        let shift = (width / wanted_buckets).max(1).ilog2();
        let buckets = usize::try_from(((width - 1) >> shift) + 1).unwrap_or(usize::MAX);
        let mut starts = Vec::with_capacity(buckets + 1);
        let mut at = 0usize;
        for b in 0..buckets as u64 {
            starts.push(at);
            let bucket_end = base + ((b + 1) << shift);
            while at < outpoints.len() && prefix_of(&outpoints[at]) < bucket_end {
                at += 1;
            }
        }
        starts.push(at);
        debug_assert_eq!(at, outpoints.len());
        SpentPass {
            first,
            end,
            outpoints,
            shift,
            starts,
        }
    }

    /// Whether the pass covers the outputs of `txid`.
    fn holds(&self, txid: &[u8; 32]) -> bool {
        *txid >= self.first && self.end.is_none_or(|end| *txid < end)
    }

    /// Whether `key`, whose txid the pass [holds](Self::holds), is spent.
    fn contains(&self, key: &OutpointBytes) -> bool {
        let b = ((prefix_of(key) - prefix_of(&self.first)) >> self.shift) as usize;
        let run = &self.outpoints[self.starts[b]..self.starts[b + 1]];
        run.binary_search(key).is_ok()
    }
}

/// Takes the next pass's spent outpoints from `spent` (the table's rows in key order,
/// decoded): whole transactions' outpoints until they fill `half` at
/// [`SPENT_ENTRY_BYTES`] each (one transaction's are never split, so a pass may go over by
/// one transaction's outputs), and the first txid left for the next pass, if any.
fn take_pass(
    spent: &mut std::iter::Peekable<impl Iterator<Item = Result<OutpointBytes>>>,
    half: usize,
) -> Result<(Vec<OutpointBytes>, Option<[u8; 32]>)> {
    // The most a pass holds before its last transaction; the list grows towards it a
    // million at a time (not by doubling, which could take twice the half).
    let most = half / SPENT_ENTRY_BYTES + 1;
    let mut outpoints: Vec<OutpointBytes> = Vec::new();
    loop {
        let next = match spent.peek() {
            None => return Ok((outpoints, None)),
            Some(Ok(outpoint)) => *outpoint,
            Some(Err(_)) => {
                // Hands the read or decoding error on.
                spent.next().transpose()?;
                continue;
            }
        };
        let full = outpoints.len() * SPENT_ENTRY_BYTES >= half;
        if full
            && outpoints
                .last()
                .is_some_and(|last| last[..32] != next[..32])
        {
            let mut txid = [0u8; 32];
            txid.copy_from_slice(&next[..32]);
            return Ok((outpoints, Some(txid)));
        }
        if outpoints.len() == outpoints.capacity() {
            outpoints.reserve_exact(most.saturating_sub(outpoints.len()).clamp(1, 1 << 20));
        }
        outpoints.push(next);
        spent.next();
    }
}

/// The commitment `C` (the XOR-BLAKE2b accumulator, MuHash3072, or both) of every counted
/// unspent output in the `transparent` and `spent` tables visible to `r`, calling
/// `progress` with the next height every `every` heights of each pass (the heights start
/// again at each pass). Never reads the stored accumulator.
///
/// Memory is bounded by `memory_bytes`, not by the chain: about half of it holds spent
/// outpoints ([`SPENT_ENTRY_BYTES`] each with their index), and up to [`BUFFER_OUTPUTS`]
/// unspent outputs (no more than the other half, or one transaction's outputs) wait to be
/// hashed. The `spent` table is read once, in key order, in passes of whole transactions
/// that fill the half; each pass walks `transparent` and `txids` in height order for the
/// outputs of its txid range. A table that fits takes one pass; a small budget over a
/// large table takes many, each a walk of `transparent`. Sequential reads only; the cost
/// of a membership test does not grow with the table. Outputs are fed to the commitment
/// transaction by transaction (one transaction's outputs adjacent with ascending indexes,
/// as its rebuild input contract asks), hashed in parallel on the current rayon pool.
pub fn commitment_from_tables<C: SetCommitment>(
    r: &impl KvRead,
    memory_bytes: usize,
    every: u32,
    progress: &mut dyn FnMut(Height),
) -> Result<C> {
    let every = every.max(1);
    let half = (memory_bytes / 2).max(1);
    let buffer_outputs = (half / size_of::<UnspentOutput>()).clamp(1, BUFFER_OUTPUTS);
    let mut spent = r
        .range(Spent::NAME, KeyRange::all(), Direction::Forward)?
        .map(|row| {
            let (k, v) = row?;
            decode_row::<Spent>(&k, &v)?;
            Ok(outpoint_bytes(&Outpoint::decode_key(&k)?))
        })
        .peekable();
    let mut commitment = C::empty();
    let mut unspent: Vec<UnspentOutput> = Vec::with_capacity(buffer_outputs);
    let mut first = [0u8; 32];
    let mut passes = 0u64;
    loop {
        let (outpoints, end) = take_pass(&mut spent, half)?;
        let pass = SpentPass::new(first, end, outpoints);
        passes += 1;
        tracing::debug!(
            pass = passes,
            spent = pass.outpoints.len(),
            "txout set pass"
        );
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
                if !pass.holds(&txid.0) {
                    continue;
                }
                // Hashed between transactions only, so none spans two calls.
                if !unspent.is_empty() && unspent.len() + tx.vout.len() > buffer_outputs {
                    commitment = commitment
                        .merge(fold(&unspent)?)
                        .map_err(accumulator_error)?;
                    unspent.clear();
                }
                for (vout, out) in tx.vout.iter().enumerate() {
                    if !accumulator::is_counted(out) {
                        continue;
                    }
                    let outpoint = Outpoint {
                        prev_txid: txid,
                        prev_index: vout as u32,
                    };
                    if !pass.contains(&outpoint_bytes(&outpoint)) {
                        unspent.push((outpoint, *out));
                    }
                }
            }
        }
        match pass.end {
            Some(end) => first = end,
            None => break,
        }
    }
    if passes > 1 {
        tracing::info!(
            passes,
            memory_bytes,
            "txout set computed in several passes over transparent"
        );
    }
    commitment.merge(fold(&unspent)?).map_err(accumulator_error)
}

/// The commitment of `outputs`, hashed in parallel.
fn fold<C: SetCommitment>(outputs: &[UnspentOutput]) -> Result<C> {
    accumulator::rebuild_from_slice(outputs).map_err(accumulator_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// An outpoint whose txid starts with `prefix`, the rest drawn from `seed`.
    fn outpoint(prefix: u64, seed: u32, index: u32) -> OutpointBytes {
        let mut key = [0u8; 36];
        key[..32].copy_from_slice(&storage_traits::blake2b256(&[&seed.to_le_bytes()]));
        key[..4].copy_from_slice(&(prefix as u32).to_be_bytes());
        key[32..].copy_from_slice(&index.to_le_bytes());
        key
    }

    fn txid_of(key: &OutpointBytes) -> [u8; 32] {
        key[..32].try_into().unwrap()
    }

    /// Membership answers what a plain set answers, for passes of 0 to 3,000 outpoints,
    /// narrow and wide, first and last, with keys on every bucket's first and last prefix,
    /// and near misses: another index of a spent txid, a txid one above a spent one.
    #[test]
    fn spent_pass_matches_a_plain_set() {
        let cases: [(u64, Option<u64>, usize); 7] = [
            (0, None, 0),
            (0, None, 1),
            (0, Some(0x1000), 2),
            (7, Some(7 + 1), 40),
            (0x5555_5555, Some(0xAAAA_AAAA), 3),
            (0x5555_5555, Some(0xAAAA_AAAA), 3000),
            (0xFFFF_F000, None, 1000),
        ];
        for (seed, (base, top, n)) in cases.into_iter().enumerate() {
            let top_prefix = top.unwrap_or(PREFIX_END);
            // The pass runs from a txid of prefix `base` to one of prefix `top` (where
            // txids below it share its prefix).
            let first = txid_of(&outpoint(base, 1, 0));
            let end = top.map(|t| txid_of(&outpoint(t, 2, 0)));
            let pick = |i: u64| base + (i.wrapping_mul(0x9E37_79B9) % (top_prefix - base));
            let mut keys: Vec<OutpointBytes> = (0..n as u64)
                .map(|i| {
                    let p = if i % 5 == 0 { base } else { pick(i) };
                    let index = (i % 3) as u32;
                    outpoint(p, (seed * 10_000) as u32 + i as u32, index)
                })
                .filter(|k| txid_of(k) >= first && end.is_none_or(|e| txid_of(k) < e))
                .collect();
            keys.sort_unstable();
            keys.dedup();
            let set: HashSet<OutpointBytes> = keys.iter().copied().collect();
            let pass = SpentPass::new(first, end, keys.clone());
            // Candidates: every key, its neighbours, and keys at each bucket's edges.
            let mut candidates = Vec::new();
            for k in &keys {
                let mut other_index = *k;
                other_index[32] ^= 1;
                let mut txid_above = *k;
                txid_above[31] = txid_above[31].wrapping_add(1);
                candidates.extend([*k, other_index, txid_above]);
            }
            let buckets = pass.starts.len() - 1;
            for b in 0..=buckets as u64 {
                for p in [
                    base + (b << pass.shift),
                    (base + (b << pass.shift)).wrapping_sub(1),
                ] {
                    if p < top_prefix {
                        candidates.push(outpoint(p, 7, 0));
                    }
                }
            }
            let mut held = 0;
            for c in candidates {
                if !pass.holds(&txid_of(&c)) {
                    continue;
                }
                held += 1;
                assert_eq!(
                    pass.contains(&c),
                    set.contains(&c),
                    "case {seed}: {}",
                    hex::encode(c)
                );
            }
            assert!(held >= keys.len(), "case {seed}");
            let buckets = pass.starts.len() - 1;
            assert!(
                buckets <= keys.len().max(2),
                "case {seed}: {buckets} buckets"
            );
        }
    }

    /// Passes fill their budget with whole transactions, never split one, and hand on
    /// the first txid left over; an error in the stream ends the read.
    #[test]
    fn passes_take_whole_transactions() {
        // 300 transactions with 1 to 4 spent outputs each, in key order.
        let mut keys: Vec<OutpointBytes> = (0..300u32)
            .flat_map(|t| (0..1 + t % 4).map(move |i| outpoint(u64::from(t) << 20, t, i)))
            .collect();
        keys.sort_unstable();
        for half in [
            1,
            SPENT_ENTRY_BYTES * 3,
            SPENT_ENTRY_BYTES * 100,
            usize::MAX / 4,
        ] {
            let mut spent = keys.iter().copied().map(Ok).peekable();
            let mut taken = Vec::new();
            let mut first = [0u8; 32];
            loop {
                let (pass, end) = take_pass(&mut spent, half).unwrap();
                assert!(pass.iter().all(|k| txid_of(k) >= first));
                if let Some(end) = end {
                    assert!(pass.iter().all(|k| txid_of(k) < end));
                    // Full: at least the budget, or a single transaction.
                    assert!(pass.len() * SPENT_ENTRY_BYTES >= half);
                    first = end;
                }
                taken.extend(pass);
                if end.is_none() {
                    break;
                }
            }
            assert_eq!(taken, keys, "half {half}");
        }
        let items = vec![
            Ok(keys[0]),
            Err(Error::NotAvailable {
                what: "a read".to_owned(),
            }),
            Ok(keys[1]),
        ];
        let mut spent = items.into_iter().peekable();
        assert!(take_pass(&mut spent, usize::MAX / 4).is_err());
    }
}
