//! The store's shape on disk, checked with RocksDB's own view of the directory: column
//! families named as the tables, and the options RocksDB persisted (its `OPTIONS-*` file).

use std::collections::HashMap;
use std::path::Path;

use storage_traits::kv::{Durability, KvRead, KvStore, KvWrite, TableSpec};
use store_lmdb_compat::{Compression, RocksOptions, RocksStore};

const PLAIN: &str = "txid_location_1_0_0";
const DUP: &str = "address_history_1_0_0";

fn tables() -> Vec<TableSpec> {
    vec![TableSpec::plain(PLAIN), TableSpec::dup_sort(DUP, 21)]
}

/// Section name → (key → value) of the newest `OPTIONS-<n>` file.
fn persisted_options(dir: &Path) -> HashMap<String, HashMap<String, String>> {
    let newest = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let n = name.strip_prefix("OPTIONS-")?.parse::<u64>().ok()?;
            Some((n, name))
        })
        .max()
        .expect("RocksDB writes an OPTIONS file")
        .1;
    let text = std::fs::read_to_string(dir.join(newest)).unwrap();
    let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current = String::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') && line.ends_with(']') {
            current = line[1..line.len() - 1].to_owned();
        } else if let Some((k, v)) = line.split_once('=') {
            sections
                .entry(current.clone())
                .or_default()
                .insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    sections
}

#[test]
fn column_families_are_named_as_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_lmdb_compat::open(dir.path(), &tables()).unwrap());
    let mut cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir.path()).unwrap();
    cfs.sort();
    assert_eq!(
        cfs,
        vec![DUP.to_owned(), "default".to_owned(), PLAIN.to_owned()]
    );

    // Reopening with one more table adds exactly its column family; reopening with fewer
    // keeps the others.
    let more = [tables(), vec![TableSpec::plain("spent_1_0_0")]].concat();
    drop(store_lmdb_compat::open(dir.path(), &more).unwrap());
    drop(store_lmdb_compat::open(dir.path(), &tables()[..1]).unwrap());
    let mut cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir.path()).unwrap();
    cfs.sort();
    assert_eq!(
        cfs,
        vec![
            DUP.to_owned(),
            "default".to_owned(),
            "spent_1_0_0".to_owned(),
            PLAIN.to_owned()
        ]
    );
}

/// A duplicate-sorted pair is one column-family key `key ‖ value` with an empty value, as
/// the raw API sees it.
#[test]
fn dup_pairs_are_composite_keys_in_their_column_family() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = store_lmdb_compat::open(dir.path(), &tables()).unwrap();
        let mut w = store.begin_write().unwrap();
        let key = [7u8; 21];
        w.put(DUP, &key, b"b").unwrap();
        w.put(DUP, &key, b"a").unwrap();
        w.put(DUP, &key, b"b").unwrap();
        w.put(PLAIN, b"txid", b"loc").unwrap();
        w.commit(Durability::Synced).unwrap();
    }
    let db = rocksdb::DB::open_cf_for_read_only(
        &rocksdb::Options::default(),
        dir.path(),
        [DUP, PLAIN],
        false,
    )
    .unwrap();
    type RawRow = (Box<[u8]>, Box<[u8]>);
    let rows: Vec<RawRow> = db
        .iterator_cf(db.cf_handle(DUP).unwrap(), rocksdb::IteratorMode::Start)
        .collect::<Result<_, _>>()
        .unwrap();
    let composite = |v: &[u8]| [&[7u8; 21][..], v].concat().into_boxed_slice();
    assert_eq!(
        rows,
        vec![
            (composite(b"a"), Box::default()),
            (composite(b"b"), Box::default())
        ]
    );
    assert_eq!(
        db.get_cf(db.cf_handle(PLAIN).unwrap(), b"txid").unwrap(),
        Some(b"loc".to_vec())
    );
}

#[test]
fn max_open_files_defaults_to_512_and_is_honoured() {
    assert_eq!(RocksOptions::default().max_open_files, 512);
    let dir = tempfile::tempdir().unwrap();
    drop(store_lmdb_compat::open(dir.path(), &tables()).unwrap());
    assert_eq!(
        persisted_options(dir.path())["DBOptions"]["max_open_files"],
        "512"
    );

    let dir = tempfile::tempdir().unwrap();
    let opts = RocksOptions {
        max_open_files: 64,
        ..RocksOptions::default()
    };
    drop(RocksStore::open(dir.path(), &tables(), opts).unwrap());
    assert_eq!(
        persisted_options(dir.path())["DBOptions"]["max_open_files"],
        "64"
    );
}

