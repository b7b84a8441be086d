//! The `.pack` format: round trips, determinism, the golden vector, the hash definitions
//! checked against Python's hashlib, read counts, and corruption of every byte.

use std::cell::Cell;
use std::path::Path;

use coldpack::format::{
    Codec, FORMAT_VERSION, RECORD_KIND_PAYLOAD, TAIL_READ, TRAILER_LEN, blake2b256,
};
use coldpack::reader::ReadAt;
use coldpack::writer::pack_to_vec;
use coldpack::{Error, PackOptions, PackReader, PackWriter};
use proptest::prelude::*;

fn opts(codec: Codec, first_height: u32) -> PackOptions {
    PackOptions {
        codec,
        record_kind: RECORD_KIND_PAYLOAD,
        first_height,
    }
}

fn sample_records(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            // Compressible but not trivial, lengths varied (one empty record).
            let len = if i == 3 { 0 } else { 50 + (i * 37) % 900 };
            (0..len).map(|j| ((i * 31 + j / 7) % 251) as u8).collect()
        })
        .collect()
}

const CODECS: [Codec; 3] = [
    Codec::None,
    Codec::Zstd { level: 3 },
    Codec::Zstd { level: 19 },
];

#[test]
fn round_trip_every_codec() {
    let recs = sample_records(40);
    for codec in CODECS {
        let (bytes, summary) =
            pack_to_vec(opts(codec, 1000), recs.iter().map(|r| r.as_slice())).unwrap();
        assert_eq!(summary.size, bytes.len() as u64);
        assert_eq!(summary.object_hash, blake2b256(&bytes));
        let r = PackReader::from_bytes(bytes).unwrap();
        assert_eq!(r.record_count(), 40);
        assert_eq!(r.first_height(), 1000);
        assert_eq!(r.trailer().codec, codec);
        assert_eq!(r.trailer().version, FORMAT_VERSION);
        for (i, rec) in recs.iter().enumerate() {
            assert_eq!(&r.read(i as u32).unwrap(), rec, "{codec} record {i}");
            assert_eq!(&r.read_height(1000 + i as u32).unwrap(), rec);
        }
        assert!(matches!(r.read(40), Err(Error::RecordOutOfRange { .. })));
        assert!(matches!(
            r.read_height(999),
            Err(Error::RecordOutOfRange { .. })
        ));
        assert_eq!(r.verify_full().unwrap(), summary.object_hash);
    }
}

#[test]
fn empty_pack_round_trips() {
    let (bytes, s) = pack_to_vec(opts(Codec::None, 7), std::iter::empty()).unwrap();
    assert_eq!(bytes.len(), TRAILER_LEN);
    assert_eq!(s.trailer.record_count, 0);
    let r = PackReader::from_bytes(bytes).unwrap();
    assert_eq!(r.record_count(), 0);
    assert_eq!(r.verify_full().unwrap(), s.object_hash);
}

#[test]
fn deterministic_for_a_codec_and_level() {
    let recs = sample_records(25);
    for codec in CODECS {
        let a = pack_to_vec(opts(codec, 5), recs.iter().map(|r| r.as_slice())).unwrap();
        let b = pack_to_vec(opts(codec, 5), recs.iter().map(|r| r.as_slice())).unwrap();
        assert_eq!(a.0, b.0, "{codec}");
        // The file writer (other buffering, a real file) gives the same bytes.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.pack");
        let mut w = PackWriter::create_new(&p, opts(codec, 5)).unwrap();
        for r in &recs {
            w.push(r).unwrap();
        }
        let s = w.finish().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), a.0);
        assert_eq!(s, a.1);
    }
    // Different levels give different bytes (the level is recorded).
    let l3 = pack_to_vec(
        opts(Codec::Zstd { level: 3 }, 5),
        recs.iter().map(|r| r.as_slice()),
    );
    let l19 = pack_to_vec(
        opts(Codec::Zstd { level: 19 }, 5),
        recs.iter().map(|r| r.as_slice()),
    );
    assert_ne!(l3.unwrap().0, l19.unwrap().0);
}

#[test]
fn create_new_refuses_an_existing_path() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.pack");
    std::fs::write(&p, b"old").unwrap();
    assert!(matches!(
        PackWriter::create_new(&p, opts(Codec::None, 0)),
        Err(Error::Io { .. })
    ));
    assert_eq!(std::fs::read(&p).unwrap(), b"old");
}

