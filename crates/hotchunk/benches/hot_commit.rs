//! Synced single-height commits per second through the hot store, beside a raw synced
//! RocksDB `WriteBatch` of the same bytes (same key, same framed value, same column
//! families, the same persisted RocksDB options, `sync = true`) in the same run. The ratio is the result: hot / raw throughput,
//! target ≥ 0.9.
//!
//! Besides criterion's two benchmarks, an interleaved measurement alternates rounds of
//! hot and raw commits (so both see the same background load from the other processes on
//! the machine) and prints the ratio of the medians.
//!
//! `cargo bench -p hotchunk --bench hot_commit`; `HOT_BENCH_PAYLOAD` sets the payload size
//! (default 4096 bytes), `HOT_BENCH_ROUNDS` (or `STRATA_BENCH_ROUNDS`) the interleaved rounds (default 15).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hotchunk::{
    Catalog, ChunkId, Codec, Geometry, HotOptions, HotStore, HotTier, Layout, RocksStore,
};
use storage_traits::conformance::interleave;
use storage_traits::kv::TableSpec;

/// One chunk large enough never to fill during the run.
fn geometry() -> Geometry {
    Geometry::new(0, 1 << 30, 1_000).unwrap()
}

fn payload_size() -> usize {
    std::env::var("HOT_BENCH_PAYLOAD")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4096)
}

/// Incompressible-looking bytes (xorshift), so neither side gains from LZ4.
fn payload(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct Hot {
    _dir: tempfile::TempDir,
    store: HotStore,
    _tier: HotTier<hotchunk::RocksStore>,
}

impl Hot {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open_rocksdb(Layout::new(dir.path(), geometry())).unwrap();
        let tier = HotTier::new(
            Arc::new(catalog),
            HotOptions {
                codec: Codec::None,
                ..HotOptions::default()
            },
        );
        let store = tier.open_hot_db_for_chunk(ChunkId(0)).unwrap();
        Hot {
            _dir: dir,
            store,
            _tier: tier,
        }
    }

    fn commit(&mut self, payload: &[u8]) {
        let h = self.store.next_height().unwrap();
        self.store.put_height(h, payload).unwrap();
    }
}

struct Raw {
    _dir: tempfile::TempDir,
    db: rocksdb::DB,
    next: u32,
    wo: rocksdb::WriteOptions,
}

impl Raw {
    /// A RocksDB with the hot store's column families and options: the directory is
    /// created by `store-lmdb-compat` with the hot store's tables and `RocksOptions`, then
    /// opened raw with the options RocksDB persisted (the same LZ4 SST compression, block
    /// cache size, Bloom filters and open-file cap), so the only difference left is the
    /// code path of a commit.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tables = [
            TableSpec::plain(hotchunk::LEDGERS_TABLE),
            TableSpec::plain(hotchunk::META_TABLE),
        ];
        let rocks = HotOptions::default().rocks;
        drop(RocksStore::open(dir.path(), &tables, rocks).unwrap());
        let cache = rocksdb::Cache::new_lru_cache(rocks.block_cache_bytes);
        let (opts, cfs) =
            rocksdb::Options::load_latest(dir.path(), rocksdb::Env::new().unwrap(), false, cache)
                .unwrap();
        let db = rocksdb::DB::open_cf_descriptors(&opts, dir.path(), cfs).unwrap();
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        Raw {
            _dir: dir,
            db,
            next: 0,
            wo,
        }
    }

    /// The same bytes the hot store writes: key = BE height, value = `[0x01][0x00]` + payload.
    fn commit(&mut self, value: &[u8]) {
        let cf = self.db.cf_handle("ledgers").unwrap();
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(cf, self.next.to_be_bytes(), value);
        self.db.write_opt(batch, &self.wo).unwrap();
        self.next += 1;
    }
}

fn framed(payload: &[u8]) -> Vec<u8> {
    hotchunk::codec::encode(Codec::None, payload).unwrap()
}

fn bench(c: &mut Criterion) {
    let size = payload_size();
    let p = payload(size, 0x5EED);
    let value = framed(&p);

    let mut group = c.benchmark_group("hot_commit");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(1));
    let mut hot = Hot::new();
    group.bench_function(format!("hotstore_put_height_{size}B"), |b| {
        b.iter(|| hot.commit(black_box(&p)))
    });
    let mut raw = Raw::new();
    group.bench_function(format!("raw_rocksdb_synced_batch_{size}B"), |b| {
        b.iter(|| raw.commit(black_box(&value)))
    });
    group.finish();

    interleaved(&mut hot, &mut raw, &p, &value);
}

/// Rounds of `PER_ROUND` commits, alternating which side goes first
/// (`storage_traits::conformance::interleave`); prints each side's median commits/s and the
/// ratio hot/raw, both as the ratio of the medians and as the median of per-round ratios.
fn interleaved(hot: &mut Hot, raw: &mut Raw, p: &[u8], value: &[u8]) {
    const PER_ROUND: u32 = 200;
    let rounds = interleave::rounds_from_env(
        std::env::var("HOT_BENCH_ROUNDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(15),
    );
    let mut run_hot = || {
        let t = Instant::now();
        for _ in 0..PER_ROUND {
            hot.commit(p);
        }
        t.elapsed()
    };
    let mut run_raw = || {
        let t = Instant::now();
        for _ in 0..PER_ROUND {
            raw.commit(value);
        }
        t.elapsed()
    };
    let m = interleave::run(rounds, &mut [("hot", &mut run_hot), ("raw", &mut run_raw)]);
    let rate = |side| f64::from(PER_ROUND) / m.median(side).as_secs_f64();
    let (h, w) = (rate("hot"), rate("raw"));
    // A throughput ratio: the reciprocal of the time ratio.
    let r = m.ratio("hot", "raw").recip();
    println!(
        "interleaved ({rounds} rounds x {PER_ROUND} synced commits, {} B payload): \
         hot store {h:.0} commits/s, raw RocksDB WriteBatch {w:.0} commits/s, \
         ratio of medians {:.3}, median of per-round ratios {:.3} ({:.3}–{:.3})",
        p.len(),
        h / w,
        r.median,
        r.min,
        r.max
    );
    // Machine-readable, for `cargo xtask bench`.
    println!(
        "STRATA-BENCH figure=hot_commit value={h} baseline={w} ratio={} unit=commits/s payload={} median_round_ratio={}",
        h / w,
        p.len(),
        r.median
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
