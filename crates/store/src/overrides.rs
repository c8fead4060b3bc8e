//! Emergency overrides set at run time. Every node reads the active set
//! from the database on each decision, so an override set on one node
//! applies on the next decision everywhere, without republishing policy.

use ladder_core::overrides::Override;
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::error::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredOverride {
    /// The row: one per time an override was set.
    #[serde(skip)]
    pub row_id: String,
    pub rule: Override,
    pub created_at: i64,
    pub cleared_at: Option<i64>,
    pub cleared_by: Option<String>,
}

impl StoredOverride {
    pub fn id(&self) -> &str {
        &self.rule.id
    }
}

const COLUMNS: &str = "id, rule, created_at, cleared_at, cleared_by";

fn from_row(row: &sqlx::any::AnyRow) -> Result<StoredOverride, StoreError> {
    let rule: String = row.try_get("rule")?;
    Ok(StoredOverride {
        row_id: row.try_get("id")?,
        rule: serde_json::from_str(&rule).map_err(|e| StoreError::corrupt("override", e))?,
        created_at: row.try_get("created_at")?,
        cleared_at: row.try_get("cleared_at")?,
        cleared_by: row.try_get("cleared_by")?,
    })
}

/// Stores a new override. Rule ids are unique per tenant among live
/// overrides; the caller checks that first. Earlier overrides by the same
/// id stay, as history.
pub async fn insert(
    conn: &mut AnyConnection,
    tenant_id: &str,
    rule: &Override,
    now: i64,
) -> Result<String, StoreError> {
    let json = serde_json::to_string(rule).map_err(|e| StoreError::corrupt("override", e))?;
    let row_id = crate::ids::new_id("ovr");
    sqlx::query(
        "INSERT INTO overrides (id, rule_id, tenant_id, rule, reason, author, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row_id)
    .bind(&rule.id)
    .bind(tenant_id)
    .bind(json)
    .bind(&rule.reason)
    .bind(&rule.author)
    .bind(now)
    .bind(rule.expires.0)
    .execute(&mut *conn)
    .await?;
    Ok(row_id)
}

/// The latest override by this rule id, cleared or not.
pub async fn get(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<StoredOverride>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM overrides WHERE tenant_id = $1 AND rule_id = $2 ORDER BY created_at DESC, id DESC LIMIT 1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Clears an override; `None` if there was no uncleared override by that id.
pub async fn clear(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    by: &str,
    now: i64,
) -> Result<Option<StoredOverride>, StoreError> {
    let r = sqlx::query(
        "UPDATE overrides SET cleared_at = $1, cleared_by = $2 \
         WHERE tenant_id = $3 AND rule_id = $4 AND cleared_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(by)
    .bind(tenant_id)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(None);
    }
    get(conn, tenant_id, id).await
}

/// Overrides not cleared and not expired at `now`: what decisions apply.
pub async fn active(
    conn: &mut AnyConnection,
    tenant_id: &str,
    now: i64,
) -> Result<Vec<StoredOverride>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM overrides WHERE tenant_id = $1 AND cleared_at IS NULL AND expires_at > $2 ORDER BY created_at, id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Every override of a tenant, newest first.
pub async fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<StoredOverride>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM overrides WHERE tenant_id = $1 ORDER BY created_at DESC, id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Overrides that expired (uncleared) and whose expiry is not yet audited,
/// with their tenant. The caller audits each and then calls
/// [`mark_expiry_audited`] in the same transaction.
pub async fn expired_unaudited(
    conn: &mut AnyConnection,
    now: i64,
) -> Result<Vec<(String, StoredOverride)>, StoreError> {
    let sql = format!(
        "SELECT tenant_id, {COLUMNS} FROM overrides \
         WHERE cleared_at IS NULL AND expires_at <= $1 AND expiry_audited = 0 ORDER BY expires_at LIMIT 100"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("tenant_id")?, from_row(r)?)))
        .collect()
}

/// Marks an expiry as audited (by row); false if another node got there first.
pub async fn mark_expiry_audited(
    conn: &mut AnyConnection,
    tenant_id: &str,
    row_id: &str,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE overrides SET expiry_audited = 1 WHERE tenant_id = $1 AND id = $2 AND expiry_audited = 0",
    )
    .bind(tenant_id)
    .bind(row_id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// One time an override was set, as the history shows it. A renewal
/// closes the override's row and opens a new one with the new expiry (see
/// the service's `renew`); the audit entry it writes tells the two apart
/// from a plain set and a plain clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub stored: StoredOverride,
    /// This row was opened by a renewal, not by setting the override.
    pub opened_by_renewal: bool,
    /// This row was closed by a renewal, not cleared.
    pub closed_by_renewal: bool,
}

/// A tenant's overrides, one row per time one was set or renewed, newest
/// first, at most `limit`, strictly older than row `before`; with
/// `active_at`, only those in force then (not cleared, not expired).
pub async fn history(
    conn: &mut AnyConnection,
    tenant_id: &str,
    active_at: Option<i64>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<HistoryRow>, StoreError> {
    let columns = crate::db::qualified(COLUMNS, "o");
    // A renewal closes one row and opens the next of the same rule at the
    // same instant, and audits `override_renewed` then.
    let renewal = |this: &str, other: &str, order: &str| {
        format!(
            "(SELECT COUNT(*) FROM overrides r WHERE r.tenant_id = o.tenant_id AND r.rule_id = o.rule_id \
               AND r.id {order} o.id AND r.{other} = o.{this} \
               AND EXISTS (SELECT 1 FROM audit_entries a WHERE a.tenant_id = o.tenant_id \
                 AND a.subject = o.rule_id AND a.kind = 'override_renewed' AND a.at = o.{this}))"
        )
    };
    let sql = format!(
        "SELECT {columns}, {} AS opened_by_renewal, {} AS closed_by_renewal \
         FROM overrides o WHERE o.tenant_id = $1 \
         AND ($2 IS NULL OR (o.cleared_at IS NULL AND o.expires_at > $2)) \
         AND ($3 IS NULL OR o.id < $3) ORDER BY o.id DESC LIMIT $4",
        renewal("created_at", "cleared_at", "<"),
        renewal("cleared_at", "created_at", ">"),
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(active_at)
        .bind(before)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            let opened: i64 = r.try_get("opened_by_renewal")?;
            let closed: i64 = r.try_get("closed_by_renewal")?;
            Ok(HistoryRow {
                stored: from_row(r)?,
                opened_by_renewal: opened > 0,
                closed_by_renewal: closed > 0,
            })
        })
        .collect()
}
