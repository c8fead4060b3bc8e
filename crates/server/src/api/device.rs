//! `/v1/device/…`: the in-app device inbox, for the recipient's own
//! device. These requests carry no API key: each is signed by the device's
//! enrolled Ed25519 identity key, and the device's row names its tenant.
//!
//! Headers:
//! - `X-Ladder-Device`: the device id;
//! - `X-Ladder-Timestamp`: Unix seconds, within 60 s of the server's clock;
//! - `X-Ladder-Signature`: hex Ed25519 signature over
//!   [`ladder_channels::inapp::device_request_signing_bytes`] — `"ladder
//!   device request v1\n{METHOD}\n{path}\n{timestamp}\n{hex sha256(body)}"`,
//!   the path with its query string if any.
//!
//! An unknown device and a bad signature get the same 401, so nobody learns
//! which device ids exist; a revoked device gets 401 and nothing else. A
//! forged, replayed-late or revoked device's request is audited in the
//! device's tenant, until refusals pass `[limits]` per address or device
//! (then 429, audited once a minute). Every error is the one JSON envelope.
//!
//! The inbox serves ciphertext only: the server cannot open it.

use axum::body::Bytes;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, VerifyingKey};
use ladder_channels::inapp::{HPKE_SUITE, device_request_signing_bytes};
use ladder_channels::webhook::{Receipt, ReceiptStatus};
use ladder_core::{AssuranceLevel, Channel};
use ladder_store::ids::{DeviceId, MessageId};
use ladder_store::recipients::{self, Device};
use ladder_store::{StoreError, inbox};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::api::wire::ErrorEnvelope;
use crate::service::error::{Invalidity, ServiceError};
use crate::service::{audit, receipts};
use crate::state::{AppState, now};

pub const DEVICE_HEADER: &str = "x-ladder-device";
pub const TIMESTAMP_HEADER: &str = "x-ladder-timestamp";
pub const SIGNATURE_HEADER: &str = "x-ladder-signature";

/// How far a request's timestamp may be from the server's clock.
pub const MAX_SKEW_S: i64 = 60;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 500;

/// Actor of device-signed requests in the audit log.
fn actor(device_id: &str) -> String {
    format!("device:{device_id}")
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/device/me", get(me))
        .route("/v1/device/inbox", get(list))
        .route("/v1/device/inbox/{message_id}/ack", post(ack))
}

fn unauthorized(code: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::Invalid {
        kind: Invalidity::Unverified,
        code,
        message: message.into(),
        details: Value::Null,
    }
}

/// The one answer for an unknown device and a bad signature.
fn not_recognised() -> ServiceError {
    unauthorized(
        "unauthenticated",
        "device authentication failed: unknown device or bad signature",
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, ServiceError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            unauthorized(
                "unauthenticated",
                format!(
                    "header `{name}` is missing; device requests carry X-Ladder-Device, X-Ladder-Timestamp and X-Ladder-Signature"
                ),
            )
        })
}

fn counted(outcome: &'static str) {
    metrics::counter!("ladder_device_requests_total", "outcome" => outcome).increment(1);
}

/// Whether a request's timestamp is within [`MAX_SKEW_S`] of the server's
/// clock; any `i64` a device signs is answered, none overflows.
fn within_skew(at: i64, timestamp: i64) -> bool {
    at.abs_diff(timestamp) <= MAX_SKEW_S.unsigned_abs()
}

/// A device request refused: the device it named (if known), the audit
/// code (for known devices) and the answer.
struct Refusal {
    device: Option<Device>,
    code: &'static str,
    answer: ServiceError,
}

fn refusal(device: Option<Device>, code: &'static str, answer: ServiceError) -> Refusal {
    Refusal {
        device,
        code,
        answer,
    }
}

