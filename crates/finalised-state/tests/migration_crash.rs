//! Crash-then-resume of the migrations: a child process migrating a store is killed with
//! SIGKILL at random points, at least 20 times in each stage of the v1.1 → v1.2 step
//! (A: txid_location, B: spent, C: accumulator) and in the v0 → v1 shadow build; after each
//! kill the next child resumes. After every kill the progress watermarks must not pass the
//! committed data, v0 must be untouched until promotion, and the final store must equal,
//! table by table, a store built by a clean sync at 1.2.0. The seed is printed; set
//! `STRATA_CRASH_SEED` to replay.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use finalised_state::migrate::MigrateOptions;
use finalised_state::{Backend, FinalisedState, OpenValidation};
use migrations::fixture::{V1Fixture, write_v0_store, write_v1_store};
use migrations::v0::V0_TABLES;
use migrations::{MigrationProgress, ProgressEvent, Stage, VecSource};
use storage_traits::TableRead;
use storage_traits::conformance::child::{SplitMix64, drain, spawn_test};
use storage_traits::kv::{Direction, KeyRange, KvRead};
use storage_traits::model::*;
use storage_traits::table::*;

const DIR_ENV: &str = "STRATA_MIG_CRASH_DIR";
const MODE_ENV: &str = "STRATA_MIG_CRASH_MODE";
const BLOCKS: u32 = 200;
const SEED: u64 = 7;
const KILLS_PER_STAGE: usize = 20;

fn stage_tag(s: Stage) -> &'static str {
    match s {
        Stage::TxidLocation => "A",
        Stage::Spent => "B",
        Stage::Accumulator => "C",
        Stage::ShadowBuild => "S",
        Stage::ShadowValidate => "V",
        Stage::Promote => "P",
        Stage::Metadata => "M",
    }
}

/// The child: opens the store (which migrates it), printing every progress report.
fn child<B: Backend>(dir: &str, mode: &str) {
    let mut c = config(Path::new(dir));
    c.open_validation = OpenValidation::Lazy;
    // A tiny budget: about one block per batch, so each stage has many batches.
    c.sync_write_batch_bytes = 1 << 10;
    let source: Option<Arc<dyn migrations::BlockSource>> = (mode == "v0")
        .then(|| Arc::new(VecSource::new(chain(BLOCKS, SEED))) as Arc<dyn migrations::BlockSource>);
    let options = MigrateOptions {
        source,
        progress: Some(Box::new(|p: &MigrationProgress| {
            let event = match p.event {
                ProgressEvent::Started => "start",
                ProgressEvent::Progress => "progress",
                ProgressEvent::Finished => "finish",
            };
            // Stage C is a fast in-memory scan then one commit: slow its reports down so a
            // kill aimed at a point inside it lands before the commit.
            if p.stage == Stage::Accumulator {
                std::thread::sleep(Duration::from_millis(1));
            }
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "P {} {event} {:?}",
                stage_tag(p.stage),
                p.height.map(|h| h.0)
            );
            let _ = out.flush();
        })),
        progress_every_heights: Some(1),
    };
    FinalisedState::<B>::open_with(c, options).expect("child open");
    println!("done");
}

fn spawn(
    test: &str,
    dir: &Path,
    mode: &str,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = spawn_test(
        test,
        &[(DIR_ENV, dir.as_os_str()), (MODE_ENV, mode.as_ref())],
    );
    let lines = drain(&mut child);
    (child, lines)
}

/// A progress line's stage tag and whether it is a finish, or `None` for other lines.
fn parse(line: &str) -> Option<(&str, bool)> {
    let rest = line.split("P ").nth(1)?;
    let mut parts = rest.split(' ');
    let stage = parts.next()?;
    let event = parts.next()?;
    Some((stage, event == "finish"))
}

