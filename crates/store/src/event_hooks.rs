//! Outbound event webhooks: a tenant's subscriptions (endpoints of its own),
//! the events owed to each, and every attempt to deliver one.
//!
//! `event_deliveries` is an outbox: a row is written in the transaction of
//! the fact it reports, so an event is never announced for something that
//! rolled back, nor lost for something that committed. Workers on any node
//! claim due rows with a lease, like the delivery outbox ([`crate::outbox`]).
//!
//! Nothing here holds a signing secret: a subscription keeps a random salt
//! from which the service derives the secret under the tenant's keyring.
//! Payloads hold ids, labels and codes only (the service builds them).

use sqlx::{AnyConnection, Row};

use crate::db::Store;
use crate::error::StoreError;

/// A tenant's endpoint and what it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    /// Event types it wants; empty means every type.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// The salt its current secret is derived from.
    pub secret_salt: String,
    /// The salt of the secret before the last rotation, while it still signs.
    pub previous_salt: Option<String>,
    /// Until when (Unix seconds) the previous secret still signs.
    pub previous_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Subscription {
    /// Whether it wants events of `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }
}

const COLUMNS: &str = "id, tenant_id, url, event_types, enabled, secret_salt, previous_salt, \
                       previous_until, created_at, updated_at";

fn subscription(r: &sqlx::any::AnyRow) -> Result<Subscription, StoreError> {
    let types: String = r.try_get("event_types")?;
    let enabled: i64 = r.try_get("enabled")?;
    Ok(Subscription {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        url: r.try_get("url")?,
        event_types: serde_json::from_str(&types)
            .map_err(|e| StoreError::corrupt("event subscription types", e))?,
        enabled: enabled != 0,
        secret_salt: r.try_get("secret_salt")?,
        previous_salt: r.try_get("previous_salt")?,
        previous_until: r.try_get("previous_until")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn types_json(types: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(types).map_err(|e| StoreError::corrupt("event subscription types", e))
}

pub async fn insert(conn: &mut AnyConnection, s: &Subscription) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO event_subscriptions (id, tenant_id, url, event_types, enabled, secret_salt, \
         previous_salt, previous_until, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&s.id)
    .bind(&s.tenant_id)
    .bind(&s.url)
    .bind(types_json(&s.event_types)?)
    .bind(i64::from(s.enabled))
    .bind(&s.secret_salt)
    .bind(&s.previous_salt)
    .bind(s.previous_until)
    .bind(s.created_at)
    .bind(s.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes back what can change: url, types, enabled, salts.
pub async fn update(conn: &mut AnyConnection, s: &Subscription) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE event_subscriptions SET url = $1, event_types = $2, enabled = $3, secret_salt = $4, \
         previous_salt = $5, previous_until = $6, updated_at = $7 \
         WHERE id = $8 AND tenant_id = $9 AND deleted_at IS NULL",
    )
    .bind(&s.url)
    .bind(types_json(&s.event_types)?)
    .bind(i64::from(s.enabled))
    .bind(&s.secret_salt)
    .bind(&s.previous_salt)
    .bind(s.previous_until)
    .bind(s.updated_at)
    .bind(&s.id)
    .bind(&s.tenant_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One of the tenant's live subscriptions (a deleted one is not found).
pub async fn get(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<Subscription>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM event_subscriptions WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(subscription)
        .transpose()
}

/// A page of the tenant's live subscriptions, newest first, strictly below
/// `before` when given.
pub async fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Subscription>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM event_subscriptions WHERE tenant_id = $1 AND deleted_at IS NULL \
         AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(before)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(subscription).collect()
}

/// The tenant's enabled subscriptions that want `event_type`.
pub async fn listening(
    conn: &mut AnyConnection,
    tenant_id: &str,
    event_type: &str,
) -> Result<Vec<Subscription>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM event_subscriptions WHERE tenant_id = $1 AND enabled = 1 \
         AND deleted_at IS NULL ORDER BY id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .fetch_all(&mut *conn)
        .await?;
    let all: Result<Vec<Subscription>, StoreError> = rows.iter().map(subscription).collect();
    Ok(all?.into_iter().filter(|s| s.wants(event_type)).collect())
}

/// Deletes a subscription (kept as a tombstone for its attempts) and gives
/// up the events still owed to it. False when there was none to delete.
pub async fn delete(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE event_subscriptions SET deleted_at = $1, enabled = 0, updated_at = $1 \
         WHERE tenant_id = $2 AND id = $3 AND deleted_at IS NULL",
    )
    .bind(now)
    .bind(tenant_id)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE event_deliveries SET state = 'failed', done_at = $1, lease_owner = NULL, lease_until = NULL \
         WHERE tenant_id = $2 AND subscription_id = $3 AND state = 'pending'",
    )
    .bind(now)
    .bind(tenant_id)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// One event owed to one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub subscription_id: &'a str,
    pub event_type: &'a str,
    /// The exact body every attempt sends.
    pub payload: &'a str,
    pub created_at: i64,
    pub due_ms: i64,
}

