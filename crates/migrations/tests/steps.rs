//! Steps run through the runner on real redb stores built by the fixture writers.

use migrations::fixture::{V1Fixture, write_v0_store, write_v1_store};
use migrations::v0::{V0_TABLES, V0Reader, compact_block_of, filter_block};
use migrations::*;
use storage_traits::capability::PoolTypeFilter;
use storage_traits::kv::{Direction, KeyRange, KvPair, KvRead, KvStore, KvWrite};
use storage_traits::model::*;
use storage_traits::table::*;
use storage_traits::{Durability, TableKey, TableRead, TableWrite};
use store_redb::RedbStore;

fn chain(blocks: u32, seed: u64) -> Vec<IndexedBlock> {
    let mut cfg = fixtures::SynthConfig::new(blocks, seed);
    cfg.spam_band = None;
    fixtures::synth_chain(&cfg).collect()
}

fn v1_store(dir: &std::path::Path, blocks: &[IndexedBlock], v: V1Fixture) -> RedbStore {
    let store = RedbStore::open(dir, V1_TABLES).unwrap();
    write_v1_store(&store, blocks.iter().cloned(), v).unwrap();
    store
}

fn dump(store: &RedbStore) -> Vec<(&'static str, Vec<KvPair>)> {
    storage_traits::conformance::dump_tables(store, V1_TABLES)
}

fn options(batch: usize) -> MigrationOptions {
    MigrationOptions {
        write_batch_bytes: batch,
        progress_every_heights: 10,
        ..MigrationOptions::default()
    }
}

fn run(
    store: &RedbStore,
    runner: &Runner<RedbStore>,
    batch: usize,
) -> Result<Vec<MigrationProgress>> {
    run_with(store, runner, options(batch))
}

fn run_with(
    store: &RedbStore,
    runner: &Runner<RedbStore>,
    options: MigrationOptions,
) -> Result<Vec<MigrationProgress>> {
    let mut seen = Vec::new();
    {
        let mut cb = |p: &MigrationProgress| seen.push(*p);
        let mut ctx = MigrationContext::new(store, options, None, &mut cb);
        runner.run(&mut ctx, V1_2_0)?;
    }
    Ok(seen)
}

fn with_workers(batch: usize, worker_threads: usize) -> MigrationOptions {
    MigrationOptions {
        worker_threads,
        ..options(batch)
    }
}

fn meta(store: &RedbStore) -> DbMetadata {
    read_metadata(&store.begin_read().unwrap())
        .unwrap()
        .unwrap()
}

/// The accumulator of the counted outputs `blocks` leave unspent.
fn unspent_accumulator(blocks: &[IndexedBlock]) -> accumulator::Accumulator {
    let mut unspent = std::collections::HashMap::new();
    for tx in blocks.iter().flat_map(|b| &b.transactions) {
        for input in tx.transparent.iter().flat_map(|t| &t.vin) {
            if let Some(op) = input.outpoint() {
                unspent.remove(&op);
            }
        }
        for (v, out) in tx
            .transparent
            .iter()
            .flat_map(|t| t.vout.iter().enumerate())
        {
            let op = Outpoint {
                prev_txid: tx.txid,
                prev_index: v as u32,
            };
            unspent.insert(op, *out);
        }
    }
    let mut outs: Vec<(Outpoint, TxOutCompact)> = unspent.into_iter().collect();
    outs.sort_by_key(|(op, _)| *op);
    // A transaction with two or more counted outputs left: the smallest buffers cut
    // between its outputs if any cut does.
    assert!(outs.windows(2).any(|w| w[0].0.prev_txid == w[1].0.prev_txid
        && accumulator::is_counted(&w[0].1)
        && accumulator::is_counted(&w[1].1)));
    accumulator::rebuild_from_slice(&outs).unwrap()
}

