//! `zebra-vectors --out DIR` (run by `cargo xtask fixtures zebra --out DIR`): the real Zcash
//! blocks shipped in the `zebra-test` crate, converted into Strata fixtures.
//!
//! The vectors are raw blocks as `zcashd getblock <h> 0` prints them, for mainnet and
//! testnet: a contiguous run from genesis (heights 0–10) and short runs around each network
//! upgrade. Each contiguous run becomes one fixture directory,
//! `DIR/<network>/<first>-<last>/`. Blocks are parsed with the Zcash ecosystem's own
//! `zcash_primitives` (headers, v1–v5 transactions, txids including ZIP 244's for v5), never
//! by hand, and only here: this is a workspace of its own (see its Cargo.toml for why), and no
//! Strata crate depends on the Zcash crates.
//!
//! How each `IndexedBlock` field is derived:
//!
//! - header: version, time, merkle root, the commitments field (`hashFinalSaplingRoot`,
//!   `hashLightClientRoot` or `hashBlockCommitments`, by era), bits, nonce and the
//!   1344-byte Equihash solution exactly as serialised; the hash is `zcash_primitives`'
//!   header hash; height is the vector's height (and the coinbase's, which zebra-test checks).
//! - chain work: the sum over the run of ⌊2^256 / (target + 1)⌋ with the target expanded
//!   from `bits` (zcashd's `GetBlockProof`). From genesis this is the real chain work; a
//!   later run's starts from its first block, because the vectors do not carry the work of
//!   the blocks before it (`chainwork_base=run_start` in the manifest).
//! - transactions: txid from `zcash_primitives`; transparent inputs as outpoints (the
//!   coinbase's null prevout is exactly `TxInCompact::coinbase()`), outputs as value + script
//!   hash + type (P2PKH and P2SH by their exact templates, anything else — P2PK in the early
//!   coinbases, OP_RETURN — non-standard with the first 20 script bytes, zero-padded); a
//!   transaction with no transparent inputs or outputs has no transparent part. Sapling:
//!   value balance, spend nullifiers, output cmu, ephemeral key and the first 52 bytes of
//!   the note ciphertext (the compact form). Orchard: value balance and per action the
//!   nullifier, cmx, ephemeral key and the first 52 ciphertext bytes.
//! - Sprout JoinSplits have no place in `IndexedBlock` and are dropped (their txids, and so
//!   the merkle roots, are unaffected).
//! - commitment tree roots: the final Sapling and Orchard roots zebra-test ships for its
//!   post-activation vectors; before a pool's activation the empty tree's root (computed by
//!   `sapling-crypto` and `orchard`). Between Sapling and Heartwood the header's commitments
//!   field is the Sapling root too, and the conversion checks that the two agree.
//! - commitment tree sizes: Sapling outputs and Orchard actions counted from the run's first
//!   block. They are the real sizes for a pool when the run starts at or before the pool's
//!   activation (its tree is empty before it), so always from genesis; otherwise they are
//!   relative to the run's start, because the vectors carry no tree state for it
//!   (`sapling_tree_size` / `orchard_tree_size` = `run_start` in the manifest).
//!
//! Nothing else is missing: chain work and tree sizes of later runs are the whole list of
//! fields the vectors cannot give absolutely, and each fixture's manifest says which it has.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use fixtures::{FixtureWriter, WriterOptions};
use storage_traits::model::{
    BlockData, BlockHash, BlockHeaderData, BlockIndex, ChainWork, CommitmentTreeData,
    CommitmentTreeRoots, CommitmentTreeSizes, CompactOrchardAction, CompactSaplingOutput,
    CompactSaplingSpend, EquihashSolution, Height, IndexedBlock, IndexedTx, OrchardCompactTx,
    SaplingCompactTx, ScriptType, TransparentCompactTx, TxId, TxInCompact, TxOutCompact,
};
use zcash_primitives::block::BlockHeader;
use zcash_primitives::transaction::Transaction;
use zcash_protocol::consensus::{BlockHeight, BranchId};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The `generator=` of the fixtures this writes.
pub const GENERATOR: &str = "zebra-test";
/// Bumped whenever the conversion of a vector changes.
pub const GENERATOR_VERSION: u32 = 1;

/// Options of `zebra-vectors` (and `cargo xtask fixtures zebra`).
#[derive(clap::Parser, Debug)]
#[command(
    name = "zebra-vectors",
    about = "zebra-test's real Zcash blocks as Strata fixtures"
)]
pub struct ZebraArgs {
    /// The directory to write: one fixture per contiguous run under `<network>/<first>-<last>`.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace existing fixtures there.
    #[arg(long)]
    pub force: bool,
}