fn sst_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sst"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// Each codec is what RocksDB records for every column family, and it shrinks (or, for
/// `None`, does not shrink) compressible rows once they reach an SST file.
#[test]
fn compression_option_is_honoured() {
    let rows = 4_000u32;
    let value: Vec<u8> = b"strata compressible value "
        .iter()
        .copied()
        .cycle()
        .take(1_000)
        .collect();
    let mut sizes = HashMap::new();
    for (compression, name) in [
        (Compression::None, "kNoCompression"),
        (Compression::Lz4, "kLZ4Compression"),
        (Compression::Zstd, "kZSTD"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let opts = RocksOptions {
            compression,
            ..RocksOptions::default()
        };
        {
            let store = RocksStore::open(dir.path(), &tables(), opts).unwrap();
            assert_eq!(store.options().compression, compression);
            let mut w = store.begin_write().unwrap();
            for i in 0..rows {
                w.put(PLAIN, &i.to_be_bytes(), &value).unwrap();
            }
            w.commit(Durability::Synced).unwrap();
        }
        let persisted = persisted_options(dir.path());
        for cf in ["default", PLAIN, DUP] {
            let section = &persisted[&format!("CFOptions \"{cf}\"")];
            assert_eq!(section["compression"], name, "{cf}");
            assert_eq!(section["bottommost_compression"], name, "{cf}");
        }
        // Reopening replays the WAL and flushes it into an SST file in the codec.
        let store = RocksStore::open(dir.path(), &tables(), opts).unwrap();
        assert_eq!(store.begin_read().unwrap().len(PLAIN).unwrap(), rows as u64);
        drop(store);
        sizes.insert(compression, sst_bytes(dir.path()));
    }
    let raw = u64::from(rows) * 1_000;
    assert!(sizes[&Compression::None] > raw, "{sizes:?}");
    assert!(sizes[&Compression::Lz4] * 5 < raw, "{sizes:?}");
    assert!(sizes[&Compression::Zstd] * 5 < raw, "{sizes:?}");
}

/// Every table's SST files get partitioned indexes and filters, charged to the block cache
/// with their top level pinned: a lookup loads one small filter partition, not a file's
/// whole filter (README, Options).
#[test]
fn filters_and_indexes_are_partitioned() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_lmdb_compat::open(dir.path(), &tables()).unwrap());
    let persisted = persisted_options(dir.path());
    for cf in ["default", PLAIN, DUP] {
        let section = &persisted[&format!("TableOptions/BlockBasedTable \"{cf}\"")];
        for (key, value) in [
            ("index_type", "kTwoLevelIndexSearch"),
            ("partition_filters", "true"),
            ("pin_top_level_index_and_filter", "true"),
            ("cache_index_and_filter_blocks", "true"),
            ("pin_l0_filter_and_index_blocks_in_cache", "true"),
        ] {
            assert_eq!(section[key], value, "{cf}: {key}");
        }
        assert!(
            section["filter_policy"].contains("bloomfilter"),
            "{cf}: {}",
            section["filter_policy"]
        );
    }
}

/// A store whose SST files were written with whole filters and a one-level index (every
/// store created before the partitioning) opens and reads as before: RocksDB reads each
/// file by the layout recorded in it.
#[test]
fn files_with_whole_filters_still_read() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_bloom_filter(10.0, false);
        opts.set_block_based_table_factory(&table);
        let db = rocksdb::DB::open_cf(&opts, dir.path(), [PLAIN, DUP]).unwrap();
        let cf = db.cf_handle(PLAIN).unwrap();
        for i in 0..1_000u32 {
            db.put_cf(cf, i.to_be_bytes(), i.to_le_bytes()).unwrap();
        }
        db.flush_cf(cf).unwrap();
    }
    let store = store_lmdb_compat::open(dir.path(), &tables()).unwrap();
    let r = store.begin_read().unwrap();
    assert_eq!(r.len(PLAIN).unwrap(), 1_000);
    for i in [0u32, 499, 999] {
        assert_eq!(
            r.get(PLAIN, &i.to_be_bytes()).unwrap(),
            Some(i.to_le_bytes().to_vec())
        );
    }
    assert_eq!(r.get(PLAIN, &1_000u32.to_be_bytes()).unwrap(), None);
}
