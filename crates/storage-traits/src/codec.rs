//! Byte codecs: a bounds-checked reader, canonical CompactSize, and versioned serialisation.
//!
//! Every persisted type implements [`Versioned`]: its bytes are a one-byte version tag
//! followed by the body of that version. Decoders are total: any byte string yields a value
//! or an [`Error::Decode`], and no decoder allocates more than the input could describe.
//!
//! Endianness is explicit at every call site: `Reader::u32_be`, `put_u32_le`, and so on.

use crate::error::{Error, Result};

/// The largest count or length a CompactSize may carry (32 MiB), as in Zaino and zcashd.
pub const MAX_COMPACT_SIZE: u64 = 0x0200_0000;

/// Version tags of the versioned serialisation.
pub mod version {
    /// The first version of a type.
    pub const V1: u8 = 1;
    /// The second version of a type.
    pub const V2: u8 = 2;
}

/// A cursor over a byte slice that never reads past its end.
///
/// Errors name `type_name`, the type being decoded, so a short read says what it was
/// reading.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    type_name: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes` that decodes `type_name`.
    pub fn new(bytes: &'a [u8], type_name: &'static str) -> Self {
        Reader { bytes, type_name }
    }

    /// The type this reader is decoding, for error messages.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// Switches the name used in errors (when a nested type is being decoded).
    pub fn with_type_name(&mut self, type_name: &'static str) -> &'static str {
        std::mem::replace(&mut self.type_name, type_name)
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// The next byte, not consumed.
    pub fn peek_u8(&self) -> Result<u8> {
        self.bytes
            .first()
            .copied()
            .ok_or_else(|| self.error("unexpected end of input: need 1 bytes, 0 left"))
    }

    /// An error naming the type being decoded.
    pub fn error(&self, reason: impl Into<String>) -> Error {
        Error::decode(self.type_name, reason)
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.bytes.len() {
            return Err(self.error(format!(
                "unexpected end of input: need {n} bytes, {} left",
                self.bytes.len()
            )));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    /// A big-endian u16.
    pub fn u16_be(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A little-endian u16.
    pub fn u16_le(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// A big-endian u32.
    pub fn u32_be(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A little-endian u32.
    pub fn u32_le(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian u64.
    pub fn u64_le(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A little-endian i64.
    pub fn i64_le(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// A canonical CompactSize no larger than [`MAX_COMPACT_SIZE`].
    pub fn compact_size(&mut self) -> Result<u64> {
        let first = self.u8()?;
        let (value, min) = match first {
            0..=0xFC => return Ok(u64::from(first)),
            0xFD => (u64::from(self.u16_le()?), 0xFD),
            0xFE => (u64::from(self.u32_le()?), 0x1_0000),
            0xFF => (self.u64_le()?, 0x1_0000_0000),
        };
        if value < min {
            return Err(self.error(format!(
                "non-canonical CompactSize: {value} encoded with prefix 0x{first:02X}"
            )));
        }
        if value > MAX_COMPACT_SIZE {
            return Err(self.error(format!(
                "CompactSize {value} exceeds the maximum {MAX_COMPACT_SIZE}"
            )));
        }
        Ok(value)
    }

    /// A CompactSize count of items that each take at least `min_item_len` bytes.
    ///
    /// Fails when the remaining input could not hold that many items, so a hostile count
    /// never drives an allocation larger than the input.
    pub fn count(&mut self, min_item_len: usize) -> Result<usize> {
        let n = self.compact_size()? as usize;
        if n.saturating_mul(min_item_len.max(1)) > self.bytes.len() {
            return Err(self.error(format!(
                "count {n} needs at least {} bytes, {} left",
                n.saturating_mul(min_item_len.max(1)),
                self.bytes.len()
            )));
        }
        Ok(n)
    }

    /// A CompactSize-counted vector, each item decoded by `item`.
    pub fn vec<T>(
        &mut self,
        min_item_len: usize,
        mut item: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        let n = self.count(min_item_len)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(item(self)?);
        }
        Ok(out)
    }

    /// An `Option`: `0x00` for none, `0x01` followed by the value for some.
    pub fn option<T>(&mut self, value: impl FnOnce(&mut Self) -> Result<T>) -> Result<Option<T>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(value(self)?)),
            other => Err(self.error(format!("invalid Option tag 0x{other:02X}"))),
        }
    }

    /// A nested versioned value, with its own tag.
    pub fn versioned<T: Versioned>(&mut self) -> Result<T> {
        let outer = self.with_type_name(T::TYPE_NAME);
        let tag = self.u8()?;
        let value = T::decode_body(tag, self);
        self.with_type_name(outer);
        value
    }

    /// Succeeds only when every byte has been read.
    pub fn finish(self) -> Result<()> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(self.error(format!("{} trailing bytes", self.bytes.len())))
        }
    }
}

/// Appends a canonical CompactSize.
pub fn put_compact_size(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xFC => out.push(n as u8),
        0xFD..=0xFFFF => {
            out.push(0xFD);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xFFFF_FFFF => {
            out.push(0xFE);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xFF);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// Appends a CompactSize count followed by each item.
pub fn put_vec<T>(out: &mut Vec<u8>, items: &[T], mut item: impl FnMut(&mut Vec<u8>, &T)) {
    put_compact_size(out, items.len() as u64);
    for i in items {
        item(out, i);
    }
}

/// Appends an `Option`: `0x00`, or `0x01` followed by the value.
pub fn put_option<T>(out: &mut Vec<u8>, value: &Option<T>, item: impl FnOnce(&mut Vec<u8>, &T)) {
    match value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            item(out, v);
        }
    }
}

/// A type with a versioned byte encoding: `[version tag][body]`.
///
/// A decoded value remembers the version it was decoded from ([`Versioned::version`]), so
/// re-encoding it gives back the same bytes. That is what lets a table hold rows of several
/// versions side by side and still verify every checksum.
pub trait Versioned: Sized {
    /// The type's name, used in errors and in the schema description.
    const TYPE_NAME: &'static str;
    /// The version new values are written with.
    const LATEST: u8;
    /// A one-line description of the body layout of every supported version. It feeds the
    /// schema hash, so changing a layout must change this text.
    const LAYOUT: &'static str;

    /// The version this value encodes as.
    fn version(&self) -> u8 {
        Self::LATEST
    }

    /// Appends the body (without the tag) of [`Versioned::version`].
    fn encode_body(&self, out: &mut Vec<u8>);

    /// Decodes the body of version `version` (the tag has been read).
    fn decode_body(version: u8, r: &mut Reader<'_>) -> Result<Self>;

    /// Appends the tag and the body.
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(self.version());
        self.encode_body(out);
    }

    /// The tag and the body.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_to(&mut out);
        out
    }

    /// Decodes a tag and a body that span all of `bytes`.
    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, Self::TYPE_NAME);
        let value = r.versioned()?;
        r.finish()?;
        Ok(value)
    }
}

