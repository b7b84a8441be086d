//! v1.1.0 → v1.2.0: one re-entrant step in three stages, in place.
//!
//! - **A** (`txid_location`): scans `txids` from the first stored height to the tip and
//!   writes `txid → StoredEntryFixed<TxLocation>`.
//! - **B** (`spent`): scans `transparent` and writes `Outpoint → StoredEntryFixed<TxLocation>`
//!   for every non-null input.
//! - **C** (accumulator): rebuilds `tx_out_set_info_accumulator` in bulk from `transparent`
//!   + `spent`, never trusting a stored one, and finishes the step.
//!
//! Stages A and B buffer their rows, sort them by key bytes and insert them in batches
//! bounded by `write_batch_bytes` (`key_len + 64` bytes counted per entry). Each batch
//! commits its rows together with the stage's progress watermark (the next height to
//! process, `StoredEntryFixed<Height>` in the metadata table) in one synced transaction, so
//! the watermark never passes committed data and a crash re-does at most one batch. The
//! CPU work of a batch (verifying the source rows, sorting, computing the entries'
//! checksums) runs on worker threads beside the reads and writes: see `batch.rs`.
//!
//! Existing entries (a resumed run, a store built by the v0 → v1 shadow, a partial earlier
//! migration) are accepted after their checksum verifies and their `TxLocation` matches;
//! a corrupt one fails with the checksum error, a different one with
//! [`MigrationError::Conflict`]. When a stage starts on a table holding exactly the rows
//! it committed itself (row count = entries implied by the heights below its watermark),
//! nothing foreign can be in the way and it inserts without the per-key check; the row
//! count is checked again at the end of the stage, and a mismatch triggers a full
//! verification pass that names the offending key.
//!
//! Stage C commits the accumulator, its watermark (the tip), version 1.2.0 with status
//! `Empty`, and the deletion of both progress keys in one synced transaction: the step is
//! done exactly when that commit lands.

use std::time::Instant;

use storage_traits::codec::{Reader, version};
use storage_traits::kv::{Direction, KeyRange, KvRead, KvStore, KvWrite};
use storage_traits::model::*;
use storage_traits::table::*;
use storage_traits::{
    Durability, StoredEntry, StoredEntryFixed, TableKey, TableRead, TableWrite, blake2b256,
};

use crate::error::{MigrationError, Result};
use crate::framework::*;
use crate::rebuild::commitment_from_tables;
use crate::schema::{V1_1_0, V1_2_0, schema_hash_for};

mod batch;

/// The v1.1.0 → v1.2.0 step.
#[derive(Clone, Copy, Debug, Default)]
pub struct V1_1ToV1_2;

/// Per-entry overhead the batch budget counts on top of the key, as the reference does.
const ENTRY_ESTIMATE: usize = 64;

/// The stored height range, `None` for an empty store.
pub(crate) fn stored_range(r: &impl KvRead) -> Result<Option<(Height, Height)>> {
    let first = r
        .rows::<Headers>(KeyRange::all(), Direction::Forward)?
        .next();
    let last = r
        .rows::<Headers>(KeyRange::all(), Direction::Reverse)?
        .next();
    match (first, last) {
        (Some(f), Some(l)) => Ok(Some((f?.0, l?.0))),
        _ => Ok(None),
    }
}

/// The longest index key (an outpoint key, 37 bytes); shorter keys are zero-padded, which
/// keeps the byte order of their significant prefix.
const MAX_KEY: usize = 37;

/// An index entry: key bytes (the first `key_len` of the array) and the location.
type Entry = ([u8; MAX_KEY], TxLocation);

/// Appends the entries implied by one verified source row (its item bytes, tag included).
type EntriesFn = fn(Height, &[u8], &mut Vec<Entry>) -> storage_traits::Result<()>;

/// One index stage (A or B): where its entries come from and where they go.
struct IndexStage {
    stage: Stage,
    /// The source table (`txids_1_0_0` or `transparent_1_0_0`), keyed by height.
    source: &'static str,
    /// The source's item type, for errors.
    source_type: &'static str,
    /// The destination table (`txid_location_1_0_0` or `spent_1_0_0`).
    table: &'static str,
    key_len: usize,
    /// The first key byte that differs between entries (the bytes before it are the same
    /// in every key of the stage): where a txid starts. Splits a batch into key ranges.
    spread_byte: usize,
    progress_key: NamedKey,
    entries: EntriesFn,
}

