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

fn raw_blake2b(c: &mut Criterion, msgs: &[[u8; 81]]) {
    const G: &str = "raw_blake2b_81B";
    let mut g = c.benchmark_group(G);
    let n = msgs.len() as u64;
    bench(&mut g, G, "blake2b_simd", n, || {
        let mut acc = [0u8; 32];
        for m in msgs {
            let h = blake2b_simd::Params::new().hash_length(32).hash(m);
            for (a, b) in acc.iter_mut().zip(h.as_bytes()) {
                *a ^= b;
            }
        }
        black_box(acc);
    });
    bench(&mut g, G, "blake2b_simd_many", n, || {
        let params = {
            let mut p = blake2b_simd::Params::new();
            p.hash_length(32);
            p
        };
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
        black_box(acc);
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
}
