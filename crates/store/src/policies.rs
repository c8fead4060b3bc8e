//! Published policy versions. A tenant's active version is the one its
//! decisions use; publishing a new one is a single row switch, so a failed
//! publication leaves the previous version active.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::error::StoreError;

/// A policy as published: its source text (the tenant's own file) and who
/// published it when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredPolicy {
    pub version: String,
    pub revision: i64,
    #[serde(skip)]
    pub source: String,
    pub published_at: i64,
    pub published_by: String,
}

/// Locks the tenant's row for the rest of the transaction on PostgreSQL
/// (SQLite has one writer), so two publications check the active revision
/// and switch it in turn, never both against the same old one.
pub async fn lock_tenant(
    conn: &mut AnyConnection,
    dialect: crate::db::Dialect,
    tenant_id: &str,
) -> Result<(), StoreError> {
    let lock = dialect.for_update();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM tenants WHERE id = $1{lock}"
    )))
    .bind(tenant_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(())
}

/// Records `source` as version `version` (publishing it again, as a
/// rollback does, dates it anew) and makes it active.
pub async fn publish(
    conn: &mut AnyConnection,
    tenant_id: &str,
    policy: &StoredPolicy,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO policies (tenant_id, version, revision, source, published_at, published_by) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, version) \
         DO UPDATE SET published_at = excluded.published_at, published_by = excluded.published_by",
    )
    .bind(tenant_id)
    .bind(&policy.version)
    .bind(policy.revision)
    .bind(&policy.source)
    .bind(policy.published_at)
    .bind(&policy.published_by)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE tenants SET active_policy = $1 WHERE id = $2")
        .bind(&policy.version)
        .bind(tenant_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn active(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Option<StoredPolicy>, StoreError> {
    let row = sqlx::query(
        "SELECT p.version, p.revision, p.source, p.published_at, p.published_by \
         FROM policies p JOIN tenants t ON t.id = p.tenant_id AND t.active_policy = p.version \
         WHERE t.id = $1",
    )
    .bind(tenant_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(StoredPolicy {
        version: row.try_get("version")?,
        revision: row.try_get("revision")?,
        source: row.try_get("source")?,
        published_at: row.try_get("published_at")?,
        published_by: row.try_get("published_by")?,
    }))
}

/// The version of the tenant's active policy, without its text: enough
/// for a caller that keeps parsed policies by version.
pub async fn active_version(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Option<String>, StoreError> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT active_policy FROM tenants WHERE id = $1")
            .bind(tenant_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.and_then(|r| r.0))
}

/// Whether `version` was ever published for the tenant: a rollback may
/// only return to a version that was once in force.
pub async fn was_published(
    conn: &mut AnyConnection,
    tenant_id: &str,
    version: &str,
) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT 1 AS one FROM policies WHERE tenant_id = $1 AND version = $2")
        .bind(tenant_id)
        .bind(version)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
}

/// A published version as the version list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub policy: StoredPolicy,
    /// Whether decisions use it now.
    pub active: bool,
}

const PUBLISHED: &str = "SELECT p.version, p.revision, p.source, p.published_at, p.published_by, \
     t.active_policy AS active_version \
     FROM policies p JOIN tenants t ON t.id = p.tenant_id WHERE p.tenant_id = $1";

fn published_from(row: &sqlx::any::AnyRow) -> Result<Published, StoreError> {
    let active: Option<String> = row.try_get("active_version")?;
    let version: String = row.try_get("version")?;
    Ok(Published {
        active: active.as_deref() == Some(version.as_str()),
        policy: StoredPolicy {
            version,
            revision: row.try_get("revision")?,
            source: row.try_get("source")?,
            published_at: row.try_get("published_at")?,
            published_by: row.try_get("published_by")?,
        },
    })
}

/// Where a page of versions continues: the previous page's last row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionKey {
    pub published_at: i64,
    pub revision: i64,
    pub version: String,
}

/// A tenant's published versions, most recently published first (a
/// rollback dates its version anew; within one second, the higher
/// revision first), at most `limit`, strictly after `before`.
pub async fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    before: Option<&VersionKey>,
    limit: i64,
) -> Result<Vec<Published>, StoreError> {
    let sql = format!(
        "{PUBLISHED} AND ($2 IS NULL OR p.published_at < $2 OR (p.published_at = $2 \
           AND (p.revision < $3 OR (p.revision = $3 AND p.version < $4)))) \
         ORDER BY p.published_at DESC, p.revision DESC, p.version DESC LIMIT $5"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(before.map(|b| b.published_at))
        .bind(before.map(|b| b.revision))
        .bind(before.map(|b| b.version.as_str()))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(published_from).collect()
}

/// The version published under `revision` — the latest published if a
/// rollback and a later publication made two share it.
pub async fn by_revision(
    conn: &mut AnyConnection,
    tenant_id: &str,
    revision: i64,
) -> Result<Option<Published>, StoreError> {
    let sql = format!(
        "{PUBLISHED} AND p.revision = $2 ORDER BY p.published_at DESC, p.version DESC LIMIT 1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(revision)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(published_from).transpose()
}
