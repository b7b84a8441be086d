//! The v0 layout: the legacy compact-block store that v1 replaces.
//!
//! A v0 store lives in its own directory, `<base>/<live|test|local>/` (mainnet, testnet,
//! regtest), beside the v1 directory `<base>/<network>/v1/`, and has two tables:
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `compact_blocks_v0` | BE u32 height (raw, 4 bytes) | a v0 compact-block row |
//! | `block_hashes_v0` | block hash (raw, 32 bytes) | BE u32 height |
//!
//! A v0 compact-block row is `[0x00 format] body [32-byte BLAKE2b-256(key ‖ body)]`, the body
//!
//! ```text
//! LE u32 height, [32] hash, [32] prev_hash, LE i64 time,
//! LE u32 sapling tree size, LE u32 orchard tree size,
//! CompactSize n, n × tx:
//!   LE u16 index, [32] txid,
//!   CompactSize vin,  vin  × ([32] prevout txid, LE u32 prevout index),
//!   CompactSize vout, vout × (LE u64 value, [20] script hash, u8 script type),
//!   CompactSize spends,  spends  × [32] nullifier,
//!   CompactSize outputs, outputs × ([32] cmu, [32] epk, [52] ciphertext),
//!   CompactSize actions, actions × ([32] nullifier, [32] cmx, [32] epk, [52] ciphertext)
//! ```
//!
//! Every pool is stored; a read filters by [`PoolTypeFilter`]. v0 serves compact blocks
//! only ([`V0Reader`]); it has no metadata row (its directory is its version).

use storage_traits::capability::{CompactBlock, CompactTx, PoolTypeFilter};
use storage_traits::codec::{Reader, put_compact_size};
use storage_traits::kv::{Direction, KeyRange, KvRead, TableSpec};
use storage_traits::model::*;
use storage_traits::{Error, Result, blake2b256};

/// Height → compact block.
pub const V0_COMPACT_BLOCKS: &str = "compact_blocks_v0";
/// Block hash → height.
pub const V0_BLOCK_HASHES: &str = "block_hashes_v0";
/// The tables of a v0 store.
pub const V0_TABLES: &[TableSpec] = &[
    TableSpec::plain(V0_COMPACT_BLOCKS),
    TableSpec::plain(V0_BLOCK_HASHES),
];
/// The only v0 row format.
pub const V0_ROW_FORMAT: u8 = 0x00;

/// The v0 directory name of a network (`mainnet` → `live`, `testnet` → `test`,
/// `regtest` → `local`).
pub fn v0_dir_name(network: &str) -> Option<&'static str> {
    match network {
        "mainnet" => Some("live"),
        "testnet" => Some("test"),
        "regtest" => Some("local"),
        _ => None,
    }
}

/// The key of a height in `compact_blocks_v0`.
pub fn height_key(height: Height) -> [u8; 4] {
    height.0.to_be_bytes()
}

/// The compact block of an indexed block, with every pool. A transaction is included when
/// it has data in any pool.
pub fn compact_block_of(block: &IndexedBlock) -> Result<CompactBlock> {
    let height = block.header.height().ok_or_else(|| Error::InvalidBlock {
        height: 0,
        hash: block.header.hash().to_string(),
        reason: "the header records no height".to_owned(),
    })?;
    let vtx = block
        .transactions
        .iter()
        .enumerate()
        .filter_map(|(i, tx)| {
            let t = tx.transparent.clone().unwrap_or_default();
            let s = tx.sapling.clone().unwrap_or_default();
            let o = tx.orchard.clone().unwrap_or_default();
            let any = !t.vin.is_empty()
                || !t.vout.is_empty()
                || !s.spends.is_empty()
                || !s.outputs.is_empty()
                || !o.actions.is_empty();
            any.then_some(CompactTx {
                index: i as u16,
                txid: tx.txid,
                vin: t.vin,
                vout: t.vout,
                spends: s.spends,
                outputs: s.outputs,
                actions: o.actions,
            })
        })
        .collect();
    Ok(CompactBlock {
        height,
        hash: block.header.hash(),
        prev_hash: block.header.parent_hash(),
        time: block.header.data().time,
        vtx,
        tree_sizes: block.commitment_tree_data.sizes,
    })
}

