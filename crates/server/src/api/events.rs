//! `/v1/event-subscriptions`: a tenant's endpoints for outbound event
//! webhooks (`crate::service::events`), managed with an admin key — the
//! endpoint, which event types it wants, on or off, its signing secret
//! (shown once, on creation and rotation), and the record of every
//! delivery attempt, with a way to send an event again.
//!
//! The request and answer types are plain serde structs so the OpenAPI
//! document can be generated from them later. Another tenant's ids are not
//! found (404), like everywhere else.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use ladder_store::event_hooks::{self, AttemptRow, Subscription};
use ladder_store::ids::{AttemptId, EventId, SubscriptionId};
use serde::{Deserialize, Serialize};

use crate::api::input::PATH_ID;
use crate::api::lists::{after, cut, limit};
use crate::auth::{Admin, actor};
use crate::error::ApiError;
use crate::service::events::subscriptions::{self, Changes};
use crate::state::AppState;

/// `POST /v1/event-subscriptions`.
#[derive(Debug, Deserialize)]
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
#[derive(Debug, Deserialize)]
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
#[derive(Debug, Serialize)]
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
#[derive(Debug, Serialize)]
pub struct CreatedSubscription {
    pub subscription: SubscriptionView,
    /// `whsec_…`: verify `webhook-signature` with it.
    pub secret: String,
}

#[derive(Debug, Serialize)]
pub struct SubscriptionPage {
    pub subscriptions: Vec<SubscriptionView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DeletedSubscription {
    pub id: String,
    pub deleted: bool,
}

/// The answer to a rotation: the new secret, shown once.
#[derive(Debug, Serialize)]
pub struct RotatedSecret {
    pub secret: String,
    /// Until then (Unix seconds) deliveries carry both signatures.
    pub previous_secret_valid_until: i64,
}

/// One delivery attempt.
#[derive(Debug, Serialize)]
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

#[derive(Debug, Serialize)]
pub struct AttemptPage {
    pub attempts: Vec<AttemptView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RetryAnswer {
    pub event_id: String,
    pub state: &'static str,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

fn subscription_id(raw: &str) -> Result<SubscriptionId, ApiError> {
    Ok(SubscriptionId::parse(raw, PATH_ID)?)
}

pub async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedSubscription>), ApiError> {
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

pub async fn list(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Query(q): Query<PageQuery>,
) -> Result<Json<SubscriptionPage>, ApiError> {
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

pub async fn show(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionView>, ApiError> {
    let id = subscription_id(&id)?;
    let s = subscriptions::get(&state, &caller.tenant_id, &id).await?;
    Ok(Json(s.into()))
}

pub async fn update(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<SubscriptionView>, ApiError> {
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

pub async fn delete(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<Json<DeletedSubscription>, ApiError> {
    let id = subscription_id(&id)?;
    subscriptions::delete(&state, &caller.tenant_id, &actor(&caller), &id).await?;
    Ok(Json(DeletedSubscription {
        id: id.to_string(),
        deleted: true,
    }))
}

pub async fn rotate_secret(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<Json<RotatedSecret>, ApiError> {
    let id = subscription_id(&id)?;
    let (secret, until) =
        subscriptions::rotate(&state, &caller.tenant_id, &actor(&caller), &id).await?;
    Ok(Json(RotatedSecret {
        secret,
        previous_secret_valid_until: until,
    }))
}

pub async fn attempts(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<AttemptPage>, ApiError> {
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

pub async fn retry(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path((id, target)): Path<(String, String)>,
) -> Result<(StatusCode, Json<RetryAnswer>), ApiError> {
    const FIELD: &str = "path segment `attempt_or_event_id`";
    let id = subscription_id(&id)?;
    // Either kind of id; the error names both shapes.
    let target = match AttemptId::parse(&target, FIELD) {
        Ok(a) => a.to_string(),
        Err(_) => EventId::parse(&target, FIELD)
            .map_err(|_| {
                ApiError::bad_request(
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