#[test]
fn missing_step_names_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = v1_store(dir.path(), &chain(20, 1), V1Fixture::V1_0);
    let runner = Runner::new().register(V1_1ToV1_2);
    let err = run(&store, &runner, 1 << 20).unwrap_err();
    assert!(
        matches!(err, MigrationError::MissingStep { from, target } if from == V1_0_0 && target == V1_2_0),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("1.0.0") && msg.contains("1.2.0"), "{msg}");
    // Nothing was written.
    assert_eq!(meta(&store).version, V1_0_0);
}

#[test]
fn v1_1_to_v1_2_builds_every_index_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = chain(150, 3);
    let store = v1_store(dir.path(), &blocks, V1Fixture::V1_1);
    assert!(
        store
            .begin_read()
            .unwrap()
            .is_empty(TxidLocation::NAME)
            .unwrap()
    );
    let seen = run(&store, &all_steps(), 4 << 10).unwrap();
    let m = meta(&store);
    assert_eq!(
        (m.version, m.migration_status),
        (V1_2_0, MigrationStatus::Empty)
    );
    assert_eq!(m.schema_hash, schema_hash());

    let r = store.begin_read().unwrap();
    for key in [
        MIGRATION_TXID_LOCATION_PROGRESS_KEY,
        MIGRATION_SPENT_PROGRESS_KEY,
    ] {
        assert!(r.get_row::<MetadataHeights>(&key).unwrap().is_none());
    }
    let mut txs = 0u64;
    let mut inputs = 0u64;
    for (h, b) in blocks.iter().enumerate() {
        for (i, tx) in b.transactions.iter().enumerate() {
            let loc = TxLocation {
                block_height: h as u32,
                tx_index: i as u16,
            };
            txs += 1;
            assert_eq!(r.get_row::<TxidLocation>(&tx.txid).unwrap(), Some(loc));
            for input in tx.transparent.iter().flat_map(|t| &t.vin) {
                if let Some(op) = input.outpoint() {
                    inputs += 1;
                    assert_eq!(r.get_row::<Spent>(&op).unwrap(), Some(loc));
                }
            }
        }
    }
    assert_eq!(r.len(TxidLocation::NAME).unwrap(), txs);
    assert_eq!(r.len(Spent::NAME).unwrap(), inputs);
    let expected = unspent_accumulator(&blocks);
    assert_eq!(
        r.get_row::<TxOutSetAccumulator>(&ACCUMULATOR_KEY).unwrap(),
        Some(expected.info())
    );
    assert_eq!(
        r.get_row::<MetadataHeights>(&ACCUMULATOR_BUILT_HEIGHT_KEY)
            .unwrap(),
        Some(Height(149))
    );
    // The rebuild's result does not depend on its memory: from one pass over every spent
    // outpoint (the last two budgets; a pass holds them at 44 bytes each in half the
    // budget) through two passes (`spent_bytes`) down to hundreds (a txid range each) that
    // hash an output at a time; the step itself ran with 4 KiB (tens of passes). A
    // transaction with two unspent counted outputs is hashed in one piece however small
    // the buffer.
    let spent_bytes = inputs as usize * 44;
    assert!(spent_bytes > 32 << 10, "{inputs} inputs");
    for memory in [200, 4 << 10, spent_bytes, 2 * spent_bytes, 1 << 30] {
        assert_eq!(
            rebuild_from_tables(&r, memory).unwrap(),
            expected,
            "{memory} bytes"
        );
    }
    // Every stage reported its start and finish; the batched stages reported batches.
    for stage in [Stage::TxidLocation, Stage::Spent, Stage::Accumulator] {
        for event in [ProgressEvent::Started, ProgressEvent::Finished] {
            assert!(
                seen.iter().any(|p| p.stage == stage && p.event == event),
                "{stage:?} {event:?}"
            );
        }
    }
    let batches = seen
        .iter()
        .filter(|p| p.stage == Stage::Spent && p.event == ProgressEvent::Progress)
        .count();
    assert!(batches > 5, "only {batches} progress reports in stage B");
}

