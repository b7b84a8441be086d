//! Property tests: every model type, both stored-entry kinds and every table row round-trip;
//! truncated or extended encodings are errors; arbitrary bytes never panic a decoder; and
//! the fuzz helper `decode_everything` runs over a few thousand generated inputs (valid
//! encodings, rows, and mutations of both), so CI exercises it without the fuzzer.

use std::fmt::Debug;

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use storage_traits::codec::{FixedLen, Versioned};
use storage_traits::entry::{StoredEntry, StoredEntryFixed, StoredEntryVar};
use storage_traits::fuzzing::decode_everything;
use storage_traits::model::*;
use storage_traits::table::{
    ACCUMULATOR_BUILT_HEIGHT_KEY, ACCUMULATOR_KEY, AddressHistory, CommitmentTree, Headers,
    Heights, METADATA_KEY, MIGRATION_SPENT_PROGRESS_KEY, MIGRATION_TXID_LOCATION_PROGRESS_KEY,
    Metadata, MetadataHeights, NamedKey, Orchard, Sapling, Spent, Table, TableKey, Transparent,
    TxOutSetAccumulator, TxidLocation, Txids, ValueOf, decode_row, encode_row,
};
use storage_traits::{Error, Reader};

/// Cases per round-trip property (each case also checks every prefix of the encoding).
const CASES: u32 = 128;

// ---------------------------------------------------------------------------------------
// Strategies, one per model type.

fn bytes<const N: usize>() -> impl Strategy<Value = [u8; N]> + Clone {
    vec(any::<u8>(), N).prop_map(|v| <[u8; N]>::try_from(v).expect("vec of length N"))
}

fn height() -> impl Strategy<Value = Height> + Clone {
    prop_oneof![0..=Height::MAX.0, Just(0), Just(Height::MAX.0)].prop_map(Height)
}

fn block_hash() -> impl Strategy<Value = BlockHash> + Clone {
    bytes().prop_map(BlockHash)
}

fn txid() -> impl Strategy<Value = TxId> + Clone {
    bytes().prop_map(TxId)
}

fn chainwork() -> impl Strategy<Value = ChainWork> + Clone {
    bytes().prop_map(ChainWork)
}

fn outpoint() -> impl Strategy<Value = Outpoint> + Clone {
    (txid(), any::<u32>()).prop_map(|(prev_txid, prev_index)| Outpoint {
        prev_txid,
        prev_index,
    })
}

fn tx_in() -> impl Strategy<Value = TxInCompact> + Clone {
    prop_oneof![
        1 => Just(TxInCompact::coinbase()),
        4 => (txid(), any::<u32>()).prop_map(|(prevout_txid, prevout_index)| TxInCompact {
            prevout_txid,
            prevout_index,
        }),
    ]
}

fn tx_location() -> impl Strategy<Value = TxLocation> + Clone {
    (any::<u32>(), any::<u16>()).prop_map(|(block_height, tx_index)| TxLocation {
        block_height,
        tx_index,
    })
}

fn script_type() -> impl Strategy<Value = ScriptType> + Clone {
    prop_oneof![
        Just(ScriptType::P2pkh),
        Just(ScriptType::P2sh),
        Just(ScriptType::NonStandard),
    ]
}

fn tx_out() -> impl Strategy<Value = TxOutCompact> + Clone {
    (any::<u64>(), bytes(), script_type()).prop_map(|(value, script_hash, script_type)| {
        TxOutCompact {
            value,
            script_hash,
            script_type,
        }
    })
}

fn addr_script() -> impl Strategy<Value = AddrScript> + Clone {
    (bytes(), script_type()).prop_map(|(hash, script_type)| AddrScript { hash, script_type })
}

fn addr_event() -> impl Strategy<Value = AddrEvent> + Clone {
    (tx_location(), any::<u16>(), 0u8..8, any::<u64>()).prop_map(
        |(tx_location, index, flags, value)| AddrEvent {
            tx_location,
            index,
            flags,
            value,
        },
    )
}

fn block_index() -> impl Strategy<Value = BlockIndex> + Clone {
    (block_hash(), block_hash(), chainwork(), height()).prop_map(
        |(hash, parent_hash, chainwork, height)| BlockIndex {
            hash,
            parent_hash,
            chainwork,
            height,
        },
    )
}

