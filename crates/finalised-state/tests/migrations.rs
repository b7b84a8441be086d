//! Every migration step through `FinalisedState::open`, from real older-version stores built
//! by the fixture writers, compared table by table with a store built by a clean sync at
//! 1.2.0.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use common::*;
use finalised_state::migrate::MigrateOptions;
use finalised_state::{Backend, FinalisedState};
use migrations::fixture::{V1Fixture, write_v0_store, write_v1_store};
use migrations::v0::{V0_TABLES, V0Reader};
use migrations::{MigrationProgress, ProgressEvent, Stage, VecSource};
use storage_traits::capability::{DbRead, PoolTypeFilter};
use storage_traits::kv::{Direction, KeyRange, KvRead, KvStore, KvWrite};
use storage_traits::model::*;
use storage_traits::table::*;
use storage_traits::{Durability, TableWrite};

const BLOCKS: u32 = 150;
const SEED: u64 = 42;

fn clean<B: Backend>(base: &Path, blocks: &[IndexedBlock]) -> FinalisedState<B> {
    let s = open::<B>(base);
    s.write_blocks(blocks.iter().cloned(), |_| {}).unwrap();
    s
}

/// The raw v1 store inside `<base>/regtest/v1/`, as an older indexer left it.
fn raw_v1<B: Backend>(base: &Path) -> B {
    B::open_in(&config(base).store_dir().join(B::NAME), V1_TABLES).unwrap()
}

fn v0_dir(base: &Path) -> std::path::PathBuf {
    base.join("local")
}

fn dump_raw<S: KvStore>(
    store: &S,
    tables: &[storage_traits::TableSpec],
) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
    let r = store.begin_read().unwrap();
    tables
        .iter()
        .map(|t| {
            r.range(t.name, KeyRange::all(), Direction::Forward)
                .unwrap()
                .collect::<storage_traits::Result<Vec<_>>>()
                .unwrap()
        })
        .collect()
}

fn recorder() -> (Arc<Mutex<Vec<MigrationProgress>>>, MigrateOptions) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let options = MigrateOptions {
        progress: Some(Box::new(move |p: &MigrationProgress| {
            sink.lock().unwrap().push(*p)
        })),
        progress_every_heights: Some(10),
        ..MigrateOptions::default()
    };
    (seen, options)
}

fn v1_1_store_opens_as_a_clean_build<B: Backend>() {
    let blocks = chain(BLOCKS, SEED);
    let dir = tempfile::tempdir().unwrap();
    write_v1_store(
        &raw_v1::<B>(dir.path()),
        blocks.iter().cloned(),
        V1Fixture::V1_1,
    )
    .unwrap();
    let (seen, options) = recorder();
    let mut c = config(dir.path());
    c.sync_write_batch_bytes = 8 << 10;
    let migrated = FinalisedState::<B>::open_with(c, options).unwrap();
    let clean_dir = tempfile::tempdir().unwrap();
    let clean = clean::<B>(clean_dir.path(), &blocks);
    assert_same_tables(&migrated, &clean);
    assert!(migrated.accumulator_status().unwrap().freshness.is_fresh());
    let seen = seen.lock().unwrap();
    for stage in [Stage::TxidLocation, Stage::Spent, Stage::Accumulator] {
        assert!(
            seen.iter()
                .any(|p| p.stage == stage && p.event == ProgressEvent::Finished)
        );
    }
    // Reopening finds nothing to do.
    drop(migrated);
    let again = FinalisedState::<B>::open(config(dir.path())).unwrap();
    assert_same_tables(&again, &clean);
}

/// The v1.0 fixture writes `BlockHeaderData` v1 rows, as a v1.0 indexer did, and the
/// v1.0 → v1.1 step keeps them (the table may hold v1 and v2 rows). So `headers` is
/// compared by decoded content (hash, parent, chain work, height, header fields), and every
/// other table byte for byte.
fn v1_0_store_opens_as_a_clean_build<B: Backend>() {
    let blocks = chain(BLOCKS, SEED + 1);
    let dir = tempfile::tempdir().unwrap();
    write_v1_store(
        &raw_v1::<B>(dir.path()),
        blocks.iter().cloned(),
        V1Fixture::V1_0,
    )
    .unwrap();
    let migrated = FinalisedState::<B>::open(config(dir.path())).unwrap();
    let clean_dir = tempfile::tempdir().unwrap();
    let clean = clean::<B>(clean_dir.path(), &blocks);
    for ((name, a), (_, b)) in dump(&migrated).into_iter().zip(dump(&clean)) {
        if name != Headers::NAME {
            assert!(a == b, "table {name} differs");
            continue;
        }
        assert_eq!(a.len(), b.len());
        for ((ka, va), (kb, vb)) in a.iter().zip(&b) {
            assert_eq!(ka, kb);
            let ha = decode_row::<Headers>(ka, va).unwrap();
            let hb = decode_row::<Headers>(kb, vb).unwrap();
            assert!(matches!(ha, BlockHeaderData::V1 { .. }));
            assert_eq!(
                (
                    ha.hash(),
                    ha.parent_hash(),
                    ha.chainwork(),
                    ha.height(),
                    ha.data()
                ),
                (
                    hb.hash(),
                    hb.parent_hash(),
                    hb.chainwork(),
                    hb.height(),
                    hb.data()
                )
            );
        }
    }
    assert_eq!(migrated.db_height().unwrap(), Some(Height(BLOCKS - 1)));
}

