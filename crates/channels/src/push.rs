//! Push notices: content-free wake-ups for the in-app client, APNs- and
//! FCM-style.
//!
//! A push carries nothing about the message — not the payload, not the
//! notice text, not its class: only "wake up and fetch", after which the
//! in-app client pulls its sealed inbox over its own authenticated channel.
//! The dispatch's content is never read (a payload handed to this adapter
//! is refused as `payload_not_allowed_by_push`).
//!
//! Every device of the recipient with a push target gets one request:
//!
//! ```text
//! APNs: POST {apns.endpoint}/3/device/{device token}
//!       authorization: bearer {apns.token}
//!       apns-push-type: background
//!       apns-priority: 5
//!       apns-topic: {apns.topic}
//!       apns-id: {UUID derived from the idempotency key and the device id}
//!       apns-expiration: {dispatch expiry, Unix seconds}
//!       {"aps":{"content-available":1}}
//!   → 200 with the `apns-id` header.
//!
//! FCM:  POST {fcm.endpoint}/v1/projects/{fcm.project}/messages:send
//!       authorization: bearer {fcm.token}
//!       {"message":{"token":"…","data":{"kind":"wake"},"android":{"priority":"high"}}}
//!   → 200 {"name": "projects/{project}/messages/{id}"}
//! ```
//!
//! The bearer tokens are used as configured (a provider JWT or an OAuth2
//! access token minted elsewhere).
//!
//! APNs and FCM cannot deduplicate: a hand-over resent after a crash may
//! wake a device twice, with the same `apns-id` and the same content-free
//! body — never anything different.
//!
//! Outcome: accepted when at least one device accepted, `provider_ref` =
//! the accepted ids joined by `,` (wake-ups are best effort: the others are
//! not retried). A device the provider says is gone (APNs 410, FCM 404
//! `UNREGISTERED`) is skipped. No device with a push target → permanent
//! `no_push_target`; none accepted → transient if any device failed
//! transiently (5xx, 429, timeout, refused connection:
//! `{apns|fcm}_http_{status}`, `…_timeout`, `…_unreachable`), else permanent
//! (`push_unregistered` when every device was gone,
//! `push_platform_not_configured` when no device's platform is configured,
//! else the first `{apns|fcm}_http_{status}`).
//!
//! ```toml
//! [channels.push]
//! timeout_ms = 10000
//! apns = { endpoint = "https://api.push.apple.com", topic = "com.example.ladder", token = "…" }
//! fcm = { endpoint = "https://fcm.googleapis.com", project = "ladder-prod", token = "…" }
//! ```

use std::sync::Arc;
use std::time::Duration;

use ladder_core::Channel;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::sms::{check_timeout, check_url, http_client, transport_error};
use crate::{
    Accepted, Adapter, BoxFuture, Channels, ConfigError, Content, DeliveryError, Dispatch,
    PushPlatform,
};

/// The APNs body: a background wake-up, nothing else.
pub const APNS_BODY: &str = r#"{"aps":{"content-available":1}}"#;

const CHANNEL: &str = "push";

fn default_timeout_ms() -> u64 {
    10_000
}

/// `[channels.push]`: the APNs and/or FCM accounts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushConfig {
    #[serde(default)]
    pub apns: Option<ApnsConfig>,
    #[serde(default)]
    pub fcm: Option<FcmConfig>,
    /// Per request, connection included (1..=120000, default 10000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

/// `[channels.push.apns]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsConfig {
    /// e.g. `https://api.push.apple.com` (`http://` only for loopback).
    pub endpoint: String,
    /// The app's bundle id (`apns-topic`).
    pub topic: String,
    /// The provider bearer token.
    pub token: String,
}

/// `[channels.push.fcm]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmConfig {
    /// e.g. `https://fcm.googleapis.com` (`http://` only for loopback).
    pub endpoint: String,
    /// The Firebase project id.
    pub project: String,
    /// The OAuth2 bearer token.
    pub token: String,
}

impl std::fmt::Debug for ApnsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApnsConfig")
            .field("endpoint", &self.endpoint)
            .field("topic", &self.topic)
            .field("token", &"…")
            .finish()
    }
}

impl std::fmt::Debug for FcmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FcmConfig")
            .field("endpoint", &self.endpoint)
            .field("project", &self.project)
            .field("token", &"…")
            .finish()
    }
}

/// Adds the push adapter configured by `config`, for `tenant` only when
/// given.
pub fn install(
    config: &PushConfig,
    tenant: Option<&str>,
    channels: Channels,
) -> Result<Channels, ConfigError> {
    let adapter = PushAdapter::new(config)?;
    Ok(channels.with_for(tenant, Arc::new(adapter)))
}

