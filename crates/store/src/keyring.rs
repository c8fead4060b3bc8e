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
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
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
}

/// The local keyring. Cheap to clone; clones share one in-memory copy, and
/// writes are serialised by a lock.
#[derive(Clone)]
pub struct Keyring {
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    state: RwLock<State>,
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
        let state = match read_state(path)? {
            Some(state) => state,
            None => create_file(path)?,
        };
        Ok(Keyring {
            shared: Arc::new(Shared {
                path: path.to_path_buf(),
                state: RwLock::new(state),
            }),
        })
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

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
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
        let mut guard = self
            .shared
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match change(&guard)? {
            None => Ok(None),
            Some((next, out)) => {
                write_state(&self.shared.path, &next)?;
                *guard = next;
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

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> KeyringError + '_ {
    move |source| KeyringError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Read and check the keyring at `path`; `None` if there is no file.
fn read_state(path: &Path) -> Result<Option<State>, KeyringError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path)(e)),
    };
    // Check the file actually opened, not the path (no race with a swap).
    let meta = file.metadata().map_err(io_error(path))?;
    if !meta.is_file() {
        return Err(KeyringError::Corrupt {
            path: path.to_path_buf(),
            reason: "not a regular file".to_owned(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyringError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let len = usize::try_from(meta.len()).unwrap_or(0);
    let mut bytes = Zeroizing::new(Vec::with_capacity(len.saturating_add(1)));
    file.read_to_end(&mut bytes).map_err(io_error(path))?;

    let state: State = serde_json::from_slice(&bytes).map_err(|e| KeyringError::Corrupt {
        path: path.to_path_buf(),
        reason: describe_json_error(&e),
    })?;
    state.validate().map_err(|reason| KeyringError::Corrupt {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(Some(state))
}

/// serde_json's data errors can quote the offending value, which could be
/// key material in a damaged file; only say where the problem is.
fn describe_json_error(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Data => format!(
            "unexpected field or value at line {}, column {} (not a version {FORMAT_VERSION} keyring?)",
            e.line(),
            e.column()
        ),
        _ => format!("not valid JSON: {e}"),
    }
}

/// Create an empty keyring file at `path` without ever replacing an
/// existing one; if another opener wins the race, read theirs.
fn create_file(path: &Path) -> Result<State, KeyringError> {
    let dir = parent_dir(path);
    if !dir.as_os_str().is_empty() && !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error(path))?;
    }
    let state = State::default();
    let tmp = write_temp(path, &state)?;
    // `hard_link` fails if `path` exists: an atomic create-if-absent.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_dir(path)?;
            Ok(state)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match read_state(path)? {
            Some(state) => Ok(state),
            None => Err(io_error(path)(e)),
        },
        Err(e) => Err(io_error(path)(e)),
    }
}

/// Atomically replace the keyring file with `state`.
fn write_state(path: &Path, state: &State) -> Result<(), KeyringError> {
    let tmp = write_temp(path, state)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(io_error(path)(e));
    }
    sync_dir(path)
}

/// Write `state` to a fresh 0600 temporary file next to `path`, fsynced.
fn write_temp(path: &Path, state: &State) -> Result<PathBuf, KeyringError> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(state.size_hint()));
    serde_json::to_writer_pretty(&mut *bytes, state).map_err(|e| KeyringError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("cannot serialise ({:?} error)", e.classify()),
    })?;
    bytes.push(b'\n');

    let name = path.file_name().ok_or_else(|| {
        io_error(path)(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the keyring path has no file name",
        ))
    })?;
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix).map_err(|_| KeyringError::Random)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", hex::encode(suffix)));
    let tmp = parent_dir(path).join(tmp_name);

    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()
    })();
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(io_error(path)(e))
        }
    }
}

fn parent_dir(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new(""))
}

