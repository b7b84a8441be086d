//! `strata`: the operator tool of a Strata store.
//!
//! Every command opens the store under `--data-dir` for `--network`, does one job, and
//! prints what it found: human text by default, JSON with `--json`. Long work draws a
//! progress bar on a terminal. A failure is one line on stderr and a non-zero exit
//! (1 for a failed operation or a corrupt store, 2 for bad arguments), never a panic.
//!
//! The logic lives in the library crates; this binary parses, opens, calls and prints.

mod address;
mod commands;
mod output;
mod progress;
mod store;
mod tiers;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use finalised_state::Network;

/// The Strata operator tool.
#[derive(Parser, Debug)]
#[command(name = "strata", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The data directory: the finalised state lives in `<DIR>/<network>/v1/`.
    #[arg(
        long,
        global = true,
        env = "STRATA_DATA_DIR",
        default_value = "strata-data"
    )]
    pub data_dir: PathBuf,
    /// The network whose store to use (mainnet, testnet, regtest). Synthetic chains are
    /// regtest-shaped.
    #[arg(long, global = true, default_value = "regtest", value_parser = parse_network)]
    pub network: Network,
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

fn parse_network(s: &str) -> Result<Network, String> {
    s.parse()
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The main job on a fresh machine: generate a synthetic chain, sync it into a new
    /// store, verify everything, print stats and txoutsetinfo.
    Demo(commands::demo::DemoArgs),
    /// Sync the blocks of a fixture directory into the store (creating it when absent).
    Sync(commands::sync::SyncArgs),
    /// Tip, validated tip, version, table sizes.
    Status(commands::status::StatusArgs),
    /// Full validation of every block, index and the txout-set summary; exits non-zero on
    /// any corruption, naming table, key and height.
    Verify,
    /// Migrate the store to this build's version (`--dry-run` shows the plan).
    Migrate(commands::migrate::MigrateArgs),
    /// Look up a block, transaction, outpoint or transparent address.
    #[command(subcommand)]
    Get(commands::get::GetCommand),
    /// What zcashd's gettxoutsetinfo prints, from the stored summary, plus its MuHash3072.
    Txoutsetinfo(commands::txoutsetinfo::TxOutSetInfoArgs),
    /// One lifecycle tick: freeze closed chunks into packs, discard the hot stores their
    /// packs now serve, prune past retention (`--dry-run` shows the plan). Needs the tiers.
    Freeze(commands::tier::FreezeArgs),
    /// Delete every object of the pack store that no ref reaches. Needs the tiers.
    Gc,
    /// Named snapshots of the frozen packs. Needs the tiers.
    #[command(subcommand)]
    Snapshot(commands::tier::SnapshotCommand),
}

fn main() -> ExitCode {
    // A panic is a bug; still, say it on one line rather than with a backtrace dump.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("strata: internal error (a bug): {}{at}", one_line(&msg));
    }));

    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    // Help asked for (or a bare `strata`): clap's own text.
                    let _ = e.print();
                    return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                        ExitCode::from(2)
                    } else {
                        ExitCode::SUCCESS
                    };
                }
                _ => {
                    eprintln!("strata: {} (see `strata --help`)", clap_error_line(&e));
                    return ExitCode::from(2);
                }
            }
        }
    };

    let g = &cli.global;
    let result = match cli.command {
        Command::Demo(a) => commands::demo::run(g, a),
        Command::Sync(a) => commands::sync::run(g, a),
        Command::Status(a) => commands::status::run(g, a),
        Command::Verify => commands::verify::run(g),
        Command::Migrate(a) => commands::migrate::run(g, a),
        Command::Get(c) => commands::get::run(g, c),
        Command::Txoutsetinfo(a) => commands::txoutsetinfo::run(g, a),
        Command::Freeze(a) => commands::tier::freeze(g, a),
        Command::Gc => commands::tier::gc(g),
        Command::Snapshot(c) => commands::tier::snapshot(g, c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strata: error: {}", one_line(&format!("{e:#}")));
            ExitCode::from(1)
        }
    }
}

/// A clap error on one line: its message and tips, without the usage block.
fn clap_error_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let message: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let message = one_line(&message.join(" "));
    let message = message.trim_start_matches("error: ");
    if message.is_empty() {
        "invalid arguments".to_owned()
    } else {
        message.to_owned()
    }
}

/// Folds a message onto one line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
