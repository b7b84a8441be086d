//! Freezing and reading packs against raw file I/O of the same bytes, in the same run.
//!
//! - `freeze/pack_none`: a `.pack` of realistic block payloads (`IndexedBlock::to_bytes()`
//!   of a synthetic chain), no compression: records + CRC32C + index + trailer + BLAKE2b-256
//!   of the whole file, written at a fresh path and fsynced. Baseline `freeze/raw_write_fsync`:
//!   the finished pack's bytes written sequentially to a fresh file and fsynced.
//! - `read/pack_record`: random single-record reads through an open `PackReader` (one pread,
//!   CRC check, copy out). Baseline `read/raw_pread`: a pread of the same byte ranges into a
//!   reused buffer, on a plainly opened file. `PackReader::open` opens with `O_NOATIME`
//!   (which takes the kernel's atime check off each read), so the interleaved measurement
//!   also prints the ratio against a pread on an `O_NOATIME` handle: the cost of the
//!   verification alone.
//!
//! The ratios (the result; absolute times on shared machines are noise) are printed at the
//! end from an interleaved measurement (`storage_traits::conformance::interleave`): round
//! after round, each routine once in alternating order, the median of the per-round ratios
//! (`STRATA_BENCH_ROUNDS` rounds, default 15).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use coldpack::format::{Codec, RECORD_KIND_PAYLOAD};
use coldpack::{PackOptions, PackReader, PackWriter};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use storage_traits::Versioned;
use storage_traits::conformance::interleave;

fn payloads() -> Vec<Vec<u8>> {
    // A synthetic chain with spam blocks, so record sizes range from a few hundred bytes
    // to tens of kilobytes (as real chains do).
    let mut cfg = fixtures::SynthConfig::new(2_000, 7);
    cfg.spam_band = Some(500..520);
    fixtures::synth_chain(&cfg).map(|b| b.to_bytes()).collect()
}

fn write_pack(path: &Path, recs: &[Vec<u8>], codec: Codec) -> u64 {
    let mut w = PackWriter::create_new(
        path,
        PackOptions {
            codec,
            record_kind: RECORD_KIND_PAYLOAD,
            first_height: 0,
        },
    )
    .unwrap();
    for r in recs {
        w.push(r).unwrap();
    }
    w.finish().unwrap().size
}

fn write_raw(path: &Path, bytes: &[u8]) {
    let mut f = File::create_new(path).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

/// The CPU time of the whole process so far (every thread, user and system).
fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn time<F: FnMut()>(mut f: F) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

struct Fixture {
    dir: tempfile::TempDir,
    recs: Vec<Vec<u8>>,
    pack_bytes: Vec<u8>,
    reader: PackReader,
    raw: File,
    /// The same file opened as `PackReader::open` opens it (`O_NOATIME`).
    raw_noatime: File,
    ranges: Vec<(u64, usize)>,
    picks: Vec<u32>,
}

fn fixture() -> Fixture {
    let dir =
        tempfile::tempdir_in(std::env::var_os("COLDPACK_BENCH_DIR").unwrap_or_else(|| ".".into()))
            .unwrap();
    let recs = payloads();
    let p = dir.path().join("read.pack");
    write_pack(&p, &recs, Codec::None);
    let pack_bytes = std::fs::read(&p).unwrap();
    let reader = PackReader::open(&p).unwrap();
    let raw = File::open(&p).unwrap();
    #[cfg(target_os = "linux")]
    let raw_noatime = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOATIME)
            .open(&p)
            .unwrap()
    };
    #[cfg(not(target_os = "linux"))]
    let raw_noatime = File::open(&p).unwrap();
    let ranges = (0..reader.record_count())
        .map(|i| {
            (
                reader.record_offset(i).unwrap(),
                reader.stored_len(i).unwrap() as usize + 4,
            )
        })
        .collect();
    // A fixed pseudo-random order of records.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let picks = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % u64::from(reader.record_count())) as u32
        })
        .collect();
    Fixture {
        dir,
        recs,
        pack_bytes,
        reader,
        raw,
        raw_noatime,
        ranges,
        picks,
    }
}

