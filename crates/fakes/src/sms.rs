//! A fake SMS provider: an HTTP server on a loopback port speaking the
//! protocol `ladder_channels::sms` speaks (Twilio's Messages resource; the
//! module doc of `ladder_channels::sms` is the reference):
//!
//! - `POST /2010-04-01/Accounts/{account}/Messages.json`, HTTP Basic auth
//!   `(account, token)` (401 `{"code": 20003}` otherwise), form-encoded
//!   `To`, `From`, `Body`, optional `StatusCallback`, optional header
//!   `Idempotency-Key` → 201 `{"sid": "SM…", "status": "queued"}`. A
//!   repeated key answers the first message's `sid` again with
//!   `Idempotent-Replayed: true` and sends nothing. Missing or invalid
//!   fields answer 400 with Twilio's codes (21604 `To` missing, 21211 `To`
//!   not E.164, 21603 `From` missing, 21602 `Body` missing, 21617 `Body`
//!   too long).
//! - Status callbacks: form-encoded `AccountSid`, `MessageSid`,
//!   `MessageStatus` (plus `ErrorCode` for failures) POSTed to the message's
//!   `StatusCallback`, signed `X-Ladder-Signature: base64(HMAC-SHA256(token,
//!   url + sorted key+value pairs))`. With automatic receipts on (the
//!   default), every accepted message gets `sent` then the configured final
//!   status after [`FakeSmsConfig::receipt_delay`].
//!
//! Failure controls: [`FakeSms::fail_next`], [`FakeSms::set_hang`],
//! [`FakeSms::drop_receipts`]; [`FakeSms::send_status`] posts any status
//! for any message.
//!
//! Sending callbacks uses `reqwest`, built with `rustls-no-provider`: the
//! process must install a rustls crypto provider before [`start`].
//!
//! Test and demo tooling: in memory, simple, not product code.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The header carrying a callback's signature.
pub const SIGNATURE_HEADER: &str = "X-Ladder-Signature";
/// Longest body accepted (Twilio: 1600 characters).
pub const MAX_BODY_CHARS: usize = 1600;

/// How the fake starts.
#[derive(Debug, Clone)]
pub struct FakeSmsConfig {
    /// The account id: path segment and Basic-auth user.
    pub account: String,
    /// The auth token: Basic-auth password and callback HMAC key.
    pub token: String,
    /// The final status automatic receipts report after `sent`; `None`:
    /// no automatic receipts (only [`FakeSms::send_status`]).
    pub auto_receipts: Option<SmsStatus>,
    /// How long after accepting a message its automatic receipts go out
    /// (so the sender has recorded the `sid` before they arrive).
    pub receipt_delay: Duration,
}

impl Default for FakeSmsConfig {
    fn default() -> Self {
        FakeSmsConfig {
            account: "ACfake0000000000".into(),
            token: "fake-sms-token".into(),
            auto_receipts: Some(SmsStatus::Delivered),
            receipt_delay: Duration::from_millis(100),
        }
    }
}

/// A message status as callbacks report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsStatus {
    Queued,
    Sent,
    Delivered,
    Undelivered,
    Failed,
}

impl SmsStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsStatus::Queued => "queued",
            SmsStatus::Sent => "sent",
            SmsStatus::Delivered => "delivered",
            SmsStatus::Undelivered => "undelivered",
            SmsStatus::Failed => "failed",
        }
    }
}

/// One accepted message (repeats of an idempotency key are not listed
/// again; see [`FakeSms::replayed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSms {
    pub sid: String,
    pub to: String,
    pub from: String,
    pub body: String,
    pub status_callback: Option<String>,
    pub idempotency_key: Option<String>,
}

/// A callback as the fake signs it: the URL, the exact form body and its
/// `X-Ladder-Signature` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCallback {
    pub url: String,
    pub body: Vec<u8>,
    pub signature: String,
}

/// One callback the fake posted, and what the webhook answered (`None`
/// when the request itself failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentCallback {
    pub sid: String,
    pub status: SmsStatus,
    pub url: String,
    pub answered: Option<u16>,
}

