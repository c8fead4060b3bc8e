//! Background work on every node: delivery workers draining the outbox,
//! event workers sending owed webhooks to tenants' endpoints, and a
//! maintenance loop that shreds expired payloads, audits expired
//! overrides, forgets stale challenges and signs audit checkpoints.
//!
//! Delivery workers are woken as soon as work due now is committed
//! ([`crate::wake`]), claim due items in batches and run them
//! concurrently, their provider calls bounded per channel
//! ([`crate::slots`]); the poll is the safety net.
//!
//! Both stop at shutdown after finishing the items in hand; work not yet
//! claimed stays in the outbox for the next start or another node.
//!
//! A delivery worker runs each item in a `work` span carrying the id of the
//! request that caused it, so `grep <request id>` over the logs finds the
//! request and every delivery attempt it led to.

use std::collections::HashMap;
use std::time::Duration;

use ladder_store::audit::{merkle, signed};
use ladder_store::{StoreError, audit, outbox, recipients, tenants};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use crate::service::{deliver, events, keys, overrides};
use crate::state::{AppState, now, now_ms};

/// One delivery worker: claims due items in batches and runs them
/// concurrently, holding at most `delivery.claim_batch` at a time; claims
/// more as they finish, when woken ([`crate::wake`]) or, as a safety net,
/// every `delivery.poll_ms`. Provider calls queue per channel
/// ([`crate::slots`]); meanwhile the leases of the items it holds are
/// renewed every third of `delivery.lease_ms`, so an item waiting its turn
/// is not taken over by another worker. Items of one message claimed
/// together run one after another, in the order they fell due.
pub async fn delivery(state: AppState, mut stop: watch::Receiver<bool>) {
    let config = &state.config.delivery;
    let poll = Duration::from_millis(config.poll_ms);
    let batch = config.claim_batch.max(1);
    let renew_every = Duration::from_millis(u64::try_from(config.lease_ms / 3).unwrap_or(1).max(1));
    let mut running: JoinSet<()> = JoinSet::new();
    // The ids each running task holds.
    let mut held: HashMap<tokio::task::Id, Vec<String>> = HashMap::new();
    let mut holding = 0usize;
    let mut stopping = false;
    // Whether to look for due work at the next chance: at start, after a
    // wake-up or the poll, and while the last look filled every place
    // (more may be due).
    let mut look = true;
    let mut next_poll = Instant::now() + poll;
    let mut next_renew = Instant::now() + renew_every;
    loop {
        stopping |= *stop.borrow();
        if stopping && running.is_empty() {
            return;
        }
        let room = batch.saturating_sub(holding);
        if look && !stopping && room > 0 {
            next_poll = Instant::now() + poll;
            let work = claim(&state, room).await;
            look = work.len() == room;
            if running.is_empty() {
                next_renew = Instant::now() + renew_every;
            }
            for group in by_message(work) {
                let ids: Vec<String> = group.iter().map(|w| w.id.clone()).collect();
                holding += ids.len();
                let task = running.spawn(run_group(state.clone(), group));
                held.insert(task.id(), ids);
            }
            continue;
        }
        let has_room = !stopping && room > 0;
        tokio::select! {
            done = running.join_next_with_id(), if !running.is_empty() => {
                let id = match done {
                    Some(Ok((id, ()))) => Some(id),
                    Some(Err(e)) => {
                        // A panic: its items wait out their leases.
                        tracing::error!(error = %e, "delivery task failed");
                        Some(e.id())
                    }
                    None => None,
                };
                if let Some(ids) = id.and_then(|id| held.remove(&id)) {
                    holding = holding.saturating_sub(ids.len());
                }
            }
            () = state.wake.notified(), if has_room => look = true,
            () = tokio::time::sleep_until(next_poll), if has_room => look = true,
            () = tokio::time::sleep_until(next_renew), if !running.is_empty() => {
                let ids: Vec<&str> = held.values().flatten().map(String::as_str).collect();
                renew(&state, &ids).await;
                next_renew = Instant::now() + renew_every;
            }
            changed = stop.changed(), if !stopping => {
                // A dropped sender stops the worker too.
                if changed.is_err() {
                    stopping = true;
                }
            }
        }
    }
}

/// Claims up to `n` due items for this node (none when the claim fails:
/// the next look tries again).
async fn claim(state: &AppState, n: usize) -> Vec<outbox::Work> {
    let limit = i64::try_from(n).unwrap_or(i64::MAX);
    match outbox::claim(
        &state.store,
        &state.node,
        now_ms(),
        state.config.delivery.lease_ms,
        limit,
    )
    .await
    {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "outbox claim failed");
            Vec::new()
        }
    }
}

/// Extends this node's leases on the items still running.
async fn renew(state: &AppState, ids: &[&str]) {
    let until = now_ms().saturating_add(state.config.delivery.lease_ms);
    if let Err(e) = outbox::renew(&state.store, &state.node, ids, until).await {
        tracing::warn!(error = %e, items = ids.len(), "could not renew delivery leases; they may lapse");
    }
}

/// Claimed items by message, in claim order: items of one message run one
/// after another, different messages concurrently.
fn by_message(work: Vec<outbox::Work>) -> Vec<Vec<outbox::Work>> {
    let mut groups: Vec<Vec<outbox::Work>> = Vec::new();
    for w in work {
        match groups
            .iter_mut()
            .find(|g| g.first().is_some_and(|f| f.message_id == w.message_id))
        {
            Some(g) => g.push(w),
            None => groups.push(vec![w]),
        }
    }
    groups
}

