//! `process_chunk` and `backfill_source`: determinism across sources, idempotency, loss vs
//! staleness, the bounded backend wait, GC reachability, corruption and `verify`.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use coldpack::cas::{Commit, MAIN, Manifest};
use coldpack::derived::{KeyIndexReader, TxidPrefixExtractor};
use coldpack::traits::{ChunkLayout, ColdCatalog, ColdState, HotState};
use coldpack::{
    BulkBackend, Cas, Codec, Error, FreezeConfig, Freezer, LocalDirBackend, ObjectId, PackReader,
    SourceKind, Step,
};
use common::{Counted, FileCatalog, FixtureHot, TestLayout, write_fixture};
use fixtures::SynthConfig;
use storage_traits::Versioned;
use storage_traits::model::IndexedBlock;

const SIZE: u32 = 40;
const BLOCKS: u32 = 200;

struct Env {
    dir: tempfile::TempDir,
    catalog: FileCatalog,
    layout: TestLayout,
    cas: Cas,
    hot: FixtureHot,
    backend: Counted<LocalDirBackend>,
    cfg: SynthConfig,
}

fn env_with(backend_blocks: u32) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig::new(BLOCKS, 0xc01d);
    write_fixture(&dir.path().join("lake"), &cfg, backend_blocks);
    Env {
        catalog: FileCatalog::open(&dir.path().join("catalog.txt")),
        layout: TestLayout {
            root: dir.path().join("cold"),
            size: SIZE,
        },
        cas: Cas::open(dir.path().join("cas")).unwrap(),
        hot: FixtureHot::new(dir.path()),
        backend: Counted {
            inner: LocalDirBackend::new(dir.path().join("lake")),
            served: Default::default(),
        },
        cfg,
        dir,
    }
}

fn env() -> Env {
    env_with(BLOCKS)
}

fn config(codec: Codec) -> FreezeConfig {
    let mut c = FreezeConfig::new("blocks", codec).with_key_index(
        "txids",
        Arc::new(TxidPrefixExtractor),
        codec,
    );
    c.backend_timeout = Duration::from_millis(300);
    c.backend_poll = Duration::from_millis(20);
    c
}

impl Env {
    fn freezer(&self, codec: Codec) -> Freezer<'_> {
        Freezer::new(&self.catalog, &self.layout, &self.cas, config(codec))
            .with_hot(&self.hot)
            .with_backend(&self.backend)
    }
    fn pack(&self, kind: &str, chunk: u32) -> Vec<u8> {
        std::fs::read(self.layout.pack_path(kind, chunk).unwrap()).unwrap()
    }
    fn state(&self, kind: &str, chunk: u32) -> Option<ColdState> {
        self.catalog.cold_state(chunk, kind).unwrap()
    }
}

#[test]
fn freezes_both_kinds_from_the_backend_and_they_read_back() {
    let e = env();
    let f = e.freezer(Codec::None);
    let rep = f.process_chunk(1, &["blocks", "txids"], 1000).unwrap();
    assert_eq!(rep.source, Some(SourceKind::Bulk));
    assert_eq!(rep.built.len(), 2);
    assert_eq!(e.state("blocks", 1), Some(ColdState::Frozen));
    assert_eq!(e.state("txids", 1), Some(ColdState::Frozen));

    let blocks = PackReader::open(e.layout.pack_path("blocks", 1).unwrap()).unwrap();
    assert_eq!(blocks.first_height(), SIZE);
    assert_eq!(blocks.record_count(), SIZE);
    let idx = KeyIndexReader::open(&e.layout.pack_path("txids", 1).unwrap()).unwrap();
    let mut txs = 0;
    for h in SIZE..2 * SIZE {
        let b = IndexedBlock::from_bytes(&blocks.read_height(h).unwrap()).unwrap();
        assert_eq!(b.header.height().unwrap().0, h);
        for tx in &b.transactions {
            let mut k = [0u8; 16];
            k.copy_from_slice(&tx.txid.0[..16]);
            assert!(idx.lookup(&k).unwrap().contains(&h));
            txs += 1;
        }
    }
    assert!(
        txs > SIZE as usize,
        "the chain has transactions beyond coinbases"
    );
    assert!(idx.lookup(&[0xee; 16]).unwrap().is_empty());

    // main names both packs, by the hash of their bytes, and they are the same inode.
    let m = e.cas.manifest_at(MAIN).unwrap();
    for kind in ["blocks", "txids"] {
        let entry = m.get(kind, 1).unwrap();
        let bytes = e.pack(kind, 1);
        assert_eq!(entry.id.0, coldpack::format::blake2b256(&bytes));
        assert_eq!(entry.size, bytes.len() as u64);
        assert!(
            coldpack::cas::same_inode(
                &e.layout.pack_path(kind, 1).unwrap(),
                &e.cas.object_path(&entry.id)
            )
            .unwrap()
        );
    }
    let commit = e.cas.read_commit(&rep.commit.unwrap()).unwrap();
    assert_eq!(commit.time, 1000);
    assert!(commit.parents.is_empty());
    assert_eq!(e.cas.verify(MAIN).unwrap(), 2);
    assert!(f.disagreements().unwrap().is_empty());
}

