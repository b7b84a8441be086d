//! `cargo xtask bench ingest`: bulk sync of a fixture into a new finalised-state store on each
//! backend, beside a raw baseline measured in the same run: the same key/value bytes, written
//! straight into the raw backend crate in the same batch shape (one synced transaction per
//! sync batch, each batch's rows in key order per table).
//!
//! Each measurement runs in a child process (this binary, hidden subcommands), so peak RSS
//! (`VmHWM`) is the sync's own. Two batch budgets are run per backend; the slope of peak RSS
//! against the budget is what must stay within 1.25 (peak ≤ 1.25 × budget + a fixed base).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use finalised_state::{Backend, Config, FinalisedState, Network, OpenValidation};
use storage_traits::kv::{Direction, KeyRange, KvRead};
use storage_traits::model::{AddrEvent, Height, TxLocation};
use storage_traits::table::*;

use crate::Result;

/// Options of `bench ingest`.
#[derive(clap::Args, Debug)]
pub struct IngestArgs {
    /// Blocks of the fixture.
    #[arg(long, default_value_t = 100_000)]
    pub blocks: u32,
    /// Fixture seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Spam band length in blocks (starting at 60% of the chain).
    #[arg(long, default_value_t = 500)]
    pub spam_len: u32,
    /// Batch budgets to run, in MiB (two or more give the RSS slope).
    #[arg(long, value_delimiter = ',', default_values_t = [64u64, 256])]
    pub budgets_mib: Vec<u64>,
    /// Backends to run (`redb`, `rocksdb`).
    #[arg(long, value_delimiter = ',', default_values_t = [String::from("redb"), String::from("rocksdb")])]
    pub backends: Vec<String>,
    /// Working directory (fixtures are kept and reused; stores are deleted after each run).
    #[arg(long, default_value = "target/bench-ingest")]
    pub work: PathBuf,
}

/// One measured run, as a child reports it.
#[derive(Debug, Default, Clone)]
pub struct RunResult {
    pub blocks: u64,
    pub secs: f64,
    pub batches: u64,
    pub rows: u64,
    pub bytes: u64,
    pub base_rss: u64,
    pub peak_rss: u64,
}

impl RunResult {
    fn parse(out: &str) -> Result<RunResult> {
        let line = out
            .lines()
            .find(|l| l.starts_with("RESULT "))
            .ok_or("child printed no RESULT line")?;
        let mut r = RunResult::default();
        for kv in line.split_whitespace().skip(1) {
            let (k, v) = kv.split_once('=').ok_or("malformed RESULT")?;
            match k {
                "blocks" => r.blocks = v.parse()?,
                "secs" => r.secs = v.parse()?,
                "batches" => r.batches = v.parse()?,
                "rows" => r.rows = v.parse()?,
                "bytes" => r.bytes = v.parse()?,
                "base_rss" => r.base_rss = v.parse()?,
                "peak_rss" => r.peak_rss = v.parse()?,
                _ => {}
            }
        }
        Ok(r)
    }

    fn print(&self) -> String {
        format!(
            "RESULT blocks={} secs={} batches={} rows={} bytes={} base_rss={} peak_rss={}",
            self.blocks,
            self.secs,
            self.batches,
            self.rows,
            self.bytes,
            self.base_rss,
            self.peak_rss
        )
    }
}

/// `VmRSS` and `VmHWM` of this process, in bytes.
pub fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// The fixture for these arguments, generated once and reused.
fn fixture(args: &IngestArgs) -> Result<PathBuf> {
    let dir = args.work.join(format!(
        "fixture-{}-{}-spam{}",
        args.blocks, args.seed, args.spam_len
    ));
    if fixtures::FixtureReader::open(&dir).is_ok() {
        eprintln!("bench ingest: reusing fixture {}", dir.display());
        return Ok(dir);
    }
    let mut cfg = fixtures::SynthConfig::new(args.blocks, args.seed);
    let start = args.blocks / 10 * 6;
    cfg.spam_band = (args.spam_len > 0).then(|| start..start + args.spam_len);
    eprintln!(
        "bench ingest: generating {} blocks into {}",
        args.blocks,
        dir.display()
    );
    let mut opts = fixtures::synth_writer_options(&cfg);
    opts.overwrite = true;
    fixtures::write_synth_fixture_with(&cfg, &dir, None, opts, &mut |_| {})?;
    Ok(dir)
}

