//! Delivering owed events: one signed POST per attempt, retried with
//! exponential backoff up to `events.max_attempts`, then marked failed.
//!
//! Every attempt of one event sends the same body under the same
//! `webhook-id` (the event's id), so a receiver deduplicates on it; the
//! `webhook-timestamp` is the attempt's, and `webhook-signature` holds
//! `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` under each secret
//! that signs now (two, space-separated, during a rotation's grace period).
//! Attempts are recorded with the status code and an error kind, never the
//! endpoint's answer or URL; logs name the subscription and event ids only.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use ladder_store::event_hooks::{self, Attempt, Due, Next};
use ladder_store::{StoreError, ids};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::destination::{Destinations, FilteringResolver};
use super::subscriptions;
use crate::config::EventsConfig;
use crate::service::error::ServiceError;
use crate::state::{AppState, now, now_ms};

/// The `webhook-signature` header value: `v1,<base64>` per key, space-separated.
pub fn signature(
    keys: &[Zeroizing<[u8; 32]>],
    id: &str,
    timestamp: i64,
    body: &str,
) -> Result<String, ServiceError> {
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(k.as_slice())
            .map_err(|_| ServiceError::Internal("event signing key rejected by HMAC".into()))?;
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body.as_bytes());
        out.push(format!(
            "v1,{}",
            B64.encode(mac.finalize().into_bytes().as_slice())
        ));
    }
    Ok(out.join(" "))
}

/// The delay before attempt `attempts + 1`, after `attempts` failed ones:
/// `backoff_base_ms × 2^(attempts − 1)`, at most `backoff_max_ms`.
pub fn backoff(config: &EventsConfig, attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 32)).unwrap_or(32);
    let ms = config
        .backoff_base_ms
        .saturating_mul(1u64 << doublings)
        .min(config.backoff_max_ms);
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// The HTTP client of the event workers: the configured timeout, no
/// redirects (a redirect could carry a signed event to another host), and
/// a resolver that only answers addresses events may go to
/// ([`super::destination`]), and no proxy from the environment (a proxy
/// would resolve the tenant's host itself, past that resolver).
pub fn client(config: &EventsConfig) -> Result<reqwest::Client, ServiceError> {
    let timeout = Duration::from_millis(config.timeout_ms);
    reqwest::Client::builder()
        .no_proxy()
        .dns_resolver(FilteringResolver(Destinations::of(config)))
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("ladder-events/1")
        .build()
        .map_err(|e| ServiceError::Internal(format!("event client: {e}")))
}

/// How one attempt ended.
struct Outcome {
    status: Option<u16>,
    error_kind: Option<&'static str>,
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    id: &str,
    ts: i64,
    sig: &str,
    body: &str,
) -> Outcome {
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(body.to_string())
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Outcome {
            status: Some(r.status().as_u16()),
            error_kind: None,
        },
        Ok(r) => Outcome {
            status: Some(r.status().as_u16()),
            error_kind: Some("http_status"),
        },
        Err(e) if e.is_timeout() => Outcome {
            status: None,
            error_kind: Some("timeout"),
        },
        Err(e) if e.is_connect() => Outcome {
            status: None,
            error_kind: Some("connect"),
        },
        Err(_) => Outcome {
            status: None,
            error_kind: Some("request"),
        },
    }
}

/// Claims due events and attempts each once. Answers how many were claimed.
pub async fn run_due(state: &AppState, client: &reqwest::Client) -> Result<usize, ServiceError> {
    let due = event_hooks::claim(
        &state.store,
        &state.node,
        now_ms(),
        state.config.events.lease_ms,
        i64::try_from(crate::config::EVENT_BATCH).unwrap_or(1),
    )
    .await?;
    let n = due.len();
    for d in due {
        if let Err(e) = attempt(state, client, &d).await {
            tracing::warn!(event = %d.id, subscription = %d.subscription_id, error = %e, "event attempt could not be recorded; its lease will lapse");
        }
    }
    Ok(n)
}

/// One attempt of one claimed event, and its bookkeeping.
async fn attempt(state: &AppState, client: &reqwest::Client, d: &Due) -> Result<(), ServiceError> {
    let mut conn = state.store.acquire().await?;
    let subscription = event_hooks::get(&mut conn, &d.tenant_id, &d.subscription_id).await?;
    let Some(s) = subscription.filter(|s| s.enabled) else {
        // Disabled or deleted since the event was owed: given up, unsent.
        event_hooks::settle(
            &mut conn,
            &d.id,
            &state.node,
            d.attempts,
            Next::Failed,
            now_ms(),
        )
        .await?;
        metrics::counter!("ladder_event_deliveries_total", "outcome" => "dropped").increment(1);
        return Ok(());
    };
    drop(conn);
    let ts = now().0;
    let sig = signature(
        &subscriptions::signing_keys(state, &s, ts)?,
        &d.id,
        ts,
        &d.payload,
    )?;
    let started = Instant::now();
    let at = now_ms();
    // An address written in the URL never reaches the resolver: check it
    // here, under today's configuration.
    let outcome = if Destinations::of(&state.config.events).allows_url(&s.url) {
        post(client, &s.url, &d.id, ts, &sig, &d.payload).await
    } else {
        Outcome {
            status: None,
            error_kind: Some("destination_refused"),
        }
    };
    let attempts = d.attempts.saturating_add(1);
    let next = match outcome.error_kind {
        None => Next::Delivered,
        Some(_) if attempts >= state.config.events.max_attempts => Next::Failed,
        Some(_) => Next::Retry(now_ms().saturating_add(backoff(&state.config.events, attempts))),
    };
    let mut tx = state.store.begin().await?;
    event_hooks::record_attempt(
        &mut tx,
        &Attempt {
            id: ids::new_id(ids::AttemptId::PREFIX),
            tenant_id: d.tenant_id.clone(),
            subscription_id: d.subscription_id.clone(),
            event_id: d.id.clone(),
            attempt: attempts,
            at,
            status_code: outcome.status.map(i64::from),
            error_kind: outcome.error_kind.map(str::to_string),
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        },
    )
    .await?;
    if event_hooks::settle(&mut tx, &d.id, &state.node, attempts, next, now_ms()).await? {
        tx.commit().await.map_err(StoreError::from)?;
    }
    let label = match next {
        Next::Delivered => "delivered",
        Next::Retry(_) => "retry",
        Next::Failed => "failed",
    };
    metrics::counter!("ladder_event_deliveries_total", "outcome" => label).increment(1);
    tracing::info!(
        event = %d.id,
        subscription = %d.subscription_id,
        attempt = attempts,
        status = outcome.status.unwrap_or(0),
        error_kind = outcome.error_kind.unwrap_or("none"),
        outcome = label,
        "event attempt"
    );
    Ok(())
}
