//! `strata demo`: the main job on a fresh machine, end to end. Generate a synthetic chain
//! (the `fixtures` crate), bulk-sync it into a new store, verify everything, print stats,
//! `txoutsetinfo` and a few lookups.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use fixtures::{FixtureReader, SynthConfig};
use serde_json::json;
use storage_traits::capability::*;
use storage_traits::model::*;

use crate::Global;
use crate::address;
use crate::commands::{sync, txoutsetinfo, verify};
use crate::output::{bytes, display_hash, print_fields, print_json, zec};
use crate::progress;
use crate::store::{self, State};

/// The file that marks a directory as a demo's, so a rerun may replace it.
const MARKER: &str = ".strata-demo";

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The demo's directory: `fixture/` (the generated chain) and the store (the data
    /// directory). A directory left by an earlier demo is replaced; any other non-empty
    /// directory is refused.
    #[arg(long, default_value = "strata-demo", value_name = "DIR")]
    pub dir: PathBuf,
    /// Blocks to generate.
    #[arg(long, default_value_t = 5_000)]
    pub blocks: u32,
    /// The generator's seed (the same seed gives the same chain, byte for byte).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Add a spam band: 10 % of the chain, 60 % of the way in, ~2 MB blocks of fan-out and
    /// chained transfers. On by default with `--no-tiers` (the bulk sync takes it in
    /// seconds); off by default in the tiered demo, which ingests height by height, where
    /// each spam block re-reads and re-verifies the ~2 MB rows it spends from, so the band
    /// takes tens of minutes (a known performance gap of per-height writes).
    #[arg(long, conflicts_with = "no_spam")]
    pub spam: bool,
    /// No spam band.
    #[arg(long)]
    pub no_spam: bool,
    /// Byte budget of one bulk-sync batch, in MiB (the finalised-state-only demo).
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    pub batch_mib: usize,
    /// Heights per chunk of the hot and cold tiers (a build with the `tiers` feature).
    #[arg(long, default_value_t = 1_000, value_name = "HEIGHTS")]
    pub chunk_size: u32,
    /// Only the finalised state: bulk-sync it, without hot chunks and packs.
    #[arg(long)]
    pub no_tiers: bool,
}

/// Whether the demo runs the hot and cold tiers.
fn with_tiers(a: &DemoArgs) -> bool {
    cfg!(feature = "tiers") && !a.no_tiers
}

fn prepare_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        let marked = dir.join(MARKER).exists();
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_none();
        if !marked && !empty {
            bail!(
                "{} exists and is not a demo directory: choose another with --dir",
                dir.display()
            );
        }
        if marked {
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("removing the earlier demo in {}", dir.display()))?;
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        b"strata demo directory: `strata demo` may replace it\n",
    )
    .with_context(|| format!("writing {}", dir.join(MARKER).display()))?;
    Ok(())
}

fn step(json: bool, n: u32, what: &str) {
    if !json {
        println!("\n[{n}/5] {what}");
    }
}