#[derive(Debug, thiserror::Error)]
pub enum FakeSmsError {
    #[error("no such message")]
    UnknownSid,
    #[error("the message has no status callback URL")]
    NoCallbackUrl,
    #[error("posting the callback failed: {0}")]
    Post(String),
}

#[derive(Debug, Default)]
struct Inner {
    received: Vec<ReceivedSms>,
    /// sid → status callback URL.
    callbacks_of: HashMap<String, Option<String>>,
    /// idempotency key → sid.
    keys: HashMap<String, String>,
    fail: Option<(u32, u16)>,
    hang: Duration,
    drop_receipts: bool,
    auto_receipts: Option<SmsStatus>,
    sent_callbacks: Vec<SentCallback>,
    unauthorized: u32,
    replayed: u32,
    counter: u64,
}

#[derive(Debug)]
struct Shared {
    account: String,
    token: String,
    receipt_delay: Duration,
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

    fn signed(&self, sid: &str, status: SmsStatus) -> Result<SignedCallback, FakeSmsError> {
        let url = self
            .lock()
            .callbacks_of
            .get(sid)
            .cloned()
            .ok_or(FakeSmsError::UnknownSid)?
            .ok_or(FakeSmsError::NoCallbackUrl)?;
        let mut params = vec![
            ("AccountSid".to_string(), self.account.clone()),
            ("MessageSid".to_string(), sid.to_string()),
            ("MessageStatus".to_string(), status.as_str().to_string()),
        ];
        if matches!(status, SmsStatus::Undelivered | SmsStatus::Failed) {
            params.push(("ErrorCode".to_string(), "30003".to_string()));
        }
        let signature = sign(&self.token, &url, &params);
        Ok(SignedCallback {
            body: encode_form(&params).into_bytes(),
            url,
            signature,
        })
    }

    /// Posts a status callback, retrying (bounded, with backoff) until the
    /// receiver answers 2xx, as real providers do.
    async fn post_retrying(&self, sid: &str, status: SmsStatus) {
        let mut delay = Duration::from_millis(50);
        for _ in 0..7 {
            if matches!(self.post(sid, status).await, Ok(s) if (200..300).contains(&s)) {
                return;
            }
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        }
    }

    async fn post(&self, sid: &str, status: SmsStatus) -> Result<u16, FakeSmsError> {
        let signed = self.signed(sid, status)?;
        let result = self
            .client
            .post(&signed.url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header(SIGNATURE_HEADER, &signed.signature)
            .body(signed.body)
            .send()
            .await;
        let answered = result.as_ref().ok().map(|r| r.status().as_u16());
        self.lock().sent_callbacks.push(SentCallback {
            sid: sid.to_string(),
            status,
            url: signed.url,
            answered,
        });
        result
            .map(|r| r.status().as_u16())
            .map_err(|e| FakeSmsError::Post(e.to_string()))
    }
}

/// The running fake. Stops when dropped or on [`FakeSms::shutdown`].
#[derive(Debug)]
pub struct FakeSms {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Builds the callback client; a process without a rustls crypto provider
/// gets an error instead of a panic.
fn client() -> std::io::Result<reqwest::Client> {
    std::panic::catch_unwind(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
    })
    .map_err(|_| std::io::Error::other("install a rustls crypto provider first"))?
    .map_err(std::io::Error::other)
}

/// Starts the fake on `127.0.0.1` on a free port.
pub async fn start(config: FakeSmsConfig) -> std::io::Result<FakeSms> {
    let shared = Arc::new(Shared {
        account: config.account,
        token: config.token,
        receipt_delay: config.receipt_delay,
        client: client()?,
        inner: Mutex::new(Inner {
            auto_receipts: config.auto_receipts,
            ..Inner::default()
        }),
    });
    let app = Router::new()
        .route("/2010-04-01/Accounts/{account}/Messages.json", post(send))
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
    Ok(FakeSms {
        addr,
        shared,
        stop: Some(stop),
        task: Some(task),
    })
}

impl FakeSms {
    /// `http://127.0.0.1:<port>`: the adapter's `endpoint`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn account(&self) -> &str {
        &self.shared.account
    }

    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// Every accepted message, in order.
    pub fn received(&self) -> Vec<ReceivedSms> {
        self.shared.lock().received.clone()
    }

