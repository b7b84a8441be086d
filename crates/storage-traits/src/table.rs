//! Typed tables: the [`Table`] trait, the v1 table set, the schema hash, and typed access on
//! top of the key-value traits.
//!
//! A table declaration names the physical table (with its version suffix), the key type and
//! the stored-entry type. Reading a row decodes the entry and verifies its checksum against
//! the key; a failure names the table, the key in hex and, for height-keyed tables, the
//! height.

use std::marker::PhantomData;

use crate::codec::Versioned;
use crate::entry::{StoredEntry, StoredEntryFixed, StoredEntryVar, blake2b256};
use crate::error::{Error, Result};
use crate::kv::{Direction, KeyRange, KvIter, KvRead, KvWrite, PutOutcome, TableKind, TableSpec};
use crate::model::*;

/// How a key type is laid out in a table.
pub trait TableKey: Sized {
    /// A description of the key bytes, for the schema hash.
    const LAYOUT: &'static str;
    /// The key's bytes.
    fn encode_key(&self) -> Vec<u8>;
    /// Parses key bytes.
    fn decode_key(bytes: &[u8]) -> Result<Self>;
    /// The height the key names, for error messages.
    fn height(&self) -> Option<u32> {
        None
    }
}

impl TableKey for Height {
    const LAYOUT: &'static str = "Height(tagged): 0x01 || BE u32";
    fn encode_key(&self) -> Vec<u8> {
        self.to_bytes()
    }
    fn decode_key(bytes: &[u8]) -> Result<Self> {
        Height::from_bytes(bytes)
    }
    fn height(&self) -> Option<u32> {
        Some(self.0)
    }
}

impl TableKey for BlockHash {
    const LAYOUT: &'static str = "BlockHash(tagged): 0x01 || [32]";
    fn encode_key(&self) -> Vec<u8> {
        self.to_bytes()
    }
    fn decode_key(bytes: &[u8]) -> Result<Self> {
        BlockHash::from_bytes(bytes)
    }
}

impl TableKey for Outpoint {
    const LAYOUT: &'static str = "Outpoint(tagged): 0x01 || [32] txid || LE u32";
    fn encode_key(&self) -> Vec<u8> {
        self.to_bytes()
    }
    fn decode_key(bytes: &[u8]) -> Result<Self> {
        Outpoint::from_bytes(bytes)
    }
}

/// `txid_location` is keyed by the raw 32-byte txid, without a tag (as in the reference).
impl TableKey for TxId {
    const LAYOUT: &'static str = "TxId raw: [32] internal order";
    fn encode_key(&self) -> Vec<u8> {
        self.0.to_vec()
    }
    fn decode_key(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::decode("TxId", format!("key of {} bytes, want 32", bytes.len())))?;
        Ok(TxId(arr))
    }
}

impl TableKey for AddrScript {
    const LAYOUT: &'static str = "AddrScript(tagged): 0x01 || [20] || u8";
    fn encode_key(&self) -> Vec<u8> {
        self.to_bytes()
    }
    fn decode_key(bytes: &[u8]) -> Result<Self> {
        AddrScript::from_bytes(bytes)
    }
}

/// A key that is a fixed ASCII name (metadata rows, the accumulator singleton).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NamedKey(pub &'static str);

impl TableKey for NamedKey {
    const LAYOUT: &'static str = "ASCII name";
    fn encode_key(&self) -> Vec<u8> {
        self.0.as_bytes().to_vec()
    }
    fn decode_key(bytes: &[u8]) -> Result<Self> {
        KNOWN_NAMED_KEYS
            .iter()
            .find(|k| k.as_bytes() == bytes)
            .map(|k| NamedKey(k))
            .ok_or_else(|| Error::decode("NamedKey", format!("unknown key {}", hex::encode(bytes))))
    }
}

/// The key of the metadata row.
pub const METADATA_KEY: NamedKey = NamedKey("metadata");
/// The key of the accumulator singleton.
pub const ACCUMULATOR_KEY: NamedKey = NamedKey("tx_out_set_info_accumulator");
/// The metadata key of the accumulator's freshness watermark: the height it was built to.
pub const ACCUMULATOR_BUILT_HEIGHT_KEY: NamedKey = NamedKey("_tx_out_set_accumulator_built_height");
/// Stage A progress of the v1.1 → v1.2 migration: the next height to process.
pub const MIGRATION_TXID_LOCATION_PROGRESS_KEY: NamedKey =
    NamedKey("_migration_txid_location_progress_1_2_0_next_height");
