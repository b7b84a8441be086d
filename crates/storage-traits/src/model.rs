//! The chain data model and its exact byte layouts (`../shared/reference/zaino.md`, §3).
//!
//! Sizes below are body sizes; a value serialised with its tag is one byte longer. Nested
//! values are written with their own tag unless the layout says "raw".

use crate::codec::{
    FixedLen, Reader, Versioned, put_option, put_vec, unsupported_version, version,
};
use crate::error::{Error, Result};
use crate::versioned_v1;

/// A block height. Big-endian on disk so keys sort by height; at most 2^31 − 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Height(pub u32);

impl Height {
    /// The largest valid height.
    pub const MAX: Height = Height(i32::MAX as u32);

    /// The height, or an error when it exceeds [`Height::MAX`].
    pub fn new(h: u32) -> Result<Height> {
        if h > Self::MAX.0 {
            Err(Error::decode(
                "Height",
                format!("height {h} exceeds 2^31-1"),
            ))
        } else {
            Ok(Height(h))
        }
    }

    /// The next height, or `None` past [`Height::MAX`].
    pub fn next(self) -> Option<Height> {
        (self.0 < Self::MAX.0).then(|| Height(self.0 + 1))
    }
}

impl std::fmt::Display for Height {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

versioned_v1!(
    Height,
    "Height",
    "Height v1: BE u32 (<= 2^31-1)",
    len = 4,
    encode = |s, out| { out.extend_from_slice(&s.0.to_be_bytes()) },
    decode = |r| {
        let h = r.u32_be()?;
        Height::new(h)
    }
);

macro_rules! hash32 {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $layout:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $ty(pub [u8; 32]);

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", $name, hex::encode(self.0))
            }
        }

        impl std::fmt::Display for $ty {
            /// Hex in stored (internal) byte order.
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        versioned_v1!($ty, $name, $layout, len = 32,
            encode = |s, out| { out.extend_from_slice(&s.0) },
            decode = |r| { Ok($ty(r.array()?)) });
    };
}

hash32!(
    /// A block hash, 32 raw bytes in internal (little-endian) order.
    BlockHash, "BlockHash", "BlockHash v1: [32] internal order");
hash32!(
    /// A transaction id, 32 raw bytes in internal (little-endian) order.
    TxId, "TxId", "TxId v1: [32] internal order");
hash32!(
    /// Cumulative chain work, a 256-bit big-endian integer.
    ChainWork, "ChainWork", "ChainWork v1: [32] BE U256");

/// A reference to a transaction output: the creating txid and the output index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Outpoint {
    /// The transaction that created the output.
    pub prev_txid: TxId,
    /// The output's index in that transaction.
    pub prev_index: u32,
}

versioned_v1!(
    Outpoint,
    "Outpoint",
    "Outpoint v1: [32] txid raw, LE u32 index",
    len = 36,
    encode = |s, out| {
        out.extend_from_slice(&s.prev_txid.0);
        out.extend_from_slice(&s.prev_index.to_le_bytes());
    },
    decode = |r| {
        Ok(Outpoint {
            prev_txid: TxId(r.array()?),
            prev_index: r.u32_le()?,
        })
    }
);

/// A compact transparent input: the outpoint it spends. A coinbase input is the zero txid
/// with index `0xFFFF_FFFF`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TxInCompact {
    /// The txid of the output spent.
    pub prevout_txid: TxId,
    /// The index of the output spent.
    pub prevout_index: u32,
}

impl TxInCompact {
    /// The index a coinbase input carries.
    pub const NULL_INDEX: u32 = 0xFFFF_FFFF;

    /// The input of a coinbase transaction.
    pub fn coinbase() -> Self {
        TxInCompact {
            prevout_txid: TxId([0; 32]),
            prevout_index: Self::NULL_INDEX,
        }
    }

    /// Whether this is a coinbase (null) input, which spends nothing.
    pub fn is_null(&self) -> bool {
        self.prevout_txid.0 == [0; 32] && self.prevout_index == Self::NULL_INDEX
    }

    /// The outpoint this input spends, or `None` for a coinbase input.
    pub fn outpoint(&self) -> Option<Outpoint> {
        (!self.is_null()).then_some(Outpoint {
            prev_txid: self.prevout_txid,
            prev_index: self.prevout_index,
        })
    }
}

versioned_v1!(
    TxInCompact,
    "TxInCompact",
    "TxInCompact v1: [32] txid raw, LE u32 index; coinbase = zero txid + 0xFFFFFFFF",
    len = 36,
    encode = |s, out| {
        out.extend_from_slice(&s.prevout_txid.0);
        out.extend_from_slice(&s.prevout_index.to_le_bytes());
    },
    decode = |r| {
        Ok(TxInCompact {
            prevout_txid: TxId(r.array()?),
            prevout_index: r.u32_le()?,
        })
    }
);

/// Where a transaction sits: block height and index within the block. BE on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TxLocation {
    /// The block's height.
    pub block_height: u32,
    /// The transaction's index in the block.
    pub tx_index: u16,
}

versioned_v1!(
    TxLocation,
    "TxLocation",
    "TxLocation v1: BE u32 height, BE u16 index",
    len = 6,
    encode = |s, out| {
        out.extend_from_slice(&s.block_height.to_be_bytes());
        out.extend_from_slice(&s.tx_index.to_be_bytes());
    },
    decode = |r| {
        Ok(TxLocation {
            block_height: r.u32_be()?,
            tx_index: r.u16_be()?,
        })
    }
);

/// The standard script kinds that are indexed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScriptType {
    /// Pay to public key hash.
    P2pkh,
    /// Pay to script hash.
    P2sh,
    /// Anything else (its first 20 script bytes, zero-padded, stand in for the hash).
    NonStandard,
}

impl ScriptType {
    /// The byte stored for this type.
    pub fn to_u8(self) -> u8 {
        match self {
            ScriptType::P2pkh => 0x00,
            ScriptType::P2sh => 0x01,
            ScriptType::NonStandard => 0xFF,
        }
    }

