//! The backend conformance suite. Every backend's tests call [`conformance_tests!`] with a
//! function that opens its store, so both backends are held to one behaviour, written once.
//!
//! ```ignore
//! fn open(dir: &std::path::Path, tables: &[TableSpec]) -> storage_traits::Result<MyStore> { … }
//! storage_traits::conformance_tests!(open);
//! ```
//!
//! The crash check ([`crash_durability`]) runs the test binary itself as a child process,
//! kills it with SIGKILL in the middle of a transaction, and reopens the store.

use std::io::{BufRead, BufReader};
use std::ops::Bound;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::kv::*;

/// The signature of a backend's open function: create or open the store in `dir` with
/// these tables.
pub trait Opener<S: KvStore>: Fn(&Path, &[TableSpec]) -> Result<S> {}
impl<S: KvStore, F: Fn(&Path, &[TableSpec]) -> Result<S>> Opener<S> for F {}

const T1: &str = "conformance_a_1_0_0";
const T2: &str = "conformance_b_1_0_0";
const DUP: &str = "conformance_dup_1_0_0";
const DUP_KEY_LEN: usize = 4;

fn tables() -> Vec<TableSpec> {
    vec![
        TableSpec::plain(T1),
        TableSpec::plain(T2),
        TableSpec::dup_sort(DUP, DUP_KEY_LEN),
    ]
}

fn fresh<S: KvStore>(open: &impl Opener<S>) -> (tempfile::TempDir, S) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), &tables()).expect("open a new store");
    (dir, store)
}

fn put_commit<S: KvStore>(store: &S, table: &str, rows: &[(&[u8], &[u8])]) {
    let mut w = store.begin_write().unwrap();
    for (k, v) in rows {
        w.put(table, k, v).unwrap();
    }
    w.commit(Durability::Synced).unwrap();
}

fn collect(iter: KvIter<'_>) -> Vec<KvPair> {
    iter.collect::<Result<Vec<_>>>().unwrap()
}

fn keys(iter: KvIter<'_>) -> Vec<Vec<u8>> {
    collect(iter).into_iter().map(|(k, _)| k).collect()
}

fn be(n: u32) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

/// Put, overwrite, get, delete, and a write transaction reading its own writes.
pub fn round_trip<S: KvStore>(open: impl Opener<S>) {
    let (_dir, store) = fresh(&open);
    assert_eq!(store.begin_read().unwrap().get(T1, b"k").unwrap(), None);
    let mut w = store.begin_write().unwrap();
    w.put(T1, b"k", b"v1").unwrap();
    assert_eq!(w.get(T1, b"k").unwrap().as_deref(), Some(&b"v1"[..]));
    w.put(T1, b"k", b"v2").unwrap();
    assert_eq!(w.get(T1, b"k").unwrap().as_deref(), Some(&b"v2"[..]));
    w.put(T1, b"gone", b"x").unwrap();
    w.delete(T1, b"gone").unwrap();
    assert_eq!(w.get(T1, b"gone").unwrap(), None);
    w.put(T1, b"empty", b"").unwrap();
    w.commit(Durability::Synced).unwrap();

    let r = store.begin_read().unwrap();
    assert_eq!(r.get(T1, b"k").unwrap().as_deref(), Some(&b"v2"[..]));
    assert_eq!(r.get(T1, b"gone").unwrap(), None);
    assert_eq!(r.get(T1, b"empty").unwrap().as_deref(), Some(&b""[..]));
    assert_eq!(r.get(T2, b"k").unwrap(), None, "tables are separate");
    assert_eq!(r.len(T1).unwrap(), 2);
    drop(r);

    let mut w = store.begin_write().unwrap();
    w.delete(T1, b"k").unwrap();
    w.delete(T1, b"never-there").unwrap();
    w.commit(Durability::Synced).unwrap();
    assert_eq!(store.begin_read().unwrap().get(T1, b"k").unwrap(), None);
}

/// Big-endian integer keys iterate in numeric order, whatever the insertion order.
pub fn big_endian_key_order<S: KvStore>(open: impl Opener<S>) {
    let (_dir, store) = fresh(&open);
    let mut heights: Vec<u32> = vec![0, 1, 255, 256, 65_535, 65_536, 1 << 24, u32::MAX, 7, 300];
    let mut w = store.begin_write().unwrap();
    for h in heights.iter().rev() {
        w.put(T1, &be(*h), &h.to_le_bytes()).unwrap();
    }
    w.commit(Durability::Synced).unwrap();
    heights.sort();
    let r = store.begin_read().unwrap();
    let got: Vec<u32> = keys(r.range(T1, KeyRange::all(), Direction::Forward).unwrap())
        .iter()
        .map(|k| u32::from_be_bytes(k.as_slice().try_into().unwrap()))
        .collect();
    assert_eq!(got, heights);
    assert_eq!(r.first(T1).unwrap().unwrap().0, be(0));
    assert_eq!(r.last(T1).unwrap().unwrap().0, be(u32::MAX));
}

/// Included, excluded and unbounded bounds, empty ranges and prefixes, both directions.
pub fn range_bounds_and_reverse<S: KvStore>(open: impl Opener<S>) {
    let (_dir, store) = fresh(&open);
    let mut w = store.begin_write().unwrap();
    for i in 0..10u32 {
        w.put(T1, &be(i), b"v").unwrap();
    }
    w.put(T1, &[0, 0, 0, 5, 1], b"ext").unwrap();
    w.put(T1, &[0xFF, 0xFF], b"top").unwrap();
    w.commit(Durability::Synced).unwrap();
    let r = store.begin_read().unwrap();
    let ks = |range: KeyRange, d: Direction| keys(r.range(T1, range, d).unwrap());

    assert_eq!(
        ks(KeyRange::half_open(be(2), be(5)), Direction::Forward),
        vec![be(2), be(3), be(4)]
    );
    assert_eq!(
        ks(KeyRange::inclusive(be(2), be(5)), Direction::Forward),
        vec![be(2), be(3), be(4), be(5)]
    );
    assert_eq!(
        ks(
            KeyRange {
                start: Bound::Excluded(be(2)),
                end: Bound::Excluded(be(5))
            },
            Direction::Forward
        ),
        vec![be(3), be(4)]
    );
    assert_eq!(
        ks(KeyRange::half_open(be(2), be(5)), Direction::Reverse),
        vec![be(4), be(3), be(2)]
    );
    assert_eq!(
        ks(
            KeyRange {
                start: Bound::Unbounded,
                end: Bound::Included(be(1))
            },
            Direction::Reverse
        ),
        vec![be(1), be(0)]
    );
    assert_eq!(
        ks(KeyRange::from(be(9)), Direction::Forward),
        vec![be(9), vec![0xFF, 0xFF]]
    );
    assert!(ks(KeyRange::half_open(be(5), be(5)), Direction::Forward).is_empty());
    assert!(ks(KeyRange::half_open(be(7), be(3)), Direction::Forward).is_empty());
    assert!(ks(KeyRange::half_open(be(7), be(3)), Direction::Reverse).is_empty());
    assert_eq!(
        keys(r.prefix(T1, &be(5), Direction::Forward).unwrap()),
        vec![be(5), vec![0, 0, 0, 5, 1]]
    );
    assert_eq!(
        keys(r.prefix(T1, &be(5), Direction::Reverse).unwrap()),
        vec![vec![0, 0, 0, 5, 1], be(5)]
    );
    assert_eq!(
        keys(r.prefix(T1, &[0xFF], Direction::Forward).unwrap()),
        vec![vec![0xFF, 0xFF]]
    );
    let all = collect(r.range(T1, KeyRange::all(), Direction::Reverse).unwrap());
    assert_eq!(all.len(), 12);
    assert_eq!(all[0], (vec![0xFF, 0xFF], b"top".to_vec()));
    assert!(
        r.range(T2, KeyRange::all(), Direction::Forward)
            .unwrap()
            .next()
            .is_none()
    );
    assert_eq!(r.first(T2).unwrap(), None);
    assert_eq!(r.last(T2).unwrap(), None);
    assert!(r.is_empty(T2).unwrap());
}