pub async fn enqueue(conn: &mut AnyConnection, e: &NewEvent<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO event_deliveries (id, tenant_id, subscription_id, event_type, payload, created_at, \
         state, attempts, next_at_ms) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7)",
    )
    .bind(e.id)
    .bind(e.tenant_id)
    .bind(e.subscription_id)
    .bind(e.event_type)
    .bind(e.payload)
    .bind(e.created_at)
    .bind(e.due_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A claimed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub id: String,
    pub tenant_id: String,
    pub subscription_id: String,
    pub event_type: String,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// Claims up to `limit` due events for `owner` until `now_ms + lease_ms`.
pub async fn claim(
    store: &Store,
    owner: &str,
    now_ms: i64,
    lease_ms: i64,
    limit: i64,
) -> Result<Vec<Due>, StoreError> {
    let lock = store.dialect().skip_locked();
    let sql = format!(
        "UPDATE event_deliveries SET lease_owner = $1, lease_until = $2 WHERE id IN (\
           SELECT id FROM event_deliveries WHERE state = 'pending' AND next_at_ms <= $3 \
           AND (lease_until IS NULL OR lease_until < $3) ORDER BY next_at_ms LIMIT $4{lock}) \
         RETURNING id, tenant_id, subscription_id, event_type, payload, attempts"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(owner)
        .bind(now_ms.saturating_add(lease_ms))
        .bind(now_ms)
        .bind(limit)
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Due {
                id: r.try_get("id")?,
                tenant_id: r.try_get("tenant_id")?,
                subscription_id: r.try_get("subscription_id")?,
                event_type: r.try_get("event_type")?,
                payload: r.try_get("payload")?,
                attempts: r.try_get("attempts")?,
            })
        })
        .collect()
}

/// Where a claimed event goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Delivered,
    /// Try again at this time (ms).
    Retry(i64),
    Failed,
}

/// Records the end of this owner's attempt on a claimed event. False when
/// the lease was lost meanwhile (another worker took it over).
pub async fn settle(
    conn: &mut AnyConnection,
    id: &str,
    owner: &str,
    attempts: i64,
    next: Next,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let (state, next_at, done) = match next {
        Next::Delivered => ("delivered", now_ms, Some(now_ms)),
        Next::Retry(at) => ("pending", at, None),
        Next::Failed => ("failed", now_ms, Some(now_ms)),
    };
    let r = sqlx::query(
        "UPDATE event_deliveries SET state = $1, attempts = $2, next_at_ms = $3, done_at = $4, \
         lease_owner = NULL, lease_until = NULL \
         WHERE id = $5 AND lease_owner = $6 AND state = 'pending'",
    )
    .bind(state)
    .bind(attempts)
    .bind(next_at)
    .bind(done)
    .bind(id)
    .bind(owner)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// One attempt to deliver an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub id: String,
    pub tenant_id: String,
    pub subscription_id: String,
    pub event_id: String,
    /// 1 for the first attempt of the event (counting since its last retry).
    pub attempt: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub status_code: Option<i64>,
    /// Why it did not count as delivered: `http_status`, `timeout`,
    /// `connect`, `request`; `None` when delivered.
    pub error_kind: Option<String>,
    pub duration_ms: i64,
}

