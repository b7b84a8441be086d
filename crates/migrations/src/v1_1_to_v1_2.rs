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
//! the watermark never passes committed data and a crash re-does at most one batch.
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

use storage_traits::kv::{Direction, KeyRange, KvRead, KvStore, KvWrite};
use storage_traits::model::*;
use storage_traits::table::*;
use storage_traits::{Durability, StoredEntry, StoredEntryFixed, TableKey, TableRead, TableWrite};

use crate::error::{MigrationError, Result};
use crate::framework::*;
use crate::rebuild::rebuild_from_tables_with_progress;
use crate::schema::{V1_1_0, V1_2_0, schema_hash_for};

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

/// An index entry: key bytes and the location it maps to.
type Entry = (Vec<u8>, TxLocation);

/// One index stage (A or B): where its entries come from and where they go.
struct IndexStage<Src: Table<Key = Height>> {
    stage: Stage,
    /// The destination table (`txid_location_1_0_0` or `spent_1_0_0`).
    table: &'static str,
    key_len: usize,
    progress_key: NamedKey,
    /// The entries one source row implies: (key bytes, location).
    entries: fn(Height, ValueOf<Src>) -> Vec<Entry>,
}

fn txid_location_entries(height: Height, txids: TxidList) -> Vec<(Vec<u8>, TxLocation)> {
    txids
        .0
        .iter()
        .enumerate()
        .map(|(i, txid)| {
            (
                txid.encode_key(),
                TxLocation {
                    block_height: height.0,
                    tx_index: i as u16,
                },
            )
        })
        .collect()
}

