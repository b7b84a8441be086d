//! The crash-step hook: simulated power loss between the steps of a lifecycle operation.
//!
//! Every operation of the hot tier (open, ingest, discard) calls `step(name)` before each
//! of its durable steps. With the `crash-hooks` feature a test installs a [`CrashHook`]
//! that lets `k` steps run and fails the next with [`HotError::SimulatedCrash`]: the
//! operation stops exactly there, as if the power had gone (every earlier step was synced,
//! so nothing later reaches the disk). The test then drops every handle, reopens the root
//! and checks how the next open reconciles. Without the feature the hook compiles to
//! nothing.

#[cfg(any(test, feature = "crash-hooks"))]
use std::sync::Arc;

#[cfg(any(test, feature = "crash-hooks"))]
use crate::error::HotError;
use crate::error::Result;

/// A step counter that stops an operation at step `k` (0-based). Shared by a
/// [`crate::HotTier`] and every [`crate::HotStore`] it opens.
#[cfg(any(test, feature = "crash-hooks"))]
#[derive(Debug)]
pub struct CrashHook {
    stop_at: std::sync::atomic::AtomicU64,
    taken: std::sync::atomic::AtomicU64,
    names: std::sync::Mutex<Vec<&'static str>>,
}

#[cfg(any(test, feature = "crash-hooks"))]
impl CrashHook {
    /// A hook that lets `k` steps run and stops the next one.
    pub fn stop_at(k: u64) -> Arc<Self> {
        Arc::new(CrashHook {
            stop_at: std::sync::atomic::AtomicU64::new(k),
            taken: std::sync::atomic::AtomicU64::new(0),
            names: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// A hook that never stops, for counting the steps of an operation.
    pub fn counting() -> Arc<Self> {
        Self::stop_at(u64::MAX)
    }

    /// How many steps ran (the stopped one not included).
    pub fn steps_taken(&self) -> u64 {
        self.taken
            .load(std::sync::atomic::Ordering::SeqCst)
            .min(self.stop_at.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// The names of the steps that ran, in order.
    pub fn step_names(&self) -> Vec<&'static str> {
        self.names.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Re-arms the hook: counting restarts at 0 and stops before step `k`.
    pub fn rearm(&self, k: u64) {
        use std::sync::atomic::Ordering::SeqCst;
        self.names.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.taken.store(0, SeqCst);
        self.stop_at.store(k, SeqCst);
    }

    fn step(&self, name: &'static str) -> Result<()> {
        use std::sync::atomic::Ordering::SeqCst;
        let k = self.taken.fetch_add(1, SeqCst);
        if k >= self.stop_at.load(SeqCst) {
            tracing::debug!(step = k, name, "crash hook: simulated power loss");
            return Err(HotError::SimulatedCrash { step: k, name });
        }
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(name);
        Ok(())
    }
}

/// The hook as the code carries it: empty (and free) unless a test installed one.
#[derive(Clone, Debug, Default)]
pub(crate) struct Hook {
    #[cfg(any(test, feature = "crash-hooks"))]
    pub(crate) inner: Option<Arc<CrashHook>>,
}

impl Hook {
    /// Marks the start of durable step `name`; fails when the installed hook stops here.
    #[inline]
    pub(crate) fn step(&self, name: &'static str) -> Result<()> {
        #[cfg(any(test, feature = "crash-hooks"))]
        if let Some(h) = &self.inner {
            return h.step(name);
        }
        let _ = name;
        Ok(())
    }
}
