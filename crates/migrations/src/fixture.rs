//! Writers that build real older-version stores from `IndexedBlock`s (feature
//! `fixture-writers`): a v0 compact-block store, and v1.0 / v1.1 stores.
//!
//! A v1.x store has every table a v1.1 indexer wrote — `headers`, `txids`, `transparent`,
//! `sapling`, `orchard`, `commitment_tree_data`, `hashes` and `address_history` — byte-equal
//! to what the current write path writes for them, but no `txid_location`, `spent` or
//! accumulator rows, and metadata at 1.0.0 or 1.1.0 with that version's schema hash. The
//! v1.0 writer stores `BlockHeaderData` v1 rows (v1.0 predates v2 headers); the v1.1
//! writer stores the blocks' own (v2) rows.

use std::collections::HashMap;

use storage_traits::kv::{KvStore, KvWrite};
use storage_traits::model::*;
use storage_traits::table::*;
use storage_traits::{Durability, Error, Result, TableWrite};

use crate::schema::{V1_0_0, V1_1_0, schema_hash_for};
use crate::v0;

/// Blocks per transaction while writing a fixture.
const BLOCKS_PER_COMMIT: usize = 1_000;

/// Which v1 version a fixture store is written at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum V1Fixture {
    /// v1.0.0: `BlockHeaderData` v1 rows.
    V1_0,
    /// v1.1.0: the blocks' own header rows.
    V1_1,
}

fn height_of(block: &IndexedBlock, expected: Option<Height>) -> Result<Height> {
    let h = block.header.height().ok_or_else(|| Error::InvalidBlock {
        height: 0,
        hash: block.header.hash().to_string(),
        reason: "the header records no height".to_owned(),
    })?;
    if let Some(e) = expected
        && h != e
    {
        return Err(Error::InvalidBlock {
            height: h.0,
            hash: block.header.hash().to_string(),
            reason: format!("expected height {e}: fixture blocks must be consecutive"),
        });
    }
    Ok(h)
}

/// The v1 header row of `header` (as a v1.0 indexer stored it).
pub fn header_v1(header: &BlockHeaderData) -> BlockHeaderData {
    match header {
        BlockHeaderData::V2 { index, data } => BlockHeaderData::V1 {
            index: BlockIndexV1 {
                hash: index.hash,
                parent_hash: index.parent_hash,
                chainwork: index.chainwork,
                height: Some(index.height),
            },
            data: data.clone(),
        },
        v1 => v1.clone(),
    }
}