    /// The type stored as `b`.
    pub fn from_u8(b: u8) -> Result<Self> {
        match b {
            0x00 => Ok(ScriptType::P2pkh),
            0x01 => Ok(ScriptType::P2sh),
            0xFF => Ok(ScriptType::NonStandard),
            other => Err(Error::decode(
                "ScriptType",
                format!("unknown script type 0x{other:02X}"),
            )),
        }
    }

    /// Whether outputs of this type can be spent (and so count in the txout set).
    pub fn is_spendable(self) -> bool {
        !matches!(self, ScriptType::NonStandard)
    }
}

versioned_v1!(
    ScriptType,
    "ScriptType",
    "ScriptType v1: u8 (P2PKH 0x00, P2SH 0x01, NonStandard 0xFF)",
    len = 1,
    encode = |s, out| { out.push(s.to_u8()) },
    decode = |r| { ScriptType::from_u8(r.u8()?) }
);

/// A compact transparent output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TxOutCompact {
    /// Value in zatoshis.
    pub value: u64,
    /// The 20-byte hash of the script (first 20 script bytes for non-standard scripts).
    pub script_hash: [u8; 20],
    /// The script's type.
    pub script_type: ScriptType,
}

impl TxOutCompact {
    /// The address this output pays to.
    pub fn addr_script(&self) -> AddrScript {
        AddrScript {
            hash: self.script_hash,
            script_type: self.script_type,
        }
    }
}

versioned_v1!(
    TxOutCompact,
    "TxOutCompact",
    "TxOutCompact v1: LE u64 value, [20] script hash, u8 script type",
    len = 29,
    encode = |s, out| {
        out.extend_from_slice(&s.value.to_le_bytes());
        out.extend_from_slice(&s.script_hash);
        out.push(s.script_type.to_u8());
    },
    decode = |r| {
        Ok(TxOutCompact {
            value: r.u64_le()?,
            script_hash: r.array()?,
            script_type: ScriptType::from_u8(r.u8()?)?,
        })
    }
);

/// A transparent address: script hash and type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddrScript {
    /// The 20-byte script hash.
    pub hash: [u8; 20],
    /// The script type.
    pub script_type: ScriptType,
}

versioned_v1!(
    AddrScript,
    "AddrScript",
    "AddrScript v1: [20] hash, u8 script type",
    len = 21,
    encode = |s, out| {
        out.extend_from_slice(&s.hash);
        out.push(s.script_type.to_u8());
    },
    decode = |r| {
        Ok(AddrScript {
            hash: r.array()?,
            script_type: ScriptType::from_u8(r.u8()?)?,
        })
    }
);

/// One transparent-address event: an output paying the address, or an input spending
/// from it. Sorted by height, then transaction, then index, so a key's events iterate
/// chronologically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddrEvent {
    /// The transaction the event is in.
    pub tx_location: TxLocation,
    /// The output index, or the input index when [`AddrEvent::IS_INPUT`] is set.
    pub index: u16,
    /// [`AddrEvent::MINED`], [`AddrEvent::SPENT`], [`AddrEvent::IS_INPUT`].
    pub flags: u8,
    /// Value in zatoshis.
    pub value: u64,
}

impl AddrEvent {
    /// The event is in a mined block.
    pub const MINED: u8 = 0x01;
    /// The output has been spent.
    pub const SPENT: u8 = 0x02;
    /// The event is an input (a spend from the address).
    pub const IS_INPUT: u8 = 0x04;

    /// Whether the event is an input.
    pub fn is_input(&self) -> bool {
        self.flags & Self::IS_INPUT != 0
    }
}

versioned_v1!(
    AddrEvent,
    "AddrEvent",
    "AddrEvent v1: BE u32 height, BE u16 tx index, BE u16 vout, u8 flags, LE u64 value",
    len = 17,
    encode = |s, out| {
        out.extend_from_slice(&s.tx_location.block_height.to_be_bytes());
        out.extend_from_slice(&s.tx_location.tx_index.to_be_bytes());
        out.extend_from_slice(&s.index.to_be_bytes());
        out.push(s.flags);
        out.extend_from_slice(&s.value.to_le_bytes());
    },
    decode = |r| {
        let tx_location = TxLocation {
            block_height: r.u32_be()?,
            tx_index: r.u16_be()?,
        };
        let index = r.u16_be()?;
        let flags = r.u8()?;
        if flags & !(AddrEvent::MINED | AddrEvent::SPENT | AddrEvent::IS_INPUT) != 0 {
            return Err(r.error(format!("unknown flag bits 0x{flags:02X}")));
        }
        Ok(AddrEvent {
            tx_location,
            index,
            flags,
            value: r.u64_le()?,
        })
    }
);

/// Block index of the current layout (`BlockIndex` version 2): every field tagged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockIndex {
    /// The block's hash.
    pub hash: BlockHash,
    /// Its parent's hash.
    pub parent_hash: BlockHash,
    /// Cumulative chain work up to and including the block.
    pub chainwork: ChainWork,
    /// The block's height.
    pub height: Height,
}

impl Versioned for BlockIndex {
    const TYPE_NAME: &'static str = "BlockIndex";
    const LATEST: u8 = version::V2;
    const LAYOUT: &'static str = "BlockIndex v2: BlockHash(tagged), parent BlockHash(tagged), ChainWork(tagged), Height(tagged)";

    fn encode_body(&self, out: &mut Vec<u8>) {
        self.hash.encode_to(out);
        self.parent_hash.encode_to(out);
        self.chainwork.encode_to(out);
        self.height.encode_to(out);
    }

    fn decode_body(v: u8, r: &mut Reader<'_>) -> Result<Self> {
        if v != version::V2 {
            return Err(unsupported_version(Self::TYPE_NAME, v));
        }
        Ok(BlockIndex {
            hash: r.versioned()?,
            parent_hash: r.versioned()?,
            chainwork: r.versioned()?,
            height: r.versioned()?,
        })
    }
}

