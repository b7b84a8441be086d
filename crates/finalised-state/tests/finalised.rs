//! The finalised state against the v1.2 contract, on every compiled backend.

mod common;

use common::*;
use finalised_state::{Backend, Config, Error, FinalisedState, Network};
use storage_traits::capability::*;
use storage_traits::kv::KvWrite;
use storage_traits::model::*;
use storage_traits::table::*;
use storage_traits::{Capability, Durability, TableKey};

fn new_store_gets_metadata<B: Backend>() {
    let dir = tempfile::tempdir().unwrap();
    let s = open::<B>(dir.path());
    let meta = s.get_metadata().unwrap();
    assert_eq!(meta.version, DbVersion::new(1, 2, 0));
    assert_eq!(meta.schema_hash, schema_hash());
    assert_eq!(meta.migration_status, MigrationStatus::Empty);
    assert_eq!(s.db_height().unwrap(), None);
    assert!(dir.path().join("regtest/v1").join(B::NAME).exists());
    assert_eq!(s.dir(), dir.path().join("regtest/v1"));
}

fn second_open_is_refused<B: Backend>() {
    let dir = tempfile::tempdir().unwrap();
    let _s = open::<B>(dir.path());
    match FinalisedState::<B>::open(config(dir.path())) {
        Err(Error::Locked { path }) => assert_eq!(path, dir.path().join("regtest/v1")),
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("a second open succeeded"),
    }
}

fn versions_are_checked<B: Backend>() {
    let dir = tempfile::tempdir().unwrap();
    let set_meta = |meta: DbMetadata| {
        let s = open::<B>(dir.path());
        s.update_metadata(meta).unwrap();
    };
    let base = DbMetadata {
        version: DbVersion::new(1, 2, 0),
        schema_hash: schema_hash(),
        migration_status: MigrationStatus::Empty,
    };
    set_meta(DbMetadata {
        version: DbVersion::new(2, 0, 0),
        ..base
    });
    let err = FinalisedState::<B>::open(config(dir.path()))
        .err()
        .expect("newer major refused");
    assert!(err.to_string().contains("newer than this build"), "{err}");

    // Repair through the raw store, then try an older version.
    let write_raw = |meta: DbMetadata| {
        let store = B::open_in(&dir.path().join("regtest/v1").join(B::NAME), V1_TABLES).unwrap();
        let mut w = store.begin_write().unwrap();
        use storage_traits::TableWrite;
        w.put_row::<Metadata>(&METADATA_KEY, meta).unwrap();
        w.commit(Durability::Synced).unwrap();
    };
    // An older version is migrated at open (the migrations tests cover the steps).
    write_raw(DbMetadata {
        version: DbVersion::new(1, 1, 0),
        ..base
    });
    let migrated = FinalisedState::<B>::open(config(dir.path())).expect("1.1.0 migrates");
    assert_eq!(
        migrated.get_metadata().unwrap().version,
        DbVersion::new(1, 2, 0)
    );
    drop(migrated);
    // A version no composed step starts from is refused, naming it.
    write_raw(DbMetadata {
        version: DbVersion::new(0, 9, 0),
        ..base
    });
    let err = FinalisedState::<B>::open(config(dir.path()))
        .err()
        .expect("an unknown older version is refused");
    assert!(err.to_string().contains("0.9.0"), "{err}");

    write_raw(DbMetadata {
        schema_hash: [7; 32],
        ..base
    });
    let err = FinalisedState::<B>::open(config(dir.path()))
        .err()
        .expect("mismatch refused");
    assert!(err.to_string().contains("schema hash mismatch"), "{err}");
    let mut c = config(dir.path());
    c.allow_schema_mismatch = true;
    FinalisedState::<B>::open(c).expect("override accepts a mismatch");
}