fn child(args: &[String]) -> Result<(RunResult, crate::child::Finished)> {
    let done = crate::child::run(crate::child::this_exe(args)?, &args.join(" "), false)?;
    Ok((RunResult::parse(&done.stdout)?, done))
}

/// `(last height of the batch, seconds since the start)` for every batch, from `file`.
fn read_curve(file: &Path) -> Result<Vec<(u32, f64)>> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    text.lines()
        .map(|l| {
            let (h, s) = l
                .split_once(' ')
                .ok_or_else(|| format!("{}: malformed line {l:?}", file.display()))?;
            Ok((h.parse()?, s.parse()?))
        })
        .collect()
}

/// Runs the benchmark and prints the table. With `lookups > 0`, the largest budget of each
/// backend is followed by the lookup benchmark on its synced store and raw copy.
pub fn run(args: IngestArgs) -> Result<Vec<Row>> {
    run_with_lookups(args, 0)
}

/// [`run`], plus `lookups` random lookups per kind and round on each backend's largest budget.
pub fn run_with_lookups(args: IngestArgs, lookups: u32) -> Result<Vec<Row>> {
    std::fs::create_dir_all(&args.work)?;
    let fixture = fixture(&args)?;
    let largest = args.budgets_mib.iter().copied().max().unwrap_or(0);
    let mut rows = Vec::new();
    for backend in &args.backends {
        for budget in &args.budgets_mib {
            let store = args.work.join(format!("store-{backend}-{budget}"));
            let _ = std::fs::remove_dir_all(&store);
            eprintln!("bench ingest: {backend}, budget {budget} MiB: syncing");
            let (synced, sync_proc) = child(&[
                "bench".into(),
                "ingest-sync".into(),
                backend.clone(),
                fixture.display().to_string(),
                store.display().to_string(),
                budget.to_string(),
            ])?;
            let sync_curve = read_curve(&store.join("batch_times"))?;
            eprintln!("bench ingest: {backend}, budget {budget} MiB: raw baseline");
            let raw_dir = args.work.join(format!("raw-{backend}-{budget}"));
            let _ = std::fs::remove_dir_all(&raw_dir);
            let (raw, raw_proc) = child(&[
                "bench".into(),
                "ingest-raw".into(),
                backend.clone(),
                store.display().to_string(),
                raw_dir.display().to_string(),
            ])?;
            let raw_curve = read_curve(&raw_dir.join("batch_times"))?;
            let lookup = if lookups > 0 && *budget == largest {
                eprintln!("bench ingest: {backend}: lookups against the raw copy");
                let done = crate::child::run(
                    crate::child::this_exe(&[
                        "bench".into(),
                        "ingest-lookup".into(),
                        backend.clone(),
                        fixture.display().to_string(),
                        store.display().to_string(),
                        raw_dir.display().to_string(),
                        lookups.to_string(),
                    ])?,
                    "lookup benchmark",
                    false,
                )?;
                Some(done)
            } else {
                None
            };
            let _ = std::fs::remove_dir_all(&store);
            let _ = std::fs::remove_dir_all(&raw_dir);
            rows.push(Row {
                backend: backend.clone(),
                budget_mib: *budget,
                sync: synced,
                raw,
                sync_proc,
                raw_proc,
                sync_curve,
                raw_curve,
                lookup,
            });
        }
    }
    print_table(&rows);
    Ok(rows)
}

/// One backend × budget measurement.
#[derive(Debug, Clone)]
pub struct Row {
    pub backend: String,
    pub budget_mib: u64,
    pub sync: RunResult,
    pub raw: RunResult,
    /// The sync child as the parent measured it (wall time, `wait4` peak RSS).
    pub sync_proc: crate::child::Finished,
    /// The raw-baseline child.
    pub raw_proc: crate::child::Finished,
    /// `(last height, seconds since start)` after every committed sync batch.
    pub sync_curve: Vec<(u32, f64)>,
    /// The same for the raw baseline's batches (the same batches).
    pub raw_curve: Vec<(u32, f64)>,
    /// The lookup child, when it ran on this row's store.
    pub lookup: Option<crate::child::Finished>,
}

impl Row {
    /// Sync throughput over raw throughput (≥ 0.75 is the target).
    pub fn ratio(&self) -> f64 {
        self.raw.secs / self.sync.secs.max(1e-9)
    }
}

