//! The migration framework: the [`Migration`] step trait, the [`Runner`] that walks a store
//! from its version to a target, the [`MigrationContext`] a step runs in, and progress
//! reporting.

use std::time::{Duration, Instant};

use storage_traits::kv::{KvRead, KvStore, KvWrite};
use storage_traits::model::{DbMetadata, DbVersion, Height, MigrationStatus};
use storage_traits::table::{METADATA_KEY, Metadata};
use storage_traits::{Durability, TableRead, TableWrite};

use crate::error::{MigrationError, Result};
use crate::host::MigrationHost;

/// How big a version bump a step is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MigrationKind {
    /// Metadata only; no table changes.
    Patch,
    /// New tables or indices, built in place from existing data.
    Minor,
    /// A new layout, built beside the old one and promoted.
    Major,
}

/// One step from one schema version to the next. Steps are generic over the store, so the
/// same step runs on every backend; anything that needs the host's write path goes through
/// [`MigrationContext::host`].
///
/// A step must be **re-entrant**: it may be killed at any point and run again from the
/// start on the store as the crash left it, and must then finish the job. It records its
/// destination version (with status `Empty`) in the same transaction as its last data.
pub trait Migration<S: KvStore> {
    /// The version the step starts from.
    fn from(&self) -> DbVersion;
    /// The version the step leaves the store at.
    fn to(&self) -> DbVersion;
    /// How big a bump it is.
    fn kind(&self) -> MigrationKind;
    /// A short human name for logs.
    fn name(&self) -> &'static str {
        "migration"
    }
    /// Runs (or resumes) the step.
    fn run(&self, ctx: &mut MigrationContext<'_, S>) -> Result<()>;
}

/// Tunables of a migration run.
#[derive(Clone, Debug)]
pub struct MigrationOptions {
    /// Byte budget of one batch of random-keyed index rows (`sync_write_batch_bytes`). Each
    /// batch commits its rows with its progress watermark in one synced transaction. Also
    /// the accumulator rebuild's memory ([`crate::commitment_from_tables`]): a budget far
    /// below the `spent` table's size makes it walk `transparent` once per pass.
    pub write_batch_bytes: usize,
    /// Report progress to the callback at least every this many heights of a scan (batches
    /// are always reported when they commit).
    pub progress_every_heights: u32,
    /// Log periodic progress through `tracing` at most this often.
    pub log_interval: Duration,
    /// Worker threads for the CPU work of the index stages (checking the source rows'
    /// checksums, sorting the entries and computing theirs), beside the calling thread,
    /// which reads and writes. 0: everything on the calling thread. Default: the available
    /// parallelism.
    pub worker_threads: usize,
}

impl Default for MigrationOptions {
    fn default() -> Self {
        MigrationOptions {
            write_batch_bytes: 256 << 20,
            progress_every_heights: 10_000,
            log_interval: Duration::from_secs(10),
            worker_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// Which part of which step a progress report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// A metadata-only step.
    Metadata,
    /// v0 → v1: building the v1 shadow from the block source.
    ShadowBuild,
    /// v0 → v1: validating the shadow before promotion.
    ShadowValidate,
    /// v0 → v1: promotion and removal of v0.
    Promote,
    /// v1.1 → v1.2 stage A: `txid_location` from `txids`.
    TxidLocation,
    /// v1.1 → v1.2 stage B: `spent` from `transparent`.
    Spent,
    /// v1.1 → v1.2 stage C: the accumulator from `transparent` + `spent`.
    Accumulator,
}

impl Stage {
    /// A short name (`A:txid_location`, …) for logs.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Metadata => "metadata",
            Stage::ShadowBuild => "shadow_build",
            Stage::ShadowValidate => "shadow_validate",
            Stage::Promote => "promote",
            Stage::TxidLocation => "A:txid_location",
            Stage::Spent => "B:spent",
            Stage::Accumulator => "C:accumulator",
        }
    }
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProgressEvent {
    /// A stage started (or resumed) at `height`.
    Started,
    /// Periodic progress: `height` is the next height to process (work below it is
    /// committed, for batched stages).
    Progress,
    /// A stage finished.
    Finished,
}

/// One progress report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MigrationProgress {
    /// The step's source version.
    pub from: DbVersion,
    /// The step's destination version.
    pub to: DbVersion,
    /// The stage.
    pub stage: Stage,
    /// Started, progress or finished.
    pub event: ProgressEvent,
    /// The next height to process, when the stage walks heights. Stage C walks them once
    /// per pass of its rebuild, so its heights start again at each pass.
    pub height: Option<Height>,
    /// The tip the stage walks to.
    pub tip: Option<Height>,
    /// Time since the stage started.
    pub elapsed: Duration,
}

/// What a step runs with: the store, the options, the host, and the progress callback.
pub struct MigrationContext<'a, S: KvStore> {
    /// The store being migrated (for v0 → v1, the v1 store being built).
    pub store: &'a S,
    /// Tunables.
    pub options: MigrationOptions,
    /// The host's services, for steps that need its write path.
    pub host: Option<&'a dyn MigrationHost>,
    progress: &'a mut dyn FnMut(&MigrationProgress),
    last_log: Option<Instant>,
}

impl<'a, S: KvStore> MigrationContext<'a, S> {
    /// A context over `store`.
    pub fn new(
        store: &'a S,
        options: MigrationOptions,
        host: Option<&'a dyn MigrationHost>,
        progress: &'a mut dyn FnMut(&MigrationProgress),
    ) -> Self {
        MigrationContext {
            store,
            options,
            host,
            progress,
            last_log: None,
        }
    }