fn spent_entries(height: Height, list: TransparentTxList) -> Vec<(Vec<u8>, TxLocation)> {
    let mut out = Vec::new();
    for (i, tx) in list.0.iter().enumerate() {
        let Some(tx) = tx else { continue };
        let location = TxLocation {
            block_height: height.0,
            tx_index: i as u16,
        };
        for input in &tx.vin {
            if let Some(op) = input.outpoint() {
                out.push((op.encode_key(), location));
            }
        }
    }
    out
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
            run_index_stage::<S, Txids>(
                ctx,
                &IndexStage {
                    stage: Stage::TxidLocation,
                    table: TxidLocation::NAME,
                    key_len: 32,
                    progress_key: MIGRATION_TXID_LOCATION_PROGRESS_KEY,
                    entries: txid_location_entries,
                },
                first,
                tip,
            )?;
            run_index_stage::<S, Transparent>(
                ctx,
                &IndexStage {
                    stage: Stage::Spent,
                    table: Spent::NAME,
                    key_len: 37,
                    progress_key: MIGRATION_SPENT_PROGRESS_KEY,
                    entries: spent_entries,
                },
                first,
                tip,
            )?;
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

/// Entries implied by the source rows of `[from, to)`.
fn count_entries<Src: Table<Key = Height>>(
    r: &impl KvRead,
    spec: &IndexStage<Src>,
    from: Height,
    to: Height,
) -> Result<u64> {
    if from >= to {
        return Ok(0);
    }
    let mut n = 0u64;
    for row in r.rows::<Src>(
        KeyRange::half_open(from.encode_key(), to.encode_key()),
        Direction::Forward,
    )? {
        let (h, v) = row?;
        n += (spec.entries)(h, v).len() as u64;
    }
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

fn run_index_stage<S: KvStore, Src: Table<Key = Height>>(
    ctx: &mut MigrationContext<'_, S>,
    spec: &IndexStage<Src>,
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
    let fast = present == committed_before;
    tracing::debug!(
        stage = spec.stage.name(),
        present,
        committed_before,
        fast,
        "index stage resumes"
    );
    let mut expected_total = committed_before;
    let budget = ctx.options.write_batch_bytes.max(1);
    let every = ctx.options.progress_every_heights.max(1);
    let mut rows = snap.rows::<Src>(
        KeyRange::inclusive(next0.encode_key(), tip.encode_key()),
        Direction::Forward,
    )?;
    let mut buf: Vec<(Vec<u8>, TxLocation)> = Vec::new();
    let mut bytes = 0usize;
    let mut next = next0;
    let mut committed_next = next0;
    let mut since_report = 0u32;
    loop {
        let row = rows.next().transpose()?;
        let done = row.is_none();
        if let Some((h, v)) = row {
            if h != next {
                return Err(storage_traits::Error::Corrupt {
                    table: Src::NAME,
                    key: hex::encode(h.encode_key()),
                    height: Some(h.0),
                    reason: format!("gap in the stored heights: expected {next}"),
                }
                .into());
            }
            let entries = (spec.entries)(h, v);
            bytes += entries.len() * (spec.key_len + ENTRY_ESTIMATE);
            buf.extend(entries);
            next = Height(h.0 + 1);
            since_report += 1;
        }
        if (bytes >= budget || done) && next > committed_next {
            expected_total += buf.len() as u64;
            flush_batch(store, spec, &mut buf, fast, next)?;
            bytes = 0;
            committed_next = next;
            since_report = 0;
            report(
                ctx,
                spec.stage,
                ProgressEvent::Progress,
                Some(next),
                Some(tip),
                started,
            );
        } else if since_report >= every {
            since_report = 0;
            report(
                ctx,
                spec.stage,
                ProgressEvent::Progress,
                Some(next),
                Some(tip),
                started,
            );
        }
        if done {
            break;
        }
    }
    drop(rows);
    drop(snap);
    let found = store.begin_read()?.len(spec.table)?;
    if found != expected_total {
        // Find the key that explains it: a duplicate overwritten on the unchecked path, or
        // a foreign entry.
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

/// Sorts a batch, rejects duplicate keys, checks existing entries (unless `fast`), inserts
/// the missing ones in key order and commits them with the watermark `next`.
fn flush_batch<S: KvStore, Src: Table<Key = Height>>(
    store: &S,
    spec: &IndexStage<Src>,
    buf: &mut Vec<(Vec<u8>, TxLocation)>,
    fast: bool,
    next: Height,
) -> Result<()> {
    buf.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for pair in buf.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(MigrationError::Duplicate {
                table: spec.table,
                key: hex::encode(&pair[0].0),
                first: pair[0].1.min(pair[1].1),
                second: pair[0].1.max(pair[1].1),
            });
        }
    }
    let mut w = store.begin_write()?;
    let mut rows: Vec<(&[u8], Vec<u8>)> = Vec::with_capacity(buf.len());
    for (k, loc) in buf.iter() {
        if !fast && check_existing(&w, spec.table, k, *loc)? {
            continue;
        }
        rows.push((k, StoredEntryFixed::<TxLocation>::new(k, *loc).to_bytes()));
    }
    w.insert_sorted(
        spec.table,
        &mut rows.iter().map(|(k, v)| (*k, v.as_slice())),
    )?;
    w.put_row::<MetadataHeights>(&spec.progress_key, next)?;
    w.commit(Durability::Synced)?;
    buf.clear();
    Ok(())
}

/// Checks every entry of `[first, tip]` against the table (the slow path, used to name the
/// key behind a row-count mismatch).
fn verify_stage<S: KvStore, Src: Table<Key = Height>>(
    store: &S,
    spec: &IndexStage<Src>,
    first: Height,
    tip: Height,
) -> Result<()> {
    let r = store.begin_read()?;
    for row in r.rows::<Src>(
        KeyRange::inclusive(first.encode_key(), tip.encode_key()),
        Direction::Forward,
    )? {
        let (h, v) = row?;
        for (k, loc) in (spec.entries)(h, v) {
            if !check_existing(&r, spec.table, &k, loc)? {
                return Err(MigrationError::MissingEntry {
                    table: spec.table,
                    key: hex::encode(&k),
                    height: h.0,
                });
            }
        }
    }
    Ok(())
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
    let mut w = store.begin_write()?;
    match tip {
        Some(tip) => {
            let acc = rebuild_from_tables_with_progress(&w, every, &mut |h| {
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
