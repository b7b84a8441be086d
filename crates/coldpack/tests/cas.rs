//! The content-addressed store on its own: object naming, tree and commit encodings,
//! refs, corruption of small objects, missing objects.

use coldpack::cas::{
    Commit, EntryMode, MAIN, Manifest, PackEntry, TreeEntry, check_ref_name, decode_commit,
    decode_tree, encode_commit, encode_tree,
};
use coldpack::format::blake2b256;
use coldpack::{Cas, Error, ObjectId};
use proptest::prelude::*;

fn id(b: u8) -> ObjectId {
    ObjectId([b; 32])
}

#[test]
fn objects_are_named_by_their_hash() {
    let d = tempfile::tempdir().unwrap();
    let cas = Cas::open(d.path()).unwrap();
    let oid = cas.put_object(b"hello").unwrap();
    assert_eq!(oid.0, blake2b256(b"hello"));
    let h = oid.to_hex();
    assert_eq!(
        cas.object_path(&oid),
        d.path().join("objects").join(&h[..2]).join(&h)
    );
    assert_eq!(std::fs::read(cas.object_path(&oid)).unwrap(), b"hello");
    // Idempotent.
    assert_eq!(cas.put_object(b"hello").unwrap(), oid);
}

#[test]
fn tree_and_commit_round_trip_and_refuse_non_canonical_bytes() {
    let entries = vec![
        TreeEntry {
            name: "00000001".into(),
            mode: EntryMode::Pack,
            id: id(1),
            size: 10,
        },
        TreeEntry {
            name: "00000002".into(),
            mode: EntryMode::Tree,
            id: id(2),
            size: 20,
        },
    ];
    let b = encode_tree(&entries);
    assert_eq!(&b[..8], b"STRTTREE");
    assert_eq!(decode_tree(&b).unwrap(), entries);
    let mut rev = entries.clone();
    rev.reverse();
    assert!(decode_tree(&encode_tree(&rev)).is_err(), "unsorted");
    let mut dup = entries.clone();
    dup[1].name = dup[0].name.clone();
    assert!(decode_tree(&encode_tree(&dup)).is_err(), "duplicate");
    let mut long = b.clone();
    long.push(0);
    assert!(decode_tree(&long).is_err(), "trailing byte");
    assert!(decode_tree(&b[..b.len() - 1]).is_err(), "truncated");
    let mut huge = b.clone();
    huge[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(decode_tree(&huge).is_err(), "count beyond the input");

    let c = Commit {
        tree: id(3),
        parents: vec![id(4), id(5)],
        time: 1_700_000_000,
        message: "freeze chunk 00000001: blocks".into(),
    };
    let b = encode_commit(&c);
    assert_eq!(&b[..8], b"STRTCMIT");
    assert_eq!(decode_commit(&b).unwrap(), c);
    let mut bad = b.clone();
    bad[41] = 17; // parent count above the limit
    assert!(decode_commit(&bad).is_err());
    let mut bad = b.clone();
    let n = bad.len();
    bad[n - 1] = 0xff; // not UTF-8
    assert!(decode_commit(&bad).is_err());
}

#[test]
fn manifest_round_trips_through_three_levels() {
    let d = tempfile::tempdir().unwrap();
    let cas = Cas::open(d.path()).unwrap();
    let mut m = Manifest::default();
    for (k, c) in [
        ("blocks", 0u32),
        ("blocks", 999),
        ("blocks", 1000),
        ("txids", 5),
        ("txids", 123_456),
    ] {
        m.packs.insert(
            (k.into(), c),
            PackEntry {
                id: id(c as u8),
                size: u64::from(c) + 1,
            },
        );
    }
    let root = cas.write_manifest(&m).unwrap();
    assert_eq!(cas.read_manifest(&root).unwrap(), m);
    // Deterministic: the same manifest is the same root.
    assert_eq!(cas.write_manifest(&m).unwrap(), root);
    let top = cas.read_tree(&root).unwrap();
    assert_eq!(
        top.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["blocks", "txids"]
    );
    let buckets = cas.read_tree(&top[0].id).unwrap();
    assert_eq!(
        buckets.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["00000", "00001"]
    );
    assert_eq!(top[0].size, 1 + 1000 + 1001);
}

#[test]
fn refs_are_validated_and_replaced_whole() {
    for ok in ["heads/main", "snapshots/2026-11-21", "snapshots/a.b_c-D"] {
        check_ref_name(ok).unwrap();
    }
    for bad in [
        "main",
        "heads/",
        "snapshots/.hidden",
        "snapshots/a/b",
        "tags/x",
        "heads/ä",
    ] {
        assert!(check_ref_name(bad).is_err(), "{bad}");
    }
    let d = tempfile::tempdir().unwrap();
    let cas = Cas::open(d.path()).unwrap();
    assert_eq!(cas.read_ref(MAIN).unwrap(), None);
    // A ref may not point at a missing object.
    assert!(matches!(
        cas.set_ref(MAIN, &id(9)),
        Err(Error::MissingObject { .. })
    ));
    let tree = cas.write_manifest(&Manifest::default()).unwrap();
    let c1 = cas
        .write_commit(&Commit {
            tree,
            parents: vec![],
            time: 1,
            message: "a".into(),
        })
        .unwrap();
    cas.set_ref(MAIN, &c1).unwrap();
    assert_eq!(
        std::fs::read_to_string(d.path().join("refs/heads/main")).unwrap(),
        format!("{c1}\n")
    );
    assert_eq!(cas.read_ref(MAIN).unwrap(), Some(c1));
    assert!(!d.path().join("refs/heads/main.tmp").exists());
    std::fs::write(d.path().join("refs/heads/main"), "zz\n").unwrap();
    assert!(matches!(cas.read_ref(MAIN), Err(Error::BadRef { .. })));
}

#[test]
fn a_damaged_or_missing_small_object_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let cas = Cas::open(d.path()).unwrap();
    let mut m = Manifest::default();
    let pack = cas.put_object(b"not really a pack").unwrap();
    m.packs
        .insert(("blocks".into(), 1), PackEntry { id: pack, size: 17 });
    let c = cas.commit_manifest(MAIN, &m, 5, "x").unwrap();
    let commit = cas.read_commit(&c).unwrap();
    assert_eq!(cas.reachable().unwrap().len(), 5); // commit, root, kind, bucket, pack
    // Flip a byte of the root tree: reads fail with the object's name.
    let p = cas.object_path(&commit.tree);
    let mut b = std::fs::read(&p).unwrap();
    b[12] ^= 1;
    std::fs::write(&p, &b).unwrap();
    assert!(matches!(
        cas.read_tree(&commit.tree),
        Err(Error::CorruptObject { .. })
    ));
    // A missing pack is named by its referrer.
    std::fs::remove_file(&p).unwrap();
    std::fs::remove_file(cas.object_path(&pack)).unwrap();
    let err = cas.reachable().unwrap_err();
    assert!(matches!(err, Error::MissingObject { .. }), "{err}");
    // verify names a pack that does not parse as one.
    let d2 = tempfile::tempdir().unwrap();
    let cas2 = Cas::open(d2.path()).unwrap();
    let pack = cas2.put_object(b"not really a pack").unwrap();
    let mut m = Manifest::default();
    m.packs
        .insert(("blocks".into(), 1), PackEntry { id: pack, size: 17 });
    cas2.commit_manifest(MAIN, &m, 5, "x").unwrap();
    let Err(Error::VerifyFailed { damaged, .. }) = cas2.verify(MAIN) else {
        panic!()
    };
    assert_eq!(damaged[0].hash, pack.to_hex());
}

proptest! {
    #[test]
    fn small_object_decoders_are_total(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_tree(&b);
        let _ = decode_commit(&b);
        let mut t = b"STRTTREE\x01".to_vec();
        t.extend_from_slice(&b);
        if let Ok(e) = decode_tree(&t) {
            prop_assert_eq!(encode_tree(&e), t);
        }
        let mut c = b"STRTCMIT\x01".to_vec();
        c.extend_from_slice(&b);
        if let Ok(x) = decode_commit(&c) {
            prop_assert_eq!(encode_commit(&x), c);
        }
    }
}
