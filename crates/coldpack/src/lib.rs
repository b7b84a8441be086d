//! `coldpack`: immutable `.pack` files for frozen chunks, freezing, source selection and a
//! content-addressed store of packs, manifests, commits and refs.
//!
//! - [`format`] / [`writer`] / [`reader`]: the `.pack` format (`FORMAT.md` specifies every
//!   byte): records with CRC32C, an offset index, a 96-byte trailer with a BLAKE2b-256
//!   content hash. Deterministic writer; one read to open, one read per record, every read
//!   verified; total decoder.
//! - [`cas`]: objects named by BLAKE2b-256, the manifest tree, commits, refs, GC, verify.
//! - [`process`]: [`Freezer::process_chunk`] (the one-write protocol),
//!   [`Freezer::backfill_source`] (hot → local pack → bulk backend, loss vs staleness),
//!   recovery and GC through the catalog.
//! - [`bulk`]: the bulk-backend trait and its local fixture-directory implementation.
//! - [`derived`]: host-supplied key extractors and the sorted key-index pack.
//! - [`traits`]: what freezing needs from the catalog, the layout and the hot stores.
//! - [`hot`]: those traits for `hotchunk`'s `Catalog`, `Layout`, `HotTier` and `HotView`.

pub mod bulk;
pub mod cas;
pub mod crc;
pub mod derived;
pub mod error;
pub mod format;
pub mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod hot;
pub mod process;
pub mod reader;
pub mod traits;
pub mod writer;

pub use bulk::{BulkBackend, LocalDirBackend};
pub use cas::{Cas, Manifest, ObjectId};
pub use error::{Error, Result};
pub use format::{Codec, Trailer};
pub use process::{FreezeConfig, Freezer, KindSpec, ProcessReport, Source, SourceKind, Step};
pub use reader::PackReader;
pub use writer::{PackOptions, PackSummary, PackWriter};
