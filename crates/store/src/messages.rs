//! Messages, their sealed payloads and their delivery events.
//!
//! A message row holds the decision (reasons included, never content), the
//! answer given to the sender — so a retried request with the same
//! idempotency key gets the very same answer — and the delivery failures
//! re-decisions exclude. The payload lives apart, sealed under its own data
//! key; shredding drops the key and the ciphertext together.

use ladder_core::Decision;
use ladder_core::decision::FailedAttempt;
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::error::StoreError;

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Accepted; outbox work pending.
    Queued,
    /// A downgrade waits for the sender's confirmation.
    AwaitingConfirmation,
    /// Waiting for a capability to appear, until a deadline.
    Held,
    /// Handed to the channel.
    Sent,
    /// The provider confirmed delivery to the recipient's device.
    Delivered,
    /// The recipient opened it.
    Read,
    /// It stopped being deliverable before reaching the recipient.
    Expired,
    /// Handed to a human.
    Escalated,
    Blocked,
    /// Every route failed and the class forbids going lower.
    Failed,
    /// The sender revoked it: its payload is destroyed and what a provider
    /// still held was withdrawn. Final, whatever receipts arrive later.
    Revoked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::AwaitingConfirmation => "awaiting_confirmation",
            Status::Held => "held",
            Status::Sent => "sent",
            Status::Delivered => "delivered",
            Status::Read => "read",
            Status::Expired => "expired",
            Status::Escalated => "escalated",
            Status::Blocked => "blocked",
            Status::Failed => "failed",
            Status::Revoked => "revoked",
        }
    }

    /// Every status, for callers that list or filter by them.
    pub const ALL: [Status; 11] = [
        Status::Queued,
        Status::AwaitingConfirmation,
        Status::Held,
        Status::Sent,
        Status::Delivered,
        Status::Read,
        Status::Expired,
        Status::Escalated,
        Status::Blocked,
        Status::Failed,
        Status::Revoked,
    ];

    /// The status a name stands for (`queued`, `read`…), if any.
    pub fn from_name(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == name)
    }

    fn parse(s: &str) -> Result<Status, StoreError> {
        Status::from_name(s).ok_or_else(|| StoreError::corrupt("message status", format!("`{s}`")))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: String,
    pub tenant_id: String,
    pub idempotency_key: String,
    /// SHA-256 over the request as received, to tell a retry from a
    /// different request reusing a key.
    pub request_hash: String,
    pub recipient_id: String,
    pub thread_id: String,
    pub class: String,
    pub status: Status,
    pub decision: Decision,
    pub failed: Vec<FailedAttempt>,
    pub response_status: i64,
    pub response_body: serde_json::Value,
    pub confirmation_hash: Option<String>,
    pub accepted_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
}

pub(crate) const COLUMNS: &str = "id, tenant_id, idempotency_key, request_hash, recipient_id, thread_id, class, status, \
     decision, failed, response_status, response_body, confirmation_hash, accepted_at, updated_at, expires_at";

fn json<T: serde::de::DeserializeOwned>(s: &str, what: &'static str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::corrupt(what, e))
}

fn to_json<T: Serialize>(v: &T, what: &'static str) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::corrupt(what, e))
}

