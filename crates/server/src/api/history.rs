//! Lists of what changed over time, for the operator console: threads with
//! their floors and their last drop (`GET /v1/threads`), published policy
//! versions, one version's source and the diff between two
//! (`/v1/policy/versions`, `/v1/policy/diff`). Sender scope, tenant-scoped,
//! paged like `GET /v1/messages` (`super::lists`): newest first, opaque
//! cursor, `limit` 1 to 200, unknown parameters refused.

use axum::Json;
use axum::extract::{Path, Query, State};
use ladder_core::AssuranceLevel;
use ladder_store::ids::ThreadId;
use ladder_store::policies::{self, Published, VersionKey};
use ladder_store::{StoreError, threads};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::lists::{after, cut, limit};
use crate::auth::Sender;
use crate::error::ApiError;
use crate::service::devices::thread_view;
use crate::state::AppState;

/// An assurance level named by query parameter `name`.
fn level(name: &'static str, given: Option<&str>) -> Result<Option<AssuranceLevel>, ApiError> {
    given
        .map(|g| {
            AssuranceLevel::ALL
                .into_iter()
                .find(|l| l.as_str() == g)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_filter",
                        format!(
                            "query `{name}` must be one of {}",
                            AssuranceLevel::ALL.map(AssuranceLevel::as_str).join(", ")
                        ),
                    )
                })
        })
        .transpose()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadQuery {
    /// Only threads whose floor is this level.
    pub floor: Option<String>,
    /// Only threads whose last delivered message had this level.
    pub label: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

pub async fn threads(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Query(q): Query<ThreadQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = limit(q.limit)?;
    let floor = level("floor", q.floor.as_deref())?;
    let label = level("label", q.label.as_deref())?;
    let before = after(q.cursor.as_deref(), |s| ThreadId::parse(s, "cursor").ok())?;
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let mut page = threads::list(
        &mut conn,
        &caller.tenant_id,
        floor,
        label,
        before.as_ref().map(ThreadId::as_str),
        i64::from(limit) + 1,
    )
    .await?;
    let next = cut(&mut page, limit, |t| &t.thread.id);
    let rows: Vec<Value> = page
        .iter()
        .map(|t| {
            let mut view = thread_view(&t.thread);
            if let Some(obj) = view.as_object_mut() {
                obj.insert("dropped_at".into(), json!(t.dropped_at));
                obj.insert("last_drop".into(), json!(t.drop));
            }
            view
        })
        .collect();
    Ok(Json(json!({ "threads": rows, "next_cursor": next })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

fn version_row(p: &Published) -> Value {
    json!({
        "revision": p.policy.revision,
        "version": p.policy.version,
        "published_at": p.policy.published_at,
        "published_by": p.policy.published_by,
        "active": p.active,
    })
}

/// A version list cursor: `published_at:revision:version` of the last row.
fn version_key(raw: &str) -> Option<VersionKey> {
    let mut parts = raw.splitn(3, ':');
    let published_at = parts.next()?.parse().ok()?;
    let revision = parts.next()?.parse().ok()?;
    let version = parts.next()?;
    // Versions are `sha256:` and 64 hex digits.
    let hex = version.strip_prefix("sha256:")?;
    let shaped = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    shaped.then(|| VersionKey {
        published_at,
        revision,
        version: version.to_string(),
    })
}

pub async fn versions(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Query(q): Query<VersionQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = limit(q.limit)?;
    let before = after(q.cursor.as_deref(), version_key)?;
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let page = policies::list(
        &mut conn,
        &caller.tenant_id,
        before.as_ref(),
        i64::from(limit) + 1,
    )
    .await?;
    let mut keyed: Vec<(String, &Published)> = page
        .iter()
        .map(|p| {
            let key = format!(
                "{}:{}:{}",
                p.policy.published_at, p.policy.revision, p.policy.version
            );
            (key, p)
        })
        .collect();
    let next = cut(&mut keyed, limit, |(k, _)| k);
    Ok(Json(json!({
        "versions": keyed.iter().map(|(_, p)| version_row(p)).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

/// A revision named by the caller, as `name` (a path segment or a query
/// parameter): a whole number from 0.
fn revision(name: &'static str, given: &str) -> Result<i64, ApiError> {
    given.parse::<u32>().map(i64::from).map_err(|_| {
        ApiError::bad_request(
            "invalid_revision",
            format!("{name} must be a policy revision, a whole number"),
        )
    })
}

async fn published(state: &AppState, tenant_id: &str, rev: i64) -> Result<Published, ApiError> {
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    policies::by_revision(&mut conn, tenant_id, rev)
        .await?
        .ok_or_else(|| ApiError::not_found("policy revision", rev.to_string()))
}

pub async fn version(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(rev): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rev = revision("path segment `revision`", &rev)?;
    let p = published(&state, &caller.tenant_id, rev).await?;
    let mut row = version_row(&p);
    if let Some(obj) = row.as_object_mut() {
        obj.insert("source".into(), json!(p.policy.source));
    }
    Ok(Json(row))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    pub from: Option<String>,
    pub to: Option<String>,
}

pub async fn diff(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Query(q): Query<DiffQuery>,
) -> Result<Json<Value>, ApiError> {
    let (Some(from), Some(to)) = (q.from.as_deref(), q.to.as_deref()) else {
        return Err(ApiError::bad_request(
            "invalid_revision",
            "query `from` and `to` are both required: the revisions to compare",
        ));
    };
    let from = published(&state, &caller.tenant_id, revision("query `from`", from)?).await?;
    let to = published(&state, &caller.tenant_id, revision("query `to`", to)?).await?;
    Ok(Json(json!({
        "from": version_row(&from),
        "to": version_row(&to),
        "diff": crate::service::policy::diff(&from.policy.source, &to.policy.source),
    })))
}
