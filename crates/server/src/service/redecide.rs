//! Deciding again for a message already accepted: after a delivery failure
//! (with the failed step excluded), when its route stopped qualifying before
//! it left, or when a held message is due for another look.
//!
//! After a failure the new route is only ever further down the same ladder:
//! the core excludes the failed (step, channel), and a guard here also
//! excludes, for this decision only, anything at or above the failed step
//! (possible only if evidence improved meanwhile). Nothing is ever chosen
//! below the class minimum — the core's on-exhausted outcome applies
//! instead, and a message that can go nowhere fails with its payload
//! destroyed. Every re-decision is audited with its reason.

use ladder_core::decision::FailedAttempt;
use ladder_core::{Decision, MessageMeta, ThreadFloor, Timestamp};
use ladder_store::messages::{self, Event, Message, Status};
use ladder_store::outbox::{self, Work};
use ladder_store::threads;
use serde_json::json;

use crate::service::deliver::{
    ACTOR, complete_and_commit, confirmation_of, fail_for_good, lock_unchanged,
};
use crate::service::error::ServiceError;
use crate::service::send::{
    Inputs, audit_decision, count_decision, floor_after, load_inputs, run_decision, settle,
};
use crate::service::{audit, keys, stats};
use crate::state::{AppState, now};

/// Why a message is decided again.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// A held message's periodic look.
    Recheck,
    /// The accepted route no longer qualifies (override, revocation, expiry).
    RouteNoLongerQualifies,
    /// The provider failed for good on this (step, channel), with a code.
    Failure(FailedAttempt, String),
}

impl Trigger {
    fn code(&self) -> &str {
        match self {
            Trigger::Recheck => "recheck",
            Trigger::RouteNoLongerQualifies => "route_no_longer_qualifies",
            Trigger::Failure(_, code) => code,
        }
    }
}

/// Decides for a message that has failed before: the failed (step,
/// channel)s are excluded by the core, and — for this decision only, so the
/// record keeps real failures apart — every step at or above the lowest
/// failed step too. `None` when the guard cannot settle (never expected:
/// each round excludes one more step).
pub(crate) fn decide_after_failures(
    inputs: &Inputs,
    meta: &MessageMeta,
    floor: &ThreadFloor,
    failed: &[FailedAttempt],
) -> Result<Option<Decision>, ServiceError> {
    let below = failed.iter().filter_map(|f| f.step).max();
    let mut excluded = failed.to_vec();
    let mut decision = run_decision(inputs, meta, floor, &excluded)?;
    let Some(below) = below else {
        return Ok(Some(decision));
    };
    for _ in 0..16 {
        match decision.outcome.route().cloned() {
            Some(route) if route.step.is_some_and(|s| s <= below) => {
                excluded.push(FailedAttempt {
                    step: route.step,
                    channel: route.container.channel(),
                });
                decision = run_decision(inputs, meta, floor, &excluded)?;
            }
            _ => return Ok(Some(decision)),
        }
    }
    Ok(None)
}

/// The RCS provider's capability check said the recipient cannot get RCS
/// (unreachable, or a feature missing): that observation becomes evidence on
/// each of the recipient's active devices, so later decisions skip RCS for
/// them until a newer report says otherwise. A provider check proves
/// reachability at most, never encryption.
async fn record_rcs_unreachable(
    tx: &mut ladder_store::Tx,
    state: &AppState,
    message: &ladder_store::messages::Message,
    code: &str,
) -> Result<(), ServiceError> {
    use ladder_core::assurance::{E2eeState, EvidenceSource};
    use ladder_core::evidence::TransportEvidence;
    let at = now();
    for mut device in
        ladder_store::recipients::devices_of(tx, &message.tenant_id, &message.recipient_id).await?
    {
        if device.evidence.is_revoked() {
            continue;
        }
        device.evidence.transports.insert(
            ladder_core::Transport::Rcs,
            TransportEvidence {
                reachable: false,
                e2ee: E2eeState::Unknown,
                attested: false,
                source: EvidenceSource::ProviderCheck,
                observed_at: at,
                client: None,
            },
        );
        ladder_store::recipients::update_device(tx, &device).await?;
        audit::record(
            tx,
            state,
            &message.tenant_id,
            ACTOR,
            "capability_observed",
            Some(&device.id),
            json!({ "transport": "rcs", "reachable": false, "source": "provider_check", "code": code }),
        )
        .await?;
    }
    Ok(())
}

