//! `/v1/escalations`: the escalation queue and an operator's actions on it
//! (send by a permitted route, block, extend a hold). Listing is sender
//! scope; acting is admin scope, each action with a reason and audited
//! with the operator's identity (`crate::service::escalations`). The list
//! pages like `GET /v1/messages` (`super::lists`): newest first, opaque
//! cursor, `limit` 1 to 200, unknown parameters refused.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use ladder_store::ids::MessageId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::input::PATH_ID;
use crate::api::lists::{after, cut, limit};
use crate::api::wire::ErrorEnvelope;
use crate::auth::{Admin, Sender};
use crate::service::error::ServiceError;
use crate::service::escalations::{self, ActionOutcome, QueueItem, QueueKind};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// `escalated` or `held`; both when absent.
    pub kind: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// A page of the queue, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Escalations {
    pub escalations: Vec<QueueItem>,
    pub next_cursor: Option<String>,
}

/// Escalated and held messages.
#[utoipa::path(get, path = "/v1/escalations", tag = "escalations", operation_id = "listEscalations",
    security(("bearer" = ["sender"])),
    params(QueueQuery),
    responses(
        (status = 200, description = "A page.", body = Escalations),
        (status = 400, description = "A malformed filter, cursor or limit.", body = ErrorEnvelope),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Query(q): Query<QueueQuery>,
) -> Result<Json<Escalations>, ServiceError> {
    let limit = limit(q.limit)?;
    let kind = q
        .kind
        .as_deref()
        .map(|k| {
            QueueKind::from_name(k).ok_or_else(|| {
                ServiceError::bad_request(
                    "invalid_filter",
                    "query `kind` must be one of escalated, held",
                )
            })
        })
        .transpose()?;
    let before = after(q.cursor.as_deref(), |s| MessageId::parse(s, "cursor").ok())?;
    let mut page = escalations::queue(
        &state,
        &caller.tenant_id,
        kind,
        before.as_ref().map(MessageId::as_str),
        i64::from(limit) + 1,
    )
    .await?;
    let next = cut(&mut page, limit, |i| &i.id);
    Ok(Json(Escalations {
        escalations: page,
        next_cursor: next,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SendEscalationBody)]
pub struct SendRequest {
    /// The route to send by, as `portal+email_notice`.
    pub route: String,
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BlockEscalationBody)]
pub struct BlockRequest {
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ExtendHoldBody)]
pub struct ExtendRequest {
    /// The next look, Unix seconds.
    pub until: i64,
    pub reason: String,
}

/// Sends an escalated or held message by a route the decision permits now.
#[utoipa::path(post, path = "/v1/escalations/{message_id}/send", tag = "escalations", operation_id = "sendEscalation",
    security(("bearer" = ["admin"])),
    params(("message_id" = String, Path, description = "message id")),
    request_body = SendRequest,
    responses(
        (status = 200, description = "Queued on the route.", body = ActionOutcome),
        (status = 400, description = "Malformed id or JSON.", body = ErrorEnvelope),
        (status = 404, description = "No such message.", body = ErrorEnvelope),
        (status = 409, description = "The message is not in the queue (`not_in_queue`), or a concurrent action.", body = ErrorEnvelope),
        (status = 422, description = "An invalid field, named.", body = ErrorEnvelope),
    ))]
pub async fn send(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ActionOutcome>, ServiceError> {
    let id = MessageId::parse(&id, PATH_ID)?;
    let req: SendRequest = crate::api::parse_json(&body)?;
    Ok(Json(
        escalations::send_by(&state, &caller, &id, &req.route, &req.reason).await?,
    ))
}

/// Blocks an escalated or held message; its payload is destroyed.
#[utoipa::path(post, path = "/v1/escalations/{message_id}/block", tag = "escalations", operation_id = "blockEscalation",
    security(("bearer" = ["admin"])),
    params(("message_id" = String, Path, description = "message id")),
    request_body = BlockRequest,
    responses(
        (status = 200, description = "Blocked.", body = ActionOutcome),
        (status = 400, description = "Malformed id or JSON.", body = ErrorEnvelope),
        (status = 404, description = "No such message.", body = ErrorEnvelope),
        (status = 409, description = "The message is not in the queue (`not_in_queue`), or a concurrent action.", body = ErrorEnvelope),
        (status = 422, description = "An invalid field, named.", body = ErrorEnvelope),
    ))]
pub async fn block(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ActionOutcome>, ServiceError> {
    let id = MessageId::parse(&id, PATH_ID)?;
    let req: BlockRequest = crate::api::parse_json(&body)?;
    Ok(Json(
        escalations::block(&state, &caller, &id, &req.reason).await?,
    ))
}

/// Extends a held message's next look.
#[utoipa::path(post, path = "/v1/escalations/{message_id}/extend", tag = "escalations", operation_id = "extendHold",
    security(("bearer" = ["admin"])),
    params(("message_id" = String, Path, description = "message id")),
    request_body = ExtendRequest,
    responses(
        (status = 200, description = "Extended.", body = ActionOutcome),
        (status = 400, description = "Malformed id or JSON.", body = ErrorEnvelope),
        (status = 404, description = "No such message.", body = ErrorEnvelope),
        (status = 409, description = "The message is not in the queue (`not_in_queue`), or a concurrent action.", body = ErrorEnvelope),
        (status = 422, description = "An invalid field, named.", body = ErrorEnvelope),
    ))]
pub async fn extend(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ActionOutcome>, ServiceError> {
    let id = MessageId::parse(&id, PATH_ID)?;
    let req: ExtendRequest = crate::api::parse_json(&body)?;
    Ok(Json(
        escalations::extend(&state, &caller, &id, req.until, &req.reason).await?,
    ))
}
