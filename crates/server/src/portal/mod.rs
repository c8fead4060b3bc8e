//! Placeholder: the recipient portal (the channels work fills it in).
//!
//! Contract: `link_for` issues the one-time link a notice carries for a
//! message (returning the link and how long it stays valid, as text), and
//! `routes` serves the portal's pages.

use axum::Router;
use ladder_store::messages::Message;

use crate::error::ApiError;
use crate::state::AppState;

/// `[portal]` settings.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalConfig {}

/// A one-time link to the message on the portal, and its validity as text.
pub async fn link_for(state: &AppState, _message: &Message) -> Result<(String, String), ApiError> {
    let token = ladder_store::ids::random_hex(24)?;
    Ok((
        format!("{}/portal/{token}", state.config.public_url()),
        "7 days".into(),
    ))
}

/// The portal's pages.
pub fn routes() -> Router<AppState> {
    Router::new()
}