impl FixedLen for BlockIndex {
    fn body_len(v: u8) -> Option<usize> {
        (v == version::V2).then_some(33 + 33 + 33 + 5)
    }
}

/// Block index of the first layout (`BlockIndex` version 1): the height is optional.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockIndexV1 {
    /// The block's hash.
    pub hash: BlockHash,
    /// Its parent's hash.
    pub parent_hash: BlockHash,
    /// Cumulative chain work.
    pub chainwork: ChainWork,
    /// The block's height, when known.
    pub height: Option<Height>,
}

impl Versioned for BlockIndexV1 {
    const TYPE_NAME: &'static str = "BlockIndex";
    const LATEST: u8 = version::V1;
    const LAYOUT: &'static str = "BlockIndex v1: BlockHash(tagged), parent BlockHash(tagged), ChainWork(tagged), Option<Height(tagged)>";

    fn encode_body(&self, out: &mut Vec<u8>) {
        self.hash.encode_to(out);
        self.parent_hash.encode_to(out);
        self.chainwork.encode_to(out);
        put_option(out, &self.height, |out, h| h.encode_to(out));
    }

    fn decode_body(v: u8, r: &mut Reader<'_>) -> Result<Self> {
        if v != version::V1 {
            return Err(unsupported_version(Self::TYPE_NAME, v));
        }
        Ok(BlockIndexV1 {
            hash: r.versioned()?,
            parent_hash: r.versioned()?,
            chainwork: r.versioned()?,
            height: r.option(|r| r.versioned())?,
        })
    }
}

/// An Equihash solution: 1344 bytes on mainnet and testnet, 36 on regtest.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum EquihashSolution {
    /// The (200, 9) solution of mainnet and testnet.
    Standard(Box<[u8; 1344]>),
    /// The (48, 5) solution of regtest.
    Regtest([u8; 36]),
}

impl std::fmt::Debug for EquihashSolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EquihashSolution::Standard(s) => write!(f, "Standard({}…)", hex::encode(&s[..8])),
            EquihashSolution::Regtest(s) => write!(f, "Regtest({})", hex::encode(s)),
        }
    }
}

versioned_v1!(
    EquihashSolution,
    "EquihashSolution",
    "EquihashSolution v1: u8 variant (0 standard [1344], 1 regtest [36]), then the bytes",
    encode = |s, out| {
        match s {
            EquihashSolution::Standard(b) => {
                out.push(0);
                out.extend_from_slice(&b[..]);
            }
            EquihashSolution::Regtest(b) => {
                out.push(1);
                out.extend_from_slice(b);
            }
        }
    },
    decode = |r| {
        match r.u8()? {
            0 => Ok(EquihashSolution::Standard(Box::new(r.array()?))),
            1 => Ok(EquihashSolution::Regtest(r.array()?)),
            other => Err(r.error(format!("unknown Equihash variant {other}"))),
        }
    }
);

/// The header fields of a block other than its index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlockData {
    /// Block version.
    pub version: u32,
    /// Block time (Unix seconds).
    pub time: i64,
    /// Merkle root of the transaction ids, internal order.
    pub merkle_root: [u8; 32],
    /// The block commitments field (`hashBlockCommitments` / final sapling root).
    pub block_commitments: [u8; 32],
    /// Compact difficulty target.
    pub bits: u32,
    /// Equihash nonce.
    pub nonce: [u8; 32],
    /// Equihash solution.
    pub solution: EquihashSolution,
}

versioned_v1!(
    BlockData,
    "BlockData",
    "BlockData v1: LE u32 version, LE i64 time, [32] merkle root, [32] block commitments, LE u32 bits, [32] nonce, EquihashSolution(tagged)",
    encode = |s, out| {
        out.extend_from_slice(&s.version.to_le_bytes());
        out.extend_from_slice(&s.time.to_le_bytes());
        out.extend_from_slice(&s.merkle_root);
        out.extend_from_slice(&s.block_commitments);
        out.extend_from_slice(&s.bits.to_le_bytes());
        out.extend_from_slice(&s.nonce);
        s.solution.encode_to(out);
    },
    decode = |r| {
        Ok(BlockData {
            version: r.u32_le()?,
            time: r.i64_le()?,
            merkle_root: r.array()?,
            block_commitments: r.array()?,
            bits: r.u32_le()?,
            nonce: r.array()?,
            solution: r.versioned()?,
        })
    }
);

/// A block header as stored in the `headers` table. The table may hold rows of both
/// versions side by side; a decoded value re-encodes as the version it was read from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BlockHeaderData {
    /// Version 1: `BlockIndex` v1 (optional height) and `BlockData` v1.
    V1 {
        /// The index fields.
        index: BlockIndexV1,
        /// The remaining header fields.
        data: BlockData,
    },
    /// Version 2: `BlockIndex` v2 and `BlockData` v1.
    V2 {
        /// The index fields.
        index: BlockIndex,
        /// The remaining header fields.
        data: BlockData,
    },
}

impl BlockHeaderData {
    /// The block's hash.
    pub fn hash(&self) -> BlockHash {
        match self {
            BlockHeaderData::V1 { index, .. } => index.hash,
            BlockHeaderData::V2 { index, .. } => index.hash,
        }
    }

    /// The parent's hash.
    pub fn parent_hash(&self) -> BlockHash {
        match self {
            BlockHeaderData::V1 { index, .. } => index.parent_hash,
            BlockHeaderData::V2 { index, .. } => index.parent_hash,
        }
    }

    /// The cumulative chain work.
    pub fn chainwork(&self) -> ChainWork {
        match self {
            BlockHeaderData::V1 { index, .. } => index.chainwork,
            BlockHeaderData::V2 { index, .. } => index.chainwork,
        }
    }

    /// The height, when the row records one (v2 rows always do).
    pub fn height(&self) -> Option<Height> {
        match self {
            BlockHeaderData::V1 { index, .. } => index.height,
            BlockHeaderData::V2 { index, .. } => Some(index.height),
        }
    }

