//! RCS business messaging: the [`RcsAdapter`] sends agent messages through
//! a carrier's or aggregator's REST API, and [`RcsWebhooks`] checks and
//! reads the delivery receipts it posts back.
//!
//! # Protocol
//!
//! Modelled on Google's RCS Business Messaging API. Every request goes to
//! the configured `endpoint` (a base URL, possibly with a path prefix) and
//! carries `Authorization: Bearer <token>`. `{msisdn}` is the E.164 number
//! (`+15550001111`); path segments and query values are percent-encoded.
//!
//! - **Capability check** `GET {endpoint}/v1/phones/{msisdn}/capabilities` →
//!   200 `{"features": ["RICHCARD_STANDALONE", …]}`, or 404 when the number
//!   is not reachable over RCS.
//! - **Send** `POST {endpoint}/v1/phones/{msisdn}/agentMessages?messageId={id}`
//!   with `{"contentMessage": {"text": …}, "expireTime": "<RFC 3339>"}` (or
//!   `"ttl": "<n>s"` instead of `expireTime`) → 200
//!   `{"name": "phones/{msisdn}/agentMessages/{id}"}`. A `messageId` the
//!   provider has already seen answers 409 `ALREADY_EXISTS`.
//! - **Revoke** `DELETE {endpoint}/v1/phones/{msisdn}/agentMessages/{id}` →
//!   200 withdrawn (also when withdrawn before), 404 already delivered (or
//!   unknown).
//! - **Receipts** are POSTed to the tenant's webhook
//!   (`{public_url}/v1/webhooks/rcs/{tenant}`) as
//!   `{"agentId": …, "messageId": …, "eventType": "DELIVERED" | "READ" |
//!   "EXPIRED" | "FAILED", "sendTime": …}` with the header
//!   `X-Goog-Signature: base64(HMAC-SHA512(webhook_secret, raw body))`.
//!
//! # What the adapter does
//!
//! [`Adapter::send`] checks the number's capability first: not reachable
//! (404) is a permanent `rcs_unreachable`, and a configured
//! `required_features` entry the phone does not report is a permanent
//! `rcs_feature_missing`, so the message falls back down its ladder and
//! the provider-reported capability is recorded with the failure. Then it
//! sends the text (the payload the decision allowed on this route, as
//! UTF-8, or the notice) with the message's expiry, using the dispatch's
//! idempotency key as `messageId`; a retry of an accepted send answers
//! 409 and counts as a duplicate acceptance. The `messageId` is the
//! provider reference, which [`Adapter::revoke`] and receipts use. The API
//! cannot look an agent message up, so after a crash the resend under the
//! same `messageId` is the look-up: the recipient never gets two. A resend
//! carries the same text and, by default, the same `expireTime`; with
//! `message_ttl_s` its `ttl` is counted again from the resend, so that the
//! provider never keeps the message past its expiry (the provider keeps
//! the first copy anyway).
//!
//! Failures are codes only: a timeout (`timeout`), a refused connection
//! (`connect`), 429 and 5xx answers are transient; other 4xx answers,
//! a destination without a phone number (`no_phone`) or with a malformed
//! one (`invalid_phone`) and an expired message are permanent. Phone
//! numbers, message text and provider error bodies never appear in errors
//! or logs (transport errors are not formatted: they contain the URL, and
//! with it the number).
//!
//! # What it does not claim
//!
//! Business RCS is encrypted in transit (TLS to the provider, then the
//! carrier's network) and the provider can read every message. This adapter
//! never claims encryption and never raises assurance: the decision in
//! `ladder-core` carries RCS at `transport` — labelled "provider-readable",
//! never "encrypted" — unless the thread's end-to-end encryption is verified
//! by a signed device report. The adapter only carries what the decision
//! sent it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use ladder_core::{Channel, Timestamp};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use sha2::Sha512;
use zeroize::Zeroizing;

use crate::webhook::{Receipt, ReceiptStatus, WebhookError, WebhookRequest, WebhookVerifier};
use crate::{
    Accepted, Adapter, BoxFuture, Channels, ConfigError, Content, DeliveryError, Dispatch, Revoked,
};

const CHANNEL: &str = "rcs";

fn default_timeout_ms() -> u64 {
    10_000
}

