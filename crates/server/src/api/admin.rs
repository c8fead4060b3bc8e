//! Policy and overrides: publication and emergency switches (admin scope
//! to change, sender scope to read).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use ladder_store::{StoreError, policies, tenants};
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::api::wire::ErrorEnvelope;
use crate::auth::{Admin, Sender, actor};
use crate::service::error::ServiceError;
use crate::service::{overrides, policy};
use crate::state::AppState;

/// The active policy.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PolicyInfo)]
pub struct ActivePolicy {
    /// The SHA-256 of the policy's canonical model.
    pub version: String,
    pub revision: i64,
    pub published_at: i64,
    pub published_by: String,
    /// The policy file (TOML).
    pub source: String,
}

/// The active policy, with its source.
#[utoipa::path(get, path = "/v1/policy", tag = "policy", operation_id = "getPolicy",
    security(("bearer" = ["sender"])),
    responses(
        (status = 200, description = "The active policy.", body = ActivePolicy),
        (status = 404, description = "No policy published yet.", body = ErrorEnvelope),
    ))]
pub async fn policy(
    State(state): State<AppState>,
    Sender(caller): Sender,
) -> Result<Json<ActivePolicy>, ServiceError> {
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let p = policies::active(&mut conn, &caller.tenant_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("policy", "active"))?;
    Ok(Json(ActivePolicy {
        version: p.version,
        revision: p.revision,
        published_at: p.published_at,
        published_by: p.published_by,
        source: p.source,
    }))
}

#[derive(Debug, serde::Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PublishQuery {
    /// Return to an earlier, once-published version on purpose.
    #[serde(default)]
    pub rollback: bool,
}

/// `PUT /v1/policy` with the policy file as the body (TOML);
/// `?rollback=true` to return to an earlier revision on purpose.
#[utoipa::path(put, path = "/v1/policy", tag = "policy", operation_id = "publishPolicy",
    security(("bearer" = ["admin"])),
    params(PublishQuery),
    request_body(content = String, content_type = "application/toml", description = "The policy file."),
    responses(
        (status = 200, description = "Published (or already active).", body = PublishedPolicy),
        (status = 400, description = "Not UTF-8, or a malformed query.", body = ErrorEnvelope),
        (status = 409, description = "A rollback without `rollback=true`, or a concurrent publication.", body = ErrorEnvelope),
        (status = 422, description = "The policy does not validate: every error with line and column in `details`.", body = ErrorEnvelope),
    ))]
pub async fn publish(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Query(q): Query<PublishQuery>,
    body: Bytes,
) -> Result<Json<PublishedPolicy>, ServiceError> {
    let direction = if q.rollback {
        policy::Direction::Rollback
    } else {
        policy::Direction::Forward
    };
    let text = std::str::from_utf8(&body).map_err(|_| {
        ServiceError::bad_request("invalid_policy", "the policy must be UTF-8 text")
    })?;
    let mut tx = state.store.begin().await?;
    let tenant = tenants::get(&mut tx, &caller.tenant_id)
        .await?
        .ok_or_else(|| ServiceError::Internal("caller's tenant is missing".into()))?;
    let stored = policy::publish(
        &mut tx,
        &state,
        &tenant.id,
        &tenant.name,
        text,
        &actor(&caller),
        direction,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(PublishedPolicy {
        version: stored.version,
        revision: stored.revision,
        published_at: stored.published_at,
    }))
}

/// A publication.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishedPolicy {
    pub version: String,
    pub revision: i64,
    pub published_at: i64,
}

/// Overrides: every one, or a page of the history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OverrideList)]
pub struct Overrides {
    pub overrides: Vec<overrides::OverrideEntry>,
    /// With a page: the cursor of the next one, `null` on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub next_cursor: Option<Option<String>>,
}

