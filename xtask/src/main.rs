//! `cargo xtask`: Strata's developer tasks (dev only; no library depends on this crate).
//!
//! ```text
//! cargo xtask fixtures synth --blocks N --seed S --out DIR [--start-height H]
//!                            [--spam-start H --spam-len L | --no-spam] [--json [FILE]] [--force]
//! cargo xtask fixtures verify DIR
//! cargo xtask fixtures zebra --out DIR [--force]
//! cargo xtask bench [--quick] [--repeat N] [--only a,b] [--out FILE]   # writes BENCHMARKS.md
//! cargo xtask bench ingest [...]
//! cargo xtask bench migrate [--n N] [--sizes 1,4] [--batch-mib 16] [--repeat 3]
//! ```
//!
//! Subcommands are grouped by area (`fixtures`, and later `bench`, `report`) so each area
//! adds a variant to [`Command`] and a module of its own.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use xtask::{Result, bench_ingest, bench_report, zebra};

use clap::{Args, Parser, Subcommand};
use fixtures::{FixtureReader, Progress, SynthConfig};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Strata developer tasks", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Synthetic chain fixtures.
    #[command(subcommand)]
    Fixtures(FixturesCommand),
    /// End-to-end benchmarks, each beside a raw baseline measured in the same run. Without
    /// a subcommand: every benchmark, then BENCHMARKS.md and its plots.
    Bench(BenchArgs),
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct BenchArgs {
    #[command(subcommand)]
    command: Option<BenchCommand>,
    #[command(flatten)]
    report: bench_report::ReportArgs,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Bulk sync of a fixture on each backend against raw writes of the same bytes.
    Ingest(bench_ingest::IngestArgs),
    /// The v1.1 -> v1.2 migration on N and 4N blocks: scaling ratio and stage B against a
    /// raw sorted insert.
    Migrate(bench_report::MigrateArgs),
    /// (internal) Lookups on a synced store against its raw copy, in a child process.
    #[command(hide = true)]
    IngestLookup {
        backend: String,
        fixture: PathBuf,
        store: PathBuf,
        raw: PathBuf,
        count: u32,
    },
    /// (internal) One sync run, in a child process.
    #[command(hide = true)]
    IngestSync {
        backend: String,
        fixture: PathBuf,
        store: PathBuf,
        budget_mib: u64,
    },
    /// (internal) One raw-baseline run, in a child process.
    #[command(hide = true)]
    IngestRaw {
        backend: String,
        store: PathBuf,
        raw: PathBuf,
    },
}

#[derive(Subcommand)]
enum FixturesCommand {
    /// Generate a deterministic Zcash-shaped chain into a fixture directory.
    Synth(SynthArgs),
    /// Read every block of a fixture, verifying checksums, file hashes, heights, parent
    /// links and merkle roots.
    Verify {
        /// The fixture directory.
        dir: PathBuf,
    },
    /// Convert the real Zcash blocks shipped in the `zebra-test` crate (mainnet and
    /// testnet) into fixture directories, one per contiguous run of heights.
    Zebra(zebra::ZebraArgs),
}

