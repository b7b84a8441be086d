//! Every decoder of `storage-traits` on arbitrary bytes: models, both stored-entry kinds,
//! table keys and rows, and the CompactSize reader. `decode_everything` panics on any
//! broken invariant (a non-canonical value accepted, a row error without its context).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    storage_traits::fuzzing::decode_everything(data);
});