/// The same chunk from the bulk backend, the hot store and the local pack: byte-identical
/// packs at the canonical path, for both codecs.
#[test]
fn determinism_across_sources() {
    for codec in [Codec::None, Codec::Zstd { level: 3 }] {
        let e = env();
        let f = e.freezer(codec);
        let chunk = 2;
        let rep = f.process_chunk(chunk, &["blocks", "txids"], 1).unwrap();
        assert_eq!(rep.source, Some(SourceKind::Bulk));
        let from_bulk = (e.pack("blocks", chunk), e.pack("txids", chunk));

        // Rebuild both from a ready hot store: delete the keys (as a re-materialisation
        // would), mark the hot store ready.
        e.hot.fill(chunk, &e.cfg, 2 * SIZE..=3 * SIZE - 1);
        e.catalog.set_hot(chunk, Some(HotState::Ready));
        for k in ["blocks", "txids"] {
            e.catalog
                .set_cold(chunk, &[k], ColdState::Freezing)
                .unwrap();
        }
        let served = e.backend.served.load(Ordering::SeqCst);
        let rep = f.process_chunk(chunk, &["blocks", "txids"], 2).unwrap();
        assert_eq!(rep.source, Some(SourceKind::Hot));
        assert_eq!(e.backend.served.load(Ordering::SeqCst), served);
        assert_eq!(
            (e.pack("blocks", chunk), e.pack("txids", chunk)),
            from_bulk,
            "{codec}: hot"
        );

        // Rebuild the derived kind alone from the local pack (no hot store, no download).
        e.catalog.set_hot(chunk, None);
        e.catalog
            .set_cold(chunk, &["txids"], ColdState::Freezing)
            .unwrap();
        let rep = f.process_chunk(chunk, &["blocks", "txids"], 3).unwrap();
        assert_eq!(rep.source, Some(SourceKind::Pack));
        assert_eq!(rep.skipped, vec!["blocks".to_owned()]);
        assert_eq!(e.backend.served.load(Ordering::SeqCst), served);
        assert_eq!(e.pack("txids", chunk), from_bulk.1, "{codec}: pack");

        // Every freeze made a commit; main's manifest still names the same objects.
        let m = e.cas.manifest_at(MAIN).unwrap();
        assert_eq!(
            m.get("blocks", chunk).unwrap().id.0,
            coldpack::format::blake2b256(&from_bulk.0)
        );
        assert!(f.disagreements().unwrap().is_empty());
        let mut commits = 0;
        let mut c = e.cas.read_ref(MAIN).unwrap();
        while let Some(id) = c {
            commits += 1;
            c = e.cas.read_commit(&id).unwrap().parents.first().copied();
        }
        assert_eq!(commits, 3);
    }
}

#[test]
fn frozen_kinds_are_skipped() {
    let e = env();
    let f = e.freezer(Codec::None);
    f.process_chunk(0, &["blocks", "txids"], 1).unwrap();
    let path = e.layout.pack_path("blocks", 0).unwrap();
    let ino = std::fs::metadata(&path)
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    let main = e.cas.read_ref(MAIN).unwrap();
    let served = e.backend.served.load(Ordering::SeqCst);

    let rep = f
        .process_chunk(0, &["blocks", "txids", "blocks"], 2)
        .unwrap();
    assert!(rep.built.is_empty());
    assert_eq!(rep.skipped, vec!["blocks".to_owned(), "txids".to_owned()]);
    assert_eq!(rep.source, None);
    assert_eq!(rep.commit, None);
    assert_eq!(e.cas.read_ref(MAIN).unwrap(), main, "no new commit");
    assert_eq!(
        e.backend.served.load(Ordering::SeqCst),
        served,
        "no source read"
    );
    let ino2 = std::fs::metadata(&path)
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    assert_eq!(ino, ino2, "the pack was not rewritten");

    // An unknown kind is an error before anything happens.
    assert!(matches!(
        f.process_chunk(0, &["nope"], 3),
        Err(Error::UnknownKind { .. })
    ));
}

