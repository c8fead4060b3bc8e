//! The portal's requests: open a link (a page with a button), ask for a
//! code (the button), enter the code, read the message, close it. Asking
//! for a code and entering one are rate-limited (`crate::limits`) before
//! anything is read.
//!
//! Each request runs in one transaction that first locks the link's row
//! (PostgreSQL; SQLite has one writer), so concurrent requests on one link
//! count wrong codes and views in turn; the audit entry commits with what
//! it records. The code notice is sent after that transaction commits,
//! never while it holds the connection.

use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use ladder_core::{Container, SecondFactor};
use ladder_store::messages::{self, Message, Status, StoredPayload};
use ladder_store::portal::{self, Link, Session};
use ladder_store::stats::Metric;
use ladder_store::{StoreError, Tx, recipients, tenants};
use serde_json::json;

use super::pages::{self, FormNote, Look, SentTo};
use super::{ACTOR, mask, ms, notify, secrets};
use crate::service::devices::open_contact;
use crate::service::error::ServiceError;
use crate::service::{audit, stats};
use crate::state::{AppState, now_ms};

pub(super) fn done(look: &Look, result: Result<Response, ServiceError>) -> Response {
    result.unwrap_or_else(|e| pages::failure(look, &e))
}

pub(super) async fn commit(tx: Tx) -> Result<(), ServiceError> {
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

pub(super) fn event(name: &'static str) {
    metrics::counter!("ladder_portal_events_total", "event" => name).increment(1);
}

/// A link that may be used now, with its message and sealed payload.
pub(super) struct Usable {
    pub(super) link: Link,
    pub(super) message: Message,
    pub(super) payload: StoredPayload,
}

/// Finds the link `token` names, locked, and checks it may be used now.
/// A refusal is audited inside `tx` and answered with its page: unknown
/// and expired links alike, withdrawn (revoked or shredded) messages,
/// locked links, used-up view limits (except for a download, which is
/// part of a view already counted). Once the link is known, `look` takes
/// the recipient's language and zone and the tenant's branding.
pub(super) async fn usable(
    state: &AppState,
    tx: &mut Tx,
    token: &str,
    now: i64,
    page: &'static str,
    look: &mut Look,
    headers: &HeaderMap,
) -> Result<Result<Usable, Response>, ServiceError> {
    let Some(hash) = secrets::hash_if_token(token) else {
        event("unknown_link");
        return Ok(Err(pages::expired(look)));
    };
    let Some(link) = portal::link_by_token_for_update(tx, state.store.dialect(), &hash).await?
    else {
        event("unknown_link");
        return Ok(Err(pages::expired(look)));
    };
    if link.is_expired(now) {
        refuse(state, tx, &link, "expired", page).await?;
        return Ok(Err(pages::expired(look)));
    }
    let message = messages::get(tx, &link.tenant_id, &link.message_id).await?;
    let payload = messages::payload(tx, &link.tenant_id, &link.message_id).await?;
    let (Some(message), Some(payload)) = (message, payload) else {
        refuse(state, tx, &link, "withdrawn", page).await?;
        return Ok(Err(pages::withdrawn(look)));
    };
    // Only a message the portal carries is shown here, and only while it is
    // on its way or delivered: a link never opens a message that went (or
    // was re-decided) to another container, nor one awaiting confirmation.
    let on_portal = message
        .decision
        .outcome
        .route()
        .is_some_and(|r| r.container == Container::Portal);
    let live = matches!(
        message.status,
        Status::Queued | Status::Sent | Status::Delivered | Status::Read
    );
    if !(on_portal && live) && payload.shredded_at.is_none() {
        refuse(state, tx, &link, "not_on_portal", page).await?;
        return Ok(Err(pages::expired(look)));
    }
    if payload.shredded_at.is_some() || payload.ciphertext.is_none() {
        // Retention ending is expiry; anything else (revocation, an
        // undeliverable message, redaction) is the sender withdrawing it.
        return Ok(Err(
            if payload.shred_reason.as_deref() == Some("retention_expired") {
                refuse(state, tx, &link, "retention_expired", page).await?;
                pages::expired(look)
            } else {
                refuse(state, tx, &link, "withdrawn", page).await?;
                pages::withdrawn(look)
            },
        ));
    }
    if let Some(until) = link.locked_until_ms.filter(|_| link.is_locked(now)) {
        refuse(state, tx, &link, "locked", page).await?;
        return Ok(Err(pages::locked(look, until)));
    }
    if link.views_left() == 0 && page != "download" {
        refuse(state, tx, &link, "view_limit", page).await?;
        return Ok(Err(pages::expired(look)));
    }
    // Only a usable link shows whose it is (the tenant's look) and speaks
    // the recipient's language: an expired, withdrawn, locked or used-up
    // link looks exactly like an unknown one, so an old link in someone
    // else's hands tells them nothing.
    look.settle(state, tx, headers, &link).await?;
    Ok(Ok(Usable {
        link,
        message,
        payload,
    }))
}

pub(super) async fn refuse(
    state: &AppState,
    tx: &mut Tx,
    link: &Link,
    reason: &'static str,
    page: &'static str,
) -> Result<(), ServiceError> {
    audit::record(
        tx,
        state,
        &link.tenant_id,
        ACTOR,
        "portal_access_refused",
        Some(&link.message_id),
        json!({ "link": link.id, "reason": reason, "page": page }),
    )
    .await?;
    metrics::counter!("ladder_portal_refusals_total", "reason" => reason).increment(1);
    Ok(())
}

/// The request's session, if it is live and belongs to `link`.
pub(super) async fn live_session(
    state: &AppState,
    tx: &mut Tx,
    headers: &HeaderMap,
    link: &Link,
    now: i64,
) -> Result<Option<Session>, ServiceError> {
    let Some(token) = secrets::session_token(state, headers) else {
        return Ok(None);
    };
    let session = portal::session(tx, &secrets::token_hash(&token)).await?;
    let idle = ms(state.config.portal.idle_timeout_s);
    Ok(session
        .filter(|s| s.tenant_id == link.tenant_id && s.link_id == link.id && s.is_live(now, idle)))
}

/// How this link's recipient proves who they are: the second factor the
/// decision counted on (`None` when they have no way to), with the
/// address it goes to masked for the page.
pub(super) async fn second_factor(
    state: &AppState,
    tx: &mut Tx,
    link: &Link,
    message: &Message,
) -> Result<Option<Factor>, ServiceError> {
    let recipient = recipients::get(tx, &link.tenant_id, &link.recipient_id)
        .await?
        .ok_or_else(|| {
            ServiceError::Internal(format!("recipient of link {} is missing", link.id))
        })?;
    let fixed = match link.second_factor.as_deref() {
        None => None,
        Some(name) => Some(SecondFactor::from_name(name).ok_or_else(|| {
            ServiceError::Internal(format!("link {} has an unknown second factor", link.id))
        })?),
    };
    notify::factor_for(
        fixed,
        message.decision.outcome.route(),
        recipient.has_phone,
        recipient.has_email,
    )
    .map(|f| -> Result<Factor, ServiceError> {
        Ok(match f {
            SecondFactor::Sms | SecondFactor::Email => {
                let contact = open_contact(state, &link.tenant_id, &recipient)?;
                Factor::Code(match f {
                    SecondFactor::Sms => {
                        SentTo::Phone(mask::phone(contact.phone.as_deref().unwrap_or_default()))
                    }
                    _ => SentTo::Email(mask::email(contact.email.as_deref().unwrap_or_default())),
                })
            }
            SecondFactor::None => Factor::NoCode,
        })
    })
    .transpose()
}

/// What the portal asks of whoever opened a link.
#[derive(Debug, Clone)]
pub(super) enum Factor {
    /// A one-time code, sent there.
    Code(SentTo),
    /// Nothing: the step opens without a code (`step_up = "none"`).
    NoCode,
}

/// The name recipients know the sender by: the policy's display name.
pub(super) async fn display_name(
    state: &AppState,
    tx: &mut Tx,
    tenant_id: &str,
) -> Result<String, ServiceError> {
    match state.active_policy(tx, tenant_id).await {
        Ok(policy) => Ok(policy.display_name().to_string()),
        Err(_) => Ok(tenants::get(tx, tenant_id)
            .await?
            .map(|t| t.name)
            .unwrap_or_default()),
    }
}

pub(super) fn message_path(token: &str) -> String {
    format!("/portal/{token}/message")
}

/// `GET /portal/{token}` (and `HEAD`): shows what opening the message
/// takes and a button that asks for the code; sends nothing and spends
/// nothing, because mail security gateways fetch every link in the mail
/// they scan. A live session goes straight to the message.
pub(super) async fn open(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut look = Look::from_headers(&headers);
    let result = open_inner(&state, &token, &headers, &mut look).await;
    done(&look, result)
}

async fn open_inner(
    state: &AppState,
    token: &str,
    headers: &HeaderMap,
    look: &mut Look,
) -> Result<Response, ServiceError> {
    let now = now_ms();
    let mut tx = state.store.begin().await?;
    let Usable { link, message, .. } =
        match usable(state, &mut tx, token, now, "open", look, headers).await? {
            Ok(u) => u,
            Err(page) => {
                commit(tx).await?;
                return Ok(page);
            }
        };
    if live_session(state, &mut tx, headers, &link, now)
        .await?
        .is_some()
    {
        drop(tx);
        return Ok(pages::see_other(look, &message_path(token), None));
    }
    let factor = second_factor(state, &mut tx, &link, &message).await?;
    let csrf = secrets::link_csrf(state, &link.tenant_id, &link.id)?;
    match factor {
        Some(Factor::Code(to)) => {
            drop(tx);
            Ok(pages::start(look, token, &csrf, &to))
        }
        // Opening is the button's: a GET spends no view either.
        Some(Factor::NoCode) => {
            drop(tx);
            Ok(pages::start_without_code(look, token, &csrf))
        }
        None => {
            refuse(state, &mut tx, &link, "no_second_factor", "open").await?;
            commit(tx).await?;
            Ok(pages::no_second_factor(look))
        }
    }
}

/// Checks `[limits]` for a code request or attempt on `token` from `peer`;
/// a refusal is answered with the portal's 429 page, and audited in the
/// link's tenant once a minute per link (never per refused request, which
/// would let the limit be flooded through).
pub(super) async fn limited(
    state: &AppState,
    look: &Look,
    token: &str,
    peer: std::net::IpAddr,
    surface: crate::limits::Surface,
) -> Result<Option<Response>, ServiceError> {
    let hash = secrets::hash_if_token(token);
    let checked = match surface {
        crate::limits::Surface::PortalCodeAttempt => {
            state.limits.code_attempt(hash.as_deref(), peer)
        }
        _ => state.limits.code_request(hash.as_deref(), peer),
    };
    let Err(refused) = checked else {
        return Ok(None);
    };
    if let Some(hash) = hash.filter(|h| state.limits.audit_due(surface, h)) {
        let mut tx = state.store.begin().await?;
        if let Some(link) =
            portal::link_by_token_for_update(&mut tx, state.store.dialect(), &hash).await?
        {
            audit::record(
                &mut tx,
                state,
                &link.tenant_id,
                ACTOR,
                "portal_rate_limited",
                Some(&link.message_id),
                json!({ "link": link.id, "request": surface.label(), "limit": refused.by }),
            )
            .await?;
        }
        commit(tx).await?;
    }
    Ok(Some(pages::rate_limited(look, refused.retry_after_s)))
}

/// `POST /portal/{token}` (the button on the link's page): sends a
/// one-time code (unless one was sent moments ago) and shows the code
/// form. A live session goes straight to the message.
pub(super) async fn request_code(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut look = Look::from_headers(&headers);
    let result = request_code_inner(&state, &token, peer.ip(), &headers, &body, &mut look).await;
    done(&look, result)
}

async fn request_code_inner(
    state: &AppState,
    token: &str,
    peer: std::net::IpAddr,
    headers: &HeaderMap,
    body: &[u8],
    look: &mut Look,
) -> Result<Response, ServiceError> {
    if let Some(page) = limited(
        state,
        look,
        token,
        peer,
        crate::limits::Surface::PortalCodeRequest,
    )
    .await?
    {
        return Ok(page);
    }
    let cfg = &state.config.portal;
    let now = now_ms();
    let mut tx = state.store.begin().await?;
    let Usable {
        mut link, message, ..
    } = match usable(state, &mut tx, token, now, "send_code", look, headers).await? {
        Ok(u) => u,
        Err(page) => {
            commit(tx).await?;
            return Ok(page);
        }
    };
    if live_session(state, &mut tx, headers, &link, now)
        .await?
        .is_some()
    {
        drop(tx);
        return Ok(pages::see_other(look, &message_path(token), None));
    }
    let csrf = secrets::link_csrf(state, &link.tenant_id, &link.id)?;
    let given = secrets::form_field(body, "csrf").unwrap_or_default();
    if !secrets::same(&given, &csrf) {
        refuse(state, &mut tx, &link, "csrf", "send_code").await?;
        commit(tx).await?;
        return Ok(pages::stale_form(look, token));
    }
    let to = match second_factor(state, &mut tx, &link, &message).await? {
        Some(Factor::Code(to)) => to,
        Some(Factor::NoCode) => {
            return open_without_code(state, tx, &link, &message.class, token, now, look).await;
        }
        None => {
            refuse(state, &mut tx, &link, "no_second_factor", "send_code").await?;
            commit(tx).await?;
            return Ok(pages::no_second_factor(look));
        }
    };
    // A code sent moments ago is still on its way: no second one.
    if let (Some(_), Some(sent), Some(until)) =
        (link.live_code(now), link.code_sent_ms, link.code_expires_ms)
        && now < sent.saturating_add(ms(cfg.code_resend_s))
    {
        drop(tx);
        let valid_for_s = (until - now) / 1000;
        return Ok(pages::code_form(
            look,
            token,
            &csrf,
            &to,
            &FormNote::Sent { valid_for_s },
        ));
    }
    if link.codes_sent >= i64::from(cfg.max_codes.max(1)) {
        refuse(state, &mut tx, &link, "code_limit", "send_code").await?;
        commit(tx).await?;
        return Ok(pages::too_many_codes(look));
    }
    let code = zeroize::Zeroizing::new(portal::new_code(6)?);
    link.code_hash = Some(secrets::code_hash(state, &link.tenant_id, &link.id, &code)?);
    link.code_sent_ms = Some(now);
    let code_expires = now.saturating_add(ms(cfg.code_ttl_s));
    link.code_expires_ms = Some(code_expires);
    link.codes_sent += 1;
    portal::update_code_state(&mut tx, &link).await?;
    let channel = match to {
        SentTo::Phone(_) => ladder_core::Channel::Sms,
        SentTo::Email(_) => ladder_core::Channel::Email,
    };
    audit::record(
        &mut tx,
        state,
        &link.tenant_id,
        ACTOR,
        "portal_code_issued",
        Some(&link.message_id),
        json!({ "link": link.id, "channel": channel, "code_number": link.codes_sent }),
    )
    .await?;
    let sender = display_name(state, &mut tx, &link.tenant_id).await?;
    commit(tx).await?;
    event("code_issued");

    let sent = notify::send_code(
        state,
        &message,
        channel,
        format!("portal-code/{}/{}", link.id, link.codes_sent),
        notify::code_text(&sender, &code),
        code_expires / 1000,
    )
    .await?;
    if let Err(reason) = sent {
        code_not_sent(state, &link, now, channel, &reason).await?;
        return Ok(pages::code_not_sent(look, token));
    }
    Ok(pages::code_form(
        look,
        token,
        &csrf,
        &to,
        &FormNote::Sent {
            valid_for_s: i64::try_from(cfg.code_ttl_s).unwrap_or(i64::MAX),
        },
    ))
}

/// A link whose step opens without a one-time code (`step_up = "none"`,
/// only for classes whose minimum is `none`): a session at once, audited.
async fn open_without_code(
    state: &AppState,
    mut tx: Tx,
    link: &Link,
    class: &str,
    token: &str,
    now: i64,
    look: &Look,
) -> Result<Response, ServiceError> {
    let session_token = new_session(state, &mut tx, link, now).await?;
    stats::record(&mut tx, &link.tenant_id, Metric::PortalOpen, class).await?;
    audit::record(
        &mut tx,
        state,
        &link.tenant_id,
        ACTOR,
        "portal_opened_without_code",
        Some(&link.message_id),
        json!({ "link": link.id }),
    )
    .await?;
    commit(tx).await?;
    event("opened_without_code");
    Ok(pages::see_other(
        look,
        &message_path(token),
        Some(secrets::session_cookie(state, &session_token)),
    ))
}

/// Opens a session on `link`; returns its token (only its hash is stored).
pub(super) async fn new_session(
    state: &AppState,
    tx: &mut Tx,
    link: &Link,
    now: i64,
) -> Result<String, ServiceError> {
    let session_token = portal::new_token()?;
    portal::insert_session(
        tx,
        &Session {
            token_hash: secrets::token_hash(&session_token),
            tenant_id: link.tenant_id.clone(),
            link_id: link.id.clone(),
            created_ms: now,
            last_seen_ms: now,
            expires_ms: now.saturating_add(ms(state.config.portal.session_max_s)),
            ended_ms: None,
            viewed_ms: None,
        },
    )
    .await?;
    Ok(session_token)
}

/// The code could not be sent: it is withdrawn (so the next visit sends a
/// new one at once), and the failure audited.
async fn code_not_sent(
    state: &AppState,
    sent: &Link,
    sent_at: i64,
    channel: ladder_core::Channel,
    reason: &str,
) -> Result<(), ServiceError> {
    let mut tx = state.store.begin().await?;
    let current =
        portal::link_for_update(&mut tx, state.store.dialect(), &sent.tenant_id, &sent.id).await?;
    if let Some(mut link) = current.filter(|l| l.code_sent_ms == Some(sent_at)) {
        link.code_hash = None;
        link.code_sent_ms = None;
        link.code_expires_ms = None;
        portal::update_code_state(&mut tx, &link).await?;
    }
    audit::record(
        &mut tx,
        state,
        &sent.tenant_id,
        ACTOR,
        "portal_code_not_sent",
        Some(&sent.message_id),
        json!({ "link": sent.id, "channel": channel, "code": reason }),
    )
    .await?;
    commit(tx).await
}
