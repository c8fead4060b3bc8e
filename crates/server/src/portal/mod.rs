//! The recipient portal: the container for secure e-mail and SMS-notice
//! routes, served as the server's own small HTML pages (no JavaScript).
//!
//! A notice carries a one-time link ([`link_for`]): a 256-bit token derived
//! from the tenant's keyring secret per (message, step, notifier) — issued once and
//! reused when a hand-over is retried after a crash — stored only as its
//! SHA-256, valid for `link_ttl_s` (never beyond the message's own
//! retention) and for `max_views` views. Opening it shows a page with a
//! button; only the button (a POST, which link scanners do not send) sends
//! a one-time code to the recipient's second factor — by the channel the
//! decision chose — as a content-free notice; only a keyed hash of the code
//! is stored. `max_attempts` wrong codes lock the link for
//! `lockout_s`. A right code opens a session (a random cookie, stored
//! hashed) that ends after `idle_timeout_s` without use, or `session_max_s`
//! in any case; with it the message page decrypts the payload and shows it
//! HTML-escaped, with the thread's honest label and the recipient's last
//! access. Expired, withdrawn (revoked or shredded) and locked links get
//! their own pages. Every response carries headers that forbid caching,
//! framing and referrers, and a strict content security policy. Every
//! view, code sent, wrong code, lockout and refused access is audited with
//! link and message ids only — never a token, a code or content.
//!
//! Pages speak the recipient's language and show times in their zone
//! (`locale.rs`), wear the tenant's branding inside a strict frame
//! (`layout.rs`) and name where a code went only masked (`mask.rs`).
//!
//! Routes: `GET /portal/{token}` (a page with a "send me a code" button),
//! `POST /portal/{token}` (send a code, show the code form),
//! `POST /portal/{token}/code`, `GET /portal/{token}/message`,
//! `GET /portal/{token}/download` (the message as a text attachment),
//! `POST /portal/{token}/end` (close the session); `GET /portal/app` (what
//! a notice for an in-app message links to: open the app);
//! `GET /portal/assets/portal.css` (the one stylesheet). Anything else
//! under `/portal` is an HTML 404 with the same headers.

mod code;
mod flow;
mod layout;
pub mod locale;
mod mask;
mod notify;
mod pages;
mod secrets;
mod view;

use axum::Router;
use axum::routing::{any, get, post};
use ladder_store::messages::Message;
use ladder_store::{StoreError, portal};
use serde_json::json;

use crate::service::audit;
use crate::service::error::ServiceError;
use crate::state::AppState;

/// Who portal audit entries name: the link holder, acting on the portal.
const ACTOR: &str = "portal";

/// `[portal]` settings. Each link keeps the expiry and view limit it was
/// issued with, so changing these never loosens a link already sent.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalConfig {
    /// How long a one-time link stays valid (never beyond the message's
    /// retention). Default 7 days.
    pub link_ttl_s: u64,
    /// How many times the message page may be shown per link. Default 3.
    pub max_views: u32,
    /// Wrong codes before the link locks. Default 5.
    pub max_attempts: u32,
    /// How long a locked link stays locked. Default 15 minutes.
    pub lockout_s: u64,
    /// A session unused this long ends. Default 5 minutes.
    pub idle_timeout_s: u64,
    /// A session ends this long after it began, however active. Default 30 minutes.
    pub session_max_s: u64,
    /// How long a one-time code may be entered. Default 10 minutes.
    pub code_ttl_s: u64,
    /// Asking again sends a new code only after this long. Default 60 s.
    pub code_resend_s: u64,
    /// Codes sent per link at most (bounds SMS sent on one link). Default 10.
    pub max_codes: u32,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            link_ttl_s: 7 * 24 * 3600,
            max_views: 3,
            max_attempts: 5,
            lockout_s: 15 * 60,
            idle_timeout_s: 5 * 60,
            session_max_s: 30 * 60,
            code_ttl_s: 10 * 60,
            code_resend_s: 60,
            max_codes: 10,
        }
    }
}

impl PortalConfig {
    /// Refuses settings that would make the portal unusable or weaken it:
    /// zero durations or limits, and more than 10 wrong codes per lockout
    /// (each try is a one-in-a-million guess; the limit keeps it that way).
    /// For [`crate::config::Config::check`].
    pub fn check(&self) -> Result<(), crate::config::ConfigError> {
        let positive = [
            ("portal.link_ttl_s", self.link_ttl_s),
            ("portal.lockout_s", self.lockout_s),
            ("portal.idle_timeout_s", self.idle_timeout_s),
            ("portal.session_max_s", self.session_max_s),
            ("portal.code_ttl_s", self.code_ttl_s),
            ("portal.max_views", u64::from(self.max_views)),
            ("portal.max_attempts", u64::from(self.max_attempts)),
            ("portal.max_codes", u64::from(self.max_codes)),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(crate::config::ConfigError::Invalid {
                    key,
                    reason: "must be at least 1".into(),
                });
            }
        }
        if self.max_attempts > 10 {
            return Err(crate::config::ConfigError::Invalid {
                key: "portal.max_attempts",
                reason: format!("must be at most 10, not {}", self.max_attempts),
            });
        }
        Ok(())
    }
}