    /// The non-index header fields.
    pub fn data(&self) -> &BlockData {
        match self {
            BlockHeaderData::V1 { data, .. } | BlockHeaderData::V2 { data, .. } => data,
        }
    }
}

impl Versioned for BlockHeaderData {
    const TYPE_NAME: &'static str = "BlockHeaderData";
    const LATEST: u8 = version::V2;
    const LAYOUT: &'static str = "BlockHeaderData v1: BlockIndex v1(tagged), BlockData(tagged); v2: BlockIndex v2(tagged), BlockData(tagged)";

    fn version(&self) -> u8 {
        match self {
            BlockHeaderData::V1 { .. } => version::V1,
            BlockHeaderData::V2 { .. } => version::V2,
        }
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            BlockHeaderData::V1 { index, data } => {
                index.encode_to(out);
                data.encode_to(out);
            }
            BlockHeaderData::V2 { index, data } => {
                index.encode_to(out);
                data.encode_to(out);
            }
        }
    }

    fn decode_body(v: u8, r: &mut Reader<'_>) -> Result<Self> {
        match v {
            version::V1 => Ok(BlockHeaderData::V1 {
                index: r.versioned()?,
                data: r.versioned()?,
            }),
            version::V2 => Ok(BlockHeaderData::V2 {
                index: r.versioned()?,
                data: r.versioned()?,
            }),
            other => Err(unsupported_version(Self::TYPE_NAME, other)),
        }
    }
}

/// The transaction ids of one block, in block order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct TxidList(pub Vec<TxId>);

versioned_v1!(
    TxidList,
    "TxidList",
    "TxidList v1: CompactSize n, n x TxId(tagged)",
    encode = |s, out| { put_vec(out, &s.0, |out, t| t.encode_to(out)) },
    decode = |r| { Ok(TxidList(r.vec(33, |r| r.versioned())?)) }
);

/// The transparent part of one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct TransparentCompactTx {
    /// Inputs, in order.
    pub vin: Vec<TxInCompact>,
    /// Outputs, in order.
    pub vout: Vec<TxOutCompact>,
}

versioned_v1!(
    TransparentCompactTx,
    "TransparentCompactTx",
    "TransparentCompactTx v1: CompactSize n, n x TxInCompact(tagged), CompactSize m, m x TxOutCompact(tagged)",
    encode = |s, out| {
        put_vec(out, &s.vin, |out, i| i.encode_to(out));
        put_vec(out, &s.vout, |out, o| o.encode_to(out));
    },
    decode = |r| {
        Ok(TransparentCompactTx {
            vin: r.vec(37, |r| r.versioned())?,
            vout: r.vec(30, |r| r.versioned())?,
        })
    }
);

/// The transparent parts of a block's transactions; `None` for a transaction without any.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct TransparentTxList(pub Vec<Option<TransparentCompactTx>>);

versioned_v1!(
    TransparentTxList,
    "TransparentTxList",
    "TransparentTxList v1: CompactSize n, n x Option<TransparentCompactTx(tagged)>",
    encode = |s, out| {
        put_vec(out, &s.0, |out, t| {
            put_option(out, t, |out, t| t.encode_to(out))
        })
    },
    decode = |r| {
        Ok(TransparentTxList(
            r.vec(1, |r| r.option(|r| r.versioned()))?,
        ))
    }
);

/// A [`TransparentTxList`] kept as its encoding (tag and body, as a row stores it) with the
/// offset of every transaction, so one output or one transaction is read without decoding
/// the list: a spam block's list is 2 MB, and an input spending from it needs 30 bytes.
///
/// Building one checks the whole layout (every version tag, count and length, no trailing
/// bytes); reading an output or a transaction decodes just that item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedTransparentList {
    /// A buffer holding the encoding at `item`.
    bytes: Vec<u8>,
    item: std::ops::Range<usize>,
    /// Where each transaction's `Option` tag is in `bytes`, in list order.
    txs: Vec<u32>,
}

/// The encoded length of a v1 `TxInCompact` and `TxOutCompact`, tags included.
const TX_IN_V1_LEN: usize = 37;
const TX_OUT_V1_LEN: usize = 30;

impl EncodedTransparentList {
    /// Indexes the encoding of a `TransparentTxList` (its version tag and body).
    pub fn new(bytes: Vec<u8>) -> Result<Self> {
        let len = bytes.len();
        Self::within(bytes, 0..len)
    }

    /// Indexes the encoding at `item` in `buffer`, keeping the whole buffer rather than
    /// copying the encoding out of it (a row as read from the store, whose entry header and
    /// checksum surround the item: a spam block's row is 2 MB).
    pub fn within(buffer: Vec<u8>, item: std::ops::Range<usize>) -> Result<Self> {
        if buffer.len() > u32::MAX as usize {
            return Err(Error::decode(
                TransparentTxList::TYPE_NAME,
                format!("{} bytes is too long to index", buffer.len()),
            ));
        }
        let Some(bytes) = buffer.get(item.clone()) else {
            return Err(Error::decode(
                TransparentTxList::TYPE_NAME,
                format!(
                    "item {item:?} is outside a buffer of {} bytes",
                    buffer.len()
                ),
            ));
        };
        let mut r = Reader::new(bytes, TransparentTxList::TYPE_NAME);
        expect_v1(&mut r)?;
        let n = r.count(1)?;
        let mut txs = Vec::with_capacity(n);
        for _ in 0..n {
            txs.push((item.end - r.remaining()) as u32);
            r.option(|r| {
                let outer = r.with_type_name(TransparentCompactTx::TYPE_NAME);
                expect_v1(r)?;
                skip_items(r, TX_IN_V1_LEN, TxInCompact::TYPE_NAME)?;
                skip_items(r, TX_OUT_V1_LEN, TxOutCompact::TYPE_NAME)?;
                r.with_type_name(outer);
                Ok(())
            })?;
        }
        r.finish()?;
        Ok(EncodedTransparentList {
            bytes: buffer,
            item,
            txs,
        })
    }