/// The two networks zebra-test ships blocks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ZcashNetwork {
    Mainnet,
    Testnet,
}

impl ZcashNetwork {
    pub const ALL: [ZcashNetwork; 2] = [ZcashNetwork::Mainnet, ZcashNetwork::Testnet];

    pub fn name(self) -> &'static str {
        match self {
            ZcashNetwork::Mainnet => "mainnet",
            ZcashNetwork::Testnet => "testnet",
        }
    }

    pub fn params(self) -> zcash_protocol::consensus::Network {
        match self {
            ZcashNetwork::Mainnet => zcash_protocol::consensus::Network::MainNetwork,
            ZcashNetwork::Testnet => zcash_protocol::consensus::Network::TestNetwork,
        }
    }

    /// Every block vector, by height.
    pub fn blocks(self) -> &'static BTreeMap<u32, &'static [u8]> {
        match self {
            ZcashNetwork::Mainnet => &zebra_test::vectors::MAINNET_BLOCKS,
            ZcashNetwork::Testnet => &zebra_test::vectors::TESTNET_BLOCKS,
        }
    }

    /// The final Sapling roots zebra-test ships, by height (internal byte order).
    fn sapling_roots(self) -> &'static BTreeMap<u32, &'static [u8; 32]> {
        match self {
            ZcashNetwork::Mainnet => &zebra_test::vectors::MAINNET_FINAL_SAPLING_ROOTS,
            ZcashNetwork::Testnet => &zebra_test::vectors::TESTNET_FINAL_SAPLING_ROOTS,
        }
    }

    /// The final Orchard roots zebra-test ships, by height.
    fn orchard_roots(self) -> &'static BTreeMap<u32, &'static [u8; 32]> {
        match self {
            ZcashNetwork::Mainnet => &zebra_test::vectors::MAINNET_FINAL_ORCHARD_ROOTS,
            ZcashNetwork::Testnet => &zebra_test::vectors::TESTNET_FINAL_ORCHARD_ROOTS,
        }
    }
}

/// A shielded pool with a note commitment tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    Sapling,
    Orchard,
}

/// A contiguous run of converted blocks.
#[derive(Debug, Clone)]
pub struct Run {
    pub network: ZcashNetwork,
    pub blocks: Vec<IndexedBlock>,
}

impl Run {
    pub fn first_height(&self) -> u32 {
        self.blocks
            .first()
            .and_then(|b| b.header.height())
            .map_or(0, |h| h.0)
    }

    pub fn last_height(&self) -> u32 {
        self.blocks
            .last()
            .and_then(|b| b.header.height())
            .map_or(0, |h| h.0)
    }

    /// Whether the run starts at genesis (its chain work and tree sizes are absolute).
    pub fn from_genesis(&self) -> bool {
        self.first_height() == 0
    }

    /// Whether the run's tree sizes for `pool` are the chain's (the run starts at or before
    /// the pool's activation, when its tree is empty) rather than counted from the run's start.
    pub fn sizes_absolute(&self, pool: Pool) -> bool {
        use zcash_protocol::consensus::Parameters;
        let nu = match pool {
            Pool::Sapling => zcash_protocol::consensus::NetworkUpgrade::Sapling,
            Pool::Orchard => zcash_protocol::consensus::NetworkUpgrade::Nu5,
        };
        self.network
            .params()
            .activation_height(nu)
            .is_some_and(|a| self.first_height() <= u32::from(a))
    }

    /// The fixture directory name, `<first>-<last>`.
    pub fn dir_name(&self) -> String {
        format!("{:07}-{:07}", self.first_height(), self.last_height())
    }
}

/// The heights of `blocks` grouped into maximal runs of consecutive heights.
pub fn contiguous_runs(heights: impl IntoIterator<Item = u32>) -> Vec<Vec<u32>> {
    let mut runs: Vec<Vec<u32>> = Vec::new();
    for h in heights {
        match runs.last_mut() {
            Some(run) if run.last().is_some_and(|&l| l.checked_add(1) == Some(h)) => run.push(h),
            _ => runs.push(vec![h]),
        }
    }
    runs
}

