//! The bulk backend: where a chunk comes from when no local copy has it (a data lake of
//! per-height payloads), and its local-directory implementation over the fixture format.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fixtures::FixtureReader;
use storage_traits::Versioned;

use crate::error::{Error, Result};

/// A remote (or remote-like) source of payloads by height.
pub trait BulkBackend: Send + Sync {
    /// A short name for logs and errors.
    fn name(&self) -> String;
    /// The highest height the backend holds now (`None` when it holds nothing). It may
    /// grow between calls.
    fn tip(&self) -> Result<Option<u32>>;
    /// Calls `f` with each height in `heights` and its payload, ascending. Every height
    /// must be covered.
    fn visit(
        &self,
        heights: RangeInclusive<u32>,
        f: &mut dyn FnMut(u32, &[u8]) -> Result<()>,
    ) -> Result<()>;
}

/// Waits until `backend` covers `height`, polling every `poll`, for at most `timeout`.
/// Returns the tip that covers it, or [`Error::BackendCoverageTimeout`].
pub fn wait_for_coverage(
    backend: &dyn BulkBackend,
    chunk: u32,
    height: u32,
    timeout: Duration,
    poll: Duration,
) -> Result<u32> {
    let start = Instant::now();
    let mut waited = false;
    loop {
        let tip = backend.tip()?;
        if let Some(t) = tip.filter(|&t| t >= height) {
            if waited {
                tracing::info!(
                    chunk,
                    height,
                    tip = t,
                    waited_ms = start.elapsed().as_millis() as u64,
                    "backend caught up"
                );
            }
            return Ok(t);
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Err(Error::BackendCoverageTimeout {
                chunk,
                needed: height,
                tip,
                waited_ms: elapsed.as_millis() as u64,
            });
        }
        if !waited {
            tracing::info!(
                chunk,
                height,
                ?tip,
                "waiting for the bulk backend to cover the chunk"
            );
            waited = true;
        }
        std::thread::sleep(poll.min(timeout - elapsed));
    }
}

/// A bulk backend over a local fixture directory (`fixtures` format). The payload of a
/// height is `IndexedBlock::to_bytes()` of the fixture's block. The directory may be
/// replaced by a longer fixture while the backend is in use (the fixture writer renames a
/// complete directory into place): `tip` reopens it when asked for more than it holds.
pub struct LocalDirBackend {
    dir: PathBuf,
    reader: Mutex<Option<FixtureReader>>,
}

impl std::fmt::Debug for LocalDirBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalDirBackend")
            .field("dir", &self.dir)
            .finish()
    }
}

impl LocalDirBackend {
    /// A backend over the fixture at `dir` (which need not exist yet).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LocalDirBackend {
            dir: dir.into(),
            reader: Mutex::new(None),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn reopen(&self) -> Result<()> {
        let reader = open_fixture(&self.dir)?;
        *self.reader.lock().unwrap_or_else(|p| p.into_inner()) = reader;
        Ok(())
    }
}

/// The fixture at `dir`, or `None` when there is none. The fixture writer replaces a
/// directory by deleting the old one and renaming the new one into place, so an open can
/// find it half-deleted: a failed open is retried a few times before it counts.
fn open_fixture(dir: &Path) -> Result<Option<FixtureReader>> {
    const ATTEMPTS: u32 = 10;
    let mut attempt = 1;
    loop {
        if !dir.join(fixtures::format::MANIFEST_FILE).exists() {
            return Ok(None);
        }
        match FixtureReader::open(dir) {
            Ok(reader) => return Ok(Some(reader)),
            Err(e) if attempt < ATTEMPTS => {
                tracing::debug!(dir = %dir.display(), attempt, error = %e, "fixture open failed, retrying (being replaced?)");
                std::thread::sleep(Duration::from_millis(50));
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

impl BulkBackend for LocalDirBackend {
    fn name(&self) -> String {
        format!("local:{}", self.dir.display())
    }

    fn tip(&self) -> Result<Option<u32>> {
        self.reopen()?;
        let g = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        Ok(g.as_ref().and_then(|r| r.tip()))
    }

    fn visit(
        &self,
        heights: RangeInclusive<u32>,
        f: &mut dyn FnMut(u32, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let needs_reopen = {
            let g = self.reader.lock().unwrap_or_else(|p| p.into_inner());
            g.as_ref()
                .and_then(|r| r.tip())
                .is_none_or(|t| t < *heights.end())
        };
        if needs_reopen {
            self.reopen()?;
        }
        let g = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        let Some(reader) = g.as_ref() else {
            return Err(Error::NoSource {
                chunk: 0,
                reason: format!("no fixture at {}", self.dir.display()),
            });
        };
        let mut buf = Vec::new();
        for block in reader.range(heights.clone())? {
            let block = block?;
            let h = block.header.height().map_or(0, |h| h.0);
            buf.clear();
            block.encode_to(&mut buf);
            f(h, &buf)?;
        }
        Ok(())
    }
}