/// Writes `blocks` (consecutive heights) into an empty store opened with
/// [`V1_TABLES`], as a v1.0 or v1.1 indexer left it. Returns the tip.
pub fn write_v1_store<S: KvStore>(
    store: &S,
    blocks: impl IntoIterator<Item = IndexedBlock>,
    version: V1Fixture,
) -> Result<Option<Height>> {
    let meta_version = match version {
        V1Fixture::V1_0 => V1_0_0,
        V1Fixture::V1_1 => V1_1_0,
    };
    let mut w = store.begin_write()?;
    w.put_row::<Metadata>(
        &METADATA_KEY,
        DbMetadata {
            version: meta_version,
            schema_hash: schema_hash_for(meta_version).unwrap_or([0; 32]),
            migration_status: MigrationStatus::Empty,
        },
    )?;
    w.commit(Durability::Synced)?;

    let mut utxos: HashMap<Outpoint, (TxLocation, TxOutCompact)> = HashMap::new();
    let mut tip: Option<Height> = None;
    let mut events: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut pending = 0usize;
    let mut w = store.begin_write()?;
    for block in blocks {
        let height = height_of(&block, tip.map(|t| Height(t.0 + 1)))?;
        for (i, tx) in block.transactions.iter().enumerate() {
            let location = TxLocation {
                block_height: height.0,
                tx_index: i as u16,
            };
            let Some(t) = &tx.transparent else { continue };
            for (input_index, input) in t.vin.iter().enumerate() {
                let Some(op) = input.outpoint() else { continue };
                let (prev_location, prev) =
                    utxos.remove(&op).ok_or_else(|| Error::InvalidBlock {
                        height: height.0,
                        hash: block.header.hash().to_string(),
                        reason: format!(
                            "input {input_index} of {} spends unknown or spent output {}:{}",
                            tx.txid, op.prev_txid, op.prev_index
                        ),
                    })?;
                if prev.script_type.is_spendable() {
                    let addr = prev.addr_script();
                    events.push(encode_row::<AddressHistory>(
                        &addr,
                        AddrEvent {
                            tx_location: prev_location,
                            index: op.prev_index as u16,
                            flags: AddrEvent::MINED | AddrEvent::SPENT,
                            value: prev.value,
                        },
                    ));
                    events.push(encode_row::<AddressHistory>(
                        &addr,
                        AddrEvent {
                            tx_location: location,
                            index: input_index as u16,
                            flags: AddrEvent::MINED | AddrEvent::IS_INPUT,
                            value: prev.value,
                        },
                    ));
                }
            }
            for (vout, out) in t.vout.iter().enumerate() {
                utxos.insert(
                    Outpoint {
                        prev_txid: tx.txid,
                        prev_index: vout as u32,
                    },
                    (location, *out),
                );
            }
        }
        let header = match version {
            V1Fixture::V1_0 => header_v1(&block.header),
            V1Fixture::V1_1 => block.header.clone(),
        };
        w.put_row::<Headers>(&height, header)?;
        w.put_row::<Txids>(&height, block.txids())?;
        w.put_row::<Transparent>(
            &height,
            TransparentTxList(
                block
                    .transactions
                    .iter()
                    .map(|t| t.transparent.clone())
                    .collect(),
            ),
        )?;
        w.put_row::<Sapling>(
            &height,
            SaplingTxList(
                block
                    .transactions
                    .iter()
                    .map(|t| t.sapling.clone())
                    .collect(),
            ),
        )?;
        w.put_row::<Orchard>(
            &height,
            OrchardTxList(
                block
                    .transactions
                    .iter()
                    .map(|t| t.orchard.clone())
                    .collect(),
            ),
        )?;
        w.put_row::<CommitmentTree>(&height, block.commitment_tree_data)?;
        w.put_row::<Heights>(&block.header.hash(), height)?;
        tip = Some(height);
        pending += 1;
        if pending >= BLOCKS_PER_COMMIT {
            put_events(&mut w, &mut events)?;
            w.commit(Durability::Buffered)?;
            w = store.begin_write()?;
            pending = 0;
        }
    }
    // Outputs never spent keep their plain "mined" event.
    for (op, (location, out)) in &utxos {
        if out.script_type.is_spendable() {
            events.push(encode_row::<AddressHistory>(
                &out.addr_script(),
                AddrEvent {
                    tx_location: *location,
                    index: op.prev_index as u16,
                    flags: AddrEvent::MINED,
                    value: out.value,
                },
            ));
        }
    }
    put_events(&mut w, &mut events)?;
    w.commit(Durability::Synced)?;
    Ok(tip)
}

fn put_events<W: KvWrite>(w: &mut W, events: &mut Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
    events.sort_unstable();
    for (k, v) in events.drain(..) {
        w.put(AddressHistory::NAME, &k, &v)?;
    }
    Ok(())
}

/// Writes `blocks` (consecutive heights) into an empty store opened with
/// [`v0::V0_TABLES`]: the legacy compact-block layout. Returns the tip.
pub fn write_v0_store<S: KvStore>(
    store: &S,
    blocks: impl IntoIterator<Item = IndexedBlock>,
) -> Result<Option<Height>> {
    let mut tip: Option<Height> = None;
    let mut pending = 0usize;
    let mut w = store.begin_write()?;
    for block in blocks {
        let height = height_of(&block, tip.map(|t| Height(t.0 + 1)))?;
        let compact = v0::compact_block_of(&block)?;
        let (k, v) = v0::encode_row(&compact);
        w.put(v0::V0_COMPACT_BLOCKS, &k, &v)?;
        w.put(
            v0::V0_BLOCK_HASHES,
            &block.header.hash().0,
            &height.0.to_be_bytes(),
        )?;
        tip = Some(height);
        pending += 1;
        if pending >= BLOCKS_PER_COMMIT {
            w.commit(Durability::Buffered)?;
            w = store.begin_write()?;
            pending = 0;
        }
    }
    w.commit(Durability::Synced)?;
    Ok(tip)
}
