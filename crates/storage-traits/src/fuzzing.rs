//! Fuzzing support: one entry point that feeds a byte string to every decoder of the crate
//! and checks what comes back.
//!
//! This module is not API (it is hidden from the docs). It exists so that the cargo-fuzz
//! target in `crates/storage-traits/fuzz/` and an ordinary test share one body. Unlike the
//! rest of the crate it *does* panic: a panic here is a finding. What it checks:
//!
//! - no decoder panics or allocates beyond what the input describes (the fuzzer runs with a
//!   malloc limit);
//! - every format is canonical: any value a decoder accepts re-encodes to exactly the input
//!   (CompactSize, every model type, both entry kinds, every table key and row);
//! - a fixed-length type decodes from exactly `1 + body_len(tag)` bytes;
//! - a table row error names the table, the key in hex and, for height keys, the height;
//! - a row whose checksum is recomputed over its key and item decodes, and the same value
//!   under any other key is a checksum mismatch.

use std::fmt::Debug;

use crate::codec::{FixedLen, MAX_COMPACT_SIZE, Reader, Versioned, put_compact_size};
use crate::entry::{StoredEntry, StoredEntryFixed, StoredEntryVar, blake2b256};
use crate::error::Error;
use crate::model::*;
use crate::table::*;

/// Feeds `data` to every decoder of the crate; panics on any broken invariant (see the
/// module docs).
pub fn decode_everything(data: &[u8]) {
    compact_size(data);
    models(data);
    entries(data);
    keys(data);
    rows(data);
}

fn compact_size(data: &[u8]) {
    let mut r = Reader::new(data, "CompactSize");
    if let Ok(n) = r.compact_size() {
        let used = data.len() - r.remaining();
        let mut canonical = Vec::new();
        put_compact_size(&mut canonical, n);
        assert_eq!(
            canonical,
            data[..used],
            "CompactSize {n} accepted from a non-canonical encoding"
        );
        assert!(n <= MAX_COMPACT_SIZE, "CompactSize {n} above the maximum");
    }
    // A count is only accepted when the rest of the input could hold that many items.
    for min_item_len in [0, 1, 33, 117, 149] {
        let mut r = Reader::new(data, "count");
        if let Ok(n) = r.count(min_item_len) {
            assert!(
                n.saturating_mul(min_item_len.max(1)) <= r.remaining(),
                "count {n} of {min_item_len}-byte items accepted with {} bytes left",
                r.remaining()
            );
        }
    }
}

fn model<T: Versioned + Debug>(data: &[u8]) {
    if let Ok(value) = T::from_bytes(data) {
        assert_eq!(
            value.to_bytes(),
            data,
            "{}: {value:?} was decoded from bytes it does not re-encode to",
            T::TYPE_NAME
        );
        assert_eq!(value.version(), data[0], "{}: version tag", T::TYPE_NAME);
    }
}

/// The indexed encoding agrees with the full decoder: every list the decoder accepts is
/// indexed, and every transaction and output read through the index is the decoder's.
fn encoded_transparent_list(data: &[u8]) {
    let decoded = TransparentTxList::from_bytes(data);
    // Indexed inside a buffer with bytes around it, as a stored row is read: any read
    // outside the item would see them and disagree with the decoder.
    let mut buffer = vec![0xFF];
    buffer.extend_from_slice(data);
    buffer.extend_from_slice(&[0xFF; 32]);
    let Ok(encoded) = EncodedTransparentList::within(buffer, 1..1 + data.len()) else {
        assert!(
            decoded.is_err(),
            "TransparentTxList: decoded but not indexed: {decoded:?}"
        );
        return;
    };
    let Ok(list) = decoded else {
        // Indexing checks the layout, not every field: a bad field fails where it is read.
        for i in 0..encoded.len() {
            let _ = encoded.tx(i);
            let _ = encoded.output(i, 0);
        }
        return;
    };
    assert_eq!(
        encoded.len(),
        list.0.len(),
        "EncodedTransparentList: length"
    );
    for (i, tx) in list.0.iter().enumerate() {
        assert_eq!(encoded.tx(i).ok(), Some(tx.clone()), "transaction {i}");
        let outputs = tx.as_ref().map_or(0, |t| t.vout.len());
        for vout in 0..=outputs {
            let want = tx.as_ref().and_then(|t| t.vout.get(vout)).copied();
            assert_eq!(
                encoded.output(i, vout as u32).ok(),
                Some(want),
                "output {i}:{vout}"
            );
        }
    }
    assert_eq!(encoded.tx(list.0.len()).ok(), Some(None), "past the end");
}

