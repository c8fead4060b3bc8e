//! `/v1/recipients`, `/v1/devices`, `/v1/threads`: who receives, on which
//! devices, with what proof, and where each thread stands.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ladder_core::handshake::SignedReport;
use ladder_store::ids::{DeviceId, RecipientId, ThreadId};
use ladder_store::{StoreError, threads};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::input::PATH_ID;
use crate::api::parse_json;
use crate::api::views::{ChallengeView, DeviceView, RecipientView, ThreadView};
use crate::api::wire::ErrorEnvelope;
use crate::auth::{Sender, actor};
use crate::service::devices::{self, HandshakeResult, NewDevice, NewRecipient};
use crate::service::error::ServiceError;
use crate::state::AppState;

/// A registered recipient: whether contact points are on file, never the
/// addresses.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Recipient)]
pub struct Registered {
    pub id: String,
    pub external_id: String,
    pub pseudonym: String,
    pub has_email: bool,
    pub has_phone: bool,
    /// The portal's language for them (BCP 47), if set.
    pub language: Option<String>,
    /// Their IANA time zone for times on the portal, if set.
    pub time_zone: Option<String>,
}

/// Registers a recipient (or answers the one registered under that
/// `external_id`).
#[utoipa::path(post, path = "/v1/recipients", tag = "recipients", operation_id = "registerRecipient",
    security(("bearer" = ["sender"])),
    request_body = NewRecipient,
    responses(
        (status = 201, description = "Registered.", body = Registered),
        (status = 200, description = "Already registered with these contact points.", body = Registered),
        (status = 400, description = "Malformed JSON.", body = ErrorEnvelope),
        (status = 409, description = "Registered with other contact points.", body = ErrorEnvelope),
        (status = 422, description = "An invalid field, named.", body = ErrorEnvelope),
    ))]
pub async fn register(
    State(state): State<AppState>,
    Sender(caller): Sender,
    body: Bytes,
) -> Result<(StatusCode, Json<Registered>), ServiceError> {
    let req: NewRecipient = parse_json(&body)?;
    let (status, r) = devices::register(&state, &caller.tenant_id, &actor(&caller), req).await?;
    Ok((
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        Json(Registered {
            id: r.id,
            external_id: r.external_id,
            pseudonym: r.pseudonym,
            has_email: r.has_email,
            has_phone: r.has_phone,
            language: r.language,
            time_zone: r.time_zone,
        }),
    ))
}

/// A recipient with its devices and their evidence, and its threads.
#[utoipa::path(get, path = "/v1/recipients/{id}", tag = "recipients", operation_id = "getRecipient",
    security(("bearer" = ["sender"])),
    params(("id" = String, Path, description = "recipient id")),
    responses(
        (status = 200, description = "The recipient.", body = RecipientView),
        (status = 400, description = "Malformed id.", body = ErrorEnvelope),
        (status = 404, description = "No such recipient.", body = ErrorEnvelope),
    ))]
pub async fn show(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
) -> Result<Json<RecipientView>, ServiceError> {
    let id = RecipientId::parse(&id, PATH_ID)?;
    let id = id.as_str();
    Ok(Json(
        devices::recipient_view(&state, &caller.tenant_id, id).await?,
    ))
}

/// Enrols a device with its identity key.
#[utoipa::path(post, path = "/v1/recipients/{id}/devices", tag = "devices", operation_id = "enrolDevice",
    security(("bearer" = ["sender"])),
    params(("id" = String, Path, description = "recipient id")),
    request_body = NewDevice,
    responses(
        (status = 201, description = "Enrolled.", body = DeviceView),
        (status = 400, description = "Malformed id or JSON.", body = ErrorEnvelope),
        (status = 404, description = "No such recipient.", body = ErrorEnvelope),
        (status = 422, description = "An invalid key or label, named.", body = ErrorEnvelope),
    ))]