/// Checks a device-signed request from `peer`; answers the device it came
/// from. A refusal is audited in the device's tenant (when the device is
/// known) — until refusals from this address or for this device pass
/// `[limits]`: then it answers 429 and is not audited one by one (one
/// `device_request_rate_limited` entry a minute stands for them). Requests
/// that verify are never limited.
async fn authenticate(
    state: &AppState,
    peer: IpAddr,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Device, ServiceError> {
    let Refusal {
        device,
        code,
        answer,
    } = match check(state, method, uri, headers, body).await? {
        Ok(device) => return Ok(device),
        Err(refused) => refused,
    };
    if let Err(limited) = state
        .limits
        .device_rejected(device.as_ref().map(|d| d.id.as_str()), peer)
    {
        if let Some(d) = device.filter(|d| state.limits.audit_due(limited.surface, &d.id)) {
            let mut tx = state.store.begin().await?;
            audit::record(
                &mut tx,
                state,
                &d.tenant_id,
                &actor(&d.id),
                "device_request_rate_limited",
                Some(&d.id),
                json!({ "limit": limited.by }),
            )
            .await?;
            tx.commit().await.map_err(StoreError::from)?;
        }
        return Err(limited.into());
    }
    if let Some(d) = &device {
        reject(state, d, code).await?;
    }
    Err(answer)
}

/// The checks themselves, without audit: the device, or why not.
async fn check(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Result<Device, Refusal>, ServiceError> {
    let device_id = match header(headers, DEVICE_HEADER) {
        Ok(v) => v,
        Err(e) => return Ok(Err(refusal(None, "malformed", e))),
    };
    // A malformed device id is answered like an unknown one: nobody learns
    // which ids exist, and nothing unparsed reaches a query.
    let Ok(device_id) = DeviceId::parse(device_id, "header `x-ladder-device`") else {
        counted("unknown_device");
        return Ok(Err(refusal(None, "unknown_device", not_recognised())));
    };
    let device_id = device_id.as_str();
    let timestamp = match header(headers, TIMESTAMP_HEADER) {
        Ok(v) => v,
        Err(e) => return Ok(Err(refusal(None, "malformed", e))),
    };
    let Ok(timestamp) = timestamp.parse::<i64>() else {
        let e = unauthorized(
            "unauthenticated",
            "header `x-ladder-timestamp` must be Unix seconds",
        );
        return Ok(Err(refusal(None, "malformed", e)));
    };
    let signature = match header(headers, SIGNATURE_HEADER) {
        Ok(v) => v,
        Err(e) => return Ok(Err(refusal(None, "malformed", e))),
    };
    let Some(signature) = hex::decode(signature)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
    else {
        let e = unauthorized(
            "unauthenticated",
            "header `x-ladder-signature` must be a 64-byte Ed25519 signature, hex-encoded",
        );
        return Ok(Err(refusal(None, "malformed", e)));
    };
    let device = {
        let mut conn = state
            .store
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        match inbox::device_tenant(&mut conn, device_id).await? {
            Some(tenant) => recipients::get_device(&mut conn, &tenant, device_id).await?,
            None => None,
        }
    };
    let Some(device) = device else {
        counted("unknown_device");
        return Ok(Err(refusal(None, "unknown_device", not_recognised())));
    };
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let signed = device_request_signing_bytes(method.as_str(), path, timestamp, body);
    let verified = VerifyingKey::from_bytes(&device.identity_key)
        .is_ok_and(|k| k.verify_strict(&signed, &signature).is_ok());
    if !verified {
        return Ok(Err(refusal(
            Some(device),
            "bad_signature",
            not_recognised(),
        )));
    }
    let at = now().0;
    if !within_skew(at, timestamp) {
        let e = unauthorized(
            "stale_request",
            format!(
                "header `x-ladder-timestamp` ({timestamp}) is more than {MAX_SKEW_S} s from the server's clock ({at})"
            ),
        );
        return Ok(Err(refusal(Some(device), "stale_timestamp", e)));
    }
    if device.evidence.is_revoked() {
        let e = unauthorized("device_revoked", "this device is revoked");
        return Ok(Err(refusal(Some(device), "device_revoked", e)));
    }
    counted("ok");
    Ok(Ok(device))
}

/// Audits a refused request of a known device, in its tenant.
async fn reject(state: &AppState, device: &Device, code: &'static str) -> Result<(), ServiceError> {
    counted(code);
    let mut tx = state.store.begin().await?;
    audit::record(
        &mut tx,
        state,
        &device.tenant_id,
        &actor(&device.id),
        "device_request_rejected",
        Some(&device.id),
        json!({ "code": code }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// Who the device is, for its client.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceMe {
    pub id: String,
    pub tenant: String,
    pub recipient: String,
    #[schema(value_type = Object)]
    pub labels: ladder_core::evidence::PlatformLabels,
    pub enrolled_at: i64,
    /// The X25519 key in-app messages are sealed to (hex), if enrolled.
    pub agreement_key: Option<String>,
    /// The HPKE suite of the inbox's ciphertexts.
    pub suite: String,
}

/// One live ciphertext in a device's inbox.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InboxEntry {
    pub message_id: String,
    pub thread_id: String,
    pub assurance: String,
    pub label: String,
    pub expires_at: i64,
    pub created_at: i64,
    pub fetched_at: Option<i64>,
    /// The HPKE encapsulated key, base64.
    pub enc: String,
    /// The sealed message, base64.
    pub ciphertext: String,
}

/// A device's inbox, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Inbox {
    pub device: String,
    pub suite: String,
    pub entries: Vec<InboxEntry>,
}

/// An acknowledged inbox entry.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Acknowledged {
    pub message_id: String,
    pub acknowledged: bool,
}

/// `GET /v1/device/me`: who the device is, for its client. Public: the
/// device key's signature authenticates.
#[utoipa::path(get, path = "/v1/device/me", tag = "device", operation_id = "deviceMe",
    params(
        ("X-Ladder-Device" = String, Header, description = "the device id"),
        ("X-Ladder-Timestamp" = String, Header, description = "Unix seconds, within 60 s of the server's clock"),
        ("X-Ladder-Signature" = String, Header, description = "hex Ed25519 signature of `ladder device request v1\\n{METHOD}\\n{path}\\n{timestamp}\\n{hex sha256(body)}` by the device's identity key"),
    ),
    responses(
        (status = 200, description = "The device.", body = DeviceMe),
        (status = 401, description = "Unknown device, bad or stale signature, or a revoked device (`unauthenticated`).", body = ErrorEnvelope),
        (status = 429, description = "Too many refused requests from this address or for this device (`rate_limited`).", body = ErrorEnvelope),
    ))]