    /// Transactions in the list (with or without a transparent part).
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether the list holds no transactions.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// The whole buffer the list was indexed in: for a list built with
    /// [`EncodedTransparentList::within`] from a stored row, the stored value itself (entry
    /// header, item and checksum), so a writer can store the row from the same bytes.
    pub fn buffer(&self) -> &[u8] {
        &self.bytes
    }

    /// Bytes held, for cache accounting.
    pub fn heap_size(&self) -> usize {
        self.bytes.capacity() + self.txs.capacity() * std::mem::size_of::<u32>()
    }

    /// A reader at transaction `index`'s inputs, with their count; `None` when the list has
    /// no such transaction or it has no transparent part.
    fn tx_reader(&self, index: usize) -> Result<Option<Reader<'_>>> {
        let Some(&at) = self.txs.get(index) else {
            return Ok(None);
        };
        let mut r = Reader::new(
            &self.bytes[at as usize..self.item.end],
            TransparentCompactTx::TYPE_NAME,
        );
        if r.u8()? == 0 {
            return Ok(None);
        }
        expect_v1(&mut r)?;
        Ok(Some(r))
    }

    /// The transparent part of transaction `index`, decoded; `None` when there is no such
    /// transaction or it has no transparent part.
    pub fn tx(&self, index: usize) -> Result<Option<TransparentCompactTx>> {
        let Some(mut r) = self.tx_reader(index)? else {
            return Ok(None);
        };
        Ok(Some(TransparentCompactTx::decode_body(
            version::V1,
            &mut r,
        )?))
    }

    /// Output `vout` of transaction `index`, decoded; `None` when there is no such
    /// transaction or output.
    pub fn output(&self, index: usize, vout: u32) -> Result<Option<TxOutCompact>> {
        let Some(mut r) = self.tx_reader(index)? else {
            return Ok(None);
        };
        let inputs = r.count(TX_IN_V1_LEN)?;
        r.take(inputs * TX_IN_V1_LEN)?;
        let outputs = r.count(TX_OUT_V1_LEN)?;
        let vout = vout as usize;
        if vout >= outputs {
            return Ok(None);
        }
        r.take(vout * TX_OUT_V1_LEN)?;
        Ok(Some(r.versioned()?))
    }

    /// The whole list, decoded.
    pub fn decode(&self) -> Result<TransparentTxList> {
        TransparentTxList::from_bytes(&self.bytes[self.item.clone()])
    }
}

/// Reads a version tag that must be v1.
fn expect_v1(r: &mut Reader<'_>) -> Result<()> {
    match r.u8()? {
        version::V1 => Ok(()),
        other => Err(unsupported_version(r.type_name(), other)),
    }
}

/// Skips a CompactSize-counted run of fixed-length v1 items, checking each one's tag.
fn skip_items(r: &mut Reader<'_>, item_len: usize, type_name: &'static str) -> Result<()> {
    let n = r.count(item_len)?;
    let items = r.take(n * item_len)?;
    if let Some(tag) = items
        .chunks_exact(item_len)
        .map(|item| item[0])
        .find(|tag| *tag != version::V1)
    {
        return Err(unsupported_version(type_name, tag));
    }
    Ok(())
}

/// A compact Sapling spend: the nullifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CompactSaplingSpend {
    /// The nullifier of the note spent.
    pub nullifier: [u8; 32],
}

versioned_v1!(
    CompactSaplingSpend,
    "CompactSaplingSpend",
    "CompactSaplingSpend v1: [32] nullifier",
    len = 32,
    encode = |s, out| { out.extend_from_slice(&s.nullifier) },
    decode = |r| {
        Ok(CompactSaplingSpend {
            nullifier: r.array()?,
        })
    }
);

/// A compact Sapling output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CompactSaplingOutput {
    /// The note commitment.
    pub cmu: [u8; 32],
    /// The ephemeral public key.
    pub ephemeral_key: [u8; 32],
    /// The first 52 bytes of the note ciphertext.
    pub ciphertext: [u8; 52],
}

versioned_v1!(
    CompactSaplingOutput,
    "CompactSaplingOutput",
    "CompactSaplingOutput v1: [32] cmu, [32] ephemeral key, [52] ciphertext",
    len = 116,
    encode = |s, out| {
        out.extend_from_slice(&s.cmu);
        out.extend_from_slice(&s.ephemeral_key);
        out.extend_from_slice(&s.ciphertext);
    },
    decode = |r| {
        Ok(CompactSaplingOutput {
            cmu: r.array()?,
            ephemeral_key: r.array()?,
            ciphertext: r.array()?,
        })
    }
);

/// The Sapling part of one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct SaplingCompactTx {
    /// Net Sapling value balance, `None` when the transaction has no Sapling component.
    pub value: Option<i64>,
    /// Spends.
    pub spends: Vec<CompactSaplingSpend>,
    /// Outputs.
    pub outputs: Vec<CompactSaplingOutput>,
}

versioned_v1!(
    SaplingCompactTx,
    "SaplingCompactTx",
    "SaplingCompactTx v1: Option<LE i64> value, CompactSize n, n x CompactSaplingSpend(tagged), CompactSize m, m x CompactSaplingOutput(tagged)",
    encode = |s, out| {
        put_option(out, &s.value, |out, v| {
            out.extend_from_slice(&v.to_le_bytes())
        });
        put_vec(out, &s.spends, |out, x| x.encode_to(out));
        put_vec(out, &s.outputs, |out, x| x.encode_to(out));
    },
    decode = |r| {
        Ok(SaplingCompactTx {
            value: r.option(|r| r.i64_le())?,
            spends: r.vec(33, |r| r.versioned())?,
            outputs: r.vec(117, |r| r.versioned())?,
        })
    }
);

/// The Sapling parts of a block's transactions.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct SaplingTxList(pub Vec<Option<SaplingCompactTx>>);

