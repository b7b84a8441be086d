//! The real `strata` binary against small synthetic stores: every command's happy path,
//! `--json` that parses, corruption that `verify` reports, and bad input that gets one
//! clear line and a non-zero exit.
//!
//! Each test builds its own store (commands lock the store, so tests that shared one would
//! race); the fixture directory they sync from is generated once.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use finalised_state::{Backend, Config, DefaultBackend, Network};
use serde_json::Value;
use storage_traits::Durability;
use storage_traits::TableKey;
use storage_traits::kv::{KvRead, KvStore, KvWrite};
use storage_traits::model::Height;
use storage_traits::table::{Headers, Table, TxOutSetAccumulator, V1_TABLES};

const BLOCKS: u32 = 60;

/// A 60-block synthetic chain (no spam band), generated once per test binary.
fn fixture() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("fixture");
        let cfg = fixtures::SynthConfig::new(BLOCKS, 7);
        fixtures::write_synth_fixture(&cfg, &dir, None, false, &mut |_| {}).unwrap();
        (tmp, dir)
    })
    .1
}

fn strata(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("STRATA_DATA_DIR")
        .output()
        .expect("run strata")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a command that must succeed; returns its stdout.
fn ok(data: &Path, args: &[&str]) -> String {
    let o = strata(data, args);
    assert!(
        o.status.success(),
        "strata {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// Runs a command with `--json` that must succeed and print one JSON document.
fn json(data: &Path, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let out = ok(data, &a);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("strata {a:?}: not JSON ({e}): {out}"))
}

/// Runs a command that must fail with `code` and exactly one line on stderr; returns it.
fn fails(data: &Path, args: &[&str], code: i32) -> String {
    let o = strata(data, args);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "strata {args:?}: expected exit {code}; stdout: {} stderr: {err}",
        stdout(&o)
    );
    assert_eq!(
        err.lines().count(),
        1,
        "strata {args:?}: not one line: {err:?}"
    );
    assert!(err.starts_with("strata: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn synced() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let from = fixture().to_str().unwrap().to_owned();
    ok(data.path(), &["sync", "--from", &from]);
    data
}

#[test]
fn sync_then_every_read_command() {
    let data = synced();
    let d = data.path();

    // A second sync finds nothing new; --json parses.
    let again = json(d, &["sync", "--from", fixture().to_str().unwrap()]);
    assert_eq!(again["blocks_written"], 0);
    assert_eq!(again["tip"], BLOCKS - 1);

    let status = json(d, &["status"]);
    assert_eq!(status["tip"], BLOCKS - 1);
    assert_eq!(status["validated_tip"], BLOCKS - 1);
    assert_eq!(status["version"], "1.2.0");
    let headers_rows: u64 = status["tables"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.starts_with("headers"))
        .map(|(_, v)| v.as_u64().unwrap())
        .unwrap();
    assert_eq!(headers_rows, u64::from(BLOCKS));
    let lazy = json(d, &["status", "--lazy"]);
    assert_eq!(lazy["validated_tip"], Value::Null);
    assert!(ok(d, &["status"]).contains("validated tip"));

    let verify = json(d, &["verify"]);
    assert_eq!(verify["ok"], true);
    assert_eq!(verify["blocks_validated"], BLOCKS);
    assert_eq!(verify["txout_set"]["stored_matches_recomputed"], true);
    assert!(ok(d, &["verify"]).contains("validated"));

    // Blocks by height and by hash agree.
    let b = json(d, &["get", "block", "10"]);
    assert_eq!(b["height"], 10);
    let hash = b["hash"].as_str().unwrap().to_owned();
    let by_hash = json(d, &["get", "block", &hash]);
    assert_eq!(by_hash, b);
    assert!(ok(d, &["get", "block", "10"]).contains(&hash));

    // A transaction with transparent outputs, its outpoint and the address it pays.
    let mut found = None;
    for h in (1..BLOCKS).rev() {
        let b = json(d, &["get", "block", &h.to_string()]);
        for txid in b["tx"].as_array().unwrap() {
            let tx = json(d, &["get", "tx", txid.as_str().unwrap()]);
            let pays = tx["vout"]
                .as_array()
                .unwrap()
                .iter()
                .position(|o| o["address"].as_str().is_some_and(|a| a.starts_with('t')));
            if let Some(n) = pays {
                found = Some((tx, n));
                break;
            }
        }
        if found.is_some() {
            break;
        }
    }
    let (tx, n) = found.expect("a transaction with a transparent output");
    let txid = tx["txid"].as_str().unwrap();
    assert!(ok(d, &["get", "tx", txid]).contains(txid));
    let op = json(d, &["get", "outpoint", &format!("{txid}:{n}")]);
    assert_eq!(op["valueZat"], tx["vout"][n]["valueZat"]);
    assert_eq!(op["address"], tx["vout"][n]["address"]);
    let addr = op["address"].as_str().unwrap();
    assert!(addr.starts_with("tm") || addr.starts_with("t2"), "{addr}");
    let a = json(d, &["get", "address", addr]);
    assert_eq!(a["address"], addr);
    assert!(a["events"].as_u64().unwrap() >= 1);
    assert!(a["receivedZat"].as_u64().unwrap() >= op["valueZat"].as_u64().unwrap());
    assert!(ok(d, &["get", "address", addr]).contains("balance"));
    assert!(ok(d, &["get", "outpoint", &format!("{txid}:{n}")]).contains("value"));

    // txoutsetinfo: zcashd's fields, the MuHash, and agreement with the recomputed set.
    let info = json(d, &["txoutsetinfo"]);
    for field in [
        "height",
        "bestblock",
        "transactions",
        "txouts",
        "bytes_serialized",
        "hash_serialized",
        "total_amount",
    ] {
        assert!(!info[field].is_null(), "txoutsetinfo lacks {field}: {info}");
    }
    assert_eq!(info["height"], BLOCKS - 1);
    assert_eq!(
        info["bytes_serialized"].as_u64().unwrap(),
        info["txouts"].as_u64().unwrap() * 65
    );
    assert_eq!(info["muhash"].as_str().unwrap().len(), 64);
    assert_eq!(info["recomputed_matches_stored"], true);
    let text = ok(d, &["txoutsetinfo"]);
    assert!(
        text.contains("hash_serialized") && text.contains("muhash"),
        "{text}"
    );
    let quick = json(d, &["txoutsetinfo", "--no-muhash"]);
    assert_eq!(quick["muhash"], Value::Null);
    assert_eq!(quick["hash_serialized"], info["hash_serialized"]);

    // A current store has nothing to migrate.
    let plan = json(d, &["migrate", "--dry-run"]);
    assert_eq!(plan["steps"].as_array().unwrap().len(), 0);
    assert!(ok(d, &["migrate"]).contains("nothing to do"));
}

#[test]
fn demo_runs_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let dir_s = dir.to_str().unwrap();
    let out = ok(
        tmp.path(),
        &["demo", "--dir", dir_s, "--blocks", "40", "--no-spam"],
    );
    assert!(
        out.contains("txoutsetinfo") && out.contains("muhash"),
        "{out}"
    );
    // Rerunning replaces the earlier demo; --json parses.
    let v = json(
        tmp.path(),
        &[
            "demo",
            "--dir",
            dir_s,
            "--blocks",
            "30",
            "--no-spam",
            "--seed",
            "3",
        ],
    );
    assert_eq!(v["blocks"], 30);
    assert_eq!(v["txoutsetinfo"]["height"], 29);
    assert_eq!(v["txoutsetinfo"]["recomputed_matches_stored"], true);
    // The store it leaves is the data directory of every other command.
    assert_eq!(json(&dir, &["status", "--lazy"])["tip"], 29);
    // A directory that is not a demo's is refused.
    let other = tmp.path().join("precious");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("keep"), b"x").unwrap();
    let err = fails(
        tmp.path(),
        &["demo", "--dir", other.to_str().unwrap(), "--blocks", "5"],
        1,
    );
    assert!(err.contains("not a demo directory"), "{err}");
    assert!(other.join("keep").exists());
}

/// The raw backend under the store of data directory `d`.
fn raw_store(d: &Path) -> DefaultBackend {
    let cfg = Config::new(d.join("finalised"), Network::Regtest);
    DefaultBackend::open_in(
        &cfg.store_dir().join(<DefaultBackend as Backend>::NAME),
        V1_TABLES,
    )
    .unwrap()
}

#[test]
fn verify_names_table_key_and_height_of_a_flipped_byte() {
    let data = synced();
    let d = data.path();
    ok(d, &["verify"]);
    let key = Height(7).encode_key();
    {
        let store = raw_store(d);
        let r = store.begin_read().unwrap();
        let mut value = r.get(Headers::NAME, &key).unwrap().unwrap();
        drop(r);
        let mid = value.len() / 2;
        value[mid] ^= 0x01;
        let mut w = store.begin_write().unwrap();
        w.put(Headers::NAME, &key, &value).unwrap();
        w.commit(Durability::Synced).unwrap();
    }
    let err = fails(d, &["verify"], 1);
    assert!(err.contains(Headers::NAME), "{err}");
    assert!(err.contains(&hex::encode(key)), "{err}");
    assert!(err.contains("height 7"), "{err}");
    // JSON mode fails the same way (the error is not JSON on stdout).
    let o = strata(d, &["verify", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    // Reading the damaged block fails with the same naming; other blocks still read.
    let err = fails(d, &["get", "block", "7"], 1);
    assert!(
        err.contains(Headers::NAME) && err.contains("height 7"),
        "{err}"
    );
    ok(d, &["get", "block", "3"]);
}

#[test]
fn verify_catches_a_wrong_txout_summary() {
    let data = synced();
    let d = data.path();
    {
        use storage_traits::TableWrite;
        use storage_traits::table::ACCUMULATOR_KEY;
        let store = raw_store(d);
        let r = store.begin_read().unwrap();
        let mut info =
            storage_traits::TableRead::get_row::<TxOutSetAccumulator>(&r, &ACCUMULATOR_KEY)
                .unwrap()
                .unwrap();
        drop(r);
        // A consistent-looking but wrong summary (a missed update), checksummed correctly.
        info.total_zatoshis += 1;
        let mut w = store.begin_write().unwrap();
        w.put_row::<TxOutSetAccumulator>(&ACCUMULATOR_KEY, info)
            .unwrap();
        w.commit(Durability::Synced).unwrap();
    }
    let err = fails(d, &["verify"], 1);
    assert!(err.contains(TxOutSetAccumulator::NAME), "{err}");
    assert!(err.contains("recomputed"), "{err}");
    let info = json(d, &["txoutsetinfo"]);
    assert_eq!(info["recomputed_matches_stored"], false);
}

#[test]
fn migrate_an_old_store() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    {
        let blocks = fixtures::FixtureReader::open(fixture())
            .unwrap()
            .iter()
            .map(|b| b.unwrap())
            .collect::<Vec<_>>();
        let cfg = Config::new(d.join("finalised"), Network::Regtest);
        std::fs::create_dir_all(cfg.store_dir()).unwrap();
        let store = raw_store(d);
        migrations::fixture::write_v1_store(&store, blocks, migrations::fixture::V1Fixture::V1_1)
            .unwrap();
    }
    // Read commands refuse an old store with what to run; status says what it is.
    let err = fails(d, &["get", "block", "1"], 1);
    assert!(err.contains("strata migrate"), "{err}");
    let status = json(d, &["status"]);
    assert_eq!(status["needs_migration"], true);
    assert_eq!(status["version"], "1.1.0");

    let plan = json(d, &["migrate", "--dry-run"]);
    assert_eq!(plan["from"], "1.1.0");
    assert_eq!(plan["target"], "1.2.0");
    let steps = plan["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0]["from"], "1.1.0");
    assert_eq!(steps[0]["to"], "1.2.0");
    let text = ok(d, &["migrate", "--dry-run"]);
    assert!(text.contains("1.1.0 -> 1.2.0"), "{text}");
    // The dry run changed nothing.
    assert_eq!(json(d, &["status"])["version"], "1.1.0");

    let done = json(d, &["migrate"]);
    assert_eq!(done["migrated"], true);
    assert_eq!(done["version"], "1.2.0");
    let v = json(d, &["verify"]);
    assert_eq!(v["blocks_validated"], BLOCKS);
    assert_eq!(v["txout_set"]["stored_matches_recomputed"], true);
}

#[test]
fn bad_input_gets_one_clear_line() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    // No store yet.
    let err = fails(d, &["status"], 1);
    assert!(err.contains("no ") && err.contains("store at"), "{err}");
    fails(d, &["verify"], 1);
    fails(d, &["txoutsetinfo"], 1);
    // Argument errors: exit 2.
    let err = fails(d, &["frobnicate"], 2);
    assert!(err.contains("frobnicate"), "{err}");
    let err = fails(d, &["--network", "moonnet", "status"], 2);
    assert!(err.contains("moonnet"), "{err}");
    let err = fails(d, &["sync"], 2);
    assert!(err.contains("--from"), "{err}");
    // Values clap cannot check: exit 1, before any store is needed.
    let err = fails(d, &["get", "block", "xyz"], 1);
    assert!(err.contains("xyz"), "{err}");
    let err = fails(d, &["get", "tx", "abcd"], 1);
    assert!(err.contains("64 hex digits"), "{err}");
    let err = fails(d, &["get", "outpoint", "nocolon"], 1);
    assert!(err.contains("TXID:VOUT"), "{err}");
    let err = fails(d, &["get", "address", "t1NotAnAddress0"], 1);
    assert!(err.contains("t1NotAnAddress0"), "{err}");
    let missing = d.join("missing");
    let err = fails(d, &["sync", "--from", missing.to_str().unwrap()], 1);
    assert!(err.contains("missing"), "{err}");

    // With a store: things that are not there.
    let data = synced();
    let d = data.path();
    let err = fails(d, &["get", "block", "100000"], 1);
    assert!(err.contains("100000"), "{err}");
    let zeros = "00".repeat(32);
    let err = fails(d, &["get", "tx", &zeros], 1);
    assert!(err.contains("not in the store"), "{err}");
    // Help is not an error.
    assert!(ok(d, &["--help"]).contains("demo"));
}

/// The hot and cold tiers: the demo ingests through them with small chunks, every closed
/// chunk is frozen, status shows the chunk states, verify re-hashes the packs (and names a
/// damaged one), snapshots keep packs, GC and the lifecycle commands run.
#[cfg(feature = "tiers")]
#[test]
fn tiered_demo_freeze_snapshots_gc() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let d = dir.as_path();
    let v = json(
        tmp.path(),
        &[
            "demo",
            "--dir",
            d.to_str().unwrap(),
            "--blocks",
            "45",
            "--no-spam",
            "--chunk-size",
            "10",
        ],
    );
    assert_eq!(v["tiers"], true);
    // 2 kinds (blocks, txids) for each of the 4 closed chunks.
    assert_eq!(v["packs_verified"], 8);
    let routing = v["routing"].as_array().unwrap();
    assert!(routing[0].as_str().unwrap().contains("cold"), "{routing:?}");
    assert!(routing[1].as_str().unwrap().contains("hot"), "{routing:?}");

    let status = json(d, &["status"]);
    let chunks = status["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 5, "{chunks:?}");
    for c in &chunks[..4] {
        assert_eq!(c["cold"]["blocks"], "frozen", "{c}");
        assert_eq!(
            c["hot"],
            Value::Null,
            "hot store discarded once frozen: {c}"
        );
    }
    assert_eq!(chunks[4]["hot"], "ready");
    assert_eq!(chunks[4]["cold"]["blocks"], Value::Null);
    assert!(ok(d, &["status"]).contains("chunk"));

    // Nothing left to freeze; the plan and the tick say so.
    let plan = json(d, &["freeze", "--dry-run"]);
    assert_eq!(plan["freeze"].as_array().unwrap().len(), 0);
    let tick = json(d, &["freeze"]);
    assert_eq!(tick["frozen"].as_array().unwrap().len(), 0);

    // Snapshots.
    let s = json(d, &["snapshot", "create", "before-gc"]);
    assert_eq!(s["packs"], 8);
    let list = json(d, &["snapshot", "list"]);
    assert_eq!(list[0]["name"], "before-gc");
    let err = fails(d, &["snapshot", "create", "before-gc"], 1);
    assert!(err.contains("exists"), "{err}");
    let err = fails(d, &["snapshot", "create", "bad/name"], 1);
    assert!(err.contains("bad/name"), "{err}");
    json(d, &["gc"]);
    json(d, &["snapshot", "delete", "before-gc"]);
    assert_eq!(json(d, &["snapshot", "list"]), serde_json::json!([]));
    fails(d, &["snapshot", "delete", "before-gc"], 1);
    json(d, &["verify"]);

    // A flipped byte in a pack: verify names it.
    let pack = d.join("blocks").join("00000").join("00000001.pack");
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[10] ^= 0x40;
    // The canonical file is one inode with its object: rewrite in place.
    std::fs::write(&pack, &bytes).unwrap();
    let err = fails(d, &["verify"], 1);
    assert!(err.contains("blocks") && err.contains("chunk 1"), "{err}");
}

#[cfg(not(feature = "tiers"))]
#[test]
fn tier_commands_say_what_the_build_lacks() {
    let data = synced();
    for args in [&["freeze"][..], &["gc"], &["snapshot", "list"]] {
        let err = fails(data.path(), args, 1);
        assert!(err.contains("--features tiers"), "{err}");
    }
    let status = json(data.path(), &["status"]);
    assert_eq!(status["chunks"], Value::Null);
}
