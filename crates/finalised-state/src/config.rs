//! How a finalised state is opened.

use std::path::PathBuf;

use storage_traits::Capability;
use storage_traits::model::Height;

/// The Zcash network a store belongs to; each has its own directory under the base.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Network {
    /// Mainnet.
    Mainnet,
    /// Testnet.
    Testnet,
    /// Regtest.
    Regtest,
}

impl Network {
    /// The directory name (`mainnet`, `testnet`, `regtest`).
    pub fn dir_name(self) -> &'static str {
        match self {
            Network::Mainnet => "mainnet",
            Network::Testnet => "testnet",
            Network::Regtest => "regtest",
        }
    }
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mainnet" => Ok(Network::Mainnet),
            "testnet" => Ok(Network::Testnet),
            "regtest" => Ok(Network::Regtest),
            other => Err(format!(
                "unknown network {other:?}: expected mainnet, testnet or regtest"
            )),
        }
    }
}

/// What full read-back validation does at open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpenValidation {
    /// Validate every stored block, in ascending height order, before open returns.
    Full,
    /// Validate nothing at open; a read above the validated tip validates on demand.
    Lazy,
}

/// The configuration of [`crate::FinalisedState::open`].
#[derive(Clone, Debug)]
pub struct Config {
    /// The base directory; the store lives in `<base>/<network>/v1/`.
    pub base_dir: PathBuf,
    /// The network.
    pub network: Network,
    /// The height the first block of an empty store must have (0 for a chain from
    /// genesis; later for a store that starts mid-chain).
    pub start_height: Height,
    /// What the store serves. Every table is always written; a missing capability only
    /// makes its trait methods return `FeatureUnavailable`.
    pub capabilities: Capability,
    /// Byte budget of bulk sync's batches in memory (`sync_write_batch_bytes`): blocks are
    /// staged until their rows' estimated size reaches a share of it (a half on redb, a
    /// quarter on RocksDB: `Backend::SYNC_BATCH_SHARE`), then written in one transaction
    /// with the random-keyed indices in key order, on a second thread while the next batch
    /// is staged (the staged batch, the committing one and the backend's copy of it
    /// together stay within the budget). The accumulator rebuild after the sync (and
    /// `recompute_txout_set`) holds about half of it in spent outpoints: a budget far below
    /// the `spent` table's size makes it walk `transparent` once per pass.
    pub sync_write_batch_bytes: usize,
    /// The most blocks a bulk sync reads ahead (default 4,096) to read the outputs their
    /// inputs spend together, each `transparent` row once for all of them. The read-ahead
    /// is also bounded by 50,000 inputs and 250,000 decoded items (transactions, inputs,
    /// outputs, shielded spends, outputs and actions), whichever comes first. On a store
    /// read error the blocks taken from the caller's iterator but not committed are
    /// dropped, as on any error (the caller resumes from the tip).
    pub sync_read_ahead_blocks: usize,
    /// Read-back validation at open.
    pub open_validation: OpenValidation,
    /// Open a store whose recorded schema hash differs from this build's at the same
    /// version. Off by default: a mismatch means the layouts may differ.
    pub allow_schema_mismatch: bool,
}

impl Config {
    /// Defaults for a store under `base_dir` on `network`: from genesis, every capability,
    /// a 256 MiB batch budget, full validation at open.
    pub fn new(base_dir: impl Into<PathBuf>, network: Network) -> Self {
        Config {
            base_dir: base_dir.into(),
            network,
            start_height: Height(0),
            capabilities: Capability::LATEST,
            sync_write_batch_bytes: 256 << 20,
            sync_read_ahead_blocks: 4096,
            open_validation: OpenValidation::Full,
            allow_schema_mismatch: false,
        }
    }

    /// `<base>/<network>/v1`.
    pub fn store_dir(&self) -> PathBuf {
        self.base_dir.join(self.network.dir_name()).join("v1")
    }
}
