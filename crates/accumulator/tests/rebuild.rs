//! Order and thread-count independence of the bulk rebuild, and agreement between the
//! rebuild, the incremental path and `combine`.

use accumulator::{Accumulator, SetCommitment, TxDelta, UnspentOutput, is_counted};
use proptest::prelude::*;
use rayon::ThreadPoolBuilder;
use storage_traits::model::{Outpoint, ScriptType, TxId, TxOutCompact};

/// A deterministic pseudo-random UTXO set: `txs` transactions of 1..=5 outputs, about a
/// tenth non-standard, grouped by txid with ascending vouts (the rebuild input contract).
/// Some outputs are "spent" (left out), leaving gaps in the vouts.
fn utxo_set(txs: u32, seed: u64) -> Vec<UnspentOutput> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut v = Vec::new();
    for t in 0..txs {
        let mut txid = [0u8; 32];
        txid[..4].copy_from_slice(&t.to_le_bytes());
        txid[4..12].copy_from_slice(&next().to_le_bytes());
        let n = 1 + next() % 5;
        for vout in 0..n as u32 {
            let r = next();
            if r % 4 == 0 {
                continue; // spent
            }
            let script_type = match r % 10 {
                0 => ScriptType::NonStandard,
                1..=3 => ScriptType::P2sh,
                _ => ScriptType::P2pkh,
            };
            let mut script_hash = [0u8; 20];
            script_hash[..8].copy_from_slice(&next().to_le_bytes());
            v.push((
                Outpoint {
                    prev_txid: TxId(txid),
                    prev_index: vout,
                },
                TxOutCompact {
                    value: next() % 100_000_000_000, // up to 1000 ZEC: no set here overflows
                    script_hash,
                    script_type,
                },
            ));
        }
    }
    v
}

/// The accumulator by the incremental path, one transaction delta at a time.
fn incremental(outputs: &[UnspentOutput]) -> Accumulator {
    let mut acc = Accumulator::new();
    for group in outputs.chunk_by(|a, b| a.0.prev_txid == b.0.prev_txid) {
        let added: Vec<(u32, TxOutCompact)> =
            group.iter().map(|(op, o)| (op.prev_index, *o)).collect();
        acc.apply(&TxDelta {
            txid: group[0].0.prev_txid,
            counted_unspent_before: 0,
            added: &added,
            removed: &[],
        })
        .unwrap();
    }
    acc
}

/// Reorders whole transactions (the input contract allows any transaction order).
fn shuffle_transactions(outputs: &[UnspentOutput], seed: u64) -> Vec<UnspentOutput> {
    let mut groups: Vec<&[UnspentOutput]> = outputs
        .chunk_by(|a, b| a.0.prev_txid == b.0.prev_txid)
        .collect();
    let mut s = seed | 1;
    for i in (1..groups.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        groups.swap(i, (s % (i as u64 + 1)) as usize);
    }
    groups.concat()
}

#[test]
fn rebuild_is_independent_of_thread_count_and_order() {
    let set = utxo_set(8_000, 1);
    assert!(
        set.len() > 2 * accumulator::rebuild::CHUNK_OUTPUTS,
        "{}",
        set.len()
    );
    let reference = incremental(&set);
    assert!(reference.transactions() > 4_000);
    let reversed = shuffle_transactions(&set, 7);
    for threads in [1, 2, 4, 8] {
        let pool = ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            assert_eq!(rayon::current_num_threads(), threads);
            let a: Accumulator = accumulator::rebuild_from_slice(&set).unwrap();
            assert_eq!(a, reference, "slice, {threads} threads");
            let b = Accumulator::rebuild(set.iter().copied()).unwrap();
            assert_eq!(b, reference, "stream, {threads} threads");
            let c: Accumulator = accumulator::rebuild_from_slice(&reversed).unwrap();
            assert_eq!(c, reference, "reordered, {threads} threads");
            // Small chunks: many partial accumulators combined.
            let d: Accumulator = accumulator::rebuild_from_slice_with_chunk(&set, 37).unwrap();
            assert_eq!(d, reference, "chunk 37, {threads} threads");
        });
    }
}

