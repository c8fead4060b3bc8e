//! The recipient portal's state: one-time links to a message and the
//! sessions a correct one-time code opens.
//!
//! Nothing secret is stored as given: a link token and a session cookie are
//! 256-bit random values kept only as their SHA-256 (high-entropy tokens
//! need no slow hash), and a one-time code only as a keyed hash the caller
//! computes (a six-digit code would fall to a plain hash at once). Each
//! link carries its own expiry, view limit, wrong-code count and lockout, so
//! a configuration change never loosens a link already sent.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sqlx::{AnyConnection, Row};

use crate::db::Dialect;
use crate::error::StoreError;

/// A one-time link, as stored (its token only as a hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub id: String,
    pub tenant_id: String,
    pub message_id: String,
    pub recipient_id: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub max_views: i64,
    pub views: i64,
    /// Wrong codes since the last lockout.
    pub attempts: i64,
    pub locked_until_ms: Option<i64>,
    /// The keyed hash of the one code valid now, if any.
    pub code_hash: Option<String>,
    pub code_sent_ms: Option<i64>,
    pub code_expires_ms: Option<i64>,
    pub codes_sent: i64,
    pub last_viewed_ms: Option<i64>,
    /// Where this link's one-time code goes (`sms`, `email`, `none`), as
    /// the route that sent the link decided: fixed with the link, so a
    /// later route (a fallback to another notifier of the same step) never
    /// changes what opening *this* link takes. `None` for links issued
    /// before links recorded it.
    pub second_factor: Option<String>,
}

impl Link {
    pub fn is_expired(&self, now_ms: i64) -> bool {
        now_ms >= self.expires_ms
    }

    pub fn is_locked(&self, now_ms: i64) -> bool {
        self.locked_until_ms.is_some_and(|until| now_ms < until)
    }

    pub fn views_left(&self) -> i64 {
        (self.max_views - self.views).max(0)
    }

    /// The code that may be entered now, if one was sent and has not expired.
    pub fn live_code(&self, now_ms: i64) -> Option<&str> {
        match (&self.code_hash, self.code_expires_ms) {
            (Some(h), Some(until)) if now_ms < until => Some(h.as_str()),
            _ => None,
        }
    }
}

/// A new link or session token: 32 random bytes, URL-safe base64 (43
/// characters, no padding).
pub fn new_token() -> Result<String, StoreError> {
    let mut buf = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(buf.as_mut_slice()).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(buf.as_slice()))
}

/// Whether `s` could be a token [`new_token`] made: checked before anything
/// is hashed or looked up.
pub fn is_token_shaped(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A uniformly random one-time code of `digits` decimal digits.
pub fn new_code(digits: u32) -> Result<String, StoreError> {
    let modulus = 10u64.pow(digits.clamp(1, 9));
    // Rejection sampling: no modulo bias.
    let zone = u64::MAX - (u64::MAX % modulus);
    loop {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).map_err(|e| StoreError::Random(e.to_string()))?;
        let n = u64::from_le_bytes(b);
        if n < zone {
            let width = usize::try_from(digits.clamp(1, 9)).unwrap_or(6);
            return Ok(format!("{:0width$}", n % modulus));
        }
    }
}

const LINK_COLUMNS: &str = "id, tenant_id, message_id, recipient_id, created_ms, expires_ms, max_views, views, \
     attempts, locked_until_ms, code_hash, code_sent_ms, code_expires_ms, codes_sent, last_viewed_ms, second_factor";

fn link_from(row: &sqlx::any::AnyRow) -> Result<Link, StoreError> {
    Ok(Link {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        message_id: row.try_get("message_id")?,
        recipient_id: row.try_get("recipient_id")?,
        created_ms: row.try_get("created_ms")?,
        expires_ms: row.try_get("expires_ms")?,
        max_views: row.try_get("max_views")?,
        views: row.try_get("views")?,
        attempts: row.try_get("attempts")?,
        locked_until_ms: row.try_get("locked_until_ms")?,
        code_hash: row.try_get("code_hash")?,
        code_sent_ms: row.try_get("code_sent_ms")?,
        code_expires_ms: row.try_get("code_expires_ms")?,
        codes_sent: row.try_get("codes_sent")?,
        last_viewed_ms: row.try_get("last_viewed_ms")?,
        second_factor: row.try_get("second_factor")?,
    })
}

