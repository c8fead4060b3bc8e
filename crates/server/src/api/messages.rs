//! `/v1/messages`: send, status, explanation, confirmation, revocation.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ladder_store::ids::MessageId;
use ladder_store::{StoreError, ids, messages, threads};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::api::input::{PATH_ID, header_text};
use crate::api::parse_json;
use crate::api::views::ThreadView;
use crate::api::wire::{DecisionAnswer, DecisionOrError, DecisionOutcome, ErrorEnvelope};
use crate::auth::{Sender, actor};
use crate::service::error::ServiceError;
use crate::service::{keys, send};
use crate::state::AppState;

/// The header a replayed answer carries.
pub const REPLAYED: &str = "idempotent-replayed";

fn answer(a: send::Answer) -> Response {
    let status = StatusCode::from_u16(a.body.outcome.http_status())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = (status, Json(a.body)).into_response();
    if a.replayed {
        res.headers_mut()
            .insert(REPLAYED, axum::http::HeaderValue::from_static("true"));
    }
    res
}

/// Sends a message: decides its route and answers with the decision.
#[utoipa::path(post, path = "/v1/messages", tag = "messages", operation_id = "sendMessage",
    security(("bearer" = ["sender"])),
    params(("Idempotency-Key" = String, Header,
        description = "Required. A retry with the same key within the idempotency window gets the stored answer (with `Idempotent-Replayed: true`) and sends nothing twice; the same key with a different request is refused (409 `idempotency_key_reused`).")),
    request_body = send::SendRequest,
    responses(
        (status = 202, description = "Decided: `deliver`, `hold` or `escalate`.", body = DecisionAnswer,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replayed answer"))),
        (status = 409, description = "`confirmation_required` (a decision, with the one-time token), or an error: `idempotency_key_reused`, `contention`.", body = DecisionOrError,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replayed answer"))),
        (status = 422, description = "`block` (a decision), or invalid input (an error naming the field).", body = DecisionOrError,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replayed answer"))),
        (status = 400, description = "Malformed request or `Idempotency-Key`.", body = ErrorEnvelope),
        (status = 404, description = "No such recipient.", body = ErrorEnvelope),
    )
)]
pub async fn send(
    State(state): State<AppState>,
    Sender(caller): Sender,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ServiceError> {
    let key = header_text(&headers, "idempotency-key")?
        .ok_or_else(|| {
            ServiceError::bad_request(
                "missing_idempotency_key",
                "header `Idempotency-Key` is required: a retry with the same key sends nothing twice",
            )
        })?
        .to_string();
    let request: send::SendRequest = parse_json(&body)?;
    let a = send::accept(&state, &caller.tenant_id, &actor(&caller), &key, request).await?;
    Ok(answer(a))
}

/// Whether a message's payload is still held.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayloadState {
    /// Never stored (a blocked message).
    None,
    Sealed,
    /// Destroyed: delivered where it is read, expired, revoked or failed.
    Shredded,
}

/// An audit entry about a message: its index in the tenant's log.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditRef {
    pub index: u64,
    pub kind: String,
}

/// `GET /v1/messages/{id}`: where a message stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Message)]
pub struct MessageStatus {
    pub id: String,
    pub status: String,
    /// The outcome of the message's current decision.
    pub outcome: DecisionOutcome,
    pub class: String,
    /// The recipient id.
    pub recipient: String,
    pub thread: Option<ThreadView>,
    pub accepted_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
    pub payload: PayloadState,
    #[schema(value_type = Object)]
    pub decision: ladder_core::Decision,
    /// Delivery attempts that failed, excluded from the current decision.
    #[schema(value_type = Vec<Object>)]
    pub failed: Vec<ladder_core::decision::FailedAttempt>,
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<messages::Event>,
    /// The audit entries about the message, for their inclusion proofs.
    pub audit: Vec<AuditRef>,
}

