//! The keyring file on disk: read with a permission check, created
//! owner-only without overwriting anything, written atomically (temp file,
//! fsync, rename, directory fsync) — and, with a [`KeyringSealer`], sealed
//! as one envelope ([`super::seal`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::seal::{Envelope, KeyringSealer};
use super::{FORMAT_VERSION, KeyringError, State};

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> KeyringError + '_ {
    move |source| KeyringError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What was read: the state, and whether the file lay in plain JSON while
/// a sealer is configured (the caller then seals it).
pub(super) struct Loaded {
    pub(super) state: State,
    pub(super) unsealed: bool,
}

/// Read and check the keyring at `path`; `None` if there is no file. A
/// sealed file needs `sealer`; a plain one is read either way.
pub(super) fn read_state(
    path: &Path,
    sealer: Option<&dyn KeyringSealer>,
) -> Result<Option<Loaded>, KeyringError> {
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

    let (bytes, unsealed) = match serde_json::from_slice::<Envelope>(&bytes) {
        Ok(envelope) => {
            let sealer = sealer.ok_or_else(|| KeyringError::SealedWithoutKey {
                path: path.to_path_buf(),
                by: envelope.sealed_by().to_owned(),
            })?;
            let plain = envelope
                .open(sealer)
                .map_err(|source| KeyringError::Sealer {
                    path: path.to_path_buf(),
                    source,
                })?;
            (plain, false)
        }
        Err(_) => (bytes, sealer.is_some()),
    };
    let state: State = serde_json::from_slice(&bytes).map_err(|e| KeyringError::Corrupt {
        path: path.to_path_buf(),
        reason: describe_json_error(&e),
    })?;
    state.validate().map_err(|reason| KeyringError::Corrupt {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(Some(Loaded { state, unsealed }))
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
pub(super) fn create_file(
    path: &Path,
    sealer: Option<&dyn KeyringSealer>,
) -> Result<Loaded, KeyringError> {
    let dir = parent_dir(path);
    if !dir.as_os_str().is_empty() && !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error(path))?;
    }
    let state = State::default();
    let tmp = write_temp(path, &state, sealer)?;
    // `hard_link` fails if `path` exists: an atomic create-if-absent.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_dir(path)?;
            Ok(Loaded {
                state,
                unsealed: false,
            })
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match read_state(path, sealer)? {
            Some(state) => Ok(state),
            None => Err(io_error(path)(e)),
        },
        Err(e) => Err(io_error(path)(e)),
    }
}

/// Atomically replace the keyring file with `state`.
pub(super) fn write_state(
    path: &Path,
    state: &State,
    sealer: Option<&dyn KeyringSealer>,
) -> Result<(), KeyringError> {
    let tmp = write_temp(path, state, sealer)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(io_error(path)(e));
    }
    sync_dir(path)
}

/// Write `state` (sealed, with a sealer) to a fresh 0600 temporary file
/// next to `path`, fsynced.
fn write_temp(
    path: &Path,
    state: &State,
    sealer: Option<&dyn KeyringSealer>,
) -> Result<PathBuf, KeyringError> {
    let cannot_serialise = |e: serde_json::Error| KeyringError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("cannot serialise ({:?} error)", e.classify()),
    };
    let mut bytes = Zeroizing::new(Vec::with_capacity(state.size_hint()));
    serde_json::to_writer_pretty(&mut *bytes, state).map_err(cannot_serialise)?;
    if let Some(sealer) = sealer {
        let envelope = Envelope::seal(sealer, &bytes).map_err(|source| KeyringError::Sealer {
            path: path.to_path_buf(),
            source,
        })?;
        bytes = Zeroizing::new(serde_json::to_vec_pretty(&envelope).map_err(cannot_serialise)?);
    }
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
