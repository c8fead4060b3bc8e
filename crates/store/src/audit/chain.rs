//! The chain itself, pure: the canonical encoding of an entry, its hash, and
//! verification of a sequence of entries against a set of checkpoints. No
//! I/O, so the same code checks a live database and an export.

use std::collections::HashSet;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::AuditEntry;
use super::checkpoint::{self, Checkpoint};

/// `prev_hash` of entry 1: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Domain separation for entry hashes: a version bump changes every hash.
const ENTRY_DOMAIN: &[u8] = b"ladder audit entry v1\n";

/// The bytes an entry's hash covers. Version 1 is
///
/// ```text
/// "ladder audit entry v1\n" ++ canonical_json({
///     "actor": actor, "at": at, "details": details, "kind": kind,
///     "prev_hash": prev_hash, "seq": seq, "subject": subject or null,
///     "tenant_id": tenant_id })
/// ```
///
/// where [`canonical_json`] writes no whitespace and object keys sorted by
/// their UTF-8 bytes. Every field but `hash` is covered; `entry.hash` is
/// ignored.
pub fn canonical_bytes(entry: &AuditEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(ENTRY_DOMAIN);
    out.extend_from_slice(b"{\"actor\":");
    write_str(&mut out, &entry.actor);
    out.extend_from_slice(b",\"at\":");
    out.extend_from_slice(entry.at.to_string().as_bytes());
    out.extend_from_slice(b",\"details\":");
    write_value(&mut out, &entry.details);
    out.extend_from_slice(b",\"kind\":");
    write_str(&mut out, &entry.kind);
    out.extend_from_slice(b",\"prev_hash\":");
    write_str(&mut out, &entry.prev_hash);
    out.extend_from_slice(b",\"seq\":");
    out.extend_from_slice(entry.seq.to_string().as_bytes());
    out.extend_from_slice(b",\"subject\":");
    match &entry.subject {
        Some(subject) => write_str(&mut out, subject),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"tenant_id\":");
    write_str(&mut out, &entry.tenant_id);
    out.push(b'}');
    out
}

/// Lower-case hex SHA-256 of [`canonical_bytes`]: what `entry.hash` must be.
pub fn entry_hash(entry: &AuditEntry) -> String {
    hex::encode(Sha256::digest(canonical_bytes(entry)))
}

