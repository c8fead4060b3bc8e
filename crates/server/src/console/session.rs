//! Signing in and out of the console, and who a console request is from.
//!
//! An operator presents an admin API key once, on the sign-in form; the
//! console answers with a random session token in a cookie (HttpOnly,
//! SameSite=Strict, `Secure` and `__Host-` when the node's public address
//! is HTTPS) and keeps only its SHA-256 ([`ladder_store::console`]). The
//! key itself is never stored or logged. A session lives while its key is
//! a live admin key, up to the configured idle and total lifetimes.
//!
//! Every form of a signed-in page carries a CSRF token: a keyed hash of
//! the session under the tenant's pseudonym key, so it needs no storage,
//! differs per session and is compared in constant time. A POST without
//! it changes nothing. Failed sign-ins are limited per client address.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Form, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use ladder_store::console::{self, Lifetime};
use ladder_store::tenants::{self, Caller, Scope};
use ladder_store::{StoreError, ids};
use serde::Deserialize;
use serde_json::json;

use super::{ConsoleError, page};
use crate::service::audit;
use crate::service::error::ServiceError;
use crate::state::{AppState, now};

/// A signed-in operator: the admin key's caller, the tenant's name, and
/// the CSRF token every form of this session carries.
#[derive(Debug, Clone)]
pub struct Operator {
    pub caller: Caller,
    pub tenant_name: String,
    pub csrf: String,
}

impl Operator {
    /// How the operator appears in audit entries: the key, as for the API,
    /// marked as acting through the console.
    pub fn actor(&self) -> String {
        format!("{} (console)", crate::auth::actor(&self.caller))
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, given: &str) -> Result<(), ConsoleError> {
        if crate::service::confirm::constant_time_eq(given.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(ConsoleError::Forged)
        }
    }
}

/// `__Host-` binds the cookie to this exact origin and needs `Secure`,
/// which browsers accept only over HTTPS.
fn cookie_name(state: &AppState) -> &'static str {
    if state.config.public_url_is_https() {
        "__Host-ladder_console"
    } else {
        "ladder_console"
    }
}

const TOKEN_PREFIX: &str = "ldr_console";

/// Whether a cookie value could be a token this module made: checked
/// before anything is hashed or looked up.
fn is_session_shaped(t: &str) -> bool {
    t.strip_prefix(TOKEN_PREFIX)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn lifetime(state: &AppState) -> Lifetime {
    let c = &state.config.console;
    Lifetime {
        now: now().0,
        idle_s: i64::try_from(c.idle_timeout_s).unwrap_or(i64::MAX),
        max_s: i64::try_from(c.session_max_s).unwrap_or(i64::MAX),
    }
}

fn csrf_for(state: &AppState, tenant_id: &str, token: &str) -> Result<String, ServiceError> {
    state.keyed_token(
        tenant_id,
        &format!("console csrf\0{}", ids::token_hash(token)),
    )
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ConsoleError> {
        let jar = CookieJar::from_headers(&parts.headers);
        let token = jar
            .get(cookie_name(state))
            .map(|c| c.value().to_string())
            .filter(|t| is_session_shaped(t))
            .ok_or(ConsoleError::SignedOut)?;
        let mut conn = state
            .store
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        let caller = console::resume(&mut conn, &token, lifetime(state))
            .await?
            .ok_or(ConsoleError::SignedOut)?;
        let tenant = tenants::get(&mut conn, &caller.tenant_id)
            .await?
            .ok_or(ConsoleError::SignedOut)?;
        let csrf = csrf_for(state, &caller.tenant_id, &token)?;
        Ok(Operator {
            caller,
            tenant_name: tenant.name,
            csrf,
        })
    }
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct SignInPage {
    problem: Option<String>,
}

/// `GET /console/login`.
pub async fn form() -> Response {
    page(StatusCode::OK, &SignInPage { problem: None })
}

#[derive(Debug, Deserialize)]
pub struct SignIn {
    key: String,
}

/// `POST /console/login`: an admin key for a session cookie.
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    form: Result<Form<SignIn>, FormRejection>,
) -> Result<Response, ConsoleError> {
    let refuse = |status: StatusCode, problem: &str| {
        page(
            status,
            &SignInPage {
                problem: Some(problem.to_string()),
            },
        )
    };
    let Ok(Form(SignIn { key })) = form else {
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            "The form was incomplete: enter an admin API key.",
        ));
    };
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let caller = tenants::authenticate(&mut conn, key.trim()).await?;
    drop(conn);
    let caller = match caller {
        Some(c) if c.scope.allows(Scope::Admin) => c,
        found => {
            metrics::counter!("ladder_console_sign_ins_total", "result" => "refused").increment(1);
            // Which it was is logged for the operator of the node, never
            // the key; the page says the same for both.
            tracing::warn!(
                known_key = found.is_some(),
                "console sign-in refused: not a live admin key"
            );
            if let Err(r) = state.limits.sign_in_failed(peer.ip()) {
                return Err(ServiceError::from(r).into());
            }
            return Ok(refuse(
                StatusCode::UNAUTHORIZED,
                "That is not a live admin API key. Sender keys cannot open the console.",
            ));
        }
    };
    let token = ids::new_token(TOKEN_PREFIX)?;
    let mut tx = state.store.begin().await?;
    console::open(&mut tx, &token, &caller, lifetime(&state)).await?;
    audit::record(
        &mut tx,
        &state,
        &caller.tenant_id,
        &format!("{} (console)", crate::auth::actor(&caller)),
        "console_signed_in",
        None,
        json!({}),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    metrics::counter!("ladder_console_sign_ins_total", "result" => "accepted").increment(1);
    let cookie = Cookie::build((cookie_name(&state), token))
        .path("/")
        .http_only(true)
        .secure(state.config.public_url_is_https())
        .same_site(SameSite::Strict)
        .build();
    Ok((jar.add(cookie), Redirect::to("/console")).into_response())
}

#[derive(Debug, Deserialize)]
pub struct Csrf {
    pub csrf: String,
}

/// `POST /console/logout`: ends the session and clears the cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    op: Operator,
    jar: CookieJar,
    Form(form): Form<Csrf>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(&form.csrf)?;
    let name = cookie_name(&state);
    if let Some(token) = jar.get(name).map(|c| c.value().to_string()) {
        let mut tx = state.store.begin().await?;
        console::close(&mut tx, &token).await?;
        audit::record(
            &mut tx,
            &state,
            &op.caller.tenant_id,
            &op.actor(),
            "console_signed_out",
            None,
            json!({}),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
    }
    let gone = Cookie::build((name, "")).path("/").build();
    Ok((jar.remove(gone), Redirect::to("/console/login")).into_response())
}
