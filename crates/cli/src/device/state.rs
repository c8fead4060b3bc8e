//! The device client's state file: its id and private keys, created
//! owner-only (0600) and never overwritten.

use std::path::Path;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::CliError;

pub(super) const STATE_FORMAT: &str = "ladder-device-state-v1";

/// The device's state file: its id and private keys.
#[derive(Serialize, Deserialize)]
pub(super) struct DeviceState {
    pub(super) format: String,
    pub(super) url: String,
    pub(super) device_id: String,
    pub(super) recipient_id: String,
    /// Ed25519 private key (seed), hex.
    pub(super) identity_secret: String,
    /// X25519 private key, hex.
    pub(super) agreement_secret: String,
    pub(super) identity_key: String,
    pub(super) agreement_key: String,
}

impl std::fmt::Debug for DeviceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceState")
            .field("device_id", &self.device_id)
            .field("recipient_id", &self.recipient_id)
            .finish_non_exhaustive()
    }
}

impl DeviceState {
    pub(super) fn load(path: &Path) -> Result<DeviceState, CliError> {
        warn_if_readable_by_others(path);
        let text = Zeroizing::new(crate::read(path)?);
        let s: DeviceState = serde_json::from_str(&text).map_err(|e| {
            CliError::Run(format!("{}: not a device state file: {e}", path.display()))
        })?;
        if s.format != STATE_FORMAT {
            return Err(CliError::Run(format!(
                "{}: unknown state format `{}`",
                path.display(),
                s.format
            )));
        }
        Ok(s)
    }

    pub(super) fn signing_key(&self) -> Result<SigningKey, CliError> {
        let seed = secret32(&self.identity_secret, "identity_secret")?;
        Ok(SigningKey::from_bytes(&seed))
    }

    pub(super) fn agreement_secret(&self) -> Result<Zeroizing<[u8; 32]>, CliError> {
        secret32(&self.agreement_secret, "agreement_secret")
    }
}

pub(super) fn secret32(hex_text: &str, what: &str) -> Result<Zeroizing<[u8; 32]>, CliError> {
    let bytes = Zeroizing::new(hex::decode(hex_text).map_err(|_| bad_state(what))?);
    let mut out = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(bad_state(what));
    }
    out.copy_from_slice(&bytes);
    Ok(out)
}

pub(super) fn bad_state(what: &str) -> CliError {
    CliError::Run(format!("the state file's `{what}` is not 32 bytes of hex"))
}

#[cfg(unix)]
pub(super) fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(m) = std::fs::metadata(path)
        && m.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "warning: {} holds private keys and is accessible to others; chmod 600 it",
            path.display()
        );
    }
}

#[cfg(not(unix))]
pub(super) fn warn_if_readable_by_others(_path: &Path) {}

/// Creates `path` for the owner only; refuses if it exists.
pub(super) fn create_private(path: &Path) -> Result<std::fs::File, CliError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::Run(format!(
                "`{}` exists; refusing to overwrite a device's keys",
                path.display()
            ))
        } else {
            CliError::Write {
                path: path.display().to_string(),
                source,
            }
        }
    })
}
