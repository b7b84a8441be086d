//! Opening a store, the table registry, and the error mapping.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;

use redb::{MultimapTableDefinition, TableDefinition};
use storage_traits::kv::{KvStore, TableKind, TableSpec};
use storage_traits::{Error, Result};

use crate::read::RedbSnapshot;
use crate::write::RedbWriter;

/// The backend name carried by every [`Error::Backend`] this crate returns.
pub const BACKEND: &str = "redb";

/// The name of the database file inside the store's directory.
pub const DB_FILE_NAME: &str = "strata.redb";

/// Key and value type of every table: raw bytes, ordered bytewise.
pub(crate) type Bytes = &'static [u8];

pub(crate) fn plain_def(name: &str) -> TableDefinition<'_, Bytes, Bytes> {
    TableDefinition::new(name)
}

pub(crate) fn dup_def(name: &str) -> MultimapTableDefinition<'_, Bytes, Bytes> {
    MultimapTableDefinition::new(name)
}

/// A redb error as the shared [`Error::Backend`].
pub(crate) fn backend_err(
    operation: &'static str,
    table: Option<&str>,
    err: impl Into<redb::Error>,
) -> Error {
    let err: redb::Error = err.into();
    Error::backend(BACKEND, operation, table, err)
}

/// FNV-1a for the table-name index: names are short, trusted (they come from the code, not
/// from data), and looked up on every operation, where SipHash's DoS resistance buys
/// nothing and costs a measurable share of a cached point read.
#[derive(Default)]
pub(crate) struct Fnv1a(u64);

impl Hasher for Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Tuning for [`RedbStore::open_with`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedbOptions {
    /// redb's page cache, in bytes. `None` keeps redb's default (1 GiB).
    pub cache_size: Option<usize>,
    /// redb's quick-repair mode: every write transaction also persists the allocator state
    /// and commits in two phases, so reopening after a crash is nearly instant instead of a
    /// full walk of the file (which takes minutes on a large database). Commits get slower.
    pub quick_repair: bool,
}

impl RedbOptions {
    /// Sets the page cache size in bytes.
    pub fn cache_size(mut self, bytes: usize) -> Self {
        self.cache_size = Some(bytes);
        self
    }

    /// Enables or disables quick-repair.
    pub fn quick_repair(mut self, enabled: bool) -> Self {
        self.quick_repair = enabled;
        self
    }
}

/// A redb database with a fixed set of named tables. See the crate docs.
pub struct RedbStore {
    pub(crate) db: redb::Database,
    pub(crate) specs: Vec<TableSpec>,
    index: HashMap<&'static str, usize, BuildHasherDefault<Fnv1a>>,
    pub(crate) options: RedbOptions,
    path: PathBuf,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .field("tables", &self.specs)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The prefix of a database file being created (`<DB_FILE_NAME>.creating-<pid>-<n>`).
const CREATING_PREFIX: &str = "strata.redb.creating-";

/// Creates the database file at `path` in one step: redb writes a new file's header after
/// sizing it, so a process killed while creating `path` in place left a file that no open
/// accepts ("magic number mismatch") and that nothing may delete, since it cannot be told
/// from a damaged store. Instead the file is created and committed under a temporary name
/// and hard-linked to `path`, which fails if another process got there first (then its
/// file is used); the temporary name is removed and the directory synced.
fn create_new(dir: &Path, path: &Path) -> Result<()> {
    static CREATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CREATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = dir.join(format!("{CREATING_PREFIX}{}-{n}", std::process::id()));
    let created = redb::Database::create(&temp).map_err(|e| backend_err("create", None, e))?;
    // An empty commit, synced: the file is a complete database before it gets its name.
    let txn = created
        .begin_write()
        .map_err(|e| backend_err("create", None, e))?;
    txn.commit().map_err(|e| backend_err("create", None, e))?;
    drop(created);
    let linked = match std::fs::hard_link(&temp, path) {
        Ok(()) => Ok(()),
        // Another process created it first, or finished opening it and removed this
        // file as unfinished: either way `path` is there.
        Err(e) if path.exists() => {
            tracing::debug!(path = %path.display(), error = %e, "redb store created by another process");
            Ok(())
        }
        Err(e) => Err(Error::io(path, e)),
    };
    match std::fs::remove_file(&temp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&temp, e)),
    }
    linked?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Removes the files of creations that never finished (a process killed in
/// [`create_new`]); called with the store open. A creation still running in another
/// process then finds `strata.redb` there and opens it instead.
fn remove_unfinished_creations(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(CREATING_PREFIX)
        {
            let file = entry.path();
            tracing::info!(path = %file.display(), "removing an unfinished redb store creation");
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&file, e)),
            }
        }
    }
    Ok(())
}

impl RedbStore {
    /// Opens (or creates) the store in `dir` with default options. The database file is
    /// `<dir>/strata.redb`; `dir` is created if missing. Every table in `tables` is created
    /// if absent, in one synced write transaction.
    pub fn open(dir: &Path, tables: &[TableSpec]) -> Result<RedbStore> {
        Self::open_with(dir, tables, RedbOptions::default())
    }

