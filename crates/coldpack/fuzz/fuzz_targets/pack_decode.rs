//! Every decoder of `coldpack` on arbitrary bytes: the pack reader (open, each record, full
//! verification, key-index lookups), trees and commits; and valid packs with edits, which
//! must never verify. See `coldpack::fuzzing::decode_everything`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    coldpack::fuzzing::decode_everything(data);
});