#[test]
fn invalid_levels_are_refused() {
    for level in [0, 23, -8, 100] {
        assert!(PackWriter::in_memory(opts(Codec::Zstd { level }, 0)).is_err());
    }
}

/// Pins every byte of a small pack (FORMAT.md's worked example).
#[test]
fn golden_vector() {
    let (bytes, s) = pack_to_vec(
        opts(Codec::None, 0x0102_0304),
        [b"ab".as_slice(), b"".as_slice(), b"xyz".as_slice()],
    )
    .unwrap();
    let hexed = hex::encode(&bytes);
    // records: "ab" crc, "" crc, "xyz" crc
    let r0 = coldpack::format::record_crc(0x0102_0304, b"ab");
    let r1 = coldpack::format::record_crc(0x0102_0305, b"");
    let r2 = coldpack::format::record_crc(0x0102_0306, b"xyz");
    let mut expect = Vec::new();
    expect.extend_from_slice(b"ab");
    expect.extend_from_slice(&r0.to_le_bytes());
    expect.extend_from_slice(&r1.to_le_bytes());
    expect.extend_from_slice(b"xyz");
    expect.extend_from_slice(&r2.to_le_bytes());
    // index
    for (s, r) in [(2u32, 2u32), (0, 0), (3, 3)] {
        expect.extend_from_slice(&s.to_le_bytes());
        expect.extend_from_slice(&r.to_le_bytes());
    }
    assert_eq!(&bytes[..expect.len()], &expect[..]);
    let t = &bytes[expect.len()..];
    assert_eq!(&t[0..8], b"STRTPACK");
    assert_eq!(&t[8..12], &1u32.to_le_bytes());
    assert_eq!(&t[12..16], &3u32.to_le_bytes());
    assert_eq!(&t[16..20], &[0, 0, 0, 0]);
    assert_eq!(&t[20..24], &0u32.to_le_bytes());
    assert_eq!(&t[24..28], &1u32.to_le_bytes());
    assert_eq!(&t[28..32], &0x0102_0304u32.to_le_bytes());
    assert_eq!(&t[32..36], &3u32.to_le_bytes());
    assert_eq!(&t[36..40], &[0; 4]);
    assert_eq!(&t[40..48], &17u64.to_le_bytes());
    assert_eq!(&t[48..56], &24u64.to_le_bytes());
    assert_eq!(&t[56..60], &crc32c::crc32c(&expect[17..]).to_le_bytes());
    assert_eq!(&t[60..92], &blake2b256(&expect));
    assert_eq!(&t[92..96], &crc32c::crc32c(&t[..92]).to_le_bytes());
    // The CRC-32C values of the worked example, against the algorithm's check value.
    assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    // The whole file, pinned (FORMAT.md quotes it).
    assert_eq!(
        hexed,
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/small.pack.hex")
        )
        .unwrap()
        .trim()
    );
    assert_eq!(s.object_hash, blake2b256(&bytes));
}

/// The content hash (every byte before the trailer) and the object name (the whole file),
/// computed independently by Python's hashlib.
#[test]
fn hashes_match_python_hashlib() {
    let dir = tempfile::tempdir().unwrap();
    for (i, codec) in CODECS.into_iter().enumerate() {
        let recs = sample_records(30);
        let p = dir.path().join(format!("{i}.pack"));
        let mut w = PackWriter::create_new(&p, opts(codec, 42)).unwrap();
        for r in &recs {
            w.push(r).unwrap();
        }
        let s = w.finish().unwrap();
        let script = "import hashlib,sys\n\
            b=open(sys.argv[1],'rb').read()\n\
            print(hashlib.blake2b(b[:-96],digest_size=32).hexdigest())\n\
            print(hashlib.blake2b(b,digest_size=32).hexdigest())\n\
            print(b[-96+60:-96+92].hex())";
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(&p)
            .output()
            .expect("python3 must be installed for this test");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            hex::encode(s.trailer.content_hash),
            "content hash"
        );
        assert_eq!(lines[1], s.object_hex(), "object name");
        assert_eq!(lines[2], lines[0], "the trailer holds the content hash");
    }
}

/// Counts reads, to check "one read to open, one read per record".
struct Counting<'a> {
    bytes: &'a [u8],
    reads: Cell<usize>,
}

