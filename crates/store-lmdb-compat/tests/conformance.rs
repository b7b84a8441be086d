//! The backend conformance suite of `storage-traits`, the same one `store-redb` runs.

storage_traits::conformance_tests!(store_lmdb_compat::open);
