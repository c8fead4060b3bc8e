//! A fake push provider: one HTTP server on a loopback port speaking both
//! the APNs- and the FCM-style protocol `ladder_channels::push` speaks (its
//! module doc is the reference):
//!
//! - APNs: `POST /3/device/{device token}`, `authorization: bearer <apns
//!   token>` (403 `InvalidProviderToken` otherwise), `apns-topic` required
//!   (400 `MissingTopic`; 400 `TopicDisallowed` when a topic is configured
//!   and differs), `apns-push-type: background` only with `apns-priority: 5`
//!   (400 `BadPriority`), `apns-id` if given must look like a UUID (400
//!   `BadMessageId`), the body must be a JSON object with `aps` of at most
//!   4096 bytes (400 `PayloadEmpty`/`BadPayload`, 413 `PayloadTooLarge`) →
//!   200 with the `apns-id` header; 410 `Unregistered` for a device told
//!   [`FakePush::unregister`].
//! - FCM: `POST /v1/projects/{project}/messages:send`, `authorization:
//!   Bearer <fcm token>` (401 `UNAUTHENTICATED`), body `{"message":
//!   {"token": …}}` (400 `INVALID_ARGUMENT`) → 200 `{"name":
//!   "projects/{project}/messages/{id}"}`; 404 `NOT_FOUND` with error code
//!   `UNREGISTERED` for an unregistered device.
//!
//! Everything that reaches it is recorded with the status it answered
//! ([`FakePush::received`]), and how many requests it was answering at
//! once at most ([`FakePush::max_in_flight`]). Failure controls:
//! [`FakePush::fail_next`], [`FakePush::set_hang`],
//! [`FakePush::unregister`]. Push providers send no receipts.
//!
//! Test and demo tooling: in memory, simple, not product code.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Largest APNs payload accepted.
pub const MAX_APNS_PAYLOAD: usize = 4096;

/// How the fake starts.
#[derive(Debug, Clone)]
pub struct FakePushConfig {
    /// The bearer token APNs-style requests must carry.
    pub apns_token: String,
    /// The bearer token FCM-style requests must carry.
    pub fcm_token: String,
    /// When set, the only `apns-topic` accepted.
    pub apns_topic: Option<String>,
}

impl Default for FakePushConfig {
    fn default() -> Self {
        FakePushConfig {
            apns_token: "fake-apns-token".into(),
            fcm_token: "fake-fcm-token".into(),
            apns_topic: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Apns,
    Fcm,
}

/// One request as it arrived, and what the fake answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedPush {
    pub platform: Platform,
    /// The request path.
    pub path: String,
    /// APNs: the device token from the path; FCM: `message.token` from the
    /// body (empty when absent).
    pub device_token: String,
    /// Header names lowercase, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The exact body.
    pub body: String,
    /// The HTTP status answered.
    pub status: u16,
    /// The id returned on success (`apns-id`, or the FCM message name).
    pub id: Option<String>,
}

impl ReceivedPush {
    /// A header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct Inner {
    received: Vec<ReceivedPush>,
    unregistered: HashSet<String>,
    fail: Option<(u32, u16)>,
    hang: Duration,
    counter: u64,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: usize,
    max_in_flight: usize,
}

#[derive(Debug)]
struct Shared {
    config: FakePushConfig,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Counts a request in flight until the guard is dropped (when the
    /// handler answers, or is cancelled because the client went away).
    fn enter(self: &Arc<Self>) -> InFlight {
        let mut inner = self.lock();
        inner.in_flight = inner.in_flight.saturating_add(1);
        inner.max_in_flight = inner.max_in_flight.max(inner.in_flight);
        InFlight(Arc::clone(self))
    }

    /// The hang and an injected failure status, if one is due.
    fn gate(&self) -> (Duration, Option<u16>) {
        let mut inner = self.lock();
        let injected = match inner.fail {
            Some((n, status)) => {
                inner.fail = (n > 1).then_some((n.saturating_sub(1), status));
                Some(status)
            }
            None => None,
        };
        (inner.hang, injected)
    }
}

/// One request in flight (see [`Shared::enter`]).
#[derive(Debug)]
struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut inner = self.0.lock();
        inner.in_flight = inner.in_flight.saturating_sub(1);
    }
}

