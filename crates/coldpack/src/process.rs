//! Freezing: [`Freezer::process_chunk`] and [`Freezer::backfill_source`], recovery
//! ([`Freezer::reconcile`]), garbage collection ([`Freezer::gc`]) and the agreement check.
//!
//! # Commit order of one freeze
//!
//! 1. choose the source ([`Freezer::backfill_source`]); nothing is marked yet, so a chunk
//!    no source can supply leaves no debris;
//! 2. (under the store lock) one synced catalog batch: every kind to build → `freezing`;
//!    remove any earlier file at each canonical path (a crashed partial, or the pack being
//!    rebuilt: a pack is never overwritten in place, its inode may be a CAS object);
//! 3. one pass over the source writes every pack at its final path (`O_EXCL`) and fsyncs it;
//! 4. fsync each bucket directory, and each directory created for it and its parent (the
//!    new grandparent);
//! 5. (under the store lock) hard-link each pack into `objects/` (fsync that directory);
//! 6. one synced catalog batch: every built kind → `frozen`;
//! 7. a new commit on `refs/heads/main` whose manifest names the new packs (objects written
//!    by temp file + fsync + rename, the ref replaced atomically).
//!
//! A crash anywhere leaves: before 6, `freezing` keys (the files are debris: reconcile
//! deletes them and the keys, a rerun rebuilds byte-identical packs); between 6 and 7, a
//! `frozen` key that main does not name (reconcile hashes the file, links it and commits).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::bulk::{BulkBackend, wait_for_coverage};
use crate::cas::{Cas, MAIN, ObjectId, PackEntry, same_inode};
use crate::derived::{KeyExtractor, KeyIndexBuilder};
use crate::error::{Error, Result};
use crate::format::{Codec, RECORD_KIND_KEY_INDEX, RECORD_KIND_PAYLOAD};
use crate::fsutil::{create_dirs, fsync_created_dirs, fsync_parent, remove_if_exists};
use crate::reader::PackReader;
use crate::traits::{ChunkLayout, ColdCatalog, ColdState, HotState, HotView, HotViews};
use crate::writer::{PackOptions, PackSummary, PackWriter};

/// How a kind's pack is built.
#[derive(Clone)]
pub enum KindSpec {
    /// The raw payload of each height, one record per height.
    Payload {
        /// The codec.
        codec: Codec,
    },
    /// A sorted key index built by `extractor` (see [`crate::derived`]).
    KeyIndex {
        /// The host's extractor.
        extractor: Arc<dyn KeyExtractor>,
        /// The codec.
        codec: Codec,
    },
}

impl std::fmt::Debug for KindSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KindSpec::Payload { codec } => write!(f, "Payload({codec})"),
            KindSpec::KeyIndex { codec, .. } => write!(f, "KeyIndex({codec})"),
        }
    }
}

/// The kinds a freezer builds and how long it waits for the bulk backend.
#[derive(Clone, Debug)]
pub struct FreezeConfig {
    /// The payload kind (the one a frozen local pack can feed other kinds from).
    pub payload_kind: String,
    /// Every kind, by name (the payload kind included, as [`KindSpec::Payload`]).
    pub kinds: BTreeMap<String, KindSpec>,
    /// How long to wait for the backend to cover a chunk (then fatal).
    pub backend_timeout: Duration,
    /// How often to poll the backend's tip while waiting.
    pub backend_poll: Duration,
}

impl FreezeConfig {
    /// The payload kind `payload_kind` with `codec`, no derived kinds, a 5-minute backend
    /// wait polled every second.
    pub fn new(payload_kind: &str, codec: Codec) -> Self {
        let mut kinds = BTreeMap::new();
        kinds.insert(payload_kind.to_owned(), KindSpec::Payload { codec });
        FreezeConfig {
            payload_kind: payload_kind.to_owned(),
            kinds,
            backend_timeout: Duration::from_secs(300),
            backend_poll: Duration::from_secs(1),
        }
    }

    /// Adds a derived key-index kind.
    pub fn with_key_index(
        mut self,
        kind: &str,
        extractor: Arc<dyn KeyExtractor>,
        codec: Codec,
    ) -> Self {
        self.kinds
            .insert(kind.to_owned(), KindSpec::KeyIndex { extractor, codec });
        self
    }
}

