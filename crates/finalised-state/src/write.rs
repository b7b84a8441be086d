//! The write path: `write_block`, `delete_block_at_height` and bulk sync.
//!
//! Both single writes and bulk sync stage blocks into a [`Batch`] in memory: the per-height
//! rows in height order, the random-keyed rows (`hashes`, `txid_location`, `spent`,
//! `address_history`) to be written in key order. A batch is written and committed in one
//! transaction. Bulk sync commits each batch on a second thread while it stages the next
//! one against the committed tables and the committing batch's [`BatchIndex`].

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::time::Instant;

use accumulator::{Accumulator, TxDelta};
use storage_traits::capability::DbWrite;
use storage_traits::kv::{KvRead, KvWrite};
use storage_traits::model::*;
use storage_traits::table::*;
use storage_traits::{Capability, Durability, Error, Result, TableKey};

use crate::backend::Backend;
use crate::rows::RowCache;
use crate::state::{FinalisedState, Self_, accumulator_error, lock};

/// Progress of a bulk sync, reported after every committed batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncProgress {
    /// The height committed last.
    pub height: Height,
    /// Blocks committed so far in this call.
    pub blocks: u64,
    /// Time since the call started.
    pub elapsed: std::time::Duration,
}

/// An invalid-block error for `block`.
fn invalid(block: &IndexedBlock, height: Height, reason: impl Into<String>) -> Error {
    Error::InvalidBlock {
        height: height.0,
        hash: block.header.hash().to_string(),
        reason: reason.into(),
    }
}

/// Rough per-entry overhead of the in-memory buffers, for the byte budget.
const ENTRY_OVERHEAD: usize = 96;