/// An open snapshot does not see a later commit; a new one does.
pub fn snapshot_isolation<S: KvStore>(open: impl Opener<S>) {
    let (_dir, store) = fresh(&open);
    put_commit(&store, T1, &[(b"a", b"1")]);
    let before = store.begin_read().unwrap();
    let mut w = store.begin_write().unwrap();
    w.put(T1, b"a", b"2").unwrap();
    w.put(T1, b"b", b"2").unwrap();
    // Uncommitted writes are invisible to readers.
    assert_eq!(before.get(T1, b"b").unwrap(), None);
    w.commit(Durability::Synced).unwrap();

    assert_eq!(before.get(T1, b"a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(before.get(T1, b"b").unwrap(), None);
    assert_eq!(
        keys(
            before
                .range(T1, KeyRange::all(), Direction::Forward)
                .unwrap()
        ),
        vec![b"a".to_vec()]
    );
    assert_eq!(before.len(T1).unwrap(), 1);
    let after = store.begin_read().unwrap();
    assert_eq!(after.get(T1, b"a").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(after.get(T1, b"b").unwrap().as_deref(), Some(&b"2"[..]));
}

/// A dropped write transaction leaves nothing, in any table.
pub fn dropped_write_leaves_nothing<S: KvStore>(open: impl Opener<S>) {
    let (_dir, store) = fresh(&open);
    put_commit(&store, T1, &[(b"keep", b"1")]);
    {
        let mut w = store.begin_write().unwrap();
        w.put(T1, b"keep", b"changed").unwrap();
        w.put(T1, b"new", b"x").unwrap();
        w.put(T2, b"new", b"x").unwrap();
        w.put(DUP, b"abcd", b"x").unwrap();
        w.delete(T1, b"keep").unwrap();
        w.clear(T1).unwrap();
    }
    let r = store.begin_read().unwrap();
    assert_eq!(r.get(T1, b"keep").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(r.len(T1).unwrap(), 1);
    assert!(r.is_empty(T2).unwrap());
    assert!(r.is_empty(DUP).unwrap());
}

/// `put_if_absent_or_identical`: inserts, accepts the same bytes, refuses different ones
/// without changing anything.
pub fn idempotent_put<S: KvStore>(open: impl Opener<S>) {
    let (_dir, store) = fresh(&open);
    let mut w = store.begin_write().unwrap();
    assert_eq!(
        w.put_if_absent_or_identical(T1, b"k", b"v").unwrap(),
        PutOutcome::Inserted
    );
    // Against the transaction's own uncommitted write.
    assert_eq!(
        w.put_if_absent_or_identical(T1, b"k", b"v").unwrap(),
        PutOutcome::AlreadyPresent
    );
    w.commit(Durability::Synced).unwrap();

    let mut w = store.begin_write().unwrap();
    assert_eq!(
        w.put_if_absent_or_identical(T1, b"k", b"v").unwrap(),
        PutOutcome::AlreadyPresent
    );
    let err = w
        .put_if_absent_or_identical(T1, b"k", b"other")
        .unwrap_err();
    match &err {
        Error::Conflict { table, key } => {
            assert_eq!(table, T1);
            assert_eq!(key, "6b");
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(w.get(T1, b"k").unwrap().as_deref(), Some(&b"v"[..]));
    w.commit(Durability::Synced).unwrap();
    assert_eq!(
        store
            .begin_read()
            .unwrap()
            .get(T1, b"k")
            .unwrap()
            .as_deref(),
        Some(&b"v"[..])
    );
}

/// Sorted bulk insert writes every row; out-of-order keys are refused.
pub fn sorted_bulk_insert<S: KvStore>(open: impl Opener<S>) {
    let (_dir, store) = fresh(&open);
    let rows: Vec<(Vec<u8>, Vec<u8>)> = (0..5_000u32).map(|i| (be(i), be(i * 3))).collect();
    let mut w = store.begin_write().unwrap();
    let n = w
        .insert_sorted(
            T1,
            &mut rows.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
        )
        .unwrap();
    assert_eq!(n, 5_000);
    w.commit(Durability::Synced).unwrap();
    let r = store.begin_read().unwrap();
    assert_eq!(r.len(T1).unwrap(), 5_000);
    assert_eq!(
        collect(r.range(T1, KeyRange::all(), Direction::Forward).unwrap()),
        rows
    );
    drop(r);

    let mut w = store.begin_write().unwrap();
    let bad = [(be(10), b"x".to_vec()), (be(9), b"y".to_vec())];
    let err = w
        .insert_sorted(
            T2,
            &mut bad.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
        )
        .unwrap_err();
    assert!(matches!(err, Error::UnsortedInsert { .. }), "{err:?}");
    let dup = [(be(1), b"x".to_vec()), (be(1), b"y".to_vec())];
    let err = w
        .insert_sorted(
            T2,
            &mut dup.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
        )
        .unwrap_err();
    assert!(matches!(err, Error::UnsortedInsert { .. }), "{err:?}");
}

/// Values of 16 MiB and more round-trip.
pub fn large_values<S: KvStore>(open: impl Opener<S>) {
    let (_dir, store) = fresh(&open);
    let big: Vec<u8> = (0..(16 << 20) + 12_345u32)
        .map(|i| (i.wrapping_mul(2_654_435_761u32) >> 24) as u8)
        .collect();
    let bigger = vec![0xA5u8; 24 << 20];
    put_commit(&store, T1, &[(b"16MiB", &big), (b"24MiB", &bigger)]);
    let r = store.begin_read().unwrap();
    assert_eq!(r.get(T1, b"16MiB").unwrap().unwrap(), big);
    assert_eq!(r.get(T1, b"24MiB").unwrap().unwrap(), bigger);
}

/// Many tables in one store stay separate, and an unknown table is a clear error.
pub fn many_tables<S: KvStore>(open: impl Opener<S>) {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<&'static str> = (0..40)
        .map(|i| &*Box::leak(format!("table_{i:02}_1_0_0").into_boxed_str()))
        .collect();
    let specs: Vec<TableSpec> = names.iter().map(|n| TableSpec::plain(n)).collect();
    let store = open(dir.path(), &specs).unwrap();
    let mut w = store.begin_write().unwrap();
    for (i, n) in names.iter().enumerate() {
        w.put(n, b"k", &[i as u8]).unwrap();
    }
    w.commit(Durability::Synced).unwrap();
    let r = store.begin_read().unwrap();
    for (i, n) in names.iter().enumerate() {
        assert_eq!(r.get(n, b"k").unwrap(), Some(vec![i as u8]));
        assert_eq!(r.len(n).unwrap(), 1);
    }
    let err = r.get("no_such_table", b"k").unwrap_err();
    assert!(
        matches!(&err, Error::UnknownTable { table } if table == "no_such_table"),
        "{err:?}"
    );
    drop(r);
    let mut w = store.begin_write().unwrap();
    assert!(matches!(
        w.put("no_such_table", b"k", b"v"),
        Err(Error::UnknownTable { .. })
    ));
}

/// Closing and reopening keeps every committed row, buffered commits included once synced.
pub fn reopen_keeps_everything<S: KvStore>(open: impl Opener<S>) {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path(), &tables()).unwrap();
        put_commit(&store, T1, &[(b"a", b"1"), (b"b", b"2")]);
        let mut w = store.begin_write().unwrap();
        w.put(T2, b"buffered", b"3").unwrap();
        w.put(DUP, b"abcd", b"x").unwrap();
        w.put(DUP, b"abcd", b"y").unwrap();
        w.commit(Durability::Buffered).unwrap();
        // Buffered commits are visible at once.
        assert_eq!(
            store
                .begin_read()
                .unwrap()
                .get(T2, b"buffered")
                .unwrap()
                .as_deref(),
            Some(&b"3"[..])
        );
        store.sync().unwrap();
    }
    let store = open(dir.path(), &tables()).unwrap();
    let r = store.begin_read().unwrap();
    assert_eq!(r.get(T1, b"a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(r.get(T1, b"b").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(r.get(T2, b"buffered").unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!(
        r.get_dup(DUP, b"abcd").unwrap(),
        vec![b"x".to_vec(), b"y".to_vec()]
    );
    assert_eq!(store.tables().len(), 3);
}

/// Duplicate-sorted tables: a key's values in value order, each pair once, pair deletes.
pub fn dup_sort_semantics<S: KvStore>(open: impl Opener<S>) {
    let (_dir, store) = fresh(&open);
    let mut w = store.begin_write().unwrap();
    for v in [&b"m"[..], b"c", b"x", b"c", b"a"] {
        w.put(DUP, b"key1", v).unwrap();
    }
    w.put(DUP, b"key0", b"z").unwrap();
    w.put(DUP, b"key2", b"b").unwrap();
    assert_eq!(
        w.get_dup(DUP, b"key1").unwrap(),
        vec![b"a".to_vec(), b"c".to_vec(), b"m".to_vec(), b"x".to_vec()]
    );
    w.commit(Durability::Synced).unwrap();

    let r = store.begin_read().unwrap();
    assert_eq!(
        r.get_dup(DUP, b"key1").unwrap(),
        vec![b"a".to_vec(), b"c".to_vec(), b"m".to_vec(), b"x".to_vec()]
    );
    assert_eq!(r.get(DUP, b"key1").unwrap(), Some(b"a".to_vec()));
    assert_eq!(r.get_dup(DUP, b"none").unwrap(), Vec::<Vec<u8>>::new());
    assert_eq!(r.len(DUP).unwrap(), 6);
    let pairs = collect(r.range(DUP, KeyRange::all(), Direction::Forward).unwrap());
    let expected: Vec<KvPair> = [
        ("key0", "z"),
        ("key1", "a"),
        ("key1", "c"),
        ("key1", "m"),
        ("key1", "x"),
        ("key2", "b"),
    ]
    .iter()
    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .collect();
    assert_eq!(pairs, expected);
    let rev = collect(r.range(DUP, KeyRange::all(), Direction::Reverse).unwrap());
    assert_eq!(rev, expected.iter().rev().cloned().collect::<Vec<_>>());
    assert_eq!(
        collect(r.prefix(DUP, b"key1", Direction::Forward).unwrap()).len(),
        4
    );
    drop(r);

    let mut w = store.begin_write().unwrap();
    w.delete_dup(DUP, b"key1", b"c").unwrap();
    w.delete_dup(DUP, b"key1", b"not-there").unwrap();
    w.delete(DUP, b"key2").unwrap();
    w.commit(Durability::Synced).unwrap();
    let r = store.begin_read().unwrap();
    assert_eq!(
        r.get_dup(DUP, b"key1").unwrap(),
        vec![b"a".to_vec(), b"m".to_vec(), b"x".to_vec()]
    );
    assert_eq!(r.get_dup(DUP, b"key2").unwrap(), Vec::<Vec<u8>>::new());
    assert_eq!(r.len(DUP).unwrap(), 4);
}

/// `clear` empties one table and no other.
pub fn clear_table<S: KvStore>(open: impl Opener<S>) {
    let (_dir, store) = fresh(&open);
    put_commit(&store, T1, &[(b"a", b"1"), (b"b", b"2")]);
    put_commit(&store, T2, &[(b"a", b"1")]);
    let mut w = store.begin_write().unwrap();
    w.clear(T1).unwrap();
    assert_eq!(w.get(T1, b"a").unwrap(), None);
    w.put(T1, b"c", b"3").unwrap();
    w.commit(Durability::Synced).unwrap();
    let r = store.begin_read().unwrap();
    assert_eq!(
        keys(r.range(T1, KeyRange::all(), Direction::Forward).unwrap()),
        vec![b"c".to_vec()]
    );
    assert_eq!(r.len(T2).unwrap(), 1);
}

/// `visit_range` lends exactly the rows of `range`, in order, in snapshots and write
/// transactions, stops on `Break`, and passes the visitor's error through.
pub fn visit_range_matches_range<S: KvStore>(open: impl Opener<S>) {
    fn visited<R: KvRead + ?Sized>(
        r: &R,
        table: &str,
        range: KeyRange,
        direction: Direction,
        limit: usize,
    ) -> Vec<KvPair> {
        let mut out = Vec::new();
        r.visit_range(table, range, direction, &mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            Ok(if out.len() >= limit {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            })
        })
        .unwrap();
        out
    }
    fn check<R: KvRead + ?Sized>(r: &R) {
        let ranges = [
            KeyRange::all(),
            KeyRange::half_open(be(3), be(17)),
            KeyRange::prefix(&be(5)),
            KeyRange::half_open(be(9), be(2)),
        ];
        for table in [T1, DUP] {
            for range in &ranges {
                for d in [Direction::Forward, Direction::Reverse] {
                    let want = collect(r.range(table, range.clone(), d).unwrap());
                    assert_eq!(visited(r, table, range.clone(), d, usize::MAX), want);
                    let first3: Vec<KvPair> = want.iter().take(3).cloned().collect();
                    assert_eq!(visited(r, table, range.clone(), d, 3), first3);
                }
            }
        }
        let err = r
            .visit_range(T1, KeyRange::all(), Direction::Forward, &mut |_, _| {
                Err(Error::decode("visitor", "stop"))
            })
            .unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    }

    let (_dir, store) = fresh(&open);
    let mut w = store.begin_write().unwrap();
    for i in 0..20u32 {
        w.put(T1, &be(i), &be(i * 3)).unwrap();
        w.put(DUP, &be(i / 3), &be(i)).unwrap();
    }
    w.put(T1, &[0, 0, 0, 5, 9], b"under prefix").unwrap();
    w.commit(Durability::Synced).unwrap();
    check(&store.begin_read().unwrap());
    let mut w = store.begin_write().unwrap();
    w.put(T1, &be(100), b"uncommitted").unwrap();
    w.delete(T1, &be(4)).unwrap();
    w.put(DUP, &be(1), b"uncommitted").unwrap();
    check(&w);
}

/// One write transaction at a time: a second `begin_write` waits for the first.
pub fn single_writer<S: KvStore>(open: impl Opener<S>) {
    let (_dir, store) = fresh(&open);
    let first_done = AtomicBool::new(false);
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        let mut w = store.begin_write().unwrap();
        w.put(T1, b"k", b"first").unwrap();
        scope.spawn(|| {
            barrier.wait();
            let mut w2 = store.begin_write().unwrap();
            assert!(
                first_done.load(Ordering::SeqCst),
                "a second writer started while the first was open"
            );
            assert_eq!(w2.get(T1, b"k").unwrap().as_deref(), Some(&b"first"[..]));
            w2.put(T1, b"k", b"second").unwrap();
            w2.commit(Durability::Synced).unwrap();
        });
        barrier.wait();
        std::thread::sleep(Duration::from_millis(200));
        first_done.store(true, Ordering::SeqCst);
        w.commit(Durability::Synced).unwrap();
    });
    assert_eq!(
        store
            .begin_read()
            .unwrap()
            .get(T1, b"k")
            .unwrap()
            .as_deref(),
        Some(&b"second"[..])
    );
}

const CRASH_DIR_ENV: &str = "STRATA_CONFORMANCE_CRASH_DIR";
const CRASH_TXNS: u32 = 40;
const CRASH_ROWS: u32 = 50;

fn crash_value(txn: u32, row: u32) -> Vec<u8> {
    let mut v = format!("txn {txn} row {row} ").into_bytes();
    v.resize(4096, (txn as u8) ^ (row as u8));
    v
}

/// SIGKILL durability. Call it from a `#[test]` named `test_name` (its path as libtest
/// prints it). In the parent it re-runs that test as a child process; the child commits
/// synced transactions, reporting each on stdout, then starts an interrupted transaction
/// and is killed with SIGKILL at a varying point. The reopened store must hold every
/// reported commit and nothing of the interrupted one.
pub fn crash_durability<S: KvStore>(test_name: &str, open: impl Opener<S>) {
    if let Ok(dir) = std::env::var(CRASH_DIR_ENV) {
        crash_child(Path::new(&dir), open);
        return;
    }
    for round in 0..4u32 {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
            .env(CRASH_DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut committed = 0u32;
        // Kill at a point that differs per round: after some commits, during the open
        // transaction's writes, or right before its commit.
        let kill_after = [3, 17, CRASH_TXNS, CRASH_TXNS][round as usize];
        let interrupted_rows = [0, 5, 10, 49][round as usize];
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            // libtest prints "test <name> ... " without a newline before the child's first
            // report, so a report is found anywhere in the line, not only at its start.
            if let Some((_, n)) = line.split_once("committed ") {
                committed = n.trim().parse::<u32>().unwrap() + 1;
                if committed == kill_after && kill_after < CRASH_TXNS {
                    break;
                }
            } else if let Some((_, n)) = line.split_once("interrupted row ")
                && n.trim().parse::<u32>().unwrap() >= interrupted_rows
            {
                break;
            }
        }
        kill_9(&mut child);
        let store = open(dir.path(), &tables()).unwrap();
        let r = store.begin_read().unwrap();
        // Every reported commit is there, whole.
        for txn in 0..committed {
            for row in 0..CRASH_ROWS {
                let key = [be(txn), be(row)].concat();
                assert_eq!(
                    r.get(T1, &key).unwrap(),
                    Some(crash_value(txn, row)),
                    "round {round}: committed txn {txn} row {row} lost"
                );
            }
        }
        // A commit the child finished but had not yet reported may be present, but then
        // whole; nothing of the interrupted transaction is.
        let len = r.len(T1).unwrap() as u32;
        assert!(
            len == committed * CRASH_ROWS || len == (committed + 1) * CRASH_ROWS,
            "round {round}: {len} rows after {committed} commits: a torn transaction"
        );
        assert!(
            r.is_empty(T2).unwrap(),
            "round {round}: interrupted transaction leaked"
        );
    }
}

fn kill_9(child: &mut std::process::Child) {
    // std's kill sends SIGKILL on Unix.
    child.kill().unwrap();
    child.wait().unwrap();
}

fn crash_child<S: KvStore>(dir: &Path, open: impl Opener<S>) {
    let store = open(dir, &tables()).unwrap();
    for txn in 0..CRASH_TXNS {
        let mut w = store.begin_write().unwrap();
        for row in 0..CRASH_ROWS {
            let key = [be(txn), be(row)].concat();
            w.put(T1, &key, &crash_value(txn, row)).unwrap();
        }
        w.commit(Durability::Synced).unwrap();
        println!("committed {txn}");
    }
    // The interrupted transaction: writes to T2 and more rows of T1, never committed.
    let mut w = store.begin_write().unwrap();
    for row in 0.. {
        w.put(T2, &be(row), &vec![0xEE; 64 << 10]).unwrap();
        w.put(T1, &[be(u32::MAX), be(row)].concat(), b"never")
            .unwrap();
        println!("interrupted row {row}");
        if row > 60 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `get_latest` reads what a snapshot taken at the same moment reads: committed rows only
/// (never an open write transaction's), a dup-sorted key's first value, nothing for an
/// absent key, and an unknown table is an error.
pub fn get_latest_reads_committed_state<S: KvStore>(open: impl Opener<S>) {
    let (_dir, store) = fresh(&open);
    assert_eq!(store.get_latest(T1, b"k").unwrap(), None);
    put_commit(&store, T1, &[(b"k", b"v1")]);
    put_commit(&store, DUP, &[(b"dup1", b"b"), (b"dup1", b"a")]);
    let mut w = store.begin_write().unwrap();
    w.put(T1, b"k", b"uncommitted").unwrap();
    w.put(T1, b"new", b"uncommitted").unwrap();
    assert_eq!(
        store.get_latest(T1, b"k").unwrap().as_deref(),
        Some(&b"v1"[..])
    );
    assert_eq!(store.get_latest(T1, b"new").unwrap(), None);
    w.commit(Durability::Synced).unwrap();
    for key in [&b"k"[..], b"new", b"absent"] {
        assert_eq!(
            store.get_latest(T1, key).unwrap(),
            store.begin_read().unwrap().get(T1, key).unwrap()
        );
    }
    assert_eq!(
        store.get_latest(DUP, b"dup1").unwrap().as_deref(),
        Some(&b"a"[..])
    );
    assert_eq!(store.get_latest(DUP, b"dup2").unwrap(), None);
    assert!(matches!(
        store.get_latest("no_such_table", b"k"),
        Err(Error::UnknownTable { .. })
    ));
}

/// Puts in ascending key order (which a backend may append without sorting) interleaved
/// with overwrites, deletes and dup-sorted pairs: the transaction reads its own writes,
/// newest first, in point reads and ranges, before and after the commit.
pub fn ascending_puts_with_overwrites<S: KvStore>(open: impl Opener<S>) {
    let (_dir, store) = fresh(&open);
    put_commit(&store, T1, &[(&be(5), b"base"), (&be(51), b"base")]);
    let mut w = store.begin_write().unwrap();
    for n in 0..40u32 {
        w.put(T1, &be(n * 2), &be(n)).unwrap();
    }
    w.put(T1, &be(4), b"again").unwrap();
    w.delete(T1, &be(6)).unwrap();
    w.delete(T1, &be(5)).unwrap();
    w.put(T1, &be(100), b"last").unwrap();
    for v in [b"a", b"c", b"e"] {
        w.put(DUP, b"key1", v).unwrap();
    }
    w.put(DUP, b"key0", b"z").unwrap();
    w.put(DUP, b"key2", b"a").unwrap();
    w.delete_dup(DUP, b"key1", b"c").unwrap();
    let expect_t1 = |r: &dyn KvRead| {
        assert_eq!(r.get(T1, &be(4)).unwrap().as_deref(), Some(&b"again"[..]));
        assert_eq!(r.get(T1, &be(6)).unwrap(), None);
        assert_eq!(r.get(T1, &be(5)).unwrap(), None);
        assert_eq!(r.get(T1, &be(8)).unwrap(), Some(be(4)));
        assert_eq!(r.get(T1, &be(51)).unwrap().as_deref(), Some(&b"base"[..]));
        assert_eq!(r.get(T1, &be(100)).unwrap().as_deref(), Some(&b"last"[..]));
        let all = keys(r.range(T1, KeyRange::all(), Direction::Forward).unwrap());
        let mut want: Vec<Vec<u8>> = (0..40u32)
            .map(|n| be(n * 2))
            .filter(|k| *k != be(6))
            .collect();
        want.push(be(51));
        want.push(be(100));
        want.sort();
        assert_eq!(all, want);
        assert_eq!(
            r.get_dup(DUP, b"key1").unwrap(),
            vec![b"a".to_vec(), b"e".to_vec()]
        );
        assert_eq!(r.get(DUP, b"key0").unwrap().as_deref(), Some(&b"z"[..]));
        assert_eq!(r.len(DUP).unwrap(), 4);
    };
    expect_t1(&w);
    w.commit(Durability::Synced).unwrap();
    expect_t1(&store.begin_read().unwrap());
}

/// Expands to one `#[test]` per conformance check, each calling `$open`.
#[macro_export]
macro_rules! conformance_tests {
    ($open:path) => {
        $crate::conformance_tests!(@each $open;
            round_trip, big_endian_key_order, range_bounds_and_reverse, snapshot_isolation,
            dropped_write_leaves_nothing, idempotent_put, sorted_bulk_insert, large_values,
            many_tables, reopen_keeps_everything, dup_sort_semantics, clear_table,
            single_writer, visit_range_matches_range, get_latest_reads_committed_state,
            ascending_puts_with_overwrites);
    };
    (@each $open:path; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::conformance::$check($open);
            }
        )*
    };
}

/// Helpers for tests that compare what crates wrote to disk byte for byte.
pub mod files {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    /// Every file under `dir` (path relative to `dir` → bytes); empty when `dir` does not
    /// exist. Panics on I/O errors: a test helper.
    pub fn tree_bytes(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.insert(
                        p.strip_prefix(dir).unwrap().to_path_buf(),
                        std::fs::read(&p).unwrap(),
                    );
                }
            }
        }
        out
    }
}

