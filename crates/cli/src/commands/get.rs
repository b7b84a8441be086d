//! `strata get block|tx|outpoint|address`.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::{Value, json};
use storage_traits::capability::*;
use storage_traits::model::*;

use crate::Global;
use crate::address;
use crate::output::{display_hash, parse_display_hash, print_fields, print_json, zec, zec_json};
use crate::store::{self, State};

#[derive(Subcommand, Debug)]
pub enum GetCommand {
    /// A block by height, or by hash (64 hex digits as RPCs display it).
    Block {
        /// Height or hash.
        id: String,
    },
    /// A transaction by txid (as RPCs display it).
    Tx {
        /// The txid.
        txid: String,
    },
    /// A transparent output (`TXID:VOUT`): its value, address and spender.
    Outpoint {
        /// `TXID:VOUT`.
        outpoint: String,
    },
    /// A transparent address (`t1…`/`t3…` on mainnet, `tm…`/`t2…` on testnet and regtest,
    /// or `p2pkh:<40 hex>` / `p2sh:<40 hex>`): balance, unspent outputs and history.
    Address {
        /// The address.
        address: String,
        /// Show at most this many history events and unspent outputs.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

pub fn run(g: &Global, c: GetCommand) -> Result<()> {
    // Parse before opening, so a typo is reported as such even without a store.
    match c {
        GetCommand::Block { id } => {
            let id = parse_block_id(&id)?;
            let state = store::open_existing(g, false)?;
            block(g, &state, id)
        }
        GetCommand::Tx { txid } => {
            let txid = TxId(parse_display_hash("txid", &txid)?);
            let state = store::open_existing(g, false)?;
            tx(g, &state, txid)
        }
        GetCommand::Outpoint { outpoint } => {
            let op = parse_outpoint(&outpoint)?;
            let state = store::open_existing(g, false)?;
            outpoint_cmd(g, &state, op)
        }
        GetCommand::Address { address, limit } => {
            let addr = address::parse(g.network, &address).map_err(anyhow::Error::msg)?;
            let state = store::open_existing(g, false)?;
            address_cmd(g, &state, addr, limit)
        }
    }
}

enum BlockId {
    Height(u32),
    Hash(BlockHash),
}

fn parse_block_id(s: &str) -> Result<BlockId> {
    if !s.is_empty() && s.len() < 11 && s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(BlockId::Height(s.parse().with_context(|| {
            format!("height {s:?} does not fit in 32 bits")
        })?));
    }
    if s.len() == 64 {
        return Ok(BlockId::Hash(BlockHash(parse_display_hash(
            "block hash",
            s,
        )?)));
    }
    bail!("{s:?} is neither a height nor a 64-hex-digit block hash")
}

fn parse_outpoint(s: &str) -> Result<Outpoint> {
    let Some((txid, vout)) = s.rsplit_once(':') else {
        bail!("outpoint {s:?} must be TXID:VOUT");
    };
    let prev_index = vout
        .parse()
        .with_context(|| format!("outpoint {s:?}: output index {vout:?} is not a number"))?;
    Ok(Outpoint {
        prev_txid: TxId(parse_display_hash("txid", txid)?),
        prev_index,
    })
}

fn addr_string(g: &Global, out: &TxOutCompact) -> String {
    address::encode(g.network, &out.addr_script())
        .unwrap_or_else(|| format!("nonstandard:{}", hex::encode(out.script_hash)))
}

fn location_json(state: &State, l: TxLocation) -> Result<Value> {
    let txid = state.get_txid(l)?;
    Ok(json!({ "height": l.block_height, "index": l.tx_index, "txid": display_hash(&txid.0) }))
}

fn block(g: &Global, state: &State, id: BlockId) -> Result<()> {
    let height = match id {
        BlockId::Height(h) => Height(h),
        BlockId::Hash(hash) => state.get_block_height(&hash)?.with_context(|| {
            format!("no block with hash {} in the store", display_hash(&hash.0))
        })?,
    };
    let Some(b) = state.get_chain_block(height)? else {
        bail!(
            "height {height} is not in the store (tip {})",
            state.tip().map_or("none".to_owned(), |t| t.to_string())
        );
    };
    let data = b.header.data();
    let count = |f: &dyn Fn(&IndexedTx) -> bool| b.transactions.iter().filter(|t| f(t)).count();
    let transparent = count(&|t| t.transparent.is_some());
    let sapling = count(&|t| t.sapling.is_some());
    let orchard = count(&|t| t.orchard.is_some());
    let txids: Vec<String> = b
        .transactions
        .iter()
        .map(|t| display_hash(&t.txid.0))
        .collect();
    if g.json {
        print_json(&json!({
            "height": height.0,
            "hash": display_hash(&b.header.hash().0),
            "previousblockhash": display_hash(&b.header.parent_hash().0),
            "version": data.version,
            "time": data.time,
            "merkleroot": display_hash(&data.merkle_root),
            "blockcommitments": display_hash(&data.block_commitments),
            "bits": format!("{:08x}", data.bits),
            "chainwork": hex::encode(b.header.chainwork().0),
            "transactions": b.transactions.len(),
            "with_transparent": transparent,
            "with_sapling": sapling,
            "with_orchard": orchard,
            "sapling_tree_size": b.commitment_tree_data.sizes.sapling,
            "orchard_tree_size": b.commitment_tree_data.sizes.orchard,
            "tx": txids,
        }));
        return Ok(());
    }
    println!("block {height}");
    print_fields(&[
        ("hash", display_hash(&b.header.hash().0)),
        ("previous", display_hash(&b.header.parent_hash().0)),
        ("time", data.time.to_string()),
        ("merkle root", display_hash(&data.merkle_root)),
        ("chain work", hex::encode(b.header.chainwork().0)),
        (
            "transactions",
            format!(
                "{} ({transparent} transparent, {sapling} sapling, {orchard} orchard)",
                b.transactions.len()
            ),
        ),
        (
            "tree sizes",
            format!(
                "sapling {}, orchard {}",
                b.commitment_tree_data.sizes.sapling, b.commitment_tree_data.sizes.orchard
            ),
        ),
    ]);
    for (i, t) in txids.iter().enumerate().take(10) {
        println!("  tx {i:>4}  {t}");
    }
    if txids.len() > 10 {
        println!("  … {} more (--json lists all)", txids.len() - 10);
    }
    Ok(())
}

fn tx(g: &Global, state: &State, txid: TxId) -> Result<()> {
    let Some(loc) = state.get_tx_location(&txid)? else {
        bail!("transaction {} is not in the store", display_hash(&txid.0));
    };
    let transparent = state.get_transparent(loc)?;
    let sapling = state.get_sapling(loc)?;
    let orchard = state.get_orchard(loc)?;
    let mut vin = Vec::new();
    let mut vout = Vec::new();
    if let Some(t) = &transparent {
        for input in &t.vin {
            match input.outpoint() {
                None => vin.push(json!({ "coinbase": true })),
                Some(op) => {
                    let prev = state.get_previous_output(op)?;
                    vin.push(json!({
                        "txid": display_hash(&op.prev_txid.0),
                        "vout": op.prev_index,
                        "value": zec_json(prev.value),
                        "valueZat": prev.value,
                        "address": addr_string(g, &prev),
                    }));
                }
            }
        }
        for (n, out) in t.vout.iter().enumerate() {
            let op = Outpoint {
                prev_txid: txid,
                prev_index: n as u32,
            };
            let spender = match state.get_outpoint_spender(op)? {
                Some(l) => Some(location_json(state, l)?),
                None => None,
            };
            vout.push(json!({
                "n": n,
                "value": zec_json(out.value),
                "valueZat": out.value,
                "address": addr_string(g, out),
                "spentBy": spender,
            }));
        }
    }
    let v = json!({
        "txid": display_hash(&txid.0),
        "height": loc.block_height,
        "index": loc.tx_index,
        "blockhash": state.get_block_hash(Height(loc.block_height))?.map(|h| display_hash(&h.0)),
        "vin": vin,
        "vout": vout,
        "sapling": sapling.map(|s| json!({
            "valueBalanceZat": s.value, "spends": s.spends.len(), "outputs": s.outputs.len()
        })),
        "orchard": orchard.map(|o| json!({
            "valueBalanceZat": o.value, "actions": o.actions.len()
        })),
    });
    if g.json {
        print_json(&v);
        return Ok(());
    }
    println!("transaction {}", display_hash(&txid.0));
    print_fields(&[
        (
            "location",
            format!("block {} index {}", loc.block_height, loc.tx_index),
        ),
        (
            "sapling",
            v["sapling"].as_object().map_or("none".to_owned(), |s| {
                format!("{} spends, {} outputs", s["spends"], s["outputs"])
            }),
        ),
        (
            "orchard",
            v["orchard"]
                .as_object()
                .map_or("none".to_owned(), |o| format!("{} actions", o["actions"])),
        ),
    ]);
    for i in &vin {
        if i.get("coinbase").is_some() {
            println!("  in   coinbase");
        } else {
            println!(
                "  in   {}:{}  {} ZEC  {}",
                i["txid"].as_str().unwrap_or(""),
                i["vout"],
                zec(i["valueZat"].as_u64().unwrap_or(0)),
                i["address"].as_str().unwrap_or("")
            );
        }
    }
    for o in &vout {
        let spent = match &o["spentBy"] {
            Value::Null => "unspent".to_owned(),
            s => format!(
                "spent in {} (block {})",
                s["txid"].as_str().unwrap_or(""),
                s["height"]
            ),
        };
        println!(
            "  out {:>3}  {} ZEC  {}  {spent}",
            o["n"],
            zec(o["valueZat"].as_u64().unwrap_or(0)),
            o["address"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

fn outpoint_cmd(g: &Global, state: &State, op: Outpoint) -> Result<()> {
    let out = state.get_previous_output(op)?;
    let created = state.get_tx_location(&op.prev_txid)?.with_context(|| {
        format!(
            "transaction {} is not in the store",
            display_hash(&op.prev_txid.0)
        )
    })?;
    let spender = match state.get_outpoint_spender(op)? {
        Some(l) => Some(location_json(state, l)?),
        None => None,
    };
    let v = json!({
        "txid": display_hash(&op.prev_txid.0),
        "vout": op.prev_index,
        "height": created.block_height,
        "value": zec_json(out.value),
        "valueZat": out.value,
        "scriptType": format!("{:?}", out.script_type),
        "address": addr_string(g, &out),
        "spentBy": spender,
    });
    if g.json {
        print_json(&v);
        return Ok(());
    }
    println!("output {}:{}", display_hash(&op.prev_txid.0), op.prev_index);
    print_fields(&[
        (
            "created",
            format!("block {} index {}", created.block_height, created.tx_index),
        ),
        ("value", format!("{} ZEC", zec(out.value))),
        ("address", addr_string(g, &out)),
        (
            "spent",
            match &v["spentBy"] {
                Value::Null => "no".to_owned(),
                s => format!(
                    "in {} (block {}, index {})",
                    s["txid"].as_str().unwrap_or(""),
                    s["height"],
                    s["index"]
                ),
            },
        ),
    ]);
    Ok(())
}

fn address_cmd(g: &Global, state: &State, addr: AddrScript, limit: usize) -> Result<()> {
    let shown = address::encode(g.network, &addr).unwrap_or_default();
    let events = state.addr_records(addr)?.unwrap_or_default();
    let tip = state.tip().unwrap_or(Height(0));
    let balance = state.addr_balance_by_range(addr, Height(0), tip)?;
    let utxos = state
        .addr_utxos_by_range(addr, Height(0), tip)?
        .unwrap_or_default();
    let received: u64 = events
        .iter()
        .filter(|e| !e.is_input())
        .map(|e| e.value)
        .sum();
    let sent: u64 = events
        .iter()
        .filter(|e| e.is_input())
        .map(|e| e.value)
        .sum();
    let mut txs: Vec<TxLocation> = events.iter().map(|e| e.tx_location).collect();
    txs.dedup();
    let utxo_json = utxos
        .iter()
        .take(limit)
        .map(|(l, vout, value)| {
            Ok(json!({
                "txid": display_hash(&state.get_txid(*l)?.0),
                "vout": vout,
                "height": l.block_height,
                "valueZat": value,
            }))
        })
        .collect::<Result<Vec<_>>>()?;
    let history = events
        .iter()
        .rev()
        .take(limit)
        .map(|e| {
            Ok(json!({
                "txid": display_hash(&state.get_txid(e.tx_location)?.0),
                "height": e.tx_location.block_height,
                "index": e.index,
                "kind": if e.is_input() { "spend" } else { "receive" },
                "spent": e.flags & AddrEvent::SPENT != 0,
                "valueZat": e.value,
            }))
        })
        .collect::<Result<Vec<_>>>()?;
    if g.json {
        print_json(&json!({
            "address": shown,
            "scriptType": format!("{:?}", addr.script_type),
            "scriptHash": hex::encode(addr.hash),
            "balance": zec_json(balance.max(0) as u64),
            "balanceZat": balance,
            "receivedZat": received,
            "sentZat": sent,
            "transactions": txs.len(),
            "events": events.len(),
            "utxos": utxos.len(),
            "utxo_list": utxo_json,
            "recent_history": history,
        }));
        return Ok(());
    }
    println!("address {shown}");
    print_fields(&[
        ("balance", format!("{} ZEC", zec(balance.max(0) as u64))),
        ("received", format!("{} ZEC", zec(received))),
        ("sent", format!("{} ZEC", zec(sent))),
        ("transactions", txs.len().to_string()),
        ("unspent outputs", utxos.len().to_string()),
    ]);
    for h in &history {
        println!(
            "  {:>8}  {:<7}  {} ZEC  {}",
            h["height"],
            h["kind"].as_str().unwrap_or(""),
            zec(h["valueZat"].as_u64().unwrap_or(0)),
            h["txid"].as_str().unwrap_or("")
        );
    }
    if events.len() > limit {
        println!("  … {} older events (--limit)", events.len() - limit);
    }
    Ok(())
}