/// A step of the freeze protocol, for crash tests (see [`Freezer::with_hook`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// The source is chosen; nothing is marked.
    SourceChosen,
    /// The kinds are `freezing` and old files removed.
    MarkedFreezing,
    /// Some records written (after half the chunk), files not finished.
    MidWrite,
    /// Every pack is written and fsynced.
    FilesWritten,
    /// Directories fsynced.
    DirsSynced,
    /// Packs linked into the store.
    Linked,
    /// The kinds are `frozen`.
    MarkedFrozen,
    /// The commit is written and main moved.
    Committed,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 8] = [
        Step::SourceChosen,
        Step::MarkedFreezing,
        Step::MidWrite,
        Step::FilesWritten,
        Step::DirsSynced,
        Step::Linked,
        Step::MarkedFrozen,
        Step::Committed,
    ];
}

/// Where a chunk's payloads come from.
pub enum Source<'a> {
    /// A `ready` hot store whose watermark covers the chunk.
    Hot(Box<dyn HotView + 'a>),
    /// The frozen local payload pack.
    Pack(PackReader),
    /// The bulk backend.
    Bulk(&'a dyn BulkBackend),
}

/// Which source was used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// The hot store.
    Hot,
    /// The local payload pack.
    Pack,
    /// The bulk backend.
    Bulk,
}

impl Source<'_> {
    /// Which source this is.
    pub fn kind(&self) -> SourceKind {
        match self {
            Source::Hot(_) => SourceKind::Hot,
            Source::Pack(_) => SourceKind::Pack,
            Source::Bulk(_) => SourceKind::Bulk,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Source::Hot(_) => "hot store",
            Source::Pack(_) => "local pack",
            Source::Bulk(_) => "bulk backend",
        }
    }

    /// Calls `f` with each height of `heights` and its payload, ascending.
    pub fn visit(
        &self,
        heights: RangeInclusive<u32>,
        f: &mut dyn FnMut(u32, &[u8]) -> Result<()>,
    ) -> Result<()> {
        match self {
            Source::Hot(v) => v.visit(heights, f),
            Source::Bulk(b) => b.visit(heights, f),
            Source::Pack(p) => {
                let mut buf = Vec::new();
                for h in heights {
                    let i = h.checked_sub(p.first_height()).unwrap_or(u32::MAX);
                    p.read_into(i, &mut buf)?;
                    f(h, &buf)?;
                }
                Ok(())
            }
        }
    }
}

/// What [`Freezer::process_chunk`] did.
#[derive(Clone, Debug)]
pub struct ProcessReport {
    /// The chunk.
    pub chunk: u32,
    /// The kinds already frozen, skipped.
    pub skipped: Vec<String>,
    /// The kinds built, with their packs.
    pub built: Vec<(String, PackSummary)>,
    /// The source used (`None` when everything was skipped).
    pub source: Option<SourceKind>,
    /// The commit made (`None` when everything was skipped).
    pub commit: Option<ObjectId>,
}

/// What [`Freezer::reconcile`] repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// `freezing` keys whose debris was removed, with their keys, as (kind, chunk).
    pub abandoned_freezes: Vec<(String, u32)>,
    /// `freezing` keys of a crashed rebuild whose committed pack (the object main names)
    /// was put back at the canonical path and marked `frozen` again.
    pub restored: Vec<(String, u32)>,
    /// `pruning` keys finished.
    pub finished_prunes: Vec<(String, u32)>,
    /// `frozen` packs linked into the store and committed to main.
    pub adopted: Vec<(String, u32)>,
    /// The commit made for the adopted packs.
    pub commit: Option<ObjectId>,
}

type Hook<'a> = &'a (dyn Fn(Step) -> Result<()> + Sync);

/// Freezes chunks: the catalog, the layout, the sources and the store together.
pub struct Freezer<'a> {
    catalog: &'a dyn ColdCatalog,
    layout: &'a dyn ChunkLayout,
    hot: Option<&'a dyn HotViews>,
    backend: Option<&'a dyn BulkBackend>,
    cas: &'a Cas,
    config: FreezeConfig,
    hook: Option<Hook<'a>>,
}

impl<'a> Freezer<'a> {
    /// A freezer over these collaborators.
    pub fn new(
        catalog: &'a dyn ColdCatalog,
        layout: &'a dyn ChunkLayout,
        cas: &'a Cas,
        config: FreezeConfig,
    ) -> Self {
        Freezer {
            catalog,
            layout,
            hot: None,
            backend: None,
            cas,
            config,
            hook: None,
        }
    }

    /// Adds the hot stores as a source.
    pub fn with_hot(mut self, hot: &'a dyn HotViews) -> Self {
        self.hot = Some(hot);
        self
    }

