//! `strata txoutsetinfo`: what zcashd's `gettxoutsetinfo` prints, plus MuHash3072.

use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};
use storage_traits::capability::DbRead;

use crate::Global;
use crate::output::{display_hash, print_fields, print_json, zec, zec_json};
use crate::progress;
use crate::store::{self, State};

#[derive(Args, Debug)]
pub struct TxOutSetInfoArgs {
    /// Skip MuHash3072 (it is computed by scanning the transparent and spent tables).
    #[arg(long)]
    pub no_muhash: bool,
}

pub fn run(g: &Global, a: TxOutSetInfoArgs) -> Result<()> {
    let state = store::open_existing(g, false)?;
    let v = txoutsetinfo(&state, !a.no_muhash)?;
    if g.json {
        print_json(&v);
    } else {
        print_txoutsetinfo(&v);
    }
    Ok(())
}

/// The `gettxoutsetinfo` fields (hashes as RPCs display them, byte-reversed), the MuHash
/// when asked for, and the summary's freshness.
pub fn txoutsetinfo(state: &State, muhash: bool) -> Result<Value> {
    let status = state.accumulator_status()?;
    let tip = state.tip();
    let best = match tip {
        Some(t) => state.get_block_hash(t)?.map(|h| display_hash(&h.0)),
        None => None,
    };
    let (muhash, recomputed_matches) = if muhash {
        let span = tip.map_or(0, |t| u64::from(t.0) + 1);
        let pb = progress::bar(span, "muhash", "heights");
        let re = state.recompute_txout_set(&mut |h| pb.set_position(u64::from(h.0)));
        pb.finish_and_clear();
        let re = re?;
        (
            re.muhash.map(|m| display_hash(&m)),
            Some(re.info == status.info),
        )
    } else {
        (None, None)
    };
    let i = status.info;
    Ok(json!({
        "height": tip.map(|h| h.0),
        "bestblock": best,
        "transactions": i.transactions,
        "txouts": i.transaction_outputs,
        "bytes_serialized": i.bytes_serialized,
        "hash_serialized": display_hash(&i.hash_serialized),
        "total_amount": zec_json(i.total_zatoshis),
        "total_zatoshis": i.total_zatoshis,
        "muhash": muhash,
        "accumulator_built_height": status.built_height.map(|h| h.0),
        "accumulator_fresh": status.freshness.is_fresh(),
        "recomputed_matches_stored": recomputed_matches,
    }))
}

pub fn print_txoutsetinfo(v: &Value) {
    let s = |k: &str| match &v[k] {
        Value::Null => "none".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    println!("txoutsetinfo");
    let mut fields = vec![
        ("height", s("height")),
        ("bestblock", s("bestblock")),
        ("transactions", s("transactions")),
        ("txouts", s("txouts")),
        ("bytes_serialized", s("bytes_serialized")),
        ("hash_serialized", s("hash_serialized")),
        (
            "total_amount",
            format!("{} ZEC", zec(v["total_zatoshis"].as_u64().unwrap_or(0))),
        ),
    ];
    if !v["muhash"].is_null() {
        fields.push(("muhash", s("muhash")));
    }
    fields.push((
        "summary",
        format!(
            "built to height {}, {}{}",
            s("accumulator_built_height"),
            if v["accumulator_fresh"].as_bool() == Some(true) {
                "fresh"
            } else {
                "stale"
            },
            match v["recomputed_matches_stored"].as_bool() {
                Some(true) => "; equals the set recomputed from the tables",
                Some(false) =>
                    "; DIFFERS from the set recomputed from the tables (run `strata verify`)",
                None => "",
            }
        ),
    ));
    print_fields(&fields);
}