/// The running fake. Stops when dropped or on [`FakePush::shutdown`].
#[derive(Debug)]
pub struct FakePush {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Starts the fake on `127.0.0.1` on a free port.
pub async fn start(config: FakePushConfig) -> std::io::Result<FakePush> {
    let shared = Arc::new(Shared {
        config,
        inner: Mutex::new(Inner::default()),
    });
    let app = Router::new()
        .route("/3/device/{token}", post(apns))
        .route("/v1/projects/{project}/messages:send", post(fcm))
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
    Ok(FakePush {
        addr,
        shared,
        stop: Some(stop),
        task: Some(task),
    })
}

impl FakePush {
    /// `http://127.0.0.1:<port>`: both `apns.endpoint` and `fcm.endpoint`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request, in order, with what was answered.
    pub fn received(&self) -> Vec<ReceivedPush> {
        self.shared.lock().received.clone()
    }

    /// The most requests (APNs and FCM together) that were ever being
    /// answered at once: what a sender's concurrency limit allowed.
    pub fn max_in_flight(&self) -> usize {
        self.shared.lock().max_in_flight
    }

    /// The next `n` requests answer `status` (e.g. 503) and do nothing.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.shared.lock().fail = (n > 0).then_some((n, status));
    }

    /// Every request waits this long before answering
    /// (`Duration::ZERO`: answer at once).
    pub fn set_hang(&self, hang: Duration) {
        self.shared.lock().hang = hang;
    }

