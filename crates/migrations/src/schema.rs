//! The versions this crate migrates between, and the schema hash each records.
//!
//! The hash of the current schema (1.2.0) is `storage_traits::table::schema_hash()`. The
//! older ones are frozen here: BLAKE2b-256 of a fixed description of that version's tables,
//! which must never change (stores in the field carry them).

use storage_traits::blake2b256;
use storage_traits::model::DbVersion;
use storage_traits::table::{DB_VERSION_LATEST, schema_hash};

/// The legacy compact-block layout.
pub const V0_0_0: DbVersion = DbVersion::new(0, 0, 0);
/// The first v1 layout.
pub const V1_0_0: DbVersion = DbVersion::new(1, 0, 0);
/// v1.0 plus `BlockHeaderData` v2 rows (metadata-only bump).
pub const V1_1_0: DbVersion = DbVersion::new(1, 1, 0);
/// v1.1 plus `txid_location`, core `spent` and the txout-set accumulator.
pub const V1_2_0: DbVersion = DB_VERSION_LATEST;

const V1_TABLES_BEFORE_1_2: &str = "\
headers_1_0_0 | Height(tagged) | StoredEntryVar<BlockHeaderData>
txids_1_0_0 | Height(tagged) | StoredEntryVar<TxidList>
transparent_1_0_0 | Height(tagged) | StoredEntryVar<TransparentTxList>
sapling_1_0_0 | Height(tagged) | StoredEntryVar<SaplingTxList>
orchard_1_0_0 | Height(tagged) | StoredEntryVar<OrchardTxList>
commitment_tree_data_1_0_0 | Height(tagged) | StoredEntryFixed<CommitmentTreeData>
hashes_1_0_0 | BlockHash(tagged) | StoredEntryFixed<Height>
address_history_1_0_0 | DupSort AddrScript(tagged) | StoredEntryFixed<AddrEvent>
metadata | ASCII name | StoredEntryFixed<DbMetadata>
";

/// The frozen schema description of v1.0.0 (headers hold `BlockHeaderData` v1 rows).
pub fn schema_description_v1_0() -> String {
    format!("strata schema 1.0.0\nheaders: BlockHeaderData v1\n{V1_TABLES_BEFORE_1_2}")
}

/// The frozen schema description of v1.1.0 (headers hold v1 or v2 rows).
pub fn schema_description_v1_1() -> String {
    format!("strata schema 1.1.0\nheaders: BlockHeaderData v1 or v2\n{V1_TABLES_BEFORE_1_2}")
}

/// The schema hash a store at `version` records, for the versions this crate knows.
pub fn schema_hash_for(version: DbVersion) -> Option<[u8; 32]> {
    match version {
        v if v == V1_2_0 => Some(schema_hash()),
        v if v == V1_1_0 => Some(blake2b256(&[schema_description_v1_1().as_bytes()])),
        v if v == V1_0_0 => Some(blake2b256(&[schema_description_v1_0().as_bytes()])),
        v if v == V0_0_0 => Some([0; 32]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn historic_hashes_are_distinct_and_frozen() {
        let h10 = schema_hash_for(V1_0_0).unwrap();
        let h11 = schema_hash_for(V1_1_0).unwrap();
        let h12 = schema_hash_for(V1_2_0).unwrap();
        assert_ne!(h10, h11);
        assert_ne!(h11, h12);
        // Pinned: stores in the field record these; a change here breaks them.
        assert_eq!(
            hex::encode(h10),
            "ecae80dc8a66173f67129bfeea4702cdafaed6264df74af9f42de059bc32d2dd"
        );
        assert_eq!(
            hex::encode(h11),
            "40ec72ca15976d2419144bf55eb69c5ecaff8f026b66718c785e34f50de75e4b"
        );
        assert!(schema_hash_for(DbVersion::new(1, 3, 0)).is_none());
    }
}