/// One field of a portal form body (`application/x-www-form-urlencoded`),
/// decoded exactly as the portal's handlers decode it: `None` when absent
/// or not valid (a bad escape, not UTF-8). Public so the fuzz targets
/// (`fuzz/`) reach the decoder the portal uses; not an API of its own.
pub fn decode_form_field(body: &[u8], name: &str) -> Option<String> {
    secrets::form_field(body, name)
}

/// A one-time code as typed, normalised as the code form reads it
/// (spaces and dashes dropped). Public for the fuzz targets, as
/// [`decode_form_field`].
pub fn normalise_code(raw: &str) -> String {
    secrets::normalise_code(raw)
}

/// Seconds as milliseconds, saturating.
fn ms(seconds: u64) -> i64 {
    i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// A one-time link to the message on the portal, and its validity as text,
/// for the hand-over of route step `step` that was first recorded at
/// `handed_over_ms`.
///
/// Idempotent per (message, step, notifier): the token is derived from the keyring
/// (`link_token`), the link is stored once per (message, step, notifier), and the
/// validity is computed from the stored link — so a retry after a crash
/// renders the very same notice, and the recipient never holds two links
/// from one hand-over. A notice for another container (a push wake-up for the
/// in-app channel) links to the app instead, its validity counted from
/// `handed_over_ms`, equally stable.
pub async fn link_for(
    state: &AppState,
    message: &Message,
    step: &str,
    handed_over_ms: i64,
) -> Result<(String, String), ServiceError> {
    let cfg = &state.config.portal;
    let base = state.config.public_url().trim_end_matches('/').to_string();
    // A notice for another container (a push wake-up for the in-app
    // channel) gets no portal link: the portal never shows a message it
    // does not carry.
    let on_portal = message
        .decision
        .outcome
        .route()
        .is_some_and(|r| r.container == ladder_core::Container::Portal);
    if !on_portal {
        let kept = (message.expires_at.saturating_mul(1000) - handed_over_ms).max(0) / 1000;
        return Ok((format!("{base}/portal/app"), describe_duration(kept)));
    }
    let token = link_token(state, message, step)?;
    // Never valid beyond the message's retention: its payload is gone then.
    let expires_ms = handed_over_ms
        .saturating_add(ms(cfg.link_ttl_s))
        .min(message.expires_at.saturating_mul(1000));
    let fresh = portal::Link {
        id: ladder_store::ids::new_id("pln"),
        tenant_id: message.tenant_id.clone(),
        message_id: message.id.clone(),
        recipient_id: message.recipient_id.clone(),
        created_ms: handed_over_ms,
        expires_ms,
        max_views: i64::from(cfg.max_views.max(1)),
        views: 0,
        attempts: 0,
        locked_until_ms: None,
        code_hash: None,
        code_sent_ms: None,
        code_expires_ms: None,
        codes_sent: 0,
        last_viewed_ms: None,
        second_factor: message
            .decision
            .outcome
            .route()
            .and_then(|r| r.second_factor)
            .map(|f| f.as_str().to_string()),
    };
    let mut tx = state.store.begin().await?;
    let (link, inserted) =
        portal::insert_link_once(&mut tx, &fresh, step, &secrets::token_hash(&token)).await?;
    if inserted {
        audit::record(
            &mut tx,
            state,
            &link.tenant_id,
            crate::service::deliver::ACTOR,
            "portal_link_issued",
            Some(&message.id),
            json!({
                "link": link.id,
                "step": step,
                "expires_at": link.expires_ms / 1000,
                "max_views": link.max_views,
            }),
        )
        .await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    if inserted {
        metrics::counter!("ladder_portal_events_total", "event" => "link_issued").increment(1);
    }
    let valid_for = describe_duration((link.expires_ms - link.created_ms).max(0) / 1000);
    Ok((format!("{base}/portal/{token}"), valid_for))
}

/// The token of the portal link for one (message, step): 256 bits derived
/// with HMAC-SHA256 under the tenant's keyring secret over (message, step)
/// — the tenant is the key's — as URL-safe base64. The same on every
/// retry; unguessable without the keyring; stored only as its SHA-256.
fn link_token(state: &AppState, message: &Message, step: &str) -> Result<String, ServiceError> {
    use base64::Engine;
    let secret = state.keyring.derive(
        &message.tenant_id,
        "portal link",
        &format!("{}\0{step}", message.id),
    )?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret.as_slice()))
}

