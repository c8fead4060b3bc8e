//! Recipients, their enrolled devices and outstanding handshake challenges.
//!
//! A recipient's addresses are sealed at rest (`contact_sealed`, opaque to
//! this module); the audit log names the recipient only by `pseudonym`, a
//! keyed hash from the tenant's keyring. A device's evidence is stored as
//! the core's `DeviceEvidence`, and only the service's handshake path —
//! after `ladder_core::handshake::verify` — writes signed evidence into it.

use ladder_core::evidence::DeviceEvidence;
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::error::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recipient {
    pub id: String,
    pub tenant_id: String,
    /// The sender's own id for this person (e.g. an employee number).
    pub external_id: String,
    pub pseudonym: String,
    #[serde(skip)]
    pub contact_sealed: Vec<u8>,
    pub has_email: bool,
    pub has_phone: bool,
    pub created_at: i64,
    /// The language the portal speaks to them (a checked BCP 47 tag).
    pub language: Option<String>,
    /// Their time zone (a checked IANA name); UTC when unset.
    pub time_zone: Option<String>,
}

fn recipient_from(row: &sqlx::any::AnyRow) -> Result<Recipient, StoreError> {
    Ok(Recipient {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        external_id: row.try_get("external_id")?,
        pseudonym: row.try_get("pseudonym")?,
        contact_sealed: row.try_get("contact_sealed")?,
        has_email: row.try_get::<i64, _>("has_email")? != 0,
        has_phone: row.try_get::<i64, _>("has_phone")? != 0,
        created_at: row.try_get("created_at")?,
        language: row.try_get("language")?,
        time_zone: row.try_get("time_zone")?,
    })
}

const RECIPIENT_COLUMNS: &str = "id, tenant_id, external_id, pseudonym, contact_sealed, has_email, has_phone, created_at, language, time_zone";

