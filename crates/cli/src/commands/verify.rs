//! `strata verify`: full validation, non-zero exit on any corruption.

use std::time::Instant;

use anyhow::{Context, Result};
use finalised_state::RecomputedTxOutSet;
use serde_json::json;
use storage_traits::TableKey;
use storage_traits::kv::{KvRead, KvStore};
use storage_traits::model::Height;
use storage_traits::table::{Headers, Table};

use crate::Global;
use crate::output::{display_hash, print_fields, print_json};
use crate::progress;
use crate::store::{self, State};

/// What a full verification checked.
pub struct VerifyReport {
    pub first: Option<u32>,
    pub tip: Option<u32>,
    pub blocks: u64,
    pub txout: RecomputedTxOutSet,
    /// Packs re-hashed (a tiered store only).
    pub packs: Option<usize>,
    pub secs: f64,
}

/// Verifies the tiers of a tiered store (every pack re-hashed; catalog, files and refs in
/// agreement). `None` for a store without tiers.
pub fn verify_tiers(opened: &store::Opened) -> Result<Option<usize>> {
    match opened {
        #[cfg(feature = "tiers")]
        store::Opened::Tiered(t) => {
            let pb = progress::spinner("packs", "re-hashing every pack");
            let n = crate::tiers::verify(t);
            pb.finish_and_clear();
            n.map(Some)
        }
        store::Opened::Plain(_) => Ok(None),
    }
}

pub fn run(g: &Global) -> Result<()> {
    let opened = store::open_existing_any(g)?;
    let state = opened.state();
    let mut r = verify_store(state)?;
    r.packs = verify_tiers(&opened)?;
    if g.json {
        print_json(&json!({
            "ok": true,
            "store": state.dir(),
            "backend": store::backend_name(),
            "first_height": r.first,
            "tip": r.tip,
            "blocks_validated": r.blocks,
            "txout_set": {
                "stored_matches_recomputed": r.txout.stored == r.txout.info,
                "stored_fresh": r.txout.stored_is_fresh(),
                "hash_serialized": display_hash(&r.txout.info.hash_serialized),
                "muhash": r.txout.muhash.map(|m| display_hash(&m)),
            },
            "packs_verified": r.packs,
            "seconds": r.secs,
        }));
    } else {
        println!("verified {}", state.dir().display());
        print_report(&r);
    }
    Ok(())
}

pub fn print_report(r: &VerifyReport) {
    print_fields(&[
        (
            "blocks",
            match (r.first, r.tip) {
                (Some(f), Some(t)) => format!(
                    "{} validated (heights {f}..={t}: checksums, parent links, merkle roots, \
                     every index)",
                    r.blocks
                ),
                _ => "none stored".to_owned(),
            },
        ),
        (
            "txout set",
            if r.txout.stored_is_fresh() {
                "the stored summary equals the one recomputed from the tables".to_owned()
            } else {
                format!(
                    "stored summary is stale (built to {:?}); recomputed from the tables",
                    r.txout.stored_built_height.map(|h| h.0)
                )
            },
        ),
    ]);
    if let Some(p) = r.packs {
        print_fields(&[(
            "packs",
            format!("{p} re-hashed; catalog, files and refs agree"),
        )]);
    }
    print_fields(&[("time", format!("{:.1} s", r.secs))]);
}

/// The lowest stored height.
pub fn first_height(state: &State) -> Result<Option<u32>> {
    let r = state.kv().begin_read()?;
    match r.first(Headers::NAME)? {
        None => Ok(None),
        Some((k, _)) => Ok(Some(
            Height::decode_key(&k)
                .with_context(|| format!("the first key of table {}", Headers::NAME))?
                .0,
        )),
    }
}

/// Validates every block and index, then recomputes the txout-set summary and checks the
/// stored one against it.
pub fn verify_store(state: &State) -> Result<VerifyReport> {
    let started = Instant::now();
    let first = first_height(state)?;
    let tip = state.tip().map(|h| h.0);
    let span = match (first, tip) {
        (Some(f), Some(t)) => u64::from(t - f) + 1,
        _ => 0,
    };
    let base = first.unwrap_or(0);
    let pb = progress::bar(span, "validating", "blocks");
    let mut blocks = 0u64;
    let res = state.validate_all_with_progress(&mut |h| {
        blocks += 1;
        pb.set_position(u64::from(h.0 - base) + 1);
    });
    pb.finish_and_clear();
    res.context("full validation")?;
    let pb = progress::bar(span, "txout set", "heights");
    let txout = state.verify_txout_set(&mut |h| pb.set_position(u64::from(h.0 - base)));
    pb.finish_and_clear();
    let txout = txout.context("txout-set check")?;
    Ok(VerifyReport {
        first,
        tip,
        blocks,
        txout,
        packs: None,
        secs: started.elapsed().as_secs_f64(),
    })
}