    /// [`RedbStore::open`] with explicit [`RedbOptions`].
    pub fn open_with(dir: &Path, tables: &[TableSpec], options: RedbOptions) -> Result<RedbStore> {
        let started = Instant::now();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(DB_FILE_NAME);

        let mut index = HashMap::with_capacity_and_hasher(tables.len(), Default::default());
        for (i, spec) in tables.iter().enumerate() {
            if index.insert(spec.name, i).is_some() {
                return Err(Error::backend(
                    BACKEND,
                    "open",
                    Some(spec.name),
                    format!("table {} appears twice in the spec list", spec.name),
                ));
            }
        }

        if !path.exists() {
            create_new(dir, &path)?;
        }

        let mut builder = redb::Database::builder();
        if let Some(bytes) = options.cache_size {
            builder.set_cache_size(bytes);
        }
        let repair_path = path.clone();
        builder.set_repair_callback(move |session| {
            tracing::info!(
                path = %repair_path.display(),
                progress = session.progress(),
                "redb: repairing the database after an unclean shutdown"
            );
        });
        let db = builder.create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::Locked { path: path.clone() },
            other => backend_err("open", None, other),
        })?;

        let mut txn = db.begin_write().map_err(|e| backend_err("open", None, e))?;
        txn.set_quick_repair(options.quick_repair);
        for spec in tables {
            match spec.kind {
                TableKind::Plain => {
                    txn.open_table(plain_def(spec.name))
                        .map_err(|e| backend_err("open", Some(spec.name), e))?;
                }
                TableKind::DupSort { .. } => {
                    txn.open_multimap_table(dup_def(spec.name))
                        .map_err(|e| backend_err("open", Some(spec.name), e))?;
                }
            }
        }
        txn.commit().map_err(|e| backend_err("open", None, e))?;

        // Under the store's lock: files of creations that never finished.
        remove_unfinished_creations(dir)?;
        tracing::debug!(
            path = %path.display(),
            tables = tables.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "redb store opened"
        );
        Ok(RedbStore {
            db,
            specs: tables.to_vec(),
            index,
            options,
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The position of `table` in the spec list, or [`Error::UnknownTable`].
    #[inline]
    pub(crate) fn table_index(&self, table: &str) -> Result<usize> {
        // Callers almost always pass the very `&'static str` the store was opened with
        // (`T::NAME`, a `const`): find it by address first, which costs a few pointer
        // compares, and hash the name only when that misses.
        if let Some(i) = self.specs.iter().position(|s| std::ptr::eq(s.name, table)) {
            return Ok(i);
        }
        self.index
            .get(table)
            .copied()
            .ok_or_else(|| Error::UnknownTable {
                table: table.to_owned(),
            })
    }
}

impl KvStore for RedbStore {
    type Snapshot<'a> = RedbSnapshot<'a>;
    type Writer<'a> = RedbWriter<'a>;

    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn tables(&self) -> &[TableSpec] {
        &self.specs
    }

    fn begin_read(&self) -> Result<RedbSnapshot<'_>> {
        RedbSnapshot::new(self)
    }

    fn begin_write(&self) -> Result<RedbWriter<'_>> {
        RedbWriter::new(self)
    }

    /// One read transaction and one table handle, without the snapshot's lazily filled
    /// handle cache (allocated and dropped per snapshot).
    #[inline]
    fn get_latest(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        use redb::ReadableDatabase;
        let spec = &self.specs[self.table_index(table)?];
        let txn = self
            .db
            .begin_read()
            .map_err(|e| backend_err("begin_read", None, e))?;
        match spec.kind {
            TableKind::Plain => {
                let t = txn
                    .open_table(plain_def(spec.name))
                    .map_err(|e| backend_err("open_table", Some(spec.name), e))?;
                crate::read::plain_get(&t, spec.name, key)
            }
            TableKind::DupSort { .. } => {
                let t = txn
                    .open_multimap_table(dup_def(spec.name))
                    .map_err(|e| backend_err("open_table", Some(spec.name), e))?;
                crate::read::dup_first(&t, spec.name, key)
            }
        }
    }

    fn sync(&self) -> Result<()> {
        let started = Instant::now();
        // An immediate commit persists the whole current state, every earlier non-durable
        // commit included; redb fsyncs even when the transaction changed nothing.
        let mut txn = self
            .db
            .begin_write()
            .map_err(|e| backend_err("sync", None, e))?;
        txn.set_quick_repair(self.options.quick_repair);
        txn.set_durability(redb::Durability::Immediate)
            .map_err(|e| backend_err("sync", None, e))?;
        txn.commit().map_err(|e| backend_err("sync", None, e))?;
        tracing::debug!(
            elapsed_us = started.elapsed().as_micros() as u64,
            "redb store synced"
        );
        Ok(())
    }
}