fn blocks_round_trip<B: Backend>() {
    let dir = tempfile::tempdir().unwrap();
    let s = open::<B>(dir.path());
    let blocks = chain(120, 7);
    for b in &blocks {
        s.write_block(b.clone()).unwrap();
    }
    assert_eq!(s.db_height().unwrap(), Some(Height(119)));
    assert_eq!(s.validated_tip(), Some(Height(119)));
    for (h, b) in blocks.iter().enumerate() {
        let h = Height(h as u32);
        assert_eq!(s.get_chain_block(h).unwrap().as_ref(), Some(b));
        assert_eq!(s.get_block_header(h).unwrap(), b.header);
        assert_eq!(s.get_block_hash(h).unwrap(), Some(b.header.hash()));
        assert_eq!(s.get_block_height(&b.header.hash()).unwrap(), Some(h));
        assert_eq!(s.get_block_txids(h).unwrap(), b.txids());
        assert_eq!(
            s.get_block_commitment_tree_data(h).unwrap(),
            b.commitment_tree_data
        );
        for (i, tx) in b.transactions.iter().enumerate() {
            let loc = TxLocation {
                block_height: h.0,
                tx_index: i as u16,
            };
            assert_eq!(s.get_tx_location(&tx.txid).unwrap(), Some(loc));
            assert_eq!(s.get_txid(loc).unwrap(), tx.txid);
            assert_eq!(s.get_transparent(loc).unwrap(), tx.transparent);
            assert_eq!(s.get_sapling(loc).unwrap(), tx.sapling);
            assert_eq!(s.get_orchard(loc).unwrap(), tx.orchard);
            if let Some(t) = &tx.transparent {
                for (vout, out) in t.vout.iter().enumerate() {
                    let op = Outpoint {
                        prev_txid: tx.txid,
                        prev_index: vout as u32,
                    };
                    assert_eq!(s.get_previous_output(op).unwrap(), *out);
                }
                for input in &t.vin {
                    if let Some(op) = input.outpoint() {
                        assert_eq!(s.get_outpoint_spender(op).unwrap(), Some(loc));
                    }
                }
            }
        }
    }
    assert_eq!(s.get_chain_block(Height(120)).unwrap(), None);
    assert!(matches!(
        s.get_block_header(Height(120)),
        Err(Error::NotYetSynced {
            height: 120,
            tip: Some(119)
        })
    ));
    assert_eq!(
        s.get_block_range_headers(Height(3), Height(5))
            .unwrap()
            .len(),
        3
    );
    assert!(
        s.get_block_range_headers(Height(5), Height(3))
            .unwrap()
            .is_empty()
    );
    // Reopen validates everything and keeps the tip.
    drop(s);
    let s = open::<B>(dir.path());
    assert_eq!(s.db_height().unwrap(), Some(Height(119)));
    assert_eq!(s.validated_tip(), Some(Height(119)));
}

fn rewrite_and_bad_blocks_write_nothing<B: Backend>() {
    let dir = tempfile::tempdir().unwrap();
    let s = open::<B>(dir.path());
    let blocks = chain(40, 11);
    for b in &blocks[..30] {
        s.write_block(b.clone()).unwrap();
    }
    let before = dump(&s);
    // The same block again: a no-op.
    s.write_block(blocks[12].clone()).unwrap();
    s.write_block(blocks[29].clone()).unwrap();
    assert!(dump(&s) == before);

    let expect_invalid = |b: IndexedBlock, what: &str| {
        match s.write_block(b) {
            Err(Error::InvalidBlock { reason, .. }) => assert!(reason.contains(what), "{reason}"),
            other => panic!("expected InvalidBlock ({what}), got {other:?}"),
        }
        assert!(
            dump(&s) == before,
            "a failed write ({what}) changed the store"
        );
    };
    // A different block at a stored height.
    let mut other = blocks[12].clone();
    other.commitment_tree_data.sizes.sapling += 1;
    expect_invalid(other, "different block");
    // A gap.
    expect_invalid(blocks[31].clone(), "expected height 30");
    // A wrong parent.
    let mut b = blocks[30].clone();
    if let BlockHeaderData::V2 { index, .. } = &mut b.header {
        index.parent_hash = BlockHash([9; 32]);
    }
    expect_invalid(b, "parent hash");
    // A wrong merkle root.
    let mut b = blocks[30].clone();
    let n = b.transactions.len();
    b.transactions.swap(0, n - 1);
    if b.transactions.len() > 1 {
        expect_invalid(b, "merkle root");
    }
    // An input spending an unknown output, and a double spend, with a consistent root.
    let with_input = |input: TxInCompact| {
        let mut b = blocks[30].clone();
        let tx = b.transactions.last_mut().unwrap();
        tx.transparent
            .get_or_insert_with(Default::default)
            .vin
            .push(input);
        tx.txid = TxId([0xAB; 32]);
        let root = b.computed_merkle_root();
        if let BlockHeaderData::V2 { data, .. } = &mut b.header {
            data.merkle_root = root;
        }
        b
    };
    expect_invalid(
        with_input(TxInCompact {
            prevout_txid: TxId([0xCD; 32]),
            prevout_index: 0,
        }),
        "unknown output",
    );
    let spent_input = blocks[..30]
        .iter()
        .flat_map(|b| &b.transactions)
        .filter_map(|t| t.transparent.as_ref())
        .flat_map(|t| &t.vin)
        .find(|i| !i.is_null())
        .copied()
        .expect("the chain spends something");
    expect_invalid(with_input(spent_input), "already spent");
    // And the right block still goes in.
    s.write_block(blocks[30].clone()).unwrap();
}

