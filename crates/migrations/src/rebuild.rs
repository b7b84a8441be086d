//! The bulk rebuild of the txout-set accumulator from the `transparent` and `spent` tables
//! (v1.1 → v1.2 stage C, and the host's rebuild after a bulk sync). It lives here, below
//! `finalised-state`, because both crates need it.

use accumulator::Accumulator;
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

/// [`rebuild_from_tables`], calling `progress` with the next height every `every` heights.
///
/// Both tables are walked by sequential scans: `transparent` and `txids` side by side in
/// height order, and for each transaction with counted outputs the `spent` rows under its
/// txid prefix (the outpoint key is `0x01 ‖ txid ‖ LE index`, so one transaction's spent
/// outputs are adjacent). Outputs are fed transaction by transaction in height order, each
/// transaction's unspent counted outputs adjacent with ascending indexes, as the
/// accumulator's rebuild input contract asks.
pub fn rebuild_from_tables_with_progress(
    r: &impl KvRead,
    every: u32,
    progress: &mut dyn FnMut(Height),
) -> Result<Accumulator> {
    let every = every.max(1);
    let mut outputs = Vec::new();
    let mut txids_rows = r.rows::<Txids>(KeyRange::all(), Direction::Forward)?;
    let mut spent_indexes: Vec<u32> = Vec::new();
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
            spent_indexes.clear();
            let mut prefix = Vec::with_capacity(33);
            prefix.push(storage_traits::codec::version::V1);
            prefix.extend_from_slice(&txid.0);
            for spent in r.prefix(Spent::NAME, &prefix, Direction::Forward)? {
                let (k, v) = spent?;
                decode_row::<Spent>(&k, &v)?;
                let op = Outpoint::decode_key(&k)?;
                spent_indexes.push(op.prev_index);
            }
            for (vout, out) in tx.vout.iter().enumerate() {
                if accumulator::is_counted(out) && !spent_indexes.contains(&(vout as u32)) {
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
    accumulator::rebuild_from_slice::<Accumulator>(&outputs).map_err(accumulator_error)
}