/// Stores the link for one (message, step) under the hash of its token,
/// unless that step already has one; returns the link the step has now —
/// the one just stored, or the one issued before (a retry after a crash
/// reuses it, so the recipient never holds two links to one message) — and
/// whether it was stored just now.
pub async fn insert_link_once(
    conn: &mut AnyConnection,
    link: &Link,
    step: &str,
    token_hash: &str,
) -> Result<(Link, bool), StoreError> {
    let sql = format!(
        "INSERT INTO portal_links ({LINK_COLUMNS}, token_hash, step) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
         ON CONFLICT (tenant_id, message_id, step) DO NOTHING"
    );
    let inserted = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&link.id)
        .bind(&link.tenant_id)
        .bind(&link.message_id)
        .bind(&link.recipient_id)
        .bind(link.created_ms)
        .bind(link.expires_ms)
        .bind(link.max_views)
        .bind(link.views)
        .bind(link.attempts)
        .bind(link.locked_until_ms)
        .bind(&link.code_hash)
        .bind(link.code_sent_ms)
        .bind(link.code_expires_ms)
        .bind(link.codes_sent)
        .bind(link.last_viewed_ms)
        .bind(&link.second_factor)
        .bind(token_hash)
        .bind(step)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        > 0;
    let sql = format!(
        "SELECT {LINK_COLUMNS} FROM portal_links \
         WHERE tenant_id = $1 AND message_id = $2 AND step = $3 AND token_hash = $4"
    );
    // The step's link must be the one this token opens: a link stored
    // under another token (a derivation key that changed) is an error, not
    // a notice carrying a link that opens nothing.
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&link.tenant_id)
        .bind(&link.message_id)
        .bind(step)
        .bind(token_hash)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| {
            StoreError::corrupt(
                "portal link",
                format!(
                    "the link of message {} step {step} is stored under another token",
                    link.message_id
                ),
            )
        })?;
    Ok((link_from(&row)?, inserted))
}

