//! Emergency overrides at run time: set, clear, list, and the audit of
//! their expiry. An override is validated exactly as inside a policy file
//! and applies on the next decision on every node sharing the database.

use ladder_core::{Policy, Timestamp};
use ladder_store::overrides::{self as stored, StoredOverride};
use ladder_store::{Store, StoreError};
use serde_json::{Value, json};

use crate::service::error::ServiceError;
use crate::service::{audit, policy::diagnostics};
use crate::state::{AppState, now};

/// The override fields as JSON (`POST /v1/overrides`) become the TOML
/// table a policy file would hold, and go through the same validation.
pub fn toml_from_json(body: &Value) -> Result<String, ServiceError> {
    let Value::Object(map) = body else {
        return Err(ServiceError::bad_request(
            "invalid_json",
            "the body must be a JSON object with the fields of an override",
        ));
    };
    let mut table = toml::Table::new();
    for (k, v) in map {
        let value = match v {
            // A policy file writes `expires` as a TOML date-time.
            Value::String(s) if k == "expires" => match s.parse::<toml::value::Datetime>() {
                Ok(dt) => toml::Value::Datetime(dt),
                Err(_) => {
                    return Err(ServiceError::invalid(
                        "invalid_override",
                        format!("field `expires`: `{s}` is not an RFC 3339 date-time"),
                    ));
                }
            },
            Value::String(s) => toml::Value::String(s.clone()),
            other => {
                return Err(ServiceError::invalid(
                    "invalid_override",
                    format!("field `{k}` must be a string, not `{other}`"),
                ));
            }
        };
        table.insert(k.clone(), value);
    }
    toml::to_string(&table).map_err(|e| ServiceError::Internal(format!("override as TOML: {e}")))
}

