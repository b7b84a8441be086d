//! Scaling benchmark of the v1.1 → v1.2 migration on redb.
//!
//! Builds v1.1 stores of N and 4N synthetic blocks with the fixture writer (once per size),
//! then migrates a fresh copy of each through the runner several times, the sizes
//! interleaved (N, 4N, N, 4N, …) so that a slow spell of the shared disk or CPU hits both,
//! and times every stage from the progress reports. After each migration, the raw
//! baseline: the same `spent` rows (stage B's output) inserted in key order, in the same
//! batches, with the same synced commits, into an empty table of a fresh store. Printed
//! results, each from the medians of a size's runs, with the per-run ranges beside them:
//!
//! - `time(4N) / time(N)` for the whole step and for each stage (target ≤ 4.5: no stage
//!   grows super-linearly), and the raw sorted insert's own ratio (its synced commit's
//!   time varies run to run on a shared disk);
//! - stage B's throughput over the raw sorted-insert throughput (target ≥ 0.7).
//!
//! `STRATA_BENCH_N` sets N (default 25,000); `STRATA_BENCH_SIZES` the sizes as multiples of
//! N (default `1,4`; the scaling ratio is largest / smallest); `STRATA_BENCH_REPEAT` the
//! runs per size (default 3); `STRATA_BENCH_BATCH_MIB` the batch budget (default 16);
//! `STRATA_BENCH_WORKERS` the migration's worker threads (default: the available
//! parallelism; 0 runs everything on one thread). `STRATA_BENCH_STAGE_MEM=1`
//! also measures each stage's peak heap: the bytes allocated (counted by this binary's
//! allocator, off unless asked for) at most while the stage ran, above what was allocated
//! when it started — the stage's own memory, which the process's RSS hides (the allocator
//! keeps freed memory, such as the fixture writer's, and reuses it). Besides the prose, each result is
//! printed as a machine-readable `STRATA-BENCH figure=… key=value …` line, which `cargo
//! xtask bench` (and `cargo xtask bench migrate`) read. Absolute times are noise on shared
//! machines; the ratios are the result. Plain runs, not criterion sampling: one 4N run
//! takes seconds, and its fixture tens of seconds to write.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicIsize};
use std::time::{Duration, Instant};

use migrations::fixture::{V1Fixture, write_v1_store};
use migrations::*;
use storage_traits::kv::{Direction, KeyRange, KvRead, KvStore, KvWrite, TableSpec};
use storage_traits::table::{ACCUMULATOR_KEY, Spent, TxOutSetAccumulator, V1_TABLES};
use storage_traits::{Durability, Table, TableRead};
use store_redb::RedbStore;

struct Run {
    blocks: u32,
    /// The repetition this run belongs to (0-based).
    rep: u32,
    total: Duration,
    stages: BTreeMap<&'static str, Duration>,
    spent_rows: usize,
    /// The raw sorted insert of this run's `spent` rows, measured right after it.
    raw: Duration,
    /// Per stage, with `STRATA_BENCH_STAGE_MEM`: the bytes allocated when it started and
    /// at most while it ran.
    memory: BTreeMap<&'static str, (isize, isize)>,
    /// Counted unspent outputs (the accumulator's count).
    unspent: u64,
}

impl Run {
    fn stage(&self, s: Stage) -> Duration {
        self.stages.get(s.name()).copied().unwrap_or_default()
    }
}

/// Writes the v1.1 fixture store of `blocks` synthetic blocks into `dir`, once per size:
/// every repetition migrates a copy of it.
fn write_fixture(dir: &Path, blocks: u32) {
    let store = RedbStore::open(dir, V1_TABLES).unwrap();
    let mut cfg = fixtures::SynthConfig::new(blocks, 2024);
    cfg.spam_band = None;
    let t = Instant::now();
    write_v1_store(&store, fixtures::synth_chain(&cfg), V1Fixture::V1_1).unwrap();
    eprintln!(
        "  v1.1 fixture store of {blocks} blocks written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
}

/// Copies the fixture's files into `to` and syncs them, so that no writeback of the copy
/// runs beside the measured migration's synced commits.
fn copy_fixture(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        assert!(
            entry.file_type().unwrap().is_file(),
            "fixture: a plain file"
        );
        let dest = to.join(entry.file_name());
        std::fs::copy(entry.path(), &dest).unwrap();
        std::fs::File::open(&dest).unwrap().sync_all().unwrap();
    }
    std::fs::File::open(to).unwrap().sync_all().unwrap();
}

/// The system allocator, counting the bytes allocated (and their peak) while `ON`.
struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static ALLOCATED: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

impl Counting {
    fn add(bytes: isize) {
        if ON.load(Relaxed) {
            let now = ALLOCATED.fetch_add(bytes, Relaxed) + bytes;
            PEAK.fetch_max(now, Relaxed);
        }
    }

    /// Starts a measurement: the peak is the current allocation from now on.
    fn start() -> isize {
        ON.store(true, Relaxed);
        let now = ALLOCATED.load(Relaxed);
        PEAK.store(now, Relaxed);
        now
    }
}

