//! Delivering one piece of outbox work: hand the payload to the decided
//! container and the notice to its notifier, through the channel adapters.
//!
//! A transient failure is retried with exponential backoff and full jitter.
//! A permanent failure, a timeout or exhausted retries re-decide with the
//! failed (step, channel) excluded: the core can then only pick a step
//! further down the same ladder, never below the class minimum — and a
//! guard here refuses anything that is not strictly further down. Every
//! attempt and outcome is audited.
//!
//! Provider calls happen outside any transaction (SQLite has one
//! connection; nothing should wait on a provider holding it). Each carries
//! an idempotency key fixed per (message, step, channel), so a retry after
//! a crash between the call and the bookkeeping shows the recipient nothing
//! new.

use std::time::Duration;

use ladder_channels::{Content, DeliveryError, Dispatch};
use ladder_core::decision::{FailedAttempt, Route};
use ladder_core::{Channel, Container, MessageMeta, Outcome, Timestamp};
use ladder_store::messages::{self, Event, Message, Status};
use ladder_store::outbox::{self, Kind, Work};
use ladder_store::{StoreError, sealed, threads};
use serde_json::json;

use crate::error::ApiError;
use crate::service::send::{audit_decision, floor_after, load_inputs, run_decision, settle};
use crate::service::{audit, keys, payload_aad};
use crate::state::{AppState, now, now_ms};

const ACTOR: &str = "worker";

/// How one provider call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attempt {
    Accepted {
        duplicate: bool,
    },
    Transient(String),
    /// Permanent failure or timeout: re-decide without this channel.
    Failed(String),
}

/// Runs one claimed work item to its next resting state.
pub async fn run(state: &AppState, work: &Work) -> Result<(), ApiError> {
    let message = {
        let mut conn = state
            .store
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        messages::get(&mut conn, &work.tenant_id, &work.message_id).await?
    };
    let Some(message) = message else {
        return finish(state, work).await;
    };
    match work.kind {
        Kind::Redecide => redecide(state, work, message, None).await,
        Kind::Deliver => deliver(state, work, message).await,
    }
}

async fn finish(state: &AppState, work: &Work) -> Result<(), ApiError> {
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    outbox::complete(&mut conn, &work.id, &state.node, now_ms()).await?;
    Ok(())
}

fn idempotency_key(message_id: &str, route: &Route, channel: Channel) -> String {
    let step = route
        .step
        .map_or_else(|| "legacy".to_string(), |s| s.to_string());
    format!("{message_id}/{step}/{channel}")
}

