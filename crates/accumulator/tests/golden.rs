//! Golden vectors: digests of fixed outputs, checked against an independent BLAKE2b
//! implementation (Python's `hashlib.blake2b(digest_size=32)`).
//!
//! The constants were produced by `crates/accumulator/tools/reference.py` (standard library
//! only), whose core is:
//!
//! ```python
//! import hashlib, struct
//! TAG = b"ZcashTxOutSet___"
//! def message(txid, vout, value, script_hash, script_type):
//!     return (TAG + txid + struct.pack("<I", vout) + struct.pack("<Q", value)
//!             + script_hash + bytes([script_type]))          # 81 bytes
//! def digest(*args):
//!     return hashlib.blake2b(message(*args), digest_size=32).digest()
//! outputs = [
//!     (bytes(32), 0, 0, bytes(20), 0x00),
//!     (bytes(range(32)), 1, 5_000_000_000, bytes(range(100, 120)), 0x00),
//!     (bytes([0xFF] * 32), 0xFFFF_FFFF, 0x8000_0000_0000_0001, bytes([0xAB] * 20), 0x01),
//!     (bytes(range(32, 64)), 7, 123_456_789, bytes(range(20)), 0x01),
//!     (bytes(range(32, 64)), 8, 1, bytes([0x11] * 20), 0xFF),   # NonStandard: excluded
//! ]
//! for o in outputs: print(digest(*o).hex())
//! acc = bytes(32)
//! for o in outputs:
//!     if o[4] in (0, 1): acc = bytes(a ^ b for a, b in zip(acc, digest(*o)))
//! print(acc.hex())
//! # plus the stored entry: [0x01] [0x01 TxOutSetInfo tag] [64-byte body]
//! #                        [BLAKE2b-256(b"tx_out_set_info_accumulator" + tag + body)]
//! ```

use accumulator::{Accumulator, AccumulatorError, Field, TxDelta, entry_digest, entry_message};
use storage_traits::Versioned;
use storage_traits::entry::StoredEntry;
use storage_traits::model::{Outpoint, ScriptType, TxId, TxOutCompact, TxOutSetInfo};

fn seq<const N: usize>(start: u8) -> [u8; N] {
    std::array::from_fn(|i| start + i as u8)
}

/// The fixed outputs, in the same order as the Python script.
fn golden_outputs() -> Vec<(Outpoint, TxOutCompact)> {
    let o = |txid: [u8; 32], vout, value, script_hash, script_type| {
        (
            Outpoint {
                prev_txid: TxId(txid),
                prev_index: vout,
            },
            TxOutCompact {
                value,
                script_hash,
                script_type,
            },
        )
    };
    vec![
        o([0; 32], 0, 0, [0; 20], ScriptType::P2pkh),
        o(seq(0), 1, 5_000_000_000, seq(100), ScriptType::P2pkh),
        o(
            [0xFF; 32],
            u32::MAX,
            0x8000_0000_0000_0001,
            [0xAB; 20],
            ScriptType::P2sh,
        ),
        o(seq(32), 7, 123_456_789, seq(0), ScriptType::P2sh),
        o(seq(32), 8, 1, [0x11; 20], ScriptType::NonStandard),
    ]
}

const GOLDEN_DIGESTS: [&str; 5] = [
    "7099df1c688b50ea1ab32e8fe5a13e9b9ffa69a0a7a0547c5965752c40723e11",
    "a143298a51e35019d8ac2594128a8495bb027b889e34a1f4c89e609dc3944ada",
    "87c8133a90c098536c8dc65b4c15749f2c3255c557a213c38183a23ed8c77f49",
    "4fe60da33091d0324873c5d0e50d342df8b9b007e0d8555e575662e1ee3c4cbf",
    "ab360313332131a3dfc79ae19cac81830c980b5e9946de5ec76d72f59fb7dbf9",
];

/// XOR of the four counted digests above.
const GOLDEN_HASH_SERIALIZED: &str =
    "19f4e80f99394892e6e108905e33fabcf073f7ea8eeeb315472ed56eb51d473d";

#[test]
fn digests_match_python_hashlib_blake2b() {
    for ((op, out), want) in golden_outputs().iter().zip(GOLDEN_DIGESTS) {
        assert_eq!(hex::encode(entry_digest(op, out)), want, "{op:?}");
        assert_eq!(entry_message(op, out).len(), 81);
    }
}

#[test]
fn the_message_bytes_are_pinned() {
    let (op, out) = golden_outputs()[1];
    let want = concat!(
        "5a6361736854784f75745365745f5f5f", // tag
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", // txid
        "01000000",                         // LE u32 vout
        "00f2052a01000000",                 // LE u64 5e9
        "6465666768696a6b6c6d6e6f7071727374757677", // script hash
        "00",                               // P2PKH
    );
    assert_eq!(hex::encode(entry_message(&op, &out)), want);
}

