//! Durable delivery work. A row is written in the same transaction as the
//! message it serves; workers on any node claim due rows with a lease, so a
//! node that dies mid-delivery leaves work another node (or its own next
//! start) picks up when the lease lapses.
//!
//! PostgreSQL claims with `FOR UPDATE SKIP LOCKED`, so concurrent claimers
//! get disjoint rows; SQLite has one writer, and the claim is one statement.
//! A worker may hold several claimed rows at once and [`renew`]s their
//! leases while they run.
//!
//! Work due now announces itself on PostgreSQL: [`enqueue`] sends
//! `NOTIFY` on [`NOTIFY_CHANNEL`] (the payload is the schema) in the
//! enqueuing transaction, delivered at commit to every node listening
//! (`ladder_server::wake`). In-process wake-ups are the caller's, after
//! its commit.
//!
//! Each row remembers the HTTP request that caused it ([`RequestId`]): work
//! queued inside [`for_request`] — the API's request middleware wraps every
//! request in it, a worker wraps the work it runs in the id that work
//! carries — is stamped with that id, so follow-up work (a fallback, a
//! delivery check) keeps the id of the request that started the chain.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::db::Store;
use crate::error::StoreError;
use crate::ids::{RequestId, new_id};

tokio::task_local! {
    /// The request the current task serves, set by [`for_request`].
    static REQUEST: RequestId;
}

/// Runs `work` as serving `request`: every row [`enqueue`] writes inside it
/// carries that id. With `None`, rows carry none (work from a maintenance
/// sweep, or from before request ids were stored).
pub async fn for_request<F: std::future::Future>(request: Option<RequestId>, work: F) -> F::Output {
    match request {
        Some(id) => REQUEST.scope(id, work).await,
        None => work.await,
    }
}

/// The request the current task serves, if any (see [`for_request`]).
pub fn current_request() -> Option<RequestId> {
    REQUEST.try_with(RequestId::clone).ok()
}

/// What the work is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Hand the message to the channel of its decided route.
    Deliver,
    /// Decide again (a hold waiting for a capability).
    Redecide,
    /// A provider took the message but has not confirmed delivery: if it
    /// still has not, withdraw it and fall back.
    CheckDelivered,
    /// A provider reported, after accepting it, that the message failed or
    /// expired: fall back.
    ProviderFailed,
    /// The sender revoked the message: take it back from every provider that
    /// holds it undelivered.
    Withdraw,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deliver => "deliver",
            Kind::Redecide => "redecide",
            Kind::CheckDelivered => "check_delivered",
            Kind::ProviderFailed => "provider_failed",
            Kind::Withdraw => "withdraw",
        }
    }

    fn parse(s: &str) -> Result<Kind, StoreError> {
        match s {
            "deliver" => Ok(Kind::Deliver),
            "redecide" => Ok(Kind::Redecide),
            "check_delivered" => Ok(Kind::CheckDelivered),
            "provider_failed" => Ok(Kind::ProviderFailed),
            "withdraw" => Ok(Kind::Withdraw),
            other => Err(StoreError::corrupt("outbox kind", format!("`{other}`"))),
        }
    }
}

/// The PostgreSQL notification channel [`enqueue`] announces due work on.
pub const NOTIFY_CHANNEL: &str = "ladder_outbox";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    pub id: String,
    pub tenant_id: String,
    pub message_id: String,
    pub kind: Kind,
    /// Attempts made before this claim.
    pub attempts: i64,
    /// The request that caused this work (or the work it follows from).
    pub request_id: Option<RequestId>,
}

