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

/// The spent outpoints, as `txid ‖ LE index`, in a hash set. Txids are hash outputs, so
/// the set hashes by mixing their first eight bytes with the index instead of SipHash.
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

type SpentSet = HashSet<[u8; 36], BuildHasherDefault<OutpointHasher>>;

/// [`rebuild_from_tables`], calling `progress` with the next height every `every` heights.
///
/// Two sequential passes, no random reads: the `spent` table is scanned in key order into
/// an in-memory set of spent outpoints (every row's checksum verified), then `transparent`
/// and `txids` are walked side by side in height order and every counted output not in the
/// set is fed to the accumulator — transaction by transaction, each transaction's unspent
/// counted outputs adjacent with ascending indexes, as its rebuild input contract asks.
/// Time is linear in the tables; memory is the spent set plus the unspent outputs.
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
    let mut spent = SpentSet::default();
    for row in r.range(Spent::NAME, KeyRange::all(), Direction::Forward)? {
        let (k, v) = row?;
        decode_row::<Spent>(&k, &v)?;
        let op = Outpoint::decode_key(&k)?;
        let mut key = [0u8; 36];
        key[..32].copy_from_slice(&op.prev_txid.0);
        key[32..].copy_from_slice(&op.prev_index.to_le_bytes());
        spent.insert(key);
    }
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
            let mut key = [0u8; 36];
            key[..32].copy_from_slice(&txid.0);
            for (vout, out) in tx.vout.iter().enumerate() {
                key[32..].copy_from_slice(&(vout as u32).to_le_bytes());
                if accumulator::is_counted(out) && !spent.contains(&key) {
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
    Ok(outputs)
}