/// Converts every vector of `network`, run by run.
pub fn convert_network(network: ZcashNetwork) -> Result<Vec<Run>> {
    let blocks = network.blocks();
    contiguous_runs(blocks.keys().copied())
        .into_iter()
        .map(|heights| {
            let mut state = RunState::default();
            let blocks = heights
                .iter()
                .map(|&h| state.convert(network, h, blocks[&h]))
                .collect::<Result<Vec<_>>>()?;
            Ok(Run { network, blocks })
        })
        .collect()
}

/// What carries from one block of a run to the next.
#[derive(Default)]
struct RunState {
    chainwork: [u8; 32],
    sapling_size: u32,
    orchard_size: u32,
    parent: Option<BlockHash>,
}

/// An error naming the network, height and what went wrong.
fn err(
    network: ZcashNetwork,
    height: u32,
    what: impl std::fmt::Display,
) -> Box<dyn std::error::Error> {
    format!("zebra-test {} block {height}: {what}", network.name()).into()
}

impl RunState {
    fn convert(&mut self, network: ZcashNetwork, height: u32, raw: &[u8]) -> Result<IndexedBlock> {
        let mut r = Cursor::new(raw);
        let header =
            BlockHeader::read(&mut r).map_err(|e| err(network, height, format!("header: {e}")))?;
        let count = zcash_encoding::CompactSize::read(&mut r)
            .map_err(|e| err(network, height, format!("transaction count: {e}")))?;
        let branch = BranchId::for_height(&network.params(), BlockHeight::from_u32(height));
        let mut transactions = Vec::with_capacity(count as usize);
        let (mut sapling_added, mut orchard_added) = (0u32, 0u32);
        for i in 0..count {
            let tx = Transaction::read(&mut r, branch)
                .map_err(|e| err(network, height, format!("transaction {i}: {e}")))?;
            let indexed = indexed_tx(&tx);
            sapling_added += indexed
                .sapling
                .as_ref()
                .map_or(0, |s| s.outputs.len() as u32);
            orchard_added += indexed
                .orchard
                .as_ref()
                .map_or(0, |o| o.actions.len() as u32);
            transactions.push(indexed);
        }
        let mut rest = Vec::new();
        r.read_to_end(&mut rest)?;
        if !rest.is_empty() {
            return Err(err(
                network,
                height,
                format!("{} bytes after the last transaction", rest.len()),
            ));
        }

        let hash = BlockHash(header.hash().0);
        let parent_hash = BlockHash(header.prev_block.0);
        if let Some(parent) = self.parent
            && parent != parent_hash
        {
            return Err(err(
                network,
                height,
                format!("parent {parent_hash} is not the previous vector's hash {parent}"),
            ));
        }
        self.parent = Some(hash);
        add_u256(&mut self.chainwork, &block_work(header.bits));
        self.sapling_size += sapling_added;
        self.orchard_size += orchard_added;

        let solution: [u8; 1344] = header.solution.as_slice().try_into().map_err(|_| {
            err(
                network,
                height,
                format!(
                    "Equihash solution of {} bytes, expected 1344",
                    header.solution.len()
                ),
            )
        })?;
        let sapling_root = match network.sapling_roots().get(&height) {
            Some(root) => **root,
            None if is_active(
                network,
                height,
                zcash_protocol::consensus::NetworkUpgrade::Sapling,
            ) =>
            {
                return Err(err(
                    network,
                    height,
                    "no final Sapling root in zebra-test for a post-Sapling block",
                ));
            }
            None => empty_sapling_root(),
        };
        // Sapling..Heartwood headers commit to the final Sapling root directly.
        if is_active(
            network,
            height,
            zcash_protocol::consensus::NetworkUpgrade::Sapling,
        ) && !is_active(
            network,
            height,
            zcash_protocol::consensus::NetworkUpgrade::Heartwood,
        ) && header.final_sapling_root != sapling_root
        {
            return Err(err(
                network,
                height,
                format!(
                    "zebra-test's final Sapling root {} differs from the header's {}",
                    hex::encode(sapling_root),
                    hex::encode(header.final_sapling_root)
                ),
            ));
        }
        let orchard_root = match network.orchard_roots().get(&height) {
            Some(root) => **root,
            None if is_active(
                network,
                height,
                zcash_protocol::consensus::NetworkUpgrade::Nu5,
            ) =>
            {
                return Err(err(
                    network,
                    height,
                    "no final Orchard root in zebra-test for a post-NU5 block",
                ));
            }
            None => empty_orchard_root(),
        };

        Ok(IndexedBlock {
            header: BlockHeaderData::V2 {
                index: BlockIndex {
                    hash,
                    parent_hash,
                    chainwork: ChainWork(self.chainwork),
                    height: Height::new(height)?,
                },
                data: BlockData {
                    version: header.version as u32,
                    time: i64::from(header.time),
                    merkle_root: header.merkle_root,
                    block_commitments: header.final_sapling_root,
                    bits: header.bits,
                    nonce: header.nonce,
                    solution: EquihashSolution::Standard(Box::new(solution)),
                },
            },
            transactions,
            commitment_tree_data: CommitmentTreeData {
                roots: CommitmentTreeRoots {
                    sapling: sapling_root,
                    orchard: orchard_root,
                },
                sizes: CommitmentTreeSizes {
                    sapling: self.sapling_size,
                    orchard: self.orchard_size,
                },
            },
        })
    }
}

