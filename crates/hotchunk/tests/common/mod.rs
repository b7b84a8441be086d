#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use hotchunk::{
    Catalog, ChunkId, Codec, Geometry, HotOptions, HotTier, Layout, RedbStore, RocksStore,
};
use storage_traits::kv::KvStore;

/// A small geometry so tests cross chunk boundaries quickly: first height 2 (Stellar-like),
/// 40 heights a chunk, 10 chunks a bucket.
pub fn geometry() -> Geometry {
    Geometry::new(2, 40, 10).unwrap()
}

/// A backend the catalog can open on.
pub trait CatalogBackend: KvStore + Sized + 'static {
    fn open_catalog(root: &Path) -> hotchunk::Result<Catalog<Self>>;
}

impl CatalogBackend for RocksStore {
    fn open_catalog(root: &Path) -> hotchunk::Result<Catalog<Self>> {
        Catalog::open_rocksdb(Layout::new(root, geometry()))
    }
}

impl CatalogBackend for RedbStore {
    fn open_catalog(root: &Path) -> hotchunk::Result<Catalog<Self>> {
        Catalog::open_redb(Layout::new(root, geometry()))
    }
}

pub fn tier<S: CatalogBackend>(root: &Path) -> HotTier<S> {
    HotTier::new(
        Arc::new(S::open_catalog(root).unwrap()),
        HotOptions::default(),
    )
}

pub fn tier_with<S: CatalogBackend>(root: &Path, codec: Codec) -> HotTier<S> {
    HotTier::new(
        Arc::new(S::open_catalog(root).unwrap()),
        HotOptions {
            codec,
            ..HotOptions::default()
        },
    )
}

/// The deterministic payload of a height: 1 to 5,000 bytes, compressible.
pub fn payload(h: u32) -> Vec<u8> {
    let len = (h as usize * 7919) % 5000 + 1;
    (0..len)
        .map(|i| (h as usize).wrapping_mul(31).wrapping_add(i / 7) as u8)
        .collect()
}

/// Ingests every height of `chunk` from the store's next height to `upto` (inclusive).
pub fn ingest(store: &mut hotchunk::HotStore, upto: u32) {
    while let Some(h) = store.next_height() {
        if h > upto {
            break;
        }
        store.put_height(h, &payload(h)).unwrap();
    }
}

/// The invariant between the catalog and `hot/`: a directory only under a key ("key
/// absent ⟹ directory gone"). Returns the chunks with a directory.
pub fn hot_dirs(root: &Path) -> Vec<ChunkId> {
    let Ok(rd) = std::fs::read_dir(root.join("hot")) else {
        return Vec::new();
    };
    let mut out: Vec<ChunkId> = rd
        .map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            ChunkId(name.parse().unwrap())
        })
        .collect();
    out.sort();
    out
}