// SAFETY: every call is forwarded to `System` unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            Counting::add(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            Counting::add(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) };
        Counting::add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            Counting::add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Migrates a copy of the fixture in `fixture` (v1.1 → v1.2), then measures the raw
/// baseline on the `spent` rows it produced.
fn migrate(fixture: &Path, blocks: u32, rep: u32, batch: usize, workers: Option<usize>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(fixture, dir.path());
    let store = RedbStore::open(dir.path(), V1_TABLES).unwrap();
    let mut stages = BTreeMap::new();
    let mut memory = BTreeMap::new();
    let measure_memory = std::env::var_os("STRATA_BENCH_STAGE_MEM").is_some();
    let started = Instant::now();
    {
        let mut cb = |p: &MigrationProgress| {
            if p.event == ProgressEvent::Finished {
                stages.insert(p.stage.name(), p.elapsed);
            }
            if measure_memory {
                match p.event {
                    ProgressEvent::Started => {
                        memory.insert(p.stage.name(), (Counting::start(), 0));
                    }
                    ProgressEvent::Finished => {
                        if let Some(m) = memory.get_mut(p.stage.name()) {
                            m.1 = PEAK.load(Relaxed);
                        }
                    }
                    _ => {}
                }
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
    let unspent = r
        .get_row::<TxOutSetAccumulator>(&ACCUMULATOR_KEY)
        .unwrap()
        .map_or(0, |info| info.transaction_outputs);
    let spent_rows = r
        .range(Spent::NAME, KeyRange::all(), Direction::Forward)
        .unwrap()
        .collect::<storage_traits::Result<Vec<_>>>()
        .unwrap();
    drop(r);
    drop(store);
    // Before deleting the migrated store: freeing its extents runs journal work that a
    // synced commit right after it would wait for.
    let raw = raw_sorted_insert(&spent_rows, batch);
    drop(dir);
    Run {
        blocks,
        rep,
        total,
        stages,
        spent_rows: spent_rows.len(),
        raw,
        memory,
        unspent,
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

/// One measured time of a run.
type Measure = dyn Fn(&Run) -> Duration;

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|s| s.trim().parse().ok())
}

/// The median and the range of `xs` (not empty).
fn stats(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    let median = if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    };
    (median, xs[0], xs[n - 1])
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let n: u32 = env("STRATA_BENCH_N").unwrap_or(25_000);
    let batch = env::<usize>("STRATA_BENCH_BATCH_MIB").unwrap_or(16) << 20;
    let workers: Option<usize> = env("STRATA_BENCH_WORKERS");
    let repeat: u32 = env("STRATA_BENCH_REPEAT").unwrap_or(3).max(1);
    let mut sizes: Vec<u32> = std::env::var("STRATA_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|m| m.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 4]);
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.len() < 2 {
        sizes = vec![1, 4];
    }
    eprintln!(
        "migrate bench: N = {n}, sizes {sizes:?} x N, {repeat} repetitions interleaved, batch budget {} MiB, backend redb, {} worker threads",
        batch >> 20,
        workers.unwrap_or(MigrationOptions::default().worker_threads)
    );
    let fixtures_dir = tempfile::tempdir().unwrap();
    let fixture = |blocks: u32| fixtures_dir.path().join(format!("v1_1_{blocks}"));
    for blocks in sizes.iter().map(|m| m * n) {
        write_fixture(&fixture(blocks), blocks);
    }
    // Sizes interleaved within each repetition (N, 4N, N, 4N, …): a slow spell of the
    // shared disk or CPU hits both sizes rather than one.
    let mut runs: Vec<Run> = Vec::new();
    for rep in 0..repeat {
        for blocks in sizes.iter().map(|m| m * n) {
            let run = migrate(&fixture(blocks), blocks, rep, batch, workers);
            let b = run.stage(Stage::Spent).as_secs_f64();
            println!(
                "{:>7} blocks, run {}: migration {:>6.2} s | A {:>5.2} s | B {:>5.2} s | C {:>5.2} s | spent rows {} | raw sorted insert {:.2} s -> B/raw {:.2}",
                run.blocks,
                rep + 1,
                run.total.as_secs_f64(),
                run.stage(Stage::TxidLocation).as_secs_f64(),
                b,
                run.stage(Stage::Accumulator).as_secs_f64(),
                run.spent_rows,
                run.raw.as_secs_f64(),
                run.raw.as_secs_f64() / b,
            );
            println!(
                "STRATA-BENCH figure=migrate_run blocks={} rep={} total_s={} a_s={} b_s={} c_s={} spent_rows={} raw_b_s={}",
                run.blocks,
                rep,
                run.total.as_secs_f64(),
                run.stage(Stage::TxidLocation).as_secs_f64(),
                b,
                run.stage(Stage::Accumulator).as_secs_f64(),
                run.spent_rows,
                run.raw.as_secs_f64()
            );
            if !run.memory.is_empty() {
                let mib = |bytes: isize| bytes as f64 / 1048576.0;
                let per_stage: Vec<String> = run
                    .memory
                    .iter()
                    .map(|(stage, (start, peak))| format!("{stage} +{:.1}", mib(peak - start)))
                    .collect();
                println!(
                    "        peak heap above each stage's start, MiB: {} | counted unspent outputs {}",
                    per_stage.join(" | "),
                    run.unspent
                );
                if let Some((start, peak)) = run.memory.get(Stage::Accumulator.name()) {
                    println!(
                        "STRATA-BENCH figure=migrate_stage_c_memory blocks={} rep={rep} peak_bytes={} unspent={} spent_rows={}",
                        run.blocks,
                        peak - start,
                        run.unspent,
                        run.spent_rows
                    );
                }
            }
            runs.push(run);
        }
    }
    let (small, large) = (sizes[0] * n, sizes[sizes.len() - 1] * n);
    let multiple = sizes[sizes.len() - 1] / sizes[0];
    let of = |blocks: u32| runs.iter().filter(move |r| r.blocks == blocks);
    let secs = |blocks: u32, f: &Measure| stats(of(blocks).map(|r| f(r).as_secs_f64()).collect());
    // Per repetition, the large run over the small one (the pairs measured side by side).
    let pair_ratios = |f: &Measure| {
        stats(
            (0..repeat)
                .map(|rep| {
                    let t = |blocks: u32| {
                        runs.iter()
                            .find(|r| r.blocks == blocks && r.rep == rep)
                            .map_or(0.0, |r| f(r).as_secs_f64())
                    };
                    t(large) / t(small)
                })
                .collect(),
        )
    };
    let stage_fns: [(&str, &Measure); 5] = [
        ("whole step", &|r: &Run| r.total),
        ("stage A", &|r: &Run| r.stage(Stage::TxidLocation)),
        ("stage B", &|r: &Run| r.stage(Stage::Spent)),
        ("stage C", &|r: &Run| r.stage(Stage::Accumulator)),
        ("raw sorted insert of B's rows", &|r: &Run| r.raw),
    ];
    println!("medians over {repeat} runs per size (range):");
    for (name, f) in stage_fns {
        let (ms, lo_s, hi_s) = secs(small, f);
        let (ml, lo_l, hi_l) = secs(large, f);
        let (_, lo_p, hi_p) = pair_ratios(f);
        println!(
            "  {name:<30} {small:>7} blocks {ms:>6.2} s ({lo_s:.2} - {hi_s:.2}) | {large:>7} blocks {ml:>6.2} s ({lo_l:.2} - {hi_l:.2}) | time({multiple}N)/time(N) of medians {:.2} (per-run pairs {lo_p:.2} - {hi_p:.2})",
            ml / ms
        );
    }
    let (total_small, ..) = secs(small, &|r| r.total);
    let (total_large, ..) = secs(large, &|r| r.total);
    let (raw_small, ..) = secs(small, &|r| r.raw);
    let (raw_large, ..) = secs(large, &|r| r.raw);
    let scaling = total_large / total_small;
    let raw_scaling = raw_large / raw_small;
    let (_, scaling_lo, scaling_hi) = pair_ratios(&|r| r.total);
    println!(
        "scaling time({multiple}N)/time(N), whole step, medians: {scaling:.2} (target <= 4.5 for 4N; per-run pairs {scaling_lo:.2} - {scaling_hi:.2}); the raw sorted insert's own: {raw_scaling:.2}"
    );
    // The raw sorted insert of stage B's rows scales too (bigger trees, a synced commit
    // whose time varies run to run): its own ratio is printed beside the migration's.
    println!(
        "STRATA-BENCH figure=migrate_scaling value={scaling} baseline={raw_scaling} ratio={scaling} unit=x multiple={multiple} n={n} runs={repeat} min={scaling_lo} max={scaling_hi}"
    );
    let (b_large, ..) = secs(large, &|r| r.stage(Stage::Spent));
    let (ratio_median, ratio_lo, ratio_hi) = stats(
        of(large)
            .map(|r| r.raw.as_secs_f64() / r.stage(Stage::Spent).as_secs_f64())
            .collect(),
    );
    let rows = of(large).next().map_or(0, |r| r.spent_rows) as f64;
    println!(
        "stage B at {large} blocks: {:.0} rows/s (median {b_large:.2} s) vs raw sorted insert {:.0} rows/s (median {raw_large:.2} s) -> B/raw of medians {:.2}, per run median {ratio_median:.2} ({ratio_lo:.2} - {ratio_hi:.2}) (target >= 0.7)",
        rows / b_large,
        rows / raw_large,
        raw_large / b_large
    );
    println!(
        "STRATA-BENCH figure=migrate_stage_b value={} baseline={} ratio={} unit=rows/s blocks={large} runs={repeat} min={ratio_lo} max={ratio_hi}",
        rows / b_large,
        rows / raw_large,
        raw_large / b_large,
    );
}
