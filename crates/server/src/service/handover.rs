//! What one hand-over carries, fixed before its first provider call so
//! that a retry — after a transient failure, or after the node died
//! between the call and its bookkeeping — sends the very same thing:
//!
//! - the provider idempotency key, per (message, step, channel)
//!   ([`idempotency_key`]); the e-mail Message-ID and the APNs `apns-id`
//!   derive from it;
//! - the hand-over record (`ladder_store::handovers`), written once before
//!   the first call: its start time dates what the hand-over shows (the
//!   e-mail `Date` header, a notice's validity);
//! - the notice text, rendered from the portal link issued once per
//!   (message, step) ([`crate::portal::link_for`]) and from that start
//!   time, never from the clock of the attempt.

use ladder_core::Channel;
use ladder_core::decision::Route;
use ladder_store::messages::Message;
use ladder_store::{StoreError, handovers};

use crate::service::error::ServiceError;
use crate::state::{AppState, now_ms};

/// The provider idempotency key of one hand-over: (message, step, channel).
pub(crate) fn idempotency_key(message_id: &str, route: &Route, channel: Channel) -> String {
    format!("{message_id}/{}/{channel}", step_name(route))
}

/// The route's step as it names hand-overs and portal links (`legacy` for
/// an observe-mode legacy route).
pub(crate) fn step_name(route: &Route) -> String {
    route
        .step
        .map_or_else(|| "legacy".to_string(), |s| s.to_string())
}

/// Records the hand-over of `route` on `channel` unless it was recorded
/// before; returns when it was first recorded. A hand-over recorded before
/// (an earlier attempt that may have reached the provider: a retry, or a
/// node that died mid-call) is noted in `resumed`, so its attempt is
/// audited as a resend of the same hand-over.
pub(crate) async fn begin_handover(
    state: &AppState,
    message: &Message,
    route: &Route,
    channel: Channel,
    resumed: &mut Vec<Channel>,
) -> Result<i64, ServiceError> {
    let now = now_ms();
    let (tenant_id, message_id) = (message.tenant_id.clone(), message.id.clone());
    let key = idempotency_key(&message.id, route, channel);
    // Durable before the provider call: the unit answers once committed.
    let started = state
        .commit
        .run(move |tx| {
            Box::pin(async move {
                handovers::begin(tx, &tenant_id, &message_id, &key, &channel.to_string(), now).await
            })
        })
        .await?;
    if started != now {
        resumed.push(channel);
        metrics::counter!("ladder_handovers_resumed_total", "channel" => channel.to_string())
            .increment(1);
    }
    Ok(started)
}

/// The tenant's notice with a link for the recipient. Content-free by
/// construction: the template may name only the tenant, a link and an
/// expiry. The link is the portal's one-time link for this message and
/// step, and the text depends only on what was fixed when the hand-over
/// was first recorded (`handed_over_ms`): the same on every retry.
pub(crate) async fn notice_text(
    state: &AppState,
    message: &Message,
    route: &Route,
    handed_over_ms: i64,
) -> Result<String, ServiceError> {
    let policy = {
        let mut conn = state
            .store
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        state.active_policy(&mut conn, &message.tenant_id).await?
    };
    // One link per (step, notifier): a fallback to another notifier of the
    // same step sends a link of its own, whose code goes where *that*
    // route said (the first link keeps its own factor).
    let link_key = match route.notifier {
        Some(n) => format!("{}/{}", step_name(route), n.channel()),
        None => step_name(route),
    };
    let (link, expires_in) =
        crate::portal::link_for(state, message, &link_key, handed_over_ms).await?;
    let text = policy
        .class(&message.class)
        .and_then(|c| policy.notice_for(c))
        .map(|t| t.render(policy.display_name(), &link, &expires_in).0)
        .unwrap_or_else(|| {
            format!(
                "You have a new secure message from {}. Open it here: {link}",
                policy.display_name()
            )
        });
    Ok(text)
}
