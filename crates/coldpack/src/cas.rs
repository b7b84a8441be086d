//! The content-addressed store: objects, trees (the manifest), commits and refs.
//!
//! ```text
//! {cas}/objects/<first 2 hex>/<all 64 hex>   objects, named by BLAKE2b-256 of their bytes
//! {cas}/refs/heads/main                      64 hex + "\n"
//! {cas}/refs/snapshots/<name>                64 hex + "\n"
//! ```
//!
//! Three kinds of object (`FORMAT.md` specifies their bytes):
//! - a **pack**: a `.pack` file, byte for byte. It is written once, at its canonical chunk
//!   path (the one-write protocol), and then hard-linked here: one inode, two names, no
//!   second write. A re-materialised pack (byte-identical, new inode) replaces the link, so a
//!   frozen canonical pack and its object are always the same inode; that is how garbage
//!   collection finds the canonical file of an unreachable pack.
//! - a **tree** (`STRTTREE`): sorted named entries, each a pack or a subtree. The manifest
//!   is a three-level tree `kind / bucket (chunk / 1000, 5 digits) / chunk (8 digits)`.
//! - a **commit** (`STRTCMIT`): a root tree, parents, a time (seconds, passed in), a message.
//!
//! Small objects are written to `<hash>.tmp`, fsynced, renamed into place and the directory
//! fsynced; refs are replaced the same way. Every object read is re-hashed against its name.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::error::{DamagedPack, Error, Result, io};
use crate::format::blake2b256;
use crate::fsutil::{atomic_replace, create_dirs, fsync_created_dirs, fsync_path, read_bounded};
use crate::reader::PackReader;

/// A BLAKE2b-256 object name.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId(pub [u8; 32]);

impl ObjectId {
    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 lowercase hex digits.
    pub fn from_hex(s: &str) -> Option<ObjectId> {
        if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(ObjectId(out))
    }
}

impl std::fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ObjectId({})", self.to_hex())
    }
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

const TREE_MAGIC: &[u8; 8] = b"STRTTREE";
const COMMIT_MAGIC: &[u8; 8] = b"STRTCMIT";
const OBJECT_VERSION: u8 = 1;
/// Largest tree or commit object read (a bucket tree holds at most 1,000 entries).
const MAX_SMALL_OBJECT: u64 = 16 << 20;
/// Most parents a commit may have.
pub const MAX_PARENTS: usize = 16;
/// Longest commit message, in bytes.
pub const MAX_MESSAGE: usize = 64 << 10;
/// Chunks per bucket subtree of the manifest.
pub const TREE_BUCKET: u32 = 1000;

/// What a tree entry names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryMode {
    /// A `.pack` object (mode byte 1).
    Pack,
    /// A subtree (mode byte 2).
    Tree,
}

/// One tree entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeEntry {
    /// Its name (1..=64 bytes of `[a-z0-9_.]`).
    pub name: String,
    /// Pack or subtree.
    pub mode: EntryMode,
    /// The object it names.
    pub id: ObjectId,
    /// For a pack, its length; for a subtree, the total length of the packs below it.
    pub size: u64,
}

fn valid_name(n: &[u8]) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

/// Encodes a tree: `"STRTTREE" ‖ 0x01 ‖ count u32 LE ‖ entries`, each entry
/// `name_len u8 ‖ name ‖ mode u8 ‖ id [32] ‖ size u64 LE`, strictly ascending by name bytes.
pub fn encode_tree(entries: &[TreeEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(13 + entries.len() * 56);
    out.extend_from_slice(TREE_MAGIC);
    out.push(OBJECT_VERSION);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        out.push(e.name.len() as u8);
        out.extend_from_slice(e.name.as_bytes());
        out.push(match e.mode {
            EntryMode::Pack => 1,
            EntryMode::Tree => 2,
        });
        out.extend_from_slice(&e.id.0);
        out.extend_from_slice(&e.size.to_le_bytes());
    }
    out
}

