//! The write transaction's overlay (point writes, sorted runs, range deletes) against a
//! plain in-memory model: thousands of random operations, every read compared inside the
//! transaction, after commit, after a dropped transaction, and after reopening.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Bound, ControlFlow};

use storage_traits::kv::{
    Direction, Durability, KeyRange, KvPair, KvRead, KvStore, KvWrite, TableSpec,
};

const P: &str = "model_plain_1_0_0";
const D: &str = "model_dup_1_0_0";
const L: usize = 2;

/// xorshift64*: deterministic, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Bytes from a small alphabet, so keys collide and hit the edges (0x00, 0xFF).
    fn bytes(&mut self, min: usize, max: usize) -> Vec<u8> {
        let len = min + self.below((max - min + 1) as u64) as usize;
        (0..len)
            .map(|_| [0x00, 0x01, 0x7F, 0xFF][self.below(4) as usize])
            .collect()
    }
    fn bound(&mut self) -> Bound<Vec<u8>> {
        match self.below(3) {
            0 => Bound::Unbounded,
            1 => Bound::Included(self.bytes(0, 3)),
            _ => Bound::Excluded(self.bytes(0, 3)),
        }
    }
}

#[derive(Clone, Default, PartialEq, Debug)]
struct Model {
    plain: BTreeMap<Vec<u8>, Vec<u8>>,
    dup: BTreeSet<(Vec<u8>, Vec<u8>)>,
}

