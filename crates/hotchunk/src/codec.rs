//! The framing of a hot value: `[version 0x01][codec][body]`.
//!
//! | codec byte | body |
//! | --- | --- |
//! | `0x00` none | the payload itself |
//! | `0x01` zstd | one Zstandard frame with its content size in the header |
//!
//! The codec is recorded per value, so a reader never guesses and a store may mix codecs
//! (a node that turns compression on mid-chunk). Decoding is total: any byte string gives
//! the payload or an error, and never allocates more than [`MAX_PAYLOAD_BYTES`] (a zstd
//! frame claiming more is refused before decompression). Integrity of the stored bytes is
//! RocksDB's: block checksums verified on every read, CRCs on WAL records.

use std::ffi::{CStr, c_void};

/// The version byte of a hot value.
pub const VALUE_VERSION: u8 = 1;
/// The largest payload a hot value may hold (256 MiB): a bound for the decoder.
pub const MAX_PAYLOAD_BYTES: usize = 256 << 20;

const CODEC_NONE: u8 = 0;
const CODEC_ZSTD: u8 = 1;

/// How payloads are stored. Each value records its own codec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Stored as given. The default: RocksDB already LZ4-compresses its SST blocks, and
    /// payloads that are compressed upstream gain nothing from a second pass.
    #[default]
    None,
    /// Zstandard at `level` (1–22; the streaming reference stores ledgers at level 3).
    Zstd {
        /// The compression level.
        level: i32,
    },
}

/// Frames `payload` with `codec`.
pub fn encode(codec: Codec, payload: &[u8]) -> Result<Vec<u8>, String> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "the payload has {} bytes, more than the {MAX_PAYLOAD_BYTES} a hot value holds",
            payload.len()
        ));
    }
    match codec {
        Codec::None => {
            let mut v = Vec::with_capacity(payload.len() + 2);
            v.extend_from_slice(&[VALUE_VERSION, CODEC_NONE]);
            v.extend_from_slice(payload);
            Ok(v)
        }
        Codec::Zstd { level } => zstd_compress(payload, level),
    }
}

/// The payload of a framed value.
pub fn decode(value: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    match value {
        [VALUE_VERSION, CODEC_NONE, body @ ..] => {
            if body.len() > MAX_PAYLOAD_BYTES {
                return Err(format!(
                    "an uncompressed body of {} bytes is over the bound",
                    body.len()
                ));
            }
            Ok(std::borrow::Cow::Borrowed(body))
        }
        [VALUE_VERSION, CODEC_ZSTD, body @ ..] => {
            zstd_decompress(body).map(std::borrow::Cow::Owned)
        }
        [VALUE_VERSION, codec, ..] => Err(format!("unknown codec byte {codec:#04x}")),
        [version, _, ..] => Err(format!("unknown value version {version}")),
        _ => Err(format!(
            "a value of {} bytes is shorter than its 2-byte header",
            value.len()
        )),
    }
}

fn zstd_error(code: usize) -> String {
    // SAFETY: ZSTD_getErrorName returns a pointer to a static NUL-terminated string for any
    // input.
    let name = unsafe { CStr::from_ptr(zstd_sys::ZSTD_getErrorName(code)) };
    name.to_string_lossy().into_owned()
}

fn is_error(code: usize) -> bool {
    // SAFETY: a pure function of its argument.
    unsafe { zstd_sys::ZSTD_isError(code) != 0 }
}

fn zstd_compress(payload: &[u8], level: i32) -> Result<Vec<u8>, String> {
    // SAFETY: a pure function of its argument.
    let bound = unsafe { zstd_sys::ZSTD_compressBound(payload.len()) };
    if is_error(bound) {
        return Err(format!(
            "zstd cannot bound {} bytes: {}",
            payload.len(),
            zstd_error(bound)
        ));
    }
    let mut out: Vec<u8> = Vec::with_capacity(bound + 2);
    out.extend_from_slice(&[VALUE_VERSION, CODEC_ZSTD]);
    // SAFETY: `out` has capacity for 2 + `bound` bytes, so the destination holds `bound`
    // writable bytes after the header; the source is `payload`, valid for its length.
    // ZSTD_compress writes at most `bound` bytes and returns how many (or an error code).
    let written = unsafe {
        zstd_sys::ZSTD_compress(
            out.as_mut_ptr().add(2).cast::<c_void>(),
            bound,
            payload.as_ptr().cast::<c_void>(),
            payload.len(),
            level,
        )
    };
    if is_error(written) {
        return Err(format!("zstd compression failed: {}", zstd_error(written)));
    }
    // SAFETY: ZSTD_compress initialised `written` (≤ `bound`) bytes after the header.
    unsafe { out.set_len(2 + written) };
    Ok(out)
}