pub(crate) fn from_row(row: &sqlx::any::AnyRow) -> Result<Message, StoreError> {
    let status: String = row.try_get("status")?;
    let decision: String = row.try_get("decision")?;
    let failed: String = row.try_get("failed")?;
    let body: String = row.try_get("response_body")?;
    Ok(Message {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        idempotency_key: row.try_get("idempotency_key")?,
        request_hash: row.try_get("request_hash")?,
        recipient_id: row.try_get("recipient_id")?,
        thread_id: row.try_get("thread_id")?,
        class: row.try_get("class")?,
        status: Status::parse(&status)?,
        decision: json(&decision, "message decision")?,
        failed: json(&failed, "message failures")?,
        response_status: row.try_get("response_status")?,
        response_body: json(&body, "message response")?,
        confirmation_hash: row.try_get("confirmation_hash")?,
        accepted_at: row.try_get("accepted_at")?,
        updated_at: row.try_get("updated_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

pub async fn insert(conn: &mut AnyConnection, m: &Message) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO messages ({COLUMNS}, outcome, route, mode) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
    );
    let (outcome, route, mode) = routing_facts(&m.decision);
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&m.id)
        .bind(&m.tenant_id)
        .bind(&m.idempotency_key)
        .bind(&m.request_hash)
        .bind(&m.recipient_id)
        .bind(&m.thread_id)
        .bind(&m.class)
        .bind(m.status.as_str())
        .bind(to_json(&m.decision, "message decision")?)
        .bind(to_json(&m.failed, "message failures")?)
        .bind(m.response_status)
        .bind(to_json(&m.response_body, "message response")?)
        .bind(&m.confirmation_hash)
        .bind(m.accepted_at)
        .bind(m.updated_at)
        .bind(m.expires_at)
        .bind(outcome)
        .bind(route)
        .bind(mode)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The decision's outcome code, route name and mode: the columns lists
/// filter by, always written together with the decision they come from.
fn routing_facts(d: &Decision) -> (&'static str, Option<String>, &'static str) {
    (
        d.outcome.code(),
        d.outcome.route().map(|r| r.name()),
        d.mode.as_str(),
    )
}

/// Saves what a re-decision or a delivery changed.
pub async fn update(conn: &mut AnyConnection, m: &Message) -> Result<(), StoreError> {
    let (outcome, route, mode) = routing_facts(&m.decision);
    sqlx::query(
        "UPDATE messages SET status = $1, decision = $2, failed = $3, response_status = $4, \
         response_body = $5, confirmation_hash = $6, updated_at = $7, \
         outcome = $10, route = $11, mode = $12 WHERE tenant_id = $8 AND id = $9",
    )
    .bind(m.status.as_str())
    .bind(to_json(&m.decision, "message decision")?)
    .bind(to_json(&m.failed, "message failures")?)
    .bind(m.response_status)
    .bind(to_json(&m.response_body, "message response")?)
    .bind(&m.confirmation_hash)
    .bind(m.updated_at)
    .bind(&m.tenant_id)
    .bind(&m.id)
    .bind(outcome)
    .bind(route)
    .bind(mode)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<Message>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM messages WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// What a list of messages may be narrowed to; unset fields do not narrow.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub recipient_id: Option<String>,
    /// The sender's own id for the recipient.
    pub external_id: Option<String>,
    pub class: Option<String>,
    pub status: Option<Status>,
    pub thread_id: Option<String>,
    /// Accepted at or after (Unix seconds).
    pub since: Option<i64>,
    /// Accepted before (Unix seconds).
    pub until: Option<i64>,
    /// The decision's outcome code (`deliver`, `hold`…).
    pub outcome: Option<String>,
    /// The decided route's name (`portal+email_notice`).
    pub route: Option<String>,
    /// `observe` or `enforce`.
    pub mode: Option<String>,
}

/// A tenant's messages, newest first, at most `limit`, strictly older than
/// `before` (the last id of the previous page). Ids are time-ordered and
/// unique, so the order is stable and a page never repeats a row; a row
/// whose id was made before a page was read but committed after it (ids
/// are given before commit, on several nodes) can be missed by that walk.
///
/// The statement names only the filters that are set (each still a bound
/// parameter): a `($n IS NULL OR column = $n)` form hides the condition
/// from both planners, which then walk the tenant's id index until a page
/// fills (53 ms for one recipient's page at only 20 000 messages on SQLite,
/// growing with the table; see `benches/console.rs`). The recipient's external id
/// is resolved by a scalar subquery (it is unique per tenant), which
/// SQLite can seek with `messages_recipient` where `IN (…)` it would not.
pub async fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    filter: &MessageFilter,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Message>, StoreError> {
    enum Arg<'a> {
        Text(&'a str),
        Int(i64),
    }
    let mut sql = format!("SELECT {COLUMNS} FROM messages WHERE tenant_id = $1");
    let mut args: Vec<Arg<'_>> = vec![Arg::Text(tenant_id)];
    // Each condition with `?` where its parameter goes.
    let text = [
        ("recipient_id = ?", filter.recipient_id.as_deref()),
        (
            "recipient_id = (SELECT id FROM recipients WHERE tenant_id = $1 AND external_id = ?)",
            filter.external_id.as_deref(),
        ),
        ("class = ?", filter.class.as_deref()),
        ("status = ?", filter.status.map(Status::as_str)),
        ("thread_id = ?", filter.thread_id.as_deref()),
        ("id < ?", before),
        ("outcome = ?", filter.outcome.as_deref()),
        ("route = ?", filter.route.as_deref()),
        ("mode = ?", filter.mode.as_deref()),
    ];
    let ints = [
        ("accepted_at >= ?", filter.since),
        ("accepted_at < ?", filter.until),
    ];
    let set = text
        .into_iter()
        .filter_map(|(c, v)| v.map(|v| (c, Arg::Text(v))))
        .chain(
            ints.into_iter()
                .filter_map(|(c, v)| v.map(|v| (c, Arg::Int(v)))),
        );
    for (condition, arg) in set {
        args.push(arg);
        sql.push_str(" AND ");
        sql.push_str(&condition.replace('?', &format!("${}", args.len())));
    }
    args.push(Arg::Int(limit));
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", args.len()));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for a in args {
        query = match a {
            Arg::Text(t) => query.bind(t),
            Arg::Int(n) => query.bind(n),
        };
    }
    let rows = query.fetch_all(&mut *conn).await?;
    rows.iter().map(from_row).collect()
}

/// A message locked for the rest of the transaction on PostgreSQL (SQLite
/// has one writer): bookkeeping re-reads it so a revocation or confirmation
/// that happened meanwhile is never overwritten.
pub async fn get_for_update(
    conn: &mut AnyConnection,
    dialect: crate::db::Dialect,
    tenant_id: &str,
    id: &str,
) -> Result<Option<Message>, StoreError> {
    let lock = dialect.for_update();
    let sql = format!("SELECT {COLUMNS} FROM messages WHERE tenant_id = $1 AND id = $2{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn by_idempotency_key(
    conn: &mut AnyConnection,
    tenant_id: &str,
    key: &str,
) -> Result<Option<Message>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM messages WHERE tenant_id = $1 AND idempotency_key = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Retires an idempotency key whose window has passed: the message keeps
/// existing under the key `expired:{id}` (unique, as the message id is),
/// and the caller's key is free for a new request in the same transaction.
pub async fn expire_idempotency_key(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE messages SET idempotency_key = $1 WHERE tenant_id = $2 AND id = $3")
        .bind(format!("expired:{id}"))
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A payload at rest: ciphertext and its wrapped data key, or neither once
/// shredded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPayload {
    pub message_id: String,
    pub kek_id: Option<String>,
    pub wrapped_key: Option<Vec<u8>>,
    pub ciphertext: Option<Vec<u8>>,
    pub shredded_at: Option<i64>,
    pub shred_reason: Option<String>,
}

pub async fn insert_payload(
    conn: &mut AnyConnection,
    tenant_id: &str,
    p: &StoredPayload,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO payloads (message_id, tenant_id, kek_id, wrapped_key, ciphertext) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&p.message_id)
    .bind(tenant_id)
    .bind(&p.kek_id)
    .bind(&p.wrapped_key)
    .bind(&p.ciphertext)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn payload(
    conn: &mut AnyConnection,
    tenant_id: &str,
    message_id: &str,
) -> Result<Option<StoredPayload>, StoreError> {
    let row = sqlx::query(
        "SELECT message_id, kek_id, wrapped_key, ciphertext, shredded_at, shred_reason \
         FROM payloads WHERE tenant_id = $1 AND message_id = $2",
    )
    .bind(tenant_id)
    .bind(message_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(payload_from).transpose()
}

fn payload_from(row: &sqlx::any::AnyRow) -> Result<StoredPayload, StoreError> {
    Ok(StoredPayload {
        message_id: row.try_get("message_id")?,
        kek_id: row.try_get("kek_id")?,
        wrapped_key: row.try_get("wrapped_key")?,
        ciphertext: row.try_get("ciphertext")?,
        shredded_at: row.try_get("shredded_at")?,
        shred_reason: row.try_get("shred_reason")?,
    })
}

/// Destroys a payload's data key and ciphertext. False if already shredded.
pub async fn shred(
    conn: &mut AnyConnection,
    tenant_id: &str,
    message_id: &str,
    reason: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE payloads SET wrapped_key = NULL, ciphertext = NULL, kek_id = NULL, shredded_at = $1, shred_reason = $2 \
         WHERE tenant_id = $3 AND message_id = $4 AND shredded_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(tenant_id)
    .bind(message_id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Unshredded payloads of messages whose retention ended before `now`:
/// `(tenant_id, message_id)`.
pub async fn expired_payloads(
    conn: &mut AnyConnection,
    now: i64,
    limit: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT p.tenant_id, p.message_id FROM payloads p JOIN messages m ON m.id = p.message_id \
         WHERE p.shredded_at IS NULL AND m.expires_at <= $1 ORDER BY m.expires_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("tenant_id")?, r.try_get("message_id")?)))
        .collect()
}

/// Payloads of a tenant still wrapped by a key other than `current`.
pub async fn payloads_not_wrapped_by(
    conn: &mut AnyConnection,
    tenant_id: &str,
    current: &str,
) -> Result<Vec<StoredPayload>, StoreError> {
    let rows = sqlx::query(
        "SELECT message_id, kek_id, wrapped_key, ciphertext, shredded_at, shred_reason FROM payloads \
         WHERE tenant_id = $1 AND shredded_at IS NULL AND kek_id <> $2",
    )
    .bind(tenant_id)
    .bind(current)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(payload_from).collect()
}

/// How many live payloads of a tenant a key still wraps.
pub async fn count_wrapped_by(
    conn: &mut AnyConnection,
    tenant_id: &str,
    kek_id: &str,
) -> Result<i64, StoreError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM payloads WHERE tenant_id = $1 AND kek_id = $2 AND shredded_at IS NULL",
    )
    .bind(tenant_id)
    .bind(kek_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n)
}