fn fixed_model<T: FixedLen + Debug>(data: &[u8]) {
    model::<T>(data);
    if T::from_bytes(data).is_ok() {
        assert_eq!(
            T::body_len(data[0]),
            Some(data.len() - 1),
            "{}: body_len disagrees with the decoded length",
            T::TYPE_NAME
        );
    }
}

fn models(data: &[u8]) {
    fixed_model::<Height>(data);
    fixed_model::<BlockHash>(data);
    fixed_model::<TxId>(data);
    fixed_model::<ChainWork>(data);
    fixed_model::<Outpoint>(data);
    fixed_model::<TxInCompact>(data);
    fixed_model::<TxLocation>(data);
    fixed_model::<ScriptType>(data);
    fixed_model::<TxOutCompact>(data);
    fixed_model::<AddrScript>(data);
    fixed_model::<AddrEvent>(data);
    fixed_model::<BlockIndex>(data);
    model::<BlockIndexV1>(data);
    model::<EquihashSolution>(data);
    model::<BlockData>(data);
    model::<BlockHeaderData>(data);
    model::<TxidList>(data);
    model::<TransparentCompactTx>(data);
    model::<TransparentTxList>(data);
    encoded_transparent_list(data);
    fixed_model::<CompactSaplingSpend>(data);
    fixed_model::<CompactSaplingOutput>(data);
    model::<SaplingCompactTx>(data);
    model::<SaplingTxList>(data);
    fixed_model::<CompactOrchardAction>(data);
    model::<OrchardCompactTx>(data);
    model::<OrchardTxList>(data);
    fixed_model::<CommitmentTreeRoots>(data);
    fixed_model::<CommitmentTreeSizes>(data);
    fixed_model::<CommitmentTreeData>(data);
    fixed_model::<DbVersion>(data);
    fixed_model::<MigrationStatus>(data);
    fixed_model::<DbMetadata>(data);
    fixed_model::<TxOutSetInfo>(data);
    model::<IndexedTx>(data);
    model::<IndexedBlock>(data);
}

fn entry<E>(data: &[u8])
where
    E: StoredEntry + Debug,
    E::Item: Clone + Debug,
{
    if let Ok(entry) = E::from_bytes(data) {
        assert_eq!(
            entry.to_bytes(),
            data,
            "{}: {entry:?} was decoded from bytes it does not re-encode to",
            E::KIND
        );
        // Rewrapping the item under a key gives an entry that verifies under that key and
        // not under another.
        let key = &data[..data.len().min(5)];
        let fresh = E::new(key, entry.item().clone());
        assert!(
            fresh.verify(key),
            "{}: a fresh entry does not verify",
            E::KIND
        );
        let mut other = key.to_vec();
        other.push(0);
        assert!(
            !fresh.verify(&other),
            "{}: an entry verifies under another key",
            E::KIND
        );
    }
}

fn both_entries<T: FixedLen + Clone + Debug>(data: &[u8]) {
    entry::<StoredEntryFixed<T>>(data);
    entry::<StoredEntryVar<T>>(data);
}

fn entries(data: &[u8]) {
    // Every value type a table stores, in every entry kind it can be stored in (only
    // fixed-length types fit `StoredEntryFixed`).
    entry::<StoredEntryVar<BlockHeaderData>>(data);
    entry::<StoredEntryVar<TxidList>>(data);
    entry::<StoredEntryVar<TransparentTxList>>(data);
    entry::<StoredEntryVar<SaplingTxList>>(data);
    entry::<StoredEntryVar<OrchardTxList>>(data);
    both_entries::<CommitmentTreeData>(data);
    both_entries::<Height>(data);
    both_entries::<TxLocation>(data);
    both_entries::<TxOutSetInfo>(data);
    both_entries::<AddrEvent>(data);
    both_entries::<DbMetadata>(data);
    // And the composite types that are only ever nested, so a broken inner length shows
    // up on its own.
    both_entries::<BlockIndex>(data);
    entry::<StoredEntryVar<BlockIndexV1>>(data);
    entry::<StoredEntryVar<BlockData>>(data);
    entry::<StoredEntryVar<IndexedBlock>>(data);
}

fn key<K: TableKey>(data: &[u8]) {
    if let Ok(k) = K::decode_key(data) {
        assert_eq!(
            k.encode_key(),
            data,
            "key ({}) decoded from bytes it does not re-encode to",
            K::LAYOUT
        );
    }
}

