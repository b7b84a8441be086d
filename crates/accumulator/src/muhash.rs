//! MuHash3072: the secure multiset hash Bitcoin Core uses for
//! `gettxoutsetinfo hash_type=muhash` (feature `muhash`).
//!
//! Construction, as in Bitcoin Core's `src/crypto/muhash.{h,cpp}`:
//! - an element's bytes are hashed with SHA-256; that hash keys ChaCha20 (zero nonce, block
//!   counter from 0), whose first 384 keystream bytes, read as a little-endian 3072-bit
//!   number, are the element's value;
//! - the state is a fraction `numerator / denominator` modulo the prime
//!   `p = 2^3072 − 1103717`: inserting multiplies the value into the numerator, removing
//!   multiplies it into the denominator, so each update is one modular multiplication;
//! - finalising computes `numerator · denominator⁻¹ mod p` (the one inversion), writes it as
//!   384 little-endian bytes and hashes them with SHA-256. The 32 bytes are returned in
//!   SHA-256 output order; Bitcoin Core *displays* a `uint256` byte-reversed.
//!
//! The modular arithmetic is `crypto-bigint`'s constant-modulus Montgomery form
//! (`ConstMontyForm`, safegcd inversion).
//!
//! Security: the multiset hash is collision resistant under the discrete-logarithm-style
//! assumptions of Bellare–Micciancio / Clarke et al. (finding two multisets with the same
//! product is believed as hard as a 3072-bit discrete logarithm), so unlike the XOR hash it
//! holds against an adversary who chooses outputs.

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use crypto_bigint::modular::{ConstMontyForm, ConstMontyParams, FixedMontyParams};
use crypto_bigint::{Odd, U64, U3072};
use sha2::{Digest, Sha256};
use storage_traits::model::Outpoint;
use storage_traits::model::TxOutCompact;

use crate::accumulator::TxDelta;
use crate::digest::{MESSAGE_LEN, entry_message, is_counted};
use crate::error::Result;
use crate::rebuild::{SetCommitment, UnspentOutput};

/// The byte length of one 3072-bit number.
pub const NUM3072_BYTES: usize = 384;

/// The modulus `2^3072 − 1103717`, the largest 3072-bit safe prime (as in Bitcoin Core).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MuHashModulus;

impl ConstMontyParams<{ U3072::LIMBS }> for MuHashModulus {
    const LIMBS: usize = U3072::LIMBS;
    const PARAMS: FixedMontyParams<{ U3072::LIMBS }> = FixedMontyParams::new_vartime(
        Odd::<U3072>::from_be_hex(concat!(
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffef289b",
        )),
    );
}

type Num3072 = ConstMontyForm<MuHashModulus, { U3072::LIMBS }>;

/// A 3072-bit number from 384 little-endian bytes, reduced modulo `p` (inputs at or above
/// `p` are accepted, as Bitcoin Core accepts them).
fn num_from_le(bytes: &[u8; NUM3072_BYTES]) -> Num3072 {
    Num3072::new(&U3072::from_le_slice(bytes))
}

/// The normalised (fully reduced) value as 384 little-endian bytes.
fn num_to_le(n: &Num3072) -> [u8; NUM3072_BYTES] {
    let mut out = [0u8; NUM3072_BYTES];
    out.copy_from_slice(&n.retrieve().to_le_bytes());
    out
}

/// The 3072-bit value of an element as a plain integer below `p`: ChaCha20 keyed by
/// SHA-256(`data`), zero nonce, first 384 keystream bytes read little-endian.
fn element_raw(data: &[u8]) -> U3072 {
    let key: [u8; 32] = Sha256::digest(data).into();
    let mut keystream = [0u8; NUM3072_BYTES];
    let mut cipher = ChaCha20::new(&key.into(), &[0u8; 12].into());
    cipher.apply_keystream(&mut keystream);
    let x = U3072::from_le_slice(&keystream);
    // At or above p with probability ~2^-3052; reduce so Montgomery inputs stay below p.
    let p = MuHashModulus::PARAMS.modulus().get();
    if x >= p { x.wrapping_sub(&p) } else { x }
}

/// The value of an element in Montgomery form (one Montgomery multiplication by R²).
fn element(data: &[u8]) -> Num3072 {
    Num3072::new(&element_raw(data))
}

/// The product of the elements of `datas` with one Montgomery multiplication each.
///
/// Each raw value `x` is taken *as* a Montgomery representation, i.e. of `x·R⁻¹`, which
/// skips the conversion; the product of `k` of them is `∏x · R⁻ᵏ`, corrected at the end by
/// one multiplication by `Rᵏ` (`R = 2^3072 ≡ 1103717 mod p`).
fn product_of_elements<'a>(datas: impl Iterator<Item = &'a [u8; MESSAGE_LEN]>) -> Num3072 {
    let mut product = Num3072::ONE;
    let mut k = 0u64;
    for data in datas {
        product = product.mul(&Num3072::from_montgomery(element_raw(data)));
        k += 1;
    }
    let r = Num3072::new(&U3072::from_u32(R_MOD_P));
    product.mul(&r.pow_vartime(&U64::from_u64(k)))
}

