//! `cargo xtask fixtures zebra --out DIR`: the real Zcash blocks of the `zebra-test` crate as
//! fixture directories, one per contiguous run of heights, `DIR/<network>/<first>-<last>/`.
//!
//! The conversion itself lives in `xtask/zebra` (package `zebra-vectors`), a workspace of its
//! own: it needs the Zcash crates (`zcash_primitives` and friends), whose proc macros would
//! change the `syn` features RocksDB's bindgen build script is compiled with, and so force a
//! recompile of every cached RocksDB C++ build if they joined Strata's resolve. This module
//! runs it (`cargo run --manifest-path xtask/zebra/Cargo.toml`, in the same target
//! directory) and reads back what it wrote. How each field is derived is documented in
//! `xtask/zebra/src/main.rs` and the xtask README.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Result;

/// Options of `cargo xtask fixtures zebra`.
#[derive(clap::Args, Debug)]
pub struct ZebraArgs {
    /// The directory to write: one fixture per contiguous run under `<network>/<first>-<last>`.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace existing fixtures there.
    #[arg(long)]
    pub force: bool,
}

/// The converter's manifest.
pub fn manifest_path() -> PathBuf {
    crate::bench_report::workspace_root().join("xtask/zebra/Cargo.toml")
}

/// Builds (profile `zebra`: a dev build in its own profile directory, see the converter's
/// Cargo.toml) and runs the converter into `out`.
pub fn convert(out: &Path, force: bool) -> Result<()> {
    let root = crate::bench_report::workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args([
            "run",
            "--quiet",
            "--locked",
            "--profile",
            "zebra",
            "--manifest-path",
        ])
        .arg(manifest_path())
        .arg("--")
        .arg("--out")
        .arg(out);
    if force {
        cmd.arg("--force");
    }
    // The same target directory as the caller's (its units never collide with the
    // workspace's: a different resolve gives different hashes).
    if std::env::var_os("CARGO_TARGET_DIR").is_none() {
        cmd.env("CARGO_TARGET_DIR", root.join("target"));
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run cargo for {}: {e}", manifest_path().display()))?;
    if !status.success() {
        return Err(format!("the zebra-vectors converter failed ({status})").into());
    }
    Ok(())
}

/// One converted run, as its fixture's manifest describes it.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// `mainnet` or `testnet`.
    pub network: String,
    pub dir: PathBuf,
    pub first: u32,
    pub last: u32,
    /// Chain work counted from genesis (else from the run's first block).
    pub chainwork_from_genesis: bool,
    /// Sapling / Orchard tree sizes are the chain's (else counted from the run's start).
    pub sapling_sizes_absolute: bool,
    pub orchard_sizes_absolute: bool,
    /// `(height, size)`: a Sapling tree size read from zcashd's serialised tree state.
    pub sapling_tree_size_check: Option<(u32, u64)>,
}

/// Every fixture under `out/<network>/`, in network then height order.
pub fn runs(out: &Path) -> Result<Vec<RunInfo>> {
    let mut found = Vec::new();
    for network in ["mainnet", "testnet"] {
        let dir = out.join(network);
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("MANIFEST").is_file())
            .collect();
        dirs.sort();
        for d in dirs {
            let reader = fixtures::FixtureReader::open(&d)?;
            let m = reader.manifest();
            let meta = |k: &str| m.get(k).unwrap_or("");
            if m.generator != "zebra-test" || meta("network") != network {
                return Err(format!("{}: not a zebra-test {network} fixture", d.display()).into());
            }
            let first = reader.start_height();
            let sapling_tree_size_check = m.entries.iter().find_map(|(k, v)| {
                let h = k.strip_prefix("check.sapling_tree_size.")?;
                Some((h.parse().ok()?, v.parse().ok()?))
            });
            found.push(RunInfo {
                network: network.to_string(),
                first,
                last: reader.tip().unwrap_or(first),
                chainwork_from_genesis: meta("chainwork_base") == "genesis",
                sapling_sizes_absolute: meta("sapling_tree_size") == "absolute",
                orchard_sizes_absolute: meta("orchard_tree_size") == "absolute",
                sapling_tree_size_check,
                dir: d,
            });
        }
    }
    Ok(found)
}

/// `cargo xtask fixtures zebra`.
pub fn run(args: ZebraArgs) -> Result<()> {
    convert(&args.out, args.force)?;
    let runs = runs(&args.out)?;
    eprintln!(
        "zebra: {} fixtures under {}",
        runs.len(),
        args.out.display()
    );
    Ok(())
}
