//! Full read-back validation: every row's checksum, chain continuity, merkle roots,
//! hash → height, `txid_location`, `spent` and address-history consistency.
//!
//! It runs at open in ascending height order (unless the store is opened with
//! `OpenValidation::Lazy`), on demand for a read above the validated tip, and whenever
//! [`FinalisedState::validate_all`] is called. Any failure names the table, the height and
//! the key.

use storage_traits::kv::{Direction, KeyRange, KvRead};
use storage_traits::model::*;
use storage_traits::table::*;
use storage_traits::{Error, Result, TableKey};

use crate::backend::Backend;
use crate::rows::RowCache;
use crate::state::{FinalisedState, lock};

fn mismatch(table: &'static str, key: Vec<u8>, height: Height, reason: String) -> Error {
    Error::Corrupt {
        table,
        key: hex::encode(key),
        height: Some(height.0),
        reason,
    }
}

/// Validates the block at `height` against every table, with `prev_hash` the hash stored
/// at `height - 1` (`None` at the bottom of the store). Returns the block's hash.
pub(crate) fn validate_block(
    rows: &mut RowCache,
    r: &impl KvRead,
    height: Height,
    prev_hash: Option<BlockHash>,
) -> Result<BlockHash> {
    let hkey = height.encode_key();
    let missing =
        |table: &'static str| mismatch(table, hkey.clone(), height, "row missing".to_owned());
    let header = r
        .get_row::<Headers>(&height)?
        .ok_or_else(|| missing(Headers::NAME))?;
    let hash = header.hash();
    if let Some(h) = header.height()
        && h != height
    {
        return Err(mismatch(
            Headers::NAME,
            hkey,
            height,
            format!("header records height {h}"),
        ));
    }
    if let Some(prev) = prev_hash
        && header.parent_hash() != prev
    {
        return Err(mismatch(
            Headers::NAME,
            hkey,
            height,
            format!(
                "parent hash {} does not match the hash {prev} stored below",
                header.parent_hash()
            ),
        ));
    }
    match r.get_row::<Heights>(&hash)? {
        Some(h) if h == height => {}
        other => {
            return Err(mismatch(
                Heights::NAME,
                hash.encode_key(),
                height,
                format!("hash -> height mapping is {other:?}, expected {height}"),
            ));
        }
    }
    let txids = r
        .get_row::<Txids>(&height)?
        .ok_or_else(|| missing(Txids::NAME))?;
    let root = merkle_root(&txids.0);
    if root != header.data().merkle_root {
        return Err(mismatch(
            Txids::NAME,
            hkey,
            height,
            format!(
                "merkle root mismatch: header {}, computed {}",
                hex::encode(header.data().merkle_root),
                hex::encode(root)
            ),
        ));
    }
    let transparent = r
        .get_row::<Transparent>(&height)?
        .ok_or_else(|| missing(Transparent::NAME))?;
    let sapling = r
        .get_row::<Sapling>(&height)?
        .ok_or_else(|| missing(Sapling::NAME))?;
    let orchard = r
        .get_row::<Orchard>(&height)?
        .ok_or_else(|| missing(Orchard::NAME))?;
    r.get_row::<CommitmentTree>(&height)?
        .ok_or_else(|| missing(CommitmentTree::NAME))?;
    let n = txids.0.len();
    for (table, len) in [
        (Transparent::NAME, transparent.0.len()),
        (Sapling::NAME, sapling.0.len()),
        (Orchard::NAME, orchard.0.len()),
    ] {
        if len != n {
            return Err(mismatch(
                table,
                hkey.clone(),
                height,
                format!("{len} entries for {n} transactions"),
            ));
        }
    }
    for (i, txid) in txids.0.iter().enumerate() {
        let location = TxLocation {
            block_height: height.0,
            tx_index: i as u16,
        };
        match r.get_row::<TxidLocation>(txid)? {
            Some(l) if l == location => {}
            other => {
                return Err(mismatch(
                    TxidLocation::NAME,
                    txid.encode_key(),
                    height,
                    format!("txid location is {other:?}, expected {location:?}"),
                ));
            }
        }
        let Some(tx) = &transparent.0[i] else {
            continue;
        };
        for (input_index, input) in tx.vin.iter().enumerate() {
            let Some(op) = input.outpoint() else { continue };
            match r.get_row::<Spent>(&op)? {
                Some(l) if l == location => {}
                other => {
                    return Err(mismatch(
                        Spent::NAME,
                        op.encode_key(),
                        height,
                        format!(
                            "spender of input {input_index} is {other:?}, expected {location:?}"
                        ),
                    ));
                }
            }
            let Some(prev) = crate::write::previous_output(rows, r, &op)? else {
                return Err(mismatch(
                    Spent::NAME,
                    op.encode_key(),
                    height,
                    "the spent output does not exist".to_owned(),
                ));
            };
            if prev.script_type.is_spendable() {
                let addr = prev.addr_script();
                let event = AddrEvent {
                    tx_location: location,
                    index: input_index as u16,
                    flags: AddrEvent::MINED | AddrEvent::IS_INPUT,
                    value: prev.value,
                };
                if !has_event(r, &addr, event)? {
                    return Err(mismatch(
                        AddressHistory::NAME,
                        addr.encode_key(),
                        height,
                        format!("input event {event:?} missing"),
                    ));
                }
            }
        }
        for (vout, out) in tx.vout.iter().enumerate() {
            if !out.script_type.is_spendable() {
                continue;
            }
            let addr = out.addr_script();
            let op = Outpoint {
                prev_txid: *txid,
                prev_index: vout as u32,
            };
            let spent = r.get_row::<Spent>(&op)?.is_some();
            let flags = if spent {
                AddrEvent::MINED | AddrEvent::SPENT
            } else {
                AddrEvent::MINED
            };
            let event = AddrEvent {
                tx_location: location,
                index: vout as u16,
                flags,
                value: out.value,
            };
            if !has_event(r, &addr, event)? {
                return Err(mismatch(
                    AddressHistory::NAME,
                    addr.encode_key(),
                    height,
                    format!("output event {event:?} missing"),
                ));
            }
        }
    }
    Ok(hash)
}

