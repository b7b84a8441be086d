//! The hot and cold tiers of a data directory (feature `tiers`, through the `tiered`
//! crate): per-chunk hot stores for the newest heights, frozen `.pack` files for finished
//! chunks, and the content-addressed store with its snapshots.
//!
//! A data directory is *tiered* when it holds [`CONF_FILE`]: the chunk geometry the CLI
//! created the tiers with (the catalog pins it too, and refuses another; the file is how
//! the CLI knows which to ask for). Without the feature, the commands that need the tiers
//! say so in one line. The hot stores are RocksDB, which is why the tiers are a feature (on
//! by default): `--no-default-features --features redb` builds a tool that compiles no C++.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::Global;

/// The CLI's record of a tiered data directory's geometry.
pub const CONF_FILE: &str = "strata-tiers.conf";

/// The chunk geometry of a tiered data directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TierConf {
    pub first_height: u32,
    pub chunk_size: u32,
    pub chunks_per_bucket: u32,
}

impl TierConf {
    /// Version 1 of the file: `key=value` lines, `#` comments.
    #[cfg_attr(not(feature = "tiers"), allow(dead_code))]
    fn to_text(self) -> String {
        format!(
            "# strata: the chunk geometry of this data directory's tiers (pinned in the catalog)\n\
             format=1\nfirst_height={}\nchunk_size={}\nchunks_per_bucket={}\n",
            self.first_height, self.chunk_size, self.chunks_per_bucket
        )
    }

    fn parse(path: &Path, text: &str) -> Result<TierConf> {
        let mut format = None;
        let (mut first, mut size, mut per_bucket) = (None, None, None);
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || {
                anyhow::anyhow!(
                    "{} line {}: expected key=value with a number, found {line:?}",
                    path.display(),
                    n + 1
                )
            };
            let (k, v) = line.split_once('=').ok_or_else(bad)?;
            let v: u32 = v.trim().parse().map_err(|_| bad())?;
            match k.trim() {
                "format" => format = Some(v),
                "first_height" => first = Some(v),
                "chunk_size" => size = Some(v),
                "chunks_per_bucket" => per_bucket = Some(v),
                other => bail!("{} line {}: unknown key {other:?}", path.display(), n + 1),
            }
        }
        if format != Some(1) {
            bail!(
                "{}: format {format:?} is not one this build reads (1)",
                path.display()
            );
        }
        match (first, size, per_bucket) {
            (Some(first_height), Some(chunk_size), Some(chunks_per_bucket)) => Ok(TierConf {
                first_height,
                chunk_size,
                chunks_per_bucket,
            }),
            _ => bail!(
                "{}: needs first_height, chunk_size and chunks_per_bucket",
                path.display()
            ),
        }
    }
}

/// The tier configuration of `data_dir`, `None` when it is not tiered.
pub fn read_conf(data_dir: &Path) -> Result<Option<TierConf>> {
    let path = data_dir.join(CONF_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => TierConf::parse(&path, &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Records `conf` for `data_dir` (temp file, fsync, rename, fsync the directory).
#[cfg_attr(not(feature = "tiers"), allow(dead_code))]
pub fn write_conf(data_dir: &Path, conf: TierConf) -> Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let path = data_dir.join(CONF_FILE);
    let tmp = data_dir.join(format!("{CONF_FILE}.tmp"));
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(conf.to_text().as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
    std::fs::File::open(data_dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", data_dir.display()))?;
    Ok(())
}

/// The error of a command that needs the tiers in a build without them.
#[cfg(not(feature = "tiers"))]
pub fn unavailable(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} needs the hot and cold tiers, which this build of strata leaves out (their \
         hot stores are RocksDB): rebuild with `--features tiers` (or `--features rocksdb`)"
    )
}

/// The error of a command that needs a tiered data directory.
#[cfg_attr(not(feature = "tiers"), allow(dead_code))]
pub fn not_tiered(g: &Global, what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what}: {} has no hot and cold tiers ({CONF_FILE} is missing); `strata demo` in a \
         build with the `tiers` feature creates a tiered store",
        g.data_dir.display()
    )
}

#[cfg(feature = "tiers")]
pub use imp::*;

#[cfg(feature = "tiers")]
mod imp {
    use std::sync::Arc;

    use anyhow::{Context, Result};
    use serde_json::{Value, json};
    use tiered::{Geometry, TieredConfig, TieredStore};

