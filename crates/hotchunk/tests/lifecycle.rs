//! The hot-chunk state machine, transition by transition, on both catalog backends, plus
//! the catalog itself (atomic batches, lock, pinned geometry, one backend per root).

mod common;

use std::ops::ControlFlow;

use common::*;
use hotchunk::{
    CatalogBatch, ChunkId, ChunkState, Codec, ColdState, HotError, Kind, RedbStore, RocksStore,
};

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod rocksdb_catalog {
            $(#[test] fn $name() { super::$name::<hotchunk::RocksStore>() })*
        }
        mod redb_catalog {
            $(#[test] fn $name() { super::$name::<hotchunk::RedbStore>() })*
        }
    };
}

both_backends!(
    open_absent_creates_an_empty_ready_store,
    heights_survive_reopen_and_set_the_watermark,
    put_height_refuses_gaps_repeats_and_overflow,
    open_transient_wipes_and_recreates,
    open_absent_wipes_a_stray_directory,
    ready_with_missing_directory_is_hot_volume_lost,
    ready_with_an_emptied_directory_is_hot_volume_lost,
    forget_refuses_a_present_store,
    discard_removes_directory_then_key_and_is_idempotent,
    discard_waits_for_every_view_to_close,
    views_share_the_writer_or_open_the_store,
    a_second_writer_is_refused,
    a_directory_of_another_chunk_is_refused,
    sweep_finishes_transient_chunks,
    catalog_batches_and_cold_states,
    catalog_lock_refuses_a_second_open,
    catalog_geometry_is_pinned,
);

fn open_absent_creates_an_empty_ready_store<S: CatalogBackend>() {
    let t = tempfile::tempdir().unwrap();
    let tier = tier::<S>(t.path());
    let c = ChunkId(3);
    assert_eq!(tier.catalog().hot_state(c).unwrap(), None);
    let store = tier.open_hot_db_for_chunk(c).unwrap();
    assert_eq!(
        tier.catalog().hot_state(c).unwrap(),
        Some(ChunkState::Ready)
    );
    assert_eq!(store.path(), t.path().join("hot/00000003"));
    assert!(store.path().join("CURRENT").is_file());
    assert_eq!(store.watermark(), None);
    assert_eq!(store.heights(), 122..=161);
    assert_eq!(store.next_height(), Some(122));
    assert_eq!(hot_dirs(t.path()), vec![c]);
}

fn heights_survive_reopen_and_set_the_watermark<S: CatalogBackend>() {
    let t = tempfile::tempdir().unwrap();
    let c = ChunkId(1);
    {
        let tier = tier::<S>(t.path());
        let mut store = tier.open_hot_db_for_chunk(c).unwrap();
        ingest(&mut store, 51);
        assert_eq!(store.watermark(), Some(51));
    }
    // Reopen with compression on: old values stay readable (each records its codec).
    let tier = tier_with::<S>(t.path(), Codec::Zstd { level: 3 });
    let mut store = tier.open_hot_db_for_chunk(c).unwrap();
    assert_eq!(store.watermark(), Some(51));
    assert_eq!(store.next_height(), Some(52));
    ingest(&mut store, 81);
    assert!(store.is_complete());
    assert_eq!(store.next_height(), None);
    for h in 42..=81 {
        assert_eq!(store.get(h).unwrap(), Some(payload(h)), "height {h}");
    }
    assert_eq!(store.get(41).unwrap(), None);
    assert_eq!(store.get(82).unwrap(), None);
    drop(store);
    let view = tier.open_view(c).unwrap();
    assert!(view.is_complete().unwrap());
    let mut seen = Vec::new();
    view.for_each_height(40, 90, |h, p| {
        assert_eq!(p, payload(h).as_slice());
        seen.push(h);
        Ok(ControlFlow::Continue(()))
    })
    .unwrap();
    assert_eq!(seen, (42..=81).collect::<Vec<_>>());
}