fn is_active(
    network: ZcashNetwork,
    height: u32,
    nu: zcash_protocol::consensus::NetworkUpgrade,
) -> bool {
    use zcash_protocol::consensus::Parameters;
    network
        .params()
        .is_nu_active(nu, BlockHeight::from_u32(height))
}

/// The root of the empty Sapling note commitment tree (depth 32), internal byte order.
pub fn empty_sapling_root() -> [u8; 32] {
    use incrementalmerkletree::{Hashable, Level};
    sapling_crypto::Node::empty_root(Level::from(32)).to_bytes()
}

/// The root of the empty Orchard note commitment tree (depth 32).
pub fn empty_orchard_root() -> [u8; 32] {
    use incrementalmerkletree::{Hashable, Level};
    orchard::tree::MerkleHashOrchard::empty_root(Level::from(32)).to_bytes()
}

/// The number of notes in mainnet's Sapling tree after block 419,201, read from the tree
/// state zebra-test ships (`zcashd`'s serialised commitment tree).
pub fn mainnet_sapling_tree_size_after_419201() -> Result<u64> {
    let bytes = hex::decode(zebra_test::vectors::SAPLING_TREESTATE_MAINNET_419201_STRING.trim())?;
    let tree = zcash_primitives::merkle_tree::read_commitment_tree::<sapling_crypto::Node, _, 32>(
        &bytes[..],
    )?;
    Ok(tree.size() as u64)
}

/// The compact form of one transaction.
fn indexed_tx(tx: &Transaction) -> IndexedTx {
    let transparent = tx.transparent_bundle().and_then(|b| {
        let vin: Vec<TxInCompact> = b
            .vin
            .iter()
            .map(|i| TxInCompact {
                prevout_txid: TxId(*i.prevout().hash()),
                prevout_index: i.prevout().n(),
            })
            .collect();
        let vout: Vec<TxOutCompact> = b
            .vout
            .iter()
            .map(|o| compact_output(u64::from(o.value()), &o.script_pubkey().0.0))
            .collect();
        (!vin.is_empty() || !vout.is_empty()).then_some(TransparentCompactTx { vin, vout })
    });
    let sapling = tx.sapling_bundle().map(|b| SaplingCompactTx {
        value: Some(i64::from(*b.value_balance())),
        spends: b
            .shielded_spends()
            .iter()
            .map(|s| CompactSaplingSpend {
                nullifier: s.nullifier().0,
            })
            .collect(),
        outputs: b
            .shielded_outputs()
            .iter()
            .map(|o| CompactSaplingOutput {
                cmu: o.cmu().to_bytes(),
                ephemeral_key: o.ephemeral_key().0,
                ciphertext: compact_ciphertext(o.enc_ciphertext()),
            })
            .collect(),
    });
    let orchard = tx.orchard_bundle().map(|b| OrchardCompactTx {
        value: Some(i64::from(*b.value_balance())),
        actions: b
            .actions()
            .iter()
            .map(|a| CompactOrchardAction {
                nullifier: a.nullifier().to_bytes(),
                cmx: a.cmx().to_bytes(),
                ephemeral_key: a.encrypted_note().epk_bytes,
                ciphertext: compact_ciphertext(a.encrypted_note().enc_ciphertext.as_ref()),
            })
            .collect(),
    });
    IndexedTx {
        txid: TxId(*tx.txid().as_ref()),
        transparent,
        sapling,
        orchard,
    }
}

/// The first 52 bytes of a note ciphertext: what compact blocks carry (ZIP 307).
fn compact_ciphertext(full: &[u8]) -> [u8; 52] {
    let mut out = [0u8; 52];
    out.copy_from_slice(&full[..52]);
    out
}