versioned_v1!(
    SaplingTxList,
    "SaplingTxList",
    "SaplingTxList v1: CompactSize n, n x Option<SaplingCompactTx(tagged)>",
    encode = |s, out| {
        put_vec(out, &s.0, |out, t| {
            put_option(out, t, |out, t| t.encode_to(out))
        })
    },
    decode = |r| { Ok(SaplingTxList(r.vec(1, |r| r.option(|r| r.versioned()))?)) }
);

/// A compact Orchard action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CompactOrchardAction {
    /// The nullifier of the note spent.
    pub nullifier: [u8; 32],
    /// The commitment of the note created.
    pub cmx: [u8; 32],
    /// The ephemeral public key.
    pub ephemeral_key: [u8; 32],
    /// The first 52 bytes of the note ciphertext.
    pub ciphertext: [u8; 52],
}

versioned_v1!(
    CompactOrchardAction,
    "CompactOrchardAction",
    "CompactOrchardAction v1: [32] nullifier, [32] cmx, [32] ephemeral key, [52] ciphertext",
    len = 148,
    encode = |s, out| {
        out.extend_from_slice(&s.nullifier);
        out.extend_from_slice(&s.cmx);
        out.extend_from_slice(&s.ephemeral_key);
        out.extend_from_slice(&s.ciphertext);
    },
    decode = |r| {
        Ok(CompactOrchardAction {
            nullifier: r.array()?,
            cmx: r.array()?,
            ephemeral_key: r.array()?,
            ciphertext: r.array()?,
        })
    }
);

/// The Orchard part of one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct OrchardCompactTx {
    /// Net Orchard value balance, `None` when the transaction has no Orchard component.
    pub value: Option<i64>,
    /// Actions.
    pub actions: Vec<CompactOrchardAction>,
}

versioned_v1!(
    OrchardCompactTx,
    "OrchardCompactTx",
    "OrchardCompactTx v1: Option<LE i64> value, CompactSize n, n x CompactOrchardAction(tagged)",
    encode = |s, out| {
        put_option(out, &s.value, |out, v| {
            out.extend_from_slice(&v.to_le_bytes())
        });
        put_vec(out, &s.actions, |out, x| x.encode_to(out));
    },
    decode = |r| {
        Ok(OrchardCompactTx {
            value: r.option(|r| r.i64_le())?,
            actions: r.vec(149, |r| r.versioned())?,
        })
    }
);

/// The Orchard parts of a block's transactions.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct OrchardTxList(pub Vec<Option<OrchardCompactTx>>);

versioned_v1!(
    OrchardTxList,
    "OrchardTxList",
    "OrchardTxList v1: CompactSize n, n x Option<OrchardCompactTx(tagged)>",
    encode = |s, out| {
        put_vec(out, &s.0, |out, t| {
            put_option(out, t, |out, t| t.encode_to(out))
        })
    },
    decode = |r| { Ok(OrchardTxList(r.vec(1, |r| r.option(|r| r.versioned()))?)) }
);

/// The note commitment tree roots after a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct CommitmentTreeRoots {
    /// Sapling root.
    pub sapling: [u8; 32],
    /// Orchard root.
    pub orchard: [u8; 32],
}

versioned_v1!(
    CommitmentTreeRoots,
    "CommitmentTreeRoots",
    "CommitmentTreeRoots v1: [32] sapling, [32] orchard",
    len = 64,
    encode = |s, out| {
        out.extend_from_slice(&s.sapling);
        out.extend_from_slice(&s.orchard);
    },
    decode = |r| {
        Ok(CommitmentTreeRoots {
            sapling: r.array()?,
            orchard: r.array()?,
        })
    }
);

/// The note commitment tree sizes after a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct CommitmentTreeSizes {
    /// Sapling tree size.
    pub sapling: u32,
    /// Orchard tree size.
    pub orchard: u32,
}

versioned_v1!(
    CommitmentTreeSizes,
    "CommitmentTreeSizes",
    "CommitmentTreeSizes v1: LE u32 sapling, LE u32 orchard",
    len = 8,
    encode = |s, out| {
        out.extend_from_slice(&s.sapling.to_le_bytes());
        out.extend_from_slice(&s.orchard.to_le_bytes());
    },
    decode = |r| {
        Ok(CommitmentTreeSizes {
            sapling: r.u32_le()?,
            orchard: r.u32_le()?,
        })
    }
);

/// Commitment tree roots and sizes after a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct CommitmentTreeData {
    /// The roots.
    pub roots: CommitmentTreeRoots,
    /// The sizes.
    pub sizes: CommitmentTreeSizes,
}

versioned_v1!(
    CommitmentTreeData,
    "CommitmentTreeData",
    "CommitmentTreeData v1: CommitmentTreeRoots(tagged), CommitmentTreeSizes(tagged)",
    len = 65 + 9,
    encode = |s, out| {
        s.roots.encode_to(out);
        s.sizes.encode_to(out);
    },
    decode = |r| {
        Ok(CommitmentTreeData {
            roots: r.versioned()?,
            sizes: r.versioned()?,
        })
    }
);

/// A database schema version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DbVersion {
    /// Incompatible layout changes.
    pub major: u32,
    /// Additions that need a migration.
    pub minor: u32,
    /// Changes that need at most a metadata update.
    pub patch: u32,
}

impl DbVersion {
    /// A version from its three parts.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        DbVersion {
            major,
            minor,
            patch,
        }
    }
}

impl std::fmt::Display for DbVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

versioned_v1!(
    DbVersion,
    "DbVersion",
    "DbVersion v1: LE u32 major, LE u32 minor, LE u32 patch",
    len = 12,
    encode = |s, out| {
        out.extend_from_slice(&s.major.to_le_bytes());
        out.extend_from_slice(&s.minor.to_le_bytes());
        out.extend_from_slice(&s.patch.to_le_bytes());
    },
    decode = |r| {
        Ok(DbVersion {
            major: r.u32_le()?,
            minor: r.u32_le()?,
            patch: r.u32_le()?,
        })
    }
);

