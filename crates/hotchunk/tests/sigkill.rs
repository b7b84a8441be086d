//! Real crashes: this test binary re-runs itself as a child process that ingests heights
//! (or cycles chunks through create/view/discard, or commits catalog batches), and the
//! parent kills it with SIGKILL at random points — seed printed, `STRATA_CRASH_SEED` replays
//! it. After every kill the root is reopened and checked: every acknowledged height is
//! present with its exact bytes, no partial height exists, "key absent ⟹ directory gone",
//! and multi-key catalog batches are all-or-nothing. A second process on an open root is
//! refused.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use common::*;
use hotchunk::{CatalogBatch, ChunkId, ChunkState, Codec, HotError, RedbStore, RocksStore};
use storage_traits::conformance::child::{SplitMix64, drain, spawn_test};

const DIR_ENV: &str = "STRATA_HOT_CRASH_DIR";
const MODE_ENV: &str = "STRATA_HOT_CRASH_MODE";
/// Chunks the ingest child fills (40 heights each).
const INGEST_CHUNKS: u32 = 4;
/// Chunks the cycling child creates, views and discards.
const CYCLES: u32 = 25;
/// Keys each catalog batch of the atomicity child rewrites.
const BATCH_KEYS: usize = 32;
/// Batches the atomicity child commits in all.
const BATCH_GENERATIONS: u32 = 300;

fn run_child(test: &str, dir: &Path, mode: &str) -> std::process::Child {
    spawn_test(
        test,
        &[(DIR_ENV, dir.as_os_str()), (MODE_ENV, OsStr::new(mode))],
    )
}

fn child_mode() -> Option<(String, String)> {
    Some((std::env::var(DIR_ENV).ok()?, std::env::var(MODE_ENV).ok()?))
}

/// Runs children until one prints `done`, killing each after a random number of progress
/// lines (those starting with `progress`) and a random few milliseconds more. `on_line`
/// sees every line (the parent records acknowledgements); `after_kill` checks the root
/// after each kill. Returns the number of kills.
fn kill_loop(
    test: &str,
    dir: &Path,
    mode: &str,
    rng: &mut SplitMix64,
    max_lines: u64,
    mut on_line: impl FnMut(&str),
    mut after_kill: impl FnMut(),
) -> u32 {
    let mut kills = 0;
    for _ in 0..300 {
        let mut child = run_child(test, dir, mode);
        let lines = drain(&mut child);
        let kill_after = rng.next() % max_lines;
        let mut seen = 0;
        let mut finished = false;
        while seen < kill_after {
            match lines.recv() {
                Ok(line) => {
                    on_line(&line);
                    if line == "done" {
                        finished = true;
                        break;
                    }
                    if line.starts_with("progress") {
                        seen += 1;
                    }
                }
                Err(_) => {
                    // The child exited on its own without finishing: it failed.
                    let status = child.wait().unwrap();
                    panic!("the {mode} child exited with {status} before finishing");
                }
            }
        }
        if !finished {
            // A little jitter so kills land inside writes, not only between them. Small: a
            // synced commit takes ~0.3 ms on a fast disk, so a long sleep would let the child
            // run far past `kill_after`, finish in a few kills and fail the tests' minimum.
            std::thread::sleep(Duration::from_micros(rng.next() % 2_000));
            child.kill().unwrap();
            child.wait().unwrap();
            // Whatever the child printed before it died was acknowledged: read it all (the
            // channel disconnects once the dead child's pipe is drained).
            for line in lines.iter() {
                on_line(&line);
                finished |= line == "done";
            }
            if !finished {
                kills += 1;
                after_kill();
                continue;
            }
        } else {
            child.wait().unwrap();
        }
        return kills;
    }
    panic!("the child never finished");
}

// ---------------------------------------------------------------------------------------
// Ingest: every acknowledged height survives, no partial height exists.

