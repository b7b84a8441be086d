//! `strata freeze`, `strata gc`, `strata snapshot create|list|delete`: the hot and cold
//! tiers (feature `tiers`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[cfg(not(feature = "tiers"))]
use crate::Global;
#[cfg(not(feature = "tiers"))]
use anyhow::Result;

#[derive(Args, Debug)]
pub struct FreezeArgs {
    /// Show the lifecycle's plan (chunks to freeze, hot stores to discard, packs to
    /// prune); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also materialise closed chunks that no local source can supply, from this fixture
    /// directory (the bulk backend).
    #[arg(long, value_name = "DIR")]
    pub backfill_from: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum SnapshotCommand {
    /// Keep the packs `heads/main` names now under `snapshots/NAME`, whatever later
    /// prunes do.
    Create {
        /// 1 to 64 of `[A-Za-z0-9._-]`.
        name: String,
    },
    /// Every snapshot: its commit, time and packs.
    List,
    /// Drop a snapshot (`strata gc` then frees packs nothing else keeps).
    Delete {
        /// Its name.
        name: String,
    },
}

#[cfg(not(feature = "tiers"))]
pub fn freeze(_g: &Global, _a: FreezeArgs) -> Result<()> {
    Err(crate::tiers::unavailable("strata freeze"))
}

#[cfg(not(feature = "tiers"))]
pub fn gc(_g: &Global) -> Result<()> {
    Err(crate::tiers::unavailable("strata gc"))
}

#[cfg(not(feature = "tiers"))]
pub fn snapshot(_g: &Global, _c: SnapshotCommand) -> Result<()> {
    Err(crate::tiers::unavailable("strata snapshot"))
}

#[cfg(feature = "tiers")]
pub use imp::*;

#[cfg(feature = "tiers")]
mod imp {
    use anyhow::{Context, Result, bail};
    use coldpack::cas::MAIN;
    use serde_json::json;
    use tiered::{Plan, Report, TieredStore};

    use super::{FreezeArgs, SnapshotCommand};
    use crate::Global;
    use crate::output::{bytes, print_fields, print_json};
    use crate::progress;
    use crate::tiers::{self, not_tiered, read_conf};

    fn open(g: &Global, what: &str, backend: Option<&std::path::Path>) -> Result<TieredStore> {
        let conf = read_conf(&g.data_dir)?.ok_or_else(|| not_tiered(g, what))?;
        tiers::open_with(g, conf, backend)
    }

    pub fn plan_json(p: &Plan) -> serde_json::Value {
        json!({
            "freeze": p.freeze.iter().map(|t| json!({"chunk": t.chunk, "kinds": t.kinds})).collect::<Vec<_>>(),
            "discard": p.discard.iter().map(|(c, r)| json!({"chunk": c, "reason": format!("{r:?}")})).collect::<Vec<_>>(),
            "prune": p.prune.iter().map(|(k, c)| json!({"kind": k, "chunk": c})).collect::<Vec<_>>(),
            "needs_backfill": p.needs_backfill.iter().map(|t| json!({"chunk": t.chunk, "kinds": t.kinds})).collect::<Vec<_>>(),
        })
    }

    pub fn report_json(r: &Report) -> serde_json::Value {
        json!({
            "frozen": r.frozen.iter().map(|f| json!({
                "chunk": f.chunk,
                "kinds": f.kinds,
                "source": f.source.map(|s| format!("{s:?}")),
                "attempts": f.attempts,
            })).collect::<Vec<_>>(),
            "discarded": r.discarded,
            "pruned": r.pruned.iter().map(|(k, c)| json!({"kind": k, "chunk": c})).collect::<Vec<_>>(),
            "failed": r.failed.iter().map(|f| json!({"task": f.task, "attempts": f.attempts, "error": f.error})).collect::<Vec<_>>(),
            "gc_freed_bytes": r.gc.as_ref().map(|g| g.freed_bytes),
            "needs_backfill": r.needs_backfill.iter().map(|t| t.chunk).collect::<Vec<_>>(),
        })
    }

    pub fn print_report(r: &Report) {
        let list = |v: Vec<String>| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        };
        print_fields(&[
            (
                "frozen",
                list(
                    r.frozen
                        .iter()
                        .map(|f| {
                            format!(
                                "chunk {} ({} from {})",
                                f.chunk,
                                f.kinds.join("+"),
                                f.source
                                    .map_or("?".to_owned(), |s| format!("{s:?}").to_lowercase())
                            )
                        })
                        .collect(),
                ),
            ),
            (
                "hot stores discarded",
                list(r.discarded.iter().map(|c| format!("chunk {c}")).collect()),
            ),
            (
                "packs pruned",
                list(
                    r.pruned
                        .iter()
                        .map(|(k, c)| format!("{k} chunk {c}"))
                        .collect(),
                ),
            ),
            (
                "failed",
                list(
                    r.failed
                        .iter()
                        .map(|f| format!("{}: {}", f.task, f.error))
                        .collect(),
                ),
            ),
        ]);
        if !r.needs_backfill.is_empty() {
            println!(
                "  {} closed chunk(s) have no local source: `strata freeze --backfill-from FIXTURE_DIR`",
                r.needs_backfill.len()
            );
        }
    }

