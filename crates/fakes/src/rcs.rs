//! A fake RCS business-messaging provider: an HTTP server on a loopback port
//! speaking the protocol `ladder_channels::rcs` speaks (modelled on Google's
//! RCS Business Messaging; the module doc of `ladder_channels::rcs` is the
//! reference):
//!
//! - `GET /v1/phones/{msisdn}/capabilities` → 200 `{"features": [...]}`, or
//!   404 when the number is not reachable over RCS;
//! - `POST /v1/phones/{msisdn}/agentMessages?messageId=…` with
//!   `{"contentMessage": {"text": …}, "expireTime" | "ttl": …}` → 200
//!   `{"name": "phones/{msisdn}/agentMessages/{messageId}"}`, 409 for a
//!   messageId already used, 404 for an unreachable number;
//! - `DELETE /v1/phones/{msisdn}/agentMessages/{messageId}` → 200 when
//!   withdrawn (again 200 when already withdrawn), 404 when already
//!   delivered, ended or unknown;
//! - every request needs `Authorization: Bearer <token>` (401 otherwise);
//! - receipts go to the webhook URL as
//!   `{"agentId", "messageId", "eventType", "sendTime"}` signed with
//!   `X-Goog-Signature: base64(HMAC-SHA512(webhook secret, body))`.
//!
//! It records what it received and can be told to misbehave: fail the next
//! requests with a status, hang, drop receipts, make a number unreachable
//! (a capability flip) or offline (accepted, never delivered, so a revoke
//! succeeds).
//!
//! Sending webhooks uses `reqwest`, built with `rustls-no-provider`: the
//! process must install a rustls crypto provider before [`start`].
//!
//! Test and demo tooling: in memory, simple, not product code.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha512;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The capabilities a reachable number reports unless told otherwise.
pub const DEFAULT_FEATURES: &[&str] = &[
    "RICHCARD_STANDALONE",
    "RICHCARD_CAROUSEL",
    "ACTION_CREATE_CALENDAR_EVENT",
    "ACTION_DIAL",
    "ACTION_OPEN_URL",
    "ACTION_SHARE_LOCATION",
    "ACTION_VIEW_LOCATION",
];

/// How the fake starts.
#[derive(Debug, Clone)]
pub struct FakeRcsConfig {
    /// The bearer token requests must carry.
    pub token: String,
    /// The agent id put in receipts.
    pub agent_id: String,
    /// Where receipts go (changeable later with
    /// [`FakeRcs::set_webhook_url`]).
    pub webhook_url: Option<String>,
    /// The key receipts are signed with.
    pub webhook_secret: String,
    /// After each accepted send to a number that is not offline, the message
    /// counts as delivered at once and DELIVERED then READ receipts are
    /// posted to `webhook_url` (unless receipts are dropped).
    pub auto_receipts: bool,
}

impl Default for FakeRcsConfig {
    fn default() -> Self {
        FakeRcsConfig {
            token: "fake-rcs-token".into(),
            agent_id: "ladder-fake-agent".into(),
            webhook_url: None,
            webhook_secret: "fake-rcs-webhook-secret".into(),
            auto_receipts: true,
        }
    }
}

/// How an accepted message should expire, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiry {
    /// `expireTime`: an RFC 3339 timestamp.
    Time(String),
    /// `ttl`: a duration such as `"3600s"`.
    Ttl(String),
}

/// One accepted agent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRcs {
    pub msisdn: String,
    pub message_id: String,
    pub text: String,
    pub expire: Option<Expiry>,
}

/// A receipt's event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RcsEvent {
    Delivered,
    Read,
    Expired,
    Failed,
}

impl RcsEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            RcsEvent::Delivered => "DELIVERED",
            RcsEvent::Read => "READ",
            RcsEvent::Expired => "EXPIRED",
            RcsEvent::Failed => "FAILED",
        }
    }
}

/// A receipt as the fake signs it: the exact body and its
/// `X-Goog-Signature` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedReceipt {
    pub body: Vec<u8>,
    pub signature: String,
}

