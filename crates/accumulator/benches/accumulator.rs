//! Accumulator benchmarks, each figure beside its raw baseline measured in the same run.
//!
//! - raw BLAKE2b-256 on 81-byte messages: `blake2b_simd` (one message at a time, and 4-way
//!   `hash_many`) and RustCrypto `blake2`, to pick the implementation by measurement;
//! - `entry_digest` ns/op (message construction + hash);
//! - bulk rebuild outputs/s on 1 thread and on all threads (slice and streaming inputs);
//! - with `--features muhash`: MuHash3072 insert ns/op, finalize, and rebuild.
//!
//! At the end it prints a summary with the ratios (the result; absolute numbers are
//! noise on shared machines): `rebuild(N threads) / (N × raw single-thread rate)`, target
//! ≥ 0.8. Run: `cargo bench -p accumulator --features muhash`.
//!
//! Each routine records its own timings through `iter_custom`; the summary uses the
//! median per-iteration time over every call criterion made (robust to a noisy neighbour).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use accumulator::{Accumulator, UnspentOutput, entry_digest, entry_message};
use criterion::{Criterion, Throughput};
use storage_traits::model::{Outpoint, ScriptType, TxId, TxOutCompact};

/// Outputs in the rebuild benchmarks.
const REBUILD_OUTPUTS: usize = 1 << 17;

/// Per benchmark: (work units per iteration, recorded per-iteration times in ns).
static TIMINGS: Mutex<BTreeMap<String, (u64, Vec<f64>)>> = Mutex::new(BTreeMap::new());

fn record(name: &str, units: u64, iters: u64, elapsed: Duration) {
    if iters == 0 {
        return;
    }
    if let Ok(mut t) = TIMINGS.lock() {
        let e = t.entry(name.to_owned()).or_insert((units, Vec::new()));
        e.1.push(elapsed.as_nanos() as f64 / iters as f64);
    }
}

/// Median ns per unit of work for `name`.
fn ns_per_unit(name: &str) -> Option<f64> {
    let t = TIMINGS.lock().ok()?;
    let (units, v) = t.get(name)?;
    let mut v = v.clone();
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2] / *units as f64)
}

/// Runs `f` once per iteration and records the time under `group/name` (`units` of work
/// each).
fn bench<F: FnMut()>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    group: &str,
    name: &'static str,
    units: u64,
    mut f: F,
) {
    let key = format!("{group}/{name}");
    g.throughput(Throughput::Elements(units));
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            let elapsed = start.elapsed();
            record(&key, units, iters, elapsed);
            elapsed
        })
    });
}

/// A realistic-looking UTXO set: 1–4 outputs per transaction, grouped by txid.
fn utxo_set(n: usize) -> Vec<UnspentOutput> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut v = Vec::with_capacity(n + 4);
    let mut t = 0u64;
    while v.len() < n {
        let mut txid = [0u8; 32];
        txid[..8].copy_from_slice(&t.to_le_bytes());
        txid[8..16].copy_from_slice(&next().to_le_bytes());
        t += 1;
        for vout in 0..(1 + next() % 4) as u32 {
            let mut script_hash = [0u8; 20];
            script_hash[..8].copy_from_slice(&next().to_le_bytes());
            v.push((
                Outpoint {
                    prev_txid: TxId(txid),
                    prev_index: vout,
                },
                TxOutCompact {
                    value: next() % 100_000_000_000,
                    script_hash,
                    script_type: if next() % 3 == 0 {
                        ScriptType::P2sh
                    } else {
                        ScriptType::P2pkh
                    },
                },
            ));
        }
    }
    v.truncate(n);
    // Do not cut the last transaction's outputs into a non-contract shape: truncation only
    // drops trailing outputs, which keeps vouts ascending.
    v
}

/// Hashes `msgs` one at a time with blake2b_simd, XOR-folding the digests.
fn raw_single(msgs: &[[u8; 81]]) -> [u8; 32] {
    let mut acc = [0u8; 32];
    for m in msgs {
        let h = blake2b_simd::Params::new().hash_length(32).hash(m);
        for (a, b) in acc.iter_mut().zip(h.as_bytes()) {
            *a ^= b;
        }
    }
    acc
}

