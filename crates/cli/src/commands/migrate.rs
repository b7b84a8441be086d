//! `strata migrate [--dry-run]`: bring the store to this build's version.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use finalised_state::MigrationPlan;
use finalised_state::migrate::MigrateOptions;
use fixtures::FixtureReader;
use indicatif::ProgressBar;
use migrations::{BlockSource, MigrationProgress, ProgressEvent};
use serde_json::json;
use storage_traits::model::{Height, IndexedBlock};
use storage_traits::table::DB_VERSION_LATEST;

use crate::Global;
use crate::output::{print_fields, print_json};
use crate::progress;
use crate::store::{self, State};

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// Show the plan (the store's version and the steps that would run); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// A fixture directory serving the blocks the v0 → v1 step rebuilds the store from
    /// (needed only for a v0 store).
    #[arg(long, value_name = "DIR")]
    pub source: Option<PathBuf>,
}

fn plan_json(plan: &MigrationPlan) -> serde_json::Value {
    json!({
        "store": plan.store_dir,
        "exists": plan.exists,
        "v0_present": plan.v0_present,
        "recorded_version": plan.recorded.map(|m| m.version.to_string()),
        "recorded_status": plan.recorded.map(|m| format!("{:?}", m.migration_status)),
        "alpha_reset": plan.alpha_reset,
        "from": plan.from.to_string(),
        "target": DB_VERSION_LATEST.to_string(),
        "resumes": plan.resumes,
        "steps": plan.steps.iter().map(|s| json!({
            "from": s.from.to_string(),
            "to": s.to.to_string(),
            "kind": format!("{:?}", s.kind),
            "name": s.name,
        })).collect::<Vec<_>>(),
    })
}

fn print_plan(plan: &MigrationPlan) {
    println!(
        "migration plan for {} ({})",
        plan.store_dir.display(),
        store::backend_name()
    );
    let recorded = match (plan.exists, plan.recorded) {
        (_, Some(m)) => format!("{} ({:?})", m.version, m.migration_status),
        (true, None) => "no metadata row".to_owned(),
        (false, None) => "no v1 store".to_owned(),
    };
    let mut fields = vec![
        ("recorded", recorded),
        ("target", DB_VERSION_LATEST.to_string()),
    ];
    if plan.v0_present {
        fields.push(("v0 store", "present beside it".to_owned()));
    }
    if plan.alpha_reset {
        fields.push((
            "0.4.0-alpha.1",
            "txid_location is empty: spent is cleared and the version set back to 1.1.0 first"
                .to_owned(),
        ));
    }
    print_fields(&fields);
    if plan.steps.is_empty() {
        println!("  nothing to do: the store is at {DB_VERSION_LATEST}");
    }
    for (i, s) in plan.steps.iter().enumerate() {
        let resume = if i == 0 && plan.resumes {
            " (resumes an interrupted run)"
        } else {
            ""
        };
        println!(
            "  step {}: {} -> {}  {:?}  {}{resume}",
            i + 1,
            s.from,
            s.to,
            s.kind,
            s.name
        );
    }
}

/// Blocks for the v0 → v1 rebuild, from a fixture directory.
struct FixtureSource {
    reader: Mutex<FixtureReader>,
}

impl BlockSource for FixtureSource {
    fn tip(&self) -> storage_traits::Result<Option<Height>> {
        Ok(self
            .reader
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .tip()
            .map(Height))
    }

    fn block(&self, height: Height) -> storage_traits::Result<IndexedBlock> {
        let reader = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        reader
            .get(height.0)
            .map_err(|e| storage_traits::Error::NotAvailable {
                what: format!(
                    "block {height} from fixture {}: {e}",
                    reader.dir().display()
                ),
            })
    }
}

pub fn run(g: &Global, a: MigrateArgs) -> Result<()> {
    let cfg = store::config(g);
    let plan = State::migration_plan(&cfg)
        .with_context(|| format!("reading the store at {}", cfg.store_dir().display()))?;
    if !plan.exists && !plan.v0_present {
        bail!(
            "no {} store at {} to migrate",
            store::backend_name(),
            plan.store_dir.display()
        );
    }
    if a.dry_run {
        if g.json {
            print_json(&plan_json(&plan));
        } else {
            print_plan(&plan);
        }
        return Ok(());
    }
    if !plan.needs_migration() {
        if g.json {
            print_json(&json!({ "plan": plan_json(&plan), "migrated": false }));
        } else {
            println!(
                "nothing to do: {} is at {DB_VERSION_LATEST}",
                plan.store_dir.display()
            );
        }
        return Ok(());
    }
    let source: Option<Arc<dyn BlockSource>> = match &a.source {
        Some(dir) => Some(Arc::new(FixtureSource {
            reader: Mutex::new(
                FixtureReader::open(dir)
                    .with_context(|| format!("opening fixture directory {}", dir.display()))?,
            ),
        })),
        None => None,
    };
    if plan
        .steps
        .first()
        .is_some_and(|s| s.from == migrations::V0_0_0)
        && source.is_none()
    {
        bail!(
            "the v0 -> v1 step rebuilds the store from a block source: pass --source FIXTURE_DIR"
        );
    }
    if !g.json {
        print_plan(&plan);
    }
    let started = Instant::now();
    let done: Rc<RefCell<Vec<(String, f64)>>> = Rc::default();
    let done_cb = Rc::clone(&done);
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let callback = move |p: &MigrationProgress| {
        let key = format!("{} -> {} {}", p.from, p.to, p.stage.name());
        match p.event {
            ProgressEvent::Started => {
                let len = p.tip.map_or(0, |t| u64::from(t.0) + 1);
                let pb = progress::bar(len, p.stage.name(), "heights");
                if let Some(h) = p.height {
                    pb.set_position(u64::from(h.0));
                }
                bars.insert(key, pb);
            }
            ProgressEvent::Progress => {
                if let (Some(pb), Some(h)) = (bars.get(&key), p.height) {
                    pb.set_position(u64::from(h.0));
                }
            }
            ProgressEvent::Finished => {
                if let Some(pb) = bars.remove(&key) {
                    pb.finish_and_clear();
                }
                done_cb.borrow_mut().push((key, p.elapsed.as_secs_f64()));
            }
        }
    };
    // The callback lives in the options, so the finalised state can hold it across steps.
    let options = MigrateOptions {
        source,
        progress: Some(Box::new(callback)),
        progress_every_heights: Some(1_000),
    };
    let state = State::open_with(cfg, options).context("migrating")?;
    let secs = started.elapsed().as_secs_f64();
    let stages = done.borrow().clone();
    let meta = {
        use storage_traits::capability::DbRead;
        state.get_metadata()?
    };
    if g.json {
        print_json(&json!({
            "plan": plan_json(&plan),
            "migrated": true,
            "version": meta.version.to_string(),
            "stages": stages.iter().map(|(k, s)| json!({"stage": k, "seconds": s})).collect::<Vec<_>>(),
            "seconds": secs,
        }));
    } else {
        for (k, s) in &stages {
            println!("  done {k} in {s:.2} s");
        }
        println!(
            "migrated to {} in {secs:.1} s; run `strata verify` to validate the result",
            meta.version
        );
    }
    Ok(())
}