/// The `[channels.rcs]` table of the server config (and
/// `[channels.tenants.<name>.rcs]` for a tenant's own provider account).
#[derive(Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RcsConfig {
    /// The provider's API base URL (`https://…`; plain `http` only to a
    /// loopback host).
    pub endpoint: String,
    /// The bearer token for the provider's API.
    pub token: String,
    /// Our agent's id at the provider; receipts for another agent are
    /// refused.
    pub agent_id: String,
    /// The key the provider signs receipts with.
    pub webhook_secret: String,
    /// How long one provider request may take (default 10 000 ms).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Sends `ttl` (capped by the message's expiry) instead of `expireTime`.
    #[serde(default)]
    pub message_ttl_s: Option<u64>,
    /// Features the capability check must report for a number to count as
    /// reachable (default none: plain text needs none).
    #[serde(default)]
    pub required_features: Vec<String>,
}

impl std::fmt::Debug for RcsConfig {
    // Never prints the token or the webhook secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RcsConfig")
            .field("endpoint", &self.endpoint)
            .field("token", &"…")
            .field("agent_id", &self.agent_id)
            .field("webhook_secret", &"…")
            .field("timeout_ms", &self.timeout_ms)
            .field("message_ttl_s", &self.message_ttl_s)
            .field("required_features", &self.required_features)
            .finish()
    }
}

fn config_error(reason: String) -> ConfigError {
    ConfigError {
        channel: CHANNEL,
        reason,
    }
}

impl RcsConfig {
    /// Checks the settings can work; the error names the field.
    pub fn validate(&self) -> Result<Url, ConfigError> {
        for (field, value) in [
            ("endpoint", &self.endpoint),
            ("token", &self.token),
            ("agent_id", &self.agent_id),
            ("webhook_secret", &self.webhook_secret),
        ] {
            if value.trim().is_empty() {
                return Err(config_error(format!("`{field}` must not be empty")));
            }
        }
        let url = Url::parse(self.endpoint.trim())
            .map_err(|e| config_error(format!("`endpoint` is not a valid URL ({e})")))?;
        let loopback = url.host_str().is_some_and(|h| {
            h.eq_ignore_ascii_case("localhost")
                || h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(config_error(
                    "`endpoint` must use https (plain http only to a loopback host): \
                     the bearer token and messages would travel in the clear"
                        .into(),
                ));
            }
            other => {
                return Err(config_error(format!(
                    "`endpoint` must be an https URL, not `{other}:`"
                )));
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(config_error("`endpoint` has no host".into()));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(config_error(
                "`endpoint` must be a base URL without query or fragment".into(),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(config_error(
                "`endpoint` must not carry credentials (use `token`)".into(),
            ));
        }
        if self.timeout_ms == 0 {
            return Err(config_error("`timeout_ms` must be positive".into()));
        }
        if self.message_ttl_s == Some(0) {
            return Err(config_error("`message_ttl_s` must be positive".into()));
        }
        if self.required_features.iter().any(|f| f.trim().is_empty()) {
            return Err(config_error(
                "`required_features` must not contain empty names".into(),
            ));
        }
        Ok(url)
    }
}

/// Adds the RCS adapter and its webhook verifier configured by `config`,
/// for `tenant` only when given.
pub fn install(
    config: &RcsConfig,
    tenant: Option<&str>,
    channels: Channels,
) -> Result<Channels, ConfigError> {
    let named = |e: ConfigError| match tenant {
        Some(t) => config_error(format!("tenant `{t}`: {}", e.reason)),
        None => e,
    };
    let adapter = RcsAdapter::new(config).map_err(named)?;
    let verifier = RcsWebhooks::new(config).map_err(named)?;
    Ok(channels.with_for(tenant, Arc::new(adapter)).with_verifier(
        tenant,
        Channel::Rcs,
        Arc::new(verifier),
    ))
}

/// The RCS provider adapter.
pub struct RcsAdapter {
    client: reqwest::Client,
    base: Url,
    token: Zeroizing<String>,
    message_ttl_s: Option<u64>,
    required_features: Vec<String>,
}

impl std::fmt::Debug for RcsAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RcsAdapter")
            .field("base", &self.base.as_str())
            .field("message_ttl_s", &self.message_ttl_s)
            .field("required_features", &self.required_features)
            .finish_non_exhaustive()
    }
}

fn transient(code: &str) -> DeliveryError {
    DeliveryError::Transient { code: code.into() }
}

fn permanent(code: &str) -> DeliveryError {
    DeliveryError::Permanent { code: code.into() }
}

/// A transport failure as a code: never the error's text, which holds the
/// URL and with it the phone number.
fn request_error(e: &reqwest::Error) -> DeliveryError {
    if e.is_timeout() {
        transient("timeout")
    } else if e.is_connect() {
        transient("connect")
    } else {
        transient("rcs_request_failed")
    }
}

/// An unexpected HTTP status as a code.
fn status_error(status: StatusCode) -> DeliveryError {
    let code = status.as_u16();
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => permanent("rcs_unauthorized"),
        StatusCode::TOO_MANY_REQUESTS => transient("rcs_rate_limited"),
        StatusCode::REQUEST_TIMEOUT => transient("timeout"),
        s if s.is_server_error() => transient(&format!("rcs_http_{code}")),
        _ => permanent(&format!("rcs_http_{code}")),
    }
}

