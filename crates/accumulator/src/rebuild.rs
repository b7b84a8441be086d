//! Bulk rebuild from the unspent outputs, in parallel with rayon.
//!
//! # Input contract
//!
//! The input is every unspent output of the set exactly once, as `(Outpoint, TxOutCompact)`,
//! with **the outputs of one transaction adjacent and in strictly ascending output index**.
//! That is the order the finalised state produces naturally when it walks the
//! `transparent` table in height order and skips the outpoints present in `spent`: all of a
//! transaction's outputs live in one block row, in index order. Uncounted outputs
//! (non-P2PKH/P2SH) may be included or left out; they are skipped either way.
//!
//! The input is cut into chunks only where the txid changes, so no transaction spans two
//! chunks: each chunk counts its own transactions, and partial accumulators [`combine`] by
//! adding counters and XORing hashes. Addition and XOR are commutative and associative, so
//! the result does not depend on how the input is chunked, in what order rayon runs the
//! chunks, or on how many threads it has (the tests prove it on 1, 2, 4 and 8 threads).
//!
//! Checked: a transaction's output indexes must strictly ascend within its run (this also
//! rejects an outpoint given twice in a row). Not checkable without a set of every txid: a
//! transaction whose outputs are split into two runs separated by another transaction is
//! counted twice in `transactions`. The feed described above never produces one.
//!
//! The rebuild uses the current rayon pool: call it inside `ThreadPool::install` to choose
//! the thread count.
//!
//! [`combine`]: crate::Accumulator::combine

use std::convert::Infallible;
use std::iter::Peekable;

use rayon::prelude::*;
use storage_traits::model::{Outpoint, TxOutCompact};

use crate::accumulator::Accumulator;
use crate::digest::{ENTRY_LEN, MESSAGE_LEN, entry_message, is_counted};
use crate::error::{AccumulatorError, Field, Result};

/// How many outputs a chunk holds (at least; it grows to the end of its last transaction).
/// Large enough that per-chunk overhead vanishes beside hashing, small enough to balance
/// the load over the threads.
pub const CHUNK_OUTPUTS: usize = 8 * 1024;

/// One unspent output, as the rebuild consumes it.
pub type UnspentOutput = (Outpoint, TxOutCompact);

/// A set commitment that can be rebuilt in parallel: fold a chunk of the input into a
/// partial value, and merge partial values. Implemented by [`Accumulator`], by
/// `TxOutSetMuHash` (feature `muhash`), and by pairs, so one pass can build both.
pub trait SetCommitment: Sized + Send {
    /// The commitment of the empty set.
    fn empty() -> Self;
    /// The commitment of one chunk. The chunk obeys the input contract and no transaction
    /// of it appears in any other chunk.
    fn fold_chunk(chunk: &[UnspentOutput]) -> Result<Self>;
    /// The commitment of the union of two disjoint parts.
    fn merge(self, other: Self) -> Result<Self>;
}

/// Checks the input contract between two neighbours of the same chunk.
#[inline]
fn check_order(prev: &Outpoint, cur: &Outpoint) -> Result<()> {
    if prev.prev_txid == cur.prev_txid && cur.prev_index <= prev.prev_index {
        let reason = if cur.prev_index == prev.prev_index {
            "the same outpoint twice"
        } else {
            "output indexes of a transaction must strictly ascend"
        };
        return Err(AccumulatorError::UnorderedInput {
            txid: hex::encode(cur.prev_txid.0),
            vout: cur.prev_index,
            reason,
        });
    }
    Ok(())
}

/// How many messages one `hash_many` call hashes: enough to fill the 4-way AVX2 lanes
/// many times over, small enough to stay in L1.
const HASH_BATCH: usize = 32;