/// Decodes a tree, refusing anything [`encode_tree`] would not produce.
pub fn decode_tree(b: &[u8]) -> std::result::Result<Vec<TreeEntry>, String> {
    let mut r = Cursor { b, pos: 0 };
    if r.take(8)? != TREE_MAGIC {
        return Err("not a tree (bad magic)".into());
    }
    if r.u8()? != OBJECT_VERSION {
        return Err("unknown tree version".into());
    }
    let count = r.u32()? as usize;
    // Each entry takes at least 43 bytes: bound the allocation by the input.
    if count > b.len() / 43 {
        return Err(format!("{count} entries cannot fit in {} bytes", b.len()));
    }
    let mut entries: Vec<TreeEntry> = Vec::with_capacity(count);
    for _ in 0..count {
        let len = r.u8()? as usize;
        let name = r.take(len)?;
        if !valid_name(name) {
            return Err(format!(
                "invalid entry name {:?}",
                String::from_utf8_lossy(name)
            ));
        }
        let mode = match r.u8()? {
            1 => EntryMode::Pack,
            2 => EntryMode::Tree,
            m => return Err(format!("unknown entry mode {m}")),
        };
        let mut id = [0u8; 32];
        id.copy_from_slice(r.take(32)?);
        let size = r.u64()?;
        let name = String::from_utf8_lossy(name).into_owned();
        if let Some(prev) = entries.last()
            && prev.name.as_bytes() >= name.as_bytes()
        {
            return Err(format!("entry {name} does not follow {}", prev.name));
        }
        entries.push(TreeEntry {
            name,
            mode,
            id: ObjectId(id),
            size,
        });
    }
    if r.pos != b.len() {
        return Err("trailing bytes after the last entry".into());
    }
    Ok(entries)
}

/// A commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    /// The root tree.
    pub tree: ObjectId,
    /// Parent commits, in order.
    pub parents: Vec<ObjectId>,
    /// Seconds since the Unix epoch, as the caller passed it.
    pub time: u64,
    /// UTF-8 message.
    pub message: String,
}

/// Encodes a commit: `"STRTCMIT" ‖ 0x01 ‖ tree [32] ‖ parent_count u8 ‖ parents [32]… ‖
/// time u64 LE ‖ message_len u32 LE ‖ message`.
pub fn encode_commit(c: &Commit) -> Vec<u8> {
    let mut out = Vec::with_capacity(54 + 32 * c.parents.len() + c.message.len());
    out.extend_from_slice(COMMIT_MAGIC);
    out.push(OBJECT_VERSION);
    out.extend_from_slice(&c.tree.0);
    out.push(c.parents.len() as u8);
    for p in &c.parents {
        out.extend_from_slice(&p.0);
    }
    out.extend_from_slice(&c.time.to_le_bytes());
    out.extend_from_slice(&(c.message.len() as u32).to_le_bytes());
    out.extend_from_slice(c.message.as_bytes());
    out
}

/// Decodes a commit, refusing anything [`encode_commit`] would not produce.
pub fn decode_commit(b: &[u8]) -> std::result::Result<Commit, String> {
    let mut r = Cursor { b, pos: 0 };
    if r.take(8)? != COMMIT_MAGIC {
        return Err("not a commit (bad magic)".into());
    }
    if r.u8()? != OBJECT_VERSION {
        return Err("unknown commit version".into());
    }
    let mut tree = [0u8; 32];
    tree.copy_from_slice(r.take(32)?);
    let n = r.u8()? as usize;
    if n > MAX_PARENTS {
        return Err(format!("{n} parents (at most {MAX_PARENTS})"));
    }
    let mut parents = Vec::with_capacity(n);
    for _ in 0..n {
        let mut p = [0u8; 32];
        p.copy_from_slice(r.take(32)?);
        parents.push(ObjectId(p));
    }
    let time = r.u64()?;
    let len = r.u32()? as usize;
    if len > MAX_MESSAGE {
        return Err(format!("message of {len} bytes (at most {MAX_MESSAGE})"));
    }
    let message = std::str::from_utf8(r.take(len)?)
        .map_err(|_| "message is not UTF-8".to_owned())?
        .to_owned();
    if r.pos != b.len() {
        return Err("trailing bytes after the message".into());
    }
    Ok(Commit {
        tree: ObjectId(tree),
        parents,
        time,
        message,
    })
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> std::result::Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> std::result::Result<u32, String> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    fn u64(&mut self) -> std::result::Result<u64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
}

