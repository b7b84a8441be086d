//! fsync barriers and the small file operations the protocols are built from.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, io};

/// fsyncs a file or a directory.
pub fn fsync_path(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))
}

/// fsyncs the directory holding `path`.
pub fn fsync_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => fsync_path(p),
        _ => fsync_path(Path::new(".")),
    }
}

/// Creates `dir` and any missing ancestors; returns the directories it created, outermost
/// first. The caller fsyncs the parent of each (the "new grandparent" barrier).
pub fn create_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    missing.reverse();
    for d in &missing {
        match fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(d, e)),
        }
    }
    Ok(missing)
}

/// Makes the creation of each directory in `created` durable: fsyncs each one and its
/// parent (for the outermost, the grandparent of what lies inside it).
pub fn fsync_created_dirs(created: &[PathBuf]) -> Result<()> {
    for d in created.iter().rev() {
        fsync_path(d)?;
        fsync_parent(d)?;
    }
    Ok(())
}

/// Removes a file if it exists; true when it did.
pub fn remove_if_exists(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Replaces `path` atomically with `bytes`: write `path.tmp`, fsync it, rename over
/// `path`, fsync the directory. A crash leaves the old or the new content, never a mix.
pub fn atomic_replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io(path))?;
    fsync_parent(path)
}

/// Reads a whole file of at most `max` bytes; `None` when it does not exist.
pub fn read_bounded(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut out = Vec::new();
    f.take(max + 1).read_to_end(&mut out).map_err(io(path))?;
    if out.len() as u64 > max {
        return Err(Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("longer than the {max} bytes a file of its kind may have"),
            ),
        ));
    }
    Ok(Some(out))
}
