//! Policy and overrides: publication and emergency switches (admin scope
//! to change, sender scope to read).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ladder_store::{StoreError, policies, tenants};
use serde_json::{Value, json};

use crate::auth::{Admin, Sender, actor};
use crate::error::ApiError;
use crate::service::{overrides, policy};
use crate::state::AppState;

pub async fn policy(
    State(state): State<AppState>,
    Sender(caller): Sender,
) -> Result<Json<Value>, ApiError> {
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let p = policies::active(&mut conn, &caller.tenant_id)
        .await?
        .ok_or_else(|| ApiError::not_found("policy", "active"))?;
    Ok(Json(json!({
        "version": p.version,
        "revision": p.revision,
        "published_at": p.published_at,
        "published_by": p.published_by,
        "source": p.source,
    })))
}

/// `PUT /v1/policy` with the policy file as the body (TOML).
pub async fn publish(
    State(state): State<AppState>,
    Admin(caller): Admin,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("invalid_policy", "the policy must be UTF-8 text"))?;
    let mut tx = state.store.begin().await?;
    let tenant = tenants::get(&mut tx, &caller.tenant_id)
        .await?
        .ok_or_else(|| ApiError::Internal("caller's tenant is missing".into()))?;
    let stored = policy::publish(
        &mut tx,
        &state,
        &tenant.id,
        &tenant.name,
        text,
        &actor(&caller),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(json!({
        "version": stored.version,
        "revision": stored.revision,
        "published_at": stored.published_at,
    })))
}

pub async fn overrides(
    State(state): State<AppState>,
    Sender(caller): Sender,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "overrides": overrides::list(&state.store, &caller.tenant_id).await? }),
    ))
}

/// `POST /v1/overrides` with the fields of a policy file's override as a
/// JSON object of strings (`expires_in = "4h"` or `expires` RFC 3339).
pub async fn set_override(
    State(state): State<AppState>,
    Admin(caller): Admin,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut value: Value = crate::api::parse_json(&body)?;
    if let Some(obj) = value.as_object_mut() {
        obj.entry("author")
            .or_insert_with(|| Value::String(actor(&caller)));
    }
    let text = overrides::toml_from_json(&value)?;
    let o = overrides::set(&state, &caller.tenant_id, &actor(&caller), &text).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "override": o.rule, "state": "active" })),
    ))
}

pub async fn clear_override(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let o = overrides::clear(&state, &caller.tenant_id, &actor(&caller), &id).await?;
    Ok(Json(
        json!({ "override": o.rule, "state": "cleared", "cleared_at": o.cleared_at }),
    ))
}
