//! What a service answers when it cannot do what was asked: the domain's
//! error, with no HTTP in it. The API edge (`crate::error`) turns each
//! into a status and the one JSON envelope; the console and the portal
//! show it as a page. Hostile input, misuse and internal failures stay
//! apart: `Invalid` and the refusals name what is wrong and where; a
//! concurrent writer is `Contention`; anything else is `Internal`, whose
//! detail is logged and never answered.

use serde_json::Value;

use ladder_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Input refused, with what and where; `kind` says how it is wrong.
    #[error("{message}")]
    Invalid {
        kind: Invalidity,
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

impl ServiceError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> ServiceError {
        ServiceError::Invalid {
            kind: Invalidity::Unprocessable,
            code,
            message: message.into(),
            details: Value::Null,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ServiceError {
        ServiceError::Invalid {
            kind: Invalidity::Malformed,
            code,
            message: message.into(),
            details: Value::Null,
        }
    }

    pub fn not_found(what: &'static str, id: impl Into<String>) -> ServiceError {
        ServiceError::NotFound {
            what,
            id: id.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> ServiceError {
        ServiceError::Conflict {
            code,
            message: message.into(),
            details: Value::Null,
        }
    }

    pub fn with_details(mut self, value: Value) -> ServiceError {
        match &mut self {
            ServiceError::Invalid { details, .. } | ServiceError::Conflict { details, .. } => {
                *details = value
            }
            _ => {}
        }
        self
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        if e.is_contention() {
            ServiceError::Contention
        } else {
            ServiceError::Internal(e.to_string())
        }
    }
}

impl From<ladder_store::keyring::KeyringError> for ServiceError {
    fn from(e: ladder_store::keyring::KeyringError) -> Self {
        ServiceError::Internal(e.to_string())
    }
}

impl From<crate::limits::Refused> for ServiceError {
    fn from(r: crate::limits::Refused) -> Self {
        ServiceError::RateLimited {
            retry_after_s: r.retry_after_s,
        }
    }
}

/// How refused input is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidity {
    /// It cannot be read: malformed JSON, a bad id, a bad header.
    Malformed,
    /// It is read, but cannot be done as asked: an unknown class, a body
    /// too long, a rule the policy refuses.
    Unprocessable,
    /// Its proof does not verify: a webhook signature, a device's key.
    Unverified,
    /// Sent from somewhere it may not come from: a stale or cross-site
    /// console form.
    Forged,
    /// It names nothing there is, with a code of its own (a route, a
    /// webhook channel).
    Unknown,
}
