//! Golden byte tests: the exact bytes of every model type, of both stored-entry kinds, of
//! the v1 table rows, and the schema hash.
//!
//! Every expected byte string is written by hand from the layouts in
//! `shared/reference/zaino.md` (§1 entries, §3 type encodings and keys), never produced by
//! the encoder under test. The test values use byte patterns that make a swapped field or a
//! wrong endianness visible: `HASH_A` is 00..1f, `HASH_B` 20..3f, `TXID` a0..bf, and every
//! integer has distinct bytes.
//!
//! The checksum constants come from an independent BLAKE2b implementation, Python's
//! `hashlib`, with this script (it rebuilds each checksummed input from the same hand-written
//! pieces as the constants below):
//!
//! ```python
//! import hashlib
//! def b2(*hexparts):
//!     return hashlib.blake2b(bytes.fromhex("".join(hexparts)), digest_size=32).hexdigest()
//! HASH_A = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
//! HASH_B = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
//! TXID   = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
//! WORK   = "0000000000000000000000000000000000000000000000000000000000" + "0a0b0c"
//! COMMIT = "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"
//! NONCE  = "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
//! SOL36  = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3"
//! HEIGHT     = "01" "0001e240"                      # Height(123456), tagged
//! HEIGHT_PRV = "01" "0001e23f"                      # Height(123455), tagged
//! TXLOC      = "01" "00012345" "0607"               # TxLocation(0x12345, 0x0607), tagged
//! OUTPOINT   = "01" + TXID + "04030201"             # Outpoint(TXID, 0x01020304), tagged
//! BLOCK_DATA = ("01" "04000000" "00f1536500000000" + HASH_B + COMMIT + "ffff001d" + NONCE
//!               + "01" "01" + SOL36)                 # BlockData, regtest solution, tagged
//! INDEX_V2 = "02" + "01" + HASH_A + "01" + HASH_B + "01" + WORK + HEIGHT
//! INDEX_V1 = "01" + "01" + HASH_A + "01" + HASH_B + "01" + WORK + "01" + HEIGHT_PRV
//! HEADER_V2 = "02" + INDEX_V2 + BLOCK_DATA
//! HEADER_V1 = "01" + INDEX_V1 + BLOCK_DATA
//! TXID_LIST = "01" "02" "01" + TXID + "01" + HASH_A
//! SCHEMA = "ab" * 32
//! METADATA = "01" + "01" "01000000" "02000000" "00000000" + SCHEMA + "01" "04"
//! TXOUTSET = ("01" "0300000000000000" "0500000000000000" "4501000000000000" + HASH_A
//!             + "00e1f50500000000")
//! print("txid_location  ", b2(TXID, TXLOC))
//! print("spent          ", b2(OUTPOINT, TXLOC))
//! print("heights        ", b2("01" + HASH_A, HEIGHT))
//! print("metadata       ", b2(b"metadata".hex(), METADATA))
//! print("accumulator    ", b2(b"tx_out_set_info_accumulator".hex(), TXOUTSET))
//! print("txids          ", b2(HEIGHT, TXID_LIST))
//! print("headers v2     ", b2(HEIGHT, HEADER_V2), len(HEADER_V2) // 2)
//! print("headers v1     ", b2(HEIGHT_PRV, HEADER_V1), len(HEADER_V1) // 2)
//! ```
//!
//! Output:
//!
//! ```text
//! txid_location   9557b99a8cf857dd08008cab94cbee19f56e2633531976ac2d6425579d3683dc
//! spent           601751fc756005bb780dd5d801cd9b7fb122fbc9bdcc89c92f6635c470bf454d
//! heights         4ccb8ae7afd5352c34740550778bd80b6252a0a929a2130df6c5e1fe972e268d
//! metadata        8f5815390d757e319f910770ee2131ea238afa8a938f379fb8b11e343d874977
//! accumulator     6d28cbee953d8075b74f008f2da75944c23b9d87e2818a60520e922a662eef9e
//! txids           bc71a308f98396298c54f58fd421e50fec19eb7379bee8fec12e488f964ad28e
//! headers v2      5d23366382167bc5324aed23cd618ecb20f9cb9c66a809ac168ab7d39b9e4c66 257
//! headers v1      6aeb0ae105ec9e6d0c7322423b5570a2fd762b9a24575c351175eb5950f58c9c 258
//! ```

use std::collections::BTreeMap;
use std::fmt::Debug;

use storage_traits::codec::{FixedLen, Versioned};
use storage_traits::entry::{StoredEntry, StoredEntryFixed, StoredEntryVar, blake2b256};
use storage_traits::kv::{Direction, KeyRange, KvIter, KvPair, KvRead};
use storage_traits::model::*;
use storage_traits::table::{
    ACCUMULATOR_KEY, Headers, Heights, METADATA_KEY, Metadata, NamedKey, Spent, Table, TableKey,
    TableRead, TxOutSetAccumulator, TxidLocation, Txids, ValueOf, decode_row, encode_row,
    schema_description, schema_hash,
};
use storage_traits::{Error, Result};

// ---------------------------------------------------------------------------------------
// Hand-written pieces (the same strings as in the Python script above).

const HASH_A: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const HASH_B: &str = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
const TXID: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";
/// ChainWork 0x0a0b0c as a 32-byte big-endian integer.
const WORK: &str = "00000000000000000000000000000000000000000000000000000000000a0b0c";
const COMMIT: &str = "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
const NONCE: &str = "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f";
const EPK: &str = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f";
const SOL36: &str = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3";
const SCRIPT20: &str = "404142434445464748494a4b4c4d4e4f50515253";
const CIPHER52: &str = "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf\
                        e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3";
const SCHEMA: &str = "abababababababababababababababababababababababababababababababab";