    use super::{TierConf, read_conf, write_conf};
    use crate::Global;
    use crate::store;

    /// Opens the tiered store of `g.data_dir` with `conf` (Lazy validation: commands that
    /// validate do it with a progress bar). `backend`: a fixture directory backfills may
    /// read from.
    pub fn open_with(
        g: &Global,
        conf: TierConf,
        backend: Option<&std::path::Path>,
    ) -> Result<TieredStore> {
        store::check_current(g)?;
        let mut cfg = TieredConfig::new(&g.data_dir);
        cfg.geometry = Geometry::new(conf.first_height, conf.chunk_size, conf.chunks_per_bucket)
            .context("the chunk geometry")?;
        cfg.network = g.network;
        cfg.open_validation = finalised_state::OpenValidation::Lazy;
        let backend: Option<Arc<dyn tiered::BulkBackend>> = backend
            .map(|d| Arc::new(tiered::LocalDirBackend::new(d)) as Arc<dyn tiered::BulkBackend>);
        TieredStore::open(cfg, backend).context("opening the tiered store")
    }

    /// Opens the tiered store of `g.data_dir`, `None` when it is not tiered.
    pub fn open_existing(g: &Global) -> Result<Option<TieredStore>> {
        match read_conf(&g.data_dir)? {
            None => Ok(None),
            Some(conf) => open_with(g, conf, None).map(Some),
        }
    }

    /// Creates the tiers of a new data directory with chunks of `chunk_size` heights from
    /// `first_height`.
    pub fn create(
        g: &Global,
        first_height: u32,
        chunk_size: u32,
        backend: Option<&std::path::Path>,
    ) -> Result<TieredStore> {
        let conf = TierConf {
            first_height,
            chunk_size,
            chunks_per_bucket: hotchunk_default_per_bucket(),
        };
        // Check the geometry before recording it.
        Geometry::new(conf.first_height, conf.chunk_size, conf.chunks_per_bucket)
            .context("the chunk geometry")?;
        write_conf(&g.data_dir, conf)?;
        open_with(g, conf, backend)
    }

    fn hotchunk_default_per_bucket() -> u32 {
        Geometry::ZCASH.chunks_per_bucket()
    }

    fn state_name<T: std::fmt::Debug>(s: Option<T>) -> String {
        s.map_or_else(|| "-".to_owned(), |s| format!("{s:?}").to_lowercase())
    }

    /// Chunk states as JSON rows and as text lines.
    pub fn chunk_rows(t: &TieredStore) -> Result<(Value, Vec<String>)> {
        let chunks = t.chunk_states()?;
        let mut rows = Vec::new();
        let mut lines = Vec::new();
        for c in &chunks {
            rows.push(json!({
                "chunk": c.chunk,
                "first_height": c.heights.start(),
                "last_height": c.heights.end(),
                "hot": c.hot.map(|s| format!("{s:?}").to_lowercase()),
                "cold": c.cold.iter().map(|(k, s)| (k.clone(), json!(s.map(|s| format!("{s:?}").to_lowercase())))).collect::<serde_json::Map<_, _>>(),
            }));
            let cold: Vec<String> = c
                .cold
                .iter()
                .map(|(k, s)| format!("{k} {}", state_name(*s)))
                .collect();
            lines.push(format!(
                "chunk {:>5}  heights {:>8}..={:<8}  hot {:<9}  {}",
                c.chunk,
                c.heights.start(),
                c.heights.end(),
                state_name(c.hot),
                cold.join(", ")
            ));
        }
        Ok((Value::Array(rows), lines))
    }

    /// What ingesting a fixture through the tiers did.
    pub struct IngestSummary {
        pub first: Option<u32>,
        pub written: u64,
        pub tip: Option<u32>,
        pub secs: f64,
        /// The background lifecycle during the ingest.
        pub lifecycle: tiered::LifecycleStats,
        /// The tick after it (freezes the chunk that closed last, if the thread had not).
        pub last_tick: tiered::Report,
    }