pub async fn insert(conn: &mut AnyConnection, r: &Recipient) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO recipients (id, tenant_id, external_id, pseudonym, contact_sealed, has_email, has_phone, created_at, language, time_zone) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&r.id)
    .bind(&r.tenant_id)
    .bind(&r.external_id)
    .bind(&r.pseudonym)
    .bind(&r.contact_sealed)
    .bind(i64::from(r.has_email))
    .bind(i64::from(r.has_phone))
    .bind(r.created_at)
    .bind(&r.language)
    .bind(&r.time_zone)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<Recipient>, StoreError> {
    let sql =
        format!("SELECT {RECIPIENT_COLUMNS} FROM recipients WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(recipient_from).transpose()
}

/// A tenant's recipients, newest first, at most `limit`, strictly older
/// than `before` (the last id of the previous page); only the one with
/// `external_id` when given.
pub async fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    external_id: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Recipient>, StoreError> {
    let sql = format!(
        "SELECT {RECIPIENT_COLUMNS} FROM recipients WHERE tenant_id = $1 \
         AND ($2 IS NULL OR external_id = $2) AND ($3 IS NULL OR id < $3) \
         ORDER BY id DESC LIMIT $4"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(external_id)
        .bind(before)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(recipient_from).collect()
}

pub async fn find_external(
    conn: &mut AnyConnection,
    tenant_id: &str,
    external_id: &str,
) -> Result<Option<Recipient>, StoreError> {
    let sql = format!(
        "SELECT {RECIPIENT_COLUMNS} FROM recipients WHERE tenant_id = $1 AND external_id = $2"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(external_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(recipient_from).transpose()
}

/// Every recipient's sealed contact blob of a tenant, for rewrapping.
pub async fn sealed_contacts(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let rows = sqlx::query("SELECT id, contact_sealed FROM recipients WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("contact_sealed")?)))
        .collect()
}

pub async fn update_sealed_contact(
    conn: &mut AnyConnection,
    tenant_id: &str,
    recipient_id: &str,
    blob: &[u8],
) -> Result<(), StoreError> {
    sqlx::query("UPDATE recipients SET contact_sealed = $1 WHERE tenant_id = $2 AND id = $3")
        .bind(blob.to_vec())
        .bind(tenant_id)
        .bind(recipient_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// An enrolled device with its public keys and current evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    pub tenant_id: String,
    pub recipient_id: String,
    /// Ed25519 public key that signs handshake reports.
    pub identity_key: [u8; 32],
    /// X25519 public key for sealing in-app payloads to this device.
    pub agreement_key: Option<[u8; 32]>,
    /// Where the device takes content-free wake-ups: (`apns`|`fcm`, token).
    pub push: Option<(String, String)>,
    pub evidence: DeviceEvidence,
}

fn key32(bytes: Vec<u8>, what: &'static str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| StoreError::corrupt(what, format!("{} bytes, expected 32", bytes.len())))
}

fn device_from(row: &sqlx::any::AnyRow) -> Result<Device, StoreError> {
    let evidence: String = row.try_get("evidence")?;
    let agreement: Option<Vec<u8>> = row.try_get("agreement_key")?;
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    let mut evidence: DeviceEvidence =
        serde_json::from_str(&evidence).map_err(|e| StoreError::corrupt("device evidence", e))?;
    // The column is the authority on revocation: it is never cleared.
    if let Some(at) = revoked_at {
        evidence.revoked_at = Some(ladder_core::Timestamp(at));
    }
    let push_platform: Option<String> = row.try_get("push_platform")?;
    let push_token: Option<String> = row.try_get("push_token")?;
    Ok(Device {
        push: push_platform.zip(push_token),
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        recipient_id: row.try_get("recipient_id")?,
        identity_key: key32(row.try_get("identity_key")?, "device identity key")?,
        agreement_key: agreement
            .map(|k| key32(k, "device agreement key"))
            .transpose()?,
        evidence,
    })
}

const DEVICE_COLUMNS: &str = "id, tenant_id, recipient_id, identity_key, agreement_key, evidence, revoked_at, push_platform, push_token";

fn evidence_json(d: &Device) -> Result<String, StoreError> {
    serde_json::to_string(&d.evidence).map_err(|e| StoreError::corrupt("device evidence", e))
}

pub async fn insert_device(conn: &mut AnyConnection, d: &Device) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO devices (id, tenant_id, recipient_id, identity_key, agreement_key, evidence, enrolled_at, revoked_at, push_platform, push_token) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&d.id)
    .bind(&d.tenant_id)
    .bind(&d.recipient_id)
    .bind(d.identity_key.to_vec())
    .bind(d.agreement_key.map(|k| k.to_vec()))
    .bind(evidence_json(d)?)
    .bind(d.evidence.enrolled_at.0)
    .bind(d.evidence.revoked_at.map(|t| t.0))
    .bind(d.push.as_ref().map(|p| p.0.clone()))
    .bind(d.push.as_ref().map(|p| p.1.clone()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Saves a device's evidence and revocation after the service changed them.
pub async fn update_device(conn: &mut AnyConnection, d: &Device) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE devices SET evidence = $1, revoked_at = $2 WHERE tenant_id = $3 AND id = $4",
    )
    .bind(evidence_json(d)?)
    .bind(d.evidence.revoked_at.map(|t| t.0))
    .bind(&d.tenant_id)
    .bind(&d.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_device(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<Device>, StoreError> {
    let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(device_from).transpose()
}

/// A device locked for the rest of the transaction on PostgreSQL, so a
/// handshake and a revocation of one device apply in turn.
pub async fn get_device_for_update(
    conn: &mut AnyConnection,
    dialect: crate::db::Dialect,
    tenant_id: &str,
    id: &str,
) -> Result<Option<Device>, StoreError> {
    let lock = dialect.for_update();
    let sql =
        format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE tenant_id = $1 AND id = $2{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(device_from).transpose()
}

/// Every device of a recipient, revoked ones included (a revocation is
/// itself a downgrade cause the core must see).
pub async fn devices_of(
    conn: &mut AnyConnection,
    tenant_id: &str,
    recipient_id: &str,
) -> Result<Vec<Device>, StoreError> {
    let sql = format!(
        "SELECT {DEVICE_COLUMNS} FROM devices WHERE tenant_id = $1 AND recipient_id = $2 ORDER BY enrolled_at, id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(recipient_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(device_from).collect()
}

/// A one-time handshake challenge as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChallenge {
    pub nonce: String,
    pub device_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

pub async fn insert_challenge(
    conn: &mut AnyConnection,
    tenant_id: &str,
    c: &StoredChallenge,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO challenges (nonce, tenant_id, device_id, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&c.nonce)
    .bind(tenant_id)
    .bind(&c.device_id)
    .bind(c.issued_at)
    .bind(c.expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Removes and returns the challenge for `nonce`: a challenge is good for
/// one report, whatever that report's fate, so a second presentation finds
/// nothing (a replay).
pub async fn take_challenge(
    conn: &mut AnyConnection,
    tenant_id: &str,
    nonce: &str,
) -> Result<Option<StoredChallenge>, StoreError> {
    let row = sqlx::query(
        "DELETE FROM challenges WHERE tenant_id = $1 AND nonce = $2 \
         RETURNING nonce, device_id, issued_at, expires_at",
    )
    .bind(tenant_id)
    .bind(nonce)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(StoredChallenge {
        nonce: row.try_get("nonce")?,
        device_id: row.try_get("device_id")?,
        issued_at: row.try_get("issued_at")?,
        expires_at: row.try_get("expires_at")?,
    }))
}

/// Forgets challenges that expired before `before`.
pub async fn purge_challenges(conn: &mut AnyConnection, before: i64) -> Result<u64, StoreError> {
    let r = sqlx::query("DELETE FROM challenges WHERE expires_at < $1")
        .bind(before)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected())
}