/// Where a migration stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MigrationStatus {
    /// No migration running.
    #[default]
    Empty,
    /// A partial build is in progress.
    PartialBuildInProgress,
    /// A partial build has completed.
    PartialBuildComplete,
    /// The final build is in progress.
    FinalBuildInProgress,
    /// The migration is complete.
    Complete,
}

impl MigrationStatus {
    /// The stored discriminant.
    pub fn to_u8(self) -> u8 {
        match self {
            MigrationStatus::Empty => 0,
            MigrationStatus::PartialBuildInProgress => 1,
            MigrationStatus::PartialBuildComplete => 2,
            MigrationStatus::FinalBuildInProgress => 3,
            MigrationStatus::Complete => 4,
        }
    }
}

versioned_v1!(
    MigrationStatus,
    "MigrationStatus",
    "MigrationStatus v1: u8 (0 Empty, 1 PartialBuildInProgress, 2 PartialBuildComplete, 3 FinalBuildInProgress, 4 Complete)",
    len = 1,
    encode = |s, out| { out.push(s.to_u8()) },
    decode = |r| {
        match r.u8()? {
            0 => Ok(MigrationStatus::Empty),
            1 => Ok(MigrationStatus::PartialBuildInProgress),
            2 => Ok(MigrationStatus::PartialBuildComplete),
            3 => Ok(MigrationStatus::FinalBuildInProgress),
            4 => Ok(MigrationStatus::Complete),
            other => Err(r.error(format!("unknown migration status {other}"))),
        }
    }
);

/// The store's metadata row: schema version, schema hash and migration status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct DbMetadata {
    /// The schema version the store is at.
    pub version: DbVersion,
    /// The schema hash the store was written with.
    pub schema_hash: [u8; 32],
    /// Where a migration stands.
    pub migration_status: MigrationStatus,
}

versioned_v1!(
    DbMetadata,
    "DbMetadata",
    "DbMetadata v1: DbVersion(tagged), [32] schema hash, MigrationStatus(tagged)",
    len = 13 + 32 + 2,
    encode = |s, out| {
        s.version.encode_to(out);
        out.extend_from_slice(&s.schema_hash);
        s.migration_status.encode_to(out);
    },
    decode = |r| {
        Ok(DbMetadata {
            version: r.versioned()?,
            schema_hash: r.array()?,
            migration_status: r.versioned()?,
        })
    }
);

/// The finalised transparent txout-set summary that serves `gettxoutsetinfo`
/// (`FinalisedTxOutSetInfoAccumulator` in the changelog). The arithmetic that maintains it
/// lives in the `accumulator` crate; this is its stored form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TxOutSetInfo {
    /// Transactions with at least one counted unspent output.
    pub transactions: u64,
    /// Counted unspent outputs.
    pub transaction_outputs: u64,
    /// `transaction_outputs * 65`.
    pub bytes_serialized: u64,
    /// XOR of the digests of every counted unspent output.
    pub hash_serialized: [u8; 32],
    /// Sum of their values, in zatoshis.
    pub total_zatoshis: u64,
}

versioned_v1!(
    TxOutSetInfo,
    "TxOutSetInfo",
    "TxOutSetInfo v1: LE u64 transactions, LE u64 transaction_outputs, LE u64 bytes_serialized, [32] hash_serialized, LE u64 total_zatoshis",
    len = 64,
    encode = |s, out| {
        out.extend_from_slice(&s.transactions.to_le_bytes());
        out.extend_from_slice(&s.transaction_outputs.to_le_bytes());
        out.extend_from_slice(&s.bytes_serialized.to_le_bytes());
        out.extend_from_slice(&s.hash_serialized);
        out.extend_from_slice(&s.total_zatoshis.to_le_bytes());
    },
    decode = |r| {
        Ok(TxOutSetInfo {
            transactions: r.u64_le()?,
            transaction_outputs: r.u64_le()?,
            bytes_serialized: r.u64_le()?,
            hash_serialized: r.array()?,
            total_zatoshis: r.u64_le()?,
        })
    }
);

/// One transaction of an [`IndexedBlock`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IndexedTx {
    /// The transaction id.
    pub txid: TxId,
    /// Its transparent part, if any.
    pub transparent: Option<TransparentCompactTx>,
    /// Its Sapling part, if any.
    pub sapling: Option<SaplingCompactTx>,
    /// Its Orchard part, if any.
    pub orchard: Option<OrchardCompactTx>,
}

versioned_v1!(
    IndexedTx,
    "IndexedTx",
    "IndexedTx v1: TxId(tagged), Option<TransparentCompactTx(tagged)>, Option<SaplingCompactTx(tagged)>, Option<OrchardCompactTx(tagged)>",
    encode = |s, out| {
        s.txid.encode_to(out);
        put_option(out, &s.transparent, |out, t| t.encode_to(out));
        put_option(out, &s.sapling, |out, t| t.encode_to(out));
        put_option(out, &s.orchard, |out, t| t.encode_to(out));
    },
    decode = |r| {
        Ok(IndexedTx {
            txid: r.versioned()?,
            transparent: r.option(|r| r.versioned())?,
            sapling: r.option(|r| r.versioned())?,
            orchard: r.option(|r| r.versioned())?,
        })
    }
);

/// A block as the finalised state writes and serves it, and the canonical payload of a
/// block in hot stores, packs and fixtures.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IndexedBlock {
    /// The header (its index carries hash, parent hash, chain work and height).
    pub header: BlockHeaderData,
    /// The transactions, in block order.
    pub transactions: Vec<IndexedTx>,
    /// Commitment tree roots and sizes after the block.
    pub commitment_tree_data: CommitmentTreeData,
}

impl IndexedBlock {
    /// The txids in block order.
    pub fn txids(&self) -> TxidList {
        TxidList(self.transactions.iter().map(|t| t.txid).collect())
    }