pub fn run(g: &Global, a: DemoArgs) -> Result<()> {
    if a.blocks == 0 {
        bail!("--blocks must be at least 1");
    }
    if a.batch_mib == 0 {
        bail!("--batch-mib must be at least 1");
    }
    if a.chunk_size == 0 {
        bail!("--chunk-size must be at least 1");
    }
    let started = Instant::now();
    prepare_dir(&a.dir)?;
    let fixture_dir = a.dir.join("fixture");
    let g = Global {
        data_dir: a.dir.clone(),
        network: g.network,
        json: g.json,
    };
    if !g.json {
        println!(
            "strata demo: {} blocks (seed {}{}) into {} on {}",
            a.blocks,
            a.seed,
            if a.no_spam { ", no spam band" } else { "" },
            a.dir.display(),
            store::backend_name()
        );
    }

    step(g.json, 1, "generating a synthetic Zcash-shaped chain");
    let mut cfg = SynthConfig::new(a.blocks, a.seed);
    let spam = if a.spam || a.no_spam {
        a.spam
    } else {
        !with_tiers(&a)
    };
    cfg.spam_band = if spam {
        SynthConfig::default_spam_band(0, a.blocks)
    } else {
        None
    };
    let t = Instant::now();
    let pb = progress::bar(u64::from(a.blocks), "generating", "blocks");
    let summary = fixtures::write_synth_fixture(&cfg, &fixture_dir, None, false, &mut |p| {
        pb.set_position(u64::from(p.blocks_done));
    });
    pb.finish_and_clear();
    let summary = summary.context("generating the chain")?;
    let gen_secs = t.elapsed().as_secs_f64();
    if !g.json {
        print_fields(&[
            ("fixture", fixture_dir.display().to_string()),
            (
                "chain",
                format!(
                    "{} blocks, {} transactions, {}",
                    summary.blocks,
                    summary.transactions,
                    bytes(summary.bytes)
                ),
            ),
            ("time", format!("{gen_secs:.1} s")),
        ]);
    }

    let reader = FixtureReader::open(&fixture_dir)
        .with_context(|| format!("opening {}", fixture_dir.display()))?;
    let opened = if with_tiers(&a) {
        step(
            g.json,
            2,
            "ingesting it height by height into hot chunks and the finalised state; finished \
             chunks freeze into packs",
        );
        ingest_tiered(&g, &a, &reader, &fixture_dir)?
    } else {
        step(g.json, 2, "bulk-syncing it into a new store");
        if !g.json && !cfg!(feature = "tiers") {
            println!(
                "  (the finalised state only: hot chunks and packs need a build with \
                 `--features tiers`, as their hot stores are RocksDB)"
            );
        }
        let state = store::open_or_create(&g, reader.start_height(), a.batch_mib << 20)?;
        let s = sync::sync_from_fixture(&state, &reader, None)?;
        if !g.json {
            sync::print_summary(&state, &s);
        }
        store::Opened::Plain(state)
    };
    let sync_secs = t.elapsed().as_secs_f64() - gen_secs;
    let state = opened.state();

    step(
        g.json,
        3,
        "verifying every block, every index and the txout-set summary",
    );
    let mut report = verify::verify_store(state)?;
    report.packs = verify::verify_tiers(&opened)?;
    let routing = routing_samples(&opened)?;
    if !g.json {
        verify::print_report(&report);
    }

    step(g.json, 4, "store statistics");
    let rows = store::table_rows(state)?;
    let disk = store::dir_bytes(state.dir());
    if !g.json {
        print_fields(&[
            (
                "store",
                format!("{} ({})", state.dir().display(), store::backend_name()),
            ),
            ("on disk", bytes(disk)),
            ("data directory", bytes(store::dir_bytes(&a.dir))),
            (
                "validated tip",
                state
                    .validated_tip()
                    .map_or("none".to_owned(), |h| h.to_string()),
            ),
        ]);
        println!("  rows per table:");
        let fields: Vec<(&str, String)> = rows.iter().map(|(n, c)| (*n, c.to_string())).collect();
        print_fields(&fields);
        print_chunks(&opened)?;
        for line in &routing {
            println!("  {line}");
        }
    }

    step(g.json, 5, "txoutsetinfo and sample lookups");
    let info = txoutsetinfo::txoutsetinfo(state, true)?;
    let samples = samples(&g, state)?;
    let total = started.elapsed().as_secs_f64();
    if g.json {
        print_json(&json!({
            "dir": a.dir,
            "backend": store::backend_name(),
            "blocks": summary.blocks,
            "transactions": summary.transactions,
            "fixture_bytes": summary.bytes,
            "generate_seconds": gen_secs,
            "sync_seconds": sync_secs,
            "tiers": with_tiers(&a),
            "packs_verified": report.packs,
            "routing": routing,
            "verify_seconds": report.secs,
            "store_bytes": disk,
            "tables": rows.iter().map(|(n, c)| (n.to_string(), json!(c))).collect::<serde_json::Map<_, _>>(),
            "txoutsetinfo": info,
            "samples": samples,
            "seconds": total,
        }));
        return Ok(());
    }
    txoutsetinfo::print_txoutsetinfo(&info);
    println!("samples");
    print_fields(&[
        (
            "tip block",
            samples["tip_hash"].as_str().unwrap_or("").to_owned(),
        ),
        (
            "a transaction",
            samples["txid"].as_str().unwrap_or("").to_owned(),
        ),
        (
            "an address",
            format!(
                "{} (balance {} ZEC)",
                samples["address"].as_str().unwrap_or(""),
                zec(samples["address_balance_zat"].as_u64().unwrap_or(0))
            ),
        ),
    ]);
    let d = a.dir.display();
    println!("\ndone in {total:.1} s. Try:");
    println!("  strata --data-dir {d} status");
    println!(
        "  strata --data-dir {d} get block {}",
        samples["tip_height"]
    );
    if let Some(t) = samples["txid"].as_str() {
        println!("  strata --data-dir {d} get tx {t}");
    }
    if let Some(ad) = samples["address"].as_str() {
        println!("  strata --data-dir {d} get address {ad}");
    }
    println!("  strata --data-dir {d} txoutsetinfo --json");
    println!("  strata --data-dir {d} verify");
    Ok(())
}

