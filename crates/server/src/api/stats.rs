//! `GET /v1/stats` and `GET /v1/stats/classes/{class}`: the dashboard's
//! figures over a window, from the counters the service keeps as it writes
//! (`service::stats`). Parsing only: the window's limits are the service's
//! ([`StatsQuery::check`]), shared with the console that calls
//! [`crate::service::stats::dashboard`] directly.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use crate::api::wire::ErrorEnvelope;
use crate::auth::Sender;
use crate::service::error::ServiceError;
use crate::service::stats::{self, Bucket, Dashboard, StatsQuery};
use crate::state::AppState;

/// The query as given: numbers are parsed here so a bad one is refused
/// naming its parameter.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    pub since: Option<String>,
    pub until: Option<String>,
    pub bucket: Option<String>,
    pub class: Option<String>,
}

fn seconds(name: &'static str, given: Option<&str>) -> Result<Option<i64>, ServiceError> {
    given
        .map(|s| {
            s.parse::<i64>().map_err(|_| {
                ServiceError::bad_request(
                    "invalid_window",
                    format!("query `{name}` must be Unix seconds, an integer"),
                )
            })
        })
        .transpose()
}

/// The window asked for; what is left out defaults to the last 24 hours
/// up to `until` (or now), by hour.
fn query(p: StatsParams, class: Option<String>) -> Result<StatsQuery, ServiceError> {
    let default = StatsQuery::last_day();
    let until = seconds("until", p.until.as_deref())?.unwrap_or(default.until);
    let since = seconds("since", p.since.as_deref())?.unwrap_or(until.saturating_sub(86_400));
    let bucket = match p.bucket.as_deref() {
        None => default.bucket,
        Some(b) => Bucket::from_name(b).ok_or_else(|| {
            ServiceError::bad_request(
                "invalid_window",
                format!("query `bucket` must be one of {}", Bucket::NAMES.join(", ")),
            )
        })?,
    };
    let q = StatsQuery {
        since,
        until,
        bucket,
        class: class.or(p.class),
    };
    q.check()?;
    Ok(q)
}

/// The tenant's figures over a window (default: the last 24 hours, by hour).
#[utoipa::path(get, path = "/v1/stats", tag = "stats", operation_id = "getStats",
    security(("bearer" = ["sender"])),
    params(StatsParams),
    responses(
        (status = 200, description = "The figures.", body = Dashboard),
        (status = 400, description = "A malformed or too wide window.", body = ErrorEnvelope),
    ))]
pub async fn all(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Query(p): Query<StatsParams>,
) -> Result<Json<Dashboard>, ServiceError> {
    let q = query(p, None)?;
    Ok(Json(stats::dashboard(&state, &caller.tenant_id, &q).await?))
}

/// One class's figures over a window.
#[utoipa::path(get, path = "/v1/stats/classes/{class}", tag = "stats", operation_id = "getClassStats",
    security(("bearer" = ["sender"])),
    params(("class" = String, Path, description = "a class of the policy"), StatsParams),
    responses(
        (status = 200, description = "The figures.", body = Dashboard),
        (status = 400, description = "A malformed or too wide window, or a malformed class.", body = ErrorEnvelope),
    ))]
pub async fn class(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Path(class): Path<String>,
    Query(p): Query<StatsParams>,
) -> Result<Json<Dashboard>, ServiceError> {
    if p.class.is_some() {
        return Err(ServiceError::bad_request(
            "invalid_window",
            "query `class` is not taken here: the class is in the path",
        ));
    }
    let q = query(p, Some(class))?;
    Ok(Json(stats::dashboard(&state, &caller.tenant_id, &q).await?))
}
