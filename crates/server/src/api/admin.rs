//! Admin-scope routes: policy, overrides and the audit log.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use ladder_store::{StoreError, audit, policies, tenants};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Admin, Sender, actor};
use crate::error::ApiError;
use crate::service::{overrides, policy};
use crate::state::{AppState, now};

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    #[serde(default)]
    pub after: i64,
    #[serde(default = "default_limit")]
    pub limit: i64,
}

fn default_limit() -> i64 {
    100
}

pub async fn audit(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    if !(1..=1000).contains(&page.limit) || page.after < 0 {
        return Err(ApiError::bad_request(
            "invalid_page",
            "query `limit` must be 1-1000 and `after` a sequence number (0 for the start)",
        ));
    }
    let entries = audit::page(&state.store, &caller.tenant_id, page.after, page.limit).await?;
    let next = entries.last().map(|e| e.seq);
    Ok(Json(json!({ "entries": entries, "next_after": next })))
}

pub async fn checkpoints(
    State(state): State<AppState>,
    Admin(caller): Admin,
) -> Result<Json<Value>, ApiError> {
    let cps = audit::checkpoints(&state.store, &caller.tenant_id).await?;
    Ok(Json(json!({ "checkpoints": cps })))
}

pub async fn checkpoint_now(
    State(state): State<AppState>,
    Admin(caller): Admin,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (key_id, key) = state.keyring.checkpoint_signer(&caller.tenant_id)?;
    let cp = audit::checkpoint(&state.store, &caller.tenant_id, now().0, &key_id, &key).await?;
    match cp {
        Some(cp) => Ok((StatusCode::CREATED, Json(json!({ "checkpoint": cp })))),
        None => {
            let latest = audit::latest_checkpoint(&state.store, &caller.tenant_id).await?;
            Ok((StatusCode::OK, Json(json!({ "checkpoint": latest }))))
        }
    }
}