/// An output's compact form: P2PKH and P2SH by their exact script templates, anything else
/// non-standard with its first 20 script bytes, zero-padded.
pub fn compact_output(value: u64, script: &[u8]) -> TxOutCompact {
    let mut hash = [0u8; 20];
    let script_type = match script {
        // OP_DUP OP_HASH160 <20> OP_EQUALVERIFY OP_CHECKSIG
        [0x76, 0xa9, 0x14, h @ .., 0x88, 0xac] if h.len() == 20 => {
            hash.copy_from_slice(h);
            ScriptType::P2pkh
        }
        // OP_HASH160 <20> OP_EQUAL
        [0xa9, 0x14, h @ .., 0x87] if h.len() == 20 => {
            hash.copy_from_slice(h);
            ScriptType::P2sh
        }
        _ => {
            let n = script.len().min(20);
            hash[..n].copy_from_slice(&script[..n]);
            ScriptType::NonStandard
        }
    };
    TxOutCompact {
        value,
        script_hash: hash,
        script_type,
    }
}

/// The target a compact `bits` encodes, as a big-endian 256-bit number (0 if it overflows
/// or is negative, which no valid header has).
pub fn expand_target(bits: u32) -> [u8; 32] {
    let exponent = (bits >> 24) as usize;
    let mantissa = bits & 0x007f_ffff;
    let mut out = [0u8; 32];
    if bits & 0x0080_0000 != 0 || mantissa == 0 {
        return out;
    }
    let m = mantissa.to_be_bytes(); // [0, b1, b2, b3]
    for (i, &b) in m[1..].iter().enumerate() {
        // Byte i of the mantissa sits at 256^(exponent - 1 - i).
        let power = exponent as isize - 1 - i as isize;
        if power < 0 {
            continue;
        }
        if power >= 32 {
            return [0; 32];
        }
        out[31 - power as usize] = b;
    }
    out
}

/// A block's work, ⌊2^256 / (target + 1)⌋, as zcashd's `GetBlockProof` computes it:
/// `(~target / (target + 1)) + 1` in 256-bit arithmetic.
pub fn block_work(bits: u32) -> [u8; 32] {
    let target = expand_target(bits);
    if target == [0; 32] {
        return [0; 32];
    }
    let not_target = target.map(|b| !b);
    let mut divisor = target;
    add_u256(&mut divisor, &one());
    let mut q = div_u256(&not_target, &divisor);
    add_u256(&mut q, &one());
    q
}

fn one() -> [u8; 32] {
    let mut o = [0u8; 32];
    o[31] = 1;
    o
}

/// `acc += x` (big-endian, wrapping).
fn add_u256(acc: &mut [u8; 32], x: &[u8; 32]) {
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let s = u16::from(acc[i]) + u16::from(x[i]) + carry;
        acc[i] = s as u8;
        carry = s >> 8;
    }
}

/// `a / b` for big-endian 256-bit numbers (`b` non-zero), by binary long division.
fn div_u256(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut q = [0u8; 32];
    let mut r = [0u8; 32];
    for bit in 0..256 {
        // r = r << 1 | bit of a
        let mut carry = (a[bit / 8] >> (7 - bit % 8)) & 1;
        for i in (0..32).rev() {
            let next = r[i] >> 7;
            r[i] = (r[i] << 1) | carry;
            carry = next;
        }
        if r >= *b {
            let mut borrow = 0i16;
            for i in (0..32).rev() {
                let d = i16::from(r[i]) - i16::from(b[i]) - borrow;
                r[i] = d.rem_euclid(256) as u8;
                borrow = i16::from(d < 0);
            }
            q[bit / 8] |= 1 << (7 - bit % 8);
        }
    }
    q
}