fn block_index_v1() -> impl Strategy<Value = BlockIndexV1> + Clone {
    (
        block_hash(),
        block_hash(),
        chainwork(),
        option::of(height()),
    )
        .prop_map(|(hash, parent_hash, chainwork, height)| BlockIndexV1 {
            hash,
            parent_hash,
            chainwork,
            height,
        })
}

fn equihash() -> impl Strategy<Value = EquihashSolution> + Clone {
    prop_oneof![
        bytes::<36>().prop_map(EquihashSolution::Regtest),
        vec(any::<u8>(), 1344).prop_map(|v| {
            EquihashSolution::Standard(Box::new(v.try_into().expect("1344 bytes")))
        }),
    ]
}

fn block_data() -> impl Strategy<Value = BlockData> + Clone {
    (
        any::<u32>(),
        any::<i64>(),
        bytes(),
        bytes(),
        any::<u32>(),
        bytes(),
        equihash(),
    )
        .prop_map(
            |(version, time, merkle_root, block_commitments, bits, nonce, solution)| BlockData {
                version,
                time,
                merkle_root,
                block_commitments,
                bits,
                nonce,
                solution,
            },
        )
}

fn header() -> impl Strategy<Value = BlockHeaderData> + Clone {
    prop_oneof![
        (block_index_v1(), block_data())
            .prop_map(|(index, data)| BlockHeaderData::V1 { index, data }),
        (block_index(), block_data()).prop_map(|(index, data)| BlockHeaderData::V2 { index, data }),
    ]
}

fn txid_list() -> impl Strategy<Value = TxidList> + Clone {
    vec(txid(), 0..6).prop_map(TxidList)
}

fn transparent_tx() -> impl Strategy<Value = TransparentCompactTx> + Clone {
    (vec(tx_in(), 0..4), vec(tx_out(), 0..4))
        .prop_map(|(vin, vout)| TransparentCompactTx { vin, vout })
}

fn transparent_list() -> impl Strategy<Value = TransparentTxList> + Clone {
    vec(option::of(transparent_tx()), 0..4).prop_map(TransparentTxList)
}

fn sapling_spend() -> impl Strategy<Value = CompactSaplingSpend> + Clone {
    bytes().prop_map(|nullifier| CompactSaplingSpend { nullifier })
}

fn sapling_output() -> impl Strategy<Value = CompactSaplingOutput> + Clone {
    (bytes(), bytes(), bytes()).prop_map(|(cmu, ephemeral_key, ciphertext)| CompactSaplingOutput {
        cmu,
        ephemeral_key,
        ciphertext,
    })
}

fn sapling_tx() -> impl Strategy<Value = SaplingCompactTx> + Clone {
    (
        option::of(any::<i64>()),
        vec(sapling_spend(), 0..3),
        vec(sapling_output(), 0..3),
    )
        .prop_map(|(value, spends, outputs)| SaplingCompactTx {
            value,
            spends,
            outputs,
        })
}

fn sapling_list() -> impl Strategy<Value = SaplingTxList> + Clone {
    vec(option::of(sapling_tx()), 0..4).prop_map(SaplingTxList)
}

fn orchard_action() -> impl Strategy<Value = CompactOrchardAction> + Clone {
    (bytes(), bytes(), bytes(), bytes()).prop_map(|(nullifier, cmx, ephemeral_key, ciphertext)| {
        CompactOrchardAction {
            nullifier,
            cmx,
            ephemeral_key,
            ciphertext,
        }
    })
}

fn orchard_tx() -> impl Strategy<Value = OrchardCompactTx> + Clone {
    (option::of(any::<i64>()), vec(orchard_action(), 0..3))
        .prop_map(|(value, actions)| OrchardCompactTx { value, actions })
}

fn orchard_list() -> impl Strategy<Value = OrchardTxList> + Clone {
    vec(option::of(orchard_tx()), 0..4).prop_map(OrchardTxList)
}

fn tree_roots() -> impl Strategy<Value = CommitmentTreeRoots> + Clone {
    (bytes(), bytes()).prop_map(|(sapling, orchard)| CommitmentTreeRoots { sapling, orchard })
}

fn tree_sizes() -> impl Strategy<Value = CommitmentTreeSizes> + Clone {
    (any::<u32>(), any::<u32>())
        .prop_map(|(sapling, orchard)| CommitmentTreeSizes { sapling, orchard })
}

fn tree_data() -> impl Strategy<Value = CommitmentTreeData> + Clone {
    (tree_roots(), tree_sizes()).prop_map(|(roots, sizes)| CommitmentTreeData { roots, sizes })
}