fn v0_store_is_rebuilt_promoted_and_removed<B: Backend>() {
    let blocks = chain(BLOCKS, SEED + 2);
    let dir = tempfile::tempdir().unwrap();
    let v0_path = v0_dir(dir.path()).join(B::NAME);
    let v0_before = {
        let v0 = B::open_in(&v0_path, V0_TABLES).unwrap();
        write_v0_store(&v0, blocks.iter().cloned()).unwrap();
        dump_raw(&v0, V0_TABLES)
    };

    // Without a block source the v0 store cannot be migrated: a clear error, nothing
    // written to v0, no metadata in v1.
    let err = FinalisedState::<B>::open(config(dir.path()))
        .err()
        .expect("needs a source");
    assert!(err.to_string().contains("block source"), "{err}");
    {
        let v0 = B::open_in(&v0_path, V0_TABLES).unwrap();
        assert_eq!(dump_raw(&v0, V0_TABLES), v0_before);
        // v0 keeps serving while v1 is not promoted.
        let r = v0.begin_read().unwrap();
        let served = V0Reader::new(&r)
            .compact_block(Height(10), PoolTypeFilter::all())
            .unwrap()
            .unwrap();
        assert_eq!(served.hash, blocks[10].header.hash());
    }

    // A source shorter than v0 is refused before promotion.
    let short = MigrateOptions {
        source: Some(Arc::new(VecSource::new(blocks[..100].to_vec()))),
        ..MigrateOptions::default()
    };
    let err = FinalisedState::<B>::open_with(config(dir.path()), short)
        .err()
        .expect("short source refused");
    assert!(
        err.to_string().contains("below the v0 store's tip"),
        "{err}"
    );
    assert!(v0_path.exists());

    let (seen, mut options) = recorder();
    options.source = Some(Arc::new(VecSource::new(blocks.clone())));
    let mut c = config(dir.path());
    c.sync_write_batch_bytes = 16 << 10;
    let migrated = FinalisedState::<B>::open_with(c, options).unwrap();
    assert!(!v0_dir(dir.path()).exists(), "v0 removed after promotion");
    let clean_dir = tempfile::tempdir().unwrap();
    let clean = clean::<B>(clean_dir.path(), &blocks);
    assert_same_tables(&migrated, &clean);
    let seen = seen.lock().unwrap();
    let order: Vec<Stage> = seen
        .iter()
        .filter(|p| p.event == ProgressEvent::Finished)
        .map(|p| p.stage)
        .collect();
    assert_eq!(
        order,
        [
            Stage::ShadowBuild,
            Stage::ShadowValidate,
            Stage::Promote,
            Stage::Metadata,
            Stage::TxidLocation,
            Stage::Spent,
            Stage::Accumulator
        ]
    );
    assert!(
        seen.iter()
            .filter(|p| p.stage == Stage::ShadowBuild && p.event == ProgressEvent::Progress)
            .count()
            > 3
    );
}

fn alpha_store_is_reindexed_in_place<B: Backend>() {
    let blocks = chain(BLOCKS, SEED + 3);
    let dir = tempfile::tempdir().unwrap();
    drop(clean::<B>(dir.path(), &blocks));
    {
        // What 0.4.0-alpha.1 left: version 1.2.0, txid_location empty, spent untrustworthy.
        let raw = raw_v1::<B>(dir.path());
        let mut w = raw.begin_write().unwrap();
        w.clear(TxidLocation::NAME).unwrap();
        w.put_row::<Spent>(
            &Outpoint {
                prev_txid: TxId([3; 32]),
                prev_index: 1,
            },
            TxLocation::default(),
        )
        .unwrap();
        w.commit(Durability::Synced).unwrap();
    }
    let migrated = FinalisedState::<B>::open(config(dir.path())).unwrap();
    let clean_dir = tempfile::tempdir().unwrap();
    let clean = clean::<B>(clean_dir.path(), &blocks);
    assert_same_tables(&migrated, &clean);
}

fn conflicting_index_entry_refuses_to_open<B: Backend>() {
    let blocks = chain(60, SEED + 4);
    let dir = tempfile::tempdir().unwrap();
    {
        let raw = raw_v1::<B>(dir.path());
        write_v1_store(&raw, blocks.iter().cloned(), V1Fixture::V1_1).unwrap();
        let mut w = raw.begin_write().unwrap();
        w.put_row::<TxidLocation>(
            &blocks[20].transactions[0].txid,
            TxLocation {
                block_height: 3,
                tx_index: 0,
            },
        )
        .unwrap();
        w.commit(Durability::Synced).unwrap();
    }
    let err = FinalisedState::<B>::open(config(dir.path()))
        .err()
        .expect("conflict");
    let msg = err.to_string();
    assert!(
        msg.contains("conflicting entry in table txid_location_1_0_0"),
        "{msg}"
    );
    assert!(
        msg.contains(&hex::encode(blocks[20].transactions[0].txid.0)),
        "{msg}"
    );
}

per_backend!(
    v1_1_store_opens_as_a_clean_build,
    v1_0_store_opens_as_a_clean_build,
    v0_store_is_rebuilt_promoted_and_removed,
    alpha_store_is_reindexed_in_place,
    conflicting_index_entry_refuses_to_open,
);
