//! The local keyring: a JSON file holding each tenant's secret keys.
//!
//! Why: payloads are sealed with per-message data keys ([`crate::sealed`]);
//! those data keys are stored only *wrapped* by a tenant key-encryption key
//! (KEK) kept here, outside the database. A database dump alone therefore
//! reveals no message content, and destroying a wrapped data key shreds its
//! payload.
//!
//! Per tenant the keyring holds:
//! - its KEKs (`kek-<8 hex>`), the last one current; older ones stay until
//!   [`Keyring::retire`] so keys wrapped before a [`Keyring::rotate`] still
//!   unwrap;
//! - a pseudonym key: recipient addresses appear in the audit log only as
//!   `p:` + hex HMAC-SHA256 of the normalised (trimmed, lowercased) address;
//! - an Ed25519 checkpoint signing key, with a key id (the first 8 hex digits
//!   of the SHA-256 of its public key).
//!
//! The file is created on first use with mode 0600 (its directory, if
//! missing, with 0700); a file that group or others may access is refused.
//! Every change is written atomically: a 0600 temporary file in the same
//! directory, fsync, rename, fsync of the directory.
//!
//! **One process owns the file.** The file is read once, at
//! [`Keyring::open_or_create`]; changes made afterwards by another process
//! (or another `Keyring` opened on the same path) are not seen, and the next
//! write from here would overwrite them. Run key administration through the
//! process that owns the keyring, or while it is stopped.
//!
//! Key bytes never appear in `Debug` output or in error messages.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::sealed::{self, DataKey, SealError};

/// The keyring file format this build reads and writes.
const FORMAT_VERSION: u32 = 1;

/// Domain separation for the AAD of wrapped data keys.
const WRAP_AAD_LABEL: &[u8] = b"ladder kek wrap v1\0";

/// A data key wrapped (sealed) under one of a tenant's KEKs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The KEK that wrapped it; needed to unwrap.
    pub kek_id: String,
    /// `sealed::seal` output over the 32 data-key bytes.
    pub bytes: Vec<u8>,
}

/// Why a keyring operation failed. Messages never carry key bytes.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("cannot read/write keyring `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("keyring `{}` is readable by others (mode {mode:o}); chmod 600 it", path.display())]
    Permissions { path: PathBuf, mode: u32 },
    #[error("keyring `{}` is corrupt: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("no keys for tenant `{tenant}` in the keyring")]
    UnknownTenant { tenant: String },
    #[error(
        "tenant `{tenant}` has no key-encryption key `{kek_id}` in the keyring (retired, or never created)"
    )]
    UnknownKek { tenant: String, kek_id: String },
    #[error(
        "will not retire the keys of tenant `{tenant}` keeping `{kek_id}`: the current key-encryption key is `{current}`; rewrap to it and keep that one"
    )]
    KekNotCurrent {
        tenant: String,
        kek_id: String,
        current: String,
    },
    #[error("cannot wrap or unwrap a data key: {0}")]
    Seal(#[from] SealError),
    #[error("the operating system's random number generator failed")]
    Random,
    #[error(
        "keyring `{}` is sealed by `{by}` and no key-encryption key is configured (set `keyring_kek_file` or `LADDER_KEYRING_KEK_FILE`)",
        path.display()
    )]
    SealedWithoutKey { path: PathBuf, by: String },
    #[error(
        "keyring `{}` is plain JSON while a key-encryption key is configured: it was not sealed by this deployment; to seal a plain keyring once, start with `keyring_seal_plain = true` (`LADDER_KEYRING_SEAL_PLAIN=true`)",
        path.display()
    )]
    Unsealed { path: PathBuf },
    #[error("keyring `{}`: {source}", path.display())]
    Sealer {
        path: PathBuf,
        #[source]
        source: SealerError,
    },
}

/// The local keyring. Cheap to clone; clones share one in-memory copy, and
/// writes are serialised by a lock.
#[derive(Clone)]
pub struct Keyring {
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    /// Seals the file on every write when a key-encryption key is configured.
    sealer: Option<Arc<dyn KeyringSealer>>,
    state: RwLock<State>,
    /// What the file looked like when `state` was read or written: another
    /// process (`ladder tenant create`, `ladder keys rotate`) may replace
    /// it, and then the next use reloads it.
    stamp: std::sync::Mutex<Option<FileStamp>>,
}