/// The RSS slope (peak growth per budget byte) between the smallest and largest budget of
/// a backend.
pub fn rss_slope(rows: &[Row], backend: &str) -> Option<(f64, f64)> {
    let mut mine: Vec<&Row> = rows.iter().filter(|r| r.backend == backend).collect();
    mine.sort_by_key(|r| r.budget_mib);
    let (lo, hi) = (mine.first()?, mine.last()?);
    if lo.budget_mib == hi.budget_mib {
        return None;
    }
    let slope = (hi.sync.peak_rss as f64 - lo.sync.peak_rss as f64)
        / ((hi.budget_mib - lo.budget_mib) as f64 * 1024.0 * 1024.0);
    let base = lo.sync.peak_rss as f64 - slope * lo.budget_mib as f64 * 1024.0 * 1024.0;
    Some((slope, base))
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<8} {:>7} {:>8} {:>10} {:>11} {:>10} {:>7} {:>10} {:>10}",
        "backend",
        "budget",
        "blocks",
        "sync b/s",
        "raw rows/s",
        "raw b/s",
        "ratio",
        "base MiB",
        "peak MiB"
    );
    for r in rows {
        println!(
            "{:<8} {:>6}M {:>8} {:>10.0} {:>11.0} {:>10.0} {:>7.2} {:>10.1} {:>10.1}",
            r.backend,
            r.budget_mib,
            r.sync.blocks,
            r.sync.blocks as f64 / r.sync.secs,
            r.raw.rows as f64 / r.raw.secs,
            r.sync.blocks as f64 / r.raw.secs,
            r.ratio(),
            mib(r.sync.base_rss),
            mib(r.sync.peak_rss),
        );
    }
    for backend in rows
        .iter()
        .map(|r| r.backend.as_str())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if let Some((slope, base)) = rss_slope(rows, backend) {
            println!(
                "{backend}: peak RSS = {:.1} MiB + {slope:.2} x budget (target slope <= 1.25)",
                base / (1024.0 * 1024.0)
            );
        }
    }
}

fn open_sync<B: Backend>(store: &Path, budget_mib: u64) -> Result<FinalisedState<B>> {
    let mut c = Config::new(store, Network::Regtest);
    c.open_validation = OpenValidation::Lazy;
    c.sync_write_batch_bytes = (budget_mib as usize) << 20;
    Ok(FinalisedState::<B>::open(c)?)
}

/// Child: syncs the fixture and prints a RESULT line; writes the batch boundaries (the last
/// height of every committed batch) to `<store>/batches`.
pub fn child_sync(backend: &str, fixture: &Path, store: &Path, budget_mib: u64) -> Result<()> {
    match backend {
        "redb" => sync_with::<store_redb::RedbStore>(fixture, store, budget_mib),
        "rocksdb" => sync_with::<store_lmdb_compat::RocksStore>(fixture, store, budget_mib),
        other => Err(format!("unknown backend {other}").into()),
    }
}

/// How many decoded blocks the fixture-reading thread may hold ahead of the sync (a bound,
/// so spam blocks waiting in the channel stay a small, fixed part of the peak RSS).
const READ_AHEAD_BLOCKS: usize = 4;

fn sync_with<B: Backend>(fixture: &Path, store: &Path, budget_mib: u64) -> Result<()> {
    let reader = fixtures::FixtureReader::open(fixture)?;
    let tip = reader.tip().ok_or("empty fixture")?;
    let state = open_sync::<B>(store, budget_mib)?;
    let (base_rss, _) = rss();
    let mut boundaries = Vec::new();
    let mut read_error = None;
    let fixture_blocks = reader.range(reader.start_height()..=tip)?;
    let mut times = Vec::new();
    // The fixture is read and decoded on a second thread, a few blocks ahead, as an
    // indexer's block source runs beside its store: the time measured is the store's, not
    // the fixture format's (the raw baseline never decodes blocks either).
    let (sent, received) = std::sync::mpsc::sync_channel(READ_AHEAD_BLOCKS);
    let (written, secs) = std::thread::scope(|scope| {
        scope.spawn(move || {
            for block in fixture_blocks {
                let failed = block.is_err();
                if sent.send(block).is_err() || failed {
                    break;
                }
            }
        });
        let blocks = received.iter().map_while(|b| match b {
            Ok(b) => Some(b),
            Err(e) => {
                read_error = Some(e);
                None
            }
        });
        let started = Instant::now();
        let written = state.write_blocks(blocks, |p| {
            boundaries.push(p.height.0);
            times.push(started.elapsed().as_secs_f64());
        });
        (written, started.elapsed().as_secs_f64())
    });
    let written = written?;
    if let Some(e) = read_error {
        return Err(e.into());
    }
    let (_, peak_rss) = rss();
    std::fs::write(
        store.join("batches"),
        boundaries
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    )?;
    write_curve(&store.join("batch_times"), &boundaries, &times)?;
    let result = RunResult {
        blocks: written,
        secs,
        batches: boundaries.len() as u64,
        base_rss,
        peak_rss,
        ..Default::default()
    };
    println!("{}", result.print());
    Ok(())
}

