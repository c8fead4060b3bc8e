//! E-mail notices over SMTP (lettre, tokio transport).
//!
//! E-mail is a notifier, never a container: it carries only the rendered
//! notice (its text and the portal link) under a fixed, neutral subject
//! ([`SUBJECT`]) — never the payload, the message's subject, its class or a
//! sensitive label (DESIGN invariant 2). A payload handed to this adapter is
//! refused (`payload_not_allowed_by_email`) without connecting.
//!
//! The message is plain text, `From` the configured sender, `To` the
//! recipient, with a `Message-ID` derived from the dispatch's idempotency
//! key and the sender's domain; that Message-ID is the `provider_ref`. The
//! `Date` header is the time the hand-over was first recorded
//! ([`Dispatch::handed_over_ms`]), and the notice text is fixed per
//! (message, step) by the caller, so every header and the body are the
//! same on every attempt. SMTP has no idempotency: a retry after a crash
//! or a lost answer may deliver a second copy — byte-identical, with the
//! same Message-ID, which mail clients collapse — never a different one.
//!
//! Transport security (`tls`): `starttls` (default, port 587: the upgrade is
//! required, nothing — credentials included — is sent if the server does not
//! offer it), `tls` (implicit TLS, port 465), or `none` (plaintext, port 25;
//! refused by [`install`] unless the host is loopback: tests and local
//! relays only). Certificates are checked against the Web PKI roots.
//! Authentication (`user`/`password`, PLAIN or LOGIN) when configured.
//!
//! Failures: no address → permanent `no_email`; an unparsable one →
//! permanent `invalid_email`; an SMTP 4xx → transient `smtp_{code}`; 5xx →
//! permanent `smtp_{code}`; no answer within `timeout_ms` → transient
//! `smtp_timeout`; TLS failures → transient `smtp_tls` (a server that does
//! not offer the required STARTTLS: `smtp_starttls_unavailable`); refused
//! connections and other client-side failures → transient
//! `smtp_unavailable`.
//!
//! ```toml
//! [channels.email]
//! host = "smtp.example.com"
//! tls = "starttls"
//! user = "ladder"
//! password = "…"
//! from = "Secure messages <no-reply@example.com>"
//! timeout_ms = 15000
//! ```

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ladder_core::Channel;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::sms::{check_timeout, is_loopback_host};
use crate::{
    Accepted, Adapter, BoxFuture, Channels, ConfigError, Content, DeliveryError, Dispatch,
};

/// The only subject a notice e-mail ever has.
pub const SUBJECT: &str = "New secure message";

const CHANNEL: &str = "email";

fn default_timeout_ms() -> u64 {
    15_000
}

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailTls {
    /// Plaintext, upgraded with STARTTLS (required). Port 587 by default.
    #[default]
    Starttls,
    /// Implicit TLS from the first byte. Port 465 by default.
    Tls,
    /// No TLS at all: only for a loopback host. Port 25 by default.
    None,
}

/// `[channels.email]`: one SMTP relay account.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The SMTP server's host name (also the name its certificate must
    /// carry).
    pub host: String,
    /// Default: 587 for `starttls`, 465 for `tls`, 25 for `none`.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: EmailTls,
    /// SMTP AUTH user; `password` must be set with it.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// The sender: `addr@domain` or `Name <addr@domain>`.
    pub from: String,
    /// The whole hand-over, connection included (1..=120000, default 15000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("from", &self.from)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// Adds the e-mail notice adapter configured by `config`, for `tenant` only
/// when given.
pub fn install(
    config: &EmailConfig,
    tenant: Option<&str>,
    channels: Channels,
) -> Result<Channels, ConfigError> {
    let adapter = EmailAdapter::new(config)?;
    Ok(channels.with_for(tenant, Arc::new(adapter)))
}

fn invalid(field: &str, why: &str) -> ConfigError {
    ConfigError {
        channel: CHANNEL,
        reason: format!("`{field}`: {why}"),
    }
}

/// The e-mail notice adapter.
pub struct EmailAdapter {
    builder: AsyncSmtpTransportBuilder,
    /// Built on first use: lettre's connection pool needs a Tokio runtime
    /// to be created and dropped, and [`install`] may run outside one.
    transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    timeout: Duration,
}

impl Drop for EmailAdapter {
    fn drop(&mut self) {
        // The pool's drop spawns its shutdown; outside a runtime that would
        // panic. Leak the (idle) pool rather than abort.
        if tokio::runtime::Handle::try_current().is_err()
            && let Some(transport) = self.transport.take()
        {
            std::mem::forget(transport);
        }
    }
}

