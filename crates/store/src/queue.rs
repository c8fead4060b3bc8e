//! The escalation queue's rows: a tenant's escalated and held messages,
//! each with the time of its next look (a held message's pending
//! re-decision), and the changes an operator's action makes to that look.
//!
//! The queue is not a table of its own: it is the messages whose status is
//! `escalated` or `held`, so it can never disagree with them.

use sqlx::AnyConnection;
use sqlx::Row;

use crate::error::StoreError;
use crate::messages::{COLUMNS, Message, Status, from_row};
use crate::outbox::{self, Kind};

/// A message waiting for a human or for a capability.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub message: Message,
    /// When the pending re-decision of a held message is due (Unix ms);
    /// `None` for an escalated message, which waits for a human only.
    pub next_look_ms: Option<i64>,
}

/// A tenant's escalated and held messages (only `status` when given; it
/// must be one of those two), newest first, at most `limit`, strictly
/// older than `before`: the same keyset paging as [`crate::messages::list`].
pub async fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    status: Option<Status>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Waiting>, StoreError> {
    let (a, b) = match status {
        Some(s) => (s, s),
        None => (Status::Escalated, Status::Held),
    };
    let columns = crate::db::qualified(COLUMNS, "m");
    let sql = format!(
        "SELECT {columns}, (SELECT MIN(o.next_at_ms) FROM outbox o WHERE o.tenant_id = m.tenant_id \
           AND o.message_id = m.id AND o.kind = 'redecide' AND o.done_at IS NULL) AS next_look_ms \
         FROM messages m WHERE m.tenant_id = $1 AND m.status IN ($2, $3) \
         AND ($4 IS NULL OR m.id < $4) ORDER BY m.id DESC LIMIT $5"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(a.as_str())
        .bind(b.as_str())
        .bind(before)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Waiting {
                message: from_row(r)?,
                next_look_ms: r.try_get("next_look_ms")?,
            })
        })
        .collect()
}

/// Ends a message's pending re-decisions (a held message's looks) at
/// `now_ms`, so a look already scheduled cannot undo what an operator
/// decided. Work a worker holds under a live lease is left to it: its
/// bookkeeping re-reads the message and changes nothing once the status
/// moved. Answers how many looks were ended.
pub async fn cancel_looks(
    conn: &mut AnyConnection,
    tenant_id: &str,
    message_id: &str,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let r = sqlx::query(
        "UPDATE outbox SET done_at = $1 WHERE tenant_id = $2 AND message_id = $3 \
         AND kind = $4 AND done_at IS NULL AND (lease_until IS NULL OR lease_until < $1)",
    )
    .bind(now_ms)
    .bind(tenant_id)
    .bind(message_id)
    .bind(Kind::Redecide.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected())
}

/// Moves a held message's next look to `due_ms`: its pending looks end and
/// one new look is scheduled then.
pub async fn move_look(
    conn: &mut AnyConnection,
    tenant_id: &str,
    message_id: &str,
    now_ms: i64,
    due_ms: i64,
) -> Result<(), StoreError> {
    cancel_looks(conn, tenant_id, message_id, now_ms).await?;
    outbox::enqueue(conn, tenant_id, message_id, Kind::Redecide, due_ms).await?;
    Ok(())
}