/// Every row of each of `tables` in `store`, in key order, by table: for tests that
/// compare two stores table by table. Panics on errors: a test helper.
pub fn dump_tables<S: KvStore>(
    store: &S,
    tables: &[TableSpec],
) -> Vec<(&'static str, Vec<KvPair>)> {
    let r = store.begin_read().unwrap();
    tables
        .iter()
        .map(|spec| {
            let rows = r
                .range(spec.name, KeyRange::all(), Direction::Forward)
                .unwrap()
                .collect::<Result<Vec<_>>>()
                .unwrap();
            (spec.name, rows)
        })
        .collect()
}

/// Helpers for crash tests that re-run the test binary as a child process and kill it:
/// spawning, draining its stdout, and a seeded PRNG whose seed is printed for replay.
pub mod child {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc::{Receiver, channel};

    /// Runs the test `test_name` of the current test binary as a child process with `env`
    /// set, its stdout piped.
    pub fn spawn_test(test_name: &str, env: &[(&str, &std::ffi::OsStr)]) -> Child {
        let mut cmd = Command::new(std::env::current_exe().expect("current test binary"));
        cmd.args([test_name, "--exact", "--nocapture", "--test-threads=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().expect("spawn the test binary as a child")
    }

    /// Reads the child's stdout on a thread, so the child never blocks or dies on a full or
    /// closed pipe (it is killed mid-work, not by a broken pipe); lines arrive on the
    /// returned channel, which closes when the child's stdout does. Each line is what the
    /// child printed: the `test <name> ... ` that libtest prints, without a newline, before
    /// the test's own first line is cut off.
    pub fn drain(child: &mut Child) -> Receiver<String> {
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(mut line) = line else { break };
                if line.starts_with("test ")
                    && let Some(i) = line.find(" ... ")
                {
                    line.drain(..i + 5);
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    }

    /// SplitMix64: a tiny deterministic PRNG, so kill points replay from a printed seed.
    #[derive(Clone, Debug)]
    pub struct SplitMix64(pub u64);

    impl SplitMix64 {
        /// Seeded from `STRATA_CRASH_SEED` when set, else from the clock; the seed is
        /// printed to stderr with `what`, so a failing run can be replayed.
        pub fn from_env_or_clock(what: &str) -> Self {
            let seed = std::env::var("STRATA_CRASH_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| {
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos() as u64)
                });
            eprintln!("{what} seed {seed} (set STRATA_CRASH_SEED={seed} to replay)");
            SplitMix64(seed)
        }

        /// The next value.
        #[allow(clippy::should_implement_trait)]
        pub fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }
}

/// The clock the backend benchmarks report, shared so every backend's trait/raw ratio is
/// measured the same way.
///
/// By default the on-CPU time of the calling thread (`/proc/thread-self/schedstat`, user
/// and kernel, nanoseconds): on a machine shared with other builds, the time a thread
/// spends descheduled is noise that lands on whichever side of a comparison happens to run
/// during a burst of load. The cost the traits add over a raw backend is work on the
/// calling thread, which this clock sees in full; what it leaves out (waiting for the disk,
/// a backend's background threads) is the same on both sides. `STRATA_BENCH_CLOCK=wall`
/// reports wall time instead. The kernel updates the figure at scheduler events, so a
/// reading may lag by up to a tick (a few milliseconds): time runs of 100 ms or more.
pub mod bench_clock {
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    /// Which time the benchmarks report.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Clock {
        /// The calling thread's on-CPU time.
        ThreadCpu,
        /// Wall time.
        Wall,
    }

