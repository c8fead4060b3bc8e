//! Sending a one-time code: a content-free notice by the channel the
//! decision chose for it (`ladder_core::step_up`: by default the other
//! inbox than the one that carried the link — SMS for an e-mail notice,
//! e-mail for an SMS notice) — through the same adapters as every other
//! notice.

use std::time::Duration;

use ladder_channels::{Content, DeliveryError, Dispatch};
use ladder_core::decision::Route;
use ladder_core::step_up::{CodeChannels, second_factor};
use ladder_core::{AssuranceLevel, Channel, SecondFactor, StepUp};
use ladder_store::messages::Message;

use crate::service::deliver::{destination, tenant_name};
use crate::service::error::ServiceError;
use crate::state::AppState;

/// The second factor a link's recipient gets: the one fixed on the link
/// when the route that sent it was decided (`fixed`), else the one the
/// message's route chose (so the portal asks for exactly what the decision
/// counted on), provided its contact is still on file. A decision made before
/// routes recorded it gets the default rule, `other_channel`, applied to
/// the contacts on file. `None`: there is no way to open it.
pub(super) fn factor_for(
    fixed: Option<SecondFactor>,
    route: Option<&Route>,
    has_phone: bool,
    has_email: bool,
) -> Option<SecondFactor> {
    let on_file = CodeChannels {
        sms: has_phone,
        email: has_email,
    };
    let chosen = match fixed.or_else(|| route.and_then(|r| r.second_factor)) {
        Some(f) => Some(f),
        None => second_factor(
            StepUp::OtherChannel,
            route.and_then(|r| r.notifier).map(|n| n.channel()),
            on_file,
        ),
    };
    chosen.filter(|f| match f {
        SecondFactor::Sms => has_phone,
        SecondFactor::Email => has_email,
        SecondFactor::None => true,
    })
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
) -> Result<Result<(), String>, ServiceError> {
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
    use ladder_core::Notifier;

    fn portal(notifier: Notifier, second_factor: Option<SecondFactor>) -> Route {
        Route {
            step: Some(2),
            container: ladder_core::Container::Portal,
            notifier: Some(notifier),
            assurance: AssuranceLevel::Transport,
            second_factor,
        }
    }

    #[test]
    fn the_code_goes_where_the_decision_said() {
        let by_mail = |f| portal(Notifier::EmailNotice, f);
        assert_eq!(
            factor_for(None, Some(&by_mail(Some(SecondFactor::Sms))), true, true),
            Some(SecondFactor::Sms)
        );
        // `any_channel` may have chosen the notice's own inbox.
        assert_eq!(
            factor_for(None, Some(&by_mail(Some(SecondFactor::Email))), true, true),
            Some(SecondFactor::Email)
        );
        assert_eq!(
            factor_for(None, Some(&by_mail(Some(SecondFactor::None))), false, false),
            Some(SecondFactor::None)
        );
        // A contact no longer on file is no way to open it.
        assert_eq!(
            factor_for(None, Some(&by_mail(Some(SecondFactor::Sms))), false, true),
            None
        );
        // Decisions from before routes recorded it: the default rule.
        assert_eq!(
            factor_for(None, Some(&by_mail(None)), true, true),
            Some(SecondFactor::Sms)
        );
        assert_eq!(factor_for(None, Some(&by_mail(None)), false, true), None);
        assert_eq!(
            factor_for(None, Some(&portal(Notifier::SmsNotice, None)), true, true),
            Some(SecondFactor::Email)
        );
        // The factor fixed on a link wins over the message's later route:
        // the e-mail link of a message that fell back to an SMS notice
        // still takes its code by SMS.
        assert_eq!(
            factor_for(
                Some(SecondFactor::Sms),
                Some(&portal(Notifier::SmsNotice, Some(SecondFactor::Email))),
                true,
                true
            ),
            Some(SecondFactor::Sms)
        );
        assert_eq!(
            code_text("Acme Corp", "012345"),
            "Your Acme Corp verification code is 012345"
        );
    }
}