/// Sets an override given as TOML text. `author` fills in when the text
/// names none.
pub async fn set(
    state: &AppState,
    tenant_id: &str,
    actor: &str,
    text: &str,
) -> Result<StoredOverride, ServiceError> {
    let at = now();
    let rule = Policy::parse_override(text, "override", at).map_err(|e| {
        ServiceError::invalid(
            "invalid_override",
            format!(
                "the override does not validate: {}",
                e.0.iter()
                    .map(|d| d.kind.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        )
        .with_details(diagnostics(&e))
    })?;
    if !rule.is_active(at) {
        return Err(ServiceError::invalid(
            "override_expired",
            format!(
                "override `{}` expires at {}, which has passed",
                rule.id, rule.expires
            ),
        ));
    }
    let mut tx = state.store.begin().await?;
    let policy = state.active_policy(&mut tx, tenant_id).await?;
    policy
        .check_override_lifetime(&rule, at)
        .map_err(|e| ServiceError::invalid("override_too_long", e.to_string()))?;
    if let Some(existing) = stored::get(&mut tx, tenant_id, &rule.id).await?
        && existing.cleared_at.is_none()
        && existing.rule.is_active(at)
    {
        return Err(ServiceError::conflict(
            "override_exists",
            format!("override `{}` is already active; clear it first", rule.id),
        ));
    }
    let row_id = stored::insert(&mut tx, tenant_id, &rule, at.0).await?;
    audit::record(
        &mut tx,
        state,
        tenant_id,
        actor,
        "override_set",
        Some(&rule.id),
        json!({ "rule": rule }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    metrics::counter!("ladder_overrides_total", "event" => "set").increment(1);
    Ok(StoredOverride {
        row_id,
        rule,
        created_at: at.0,
        cleared_at: None,
        cleared_by: None,
    })
}

/// Extends an active override to `expires`, within the policy's maximum
/// lifetime from now: the emergency goes on, and the log says who decided
/// so and until when. The old row is closed and a new one opened, so the
/// history keeps every expiry the override had.
pub async fn renew(
    state: &AppState,
    tenant_id: &str,
    actor: &str,
    id: &str,
    expires: Timestamp,
) -> Result<StoredOverride, ServiceError> {
    let at = now();
    let mut tx = state.store.begin().await?;
    let current = stored::get(&mut tx, tenant_id, id)
        .await?
        .filter(|o| o.cleared_at.is_none() && o.rule.is_active(at))
        .ok_or_else(|| ServiceError::not_found("active override", id))?;
    if expires <= at {
        return Err(ServiceError::invalid(
            "override_expired",
            format!("the new expiry {expires} of override `{id}` has passed"),
        ));
    }
    let mut rule = current.rule.clone();
    rule.expires = expires;
    let policy = state.active_policy(&mut tx, tenant_id).await?;
    policy
        .check_override_lifetime(&rule, at)
        .map_err(|e| ServiceError::invalid("override_too_long", e.to_string()))?;
    stored::clear(&mut tx, tenant_id, id, actor, at.0).await?;
    let row_id = stored::insert(&mut tx, tenant_id, &rule, at.0).await?;
    audit::record(
        &mut tx,
        state,
        tenant_id,
        actor,
        "override_renewed",
        Some(id),
        json!({ "previous_expires": current.rule.expires, "expires": rule.expires }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    metrics::counter!("ladder_overrides_total", "event" => "renewed").increment(1);
    Ok(StoredOverride {
        row_id,
        rule,
        created_at: at.0,
        cleared_at: None,
        cleared_by: None,
    })
}

pub async fn clear(
    state: &AppState,
    tenant_id: &str,
    actor: &str,
    id: &str,
) -> Result<StoredOverride, ServiceError> {
    let mut tx = state.store.begin().await?;
    let cleared = stored::clear(&mut tx, tenant_id, id, actor, now().0)
        .await?
        .ok_or_else(|| ServiceError::not_found("active override", id))?;
    audit::record(
        &mut tx,
        state,
        tenant_id,
        actor,
        "override_cleared",
        Some(id),
        json!({ "reason": cleared.rule.reason }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    metrics::counter!("ladder_overrides_total", "event" => "cleared").increment(1);
    Ok(cleared)
}

pub async fn list(store: &Store, tenant_id: &str) -> Result<Vec<OverrideEntry>, ServiceError> {
    let mut conn = store.pool().acquire().await.map_err(StoreError::from)?;
    let at = now();
    Ok(stored::list(&mut conn, tenant_id)
        .await?
        .iter()
        .map(|o| entry(o, at))
        .collect())
}

/// One override as the lists show it, with its state.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideEntry {
    /// The history row (`GET /v1/overrides` with paging only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The override as its policy-file form has it.
    #[serde(rename = "override")]
    #[schema(value_type = Object)]
    pub rule: ladder_core::overrides::Override,
    /// `active`, `expired`, `cleared`, or `renewed` (a history row a
    /// renewal closed).
    pub state: &'static str,
    pub created_at: i64,
    pub cleared_at: Option<i64>,
    pub cleared_by: Option<String>,
    /// What opened a history row: `set` or `renewal` (paging only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opened_by: Option<&'static str>,
}

/// One override as the lists show it, with its state at `at`.
fn entry(o: &stored::StoredOverride, at: ladder_core::Timestamp) -> OverrideEntry {
    let state = if o.cleared_at.is_some() {
        "cleared"
    } else if o.rule.is_active(at) {
        "active"
    } else {
        "expired"
    };
    OverrideEntry {
        id: None,
        rule: o.rule.clone(),
        state,
        created_at: o.created_at,
        cleared_at: o.cleared_at,
        cleared_by: o.cleared_by.clone(),
        opened_by: None,
    }
}

/// A tenant's override history — one entry per time an override was set
/// or renewed (its row id beside it), with its state now (`renewed` for a
/// row a renewal closed) and what opened it (`set` or `renewal`) — newest
/// first, at most `limit`, strictly older than row `before`; only
/// those in force now with `active_only`.
pub async fn history(
    store: &Store,
    tenant_id: &str,
    active_only: bool,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<(String, OverrideEntry)>, ServiceError> {
    let mut conn = store.pool().acquire().await.map_err(StoreError::from)?;
    let at = now();
    Ok(stored::history(
        &mut conn,
        tenant_id,
        active_only.then_some(at.0),
        before,
        limit,
    )
    .await?
    .iter()
    .map(|r| {
        let mut v = entry(&r.stored, at);
        v.id = Some(r.stored.row_id.clone());
        v.opened_by = Some(if r.opened_by_renewal {
            "renewal"
        } else {
            "set"
        });
        if r.closed_by_renewal {
            v.state = "renewed";
        }
        (r.stored.row_id.clone(), v)
    })
    .collect())
}

/// Audits overrides that expired since the last sweep, once each (across
/// nodes: the first to mark it wins).
pub async fn audit_expired(state: &AppState) -> Result<usize, ServiceError> {
    let due = {
        let mut conn = state
            .store
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        stored::expired_unaudited(&mut conn, now().0).await?
    };
    let mut n = 0;
    for (tenant_id, o) in due {
        let mut tx = state.store.begin().await?;
        if stored::mark_expiry_audited(&mut tx, &tenant_id, &o.row_id).await? {
            audit::record(
                &mut tx,
                state,
                &tenant_id,
                "system",
                "override_expired",
                Some(o.id()),
                json!({ "expired_at": o.rule.expires }),
            )
            .await?;
            n += 1;
        }
        tx.commit().await.map_err(StoreError::from)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_overrides_become_policy_toml_with_dates_as_dates() {
        let text = toml_from_json(&json!({
            "id": "x", "channel": "rcs", "effect": "disable", "reason": "r", "author": "a",
            "expires": "2030-01-01T00:00:00Z",
        }))
        .unwrap();
        let o = Policy::parse_override(&text, "override", ladder_core::Timestamp(0)).unwrap();
        assert_eq!(o.expires, ladder_core::Timestamp(1_893_456_000));
        let err = toml_from_json(&json!({ "expires": "tomorrow" })).unwrap_err();
        assert!(err.to_string().contains("`tomorrow`"), "{err}");
        let err = toml_from_json(&json!({ "id": 5 })).unwrap_err();
        assert!(err.to_string().contains("`id`"), "{err}");
    }
}
