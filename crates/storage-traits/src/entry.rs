//! Checksum-protected stored values: [`StoredEntryFixed`] and [`StoredEntryVar`].
//!
//! ```text
//! StoredEntryFixed<T> = [0x01] [T tag] [T body]                    [BLAKE2b-256(key ‖ T tag ‖ T body)]
//! StoredEntryVar<T>   = [0x01] [CompactSize len(T tag ‖ T body)] [T tag] [T body] [BLAKE2b-256(key ‖ T tag ‖ T body)]
//! ```
//!
//! The checksum covers the key, so a value copied under another key fails to verify. It does
//! not cover the entry's own version byte or the length.

use crate::codec::{FixedLen, Reader, Versioned, put_compact_size, version};
use crate::error::{Error, Result};

/// BLAKE2b-256, unkeyed and unpersonalised, over the concatenation of `parts`.
pub fn blake2b256(parts: &[&[u8]]) -> [u8; 32] {
    let mut state = blake2b_simd::Params::new().hash_length(32).to_state();
    for p in parts {
        state.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(state.finalize().as_bytes());
    out
}

/// The stored-entry wrapper's own version.
pub const ENTRY_VERSION: u8 = version::V1;

/// What both entry kinds offer: build from a key and an item, encode, decode, verify.
pub trait StoredEntry: Sized {
    /// The wrapped type.
    type Item: Versioned;
    /// A description of the wrapper, for the schema hash.
    const KIND: &'static str;

    /// Wraps `item`, computing its checksum under `key`.
    fn new(key: &[u8], item: Self::Item) -> Self;
    /// The wrapped item (not yet verified against any key).
    fn item(&self) -> &Self::Item;
    /// Unwraps the item.
    fn into_item(self) -> Self::Item;
    /// The stored checksum.
    fn checksum(&self) -> &[u8; 32];
    /// The entry's bytes.
    fn to_bytes(&self) -> Vec<u8>;
    /// Parses an entry. Does not verify the checksum: call [`StoredEntry::verify`].
    fn from_bytes(bytes: &[u8]) -> Result<Self>;
    /// Splits an entry's bytes into the item's stored bytes (tag and body, what the checksum
    /// covers after the key) and the stored checksum, without decoding the item.
    fn split(bytes: &[u8]) -> Result<(&[u8], [u8; 32])>;

    /// The bytes of `Self::new(key, item.clone()).to_bytes()`, from a borrowed item encoded
    /// once (the write path's form: no clone, and one encoding instead of two).
    fn encode(key: &[u8], item: &Self::Item) -> Vec<u8>;

    /// Whether the checksum matches `key` and the item's bytes. The item re-encodes as the
    /// version it was decoded from, so any supported version verifies.
    fn verify(&self, key: &[u8]) -> bool {
        blake2b256(&[key, &self.item().to_bytes()]) == *self.checksum()
    }
}

fn read_entry_version<T: Versioned>(r: &mut Reader<'_>) -> Result<()> {
    match r.u8()? {
        ENTRY_VERSION => Ok(()),
        other => Err(Error::decode(
            T::TYPE_NAME,
            format!("unsupported stored-entry version {other}"),
        )),
    }
}

/// [`StoredEntry::split`] of a [`StoredEntryVar`] whatever its item type (a scan over a
/// table chosen at run time): the item's stored bytes and the checksum. `type_name` names
/// the item in errors.
pub fn split_var<'b>(bytes: &'b [u8], type_name: &'static str) -> Result<(&'b [u8], [u8; 32])> {
    let mut r = Reader::new(bytes, type_name);
    match r.u8()? {
        ENTRY_VERSION => {}
        other => {
            return Err(Error::decode(
                type_name,
                format!("unsupported stored-entry version {other}"),
            ));
        }
    }
    let len = r.count(1)?;
    let item = r.take(len)?;
    let checksum = r.array()?;
    r.finish()?;
    Ok((item, checksum))
}

/// A checksum-protected value of fixed length per version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntryFixed<T> {
    item: T,
    checksum: [u8; 32],
}

