//! The XOR-BLAKE2b txout-set accumulator and its incremental maintenance.

use storage_traits::entry::{StoredEntry, StoredEntryFixed};
use storage_traits::model::{Outpoint, TxId, TxOutCompact, TxOutSetInfo};
use storage_traits::table::{ACCUMULATOR_KEY, Table, TableKey, TxOutSetAccumulator};

use crate::digest::{ENTRY_LEN, entry_digest, is_counted, xor_into};
use crate::error::{AccumulatorError, Field, Result};

/// The changelog's name for the stored accumulator value.
pub type FinalisedTxOutSetInfoAccumulator = TxOutSetInfo;

/// The change one transaction's counted unspent outputs go through.
///
/// `transactions` counts transactions with at least one counted unspent output, so the
/// accumulator must know when a transaction's count goes 0 → >0 or >0 → 0. It does not keep
/// a per-transaction table (it does no I/O), so the caller states the count *before* the
/// change, `counted_unspent_before`, which it knows from its own tables (the `transparent`
/// outputs of the transaction less those in `spent`). The accumulator computes the count
/// after (`before + counted(added) − counted(removed)`) and steps `transactions` on a
/// 0 ↔ >0 transition.
///
/// Outputs that are not counted ([`crate::is_counted`]: not P2PKH or P2SH) may appear in
/// either list; they are skipped. `added` is applied before `removed`, so an output created
/// and spent within the same delta may appear in both.
///
/// Rejected, leaving the accumulator unchanged:
/// - a `removed` list with more counted outputs than `counted_unspent_before + added`
///   ([`AccumulatorError::InconsistentDelta`]);
/// - `counted_unspent_before` larger than the accumulator's whole `transaction_outputs`;
/// - the same output index twice in one list ([`AccumulatorError::DuplicateOutput`]);
/// - any counter overflow or underflow.
#[derive(Clone, Copy, Debug)]
pub struct TxDelta<'a> {
    /// The transaction whose outputs change.
    pub txid: TxId,
    /// How many counted outputs of the transaction were unspent before this change.
    pub counted_unspent_before: u64,
    /// Outputs that become unspent: created, or restored when a spend is rolled back.
    pub added: &'a [(u32, TxOutCompact)],
    /// Outputs that stop being unspent: spent, or removed when their creation is rolled back.
    pub removed: &'a [(u32, TxOutCompact)],
}

/// The accumulator: the summary of the finalised transparent UTXO set that serves
/// `gettxoutsetinfo`.
///
/// Invariants, checked on construction from stored bytes and kept by every operation:
/// `bytes_serialized == transaction_outputs * 65`, `transactions <= transaction_outputs`,
/// and `transactions == 0` exactly when `transaction_outputs == 0` (an empty set also has a
/// zero hash and zero value).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Accumulator {
    info: TxOutSetInfo,
}

/// Checked-arithmetic helpers that name the field.
fn add(field: Field, txid: Option<&TxId>, a: u64, b: u64) -> Result<u64> {
    a.checked_add(b).ok_or_else(|| AccumulatorError::Overflow {
        field,
        txid: txid.map(|t| hex::encode(t.0)),
    })
}

fn sub(field: Field, txid: Option<&TxId>, a: u64, b: u64) -> Result<u64> {
    a.checked_sub(b).ok_or_else(|| AccumulatorError::Underflow {
        field,
        txid: txid.map(|t| hex::encode(t.0)),
    })
}

fn bytes_for(field_outputs: u64, txid: Option<&TxId>) -> Result<u64> {
    field_outputs
        .checked_mul(ENTRY_LEN)
        .ok_or_else(|| AccumulatorError::Overflow {
            field: Field::BytesSerialized,
            txid: txid.map(|t| hex::encode(t.0)),
        })
}

/// Errors on a repeated output index in `list`.
fn check_distinct(txid: &TxId, list: &[(u32, TxOutCompact)]) -> Result<()> {
    if list.len() < 2 {
        return Ok(());
    }
    let ascending = list.windows(2).all(|w| w[0].0 < w[1].0);
    if ascending {
        return Ok(());
    }
    let mut vouts: Vec<u32> = list.iter().map(|(v, _)| *v).collect();
    vouts.sort_unstable();
    match vouts.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(AccumulatorError::DuplicateOutput {
            txid: hex::encode(txid.0),
            vout: w[0],
        }),
        None => Ok(()),
    }
}

/// The counted outputs of `list`: how many, the sum of their values, the XOR of digests.
fn fold_counted(txid: &TxId, list: &[(u32, TxOutCompact)]) -> Result<(u64, u64, [u8; 32])> {
    let mut count = 0u64;
    let mut value = 0u64;
    let mut hash = [0u8; 32];
    for (vout, out) in list {
        if !is_counted(out) {
            continue;
        }
        count += 1;
        value = add(Field::TotalZatoshis, Some(txid), value, out.value)?;
        let op = Outpoint {
            prev_txid: *txid,
            prev_index: *vout,
        };
        xor_into(&mut hash, &entry_digest(&op, out));
    }
    Ok((count, value, hash))
}