    /// Adds the bulk backend as a source.
    pub fn with_backend(mut self, backend: &'a dyn BulkBackend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// A hook called at each protocol step (crash tests stop or kill the process there).
    pub fn with_hook(mut self, hook: Hook<'a>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &FreezeConfig {
        &self.config
    }

    fn step(&self, s: Step) -> Result<()> {
        match self.hook {
            Some(h) => h(s),
            None => Ok(()),
        }
    }

    fn spec(&self, kind: &str) -> Result<&KindSpec> {
        self.config
            .kinds
            .get(kind)
            .ok_or_else(|| Error::UnknownKind {
                kind: kind.to_owned(),
                reason: "not configured in this freezer".into(),
            })
    }

    /// Chooses `chunk`'s source, in this order:
    /// 1. a `ready` hot store whose watermark covers the chunk (one that will not open, or
    ///    whose watermark cannot be read, is [`Error::HotStoreLost`]; a short watermark is
    ///    staleness and falls through);
    /// 2. the `frozen` local payload pack, unless `rebuilding_payload` (a `frozen` key whose
    ///    pack is missing or unreadable is [`Error::FrozenPackLost`]);
    /// 3. the bulk backend, after waiting up to the configured timeout for it to cover the
    ///    chunk ([`Error::BackendCoverageTimeout`]).
    pub fn backfill_source(&self, chunk: u32, rebuilding_payload: bool) -> Result<Source<'a>> {
        let heights = self.layout.heights(chunk)?;
        let last = *heights.end();
        let mut refused = Vec::new();

        match self.catalog.hot_state(chunk)? {
            Some(HotState::Ready) if self.hot.is_none() => {
                refused.push("hot store ready but this freezer reads no hot stores".into());
            }
            Some(HotState::Ready) => {
                let hot = self.hot.ok_or_else(|| Error::NoSource {
                    chunk,
                    reason: "no hot stores".into(),
                })?;
                let view = hot.open_view(chunk).map_err(|e| Error::HotStoreLost {
                    chunk,
                    reason: e.to_string(),
                })?;
                let wm = view.watermark().map_err(|e| Error::HotStoreLost {
                    chunk,
                    reason: format!("watermark unreadable: {e}"),
                })?;
                if wm.is_some_and(|w| w >= last) {
                    tracing::debug!(chunk, "source: hot store");
                    return Ok(Source::Hot(view));
                }
                tracing::info!(chunk, watermark = ?wm, last, "hot store is stale; falling through");
                refused.push(format!("hot store stale (watermark {wm:?} < {last})"));
            }
            Some(HotState::Transient) => refused.push("hot store transient".into()),
            None => refused.push("no hot store".into()),
        }

        let payload = self.config.payload_kind.as_str();
        match self.catalog.cold_state(chunk, payload)? {
            Some(ColdState::Frozen) if !rebuilding_payload => {
                let path = self.layout.pack_path(payload, chunk)?;
                let lost = |reason: String| Error::FrozenPackLost {
                    chunk,
                    kind: payload.to_owned(),
                    path: path.clone(),
                    reason,
                };
                if !path.exists() {
                    return Err(lost("the file is missing".into()));
                }
                let pack = PackReader::open(&path).map_err(|e| lost(e.to_string()))?;
                let t = pack.trailer();
                if t.first_height != *heights.start()
                    || u64::from(t.record_count) != u64::from(last - heights.start()) + 1
                    || t.record_kind != RECORD_KIND_PAYLOAD
                {
                    return Err(lost(format!(
                        "it holds {} records from height {} (kind {}), not the chunk's heights {heights:?}",
                        t.record_count, t.first_height, t.record_kind
                    )));
                }
                tracing::debug!(chunk, "source: local pack");
                return Ok(Source::Pack(pack));
            }
            Some(ColdState::Frozen) => refused.push("local pack is being rebuilt".into()),
            Some(s) => refused.push(format!("local pack is {s:?}")),
            None => refused.push("no local pack".into()),
        }

        let Some(backend) = self.backend else {
            return Err(Error::NoSource {
                chunk,
                reason: format!("{}; no bulk backend configured", refused.join(", ")),
            });
        };
        wait_for_coverage(
            backend,
            chunk,
            last,
            self.config.backend_timeout,
            self.config.backend_poll,
        )?;
        tracing::debug!(chunk, backend = %backend.name(), "source: bulk backend");
        Ok(Source::Bulk(backend))
    }