/// XORs the BLAKE2b-256 digests of `msgs` into `acc`, hashing several messages at once
/// with `blake2b_simd::many` (4-way AVX2 where the CPU has it; the README has the
/// measured gain over one message at a time).
fn xor_digests(acc: &mut [u8; 32], params: &blake2b_simd::Params, msgs: &[[u8; MESSAGE_LEN]]) {
    use blake2b_simd::many::{HashManyJob, hash_many};
    let mut fold = |jobs: &[HashManyJob<'_>]| {
        for job in jobs {
            for (a, d) in acc.iter_mut().zip(job.to_hash().as_bytes()) {
                *a ^= d;
            }
        }
    };
    if let Ok(full) = <&[[u8; MESSAGE_LEN]; HASH_BATCH]>::try_from(msgs) {
        // The common case: a full batch, jobs on the stack.
        let mut jobs: [HashManyJob<'_>; HASH_BATCH] =
            std::array::from_fn(|i| HashManyJob::new(params, &full[i]));
        hash_many(jobs.iter_mut());
        fold(&jobs);
    } else {
        let mut jobs: Vec<HashManyJob<'_>> =
            msgs.iter().map(|m| HashManyJob::new(params, m)).collect();
        hash_many(jobs.iter_mut());
        fold(&jobs);
    }
}

/// The BLAKE2b-256 parameters of the digest: 32-byte output, no key, salt or
/// personalisation.
fn digest_params() -> blake2b_simd::Params {
    let mut params = blake2b_simd::Params::new();
    params.hash_length(32);
    params
}

impl SetCommitment for Accumulator {
    fn empty() -> Self {
        Accumulator::new()
    }

    fn fold_chunk(chunk: &[UnspentOutput]) -> Result<Self> {
        let mut transactions = 0u64;
        let mut outputs = 0u64;
        let mut total = 0u64;
        let mut hash = [0u8; 32];
        let mut prev: Option<&Outpoint> = None;
        let mut last_counted_txid = None;
        let params = digest_params();
        let mut batch = [[0u8; MESSAGE_LEN]; HASH_BATCH];
        let mut in_batch = 0;
        for (op, out) in chunk {
            if let Some(p) = prev {
                check_order(p, op)?;
            }
            prev = Some(op);
            if !is_counted(out) {
                continue;
            }
            if last_counted_txid != Some(op.prev_txid) {
                transactions += 1;
                last_counted_txid = Some(op.prev_txid);
            }
            outputs += 1;
            total = total
                .checked_add(out.value)
                .ok_or_else(|| AccumulatorError::Overflow {
                    field: Field::TotalZatoshis,
                    txid: Some(hex::encode(op.prev_txid.0)),
                })?;
            batch[in_batch] = entry_message(op, out);
            in_batch += 1;
            if in_batch == HASH_BATCH {
                xor_digests(&mut hash, &params, &batch);
                in_batch = 0;
            }
        }
        xor_digests(&mut hash, &params, &batch[..in_batch]);
        let bytes_serialized =
            outputs
                .checked_mul(ENTRY_LEN)
                .ok_or_else(|| AccumulatorError::Overflow {
                    field: Field::BytesSerialized,
                    txid: None,
                })?;
        Accumulator::from_info(storage_traits::model::TxOutSetInfo {
            transactions,
            transaction_outputs: outputs,
            bytes_serialized,
            hash_serialized: hash,
            total_zatoshis: total,
        })
    }

    fn merge(self, other: Self) -> Result<Self> {
        self.combine(&other)
    }
}

impl<A: SetCommitment, B: SetCommitment> SetCommitment for (A, B) {
    fn empty() -> Self {
        (A::empty(), B::empty())
    }

    fn fold_chunk(chunk: &[UnspentOutput]) -> Result<Self> {
        Ok((A::fold_chunk(chunk)?, B::fold_chunk(chunk)?))
    }

    fn merge(self, other: Self) -> Result<Self> {
        Ok((self.0.merge(other.0)?, self.1.merge(other.1)?))
    }
}

/// The end of the chunk that starts at `outputs[0]`: at least `target` outputs, extended to
/// the end of its last transaction.
fn chunk_end(outputs: &[UnspentOutput], target: usize) -> usize {
    if outputs.len() <= target {
        return outputs.len();
    }
    let last_txid = outputs[target - 1].0.prev_txid;
    let mut end = target;
    while end < outputs.len() && outputs[end].0.prev_txid == last_txid {
        end += 1;
    }
    end
}

/// Splits `outputs` into chunks of about `target` outputs that never cut a transaction.
fn split_at_txid_boundaries(outputs: &[UnspentOutput], target: usize) -> Vec<&[UnspentOutput]> {
    let target = target.max(1);
    let mut chunks = Vec::with_capacity(outputs.len() / target + 1);
    let mut rest = outputs;
    while !rest.is_empty() {
        let end = chunk_end(rest, target);
        let (head, tail) = rest.split_at(end);
        chunks.push(head);
        rest = tail;
    }
    chunks
}

/// Rebuilds a commitment from a slice of unspent outputs (see the module docs for the
/// input contract), in parallel on the current rayon pool.
pub fn rebuild_from_slice<C: SetCommitment>(outputs: &[UnspentOutput]) -> Result<C> {
    rebuild_from_slice_with_chunk(outputs, CHUNK_OUTPUTS)
}

/// [`rebuild_from_slice`] with a chosen chunk size (the result does not depend on it).
pub fn rebuild_from_slice_with_chunk<C: SetCommitment>(
    outputs: &[UnspentOutput],
    chunk_outputs: usize,
) -> Result<C> {
    let chunks = split_at_txid_boundaries(outputs, chunk_outputs);
    tracing::debug!(
        outputs = outputs.len(),
        chunks = chunks.len(),
        threads = rayon::current_num_threads(),
        "accumulator rebuild from slice"
    );
    chunks
        .into_par_iter()
        .map(C::fold_chunk)
        .try_reduce(C::empty, C::merge)
}

/// Groups a stream of outputs into owned chunks that never cut a transaction.
struct TxidChunks<I: Iterator> {
    inner: Peekable<I>,
    target: usize,
    done: bool,
}

impl<I, E> Iterator for TxidChunks<I>
where
    I: Iterator<Item = std::result::Result<UnspentOutput, E>>,
{
    type Item = std::result::Result<Vec<UnspentOutput>, E>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut chunk: Vec<UnspentOutput> = Vec::with_capacity(self.target + 16);
        loop {
            let extend = match self.inner.peek() {
                None => break,
                Some(Err(_)) => true,
                Some(Ok((op, _))) => {
                    chunk.len() < self.target
                        || chunk
                            .last()
                            .is_some_and(|(last, _)| last.prev_txid == op.prev_txid)
                }
            };
            if !extend {
                break;
            }
            match self.inner.next() {
                Some(Ok(item)) => chunk.push(item),
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                None => break,
            }
        }
        if chunk.is_empty() {
            self.done = true;
            None
        } else {
            Some(Ok(chunk))
        }
    }
}