/// Make a rename or link in the keyring's directory durable.
fn sync_dir(path: &Path) -> Result<(), KeyringError> {
    let dir = parent_dir(path);
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, Verifier};

    fn keyring_in(dir: &tempfile::TempDir) -> (PathBuf, Keyring) {
        let path = dir.path().join("keys").join("keyring.json");
        let keyring = Keyring::open_or_create(&path).unwrap();
        (path, keyring)
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn is_clone_send_sync() {
        fn check<T: Clone + Send + Sync + 'static>() {}
        check::<Keyring>();
    }

    #[test]
    fn created_owner_only_and_reopens_with_same_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (path, keyring) = keyring_in(&dir);
        assert_eq!(keyring.path(), path);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert!(keyring.tenants().is_empty());

        assert!(keyring.ensure_tenant("acme").unwrap());
        assert!(!keyring.ensure_tenant("acme").unwrap());
        assert_eq!(mode(&path), 0o600);

        let dek = DataKey::generate().unwrap();
        let wrapped = keyring.wrap("acme", &dek).unwrap();
        assert!(wrapped.kek_id.starts_with("kek-") && wrapped.kek_id.len() == 12);
        assert_eq!(wrapped.bytes.len(), 32 + sealed::OVERHEAD);
        let pseudonym = keyring.pseudonym("acme", "alice@example.com").unwrap();
        let (key_id, signer) = keyring.checkpoint_signer("acme").unwrap();
        drop(keyring);

        let again = Keyring::open_or_create(&path).unwrap();
        assert_eq!(again.tenants(), vec!["acme".to_owned()]);
        assert_eq!(
            again.pseudonym("acme", "alice@example.com").unwrap(),
            pseudonym
        );
        assert_eq!(
            again.unwrap("acme", &wrapped).unwrap().as_bytes(),
            dek.as_bytes()
        );
        let (key_id_again, signer_again) = again.checkpoint_signer("acme").unwrap();
        assert_eq!(key_id_again, key_id);
        assert_eq!(signer_again.to_bytes(), signer.to_bytes());

        // Only the keyring itself is left in the directory: no temp files.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("keyring.json")]);
    }

    #[test]
    fn group_readable_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, keyring) = keyring_in(&dir);
        keyring.ensure_tenant("acme").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = Keyring::open_or_create(&path).unwrap_err();
        assert!(
            matches!(err, KeyringError::Permissions { mode: 0o640, .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("mode 640"), "{message}");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o604)).unwrap();
        assert!(matches!(
            Keyring::open_or_create(&path),
            Err(KeyringError::Permissions { .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            Keyring::open_or_create(&path).unwrap().tenants(),
            vec!["acme"]
        );
    }

    #[test]
    fn rotate_keeps_old_keks_until_retired() {
        let dir = tempfile::tempdir().unwrap();
        let (path, keyring) = keyring_in(&dir);
        keyring.ensure_tenant("acme").unwrap();
        let first = keyring.current_kek_id("acme").unwrap();
        let old_dek = DataKey::generate().unwrap();
        let old = keyring.wrap("acme", &old_dek).unwrap();
        assert_eq!(old.kek_id, first);

        let second = keyring.rotate("acme").unwrap();
        assert_ne!(second, first);
        assert_eq!(keyring.current_kek_id("acme").unwrap(), second);
        assert_eq!(
            keyring.unwrap("acme", &old).unwrap().as_bytes(),
            old_dek.as_bytes()
        );

        // Rewrap under the current KEK.
        let rewrapped = keyring
            .wrap("acme", &keyring.unwrap("acme", &old).unwrap())
            .unwrap();
        assert_eq!(rewrapped.kek_id, second);

        // Keeping anything but the current KEK is refused.
        let err = keyring.retire("acme", &first).unwrap_err();
        assert!(matches!(err, KeyringError::KekNotCurrent { .. }), "{err:?}");
        let err = keyring.retire("acme", "kek-nope").unwrap_err();
        assert!(matches!(err, KeyringError::UnknownKek { .. }), "{err:?}");

        assert_eq!(
            keyring.retire("acme", &second).unwrap(),
            vec![first.clone()]
        );
        assert!(keyring.retire("acme", &second).unwrap().is_empty());
        let err = keyring.unwrap("acme", &old).unwrap_err();
        assert!(
            matches!(&err, KeyringError::UnknownKek { tenant, kek_id } if tenant == "acme" && *kek_id == first),
            "{err:?}"
        );
        assert_eq!(
            keyring.unwrap("acme", &rewrapped).unwrap().as_bytes(),
            old_dek.as_bytes()
        );

        // The retirement was saved.
        let again = Keyring::open_or_create(&path).unwrap();
        assert_eq!(again.current_kek_id("acme").unwrap(), second);
        assert!(matches!(
            again.unwrap("acme", &old),
            Err(KeyringError::UnknownKek { .. })
        ));
        assert_eq!(
            again.unwrap("acme", &rewrapped).unwrap().as_bytes(),
            old_dek.as_bytes()
        );
        assert!(!fs::read_to_string(&path).unwrap().contains(&first));
    }

    #[test]
    fn wrapped_keys_are_bound_to_tenant_and_intact() {
        let dir = tempfile::tempdir().unwrap();
        let (_, keyring) = keyring_in(&dir);
        keyring.ensure_tenant("a").unwrap();
        keyring.ensure_tenant("b").unwrap();
        let wrapped = keyring.wrap("a", &DataKey::generate().unwrap()).unwrap();

        // Another tenant does not have that KEK.
        assert!(matches!(
            keyring.unwrap("b", &wrapped),
            Err(KeyringError::UnknownKek { .. })
        ));
        // Even under the other tenant's KEK id, it does not authenticate.
        let moved = WrappedKey {
            kek_id: keyring.current_kek_id("b").unwrap(),
            bytes: wrapped.bytes.clone(),
        };
        assert!(matches!(
            keyring.unwrap("b", &moved),
            Err(KeyringError::Seal(SealError::Forged))
        ));
        // Tampered bytes.
        let mut tampered = wrapped.clone();
        tampered.bytes[30] ^= 1;
        assert!(matches!(
            keyring.unwrap("a", &tampered),
            Err(KeyringError::Seal(SealError::Forged))
        ));
    }

    #[test]
    fn pseudonyms_are_stable_per_tenant_and_normalised() {
        let dir = tempfile::tempdir().unwrap();
        let (path, keyring) = keyring_in(&dir);
        keyring.ensure_tenant("a").unwrap();
        keyring.ensure_tenant("b").unwrap();

        let p = keyring.pseudonym("a", "alice@example.com").unwrap();
        assert!(p.starts_with("p:"));
        assert_eq!(p.len(), 2 + 64);
        assert!(p[2..].bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(keyring.pseudonym("a", "alice@example.com").unwrap(), p);
        assert_eq!(keyring.pseudonym("a", "  Alice@Example.COM\n").unwrap(), p);
        assert_ne!(keyring.pseudonym("b", "alice@example.com").unwrap(), p);
        assert_ne!(keyring.pseudonym("a", "bob@example.com").unwrap(), p);
        assert!(!p.contains("alice"));

        let again = Keyring::open_or_create(&path).unwrap();
        assert_eq!(again.pseudonym("a", "ALICE@example.com").unwrap(), p);
    }

    #[test]
    fn unknown_tenant_gets_nothing_and_leaves_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let (path, keyring) = keyring_in(&dir);
        keyring.ensure_tenant("acme").unwrap();
        let before = fs::read(&path).unwrap();

        let dek = DataKey::generate().unwrap();
        let err = keyring.pseudonym("ghost", "x@y").unwrap_err();
        assert_eq!(err.to_string(), "no keys for tenant `ghost` in the keyring");
        assert!(matches!(
            keyring.wrap("ghost", &dek),
            Err(KeyringError::UnknownTenant { .. })
        ));
        assert!(matches!(
            keyring.current_kek_id("ghost"),
            Err(KeyringError::UnknownTenant { .. })
        ));
        assert!(matches!(
            keyring.rotate("ghost"),
            Err(KeyringError::UnknownTenant { .. })
        ));
        assert!(matches!(
            keyring.retire("ghost", "kek-00000000"),
            Err(KeyringError::UnknownTenant { .. })
        ));
        assert!(matches!(
            keyring.checkpoint_signer("ghost"),
            Err(KeyringError::UnknownTenant { .. })
        ));
        let wrapped = keyring.wrap("acme", &dek).unwrap();
        assert!(matches!(
            keyring.unwrap("ghost", &wrapped),
            Err(KeyringError::UnknownTenant { .. })
        ));

        assert_eq!(keyring.tenants(), vec!["acme"]);
        let after = fs::read(&path).unwrap();
        assert_eq!(after, before);
        assert!(!String::from_utf8(after).unwrap().contains("ghost"));
    }

    #[test]
    fn checkpoint_signer_is_stable_and_per_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let (path, keyring) = keyring_in(&dir);
        keyring.ensure_tenant("a").unwrap();
        keyring.ensure_tenant("b").unwrap();
        let (id_a, key_a) = keyring.checkpoint_signer("a").unwrap();
        let (id_b, key_b) = keyring.checkpoint_signer("b").unwrap();
        assert_ne!(id_a, id_b);
        assert_ne!(key_a.to_bytes(), key_b.to_bytes());
        assert_eq!(id_a.len(), 8);
        let digest = Sha256::digest(key_a.verifying_key().to_bytes());
        assert_eq!(id_a, hex::encode(&digest[..4]));

        // Rotating KEKs does not touch the checkpoint key.
        keyring.rotate("a").unwrap();
        let again = Keyring::open_or_create(&path).unwrap();
        let (id_again, key_again) = again.checkpoint_signer("a").unwrap();
        assert_eq!(id_again, id_a);
        let signature = key_again.sign(b"checkpoint");
        key_a
            .verifying_key()
            .verify(b"checkpoint", &signature)
            .unwrap();
    }

    #[test]
    fn debug_and_errors_show_no_key_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (path, keyring) = keyring_in(&dir);
        keyring.ensure_tenant("acme").unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let tenant = &doc["tenants"]["acme"];
        let secrets = [
            tenant["keks"][0]["key"].as_str().unwrap(),
            tenant["pseudonym_key"].as_str().unwrap(),
            tenant["checkpoint"]["seed"].as_str().unwrap(),
        ];
        let shown = format!("{keyring:?}");
        assert!(shown.contains("acme"), "{shown}");
        for secret in secrets {
            assert_eq!(secret.len(), 64);
            assert!(!shown.contains(secret) && !shown.contains(&secret[..8]));
        }

        // A damaged file whose key landed in the wrong field: the error
        // locates the problem without quoting it.
        let mut broken = doc.clone();
        broken["tenants"]["acme"]["keks"][0]["created_at"] = secrets[0].into();
        let broken = serde_json::to_string_pretty(&broken).unwrap();
        fs::write(&path, broken).unwrap();
        let err = Keyring::open_or_create(&path).unwrap_err();
        assert!(matches!(err, KeyringError::Corrupt { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("line"), "{message}");
        for secret in secrets {
            assert!(!message.contains(&secret[..8]), "{message}");
        }
    }

    #[test]
    fn corrupt_files_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let (path, keyring) = keyring_in(&dir);
        keyring.ensure_tenant("acme").unwrap();
        let good = fs::read_to_string(&path).unwrap();

        let cases = [
            ("{ not json", "not valid JSON"),
            (
                &good.replace("\"version\": 1", "\"version\": 9"),
                "format version 9",
            ),
            (&good.replacen("\"key\": \"", "\"key\": \"zz", 1), "line"),
        ];
        for (text, expected) in cases {
            fs::write(&path, text).unwrap();
            let err = Keyring::open_or_create(&path).unwrap_err();
            let message = err.to_string();
            assert!(matches!(err, KeyringError::Corrupt { .. }), "{err:?}");
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn failed_write_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (path, keyring) = keyring_in(&dir);
        keyring.ensure_tenant("acme").unwrap();
        // Make the rename fail, even for root: a non-empty directory where
        // the file was.
        let saved = fs::read(&path).unwrap();
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        fs::write(path.join("x"), b"x").unwrap();

        let err = keyring.ensure_tenant("other").unwrap_err();
        assert!(matches!(err, KeyringError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("keyring.json"), "{err}");
        assert_eq!(keyring.tenants(), vec!["acme"]);
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "temp file left behind: {names:?}");

        fs::remove_dir_all(&path).unwrap();
        fs::write(&path, saved).unwrap();
        assert!(keyring.rotate("acme").is_ok());
        assert!(keyring.ensure_tenant("other").unwrap());
    }
}
