//! Through the Strata traits versus through the raw `rocksdb` crate, in the same run, on
//! the same data, the same options (the raw side loads the options the store persisted)
//! and the same work:
//!
//! - `bulk_insert`: 1M sorted rows (24-byte keys, 150-byte values) into an empty table,
//!   committed synced in 10 batches of 100k rows (traits: `insert_sorted`, and `put` for
//!   comparison; raw: `WriteBatch::put_cf` + a synced write). Every side loads a fresh
//!   empty directory that the store created.
//! - `point_get`: 1M gets of existing keys in random order, all in one snapshot (traits:
//!   `KvRead::get` on a snapshot; raw: `Snapshot::get_cf`, the same `ReadOptions` with the
//!   snapshot and the same copy of the value into a `Vec`).
//! - `range_scan`: all 1M rows, forward, in one snapshot: owned rows (traits:
//!   `KvRead::range`; raw: the snapshot's `iterator_cf`, which also hands out owned rows),
//!   and borrowed rows (traits: `visit_range`; raw: the snapshot's raw iterator lending
//!   each row in place).
//!
//! The reads run on two byte-identical copies of one loaded, compacted directory (RocksDB
//! locks a directory, so each side has its own), each opened afresh and warmed by a full
//! scan every round, untimed (see [`ReadFixture`]).
//!
//! The figures come from an interleaved measurement (`storage_traits::conformance::interleave`):
//! `STRATA_BENCH_ROUNDS` rounds (default 15) in which every side of a group runs once, in
//! alternating order; each comparison is the median of the per-round ratios trait / raw,
//! printed with their range as a Markdown table (the crate README's) and as `STRATA-BENCH`
//! lines. `STRATA_BENCH_CRITERION=1` runs the same sides under criterion instead.
//!
//! Every read reads the same bytes of each row on both sides (see [`consume`]). Times are
//! the benchmark thread's on-CPU time unless `STRATA_BENCH_CLOCK=wall` (see
//! `storage_traits::conformance::bench_clock`): the traits' cost is work on this thread,
//! while the disk's fsync and RocksDB's background flushes are the same for both sides.
//! `STRATA_BENCH_ROWS` scales the row count (default 1,000,000); an argument selects the
//! groups whose name contains it (`cargo bench … --bench kv -- bulk_insert`), or one side
//! of them (`-- bulk_insert/traits_insert_sorted`, to profile it alone).

use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use rocksdb::{Cache, DB, Env, IteratorMode, Options, WriteBatch, WriteOptions};
use storage_traits::conformance::bench_clock::{self, Stamp};
use storage_traits::conformance::interleave::{self, Comparison, Filter, Report};
use storage_traits::kv::{Direction, Durability, KeyRange, KvRead, KvStore, KvWrite, TableSpec};
use store_lmdb_compat::{RocksOptions, RocksStore};

const TABLE: &str = "bench_rows_1_0_0";
const KEY_LEN: usize = 24;
const VALUE_LEN: usize = 150;
/// Rows per synced write batch of the bulk insert.
const CHUNK: usize = 100_000;
/// The target: the traits cost at most 15% over the raw crate.
const TARGET: &str = "target_max=1.15 issue=4";

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

type Key = [u8; KEY_LEN];
type Value = [u8; VALUE_LEN];

/// Sorted keys (a big-endian counter, then filler as a txid-like tail would be) and values
/// with some redundancy, like serialized entries.
fn dataset(n: usize) -> (Vec<Key>, Vec<Value>) {
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

/// A side: a routine doing the work once on a fresh input and returning its time.
type Routine<'a> = Box<dyn FnMut() -> Duration + 'a>;

/// Sides measured together (interleaved round by round), and the figures read from them.
struct Group<'a> {
    name: &'static str,
    sides: Vec<(&'static str, Routine<'a>)>,
    comparisons: Vec<Comparison>,
}

/// A figure under the target (`extra` is empty for figures shown for comparison).
const fn compare(
    figure: &'static str,
    what: &'static str,
    subject: &'static str,
    baseline: &'static str,
) -> Comparison {
    Comparison {
        figure,
        what,
        subject,
        baseline,
        extra: TARGET,
    }
}

/// Loads the rows into a fresh empty store directory through `load`, which gets the
/// directory and returns the time of the load alone.
fn fresh_load(load: impl Fn(&Path) -> Duration) -> Duration {
    let dir = empty_dir();
    load(dir.path())
}