fn bench(c: &mut Criterion) {
    let fx = fixture();
    let bytes = fx.pack_bytes.len() as u64;
    let mut n = 0u64;
    let mut fresh = |tag: &str| {
        n += 1;
        fx.dir.path().join(format!("{tag}-{n}"))
    };

    let mut g = c.benchmark_group("freeze");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    g.bench_function(BenchmarkId::new("pack_none", bytes), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let p = fresh("p");
                total += time(|| {
                    write_pack(&p, &fx.recs, Codec::None);
                });
                std::fs::remove_file(&p).unwrap();
            }
            total
        })
    });
    g.bench_function(BenchmarkId::new("raw_write_fsync", bytes), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let p = fresh("r");
                total += time(|| write_raw(&p, &fx.pack_bytes));
                std::fs::remove_file(&p).unwrap();
            }
            total
        })
    });
    g.bench_function(BenchmarkId::new("pack_zstd3", bytes), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let p = fresh("z");
                total += time(|| {
                    write_pack(&p, &fx.recs, Codec::Zstd { level: 3 });
                });
                std::fs::remove_file(&p).unwrap();
            }
            total
        })
    });
    g.finish();

    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Elements(fx.picks.len() as u64));
    let mut out = Vec::new();
    g.bench_function("pack_record", |b| {
        b.iter(|| {
            for &i in &fx.picks {
                std::hint::black_box(fx.reader.read_ref(i, &mut out).unwrap());
            }
        })
    });
    let mut buf = vec![0u8; fx.ranges.iter().map(|r| r.1).max().unwrap_or(0)];
    g.bench_function("raw_pread", |b| {
        b.iter(|| {
            for &i in &fx.picks {
                let (off, len) = fx.ranges[i as usize];
                fx.raw.read_exact_at(&mut buf[..len], off).unwrap();
                std::hint::black_box(&buf[..len]);
            }
        })
    });
    g.finish();

    // The record checksum alone: the `crc32c` crate (the reference, 3-way `crc32`
    // instruction) against `coldpack::crc` (carry-less-multiply folding), at a mean-record
    // size that stays in L1/L2 and a spam-record size that does not.
    let mut g = c.benchmark_group("crc32c");
    for len in [4 << 10, 32 << 10, 256 << 10, 2 << 20] {
        let data = &fx.pack_bytes[..len.min(fx.pack_bytes.len())];
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_with_input(BenchmarkId::new("crate", len), data, |b, d| {
            b.iter(|| crc32c::crc32c(std::hint::black_box(d)))
        });
        g.bench_with_input(BenchmarkId::new("coldpack", len), data, |b, d| {
            b.iter(|| coldpack::crc::crc32c(std::hint::black_box(d)))
        });
    }
    g.finish();

    interleaved(&fx);
}