    /// The device token is gone (uninstalled app): APNs answers 410, FCM
    /// 404 `UNREGISTERED`.
    pub fn unregister(&self, device_token: &str) {
        self.shared
            .lock()
            .unregistered
            .insert(device_token.to_string());
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

impl Drop for FakePush {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn bearer_is(headers: &HeaderMap, token: &str) -> bool {
    header(headers, "authorization")
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, t)| scheme.eq_ignore_ascii_case("bearer") && t == token)
}

fn uuid_like(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8usize, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn apns_error(status: StatusCode, reason: &str) -> Response {
    let body = if status == StatusCode::GONE {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        json!({ "reason": reason, "timestamp": u64::try_from(ms).unwrap_or(u64::MAX) })
    } else {
        json!({ "reason": reason })
    };
    (status, axum::Json(body)).into_response()
}

fn fcm_error(status: StatusCode, reason: &str, error_code: Option<&str>) -> Response {
    let details = error_code.map_or_else(Vec::new, |c| {
        vec![json!({
            "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
            "errorCode": c,
        })]
    });
    (
        status,
        axum::Json(json!({ "error": {
            "code": status.as_u16(),
            "status": reason,
            "message": reason,
            "details": details,
        }})),
    )
        .into_response()
}

async fn apns(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _in_flight = shared.enter();
    let (hang, injected) = shared.gate();
    let (response, id) = match injected {
        Some(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            (apns_error(status, "InternalServerError"), None)
        }
        None => apns_answer(&shared, &token, &headers, &body),
    };
    shared.lock().received.push(ReceivedPush {
        platform: Platform::Apns,
        path: format!("/3/device/{token}"),
        device_token: token,
        headers: header_list(&headers),
        body: String::from_utf8_lossy(&body).into_owned(),
        status: response.status().as_u16(),
        id,
    });
    if !hang.is_zero() {
        tokio::time::sleep(hang).await;
    }
    response
}

fn apns_answer(
    shared: &Shared,
    token: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (Response, Option<String>) {
    if !bearer_is(headers, &shared.config.apns_token) {
        return (
            apns_error(StatusCode::FORBIDDEN, "InvalidProviderToken"),
            None,
        );
    }
    let Some(topic) = header(headers, "apns-topic").filter(|t| !t.is_empty()) else {
        return (apns_error(StatusCode::BAD_REQUEST, "MissingTopic"), None);
    };
    if shared
        .config
        .apns_topic
        .as_deref()
        .is_some_and(|t| t != topic)
    {
        return (apns_error(StatusCode::BAD_REQUEST, "TopicDisallowed"), None);
    }
    let push_type = header(headers, "apns-push-type").unwrap_or("alert");
    let priority = header(headers, "apns-priority").unwrap_or("10");
    if !matches!(priority, "1" | "5" | "10") || (push_type == "background" && priority != "5") {
        return (apns_error(StatusCode::BAD_REQUEST, "BadPriority"), None);
    }
    let id = match header(headers, "apns-id") {
        Some(id) if uuid_like(id) => id.to_string(),
        Some(_) => return (apns_error(StatusCode::BAD_REQUEST, "BadMessageId"), None),
        None => {
            let mut inner = shared.lock();
            inner.counter += 1;
            format!("00000000-0000-8000-8000-{:012X}", inner.counter)
        }
    };
    if body.is_empty() {
        return (apns_error(StatusCode::BAD_REQUEST, "PayloadEmpty"), None);
    }
    if body.len() > MAX_APNS_PAYLOAD {
        return (
            apns_error(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge"),
            None,
        );
    }
    let valid = serde_json::from_slice::<Value>(body)
        .ok()
        .is_some_and(|v| v.get("aps").is_some_and(Value::is_object));
    if !valid {
        return (apns_error(StatusCode::BAD_REQUEST, "BadPayload"), None);
    }
    if shared.lock().unregistered.contains(token) {
        return (apns_error(StatusCode::GONE, "Unregistered"), None);
    }
    let mut response = StatusCode::OK.into_response();
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("apns-id", v);
    }
    (response, Some(id))
}

async fn fcm(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _in_flight = shared.enter();
    let (hang, injected) = shared.gate();
    let message: Option<Value> = serde_json::from_slice::<Value>(&body).ok();
    let device_token = message
        .as_ref()
        .and_then(|m| m.pointer("/message/token"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let (response, id) = match injected {
        Some(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            (fcm_error(status, "UNAVAILABLE", None), None)
        }
        None => fcm_answer(&shared, &project, &headers, &device_token),
    };
    shared.lock().received.push(ReceivedPush {
        platform: Platform::Fcm,
        path: format!("/v1/projects/{project}/messages:send"),
        device_token,
        headers: header_list(&headers),
        body: String::from_utf8_lossy(&body).into_owned(),
        status: response.status().as_u16(),
        id,
    });
    if !hang.is_zero() {
        tokio::time::sleep(hang).await;
    }
    response
}

fn fcm_answer(
    shared: &Shared,
    project: &str,
    headers: &HeaderMap,
    device_token: &str,
) -> (Response, Option<String>) {
    if !bearer_is(headers, &shared.config.fcm_token) {
        return (
            fcm_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", None),
            None,
        );
    }
    if device_token.is_empty() {
        return (
            fcm_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", None),
            None,
        );
    }
    let mut inner = shared.lock();
    if inner.unregistered.contains(device_token) {
        return (
            fcm_error(StatusCode::NOT_FOUND, "NOT_FOUND", Some("UNREGISTERED")),
            None,
        );
    }
    inner.counter += 1;
    let name = format!("projects/{project}/messages/0:{}", inner.counter);
    (
        axum::Json(json!({ "name": name })).into_response(),
        Some(name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_uuids() {
        assert!(uuid_like("6E1A3B2C-0D4F-8A9B-8C7D-0123456789AB"));
        assert!(!uuid_like("6E1A3B2C0D4F8A9B8C7D0123456789AB"));
        assert!(!uuid_like("zzzzzzzz-0d4f-8a9b-8c7d-0123456789ab"));
    }
}