/// An E.164 number: `+` and 6 to 15 digits.
fn msisdn(dispatch: &Dispatch) -> Result<&str, DeliveryError> {
    let phone = dispatch
        .to
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| permanent("no_phone"))?;
    let digits = phone.strip_prefix('+').unwrap_or(phone);
    if (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(phone)
    } else {
        Err(permanent("invalid_phone"))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AgentMessage<'a> {
    content_message: ContentMessage<'a>,
    #[serde(flatten)]
    expiry: MessageExpiry,
}

#[derive(Serialize)]
struct ContentMessage<'a> {
    text: &'a str,
}

/// One of `expireTime` (RFC 3339) or `ttl` (`"<n>s"`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageExpiry {
    #[serde(skip_serializing_if = "Option::is_none")]
    expire_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<String>,
}

#[derive(Deserialize)]
struct CapabilitiesBody {
    #[serde(default)]
    features: Vec<String>,
}

impl RcsAdapter {
    /// Builds the adapter; needs a rustls crypto provider installed in the
    /// process (reqwest is built without one).
    pub fn new(config: &RcsConfig) -> Result<RcsAdapter, ConfigError> {
        let base = config.validate()?;
        let timeout = Duration::from_millis(config.timeout_ms);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // An API never redirects; following one could hand the bearer
            // token to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| config_error(format!("cannot build the HTTP client ({e})")))?;
        Ok(RcsAdapter {
            client,
            base,
            token: Zeroizing::new(config.token.trim().to_string()),
            message_ttl_s: config.message_ttl_s,
            required_features: config.required_features.clone(),
        })
    }

    fn url(&self, segments: &[&str]) -> Result<Url, DeliveryError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| permanent("rcs_bad_endpoint"))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token.as_str())
    }

    async fn check_capability(&self, msisdn: &str) -> Result<(), DeliveryError> {
        let url = self.url(&["v1", "phones", msisdn, "capabilities"])?;
        let response = self
            .client
            .get(url)
            .header(reqwest::header::AUTHORIZATION, self.bearer())
            .send()
            .await
            .map_err(|e| request_error(&e))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(permanent("rcs_unreachable")),
            other => return Err(status_error(other)),
        }
        if self.required_features.is_empty() {
            return Ok(());
        }
        let body: CapabilitiesBody = response
            .json()
            .await
            .map_err(|e| request_error_or(&e, "rcs_bad_response"))?;
        if self
            .required_features
            .iter()
            .all(|f| body.features.iter().any(|have| have == f))
        {
            Ok(())
        } else {
            Err(permanent("rcs_feature_missing"))
        }
    }

    /// `expireTime`, or `ttl` when configured (never beyond the message's
    /// own expiry).
    fn expiry(&self, expires_at: i64) -> Result<MessageExpiry, DeliveryError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let remaining = u64::try_from(expires_at.saturating_sub(now))
            .ok()
            .filter(|r| *r > 0)
            .ok_or_else(|| permanent("expired"))?;
        Ok(match self.message_ttl_s {
            Some(ttl) => MessageExpiry {
                expire_time: None,
                ttl: Some(format!("{}s", ttl.min(remaining))),
            },
            None => MessageExpiry {
                expire_time: Some(Timestamp(expires_at).to_string()),
                ttl: None,
            },
        })
    }

    async fn deliver(&self, dispatch: &Dispatch) -> Result<Accepted, DeliveryError> {
        let msisdn = msisdn(dispatch)?;
        let text: &str = match &dispatch.content {
            Content::Payload(p) => {
                std::str::from_utf8(p).map_err(|_| permanent("payload_not_utf8"))?
            }
            Content::Notice(n) => n,
        };
        let expiry = self.expiry(dispatch.expires_at)?;
        self.check_capability(msisdn).await?;

        let mut url = self.url(&["v1", "phones", msisdn, "agentMessages"])?;
        url.query_pairs_mut()
            .append_pair("messageId", &dispatch.idempotency_key);
        let body = AgentMessage {
            content_message: ContentMessage { text },
            expiry,
        };
        // The only copy of the text outside the dispatch, wiped after use.
        let bytes = Zeroizing::new(serde_json::to_vec(&body).map_err(|_| permanent("rcs_encode"))?);
        let response = self
            .client
            .post(url)
            .header(reqwest::header::AUTHORIZATION, self.bearer())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes.to_vec())
            .send()
            .await
            .map_err(|e| request_error(&e))?;
        let duplicate = match response.status() {
            StatusCode::OK | StatusCode::CREATED => false,
            StatusCode::CONFLICT => true,
            // Checked reachable a moment ago: the phone left RCS since.
            StatusCode::NOT_FOUND => return Err(permanent("rcs_unreachable")),
            other => return Err(status_error(other)),
        };
        Ok(Accepted {
            provider_ref: dispatch.idempotency_key.clone(),
            duplicate,
        })
    }

    async fn withdraw(
        &self,
        dispatch: &Dispatch,
        provider_ref: &str,
    ) -> Result<Revoked, DeliveryError> {
        let msisdn = msisdn(dispatch)?;
        let url = self.url(&["v1", "phones", msisdn, "agentMessages", provider_ref])?;
        let response = self
            .client
            .delete(url)
            .header(reqwest::header::AUTHORIZATION, self.bearer())
            .send()
            .await
            .map_err(|e| request_error(&e))?;
        match response.status() {
            s if s.is_success() => Ok(Revoked::Revoked),
            StatusCode::NOT_FOUND => Ok(Revoked::AlreadyDelivered),
            other => Err(status_error(other)),
        }
    }
}

