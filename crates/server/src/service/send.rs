//! Accepting a message: decide with the core, then — in one transaction —
//! store the message with its decision, its sealed payload, the thread's
//! new floor, its outbox work and its audit entries. The answer given is
//! stored too, so a retry with the same idempotency key gets it again and
//! nothing is sent twice.

use std::sync::Arc;

use ladder_core::decision::FailedAttempt;
use ladder_core::overrides::Override;
use ladder_core::thread::assess;
use ladder_core::{Decision, DecisionInput, MessageMeta, Outcome, Policy, ThreadFloor, decide};
use ladder_store::messages::{self, Message, Status, StoredPayload};
use ladder_store::outbox::{self, Kind};
use ladder_store::threads::{self, Thread};
use ladder_store::{Tx, ids, overrides as stored_overrides, sealed};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::wire::{DecisionAnswer, DecisionOutcome};
use crate::service::error::ServiceError;
use crate::service::{RecipientState, audit, load_recipient, payload_aad};
use crate::state::{AppState, now, now_ms};

/// The most a payload may weigh.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// `POST /v1/messages`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The recipient id (`rcp_…`).
    pub recipient: String,
    /// A class of the tenant's policy.
    pub class: String,
    /// The thread's name; `default` when absent.
    #[serde(default)]
    pub thread: Option<String>,
    /// The content, 1 to 65,536 bytes; sealed at rest, never logged.
    pub body: String,
}

/// The answer: the decision as the sender sees it, stored with the message
/// (its `outcome` says how it went; the API edge picks the status from
/// it), and whether it is a replay of a stored one.
#[derive(Debug, Clone)]
pub struct Answer {
    pub body: DecisionAnswer,
    pub replayed: bool,
}

/// Whether `s` is a name ladder gives or accepts for a class, a thread, a
/// tenant, an override or an idempotency key: 1 to 128 ASCII letters,
/// digits, `-`, `_`, `.` or `:`.
pub(crate) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// Everything a decision for one message depends on, loaded under the
/// thread's lock.
#[derive(Debug)]
pub struct Inputs {
    pub policy: Arc<Policy>,
    pub recipient: RecipientState,
    pub overrides: Vec<Override>,
}

impl Inputs {
    /// The policy's own overrides and the run-time ones, as the core's
    /// floor assessment takes them.
    pub fn all_overrides(&self) -> Vec<&Override> {
        self.policy
            .overrides()
            .iter()
            .chain(&self.overrides)
            .collect()
    }
}

pub async fn load_inputs(
    tx: &mut Tx,
    state: &AppState,
    tenant_id: &str,
    recipient_id: &str,
) -> Result<Inputs, ServiceError> {
    let policy = state.active_policy(tx, tenant_id).await?;
    let recipient = load_recipient(tx, tenant_id, recipient_id).await?;
    let overrides = stored_overrides::active(tx, tenant_id, now().0)
        .await?
        .into_iter()
        .map(|o| o.rule)
        .collect();
    Ok(Inputs {
        policy,
        recipient,
        overrides,
    })
}

/// Decides with the core, timing it. Counting is [`count_decision`]'s, for
/// decisions that are kept: a re-check before hand-over decides again
/// without making a second decision about the message.
pub fn run_decision(
    inputs: &Inputs,
    meta: &MessageMeta,
    floor: &ThreadFloor,
    failed: &[FailedAttempt],
) -> Result<Decision, ServiceError> {
    let started = std::time::Instant::now();
    let decision = decide(
        &inputs.policy,
        &DecisionInput {
            message: meta,
            recipient: &inputs.recipient.evidence,
            thread: floor,
            overrides: &inputs.overrides,
            failed,
            now: now(),
        },
    )
    .map_err(|e| ServiceError::invalid("unknown_class", e.to_string()))?;
    metrics::histogram!("ladder_decision_seconds").record(started.elapsed().as_secs_f64());
    Ok(decision)
}

/// The label a route or an outcome without one goes by in metrics.
fn outcome_label(outcome: &ladder_core::Outcome) -> String {
    outcome
        .route()
        .map_or_else(|| outcome.code().to_string(), |r| r.name())
}

