//! Identifiers, secrets and their hashes.
//!
//! Row ids are UUIDv7 with a short prefix naming what they identify
//! (`msg_…`, `dev_…`), so an id pasted into a support ticket says what it
//! is. Secrets handed to callers (API keys, confirmation tokens) are 32
//! random bytes; only their SHA-256 is stored, and they are looked up by it
//! (high-entropy tokens need no slow hash).

use sha2::{Digest, Sha256};

use crate::error::StoreError;

/// A new time-ordered id: `{prefix}_{uuid v7 without dashes}`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// `bytes` random bytes, hex-encoded.
pub fn random_hex(bytes: usize) -> Result<String, StoreError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(hex::encode(buf))
}

/// A secret token with a readable prefix, e.g. `ldr_sender_…`.
pub fn new_token(prefix: &str) -> Result<String, StoreError> {
    Ok(format!("{prefix}_{}", random_hex(32)?))
}

/// The hex SHA-256 under which a token is stored and looked up.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_differ() {
        let a = new_id("msg");
        let b = new_id("msg");
        assert!(a.starts_with("msg_"));
        assert_ne!(a, b);
    }

    #[test]
    fn tokens_are_long_random_and_hashed_stably() {
        let t = new_token("ldr").unwrap();
        assert_eq!(t.len(), 4 + 64);
        assert_ne!(t, new_token("ldr").unwrap());
        assert_eq!(token_hash(&t), token_hash(&t));
        assert_ne!(token_hash(&t), t);
    }
}
