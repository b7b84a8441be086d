//! Composes the `migrations` crate into [`FinalisedState::open`].
//!
//! `open` finds out what it is opening and migrates it to v1.2.0 before anything else
//! reads it:
//!
//! - no metadata row, and a v0 store beside the v1 directory (`<base>/<live|test|local>/`):
//!   the v0 → v1 shadow build, then every later step;
//! - a recorded version below 1.2.0, or a migration status other than `Empty` (an
//!   interrupted migration): the steps from the recorded version, resuming where the
//!   interrupted one stopped;
//! - the 0.4.0-alpha.1 rule ([`migrations::alpha`]) before the version is looked at.
//!
//! The v0 → v1 step builds from a block source; give it one, and a progress callback, with
//! [`FinalisedState::open_with`]. This module is the [`MigrationHost`]: it lends the steps
//! the write path (`write_blocks`), full validation (`validate_all`) and the removal of v0.

use std::path::PathBuf;
use std::sync::Arc;

use migrations::v0::{V0_TABLES, V0Reader, v0_dir_name};
use migrations::{
    BlockSource, MigrationContext, MigrationHost, MigrationOptions, MigrationProgress, PlannedStep,
};
use storage_traits::Table;
use storage_traits::kv::KvRead;
use storage_traits::model::DbVersion;
use storage_traits::model::{DbMetadata, Height, IndexedBlock, MigrationStatus};
use storage_traits::table::{DB_VERSION_LATEST, Headers, TxidLocation, V1_TABLES};
use storage_traits::{Error, Result};

use crate::backend::Backend;
use crate::config::Config;
use crate::state::{FinalisedState, lock};

/// A migration progress callback.
pub type ProgressCallback = Box<dyn FnMut(&MigrationProgress)>;

/// What [`FinalisedState::open_with`] gives the migrations.
#[derive(Default)]
pub struct MigrateOptions {
    /// Where the v0 → v1 shadow build gets its blocks (a validator). Needed only to
    /// migrate a v0 store.
    pub source: Option<Arc<dyn BlockSource>>,
    /// Called with every migration progress report (stage start and finish, every
    /// committed batch, periodic progress of scans).
    pub progress: Option<ProgressCallback>,
    /// Report scan progress at least every this many heights (default 10,000).
    pub progress_every_heights: Option<u32>,
}

/// The v0 store's directory for `config`.
pub(crate) fn v0_dir(config: &Config) -> Option<PathBuf> {
    v0_dir_name(config.network.dir_name()).map(|d| config.base_dir.join(d))
}

/// Whether a v0 store written by this build's backend lies beside the v1 directory.
pub(crate) fn v0_store_present<B: Backend>(state: &FinalisedState<B>) -> bool {
    v0_dir(&state.config).is_some_and(|d| d.join(B::NAME).exists())
}

/// The 0.4.0-alpha.1 rule: returns the metadata as it is after the rule.
pub(crate) fn reconcile_alpha<B: Backend>(
    state: &FinalisedState<B>,
    meta: DbMetadata,
) -> Result<DbMetadata> {
    if migrations::reconcile_alpha_txid_location_index(&state.store)
        .map_err(|e| e.into_storage(&state.dir))?
    {
        return migrations::read_metadata(&state.store.begin_read()?)
            .map_err(|e| e.into_storage(&state.dir))?
            .ok_or_else(|| Error::Incompatible {
                path: state.dir.clone(),
                reason: "the metadata row vanished during the 0.4.0-alpha.1 reconciliation"
                    .to_owned(),
            });
    }
    Ok(meta)
}

struct Host<'a, B: Backend> {
    state: &'a FinalisedState<B>,
    source: Option<Arc<dyn BlockSource>>,
    v0_dir: Option<PathBuf>,
}

impl<B: Backend> MigrationHost for Host<'_, B> {
    fn block_source(&self) -> Option<&dyn BlockSource> {
        self.source.as_deref()
    }

    fn v0_tip(&self) -> Result<Option<Height>> {
        let Some(dir) = &self.v0_dir else {
            return Ok(None);
        };
        let dir = dir.join(B::NAME);
        if !dir.exists() {
            return Ok(None);
        }
        let v0 = B::open_in(&dir, V0_TABLES)?;
        let r = v0.begin_read()?;
        V0Reader::new(&r).tip()
    }

    fn start_height(&self) -> Height {
        self.state.config.start_height
    }

    fn shadow_tip(&self) -> Result<Option<Height>> {
        Ok(self.state.read_tip()?.map(|(h, _)| h))
    }

    fn write_shadow_blocks(
        &self,
        blocks: &mut dyn Iterator<Item = IndexedBlock>,
        progress: &mut dyn FnMut(Height),
    ) -> Result<u64> {
        *lock(&self.state.tip) = self.state.read_tip()?;
        self.state.write_blocks(blocks, |p| progress(p.height))
    }

    fn validate_shadow(&self) -> Result<()> {
        *lock(&self.state.tip) = self.state.read_tip()?;
        self.state.validate_all()
    }

    fn remove_v0(&self) -> Result<()> {
        let Some(dir) = &self.v0_dir else {
            return Ok(());
        };
        if !dir.exists() {
            return Ok(());
        }
        std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        // Make the removal durable before the metadata says it happened.
        if let Some(parent) = dir.parent() {
            std::fs::File::open(parent)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(parent, e))?;
        }
        tracing::info!(dir = %dir.display(), "v0 store removed after promotion");
        Ok(())
    }
}

