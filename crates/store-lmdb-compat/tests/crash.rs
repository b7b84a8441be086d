//! SIGKILL durability: the test re-runs itself as a child process, kills it with SIGKILL
//! mid-transaction, and checks the reopened store (see `storage_traits::conformance`).

#[test]
fn crash_durability() {
    storage_traits::conformance::crash_durability("crash_durability", store_lmdb_compat::open);
}