    /// The merkle root of the block's txids, computed (not the header's claim).
    pub fn computed_merkle_root(&self) -> [u8; 32] {
        merkle_root(&self.txids().0)
    }
}

versioned_v1!(
    IndexedBlock,
    "IndexedBlock",
    "IndexedBlock v1: BlockHeaderData(tagged), CompactSize n, n x IndexedTx(tagged), CommitmentTreeData(tagged)",
    encode = |s, out| {
        s.header.encode_to(out);
        put_vec(out, &s.transactions, |out, t| t.encode_to(out));
        s.commitment_tree_data.encode_to(out);
    },
    decode = |r| {
        Ok(IndexedBlock {
            header: r.versioned()?,
            transactions: r.vec(37, |r| r.versioned())?,
            commitment_tree_data: r.versioned()?,
        })
    }
);

/// SHA-256d, as Bitcoin and Zcash hash headers, transactions and merkle nodes.
pub fn sha256d(data: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(Sha256::digest(data)).into()
}

/// The Bitcoin-style merkle root of txids (internal byte order): SHA-256d of each
/// concatenated pair, the last node duplicated at odd widths. The root of no txids is zero.
pub fn merkle_root(txids: &[TxId]) -> [u8; 32] {
    if txids.is_empty() {
        return [0; 32];
    }
    let mut level: Vec<[u8; 32]> = txids.iter().map(|t| t.0).collect();
    let mut pair = [0u8; 64];
    while level.len() > 1 {
        if level.len() % 2 == 1 {
            level.push(*level.last().unwrap_or(&[0; 32]));
        }
        level = level
            .chunks_exact(2)
            .map(|c| {
                pair[..32].copy_from_slice(&c[0]);
                pair[32..].copy_from_slice(&c[1]);
                sha256d(&pair)
            })
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txid(hex_le: &str) -> TxId {
        TxId(hex::decode(hex_le).unwrap().try_into().unwrap())
    }

    /// Bitcoin block 100000: four transactions, merkle root
    /// f3e94742aca4b5ef85488dc37c06c3282295ffec960994b2c0d5ac2a25a95766 (display order).
    #[test]
    fn merkle_root_of_bitcoin_block_100000() {
        let display = [
            "8c14f0db3df150123e6f3dbbf30f8b955a8249b62ac1d1ff16284aefa3d06d87",
            "fff2525b8931402dd09222c50775608f75787bd2b87e56995a7bdd30f79702c4",
            "6359f0868171b1d194cbee1af2f16ea598ae8fad666d9b012c8ed2b79a236ec4",
            "e9a66845e05d5abc0ad04ec80f774a7e585c6e8db975962d069a522137b80c1d",
        ];
        let txids: Vec<TxId> = display
            .iter()
            .map(|h| {
                let mut b = hex::decode(h).unwrap();
                b.reverse();
                TxId(b.try_into().unwrap())
            })
            .collect();
        let mut root = merkle_root(&txids);
        root.reverse();
        assert_eq!(
            hex::encode(root),
            "f3e94742aca4b5ef85488dc37c06c3282295ffec960994b2c0d5ac2a25a95766"
        );
    }

    #[test]
    fn merkle_root_of_one_txid_is_the_txid() {
        let t = txid("0101010101010101010101010101010101010101010101010101010101010101");
        assert_eq!(merkle_root(&[t]), t.0);
    }

    #[test]
    fn encoded_item_lengths_are_the_fixed_lengths() {
        assert_eq!(TxInCompact::body_len(version::V1), Some(TX_IN_V1_LEN - 1));
        assert_eq!(TxOutCompact::body_len(version::V1), Some(TX_OUT_V1_LEN - 1));
    }

    #[test]
    fn encoded_transparent_list_rejects_a_bad_item_tag_and_trailing_bytes() {
        let out = TxOutCompact {
            value: 5,
            script_hash: [7; 20],
            script_type: ScriptType::P2pkh,
        };
        let list = TransparentTxList(vec![
            None,
            Some(TransparentCompactTx {
                vin: vec![],
                vout: vec![out, out],
            }),
        ]);
        let bytes = list.to_bytes();
        let encoded = EncodedTransparentList::new(bytes.clone()).unwrap();
        assert_eq!(encoded.output(1, 1).unwrap(), Some(out));
        assert_eq!(encoded.output(0, 0).unwrap(), None);
        // The second output's tag is the list's last 30 bytes' first.
        let mut bad = bytes.clone();
        let at = bad.len() - TX_OUT_V1_LEN;
        bad[at] = 2;
        let err = EncodedTransparentList::new(bad).unwrap_err().to_string();
        assert!(err.contains("TxOutCompact"), "{err}");
        let mut long = bytes.clone();
        long.push(0);
        assert!(EncodedTransparentList::new(long).is_err());

        // Inside a larger buffer (a stored entry's header before, its checksum after): the
        // same reads, nothing read outside the item, and an item outside the buffer is an
        // error.
        let mut buffer = vec![0xAA; 3];
        buffer.extend_from_slice(&bytes);
        buffer.extend_from_slice(&[0xBB; 32]);
        let within = EncodedTransparentList::within(buffer.clone(), 3..3 + bytes.len()).unwrap();
        assert_eq!(within.output(1, 1).unwrap(), Some(out));
        assert_eq!(within.output(1, 2).unwrap(), None);
        assert_eq!(within.decode().unwrap(), list);
        assert_eq!(within.len(), 2);
        assert!(EncodedTransparentList::within(buffer.clone(), 3..buffer.len()).is_err());
        assert!(EncodedTransparentList::within(buffer.clone(), 3..buffer.len() + 1).is_err());
    }

    #[test]
    fn odd_width_duplicates_the_last_node() {
        let a = TxId([1; 32]);
        let b = TxId([2; 32]);
        let c = TxId([3; 32]);
        assert_eq!(merkle_root(&[a, b, c]), merkle_root(&[a, b, c, c]));
    }
}