#[test]
fn batch_size_and_existing_matching_entries_do_not_change_the_result() {
    let blocks = chain(120, 5);
    let a = tempfile::tempdir().unwrap();
    let sa = v1_store(a.path(), &blocks, V1Fixture::V1_1);
    run(&sa, &all_steps(), 1 << 30).unwrap();

    // Same chain, tiny batches, and half the entries already present (as a partial earlier
    // run or a shadow build leaves them): accepted after checksum and location checks.
    let b = tempfile::tempdir().unwrap();
    let sb = v1_store(b.path(), &blocks, V1Fixture::V1_1);
    {
        let r = sa.begin_read().unwrap();
        let mut w = sb.begin_write().unwrap();
        for table in [TxidLocation::NAME, Spent::NAME] {
            for (i, row) in r
                .range(table, KeyRange::all(), Direction::Forward)
                .unwrap()
                .enumerate()
            {
                let (k, v) = row.unwrap();
                if i % 2 == 0 {
                    w.put(table, &k, &v).unwrap();
                }
            }
        }
        w.commit(Durability::Synced).unwrap();
    }
    run(&sb, &all_steps(), 2 << 10).unwrap();
    assert_eq!(dump(&sa), dump(&sb));
}

#[test]
fn worker_threads_do_not_change_the_result() {
    let blocks = chain(120, 21);
    let reference = tempfile::tempdir().unwrap();
    let sr = v1_store(reference.path(), &blocks, V1Fixture::V1_1);
    run_with(&sr, &all_steps(), with_workers(1 << 30, 0)).unwrap();
    let want = dump(&sr);
    // On the calling thread alone and with workers; one batch, and many batches each
    // split into several chunks and key ranges.
    for (batch, workers) in [(1 << 30, 3), (1 << 30, 1), (3 << 10, 0), (3 << 10, 2)] {
        let dir = tempfile::tempdir().unwrap();
        let store = v1_store(dir.path(), &blocks, V1Fixture::V1_1);
        run_with(&store, &all_steps(), with_workers(batch, workers)).unwrap();
        assert!(dump(&store) == want, "batch {batch}, {workers} workers");
    }
}

#[test]
fn corrupt_source_row_fails_with_a_checksum_error_and_writes_nothing() {
    let blocks = chain(80, 23);
    for workers in [0, 2] {
        let dir = tempfile::tempdir().unwrap();
        let store = v1_store(dir.path(), &blocks, V1Fixture::V1_1);
        // Flip one byte inside the item of the `transparent` rows at heights 50 and 60 (the
        // framing stays valid): the first is the error, and stage B writes nothing.
        let mut w = store.begin_write().unwrap();
        for h in [50u32, 60] {
            let k = Height(h).encode_key();
            let mut v = w.get(Transparent::NAME, &k).unwrap().unwrap();
            let at = v.len() - 40;
            v[at] ^= 0x10;
            w.put(Transparent::NAME, &k, &v).unwrap();
        }
        w.commit(Durability::Synced).unwrap();
        let err = run_with(&store, &all_steps(), with_workers(1 << 30, workers)).unwrap_err();
        match &err {
            MigrationError::Storage(storage_traits::Error::ChecksumMismatch {
                table,
                key,
                height,
            }) => {
                assert_eq!(*table, Transparent::NAME);
                assert_eq!(*key, hex::encode(Height(50).encode_key()));
                assert_eq!(*height, Some(50));
            }
            other => panic!("expected a checksum mismatch, got {other}"),
        }
        let r = store.begin_read().unwrap();
        assert!(r.is_empty(Spent::NAME).unwrap(), "{workers} workers");
        assert!(
            r.get_row::<MetadataHeights>(&MIGRATION_SPENT_PROGRESS_KEY)
                .unwrap()
                .is_none()
        );
        // Stage A (txids) was not affected and finished.
        assert!(!r.is_empty(TxidLocation::NAME).unwrap());
    }
}