    /// Requests answered with an earlier message for a repeated
    /// idempotency key.
    pub fn replayed(&self) -> u32 {
        self.shared.lock().replayed
    }

    /// Requests refused for missing or wrong credentials.
    pub fn unauthorized(&self) -> u32 {
        self.shared.lock().unauthorized
    }

    /// Every callback posted, in order, and the webhook's answer.
    pub fn callbacks(&self) -> Vec<SentCallback> {
        self.shared.lock().sent_callbacks.clone()
    }

    /// The next `n` send requests answer `status` (e.g. 503) and do nothing.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.shared.lock().fail = (n > 0).then_some((n, status));
    }

    /// Every send request waits this long before answering (the message is
    /// taken first, as a provider whose answer got lost would);
    /// `Duration::ZERO`: answer at once.
    pub fn set_hang(&self, hang: Duration) {
        self.shared.lock().hang = hang;
    }

    /// Messages are still accepted, but their automatic receipts are lost.
    pub fn drop_receipts(&self, drop: bool) {
        self.shared.lock().drop_receipts = drop;
    }

    /// The final status automatic receipts report from now on (`None`: no
    /// automatic receipts).
    pub fn set_auto_receipts(&self, status: Option<SmsStatus>) {
        self.shared.lock().auto_receipts = status;
    }

    /// The callback the fake would post for `sid`, signed.
    pub fn signed_callback(
        &self,
        sid: &str,
        status: SmsStatus,
    ) -> Result<SignedCallback, FakeSmsError> {
        self.shared.signed(sid, status)
    }

    /// Posts a signed `status` callback for `sid` to its `StatusCallback`
    /// now (whatever [`FakeSms::drop_receipts`] says), answering the
    /// webhook's HTTP status.
    pub async fn send_status(&self, sid: &str, status: SmsStatus) -> Result<u16, FakeSmsError> {
        self.shared.post(sid, status).await
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

impl Drop for FakeSms {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// `base64(HMAC-SHA256(token, url + k1 + v1 + k2 + v2 …))` over the decoded
/// form parameters sorted by name, then value.
pub fn sign(token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    match <Hmac<Sha256> as KeyInit>::new_from_slice(token.as_bytes()) {
        Ok(mut mac) => {
            mac.update(url.as_bytes());
            for (k, v) in sorted {
                mac.update(k.as_bytes());
                mac.update(v.as_bytes());
            }
            BASE64.encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length.
        Err(_) => String::new(),
    }
}

/// `application/x-www-form-urlencoded`.
pub fn encode_form(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Decodes a form body; `None` when it is not valid.
pub fn decode_form(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode_component(k)?, decode_component(v)?))
        })
        .collect()
}

fn decode_component(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = char::from(bytes.next()?).to_digit(16)?;
                let lo = char::from(bytes.next()?).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).ok()
}

fn error(status: StatusCode, code: Option<u32>, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "code": code,
            "message": message,
            "status": status.as_u16(),
        })),
    )
        .into_response()
}

fn authorized(shared: &Shared, account: &str, headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        BASE64.encode(format!("{}:{}", shared.account, shared.token))
    );
    account == shared.account
        && headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == expected)
}