fn ingest_child(dir: &str) {
    let tier = tier_with::<RocksStore>(Path::new(dir), Codec::Zstd { level: 1 });
    // Resume at the highest chunk with a key (a crash mid-create leaves it transient, and
    // the open recreates it: it held no acknowledged height).
    let mut chunk = tier
        .catalog()
        .hot_chunks()
        .unwrap()
        .last()
        .map_or(ChunkId(0), |(c, _)| *c);
    while chunk.0 < INGEST_CHUNKS {
        let mut store = tier.open_hot_db_for_chunk(chunk).unwrap();
        while let Some(h) = store.next_height() {
            store.put_height(h, &payload(h)).unwrap();
            println!("progress ack {h}");
        }
        chunk = chunk.next().unwrap();
    }
    println!("done");
}

/// Checks a root after a kill: every ready chunk holds exactly the heights first..=watermark,
/// each whole; every acknowledged height is present; at most one height past the last
/// acknowledgement exists (committed, but the child died before printing it).
fn check_ingested(root: &Path, acked: &[u32]) {
    let tier = tier::<RocksStore>(root);
    let g = geometry();
    let top = acked.last().copied();
    for (chunk, state) in tier.catalog().hot_chunks().unwrap() {
        if state != ChunkState::Ready {
            continue;
        }
        let view = tier.open_view(chunk).unwrap();
        let heights = g.heights(chunk).unwrap();
        let mut n = 0;
        view.for_each_height(*heights.start(), *heights.end(), |h, p| {
            assert_eq!(h, heights.start() + n, "gap before height {h}");
            assert_eq!(p, payload(h).as_slice(), "height {h} is not whole");
            n += 1;
            Ok(std::ops::ControlFlow::Continue(()))
        })
        .unwrap();
        if let Some(w) = view.watermark().unwrap() {
            assert!(
                top.is_some_and(|t| w <= t + 1),
                "height {w} was never written"
            );
        }
    }
    // One view per chunk (opening a RocksDB per height made this check most of the test's
    // time).
    let mut views = BTreeMap::new();
    for &h in acked {
        let chunk = g.chunk_of(h).unwrap();
        let view = views.entry(chunk).or_insert_with(|| {
            tier.open_view(chunk)
                .unwrap_or_else(|e| panic!("acknowledged height {h}: {e}"))
        });
        assert_eq!(
            view.get(h).unwrap(),
            Some(payload(h)),
            "acknowledged height {h} lost"
        );
    }
}

#[test]
fn sigkill_while_ingesting() {
    const TEST: &str = "sigkill_while_ingesting";
    if let Some((dir, _)) = child_mode() {
        return ingest_child(&dir);
    }
    let mut rng = SplitMix64::from_env_or_clock(TEST);
    let t = tempfile::tempdir().unwrap();
    let acked = std::cell::RefCell::new(Vec::<u32>::new());
    let mut checks = 0;
    let kills = kill_loop(
        TEST,
        t.path(),
        "ingest",
        &mut rng,
        10,
        |line| {
            if let Some(h) = line.strip_prefix("progress ack ") {
                let h: u32 = h.parse().unwrap();
                let mut acked = acked.borrow_mut();
                // In order; a resumed child may skip the one height its predecessor
                // committed but died before acknowledging.
                assert!(
                    acked.last().is_none_or(|l| h == l + 1 || h == l + 2),
                    "ack {h} after {:?}",
                    acked.last()
                );
                acked.push(h);
            }
        },
        || {
            check_ingested(t.path(), &acked.borrow());
            checks += 1;
        },
    );
    assert!(kills >= 5, "only {kills} kills");
    assert_eq!(checks, kills);
    let acked = acked.into_inner();
    let last = geometry().last_height(ChunkId(INGEST_CHUNKS - 1)).unwrap();
    // The last height may be unacknowledged: a child committed it and died before printing,
    // and its successor found nothing left to write. The completeness check below covers it.
    assert!(
        acked.last().is_some_and(|&a| a == last || a + 1 == last),
        "last acknowledgement {:?}, last height {last}",
        acked.last()
    );
    check_ingested(t.path(), &acked);
    // Every chunk is complete: nothing was lost anywhere.
    let tier = tier::<RocksStore>(t.path());
    for c in 0..INGEST_CHUNKS {
        assert!(tier.open_view(ChunkId(c)).unwrap().is_complete().unwrap());
    }
    eprintln!(
        "{TEST}: {kills} kills, {} heights acknowledged",
        acked.len()
    );
}