fn rollback_equals_shorter_chain<B: Backend>() {
    let blocks = chain(90, 3);
    let (n, m) = (90usize, 55usize);
    let d1 = tempfile::tempdir().unwrap();
    let long = open::<B>(d1.path());
    for b in &blocks[..n] {
        long.write_block(b.clone()).unwrap();
    }
    for h in (m..n).rev() {
        long.delete_block_at_height(Height(h as u32)).unwrap();
    }
    let d2 = tempfile::tempdir().unwrap();
    let short = open::<B>(d2.path());
    for b in &blocks[..m] {
        short.write_block(b.clone()).unwrap();
    }
    assert_same_tables(&long, &short);
    assert_eq!(long.db_height().unwrap(), Some(Height(m as u32 - 1)));
    // Deleting everything leaves the tables of a new store.
    for h in (0..m).rev() {
        long.delete_block_at_height(Height(h as u32)).unwrap();
    }
    let d3 = tempfile::tempdir().unwrap();
    let empty = open::<B>(d3.path());
    assert_same_tables(&long, &empty);
    // And the chain can be written again.
    for b in &blocks[..10] {
        long.write_block(b.clone()).unwrap();
    }
    assert!(matches!(
        long.delete_block_at_height(Height(3)),
        Err(Error::NotAvailable { .. })
    ));
}

fn bulk_sync_equals_single_writes<B: Backend>() {
    let blocks = chain(150, 21);
    let d1 = tempfile::tempdir().unwrap();
    let single = open::<B>(d1.path());
    for b in &blocks {
        single.write_block(b.clone()).unwrap();
    }
    let d2 = tempfile::tempdir().unwrap();
    let mut c = config(d2.path());
    c.sync_write_batch_bytes = 64 << 10; // many batches
    let bulk = FinalisedState::<B>::open(c).unwrap();
    let mut batches = 0;
    // In two calls, the second resuming at the tip, with blocks already stored skipped.
    bulk.write_blocks(blocks[..70].iter().cloned(), |_| batches += 1)
        .unwrap();
    bulk.write_blocks(blocks[60..].iter().cloned(), |_| batches += 1)
        .unwrap();
    assert!(batches > 4, "only {batches} batches");
    assert_same_tables(&single, &bulk);
    // Read-ahead windows of 3 blocks: each window's outputs are read from a snapshot taken
    // after earlier batches committed, some spent outputs are in the committing batch.
    let d3 = tempfile::tempdir().unwrap();
    let mut c = config(d3.path());
    c.sync_write_batch_bytes = 64 << 10;
    c.sync_read_ahead_blocks = 3;
    let windowed = FinalisedState::<B>::open(c).unwrap();
    windowed
        .write_blocks(blocks.iter().cloned(), |_| ())
        .unwrap();
    assert_same_tables(&single, &windowed);
    // A 2 KiB budget: a batch per block, and the accumulator rebuilt at the end in tens of
    // passes (a txid range of the spent outpoints each) hashing a few outputs at a time.
    let d4 = tempfile::tempdir().unwrap();
    let mut c = config(d4.path());
    c.sync_write_batch_bytes = 2 << 10;
    let small = FinalisedState::<B>::open(c).unwrap();
    small.write_blocks(blocks.iter().cloned(), |_| ()).unwrap();
    assert_same_tables(&single, &small);
    let status = bulk.accumulator_status().unwrap();
    assert!(status.freshness.is_fresh());
    assert_eq!(status.built_height, Some(Height(149)));
    assert!(status.info.transaction_outputs > 0);
}

