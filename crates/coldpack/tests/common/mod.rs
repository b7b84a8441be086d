//! Minimal, durable stand-ins for the `hotchunk` collaborators, for coldpack's own tests:
//! a catalog kept in one file replaced atomically (every batch is one synced rename), a
//! layout, and hot stores kept as fixture directories (`hot/{chunk:08}`), whose watermark is
//! the fixture's tip. They implement exactly the traits `coldpack::traits` defines.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use coldpack::bulk::BulkBackend;
use coldpack::fsutil::{atomic_replace, read_bounded};
use coldpack::traits::{ChunkLayout, ColdCatalog, ColdState, HotState, HotView, HotViews};
use coldpack::{Error, Result};
use fixtures::{FixtureReader, FixtureWriter, SynthConfig, WriterOptions, synth_chain};
use storage_traits::Versioned;

pub struct FileCatalog {
    path: PathBuf,
    map: Mutex<BTreeMap<String, String>>,
}

impl FileCatalog {
    pub fn open(path: &Path) -> FileCatalog {
        let mut map = BTreeMap::new();
        if let Some(b) = read_bounded(path, 1 << 24).unwrap() {
            for line in String::from_utf8(b).unwrap().lines() {
                let (k, v) = line.split_once('=').unwrap();
                map.insert(k.to_owned(), v.to_owned());
            }
        }
        FileCatalog {
            path: path.to_path_buf(),
            map: Mutex::new(map),
        }
    }

    fn save(&self, map: &BTreeMap<String, String>) -> Result<()> {
        let text: String = map.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        atomic_replace(&self.path, text.as_bytes())
    }

    fn update(&self, f: impl FnOnce(&mut BTreeMap<String, String>)) -> Result<()> {
        let mut g = self.map.lock().unwrap();
        let mut next = g.clone();
        f(&mut next);
        self.save(&next)?;
        *g = next;
        Ok(())
    }

    pub fn set_hot(&self, chunk: u32, state: Option<HotState>) {
        self.update(|m| {
            let k = format!("hot:chunk:{chunk:08}");
            match state {
                None => {
                    m.remove(&k);
                }
                Some(HotState::Ready) => {
                    m.insert(k, "ready".into());
                }
                Some(HotState::Transient) => {
                    m.insert(k, "transient".into());
                }
            }
        })
        .unwrap()
    }

    pub fn keys(&self) -> BTreeMap<String, String> {
        self.map.lock().unwrap().clone()
    }
}

fn cold_name(s: ColdState) -> &'static str {
    match s {
        ColdState::Freezing => "freezing",
        ColdState::Frozen => "frozen",
        ColdState::Pruning => "pruning",
    }
}

fn parse_cold(s: &str) -> ColdState {
    match s {
        "freezing" => ColdState::Freezing,
        "frozen" => ColdState::Frozen,
        "pruning" => ColdState::Pruning,
        _ => panic!("bad state {s}"),
    }
}

impl ColdCatalog for FileCatalog {
    fn cold_state(&self, chunk: u32, kind: &str) -> Result<Option<ColdState>> {
        let g = self.map.lock().unwrap();
        Ok(g.get(&format!("chunk:{chunk:08}:{kind}"))
            .map(|s| parse_cold(s)))
    }
    fn set_cold(&self, chunk: u32, kinds: &[&str], state: ColdState) -> Result<()> {
        self.update(|m| {
            for k in kinds {
                m.insert(format!("chunk:{chunk:08}:{k}"), cold_name(state).into());
            }
        })
    }
    fn delete_cold(&self, chunk: u32, kind: &str) -> Result<()> {
        self.update(|m| {
            m.remove(&format!("chunk:{chunk:08}:{kind}"));
        })
    }
    fn cold_chunks(&self, kind: &str) -> Result<Vec<(u32, ColdState)>> {
        let g = self.map.lock().unwrap();
        let mut out = Vec::new();
        for (k, v) in g.iter() {
            if let Some(rest) = k.strip_prefix("chunk:")
                && let Some((c, kd)) = rest.split_once(':')
                && kd == kind
            {
                out.push((c.parse().unwrap(), parse_cold(v)));
            }
        }
        Ok(out)
    }
    fn hot_state(&self, chunk: u32) -> Result<Option<HotState>> {
        let g = self.map.lock().unwrap();
        Ok(g.get(&format!("hot:chunk:{chunk:08}"))
            .map(|s| match s.as_str() {
                "ready" => HotState::Ready,
                _ => HotState::Transient,
            }))
    }
}