/// Writes work due at `due_ms` (Unix milliseconds). Work already due is
/// announced on PostgreSQL with `NOTIFY` in the same transaction, so that
/// every node's workers hear of it once it commits (see the module doc).
pub async fn enqueue(
    conn: &mut AnyConnection,
    tenant_id: &str,
    message_id: &str,
    kind: Kind,
    due_ms: i64,
) -> Result<String, StoreError> {
    let id = new_id("out");
    let request = current_request();
    sqlx::query(
        "INSERT INTO outbox (id, tenant_id, message_id, kind, attempts, next_at_ms, request_id) \
         VALUES ($1, $2, $3, $4, 0, $5, $6)",
    )
    .bind(&id)
    .bind(tenant_id)
    .bind(message_id)
    .bind(kind.as_str())
    .bind(due_ms)
    .bind(request.as_ref().map(RequestId::as_str))
    .execute(&mut *conn)
    .await?;
    if due_ms <= wall_clock_ms() && conn.backend_name() == POSTGRES {
        // A function result, not `NOTIFY`: the payload is computed. Only
        // nodes on this schema act on it.
        sqlx::query("SELECT 1 AS sent FROM pg_notify($1, current_schema()::text)")
            .bind(NOTIFY_CHANNEL)
            .execute(&mut *conn)
            .await?;
    }
    Ok(id)
}

/// How sqlx's `Any` driver names a PostgreSQL connection.
const POSTGRES: &str = "PostgreSQL";

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Claims up to `limit` due rows for `owner` until `now_ms + lease_ms`.
pub async fn claim(
    store: &Store,
    owner: &str,
    now_ms: i64,
    lease_ms: i64,
    limit: i64,
) -> Result<Vec<Work>, StoreError> {
    let lock = store.dialect().skip_locked();
    let sql = format!(
        "UPDATE outbox SET lease_owner = $1, lease_until = $2 WHERE id IN (\
           SELECT id FROM outbox WHERE done_at IS NULL AND next_at_ms <= $3 \
           AND (lease_until IS NULL OR lease_until < $3) ORDER BY next_at_ms LIMIT $4{lock}) \
         RETURNING id, tenant_id, message_id, kind, attempts, request_id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(owner)
        .bind(now_ms + lease_ms)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            let request: Option<String> = r.try_get("request_id")?;
            // Only `enqueue` writes the column, from a parsed id.
            let request_id = request
                .map(|raw| {
                    RequestId::parse(&raw)
                        .ok_or_else(|| StoreError::corrupt("outbox request id", "not a request id"))
                })
                .transpose()?;
            Ok(Work {
                id: r.try_get("id")?,
                tenant_id: r.try_get("tenant_id")?,
                message_id: r.try_get("message_id")?,
                kind: Kind::parse(&kind)?,
                attempts: r.try_get("attempts")?,
                request_id,
            })
        })
        .collect()
}

/// Extends `owner`'s leases on the rows `ids` still unfinished to
/// `until_ms`; rows finished, put back for a retry or taken over by
/// another owner are left alone. Returns how many were extended.
pub async fn renew(
    store: &Store,
    owner: &str,
    ids: &[&str],
    until_ms: i64,
) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let placeholders = (3..ids.len() + 3)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "UPDATE outbox SET lease_until = $1 WHERE lease_owner = $2 AND done_at IS NULL \
         AND id IN ({placeholders})"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(until_ms)
        .bind(owner);
    for id in ids {
        q = q.bind(*id);
    }
    Ok(q.execute(store.pool()).await?.rows_affected())
}

/// Marks work done. False if this owner's lease was lost meanwhile.
pub async fn complete(
    conn: &mut AnyConnection,
    id: &str,
    owner: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE outbox SET done_at = $1, lease_owner = NULL, lease_until = NULL \
         WHERE id = $2 AND lease_owner = $3 AND done_at IS NULL",
    )
    .bind(now_ms)
    .bind(id)
    .bind(owner)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Puts work back for another attempt at `due_ms`, noting why (an error
/// code, never content).
pub async fn retry(
    conn: &mut AnyConnection,
    id: &str,
    owner: &str,
    attempts: i64,
    due_ms: i64,
    error: &str,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE outbox SET attempts = $1, next_at_ms = $2, last_error = $3, lease_owner = NULL, lease_until = NULL \
         WHERE id = $4 AND lease_owner = $5 AND done_at IS NULL",
    )
    .bind(attempts)
    .bind(due_ms)
    .bind(error)
    .bind(id)
    .bind(owner)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Rows not yet done: for `/metrics` and tests.
pub async fn pending(store: &Store) -> Result<i64, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE done_at IS NULL")
        .fetch_one(store.pool())
        .await?;
    Ok(n)
}