#[derive(Args)]
struct SynthArgs {
    /// Number of blocks.
    #[arg(long)]
    blocks: u32,
    /// The seed (same seed and options: byte-identical output).
    #[arg(long)]
    seed: u64,
    /// The fixture directory to create.
    #[arg(long)]
    out: PathBuf,
    /// Height of the first block.
    #[arg(long, default_value_t = 0)]
    start_height: u32,
    /// First height of the spam band (default: 60% of the way into the chain).
    #[arg(long, requires = "spam_len", conflicts_with = "no_spam")]
    spam_start: Option<u32>,
    /// Length of the spam band in blocks (default: 2% of the chain).
    #[arg(long, requires = "spam_start", conflicts_with = "no_spam")]
    spam_len: Option<u32>,
    /// Generate no spam band.
    #[arg(long)]
    no_spam: bool,
    /// Also write the chain as JSON lines, to FILE or, without one, to `<DIR>.jsonl`.
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    json: Option<Option<PathBuf>>,
    /// Replace an existing fixture directory.
    #[arg(long)]
    force: bool,
    /// Blocks per block file.
    #[arg(long, default_value_t = fixtures::format::DEFAULT_BLOCKS_PER_FILE)]
    blocks_per_file: u32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Fixtures(FixturesCommand::Synth(args)) => synth(args),
        Command::Fixtures(FixturesCommand::Verify { dir }) => verify(&dir),
        Command::Fixtures(FixturesCommand::Zebra(args)) => zebra::run(args),
        Command::Bench(BenchArgs {
            command: None,
            report,
        }) => bench_report::run(report),
        Command::Bench(BenchArgs {
            command: Some(command),
            ..
        }) => bench(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let top = e.to_string();
            eprintln!("error: {top}");
            let mut source = std::error::Error::source(&*e);
            while let Some(s) = source {
                let text = s.to_string();
                // Most of the crate's errors already quote their source.
                if !top.contains(&text) {
                    eprintln!("  caused by: {text}");
                }
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn bench(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Ingest(args) => bench_ingest::run(args).map(|_| ()),
        BenchCommand::Migrate(args) => bench_report::run_migrate(args),
        BenchCommand::IngestSync {
            backend,
            fixture,
            store,
            budget_mib,
        } => bench_ingest::child_sync(&backend, &fixture, &store, budget_mib),
        BenchCommand::IngestRaw {
            backend,
            store,
            raw,
        } => bench_ingest::child_raw(&backend, &store, &raw),
        BenchCommand::IngestLookup {
            backend,
            fixture,
            store,
            raw,
            count,
        } => bench_ingest::child_lookup(&backend, &fixture, &store, &raw, count),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn synth(args: SynthArgs) -> Result<()> {
    let mut cfg = SynthConfig::new(args.blocks, args.seed);
    cfg.start_height = args.start_height;
    cfg.spam_band = match (args.no_spam, args.spam_start, args.spam_len) {
        (true, _, _) => None,
        (false, Some(start), Some(len)) => Some(
            start
                ..start
                    .checked_add(len)
                    .ok_or("--spam-start + --spam-len overflows")?,
        ),
        _ => SynthConfig::default_spam_band(args.start_height, args.blocks),
    };
    let json_path = args.json.map(|p| {
        p.unwrap_or_else(|| {
            let mut s = args.out.clone().into_os_string();
            s.push(".jsonl");
            PathBuf::from(s)
        })
    });
    eprintln!(
        "synth: {} blocks from height {}, seed {}, spam band {}, into {}{}",
        cfg.blocks,
        cfg.start_height,
        cfg.seed,
        cfg.spam_band
            .as_ref()
            .map_or("none".to_string(), |b| format!("{}..{}", b.start, b.end)),
        args.out.display(),
        json_path
            .as_ref()
            .map_or(String::new(), |p| format!(" and {}", p.display())),
    );

    let mut opts = fixtures::synth_writer_options(&cfg);
    opts.overwrite = args.force;
    opts.blocks_per_file = args.blocks_per_file;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut report = |p: &Progress| {
        let done = p.blocks_done == p.blocks_total;
        if done || last_report.elapsed().as_secs_f64() >= 1.0 {
            last_report = Instant::now();
            let secs = p.elapsed_secs.max(1e-9);
            eprintln!(
                "synth: height {:>10}  {:>8}/{} blocks  {:>9.0} blocks/s  {:>10} txs  {:>9.1} MiB  {:>7.1} MiB/s",
                p.height,
                p.blocks_done,
                p.blocks_total,
                f64::from(p.blocks_done) / secs,
                p.transactions,
                mib(p.block_bytes),
                mib(p.block_bytes) / secs,
            );
        }
    };
    let summary = fixtures::write_synth_fixture_with(
        &cfg,
        &args.out,
        json_path.as_deref(),
        opts,
        &mut report,
    )?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "synth: wrote {} blocks, {} transactions, {} files, {:.1} MiB on disk in {:.1} s ({:.0} blocks/s, {:.1} MiB/s)",
        summary.blocks,
        summary.transactions,
        summary.files.len() * 2 + 1,
        mib(summary.bytes),
        secs,
        f64::from(summary.blocks) / secs.max(1e-9),
        mib(summary.bytes) / secs.max(1e-9),
    );
    if let Some(p) = json_path {
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        eprintln!("synth: JSON lines at {} ({:.1} MiB)", p.display(), mib(len));
    }
    Ok(())
}

fn verify(dir: &Path) -> Result<()> {
    let started = Instant::now();
    let reader = FixtureReader::open(dir)?;
    reader.verify_files()?;
    let mut prev_hash = None;
    let mut txs = 0u64;
    for block in reader.iter() {
        let block = block?;
        let height = block.header.height().map_or(0, |h| h.0);
        if block.computed_merkle_root() != block.header.data().merkle_root {
            return Err(format!("merkle root mismatch at height {height}").into());
        }
        if let Some(prev) = prev_hash
            && block.header.parent_hash() != prev
        {
            return Err(format!("parent hash mismatch at height {height}").into());
        }
        prev_hash = Some(block.header.hash());
        txs += block.transactions.len() as u64;
    }
    eprintln!(
        "verify: {} blocks ({}), {} transactions, all checks passed in {:.1} s",
        reader.block_count(),
        reader.tip().map_or("empty".to_string(), |t| format!(
            "{}..={t}",
            reader.start_height()
        )),
        txs,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