/// One pack of the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackEntry {
    /// Its object name.
    pub id: ObjectId,
    /// Its length.
    pub size: u64,
}

/// The manifest: kind and chunk → pack. Stored as the three-level tree described in the
/// module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The packs, by kind and chunk.
    pub packs: BTreeMap<(String, u32), PackEntry>,
}

impl Manifest {
    /// The pack of `kind` for `chunk`.
    pub fn get(&self, kind: &str, chunk: u32) -> Option<PackEntry> {
        self.packs.get(&(kind.to_owned(), chunk)).copied()
    }
}

/// A ref name: `heads/main` or `snapshots/<name>`.
pub fn check_ref_name(name: &str) -> Result<()> {
    let bad = |reason: &str| Error::BadRef {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = if let Some(r) = name.strip_prefix("heads/") {
        r
    } else if let Some(r) = name.strip_prefix("snapshots/") {
        r
    } else {
        return Err(bad("refs live under heads/ or snapshots/"));
    };
    if rest.is_empty()
        || rest.len() > 64
        || rest.starts_with('.')
        || !rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(bad(
            "a ref's last part is 1 to 64 of [A-Za-z0-9._-], not starting with '.'",
        ));
    }
    Ok(())
}

/// Called by GC with an unreachable object's path; prunes the canonical pack that is the
/// same inode, if any, and says which (kind, chunk) it was.
pub type PruneCanonical<'a> = dyn FnMut(&Path) -> Result<Option<(String, u32)>> + 'a;

/// The main branch.
pub const MAIN: &str = "heads/main";

/// The content-addressed store rooted at one directory.
#[derive(Debug)]
pub struct Cas {
    root: PathBuf,
    /// Serialises every change of objects and refs in this process (freeze commits, GC).
    lock: Mutex<()>,
}

/// What garbage collection did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Objects reachable from some ref.
    pub reachable: usize,
    /// Objects deleted (packs, trees, commits).
    pub deleted_objects: Vec<ObjectId>,
    /// Canonical packs deleted through the `pruning` state, as (kind, chunk).
    pub pruned_packs: Vec<(String, u32)>,
    /// Bytes freed (object sizes).
    pub freed_bytes: u64,
}

impl Cas {
    /// Opens (creating when absent) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Cas> {
        let root = root.into();
        for d in [
            root.join("objects"),
            root.join("refs/heads"),
            root.join("refs/snapshots"),
        ] {
            let created = create_dirs(&d)?;
            fsync_created_dirs(&created)?;
        }
        Ok(Cas {
            root,
            lock: Mutex::new(()),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the store's write lock (freezing holds it from marking to committing).
    pub fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The path of object `id`.
    pub fn object_path(&self, id: &ObjectId) -> PathBuf {
        let h = id.to_hex();
        self.root.join("objects").join(&h[..2]).join(h)
    }

    /// Whether object `id` exists.
    pub fn has_object(&self, id: &ObjectId) -> bool {
        self.object_path(id).exists()
    }

    fn ref_path(&self, name: &str) -> PathBuf {
        self.root.join("refs").join(name)
    }

    /// Stores `bytes` as an object (temp file, fsync, rename, fsync directory); a no-op
    /// when it exists.
    pub fn put_object(&self, bytes: &[u8]) -> Result<ObjectId> {
        let id = ObjectId(blake2b256(bytes));
        let path = self.object_path(&id);
        if path.exists() {
            return Ok(id);
        }
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        let created = create_dirs(&dir)?;
        atomic_replace(&path, bytes)?;
        fsync_created_dirs(&created)?;
        Ok(id)
    }

    /// Hard-links the pack at `canonical` (whose whole-file hash is `id`) into the store.
    /// An existing object of that name is replaced by a link to `canonical`'s inode (link to
    /// a temp name, rename over), so the canonical file and the object stay one inode.
    pub fn link_pack(&self, canonical: &Path, id: &ObjectId) -> Result<()> {
        let path = self.object_path(id);
        if same_inode(canonical, &path)? {
            return Ok(());
        }
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        let created = create_dirs(&dir)?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        crate::fsutil::remove_if_exists(&tmp)?;
        fs::hard_link(canonical, &tmp).map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))?;
        fsync_path(&dir)?;
        fsync_created_dirs(&created)?;
        Ok(())
    }

