//! SMS through a provider's HTTP send API, in the style of Twilio's
//! Messages resource, with signed status callbacks.
//!
//! SMS is read by the carrier and anyone holding the handset: it carries the
//! payload only for classes whose minimum is `none` (decided in core), and
//! otherwise only the rendered notice (`sms_notice`).
//!
//! ## Send
//!
//! ```text
//! POST {endpoint}/2010-04-01/Accounts/{account}/Messages.json
//! Authorization: Basic base64(account:token)
//! Idempotency-Key: {dispatch idempotency key}
//! Content-Type: application/x-www-form-urlencoded
//!
//! To=…&From=…&Body=…[&StatusCallback=…]
//! ```
//!
//! answered `201 {"sid": "SM…", "status": "queued"}`. A provider that has
//! already seen the idempotency key answers with the original message's
//! `sid` and the header `Idempotent-Replayed: true` (→ `duplicate: true`):
//! the recipient is shown nothing new. The Messages API cannot find a
//! message by our key, so after a crash the resend (same key, same body) is
//! the look-up.
//!
//! Failures: no phone number → permanent `no_phone`; a payload whose
//! dispatch is labelled above `none` → permanent `sms_payload_above_none`
//! (a payload that is not UTF-8 text → `sms_payload_not_text`), both
//! without calling the provider; a refused connection →
//! transient `sms_unreachable`; no answer within `timeout_ms` → transient
//! `sms_timeout`; 5xx, 408 and 429 → transient `sms_http_{status}`; any
//! other 4xx → permanent `sms_http_{status}` (with `_{code}` appended when
//! the provider's error body carries a numeric `code`, e.g.
//! `sms_http_401_20003`).
//!
//! ## Status callbacks
//!
//! The provider POSTs `MessageSid=…&MessageStatus=queued|sent|delivered|
//! undelivered|failed` (form-encoded) to the `StatusCallback` URL, signed
//! with Twilio's scheme over SHA-256:
//!
//! ```text
//! X-Ladder-Signature: base64(HMAC-SHA256(token, url + k1 + v1 + k2 + v2 …))
//! ```
//!
//! where `url` is the full URL called (scheme, host, path and query) and the
//! form parameters, decoded, are sorted by name (then value) and
//! concatenated without separators. [`SmsWebhookVerifier`] checks that
//! signature in constant time before reading anything; `delivered` becomes
//! [`ReceiptStatus::Delivered`], `undelivered` and `failed` become
//! [`ReceiptStatus::Failed`], `read` becomes [`ReceiptStatus::Read`];
//! `accepted`, `queued`, `sending` and `sent` are progress reports that move
//! nothing (no receipt).
//!
//! The server receives them at `POST /v1/webhooks/sms/{tenant name}` and
//! hands the verifier `public_url + path + query`: set `status_callback` to
//! exactly that URL, as the provider will call it.
//!
//! ## Configuration
//!
//! `[channels.sms]` (or `[channels.tenants.<name>.sms]`):
//!
//! ```toml
//! endpoint = "https://api.sms-provider.example"
//! account = "AC0123"
//! token = "…"
//! from = "+15550100"
//! status_callback = "https://ladder.example.com/v1/webhooks/sms/acme"
//! timeout_ms = 10000
//! ```

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use ladder_core::{AssuranceLevel, Channel};
use serde::Deserialize;
use sha2::Sha256;

use crate::webhook::{Receipt, ReceiptStatus, WebhookError, WebhookRequest, WebhookVerifier};
use crate::{
    Accepted, Adapter, BoxFuture, Channels, ConfigError, Content, DeliveryError, Dispatch,
};

/// The header carrying a status callback's signature.
pub const SIGNATURE_HEADER: &str = "x-ladder-signature";
/// The header a provider sets when it answers a repeated idempotency key.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