fn invalid(field: &str, why: &str) -> ConfigError {
    ConfigError {
        channel: CHANNEL,
        reason: format!("`{field}`: {why}"),
    }
}

fn base(url: &reqwest::Url) -> String {
    url.as_str().trim_end_matches('/').to_string()
}

struct Apns {
    base: String,
    topic: String,
    token: String,
}

struct Fcm {
    send_url: String,
    token: String,
}

/// The push adapter.
pub struct PushAdapter {
    client: reqwest::Client,
    apns: Option<Apns>,
    fcm: Option<Fcm>,
}

impl std::fmt::Debug for PushAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushAdapter")
            .field("apns", &self.apns.as_ref().map(|a| a.base.as_str()))
            .field("fcm", &self.fcm.as_ref().map(|f| f.send_url.as_str()))
            .finish_non_exhaustive()
    }
}

/// One device's answer.
enum Outcome {
    Accepted(String),
    /// The provider no longer knows the device.
    Gone,
    NotConfigured,
    Failed(DeliveryError),
}

impl PushAdapter {
    /// Checks `config` and builds the adapter; errors name the field.
    pub fn new(config: &PushConfig) -> Result<PushAdapter, ConfigError> {
        if config.apns.is_none() && config.fcm.is_none() {
            return Err(invalid("apns", "configure `apns`, `fcm` or both"));
        }
        let apns = match &config.apns {
            None => None,
            Some(a) => {
                let endpoint = check_url(CHANNEL, "apns.endpoint", &a.endpoint)?;
                if a.topic.trim().is_empty() || a.topic.contains(char::is_whitespace) {
                    return Err(invalid("apns.topic", "must be the app's bundle id"));
                }
                if a.token.is_empty() {
                    return Err(invalid("apns.token", "must not be empty"));
                }
                Some(Apns {
                    base: base(&endpoint),
                    topic: a.topic.clone(),
                    token: a.token.clone(),
                })
            }
        };
        let fcm = match &config.fcm {
            None => None,
            Some(f) => {
                let endpoint = check_url(CHANNEL, "fcm.endpoint", &f.endpoint)?;
                if f.project.is_empty()
                    || !f
                        .project
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Err(invalid(
                        "fcm.project",
                        "must be a project id (letters, digits, `-`, `_`)",
                    ));
                }
                if f.token.is_empty() {
                    return Err(invalid("fcm.token", "must not be empty"));
                }
                Some(Fcm {
                    send_url: format!(
                        "{}/v1/projects/{}/messages:send",
                        base(&endpoint),
                        f.project
                    ),
                    token: f.token.clone(),
                })
            }
        };
        let timeout: Duration = check_timeout(CHANNEL, config.timeout_ms)?;
        Ok(PushAdapter {
            client: http_client(CHANNEL, timeout)?,
            apns,
            fcm,
        })
    }

    async fn wake(&self, d: &Dispatch) -> Result<Accepted, DeliveryError> {
        if let Content::Payload(_) = &d.content {
            return Err(DeliveryError::Permanent {
                code: "payload_not_allowed_by_push".into(),
            });
        }
        let targets: Vec<_> =
            d.to.devices
                .iter()
                .filter_map(|device| device.push.as_ref().map(|p| (device, p)))
                .filter(|(_, p)| !p.token.is_empty())
                .collect();
        if targets.is_empty() {
            return Err(DeliveryError::Permanent {
                code: "no_push_target".into(),
            });
        }
        let mut outcomes = Vec::with_capacity(targets.len());
        for (device, target) in targets {
            let outcome = match target.platform {
                PushPlatform::Apns => match &self.apns {
                    Some(apns) => {
                        let id = apns_id(&d.idempotency_key, &device.id);
                        self.apns(apns, &target.token, &id, d.expires_at).await
                    }
                    None => Outcome::NotConfigured,
                },
                PushPlatform::Fcm => match &self.fcm {
                    Some(fcm) => self.fcm(fcm, &target.token).await,
                    None => Outcome::NotConfigured,
                },
            };
            outcomes.push(outcome);
        }
        summarize(outcomes)
    }

    async fn apns(&self, apns: &Apns, token: &str, id: &str, expires_at: i64) -> Outcome {
        if !token_is_safe(token) {
            return Outcome::Failed(DeliveryError::Permanent {
                code: "apns_bad_device_token".into(),
            });
        }
        let sent = self
            .client
            .post(format!("{}/3/device/{token}", apns.base))
            .bearer_auth(&apns.token)
            .header("apns-push-type", "background")
            .header("apns-priority", "5")
            .header("apns-topic", &apns.topic)
            .header("apns-id", id)
            .header("apns-expiration", expires_at.max(0).to_string())
            .header("content-type", "application/json")
            .body(APNS_BODY)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(transport_error("apns", &e)),
        };
        let status = response.status();
        if status.is_success() {
            let answered = response
                .headers()
                .get("apns-id")
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .unwrap_or(id)
                .to_string();
            return Outcome::Accepted(answered);
        }
        if status == reqwest::StatusCode::GONE {
            return Outcome::Gone;
        }
        Outcome::Failed(http_failure("apns", status))
    }

    async fn fcm(&self, fcm: &Fcm, token: &str) -> Outcome {
        let body = serde_json::json!({
            "message": {
                "token": token,
                "data": { "kind": "wake" },
                "android": { "priority": "high" },
            }
        });
        let sent = self
            .client
            .post(&fcm.send_url)
            .bearer_auth(&fcm.token)
            .json(&body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(transport_error("fcm", &e)),
        };
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Outcome::Failed(transport_error("fcm", &e)),
        };
        if status.is_success() {
            return match serde_json::from_slice::<FcmAnswer>(&bytes) {
                Ok(a) if !a.name.is_empty() => Outcome::Accepted(a.name),
                _ => Outcome::Failed(DeliveryError::Transient {
                    code: "fcm_bad_response".into(),
                }),
            };
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Outcome::Gone;
        }
        Outcome::Failed(http_failure("fcm", status))
    }
}

