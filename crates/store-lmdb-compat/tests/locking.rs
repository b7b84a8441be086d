//! A store held open elsewhere is `Error::Locked`: by another process (RocksDB's `LOCK`
//! file), and by another handle in this process.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use storage_traits::Error;
use storage_traits::kv::TableSpec;

const HOLDER_ENV: &str = "STORE_LMDB_COMPAT_LOCK_HOLDER_DIR";

fn tables() -> Vec<TableSpec> {
    vec![TableSpec::plain("locked_1_0_0")]
}

/// In the child: open the store, say so, and keep it open until the parent closes stdin.
fn hold_lock_if_child() -> bool {
    let Ok(dir) = std::env::var(HOLDER_ENV) else {
        return false;
    };
    let _store = store_lmdb_compat::open(dir.as_ref(), &tables()).unwrap();
    println!("holding");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    true
}

#[test]
fn second_process_gets_locked() {
    if hold_lock_if_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["second_process_gets_locked", "--exact", "--nocapture"])
        .env(HOLDER_ENV, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let held = lines.any(|l| l.map(|l| l.trim() == "holding").unwrap_or(false));
    assert!(held, "the child never opened the store");

    let err = store_lmdb_compat::open(dir.path(), &tables()).unwrap_err();
    match &err {
        Error::Locked { path } => assert_eq!(path, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }

    // Once the holder exits, the store opens.
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    drop(store_lmdb_compat::open(dir.path(), &tables()).unwrap());
}

#[test]
fn second_handle_in_process_gets_locked() {
    let dir = tempfile::tempdir().unwrap();
    let first = store_lmdb_compat::open(dir.path(), &tables()).unwrap();
    let err = store_lmdb_compat::open(dir.path(), &tables()).unwrap_err();
    assert!(
        matches!(&err, Error::Locked { path } if path == dir.path()),
        "{err:?}"
    );
    drop(first);
    drop(store_lmdb_compat::open(dir.path(), &tables()).unwrap());
}