/// Canonical JSON text of a value: no whitespace; object keys sorted by
/// their UTF-8 bytes (whatever order the map keeps them in); strings
/// escaped as `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t` and `\u00xx` (lower
/// case) for the other control characters, everything else as raw UTF-8;
/// integers in decimal. Fractional numbers are written as serde_json writes
/// them, but [`super::append`] refuses them (their text form is not stable
/// across JSON libraries), so they never occur in a valid log.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, key);
                out.push(b':');
                if let Some(v) = map.get(key) {
                    write_value(out, v);
                }
            }
            out.push(b'}');
        }
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x00..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'));
                out.push(HEX.get(usize::from(b & 0x0f)).copied().unwrap_or(b'0'));
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// Refuses details whose canonical text would not be stable: fractional
/// numbers (and integers too large for 64 bits, which JSON parsers read as
/// floats). Names the first offending place as a JSON pointer.
pub(super) fn check_details(value: &Value) -> Result<(), String> {
    fn walk(value: &Value, path: &mut String) -> Result<(), String> {
        match value {
            Value::Number(n) if !(n.is_i64() || n.is_u64()) => Err(format!(
                "`{}` holds the fractional number {n}; audit details take only \
                 integers (send fractions as strings)",
                if path.is_empty() { "/" } else { path.as_str() }
            )),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&i.to_string());
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Object(map) => {
                for (key, item) in map {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&key.replace('~', "~0").replace('/', "~1"));
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    walk(value, &mut String::new())
}

/// The first thing wrong with a log, in log order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("entry {seq}: hash does not match its contents (altered)")]
    EntryHash { seq: i64 },
    #[error(
        "entry {seq}: prev_hash does not match entry {}'s hash (deleted, inserted or reordered)",
        seq.saturating_sub(1)
    )]
    Link { seq: i64 },
    #[error("expected entry {expected} but found entry {found} (deleted, inserted or reordered)")]
    Gap { expected: i64, found: i64 },
    #[error("entry {seq}: belongs to a different tenant than entry 1")]
    MixedTenants { seq: i64 },
    #[error("checkpoint at {seq}: signature does not verify (forged or altered)")]
    CheckpointSignature { seq: i64 },
    #[error("checkpoint at {seq} signs a head that is not entry {seq}'s hash (history rewritten)")]
    CheckpointMismatch { seq: i64 },
    #[error("checkpoint at {seq} but the log ends at {len} (truncated or rolled back)")]
    CheckpointBeyondLog { seq: i64, len: i64 },
    #[error("checkpoint at {seq}: signed by key `{key_id}`, which is not trusted")]
    UntrustedKey { seq: i64, key_id: String },
    #[error("checkpoint at {seq}: belongs to a different tenant than the log")]
    CheckpointTenant { seq: i64 },
    #[error(
        "the log ends at entry {len} but the tenant head records entry {head_seq} \
         (tail deleted, replaced or appended behind the head's back)"
    )]
    HeadMismatch { head_seq: i64, len: i64 },
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries checked.
    pub entries: i64,
    /// Checkpoints checked (signature, key, and the head they sign).
    pub checkpoints: usize,
    /// The last entry's seq and hash; `None` for an empty log.
    pub head: Option<(i64, String)>,
}

/// Incremental verification: feed entries in log order with
/// [`Verifier::push`], then [`Verifier::finish`]. [`verify`] and
/// [`super::verify_store`] are built on it.
#[derive(Debug)]
pub struct Verifier<'a> {
    /// Checkpoints still to check, sorted by seq.
    pending: Vec<&'a Checkpoint>,
    next: usize,
    trusted: Option<HashSet<String>>,
    tenant: Option<String>,
    /// The seq the next entry must have.
    expected: i64,
    prev_hash: String,
    entries: i64,
    checked: usize,
}

impl<'a> Verifier<'a> {
    /// A verifier for a whole log, starting at entry 1. With
    /// `trusted_keys` (hex Ed25519 public keys), every checkpoint must be
    /// signed by one of them; without, by the key it carries.
    pub fn new(checkpoints: &'a [Checkpoint], trusted_keys: Option<&[String]>) -> Verifier<'a> {
        Verifier::start(
            checkpoints.iter().collect(),
            trusted_keys,
            0,
            GENESIS_HASH.to_string(),
        )
    }

    /// A verifier for the part of a log after entry `seq`, whose hash is
    /// `hash` (taken on trust, e.g. from a verified checkpoint). Checkpoints
    /// at or before `seq` are ignored.
    pub(crate) fn resume(
        checkpoints: &'a [Checkpoint],
        trusted_keys: Option<&[String]>,
        seq: i64,
        hash: String,
    ) -> Verifier<'a> {
        let pending = checkpoints.iter().filter(|c| c.seq > seq).collect();
        Verifier::start(pending, trusted_keys, seq, hash)
    }