/// One receipt the fake posted, and what the webhook answered (`None`
/// when the request itself failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentReceipt {
    pub message_id: String,
    pub event: RcsEvent,
    pub status: Option<u16>,
}

#[derive(Debug, thiserror::Error)]
pub enum FakeRcsError {
    #[error("no webhook URL is configured")]
    NoWebhookUrl,
    #[error("posting the receipt failed: {0}")]
    Post(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Accepted, not yet delivered: can be revoked.
    Pending,
    Delivered,
    Revoked,
    /// Expired or failed.
    Ended,
}

#[derive(Debug)]
struct Stored {
    msisdn: String,
    stage: Stage,
}

#[derive(Debug, Default)]
struct Inner {
    webhook_url: Option<String>,
    received: Vec<ReceivedRcs>,
    messages: HashMap<String, Stored>,
    unreachable: HashSet<String>,
    offline: HashSet<String>,
    features: BTreeMap<String, Vec<String>>,
    fail: Option<(u32, u16)>,
    hang: Duration,
    drop_receipts: bool,
    revoked: Vec<String>,
    sent_receipts: Vec<SentReceipt>,
    unauthorized: u32,
}

#[derive(Debug)]
struct Shared {
    token: String,
    agent_id: String,
    secret: Vec<u8>,
    auto_receipts: bool,
    client: reqwest::Client,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn sign(&self, message_id: &str, event: RcsEvent) -> SignedReceipt {
        let send_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let body = json!({
            "agentId": self.agent_id,
            "messageId": message_id,
            "eventType": event.as_str(),
            "sendTime": rfc3339(send_time),
        })
        .to_string()
        .into_bytes();
        let signature = sign(&self.secret, &body);
        SignedReceipt { body, signature }
    }

    /// Moves the message along as the event says.
    fn mark(&self, message_id: &str, event: RcsEvent) {
        let mut inner = self.lock();
        if let Some(m) = inner.messages.get_mut(message_id) {
            m.stage = match event {
                RcsEvent::Delivered | RcsEvent::Read => Stage::Delivered,
                RcsEvent::Expired | RcsEvent::Failed => Stage::Ended,
            };
        }
    }

    /// Posts a receipt, retrying (bounded, with backoff) until the
    /// receiver answers 2xx.
    async fn post_retrying(&self, message_id: &str, event: RcsEvent) {
        let mut delay = Duration::from_millis(50);
        for _ in 0..7 {
            if matches!(self.post(message_id, event).await, Ok(s) if (200..300).contains(&s)) {
                return;
            }
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        }
    }

    async fn post(&self, message_id: &str, event: RcsEvent) -> Result<u16, FakeRcsError> {
        let url = self.lock().webhook_url.clone();
        let Some(url) = url else {
            return Err(FakeRcsError::NoWebhookUrl);
        };
        let signed = self.sign(message_id, event);
        let result = self
            .client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-goog-signature", &signed.signature)
            .body(signed.body)
            .send()
            .await;
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        self.lock().sent_receipts.push(SentReceipt {
            message_id: message_id.to_string(),
            event,
            status,
        });
        result
            .map(|r| r.status().as_u16())
            .map_err(|e| FakeRcsError::Post(e.to_string()))
    }
}

/// The running fake. Stops when dropped or on [`FakeRcs::shutdown`].
#[derive(Debug)]
pub struct FakeRcs {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Starts the fake on `127.0.0.1` on a free port.
pub async fn start(config: FakeRcsConfig) -> std::io::Result<FakeRcs> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(std::io::Error::other)?;
    let shared = Arc::new(Shared {
        token: config.token,
        agent_id: config.agent_id,
        secret: config.webhook_secret.into_bytes(),
        auto_receipts: config.auto_receipts,
        client,
        inner: Mutex::new(Inner {
            webhook_url: config.webhook_url,
            ..Inner::default()
        }),
    });
    let app = Router::new()
        .route("/v1/phones/{msisdn}/capabilities", get(capabilities))
        .route("/v1/phones/{msisdn}/agentMessages", post(send))
        .route(
            "/v1/phones/{msisdn}/agentMessages/{message_id}",
            delete(revoke),
        )
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(FakeRcs {
        addr,
        shared,
        stop: Some(stop),
        task: Some(task),
    })
}

impl FakeRcs {
    /// `http://127.0.0.1:<port>`: the adapter's `endpoint`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every accepted agent message, in order.
    pub fn received(&self) -> Vec<ReceivedRcs> {
        self.shared.lock().received.clone()
    }

