//! Shared helpers for the finalised-state tests: stores on each backend, synthetic chains,
//! and table-by-table comparison.
#![allow(dead_code)]

use std::path::Path;

use finalised_state::{Backend, Config, FinalisedState, Network, OpenValidation};
use storage_traits::kv::KvPair;
use storage_traits::model::IndexedBlock;
use storage_traits::table::V1_TABLES;

/// A small synthetic chain: no spam band, deterministic.
pub fn chain(blocks: u32, seed: u64) -> Vec<IndexedBlock> {
    let mut cfg = fixtures::SynthConfig::new(blocks, seed);
    cfg.spam_band = None;
    fixtures::synth_chain(&cfg).collect()
}

pub fn config(base: &Path) -> Config {
    let mut c = Config::new(base, Network::Regtest);
    c.open_validation = OpenValidation::Full;
    c
}

pub fn open<B: Backend>(base: &Path) -> FinalisedState<B> {
    FinalisedState::<B>::open(config(base)).expect("open store")
}

/// Every row of every v1 table, by table.
pub fn dump<B: Backend>(state: &FinalisedState<B>) -> Vec<(&'static str, Vec<KvPair>)> {
    storage_traits::conformance::dump_tables(state.kv(), V1_TABLES)
}

/// Asserts two stores hold the same rows, table by table, naming the first difference.
pub fn assert_same_tables<B1: Backend, B2: Backend>(
    a: &FinalisedState<B1>,
    b: &FinalisedState<B2>,
) {
    for ((name, ra), (_, rb)) in dump(a).into_iter().zip(dump(b)) {
        if ra != rb {
            let first = ra
                .iter()
                .zip(rb.iter())
                .position(|(x, y)| x != y)
                .unwrap_or(ra.len().min(rb.len()));
            panic!(
                "table {name} differs: {} rows vs {} rows; first difference at row {first}: {:?} vs {:?}",
                ra.len(),
                rb.len(),
                ra.get(first).map(|(k, _)| hex::encode(k)),
                rb.get(first).map(|(k, _)| hex::encode(k)),
            );
        }
    }
}

/// Instantiates a generic test function once per compiled backend.
#[macro_export]
macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod redb_backend {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[cfg(feature = "redb")]
                #[test]
                fn $name() {
                    super::$name::<store_redb::RedbStore>();
                }
            )*
        }
        mod rocksdb_backend {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[cfg(feature = "rocksdb")]
                #[test]
                fn $name() {
                    super::$name::<store_lmdb_compat::RocksStore>();
                }
            )*
        }
    };
}
