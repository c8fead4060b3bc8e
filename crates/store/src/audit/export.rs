//! Export files: a directory with `entries.jsonl` (one [`AuditEntry`] as a
//! JSON object per line, in log order) and `checkpoints.json` (a JSON array
//! of [`Checkpoint`]). Everything needed to verify a tenant's log away from
//! the database.

use std::borrow::Borrow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::AuditEntry;
use super::checkpoint::Checkpoint;

/// The entries file inside an export directory.
pub const ENTRIES_FILE: &str = "entries.jsonl";
/// The checkpoints file inside an export directory.
pub const CHECKPOINTS_FILE: &str = "checkpoints.json";

/// Why an export could not be read. Names the file, and the line for a
/// malformed entry. The reason is the JSON parser's; it may quote a field
/// name or value, never more (the log holds no message content anyway).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot read {}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}:{line}: not an audit entry: {reason}", file.display())]
    Line {
        file: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{}: not a list of audit checkpoints: {reason}", file.display())]
    Checkpoints { file: PathBuf, reason: String },
}

/// Writes `entries` (in log order) and `checkpoints` into `dir`, creating
/// it if needed and replacing earlier export files there.
pub fn write_export<I>(dir: &Path, entries: I, checkpoints: &[Checkpoint]) -> io::Result<()>
where
    I: IntoIterator,
    I::Item: Borrow<AuditEntry>,
{
    std::fs::create_dir_all(dir)?;
    let file = File::create(dir.join(ENTRIES_FILE))?;
    let mut out = BufWriter::new(file);
    for entry in entries {
        serde_json::to_writer(&mut out, entry.borrow())?;
        out.write_all(b"\n")?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let file = File::create(dir.join(CHECKPOINTS_FILE))?;
    let mut out = BufWriter::new(file);
    serde_json::to_writer_pretty(&mut out, checkpoints)?;
    out.write_all(b"\n")?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// Reads an export written by [`write_export`]: the entries in file order
/// and the checkpoints. Empty lines are skipped; any other line that is
/// not exactly one entry is an error naming the file and line. Both files
/// must be present.
pub fn read_export(dir: &Path) -> Result<(Vec<AuditEntry>, Vec<Checkpoint>), ExportError> {
    let path = dir.join(ENTRIES_FILE);
    let io_err = |file: &Path| {
        let file = file.to_path_buf();
        move |source| ExportError::Io { file, source }
    };
    let reader = BufReader::new(File::open(&path).map_err(io_err(&path))?);
    let mut entries = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line = line.map_err(io_err(&path))?;
        if line.trim().is_empty() {
            continue;
        }
        let entry = serde_json::from_str(&line).map_err(|e| ExportError::Line {
            file: path.clone(),
            line: index.saturating_add(1),
            reason: e.to_string(),
        })?;
        entries.push(entry);
    }
    let path = dir.join(CHECKPOINTS_FILE);
    let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
    let checkpoints = serde_json::from_str(&text).map_err(|e| ExportError::Checkpoints {
        file: path.clone(),
        reason: e.to_string(),
    })?;
    Ok((entries, checkpoints))
}