pub async fn me(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<DeviceMe>, ServiceError> {
    let d = authenticate(&state, peer.ip(), &method, &uri, &headers, &body).await?;
    Ok(Json(DeviceMe {
        labels: d.evidence.labels,
        enrolled_at: d.evidence.enrolled_at.0,
        agreement_key: d.agreement_key.map(hex::encode),
        id: d.id,
        tenant: d.tenant_id,
        recipient: d.recipient_id,
        suite: HPKE_SUITE.to_string(),
    }))
}

fn limit_of(uri: &Uri) -> Result<i64, ServiceError> {
    let Some(q) = uri.query() else {
        return Ok(DEFAULT_LIMIT);
    };
    let mut limit = DEFAULT_LIMIT;
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("limit", v)) => {
                limit = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ServiceError::bad_request(
                            "invalid_query",
                            format!("query parameter `limit` must be 1-{MAX_LIMIT}"),
                        )
                    })?;
            }
            _ => {
                return Err(ServiceError::bad_request(
                    "invalid_query",
                    "unknown query parameter; only `limit` is accepted",
                ));
            }
        }
    }
    Ok(limit)
}

/// `GET /v1/device/inbox`: this device's live ciphertexts, oldest first.
/// Public: the device key's signature authenticates.
#[utoipa::path(get, path = "/v1/device/inbox", tag = "device", operation_id = "deviceInbox",
    params(
        ("X-Ladder-Device" = String, Header, description = "the device id"),
        ("X-Ladder-Timestamp" = String, Header, description = "Unix seconds, within 60 s of the server's clock"),
        ("X-Ladder-Signature" = String, Header, description = "hex Ed25519 signature of `ladder device request v1\\n{METHOD}\\n{path}\\n{timestamp}\\n{hex sha256(body)}` by the device's identity key"),
        ("limit" = Option<i64>, Query, description = "1-500, default 100"),
    ),
    responses(
        (status = 200, description = "The inbox.", body = Inbox),
        (status = 400, description = "A bad `limit` or an unknown parameter.", body = ErrorEnvelope),
        (status = 401, description = "Unknown device, bad or stale signature, or a revoked device (`unauthenticated`).", body = ErrorEnvelope),
        (status = 429, description = "Too many refused requests from this address or for this device (`rate_limited`).", body = ErrorEnvelope),
    ))]