/// The invariants a kill must never break: each watermark covers only committed entries.
fn check_watermarks<B: Backend>(dir: &Path, blocks: &[IndexedBlock]) {
    let store = B::open_in(&config(dir).store_dir().join(B::NAME), V1_TABLES).unwrap();
    let r = store.begin_read().unwrap();
    let meta = r.get_row::<Metadata>(&METADATA_KEY).unwrap();
    let Some(meta) = meta else { return };
    if meta.version == DbVersion::new(1, 2, 0) {
        assert_eq!(meta.migration_status, MigrationStatus::Empty);
        assert!(
            r.get_row::<MetadataHeights>(&MIGRATION_SPENT_PROGRESS_KEY)
                .unwrap()
                .is_none()
        );
        assert!(
            r.get_row::<MetadataHeights>(&MIGRATION_TXID_LOCATION_PROGRESS_KEY)
                .unwrap()
                .is_none()
        );
        return;
    }
    if let Some(next) = r
        .get_row::<MetadataHeights>(&MIGRATION_TXID_LOCATION_PROGRESS_KEY)
        .unwrap()
    {
        for b in &blocks[..next.0 as usize] {
            for tx in &b.transactions {
                assert!(
                    r.get_row::<TxidLocation>(&tx.txid).unwrap().is_some(),
                    "stage A watermark {next} passes committed data"
                );
            }
        }
    }
    if let Some(next) = r
        .get_row::<MetadataHeights>(&MIGRATION_SPENT_PROGRESS_KEY)
        .unwrap()
    {
        for b in &blocks[..next.0 as usize] {
            for input in b
                .transactions
                .iter()
                .flat_map(|t| t.transparent.iter().flat_map(|t| &t.vin))
            {
                if let Some(op) = input.outpoint() {
                    assert!(
                        r.get_row::<Spent>(&op).unwrap().is_some(),
                        "stage B watermark {next} passes committed data"
                    );
                }
            }
        }
    }
}

fn dump_v0<B: Backend>(dir: &Path) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let path = dir.join("local").join(B::NAME);
    if !path.exists() {
        return None;
    }
    let store = B::open_in(&path, V0_TABLES).unwrap();
    let r = store.begin_read().unwrap();
    let mut rows = Vec::new();
    for t in V0_TABLES {
        for row in r
            .range(t.name, KeyRange::all(), Direction::Forward)
            .unwrap()
        {
            rows.push(row.unwrap());
        }
    }
    Some(rows)
}

