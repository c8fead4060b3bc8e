//! `/v1/event-subscriptions`: a tenant's endpoints for outbound event
//! webhooks (`crate::service::events`), managed with an admin key — the
//! endpoint, which event types it wants, on or off, its signing secret
//! (shown once, on creation and rotation), and the record of every
//! delivery attempt, with a way to send an event again.
//!
//! The request and answer types are the document's schemas
//! (`ToSchema`); another tenant's ids are not found (404), like everywhere
//! else.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use ladder_store::event_hooks::{self, AttemptRow, Subscription};
use ladder_store::ids::{AttemptId, EventId, SubscriptionId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::input::PATH_ID;
use crate::api::lists::{after, cut, limit};
use crate::api::wire::ErrorEnvelope;
use crate::auth::{Admin, actor};
use crate::service::error::ServiceError;
use crate::service::events::subscriptions::{self, Changes};
use crate::state::AppState;

/// `POST /v1/event-subscriptions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    /// `https://…` (or `http://` to loopback where the deployment allows it).
    pub url: String,
    /// Event types to send; omitted or empty for every type.
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `PATCH /v1/event-subscriptions/{id}`: what is given changes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSubscription {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A subscription as answered (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub id: String,
    pub url: String,
    /// Empty: every type.
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// While a rotated-out secret still signs: until when (Unix seconds).
    pub previous_secret_valid_until: Option<i64>,
}

impl From<Subscription> for SubscriptionView {
    fn from(s: Subscription) -> Self {
        let now = crate::state::now().0;
        SubscriptionView {
            id: s.id,
            url: s.url,
            event_types: s.event_types,
            enabled: s.enabled,
            created_at: s.created_at,
            updated_at: s.updated_at,
            previous_secret_valid_until: s.previous_until.filter(|u| *u > now),
        }
    }
}

/// The answer to a creation: the subscription and its secret, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedSubscription {
    pub subscription: SubscriptionView,
    /// `whsec_…`: verify `webhook-signature` with it.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionPage {
    pub subscriptions: Vec<SubscriptionView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedSubscription {
    pub id: String,
    pub deleted: bool,
}

/// The answer to a rotation: the new secret, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    pub secret: String,
    /// Until then (Unix seconds) deliveries carry both signatures.
    pub previous_secret_valid_until: i64,
}

/// One delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub id: String,
    /// The event's id, its `webhook-id`.
    pub event_id: String,
    pub event_type: String,
    /// The event's state now: `pending`, `delivered` or `failed`.
    pub event_state: String,
    pub attempt: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub status_code: Option<i64>,
    /// `http_status`, `timeout`, `connect` or `request`; null when delivered.
    pub error_kind: Option<String>,
    pub duration_ms: i64,
}