/// Stage A.
const TXID_LOCATION_STAGE: IndexStage = IndexStage {
    stage: Stage::TxidLocation,
    source: Txids::NAME,
    source_type: "TxidList",
    table: TxidLocation::NAME,
    key_len: 32,
    spread_byte: 0,
    progress_key: MIGRATION_TXID_LOCATION_PROGRESS_KEY,
    entries: txid_location_entries,
};

/// Stage B.
const SPENT_STAGE: IndexStage = IndexStage {
    stage: Stage::Spent,
    source: Transparent::NAME,
    source_type: "TransparentTxList",
    table: Spent::NAME,
    key_len: 37,
    // After the `Outpoint` key's version tag.
    spread_byte: 1,
    progress_key: MIGRATION_SPENT_PROGRESS_KEY,
    entries: spent_entries,
};

/// The item bytes and stored checksum of a `StoredEntryVar` row, its framing checked (the
/// checksum is not: see [`verified_var_item`]).
fn split_var_entry<'v>(
    table: &'static str,
    key: &[u8],
    height: Height,
    value: &'v [u8],
) -> storage_traits::Result<(&'v [u8], [u8; 32])> {
    let corrupt = |reason: String| storage_traits::Error::Corrupt {
        table,
        key: hex::encode(key),
        height: Some(height.0),
        reason,
    };
    storage_traits::entry::split_var(value, "StoredEntryVar").map_err(|e| corrupt(e.to_string()))
}

/// The item bytes of a `StoredEntryVar` row, after its checksum verified against `key`.
///
/// The same check as `StoredEntry::verify`, on the stored bytes instead of a re-encoding
/// of the decoded item (the encodings are canonical, so the two agree), so a scan does not
/// build and re-serialise every block's lists just to hash them.
fn verified_var_item<'v>(
    table: &'static str,
    key: &[u8],
    height: Height,
    value: &'v [u8],
) -> storage_traits::Result<&'v [u8]> {
    let (item, checksum) = split_var_entry(table, key, height, value)?;
    if blake2b256(&[key, item]) != checksum {
        return Err(storage_traits::Error::ChecksumMismatch {
            table,
            key: hex::encode(key),
            height: Some(height.0),
        });
    }
    Ok(item)
}

fn expect_tag(r: &mut Reader<'_>, what: &str) -> storage_traits::Result<()> {
    match r.u8()? {
        version::V1 => Ok(()),
        other => Err(r.error(format!("{what}: unsupported version tag {other}"))),
    }
}

/// Stage A: `TxidList` v1 item bytes (`CompactSize n, n x TxId(tagged)`) to entries.
fn txid_location_entries(
    height: Height,
    item: &[u8],
    out: &mut Vec<Entry>,
) -> storage_traits::Result<()> {
    let mut r = Reader::new(item, "TxidList");
    expect_tag(&mut r, "TxidList")?;
    let n = r.count(33)?;
    for i in 0..n {
        expect_tag(&mut r, "TxId")?;
        let txid: [u8; 32] = r.array()?;
        let mut key = [0u8; MAX_KEY];
        key[..32].copy_from_slice(&txid);
        out.push((
            key,
            TxLocation {
                block_height: height.0,
                tx_index: i as u16,
            },
        ));
    }
    r.finish()
}

/// Stage B: `TransparentTxList` v1 item bytes to one entry per non-null input.
///
/// A row almost always takes [`spent_entries_fast`]; anything it does not take (a
/// multi-byte count, a bad tag, a short or long item) goes through the checked walker,
/// which accepts it or names the error.
fn spent_entries(height: Height, item: &[u8], out: &mut Vec<Entry>) -> storage_traits::Result<()> {
    let before = out.len();
    if spent_entries_fast(height, item, out) {
        return Ok(());
    }
    out.truncate(before);
    spent_entries_checked(height, item, out)
}

/// A CompactSize count below 0xFD (one byte) of items that each take at least `min_len`
/// bytes, if the rest of `bytes` can hold them; `None` otherwise (a larger count, or an
/// error of [`Reader::count`]).
fn small_count(bytes: &mut &[u8], min_len: usize) -> Option<usize> {
    let (&n, rest) = bytes.split_first()?;
    if n >= 0xFD || usize::from(n) * min_len > rest.len() {
        return None;
    }
    *bytes = rest;
    Some(usize::from(n))
}