// ---------------------------------------------------------------------------------------
// Cycling: create, write, view, discard, over and over; after every kill the catalog and
// `hot/` agree.

fn cycle_child(dir: &str) {
    let tier = tier::<RocksStore>(Path::new(dir));
    let done: u32 = tier
        .catalog()
        .config("test:cycled")
        .unwrap()
        .map_or(0, |v| u32::from_be_bytes(v.try_into().unwrap()));
    for c in done..CYCLES {
        let chunk = ChunkId(c);
        let mut store = tier.open_hot_db_for_chunk(chunk).unwrap();
        ingest(&mut store, geometry().first_height(chunk).unwrap() + 2);
        drop(store);
        let view = tier.open_view(chunk).unwrap();
        assert!(view.watermark().unwrap().is_some());
        drop(view);
        println!("progress created {c}");
        // The previous chunk goes once this one exists, as at a chunk boundary.
        if let Some(prev) = chunk.prev() {
            tier.discard_hot_db_for_chunk(prev).unwrap();
        }
        let mut b = CatalogBatch::new();
        b.put_config("test:cycled", &(c + 1).to_be_bytes());
        tier.catalog().commit(&b).unwrap();
        println!("progress discarded {}", c.saturating_sub(1));
    }
    println!("done");
}

#[test]
fn sigkill_while_cycling_chunks() {
    const TEST: &str = "sigkill_while_cycling_chunks";
    if let Some((dir, _)) = child_mode() {
        return cycle_child(&dir);
    }
    let mut rng = SplitMix64::from_env_or_clock(TEST);
    let t = tempfile::tempdir().unwrap();
    let root = t.path().to_path_buf();
    let mut checks = 0;
    let kills = kill_loop(
        TEST,
        &root,
        "cycle",
        &mut rng,
        8,
        |_| {},
        || {
            // The child is dead: the root is ours to inspect.
            let tier = tier::<RocksStore>(&root);
            let keys: BTreeMap<ChunkId, ChunkState> =
                tier.catalog().hot_chunks().unwrap().into_iter().collect();
            for dir in hot_dirs(&root) {
                assert!(
                    keys.contains_key(&dir),
                    "directory of chunk {dir} without a key"
                );
            }
            for (&chunk, &state) in &keys {
                if state == ChunkState::Ready {
                    let view = tier
                        .open_view(chunk)
                        .unwrap_or_else(|e| panic!("ready chunk {chunk}: {e}"));
                    if let Some(w) = view.watermark().unwrap() {
                        for h in geometry().first_height(chunk).unwrap()..=w {
                            assert_eq!(view.get(h).unwrap(), Some(payload(h)));
                        }
                    }
                }
            }
            checks += 1;
        },
    );
    assert!(kills >= 5, "only {kills} kills");
    assert_eq!(checks, kills);
    let tier = tier::<RocksStore>(&root);
    assert_eq!(
        tier.catalog().hot_chunks().unwrap(),
        vec![(ChunkId(CYCLES - 1), ChunkState::Ready)]
    );
    assert_eq!(hot_dirs(&root), vec![ChunkId(CYCLES - 1)]);
    eprintln!("{TEST}: {kills} kills, each followed by a consistency check");
}

// ---------------------------------------------------------------------------------------
// Catalog batches are atomic under SIGKILL, on both backends.

