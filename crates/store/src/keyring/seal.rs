//! Sealing the keyring file under a key-encryption key kept elsewhere.
//!
//! Why: the keyring sits in the data directory, next to the database. A
//! backup or a stolen volume that holds both holds every tenant's keys. With
//! a [`KeyringSealer`] configured, the file on disk is one sealed envelope
//! that opens only with a key the operator keeps outside the data directory
//! — a file mounted as a container secret, an environment variable, or (by
//! implementing the trait) a cloud KMS that never hands its key out.
//!
//! The envelope is JSON, so an operator can see what seals a file without
//! opening it: `{"sealed": 1, "by": "local:1a2b3c4d", "data": "<base64>"}`.
//! `data` is [`crate::sealed`]'s format (XChaCha20-Poly1305) over the plain
//! keyring JSON, with `by` bound as associated data.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::sealed::{self, DataKey};

/// The envelope format this build writes.
const ENVELOPE_VERSION: u32 = 1;

/// Domain separation for the envelope's associated data.
const FILE_AAD_LABEL: &[u8] = b"ladder keyring file v1\0";

/// Seals and opens the keyring file. Implementations must be deterministic
/// in [`KeyringSealer::name`] (it is written into the file and bound to the
/// ciphertext) and must never put key bytes in errors.
///
/// A cloud KMS plugs in here: `seal` calls the KMS's encrypt (or wraps a
/// fresh data key with it and seals locally), `open` its decrypt.
pub trait KeyringSealer: Send + Sync {
    /// Names the key that seals the file, e.g. `local:1a2b3c4d` (a
    /// fingerprint, never the key) or `kms:projects/…/keys/ladder`.
    fn name(&self) -> String;
    /// Seal the plain keyring JSON.
    fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, SealerError>;
    /// Open what [`KeyringSealer::seal`] made; the plaintext is wiped on drop.
    fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealerError>;
}

/// Why a sealer could not seal or open. Never carries key bytes.
#[derive(Debug, thiserror::Error)]
pub enum SealerError {
    #[error("the keyring file does not open with the configured key-encryption key `{0}`")]
    WrongKey(String),
    #[error("cannot seal the keyring file: {0}")]
    Seal(#[from] sealed::SealError),
    #[error("the key-encryption key service failed: {0}")]
    Service(String),
}

/// A key-encryption key held by this process: 32 random bytes, given as
/// base64 (`openssl rand -base64 32`).
pub struct LocalKek {
    key: DataKey,
    fingerprint: String,
}

/// Why a local key-encryption key was refused. Names no key bytes.
#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error(
        "the key-encryption key is not base64 of 32 bytes (make one with `openssl rand -base64 32`)"
    )]
    Malformed,
}

impl LocalKek {
    /// A key from its base64 text; surrounding whitespace (a file's final
    /// newline) is ignored.
    pub fn from_base64(text: &str) -> Result<LocalKek, KekError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim().as_bytes())
                .map_err(|_| KekError::Malformed)?,
        );
        let key = DataKey::from_slice(&bytes).ok_or(KekError::Malformed)?;
        let digest = Sha256::digest(key.as_bytes());
        let prefix = digest.first_chunk::<4>().copied().unwrap_or_default();
        Ok(LocalKek {
            key,
            fingerprint: hex::encode(prefix),
        })
    }
}

impl std::fmt::Debug for LocalKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalKek(local:{})", self.fingerprint)
    }
}

impl KeyringSealer for LocalKek {
    fn name(&self) -> String {
        format!("local:{}", self.fingerprint)
    }

    fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, SealerError> {
        Ok(sealed::seal(&self.key, &file_aad(&self.name()), plaintext)?)
    }

    fn open(&self, sealed_bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealerError> {
        sealed::open(&self.key, &file_aad(&self.name()), sealed_bytes)
            .map_err(|_| SealerError::WrongKey(self.name()))
    }
}

fn file_aad(name: &str) -> Vec<u8> {
    let mut aad = FILE_AAD_LABEL.to_vec();
    aad.extend_from_slice(name.as_bytes());
    aad
}

/// The sealed file as it lies on disk.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Envelope {
    sealed: u32,
    by: String,
    data: String,
}

impl Envelope {
    /// Seal `plaintext` with `sealer` into an envelope.
    pub(super) fn seal(
        sealer: &dyn KeyringSealer,
        plaintext: &[u8],
    ) -> Result<Envelope, SealerError> {
        Ok(Envelope {
            sealed: ENVELOPE_VERSION,
            by: sealer.name(),
            data: STANDARD.encode(sealer.seal(plaintext)?),
        })
    }

    /// Which key sealed this file.
    pub(super) fn sealed_by(&self) -> &str {
        &self.by
    }

    /// Open with `sealer`: refused when another key sealed the file (named,
    /// so the operator knows which secret to mount) or the data is forged.
    pub(super) fn open(
        &self,
        sealer: &dyn KeyringSealer,
    ) -> Result<Zeroizing<Vec<u8>>, SealerError> {
        if self.sealed != ENVELOPE_VERSION || self.by != sealer.name() {
            return Err(SealerError::WrongKey(sealer.name()));
        }
        let bytes = STANDARD
            .decode(self.data.as_bytes())
            .map_err(|_| SealerError::WrongKey(sealer.name()))?;
        sealer.open(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(byte: u8) -> LocalKek {
        LocalKek::from_base64(&STANDARD.encode([byte; 32])).unwrap()
    }

    #[test]
    fn an_envelope_opens_only_with_the_key_that_sealed_it() {
        let envelope = Envelope::seal(&kek(1), b"{\"version\":1}").unwrap();
        assert_eq!(&*envelope.open(&kek(1)).unwrap(), b"{\"version\":1}");
        let err = envelope.open(&kek(2)).unwrap_err().to_string();
        assert!(err.contains("local:"), "{err}");
    }

    #[test]
    fn a_malformed_key_is_refused_without_echoing_it() {
        for bad in ["", "not base64!", &STANDARD.encode([7u8; 16])] {
            let err = LocalKek::from_base64(bad).unwrap_err().to_string();
            assert!(
                !bad.is_empty() && !err.contains(bad) || bad.is_empty(),
                "{err}"
            );
        }
        assert!(LocalKek::from_base64(&format!("{}\n", STANDARD.encode([3u8; 32]))).is_ok());
    }
}