/// Enough of a file's metadata to notice it was replaced (every write is a
/// rename, so the inode changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    ino: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            ino: m.ino(),
            len: m.len(),
            modified: m.modified().ok(),
        })
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("path", &self.shared.path)
            .field("tenants", &self.tenants())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// Open the keyring at `path`, creating an empty one (mode 0600; parent
    /// directory 0700 if missing) when there is none. Refuses a file that
    /// group or others may access, and a file it cannot fully parse.
    pub fn open_or_create(path: &Path) -> Result<Keyring, KeyringError> {
        Keyring::open_sealed(path, None, false)
    }

    /// As [`Keyring::open_or_create`], with the file sealed by `sealer` when
    /// one is given: a new file is created sealed, and a sealed one opens
    /// only with the key that sealed it. A plain file is refused — someone
    /// who can write the volume but has no key could have put it there —
    /// unless `seal_plain` says the operator is sealing an existing plain
    /// keyring now, which then happens in place.
    pub fn open_sealed(
        path: &Path,
        sealer: Option<Arc<dyn KeyringSealer>>,
        seal_plain: bool,
    ) -> Result<Keyring, KeyringError> {
        let read = match read_state(path, sealer.as_deref())? {
            Some(read) => read,
            None => create_file(path, sealer.as_deref())?,
        };
        if read.unsealed {
            if !seal_plain {
                return Err(KeyringError::Unsealed {
                    path: path.to_path_buf(),
                });
            }
            write_state(path, &read.state, sealer.as_deref())?;
        }
        Ok(Keyring {
            shared: Arc::new(Shared {
                path: path.to_path_buf(),
                sealer,
                state: RwLock::new(read.state),
                stamp: std::sync::Mutex::new(FileStamp::of(path)),
            }),
        })
    }

    /// Reads the file again as a node starting now would: what readiness
    /// reports. Fails when the file went missing, lost its permissions, was
    /// damaged, or no longer opens with the configured key.
    pub fn check(&self) -> Result<(), KeyringError> {
        match read_state(&self.shared.path, self.shared.sealer.as_deref())? {
            Some(read) if read.unsealed => Err(KeyringError::Unsealed {
                path: self.shared.path.clone(),
            }),
            Some(_) => Ok(()),
            None => Err(KeyringError::Io {
                path: self.shared.path.clone(),
                source: io::Error::new(io::ErrorKind::NotFound, "the keyring file is gone"),
            }),
        }
    }

    /// Which key seals the file, if any (`local:<fingerprint>`, …).
    pub fn sealed_by(&self) -> Option<String> {
        self.shared.sealer.as_ref().map(|s| s.name())
    }

    /// Where the keyring file lives.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Make sure `tenant_id` has keys, generating and saving them if not.
    /// Returns whether they were created now.
    pub fn ensure_tenant(&self, tenant_id: &str) -> Result<bool, KeyringError> {
        self.update(|state| {
            if state.tenants.contains_key(tenant_id) {
                return Ok(None);
            }
            let keys = TenantKeys::generate(now())?;
            let mut next = state.clone();
            next.tenants.insert(tenant_id.to_owned(), keys);
            Ok(Some((next, true)))
        })
        .map(|created| created.unwrap_or(false))
    }

    /// Wrap `dek` with the tenant's current KEK.
    pub fn wrap(&self, tenant_id: &str, dek: &DataKey) -> Result<WrappedKey, KeyringError> {
        let state = self.read();
        let kek = state.tenant(tenant_id)?.current_kek(tenant_id)?;
        let bytes = sealed::seal_raw(&kek.key.0, &wrap_aad(tenant_id, &kek.id), dek.as_bytes())?;
        Ok(WrappedKey {
            kek_id: kek.id.clone(),
            bytes,
        })
    }

    /// Unwrap a data key wrapped for this tenant by [`Keyring::wrap`], with
    /// whichever of its KEKs did it. A retired KEK gives
    /// [`KeyringError::UnknownKek`]; a key wrapped for another tenant or
    /// tampered with gives [`SealError::Forged`].
    pub fn unwrap(&self, tenant_id: &str, wrapped: &WrappedKey) -> Result<DataKey, KeyringError> {
        let state = self.read();
        let tenant = state.tenant(tenant_id)?;
        let kek = tenant
            .keks
            .iter()
            .find(|k| k.id == wrapped.kek_id)
            .ok_or_else(|| KeyringError::UnknownKek {
                tenant: tenant_id.to_owned(),
                kek_id: wrapped.kek_id.clone(),
            })?;
        let plain = sealed::open_raw(&kek.key.0, &wrap_aad(tenant_id, &kek.id), &wrapped.bytes)?;
        DataKey::from_slice(&plain).ok_or_else(|| {
            self.corrupt(format!(
                "key-encryption key `{}` unwrapped a value that is not a 32-byte data key",
                kek.id
            ))
        })
    }

    /// The id of the tenant's current KEK (the one [`Keyring::wrap`] uses).
    pub fn current_kek_id(&self, tenant_id: &str) -> Result<String, KeyringError> {
        let state = self.read();
        Ok(state.tenant(tenant_id)?.current_kek(tenant_id)?.id.clone())
    }

    /// Add a new current KEK for the tenant and save. Older KEKs are kept so
    /// existing wrapped keys still unwrap; rewrap them, then
    /// [`Keyring::retire`]. Returns the new KEK's id.
    pub fn rotate(&self, tenant_id: &str) -> Result<String, KeyringError> {
        self.update(|state| {
            let mut next = state.clone();
            let tenant = next
                .tenants
                .get_mut(tenant_id)
                .ok_or_else(|| unknown_tenant(tenant_id))?;
            let kek = Kek::generate(now(), &tenant.keks)?;
            let id = kek.id.clone();
            tenant.keks.push(kek);
            Ok(Some((next, id)))
        })?
        .ok_or_else(|| unknown_tenant(tenant_id))
    }

    /// Drop every KEK of the tenant except `keep`, which must be the current
    /// one (so a rotation that happened after rewrapping is never undone).
    /// Call only after every wrapped key has been rewrapped under `keep`:
    /// keys wrapped under a removed KEK are lost for good. Returns the
    /// removed ids, oldest first.
    pub fn retire(&self, tenant_id: &str, keep: &str) -> Result<Vec<String>, KeyringError> {
        self.update(|state| {
            let tenant = state.tenant(tenant_id)?;
            let current = tenant.current_kek(tenant_id)?;
            if current.id != keep {
                if tenant.keks.iter().any(|k| k.id == keep) {
                    return Err(KeyringError::KekNotCurrent {
                        tenant: tenant_id.to_owned(),
                        kek_id: keep.to_owned(),
                        current: current.id.clone(),
                    });
                }
                return Err(KeyringError::UnknownKek {
                    tenant: tenant_id.to_owned(),
                    kek_id: keep.to_owned(),
                });
            }
            if tenant.keks.len() == 1 {
                return Ok(None);
            }
            let mut next = state.clone();
            let tenant = next
                .tenants
                .get_mut(tenant_id)
                .ok_or_else(|| unknown_tenant(tenant_id))?;
            let (kept, removed): (Vec<Kek>, Vec<Kek>) =
                tenant.keks.drain(..).partition(|k| k.id == keep);
            tenant.keks = kept;
            let removed = removed.into_iter().map(|k| k.id).collect();
            Ok(Some((next, removed)))
        })
        .map(Option::unwrap_or_default)
    }

    /// The tenant's pseudonym for a recipient address:
    /// `"p:"` + hex(HMAC-SHA256(pseudonym key, trimmed lowercase address)).
    pub fn pseudonym(&self, tenant_id: &str, address: &str) -> Result<String, KeyringError> {
        let state = self.read();
        let tenant = state.tenant(tenant_id)?;
        let normalised = Zeroizing::new(address.trim().to_lowercase());
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(tenant.pseudonym_key.0.as_slice())
            .map_err(|_| self.corrupt("pseudonym key rejected by HMAC".to_owned()))?;
        mac.update(normalised.as_bytes());
        Ok(format!("p:{}", hex::encode(mac.finalize().into_bytes())))
    }

    /// The tenant's audit checkpoint signing key and its key id.
    pub fn checkpoint_signer(
        &self,
        tenant_id: &str,
    ) -> Result<(String, ed25519_dalek::SigningKey), KeyringError> {
        let state = self.read();
        let tenant = state.tenant(tenant_id)?;
        let key = ed25519_dalek::SigningKey::from_bytes(&tenant.checkpoint.seed.0);
        Ok((tenant.checkpoint.key_id.clone(), key))
    }

    /// The tenants with keys, sorted.
    pub fn tenants(&self) -> Vec<String> {
        self.read().tenants.keys().cloned().collect()
    }

    /// Reloads the file if another process replaced it since it was last
    /// read or written here. A file that cannot be read now keeps the state
    /// in memory (the next write reports the problem).
    fn refresh(&self) {
        let now = FileStamp::of(&self.shared.path);
        let mut stamp = self
            .shared
            .stamp
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if now.is_none() || *stamp == now {
            return;
        }
        // A plain file where a sealed one belongs is never adopted.
        if let Ok(Some(read)) = read_state(&self.shared.path, self.shared.sealer.as_deref())
            && !read.unsealed
        {
            let state = read.state;
            *self
                .shared
                .state
                .write()
                .unwrap_or_else(PoisonError::into_inner) = state;
            *stamp = now;
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.refresh();
        // The state is only ever replaced whole after a successful write, so
        // a poisoned lock still guards a consistent state.
        self.shared
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Under the write lock, let `change` compute the next state (or `None`
    /// for no change); persist it, then install it. If saving fails,
    /// nothing changes in memory either.
    fn update<T>(
        &self,
        change: impl FnOnce(&State) -> Result<Option<(State, T)>, KeyringError>,
    ) -> Result<Option<T>, KeyringError> {
        self.refresh();
        // Locks in the order `refresh` takes them — stamp, then state — or
        // a reader refreshing while this writes would wait for the state
        // while holding the stamp this waits for (a deadlock).
        let mut stamp = self
            .shared
            .stamp
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut guard = self
            .shared
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match change(&guard)? {
            None => Ok(None),
            Some((next, out)) => {
                write_state(&self.shared.path, &next, self.shared.sealer.as_deref())?;
                *guard = next;
                *stamp = FileStamp::of(&self.shared.path);
                Ok(Some(out))
            }
        }
    }

    fn corrupt(&self, reason: String) -> KeyringError {
        KeyringError::Corrupt {
            path: self.shared.path.clone(),
            reason,
        }
    }
}

fn unknown_tenant(tenant_id: &str) -> KeyringError {
    KeyringError::UnknownTenant {
        tenant: tenant_id.to_owned(),
    }
}

/// AAD for wrapping: label, length-prefixed tenant id, KEK id — so a wrapped
/// key only unwraps for the tenant and KEK it was made for.
fn wrap_aad(tenant_id: &str, kek_id: &str) -> Vec<u8> {
    let tenant_len = u64::try_from(tenant_id.len()).unwrap_or(u64::MAX);
    let mut aad = Vec::with_capacity(WRAP_AAD_LABEL.len() + 8 + tenant_id.len() + kek_id.len());
    aad.extend_from_slice(WRAP_AAD_LABEL);
    aad.extend_from_slice(&tenant_len.to_be_bytes());
    aad.extend_from_slice(tenant_id.as_bytes());
    aad.extend_from_slice(kek_id.as_bytes());
    aad
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn random_key() -> Result<Secret32, KeyringError> {
    let mut key = Zeroizing::new([0u8; 32]);
    getrandom::fill(key.as_mut_slice()).map_err(|_| KeyringError::Random)?;
    Ok(Secret32(key))
}

/// First 8 hex digits of SHA-256 of the Ed25519 public key for `seed`.
fn checkpoint_key_id(seed: &[u8; 32]) -> String {
    let public = ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes();
    let digest = Sha256::digest(public);
    let prefix = digest.first_chunk::<4>().copied().unwrap_or_default();
    hex::encode(prefix)
}

// ---------------------------------------------------------------------------
// The state, which is also the file format (serde).

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    version: u32,
    tenants: BTreeMap<String, TenantKeys>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: FORMAT_VERSION,
            tenants: BTreeMap::new(),
        }
    }
}