impl Accumulator {
    /// The accumulator of the empty set.
    pub fn new() -> Self {
        Accumulator::default()
    }

    /// An accumulator from its stored form, checking the invariants.
    pub fn from_info(info: TxOutSetInfo) -> Result<Self> {
        let invalid = |reason: String| Err(AccumulatorError::InvalidStored { reason });
        match info.transaction_outputs.checked_mul(ENTRY_LEN) {
            Some(b) if b == info.bytes_serialized => {}
            _ => {
                return invalid(format!(
                    "bytes_serialized {} != transaction_outputs {} * {ENTRY_LEN}",
                    info.bytes_serialized, info.transaction_outputs
                ));
            }
        }
        if info.transactions > info.transaction_outputs {
            return invalid(format!(
                "transactions {} > transaction_outputs {}",
                info.transactions, info.transaction_outputs
            ));
        }
        if (info.transactions == 0) != (info.transaction_outputs == 0) {
            return invalid(format!(
                "transactions {} with transaction_outputs {}",
                info.transactions, info.transaction_outputs
            ));
        }
        if info.transaction_outputs == 0
            && (info.total_zatoshis != 0 || info.hash_serialized != [0; 32])
        {
            return invalid("an empty set with a non-zero value or hash".to_owned());
        }
        Ok(Accumulator { info })
    }

    /// The stored form.
    pub fn info(&self) -> TxOutSetInfo {
        self.info
    }

    /// Transactions with at least one counted unspent output.
    pub fn transactions(&self) -> u64 {
        self.info.transactions
    }

    /// Counted unspent outputs.
    pub fn transaction_outputs(&self) -> u64 {
        self.info.transaction_outputs
    }

    /// `transaction_outputs * 65`.
    pub fn bytes_serialized(&self) -> u64 {
        self.info.bytes_serialized
    }

    /// XOR of the digests of every counted unspent output.
    pub fn hash_serialized(&self) -> [u8; 32] {
        self.info.hash_serialized
    }

    /// Sum of the counted unspent outputs' values, in zatoshis.
    pub fn total_zatoshis(&self) -> u64 {
        self.info.total_zatoshis
    }

    /// Applies one transaction's delta (see [`TxDelta`] for the contract). On error the
    /// accumulator is unchanged.
    pub fn apply(&mut self, delta: &TxDelta<'_>) -> Result<()> {
        let txid = &delta.txid;
        check_distinct(txid, delta.added)?;
        check_distinct(txid, delta.removed)?;
        let (n_add, v_add, h_add) = fold_counted(txid, delta.added)?;
        let (n_rem, v_rem, h_rem) = fold_counted(txid, delta.removed)?;

        let inconsistent = || AccumulatorError::InconsistentDelta {
            txid: hex::encode(txid.0),
            counted_unspent_before: delta.counted_unspent_before,
            added: n_add,
            removed: n_rem,
        };
        if delta.counted_unspent_before > self.info.transaction_outputs {
            return Err(inconsistent());
        }
        let after = delta
            .counted_unspent_before
            .checked_add(n_add)
            .and_then(|x| x.checked_sub(n_rem))
            .ok_or_else(inconsistent)?;

        let mut next = self.info;
        let t = Some(txid);
        next.transaction_outputs = add(
            Field::TransactionOutputs,
            t,
            next.transaction_outputs,
            n_add,
        )?;
        next.transaction_outputs = sub(
            Field::TransactionOutputs,
            t,
            next.transaction_outputs,
            n_rem,
        )?;
        next.bytes_serialized = add(
            Field::BytesSerialized,
            t,
            next.bytes_serialized,
            bytes_for(n_add, t)?,
        )?;
        next.bytes_serialized = sub(
            Field::BytesSerialized,
            t,
            next.bytes_serialized,
            bytes_for(n_rem, t)?,
        )?;
        next.total_zatoshis = add(Field::TotalZatoshis, t, next.total_zatoshis, v_add)?;
        next.total_zatoshis = sub(Field::TotalZatoshis, t, next.total_zatoshis, v_rem)?;
        xor_into(&mut next.hash_serialized, &h_add);
        xor_into(&mut next.hash_serialized, &h_rem);
        match (delta.counted_unspent_before == 0, after == 0) {
            (true, false) => next.transactions = add(Field::Transactions, t, next.transactions, 1)?,
            (false, true) => next.transactions = sub(Field::Transactions, t, next.transactions, 1)?,
            _ => {}
        }
        // The invariants hold for any sequence of consistent deltas; a caller that lied
        // about `counted_unspent_before` can break `transactions <= transaction_outputs`.
        let checked = Accumulator::from_info(next).map_err(|_| inconsistent())?;
        *self = checked;
        Ok(())
    }