/// Counts a decision that is persisted (acceptance, a fallback, a
/// confirmation): once per decision taken about a message. In observe
/// mode it also counts the route used beside the one enforcement would
/// have taken: the figures the observe → enforce switch is decided on.
pub fn count_decision(decision: &Decision) {
    let route = decision
        .outcome
        .route()
        .map_or_else(|| "-".to_string(), |r| r.name());
    metrics::counter!(
        "ladder_decisions_total",
        "class" => decision.class.clone(),
        "outcome" => decision.outcome.code(),
        "route" => route,
    )
    .increment(1);
    if decision.downgrade.is_some() || decision.thread.drop.is_some() {
        metrics::counter!("ladder_downgrades_total", "class" => decision.class.clone())
            .increment(1);
    }
    if let Some(enforced) = &decision.enforced {
        let used = outcome_label(&decision.outcome);
        let would_have = outcome_label(enforced);
        let differs = if used == would_have { "no" } else { "yes" };
        metrics::counter!(
            "ladder_observe_decisions_total",
            "class" => decision.class.clone(),
            "route" => used,
            "would_have" => would_have,
            "differs" => differs,
        )
        .increment(1);
    }
}

/// The thread a message goes to, created at what the recipient verifiably
/// supports now if it is new.
async fn thread_for(
    tx: &mut Tx,
    state: &AppState,
    tenant_id: &str,
    inputs: &Inputs,
    name: &str,
) -> Result<Thread, ServiceError> {
    let recipient_id = &inputs.recipient.recipient.id;
    if let Some(t) =
        threads::find_for_update(tx, state.store.dialect(), tenant_id, recipient_id, name).await?
    {
        return Ok(t);
    }
    let at = now();
    let all = inputs.all_overrides();
    let assessment = assess(
        inputs.policy.evidence(),
        &inputs.recipient.evidence,
        &all,
        at,
    );
    // The ratchet is the recipient's, not the thread name's: a new thread
    // opens no higher than the lowest floor the recipient's other threads
    // hold, so naming a fresh thread cannot skip a downgrade.
    let mut floor = ThreadFloor::open(&assessment, at);
    let siblings =
        threads::list_for_recipient(tx, state.store.dialect(), false, tenant_id, recipient_id)
            .await?;
    if let Some(lowest) = siblings.iter().map(|t| t.floor.floor).min() {
        floor.floor = floor.floor.min(lowest);
    }
    let thread = Thread {
        id: ids::new_id("thr"),
        tenant_id: tenant_id.to_string(),
        recipient_id: recipient_id.clone(),
        name: name.to_string(),
        floor,
        updated_at: at.0,
    };
    threads::insert(tx, &thread).await?;
    Ok(thread)
}

/// The floor to persist after a decision: the core's ratchet change, with
/// the thread's label — what the recipient was last *shown* — kept as it
/// was. The label moves only when a delivery succeeds
/// ([`crate::service::deliver`]), so a route that failed never counts as
/// shown, and a fallback from it is not mistaken for a downgrade.
pub fn floor_after(thread: &Thread, decision: &Decision) -> ThreadFloor {
    ThreadFloor {
        label: thread.floor.label,
        ..decision.thread.after.clone()
    }
}

/// What a decision means for the message's status and the sender's answer.
#[derive(Debug)]
pub struct Settled {
    pub status: Status,
    pub answer: Answer,
    pub confirmation_hash: Option<String>,
    /// Outbox work to enqueue and when.
    pub work: Option<(Kind, i64)>,
}

pub fn settle(
    state: &AppState,
    message_id: &str,
    thread: &Thread,
    decision: &Decision,
) -> Result<Settled, ServiceError> {
    let mut token = None;
    let (status, confirmation_hash, work) = match &decision.outcome {
        Outcome::Deliver { .. } => (Status::Queued, None, Some((Kind::Deliver, now_ms()))),
        Outcome::ConfirmationRequired { .. } => {
            let issued = ids::new_token("ldr_confirm")?;
            let hash = ids::token_hash(&issued);
            token = Some(issued);
            (Status::AwaitingConfirmation, Some(hash), None)
        }
        Outcome::Hold { until } => {
            let recheck = (now().0 + state.config.delivery.hold_recheck_s).min(until.0);
            (
                Status::Held,
                None,
                Some((Kind::Redecide, recheck.saturating_mul(1000))),
            )
        }
        Outcome::Escalate => (Status::Escalated, None, None),
        Outcome::Block => (Status::Blocked, None, None),
    };
    let body = DecisionAnswer {
        id: message_id.to_string(),
        thread: thread.id.clone(),
        outcome: DecisionOutcome::of(&decision.outcome),
        status: status.as_str().to_string(),
        decision: decision.clone(),
        explanation: ladder_core::decision::explain(decision),
        confirmation_token: token,
        confirmation_token_issued: None,
        audit_index: None,
    };
    Ok(Settled {
        status,
        answer: Answer {
            body,
            replayed: false,
        },
        confirmation_hash,
        work,
    })
}

