//! Opening the store the global options name.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use finalised_state::{
    Config, DefaultBackend, DefaultFinalisedState, MigrationPlan, OpenValidation,
};
use storage_traits::Capability;
use storage_traits::kv::KvStore;

use crate::Global;

/// The finalised state of this build's backend.
pub type State = DefaultFinalisedState;

/// The backend's name (`redb` or `rocksdb`).
pub fn backend_name() -> &'static str {
    <DefaultBackend as finalised_state::Backend>::NAME
}

/// Where the finalised state lives under a data directory: `<data>/finalised/`, so the
/// data directory is also the root of the hot and cold tiers (`catalog/`, `hot/`, packs,
/// `cas/`), as `tiered` lays a root out.
pub fn finalised_base(data_dir: &Path) -> PathBuf {
    data_dir.join("finalised")
}

/// The configuration for the global options: Lazy validation at open (commands that
/// validate do it themselves, with a progress bar).
pub fn config(g: &Global) -> Config {
    let mut c = Config::new(finalised_base(&g.data_dir), g.network);
    c.open_validation = OpenValidation::Lazy;
    c
}

/// Opens an existing, current store. A missing store, or one that needs a migration, is
/// refused with what to run instead (commands other than `migrate` never migrate).
/// `writable: false` opens without `WRITE_CORE`, so the open changes nothing (not even a
/// stale accumulator's rebuild).
pub fn open_existing(g: &Global, writable: bool) -> Result<State> {
    let mut cfg = config(g);
    let plan = check_current(g)?;
    if !plan.exists {
        bail!(
            "no {} store at {} (create one with `strata sync --from FIXTURE_DIR`, or run \
             `strata demo`; --data-dir and --network choose the store)",
            backend_name(),
            plan.store_dir.display()
        );
    }
    if !writable {
        cfg.capabilities = Capability::LATEST - Capability::WRITE_CORE;
    }
    State::open(cfg).context("opening the store")
}

/// The store's migration plan; an error naming `strata migrate` when it needs one (no
/// command but `migrate` migrates).
pub fn check_current(g: &Global) -> Result<MigrationPlan> {
    let cfg = config(g);
    let plan = State::migration_plan(&cfg)
        .with_context(|| format!("reading the store at {}", cfg.store_dir().display()))?;
    if plan.needs_migration() {
        bail!(
            "the store at {} is at version {}{} and needs migrating: run `strata migrate` \
             (`strata migrate --dry-run` shows the plan)",
            plan.store_dir.display(),
            plan.from,
            if plan.resumes {
                " with an interrupted migration"
            } else {
                ""
            }
        );
    }
    Ok(plan)
}

/// Opens (creating when absent) the store for writing. A store that needs migrating is
/// refused, as in [`open_existing`].
pub fn open_or_create(g: &Global, start_height: u32, batch_bytes: usize) -> Result<State> {
    check_current(g)?;
    let mut cfg = config(g);
    cfg.start_height = storage_traits::model::Height(start_height);
    cfg.sync_write_batch_bytes = batch_bytes;
    State::open(cfg).context("opening the store")
}

/// Rows per table of the v1 table set, in schema order.
pub fn table_rows(state: &State) -> Result<Vec<(&'static str, u64)>> {
    let r = state.kv().begin_read()?;
    let mut out = Vec::new();
    for spec in storage_traits::table::V1_TABLES {
        use storage_traits::kv::KvRead;
        out.push((spec.name, r.len(spec.name)?));
    }
    Ok(out)
}

/// Bytes of every file under `dir` (0 when it does not exist).
pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// A store opened for a command that also reports the tiers when the data directory has
/// them (and this build does).
// One per command: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Opened {
    /// The finalised state alone.
    Plain(State),
    /// A tiered store (its finalised state inside).
    #[cfg(feature = "tiers")]
    Tiered(tiered::TieredStore),
}

impl Opened {
    /// The finalised state.
    pub fn state(&self) -> &State {
        match self {
            Opened::Plain(s) => s,
            #[cfg(feature = "tiers")]
            Opened::Tiered(t) => t.finalised(),
        }
    }
}

/// Opens an existing store: the tiered store when the data directory is tiered and this
/// build has the tiers, else the finalised state read-only.
pub fn open_existing_any(g: &Global) -> Result<Opened> {
    #[cfg(feature = "tiers")]
    if crate::tiers::read_conf(&g.data_dir)?.is_some() {
        let plan = check_current(g)?;
        if !plan.exists {
            bail!(
                "no {} store at {} (the tier configuration is there, the finalised state is not)",
                backend_name(),
                plan.store_dir.display()
            );
        }
        if let Some(t) = crate::tiers::open_existing(g)? {
            return Ok(Opened::Tiered(t));
        }
    }
    open_existing(g, false).map(Opened::Plain)
}
