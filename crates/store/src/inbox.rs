//! The in-app inbox: each in-app message sealed to each device of its
//! recipient, as HPKE ciphertext (`enc`, the encapsulated key, and
//! `ciphertext`). Nothing here can read them: the server holds no device's
//! private key.
//!
//! The thread, message, assurance and expiry stored beside a ciphertext are
//! bound into its associated data, so a row moved to another message or
//! thread, or relabelled, no longer opens on the device. A row is keyed by
//! (device, message): a delivery retried after a crash stores nothing new.
//! It is served to its device only while the message is live (not expired,
//! payload not destroyed by revocation or retention), and removed when the
//! device acknowledges it.

use sqlx::{AnyConnection, Row};

use crate::error::StoreError;

/// One ciphertext of one message for one device.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    pub tenant_id: String,
    pub device_id: String,
    pub message_id: String,
    pub thread_id: String,
    /// The assurance level the route carried the payload at (its name).
    pub assurance: String,
    /// Unix seconds after which the entry is no longer served.
    pub expires_at: i64,
    /// The HPKE encapsulated key.
    pub enc: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub created_at: i64,
    /// When the device first fetched it.
    pub fetched_at: Option<i64>,
}

impl std::fmt::Debug for Entry {
    // Ciphertext is opaque; its length is all a log needs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("device_id", &self.device_id)
            .field("message_id", &self.message_id)
            .field("thread_id", &self.thread_id)
            .field("assurance", &self.assurance)
            .field("expires_at", &self.expires_at)
            .field("ciphertext", &self.ciphertext.len())
            .field("fetched_at", &self.fetched_at)
            .finish()
    }
}

const COLUMNS: &str = "tenant_id, device_id, message_id, thread_id, assurance, expires_at, enc, ciphertext, created_at, fetched_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Entry, StoreError> {
    Ok(Entry {
        tenant_id: row.try_get("tenant_id")?,
        device_id: row.try_get("device_id")?,
        message_id: row.try_get("message_id")?,
        thread_id: row.try_get("thread_id")?,
        assurance: row.try_get("assurance")?,
        expires_at: row.try_get("expires_at")?,
        enc: row.try_get("enc")?,
        ciphertext: row.try_get("ciphertext")?,
        created_at: row.try_get("created_at")?,
        fetched_at: row.try_get("fetched_at")?,
    })
}

/// Stores an entry; false if the device already has one for this message
/// (a retried delivery), which is left as it was.
pub async fn insert(conn: &mut AnyConnection, e: &Entry) -> Result<bool, StoreError> {
    let sql = format!(
        "INSERT INTO inbox ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (device_id, message_id) DO NOTHING"
    );
    let r = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&e.tenant_id)
        .bind(&e.device_id)
        .bind(&e.message_id)
        .bind(&e.thread_id)
        .bind(&e.assurance)
        .bind(e.expires_at)
        .bind(e.enc.clone())
        .bind(e.ciphertext.clone())
        .bind(e.created_at)
        .bind(e.fetched_at)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// The entries one device may fetch at `now`, oldest first: not expired,
/// and whose message's payload was not destroyed (revoked, retention).
pub async fn for_device(
    conn: &mut AnyConnection,
    tenant_id: &str,
    device_id: &str,
    now: i64,
    limit: i64,
) -> Result<Vec<Entry>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM inbox i WHERE i.tenant_id = $1 AND i.device_id = $2 AND i.expires_at > $3 \
         AND NOT EXISTS (SELECT 1 FROM payloads p WHERE p.message_id = i.message_id AND p.shredded_at IS NOT NULL AND p.shred_reason <> 'sealed_to_devices') \
         ORDER BY i.created_at, i.message_id LIMIT $4"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(device_id)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Records the first fetch of these entries by their device.
pub async fn mark_fetched(
    conn: &mut AnyConnection,
    tenant_id: &str,
    device_id: &str,
    message_ids: &[String],
    at: i64,
) -> Result<(), StoreError> {
    for id in message_ids {
        sqlx::query(
            "UPDATE inbox SET fetched_at = $1 \
             WHERE tenant_id = $2 AND device_id = $3 AND message_id = $4 AND fetched_at IS NULL",
        )
        .bind(at)
        .bind(tenant_id)
        .bind(device_id)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Removes a device's entry once the device holds it; false if there was
/// none (never sent to it, or already acknowledged).
pub async fn acknowledge(
    conn: &mut AnyConnection,
    tenant_id: &str,
    device_id: &str,
    message_id: &str,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "DELETE FROM inbox WHERE tenant_id = $1 AND device_id = $2 AND message_id = $3",
    )
    .bind(tenant_id)
    .bind(device_id)
    .bind(message_id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// What withdrawing a message from the inbox did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Withdrawn {
    /// Entries removed before any device fetched them.
    pub removed: u64,
    /// Entries a device had already fetched (left in place).
    pub already_fetched: u64,
}

/// Removes a message's entries that no device has fetched yet.
pub async fn withdraw(
    conn: &mut AnyConnection,
    tenant_id: &str,
    message_id: &str,
) -> Result<Withdrawn, StoreError> {
    let removed = sqlx::query(
        "DELETE FROM inbox WHERE tenant_id = $1 AND message_id = $2 AND fetched_at IS NULL",
    )
    .bind(tenant_id)
    .bind(message_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let already_fetched: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE tenant_id = $1 AND message_id = $2")
            .bind(tenant_id)
            .bind(message_id)
            .fetch_one(&mut *conn)
            .await?;
    Ok(Withdrawn {
        removed,
        already_fetched: u64::try_from(already_fetched).unwrap_or_default(),
    })
}

/// Removes every entry of a message, fetched or not: for when its payload
/// is destroyed (revocation, retention), so no copy outlives it here.
pub async fn remove_message(
    conn: &mut AnyConnection,
    tenant_id: &str,
    message_id: &str,
) -> Result<u64, StoreError> {
    let r = sqlx::query("DELETE FROM inbox WHERE tenant_id = $1 AND message_id = $2")
        .bind(tenant_id)
        .bind(message_id)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected())
}

/// Removes every entry sealed to a device: for when it is revoked.
pub async fn remove_device(
    conn: &mut AnyConnection,
    tenant_id: &str,
    device_id: &str,
) -> Result<u64, StoreError> {
    let r = sqlx::query("DELETE FROM inbox WHERE tenant_id = $1 AND device_id = $2")
        .bind(tenant_id)
        .bind(device_id)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected())
}

/// Forgets entries that expired before `before`.
pub async fn purge_expired(conn: &mut AnyConnection, before: i64) -> Result<u64, StoreError> {
    let r = sqlx::query("DELETE FROM inbox WHERE expires_at < $1")
        .bind(before)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected())
}

/// The tenant a device belongs to, from its globally unique id: how a
/// device-signed request finds its tenant without an API key.
pub async fn device_tenant(
    conn: &mut AnyConnection,
    device_id: &str,
) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT tenant_id FROM devices WHERE id = $1")
        .bind(device_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| r.try_get("tenant_id"))
        .transpose()
        .map_err(StoreError::from)
}
