//! The one HTTP error boundary. Every handler returns [`ApiError`]; it
//! becomes one JSON envelope, `{"error": {"code", "message", "details"}}`.
//! Client mistakes name what is wrong and where; a 500 logs the detail
//! (which never holds content) and answers a generic body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use ladder_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed or invalid input: 400 or 422 with what and where.
    #[error("{message}")]
    Invalid {
        status: StatusCode,
        code: &'static str,
        message: String,
        details: Value,
    },
    #[error("missing or unknown API key")]
    Unauthenticated,
    #[error("this API key's scope does not allow {needed}")]
    Forbidden { needed: &'static str },
    /// Not found — also the answer for another tenant's ids, so nobody
    /// learns they exist.
    #[error("no {what} `{id}`")]
    NotFound { what: &'static str, id: String },
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        details: Value,
    },
    /// A concurrent request wrote the same rows first (a unique key, a
    /// deadlock). Retried inside the server where that is safe; answered
    /// 409 otherwise, so the client retries.
    #[error("a concurrent request changed the same data; retry")]
    Contention,
    /// A rate limit refused the request (`crate::limits`): 429 with
    /// `Retry-After`.
    #[error("too many requests; retry in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code,
            message: message.into(),
            details: Value::Null,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
            details: Value::Null,
        }
    }

    pub fn not_found(what: &'static str, id: impl Into<String>) -> ApiError {
        ApiError::NotFound {
            what,
            id: id.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Conflict {
            code,
            message: message.into(),
            details: Value::Null,
        }
    }

    pub fn with_details(mut self, value: Value) -> ApiError {
        match &mut self {
            ApiError::Invalid { details, .. } | ApiError::Conflict { details, .. } => {
                *details = value
            }
            _ => {}
        }
        self
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_contention() {
            ApiError::Contention
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}

impl From<ladder_store::keyring::KeyringError> for ApiError {
    fn from(e: ladder_store::keyring::KeyringError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<crate::limits::Refused> for ApiError {
    fn from(r: crate::limits::Refused) -> Self {
        ApiError::RateLimited {
            retry_after_s: r.retry_after_s,
        }
    }
}

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

impl ApiError {
    pub fn envelope(self) -> Envelope {
        let retry_after_s = match &self {
            ApiError::RateLimited { retry_after_s } => Some(*retry_after_s),
            _ => None,
        };
        let (status, code, message, details) = match self {
            ApiError::Invalid {
                status,
                code,
                message,
                details,
            } => (status, code, message, details),
            e @ ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                e.to_string(),
                Value::Null,
            ),
            e @ ApiError::Forbidden { .. } => (
                StatusCode::FORBIDDEN,
                "forbidden",
                e.to_string(),
                Value::Null,
            ),
            e @ ApiError::NotFound { .. } => (
                StatusCode::NOT_FOUND,
                "not_found",
                e.to_string(),
                Value::Null,
            ),
            ApiError::Conflict {
                code,
                message,
                details,
            } => (StatusCode::CONFLICT, code, message, details),
            e @ ApiError::Contention => (
                StatusCode::CONFLICT,
                "contention",
                e.to_string(),
                Value::Null,
            ),
            e @ ApiError::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                e.to_string(),
                Value::Null,
            ),
            ApiError::Internal(detail) => {
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

impl IntoResponse for ApiError {
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