fn db_version() -> impl Strategy<Value = DbVersion> + Clone {
    (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(a, b, c)| DbVersion::new(a, b, c))
}

fn migration_status() -> impl Strategy<Value = MigrationStatus> + Clone {
    prop_oneof![
        Just(MigrationStatus::Empty),
        Just(MigrationStatus::PartialBuildInProgress),
        Just(MigrationStatus::PartialBuildComplete),
        Just(MigrationStatus::FinalBuildInProgress),
        Just(MigrationStatus::Complete),
    ]
}

fn db_metadata() -> impl Strategy<Value = DbMetadata> + Clone {
    (db_version(), bytes(), migration_status()).prop_map(
        |(version, schema_hash, migration_status)| DbMetadata {
            version,
            schema_hash,
            migration_status,
        },
    )
}

fn tx_out_set_info() -> impl Strategy<Value = TxOutSetInfo> + Clone {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        bytes(),
        any::<u64>(),
    )
        .prop_map(
            |(transactions, transaction_outputs, bytes_serialized, hash_serialized, total)| {
                TxOutSetInfo {
                    transactions,
                    transaction_outputs,
                    bytes_serialized,
                    hash_serialized,
                    total_zatoshis: total,
                }
            },
        )
}

fn indexed_tx() -> impl Strategy<Value = IndexedTx> + Clone {
    (
        txid(),
        option::of(transparent_tx()),
        option::of(sapling_tx()),
        option::of(orchard_tx()),
    )
        .prop_map(|(txid, transparent, sapling, orchard)| IndexedTx {
            txid,
            transparent,
            sapling,
            orchard,
        })
}

fn indexed_block() -> impl Strategy<Value = IndexedBlock> + Clone {
    (header(), vec(indexed_tx(), 0..3), tree_data()).prop_map(
        |(header, transactions, commitment_tree_data)| IndexedBlock {
            header,
            transactions,
            commitment_tree_data,
        },
    )
}

fn named_key() -> impl Strategy<Value = NamedKey> + Clone {
    prop_oneof![
        Just(METADATA_KEY),
        Just(ACCUMULATOR_KEY),
        Just(ACCUMULATOR_BUILT_HEIGHT_KEY),
        Just(MIGRATION_TXID_LOCATION_PROGRESS_KEY),
        Just(MIGRATION_SPENT_PROGRESS_KEY),
    ]
}

/// Keys of the shapes tables use: tagged heights and hashes, raw txids, ASCII names.
fn entry_key() -> impl Strategy<Value = Vec<u8>> + Clone {
    prop_oneof![
        height().prop_map(|h| h.encode_key()),
        block_hash().prop_map(|h| h.encode_key()),
        txid().prop_map(|t| t.encode_key()),
        named_key().prop_map(|k| k.encode_key()),
        vec(any::<u8>(), 0..40),
    ]
}

fn extra_bytes() -> impl Strategy<Value = Vec<u8>> + Clone {
    vec(any::<u8>(), 1..8)
}

// ---------------------------------------------------------------------------------------
// The checks.

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

/// Lengths of strict prefixes to try: all of them for short encodings, a spread (and the
/// last 64) for long ones.
fn prefix_lengths(n: usize) -> Vec<usize> {
    if n <= 400 {
        (0..n).collect()
    } else {
        (0..n).step_by(n / 200).chain(n - 64..n).collect()
    }
}

fn model_round_trip<T: Versioned + Debug + PartialEq>(
    x: &T,
    extra: &[u8],
) -> Result<(), TestCaseError> {
    let bytes = x.to_bytes();
    prop_assert_eq!(bytes[0], x.version(), "{} tag", T::TYPE_NAME);
    let back = T::from_bytes(&bytes).map_err(fail)?;
    prop_assert_eq!(&back, x);
    prop_assert_eq!(&back.to_bytes(), &bytes);
    for len in prefix_lengths(bytes.len()) {
        prop_assert!(
            T::from_bytes(&bytes[..len]).is_err(),
            "{}: a {len}-byte prefix of {} bytes decoded",
            T::TYPE_NAME,
            bytes.len()
        );
    }
    let mut long = bytes.clone();
    long.extend_from_slice(extra);
    let err = T::from_bytes(&long).expect_err("an extended encoding must not decode");
    prop_assert!(err.to_string().contains("trailing bytes"), "{}", err);
    Ok(())
}

