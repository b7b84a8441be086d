//! How a tiered store is opened.

use std::path::PathBuf;
use std::time::Duration;

use coldpack::Codec;
use finalised_state::{Network, OpenValidation};
use hotchunk::{Geometry, HotOptions};

/// The kind of the payload packs: one record per height, the block's canonical bytes.
pub const PAYLOAD_KIND: &str = "blocks";
/// The kind of the derived txid index (sorted 16-byte txid prefix → height).
pub const TXID_INDEX_KIND: &str = "txids";

/// How many chunks of each kind the store keeps (counted back from the chunk holding the
/// tip, that chunk included). `None` keeps every chunk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Chunks whose payloads stay readable (hot store or payload pack). Older chunks'
    /// packs are pruned and their hot stores discarded; reading them is `NotAvailable`.
    pub payload_chunks: Option<u32>,
    /// Chunks that keep a txid-index pack.
    pub index_chunks: Option<u32>,
}

/// The configuration of [`crate::TieredStore::open`].
///
/// Everything lives under `root`:
///
/// ```text
/// {root}/LOCK, {root}/catalog/, {root}/hot/{chunk:08}/    hotchunk (catalog, hot stores)
/// {root}/blocks/{bucket:05}/{chunk:08}.pack              payload packs
/// {root}/txids/{bucket:05}/{chunk:08}.pack               txid-index packs
/// {root}/cas/                                            coldpack's object store and refs
/// {root}/finalised/{network}/v1/                         the finalised state
/// ```
#[derive(Clone, Debug)]
pub struct TieredConfig {
    /// The storage root.
    pub root: PathBuf,
    /// Chunk geometry; pinned in the catalog at first open. Its first height must be the
    /// finalised state's start height.
    pub geometry: Geometry,
    /// The finalised state's network (its directory name).
    pub network: Network,
    /// Read-back validation of the finalised state at open.
    pub open_validation: OpenValidation,
    /// Options of the per-chunk hot stores.
    pub hot: HotOptions,
    /// Compression of every pack (recorded in each pack; changing it changes new packs'
    /// bytes, never old ones).
    pub pack_codec: Codec,
    /// Whether to build the txid-index kind beside the payload packs.
    pub txid_index: bool,
    /// What is kept.
    pub retention: Retention,
    /// Freeze tasks run at once by the executor (at least 1).
    pub workers: usize,
    /// Retries of a failed freeze task before it is reported as failed (the next tick
    /// plans it again). Loss errors are never retried.
    pub max_retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
    /// How long a backfill waits for the bulk backend to cover a chunk (then fatal).
    pub backend_timeout: Duration,
    /// How often the wait polls the backend.
    pub backend_poll: Duration,
    /// How often the background lifecycle ticks when no chunk has closed (it retries
    /// failed tasks); a closed chunk wakes it at once.
    pub tick_interval: Duration,
}

impl TieredConfig {
    /// Defaults: Zcash geometry (10,000 heights a chunk from height 0), mainnet, full
    /// validation at open, uncompressed hot values, zstd level 3 packs, the txid index,
    /// everything retained, 2 workers, 3 retries from 100 ms, a 5-minute backend wait,
    /// a 1-second tick.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        TieredConfig {
            root: root.into(),
            geometry: Geometry::ZCASH,
            network: Network::Mainnet,
            open_validation: OpenValidation::Full,
            hot: HotOptions::default(),
            pack_codec: Codec::Zstd { level: 3 },
            txid_index: true,
            retention: Retention::default(),
            workers: 2,
            max_retries: 3,
            retry_backoff: Duration::from_millis(100),
            backend_timeout: Duration::from_secs(300),
            backend_poll: Duration::from_secs(1),
            tick_interval: Duration::from_secs(1),
        }
    }

    /// The finalised state's configuration under this root.
    pub fn finalised_config(&self) -> finalised_state::Config {
        let mut c = finalised_state::Config::new(self.root.join("finalised"), self.network);
        c.start_height = storage_traits::model::Height(self.geometry.genesis_height());
        c.open_validation = self.open_validation;
        c
    }

    /// The object store's directory.
    pub fn cas_dir(&self) -> PathBuf {
        self.root.join("cas")
    }

    /// The kinds frozen, the payload first.
    pub fn kinds(&self) -> Vec<&'static str> {
        if self.txid_index {
            vec![PAYLOAD_KIND, TXID_INDEX_KIND]
        } else {
            vec![PAYLOAD_KIND]
        }
    }

    /// The retention of `kind` in chunks (`None`: all).
    pub fn retention_of(&self, kind: &str) -> Option<u32> {
        if kind == PAYLOAD_KIND {
            self.retention.payload_chunks
        } else {
            self.retention.index_chunks
        }
    }
}