/// Chunks of `size` heights from 0; packs at `{root}/{kind}/{bucket:05}/{chunk:08}.pack`
/// with buckets of 1000 chunks.
pub struct TestLayout {
    pub root: PathBuf,
    pub size: u32,
}

impl ChunkLayout for TestLayout {
    fn heights(&self, chunk: u32) -> Result<RangeInclusive<u32>> {
        Ok(chunk * self.size..=(chunk + 1) * self.size - 1)
    }
    fn pack_path(&self, kind: &str, chunk: u32) -> Result<PathBuf> {
        Ok(self
            .root
            .join(kind)
            .join(format!("{:05}", chunk / 1000))
            .join(format!("{chunk:08}.pack")))
    }
}

/// Hot stores as fixture directories under `{root}/hot/{chunk:08}`.
pub struct FixtureHot {
    pub root: PathBuf,
    pub opens: AtomicUsize,
}

impl FixtureHot {
    pub fn new(root: &Path) -> Self {
        FixtureHot {
            root: root.join("hot"),
            opens: AtomicUsize::new(0),
        }
    }

    pub fn dir(&self, chunk: u32) -> PathBuf {
        self.root.join(format!("{chunk:08}"))
    }

    /// Fills chunk `chunk`'s hot store with heights `heights` of the chain `cfg`.
    pub fn fill(&self, chunk: u32, cfg: &SynthConfig, heights: RangeInclusive<u32>) {
        let mut opts = WriterOptions::new("test", 1);
        opts.overwrite = true;
        std::fs::create_dir_all(&self.root).unwrap();
        let mut w = FixtureWriter::create(self.dir(chunk), *heights.start(), opts).unwrap();
        for b in synth_chain(cfg) {
            let h = b.header.height().unwrap().0;
            if heights.contains(&h) {
                w.push(&b).unwrap();
            }
        }
        w.finish().unwrap();
    }
}

struct FixtureView(FixtureReader);

impl HotView for FixtureView {
    fn watermark(&self) -> Result<Option<u32>> {
        Ok(self.0.tip())
    }
    fn visit(
        &self,
        heights: RangeInclusive<u32>,
        f: &mut dyn FnMut(u32, &[u8]) -> Result<()>,
    ) -> Result<()> {
        for b in self.0.range(heights)? {
            let b = b?;
            f(b.header.height().unwrap().0, &b.to_bytes())?;
        }
        Ok(())
    }
}

impl HotViews for FixtureHot {
    fn open_view(&self, chunk: u32) -> Result<Box<dyn HotView + '_>> {
        self.opens.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(FixtureView(FixtureReader::open(self.dir(chunk))?)))
    }
}

/// A backend wrapper that counts the heights it serves.
pub struct Counted<B> {
    pub inner: B,
    pub served: AtomicUsize,
}

impl<B: BulkBackend> BulkBackend for Counted<B> {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn tip(&self) -> Result<Option<u32>> {
        self.inner.tip()
    }
    fn visit(
        &self,
        heights: RangeInclusive<u32>,
        f: &mut dyn FnMut(u32, &[u8]) -> Result<()>,
    ) -> Result<()> {
        self.inner.visit(heights, &mut |h, p| {
            self.served.fetch_add(1, Ordering::SeqCst);
            f(h, p)
        })
    }
}

/// Writes the first `blocks` blocks of `cfg`'s chain as a fixture at `dir`.
pub fn write_fixture(dir: &Path, cfg: &SynthConfig, blocks: u32) {
    let mut c = cfg.clone();
    c.blocks = blocks;
    let mut opts = fixtures::synth_writer_options(&c);
    opts.overwrite = true;
    fixtures::write_synth_fixture_with(&c, dir, None, opts, &mut |_| {}).unwrap();
}

pub fn is_loss(e: &Error) -> bool {
    e.is_loss()
}
