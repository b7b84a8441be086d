#!/usr/bin/env python3
"""Independent reference for the accumulator crate's golden vectors.

Uses only the Python standard library: hashlib.blake2b(digest_size=32) for the XOR digest,
hashlib.sha256, arbitrary-precision ints and a from-scratch RFC 8439 ChaCha20 block function
for MuHash3072. Run: python3 crates/accumulator/tools/reference.py
"""
import hashlib
import struct

TAG = b"ZcashTxOutSet___"


def message(txid: bytes, vout: int, value: int, script_hash: bytes, script_type: int) -> bytes:
    assert len(txid) == 32 and len(script_hash) == 20
    m = TAG + txid + struct.pack("<I", vout) + struct.pack("<Q", value) + script_hash + bytes([script_type])
    assert len(m) == 81
    return m


def digest(*args) -> bytes:
    return hashlib.blake2b(message(*args), digest_size=32).digest()


# The fixed outputs of tests/golden.rs (golden_outputs()).
def golden_outputs():
    return [
        # (txid, vout, value, script_hash, script_type)
        (bytes(32), 0, 0, bytes(20), 0x00),
        (bytes(range(32)), 1, 5_000_000_000, bytes(range(100, 120)), 0x00),
        (bytes([0xFF] * 32), 0xFFFF_FFFF, 0x8000_0000_0000_0001, bytes([0xAB] * 20), 0x01),
        (bytes(range(32, 64)), 7, 123_456_789, bytes(range(20)), 0x01),
        (bytes(range(32, 64)), 8, 1, bytes([0x11] * 20), 0xFF),  # NonStandard: excluded
    ]


# ---------------- MuHash3072 (Bitcoin Core's construction) ----------------
MODULUS = 2**3072 - 1103717


def rotl(v, c):
    return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))


def quarter(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 7)


def chacha20_block(key: bytes, nonce: bytes, counter: int) -> bytes:
    const = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    state = const + list(struct.unpack("<8I", key)) + [counter] + list(struct.unpack("<3I", nonce))
    w = state[:]
    for _ in range(10):
        quarter(w, 0, 4, 8, 12); quarter(w, 1, 5, 9, 13); quarter(w, 2, 6, 10, 14); quarter(w, 3, 7, 11, 15)
        quarter(w, 0, 5, 10, 15); quarter(w, 1, 6, 11, 12); quarter(w, 2, 7, 8, 13); quarter(w, 3, 4, 9, 14)
    return struct.pack("<16I", *[(w[i] + state[i]) & 0xFFFFFFFF for i in range(16)])


def element(data: bytes) -> int:
    key = hashlib.sha256(data).digest()
    ks = b"".join(chacha20_block(key, bytes(12), i) for i in range(6))
    return int.from_bytes(ks, "little")


class MuHash:
    def __init__(self):
        self.num, self.den = 1, 1

    def insert(self, data):
        self.num = self.num * element(data) % MODULUS

    def remove(self, data):
        self.den = self.den * element(data) % MODULUS

    def digest(self) -> bytes:
        val = self.num * pow(self.den, -1, MODULUS) % MODULUS
        return hashlib.sha256(val.to_bytes(384, "little")).digest()


def from_int(i):
    return bytes([i]) + bytes(31)


if __name__ == "__main__":
    # RFC 8439 section 2.3.2 block test vector, so the ChaCha20 above is itself checked.
    k = bytes(range(32)); n = bytes.fromhex("000000090000004a00000000")
    assert chacha20_block(k, n, 1).hex().startswith("10f1e7e4d13b5915500fdd1fa32071c4"), "chacha20"

    print("== XOR digests (BLAKE2b-256 of the 81-byte message) ==")
    acc = bytes(32)
    for o in golden_outputs():
        d = digest(*o)
        print(o[1], o[4], d.hex())
        if o[4] in (0x00, 0x01):
            acc = bytes(a ^ b for a, b in zip(acc, d))
    print("hash_serialized of the counted golden outputs:", acc.hex())
    counted = [o for o in golden_outputs() if o[4] in (0x00, 0x01)]
    body = struct.pack("<QQQ", len({o[0] for o in counted}), len(counted), 65 * len(counted))
    body += acc + struct.pack("<Q", sum(o[2] for o in counted))
    tagged = b"\x01" + body  # TxOutSetInfo v1: version tag, 64-byte body
    checksum = hashlib.blake2b(b"tx_out_set_info_accumulator" + tagged, digest_size=32).digest()
    print("stored entry (StoredEntryFixed):", (b"\x01" + tagged + checksum).hex())

    print("== MuHash3072 ==")
    m = MuHash(); m.insert(from_int(0)); m.insert(from_int(1)); m.remove(from_int(2))
    print("core vector (display order):", m.digest()[::-1].hex())
    s = MuHash(); s.insert(from_int(1)); s.insert(from_int(2))
    print("ser numerator:", s.num.to_bytes(384, "little").hex())
    print("empty digest:", MuHash().digest().hex())
    o = MuHash(); o.num = 2**3072 - 1
    print("overflow (raw order):", hashlib.sha256((o.num % MODULUS).to_bytes(384, "little")).digest().hex())
    g = MuHash()
    for o in golden_outputs():
        if o[4] in (0x00, 0x01):
            g.insert(message(*o))
    print("muhash of the counted golden outputs (raw order):", g.digest().hex())
    g.remove(message(*golden_outputs()[1]))
    print("... after removing output #1:", g.digest().hex())
    print("modulus BE hex:", MODULUS.to_bytes(384, "big").hex()[-16:])