fn golden_accumulator() -> Accumulator {
    let outs = golden_outputs();
    let mut acc = Accumulator::new();
    // Group by transaction, as the incremental API takes per-transaction deltas.
    let mut i = 0;
    while i < outs.len() {
        let txid = outs[i].0.prev_txid;
        let group: Vec<(u32, TxOutCompact)> = outs[i..]
            .iter()
            .take_while(|(op, _)| op.prev_txid == txid)
            .map(|(op, o)| (op.prev_index, *o))
            .collect();
        i += group.len();
        acc.apply(&TxDelta {
            txid,
            counted_unspent_before: 0,
            added: &group,
            removed: &[],
        })
        .unwrap();
    }
    acc
}

/// The stored entry of the golden accumulator, from the same script.
const GOLDEN_STORED_ENTRY: &str = concat!(
    "0101",
    "0400000000000000", // transactions
    "0400000000000000", // transaction_outputs
    "0401000000000000", // bytes_serialized
    "19f4e80f99394892e6e108905e33fabcf073f7ea8eeeb315472ed56eb51d473d", // hash_serialized
    "16bf613101000080", // total_zatoshis
    "9eb8fe44e26f28b0933455c9e2fc5596fcc178a0c40e38415f9a06456a236f80", // checksum
);

#[test]
fn accumulator_of_the_golden_outputs() {
    let acc = golden_accumulator();
    assert_eq!(hex::encode(acc.hash_serialized()), GOLDEN_HASH_SERIALIZED);
    assert_eq!(acc.transactions(), 4);
    assert_eq!(acc.transaction_outputs(), 4);
    assert_eq!(acc.bytes_serialized(), 4 * 65);
    assert_eq!(
        acc.total_zatoshis(),
        5_000_000_000 + 0x8000_0000_0000_0001 + 123_456_789
    );
}

#[test]
fn rebuild_reproduces_the_golden_accumulator() {
    let golden = golden_accumulator();
    let from_slice: Accumulator = accumulator::rebuild_from_slice(&golden_outputs()).unwrap();
    let from_iter = Accumulator::rebuild(golden_outputs()).unwrap();
    assert_eq!(from_slice, golden);
    assert_eq!(from_iter, golden);
}

#[test]
fn stored_entry_bytes_are_pinned() {
    let acc = golden_accumulator();
    let bytes = acc.to_entry().to_bytes();
    assert_eq!(bytes.len(), 1 + 1 + 64 + 32);
    assert_eq!(hex::encode(&bytes), GOLDEN_STORED_ENTRY);
    assert_eq!(acc.info().to_bytes().len(), 1 + 64);
    assert_eq!(Accumulator::from_stored_bytes(&bytes).unwrap(), acc);
}

#[test]
fn stored_entry_corruption_is_detected() {
    let bytes = hex::decode(GOLDEN_STORED_ENTRY).unwrap();
    // Any flipped bit in the body or checksum fails verification (or decoding).
    for i in 2..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        assert!(Accumulator::from_stored_bytes(&b).is_err(), "byte {i}");
    }
    // Truncated or extended rows fail to decode.
    assert!(Accumulator::from_stored_bytes(&bytes[..bytes.len() - 1]).is_err());
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Accumulator::from_stored_bytes(&longer).is_err());
}

#[test]
fn stored_values_that_break_the_invariants_are_rejected() {
    let good = golden_accumulator().info();
    let bad = [
        TxOutSetInfo {
            bytes_serialized: good.bytes_serialized + 1,
            ..good
        },
        TxOutSetInfo {
            transactions: good.transaction_outputs + 1,
            ..good
        },
        TxOutSetInfo {
            transactions: 0,
            ..good
        },
        TxOutSetInfo {
            total_zatoshis: 1,
            ..TxOutSetInfo::default()
        },
        TxOutSetInfo {
            hash_serialized: [1; 32],
            ..TxOutSetInfo::default()
        },
        TxOutSetInfo {
            transaction_outputs: u64::MAX,
            bytes_serialized: u64::MAX,
            ..good
        },
    ];
    for info in bad {
        // Correctly checksummed, but inconsistent.
        let entry = storage_traits::StoredEntryFixed::new(
            &storage_traits::table::TableKey::encode_key(&storage_traits::table::ACCUMULATOR_KEY),
            info,
        );
        assert!(
            matches!(
                Accumulator::from_entry(&entry),
                Err(AccumulatorError::InvalidStored { .. })
            ),
            "{info:?}"
        );
    }
}

#[test]
fn total_zatoshis_overflow_names_the_field() {
    let (op, mut out) = golden_outputs()[2];
    out.value = u64::MAX;
    let outs = vec![golden_outputs()[1], (op, out)];
    let r: Result<Accumulator, _> = accumulator::rebuild_from_slice(&outs);
    match r {
        Err(
            e @ AccumulatorError::Overflow {
                field: Field::TotalZatoshis,
                ..
            },
        ) => {
            assert!(e.to_string().contains("total_zatoshis"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}
