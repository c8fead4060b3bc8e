//! Conversation threads and their floors (the downgrade ratchet's state).
//! A thread belongs to one recipient; the sender names it (`payroll-2026`)
//! or uses `default`.

use ladder_core::{AssuranceLevel, ThreadFloor};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::db::Dialect;
use crate::error::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Thread {
    pub id: String,
    #[serde(skip)]
    pub tenant_id: String,
    pub recipient_id: String,
    pub name: String,
    pub floor: ThreadFloor,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, tenant_id, recipient_id, name, floor, updated_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Thread, StoreError> {
    let floor: String = row.try_get("floor")?;
    Ok(Thread {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        recipient_id: row.try_get("recipient_id")?,
        name: row.try_get("name")?,
        floor: serde_json::from_str(&floor).map_err(|e| StoreError::corrupt("thread floor", e))?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The thread by recipient and name, locked for update on PostgreSQL so two
/// nodes deciding for one thread apply their ratchet changes in turn.
pub async fn find_for_update(
    conn: &mut AnyConnection,
    dialect: Dialect,
    tenant_id: &str,
    recipient_id: &str,
    name: &str,
) -> Result<Option<Thread>, StoreError> {
    let lock = dialect.for_update();
    let sql = format!(
        "SELECT {COLUMNS} FROM threads WHERE tenant_id = $1 AND recipient_id = $2 AND name = $3{lock}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(recipient_id)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// A thread by id, for reading.
pub async fn get(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<Thread>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM threads WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// A thread by id, locked for the rest of the transaction on PostgreSQL.
pub async fn get_for_update(
    conn: &mut AnyConnection,
    dialect: Dialect,
    tenant_id: &str,
    id: &str,
) -> Result<Option<Thread>, StoreError> {
    let lock = dialect.for_update();
    let sql = format!("SELECT {COLUMNS} FROM threads WHERE tenant_id = $1 AND id = $2{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// A recipient's threads. With `lock` on PostgreSQL they stay locked (in id
/// order, so two lockers never deadlock) for the rest of the transaction:
/// take this before the first audit append when threads will change.
pub async fn list_for_recipient(
    conn: &mut AnyConnection,
    dialect: Dialect,
    lock: bool,
    tenant_id: &str,
    recipient_id: &str,
) -> Result<Vec<Thread>, StoreError> {
    let lock = match (dialect, lock) {
        (Dialect::Postgres, true) => " FOR UPDATE",
        _ => "",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM threads WHERE tenant_id = $1 AND recipient_id = $2 ORDER BY id{lock}"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(recipient_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

fn floor_json(t: &Thread) -> Result<String, StoreError> {
    serde_json::to_string(&t.floor).map_err(|e| StoreError::corrupt("thread floor", e))
}

pub async fn insert(conn: &mut AnyConnection, t: &Thread) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO threads (id, tenant_id, recipient_id, name, floor, updated_at, floor_level, label_level) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&t.id)
    .bind(&t.tenant_id)
    .bind(&t.recipient_id)
    .bind(&t.name)
    .bind(floor_json(t)?)
    .bind(t.updated_at)
    .bind(t.floor.floor.as_str())
    .bind(t.floor.label.map(|l| l.as_str()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn update(conn: &mut AnyConnection, t: &Thread) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE threads SET floor = $1, updated_at = $2, floor_level = $5, label_level = $6 \
         WHERE tenant_id = $3 AND id = $4",
    )
    .bind(floor_json(t)?)
    .bind(t.updated_at)
    .bind(&t.tenant_id)
    .bind(&t.id)
    .bind(t.floor.floor.as_str())
    .bind(t.floor.label.map(|l| l.as_str()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A thread as the thread list shows it: with when and why its floor last
/// came down, from the audit entry that recorded the drop.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub thread: Thread,
    /// When the floor last dropped (Unix seconds), if it ever did.
    pub dropped_at: Option<i64>,
    /// That drop's audit details: from, to, causes.
    pub drop: Option<serde_json::Value>,
}

/// A tenant's threads, newest first, at most `limit`, strictly older than
/// id `before`; only those at floor `floor` and label `label` when given.
pub async fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    floor: Option<AssuranceLevel>,
    label: Option<AssuranceLevel>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Listed>, StoreError> {
    let columns = crate::db::qualified(COLUMNS, "t");
    let last_drop = |what: &str| {
        format!(
            "(SELECT a.{what} FROM audit_entries a WHERE a.tenant_id = t.tenant_id AND a.subject = t.id \
             AND a.kind = 'thread_downgraded' ORDER BY a.seq DESC LIMIT 1)"
        )
    };
    let sql = format!(
        "SELECT {columns}, {} AS dropped_at, {} AS drop_details FROM threads t \
         WHERE t.tenant_id = $1 AND ($2 IS NULL OR t.floor_level = $2) \
         AND ($3 IS NULL OR t.label_level = $3) AND ($4 IS NULL OR t.id < $4) \
         ORDER BY t.id DESC LIMIT $5",
        last_drop("at"),
        last_drop("details"),
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(floor.map(AssuranceLevel::as_str))
        .bind(label.map(AssuranceLevel::as_str))
        .bind(before)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            let details: Option<String> = r.try_get("drop_details")?;
            Ok(Listed {
                thread: from_row(r)?,
                dropped_at: r.try_get("dropped_at")?,
                drop: details
                    .map(|d| serde_json::from_str(&d))
                    .transpose()
                    .map_err(|e| StoreError::corrupt("audit details", e))?,
            })
        })
        .collect()
}
