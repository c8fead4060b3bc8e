//! The operator console: server-rendered pages under `/console` for the
//! security team and support agents of one tenant.
//!
//! Every view reads through the same service and store functions the API
//! answers from, scoped by the signed-in operator's tenant exactly as an
//! API key is; every action goes through the same service path as its API
//! twin (publication, overrides, the escalation queue), audited with the
//! operator's key. An operator signs in with an admin API key, exchanged
//! for a session cookie ([`session`]); every form carries a CSRF token
//! bound to the session. Pages use no scripts and no third-party assets:
//! one stylesheet served from here, charts drawn as inline SVG
//! ([`chart`]). Every answer carries the portal's strict headers, with a
//! content security policy that allows only this origin's stylesheet.

mod audit;
pub mod chart;
mod classes;
mod escalations;
mod messages;
mod overrides;
mod overview;
mod policy;
mod recipients;
mod session;

use askama::Template;
use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::error::Envelope;
use crate::service::error::{Invalidity, ServiceError};
use crate::state::AppState;

pub use session::Operator;

/// `[console]` settings.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// A session unused this long ends. Default 30 minutes.
    pub idle_timeout_s: u64,
    /// A session ends this long after sign-in, however active. Default 12 hours.
    pub session_max_s: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            idle_timeout_s: 30 * 60,
            session_max_s: 12 * 3600,
        }
    }
}

/// Only this origin's stylesheet; no scripts, images, fonts or connections
/// (charts are inline SVG); forms post only here; never framed.
const CSP: &str = "default-src 'none'; style-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("../../assets/console.css");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(overview::show))
        .route("/console/classes/{name}", get(classes::show))
        .route("/console/classes/{name}/enforce", post(classes::enforce))
        .route("/console/escalations", get(escalations::list))
        .route("/console/escalations/{id}/{action}", post(escalations::act))
        .route("/console/policy", get(policy::show))
        .route("/console/", get(|| async { Redirect::to("/console") }))
        .route("/console/login", get(session::form).post(session::sign_in))
        .route("/console/logout", post(session::sign_out))
        .route("/console/static/console.css", get(stylesheet))
        .route("/console/messages", get(messages::search))
        .route("/console/messages/{id}", get(messages::show))
        .route("/console/recipients", get(recipients::search))
        .route("/console/recipients/{id}", get(recipients::show))
        .route(
            "/console/overrides",
            get(overrides::list).post(overrides::set),
        )
        .route("/console/overrides/{id}/clear", post(overrides::clear))
        .route("/console/overrides/{id}/renew", post(overrides::renew))
        .route("/console/audit", get(audit::show))
        .route("/console/{*rest}", get(not_found).post(not_found))
        .layer(axum::middleware::map_response(security_headers))
}

async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "max-age=300"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// The console's strict headers; the API reference page (`/v1/docs`) wears
/// them too.
pub(crate) async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    for (name, value) in [
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("x-robots-tag", "noindex, nofollow"),
    ] {
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    res
}

/// The console's sections, for the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Messages,
    Recipients,
    Escalations,
    Overrides,
    Policy,
    Audit,
}

impl Section {
    const ALL: [Section; 7] = [
        Section::Overview,
        Section::Messages,
        Section::Recipients,
        Section::Escalations,
        Section::Overrides,
        Section::Policy,
        Section::Audit,
    ];

    fn title(self) -> &'static str {
        match self {
            Section::Overview => "Overview",
            Section::Messages => "Messages",
            Section::Recipients => "Recipients",
            Section::Escalations => "Escalations",
            Section::Overrides => "Overrides",
            Section::Policy => "Policy",
            Section::Audit => "Audit log",
        }
    }

    fn href(self) -> &'static str {
        match self {
            Section::Overview => "/console",
            Section::Messages => "/console/messages",
            Section::Recipients => "/console/recipients",
            Section::Escalations => "/console/escalations",
            Section::Overrides => "/console/overrides",
            Section::Policy => "/console/policy",
            Section::Audit => "/console/audit",
        }
    }
}