const CHANNEL: &str = "sms";
const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const MAX_TIMEOUT_MS: u64 = 120_000;

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// `[channels.sms]`: one provider account.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// The provider API's base URL (`https://…`; `http://` only for a
    /// loopback host).
    pub endpoint: String,
    /// Account id: part of the path and the Basic-auth user.
    pub account: String,
    /// Auth token: the Basic-auth password and the callbacks' HMAC key.
    pub token: String,
    /// Sender id or number.
    pub from: String,
    /// The URL the provider posts status callbacks to (the server's
    /// `/v1/webhooks/sms/{tenant name}` under its public URL). None: no
    /// receipts are requested.
    #[serde(default)]
    pub status_callback: Option<String>,
    /// Per request, connection included (1..=120000, default 10000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

impl std::fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsConfig")
            .field("endpoint", &self.endpoint)
            .field("account", &self.account)
            .field("token", &"…")
            .field("from", &self.from)
            .field("status_callback", &self.status_callback)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// Adds the SMS adapter and its status-callback verifier configured by
/// `config`, for `tenant` only when given.
pub fn install(
    config: &SmsConfig,
    tenant: Option<&str>,
    channels: Channels,
) -> Result<Channels, ConfigError> {
    let adapter = SmsAdapter::new(config)?;
    let verifier = SmsWebhookVerifier::new(&config.token);
    Ok(channels.with_for(tenant, Arc::new(adapter)).with_verifier(
        tenant,
        Channel::Sms,
        Arc::new(verifier),
    ))
}

fn invalid(field: &str, why: &str) -> ConfigError {
    ConfigError {
        channel: CHANNEL,
        reason: format!("`{field}`: {why}"),
    }
}

/// Checks an endpoint URL: absolute http(s), `http` only for a loopback host
/// (credentials never cross a network in the clear). Shared by the HTTP
/// providers' modules.
pub(crate) fn check_url(
    channel: &'static str,
    field: &str,
    value: &str,
) -> Result<reqwest::Url, ConfigError> {
    let fail = |why: &str| ConfigError {
        channel,
        reason: format!("`{field}`: {why}"),
    };
    let url = reqwest::Url::parse(value).map_err(|_| fail("not an absolute URL"))?;
    let loopback = match url.host_str() {
        Some(host) => is_loopback_host(host),
        None => return Err(fail("has no host")),
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(fail("must be https (http only for a loopback host)")),
        _ => Err(fail("must be an https URL")),
    }
}

/// `localhost` or a loopback IP address (IPv6 with or without brackets).
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks `timeout_ms` and turns it into a duration.
pub(crate) fn check_timeout(channel: &'static str, ms: u64) -> Result<Duration, ConfigError> {
    if ms == 0 || ms > MAX_TIMEOUT_MS {
        return Err(ConfigError {
            channel,
            reason: format!("`timeout_ms`: must be between 1 and {MAX_TIMEOUT_MS}"),
        });
    }
    Ok(Duration::from_millis(ms))
}

/// An HTTP client with a whole-request timeout. reqwest is built without a
/// bundled crypto provider: the process must install rustls's `ring`
/// provider at start-up; without one, this is a configuration error rather
/// than a crash.
pub(crate) fn http_client(
    channel: &'static str,
    timeout: Duration,
) -> Result<reqwest::Client, ConfigError> {
    let built = std::panic::catch_unwind(|| {
        reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
    });
    match built {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(ConfigError {
            channel,
            reason: format!("cannot build the HTTP client: {e}"),
        }),
        Err(_) => Err(ConfigError {
            channel,
            reason: "no TLS crypto provider: install rustls's ring provider at start-up".into(),
        }),
    }
}

/// Maps a reqwest transport error to a transient failure code.
pub(crate) fn transport_error(prefix: &str, e: &reqwest::Error) -> DeliveryError {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "unreachable"
    } else {
        "transport"
    };
    DeliveryError::Transient {
        code: format!("{prefix}_{kind}"),
    }
}

/// The SMS provider adapter.
pub struct SmsAdapter {
    client: reqwest::Client,
    messages_url: reqwest::Url,
    account: String,
    token: String,
    from: String,
    status_callback: Option<String>,
}

impl std::fmt::Debug for SmsAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsAdapter")
            .field("messages_url", &self.messages_url.as_str())
            .finish_non_exhaustive()
    }
}

