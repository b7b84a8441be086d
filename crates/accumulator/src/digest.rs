//! The per-output message and its BLAKE2b-256 digest.
//!
//! ```text
//! message = b"ZcashTxOutSet___" ‖ prev_txid (32, internal order) ‖ LE u32 vout
//!           ‖ LE u64 value ‖ script_hash (20) ‖ u8 script_type            (81 bytes)
//! digest  = BLAKE2b-256(message), unkeyed, no personalisation, no salt
//! ```
//!
//! The 16-byte tag is a message prefix, not a BLAKE2b personalisation (as in Zaino's
//! `tx_out_set_entry_digest`). The same 81-byte message is the element MuHash3072 hashes.

use storage_traits::model::{Outpoint, ScriptType, TxOutCompact};

/// The domain tag every message starts with.
pub const DOMAIN_TAG: &[u8; 16] = b"ZcashTxOutSet___";

/// The bytes one counted output contributes to `bytes_serialized`: the message without its
/// tag (32 + 4 + 8 + 20 + 1).
pub const ENTRY_LEN: u64 = 65;

/// The length of the hashed message: the tag and the 65-byte entry.
pub const MESSAGE_LEN: usize = 81;

/// Whether an output counts in the txout set. Only P2PKH and P2SH outputs do; anything
/// else is treated as provably unspendable, matching zcashd's `IsUnspendable()` view
/// (OP_RETURN, oversized scripts, and every other non-standard script).
pub fn is_counted(out: &TxOutCompact) -> bool {
    matches!(out.script_type, ScriptType::P2pkh | ScriptType::P2sh)
}

/// The 81-byte message of one output. Every field is written with explicit endianness.
pub fn entry_message(outpoint: &Outpoint, out: &TxOutCompact) -> [u8; MESSAGE_LEN] {
    let mut m = [0u8; MESSAGE_LEN];
    m[0..16].copy_from_slice(DOMAIN_TAG);
    m[16..48].copy_from_slice(&outpoint.prev_txid.0);
    m[48..52].copy_from_slice(&outpoint.prev_index.to_le_bytes());
    m[52..60].copy_from_slice(&out.value.to_le_bytes());
    m[60..80].copy_from_slice(&out.script_hash);
    m[80] = out.script_type.to_u8();
    m
}

/// BLAKE2b-256 of `bytes`, unkeyed and unpersonalised.
///
/// The implementation (`blake2b_simd`) was chosen by measurement against RustCrypto's
/// `blake2`: see the crate README.
#[inline]
pub fn blake2b256(bytes: &[u8]) -> [u8; 32] {
    let hash = blake2b_simd::Params::new().hash_length(32).hash(bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(hash.as_bytes());
    out
}

/// The digest of one output: BLAKE2b-256 of its [`entry_message`].
///
/// Defined for every output, counted or not; the accumulator only folds in counted ones.
#[inline]
pub fn entry_digest(outpoint: &Outpoint, out: &TxOutCompact) -> [u8; 32] {
    blake2b256(&entry_message(outpoint, out))
}

/// XORs `digest` into `acc`.
#[inline]
pub(crate) fn xor_into(acc: &mut [u8; 32], digest: &[u8; 32]) {
    for (a, d) in acc.iter_mut().zip(digest) {
        *a ^= d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_traits::model::TxId;

    #[test]
    fn message_layout_is_pinned() {
        let op = Outpoint {
            prev_txid: TxId([0x11; 32]),
            prev_index: 0x0403_0201,
        };
        let out = TxOutCompact {
            value: 0x0C0B_0A09_0807_0605,
            script_hash: [0x22; 20],
            script_type: ScriptType::P2sh,
        };
        let m = entry_message(&op, &out);
        assert_eq!(&m[..16], b"ZcashTxOutSet___");
        assert_eq!(&m[16..48], &[0x11; 32]);
        assert_eq!(&m[48..52], &[1, 2, 3, 4]);
        assert_eq!(&m[52..60], &[5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(&m[60..80], &[0x22; 20]);
        assert_eq!(m[80], 0x01);
        assert_eq!(MESSAGE_LEN as u64, DOMAIN_TAG.len() as u64 + ENTRY_LEN);
    }

    #[test]
    fn digest_is_storage_traits_blake2b256() {
        // Two implementations paths of the same primitive must agree.
        let m = [0x5Au8; MESSAGE_LEN];
        assert_eq!(blake2b256(&m), storage_traits::blake2b256(&[&m]));
    }

    #[test]
    fn only_p2pkh_and_p2sh_count() {
        let mut out = TxOutCompact {
            value: 1,
            script_hash: [0; 20],
            script_type: ScriptType::P2pkh,
        };
        assert!(is_counted(&out));
        out.script_type = ScriptType::P2sh;
        assert!(is_counted(&out));
        out.script_type = ScriptType::NonStandard;
        assert!(!is_counted(&out));
    }
}