/// One entry of the navigation bar.
#[derive(Debug)]
pub struct NavLink {
    pub title: &'static str,
    pub href: &'static str,
    pub current: bool,
}

/// What every signed-in page shows around its content: the tenant, the
/// operator's key, the navigation and the sign-out form's CSRF token.
#[derive(Debug)]
pub struct Frame {
    pub tenant: String,
    pub operator: String,
    pub csrf: String,
    pub links: Vec<NavLink>,
    pub title: String,
    /// A one-line outcome of the action that led here, if any.
    pub flash: Option<String>,
}

impl Frame {
    pub fn new(op: &Operator, section: Section, title: impl Into<String>) -> Frame {
        Frame {
            tenant: op.tenant_name.clone(),
            operator: op.caller.key_id.clone(),
            csrf: op.csrf.clone(),
            links: Section::ALL
                .iter()
                .map(|s| NavLink {
                    title: s.title(),
                    href: s.href(),
                    current: *s == section,
                })
                .collect(),
            title: title.into(),
            flash: None,
        }
    }
}

/// Why a console request did not get its page.
#[derive(Debug)]
pub enum ConsoleError {
    /// No live session: to the sign-in page.
    SignedOut,
    /// A form without this session's CSRF token: refused, nothing changed.
    Forged,
    /// The service's answer, shown as a page with the API's status,
    /// code and message.
    Api(ServiceError),
}

/// Whatever the API would answer with (store, keyring and id errors
/// included) is shown the same way on a console page.
impl<E: Into<ServiceError>> From<E> for ConsoleError {
    fn from(e: E) -> Self {
        ConsoleError::Api(e.into())
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    status: u16,
    code: &'static str,
    message: String,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let e = match self {
            ConsoleError::SignedOut => return Redirect::to("/console/login").into_response(),
            ConsoleError::Forged => ServiceError::Invalid {
                kind: Invalidity::Forged,
                code: "csrf",
                message: "this form is stale or was not sent from the console; reload the page and try again"
                    .into(),
                details: serde_json::Value::Null,
            },
            ConsoleError::Api(e) => e,
        };
        let Envelope {
            status,
            code,
            message,
            ..
        } = e.envelope();
        page(
            status,
            &ErrorPage {
                status: status.as_u16(),
                code,
                message,
            },
        )
    }
}

/// Renders a page with `status`; a template that fails to render is an
/// internal error (its detail logged, never shown).
pub fn page(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error</title><p>internal error; the server log has the detail</p>"),
            )
                .into_response()
        }
    }
}

/// A page answered 200.
pub fn ok(t: &impl Template) -> Response {
    page(StatusCode::OK, t)
}

async fn not_found() -> ConsoleError {
    ConsoleError::Api(ServiceError::not_found("console page", "this address"))
}

/// A form's fields, or a 400 naming which form was incomplete and why
/// (axum's own rejection would answer in plain text).
pub fn fields<T>(
    form: Result<axum::extract::Form<T>, axum::extract::rejection::FormRejection>,
    which: &str,
) -> Result<T, ServiceError> {
    form.map(|axum::extract::Form(f)| f).map_err(|e| {
        ServiceError::bad_request(
            "invalid_form",
            format!("the {which} form is incomplete: {e}"),
        )
    })
}

/// A class or override name in the address: the API's own name check.
pub fn name_in_path(name: &str, what: &str) -> Result<(), ServiceError> {
    if crate::service::send::valid_name(name) {
        Ok(())
    } else {
        Err(ServiceError::bad_request(
            "invalid_name",
            format!(
                "the {what} in the address must be 1-128 letters, digits, `-`, `_`, `.` or `:`"
            ),
        ))
    }
}

/// Unix seconds as `2026-12-04 18:24 UTC`.
pub fn when(unix_s: i64) -> String {
    let t = ladder_core::Timestamp(unix_s).to_string();
    // RFC 3339 from the core: `2026-03-01T14:05:09Z`.
    match (t.get(..10), t.get(11..16)) {
        (Some(day), Some(hm)) => format!("{day} {hm} UTC"),
        _ => t,
    }
}