impl ReadAt for Counting<'_> {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.bytes.len() as u64)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.reads.set(self.reads.get() + 1);
        self.bytes.read_exact_at(buf, offset)
    }
}

/// Reading a pack leaves its access time alone (`O_NOATIME`): on a `relatime` mount a
/// plain open would move an access time older than the modification time forward.
#[cfg(target_os = "linux")]
#[test]
fn reads_leave_the_access_time_alone() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.pack");
    let recs = sample_records(20);
    let mut w = PackWriter::create_new(&p, opts(Codec::None, 0)).unwrap();
    for r in &recs {
        w.push(r).unwrap();
    }
    w.finish().unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_times(std::fs::FileTimes::new().set_accessed(old))
        .unwrap();
    let r = PackReader::open(&p).unwrap();
    let mut scratch = Vec::new();
    for i in 0..20 {
        assert_eq!(r.read_ref(i, &mut scratch).unwrap(), recs[i as usize]);
    }
    drop(r);
    let atime = std::fs::metadata(&p).unwrap().accessed().unwrap();
    assert_eq!(
        atime,
        old,
        "reading {} changed its access time",
        p.display()
    );
}

#[test]
fn one_read_to_open_one_read_per_record() {
    for codec in CODECS {
        let recs = sample_records(500);
        let (bytes, _) = pack_to_vec(opts(codec, 0), recs.iter().map(|r| r.as_slice())).unwrap();
        let src = Counting {
            bytes: &bytes,
            reads: Cell::new(0),
        };
        let r = PackReader::from_source(&src, Path::new("count")).unwrap();
        let reads = || src.reads.get();
        assert_eq!(reads(), 1, "open");
        for i in [0u32, 250, 499, 3] {
            let before = reads();
            assert_eq!(r.read(i).unwrap(), recs[i as usize]);
            assert_eq!(reads() - before, 1, "record {i}");
        }
    }
}

#[test]
fn a_large_index_takes_a_second_read() {
    let n = (TAIL_READ / 8) + 100;
    let (bytes, _) = pack_to_vec(
        opts(Codec::None, 0),
        (0..n).map(|i| if i % 2 == 0 { &b"a"[..] } else { &b""[..] }),
    )
    .unwrap();
    let r = PackReader::from_bytes(bytes).unwrap();
    assert_eq!(r.record_count() as usize, n);
    assert_eq!(r.read(n as u32 - 2).unwrap(), b"a");
    assert_eq!(r.read(n as u32 - 1).unwrap(), b"");
}