/// The Python checksums.
const SUM_TXID_LOCATION: &str = "9557b99a8cf857dd08008cab94cbee19f56e2633531976ac2d6425579d3683dc";
const SUM_SPENT: &str = "601751fc756005bb780dd5d801cd9b7fb122fbc9bdcc89c92f6635c470bf454d";
const SUM_HEIGHTS: &str = "4ccb8ae7afd5352c34740550778bd80b6252a0a929a2130df6c5e1fe972e268d";
const SUM_METADATA: &str = "8f5815390d757e319f910770ee2131ea238afa8a938f379fb8b11e343d874977";
const SUM_ACCUMULATOR: &str = "6d28cbee953d8075b74f008f2da75944c23b9d87e2818a60520e922a662eef9e";
const SUM_TXIDS: &str = "bc71a308f98396298c54f58fd421e50fec19eb7379bee8fec12e488f964ad28e";
const SUM_HEADERS_V2: &str = "5d23366382167bc5324aed23cd618ecb20f9cb9c66a809ac168ab7d39b9e4c66";
const SUM_HEADERS_V1: &str = "6aeb0ae105ec9e6d0c7322423b5570a2fd762b9a24575c351175eb5950f58c9c";

/// BLAKE2b-256 of `schema_description()`, pinned. Cross-checked with
/// `python3 -c 'import hashlib,sys; print(hashlib.blake2b(sys.stdin.buffer.read(), digest_size=32).hexdigest())' < schema.txt`
/// where `schema.txt` is the output of `print_schema_description` below (without the final
/// newline `println!` adds).
const SCHEMA_HASH_V1: &str = "885af1e38753e0b62eb9447f1899a1a8fae99af19606c7191a23ecc723075a24";

// ---------------------------------------------------------------------------------------
// Helpers.

fn hx(parts: &[&str]) -> Vec<u8> {
    let s: String = parts.concat().split_whitespace().collect();
    hex::decode(s).expect("test hex is valid")
}

/// `N` bytes counting up from `start`: the values behind the hex constants above.
fn seq<const N: usize>(start: u8) -> [u8; N] {
    std::array::from_fn(|i| start.wrapping_add(i as u8))
}

/// Checks `value` encodes to exactly `expected` (tag + body of `body_len` bytes) and decodes
/// back from it.
fn golden<T: Versioned + Debug + PartialEq>(value: &T, expected: &[&str], body_len: usize) {
    let expected = hx(expected);
    assert_eq!(
        expected.len(),
        1 + body_len,
        "{}: the hand-written hex has the wrong size",
        T::TYPE_NAME
    );
    assert_eq!(
        hex::encode(value.to_bytes()),
        hex::encode(&expected),
        "{} encoding",
        T::TYPE_NAME
    );
    assert_eq!(
        &T::from_bytes(&expected).expect("golden bytes decode"),
        value
    );
}

/// [`golden`] plus the type's declared fixed body length.
fn golden_fixed<T: FixedLen + Debug + PartialEq>(value: &T, expected: &[&str], body_len: usize) {
    golden(value, expected, body_len);
    assert_eq!(
        T::body_len(value.version()),
        Some(body_len),
        "{}",
        T::TYPE_NAME
    );
}

fn rejects<T: Versioned + Debug>(bytes: &[&str], reason: &str) {
    let err = T::from_bytes(&hx(bytes)).expect_err("must be rejected");
    assert!(
        matches!(err, Error::Decode { .. }),
        "{}: {err:?}",
        T::TYPE_NAME
    );
    assert!(
        err.to_string().contains(reason),
        "{}: `{err}` does not say `{reason}`",
        T::TYPE_NAME
    );
}

// Values used in several tests.

fn txloc() -> TxLocation {
    TxLocation {
        block_height: 0x0001_2345,
        tx_index: 0x0607,
    }
}

fn outpoint() -> Outpoint {
    Outpoint {
        prev_txid: TxId(seq(0xa0)),
        prev_index: 0x0102_0304,
    }
}

fn txout() -> TxOutCompact {
    TxOutCompact {
        value: 0x0102_0304_0506_0708,
        script_hash: seq(0x40),
        script_type: ScriptType::P2sh,
    }
}

fn block_index_v2() -> BlockIndex {
    BlockIndex {
        hash: BlockHash(seq(0x00)),
        parent_hash: BlockHash(seq(0x20)),
        chainwork: ChainWork(work()),
        height: Height(123_456),
    }
}

fn block_index_v1(height: Option<Height>) -> BlockIndexV1 {
    BlockIndexV1 {
        hash: BlockHash(seq(0x00)),
        parent_hash: BlockHash(seq(0x20)),
        chainwork: ChainWork(work()),
        height,
    }
}

fn work() -> [u8; 32] {
    let mut w = [0u8; 32];
    w[29..].copy_from_slice(&[0x0a, 0x0b, 0x0c]);
    w
}

fn block_data(solution: EquihashSolution) -> BlockData {
    BlockData {
        version: 4,
        time: 1_700_000_000,
        merkle_root: seq(0x20),
        block_commitments: seq(0xe0),
        bits: 0x1d00_ffff,
        nonce: seq(0x60),
        solution,
    }
}

fn regtest_solution() -> EquihashSolution {
    EquihashSolution::Regtest(seq(0x80))
}

fn standard_solution() -> EquihashSolution {
    EquihashSolution::Standard(Box::new(std::array::from_fn(|i| (i % 256) as u8)))
}

/// The 1344 solution bytes of [`standard_solution`] in hex: 00..ff five times, then 00..3f.
fn standard_solution_hex() -> String {
    (0..1344).map(|i| format!("{:02x}", i % 256)).collect()
}

const BLOCK_DATA_REGTEST: &[&str] = &[
    "01",               // BlockData tag
    "04000000",         // LE u32 version 4
    "00f1536500000000", // LE i64 time 1_700_000_000
    HASH_B,             // merkle root
    COMMIT,             // block commitments
    "ffff001d",         // LE u32 bits 0x1d00ffff
    NONCE,              // nonce
    "01",               // EquihashSolution tag
    "01",               // variant: regtest
    SOL36,
];

const BLOCK_INDEX_V2: &[&str] = &[
    "02", // BlockIndex tag v2
    "01", HASH_A, // hash, tagged
    "01", HASH_B, // parent, tagged
    "01", WORK, // chainwork, tagged
    "01", "0001e240", // Height(123456), tagged, BE
];

