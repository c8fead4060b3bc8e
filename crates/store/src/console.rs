//! Console sessions: what a signed-in operator's cookie stands for.
//!
//! The cookie holds a random token; only its SHA-256 is stored. A session
//! is tied to the admin API key it was opened with: it is live only while
//! that key is, so revoking the key signs its operator out everywhere. It
//! ends after a stretch without use (`idle_until`, pushed forward on every
//! use) and at `expires_at` however active.

use sqlx::{AnyConnection, Row};

use crate::error::StoreError;
use crate::ids::token_hash;
use crate::tenants::{Caller, Scope};

/// A session's bounds, in Unix seconds.
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    pub now: i64,
    pub idle_s: i64,
    pub max_s: i64,
}

/// Opens a session for `caller` under `token` (kept only as its hash).
pub async fn open(
    conn: &mut AnyConnection,
    token: &str,
    caller: &Caller,
    life: Lifetime,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO console_sessions (token_hash, tenant_id, key_id, created_at, idle_until, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token_hash(token))
    .bind(&caller.tenant_id)
    .bind(&caller.key_id)
    .bind(life.now)
    .bind(life.now.saturating_add(life.idle_s))
    .bind(life.now.saturating_add(life.max_s))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The caller a live session stands for, its idle deadline pushed forward;
/// `None` when the token names no session, the session ran out, or its key
/// was revoked or is no longer an admin key.
pub async fn resume(
    conn: &mut AnyConnection,
    token: &str,
    life: Lifetime,
) -> Result<Option<Caller>, StoreError> {
    let hash = token_hash(token);
    let row = sqlx::query(
        "SELECT s.tenant_id, s.key_id, k.scope FROM console_sessions s \
         JOIN api_keys k ON k.id = s.key_id AND k.tenant_id = s.tenant_id \
         WHERE s.token_hash = $1 AND s.idle_until > $2 AND s.expires_at > $2 \
         AND k.revoked_at IS NULL",
    )
    .bind(&hash)
    .bind(life.now)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let scope: String = row.try_get("scope")?;
    let caller = Caller {
        tenant_id: row.try_get("tenant_id")?,
        key_id: row.try_get("key_id")?,
        scope: Scope::parse(&scope)?,
    };
    if !caller.scope.allows(Scope::Admin) {
        return Ok(None);
    }
    sqlx::query("UPDATE console_sessions SET idle_until = $1 WHERE token_hash = $2")
        .bind(life.now.saturating_add(life.idle_s))
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
    Ok(Some(caller))
}

/// Ends the session `token` names, if any; whether one ended.
pub async fn close(conn: &mut AnyConnection, token: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
        .bind(token_hash(token))
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Removes sessions that ran out before `now`; how many.
pub async fn sweep(conn: &mut AnyConnection, now: i64) -> Result<u64, StoreError> {
    let done =
        sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1 OR idle_until <= $1")
            .bind(now)
            .execute(&mut *conn)
            .await?;
    Ok(done.rows_affected())
}
