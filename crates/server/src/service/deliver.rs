//! Delivering one piece of outbox work: hand the payload to the decided
//! container and the notice to its notifier, through the channel adapters.
//!
//! Before anything leaves, the decision is checked against the evidence,
//! overrides and floor *now*: a route that no longer qualifies (an override
//! set since acceptance, a device revoked) is never used — the message is
//! re-decided instead ([`super::redecide`]). A transient failure is retried
//! with exponential backoff and jitter; a permanent failure, a timeout or
//! exhausted retries re-decide with the failed (step, channel) excluded.
//!
//! Provider calls happen outside any transaction (SQLite has one
//! connection; nothing should wait on a provider holding it), each within
//! a slot of its channel (`crate::slots`, `delivery.concurrency`): the
//! worker runs the items it claimed concurrently. A node can
//! therefore die between a provider call and its bookkeeping; the work is
//! then claimed again and the call made again. So everything a hand-over
//! carries is fixed per (message, step, channel) before the first call
//! (`service/handover.rs`): the hand-over record and its start time, the
//! provider idempotency key (and the e-mail Message-ID derived from it),
//! the portal link issued once per (message, step), the notice rendered
//! from them. The retry is the reconciliation: it resends the identical
//! hand-over, and a provider that already has it — RCS (`messageId`), SMS
//! (`Idempotency-Key`), the in-app inbox (one row per device and message)
//! — keeps the original and shows the recipient nothing new. SMTP and push
//! (APNs, FCM) cannot deduplicate: the recipient may get a second,
//! byte-identical copy (an e-mail with the same Message-ID, which mail
//! clients collapse; a content-free wake-up), never a different one.
//!
//! Bookkeeping re-reads the message under a lock and changes nothing if
//! it moved meanwhile (revoked, re-decided), or if this worker's lease on
//! the work was lost.

use std::time::Duration;

use ladder_channels::{
    Content, DeliveryError, Destination, DeviceTarget, Dispatch, PushPlatform, PushTarget,
};
use ladder_core::decision::{Confirmation, FailedAttempt, Note, Route};
use ladder_core::{Channel, Container, MessageMeta, Outcome, Timestamp};
use ladder_store::messages::{self, Event, Message, Status};
use ladder_store::outbox::{self, Kind, Work};
use ladder_store::{StoreError, Tx, deliveries, recipients, threads};
use serde_json::json;

use crate::service::devices::open_contact;
use crate::service::error::ServiceError;
use crate::service::handover::{begin_handover, idempotency_key, notice_text};
use crate::service::redecide::{Trigger, decide_after_failures, redecide};
use crate::service::send::load_inputs;
use crate::service::{audit, keys, stats};
use crate::state::{AppState, now, now_ms};

pub(crate) const ACTOR: &str = "worker";

/// How one provider call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attempt {
    Accepted {
        duplicate: bool,
        provider_ref: String,
        idempotency_key: String,
    },
    Transient(String),
    /// Permanent failure or timeout: re-decide without this channel.
    Failed(String),
}

/// Runs one claimed work item to its next resting state.
pub async fn run(state: &AppState, work: &Work) -> Result<(), ServiceError> {
    let message = {
        let mut conn = state.store.read().await?;
        messages::get(&mut conn, &work.tenant_id, &work.message_id).await?
    };
    let Some(message) = message else {
        return finish(state, work).await;
    };
    // Revoked is final: work queued before the revocation (a hold's
    // re-check, a delivery) does nothing; only the withdrawal it queued
    // runs. (A revocation that lands while this work runs is caught by
    // `lock_unchanged` before anything is written.)
    if message.status == Status::Revoked && work.kind != Kind::Withdraw {
        return finish(state, work).await;
    }
    match work.kind {
        Kind::Redecide => redecide(state, work, message, Trigger::Recheck).await,
        Kind::Deliver => deliver(state, work, message).await,
        Kind::CheckDelivered => super::receipts::check_delivered(state, work, message).await,
        Kind::ProviderFailed => super::receipts::provider_failed(state, work, message).await,
        Kind::Withdraw => super::receipts::withdraw(state, work, message).await,
    }
}

/// Marks the work done: nothing (more) to do for it.
pub(crate) async fn finish(state: &AppState, work: &Work) -> Result<(), ServiceError> {
    let (id, node) = (work.id.clone(), state.node.clone());
    state
        .commit
        .run(move |tx| {
            Box::pin(async move {
                outbox::complete(tx, &id, &node, now_ms()).await?;
                Ok::<(), ServiceError>(())
            })
        })
        .await
}