impl SmsAdapter {
    /// Checks `config` and builds the adapter; errors name the field.
    pub fn new(config: &SmsConfig) -> Result<SmsAdapter, ConfigError> {
        let endpoint = check_url(CHANNEL, "endpoint", &config.endpoint)?;
        if config.account.is_empty()
            || !config
                .account
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                "account",
                "must be non-empty letters, digits, `-` or `_`",
            ));
        }
        if config.token.is_empty() {
            return Err(invalid("token", "must not be empty"));
        }
        if config.from.trim().is_empty() {
            return Err(invalid("from", "must not be empty"));
        }
        if let Some(cb) = &config.status_callback {
            check_url(CHANNEL, "status_callback", cb)?;
        }
        let timeout = check_timeout(CHANNEL, config.timeout_ms)?;
        let base = endpoint.as_str().trim_end_matches('/');
        let messages_url = reqwest::Url::parse(&format!(
            "{base}/2010-04-01/Accounts/{}/Messages.json",
            config.account
        ))
        .map_err(|_| invalid("endpoint", "cannot be extended with the Messages path"))?;
        Ok(SmsAdapter {
            client: http_client(CHANNEL, timeout)?,
            messages_url,
            account: config.account.clone(),
            token: config.token.clone(),
            from: config.from.clone(),
            status_callback: config.status_callback.clone(),
        })
    }

    async fn post(&self, d: &Dispatch) -> Result<Accepted, DeliveryError> {
        let Some(phone) = d.to.phone.as_deref().filter(|p| !p.trim().is_empty()) else {
            return Err(DeliveryError::Permanent {
                code: "no_phone".into(),
            });
        };
        let body: zeroize::Zeroizing<String> = match &d.content {
            Content::Notice(text) => zeroize::Zeroizing::new(text.clone()),
            // Only ever for classes whose minimum is `none` (core decides);
            // a payload labelled above what SMS gives is refused.
            Content::Payload(_) if d.assurance != AssuranceLevel::None => {
                return Err(DeliveryError::Permanent {
                    code: "sms_payload_above_none".into(),
                });
            }
            Content::Payload(p) => match std::str::from_utf8(p) {
                Ok(text) => zeroize::Zeroizing::new(text.to_string()),
                Err(_) => {
                    return Err(DeliveryError::Permanent {
                        code: "sms_payload_not_text".into(),
                    });
                }
            },
        };
        let mut form: Vec<(&str, &str)> = vec![
            ("To", phone),
            ("From", self.from.as_str()),
            ("Body", body.as_str()),
        ];
        if let Some(cb) = &self.status_callback {
            form.push(("StatusCallback", cb.as_str()));
        }
        let response = self
            .client
            .post(self.messages_url.clone())
            .basic_auth(&self.account, Some(&self.token))
            .header("Idempotency-Key", &d.idempotency_key)
            .form(&form)
            .send()
            .await
            .map_err(|e| transport_error(CHANNEL, &e))?;
        let status = response.status();
        let replayed = response
            .headers()
            .get(REPLAYED_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport_error(CHANNEL, &e))?;
        if status.is_success() {
            let sid = serde_json::from_slice::<SendAnswer>(&bytes)
                .ok()
                .map(|a| a.sid)
                .filter(|s| !s.is_empty())
                // Accepted but unreadable: retrying with the same key is safe.
                .ok_or_else(|| DeliveryError::Transient {
                    code: "sms_bad_response".into(),
                })?;
            return Ok(Accepted {
                provider_ref: sid,
                duplicate: replayed,
            });
        }
        let mut code = format!("{CHANNEL}_http_{}", status.as_u16());
        if let Some(provider_code) = serde_json::from_slice::<ErrorAnswer>(&bytes)
            .ok()
            .and_then(|e| e.code)
        {
            code.push_str(&format!("_{provider_code}"));
        }
        let transient = status.is_server_error()
            || status == reqwest::StatusCode::REQUEST_TIMEOUT
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
        Err(if transient {
            DeliveryError::Transient { code }
        } else {
            DeliveryError::Permanent { code }
        })
    }
}

#[derive(Deserialize)]
struct SendAnswer {
    sid: String,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    code: Option<u64>,
}