/// [`spent_entries_checked`] on plain slices, for the common rows (every count below
/// 0xFD): `true` with the same entries appended, or `false` (entries possibly appended,
/// for the caller to drop) where the checked walker must decide. Whatever it accepts the
/// checked walker accepts with the same entries (`spent_walkers_agree` checks it).
fn spent_entries_fast(height: Height, item: &[u8], out: &mut Vec<Entry>) -> bool {
    const INPUT: usize = 37;
    const OUTPUT: usize = 30;
    let null_index = TxInCompact::NULL_INDEX.to_le_bytes();
    let Some((&version::V1, mut b)) = item.split_first() else {
        return false;
    };
    let Some(n) = small_count(&mut b, 1) else {
        return false;
    };
    for i in 0..n {
        let Some((&option, rest)) = b.split_first() else {
            return false;
        };
        b = rest;
        match option {
            0 => continue,
            1 => {}
            _ => return false,
        }
        let Some((&version::V1, rest)) = b.split_first() else {
            return false;
        };
        b = rest;
        let location = TxLocation {
            block_height: height.0,
            tx_index: i as u16,
        };
        let Some(vin) = small_count(&mut b, INPUT) else {
            return false;
        };
        let (inputs, rest) = b.split_at(vin * INPUT);
        b = rest;
        for input in inputs.chunks_exact(INPUT) {
            if input[0] != version::V1 {
                return false;
            }
            // `input[1..]` is the outpoint: txid, LE u32 index.
            if input[1..33] == [0; 32] && input[33..] == null_index {
                continue;
            }
            let mut key = [0u8; MAX_KEY];
            key[0] = version::V1;
            key[1..].copy_from_slice(&input[1..]);
            out.push((key, location));
        }
        let Some(vout) = small_count(&mut b, OUTPUT) else {
            return false;
        };
        let (outputs, rest) = b.split_at(vout * OUTPUT);
        b = rest;
        if outputs.chunks_exact(OUTPUT).any(|o| o[0] != version::V1) {
            return false;
        }
    }
    b.is_empty()
}

/// Stage B's walker with every check and a decoding error naming what is wrong.
fn spent_entries_checked(
    height: Height,
    item: &[u8],
    out: &mut Vec<Entry>,
) -> storage_traits::Result<()> {
    let mut r = Reader::new(item, "TransparentTxList");
    expect_tag(&mut r, "TransparentTxList")?;
    let n = r.count(1)?;
    for i in 0..n {
        match r.u8()? {
            0 => continue,
            1 => {}
            other => return Err(r.error(format!("option tag {other}"))),
        }
        expect_tag(&mut r, "TransparentCompactTx")?;
        let location = TxLocation {
            block_height: height.0,
            tx_index: i as u16,
        };
        let vin = r.count(37)?;
        for _ in 0..vin {
            expect_tag(&mut r, "TxInCompact")?;
            let txid: [u8; 32] = r.array()?;
            let index = r.u32_le()?;
            if txid == [0; 32] && index == TxInCompact::NULL_INDEX {
                continue;
            }
            // The `Outpoint` key: 0x01 || txid || LE u32 index.
            let mut key = [0u8; MAX_KEY];
            key[0] = version::V1;
            key[1..33].copy_from_slice(&txid);
            key[33..37].copy_from_slice(&index.to_le_bytes());
            out.push((key, location));
        }
        let vout = r.count(30)?;
        for _ in 0..vout {
            expect_tag(&mut r, "TxOutCompact")?;
            r.take(29)?;
        }
    }
    r.finish()
}

/// The tagged `TxLocation` item: `[0x01 tag, BE u32 height, BE u16 index]`. Its stored
/// entry is `[0x01] item [BLAKE2b-256(key ‖ item)]` (`batch::location_values`).
fn location_item(loc: TxLocation) -> [u8; 7] {
    let mut item = [0u8; 7];
    item[0] = version::V1;
    item[1..5].copy_from_slice(&loc.block_height.to_be_bytes());
    item[5..7].copy_from_slice(&loc.tx_index.to_be_bytes());
    item
}

impl<S: KvStore> Migration<S> for V1_1ToV1_2 {
    fn from(&self) -> DbVersion {
        V1_1_0
    }

    fn to(&self) -> DbVersion {
        V1_2_0
    }

