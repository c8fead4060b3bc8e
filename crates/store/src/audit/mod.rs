//! The audit chain: a per-tenant, append-only, hash-chained log of what
//! ladder decided and did, with signed checkpoints, that anyone holding an
//! export (or the database) can verify.
//!
//! # What goes in
//!
//! Every decision, delivery attempt and outcome, downgrade, elevation,
//! override, policy publication, confirmation, portal access, revocation and
//! key event is [`append`]ed as an [`AuditEvent`] inside the transaction that
//! makes the change, so the change and its record commit together (DESIGN.md
//! invariant 4).
//!
//! **What must never go in is the caller's duty**: an event's `details`,
//! `subject` and `actor` are stored and exported as given, so they must hold
//! no message content (payload, subject line, body) and no raw recipient
//! address — recipients appear only as their keyed pseudonym, messages,
//! devices and overrides only by id. The log is append-only and cannot be
//! redacted without breaking the chain, which is exactly why nothing
//! sensitive may enter it.
//!
//! # How it is chained
//!
//! Each tenant's log is numbered `1, 2, 3, …` without gaps. Entry `n`
//! carries `prev_hash`, the hash of entry `n-1` ([`GENESIS_HASH`], 64 zeros,
//! for entry 1), and `hash = SHA-256(canonical_bytes(entry))` (see
//! [`canonical_bytes`] for the exact encoding). Altering, deleting,
//! inserting or reordering entries therefore breaks a hash or a link that
//! [`verify`] names.
//!
//! A hash chain alone does not stop someone with write access from
//! rewriting the whole tail consistently. [`checkpoint`] signs the current
//! head (`seq`, `hash`) with an Ed25519 key; a verifier that trusts the key
//! then detects any rewrite, truncation or rollback of checkpointed history.
//! Entries after the last checkpoint are protected by the chain and by the
//! tenant head row only, so the server checkpoints every few entries (see
//! [`entries_since_checkpoint`]) and whenever an export is taken.
//!
//! # Storage
//!
//! `audit_entries` (one row per entry), `audit_heads` (each tenant's last
//! seq and hash, row-locked on PostgreSQL while appending so several nodes
//! keep one linear chain per tenant) and `audit_checkpoints`. Triggers refuse
//! UPDATE and DELETE on entries and checkpoints.
//!
//! # Export
//!
//! [`write_export`] writes `entries.jsonl` (one [`AuditEntry`] as JSON per
//! line) and `checkpoints.json` (a JSON array of [`Checkpoint`]);
//! [`read_export`] reads them back for [`verify`].

mod chain;
mod checkpoint;
mod export;
pub mod merkle;
mod rows;
pub mod signed;

use sqlx::AnyConnection;

use crate::db::{Dialect, Store, Tx};
use crate::error::StoreError;

pub use chain::{
    ChainBreak, GENESIS_HASH, Verifier, VerifyReport, canonical_bytes, canonical_json, entry_hash,
    verify,
};
pub use checkpoint::{
    Checkpoint, checkpoint, checkpoint_signed_bytes, checkpoints, entries_since_checkpoint,
    latest_checkpoint, sign_checkpoint,
};
pub use export::{CHECKPOINTS_FILE, ENTRIES_FILE, ExportError, read_export, write_export};

/// The largest page [`page`] returns; larger limits are clamped to it.
pub const MAX_PAGE: i64 = 10_000;

/// Rows fetched per round trip while verifying.
const VERIFY_PAGE: i64 = 1_000;

/// Something that happened, as a caller reports it to [`append`].
///
/// None of the fields may hold message content or a raw recipient address:
/// refer to messages, devices and overrides by id and to recipients by
/// their pseudonym. The log cannot be redacted later.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditEvent {
    /// What happened: `decision`, `delivery_attempt`, `handshake_rejected`,
    /// `override_set`, `policy_published`, `key_rotated`,
    /// `payload_shredded`, …
    pub kind: String,
    /// Who did it: `api-key:<id>`, `worker`, `cli`, `system`.
    pub actor: String,
    /// What it happened to: a message, device or override id.
    pub subject: Option<String>,
    /// Machine-readable particulars. Never message content; recipients only
    /// as pseudonyms.
    pub details: serde_json::Value,
}