    /// Adds the outputs of a newly mined transaction (output `i` of `outputs` is vout `i`).
    /// A new transaction has no unspent outputs before, so no count is needed.
    pub fn add_transaction(&mut self, txid: TxId, outputs: &[TxOutCompact]) -> Result<()> {
        let added = indexed(outputs)?;
        self.apply(&TxDelta {
            txid,
            counted_unspent_before: 0,
            added: &added,
            removed: &[],
        })
    }

    /// Removes every output of a transaction whose block is rolled back. All of its outputs
    /// must be unspent at that point (later spends are rolled back first).
    pub fn remove_transaction(&mut self, txid: TxId, outputs: &[TxOutCompact]) -> Result<()> {
        let removed = indexed(outputs)?;
        let counted = removed.iter().filter(|(_, o)| is_counted(o)).count() as u64;
        self.apply(&TxDelta {
            txid,
            counted_unspent_before: counted,
            added: &[],
            removed: &removed,
        })
    }

    /// Removes spent outputs of `txid`, which had `counted_unspent_before` counted unspent
    /// outputs before these spends.
    pub fn spend_outputs(
        &mut self,
        txid: TxId,
        counted_unspent_before: u64,
        spent: &[(u32, TxOutCompact)],
    ) -> Result<()> {
        self.apply(&TxDelta {
            txid,
            counted_unspent_before,
            added: &[],
            removed: spent,
        })
    }

    /// Restores outputs of `txid` whose spends are rolled back; it had
    /// `counted_unspent_before` counted unspent outputs before the restore.
    pub fn unspend_outputs(
        &mut self,
        txid: TxId,
        counted_unspent_before: u64,
        restored: &[(u32, TxOutCompact)],
    ) -> Result<()> {
        self.apply(&TxDelta {
            txid,
            counted_unspent_before,
            added: restored,
            removed: &[],
        })
    }

    /// The accumulator of the union of two sets with no transaction in common (partial
    /// accumulators of a rebuild). Counters add, hashes XOR. Commutative and associative.
    pub fn combine(&self, other: &Accumulator) -> Result<Accumulator> {
        let (a, b) = (&self.info, &other.info);
        let mut hash_serialized = a.hash_serialized;
        xor_into(&mut hash_serialized, &b.hash_serialized);
        Ok(Accumulator {
            info: TxOutSetInfo {
                transactions: add(Field::Transactions, None, a.transactions, b.transactions)?,
                transaction_outputs: add(
                    Field::TransactionOutputs,
                    None,
                    a.transaction_outputs,
                    b.transaction_outputs,
                )?,
                bytes_serialized: add(
                    Field::BytesSerialized,
                    None,
                    a.bytes_serialized,
                    b.bytes_serialized,
                )?,
                hash_serialized,
                total_zatoshis: add(
                    Field::TotalZatoshis,
                    None,
                    a.total_zatoshis,
                    b.total_zatoshis,
                )?,
            },
        })
    }

    /// The stored entry, checksummed under [`ACCUMULATOR_KEY`], for table
    /// [`TxOutSetAccumulator`].
    pub fn to_entry(&self) -> StoredEntryFixed<TxOutSetInfo> {
        StoredEntryFixed::new(&ACCUMULATOR_KEY.encode_key(), self.info)
    }

    /// The accumulator from a stored entry: verifies the checksum under
    /// [`ACCUMULATOR_KEY`], then the invariants.
    pub fn from_entry(entry: &StoredEntryFixed<TxOutSetInfo>) -> Result<Self> {
        let key = ACCUMULATOR_KEY.encode_key();
        if !entry.verify(&key) {
            return Err(AccumulatorError::ChecksumMismatch {
                table: TxOutSetAccumulator::NAME,
                key: hex::encode(&key),
            });
        }
        Accumulator::from_info(*entry.item())
    }

    /// The accumulator from the stored row's bytes: decode, verify, check.
    pub fn from_stored_bytes(bytes: &[u8]) -> Result<Self> {
        let entry = StoredEntryFixed::<TxOutSetInfo>::from_bytes(bytes)?;
        Accumulator::from_entry(&entry)
    }
}

/// `outputs` paired with their output indexes.
fn indexed(outputs: &[TxOutCompact]) -> Result<Vec<(u32, TxOutCompact)>> {
    outputs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            u32::try_from(i)
                .map(|v| (v, *o))
                .map_err(|_| AccumulatorError::Overflow {
                    field: Field::TransactionOutputs,
                    txid: None,
                })
        })
        .collect()
}

impl TryFrom<TxOutSetInfo> for Accumulator {
    type Error = AccumulatorError;
    fn try_from(info: TxOutSetInfo) -> Result<Self> {
        Accumulator::from_info(info)
    }
}

impl From<Accumulator> for TxOutSetInfo {
    fn from(acc: Accumulator) -> Self {
        acc.info
    }
}