impl<T: FixedLen> StoredEntry for StoredEntryFixed<T> {
    type Item = T;
    const KIND: &'static str =
        "StoredEntryFixed v1: [0x01] T(tagged) [32] BLAKE2b-256(key || T(tagged))";

    fn new(key: &[u8], item: T) -> Self {
        let checksum = blake2b256(&[key, &item.to_bytes()]);
        StoredEntryFixed { item, checksum }
    }

    fn item(&self) -> &T {
        &self.item
    }

    fn into_item(self) -> T {
        self.item
    }

    fn checksum(&self) -> &[u8; 32] {
        &self.checksum
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![ENTRY_VERSION];
        self.item.encode_to(&mut out);
        out.extend_from_slice(&self.checksum);
        out
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (item, checksum) = Self::split(bytes)?;
        let item = T::from_bytes(item)?;
        Ok(StoredEntryFixed { item, checksum })
    }

    fn split(bytes: &[u8]) -> Result<(&[u8], [u8; 32])> {
        let mut r = Reader::new(bytes, T::TYPE_NAME);
        read_entry_version::<T>(&mut r)?;
        // Take exactly the body length of the item's version, so a fixed row stays
        // readable after the type grows a new, longer version.
        let tag = r.peek_u8()?;
        let len = T::body_len(tag)
            .ok_or_else(|| Error::decode(T::TYPE_NAME, format!("unsupported version tag {tag}")))?;
        let item = r.take(1 + len)?;
        let checksum = r.array()?;
        r.finish()?;
        Ok((item, checksum))
    }

    /// As the trait's, with the item encoded into a buffer of its exact size (point reads
    /// verify one small fixed row each: one allocation instead of a `Vec` grown from empty).
    fn verify(&self, key: &[u8]) -> bool {
        let body = T::body_len(self.item.version()).unwrap_or(0);
        let mut item = Vec::with_capacity(1 + body);
        self.item.encode_to(&mut item);
        blake2b256(&[key, &item]) == self.checksum
    }

    fn encode(key: &[u8], item: &T) -> Vec<u8> {
        let body = T::body_len(item.version()).unwrap_or(0);
        let mut out = Vec::with_capacity(2 + body + 32);
        out.push(ENTRY_VERSION);
        item.encode_to(&mut out);
        let checksum = blake2b256(&[key, &out[1..]]);
        out.extend_from_slice(&checksum);
        out
    }
}

/// A checksum-protected value of variable length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntryVar<T> {
    item: T,
    checksum: [u8; 32],
}

impl<T: Versioned> StoredEntry for StoredEntryVar<T> {
    type Item = T;
    const KIND: &'static str =
        "StoredEntryVar v1: [0x01] CompactSize len, T(tagged) [32] BLAKE2b-256(key || T(tagged))";

    fn new(key: &[u8], item: T) -> Self {
        let checksum = blake2b256(&[key, &item.to_bytes()]);
        StoredEntryVar { item, checksum }
    }

    fn item(&self) -> &T {
        &self.item
    }

    fn into_item(self) -> T {
        self.item
    }

    fn checksum(&self) -> &[u8; 32] {
        &self.checksum
    }

    fn to_bytes(&self) -> Vec<u8> {
        let item = self.item.to_bytes();
        let mut out = Vec::with_capacity(item.len() + 42);
        out.push(ENTRY_VERSION);
        put_compact_size(&mut out, item.len() as u64);
        out.extend_from_slice(&item);
        out.extend_from_slice(&self.checksum);
        out
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (item, checksum) = Self::split(bytes)?;
        let item = T::from_bytes(item)?;
        Ok(StoredEntryVar { item, checksum })
    }

    fn split(bytes: &[u8]) -> Result<(&[u8], [u8; 32])> {
        split_var(bytes, T::TYPE_NAME)
    }

    fn encode(key: &[u8], item: &T) -> Vec<u8> {
        let item = item.to_bytes();
        let mut out = Vec::with_capacity(item.len() + 42);
        out.push(ENTRY_VERSION);
        put_compact_size(&mut out, item.len() as u64);
        out.extend_from_slice(&item);
        out.extend_from_slice(&blake2b256(&[key, &item]));
        out
    }
}
