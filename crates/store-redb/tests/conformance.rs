//! The shared backend conformance suite, run against redb.

use std::path::Path;

use storage_traits::TableSpec;
use store_redb::RedbStore;

fn open(dir: &Path, tables: &[TableSpec]) -> storage_traits::Result<RedbStore> {
    RedbStore::open(dir, tables)
}

storage_traits::conformance_tests!(open);
