//! Row-level access to the audit tables, over one connection so that the
//! same code runs on the pool and inside a transaction.

use sqlx::AnyConnection;

use super::AuditEntry;
use super::chain::{ChainBreak, canonical_json};
use crate::error::StoreError;

/// An `audit_entries` row before its `details` text is parsed.
pub(super) struct Row {
    tenant_id: String,
    seq: i64,
    at: i64,
    kind: String,
    actor: String,
    subject: Option<String>,
    details: String,
    prev_hash: String,
    hash: String,
}

type RowTuple = (
    String,
    i64,
    i64,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
);

/// A row whose `details` column is not JSON: it was written by something
/// other than [`super::append`].
pub(super) struct BadDetails {
    seq: i64,
    reason: String,
}

impl BadDetails {
    pub(super) fn into_store_error(self) -> StoreError {
        StoreError::corrupt(
            "audit entry",
            format!("entry {}: details are not JSON: {}", self.seq, self.reason),
        )
    }

    /// Details that do not parse cannot hash to what was appended.
    pub(super) fn into_chain_break(self) -> ChainBreak {
        ChainBreak::EntryHash { seq: self.seq }
    }
}

impl Row {
    pub(super) fn into_entry(self) -> Result<AuditEntry, BadDetails> {
        let details = serde_json::from_str(&self.details).map_err(|e| BadDetails {
            seq: self.seq,
            reason: e.to_string(),
        })?;
        Ok(AuditEntry {
            tenant_id: self.tenant_id,
            seq: self.seq,
            at: self.at,
            kind: self.kind,
            actor: self.actor,
            subject: self.subject,
            details,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

pub(super) async fn insert_entry(
    conn: &mut AnyConnection,
    entry: &AuditEntry,
) -> Result<(), StoreError> {
    let details = String::from_utf8(canonical_json(&entry.details))
        .map_err(|e| StoreError::corrupt("audit event details", e))?;
    sqlx::query(
        "INSERT INTO audit_entries \
         (tenant_id, seq, at, kind, actor, subject, details, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(entry.tenant_id.as_str())
    .bind(entry.seq)
    .bind(entry.at)
    .bind(entry.kind.as_str())
    .bind(entry.actor.as_str())
    .bind(entry.subject.clone())
    .bind(details)
    .bind(entry.prev_hash.as_str())
    .bind(entry.hash.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Entries with `after < seq <= up_to`, in order, at most `limit`.
pub(super) async fn page(
    conn: &mut AnyConnection,
    tenant_id: &str,
    after: i64,
    up_to: i64,
    limit: i64,
) -> Result<Vec<Row>, StoreError> {
    page_of(
        conn,
        tenant_id,
        after,
        up_to,
        &super::Filter::default(),
        limit,
    )
    .await
}

/// Like [`page`], only entries `filter` lets through.
pub(super) async fn page_of(
    conn: &mut AnyConnection,
    tenant_id: &str,
    after: i64,
    up_to: i64,
    filter: &super::Filter<'_>,
    limit: i64,
) -> Result<Vec<Row>, StoreError> {
    if limit < 1 {
        return Ok(Vec::new());
    }
    let rows: Vec<RowTuple> = sqlx::query_as(
        "SELECT tenant_id, seq, at, kind, actor, subject, details, prev_hash, hash \
         FROM audit_entries WHERE tenant_id = $1 AND seq > $2 AND seq <= $3 \
         AND ($5 IS NULL OR kind = $5) AND ($6 IS NULL OR subject = $6) \
         ORDER BY seq LIMIT $4",
    )
    .bind(tenant_id)
    .bind(after)
    .bind(up_to)
    .bind(limit)
    .bind(filter.kind)
    .bind(filter.subject)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(tenant_id, seq, at, kind, actor, subject, details, prev_hash, hash)| Row {
                tenant_id,
                seq,
                at,
                kind,
                actor,
                subject,
                details,
                prev_hash,
                hash,
            },
        )
        .collect())
}

/// The tenant's head row: the last appended seq and hash, if any append
/// ever committed.
pub(super) async fn head(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Option<(i64, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT seq, hash FROM audit_heads WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_optional(conn)
            .await?,
    )
}