    /// The message ids withdrawn, in order.
    pub fn revoked(&self) -> Vec<String> {
        self.shared.lock().revoked.clone()
    }

    /// Every receipt posted and the webhook's answer.
    pub fn sent_receipts(&self) -> Vec<SentReceipt> {
        self.shared.lock().sent_receipts.clone()
    }

    /// Requests refused for a missing or wrong bearer token.
    pub fn unauthorized(&self) -> u32 {
        self.shared.lock().unauthorized
    }

    /// Whether `msisdn` is reachable over RCS (the capability check and
    /// sends answer 404 when not). Numbers are reachable by default.
    pub fn set_reachable(&self, msisdn: &str, reachable: bool) {
        let mut inner = self.shared.lock();
        if reachable {
            inner.unreachable.remove(msisdn);
        } else {
            inner.unreachable.insert(msisdn.to_string());
        }
    }

    /// An offline phone: messages to it are accepted but never delivered
    /// (no automatic receipts), so they can still be revoked.
    pub fn set_offline(&self, msisdn: &str, offline: bool) {
        let mut inner = self.shared.lock();
        if offline {
            inner.offline.insert(msisdn.to_string());
        } else {
            inner.offline.remove(msisdn);
        }
    }

    /// The features `msisdn` reports (default [`DEFAULT_FEATURES`]).
    pub fn set_features(&self, msisdn: &str, features: &[&str]) {
        self.shared.lock().features.insert(
            msisdn.to_string(),
            features.iter().map(|f| f.to_string()).collect(),
        );
    }

    /// The next `n` API requests answer `status` (e.g. 503) and do nothing.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.shared.lock().fail = (n > 0).then_some((n, status));
    }

    /// Every API request waits this long before answering
    /// (`Duration::ZERO`: answer at once).
    pub fn set_hang(&self, hang: Duration) {
        self.shared.lock().hang = hang;
    }

    /// Messages are still delivered, but their automatic receipts are lost.
    pub fn drop_receipts(&self, drop: bool) {
        self.shared.lock().drop_receipts = drop;
    }

    /// Where receipts go from now on.
    pub fn set_webhook_url(&self, url: Option<String>) {
        self.shared.lock().webhook_url = url;
    }

    /// The receipt the fake would post for `message_id`, signed.
    pub fn signed_receipt(&self, message_id: &str, event: RcsEvent) -> SignedReceipt {
        self.shared.sign(message_id, event)
    }

    /// Moves `message_id` along as `event` says (DELIVERED/READ: delivered,
    /// no longer revocable) and posts the signed receipt to the webhook,
    /// answering the webhook's HTTP status.
    pub async fn send_receipt(
        &self,
        message_id: &str,
        event: RcsEvent,
    ) -> Result<u16, FakeRcsError> {
        self.shared.mark(message_id, event);
        self.shared.post(message_id, event).await
    }

    /// Stops the server and waits (briefly) for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for FakeRcs {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// `base64(HMAC-SHA512(secret, body))`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    match Hmac::<Sha512>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(body);
            BASE64.encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length.
        Err(_) => String::new(),
    }
}

fn error(status: StatusCode, reason: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": {
            "code": status.as_u16(),
            "status": reason,
            "message": message,
        }})),
    )
        .into_response()
}

/// Hang, injected failure, then the bearer token: `Some` answers instead
/// of the handler.
async fn gate(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let hang = shared.lock().hang;
    if !hang.is_zero() {
        tokio::time::sleep(hang).await;
    }
    let injected = {
        let mut inner = shared.lock();
        match inner.fail {
            Some((n, status)) => {
                inner.fail = (n > 1).then_some((n.saturating_sub(1), status));
                Some(status)
            }
            None => None,
        }
    };
    if let Some(status) = injected {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return Some(error(status, "UNAVAILABLE", "injected failure"));
    }
    let expected = format!("Bearer {}", shared.token);
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if !authorized {
        shared.lock().unauthorized += 1;
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "missing or invalid bearer token",
        ));
    }
    None
}

