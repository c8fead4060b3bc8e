//! Request ids and the access log on SQLite and PostgreSQL: one access line
//! per request naming the route template (never the raw path, which may
//! hold ids or a portal link token), the request id answered equals the one
//! logged, a sane caller id is kept and an insane one replaced, and the
//! delivery work a `POST /v1/messages` causes is stored and logged with the
//! id of that request, on every attempt and in the work that follows.
//!
//! Logs are captured by one process-wide JSON subscriber (the server's
//! workers run on other threads than the test), so each test finds its own
//! lines by the request ids it made.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::sync::{Mutex, Once};
use std::time::Duration;

use ladder_channels::sandbox::Failure;
use ladder_core::Channel;
use ladder_store::ids::RequestId;
use ladder_store::outbox;
use serde_json::{Value, json};
use support::{Backend, StatusCode, TestApp};

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Appends every log line to [`LOGS`].
struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_max_level(tracing::Level::INFO)
            .with_writer(|| Capture)
            .init();
    });
}

/// Every captured line as JSON (each must parse).
fn lines() -> Vec<Value> {
    let logs = LOGS.lock().unwrap().clone();
    String::from_utf8(logs)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn raw_logs() -> String {
    String::from_utf8(LOGS.lock().unwrap().clone()).unwrap()
}

/// The access lines of request `id`.
fn access(id: &str) -> Vec<Value> {
    lines()
        .into_iter()
        .filter(|l| l["target"] == "ladder::access" && l["fields"]["request_id"] == id)
        .collect()
}

/// The one access line of request `id`.
fn one_access(id: &str) -> Value {
    let found = access(id);
    assert_eq!(found.len(), 1, "one access line for {id}: {found:#?}");
    found.into_iter().next().unwrap()
}

/// Lines logged inside a span carrying request id `id`.
fn in_request(id: &str) -> Vec<Value> {
    lines()
        .into_iter()
        .filter(|l| {
            l["spans"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["request_id"] == id))
        })
        .collect()
}

/// Sends `method path` with an optional `X-Request-Id`, answering the
/// status and the id returned.
async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    request_id: Option<&str>,
    body: Option<Vec<u8>>,
) -> (StatusCode, String) {
    let mut req = app
        .client
        .request(method, format!("{}{path}", app.base))
        .header("authorization", format!("Bearer {}", app.sender));
    if let Some(id) = request_id {
        req = req.header("x-request-id", id);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let answer = req.send().await.unwrap();
    let id = answer
        .headers()
        .get("x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id on {path}"))
        .to_str()
        .unwrap()
        .to_string();
    (answer.status(), id)
}