/// In one bulk call, an output spent by an earlier block of the call cannot be spent
/// again: the first spend takes it from the output cache, the second must still find the
/// buffered `spent` row.
fn bulk_double_spend_is_refused<B: Backend>() {
    let blocks = chain(40, 13);
    // The last input of blocks[20..30] that spends an output created in blocks[..20]
    // (created and spent inside the same call below).
    let created: std::collections::HashSet<TxId> = blocks[..20]
        .iter()
        .flat_map(|b| &b.transactions)
        .map(|t| t.txid)
        .collect();
    let spent_input = blocks[20..30]
        .iter()
        .flat_map(|b| &b.transactions)
        .filter_map(|t| t.transparent.as_ref())
        .flat_map(|t| &t.vin)
        .rfind(|i| created.contains(&i.prevout_txid))
        .copied()
        .expect("the chain spends its own outputs");
    let mut bad = blocks[30].clone();
    let tx = bad.transactions.last_mut().unwrap();
    tx.transparent
        .get_or_insert_with(Default::default)
        .vin
        .push(spent_input);
    tx.txid = TxId([0xAB; 32]);
    let root = bad.computed_merkle_root();
    if let BlockHeaderData::V2 { data, .. } = &mut bad.header {
        data.merkle_root = root;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = open::<B>(dir.path());
    let result = s.write_blocks(
        blocks[..30]
            .iter()
            .cloned()
            .chain(std::iter::once(bad.clone())),
        |_| {},
    );
    expect_already_spent(result);
    // The good block still goes in after whatever the failed call committed.
    s.write_blocks(blocks[..31].iter().cloned(), |_| {})
        .unwrap();
    assert_eq!(s.db_height().unwrap(), Some(Height(30)));

    // The same with the output committed before the call and one block per batch: the sync
    // reads the output ahead (its window of blocks), and when the second spend comes the
    // first one's `spent` row is committed by an earlier batch of the call.
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.sync_write_batch_bytes = 1;
    let s = FinalisedState::<B>::open(c).unwrap();
    s.write_blocks(blocks[..20].iter().cloned(), |_| {})
        .unwrap();
    let mut batches = 0;
    let result = s.write_blocks(
        blocks[20..30].iter().cloned().chain(std::iter::once(bad)),
        |_| batches += 1,
    );
    expect_already_spent(result);
    assert_eq!(batches, 10, "one batch per good block");
    assert_eq!(s.db_height().unwrap(), Some(Height(29)));
}

fn expect_already_spent(result: Result<u64, Error>) {
    match result {
        Err(Error::InvalidBlock { height, reason, .. }) => {
            assert_eq!(height, 30);
            assert!(reason.contains("already spent"), "{reason}");
        }
        other => panic!("expected InvalidBlock (already spent), got {other:?}"),
    }
}

fn accumulator_incremental_equals_rebuild<B: Backend>() {
    let dir = tempfile::tempdir().unwrap();
    let s = open::<B>(dir.path());
    for b in chain(100, 5) {
        s.write_block(b).unwrap();
    }
    let incremental = s.get_tx_out_set_info_accumulator().unwrap();
    assert_eq!(
        incremental.bytes_serialized,
        incremental.transaction_outputs * 65
    );
    s.rebuild_accumulator().unwrap();
    assert_eq!(s.get_tx_out_set_info_accumulator().unwrap(), incremental);
    let one_pass = s.recompute_txout_set(&mut |_| ()).unwrap();
    assert_eq!(one_pass.info, incremental);
    drop(s);
    // A 2 KiB budget: the rebuild and the recomputation (with MuHash3072 when built with
    // it) run in tens of passes, a txid range of the spent outpoints each.
    let mut c = config(dir.path());
    c.sync_write_batch_bytes = 2 << 10;
    let s = FinalisedState::<B>::open(c).unwrap();
    s.rebuild_accumulator().unwrap();
    assert_eq!(s.get_tx_out_set_info_accumulator().unwrap(), incremental);
    assert_eq!(s.recompute_txout_set(&mut |_| ()).unwrap(), one_pass);
}

/// Every method of every extension trait, called on a store without its capability.
fn missing_capabilities_are_reported<B: Backend>() {
    let blocks = chain(5, 1);
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open::<B>(dir.path());
        for b in &blocks {
            s.write_block(b.clone()).unwrap();
        }
    }
    let h = Height(1);
    let loc = TxLocation {
        block_height: 1,
        tx_index: 0,
    };
    let op = Outpoint {
        prev_txid: blocks[0].transactions[0].txid,
        prev_index: 0,
    };
    let addr = AddrScript {
        hash: [0; 20],
        script_type: ScriptType::P2pkh,
    };
    let txid = blocks[1].transactions[0].txid;
    for cap in [
        Capability::READ_CORE,
        Capability::WRITE_CORE,
        Capability::BLOCK_CORE_EXT,
        Capability::BLOCK_TRANSPARENT_EXT,
        Capability::BLOCK_SHIELDED_EXT,
        Capability::COMPACT_BLOCK_EXT,
        Capability::CHAIN_BLOCK_EXT,
        Capability::TRANSPARENT_HIST_EXT,
    ] {
        let mut c = config(dir.path());
        c.capabilities = Capability::LATEST - cap;
        let s = FinalisedState::<B>::open(c).unwrap();
        let name = cap.name();
        let mut results: Vec<(&str, Result<(), Error>)> = Vec::new();
        macro_rules! call {
            ($gated:expr, $label:literal, $e:expr) => {
                if $gated == cap {
                    results.push(($label, $e.map(|_| ())));
                }
            };
        }
        call!(Capability::READ_CORE, "db_height", s.db_height());
        call!(
            Capability::READ_CORE,
            "get_block_height",
            s.get_block_height(&blocks[1].header.hash())
        );
        call!(Capability::READ_CORE, "get_block_hash", s.get_block_hash(h));
        call!(Capability::READ_CORE, "get_metadata", s.get_metadata());
        call!(
            Capability::WRITE_CORE,
            "write_block",
            s.write_block(blocks[4].clone())
        );
        call!(
            Capability::WRITE_CORE,
            "delete_block_at_height",
            s.delete_block_at_height(Height(4))
        );
        call!(
            Capability::WRITE_CORE,
            "update_metadata",
            s.update_metadata(DbMetadata::default())
        );
        call!(
            Capability::WRITE_CORE,
            "write_blocks",
            s.write_blocks(Vec::new(), |_| {})
        );
        call!(
            Capability::WRITE_CORE,
            "rebuild_accumulator",
            s.rebuild_accumulator()
        );
        call!(
            Capability::BLOCK_CORE_EXT,
            "get_block_header",
            s.get_block_header(h)
        );
        call!(
            Capability::BLOCK_CORE_EXT,
            "get_block_range_headers",
            s.get_block_range_headers(h, h)
        );
        call!(
            Capability::BLOCK_CORE_EXT,
            "get_block_txids",
            s.get_block_txids(h)
        );
        call!(
            Capability::BLOCK_CORE_EXT,
            "get_block_range_txids",
            s.get_block_range_txids(h, h)
        );
        call!(Capability::BLOCK_CORE_EXT, "get_txid", s.get_txid(loc));
        call!(
            Capability::BLOCK_CORE_EXT,
            "get_tx_location",
            s.get_tx_location(&txid)
        );
        call!(
            Capability::BLOCK_TRANSPARENT_EXT,
            "get_transparent",
            s.get_transparent(loc)
        );
        call!(
            Capability::BLOCK_TRANSPARENT_EXT,
            "get_block_transparent",
            s.get_block_transparent(h)
        );
        call!(
            Capability::BLOCK_TRANSPARENT_EXT,
            "get_block_range_transparent",
            s.get_block_range_transparent(h, h)
        );
        call!(
            Capability::BLOCK_TRANSPARENT_EXT,
            "get_previous_output",
            s.get_previous_output(op)
        );
        call!(
            Capability::BLOCK_SHIELDED_EXT,
            "get_sapling",
            s.get_sapling(loc)
        );
        call!(
            Capability::BLOCK_SHIELDED_EXT,
            "get_block_sapling",
            s.get_block_sapling(h)
        );
        call!(
            Capability::BLOCK_SHIELDED_EXT,
            "get_block_range_sapling",
            s.get_block_range_sapling(h, h)
        );
        call!(
            Capability::BLOCK_SHIELDED_EXT,
            "get_orchard",
            s.get_orchard(loc)
        );
        call!(
            Capability::BLOCK_SHIELDED_EXT,
            "get_block_orchard",
            s.get_block_orchard(h)
        );
        call!(
            Capability::BLOCK_SHIELDED_EXT,
            "get_block_range_orchard",
            s.get_block_range_orchard(h, h)
        );
        call!(
            Capability::BLOCK_SHIELDED_EXT,
            "get_block_commitment_tree_data",
            s.get_block_commitment_tree_data(h)
        );
        call!(
            Capability::BLOCK_SHIELDED_EXT,
            "get_block_range_commitment_tree_data",
            s.get_block_range_commitment_tree_data(h, h)
        );
        call!(
            Capability::COMPACT_BLOCK_EXT,
            "get_compact_block",
            s.get_compact_block(h, PoolTypeFilter::all())
        );
        call!(
            Capability::COMPACT_BLOCK_EXT,
            "get_compact_block_stream",
            s.get_compact_block_stream(h, h, PoolTypeFilter::all())
        );
        call!(
            Capability::CHAIN_BLOCK_EXT,
            "get_chain_block",
            s.get_chain_block(h)
        );
        call!(
            Capability::TRANSPARENT_HIST_EXT,
            "addr_records",
            s.addr_records(addr)
        );
        call!(
            Capability::TRANSPARENT_HIST_EXT,
            "addr_and_index_records",
            s.addr_and_index_records(addr, loc)
        );
        call!(
            Capability::TRANSPARENT_HIST_EXT,
            "addr_tx_locations_by_range",
            s.addr_tx_locations_by_range(addr, h, h)
        );
        call!(
            Capability::TRANSPARENT_HIST_EXT,
            "addr_utxos_by_range",
            s.addr_utxos_by_range(addr, h, h)
        );
        call!(
            Capability::TRANSPARENT_HIST_EXT,
            "addr_balance_by_range",
            s.addr_balance_by_range(addr, h, h)
        );
        call!(
            Capability::TRANSPARENT_HIST_EXT,
            "get_outpoint_spender",
            s.get_outpoint_spender(op)
        );
        call!(
            Capability::TRANSPARENT_HIST_EXT,
            "get_outpoint_spenders",
            s.get_outpoint_spenders(&[op])
        );
        call!(
            Capability::TRANSPARENT_HIST_EXT,
            "get_tx_out_set_info_accumulator",
            s.get_tx_out_set_info_accumulator()
        );
        assert!(!results.is_empty(), "no method is gated by {name}");
        for (label, r) in results {
            match r {
                Err(Error::FeatureUnavailable { capability }) => {
                    assert_eq!(capability, name, "{label}")
                }
                other => {
                    panic!("{label} without {name}: expected FeatureUnavailable, got {other:?}")
                }
            }
        }
    }
}