const BLOCK_INDEX_V1_PREV: &[&str] = &[
    "01", // BlockIndex tag v1
    "01", HASH_A, "01", HASH_B, "01", WORK, // as in v2
    "01", // Some
    "01", "0001e23f", // Height(123455), tagged, BE
];

fn header_v2() -> BlockHeaderData {
    BlockHeaderData::V2 {
        index: block_index_v2(),
        data: block_data(regtest_solution()),
    }
}

fn header_v1_prev() -> BlockHeaderData {
    BlockHeaderData::V1 {
        index: block_index_v1(Some(Height(123_455))),
        data: block_data(regtest_solution()),
    }
}

fn header_v2_hex() -> Vec<&'static str> {
    [&["02"][..], BLOCK_INDEX_V2, BLOCK_DATA_REGTEST].concat()
}

fn header_v1_prev_hex() -> Vec<&'static str> {
    [&["01"][..], BLOCK_INDEX_V1_PREV, BLOCK_DATA_REGTEST].concat()
}

fn txid_list() -> TxidList {
    TxidList(vec![TxId(seq(0xa0)), TxId(seq(0x00))])
}

fn metadata() -> DbMetadata {
    DbMetadata {
        version: DbVersion::new(1, 2, 0),
        schema_hash: [0xab; 32],
        migration_status: MigrationStatus::Complete,
    }
}

const METADATA_HEX: &[&str] = &[
    "01", // DbMetadata tag
    "01", "01000000", "02000000", "00000000", // DbVersion 1.2.0, tagged, LE
    SCHEMA,     // schema hash
    "01", "04", // MigrationStatus::Complete, tagged
];

fn txoutset() -> TxOutSetInfo {
    TxOutSetInfo {
        transactions: 3,
        transaction_outputs: 5,
        bytes_serialized: 5 * 65,
        hash_serialized: seq(0x00),
        total_zatoshis: 100_000_000,
    }
}

const TXOUTSET_HEX: &[&str] = &[
    "01",               // TxOutSetInfo tag
    "0300000000000000", // LE u64 transactions
    "0500000000000000", // LE u64 transaction_outputs
    "4501000000000000", // LE u64 bytes_serialized = 325
    HASH_A,             // hash_serialized
    "00e1f50500000000", // LE u64 total_zatoshis = 1e8
];

// ---------------------------------------------------------------------------------------
// Model types.

#[test]
fn height() {
    golden_fixed(&Height(123_456), &["01", "0001e240"], 4);
    golden_fixed(&Height(0), &["01", "00000000"], 4);
    golden_fixed(&Height::MAX, &["01", "7fffffff"], 4);
    rejects::<Height>(&["01", "80000000"], "exceeds 2^31-1");
    rejects::<Height>(&["02", "00000001"], "unsupported version tag 2");
    // Big-endian, so byte order is height order.
    assert!(Height(256).to_bytes() > Height(255).to_bytes());
}

#[test]
fn hashes_and_chainwork() {
    golden_fixed(&BlockHash(seq(0x00)), &["01", HASH_A], 32);
    golden_fixed(&TxId(seq(0xa0)), &["01", TXID], 32);
    // A big-endian U256: the low-order bytes 0a0b0c come last.
    golden_fixed(&ChainWork(work()), &["01", WORK], 32);
    rejects::<TxId>(&["01", &TXID[..62]], "unexpected end of input");
}

#[test]
fn outpoint_layout() {
    golden_fixed(&outpoint(), &["01", TXID, "04030201"], 36);
}

#[test]
fn tx_in_compact_incl_coinbase() {
    let input = TxInCompact {
        prevout_txid: TxId(seq(0xa0)),
        prevout_index: 0x0102_0304,
    };
    golden_fixed(&input, &["01", TXID, "04030201"], 36);
    assert_eq!(input.outpoint(), Some(outpoint()));

    let coinbase = TxInCompact::coinbase();
    golden_fixed(
        &coinbase,
        &[
            "01",
            "0000000000000000000000000000000000000000000000000000000000000000",
            "ffffffff",
        ],
        36,
    );
    assert!(coinbase.is_null());
    assert_eq!(coinbase.outpoint(), None);
}

#[test]
fn tx_location() {
    golden_fixed(&txloc(), &["01", "00012345", "0607"], 6);
}

#[test]
fn script_type() {
    golden_fixed(&ScriptType::P2pkh, &["01", "00"], 1);
    golden_fixed(&ScriptType::P2sh, &["01", "01"], 1);
    golden_fixed(&ScriptType::NonStandard, &["01", "ff"], 1);
    rejects::<ScriptType>(&["01", "02"], "unknown script type 0x02");
}

#[test]
fn tx_out_compact() {
    golden_fixed(&txout(), &["01", "0807060504030201", SCRIPT20, "01"], 29);
    rejects::<TxOutCompact>(
        &["01", "0807060504030201", SCRIPT20, "7f"],
        "unknown script type",
    );
}

#[test]
fn addr_script() {
    let a = AddrScript {
        hash: seq(0x40),
        script_type: ScriptType::P2pkh,
    };
    golden_fixed(&a, &["01", SCRIPT20, "00"], 21);
    assert_eq!(
        txout().addr_script().to_bytes(),
        hx(&["01", SCRIPT20, "01"])
    );
}

#[test]
fn addr_event() {
    let e = AddrEvent {
        tx_location: txloc(),
        index: 0x0809,
        flags: AddrEvent::MINED | AddrEvent::IS_INPUT,
        value: 1000,
    };
    golden_fixed(
        &e,
        &[
            "01",
            "00012345",         // BE u32 height
            "0607",             // BE u16 tx index
            "0809",             // BE u16 vout
            "05",               // MINED | IS_INPUT
            "e803000000000000", // LE u64 value
        ],
        17,
    );
    rejects::<AddrEvent>(
        &["01", "00012345", "0607", "0809", "08", "e803000000000000"],
        "unknown flag bits 0x08",
    );
}

