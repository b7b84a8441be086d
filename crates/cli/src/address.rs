//! Zcash transparent addresses (Base58Check of a two-byte prefix and the 20-byte script
//! hash) to and from the stored [`AddrScript`]. Display only: nothing persisted uses this.

use finalised_state::Network;
use storage_traits::model::{AddrScript, ScriptType, sha256d};

const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// The Base58Check version prefixes (zcashd `chainparams.cpp`).
fn prefix(network: Network, script_type: ScriptType) -> Option<[u8; 2]> {
    match (network, script_type) {
        (Network::Mainnet, ScriptType::P2pkh) => Some([0x1C, 0xB8]),
        (Network::Mainnet, ScriptType::P2sh) => Some([0x1C, 0xBD]),
        (Network::Testnet | Network::Regtest, ScriptType::P2pkh) => Some([0x1D, 0x25]),
        (Network::Testnet | Network::Regtest, ScriptType::P2sh) => Some([0x1C, 0xBA]),
        (_, ScriptType::NonStandard) => None,
    }
}

fn base58_encode(bytes: &[u8]) -> String {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    // Base-58 digits, least significant first.
    let mut digits: Vec<u8> = Vec::with_capacity(bytes.len() * 138 / 100 + 1);
    for &b in bytes {
        let mut carry = u32::from(b);
        for d in digits.iter_mut() {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut s = String::with_capacity(zeros + digits.len());
    s.extend(std::iter::repeat_n('1', zeros));
    s.extend(digits.iter().rev().map(|d| ALPHABET[*d as usize] as char));
    s
}

fn base58_decode(s: &str) -> Result<Vec<u8>, String> {
    let zeros = s.bytes().take_while(|c| *c == b'1').count();
    // Bytes, least significant first.
    let mut bytes: Vec<u8> = Vec::with_capacity(s.len());
    for (i, c) in s.bytes().enumerate() {
        let value = ALPHABET
            .iter()
            .position(|a| *a == c)
            .ok_or_else(|| format!("character {:?} at position {i} is not Base58", c as char))?;
        let mut carry = value as u32;
        for b in bytes.iter_mut() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xFF) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xFF) as u8);
            carry >>= 8;
        }
    }
    let mut out = vec![0u8; zeros];
    out.extend(bytes.iter().rev());
    Ok(out)
}

/// The address of `addr` on `network`, `None` for a non-standard script.
pub fn encode(network: Network, addr: &AddrScript) -> Option<String> {
    let p = prefix(network, addr.script_type)?;
    let mut payload = Vec::with_capacity(26);
    payload.extend_from_slice(&p);
    payload.extend_from_slice(&addr.hash);
    let check = sha256d(&payload);
    payload.extend_from_slice(&check[..4]);
    Some(base58_encode(&payload))
}

/// Parses a transparent address of `network` (`t1…`/`t3…` on mainnet, `tm…`/`t2…`
/// elsewhere), or the raw form `p2pkh:<40 hex>` / `p2sh:<40 hex>`.
pub fn parse(network: Network, s: &str) -> Result<AddrScript, String> {
    for (tag, script_type) in [("p2pkh:", ScriptType::P2pkh), ("p2sh:", ScriptType::P2sh)] {
        if let Some(h) = s.strip_prefix(tag) {
            let bytes = hex::decode(h).map_err(|e| format!("{s:?}: bad hex: {e}"))?;
            let hash: [u8; 20] = bytes
                .try_into()
                .map_err(|_| format!("{s:?}: the script hash must be 20 bytes (40 hex digits)"))?;
            return Ok(AddrScript { hash, script_type });
        }
    }
    let bytes = base58_decode(s).map_err(|e| format!("address {s:?}: {e}"))?;
    if bytes.len() != 26 {
        return Err(format!(
            "address {s:?}: decodes to {} bytes, a transparent address has 26",
            bytes.len()
        ));
    }
    let (payload, check) = bytes.split_at(22);
    if sha256d(payload)[..4] != *check {
        return Err(format!("address {s:?}: checksum mismatch (a typo?)"));
    }
    let p = [payload[0], payload[1]];
    for script_type in [ScriptType::P2pkh, ScriptType::P2sh] {
        if prefix(network, script_type) == Some(p) {
            let mut hash = [0u8; 20];
            hash.copy_from_slice(&payload[2..]);
            return Ok(AddrScript { hash, script_type });
        }
    }
    Err(format!(
        "address {s:?} is not a transparent address of {} (prefix {})",
        network.dir_name(),
        hex::encode(p)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base58_round_trips_with_leading_zeros() {
        for bytes in [
            vec![],
            vec![0],
            vec![0, 0, 1, 2],
            vec![255; 26],
            vec![0, 255, 0],
        ] {
            let s = base58_encode(&bytes);
            assert_eq!(base58_decode(&s).unwrap(), bytes, "{s}");
        }
        assert_eq!(base58_encode(b"hello world"), "StV1DL6CwTryKyV");
    }

    #[test]
    fn prefixes_round_trips_and_refusals() {
        let hash: [u8; 20] = hex::decode("4f04a4bd1a5d7a2e5a9c1d9e8a0b5b5d1a2e3f40")
            .unwrap()
            .try_into()
            .unwrap();
        let addr = AddrScript {
            hash,
            script_type: ScriptType::P2pkh,
        };
        let s = encode(Network::Mainnet, &addr).unwrap();
        assert!(s.starts_with("t1"), "{s}");
        assert_eq!(parse(Network::Mainnet, &s).unwrap(), addr);
        let p2sh = AddrScript {
            hash,
            script_type: ScriptType::P2sh,
        };
        assert!(encode(Network::Mainnet, &p2sh).unwrap().starts_with("t3"));
        assert!(encode(Network::Testnet, &addr).unwrap().starts_with("tm"));
        assert!(encode(Network::Regtest, &p2sh).unwrap().starts_with("t2"));
        // The other network's address is refused, as is a typo.
        assert!(parse(Network::Testnet, &s).is_err());
        let mut typo = s.clone().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        let err = parse(Network::Mainnet, std::str::from_utf8(&typo).unwrap()).unwrap_err();
        assert!(err.contains("checksum"), "{err}");
    }

    #[test]
    fn raw_form() {
        let a = parse(
            Network::Regtest,
            "p2sh:0102030405060708090a0b0c0d0e0f1011121314",
        )
        .unwrap();
        assert_eq!(a.script_type, ScriptType::P2sh);
        assert_eq!(a.hash[19], 0x14);
        assert!(parse(Network::Regtest, "p2pkh:00").is_err());
    }
}