fn e164(to: &str) -> bool {
    let digits = to.strip_prefix('+').unwrap_or("");
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

async fn send(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (hang, injected) = {
        let mut inner = shared.lock();
        let injected = match inner.fail {
            Some((n, status)) => {
                inner.fail = (n > 1).then_some((n.saturating_sub(1), status));
                Some(status)
            }
            None => None,
        };
        (inner.hang, injected)
    };
    let answer = accept(&shared, &account, &headers, &body, injected);
    if !hang.is_zero() {
        tokio::time::sleep(hang).await;
    }
    match answer {
        (response, Some((sid, final_status))) => {
            let shared = shared.clone();
            tokio::spawn(async move {
                tokio::time::sleep(shared.receipt_delay).await;
                shared.post_retrying(&sid, SmsStatus::Sent).await;
                shared.post_retrying(&sid, final_status).await;
            });
            response
        }
        (response, None) => response,
    }
}

/// Validates and takes a message: the response, and the automatic
/// receipts to send (sid, final status) if any.
fn accept(
    shared: &Shared,
    account: &str,
    headers: &HeaderMap,
    body: &[u8],
    injected: Option<u16>,
) -> (Response, Option<(String, SmsStatus)>) {
    if let Some(status) = injected {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return rejected(error(status, None, "injected failure"));
    }
    if !authorized(shared, account, headers) {
        shared.lock().unauthorized += 1;
        return rejected(error(StatusCode::UNAUTHORIZED, Some(20003), "Authenticate"));
    }
    let Some(form) = decode_form(body) else {
        return rejected(error(StatusCode::BAD_REQUEST, None, "malformed form body"));
    };
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let Some(to) = field("To") else {
        return rejected(error(
            StatusCode::BAD_REQUEST,
            Some(21604),
            "A 'To' phone number is required.",
        ));
    };
    if !e164(&to) {
        return rejected(error(
            StatusCode::BAD_REQUEST,
            Some(21211),
            "The 'To' number is not a valid phone number.",
        ));
    }
    let Some(from) = field("From") else {
        return rejected(error(
            StatusCode::BAD_REQUEST,
            Some(21603),
            "A 'From' phone number is required.",
        ));
    };
    let Some(text) = field("Body") else {
        return rejected(error(
            StatusCode::BAD_REQUEST,
            Some(21602),
            "Message body is required.",
        ));
    };
    if text.chars().count() > MAX_BODY_CHARS {
        return rejected(error(
            StatusCode::BAD_REQUEST,
            Some(21617),
            "The concatenated message body exceeds the 1600 character limit.",
        ));
    }
    let status_callback = field("StatusCallback");
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty())
        .map(str::to_string);
    let mut inner = shared.lock();
    let answer = |sid: &str| {
        json!({
            "sid": sid,
            "account_sid": shared.account,
            "status": "queued",
        })
    };
    if let Some(sid) = key.as_ref().and_then(|k| inner.keys.get(k)).cloned() {
        inner.replayed += 1;
        let mut response = (StatusCode::CREATED, axum::Json(answer(&sid))).into_response();
        response.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
        return (response, None);
    }
    inner.counter += 1;
    let mut hasher = Sha256::new();
    hasher.update(inner.counter.to_be_bytes());
    hasher.update(key.as_deref().unwrap_or("").as_bytes());
    let digest = hasher.finalize();
    let sid = format!(
        "SM{}",
        hex::encode(digest.iter().take(16).copied().collect::<Vec<u8>>())
    );
    if let Some(k) = &key {
        inner.keys.insert(k.clone(), sid.clone());
    }
    inner
        .callbacks_of
        .insert(sid.clone(), status_callback.clone());
    let receipts = match (inner.auto_receipts, &status_callback, inner.drop_receipts) {
        (Some(final_status), Some(_), false) => Some((sid.clone(), final_status)),
        _ => None,
    };
    inner.received.push(ReceivedSms {
        sid: sid.clone(),
        to,
        from,
        body: text,
        status_callback,
        idempotency_key: key,
    });
    (
        (StatusCode::CREATED, axum::Json(answer(&sid))).into_response(),
        receipts,
    )
}

fn rejected(response: Response) -> (Response, Option<(String, SmsStatus)>) {
    (response, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_round_trip() {
        let params = vec![
            ("Body".to_string(), "a b+c&d=é".to_string()),
            ("To".to_string(), "+15550100".to_string()),
        ];
        assert_eq!(decode_form(encode_form(&params).as_bytes()), Some(params));
    }

    #[test]
    fn e164_numbers() {
        assert!(e164("+447700900123"));
        assert!(!e164("447700900123"));
        assert!(!e164("+1"));
    }
}
