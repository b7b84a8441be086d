//! MuHash3072 against Bitcoin Core's published vectors (`src/test/crypto_tests.cpp`,
//! `muhash_tests`; the same vector is in `test/functional/test_framework/crypto/muhash.py`),
//! and against the independent Python implementation in `tools/reference.py` (Python's
//! arbitrary-precision ints, `hashlib.sha256` and an RFC 8439 ChaCha20 written from the
//! RFC) for the txout-set elements.
#![cfg(feature = "muhash")]

use accumulator::muhash::{MuHash3072, NUM3072_BYTES, TxOutSetMuHash};
use accumulator::{Accumulator, UnspentOutput};
use rayon::ThreadPoolBuilder;
use storage_traits::Versioned;
use storage_traits::model::{Outpoint, ScriptType, TxId, TxOutCompact};

/// Core's `FromInt(i)`: the element `{i, 0, 0, …}` (32 bytes).
fn from_int(i: u8) -> MuHash3072 {
    MuHash3072::from_element(&int_bytes(i))
}

fn int_bytes(i: u8) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0] = i;
    b
}

/// A `uint256` literal in Core is written in display (reversed) byte order.
fn display(hash: [u8; 32]) -> String {
    let mut h = hash;
    h.reverse();
    hex::encode(h)
}

#[test]
fn core_vector_multiply_divide() {
    // MuHash3072 acc = FromInt(0); acc *= FromInt(1); acc /= FromInt(2);
    let mut acc = from_int(0);
    acc.multiply(&from_int(1));
    acc.divide(&from_int(2));
    assert_eq!(
        display(acc.finalize()),
        "10d312b100cbd32ada024a6646e40d3482fcff103668d2625f10002a607d5863"
    );
}

#[test]
fn core_vector_insert_remove() {
    // MuHash3072 acc2 = FromInt(0); acc2.Insert({1,0..}); acc2.Remove({2,0..});
    let mut acc = from_int(0);
    acc.insert(&int_bytes(1)).remove(&int_bytes(2));
    assert_eq!(
        display(acc.finalize()),
        "10d312b100cbd32ada024a6646e40d3482fcff103668d2625f10002a607d5863"
    );
}

/// `ser_exp`: FromInt(1) *= FromInt(2), serialised as numerator ‖ denominator.
const CORE_SER_NUMERATOR: &str = concat!(
    "1fa093295ea30a6a3acdc7b3f770fa538eff537528e990e2910e40bbcfd7f6696b1256901929094694b56316de342f59",
    "3303dd12ac43e06dce1be1ff8301c845beb15468fff0ef002dbf80c29f26e6452bccc91b5cb9437ad410d2a67ea84788",
    "7fa3c6a6553309946880fe20db2c73fe0641adbd4e86edfee0d9f8cd0ee1230898873dc13ed8ddcaf045c80faa082774",
    "279007a2253f8922ee3ef361d378a6af3ddaf180b190ac97e556888c36b3d1fb1c85aab9ccd46e3deaeb7b7cf5db067a",
    "7e9ff86b658cf3acd6662bbcce37232daa753c48b794356c020090c831a8304416e2aa7ad633c0ddb2f11be1be316a81",
    "be7f7e472071c042cb68faef549c221ebff209273638b741aba5a81675c45a5fa92fea4ca821d7a324cb1e1a2ccd3b76",
    "c4228ec8066dad2a5df6e1bd0de45c7dd5de8070bdb46db6c554cf9aefc9b7b2bbf9f75b1864d9f95005314593905c01",
    "09b71f703d49944ae94477b51dac10a816bb6d1c700bafabc8bd86fac8df24be519a2f2836b16392e18036cb13e48c5c",
);

#[test]
fn core_vector_serialization_and_round_trip() {
    let mut serchk = from_int(1);
    serchk.multiply(&from_int(2));
    let ser = serchk.to_core_bytes();
    let mut one = [0u8; NUM3072_BYTES];
    one[0] = 1;
    assert_eq!(
        hex::encode(ser),
        format!("{CORE_SER_NUMERATOR}{}", hex::encode(one))
    );
    // Deserialisation: the same digest.
    let de = MuHash3072::from_core_bytes(&ser);
    assert_eq!(de.finalize(), serchk.finalize());
    // The persisted form is the version tag then Core's bytes.
    let stored = serchk.to_bytes();
    assert_eq!(stored[0], 0x01);
    assert_eq!(&stored[1..], &ser[..]);
    assert_eq!(MuHash3072::from_bytes(&stored).unwrap(), serchk);
    // Equality is of the multiset, not of the representation: 1·2 / 3 == (1·2·3) / (3·3).
    let mut a = serchk;
    a.divide(&from_int(3));
    let mut b = serchk;
    b.multiply(&from_int(3));
    b.divide(&from_int(3));
    b.divide(&from_int(3));
    assert_ne!(a.to_core_bytes(), b.to_core_bytes());
    assert_eq!(a, b);
    assert_ne!(a, serchk);
    assert!(MuHash3072::from_bytes(&stored[..stored.len() - 1]).is_err());
    let mut v2 = stored.clone();
    v2[0] = 2;
    assert!(MuHash3072::from_bytes(&v2).is_err());
}

#[test]
fn core_vector_overflow() {
    // A numerator of 384 0xFF bytes (2^3072 − 1, above the modulus), denominator 1.
    let mut bytes = [0u8; 2 * NUM3072_BYTES];
    bytes[..NUM3072_BYTES].fill(0xFF);
    bytes[NUM3072_BYTES] = 1;
    let overflow = MuHash3072::from_core_bytes(&bytes);
    // Core compares HexStr(out4): raw order, not reversed.
    assert_eq!(
        hex::encode(overflow.finalize()),
        "3a31e6903aff0de9f62f9a9f7f8b861de76ce2cda09822b90014319ae5dc2271"
    );
}