async fn capabilities(
    State(shared): State<Arc<Shared>>,
    Path(msisdn): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = gate(&shared, &headers).await {
        return r;
    }
    let inner = shared.lock();
    if inner.unreachable.contains(&msisdn) {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "not an RCS user");
    }
    let features = inner
        .features
        .get(&msisdn)
        .cloned()
        .unwrap_or_else(|| DEFAULT_FEATURES.iter().map(|f| f.to_string()).collect());
    axum::Json(json!({ "features": features })).into_response()
}

#[derive(Debug, Deserialize)]
struct SendQuery {
    #[serde(rename = "messageId")]
    message_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AgentMessage {
    content_message: ContentMessage,
    expire_time: Option<String>,
    ttl: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ContentMessage {
    text: String,
}

async fn send(
    State(shared): State<Arc<Shared>>,
    Path(msisdn): Path<String>,
    Query(query): Query<SendQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = gate(&shared, &headers).await {
        return r;
    }
    let Some(message_id) = query.message_id.filter(|m| !m.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "messageId is required",
        );
    };
    let Ok(message) = serde_json::from_slice::<AgentMessage>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "the body is not an agent message",
        );
    };
    let expire = match (message.expire_time, message.ttl) {
        (Some(_), Some(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "expireTime and ttl are exclusive",
            );
        }
        (Some(t), None) => Some(Expiry::Time(t)),
        (None, Some(t)) => Some(Expiry::Ttl(t)),
        (None, None) => None,
    };
    let delivered_now = {
        let mut inner = shared.lock();
        if inner.unreachable.contains(&msisdn) {
            return error(StatusCode::NOT_FOUND, "NOT_FOUND", "not an RCS user");
        }
        if inner.messages.contains_key(&message_id) {
            return error(
                StatusCode::CONFLICT,
                "ALREADY_EXISTS",
                "a message with this messageId exists",
            );
        }
        let delivered_now = shared.auto_receipts && !inner.offline.contains(&msisdn);
        inner.messages.insert(
            message_id.clone(),
            Stored {
                msisdn: msisdn.clone(),
                stage: if delivered_now {
                    Stage::Delivered
                } else {
                    Stage::Pending
                },
            },
        );
        inner.received.push(ReceivedRcs {
            msisdn: msisdn.clone(),
            message_id: message_id.clone(),
            text: message.content_message.text,
            expire,
        });
        delivered_now && !inner.drop_receipts && inner.webhook_url.is_some()
    };
    if delivered_now {
        let shared = shared.clone();
        let id = message_id.clone();
        tokio::spawn(async move {
            // As real providers do, a webhook that is not acknowledged (the
            // sender may not have recorded the message yet) is retried.
            shared.post_retrying(&id, RcsEvent::Delivered).await;
            shared.post_retrying(&id, RcsEvent::Read).await;
        });
    }
    axum::Json(json!({
        "name": format!("phones/{msisdn}/agentMessages/{message_id}"),
    }))
    .into_response()
}

async fn revoke(
    State(shared): State<Arc<Shared>>,
    Path((msisdn, message_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = gate(&shared, &headers).await {
        return r;
    }
    let mut inner = shared.lock();
    let stage = inner
        .messages
        .get(&message_id)
        .filter(|m| m.msisdn == msisdn)
        .map(|m| m.stage);
    match stage {
        Some(Stage::Pending) => {
            if let Some(m) = inner.messages.get_mut(&message_id) {
                m.stage = Stage::Revoked;
            }
            inner.revoked.push(message_id);
            axum::Json(json!({})).into_response()
        }
        Some(Stage::Revoked) => axum::Json(json!({})).into_response(),
        Some(Stage::Delivered | Stage::Ended) | None => error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "already delivered or unknown",
        ),
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_770_000), "2026-11-27T09:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
