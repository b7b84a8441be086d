//! What the migrations need from the host: a block source and the host's write path.
//!
//! The migrations crate sits below `finalised-state` and never depends on it. The v0 → v1
//! step writes whole blocks and validates the result before promoting it, which only the
//! host can do; it reaches the host through [`MigrationHost`], which `finalised-state`
//! implements.

use storage_traits::Result;
use storage_traits::model::{Height, IndexedBlock};

/// Where the v0 → v1 shadow build gets its blocks (a validator, a fixture).
pub trait BlockSource: Send + Sync {
    /// The highest height the source serves, `None` when it serves nothing.
    fn tip(&self) -> Result<Option<Height>>;
    /// The block at `height`.
    fn block(&self, height: Height) -> Result<IndexedBlock>;
}

/// A source over blocks held in memory (fixtures, tests), heights taken from the headers.
#[derive(Clone, Debug, Default)]
pub struct VecSource {
    first: u32,
    blocks: Vec<IndexedBlock>,
}

impl VecSource {
    /// A source over consecutive blocks; the first block's header gives the first height.
    pub fn new(blocks: Vec<IndexedBlock>) -> Self {
        let first = blocks
            .first()
            .and_then(|b| b.header.height())
            .map_or(0, |h| h.0);
        VecSource { first, blocks }
    }
}

impl BlockSource for VecSource {
    fn tip(&self) -> Result<Option<Height>> {
        Ok(self
            .blocks
            .len()
            .checked_sub(1)
            .map(|n| Height(self.first + n as u32)))
    }

    fn block(&self, height: Height) -> Result<IndexedBlock> {
        height
            .0
            .checked_sub(self.first)
            .and_then(|i| self.blocks.get(i as usize))
            .cloned()
            .ok_or_else(|| storage_traits::Error::NotAvailable {
                what: format!("block {height} from the in-memory source"),
            })
    }
}

/// The host's services for steps that cannot work on the key-value store alone.
pub trait MigrationHost {
    /// The block source the v1 shadow is built from, if the host was given one.
    fn block_source(&self) -> Option<&dyn BlockSource>;
    /// The tip of the legacy v0 store, `None` when there is none or it is empty.
    fn v0_tip(&self) -> Result<Option<Height>>;
    /// The height the first block of the v1 store must have.
    fn start_height(&self) -> Height;
    /// The tip of the v1 store being built.
    fn shadow_tip(&self) -> Result<Option<Height>>;
    /// Appends `blocks` to the v1 store through the host's write path. `progress` is called
    /// with the last height of every batch once it is durable.
    fn write_shadow_blocks(
        &self,
        blocks: &mut dyn Iterator<Item = IndexedBlock>,
        progress: &mut dyn FnMut(Height),
    ) -> Result<u64>;
    /// Full read-back validation of the v1 store.
    fn validate_shadow(&self) -> Result<()>;
    /// Removes the legacy v0 store. Idempotent: an absent store is fine.
    fn remove_v0(&self) -> Result<()>;
}