    /// Reads a tree or commit object, re-hashing it against its name.
    pub fn read_small_object(&self, id: &ObjectId) -> Result<Vec<u8>> {
        let path = self.object_path(id);
        let bytes = read_bounded(&path, MAX_SMALL_OBJECT)?.ok_or_else(|| Error::MissingObject {
            hash: id.to_hex(),
            referrer: "a read".into(),
        })?;
        let got = blake2b256(&bytes);
        if got != id.0 {
            return Err(Error::CorruptObject {
                hash: id.to_hex(),
                path,
                reason: format!("bytes hash to {}", hex::encode(got)),
            });
        }
        Ok(bytes)
    }

    /// Reads and decodes a tree.
    pub fn read_tree(&self, id: &ObjectId) -> Result<Vec<TreeEntry>> {
        let bytes = self.read_small_object(id)?;
        decode_tree(&bytes).map_err(|reason| Error::CorruptObject {
            hash: id.to_hex(),
            path: self.object_path(id),
            reason,
        })
    }

    /// Reads and decodes a commit.
    pub fn read_commit(&self, id: &ObjectId) -> Result<Commit> {
        let bytes = self.read_small_object(id)?;
        decode_commit(&bytes).map_err(|reason| Error::CorruptObject {
            hash: id.to_hex(),
            path: self.object_path(id),
            reason,
        })
    }

    /// Writes the manifest's trees (only those not already stored) and returns the root.
    pub fn write_manifest(&self, m: &Manifest) -> Result<ObjectId> {
        // kind → bucket → entries
        let mut kinds: BTreeMap<&str, BTreeMap<u32, Vec<TreeEntry>>> = BTreeMap::new();
        for ((kind, chunk), e) in &m.packs {
            if !valid_name(kind.as_bytes()) || kind.len() > 32 {
                return Err(Error::UnknownKind {
                    kind: kind.clone(),
                    reason: "a kind name is 1 to 32 of [a-z0-9_]".into(),
                });
            }
            kinds
                .entry(kind)
                .or_default()
                .entry(chunk / TREE_BUCKET)
                .or_default()
                .push(TreeEntry {
                    name: format!("{chunk:08}"),
                    mode: EntryMode::Pack,
                    id: e.id,
                    size: e.size,
                });
        }
        let mut root = Vec::new();
        for (kind, buckets) in kinds {
            let mut kind_entries = Vec::new();
            for (bucket, mut entries) in buckets {
                entries.sort_by(|a, b| a.name.cmp(&b.name));
                let size = entries.iter().map(|e| e.size).sum();
                let id = self.put_object(&encode_tree(&entries))?;
                kind_entries.push(TreeEntry {
                    name: format!("{bucket:05}"),
                    mode: EntryMode::Tree,
                    id,
                    size,
                });
            }
            kind_entries.sort_by(|a, b| a.name.cmp(&b.name));
            let size = kind_entries.iter().map(|e| e.size).sum();
            let id = self.put_object(&encode_tree(&kind_entries))?;
            root.push(TreeEntry {
                name: kind.to_owned(),
                mode: EntryMode::Tree,
                id,
                size,
            });
        }
        self.put_object(&encode_tree(&root))
    }