/// The confirmation a message carries, reconstructed from its decision: a
/// confirmed message is re-checked as confirmed.
pub(crate) fn confirmation_of(message: &Message) -> Option<Confirmation> {
    let route = message.decision.outcome.route()?;
    message.decision.notes.iter().find_map(|n| match n {
        Note::ConfirmationAccepted { assurance } => Some(Confirmation {
            message_id: message.id.clone(),
            container: route.container,
            assurance: *assurance,
        }),
        _ => None,
    })
}

/// Whether `route` still qualifies now: the decision taken with today's
/// evidence, overrides and floor picks the very same route.
async fn still_qualifies(
    state: &AppState,
    message: &Message,
    route: &Route,
) -> Result<bool, ServiceError> {
    // One snapshot of committed state, read beside the writer.
    let mut tx = state.store.begin_read().await?;
    let inputs = load_inputs(&mut tx, state, &message.tenant_id, &message.recipient_id).await?;
    let Some(thread) = threads::get(&mut tx, &message.tenant_id, &message.thread_id).await? else {
        return Ok(false);
    };
    drop(tx);
    let meta = MessageMeta {
        id: message.id.clone(),
        class: message.class.clone(),
        accepted_at: Timestamp(message.accepted_at),
        confirmation: confirmation_of(message),
    };
    // A route an operator chose from the escalation queue stands while the
    // core still permits it, though a step above it may qualify too.
    if message
        .decision
        .notes
        .iter()
        .any(|n| matches!(n, Note::OperatorChoseRoute { .. }))
    {
        let now_permitted = super::escalations::permit(
            &inputs,
            &meta,
            &thread.floor,
            &message.failed,
            &route.name(),
        )?;
        return Ok(now_permitted.is_ok_and(|r| r == *route));
    }
    let fresh = decide_after_failures(&inputs, &meta, &thread.floor, &message.failed)?;
    // A route stored before routes named their second factor is the same
    // route whatever factor today's decision names for it.
    let same = |r: &Route| {
        r == route
            || (route.second_factor.is_none()
                && Route {
                    second_factor: None,
                    ..r.clone()
                } == *route)
    };
    Ok(matches!(fresh.map(|d| d.outcome), Some(Outcome::Deliver { route: r }) if same(&r)))
}