/// Where a message stands, with its decision, events and audit entries.
#[utoipa::path(get, path = "/v1/messages/{id}", tag = "messages", operation_id = "getMessage",
    security(("bearer" = ["sender"])),
    params(("id" = String, Path, description = "message id")),
    responses(
        (status = 200, description = "The message.", body = MessageStatus),
        (status = 400, description = "Malformed id.", body = ErrorEnvelope),
        (status = 404, description = "No such message.", body = ErrorEnvelope),
    )
)]
pub async fn status(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
) -> Result<Json<MessageStatus>, ServiceError> {
    let id = MessageId::parse(&id, PATH_ID)?;
    let id = id.as_str();
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let m = messages::get(&mut conn, &caller.tenant_id, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("message", id))?;
    let events = messages::events(&mut conn, &caller.tenant_id, id).await?;
    let payload = messages::payload(&mut conn, &caller.tenant_id, id).await?;
    let thread = threads::get(&mut conn, &caller.tenant_id, &m.thread_id).await?;
    let payload_state = match payload {
        None => PayloadState::None,
        Some(p) if p.shredded_at.is_some() => PayloadState::Shredded,
        Some(_) => PayloadState::Sealed,
    };
    let audit = ladder_store::audit::signed::indexes_about(&mut conn, &caller.tenant_id, &m.id)
        .await?
        .into_iter()
        .map(|(index, kind)| AuditRef { index, kind })
        .collect();
    Ok(Json(MessageStatus {
        outcome: DecisionOutcome::of(&m.decision.outcome),
        status: m.status.as_str().to_string(),
        id: m.id,
        class: m.class,
        recipient: m.recipient_id,
        thread: thread.as_ref().map(ThreadView::of),
        accepted_at: m.accepted_at,
        updated_at: m.updated_at,
        expires_at: m.expires_at,
        payload: payload_state,
        decision: m.decision,
        failed: m.failed,
        events,
        audit,
    }))
}

/// The decision about a message, explained for people (plain text).
#[utoipa::path(get, path = "/v1/messages/{id}/explain", tag = "messages", operation_id = "explainMessage",
    security(("bearer" = ["sender"])),
    params(("id" = String, Path, description = "message id")),
    responses(
        (status = 200, description = "The explanation.", body = String, content_type = "text/plain"),
        (status = 400, description = "Malformed id.", body = ErrorEnvelope),
        (status = 404, description = "No such message.", body = ErrorEnvelope),
    )
)]
pub async fn explain(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
) -> Result<Response, ServiceError> {
    let id = MessageId::parse(&id, PATH_ID)?;
    let id = id.as_str();
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let m = messages::get(&mut conn, &caller.tenant_id, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("message", id))?;
    let mut text = ladder_core::decision::explain(&m.decision);
    if !m.failed.is_empty() {
        text.push_str("\nDelivery failures excluded before this decision:\n");
        for f in &m.failed {
            let step = f
                .step
                .map_or_else(|| "legacy route".to_string(), |s| format!("step {s}"));
            text.push_str(&format!("  - {step} on {}\n", f.channel));
        }
    }
    text.push_str(&format!("\nStatus: {}\n", m.status.as_str()));
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// `POST /v1/messages/{id}/confirm`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// The one-time token of the `confirmation_required` answer.
    pub token: String,
}

/// Confirms the downgrade the sender was shown; the message is decided
/// again with that confirmation.
#[utoipa::path(post, path = "/v1/messages/{id}/confirm", tag = "messages", operation_id = "confirmMessage",
    security(("bearer" = ["sender"])),
    params(("id" = String, Path, description = "message id")),
    request_body = ConfirmRequest,
    responses(
        (status = 202, description = "Decided again: `deliver`, `hold` or `escalate`.", body = DecisionAnswer),
        (status = 409, description = "`confirmation_required` again (a decision), or an error: `not_awaiting_confirmation`, `contention`.", body = DecisionOrError),
        (status = 422, description = "`block` (a decision), or `bad_confirmation_token` (an error).", body = DecisionOrError),
        (status = 400, description = "Malformed id or body.", body = ErrorEnvelope),
        (status = 404, description = "No such message.", body = ErrorEnvelope),
    )
)]

