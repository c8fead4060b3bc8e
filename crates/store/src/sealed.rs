//! Payload envelope encryption (pure: no I/O, no clock).
//!
//! Why: every payload is sealed under its own random [`DataKey`], and only
//! that data key — wrapped by a tenant key from the [`keyring`](crate::keyring)
//! — is stored next to it. Destroying the wrapped data key (on expiry or
//! revocation) destroys the payload for good, even in backups that still hold
//! the ciphertext: crypto-shredding, as DESIGN.md invariant 5 asks.
//!
//! Format of a sealed value: `version (1 byte) || nonce (24 bytes) ||
//! ciphertext || tag (16 bytes)`. Version 1 is XChaCha20-Poly1305 with a
//! random 192-bit nonce, so random nonces never need a counter and cannot
//! realistically repeat.
//!
//! Callers bind the context as associated data (AAD), e.g.
//! `b"ladder payload v1\0" + tenant_id + b"\0" + message_id`, so a sealed
//! payload copied to another message or tenant does not open there.
//! The AAD is authenticated, not encrypted, and not stored: the caller must
//! present the same AAD to [`open`].

use chacha20poly1305::aead::inout::InOutBuf;
use chacha20poly1305::{AeadInOut, Key, KeyInit, Tag, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

/// The only format version so far: XChaCha20-Poly1305, random 24-byte nonce.
pub const VERSION_XCHACHA20POLY1305: u8 = 1;

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + NONCE_LEN;

/// Bytes a sealed value adds to its plaintext (version, nonce and tag).
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// A 256-bit symmetric key for one payload (or, inside the keyring, a
/// key-encryption key). The bytes are wiped from memory when it is dropped,
/// and `Debug` never shows them.
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<DataKey, SealError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut_slice()).map_err(|_| SealError::Random)?;
        Ok(DataKey(key))
    }

    /// A key from its raw bytes (e.g. just unwrapped).
    pub fn from_bytes(bytes: [u8; 32]) -> DataKey {
        DataKey(Zeroizing::new(bytes))
    }

    /// A key copied from a 32-byte slice (`None` for any other length),
    /// without leaving an unwiped copy behind.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<DataKey> {
        let mut key = Zeroizing::new([0u8; 32]);
        if bytes.len() != key.len() {
            return None;
        }
        key.copy_from_slice(bytes);
        Some(DataKey(key))
    }

    /// The raw key bytes. Handle with care: never log or store them unwrapped.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// Why sealing or opening failed. Messages never carry key or payload bytes.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the operating system's random number generator failed")]
    Random,
    #[error("sealed value is truncated (shorter than its header and tag)")]
    Truncated,
    #[error("sealed value has unknown format version {0}")]
    UnknownVersion(u8),
    #[error("plaintext or context is too long to seal")]
    TooLong,
    #[error("ciphertext does not authenticate (wrong key, wrong context or tampered)")]
    Forged,
}

/// Seal `plaintext` under `key`, binding `aad`. Output:
/// `version || nonce || ciphertext || tag`, [`OVERHEAD`] bytes longer than
/// the plaintext.
pub fn seal(key: &DataKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    seal_raw(key.as_bytes(), aad, plaintext)
}

/// Open a value made by [`seal`] with the same key and AAD. The plaintext is
/// wiped from memory when the returned buffer is dropped.
pub fn open(key: &DataKey, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
    open_raw(key.as_bytes(), aad, sealed)
}

/// [`seal`] over raw key bytes, so the keyring can use its stored keys
/// without copying them into a [`DataKey`].
pub(crate) fn seal_raw(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|_| SealError::Random)?;

    // One allocation of the final size: the plaintext is copied in and
    // encrypted in place, so no plaintext copy is left in freed memory.
    let mut out = Vec::with_capacity(OVERHEAD.saturating_add(plaintext.len()));
    out.push(VERSION_XCHACHA20POLY1305);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);

    let cipher = XChaCha20Poly1305::new(<&Key>::from(key));
    let body = out.get_mut(HEADER_LEN..).ok_or(SealError::Truncated)?;
    let tag = match cipher.encrypt_inout_detached(&XNonce::from(nonce), aad, InOutBuf::from(body)) {
        Ok(tag) => tag,
        Err(_) => {
            // Only possible for absurdly long inputs; wipe the plaintext copy.
            zeroize::Zeroize::zeroize(&mut out);
            return Err(SealError::TooLong);
        }
    };
    out.extend_from_slice(tag.as_slice());
    Ok(out)
}