/// The block's rows of the six height-keyed tables, as (table, key, value), in the order
/// they are written. The one place that decides what a block's per-height rows are: the
/// write path stores them, the rewrite check compares them.
/// `transparent` is the block's [`transparent_list`], which the caller may already hold.
fn per_height_rows(
    block: &IndexedBlock,
    height: Height,
    transparent: &TransparentTxList,
) -> [(&'static str, Vec<u8>, Vec<u8>); 6] {
    let sapling = SaplingTxList(
        block
            .transactions
            .iter()
            .map(|t| t.sapling.clone())
            .collect(),
    );
    let orchard = OrchardTxList(
        block
            .transactions
            .iter()
            .map(|t| t.orchard.clone())
            .collect(),
    );
    let row = |table: &'static str, (k, v): (Vec<u8>, Vec<u8>)| (table, k, v);
    [
        row(
            Headers::NAME,
            encode_row_ref::<Headers>(&height, &block.header),
        ),
        row(Txids::NAME, encode_row::<Txids>(&height, block.txids())),
        row(
            Transparent::NAME,
            encode_row_ref::<Transparent>(&height, transparent),
        ),
        row(Sapling::NAME, encode_row::<Sapling>(&height, sapling)),
        row(Orchard::NAME, encode_row::<Orchard>(&height, orchard)),
        row(
            CommitmentTree::NAME,
            encode_row_ref::<CommitmentTree>(&height, &block.commitment_tree_data),
        ),
    ]
}

/// The block's `transparent` row value: each transaction's transparent part.
fn transparent_list(block: &IndexedBlock) -> TransparentTxList {
    TransparentTxList(
        block
            .transactions
            .iter()
            .map(|t| t.transparent.clone())
            .collect(),
    )
}

/// What later blocks look up in a staged batch before it is committed: its block hashes,
/// transaction locations, spends and `transparent` rows. Bulk sync shares it, read-only,
/// between the thread committing the batch and the one staging the next.
#[derive(Default)]
pub(crate) struct BatchIndex {
    /// hash → height rows, by key.
    hashes: BTreeMap<Vec<u8>, Vec<u8>>,
    /// txid → location, for lookups and for the `txid_location` rows.
    txid_locations: BTreeMap<TxId, TxLocation>,
    /// outpoint → spender, for lookups and for the `spent` rows.
    spent: BTreeMap<Outpoint, TxLocation>,
    /// The height of the first staged block.
    first: Option<Height>,
    /// The staged blocks' `transparent` rows (stored values, indexed), one per height from
    /// `first`: later blocks read the outputs they spend from them, the commit stores them.
    transparent: Vec<Arc<EncodedTransparentList>>,
}

impl BatchIndex {
    /// The staged `transparent` row at `height`, if the batch holds that height.
    fn transparent_at(&self, height: u32) -> Option<&Arc<EncodedTransparentList>> {
        let first = self.first?;
        self.transparent.get(height.checked_sub(first.0)? as usize)
    }
}

/// What a batch's commit writes and nothing looks up before it.
#[derive(Default)]
pub(crate) struct BatchWrites {
    /// The per-height rows other than `transparent` (table, key, value), in staging order:
    /// each table's keys ascend.
    rows: Vec<(&'static str, Vec<u8>, Vec<u8>)>,
    /// Address-history pairs staged by the batch: `true` to add, `false` to delete (a pair
    /// committed before this batch). Adding a staged delete, or deleting a staged add,
    /// cancels both. Kept typed and hashed, and encoded only at the flush: an output created
    /// and spent within one batch costs no row encoding (nor its BLAKE2b) at all, and a
    /// lookup costs a hash instead of a walk of byte-string comparisons (an ordered set of
    /// encoded rows took a quarter of the bulk sync's time).
    addr_changes: HashMap<(AddrScript, AddrEvent), bool>,
}

/// Blocks staged but not yet committed: what later blocks look up, and the rest of their rows.
#[derive(Default)]
pub(crate) struct Batch {
    index: BatchIndex,
    writes: BatchWrites,
    /// Estimated bytes the batch holds in memory (and its write transaction will).
    pub(crate) bytes: usize,
    /// Blocks staged.
    pub(crate) blocks: u64,
}

/// What staging reads besides its own batch: the committed tables and, while bulk sync
/// commits the previous batch on another thread, that batch's index.
pub(crate) struct Earlier<'a, R> {
    committed: &'a R,
    committing: Option<&'a BatchIndex>,
}

/// An output resolved for an input: where it was created and what it is.
#[derive(Clone, Copy)]
struct PrevOut {
    location: TxLocation,
    output: TxOutCompact,
}

/// Outputs inputs spend, by outpoint: creating location and output (`None` when that
/// transaction has no such output).
type OutputsByOutpoint = HashMap<Outpoint, (TxLocation, Option<TxOutCompact>)>;

// The most blocks a bulk sync reads ahead to group their inputs' row reads is
// `Config::sync_read_ahead_blocks` (default 4,096). The more inputs a window holds, the
// fewer times each row they spend from is read: after a spam band, ordinary blocks' inputs
// spend from every one of ~100 spam rows of 2 MB, each read once per window (with 256
// blocks a window, those reads were a quarter of RocksDB's staging).

/// The most inputs in a window: the outputs found for them are held for the window.
const WINDOW_INPUTS: usize = 50_000;
/// The most decoded items (transactions, transparent inputs and outputs, shielded spends,
/// outputs and actions; each tens to a few hundred bytes) the window's blocks may hold, so
/// that its memory stays a small fixed part of the base whatever the blocks look like.
/// (The block that crosses a bound is still taken, so a window may hold one block more.)
const WINDOW_ITEMS: usize = 250_000;

/// The transparent inputs of `block` (for [`WINDOW_INPUTS`]) and its decoded items (for
/// [`WINDOW_ITEMS`]).
fn window_counts(block: &IndexedBlock) -> (usize, usize) {
    block
        .transactions
        .iter()
        .fold((0, 0), |(inputs, items), tx| {
            let (vin, vout) = tx
                .transparent
                .as_ref()
                .map_or((0, 0), |t| (t.vin.len(), t.vout.len()));
            let shielded = tx
                .sapling
                .as_ref()
                .map_or(0, |s| s.spends.len() + s.outputs.len())
                + tx.orchard.as_ref().map_or(0, |o| o.actions.len());
            (inputs + vin, items + 1 + vin + vout + shielded)
        })
}

/// Reads the outputs `wanted` names (each with its creating location) row by row in height
/// order, each `transparent` row once however many of its outputs are wanted: inputs spend
/// from many earlier rows in no useful order, and a row evicted from the cache (a spam
/// block's row is 2 MB) would otherwise be read again for each input that needs it.
fn read_outputs(
    mut row: impl FnMut(u32) -> Result<Arc<EncodedTransparentList>>,
    mut wanted: Vec<(TxLocation, Outpoint)>,
) -> Result<OutputsByOutpoint> {
    wanted.sort_unstable_by_key(|(location, outpoint)| (*location, outpoint.prev_index));
    let mut found = HashMap::with_capacity(wanted.len());
    let mut last_row = None;
    for (location, outpoint) in wanted {
        let height = location.block_height;
        let list = match last_row.take() {
            Some((h, list)) if h == height => list,
            _ => row(height)?,
        };
        let output = list
            .output(usize::from(location.tx_index), outpoint.prev_index)
            .map_err(|e| crate::rows::corrupt_row(height, e))?;
        last_row = Some((height, list));
        found.insert(outpoint, (location, output));
    }
    Ok(found)
}

/// The committed outputs the inputs of `blocks` (a bulk sync's window) spend, each row read
/// once for the whole window: after a spam band, the blocks' few inputs each spend from one
/// of many 2 MB spam rows, more than the row cache holds, so block by block each input read
/// a row. Outputs of transactions not committed yet (in the open batch or the window) are
/// left to [`Batch::earlier_outputs`].
fn read_window_outputs(
    cache: &mut RowCache,
    r: &impl KvRead,
    blocks: &VecDeque<IndexedBlock>,
) -> Result<OutputsByOutpoint> {
    let mut wanted = Vec::new();
    for tx in blocks.iter().flat_map(|b| &b.transactions) {
        let Some(t) = &tx.transparent else { continue };
        for outpoint in t.vin.iter().filter_map(|input| input.outpoint()) {
            if let Some(location) = r.get_row::<TxidLocation>(&outpoint.prev_txid)? {
                wanted.push((location, outpoint));
            }
        }
    }
    read_outputs(|height| cache.row(r, height), wanted)
}

fn addr_row(addr: &AddrScript, event: AddrEvent) -> (Vec<u8>, Vec<u8>) {
    encode_row::<AddressHistory>(addr, event)
}

/// A sort key giving address-history pairs the byte order of their encoded rows: the key is
/// `[tag] hash script-type`, the entry `[version] [tag]` then BE height, BE tx index, BE
/// index, flags and the LE value, then a checksum that can only break ties between equal
/// pairs (tested against the encoding).
fn addr_byte_order(
    (addr, event): &(AddrScript, AddrEvent),
) -> ([u8; 20], u8, u32, u16, u16, u8, [u8; 8]) {
    (
        addr.hash,
        addr.script_type.to_u8(),
        event.tx_location.block_height,
        event.tx_location.tx_index,
        event.index,
        event.flags,
        event.value.to_le_bytes(),
    )
}

/// The bytes of one address-history row (key and checksummed entry), for the batch budget.
fn addr_row_len() -> usize {
    use storage_traits::codec::{FixedLen, Versioned};
    // The key: tag and body. The entry: version byte, tag, body, BLAKE2b-256.
    let key = 1 + AddrScript::body_len(AddrScript::LATEST).unwrap_or(0);
    key + 2 + AddrEvent::body_len(AddrEvent::LATEST).unwrap_or(0) + 32
}

/// The output `outpoint` refers to, from committed tables only, read through `rows`.
pub(crate) fn previous_output(
    rows: &mut RowCache,
    r: &impl KvRead,
    outpoint: &Outpoint,
) -> Result<Option<TxOutCompact>> {
    let Some(location) = r.get_row::<TxidLocation>(&outpoint.prev_txid)? else {
        return Ok(None);
    };
    rows.output(r, location, outpoint.prev_index)
}

impl Batch {
    /// This batch's index and the committing one's, newest first.
    fn staged<'a, R>(&'a self, earlier: &Earlier<'a, R>) -> impl Iterator<Item = &'a BatchIndex> {
        std::iter::once(&self.index).chain(earlier.committing)
    }

    fn location_of<R: KvRead>(
        &self,
        earlier: &Earlier<'_, R>,
        txid: &TxId,
    ) -> Result<Option<TxLocation>> {
        match self
            .staged(earlier)
            .find_map(|i| i.txid_locations.get(txid))
        {
            Some(l) => Ok(Some(*l)),
            None => earlier.committed.get_row::<TxidLocation>(txid),
        }
    }

    /// Whether a block with `hash` is stored or staged.
    fn hash_known<R: KvRead>(&self, earlier: &Earlier<'_, R>, hash: &BlockHash) -> Result<bool> {
        let key = hash.encode_key();
        if self.staged(earlier).any(|i| i.hashes.contains_key(&key)) {
            return Ok(true);
        }
        Ok(earlier.committed.get_row::<Heights>(hash)?.is_some())
    }

    /// The spender of `outpoint`, staged or committed.
    fn spender<R: KvRead>(
        &self,
        earlier: &Earlier<'_, R>,
        outpoint: &Outpoint,
    ) -> Result<Option<TxLocation>> {
        if let Some(l) = self.staged(earlier).find_map(|i| i.spent.get(outpoint)) {
            return Ok(Some(*l));
        }
        // An output of a transaction not committed yet has no committed `spent` row: one
        // table lookup fewer for the many inputs that spend recent outputs.
        if self
            .staged(earlier)
            .any(|i| i.txid_locations.contains_key(&outpoint.prev_txid))
        {
            return Ok(None);
        }
        earlier.committed.get_row::<Spent>(outpoint)
    }

    /// The `transparent` row at `height`: staged, or committed (through `cache`).
    fn row<R: KvRead>(
        &self,
        earlier: &Earlier<'_, R>,
        cache: &mut RowCache,
        height: u32,
    ) -> Result<Arc<EncodedTransparentList>> {
        match self.staged(earlier).find_map(|i| i.transparent_at(height)) {
            Some(row) => Ok(Arc::clone(row)),
            None => cache.row(earlier.committed, height),
        }
    }

    /// Finds the outputs the inputs of `block` (at `height`) spend from earlier blocks and
    /// `window` does not hold (staged in this batch, or committed after the window was
    /// read), with their creating locations. Inputs whose transaction is unknown are left
    /// out; outputs of `block` itself are left to the caller (its rows are not written yet).
    fn earlier_outputs<R: KvRead>(
        &self,
        cache: &mut RowCache,
        window: &OutputsByOutpoint,
        earlier: &Earlier<'_, R>,
        block: &IndexedBlock,
        height: Height,
    ) -> Result<OutputsByOutpoint> {
        let mut wanted = Vec::new();
        for tx in &block.transactions {
            let Some(t) = &tx.transparent else { continue };
            for outpoint in t.vin.iter().filter_map(|input| input.outpoint()) {
                if window.contains_key(&outpoint) {
                    continue;
                }
                if let Some(location) = self.location_of(earlier, &outpoint.prev_txid)?
                    && location.block_height != height.0
                {
                    wanted.push((location, outpoint));
                }
            }
        }
        read_outputs(|h| self.row(earlier, cache, h), wanted)
    }

    /// The unspent output `outpoint` spends, or why it cannot: `Ok(Err(None))` when it
    /// does not exist, `Ok(Err(Some(spender)))` when it is already spent. `current` is
    /// the block being staged (its rows are not in the transaction yet); `window` and
    /// `earlier` hold the earlier outputs [`read_window_outputs`] and
    /// [`Batch::earlier_outputs`] found for it.
    fn resolve_unspent<R: KvRead>(
        &self,
        (window, found): (&OutputsByOutpoint, &OutputsByOutpoint),
        earlier: &Earlier<'_, R>,
        outpoint: &Outpoint,
        current: (Height, &IndexedBlock),
    ) -> Result<std::result::Result<PrevOut, Option<TxLocation>>> {
        let (location, output) = match window.get(outpoint).or_else(|| found.get(outpoint)) {
            Some(&found) => found,
            // Not an earlier block's: this block's own, or unknown.
            None => match self.index.txid_locations.get(&outpoint.prev_txid) {
                Some(l) if l.block_height == current.0.0 => {
                    let output = current
                        .1
                        .transactions
                        .get(l.tx_index as usize)
                        .and_then(|t| t.transparent.as_ref())
                        .and_then(|t| t.vout.get(outpoint.prev_index as usize))
                        .copied();
                    (*l, output)
                }
                _ => return Ok(Err(None)),
            },
        };
        let Some(output) = output else {
            return Ok(Err(None));
        };
        if let Some(spender) = self.spender(earlier, outpoint)? {
            return Ok(Err(Some(spender)));
        }
        Ok(Ok(PrevOut { location, output }))
    }

    fn add_addr(&mut self, addr: AddrScript, event: AddrEvent) {
        self.bytes += addr_row_len() + ENTRY_OVERHEAD;
        match self.writes.addr_changes.entry((addr, event)) {
            Entry::Occupied(staged) if !*staged.get() => {
                staged.remove();
            }
            Entry::Occupied(_) => {}
            Entry::Vacant(slot) => {
                slot.insert(true);
            }
        }
    }

    fn delete_addr(&mut self, addr: AddrScript, event: AddrEvent) {
        match self.writes.addr_changes.entry((addr, event)) {
            Entry::Occupied(staged) if *staged.get() => {
                staged.remove();
            }
            Entry::Occupied(_) => self.bytes += addr_row_len() + ENTRY_OVERHEAD,
            Entry::Vacant(slot) => {
                self.bytes += addr_row_len() + ENTRY_OVERHEAD;
                slot.insert(false);
            }
        }
    }

    /// Checks `block` against `earlier` and the batch, and stages its rows. Returns the
    /// outputs it spends, with their creating locations, for the accumulator. On error the
    /// batch must be dropped.
    fn stage_block<R: KvRead>(
        &mut self,
        cache: &mut RowCache,
        window: &OutputsByOutpoint,
        earlier: &Earlier<'_, R>,
        block: &IndexedBlock,
        height: Height,
    ) -> Result<Vec<(Outpoint, PrevOut)>> {
        if block.header.height() != Some(height) {
            return Err(invalid(
                block,
                height,
                format!(
                    "header records height {:?}, expected {height}",
                    block.header.height()
                ),
            ));
        }
        if block.transactions.len() > usize::from(u16::MAX) + 1 {
            return Err(invalid(block, height, "more than 65536 transactions"));
        }
        let computed = block.computed_merkle_root();
        if computed != block.header.data().merkle_root {
            return Err(invalid(
                block,
                height,
                format!(
                    "merkle root mismatch: header {}, computed {}",
                    hex::encode(block.header.data().merkle_root),
                    hex::encode(computed)
                ),
            ));
        }
        let hash = block.header.hash();
        if self.hash_known(earlier, &hash)? {
            return Err(invalid(
                block,
                height,
                "block hash already stored at another height",
            ));
        }

        // Transactions: txid_location, and the new outputs for same-block spends.
        for (i, tx) in block.transactions.iter().enumerate() {
            let location = TxLocation {
                block_height: height.0,
                tx_index: i as u16,
            };
            if let Some(existing) = self.location_of(earlier, &tx.txid)? {
                return Err(invalid(
                    block,
                    height,
                    format!("txid {} already stored at {existing:?}", tx.txid),
                ));
            }
            self.index.txid_locations.insert(tx.txid, location);
            self.bytes += 32 + 40 + ENTRY_OVERHEAD;
        }

        // Inputs: every spent outpoint exists and is unspent; spent rows; address events.
        let found = self.earlier_outputs(cache, window, earlier, block, height)?;
        let mut spends = Vec::new();
        for (i, tx) in block.transactions.iter().enumerate() {
            let location = TxLocation {
                block_height: height.0,
                tx_index: i as u16,
            };
            let Some(t) = &tx.transparent else { continue };
            for (input_index, input) in t.vin.iter().enumerate() {
                let Some(outpoint) = input.outpoint() else {
                    continue;
                };
                let prev = match self.resolve_unspent(
                    (window, &found),
                    earlier,
                    &outpoint,
                    (height, block),
                )? {
                    Ok(prev) => prev,
                    Err(None) => {
                        return Err(invalid(
                            block,
                            height,
                            format!(
                                "transaction {} input {input_index} spends unknown output {}:{}",
                                tx.txid, outpoint.prev_txid, outpoint.prev_index
                            ),
                        ));
                    }
                    Err(Some(spender)) => {
                        return Err(invalid(
                            block,
                            height,
                            format!(
                                "transaction {} input {input_index} spends {}:{}, already spent by {spender:?}",
                                tx.txid, outpoint.prev_txid, outpoint.prev_index
                            ),
                        ));
                    }
                };
                if prev.location >= location {
                    return Err(invalid(
                        block,
                        height,
                        format!(
                            "transaction {} input {input_index} spends output {}:{} of a later transaction",
                            tx.txid, outpoint.prev_txid, outpoint.prev_index
                        ),
                    ));
                }
                self.index.spent.insert(outpoint, location);
                self.bytes += 37 + 40 + ENTRY_OVERHEAD;
                if prev.output.script_type.is_spendable() {
                    let addr = prev.output.addr_script();
                    let mined = AddrEvent {
                        tx_location: prev.location,
                        index: outpoint.prev_index as u16,
                        flags: AddrEvent::MINED,
                        value: prev.output.value,
                    };
                    self.delete_addr(addr, mined);
                    self.add_addr(
                        addr,
                        AddrEvent {
                            flags: AddrEvent::MINED | AddrEvent::SPENT,
                            ..mined
                        },
                    );
                    self.add_addr(
                        addr,
                        AddrEvent {
                            tx_location: location,
                            index: input_index as u16,
                            flags: AddrEvent::MINED | AddrEvent::IS_INPUT,
                            value: prev.output.value,
                        },
                    );
                }
                spends.push((outpoint, prev));
            }
            // Outputs paying an address. Written before later transactions of the block
            // can spend them (the flip above finds them among the staged adds).
            for (vout, out) in t.vout.iter().enumerate() {
                if out.script_type.is_spendable() {
                    self.add_addr(
                        out.addr_script(),
                        AddrEvent {
                            tx_location: location,
                            index: vout as u16,
                            flags: AddrEvent::MINED,
                            value: out.value,
                        },
                    );
                }
            }
        }
        // The loop above adds an output's event after the block's earlier inputs ran, but a
        // later transaction in the same block may spend it: that spend's flip happens in a
        // later iteration, after the add, so ordering holds.

        // Per-height rows, in height order.
        let first = *self.index.first.get_or_insert(height);
        debug_assert_eq!(
            first.0 as usize + self.index.transparent.len(),
            height.0 as usize
        );
        for (table, k, v) in per_height_rows(block, height, &transparent_list(block)) {
            self.bytes += k.len() + v.len() + ENTRY_OVERHEAD;
            if table == Transparent::NAME {
                // Indexed once: later blocks read the outputs they spend from it (through
                // the cache once it is committed), the commit stores the same bytes.
                let row = cache.insert_written(height.0, v)?;
                self.index.transparent.push(row);
            } else {
                self.writes.rows.push((table, k, v));
            }
        }
        let (k, v) = encode_row::<Heights>(&hash, height);
        self.bytes += k.len() + v.len() + ENTRY_OVERHEAD;
        self.index.hashes.insert(k, v);
        self.blocks += 1;
        Ok(spends)
    }

    /// What the commit writes and what later blocks look up meanwhile.
    fn split(self) -> (BatchIndex, BatchWrites) {
        (self.index, self.writes)
    }
}

impl BatchWrites {
    /// Writes the staged batch into `w`: the per-height rows, then the random-keyed rows in
    /// key order.
    fn write_into<W: KvWrite>(self, w: &mut W, index: &BatchIndex) -> Result<()> {
        for (table, k, v) in self.rows {
            w.put(table, &k, &v)?;
        }
        if let Some(first) = index.first {
            for (height, row) in (first.0..).zip(&index.transparent) {
                w.put(
                    Transparent::NAME,
                    &Height(height).encode_key(),
                    row.buffer(),
                )?;
            }
        }
        w.insert_sorted(
            Heights::NAME,
            &mut index
                .hashes
                .iter()
                .map(|(k, v)| (k.as_slice(), v.as_slice())),
        )?;
        let rows: Vec<(Vec<u8>, Vec<u8>)> = index
            .txid_locations
            .iter()
            .map(|(txid, loc)| encode_row::<TxidLocation>(txid, *loc))
            .collect();
        w.insert_sorted(
            TxidLocation::NAME,
            &mut rows.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
        )?;
        drop(rows);
        let rows: Vec<(Vec<u8>, Vec<u8>)> = index
            .spent
            .iter()
            .map(|(op, loc)| encode_row::<Spent>(op, *loc))
            .collect();
        w.insert_sorted(
            Spent::NAME,
            &mut rows.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
        )?;
        drop(rows);

        // Adds, then deletes, each in (key, value) byte order. A pair is staged as one or
        // the other, never both, so their order does not change the table; adds first in
        // ascending order let a backend append them (RocksDB's sorted run). Sorted typed (see
        // `addr_byte_order`) and encoded one by one as written: sorting the encoded rows
        // chased two heap pointers per comparison.
        let (mut adds, mut deletes): (Vec<_>, Vec<_>) =
            self.addr_changes.into_iter().partition(|(_, add)| *add);
        adds.sort_unstable_by_key(|(pair, _)| addr_byte_order(pair));
        for ((addr, event), _) in adds {
            let (k, v) = addr_row(&addr, event);
            w.put(AddressHistory::NAME, &k, &v)?;
        }
        deletes.sort_unstable_by_key(|(pair, _)| addr_byte_order(pair));
        for ((addr, event), _) in deletes {
            let (k, v) = addr_row(&addr, event);
            w.delete_dup(AddressHistory::NAME, &k, &v)?;
        }
        Ok(())
    }
}

/// How many of `txid`'s counted outputs are unspent in `r`. Its transaction comes through
/// `rows`: a block spending many outputs of one big earlier block (a spam band's chained
/// transfers) reads that block's row once, not once per spent transaction.
fn counted_unspent(
    rows: &mut RowCache,
    r: &impl KvRead,
    txid: &TxId,
    location: TxLocation,
) -> Result<u64> {
    let Some(tx) = rows.tx(r, location)? else {
        return Ok(0);
    };
    let mut n = 0;
    for (vout, out) in tx.vout.iter().enumerate() {
        if accumulator::is_counted(out)
            && r.get_row::<Spent>(&Outpoint {
                prev_txid: *txid,
                prev_index: vout as u32,
            })?
            .is_none()
        {
            n += 1;
        }
    }
    Ok(n)
}

/// A batch being committed on the committer thread: its index (which staging reads
/// meanwhile), its block count and last block.
struct Committing {
    index: Arc<BatchIndex>,
    blocks: u64,
    tip: (Height, BlockHash),
}

/// A bulk sync's commits: the committer thread's inbox and results, the batch it is
/// committing, and what is done.
struct Pipeline {
    to_commit: SyncSender<(Arc<BatchIndex>, BatchWrites)>,
    /// The committer's result for each batch, in order.
    results: Receiver<Result<()>>,
    committing: Option<Committing>,
    /// Blocks committed so far.
    committed: u64,
    started: Instant,
}

/// The error for a committer thread that stopped answering (it panicked: the panic is
/// carried on when the thread is joined).
fn committer_gone() -> Error {
    Error::NotAvailable {
        what: "the bulk sync's commit thread stopped".to_owned(),
    }
}

/// Groups spent outputs by creating transaction, in ascending output order.
fn group_by_txid<'a>(
    spends: impl Iterator<Item = (&'a Outpoint, TxLocation, TxOutCompact)>,
) -> BTreeMap<TxId, (TxLocation, Vec<(u32, TxOutCompact)>)> {
    let mut map: BTreeMap<TxId, (TxLocation, Vec<(u32, TxOutCompact)>)> = BTreeMap::new();
    for (op, location, out) in spends {
        map.entry(op.prev_txid)
            .or_insert_with(|| (location, Vec::new()))
            .1
            .push((op.prev_index, out));
    }
    for (_, list) in map.values_mut() {
        list.sort_by_key(|(v, _)| *v);
    }
    map
}

impl<B: Backend> FinalisedState<B> {
    /// The stored accumulator and whether it was built to `tip`.
    fn load_accumulator(
        &self,
        r: &impl KvRead,
        tip: Option<Height>,
    ) -> Result<Option<Accumulator>> {
        let built = r.get_row::<MetadataHeights>(&ACCUMULATOR_BUILT_HEIGHT_KEY)?;
        if built != tip {
            return Ok(None);
        }
        let info = r
            .get_row::<TxOutSetAccumulator>(&ACCUMULATOR_KEY)?
            .unwrap_or_default();
        Accumulator::from_info(info)
            .map(Some)
            .map_err(accumulator_error)
    }

    /// Whether `block` is byte-for-byte the block stored at `height`.
    fn is_stored(&self, r: &impl KvRead, block: &IndexedBlock, height: Height) -> Result<bool> {
        for (table, k, v) in per_height_rows(block, height, &transparent_list(block)) {
            if r.get(table, &k)?.as_deref() != Some(v.as_slice()) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Handles a block at or below the tip: a no-op when identical, an error otherwise.
    /// `None` when the block is the next one to append.
    fn check_existing(&self, block: &IndexedBlock) -> Result<Option<()>> {
        let height = block
            .header
            .height()
            .ok_or_else(|| invalid(block, Height(0), "the header records no height"))?;
        if self.tip().is_some_and(|tip| height <= tip) {
            let r = self.store.begin_read()?;
            if self.is_stored(&r, block, height)? {
                tracing::debug!(height = height.0, "block already stored; nothing to do");
                return Ok(Some(()));
            }
            return Err(invalid(
                block,
                height,
                "a different block is stored at this height",
            ));
        }
        Ok(None)
    }

    /// Checks that `block` extends `tip` (or starts an empty store) and returns its height.
    fn check_append(
        &self,
        block: &IndexedBlock,
        tip: Option<(Height, BlockHash)>,
    ) -> Result<Height> {
        let expected = match tip {
            Some((h, _)) => Height(h.0 + 1),
            None => self.config.start_height,
        };
        let height = block.header.height().unwrap_or(Height(u32::MAX));
        if height != expected {
            return Err(invalid(
                block,
                height,
                format!(
                    "expected height {expected} (tip + 1, or the start height of an empty store)"
                ),
            ));
        }
        if let Some((_, prev)) = tip
            && block.header.parent_hash() != prev
        {
            return Err(invalid(
                block,
                height,
                format!(
                    "parent hash {} does not match the tip hash {prev}",
                    block.header.parent_hash()
                ),
            ));
        }
        Ok(height)
    }

    /// Appends blocks in bulk (blocks at or below the tip must equal the stored ones and
    /// are skipped). Random-keyed indices are buffered and written in key order in batches
    /// of about `sync_write_batch_bytes`, each batch one synced transaction; the accumulator
    /// is rebuilt in bulk once at the end. `progress` is called after every batch.
    pub fn write_blocks(
        &self,
        blocks: impl IntoIterator<Item = IndexedBlock>,
        mut progress: impl FnMut(SyncProgress),
    ) -> Result<u64> {
        self.require(Capability::WRITE_CORE)?;
        let started = Instant::now();
        let written = {
            let mut rows = lock(&self.write_lock);
            let synced = self.sync_locked(&mut rows, blocks, &mut progress, started);
            if synced.is_err() {
                // The cache may hold rows of a batch that did not commit.
                rows.clear();
            }
            synced?
        };
        if written > 0 {
            self.rebuild_accumulator()?;
        }
        tracing::info!(blocks = written, tip = ?self.tip(), elapsed_ms = started.elapsed().as_millis() as u64, "bulk sync done");
        Ok(written)
    }

    /// [`FinalisedState::write_blocks`] under the write lock, without the accumulator
    /// rebuild: stages and commits batch by batch, and returns the blocks written.
    ///
    /// A full batch is committed on a second thread while this one stages the next against
    /// the committed tables (a snapshot taken after the previous commit) and the committing
    /// batch's index: staging (checks, row encoding, output reads) and the backend's write
    /// and sync then overlap. Commits stay in order, one at a time, so a crash leaves a
    /// prefix of whole batches. Each batch gets a share of the byte budget
    /// ([`Backend::SYNC_BATCH_SHARE`]).
    fn sync_locked(
        &self,
        rows: &mut RowCache,
        blocks: impl IntoIterator<Item = IndexedBlock>,
        progress: &mut impl FnMut(SyncProgress),
        started: Instant,
    ) -> Result<u64> {
        std::thread::scope(|scope| {
            let (to_commit, inbox) = sync_channel::<(Arc<BatchIndex>, BatchWrites)>(0);
            let (outbox, results) = channel();
            // One thread commits every batch of the call. Not a thread per batch: glibc
            // gives a new thread's allocations an arena of their own, and each arena kept
            // about a batch of freed memory (peak RSS grew 2.2x the budget on redb).
            let committer = scope.spawn(move || {
                for (index, writes) in inbox {
                    let committed = self.commit_batch(&index, writes);
                    drop(index);
                    if outbox.send(committed).is_err() {
                        break;
                    }
                }
            });
            let mut sync = Pipeline {
                to_commit,
                results,
                committing: None,
                committed: 0,
                started,
            };
            let (staged, last) = match self.stage_batches(&mut sync, rows, blocks, progress) {
                Ok(last) => (Ok(()), last),
                Err(e) => (Err(e), None),
            };
            // Whatever stopped the staging, the batch being committed finishes first, so the
            // tip matches what is stored; then the last, partial batch.
            let mut finished = self.finish_commit(&mut sync, progress);
            if finished.is_ok()
                && let Some((batch, tip)) = last
            {
                finished = self
                    .start_commit(&mut sync, batch, tip)
                    .and_then(|()| self.finish_commit(&mut sync, progress));
            }
            let committed = sync.committed;
            // Closes the committer's inbox: its loop ends.
            drop(sync);
            if let Err(panic) = committer.join() {
                // A panic is a bug, not a data error: carry it on rather than hide it.
                std::panic::resume_unwind(panic);
            }
            finished?;
            staged?;
            Ok(committed)
        })
    }

    /// Stages `blocks` into batches, handing each full one to the committer thread; returns
    /// the last batch, not committed, with its last block, if it holds blocks.
    fn stage_batches(
        &self,
        sync: &mut Pipeline,
        rows: &mut RowCache,
        blocks: impl IntoIterator<Item = IndexedBlock>,
        progress: &mut impl FnMut(SyncProgress),
    ) -> Result<Option<(Batch, (Height, BlockHash))>> {
        let batch_bytes = (self.config.sync_write_batch_bytes / B::SYNC_BATCH_SHARE).max(1);
        // The tip including staged, uncommitted blocks.
        let mut staged_tip = *lock(&self.tip);
        let mut committed = self.store.begin_read()?;
        let mut batch = Batch::default();
        let mut blocks = blocks.into_iter();
        let mut ahead = VecDeque::new();
        let mut window = OutputsByOutpoint::new();
        loop {
            if ahead.is_empty() {
                let (mut inputs, mut items) = (0, 0);
                while ahead.len() < self.config.sync_read_ahead_blocks.max(1)
                    && inputs < WINDOW_INPUTS
                    && items < WINDOW_ITEMS
                {
                    let Some(block) = blocks.next() else { break };
                    let (block_inputs, block_items) = window_counts(&block);
                    inputs += block_inputs;
                    items += block_items;
                    ahead.push_back(block);
                }
                if ahead.is_empty() {
                    break;
                }
                // The previous window's map is freed before the next is built.
                drop(std::mem::take(&mut window));
                window = read_window_outputs(rows, &committed, &ahead)?;
            }
            let Some(block) = ahead.pop_front() else {
                break;
            };
            if self.check_existing(&block)?.is_some() {
                continue;
            }
            let height = self.check_append(&block, staged_tip)?;
            let earlier = Earlier {
                committed: &committed,
                committing: sync.committing.as_ref().map(|c| &*c.index),
            };
            batch.stage_block(rows, &window, &earlier, &block, height)?;
            let tip = (height, block.header.hash());
            staged_tip = Some(tip);
            if batch.bytes >= batch_bytes {
                if sync.committing.is_some() {
                    self.finish_commit(sync, progress)?;
                    committed = self.store.begin_read()?;
                }
                self.start_commit(sync, std::mem::take(&mut batch), tip)?;
            }
        }
        Ok(staged_tip
            .filter(|_| batch.blocks > 0)
            .map(|tip| (batch, tip)))
    }

    /// Hands `batch` (its last block `tip`) to the committer thread.
    fn start_commit(
        &self,
        sync: &mut Pipeline,
        batch: Batch,
        tip: (Height, BlockHash),
    ) -> Result<()> {
        let blocks = batch.blocks;
        let (index, writes) = batch.split();
        let index = Arc::new(index);
        if sync.to_commit.send((Arc::clone(&index), writes)).is_err() {
            return Err(committer_gone());
        }
        sync.committing = Some(Committing { index, blocks, tip });
        Ok(())
    }

    /// Waits for the committing batch, if any; once it is stored, moves the tip and reports
    /// it.
    fn finish_commit(
        &self,
        sync: &mut Pipeline,
        progress: &mut impl FnMut(SyncProgress),
    ) -> Result<()> {
        let Some(c) = sync.committing.take() else {
            return Ok(());
        };
        // No result means the committer panicked; joining it carries the panic on.
        sync.results.recv().map_err(|_| committer_gone())??;
        self.committed(sync, c.index.first, c.tip, c.blocks, progress);
        Ok(())
    }

    /// Moves the tip over a committed batch (`first` to `tip`) and reports it.
    fn committed(
        &self,
        sync: &mut Pipeline,
        first: Option<Height>,
        tip: (Height, BlockHash),
        blocks: u64,
        progress: &mut impl FnMut(SyncProgress),
    ) {
        *lock(&self.tip) = Some(tip);
        if let Some(first) = first {
            self.advance_validated(first, tip.0);
        }
        sync.committed += blocks;
        tracing::debug!(first = ?first, last = tip.0.0, blocks, "bulk batch committed");
        progress(SyncProgress {
            height: tip.0,
            blocks: sync.committed,
            elapsed: sync.started.elapsed(),
        });
    }

    /// Writes a staged batch in one transaction and commits it synced.
    fn commit_batch(&self, index: &BatchIndex, writes: BatchWrites) -> Result<()> {
        let mut w = self.store.begin_write()?;
        writes.write_into(&mut w, index)?;
        w.commit(Durability::Synced)
    }

    /// Records that `first..=last` passed the write path's checks. The validated tip only
    /// advances over a contiguous run from the bottom of the store.
    pub(crate) fn advance_validated(&self, first: Height, last: Height) {
        let mut v = lock(&self.validated_tip);
        let contiguous = match *v {
            Some(prev) => first.0 <= prev.0 + 1,
            None => first == self.config.start_height,
        };
        if contiguous && v.is_none_or(|prev| last > prev) {
            *v = Some(last);
        }
    }
}

impl<B: Backend> DbWrite for FinalisedState<B> {
    fn write_block(&self, block: IndexedBlock) -> Result<()> {
        self.require(Capability::WRITE_CORE)?;
        let mut rows = lock(&self.write_lock);
        let written = self.write_block_locked(&mut rows, block);
        if written.is_err() {
            // The cache may hold the row of a block that did not commit.
            rows.clear();
        }
        written
    }

    fn delete_block_at_height(&self, height: Height) -> Result<()> {
        self.require(Capability::WRITE_CORE)?;
        let mut rows = lock(&self.write_lock);
        let deleted = self.delete_block_locked(&mut rows, height);
        match deleted {
            // The row at `height` is gone; another block may take the height.
            Ok(()) => rows.forget(height.0),
            Err(_) => rows.clear(),
        }
        deleted
    }

    fn update_metadata(&self, metadata: DbMetadata) -> Result<()> {
        self.require(Capability::WRITE_CORE)?;
        let _guard = lock(&self.write_lock);
        let mut w = self.store.begin_write()?;
        w.put_row::<Metadata>(&METADATA_KEY, metadata)?;
        w.commit(Durability::Synced)
    }
}

impl<B: Backend> FinalisedState<B> {
    /// [`DbWrite::write_block`] under the write lock, reading rows through `rows`.
    fn write_block_locked(&self, rows: &mut RowCache, block: IndexedBlock) -> Result<()> {
        if self.check_existing(&block)?.is_some() {
            return Ok(());
        }
        let tip = *lock(&self.tip);
        let height = self.check_append(&block, tip)?;
        let mut w = self.store.begin_write()?;
        let mut acc = self.load_accumulator(&w, tip.map(|(h, _)| h))?;
        let mut batch = Batch::default();
        let earlier = Earlier {
            committed: &w,
            committing: None,
        };
        let spends =
            batch.stage_block(rows, &OutputsByOutpoint::new(), &earlier, &block, height)?;

        if let Some(acc) = acc.as_mut() {
            // Earlier transactions whose outputs this block spends: their counts before the
            // block come from the committed `spent` table (this block's rows are still
            // buffered in the batch).
            let earlier = group_by_txid(
                spends
                    .iter()
                    .filter(|(_, p)| p.location.block_height < height.0)
                    .map(|(op, p)| (op, p.location, p.output)),
            );
            for (txid, (location, removed)) in &earlier {
                let before = counted_unspent(rows, &w, txid, *location)?;
                acc.apply(&TxDelta {
                    txid: *txid,
                    counted_unspent_before: before,
                    added: &[],
                    removed,
                })
                .map_err(accumulator_error)?;
            }
            // This block's transactions: all outputs added, same-block spends removed.
            let same_block = group_by_txid(
                spends
                    .iter()
                    .filter(|(_, p)| p.location.block_height == height.0)
                    .map(|(op, p)| (op, p.location, p.output)),
            );
            for tx in &block.transactions {
                let added: Vec<(u32, TxOutCompact)> = tx
                    .transparent
                    .iter()
                    .flat_map(|t| t.vout.iter().enumerate().map(|(v, o)| (v as u32, *o)))
                    .collect();
                let removed = same_block
                    .get(&tx.txid)
                    .map(|(_, r)| r.as_slice())
                    .unwrap_or(&[]);
                acc.apply(&TxDelta {
                    txid: tx.txid,
                    counted_unspent_before: 0,
                    added: &added,
                    removed,
                })
                .map_err(accumulator_error)?;
            }
        }
        let (index, writes) = batch.split();
        writes.write_into(&mut w, &index)?;
        if let Some(acc) = acc {
            w.put_row::<TxOutSetAccumulator>(&ACCUMULATOR_KEY, acc.info())?;
            w.put_row::<MetadataHeights>(&ACCUMULATOR_BUILT_HEIGHT_KEY, height)?;
        }
        w.commit(Durability::Synced)?;
        *lock(&self.tip) = Some((height, block.header.hash()));
        self.advance_validated(height, height);
        tracing::debug!(height = height.0, "block written");
        Ok(())
    }

    /// [`DbWrite::delete_block_at_height`] under the write lock, reading rows through `rows`.
    fn delete_block_locked(&self, rows: &mut RowCache, height: Height) -> Result<()> {
        let tip = *lock(&self.tip);
        let Some((tip_height, _)) = tip else {
            return Err(Error::NotAvailable {
                what: format!("block {height}: the store is empty"),
            });
        };
        if height != tip_height {
            return Err(Error::NotAvailable {
                what: format!("block {height}: only the tip ({tip_height}) can be deleted"),
            });
        }
        let mut w = self.store.begin_write()?;
        let header = w
            .get_row::<Headers>(&height)?
            .ok_or_else(|| Error::Corrupt {
                table: Headers::NAME,
                key: hex::encode(height.encode_key()),
                height: Some(height.0),
                reason: "the tip's header row is missing".to_owned(),
            })?;
        let txids = Self_::txids_at(&w, height)?;
        let transparent = w.get_row::<Transparent>(&height)?.unwrap_or_default();
        let mut acc = self.load_accumulator(&w, Some(height))?;

        // The accumulator first, while the block's spent rows are still there.
        if let Some(acc) = acc.as_mut() {
            let mut spent_earlier: Vec<(Outpoint, TxLocation, TxOutCompact)> = Vec::new();
            for tx in transparent.0.iter().flatten() {
                for input in &tx.vin {
                    let Some(op) = input.outpoint() else { continue };
                    let location = w.get_row::<TxidLocation>(&op.prev_txid)?.ok_or_else(|| {
                        Error::Corrupt {
                            table: TxidLocation::NAME,
                            key: hex::encode(op.prev_txid.0),
                            height: Some(height.0),
                            reason: "an input of the tip spends a transaction with no location"
                                .to_owned(),
                        }
                    })?;
                    if location.block_height < height.0 {
                        let out = rows.output(&w, location, op.prev_index)?.ok_or_else(|| {
                            Error::Corrupt {
                                table: Transparent::NAME,
                                key: hex::encode(Height(location.block_height).encode_key()),
                                height: Some(location.block_height),
                                reason: format!(
                                    "output {}:{} spent by the tip is missing",
                                    op.prev_txid, op.prev_index
                                ),
                            }
                        })?;
                        spent_earlier.push((op, location, out));
                    }
                }
            }
            let earlier = group_by_txid(spent_earlier.iter().map(|(op, l, o)| (op, *l, *o)));
            for (txid, (location, restored)) in &earlier {
                let before = counted_unspent(rows, &w, txid, *location)?;
                acc.apply(&TxDelta {
                    txid: *txid,
                    counted_unspent_before: before,
                    added: restored,
                    removed: &[],
                })
                .map_err(accumulator_error)?;
            }
            for (i, tx) in transparent.0.iter().enumerate() {
                let Some(tx) = tx else { continue };
                let txid = txids.0[i];
                let mut unspent = Vec::new();
                for (vout, out) in tx.vout.iter().enumerate() {
                    let op = Outpoint {
                        prev_txid: txid,
                        prev_index: vout as u32,
                    };
                    if w.get_row::<Spent>(&op)?.is_none() {
                        unspent.push((vout as u32, *out));
                    }
                }
                let before = unspent
                    .iter()
                    .filter(|(_, o)| accumulator::is_counted(o))
                    .count() as u64;
                acc.apply(&TxDelta {
                    txid,
                    counted_unspent_before: before,
                    added: &[],
                    removed: &unspent,
                })
                .map_err(accumulator_error)?;
            }
        }

        // Address history: undo flips and inputs, then remove the block's outputs.
        for (i, tx) in transparent.0.iter().enumerate() {
            let Some(tx) = tx else { continue };
            let location = TxLocation {
                block_height: height.0,
                tx_index: i as u16,
            };
            for (input_index, input) in tx.vin.iter().enumerate() {
                let Some(op) = input.outpoint() else { continue };
                let Some(prev_location) = w.get_row::<TxidLocation>(&op.prev_txid)? else {
                    continue;
                };
                let Some(out) = rows.output(&w, prev_location, op.prev_index)? else {
                    continue;
                };
                if !out.script_type.is_spendable() {
                    continue;
                }
                let addr = out.addr_script();
                let mined = AddrEvent {
                    tx_location: prev_location,
                    index: op.prev_index as u16,
                    flags: AddrEvent::MINED,
                    value: out.value,
                };
                let (k, v) = addr_row(
                    &addr,
                    AddrEvent {
                        flags: AddrEvent::MINED | AddrEvent::SPENT,
                        ..mined
                    },
                );
                w.delete_dup(AddressHistory::NAME, &k, &v)?;
                let (k, v) = addr_row(
                    &addr,
                    AddrEvent {
                        tx_location: location,
                        index: input_index as u16,
                        flags: AddrEvent::MINED | AddrEvent::IS_INPUT,
                        value: out.value,
                    },
                );
                w.delete_dup(AddressHistory::NAME, &k, &v)?;
                if prev_location.block_height < height.0 {
                    let (k, v) = addr_row(&addr, mined);
                    w.put(AddressHistory::NAME, &k, &v)?;
                }
                w.delete_row::<Spent>(&op)?;
            }
            for (vout, out) in tx.vout.iter().enumerate() {
                if out.script_type.is_spendable() {
                    let (k, v) = addr_row(
                        &out.addr_script(),
                        AddrEvent {
                            tx_location: location,
                            index: vout as u16,
                            flags: AddrEvent::MINED,
                            value: out.value,
                        },
                    );
                    w.delete_dup(AddressHistory::NAME, &k, &v)?;
                }
            }
        }
        for txid in &txids.0 {
            w.delete_row::<TxidLocation>(txid)?;
        }
        w.delete_row::<Heights>(&header.hash())?;
        for table in [
            Headers::NAME,
            Txids::NAME,
            Transparent::NAME,
            Sapling::NAME,
            Orchard::NAME,
            CommitmentTree::NAME,
        ] {
            w.delete(table, &height.encode_key())?;
        }
        let new_tip = if height.0 > self.config.start_height.0 && height.0 > 0 {
            let h = Height(height.0 - 1);
            w.get_row::<Headers>(&h)?.map(|hd| (h, hd.hash()))
        } else {
            None
        };
        match (acc, new_tip) {
            (Some(acc), Some((h, _))) => {
                w.put_row::<TxOutSetAccumulator>(&ACCUMULATOR_KEY, acc.info())?;
                w.put_row::<MetadataHeights>(&ACCUMULATOR_BUILT_HEIGHT_KEY, h)?;
            }
            (_, None) => {
                // An empty store has no accumulator, as a new one does not.
                w.delete_row::<TxOutSetAccumulator>(&ACCUMULATOR_KEY)?;
                w.delete_row::<MetadataHeights>(&ACCUMULATOR_BUILT_HEIGHT_KEY)?;
            }
            (None, Some(_)) => {}
        }
        w.commit(Durability::Synced)?;
        *lock(&self.tip) = new_tip;
        let mut v = lock(&self.validated_tip);
        if v.is_some_and(|v| v >= height) {
            *v = new_tip.map(|(h, _)| h);
        }
        tracing::info!(height = height.0, "tip block deleted");
        Ok(())
    }
}

#[cfg(all(test, feature = "redb"))]
mod tests {
    use super::*;
    use storage_traits::conformance::dump_tables;
    use storage_traits::kv::KvStore;

    /// The batch budget counts address-history rows at their encoded size.
    #[test]
    fn addr_row_len_is_the_encoded_size() {
        let addr = AddrScript {
            hash: [3; 20],
            script_type: ScriptType::P2pkh,
        };
        let event = AddrEvent {
            tx_location: TxLocation {
                block_height: 7,
                tx_index: 1,
            },
            index: 2,
            flags: AddrEvent::MINED,
            value: 5,
        };
        let (k, v) = addr_row(&addr, event);
        assert_eq!(addr_row_len(), k.len() + v.len());
    }

    /// Sorting pairs by `addr_byte_order` sorts their encoded rows bytewise, the order the
    /// flush writes them in (fields chosen to collide, so every tie-break is exercised).
    #[test]
    fn addr_byte_order_is_the_encoded_order() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut pairs = Vec::new();
        for _ in 0..2_000 {
            let addr = AddrScript {
                hash: [next(3) as u8; 20],
                script_type: [ScriptType::P2pkh, ScriptType::P2sh, ScriptType::NonStandard]
                    [next(3) as usize],
            };
            let event = AddrEvent {
                tx_location: TxLocation {
                    block_height: next(3) as u32 * 0x0100_0001,
                    tx_index: next(3) as u16 * 0x0101,
                },
                index: next(3) as u16 * 0x00FF,
                flags: [AddrEvent::MINED, AddrEvent::MINED | AddrEvent::SPENT][next(2) as usize],
                value: next(3) * 0x00FF_0000_0000_01FF,
            };
            pairs.push((addr, event));
        }
        pairs.sort_unstable();
        pairs.dedup();
        let mut typed = pairs.clone();
        typed.sort_unstable_by_key(addr_byte_order);
        let typed: Vec<_> = typed.iter().map(|(a, e)| addr_row(a, *e)).collect();
        let mut encoded: Vec<_> = pairs.iter().map(|(a, e)| addr_row(a, *e)).collect();
        encoded.sort_unstable();
        assert_eq!(typed, encoded);
    }

    /// Bulk sync stages a batch while the previous one commits: everything the second batch
    /// needs from the first (its outputs and rows, txids, spends) must come from the
    /// committing batch's index, since the committed tables do not have it yet. Staged here
    /// against an empty store with a zero-byte cache, so nothing can come from elsewhere;
    /// the two batches committed in turn equal one batch of all the blocks.
    #[test]
    fn a_batch_stages_against_the_committing_one() {
        let mut cfg = fixtures::SynthConfig::new(60, 9);
        cfg.spam_band = None;
        let blocks: Vec<IndexedBlock> = fixtures::synth_chain(&cfg).collect();
        let (head, tail) = blocks.split_at(30);
        let stage = |batch: &mut Batch, earlier: &Earlier<'_, _>, blocks: &[IndexedBlock]| {
            let mut cache = RowCache::with_byte_cap(0);
            for b in blocks {
                let height = b.header.height().unwrap();
                batch.stage_block(&mut cache, &OutputsByOutpoint::new(), earlier, b, height)?;
            }
            Ok::<_, Error>(())
        };
        // `block` with `change` made to its last transaction (the merkle root follows).
        let altered = |block: &IndexedBlock, change: &dyn Fn(&mut IndexedTx)| {
            let mut block = block.clone();
            change(block.transactions.last_mut().unwrap());
            let root = block.computed_merkle_root();
            if let BlockHeaderData::V2 { data, .. } = &mut block.header {
                data.merkle_root = root;
            }
            block
        };
        let inputs = |blocks: &[IndexedBlock]| -> Vec<TxInCompact> {
            blocks
                .iter()
                .flat_map(|b| &b.transactions)
                .filter_map(|t| t.transparent.as_ref())
                .flat_map(|t| t.vin.iter().copied())
                .filter(|i| i.outpoint().is_some())
                .collect()
        };
        let head_txids: std::collections::HashSet<TxId> = head
            .iter()
            .flat_map(|b| &b.transactions)
            .map(|t| t.txid)
            .collect();
        assert!(
            inputs(tail)
                .iter()
                .any(|i| head_txids.contains(&i.prevout_txid)),
            "the tail must spend outputs of the head"
        );

        let dir = tempfile::tempdir().unwrap();
        let pipelined = store_redb::RedbStore::open(dir.path(), V1_TABLES).unwrap();
        let snapshot = pipelined.begin_read().unwrap();
        let alone = Earlier {
            committed: &snapshot,
            committing: None,
        };
        let mut first = Batch::default();
        stage(&mut first, &alone, head).unwrap();
        let (first_index, first_writes) = first.split();
        let after_first = Earlier {
            committed: &snapshot,
            committing: Some(&first_index),
        };
        let mut second = Batch::default();
        stage(&mut second, &after_first, tail).unwrap();

        // What the committing batch holds is refused: a spend of an output it spent, a
        // transaction id it stored.
        let spent_in_head = *inputs(head).last().expect("the head spends");
        let double_spend = altered(&tail[0], &|tx| {
            tx.transparent
                .get_or_insert_with(Default::default)
                .vin
                .push(spent_in_head);
            tx.txid = TxId([0xAB; 32]);
        });
        let err = stage(&mut Batch::default(), &after_first, &[double_spend]).unwrap_err();
        assert!(err.to_string().contains("already spent"), "{err}");
        let reused_txid = altered(&tail[0], &|tx| tx.txid = head[29].transactions[0].txid);
        let err = stage(&mut Batch::default(), &after_first, &[reused_txid]).unwrap_err();
        assert!(err.to_string().contains("already stored"), "{err}");

        drop(snapshot);
        let (second_index, second_writes) = second.split();
        for (index, writes) in [(first_index, first_writes), (second_index, second_writes)] {
            let mut w = pipelined.begin_write().unwrap();
            writes.write_into(&mut w, &index).unwrap();
            w.commit(Durability::Synced).unwrap();
        }

        let dir = tempfile::tempdir().unwrap();
        let single = store_redb::RedbStore::open(dir.path(), V1_TABLES).unwrap();
        let snapshot = single.begin_read().unwrap();
        let mut all = Batch::default();
        let alone = Earlier {
            committed: &snapshot,
            committing: None,
        };
        stage(&mut all, &alone, &blocks).unwrap();
        drop(snapshot);
        let (index, writes) = all.split();
        let mut w = single.begin_write().unwrap();
        writes.write_into(&mut w, &index).unwrap();
        w.commit(Durability::Synced).unwrap();
        assert_eq!(
            dump_tables(&pipelined, V1_TABLES),
            dump_tables(&single, V1_TABLES)
        );
    }

    /// Regression: with spam-sized blocks the cache evicted the block being staged while
    /// its inputs were resolving, and a spend of an output of the same block was reported
    /// as corruption. A zero-byte cache holds nothing, so every lookup reads the tables.
    #[test]
    fn same_block_spends_resolve_with_an_evicting_cache() {
        let mut cfg = fixtures::SynthConfig::new(40, 5);
        cfg.spam_band = None;
        cfg.mix.same_block_spend_percent = 100;
        let blocks: Vec<IndexedBlock> = fixtures::synth_chain(&cfg).collect();
        let same_block_spends = blocks.iter().any(|b| {
            let txids: std::collections::HashSet<TxId> =
                b.transactions.iter().map(|t| t.txid).collect();
            b.transactions
                .iter()
                .filter_map(|t| t.transparent.as_ref())
                .flat_map(|t| &t.vin)
                .any(|i| txids.contains(&i.prevout_txid))
        });
        assert!(same_block_spends, "the chain must spend within blocks");
        let dir = tempfile::tempdir().unwrap();
        let store = store_redb::RedbStore::open(dir.path(), V1_TABLES).unwrap();
        let mut w = store.begin_write().unwrap();
        let mut batch = Batch::default();
        let mut cache = RowCache::with_byte_cap(0);
        let earlier = Earlier {
            committed: &w,
            committing: None,
        };
        for (h, b) in blocks.iter().enumerate() {
            batch
                .stage_block(
                    &mut cache,
                    &OutputsByOutpoint::new(),
                    &earlier,
                    b,
                    Height(h as u32),
                )
                .unwrap();
        }
        let (index, writes) = batch.split();
        writes.write_into(&mut w, &index).unwrap();
    }
}