#[test]
fn block_index_v2_body_is_104() {
    golden_fixed(&block_index_v2(), BLOCK_INDEX_V2, 104);
    rejects::<BlockIndex>(&["01"], "unsupported version tag 1");
}

#[test]
fn block_index_v1_layout() {
    golden(
        &block_index_v1(Some(Height(123_455))),
        BLOCK_INDEX_V1_PREV,
        105,
    );
    golden(
        &block_index_v1(None),
        &["01", "01", HASH_A, "01", HASH_B, "01", WORK, "00"],
        100,
    );
    rejects::<BlockIndexV1>(
        &["01", "01", HASH_A, "01", HASH_B, "01", WORK, "02"],
        "invalid Option tag 0x02",
    );
}

#[test]
fn equihash_solution_both_variants() {
    golden(&regtest_solution(), &["01", "01", SOL36], 37);
    golden(
        &standard_solution(),
        &["01", "00", &standard_solution_hex()],
        1345,
    );
    rejects::<EquihashSolution>(&["01", "02", SOL36], "unknown Equihash variant 2");
    // A standard tag with only a regtest-sized solution behind it.
    rejects::<EquihashSolution>(&["01", "00", SOL36], "unexpected end of input");
}

#[test]
fn block_data_layout() {
    golden(&block_data(regtest_solution()), BLOCK_DATA_REGTEST, 150);
    // Mainnet: 112 fixed bytes + tagged solution (1 + 1 + 1344) = 1458 (reference §3).
    let sol = standard_solution_hex();
    golden(
        &block_data(standard_solution()),
        &[
            "01",
            "04000000",
            "00f1536500000000",
            HASH_B,
            COMMIT,
            "ffff001d",
            NONCE,
            "01",
            "00",
            &sol,
        ],
        1458,
    );
    // Time is a signed LE i64.
    let mut neg = block_data(regtest_solution());
    neg.time = -2;
    assert_eq!(&neg.to_bytes()[5..13], hx(&["feffffffffffffff"]));
}

#[test]
fn block_header_data_v1_and_v2() {
    // v2: BlockIndex v2 (105 tagged) + BlockData (151 tagged).
    golden(&header_v2(), &header_v2_hex(), 256);
    // v1: BlockIndex v1 (106 tagged, optional height) + BlockData.
    golden(&header_v1_prev(), &header_v1_prev_hex(), 257);
    // Each decodes as the version it was written with, so it re-encodes to itself.
    assert_eq!(header_v2().version(), 2);
    assert_eq!(header_v1_prev().version(), 1);
    // A v2 tag in front of a v1 index is rejected, not reinterpreted.
    let mut mixed = hx(&header_v1_prev_hex());
    mixed[0] = 2;
    let err = BlockHeaderData::from_bytes(&mixed).unwrap_err();
    assert!(
        err.to_string().contains("unsupported version tag 1"),
        "{err}"
    );
}

#[test]
fn txid_list_layout() {
    golden(
        &txid_list(),
        &["01", "02", "01", TXID, "01", HASH_A],
        1 + 2 * 33,
    );
    golden(&TxidList(vec![]), &["01", "00"], 1);
    // A count larger than the input can hold is refused before allocating.
    rejects::<TxidList>(&["01", "fd0001", "01", TXID], "needs at least");
}

fn transparent_tx() -> TransparentCompactTx {
    TransparentCompactTx {
        vin: vec![
            TxInCompact::coinbase(),
            TxInCompact {
                prevout_txid: TxId(seq(0xa0)),
                prevout_index: 0x0102_0304,
            },
        ],
        vout: vec![txout()],
    }
}

const TRANSPARENT_TX_HEX: &[&str] = &[
    "01", // TransparentCompactTx tag
    "02", // CompactSize vin count
    "01",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "ffffffff", // coinbase input, tagged
    "01",
    TXID,
    "04030201", // input, tagged
    "01",       // CompactSize vout count
    "01",
    "0807060504030201",
    SCRIPT20,
    "01", // output, tagged
];

#[test]
fn transparent_compact_tx() {
    golden(&transparent_tx(), TRANSPARENT_TX_HEX, 1 + 2 * 37 + 1 + 30);
    golden(&TransparentCompactTx::default(), &["01", "00", "00"], 2);
}

#[test]
fn transparent_tx_list() {
    let list = TransparentTxList(vec![Some(transparent_tx()), None]);
    let hex = [&["01", "02", "01"][..], TRANSPARENT_TX_HEX, &["00"]].concat();
    golden(&list, &hex, 1 + 1 + 106 + 1 + 1);
}

fn sapling_spend() -> CompactSaplingSpend {
    CompactSaplingSpend {
        nullifier: seq(0x00),
    }
}

fn sapling_output() -> CompactSaplingOutput {
    CompactSaplingOutput {
        cmu: seq(0x60),
        ephemeral_key: seq(0x80),
        ciphertext: seq(0xc0),
    }
}

#[test]
fn compact_sapling_spend_and_output() {
    golden_fixed(&sapling_spend(), &["01", HASH_A], 32);
    golden_fixed(&sapling_output(), &["01", NONCE, EPK, CIPHER52], 116);
}

fn sapling_tx() -> SaplingCompactTx {
    SaplingCompactTx {
        value: Some(-5),
        spends: vec![sapling_spend()],
        outputs: vec![sapling_output()],
    }
}

const SAPLING_TX_HEX: &[&str] = &[
    "01", // SaplingCompactTx tag
    "01",
    "fbffffffffffffff", // Some(-5), LE i64
    "01",
    "01",
    HASH_A, // 1 spend, tagged
    "01",
    "01",
    NONCE,
    EPK,
    CIPHER52, // 1 output, tagged
];

#[test]
fn sapling_compact_tx() {
    golden(&sapling_tx(), SAPLING_TX_HEX, 9 + 1 + 33 + 1 + 117);
    golden(&SaplingCompactTx::default(), &["01", "00", "00", "00"], 3);
}

