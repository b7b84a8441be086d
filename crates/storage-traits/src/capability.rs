//! What a store serves: [`Capability`] flags, and the extension traits each flag unlocks.
//!
//! A method called on a store without its capability returns
//! [`Error::FeatureUnavailable`] naming the flag. `finalised-state` implements the traits.

use bitflags::Flags;

use crate::error::{Error, Result};
use crate::model::*;

bitflags::bitflags! {
    /// The features a store serves. Bit values follow the reference.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Capability: u32 {
        /// Tip, hash ↔ height, metadata.
        const READ_CORE = 1 << 0;
        /// Writing and deleting blocks.
        const WRITE_CORE = 1 << 1;
        /// [`BlockCoreExt`].
        const BLOCK_CORE_EXT = 1 << 2;
        /// [`BlockTransparentExt`].
        const BLOCK_TRANSPARENT_EXT = 1 << 3;
        /// [`BlockShieldedExt`].
        const BLOCK_SHIELDED_EXT = 1 << 4;
        /// [`CompactBlockExt`].
        const COMPACT_BLOCK_EXT = 1 << 5;
        /// [`IndexedBlockExt`].
        const CHAIN_BLOCK_EXT = 1 << 6;
        /// [`TransparentHistExt`].
        const TRANSPARENT_HIST_EXT = 1 << 7;
        /// Everything.
        const LATEST = Self::READ_CORE.bits()
            | Self::WRITE_CORE.bits()
            | Self::BLOCK_CORE_EXT.bits()
            | Self::BLOCK_TRANSPARENT_EXT.bits()
            | Self::BLOCK_SHIELDED_EXT.bits()
            | Self::COMPACT_BLOCK_EXT.bits()
            | Self::CHAIN_BLOCK_EXT.bits()
            | Self::TRANSPARENT_HIST_EXT.bits();
    }
}

impl Capability {
    /// The name of a single flag (`"BLOCK_CORE_EXT"`), or `"LATEST"`, or `"MIXED"` for
    /// any other combination.
    pub fn name(self) -> &'static str {
        Self::FLAGS
            .iter()
            .find(|flag| *flag.value() == self)
            .map(|flag| flag.name())
            .unwrap_or("MIXED")
    }

    /// `Ok` when every flag of `needed` is present, else `FeatureUnavailable` naming the
    /// first missing one.
    pub fn require(self, needed: Capability) -> Result<()> {
        match (needed - self).iter().next() {
            None => Ok(()),
            Some(missing) => Err(Error::FeatureUnavailable {
                capability: missing.name(),
            }),
        }
    }
}

bitflags::bitflags! {
    /// Which pools a compact block carries.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct PoolTypeFilter: u8 {
        /// Transparent inputs and outputs.
        const TRANSPARENT = 1 << 0;
        /// Sapling spends and outputs.
        const SAPLING = 1 << 1;
        /// Orchard actions.
        const ORCHARD = 1 << 2;
    }
}

impl Default for PoolTypeFilter {
    /// Shielded pools only, as lightwalletd serves by default.
    fn default() -> Self {
        PoolTypeFilter::SAPLING | PoolTypeFilter::ORCHARD
    }
}

/// One transaction of a [`CompactBlock`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactTx {
    /// Index in the block.
    pub index: u16,
    /// The transaction id.
    pub txid: TxId,
    /// Transparent inputs (when the filter selects transparent).
    pub vin: Vec<TxInCompact>,
    /// Transparent outputs (when the filter selects transparent).
    pub vout: Vec<TxOutCompact>,
    /// Sapling spends (when selected).
    pub spends: Vec<CompactSaplingSpend>,
    /// Sapling outputs (when selected).
    pub outputs: Vec<CompactSaplingOutput>,
    /// Orchard actions (when selected).
    pub actions: Vec<CompactOrchardAction>,
}

