//! Waking the delivery workers when outbox work is committed, so that a
//! message leaves as soon as it is accepted instead of at the next poll.
//!
//! Two paths, both after the work is committed (a worker woken earlier
//! would look before the row is visible):
//!
//! - **In-process**: whoever commits work that is due now calls
//!   [`Wakeup::work_due`] on this node's [`Wakeup`] (in [`AppState`]):
//!   a `tokio::sync::Notify`, so a worker asleep wakes at once and a busy
//!   one finds the wake-up waiting when it next looks.
//! - **Between nodes, on PostgreSQL**: `ladder_store::outbox::enqueue`
//!   sends `NOTIFY ladder_outbox` (the payload is the schema) inside the
//!   enqueuing transaction, which PostgreSQL delivers at commit to every
//!   session listening; [`listen`] keeps one such session per node (its
//!   own connection, reconnecting on error) and turns each notification
//!   for this node's schema into a wake-up. A message accepted on node A
//!   is delivered by node B's workers without waiting for B's poll.
//!
//! The workers' poll (`delivery.poll_ms`) stays as the safety net: it
//! finds work whose time has come (retries, re-checks, delivery
//! deadlines), work another process wrote (a CLI command on SQLite), and
//! anything a lost notification (a listener reconnecting) did not
//! announce — the listener also wakes every worker after each
//! (re)connection for that reason.
//!
//! [`AppState`]: crate::state::AppState

use std::sync::Arc;
use std::time::Duration;

use ladder_store::outbox;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, watch};

use crate::state::now_ms;

/// This node's wake-up for its delivery workers. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Wakeup {
    notify: Arc<Notify>,
}

impl Wakeup {
    /// Work due at `due_ms` was committed: wakes a worker if it is due
    /// already (work due later is found by the poll when its time comes).
    pub fn work_due(&self, due_ms: i64) {
        if due_ms <= now_ms() {
            self.one();
        }
    }

    /// Wakes one worker; when none is waiting, the next one to wait
    /// returns at once (the wake-up is kept, never lost).
    pub fn one(&self) {
        self.notify.notify_one();
    }

    /// Wakes every waiting worker (and keeps one wake-up for a busy one).
    pub fn all(&self) {
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// Completes at the next wake-up (at once if one is kept).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}

/// Why the listener could not listen.
#[derive(Debug, thiserror::Error)]
enum ListenError {
    #[error("cannot open the notification connection: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot LISTEN on `{channel}`: {source}")]
    Listen {
        channel: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot read the connection's schema: {0}")]
    Schema(#[source] sqlx::Error),
}

/// Longest wait between attempts to reconnect the listener.
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// Listens for outbox notifications on PostgreSQL at `url` until `stop`,
/// waking this node's workers for each one that concerns its schema.
/// Connection failures are logged (never the URL) and retried with
/// backoff; meanwhile the workers' poll carries on.
pub async fn listen(url: String, wake: Wakeup, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if *stop.borrow() {
            return;
        }
        match subscribe(&url).await {
            Ok((mut listener, schema)) => {
                backoff = Duration::from_millis(100);
                // Work committed while no one listened was announced to no
                // one: look now.
                wake.all();
                loop {
                    tokio::select! {
                        got = listener.try_recv() => match got {
                            Ok(Some(n)) if n.payload() == schema => wake.one(),
                            Ok(Some(_)) => {}
                            // The connection dropped and was re-established
                            // (and re-subscribed); what was sent meanwhile
                            // is lost.
                            Ok(None) => wake.all(),
                            Err(e) => {
                                tracing::warn!(error = %e, "outbox listener lost its connection; reconnecting");
                                break;
                            }
                        },
                        changed = stop.changed() => {
                            if changed.is_err() || *stop.borrow() {
                                return;
                            }
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_ms = backoff.as_millis(), "outbox listener cannot listen; workers fall back to polling");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        backoff = backoff.saturating_mul(2).min(RECONNECT_MAX);
    }
}

/// A listener subscribed to the outbox channel, and the schema its
/// connection works in (the payload the enqueuing sessions send).
async fn subscribe(url: &str) -> Result<(PgListener, String), ListenError> {
    let mut listener = PgListener::connect(url)
        .await
        .map_err(ListenError::Connect)?;
    listener
        .listen(outbox::NOTIFY_CHANNEL)
        .await
        .map_err(|source| ListenError::Listen {
            channel: outbox::NOTIFY_CHANNEL,
            source,
        })?;
    let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(&mut listener)
        .await
        .map_err(ListenError::Schema)?;
    Ok((listener, schema))
}
