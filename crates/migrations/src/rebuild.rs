//! The bulk rebuild of the txout-set accumulator from the `transparent` and `spent` tables
//! (v1.1 → v1.2 stage C, and the host's rebuild after a bulk sync). It lives here, below
//! `finalised-state`, because both crates need it.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;

use accumulator::{Accumulator, UnspentOutput};
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

/// The accumulator rebuilt from the `transparent` and `spent` tables visible to `r`.
/// Never reads the stored accumulator.
pub fn rebuild_from_tables(r: &impl KvRead) -> Result<Accumulator> {
    rebuild_from_tables_with_progress(r, u32::MAX, &mut |_| {})
}

/// An outpoint as `txid ‖ LE index`: the `spent` key without its version tag.
type OutpointBytes = [u8; 36];

fn outpoint_bytes(op: &Outpoint) -> OutpointBytes {
    let mut key = [0u8; 36];
    key[..32].copy_from_slice(&op.prev_txid.0);
    key[32..].copy_from_slice(&op.prev_index.to_le_bytes());
    key
}

/// Hashes outpoints by mixing their first eight bytes with the index instead of SipHash:
/// txids are hash outputs.
#[derive(Clone, Copy, Default)]
struct OutpointHasher(u64);

impl std::hash::Hasher for OutpointHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(b))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
}

type OutpointSet = HashSet<OutpointBytes, BuildHasherDefault<OutpointHasher>>;

/// Spent outpoints per hash-set partition: about this many, so that one partition's set
/// stays in a core's cache while its candidates probe it.
const PARTITION_TARGET: usize = 8192;

/// Partitions by the top `bits` bits of the txid (at most 16).
fn partition_of(key: &OutpointBytes, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        usize::from(u16::from_be_bytes([key[0], key[1]]) >> (16 - bits))
    }
}

/// Which of `candidates` are in `spent` (sorted by key bytes, as the `spent` table is).
///
/// One hash set of every spent outpoint outgrows the CPU caches as the chain grows, and
/// every probe then misses them: the time per probe grows with the table. Instead the
/// outpoints are split by the top bits of their txid into partitions of about
/// [`PARTITION_TARGET`] spent outpoints — `spent` is in key order, so each partition is a
/// run of it — and the candidates are scattered to their partitions (sequential writes);
/// each partition's set is built and probed while it is in cache. Linear in the inputs,
/// and the cost per outpoint does not grow with the table.
fn spent_flags(spent: &[OutpointBytes], candidates: &[UnspentOutput]) -> Vec<bool> {
    let mut bits = 0u32;
    while bits < 16 && (spent.len() >> bits) > PARTITION_TARGET {
        bits += 1;
    }
    let partitions = 1usize << bits;
    // The candidates' keys with their places, grouped by partition (a counting sort).
    let mut starts = vec![0usize; partitions + 1];
    for (op, _) in candidates {
        starts[partition_of(&outpoint_bytes(op), bits) + 1] += 1;
    }
    for p in 0..partitions {
        starts[p + 1] += starts[p];
    }
    let mut next = starts.clone();
    let mut grouped = vec![([0u8; 36], 0usize); candidates.len()];
    for (i, (op, _)) in candidates.iter().enumerate() {
        let key = outpoint_bytes(op);
        let p = partition_of(&key, bits);
        grouped[next[p]] = (key, i);
        next[p] += 1;
    }
    let mut flags = vec![false; candidates.len()];
    let mut set = OutpointSet::default();
    let mut rest = spent;
    for p in 0..partitions {
        let n = rest.partition_point(|k| partition_of(k, bits) == p);
        let (run, after) = rest.split_at(n);
        rest = after;
        set.clear();
        set.extend(run.iter().copied());
        for (key, i) in &grouped[starts[p]..starts[p + 1]] {
            if set.contains(key) {
                flags[*i] = true;
            }
        }
    }
    flags
}

/// [`rebuild_from_tables`], calling `progress` with the next height every `every` heights.
///
/// Two sequential passes, no random reads: the `spent` table is scanned in key order into
/// a list of spent outpoints (every row's checksum verified), then `transparent` and
/// `txids` are walked side by side in height order, collecting every counted output; the
/// spent ones are dropped (a partitioned hash join, see `spent_flags`) and the rest are fed
/// to the accumulator — transaction by transaction, each transaction's unspent counted
/// outputs adjacent with ascending indexes, as its rebuild input contract asks. Time is
/// linear in the tables, with a cost per outpoint that does not grow with them; memory is
/// the spent outpoints (36 bytes each) and every counted output (spent or not), with 49
/// bytes more per counted output while the spent ones are found — about twice the peak of
/// one hash set of the spent outpoints beside the unspent outputs, the price of the
/// cache-sized partitions.
pub fn rebuild_from_tables_with_progress(
    r: &impl KvRead,
    every: u32,
    progress: &mut dyn FnMut(Height),
) -> Result<Accumulator> {
    let outputs = unspent_outputs_from_tables(r, every, progress)?;
    accumulator::rebuild_from_slice::<Accumulator>(&outputs).map_err(accumulator_error)
}