fn encode_body(b: &CompactBlock) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&b.height.0.to_le_bytes());
    out.extend_from_slice(&b.hash.0);
    out.extend_from_slice(&b.prev_hash.0);
    out.extend_from_slice(&b.time.to_le_bytes());
    out.extend_from_slice(&b.tree_sizes.sapling.to_le_bytes());
    out.extend_from_slice(&b.tree_sizes.orchard.to_le_bytes());
    put_compact_size(&mut out, b.vtx.len() as u64);
    for tx in &b.vtx {
        out.extend_from_slice(&tx.index.to_le_bytes());
        out.extend_from_slice(&tx.txid.0);
        put_compact_size(&mut out, tx.vin.len() as u64);
        for i in &tx.vin {
            out.extend_from_slice(&i.prevout_txid.0);
            out.extend_from_slice(&i.prevout_index.to_le_bytes());
        }
        put_compact_size(&mut out, tx.vout.len() as u64);
        for o in &tx.vout {
            out.extend_from_slice(&o.value.to_le_bytes());
            out.extend_from_slice(&o.script_hash);
            out.push(o.script_type.to_u8());
        }
        put_compact_size(&mut out, tx.spends.len() as u64);
        for s in &tx.spends {
            out.extend_from_slice(&s.nullifier);
        }
        put_compact_size(&mut out, tx.outputs.len() as u64);
        for o in &tx.outputs {
            out.extend_from_slice(&o.cmu);
            out.extend_from_slice(&o.ephemeral_key);
            out.extend_from_slice(&o.ciphertext);
        }
        put_compact_size(&mut out, tx.actions.len() as u64);
        for a in &tx.actions {
            out.extend_from_slice(&a.nullifier);
            out.extend_from_slice(&a.cmx);
            out.extend_from_slice(&a.ephemeral_key);
            out.extend_from_slice(&a.ciphertext);
        }
    }
    out
}

/// The `compact_blocks_v0` row (key, value) of a compact block.
pub fn encode_row(b: &CompactBlock) -> ([u8; 4], Vec<u8>) {
    let key = height_key(b.height);
    let body = encode_body(b);
    let mut value = Vec::with_capacity(body.len() + 33);
    value.push(V0_ROW_FORMAT);
    value.extend_from_slice(&body);
    value.extend_from_slice(&blake2b256(&[&key, &body]));
    (key, value)
}

fn decode_body(body: &[u8]) -> Result<CompactBlock> {
    let mut r = Reader::new(body, "V0CompactBlock");
    let height = Height::new(r.u32_le()?)?;
    let hash = BlockHash(r.array()?);
    let prev_hash = BlockHash(r.array()?);
    let time = r.i64_le()?;
    let tree_sizes = CommitmentTreeSizes {
        sapling: r.u32_le()?,
        orchard: r.u32_le()?,
    };
    let vtx = r.vec(2 + 32 + 5, |r| {
        Ok(CompactTx {
            index: u16::from_le_bytes(r.array()?),
            txid: TxId(r.array()?),
            vin: r.vec(36, |r| {
                Ok(TxInCompact {
                    prevout_txid: TxId(r.array()?),
                    prevout_index: r.u32_le()?,
                })
            })?,
            vout: r.vec(29, |r| {
                Ok(TxOutCompact {
                    value: r.u64_le()?,
                    script_hash: r.array()?,
                    script_type: ScriptType::from_u8(r.u8()?)?,
                })
            })?,
            spends: r.vec(32, |r| {
                Ok(CompactSaplingSpend {
                    nullifier: r.array()?,
                })
            })?,
            outputs: r.vec(116, |r| {
                Ok(CompactSaplingOutput {
                    cmu: r.array()?,
                    ephemeral_key: r.array()?,
                    ciphertext: r.array()?,
                })
            })?,
            actions: r.vec(148, |r| {
                Ok(CompactOrchardAction {
                    nullifier: r.array()?,
                    cmx: r.array()?,
                    ephemeral_key: r.array()?,
                    ciphertext: r.array()?,
                })
            })?,
        })
    })?;
    r.finish()?;
    Ok(CompactBlock {
        height,
        hash,
        prev_hash,
        time,
        vtx,
        tree_sizes,
    })
}

