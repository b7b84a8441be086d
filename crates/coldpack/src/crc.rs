//! CRC-32C (Castagnoli), the checksum of every record, the index and the trailer
//! (`FORMAT.md`): the same function as the `crc32c` crate, computed faster on long inputs
//! where the CPU has 512-bit carry-less multiplication.
//!
//! Why: a record read is one pread plus this CRC over the same bytes, so the CRC's speed
//! sets how close a verified read comes to a raw pread. The `crc32c` crate uses the SSE 4.2
//! `crc32` instruction, 8 bytes per instruction on three interleaved streams (~21–26 GiB/s
//! on this machine's AMD EPYC, 3.6 GHz). `VPCLMULQDQ` on 512-bit registers folds 64 bytes
//! per pair of instructions into four independent accumulators: ~52 GiB/s here, which is
//! the multiplier's issue rate (one 512-bit carry-less multiply every other cycle, measured).
//! The result is the same CRC, bit for bit (tests compare it with the `crc32c` crate on
//! every length up to 2 KiB, unaligned starts, random long inputs and initial values, and
//! lengths around the hybrid's block boundaries).
//!
//! What runs where: inputs of at least [`FOLD_MIN`] bytes on a CPU with AVX-512F/VL,
//! VPCLMULQDQ, PCLMULQDQ and SSE 4.2 take `x86::fold_hybrid`, which runs whole 22.5 KiB
//! blocks with three `crc32` streams beside the folding and hands the rest (and inputs
//! under a block) to `x86::fold_avx512`; everything else (shorter inputs, other CPUs,
//! other architectures) the `crc32c` crate (hardware `crc32` or its tables). The 128-bit
//! `PCLMULQDQ` folding (`x86::fold_sse`) only handles the AVX-512 path's last 64–255
//! bytes: on its own it is *slower* than the crate on long inputs here (the 128-bit form
//! issues at the same rate as the 512-bit one, a quarter of the bytes), and at best equal
//! on CPUs whose `PCLMULQDQ` issues every cycle, so it is not used as a fallback. Tried and
//! dropped: eight accumulators (no faster: the multiplier is the limit) and 256-bit
//! `VPCLMULQDQ` (half the speed).
//!
//! The hybrid: the multiplier is the limit of folding (~58 GB/s here), and the scalar
//! `crc32` unit is idle beside it. Each block is a vector part (64 steps of 256 bytes)
//! followed by three scalar streams (64 steps of 32 bytes each); one loop issues a fold
//! step and four `crc32` per stream, so both units stay busy: ~63–69 GB/s on 256 KiB–2 MiB
//! against ~58 for folding alone (best of 5 over 256 MiB, quiet machine; criterion's
//! `crc32c` group under load 3: 2 MiB 49–53 µs against 54 µs before). The four registers
//! are joined at the end of the block by moving each over the bytes that follow it
//! (`r·x^(8n) mod P`: one carry-less multiply by a compile-time constant and one `crc32`).
//! (An earlier, unblocked attempt had measured +10% on 26–256 KiB and −6% on 2 MiB.)
//!
//! How (the reflected-CRC folding of Intel's "Fast CRC Computation Using PCLMULQDQ"): a
//! 128-bit lane of message bits `L·x^64 + H` (its low and high 64-bit halves) that lies `D`
//! bits before another lane is moved onto it as `L·(x^(D+64) mod P) + H·(x^D mod P)`,
//! which has the same remainder mod `P` and fits in 128 bits. Each constant is a 32-bit
//! remainder computed at compile time by [`x_pow_mod`] (the `-33` and `+31` in
//! [`fold_constants`] absorb the one-bit offset of a reflected carry-less product and the
//! constant's place in the low half of its 64-bit lane). The last 128 bits are reduced by
//! two `crc32` instructions, which compute exactly `(crc·x^64 + v·x^32) mod P`.

/// Inputs shorter than this go straight to the `crc32c` crate: folding has a fixed cost
/// (loading constants, the final reduction) that only pays off on longer inputs.
pub const FOLD_MIN: usize = 256;

/// The CRC-32C polynomial, bit-reflected (`FORMAT.md`: `0x82F63B78`).
const POLY_REFLECTED: u32 = 0x82F6_3B78;