#[test]
fn an_outpoint_spent_twice_fails_as_a_duplicate() {
    let blocks = chain(60, 29);
    // Height 40's `transparent` row (rewritten with a valid checksum: the fixture writer
    // refuses such a chain) spends again an outpoint that height 20 spends.
    let spend_at = |blocks: &[IndexedBlock], h: usize| {
        blocks[h]
            .transactions
            .iter()
            .enumerate()
            .find_map(|(i, t)| {
                t.transparent
                    .as_ref()
                    .and_then(|t| t.vin.iter().position(|v| v.outpoint().is_some()))
                    .map(|j| (i, j))
            })
            .unwrap()
    };
    let (i20, j20) = spend_at(&blocks, 20);
    let (i40, j40) = spend_at(&blocks, 40);
    let input = blocks[20].transactions[i20]
        .transparent
        .as_ref()
        .unwrap()
        .vin[j20];
    let mut list = TransparentTxList(
        blocks[40]
            .transactions
            .iter()
            .map(|t| t.transparent.clone())
            .collect(),
    );
    list.0[i40].as_mut().unwrap().vin[j40] = input;
    let (k, v) = encode_row::<Transparent>(&Height(40), list);
    let op = input.outpoint().unwrap();
    for workers in [0, 2] {
        let dir = tempfile::tempdir().unwrap();
        let store = v1_store(dir.path(), &blocks, V1Fixture::V1_1);
        let mut w = store.begin_write().unwrap();
        w.put(Transparent::NAME, &k, &v).unwrap();
        w.commit(Durability::Synced).unwrap();
        let err = run_with(&store, &all_steps(), with_workers(1 << 30, workers)).unwrap_err();
        match &err {
            MigrationError::Duplicate {
                table,
                key,
                first,
                second,
            } => {
                assert_eq!(*table, Spent::NAME);
                assert_eq!(*key, hex::encode(op.encode_key()));
                assert_eq!(first.block_height, 20);
                assert_eq!(second.block_height, 40);
            }
            other => panic!("expected a duplicate, got {other}"),
        }
        assert!(store.begin_read().unwrap().is_empty(Spent::NAME).unwrap());
    }
}

#[test]
fn conflicting_entry_fails_with_a_clear_error() {
    let blocks = chain(60, 9);
    let dir = tempfile::tempdir().unwrap();
    let store = v1_store(dir.path(), &blocks, V1Fixture::V1_1);
    let victim = blocks[30].transactions[0].txid;
    let wrong = TxLocation {
        block_height: 7,
        tx_index: 0,
    };
    let mut w = store.begin_write().unwrap();
    w.put_row::<TxidLocation>(&victim, wrong).unwrap();
    w.commit(Durability::Synced).unwrap();
    let err = run(&store, &all_steps(), 4 << 10).unwrap_err();
    match &err {
        MigrationError::Conflict {
            table,
            key,
            height,
            stored,
            expected,
        } => {
            assert_eq!(*table, TxidLocation::NAME);
            assert_eq!(*key, hex::encode(victim.0));
            assert_eq!(*height, 30);
            assert_eq!(*stored, wrong);
            assert_eq!(expected.block_height, 30);
        }
        other => panic!("expected a conflict, got {other}"),
    }
    assert!(err.to_string().contains("txid_location_1_0_0"), "{err}");
    // The migration did not finish: still 1.1.0, resumable.
    assert_eq!(meta(&store).version, V1_1_0);
}

