//! Outbound event webhooks on SQLite and PostgreSQL, received by a real
//! HTTP endpoint on loopback: every delivery's `webhook-signature` verifies
//! with independent implementations of the Standard Webhooks spec — the
//! `standardwebhooks` crate, and the Python `standardwebhooks` package run
//! as a subprocess when `LADDER_TEST_PYTHON` names an interpreter that has
//! it. Also: a 500 then a 200 is the same `webhook-id` twice; after a
//! rotation both secrets verify; no event body carries the message content
//! or the recipient's addresses; another tenant's admin finds nothing
//! (404); a subscription's type filter holds; attempts are listed and an
//! event can be sent again.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use serde_json::{Value, json};
use support::{Backend, StatusCode, TestApp};

const CANARY: &str = "CANARY-7f3a body that must never leave in an event";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: String,
}

/// A loopback endpoint recording what it receives; it answers the queued
/// statuses first, then 200.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let shared = r.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let shared = shared.clone();
                async move {
                    shared.got.lock().unwrap().push(Received { headers, body });
                    let code = shared.answers.lock().unwrap().pop_front().unwrap_or(200);
                    AxumStatus::from_u16(code).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, format!("http://{addr}/hook"))
    }

    fn answer(&self, codes: &[u16]) {
        self.answers.lock().unwrap().extend(codes);
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until some request satisfies `want`; answers every request so far.
    async fn wait(&self, what: &str, want: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        for _ in 0..300 {
            let got = self.got();
            if want(&got) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the receiver never got {what}: {:#?}", self.got());
    }
}

fn event_type(r: &Received) -> String {
    let v: Value = serde_json::from_str(&r.body).unwrap();
    v["type"].as_str().unwrap().to_string()
}

fn header(r: &Received, name: &str) -> String {
    r.headers[name].to_str().unwrap().to_string()
}

fn has_type(t: &'static str) -> impl Fn(&[Received]) -> bool {
    move |got: &[Received]| got.iter().any(|r| event_type(r) == t)
}

/// Verifies with the `standardwebhooks` crate.
fn verify_rust(secret: &str, r: &Received) -> bool {
    let wh = standardwebhooks::Webhook::new(secret).unwrap();
    wh.verify(r.body.as_bytes(), &r.headers).is_ok()
}

/// Verifies every `(secret, request)` with the Python `standardwebhooks`
/// package when `LADDER_TEST_PYTHON` is set; says so and returns when not.
fn verify_python(cases: &[(&str, &Received)]) {
    let Ok(python) = std::env::var("LADDER_TEST_PYTHON") else {
        println!(
            "LADDER_TEST_PYTHON not set: skipping the Python standardwebhooks check (the Rust check ran)"
        );
        return;
    };
    let input: Vec<Value> = cases
        .iter()
        .map(|(secret, r)| {
            json!({
                "secret": secret,
                "body": r.body,
                "headers": {
                    "webhook-id": header(r, "webhook-id"),
                    "webhook-timestamp": header(r, "webhook-timestamp"),
                    "webhook-signature": header(r, "webhook-signature"),
                },
            })
        })
        .collect();
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
cases = json.load(sys.stdin)
for c in cases:
    Webhook(c["secret"]).verify(c["body"], c["headers"])
print("verified", len(cases))
"#;
    let mut child = std::process::Command::new(&python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("LADDER_TEST_PYTHON=`{python}` does not run: {e}"));
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&input).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "Python standardwebhooks refused a delivery: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("verified {}", cases.len())
    );
}

async fn start(backend: Backend) -> Option<TestApp> {
    TestApp::builder(backend)
        .config(|c| {
            c.events.allow_http_loopback = true;
            c.events.poll_ms = 20;
            c.events.backoff_base_ms = 50;
            c.events.max_attempts = 2;
        })
        .start()
        .await
}