    /// The clock in use: `STRATA_BENCH_CLOCK=wall` or `cpu` (the default, when the kernel
    /// exposes it). Chosen once per process and printed to stderr.
    pub fn clock() -> Clock {
        static CLOCK: OnceLock<Clock> = OnceLock::new();
        *CLOCK.get_or_init(|| {
            let clock = match std::env::var("STRATA_BENCH_CLOCK").as_deref() {
                Ok("wall") => Clock::Wall,
                _ if thread_cpu_ns().is_some() => Clock::ThreadCpu,
                _ => Clock::Wall,
            };
            eprintln!("benchmarks report {clock:?} time (STRATA_BENCH_CLOCK=wall|cpu)");
            clock
        })
    }

    /// The calling thread's on-CPU time so far, in nanoseconds, when the kernel exposes it.
    pub fn thread_cpu_ns() -> Option<u64> {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// A start time on [`clock`].
    #[derive(Clone, Copy, Debug)]
    pub enum Stamp {
        /// Thread CPU nanoseconds.
        Cpu(u64),
        /// A wall-clock instant.
        Wall(Instant),
    }

    impl Stamp {
        /// Now, on [`clock`].
        pub fn now() -> Stamp {
            match clock() {
                Clock::ThreadCpu => Stamp::Cpu(thread_cpu_ns().unwrap_or(0)),
                Clock::Wall => Stamp::Wall(Instant::now()),
            }
        }

        /// The time since this stamp, on the same clock.
        pub fn elapsed(&self) -> Duration {
            match self {
                Stamp::Cpu(start) => {
                    Duration::from_nanos(thread_cpu_ns().unwrap_or(0).saturating_sub(*start))
                }
                Stamp::Wall(start) => start.elapsed(),
            }
        }
    }

    /// Runs `routine` `iters` times and returns the time taken on [`clock`]: the body of a
    /// criterion `iter_custom`.
    pub fn time<R>(iters: u64, mut routine: impl FnMut() -> R) -> Duration {
        let start = Stamp::now();
        for _ in 0..iters {
            std::hint::black_box(routine());
        }
        start.elapsed()
    }
}

/// Interleaved measurement, shared by the benchmarks that compare Strata with a raw
/// baseline: round after round, every side runs once on its own fresh, identical input, in
/// alternating order (forward in even rounds, backward in odd ones). Load from other
/// processes and order effects (the first run in a process paying for cold caches and a
/// growing heap; a neighbour's build starting mid-run) land on the sides of one round
/// alike, so the per-round ratio cancels most of them. The figure is the median of the
/// per-round ratios, printed with their range and each side's median time.
///
/// ```ignore
/// let rounds = interleave::run(interleave::rounds_from_env(15), &mut [
///     ("trait", &mut || { /* setup */ let t = Stamp::now(); /* work */ t.elapsed() }),
///     ("raw", &mut || { /* same setup */ let t = Stamp::now(); /* same work */ t.elapsed() }),
/// ]);
/// println!("{}", rounds.markdown_row("1M gets", "trait", "raw"));
/// ```
pub mod interleave {
    use std::time::Duration;