impl From<AttemptRow> for AttemptView {
    fn from(r: AttemptRow) -> Self {
        AttemptView {
            id: r.attempt.id,
            event_id: r.attempt.event_id,
            event_type: r.event_type,
            event_state: r.event_state,
            attempt: r.attempt.attempt,
            at: r.attempt.at,
            status_code: r.attempt.status_code,
            error_kind: r.attempt.error_kind,
            duration_ms: r.attempt.duration_ms,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptPage {
    pub attempts: Vec<AttemptView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RetryAnswer {
    pub event_id: String,
    /// Always `pending`: the event is owed again.
    #[schema(value_type = String)]
    pub state: &'static str,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 200; default 50.
    pub limit: Option<i64>,
}

fn subscription_id(raw: &str) -> Result<SubscriptionId, ServiceError> {
    Ok(SubscriptionId::parse(raw, PATH_ID)?)
}

/// Subscribes an endpoint to events; the signing secret is shown only now.
#[utoipa::path(post, path = "/v1/event-subscriptions", tag = "events", operation_id = "createEventSubscription",
    security(("bearer" = ["admin"])),
    request_body = CreateSubscription,
    responses(
        (status = 201, description = "Created, with its secret.", body = CreatedSubscription),
        (status = 400, description = "`invalid_json`, `invalid_id`, `invalid_cursor` or `invalid_limit`, naming the field.", body = ErrorEnvelope),
        (status = 409, description = "`too_many_subscriptions`: the tenant holds the most it may.", body = ErrorEnvelope),
        (status = 422, description = "`invalid_url` (https only, or http to loopback where allowed; no credentials) or `invalid_event_type`, naming the field.", body = ErrorEnvelope),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedSubscription>), ServiceError> {
    let req: CreateSubscription = crate::api::parse_json(&body)?;
    let changes = Changes {
        url: Some(req.url),
        event_types: req.event_types,
        enabled: req.enabled,
    };
    let (s, secret) =
        subscriptions::create(&state, &caller.tenant_id, &actor(&caller), changes).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedSubscription {
            subscription: s.into(),
            secret,
        }),
    ))
}

/// The tenant's event subscriptions, newest first.
#[utoipa::path(get, path = "/v1/event-subscriptions", tag = "events", operation_id = "listEventSubscriptions",
    security(("bearer" = ["admin"])),
    params(PageQuery),
    responses(
        (status = 200, description = "One page.", body = SubscriptionPage),
        (status = 400, description = "`invalid_json`, `invalid_id`, `invalid_cursor` or `invalid_limit`, naming the field.", body = ErrorEnvelope),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Query(q): Query<PageQuery>,
) -> Result<Json<SubscriptionPage>, ServiceError> {
    let limit = limit(q.limit)?;
    let before = after(q.cursor.as_deref(), |s| {
        SubscriptionId::parse(s, "cursor").ok()
    })?;
    let mut conn = state.store.acquire().await?;
    let mut page = event_hooks::list(
        &mut conn,
        &caller.tenant_id,
        before.as_ref().map(SubscriptionId::as_str),
        i64::from(limit) + 1,
    )
    .await?;
    let next_cursor = cut(&mut page, limit, |s| &s.id);
    Ok(Json(SubscriptionPage {
        subscriptions: page.into_iter().map(SubscriptionView::from).collect(),
        next_cursor,
    }))
}

/// One event subscription (never its secret).
#[utoipa::path(get, path = "/v1/event-subscriptions/{id}", tag = "events", operation_id = "getEventSubscription",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "event subscription id")),
    responses(
        (status = 200, description = "The subscription.", body = SubscriptionView),
        (status = 400, description = "`invalid_json`, `invalid_id`, `invalid_cursor` or `invalid_limit`, naming the field.", body = ErrorEnvelope),
        (status = 404, description = "No event subscription of this tenant with this id.", body = ErrorEnvelope),
    ))]
pub async fn show(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionView>, ServiceError> {
    let id = subscription_id(&id)?;
    let s = subscriptions::get(&state, &caller.tenant_id, &id).await?;
    Ok(Json(s.into()))
}

/// Changes what is given of an event subscription.
#[utoipa::path(patch, path = "/v1/event-subscriptions/{id}", tag = "events", operation_id = "updateEventSubscription",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "event subscription id")),
    request_body = UpdateSubscription,
    responses(
        (status = 200, description = "Changed.", body = SubscriptionView),
        (status = 400, description = "`invalid_json`, `invalid_id`, `invalid_cursor` or `invalid_limit`, naming the field.", body = ErrorEnvelope),
        (status = 404, description = "No event subscription of this tenant with this id.", body = ErrorEnvelope),
        (status = 422, description = "`invalid_url` (https only, or http to loopback where allowed; no credentials) or `invalid_event_type`, naming the field.", body = ErrorEnvelope),
    ))]
