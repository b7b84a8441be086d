//! The Strata traits over redb against raw redb, same data and transaction shape, same run:
//!
//! - `insert_1m_sorted`: 1M sorted rows (24-byte keys, 150-byte values) into an empty table
//!   in one write transaction, committed [`Durability::Buffered`] (redb `Durability::None`,
//!   so the figure is the insert path, not the disk's fsync): `KvWrite::insert_sorted` against
//!   a raw redb write cursor (the path `insert_sorted` takes), and `KvWrite::put` against raw
//!   `Table::insert`.
//! - `get_1m_random`: 1M point reads in random order in one snapshot, against raw
//!   `ReadOnlyTable::get`; `raw_get_owned` is raw redb copying each value into an owned
//!   `Vec`, as `KvRead::get` must.
//! - `scan_1m`: a forward scan over all 1M rows in one snapshot, through `KvRead::range`
//!   (owned rows) and `KvRead::visit_range` (borrowed rows), against raw
//!   `ReadOnlyTable::range`; `raw_range_owned` is raw redb copying each row into owned
//!   `Vec`s, which shows what the owned-row contract of `range` costs by itself.
//!
//! The ratio trait / raw is the result (see the crate README). Times are the benchmark
//! thread's on-CPU time unless `STRATA_BENCH_CLOCK=wall` (see
//! `storage_traits::conformance::bench_clock`). Both sides of the read benchmarks read
//! byte-identical database files (one built, then copied), each open once.

use std::cell::OnceCell;
use std::hint::black_box;
use std::ops::{Bound, ControlFlow};
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use redb::{ReadableDatabase, TableDefinition};
use storage_traits::conformance::bench_clock::{self, Stamp};
use storage_traits::kv::{Direction, Durability, KeyRange, KvRead, KvStore, KvWrite, TableSpec};
use store_redb::{DB_FILE_NAME, RedbStore};

const N: u64 = 1_000_000;
const KEY_LEN: usize = 24;
const VALUE_LEN: usize = 150;
const TABLE: &str = "bench_1_0_0";
const SPECS: &[TableSpec] = &[TableSpec::plain(TABLE)];
const DEF: TableDefinition<&[u8], &[u8]> = TableDefinition::new(TABLE);

type Key = [u8; KEY_LEN];
type Value = [u8; VALUE_LEN];

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Row `i`: the key is BE `i` then 16 pseudo-random bytes (so keys sort by `i`), the value
/// 150 pseudo-random bytes.
fn row(i: u64) -> (Key, Value) {
    let mut key = [0u8; KEY_LEN];
    key[..8].copy_from_slice(&i.to_be_bytes());
    key[8..16].copy_from_slice(&splitmix(i).to_le_bytes());
    key[16..24].copy_from_slice(&splitmix(i ^ 0xA5A5).to_le_bytes());
    let mut value = [0u8; VALUE_LEN];
    for (j, chunk) in value.chunks_mut(8).enumerate() {
        let word = splitmix(i.wrapping_mul(31).wrapping_add(j as u64)).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    (key, value)
}

struct Data {
    rows: Vec<(Key, Value)>,
    /// A random permutation of `0..N`.
    order: Vec<u32>,
}

fn data() -> Data {
    let rows: Vec<(Key, Value)> = (0..N).map(row).collect();
    let mut order: Vec<u32> = (0..N as u32).collect();
    let mut s = 42u64;
    for i in (1..order.len()).rev() {
        s = splitmix(s);
        order.swap(i, (s % (i as u64 + 1)) as usize);
    }
    Data { rows, order }
}

/// A raw redb database at `path` holding the table, created empty in a durable commit, as
/// `RedbStore::open` does.
fn raw_db(path: &Path) -> redb::Database {
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(DEF).unwrap();
    txn.commit().unwrap();
    db
}

/// `Bencher::iter` on the shared benchmark clock (thread CPU time unless
/// `STRATA_BENCH_CLOCK=wall`).
fn iter_timed<R>(b: &mut criterion::Bencher<'_>, mut routine: impl FnMut() -> R) {
    b.iter_custom(|iters| bench_clock::time(iters, &mut routine))
}

fn group_config(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    // One iteration is a million operations: ten samples of one iteration each.
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(N));
}