/// Stage B progress of the v1.1 → v1.2 migration: the next height to process.
pub const MIGRATION_SPENT_PROGRESS_KEY: NamedKey =
    NamedKey("_migration_spent_progress_1_2_0_next_height");

const KNOWN_NAMED_KEYS: &[&str] = &[
    METADATA_KEY.0,
    ACCUMULATOR_KEY.0,
    ACCUMULATOR_BUILT_HEIGHT_KEY.0,
    MIGRATION_TXID_LOCATION_PROGRESS_KEY.0,
    MIGRATION_SPENT_PROGRESS_KEY.0,
];

/// A typed table: its physical name, its key, and its stored-entry type.
pub trait Table {
    /// The physical table's name, with its version suffix.
    const NAME: &'static str;
    /// Plain or duplicate-sorted.
    const KIND: TableKind = TableKind::Plain;
    /// The key type.
    type Key: TableKey;
    /// The stored-entry type; its item is the value callers see.
    type Entry: StoredEntry;

    /// The spec a backend opens the table with.
    fn spec() -> TableSpec {
        TableSpec {
            name: Self::NAME,
            kind: Self::KIND,
        }
    }

    /// The canonical one-line description that feeds the schema hash.
    fn describe() -> String {
        format!(
            "{} | {:?} | key: {} | value: {} | item: {}",
            Self::NAME,
            Self::KIND,
            <Self::Key as TableKey>::LAYOUT,
            <Self::Entry as StoredEntry>::KIND,
            <<Self::Entry as StoredEntry>::Item as Versioned>::LAYOUT,
        )
    }
}

/// The value type of a table.
pub type ValueOf<T> = <<T as Table>::Entry as StoredEntry>::Item;

macro_rules! table {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $key:ty, $entry:ty $(, kind = $kind:expr)?) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $ty;
        impl Table for $ty {
            const NAME: &'static str = $name;
            $(const KIND: TableKind = $kind;)?
            type Key = $key;
            type Entry = $entry;
        }
    };
}

table!(
    /// Height → block header.
    Headers, "headers_1_0_0", Height, StoredEntryVar<BlockHeaderData>);
table!(
    /// Height → the block's txids.
    Txids, "txids_1_0_0", Height, StoredEntryVar<TxidList>);
table!(
    /// Height → the transparent parts of the block's transactions.
    Transparent, "transparent_1_0_0", Height, StoredEntryVar<TransparentTxList>);
table!(
    /// Height → the Sapling parts of the block's transactions.
    Sapling, "sapling_1_0_0", Height, StoredEntryVar<SaplingTxList>);
table!(
    /// Height → the Orchard parts of the block's transactions.
    Orchard, "orchard_1_0_0", Height, StoredEntryVar<OrchardTxList>);
table!(
    /// Height → commitment tree roots and sizes.
    CommitmentTree, "commitment_tree_data_1_0_0", Height, StoredEntryFixed<CommitmentTreeData>);
table!(
    /// Block hash → height (the reference's `hashes_1_0_0`, field `heights`).
    Heights, "hashes_1_0_0", BlockHash, StoredEntryFixed<Height>);
table!(
    /// Spent outpoint → the spending transaction.
    Spent, "spent_1_0_0", Outpoint, StoredEntryFixed<TxLocation>);
table!(
    /// Txid → where the transaction is.
    TxidLocation, "txid_location_1_0_0", TxId, StoredEntryFixed<TxLocation>);
table!(
    /// The singleton txout-set accumulator.
    TxOutSetAccumulator, "tx_out_set_info_accumulator_1_2_0", NamedKey, StoredEntryFixed<TxOutSetInfo>);
table!(
    /// Transparent address → its events, duplicate-sorted in chronological order.
    AddressHistory, "address_history_1_0_0", AddrScript, StoredEntryFixed<AddrEvent>,
    kind = TableKind::DupSort { key_len: 22 });
table!(
    /// The metadata row (`metadata` → DbMetadata).
    Metadata, "metadata", NamedKey, StoredEntryFixed<DbMetadata>);
table!(
    /// Height-valued rows of the metadata table: the accumulator watermark and migration
    /// progress keys. Same physical table as [`Metadata`].
    MetadataHeights, "metadata", NamedKey, StoredEntryFixed<Height>);