fn fixed_len_matches<T: FixedLen>(x: &T) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        T::body_len(x.version()),
        Some(x.to_bytes().len() - 1),
        "{} body_len",
        T::TYPE_NAME
    );
    Ok(())
}

fn entry_round_trip<E>(
    item: E::Item,
    key: &[u8],
    other: &[u8],
    extra: &[u8],
) -> Result<(), TestCaseError>
where
    E: StoredEntry + Debug + PartialEq,
    E::Item: Debug + PartialEq + Clone,
{
    let item_len = item.to_bytes().len();
    let entry = E::new(key, item.clone());
    let bytes = entry.to_bytes();
    prop_assert!(bytes.len() >= 1 + item_len + 32);
    prop_assert_eq!(
        &<E as StoredEntry>::encode(key, &item),
        &bytes,
        "{}: encode differs from new + to_bytes",
        E::KIND
    );
    let back = E::from_bytes(&bytes).map_err(fail)?;
    prop_assert_eq!(&back, &entry);
    prop_assert_eq!(back.item(), &item);
    prop_assert!(
        back.verify(key),
        "{}: does not verify under its key",
        E::KIND
    );
    if other != key {
        prop_assert!(
            !back.verify(other),
            "{}: verifies under another key",
            E::KIND
        );
    }
    for len in prefix_lengths(bytes.len()) {
        prop_assert!(
            E::from_bytes(&bytes[..len]).is_err(),
            "{}: prefix {len}",
            E::KIND
        );
    }
    let mut long = bytes;
    long.extend_from_slice(extra);
    prop_assert!(E::from_bytes(&long).is_err(), "{}: extended", E::KIND);
    Ok(())
}

/// Round trips for types of variable length: the model and its `StoredEntryVar`.
macro_rules! var_types {
    ($($name:ident: $ty:ty = $strategy:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(CASES))]
            $(
                #[test]
                fn $name(
                    x in $strategy,
                    key in entry_key(),
                    other in entry_key(),
                    extra in extra_bytes(),
                ) {
                    model_round_trip::<$ty>(&x, &extra)?;
                    entry_round_trip::<StoredEntryVar<$ty>>(x, &key, &other, &extra)?;
                }
            )*
        }
    };
}

/// Round trips for fixed-length types: the model, its declared length, and both entries.
macro_rules! fixed_types {
    ($($name:ident: $ty:ty = $strategy:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(CASES))]
            $(
                #[test]
                fn $name(
                    x in $strategy,
                    key in entry_key(),
                    other in entry_key(),
                    extra in extra_bytes(),
                ) {
                    model_round_trip::<$ty>(&x, &extra)?;
                    fixed_len_matches::<$ty>(&x)?;
                    let fixed = StoredEntryFixed::<$ty>::new(&key, x.clone()).to_bytes();
                    prop_assert_eq!(fixed.len(), 1 + x.to_bytes().len() + 32);
                    entry_round_trip::<StoredEntryFixed<$ty>>(x.clone(), &key, &other, &extra)?;
                    entry_round_trip::<StoredEntryVar<$ty>>(x, &key, &other, &extra)?;
                }
            )*
        }
    };
}

fixed_types! {
    height_round_trips: Height = height();
    block_hash_round_trips: BlockHash = block_hash();
    txid_round_trips: TxId = txid();
    chainwork_round_trips: ChainWork = chainwork();
    outpoint_round_trips: Outpoint = outpoint();
    tx_in_round_trips: TxInCompact = tx_in();
    tx_location_round_trips: TxLocation = tx_location();
    script_type_round_trips: ScriptType = script_type();
    tx_out_round_trips: TxOutCompact = tx_out();
    addr_script_round_trips: AddrScript = addr_script();
    addr_event_round_trips: AddrEvent = addr_event();
    block_index_round_trips: BlockIndex = block_index();
    sapling_spend_round_trips: CompactSaplingSpend = sapling_spend();
    sapling_output_round_trips: CompactSaplingOutput = sapling_output();
    orchard_action_round_trips: CompactOrchardAction = orchard_action();
    tree_roots_round_trip: CommitmentTreeRoots = tree_roots();
    tree_sizes_round_trip: CommitmentTreeSizes = tree_sizes();
    tree_data_round_trips: CommitmentTreeData = tree_data();
    db_version_round_trips: DbVersion = db_version();
    migration_status_round_trips: MigrationStatus = migration_status();
    db_metadata_round_trips: DbMetadata = db_metadata();
    tx_out_set_info_round_trips: TxOutSetInfo = tx_out_set_info();
}

