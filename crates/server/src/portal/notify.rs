//! Sending a one-time code: a content-free notice over the recipient's
//! other channel than the one that carried the link (SMS for an e-mail
//! notice, e-mail for an SMS notice) — through the same adapters as every
//! other notice.

use std::time::Duration;

use ladder_channels::{Content, DeliveryError, Dispatch};
use ladder_core::{AssuranceLevel, Channel};
use ladder_store::messages::Message;

use crate::error::ApiError;
use crate::service::deliver::{destination, tenant_name};
use crate::state::AppState;

/// The channel a recipient's code goes by: never the one that carried the
/// link — whoever holds that inbox must not get both halves — so an e-mail
/// notice's code goes by SMS and an SMS notice's by e-mail. `None` when the
/// recipient has no second channel: the portal then refuses step-up.
pub(super) fn channel_for(
    link_by: Option<Channel>,
    has_phone: bool,
    has_email: bool,
) -> Option<Channel> {
    match link_by {
        Some(Channel::Email) => has_phone.then_some(Channel::Sms),
        Some(Channel::Sms) => has_email.then_some(Channel::Email),
        _ if has_phone => Some(Channel::Sms),
        _ if has_email => Some(Channel::Email),
        _ => None,
    }
}

/// The notice text: the tenant's display name and the code, nothing else.
pub(super) fn code_text(display_name: &str, code: &str) -> String {
    format!("Your {display_name} verification code is {code}")
}

/// Hands the code notice to the channel. Called outside any transaction:
/// an adapter may use the store itself. Errors are codes, never content.
pub(super) async fn send_code(
    state: &AppState,
    message: &Message,
    channel: Channel,
    idempotency_key: String,
    text: String,
    expires_at: i64,
) -> Result<Result<(), String>, ApiError> {
    let tenant = tenant_name(state, &message.tenant_id).await?;
    let to = destination(state, message).await?;
    let Some(adapter) = state.channels.for_tenant(&tenant, channel) else {
        return Ok(Err("channel_not_configured".into()));
    };
    let dispatch = Dispatch {
        tenant_id: message.tenant_id.clone(),
        message_id: message.id.clone(),
        recipient_id: message.recipient_id.clone(),
        thread_id: message.thread_id.clone(),
        channel,
        idempotency_key,
        content: Content::Notice(text),
        to,
        // A notice is never the payload; what its channel exposes it to.
        assurance: match channel {
            Channel::Sms => AssuranceLevel::None,
            _ => AssuranceLevel::Transport,
        },
        expires_at,
        // A code notice is new each time it is asked for (a fresh code).
        handed_over_ms: crate::state::now_ms(),
    };
    let timeout = Duration::from_millis(state.config.delivery.timeout_ms);
    let outcome = match tokio::time::timeout(timeout, adapter.send(&dispatch)).await {
        Err(_) => Err("timeout".to_string()),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(DeliveryError::Transient { code } | DeliveryError::Permanent { code })) => Err(code),
    };
    metrics::counter!(
        "ladder_portal_codes_total",
        "channel" => channel.to_string(),
        "outcome" => if outcome.is_ok() { "sent" } else { "failed" }
    )
    .increment(1);
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_never_go_by_the_channel_that_carried_the_link() {
        assert_eq!(
            channel_for(Some(Channel::Email), true, true),
            Some(Channel::Sms)
        );
        assert_eq!(
            channel_for(Some(Channel::Sms), true, true),
            Some(Channel::Email)
        );
        assert_eq!(channel_for(Some(Channel::Email), false, true), None);
        assert_eq!(channel_for(Some(Channel::Sms), true, false), None);
        assert_eq!(channel_for(None, true, true), Some(Channel::Sms));
        assert_eq!(channel_for(None, false, true), Some(Channel::Email));
        assert_eq!(channel_for(None, false, false), None);
        assert_eq!(
            code_text("Acme Corp", "012345"),
            "Your Acme Corp verification code is 012345"
        );
    }
}
