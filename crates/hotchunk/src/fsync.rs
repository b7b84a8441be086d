//! fsync barriers: what must reach the disk before the catalog may say a file or directory
//! exists (or is gone).
//!
//! A new file is durable only when its bytes are synced *and* its directory entry is: the
//! entry lives in the parent directory, so the parent is synced too. When the parent was
//! itself just created, its own entry lives in the grandparent, which is synced as well.
//! Removal is the mirror image: unlinking changes the parent, so the parent is synced before
//! the catalog forgets the key.

use std::fs::File;
use std::path::Path;

use crate::error::{HotError, Result};

/// Syncs a file's data and metadata (`fsync`).
pub fn fsync_file(path: &Path) -> Result<()> {
    let file = File::open(path).map_err(|e| HotError::io("open for fsync", path, None, e))?;
    file.sync_all()
        .map_err(|e| HotError::io("fsync file", path, None, e))?;
    #[cfg(any(test, feature = "crash-hooks"))]
    record::synced(path);
    Ok(())
}

/// Syncs a directory, making the entries created or removed in it durable.
pub fn fsync_dir(path: &Path) -> Result<()> {
    // On Linux a directory opened read-only can be fsynced, which is how its entries are
    // made durable.
    let dir =
        File::open(path).map_err(|e| HotError::io("open directory for fsync", path, None, e))?;
    dir.sync_all()
        .map_err(|e| HotError::io("fsync directory", path, None, e))?;
    #[cfg(any(test, feature = "crash-hooks"))]
    record::synced(path);
    Ok(())
}

/// A record of the paths this thread fsyncs (feature `crash-hooks`): power loss cannot be
/// simulated in a test, so the barriers are checked by what they sync, in order. Recording
/// is per thread and off until [`record::start`].
#[cfg(any(test, feature = "crash-hooks"))]
pub mod record {
    use std::cell::RefCell;
    use std::path::{Path, PathBuf};

    thread_local! {
        static SYNCED: RefCell<Option<Vec<PathBuf>>> = const { RefCell::new(None) };
    }

    /// Starts (or restarts, empty) recording this thread's fsyncs.
    pub fn start() {
        SYNCED.with(|s| *s.borrow_mut() = Some(Vec::new()));
    }

    /// The paths synced since [`start`], in order; recording stops.
    pub fn take() -> Vec<PathBuf> {
        SYNCED.with(|s| s.borrow_mut().take().unwrap_or_default())
    }

    pub(crate) fn synced(path: &Path) {
        SYNCED.with(|s| {
            if let Some(v) = s.borrow_mut().as_mut() {
                v.push(path.to_path_buf());
            }
        });
    }
}

/// Syncs `dir`'s parent (and nothing when `dir` has none).
pub fn fsync_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => fsync_dir(p),
        _ => Ok(()),
    }
}

/// The barrier after writing a new file at `path`: the file, its directory entry (the
/// parent), and, when `parent_created` says the parent directory was created for this file,
/// the parent's own entry (the grandparent).
pub fn barrier_new_file(path: &Path, parent_created: bool) -> Result<()> {
    fsync_file(path)?;
    fsync_parent(path)?;
    if parent_created && let Some(parent) = path.parent() {
        fsync_parent(parent)?;
    }
    Ok(())
}

/// Creates `dir` and any missing ancestors, durably: after each directory is created its
/// parent is synced (so the new entry survives power loss), and the deepest one is synced
/// itself. Returns whether `dir` was created (false when it already existed).
pub fn create_dir_all_durable(dir: &Path) -> Result<bool> {
    if dir.is_dir() {
        return Ok(false);
    }
    // Find the missing ancestors, shallowest first.
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || d.is_dir() {
            break;
        }
        missing.push(d);
        cur = d.parent();
    }
    for d in missing.iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            // A concurrent creator made it; its entry still needs the sync below.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(HotError::io("create directory", *d, None, e)),
        }
        fsync_parent(d)?;
    }
    fsync_dir(dir)?;
    Ok(true)
}

/// Removes `dir` and everything in it, then syncs its parent so the removal is durable.
/// A missing `dir` is fine (the removal is idempotent); the parent is synced either way, as
/// a crash may have struck after the unlink but before an earlier sync.
pub fn remove_dir_all_durable(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(HotError::io("remove directory", dir, None, e)),
    }
    match dir.parent() {
        Some(p) if p.is_dir() => fsync_dir(p),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barriers_run_on_real_files_and_directories() {
        let t = tempfile::tempdir().unwrap();
        let deep = t.path().join("a/b/c");
        assert!(create_dir_all_durable(&deep).unwrap());
        assert!(!create_dir_all_durable(&deep).unwrap());
        let f = deep.join("x.pack");
        std::fs::write(&f, b"bytes").unwrap();
        barrier_new_file(&f, true).unwrap();
        fsync_dir(t.path()).unwrap();
        remove_dir_all_durable(&t.path().join("a")).unwrap();
        assert!(!t.path().join("a").exists());
        // Idempotent.
        remove_dir_all_durable(&t.path().join("a")).unwrap();
    }

    #[test]
    fn a_new_file_syncs_itself_its_directory_and_a_new_directory_s_parent() {
        let t = tempfile::tempdir().unwrap();
        let bucket = t.path().join("ledgers/00000");
        record::start();
        assert!(create_dir_all_durable(&bucket).unwrap());
        // Each new directory's entry (in its parent), then the new directory itself.
        assert_eq!(
            record::take(),
            vec![
                t.path().to_path_buf(),
                t.path().join("ledgers"),
                bucket.clone()
            ]
        );
        let f = bucket.join("00000001.pack");
        std::fs::write(&f, b"bytes").unwrap();
        record::start();
        barrier_new_file(&f, true).unwrap();
        assert_eq!(
            record::take(),
            vec![f.clone(), bucket.clone(), t.path().join("ledgers")]
        );
        record::start();
        barrier_new_file(&f, false).unwrap();
        assert_eq!(record::take(), vec![f, bucket.clone()]);
        record::start();
        remove_dir_all_durable(&bucket).unwrap();
        assert_eq!(record::take(), vec![t.path().join("ledgers")]);
    }

    #[test]
    fn errors_name_the_path() {
        let t = tempfile::tempdir().unwrap();
        let missing = t.path().join("nope");
        let e = fsync_file(&missing).unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
        let e = fsync_dir(&missing).unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
    }
}