fn zstd_decompress(frame: &[u8]) -> Result<Vec<u8>, String> {
    // SAFETY: reads at most `frame.len()` bytes of `frame`.
    let size =
        unsafe { zstd_sys::ZSTD_getFrameContentSize(frame.as_ptr().cast::<c_void>(), frame.len()) };
    // ZSTD_CONTENTSIZE_UNKNOWN is (unsigned long long)-1, ZSTD_CONTENTSIZE_ERROR is -2.
    if size == u64::MAX {
        return Err("the zstd frame does not record its content size".to_owned());
    }
    if size == u64::MAX - 1 {
        return Err("not a zstd frame (bad magic or truncated header)".to_owned());
    }
    let size = usize::try_from(size)
        .ok()
        .filter(|s| *s <= MAX_PAYLOAD_BYTES)
        .ok_or_else(|| {
            format!("the zstd frame claims {size} bytes, over the {MAX_PAYLOAD_BYTES}-byte bound")
        })?;
    let mut out: Vec<u8> = Vec::with_capacity(size);
    // SAFETY: `out` has capacity `size`; ZSTD_decompress writes at most that many bytes and
    // reads at most `frame.len()` bytes of `frame`.
    let written = unsafe {
        zstd_sys::ZSTD_decompress(
            out.as_mut_ptr().cast::<c_void>(),
            size,
            frame.as_ptr().cast::<c_void>(),
            frame.len(),
        )
    };
    if is_error(written) {
        return Err(format!(
            "zstd decompression failed: {}",
            zstd_error(written)
        ));
    }
    if written != size {
        return Err(format!(
            "the zstd frame decoded to {written} bytes, its header says {size}"
        ));
    }
    // SAFETY: ZSTD_decompress initialised `written` bytes.
    unsafe { out.set_len(written) };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8 ^ (i / 977) as u8).collect()
    }

    #[test]
    fn round_trips_both_codecs() {
        for n in [0usize, 1, 100, 70_000] {
            let p = sample(n);
            let none = encode(Codec::None, &p).unwrap();
            assert_eq!(&none[..2], &[1, 0]);
            assert_eq!(decode(&none).unwrap().as_ref(), p.as_slice());
            let z = encode(Codec::Zstd { level: 3 }, &p).unwrap();
            assert_eq!(&z[..2], &[1, 1]);
            assert_eq!(decode(&z).unwrap().as_ref(), p.as_slice());
            if n == 70_000 {
                assert!(z.len() < n / 2, "repetitive data compresses: {}", z.len());
            }
        }
    }

    #[test]
    fn decode_is_total() {
        let z = encode(Codec::Zstd { level: 1 }, &sample(5_000)).unwrap();
        for cut in 0..z.len() {
            // Every truncation is an error, never a panic or a short payload.
            assert!(decode(&z[..cut]).is_err(), "cut {cut}");
        }
        let mut flipped = z.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xFF;
        let _ = decode(&flipped); // an error or a payload, never a panic
        assert!(decode(&[]).is_err());
        assert!(decode(&[1]).is_err());
        assert!(decode(&[2, 0, 5]).is_err());
        assert!(decode(&[1, 7, 5]).is_err());
        // A frame header claiming far more than the bound is refused before allocating.
        let mut huge = vec![1, 1];
        // Magic, then a frame header descriptor with an 8-byte content size, single segment.
        huge.extend_from_slice(&0xFD2F_B528u32.to_le_bytes());
        huge.push(0b1110_0000);
        huge.extend_from_slice(&(1u64 << 40).to_le_bytes());
        let e = decode(&huge).unwrap_err();
        assert!(e.contains("bound"), "{e}");
    }
}