    /// Reports progress to the callback, and to `tracing`: every start and finish, and
    /// periodic progress at most every `log_interval`.
    pub fn report(&mut self, p: MigrationProgress) {
        let log = match p.event {
            ProgressEvent::Started | ProgressEvent::Finished => true,
            ProgressEvent::Progress => self
                .last_log
                .is_none_or(|t| t.elapsed() >= self.options.log_interval),
        };
        if log {
            self.last_log = Some(Instant::now());
            tracing::info!(
                from = %p.from,
                to = %p.to,
                stage = p.stage.name(),
                event = ?p.event,
                height = p.height.map(|h| h.0),
                tip = p.tip.map(|h| h.0),
                elapsed_ms = p.elapsed.as_millis() as u64,
                "migration progress"
            );
        }
        (self.progress)(&p);
    }
}

/// The metadata row, if any.
pub fn read_metadata(r: &impl KvRead) -> Result<Option<DbMetadata>> {
    Ok(r.get_row::<Metadata>(&METADATA_KEY)?)
}

/// Writes the metadata row in its own synced transaction.
pub fn write_metadata<S: KvStore>(store: &S, meta: DbMetadata) -> Result<()> {
    let mut w = store.begin_write()?;
    w.put_row::<Metadata>(&METADATA_KEY, meta)?;
    w.commit(Durability::Synced)?;
    Ok(())
}

/// One step of a migration plan ([`Runner::plan`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedStep {
    /// The version the step starts from.
    pub from: DbVersion,
    /// The version it leaves the store at.
    pub to: DbVersion,
    /// How big a bump it is.
    pub kind: MigrationKind,
    /// Its name.
    pub name: &'static str,
}

/// The steps a host composes, and the walk from a store's version to a target.
pub struct Runner<S: KvStore> {
    steps: Vec<Box<dyn Migration<S>>>,
}

impl<S: KvStore> Default for Runner<S> {
    fn default() -> Self {
        Runner { steps: Vec::new() }
    }
}

impl<S: KvStore> Runner<S> {
    /// A runner with no steps.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a step. The host decides which steps exist.
    pub fn register(mut self, step: impl Migration<S> + 'static) -> Self {
        self.steps.push(Box::new(step));
        self
    }

    /// The registered steps, as `(from, to, kind)`.
    pub fn steps(&self) -> Vec<(DbVersion, DbVersion, MigrationKind)> {
        self.steps
            .iter()
            .map(|s| (s.from(), s.to(), s.kind()))
            .collect()
    }

    /// The steps [`Runner::run`] would take from `current` to `target`, in order, without
    /// touching a store: what a dry run shows. Fails as `run` would (a newer store, a
    /// missing or invalid step).
    pub fn plan(&self, current: DbVersion, target: DbVersion) -> Result<Vec<PlannedStep>> {
        if current > target {
            return Err(MigrationError::NewerThanTarget {
                found: current,
                target,
            });
        }
        let mut plan = Vec::new();
        let mut at = current;
        while at < target {
            let step = self
                .steps
                .iter()
                .find(|s| s.from() == at)
                .ok_or(MigrationError::MissingStep { from: at, target })?;
            let to = step.to();
            if to <= at || to > target {
                return Err(MigrationError::InvalidStep {
                    from: at,
                    to,
                    target,
                });
            }
            plan.push(PlannedStep {
                from: at,
                to,
                kind: step.kind(),
                name: step.name(),
            });
            at = to;
        }
        Ok(plan)
    }

    /// Walks the store from its recorded version to `target`, running one registered step
    /// per hop. A store without a metadata row is at 0.0.0 (a v0 store whose v1 shadow has
    /// not started). Returns the version reached (`target`).
    ///
    /// A store at `target` whose status is not `Empty` is left as it is: no step starts
    /// there, and the host decides what that means.
    pub fn run(&self, ctx: &mut MigrationContext<'_, S>, target: DbVersion) -> Result<DbVersion> {
        let mut current = read_metadata(&ctx.store.begin_read()?)?
            .map(|m| m.version)
            .unwrap_or_default();
        if current > target {
            return Err(MigrationError::NewerThanTarget {
                found: current,
                target,
            });
        }
        let started = Instant::now();
        while current < target {
            let step = self.steps.iter().find(|s| s.from() == current).ok_or(
                MigrationError::MissingStep {
                    from: current,
                    target,
                },
            )?;
            let to = step.to();
            if to <= current || to > target {
                return Err(MigrationError::InvalidStep {
                    from: current,
                    to,
                    target,
                });
            }
            let span =
                tracing::info_span!("migration", from = %current, to = %to, name = step.name());
            let _enter = span.enter();
            let step_started = Instant::now();
            tracing::info!(kind = ?step.kind(), "migration step starting");
            step.run(ctx)?;
            let meta =
                read_metadata(&ctx.store.begin_read()?)?.ok_or(MigrationError::NoMetadata)?;
            if meta.version != to || meta.migration_status != MigrationStatus::Empty {
                return Err(MigrationError::StepDidNotAdvance {
                    from: current,
                    to,
                    found: meta.version,
                    status: meta.migration_status,
                });
            }
            tracing::info!(
                elapsed_ms = step_started.elapsed().as_millis() as u64,
                "migration step complete"
            );
            current = to;
        }
        tracing::info!(
            version = %current,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "store at target version"
        );
        Ok(current)
    }
}