/// An override and where it stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OverrideSet)]
pub struct OverrideState {
    #[serde(rename = "override")]
    #[schema(value_type = Object)]
    pub rule: ladder_core::overrides::Override,
    /// `active` or `cleared`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleared_at: Option<i64>,
}

#[derive(Debug, serde::Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OverrideQuery {
    /// `active` (in force now) or `all` (the history).
    pub state: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// `GET /v1/overrides`: without parameters, every override as it always
/// answered; with `state`, `cursor` or `limit`, a page of the history
/// (`crate::service::overrides::history`).
#[utoipa::path(get, path = "/v1/overrides", tag = "overrides", operation_id = "listOverrides",
    security(("bearer" = ["sender"])),
    params(OverrideQuery),
    responses(
        (status = 200, description = "The overrides.", body = Overrides),
        (status = 400, description = "A malformed filter, cursor or limit.", body = ErrorEnvelope),
    ))]
pub async fn overrides(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Query(q): Query<OverrideQuery>,
) -> Result<Json<Overrides>, ServiceError> {
    if q.state.is_none() && q.cursor.is_none() && q.limit.is_none() {
        return Ok(Json(Overrides {
            overrides: overrides::list(&state.store, &caller.tenant_id).await?,
            next_cursor: None,
        }));
    }
    let limit = crate::api::lists::limit(q.limit)?;
    let active_only = match q.state.as_deref() {
        None | Some("all") => false,
        Some("active") => true,
        Some(_) => {
            return Err(ServiceError::bad_request(
                "invalid_filter",
                "query `state` must be one of active, all",
            ));
        }
    };
    let before = crate::api::lists::after(q.cursor.as_deref(), |s| {
        ladder_store::ids::OverrideRowId::parse(s, "cursor").ok()
    })?;
    let mut page = overrides::history(
        &state.store,
        &caller.tenant_id,
        active_only,
        before
            .as_ref()
            .map(ladder_store::ids::OverrideRowId::as_str),
        i64::from(limit) + 1,
    )
    .await?;
    let next = crate::api::lists::cut(&mut page, limit, |(id, _)| id);
    let page: Vec<overrides::OverrideEntry> = page.into_iter().map(|(_, v)| v).collect();
    Ok(Json(Overrides {
        overrides: page,
        next_cursor: Some(next),
    }))
}

/// The body of `POST /v1/overrides`: the fields of a policy file's
/// `[[override]]` table, every value a string, validated exactly as in a
/// policy file (so the handler hands them to the policy parser rather than
/// to serde; this type is the document's description of them). Give
/// `expires` (RFC 3339) or `expires_in` (`4h`); `author` defaults to the
/// calling key.
#[derive(Debug, ToSchema)]
#[expect(
    dead_code,
    reason = "documents the body; the policy parser reads it, not serde"
)]
pub struct OverrideRequest {
    pub id: String,
    /// `rcs`, `in_app`, `sms`, `email`, `push` or `portal`.
    pub channel: String,
    /// `disable`, `distrust_e2ee` or `force_step`.
    pub effect: String,
    pub reason: String,
    pub os: Option<String>,
    /// A version range such as `>=17.0, <18.2`.
    pub os_version: Option<String>,
    pub client: Option<String>,
    pub client_version: Option<String>,
    pub carrier: Option<String>,
    /// The container to force, with `effect = force_step`.
    pub force: Option<String>,
    pub author: Option<String>,
    pub expires: Option<String>,
    pub expires_in: Option<String>,
}

/// `POST /v1/overrides` with the fields of a policy file's override as a
/// JSON object of strings (`expires_in = "4h"` or `expires` RFC 3339).
#[utoipa::path(post, path = "/v1/overrides", tag = "overrides", operation_id = "setOverride",
    security(("bearer" = ["admin"])),
    request_body = OverrideRequest,
    responses(
        (status = 201, description = "In force.", body = OverrideState),
        (status = 400, description = "Malformed JSON.", body = ErrorEnvelope),
        (status = 409, description = "An override with that id is in force.", body = ErrorEnvelope),
        (status = 422, description = "The override does not validate.", body = ErrorEnvelope),
    ))]