pub async fn record_attempt(conn: &mut AnyConnection, a: &Attempt) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO event_attempts (id, tenant_id, subscription_id, event_id, attempt, at, status_code, \
         error_kind, duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&a.id)
    .bind(&a.tenant_id)
    .bind(&a.subscription_id)
    .bind(&a.event_id)
    .bind(a.attempt)
    .bind(a.at)
    .bind(a.status_code)
    .bind(&a.error_kind)
    .bind(a.duration_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An attempt with the type of the event it carried, for the attempts list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRow {
    pub attempt: Attempt,
    pub event_type: String,
    /// The event's state now: `pending`, `delivered` or `failed`.
    pub event_state: String,
}

/// A page of a subscription's attempts, newest first, strictly below
/// `before` when given.
pub async fn attempts(
    conn: &mut AnyConnection,
    tenant_id: &str,
    subscription_id: &str,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<AttemptRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT a.id, a.tenant_id, a.subscription_id, a.event_id, a.attempt, a.at, a.status_code, \
         a.error_kind, a.duration_ms, d.event_type, d.state FROM event_attempts a \
         JOIN event_deliveries d ON d.id = a.event_id \
         WHERE a.tenant_id = $1 AND a.subscription_id = $2 AND ($3 IS NULL OR a.id < $3) \
         ORDER BY a.id DESC LIMIT $4",
    )
    .bind(tenant_id)
    .bind(subscription_id)
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AttemptRow {
                attempt: Attempt {
                    id: r.try_get("id")?,
                    tenant_id: r.try_get("tenant_id")?,
                    subscription_id: r.try_get("subscription_id")?,
                    event_id: r.try_get("event_id")?,
                    attempt: r.try_get("attempt")?,
                    at: r.try_get("at")?,
                    status_code: r.try_get("status_code")?,
                    error_kind: r.try_get("error_kind")?,
                    duration_ms: r.try_get("duration_ms")?,
                },
                event_type: r.try_get("event_type")?,
                event_state: r.try_get("state")?,
            })
        })
        .collect()
}

/// The event an attempt carried, or the event itself, of this tenant's
/// subscription: its id, or `None` when neither names one.
pub async fn event_named(
    conn: &mut AnyConnection,
    tenant_id: &str,
    subscription_id: &str,
    attempt_or_event: &str,
) -> Result<Option<String>, StoreError> {
    let id: Option<String> = sqlx::query_scalar(
        "SELECT id FROM event_deliveries WHERE tenant_id = $1 AND subscription_id = $2 AND id = $3 \
         UNION SELECT event_id FROM event_attempts WHERE tenant_id = $1 AND subscription_id = $2 AND id = $3",
    )
    .bind(tenant_id)
    .bind(subscription_id)
    .bind(attempt_or_event)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(id)
}

/// Owes an event again from now, with a fresh run of attempts. False when
/// an attempt is in flight (its lease has not lapsed).
pub async fn requeue(
    conn: &mut AnyConnection,
    tenant_id: &str,
    event_id: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE event_deliveries SET state = 'pending', attempts = 0, next_at_ms = $1, done_at = NULL, \
         lease_owner = NULL, lease_until = NULL \
         WHERE tenant_id = $2 AND id = $3 AND (lease_until IS NULL OR lease_until < $1)",
    )
    .bind(now_ms)
    .bind(tenant_id)
    .bind(event_id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// A message's class, for an event about it.
pub async fn message_class(
    conn: &mut AnyConnection,
    tenant_id: &str,
    message_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT class FROM messages WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(message_id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}