/// Hashes `msgs` 64 at a time with blake2b_simd's `hash_many`, XOR-folding the digests.
fn raw_many(msgs: &[[u8; 81]]) -> [u8; 32] {
    let mut params = blake2b_simd::Params::new();
    params.hash_length(32);
    let mut acc = [0u8; 32];
    for chunk in msgs.chunks(64) {
        let mut jobs: Vec<blake2b_simd::many::HashManyJob<'_>> = chunk
            .iter()
            .map(|m| blake2b_simd::many::HashManyJob::new(&params, m))
            .collect();
        blake2b_simd::many::hash_many(jobs.iter_mut());
        for j in &jobs {
            for (a, b) in acc.iter_mut().zip(j.to_hash().as_bytes()) {
                *a ^= b;
            }
        }
    }
    acc
}

/// The raw hashing split evenly over `pool`'s threads, no accumulator logic: what the
/// machine gives `threads` hashing threads right now (on a shared machine, less than
/// `threads ×` the single-thread rate).
fn raw_parallel(pool: &rayon::ThreadPool, msgs: &[[u8; 81]], f: fn(&[[u8; 81]]) -> [u8; 32]) {
    use rayon::prelude::*;
    let per = msgs.len().div_ceil(pool.current_num_threads());
    let r = pool.install(|| {
        msgs.par_chunks(per).map(f).reduce(
            || [0u8; 32],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x ^= y);
                a
            },
        )
    });
    black_box(r);
}

fn raw_blake2b(c: &mut Criterion, msgs: &[[u8; 81]]) {
    const G: &str = "raw_blake2b_81B";
    let mut g = c.benchmark_group(G);
    let n = msgs.len() as u64;
    bench(&mut g, G, "blake2b_simd", n, || {
        black_box(raw_single(msgs));
    });
    bench(&mut g, G, "blake2b_simd_many", n, || {
        black_box(raw_many(msgs));
    });
    let all = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let many = rayon::ThreadPoolBuilder::new()
        .num_threads(all)
        .build()
        .expect("pool");
    bench(&mut g, G, "blake2b_simd_all_threads", n, || {
        raw_parallel(&many, msgs, raw_single)
    });
    bench(&mut g, G, "blake2b_simd_many_all_threads", n, || {
        raw_parallel(&many, msgs, raw_many)
    });
    bench(&mut g, G, "blake2_rustcrypto", n, || {
        use blake2::Digest;
        let mut acc = [0u8; 32];
        for m in msgs {
            let h = blake2::Blake2b::<blake2::digest::consts::U32>::digest(m);
            for (a, b) in acc.iter_mut().zip(h.iter()) {
                *a ^= b;
            }
        }
        black_box(acc);
    });
    g.finish();
}

fn digest(c: &mut Criterion, set: &[UnspentOutput]) {
    const G: &str = "digest";
    let mut g = c.benchmark_group(G);
    let sample = &set[..4096];
    bench(&mut g, G, "entry_digest", sample.len() as u64, || {
        let mut acc = [0u8; 32];
        for (op, o) in sample {
            let d = entry_digest(op, o);
            acc[0] ^= d[0];
        }
        black_box(acc);
    });
    g.finish();
}

fn rebuild(c: &mut Criterion, set: &[UnspentOutput], all: usize) {
    const G: &str = "rebuild";
    let mut g = c.benchmark_group(G);
    let n = set.len() as u64;
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let many = rayon::ThreadPoolBuilder::new()
        .num_threads(all)
        .build()
        .expect("pool");
    bench(&mut g, G, "slice_1_thread", n, || {
        let r: Accumulator = one
            .install(|| accumulator::rebuild_from_slice(set))
            .expect("rebuild");
        black_box(r);
    });
    bench(&mut g, G, "slice_all_threads", n, || {
        let r: Accumulator = many
            .install(|| accumulator::rebuild_from_slice(set))
            .expect("rebuild");
        black_box(r);
    });
    bench(&mut g, G, "stream_all_threads", n, || {
        let r = many
            .install(|| Accumulator::rebuild(set.iter().copied()))
            .expect("rebuild");
        black_box(r);
    });
    g.finish();
}

