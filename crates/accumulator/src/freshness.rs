//! The freshness watermark: whether a stored accumulator describes the current tip.
//!
//! The finalised state records the height the accumulator was last fully built to under
//! the metadata key `_tx_out_set_accumulator_built_height` (table `MetadataHeights`,
//! [`ACCUMULATOR_BUILT_HEIGHT_KEY`]) in the same transaction that writes the accumulator.
//! Bulk sync defers the accumulator and rebuilds it once at the tip, so an interrupted
//! sync leaves a watermark below the tip: a reader compares the two and knows the stored
//! value is stale instead of serving it as current.

use storage_traits::entry::{StoredEntry, StoredEntryFixed};
use storage_traits::model::Height;
use storage_traits::table::{ACCUMULATOR_BUILT_HEIGHT_KEY, MetadataHeights, Table, TableKey};

use crate::error::{AccumulatorError, Result};

/// How a stored accumulator relates to the finalised tip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Freshness {
    /// Built to the tip: it describes the current finalised UTXO set.
    Fresh,
    /// Built to a height below the tip (a sync or migration stopped before its rebuild):
    /// rebuild before serving it.
    Stale {
        /// The height it was built to.
        built: Height,
        /// The finalised tip.
        tip: Height,
    },
    /// Built to a height above the tip (blocks were rolled back without maintaining it):
    /// rebuild before serving it.
    Ahead {
        /// The height it was built to.
        built: Height,
        /// The finalised tip.
        tip: Height,
    },
    /// No watermark (or no accumulator): it was never built.
    Missing,
}

impl Freshness {
    /// Classifies a watermark against the tip. `built` is `None` when the watermark row
    /// (or the accumulator row) is absent.
    pub fn classify(built: Option<Height>, tip: Height) -> Freshness {
        match built {
            None => Freshness::Missing,
            Some(b) if b == tip => Freshness::Fresh,
            Some(built) if built < tip => Freshness::Stale { built, tip },
            Some(built) => Freshness::Ahead { built, tip },
        }
    }

    /// Whether the accumulator may be served as describing the tip.
    pub fn is_fresh(self) -> bool {
        matches!(self, Freshness::Fresh)
    }
}

/// The watermark row's entry (`StoredEntryFixed<Height>` checksummed under
/// [`ACCUMULATOR_BUILT_HEIGHT_KEY`]), to write beside the accumulator.
pub fn watermark_entry(built: Height) -> StoredEntryFixed<Height> {
    StoredEntryFixed::new(&ACCUMULATOR_BUILT_HEIGHT_KEY.encode_key(), built)
}

/// The height in a watermark row's bytes, after verifying its checksum.
pub fn watermark_from_stored_bytes(bytes: &[u8]) -> Result<Height> {
    let entry = StoredEntryFixed::<Height>::from_bytes(bytes)?;
    let key = ACCUMULATOR_BUILT_HEIGHT_KEY.encode_key();
    if !entry.verify(&key) {
        return Err(AccumulatorError::ChecksumMismatch {
            table: MetadataHeights::NAME,
            key: hex::encode(&key),
        });
    }
    Ok(entry.into_item())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_covers_every_case() {
        let h = Height;
        assert_eq!(Freshness::classify(None, h(10)), Freshness::Missing);
        assert_eq!(Freshness::classify(Some(h(10)), h(10)), Freshness::Fresh);
        assert_eq!(
            Freshness::classify(Some(h(7)), h(10)),
            Freshness::Stale {
                built: h(7),
                tip: h(10)
            }
        );
        assert_eq!(
            Freshness::classify(Some(h(12)), h(10)),
            Freshness::Ahead {
                built: h(12),
                tip: h(10)
            }
        );
        assert!(Freshness::classify(Some(h(0)), h(0)).is_fresh());
        assert!(!Freshness::classify(Some(h(0)), h(1)).is_fresh());
    }

    #[test]
    fn watermark_round_trips_and_rejects_foreign_rows() {
        let bytes = watermark_entry(Height(123_456)).to_bytes();
        assert_eq!(
            watermark_from_stored_bytes(&bytes).unwrap(),
            Height(123_456)
        );
        // The same height checksummed under another metadata key does not verify.
        let foreign = StoredEntryFixed::new(
            &storage_traits::table::MIGRATION_SPENT_PROGRESS_KEY.encode_key(),
            Height(123_456),
        )
        .to_bytes();
        assert!(matches!(
            watermark_from_stored_bytes(&foreign),
            Err(AccumulatorError::ChecksumMismatch { .. })
        ));
        assert!(watermark_from_stored_bytes(&bytes[..bytes.len() - 1]).is_err());
    }
}