/// The link whose token hashes to `token_hash`, locked for the rest of the
/// transaction on PostgreSQL (SQLite has one writer), so two requests
/// counting wrong codes or views on one link do so in turn.
pub async fn link_by_token_for_update(
    conn: &mut AnyConnection,
    dialect: Dialect,
    token_hash: &str,
) -> Result<Option<Link>, StoreError> {
    let lock = dialect.for_update();
    let sql = format!("SELECT {LINK_COLUMNS} FROM portal_links WHERE token_hash = $1{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(token_hash)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(link_from).transpose()
}

/// A link by id, locked like [`link_by_token_for_update`].
pub async fn link_for_update(
    conn: &mut AnyConnection,
    dialect: Dialect,
    tenant_id: &str,
    id: &str,
) -> Result<Option<Link>, StoreError> {
    let lock = dialect.for_update();
    let sql =
        format!("SELECT {LINK_COLUMNS} FROM portal_links WHERE tenant_id = $1 AND id = $2{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(link_from).transpose()
}

/// A tenant's links to one message, oldest first.
pub async fn links_of_message(
    conn: &mut AnyConnection,
    tenant_id: &str,
    message_id: &str,
) -> Result<Vec<Link>, StoreError> {
    let sql = format!(
        "SELECT {LINK_COLUMNS} FROM portal_links WHERE tenant_id = $1 AND message_id = $2 ORDER BY created_ms, id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(message_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(link_from).collect()
}

/// Saves a link's moving parts: its code, wrong-code count and lockout.
pub async fn update_code_state(conn: &mut AnyConnection, link: &Link) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE portal_links SET attempts = $1, locked_until_ms = $2, code_hash = $3, code_sent_ms = $4, \
         code_expires_ms = $5, codes_sent = $6 WHERE tenant_id = $7 AND id = $8",
    )
    .bind(link.attempts)
    .bind(link.locked_until_ms)
    .bind(&link.code_hash)
    .bind(link.code_sent_ms)
    .bind(link.code_expires_ms)
    .bind(link.codes_sent)
    .bind(&link.tenant_id)
    .bind(&link.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Counts one view if the link has views left; false when its limit is
/// reached (nothing changes then).
pub async fn count_view(
    conn: &mut AnyConnection,
    tenant_id: &str,
    link_id: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE portal_links SET views = views + 1, last_viewed_ms = $1 \
         WHERE tenant_id = $2 AND id = $3 AND views < max_views",
    )
    .bind(now_ms)
    .bind(tenant_id)
    .bind(link_id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// When the recipient last viewed any of their messages on the portal.
pub async fn last_access(
    conn: &mut AnyConnection,
    tenant_id: &str,
    recipient_id: &str,
) -> Result<Option<i64>, StoreError> {
    let at: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(last_viewed_ms) FROM portal_links WHERE tenant_id = $1 AND recipient_id = $2",
    )
    .bind(tenant_id)
    .bind(recipient_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(at)
}

/// A portal session, as stored (its cookie only as a hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: String,
    pub tenant_id: String,
    pub link_id: String,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    /// The absolute end, however active the session is.
    pub expires_ms: i64,
    pub ended_ms: Option<i64>,
    /// When this session last counted a view of the message.
    pub viewed_ms: Option<i64>,
}

impl Session {
    /// Open at `now_ms`: not ended, not past its absolute end, and used
    /// within the last `idle_ms`.
    pub fn is_live(&self, now_ms: i64, idle_ms: i64) -> bool {
        self.ended_ms.is_none()
            && now_ms < self.expires_ms
            && now_ms < self.last_seen_ms.saturating_add(idle_ms)
    }
}

pub async fn insert_session(conn: &mut AnyConnection, s: &Session) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO portal_sessions (token_hash, tenant_id, link_id, created_ms, last_seen_ms, expires_ms, ended_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&s.token_hash)
    .bind(&s.tenant_id)
    .bind(&s.link_id)
    .bind(s.created_ms)
    .bind(s.last_seen_ms)
    .bind(s.expires_ms)
    .bind(s.ended_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn session(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> Result<Option<Session>, StoreError> {
    let row = sqlx::query(
        "SELECT token_hash, tenant_id, link_id, created_ms, last_seen_ms, expires_ms, ended_ms, viewed_ms \
         FROM portal_sessions WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref()
        .map(|r| {
            Ok(Session {
                token_hash: r.try_get("token_hash")?,
                tenant_id: r.try_get("tenant_id")?,
                link_id: r.try_get("link_id")?,
                created_ms: r.try_get("created_ms")?,
                last_seen_ms: r.try_get("last_seen_ms")?,
                expires_ms: r.try_get("expires_ms")?,
                ended_ms: r.try_get("ended_ms")?,
                viewed_ms: r.try_get("viewed_ms")?,
            })
        })
        .transpose()
}

/// Marks a session used now (its idle timer restarts).
pub async fn touch_session(
    conn: &mut AnyConnection,
    token_hash: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE portal_sessions SET last_seen_ms = $1 WHERE token_hash = $2 AND ended_ms IS NULL",
    )
    .bind(now_ms)
    .bind(token_hash)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records that this session counted a view of its message now.
pub async fn session_viewed(
    conn: &mut AnyConnection,
    token_hash: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE portal_sessions SET viewed_ms = $1 WHERE token_hash = $2 AND ended_ms IS NULL",
    )
    .bind(now_ms)
    .bind(token_hash)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Ends one session; false if it had already ended.
pub async fn end_session(
    conn: &mut AnyConnection,
    token_hash: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE portal_sessions SET ended_ms = $1 WHERE token_hash = $2 AND ended_ms IS NULL",
    )
    .bind(now_ms)
    .bind(token_hash)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Ends every open session on a link (it was locked, or ran out of views).
pub async fn end_sessions_of(
    conn: &mut AnyConnection,
    tenant_id: &str,
    link_id: &str,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let r = sqlx::query(
        "UPDATE portal_sessions SET ended_ms = $1 WHERE tenant_id = $2 AND link_id = $3 AND ended_ms IS NULL",
    )
    .bind(now_ms)
    .bind(tenant_id)
    .bind(link_id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_url_safe_256_bit_and_recognised() {
        let t = new_token().unwrap();
        assert_eq!(t.len(), 43);
        assert!(is_token_shaped(&t), "{t}");
        assert_ne!(t, new_token().unwrap());
        assert!(!is_token_shaped("short"));
        assert!(!is_token_shaped(&format!("{}/", &t[..42])));
    }

    #[test]
    fn codes_have_exactly_six_digits() {
        for _ in 0..200 {
            let c = new_code(6).unwrap();
            assert_eq!(c.len(), 6, "{c}");
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn sessions_end_when_idle_ended_or_past_their_end() {
        let s = Session {
            token_hash: "h".into(),
            tenant_id: "t".into(),
            link_id: "l".into(),
            created_ms: 0,
            last_seen_ms: 1_000,
            expires_ms: 10_000,
            ended_ms: None,
            viewed_ms: None,
        };
        assert!(s.is_live(1_500, 1_000));
        assert!(!s.is_live(2_000, 1_000), "idle");
        assert!(!s.is_live(10_000, 100_000), "absolute end");
        let ended = Session {
            ended_ms: Some(1_200),
            ..s
        };
        assert!(!ended.is_live(1_300, 1_000));
    }
}