/// `2^3072 mod p`.
const R_MOD_P: u32 = 1_103_717;

/// A MuHash3072 accumulator: a fraction of element values modulo `2^3072 − 1103717`.
///
/// Equality is equality of the fractions (`a/b == c/d` when `a·d == c·b`), so two states
/// of the same multiset compare equal however they were reached.
#[derive(Clone, Copy, Debug)]
pub struct MuHash3072 {
    numerator: Num3072,
    denominator: Num3072,
}

impl PartialEq for MuHash3072 {
    fn eq(&self, other: &Self) -> bool {
        self.numerator.mul(&other.denominator) == other.numerator.mul(&self.denominator)
    }
}

impl Eq for MuHash3072 {}

impl Default for MuHash3072 {
    fn default() -> Self {
        MuHash3072::new()
    }
}

impl MuHash3072 {
    /// The hash of the empty multiset (`1 / 1`).
    pub fn new() -> Self {
        MuHash3072 {
            numerator: Num3072::ONE,
            denominator: Num3072::ONE,
        }
    }

    /// The hash of the one-element multiset `{data}` (Bitcoin Core's
    /// `MuHash3072(Span<const unsigned char>)`).
    pub fn from_element(data: &[u8]) -> Self {
        MuHash3072 {
            numerator: element(data),
            denominator: Num3072::ONE,
        }
    }

    /// Adds an element.
    pub fn insert(&mut self, data: &[u8]) -> &mut Self {
        self.numerator = self.numerator.mul(&element(data));
        self
    }

    /// Removes an element (it need not have been inserted first: the state is a fraction).
    pub fn remove(&mut self, data: &[u8]) -> &mut Self {
        self.denominator = self.denominator.mul(&element(data));
        self
    }

    /// The union with another multiset (Bitcoin Core's `operator*=`).
    pub fn multiply(&mut self, other: &MuHash3072) -> &mut Self {
        self.numerator = self.numerator.mul(&other.numerator);
        self.denominator = self.denominator.mul(&other.denominator);
        self
    }

    /// The difference with another multiset (Bitcoin Core's `operator/=`).
    pub fn divide(&mut self, other: &MuHash3072) -> &mut Self {
        self.numerator = self.numerator.mul(&other.denominator);
        self.denominator = self.denominator.mul(&other.numerator);
        self
    }

    /// The normalised value `numerator / denominator mod p`. A zero denominator (possible
    /// only from deserialised bytes) inverts to zero, as Bitcoin Core's inversion does.
    fn value(&self) -> Num3072 {
        let inverse = self
            .denominator
            .invert_vartime()
            .into_option()
            .unwrap_or(Num3072::ZERO);
        self.numerator.mul(&inverse)
    }

    /// The 32-byte digest: SHA-256 of the normalised value's 384 little-endian bytes, in
    /// SHA-256 output order (Bitcoin Core prints it reversed, as a `uint256`).
    pub fn finalize(&self) -> [u8; 32] {
        Sha256::digest(num_to_le(&self.value())).into()
    }

    /// Replaces the state by its normalised value over one (Bitcoin Core's `Finalize`
    /// leaves the state like this). Equal sets then have equal serialisations.
    pub fn normalize(&mut self) {
        self.numerator = self.value();
        self.denominator = Num3072::ONE;
    }

    /// Bitcoin Core's serialisation: numerator then denominator, 384 little-endian bytes
    /// each, without a version. Values are fully reduced.
    pub fn to_core_bytes(&self) -> [u8; 2 * NUM3072_BYTES] {
        let mut out = [0u8; 2 * NUM3072_BYTES];
        out[..NUM3072_BYTES].copy_from_slice(&num_to_le(&self.numerator));
        out[NUM3072_BYTES..].copy_from_slice(&num_to_le(&self.denominator));
        out
    }

    /// Parses Bitcoin Core's serialisation. Numbers at or above the modulus are reduced.
    pub fn from_core_bytes(bytes: &[u8; 2 * NUM3072_BYTES]) -> Self {
        let mut num = [0u8; NUM3072_BYTES];
        let mut den = [0u8; NUM3072_BYTES];
        num.copy_from_slice(&bytes[..NUM3072_BYTES]);
        den.copy_from_slice(&bytes[NUM3072_BYTES..]);
        MuHash3072 {
            numerator: num_from_le(&num),
            denominator: num_from_le(&den),
        }
    }
}

// The persisted form: the version tag 0x01, then Bitcoin Core's 768 bytes.
storage_traits::versioned_v1!(
    MuHash3072,
    "MuHash3072",
    "MuHash3072 v1: [384] LE numerator, [384] LE denominator (mod 2^3072-1103717)",
    len = 2 * NUM3072_BYTES,
    encode = |s, out| { out.extend_from_slice(&s.to_core_bytes()) },
    decode = |r| { Ok(MuHash3072::from_core_bytes(&r.array()?)) }
);