    fn kind(&self) -> MigrationKind {
        MigrationKind::Minor
    }

    fn name(&self) -> &'static str {
        "txid_location + spent + accumulator"
    }

    fn run(&self, ctx: &mut MigrationContext<'_, S>) -> Result<()> {
        let store = ctx.store;
        let meta = read_metadata(&store.begin_read()?)?.ok_or(MigrationError::NoMetadata)?;
        let range = stored_range(&store.begin_read()?)?;
        if meta.migration_status == MigrationStatus::Empty {
            if Some(meta.schema_hash) != schema_hash_for(V1_1_0) {
                tracing::warn!(
                    recorded = %hex::encode(meta.schema_hash),
                    "the store's schema hash is not the v1.1.0 one; migrating anyway"
                );
            }
            write_metadata(
                store,
                DbMetadata {
                    migration_status: MigrationStatus::PartialBuildInProgress,
                    ..meta
                },
            )?;
        } else {
            tracing::info!(status = ?meta.migration_status, "resuming an interrupted v1.1.0 -> v1.2.0 migration");
        }
        if let Some((first, tip)) = range {
            run_index_stage(ctx, &TXID_LOCATION_STAGE, first, tip)?;
            run_index_stage(ctx, &SPENT_STAGE, first, tip)?;
        }
        run_accumulator_stage(ctx, range.map(|(_, tip)| tip))
    }
}

fn report<S: KvStore>(
    ctx: &mut MigrationContext<'_, S>,
    stage: Stage,
    event: ProgressEvent,
    height: Option<Height>,
    tip: Option<Height>,
    started: Instant,
) {
    ctx.report(MigrationProgress {
        from: V1_1_0,
        to: V1_2_0,
        stage,
        event,
        height,
        tip,
        elapsed: started.elapsed(),
    });
}

/// Walks the verified source rows of `range` in height order, appending each row's
/// entries to `out` and calling `row_done` after each row with its height.
fn scan_rows(
    r: &impl KvRead,
    spec: &IndexStage,
    range: KeyRange,
    out: &mut Vec<Entry>,
    mut row_done: impl FnMut(Height, &mut Vec<Entry>) -> Result<bool>,
) -> Result<()> {
    for row in r.range(spec.source, range, Direction::Forward)? {
        let (k, v) = row?;
        let height = Height::decode_key(&k).map_err(|e| storage_traits::Error::Corrupt {
            table: spec.source,
            key: hex::encode(&k),
            height: None,
            reason: e.to_string(),
        })?;
        let item = verified_var_item(spec.source, &k, height, &v)?;
        (spec.entries)(height, item, out).map_err(|e| storage_traits::Error::Corrupt {
            table: spec.source,
            key: hex::encode(&k),
            height: Some(height.0),
            reason: format!("{}: {e}", spec.source_type),
        })?;
        if !row_done(height, out)? {
            break;
        }
    }
    Ok(())
}

/// Entries implied by the source rows of `[from, to)`.
fn count_entries(r: &impl KvRead, spec: &IndexStage, from: Height, to: Height) -> Result<u64> {
    if from >= to {
        return Ok(0);
    }
    let mut n = 0u64;
    let mut buf = Vec::new();
    scan_rows(
        r,
        spec,
        KeyRange::half_open(from.encode_key(), to.encode_key()),
        &mut buf,
        |_, buf| {
            n += buf.len() as u64;
            buf.clear();
            Ok(true)
        },
    )?;
    Ok(n)
}

/// Checks one expected entry against the store: absent → `Ok(false)`, present and equal
/// → `Ok(true)`, corrupt → the checksum/decode error, different → `Conflict`.
fn check_existing(
    r: &impl KvRead,
    table: &'static str,
    key: &[u8],
    expected: TxLocation,
) -> Result<bool> {
    let Some(bytes) = r.get(table, key)? else {
        return Ok(false);
    };
    let corrupt = |reason: String| storage_traits::Error::Corrupt {
        table,
        key: hex::encode(key),
        height: Some(expected.block_height),
        reason,
    };
    let entry = StoredEntryFixed::<TxLocation>::from_bytes(&bytes)
        .map_err(|e| corrupt(format!("undecodable existing entry: {e}")))?;
    if !entry.verify(key) {
        return Err(storage_traits::Error::ChecksumMismatch {
            table,
            key: hex::encode(key),
            height: Some(expected.block_height),
        }
        .into());
    }
    let stored = *entry.item();
    if stored != expected {
        return Err(MigrationError::Conflict {
            table,
            key: hex::encode(key),
            height: expected.block_height,
            stored,
            expected,
        });
    }
    Ok(true)
}