/// A ready hot store that will not open is loss: fatal, and nothing is marked.
#[test]
fn ready_hot_store_that_will_not_open_is_fatal() {
    let e = env();
    e.catalog.set_hot(1, Some(HotState::Ready)); // no directory behind it
    let f = e.freezer(Codec::None);
    let err = f.process_chunk(1, &["blocks", "txids"], 1).unwrap_err();
    assert!(matches!(err, Error::HotStoreLost { chunk: 1, .. }), "{err}");
    assert!(err.is_loss());
    assert_eq!(
        e.state("blocks", 1),
        None,
        "the source is chosen before marking"
    );
    assert_eq!(e.state("txids", 1), None);
    assert_eq!(
        e.backend.served.load(Ordering::SeqCst),
        0,
        "no fallback to the backend"
    );
    assert!(!e.layout.pack_path("blocks", 1).unwrap().exists());
}

/// A ready hot store whose watermark is short is stale: fall through to the next source.
#[test]
fn stale_hot_store_falls_through() {
    let e = env();
    e.hot.fill(1, &e.cfg, SIZE..=SIZE + 10);
    e.catalog.set_hot(1, Some(HotState::Ready));
    let f = e.freezer(Codec::None);
    let rep = f.process_chunk(1, &["blocks"], 1).unwrap();
    assert_eq!(rep.source, Some(SourceKind::Bulk));
    assert_eq!(e.hot.opens.load(Ordering::SeqCst), 1);
    // A transient hot store is never opened.
    e.catalog.set_hot(2, Some(HotState::Transient));
    let rep = f.process_chunk(2, &["blocks"], 2).unwrap();
    assert_eq!(rep.source, Some(SourceKind::Bulk));
    assert_eq!(e.hot.opens.load(Ordering::SeqCst), 1);
}

/// A frozen key whose pack is missing is loss when the pack would be the source.
#[test]
fn frozen_key_without_its_pack_is_fatal() {
    let e = env();
    let f = e.freezer(Codec::None);
    f.process_chunk(0, &["blocks"], 1).unwrap();
    std::fs::remove_file(e.layout.pack_path("blocks", 0).unwrap()).unwrap();
    let err = f.process_chunk(0, &["txids"], 2).unwrap_err();
    assert!(
        matches!(err, Error::FrozenPackLost { chunk: 0, .. }),
        "{err}"
    );
    assert_eq!(e.state("txids", 0), None);
    // Reconcile refuses too: the loss needs an operator.
    assert!(f.reconcile(3).unwrap_err().is_loss());
    // Rebuilding the payload kind itself does not read the lost pack.
    let rep = f.process_chunk(0, &["blocks", "txids"], 4);
    assert!(rep.is_ok() || rep.unwrap_err().is_loss());
}

/// The backend does not cover the chunk: bounded wait, then a fatal timeout, nothing
/// marked. When it catches up during the wait, the freeze goes ahead.
#[test]
fn backend_wait_is_bounded() {
    let e = env_with(SIZE * 2); // covers chunks 0 and 1
    let f = e.freezer(Codec::None);
    let t0 = std::time::Instant::now();
    let err = f.process_chunk(3, &["blocks"], 1).unwrap_err();
    assert!(
        matches!(err, Error::BackendCoverageTimeout { chunk: 3, needed, tip: Some(79), .. } if needed == 4 * SIZE - 1),
        "{err}"
    );
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert_eq!(e.state("blocks", 3), None);

    // Extend the lake while the freezer waits (a longer wait this time).
    let mut cfgd = config(Codec::None);
    cfgd.backend_timeout = Duration::from_secs(60);
    let f = Freezer::new(&e.catalog, &e.layout, &e.cas, cfgd).with_backend(&e.backend);
    let lake = e.dir.path().join("lake");
    let cfg = e.cfg.clone();
    let grower = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        write_fixture(&lake, &cfg, BLOCKS);
    });
    let rep = f.process_chunk(3, &["blocks"], 2).unwrap();
    grower.join().unwrap();
    assert_eq!(rep.source, Some(SourceKind::Bulk));
    assert_eq!(e.state("blocks", 3), Some(ColdState::Frozen));
}