fn compact_blocks_follow_the_filter<B: Backend>() {
    let dir = tempfile::tempdir().unwrap();
    let s = open::<B>(dir.path());
    let blocks = chain(60, 9);
    s.write_blocks(blocks.clone(), |_| {}).unwrap();
    for (h, b) in blocks.iter().enumerate() {
        let h = Height(h as u32);
        let shielded = s.get_compact_block(h, PoolTypeFilter::default()).unwrap();
        assert_eq!(shielded.hash, b.header.hash());
        assert!(
            shielded
                .vtx
                .iter()
                .all(|t| t.vin.is_empty() && t.vout.is_empty())
        );
        let expected: usize = b
            .transactions
            .iter()
            .filter(|t| {
                t.sapling
                    .as_ref()
                    .is_some_and(|s| !s.spends.is_empty() || !s.outputs.is_empty())
                    || t.orchard.as_ref().is_some_and(|o| !o.actions.is_empty())
            })
            .count();
        assert_eq!(shielded.vtx.len(), expected);
        let all = s.get_compact_block(h, PoolTypeFilter::all()).unwrap();
        let transparent_outputs: usize = all.vtx.iter().map(|t| t.vout.len()).sum();
        let expected_outputs: usize = b
            .transactions
            .iter()
            .filter_map(|t| t.transparent.as_ref())
            .map(|t| t.vout.len())
            .sum();
        assert_eq!(transparent_outputs, expected_outputs);
    }
    let streamed: Vec<CompactBlock> = s
        .get_compact_block_stream(Height(10), Height(19), PoolTypeFilter::all())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(streamed.len(), 10);
    assert_eq!(
        streamed[3],
        s.get_compact_block(Height(13), PoolTypeFilter::all())
            .unwrap()
    );
}