    /// Materialises the requested `kinds` of `chunk` in one pass over one source; kinds
    /// already `frozen` are skipped. `time` (seconds) goes into the commit.
    pub fn process_chunk(&self, chunk: u32, kinds: &[&str], time: u64) -> Result<ProcessReport> {
        let mut todo: Vec<&str> = Vec::new();
        let mut skipped = Vec::new();
        for &k in kinds {
            self.spec(k)?;
            if todo.contains(&k) || skipped.iter().any(|s: &String| s == k) {
                continue;
            }
            if self.catalog.cold_state(chunk, k)? == Some(ColdState::Frozen) {
                skipped.push(k.to_owned());
            } else {
                todo.push(k);
            }
        }
        if todo.is_empty() {
            return Ok(ProcessReport {
                chunk,
                skipped,
                built: Vec::new(),
                source: None,
                commit: None,
            });
        }
        let heights = self.layout.heights(chunk)?;
        let rebuilding_payload = todo.contains(&self.config.payload_kind.as_str());
        let source = self.backfill_source(chunk, rebuilding_payload)?;
        self.step(Step::SourceChosen)?;
        let _span =
            tracing::info_span!("freeze", chunk, kinds = ?todo, source = source.name()).entered();

        // Mark, then clear the canonical paths (under the lock: GC must not see a
        // half-changed chunk).
        let mut paths = Vec::new();
        let mut created = Vec::new();
        {
            let _g = self.cas.lock();
            self.catalog.set_cold(chunk, &todo, ColdState::Freezing)?;
            for &k in &todo {
                let path = self.layout.pack_path(k, chunk)?;
                if remove_if_exists(&path)? {
                    fsync_parent(&path)?;
                }
                if let Some(dir) = path.parent() {
                    created.extend(create_dirs(dir)?);
                }
                paths.push(path);
            }
        }
        self.step(Step::MarkedFreezing)?;

        let summaries = self.write_packs(chunk, &todo, &paths, heights, &source)?;
        let source_kind = source.kind();
        drop(source);
        self.step(Step::FilesWritten)?;

        for p in &paths {
            fsync_parent(p)?;
        }
        fsync_created_dirs(&created)?;
        self.step(Step::DirsSynced)?;

        let _g = self.cas.lock();
        for (p, s) in paths.iter().zip(&summaries) {
            self.cas.link_pack(p, &ObjectId(s.object_hash))?;
        }
        self.step(Step::Linked)?;
        self.catalog.set_cold(chunk, &todo, ColdState::Frozen)?;
        self.step(Step::MarkedFrozen)?;
        let mut manifest = self.cas.manifest_at(MAIN)?;
        for (k, s) in todo.iter().zip(&summaries) {
            manifest.packs.insert(
                ((*k).to_owned(), chunk),
                PackEntry {
                    id: ObjectId(s.object_hash),
                    size: s.size,
                },
            );
        }
        let commit = self.cas.commit_manifest(
            MAIN,
            &manifest,
            time,
            &format!("freeze chunk {chunk:08}: {}", todo.join(", ")),
        )?;
        self.step(Step::Committed)?;
        tracing::info!(chunk, commit = %commit, "frozen");
        Ok(ProcessReport {
            chunk,
            skipped,
            built: todo
                .iter()
                .map(|k| (*k).to_owned())
                .zip(summaries)
                .collect(),
            source: Some(source_kind),
            commit: Some(commit),
        })
    }

