//! After the hand-over: receipts from providers move a message from sent to
//! delivered and read, or — failed or expired — down its ladder; and an RCS
//! message not delivered in time is withdrawn before it falls back, so the
//! recipient never gets it twice.

use ladder_channels::webhook::{Receipt, ReceiptStatus};
use ladder_channels::{Dispatch, Revoked};
use ladder_core::decision::FailedAttempt;
use ladder_core::{Channel, Container, Outcome};
use ladder_store::messages::{self, Event, Message, Status};
use ladder_store::outbox::{self, Kind, Work};
use ladder_store::{StoreError, Tx, deliveries};
use serde_json::json;

use crate::service::deliver::{
    complete_and_commit, destination, finish, lock_unchanged, tenant_name,
};
use crate::service::error::ServiceError;
use crate::service::redecide::{Trigger, redecide};
use crate::service::{audit, stats};
use crate::state::{AppState, now, now_ms};

fn label(status: ReceiptStatus) -> &'static str {
    match status {
        ReceiptStatus::Delivered => "delivered",
        ReceiptStatus::Read => "read",
        ReceiptStatus::Failed => "failed",
        ReceiptStatus::Expired => "expired",
    }
}

/// What applying a webhook's receipts did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub applied: usize,
    /// Receipts for references not (yet) recorded: a receipt can outrun
    /// the bookkeeping of the hand-over it confirms, so the provider is
    /// asked to retry.
    pub unknown: usize,
}

/// Applies verified receipts for `tenant_id` on `channel`, each as its own
/// unit of the group commit (answered once durable). One receipt per unit
/// keeps the lock order of every other transaction (a message, then the
/// tenant's audit head): a webhook's receipts in one PostgreSQL
/// transaction would lock a second message while holding the head.
pub async fn apply(
    state: &AppState,
    tenant_id: &str,
    channel: Channel,
    receipts: &[Receipt],
) -> Result<Applied, ServiceError> {
    let mut total = Applied {
        applied: 0,
        unknown: 0,
    };
    for receipt in receipts {
        let (work_state, tenant, one) = (state.clone(), tenant_id.to_string(), receipt.clone());
        let receipted = state
            .commit
            .run(move |tx| {
                Box::pin(async move { apply_one(tx, &work_state, &tenant, channel, &one).await })
            })
            .await?;
        let status = match receipted {
            Receipted::Unknown => {
                total.unknown += 1;
                "unknown_ref"
            }
            Receipted::Orphaned => continue,
            Receipted::Applied { status, wake } => {
                if wake {
                    state.wake.one();
                }
                total.applied += 1;
                status
            }
        };
        metrics::counter!("ladder_receipts_total", "channel" => channel.to_string(), "status" => status).increment(1);
    }
    Ok(total)
}