fn put_height_refuses_gaps_repeats_and_overflow<S: CatalogBackend>() {
    let t = tempfile::tempdir().unwrap();
    let tier = tier::<S>(t.path());
    let mut store = tier.open_hot_db_for_chunk(ChunkId(0)).unwrap();
    // The first height of chunk 0 is 2 (the geometry's first height), not 0.
    let e = store.put_height(0, b"x").unwrap_err();
    assert!(
        matches!(e, HotError::NotNextHeight { expected: 2, .. }),
        "{e}"
    );
    store.put_height(2, b"a").unwrap();
    let e = store.put_height(2, b"again").unwrap_err().to_string();
    assert!(
        e.contains("expects height 3 next, got 2") && e.contains("00000000"),
        "{e}"
    );
    assert!(store.put_height(4, b"gap").is_err());
    ingest(&mut store, 41);
    let e = store.put_height(42, b"next chunk").unwrap_err().to_string();
    assert!(e.contains("the chunk is full"), "{e}");
    assert_eq!(store.get(2).unwrap(), Some(b"a".to_vec()));
}

fn open_transient_wipes_and_recreates<S: CatalogBackend>() {
    let t = tempfile::tempdir().unwrap();
    let tier = tier::<S>(t.path());
    let c = ChunkId(2);
    let mut store = tier.open_hot_db_for_chunk(c).unwrap();
    ingest(&mut store, 90);
    drop(store);
    tier.catalog().put_hot(c, ChunkState::Transient).unwrap();
    let store = tier.open_hot_db_for_chunk(c).unwrap();
    assert_eq!(
        store.watermark(),
        None,
        "a transient chunk is recreated empty"
    );
    assert_eq!(store.get(82).unwrap(), None);
    assert_eq!(
        tier.catalog().hot_state(c).unwrap(),
        Some(ChunkState::Ready)
    );
}

fn open_absent_wipes_a_stray_directory<S: CatalogBackend>() {
    let t = tempfile::tempdir().unwrap();
    let tier = tier::<S>(t.path());
    let c = ChunkId(0);
    let stray = t.path().join("hot/00000000");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("junk"), b"junk").unwrap();
    let store = tier.open_hot_db_for_chunk(c).unwrap();
    assert!(!stray.join("junk").exists());
    assert_eq!(store.watermark(), None);
}