pub async fn redecide(
    state: &AppState,
    work: &Work,
    message: Message,
    trigger: Trigger,
) -> Result<(), ServiceError> {
    let mut tx = state.store.begin().await?;
    let Some(mut message) = lock_unchanged(&mut tx, state, &message).await? else {
        return complete_and_commit(tx, state, work).await;
    };
    if let Trigger::Failure(f, code) = &trigger
        && f.channel == ladder_core::Channel::Rcs
        && matches!(code.as_str(), "rcs_unreachable" | "rcs_feature_missing")
    {
        record_rcs_unreachable(&mut tx, state, &message, code).await?;
    }
    let inputs = load_inputs(&mut tx, state, &message.tenant_id, &message.recipient_id).await?;
    let thread = threads::get_for_update(
        &mut tx,
        state.store.dialect(),
        &message.tenant_id,
        &message.thread_id,
    )
    .await?
    .ok_or_else(|| ServiceError::Internal(format!("thread of {} is missing", message.id)))?;
    if let Trigger::Failure(f, code) = &trigger {
        message.failed.push(*f);
        metrics::counter!("ladder_fallbacks_total", "class" => message.class.clone(), "code" => code.clone())
            .increment(1);
    }
    let meta = MessageMeta {
        id: message.id.clone(),
        class: message.class.clone(),
        accepted_at: Timestamp(message.accepted_at),
        confirmation: match trigger {
            Trigger::Failure(..) => None,
            _ => confirmation_of(&message),
        },
    };
    let decision = match decide_after_failures(&inputs, &meta, &thread.floor, &message.failed) {
        Ok(Some(d)) => d,
        Ok(None) => {
            drop(tx);
            return fail_for_good(state, work, &message, "no_route_below_failure").await;
        }
        Err(ServiceError::Invalid {
            code: "unknown_class",
            ..
        }) => {
            drop(tx);
            return fail_for_good(state, work, &message, "class_not_in_active_policy").await;
        }
        Err(e) => return Err(e),
    };
    count_decision(&decision);
    let settled = settle(state, &message.id, &thread, &decision)?;
    audit::record(
        &mut tx,
        state,
        &message.tenant_id,
        ACTOR,
        match trigger {
            Trigger::Failure(..) => "fallback",
            _ => "redecided",
        },
        Some(&message.id),
        json!({
            "reason": trigger.code(),
            "failed_step": match &trigger { Trigger::Failure(f, _) => json!(f.step), _ => json!(null) },
            "failed_channel": match &trigger { Trigger::Failure(f, _) => json!(f.channel), _ => json!(null) },
            "next": decision.outcome.code(),
            "next_route": decision.outcome.route().map(|r| r.name()),
        }),
    )
    .await?;
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
    stats::record_decision(&mut tx, &message.tenant_id, &decision).await?;
    if let Trigger::Failure(f, code) = &trigger {
        stats::record_fallback(&mut tx, &message.tenant_id, f.channel, code, &decision).await?;
    }
    let mut updated = thread.clone();
    updated.floor = floor_after(&thread, &decision);
    updated.updated_at = now().0;
    threads::update(&mut tx, &updated).await?;
    // After a failure, a class that can go no lower ends as failed rather
    // than blocked: the sender was told 202 and must see why.
    message.status = match (settled.status, &trigger) {
        (Status::Blocked, Trigger::Failure(..)) => Status::Failed,
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
            kind: match trigger {
                Trigger::Failure(..) => "fallback",
                _ => "redecided",
            }
            .into(),
            detail: json!({
                "outcome": message.decision.outcome.code(),
                "route": message.decision.outcome.route().map(|r| r.name()),
                "reason": trigger.code(),
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
    complete_and_commit(tx, state, work)
        .await
        .map_err(|e| match e {
            ServiceError::Internal(s) => {
                ServiceError::Internal(format!("re-deciding {}: {s}", message.id))
            }
            other => other,
        })?;
    if let Some((_, due)) = settled.work {
        state.wake.work_due(due);
    }
    Ok(())
}