/// Every physical table of the v1 schema, in canonical order.
pub const V1_TABLES: &[TableSpec] = &[
    TableSpec::plain(Headers::NAME),
    TableSpec::plain(Txids::NAME),
    TableSpec::plain(Transparent::NAME),
    TableSpec::plain(Sapling::NAME),
    TableSpec::plain(Orchard::NAME),
    TableSpec::plain(CommitmentTree::NAME),
    TableSpec::plain(Heights::NAME),
    TableSpec::plain(Spent::NAME),
    TableSpec::plain(TxidLocation::NAME),
    TableSpec::plain(TxOutSetAccumulator::NAME),
    TableSpec::dup_sort(AddressHistory::NAME, 22),
    TableSpec::plain(Metadata::NAME),
];

/// The schema version this crate's tables describe.
pub const DB_VERSION_LATEST: DbVersion = DbVersion::new(1, 2, 0);

/// The canonical description of the v1 schema: one line per table declaration, then one
/// line per type nested inside keys and values. Changing any table's name, key layout,
/// entry kind or value layout, nested types included, changes this text and so the
/// [`schema_hash`].
pub fn schema_description() -> String {
    [
        Headers::describe(),
        Txids::describe(),
        Transparent::describe(),
        Sapling::describe(),
        Orchard::describe(),
        CommitmentTree::describe(),
        Heights::describe(),
        Spent::describe(),
        TxidLocation::describe(),
        TxOutSetAccumulator::describe(),
        AddressHistory::describe(),
        Metadata::describe(),
        MetadataHeights::describe(),
    ]
    .into_iter()
    .chain(
        NESTED_LAYOUTS
            .iter()
            .map(|layout| format!("nested | {layout}")),
    )
    .collect::<Vec<_>>()
    .join("\n")
}

/// The layouts of the types stored *inside* table keys and values. A table's line names only
/// its outermost item type, yet a change to any nested layout (say `TxOutCompact` inside
/// `TransparentTxList`) changes the stored bytes, so it must change the schema hash too.
const NESTED_LAYOUTS: &[&str] = &[
    <Height as Versioned>::LAYOUT,
    <BlockHash as Versioned>::LAYOUT,
    <TxId as Versioned>::LAYOUT,
    <ChainWork as Versioned>::LAYOUT,
    <Outpoint as Versioned>::LAYOUT,
    <AddrScript as Versioned>::LAYOUT,
    <ScriptType as Versioned>::LAYOUT,
    <BlockIndex as Versioned>::LAYOUT,
    <BlockIndexV1 as Versioned>::LAYOUT,
    <BlockData as Versioned>::LAYOUT,
    <EquihashSolution as Versioned>::LAYOUT,
    <TxInCompact as Versioned>::LAYOUT,
    <TxOutCompact as Versioned>::LAYOUT,
    <TransparentCompactTx as Versioned>::LAYOUT,
    <CompactSaplingSpend as Versioned>::LAYOUT,
    <CompactSaplingOutput as Versioned>::LAYOUT,
    <SaplingCompactTx as Versioned>::LAYOUT,
    <CompactOrchardAction as Versioned>::LAYOUT,
    <OrchardCompactTx as Versioned>::LAYOUT,
    <CommitmentTreeRoots as Versioned>::LAYOUT,
    <CommitmentTreeSizes as Versioned>::LAYOUT,
    <DbVersion as Versioned>::LAYOUT,
    <MigrationStatus as Versioned>::LAYOUT,
];

/// BLAKE2b-256 of [`schema_description`].
pub fn schema_hash() -> [u8; 32] {
    blake2b256(&[schema_description().as_bytes()])
}

/// Encodes a row of table `T`: the key bytes and the checksum-protected value bytes.
pub fn encode_row<T: Table>(key: &T::Key, value: ValueOf<T>) -> (Vec<u8>, Vec<u8>) {
    encode_row_ref::<T>(key, &value)
}

/// [`encode_row`] from a borrowed value.
pub fn encode_row_ref<T: Table>(key: &T::Key, value: &ValueOf<T>) -> (Vec<u8>, Vec<u8>) {
    let key_bytes = key.encode_key();
    let value_bytes = T::Entry::encode(&key_bytes, value);
    (key_bytes, value_bytes)
}