    /// Ingests the fixture's blocks above the tip (up to `to`) height by height: each into
    /// the finalised state and its chunk's hot store, with the background lifecycle
    /// freezing every chunk that closes; then one more tick.
    pub fn ingest_fixture(
        t: &TieredStore,
        reader: &fixtures::FixtureReader,
        to: Option<u32>,
    ) -> Result<IngestSummary> {
        let started = std::time::Instant::now();
        let Some(fixture_tip) = reader.tip() else {
            anyhow::bail!("the fixture {} holds no blocks", reader.dir().display());
        };
        let end = to.map_or(fixture_tip, |x| x.min(fixture_tip));
        let first = t.next_height();
        if first < reader.start_height() {
            anyhow::bail!(
                "the store's next height {first} is below the fixture's first height {}",
                reader.start_height()
            );
        }
        if first > end {
            return Ok(IngestSummary {
                first: None,
                written: 0,
                tip: t.tip(),
                secs: started.elapsed().as_secs_f64(),
                lifecycle: tiered::LifecycleStats::default(),
                last_tick: tiered::Report::default(),
            });
        }
        let lifecycle = t.start_lifecycle();
        let pb = crate::progress::bar(u64::from(end - first + 1), "ingesting", "blocks");
        let mut result: Result<()> = Ok(());
        let mut written = 0u64;
        let geometry = t.geometry();
        match reader.range(first..=end) {
            Err(e) => result = Err(e.into()),
            Ok(blocks) => {
                for (h, b) in (first..=end).zip(blocks) {
                    let r = b
                        .with_context(|| format!("reading {}", reader.dir().display()))
                        .and_then(|b| t.ingest(b).with_context(|| format!("ingesting height {h}")));
                    if let Err(e) = r {
                        result = Err(e);
                        break;
                    }
                    written += 1;
                    pb.inc(1);
                    if let Ok(c) = geometry.chunk_of(h) {
                        pb.set_message(format!("chunk {}", c.0));
                    }
                }
            }
        }
        pb.finish_and_clear();
        let spinner = crate::progress::spinner("freezing", "the chunks that closed last");
        let stats = lifecycle.stop();
        let last_tick = if result.is_ok() { Some(t.tick()) } else { None };
        spinner.finish_and_clear();
        result?;
        let lifecycle = stats.context("the background lifecycle")?;
        let last_tick = match last_tick {
            Some(r) => r.context("the last lifecycle tick")?,
            None => tiered::Report::default(),
        };
        Ok(IngestSummary {
            first: Some(first),
            written,
            tip: t.tip(),
            secs: started.elapsed().as_secs_f64(),
            lifecycle,
            last_tick,
        })
    }

    /// Reads `height` through the tiers' routing and checks it against the finalised
    /// state's block: returns which tier served it.
    pub fn routed_read(t: &TieredStore, height: u32) -> Result<tiered::Tier> {
        use storage_traits::Versioned;
        use storage_traits::capability::IndexedBlockExt;
        let (tier, payload) = t
            .read_routed(height)
            .with_context(|| format!("reading height {height} through the tiers"))?;
        let block = storage_traits::model::IndexedBlock::from_bytes(&payload)
            .with_context(|| format!("decoding the payload of height {height}"))?;
        let expected = t
            .finalised()
            .get_chain_block(storage_traits::model::Height(height))?;
        if expected.as_ref() != Some(&block) {
            anyhow::bail!(
                "height {height}: the {tier:?} tier's payload differs from the finalised state's block"
            );
        }
        Ok(tier)
    }

    /// Verifies the tiers: every pack main names re-hashed, and catalog, files and refs in
    /// agreement. Returns the number of packs checked.
    pub fn verify(t: &TieredStore) -> Result<usize> {
        let packs = t.verify().context("verifying the packs")?;
        let disagreements = t
            .disagreements()
            .context("comparing catalog, files and refs")?;
        if !disagreements.is_empty() {
            anyhow::bail!(
                "the tiers disagree: {}",
                crate::one_line(&disagreements.join("; "))
            );
        }
        Ok(packs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_round_trips_and_refuses_what_it_does_not_know() {
        let c = TierConf {
            first_height: 0,
            chunk_size: 1_000,
            chunks_per_bucket: 1_000,
        };
        let p = Path::new("x");
        assert_eq!(TierConf::parse(p, &c.to_text()).unwrap(), c);
        let newer = c.to_text().replace("format=1", "format=2");
        assert!(TierConf::parse(p, &newer).is_err());
        assert!(TierConf::parse(p, "format=1\nchunk_size=10\n").is_err());
        assert!(TierConf::parse(p, &format!("{}colour=3\n", c.to_text())).is_err());
        assert!(TierConf::parse(p, "format=1\nchunk_size=ten\n").is_err());
    }
}
