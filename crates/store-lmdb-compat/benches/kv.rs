//! Through the Strata traits versus through the raw `rocksdb` crate, in the same run, on
//! the same data, the same options (the raw side loads the options the store persisted)
//! and the same work:
//!
//! - `bulk_insert`: 1M sorted rows (24-byte keys, 150-byte values) into an empty table,
//!   committed synced in 10 batches of 100k rows (traits: `insert_sorted`, and `put` for
//!   comparison; raw: `WriteBatch::put_cf` + a synced write).
//! - `point_get`: 1M gets of existing keys in random order, all in one snapshot (traits:
//!   `KvRead::get` on a snapshot; raw: `Snapshot::get_cf`, the same `ReadOptions` with the
//!   snapshot and the same copy of the value into a `Vec`).
//! - `range_scan`: all 1M rows, forward, in one snapshot: owned rows (traits:
//!   `KvRead::range`; raw: the snapshot's `iterator_cf`, which also hands out owned rows),
//!   and borrowed rows (traits: `visit_range`; raw: the snapshot's raw iterator lending
//!   each row in place).
//!
//! Every read reads the same bytes of each row on both sides (see [`consume`]). Times are
//! the benchmark thread's on-CPU time unless `STRATA_BENCH_CLOCK=wall` (see
//! `storage_traits::conformance::bench_clock`): the traits' cost is work on this thread,
//! while the disk's fsync and RocksDB's background flushes are the same for both sides.
//! `STRATA_BENCH_ROWS` scales the row count (default 1,000,000). The ratios are in the
//! crate README (`benches/ratios.py` prints them from criterion's estimates).

use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use rocksdb::{Cache, DB, Env, IteratorMode, Options, WriteBatch, WriteOptions};
use storage_traits::conformance::bench_clock::{self, Stamp};
use storage_traits::kv::{Direction, Durability, KeyRange, KvRead, KvStore, KvWrite, TableSpec};
use store_lmdb_compat::{RocksOptions, RocksStore};

const TABLE: &str = "bench_rows_1_0_0";
const KEY_LEN: usize = 24;
const VALUE_LEN: usize = 150;
/// Rows per synced write batch of the bulk insert.
const CHUNK: usize = 100_000;

fn rows_count() -> usize {
    std::env::var("STRATA_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

fn tables() -> Vec<TableSpec> {
    vec![TableSpec::plain(TABLE)]
}

/// xorshift64*: deterministic bytes and permutations without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Sorted keys (a big-endian counter, then filler as a txid-like tail would be) and values
/// with some redundancy, like serialized entries.
fn dataset(n: usize) -> (Vec<[u8; KEY_LEN]>, Vec<[u8; VALUE_LEN]>) {
    let mut rng = Rng(0x5EED);
    let keys = (0..n as u64)
        .map(|i| {
            let mut k = [0u8; KEY_LEN];
            k[..8].copy_from_slice(&i.to_be_bytes());
            for chunk in k[8..].chunks_mut(8) {
                chunk.copy_from_slice(&rng.next().to_le_bytes()[..chunk.len()]);
            }
            k
        })
        .collect();
    let values = (0..n)
        .map(|_| {
            let mut v = [0u8; VALUE_LEN];
            for (j, chunk) in v.chunks_mut(8).enumerate() {
                let word = if j % 3 == 0 { 0 } else { rng.next() };
                chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
            }
            v
        })
        .collect();
    (keys, values)
}

/// What every read benchmark does with a row's bytes, on both sides alike: its length plus
/// its first, middle and last byte, so the bytes are really read.
#[inline(always)]
fn consume(bytes: &[u8]) -> u64 {
    match bytes {
        [] => 0,
        [first, .., last] => {
            bytes.len() as u64
                + u64::from(*first)
                + u64::from(bytes[bytes.len() / 2])
                + u64::from(*last)
        }
        [only] => 1 + u64::from(*only),
    }
}

/// Opens the directory the store created, raw, with the options the store persisted (and a
/// block cache of the store's default size).
fn open_raw(dir: &Path) -> DB {
    let cache = Cache::new_lru_cache(RocksOptions::default().block_cache_bytes);
    let (opts, cfs) =
        Options::load_latest(dir, Env::new().unwrap(), false, cache).expect("persisted options");
    DB::open_cf_descriptors(&opts, dir, cfs).unwrap()
}

/// An empty store directory, created by the store so both sides share its options.
fn empty_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    drop(RocksStore::open(dir.path(), &tables(), RocksOptions::default()).unwrap());
    dir
}

/// Ten samples of one iteration each (an iteration is a million operations), so a run of
/// the whole bench takes a few minutes.
fn group_config(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, n: usize) {
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(n as u64));
}

