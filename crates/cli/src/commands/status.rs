//! `strata status`: tip, validated tip, version, table sizes.

use anyhow::{Result, bail};
use clap::Args;
use serde_json::json;
use storage_traits::capability::DbRead;

use crate::Global;
use crate::output::{bytes, display_hash, print_fields, print_json};
use crate::progress;
use crate::store::{self, State};

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Do not validate the stored blocks first (faster on a large store; the validated tip
    /// is then reported as none).
    #[arg(long)]
    pub lazy: bool,
}

pub fn run(g: &Global, a: StatusArgs) -> Result<()> {
    let cfg = store::config(g);
    let plan = State::migration_plan(&cfg)?;
    if !plan.exists {
        bail!(
            "no {} store at {} (create one with `strata sync --from FIXTURE_DIR`, or run \
             `strata demo`)",
            store::backend_name(),
            plan.store_dir.display()
        );
    }
    if plan.needs_migration() {
        // Report what the store is without opening it (opening would migrate it).
        let recorded = plan
            .recorded
            .map(|m| (m.version.to_string(), format!("{:?}", m.migration_status)));
        if g.json {
            print_json(&json!({
                "store": plan.store_dir,
                "backend": store::backend_name(),
                "version": recorded.as_ref().map(|r| r.0.clone()),
                "migration_status": recorded.as_ref().map(|r| r.1.clone()),
                "needs_migration": true,
                "migration_steps": plan.steps.iter().map(|s| format!("{} -> {} ({})", s.from, s.to, s.name)).collect::<Vec<_>>(),
            }));
        } else {
            println!(
                "store {} ({})",
                plan.store_dir.display(),
                store::backend_name()
            );
            print_fields(&[
                (
                    "version",
                    recorded.map_or("none (no metadata row)".to_owned(), |r| {
                        format!("{} ({})", r.0, r.1)
                    }),
                ),
                (
                    "needs migration",
                    format!(
                        "{} step(s): run `strata migrate --dry-run`",
                        plan.steps.len()
                    ),
                ),
            ]);
        }
        return Ok(());
    }
    let opened = store::open_existing_any(g)?;
    let state = opened.state();
    if !a.lazy
        && let Some(tip) = state.tip()
    {
        let first = crate::commands::verify::first_height(state)?.unwrap_or(0);
        let pb = progress::bar(u64::from(tip.0 - first) + 1, "validating", "blocks");
        let res =
            state.validate_all_with_progress(&mut |h| pb.set_position(u64::from(h.0 - first) + 1));
        pb.finish_and_clear();
        res?;
    }
    let meta = state.get_metadata()?;
    let tip = state.tip();
    let tip_hash = match tip {
        Some(t) => state.get_block_hash(t)?.map(|h| display_hash(&h.0)),
        None => None,
    };
    let validated = state.validated_tip();
    let acc = state.accumulator_status()?;
    let rows = store::table_rows(state)?;
    let (chunks_json, chunk_lines) = chunks(g, &opened)?;
    let disk = store::dir_bytes(state.dir());
    if g.json {
        print_json(&json!({
            "store": state.dir(),
            "backend": store::backend_name(),
            "network": g.network.dir_name(),
            "version": meta.version.to_string(),
            "schema_hash": hex::encode(meta.schema_hash),
            "migration_status": format!("{:?}", meta.migration_status),
            "tip": tip.map(|h| h.0),
            "tip_hash": tip_hash,
            "validated_tip": validated.map(|h| h.0),
            "accumulator": {
                "built_height": acc.built_height.map(|h| h.0),
                "fresh": acc.freshness.is_fresh(),
            },
            "tables": rows.iter().map(|(n, c)| (n.to_string(), json!(c))).collect::<serde_json::Map<_, _>>(),
            "disk_bytes": disk,
            "chunks": chunks_json,
        }));
        return Ok(());
    }
    println!(
        "store {} ({})",
        state.dir().display(),
        store::backend_name()
    );
    print_fields(&[
        ("network", g.network.dir_name().to_owned()),
        (
            "version",
            format!("{} ({:?})", meta.version, meta.migration_status),
        ),
        ("schema hash", hex::encode(meta.schema_hash)),
        (
            "tip",
            match (tip, &tip_hash) {
                (Some(t), Some(h)) => format!("{t} {h}"),
                _ => "none (empty store)".to_owned(),
            },
        ),
        (
            "validated tip",
            match validated {
                Some(v) => v.to_string(),
                None if a.lazy => "not validated (--lazy)".to_owned(),
                None => "none".to_owned(),
            },
        ),
        (
            "accumulator",
            format!(
                "built to {}, {}",
                acc.built_height
                    .map_or("none".to_owned(), |h| h.to_string()),
                if acc.freshness.is_fresh() {
                    "fresh"
                } else {
                    "stale"
                }
            ),
        ),
        ("on disk", bytes(disk)),
    ]);
    println!("tables (rows):");
    let fields: Vec<(&str, String)> = rows.iter().map(|(n, c)| (*n, c.to_string())).collect();
    print_fields(&fields);
    println!("chunks:");
    for l in &chunk_lines {
        println!("  {l}");
    }
    Ok(())
}

/// The chunk states of a tiered store (JSON, and text lines), or why there are none.
fn chunks(g: &Global, opened: &store::Opened) -> Result<(serde_json::Value, Vec<String>)> {
    match opened {
        #[cfg(feature = "tiers")]
        store::Opened::Tiered(t) => {
            let (json, mut lines) = crate::tiers::chunk_rows(t)?;
            if lines.is_empty() {
                lines.push("none yet".to_owned());
            }
            Ok((json, lines))
        }
        store::Opened::Plain(_) => {
            let why = if crate::tiers::read_conf(&g.data_dir)?.is_some() {
                "this data directory has hot and cold tiers, but this build of strata leaves \
                 them out (rebuild with --features tiers)"
            } else {
                "none: no hot and cold tiers in this data directory (the finalised state only)"
            };
            Ok((serde_json::Value::Null, vec![why.to_owned()]))
        }
    }
}