async fn deliver(state: &AppState, work: &Work, message: Message) -> Result<(), ServiceError> {
    let route = match (&message.status, &message.decision.outcome) {
        (Status::Queued, Outcome::Deliver { route }) => route.clone(),
        // Superseded (re-decided, confirmed elsewhere, revoked): nothing to do.
        _ => return finish(state, work).await,
    };
    if !still_qualifies(state, &message, &route).await? {
        return redecide(state, work, message, Trigger::RouteNoLongerQualifies).await;
    }
    // The payload, opened only now and only for a container that carries
    // it; a portal notice is sent only while the payload still exists.
    let payload = match open_payload(state, &message).await? {
        Some(p) => p,
        None => return fail_for_good(state, work, &message, "payload_shredded").await,
    };
    // Each hand-over is recorded before its first provider call, and what
    // it carries is fixed from that record: a retry after a crash sends
    // the same thing again under the same idempotency key.
    let mut sends: Vec<(Channel, Content, i64)> = Vec::new();
    let mut resumed: Vec<Channel> = Vec::new();
    if route.container != Container::Portal {
        let channel = route.container.channel();
        let started = begin_handover(state, &message, &route, channel, &mut resumed).await?;
        sends.push((channel, Content::Payload(payload), started));
    }
    if let Some(n) = route.notifier {
        let channel = n.channel();
        let started = begin_handover(state, &message, &route, channel, &mut resumed).await?;
        let text = notice_text(state, &message, &route, started).await?;
        sends.push((channel, Content::Notice(text), started));
    }
    let timeout = Duration::from_millis(state.config.delivery.timeout_ms);
    let tenant = tenant_name(state, &message.tenant_id).await?;
    let to = destination(state, &message).await?;
    let mut results = Vec::new();
    for (channel, content, handed_over_ms) in sends {
        let dispatch = Dispatch {
            tenant_id: message.tenant_id.clone(),
            message_id: message.id.clone(),
            recipient_id: message.recipient_id.clone(),
            thread_id: message.thread_id.clone(),
            channel,
            idempotency_key: idempotency_key(&message.id, &route, channel),
            content,
            to: to.clone(),
            assurance: route.assurance,
            expires_at: message.expires_at,
            handed_over_ms,
        };
        let attempt = match state.channels.for_tenant(&tenant, channel) {
            None => Attempt::Failed("channel_not_configured".into()),
            Some(adapter) => {
                // The channel's slot first; the timeout is the call's own.
                let _slot = state.provider_slots.acquire(channel).await?;
                match tokio::time::timeout(timeout, adapter.send(&dispatch)).await {
                    Err(_) => Attempt::Failed("timeout".into()),
                    Ok(Ok(a)) => Attempt::Accepted {
                        duplicate: a.duplicate,
                        provider_ref: a.provider_ref,
                        idempotency_key: dispatch.idempotency_key.clone(),
                    },
                    Ok(Err(DeliveryError::Transient { code })) => Attempt::Transient(code),
                    Ok(Err(DeliveryError::Permanent { code })) => Attempt::Failed(code),
                }
            }
        };
        let label = match &attempt {
            Attempt::Accepted { .. } => "accepted",
            Attempt::Transient(_) => "transient",
            Attempt::Failed(_) => "failed",
        };
        metrics::counter!("ladder_delivery_attempts_total", "channel" => channel.to_string(), "outcome" => label)
            .increment(1);
        let stop = !matches!(attempt, Attempt::Accepted { .. });
        results.push((channel, attempt));
        if stop {
            break;
        }
    }
    record_attempts(state, &message, &route, work, &results, &resumed).await?;
    // The container took the payload and only its notifier failed: the
    // message is with the recipient (a push is a wake-up, not the message),
    // so it is not sent a second time down the ladder.
    let container_took_it = route.container != Container::Portal
        && matches!(results.first(), Some((_, Attempt::Accepted { .. })));
    if container_took_it && results.len() > 1 {
        return delivered(state, work, &message, &route).await;
    }
    match results.last() {
        None | Some((_, Attempt::Accepted { .. })) => {
            delivered(state, work, &message, &route).await
        }
        Some((channel, Attempt::Transient(code))) => {
            let attempts = work.attempts + 1;
            if attempts >= state.config.delivery.max_attempts {
                let failed = FailedAttempt {
                    step: route.step,
                    channel: *channel,
                };
                redecide(
                    state,
                    work,
                    message,
                    Trigger::Failure(failed, "retries_exhausted".into()),
                )
                .await
            } else {
                let due = now_ms() + backoff(&state.config.delivery, attempts);
                let (id, node, code) = (work.id.clone(), state.node.clone(), code.clone());
                state
                    .commit
                    .run(move |tx| {
                        Box::pin(async move {
                            outbox::retry(tx, &id, &node, attempts, due, &code).await?;
                            Ok::<(), ServiceError>(())
                        })
                    })
                    .await
            }
        }
        Some((channel, Attempt::Failed(code))) => {
            let failed = FailedAttempt {
                step: route.step,
                channel: *channel,
            };
            redecide(state, work, message, Trigger::Failure(failed, code.clone())).await
        }
    }
}

/// The tenant's name: per-tenant provider accounts are configured by name.
pub(crate) async fn tenant_name(state: &AppState, tenant_id: &str) -> Result<String, ServiceError> {
    let mut conn = state.store.read().await?;
    Ok(ladder_store::tenants::get(&mut conn, tenant_id)
        .await?
        .map(|t| t.name)
        .unwrap_or_default())
}

/// The recipient's addresses (opened from their sealed contact) and active
/// devices, for the hand-over only.
pub(crate) async fn destination(
    state: &AppState,
    message: &Message,
) -> Result<Destination, ServiceError> {
    let (recipient, devices) = {
        let mut conn = state.store.read().await?;
        let r = recipients::get(&mut conn, &message.tenant_id, &message.recipient_id)
            .await?
            .ok_or_else(|| {
                ServiceError::Internal(format!("recipient of {} is missing", message.id))
            })?;
        let d =
            recipients::devices_of(&mut conn, &message.tenant_id, &message.recipient_id).await?;
        (r, d)
    };
    let contact = open_contact(state, &message.tenant_id, &recipient)?;
    Ok(Destination {
        phone: contact.phone,
        email: contact.email,
        devices: devices
            .into_iter()
            .filter(|d| !d.evidence.is_revoked())
            .map(|d| DeviceTarget {
                id: d.id,
                agreement_key: d.agreement_key,
                push: d.push.and_then(|(platform, token)| {
                    let platform = match platform.as_str() {
                        "apns" => PushPlatform::Apns,
                        "fcm" => PushPlatform::Fcm,
                        _ => return None,
                    };
                    Some(PushTarget { platform, token })
                }),
            })
            .collect(),
    })
}