    /// Reads the manifest rooted at tree `root`.
    pub fn read_manifest(&self, root: &ObjectId) -> Result<Manifest> {
        let mut m = Manifest::default();
        let corrupt = |id: &ObjectId, reason: String| Error::CorruptObject {
            hash: id.to_hex(),
            path: self.object_path(id),
            reason,
        };
        for k in self.read_tree(root)? {
            if k.mode != EntryMode::Tree {
                return Err(corrupt(root, format!("kind {} is not a subtree", k.name)));
            }
            for b in self.read_tree(&k.id)? {
                let bucket: u32 = parse_digits(&b.name, 5)
                    .ok_or_else(|| corrupt(&k.id, format!("bad bucket name {}", b.name)))?;
                if b.mode != EntryMode::Tree {
                    return Err(corrupt(
                        &k.id,
                        format!("bucket {} is not a subtree", b.name),
                    ));
                }
                for p in self.read_tree(&b.id)? {
                    let chunk = parse_digits(&p.name, 8)
                        .filter(|c| c / TREE_BUCKET == bucket && p.mode == EntryMode::Pack)
                        .ok_or_else(|| {
                            corrupt(
                                &b.id,
                                format!("bad pack entry {} in bucket {bucket}", p.name),
                            )
                        })?;
                    m.packs.insert(
                        (k.name.clone(), chunk),
                        PackEntry {
                            id: p.id,
                            size: p.size,
                        },
                    );
                }
            }
        }
        Ok(m)
    }

    /// Writes a commit object.
    pub fn write_commit(&self, c: &Commit) -> Result<ObjectId> {
        if c.parents.len() > MAX_PARENTS || c.message.len() > MAX_MESSAGE {
            return Err(Error::BadRef {
                name: "<commit>".into(),
                reason: format!("at most {MAX_PARENTS} parents and {MAX_MESSAGE} message bytes"),
            });
        }
        self.put_object(&encode_commit(c))
    }

    /// The commit a ref points at, `None` when the ref does not exist.
    pub fn read_ref(&self, name: &str) -> Result<Option<ObjectId>> {
        check_ref_name(name)?;
        let path = self.ref_path(name);
        let Some(bytes) = read_bounded(&path, 65)? else {
            return Ok(None);
        };
        let s = std::str::from_utf8(&bytes).unwrap_or("");
        let id = s
            .strip_suffix('\n')
            .and_then(ObjectId::from_hex)
            .ok_or_else(|| Error::BadRef {
                name: name.to_owned(),
                reason: "not 64 lowercase hex digits and a newline".into(),
            })?;
        Ok(Some(id))
    }

    /// Points a ref at `commit`, atomically (temp file, fsync, rename, fsync directory).
    pub fn set_ref(&self, name: &str, commit: &ObjectId) -> Result<()> {
        check_ref_name(name)?;
        if !self.has_object(commit) {
            return Err(Error::MissingObject {
                hash: commit.to_hex(),
                referrer: format!("ref {name}"),
            });
        }
        atomic_replace(
            &self.ref_path(name),
            format!("{}\n", commit.to_hex()).as_bytes(),
        )
    }

    /// Deletes a ref (and fsyncs its directory); true when it existed.
    pub fn delete_ref(&self, name: &str) -> Result<bool> {
        check_ref_name(name)?;
        let path = self.ref_path(name);
        let existed = crate::fsutil::remove_if_exists(&path)?;
        if existed {
            crate::fsutil::fsync_parent(&path)?;
        }
        Ok(existed)
    }

