//! Real Zcash blocks (the `zebra-test` vectors, mainnet and testnet) converted by
//! `cargo xtask fixtures zebra`, read back through the fixture reader and synced into
//! finalised-state stores on both backends, which validate them.
//!
//! `cargo test --workspace --all-features --test zebra_blocks`

use std::collections::HashSet;
use std::path::Path;
use std::sync::OnceLock;

use finalised_state::{Backend, Config, FinalisedState, Network, OpenValidation};
use fixtures::FixtureReader;
use storage_traits::capability::{BlockCoreExt, BlockShieldedExt, BlockTransparentExt, DbRead};
use storage_traits::model::{Height, IndexedBlock, ScriptType, TxId};
use xtask::zebra::{self, RunInfo};

/// Converts once per test binary (the converter is a separate cargo build).
fn converted() -> &'static (tempfile::TempDir, Vec<RunInfo>) {
    static DIR: OnceLock<(tempfile::TempDir, Vec<RunInfo>)> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        zebra::convert(dir.path(), false).unwrap();
        let runs = zebra::runs(dir.path()).unwrap();
        (dir, runs)
    })
}

fn blocks(run: &RunInfo) -> Vec<IndexedBlock> {
    FixtureReader::open(&run.dir)
        .unwrap()
        .iter()
        .map(|b| b.unwrap())
        .collect()
}

fn network(run: &RunInfo) -> Network {
    run.network.parse().unwrap()
}

/// Display-order hex of an internal-order hash.
fn display(bytes: [u8; 32]) -> String {
    let mut b = bytes;
    b.reverse();
    hex::encode(b)
}

#[test]
fn vectors_convert_with_valid_merkle_roots_and_derived_fields() {
    let (_, runs) = converted();
    let networks: HashSet<&str> = runs.iter().map(|r| r.network.as_str()).collect();
    assert_eq!(networks.len(), 2, "mainnet and testnet");
    let (mut total, mut sapling_outputs, mut orchard_actions, mut v5_era) = (0, 0, 0, 0);
    for run in runs {
        let reader = FixtureReader::open(&run.dir).unwrap();
        reader.verify_files().unwrap();
        let mut prev: Option<IndexedBlock> = None;
        for block in blocks(run) {
            let h = block.header.height().unwrap().0;
            // Strata's merkle root (storage-traits) over the Zcash crates' txids equals the
            // root the miner committed to: SHA-256d txids (v1–v4) and ZIP 244 txids (v5).
            assert_eq!(
                block.computed_merkle_root(),
                block.header.data().merkle_root,
                "{} {h}: merkle root",
                run.network
            );
            let saplings: usize = block
                .transactions
                .iter()
                .filter_map(|t| t.sapling.as_ref())
                .map(|s| s.outputs.len())
                .sum();
            let actions: usize = block
                .transactions
                .iter()
                .filter_map(|t| t.orchard.as_ref())
                .map(|o| o.actions.len())
                .sum();
            let sizes = block.commitment_tree_data.sizes;
            match &prev {
                Some(p) => {
                    assert_eq!(block.header.parent_hash(), p.header.hash(), "{h}");
                    assert!(block.header.chainwork() > p.header.chainwork(), "{h}");
                    let before = p.commitment_tree_data.sizes;
                    assert_eq!(sizes.sapling as usize, before.sapling as usize + saplings);
                    assert_eq!(sizes.orchard as usize, before.orchard as usize + actions);
                }
                None => {
                    assert_eq!(
                        (sizes.sapling as usize, sizes.orchard as usize),
                        (saplings, actions)
                    );
                }
            }
            if let Some((at, size)) = run.sapling_tree_size_check
                && at == h
            {
                // Counted notes against zcashd's own serialised tree after this block.
                assert!(run.sapling_sizes_absolute);
                assert_eq!(u64::from(sizes.sapling), size, "Sapling tree size at {h}");
            }
            if block.transactions.iter().any(|t| t.orchard.is_some()) {
                v5_era += 1;
            }
            sapling_outputs += saplings;
            orchard_actions += actions;
            total += 1;
            prev = Some(block);
        }
    }
    assert!(total >= 40, "{total} blocks converted");
    assert!(sapling_outputs > 0, "Sapling outputs are derived");
    assert!(
        orchard_actions > 0 && v5_era > 0,
        "Orchard actions are derived"
    );
    assert!(
        runs.iter().any(|r| r.sapling_tree_size_check.is_some()),
        "the mainnet 419,201 tree-state check ran"
    );

    // Pinned facts of the real chain (display order, as zcashd and explorers print them). The
    // hash covers the whole header, so it pins the merkle root checked above too.
    let main = runs
        .iter()
        .find(|r| r.network == "mainnet" && r.first == 0)
        .unwrap();
    assert!(main.chainwork_from_genesis && main.sapling_sizes_absolute);
    let chain = blocks(main);
    let genesis = &chain[0];
    assert_eq!(
        display(genesis.header.hash().0),
        "00040fe8ec8471911baa1db1266ea15dd06b4a8a5c453883c000b031973dce08"
    );
    // zcashd `getblockheader 0`: chainwork 0x2000 (bits 0x1f07ffff).
    assert_eq!(genesis.header.data().bits, 0x1f07_ffff);
    assert_eq!(genesis.header.chainwork().0[30..], [0x20, 0x00]);
    let coinbase = genesis.transactions[0].transparent.as_ref().unwrap();
    assert!(coinbase.vin[0].is_null());
    // The genesis coinbase pays to a bare public key (P2PK): non-standard for the index.
    assert_eq!(coinbase.vout[0].script_type, ScriptType::NonStandard);
    assert_eq!(genesis.commitment_tree_data.sizes.sapling, 0);
}