pub async fn set_override(
    State(state): State<AppState>,
    Admin(caller): Admin,
    body: Bytes,
) -> Result<(StatusCode, Json<OverrideState>), ServiceError> {
    let mut value: Value = crate::api::parse_json(&body)?;
    if let Some(obj) = value.as_object_mut() {
        obj.entry("author")
            .or_insert_with(|| Value::String(actor(&caller)));
    }
    let text = overrides::toml_from_json(&value)?;
    let o = overrides::set(&state, &caller.tenant_id, &actor(&caller), &text).await?;
    Ok((
        StatusCode::CREATED,
        Json(OverrideState {
            rule: o.rule,
            state: "active".into(),
            cleared_at: None,
        }),
    ))
}

/// Clears an override: it stops applying now.
#[utoipa::path(delete, path = "/v1/overrides/{id}", tag = "overrides", operation_id = "clearOverride",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "override id")),
    responses(
        (status = 200, description = "Cleared.", body = OverrideState),
        (status = 400, description = "Malformed id.", body = ErrorEnvelope),
        (status = 404, description = "No such override in force.", body = ErrorEnvelope),
    ))]
pub async fn clear_override(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<Json<OverrideState>, ServiceError> {
    let id = crate::api::input::path_name("id", &id)?;
    let o = overrides::clear(&state, &caller.tenant_id, &actor(&caller), id).await?;
    Ok(Json(OverrideState {
        rule: o.rule,
        state: "cleared".into(),
        cleared_at: o.cleared_at,
    }))
}

/// `POST /v1/overrides/{id}/renew`: exactly one of the two.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RenewOverrideBody)]
pub struct RenewRequest {
    /// How long from now, e.g. `24h`.
    #[serde(default)]
    pub expires_in: Option<String>,
    /// Or an RFC 3339 instant.
    #[serde(default)]
    pub expires: Option<String>,
}

/// `POST /v1/overrides/{id}/renew`: the emergency lasts longer; the
/// override gets a new expiry within the policy's maximum lifetime.
#[utoipa::path(post, path = "/v1/overrides/{id}/renew", tag = "overrides", operation_id = "renewOverride",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "override id")),
    request_body = RenewRequest,
    responses(
        (status = 200, description = "Renewed.", body = OverrideState),
        (status = 400, description = "Malformed id or JSON.", body = ErrorEnvelope),
        (status = 404, description = "No such override in force.", body = ErrorEnvelope),
        (status = 422, description = "A bad expiry, or beyond the policy's maximum lifetime.", body = ErrorEnvelope),
    ))]
pub async fn renew_override(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<OverrideState>, ServiceError> {
    let id = crate::api::input::path_name("id", &id)?;
    let req: RenewRequest = crate::api::parse_json(&body)?;
    let at = crate::state::now();
    let expires = match (req.expires_in.as_deref(), req.expires.as_deref()) {
        (Some(d), None) => d
            .parse::<ladder_core::Duration>()
            .map(|d| at.plus(d))
            .map_err(|e| {
                ServiceError::invalid("invalid_override", format!("field `expires_in`: {e}"))
            })?,
        (None, Some(t)) => ladder_core::Timestamp::parse_rfc3339(t).map_err(|e| {
            ServiceError::invalid("invalid_override", format!("field `expires`: {e}"))
        })?,
        _ => {
            return Err(ServiceError::invalid(
                "invalid_override",
                "give exactly one of `expires_in` and `expires`",
            ));
        }
    };
    let o = overrides::renew(&state, &caller.tenant_id, &actor(&caller), id, expires).await?;
    Ok(Json(OverrideState {
        rule: o.rule,
        state: "active".into(),
        cleared_at: None,
    }))
}