    fn write_packs(
        &self,
        chunk: u32,
        todo: &[&str],
        paths: &[PathBuf],
        heights: RangeInclusive<u32>,
        source: &Source<'_>,
    ) -> Result<Vec<PackSummary>> {
        let first = *heights.start();
        let last = *heights.end();
        enum Building {
            Payload(Box<PackWriter<crate::writer::PackFile>>),
            Keys(Arc<dyn KeyExtractor>, KeyIndexBuilder, Codec),
        }
        let mut builders = Vec::with_capacity(todo.len());
        for (&k, path) in todo.iter().zip(paths) {
            builders.push(match self.spec(k)? {
                KindSpec::Payload { codec } => Building::Payload(Box::new(PackWriter::create_new(
                    path,
                    PackOptions {
                        codec: *codec,
                        record_kind: RECORD_KIND_PAYLOAD,
                        first_height: first,
                    },
                )?)),
                KindSpec::KeyIndex { extractor, codec } => {
                    Building::Keys(extractor.clone(), KeyIndexBuilder::default(), *codec)
                }
            });
        }
        let mut expect = u64::from(first);
        let mid = first + (last - first) / 2;
        let source_name = source.name();
        source.visit(heights.clone(), &mut |h, payload| {
            if u64::from(h) != expect {
                return Err(Error::SourceMismatch {
                    source_name: source_name.into(),
                    chunk,
                    reason: format!("yielded height {h} where {expect} was due"),
                });
            }
            for b in builders.iter_mut() {
                match b {
                    Building::Payload(w) => w.push(payload)?,
                    Building::Keys(x, kb, _) => {
                        kb.add(x.as_ref(), h, payload).map_err(|e| match e {
                            Error::SourceMismatch {
                                source_name,
                                reason,
                                ..
                            } => Error::SourceMismatch {
                                source_name,
                                chunk,
                                reason,
                            },
                            e => e,
                        })?
                    }
                }
            }
            if h == mid {
                self.step(Step::MidWrite)?;
            }
            expect += 1;
            Ok(())
        })?;
        if expect != u64::from(last) + 1 {
            return Err(Error::SourceMismatch {
                source_name: source_name.into(),
                chunk,
                reason: format!("ended before height {expect} (the chunk ends at {last})"),
            });
        }
        let mut out = Vec::with_capacity(builders.len());
        for (b, path) in builders.into_iter().zip(paths) {
            out.push(match b {
                Building::Payload(w) => w.finish()?,
                Building::Keys(_, kb, codec) => {
                    let mut w = PackWriter::create_new(
                        path,
                        PackOptions {
                            codec,
                            record_kind: RECORD_KIND_KEY_INDEX,
                            first_height: first,
                        },
                    )?;
                    for r in kb.into_records() {
                        w.push(&r)?;
                    }
                    w.finish()?
                }
            });
        }
        Ok(out)
    }