impl std::fmt::Debug for EmailAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailAdapter")
            .field("from", &self.from.email.to_string())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl EmailAdapter {
    /// Checks `config` and builds the adapter; errors name the field.
    pub fn new(config: &EmailConfig) -> Result<EmailAdapter, ConfigError> {
        // A name or an IP address (IPv6 with or without brackets); not a
        // URL, not `host:port` (that is `port`).
        let host = config
            .host
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let is_ip = host.parse::<std::net::IpAddr>().is_ok();
        if host.is_empty()
            || host.contains(|c: char| c == '/' || c == '@' || c.is_whitespace())
            || (host.contains(':') && !is_ip)
        {
            return Err(invalid(
                "host",
                "must be a host name or IP address (the port goes in `port`)",
            ));
        }
        if config.tls == EmailTls::None && !is_loopback_host(host) {
            return Err(invalid(
                "tls",
                "`none` is only allowed for a loopback host; use `starttls` or `tls`",
            ));
        }
        if config.port == Some(0) {
            return Err(invalid("port", "must be between 1 and 65535"));
        }
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| invalid("from", "not an e-mail address"))?;
        let timeout = check_timeout(CHANNEL, config.timeout_ms)?;
        let tls = match config.tls {
            EmailTls::None => Tls::None,
            EmailTls::Starttls => Tls::Required(
                TlsParameters::new(host.to_string())
                    .map_err(|e| invalid("host", &format!("TLS parameters: {e}")))?,
            ),
            EmailTls::Tls => Tls::Wrapper(
                TlsParameters::new(host.to_string())
                    .map_err(|e| invalid("host", &format!("TLS parameters: {e}")))?,
            ),
        };
        let port = config.port.unwrap_or(match config.tls {
            EmailTls::Starttls => 587,
            EmailTls::Tls => 465,
            EmailTls::None => 25,
        });
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(timeout));
        match (&config.user, &config.password) {
            (Some(user), Some(password)) if !user.is_empty() => {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
            }
            (Some(_), Some(_)) => return Err(invalid("user", "must not be empty")),
            (Some(_), None) => return Err(invalid("password", "required with `user`")),
            (None, Some(_)) => return Err(invalid("user", "required with `password`")),
            (None, None) => {}
        }
        Ok(EmailAdapter {
            builder,
            transport: OnceLock::new(),
            from,
            timeout,
        })
    }

    /// `<{32 hex digits of SHA-256(idempotency key)}.ladder@{from domain}>`:
    /// the same for every retry of one hand-over.
    pub fn message_id(&self, idempotency_key: &str) -> String {
        message_id(idempotency_key, self.from.email.domain())
    }

    async fn deliver(&self, d: &Dispatch) -> Result<Accepted, DeliveryError> {
        let notice = match &d.content {
            Content::Notice(text) => text,
            // Core never chooses e-mail as a container; refuse regardless.
            Content::Payload(_) => {
                return Err(DeliveryError::Permanent {
                    code: "payload_not_allowed_by_email".into(),
                });
            }
        };
        let Some(address) =
            d.to.email
                .as_deref()
                .map(str::trim)
                .filter(|a| !a.is_empty())
        else {
            return Err(DeliveryError::Permanent {
                code: "no_email".into(),
            });
        };
        let to: Address = address.parse().map_err(|_| DeliveryError::Permanent {
            code: "invalid_email".into(),
        })?;
        let message_id = self.message_id(&d.idempotency_key);
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(SUBJECT)
            .message_id(Some(message_id.clone()))
            .date(handed_over_at(d.handed_over_ms))
            .header(ContentType::TEXT_PLAIN)
            .body(notice.clone())
            .map_err(|_| DeliveryError::Permanent {
                code: "email_unbuildable".into(),
            })?;
        let transport = self.transport.get_or_init(|| self.builder.clone().build());
        match tokio::time::timeout(self.timeout, transport.send(message)).await {
            Err(_) => Err(DeliveryError::Transient {
                code: "smtp_timeout".into(),
            }),
            Ok(Err(e)) => Err(smtp_error(&e)),
            Ok(Ok(_)) => Ok(Accepted {
                provider_ref: message_id,
                duplicate: false,
            }),
        }
    }
}

/// The `Date` header: when the hand-over was first recorded (whole
/// seconds, as the header carries), never the clock of this attempt.
fn handed_over_at(ms: i64) -> std::time::SystemTime {
    let secs = u64::try_from(ms.max(0) / 1000).unwrap_or(0);
    std::time::UNIX_EPOCH + Duration::from_secs(secs)
}

fn message_id(idempotency_key: &str, domain: &str) -> String {
    let digest = Sha256::digest(idempotency_key.as_bytes());
    let local: Vec<u8> = digest.iter().take(16).copied().collect();
    format!("<{}.ladder@{domain}>", hex::encode(local))
}

fn smtp_error(e: &lettre::transport::smtp::Error) -> DeliveryError {
    if let Some(code) = e.status() {
        let code = format!("smtp_{code}");
        return if e.is_permanent() {
            DeliveryError::Permanent { code }
        } else {
            DeliveryError::Transient { code }
        };
    }
    let code = if e.is_timeout() {
        "smtp_timeout"
    } else if e.is_tls() || io_kind(e) == Some(std::io::ErrorKind::InvalidData) {
        // rustls reports a failed handshake as invalid data on the socket.
        "smtp_tls"
    } else if e.is_client() && e.to_string().contains("STARTTLS") {
        // Required, not offered: nothing (credentials included) was sent.
        "smtp_starttls_unavailable"
    } else {
        "smtp_unavailable"
    };
    DeliveryError::Transient { code: code.into() }
}

/// The kind of the first I/O error in `e`'s source chain.
fn io_kind(e: &lettre::transport::smtp::Error) -> Option<std::io::ErrorKind> {
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = err.source();
    }
    None
}

impl Adapter for EmailAdapter {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    fn send<'a>(
        &'a self,
        dispatch: &'a Dispatch,
    ) -> BoxFuture<'a, Result<Accepted, DeliveryError>> {
        Box::pin(self.deliver(dispatch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_stable_and_neutral() {
        let a = message_id("m1/0/email", "example.com");
        assert_eq!(a, message_id("m1/0/email", "example.com"));
        assert_ne!(a, message_id("m1/1/email", "example.com"));
        assert!(a.starts_with('<') && a.ends_with(".ladder@example.com>"));
        assert!(!a.contains("m1"));
    }
}
