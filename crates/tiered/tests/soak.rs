//! The kill-and-restart soak: a child process ingests a chain of small chunks with the
//! background lifecycle running and is killed with SIGKILL at pseudo-random points (at
//! least 30 times; the seed is printed, `STRATA_CRASH_SEED` replays it), restarted each
//! time. After every restart no acknowledged height is lost; at the end every height is
//! readable and byte-identical, every closed chunk is frozen exactly once (its pack never
//! changes in main's history) with packs byte-identical to an uninterrupted build, and no
//! hot store is left for a frozen chunk.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use coldpack::cas::MAIN;
use common::*;
use storage_traits::conformance::child::{SplitMix64, drain, spawn_test};
use tiered::{ColdState, TieredStore};

const SIZE: u32 = 6;
const HEIGHTS: u32 = SIZE * 40;
const KILLS: usize = 30;
const ROOT_ENV: &str = "TIERED_SOAK_ROOT";

/// The child: open (reconciling), start the lifecycle, ingest from the tip to the end,
/// printing `ACK h` after each acknowledged height; then finish the lifecycle's work.
#[test]
fn soak_child() {
    let Some(root) = std::env::var_os(ROOT_ENV) else {
        return;
    };
    let chain = chain(HEIGHTS);
    let store = TieredStore::open(config(Path::new(&root), SIZE), None).unwrap();
    println!("OPEN {}", store.tip().map_or(-1, i64::from));
    let lifecycle = store.start_lifecycle();
    for h in store.next_height()..HEIGHTS {
        store.ingest(chain[h as usize].clone()).unwrap();
        println!("ACK {h}");
    }
    let stats = lifecycle.stop().unwrap();
    assert!(!stats.stopped_by_loss, "{stats:?}");
    while !store.resolve().unwrap().is_empty() {
        store.tick().unwrap();
    }
    println!("DONE");
}

#[test]
fn kill_and_restart_soak() {
    let mut rng = SplitMix64::from_env_or_clock("tiered kill-and-restart soak");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let env = [(ROOT_ENV, root.as_os_str())];
    let started = Instant::now();
    let mut acked: Option<u32> = None;
    let mut kills = 0;
    while kills < KILLS {
        let mut child = spawn_test("soak_child", &env);
        let lines = drain(&mut child);
        let wait_acks = rng.next() % 5;
        let mut seen = 0;
        let check_line = |line: &str, acked: &mut Option<u32>| {
            if let Some(t) = line.strip_prefix("OPEN ") {
                let tip: i64 = t.parse().unwrap();
                let lost = acked.is_some_and(|a| i64::from(a) > tip);
                assert!(
                    !lost,
                    "acknowledged height {acked:?} lost: reopened at {tip}"
                );
            } else if let Some(h) = line.strip_prefix("ACK ") {
                *acked = (*acked).max(Some(h.parse().unwrap()));
            } else if line == "DONE" {
                panic!("the chain is too short: the child finished before kill {kills}");
            }
        };
        if wait_acks == 0 {
            // Somewhere in start-up: opening, reconciling, catching a tier up.
            std::thread::sleep(Duration::from_millis(rng.next() % 150));
        } else {
            while seen < wait_acks {
                let line = lines
                    .recv_timeout(Duration::from_secs(60))
                    .expect("the child stopped talking");
                check_line(&line, &mut acked);
                seen += u64::from(line.starts_with("ACK "));
            }
            // Some way into the next commit, or a freeze of the chunk that just closed.
            std::thread::sleep(Duration::from_micros(rng.next() % 20_000));
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        for line in lines.try_iter() {
            check_line(&line, &mut acked);
        }
        assert!(
            status.code().is_none(),
            "the child exited by itself ({status}) before kill {kills}"
        );
        kills += 1;
    }

    // A last run to the end, uninterrupted.
    let mut child = spawn_test("soak_child", &env);
    let lines = drain(&mut child);
    assert!(child.wait().unwrap().success(), "the final run failed");
    let out: Vec<String> = lines.iter().collect();
    assert!(out.iter().any(|l| l == "DONE"), "{out:?}");
    eprintln!(
        "{kills} kills, last acknowledged before the final run {acked:?}, {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let chain = chain(HEIGHTS);
    let store = TieredStore::open(config(&root, SIZE), None).unwrap();
    assert_eq!(store.tip(), Some(HEIGHTS - 1));
    for h in 0..HEIGHTS {
        assert_eq!(
            store.read_payload(h).unwrap(),
            bytes(&chain[h as usize]),
            "height {h}"
        );
    }
    // Every chunk is closed and frozen in every kind; no hot store, key or directory.
    let states = store.chunk_states().unwrap();
    assert_eq!(states.len() as u32, HEIGHTS / SIZE);
    for s in &states {
        assert_eq!(s.hot, None, "{s:?}");
        assert!(
            s.cold.iter().all(|(_, st)| *st == Some(ColdState::Frozen)),
            "{s:?}"
        );
    }
    let hot_dirs = std::fs::read_dir(root.join("hot")).map_or(0, |d| d.count());
    assert_eq!(hot_dirs, 0, "hot directories left behind");
    assert!(store.disagreements().unwrap().is_empty());
    assert_eq!(store.verify().unwrap() as u32, 2 * HEIGHTS / SIZE);

    // Frozen exactly once: along main's history, each (kind, chunk) names one pack.
    let cas = store.cas();
    let mut named: BTreeMap<(String, u32), coldpack::ObjectId> = BTreeMap::new();
    let mut commit = cas.read_ref(MAIN).unwrap();
    while let Some(c) = commit {
        let c = cas.read_commit(&c).unwrap();
        for (key, entry) in cas.read_manifest(&c.tree).unwrap().packs {
            let first = named.entry(key.clone()).or_insert(entry.id);
            assert_eq!(
                *first, entry.id,
                "{key:?} was frozen twice with different bytes"
            );
        }
        commit = c.parents.first().copied();
    }
    assert_eq!(named.len() as u32, 2 * HEIGHTS / SIZE);
    drop(store);

    assert_eq!(
        packs(&root),
        reference_packs(SIZE, &chain),
        "packs differ from a clean build"
    );
}
