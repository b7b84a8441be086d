//! The 0.4.0-alpha.1 compatibility rule (temporary; remove once 0.4.0 ships).
//!
//! A cache built by 0.4.0-alpha.1 records version 1.2.0 but has an empty `txid_location`
//! index (and a `spent` table that cannot be trusted). On open, a non-empty store at a
//! version ≥ 1.2.0 (and not newer than this build knows) with an empty `txid_location` has
//! its `spent` table cleared, the migration progress keys deleted, and its version set back
//! to 1.1.0, in one synced transaction, so the v1.1 → v1.2 step rebuilds the indices in
//! place instead of forcing a full rebuild from the validator.

use storage_traits::kv::{KvRead, KvStore, KvWrite};
use storage_traits::model::{DbMetadata, MigrationStatus};
use storage_traits::table::*;
use storage_traits::{Durability, TableWrite};

use crate::error::Result;
use crate::framework::read_metadata;
use crate::schema::{V1_1_0, V1_2_0, schema_hash_for};

/// Applies the rule. Returns whether it fired.
pub fn reconcile_alpha_txid_location_index<S: KvStore>(store: &S) -> Result<bool> {
    let r = store.begin_read()?;
    let Some(meta) = read_metadata(&r)? else {
        return Ok(false);
    };
    if meta.version < V1_2_0 || meta.version > DB_VERSION_LATEST {
        return Ok(false);
    }
    if r.is_empty(Headers::NAME)? || !r.is_empty(TxidLocation::NAME)? {
        return Ok(false);
    }
    drop(r);
    tracing::warn!(
        version = %meta.version,
        "0.4.0-alpha.1 store: txid_location is empty; clearing spent and rolling the version back to 1.1.0 so the indices are rebuilt in place"
    );
    let mut w = store.begin_write()?;
    w.clear(Spent::NAME)?;
    w.delete_row::<MetadataHeights>(&MIGRATION_TXID_LOCATION_PROGRESS_KEY)?;
    w.delete_row::<MetadataHeights>(&MIGRATION_SPENT_PROGRESS_KEY)?;
    w.put_row::<Metadata>(
        &METADATA_KEY,
        DbMetadata {
            version: V1_1_0,
            schema_hash: schema_hash_for(V1_1_0).unwrap_or(meta.schema_hash),
            migration_status: MigrationStatus::Empty,
        },
    )?;
    w.commit(Durability::Synced)?;
    Ok(true)
}