fn batch_child<S: CatalogBackend>(dir: &str) {
    let cat = S::open_catalog(Path::new(dir)).unwrap();
    let start = cat
        .config("k00")
        .unwrap()
        .map_or(0, |v| u32::from_be_bytes(v.try_into().unwrap()));
    for generation in start + 1..=BATCH_GENERATIONS {
        let mut b = CatalogBatch::new();
        for i in 0..BATCH_KEYS {
            b.put_config(&format!("k{i:02}"), &generation.to_be_bytes());
        }
        // Hot keys ride in the same batch.
        b.put_hot(ChunkId(generation), ChunkState::Transient)
            .delete_hot(ChunkId(generation - 1));
        cat.commit(&b).unwrap();
        println!("progress generation {generation}");
    }
    println!("done");
}

fn catalog_batches_are_atomic<S: CatalogBackend>(test: &str) {
    if let Some((dir, _)) = child_mode() {
        return batch_child::<S>(&dir);
    }
    let mut rng = SplitMix64::from_env_or_clock(test);
    let t = tempfile::tempdir().unwrap();
    let root = t.path().to_path_buf();
    let acked = std::cell::Cell::new(0u32);
    let mut checks = 0;
    let check = |acked: u32| {
        let cat = S::open_catalog(&root).unwrap();
        let values: Vec<_> = (0..BATCH_KEYS)
            .map(|i| cat.config(&format!("k{i:02}")).unwrap())
            .collect();
        assert!(
            values.iter().all(|v| *v == values[0]),
            "a torn batch: {values:?}"
        );
        let g = values[0]
            .clone()
            .map_or(0, |v| u32::from_be_bytes(v.try_into().unwrap()));
        assert!(
            g >= acked,
            "generation {acked} was acknowledged, {g} on disk"
        );
        let hot = cat.hot_chunks().unwrap();
        if g > 0 {
            assert_eq!(
                hot,
                vec![(ChunkId(g), ChunkState::Transient)],
                "generation {g}"
            );
        }
        g
    };
    let kills = kill_loop(
        test,
        &root,
        "batch",
        &mut rng,
        20,
        |line| {
            if let Some(g) = line.strip_prefix("progress generation ") {
                acked.set(g.parse().unwrap());
            }
        },
        || {
            check(acked.get());
            checks += 1;
        },
    );
    assert!(kills >= 5, "only {kills} kills");
    assert_eq!(checks, kills);
    assert_eq!(check(acked.get()), BATCH_GENERATIONS);
    eprintln!("{test}: {kills} kills, each followed by an atomicity check");
}

#[test]
fn sigkill_catalog_batches_are_atomic_rocksdb() {
    catalog_batches_are_atomic::<RocksStore>("sigkill_catalog_batches_are_atomic_rocksdb");
}

#[test]
fn sigkill_catalog_batches_are_atomic_redb() {
    catalog_batches_are_atomic::<RedbStore>("sigkill_catalog_batches_are_atomic_redb");
}

// ---------------------------------------------------------------------------------------
// Two processes on one root.

#[test]
fn a_second_process_on_the_root_is_refused() {
    const TEST: &str = "a_second_process_on_the_root_is_refused";
    if let Some((dir, _)) = child_mode() {
        let _tier = tier::<RocksStore>(Path::new(&dir));
        println!("holding");
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let mut child = run_child(TEST, t.path(), "hold");
    let lines = drain(&mut child);
    while lines.recv().unwrap() != "holding" {}
    for e in [
        RocksStore::open_catalog(t.path()).map(|_| ()).unwrap_err(),
        RedbStore::open_catalog(t.path()).map(|_| ()).unwrap_err(),
    ] {
        assert!(matches!(e, HotError::Locked { .. }), "{e}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The kernel drops the dead holder's lock.
    let tier = tier::<RocksStore>(t.path());
    assert!(tier.catalog().hot_chunks().unwrap().is_empty());
}