    /// Rounds per comparison: `STRATA_BENCH_ROUNDS` when set (and at least 1), else
    /// `default`.
    pub fn rounds_from_env(default: usize) -> usize {
        std::env::var("STRATA_BENCH_ROUNDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(default)
    }

    /// The 1-minute load average (`/proc/loadavg`), to print beside a figure measured on a
    /// shared machine; `?` where the kernel does not expose it.
    pub fn load_average() -> String {
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(|| "?".to_owned())
    }

    /// What a benchmark run measures, from its command line (`cargo bench` passes
    /// `--bench`; the first other argument is the filter): the groups whose name contains
    /// the filter, or with `group/side`, only the sides of those groups whose name contains
    /// `side` (to profile one side alone; `group/a,b` for the sides matching `a` or `b`). No
    /// filter: everything.
    #[derive(Clone, Debug, Default)]
    pub struct Filter(Option<String>);

    impl Filter {
        /// The filter of this process's command line.
        pub fn from_args() -> Filter {
            Filter(std::env::args().skip(1).find(|a| !a.starts_with('-')))
        }

        /// Whether group `group` runs.
        pub fn group(&self, group: &str) -> bool {
            match &self.0 {
                None => true,
                Some(f) => group.contains(f.split('/').next().unwrap_or_default()),
            }
        }

        /// Whether side `side` of group `group` runs.
        pub fn side(&self, group: &str, side: &str) -> bool {
            match self.0.as_deref().map(|f| f.split_once('/')) {
                Some(Some((_, s))) => self.group(group) && s.split(',').any(|s| side.contains(s)),
                _ => self.group(group),
            }
        }
    }

    /// One side of a comparison: its name, and a routine that does the work once and
    /// returns the time the work took, setup excluded (each side times itself, on
    /// [`super::bench_clock`] or on wall time as its figure requires).
    pub type Side<'a> = (&'a str, &'a mut dyn FnMut() -> Duration);

    /// Runs `rounds` rounds of every side once: sides in the given order in even rounds,
    /// in reverse in odd ones.
    pub fn run(rounds: usize, sides: &mut [Side<'_>]) -> Rounds {
        let mut times = vec![Vec::with_capacity(rounds); sides.len()];
        for round in 0..rounds {
            let order: Vec<usize> = if round % 2 == 0 {
                (0..sides.len()).collect()
            } else {
                (0..sides.len()).rev().collect()
            };
            for i in order {
                times[i].push((sides[i].1)());
            }
        }
        Rounds {
            names: sides.iter().map(|(name, _)| (*name).to_owned()).collect(),
            times,
        }
    }

    /// The median and range of a set of per-round figures.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub struct Spread {
        /// The median (the mean of the middle two for an even count).
        pub median: f64,
        /// The smallest.
        pub min: f64,
        /// The largest.
        pub max: f64,
    }

    impl Spread {
        /// The spread of `values` (which must not be empty).
        pub fn of(values: &[f64]) -> Spread {
            assert!(!values.is_empty(), "no rounds to summarise");
            let mut v = values.to_vec();
            v.sort_by(f64::total_cmp);
            let mid = v.len() / 2;
            let median = if v.len() % 2 == 1 {
                v[mid]
            } else {
                (v[mid - 1] + v[mid]) / 2.0
            };
            Spread {
                median,
                min: v[0],
                max: v[v.len() - 1],
            }
        }

        /// The spread of the reciprocals (a time ratio turned into a throughput ratio).
        pub fn recip(self) -> Spread {
            Spread {
                median: self.median.recip(),
                min: self.max.recip(),
                max: self.min.recip(),
            }
        }
    }

    /// The times of every side in every round.
    #[derive(Clone, Debug)]
    pub struct Rounds {
        names: Vec<String>,
        /// `times[side][round]`.
        times: Vec<Vec<Duration>>,
    }

    impl Rounds {
        /// The number of rounds.
        pub fn rounds(&self) -> usize {
            self.times.first().map_or(0, Vec::len)
        }

        /// The times of the side named `side`, in round order. Panics on an unknown name
        /// (a mistake in the benchmark, not in what it measures).
        pub fn times(&self, side: &str) -> &[Duration] {
            let i = self
                .names
                .iter()
                .position(|n| n == side)
                .unwrap_or_else(|| panic!("no side named {side:?} among {:?}", self.names));
            &self.times[i]
        }

        /// The median time of `side`.
        pub fn median(&self, side: &str) -> Duration {
            let secs: Vec<f64> = self.times(side).iter().map(Duration::as_secs_f64).collect();
            Duration::from_secs_f64(Spread::of(&secs).median)
        }

        /// The per-round time ratios `subject / baseline`: their median and range.
        pub fn ratio(&self, subject: &str, baseline: &str) -> Spread {
            let ratios: Vec<f64> = self
                .times(subject)
                .iter()
                .zip(self.times(baseline))
                .map(|(s, b)| s.as_secs_f64() / b.as_secs_f64())
                .collect();
            Spread::of(&ratios)
        }

        /// A row of [`MARKDOWN_HEADER`]'s table: `what`, both medians in milliseconds, and
        /// the time ratio `subject / baseline` (median of the rounds, then min–max).
        pub fn markdown_row(&self, what: &str, subject: &str, baseline: &str) -> String {
            let r = self.ratio(subject, baseline);
            format!(
                "| {what} | {:.0} | {:.0} | **{:.2}** ({:.2}–{:.2}) |",
                self.median(subject).as_secs_f64() * 1e3,
                self.median(baseline).as_secs_f64() * 1e3,
                r.median,
                r.min,
                r.max
            )
        }

        /// A machine-readable `STRATA-BENCH` line (as `cargo xtask bench` reads them) for
        /// the time ratio `subject / baseline`: medians in ms, the median ratio, its range
        /// and the rounds, then `extra` (more `key=value` pairs, may be empty).
        pub fn bench_line(
            &self,
            figure: &str,
            subject: &str,
            baseline: &str,
            extra: &str,
        ) -> String {
            let r = self.ratio(subject, baseline);
            let line = format!(
                "STRATA-BENCH figure={figure} value={} baseline={} ratio={} unit=ms ratio_min={} ratio_max={} rounds={}",
                self.median(subject).as_secs_f64() * 1e3,
                self.median(baseline).as_secs_f64() * 1e3,
                r.median,
                r.min,
                r.max,
                self.rounds()
            );
            if extra.is_empty() {
                line
            } else {
                format!("{line} {extra}")
            }
        }
    }

    /// The header of the table [`Rounds::markdown_row`] prints rows of.
    pub const MARKDOWN_HEADER: &str = "| benchmark | Strata (ms, median) | raw (ms, median) | ratio Strata / raw: median of rounds (min–max) |\n| --- | ---: | ---: | ---: |";

    /// One figure read from a group's rounds: the time ratio `subject / baseline`.
    #[derive(Clone, Copy, Debug)]
    pub struct Comparison {
        /// The `STRATA-BENCH` figure id.
        pub figure: &'static str,
        /// What is compared, for the table.
        pub what: &'static str,
        /// The Strata side's name.
        pub subject: &'static str,
        /// The raw side's name.
        pub baseline: &'static str,
        /// More `key=value` pairs for the `STRATA-BENCH` line (a target, say), or empty.
        pub extra: &'static str,
    }

    /// The figures of a benchmark run, printed at its end.
    #[derive(Debug, Default)]
    pub struct Report {
        rows: Vec<String>,
        lines: Vec<String>,
    }

    impl Report {
        /// Runs the sides of group `group` interleaved ([`rounds_from_env`], default 15)
        /// and records `comparisons`, each with the group's load average before and after
        /// and its wall time. Progress goes to stderr.
        pub fn measure(&mut self, group: &str, sides: &mut [Side<'_>], comparisons: &[Comparison]) {
            let rounds = rounds_from_env(15);
            eprintln!(
                "{group}: {rounds} interleaved rounds of {} sides",
                sides.len()
            );
            let (load_before, wall) = (load_average(), std::time::Instant::now());
            let measured = run(rounds, sides);
            let context = format!(
                "group={group} load_before={load_before} load_after={} wall_s={:.0}",
                load_average(),
                wall.elapsed().as_secs_f64()
            );
            eprintln!("{group}: done, {context}");
            for name in sides.iter().map(|(name, _)| *name) {
                eprintln!(
                    "{group}/{name}: median {:.1} ms over {rounds} rounds",
                    measured.median(name).as_secs_f64() * 1e3
                );
            }
            let names: Vec<&str> = sides.iter().map(|(name, _)| *name).collect();
            for c in comparisons {
                if !names.contains(&c.subject) || !names.contains(&c.baseline) {
                    // One side was filtered out: nothing to compare.
                    continue;
                }
                self.rows
                    .push(measured.markdown_row(c.what, c.subject, c.baseline));
                let extra = format!("{context} {}", c.extra);
                self.lines.push(measured.bench_line(
                    c.figure,
                    c.subject,
                    c.baseline,
                    extra.trim_end(),
                ));
            }
        }

        /// Prints `title`, the table and the `STRATA-BENCH` lines to stdout.
        pub fn print(&self, title: &str) {
            println!("\n== {title} ==\n{MARKDOWN_HEADER}");
            for row in &self.rows {
                println!("{row}");
            }
            println!();
            for line in &self.lines {
                println!("{line}");
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::cell::RefCell;

        #[test]
        fn sides_alternate_and_ratios_are_per_round() {
            let log = RefCell::new(Vec::new());
            // The subject takes 10 ms plus 10 ms more in round 2 (a burst of load that hits
            // the baseline too); the baseline 8 ms plus the same burst.
            let (mut s_round, mut b_round) = (0u64, 0u64);
            let mut subject = || {
                log.borrow_mut().push("s");
                s_round += 1;
                Duration::from_millis(10 + if s_round == 3 { 10 } else { 0 })
            };
            let mut baseline = || {
                log.borrow_mut().push("b");
                b_round += 1;
                Duration::from_millis(8 + if b_round == 3 { 10 } else { 0 })
            };
            let rounds = run(4, &mut [("s", &mut subject), ("b", &mut baseline)]);
            assert_eq!(*log.borrow(), ["s", "b", "b", "s", "s", "b", "b", "s"]);
            assert_eq!(rounds.rounds(), 4);
            assert_eq!(rounds.times("s")[2], Duration::from_millis(20));
            assert_eq!(rounds.median("s"), Duration::from_millis(10));
            assert_eq!(rounds.median("b"), Duration::from_millis(8));
            let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
            let r = rounds.ratio("s", "b");
            assert!(close(r.median, 1.25) && close(r.max, 1.25), "{r:?}");
            assert!(close(r.min, 20.0 / 18.0), "{r:?}");
            let back = rounds.ratio("b", "s").recip();
            assert!(
                close(back.median, r.median) && close(back.min, r.min) && close(back.max, r.max)
            );
            assert_eq!(
                rounds.markdown_row("x", "s", "b"),
                "| x | 10 | 8 | **1.25** (1.11–1.25) |"
            );
            let line = rounds.bench_line("f", "s", "b", "issue=4");
            assert!(line.starts_with("STRATA-BENCH figure=f value="), "{line}");
            assert!(
                line.contains(" unit=ms ") && line.ends_with(" rounds=4 issue=4"),
                "{line}"
            );
        }

        #[test]
        fn three_sides_run_forward_then_backward() {
            let log = RefCell::new(String::new());
            let mut a = || {
                log.borrow_mut().push('a');
                Duration::from_millis(1)
            };
            let mut b = || {
                log.borrow_mut().push('b');
                Duration::from_millis(2)
            };
            let mut c = || {
                log.borrow_mut().push('c');
                Duration::from_millis(4)
            };
            let rounds = run(3, &mut [("a", &mut a), ("b", &mut b), ("c", &mut c)]);
            assert_eq!(*log.borrow(), "abccbaabc");
            assert!((rounds.ratio("c", "a").median - 4.0).abs() < 1e-9);
            assert_eq!(Spread::of(&[3.0, 1.0, 2.0, 10.0]).median, 2.5);
        }

        #[test]
        fn filters_select_groups_and_sides() {
            let all = Filter::default();
            assert!(all.group("bulk_insert") && all.side("bulk_insert", "raw"));
            let group = Filter(Some("insert".into()));
            assert!(group.group("bulk_insert") && !group.group("point_get"));
            assert!(group.side("bulk_insert", "raw"));
            let side = Filter(Some("bulk_insert/traits_insert".into()));
            assert!(side.group("bulk_insert") && !side.group("point_get"));
            assert!(side.side("bulk_insert", "traits_insert_sorted"));
            assert!(!side.side("bulk_insert", "raw_write_batch"));
            assert!(!side.side("point_get", "traits_insert_sorted"));
            let two = Filter(Some("bulk_insert/traits_insert,raw".into()));
            assert!(two.side("bulk_insert", "raw_write_batch"));
            assert!(two.side("bulk_insert", "traits_insert_sorted"));
            assert!(!two.side("bulk_insert", "traits_put"));
        }

        #[test]
        #[should_panic(expected = "no side named")]
        fn an_unknown_side_is_a_mistake() {
            let mut a = || Duration::from_millis(1);
            run(1, &mut [("a", &mut a)]).median("b");
        }
    }
}
