//! Canonical paths under a storage root, and the artifact kinds that name them.
//!
//! ```text
//! {root}/LOCK                                   flock held by the one process using the root
//! {root}/catalog/rocksdb/  or  catalog/redb/    the catalog (one backend per root)
//! {root}/hot/{chunk:08}/                        one RocksDB per hot chunk
//! {root}/{kind}/{bucket:05}/{chunk:08}.pack     a frozen chunk's cold file of one kind
//! ```
//!
//! Paths are a pure function of (kind, chunk): the key↔path bijection the catalog relies
//! on ("key absent ⟹ file gone"). Cleanup walks catalog keys, never directory listings.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{HotError, Result};
use crate::geometry::{ChunkId, Geometry};

/// A kind of cold artifact (`ledgers`, later `events`, `txhash`, …). Its name is a catalog
/// key segment and a directory name: 1 to 32 characters of `[a-z0-9_]`, not one of the
/// root's own names (`hot`, `catalog`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Kind(Cow<'static, str>);

impl Kind {
    /// The ledgers (or blocks) of a chunk: the first kind, and the only one of slice 1.
    pub const LEDGERS: Kind = Kind(Cow::Borrowed("ledgers"));

    /// A kind named `name`, checked.
    pub fn named(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let bad = |reason| HotError::InvalidKind {
            name: name.clone(),
            reason,
        };
        if name.is_empty() || name.len() > 32 {
            return Err(bad("a kind name has 1 to 32 characters"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(bad("a kind name is made of a-z, 0-9 and _"));
        }
        if matches!(name.as_str(), "hot" | "catalog") {
            return Err(bad("the name is one of the storage root's own directories"));
        }
        Ok(Kind(Cow::Owned(name)))
    }

    /// The kind's name.
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The canonical paths under one storage root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
    geometry: Geometry,
}

impl Layout {
    /// The layout of `root` under `geometry` (buckets come from the geometry).
    pub fn new(root: impl Into<PathBuf>, geometry: Geometry) -> Self {
        Layout {
            root: root.into(),
            geometry,
        }
    }

    /// The storage root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The geometry.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// `{root}/LOCK`.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("LOCK")
    }

    /// `{root}/catalog`.
    pub fn catalog_root(&self) -> PathBuf {
        self.root.join("catalog")
    }

    /// `{root}/catalog/{backend}` (`rocksdb`, `redb`).
    pub fn catalog_dir(&self, backend: &str) -> PathBuf {
        self.catalog_root().join(backend)
    }

    /// `{root}/hot`.
    pub fn hot_root(&self) -> PathBuf {
        self.root.join("hot")
    }

    /// `{root}/hot/{chunk:08}`: the chunk's hot RocksDB.
    pub fn hot_chunk_dir(&self, chunk: ChunkId) -> PathBuf {
        self.hot_root().join(chunk.to_string())
    }

    /// `{root}/{kind}`.
    pub fn cold_root(&self, kind: &Kind) -> PathBuf {
        self.root.join(kind.name())
    }

    /// `{root}/{kind}/{bucket:05}`: the bucket directory holding `chunk`'s cold files.
    pub fn bucket_dir(&self, kind: &Kind, chunk: ChunkId) -> PathBuf {
        self.cold_root(kind)
            .join(self.geometry.bucket_of(chunk).to_string())
    }

    /// `{root}/{kind}/{bucket:05}/{chunk:08}.pack`: the chunk's frozen file of `kind`.
    pub fn pack_path(&self, kind: &Kind, chunk: ChunkId) -> PathBuf {
        self.bucket_dir(kind, chunk).join(format!("{chunk}.pack"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths() {
        let l = Layout::new("/s", Geometry::STELLAR);
        assert_eq!(l.hot_chunk_dir(ChunkId(42)), Path::new("/s/hot/00000042"));
        assert_eq!(
            l.pack_path(&Kind::LEDGERS, ChunkId(5_860)),
            Path::new("/s/ledgers/00005/00005860.pack")
        );
        assert_eq!(
            l.pack_path(&Kind::named("events").unwrap(), ChunkId(999)),
            Path::new("/s/events/00000/00000999.pack")
        );
        assert_eq!(l.catalog_dir("rocksdb"), Path::new("/s/catalog/rocksdb"));
        assert_eq!(l.lock_file(), Path::new("/s/LOCK"));
    }

    #[test]
    fn kind_names_are_checked() {
        assert_eq!(Kind::named("ledgers").unwrap(), Kind::LEDGERS);
        assert!(Kind::named("tx_hash2").is_ok());
        for bad in [
            "",
            "Ledgers",
            "a:b",
            "a/b",
            "..",
            "hot",
            "catalog",
            &"x".repeat(33),
        ] {
            assert!(Kind::named(bad).is_err(), "{bad:?} accepted");
        }
    }
}