fn keys(data: &[u8]) {
    key::<Height>(data);
    key::<BlockHash>(data);
    key::<Outpoint>(data);
    key::<TxId>(data);
    key::<AddrScript>(data);
    key::<NamedKey>(data);
}

/// Checks that `err`, from reading row `key` of `T`, names the table, the key and the height.
fn assert_names_row<T: Table>(err: &Error, key: &[u8]) {
    match err {
        Error::Corrupt {
            table,
            key: k,
            height,
            ..
        }
        | Error::ChecksumMismatch {
            table,
            key: k,
            height,
        } => {
            assert_eq!(*table, T::NAME, "row error names the wrong table");
            assert_eq!(*k, hex::encode(key), "row error names the wrong key");
            let expected = T::Key::decode_key(key).ok().and_then(|k| k.height());
            assert_eq!(*height, expected, "row error names the wrong height");
        }
        other => panic!("{}: unexpected error kind for a row: {other}", T::NAME),
    }
}

/// Checks that `item`, read from row (`key`, `value`) of `T`, writes back to the same bytes.
fn assert_row_reencodes<T: Table>(key: &[u8], value: &[u8], item: ValueOf<T>)
where
    ValueOf<T>: Clone,
{
    let fresh = T::Entry::new(key, item.clone());
    assert_eq!(
        fresh.to_bytes(),
        value,
        "{}: row value does not re-encode",
        T::NAME
    );
    if let Ok(k) = T::Key::decode_key(key) {
        let (key_bytes, value_bytes) = encode_row::<T>(&k, item);
        assert_eq!(key_bytes, key, "{}: row key does not re-encode", T::NAME);
        assert_eq!(value_bytes, value, "{}: row does not re-encode", T::NAME);
    }
}

fn row<T: Table>(key: &[u8], value: &[u8])
where
    ValueOf<T>: Clone,
{
    match decode_row::<T>(key, value) {
        Ok(item) => assert_row_reencodes::<T>(key, value, item),
        Err(e) => assert_names_row::<T>(&e, key),
    }

    // The checksum is checked over the stored item bytes: with it recomputed over them, a
    // row decodes only if those bytes are the canonical encoding of what they decode to.
    if let Ok((item, _)) = T::Entry::split(value) {
        let mut fixed = value.to_vec();
        let n = fixed.len();
        fixed[n - 32..].copy_from_slice(&blake2b256(&[key, item]));
        match decode_row::<T>(key, &fixed) {
            Ok(item) => assert_row_reencodes::<T>(key, &fixed, item),
            Err(e) => assert_names_row::<T>(&e, key),
        }
    }

    // The fuzzer cannot forge a BLAKE2b checksum, so give it the Ok path: the same value with
    // its checksum recomputed over the key and the item must decode and verify.
    if let Ok(entry) = T::Entry::from_bytes(value) {
        let mut fixed = value.to_vec();
        let n = fixed.len();
        fixed[n - 32..].copy_from_slice(&blake2b256(&[key, &entry.item().to_bytes()]));
        match decode_row::<T>(key, &fixed) {
            Ok(item) => assert_row_reencodes::<T>(key, &fixed, item),
            Err(e) => panic!("{}: a row with a correct checksum fails: {e}", T::NAME),
        }
        let mut other_key = key.to_vec();
        other_key.push(0x01);
        match decode_row::<T>(&other_key, &fixed) {
            Err(e @ Error::ChecksumMismatch { .. }) => assert_names_row::<T>(&e, &other_key),
            Err(e) => panic!("{}: wrong key gave the wrong error: {e}", T::NAME),
            Ok(_) => panic!("{}: a row verified under another key", T::NAME),
        }
    }
}

fn rows(data: &[u8]) {
    // The first byte says how much of the rest is the key (capped at what is there).
    let Some((&key_len, rest)) = data.split_first() else {
        return;
    };
    let (key, value) = rest.split_at(usize::from(key_len).min(rest.len()));
    row::<Headers>(key, value);
    row::<Txids>(key, value);
    row::<Transparent>(key, value);
    row::<Sapling>(key, value);
    row::<Orchard>(key, value);
    row::<CommitmentTree>(key, value);
    row::<Heights>(key, value);
    row::<Spent>(key, value);
    row::<TxidLocation>(key, value);
    row::<TxOutSetAccumulator>(key, value);
    row::<AddressHistory>(key, value);
    row::<Metadata>(key, value);
    row::<MetadataHeights>(key, value);
}