impl State {
    fn tenant(&self, tenant_id: &str) -> Result<&TenantKeys, KeyringError> {
        self.tenants
            .get(tenant_id)
            .ok_or_else(|| unknown_tenant(tenant_id))
    }

    /// Checks what serde cannot; the reason names no key bytes.
    fn validate(&self) -> Result<(), String> {
        if self.version != FORMAT_VERSION {
            return Err(format!(
                "format version {} is not supported (this build reads version {FORMAT_VERSION})",
                self.version
            ));
        }
        for (tenant_id, tenant) in &self.tenants {
            if tenant.keks.is_empty() {
                return Err(format!("tenant `{tenant_id}` has no key-encryption keys"));
            }
            for (i, kek) in tenant.keks.iter().enumerate() {
                if kek.id.is_empty() {
                    return Err(format!(
                        "tenant `{tenant_id}`: key-encryption key {} has an empty id",
                        i + 1
                    ));
                }
                if tenant.keks.iter().skip(i + 1).any(|k| k.id == kek.id) {
                    return Err(format!(
                        "tenant `{tenant_id}`: key-encryption key id `{}` appears twice",
                        kek.id
                    ));
                }
            }
            if tenant.checkpoint.key_id != checkpoint_key_id(&tenant.checkpoint.seed.0) {
                return Err(format!(
                    "tenant `{tenant_id}`: checkpoint key id `{}` does not match its key",
                    tenant.checkpoint.key_id
                ));
            }
        }
        Ok(())
    }