/// Runs the composed steps from the store's recorded version (0.0.0 without a metadata
/// row) to 1.2.0.
pub(crate) fn migrate<B: Backend>(
    state: &FinalisedState<B>,
    options: MigrateOptions,
) -> Result<()> {
    let host = Host {
        state,
        source: options.source,
        v0_dir: v0_dir(&state.config),
    };
    let mut noop = |_: &MigrationProgress| {};
    let mut callback = options.progress;
    let progress: &mut dyn FnMut(&MigrationProgress) = match callback.as_mut() {
        Some(cb) => cb.as_mut(),
        None => &mut noop,
    };
    let defaults = MigrationOptions::default();
    let mut ctx = MigrationContext::new(
        &state.store,
        MigrationOptions {
            write_batch_bytes: state.config.sync_write_batch_bytes,
            progress_every_heights: options
                .progress_every_heights
                .unwrap_or(defaults.progress_every_heights),
            ..defaults
        },
        Some(&host),
        progress,
    );
    migrations::all_steps::<B>()
        .run(&mut ctx, DB_VERSION_LATEST)
        .map_err(|e| e.into_storage(&state.dir))?;
    let meta = migrations::read_metadata(&state.store.begin_read()?)
        .map_err(|e| e.into_storage(&state.dir))?;
    match meta {
        Some(m)
            if m.version == DB_VERSION_LATEST && m.migration_status == MigrationStatus::Empty =>
        {
            Ok(())
        }
        other => Err(Error::Incompatible {
            path: state.dir.clone(),
            reason: format!(
                "after migrating, the store records {other:?}, not version {DB_VERSION_LATEST} with \
                 status Empty"
            ),
        }),
    }
}

/// What [`FinalisedState::open`] would do to a store before serving it: the state it
/// records and the migration steps it would run (a dry run; nothing is written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationPlan {
    /// The store directory (`<base>/<network>/v1`).
    pub store_dir: PathBuf,
    /// Whether a v1 store of this build's backend exists there.
    pub exists: bool,
    /// Its metadata row, if any.
    pub recorded: Option<DbMetadata>,
    /// Whether a v0 store lies beside it (the v0 → v1 build would start from it).
    pub v0_present: bool,
    /// Whether the 0.4.0-alpha.1 rule applies (the store goes back to 1.1.0 first).
    pub alpha_reset: bool,
    /// The version the steps start from.
    pub from: DbVersion,
    /// The steps, in order (empty when the store is current or new).
    pub steps: Vec<PlannedStep>,
    /// Whether the first step resumes an interrupted migration (status not `Empty`).
    pub resumes: bool,
}

impl MigrationPlan {
    /// Whether opening the store would run a migration.
    pub fn needs_migration(&self) -> bool {
        !self.steps.is_empty() || self.resumes
    }
}

impl<B: Backend> FinalisedState<B> {
    /// The migration plan of the store `config` names, read without migrating or writing
    /// anything (the store's lock is held while it is read, so it must not be open
    /// elsewhere). A store newer than this build, or one with no path to the latest version,
    /// is an error, as it would be at open.
    pub fn migration_plan(config: &Config) -> Result<MigrationPlan> {
        let dir = config.store_dir();
        crate::state::refuse_other_backend::<B>(&dir)?;
        let v0_present = v0_dir(config).is_some_and(|d| d.join(B::NAME).exists());
        let exists = dir.join(B::NAME).exists();
        let mut plan = MigrationPlan {
            store_dir: dir.clone(),
            exists,
            recorded: None,
            v0_present,
            alpha_reset: false,
            from: DB_VERSION_LATEST,
            steps: Vec::new(),
            resumes: false,
        };
        if exists {
            let _lock = crate::state::lock_store_dir(&dir)?;
            let store = B::open_in(&dir.join(B::NAME), V1_TABLES)?;
            let r = store.begin_read()?;
            plan.recorded = migrations::read_metadata(&r).map_err(|e| e.into_storage(&dir))?;
            if let Some(meta) = plan.recorded {
                plan.from = meta.version;
                plan.resumes = meta.migration_status != MigrationStatus::Empty;
                // The 0.4.0-alpha.1 rule, as `migrations::reconcile_alpha_txid_location_index`
                // applies it at open.
                if meta.version >= migrations::V1_2_0
                    && meta.version <= DB_VERSION_LATEST
                    && !r.is_empty(Headers::NAME)?
                    && r.is_empty(TxidLocation::NAME)?
                {
                    plan.alpha_reset = true;
                    plan.from = migrations::V1_1_0;
                    plan.resumes = false;
                }
            } else if v0_present {
                plan.from = DbVersion::default();
            }
            drop(r);
            drop(store);
        } else if v0_present {
            plan.from = DbVersion::default();
        }
        if plan.from > DB_VERSION_LATEST {
            return Err(Error::Incompatible {
                path: dir,
                reason: format!(
                    "the store is at version {}, newer than this build's {DB_VERSION_LATEST}; \
                     upgrade Strata to open it",
                    plan.from
                ),
            });
        }
        plan.steps = migrations::all_steps::<B>()
            .plan(plan.from, DB_VERSION_LATEST)
            .map_err(|e| e.into_storage(&dir))?;
        Ok(plan)
    }
}