/// One entry of a tenant's audit log, as stored and as exported (one JSON
/// object per line of `entries.jsonl`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    pub tenant_id: String,
    /// Position in the tenant's log: 1-based, without gaps.
    pub seq: i64,
    /// When it was appended, Unix seconds.
    pub at: i64,
    pub kind: String,
    pub actor: String,
    pub subject: Option<String>,
    pub details: serde_json::Value,
    /// Hex SHA-256 of the previous entry; [`GENESIS_HASH`] for entry 1.
    pub prev_hash: String,
    /// Hex SHA-256 of [`canonical_bytes`] of this entry.
    pub hash: String,
}

/// Why [`verify_store`] failed: the store could not be read, or the chain
/// it holds is broken.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("audit chain broken: {0}")]
    Chain(#[from] ChainBreak),
}

/// Appends `event` to `tenant_id`'s log inside the caller's transaction and
/// returns the entry as stored.
///
/// The tenant's head row is created on first use and locked (`FOR UPDATE`
/// on PostgreSQL; SQLite holds the database write lock from the first write
/// of the transaction), so concurrent appends — from several nodes too —
/// serialise per tenant and the chain stays linear. Nothing is visible
/// until the caller commits; a rollback leaves no gap. The head lock is
/// held until the caller's transaction ends, so keep such transactions
/// short, and append for one tenant per transaction (two transactions
/// appending for tenants A and B in opposite orders can deadlock on
/// PostgreSQL).
///
/// `event.details` may hold only null, booleans, integers, strings, arrays
/// and objects: a fractional number is refused (as
/// [`StoreError::Corrupt`], naming where it is) because its text form is
/// not stable across JSON libraries and the hash must be.
pub async fn append(
    tx: &mut Tx,
    dialect: Dialect,
    tenant_id: &str,
    at: i64,
    event: &AuditEvent,
) -> Result<AuditEntry, StoreError> {
    let conn: &mut AnyConnection = tx;
    let lock = match dialect {
        Dialect::Postgres => "SELECT seq, hash FROM audit_heads WHERE tenant_id = $1 FOR UPDATE",
        Dialect::Sqlite => "SELECT seq, hash FROM audit_heads WHERE tenant_id = $1",
    };
    let head: Option<(i64, String)> = sqlx::query_as(lock)
        .bind(tenant_id)
        .fetch_optional(&mut *conn)
        .await?;
    // The head row is made on the tenant's first append only: a round trip
    // saved on every other one.
    let (head_seq, head_hash) = match head {
        Some(head) => head,
        None => {
            sqlx::query(
                "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2) \
                 ON CONFLICT (tenant_id) DO NOTHING",
            )
            .bind(tenant_id)
            .bind(GENESIS_HASH)
            .execute(&mut *conn)
            .await?;
            sqlx::query_as(lock)
                .bind(tenant_id)
                .fetch_one(&mut *conn)
                .await?
        }
    };
    let seq = head_seq
        .checked_add(1)
        .ok_or_else(|| StoreError::corrupt("audit head", "sequence number overflow"))?;
    chain::check_details(&event.details)
        .map_err(|reason| StoreError::corrupt("audit event details", reason))?;
    let mut entry = AuditEntry {
        tenant_id: tenant_id.to_string(),
        seq,
        at,
        kind: event.kind.clone(),
        actor: event.actor.clone(),
        subject: event.subject.clone(),
        details: event.details.clone(),
        prev_hash: head_hash,
        hash: String::new(),
    };
    entry.hash = entry_hash(&entry);
    rows::insert_entry(&mut *conn, &entry).await?;
    let updated =
        sqlx::query("UPDATE audit_heads SET seq = $2, hash = $3 WHERE tenant_id = $1 AND seq = $4")
            .bind(tenant_id)
            .bind(entry.seq)
            .bind(entry.hash.as_str())
            .bind(head_seq)
            .execute(&mut *conn)
            .await?;
    if updated.rows_affected() != 1 {
        return Err(StoreError::corrupt(
            "audit head",
            format!("tenant head moved while appending entry {seq}"),
        ));
    }
    Ok(entry)
}

