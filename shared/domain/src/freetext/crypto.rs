//! Cryptocurrency address checks for the default mode: a Bitcoin address is only typed `btc` when
//! its checksum holds (Base58Check for `1…`/`3…`, BIP 173/350 for `bc1…`/`tb1…`), so neither
//! random words nor hex hashes are taken for one. Monero addresses are recognised by shape (their
//! checksum needs Keccak, which the crate does not carry).

use sha2::{Digest, Sha256};

const BASE58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

fn base58_value(c: u8) -> Option<u32> {
    BASE58.iter().position(|&a| a == c).and_then(|i| u32::try_from(i).ok())
}

/// Base58 decoding of a short string (callers bound the length, so the quadratic big-number
/// arithmetic stays tiny).
fn base58_decode(s: &str) -> Option<Vec<u8>> {
    let mut bytes: Vec<u8> = Vec::with_capacity(s.len());
    for c in s.bytes() {
        let mut carry = base58_value(c)?;
        for b in bytes.iter_mut().rev() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = s.bytes().take_while(|&c| c == b'1').count();
    let mut out = vec![0u8; zeros];
    out.extend(bytes);
    Some(out)
}

/// A legacy (P2PKH `1…`) or script (P2SH `3…`) Bitcoin address with a valid Base58Check checksum.
pub(crate) fn is_base58_btc(s: &str) -> bool {
    if !(26..=35).contains(&s.len()) || !(s.starts_with('1') || s.starts_with('3')) {
        return false;
    }
    let Some(raw) = base58_decode(s) else { return false };
    if raw.len() != 25 || !matches!(raw[0], 0x00 | 0x05) {
        return false;
    }
    let (payload, checksum) = raw.split_at(21);
    let digest = Sha256::digest(Sha256::digest(payload));
    digest[..4] == *checksum
}

const BECH32_CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn bech32_polymod(values: impl Iterator<Item = u8>) -> u32 {
    const GEN: [u32; 5] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3];
    let mut chk: u32 = 1;
    for v in values {
        let top = chk >> 25;
        chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

/// A SegWit address (`bc1…` mainnet, `tb1…` testnet) whose BIP 173 (version 0) or BIP 350
/// (version 1+) checksum holds, in one case throughout.
pub(crate) fn is_bech32_btc(s: &str) -> bool {
    let hrp_ok = s.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("bc1") || p.eq_ignore_ascii_case("tb1"));
    if !hrp_ok || s.len() < 14 || s.len() > 90 || (s.bytes().any(|b| b.is_ascii_lowercase()) && s.bytes().any(|b| b.is_ascii_uppercase())) {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    let Some((hrp, data)) = lower.rsplit_once('1') else { return false };
    if !matches!(hrp, "bc" | "tb") || data.len() < 7 {
        return false;
    }
    let Some(values) = data
        .bytes()
        .map(|c| BECH32_CHARSET.iter().position(|&a| a == c).and_then(|i| u8::try_from(i).ok()))
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let expanded = hrp.bytes().map(|c| c >> 5).chain(std::iter::once(0)).chain(hrp.bytes().map(|c| c & 31));
    let check = bech32_polymod(expanded.chain(values.iter().copied()));
    let version = values[0];
    let constant = if version == 0 { 1 } else { 0x2bc8_30a3 };
    if check != constant || version > 16 {
        return false;
    }
    // The witness program: 5-bit groups (without version and checksum) regrouped into bytes.
    let program_bits = (values.len() - 7) * 5;
    let program_len = program_bits / 8;
    let padding_ok = program_bits % 8 < 5;
    padding_ok && (2..=40).contains(&program_len) && (version != 0 || program_len == 20 || program_len == 32)
}

/// A Monero address by shape: 95 Base58 characters starting with `4` (standard) or `8`
/// (subaddress), or 106 starting with `4` (integrated).
pub(crate) fn is_monero(s: &str) -> bool {
    let shape = match s.len() {
        95 => s.starts_with('4') || s.starts_with('8'),
        106 => s.starts_with('4'),
        _ => false,
    };
    shape && s.bytes().all(|c| BASE58.contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base58check_addresses_need_a_valid_checksum() {
        assert!(is_base58_btc("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"));
        assert!(is_base58_btc("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"));
        assert!(!is_base58_btc("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb"));
        assert!(!is_base58_btc("1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        assert!(!is_base58_btc("3a2b4c5d6e7f8a9b1c2d3e4f5a6b7c8d9e1f2a3b"));
    }

    #[test]
    fn segwit_addresses_need_a_valid_bech32_checksum() {
        assert!(is_bech32_btc("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"));
        assert!(is_bech32_btc("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4"));
        assert!(is_bech32_btc("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"));
        // BIP 350 (taproot, bech32m).
        assert!(is_bech32_btc("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"));
        assert!(!is_bech32_btc("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5"));
        assert!(!is_bech32_btc("bc1qqqqqqqqqqqqqqq"));
        assert!(!is_bech32_btc("Bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"));
    }

    #[test]
    fn monero_addresses_are_recognised_by_shape() {
        let addr = "46W5WHQG2B1Df9uKrkyuhoLNVtJouMfPR9wMkhrzRiEtD2PmdcXMvQt52jQVWKXUC45hwYRXhBYVjLRbpDu8CK2UN2xzenr";
        assert!(is_monero(addr));
        assert!(!is_monero(&addr[1..]));
        assert!(!is_monero(&format!("5{}", &addr[1..])));
    }
}