#[test]
fn sapling_tx_list() {
    let list = SaplingTxList(vec![None, Some(sapling_tx())]);
    let hex = [&["01", "02", "00", "01"][..], SAPLING_TX_HEX].concat();
    golden(&list, &hex, 1 + 1 + 1 + 162);
}

fn orchard_action() -> CompactOrchardAction {
    CompactOrchardAction {
        nullifier: seq(0x00),
        cmx: seq(0x20),
        ephemeral_key: seq(0xa0),
        ciphertext: seq(0xc0),
    }
}

fn orchard_tx() -> OrchardCompactTx {
    OrchardCompactTx {
        value: Some(1000),
        actions: vec![orchard_action()],
    }
}

const ORCHARD_TX_HEX: &[&str] = &[
    "01", // OrchardCompactTx tag
    "01",
    "e803000000000000", // Some(1000)
    "01",               // 1 action
    "01",
    HASH_A,
    HASH_B,
    TXID,
    CIPHER52, // the action, tagged
];

#[test]
fn compact_orchard_action() {
    golden_fixed(
        &orchard_action(),
        &["01", HASH_A, HASH_B, TXID, CIPHER52],
        148,
    );
}

#[test]
fn orchard_compact_tx_and_list() {
    golden(&orchard_tx(), ORCHARD_TX_HEX, 9 + 1 + 149);
    golden(&OrchardCompactTx::default(), &["01", "00", "00"], 2);
    let list = OrchardTxList(vec![Some(orchard_tx())]);
    let hex = [&["01", "01", "01"][..], ORCHARD_TX_HEX].concat();
    golden(&list, &hex, 1 + 1 + 160);
    golden(&OrchardTxList(vec![None]), &["01", "01", "00"], 2);
}

#[test]
fn commitment_tree_roots_sizes_data() {
    let roots = CommitmentTreeRoots {
        sapling: seq(0x00),
        orchard: seq(0x20),
    };
    let sizes = CommitmentTreeSizes {
        sapling: 0x0102_0304,
        orchard: 0x0a0b_0c0d,
    };
    golden_fixed(&roots, &["01", HASH_A, HASH_B], 64);
    golden_fixed(&sizes, &["01", "04030201", "0d0c0b0a"], 8);
    golden_fixed(
        &CommitmentTreeData { roots, sizes },
        &["01", "01", HASH_A, HASH_B, "01", "04030201", "0d0c0b0a"],
        74,
    );
}

#[test]
fn db_version() {
    golden_fixed(
        &DbVersion::new(1, 2, 0),
        &["01", "01000000", "02000000", "00000000"],
        12,
    );
    golden_fixed(
        &DbVersion::new(0x0102_0304, 0, 0xffff_ffff),
        &["01", "04030201", "00000000", "ffffffff"],
        12,
    );
}

#[test]
fn migration_status() {
    for (status, byte) in [
        (MigrationStatus::Empty, "00"),
        (MigrationStatus::PartialBuildInProgress, "01"),
        (MigrationStatus::PartialBuildComplete, "02"),
        (MigrationStatus::FinalBuildInProgress, "03"),
        (MigrationStatus::Complete, "04"),
    ] {
        golden_fixed(&status, &["01", byte], 1);
    }
    rejects::<MigrationStatus>(&["01", "05"], "unknown migration status 5");
}

#[test]
fn db_metadata_body_is_47() {
    golden_fixed(&metadata(), METADATA_HEX, 47);
}

#[test]
fn tx_out_set_info_body_is_64() {
    golden_fixed(&txoutset(), TXOUTSET_HEX, 64);
}

// ---------------------------------------------------------------------------------------
// Stored entries.

#[test]
fn stored_entry_fixed_tx_location_is_40_bytes() {
    let key = seq::<32>(0xa0);
    let entry = StoredEntryFixed::new(&key, txloc());
    let expected = hx(&[
        "01", // StoredEntry version
        "01", // TxLocation tag
        "00012345",
        "0607",            // body
        SUM_TXID_LOCATION, // BLAKE2b-256(key ‖ 0x01 ‖ body)
    ]);
    assert_eq!(expected.len(), 40);
    assert_eq!(hex::encode(entry.to_bytes()), hex::encode(&expected));
    // The checksum is BLAKE2b-256(key ‖ T tag ‖ T body), the same through our BLAKE2b.
    assert_eq!(
        hex::encode(blake2b256(&[&key, &hx(&["01", "00012345", "0607"])])),
        SUM_TXID_LOCATION
    );
    let back = StoredEntryFixed::<TxLocation>::from_bytes(&expected).unwrap();
    assert_eq!(back, entry);
    assert!(back.verify(&key));
    assert!(!back.verify(&seq::<32>(0xa1)));
    // The entry version byte and the item tag are checked.
    let mut bad = expected.clone();
    bad[0] = 2;
    let err = StoredEntryFixed::<TxLocation>::from_bytes(&bad).unwrap_err();
    assert!(
        err.to_string()
            .contains("unsupported stored-entry version 2"),
        "{err}"
    );
    let mut bad = expected;
    bad[1] = 2;
    let err = StoredEntryFixed::<TxLocation>::from_bytes(&bad).unwrap_err();
    assert!(
        err.to_string().contains("unsupported version tag 2"),
        "{err}"
    );
}

#[test]
fn stored_entry_fixed_db_metadata_is_81_bytes() {
    let key = b"metadata";
    let entry = StoredEntryFixed::new(key, metadata());
    let expected = hx(&[&["01"][..], METADATA_HEX, &[SUM_METADATA]].concat());
    assert_eq!(expected.len(), 81);
    assert_eq!(hex::encode(entry.to_bytes()), hex::encode(&expected));
    assert_eq!(
        StoredEntryFixed::<DbMetadata>::from_bytes(&expected).unwrap(),
        entry
    );
}