    /// A generous upper bound on the serialised size, so the buffer holding
    /// key material is allocated once and never reallocated (which would
    /// leave unwiped copies behind).
    fn size_hint(&self) -> usize {
        self.tenants.iter().fold(1024usize, |n, (id, t)| {
            n.saturating_add(1024)
                .saturating_add(id.len().saturating_mul(6))
                .saturating_add(t.keks.len().saturating_mul(512))
                .saturating_add(t.keks.iter().map(|k| k.id.len() * 6).sum())
                .saturating_add(t.checkpoint.key_id.len() * 6)
        })
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantKeys {
    /// Oldest first; the last is current.
    keks: Vec<Kek>,
    pseudonym_key: Secret32,
    checkpoint: Checkpoint,
}

impl TenantKeys {
    fn generate(created_at: i64) -> Result<TenantKeys, KeyringError> {
        let seed = random_key()?;
        Ok(TenantKeys {
            keks: vec![Kek::generate(created_at, &[])?],
            pseudonym_key: random_key()?,
            checkpoint: Checkpoint {
                key_id: checkpoint_key_id(&seed.0),
                seed,
            },
        })
    }

    fn current_kek(&self, tenant_id: &str) -> Result<&Kek, KeyringError> {
        // `validate` guarantees at least one; stay total anyway.
        self.keks.last().ok_or_else(|| unknown_tenant(tenant_id))
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kek {
    id: String,
    key: Secret32,
    created_at: i64,
}

impl Kek {
    /// A fresh KEK whose id is not among `existing`.
    fn generate(created_at: i64, existing: &[Kek]) -> Result<Kek, KeyringError> {
        loop {
            let mut suffix = [0u8; 4];
            getrandom::fill(&mut suffix).map_err(|_| KeyringError::Random)?;
            let id = format!("kek-{}", hex::encode(suffix));
            if existing.iter().all(|k| k.id != id) {
                return Ok(Kek {
                    id,
                    key: random_key()?,
                    created_at,
                });
            }
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Checkpoint {
    key_id: String,
    /// Ed25519 seed.
    seed: Secret32,
}

/// 32 secret bytes: hex in the file, wiped on drop, never shown by `Debug`.
#[derive(Clone)]
struct Secret32(Zeroizing<[u8; 32]>);

impl Serialize for Secret32 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = Zeroizing::new([0u8; 64]);
        hex::encode_to_slice(self.0.as_slice(), text.as_mut_slice())
            .map_err(serde::ser::Error::custom)?;
        let text = std::str::from_utf8(text.as_slice()).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(text)
    }
}

impl<'de> Deserialize<'de> for Secret32 {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HexVisitor;
        impl serde::de::Visitor<'_> for HexVisitor {
            type Value = Secret32;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 32-byte key as 64 hex digits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret32, E> {
                let mut key = Zeroizing::new([0u8; 32]);
                // The error names no input bytes.
                hex::decode_to_slice(v, key.as_mut_slice())
                    .map_err(|_| E::custom("a key is not 64 hex digits"))?;
                Ok(Secret32(key))
            }
        }
        deserializer.deserialize_str(HexVisitor)
    }
}

// ---------------------------------------------------------------------------
// The file.

mod derive;
mod file;
mod seal;
use file::{create_file, read_state, write_state};
pub use seal::{KekError, KeyringSealer, LocalKek, SealerError};

#[cfg(test)]
mod tests;