/// A few things worth looking up: the tip block, a transaction with transparent outputs
/// near the tip, and the address its first output pays.
fn samples(g: &Global, state: &State) -> Result<serde_json::Value> {
    let Some(tip) = state.tip() else {
        return Ok(json!({}));
    };
    let hash = state.get_block_hash(tip)?.map(|h| display_hash(&h.0));
    let mut txid = None;
    let mut addr = None;
    let mut h = tip.0;
    'search: loop {
        let txids = state.get_block_txids(Height(h))?;
        let transparent = state.get_block_transparent(Height(h))?;
        for (id, t) in txids.0.iter().zip(transparent.0.iter()).rev() {
            if let Some(out) = t
                .as_ref()
                .and_then(|t| t.vout.iter().find(|o| o.script_type.is_spendable()))
            {
                txid = Some(*id);
                addr = Some(out.addr_script());
                break 'search;
            }
        }
        if h == 0 || tip.0 - h >= 100 {
            break;
        }
        h -= 1;
    }
    let balance = match addr {
        Some(a) => state.addr_balance_by_range(a, Height(0), tip)?,
        None => 0,
    };
    Ok(json!({
        "tip_height": tip.0,
        "tip_hash": hash,
        "txid": txid.map(|t| display_hash(&t.0)),
        "address": addr.and_then(|a| address::encode(g.network, &a)),
        "address_balance_zat": balance.max(0),
    }))
}

/// Creates the tiers and ingests the fixture through them.
#[cfg(feature = "tiers")]
fn ingest_tiered(
    g: &Global,
    a: &DemoArgs,
    reader: &FixtureReader,
    fixture_dir: &Path,
) -> Result<store::Opened> {
    let t = crate::tiers::create(g, reader.start_height(), a.chunk_size, Some(fixture_dir))?;
    let s = crate::tiers::ingest_fixture(&t, reader, None)?;
    if !g.json {
        let frozen = s.lifecycle.frozen + s.last_tick.frozen.len() as u64;
        let discarded = s.lifecycle.discarded + s.last_tick.discarded.len() as u64;
        print_fields(&[
            (
                "store",
                format!(
                    "{} ({} finalised state, RocksDB hot stores)",
                    g.data_dir.display(),
                    store::backend_name()
                ),
            ),
            (
                "ingested",
                format!(
                    "{} blocks in {:.1} s ({:.0} blocks/s), each durable in both tiers when acknowledged",
                    s.written,
                    s.secs,
                    s.written as f64 / s.secs.max(1e-9)
                ),
            ),
            (
                "lifecycle",
                format!(
                    "{} ticks: {frozen} chunks frozen into packs, {discarded} hot stores discarded",
                    s.lifecycle.ticks
                ),
            ),
        ]);
    }
    Ok(store::Opened::Tiered(t))
}

#[cfg(not(feature = "tiers"))]
fn ingest_tiered(
    _g: &Global,
    _a: &DemoArgs,
    _reader: &FixtureReader,
    _fixture_dir: &Path,
) -> Result<store::Opened> {
    Err(crate::tiers::unavailable("the tiered demo"))
}

/// The chunk table of a tiered store.
fn print_chunks(opened: &store::Opened) -> Result<()> {
    match opened {
        #[cfg(feature = "tiers")]
        store::Opened::Tiered(t) => {
            let (_, lines) = crate::tiers::chunk_rows(t)?;
            println!("  chunks:");
            for l in &lines {
                println!("    {l}");
            }
            Ok(())
        }
        store::Opened::Plain(_) => Ok(()),
    }
}

/// Reads through the tiers' routing: the first height (a frozen chunk's pack) and the tip
/// (the hot store of the open chunk), each checked against the finalised state.
fn routing_samples(opened: &store::Opened) -> Result<Vec<String>> {
    match opened {
        #[cfg(feature = "tiers")]
        store::Opened::Tiered(t) => {
            let mut out = Vec::new();
            let first = t.geometry().genesis_height();
            let mut heights = vec![first];
            if let Some(tip) = t.tip()
                && tip != first
            {
                heights.push(tip);
            }
            for h in heights {
                let tier = crate::tiers::routed_read(t, h)?;
                out.push(format!(
                    "read routing: height {h} served by the {} tier, equal to the finalised state's block",
                    format!("{tier:?}").to_lowercase()
                ));
            }
            Ok(out)
        }
        store::Opened::Plain(_) => Ok(Vec::new()),
    }
}