/// What one receipt did, for what is counted once it is durable.
#[derive(Debug)]
enum Receipted {
    /// Its reference is not (yet) recorded.
    Unknown,
    /// Recorded on the delivery of a message that no longer exists.
    Orphaned,
    /// Applied with this status label; `wake` when fallback work is due now.
    Applied { status: &'static str, wake: bool },
}

/// One receipt's writes, inside its unit's transaction.
async fn apply_one(
    tx: &mut Tx,
    state: &AppState,
    tenant_id: &str,
    channel: Channel,
    r: &Receipt,
) -> Result<Receipted, ServiceError> {
    let Some(delivery) =
        deliveries::by_ref(tx, tenant_id, &channel.to_string(), &r.provider_ref).await?
    else {
        return Ok(Receipted::Unknown);
    };
    let status = label(r.status);
    deliveries::set_status(
        tx,
        tenant_id,
        &delivery.channel,
        &delivery.provider_ref,
        status,
        now().0,
    )
    .await?;
    let Some(mut message) =
        messages::get_for_update(tx, state.store.dialect(), tenant_id, &delivery.message_id)
            .await?
    else {
        return Ok(Receipted::Orphaned);
    };
    // The receipt concerns the route the message is on now; receipts of
    // an abandoned route are recorded but move nothing.
    let on_route = message
        .decision
        .outcome
        .route()
        .is_some_and(|route| route.container.channel() == channel);
    let next = match (r.status, message.status) {
        (ReceiptStatus::Delivered, Status::Sent) => Some(Status::Delivered),
        (ReceiptStatus::Read, Status::Sent | Status::Delivered) => Some(Status::Read),
        _ => None,
    };
    if let (Some(next), true) = (next, on_route) {
        message.status = next;
        message.updated_at = now().0;
        messages::update(tx, &message).await?;
    }
    // A notice that never arrived fails its route too: the recipient
    // was never told to look.
    let notice_of_route = message
        .decision
        .outcome
        .route()
        .and_then(|route| route.notifier)
        .is_some_and(|n| n.channel() == channel);
    if matches!(r.status, ReceiptStatus::Failed | ReceiptStatus::Expired) {
        stats::record_provider_failure(tx, tenant_id, &message.class, channel, None).await?;
    }
    let falls_back = matches!(r.status, ReceiptStatus::Failed | ReceiptStatus::Expired)
        && (on_route || notice_of_route)
        && message.status == Status::Sent;
    if falls_back {
        outbox::enqueue(tx, tenant_id, &message.id, Kind::ProviderFailed, now_ms()).await?;
    }
    messages::add_event(
        tx,
        tenant_id,
        &message.id,
        &Event {
            at: now().0,
            kind: format!("receipt_{status}"),
            detail: json!({ "channel": channel }),
        },
    )
    .await?;
    audit::record(
        tx,
        state,
        tenant_id,
        "provider",
        "delivery_receipt",
        Some(&message.id),
        json!({ "channel": channel, "status": status }),
    )
    .await?;
    Ok(Receipted::Applied {
        status,
        wake: falls_back,
    })
}

/// The provider reported the message failed or expired after accepting it.
pub async fn provider_failed(
    state: &AppState,
    work: &Work,
    message: Message,
) -> Result<(), ServiceError> {
    let Some(route) = message.decision.outcome.route().cloned() else {
        return finish(state, work).await;
    };
    if message.status != Status::Sent {
        return finish(state, work).await;
    }
    // The channel the provider reported on: the container's, or the
    // notifier's when it was the notice that failed.
    let reported = {
        hand_overs(state, &message)
            .await?
            .into_iter()
            .filter(|d| d.status == "failed" || d.status == "expired")
            .max_by_key(|d| d.updated_at)
            .and_then(|d| d.channel.parse::<Channel>().ok())
    };
    let failed = FailedAttempt {
        step: route.step,
        channel: reported.unwrap_or_else(|| route.container.channel()),
    };
    redecide(
        state,
        work,
        message,
        Trigger::Failure(failed, "provider_reported_failure".into()),
    )
    .await
}

/// The RCS delivery deadline: still not delivered → withdraw, then fall back.
pub async fn check_delivered(
    state: &AppState,
    work: &Work,
    message: Message,
) -> Result<(), ServiceError> {
    // Only for a message still on RCS: after a fallback the deadline of the
    // abandoned RCS step must not touch the route the message is on now.
    let route = match (&message.status, &message.decision.outcome) {
        (Status::Sent, Outcome::Deliver { route }) if route.container == Container::Rcs => {
            route.clone()
        }
        _ => return finish(state, work).await,
    };
    let channel = route.container.channel();
    let rows = {
        hand_overs(state, &message)
            .await?
            .into_iter()
            .filter(|d| d.channel == channel.to_string())
            .collect::<Vec<_>>()
    };
    // A receipt may have been recorded on the delivery but not yet on the
    // message: delivered is delivered.
    if rows
        .iter()
        .any(|d| d.status == "delivered" || d.status == "read")
    {
        return finish(state, work).await;
    }
    let held: Vec<_> = rows
        .into_iter()
        .filter(|d| d.status == "accepted")
        .collect();
    if held.is_empty() {
        return finish(state, work).await;
    }
    let tenant = tenant_name(state, &message.tenant_id).await?;
    let Some(adapter) = state.channels.for_tenant(&tenant, channel) else {
        return finish(state, work).await;
    };
    let to = destination(state, &message).await?;
    let mut withdrawn = true;
    for d in &held {
        let dispatch = withdrawal(&message, channel, d, &to);
        let revoked = {
            let _slot = state.provider_slots.acquire(channel).await?;
            adapter.revoke(&dispatch, &d.provider_ref).await
        };
        match revoked {
            Ok(Revoked::Revoked) => {
                let mut conn = state
                    .store
                    .pool()
                    .acquire()
                    .await
                    .map_err(StoreError::from)?;
                deliveries::set_status(
                    &mut conn,
                    &message.tenant_id,
                    &d.channel,
                    &d.provider_ref,
                    "revoked",
                    now().0,
                )
                .await?;
            }
            Ok(Revoked::AlreadyDelivered) => withdrawn = false,
            // Cannot withdraw: falling back would show it twice. Stay.
            Ok(Revoked::Unsupported) => return finish(state, work).await,
            // The provider did not answer: try the withdrawal again later.
            Err(e) => {
                let attempts = work.attempts + 1;
                let mut conn = state
                    .store
                    .pool()
                    .acquire()
                    .await
                    .map_err(StoreError::from)?;
                if attempts >= state.config.delivery.max_attempts {
                    outbox::complete(&mut conn, &work.id, &state.node, now_ms()).await?;
                } else {
                    let delay = crate::service::deliver::backoff(&state.config.delivery, attempts);
                    outbox::retry(
                        &mut conn,
                        &work.id,
                        &state.node,
                        attempts,
                        now_ms() + delay,
                        &e.to_string(),
                    )
                    .await?;
                }
                return Ok(());
            }
        }
    }
    if !withdrawn {
        let mut tx = state.store.begin().await?;
        if let Some(mut m) = lock_unchanged(&mut tx, state, &message).await? {
            m.status = Status::Delivered;
            m.updated_at = now().0;
            messages::update(&mut tx, &m).await?;
        }
        return complete_and_commit(tx, state, work).await;
    }
    let failed = FailedAttempt {
        step: route.step,
        channel,
    };
    redecide(
        state,
        work,
        message,
        Trigger::Failure(failed, "not_delivered_in_time".into()),
    )
    .await
}

/// The sender revoked the message: every hand-over a provider still holds
/// undelivered is withdrawn (each audited); what was delivered stays
/// delivered, and says so in the audit log.
pub async fn withdraw(state: &AppState, work: &Work, message: Message) -> Result<(), ServiceError> {
    let held = {
        hand_overs(state, &message)
            .await?
            .into_iter()
            .filter(|d| d.status == "accepted")
            .collect::<Vec<_>>()
    };
    let tenant = tenant_name(state, &message.tenant_id).await?;
    let to = destination(state, &message).await?;
    for d in held {
        let Ok(channel) = d.channel.parse::<Channel>() else {
            continue;
        };
        let Some(adapter) = state.channels.for_tenant(&tenant, channel) else {
            continue;
        };
        let dispatch = withdrawal(&message, channel, &d, &to);
        let revoked = {
            let _slot = state.provider_slots.acquire(channel).await?;
            adapter.revoke(&dispatch, &d.provider_ref).await
        };
        let outcome = match revoked {
            Ok(Revoked::Revoked) => "withdrawn",
            Ok(Revoked::AlreadyDelivered) => "already_delivered",
            Ok(Revoked::Unsupported) => "cannot_withdraw",
            Err(_) => "withdraw_failed",
        };
        let mut tx = state.store.begin().await?;
        if outcome == "withdrawn" {
            deliveries::set_status(
                &mut tx,
                &message.tenant_id,
                &d.channel,
                &d.provider_ref,
                "revoked",
                now().0,
            )
            .await?;
        }
        audit::record(
            &mut tx,
            state,
            &message.tenant_id,
            "worker",
            "provider_withdrawal",
            Some(&message.id),
            json!({ "channel": channel, "outcome": outcome }),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
    }
    finish(state, work).await
}

/// What identifies a hand-over to its provider for a withdrawal: the same
/// idempotency key and destination, no content.
fn withdrawal(
    message: &Message,
    channel: Channel,
    d: &deliveries::Delivery,
    to: &ladder_channels::Destination,
) -> Dispatch {
    Dispatch {
        tenant_id: message.tenant_id.clone(),
        message_id: message.id.clone(),
        recipient_id: message.recipient_id.clone(),
        thread_id: message.thread_id.clone(),
        channel,
        idempotency_key: d.idempotency_key.clone(),
        content: ladder_channels::Content::Notice(String::new()),
        to: to.clone(),
        assurance: message
            .decision
            .outcome
            .route()
            .map_or(ladder_core::AssuranceLevel::None, |r| r.assurance),
        expires_at: message.expires_at,
        handed_over_ms: d.created_at.saturating_mul(1000),
    }
}

/// Every hand-over of a message, as the providers accepted them.
async fn hand_overs(
    state: &AppState,
    message: &Message,
) -> Result<Vec<deliveries::Delivery>, ServiceError> {
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    Ok(deliveries::of_message(&mut conn, &message.tenant_id, &message.id).await?)
}