/// Audit entries for a decision: the decision itself, and any downgrade.
pub async fn audit_decision(
    tx: &mut Tx,
    state: &AppState,
    tenant_id: &str,
    actor: &str,
    pseudonym: &str,
    thread_id: &str,
    decision: &Decision,
) -> Result<u64, ServiceError> {
    let skipped: Vec<Value> = decision
        .steps
        .iter()
        .filter(|s| !s.skipped.is_empty())
        .map(|s| {
            json!({
                "step": s.index,
                "route": s.route,
                "reasons": s.skipped.iter().map(|r| r.code()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let index = audit::record(
        tx,
        state,
        tenant_id,
        actor,
        "decision",
        Some(&decision.message_id),
        json!({
            "class": decision.class,
            "policy_version": decision.policy_version,
            "mode": decision.mode,
            "outcome": decision.outcome.code(),
            "route": decision.outcome.route().map(|r| r.name()),
            "assurance": decision.outcome.route().map(|r| r.assurance),
            "enforced": decision.enforced.as_ref().map(|o| o.code()),
            "skipped": skipped,
            "recipient": pseudonym,
            "thread": thread_id,
        }),
    )
    .await?;
    if let Some(drop) = &decision.thread.drop {
        audit::record(
            tx,
            state,
            tenant_id,
            actor,
            "thread_downgraded",
            Some(thread_id),
            json!({ "from": drop.from, "to": drop.to, "causes": drop.causes, "message": decision.message_id }),
        )
        .await?;
    }
    if let Some(d) = &decision.downgrade {
        audit::record(
            tx,
            state,
            tenant_id,
            actor,
            "route_downgrade",
            Some(&decision.message_id),
            json!({ "from": d.from, "to": d.to, "thread": thread_id }),
        )
        .await?;
    }
    Ok(index)
}

/// A send request that passed every check that needs no database, with
/// everything that can be computed before the transaction: the keyed
/// fingerprint, the message id and the sealed payload. The transaction —
/// one of many in a group commit on SQLite — then only reads, decides and
/// writes.
#[derive(Debug)]
struct Prepared {
    tenant_id: String,
    actor: String,
    idempotency_key: String,
    recipient_id: ladder_store::ids::RecipientId,
    class: String,
    thread_name: String,
    fingerprint: String,
    message_id: String,
    payload: StoredPayload,
}

impl Prepared {
    fn new(
        state: &AppState,
        tenant_id: &str,
        actor: &str,
        idempotency_key: &str,
        request: SendRequest,
    ) -> Result<Prepared, ServiceError> {
        if !valid_name(idempotency_key) || idempotency_key.starts_with("expired:") {
            return Err(ServiceError::bad_request(
                "invalid_idempotency_key",
                "header `Idempotency-Key` must be 1-128 letters, digits, `-`, `_`, `.` or `:`, not starting with `expired:`",
            ));
        }
        let recipient_id =
            ladder_store::ids::RecipientId::parse(&request.recipient, "field `recipient`")?;
        if !valid_name(&request.class) {
            return Err(ServiceError::invalid(
                "unknown_class",
                "field `class` must name a class of the policy: 1-128 letters, digits, `-`, `_`, `.` or `:`",
            ));
        }
        let thread_name = request.thread.clone().unwrap_or_else(|| "default".into());
        if !valid_name(&thread_name) {
            return Err(ServiceError::invalid(
                "invalid_thread",
                "field `thread` must be 1-128 letters, digits, `-`, `_`, `.` or `:`",
            ));
        }
        if request.body.is_empty() || request.body.len() > MAX_BODY_BYTES {
            return Err(ServiceError::invalid(
                "invalid_body",
                format!("field `body` must be 1 to {MAX_BODY_BYTES} bytes"),
            ));
        }
        // A keyed fingerprint of the request: tells a retry from a different
        // request under the same key without storing a content hash anyone
        // could test guesses against.
        let fingerprint = state.keyring.pseudonym(
            tenant_id,
            &format!(
                "request\0{}\0{}\0{}\0{}",
                request.recipient, request.class, thread_name, request.body
            ),
        )?;
        // Sealed before the decision is known: a blocked message's sealed
        // payload is simply not stored.
        let message_id = ids::new_id("msg");
        let key = sealed::DataKey::generate().map_err(|e| ServiceError::Internal(e.to_string()))?;
        let ciphertext = sealed::seal(
            &key,
            &payload_aad(tenant_id, &message_id),
            request.body.as_bytes(),
        )
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let wrapped = state.keyring.wrap(tenant_id, &key)?;
        Ok(Prepared {
            tenant_id: tenant_id.to_string(),
            actor: actor.to_string(),
            idempotency_key: idempotency_key.to_string(),
            recipient_id,
            class: request.class,
            thread_name,
            fingerprint,
            payload: StoredPayload {
                message_id: message_id.clone(),
                kek_id: Some(wrapped.kek_id),
                wrapped_key: Some(wrapped.bytes),
                ciphertext: Some(ciphertext),
                shredded_at: None,
                shred_reason: None,
            },
            message_id,
        })
    }
}

/// Accepts one message and answers once it is durable. Returns the stored
/// answer for a retried key. A concurrent request for the same key or
/// thread that wins a race makes this one start over, and then find the
/// winner's answer or thread.
pub async fn accept(
    state: &AppState,
    tenant_id: &str,
    actor: &str,
    idempotency_key: &str,
    request: SendRequest,
) -> Result<Answer, ServiceError> {
    let prepared = Arc::new(Prepared::new(
        state,
        tenant_id,
        actor,
        idempotency_key,
        request,
    )?);
    let mut tries = 0;
    let accepted = loop {
        let (work_state, work) = (state.clone(), prepared.clone());
        let attempt = state
            .commit
            .run(move |tx| Box::pin(async move { accept_in(tx, &work_state, &work).await }))
            .await;
        match attempt {
            Err(ServiceError::Contention) if tries < 3 => tries += 1,
            other => break other?,
        }
    };
    if let Some(due) = accepted.work_due {
        state.wake.work_due(due);
    }
    let answer = accepted.answer;
    // Counted once durable, and once per message (not for replays).
    if !answer.replayed {
        count_decision(&answer.body.decision);
        match &answer.body.decision.outcome {
            Outcome::ConfirmationRequired { .. } => {
                metrics::counter!("ladder_confirmations_requested_total").increment(1);
            }
            Outcome::Block => {
                metrics::counter!("ladder_blocks_total", "class" => prepared.class.clone())
                    .increment(1);
            }
            _ => {}
        }
    }
    Ok(answer)
}

/// The accepting transaction's work: replay a known key, or decide and
/// write everything an accepted message is.
async fn accept_in(tx: &mut Tx, state: &AppState, p: &Prepared) -> Result<Accepted, ServiceError> {
    let tenant_id = p.tenant_id.as_str();
    if let Some(existing) = messages::by_idempotency_key(tx, tenant_id, &p.idempotency_key).await? {
        let window = i64::try_from(state.config.api.idempotency_window.0).unwrap_or(i64::MAX);
        if now().0.saturating_sub(existing.accepted_at) < window {
            return replay(existing, &p.fingerprint).map(|answer| Accepted {
                answer,
                work_due: None,
            });
        }
        // The key's window has passed: the old message keeps existing under
        // a retired key, and this request is a new one.
        messages::expire_idempotency_key(tx, tenant_id, &existing.id).await?;
    }
    let inputs = load_inputs(tx, state, tenant_id, p.recipient_id.as_str()).await?;
    let Some(class) = inputs.policy.class(&p.class) else {
        let known: Vec<&str> = inputs
            .policy
            .classes()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        return Err(ServiceError::invalid(
            "unknown_class",
            format!(
                "field `class`: `{}` is not a class of policy {}; known classes: {}",
                p.class,
                inputs.policy.version().short(),
                known.join(", ")
            ),
        ));
    };
    let retention = i64::try_from(class.retention.0).unwrap_or(i64::MAX);
    let thread = thread_for(tx, state, tenant_id, &inputs, &p.thread_name).await?;
    let message_id = p.message_id.clone();
    let accepted_at = now();
    let meta = MessageMeta {
        id: message_id.clone(),
        class: p.class.clone(),
        accepted_at,
        confirmation: None,
    };
    let decision = run_decision(&inputs, &meta, &thread.floor, &[])?;
    let mut settled = settle(state, &message_id, &thread, &decision)?;
    // The decision's entry in the tenant's audit log, named in the answer so
    // the sender can ask for its inclusion proof.
    let audit_index = audit_decision(
        tx,
        state,
        tenant_id,
        &p.actor,
        &inputs.recipient.recipient.pseudonym,
        &thread.id,
        &decision,
    )
    .await?;
    crate::service::stats::record_decision(tx, tenant_id, &decision).await?;
    settled.answer.body.audit_index = Some(audit_index);
    let message = Message {
        id: message_id.clone(),
        tenant_id: tenant_id.to_string(),
        idempotency_key: p.idempotency_key.clone(),
        request_hash: p.fingerprint.clone(),
        recipient_id: inputs.recipient.recipient.id.clone(),
        thread_id: thread.id.clone(),
        class: p.class.clone(),
        status: settled.status,
        decision: decision.clone(),
        failed: Vec::new(),
        response_status: i64::from(settled.answer.body.outcome.http_status()),
        response_body: storable(&settled.answer.body)?,
        confirmation_hash: settled.confirmation_hash.clone(),
        accepted_at: accepted_at.0,
        updated_at: accepted_at.0,
        expires_at: accepted_at.0.saturating_add(retention),
    };
    messages::insert(tx, &message).await?;
    if matches!(
        decision.outcome,
        Outcome::Deliver { .. } | Outcome::Hold { .. } | Outcome::Escalate
    ) {
        crate::service::events::record(
            tx,
            tenant_id,
            "message.accepted",
            json!({
                "message_id": message.id,
                "class": message.class,
                "mode": decision.mode,
                "outcome": decision.outcome.code(),
                "route": decision.outcome.route().map(|r| r.name()),
                "assurance": decision.outcome.route().map(|r| r.assurance),
                "thread_id": thread.id,
            }),
        )
        .await?;
    }
    if settled.status != Status::Blocked {
        messages::insert_payload(tx, tenant_id, &p.payload).await?;
    }
    let mut updated = thread.clone();
    updated.floor = floor_after(&thread, &decision);
    updated.updated_at = accepted_at.0;
    threads::update(tx, &updated).await?;
    messages::add_event(
        tx,
        tenant_id,
        &message_id,
        &messages::Event {
            at: accepted_at.0,
            kind: "decided".into(),
            detail: json!({ "outcome": decision.outcome.code(), "route": decision.outcome.route().map(|r| r.name()) }),
        },
    )
    .await?;
    if let Some((kind, due)) = settled.work {
        outbox::enqueue(tx, tenant_id, &message_id, kind, due).await?;
    }
    Ok(Accepted {
        answer: settled.answer,
        work_due: settled.work.map(|(_, due)| due),
    })
}

/// What the accepting unit leaves for after its commit: the answer, and
/// when the work it queued is due (a worker is woken once it is durable).
#[derive(Debug)]
struct Accepted {
    answer: Answer,
    work_due: Option<i64>,
}

fn replay(existing: Message, fingerprint: &str) -> Result<Answer, ServiceError> {
    if existing.request_hash != fingerprint {
        return Err(ServiceError::conflict(
            "idempotency_key_reused",
            format!(
                "idempotency key `{}` was already used for a different request (message `{}`)",
                existing.idempotency_key, existing.id
            ),
        ));
    }
    metrics::counter!("ladder_idempotent_replays_total").increment(1);
    let body = serde_json::from_value(existing.response_body)
        .map_err(|e| ServiceError::Internal(format!("stored answer of {}: {e}", existing.id)))?;
    Ok(Answer {
        body,
        replayed: true,
    })
}

/// The answer as stored for replays: without the one-time token, which
/// exists only in the first answer and as a hash.
fn storable(body: &DecisionAnswer) -> Result<Value, ServiceError> {
    let mut body = body.clone();
    if body.confirmation_token.take().is_some() {
        body.confirmation_token_issued = Some(
            "in the first answer only; POST /v1/messages/{id}/confirmation-token for a new one"
                .into(),
        );
    }
    serde_json::to_value(&body).map_err(|e| ServiceError::Internal(e.to_string()))
}