pub async fn enrol(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<DeviceView>), ServiceError> {
    let id = RecipientId::parse(&id, PATH_ID)?;
    let id = id.as_str();
    let req: NewDevice = parse_json(&body)?;
    let d = devices::enrol(&state, &caller.tenant_id, &actor(&caller), id, req).await?;
    Ok((StatusCode::CREATED, Json(DeviceView::of(&d))))
}

/// A one-time challenge for the device to sign in its handshake.
#[utoipa::path(post, path = "/v1/devices/{id}/challenge", tag = "devices", operation_id = "issueChallenge",
    security(("bearer" = ["sender"])),
    params(("id" = String, Path, description = "device id")),
    responses(
        (status = 201, description = "The challenge.", body = ChallengeView),
        (status = 400, description = "Malformed id.", body = ErrorEnvelope),
        (status = 404, description = "No such device.", body = ErrorEnvelope),
        (status = 409, description = "The device is revoked.", body = ErrorEnvelope),
    ))]
pub async fn challenge(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ChallengeView>), ServiceError> {
    let id = DeviceId::parse(&id, PATH_ID)?;
    let id = id.as_str();
    let c = devices::challenge(&state, &caller.tenant_id, id).await?;
    Ok((StatusCode::CREATED, Json(ChallengeView::from(c))))
}

/// The device's signed report of its capabilities, over the challenge.
#[utoipa::path(post, path = "/v1/devices/{id}/handshake", tag = "devices", operation_id = "submitHandshake",
    security(("bearer" = ["sender"])),
    params(("id" = String, Path, description = "device id")),
    request_body(content = Object, description = "The signed report: `report` and its Ed25519 `signature`."),
    responses(
        (status = 200, description = "Verified; evidence recorded.", body = HandshakeResult),
        (status = 400, description = "Malformed id or JSON.", body = ErrorEnvelope),
        (status = 404, description = "No such device.", body = ErrorEnvelope),
        (status = 409, description = "The device is revoked.", body = ErrorEnvelope),
        (status = 422, description = "Rejected: a bad signature, a stale or spent challenge.", body = ErrorEnvelope),
    ))]
pub async fn handshake(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<HandshakeResult>, ServiceError> {
    let id = DeviceId::parse(&id, PATH_ID)?;
    let id = id.as_str();
    let signed: SignedReport = parse_json(&body)?;
    let r = devices::handshake(&state, &caller.tenant_id, &actor(&caller), id, signed).await?;
    Ok(Json(r))
}

/// Revokes a device: its evidence stops counting at once.
#[utoipa::path(post, path = "/v1/devices/{id}/revoke", tag = "devices", operation_id = "revokeDevice",
    security(("bearer" = ["sender"])),
    params(("id" = String, Path, description = "device id")),
    responses(
        (status = 200, description = "Revoked.", body = DeviceView),
        (status = 400, description = "Malformed id.", body = ErrorEnvelope),
        (status = 404, description = "No such device.", body = ErrorEnvelope),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
) -> Result<Json<DeviceView>, ServiceError> {
    let id = DeviceId::parse(&id, PATH_ID)?;
    let id = id.as_str();
    let d = devices::revoke(&state, &caller.tenant_id, &actor(&caller), id).await?;
    Ok(Json(DeviceView::of(&d)))
}

/// A thread's floor and label.
#[utoipa::path(get, path = "/v1/threads/{id}", tag = "threads", operation_id = "getThread",
    security(("bearer" = ["sender"])),
    params(("id" = String, Path, description = "thread id")),
    responses(
        (status = 200, description = "The thread.", body = ThreadView),
        (status = 400, description = "Malformed id.", body = ErrorEnvelope),
        (status = 404, description = "No such thread.", body = ErrorEnvelope),
    ))]
pub async fn thread(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(id): Path<String>,
) -> Result<Json<ThreadView>, ServiceError> {
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
        .ok_or_else(|| ServiceError::not_found("thread", id))?;
    Ok(Json(ThreadView::of(&t)))
}
