//! Scaling benchmark of the v1.1 → v1.2 migration on redb.
//!
//! Builds v1.1 stores of N and 4N synthetic blocks with the fixture writer, migrates each
//! through the runner, and times every stage from the progress reports. Beside them, in the
//! same run, the raw baseline: the same `spent` rows (stage B's output) inserted in key
//! order, in the same batches, with the same synced commits, into an empty table of a
//! fresh store. Printed results:
//!
//! - `time(4N) / time(N)` for the whole step and for each stage (target ≤ 4.5: no stage
//!   grows super-linearly);
//! - stage B's throughput over the raw sorted-insert throughput (target ≥ 0.7).
//!
//! `STRATA_BENCH_N` sets N (default 25,000); `STRATA_BENCH_SIZES` the sizes as multiples of
//! N (default `1,4`; the scaling ratio is largest / smallest); `STRATA_BENCH_BATCH_MIB` the
//! batch budget (default 16); `STRATA_BENCH_WORKERS` the migration's worker threads
//! (default: the available parallelism; 0 runs everything on one thread). Besides the prose, each result is printed as a
//! machine-readable `STRATA-BENCH figure=… key=value …` line, which `cargo xtask bench`
//! (and `cargo xtask bench migrate`) read. Absolute times are noise on shared machines; the ratios are the result.
//! A single run per size, not criterion sampling: one 4N run takes minutes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use migrations::fixture::{V1Fixture, write_v1_store};
use migrations::*;
use storage_traits::kv::{Direction, KeyRange, KvRead, KvStore, KvWrite, TableSpec};
use storage_traits::table::{Spent, V1_TABLES};
use storage_traits::{Durability, Table};
use store_redb::RedbStore;

struct Run {
    blocks: u32,
    total: Duration,
    stages: BTreeMap<&'static str, Duration>,
    spent_rows: Vec<(Vec<u8>, Vec<u8>)>,
}

fn migrate(blocks: u32, batch: usize, workers: Option<usize>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path(), V1_TABLES).unwrap();
    let mut cfg = fixtures::SynthConfig::new(blocks, 2024);
    cfg.spam_band = None;
    let t = Instant::now();
    write_v1_store(&store, fixtures::synth_chain(&cfg), V1Fixture::V1_1).unwrap();
    eprintln!(
        "  v1.1 fixture store of {blocks} blocks written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut stages = BTreeMap::new();
    let started = Instant::now();
    {
        let mut cb = |p: &MigrationProgress| {
            if p.event == ProgressEvent::Finished {
                stages.insert(p.stage.name(), p.elapsed);
            }
        };
        let defaults = MigrationOptions::default();
        let options = MigrationOptions {
            write_batch_bytes: batch,
            progress_every_heights: 50_000,
            worker_threads: workers.unwrap_or(defaults.worker_threads),
            ..defaults
        };
        let mut ctx = MigrationContext::new(&store, options, None, &mut cb);
        all_steps().run(&mut ctx, V1_2_0).unwrap();
    }
    let total = started.elapsed();
    let r = store.begin_read().unwrap();
    let spent_rows = r
        .range(Spent::NAME, KeyRange::all(), Direction::Forward)
        .unwrap()
        .collect::<storage_traits::Result<Vec<_>>>()
        .unwrap();
    Run {
        blocks,
        total,
        stages,
        spent_rows,
    }
}