async fn deliver(state: &AppState, work: &Work, message: Message) -> Result<(), ApiError> {
    let route = match (&message.status, &message.decision.outcome) {
        (Status::Queued, Outcome::Deliver { route }) => route.clone(),
        // Superseded (re-decided, confirmed elsewhere, shredded): nothing to do.
        _ => return finish(state, work).await,
    };
    // The payload, opened only now and only for a container that carries it.
    let payload = match route.container {
        Container::Portal => None,
        _ => match open_payload(state, &message).await? {
            Some(p) => Some(p),
            None => {
                return fail_for_good(state, work, message, "payload_shredded").await;
            }
        },
    };
    let mut sends: Vec<(Channel, Content)> = Vec::new();
    if let Some(p) = payload {
        sends.push((route.container.channel(), Content::Payload(p)));
    }
    if let Some(n) = route.notifier {
        sends.push((
            n.channel(),
            Content::Notice(notice_text(state, &message).await?),
        ));
    }
    let timeout = Duration::from_millis(state.config.delivery.timeout_ms);
    let mut outcome = Attempt::Accepted { duplicate: false };
    let mut failed_channel = None;
    let mut results = Vec::new();
    for (channel, content) in sends {
        let dispatch = Dispatch {
            tenant_id: message.tenant_id.clone(),
            message_id: message.id.clone(),
            recipient_id: message.recipient_id.clone(),
            channel,
            idempotency_key: idempotency_key(&message.id, &route, channel),
            content,
        };
        let attempt = match state.channels.get(channel) {
            None => Attempt::Failed("channel_not_configured".into()),
            Some(adapter) => match tokio::time::timeout(timeout, adapter.send(&dispatch)).await {
                Err(_) => Attempt::Failed("timeout".into()),
                Ok(Ok(a)) => Attempt::Accepted {
                    duplicate: a.duplicate,
                },
                Ok(Err(DeliveryError::Transient { code })) => Attempt::Transient(code),
                Ok(Err(DeliveryError::Permanent { code })) => Attempt::Failed(code),
            },
        };
        let label = match &attempt {
            Attempt::Accepted { .. } => "accepted",
            Attempt::Transient(_) => "transient",
            Attempt::Failed(_) => "failed",
        };
        metrics::counter!("ladder_delivery_attempts_total", "channel" => channel.to_string(), "outcome" => label)
            .increment(1);
        results.push((channel, attempt.clone()));
        if !matches!(attempt, Attempt::Accepted { .. }) {
            outcome = attempt;
            failed_channel = Some(channel);
            break;
        }
    }
    record_attempts(state, &message, &route, work, &results).await?;
    match (outcome, failed_channel) {
        (Attempt::Accepted { .. }, _) | (_, None) => delivered(state, work, message, &route).await,
        (Attempt::Transient(code), Some(channel)) => {
            let attempts = work.attempts + 1;
            if attempts >= state.config.delivery.max_attempts {
                let failed = FailedAttempt {
                    step: route.step,
                    channel,
                };
                redecide(
                    state,
                    work,
                    message,
                    Some((failed, "retries_exhausted".into())),
                )
                .await
            } else {
                let delay = backoff(&state.config.delivery, attempts);
                let mut conn = state
                    .store
                    .pool()
                    .acquire()
                    .await
                    .map_err(StoreError::from)?;
                outbox::retry(
                    &mut conn,
                    &work.id,
                    &state.node,
                    attempts,
                    now_ms() + delay,
                    &code,
                )
                .await?;
                Ok(())
            }
        }
        (Attempt::Failed(code), Some(channel)) => {
            let failed = FailedAttempt {
                step: route.step,
                channel,
            };
            redecide(state, work, message, Some((failed, code))).await
        }
    }
}

/// Exponential backoff with full jitter: a random delay up to
/// `base * 2^attempts`, capped, never less than half of it.
pub fn backoff(config: &crate::config::DeliveryConfig, attempts: i64) -> i64 {
    let exp = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    let ceiling = config
        .backoff_base_ms
        .saturating_mul(1u64 << exp)
        .min(config.backoff_max_ms)
        .max(1);
    let mut r = [0u8; 8];
    let jitter = match getrandom::fill(&mut r) {
        Ok(()) => u64::from_le_bytes(r) % (ceiling / 2 + 1),
        Err(_) => ceiling / 2,
    };
    i64::try_from(ceiling / 2 + jitter).unwrap_or(i64::MAX)
}

async fn open_payload(
    state: &AppState,
    message: &Message,
) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, ApiError> {
    let stored = {
        let mut conn = state
            .store
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        messages::payload(&mut conn, &message.tenant_id, &message.id).await?
    };
    let Some(p) = stored else { return Ok(None) };
    let (Some(kek_id), Some(wrapped), Some(ciphertext)) = (p.kek_id, p.wrapped_key, p.ciphertext)
    else {
        return Ok(None);
    };
    let key = state.keyring.unwrap(
        &message.tenant_id,
        &ladder_store::keyring::WrappedKey {
            kek_id,
            bytes: wrapped,
        },
    )?;
    let plain = sealed::open(
        &key,
        &payload_aad(&message.tenant_id, &message.id),
        &ciphertext,
    )
    .map_err(|e| ApiError::Internal(format!("payload of {} does not open: {e}", message.id)))?;
    Ok(Some(plain))
}

