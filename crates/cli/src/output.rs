//! Printing: hashes in the order zcashd displays them, amounts in ZEC, aligned text, JSON.

use anyhow::{Result, bail};
use serde_json::Value;

/// A 32-byte hash stored in internal order, as RPCs display it (byte-reversed hex).
pub fn display_hash(internal: &[u8; 32]) -> String {
    let mut b = *internal;
    b.reverse();
    hex::encode(b)
}

/// Parses a hash given as RPCs display it (64 hex digits, byte-reversed) into internal order.
pub fn parse_display_hash(what: &str, s: &str) -> Result<[u8; 32]> {
    let Ok(bytes) = hex::decode(s) else {
        bail!("{what} {s:?} is not hex");
    };
    let Ok(mut b) = <[u8; 32]>::try_from(bytes) else {
        bail!("{what} {s:?} must be 64 hex digits (32 bytes)");
    };
    b.reverse();
    Ok(b)
}

/// Zatoshis as ZEC with eight decimals.
pub fn zec(zats: u64) -> String {
    format!("{}.{:08}", zats / 100_000_000, zats % 100_000_000)
}

/// Zatoshis as a JSON number of ZEC, as zcashd prints amounts (a double: amounts with more
/// than 15 significant digits may round in the last place; JSON output also carries the
/// exact zatoshis beside it).
pub fn zec_json(zats: u64) -> Value {
    serde_json::json!(zats as f64 / 1e8)
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// Prints `name: value` lines with the values aligned.
pub fn print_fields(fields: &[(&str, String)]) {
    let width = fields.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, value) in fields {
        println!("  {name:<width$}  {value}");
    }
}

/// A byte count for people.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(zec(0), "0.00000000");
        assert_eq!(zec(1_250_000_001), "12.50000001");
        for z in [1u64, 12_345_678_901, 2_099_999_999_999_999] {
            let v = zec_json(z).to_string();
            assert_eq!(v.parse::<f64>().unwrap(), z as f64 / 1e8);
        }
        assert_eq!(zec_json(12_345_678_901).to_string(), "123.45678901");
    }

    #[test]
    fn hashes_display_reversed() {
        let mut h = [0u8; 32];
        h[0] = 0xAB;
        let s = display_hash(&h);
        assert!(s.ends_with("ab"));
        assert_eq!(parse_display_hash("hash", &s).unwrap(), h);
        assert!(parse_display_hash("hash", "zz").is_err());
        assert!(parse_display_hash("hash", "abcd").is_err());
    }
}
