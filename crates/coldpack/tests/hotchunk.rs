//! Freezing with the real `hotchunk` collaborators: its catalog (redb here; RocksDB is the
//! same trait), its per-chunk hot RocksDB and the read-only view, through `coldpack::hot`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use coldpack::cas::MAIN;
use coldpack::derived::TxidPrefixExtractor;
use coldpack::traits::{ChunkLayout, ColdCatalog, ColdState};
use coldpack::{Cas, Codec, Error, FreezeConfig, Freezer, LocalDirBackend, SourceKind};
use common::write_fixture;
use fixtures::{SynthConfig, synth_chain};
use hotchunk::{Catalog, ChunkId, Geometry, HotOptions, HotTier, Layout};
use storage_traits::Versioned;

const SIZE: u32 = 40;

fn config() -> FreezeConfig {
    let codec = Codec::Zstd { level: 3 };
    let mut c = FreezeConfig::new("blocks", codec).with_key_index(
        "txids",
        Arc::new(TxidPrefixExtractor),
        codec,
    );
    c.backend_timeout = Duration::from_millis(200);
    c.backend_poll = Duration::from_millis(20);
    c
}

fn fill_hot(tier: &HotTier<hotchunk::RedbStore>, cfg: &SynthConfig, chunk: u32, upto: u32) {
    let mut store = tier.open_hot_db_for_chunk(ChunkId(chunk)).unwrap();
    for b in synth_chain(cfg) {
        let h = b.header.height().unwrap().0;
        if h >= chunk * SIZE && h <= upto {
            store.put_height(h, &b.to_bytes()).unwrap();
        }
    }
}

#[test]
fn hot_source_loss_staleness_and_determinism_with_hotchunk() {
    let cfg = SynthConfig::new(5 * SIZE, 0xbeef);
    let lakedir = tempfile::tempdir().unwrap();
    let lake = lakedir.path().join("lake");
    write_fixture(&lake, &cfg, 5 * SIZE);

    // Reference: chunk 1 frozen from the bulk backend in its own root.
    let ref_root = tempfile::tempdir().unwrap();
    let ref_bytes = {
        let layout = Layout::new(ref_root.path(), Geometry::new(0, SIZE, 1000).unwrap());
        let catalog = Catalog::open_redb(layout.clone()).unwrap();
        let cas = Cas::open(ref_root.path().join("cas")).unwrap();
        let backend = LocalDirBackend::new(&lake);
        let f = Freezer::new(&catalog, &layout, &cas, config()).with_backend(&backend);
        let rep = f.process_chunk(1, &["blocks", "txids"], 1).unwrap();
        assert_eq!(rep.source, Some(SourceKind::Bulk));
        ["blocks", "txids"]
            .map(|k| std::fs::read(ChunkLayout::pack_path(&layout, k, 1).unwrap()).unwrap())
    };

    let root = tempfile::tempdir().unwrap();
    let layout = Layout::new(root.path(), Geometry::new(0, SIZE, 1000).unwrap());
    let catalog = Arc::new(Catalog::open_redb(layout.clone()).unwrap());
    let tier = HotTier::new(catalog.clone(), HotOptions::default());
    let cas = Cas::open(root.path().join("cas")).unwrap();
    let backend = LocalDirBackend::new(&lake);
    let f = Freezer::new(&*catalog, &layout, &cas, config())
        .with_hot(&tier)
        .with_backend(&backend);

    // A complete ready hot store is the source; its packs equal the bulk-fed ones.
    fill_hot(&tier, &cfg, 1, 2 * SIZE - 1);
    let rep = f.process_chunk(1, &["blocks", "txids"], 2).unwrap();
    assert_eq!(rep.source, Some(SourceKind::Hot));
    for (i, k) in ["blocks", "txids"].iter().enumerate() {
        assert_eq!(
            std::fs::read(ChunkLayout::pack_path(&layout, k, 1).unwrap()).unwrap(),
            ref_bytes[i],
            "{k}"
        );
        assert_eq!(
            ColdCatalog::cold_state(&*catalog, 1, k).unwrap(),
            Some(ColdState::Frozen)
        );
    }
    // The freeze's read handle is closed: the hot store can be discarded.
    tier.discard_hot_db_for_chunk(ChunkId(1)).unwrap();
    assert!(
        f.process_chunk(1, &["blocks", "txids"], 3)
            .unwrap()
            .built
            .is_empty()
    );

    // A short watermark is staleness: the backend feeds the chunk.
    fill_hot(&tier, &cfg, 2, 2 * SIZE + 5);
    let rep = f.process_chunk(2, &["blocks"], 4).unwrap();
    assert_eq!(rep.source, Some(SourceKind::Bulk));

    // A ready hot store whose directory is gone is loss: fatal, nothing marked.
    fill_hot(&tier, &cfg, 3, 4 * SIZE - 1);
    std::fs::remove_dir_all(layout.hot_chunk_dir(ChunkId(3))).unwrap();
    let err = f.process_chunk(3, &["blocks", "txids"], 5).unwrap_err();
    assert!(matches!(err, Error::HotStoreLost { chunk: 3, .. }), "{err}");
    assert_eq!(
        ColdCatalog::cold_state(&*catalog, 3, "blocks").unwrap(),
        None
    );

    // Widening: a derived kind re-derived from the frozen local pack, no hot store.
    catalog
        .put_cold(
            ChunkId(2),
            &hotchunk::Kind::named("txids").unwrap(),
            hotchunk::ColdState::Freezing,
        )
        .unwrap();
    let rep = f.process_chunk(2, &["blocks", "txids"], 6).unwrap();
    assert_eq!(rep.source, Some(SourceKind::Pack));

    assert!(f.reconcile(7).unwrap().abandoned_freezes.is_empty());
    assert!(f.disagreements().unwrap().is_empty());
    assert_eq!(cas.verify(MAIN).unwrap(), 4);
}