#[derive(Deserialize)]
struct FcmAnswer {
    name: String,
}

/// Device tokens go into a URL path: hex or base64url-ish only.
fn token_is_safe(token: &str) -> bool {
    token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn http_failure(prefix: &str, status: reqwest::StatusCode) -> DeliveryError {
    let code = format!("{prefix}_http_{}", status.as_u16());
    if status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
    {
        DeliveryError::Transient { code }
    } else {
        DeliveryError::Permanent { code }
    }
}

fn summarize(outcomes: Vec<Outcome>) -> Result<Accepted, DeliveryError> {
    let mut accepted = Vec::new();
    let mut transient = None;
    let mut permanent = None;
    let mut gone = 0usize;
    let mut not_configured = 0usize;
    let total = outcomes.len();
    for outcome in outcomes {
        match outcome {
            Outcome::Accepted(id) => accepted.push(id),
            Outcome::Gone => gone += 1,
            Outcome::NotConfigured => not_configured += 1,
            Outcome::Failed(e @ DeliveryError::Transient { .. }) => {
                transient.get_or_insert(e);
            }
            Outcome::Failed(e @ DeliveryError::Permanent { .. }) => {
                permanent.get_or_insert(e);
            }
        }
    }
    if !accepted.is_empty() {
        return Ok(Accepted {
            provider_ref: accepted.join(","),
            duplicate: false,
        });
    }
    if let Some(e) = transient {
        return Err(e);
    }
    if let Some(e) = permanent {
        return Err(e);
    }
    let code = if gone == total {
        "push_unregistered"
    } else if not_configured == total {
        "push_platform_not_configured"
    } else {
        // Some gone, the rest on platforms not configured.
        "push_unregistered"
    };
    Err(DeliveryError::Permanent { code: code.into() })
}

/// An `apns-id` (UUID form) derived from the hand-over's idempotency key and
/// the device, so a retry carries the same id.
pub fn apns_id(idempotency_key: &str, device_id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(idempotency_key.as_bytes());
    hasher.update([0u8]);
    hasher.update(device_id.as_bytes());
    let digest = hasher.finalize();
    let mut b = [0u8; 16];
    for (dst, src) in b.iter_mut().zip(digest.iter()) {
        *dst = *src;
    }
    // Version 8 (custom), RFC 9562 variant.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode_upper(b);
    format!(
        "{}-{}-{}-{}-{}",
        h.get(0..8).unwrap_or_default(),
        h.get(8..12).unwrap_or_default(),
        h.get(12..16).unwrap_or_default(),
        h.get(16..20).unwrap_or_default(),
        h.get(20..32).unwrap_or_default()
    )
}

impl Adapter for PushAdapter {
    fn channel(&self) -> Channel {
        Channel::Push
    }

    fn send<'a>(
        &'a self,
        dispatch: &'a Dispatch,
    ) -> BoxFuture<'a, Result<Accepted, DeliveryError>> {
        Box::pin(self.wake(dispatch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apns_ids_are_uuid_shaped_and_stable() {
        let a = apns_id("m/1/push", "dev-1");
        assert_eq!(a.len(), 36);
        assert_eq!(a, apns_id("m/1/push", "dev-1"));
        assert_ne!(a, apns_id("m/1/push", "dev-2"));
        assert_eq!(a.chars().nth(14), Some('8'));
    }
}