fn address_history_is_consistent<B: Backend>() {
    let dir = tempfile::tempdir().unwrap();
    let s = open::<B>(dir.path());
    let blocks = chain(80, 13);
    for b in &blocks {
        s.write_block(b.clone()).unwrap();
    }
    // Model: every standard output's address, its unspent outputs and balance.
    use std::collections::{BTreeMap, HashMap};
    let mut outputs: HashMap<Outpoint, (TxLocation, TxOutCompact)> = HashMap::new();
    let mut utxos: BTreeMap<AddrScript, BTreeMap<(TxLocation, u16), u64>> = BTreeMap::new();
    let mut balance: BTreeMap<AddrScript, i64> = BTreeMap::new();
    for (h, b) in blocks.iter().enumerate() {
        for (i, tx) in b.transactions.iter().enumerate() {
            let loc = TxLocation {
                block_height: h as u32,
                tx_index: i as u16,
            };
            let Some(t) = &tx.transparent else { continue };
            for input in &t.vin {
                if let Some(op) = input.outpoint() {
                    let (l, out) = outputs[&op];
                    if out.script_type.is_spendable() {
                        utxos
                            .get_mut(&out.addr_script())
                            .unwrap()
                            .remove(&(l, op.prev_index as u16));
                        *balance.get_mut(&out.addr_script()).unwrap() -= out.value as i64;
                    }
                }
            }
            for (v, out) in t.vout.iter().enumerate() {
                outputs.insert(
                    Outpoint {
                        prev_txid: tx.txid,
                        prev_index: v as u32,
                    },
                    (loc, *out),
                );
                if out.script_type.is_spendable() {
                    utxos
                        .entry(out.addr_script())
                        .or_default()
                        .insert((loc, v as u16), out.value);
                    *balance.entry(out.addr_script()).or_default() += out.value as i64;
                }
            }
        }
    }
    let tip = Height(79);
    for (addr, expected) in &utxos {
        let got: BTreeMap<(TxLocation, u16), u64> = s
            .addr_utxos_by_range(*addr, Height(0), tip)
            .unwrap()
            .unwrap_or_default()
            .into_iter()
            .map(|(l, i, v)| ((l, i), v))
            .collect();
        assert_eq!(&got, expected, "utxos of {addr:?}");
        assert_eq!(
            s.addr_balance_by_range(*addr, Height(0), tip).unwrap(),
            balance[addr]
        );
        let records = s.addr_records(*addr).unwrap().unwrap();
        assert!(
            records.windows(2).all(|w| w[0] <= w[1]),
            "records are chronological"
        );
    }
    let unknown = AddrScript {
        hash: [0xEE; 20],
        script_type: ScriptType::P2sh,
    };
    assert_eq!(s.addr_records(unknown).unwrap(), None);
    assert_eq!(s.addr_balance_by_range(unknown, Height(0), tip).unwrap(), 0);
}

