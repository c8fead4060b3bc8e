//! Confirming a downgrade: the sender accepts, with the one-time token
//! bound to the message, the lower route it was shown. The message is then
//! decided again with that confirmation — which covers that container at
//! that level or better, nothing else — and goes on its way.

use ladder_core::decision::Confirmation;
use ladder_core::{MessageMeta, Outcome};
use ladder_store::messages::{self, Status};
use ladder_store::outbox;
use ladder_store::stats::Metric;
use ladder_store::{StoreError, ids, threads};
use serde_json::json;

use crate::service::error::ServiceError;
use crate::service::send::{Answer, audit_decision, floor_after, load_inputs, settle};
use crate::service::{audit, keys, stats};
use crate::state::{AppState, now};

/// `POST /v1/messages/{id}/confirm`: the sender accepts the downgrade it
/// was shown, with the one-time token bound to this message.
pub async fn confirm(
    state: &AppState,
    tenant_id: &str,
    actor: &str,
    message_id: &str,
    token: &str,
) -> Result<Answer, ServiceError> {
    let mut tx = state.store.begin().await?;
    // Locked: two confirmations racing apply in turn, and the second finds
    // the token spent.
    let mut message =
        messages::get_for_update(&mut tx, state.store.dialect(), tenant_id, message_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("message", message_id))?;
    let Outcome::ConfirmationRequired { route, .. } = &message.decision.outcome else {
        return Err(ServiceError::conflict(
            "not_awaiting_confirmation",
            format!(
                "message `{message_id}` is `{}`, not awaiting confirmation",
                message.status.as_str()
            ),
        ));
    };
    let expected = message.confirmation_hash.clone().unwrap_or_default();
    if message.status != Status::AwaitingConfirmation || expected.is_empty() {
        return Err(ServiceError::conflict(
            "not_awaiting_confirmation",
            format!(
                "message `{message_id}` is `{}`, not awaiting confirmation",
                message.status.as_str()
            ),
        ));
    }
    if !constant_time_eq(ids::token_hash(token).as_bytes(), expected.as_bytes()) {
        drop(tx);
        let mut tx = state.store.begin().await?;
        audit::record(
            &mut tx,
            state,
            tenant_id,
            actor,
            "confirmation_rejected",
            Some(message_id),
            json!({ "reason": "bad_token" }),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        return Err(ServiceError::invalid(
            "bad_confirmation_token",
            format!("the confirmation token is not the one issued for message `{message_id}`"),
        ));
    }
    let confirmation = Confirmation {
        message_id: message.id.clone(),
        container: route.container,
        assurance: route.assurance,
    };
    let inputs = load_inputs(&mut tx, state, tenant_id, &message.recipient_id).await?;
    let thread = threads::get_for_update(
        &mut tx,
        state.store.dialect(),
        tenant_id,
        &message.thread_id,
    )
    .await?
    .ok_or_else(|| ServiceError::Internal(format!("thread of message {message_id} is missing")))?;
    let meta = MessageMeta {
        id: message.id.clone(),
        class: message.class.clone(),
        accepted_at: ladder_core::Timestamp(message.accepted_at),
        confirmation: Some(confirmation.clone()),
    };
    let decision = crate::service::redecide::decide_after_failures(
        &inputs,
        &meta,
        &thread.floor,
        &message.failed,
    )?
    .ok_or_else(|| ServiceError::Internal(format!("no decision settles for {message_id}")))?;
    crate::service::send::count_decision(&decision);
    let mut settled = settle(state, &message.id, &thread, &decision)?;
    audit::record(
        &mut tx,
        state,
        tenant_id,
        actor,
        "confirmation_accepted",
        Some(message_id),
        json!({ "container": confirmation.container, "assurance": confirmation.assurance }),
    )
    .await?;
    metrics::counter!("ladder_confirmations_accepted_total").increment(1);
    stats::record(
        &mut tx,
        tenant_id,
        Metric::ConfirmationGiven,
        &message.class,
    )
    .await?;
    stats::record_decision(&mut tx, tenant_id, &decision).await?;
    let audit_index = audit_decision(
        &mut tx,
        state,
        tenant_id,
        actor,
        &inputs.recipient.recipient.pseudonym,
        &thread.id,
        &decision,
    )
    .await?;
    settled.answer.body.audit_index = Some(audit_index);
    let mut updated = thread.clone();
    updated.floor = floor_after(&thread, &decision);
    updated.updated_at = now().0;
    threads::update(&mut tx, &updated).await?;
    message.status = settled.status;
    message.decision = decision;
    message.confirmation_hash = settled.confirmation_hash.clone();
    message.updated_at = now().0;
    messages::update(&mut tx, &message).await?;
    if let Some((kind, due)) = settled.work {
        outbox::enqueue(&mut tx, tenant_id, &message.id, kind, due).await?;
    }
    if message.status == Status::Blocked {
        keys::shred_in(&mut tx, state, tenant_id, &message.id, "blocked", actor).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    if let Some((_, due)) = settled.work {
        state.wake.work_due(due);
    }
    Ok(settled.answer)
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