/// The raw baseline: the same rows in the same batches as stage B made them (rows in
/// spender-height order, cut at a height boundary once `key + 64` bytes per row reach the
/// budget), each batch sorted by key and inserted with `insert_sorted`, one synced commit
/// per batch, into an empty table of a fresh store. What it leaves out is exactly stage B's
/// own work: scanning and verifying `transparent`, and building and checksumming entries.
fn raw_sorted_insert(rows: &[(Vec<u8>, Vec<u8>)], batch: usize) -> Duration {
    // The spender height is in the value: [0x01][0x01 tag][BE u32 height][BE u16 index]…
    let height = |v: &[u8]| u32::from_be_bytes([v[2], v[3], v[4], v[5]]);
    let mut by_height: Vec<&(Vec<u8>, Vec<u8>)> = rows.iter().collect();
    by_height.sort_by_key(|(_, v)| height(v));
    let mut batches: Vec<Vec<&(Vec<u8>, Vec<u8>)>> = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for (i, row) in by_height.iter().enumerate() {
        current.push(*row);
        bytes += row.0.len() + 64;
        let boundary = by_height
            .get(i + 1)
            .is_none_or(|n| height(&n.1) != height(&row.1));
        if bytes >= batch && boundary {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
    }
    if !current.is_empty() {
        batches.push(current);
    }
    for b in &mut batches {
        b.sort_by(|x, y| x.0.cmp(&y.0));
    }
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path(), &[TableSpec::plain(Spent::NAME)]).unwrap();
    let started = Instant::now();
    for b in &batches {
        let mut w = store.begin_write().unwrap();
        w.insert_sorted(
            Spent::NAME,
            &mut b.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
        )
        .unwrap();
        w.commit(Durability::Synced).unwrap();
    }
    started.elapsed()
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let n: u32 = std::env::var("STRATA_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(25_000);
    let batch = std::env::var("STRATA_BENCH_BATCH_MIB")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(16)
        << 20;
    let workers: Option<usize> = std::env::var("STRATA_BENCH_WORKERS")
        .ok()
        .and_then(|s| s.parse().ok());
    eprintln!(
        "migrate bench: N = {n}, batch budget {} MiB, backend redb, {} worker threads",
        batch >> 20,
        workers.unwrap_or(MigrationOptions::default().worker_threads)
    );
    let mut sizes: Vec<u32> = std::env::var("STRATA_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|m| m.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 4]);
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.len() < 2 {
        sizes = vec![1, 4];
    }
    let mut runs = Vec::new();
    let mut raws = Vec::new();
    for blocks in sizes.iter().map(|m| m * n) {
        let run = migrate(blocks, batch, workers);
        let raw = raw_sorted_insert(&run.spent_rows, batch);
        let b = run
            .stages
            .get(Stage::Spent.name())
            .copied()
            .unwrap_or_default();
        let rows = run.spent_rows.len() as f64;
        println!(
            "{:>7} blocks: migration {:>8.2} s | A {:>7.2} s | B {:>7.2} s | C {:>7.2} s | spent rows {} | B {:>9.0} rows/s vs raw sorted insert {:>9.0} rows/s ({:.2} s) -> B/raw {:.2}",
            run.blocks,
            run.total.as_secs_f64(),
            run.stages
                .get(Stage::TxidLocation.name())
                .copied()
                .unwrap_or_default()
                .as_secs_f64(),
            b.as_secs_f64(),
            run.stages
                .get(Stage::Accumulator.name())
                .copied()
                .unwrap_or_default()
                .as_secs_f64(),
            run.spent_rows.len(),
            rows / b.as_secs_f64(),
            rows / raw.as_secs_f64(),
            raw.as_secs_f64(),
            raw.as_secs_f64() / b.as_secs_f64(),
        );
        let stage = |s: Stage| {
            run.stages
                .get(s.name())
                .copied()
                .unwrap_or_default()
                .as_secs_f64()
        };
        println!(
            "STRATA-BENCH figure=migrate_run blocks={} total_s={} a_s={} b_s={} c_s={} spent_rows={} raw_b_s={}",
            run.blocks,
            run.total.as_secs_f64(),
            stage(Stage::TxidLocation),
            stage(Stage::Spent),
            stage(Stage::Accumulator),
            run.spent_rows.len(),
            raw.as_secs_f64()
        );
        runs.push(run);
        raws.push(raw);
    }
    let last = runs.len() - 1;
    let multiple = sizes[last] / sizes[0];
    let ratio =
        |f: &dyn Fn(&Run) -> Duration| f(&runs[last]).as_secs_f64() / f(&runs[0]).as_secs_f64();
    println!(
        "scaling time({multiple}N)/time(N): whole step {:.2} (target <= 4.5 for 4N)",
        ratio(&|r| r.total)
    );
    for stage in [Stage::TxidLocation, Stage::Spent, Stage::Accumulator] {
        println!(
            "scaling time({multiple}N)/time(N): stage {} {:.2}",
            stage.name(),
            ratio(&|r| r.stages.get(stage.name()).copied().unwrap_or_default())
        );
    }
    // The raw sorted insert of stage B's rows scales too (bigger trees): its own ratio is
    // the baseline the migration's scaling is read against.
    let raw_scaling = raws[last].as_secs_f64() / raws[0].as_secs_f64();
    let scaling = ratio(&|r| r.total);
    println!(
        "STRATA-BENCH figure=migrate_scaling value={scaling} baseline={raw_scaling} ratio={scaling} unit=x multiple={multiple} n={n}"
    );
    let big = &runs[last];
    let b = big
        .stages
        .get(Stage::Spent.name())
        .copied()
        .unwrap_or_default()
        .as_secs_f64();
    let rows = big.spent_rows.len() as f64;
    println!(
        "STRATA-BENCH figure=migrate_stage_b value={} baseline={} ratio={} unit=rows/s blocks={}",
        rows / b,
        rows / raws[last].as_secs_f64(),
        raws[last].as_secs_f64() / b,
        big.blocks
    );
}