pub async fn rewrap_payload(
    conn: &mut AnyConnection,
    tenant_id: &str,
    message_id: &str,
    kek_id: &str,
    wrapped_key: &[u8],
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE payloads SET kek_id = $1, wrapped_key = $2 WHERE tenant_id = $3 AND message_id = $4 AND shredded_at IS NULL",
    )
    .bind(kek_id)
    .bind(wrapped_key.to_vec())
    .bind(tenant_id)
    .bind(message_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One thing that happened to a message on its way out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub at: i64,
    pub kind: String,
    pub detail: serde_json::Value,
}

pub async fn add_event(
    conn: &mut AnyConnection,
    tenant_id: &str,
    message_id: &str,
    event: &Event,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO events (tenant_id, message_id, at, kind, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(tenant_id)
    .bind(message_id)
    .bind(event.at)
    .bind(&event.kind)
    .bind(to_json(&event.detail, "event detail")?)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn events(
    conn: &mut AnyConnection,
    tenant_id: &str,
    message_id: &str,
) -> Result<Vec<Event>, StoreError> {
    let rows = sqlx::query(
        "SELECT at, kind, detail FROM events WHERE tenant_id = $1 AND message_id = $2 ORDER BY id",
    )
    .bind(tenant_id)
    .bind(message_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let detail: String = r.try_get("detail")?;
            Ok(Event {
                at: r.try_get("at")?,
                kind: r.try_get("kind")?,
                detail: json(&detail, "event detail")?,
            })
        })
        .collect()
}