#[test]
fn stored_entry_var_txid_list() {
    let key = hx(&["01", "0001e240"]);
    let entry = StoredEntryVar::new(&key, txid_list());
    let expected = hx(&[
        "01", // StoredEntry version
        "44", // CompactSize 68 = len(tag ‖ body)
        "01", "02", "01", TXID, "01", HASH_A, // TxidList, tagged
        SUM_TXIDS,
    ]);
    assert_eq!(expected.len(), 1 + 1 + 68 + 32);
    assert_eq!(hex::encode(entry.to_bytes()), hex::encode(&expected));
    let back = StoredEntryVar::<TxidList>::from_bytes(&expected).unwrap();
    assert_eq!(back, entry);
    assert!(back.verify(&key));
    // The length must be canonical and must match the item exactly.
    let mut long = expected.clone();
    long[1] = 0x45;
    assert!(StoredEntryVar::<TxidList>::from_bytes(&long).is_err());
    let mut non_canonical = vec![0x01, 0xfd, 0x44, 0x00];
    non_canonical.extend_from_slice(&expected[2..]);
    let err = StoredEntryVar::<TxidList>::from_bytes(&non_canonical).unwrap_err();
    assert!(err.to_string().contains("non-canonical"), "{err}");
}

#[test]
fn stored_entry_var_with_three_byte_length() {
    // A v2 header is 257 bytes tagged: the length is CompactSize 0xfd 0x0101.
    let expected = hx(&[&["01", "fd0101"][..], &header_v2_hex(), &[SUM_HEADERS_V2]].concat());
    assert_eq!(expected.len(), 1 + 3 + 257 + 32);
    let entry = StoredEntryVar::new(&hx(&["01", "0001e240"]), header_v2());
    assert_eq!(hex::encode(entry.to_bytes()), hex::encode(&expected));
}

// ---------------------------------------------------------------------------------------
// Table rows.

fn row_golden<T: Table>(key: &T::Key, value: ValueOf<T>, key_hex: &[&str], value_hex: &[&str])
where
    ValueOf<T>: Clone + Debug + PartialEq,
{
    let (k, v) = encode_row::<T>(key, value.clone());
    assert_eq!(hex::encode(&k), hex::encode(hx(key_hex)), "{} key", T::NAME);
    assert_eq!(
        hex::encode(&v),
        hex::encode(hx(value_hex)),
        "{} value",
        T::NAME
    );
    assert_eq!(decode_row::<T>(&k, &v).unwrap(), value, "{}", T::NAME);
}

#[test]
fn row_spent() {
    // Key: Outpoint tagged, 37 bytes; value: StoredEntryFixed<TxLocation>, 40 bytes.
    row_golden::<Spent>(
        &outpoint(),
        txloc(),
        &["01", TXID, "04030201"],
        &["01", "01", "00012345", "0607", SUM_SPENT],
    );
    assert_eq!(outpoint().encode_key().len(), 37);
}

#[test]
fn row_txid_location_raw_key() {
    // Key: the raw 32-byte txid, no tag.
    row_golden::<TxidLocation>(
        &TxId(seq(0xa0)),
        txloc(),
        &[TXID],
        &["01", "01", "00012345", "0607", SUM_TXID_LOCATION],
    );
    assert!(TxId::decode_key(&hx(&["01", TXID])).is_err());
}

#[test]
fn row_heights() {
    // Key: BlockHash tagged, 33 bytes; value: StoredEntryFixed<Height>, 38 bytes.
    let (_, v) = encode_row::<Heights>(&BlockHash(seq(0x00)), Height(123_456));
    assert_eq!(v.len(), 38);
    row_golden::<Heights>(
        &BlockHash(seq(0x00)),
        Height(123_456),
        &["01", HASH_A],
        &["01", "01", "0001e240", SUM_HEIGHTS],
    );
}

#[test]
fn row_metadata() {
    row_golden::<Metadata>(
        &METADATA_KEY,
        metadata(),
        &["6d65746164617461"], // "metadata"
        &[&["01"][..], METADATA_HEX, &[SUM_METADATA]].concat(),
    );
}

#[test]
fn row_tx_out_set_accumulator_is_98_bytes() {
    let value_hex = [&["01"][..], TXOUTSET_HEX, &[SUM_ACCUMULATOR]].concat();
    assert_eq!(hx(&value_hex).len(), 98);
    row_golden::<TxOutSetAccumulator>(
        &ACCUMULATOR_KEY,
        txoutset(),
        &["74785f6f75745f7365745f696e666f5f616363756d756c61746f72"], // the ASCII name
        &value_hex,
    );
    assert_eq!(
        NamedKey::decode_key(b"tx_out_set_info_accumulator").unwrap(),
        ACCUMULATOR_KEY
    );
}

#[test]
fn row_txids() {
    row_golden::<Txids>(
        &Height(123_456),
        txid_list(),
        &["01", "0001e240"],
        &["01", "44", "01", "02", "01", TXID, "01", HASH_A, SUM_TXIDS],
    );
}

#[test]
fn row_headers() {
    row_golden::<Headers>(
        &Height(123_456),
        header_v2(),
        &["01", "0001e240"],
        &[&["01", "fd0101"][..], &header_v2_hex(), &[SUM_HEADERS_V2]].concat(),
    );
    row_golden::<Headers>(
        &Height(123_455),
        header_v1_prev(),
        &["01", "0001e23f"],
        &[
            &["01", "fd0201"][..],
            &header_v1_prev_hex(),
            &[SUM_HEADERS_V1],
        ]
        .concat(),
    );
}

/// A table held in memory: enough of [`KvRead`] to run the crate's typed row iterator over
/// golden bytes (this crate may not depend on a real backend; they run the same rows in
/// their own tests through the conformance suite).
struct MemTable(BTreeMap<Vec<u8>, Vec<u8>>);

impl KvRead for MemTable {
    fn get(&self, _table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.0.get(key).cloned())
    }
    fn range(&self, _table: &str, range: KeyRange, direction: Direction) -> Result<KvIter<'_>> {
        let rows: Vec<Result<KvPair>> = self
            .0
            .iter()
            .filter(|(k, _)| range.contains(k))
            .map(|(k, v)| Ok((k.clone(), v.clone())))
            .collect();
        Ok(match direction {
            Direction::Forward => Box::new(rows.into_iter()),
            Direction::Reverse => Box::new(rows.into_iter().rev()),
        })
    }
    fn get_dup(&self, _table: &str, key: &[u8]) -> Result<Vec<Vec<u8>>> {
        Ok(self.0.get(key).cloned().into_iter().collect())
    }
    fn len(&self, _table: &str) -> Result<u64> {
        Ok(self.0.len() as u64)
    }
}

