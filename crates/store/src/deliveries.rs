//! What each provider accepted: its reference for the message, so a
//! receipt arriving by webhook finds the message it is about, and a
//! fallback can revoke what the provider still holds.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::error::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub tenant_id: String,
    pub message_id: String,
    pub channel: String,
    pub provider_ref: String,
    pub idempotency_key: String,
    /// `accepted`, `delivered`, `read`, `failed`, `expired` or `revoked`.
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "tenant_id, message_id, channel, provider_ref, idempotency_key, status, created_at, updated_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        tenant_id: row.try_get("tenant_id")?,
        message_id: row.try_get("message_id")?,
        channel: row.try_get("channel")?,
        provider_ref: row.try_get("provider_ref")?,
        idempotency_key: row.try_get("idempotency_key")?,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Records an accepted hand-over (once per provider reference).
pub async fn record(conn: &mut AnyConnection, d: &Delivery) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO deliveries ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (tenant_id, channel, provider_ref) DO NOTHING"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&d.tenant_id)
        .bind(&d.message_id)
        .bind(&d.channel)
        .bind(&d.provider_ref)
        .bind(&d.idempotency_key)
        .bind(&d.status)
        .bind(d.created_at)
        .bind(d.updated_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The delivery a provider reference names, within one tenant.
pub async fn by_ref(
    conn: &mut AnyConnection,
    tenant_id: &str,
    channel: &str,
    provider_ref: &str,
) -> Result<Option<Delivery>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM deliveries WHERE tenant_id = $1 AND channel = $2 AND provider_ref = $3"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(channel)
        .bind(provider_ref)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The tenants whose hand-over a provider reference names on `channel`:
/// for receipts arriving on a deployment-wide account, which serves every
/// tenant without its own.
pub async fn tenants_of_ref(
    conn: &mut AnyConnection,
    channel: &str,
    provider_ref: &str,
) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "SELECT DISTINCT tenant_id FROM deliveries WHERE channel = $1 AND provider_ref = $2",
    )
    .bind(channel)
    .bind(provider_ref)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("tenant_id")?)).collect()
}

/// A message's hand-overs, oldest first.
pub async fn of_message(
    conn: &mut AnyConnection,
    tenant_id: &str,
    message_id: &str,
) -> Result<Vec<Delivery>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM deliveries WHERE tenant_id = $1 AND message_id = $2 ORDER BY created_at, provider_ref"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(message_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Moves a delivery to `status`, within its tenant.
pub async fn set_status(
    conn: &mut AnyConnection,
    tenant_id: &str,
    channel: &str,
    provider_ref: &str,
    status: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE deliveries SET status = $1, updated_at = $2 WHERE tenant_id = $3 AND channel = $4 AND provider_ref = $5",
    )
    .bind(status)
    .bind(now)
    .bind(tenant_id)
    .bind(channel)
    .bind(provider_ref)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
