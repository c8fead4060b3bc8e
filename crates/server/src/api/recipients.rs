//! `/v1/recipients`, `/v1/devices`, `/v1/threads`: who receives, on which
//! devices, with what proof, and where each thread stands.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ladder_core::handshake::SignedReport;
use ladder_store::ids::{DeviceId, RecipientId, ThreadId};
use ladder_store::{StoreError, threads};
use serde_json::{Value, json};

use crate::api::input::PATH_ID;
use crate::api::parse_json;
use crate::auth::{Sender, actor};
use crate::error::ApiError;
use crate::service::devices::{self, NewDevice, NewRecipient};
use crate::state::AppState;

pub async fn register(
    State(state): State<AppState>,
    Sender(caller): Sender,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req: NewRecipient = parse_json(&body)?;
    let (status, r) = devices::register(&state, &caller.tenant_id, &actor(&caller), req).await?;
    Ok((
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        Json(json!({
            "id": r.id,
            "external_id": r.external_id,
            "pseudonym": r.pseudonym,
            "has_email": r.has_email,
            "has_phone": r.has_phone,
            "language": r.language,
            "time_zone": r.time_zone,
        })),
    ))
}

pub async fn show(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = RecipientId::parse(&id, PATH_ID)?;
    let id = id.as_str();
    Ok(Json(
        devices::recipient_view(&state, &caller.tenant_id, id).await?,
    ))
}

pub async fn enrol(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = RecipientId::parse(&id, PATH_ID)?;
    let id = id.as_str();
    let req: NewDevice = parse_json(&body)?;
    let d = devices::enrol(&state, &caller.tenant_id, &actor(&caller), id, req).await?;
    Ok((StatusCode::CREATED, Json(devices::device_view(&d))))
}

pub async fn challenge(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = DeviceId::parse(&id, PATH_ID)?;
    let id = id.as_str();
    let c = devices::challenge(&state, &caller.tenant_id, id).await?;
    Ok((StatusCode::CREATED, Json(json!(c))))
}

pub async fn handshake(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = DeviceId::parse(&id, PATH_ID)?;
    let id = id.as_str();
    let signed: SignedReport = parse_json(&body)?;
    let r = devices::handshake(&state, &caller.tenant_id, &actor(&caller), id, signed).await?;
    Ok(Json(json!(r)))
}

pub async fn revoke(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = DeviceId::parse(&id, PATH_ID)?;
    let id = id.as_str();
    let d = devices::revoke(&state, &caller.tenant_id, &actor(&caller), id).await?;
    Ok(Json(devices::device_view(&d)))
}

pub async fn thread(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = ThreadId::parse(&id, PATH_ID)?;
    let id = id.as_str();
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let t = threads::get(&mut conn, &caller.tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("thread", id))?;
    Ok(Json(devices::thread_view(&t)))
}