/// The tenant's notice, with a portal link for the message. Content-free by
/// construction: the template may name only the tenant, a link and an expiry.
async fn notice_text(state: &AppState, message: &Message) -> Result<String, ApiError> {
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let policy = state.active_policy(&mut conn, &message.tenant_id).await?;
    let link = format!("http://{}/portal/{}", state.config.listen, message.id);
    let text = policy
        .class(&message.class)
        .and_then(|c| policy.notice_for(c))
        .map(|t| t.render(policy.display_name(), &link, "7 days").0)
        .unwrap_or_else(|| {
            format!(
                "You have a new secure message from {}. Open it here: {link}",
                policy.display_name()
            )
        });
    Ok(text)
}

async fn record_attempts(
    state: &AppState,
    message: &Message,
    route: &Route,
    work: &Work,
    results: &[(Channel, Attempt)],
) -> Result<(), ApiError> {
    let mut tx = state.store.begin().await?;
    for (channel, attempt) in results {
        let (outcome, code, duplicate) = match attempt {
            Attempt::Accepted { duplicate } => ("accepted", None, *duplicate),
            Attempt::Transient(c) => ("transient_failure", Some(c.as_str()), false),
            Attempt::Failed(c) => ("permanent_failure", Some(c.as_str()), false),
        };
        let detail = json!({
            "route": route.name(),
            "step": route.step,
            "channel": channel,
            "attempt": work.attempts + 1,
            "outcome": outcome,
            "code": code,
            "provider_duplicate": duplicate,
        });
        messages::add_event(
            &mut tx,
            &message.tenant_id,
            &message.id,
            &Event {
                at: now().0,
                kind: "delivery_attempt".into(),
                detail: detail.clone(),
            },
        )
        .await?;
        audit::record(
            &mut tx,
            state,
            &message.tenant_id,
            ACTOR,
            "delivery_attempt",
            Some(&message.id),
            detail,
        )
        .await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

async fn delivered(
    state: &AppState,
    work: &Work,
    mut message: Message,
    route: &Route,
) -> Result<(), ApiError> {
    let mut tx = state.store.begin().await?;
    message.status = Status::Sent;
    message.updated_at = now().0;
    messages::update(&mut tx, &message).await?;
    // What the recipient was last shown: the thread's label, for the
    // downgrade check of the next message.
    if let Some(mut thread) = threads::get(
        &mut tx,
        state.store.dialect(),
        &message.tenant_id,
        &message.thread_id,
    )
    .await?
    {
        thread.floor.label = Some(route.assurance);
        thread.updated_at = now().0;
        threads::update(&mut tx, &thread).await?;
    }
    messages::add_event(
        &mut tx,
        &message.tenant_id,
        &message.id,
        &Event {
            at: now().0,
            kind: "sent".into(),
            detail: json!({ "route": route.name(), "assurance": route.assurance }),
        },
    )
    .await?;
    audit::record(
        &mut tx,
        state,
        &message.tenant_id,
        ACTOR,
        "delivered",
        Some(&message.id),
        json!({ "route": route.name(), "assurance": route.assurance }),
    )
    .await?;
    outbox::complete(&mut tx, &work.id, &state.node, now_ms()).await?;
    tx.commit().await.map_err(StoreError::from)?;
    metrics::counter!("ladder_delivery_outcomes_total", "outcome" => "sent", "container" => route.container.to_string())
        .increment(1);
    Ok(())
}

async fn fail_for_good(
    state: &AppState,
    work: &Work,
    mut message: Message,
    code: &str,
) -> Result<(), ApiError> {
    let mut tx = state.store.begin().await?;
    message.status = Status::Failed;
    message.updated_at = now().0;
    messages::update(&mut tx, &message).await?;
    audit::record(
        &mut tx,
        state,
        &message.tenant_id,
        ACTOR,
        "delivery_abandoned",
        Some(&message.id),
        json!({ "code": code }),
    )
    .await?;
    outbox::complete(&mut tx, &work.id, &state.node, now_ms()).await?;
    tx.commit().await.map_err(StoreError::from)?;
    metrics::counter!("ladder_delivery_outcomes_total", "outcome" => "failed", "container" => "-")
        .increment(1);
    Ok(())
}

/// Decides again — after a failure (with that step excluded) or for a
/// held message — and stores what follows.
async fn redecide(
    state: &AppState,
    work: &Work,
    mut message: Message,
    failure: Option<(FailedAttempt, String)>,
) -> Result<(), ApiError> {
    let mut tx = state.store.begin().await?;
    let inputs = load_inputs(&mut tx, state, &message.tenant_id, &message.recipient_id).await?;
    let thread = threads::get(
        &mut tx,
        state.store.dialect(),
        &message.tenant_id,
        &message.thread_id,
    )
    .await?
    .ok_or_else(|| ApiError::Internal(format!("thread of {} is missing", message.id)))?;
    let before = message.decision.outcome.route().and_then(|r| r.step);
    if let Some((f, code)) = &failure {
        message.failed.push(*f);
        metrics::counter!("ladder_fallbacks_total", "class" => message.class.clone(), "code" => code.clone())
            .increment(1);
    }
    let meta = MessageMeta {
        id: message.id.clone(),
        class: message.class.clone(),
        accepted_at: Timestamp(message.accepted_at),
        confirmation: None,
    };
    // Only ever down the same ladder: a route at or above the failed step
    // (possible only if evidence improved meanwhile) is excluded too.
    let mut decision = run_decision(&inputs, &meta, &thread.floor, &message.failed)?;
    let mut guard = 0;
    while let (Some(failed_step), Some(route)) = (
        failure.as_ref().and(before),
        decision.outcome.route().cloned(),
    ) {
        match route.step {
            Some(s) if s <= failed_step && guard < 16 => {
                message.failed.push(FailedAttempt {
                    step: Some(s),
                    channel: route.container.channel(),
                });
                decision = run_decision(&inputs, &meta, &thread.floor, &message.failed)?;
                guard += 1;
            }
            _ => break,
        }
    }
    let settled = settle(state, &message.id, &thread, &decision)?;
    if let Some((f, code)) = &failure {
        audit::record(
            &mut tx,
            state,
            &message.tenant_id,
            ACTOR,
            "fallback",
            Some(&message.id),
            json!({
                "failed_step": f.step,
                "failed_channel": f.channel,
                "reason": code,
                "next": decision.outcome.code(),
                "next_route": decision.outcome.route().map(|r| r.name()),
            }),
        )
        .await?;
    }
    audit_decision(
        &mut tx,
        state,
        &message.tenant_id,
        ACTOR,
        &inputs.recipient.recipient.pseudonym,
        &thread.id,
        &decision,
    )
    .await?;
    let mut updated = thread.clone();
    updated.floor = floor_after(&thread, &decision);
    updated.updated_at = now().0;
    threads::update(&mut tx, &updated).await?;
    // After a failure, a class that can go no lower ends as failed rather
    // than blocked: the sender was told 202 and must see why.
    message.status = match (settled.status, &failure) {
        (Status::Blocked, Some(_)) => Status::Failed,
        (s, _) => s,
    };
    message.decision = decision;
    message.confirmation_hash = settled.confirmation_hash;
    message.updated_at = now().0;
    messages::update(&mut tx, &message).await?;
    messages::add_event(
        &mut tx,
        &message.tenant_id,
        &message.id,
        &Event {
            at: now().0,
            kind: if failure.is_some() {
                "fallback"
            } else {
                "redecided"
            }
            .into(),
            detail: json!({
                "outcome": message.decision.outcome.code(),
                "route": message.decision.outcome.route().map(|r| r.name()),
                "reason": failure.as_ref().map(|(_, c)| c.clone()),
            }),
        },
    )
    .await?;
    if let Some((kind, due)) = settled.work {
        outbox::enqueue(&mut tx, &message.tenant_id, &message.id, kind, due).await?;
    }
    if matches!(message.status, Status::Failed | Status::Blocked) {
        keys::shred_in(
            &mut tx,
            state,
            &message.tenant_id,
            &message.id,
            "undeliverable",
            ACTOR,
        )
        .await?;
        metrics::counter!("ladder_delivery_outcomes_total", "outcome" => "failed", "container" => "-")
            .increment(1);
    }
    outbox::complete(&mut tx, &work.id, &state.node, now_ms()).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}
