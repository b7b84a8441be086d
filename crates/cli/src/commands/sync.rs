//! `strata sync --from DIR`: bulk-sync a fixture directory into the store.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use fixtures::FixtureReader;
use serde_json::json;
use storage_traits::model::IndexedBlock;

use crate::Global;
use crate::output::{print_fields, print_json};
use crate::progress;
use crate::store::{self, State};

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// A fixture directory (`cargo xtask fixtures synth|zebra --out DIR`, or the one
    /// `strata demo` generates).
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// Stop after this height (default: the fixture's last block).
    #[arg(long, value_name = "HEIGHT")]
    pub to: Option<u32>,
    /// Byte budget of one bulk-sync batch (one synced transaction), in MiB.
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    pub batch_mib: usize,
}

/// What a sync did.
#[derive(Clone, Copy, Debug)]
pub struct SyncSummary {
    pub first: Option<u32>,
    pub written: u64,
    pub tip: Option<u32>,
    pub secs: f64,
}

pub fn run(g: &Global, a: SyncArgs) -> Result<()> {
    let reader = FixtureReader::open(&a.from)
        .with_context(|| format!("opening fixture directory {}", a.from.display()))?;
    if a.batch_mib == 0 {
        bail!("--batch-mib must be at least 1");
    }
    if let Some(conf) = crate::tiers::read_conf(&g.data_dir)? {
        return sync_tiered(g, &a, &reader, conf);
    }
    let state = store::open_or_create(g, reader.start_height(), a.batch_mib << 20)?;
    let s = sync_from_fixture(&state, &reader, a.to)?;
    if g.json {
        print_json(&json!({
            "store": state.dir(),
            "backend": store::backend_name(),
            "from": a.from,
            "first_height": s.first,
            "blocks_written": s.written,
            "tip": s.tip,
            "seconds": s.secs,
        }));
    } else {
        println!("synced {}", a.from.display());
        print_summary(&state, &s);
    }
    Ok(())
}

pub fn print_summary(state: &State, s: &SyncSummary) {
    print_fields(&[
        (
            "store",
            format!("{} ({})", state.dir().display(), store::backend_name()),
        ),
        (
            "written",
            match s.first {
                Some(f) => format!("{} blocks, heights {f}..={}", s.written, s.tip.unwrap_or(f)),
                None => "nothing new".to_owned(),
            },
        ),
        (
            "time",
            format!(
                "{:.1} s ({:.0} blocks/s)",
                s.secs,
                s.written as f64 / s.secs.max(1e-9)
            ),
        ),
        (
            "tip",
            s.tip.map_or_else(|| "none".to_owned(), |t| t.to_string()),
        ),
    ]);
}

/// Streams the fixture's blocks above the store's tip (up to `to`) through the bulk sync,
/// with a progress bar per block read. The first unreadable block stops the sync after
/// the blocks before it are committed, and is the error.
pub fn sync_from_fixture(
    state: &State,
    reader: &FixtureReader,
    to: Option<u32>,
) -> Result<SyncSummary> {
    let started = Instant::now();
    let Some(fixture_tip) = reader.tip() else {
        bail!("the fixture {} holds no blocks", reader.dir().display());
    };
    let end = to.map_or(fixture_tip, |t| t.min(fixture_tip));
    let first = match state.tip() {
        Some(t) => t.0 + 1,
        None => reader.start_height(),
    };
    if first < reader.start_height() {
        bail!(
            "the store's tip {} is below the fixture's first height {}: the fixture cannot extend it",
            first - 1,
            reader.start_height()
        );
    }
    if first > end {
        return Ok(SyncSummary {
            first: None,
            written: 0,
            tip: state.tip().map(|h| h.0),
            secs: started.elapsed().as_secs_f64(),
        });
    }
    let pb = progress::bar(u64::from(end - first + 1), "syncing", "blocks");
    let mut read_error = None;
    let blocks = reader
        .range(first..=end)
        .with_context(|| format!("reading {}", reader.dir().display()))?;
    let blocks = ReportingBlocks {
        inner: blocks,
        error: &mut read_error,
        pb: &pb,
    };
    let written = state.write_blocks(blocks, |p| {
        pb.set_message(format!("committed to height {}", p.height));
    });
    pb.finish_and_clear();
    let written = written.context("bulk sync")?;
    if let Some(e) = read_error {
        return Err(anyhow::Error::new(e).context(format!(
            "reading {} (the blocks before the failure are committed)",
            reader.dir().display()
        )));
    }
    Ok(SyncSummary {
        first: Some(first),
        written,
        tip: state.tip().map(|h| h.0),
        secs: started.elapsed().as_secs_f64(),
    })
}

/// Blocks from the fixture: ticks the bar per block, keeps the first read error and ends
/// there, and says what comes after the last block (the final commit and the accumulator
/// rebuild, which report nothing of their own).
struct ReportingBlocks<'a, I> {
    inner: I,
    error: &'a mut Option<fixtures::Error>,
    pb: &'a indicatif::ProgressBar,
}

impl<I: Iterator<Item = fixtures::Result<IndexedBlock>>> Iterator for ReportingBlocks<'_, I> {
    type Item = IndexedBlock;

    fn next(&mut self) -> Option<IndexedBlock> {
        if self.error.is_some() {
            return None;
        }
        match self.inner.next() {
            Some(Ok(b)) => {
                self.pb.inc(1);
                Some(b)
            }
            Some(Err(e)) => {
                *self.error = Some(e);
                None
            }
            None => {
                self.pb
                    .set_message("final commit, rebuilding the txout-set accumulator");
                None
            }
        }
    }
}

/// A tiered data directory: ingest height by height through the tiers, freezing the chunks
/// that close.
#[cfg(feature = "tiers")]
fn sync_tiered(
    g: &Global,
    a: &SyncArgs,
    reader: &FixtureReader,
    conf: crate::tiers::TierConf,
) -> Result<()> {
    let t = crate::tiers::open_with(g, conf, Some(&a.from))?;
    let s = crate::tiers::ingest_fixture(&t, reader, a.to)?;
    let frozen: Vec<u32> = s.last_tick.frozen.iter().map(|f| f.chunk).collect();
    if g.json {
        print_json(&json!({
            "store": g.data_dir,
            "backend": store::backend_name(),
            "tiers": true,
            "from": a.from,
            "first_height": s.first,
            "blocks_written": s.written,
            "tip": s.tip,
            "chunks_frozen": s.lifecycle.frozen + frozen.len() as u64,
            "seconds": s.secs,
        }));
    } else {
        println!("ingested {} through the tiers", a.from.display());
        print_summary(
            t.finalised(),
            &SyncSummary {
                first: s.first,
                written: s.written,
                tip: s.tip,
                secs: s.secs,
            },
        );
        print_fields(&[(
            "lifecycle",
            format!(
                "{} chunks frozen, {} hot stores discarded",
                s.lifecycle.frozen + frozen.len() as u64,
                s.lifecycle.discarded + s.last_tick.discarded.len() as u64
            ),
        )]);
    }
    Ok(())
}

#[cfg(not(feature = "tiers"))]
fn sync_tiered(
    _g: &Global,
    _a: &SyncArgs,
    _reader: &FixtureReader,
    _conf: crate::tiers::TierConf,
) -> Result<()> {
    Err(crate::tiers::unavailable(
        "syncing this tiered data directory",
    ))
}