#[test]
fn corrupt_entry_fails_with_a_checksum_error() {
    let blocks = chain(60, 11);
    let dir = tempfile::tempdir().unwrap();
    let store = v1_store(dir.path(), &blocks, V1Fixture::V1_1);
    // A spent entry for a real input, with one flipped checksum byte.
    let (op, h) = blocks
        .iter()
        .enumerate()
        .find_map(|(h, b)| {
            b.transactions
                .iter()
                .flat_map(|t| t.transparent.iter().flat_map(|t| &t.vin))
                .find_map(|i| i.outpoint())
                .map(|op| (op, h))
        })
        .unwrap();
    let (k, mut v) = encode_row::<Spent>(
        &op,
        TxLocation {
            block_height: h as u32,
            tx_index: 1,
        },
    );
    let last = v.len() - 1;
    v[last] ^= 1;
    let mut w = store.begin_write().unwrap();
    w.put(Spent::NAME, &k, &v).unwrap();
    w.commit(Durability::Synced).unwrap();
    let err = run(&store, &all_steps(), 4 << 10).unwrap_err();
    assert!(
        matches!(&err, MigrationError::Storage(storage_traits::Error::ChecksumMismatch { table, .. }) if *table == Spent::NAME),
        "{err}"
    );
}

#[test]
fn v1_0_store_walks_both_steps() {
    let blocks = chain(40, 13);
    let dir = tempfile::tempdir().unwrap();
    let store = v1_store(dir.path(), &blocks, V1Fixture::V1_0);
    // v1.0 rows are BlockHeaderData v1.
    let h = store
        .begin_read()
        .unwrap()
        .get_row::<Headers>(&Height(5))
        .unwrap()
        .unwrap();
    assert!(matches!(h, BlockHeaderData::V1 { .. }));
    let seen = run(&store, &all_steps(), 1 << 20).unwrap();
    assert!(
        seen.iter()
            .any(|p| p.stage == Stage::Metadata && p.from == V1_0_0)
    );
    let m = meta(&store);
    assert_eq!(
        (m.version, m.migration_status),
        (V1_2_0, MigrationStatus::Empty)
    );
    // Headers untouched: still v1 rows, still verifying.
    let h2 = store
        .begin_read()
        .unwrap()
        .get_row::<Headers>(&Height(5))
        .unwrap()
        .unwrap();
    assert_eq!(h, h2);
}

#[test]
fn alpha_rule_rolls_back_and_the_step_rebuilds() {
    let blocks = chain(80, 17);
    let a = tempfile::tempdir().unwrap();
    let clean = v1_store(a.path(), &blocks, V1Fixture::V1_1);
    run(&clean, &all_steps(), 1 << 20).unwrap();

    // An alpha.1 store: recorded at 1.2.0, txid_location empty, spent half-wrong.
    let b = tempfile::tempdir().unwrap();
    let alpha = v1_store(b.path(), &blocks, V1Fixture::V1_1);
    {
        let mut w = alpha.begin_write().unwrap();
        w.put_row::<Metadata>(
            &METADATA_KEY,
            DbMetadata {
                version: V1_2_0,
                schema_hash: schema_hash(),
                migration_status: MigrationStatus::Empty,
            },
        )
        .unwrap();
        w.put_row::<Spent>(
            &Outpoint {
                prev_txid: TxId([9; 32]),
                prev_index: 0,
            },
            TxLocation::default(),
        )
        .unwrap();
        w.commit(Durability::Synced).unwrap();
    }
    assert!(reconcile_alpha_txid_location_index(&alpha).unwrap());
    let m = meta(&alpha);
    assert_eq!(m.version, V1_1_0);
    assert!(alpha.begin_read().unwrap().is_empty(Spent::NAME).unwrap());
    run(&alpha, &all_steps(), 1 << 20).unwrap();
    assert_eq!(dump(&clean), dump(&alpha));
    // Idempotent: a correct 1.2.0 store is left alone.
    assert!(!reconcile_alpha_txid_location_index(&alpha).unwrap());
}

#[test]
fn empty_v1_1_store_migrates() {
    let dir = tempfile::tempdir().unwrap();
    let store = v1_store(dir.path(), &[], V1Fixture::V1_1);
    run(&store, &all_steps(), 1 << 20).unwrap();
    let r = store.begin_read().unwrap();
    assert!(r.is_empty(TxOutSetAccumulator::NAME).unwrap());
    assert_eq!(meta(&store).version, V1_2_0);
}

