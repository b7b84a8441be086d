//! The fuzz target's body, here so tests can run it too (`fuzz/fuzz_targets/pack_decode.rs`).
//!
//! Every decoder of the crate on arbitrary bytes: the pack reader (open, every record,
//! full verification), the key-index reader, and the tree and commit decoders. It panics
//! only if a decoder breaks an invariant (a mutated pack that still verifies).

use crate::format::{Codec, RECORD_KIND_PAYLOAD};
use crate::reader::PackReader;
use crate::writer::{PackOptions, pack_to_vec};

fn exercise(bytes: Vec<u8>) -> Option<[u8; 32]> {
    let r = PackReader::from_bytes(bytes).ok()?;
    let mut scratch = Vec::new();
    for i in 0..r.record_count().min(256) {
        let _ = r.read(i);
        let _ = r.read_ref(i, &mut scratch);
    }
    let _ = r.read(r.record_count());
    let verified = r.verify_full().ok();
    if let Ok(k) = crate::derived::KeyIndexReader::new(r) {
        let _ = k.lookup(&[0u8; 16]);
        let _ = k.lookup(&[0xffu8; 16]);
    }
    verified
}

/// Runs every decoder on `data`. The first byte picks the mode: even → `data[1..]` is the
/// input as is; odd → a valid pack is built from `data` (records split at 0xff bytes,
/// codec from bit 1) and then edited by the bytes that follow a 0xfe 0xfe marker (pairs of
/// position, xor value); an edited pack must not verify.
pub fn decode_everything(data: &[u8]) {
    let _ = crate::cas::decode_tree(data);
    let _ = crate::cas::decode_commit(data);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        exercise(rest.to_vec());
        return;
    }
    let (body, edits) = match rest.windows(2).position(|w| w == [0xfe, 0xfe]) {
        Some(p) => (&rest[..p], &rest[p + 2..]),
        None => (rest, &[][..]),
    };
    let codec = if mode & 2 == 0 {
        Codec::None
    } else {
        Codec::Zstd { level: 1 }
    };
    let opts = PackOptions {
        codec,
        record_kind: RECORD_KIND_PAYLOAD,
        first_height: u32::from(mode) << 8,
    };
    let Ok((mut pack, summary)) = pack_to_vec(opts, body.split(|&b| b == 0xff)) else {
        return;
    };
    let clean = pack.clone();
    for e in edits.chunks_exact(3) {
        let pos = usize::from(u16::from_le_bytes([e[0], e[1]])) % pack.len();
        pack[pos] ^= e[2];
    }
    let changed = pack != clean;
    let verified = exercise(pack);
    if changed {
        assert!(verified.is_none(), "an edited pack verified");
    } else {
        assert_eq!(
            verified,
            Some(summary.object_hash),
            "a clean pack failed to verify"
        );
    }
}