fn flipped_bytes_are_reported<B: Backend>() {
    let blocks = chain(30, 17);
    for table in [
        Headers::NAME,
        Txids::NAME,
        Transparent::NAME,
        Sapling::NAME,
        Orchard::NAME,
        CommitmentTree::NAME,
        Heights::NAME,
        Spent::NAME,
        TxidLocation::NAME,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let key = {
            let s = open::<B>(dir.path());
            s.write_blocks(blocks.clone(), |_| {}).unwrap();
            // Flip one byte in the middle of the table's 20th row (or its last).
            use storage_traits::kv::{Direction, KeyRange, KvRead};
            let r = s.kv().begin_read().unwrap();
            let rows: Vec<_> = r
                .range(table, KeyRange::all(), Direction::Forward)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let (k, mut v) = rows[19.min(rows.len() - 1)].clone();
            drop(r);
            let i = v.len() / 2;
            v[i] ^= 0x40;
            let mut w = s.kv().begin_write().unwrap();
            w.put(table, &k, &v).unwrap();
            w.commit(Durability::Synced).unwrap();
            k
        };
        let err = FinalisedState::<B>::open(config(dir.path()))
            .err()
            .unwrap_or_else(|| panic!("a flipped byte in {table} went unnoticed"));
        let text = err.to_string();
        assert!(text.contains(table), "{table}: {text}");
        assert!(
            text.contains(&hex::encode(&key)),
            "{table}: key missing in {text}"
        );
        if table != Heights::NAME && table != Spent::NAME && table != TxidLocation::NAME {
            assert!(text.contains("height"), "{table}: height missing in {text}");
        }
    }
}