#[test]
fn counters_match_a_direct_count() {
    let set = utxo_set(3_000, 2);
    let acc: Accumulator = accumulator::rebuild_from_slice(&set).unwrap();
    let counted: Vec<_> = set.iter().filter(|(_, o)| is_counted(o)).collect();
    let mut txids: Vec<_> = counted.iter().map(|(op, _)| op.prev_txid).collect();
    txids.dedup();
    assert_eq!(acc.transaction_outputs(), counted.len() as u64);
    assert_eq!(acc.transactions(), txids.len() as u64);
    assert_eq!(acc.bytes_serialized(), 65 * counted.len() as u64);
    assert_eq!(
        acc.total_zatoshis(),
        counted.iter().map(|(_, o)| o.value).sum::<u64>()
    );
    let mut hash = [0u8; 32];
    for (op, o) in &counted {
        for (h, d) in hash.iter_mut().zip(accumulator::entry_digest(op, o)) {
            *h ^= d;
        }
    }
    assert_eq!(acc.hash_serialized(), hash);
    // Leaving the uncounted outputs out of the input changes nothing.
    let only_counted: Vec<UnspentOutput> = counted.into_iter().copied().collect();
    let b: Accumulator = accumulator::rebuild_from_slice(&only_counted).unwrap();
    assert_eq!(b, acc);
}

#[test]
fn combine_of_disjoint_parts_is_the_whole() {
    let set = utxo_set(2_000, 3);
    let whole: Accumulator = accumulator::rebuild_from_slice(&set).unwrap();
    // Split at a transaction boundary.
    let mut cut = set.len() / 3;
    while cut < set.len() && set[cut].0.prev_txid == set[cut - 1].0.prev_txid {
        cut += 1;
    }
    let a: Accumulator = accumulator::rebuild_from_slice(&set[..cut]).unwrap();
    let b: Accumulator = accumulator::rebuild_from_slice(&set[cut..]).unwrap();
    assert_eq!(a.combine(&b).unwrap(), whole);
    assert_eq!(b.combine(&a).unwrap(), whole);
    assert_eq!(
        Accumulator::empty().merge(whole).unwrap(),
        whole,
        "the empty set is the identity"
    );
}

#[test]
fn spending_everything_returns_to_empty() {
    let set = utxo_set(500, 4);
    let mut acc = incremental(&set);
    for group in set.chunk_by(|a, b| a.0.prev_txid == b.0.prev_txid) {
        let outs: Vec<(u32, TxOutCompact)> =
            group.iter().map(|(op, o)| (op.prev_index, *o)).collect();
        let counted = outs.iter().filter(|(_, o)| is_counted(o)).count() as u64;
        // Spend in two steps, to exercise a >0 → >0 transition then >0 → 0.
        let (first, second) = outs.split_at(outs.len() / 2);
        let first_counted = first.iter().filter(|(_, o)| is_counted(o)).count() as u64;
        acc.spend_outputs(group[0].0.prev_txid, counted, first)
            .unwrap();
        acc.spend_outputs(group[0].0.prev_txid, counted - first_counted, second)
            .unwrap();
    }
    assert_eq!(acc, Accumulator::new());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any chunk size, any transaction order, any thread count: the same accumulator.
    #[test]
    fn any_chunking_and_order_agree(
        seed in any::<u64>(),
        txs in 1u32..300,
        chunk in 1usize..64,
        threads in 1usize..5,
    ) {
        let set = utxo_set(txs, seed);
        let reference = incremental(&set);
        let shuffled = shuffle_transactions(&set, seed.rotate_left(17));
        let pool = ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let got: Accumulator = pool
            .install(|| accumulator::rebuild_from_slice_with_chunk(&shuffled, chunk))
            .unwrap();
        prop_assert_eq!(got, reference);
    }
}