/// Rebuilds a commitment from a stream of unspent outputs whose reads may fail (a database
/// cursor). The stream is read on one thread and cut into chunks at txid boundaries; the
/// chunks are hashed in parallel on the current rayon pool. The first error (a read error,
/// converted with `Into`, or a contract violation) ends the rebuild.
pub fn try_rebuild<C, I, E>(outputs: I) -> Result<C>
where
    C: SetCommitment,
    I: IntoIterator<Item = std::result::Result<UnspentOutput, E>>,
    I::IntoIter: Send,
    E: Into<AccumulatorError> + Send,
{
    let chunks = TxidChunks {
        inner: outputs.into_iter().peekable(),
        target: CHUNK_OUTPUTS,
        done: false,
    };
    chunks
        .par_bridge()
        .map(|chunk| C::fold_chunk(&chunk.map_err(Into::into)?))
        .try_reduce(C::empty, C::merge)
}

/// [`try_rebuild`] for a stream that cannot fail.
pub fn rebuild<C, I>(outputs: I) -> Result<C>
where
    C: SetCommitment,
    I: IntoIterator<Item = UnspentOutput>,
    I::IntoIter: Send,
{
    try_rebuild(outputs.into_iter().map(Ok::<_, Infallible>))
}

impl From<Infallible> for AccumulatorError {
    fn from(e: Infallible) -> Self {
        match e {}
    }
}

impl Accumulator {
    /// Rebuilds the accumulator from a stream of unspent outputs: see [`rebuild()`] and the
    /// module docs of [`mod@crate::rebuild`] for the input contract.
    pub fn rebuild<I>(outputs: I) -> Result<Accumulator>
    where
        I: IntoIterator<Item = UnspentOutput>,
        I::IntoIter: Send,
    {
        rebuild(outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_traits::model::{ScriptType, TxId};

    fn out(txid: u8, vout: u32) -> UnspentOutput {
        (
            Outpoint {
                prev_txid: TxId([txid; 32]),
                prev_index: vout,
            },
            TxOutCompact {
                value: 1,
                script_hash: [0; 20],
                script_type: ScriptType::P2pkh,
            },
        )
    }

    #[test]
    fn chunks_never_cut_a_transaction() {
        let v: Vec<_> = [(1, 0), (1, 1), (1, 2), (2, 0), (3, 0), (3, 1)]
            .iter()
            .map(|&(t, i)| out(t, i))
            .collect();
        for target in 1..8 {
            let chunks = split_at_txid_boundaries(&v, target);
            assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), v.len());
            for w in chunks.windows(2) {
                let a = w[0].last().map(|o| o.0.prev_txid);
                let b = w[1].first().map(|o| o.0.prev_txid);
                assert_ne!(a, b, "target {target}");
            }
        }
        let streamed: Vec<Vec<UnspentOutput>> = TxidChunks {
            inner: v.iter().copied().map(Ok::<_, Infallible>).peekable(),
            target: 2,
            done: false,
        }
        .map(|c| c.unwrap())
        .collect();
        assert_eq!(
            streamed.iter().map(|c| c.len()).collect::<Vec<_>>(),
            vec![3, 3]
        );
    }

    #[test]
    fn descending_or_repeated_vouts_are_rejected() {
        let v = vec![out(1, 1), out(1, 0)];
        assert!(matches!(
            rebuild_from_slice::<Accumulator>(&v),
            Err(AccumulatorError::UnorderedInput { vout: 0, .. })
        ));
        let v = vec![out(1, 1), out(1, 1)];
        assert!(matches!(
            rebuild::<Accumulator, _>(v),
            Err(AccumulatorError::UnorderedInput { vout: 1, .. })
        ));
    }

    #[test]
    fn a_read_error_ends_the_rebuild() {
        let items = vec![
            Ok(out(1, 0)),
            Err(storage_traits::Error::decode("Test", "boom")),
            Ok(out(2, 0)),
        ];
        let r = try_rebuild::<Accumulator, _, _>(items);
        assert!(matches!(r, Err(AccumulatorError::Storage(_))));
    }
}