#[test]
fn headers_table_holds_v1_and_v2_rows_side_by_side() {
    // The golden bytes of both rows, as a database written across the upgrade holds them.
    let v1_key = hx(&["01", "0001e23f"]);
    let v1_value = hx(&[
        &["01", "fd0201"][..],
        &header_v1_prev_hex(),
        &[SUM_HEADERS_V1],
    ]
    .concat());
    let v2_key = hx(&["01", "0001e240"]);
    let v2_value = hx(&[&["01", "fd0101"][..], &header_v2_hex(), &[SUM_HEADERS_V2]].concat());
    let table = MemTable(BTreeMap::from([
        (v2_key.clone(), v2_value.clone()),
        (v1_key.clone(), v1_value.clone()),
    ]));

    let rows: Vec<(Height, BlockHeaderData)> = table
        .rows::<Headers>(KeyRange::all(), Direction::Forward)
        .unwrap()
        .collect::<Result<_>>()
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (Height(123_455), header_v1_prev()),
            (Height(123_456), header_v2()),
        ]
    );
    assert_eq!(rows[0].1.height(), Some(Height(123_455)));
    assert_eq!(rows[1].1.parent_hash(), BlockHash(seq(0x20)));

    // Each verifies, and each writes back to exactly the bytes it was read from: the v1 row
    // is not silently upgraded, which would break its checksum.
    for (key, value) in [(&v1_key, &v1_value), (&v2_key, &v2_value)] {
        let entry = StoredEntryVar::<BlockHeaderData>::from_bytes(value).unwrap();
        assert!(entry.verify(key));
        let item = decode_row::<Headers>(key, value).unwrap();
        assert_eq!(
            &encode_row::<Headers>(&Height::decode_key(key).unwrap(), item).1,
            value
        );
    }
    assert_eq!(
        table.get_row::<Headers>(&Height(123_455)).unwrap(),
        Some(header_v1_prev())
    );
    assert_eq!(table.get_row::<Headers>(&Height(7)).unwrap(), None);
}

// ---------------------------------------------------------------------------------------
// Checksum mismatches and corrupt rows.

/// Asserts `err` is a checksum mismatch or corrupt row naming `table`, `key` and `height`.
fn assert_row_error(err: &Error, table: &str, key: &[u8], height: Option<u32>) {
    match err {
        Error::ChecksumMismatch {
            table: t,
            key: k,
            height: h,
        }
        | Error::Corrupt {
            table: t,
            key: k,
            height: h,
            ..
        } => {
            assert_eq!(*t, table, "{err}");
            assert_eq!(*k, hex::encode(key), "{err}");
            assert_eq!(*h, height, "{err}");
        }
        other => panic!("expected a checksum mismatch or corrupt row, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(table), "{text}");
    assert!(text.contains(&hex::encode(key)), "{text}");
    if let Some(h) = height {
        assert!(text.contains(&format!("(height {h})")), "{text}");
    }
}

#[test]
fn wrong_key_is_a_checksum_mismatch() {
    let (_, value) = encode_row::<TxidLocation>(&TxId(seq(0xa0)), txloc());
    let other = seq::<32>(0xa1);
    let err = decode_row::<TxidLocation>(&other, &value).unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err:?}");
    assert_row_error(&err, "txid_location_1_0_0", &other, None);

    // A header copied under the neighbouring height.
    let (_, value) = encode_row::<Headers>(&Height(123_456), header_v2());
    let err = decode_row::<Headers>(&hx(&["01", "0001e241"]), &value).unwrap_err();
    assert_eq!(
        err.to_string(),
        "checksum mismatch in table headers_1_0_0 at key 010001e241 (height 123457)"
    );
}

/// Flips each byte of the row's value in turn (two ways) and of its key, and checks every
/// read fails with an error naming the table, the key and the height.
fn every_flip_is_caught<T: Table>(key: &T::Key, value: ValueOf<T>, height: Option<u32>)
where
    ValueOf<T>: Debug,
{
    let (k, v) = encode_row::<T>(key, value);
    let checksum_start = v.len() - 32;
    for i in 0..v.len() {
        for mask in [0x01u8, 0xff] {
            let mut bad = v.clone();
            bad[i] ^= mask;
            let err = decode_row::<T>(&k, &bad).expect_err("a flipped byte is caught");
            assert_row_error(&err, T::NAME, &k, height);
            if i >= checksum_start {
                assert!(
                    matches!(err, Error::ChecksumMismatch { .. }),
                    "{i}: {err:?}"
                );
            }
        }
    }
    for i in 0..k.len() {
        let mut bad = k.clone();
        bad[i] ^= 0x01;
        let err = decode_row::<T>(&bad, &v).expect_err("a flipped key byte is caught");
        assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err:?}");
        // The height named is the one the (wrong) key says, when it parses as one.
        let h = T::Key::decode_key(&bad).ok().and_then(|k| k.height());
        assert_row_error(&err, T::NAME, &bad, h);
    }
}

#[test]
fn flipped_bytes_anywhere_are_caught() {
    every_flip_is_caught::<Headers>(&Height(123_456), header_v2(), Some(123_456));
    every_flip_is_caught::<Headers>(&Height(123_455), header_v1_prev(), Some(123_455));
    every_flip_is_caught::<Txids>(&Height(123_456), txid_list(), Some(123_456));
    every_flip_is_caught::<Spent>(&outpoint(), txloc(), None);
    every_flip_is_caught::<TxidLocation>(&TxId(seq(0xa0)), txloc(), None);
    every_flip_is_caught::<Heights>(&BlockHash(seq(0x00)), Height(123_456), None);
    every_flip_is_caught::<Metadata>(&METADATA_KEY, metadata(), None);
}

