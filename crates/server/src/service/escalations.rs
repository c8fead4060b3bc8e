//! The escalation queue: messages the policy handed to a human
//! (`escalated`) or set aside until a capability appears (`held`), and what
//! an operator (admin scope) may do with them — send by a route, block, or
//! move a hold's next look.
//!
//! An operator never overrules the policy. "Send by route R" asks the core
//! again, now, for that message and class ([`ladder_core::decision::permitted`]):
//! R must be a step of the class's ladder that the decision would accept at
//! this moment — same evidence, floor, overrides and earlier failures —
//! which also keeps it at or above the class minimum. The message then goes
//! out through the ordinary outbox, and the delivery worker checks again
//! before hand-over that R still qualifies. Every action needs a reason
//! and is audited with the operator's identity, in the transaction that
//! makes it.
//!
//! These functions are what the API handlers and the console call.

use ladder_core::decision::{Downgrade, FailedAttempt, Note, Refusal, Route, permitted};
use ladder_core::{DecisionInput, MessageMeta, Outcome, ThreadFloor, Timestamp};
use ladder_store::ids::MessageId;
use ladder_store::messages::{self, Event, Message, Status};
use ladder_store::outbox::{self, Kind};
use ladder_store::tenants::Caller;
use ladder_store::{StoreError, Tx, queue, threads};
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::actor;
use crate::service::error::ServiceError;
use crate::service::send::{Inputs, audit_decision, count_decision, floor_after, load_inputs};
use crate::service::{audit, keys};
use crate::state::{AppState, now, now_ms};

/// The longest a reason may be, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// How far ahead an operator may move a hold's next look: a month, so a
/// forgotten hold still comes back to someone.
pub const MAX_EXTEND_S: i64 = 30 * 86_400;

/// Which part of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueKind {
    /// Handed to a human by the class's `on_exhausted`.
    Escalated,
    /// Waiting for a capability until the hold's deadline.
    Held,
}

impl QueueKind {
    pub const ALL: [QueueKind; 2] = [QueueKind::Escalated, QueueKind::Held];

    pub fn as_str(self) -> &'static str {
        match self {
            QueueKind::Escalated => "escalated",
            QueueKind::Held => "held",
        }
    }

    /// The kind a name stands for (`escalated`, `held`), if any.
    pub fn from_name(name: &str) -> Option<QueueKind> {
        QueueKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    fn status(self) -> Status {
        match self {
            QueueKind::Escalated => Status::Escalated,
            QueueKind::Held => Status::Held,
        }
    }

    fn of(status: Status) -> Option<QueueKind> {
        QueueKind::ALL.into_iter().find(|k| k.status() == status)
    }
}

/// One message in the queue, as the list and the console show it: no
/// content, no address.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueItem {
    pub id: String,
    /// `escalated` or `held`.
    #[schema(value_type = String)]
    pub kind: QueueKind,
    pub class: String,
    pub recipient: String,
    pub thread: String,
    pub accepted_at: i64,
    pub updated_at: i64,
    /// The decision's outcome code (`escalate`, `hold`).
    pub outcome: &'static str,
    /// For a held message: the hold's deadline (Unix seconds).
    pub hold_until: Option<i64>,
    /// For a held message: when it is next decided again (Unix seconds).
    pub next_look_at: Option<i64>,
    /// The decision explained for people, as `GET /v1/messages/{id}/explain`.
    pub explanation: String,
    /// Every step's skip reasons, machine-readable.
    #[schema(value_type = Object)]
    pub decision: ladder_core::Decision,
}

/// What an operator did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Sent,
    Blocked,
    Extended,
}

impl Action {
    /// The audit entry's kind.
    pub fn audit_kind(self) -> &'static str {
        match self {
            Action::Sent => "escalation_sent",
            Action::Blocked => "escalation_blocked",
            Action::Extended => "hold_extended",
        }
    }
}