    /// Brings the catalog, the files and the refs back into agreement after a crash:
    /// `freezing` → remove the file and, when main names a pack for it (a rebuild crashed),
    /// put that pack back and mark it `frozen`, else delete the key; `pruning` → finish the delete; `frozen` →
    /// the file must exist (else [`Error::FrozenPackLost`]), and is linked into the store
    /// and committed to main if main does not name it. `time` goes into that commit.
    pub fn reconcile(&self, time: u64) -> Result<ReconcileReport> {
        let _g = self.cas.lock();
        let mut report = ReconcileReport::default();
        let mut manifest = self.cas.manifest_at(MAIN)?;
        let kinds: Vec<String> = self.config.kinds.keys().cloned().collect();
        for kind in &kinds {
            for (chunk, state) in self.catalog.cold_chunks(kind)? {
                let path = self.layout.pack_path(kind, chunk)?;
                let restore = manifest
                    .get(kind, chunk)
                    .filter(|e| self.cas.has_object(&e.id));
                match state {
                    ColdState::Freezing if restore.is_some() => {
                        // A rebuild of a committed pack crashed: put the committed pack
                        // back (a hard link to its object, the same bytes main names).
                        if remove_if_exists(&path)? {
                            fsync_parent(&path)?;
                        }
                        let id = restore.map_or(ObjectId([0; 32]), |e| e.id);
                        let created = match path.parent() {
                            Some(dir) => create_dirs(dir)?,
                            None => Vec::new(),
                        };
                        let object = self.cas.object_path(&id);
                        std::fs::hard_link(&object, &path).map_err(crate::error::io(&path))?;
                        fsync_parent(&path)?;
                        fsync_created_dirs(&created)?;
                        self.catalog.set_cold(chunk, &[kind], ColdState::Frozen)?;
                        report.restored.push((kind.clone(), chunk));
                    }
                    ColdState::Freezing | ColdState::Pruning => {
                        if remove_if_exists(&path)? {
                            fsync_parent(&path)?;
                        }
                        self.catalog.delete_cold(chunk, kind)?;
                        let entry = (kind.clone(), chunk);
                        if state == ColdState::Freezing {
                            report.abandoned_freezes.push(entry);
                        } else {
                            report.finished_prunes.push(entry);
                        }
                    }
                    ColdState::Frozen => {
                        let named = manifest.get(kind, chunk);
                        if let Some(e) = named
                            && same_inode(&path, &self.cas.object_path(&e.id))?
                        {
                            continue;
                        }
                        let lost = |reason: String| Error::FrozenPackLost {
                            chunk,
                            kind: kind.clone(),
                            path: path.clone(),
                            reason,
                        };
                        if !path.exists() {
                            return Err(lost("the file is missing".into()));
                        }
                        let pack = PackReader::open(&path).map_err(|e| lost(e.to_string()))?;
                        let id = ObjectId(pack.verify_full().map_err(|e| lost(e.to_string()))?);
                        self.cas.link_pack(&path, &id)?;
                        manifest.packs.insert(
                            (kind.clone(), chunk),
                            PackEntry {
                                id,
                                size: pack.size(),
                            },
                        );
                        report.adopted.push((kind.clone(), chunk));
                    }
                }
            }
        }
        if !report.adopted.is_empty() {
            let msg = format!(
                "adopt {} frozen pack(s) after recovery: {}",
                report.adopted.len(),
                report
                    .adopted
                    .iter()
                    .map(|(k, c)| format!("{k}/{c:08}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            report.commit = Some(self.cas.commit_manifest(MAIN, &manifest, time, &msg)?);
        }
        if report != ReconcileReport::default() {
            tracing::info!(?report, "reconciled");
        }
        Ok(report)
    }

    /// Garbage collection: deletes every object no ref reaches; an unreachable pack that
    /// is a frozen canonical file (same inode) is first pruned through the catalog
    /// (`pruning` → unlink → fsync directory → delete key).
    pub fn gc(&self) -> Result<crate::cas::GcReport> {
        let _g = self.cas.lock();
        // inode → (kind, chunk, canonical path) of every frozen canonical pack.
        use std::os::unix::fs::MetadataExt;
        let mut frozen: BTreeMap<(u64, u64), (String, u32, PathBuf)> = BTreeMap::new();
        for kind in self.config.kinds.keys() {
            for (chunk, state) in self.catalog.cold_chunks(kind)? {
                if state != ColdState::Frozen {
                    continue;
                }
                let path = self.layout.pack_path(kind, chunk)?;
                if let Ok(m) = std::fs::metadata(&path) {
                    frozen.insert((m.dev(), m.ino()), (kind.clone(), chunk, path));
                }
            }
        }
        let catalog = self.catalog;
        let mut prune = |object: &Path| -> Result<Option<(String, u32)>> {
            let Ok(m) = std::fs::metadata(object) else {
                return Ok(None);
            };
            let Some((kind, chunk, path)) = frozen.remove(&(m.dev(), m.ino())) else {
                return Ok(None);
            };
            catalog.set_cold(chunk, &[&kind], ColdState::Pruning)?;
            if remove_if_exists(&path)? {
                fsync_parent(&path)?;
            }
            catalog.delete_cold(chunk, &kind)?;
            tracing::info!(kind = %kind, chunk, "pruned unreachable pack");
            Ok(Some((kind, chunk)))
        };
        self.cas.gc_locked(&mut prune)
    }

    /// Every way the catalog, the canonical files and main disagree (empty when they
    /// agree): a key not `frozen`; a `frozen` key without its file, or whose file is not
    /// the object main names for it; main naming a (kind, chunk) that is not frozen; a
    /// missing object.
    pub fn disagreements(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let manifest = self.cas.manifest_at(MAIN)?;
        if let Err(e) = self.cas.reachable() {
            out.push(format!("refs: {e}"));
        }
        for kind in self.config.kinds.keys() {
            let keys = self.catalog.cold_chunks(kind)?;
            for &(chunk, state) in &keys {
                let path = self.layout.pack_path(kind, chunk)?;
                if state != ColdState::Frozen {
                    out.push(format!("{kind}/{chunk:08}: key is {state:?}"));
                    continue;
                }
                if !path.exists() {
                    out.push(format!(
                        "{kind}/{chunk:08}: frozen but {} is missing",
                        path.display()
                    ));
                    continue;
                }
                match manifest.get(kind, chunk) {
                    None => out.push(format!("{kind}/{chunk:08}: frozen but main does not name it")),
                    Some(e) if !same_inode(&path, &self.cas.object_path(&e.id))? => out.push(
                        format!("{kind}/{chunk:08}: main names {} but the canonical file is another inode", e.id),
                    ),
                    Some(_) => {}
                }
            }
            for (k, chunk) in manifest.packs.keys() {
                if k == kind
                    && !keys
                        .iter()
                        .any(|&(c, s)| c == *chunk && s == ColdState::Frozen)
                {
                    out.push(format!(
                        "{kind}/{chunk:08}: main names it but the key is not frozen"
                    ));
                }
            }
        }
        Ok(out)
    }
}