/// The stored bytes of a row's item (its version tag and body), once the row's checksum
/// verifies under `key`. The checksum is over these very bytes, so nothing is decoded: a
/// reader that wants one field of a large row can verify it and then read only that field.
/// Errors name the table, the key and its height.
pub fn verified_item_bytes<'v, T: Table>(key: &[u8], value: &'v [u8]) -> Result<&'v [u8]> {
    let (item, checksum) = T::Entry::split(value).map_err(|e| row_corrupt::<T>(key, e))?;
    if blake2b256(&[key, item]) != checksum {
        return Err(Error::ChecksumMismatch {
            table: T::NAME,
            key: hex::encode(key),
            height: T::Key::decode_key(key).ok().and_then(|k| k.height()),
        });
    }
    Ok(item)
}

/// A row of table `T` that is not what its table stores, as an error naming the table, the
/// key and its height.
pub fn row_corrupt<T: Table>(key: &[u8], reason: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        table: T::NAME,
        key: hex::encode(key),
        height: T::Key::decode_key(key).ok().and_then(|k| k.height()),
        reason: reason.to_string(),
    }
}

/// Decodes and verifies a row of table `T`: the checksum is checked over the stored bytes
/// first, then the item is decoded. Errors name the table, the key and its height.
pub fn decode_row<T: Table>(key: &[u8], value: &[u8]) -> Result<ValueOf<T>> {
    let item = verified_item_bytes::<T>(key, value)?;
    ValueOf::<T>::from_bytes(item).map_err(|e| row_corrupt::<T>(key, e))
}

/// Typed, verified reads for every [`KvRead`].
pub trait TableRead: KvRead {
    /// The verified value under `key`.
    fn get_row<T: Table>(&self, key: &T::Key) -> Result<Option<ValueOf<T>>> {
        let key_bytes = key.encode_key();
        self.get(T::NAME, &key_bytes)?
            .map(|v| decode_row::<T>(&key_bytes, &v))
            .transpose()
    }

    /// Verified rows of a key range, in `direction`.
    fn rows<T: Table>(&self, range: KeyRange, direction: Direction) -> Result<Rows<'_, T>> {
        Ok(Rows {
            inner: self.range(T::NAME, range, direction)?,
            table: PhantomData,
        })
    }

    /// The verified values of a duplicate-sorted key, in value order.
    fn get_dup_rows<T: Table>(&self, key: &T::Key) -> Result<Vec<ValueOf<T>>> {
        let key_bytes = key.encode_key();
        self.get_dup(T::NAME, &key_bytes)?
            .iter()
            .map(|v| decode_row::<T>(&key_bytes, v))
            .collect()
    }
}

impl<R: KvRead + ?Sized> TableRead for R {}

/// An iterator of verified, decoded rows.
pub struct Rows<'a, T: Table> {
    inner: KvIter<'a>,
    table: PhantomData<T>,
}

impl<T: Table> Iterator for Rows<'_, T> {
    type Item = Result<(T::Key, ValueOf<T>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let (k, v) = match self.inner.next()? {
            Ok(kv) => kv,
            Err(e) => return Some(Err(e)),
        };
        Some((|| {
            let key = T::Key::decode_key(&k).map_err(|e| Error::Corrupt {
                table: T::NAME,
                key: hex::encode(&k),
                height: None,
                reason: e.to_string(),
            })?;
            Ok((key, decode_row::<T>(&k, &v)?))
        })())
    }
}

/// Typed writes for every [`KvWrite`].
pub trait TableWrite: KvWrite {
    /// Stores a checksum-protected row, replacing any value.
    fn put_row<T: Table>(&mut self, key: &T::Key, value: ValueOf<T>) -> Result<()> {
        let (k, v) = encode_row::<T>(key, value);
        self.put(T::NAME, &k, &v)
    }

    /// Stores a row under an absent key, accepts an identical one, fails on a different one.
    fn put_row_if_absent_or_identical<T: Table>(
        &mut self,
        key: &T::Key,
        value: ValueOf<T>,
    ) -> Result<PutOutcome> {
        let (k, v) = encode_row::<T>(key, value);
        self.put_if_absent_or_identical(T::NAME, &k, &v)
    }

    /// Removes a row.
    fn delete_row<T: Table>(&mut self, key: &T::Key) -> Result<()> {
        self.delete(T::NAME, &key.encode_key())
    }
}

impl<W: KvWrite + ?Sized> TableWrite for W {}
