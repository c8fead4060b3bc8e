//! Entering the one-time code: a wrong one counts and the last allowed
//! wrong one locks the link (ending its sessions); a right one opens a
//! session. Rate-limited per link and per address before anything is read.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use ladder_store::portal;
use ladder_store::stats::Metric;
use serde_json::json;

use super::flow::*;
use super::pages::{self, FormNote, Look, SentTo};
use super::{ACTOR, ms, secrets};
use crate::service::error::ServiceError;
use crate::service::{audit, stats};
use crate::state::{AppState, now_ms};

/// `POST /portal/{token}/code`: checks the code. A wrong one counts; the
/// last allowed wrong one locks the link. A right one opens a session.
pub(super) async fn submit_code(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut look = Look::from_headers(&headers);
    let result = submit_code_inner(&state, &token, peer.ip(), &headers, &body, &mut look).await;
    done(&look, result)
}

async fn submit_code_inner(
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
        crate::limits::Surface::PortalCodeAttempt,
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
    } = match usable(state, &mut tx, token, now, "code", look, headers).await? {
        Ok(u) => u,
        Err(page) => {
            commit(tx).await?;
            return Ok(page);
        }
    };
    let csrf = secrets::link_csrf(state, &link.tenant_id, &link.id)?;
    let given = secrets::form_field(body, "csrf").unwrap_or_default();
    if !secrets::same(&given, &csrf) {
        refuse(state, &mut tx, &link, "csrf", "code").await?;
        commit(tx).await?;
        return Ok(pages::stale_form(look, token));
    }
    let to = match second_factor(state, &mut tx, &link, &message).await? {
        Some(Factor::Code(to)) => to,
        _ => SentTo::Email("•••".to_string()),
    };
    let Some(stored) = link.live_code(now).map(str::to_string) else {
        drop(tx);
        return Ok(pages::code_form(
            look,
            token,
            &csrf,
            &to,
            &FormNote::CodeExpired,
        ));
    };
    let code = zeroize::Zeroizing::new(secrets::normalise_code(
        &secrets::form_field(body, "code").unwrap_or_default(),
    ));
    let well_formed = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
    let right = well_formed
        && secrets::same(
            &secrets::code_hash(state, &link.tenant_id, &link.id, &code)?,
            &stored,
        );
    if right {
        link.code_hash = None;
        link.code_sent_ms = None;
        link.code_expires_ms = None;
        link.attempts = 0;
        portal::update_code_state(&mut tx, &link).await?;
        let session_token = new_session(state, &mut tx, &link, now).await?;
        stats::record(&mut tx, &link.tenant_id, Metric::PortalOpen, &message.class).await?;
        audit::record(
            &mut tx,
            state,
            &link.tenant_id,
            ACTOR,
            "portal_code_verified",
            Some(&link.message_id),
            json!({ "link": link.id }),
        )
        .await?;
        commit(tx).await?;
        event("code_verified");
        return Ok(pages::see_other(
            look,
            &message_path(token),
            Some(secrets::session_cookie(state, &session_token)),
        ));
    }
    let max = i64::from(cfg.max_attempts.max(1));
    link.attempts += 1;
    audit::record(
        &mut tx,
        state,
        &link.tenant_id,
        ACTOR,
        "portal_code_failed",
        Some(&link.message_id),
        json!({ "link": link.id, "attempt": link.attempts, "max_attempts": max }),
    )
    .await?;
    event("code_failed");
    if link.attempts >= max {
        let until = now.saturating_add(ms(cfg.lockout_s));
        link.locked_until_ms = Some(until);
        link.attempts = 0;
        link.code_hash = None;
        link.code_sent_ms = None;
        link.code_expires_ms = None;
        portal::update_code_state(&mut tx, &link).await?;
        let ended = portal::end_sessions_of(&mut tx, &link.tenant_id, &link.id, now).await?;
        stats::record(
            &mut tx,
            &link.tenant_id,
            Metric::PortalLockout,
            &message.class,
        )
        .await?;
        audit::record(
            &mut tx,
            state,
            &link.tenant_id,
            ACTOR,
            "portal_locked",
            Some(&link.message_id),
            json!({
                "link": link.id,
                "failed_attempts": max,
                "locked_until": until / 1000,
                "sessions_ended": ended,
            }),
        )
        .await?;
        commit(tx).await?;
        event("locked");
        return Ok(pages::locked(look, until));
    }
    portal::update_code_state(&mut tx, &link).await?;
    commit(tx).await?;
    Ok(pages::code_form(
        look,
        token,
        &csrf,
        &to,
        &FormNote::Wrong {
            tries_left: max - link.attempts,
        },
    ))
}
