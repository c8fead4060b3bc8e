//! The sandbox provider's mailbox: what each recipient would have received
//! through the zero-configuration sandbox channels.
//!
//! Keyed by the provider idempotency key, as a real provider dedupes: a
//! delivery retried after a crash records nothing new, so the recipient
//! never sees a message twice. A payload delivery stores no content, only
//! that the payload was handed over: the sandbox stands for the recipient's
//! device, and the body stays sealed in `payloads`.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::error::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub idempotency_key: String,
    pub message_id: String,
    pub recipient_id: String,
    pub channel: String,
    /// `payload` or `notice`.
    pub kind: String,
    /// The rendered notice, for notices (content-free by construction).
    pub notice_text: Option<String>,
    pub at_ms: i64,
}

/// Records a delivery; false if this idempotency key was seen before.
pub async fn record(
    conn: &mut AnyConnection,
    tenant_id: &str,
    d: &Delivery,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "INSERT INTO sandbox_inbox (idempotency_key, tenant_id, message_id, recipient_id, channel, kind, notice_text, at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(&d.idempotency_key)
    .bind(tenant_id)
    .bind(&d.message_id)
    .bind(&d.recipient_id)
    .bind(&d.channel)
    .bind(&d.kind)
    .bind(&d.notice_text)
    .bind(d.at_ms)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// A tenant's sandbox deliveries, oldest first, optionally for one message.
pub async fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    message_id: Option<&str>,
    limit: i64,
) -> Result<Vec<Delivery>, StoreError> {
    let rows = sqlx::query(
        "SELECT idempotency_key, message_id, recipient_id, channel, kind, notice_text, at_ms FROM sandbox_inbox \
         WHERE tenant_id = $1 AND ($2 = '' OR message_id = $2) ORDER BY at_ms, idempotency_key LIMIT $3",
    )
    .bind(tenant_id)
    .bind(message_id.unwrap_or_default())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Delivery {
                idempotency_key: r.try_get("idempotency_key")?,
                message_id: r.try_get("message_id")?,
                recipient_id: r.try_get("recipient_id")?,
                channel: r.try_get("channel")?,
                kind: r.try_get("kind")?,
                notice_text: r.try_get("notice_text")?,
                at_ms: r.try_get("at_ms")?,
            })
        })
        .collect()
}
