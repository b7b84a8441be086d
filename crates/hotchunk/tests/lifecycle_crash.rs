//! Simulated power loss between every step of open, ingest and discard (the crash hook stops
//! the operation before step k; everything before it was synced), then a reopen of the
//! whole root and a check of how it reconciles. Runs with `--features crash-hooks`.

mod common;

use std::sync::Arc;

use common::*;
use hotchunk::fsync::record;
use hotchunk::{ChunkId, ChunkState, CrashHook, HotError, HotOptions, HotTier};

const OPEN_STEPS: &[&str] = &[
    "open: mark transient",
    "open: wipe directory",
    "open: create store",
    "open: sync directory",
    "open: mark ready",
];
const DISCARD_STEPS: &[&str] = &[
    "discard: mark transient",
    "discard: remove directory",
    "discard: sync parent",
    "discard: delete key",
];
const INGEST_STEPS: &[&str] = &["ingest: commit height", "ingest: acknowledge"];

fn hooked<S: CatalogBackend>(root: &std::path::Path, hook: &Arc<CrashHook>) -> HotTier<S> {
    HotTier::new(
        Arc::new(S::open_catalog(root).unwrap()),
        HotOptions::default(),
    )
    .with_crash_hook(Arc::clone(hook))
}

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
    the_steps_run_in_the_documented_order,
    barriers_are_synced_before_the_catalog_moves_on,
    open_crash_at_every_step,
    recreate_crash_at_every_step_never_resurrects_old_heights,
    ingest_crash_at_every_step,
    discard_crash_at_every_step,
);

fn expect_crash<T: std::fmt::Debug>(r: hotchunk::Result<T>, k: u64) {
    match r {
        Err(HotError::SimulatedCrash { step, .. }) => assert_eq!(step, k),
        other => panic!("expected a simulated crash at step {k}, got {other:?}"),
    }
}

/// The counting hook pins the commit order the README and the lifecycle docs state.
fn the_steps_run_in_the_documented_order<S: CatalogBackend>() {
    let t = tempfile::tempdir().unwrap();
    let hook = CrashHook::counting();
    let tier = hooked::<S>(t.path(), &hook);
    let mut store = tier.open_hot_db_for_chunk(ChunkId(0)).unwrap();
    assert_eq!(hook.step_names(), OPEN_STEPS);
    hook.rearm(u64::MAX);
    store.put_height(2, b"x").unwrap();
    assert_eq!(hook.step_names(), INGEST_STEPS);
    drop(store);
    hook.rearm(u64::MAX);
    // Reopening a ready chunk takes no durable step.
    drop(tier.open_hot_db_for_chunk(ChunkId(0)).unwrap());
    assert_eq!(hook.step_names(), Vec::<&str>::new());
    tier.discard_hot_db_for_chunk(ChunkId(0)).unwrap();
    assert_eq!(hook.step_names(), DISCARD_STEPS);
}

/// Power loss cannot be simulated in a test, so the fsync barriers are checked by what they
/// sync before the catalog moves on. Creating the first store of a root: the new `hot/`'s
/// entry (the root), the new chunk directory's entry (`hot/`), the directory itself, then
/// after the store is written the directory, its entry and the grandparent — all before the
/// key says `ready` (the hook stops right there). Discarding: the removal is synced (`hot/`)
/// before the key is deleted.
fn barriers_are_synced_before_the_catalog_moves_on<S: CatalogBackend>() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().to_path_buf();
    let hot = root.join("hot");
    let dir = hot.join("00000001");
    let c = ChunkId(1);
    {
        let stop_before_ready = OPEN_STEPS.len() as u64 - 1;
        let tier = hooked::<S>(&root, &CrashHook::stop_at(stop_before_ready));
        record::start();
        expect_crash(tier.open_hot_db_for_chunk(c), stop_before_ready);
        assert_eq!(
            record::take(),
            vec![
                root.clone(),
                hot.clone(),
                dir.clone(),
                dir.clone(),
                hot.clone(),
                root.clone()
            ]
        );
    }
    let tier = tier::<S>(&root);
    let mut store = tier.open_hot_db_for_chunk(c).unwrap();
    ingest(&mut store, 45);
    drop(store);
    {
        let stop_before_delete = DISCARD_STEPS.len() as u64 - 1;
        drop(tier);
        let tier = hooked::<S>(&root, &CrashHook::stop_at(stop_before_delete));
        record::start();
        expect_crash(tier.discard_hot_db_for_chunk(c), stop_before_delete);
        assert_eq!(record::take(), vec![hot.clone()]);
        assert!(!dir.exists());
    }
}

/// Power loss before each step of creating a chunk's store. Reopening the root must find
/// the key absent (before step 1) or `transient` (after), never `ready`; and "key absent ⟹
/// directory gone" holds. The next open then yields an empty ready store.
fn open_crash_at_every_step<S: CatalogBackend>() {
    let c = ChunkId(1);
    for k in 0..OPEN_STEPS.len() as u64 {
        let t = tempfile::tempdir().unwrap();
        {
            let hook = CrashHook::stop_at(k);
            let tier = hooked::<S>(t.path(), &hook);
            expect_crash(tier.open_hot_db_for_chunk(c), k);
        }
        let tier = tier::<S>(t.path());
        let state = tier.catalog().hot_state(c).unwrap();
        match k {
            0 => assert_eq!(state, None, "step {k}"),
            _ => assert_eq!(state, Some(ChunkState::Transient), "step {k}"),
        }
        if state.is_none() {
            assert!(
                hot_dirs(t.path()).is_empty(),
                "step {k}: directory without a key"
            );
        }
        // A view never reads a chunk that is not ready.
        assert!(matches!(
            tier.open_view(c).unwrap_err(),
            HotError::NotReady { .. }
        ));
        let mut store = tier.open_hot_db_for_chunk(c).unwrap();
        assert_eq!(store.watermark(), None, "step {k}");
        assert_eq!(
            tier.catalog().hot_state(c).unwrap(),
            Some(ChunkState::Ready)
        );
        store.put_height(42, &payload(42)).unwrap();
        drop(store);
        assert_eq!(
            tier.open_view(c).unwrap().get(42).unwrap(),
            Some(payload(42))
        );
    }
}