/// CRC-32C of `data` (initial value and final xor `0xFFFFFFFF`, as `FORMAT.md` says).
#[inline]
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_append(0, data)
}

/// The CRC-32C of the bytes `crc` was computed over followed by `data`
/// (`crc32c_append(crc32c(a), b) == crc32c(a ‖ b)`), like `crc32c::crc32c_append`.
#[inline]
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if data.len() >= FOLD_MIN
        && let Some(f) = x86::fold_fn()
    {
        // SAFETY: `fold_fn` returns a function only when the CPU has every feature that
        // function is compiled for.
        return unsafe { f(crc, data) };
    }
    crc32c::crc32c_append(crc, data)
}

/// `x^n mod P` as a reflected 32-bit remainder (bit 31 holds the coefficient of `x^0`,
/// bit 0 that of `x^31`).
pub const fn x_pow_mod(n: u32) -> u32 {
    let mut v = 0x8000_0000u32; // x^0
    let mut i = 0;
    while i < n {
        // Multiplying by x moves every coefficient one bit down; x^31 · x = x^32 ≡ P − x^32.
        v = if v & 1 != 0 {
            (v >> 1) ^ POLY_REFLECTED
        } else {
            v >> 1
        };
        i += 1;
    }
    v
}

/// The two constants that fold a 128-bit lane forward by `bytes` bytes: the first
/// multiplies its low 64-bit half (the earlier message bytes), the second its high half.
pub const fn fold_constants(bytes: u32) -> (u64, u64) {
    let d = bytes * 8;
    (x_pow_mod(d + 31) as u64, x_pow_mod(d - 33) as u64)
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use std::arch::x86_64::*;
    use std::sync::atomic::{AtomicU8, Ordering};

    use super::fold_constants;

    /// A folding implementation: `unsafe` because it needs CPU features checked first.
    pub(crate) type FoldFn = unsafe fn(u32, &[u8]) -> u32;

    const UNKNOWN: u8 = 0;
    const NONE: u8 = 1;
    const AVX512: u8 = 2;
    static CHOSEN: AtomicU8 = AtomicU8::new(UNKNOWN);

    /// The folding implementation for long inputs on this CPU, if it has one (detected
    /// once; see the module documentation for why 128-bit folding is not one).
    #[inline]
    pub(crate) fn fold_fn() -> Option<FoldFn> {
        let mut chosen = CHOSEN.load(Ordering::Relaxed);
        if chosen == UNKNOWN {
            chosen = if has_avx512_fold() { AVX512 } else { NONE };
            CHOSEN.store(chosen, Ordering::Relaxed);
        }
        match chosen {
            AVX512 => Some(fold_hybrid as FoldFn),
            _ => None,
        }
    }

    /// Whether [`fold_sse`] may run here.
    pub(crate) fn has_sse_fold() -> bool {
        is_x86_feature_detected!("sse4.2") && is_x86_feature_detected!("pclmulqdq")
    }

    /// Whether [`fold_avx512`] may run here.
    pub(crate) fn has_avx512_fold() -> bool {
        has_sse_fold()
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("vpclmulqdq")
    }

    /// Fold constants as `i64` pairs (low half, high half), computed at compile time.
    const fn pair(bytes: u32) -> (i64, i64) {
        let (lo, hi) = fold_constants(bytes);
        (lo as i64, hi as i64)
    }
    const K16: (i64, i64) = pair(16);
    const K32: (i64, i64) = pair(32);
    const K48: (i64, i64) = pair(48);
    const K64: (i64, i64) = pair(64);
    const K128: (i64, i64) = pair(128);
    const K192: (i64, i64) = pair(192);
    const K256: (i64, i64) = pair(256);

    /// `x.lo·k.lo ⊕ x.hi·k.hi`: the 128-bit lane `x` moved onto the lane `k` was made for.
    macro_rules! fold128 {
        ($x:expr, $k:expr) => {
            _mm_xor_si128(
                _mm_clmulepi64_si128::<0x00>($x, $k),
                _mm_clmulepi64_si128::<0x11>($x, $k),
            )
        };
    }

    /// The same on each of the four 128-bit lanes of a 512-bit vector, xored into `$acc`
    /// (`vpternlogq` 0x96 is a three-way xor).
    macro_rules! fold512_xor {
        ($x:expr, $k:expr, $acc:expr) => {
            _mm512_ternarylogic_epi64::<0x96>(
                _mm512_clmulepi64_epi128::<0x00>($x, $k),
                _mm512_clmulepi64_epi128::<0x11>($x, $k),
                $acc,
            )
        };
    }

    /// Reduces the 128-bit lane `x` (the message bits up to here) to the CRC register (not
    /// inverted): `(L·x^64 + H)·x^32 mod P`, which is what two `crc32` instructions from
    /// zero compute.
    macro_rules! reduce128 {
        ($x:expr) => {{
            let x = $x;
            let lo = _mm_cvtsi128_si64(x) as u64;
            let hi = _mm_extract_epi64::<1>(x) as u64;
            _mm_crc32_u64(_mm_crc32_u64(0, lo), hi) as u32
        }};
    }

    /// 128-bit folding, four lanes (64 bytes) per step; inputs under 64 bytes, and the
    /// tail under 64 bytes, go through the `crc32c` crate.
    ///
    /// # Safety
    /// The CPU must have sse4.2 and pclmulqdq.
    #[target_feature(enable = "sse4.2,pclmulqdq")]
    pub(crate) unsafe fn fold_sse(crc: u32, data: &[u8]) -> u32 {
        let blocks = data.len() / 64;
        if blocks == 0 {
            return crc32c::crc32c_append(crc, data);
        }
        let (body, tail) = data.split_at(blocks * 64);
        let p = body.as_ptr() as *const __m128i;
        // SAFETY: `i < 4 · blocks`, so the 16 bytes read are inside `body`.
        let load = |i: usize| unsafe { _mm_loadu_si128(p.add(i)) };
        let k64 = _mm_set_epi64x(K64.1, K64.0);
        let mut x0 = _mm_xor_si128(load(0), _mm_cvtsi32_si128(!crc as i32));
        let mut x1 = load(1);
        let mut x2 = load(2);
        let mut x3 = load(3);
        for blk in 1..blocks {
            x0 = _mm_xor_si128(fold128!(x0, k64), load(4 * blk));
            x1 = _mm_xor_si128(fold128!(x1, k64), load(4 * blk + 1));
            x2 = _mm_xor_si128(fold128!(x2, k64), load(4 * blk + 2));
            x3 = _mm_xor_si128(fold128!(x3, k64), load(4 * blk + 3));
        }
        let k48 = _mm_set_epi64x(K48.1, K48.0);
        let k32 = _mm_set_epi64x(K32.1, K32.0);
        let k16 = _mm_set_epi64x(K16.1, K16.0);
        let x = _mm_xor_si128(
            _mm_xor_si128(fold128!(x0, k48), fold128!(x1, k32)),
            _mm_xor_si128(fold128!(x2, k16), x3),
        );
        let reg = reduce128!(x);
        crc32c::crc32c_append(!reg, tail)
    }

    /// 512-bit folding, four 64-byte accumulators (256 bytes) per step; inputs under 256
    /// bytes, and the tail under 256 bytes, go through [`fold_sse`].
    ///
    /// # Safety
    /// The CPU must have sse4.2, pclmulqdq, avx512f, avx512vl and vpclmulqdq.
    #[target_feature(enable = "sse4.2,pclmulqdq,avx512f,avx512vl,vpclmulqdq")]
    pub(crate) unsafe fn fold_avx512(crc: u32, data: &[u8]) -> u32 {
        let blocks = data.len() / 256;
        if blocks == 0 {
            // SAFETY: fold_sse needs a subset of this function's features.
            return unsafe { fold_sse(crc, data) };
        }
        let (body, tail) = data.split_at(blocks * 256);
        let p = body.as_ptr() as *const __m512i;
        // SAFETY: `i < 4 · blocks`, so the 64 bytes read are inside `body`.
        let load = |i: usize| unsafe { _mm512_loadu_si512(p.add(i)) };
        let k4 = |k: (i64, i64)| _mm512_set_epi64(k.1, k.0, k.1, k.0, k.1, k.0, k.1, k.0);
        let k256 = k4(K256);
        let mut x0 = _mm512_xor_si512(
            load(0),
            _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, (!crc).into()),
        );
        let mut x1 = load(1);
        let mut x2 = load(2);
        let mut x3 = load(3);
        for blk in 1..blocks {
            x0 = fold512_xor!(x0, k256, load(4 * blk));
            x1 = fold512_xor!(x1, k256, load(4 * blk + 1));
            x2 = fold512_xor!(x2, k256, load(4 * blk + 2));
            x3 = fold512_xor!(x3, k256, load(4 * blk + 3));
        }
        let reg = reduce512([x0, x1, x2, x3]);
        // SAFETY: as above.
        unsafe { fold_sse(!reg, tail) }
    }

    /// Reduces four 64-byte accumulators (consecutive in the message, `x[3]` last) to the
    /// CRC register (not inverted), as [`fold_avx512`] and [`fold_hybrid`] end each run.
    #[target_feature(enable = "sse4.2,pclmulqdq,avx512f,avx512vl,vpclmulqdq")]
    #[inline]
    fn reduce512([x0, x1, x2, x3]: [__m512i; 4]) -> u32 {
        let k4 = |k: (i64, i64)| _mm512_set_epi64(k.1, k.0, k.1, k.0, k.1, k.0, k.1, k.0);
        // The four accumulators onto the last one.
        let y = fold512_xor!(x0, k4(K192), x3);
        let y = fold512_xor!(x1, k4(K128), y);
        let y = fold512_xor!(x2, k4(K64), y);
        // Its first three 16-byte lanes onto the fourth (whose constants are zero: that
        // lane is taken as it is).
        let k = _mm512_set_epi64(0, 0, K16.1, K16.0, K32.1, K32.0, K48.1, K48.0);
        let folded = fold512_xor!(y, k, _mm512_maskz_mov_epi64(0b1100_0000, y));
        let x = _mm_xor_si128(
            _mm_xor_si128(
                _mm512_castsi512_si128(folded),
                _mm512_extracti32x4_epi32::<1>(folded),
            ),
            _mm_xor_si128(
                _mm512_extracti32x4_epi32::<2>(folded),
                _mm512_extracti32x4_epi32::<3>(folded),
            ),
        );
        reduce128!(x)
    }

    /// Steps per [`HYBRID_BLOCK`]: each step folds 256 bytes in the vector unit and runs
    /// [`HYBRID_WORDS`] `crc32` instructions on each of three scalar streams.
    const HYBRID_STEPS: usize = 64;
    /// 8-byte words per scalar stream per step: 4 (96 bytes beside the vector's 256)
    /// measured fastest here (2–8 tried: 68–71 GB/s at 2 MiB against 58 for folding alone).
    const HYBRID_WORDS: usize = 4;
    /// Bytes of one scalar stream in a block.
    const HYBRID_STREAM: usize = HYBRID_STEPS * HYBRID_WORDS * 8;
    /// Bytes of the vector part of a block.
    const HYBRID_VECTOR: usize = HYBRID_STEPS * 256;
    /// A block: the vector part, then three scalar streams (22,528 bytes).
    pub(crate) const HYBRID_BLOCK: usize = HYBRID_VECTOR + 3 * HYBRID_STREAM;

    /// The constant that moves a 32-bit CRC register forward over `bytes` zero bytes:
    /// `crc32(0, r ⊗ k)` computes `r·k·x^33 mod P` (the one-bit offset of a reflected
    /// carry-less product and the 32 of `crc32`), so `k = x^(8·bytes − 33) mod P`.
    const fn shift_constant(bytes: usize) -> i64 {
        super::x_pow_mod(bytes as u32 * 8 - 33) as i64
    }
    const SHIFT_1: i64 = shift_constant(HYBRID_STREAM);
    const SHIFT_2: i64 = shift_constant(2 * HYBRID_STREAM);
    const SHIFT_3: i64 = shift_constant(3 * HYBRID_STREAM);

    /// `r · x^(8·bytes) mod P` for the `bytes` its constant `k` was made for.
    #[target_feature(enable = "sse4.2,pclmulqdq")]
    #[inline]
    fn shift(r: u64, k: i64) -> u64 {
        let prod = _mm_clmulepi64_si128::<0x00>(_mm_cvtsi64_si128(r as i64), _mm_cvtsi64_si128(k));
        _mm_crc32_u64(0, _mm_cvtsi128_si64(prod) as u64)
    }

    /// [`fold_avx512`] with three `crc32` streams beside it: the multiplier and the scalar
    /// `crc32` unit work in parallel (~70 GB/s here against ~58 for folding alone). Input
    /// is taken in [`HYBRID_BLOCK`]s; in each, the vector part and the three streams are
    /// computed independently, then joined by shifting each register over the bytes after
    /// it (one carry-less multiply and one `crc32` each). The rest (under a block) goes
    /// through [`fold_avx512`].
    ///
    /// # Safety
    /// The CPU must have sse4.2, pclmulqdq, avx512f, avx512vl and vpclmulqdq.
    #[target_feature(enable = "sse4.2,pclmulqdq,avx512f,avx512vl,vpclmulqdq")]
    pub(crate) unsafe fn fold_hybrid(crc: u32, data: &[u8]) -> u32 {
        let blocks = data.len() / HYBRID_BLOCK;
        let (body, tail) = data.split_at(blocks * HYBRID_BLOCK);
        let k4 = |k: (i64, i64)| _mm512_set_epi64(k.1, k.0, k.1, k.0, k.1, k.0, k.1, k.0);
        let k256 = k4(K256);
        // The CRC register (not inverted) after the bytes so far.
        let mut r = u64::from(!crc);
        for block in body.chunks_exact(HYBRID_BLOCK) {
            let p = block.as_ptr() as *const __m512i;
            // SAFETY: `i < 4 · HYBRID_STEPS`, so the 64 bytes read are in the vector part.
            let load = |i: usize| unsafe { _mm512_loadu_si512(p.add(i)) };
            // SAFETY: the three streams follow the vector part; word `i` of stream `s` is
            // at `HYBRID_VECTOR + s · HYBRID_STREAM + 8 · i`, inside the block.
            let q = unsafe { block.as_ptr().add(HYBRID_VECTOR) } as *const u64;
            let word =
                |s: usize, i: usize| unsafe { q.add(s * (HYBRID_STREAM / 8) + i).read_unaligned() };
            let mut x0 = _mm512_xor_si512(load(0), _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, r as i64));
            let mut x1 = load(1);
            let mut x2 = load(2);
            let mut x3 = load(3);
            let (mut a, mut b, mut c) = (0u64, 0u64, 0u64);
            for w in 0..HYBRID_WORDS {
                a = _mm_crc32_u64(a, word(0, w));
                b = _mm_crc32_u64(b, word(1, w));
                c = _mm_crc32_u64(c, word(2, w));
            }
            for step in 1..HYBRID_STEPS {
                x0 = fold512_xor!(x0, k256, load(4 * step));
                x1 = fold512_xor!(x1, k256, load(4 * step + 1));
                x2 = fold512_xor!(x2, k256, load(4 * step + 2));
                x3 = fold512_xor!(x3, k256, load(4 * step + 3));
                for w in step * HYBRID_WORDS..(step + 1) * HYBRID_WORDS {
                    a = _mm_crc32_u64(a, word(0, w));
                    b = _mm_crc32_u64(b, word(1, w));
                    c = _mm_crc32_u64(c, word(2, w));
                }
            }
            let v = u64::from(reduce512([x0, x1, x2, x3]));
            r = shift(v, SHIFT_3) ^ shift(a, SHIFT_2) ^ shift(b, SHIFT_1) ^ c;
        }
        // SAFETY: fold_avx512 needs this function's features.
        unsafe { fold_avx512(!(r as u32), tail) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The workspace's deterministic generator, so failures reproduce.
    use storage_traits::conformance::child::SplitMix64 as Rng;

    /// `n` bytes from `rng`.
    fn bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
        (0..n).map(|_| rng.next() as u8).collect()
    }

    type Crc = fn(u32, &[u8]) -> u32;

    /// Every implementation this CPU can run, named, with the dispatcher first.
    fn implementations() -> Vec<(&'static str, Crc)> {
        #[allow(unused_mut)]
        let mut v: Vec<(&'static str, Crc)> = vec![("dispatch", crc32c_append)];
        #[cfg(target_arch = "x86_64")]
        {
            if x86::has_sse_fold() {
                // SAFETY: the features were just detected.
                v.push(("sse", |c, d| unsafe { x86::fold_sse(c, d) }));
            }
            if x86::has_avx512_fold() {
                // SAFETY: the features were just detected.
                v.push(("avx512", |c, d| unsafe { x86::fold_avx512(c, d) }));
                // SAFETY: the same features.
                v.push(("hybrid", |c, d| unsafe { x86::fold_hybrid(c, d) }));
            }
        }
        v
    }

    #[test]
    fn check_value_and_constants() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        // x^32 ≡ P − x^32: the polynomial's own low terms.
        assert_eq!(x_pow_mod(32), POLY_REFLECTED);
        assert_eq!(x_pow_mod(0), 0x8000_0000);
        assert_eq!(x_pow_mod(31), 1);
    }

    #[test]
    fn equals_the_crc32c_crate_on_every_short_length_and_alignment() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let data = bytes(&mut rng, 2048 + 64);
        let impls = implementations();
        #[cfg(target_arch = "x86_64")]
        eprintln!(
            "implementations under test: {:?}",
            impls.iter().map(|i| i.0).collect::<Vec<_>>()
        );
        for len in 0..=2048usize {
            // Unaligned starts: every offset modulo 8 for short inputs, a few for long ones.
            let offsets: &[usize] = if len <= 300 {
                &[0, 1, 2, 3, 4, 5, 6, 7, 63]
            } else {
                &[0, 3, 13]
            };
            for &off in offsets {
                let slice = &data[off..off + len];
                let init = rng.next() as u32;
                let want = crc32c::crc32c_append(init, slice);
                let want0 = crc32c::crc32c(slice);
                for (name, f) in &impls {
                    assert_eq!(
                        f(init, slice),
                        want,
                        "{name}: len {len} offset {off} init {init:08x}"
                    );
                    assert_eq!(f(0, slice), want0, "{name}: len {len} offset {off}");
                }
            }
        }
    }

    #[test]
    fn equals_the_crc32c_crate_on_random_long_inputs() {
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        let data = bytes(&mut rng, (1 << 20) + 128);
        let impls = implementations();
        for round in 0..64 {
            let len = match round {
                0 => 1 << 20,
                1..=8 => 256 * round as usize + (round as usize % 3),
                _ => (rng.next() % (1 << 20)) as usize,
            };
            let off = (rng.next() % 128) as usize;
            let slice = &data[off..off + len];
            let init = rng.next() as u32;
            let want = crc32c::crc32c_append(init, slice);
            for (name, f) in &impls {
                assert_eq!(f(init, slice), want, "{name}: len {len} offset {off}");
            }
        }
    }

    #[test]
    fn equals_the_crc32c_crate_around_hybrid_block_boundaries() {
        #[cfg(target_arch = "x86_64")]
        let block = x86::HYBRID_BLOCK;
        #[cfg(not(target_arch = "x86_64"))]
        let block = 22_528;
        let mut rng = Rng(0x5eed);
        let data = bytes(&mut rng, 4 * block + 1024);
        let impls = implementations();
        for len in [
            block - 1,
            block,
            block + 1,
            block + 255,
            block + 256,
            2 * block,
            2 * block + 63,
            3 * block + 300,
            4 * block + 511,
        ] {
            for off in [0usize, 1, 7] {
                let slice = &data[off..off + len];
                let init = rng.next() as u32;
                let want = crc32c::crc32c_append(init, slice);
                for (name, f) in &impls {
                    assert_eq!(f(init, slice), want, "{name}: len {len} offset {off}");
                }
            }
        }
    }

    #[test]
    fn appending_in_pieces_equals_one_pass() {
        let mut rng = Rng(42);
        let data = bytes(&mut rng, 70_000);
        let whole = crc32c::crc32c(&data);
        for cut in [0, 1, 63, 64, 255, 256, 257, 4096, 69_999, 70_000] {
            let (a, b) = data.split_at(cut);
            assert_eq!(crc32c_append(crc32c(a), b), whole, "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_bit_changes_the_crc() {
        let mut rng = Rng(7);
        let mut data = bytes(&mut rng, 5000);
        let base = crc32c(&data);
        for bit in [0usize, 7, 8 * 255, 8 * 256 + 3, 8 * 4999 + 7] {
            data[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(crc32c(&data), base, "bit {bit}");
            data[bit / 8] ^= 1 << (bit % 8);
        }
    }
}