/// The answer to an operator's action.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = QueueAction)]
pub struct ActionOutcome {
    pub id: String,
    pub action: Action,
    /// The message's status afterwards.
    #[schema(value_type = String)]
    pub status: Status,
    /// For `sent`: the route it is queued on.
    pub route: Option<String>,
    /// For `extended`: the next look (Unix seconds).
    pub next_look_at: Option<i64>,
    /// The action's entry in the tenant's audit log.
    pub audit_index: u64,
}

/// A reason as an action needs it: 1 to [`MAX_REASON_CHARS`] characters,
/// none of them a control character, not only blanks.
pub fn check_reason(reason: &str) -> Result<&str, ServiceError> {
    let trimmed = reason.trim();
    if trimmed.is_empty()
        || reason.chars().count() > MAX_REASON_CHARS
        || reason.chars().any(char::is_control)
    {
        return Err(ServiceError::bad_request(
            "invalid_reason",
            format!(
                "field `reason` must be 1-{MAX_REASON_CHARS} characters, none of them a control character"
            ),
        ));
    }
    Ok(trimmed)
}

fn item(w: queue::Waiting) -> Result<QueueItem, ServiceError> {
    let m = w.message;
    // INVARIANT: `queue::list` returns only escalated or held messages.
    let kind = QueueKind::of(m.status).ok_or_else(|| {
        ServiceError::Internal(format!(
            "message {} listed in the queue as {}",
            m.id,
            m.status.as_str()
        ))
    })?;
    Ok(QueueItem {
        hold_until: match &m.decision.outcome {
            Outcome::Hold { until } => Some(until.0),
            _ => None,
        },
        next_look_at: w.next_look_ms.map(|ms| ms.div_euclid(1000)),
        explanation: ladder_core::decision::explain(&m.decision),
        outcome: m.decision.outcome.code(),
        id: m.id,
        kind,
        class: m.class,
        recipient: m.recipient_id,
        thread: m.thread_id,
        accepted_at: m.accepted_at,
        updated_at: m.updated_at,
        decision: m.decision,
    })
}

