//! The one HTTP error boundary. Every handler returns a
//! [`ServiceError`]; here, and only here, it becomes a status and one JSON
//! envelope, `{"error": {"code", "message", "details"}}`.
//! Client mistakes name what is wrong and where; a 500 logs the detail
//! (which never holds content) and answers a generic body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::service::error::{Invalidity, ServiceError};

/// What an error answers with, whichever way it is shown (the JSON
/// envelope here, the console's HTML page): a 500's detail is logged and
/// replaced by a generic message on the way in.
#[derive(Debug)]
pub struct Envelope {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
    pub retry_after_s: Option<u64>,
}

impl ServiceError {
    pub fn envelope(self) -> Envelope {
        let retry_after_s = match &self {
            ServiceError::RateLimited { retry_after_s } => Some(*retry_after_s),
            _ => None,
        };
        let (status, code, message, details) = match self {
            ServiceError::Invalid {
                kind,
                code,
                message,
                details,
            } => (status_of(kind), code, message, details),
            e @ ServiceError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                e.to_string(),
                Value::Null,
            ),
            e @ ServiceError::Forbidden { .. } => (
                StatusCode::FORBIDDEN,
                "forbidden",
                e.to_string(),
                Value::Null,
            ),
            e @ ServiceError::NotFound { .. } => (
                StatusCode::NOT_FOUND,
                "not_found",
                e.to_string(),
                Value::Null,
            ),
            ServiceError::Conflict {
                code,
                message,
                details,
            } => (StatusCode::CONFLICT, code, message, details),
            e @ ServiceError::Contention => (
                StatusCode::CONFLICT,
                "contention",
                e.to_string(),
                Value::Null,
            ),
            e @ ServiceError::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                e.to_string(),
                Value::Null,
            ),
            ServiceError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; the server log has the detail".to_string(),
                    Value::Null,
                )
            }
        };
        Envelope {
            status,
            code,
            message,
            details,
            retry_after_s,
        }
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let Envelope {
            status,
            code,
            message,
            details,
            retry_after_s,
        } = self.envelope();
        let mut error = serde_json::Map::new();
        error.insert("code".into(), Value::String(code.into()));
        error.insert("message".into(), Value::String(message));
        if !details.is_null() {
            error.insert("details".into(), details);
        }
        let mut res = (status, Json(json!({ "error": error }))).into_response();
        if let Some(s) = retry_after_s {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        }
        res
    }
}

/// The status each kind of refused input answers with.
fn status_of(kind: Invalidity) -> StatusCode {
    match kind {
        Invalidity::Malformed => StatusCode::BAD_REQUEST,
        Invalidity::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        Invalidity::Unverified => StatusCode::UNAUTHORIZED,
        Invalidity::Forged => StatusCode::FORBIDDEN,
        Invalidity::Unknown => StatusCode::NOT_FOUND,
    }
}
