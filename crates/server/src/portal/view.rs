//! The message page, its download and the end of a session: what a
//! recipient sees after step-up, counted against the link's view limit
//! and audited. A download is a copy of the message in a live session
//! (counted as part of the view it was taken from), audited as its own
//! access.

use super::pages::{self, Look, MessageView};
use super::{ACTOR, secrets};
use crate::service::error::ServiceError;
use crate::service::{audit, open_payload};
use crate::state::{AppState, now_ms};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, SET_COOKIE};
use axum::response::{IntoResponse, Response};
use ladder_core::{AssuranceLevel, Container};
use ladder_store::messages::{self, Event, Message, Status};
use ladder_store::portal::{self, Session};
use ladder_store::{Tx, threads};
use serde_json::json;

use super::flow::*;

/// `GET /portal/{token}/message`: with a live session, counts a view and
/// shows the message.
pub(super) async fn show_message(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut look = Look::from_headers(&headers);
    let result = show_message_inner(&state, &token, &headers, &mut look).await;
    done(&look, result)
}

async fn show_message_inner(
    state: &AppState,
    token: &str,
    headers: &HeaderMap,
    look: &mut Look,
) -> Result<Response, ServiceError> {
    let now = now_ms();
    let (mut tx, usable, session) =
        match in_session(state, token, now, "message", look, headers).await? {
            Ok(found) => found,
            Err(page) => return Ok(page),
        };
    let Usable {
        link,
        message,
        payload,
    } = usable;
    let previous = portal::last_access(&mut tx, &link.tenant_id, &link.recipient_id).await?;
    if !portal::count_view(&mut tx, &link.tenant_id, &link.id, now).await? {
        refuse(state, &mut tx, &link, "view_limit", "message").await?;
        commit(tx).await?;
        return Ok(pages::expired(look));
    }
    let view = link.views + 1;
    portal::touch_session(&mut tx, &session.token_hash, now).await?;
    portal::session_viewed(&mut tx, &session.token_hash, now).await?;

    let Some(plain) = open_payload(state, &link.tenant_id, &message.id, payload)? else {
        return Ok(pages::withdrawn(look));
    };
    let body = zeroize::Zeroizing::new(String::from_utf8_lossy(&plain).into_owned());
    drop(plain);

    // The honest label: what the thread shows the recipient (the level its
    // last delivered message travelled at), never above the level this
    // message travelled at, and never above what the portal itself is — a
    // page the server, and so the sender, can read.
    let label = honest_label(&mut tx, &message).await?;

    mark_read(state, &mut tx, &message, now).await?;
    audit::record(
        &mut tx,
        state,
        &link.tenant_id,
        ACTOR,
        "portal_viewed",
        Some(&link.message_id),
        json!({ "link": link.id, "view": view, "max_views": link.max_views, "label": label }),
    )
    .await?;
    let sender = display_name(state, &mut tx, &link.tenant_id).await?;
    commit(tx).await?;
    event("viewed");
    let csrf = secrets::session_csrf(state, &link.tenant_id, &session.token_hash)?;
    Ok(pages::message(
        look,
        &MessageView {
            token,
            csrf: &csrf,
            sender: &sender,
            body: &body,
            label,
            opened_ms: now,
            previous_access_ms: previous,
            view,
            max_views: link.max_views,
            link_expires_ms: link.expires_ms,
        },
    ))
}

/// The honest label: what the thread shows the recipient (the level its
/// last delivered message travelled at), never above the level this
/// message travelled at, and never above what the portal itself is — a
/// page the server, and so the sender, can read.
async fn honest_label(tx: &mut Tx, message: &Message) -> Result<AssuranceLevel, ServiceError> {
    let route = message
        .decision
        .outcome
        .route()
        .map_or(AssuranceLevel::Transport, |r| r.assurance);
    let shown = threads::get(tx, &message.tenant_id, &message.thread_id)
        .await?
        .and_then(|t| t.floor.label)
        .unwrap_or(route);
    Ok(shown.min(route).min(AssuranceLevel::Transport))
}

/// How long after its view a session may download the message.
const DOWNLOAD_AFTER_VIEW_MS: i64 = 15 * 60 * 1000;

/// `GET /portal/{token}/download`: with a live session, the message as a
/// plain-text attachment (never cached), with who sent it, its honest
/// label and when it was taken; audited. Without a session, the
/// session-ended page.
pub(super) async fn download(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut look = Look::from_headers(&headers);
    let result = download_inner(&state, &token, &headers, &mut look).await;
    done(&look, result)
}

