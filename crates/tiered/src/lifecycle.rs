//! The lifecycle: a resolver that compares the catalog with the tip and the retention
//! window and returns a [`Plan`], an executor that runs it with a bounded number of workers
//! and retries, the tick that drives both, backfill, and the background thread.
//!
//! # The tick
//!
//! 1. resolve, then freeze every closed chunk that misses a kind it should have and has a
//!    local source (its `ready` hot store, or its frozen payload pack for derived kinds):
//!    the chunk that just closed is frozen from its hot store;
//! 2. resolve again (the freezes changed the catalog), then discard the hot stores whose
//!    packs now serve them (every kind the chunk should have is `frozen`, or the chunk is
//!    past the payload retention) — the read handles close first;
//! 3. prune the packs past each kind's retention: one commit on `refs/heads/main` without
//!    them (a new root: main's history is cut there, so only snapshot refs keep older
//!    packs), then per pack `pruning` → unlink → fsync the directory → delete the key, then
//!    GC of every object no ref reaches (superseded packs, old trees and commits).
//!
//! A freeze task that fails is retried (`max_retries`, backoff doubling); one that still
//! fails is reported and planned again by the next tick. Freezing marks `frozen` only as
//! its last catalog step (coldpack's one-write protocol), so a failed task never marks
//! anything frozen. Loss (`HotStoreLost`, `FrozenPackLost`) is never retried: the tick
//! returns it as an error.
//!
//! Closed chunks with no local source (their payload was pruned and retention has since
//! been widened, or their hot store was lost and forgotten) are listed in
//! [`Plan::needs_backfill`]; [`crate::TieredStore::backfill`] materialises them from the
//! bulk backend, in parallel.

use std::collections::{BTreeMap, VecDeque};
use std::ops::RangeInclusive;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Instant;

use coldpack::SourceKind;
use coldpack::cas::{Commit, MAIN};
use hotchunk::{ChunkId, ChunkState, ColdState, Kind};

use crate::config::PAYLOAD_KIND;
use crate::error::{Error, Result};
use crate::store::{Inner, TieredStore, lock, now_secs};

/// Materialise `kinds` of `chunk`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreezeTask {
    /// The chunk.
    pub chunk: u32,
    /// The kinds it misses.
    pub kinds: Vec<String>,
}

/// Why a hot store is discarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscardReason {
    /// Its packs serve it (every kind it should have is frozen).
    Served,
    /// It is past the payload retention.
    PastRetention,
    /// An interrupted create or discard left it `transient`.
    Transient,
}

/// What the resolver found to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Chunks to freeze (from a local source; in a backfill, from any source).
    pub freeze: Vec<FreezeTask>,
    /// Hot stores to discard.
    pub discard: Vec<(u32, DiscardReason)>,
    /// Packs past retention to prune, as (kind, chunk).
    pub prune: Vec<(String, u32)>,
    /// Closed chunks within retention that miss kinds and have no local source: a
    /// backfill from the bulk backend materialises them.
    pub needs_backfill: Vec<FreezeTask>,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.freeze.is_empty() && self.discard.is_empty() && self.prune.is_empty()
    }
}

/// A chunk frozen by the executor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrozenChunk {
    /// The chunk.
    pub chunk: u32,
    /// The kinds built.
    pub kinds: Vec<String>,
    /// The source read.
    pub source: Option<SourceKind>,
    /// Attempts it took (1 without retries).
    pub attempts: u32,
}

/// A task that failed every attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskFailure {
    /// What it was.
    pub task: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub error: String,
}

/// What a tick, an execution or a backfill did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Chunks frozen.
    pub frozen: Vec<FrozenChunk>,
    /// Hot stores discarded.
    pub discarded: Vec<u32>,
    /// Packs pruned, as (kind, chunk).
    pub pruned: Vec<(String, u32)>,
    /// Tasks that failed every attempt (planned again by the next tick).
    pub failed: Vec<TaskFailure>,
    /// The GC after a prune.
    pub gc: Option<coldpack::cas::GcReport>,
    /// Chunks that need a backfill (see [`Plan::needs_backfill`]).
    pub needs_backfill: Vec<FreezeTask>,
}