/// Exponential backoff with equal jitter: a random delay between half of
/// `base * 2^attempts` and all of it, capped at the configured maximum.
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
) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, ServiceError> {
    let stored = {
        let mut conn = state.store.read().await?;
        messages::payload(&mut conn, &message.tenant_id, &message.id).await?
    };
    match stored {
        Some(p) => super::open_payload(state, &message.tenant_id, &message.id, p),
        None => Ok(None),
    }
}

/// Records what each provider call of this attempt did, as one unit of
/// the group commit.
async fn record_attempts(
    state: &AppState,
    message: &Message,
    route: &Route,
    work: &Work,
    results: &[(Channel, Attempt)],
    resumed: &[Channel],
) -> Result<(), ServiceError> {
    let attempt = RecordedAttempt {
        state: state.clone(),
        message: message.clone(),
        route: route.clone(),
        attempts: work.attempts + 1,
        results: results.to_vec(),
        resumed: resumed.to_vec(),
    };
    state
        .commit
        .run(move |tx| Box::pin(async move { attempt.record(tx).await }))
        .await
}

/// One attempt's provider calls, owned for the committer.
#[derive(Debug)]
struct RecordedAttempt {
    state: AppState,
    message: Message,
    route: Route,
    /// This attempt's number (1 for the first).
    attempts: i64,
    results: Vec<(Channel, Attempt)>,
    resumed: Vec<Channel>,
}

impl RecordedAttempt {
    async fn record(&self, tx: &mut Tx) -> Result<(), ServiceError> {
        let RecordedAttempt {
            state,
            message,
            route,
            attempts,
            results,
            resumed,
        } = self;
        for (channel, attempt) in results {
            let (outcome, code, duplicate) = match attempt {
                Attempt::Accepted {
                    duplicate,
                    provider_ref,
                    idempotency_key,
                } => {
                    deliveries::record(
                        tx,
                        &deliveries::Delivery {
                            tenant_id: message.tenant_id.clone(),
                            message_id: message.id.clone(),
                            channel: channel.to_string(),
                            provider_ref: provider_ref.clone(),
                            idempotency_key: idempotency_key.clone(),
                            status: "accepted".into(),
                            created_at: now().0,
                            updated_at: now().0,
                        },
                    )
                    .await?;
                    ("accepted", None, *duplicate)
                }
                Attempt::Transient(c) => {
                    stats::record_provider_failure(
                        tx,
                        &message.tenant_id,
                        &message.class,
                        *channel,
                        Some(c),
                    )
                    .await?;
                    ("transient_failure", Some(c.as_str()), false)
                }
                Attempt::Failed(c) => {
                    stats::record_provider_failure(
                        tx,
                        &message.tenant_id,
                        &message.class,
                        *channel,
                        None,
                    )
                    .await?;
                    ("permanent_failure", Some(c.as_str()), false)
                }
            };
            let detail = json!({
                "route": route.name(),
                "step": route.step,
                "channel": channel,
                "attempt": attempts,
                "outcome": outcome,
                "code": code,
                "provider_duplicate": duplicate,
                "resumed_handover": resumed.contains(channel),
            });
            messages::add_event(
                tx,
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
                tx,
                state,
                &message.tenant_id,
                ACTOR,
                "delivery_attempt",
                Some(&message.id),
                detail,
            )
            .await?;
        }
        Ok(())
    }
}

/// Re-reads the message under a lock; `None` if it moved on since this work
/// began (revoked, re-decided, confirmed elsewhere).
pub(crate) async fn lock_unchanged(
    tx: &mut Tx,
    state: &AppState,
    message: &Message,
) -> Result<Option<Message>, ServiceError> {
    let current =
        messages::get_for_update(tx, state.store.dialect(), &message.tenant_id, &message.id)
            .await?;
    Ok(current.filter(|m| m.status == message.status && m.decision == message.decision))
}

/// Marks the work done inside `tx` and commits; rolls back instead when the
/// lease was lost (another worker owns the work now).
pub(crate) async fn complete_and_commit(
    mut tx: Tx,
    state: &AppState,
    work: &Work,
) -> Result<(), ServiceError> {
    if complete_in(&mut tx, state, work).await? {
        tx.commit().await.map_err(StoreError::from)?;
    }
    Ok(())
}

async fn delivered(
    state: &AppState,
    work: &Work,
    message: &Message,
    route: &Route,
) -> Result<(), ServiceError> {
    let (s, w, m, r) = (state.clone(), work.clone(), message.clone(), route.clone());
    let sent = state
        .commit
        .run(move |tx| Box::pin(async move { delivered_in(tx, &s, &w, &m, &r).await }))
        .await?;
    if sent {
        metrics::counter!("ladder_delivery_outcomes_total", "outcome" => "sent", "container" => route.container.to_string())
            .increment(1);
    }
    Ok(())
}

