//! Crash tests: a stop between every protocol step (in process, and by SIGKILL of a child
//! process at that step), and SIGKILL at random moments of a run of freezes. After each
//! crash the state is reopened, reconciled, checked for agreement (catalog, files, refs),
//! and a rerun must finish with packs byte-identical to a clean build.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use coldpack::cas::MAIN;
use coldpack::derived::TxidPrefixExtractor;
use coldpack::traits::ColdState;
use coldpack::{Cas, Codec, Error, FreezeConfig, Freezer, LocalDirBackend, Step};
use common::{FileCatalog, TestLayout, write_fixture};
use fixtures::SynthConfig;
use storage_traits::conformance::files::tree_bytes;

const SIZE: u32 = 60;
const CHUNKS: u32 = 4;
const KINDS: [&str; 2] = ["blocks", "txids"];

fn config() -> FreezeConfig {
    let codec = Codec::Zstd { level: 3 };
    FreezeConfig::new("blocks", codec).with_key_index("txids", Arc::new(TxidPrefixExtractor), codec)
}

struct Parts {
    catalog: FileCatalog,
    layout: TestLayout,
    cas: Cas,
    backend: LocalDirBackend,
}

/// Opens everything under `root` afresh (as a restarted process would).
fn open(root: &Path, lake: &Path) -> Parts {
    Parts {
        catalog: FileCatalog::open(&root.join("catalog.txt")),
        layout: TestLayout {
            root: root.join("cold"),
            size: SIZE,
        },
        cas: Cas::open(root.join("cas")).unwrap(),
        backend: LocalDirBackend::new(lake),
    }
}

impl Parts {
    fn freezer(&self) -> Freezer<'_> {
        Freezer::new(&self.catalog, &self.layout, &self.cas, config()).with_backend(&self.backend)
    }
}

fn lake() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("lake");
    write_fixture(&p, &SynthConfig::new(SIZE * CHUNKS, 0xdead), SIZE * CHUNKS);
    (d, p)
}

fn freeze_all(p: &Parts, time: u64) {
    let f = p.freezer();
    for c in 0..CHUNKS {
        f.process_chunk(c, &KINDS, time + u64::from(c)).unwrap();
    }
}

/// The packs and main's root tree of a clean build.
fn clean_build(lake: &Path) -> (BTreeMap<PathBuf, Vec<u8>>, coldpack::ObjectId) {
    let d = tempfile::tempdir().unwrap();
    let p = open(d.path(), lake);
    freeze_all(&p, 100);
    let tree = p
        .cas
        .read_commit(&p.cas.read_ref(MAIN).unwrap().unwrap())
        .unwrap()
        .tree;
    (tree_bytes(&d.path().join("cold")), tree)
}

/// Reopen, reconcile, check agreement, rerun, compare with the clean build.
fn recover_and_compare(
    root: &Path,
    lake: &Path,
    clean: &(BTreeMap<PathBuf, Vec<u8>>, coldpack::ObjectId),
    what: &str,
) {
    let p = open(root, lake);
    let f = p.freezer();
    f.reconcile(500).unwrap();
    let d = f.disagreements().unwrap();
    assert!(d.is_empty(), "{what}: after reconcile: {d:?}");
    for (k, v) in p.catalog.keys() {
        assert_eq!(v, "frozen", "{what}: key {k} after reconcile");
    }
    // Every frozen key's file is whole and named by main.
    p.cas.verify(MAIN).unwrap_or(0);
    freeze_all(&p, 600);
    let d = f.disagreements().unwrap();
    assert!(d.is_empty(), "{what}: after rerun: {d:?}");
    let got = tree_bytes(&root.join("cold"));
    assert_eq!(got.len(), clean.0.len(), "{what}: pack files");
    for (path, bytes) in &clean.0 {
        assert!(
            got.get(path) == Some(bytes),
            "{what}: {} differs from the clean build",
            path.display()
        );
    }
    let tree = p
        .cas
        .read_commit(&p.cas.read_ref(MAIN).unwrap().unwrap())
        .unwrap()
        .tree;
    assert_eq!(tree, clean.1, "{what}: main's manifest");
    assert_eq!(p.cas.verify(MAIN).unwrap(), (CHUNKS as usize) * KINDS.len());
    for c in 0..CHUNKS {
        for k in KINDS {
            assert_eq!(
                coldpack::traits::ColdCatalog::cold_state(&p.catalog, c, k).unwrap(),
                Some(ColdState::Frozen)
            );
        }
    }
    // Garbage left by the crash (an orphan object) is collectable, and GC keeps the rest.
    f.gc().unwrap();
    assert_eq!(p.cas.verify(MAIN).unwrap(), (CHUNKS as usize) * KINDS.len());
    assert!(f.disagreements().unwrap().is_empty());
}

