//! Shared helpers of the tiered store's tests: small geometries, synthetic chains, bulk
//! backends that count (or fail) their calls, reference builds.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coldpack::BulkBackend;
use finalised_state::{Network, OpenValidation};
use fixtures::{SynthConfig, synth_chain};
use storage_traits::Versioned;
use storage_traits::conformance::files::tree_bytes;
use storage_traits::model::IndexedBlock;
use tiered::{Geometry, TieredConfig, TieredStore};

pub const SEED: u64 = 0x7e12_ed00;

/// Chunks of `size` heights from height 0, 2 chunks a bucket (so buckets get created).
pub fn config(root: &Path, size: u32) -> TieredConfig {
    let mut c = TieredConfig::new(root);
    c.geometry = Geometry::new(0, size, 2).unwrap();
    c.network = Network::Regtest;
    c.open_validation = OpenValidation::Lazy;
    c.retry_backoff = Duration::from_millis(5);
    c.backend_timeout = Duration::from_millis(300);
    c.backend_poll = Duration::from_millis(20);
    c.tick_interval = Duration::from_millis(50);
    c
}

pub fn chain(blocks: u32) -> Vec<IndexedBlock> {
    synth_chain(&SynthConfig::new(blocks, SEED)).collect()
}

pub fn ingest(store: &TieredStore, chain: &[IndexedBlock], heights: RangeInclusive<u32>) {
    for h in heights {
        store.ingest(chain[h as usize].clone()).unwrap();
    }
}

/// Writes the chain as a fixture directory (the local bulk backend's format).
pub fn write_lake(dir: &Path, blocks: u32) {
    let cfg = SynthConfig::new(blocks, SEED);
    let mut opts = fixtures::synth_writer_options(&cfg);
    opts.overwrite = true;
    fixtures::write_synth_fixture_with(&cfg, dir, None, opts, &mut |_| {}).unwrap();
}

/// Every pack under `root` (relative path → bytes).
pub fn packs(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    [tiered::PAYLOAD_KIND, tiered::TXID_INDEX_KIND]
        .into_iter()
        .flat_map(|kind| {
            tree_bytes(&root.join(kind))
                .into_iter()
                .map(move |(p, bytes)| (Path::new(kind).join(p), bytes))
        })
        .collect()
}

/// A reference root: the whole chain ingested and frozen without interruption.
pub fn reference_packs(size: u32, chain: &[IndexedBlock]) -> BTreeMap<PathBuf, Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let store = TieredStore::open(config(dir.path(), size), None).unwrap();
    ingest(&store, chain, 0..=chain.len() as u32 - 1);
    store.tick().unwrap();
    packs(dir.path())
}

/// A bulk backend that counts its calls; it serves `inner` (when given) and fails every
/// visit after its first height when `fail` is set, like a lake that drops the connection.
pub struct CountingBackend {
    pub inner: Option<coldpack::LocalDirBackend>,
    pub fail: bool,
    pub tips: AtomicUsize,
    pub visits: AtomicUsize,
}

impl CountingBackend {
    pub fn new(inner: Option<coldpack::LocalDirBackend>, fail: bool) -> Arc<Self> {
        Arc::new(CountingBackend {
            inner,
            fail,
            tips: AtomicUsize::new(0),
            visits: AtomicUsize::new(0),
        })
    }

    pub fn calls(&self) -> usize {
        self.tips.load(Ordering::SeqCst) + self.visits.load(Ordering::SeqCst)
    }
}

impl BulkBackend for CountingBackend {
    fn name(&self) -> String {
        "counting".into()
    }

    fn tip(&self) -> coldpack::Result<Option<u32>> {
        self.tips.fetch_add(1, Ordering::SeqCst);
        match &self.inner {
            Some(b) => b.tip(),
            None => Ok(Some(u32::MAX - 1)),
        }
    }

    fn visit(
        &self,
        heights: RangeInclusive<u32>,
        f: &mut dyn FnMut(u32, &[u8]) -> coldpack::Result<()>,
    ) -> coldpack::Result<()> {
        self.visits.fetch_add(1, Ordering::SeqCst);
        let start = *heights.start();
        match &self.inner {
            Some(b) => b.visit(heights, &mut |h, p| {
                if self.fail && h > start {
                    return Err(coldpack::Error::NoSource {
                        chunk: 0,
                        reason: format!("simulated connection loss at height {h}"),
                    });
                }
                f(h, p)
            }),
            None => Err(coldpack::Error::NoSource {
                chunk: 0,
                reason: "this backend holds nothing".into(),
            }),
        }
    }
}

pub fn bytes(b: &IndexedBlock) -> Vec<u8> {
    b.to_bytes()
}