fn open<B: Backend>(dir: &Path, run: &RunInfo, validation: OpenValidation) -> FinalisedState<B> {
    let mut c = Config::new(dir, network(run));
    c.start_height = Height(run.first);
    c.open_validation = validation;
    FinalisedState::<B>::open(c).unwrap()
}

/// The genesis runs sync; a reopen with full validation re-checks every row, chain link and
/// merkle root; reads return the converted data.
fn genesis_runs_sync_and_validate<B: Backend>() {
    let (_, runs) = converted();
    for run in runs.iter().filter(|r| r.first == 0) {
        let chain = blocks(run);
        let dir = tempfile::tempdir().unwrap();
        {
            let s = open::<B>(dir.path(), run, OpenValidation::Full);
            let written = s.write_blocks(chain.iter().cloned(), |_| {}).unwrap();
            assert_eq!(written as usize, chain.len());
        }
        let s = open::<B>(dir.path(), run, OpenValidation::Full);
        assert_eq!(s.db_height().unwrap(), Some(Height(run.last)));
        assert_eq!(s.validated_tip(), Some(Height(run.last)));
        for b in &chain {
            let h = b.header.height().unwrap();
            assert_eq!(s.get_block_header(h).unwrap(), b.header);
            assert_eq!(s.get_block_txids(h).unwrap(), b.txids());
            assert_eq!(
                s.get_block_commitment_tree_data(h).unwrap(),
                b.commitment_tree_data
            );
            for (i, tx) in b.transactions.iter().enumerate() {
                let loc = s.get_tx_location(&tx.txid).unwrap().unwrap();
                assert_eq!((loc.block_height, loc.tx_index as usize), (h.0, i));
                assert_eq!(s.get_transparent(loc).unwrap(), tx.transparent);
            }
        }
    }
}

/// Later runs start at their first height (`Config::start_height`); the write path checks
/// each block's merkle root and parent link first. A run whose transactions spend outputs
/// created before it cannot be stored: finalised-state refuses spends of outputs it has not
/// stored, and the vectors do not include the chain before the run. Such a run must be
/// refused with exactly that error, naming an outpoint created before the run.
fn later_runs_sync_from_their_start_height<B: Backend>() {
    let (_, runs) = converted();
    let (mut synced, mut refused) = (0, 0);
    for run in runs.iter().filter(|r| r.first > 0) {
        let chain = blocks(run);
        let dir = tempfile::tempdir().unwrap();
        let s = open::<B>(dir.path(), run, OpenValidation::Lazy);
        match s.write_blocks(chain.iter().cloned(), |_| {}) {
            Ok(n) => {
                assert_eq!(n as usize, chain.len());
                drop(s);
                let s = open::<B>(dir.path(), run, OpenValidation::Full);
                assert_eq!(s.validated_tip(), Some(Height(run.last)));
                synced += 1;
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains("spends unknown output"), "{msg}");
                let run_txids: HashSet<TxId> = chain
                    .iter()
                    .flat_map(|b| b.transactions.iter().map(|t| t.txid))
                    .collect();
                let named = chain
                    .iter()
                    .flat_map(|b| b.transactions.iter())
                    .filter_map(|t| t.transparent.as_ref())
                    .flat_map(|t| t.vin.iter())
                    .filter_map(|i| i.outpoint())
                    .find(|o| msg.contains(&o.prev_txid.to_string()))
                    .expect("the error names an input of the run");
                assert!(!run_txids.contains(&named.prev_txid), "{msg}");
                refused += 1;
            }
        }
    }
    eprintln!("later runs: {synced} synced and validated, {refused} refused for pre-run spends");
    assert!(synced + refused > 0);
}

macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod redb_backend {
            $(#[test] fn $name() { super::$name::<store_redb::RedbStore>() })*
        }
        mod rocksdb_backend {
            $(#[test] fn $name() { super::$name::<store_lmdb_compat::RocksStore>() })*
        }
    };
}

per_backend!(
    genesis_runs_sync_and_validate,
    later_runs_sync_from_their_start_height
);