/// A stop (an error returned by the hook) between every pair of protocol steps, in the
/// freeze of the second chunk.
#[test]
fn stop_between_every_step_then_recover() {
    let (_l, lake) = lake();
    let clean = clean_build(&lake);
    for step in Step::ALL {
        let d = tempfile::tempdir().unwrap();
        {
            let p = open(d.path(), &lake);
            let hook = move |s: Step| {
                if s == step {
                    Err(Error::Stopped(s))
                } else {
                    Ok(())
                }
            };
            let f = p.freezer().with_hook(&hook);
            f.process_chunk(0, &KINDS, 1).unwrap_err();
            let f = p.freezer();
            f.process_chunk(0, &KINDS, 1).unwrap();
            let f = p.freezer().with_hook(&hook);
            let err = f.process_chunk(1, &KINDS, 2).unwrap_err();
            assert!(matches!(err, Error::Stopped(s) if s == step), "{err}");
        }
        recover_and_compare(d.path(), &lake, &clean, &format!("stop at {step:?}"));
    }
}

/// The child process: freezes every chunk; with `COLDPACK_KILL_STEP`, SIGKILLs itself at
/// that step of chunk `COLDPACK_KILL_CHUNK`. Run by the tests below, never on its own.
#[test]
#[ignore]
fn crash_child() {
    let Ok(root) = std::env::var("COLDPACK_CRASH_ROOT") else {
        return;
    };
    let lake = PathBuf::from(std::env::var("COLDPACK_CRASH_LAKE").unwrap());
    let step = std::env::var("COLDPACK_KILL_STEP").ok();
    let kill_chunk: u32 =
        std::env::var("COLDPACK_KILL_CHUNK").map_or(u32::MAX, |s| s.parse().unwrap());
    let p = open(Path::new(&root), &lake);
    let current = std::sync::atomic::AtomicU32::new(0);
    let hook = |s: Step| {
        if step.as_deref() == Some(format!("{s:?}").as_str())
            && current.load(std::sync::atomic::Ordering::SeqCst) == kill_chunk
        {
            // SAFETY: plain libc calls; the process ends here.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
        Ok(())
    };
    let f = p.freezer().with_hook(&hook);
    for c in 0..CHUNKS {
        current.store(c, std::sync::atomic::Ordering::SeqCst);
        f.process_chunk(c, &KINDS, 10 + u64::from(c)).unwrap();
    }
}

fn child(root: &Path, lake: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "crash_child",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("COLDPACK_CRASH_ROOT", root)
    .env("COLDPACK_CRASH_LAKE", lake)
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    cmd
}

#[cfg(unix)]
fn killed(status: std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(libc::SIGKILL)
}

/// A child process SIGKILLs itself at every protocol step of the third chunk's freeze.
#[test]
fn sigkill_at_every_step_then_recover() {
    let (_l, lake) = lake();
    let clean = clean_build(&lake);
    for step in Step::ALL {
        let d = tempfile::tempdir().unwrap();
        let status = child(d.path(), &lake)
            .env("COLDPACK_KILL_STEP", format!("{step:?}"))
            .env("COLDPACK_KILL_CHUNK", "2")
            .status()
            .unwrap();
        assert!(killed(status), "{step:?}: child was not killed: {status:?}");
        recover_and_compare(d.path(), &lake, &clean, &format!("SIGKILL at {step:?}"));
    }
}

/// SIGKILL from outside at pseudo-random moments; up to three kills land in one root (each
/// run resumes the previous one's state) before it is recovered and compared. Kill times
/// are spread over a measured uninterrupted run; a child that finished before its kill
/// does not count, and the loop goes on until 12 kills landed mid-run (the machine may be
/// loaded, so timing alone cannot promise it).
#[test]
fn sigkill_at_random_moments_then_recover() {
    let (_l, lake) = lake();
    let clean = clean_build(&lake);
    let d = tempfile::tempdir().unwrap();
    let t0 = std::time::Instant::now();
    assert!(child(d.path(), &lake).status().unwrap().success());
    let full = t0.elapsed();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let (mut kills, mut repaired, mut attempts, mut roots) = (0, 0, 0, 0);
    let mut root = tempfile::tempdir().unwrap();
    let mut in_root = 0;
    while kills < 12 {
        attempts += 1;
        assert!(
            attempts <= 200,
            "only {kills} kills landed in {attempts} attempts"
        );
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let frac = 0.05 + (seed % 900) as f64 / 1000.0;
        let mut c = child(root.path(), &lake).spawn().unwrap();
        std::thread::sleep(full.mul_f64(frac));
        let _ = c.kill();
        let status = c.wait().unwrap();
        let p = open(root.path(), &lake);
        let rep = p.freezer().reconcile(700 + attempts).unwrap();
        repaired += rep.abandoned_freezes.len() + rep.adopted.len() + rep.restored.len();
        assert!(
            p.freezer().disagreements().unwrap().is_empty(),
            "attempt {attempts}"
        );
        drop(p);
        if killed(status) {
            kills += 1;
            in_root += 1;
        }
        if in_root == 3 || status.success() {
            recover_and_compare(
                root.path(),
                &lake,
                &clean,
                &format!("random SIGKILL root {roots}"),
            );
            roots += 1;
            root = tempfile::tempdir().unwrap();
            in_root = 0;
        }
    }
    if in_root > 0 {
        recover_and_compare(root.path(), &lake, &clean, "random SIGKILL last root");
    }
    // The kills landed inside freezes, not only between them.
    assert!(repaired > 0, "no kill left a freeze to repair");
}