var_types! {
    block_index_v1_round_trips: BlockIndexV1 = block_index_v1();
    equihash_round_trips: EquihashSolution = equihash();
    block_data_round_trips: BlockData = block_data();
    header_round_trips: BlockHeaderData = header();
    txid_list_round_trips: TxidList = txid_list();
    transparent_tx_round_trips: TransparentCompactTx = transparent_tx();
    transparent_list_round_trips: TransparentTxList = transparent_list();
    sapling_tx_round_trips: SaplingCompactTx = sapling_tx();
    sapling_list_round_trips: SaplingTxList = sapling_list();
    orchard_tx_round_trips: OrchardCompactTx = orchard_tx();
    orchard_list_round_trips: OrchardTxList = orchard_list();
    indexed_tx_round_trips: IndexedTx = indexed_tx();
    indexed_block_round_trips: IndexedBlock = indexed_block();
}

// ---------------------------------------------------------------------------------------
// Table rows.

fn row_round_trip<T: Table>(
    key: &T::Key,
    value: ValueOf<T>,
    other_key: &[u8],
) -> Result<(), TestCaseError>
where
    ValueOf<T>: Clone + Debug + PartialEq,
{
    let (k, v) = encode_row::<T>(key, value.clone());
    prop_assert_eq!(decode_row::<T>(&k, &v).map_err(fail)?, value);
    if other_key != k.as_slice() {
        match decode_row::<T>(other_key, &v) {
            Err(Error::ChecksumMismatch { table, key, .. }) => {
                prop_assert_eq!(table, T::NAME);
                prop_assert_eq!(key, hex::encode(other_key));
            }
            other => prop_assert!(false, "{}: wrong key gave {other:?}", T::NAME),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Reading one transaction or one output through the index of a list's encoding gives
    /// what decoding the whole list gives, including "no such transaction / output".
    #[test]
    fn encoded_transparent_list_reads_what_the_decoder_reads(
        list in vec(option::of(transparent_tx()), 0..12).prop_map(TransparentTxList),
    ) {
        let encoded = EncodedTransparentList::new(list.to_bytes()).unwrap();
        prop_assert_eq!(encoded.len(), list.0.len());
        prop_assert_eq!(&encoded.decode().unwrap(), &list);
        for i in 0..=list.0.len() {
            let tx = list.0.get(i).cloned().flatten();
            prop_assert_eq!(encoded.tx(i).unwrap(), tx.clone());
            for vout in 0..5u32 {
                let want = tx.as_ref().and_then(|t| t.vout.get(vout as usize)).copied();
                prop_assert_eq!(encoded.output(i, vout).unwrap(), want);
            }
        }
    }

    #[test]
    fn rows_round_trip_and_bind_their_key(
        h in height(),
        hash in block_hash(),
        op in outpoint(),
        t in txid(),
        addr in addr_script(),
        named in named_key(),
        other in entry_key(),
        hdr in header(),
        txids in txid_list(),
        tlist in transparent_list(),
        (slist, olist) in (sapling_list(), orchard_list()),
        (tree, loc, info, event, meta) in (tree_data(), tx_location(), tx_out_set_info(), addr_event(), db_metadata()),
    ) {
        row_round_trip::<Headers>(&h, hdr, &other)?;
        row_round_trip::<Txids>(&h, txids, &other)?;
        row_round_trip::<Transparent>(&h, tlist, &other)?;
        row_round_trip::<Sapling>(&h, slist, &other)?;
        row_round_trip::<Orchard>(&h, olist, &other)?;
        row_round_trip::<CommitmentTree>(&h, tree, &other)?;
        row_round_trip::<Heights>(&hash, h, &other)?;
        row_round_trip::<Spent>(&op, loc, &other)?;
        row_round_trip::<TxidLocation>(&t, loc, &other)?;
        row_round_trip::<TxOutSetAccumulator>(&named, info, &other)?;
        row_round_trip::<AddressHistory>(&addr, event, &other)?;
        row_round_trip::<Metadata>(&named, meta, &other)?;
        row_round_trip::<MetadataHeights>(&named, h, &other)?;
    }
}

// ---------------------------------------------------------------------------------------
// Arbitrary bytes.

/// Feeds `bytes` to every decoder, the model, both entries where they apply, and the
/// CompactSize reader. Any outcome but a panic is fine here; `decode_everything` below also
/// checks what the Ok values are.
fn every_decoder(bytes: &[u8]) {
    macro_rules! all {
        (fixed: $($f:ty),*; var: $($v:ty),*) => {
            $(
                let _ = <$f>::from_bytes(bytes);
                let _ = StoredEntryFixed::<$f>::from_bytes(bytes);
                let _ = StoredEntryVar::<$f>::from_bytes(bytes);
            )*
            $(
                let _ = <$v>::from_bytes(bytes);
                let _ = StoredEntryVar::<$v>::from_bytes(bytes);
            )*
        };
    }
    all!(
        fixed: Height, BlockHash, TxId, ChainWork, Outpoint, TxInCompact, TxLocation,
            ScriptType, TxOutCompact, AddrScript, AddrEvent, BlockIndex, CompactSaplingSpend,
            CompactSaplingOutput, CompactOrchardAction, CommitmentTreeRoots, CommitmentTreeSizes,
            CommitmentTreeData, DbVersion, MigrationStatus, DbMetadata, TxOutSetInfo;
        var: BlockIndexV1, EquihashSolution, BlockData, BlockHeaderData, TxidList,
            TransparentCompactTx, TransparentTxList, SaplingCompactTx, SaplingTxList,
            OrchardCompactTx, OrchardTxList, IndexedTx, IndexedBlock
    );
    let mut r = Reader::new(bytes, "CompactSize");
    let _ = r.compact_size();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..300)) {
        every_decoder(&bytes);
    }

    /// Random bodies behind plausible tags and lengths get further into the decoders.
    #[test]
    fn tagged_arbitrary_bytes_never_panic(
        entry in 0u8..3,
        tag in 0u8..4,
        len in any::<u8>(),
        body in vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = Vec::new();
        if entry > 0 {
            bytes.push(entry);
        }
        if entry == 2 {
            bytes.push(len.min(0xfc));
        }
        bytes.push(tag);
        bytes.extend_from_slice(&body);
        every_decoder(&bytes);
    }
}

