//! The tiered store on real RocksDB hot stores, a real catalog, real packs and a real
//! finalised state: read routing across every tier, the commit order's reconciliation in
//! both directions, refused blocks, retention (pruning, widening from local packs),
//! backfill with a failing and a working bulk backend, the background lifecycle.

mod common;

use common::*;
use storage_traits::capability::{BlockCoreExt, DbRead, DbWrite};
use storage_traits::model::Height;
use tiered::{ChunkState, ColdState, DiscardReason, Retention, SourceKind, Tier, TieredStore};

const SIZE: u32 = 8;

fn tier_of(store: &TieredStore, h: u32) -> Result<Tier, tiered::Error> {
    store.read_routed(h).map(|(t, _)| t)
}

#[test]
fn read_routing_across_every_tier() {
    let chain = chain(40);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();

    // Empty: everything is not yet synced.
    let store = TieredStore::open(config(root, SIZE), None).unwrap();
    let e = store.read_payload(0).unwrap_err();
    assert!(e.is_not_yet_synced() && !e.is_not_available(), "{e}");

    // Chunks 0, 1 closed, chunk 2 open: all hot until a tick freezes.
    ingest(&store, &chain, 0..=19);
    for h in 0..=19 {
        assert_eq!(tier_of(&store, h).unwrap(), Tier::Hot, "height {h}");
    }
    let r = store.tick().unwrap();
    assert_eq!(r.frozen.iter().map(|f| f.chunk).collect::<Vec<_>>(), [0, 1]);
    assert!(r.frozen.iter().all(|f| f.source == Some(SourceKind::Hot)));
    assert_eq!(r.discarded, [0, 1]);
    for h in 0..=15 {
        assert_eq!(tier_of(&store, h).unwrap(), Tier::Cold, "height {h}");
    }
    for h in 16..=19 {
        assert_eq!(tier_of(&store, h).unwrap(), Tier::Hot, "height {h}");
    }
    let e = store.read_payload(20).unwrap_err();
    assert!(e.is_not_yet_synced(), "{e}");
    assert!(matches!(
        e,
        tiered::Error::Storage(storage_traits::Error::NotYetSynced {
            height: 20,
            tip: Some(19)
        })
    ));

    // Chunks 2 and 3 close without a tick: closed but hot.
    ingest(&store, &chain, 20..=35);
    for h in 16..=35 {
        assert_eq!(tier_of(&store, h).unwrap(), Tier::Hot, "height {h}");
    }
    drop(store);

    // Reopened with 3 chunks of retention: chunks 0 and 1 are pruned, 2 and 3 frozen.
    let mut cfg = config(root, SIZE);
    cfg.retention = Retention {
        payload_chunks: Some(3),
        index_chunks: Some(3),
    };
    let store = TieredStore::open(cfg, None).unwrap();
    assert_eq!(store.tip(), Some(35));
    let plan = store.resolve().unwrap();
    assert_eq!(
        plan.freeze.iter().map(|t| t.chunk).collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(plan.prune.len(), 4, "{plan:?}");
    let r = store.tick().unwrap();
    assert_eq!(r.frozen.len(), 2);
    assert_eq!(r.discarded, [2, 3]);
    assert_eq!(r.pruned.len(), 4);
    assert!(r.gc.as_ref().unwrap().freed_bytes > 0);

    for h in 0..=15 {
        let e = store.read_payload(h).unwrap_err();
        assert!(e.is_not_available() && !e.is_not_yet_synced(), "{h}: {e}");
        assert!(e.to_string().contains(&format!("height {h}")), "{e}");
    }
    for h in 16..=31 {
        assert_eq!(tier_of(&store, h).unwrap(), Tier::Cold, "height {h}");
    }
    for h in 32..=35 {
        assert_eq!(tier_of(&store, h).unwrap(), Tier::Hot, "height {h}");
    }
    assert!(store.read_payload(36).unwrap_err().is_not_yet_synced());
    assert!(
        store
            .read_payload(u32::MAX)
            .unwrap_err()
            .is_not_yet_synced()
    );
    for h in 16..=35 {
        assert_eq!(store.read_payload(h).unwrap(), bytes(&chain[h as usize]));
        assert_eq!(store.read_block(h).unwrap(), chain[h as usize]);
    }
    // The finalised state keeps every height's index rows.
    assert_eq!(
        store.finalised().get_block_header(Height(3)).unwrap(),
        chain[3].header
    );
    // Pruned packs are gone with their keys; main names what the catalog holds.
    assert!(
        !store
            .layout()
            .pack_path(
                &hotchunk::Kind::named("blocks").unwrap(),
                hotchunk::ChunkId(0)
            )
            .exists()
    );
    assert!(store.disagreements().unwrap().is_empty());
    assert_eq!(store.verify().unwrap(), 4);
    let states = store.chunk_states().unwrap();
    assert_eq!(
        states.iter().map(|s| s.chunk).collect::<Vec<_>>(),
        [2, 3, 4]
    );
    assert_eq!(states[2].hot, Some(ChunkState::Ready));
    assert!(
        states[0]
            .cold
            .iter()
            .all(|(_, s)| *s == Some(ColdState::Frozen))
    );
    // The hot directories left are exactly the hot keys.
    let dirs: Vec<_> = std::fs::read_dir(root.join("hot"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(dirs, ["00000004"]);
}

#[test]
fn a_refused_block_reaches_neither_tier() {
    let chain = chain(12);
    let other = synth_chain_other(12);
    let dir = tempfile::tempdir().unwrap();
    let store = TieredStore::open(config(dir.path(), SIZE), None).unwrap();
    ingest(&store, &chain, 0..=9);

    let e = store.ingest(chain[11].clone()).unwrap_err();
    assert!(
        matches!(
            e,
            tiered::Error::NotNextHeight {
                height: 11,
                expected: 10
            }
        ),
        "{e}"
    );
    // Height 10 of another chain: its parent is not our tip.
    let e = store.ingest(other[10].clone()).unwrap_err();
    assert!(
        matches!(
            e,
            tiered::Error::Storage(storage_traits::Error::InvalidBlock { height: 10, .. })
        ),
        "{e}"
    );
    assert_eq!(store.tip(), Some(9));
    assert!(store.read_payload(10).unwrap_err().is_not_yet_synced());
    drop(store);
    let (store, report) = TieredStore::open_with_report(config(dir.path(), SIZE), None).unwrap();
    assert_eq!(store.tip(), Some(9));
    assert_eq!(report.hot_caught_up, None);
    assert_eq!(report.finalised_caught_up, None);
    store.ingest(chain[10].clone()).unwrap();
    assert_eq!(store.read_payload(10).unwrap(), bytes(&chain[10]));
}

fn synth_chain_other(n: u32) -> Vec<storage_traits::model::IndexedBlock> {
    fixtures::synth_chain(&fixtures::SynthConfig::new(n, SEED ^ 1)).collect()
}

#[test]
fn open_catches_the_payload_tier_up_to_the_finalised_state() {
    let chain = chain(24);
    let dir = tempfile::tempdir().unwrap();
    let store = TieredStore::open(config(dir.path(), SIZE), None).unwrap();
    ingest(&store, &chain, 0..=12);
    // A crash between the two commits leaves the finalised state ahead; here by five
    // heights, across a chunk boundary (16).
    for block in &chain[13..=17] {
        store.finalised().write_block(block.clone()).unwrap();
    }
    assert_eq!(store.finalised().db_height().unwrap(), Some(Height(17)));
    drop(store);

    let (store, report) = TieredStore::open_with_report(config(dir.path(), SIZE), None).unwrap();
    assert_eq!(report.hot_caught_up, Some(13..=17));
    assert_eq!(report.finalised_caught_up, None);
    assert_eq!(store.tip(), Some(17));
    // Re-encoded from the finalised state, byte for byte.
    for h in 0..=17 {
        assert_eq!(
            store.read_payload(h).unwrap(),
            bytes(&chain[h as usize]),
            "{h}"
        );
    }
    ingest(&store, &chain, 18..=23);
    store.tick().unwrap();
    drop(store);
    assert_eq!(packs(dir.path()), reference_packs(SIZE, &chain));
}

#[test]
fn open_catches_the_finalised_state_up_to_the_payload_tier() {
    let chain = chain(21);
    let dir = tempfile::tempdir().unwrap();
    let store = TieredStore::open(config(dir.path(), SIZE), None).unwrap();
    ingest(&store, &chain, 0..=20);
    store.tick().unwrap(); // chunks 0 and 1 cold, chunk 2 hot
    drop(store);
    // The finalised state is lost (or restored from an old backup).
    std::fs::remove_dir_all(dir.path().join("finalised")).unwrap();

    let (store, report) = TieredStore::open_with_report(config(dir.path(), SIZE), None).unwrap();
    assert_eq!(report.finalised_caught_up, Some(0..=20));
    assert_eq!(store.tip(), Some(20));
    for h in 0..=20u32 {
        assert_eq!(
            store.finalised().get_block_hash(Height(h)).unwrap(),
            Some(chain[h as usize].header.hash()),
            "{h}"
        );
    }
}

#[test]
fn widening_index_retention_derives_from_local_packs_without_the_backend() {
    let chain = chain(40);
    let dir = tempfile::tempdir().unwrap();
    let backend = CountingBackend::new(None, true);
    let mut cfg = config(dir.path(), SIZE);
    cfg.retention.index_chunks = Some(1);
    let store = TieredStore::open(cfg, Some(backend.clone())).unwrap();
    ingest(&store, &chain, 0..=39);
    let r = store.tick().unwrap();
    assert_eq!(r.frozen.len(), 5);
    assert_eq!(r.discarded, [0, 1, 2, 3, 4], "every hot store is served");
    let txids = hotchunk::Kind::named("txids").unwrap();
    for c in 0..4 {
        assert_eq!(
            store
                .catalog()
                .cold_state(hotchunk::ChunkId(c), &txids)
                .unwrap(),
            None
        );
    }
    drop(store);

    // Widen: every chunk keeps its txid index. No hot store is left, the payload packs
    // are local: nothing is downloaded.
    let mut cfg = config(dir.path(), SIZE);
    cfg.retention.index_chunks = None;
    let store = TieredStore::open(cfg, Some(backend.clone())).unwrap();
    let r = store.tick().unwrap();
    assert_eq!(
        r.frozen.iter().map(|f| f.chunk).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    for f in &r.frozen {
        assert_eq!(f.source, Some(SourceKind::Pack), "{f:?}");
        assert_eq!(f.kinds, ["txids"]);
    }
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(backend.calls(), 0, "the bulk backend was touched");
    drop(store);
    assert_eq!(packs(dir.path()), reference_packs(SIZE, &chain));
}

#[test]
fn backfill_retries_a_failing_backend_without_marking_frozen_then_succeeds() {
    let chain = chain(40);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    write_lake(&lake, 40);

    // Only the newest 2 chunks are kept: chunks 0..=2 are never frozen.
    let mut cfg = config(dir.path().join("root").as_path(), SIZE);
    cfg.retention = Retention {
        payload_chunks: Some(2),
        index_chunks: Some(2),
    };
    let store = TieredStore::open(cfg, None).unwrap();
    ingest(&store, &chain, 0..=39);
    let r = store.tick().unwrap();
    assert_eq!(r.frozen.iter().map(|f| f.chunk).collect::<Vec<_>>(), [3, 4]);
    assert!(store.read_payload(5).unwrap_err().is_not_available());
    drop(store);

    // Widened: the chunks have no local source, so a tick leaves them to a backfill.
    let failing = CountingBackend::new(Some(coldpack::LocalDirBackend::new(&lake)), true);
    let mut cfg = config(dir.path().join("root").as_path(), SIZE);
    cfg.max_retries = 2;
    let store = TieredStore::open(cfg.clone(), Some(failing.clone())).unwrap();
    let plan = store.resolve().unwrap();
    assert!(plan.freeze.is_empty(), "{plan:?}");
    assert_eq!(
        plan.needs_backfill
            .iter()
            .map(|t| t.chunk)
            .collect::<Vec<_>>(),
        [0, 1, 2]
    );
    let r = store.tick().unwrap();
    assert!(r.frozen.is_empty());
    assert_eq!(failing.calls(), 0, "a tick never downloads");

    // The backend drops every transfer: each task is tried 1 + max_retries times, reported,
    // and leaves nothing frozen.
    let r = store.backfill(0..=2).unwrap();
    assert!(r.frozen.is_empty());
    assert_eq!(r.failed.len(), 3, "{:?}", r.failed);
    assert!(r.failed.iter().all(|f| f.attempts == 3), "{:?}", r.failed);
    assert_eq!(failing.visits.load(std::sync::atomic::Ordering::SeqCst), 9);
    for s in store
        .chunk_states()
        .unwrap()
        .iter()
        .filter(|s| s.chunk <= 2)
    {
        assert!(
            s.cold.iter().all(|(_, st)| *st != Some(ColdState::Frozen)),
            "{s:?}"
        );
    }
    assert!(store.read_payload(0).unwrap_err().is_not_available());
    drop(store);

    // A working backend: the chunks are materialised in parallel, byte-identical.
    let good = CountingBackend::new(Some(coldpack::LocalDirBackend::new(&lake)), false);
    let store = TieredStore::open(cfg, Some(good.clone())).unwrap();
    let r = store.backfill(0..=2).unwrap();
    assert_eq!(
        r.frozen.iter().map(|f| f.chunk).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(r.frozen.iter().all(|f| f.source == Some(SourceKind::Bulk)));
    assert!(r.failed.is_empty());
    for h in 0..=39 {
        assert_eq!(
            store.read_payload(h).unwrap(),
            bytes(&chain[h as usize]),
            "{h}"
        );
    }
    assert!(store.disagreements().unwrap().is_empty());
    drop(store);
    assert_eq!(
        packs(&dir.path().join("root")),
        reference_packs(SIZE, &chain)
    );
}

#[test]
fn background_lifecycle_freezes_while_ingesting() {
    let chain = chain(44);
    let dir = tempfile::tempdir().unwrap();
    let store = TieredStore::open(config(dir.path(), SIZE), None).unwrap();
    let lifecycle = store.start_lifecycle();
    ingest(&store, &chain, 0..=43);
    // Reads race the freezes and discards: every height stays readable.
    for h in 0..=43 {
        assert_eq!(
            store.read_payload(h).unwrap(),
            bytes(&chain[h as usize]),
            "{h}"
        );
    }
    let stats = lifecycle.stop().unwrap();
    assert!(!stats.stopped_by_loss, "{stats:?}");
    // Whatever the thread had not reached yet, one tick finishes.
    store.tick().unwrap();
    let plan = store.resolve().unwrap();
    assert!(plan.is_empty(), "{plan:?}");
    let states = store.chunk_states().unwrap();
    for s in &states[..5] {
        assert_eq!(s.hot, None, "{s:?}");
        assert!(
            s.cold.iter().all(|(_, st)| *st == Some(ColdState::Frozen)),
            "{s:?}"
        );
    }
    assert_eq!(states[5].hot, Some(ChunkState::Ready));
    assert_eq!(stats.errors, 0, "{stats:?}");
    for h in 0..=43 {
        assert_eq!(
            store.read_payload(h).unwrap(),
            bytes(&chain[h as usize]),
            "{h}"
        );
    }
}

#[test]
fn a_transient_hot_store_of_a_closed_chunk_is_discarded() {
    let chain = chain(20);
    let dir = tempfile::tempdir().unwrap();
    let store = TieredStore::open(config(dir.path(), SIZE), None).unwrap();
    ingest(&store, &chain, 0..=19);
    store.tick().unwrap();
    // A discard that crashed after marking the key transient (the directory is gone).
    store
        .catalog()
        .put_hot(hotchunk::ChunkId(0), ChunkState::Transient)
        .unwrap();
    let plan = store.resolve().unwrap();
    assert_eq!(plan.discard, [(0, DiscardReason::Transient)]);
    store.tick().unwrap();
    assert_eq!(
        store.catalog().hot_state(hotchunk::ChunkId(0)).unwrap(),
        None
    );
}