fn bulk_insert<'a>(keys: &'a [Key], values: &'a [Value]) -> Group<'a> {
    let chunks = move || keys.chunks(CHUNK).zip(values.chunks(CHUNK));
    let insert_sorted = move || {
        fresh_load(|dir| {
            let store = store_lmdb_compat::open(dir, &tables()).unwrap();
            let start = Stamp::now();
            for (ks, vs) in chunks() {
                let mut w = store.begin_write().unwrap();
                let mut rows = ks.iter().zip(vs).map(|(k, v)| (&k[..], &v[..]));
                w.insert_sorted(TABLE, &mut rows).unwrap();
                w.commit(Durability::Synced).unwrap();
            }
            start.elapsed()
        })
    };
    let put = move || {
        fresh_load(|dir| {
            let store = store_lmdb_compat::open(dir, &tables()).unwrap();
            let start = Stamp::now();
            for (ks, vs) in chunks() {
                let mut w = store.begin_write().unwrap();
                for (k, v) in ks.iter().zip(vs) {
                    w.put(TABLE, k, v).unwrap();
                }
                w.commit(Durability::Synced).unwrap();
            }
            start.elapsed()
        })
    };
    let raw = move || {
        fresh_load(|dir| {
            let db = open_raw(dir);
            let start = Stamp::now();
            let cf = db.cf_handle(TABLE).unwrap();
            for (ks, vs) in chunks() {
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
    };
    Group {
        name: "bulk_insert",
        sides: vec![
            ("traits_insert_sorted", Box::new(insert_sorted)),
            ("raw_write_batch", Box::new(raw)),
            ("traits_put", Box::new(put)),
        ],
        comparisons: vec![
            compare(
                "kv_rocksdb_insert_sorted",
                "1M sorted inserts, 10 synced batches: `insert_sorted` vs `WriteBatch::put_cf`",
                "traits_insert_sorted",
                "raw_write_batch",
            ),
            Comparison {
                extra: "",
                ..compare(
                    "kv_rocksdb_put",
                    "for comparison: `put` × 1M vs `WriteBatch::put_cf`",
                    "traits_put",
                    "raw_write_batch",
                )
            },
        ],
    }
}

/// One loaded, compacted directory and a byte-identical copy: the store reads one, raw
/// RocksDB the other (each holds its directory's lock). Every round opens each side afresh
/// (untimed) and warms it with a full scan (untimed), so that where an instance's block
/// cache lands in memory varies from round to round, noise the median of the rounds
/// cancels, instead of favouring one side for a whole process (an instance kept open for
/// the run measured a different ratio in each process on the redb backend).
struct ReadFixture {
    /// Key order of the point gets: a fixed random permutation.
    probe: Vec<Key>,
    rows: u64,
    trait_dir: tempfile::TempDir,
    raw_dir: tempfile::TempDir,
}

impl ReadFixture {
    /// The store over the trait side's directory, opened and warmed.
    fn store(&self) -> RocksStore {
        let store = store_lmdb_compat::open(self.trait_dir.path(), &tables()).unwrap();
        let mut sum = 0u64;
        store
            .begin_read()
            .unwrap()
            .visit_range(TABLE, KeyRange::all(), Direction::Forward, &mut |k, v| {
                sum += consume(k) + consume(v);
                Ok(ControlFlow::Continue(()))
            })
            .unwrap();
        std::hint::black_box(sum);
        store
    }

    /// Raw RocksDB over the raw side's directory, opened and warmed.
    fn db(&self) -> DB {
        let db = open_raw(self.raw_dir.path());
        {
            let mut it = db.raw_iterator_cf(db.cf_handle(TABLE).unwrap());
            it.seek_to_first();
            let mut sum = 0u64;
            while let Some((k, v)) = it.item() {
                sum += consume(k) + consume(v);
                it.next();
            }
            it.status().unwrap();
            std::hint::black_box(sum);
        }
        db
    }
}

fn read_fixture(keys: &[Key], values: &[Value]) -> ReadFixture {
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
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
        }
    }
    let mut rng = Rng(0xC0FFEE);
    let mut probe = keys.to_vec();
    for i in (1..probe.len()).rev() {
        probe.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    ReadFixture {
        probe,
        rows: keys.len() as u64,
        trait_dir: dir,
        raw_dir: copy,
    }
}

fn point_get(fx: &ReadFixture) -> Group<'_> {
    let n = fx.rows;
    let traits = move || {
        let store = fx.store();
        let start = Stamp::now();
        let snap = store.begin_read().unwrap();
        let mut sum = 0u64;
        for k in &fx.probe {
            sum += snap.get(TABLE, k).unwrap().map_or(0, |v| consume(&v));
        }
        let t = start.elapsed();
        assert!(sum >= n * VALUE_LEN as u64);
        t
    };
    let raw = move || {
        let db = fx.db();
        let start = Stamp::now();
        let cf = db.cf_handle(TABLE).unwrap();
        let snap = db.snapshot();
        let mut sum = 0u64;
        for k in &fx.probe {
            sum += snap.get_cf(cf, k).unwrap().map_or(0, |v| consume(&v));
        }
        let t = start.elapsed();
        assert!(sum >= n * VALUE_LEN as u64);
        t
    };
    Group {
        name: "point_get",
        sides: vec![("traits", Box::new(traits)), ("raw", Box::new(raw))],
        comparisons: vec![compare(
            "kv_rocksdb_get",
            "1M random point gets, one snapshot: `get` vs `Snapshot::get_cf`",
            "traits",
            "raw",
        )],
    }
}

fn range_scan(fx: &ReadFixture) -> Group<'_> {
    let n = fx.rows;
    let traits = move || {
        let store = fx.store();
        let start = Stamp::now();
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
        let t = start.elapsed();
        assert_eq!(rows, n);
        std::hint::black_box(sum);
        t
    };
    let traits_visit = move || {
        let store = fx.store();
        let start = Stamp::now();
        let snap = store.begin_read().unwrap();
        let (mut rows, mut sum) = (0u64, 0u64);
        snap.visit_range(TABLE, KeyRange::all(), Direction::Forward, &mut |k, v| {
            sum += consume(k) + consume(v);
            rows += 1;
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
        let t = start.elapsed();
        assert_eq!(rows, n);
        std::hint::black_box(sum);
        t
    };
    let raw = move || {
        let db = fx.db();
        let start = Stamp::now();
        let cf = db.cf_handle(TABLE).unwrap();
        let snap = db.snapshot();
        let (mut rows, mut sum) = (0u64, 0u64);
        for row in snap.iterator_cf(cf, IteratorMode::Start) {
            let (k, v) = row.unwrap();
            sum += consume(&k) + consume(&v);
            rows += 1;
        }
        let t = start.elapsed();
        assert_eq!(rows, n);
        std::hint::black_box(sum);
        t
    };
    let raw_borrowed = move || {
        let db = fx.db();
        let start = Stamp::now();
        let cf = db.cf_handle(TABLE).unwrap();
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
        let t = start.elapsed();
        assert_eq!(rows, n);
        std::hint::black_box(sum);
        t
    };
    Group {
        name: "range_scan",
        sides: vec![
            ("traits", Box::new(traits)),
            ("raw", Box::new(raw)),
            ("traits_visit", Box::new(traits_visit)),
            ("raw_borrowed", Box::new(raw_borrowed)),
        ],
        comparisons: vec![
            compare(
                "kv_rocksdb_range",
                "1M-row scan, owned rows: `range` vs `iterator_cf`",
                "traits",
                "raw",
            ),
            compare(
                "kv_rocksdb_visit_range",
                "1M-row scan, borrowed rows: `visit_range` vs raw iterator",
                "traits_visit",
                "raw_borrowed",
            ),
        ],
    }
}

/// Runs a group: interleaved into `report` (the figures), or under criterion when
/// `criterion` is given (ten samples of one iteration, an iteration being 1M operations).
fn measure(
    mut g: Group<'_>,
    filter: &Filter,
    criterion: Option<&mut Criterion>,
    report: &mut Report,
) {
    g.sides.retain(|(name, _)| filter.side(g.name, name));
    let Some(c) = criterion else {
        let mut sides: Vec<interleave::Side<'_>> = g
            .sides
            .iter_mut()
            .map(|(name, side)| (*name, side.as_mut() as &mut dyn FnMut() -> Duration))
            .collect();
        return report.measure(g.name, &mut sides, &g.comparisons);
    };
    let mut cg = c.benchmark_group(g.name);
    cg.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(rows_count() as u64));
    for (name, side) in &mut g.sides {
        cg.bench_function(*name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| side()).sum())
        });
    }
    cg.finish();
}

fn main() {
    let filter = Filter::from_args();
    let selected = |group: &str| filter.group(group);
    let mut criterion = (std::env::var("STRATA_BENCH_CRITERION").as_deref() == Ok("1"))
        .then(|| Criterion::default().configure_from_args());
    let rows = rows_count();
    let (keys, values) = dataset(rows);
    let mut report = Report::default();
    if selected("bulk_insert") {
        measure(
            bulk_insert(&keys, &values),
            &filter,
            criterion.as_mut(),
            &mut report,
        );
    }
    if selected("point_get") || selected("range_scan") {
        let fx = read_fixture(&keys, &values);
        if selected("point_get") {
            measure(point_get(&fx), &filter, criterion.as_mut(), &mut report);
        }
        if selected("range_scan") {
            measure(range_scan(&fx), &filter, criterion.as_mut(), &mut report);
        }
    }
    match criterion {
        Some(c) => c.final_summary(),
        None => report.print(&format!(
            "store-lmdb-compat kv: Strata traits / raw rocksdb, {rows} rows, {} interleaved rounds, {:?} time",
            interleave::rounds_from_env(15),
            bench_clock::clock()
        )),
    }
}
