//! Crash-then-resume: a child process bulk-syncing a chain is killed with SIGKILL at random
//! batch boundaries and mid-batch, restarted each time, and the final store must equal,
//! table by table, a store built by one uninterrupted run. Also: a second process opening
//! an open store is refused.

mod common;

use common::*;
use finalised_state::{Backend, Error, FinalisedState, OpenValidation};
use storage_traits::capability::DbRead;
use storage_traits::conformance::child::{SplitMix64, drain, spawn_test};

const DIR_ENV: &str = "STRATA_FS_CRASH_DIR";
const MODE_ENV: &str = "STRATA_FS_CRASH_MODE";
const BLOCKS: u32 = 260;
const SEED: u64 = 99;

fn child<B: Backend>(dir: &str, mode: &str) {
    let mut c = config(std::path::Path::new(dir));
    c.open_validation = OpenValidation::Lazy;
    c.sync_write_batch_bytes = 256 << 10;
    let s = match FinalisedState::<B>::open(c) {
        Ok(s) => s,
        Err(Error::Locked { .. }) => {
            println!("locked");
            return;
        }
        Err(e) => panic!("child open: {e}"),
    };
    if mode == "hold" {
        println!("holding");
        std::thread::sleep(std::time::Duration::from_secs(60));
        return;
    }
    println!("resumed at {:?}", s.db_height().unwrap());
    s.write_blocks(chain(BLOCKS, SEED), |p| {
        println!("batch {}", p.height.0);
        // Slow the child between batches (not inside them), so the parent's kills land
        // while the sync is still running even in fast release builds, and its random
        // delay (under 20 ms) spans at most one more batch.
        std::thread::sleep(std::time::Duration::from_millis(20));
    })
    .unwrap();
    println!("done");
}

fn run_child(test: &str, dir: &std::path::Path, mode: &str) -> std::process::Child {
    spawn_test(
        test,
        &[(DIR_ENV, dir.as_os_str()), (MODE_ENV, mode.as_ref())],
    )
}

fn crash_then_resume<B: Backend>(test: &str) {
    if let (Ok(dir), Ok(mode)) = (std::env::var(DIR_ENV), std::env::var(MODE_ENV)) {
        return child::<B>(&dir, &mode);
    }
    let mut rng = SplitMix64::from_env_or_clock("crash_then_resume");
    let seed = rng.0;
    let dir = tempfile::tempdir().unwrap();
    let mut kills = 0;
    let mut finished = false;
    for _ in 0..200 {
        let mut child = run_child(test, dir.path(), "sync");
        let lines = drain(&mut child);
        // Kill after a random number of committed batches (sometimes before the first),
        // then a random moment later: mid-batch, mid-commit or mid-rebuild.
        // Few batches per kill: a faster sync must not finish in fewer than the 5 kills
        // the test requires.
        let kill_after = rng.next() % 4;
        let mut batches = 0;
        while batches < kill_after {
            match lines.recv() {
                Ok(line) if line.ends_with("done") => {
                    finished = true;
                    break;
                }
                Ok(line) if line.starts_with("batch ") => batches += 1,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        if !finished {
            std::thread::sleep(std::time::Duration::from_millis(rng.next() % 20));
            finished = lines.try_iter().any(|l| l.ends_with("done"));
        }
        if finished {
            child.wait().unwrap();
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
    }
    assert!(finished, "the sync never finished");
    assert!(kills >= 5, "only {kills} kills (seed {seed})");
    eprintln!("crash_then_resume: {kills} kills (seed {seed})");

    let resumed = FinalisedState::<B>::open(config(dir.path())).unwrap();
    let clean_dir = tempfile::tempdir().unwrap();
    let clean = open::<B>(clean_dir.path());
    clean.write_blocks(chain(BLOCKS, SEED), |_| {}).unwrap();
    assert_same_tables(&resumed, &clean);
    assert!(resumed.accumulator_status().unwrap().freshness.is_fresh());
}

fn second_process_is_refused<B: Backend>(test: &str) {
    if let (Ok(dir), Ok(mode)) = (std::env::var(DIR_ENV), std::env::var(MODE_ENV)) {
        return child::<B>(&dir, &mode);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut holder = run_child(test, dir.path(), "hold");
    let lines = drain(&mut holder);
    // Wait for the holder to report the store open (the channel closes if it dies).
    while !lines
        .recv()
        .expect("the holder never opened the store")
        .ends_with("holding")
    {}
    match FinalisedState::<B>::open(config(dir.path())) {
        Err(Error::Locked { .. }) => {}
        other => panic!(
            "expected Locked while another process holds the store, got {:?}",
            other.err()
        ),
    }
    holder.kill().unwrap();
    holder.wait().unwrap();
    // The lock dies with the process.
    FinalisedState::<B>::open(config(dir.path())).unwrap();
}

#[cfg(feature = "redb")]
#[test]
fn crash_then_resume_redb() {
    crash_then_resume::<store_redb::RedbStore>("crash_then_resume_redb");
}

#[cfg(feature = "rocksdb")]
#[test]
fn crash_then_resume_rocksdb() {
    crash_then_resume::<store_lmdb_compat::RocksStore>("crash_then_resume_rocksdb");
}

#[cfg(feature = "redb")]
#[test]
fn second_process_is_refused_redb() {
    second_process_is_refused::<store_redb::RedbStore>("second_process_is_refused_redb");
}

#[cfg(feature = "rocksdb")]
#[test]
fn second_process_is_refused_rocksdb() {
    second_process_is_refused::<store_lmdb_compat::RocksStore>("second_process_is_refused_rocksdb");
}