fn run_index_stage<S: KvStore>(
    ctx: &mut MigrationContext<'_, S>,
    spec: &IndexStage,
    first: Height,
    tip: Height,
) -> Result<()> {
    let store = ctx.store;
    let started = Instant::now();
    let snap = store.begin_read()?;
    let next0 = snap
        .get_row::<MetadataHeights>(&spec.progress_key)?
        .unwrap_or(first)
        .max(first);
    if next0 > tip {
        report(
            ctx,
            spec.stage,
            ProgressEvent::Finished,
            Some(next0),
            Some(tip),
            started,
        );
        return Ok(());
    }
    report(
        ctx,
        spec.stage,
        ProgressEvent::Started,
        Some(next0),
        Some(tip),
        started,
    );
    let committed_before = count_entries(&snap, spec, first, next0)?;
    let present = snap.len(spec.table)?;
    // Only this stage's own committed rows in the table: nothing foreign can be in the
    // way of the rows still to write, so they go in without a per-key check.
    let fast = present == committed_before;
    tracing::debug!(
        stage = spec.stage.name(),
        present,
        committed_before,
        fast,
        "index stage resumes"
    );
    drop(snap);
    let mut expected_total = committed_before;
    let mut next = next0;
    while next <= tip {
        let done = batch::run_batch(ctx, spec, next, tip, fast, started)?;
        expected_total += done.entries;
        next = done.next;
        report(
            ctx,
            spec.stage,
            ProgressEvent::Progress,
            Some(next),
            Some(tip),
            started,
        );
    }
    let found = store.begin_read()?.len(spec.table)?;
    if found != expected_total {
        // Find the key that explains it: a duplicate overwritten on the unchecked path, or
        // a missing entry; else it is a foreign one.
        verify_stage(store, spec, first, tip)?;
        return Err(MigrationError::CountMismatch {
            table: spec.table,
            stage: spec.stage.name(),
            found,
            expected: expected_total,
        });
    }
    report(
        ctx,
        spec.stage,
        ProgressEvent::Finished,
        Some(next),
        Some(tip),
        started,
    );
    Ok(())
}

/// Checks every entry of `[first, tip]` against the table (the slow path, used to name the
/// key behind a row-count mismatch).
fn verify_stage<S: KvStore>(
    store: &S,
    spec: &IndexStage,
    first: Height,
    tip: Height,
) -> Result<()> {
    let r = store.begin_read()?;
    let mut buf = Vec::new();
    scan_rows(
        &r,
        spec,
        KeyRange::inclusive(first.encode_key(), tip.encode_key()),
        &mut buf,
        |h, buf| {
            for (k, loc) in buf.drain(..) {
                let k = &k[..spec.key_len];
                if !check_existing(&r, spec.table, k, loc)? {
                    return Err(MigrationError::MissingEntry {
                        table: spec.table,
                        key: hex::encode(k),
                        height: h.0,
                    });
                }
            }
            Ok(true)
        },
    )
}