    fn start(
        mut pending: Vec<&'a Checkpoint>,
        trusted_keys: Option<&[String]>,
        seq: i64,
        hash: String,
    ) -> Verifier<'a> {
        pending.sort_by_key(|c| c.seq);
        Verifier {
            pending,
            next: 0,
            trusted: trusted_keys
                .map(|keys| keys.iter().map(|k| k.trim().to_ascii_lowercase()).collect()),
            tenant: None,
            expected: seq.saturating_add(1),
            prev_hash: hash,
            entries: 0,
            checked: 0,
        }
    }

    /// Checks the next entry of the log, and every checkpoint at its seq.
    pub fn push(&mut self, entry: &AuditEntry) -> Result<(), ChainBreak> {
        match &self.tenant {
            None => self.tenant = Some(entry.tenant_id.clone()),
            Some(tenant) if *tenant != entry.tenant_id => {
                return Err(ChainBreak::MixedTenants { seq: entry.seq });
            }
            Some(_) => {}
        }
        if entry.seq != self.expected {
            return Err(ChainBreak::Gap {
                expected: self.expected,
                found: entry.seq,
            });
        }
        if entry_hash(entry) != entry.hash {
            return Err(ChainBreak::EntryHash { seq: entry.seq });
        }
        if entry.prev_hash != self.prev_hash {
            return Err(ChainBreak::Link { seq: entry.seq });
        }
        self.expected = entry.seq.saturating_add(1);
        self.prev_hash.clone_from(&entry.hash);
        self.entries = self.entries.saturating_add(1);
        while let Some(cp) = self.pending.get(self.next).copied() {
            if cp.seq > entry.seq {
                break;
            }
            self.check_checkpoint(cp)?;
            // Only a checkpoint below the first entry (seq < 1) can be
            // behind the entry being checked: it signs no entry.
            if cp.seq != entry.seq || cp.head_hash != entry.hash {
                return Err(ChainBreak::CheckpointMismatch { seq: cp.seq });
            }
            self.next = self.next.saturating_add(1);
            self.checked = self.checked.saturating_add(1);
        }
        Ok(())
    }

    /// Ends the log: a checkpoint beyond its last entry means entries the
    /// checkpoint saw are gone.
    pub fn finish(mut self) -> Result<VerifyReport, ChainBreak> {
        let len = self.expected.saturating_sub(1);
        if let Some(cp) = self.pending.get(self.next).copied() {
            if self.tenant.is_none() {
                self.tenant = Some(cp.tenant_id.clone());
            }
            self.check_checkpoint(cp)?;
            return Err(if cp.seq < 1 {
                ChainBreak::CheckpointMismatch { seq: cp.seq }
            } else {
                ChainBreak::CheckpointBeyondLog { seq: cp.seq, len }
            });
        }
        Ok(VerifyReport {
            entries: self.entries,
            checkpoints: self.checked,
            head: (self.entries > 0).then_some((len, self.prev_hash)),
        })
    }

    /// Tenant, signature and key of a checkpoint; not yet what it signs.
    fn check_checkpoint(&self, cp: &Checkpoint) -> Result<(), ChainBreak> {
        if self.tenant.as_deref() != Some(cp.tenant_id.as_str()) {
            return Err(ChainBreak::CheckpointTenant { seq: cp.seq });
        }
        if !checkpoint::signature_valid(cp) {
            return Err(ChainBreak::CheckpointSignature { seq: cp.seq });
        }
        if let Some(trusted) = &self.trusted
            && !trusted.contains(&cp.public_key.to_ascii_lowercase())
        {
            return Err(ChainBreak::UntrustedKey {
                seq: cp.seq,
                key_id: cp.key_id.clone(),
            });
        }
        Ok(())
    }
}

/// Verifies a whole log — entries in log order, from entry 1 — against its
/// checkpoints, and names the first failure in log order. Works the same
/// on entries read from a database and from an export.
///
/// With `trusted_keys` (hex Ed25519 public keys), every checkpoint must be
/// signed by one of them. Without, a checkpoint only needs a valid signature
/// by the key it carries, which proves nothing against someone who could
/// rewrite the log and sign with a key of their own.
pub fn verify(
    entries: impl IntoIterator<Item = AuditEntry>,
    checkpoints: &[Checkpoint],
    trusted_keys: Option<&[String]>,
) -> Result<VerifyReport, ChainBreak> {
    let mut verifier = Verifier::new(checkpoints, trusted_keys);
    for entry in entries {
        verifier.push(&entry)?;
    }
    verifier.finish()
}