/// Runs a message's claimed items in turn. Each runs to its end even when
/// the node is asked to stop: a half-run item would wait out its lease.
async fn run_group(state: AppState, group: Vec<outbox::Work>) {
    for item in group {
        let span = tracing::info_span!(
            "work",
            request_id = tracing::field::Empty,
            kind = %item.kind.as_str(),
        );
        // Recorded as the request's span records it, so both read alike.
        if let Some(id) = &item.request_id {
            span.record("request_id", tracing::field::display(id));
        }
        outbox::for_request(item.request_id.clone(), run_one(&state, &item))
            .instrument(span)
            .await;
    }
}

/// Runs one claimed item inside the span and request scope of the request
/// that caused it, so its log lines carry that request's id and the work it
/// queues keeps it.
async fn run_one(state: &AppState, item: &outbox::Work) {
    match deliver::run(state, item).await {
        Ok(()) => tracing::info!(
            work = %item.id,
            message_id = %item.message_id,
            attempt = item.attempts + 1,
            "delivery work ran"
        ),
        Err(e) => give_up_or_retry(state, item, &e).await,
    }
}

/// Work that failed inside ladder (not at a provider): retried with
/// backoff, and after as many tries as a delivery gets, abandoned — the
/// message failed, its payload destroyed, audited — rather than retried
/// forever.
async fn give_up_or_retry(
    state: &AppState,
    item: &outbox::Work,
    error: &crate::service::error::ServiceError,
) {
    tracing::error!(work = %item.id, message_id = %item.message_id, error = %error, "delivery work failed");
    let attempts = item.attempts + 1;
    let result = if attempts >= state.config.delivery.max_attempts {
        abandon(state, item).await
    } else {
        let delay = deliver::backoff(&state.config.delivery, attempts);
        match state.store.pool().acquire().await {
            Ok(mut conn) => outbox::retry(
                &mut conn,
                &item.id,
                &state.node,
                attempts,
                now_ms() + delay,
                "internal_error",
            )
            .await
            .map(|_| ())
            .map_err(crate::service::error::ServiceError::from),
            Err(e) => Err(StoreError::from(e).into()),
        }
    };
    if let Err(e) = result {
        tracing::error!(work = %item.id, error = %e, "could not reschedule failed work; its lease will lapse");
    }
}

async fn abandon(
    state: &AppState,
    item: &outbox::Work,
) -> Result<(), crate::service::error::ServiceError> {
    let message = {
        let mut conn = state
            .store
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        ladder_store::messages::get(&mut conn, &item.tenant_id, &item.message_id).await?
    };
    match message {
        Some(m) => deliver::fail_for_good(state, item, &m, "internal_error").await,
        None => {
            let mut conn = state
                .store
                .pool()
                .acquire()
                .await
                .map_err(StoreError::from)?;
            outbox::complete(&mut conn, &item.id, &state.node, now_ms()).await?;
            Ok(())
        }
    }
}

/// One event worker: claims due outbound events (webhooks to tenants' own
/// endpoints, `crate::service::events`), attempts each once, repeats;
/// idle-polls when nothing is due.
pub async fn outbound_events(state: AppState, mut stop: watch::Receiver<bool>) {
    let poll = Duration::from_millis(state.config.events.poll_ms);
    let client = match events::outbound::client(&state.config.events) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "event worker cannot start");
            return;
        }
    };
    loop {
        if *stop.borrow() {
            return;
        }
        let claimed = match events::outbound::run_due(&state, &client).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "event claim failed");
                0
            }
        };
        if claimed == 0 {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// The maintenance loop.
pub async fn maintenance(state: AppState, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_secs(1);
    let mut last_checkpoint = std::time::Instant::now();
    loop {
        if *stop.borrow() {
            return;
        }
        if let Err(e) = keys::shred_expired(&state).await {
            tracing::warn!(error = %e, "retention sweep failed");
        }
        if let Err(e) = overrides::audit_expired(&state).await {
            tracing::warn!(error = %e, "override expiry sweep failed");
        }
        if let Ok(mut conn) = state.store.pool().acquire().await {
            let _ = recipients::purge_challenges(&mut conn, now().0 - 3600).await;
            let _ = ladder_store::inbox::purge_expired(&mut conn, now().0).await;
        }
        state.limits.tidy();
        let interval = Duration::from_secs(state.config.audit.checkpoint_interval_s);
        let due_by_time = last_checkpoint.elapsed() >= interval;
        match checkpoint_all(&state, due_by_time).await {
            Ok(_) if due_by_time => last_checkpoint = std::time::Instant::now(),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "audit checkpoint failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Brings every tenant's Merkle tree up to date with its audit entries
/// (batched, off the request path), and signs checkpoints — of the hash
/// chain and of the tree — for each tenant with enough unsigned entries (or
/// any, when `force`). Returns how many tree checkpoints were signed.
pub async fn checkpoint_all(state: &AppState, force: bool) -> Result<usize, StoreError> {
    let all = {
        let mut conn = state.store.pool().acquire().await?;
        tenants::list(&mut conn).await?
    };
    let mut n = 0;
    for t in all {
        merkle::integrate(&state.store, &t.id, 10_000).await?;
        let pending = signed::unsigned_entries(&state.store, &t.id).await?;
        if pending == 0 || (!force && pending < state.config.audit.checkpoint_every) {
            continue;
        }
        let (key_id, key) = state.keyring.checkpoint_signer(&t.id)?;
        audit::checkpoint(&state.store, &t.id, now().0, &key_id, &key).await?;
        let origin = signed::origin(&state.config.audit.deployment, &t.id);
        if signed::sign_head(&state.store, &t.id, &origin, &key, now().0)
            .await?
            .is_some()
        {
            n += 1;
        }
    }
    Ok(n)
}