/// The height a row was written at, for assigning it to its sync batch.
fn row_height(table: &str, key: &[u8], value: &[u8]) -> Result<u32> {
    let loc = |l: TxLocation| l.block_height;
    Ok(match table {
        t if t == Heights::NAME => decode_row::<Heights>(key, value)?.0,
        t if t == TxidLocation::NAME => loc(decode_row::<TxidLocation>(key, value)?),
        t if t == Spent::NAME => loc(decode_row::<Spent>(key, value)?),
        t if t == AddressHistory::NAME => {
            let e: AddrEvent = decode_row::<AddressHistory>(key, value)?;
            loc(e.tx_location)
        }
        _ => {
            use storage_traits::TableKey;
            Height::decode_key(key)?.0
        }
    })
}

/// The rows of a synced store grouped as the sync wrote them: batch → table → rows in key
/// order. Metadata and accumulator rows (written outside batches) are left out of both.
type Batches = Vec<BTreeMap<&'static str, Vec<(Vec<u8>, Vec<u8>)>>>;

fn collect_batches<B: Backend>(store: &Path) -> Result<(Batches, Vec<u32>, u64, u64)> {
    let boundaries: Vec<u32> = std::fs::read_to_string(store.join("batches"))?
        .lines()
        .map(|l| l.parse())
        .collect::<std::result::Result<_, _>>()?;
    let state = open_sync::<B>(store, 64)?;
    let r = state.kv().begin_read()?;
    let mut batches: Batches = vec![BTreeMap::new(); boundaries.len()];
    let (mut rows, mut bytes) = (0u64, 0u64);
    for spec in V1_TABLES {
        if spec.name == Metadata::NAME || spec.name == TxOutSetAccumulator::NAME {
            continue;
        }
        for row in r.range(spec.name, KeyRange::all(), Direction::Forward)? {
            let (k, v) = row?;
            let h = row_height(spec.name, &k, &v)?;
            let i = boundaries
                .partition_point(|b| *b < h)
                .min(boundaries.len() - 1);
            rows += 1;
            bytes += (k.len() + v.len()) as u64;
            batches[i].entry(spec.name).or_default().push((k, v));
        }
    }
    for batch in &mut batches {
        for rows in batch.values_mut() {
            rows.sort();
        }
    }
    Ok((batches, boundaries, rows, bytes))
}

/// Writes `height seconds` lines, one per batch.
fn write_curve(file: &Path, heights: &[u32], secs: &[f64]) -> Result<()> {
    let text: String = heights
        .iter()
        .zip(secs)
        .map(|(h, s)| format!("{h} {s}\n"))
        .collect();
    std::fs::write(file, text)?;
    Ok(())
}

/// The raw RocksDB copy, opened read-write with exactly the options the backend gives its
/// own store: the directory is created by `store_lmdb_compat::RocksStore` with
/// `RocksOptions::default()` (so the two option lists cannot drift apart), then opened raw
/// with the options RocksDB persisted there and a block cache of the store's size, as the
/// `kv` bench's raw side does. Both sides read the same kind of files and pay the same
/// memtable filter on every put.
///
/// The lookup child opens it this way too, not read-only: a read-write open flushes the rows
/// still in the write-ahead log into SST files, exactly as opening the Strata store does. A
/// read-only open instead replays them into a memtable, and lookups of a small table (block
/// hash → height) then measured a skiplist against Strata's block-cache reads (0.18).
fn open_raw_rocks(raw_dir: &Path) -> Result<rocksdb::DB> {
    let defaults = store_lmdb_compat::RocksOptions::default();
    drop(store_lmdb_compat::RocksStore::open(
        raw_dir, V1_TABLES, defaults,
    )?);
    let cache = rocksdb::Cache::new_lru_cache(defaults.block_cache_bytes);
    let env = rocksdb::Env::new()?;
    let (opts, cfs) = rocksdb::Options::load_latest(raw_dir, env, false, cache)?;
    Ok(rocksdb::DB::open_cf_descriptors(&opts, raw_dir, cfs)?)
}