pub async fn confirm(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ServiceError> {
    let id = MessageId::parse(&id, PATH_ID)?;
    let id = id.as_str();
    let req: ConfirmRequest = parse_json(&body)?;
    let a = crate::service::confirm::confirm(
        &state,
        &caller.tenant_id,
        &actor(&caller),
        id,
        &req.token,
    )
    .await?;
    Ok(answer(a))
}

/// A fresh one-time token for a message that came to need confirmation
/// after a delivery failure, when no request was waiting for the answer.
/// The previous token stops working.
#[utoipa::path(post, path = "/v1/messages/{id}/confirmation-token", tag = "messages", operation_id = "newConfirmationToken",
    security(("bearer" = ["sender"])),
    params(("id" = String, Path, description = "message id")),
    responses(
        (status = 200, description = "A fresh token.", body = ConfirmationToken),
        (status = 400, description = "Malformed id.", body = ErrorEnvelope),
        (status = 404, description = "No such message.", body = ErrorEnvelope),
        (status = 409, description = "`not_awaiting_confirmation`.", body = ErrorEnvelope),
    )
)]
pub async fn confirmation_token(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
) -> Result<Json<ConfirmationToken>, ServiceError> {
    let id = MessageId::parse(&id, PATH_ID)?;
    let id = id.as_str();
    let mut tx = state.store.begin().await?;
    let mut m = messages::get(&mut tx, &caller.tenant_id, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("message", id))?;
    if m.status != messages::Status::AwaitingConfirmation {
        return Err(ServiceError::conflict(
            "not_awaiting_confirmation",
            format!(
                "message `{id}` is `{}`, not awaiting confirmation",
                m.status.as_str()
            ),
        ));
    }
    let token = ids::new_token("ldr_confirm")?;
    m.confirmation_hash = Some(ids::token_hash(&token));
    messages::update(&mut tx, &m).await?;
    crate::service::audit::record(
        &mut tx,
        &state,
        &caller.tenant_id,
        &actor(&caller),
        "confirmation_token_issued",
        Some(id),
        json!({}),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(ConfirmationToken {
        id: id.to_string(),
        outcome: DecisionOutcome::of(&m.decision.outcome),
        confirmation_token: token,
        explanation: ladder_core::decision::explain(&m.decision),
    }))
}

/// A fresh confirmation token for a message awaiting confirmation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ConfirmationTokenAnswer)]
pub struct ConfirmationToken {
    pub id: String,
    /// Always `confirmation_required`.
    pub outcome: DecisionOutcome,
    pub confirmation_token: String,
    pub explanation: String,
}

/// A revoked message: whether its payload was destroyed by this call.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = MessageRevoked)]
pub struct Revoked {
    pub id: String,
    pub payload_destroyed: bool,
}

/// Revokes a message: its payload is destroyed and it is withdrawn from
/// every provider still holding it.
#[utoipa::path(post, path = "/v1/messages/{id}/revoke", tag = "messages", operation_id = "revokeMessage",
    security(("bearer" = ["sender"])),
    params(("id" = String, Path, description = "message id")),
    responses(
        (status = 200, description = "Revoked.", body = Revoked),
        (status = 400, description = "Malformed id.", body = ErrorEnvelope),
        (status = 404, description = "No such message.", body = ErrorEnvelope),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
) -> Result<Json<Revoked>, ServiceError> {
    let id = MessageId::parse(&id, PATH_ID)?;
    let id = id.as_str();
    let shredded = keys::revoke_message(&state, &caller.tenant_id, id, &actor(&caller)).await?;
    Ok(Json(Revoked {
        id: id.to_string(),
        payload_destroyed: shredded,
    }))
}