async fn download_inner(
    state: &AppState,
    token: &str,
    headers: &HeaderMap,
    look: &mut Look,
) -> Result<Response, ServiceError> {
    let now = now_ms();
    let (mut tx, usable, session) =
        match in_session(state, token, now, "download", look, headers).await? {
            Ok(found) => found,
            Err(page) => return Ok(page),
        };
    let Usable {
        link,
        message,
        payload,
    } = usable;
    // A download is part of a view: only for the session that counted one,
    // shortly before. Never for a session that skipped the message page,
    // nor — once the link's views ran out — for whoever finds the session
    // still open on a shared device hours later.
    let viewed_lately = session
        .viewed_ms
        .is_some_and(|at| now.saturating_sub(at) <= DOWNLOAD_AFTER_VIEW_MS);
    if !viewed_lately {
        refuse(state, &mut tx, &link, "not_viewed", "download").await?;
        commit(tx).await?;
        return Ok(pages::expired(look));
    }
    portal::touch_session(&mut tx, &session.token_hash, now).await?;
    let Some(plain) = open_payload(state, &link.tenant_id, &message.id, payload)? else {
        return Ok(pages::withdrawn(look));
    };
    let label = honest_label(&mut tx, &message).await?;
    audit::record(
        &mut tx,
        state,
        &link.tenant_id,
        ACTOR,
        "portal_downloaded",
        Some(&link.message_id),
        json!({ "link": link.id, "label": label }),
    )
    .await?;
    let sender = display_name(state, &mut tx, &link.tenant_id).await?;
    commit(tx).await?;
    event("downloaded");
    let (label_id, _, _) = pages::label_ids(label);
    let mut text = zeroize::Zeroizing::new(format!(
        "{}\n{}: {sender}\n{}: {}\n{}: {}\n\n",
        look.ta("message-title", &[("sender", sender.as_str().into())]),
        look.t("from-label"),
        look.t("security-heading"),
        look.t(label_id),
        look.t("opened-label"),
        look.time(now),
    ));
    text.push_str(&String::from_utf8_lossy(&plain));
    text.push('\n');
    drop(plain);
    let mut res = (
        [
            (CONTENT_TYPE, "text/plain; charset=utf-8"),
            (CONTENT_DISPOSITION, "attachment; filename=\"message.txt\""),
        ],
        text.as_bytes().to_vec(),
    )
        .into_response();
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// The link `token` names, usable now, and the request's live session on
/// it — or the page to answer instead, with what it records committed. A
/// download without a session is refused on the record; the message page
/// without one is where an ended session is told (not a refusal).
async fn in_session(
    state: &AppState,
    token: &str,
    now: i64,
    page: &'static str,
    look: &mut Look,
    headers: &HeaderMap,
) -> Result<Result<(Tx, Usable, Session), Response>, ServiceError> {
    let mut tx = state.store.begin().await?;
    let usable = match usable(state, &mut tx, token, now, page, look, headers).await? {
        Ok(u) => u,
        Err(answer) => {
            commit(tx).await?;
            return Ok(Err(answer));
        }
    };
    let Some(session) = live_session(state, &mut tx, headers, &usable.link, now).await? else {
        if page == "download" {
            refuse(state, &mut tx, &usable.link, "no_session", page).await?;
        }
        commit(tx).await?;
        event("no_session");
        return Ok(Err(pages::session_ended(look, token)));
    };
    Ok(Ok((tx, usable, session)))
}

/// The first view of a portal message is its reading, as a read receipt
/// is for other channels.
async fn mark_read(
    state: &AppState,
    tx: &mut Tx,
    message: &Message,
    now: i64,
) -> Result<(), ServiceError> {
    let Some(mut m) =
        messages::get_for_update(tx, state.store.dialect(), &message.tenant_id, &message.id)
            .await?
    else {
        return Ok(());
    };
    let on_portal = m
        .decision
        .outcome
        .route()
        .is_some_and(|r| r.container == Container::Portal);
    if on_portal && matches!(m.status, Status::Sent | Status::Delivered) {
        m.status = Status::Read;
        m.updated_at = now / 1000;
        messages::update(tx, &m).await?;
        messages::add_event(
            tx,
            &m.tenant_id,
            &m.id,
            &Event {
                at: now / 1000,
                kind: "read".into(),
                detail: json!({ "channel": "portal" }),
            },
        )
        .await?;
    }
    Ok(())
}

/// `POST /portal/{token}/end`: closes the session (the recipient is done,
/// or on a shared device).
pub(super) async fn end_session(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut look = Look::from_headers(&headers);
    let result = end_session_inner(&state, &token, &headers, &body, &mut look).await;
    done(&look, result)
}

async fn end_session_inner(
    state: &AppState,
    token: &str,
    headers: &HeaderMap,
    body: &[u8],
    look: &mut Look,
) -> Result<Response, ServiceError> {
    let now = now_ms();
    let Some(hash) = secrets::hash_if_token(token) else {
        return Ok(pages::expired(look));
    };
    let mut tx = state.store.begin().await?;
    let Some(link) =
        portal::link_by_token_for_update(&mut tx, state.store.dialect(), &hash).await?
    else {
        return Ok(pages::expired(look));
    };
    look.settle(state, &mut tx, headers, &link).await?;
    let session = match secrets::session_token(state, headers) {
        Some(t) => portal::session(&mut tx, &secrets::token_hash(&t))
            .await?
            .filter(|s| s.tenant_id == link.tenant_id && s.link_id == link.id),
        None => None,
    };
    if let Some(session) = session {
        let csrf = secrets::session_csrf(state, &link.tenant_id, &session.token_hash)?;
        let given = secrets::form_field(body, "csrf").unwrap_or_default();
        if !secrets::same(&given, &csrf) {
            refuse(state, &mut tx, &link, "csrf", "end").await?;
            commit(tx).await?;
            return Ok(pages::stale_form(look, token));
        }
        if portal::end_session(&mut tx, &session.token_hash, now).await? {
            audit::record(
                &mut tx,
                state,
                &link.tenant_id,
                ACTOR,
                "portal_session_ended",
                Some(&link.message_id),
                json!({ "link": link.id }),
            )
            .await?;
        }
        commit(tx).await?;
    }
    let mut page = pages::closed(look);
    if let Ok(v) = secrets::clear_cookie(state).parse() {
        page.headers_mut().insert(SET_COOKIE, v);
    }
    Ok(page)
}