/// Up to `limit` entries of `tenant_id`'s log with `seq > after_seq`, in
/// order. `limit` is clamped to [`MAX_PAGE`]; a limit below 1 returns none.
pub async fn page(
    store: &Store,
    tenant_id: &str,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<AuditEntry>, StoreError> {
    page_filtered(store, tenant_id, after_seq, &Filter::default(), limit).await
}

/// What a page of entries may be narrowed to; unset fields do not narrow.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    /// The entry's kind (`decision`, `escalation_sent`…).
    pub kind: Option<&'a str>,
    /// What the entry is about: a message, thread, device or override id.
    pub subject: Option<&'a str>,
}

/// Like [`page`], only entries `filter` lets through (the page is at most
/// `limit` of those, in order).
pub async fn page_filtered(
    store: &Store,
    tenant_id: &str,
    after_seq: i64,
    filter: &Filter<'_>,
    limit: i64,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut conn = store.pool().acquire().await?;
    rows::page_of(
        &mut conn,
        tenant_id,
        after_seq,
        i64::MAX,
        filter,
        limit.min(MAX_PAGE),
    )
    .await?
    .into_iter()
    .map(|row| row.into_entry().map_err(|e| e.into_store_error()))
    .collect()
}

/// Verifies `tenant_id`'s whole log as stored, with its checkpoints, their
/// signatures checked against the public keys they carry. Prefer
/// [`verify_store_with_keys`] with the tenant's trusted keys: without them,
/// someone able to rewrite the database can also sign a forged checkpoint
/// with a key of their own.
pub async fn verify_store(store: &Store, tenant_id: &str) -> Result<VerifyReport, VerifyError> {
    verify_store_with_keys(store, tenant_id, None).await
}

/// Verifies `tenant_id`'s whole log as stored: every hash and link, every
/// checkpoint (signed by one of `trusted_keys`, hex Ed25519 public keys,
/// when given) and that the tenant head row agrees with the last entry.
///
/// Reads one consistent snapshot, page by page, so the log can be of any
/// length and appends may continue meanwhile.
pub async fn verify_store_with_keys(
    store: &Store,
    tenant_id: &str,
    trusted_keys: Option<&[String]>,
) -> Result<VerifyReport, VerifyError> {
    let mut tx = store.begin().await.map_err(VerifyError::Store)?;
    let result = verify_in(&mut tx, store.dialect(), tenant_id, trusted_keys).await;
    // Read-only: nothing to keep.
    let rollback = tx.rollback().await;
    let report = result?;
    rollback.map_err(|e| VerifyError::Store(e.into()))?;
    Ok(report)
}

async fn verify_in(
    tx: &mut Tx,
    dialect: Dialect,
    tenant_id: &str,
    trusted_keys: Option<&[String]>,
) -> Result<VerifyReport, VerifyError> {
    let conn: &mut AnyConnection = tx;
    if dialect == Dialect::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *conn)
            .await
            .map_err(|e| VerifyError::Store(e.into()))?;
    }
    let head = rows::head(&mut *conn, tenant_id).await?;
    let cps = checkpoint::load(&mut *conn, tenant_id).await?;
    let mut verifier = Verifier::new(&cps, trusted_keys);
    let mut after = 0;
    loop {
        let batch = rows::page(&mut *conn, tenant_id, after, i64::MAX, VERIFY_PAGE).await?;
        let full = i64::try_from(batch.len()).is_ok_and(|n| n >= VERIFY_PAGE);
        for row in batch {
            let entry = row.into_entry().map_err(|e| e.into_chain_break())?;
            after = entry.seq;
            verifier.push(&entry)?;
        }
        if !full {
            break;
        }
    }
    let report = verifier.finish()?;
    let (len, last_hash) = report
        .head
        .clone()
        .unwrap_or_else(|| (0, GENESIS_HASH.to_string()));
    let (head_seq, head_hash) = head.unwrap_or_else(|| (0, GENESIS_HASH.to_string()));
    if head_seq != len || head_hash != last_hash {
        return Err(ChainBreak::HeadMismatch { head_seq, len }.into());
    }
    Ok(report)
}

#[cfg(test)]
mod tests;