/// The portal's pages. Every response, errors included, carries the
/// portal's security headers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/portal/app",
            get(pages::in_app).fallback(pages::method_not_allowed),
        )
        .route(
            layout::STYLESHEET_PATH,
            get(layout::stylesheet).fallback(pages::method_not_allowed),
        )
        .route("/portal", any(pages::not_found))
        .route("/portal/", any(pages::not_found))
        .route("/portal/{token}/{*rest}", any(pages::not_found))
        .route(
            "/portal/{token}",
            get(flow::open)
                .post(flow::request_code)
                .fallback(pages::method_not_allowed),
        )
        .route(
            "/portal/{token}/code",
            post(code::submit_code).fallback(pages::method_not_allowed),
        )
        .route(
            "/portal/{token}/message",
            get(view::show_message).fallback(pages::method_not_allowed),
        )
        .route(
            "/portal/{token}/download",
            get(view::download).fallback(pages::method_not_allowed),
        )
        .route(
            "/portal/{token}/end",
            post(view::end_session).fallback(pages::method_not_allowed),
        )
        .layer(axum::middleware::map_response(layout::security_headers))
}

/// A span of seconds in words, at most two units, rounded down — a link
/// described as valid for "1 day 23 hours" is valid at least that long.
pub fn describe_duration(seconds: i64) -> String {
    if seconds < 60 {
        return "less than a minute".to_string();
    }
    duration_parts(seconds)
        .into_iter()
        .map(|(n, unit)| {
            let name = match unit {
                TimeUnit::Day => "day",
                TimeUnit::Hour => "hour",
                TimeUnit::Minute => "minute",
            };
            format!("{n} {name}{}", if n == 1 { "" } else { "s" })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A unit a duration is told in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeUnit {
    Day,
    Hour,
    Minute,
}

/// A span of seconds as at most two adjacent units, rounded down, units
/// that come out zero left out (`1 day` for a day and a minute); empty
/// under a minute. Shared by [`describe_duration`] and the portal's
/// languages.
pub(crate) fn duration_parts(seconds: i64) -> Vec<(i64, TimeUnit)> {
    let units = [
        (86_400, TimeUnit::Day),
        (3_600, TimeUnit::Hour),
        (60, TimeUnit::Minute),
    ];
    let mut rest = seconds.max(0);
    let mut parts = Vec::new();
    for (size, unit) in units {
        let n = rest / size;
        rest %= size;
        if n > 0 || !parts.is_empty() {
            parts.push((n, unit));
        }
        if parts.len() == 2 {
            break;
        }
    }
    parts.retain(|(n, _)| *n > 0);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally_and_never_overstate() {
        assert_eq!(describe_duration(7 * 86_400), "7 days");
        assert_eq!(describe_duration(86_400), "1 day");
        assert_eq!(
            describe_duration(86_400 + 3_600 * 12 + 59),
            "1 day 12 hours"
        );
        assert_eq!(describe_duration(2 * 86_400 - 1), "1 day 23 hours");
        assert_eq!(describe_duration(15 * 60), "15 minutes");
        assert_eq!(describe_duration(3_600 + 60), "1 hour 1 minute");
        assert_eq!(describe_duration(86_400 + 60), "1 day");
        assert_eq!(describe_duration(30), "less than a minute");
    }

    #[test]
    fn config_defaults_and_unknown_keys() {
        let c: PortalConfig = toml::from_str("max_views = 1\n").unwrap();
        assert_eq!(c.max_views, 1);
        assert_eq!(c.link_ttl_s, 604_800);
        assert_eq!(c.max_attempts, 5);
        assert_eq!(c.lockout_s, 900);
        assert_eq!(c.idle_timeout_s, 300);
        let err = toml::from_str::<PortalConfig>("max_view = 1\n").unwrap_err();
        assert!(err.to_string().contains("max_view"), "{err}");
        assert!(PortalConfig::default().check().is_ok());
        let zero: PortalConfig = toml::from_str("idle_timeout_s = 0\n").unwrap();
        let err = zero.check().unwrap_err().to_string();
        assert!(err.contains("portal.idle_timeout_s"), "{err}");
        let many: PortalConfig = toml::from_str("max_attempts = 50\n").unwrap();
        assert!(many.check().is_err());
    }
}