/// A versioned type whose body length is fixed for each version.
pub trait FixedLen: Versioned {
    /// The body length (without the tag) of `version`, or `None` if unsupported.
    fn body_len(version: u8) -> Option<usize>;
}

/// The error for an unknown version tag.
pub fn unsupported_version(type_name: &'static str, version: u8) -> Error {
    Error::decode(type_name, format!("unsupported version tag {version}"))
}

/// Implements [`Versioned`] and [`FixedLen`] for a type with a single version, from a
/// body length, an encoder and a decoder.
#[macro_export]
macro_rules! versioned_v1 {
    ($ty:ty, $name:literal, $layout:literal, len = $len:expr,
     encode = |$s:ident, $out:ident| $enc:block,
     decode = |$r:ident| $dec:block) => {
        impl $crate::codec::Versioned for $ty {
            const TYPE_NAME: &'static str = $name;
            const LATEST: u8 = $crate::codec::version::V1;
            const LAYOUT: &'static str = $layout;

            fn encode_body(&self, $out: &mut Vec<u8>) {
                let $s = self;
                $enc
            }

            fn decode_body(
                version: u8,
                $r: &mut $crate::codec::Reader<'_>,
            ) -> $crate::error::Result<Self> {
                if version != $crate::codec::version::V1 {
                    return Err($crate::codec::unsupported_version($name, version));
                }
                $dec
            }
        }

        impl $crate::codec::FixedLen for $ty {
            fn body_len(version: u8) -> Option<usize> {
                (version == $crate::codec::version::V1).then_some($len)
            }
        }
    };
    ($ty:ty, $name:literal, $layout:literal,
     encode = |$s:ident, $out:ident| $enc:block,
     decode = |$r:ident| $dec:block) => {
        impl $crate::codec::Versioned for $ty {
            const TYPE_NAME: &'static str = $name;
            const LATEST: u8 = $crate::codec::version::V1;
            const LAYOUT: &'static str = $layout;

            fn encode_body(&self, $out: &mut Vec<u8>) {
                let $s = self;
                $enc
            }

            fn decode_body(
                version: u8,
                $r: &mut $crate::codec::Reader<'_>,
            ) -> $crate::error::Result<Self> {
                if version != $crate::codec::version::V1 {
                    return Err($crate::codec::unsupported_version($name, version));
                }
                $dec
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cs(n: u64) -> Vec<u8> {
        let mut v = Vec::new();
        put_compact_size(&mut v, n);
        v
    }

    fn read_cs(bytes: &[u8]) -> Result<u64> {
        let mut r = Reader::new(bytes, "CompactSize");
        let n = r.compact_size()?;
        r.finish()?;
        Ok(n)
    }

    #[test]
    fn compact_size_golden() {
        assert_eq!(cs(0), [0x00]);
        assert_eq!(cs(0xFC), [0xFC]);
        assert_eq!(cs(0xFD), [0xFD, 0xFD, 0x00]);
        assert_eq!(cs(0xFFFF), [0xFD, 0xFF, 0xFF]);
        assert_eq!(cs(0x1_0000), [0xFE, 0x00, 0x00, 0x01, 0x00]);
        assert_eq!(cs(MAX_COMPACT_SIZE), [0xFE, 0x00, 0x00, 0x00, 0x02]);
        assert_eq!(
            read_cs(&[0xFE, 0x00, 0x00, 0x00, 0x02]).unwrap(),
            MAX_COMPACT_SIZE
        );
    }

    #[test]
    fn compact_size_rejects_non_canonical_forms() {
        for bad in [
            &[0xFD, 0xFC, 0x00][..],
            &[0xFD, 0x00, 0x00],
            &[0xFE, 0xFF, 0xFF, 0x00, 0x00],
            &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00],
        ] {
            let err = read_cs(bad).unwrap_err().to_string();
            assert!(err.contains("non-canonical"), "{bad:02X?}: {err}");
        }
    }

    #[test]
    fn compact_size_rejects_oversized_lengths() {
        let err = read_cs(&cs(MAX_COMPACT_SIZE + 1)).unwrap_err().to_string();
        assert!(err.contains("exceeds the maximum"), "{err}");
        assert!(read_cs(&cs(u64::MAX)).is_err());
    }

    #[test]
    fn compact_size_rejects_truncation() {
        assert!(read_cs(&[]).is_err());
        assert!(read_cs(&[0xFD, 0x00]).is_err());
        assert!(read_cs(&[0xFE, 0, 0, 1]).is_err());
    }

    #[test]
    fn hostile_count_does_not_allocate() {
        // Claims 32 Mi items of 32 bytes with four bytes of input behind it.
        let mut bytes = cs(MAX_COMPACT_SIZE);
        bytes.extend_from_slice(&[0; 4]);
        let mut r = Reader::new(&bytes, "test");
        let err = r.vec(32, |r| r.array::<32>()).unwrap_err().to_string();
        assert!(err.contains("needs at least"), "{err}");
    }

    proptest! {
        #[test]
        fn compact_size_round_trips(n in 0..=MAX_COMPACT_SIZE) {
            prop_assert_eq!(read_cs(&cs(n)).unwrap(), n);
        }

        #[test]
        fn reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&bytes, "fuzz");
            let _ = r.compact_size();
            let _ = r.option(|r| r.u64_le());
            let _ = r.vec(1, |r| r.u8());
        }
    }
}