fn insert(c: &mut Criterion, d: &Data) {
    let mut g = c.benchmark_group("insert_1m_sorted");
    group_config(&mut g);
    let rows = &d.rows;

    g.bench_function("trait_insert_sorted", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let store = RedbStore::open(dir.path(), SPECS).unwrap();
                let start = Stamp::now();
                let mut w = store.begin_write().unwrap();
                let n = w
                    .insert_sorted(TABLE, &mut rows.iter().map(|(k, v)| (&k[..], &v[..])))
                    .unwrap();
                w.commit(Durability::Buffered).unwrap();
                total += start.elapsed();
                assert_eq!(n, N);
            }
            total
        })
    });
    g.bench_function("raw_cursor_insert", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let db = raw_db(&dir.path().join(DB_FILE_NAME));
                let start = Stamp::now();
                let mut txn = db.begin_write().unwrap();
                txn.set_durability(redb::Durability::None).unwrap();
                {
                    let mut table = txn.open_table(DEF).unwrap();
                    let mut cursor = table.upper_bound_mut(Bound::<&[u8]>::Unbounded).unwrap();
                    for (k, v) in rows {
                        cursor.insert_before(&k[..], &v[..]).unwrap();
                    }
                    cursor.close().unwrap();
                }
                txn.commit().unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    g.bench_function("trait_put", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let store = RedbStore::open(dir.path(), SPECS).unwrap();
                let start = Stamp::now();
                let mut w = store.begin_write().unwrap();
                for (k, v) in rows {
                    w.put(TABLE, k, v).unwrap();
                }
                w.commit(Durability::Buffered).unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    g.bench_function("raw_table_insert", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let db = raw_db(&dir.path().join(DB_FILE_NAME));
                let start = Stamp::now();
                let mut txn = db.begin_write().unwrap();
                txn.set_durability(redb::Durability::None).unwrap();
                {
                    let mut table = txn.open_table(DEF).unwrap();
                    for (k, v) in rows {
                        table.insert(&k[..], &v[..]).unwrap();
                    }
                }
                txn.commit().unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

/// What every read benchmark does with a row's bytes, on both sides alike: its length plus
/// its first, middle and last byte, so the value's cache lines are really read (a length
/// alone would let the raw side skip them while the trait side copies them).
#[inline(always)]
fn consume(bytes: &[u8]) -> usize {
    match bytes {
        [] => 0,
        [first, .., last] => {
            bytes.len()
                + usize::from(*first)
                + usize::from(bytes[bytes.len() / 2])
                + usize::from(*last)
        }
        [only] => 1 + usize::from(*only),
    }
}

/// The read side: one database built through the traits, then copied, so both sides read
/// byte-identical files, each opened once. Built on first use, so that a filter that skips
/// the read benchmarks skips the build too.
struct ReadFixture {
    store: RedbStore,
    db: redb::Database,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

fn read_fixture(d: &Data) -> ReadFixture {
    let trait_dir = tempfile::tempdir().unwrap();
    let raw_dir = tempfile::tempdir().unwrap();
    {
        let store = RedbStore::open(trait_dir.path(), SPECS).unwrap();
        let mut w = store.begin_write().unwrap();
        w.insert_sorted(TABLE, &mut d.rows.iter().map(|(k, v)| (&k[..], &v[..])))
            .unwrap();
        w.commit(Durability::Synced).unwrap();
    }
    std::fs::copy(
        trait_dir.path().join(DB_FILE_NAME),
        raw_dir.path().join(DB_FILE_NAME),
    )
    .unwrap();
    ReadFixture {
        store: RedbStore::open(trait_dir.path(), SPECS).unwrap(),
        db: redb::Database::open(raw_dir.path().join(DB_FILE_NAME)).unwrap(),
        _dirs: (trait_dir, raw_dir),
    }
}

fn reads(c: &mut Criterion, d: &Data) {
    let fixture = OnceCell::new();
    let fx = || fixture.get_or_init(|| read_fixture(d));
    let keys: Vec<&Key> = d.order.iter().map(|&i| &d.rows[i as usize].0).collect();

    let mut g = c.benchmark_group("get_1m_random");
    group_config(&mut g);
    g.bench_function("trait_get", |b| {
        iter_timed(b, || {
            let r = fx().store.begin_read().unwrap();
            let mut bytes = 0usize;
            for k in &keys {
                bytes += r.get(TABLE, &k[..]).unwrap().map_or(0, |v| consume(&v));
            }
            assert!(bytes >= N as usize * VALUE_LEN);
            black_box(bytes)
        })
    });
    g.bench_function("raw_get", |b| {
        iter_timed(b, || {
            let txn = fx().db.begin_read().unwrap();
            let table = txn.open_table(DEF).unwrap();
            let mut bytes = 0usize;
            for k in &keys {
                bytes += table.get(&k[..]).unwrap().map_or(0, |v| consume(v.value()));
            }
            assert!(bytes >= N as usize * VALUE_LEN);
            black_box(bytes)
        })
    });
    // Diagnostic: raw redb copying each value into an owned `Vec`, as `KvRead::get` must.
    g.bench_function("raw_get_owned", |b| {
        iter_timed(b, || {
            let txn = fx().db.begin_read().unwrap();
            let table = txn.open_table(DEF).unwrap();
            let mut bytes = 0usize;
            for k in &keys {
                bytes += table
                    .get(&k[..])
                    .unwrap()
                    .map_or(0, |v| consume(&black_box(v.value().to_vec())));
            }
            assert!(bytes >= N as usize * VALUE_LEN);
            black_box(bytes)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("scan_1m");
    group_config(&mut g);
    g.bench_function("trait_range", |b| {
        iter_timed(b, || {
            let r = fx().store.begin_read().unwrap();
            let mut n = 0u64;
            let mut bytes = 0usize;
            for row in r.range(TABLE, KeyRange::all(), Direction::Forward).unwrap() {
                let (k, v) = row.unwrap();
                bytes += consume(&k) + consume(&v);
                n += 1;
            }
            assert_eq!(n, N);
            black_box(bytes)
        })
    });
    g.bench_function("trait_visit_range", |b| {
        iter_timed(b, || {
            let r = fx().store.begin_read().unwrap();
            let mut n = 0u64;
            let mut bytes = 0usize;
            r.visit_range(TABLE, KeyRange::all(), Direction::Forward, &mut |k, v| {
                bytes += consume(k) + consume(v);
                n += 1;
                Ok(ControlFlow::Continue(()))
            })
            .unwrap();
            assert_eq!(n, N);
            black_box(bytes)
        })
    });
    g.bench_function("raw_range", |b| {
        iter_timed(b, || {
            let txn = fx().db.begin_read().unwrap();
            let table = txn.open_table(DEF).unwrap();
            let mut n = 0u64;
            let mut bytes = 0usize;
            for row in table.range::<&[u8]>(..).unwrap() {
                let (k, v) = row.unwrap();
                bytes += consume(k.value()) + consume(v.value());
                n += 1;
            }
            assert_eq!(n, N);
            black_box(bytes)
        })
    });
    // Diagnostic: raw redb copying each row into owned `Vec`s, as `KvRead::range` must
    // (its rows are owned `(Vec<u8>, Vec<u8>)`): the part of `trait_range`'s cost that is
    // the owned-row contract rather than this crate.
    g.bench_function("raw_range_owned", |b| {
        iter_timed(b, || {
            let txn = fx().db.begin_read().unwrap();
            let table = txn.open_table(DEF).unwrap();
            let mut n = 0u64;
            let mut bytes = 0usize;
            for row in table.range::<&[u8]>(..).unwrap() {
                let (k, v) = row.unwrap();
                let (k, v) = (k.value().to_vec(), v.value().to_vec());
                bytes += consume(&k) + consume(&v);
                n += 1;
            }
            assert_eq!(n, N);
            black_box(bytes)
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let d = data();
    insert(c, &d);
    reads(c, &d);
}

criterion_group!(kv, benches);
criterion_main!(kv);