/// Flip each byte of a pack in turn (every position, both codecs): the pack either fails
/// to open, or every read of the damaged record fails while every other record still reads
/// back correctly; `verify_full` fails in every case.
#[test]
fn every_flipped_byte_is_detected() {
    let recs = sample_records(6);
    for codec in [Codec::None, Codec::Zstd { level: 3 }] {
        let (bytes, _) = pack_to_vec(opts(codec, 100), recs.iter().map(|r| r.as_slice())).unwrap();
        let clean = PackReader::from_bytes(bytes.clone()).unwrap();
        let bounds: Vec<(u64, u64)> = (0..6u32)
            .map(|i| {
                let o = clean.record_offset(i).unwrap();
                (o, o + u64::from(clean.stored_len(i).unwrap()) + 4)
            })
            .collect();
        for pos in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[pos] ^= mask;
                let Ok(r) = PackReader::from_bytes(bad) else {
                    continue;
                };
                let damaged = bounds
                    .iter()
                    .position(|&(a, b)| (a..b).contains(&(pos as u64)))
                    .unwrap_or_else(|| panic!("{codec}: byte {pos} outside records opened"));
                for (i, rec) in recs.iter().enumerate() {
                    let got = r.read(i as u32);
                    if i == damaged {
                        for _ in 0..2 {
                            assert!(
                                matches!(r.read(i as u32), Err(Error::CorruptRecord { .. })),
                                "{codec}: byte {pos} ^ {mask:#x} not detected in record {i}"
                            );
                        }
                    } else {
                        assert_eq!(&got.unwrap(), rec);
                    }
                }
                assert!(r.verify_full().is_err());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes never panic the decoder.
    #[test]
    fn arbitrary_bytes_decode_or_fail(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(r) = PackReader::from_bytes(bytes) {
            for i in 0..r.record_count().min(64) {
                let _ = r.read(i);
            }
            let _ = r.verify_full();
        }
    }

    /// Valid packs, then arbitrary edits (overwrites, truncation, extension): never a
    /// panic, and any edit inside the file either fails to open or fails verification.
    #[test]
    fn corrupted_packs_decode_or_fail(
        recs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..12),
        zstd in any::<bool>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let codec = if zstd { Codec::Zstd { level: 1 } } else { Codec::None };
        let (bytes, s) = pack_to_vec(opts(codec, 9), recs.iter().map(|r| r.as_slice())).unwrap();
        let mut bad = bytes.clone();
        for (idx, v) in &edits {
            let i = idx.index(bad.len());
            bad[i] = *v;
        }
        if let Some(c) = cut {
            bad.truncate(c.index(bad.len()));
        }
        let changed = bad != bytes;
        match PackReader::from_bytes(bad) {
            Err(_) => {}
            Ok(r) => {
                for i in 0..r.record_count() {
                    let _ = r.read(i);
                }
                let v = r.verify_full();
                if changed {
                    prop_assert!(v.is_err());
                } else {
                    prop_assert_eq!(v.unwrap(), s.object_hash);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The fuzz target's body on random inputs (both modes), so CI exercises it.
    #[test]
    fn fuzz_body_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        coldpack::fuzzing::decode_everything(&data);
    }
}

/// A pack of several hashing chunks (the hasher runs on its own thread): both hashes match
/// an independent computation, and the file and in-memory writers agree.
#[test]
fn multi_chunk_pack_hashes_match() {
    let recs: Vec<Vec<u8>> = (0..45u32)
        .map(|i| {
            (0..100_000u32)
                .map(|j| (i.wrapping_mul(7) ^ j) as u8)
                .collect()
        })
        .collect();
    for codec in [Codec::None, Codec::Zstd { level: 1 }] {
        let (bytes, s) = pack_to_vec(opts(codec, 3), recs.iter().map(|r| r.as_slice())).unwrap();
        assert_eq!(s.object_hash, blake2b256(&bytes));
        assert_eq!(
            s.trailer.content_hash,
            blake2b256(&bytes[..bytes.len() - TRAILER_LEN])
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.pack");
        let mut w = PackWriter::create_new(&p, opts(codec, 3)).unwrap();
        for r in &recs {
            w.push(r).unwrap();
        }
        assert_eq!(w.finish().unwrap(), s);
        assert_eq!(std::fs::read(&p).unwrap(), bytes);
        let r = PackReader::open(&p).unwrap();
        assert_eq!(r.read(44).unwrap(), recs[44]);
        assert_eq!(r.verify_full().unwrap(), s.object_hash);
    }
}

/// Packs whose bytes before the trailer end exactly on a 1 MiB staging-chunk boundary (the
/// last chunk is empty at `finish`), and one byte either side of it: the file writer (direct
/// I/O for whole chunks where the filesystem allows it, buffered for the rest) and the
/// in-memory writer give the same bytes and hashes. Also on `/dev/shm` where it exists
/// (tmpfs, which may refuse direct I/O: everything buffered).
#[test]
fn packs_ending_on_a_chunk_boundary_match() {
    const CHUNK: usize = 1 << 20;
    let mut dirs = vec![tempfile::tempdir().unwrap()];
    if let Ok(d) = tempfile::tempdir_in("/dev/shm") {
        dirs.push(d);
    }
    for chunks in [1usize, 2, 3] {
        for delta in [-1i64, 0, 1] {
            // Two records: (a + 4) + (b + 4) + 2 × 8 index bytes = chunks × CHUNK + delta.
            let total = (chunks * CHUNK) as i64 + delta;
            let a = 300_001usize;
            let b = (total - 24 - a as i64) as usize;
            let recs: Vec<Vec<u8>> = [a, b]
                .iter()
                .enumerate()
                .map(|(i, &len)| {
                    (0..len)
                        .map(|j| (j as u32 ^ (j as u32 >> 11) ^ i as u32) as u8)
                        .collect()
                })
                .collect();
            let (want, summary) =
                pack_to_vec(opts(Codec::None, 1), recs.iter().map(|r| r.as_slice())).unwrap();
            assert_eq!(want.len() as i64, total + TRAILER_LEN as i64);
            assert_eq!(summary.object_hash, blake2b256(&want));
            for dir in &dirs {
                let p = dir.path().join(format!("{chunks}-{delta}.pack"));
                let mut w = PackWriter::create_new(&p, opts(Codec::None, 1)).unwrap();
                for r in &recs {
                    w.push(r).unwrap();
                }
                assert_eq!(
                    w.finish().unwrap(),
                    summary,
                    "{chunks} chunks {delta:+} in {dir:?}"
                );
                assert!(
                    std::fs::read(&p).unwrap() == want,
                    "{chunks} chunks {delta:+} in {dir:?}"
                );
                let r = PackReader::open(&p).unwrap();
                assert_eq!(r.read(1).unwrap(), recs[1]);
                assert_eq!(r.verify_full().unwrap(), summary.object_hash);
            }
        }
    }
}

/// A sink that accepts `limit` bytes and then fails every write.
struct FailingSink {
    written: usize,
    limit: usize,
}

impl std::io::Write for FailingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.written >= self.limit {
            return Err(std::io::Error::other("disk full (test)"));
        }
        let n = buf.len().min(self.limit - self.written);
        self.written += n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A sink that fails part-way through a pack — in the first chunk, at a chunk boundary,
/// while the hashing thread is busy, in the index or trailer — makes `push` or `finish`
/// return an I/O error naming the sink's path: no panic, no summary, and the hashing
/// thread is shut down with the writer.
#[test]
fn write_errors_are_reported_by_the_pipelined_writer() {
    let recs: Vec<Vec<u8>> = (0..24u32)
        .map(|i| (0..300_000u32).map(|j| (i ^ j) as u8).collect())
        .collect();
    let full = pack_to_vec(opts(Codec::None, 0), recs.iter().map(|r| r.as_slice()))
        .unwrap()
        .0
        .len();
    for limit in [
        0,
        100,
        (1 << 20) - 1,
        1 << 20,
        (1 << 20) + 5,
        5 << 20,
        full - 50,
    ] {
        let sink = FailingSink { written: 0, limit };
        let mut w = PackWriter::new(sink, Path::new("failing-sink"), opts(Codec::None, 0)).unwrap();
        let mut err = None;
        for r in &recs {
            if let Err(e) = w.push(r) {
                err = Some(e);
                break;
            }
        }
        let err = match err {
            Some(e) => e,
            None => w
                .finish_into()
                .err()
                .expect("the sink failed, so must the pack"),
        };
        match &err {
            Error::Io { path, source } => {
                assert_eq!(path, Path::new("failing-sink"), "limit {limit}");
                assert!(
                    source.to_string().contains("disk full"),
                    "limit {limit}: {source}"
                );
            }
            other => panic!("limit {limit}: expected an I/O error, got {other}"),
        }
    }
}

/// Packs written at the same time on several threads (sharing the writer's chunk buffers)
/// are byte-identical to one written alone, in memory and on disk.
#[test]
fn concurrent_pipelined_writers_give_identical_packs() {
    let recs: Vec<Vec<u8>> = (0..40u32)
        .map(|i| {
            // Varied sizes, some above the 1 MiB chunk.
            let len = if i % 9 == 4 {
                1_500_000
            } else {
                20_000 + 7_919 * i as usize
            };
            (0..len as u32)
                .map(|j| (i.wrapping_mul(13) ^ j ^ (j >> 9)) as u8)
                .collect()
        })
        .collect();
    let (want, summary) =
        pack_to_vec(opts(Codec::None, 9), recs.iter().map(|r| r.as_slice())).unwrap();
    assert_eq!(summary.object_hash, blake2b256(&want));
    let dir = tempfile::tempdir().unwrap();
    std::thread::scope(|s| {
        for t in 0..3 {
            let (recs, want, summary, dir) = (&recs, &want, &summary, dir.path());
            s.spawn(move || {
                for round in 0..2 {
                    let (bytes, s2) =
                        pack_to_vec(opts(Codec::None, 9), recs.iter().map(|r| r.as_slice()))
                            .unwrap();
                    assert!(bytes == *want && s2 == *summary, "thread {t} round {round}");
                    let p = dir.join(format!("{t}-{round}.pack"));
                    let mut w = PackWriter::create_new(&p, opts(Codec::None, 9)).unwrap();
                    for r in recs {
                        w.push(r).unwrap();
                    }
                    assert_eq!(&w.finish().unwrap(), summary);
                    assert!(
                        std::fs::read(&p).unwrap() == *want,
                        "thread {t} round {round}"
                    );
                }
            });
        }
    });
}
