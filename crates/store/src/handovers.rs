//! Hand-overs, fixed before the provider call.
//!
//! A delivery worker can be killed between handing a message to a provider
//! and recording that it did; the work is then claimed again and sent
//! again. For that resend to show the recipient nothing new, everything the
//! hand-over carries must be a function of what was fixed before the first
//! call. This table fixes the one input that would otherwise come from the
//! clock: when the hand-over started. It is written once per provider
//! idempotency key — (message, step, channel) — and never changed; every
//! later attempt reads the same time back.

use sqlx::AnyConnection;

use crate::error::StoreError;

/// Records that the hand-over named by `idempotency_key` starts at `now_ms`
/// unless it was recorded before, and returns the time it was first
/// recorded: on a retry, the original start, not `now_ms`.
pub async fn begin(
    conn: &mut AnyConnection,
    tenant_id: &str,
    message_id: &str,
    idempotency_key: &str,
    channel: &str,
    now_ms: i64,
) -> Result<i64, StoreError> {
    sqlx::query(
        "INSERT INTO handovers (tenant_id, idempotency_key, message_id, channel, started_ms) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, idempotency_key) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(idempotency_key)
    .bind(message_id)
    .bind(channel)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    let started: i64 = sqlx::query_scalar(
        "SELECT started_ms FROM handovers WHERE tenant_id = $1 AND idempotency_key = $2",
    )
    .bind(tenant_id)
    .bind(idempotency_key)
    .fetch_one(&mut *conn)
    .await?;
    Ok(started)
}
