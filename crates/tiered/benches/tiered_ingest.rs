//! What freezing costs ingest: sustained ingest (heights/s) with the background lifecycle
//! running beside the same ingest with it off, in the same run (rounds alternate the two,
//! so they share the machine's background load), and the worst per-height commit latency
//! while a freeze runs against the median.
//!
//! `cargo bench --workspace --all-features --bench tiered_ingest`, or `cargo xtask bench
//! --only tiered`, which reads the two `STRATA-BENCH` lines this prints on stdout (medians
//! over the rounds); each round's figures go to stderr. Knobs: `TIERED_BENCH_HEIGHTS` (default 2000), `TIERED_BENCH_CHUNK` (heights per
//! chunk, default 200), `TIERED_BENCH_ROUNDS` (default 5), `TIERED_BENCH_DIR` (where the
//! stores go; default the system temp directory).

use std::time::{Duration, Instant};

use finalised_state::{Network, OpenValidation};
use fixtures::{SynthConfig, synth_chain};
use storage_traits::model::IndexedBlock;
use tiered::{Geometry, TieredConfig, TieredStore};

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Run {
    heights_per_s: f64,
    /// Per height: (commit started, commit latency).
    commits: Vec<(Instant, Duration)>,
    /// Freeze ticks: (start, end).
    freezes: Vec<(Instant, Instant)>,
    frozen: u64,
}

fn run(chain: &[IndexedBlock], chunk: u32, lifecycle: bool) -> Run {
    let base = std::env::var_os("TIERED_BENCH_DIR").map(std::path::PathBuf::from);
    let dir = match &base {
        Some(b) => tempfile::tempdir_in(b),
        None => tempfile::tempdir(),
    }
    .expect("a temporary directory");
    let mut cfg = TieredConfig::new(dir.path());
    cfg.geometry = Geometry::new(0, chunk, 1000).expect("geometry");
    cfg.network = Network::Regtest;
    cfg.open_validation = OpenValidation::Lazy;
    let store = TieredStore::open(cfg, None).expect("open");
    let handle = lifecycle.then(|| store.start_lifecycle());
    let mut commits = Vec::with_capacity(chain.len());
    let started = Instant::now();
    for b in chain {
        let t = Instant::now();
        store.ingest(b.clone()).expect("ingest");
        commits.push((t, t.elapsed()));
    }
    let elapsed = started.elapsed();
    let (freezes, frozen) = match handle {
        Some(h) => {
            let stats = h.stop().expect("lifecycle");
            assert_eq!(stats.errors, 0, "{stats:?}");
            (
                stats
                    .freeze_spans
                    .iter()
                    .map(|s| (s.start, s.end))
                    .collect(),
                stats.frozen,
            )
        }
        None => (Vec::new(), 0),
    };
    Run {
        heights_per_s: chain.len() as f64 / elapsed.as_secs_f64(),
        commits,
        freezes,
        frozen,
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let heights = env_u32("TIERED_BENCH_HEIGHTS", 2000);
    let chunk = env_u32("TIERED_BENCH_CHUNK", 200);
    let rounds = env_u32("TIERED_BENCH_ROUNDS", 5);
    let chain: Vec<IndexedBlock> = synth_chain(&SynthConfig::new(heights, 42)).collect();
    let payload: usize = chain
        .iter()
        .map(|b| storage_traits::Versioned::to_bytes(b).len())
        .sum();
    eprintln!(
        "tiered_ingest: {heights} heights ({:.1} KiB mean payload), {chunk} per chunk, {rounds} rounds",
        payload as f64 / heights as f64 / 1024.0
    );

    let mut ratios = Vec::new();
    let mut offs = Vec::new();
    let mut ons = Vec::new();
    let mut stalls = Vec::new();
    let mut worst_ms = Vec::new();
    let mut median_ms = Vec::new();
    let mut worst_off_ms = Vec::new();
    let mut median_off_ms = Vec::new();
    let mut jitter = Vec::new();
    for round in 0..rounds {
        // Alternate which goes first, so neither always meets a warmer cache.
        let (off, on) = if round % 2 == 0 {
            let off = run(&chain, chunk, false);
            (off, run(&chain, chunk, true))
        } else {
            let on = run(&chain, chunk, true);
            (run(&chain, chunk, false), on)
        };
        let ratio = on.heights_per_s / off.heights_per_s;
        let mut lat_on: Vec<f64> = on.commits.iter().map(|(_, d)| ms(*d)).collect();
        let med_on = median(&mut lat_on);
        let mut lat_off: Vec<f64> = off.commits.iter().map(|(_, d)| ms(*d)).collect();
        let med_off = median(&mut lat_off);
        let max_off = lat_off.last().copied().unwrap_or(0.0);
        let during: Vec<f64> = on
            .commits
            .iter()
            .filter(|(t, d)| on.freezes.iter().any(|(s, e)| *t <= *e && *t + *d >= *s))
            .map(|(_, d)| ms(*d))
            .collect();
        let worst = during.iter().copied().fold(0.0, f64::max);
        eprintln!(
            "round {round}: off {:.0} h/s, on {:.0} h/s (ratio {ratio:.3}); commit median {med_on:.2} ms \
             (off {med_off:.2}), worst during a freeze {worst:.2} ms over {} commits ({} chunks frozen in {} ticks); worst with the lifecycle off {max_off:.2} ms",
            off.heights_per_s,
            on.heights_per_s,
            during.len(),
            on.frozen,
            on.freezes.len()
        );
        ratios.push(ratio);
        offs.push(off.heights_per_s);
        ons.push(on.heights_per_s);
        stalls.push(worst / med_on);
        worst_ms.push(worst);
        median_ms.push(med_on);
        worst_off_ms.push(max_off);
        median_off_ms.push(med_off);
        jitter.push(max_off / med_off);
    }
    // Medians over the rounds; names and baselines use `_` for spaces (one token each).
    println!(
        "STRATA-BENCH figure=tiered_ingest name=ingest_with_the_lifecycle_on,_{heights}_heights,_chunks_of_{chunk} \
         value={:.2} baseline={:.2} ratio={:.4} unit=heights/s \
         baseline_name=the_same_ingest_with_the_lifecycle_off,_same_run rounds={rounds}",
        median(&mut ons),
        median(&mut offs),
        median(&mut ratios),
    );
    println!(
        "STRATA-BENCH figure=tiered_freeze_stall name=worst_per-height_commit_during_a_freeze_(ms) \
         value={:.3} baseline={:.3} ratio={:.3} unit=ms \
         baseline_name=median_per-height_commit_latency_(lifecycle_on) worst_off_ms={:.3} rounds={rounds}",
        median(&mut worst_ms),
        median(&mut median_ms),
        median(&mut stalls),
        median(&mut worst_off_ms.clone()),
    );
    // The machine's own jitter, for scale: the worst commit with no freeze at all.
    println!(
        "STRATA-BENCH figure=tiered_worst_commit_off name=worst_per-height_commit_with_the_lifecycle_off_(ms) \
         value={:.3} baseline={:.3} ratio={:.3} unit=ms \
         baseline_name=median_per-height_commit_latency_(lifecycle_off) rounds={rounds}",
        median(&mut worst_off_ms),
        median(&mut median_off_ms),
        median(&mut jitter),
    );
}