/// MuHash3072 over the txout set: the element of a counted unspent output is its 81-byte
/// [`entry_message`], the same message the XOR accumulator digests. Uncounted outputs
/// (not P2PKH or P2SH) are skipped, as there.
///
/// Maintained incrementally (`insert_output` / `remove_output`: unlike the XOR
/// accumulator it has no per-transaction counter, so no transition needs stating), and
/// rebuilt in bulk through [`mod@crate::rebuild`] like the XOR accumulator, alone or paired
/// with it in one pass: `rebuild::<(Accumulator, TxOutSetMuHash), _>(outputs)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxOutSetMuHash {
    hash: MuHash3072,
}

impl TxOutSetMuHash {
    /// The empty set.
    pub fn new() -> Self {
        TxOutSetMuHash::default()
    }

    /// Wraps a MuHash state (for example a deserialised one).
    pub fn from_muhash(hash: MuHash3072) -> Self {
        TxOutSetMuHash { hash }
    }

    /// The underlying MuHash state.
    pub fn muhash(&self) -> &MuHash3072 {
        &self.hash
    }

    /// Adds an unspent output. Returns whether it counted.
    pub fn insert_output(&mut self, outpoint: &Outpoint, out: &TxOutCompact) -> bool {
        if !is_counted(out) {
            return false;
        }
        self.hash.insert(&entry_message(outpoint, out));
        true
    }

    /// Removes an output that stopped being unspent. Returns whether it counted.
    pub fn remove_output(&mut self, outpoint: &Outpoint, out: &TxOutCompact) -> bool {
        if !is_counted(out) {
            return false;
        }
        self.hash.remove(&entry_message(outpoint, out));
        true
    }

    /// Applies a transaction delta: inserts `added`, removes `removed` (uncounted outputs
    /// skipped). The same delta the XOR [`crate::Accumulator::apply`] takes, so a host
    /// maintains both from one description; `counted_unspent_before` is not needed here.
    pub fn apply(&mut self, delta: &TxDelta<'_>) {
        for (vout, out) in delta.added {
            let op = Outpoint {
                prev_txid: delta.txid,
                prev_index: *vout,
            };
            self.insert_output(&op, out);
        }
        for (vout, out) in delta.removed {
            let op = Outpoint {
                prev_txid: delta.txid,
                prev_index: *vout,
            };
            self.remove_output(&op, out);
        }
    }

    /// The union with a disjoint set.
    pub fn combine(&self, other: &TxOutSetMuHash) -> TxOutSetMuHash {
        let mut hash = self.hash;
        hash.multiply(&other.hash);
        TxOutSetMuHash { hash }
    }

    /// The 32-byte digest (SHA-256 output order).
    pub fn finalize(&self) -> [u8; 32] {
        self.hash.finalize()
    }
}

impl SetCommitment for TxOutSetMuHash {
    fn empty() -> Self {
        TxOutSetMuHash::new()
    }

    fn fold_chunk(chunk: &[UnspentOutput]) -> Result<Self> {
        // One Montgomery multiplication per element, no denominator work.
        let messages: Vec<[u8; MESSAGE_LEN]> = chunk
            .iter()
            .filter(|(_, out)| is_counted(out))
            .map(|(op, out)| entry_message(op, out))
            .collect();
        let product = product_of_elements(messages.iter());
        Ok(TxOutSetMuHash {
            hash: MuHash3072 {
                numerator: product,
                denominator: Num3072::ONE,
            },
        })
    }

    fn merge(self, other: Self) -> Result<Self> {
        Ok(self.combine(&other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modulus_is_2_pow_3072_minus_1103717() {
        let expected = U3072::MAX.wrapping_sub(&U3072::from_u32(1_103_716));
        assert_eq!(MuHashModulus::PARAMS.modulus().get(), expected);
    }

    #[test]
    fn r_mod_p_is_2_pow_3072_mod_p() {
        // R·1 in Montgomery form is R² mod p's image: check via a plain conversion.
        let one_as_montgomery = Num3072::from_montgomery(U3072::ONE); // value R⁻¹
        let r = Num3072::new(&U3072::from_u32(R_MOD_P));
        assert_eq!(one_as_montgomery.mul(&r), Num3072::ONE);
    }

    #[test]
    fn bulk_product_equals_one_by_one() {
        let msgs: Vec<[u8; MESSAGE_LEN]> = (0..5u8).map(|i| [i; MESSAGE_LEN]).collect();
        let mut one_by_one = Num3072::ONE;
        for m in &msgs {
            one_by_one = one_by_one.mul(&element(m));
        }
        assert_eq!(product_of_elements(msgs.iter()), one_by_one);
        assert_eq!(product_of_elements([].iter()), Num3072::ONE);
    }

    #[test]
    fn the_modulus_itself_reduces_to_zero() {
        let p = MuHashModulus::PARAMS.modulus().get();
        let mut le = [0u8; NUM3072_BYTES];
        le.copy_from_slice(&p.to_le_bytes());
        assert_eq!(num_from_le(&le), Num3072::ZERO);
    }
}