/// Every counted unspent output in the `transparent` and `spent` tables visible to `r`, in
/// the order the accumulator's rebuild input contract asks (height order, each
/// transaction's outputs adjacent with ascending indexes), calling `progress` with the next
/// height every `every` heights. The input of any [`accumulator::SetCommitment`] (the
/// XOR-BLAKE2b accumulator, MuHash3072), so a host can compute a second commitment over
/// exactly the set the stored one summarises.
pub fn unspent_outputs_from_tables(
    r: &impl KvRead,
    every: u32,
    progress: &mut dyn FnMut(Height),
) -> Result<Vec<UnspentOutput>> {
    let every = every.max(1);
    // In key order: the partitions of `spent_flags` are runs of it.
    let mut spent = Vec::with_capacity(usize::try_from(r.len(Spent::NAME)?).unwrap_or(0));
    for row in r.range(Spent::NAME, KeyRange::all(), Direction::Forward)? {
        let (k, v) = row?;
        decode_row::<Spent>(&k, &v)?;
        spent.push(outpoint_bytes(&Outpoint::decode_key(&k)?));
    }
    // Every counted output, spent or not, in the rebuild's order; the spent ones are
    // dropped below.
    let mut outputs = Vec::new();
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
            if !tx.vout.iter().any(accumulator::is_counted) {
                continue;
            }
            let txid = txids.0.get(i).copied().ok_or_else(|| Error::Corrupt {
                table: Transparent::NAME,
                key: hex::encode(height.encode_key()),
                height: Some(height.0),
                reason: format!("transaction {i} has no txid in {}", Txids::NAME),
            })?;
            for (vout, out) in tx.vout.iter().enumerate() {
                if accumulator::is_counted(out) {
                    outputs.push((
                        Outpoint {
                            prev_txid: txid,
                            prev_index: vout as u32,
                        },
                        *out,
                    ));
                }
            }
        }
    }
    // A forward range is in key order (every backend's contract, checked by the
    // conformance suite): the partition runs of `spent_flags` rely on it.
    debug_assert!(spent.windows(2).all(|w| w[0] < w[1]));
    let flags = spent_flags(&spent, &outputs);
    drop(spent);
    let mut flags = flags.into_iter();
    outputs.retain(|_| !flags.next().unwrap_or(false));
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_traits::blake2b256;
    use storage_traits::model::{ScriptType, TxId, TxOutCompact};

    fn outpoint(seed: u32, index: u32) -> Outpoint {
        Outpoint {
            prev_txid: TxId(blake2b256(&[&seed.to_le_bytes()])),
            prev_index: index,
        }
    }

    /// The partitioned join finds exactly the spent outpoints a single hash set finds,
    /// with several partitions, outputs of one transaction on both sides, and none spent.
    #[test]
    fn spent_flags_match_a_plain_set() {
        let out = TxOutCompact {
            value: 1,
            script_hash: [0; 20],
            script_type: ScriptType::P2pkh,
        };
        // 40,000 spent outpoints: 20,000 transactions, outputs 0 and 2 spent.
        let mut spent: Vec<OutpointBytes> = (0..20_000u32)
            .flat_map(|t| [0, 2].map(|i| outpoint_bytes(&outpoint(t, i))))
            .collect();
        spent.sort_unstable();
        // Candidates: outputs 0..3 of 30,000 transactions, in an order unrelated to keys.
        let candidates: Vec<UnspentOutput> = (0..30_000u32)
            .rev()
            .flat_map(|t| (0..3).map(move |i| (outpoint(t, i), out)))
            .collect();
        let plain: HashSet<OutpointBytes> = spent.iter().copied().collect();
        let want: Vec<bool> = candidates
            .iter()
            .map(|(op, _)| plain.contains(&outpoint_bytes(op)))
            .collect();
        assert!(spent.len() >> 2 > PARTITION_TARGET, "several partitions");
        let got = spent_flags(&spent, &candidates);
        assert_eq!(got, want);
        assert_eq!(got.iter().filter(|&&f| f).count(), spent.len());
        assert_eq!(spent_flags(&[], &candidates), vec![false; candidates.len()]);
        assert!(spent_flags(&spent, &[]).is_empty());
    }
}