pub async fn update(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<SubscriptionView>, ServiceError> {
    let id = subscription_id(&id)?;
    let req: UpdateSubscription = crate::api::parse_json(&body)?;
    let changes = Changes {
        url: req.url,
        event_types: req.event_types,
        enabled: req.enabled,
    };
    let s = subscriptions::update(&state, &caller.tenant_id, &actor(&caller), &id, changes).await?;
    Ok(Json(s.into()))
}

/// Deletes an event subscription; events owed to it are dropped.
#[utoipa::path(delete, path = "/v1/event-subscriptions/{id}", tag = "events", operation_id = "deleteEventSubscription",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "event subscription id")),
    responses(
        (status = 200, description = "Deleted.", body = DeletedSubscription),
        (status = 400, description = "`invalid_json`, `invalid_id`, `invalid_cursor` or `invalid_limit`, naming the field.", body = ErrorEnvelope),
        (status = 404, description = "No event subscription of this tenant with this id.", body = ErrorEnvelope),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<Json<DeletedSubscription>, ServiceError> {
    let id = subscription_id(&id)?;
    subscriptions::delete(&state, &caller.tenant_id, &actor(&caller), &id).await?;
    Ok(Json(DeletedSubscription {
        id: id.to_string(),
        deleted: true,
    }))
}

/// Rotates the signing secret: the new one is shown only now; the old one
/// keeps signing beside it for the grace period.
#[utoipa::path(post, path = "/v1/event-subscriptions/{id}/rotate-secret", tag = "events", operation_id = "rotateEventSubscriptionSecret",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "event subscription id")),
    responses(
        (status = 200, description = "Rotated.", body = RotatedSecret),
        (status = 400, description = "`invalid_json`, `invalid_id`, `invalid_cursor` or `invalid_limit`, naming the field.", body = ErrorEnvelope),
        (status = 404, description = "No event subscription of this tenant with this id.", body = ErrorEnvelope),
    ))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<Json<RotatedSecret>, ServiceError> {
    let id = subscription_id(&id)?;
    let (secret, until) =
        subscriptions::rotate(&state, &caller.tenant_id, &actor(&caller), &id).await?;
    Ok(Json(RotatedSecret {
        secret,
        previous_secret_valid_until: until,
    }))
}

/// The subscription's delivery attempts, newest first.
#[utoipa::path(get, path = "/v1/event-subscriptions/{id}/attempts", tag = "events", operation_id = "listEventAttempts",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "event subscription id"), PageQuery),
    responses(
        (status = 200, description = "One page.", body = AttemptPage),
        (status = 400, description = "`invalid_json`, `invalid_id`, `invalid_cursor` or `invalid_limit`, naming the field.", body = ErrorEnvelope),
        (status = 404, description = "No event subscription of this tenant with this id.", body = ErrorEnvelope),
    ))]
pub async fn attempts(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<AttemptPage>, ServiceError> {
    let id = subscription_id(&id)?;
    let limit = limit(q.limit)?;
    let before = after(q.cursor.as_deref(), |s| AttemptId::parse(s, "cursor").ok())?;
    // 404 for a subscription that is not the caller's.
    subscriptions::get(&state, &caller.tenant_id, &id).await?;
    let mut conn = state.store.acquire().await?;
    let mut page = event_hooks::attempts(
        &mut conn,
        &caller.tenant_id,
        id.as_str(),
        before.as_ref().map(AttemptId::as_str),
        i64::from(limit) + 1,
    )
    .await?;
    let next_cursor = cut(&mut page, limit, |r| &r.attempt.id);
    Ok(Json(AttemptPage {
        attempts: page.into_iter().map(AttemptView::from).collect(),
        next_cursor,
    }))
}

/// Owes an event to the subscription again (by the event's or one of its
/// attempts' id).
#[utoipa::path(post, path = "/v1/event-subscriptions/{id}/attempts/{attempt_or_event_id}/retry", tag = "events", operation_id = "retryEvent",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "event subscription id"), ("attempt_or_event_id" = String, Path, description = "a delivery attempt's id or an event's id")),
    responses(
        (status = 202, description = "Owed again.", body = RetryAnswer),
        (status = 400, description = "`invalid_json`, `invalid_id`, `invalid_cursor` or `invalid_limit`, naming the field.", body = ErrorEnvelope),
        (status = 404, description = "No such subscription, event or attempt for this tenant.", body = ErrorEnvelope),
        (status = 409, description = "`attempt_in_flight`: an attempt is running now.", body = ErrorEnvelope),
    ))]
pub async fn retry(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path((id, target)): Path<(String, String)>,
) -> Result<(StatusCode, Json<RetryAnswer>), ServiceError> {
    const FIELD: &str = "path segment `attempt_or_event_id`";
    let id = subscription_id(&id)?;
    // Either kind of id; the error names both shapes.
    let target = match AttemptId::parse(&target, FIELD) {
        Ok(a) => a.to_string(),
        Err(_) => EventId::parse(&target, FIELD)
            .map_err(|_| {
                ServiceError::bad_request(
                    "invalid_id",
                    format!(
                        "{FIELD} is not a delivery attempt id (`{}_…`) or an event id (`{}_…`)",
                        AttemptId::PREFIX,
                        EventId::PREFIX
                    ),
                )
            })?
            .to_string(),
    };
    let event_id =
        subscriptions::retry(&state, &caller.tenant_id, &actor(&caller), &id, &target).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RetryAnswer {
            event_id,
            state: "pending",
        }),
    ))
}
