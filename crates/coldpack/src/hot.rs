//! The `hotchunk` adapter: its catalog, layout and hot tier implement the traits of
//! [`crate::traits`], so a host freezes with the real collaborators:
//!
//! ```ignore
//! let catalog = Arc::new(hotchunk::Catalog::open_rocksdb(layout.clone())?);
//! let tier = hotchunk::HotTier::new(catalog.clone(), hotchunk::HotOptions::default());
//! let freezer = Freezer::new(&*catalog, &layout, &cas, config).with_hot(&tier);
//! ```

use std::ops::{ControlFlow, RangeInclusive};
use std::path::PathBuf;

use hotchunk::{ChunkId, HotError, Kind};
use storage_traits::kv::KvStore;

use crate::error::{Error, Result};
use crate::traits::{ChunkLayout, ColdCatalog, ColdState, HotState, HotView, HotViews};

fn hot_err(operation: &'static str) -> impl FnOnce(HotError) -> Error {
    move |e| Error::catalog(operation, e)
}

fn kind(name: &str) -> Result<Kind> {
    Kind::named(name).map_err(|e| Error::UnknownKind {
        kind: name.to_owned(),
        reason: e.to_string(),
    })
}

fn to_cold(s: hotchunk::ColdState) -> ColdState {
    match s {
        hotchunk::ColdState::Freezing => ColdState::Freezing,
        hotchunk::ColdState::Frozen => ColdState::Frozen,
        hotchunk::ColdState::Pruning => ColdState::Pruning,
    }
}

fn from_cold(s: ColdState) -> hotchunk::ColdState {
    match s {
        ColdState::Freezing => hotchunk::ColdState::Freezing,
        ColdState::Frozen => hotchunk::ColdState::Frozen,
        ColdState::Pruning => hotchunk::ColdState::Pruning,
    }
}

impl<S: KvStore + Send + Sync> ColdCatalog for hotchunk::Catalog<S> {
    fn cold_state(&self, chunk: u32, k: &str) -> Result<Option<ColdState>> {
        Ok(
            hotchunk::Catalog::cold_state(self, ChunkId(chunk), &kind(k)?)
                .map_err(hot_err("cold_state"))?
                .map(to_cold),
        )
    }

    fn set_cold(&self, chunk: u32, kinds: &[&str], state: ColdState) -> Result<()> {
        let mut batch = hotchunk::CatalogBatch::new();
        for k in kinds {
            batch.put_cold(ChunkId(chunk), &kind(k)?, from_cold(state));
        }
        self.commit(&batch).map_err(hot_err("set_cold"))
    }

    fn delete_cold(&self, chunk: u32, k: &str) -> Result<()> {
        hotchunk::Catalog::delete_cold(self, ChunkId(chunk), &kind(k)?)
            .map_err(hot_err("delete_cold"))
    }

    fn cold_chunks(&self, k: &str) -> Result<Vec<(u32, ColdState)>> {
        Ok(hotchunk::Catalog::cold_chunks(self, &kind(k)?)
            .map_err(hot_err("cold_chunks"))?
            .into_iter()
            .map(|(c, s)| (c.0, to_cold(s)))
            .collect())
    }

    fn hot_state(&self, chunk: u32) -> Result<Option<HotState>> {
        Ok(hotchunk::Catalog::hot_state(self, ChunkId(chunk))
            .map_err(hot_err("hot_state"))?
            .map(|s| match s {
                hotchunk::ChunkState::Ready => HotState::Ready,
                hotchunk::ChunkState::Transient => HotState::Transient,
            }))
    }
}

impl ChunkLayout for hotchunk::Layout {
    fn heights(&self, chunk: u32) -> Result<RangeInclusive<u32>> {
        self.geometry()
            .heights(ChunkId(chunk))
            .map_err(hot_err("chunk heights"))
    }

    fn pack_path(&self, k: &str, chunk: u32) -> Result<PathBuf> {
        Ok(hotchunk::Layout::pack_path(self, &kind(k)?, ChunkId(chunk)))
    }
}

impl HotView for hotchunk::HotView {
    fn watermark(&self) -> Result<Option<u32>> {
        hotchunk::HotView::watermark(self).map_err(hot_err("hot watermark"))
    }

    fn visit(
        &self,
        heights: RangeInclusive<u32>,
        f: &mut dyn FnMut(u32, &[u8]) -> Result<()>,
    ) -> Result<()> {
        // The callback's own error is carried out of hotchunk's scan and returned as is.
        let mut inner: Option<Error> = None;
        let res = self.for_each_height(*heights.start(), *heights.end(), |h, payload| {
            match f(h, payload) {
                Ok(()) => Ok(ControlFlow::Continue(())),
                Err(e) => {
                    inner = Some(e);
                    Ok(ControlFlow::Break(()))
                }
            }
        });
        if let Some(e) = inner {
            return Err(e);
        }
        res.map_err(hot_err("hot scan"))
    }
}

impl<S: KvStore + Send + Sync> HotViews for hotchunk::HotTier<S> {
    fn open_view(&self, chunk: u32) -> Result<Box<dyn HotView + '_>> {
        let v =
            hotchunk::HotTier::open_view(self, ChunkId(chunk)).map_err(hot_err("open hot view"))?;
        Ok(Box::new(v))
    }
}