/// Decodes and verifies a `compact_blocks_v0` row.
pub fn decode_row(key: &[u8], value: &[u8]) -> Result<CompactBlock> {
    let height = key.try_into().ok().map(u32::from_be_bytes);
    let corrupt = |reason: String| Error::Corrupt {
        table: V0_COMPACT_BLOCKS,
        key: hex::encode(key),
        height,
        reason,
    };
    if value.len() < 33 {
        return Err(corrupt(format!(
            "row of {} bytes is too short",
            value.len()
        )));
    }
    if value[0] != V0_ROW_FORMAT {
        return Err(corrupt(format!("unknown row format {}", value[0])));
    }
    let (body, checksum) = value[1..].split_at(value.len() - 33);
    if blake2b256(&[key, body]) != checksum {
        return Err(Error::ChecksumMismatch {
            table: V0_COMPACT_BLOCKS,
            key: hex::encode(key),
            height,
        });
    }
    let block = decode_body(body).map_err(|e| corrupt(e.to_string()))?;
    if Some(block.height.0) != height {
        return Err(corrupt(format!("row records height {}", block.height)));
    }
    Ok(block)
}

/// Keeps only the pools `filter` selects, dropping transactions left empty.
pub fn filter_block(mut b: CompactBlock, filter: PoolTypeFilter) -> CompactBlock {
    b.vtx.retain_mut(|tx| {
        if !filter.contains(PoolTypeFilter::TRANSPARENT) {
            tx.vin.clear();
            tx.vout.clear();
        }
        if !filter.contains(PoolTypeFilter::SAPLING) {
            tx.spends.clear();
            tx.outputs.clear();
        }
        if !filter.contains(PoolTypeFilter::ORCHARD) {
            tx.actions.clear();
        }
        !(tx.vin.is_empty()
            && tx.vout.is_empty()
            && tx.spends.is_empty()
            && tx.outputs.is_empty()
            && tx.actions.is_empty())
    });
    b
}

/// Read access to a v0 store: what it served, and keeps serving until v1 is promoted.
pub struct V0Reader<'a, R: KvRead> {
    r: &'a R,
}

impl<'a, R: KvRead> V0Reader<'a, R> {
    /// A reader over a snapshot of a v0 store.
    pub fn new(r: &'a R) -> Self {
        V0Reader { r }
    }

    /// The highest stored height.
    pub fn tip(&self) -> Result<Option<Height>> {
        match self.r.last(V0_COMPACT_BLOCKS)? {
            None => Ok(None),
            Some((k, v)) => Ok(Some(decode_row(&k, &v)?.height)),
        }
    }

    /// The compact block at `height`, filtered.
    pub fn compact_block(
        &self,
        height: Height,
        filter: PoolTypeFilter,
    ) -> Result<Option<CompactBlock>> {
        let key = height_key(height);
        self.r
            .get(V0_COMPACT_BLOCKS, &key)?
            .map(|v| decode_row(&key, &v).map(|b| filter_block(b, filter)))
            .transpose()
    }

    /// The height of a stored block hash.
    pub fn height_of(&self, hash: &BlockHash) -> Result<Option<Height>> {
        let Some(v) = self.r.get(V0_BLOCK_HASHES, &hash.0)? else {
            return Ok(None);
        };
        let bytes: [u8; 4] = v.as_slice().try_into().map_err(|_| Error::Corrupt {
            table: V0_BLOCK_HASHES,
            key: hex::encode(hash.0),
            height: None,
            reason: format!("value of {} bytes, want 4", v.len()),
        })?;
        Ok(Some(Height(u32::from_be_bytes(bytes))))
    }

    /// Every stored compact block in height order, verified.
    pub fn iter(&self) -> Result<impl Iterator<Item = Result<CompactBlock>> + '_> {
        Ok(self
            .r
            .range(V0_COMPACT_BLOCKS, KeyRange::all(), Direction::Forward)?
            .map(|row| row.and_then(|(k, v)| decode_row(&k, &v))))
    }
}
