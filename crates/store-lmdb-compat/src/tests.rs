//! Tests that look inside the store (RocksDB properties of the open database).

use storage_traits::kv::{Durability, KvRead, KvStore, KvWrite, TableSpec};

use super::*;

const T: &str = "inside_1_0_0";
const D: &str = "inside_dup_1_0_0";

fn tables() -> Vec<TableSpec> {
    vec![TableSpec::plain(T), TableSpec::dup_sort(D, 4)]
}

#[test]
fn block_cache_capacity_is_the_configured_size() {
    for bytes in [8usize << 20, 96 << 20] {
        let dir = tempfile::tempdir().unwrap();
        let opts = RocksOptions {
            block_cache_bytes: bytes,
            ..RocksOptions::default()
        };
        let store = RocksStore::open(dir.path(), &tables(), opts).unwrap();
        let t = store.resolve(T).unwrap();
        let capacity = store
            .db()
            .property_int_value_cf(t.cf, "rocksdb.block-cache-capacity")
            .unwrap();
        assert_eq!(capacity, Some(bytes as u64));
    }
}

/// A duplicate key with few values is deleted with point deletes, one with many with a
/// range tombstone; both read back the same, before and after a flush to SST.
#[test]
fn dup_deletes_small_and_large_read_back_alike() {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path(), &tables(), RocksOptions::default()).unwrap();
    let mut w = store.begin_write().unwrap();
    for v in 0..3u32 {
        w.put(D, b"few!", &v.to_be_bytes()).unwrap();
    }
    for v in 0..500u32 {
        w.put(D, b"many", &v.to_be_bytes()).unwrap();
    }
    w.put(D, b"keep", b"k").unwrap();
    w.commit(Durability::Synced).unwrap();

    // RocksDB counts point deletes in the active memtable (range tombstones live apart).
    let point_deletes = |store: &RocksStore| {
        let t = store.resolve(D).unwrap();
        store
            .db()
            .property_int_value_cf(t.cf, "rocksdb.num-deletes-active-mem-table")
            .unwrap()
            .expect("RocksDB reports num-deletes-active-mem-table")
    };
    let before = point_deletes(&store);

    let mut w = store.begin_write().unwrap();
    w.delete(D, b"few!").unwrap();
    w.delete(D, b"many").unwrap();
    w.commit(Durability::Synced).unwrap();
    assert_eq!(
        point_deletes(&store) - before,
        3,
        "three point deletes for the small key, a range tombstone for the large one"
    );
    let check = |store: &RocksStore| {
        let r = store.begin_read().unwrap();
        assert!(r.get_dup(D, b"few!").unwrap().is_empty());
        assert!(r.get_dup(D, b"many").unwrap().is_empty());
        assert_eq!(r.get_dup(D, b"keep").unwrap(), vec![b"k".to_vec()]);
        assert_eq!(r.len(D).unwrap(), 1);
    };
    check(&store);
    let t = store.resolve(D).unwrap();
    store.db().flush_cf(t.cf).unwrap();
    check(&store);
}

#[test]
fn table_kind_is_recorded_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    drop(RocksStore::open(dir.path(), &tables(), RocksOptions::default()).unwrap());
    for wrong in [
        vec![TableSpec::dup_sort(T, 4)],
        vec![TableSpec::plain(D)],
        vec![TableSpec::dup_sort(D, 8)],
    ] {
        let err = RocksStore::open(dir.path(), &wrong, RocksOptions::default()).unwrap_err();
        match &err {
            Error::Backend { source, .. } => assert!(
                matches!(
                    source.downcast_ref::<StoreError>(),
                    Some(StoreError::TableKindMismatch { .. })
                ),
                "{err}"
            ),
            other => panic!("expected a kind mismatch, got {other:?}"),
        }
    }
    // The same kinds, or a subset of the tables, open fine.
    drop(RocksStore::open(dir.path(), &tables()[1..], RocksOptions::default()).unwrap());
    drop(RocksStore::open(dir.path(), &tables(), RocksOptions::default()).unwrap());
}

#[test]
fn bad_table_lists_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        vec![TableSpec::plain("default")],
        vec![TableSpec::plain("")],
        vec![TableSpec::plain("nul\0name")],
        vec![TableSpec::plain(T), TableSpec::dup_sort(T, 4)],
    ] {
        let err = RocksStore::open(dir.path(), &bad, RocksOptions::default()).unwrap_err();
        assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    }
}

#[test]
fn dup_put_with_a_wrong_key_length_is_an_error_and_reads_find_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path(), &tables(), RocksOptions::default()).unwrap();
    let mut w = store.begin_write().unwrap();
    w.put(D, b"abcd", b"v").unwrap();
    let err = w.put(D, b"abc", b"v").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(D) && msg.contains("616263"), "{msg}");
    let err = w
        .insert_sorted(D, &mut [(&b"abcde"[..], &b"v"[..])].into_iter())
        .unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    // A shorter key is not a prefix query.
    assert_eq!(w.get(D, b"abc").unwrap(), None);
    assert!(w.get_dup(D, b"abc").unwrap().is_empty());
    w.delete(D, b"abc").unwrap();
    assert_eq!(w.get(D, b"abcd").unwrap(), Some(b"v".to_vec()));
    w.commit(Durability::Synced).unwrap();
}