impl Model {
    fn range(&self, table: &str, range: &KeyRange, dir: Direction) -> Vec<KvPair> {
        let mut rows: Vec<KvPair> = if table == P {
            self.plain
                .iter()
                .filter(|(k, _)| range.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        } else {
            self.dup
                .iter()
                .filter(|(k, _)| range.contains(k))
                .cloned()
                .collect()
        };
        if dir == Direction::Reverse {
            rows.reverse();
        }
        rows
    }
}

fn check(r: &impl KvRead, m: &Model, rng: &mut Rng, context: &str) {
    for table in [P, D] {
        let range = KeyRange {
            start: rng.bound(),
            end: rng.bound(),
        };
        for dir in [Direction::Forward, Direction::Reverse] {
            let got: Vec<KvPair> = r
                .range(table, range.clone(), dir)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(
                got,
                m.range(table, &range, dir),
                "{context}: {table} {range:?} {dir:?}"
            );
            // The borrowed scan lends the same rows, and stops when told to.
            let stop_after = rng.below(4) as usize;
            let mut lent: Vec<KvPair> = Vec::new();
            r.visit_range(table, range.clone(), dir, &mut |k, v| {
                lent.push((k.to_vec(), v.to_vec()));
                Ok(if stop_after > 0 && lent.len() == stop_after {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            })
            .unwrap();
            let want_lent = if stop_after > 0 {
                &got[..got.len().min(stop_after)]
            } else {
                &got[..]
            };
            assert_eq!(
                lent, want_lent,
                "{context}: visit {table} {range:?} {dir:?}"
            );
        }
        let all = m.range(table, &KeyRange::all(), Direction::Forward);
        assert_eq!(
            r.len(table).unwrap(),
            all.len() as u64,
            "{context}: len {table}"
        );
        assert_eq!(
            r.first(table).unwrap(),
            all.first().cloned(),
            "{context}: first {table}"
        );
        assert_eq!(
            r.last(table).unwrap(),
            all.last().cloned(),
            "{context}: last {table}"
        );
    }
    let k = rng.bytes(0, 3);
    assert_eq!(
        r.get(P, &k).unwrap(),
        m.plain.get(&k).cloned(),
        "{context}: get {k:?}"
    );
    let k = rng.bytes(L, L);
    let values: Vec<Vec<u8>> = m
        .dup
        .iter()
        .filter(|(dk, _)| *dk == k)
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(
        r.get_dup(D, &k).unwrap(),
        values,
        "{context}: get_dup {k:?}"
    );
    assert_eq!(
        r.get(D, &k).unwrap(),
        values.first().cloned(),
        "{context}: dup get {k:?}"
    );
    let prefix = rng.bytes(0, 2);
    let got: Vec<KvPair> = r
        .prefix(P, &prefix, Direction::Forward)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        got,
        m.range(P, &KeyRange::prefix(&prefix), Direction::Forward),
        "{context}: prefix {prefix:?}"
    );
}

fn random_op(w: &mut impl KvWrite, m: &mut Model, rng: &mut Rng) -> String {
    match rng.below(100) {
        0..=24 => {
            let (k, v) = (rng.bytes(0, 3), rng.bytes(0, 3));
            w.put(P, &k, &v).unwrap();
            m.plain.insert(k.clone(), v);
            format!("put {k:?}")
        }
        25..=34 => {
            let k = rng.bytes(0, 3);
            w.delete(P, &k).unwrap();
            m.plain.remove(&k);
            format!("delete {k:?}")
        }
        35..=42 => {
            let mut keys: Vec<Vec<u8>> = (0..rng.below(12)).map(|_| rng.bytes(0, 4)).collect();
            keys.sort();
            keys.dedup();
            let rows: Vec<KvPair> = keys.into_iter().map(|k| (k, rng.bytes(1, 3))).collect();
            let n = w
                .insert_sorted(
                    P,
                    &mut rows.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
                )
                .unwrap();
            assert_eq!(n, rows.len() as u64);
            m.plain.extend(rows);
            "insert_sorted plain".to_owned()
        }
        43..=64 => {
            let (k, v) = (rng.bytes(L, L), rng.bytes(0, 2));
            w.put(D, &k, &v).unwrap();
            m.dup.insert((k.clone(), v.clone()));
            format!("dup put {k:?} {v:?}")
        }
        65..=72 => {
            let (k, v) = (rng.bytes(L, L), rng.bytes(0, 2));
            w.delete_dup(D, &k, &v).unwrap();
            m.dup.remove(&(k.clone(), v.clone()));
            format!("delete_dup {k:?} {v:?}")
        }
        73..=80 => {
            let k = rng.bytes(L, L);
            w.delete(D, &k).unwrap();
            m.dup.retain(|(dk, _)| *dk != k);
            format!("dup delete {k:?}")
        }
        81..=88 => {
            let mut keys: Vec<Vec<u8>> = (0..rng.below(10)).map(|_| rng.bytes(L, L)).collect();
            keys.sort();
            keys.dedup();
            let rows: Vec<KvPair> = keys.into_iter().map(|k| (k, rng.bytes(0, 2))).collect();
            w.insert_sorted(
                D,
                &mut rows.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
            )
            .unwrap();
            m.dup.extend(rows);
            "insert_sorted dup".to_owned()
        }
        89..=91 => {
            w.clear(P).unwrap();
            m.plain.clear();
            "clear plain".to_owned()
        }
        92..=94 => {
            w.clear(D).unwrap();
            m.dup.clear();
            "clear dup".to_owned()
        }
        _ => {
            let (k, v) = (rng.bytes(0, 3), rng.bytes(0, 3));
            let expected = match m.plain.get(&k) {
                None => Some(storage_traits::PutOutcome::Inserted),
                Some(old) if *old == v => Some(storage_traits::PutOutcome::AlreadyPresent),
                Some(_) => None,
            };
            match (w.put_if_absent_or_identical(P, &k, &v), expected) {
                (Ok(got), Some(want)) => assert_eq!(got, want),
                (Err(storage_traits::Error::Conflict { .. }), None) => {}
                (got, want) => panic!("put_if_absent {k:?}: got {got:?}, want {want:?}"),
            }
            m.plain.entry(k.clone()).or_insert(v);
            format!("put_if_absent {k:?}")
        }
    }
}

#[test]
fn overlay_matches_a_model() {
    for seed in 1..=4u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let dir = tempfile::tempdir().unwrap();
        let tables = [TableSpec::plain(P), TableSpec::dup_sort(D, L)];
        let mut store = store_lmdb_compat::open(dir.path(), &tables).unwrap();
        let mut committed = Model::default();
        for txn in 0..60 {
            let mut w = store.begin_write().unwrap();
            let mut m = committed.clone();
            let ops = 1 + rng.below(40);
            for op in 0..ops {
                let what = random_op(&mut w, &mut m, &mut rng);
                check(
                    &w,
                    &m,
                    &mut rng,
                    &format!("seed {seed} txn {txn} op {op} after {what}"),
                );
            }
            match rng.below(4) {
                0 => drop(w),
                1 => {
                    w.commit(Durability::Buffered).unwrap();
                    committed = m;
                }
                _ => {
                    w.commit(Durability::Synced).unwrap();
                    committed = m;
                }
            }
            let r = store.begin_read().unwrap();
            check(
                &r,
                &committed,
                &mut rng,
                &format!("seed {seed} after txn {txn}"),
            );
            drop(r);
            if txn % 20 == 19 {
                store.sync().unwrap();
                drop(store);
                store = store_lmdb_compat::open(dir.path(), &tables).unwrap();
                let r = store.begin_read().unwrap();
                check(
                    &r,
                    &committed,
                    &mut rng,
                    &format!("seed {seed} reopened after {txn}"),
                );
            }
        }
    }
}