fn tag(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

async fn access_lines_name_templates_and_the_request_id(backend: Backend) {
    capture_logs();
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let t = tag(backend);
    let missing = ladder_store::ids::new_id("msg");

    // A sane id is kept; the line names the template, not the message id.
    let sane = format!("client-{t}.1:a_b");
    let (status, id) = call(
        &app,
        reqwest::Method::GET,
        &format!("/v1/messages/{missing}"),
        Some(&sane),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(id, sane);
    let line = one_access(&sane);
    let f = &line["fields"];
    assert_eq!(f["route"], "/v1/messages/{id}", "{line}");
    assert_eq!(f["method"], "GET");
    assert_eq!(f["status"], 404);
    assert!(f["duration_ms"].as_f64().unwrap() >= 0.0, "{line}");
    assert_eq!(line["level"], "INFO");

    // Insane ids are replaced by a generated one, never echoed or logged.
    let long = format!("long{t}{}", "x".repeat(196));
    for insane in [long.as_str(), "tab\there", "semi;colon", "sp ace"] {
        let (status, id) = call(&app, reqwest::Method::GET, "/healthz", Some(insane), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_ne!(id, insane);
        assert!(id.starts_with("req_"), "{id}");
        assert_eq!(
            ladder_store::ids::RequestId::parse(&id).unwrap().as_str(),
            id
        );
        assert_eq!(one_access(&id)["fields"]["route"], "/healthz");
    }
    assert!(!raw_logs().contains(&long), "an insane id was logged");

    // No id given: one is generated, returned and logged.
    let (_, generated) = call(&app, reqwest::Method::GET, "/readyz", None, None).await;
    assert!(generated.starts_with("req_"), "{generated}");
    assert_eq!(one_access(&generated)["fields"]["status"], 200);

    // Unmatched routes and portal routes: the raw path (which may hold a
    // token) is never logged, only `<unmatched>` or the template. Errors
    // that never reach a handler carry an id too: a body too large, a wrong
    // method.
    let secret = format!("SECRET{t}0123456789abcdef");
    let cases = [
        (
            reqwest::Method::GET,
            format!("/no/such/{secret}?token={secret}"),
            None,
            404,
            "<unmatched>",
        ),
        (
            reqwest::Method::GET,
            format!("/portal/{secret}"),
            None,
            404,
            "/portal/{token}",
        ),
        (
            reqwest::Method::GET,
            format!("/portal/{secret}/x/y"),
            None,
            404,
            "/portal/{token}/{*rest}",
        ),
        (
            reqwest::Method::POST,
            "/v1/messages".to_string(),
            Some(vec![b' '; 300 * 1024]),
            413,
            "/v1/messages",
        ),
        (
            reqwest::Method::DELETE,
            "/v1/messages".to_string(),
            None,
            405,
            "/v1/messages",
        ),
    ];
    for (method, path, body, status, route) in cases {
        let (answered, id) = call(&app, method, &path, None, body).await;
        let line = one_access(&id);
        assert_eq!(line["fields"]["route"], route, "{path}: {line}");
        assert_eq!(
            line["fields"]["status"],
            answered.as_u16(),
            "{path}: {line}"
        );
        if route != "/portal/{token}" {
            // An unknown link's status is the portal's to choose.
            assert_eq!(answered.as_u16(), status, "{path}");
        }
    }
    let answer = app
        .client
        .get(format!("{}/v1/policy", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    let id = answer.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(one_access(id)["fields"]["status"], 401);

    let logs = raw_logs();
    assert!(!logs.contains(&secret), "a raw path reached the log");
    assert!(!logs.contains(&missing), "a raw path reached the log");
    assert!(!logs.contains('\u{1b}'), "JSON lines hold no colour codes");
    app.stop().await;
}

async fn delivery_work_carries_the_request_id_of_the_post(backend: Backend) {
    capture_logs();
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let t = tag(backend);
    let recipient = app.recipient(&format!("emp-obs-{t}")).await;
    let body = format!("OBS-BODY-{t}-payslip");
    let request_id = format!("obs-send-{t}-{}", std::process::id());
    let answer = app
        .client
        .post(format!("{}/v1/messages", app.base))
        .header("authorization", format!("Bearer {}", app.sender))
        .header("idempotency-key", format!("obs-{t}"))
        .header("x-request-id", &request_id)
        .json(&json!({ "recipient": recipient, "class": "transactional", "body": body }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    assert_eq!(answer.headers()["x-request-id"], request_id.as_str());
    let sent: Value = answer.json().await.unwrap();
    let message = sent["id"].as_str().unwrap().to_string();
    app.wait_status(&message, "sent").await;

    // The outbox rows the request caused are stamped with its id.
    let mut conn = app.state().store.pool().acquire().await.unwrap();
    let stamped: Vec<Option<String>> =
        sqlx::query_scalar("SELECT request_id FROM outbox WHERE message_id = $1")
            .bind(&message)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    drop(conn);
    assert!(!stamped.is_empty());
    assert!(
        stamped
            .iter()
            .all(|r| r.as_deref() == Some(request_id.as_str())),
        "{stamped:?}"
    );

    // The access line of the POST and the worker's lines for its work carry
    // the same id: one grep finds the request and its delivery.
    assert_eq!(one_access(&request_id)["fields"]["route"], "/v1/messages");
    let mut worker = Vec::new();
    for _ in 0..100 {
        worker = in_request(&request_id)
            .into_iter()
            .filter(|l| l["span"]["name"] == "work" && l["fields"]["message_id"] == message)
            .collect();
        if !worker.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ran = worker
        .iter()
        .find(|l| l["fields"]["message"] == "delivery work ran")
        .unwrap_or_else(|| panic!("no worker line carries {request_id}: {worker:#?}"));
    assert_eq!(ran["span"]["request_id"], request_id.as_str());
    assert_eq!(ran["span"]["kind"], "deliver");
    assert!(
        !raw_logs().contains(&body),
        "a message body reached the log"
    );

    // Without an id, the generated one is the one stored.
    let answer = app
        .client
        .post(format!("{}/v1/messages", app.base))
        .header("authorization", format!("Bearer {}", app.sender))
        .header("idempotency-key", format!("obs-{t}-2"))
        .json(&json!({ "recipient": recipient, "class": "transactional", "body": "x" }))
        .send()
        .await
        .unwrap();
    let generated = answer.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let sent: Value = answer.json().await.unwrap();
    let mut conn = app.state().store.pool().acquire().await.unwrap();
    let stamped: Option<String> =
        sqlx::query_scalar("SELECT request_id FROM outbox WHERE message_id = $1")
            .bind(sent["id"].as_str().unwrap())
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    drop(conn);
    assert_eq!(stamped.as_deref(), Some(generated.as_str()));
    app.stop().await;
}

/// Every attempt of a retried delivery logs the POST's request id, and
/// work queued while running work (a fallback, a delivery check) keeps the
/// id of the work it follows from, as the worker runs it.
async fn retries_and_follow_up_work_keep_the_request_id(backend: Backend) {
    capture_logs();
    let retried = Failure::Transient { times: 2 };
    let Some(app) = TestApp::failing(backend, Channel::Email, retried).await else {
        return;
    };
    let t = tag(backend);
    let recipient = app.recipient(&format!("emp-retry-{t}")).await;
    let request_id = format!("obs-retry-{t}-{}", std::process::id());
    let answer = app
        .client
        .post(format!("{}/v1/messages", app.base))
        .header("authorization", format!("Bearer {}", app.sender))
        .header("idempotency-key", format!("retry-{t}"))
        .header("x-request-id", &request_id)
        .json(&json!({ "recipient": recipient, "class": "transactional", "body": "retry me" }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let sent: Value = answer.json().await.unwrap();
    let message = sent["id"].as_str().unwrap().to_string();
    app.wait_status(&message, "sent").await;
    let mut attempts = Vec::new();
    for _ in 0..100 {
        attempts = in_request(&request_id)
            .into_iter()
            .filter(|l| l["fields"]["message"] == "delivery work ran")
            .map(|l| l["fields"]["attempt"].as_i64().unwrap())
            .collect();
        if attempts.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(attempts, [1, 2, 3], "every attempt carries the request id");

    // Follow-up work queued inside the scope the worker runs an item in
    // inherits that item's request id; work queued outside any has none.
    let far = 4_000_000_000_000_i64;
    let follow = RequestId::parse(&format!("obs-follow-{t}")).unwrap();
    let enqueue = || async {
        let mut conn = app.state().store.pool().acquire().await.unwrap();
        outbox::enqueue(
            &mut conn,
            &app.tenant,
            &message,
            outbox::Kind::Redecide,
            far,
        )
        .await
        .unwrap()
    };
    let claim = || async {
        let work = outbox::claim(&app.state().store, "obs-test", far, 1000, 10)
            .await
            .unwrap();
        assert_eq!(work.len(), 1, "{work:?}");
        let mut conn = app.state().store.pool().acquire().await.unwrap();
        let item = work.into_iter().next().unwrap();
        assert!(
            outbox::complete(&mut conn, &item.id, "obs-test", far)
                .await
                .unwrap()
        );
        item
    };
    outbox::for_request(Some(follow.clone()), enqueue()).await;
    let first = claim().await;
    assert_eq!(first.request_id.as_ref(), Some(&follow));
    outbox::for_request(first.request_id.clone(), enqueue()).await;
    assert_eq!(claim().await.request_id, Some(follow));
    enqueue().await;
    assert_eq!(claim().await.request_id, None);
    app.stop().await;
}

both_backends!(
    access_lines_name_templates_and_the_request_id,
    delivery_work_carries_the_request_id_of_the_post,
    retries_and_follow_up_work_keep_the_request_id,
);