/// Subscribes `url`; answers the subscription id and its secret.
async fn subscribe(app: &TestApp, url: &str, types: Value) -> (String, String) {
    let a = app
        .post(
            "/v1/event-subscriptions",
            &app.admin,
            json!({ "url": url, "event_types": types }),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let secret = a.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{}", a.text);
    (
        a.body["subscription"]["id"].as_str().unwrap().to_string(),
        secret,
    )
}

async fn send(app: &TestApp, idem: &str, r: &str) -> String {
    let a = app.send(idem, r, "transactional", CANARY).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

async fn deliveries_are_signed_and_carry_no_content(backend: Backend) {
    let Some(app) = start(backend).await else {
        return;
    };
    let (rx, url) = Receiver::start().await;
    let (_, secret) = subscribe(&app, &url, json!([])).await;
    let r = app.recipient("emp-events").await;
    let id = send(&app, "ev-1", &r).await;
    let got = rx
        .wait("accepted and delivered", |g| {
            has_type("message.accepted")(g) && has_type("message.delivered")(g)
        })
        .await;
    for d in &got {
        assert!(verify_rust(&secret, d), "{d:#?}");
        assert!(header(d, "webhook-id").starts_with("evt_"));
        assert_eq!(
            header(d, "webhook-signature").split(' ').count(),
            1,
            "one secret signs before any rotation"
        );
        // Nothing of the message or the person: body, addresses, key.
        for secret_text in [
            CANARY,
            "CANARY",
            "emp-events@example.com",
            "+1555",
            "emp-events",
            &secret,
            &app.admin,
        ] {
            assert!(
                !d.body.contains(secret_text),
                "an event body carries `{secret_text}`: {}",
                d.body
            );
        }
        let v: Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!(v["data"]["message_id"], id, "{v:#}");
        assert_eq!(v["data"]["class"], "transactional", "{v:#}");
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'), "{v:#}");
    }
    let delivered = got
        .iter()
        .find(|d| event_type(d) == "message.delivered")
        .unwrap();
    let v: Value = serde_json::from_str(&delivered.body).unwrap();
    assert!(v["data"]["route"].is_string(), "{v:#}");
    assert!(v["data"]["assurance"].is_string(), "{v:#}");
    assert_eq!(v["data"]["confirmed_by"], "hand_over", "{v:#}");
    // A signature under another secret does not verify.
    assert!(!verify_rust(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        delivered
    ));
    let cases: Vec<(&str, &Received)> = got.iter().map(|d| (secret.as_str(), d)).collect();
    verify_python(&cases);
    app.stop().await;
}

async fn a_refused_delivery_is_retried_under_the_same_id(backend: Backend) {
    let Some(app) = start(backend).await else {
        return;
    };
    let (rx, url) = Receiver::start().await;
    rx.answer(&[500]);
    let (sub, secret) = subscribe(&app, &url, json!(["message.accepted"])).await;
    let r = app.recipient("emp-retry").await;
    send(&app, "ev-retry", &r).await;
    let got = rx.wait("two attempts", |g| g.len() >= 2).await;
    assert_eq!(header(&got[0], "webhook-id"), header(&got[1], "webhook-id"));
    assert_eq!(
        got[0].body, got[1].body,
        "every attempt sends the same body"
    );
    assert!(verify_rust(&secret, &got[1]));
    // The attempts list: newest first, the 200 then the 500.
    let mut attempts = Value::Null;
    for _ in 0..100 {
        let a = app
            .get(
                &format!("/v1/event-subscriptions/{sub}/attempts"),
                &app.admin,
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        attempts = a.body["attempts"].clone();
        if attempts.as_array().unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list = attempts.as_array().unwrap();
    assert_eq!(list.len(), 2, "{attempts:#}");
    assert_eq!(list[0]["status_code"], 200, "{attempts:#}");
    assert_eq!(list[0]["error_kind"], Value::Null);
    assert_eq!(list[0]["attempt"], 2);
    assert_eq!(list[0]["event_state"], "delivered");
    assert_eq!(list[1]["status_code"], 500);
    assert_eq!(list[1]["error_kind"], "http_status");
    assert_eq!(list[1]["event_id"], header(&got[0], "webhook-id"));
    // Paged: one at a time, the cursor continues below.
    let first = app
        .get(
            &format!("/v1/event-subscriptions/{sub}/attempts?limit=1"),
            &app.admin,
        )
        .await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_string();
    let second = app
        .get(
            &format!("/v1/event-subscriptions/{sub}/attempts?limit=1&cursor={cursor}"),
            &app.admin,
        )
        .await;
    assert_eq!(second.body["attempts"][0]["id"], list[1]["id"]);
    assert_eq!(second.body["next_cursor"], Value::Null);
    app.stop().await;
}

async fn failed_events_are_marked_and_can_be_sent_again(backend: Backend) {
    let Some(app) = start(backend).await else {
        return;
    };
    let (rx, url) = Receiver::start().await;
    rx.answer(&[503, 503]);
    let (sub, _) = subscribe(&app, &url, json!(["message.accepted"])).await;
    let r = app.recipient("emp-failed").await;
    send(&app, "ev-failed", &r).await;
    rx.wait("both attempts", |g| g.len() >= 2).await;
    let path = format!("/v1/event-subscriptions/{sub}/attempts");
    let mut list = Vec::new();
    for _ in 0..100 {
        list = app.get(&path, &app.admin).await.body["attempts"]
            .as_array()
            .unwrap()
            .clone();
        if list.len() == 2 && list[0]["event_state"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(list[0]["event_state"], "failed", "{list:#?}");
    // No third attempt on its own: max_attempts is 2.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.got().len(), 2);
    // Sent again, named by an attempt's id: delivered, same webhook-id.
    let attempt = list[1]["id"].as_str().unwrap();
    let again = app
        .post(&format!("{path}/{attempt}/retry"), &app.admin, json!({}))
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.text);
    assert_eq!(again.body["event_id"], list[0]["event_id"]);
    let got = rx.wait("the retry", |g| g.len() >= 3).await;
    assert_eq!(header(&got[2], "webhook-id"), list[0]["event_id"]);
    // Unknown ids are 404; a malformed one is a 400 naming the segment.
    let unknown = app
        .post(
            &format!("{path}/evt_0000000000000000000000000000000a/retry"),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text);
    let bad = app
        .post(&format!("{path}/nonsense/retry"), &app.admin, json!({}))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert!(bad.text.contains("attempt_or_event_id"), "{}", bad.text);
    app.stop().await;
}

async fn a_rotated_secret_signs_beside_the_old_one(backend: Backend) {
    let Some(app) = start(backend).await else {
        return;
    };
    let (rx, url) = Receiver::start().await;
    let (sub, old) = subscribe(&app, &url, json!(["message.accepted"])).await;
    let rotated = app
        .post(
            &format!("/v1/event-subscriptions/{sub}/rotate-secret"),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let new = rotated.body["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let shown = app
        .get(&format!("/v1/event-subscriptions/{sub}"), &app.admin)
        .await;
    assert_eq!(
        shown.body["previous_secret_valid_until"],
        rotated.body["previous_secret_valid_until"]
    );
    assert!(!shown.text.contains("whsec_"), "{}", shown.text);
    let r = app.recipient("emp-rotate").await;
    send(&app, "ev-rotate", &r).await;
    let got = rx.wait("one event", |g| !g.is_empty()).await;
    let d = &got[0];
    assert_eq!(header(d, "webhook-signature").split(' ').count(), 2);
    assert!(verify_rust(&new, d), "the new secret verifies");
    assert!(
        verify_rust(&old, d),
        "the old secret verifies in the grace period"
    );
    verify_python(&[(new.as_str(), d), (old.as_str(), d)]);
    // The rotation is audited, without the secret.
    let audit = app.audit().await;
    let entry = audit
        .iter()
        .find(|e| e["kind"] == "event_subscription_secret_rotated")
        .unwrap();
    assert!(!entry.to_string().contains("whsec_"));
    app.stop().await;
}

async fn the_type_filter_holds(backend: Backend) {
    let Some(app) = start(backend).await else {
        return;
    };
    let (rx, url) = Receiver::start().await;
    let (sub, _) = subscribe(&app, &url, json!(["message.delivered"])).await;
    let r = app.recipient("emp-filter").await;
    let id = send(&app, "ev-filter", &r).await;
    rx.wait("delivered", has_type("message.delivered")).await;
    app.wait_status(&id, "sent").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let types: Vec<String> = rx.got().iter().map(event_type).collect();
    assert!(types.iter().all(|t| t == "message.delivered"), "{types:?}");
    // Off: nothing more arrives.
    let off = app
        .request(
            reqwest::Method::PATCH,
            &format!("/v1/event-subscriptions/{sub}"),
            Some(&app.admin),
            Some(json!({ "enabled": false })),
            &[],
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text);
    assert_eq!(off.body["enabled"], false);
    let before = rx.got().len();
    let id = send(&app, "ev-filter-2", &r).await;
    app.wait_status(&id, "sent").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.got().len(), before);
    app.stop().await;
}

async fn another_tenant_finds_nothing(backend: Backend) {
    let Some(app) = start(backend).await else {
        return;
    };
    let (_rx, url) = Receiver::start().await;
    let (sub, _) = subscribe(&app, &url, json!([])).await;
    let policy = include_str!("../../../examples/policies/acme.toml")
        .replace("tenant = \"acme\"", "tenant = \"globex\"");
    let (b_sender, b_admin) = app.other_tenant_keys("globex", &policy).await;
    let path = format!("/v1/event-subscriptions/{sub}");
    assert_eq!(app.get(&path, &b_admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&format!("{path}/attempts"), &b_admin).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post(&format!("{path}/rotate-secret"), &b_admin, json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&path, &b_admin).await.status,
        StatusCode::NOT_FOUND
    );
    let listed = app.get("/v1/event-subscriptions", &b_admin).await;
    assert_eq!(listed.body["subscriptions"], json!([]), "{}", listed.text);
    // A sender key may not manage subscriptions.
    assert_eq!(
        app.get("/v1/event-subscriptions", &b_sender).await.status,
        StatusCode::FORBIDDEN
    );
    // A's own admin still sees it, and deletes it.
    let listed = app.get("/v1/event-subscriptions", &app.admin).await;
    assert_eq!(listed.body["subscriptions"][0]["id"], sub.as_str());
    assert_eq!(app.delete(&path, &app.admin).await.status, StatusCode::OK);
    assert_eq!(
        app.get(&path, &app.admin).await.status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

async fn bad_subscriptions_are_refused_naming_the_field(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    for (body, field) in [
        (json!({ "url": "http://127.0.0.1:9/hook" }), "`url`"),
        (json!({ "url": "http://example.com/hook" }), "`url`"),
        (
            json!({ "url": "https://user:pw@example.com/hook" }),
            "`url`",
        ),
        (json!({ "url": "not a url" }), "`url`"),
        // Inward addresses: the cloud's metadata service, a private
        // network, loopback by name — refused unless the deployment allows
        // private networks.
        (
            json!({ "url": "https://169.254.169.254/latest/meta-data" }),
            "private",
        ),
        (json!({ "url": "https://10.0.0.7:8443/hook" }), "private"),
        (json!({ "url": "https://localhost/hook" }), "private"),
        (
            json!({ "url": "https://example.com/hook", "event_types": ["message.sent"] }),
            "`event_types/0`",
        ),
    ] {
        let a = app.post("/v1/event-subscriptions", &app.admin, body).await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
        assert!(a.text.contains(field), "{}", a.text);
        assert!(!a.text.contains("pw@"), "{}", a.text);
    }
    let listed = app.get("/v1/event-subscriptions", &app.admin).await;
    assert_eq!(
        listed.body["subscriptions"],
        json!([]),
        "nothing was written"
    );
    let ok = app
        .post(
            "/v1/event-subscriptions",
            &app.admin,
            json!({ "url": "https://hooks.example.com/ladder" }),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    // A tenant holds at most 20: every audited fact writes a row per
    // subscription inside the request's transaction.
    for n in 1..20 {
        let more = app
            .post(
                "/v1/event-subscriptions",
                &app.admin,
                json!({ "url": format!("https://hooks.example.com/ladder/{n}") }),
            )
            .await;
        assert_eq!(more.status, StatusCode::CREATED, "{}", more.text);
    }
    let over = app
        .post(
            "/v1/event-subscriptions",
            &app.admin,
            json!({ "url": "https://hooks.example.com/ladder/21" }),
        )
        .await;
    assert_eq!(over.status, StatusCode::CONFLICT, "{}", over.text);
    assert_eq!(over.body["error"]["code"], "too_many_subscriptions");
    let mut shown = ok.body["subscription"].clone();
    assert!(shown["id"].as_str().unwrap().starts_with("evs_"));
    for volatile in ["id", "created_at", "updated_at"] {
        shown[volatile] = json!("[redacted]");
    }
    insta::assert_json_snapshot!("subscription_created", shown);
    app.stop().await;
}

async fn overrides_and_revocations_are_announced(backend: Backend) {
    let Some(app) = start(backend).await else {
        return;
    };
    let (rx, url) = Receiver::start().await;
    let types = json!(["override.set", "override.cleared", "message.revoked"]);
    let (_, secret) = subscribe(&app, &url, types).await;
    let set = json!({ "id": "sms-off", "channel": "sms", "effect": "disable",
                      "reason": "carrier incident", "expires_in": "4h" });
    let o = app.post("/v1/overrides", &app.admin, set).await;
    assert_eq!(o.status, StatusCode::CREATED, "{}", o.text);
    let del = app.delete("/v1/overrides/sms-off", &app.admin).await;
    assert_eq!(del.status, StatusCode::OK, "{}", del.text);
    let r = app.recipient("emp-revoke").await;
    let id = send(&app, "ev-revoke", &r).await;
    let rev = app
        .post(&format!("/v1/messages/{id}/revoke"), &app.sender, json!({}))
        .await;
    assert!(rev.status.is_success(), "{}", rev.text);
    let got = rx.wait("three events", |g| g.len() >= 3).await;
    let bodies: Vec<Value> = got
        .iter()
        .map(|d| {
            assert!(verify_rust(&secret, d));
            assert!(!d.body.contains("carrier incident"), "{}", d.body);
            serde_json::from_str(&d.body).unwrap()
        })
        .collect();
    let of = |t: &str| bodies.iter().find(|b| b["type"] == t).unwrap()["data"].clone();
    let set = of("override.set");
    assert_eq!(set["override_id"], "sms-off", "{set:#}");
    assert_eq!(set["channel"], "sms");
    assert_eq!(set["effect"], "disable");
    assert_eq!(of("override.cleared")["cause"], "cleared");
    assert_eq!(of("message.revoked")["message_id"], id.as_str());
    app.stop().await;
}

both_backends!(
    overrides_and_revocations_are_announced,
    deliveries_are_signed_and_carry_no_content,
    a_refused_delivery_is_retried_under_the_same_id,
    failed_events_are_marked_and_can_be_sent_again,
    a_rotated_secret_signs_beside_the_old_one,
    the_type_filter_holds,
    another_tenant_finds_nothing,
    bad_subscriptions_are_refused_naming_the_field,
);