/// `Bencher::iter` on the shared benchmark clock.
fn timed(b: &mut criterion::Bencher<'_>, mut routine: impl FnMut() -> u64) {
    b.iter_custom(|iters| bench_clock::time(iters, &mut routine))
}

/// Times `load` against a fresh empty store directory per iteration (the setup is not
/// timed).
fn time_loads(iters: u64, mut load: impl FnMut(&Path) -> Duration) -> Duration {
    (0..iters)
        .map(|_| {
            let dir = empty_dir();
            load(dir.path())
        })
        .sum()
}

fn bulk_insert(c: &mut Criterion, keys: &[[u8; KEY_LEN]], values: &[[u8; VALUE_LEN]]) {
    let mut g = c.benchmark_group("bulk_insert");
    group_config(&mut g, keys.len());
    g.bench_function("traits_insert_sorted", |b| {
        b.iter_custom(|iters| {
            time_loads(iters, |dir| {
                let store = store_lmdb_compat::open(dir, &tables()).unwrap();
                let start = Stamp::now();
                for (ks, vs) in keys.chunks(CHUNK).zip(values.chunks(CHUNK)) {
                    let mut w = store.begin_write().unwrap();
                    let mut rows = ks.iter().zip(vs).map(|(k, v)| (&k[..], &v[..]));
                    w.insert_sorted(TABLE, &mut rows).unwrap();
                    w.commit(Durability::Synced).unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("traits_put", |b| {
        b.iter_custom(|iters| {
            time_loads(iters, |dir| {
                let store = store_lmdb_compat::open(dir, &tables()).unwrap();
                let start = Stamp::now();
                for (ks, vs) in keys.chunks(CHUNK).zip(values.chunks(CHUNK)) {
                    let mut w = store.begin_write().unwrap();
                    for (k, v) in ks.iter().zip(vs) {
                        w.put(TABLE, k, v).unwrap();
                    }
                    w.commit(Durability::Synced).unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("raw_write_batch", |b| {
        b.iter_custom(|iters| {
            time_loads(iters, |dir| {
                let db = open_raw(dir);
                let start = Stamp::now();
                let cf = db.cf_handle(TABLE).unwrap();
                for (ks, vs) in keys.chunks(CHUNK).zip(values.chunks(CHUNK)) {
                    let mut batch = WriteBatch::default();
                    for (k, v) in ks.iter().zip(vs) {
                        batch.put_cf(cf, k, v);
                    }
                    let mut wo = WriteOptions::default();
                    wo.set_sync(true);
                    db.write_opt(batch, &wo).unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

fn reads(c: &mut Criterion, keys: &[[u8; KEY_LEN]], values: &[[u8; VALUE_LEN]]) {
    // One loaded, compacted directory, read by each side in turn.
    let dir = empty_dir();
    {
        let store = store_lmdb_compat::open(dir.path(), &tables()).unwrap();
        for (ks, vs) in keys.chunks(CHUNK).zip(values.chunks(CHUNK)) {
            let mut w = store.begin_write().unwrap();
            let mut rows = ks.iter().zip(vs).map(|(k, v)| (&k[..], &v[..]));
            w.insert_sorted(TABLE, &mut rows).unwrap();
            w.commit(Durability::Synced).unwrap();
        }
    }
    {
        let db = open_raw(dir.path());
        let cf = db.cf_handle(TABLE).unwrap();
        db.flush_cf(cf).unwrap();
        db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
    }
    let mut rng = Rng(0xC0FFEE);
    let mut order: Vec<usize> = (0..keys.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    let probe: Vec<&[u8]> = order.iter().map(|&i| &keys[i][..]).collect();
    let n = keys.len() as u64;

    let mut g = c.benchmark_group("point_get");
    group_config(&mut g, keys.len());
    {
        let store = store_lmdb_compat::open(dir.path(), &tables()).unwrap();
        g.bench_function("traits", |b| {
            timed(b, || {
                let snap = store.begin_read().unwrap();
                let mut sum = 0u64;
                for k in &probe {
                    sum += snap.get(TABLE, k).unwrap().map_or(0, |v| consume(&v));
                }
                assert!(sum >= n * VALUE_LEN as u64);
                sum
            })
        });
    }
    {
        let db = open_raw(dir.path());
        let cf = db.cf_handle(TABLE).unwrap();
        g.bench_function("raw", |b| {
            timed(b, || {
                let snap = db.snapshot();
                let mut sum = 0u64;
                for k in &probe {
                    sum += snap.get_cf(cf, k).unwrap().map_or(0, |v| consume(&v));
                }
                assert!(sum >= n * VALUE_LEN as u64);
                sum
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("range_scan");
    group_config(&mut g, keys.len());
    {
        let store = store_lmdb_compat::open(dir.path(), &tables()).unwrap();
        g.bench_function("traits", |b| {
            timed(b, || {
                let snap = store.begin_read().unwrap();
                let (mut rows, mut sum) = (0u64, 0u64);
                for row in snap
                    .range(TABLE, KeyRange::all(), Direction::Forward)
                    .unwrap()
                {
                    let (k, v) = row.unwrap();
                    sum += consume(&k) + consume(&v);
                    rows += 1;
                }
                assert_eq!(rows, n);
                sum
            })
        });
        g.bench_function("traits_visit", |b| {
            timed(b, || {
                let snap = store.begin_read().unwrap();
                let (mut rows, mut sum) = (0u64, 0u64);
                snap.visit_range(TABLE, KeyRange::all(), Direction::Forward, &mut |k, v| {
                    sum += consume(k) + consume(v);
                    rows += 1;
                    Ok(ControlFlow::Continue(()))
                })
                .unwrap();
                assert_eq!(rows, n);
                sum
            })
        });
    }
    {
        let db = open_raw(dir.path());
        let cf = db.cf_handle(TABLE).unwrap();
        g.bench_function("raw", |b| {
            timed(b, || {
                let snap = db.snapshot();
                let (mut rows, mut sum) = (0u64, 0u64);
                for row in snap.iterator_cf(cf, IteratorMode::Start) {
                    let (k, v) = row.unwrap();
                    sum += consume(&k) + consume(&v);
                    rows += 1;
                }
                assert_eq!(rows, n);
                sum
            })
        });
        g.bench_function("raw_borrowed", |b| {
            timed(b, || {
                let snap = db.snapshot();
                let (mut rows, mut sum) = (0u64, 0u64);
                let mut it = snap.raw_iterator_cf(cf);
                it.seek_to_first();
                while let Some((k, v)) = it.item() {
                    sum += consume(k) + consume(v);
                    rows += 1;
                    it.next();
                }
                it.status().unwrap();
                assert_eq!(rows, n);
                sum
            })
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    let (keys, values) = dataset(rows_count());
    bulk_insert(c, &keys, &values);
    reads(c, &keys, &values);
}

criterion_group!(kv, benches);
criterion_main!(kv);