/// Kills children at random points until every stage in `stages` took `KILLS_PER_STAGE`
/// kills, then lets one finish. Returns the kills per stage.
fn kill_through<B: Backend>(
    test: &str,
    dir: &Path,
    mode: &str,
    stages: &[&str],
    rng: &mut SplitMix64,
    blocks: &[IndexedBlock],
    v0_rows: Option<&Vec<(Vec<u8>, Vec<u8>)>>,
) -> Vec<usize> {
    let mut kills = vec![0usize; stages.len()];
    let mut target = 0usize;
    let mut finished = false;
    for _ in 0..400 {
        if target >= stages.len() {
            break;
        }
        let (mut child, lines) = spawn(test, dir, mode);
        // Wait for the target stage to report, then let a random number of its reports
        // pass (the stage C rebuild reports every height), then a random sub-millisecond
        // to few-millisecond delay: mid-batch, mid-commit or between batches.
        let budget = match stages[target] {
            "C" => rng.next() % (BLOCKS as u64 / 2),
            _ => rng.next() % 3,
        };
        let mut in_stage: Option<String> = None;
        let mut seen_in_target = 0u64;
        loop {
            let Ok(line) = lines.recv_timeout(Duration::from_secs(120)) else {
                panic!("child went silent or died");
            };
            if line.ends_with("done") {
                finished = true;
                break;
            }
            let Some((stage, finish)) = parse(&line) else {
                continue;
            };
            in_stage = (!finish).then(|| stage.to_owned());
            if let Some(pos) = stages.iter().position(|s| *s == stage)
                && pos > target
            {
                // The target stage is over (its kills are done, or it was too short).
                target = pos;
            }
            if stage == stages[target] && !finish {
                if seen_in_target >= budget {
                    break;
                }
                seen_in_target += 1;
            }
        }
        if finished {
            child.wait().unwrap();
            break;
        }
        // Stage C is one short scan and one commit: kill it on the report itself, or the
        // delay lets it finish before the kill lands.
        if stages[target] != "C" {
            std::thread::sleep(Duration::from_micros(rng.next() % 3_000));
        }
        // Whatever the child printed meanwhile says where it was when it died.
        for line in lines.try_iter() {
            if line.ends_with("done") {
                finished = true;
            } else if let Some((stage, finish)) = parse(&line) {
                in_stage = (!finish).then(|| stage.to_owned());
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        if finished {
            break;
        }
        if let Some(pos) = in_stage.and_then(|s| stages.iter().position(|t| *t == s.as_str())) {
            kills[pos] += 1;
            if pos == target && kills[pos] >= KILLS_PER_STAGE {
                target += 1;
            }
        }
        check_watermarks::<B>(dir, blocks);
        if let (Some(before), Some(now)) = (v0_rows, dump_v0::<B>(dir)) {
            assert!(*before == now, "v0 changed before promotion");
        }
    }
    if !finished {
        let (mut child, lines) = spawn(test, dir, mode);
        assert!(
            lines.iter().any(|l| l.ends_with("done")),
            "the final run did not finish"
        );
        child.wait().unwrap();
    }
    kills
}

fn assert_clean<B: Backend>(dir: &Path, blocks: &[IndexedBlock]) {
    let resumed = FinalisedState::<B>::open(config(dir)).unwrap();
    let clean_dir = tempfile::tempdir().unwrap();
    let clean = open::<B>(clean_dir.path());
    clean.write_blocks(blocks.iter().cloned(), |_| {}).unwrap();
    assert_same_tables(&resumed, &clean);
}

fn v1_1_to_v1_2_survives_kills<B: Backend>(test: &str) {
    if let (Ok(dir), Ok(mode)) = (std::env::var(DIR_ENV), std::env::var(MODE_ENV)) {
        return child::<B>(&dir, &mode);
    }
    let mut rng = SplitMix64::from_env_or_clock("migration crash");
    let blocks = chain(BLOCKS, SEED);
    let dir = tempfile::tempdir().unwrap();
    {
        let raw = B::open_in(&config(dir.path()).store_dir().join(B::NAME), V1_TABLES).unwrap();
        write_v1_store(&raw, blocks.iter().cloned(), V1Fixture::V1_1).unwrap();
    }
    let kills = kill_through::<B>(
        test,
        dir.path(),
        "v1",
        &["A", "B", "C"],
        &mut rng,
        &blocks,
        None,
    );
    eprintln!("kills per stage A/B/C: {kills:?}");
    for (stage, k) in ["A", "B", "C"].iter().zip(&kills) {
        assert!(*k >= KILLS_PER_STAGE, "stage {stage}: only {k} kills");
    }
    assert_clean::<B>(dir.path(), &blocks);
}

fn v0_to_v1_survives_kills<B: Backend>(test: &str) {
    if let (Ok(dir), Ok(mode)) = (std::env::var(DIR_ENV), std::env::var(MODE_ENV)) {
        return child::<B>(&dir, &mode);
    }
    let mut rng = SplitMix64::from_env_or_clock("migration crash");
    let blocks = chain(BLOCKS, SEED);
    let dir = tempfile::tempdir().unwrap();
    let v0_rows = {
        let v0 = B::open_in(&dir.path().join("local").join(B::NAME), V0_TABLES).unwrap();
        write_v0_store(&v0, blocks.iter().cloned()).unwrap();
        drop(v0);
        dump_v0::<B>(dir.path()).unwrap()
    };
    let kills = kill_through::<B>(
        test,
        dir.path(),
        "v0",
        &["S"],
        &mut rng,
        &blocks,
        Some(&v0_rows),
    );
    eprintln!("kills in the shadow build: {kills:?}");
    assert!(kills[0] >= KILLS_PER_STAGE, "only {} kills", kills[0]);
    assert!(
        !dir.path().join("local").exists(),
        "v0 removed after promotion"
    );
    assert_clean::<B>(dir.path(), &blocks);
}

#[cfg(feature = "redb")]
#[test]
fn v1_1_to_v1_2_survives_kills_redb() {
    v1_1_to_v1_2_survives_kills::<store_redb::RedbStore>("v1_1_to_v1_2_survives_kills_redb");
}

#[cfg(feature = "rocksdb")]
#[test]
fn v1_1_to_v1_2_survives_kills_rocksdb() {
    v1_1_to_v1_2_survives_kills::<store_lmdb_compat::RocksStore>(
        "v1_1_to_v1_2_survives_kills_rocksdb",
    );
}

#[cfg(feature = "redb")]
#[test]
fn v0_to_v1_survives_kills_redb() {
    v0_to_v1_survives_kills::<store_redb::RedbStore>("v0_to_v1_survives_kills_redb");
}

#[cfg(feature = "rocksdb")]
#[test]
fn v0_to_v1_survives_kills_rocksdb() {
    v0_to_v1_survives_kills::<store_lmdb_compat::RocksStore>("v0_to_v1_survives_kills_rocksdb");
}