// ---------------------------------------------------------------------------------------
// The fuzz helper over generated inputs.

/// A row as `decode_everything` reads it: key length, key, value.
fn row_input<T: Table>(key: &T::Key, value: ValueOf<T>) -> Vec<u8> {
    let (k, v) = encode_row::<T>(key, value);
    let mut out = vec![k.len() as u8];
    out.extend_from_slice(&k);
    out.extend_from_slice(&v);
    out
}

/// Valid encodings of every kind `decode_everything` reads: models, entries and rows.
fn valid_input() -> impl Strategy<Value = Vec<u8>> {
    fn enc<T: Versioned>(s: impl Strategy<Value = T> + 'static) -> BoxedStrategy<Vec<u8>> {
        s.prop_map(|x| x.to_bytes()).boxed()
    }
    fn var<T: Versioned + Debug>(s: impl Strategy<Value = T> + 'static) -> BoxedStrategy<Vec<u8>> {
        (entry_key(), s)
            .prop_map(|(k, x)| StoredEntryVar::new(&k, x).to_bytes())
            .boxed()
    }
    fn fixed<T: FixedLen + Debug>(s: impl Strategy<Value = T> + 'static) -> BoxedStrategy<Vec<u8>> {
        (entry_key(), s)
            .prop_map(|(k, x)| StoredEntryFixed::new(&k, x).to_bytes())
            .boxed()
    }
    prop_oneof![
        enc(height()),
        enc(outpoint()),
        enc(tx_out()),
        enc(addr_event()),
        enc(block_index()),
        enc(block_index_v1()),
        enc(header()),
        enc(transparent_list()),
        enc(sapling_list()),
        enc(orchard_list()),
        enc(tree_data()),
        enc(db_metadata()),
        enc(tx_out_set_info()),
        enc(indexed_block()),
        var(header()),
        var(txid_list()),
        var(transparent_list()),
        var(sapling_list()),
        var(orchard_list()),
        fixed(tree_data()),
        fixed(tx_location()),
        fixed(db_metadata()),
        fixed(addr_event()),
        (height(), header())
            .prop_map(|(h, v)| row_input::<Headers>(&h, v))
            .boxed(),
        (height(), txid_list())
            .prop_map(|(h, v)| row_input::<Txids>(&h, v))
            .boxed(),
        (height(), transparent_list())
            .prop_map(|(h, v)| row_input::<Transparent>(&h, v))
            .boxed(),
        (height(), sapling_list())
            .prop_map(|(h, v)| row_input::<Sapling>(&h, v))
            .boxed(),
        (height(), orchard_list())
            .prop_map(|(h, v)| row_input::<Orchard>(&h, v))
            .boxed(),
        (height(), tree_data())
            .prop_map(|(h, v)| row_input::<CommitmentTree>(&h, v))
            .boxed(),
        (block_hash(), height())
            .prop_map(|(k, v)| row_input::<Heights>(&k, v))
            .boxed(),
        (outpoint(), tx_location())
            .prop_map(|(k, v)| row_input::<Spent>(&k, v))
            .boxed(),
        (txid(), tx_location())
            .prop_map(|(k, v)| row_input::<TxidLocation>(&k, v))
            .boxed(),
        (named_key(), tx_out_set_info())
            .prop_map(|(k, v)| row_input::<TxOutSetAccumulator>(&k, v))
            .boxed(),
        (addr_script(), addr_event())
            .prop_map(|(k, v)| row_input::<AddressHistory>(&k, v))
            .boxed(),
        (named_key(), db_metadata())
            .prop_map(|(k, v)| row_input::<Metadata>(&k, v))
            .boxed(),
        (named_key(), height())
            .prop_map(|(k, v)| row_input::<MetadataHeights>(&k, v))
            .boxed(),
        (0u8..=8, any::<u64>())
            .prop_map(|(prefix, n)| {
                // CompactSize-shaped input: canonical or not.
                let mut out = vec![[0xfc, 0xfd, 0xfe, 0xff][usize::from(prefix % 4)]];
                out.extend_from_slice(&n.to_le_bytes()[..usize::from(prefix)]);
                out
            })
            .boxed(),
    ]
}