/// A compact block in the shape lightwalletd serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactBlock {
    /// Height.
    pub height: Height,
    /// Hash.
    pub hash: BlockHash,
    /// Parent hash.
    pub prev_hash: BlockHash,
    /// Block time.
    pub time: i64,
    /// Transactions with data in a selected pool, in block order.
    pub vtx: Vec<CompactTx>,
    /// Commitment tree sizes after the block.
    pub tree_sizes: CommitmentTreeSizes,
}

/// A stream of compact blocks.
pub type CompactBlockStream<'a> = Box<dyn Iterator<Item = Result<CompactBlock>> + 'a>;

/// Tip, hash ↔ height and metadata ([`Capability::READ_CORE`]).
pub trait DbRead {
    /// The highest stored height, `None` when empty.
    fn db_height(&self) -> Result<Option<Height>>;
    /// The height of a stored block hash.
    fn get_block_height(&self, hash: &BlockHash) -> Result<Option<Height>>;
    /// The hash of the block at a stored height.
    fn get_block_hash(&self, height: Height) -> Result<Option<BlockHash>>;
    /// The metadata row.
    fn get_metadata(&self) -> Result<DbMetadata>;
}

/// Writing and deleting blocks ([`Capability::WRITE_CORE`]).
pub trait DbWrite {
    /// Appends a block at tip + 1 in one atomic transaction.
    fn write_block(&self, block: IndexedBlock) -> Result<()>;
    /// Removes the tip block and reverses every index.
    fn delete_block_at_height(&self, height: Height) -> Result<()>;
    /// Replaces the metadata row.
    fn update_metadata(&self, metadata: DbMetadata) -> Result<()>;
}

/// Headers and txids ([`Capability::BLOCK_CORE_EXT`]).
pub trait BlockCoreExt {
    /// The header at a height.
    fn get_block_header(&self, height: Height) -> Result<BlockHeaderData>;
    /// Headers of `start..=end`.
    fn get_block_range_headers(&self, start: Height, end: Height) -> Result<Vec<BlockHeaderData>>;
    /// The txids of the block at a height.
    fn get_block_txids(&self, height: Height) -> Result<TxidList>;
    /// Txids of `start..=end`.
    fn get_block_range_txids(&self, start: Height, end: Height) -> Result<Vec<TxidList>>;
    /// The txid at a location.
    fn get_txid(&self, location: TxLocation) -> Result<TxId>;
    /// The location of a txid, `None` when unknown.
    fn get_tx_location(&self, txid: &TxId) -> Result<Option<TxLocation>>;
}

/// Transparent data ([`Capability::BLOCK_TRANSPARENT_EXT`]).
pub trait BlockTransparentExt {
    /// The transparent part of a transaction.
    fn get_transparent(&self, location: TxLocation) -> Result<Option<TransparentCompactTx>>;
    /// The transparent parts of a block.
    fn get_block_transparent(&self, height: Height) -> Result<TransparentTxList>;
    /// The transparent parts of `start..=end`.
    fn get_block_range_transparent(
        &self,
        start: Height,
        end: Height,
    ) -> Result<Vec<TransparentTxList>>;
    /// The output an outpoint refers to.
    fn get_previous_output(&self, outpoint: Outpoint) -> Result<TxOutCompact>;
}

/// Shielded data ([`Capability::BLOCK_SHIELDED_EXT`]).
pub trait BlockShieldedExt {
    /// The Sapling part of a transaction.
    fn get_sapling(&self, location: TxLocation) -> Result<Option<SaplingCompactTx>>;
    /// The Sapling parts of a block.
    fn get_block_sapling(&self, height: Height) -> Result<SaplingTxList>;
    /// The Sapling parts of `start..=end`.
    fn get_block_range_sapling(&self, start: Height, end: Height) -> Result<Vec<SaplingTxList>>;
    /// The Orchard part of a transaction.
    fn get_orchard(&self, location: TxLocation) -> Result<Option<OrchardCompactTx>>;
    /// The Orchard parts of a block.
    fn get_block_orchard(&self, height: Height) -> Result<OrchardTxList>;
    /// The Orchard parts of `start..=end`.
    fn get_block_range_orchard(&self, start: Height, end: Height) -> Result<Vec<OrchardTxList>>;
    /// Commitment tree data after a block.
    fn get_block_commitment_tree_data(&self, height: Height) -> Result<CommitmentTreeData>;
    /// Commitment tree data of `start..=end`.
    fn get_block_range_commitment_tree_data(
        &self,
        start: Height,
        end: Height,
    ) -> Result<Vec<CommitmentTreeData>>;
}