/// Round after round, each routine once in alternating order
/// (`storage_traits::conformance::interleave`); each ratio is the median of the per-round
/// ratios, with their range.
fn interleaved(fx: &Fixture) {
    let rounds = interleave::rounds_from_env(15);
    let made = std::cell::Cell::new(0u64);
    let fresh = |tag: &str| {
        made.set(made.get() + 1);
        fx.dir.path().join(format!("{tag}-{}", made.get()))
    };
    let mut out = Vec::new();
    let mut buf = vec![0u8; fx.ranges.iter().map(|r| r.1).max().unwrap_or(0)];
    // The CPU each freeze costs (all threads of the process: the writer, the hashing
    // thread, the kernel's work in their system calls), beside its wall time: on a shared
    // machine the threads wait for cores in proportion to it.
    let pack_cpu = std::cell::RefCell::new(Vec::new());
    let raw_cpu = std::cell::RefCell::new(Vec::new());
    let mut pack = || {
        let p = fresh("ip");
        let c = process_cpu();
        let t = time(|| {
            write_pack(&p, &fx.recs, Codec::None);
        });
        pack_cpu.borrow_mut().push(process_cpu() - c);
        std::fs::remove_file(&p).unwrap();
        t
    };
    let mut raw = || {
        let p = fresh("ir");
        let c = process_cpu();
        let t = time(|| write_raw(&p, &fx.pack_bytes));
        raw_cpu.borrow_mut().push(process_cpu() - c);
        std::fs::remove_file(&p).unwrap();
        t
    };
    let mut hash = || {
        time(|| {
            std::hint::black_box(coldpack::format::blake2b256(&fx.pack_bytes));
        })
    };
    let mut read = || {
        time(|| {
            for &i in &fx.picks {
                std::hint::black_box(fx.reader.read_ref(i, &mut out).unwrap());
            }
        })
    };
    let pread_on = |file: &File, buf: &mut Vec<u8>| {
        time(|| {
            for &i in &fx.picks {
                let (off, len) = fx.ranges[i as usize];
                file.read_exact_at(&mut buf[..len], off).unwrap();
                std::hint::black_box(&buf[..len]);
            }
        })
    };
    let mut buf2 = buf.clone();
    let mut pread = || pread_on(&fx.raw, &mut buf);
    let mut pread_noatime = || pread_on(&fx.raw_noatime, &mut buf2);
    let m = interleave::run(
        rounds,
        &mut [
            ("pack", &mut pack),
            ("raw", &mut raw),
            ("hash", &mut hash),
            ("read", &mut read),
            ("pread", &mut pread),
            ("pread_noatime", &mut pread_noatime),
        ],
    );
    // Throughput ratios (Strata / raw) are the reciprocals of the time ratios.
    let freeze = m.ratio("pack", "raw").recip();
    let ceiling = m.ratio("hash", "raw").recip();
    let reads = m.ratio("read", "pread").recip();
    let reads_same_open = m.ratio("read", "pread_noatime").recip();
    let secs = |side| m.median(side).as_secs_f64();
    let mb = fx.pack_bytes.len() as f64 / 1e6;
    println!("\n== coldpack ratios (interleaved, {rounds} rounds, median of per-round ratios) ==");
    println!(
        "freeze, no compression: pack {:.0} MB/s, raw write+fsync {:.0} MB/s, ratio {:.2} ({:.2}–{:.2}) (target >= 0.7); {} records, {:.1} MB",
        mb / secs("pack"),
        mb / secs("raw"),
        freeze.median,
        freeze.min,
        freeze.max,
        fx.recs.len(),
        mb
    );
    println!(
        "  ceiling: one BLAKE2b-256 pass over the same bytes (the object name needs it) {:.0} MB/s; a freeze costing only that hash would score raw/hash = {:.2}",
        mb / secs("hash"),
        ceiling.median
    );
    let median_ms = |v: &std::cell::RefCell<Vec<Duration>>| {
        let secs: Vec<f64> = v.borrow().iter().map(Duration::as_secs_f64).collect();
        interleave::Spread::of(&secs).median * 1e3
    };
    println!(
        "  CPU per freeze (all threads, user + system, median): pack {:.1} ms, raw write+fsync {:.1} ms",
        median_ms(&pack_cpu),
        median_ms(&raw_cpu)
    );
    let n = fx.picks.len() as f64;
    // Machine-readable, for `cargo xtask bench`.
    println!(
        "STRATA-BENCH figure=freeze value={} baseline={} ratio={} unit=MB/s records={} ratio_min={} ratio_max={} rounds={rounds}",
        mb / secs("pack"),
        mb / secs("raw"),
        freeze.median,
        fx.recs.len(),
        freeze.min,
        freeze.max
    );
    println!(
        "STRATA-BENCH figure=pack_read value={} baseline={} ratio={} unit=reads/s ratio_min={} ratio_max={} rounds={rounds} ratio_noatime_baseline={}",
        n / secs("read"),
        n / secs("pread"),
        reads.median,
        reads.min,
        reads.max,
        reads_same_open.median
    );
    println!(
        "random single-record reads: pack {:.2} us/read, raw pread {:.2} us/read, ratio {:.2} ({:.2}–{:.2}) (target >= 0.8)",
        secs("read") * 1e6 / n,
        secs("pread") * 1e6 / n,
        reads.median,
        reads.min,
        reads.max
    );
    println!(
        "  against a pread on an O_NOATIME handle (as PackReader::open opens): {:.2} us/read, ratio {:.2} ({:.2}–{:.2}): the verification's own cost",
        secs("pread_noatime") * 1e6 / n,
        reads_same_open.median,
        reads_same_open.min,
        reads_same_open.max
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