/// A mutation applied to a valid input: none, flip a byte, cut the tail, append bytes,
/// or change the leading key length.
#[derive(Clone, Debug)]
enum Mutation {
    None,
    Flip(prop::sample::Index, u8),
    Truncate(prop::sample::Index),
    Extend(Vec<u8>),
    KeyLen(u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => Just(Mutation::None),
        3 => (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        2 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        1 => extra_bytes().prop_map(Mutation::Extend),
        1 => any::<u8>().prop_map(Mutation::KeyLen),
    ]
}

fn apply(mut input: Vec<u8>, m: &Mutation) -> Vec<u8> {
    match m {
        Mutation::None => {}
        Mutation::Flip(i, mask) if !input.is_empty() => {
            let i = i.index(input.len());
            input[i] ^= mask;
        }
        Mutation::Truncate(i) if !input.is_empty() => input.truncate(i.index(input.len())),
        Mutation::Extend(extra) => input.extend_from_slice(extra),
        Mutation::KeyLen(n) if !input.is_empty() => input[0] = *n,
        _ => {}
    }
    input
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// The fuzz target's body over valid and mutated inputs: every decoder, every entry,
    /// every row, with the canonical re-encoding assertions.
    #[test]
    fn decode_everything_on_generated_inputs(input in valid_input(), m in mutation()) {
        decode_everything(&apply(input, &m));
    }

    #[test]
    fn decode_everything_on_random_bytes(bytes in vec(any::<u8>(), 0..200)) {
        decode_everything(&bytes);
    }
}

/// Writes a seed corpus for the fuzzer: valid models, entries and rows of every table, which
/// libFuzzer would otherwise take a long time to build up byte by byte. Run with
/// `STRATA_FUZZ_SEEDS=fuzz/corpus/decoders cargo test -p storage-traits --test props
/// write_fuzz_seeds -- --ignored` (see the crate README).
#[test]
#[ignore = "writes files; run by hand before fuzzing"]
fn write_fuzz_seeds() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let dir = std::env::var_os("STRATA_FUZZ_SEEDS").expect("set STRATA_FUZZ_SEEDS to a directory");
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("create the seed directory");
    let mut runner = TestRunner::deterministic();
    let strategy = valid_input();
    for i in 0..512 {
        let input = strategy
            .new_tree(&mut runner)
            .expect("generate a seed")
            .current();
        std::fs::write(dir.join(format!("seed-{i:04}")), input).expect("write a seed");
    }
}