fn backend_is_recorded<B: Backend>() {
    let dir = tempfile::tempdir().unwrap();
    drop(open::<B>(dir.path()));
    let other = finalised_state::KNOWN_BACKENDS
        .iter()
        .find(|n| **n != B::NAME)
        .unwrap();
    std::fs::create_dir_all(dir.path().join("regtest/v1").join(other)).unwrap();
    let err = FinalisedState::<B>::open(config(dir.path()))
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains(&format!("written by the {other} backend")),
        "{err}"
    );
}

fn start_height_mid_chain<B: Backend>() {
    let blocks = chain(30, 23);
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::new(dir.path(), Network::Testnet);
    c.start_height = Height(0);
    let s = FinalisedState::<B>::open(c).unwrap();
    // Blocks must start at the configured height.
    let err = s.write_block(blocks[1].clone()).unwrap_err();
    assert!(err.to_string().contains("expected height 0"), "{err}");
    s.write_block(blocks[0].clone()).unwrap();
    assert_eq!(s.db_height().unwrap(), Some(Height(0)));
    assert!(s.get_block_header(Height(0)).is_ok());
    let _ = TableKey::encode_key(&Height(0));
}

per_backend!(
    new_store_gets_metadata,
    second_open_is_refused,
    versions_are_checked,
    blocks_round_trip,
    rewrite_and_bad_blocks_write_nothing,
    rollback_equals_shorter_chain,
    bulk_sync_equals_single_writes,
    bulk_double_spend_is_refused,
    accumulator_incremental_equals_rebuild,
    missing_capabilities_are_reported,
    compact_blocks_follow_the_filter,
    address_history_is_consistent,
    flipped_bytes_are_reported,
    backend_is_recorded,
    start_height_mid_chain,
);