fn has_event(r: &impl KvRead, addr: &AddrScript, event: AddrEvent) -> Result<bool> {
    let (k, v) = encode_row::<AddressHistory>(addr, event);
    let values = r.get_dup(AddressHistory::NAME, &k)?;
    for stored in &values {
        // Verify every value of the key, so a flipped byte in any event is reported.
        decode_row::<AddressHistory>(&k, stored)?;
    }
    Ok(values.contains(&v))
}

impl<B: Backend> FinalisedState<B> {
    /// Validates every stored block in ascending height order, then the accumulator and
    /// metadata rows, and sets the validated tip to the tip. Stops at the first failure.
    pub fn validate_all(&self) -> Result<()> {
        self.validate_all_with_progress(&mut |_| {})
    }

    /// [`FinalisedState::validate_all`], calling `progress` with each height validated
    /// (for progress bars; keep it cheap).
    pub fn validate_all_with_progress(&self, progress: &mut dyn FnMut(Height)) -> Result<()> {
        let started = std::time::Instant::now();
        let r = self.store.begin_read()?;
        let mut prev: Option<BlockHash> = None;
        let mut count = 0u64;
        let mut last = None;
        let mut expected_next: Option<u32> = None;
        // Outputs spent by later blocks, read from rows this pass verifies once each.
        let mut rows = RowCache::default();
        for row in r.range(Headers::NAME, KeyRange::all(), Direction::Forward)? {
            let (key, _) = row?;
            let height = Height::decode_key(&key).map_err(|e| Error::Corrupt {
                table: Headers::NAME,
                key: hex::encode(&key),
                height: None,
                reason: e.to_string(),
            })?;
            if let Some(next) = expected_next
                && height.0 != next
            {
                return Err(mismatch(
                    Headers::NAME,
                    key,
                    height,
                    format!("gap: expected height {next}"),
                ));
            }
            prev = Some(validate_block(&mut rows, &r, height, prev)?);
            expected_next = Some(height.0 + 1);
            last = Some(height);
            progress(height);
            count += 1;
            if count.is_multiple_of(10_000) {
                tracing::info!(height = height.0, "validating");
            }
        }
        // Every row of the random-keyed and singleton tables verifies too.
        for name in [TxidLocation::NAME, Spent::NAME] {
            for row in r.range(name, KeyRange::all(), Direction::Forward)? {
                let (k, v) = row?;
                if name == Spent::NAME {
                    decode_row::<Spent>(&k, &v)?;
                } else {
                    decode_row::<TxidLocation>(&k, &v)?;
                }
            }
        }
        if let Some((k, v)) = r
            .get(TxOutSetAccumulator::NAME, &ACCUMULATOR_KEY.encode_key())?
            .map(|v| (ACCUMULATOR_KEY.encode_key(), v))
        {
            decode_row::<TxOutSetAccumulator>(&k, &v)?;
        }
        *lock(&self.validated_tip) = last;
        tracing::info!(
            blocks = count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "validation complete"
        );
        Ok(())
    }

    /// Validates the block at `height` (above the validated tip) before it is served.
    pub(crate) fn validate_on_demand(&self, height: Height) -> Result<()> {
        let r = self.store.begin_read()?;
        let prev = if height.0 > self.config.start_height.0 {
            r.get_row::<Headers>(&Height(height.0 - 1))?
                .map(|h| h.hash())
        } else {
            None
        };
        validate_block(&mut RowCache::default(), &r, height, prev)?;
        let mut v = lock(&self.validated_tip);
        let contiguous = match *v {
            Some(prev) => height.0 == prev.0 + 1,
            None => height == self.config.start_height,
        };
        if contiguous {
            *v = Some(height);
        }
        Ok(())
    }
}