pub async fn list(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Inbox>, ServiceError> {
    let limit = limit_of(&uri)?;
    let device = authenticate(&state, peer.ip(), &method, &uri, &headers, &body).await?;
    let at = now().0;
    let entries = {
        let mut conn = state
            .store
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        let entries =
            inbox::for_device(&mut conn, &device.tenant_id, &device.id, at, limit).await?;
        let fresh: Vec<String> = entries
            .iter()
            .filter(|e| e.fetched_at.is_none())
            .map(|e| e.message_id.clone())
            .collect();
        inbox::mark_fetched(&mut conn, &device.tenant_id, &device.id, &fresh, at).await?;
        entries
    };
    let shown: Vec<InboxEntry> = entries
        .iter()
        .map(|e| {
            let label = e
                .assurance
                .parse::<AssuranceLevel>()
                .map_or("unknown", AssuranceLevel::label);
            InboxEntry {
                message_id: e.message_id.clone(),
                thread_id: e.thread_id.clone(),
                assurance: e.assurance.clone(),
                label: label.to_string(),
                expires_at: e.expires_at,
                created_at: e.created_at,
                fetched_at: e.fetched_at,
                enc: B64.encode(&e.enc),
                ciphertext: B64.encode(&e.ciphertext),
            }
        })
        .collect();
    Ok(Json(Inbox {
        device: device.id,
        suite: HPKE_SUITE.to_string(),
        entries: shown,
    }))
}

/// `POST /v1/device/inbox/{message_id}/ack`: the device holds the message;
/// the server forgets its ciphertext for this device, and the message
/// counts as delivered. Public: the device key's signature authenticates.
#[utoipa::path(post, path = "/v1/device/inbox/{message_id}/ack", tag = "device", operation_id = "deviceAck",
    params(
        ("X-Ladder-Device" = String, Header, description = "the device id"),
        ("X-Ladder-Timestamp" = String, Header, description = "Unix seconds, within 60 s of the server's clock"),
        ("X-Ladder-Signature" = String, Header, description = "hex Ed25519 signature of `ladder device request v1\\n{METHOD}\\n{path}\\n{timestamp}\\n{hex sha256(body)}` by the device's identity key"),
        ("message_id" = String, Path, description = "message id"),
    ),
    responses(
        (status = 200, description = "Acknowledged.", body = Acknowledged),
        (status = 400, description = "Malformed id.", body = ErrorEnvelope),
        (status = 404, description = "No such inbox entry.", body = ErrorEnvelope),
        (status = 401, description = "Unknown device, bad or stale signature, or a revoked device (`unauthenticated`).", body = ErrorEnvelope),
        (status = 429, description = "Too many refused requests from this address or for this device (`rate_limited`).", body = ErrorEnvelope),
    ))]
pub async fn ack(
    State(state): State<AppState>,
    Path(message_id): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Acknowledged>, ServiceError> {
    let device = authenticate(&state, peer.ip(), &method, &uri, &headers, &body).await?;
    let message_id = MessageId::parse(&message_id, "path segment `message_id`")?;
    let message_id = message_id.as_str().to_string();
    let removed = {
        let mut conn = state
            .store
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        inbox::acknowledge(&mut conn, &device.tenant_id, &device.id, &message_id).await?
    };
    if !removed {
        return Err(ServiceError::not_found("inbox entry", &message_id));
    }
    receipts::apply(
        &state,
        &device.tenant_id,
        Channel::InApp,
        &[Receipt {
            provider_ref: message_id.clone(),
            status: ReceiptStatus::Delivered,
        }],
    )
    .await?;
    Ok(Json(Acknowledged {
        message_id,
        acknowledged: true,
    }))
}

#[cfg(test)]
mod tests {
    use super::within_skew;

    #[test]
    fn extreme_device_timestamps_are_stale_not_an_overflow() {
        assert!(within_skew(1_000, 1_060));
        assert!(!within_skew(1_000, 1_061));
        assert!(!within_skew(1_796_000_000, i64::MIN));
        assert!(!within_skew(1_796_000_000, i64::MAX));
    }
}