impl Report {
    fn absorb(&mut self, other: Report) {
        self.frozen.extend(other.frozen);
        self.discarded.extend(other.discarded);
        self.pruned.extend(other.pruned);
        self.failed.extend(other.failed);
        if other.gc.is_some() {
            self.gc = other.gc;
        }
        self.needs_backfill = other.needs_backfill;
    }
}

impl TieredStore {
    /// The plan of the next tick (pure: reads the catalog and the tip, changes nothing).
    pub fn resolve(&self) -> Result<Plan> {
        self.inner.resolve(None)
    }

    /// Runs `plan`: its freezes (bounded workers, retries), then its discards, then its
    /// prunes. Returns an error only for loss or a failed prune/discard step.
    pub fn execute(&self, plan: &Plan) -> Result<Report> {
        let _l = lock(&self.inner.lifecycle_lock);
        self.inner.execute(plan)
    }

    /// One lifecycle tick (see the module docs): freeze closed chunks, discard the hot
    /// stores their packs now serve, prune past retention.
    pub fn tick(&self) -> Result<Report> {
        let inner = &*self.inner;
        let _l = lock(&inner.lifecycle_lock);
        inner.freeze_then_tidy(None)
    }

    /// Backfill mode: materialises every kind missing from the closed chunks of `chunks`
    /// (within retention), in parallel, from the cheapest source — a complete hot store,
    /// the local payload pack, else the bulk backend (after a bounded wait for it to cover
    /// the chunk) — then discards and prunes as a tick does. Chunks above the tip are left
    /// alone: ingest writes them.
    pub fn backfill(&self, chunks: RangeInclusive<u32>) -> Result<Report> {
        let inner = &*self.inner;
        let _l = lock(&inner.lifecycle_lock);
        inner.freeze_then_tidy(Some(chunks))
    }

    /// Starts the background lifecycle: a thread that ticks whenever a chunk closes (and
    /// every `tick_interval`, to retry failures). Stop it with [`Lifecycle::stop`] (or by
    /// dropping it).
    pub fn start_lifecycle(&self) -> Lifecycle {
        self.inner.signal.set_stop(false);
        // A chunk may have closed before the thread existed.
        self.inner.signal.notify();
        let store = self.clone();
        let thread = std::thread::Builder::new()
            .name("tiered-lifecycle".into())
            .spawn(move || run_lifecycle(&store))
            .expect("spawn the lifecycle thread");
        Lifecycle {
            store: self.clone(),
            thread: Some(thread),
        }
    }
}

/// One tick of the background lifecycle that froze something.
#[derive(Clone, Copy, Debug)]
pub struct TickSpan {
    /// When it started.
    pub start: Instant,
    /// When it ended.
    pub end: Instant,
    /// Chunks it froze.
    pub frozen: usize,
}

/// What the background lifecycle did.
#[derive(Clone, Debug, Default)]
pub struct LifecycleStats {
    /// Ticks run.
    pub ticks: u64,
    /// Chunks frozen, hot stores discarded, packs pruned.
    pub frozen: u64,
    /// Hot stores discarded.
    pub discarded: u64,
    /// Packs pruned.
    pub pruned: u64,
    /// Ticks that returned an error, and task failures.
    pub errors: u64,
    /// The last error.
    pub last_error: Option<String>,
    /// The ticks that froze something, with their times.
    pub freeze_spans: Vec<TickSpan>,
    /// A loss error stopped the thread.
    pub stopped_by_loss: bool,
}

/// The handle of the background lifecycle thread.
pub struct Lifecycle {
    store: TieredStore,
    thread: Option<JoinHandle<LifecycleStats>>,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("running", &self.thread.is_some())
            .finish()
    }
}

impl Lifecycle {
    /// Stops the thread after its current tick and returns what it did.
    pub fn stop(mut self) -> Result<LifecycleStats> {
        self.join()
    }

