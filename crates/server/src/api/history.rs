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
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::api::lists::{after, cut, limit};
use crate::api::views::ThreadView;
use crate::api::wire::ErrorEnvelope;
use crate::auth::Sender;
use crate::service::error::ServiceError;
use crate::state::AppState;

/// An assurance level named by query parameter `name`.
fn level(name: &'static str, given: Option<&str>) -> Result<Option<AssuranceLevel>, ServiceError> {
    given
        .map(|g| {
            AssuranceLevel::ALL
                .into_iter()
                .find(|l| l.as_str() == g)
                .ok_or_else(|| {
                    ServiceError::bad_request(
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ThreadQuery {
    /// Only threads whose floor is this level.
    pub floor: Option<String>,
    /// Only threads whose last delivered message had this level.
    pub label: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// A page of threads, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Threads {
    pub threads: Vec<ListedThread>,
    pub next_cursor: Option<String>,
}

/// A thread with when and why its floor last dropped.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListedThread {
    #[serde(flatten)]
    pub thread: ThreadView,
    /// When the floor last dropped (Unix seconds), if it ever did.
    pub dropped_at: Option<i64>,
    /// That drop's audit details: from, to, causes.
    #[schema(value_type = Option<Object>)]
    pub last_drop: Option<Value>,
}

/// Threads with their floors and their last drop.
#[utoipa::path(get, path = "/v1/threads", tag = "threads", operation_id = "listThreads",
    security(("bearer" = ["sender"])),
    params(ThreadQuery),
    responses(
        (status = 200, description = "A page.", body = Threads),
        (status = 400, description = "A malformed filter, cursor or limit.", body = ErrorEnvelope),
    ))]
pub async fn threads(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Query(q): Query<ThreadQuery>,
) -> Result<Json<Threads>, ServiceError> {
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
    let rows: Vec<ListedThread> = page
        .into_iter()
        .map(|t| ListedThread {
            thread: ThreadView::of(&t.thread),
            dropped_at: t.dropped_at,
            last_drop: t.drop,
        })
        .collect();
    Ok(Json(Threads {
        threads: rows,
        next_cursor: next,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// One published policy version.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PolicyVersionSource)]
pub struct Version {
    pub revision: i64,
    pub version: String,
    pub published_at: i64,
    pub published_by: String,
    /// Whether decisions use it now.
    pub active: bool,
    /// The policy file, on `GET /v1/policy/versions/{revision}` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A page of versions, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Versions {
    pub versions: Vec<Version>,
    pub next_cursor: Option<String>,
}

/// Two versions and the unified diff of their sources.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Diff {
    pub from: Version,
    pub to: Version,
    pub diff: String,
}

fn version_row(p: &Published) -> Version {
    Version {
        revision: p.policy.revision,
        version: p.policy.version.clone(),
        published_at: p.policy.published_at,
        published_by: p.policy.published_by.clone(),
        active: p.active,
        source: None,
    }
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

/// Published policy versions, newest first.
#[utoipa::path(get, path = "/v1/policy/versions", tag = "policy", operation_id = "listPolicyVersions",
    security(("bearer" = ["sender"])),
    params(VersionQuery),
    responses(
        (status = 200, description = "A page.", body = Versions),
        (status = 400, description = "A malformed cursor or limit.", body = ErrorEnvelope),
    ))]
pub async fn versions(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Query(q): Query<VersionQuery>,
) -> Result<Json<Versions>, ServiceError> {
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
    Ok(Json(Versions {
        versions: keyed.iter().map(|(_, p)| version_row(p)).collect(),
        next_cursor: next,
    }))
}

/// A revision named by the caller, as `name` (a path segment or a query
/// parameter): a whole number from 0.
fn revision(name: &'static str, given: &str) -> Result<i64, ServiceError> {
    given.parse::<u32>().map(i64::from).map_err(|_| {
        ServiceError::bad_request(
            "invalid_revision",
            format!("{name} must be a policy revision, a whole number"),
        )
    })
}

async fn published(state: &AppState, tenant_id: &str, rev: i64) -> Result<Published, ServiceError> {
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    policies::by_revision(&mut conn, tenant_id, rev)
        .await?
        .ok_or_else(|| ServiceError::not_found("policy revision", rev.to_string()))
}

/// One published version with its source.
#[utoipa::path(get, path = "/v1/policy/versions/{revision}", tag = "policy", operation_id = "getPolicyVersion",
    security(("bearer" = ["sender"])),
    params(("revision" = String, Path, description = "a policy revision, a whole number")),
    responses(
        (status = 200, description = "The version.", body = Version),
        (status = 400, description = "Not a revision number.", body = ErrorEnvelope),
        (status = 404, description = "No such revision.", body = ErrorEnvelope),
    ))]
pub async fn version(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(rev): Path<String>,
) -> Result<Json<Version>, ServiceError> {
    let rev = revision("path segment `revision`", &rev)?;
    let p = published(&state, &caller.tenant_id, rev).await?;
    let mut row = version_row(&p);
    row.source = Some(p.policy.source);
    Ok(Json(row))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The unified diff between two versions' sources.
#[utoipa::path(get, path = "/v1/policy/diff", tag = "policy", operation_id = "diffPolicyVersions",
    security(("bearer" = ["sender"])),
    params(DiffQuery),
    responses(
        (status = 200, description = "The diff.", body = Diff),
        (status = 400, description = "`from` or `to` missing or not a revision.", body = ErrorEnvelope),
        (status = 404, description = "No such revision.", body = ErrorEnvelope),
    ))]
pub async fn diff(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Query(q): Query<DiffQuery>,
) -> Result<Json<Diff>, ServiceError> {
    let (Some(from), Some(to)) = (q.from.as_deref(), q.to.as_deref()) else {
        return Err(ServiceError::bad_request(
            "invalid_revision",
            "query `from` and `to` are both required: the revisions to compare",
        ));
    };
    let from = published(&state, &caller.tenant_id, revision("query `from`", from)?).await?;
    let to = published(&state, &caller.tenant_id, revision("query `to`", to)?).await?;
    Ok(Json(Diff {
        diff: crate::service::policy::diff(&from.policy.source, &to.policy.source),
        from: version_row(&from),
        to: version_row(&to),
    }))
}