#[test]
fn v0_step_without_a_host_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path(), V1_TABLES).unwrap();
    let err = run(&store, &all_steps(), 1 << 20).unwrap_err();
    assert!(matches!(err, MigrationError::HostRequired { .. }), "{err}");
    assert!(
        read_metadata(&store.begin_read().unwrap())
            .unwrap()
            .is_none()
    );
}

#[test]
fn v0_store_round_trips_and_serves_filtered_blocks() {
    let blocks = chain(30, 21);
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path(), V0_TABLES).unwrap();
    assert_eq!(
        write_v0_store(&store, blocks.iter().cloned()).unwrap(),
        Some(Height(29))
    );
    let r = store.begin_read().unwrap();
    let v0 = V0Reader::new(&r);
    assert_eq!(v0.tip().unwrap(), Some(Height(29)));
    for b in &blocks {
        let h = b.header.height().unwrap();
        let all = PoolTypeFilter::all();
        assert_eq!(
            v0.compact_block(h, all).unwrap().unwrap(),
            compact_block_of(b).unwrap()
        );
        let shielded = v0
            .compact_block(h, PoolTypeFilter::default())
            .unwrap()
            .unwrap();
        assert_eq!(
            shielded,
            filter_block(compact_block_of(b).unwrap(), PoolTypeFilter::default())
        );
        assert!(
            shielded
                .vtx
                .iter()
                .all(|t| t.vin.is_empty() && t.vout.is_empty())
        );
        assert_eq!(v0.height_of(&b.header.hash()).unwrap(), Some(h));
    }
    assert_eq!(v0.iter().unwrap().count(), 30);
    // A flipped byte is reported, not served.
    let key = migrations::v0::height_key(Height(3));
    let mut v = r
        .get(migrations::v0::V0_COMPACT_BLOCKS, &key)
        .unwrap()
        .unwrap();
    v[10] ^= 0x40;
    assert!(matches!(
        migrations::v0::decode_row(&key, &v),
        Err(storage_traits::Error::ChecksumMismatch {
            height: Some(3),
            ..
        })
    ));
}

/// The rebuild's passes end wherever the budget fills, between txids that share their top
/// 32 bits when every txid has one of five prefixes (0, 1, 0x55555555, 0xAAAAAAAA,
/// 0xFFFFFFFF): stage C at 4 KiB and every budget from 100 bytes up still give the
/// accumulator of the outputs the chain leaves unspent.
#[test]
fn rebuild_passes_cut_between_txids_of_one_prefix() {
    let prefixes = [0u32, 1, 0x5555_5555, 0xAAAA_AAAA, 0xFFFF_FFFF];
    // A function of the txid's own last byte, so every reference to a txid maps alike.
    let remap = |t: &mut TxId| {
        let p = prefixes[usize::from(t.0[31] % 5)];
        t.0[..4].copy_from_slice(&p.to_be_bytes());
    };
    let mut blocks = chain(150, 5);
    for tx in blocks.iter_mut().flat_map(|b| &mut b.transactions) {
        remap(&mut tx.txid);
        for input in tx.transparent.iter_mut().flat_map(|t| &mut t.vin) {
            if input.outpoint().is_some() {
                remap(&mut input.prevout_txid);
            }
        }
    }
    let expected = unspent_accumulator(&blocks);
    let dir = tempfile::tempdir().unwrap();
    let store = v1_store(dir.path(), &blocks, V1Fixture::V1_1);
    run(&store, &all_steps(), 4 << 10).unwrap();
    let r = store.begin_read().unwrap();
    assert_eq!(
        r.get_row::<TxOutSetAccumulator>(&ACCUMULATOR_KEY).unwrap(),
        Some(expected.info())
    );
    for memory in [100, 1 << 10, 64 << 10, 1 << 30] {
        assert_eq!(
            rebuild_from_tables(&r, memory).unwrap(),
            expected,
            "{memory} bytes"
        );
    }
}
