//! API-key authentication: `Authorization: Bearer <key>`. The key is looked
//! up by its SHA-256; the caller it names carries its tenant into every
//! query, which is how one tenant never reaches another's rows.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use ladder_store::tenants::{self, Caller, Scope};

use crate::service::error::ServiceError;
use crate::state::AppState;

/// An authenticated caller with at least `sender` scope.
#[derive(Debug, Clone)]
pub struct Sender(pub Caller);

/// An authenticated caller with `admin` scope.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

async fn caller(parts: &Parts, state: &AppState) -> Result<Caller, ServiceError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(ServiceError::Unauthenticated)?;
    let token = header
        .strip_prefix("Bearer ")
        .ok_or(ServiceError::Unauthenticated)?
        .trim();
    // A read-only connection: on SQLite the key lookup does not queue
    // behind the writer's batches.
    let mut conn = state.store.read().await?;
    tenants::authenticate(&mut conn, token)
        .await?
        .ok_or(ServiceError::Unauthenticated)
}

impl FromRequestParts<AppState> for Sender {
    type Rejection = ServiceError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ServiceError> {
        Ok(Sender(caller(parts, state).await?))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ServiceError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ServiceError> {
        let c = caller(parts, state).await?;
        if !c.scope.allows(Scope::Admin) {
            return Err(ServiceError::Forbidden {
                needed: "admin operations",
            });
        }
        Ok(Admin(c))
    }
}

/// How a caller appears in the audit log.
pub fn actor(c: &Caller) -> String {
    format!("api-key:{}", c.key_id)
}