/// A tenant's escalated and held messages (one kind when given), newest
/// first, at most `limit`, strictly older than message id `before`.
pub async fn queue(
    state: &AppState,
    tenant_id: &str,
    kind: Option<QueueKind>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<QueueItem>, ServiceError> {
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    queue::list(
        &mut conn,
        tenant_id,
        kind.map(QueueKind::status),
        before,
        limit,
    )
    .await?
    .into_iter()
    .map(item)
    .collect()
}

/// The caller's message, locked, if it waits in the queue: 404 for an id
/// that is not the caller's tenant's, 409 `not_in_queue` otherwise.
async fn waiting(
    tx: &mut Tx,
    state: &AppState,
    caller: &Caller,
    message_id: &MessageId,
) -> Result<(Message, QueueKind), ServiceError> {
    let m = messages::get_for_update(
        tx,
        state.store.dialect(),
        &caller.tenant_id,
        message_id.as_str(),
    )
    .await?
    .ok_or_else(|| ServiceError::not_found("message", message_id.as_str()))?;
    match QueueKind::of(m.status) {
        Some(kind) => Ok((m, kind)),
        None => Err(ServiceError::conflict(
            "not_in_queue",
            format!(
                "message `{}` is {}, not escalated or held",
                m.id,
                m.status.as_str()
            ),
        )),
    }
}

/// Whether `route` may carry the message now, by the core's judgement.
pub(crate) fn permit(
    inputs: &Inputs,
    meta: &MessageMeta,
    floor: &ThreadFloor,
    failed: &[FailedAttempt],
    route: &str,
) -> Result<Result<Route, Refusal>, ServiceError> {
    permitted(
        &inputs.policy,
        &DecisionInput {
            message: meta,
            recipient: &inputs.recipient.evidence,
            thread: floor,
            overrides: &inputs.overrides,
            failed,
            now: now(),
        },
        route,
    )
    .map_err(|e| ServiceError::conflict("unknown_class", e.to_string()))
}

/// Whether `r` has the shape of a route name (`rcs`, `portal+email_notice`).
fn route_shaped(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 64
        && r.split('+').count() <= 2
        && r.split('+')
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
}

/// The message as it is meant to be after an action, with its event.
async fn save(
    tx: &mut Tx,
    message: &mut Message,
    status: Status,
    event: &str,
    detail: Value,
) -> Result<(), ServiceError> {
    let at = now().0;
    message.status = status;
    message.updated_at = at;
    messages::update(tx, message).await?;
    messages::add_event(
        tx,
        &message.tenant_id,
        &message.id,
        &Event {
            at,
            kind: event.into(),
            detail,
        },
    )
    .await?;
    Ok(())
}

/// Sends a queued message by `route`, if the core permits that route for
/// its class and recipient now; 409 `route_not_permitted` naming why if
/// not. The message is queued for delivery like any other.
pub async fn send_by(
    state: &AppState,
    caller: &Caller,
    message_id: &MessageId,
    route: &str,
    reason: &str,
) -> Result<ActionOutcome, ServiceError> {
    let reason = check_reason(reason)?;
    if !route_shaped(route) {
        return Err(ServiceError::bad_request(
            "invalid_route",
            "field `route` must name a route as `container` or `container+notifier`, e.g. `portal+email_notice`",
        ));
    }
    let who = actor(caller);
    let mut tx = state.store.begin().await?;
    let (mut message, kind) = waiting(&mut tx, state, caller, message_id).await?;
    let inputs = load_inputs(&mut tx, state, &caller.tenant_id, &message.recipient_id).await?;
    let thread = threads::get_for_update(
        &mut tx,
        state.store.dialect(),
        &caller.tenant_id,
        &message.thread_id,
    )
    .await?
    .ok_or_else(|| ServiceError::Internal(format!("thread of {} is missing", message.id)))?;
    let meta = MessageMeta {
        id: message.id.clone(),
        class: message.class.clone(),
        accepted_at: Timestamp(message.accepted_at),
        confirmation: None,
    };
    let chosen = match permit(&inputs, &meta, &thread.floor, &message.failed, route)? {
        Ok(r) => r,
        Err(refusal) => {
            return Err(ServiceError::conflict(
                "route_not_permitted",
                format!("route `{route}` may not carry this message now: {refusal}"),
            )
            .with_details(json!({ "refusal": refusal })));
        }
    };
    // The fresh decision, with the operator's permitted route as its
    // outcome: the record keeps every step's reasons as of now.
    let mut decision =
        crate::service::send::run_decision(&inputs, &meta, &thread.floor, &message.failed)?;
    decision.downgrade = thread
        .floor
        .label
        .filter(|l| chosen.assurance < *l)
        .map(|from| Downgrade {
            from,
            to: chosen.assurance,
        });
    decision.thread.after.label = Some(chosen.assurance);
    if let Some(step) = chosen.step {
        decision.notes.push(Note::OperatorChoseRoute { step });
    }
    decision.outcome = Outcome::Deliver {
        route: chosen.clone(),
    };
    count_decision(&decision);
    audit_decision(
        &mut tx,
        state,
        &caller.tenant_id,
        &who,
        &inputs.recipient.recipient.pseudonym,
        &thread.id,
        &decision,
    )
    .await?;
    let audit_index = audit::record(
        &mut tx,
        state,
        &caller.tenant_id,
        &who,
        Action::Sent.audit_kind(),
        Some(&message.id),
        json!({ "route": chosen.name(), "step": chosen.step, "was": kind, "reason": reason }),
    )
    .await?;
    let mut updated = thread.clone();
    updated.floor = floor_after(&thread, &decision);
    updated.updated_at = now().0;
    threads::update(&mut tx, &updated).await?;
    message.decision = decision;
    message.confirmation_hash = None;
    save(
        &mut tx,
        &mut message,
        Status::Queued,
        "operator_sent",
        json!({ "route": chosen.name(), "actor": who }),
    )
    .await?;
    queue::cancel_looks(&mut tx, &caller.tenant_id, &message.id, now_ms()).await?;
    outbox::enqueue(
        &mut tx,
        &caller.tenant_id,
        &message.id,
        Kind::Deliver,
        now_ms(),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    state.wake.one();
    Ok(ActionOutcome {
        id: message.id,
        action: Action::Sent,
        status: Status::Queued,
        route: Some(chosen.name()),
        next_look_at: None,
        audit_index,
    })
}

/// Blocks a queued message for good: its payload is destroyed and it is
/// never delivered.
pub async fn block(
    state: &AppState,
    caller: &Caller,
    message_id: &MessageId,
    reason: &str,
) -> Result<ActionOutcome, ServiceError> {
    let reason = check_reason(reason)?;
    let who = actor(caller);
    let mut tx = state.store.begin().await?;
    let (mut message, kind) = waiting(&mut tx, state, caller, message_id).await?;
    let audit_index = audit::record(
        &mut tx,
        state,
        &caller.tenant_id,
        &who,
        Action::Blocked.audit_kind(),
        Some(&message.id),
        json!({ "was": kind, "reason": reason }),
    )
    .await?;
    save(
        &mut tx,
        &mut message,
        Status::Blocked,
        "operator_blocked",
        json!({ "actor": who }),
    )
    .await?;
    queue::cancel_looks(&mut tx, &caller.tenant_id, &message.id, now_ms()).await?;
    keys::shred_in(
        &mut tx,
        state,
        &caller.tenant_id,
        &message.id,
        "blocked_by_operator",
        &who,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    metrics::counter!("ladder_blocks_total", "class" => message.class.clone()).increment(1);
    Ok(ActionOutcome {
        id: message.id,
        action: Action::Blocked,
        status: Status::Blocked,
        route: None,
        next_look_at: None,
        audit_index,
    })
}

/// Moves a held message's next look to `until_unix_s`: later than now, at
/// most [`MAX_EXTEND_S`] ahead and no later than [`Timestamp::LATEST`].
/// Only for held messages (409 `not_held` for an escalated one). The hold's
/// deadline stays the policy's: a look after it ends the hold as the class
/// says.
pub async fn extend(
    state: &AppState,
    caller: &Caller,
    message_id: &MessageId,
    until_unix_s: i64,
    reason: &str,
) -> Result<ActionOutcome, ServiceError> {
    let reason = check_reason(reason)?;
    let at = now().0;
    let latest = at.saturating_add(MAX_EXTEND_S).min(Timestamp::LATEST.0);
    if until_unix_s <= at || until_unix_s > latest {
        return Err(ServiceError::bad_request(
            "invalid_until",
            format!(
                "field `until` must be a Unix time in seconds after now and at most {} days ahead",
                MAX_EXTEND_S / 86_400
            ),
        ));
    }
    let who = actor(caller);
    let mut tx = state.store.begin().await?;
    let (mut message, kind) = waiting(&mut tx, state, caller, message_id).await?;
    if kind != QueueKind::Held {
        return Err(ServiceError::conflict(
            "not_held",
            format!(
                "message `{}` is escalated, not held: only a hold can be extended",
                message.id
            ),
        ));
    }
    let audit_index = audit::record(
        &mut tx,
        state,
        &caller.tenant_id,
        &who,
        Action::Extended.audit_kind(),
        Some(&message.id),
        json!({ "next_look_at": until_unix_s, "reason": reason }),
    )
    .await?;
    queue::move_look(
        &mut tx,
        &caller.tenant_id,
        &message.id,
        now_ms(),
        until_unix_s.saturating_mul(1000),
    )
    .await?;
    save(
        &mut tx,
        &mut message,
        Status::Held,
        "operator_extended",
        json!({ "next_look_at": until_unix_s, "actor": who }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    state.wake.work_due(until_unix_s.saturating_mul(1000));
    Ok(ActionOutcome {
        id: message.id,
        action: Action::Extended,
        status: Status::Held,
        route: None,
        next_look_at: Some(until_unix_s),
        audit_index,
    })
}