/// Marks `work` done inside `tx`; `false` when its lease was lost (another
/// worker owns it now), and nothing may be written for it.
async fn complete_in(tx: &mut Tx, state: &AppState, work: &Work) -> Result<bool, ServiceError> {
    let owned = outbox::complete(tx, &work.id, &state.node, now_ms()).await?;
    if !owned {
        tracing::warn!(work = %work.id, "lease lost before bookkeeping; leaving it to the new owner");
    }
    Ok(owned)
}

/// Marks `work` done and returns the message locked as it was when the
/// work began; `None` when there is nothing more to write for it: the
/// lease was lost (nothing is written at all), or the message moved on
/// (revoked, re-decided, confirmed elsewhere; the work is done).
async fn settle_work(
    tx: &mut Tx,
    state: &AppState,
    work: &Work,
    message: &Message,
) -> Result<Option<Message>, ServiceError> {
    let unchanged = lock_unchanged(tx, state, message).await?;
    if !complete_in(tx, state, work).await? {
        return Ok(None);
    }
    Ok(unchanged)
}

/// The delivery's bookkeeping; whether the message was marked sent.
async fn delivered_in(
    tx: &mut Tx,
    state: &AppState,
    work: &Work,
    message: &Message,
    route: &Route,
) -> Result<bool, ServiceError> {
    let Some(mut message) = settle_work(tx, state, work, message).await? else {
        return Ok(false);
    };
    message.status = Status::Sent;
    message.updated_at = now().0;
    messages::update(tx, &message).await?;
    // What the recipient was last shown: the thread's label, for the
    // downgrade check of the next message.
    if let Some(mut thread) = threads::get_for_update(
        tx,
        state.store.dialect(),
        &message.tenant_id,
        &message.thread_id,
    )
    .await?
    {
        thread.floor.label = Some(route.assurance);
        thread.updated_at = now().0;
        threads::update(tx, &thread).await?;
    }
    if route.container == Container::InApp {
        keys::drop_server_copy(tx, state, &message.tenant_id, &message.id, ACTOR).await?;
    }
    messages::add_event(
        tx,
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
        tx,
        state,
        &message.tenant_id,
        ACTOR,
        "delivered",
        Some(&message.id),
        json!({ "route": route.name(), "assurance": route.assurance }),
    )
    .await?;
    // RCS is delivered when the provider says so: if it has not within the
    // deadline, the message is withdrawn and falls back.
    if let (Container::Rcs, Some(secs)) = (
        route.container,
        state.config.channels.rcs_delivery_timeout_s,
    ) {
        let due =
            now_ms().saturating_add(i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX));
        outbox::enqueue(
            tx,
            &message.tenant_id,
            &message.id,
            Kind::CheckDelivered,
            due,
        )
        .await?;
    }
    Ok(true)
}

/// Ends a message that can never be delivered: failed, payload destroyed,
/// audited with why.
pub(crate) async fn fail_for_good(
    state: &AppState,
    work: &Work,
    message: &Message,
    code: &str,
) -> Result<(), ServiceError> {
    let (s, w, m, c) = (
        state.clone(),
        work.clone(),
        message.clone(),
        code.to_string(),
    );
    let failed = state
        .commit
        .run(move |tx| Box::pin(async move { fail_for_good_in(tx, &s, &w, &m, &c).await }))
        .await?;
    if failed {
        metrics::counter!("ladder_delivery_outcomes_total", "outcome" => "failed", "container" => "-")
            .increment(1);
    }
    Ok(())
}

/// The bookkeeping of [`fail_for_good`]; whether the message was failed.
async fn fail_for_good_in(
    tx: &mut Tx,
    state: &AppState,
    work: &Work,
    message: &Message,
    code: &str,
) -> Result<bool, ServiceError> {
    let Some(mut message) = settle_work(tx, state, work, message).await? else {
        return Ok(false);
    };
    message.status = Status::Failed;
    message.updated_at = now().0;
    messages::update(tx, &message).await?;
    audit::record(
        tx,
        state,
        &message.tenant_id,
        ACTOR,
        "delivery_abandoned",
        Some(&message.id),
        json!({ "code": code }),
    )
    .await?;
    keys::shred_in(
        tx,
        state,
        &message.tenant_id,
        &message.id,
        "undeliverable",
        ACTOR,
    )
    .await?;
    Ok(true)
}
