//! The txout-set summary recomputed from the tables: the check behind a full verification
//! (the stored accumulator must equal it), and MuHash3072 (feature `muhash`), the secure
//! multiset hash of the same set, for `gettxoutsetinfo`.

use accumulator::Accumulator;
use storage_traits::kv::{Direction, KeyRange};
use storage_traits::model::{Height, TxOutSetInfo};
use storage_traits::table::*;
use storage_traits::{Capability, Error, Result, TableKey};

use crate::backend::Backend;
use crate::state::FinalisedState;

/// The txout set as the tables say it is, beside the stored summary, from one snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecomputedTxOutSet {
    /// The tip of the snapshot (`None` for an empty store).
    pub tip: Option<Height>,
    /// The summary recomputed from `transparent` and `spent`.
    pub info: TxOutSetInfo,
    /// The stored summary (zero when absent).
    pub stored: TxOutSetInfo,
    /// The height the stored summary was built to.
    pub stored_built_height: Option<Height>,
    /// MuHash3072 of the same set (`None` in a build without the `muhash` feature).
    pub muhash: Option<[u8; 32]>,
}

impl RecomputedTxOutSet {
    /// Whether the stored summary was built to the tip of the snapshot.
    pub fn stored_is_fresh(&self) -> bool {
        self.tip.is_none() || self.stored_built_height == self.tip
    }
}

impl<B: Backend> FinalisedState<B> {
    /// Recomputes the txout-set summary (and, with the `muhash` feature, its MuHash3072)
    /// from the `transparent` and `spent` tables in one snapshot, beside the stored one.
    /// Never trusts the stored accumulator. `progress` gets a height every 1,000 heights of
    /// each pass (one pass unless `spent` outgrows half of `sync_write_batch_bytes`: memory
    /// is bounded by the budget, see [`migrations::commitment_from_tables`]).
    pub fn recompute_txout_set(
        &self,
        progress: &mut dyn FnMut(Height),
    ) -> Result<RecomputedTxOutSet> {
        self.require(Capability::TRANSPARENT_HIST_EXT)?;
        let r = self.store.begin_read()?;
        let tip = match r
            .rows::<Headers>(KeyRange::all(), Direction::Reverse)?
            .next()
        {
            Some(row) => Some(row?.0),
            None => None,
        };
        let stored = r
            .get_row::<TxOutSetAccumulator>(&ACCUMULATOR_KEY)?
            .unwrap_or_default();
        let stored_built_height = r.get_row::<MetadataHeights>(&ACCUMULATOR_BUILT_HEIGHT_KEY)?;
        let memory = self.config.sync_write_batch_bytes;
        #[cfg(feature = "muhash")]
        let (info, muhash) = {
            let (acc, mh): (Accumulator, accumulator::TxOutSetMuHash) =
                migrations::commitment_from_tables(&r, memory, 1_000, progress)?;
            (acc.info(), Some(mh.finalize()))
        };
        #[cfg(not(feature = "muhash"))]
        let (info, muhash) = {
            let acc: Accumulator = migrations::commitment_from_tables(&r, memory, 1_000, progress)?;
            (acc.info(), None)
        };
        drop(r);
        Ok(RecomputedTxOutSet {
            tip,
            info,
            stored,
            stored_built_height,
            muhash,
        })
    }

    /// [`FinalisedState::recompute_txout_set`], then checks the stored summary against it:
    /// a fresh stored summary that differs is a `Corrupt` error naming the accumulator row
    /// and both summaries. A stale one (left by an interrupted bulk sync; an open with
    /// `WRITE_CORE` rebuilds it) is not compared.
    pub fn verify_txout_set(&self, progress: &mut dyn FnMut(Height)) -> Result<RecomputedTxOutSet> {
        let re = self.recompute_txout_set(progress)?;
        if re.stored_is_fresh() && re.stored != re.info {
            let show = |i: &TxOutSetInfo| {
                format!(
                    "{} transactions, {} outputs, {} zatoshis, hash {}",
                    i.transactions,
                    i.transaction_outputs,
                    i.total_zatoshis,
                    hex::encode(i.hash_serialized)
                )
            };
            return Err(Error::Corrupt {
                table: TxOutSetAccumulator::NAME,
                key: hex::encode(ACCUMULATOR_KEY.encode_key()),
                height: re.stored_built_height.map(|h| h.0),
                reason: format!(
                    "the stored txout-set summary ({}) differs from the one recomputed from the \
                     {} and {} tables ({})",
                    show(&re.stored),
                    Transparent::NAME,
                    Spent::NAME,
                    show(&re.info)
                ),
            });
        }
        Ok(re)
    }
}
