//! API keys: 40 random alphanumeric characters (MISP's format), stored as a hex SHA-256.
//!
//! A key carries ~238 bits of entropy, so a fast hash is not brute-forceable and allows an indexed
//! lookup (docs/adr/0003-api-keys.md); comparison happens in the database on the digest, so response
//! timing does not depend on how many leading characters of a guess are right.

use sha2::{Digest, Sha256};

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh 40-character key from the thread's CSPRNG.
pub fn generate() -> String {
    (0..40).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect()
}

/// Only `^[a-zA-Z0-9]{40}$` is a key (as in MISP).
pub fn is_well_formed(key: &str) -> bool {
    key.len() == 40 && key.bytes().all(|b| b.is_ascii_alphanumeric())
}

pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A domain [`cairn_domain::user::AuthKey`] record for a clear key.
pub fn record(id: i64, uuid: uuid::Uuid, user_id: i64, key: &str, now: i64) -> cairn_domain::user::AuthKey {
    cairn_domain::user::AuthKey {
        id,
        uuid,
        user_id,
        key_hash: hash(key),
        key_start: key[..4].to_string(),
        key_end: key[key.len() - 4..].to_string(),
        comment: String::new(),
        expiration: None,
        read_only: false,
        allowed_ips: vec![],
        created: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let a = generate();
        let b = generate();
        assert!(is_well_formed(&a) && is_well_formed(&b));
        assert_ne!(a, b);
        assert!(!is_well_formed("short"));
        assert!(!is_well_formed(&format!("{}!", &a[..39])));
        assert_eq!(hash(&a).len(), 64);
    }
}