/// A chunk that held heights was marked transient (a discard or re-create began); power
/// loss at each step of the re-create never brings the old heights back.
fn recreate_crash_at_every_step_never_resurrects_old_heights<S: CatalogBackend>() {
    let c = ChunkId(0);
    for k in 0..OPEN_STEPS.len() as u64 {
        let t = tempfile::tempdir().unwrap();
        {
            let tier = tier::<S>(t.path());
            let mut store = tier.open_hot_db_for_chunk(c).unwrap();
            ingest(&mut store, 20);
            drop(store);
            tier.catalog().put_hot(c, ChunkState::Transient).unwrap();
        }
        {
            let hook = CrashHook::stop_at(k);
            let tier = hooked::<S>(t.path(), &hook);
            expect_crash(tier.open_hot_db_for_chunk(c), k);
        }
        let tier = tier::<S>(t.path());
        assert_eq!(
            tier.catalog().hot_state(c).unwrap(),
            Some(ChunkState::Transient),
            "step {k}"
        );
        let store = tier.open_hot_db_for_chunk(c).unwrap();
        assert_eq!(store.watermark(), None, "step {k}: old heights came back");
        assert_eq!(store.get(2).unwrap(), None);
    }
}

/// Power loss before the commit of a height loses it (it was never acknowledged); power
/// loss after the commit but before the acknowledgement keeps it. Acknowledged heights are
/// always there, and the watermark is exactly the last height present.
fn ingest_crash_at_every_step<S: CatalogBackend>() {
    let c = ChunkId(0);
    for k in 0..INGEST_STEPS.len() as u64 {
        let t = tempfile::tempdir().unwrap();
        {
            let hook = CrashHook::counting();
            let tier = hooked::<S>(t.path(), &hook);
            let mut store = tier.open_hot_db_for_chunk(c).unwrap();
            ingest(&mut store, 11);
            hook.rearm(k);
            expect_crash(store.put_height(12, &payload(12)), k);
            assert_eq!(store.watermark(), Some(11), "not acknowledged");
        }
        let tier = tier::<S>(t.path());
        let store = tier.open_hot_db_for_chunk(c).unwrap();
        let expect = if k == 0 { 11 } else { 12 };
        assert_eq!(store.watermark(), Some(expect), "step {k}");
        for h in 2..=expect {
            assert_eq!(
                store.get(h).unwrap(),
                Some(payload(h)),
                "step {k} height {h}"
            );
        }
        assert_eq!(store.get(expect + 1).unwrap(), None);
    }
}

/// Power loss before each step of a discard. Reopening finds the chunk intact and `ready`
/// (before step 1) or `transient`; re-running the discard finishes it, and so does an open
/// (which recreates it empty) or the startup sweep.
fn discard_crash_at_every_step<S: CatalogBackend>() {
    let c = ChunkId(2);
    for k in 0..DISCARD_STEPS.len() as u64 {
        for finish in ["discard", "open", "sweep"] {
            let t = tempfile::tempdir().unwrap();
            {
                let tier = tier::<S>(t.path());
                let mut store = tier.open_hot_db_for_chunk(c).unwrap();
                ingest(&mut store, 100);
            }
            {
                let hook = CrashHook::stop_at(k);
                let tier = hooked::<S>(t.path(), &hook);
                expect_crash(tier.discard_hot_db_for_chunk(c), k);
            }
            let tier = tier::<S>(t.path());
            let state = tier.catalog().hot_state(c).unwrap();
            if k == 0 {
                assert_eq!(state, Some(ChunkState::Ready));
                let view = tier.open_view(c).unwrap();
                assert_eq!(
                    view.watermark().unwrap(),
                    Some(100),
                    "nothing was discarded yet"
                );
            } else {
                assert_eq!(state, Some(ChunkState::Transient), "step {k}");
                assert!(matches!(
                    tier.open_view(c).unwrap_err(),
                    HotError::NotReady { .. }
                ));
            }
            match finish {
                "discard" => {
                    tier.discard_hot_db_for_chunk(c).unwrap();
                    assert_eq!(tier.catalog().hot_state(c).unwrap(), None);
                    assert!(hot_dirs(t.path()).is_empty(), "step {k}");
                }
                "open" => {
                    let store = tier.open_hot_db_for_chunk(c).unwrap();
                    let expect = if k == 0 { Some(100) } else { None };
                    assert_eq!(store.watermark(), expect, "step {k}");
                }
                _ => {
                    let swept = tier.sweep_transient().unwrap();
                    if k == 0 {
                        assert!(swept.is_empty());
                        assert_eq!(hot_dirs(t.path()), vec![c]);
                    } else {
                        assert_eq!(swept, vec![c]);
                        assert!(hot_dirs(t.path()).is_empty(), "step {k}");
                        assert_eq!(tier.catalog().hot_state(c).unwrap(), None);
                    }
                }
            }
        }
    }
}