/// The fixture writer replaces a lake directory by deleting the old one and renaming the new
/// one into place; a backend asked for its tip meanwhile sees the old tip, the new one or
/// none, never an error (`backend_wait_is_bounded` failed once at load 5: the wait's poll
/// opened a half-deleted directory).
#[test]
fn tip_while_the_lake_is_replaced_is_never_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let cfg = SynthConfig::new(60, 0xc01d);
    write_fixture(&lake, &cfg, 20);
    let backend = LocalDirBackend::new(&lake);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (lake, cfg, done) = (lake.clone(), cfg.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            for i in 0..12 {
                write_fixture(&lake, &cfg, if i % 2 == 0 { 60 } else { 20 });
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let mut polls = 0u32;
    while !done.load(Ordering::SeqCst) {
        let tip = backend.tip().unwrap();
        assert!(matches!(tip, None | Some(19) | Some(59)), "{tip:?}");
        polls += 1;
    }
    writer.join().unwrap();
    assert!(polls > 0);
    assert_eq!(backend.tip().unwrap(), Some(19));
}

/// Without a backend, a chunk no local source has is refused, nothing marked.
#[test]
fn no_source_is_an_error_without_marks() {
    let e = env();
    let f = Freezer::new(&e.catalog, &e.layout, &e.cas, config(Codec::None));
    assert!(matches!(
        f.process_chunk(0, &["blocks"], 1),
        Err(Error::NoSource { chunk: 0, .. })
    ));
    assert!(e.catalog.keys().is_empty());
}

fn main_manifest(cas: &Cas) -> Manifest {
    cas.manifest_at(MAIN).unwrap()
}

/// A parentless commit of `m` on main (history cut), as retention would do.
fn reset_main(cas: &Cas, m: &Manifest, time: u64) {
    let tree = cas.write_manifest(m).unwrap();
    let c = cas
        .write_commit(&Commit {
            tree,
            parents: vec![],
            time,
            message: "squash".into(),
        })
        .unwrap();
    cas.set_ref(MAIN, &c).unwrap();
}

#[test]
fn gc_keeps_what_refs_reach_and_prunes_the_rest() {
    let e = env();
    let f = e.freezer(Codec::None);
    f.process_chunk(0, &["blocks", "txids"], 1).unwrap();
    f.process_chunk(1, &["blocks", "txids"], 2).unwrap();
    let old0 = main_manifest(&e.cas).get("blocks", 0).unwrap().id;

    // Snapshot, then rebuild chunk 0's payload with another codec: a new object.
    let snap = e.cas.read_ref(MAIN).unwrap().unwrap();
    e.cas.set_ref("snapshots/before-zstd", &snap).unwrap();
    let fz = Freezer::new(
        &e.catalog,
        &e.layout,
        &e.cas,
        config(Codec::Zstd { level: 3 }),
    )
    .with_backend(&e.backend);
    e.catalog.delete_cold(0, "blocks").unwrap();
    fz.process_chunk(0, &["blocks"], 3).unwrap();
    let new0 = main_manifest(&e.cas).get("blocks", 0).unwrap().id;
    assert_ne!(old0, new0);

    // Everything is reachable (history and the snapshot): GC deletes nothing.
    let r = f.gc().unwrap();
    assert!(r.deleted_objects.is_empty(), "{r:?}");

    // Cut main's history: the old pack is still reachable from the snapshot.
    reset_main(&e.cas, &main_manifest(&e.cas), 4);
    let r = f.gc().unwrap();
    assert!(!r.deleted_objects.contains(&old0));
    assert!(e.cas.has_object(&old0));
    assert!(!r.deleted_objects.is_empty(), "old commits are garbage now");

    // Drop the snapshot: the old pack goes; the canonical file (another inode) stays.
    assert!(e.cas.delete_ref("snapshots/before-zstd").unwrap());
    let r = f.gc().unwrap();
    assert!(r.deleted_objects.contains(&old0));
    assert!(r.pruned_packs.is_empty());
    assert!(!e.cas.has_object(&old0));
    assert!(e.layout.pack_path("blocks", 0).unwrap().exists());
    assert_eq!(e.state("blocks", 0), Some(ColdState::Frozen));

    // Drop chunk 1 from main (retention): its packs are pruned through the catalog.
    let mut m = main_manifest(&e.cas);
    let gone: Vec<ObjectId> = ["blocks", "txids"]
        .iter()
        .map(|k| m.get(k, 1).unwrap().id)
        .collect();
    m.packs.retain(|(_, c), _| *c != 1);
    reset_main(&e.cas, &m, 5);
    let r = f.gc().unwrap();
    let mut pruned = r.pruned_packs.clone();
    pruned.sort();
    assert_eq!(
        pruned,
        vec![("blocks".to_owned(), 1), ("txids".to_owned(), 1)]
    );
    for id in &gone {
        assert!(r.deleted_objects.contains(id));
        assert!(!e.cas.has_object(id));
    }
    for k in ["blocks", "txids"] {
        assert_eq!(e.state(k, 1), None);
        assert!(!e.layout.pack_path(k, 1).unwrap().exists());
        assert_eq!(e.state(k, 0), Some(ColdState::Frozen));
    }
    assert!(f.disagreements().unwrap().is_empty());
    assert_eq!(e.cas.verify(MAIN).unwrap(), 2);
    // A second GC finds nothing more.
    assert!(f.gc().unwrap().deleted_objects.is_empty());
}

/// Flip one byte of a frozen pack: every read of the damaged record fails, the others
/// still read, and `verify` names the pack.
#[test]
fn a_flipped_byte_fails_reads_and_verify_names_the_pack() {
    for codec in [Codec::None, Codec::Zstd { level: 3 }] {
        let e = env();
        let f = e.freezer(codec);
        f.process_chunk(0, &["blocks", "txids"], 1).unwrap();
        f.process_chunk(1, &["blocks"], 2).unwrap();
        let path = e.layout.pack_path("blocks", 1).unwrap();
        let clean = PackReader::open(&path).unwrap();
        let rec = 7u32;
        let pos = clean.record_offset(rec).unwrap() + u64::from(clean.stored_len(rec).unwrap()) / 2;
        drop(clean);
        {
            use std::os::unix::fs::FileExt;
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            let mut b = [0u8; 1];
            file.read_exact_at(&mut b, pos).unwrap();
            file.write_all_at(&[b[0] ^ 0x10], pos).unwrap();
        }
        let r = PackReader::open(&path).unwrap();
        for _ in 0..3 {
            assert!(matches!(
                r.read(rec),
                Err(Error::CorruptRecord { record: 7, .. })
            ));
            assert!(r.read_height(SIZE + rec).is_err());
        }
        assert!(r.read(rec + 1).is_ok());
        // The object is the same inode, so the store sees the damage too.
        let err = e.cas.verify(MAIN).unwrap_err();
        let Error::VerifyFailed { damaged, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(damaged.len(), 1, "{err}");
        assert_eq!((damaged[0].kind.as_str(), damaged[0].chunk), ("blocks", 1));
        let id = main_manifest(&e.cas).get("blocks", 1).unwrap().id;
        assert_eq!(damaged[0].hash, id.to_hex());
        assert!(err.to_string().contains(&id.to_hex()));
        // A damaged pack as a source is loss, not silently re-downloaded.
        assert!(f.process_chunk(1, &["txids"], 3).is_err());
    }
}

/// A rebuild of a committed pack crashes after the old file was unlinked: reconcile puts
/// the committed pack back (same inode as its object), and everything agrees.
#[test]
fn a_crashed_rebuild_is_rolled_back_by_reconcile() {
    let e = env();
    let f = e.freezer(Codec::None);
    f.process_chunk(0, &["blocks", "txids"], 1).unwrap();
    let before = e.pack("blocks", 0);
    let id = main_manifest(&e.cas).get("blocks", 0).unwrap().id;
    for stop in [
        Step::MarkedFreezing,
        Step::MidWrite,
        Step::FilesWritten,
        Step::Linked,
    ] {
        // Request a rebuild of the payload kind (as a codec change would).
        e.catalog.delete_cold(0, "blocks").unwrap();
        let hook = move |s: Step| {
            if s == stop {
                Err(Error::Stopped(s))
            } else {
                Ok(())
            }
        };
        let fz = Freezer::new(
            &e.catalog,
            &e.layout,
            &e.cas,
            config(Codec::Zstd { level: 3 }),
        )
        .with_backend(&e.backend)
        .with_hook(&hook);
        assert!(fz.process_chunk(0, &["blocks"], 2).is_err());
        assert_eq!(e.state("blocks", 0), Some(ColdState::Freezing));
        assert!(!f.disagreements().unwrap().is_empty(), "{stop:?}");
        let rep = f.reconcile(3).unwrap();
        assert_eq!(rep.restored, vec![("blocks".to_owned(), 0)], "{stop:?}");
        assert!(f.disagreements().unwrap().is_empty(), "{stop:?}");
        assert_eq!(e.state("blocks", 0), Some(ColdState::Frozen));
        assert_eq!(e.pack("blocks", 0), before);
        assert!(
            coldpack::cas::same_inode(
                &e.layout.pack_path("blocks", 0).unwrap(),
                &e.cas.object_path(&id)
            )
            .unwrap()
        );
    }
    assert_eq!(e.cas.verify(MAIN).unwrap(), 2);
}