fn ready_with_missing_directory_is_hot_volume_lost<S: CatalogBackend>() {
    let t = tempfile::tempdir().unwrap();
    let tier = tier::<S>(t.path());
    let c = ChunkId(5);
    let mut store = tier.open_hot_db_for_chunk(c).unwrap();
    ingest(&mut store, 205);
    drop(store);
    // The hot volume goes away: here the whole `hot/` directory.
    std::fs::remove_dir_all(t.path().join("hot")).unwrap();
    let e = tier.open_hot_db_for_chunk(c).unwrap_err();
    assert!(
        matches!(
            e,
            HotError::HotVolumeLost {
                chunk: ChunkId(5),
                ..
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    for needle in [
        "hot:chunk:00000005",
        "hot/00000005",
        "202..=241",
        "restore or remount",
        "forget_lost_chunk(ChunkId(5))",
        "re-ingest",
    ] {
        assert!(msg.contains(needle), "{needle:?} missing from: {msg}");
    }
    // No automatic re-creation: no directory, the key still says ready, and it stays fatal.
    assert!(!t.path().join("hot/00000005").exists());
    assert_eq!(
        tier.catalog().hot_state(c).unwrap(),
        Some(ChunkState::Ready)
    );
    assert!(matches!(
        tier.open_view(c).unwrap_err(),
        HotError::HotVolumeLost { .. }
    ));
    assert!(matches!(
        tier.open_hot_db_for_chunk(c).unwrap_err(),
        HotError::HotVolumeLost { .. }
    ));
    // The offered recovery: forget the chunk, then it can be re-ingested from scratch.
    tier.forget_lost_chunk(c).unwrap();
    assert_eq!(tier.catalog().hot_state(c).unwrap(), None);
    let store = tier.open_hot_db_for_chunk(c).unwrap();
    assert_eq!(store.watermark(), None);
}

fn ready_with_an_emptied_directory_is_hot_volume_lost<S: CatalogBackend>() {
    let t = tempfile::tempdir().unwrap();
    let tier = tier::<S>(t.path());
    let c = ChunkId(0);
    drop(tier.open_hot_db_for_chunk(c).unwrap());
    // A remounted blank volume on which someone recreated the directory tree.
    let dir = t.path().join("hot/00000000");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    let e = tier.open_hot_db_for_chunk(c).unwrap_err();
    assert!(matches!(e, HotError::HotVolumeLost { .. }), "{e}");
    assert!(e.to_string().contains("CURRENT is missing"), "{e}");
    // RocksDB did not create a fresh database in its place.
    assert!(!dir.join("CURRENT").exists());
}

fn forget_refuses_a_present_store<S: CatalogBackend>() {
    let t = tempfile::tempdir().unwrap();
    let tier = tier::<S>(t.path());
    let c = ChunkId(1);
    let mut store = tier.open_hot_db_for_chunk(c).unwrap();
    ingest(&mut store, 45);
    drop(store);
    let e = tier.forget_lost_chunk(c).unwrap_err();
    assert!(matches!(e, HotError::NotLost { .. }), "{e}");
    let store = tier.open_hot_db_for_chunk(c).unwrap();
    assert_eq!(store.watermark(), Some(45));
}

fn discard_removes_directory_then_key_and_is_idempotent<S: CatalogBackend>() {
    let t = tempfile::tempdir().unwrap();
    let tier = tier::<S>(t.path());
    let (a, b) = (ChunkId(0), ChunkId(1));
    let mut store = tier.open_hot_db_for_chunk(a).unwrap();
    ingest(&mut store, 41);
    drop(store);
    drop(tier.open_hot_db_for_chunk(b).unwrap());
    tier.discard_hot_db_for_chunk(a).unwrap();
    assert_eq!(tier.catalog().hot_state(a).unwrap(), None);
    assert_eq!(hot_dirs(t.path()), vec![b]);
    // Again, and on a chunk that never existed: nothing happens, no error.
    tier.discard_hot_db_for_chunk(a).unwrap();
    tier.discard_hot_db_for_chunk(ChunkId(9)).unwrap();
    assert_eq!(
        tier.catalog().hot_chunks().unwrap(),
        vec![(b, ChunkState::Ready)]
    );
    // A discarded chunk reopens empty.
    assert_eq!(tier.open_hot_db_for_chunk(a).unwrap().watermark(), None);
}

fn discard_waits_for_every_view_to_close<S: CatalogBackend>() {
    let t = tempfile::tempdir().unwrap();
    let tier = tier::<S>(t.path());
    let c = ChunkId(0);
    let mut store = tier.open_hot_db_for_chunk(c).unwrap();
    ingest(&mut store, 41);
    let e = tier.discard_hot_db_for_chunk(c).unwrap_err();
    assert!(matches!(e, HotError::ChunkInUse { .. }), "{e}");
    drop(store);
    let view = tier.open_view(c).unwrap();
    let second = view.clone();
    let e = tier.discard_hot_db_for_chunk(c).unwrap_err().to_string();
    assert!(
        e.contains("close every HotStore and HotView") && e.contains("00000000"),
        "{e}"
    );
    // Nothing was touched by the refused discard.
    assert_eq!(
        tier.catalog().hot_state(c).unwrap(),
        Some(ChunkState::Ready)
    );
    assert_eq!(view.get(41).unwrap(), Some(payload(41)));
    drop(view);
    assert!(
        tier.discard_hot_db_for_chunk(c).is_err(),
        "one view is still open"
    );
    drop(second);
    tier.discard_hot_db_for_chunk(c).unwrap();
    assert!(hot_dirs(t.path()).is_empty());
}

fn views_share_the_writer_or_open_the_store<S: CatalogBackend>() {
    let t = tempfile::tempdir().unwrap();
    let tier = tier::<S>(t.path());
    let c = ChunkId(0);
    let e = tier.open_view(c).unwrap_err();
    assert!(
        matches!(
            e,
            HotError::NotReady {
                state: "absent",
                ..
            }
        ),
        "{e}"
    );
    let mut store = tier.open_hot_db_for_chunk(c).unwrap();
    let view = tier.open_view(c).unwrap();
    assert_eq!(view.watermark().unwrap(), None);
    store.put_height(2, &payload(2)).unwrap();
    // The view shares the writer's database and sees its commits.
    assert_eq!(view.watermark().unwrap(), Some(2));
    assert_eq!(store.view().get(2).unwrap(), Some(payload(2)));
    drop((store, view));
    // With no writer open, a view opens the store itself.
    let view = tier.open_view(c).unwrap();
    assert_eq!(view.get(2).unwrap(), Some(payload(2)));
    assert_eq!(view.heights(), 2..=41);
    drop(view);
    tier.catalog().put_hot(c, ChunkState::Transient).unwrap();
    let e = tier.open_view(c).unwrap_err();
    assert!(
        matches!(
            e,
            HotError::NotReady {
                state: "transient",
                ..
            }
        ),
        "{e}"
    );
}

fn a_second_writer_is_refused<S: CatalogBackend>() {
    let t = tempfile::tempdir().unwrap();
    let tier = tier::<S>(t.path());
    let c = ChunkId(4);
    let store = tier.open_hot_db_for_chunk(c).unwrap();
    let e = tier.open_hot_db_for_chunk(c).unwrap_err();
    assert!(matches!(e, HotError::ChunkInUse { .. }), "{e}");
    drop(store);
    tier.open_hot_db_for_chunk(c).unwrap();
}

fn a_directory_of_another_chunk_is_refused<S: CatalogBackend>() {
    let t = tempfile::tempdir().unwrap();
    let tier = tier::<S>(t.path());
    drop(tier.open_hot_db_for_chunk(ChunkId(1)).unwrap());
    drop(tier.open_hot_db_for_chunk(ChunkId(2)).unwrap());
    // An operator "restores" chunk 1's directory in place of chunk 2's.
    let hot = t.path().join("hot");
    std::fs::remove_dir_all(hot.join("00000002")).unwrap();
    std::fs::rename(hot.join("00000001"), hot.join("00000002")).unwrap();
    let e = tier.open_hot_db_for_chunk(ChunkId(2)).unwrap_err();
    assert!(
        matches!(
            e,
            HotError::CorruptHot {
                chunk: ChunkId(2),
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("another chunk"), "{e}");
}

fn sweep_finishes_transient_chunks<S: CatalogBackend>() {
    let t = tempfile::tempdir().unwrap();
    let tier = tier::<S>(t.path());
    for c in 0..3 {
        drop(tier.open_hot_db_for_chunk(ChunkId(c)).unwrap());
    }
    tier.catalog()
        .put_hot(ChunkId(0), ChunkState::Transient)
        .unwrap();
    tier.catalog()
        .put_hot(ChunkId(2), ChunkState::Transient)
        .unwrap();
    assert_eq!(
        tier.sweep_transient().unwrap(),
        vec![ChunkId(0), ChunkId(2)]
    );
    assert_eq!(
        tier.catalog().hot_chunks().unwrap(),
        vec![(ChunkId(1), ChunkState::Ready)]
    );
    assert_eq!(hot_dirs(t.path()), vec![ChunkId(1)]);
}

fn catalog_batches_and_cold_states<S: CatalogBackend>() {
    let t = tempfile::tempdir().unwrap();
    let cat = S::open_catalog(t.path()).unwrap();
    let events = Kind::named("events").unwrap();
    let mut b = CatalogBatch::new();
    b.put_cold(ChunkId(7), &Kind::LEDGERS, ColdState::Frozen)
        .put_cold(ChunkId(7), &events, ColdState::Freezing)
        .put_cold(ChunkId(8), &Kind::LEDGERS, ColdState::Pruning)
        .put_hot(ChunkId(7), ChunkState::Transient)
        .put_config("earliest_ledger", &2u32.to_be_bytes());
    cat.commit(&b).unwrap();
    drop(cat);
    let cat = S::open_catalog(t.path()).unwrap();
    assert_eq!(
        cat.cold_state(ChunkId(7), &Kind::LEDGERS).unwrap(),
        Some(ColdState::Frozen)
    );
    assert_eq!(
        cat.cold_state(ChunkId(7), &events).unwrap(),
        Some(ColdState::Freezing)
    );
    assert_eq!(cat.cold_state(ChunkId(9), &events).unwrap(), None);
    assert_eq!(
        cat.cold_chunks(&Kind::LEDGERS).unwrap(),
        vec![
            (ChunkId(7), ColdState::Frozen),
            (ChunkId(8), ColdState::Pruning)
        ]
    );
    assert_eq!(
        cat.cold_chunks(&events).unwrap(),
        vec![(ChunkId(7), ColdState::Freezing)]
    );
    assert_eq!(
        cat.hot_chunks().unwrap(),
        vec![(ChunkId(7), ChunkState::Transient)]
    );
    assert_eq!(
        cat.config("earliest_ledger").unwrap(),
        Some(vec![0, 0, 0, 2])
    );
    // Flip frozen→pruning and forget the hot key in one batch.
    let mut b = CatalogBatch::new();
    b.put_cold(ChunkId(7), &Kind::LEDGERS, ColdState::Pruning)
        .delete_hot(ChunkId(7))
        .delete_cold(ChunkId(7), &events);
    cat.commit(&b).unwrap();
    assert_eq!(
        cat.cold_state(ChunkId(7), &Kind::LEDGERS).unwrap(),
        Some(ColdState::Pruning)
    );
    assert!(cat.hot_chunks().unwrap().is_empty());
    assert!(cat.cold_chunks(&events).unwrap().is_empty());
    // The geometry key is the catalog's own.
    let mut b = CatalogBatch::new();
    b.put_config("geometry", b"x");
    assert!(matches!(
        cat.commit(&b).unwrap_err(),
        HotError::IncompatibleCatalog { .. }
    ));
}

fn catalog_lock_refuses_a_second_open<S: CatalogBackend>() {
    let t = tempfile::tempdir().unwrap();
    let first = S::open_catalog(t.path()).unwrap();
    // Both backends: the root lock is taken before the backend is touched.
    let e = RocksStore::open_catalog(t.path()).unwrap_err();
    assert!(matches!(e, HotError::Locked { .. }), "{e}");
    let e = RedbStore::open_catalog(t.path()).unwrap_err();
    assert!(matches!(e, HotError::Locked { .. }), "{e}");
    assert!(e.to_string().contains("LOCK"), "{e}");
    drop(first);
    let _again = S::open_catalog(t.path()).unwrap();
}

fn catalog_geometry_is_pinned<S: CatalogBackend>() {
    let t = tempfile::tempdir().unwrap();
    drop(S::open_catalog(t.path()).unwrap());
    let other = hotchunk::Geometry::new(2, 10_000, 1_000).unwrap();
    let layout = hotchunk::Layout::new(t.path(), other);
    let e = match std::any::type_name::<S>().contains("Rocks") {
        true => hotchunk::Catalog::open_rocksdb(layout)
            .map(|_| ())
            .unwrap_err(),
        false => hotchunk::Catalog::open_redb(layout)
            .map(|_| ())
            .unwrap_err(),
    };
    assert!(matches!(e, HotError::IncompatibleCatalog { .. }), "{e}");
    assert!(e.to_string().contains("chunk_size: 40"), "{e}");
}

#[test]
fn a_root_keeps_one_catalog_backend() {
    let t = tempfile::tempdir().unwrap();
    drop(RocksStore::open_catalog(t.path()).unwrap());
    let e = RedbStore::open_catalog(t.path()).unwrap_err();
    assert!(matches!(e, HotError::IncompatibleCatalog { .. }), "{e}");
    assert!(e.to_string().contains("catalog/rocksdb"), "{e}");
    let t = tempfile::tempdir().unwrap();
    drop(RedbStore::open_catalog(t.path()).unwrap());
    assert!(RocksStore::open_catalog(t.path()).is_err());
}