    fn join(&mut self) -> Result<LifecycleStats> {
        self.store.inner.signal.set_stop(true);
        match self.thread.take() {
            None => Ok(LifecycleStats::default()),
            Some(t) => t.join().map_err(|p| {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                Error::LifecyclePanicked(msg)
            }),
        }
    }
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

fn run_lifecycle(store: &TieredStore) -> LifecycleStats {
    let mut stats = LifecycleStats::default();
    let interval = store.inner.config.tick_interval;
    loop {
        if store.inner.signal.wait(interval) {
            break;
        }
        let start = Instant::now();
        stats.ticks += 1;
        match store.tick() {
            Ok(r) => {
                stats.frozen += r.frozen.len() as u64;
                stats.discarded += r.discarded.len() as u64;
                stats.pruned += r.pruned.len() as u64;
                stats.errors += r.failed.len() as u64;
                if let Some(f) = r.failed.last() {
                    stats.last_error = Some(f.error.clone());
                }
                if !r.frozen.is_empty() {
                    stats.freeze_spans.push(TickSpan {
                        start,
                        end: Instant::now(),
                        frozen: r.frozen.len(),
                    });
                }
            }
            Err(e) => {
                stats.errors += 1;
                tracing::error!(error = %e, "lifecycle tick failed");
                stats.last_error = Some(e.to_string());
                if e.is_loss() {
                    stats.stopped_by_loss = true;
                    break;
                }
            }
        }
    }
    stats
}

impl Inner {
    /// Freezes what the plan for `backfill` (see [`Inner::resolve`]) lists, then resolves
    /// again and runs the rest (discards and prunes the new packs allow): a tick's and a
    /// backfill's shared second half.
    fn freeze_then_tidy(&self, backfill: Option<RangeInclusive<u32>>) -> Result<Report> {
        let plan = self.resolve(backfill)?;
        let mut report = self.execute(&Plan {
            freeze: plan.freeze,
            ..Plan::default()
        })?;
        let plan = self.resolve(None)?;
        report.absorb(self.execute(&Plan {
            freeze: Vec::new(),
            ..plan
        })?);
        Ok(report)
    }

    /// The resolver. `backfill`: plan freezes for the closed chunks of this range whatever
    /// their source; otherwise only those with a local source.
    pub(crate) fn resolve(&self, backfill: Option<RangeInclusive<u32>>) -> Result<Plan> {
        let mut plan = Plan::default();
        let Some(tip) = self.tip() else {
            return Ok(plan);
        };
        let g = self.layout.geometry();
        let tip_chunk = g.chunk_of(tip)?.0;
        // The newest closed chunk: the tip's own when the tip is its last height.
        let closed_end = if g.last_height(ChunkId(tip_chunk))? <= tip {
            Some(tip_chunk)
        } else {
            tip_chunk.checked_sub(1)
        };
        let is_closed = |c: u32| closed_end.is_some_and(|e| c <= e);
        let kinds = self.config.kinds();
        let floor = |k: &str| {
            self.config
                .retention_of(k)
                .map_or(0, |n| (tip_chunk + 1).saturating_sub(n))
        };
        let hot: BTreeMap<u32, ChunkState> = self
            .catalog
            .hot_chunks()?
            .into_iter()
            .map(|(c, s)| (c.0, s))
            .collect();
        let mut cold: BTreeMap<&str, BTreeMap<u32, ColdState>> = BTreeMap::new();
        for &k in &kinds {
            let m = self
                .catalog
                .cold_chunks(&Kind::named(k)?)?
                .into_iter()
                .map(|(c, s)| (c.0, s))
                .collect();
            cold.insert(k, m);
        }
        let frozen =
            |k: &str, c: u32| cold.get(k).and_then(|m| m.get(&c)) == Some(&ColdState::Frozen);

        // Freezes: closed chunks within each kind's retention whose key is not frozen.
        let mut missing: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        if let Some(end) = closed_end {
            for &k in &kinds {
                let (mut lo, mut hi) = (floor(k), end);
                if let Some(r) = &backfill {
                    lo = lo.max(*r.start());
                    hi = hi.min(*r.end());
                }
                for c in lo..=hi {
                    if !frozen(k, c) {
                        missing.entry(c).or_default().push(k.to_owned());
                    }
                }
            }
        }
        for (chunk, kinds) in missing {
            let hot_ready = hot.get(&chunk) == Some(&ChunkState::Ready);
            let needs_payload = kinds.iter().any(|k| k == PAYLOAD_KIND);
            let local = hot_ready || (!needs_payload && frozen(PAYLOAD_KIND, chunk));
            let task = FreezeTask { chunk, kinds };
            if local || backfill.is_some() {
                plan.freeze.push(task);
            } else {
                plan.needs_backfill.push(task);
            }
        }

        // Discards: closed chunks only (the writer's chunk is never closed).
        let payload_floor = floor(PAYLOAD_KIND);
        for (&c, &state) in &hot {
            if !is_closed(c) {
                continue;
            }
            let reason = match state {
                ChunkState::Transient => Some(DiscardReason::Transient),
                ChunkState::Ready if c < payload_floor => Some(DiscardReason::PastRetention),
                ChunkState::Ready => kinds
                    .iter()
                    .filter(|k| floor(k) <= c)
                    .all(|k| frozen(k, c))
                    .then_some(DiscardReason::Served),
            };
            if let Some(r) = reason {
                plan.discard.push((c, r));
            }
        }

        // Prunes: any key of a kind below its retention floor.
        for &k in &kinds {
            let f = floor(k);
            if let Some(m) = cold.get(k) {
                plan.prune
                    .extend(m.keys().filter(|&&c| c < f).map(|&c| (k.to_owned(), c)));
            }
        }
        Ok(plan)
    }