    pub fn freeze(g: &Global, a: FreezeArgs) -> Result<()> {
        let t = open(g, "strata freeze", a.backfill_from.as_deref())?;
        if a.dry_run {
            let p = t.resolve().context("resolving the lifecycle plan")?;
            if g.json {
                print_json(&plan_json(&p));
            } else {
                println!("lifecycle plan for {}", g.data_dir.display());
                print_fields(&[
                    (
                        "freeze",
                        format!("{:?}", p.freeze.iter().map(|t| t.chunk).collect::<Vec<_>>()),
                    ),
                    (
                        "discard",
                        format!("{:?}", p.discard.iter().map(|d| d.0).collect::<Vec<_>>()),
                    ),
                    ("prune", format!("{:?}", p.prune)),
                    (
                        "needs backfill",
                        format!(
                            "{:?}",
                            p.needs_backfill.iter().map(|t| t.chunk).collect::<Vec<_>>()
                        ),
                    ),
                ]);
            }
            return Ok(());
        }
        let pb = progress::spinner("freezing", "closed chunks into packs");
        let report = match (a.backfill_from.is_some(), t.tip()) {
            (true, Some(tip)) => {
                let last = t.geometry().chunk_of(tip).context("the tip's chunk")?.0;
                t.backfill(0..=last)
            }
            _ => t.tick(),
        };
        pb.finish_and_clear();
        let report = report.context("freezing")?;
        if g.json {
            print_json(&report_json(&report));
        } else {
            println!("lifecycle tick on {}", g.data_dir.display());
            print_report(&report);
        }
        if !report.failed.is_empty() {
            bail!(
                "{} freeze task(s) failed; the next `strata freeze` retries them",
                report.failed.len()
            );
        }
        Ok(())
    }

    pub fn gc(g: &Global) -> Result<()> {
        let t = open(g, "strata gc", None)?;
        let pb = progress::spinner("gc", "deleting objects no ref reaches");
        let r = t.gc();
        pb.finish_and_clear();
        let r = r.context("garbage collection")?;
        if g.json {
            print_json(&json!({
                "reachable": r.reachable,
                "deleted_objects": r.deleted_objects.len(),
                "pruned_packs": r.pruned_packs.iter().map(|(k, c)| json!({"kind": k, "chunk": c})).collect::<Vec<_>>(),
                "freed_bytes": r.freed_bytes,
            }));
        } else {
            println!("gc of {}", g.data_dir.display());
            print_fields(&[
                ("reachable objects", r.reachable.to_string()),
                ("deleted objects", r.deleted_objects.len().to_string()),
                ("packs pruned", r.pruned_packs.len().to_string()),
                ("freed", bytes(r.freed_bytes)),
            ]);
        }
        Ok(())
    }

    pub fn snapshot(g: &Global, c: SnapshotCommand) -> Result<()> {
        let ref_name = |name: &str| -> Result<String> {
            let r = format!("snapshots/{name}");
            coldpack::cas::check_ref_name(&r).with_context(|| format!("snapshot name {name:?}"))?;
            Ok(r)
        };
        // Check the name before opening anything.
        let name = match &c {
            SnapshotCommand::Create { name } | SnapshotCommand::Delete { name } => {
                Some(ref_name(name)?)
            }
            SnapshotCommand::List => None,
        };
        let t = open(g, "strata snapshot", None)?;
        let cas = t.cas();
        match c {
            SnapshotCommand::Create { name: short } => {
                let r = name.unwrap_or_default();
                let Some(head) = cas.read_ref(MAIN)? else {
                    bail!("nothing is frozen yet (no commit on {MAIN}): run `strata freeze` first");
                };
                if cas.read_ref(&r)?.is_some() {
                    bail!("snapshot {short:?} exists; delete it first or choose another name");
                }
                cas.set_ref(&r, &head)?;
                let packs = cas.manifest_at(&r)?.packs.len();
                if g.json {
                    print_json(
                        &json!({"snapshot": short, "commit": head.to_hex(), "packs": packs}),
                    );
                } else {
                    println!(
                        "snapshot {short} -> commit {} ({packs} packs)",
                        head.to_hex()
                    );
                }
            }
            SnapshotCommand::List => {
                let mut rows = Vec::new();
                for (r, id) in cas.refs()? {
                    let Some(short) = r.strip_prefix("snapshots/") else {
                        continue;
                    };
                    let commit = cas.read_commit(&id)?;
                    let m = cas.read_manifest(&commit.tree)?;
                    let size: u64 = m.packs.values().map(|e| e.size).sum();
                    rows.push(json!({
                        "name": short,
                        "commit": id.to_hex(),
                        "time": commit.time,
                        "packs": m.packs.len(),
                        "bytes": size,
                    }));
                }
                if g.json {
                    print_json(&json!(rows));
                } else if rows.is_empty() {
                    println!("no snapshots");
                } else {
                    for r in &rows {
                        println!(
                            "  {:<20} commit {}  {} packs  {}  time {}",
                            r["name"].as_str().unwrap_or(""),
                            &r["commit"].as_str().unwrap_or("")
                                [..16.min(r["commit"].as_str().unwrap_or("").len())],
                            r["packs"],
                            bytes(r["bytes"].as_u64().unwrap_or(0)),
                            r["time"]
                        );
                    }
                }
            }
            SnapshotCommand::Delete { name: short } => {
                let r = name.unwrap_or_default();
                if !cas.delete_ref(&r)? {
                    bail!("no snapshot named {short:?} (`strata snapshot list` shows them)");
                }
                if g.json {
                    print_json(&json!({"deleted": short}));
                } else {
                    println!(
                        "deleted snapshot {short}; `strata gc` frees the packs nothing else keeps"
                    );
                }
            }
        }
        Ok(())
    }
}