#[test]
fn truncated_or_extended_rows_are_corrupt() {
    let (k, v) = encode_row::<Headers>(&Height(123_456), header_v2());
    for len in 0..v.len() {
        let err = decode_row::<Headers>(&k, &v[..len]).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{len}: {err:?}");
        assert_row_error(&err, "headers_1_0_0", &k, Some(123_456));
    }
    let mut long = v.clone();
    long.push(0);
    let err = decode_row::<Headers>(&k, &long).unwrap_err();
    assert!(err.to_string().contains("1 trailing bytes"), "{err}");
}

// ---------------------------------------------------------------------------------------
// The schema hash.

#[test]
#[ignore = "prints the schema description, for recomputing SCHEMA_HASH_V1 with Python"]
fn print_schema_description() {
    println!("{}", schema_description());
}

#[test]
fn schema_hash_is_pinned() {
    assert_eq!(hex::encode(schema_hash()), SCHEMA_HASH_V1);
    assert_eq!(
        schema_hash(),
        blake2b256(&[schema_description().as_bytes()])
    );
}

/// A stand-in value type whose only difference from `BlockHeaderData` is its layout text.
#[derive(Clone, Debug, PartialEq)]
struct RelaidHeader(BlockHeaderData);

impl Versioned for RelaidHeader {
    const TYPE_NAME: &'static str = "BlockHeaderData";
    const LATEST: u8 = 2;
    const LAYOUT: &'static str = "BlockHeaderData v3: something else";
    fn encode_body(&self, out: &mut Vec<u8>) {
        self.0.encode_body(out)
    }
    fn decode_body(v: u8, r: &mut storage_traits::Reader<'_>) -> Result<Self> {
        BlockHeaderData::decode_body(v, r).map(RelaidHeader)
    }
}

struct HeadersRenamed;
impl Table for HeadersRenamed {
    const NAME: &'static str = "headers_1_0_1";
    type Key = Height;
    type Entry = StoredEntryVar<BlockHeaderData>;
}

struct HeadersRelaid;
impl Table for HeadersRelaid {
    const NAME: &'static str = "headers_1_0_0";
    type Key = Height;
    type Entry = StoredEntryVar<RelaidHeader>;
}

struct HeadersRekeyed;
impl Table for HeadersRekeyed {
    const NAME: &'static str = "headers_1_0_0";
    type Key = BlockHash;
    type Entry = StoredEntryVar<BlockHeaderData>;
}

struct HeadersFixed;
impl Table for HeadersFixed {
    const NAME: &'static str = "headers_1_0_0";
    type Key = Height;
    type Entry = StoredEntryFixed<BlockIndex>;
}

#[test]
fn schema_hash_changes_with_any_table_name_or_layout() {
    let description = schema_description();
    let line = Headers::describe();
    assert_eq!(
        description.lines().filter(|l| *l == line).count(),
        1,
        "the Headers line is in the description:\n{description}"
    );
    // 13 table declarations, then 23 nested type layouts.
    assert_eq!(
        description
            .lines()
            .filter(|l| !l.starts_with("nested | "))
            .count(),
        13
    );
    assert_eq!(description.lines().count(), 36);
    for (what, changed) in [
        ("name", HeadersRenamed::describe()),
        ("value layout", HeadersRelaid::describe()),
        ("key layout", HeadersRekeyed::describe()),
        ("entry kind", HeadersFixed::describe()),
    ] {
        assert_ne!(changed, line, "{what}");
        let hash = blake2b256(&[description.replace(&line, &changed).as_bytes()]);
        assert_ne!(
            hex::encode(hash),
            SCHEMA_HASH_V1,
            "changing the {what} of a table must change the schema hash"
        );
    }
    // A nested type's layout: TxOutCompact's value turning big-endian.
    let nested = format!("nested | {}", TxOutCompact::LAYOUT);
    assert!(description.lines().any(|l| l == nested));
    let changed = description.replace(&nested, &nested.replace("LE u64 value", "BE u64 value"));
    assert_ne!(changed, description);
    assert_ne!(
        hex::encode(blake2b256(&[changed.as_bytes()])),
        SCHEMA_HASH_V1
    );
}

fn layout<T: Versioned>() -> &'static str {
    T::LAYOUT
}

/// Every type whose bytes end up inside a v1 table row (or key), directly or nested. The table lines
/// of the description name only the outermost item type, so each nested layout must be in
/// the description on its own: changing, say, `TxOutCompact` changes stored bytes, so it
/// must change the schema hash.
#[test]
fn schema_description_covers_every_nested_layout() {
    let description = schema_description();
    for layout in [
        layout::<Height>(),
        layout::<BlockHash>(),
        layout::<TxId>(),
        layout::<ChainWork>(),
        layout::<Outpoint>(),
        layout::<TxInCompact>(),
        layout::<TxLocation>(),
        layout::<ScriptType>(),
        layout::<TxOutCompact>(),
        layout::<AddrScript>(),
        layout::<AddrEvent>(),
        layout::<BlockIndex>(),
        layout::<BlockIndexV1>(),
        layout::<EquihashSolution>(),
        layout::<BlockData>(),
        layout::<BlockHeaderData>(),
        layout::<TxidList>(),
        layout::<TransparentCompactTx>(),
        layout::<TransparentTxList>(),
        layout::<CompactSaplingSpend>(),
        layout::<CompactSaplingOutput>(),
        layout::<SaplingCompactTx>(),
        layout::<SaplingTxList>(),
        layout::<CompactOrchardAction>(),
        layout::<OrchardCompactTx>(),
        layout::<OrchardTxList>(),
        layout::<CommitmentTreeRoots>(),
        layout::<CommitmentTreeSizes>(),
        layout::<CommitmentTreeData>(),
        layout::<DbVersion>(),
        layout::<MigrationStatus>(),
        layout::<DbMetadata>(),
        layout::<TxOutSetInfo>(),
    ] {
        assert!(
            description.contains(layout),
            "the schema description (and so the schema hash) ignores `{layout}`"
        );
    }
}