#[test]
fn core_randomised_identities() {
    // The order-independence loop and x*y/(y*x) == empty of Core's muhash_tests, over
    // every choice instead of random ones.
    let empty = MuHash3072::new().finalize();
    for x in 0..16u8 {
        for y in 0..16u8 {
            let (fx, fy) = (from_int(x), from_int(y));
            let mut z = MuHash3072::new();
            z.multiply(&fx).multiply(&fy);
            let mut yx = fy;
            yx.multiply(&fx);
            z.divide(&yx);
            assert_eq!(z.finalize(), empty, "x={x} y={y}");
        }
    }
    let table = [1u8, 6, 3, 4];
    let mut first = None;
    for order in 0..4 {
        let mut acc = MuHash3072::new();
        for i in 0..4 {
            let t = table[i ^ order];
            if t & 4 != 0 {
                acc.divide(&from_int(t & 3));
            } else {
                acc.multiply(&from_int(t & 3));
            }
        }
        let out = acc.finalize();
        assert_eq!(*first.get_or_insert(out), out);
    }
    assert_eq!(
        hex::encode(empty),
        "c85525462fdcf30a2c18d6f4b92923000974355c2477f59594d2c205a1d25add",
        "empty set: SHA-256 of 1 as 384 LE bytes (Python reference)"
    );
}

fn golden_outputs() -> Vec<UnspentOutput> {
    fn seq<const N: usize>(start: u8) -> [u8; N] {
        std::array::from_fn(|i| start + i as u8)
    }
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

#[test]
fn txout_set_muhash_matches_the_python_reference() {
    // tools/reference.py: "muhash of the counted golden outputs" and "after removing
    // output #1".
    let mut m = TxOutSetMuHash::new();
    let counted: Vec<bool> = golden_outputs()
        .iter()
        .map(|(op, o)| m.insert_output(op, o))
        .collect();
    assert_eq!(counted, [true, true, true, true, false]);
    assert_eq!(
        hex::encode(m.finalize()),
        "67266573d743081f9569e8d22169b2e77a688efd48f6e5a47df73c5e60e6a773"
    );
    let (op, o) = golden_outputs()[1];
    assert!(m.remove_output(&op, &o));
    assert_eq!(
        hex::encode(m.finalize()),
        "54a3a32f565d0ee81ff8a42a8b33498e5c128c8824f14d245cc6aa360ecf3bd7"
    );
}

#[test]
fn bulk_rebuild_and_deltas_match_the_python_reference() {
    // The bulk path (one Montgomery multiplication per element) against the same
    // independent constant.
    let m: TxOutSetMuHash = accumulator::rebuild_from_slice(&golden_outputs()).unwrap();
    assert_eq!(
        hex::encode(m.finalize()),
        "67266573d743081f9569e8d22169b2e77a688efd48f6e5a47df73c5e60e6a773"
    );
    // Per-transaction deltas, as the XOR accumulator takes them.
    let mut d = TxOutSetMuHash::new();
    for (op, o) in golden_outputs() {
        d.apply(&accumulator::TxDelta {
            txid: op.prev_txid,
            counted_unspent_before: 0,
            added: &[(op.prev_index, o)],
            removed: &[],
        });
    }
    assert_eq!(d, m.combine(&TxOutSetMuHash::new()));
    assert_eq!(d.finalize(), m.finalize());
}

#[test]
fn bulk_rebuild_matches_incremental_on_any_thread_count() {
    // 900 outputs in 300 transactions (crypto-bigint is unoptimised in test builds).
    let mut set = Vec::new();
    for t in 0..300u32 {
        let mut txid = [0u8; 32];
        txid[..4].copy_from_slice(&t.to_le_bytes());
        for vout in 0..3u32 {
            set.push((
                Outpoint {
                    prev_txid: TxId(txid),
                    prev_index: vout,
                },
                TxOutCompact {
                    value: u64::from(t) * 3 + u64::from(vout),
                    script_hash: [vout as u8; 20],
                    script_type: if (t + vout) % 7 == 0 {
                        ScriptType::NonStandard
                    } else {
                        ScriptType::P2pkh
                    },
                },
            ));
        }
    }
    let mut incremental = TxOutSetMuHash::new();
    for (op, o) in &set {
        incremental.insert_output(op, o);
    }
    let want = incremental.finalize();
    let mut reversed = set.clone();
    reversed.reverse(); // breaks vout order within a tx: fine for MuHash alone
    let xor_ref: Accumulator = accumulator::rebuild_from_slice(&set).unwrap();
    for threads in [1, 2, 4, 8] {
        let pool = ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let m: TxOutSetMuHash = accumulator::rebuild_from_slice_with_chunk(&set, 100).unwrap();
            assert_eq!(m.finalize(), want, "{threads} threads");
            let r: TxOutSetMuHash =
                accumulator::rebuild_from_slice_with_chunk(&reversed, 64).unwrap();
            assert_eq!(r.finalize(), want, "{threads} threads, reversed");
            // Both commitments in one pass.
            let (x, m): (Accumulator, TxOutSetMuHash) =
                accumulator::rebuild(set.iter().copied()).unwrap();
            assert_eq!(x, xor_ref);
            assert_eq!(m.finalize(), want);
        });
    }
    // Removing every output returns to the empty set's digest.
    for (op, o) in &set {
        incremental.remove_output(op, o);
    }
    assert_eq!(incremental.finalize(), MuHash3072::new().finalize());
}