#[cfg(feature = "muhash")]
fn muhash(c: &mut Criterion, set: &[UnspentOutput], all: usize) {
    use accumulator::muhash::{MuHash3072, TxOutSetMuHash};
    const G: &str = "muhash";
    let mut g = c.benchmark_group(G);
    let sample = &set[..256];
    bench(&mut g, G, "insert_output", sample.len() as u64, || {
        let mut m = TxOutSetMuHash::new();
        for (op, o) in sample {
            m.insert_output(op, o);
        }
        black_box(m);
    });
    let mut full = MuHash3072::new();
    full.insert(b"a").remove(b"b");
    bench(&mut g, G, "finalize", 1, || {
        black_box(full.finalize());
    });
    let part = &set[..8192];
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let many = rayon::ThreadPoolBuilder::new()
        .num_threads(all)
        .build()
        .expect("pool");
    bench(&mut g, G, "rebuild_1_thread", part.len() as u64, || {
        let r: TxOutSetMuHash = one
            .install(|| accumulator::rebuild_from_slice_with_chunk(part, 1024))
            .expect("rebuild");
        black_box(r);
    });
    bench(&mut g, G, "rebuild_all_threads", part.len() as u64, || {
        let r: TxOutSetMuHash = many
            .install(|| accumulator::rebuild_from_slice_with_chunk(part, 1024))
            .expect("rebuild");
        black_box(r);
    });
    g.finish();
}

fn summary(all: usize) {
    let get = |n: &str| ns_per_unit(n);
    let rate = |ns: f64| 1e9 / ns;
    println!("\n== accumulator benchmark summary ({all} threads available) ==");
    let rows = [
        (
            "raw_blake2b_81B/blake2b_simd",
            "raw BLAKE2b-256, 81 B, blake2b_simd (baseline)",
        ),
        (
            "raw_blake2b_81B/blake2b_simd_many",
            "raw BLAKE2b-256, 81 B, blake2b_simd hash_many",
        ),
        (
            "raw_blake2b_81B/blake2_rustcrypto",
            "raw BLAKE2b-256, 81 B, RustCrypto blake2",
        ),
        ("digest/entry_digest", "entry_digest (message + hash)"),
        ("rebuild/slice_1_thread", "rebuild from slice, 1 thread"),
        (
            "rebuild/slice_all_threads",
            "rebuild from slice, all threads",
        ),
        (
            "rebuild/stream_all_threads",
            "rebuild from stream, all threads",
        ),
        ("muhash/insert_output", "MuHash3072 insert_output"),
        ("muhash/finalize", "MuHash3072 finalize (one inversion)"),
        ("muhash/rebuild_1_thread", "MuHash3072 rebuild, 1 thread"),
        (
            "muhash/rebuild_all_threads",
            "MuHash3072 rebuild, all threads",
        ),
    ];
    let Some(raw) = get("raw_blake2b_81B/blake2b_simd") else {
        println!("(no baseline recorded: run without a filter)");
        return;
    };
    println!(
        "{:<48} {:>12} {:>14} {:>10}",
        "benchmark", "ns/op", "ops/s", "÷ raw"
    );
    for (key, label) in rows {
        if let Some(ns) = get(key) {
            println!(
                "{label:<48} {ns:>12.1} {:>14.0} {:>10.3}",
                rate(ns),
                rate(ns) / rate(raw)
            );
        }
    }
    let ratio =
        |key: &str, threads: usize| get(key).map(|ns| rate(ns) / (threads as f64 * rate(raw)));
    println!();
    if let Some(r) = ratio("rebuild/slice_1_thread", 1) {
        println!("rebuild slice, 1 thread:      {r:.3} × (1 × raw)");
    }
    if let Some(r) = ratio("rebuild/slice_all_threads", all) {
        let verdict = if r >= 0.8 { "meets" } else { "below" };
        println!(
            "rebuild slice, {all} threads:    {r:.3} × ({all} × raw)   [{verdict} the 0.8 target]"
        );
    }
    if let (Some(many), Some(ns)) = (
        get("raw_blake2b_81B/blake2b_simd_many"),
        get("rebuild/slice_all_threads"),
    ) {
        let r = rate(ns) / (all as f64 * rate(many));
        println!("rebuild slice, {all} threads:    {r:.3} × ({all} × raw hash_many rate)");
    }
    if let (Some(a), Some(b)) = (
        get("rebuild/slice_all_threads"),
        get("rebuild/slice_1_thread"),
    ) {
        println!(
            "rebuild slice scaling:        {:.3} × ({all} × its own 1-thread rate)",
            b / (all as f64 * a) * 1.0
        );
    }
    if let Some(r) = ratio("raw_blake2b_81B/blake2b_simd_all_threads", all) {
        println!(
            "raw hashing scaling:          {r:.3} × ({all} × raw)   [what this machine gave {all} threads in this run]"
        );
    }
    if let (Some(a), Some(b)) = (
        get("rebuild/slice_all_threads"),
        get("raw_blake2b_81B/blake2b_simd_many_all_threads"),
    ) {
        println!(
            "rebuild slice vs raw hash_many on all threads: {:.3}",
            b / a
        );
    }
    if let Some(r) = ratio("rebuild/stream_all_threads", all) {
        println!("rebuild stream, {all} threads:   {r:.3} × ({all} × raw)");
    }
    if let (Some(s), Some(c)) = (
        get("raw_blake2b_81B/blake2b_simd"),
        get("raw_blake2b_81B/blake2_rustcrypto"),
    ) {
        println!(
            "blake2b_simd vs blake2 (RustCrypto): {:.2}× the rate",
            c / s
        );
    }
}

