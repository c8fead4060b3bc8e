//! `/v1/messages`: send, status, explanation, confirmation, revocation.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ladder_store::ids::MessageId;
use ladder_store::{StoreError, ids, messages, threads};
use serde::Deserialize;
use serde_json::json;

use crate::api::input::{PATH_ID, header_text};
use crate::api::parse_json;
use crate::auth::{Sender, actor};
use crate::error::ApiError;
use crate::service::devices::thread_view;
use crate::service::{keys, send};
use crate::state::AppState;

fn answer(a: send::Answer) -> Response {
    let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(a.body)).into_response()
}

pub async fn send(
    State(state): State<AppState>,
    Sender(caller): Sender,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = header_text(&headers, "idempotency-key")?
        .ok_or_else(|| {
            ApiError::bad_request(
                "missing_idempotency_key",
                "header `Idempotency-Key` is required: a retry with the same key sends nothing twice",
            )
        })?
        .to_string();
    let request: send::SendRequest = parse_json(&body)?;
    let a = send::accept(&state, &caller.tenant_id, &actor(&caller), &key, request).await?;
    Ok(answer(a))
}

pub async fn status(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
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
        .ok_or_else(|| ApiError::not_found("message", id))?;
    let events = messages::events(&mut conn, &caller.tenant_id, id).await?;
    let payload = messages::payload(&mut conn, &caller.tenant_id, id).await?;
    let thread = threads::get(&mut conn, &caller.tenant_id, &m.thread_id).await?;
    let payload_state = match payload {
        None => "none",
        Some(p) if p.shredded_at.is_some() => "shredded",
        Some(_) => "sealed",
    };
    Ok(Json(json!({
        "id": m.id,
        "status": m.status,
        "class": m.class,
        "recipient": m.recipient_id,
        "thread": thread.as_ref().map(thread_view),
        "accepted_at": m.accepted_at,
        "updated_at": m.updated_at,
        "expires_at": m.expires_at,
        "payload": payload_state,
        "decision": m.decision,
        "failed": m.failed,
        "events": events,
        "audit": ladder_store::audit::signed::indexes_about(&mut conn, &caller.tenant_id, &m.id)
            .await?
            .into_iter()
            .map(|(index, kind)| json!({ "index": index, "kind": kind }))
            .collect::<Vec<_>>(),
    })))
}

pub async fn explain(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
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
        .ok_or_else(|| ApiError::not_found("message", id))?;
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    pub token: String,
}

pub async fn confirm(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
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
pub async fn confirmation_token(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = MessageId::parse(&id, PATH_ID)?;
    let id = id.as_str();
    let mut tx = state.store.begin().await?;
    let mut m = messages::get(&mut tx, &caller.tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("message", id))?;
    if m.status != messages::Status::AwaitingConfirmation {
        return Err(ApiError::conflict(
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
    Ok(Json(json!({
        "id": id,
        "confirmation_token": token,
        "explanation": ladder_core::decision::explain(&m.decision),
    })))
}

pub async fn revoke(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = MessageId::parse(&id, PATH_ID)?;
    let id = id.as_str();
    let shredded = keys::revoke_message(&state, &caller.tenant_id, id, &actor(&caller)).await?;
    Ok(Json(json!({ "id": id, "payload_destroyed": shredded })))
}
