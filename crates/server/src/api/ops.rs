//! Operations: health, readiness, metrics, the OpenAPI document, the
//! sandbox mailbox, and the request-observing middleware (request ids, the
//! access log, request metrics).

use std::time::Instant;

use axum::Json;
use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ladder_store::ids::RequestId;
use ladder_store::{StoreError, outbox, sandbox};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::Instrument;
use utoipa::ToSchema;

use crate::api::wire::ErrorEnvelope;
use crate::auth::Sender;
use crate::service::error::{Invalidity, ServiceError};
use crate::state::AppState;

/// A liveness answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// Always `ok`: the process answers.
    pub status: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "healthz",
    responses((status = 200, description = "Alive.", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: whether this node can serve now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    pub status: ReadyStatus,
    pub database: DatabaseState,
    pub keyring: KeyringState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    Ready,
    Unavailable,
}

/// Whether the database answers a query now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseState {
    Ok,
    Unreachable,
}

/// Whether the keyring file still reads and opens with the configured
/// key-encryption key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyringState {
    Ok,
    Unusable,
}

/// Readiness: the database answers and the keyring opens.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "readyz",
    responses(
        (status = 200, description = "Ready: the database answers and the keyring opens.", body = Readiness),
        (status = 503, description = "The database does not answer or the keyring is unusable.", body = Readiness),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = match state.store.ping().await {
        Ok(()) => DatabaseState::Ok,
        Err(e) => {
            tracing::warn!(error = %e, "database not ready");
            DatabaseState::Unreachable
        }
    };
    // Read the file again, as a restarted node would: a keyring that went
    // missing, lost its permissions or no longer opens with the mounted
    // key-encryption key makes this node unable to seal or open anything.
    let keyring = state.keyring.clone();
    let checked = tokio::task::spawn_blocking(move || keyring.check()).await;
    let keyring = match checked
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
    {
        Ok(()) => KeyringState::Ok,
        Err(e) => {
            tracing::warn!(error = %e, "keyring not ready");
            KeyringState::Unusable
        }
    };
    let ready = database == DatabaseState::Ok && keyring == KeyringState::Ok;
    let body = Json(Readiness {
        status: if ready {
            ReadyStatus::Ready
        } else {
            ReadyStatus::Unavailable
        },
        database,
        keyring,
    });
    if ready {
        body.into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

/// Prometheus metrics; with `metrics_token` configured, only for
/// `Authorization: Bearer <metrics_token>` (not an API key).
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    responses(
        (status = 200, description = "Prometheus text format.", body = String, content_type = "text/plain"),
        (status = 401, description = "`metrics_token` is set and was not given.", body = ErrorEnvelope),
    ))]
pub async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(token) = &state.config.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !crate::service::confirm::constant_time_eq(given.as_bytes(), token.as_bytes()) {
            return ServiceError::Unauthenticated.into_response();
        }
    }
    if let Ok(n) = ladder_store::outbox::pending(&state.store).await {
        metrics::gauge!("ladder_outbox_pending").set(n as f64);
    }
    let body = crate::metrics::render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object)))]
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::json(),
    )
        .into_response()
}

pub async fn not_found() -> ServiceError {
    ServiceError::Invalid {
        kind: Invalidity::Unknown,
        code: "not_found",
        message: "no such route; the API is described at /v1/openapi.json".into(),
        details: Value::Null,
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MailboxQuery {
    /// Only this message's deliveries.
    #[serde(default)]
    pub message: Option<String>,
}

/// What the sandbox channels delivered.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SandboxDeliveries)]
pub struct Deliveries {
    #[schema(value_type = Vec<Object>)]
    pub deliveries: Vec<sandbox::Delivery>,
}

/// What the sandbox channels delivered for this tenant. A payload delivery
/// is listed without its content: the sandbox stands for the recipient's
/// device, and the body stays sealed here.
#[utoipa::path(get, path = "/v1/sandbox/deliveries", tag = "operations", operation_id = "sandboxDeliveries",
    security(("bearer" = ["sender"])),
    params(MailboxQuery),
    responses(
        (status = 200, description = "The deliveries, newest last.", body = Deliveries),
        (status = 400, description = "A malformed query.", body = ErrorEnvelope),
    ))]
pub async fn sandbox(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Query(q): Query<MailboxQuery>,
) -> Result<Json<Deliveries>, ServiceError> {
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let list = sandbox::list(&mut conn, &caller.tenant_id, q.message.as_deref(), 1000).await?;
    Ok(Json(Deliveries { deliveries: list }))
}

/// The answer to a handler that panicked: the one 500 envelope. The panic
/// message is not logged (a panic can format anything it was handed); the
/// route is, by the access log and the request metrics ([`observe`] runs
/// outside the panic catcher, so it sees this answer).
pub fn panicked(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ServiceError::Internal("handler panicked".into()).into_response()
}

/// The route label of a request no route matched: the raw path could hold
/// anything (ids, tokens, a pasted body), so it is never a label or logged.
pub const UNMATCHED: &str = "<unmatched>";

/// The header a request id is accepted from and returned in.
pub const REQUEST_ID: &str = "x-request-id";

/// Every request, whatever answers it (a handler, a rejection, the 404
/// fallback, a caught panic): gives it a request id — the caller's when
/// sane, else a new one — returned in `X-Request-Id`, held by the span all
/// its log lines carry and stamped on the delivery work it queues; counts
/// and times it by matched route; and writes its one access log line
/// (target `ladder::access`). Routes are templates, never raw paths, which
/// would carry ids and portal link tokens; the query string is never read.
pub async fn observe(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(RequestId::parse)
        .unwrap_or_else(RequestId::generate);
    let span = tracing::info_span!("request", request_id = %request_id);
    let started = Instant::now();
    let answered = outbox::for_request(Some(request_id.clone()), next.run(req)).instrument(span);
    let mut response = envelope(answered.await).await;
    let elapsed = started.elapsed();
    // INVARIANT: a `RequestId` holds only visible ASCII from a safe set,
    // always a valid header value.
    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let status = response.status().as_u16();
    tracing::info!(
        target: "ladder::access",
        method = %method,
        route = %route,
        status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        request_id = %request_id,
        "request"
    );
    metrics::histogram!("ladder_request_seconds", "route" => route.clone(), "method" => method.clone())
        .record(elapsed.as_secs_f64());
    metrics::counter!("ladder_requests_total", "route" => route, "method" => method, "status" => status.to_string())
        .increment(1);
    response
}

/// Puts errors that did not come from a handler (axum's own rejections of
/// a query string, a body too large, a wrong method) into the one JSON
/// envelope every other error uses.
async fn envelope(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        // JSON errors are already enveloped; HTML is the portal's own pages.
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = match axum::body::to_bytes(response.into_body(), 4096).await {
        Ok(b) => String::from_utf8_lossy(&b)
            .chars()
            .take(300)
            .collect::<String>(),
        Err(_) => String::new(),
    };
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "invalid_request",
    };
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "the request body is larger than this route accepts (256 KiB)".to_string()
    } else if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_lowercase()
    } else {
        text
    };
    (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}
