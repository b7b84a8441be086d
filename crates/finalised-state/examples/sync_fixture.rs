//! Syncs a fixture directory (written by `cargo xtask fixtures synth`, or generated here
//! with `--synth BLOCKS SEED`) into a new finalised-state store, validates it, and prints
//! what `gettxoutsetinfo` would.
//!
//! ```text
//! cargo run --release -p finalised-state --example sync_fixture -- [--synth BLOCKS SEED] FIXTURE_DIR STORE_BASE
//! ```

use std::time::Instant;

use finalised_state::{Config, DefaultFinalisedState, Network, OpenValidation};
use storage_traits::capability::{DbRead, TransparentHistExt};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || -> ! {
        eprintln!("usage: sync_fixture [--synth BLOCKS SEED] FIXTURE_DIR STORE_BASE");
        std::process::exit(2);
    };
    let synth = if args.first().map(String::as_str) == Some("--synth") {
        if args.len() < 3 {
            usage();
        }
        let blocks: u32 = args[1].parse().unwrap_or_else(|_| usage());
        let seed: u64 = args[2].parse().unwrap_or_else(|_| usage());
        args.drain(..3);
        Some((blocks, seed))
    } else {
        None
    };
    let [fixture, base] = <[String; 2]>::try_from(args).unwrap_or_else(|_| usage());
    if let Some((blocks, seed)) = synth {
        let mut cfg = fixtures::SynthConfig::new(blocks, seed);
        cfg.spam_band = fixtures::SynthConfig::default_spam_band(0, blocks);
        println!("generating {blocks} blocks (seed {seed}) into {fixture}");
        let started = Instant::now();
        let summary = fixtures::write_synth_fixture(
            &cfg,
            std::path::Path::new(&fixture),
            None,
            true,
            &mut |p| {
                if p.blocks_done % 500 == 0 || p.blocks_done == p.blocks_total {
                    eprint!("\r  {:>8}/{} blocks", p.blocks_done, p.blocks_total);
                }
            },
        )?;
        eprintln!();
        println!(
            "generated {} blocks, {} transactions in {:.1} s",
            summary.blocks,
            summary.transactions,
            started.elapsed().as_secs_f64()
        );
    }
    let reader = fixtures::FixtureReader::open(std::path::Path::new(&fixture))?;
    let start = reader.start_height();
    let Some(tip) = reader.tip() else {
        eprintln!("the fixture in {fixture} holds no blocks");
        std::process::exit(1);
    };
    let mut config = Config::new(&base, Network::Regtest);
    config.start_height = storage_traits::model::Height(start);
    config.open_validation = OpenValidation::Lazy;
    let state = DefaultFinalisedState::open(config)?;
    println!("store: {}", state.dir().display());
    println!("syncing heights {start}..={tip} from {fixture}");

    let started = Instant::now();
    // Stop at the first unreadable block and report it after the blocks before it are in.
    let mut read_error = None;
    let blocks = reader.range(start..=tip)?.map_while(|b| match b {
        Ok(b) => Some(b),
        Err(e) => {
            read_error = Some(e);
            None
        }
    });
    let written = state.write_blocks(blocks, |p| {
        eprint!(
            "\r  height {:>8}  {:>7.0} blocks/s",
            p.height,
            p.blocks as f64 / p.elapsed.as_secs_f64().max(1e-9)
        );
    })?;
    eprintln!();
    if let Some(e) = read_error {
        return Err(e.into());
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "wrote {written} blocks in {secs:.1} s ({:.0} blocks/s)",
        written as f64 / secs.max(1e-9)
    );

    let started = Instant::now();
    state.validate_all()?;
    println!(
        "validated every block in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let status = state.accumulator_status()?;
    let info = state.get_tx_out_set_info_accumulator()?;
    println!("tip:                 {:?}", state.db_height()?);
    println!("txoutsetinfo ({:?})", status.freshness);
    println!("  transactions:      {}", info.transactions);
    println!("  txouts:            {}", info.transaction_outputs);
    println!("  bytes_serialized:  {}", info.bytes_serialized);
    println!("  hash_serialized:   {}", hex::encode(info.hash_serialized));
    println!(
        "  total_amount:      {}.{:08} ZEC",
        info.total_zatoshis / 100_000_000,
        info.total_zatoshis % 100_000_000
    );
    Ok(())
}
