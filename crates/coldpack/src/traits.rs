//! What freezing needs from the layers beside it, as small traits: the catalog of chunk
//! states, the chunk geometry and canonical paths, the read-only hot view.
//!
//! `hotchunk` provides all of them (the adapter is [`crate::hot`]); the traits keep
//! `coldpack`'s protocol testable on its own and say exactly what it relies on.

use std::ops::RangeInclusive;
use std::path::PathBuf;

use crate::error::Result;

/// The state of one kind of a chunk's cold files (`chunk:{c:08}:{kind}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ColdState {
    /// Being written at its canonical path; never read.
    Freezing,
    /// Complete and durable.
    Frozen,
    /// Being deleted; never read.
    Pruning,
}

/// The state of a chunk's hot store (`hot:chunk:{c:08}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HotState {
    /// A create or discard is (or was) under way: never a source.
    Transient,
    /// The hot store exists and must open.
    Ready,
}

/// The catalog, as freezing uses it. Every method that changes state is one synced,
/// atomic batch.
pub trait ColdCatalog: Send + Sync {
    /// The state of `kind` of `chunk` (`None`: no key, so no file).
    fn cold_state(&self, chunk: u32, kind: &str) -> Result<Option<ColdState>>;
    /// Sets `kinds` of `chunk` to `state` in one synced batch.
    fn set_cold(&self, chunk: u32, kinds: &[&str], state: ColdState) -> Result<()>;
    /// Deletes the key of `kind` of `chunk` (synced).
    fn delete_cold(&self, chunk: u32, kind: &str) -> Result<()>;
    /// Every chunk with a key of `kind`, ascending.
    fn cold_chunks(&self, kind: &str) -> Result<Vec<(u32, ColdState)>>;
    /// The state of `chunk`'s hot store.
    fn hot_state(&self, chunk: u32) -> Result<Option<HotState>>;
}

/// Chunk geometry and the canonical path of every cold file.
pub trait ChunkLayout: Send + Sync {
    /// The heights `chunk` holds.
    fn heights(&self, chunk: u32) -> Result<RangeInclusive<u32>>;
    /// The canonical path of `kind`'s pack of `chunk`.
    fn pack_path(&self, kind: &str, chunk: u32) -> Result<PathBuf>;
}

/// A read-only view of one chunk's hot store.
pub trait HotView {
    /// The highest height committed to the store (`None` when empty): the one watermark
    /// that says whether the chunk is complete.
    fn watermark(&self) -> Result<Option<u32>>;
    /// Calls `f` with each stored height in `heights` and its payload, ascending.
    fn visit(
        &self,
        heights: RangeInclusive<u32>,
        f: &mut dyn FnMut(u32, &[u8]) -> Result<()>,
    ) -> Result<()>;
}

/// Opens hot views. An error here, for a chunk the catalog says is `ready`, is loss.
pub trait HotViews: Send + Sync {
    /// Opens `chunk`'s hot store read-only.
    fn open_view(&self, chunk: u32) -> Result<Box<dyn HotView + '_>>;
}