    /// Every ref, by name.
    pub fn refs(&self) -> Result<BTreeMap<String, ObjectId>> {
        let mut out = BTreeMap::new();
        for ns in ["heads", "snapshots"] {
            let dir = self.root.join("refs").join(ns);
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&dir, e)),
            };
            for ent in rd {
                let ent = ent.map_err(io(&dir))?;
                let name = ent.file_name().to_string_lossy().into_owned();
                if name.ends_with(".tmp") {
                    continue;
                }
                let full = format!("{ns}/{name}");
                if let Some(id) = self.read_ref(&full)? {
                    out.insert(full, id);
                }
            }
        }
        Ok(out)
    }

    /// The manifest at the tip of `name` (empty when the ref does not exist).
    pub fn manifest_at(&self, name: &str) -> Result<Manifest> {
        match self.read_ref(name)? {
            None => Ok(Manifest::default()),
            Some(c) => {
                let commit = self.read_commit(&c)?;
                self.read_manifest(&commit.tree)
            }
        }
    }

    /// Commits `manifest` on top of `name` (its current tip as the one parent) and moves
    /// the ref. The caller holds [`Cas::lock`].
    pub fn commit_manifest(
        &self,
        name: &str,
        manifest: &Manifest,
        time: u64,
        message: &str,
    ) -> Result<ObjectId> {
        let tree = self.write_manifest(manifest)?;
        let parents = self.read_ref(name)?.into_iter().collect();
        let id = self.write_commit(&Commit {
            tree,
            parents,
            time,
            message: message.to_owned(),
        })?;
        self.set_ref(name, &id)?;
        tracing::debug!(reference = name, commit = %id, "commit");
        Ok(id)
    }

    /// Every object reachable from every ref: commits (through parents), trees and packs.
    pub fn reachable(&self) -> Result<HashSet<ObjectId>> {
        let mut seen = HashSet::new();
        let mut commits: Vec<(ObjectId, String)> = self
            .refs()?
            .into_iter()
            .map(|(n, id)| (id, format!("ref {n}")))
            .collect();
        let mut trees: Vec<(ObjectId, String)> = Vec::new();
        while let Some((c, referrer)) = commits.pop() {
            if !seen.insert(c) {
                continue;
            }
            if !self.has_object(&c) {
                return Err(Error::MissingObject {
                    hash: c.to_hex(),
                    referrer,
                });
            }
            let commit = self.read_commit(&c)?;
            trees.push((commit.tree, format!("commit {c}")));
            commits.extend(commit.parents.iter().map(|p| (*p, format!("commit {c}"))));
        }
        while let Some((t, referrer)) = trees.pop() {
            if !seen.insert(t) {
                continue;
            }
            if !self.has_object(&t) {
                return Err(Error::MissingObject {
                    hash: t.to_hex(),
                    referrer,
                });
            }
            for e in self.read_tree(&t)? {
                match e.mode {
                    EntryMode::Tree => trees.push((e.id, format!("tree {t}"))),
                    EntryMode::Pack => {
                        if !self.has_object(&e.id) {
                            return Err(Error::MissingObject {
                                hash: e.id.to_hex(),
                                referrer: format!("tree {t} entry {}", e.name),
                            });
                        }
                        seen.insert(e.id);
                    }
                }
            }
        }
        Ok(seen)
    }

    /// Every object in the store (and stray `.tmp` files, which are debris).
    pub fn list_objects(&self) -> Result<(Vec<ObjectId>, Vec<PathBuf>)> {
        let mut ids = Vec::new();
        let mut debris = Vec::new();
        let objects = self.root.join("objects");
        for sub in fs::read_dir(&objects).map_err(io(&objects))? {
            let sub = sub.map_err(io(&objects))?.path();
            if !sub.is_dir() {
                debris.push(sub);
                continue;
            }
            for f in fs::read_dir(&sub).map_err(io(&sub))? {
                let f = f.map_err(io(&sub))?.path();
                let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
                match name.as_deref().and_then(ObjectId::from_hex) {
                    Some(id) if f.parent() == Some(&sub) => ids.push(id),
                    _ => debris.push(f),
                }
            }
        }
        ids.sort();
        Ok((ids, debris))
    }

    /// Walks the tip of ref `name` and re-hashes every pack its manifest names (each
    /// record's CRC, the trailer's content hash and the whole-file hash against the name).
    /// Returns the number of packs checked; damaged packs are named in
    /// [`Error::VerifyFailed`].
    pub fn verify(&self, name: &str) -> Result<usize> {
        let m = self.manifest_at(name)?;
        let mut damaged = Vec::new();
        for ((kind, chunk), e) in &m.packs {
            let path = self.object_path(&e.id);
            let fail = |reason: String| DamagedPack {
                kind: kind.clone(),
                chunk: *chunk,
                hash: e.id.to_hex(),
                path: path.clone(),
                reason,
            };
            let res = PackReader::open(&path).and_then(|r| {
                let got = r.verify_full()?;
                if got != e.id.0 {
                    return Err(Error::CorruptPack {
                        path: path.clone(),
                        reason: format!("file hashes to {}", hex::encode(got)),
                    });
                }
                if r.size() != e.size {
                    return Err(Error::CorruptPack {
                        path: path.clone(),
                        reason: format!("{} bytes; the manifest says {}", r.size(), e.size),
                    });
                }
                Ok(())
            });
            if let Err(err) = res {
                tracing::warn!(kind = %kind, chunk, object = %e.id, error = %err, "damaged pack");
                damaged.push(fail(err.to_string()));
            }
        }
        if damaged.is_empty() {
            Ok(m.packs.len())
        } else {
            Err(Error::VerifyFailed {
                reference: name.to_owned(),
                damaged,
            })
        }
    }

    /// Deletes every object no ref reaches. Unreachable packs that are also a frozen
    /// canonical file (same inode) are pruned through the catalog first (`pruning`, unlink,
    /// fsync directory, delete key) by `prune_canonical`, which gets the object's path and
    /// returns the (kind, chunk) it pruned, if any. The caller holds [`Cas::lock`].
    pub fn gc_locked(&self, prune_canonical: &mut PruneCanonical<'_>) -> Result<GcReport> {
        let reachable = self.reachable()?;
        let (ids, debris) = self.list_objects()?;
        let mut report = GcReport {
            reachable: reachable.len(),
            ..GcReport::default()
        };
        let mut dirs = BTreeSet::new();
        for p in debris {
            if p.is_file()
                && crate::fsutil::remove_if_exists(&p)?
                && let Some(d) = p.parent()
            {
                dirs.insert(d.to_path_buf());
            }
        }
        for id in ids {
            if reachable.contains(&id) {
                continue;
            }
            let path = self.object_path(&id);
            let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if let Some(pruned) = prune_canonical(&path)? {
                report.pruned_packs.push(pruned);
            }
            if crate::fsutil::remove_if_exists(&path)? {
                report.freed_bytes += size;
                report.deleted_objects.push(id);
                if let Some(d) = path.parent() {
                    dirs.insert(d.to_path_buf());
                }
            }
        }
        for d in dirs {
            fsync_path(&d)?;
        }
        tracing::info!(
            reachable = report.reachable,
            deleted = report.deleted_objects.len(),
            pruned = report.pruned_packs.len(),
            freed = report.freed_bytes,
            "cas gc"
        );
        Ok(report)
    }
}

fn parse_digits(s: &str, width: usize) -> Option<u32> {
    (s.len() == width && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Whether `a` and `b` are the same inode (false when either is missing).
pub fn same_inode(a: &Path, b: &Path) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let meta = |p: &Path| match fs::metadata(p) {
        Ok(m) => Ok(Some((m.dev(), m.ino()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(p, e)),
    };
    Ok(match (meta(a)?, meta(b)?) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    })
}
