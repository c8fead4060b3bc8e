//! Placeholder: the in-app device inbox (the channels work fills it in).
//!
//! Contract: `routes()` serves the device-authenticated inbox endpoints.

use axum::Router;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