/// Writes every run of both networks under `out/<network>/<first>-<last>/`; returns the
/// runs with their directories.
pub fn write_fixtures(out: &Path, overwrite: bool) -> Result<Vec<(Run, PathBuf)>> {
    let mut written = Vec::new();
    for network in ZcashNetwork::ALL {
        for run in convert_network(network)? {
            let dir = out.join(network.name()).join(run.dir_name());
            std::fs::create_dir_all(dir.parent().unwrap_or(out))?;
            let mut opts = WriterOptions::new(GENERATOR, GENERATOR_VERSION);
            opts.overwrite = overwrite;
            let base = |absolute: bool| if absolute { "absolute" } else { "run_start" };
            opts.meta = vec![
                ("network".into(), network.name().into()),
                // The exact zebra-test version is the one Cargo.lock pins.
                ("source".into(), "zebra-test".into()),
                (
                    "chainwork_base".into(),
                    if run.from_genesis() {
                        "genesis"
                    } else {
                        "run_start"
                    }
                    .into(),
                ),
                (
                    "sapling_tree_size".into(),
                    base(run.sizes_absolute(Pool::Sapling)).into(),
                ),
                (
                    "orchard_tree_size".into(),
                    base(run.sizes_absolute(Pool::Orchard)).into(),
                ),
                ("sprout".into(), "dropped".into()),
            ];
            // zcashd's serialised Sapling tree after mainnet 419,201, as zebra-test ships it:
            // its size, for checking the counted sizes against an independent source.
            if network == ZcashNetwork::Mainnet
                && (run.first_height()..=run.last_height()).contains(&419_201)
            {
                opts.meta.push((
                    "check.sapling_tree_size.419201".into(),
                    mainnet_sapling_tree_size_after_419201()?.to_string(),
                ));
            }
            let mut w = FixtureWriter::create(&dir, run.first_height(), opts)?;
            for b in &run.blocks {
                w.push(b)?;
            }
            w.finish()?;
            written.push((run, dir));
        }
    }
    Ok(written)
}

fn main() -> std::process::ExitCode {
    use clap::Parser;
    match run(ZebraArgs::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Converts and writes everything, printing one line per fixture.
pub fn run(args: ZebraArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let written = write_fixtures(&args.out, args.force)?;
    for (run, dir) in &written {
        let txs: usize = run.blocks.iter().map(|b| b.transactions.len()).sum();
        eprintln!(
            "zebra: {} {}..={}: {} blocks, {} transactions -> {}",
            run.network.name(),
            run.first_height(),
            run.last_height(),
            run.blocks.len(),
            txs,
            dir.display()
        );
    }
    eprintln!(
        "zebra: {} fixtures in {:.1} s",
        written.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_split_at_gaps() {
        assert_eq!(
            contiguous_runs([0, 1, 2, 5, 6, 9]),
            vec![vec![0, 1, 2], vec![5, 6], vec![9]]
        );
        assert!(contiguous_runs([]).is_empty());
    }

    #[test]
    fn scripts_are_classified_by_template() {
        let mut p2pkh = vec![0x76, 0xa9, 0x14];
        p2pkh.extend([7u8; 20]);
        p2pkh.extend([0x88, 0xac]);
        let o = compact_output(5, &p2pkh);
        assert_eq!((o.script_type, o.script_hash), (ScriptType::P2pkh, [7; 20]));
        let mut p2sh = vec![0xa9, 0x14];
        p2sh.extend([9u8; 20]);
        p2sh.push(0x87);
        assert_eq!(compact_output(1, &p2sh).script_type, ScriptType::P2sh);
        // P2PK (the early coinbases): 33-byte key + OP_CHECKSIG.
        let mut p2pk = vec![0x21];
        p2pk.extend([3u8; 33]);
        p2pk.push(0xac);
        let o = compact_output(1, &p2pk);
        assert_eq!(o.script_type, ScriptType::NonStandard);
        assert_eq!(o.script_hash[..], p2pk[..20]);
        // Short scripts are zero-padded.
        let o = compact_output(0, &[0x6a, 0x01, 0xff]);
        assert_eq!(o.script_hash[..4], [0x6a, 0x01, 0xff, 0]);
        // A P2PKH template with a wrong length is not P2PKH.
        let mut bad = vec![0x76, 0xa9, 0x14];
        bad.extend([7u8; 21]);
        bad.extend([0x88, 0xac]);
        assert_eq!(compact_output(0, &bad).script_type, ScriptType::NonStandard);
    }

    #[test]
    fn block_work_matches_zcashd() {
        // Mainnet's genesis bits 0x1f07ffff: target 0x07ffff << 232, work 2^256 / (t + 1)
        // = 8192 (zcashd reports chainwork 0x2000 at height 0).
        let w = block_work(0x1f07_ffff);
        let mut expected = [0u8; 32];
        expected[30] = 0x20;
        assert_eq!(w, expected);
        // bits 0x1d00ffff (Bitcoin's genesis difficulty): work 0x100010001.
        let w = block_work(0x1d00_ffff);
        assert_eq!(hex::encode(&w[24..]), "0000000100010001");
    }
}