/// The ratios again, measured interleaved: round after round, each routine once, with the
/// starting routine rotated, then medians. On a shared machine the load changes between
/// criterion's blocks of samples; interleaving exposes every routine to the same load.
fn interleaved_ratios(set: &[UnspentOutput], msgs: &[[u8; 81]], all: usize) {
    const ROUNDS: usize = 41;
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let many = rayon::ThreadPoolBuilder::new()
        .num_threads(all)
        .build()
        .expect("pool");
    let routines: [(&str, &dyn Fn()); 5] = [
        ("raw single-message, 1 thread", &|| {
            black_box(raw_single(msgs));
        }),
        ("raw single-message, all threads", &|| {
            raw_parallel(&many, msgs, raw_single)
        }),
        ("raw hash_many, all threads", &|| {
            raw_parallel(&many, msgs, raw_many)
        }),
        ("rebuild slice, 1 thread", &|| {
            let r: Accumulator = one
                .install(|| accumulator::rebuild_from_slice(set))
                .expect("rebuild");
            black_box(r);
        }),
        ("rebuild slice, all threads", &|| {
            let r: Accumulator = many
                .install(|| accumulator::rebuild_from_slice(set))
                .expect("rebuild");
            black_box(r);
        }),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); routines.len()];
    for round in 0..ROUNDS {
        for k in 0..routines.len() {
            let i = (k + round) % routines.len();
            let start = Instant::now();
            (routines[i].1)();
            times[i].push(start.elapsed().as_nanos() as f64 / msgs.len() as f64);
        }
    }
    let med: Vec<f64> = times
        .iter_mut()
        .map(|v| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        })
        .collect();
    println!("\n== interleaved ({ROUNDS} rounds, medians, ns per output) ==");
    for ((name, _), ns) in routines.iter().zip(&med) {
        println!("{name:<36} {ns:>8.1} ns  {:>12.0} /s", 1e9 / ns);
    }
    let (raw1, raw_all, many_all, reb1, reb_all) = (med[0], med[1], med[2], med[3], med[4]);
    let n = all as f64;
    println!(
        "TARGET rebuild {all} threads / ({all} × raw 1-thread):  {:.3}  [{}]",
        raw1 / (n * reb_all),
        if raw1 / (n * reb_all) >= 0.8 {
            "meets 0.8"
        } else {
            "below 0.8"
        }
    );
    // Machine-readable, for `cargo xtask bench`: outputs/s of the rebuild on all threads,
    // against `all` × the raw single-thread rate.
    println!(
        "STRATA-BENCH figure=accumulator_rebuild value={} baseline={} ratio={} unit=outputs/s threads={all}",
        1e9 / reb_all,
        n * 1e9 / raw1,
        raw1 / (n * reb_all)
    );
    println!(
        "rebuild 1 thread / raw 1-thread:               {:.3}",
        raw1 / reb1
    );
    println!(
        "rebuild {all} threads / raw single-message {all} threads: {:.3}",
        raw_all / reb_all
    );
    println!(
        "rebuild {all} threads / raw hash_many {all} threads:      {:.3}",
        many_all / reb_all
    );
    println!(
        "machine: raw {all} threads / ({all} × raw 1 thread):     {:.3}",
        raw1 / (n * raw_all)
    );
}

fn main() {
    let all = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let set = utxo_set(REBUILD_OUTPUTS);
    let msgs: Vec<[u8; 81]> = set.iter().map(|(op, o)| entry_message(op, o)).collect();
    // Short runs: the machines are shared; ratios, not absolute times, are the result.
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    raw_blake2b(&mut c, &msgs);
    digest(&mut c, &set);
    rebuild(&mut c, &set, all);
    #[cfg(feature = "muhash")]
    muhash(&mut c, &set, all);
    c.final_summary();
    summary(all);
    interleaved_ratios(&set, &msgs, all);
}