    /// The executor (the caller holds `lifecycle_lock`).
    pub(crate) fn execute(&self, plan: &Plan) -> Result<Report> {
        let mut report = Report {
            needs_backfill: plan.needs_backfill.clone(),
            ..Report::default()
        };
        self.run_freezes(&plan.freeze, &mut report)?;
        self.run_discards(&plan.discard, &mut report)?;
        self.run_prunes(&plan.prune, &mut report)?;
        Ok(report)
    }

    fn run_freezes(&self, tasks: &[FreezeTask], report: &mut Report) -> Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        let queue = Mutex::new(tasks.iter().cloned().collect::<VecDeque<_>>());
        let done = Mutex::new(Vec::new());
        let failed = Mutex::new(Vec::new());
        let fatal: Mutex<Option<Error>> = Mutex::new(None);
        let workers = self.config.workers.min(tasks.len()).max(1);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        if lock(&fatal).is_some() {
                            break;
                        }
                        let Some(task) = lock(&queue).pop_front() else {
                            break;
                        };
                        match self.freeze_with_retries(&task) {
                            Ok(Ok(f)) => lock(&done).push(f),
                            Ok(Err(f)) => lock(&failed).push(f),
                            Err(e) => {
                                lock(&fatal).get_or_insert(e);
                            }
                        }
                    }
                });
            }
        });
        let mut done = done.into_inner().unwrap_or_else(|p| p.into_inner());
        done.sort_by_key(|f: &FrozenChunk| f.chunk);
        report.frozen.extend(done);
        report
            .failed
            .extend(failed.into_inner().unwrap_or_else(|p| p.into_inner()));
        match fatal.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// One freeze task with retries: `Ok(Ok)` frozen, `Ok(Err)` failed every attempt,
    /// `Err` loss (fatal, not retried).
    fn freeze_with_retries(
        &self,
        task: &FreezeTask,
    ) -> Result<std::result::Result<FrozenChunk, TaskFailure>> {
        let kinds: Vec<&str> = task.kinds.iter().map(String::as_str).collect();
        let freezer = self.freezer();
        let mut backoff = self.config.retry_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match freezer.process_chunk(task.chunk, &kinds, now_secs()) {
                Ok(r) => {
                    tracing::info!(chunk = task.chunk, kinds = ?task.kinds, source = ?r.source, attempt, "chunk frozen");
                    return Ok(Ok(FrozenChunk {
                        chunk: task.chunk,
                        kinds: r.built.into_iter().map(|(k, _)| k).collect(),
                        source: r.source,
                        attempts: attempt,
                    }));
                }
                Err(e) if e.is_loss() => {
                    tracing::error!(chunk = task.chunk, error = %e, "freeze found lost data");
                    return Err(e.into());
                }
                Err(e) if attempt > self.config.max_retries => {
                    tracing::error!(chunk = task.chunk, attempt, error = %e, "freeze failed; the next tick plans it again");
                    return Ok(Err(TaskFailure {
                        task: format!("freeze chunk {} ({})", task.chunk, task.kinds.join(", ")),
                        attempts: attempt,
                        error: e.to_string(),
                    }));
                }
                Err(e) => {
                    tracing::warn!(chunk = task.chunk, attempt, error = %e, "freeze failed; retrying");
                    std::thread::sleep(backoff);
                    backoff = backoff.saturating_mul(2);
                }
            }
        }
    }

    fn run_discards(&self, discards: &[(u32, DiscardReason)], report: &mut Report) -> Result<()> {
        if discards.is_empty() {
            return Ok(());
        }
        let payload = Kind::named(PAYLOAD_KIND)?;
        let _w = self.routing.write().unwrap_or_else(|p| p.into_inner());
        for &(c, reason) in discards {
            let chunk = ChunkId(c);
            // The plan may be stale: a served chunk must still be frozen.
            if reason == DiscardReason::Served
                && self.catalog.cold_state(chunk, &payload)? != Some(ColdState::Frozen)
            {
                continue;
            }
            self.drop_handles(c);
            match self.tier.discard_hot_db_for_chunk(chunk) {
                Ok(()) => {
                    tracing::info!(chunk = c, ?reason, "hot store discarded");
                    report.discarded.push(c);
                }
                Err(e) => report.failed.push(TaskFailure {
                    task: format!("discard hot store of chunk {c}"),
                    attempts: 1,
                    error: e.to_string(),
                }),
            }
        }
        Ok(())
    }

    fn run_prunes(&self, prunes: &[(String, u32)], report: &mut Report) -> Result<()> {
        if prunes.is_empty() {
            return Ok(());
        }
        // 0. every frozen pack named by main (a freeze that failed between its frozen flip
        //    and its commit would otherwise be unreachable after the cut, and collected).
        self.freezer().reconcile(now_secs())?;
        // 1. main without them, as a new root (its history would keep them reachable).
        {
            let _g = self.cas.lock();
            let mut m = self.cas.manifest_at(MAIN)?;
            let before = m.packs.len();
            for (k, c) in prunes {
                m.packs.remove(&(k.clone(), *c));
            }
            if m.packs.len() != before {
                let tree = self.cas.write_manifest(&m)?;
                let commit = self.cas.write_commit(&Commit {
                    tree,
                    parents: Vec::new(),
                    time: now_secs(),
                    message: format!(
                        "retention: prune {}",
                        prunes
                            .iter()
                            .map(|(k, c)| format!("{k}/{c:08}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?;
                self.cas.set_ref(MAIN, &commit)?;
            }
        }
        // 2. the one-write protocol's deletion, read handles closed first.
        {
            let _w = self.routing.write().unwrap_or_else(|p| p.into_inner());
            for (k, c) in prunes {
                let kind = Kind::named(k.as_str())?;
                let chunk = ChunkId(*c);
                self.drop_handles(*c);
                self.catalog.put_cold(chunk, &kind, ColdState::Pruning)?;
                let path = self.layout.pack_path(&kind, chunk);
                match std::fs::remove_file(&path) {
                    Ok(()) => hotchunk::fsync_parent(&path)?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Error::Cold(coldpack::Error::io(path, e)));
                    }
                }
                self.catalog.delete_cold(chunk, &kind)?;
                tracing::info!(kind = %k, chunk = c, "pruned past retention");
                report.pruned.push((k.clone(), *c));
            }
        }
        // 3. GC: the pruned packs' objects, superseded packs, old trees and commits.
        report.gc = Some(self.freezer().gc()?);
        Ok(())
    }
}
