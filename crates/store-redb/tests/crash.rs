//! SIGKILL durability: the conformance crash check re-runs this test binary as a child,
//! kills it mid-transaction, and reopens the store. Kept in its own binary so the child runs
//! nothing else.

use std::path::Path;

use storage_traits::TableSpec;
use store_redb::RedbStore;

fn open(dir: &Path, tables: &[TableSpec]) -> storage_traits::Result<RedbStore> {
    RedbStore::open(dir, tables)
}

#[test]
fn crash_durability() {
    storage_traits::conformance::crash_durability("crash_durability", open);
}