fn request_error_or(e: &reqwest::Error, code: &str) -> DeliveryError {
    if e.is_timeout() || e.is_connect() {
        request_error(e)
    } else {
        transient(code)
    }
}

impl Adapter for RcsAdapter {
    fn channel(&self) -> Channel {
        Channel::Rcs
    }

    fn send<'a>(
        &'a self,
        dispatch: &'a Dispatch,
    ) -> BoxFuture<'a, Result<Accepted, DeliveryError>> {
        Box::pin(self.deliver(dispatch))
    }

    fn revoke<'a>(
        &'a self,
        dispatch: &'a Dispatch,
        provider_ref: &'a str,
    ) -> BoxFuture<'a, Result<Revoked, DeliveryError>> {
        Box::pin(self.withdraw(dispatch, provider_ref))
    }
}

/// Checks and reads the RCS provider's receipt webhooks.
pub struct RcsWebhooks {
    secret: Zeroizing<Vec<u8>>,
    agent_id: String,
}

impl std::fmt::Debug for RcsWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RcsWebhooks")
            .field("agent_id", &self.agent_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReceiptBody {
    agent_id: String,
    message_id: String,
    event_type: String,
}

impl RcsWebhooks {
    pub fn new(config: &RcsConfig) -> Result<RcsWebhooks, ConfigError> {
        config.validate()?;
        Ok(RcsWebhooks {
            secret: Zeroizing::new(config.webhook_secret.as_bytes().to_vec()),
            agent_id: config.agent_id.trim().to_string(),
        })
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), WebhookError> {
        let signature = request
            .header("x-goog-signature")
            .and_then(|s| BASE64.decode(s.trim()).ok())
            .ok_or(WebhookError::BadSignature)?;
        let mut mac =
            Hmac::<Sha512>::new_from_slice(&self.secret).map_err(|_| WebhookError::BadSignature)?;
        mac.update(request.body);
        // Constant-time comparison.
        mac.verify_slice(&signature)
            .map_err(|_| WebhookError::BadSignature)
    }
}

impl WebhookVerifier for RcsWebhooks {
    fn receipts(&self, request: &WebhookRequest<'_>) -> Result<Vec<Receipt>, WebhookError> {
        self.verify(request)?;
        let body: ReceiptBody = serde_json::from_slice(request.body)
            .map_err(|_| WebhookError::Malformed("not an RCS receipt".into()))?;
        if body.agent_id != self.agent_id {
            return Err(WebhookError::Malformed(
                "the receipt is for another agent".into(),
            ));
        }
        if body.message_id.is_empty() {
            return Err(WebhookError::Malformed(
                "the receipt has no messageId".into(),
            ));
        }
        let status = match body.event_type.as_str() {
            "DELIVERED" => ReceiptStatus::Delivered,
            "READ" => ReceiptStatus::Read,
            "EXPIRED" => ReceiptStatus::Expired,
            "FAILED" => ReceiptStatus::Failed,
            // Other events (typing indicators, user messages) move nothing.
            _ => return Ok(Vec::new()),
        };
        Ok(vec![Receipt {
            provider_ref: body.message_id,
            status,
        }])
    }
}