/// Child: writes the synced store's rows into a raw backend, batch by batch, timed.
pub fn child_raw(backend: &str, store: &Path, raw_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(raw_dir)?;
    let (batches, boundaries, rows, bytes) = match backend {
        "redb" => collect_batches::<store_redb::RedbStore>(store)?,
        "rocksdb" => collect_batches::<store_lmdb_compat::RocksStore>(store)?,
        other => return Err(format!("unknown backend {other}").into()),
    };
    let started;
    let mut times = Vec::with_capacity(batches.len());
    match backend {
        "redb" => {
            let db = redb::Database::create(raw_dir.join("raw.redb"))?;
            started = Instant::now();
            for batch in &batches {
                let tx = db.begin_write()?;
                for (table, rows) in batch {
                    if *table == AddressHistory::NAME {
                        let def: redb::MultimapTableDefinition<&[u8], &[u8]> =
                            redb::MultimapTableDefinition::new(table);
                        let mut t = tx.open_multimap_table(def)?;
                        for (k, v) in rows {
                            t.insert(k.as_slice(), v.as_slice())?;
                        }
                    } else {
                        let def: redb::TableDefinition<&[u8], &[u8]> =
                            redb::TableDefinition::new(table);
                        let mut t = tx.open_table(def)?;
                        for (k, v) in rows {
                            t.insert(k.as_slice(), v.as_slice())?;
                        }
                    }
                }
                tx.commit()?;
                times.push(started.elapsed().as_secs_f64());
            }
        }
        _ => {
            let db = open_raw_rocks(raw_dir)?;
            let mut wo = rocksdb::WriteOptions::default();
            wo.set_sync(true);
            started = Instant::now();
            for batch in &batches {
                let mut wb = rocksdb::WriteBatch::default();
                for (table, rows) in batch {
                    let cf = db.cf_handle(table).ok_or("missing column family")?;
                    for (k, v) in rows {
                        if *table == AddressHistory::NAME {
                            // The same physical layout the backend uses for dup-sort rows.
                            wb.put_cf(cf, [k.as_slice(), v.as_slice()].concat(), []);
                        } else {
                            wb.put_cf(cf, k, v);
                        }
                    }
                }
                db.write_opt(wb, &wo)?;
                times.push(started.elapsed().as_secs_f64());
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    write_curve(&raw_dir.join("batch_times"), &boundaries, &times)?;
    let result = RunResult {
        blocks: 0,
        secs,
        batches: batches.len() as u64,
        rows,
        bytes,
        ..Default::default()
    };
    println!("{}", result.print());
    Ok(())
}

/// Child: random lookups through the finalised state (`get_tx_location`, `get_block_height`:
/// a read transaction, checksum verification and decoding per call) against a raw `get` of
/// the same key in the raw copy of the same rows (one read transaction per lookup on redb,
/// a plain `get_cf` on RocksDB, both stores opened read-write with the same options so their
/// rows sit in the same kind of files), interleaved round by round. Prints `STRATA-BENCH` lines.
pub fn child_lookup(
    backend: &str,
    fixture: &Path,
    store: &Path,
    raw_dir: &Path,
    count: u32,
) -> Result<()> {
    match backend {
        "redb" => lookup_with::<store_redb::RedbStore>(backend, fixture, store, raw_dir, count),
        "rocksdb" => {
            lookup_with::<store_lmdb_compat::RocksStore>(backend, fixture, store, raw_dir, count)
        }
        other => Err(format!("unknown backend {other}").into()),
    }
}

/// Raw single-key reads of one table.
enum RawDb {
    Redb(redb::Database),
    Rocks(rocksdb::DB),
}

impl RawDb {
    fn open(backend: &str, raw_dir: &Path) -> Result<RawDb> {
        Ok(match backend {
            "redb" => RawDb::Redb(redb::Database::open(raw_dir.join("raw.redb"))?),
            _ => RawDb::Rocks(open_raw_rocks(raw_dir)?),
        })
    }

    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(match self {
            RawDb::Redb(db) => {
                use redb::ReadableDatabase;
                let def: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new(table);
                let tx = db.begin_read()?;
                let t = tx.open_table(def)?;
                t.get(key)?.map(|v| v.value().to_vec())
            }
            RawDb::Rocks(db) => {
                let cf = db.cf_handle(table).ok_or("missing column family")?;
                db.get_cf(cf, key)?
            }
        })
    }
}

fn lookup_with<B: Backend>(
    backend: &str,
    fixture: &Path,
    store: &Path,
    raw_dir: &Path,
    count: u32,
) -> Result<()> {
    use storage_traits::TableKey;
    use storage_traits::capability::{BlockCoreExt, DbRead};
    let reader = fixtures::FixtureReader::open(fixture)?;
    let first = reader.start_height();
    let blocks = reader.block_count() as u64;
    // xorshift64*: a fixed sample, the same on every backend.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut samples = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let h = first + (next() % blocks) as u32;
        let block = reader.get(h)?;
        let i = (next() % block.transactions.len() as u64) as usize;
        samples.push((Height(h), block.header.hash(), block.transactions[i].txid));
    }
    // Index lookups (txid → location, block hash → height) read their row directly; reads by
    // height would validate the block on demand above a lazily opened store's validated tip
    // and so time validation, not lookups.
    let state = open_sync::<B>(store, 64)?;
    let raw = RawDb::open(backend, raw_dir)?;
    // Warm-up: one pass of each, unmeasured, checking both sides agree.
    for (h, hash, txid) in &samples {
        let loc = state
            .get_tx_location(txid)?
            .ok_or_else(|| format!("txid {txid} not found"))?;
        if loc.block_height != h.0 {
            return Err(format!("txid {txid}: location {loc:?}, expected height {h}").into());
        }
        raw.get(TxidLocation::NAME, &txid.encode_key())?
            .ok_or("raw copy lacks a txid")?;
        if state.get_block_height(hash)? != Some(*h) {
            return Err(format!("block {hash}: height is not {h}").into());
        }
        raw.get(Heights::NAME, &hash.encode_key())?
            .ok_or("raw copy lacks a block hash")?;
    }
    let rounds = 7;
    type Routine<'a> = Box<dyn Fn() -> Result<()> + 'a>;
    let kinds: [(&str, Routine<'_>, Routine<'_>); 2] = [
        (
            "lookup_txid",
            Box::new(|| {
                for (_, _, txid) in &samples {
                    std::hint::black_box(state.get_tx_location(txid)?);
                }
                Ok(())
            }),
            Box::new(|| {
                for (_, _, txid) in &samples {
                    std::hint::black_box(raw.get(TxidLocation::NAME, &txid.encode_key())?);
                }
                Ok(())
            }),
        ),
        (
            "lookup_block_hash",
            Box::new(|| {
                for (_, hash, _) in &samples {
                    std::hint::black_box(state.get_block_height(hash)?);
                }
                Ok(())
            }),
            Box::new(|| {
                for (_, hash, _) in &samples {
                    std::hint::black_box(raw.get(Heights::NAME, &hash.encode_key())?);
                }
                Ok(())
            }),
        ),
    ];
    let n = samples.len() as f64;
    for (figure, strata, raw_side) in &kinds {
        let (mut s_rates, mut r_rates, mut ratios) = (vec![], vec![], vec![]);
        for round in 0..rounds {
            let time = |f: &Routine<'_>| -> Result<f64> {
                let t = Instant::now();
                f()?;
                Ok(n / t.elapsed().as_secs_f64())
            };
            let (s, r) = if round % 2 == 0 {
                let s = time(strata)?;
                (s, time(raw_side)?)
            } else {
                let r = time(raw_side)?;
                (time(strata)?, r)
            };
            s_rates.push(s);
            r_rates.push(r);
            ratios.push(s / r);
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "STRATA-BENCH figure={figure} backend={backend} value={} baseline={} ratio={} unit=lookups/s samples={} rounds={rounds}",
            med(&mut s_rates),
            med(&mut r_rates),
            med(&mut ratios),
            samples.len()
        );
    }
    Ok(())
}