/// Stage C: rebuilds the accumulator from `transparent` + `spent` and finishes the step in
/// one synced transaction.
fn run_accumulator_stage<S: KvStore>(
    ctx: &mut MigrationContext<'_, S>,
    tip: Option<Height>,
) -> Result<()> {
    let store = ctx.store;
    let started = Instant::now();
    report(
        ctx,
        Stage::Accumulator,
        ProgressEvent::Started,
        None,
        tip,
        started,
    );
    let every = ctx.options.progress_every_heights;
    let memory = ctx.options.write_batch_bytes;
    let mut w = store.begin_write()?;
    match tip {
        Some(tip) => {
            let acc: accumulator::Accumulator =
                commitment_from_tables(&w, memory, every, &mut |h| {
                    report(
                        ctx,
                        Stage::Accumulator,
                        ProgressEvent::Progress,
                        Some(h),
                        Some(tip),
                        started,
                    )
                })?;
            w.put_row::<TxOutSetAccumulator>(&ACCUMULATOR_KEY, acc.info())?;
            w.put_row::<MetadataHeights>(&ACCUMULATOR_BUILT_HEIGHT_KEY, tip)?;
        }
        None => {
            // An empty store has no accumulator, as a new one does not.
            w.delete_row::<TxOutSetAccumulator>(&ACCUMULATOR_KEY)?;
            w.delete_row::<MetadataHeights>(&ACCUMULATOR_BUILT_HEIGHT_KEY)?;
        }
    }
    w.put_row::<Metadata>(
        &METADATA_KEY,
        DbMetadata {
            version: V1_2_0,
            schema_hash: storage_traits::table::schema_hash(),
            migration_status: MigrationStatus::Empty,
        },
    )?;
    w.delete_row::<MetadataHeights>(&MIGRATION_TXID_LOCATION_PROGRESS_KEY)?;
    w.delete_row::<MetadataHeights>(&MIGRATION_SPENT_PROGRESS_KEY)?;
    w.commit(Durability::Synced)?;
    report(
        ctx,
        Stage::Accumulator,
        ProgressEvent::Finished,
        tip.map(|t| Height(t.0 + 1)),
        tip,
        started,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_traits::Versioned;

    fn blocks() -> Vec<IndexedBlock> {
        // A hand-made block: coinbase, a spending transaction, a shielded-only one.
        let txid = |b: u8| TxId([b; 32]);
        let tx = |id: u8, vin: Vec<TxInCompact>, vout: usize| IndexedTx {
            txid: txid(id),
            transparent: Some(TransparentCompactTx {
                vin,
                vout: vec![
                    TxOutCompact {
                        value: 5,
                        script_hash: [id; 20],
                        script_type: ScriptType::P2pkh,
                    };
                    vout
                ],
            }),
            sapling: None,
            orchard: None,
        };
        let spend = |id: u8, index: u32| TxInCompact {
            prevout_txid: txid(id),
            prevout_index: index,
        };
        let mut shielded = tx(9, vec![], 0);
        shielded.transparent = None;
        vec![IndexedBlock {
            header: BlockHeaderData::V2 {
                index: BlockIndex {
                    hash: BlockHash([1; 32]),
                    parent_hash: BlockHash([0; 32]),
                    chainwork: ChainWork([0; 32]),
                    height: Height(7),
                },
                data: BlockData {
                    version: 4,
                    time: 0,
                    merkle_root: [0; 32],
                    block_commitments: [0; 32],
                    bits: 0,
                    nonce: [0; 32],
                    solution: EquihashSolution::Regtest([0; 36]),
                },
            },
            transactions: vec![
                tx(1, vec![TxInCompact::coinbase()], 3),
                tx(2, vec![spend(1, 0), spend(1, 300), spend(5, 70_000)], 2),
                shielded,
            ],
            commitment_tree_data: CommitmentTreeData::default(),
        }]
    }

    /// The fast stage B walker accepts the common rows, and whatever it accepts the checked
    /// walker accepts with the same entries: random lists (absent transactions, coinbase
    /// inputs, up to 300 inputs or outputs, past the one-byte counts), as encoded and with
    /// random damage (a flipped byte, a cut, an extra byte).
    #[test]
    fn spent_walkers_agree() {
        use storage_traits::conformance::child::SplitMix64;
        let mut rng = SplitMix64(6);
        let mut fast_taken = 0;
        for round in 0..3_000u32 {
            let txs = (rng.next() % 6) as usize;
            let wide = round % 10 == 0;
            let list = TransparentTxList(
                (0..txs)
                    .map(|_| {
                        if rng.next().is_multiple_of(5) {
                            return None;
                        }
                        let count = |rng: &mut SplitMix64| {
                            (rng.next() % if wide { 300 } else { 4 }) as usize
                        };
                        let vin = (0..count(&mut rng))
                            .map(|_| {
                                if rng.next().is_multiple_of(4) {
                                    TxInCompact::coinbase()
                                } else {
                                    TxInCompact {
                                        prevout_txid: TxId([rng.next() as u8; 32]),
                                        prevout_index: rng.next() as u32 % 3,
                                    }
                                }
                            })
                            .collect();
                        let vout = (0..count(&mut rng))
                            .map(|_| TxOutCompact {
                                value: rng.next(),
                                script_hash: [rng.next() as u8; 20],
                                script_type: ScriptType::P2sh,
                            })
                            .collect();
                        Some(TransparentCompactTx { vin, vout })
                    })
                    .collect(),
            );
            let good = list.to_bytes();
            let mut inputs = vec![good.clone()];
            for _ in 0..4 {
                let mut bad = good.clone();
                let at = (rng.next() % good.len() as u64) as usize;
                match rng.next() % 3 {
                    0 => bad[at] ^= 1 << (rng.next() % 8),
                    1 => bad.truncate(at),
                    _ => bad.push(rng.next() as u8),
                }
                inputs.push(bad);
            }
            for (i, bytes) in inputs.iter().enumerate() {
                let h = Height(round);
                let mut fast = vec![([9u8; MAX_KEY], TxLocation::default())];
                let took = spent_entries_fast(h, bytes, &mut fast);
                let mut checked = vec![([9u8; MAX_KEY], TxLocation::default())];
                let result = spent_entries_checked(h, bytes, &mut checked);
                if took {
                    fast_taken += 1;
                    assert!(
                        result.is_ok(),
                        "round {round}: fast took a bad row: {result:?}"
                    );
                    assert_eq!(fast, checked, "round {round}");
                }
                if i == 0 {
                    assert!(result.is_ok());
                    // Every count fits in one byte unless the list is wide.
                    assert!(took || wide, "round {round}");
                }
                // The wrapper gives the checked walker's result either way.
                let mut wrapped = vec![([9u8; MAX_KEY], TxLocation::default())];
                match (spent_entries(h, bytes, &mut wrapped), result) {
                    (Ok(()), Ok(())) => assert_eq!(wrapped, checked),
                    (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                    (a, b) => panic!("round {round}: wrapper {a:?}, checked {b:?}"),
                }
            }
        }
        assert!(fast_taken > 2_500, "{fast_taken}");
    }

    /// The byte walkers agree with the typed decoders and the typed entry encoding.
    #[test]
    fn walkers_match_the_typed_model() {
        for b in blocks() {
            let h = b.header.height().unwrap();
            let mut got = Vec::new();
            txid_location_entries(h, &b.txids().to_bytes(), &mut got).unwrap();
            let want: Vec<(Vec<u8>, TxLocation)> = b
                .transactions
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    (
                        t.txid.encode_key(),
                        TxLocation {
                            block_height: h.0,
                            tx_index: i as u16,
                        },
                    )
                })
                .collect();
            let got_a: Vec<(Vec<u8>, TxLocation)> =
                got.iter().map(|(k, l)| (k[..32].to_vec(), *l)).collect();
            assert_eq!(got_a, want);

            let list = TransparentTxList(
                b.transactions
                    .iter()
                    .map(|t| t.transparent.clone())
                    .collect(),
            );
            let mut got = Vec::new();
            spent_entries(h, &list.to_bytes(), &mut got).unwrap();
            let mut want = Vec::new();
            for (i, t) in b.transactions.iter().enumerate() {
                for input in t.transparent.iter().flat_map(|t| &t.vin) {
                    if let Some(op) = input.outpoint() {
                        want.push((
                            op.encode_key(),
                            TxLocation {
                                block_height: h.0,
                                tx_index: i as u16,
                            },
                        ));
                    }
                }
            }
            let got_b: Vec<(Vec<u8>, TxLocation)> =
                got.iter().map(|(k, l)| (k.to_vec(), *l)).collect();
            assert_eq!(got_b, want);
            assert_eq!(want.len(), 3);

            let values = batch::location_values(37, &got);
            for ((k, l), v) in want.iter().zip(&values) {
                assert_eq!(
                    v.to_vec(),
                    StoredEntryFixed::<TxLocation>::new(k, *l).to_bytes()
                );
            }

            // The raw checksum check agrees with the typed one, and rejects a flipped byte.
            let (k, mut v) = encode_row::<Transparent>(&h, list.clone());
            assert_eq!(
                verified_var_item(Transparent::NAME, &k, h, &v).unwrap(),
                &list.to_bytes()[..]
            );
            let last = v.len() - 1;
            v[last] ^= 1;
            assert!(matches!(
                verified_var_item(Transparent::NAME, &k, h, &v),
                Err(storage_traits::Error::ChecksumMismatch { .. })
            ));
            // Truncated item bytes are an error, not a panic.
            let bytes = list.to_bytes();
            for cut in 0..bytes.len() {
                let _ = spent_entries(h, &bytes[..cut], &mut Vec::new());
            }
        }
    }
}