/// Whole indexed blocks ([`Capability::CHAIN_BLOCK_EXT`]).
pub trait IndexedBlockExt {
    /// The indexed block at a height, `None` above the tip.
    fn get_chain_block(&self, height: Height) -> Result<Option<IndexedBlock>>;
}

/// Compact blocks ([`Capability::COMPACT_BLOCK_EXT`]).
pub trait CompactBlockExt {
    /// The compact block at a height, carrying the pools `filter` selects.
    fn get_compact_block(&self, height: Height, filter: PoolTypeFilter) -> Result<CompactBlock>;
    /// Compact blocks of `start..=end`, produced lazily.
    fn get_compact_block_stream(
        &self,
        start: Height,
        end: Height,
        filter: PoolTypeFilter,
    ) -> Result<CompactBlockStream<'_>>;
}

/// An unspent output of an address: where, which output, how much.
pub type AddrUtxo = (TxLocation, u16, u64);

/// Transparent address history, spent outpoints and the txout-set summary
/// ([`Capability::TRANSPARENT_HIST_EXT`]).
pub trait TransparentHistExt {
    /// Every event of an address, chronologically.
    fn addr_records(&self, addr: AddrScript) -> Result<Option<Vec<AddrEvent>>>;
    /// The events of an address in one transaction.
    fn addr_and_index_records(
        &self,
        addr: AddrScript,
        location: TxLocation,
    ) -> Result<Option<Vec<AddrEvent>>>;
    /// Locations of the transactions touching an address in `start..=end`.
    fn addr_tx_locations_by_range(
        &self,
        addr: AddrScript,
        start: Height,
        end: Height,
    ) -> Result<Option<Vec<TxLocation>>>;
    /// Unspent outputs of an address created in `start..=end`.
    fn addr_utxos_by_range(
        &self,
        addr: AddrScript,
        start: Height,
        end: Height,
    ) -> Result<Option<Vec<AddrUtxo>>>;
    /// Net balance change of an address over `start..=end`.
    fn addr_balance_by_range(&self, addr: AddrScript, start: Height, end: Height) -> Result<i64>;
    /// The transaction that spent an outpoint.
    fn get_outpoint_spender(&self, outpoint: Outpoint) -> Result<Option<TxLocation>>;
    /// The spenders of several outpoints, in order.
    fn get_outpoint_spenders(&self, outpoints: &[Outpoint]) -> Result<Vec<Option<TxLocation>>>;
    /// The txout-set summary.
    fn get_tx_out_set_info_accumulator(&self) -> Result<TxOutSetInfo>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_match_the_reference() {
        assert_eq!(Capability::READ_CORE.bits(), 0b1);
        assert_eq!(Capability::CHAIN_BLOCK_EXT.bits(), 0b100_0000);
        assert_eq!(Capability::TRANSPARENT_HIST_EXT.bits(), 0b1000_0000);
        assert_eq!(Capability::LATEST.bits(), 0xFF);
    }

    #[test]
    fn require_names_the_missing_flag() {
        let caps = Capability::LATEST - Capability::TRANSPARENT_HIST_EXT;
        assert!(caps.require(Capability::BLOCK_CORE_EXT).is_ok());
        let err = caps.require(Capability::TRANSPARENT_HIST_EXT).unwrap_err();
        assert!(matches!(
            err,
            Error::FeatureUnavailable {
                capability: "TRANSPARENT_HIST_EXT"
            }
        ));
        assert_eq!(err.to_string(), "feature unavailable: TRANSPARENT_HIST_EXT");
        assert_eq!(Capability::LATEST.name(), "LATEST");
    }
}