/// [`open`] over raw key bytes.
pub(crate) fn open_raw(
    key: &[u8; 32],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let (&version, rest) = sealed.split_first().ok_or(SealError::Truncated)?;
    if version != VERSION_XCHACHA20POLY1305 {
        return Err(SealError::UnknownVersion(version));
    }
    let (nonce, rest) = rest
        .split_at_checked(NONCE_LEN)
        .ok_or(SealError::Truncated)?;
    let ciphertext_len = rest
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(SealError::Truncated)?;
    let (ciphertext, tag) = rest
        .split_at_checked(ciphertext_len)
        .ok_or(SealError::Truncated)?;
    let nonce = XNonce::try_from(nonce).map_err(|_| SealError::Truncated)?;
    let tag = Tag::try_from(tag).map_err(|_| SealError::Truncated)?;

    // The tag is checked before anything is decrypted, so on failure the
    // buffer only ever held ciphertext.
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    let cipher = XChaCha20Poly1305::new(<&Key>::from(key));
    cipher
        .decrypt_inout_detached(&nonce, aad, InOutBuf::from(plaintext.as_mut_slice()), &tag)
        .map_err(|_| SealError::Forged)?;
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AAD: &[u8] = b"ladder payload v1\0tenant-a\0msg-1";

    #[test]
    fn round_trip() {
        let key = DataKey::generate().unwrap();
        let sealed = seal(&key, AAD, b"hello, world").unwrap();
        assert_eq!(sealed.len(), b"hello, world".len() + OVERHEAD);
        assert_eq!(sealed[0], VERSION_XCHACHA20POLY1305);
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
        let opened = open(&key, AAD, &sealed).unwrap();
        assert_eq!(opened.as_slice(), b"hello, world");
    }

    #[test]
    fn empty_plaintext_round_trips() {
        let key = DataKey::generate().unwrap();
        let sealed = seal(&key, AAD, b"").unwrap();
        assert_eq!(sealed.len(), OVERHEAD);
        assert!(open(&key, AAD, &sealed).unwrap().is_empty());
    }

    #[test]
    fn nonces_differ() {
        let key = DataKey::generate().unwrap();
        let a = seal(&key, AAD, b"same").unwrap();
        let b = seal(&key, AAD, b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn from_bytes_round_trips() {
        let key = DataKey::generate().unwrap();
        let again = DataKey::from_bytes(*key.as_bytes());
        let sealed = seal(&key, AAD, b"x").unwrap();
        assert_eq!(open(&again, AAD, &sealed).unwrap().as_slice(), b"x");
    }

    #[test]
    fn wrong_aad_fails() {
        let key = DataKey::generate().unwrap();
        let sealed = seal(&key, AAD, b"secret").unwrap();
        let err = open(&key, b"ladder payload v1\0tenant-b\0msg-1", &sealed).unwrap_err();
        assert!(matches!(err, SealError::Forged), "{err:?}");
    }

    #[test]
    fn wrong_key_fails() {
        let sealed = seal(&DataKey::generate().unwrap(), AAD, b"secret").unwrap();
        let err = open(&DataKey::generate().unwrap(), AAD, &sealed).unwrap_err();
        assert!(matches!(err, SealError::Forged), "{err:?}");
    }

    #[test]
    fn every_tampered_byte_fails() {
        let key = DataKey::generate().unwrap();
        let sealed = seal(&key, AAD, b"secret").unwrap();
        for i in 1..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            let err = open(&key, AAD, &bad).unwrap_err();
            assert!(matches!(err, SealError::Forged), "byte {i}: {err:?}");
        }
    }

    #[test]
    fn unknown_version_fails() {
        let key = DataKey::generate().unwrap();
        let mut sealed = seal(&key, AAD, b"secret").unwrap();
        sealed[0] = 7;
        let err = open(&key, AAD, &sealed).unwrap_err();
        assert!(matches!(err, SealError::UnknownVersion(7)), "{err:?}");
        assert_eq!(err.to_string(), "sealed value has unknown format version 7");
    }

    #[test]
    fn truncated_fails() {
        let key = DataKey::generate().unwrap();
        let sealed = seal(&key, AAD, b"secret").unwrap();
        for len in 0..OVERHEAD {
            let err = open(&key, AAD, &sealed[..len]).unwrap_err();
            assert!(matches!(err, SealError::Truncated), "len {len}: {err:?}");
        }
        // Long enough to parse, but missing payload bytes: does not authenticate.
        let err = open(&key, AAD, &sealed[..sealed.len() - 1]).unwrap_err();
        assert!(matches!(err, SealError::Forged), "{err:?}");
    }

    #[test]
    fn debug_and_errors_hide_bytes() {
        let key = DataKey::from_bytes([0xab; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.contains("ab") && !shown.contains("171"), "{shown}");
        assert_eq!(
            SealError::Forged.to_string(),
            "ciphertext does not authenticate (wrong key, wrong context or tampered)"
        );
    }
}