impl Adapter for SmsAdapter {
    fn channel(&self) -> Channel {
        Channel::Sms
    }

    fn send<'a>(
        &'a self,
        dispatch: &'a Dispatch,
    ) -> BoxFuture<'a, Result<Accepted, DeliveryError>> {
        Box::pin(self.post(dispatch))
    }
}

/// Checks and parses the provider's status callbacks.
pub struct SmsWebhookVerifier {
    token: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for SmsWebhookVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsWebhookVerifier").finish_non_exhaustive()
    }
}

impl SmsWebhookVerifier {
    /// A verifier for callbacks signed with the account's `token`.
    pub fn new(token: &str) -> SmsWebhookVerifier {
        SmsWebhookVerifier {
            token: zeroize::Zeroizing::new(token.to_string()),
        }
    }
}

fn mac_over(token: &str, url: &str, params: &[(String, String)]) -> Option<Hmac<Sha256>> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(token.as_bytes()).ok()?;
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    Some(mac)
}

/// The signature a provider puts in [`SIGNATURE_HEADER`] for a callback to
/// `url` with the (decoded) form parameters `params`.
pub fn sign(token: &str, url: &str, params: &[(String, String)]) -> String {
    mac_over(token, url, params)
        .map(|mac| BASE64.encode(mac.finalize().into_bytes()))
        .unwrap_or_default()
}

impl WebhookVerifier for SmsWebhookVerifier {
    fn receipts(&self, request: &WebhookRequest<'_>) -> Result<Vec<Receipt>, WebhookError> {
        let signature = request
            .header(SIGNATURE_HEADER)
            .and_then(|s| BASE64.decode(s.trim()).ok())
            .ok_or(WebhookError::BadSignature)?;
        let params = decode_form(request.body)
            .ok_or_else(|| WebhookError::Malformed("the body is not form-encoded UTF-8".into()))?;
        let mac = mac_over(&self.token, request.url, &params).ok_or(WebhookError::BadSignature)?;
        mac.verify_slice(&signature)
            .map_err(|_| WebhookError::BadSignature)?;
        // Signed by the provider: now read it.
        let field = |name: &str| {
            let mut values = params.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
            match (values.next(), values.next()) {
                (Some(v), None) if !v.is_empty() => Ok(v.clone()),
                _ => Err(WebhookError::Malformed(format!(
                    "`{name}` missing or repeated"
                ))),
            }
        };
        let sid = field("MessageSid")?;
        let status = match field("MessageStatus")?.as_str() {
            "accepted" | "queued" | "sending" | "sent" => return Ok(Vec::new()),
            "delivered" => ReceiptStatus::Delivered,
            "read" => ReceiptStatus::Read,
            "undelivered" | "failed" => ReceiptStatus::Failed,
            _ => {
                return Err(WebhookError::Malformed("unknown `MessageStatus`".into()));
            }
        };
        Ok(vec![Receipt {
            provider_ref: sid,
            status,
        }])
    }
}

/// Decodes an `application/x-www-form-urlencoded` body; None when it is not
/// valid (bad escapes, not UTF-8).
pub(crate) fn decode_form(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = hex_value(bytes.next()?)?;
                let lo = hex_value(bytes.next()?)?;
                out.push((hi << 4) | lo);
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms() {
        let got = decode_form(b"A=1&B=x+y%2Bz&C=&D").unwrap();
        assert_eq!(
            got,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "x y+z".into()),
                ("C".into(), String::new()),
                ("D".into(), String::new()),
            ]
        );
        assert!(decode_form(b"A=%zz").is_none());
        assert!(decode_form(b"A=%4").is_none());
        assert!(decode_form(&[0xff]).is_none());
    }

    #[test]
    fn signature_sorts_parameters() {
        let a = sign(
            "t",
            "https://x/cb",
            &[("b".into(), "2".into()), ("a".into(), "1".into())],
        );
        let b = sign(
            "t",
            "https://x/cb",
            &[("a".into(), "1".into()), ("b".into(), "2".into())],
        );
        assert_eq!(a, b);
        assert_ne!(a, sign("t", "https://x/cb2", &[]));
    }
}
