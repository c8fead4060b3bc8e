//! Message lifecycles beyond the straight path — held until a capability
//! appears, escalated, confirmed after an asynchronous downgrade — and
//! several requests or nodes at once: concurrent retries of one
//! idempotency key, and two nodes sharing one PostgreSQL database.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use ladder_channels::sandbox::Failure;
use ladder_core::Channel;
use serde_json::json;
use support::{Backend, StatusCode, TestApp};

both_backends!(
    held_message_is_delivered_when_a_capability_appears,
    nothing_qualifies_for_payroll_so_it_escalates,
    concurrent_retries_of_one_key_make_one_message,
    downgrade_after_a_failure_waits_for_a_fresh_confirmation_token,
);

async fn held_message_is_delivered_when_a_capability_appears(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .config(|c| c.delivery.hold_recheck_s = 1)
        .start()
        .await
    else {
        return;
    };
    // No e-mail and no device: transactional has nowhere to go yet.
    let a = app
        .post(
            "/v1/recipients",
            &app.sender,
            json!({ "external_id": "emp-2" }),
        )
        .await;
    let r = a.body["id"].as_str().unwrap().to_string();
    let s = app.send("h-1", &r, "transactional", "parcel").await;
    assert_eq!(s.status, StatusCode::ACCEPTED, "{}", s.text);
    assert_eq!(s.body["outcome"], "hold");
    let id = s.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        app.get(&format!("/v1/messages/{id}"), &app.sender)
            .await
            .body["status"],
        "held"
    );
    let (device, key) = app.enrol(&r, 17).await;
    app.handshake(&device, &key).await;
    let m = app.wait_status(&id, "sent").await;
    assert_eq!(m["decision"]["outcome"]["route"]["container"], "in_app");
    assert!(
        m["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "redecided")
    );
    app.stop().await;
}

async fn nothing_qualifies_for_payroll_so_it_escalates(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let a = app
        .post(
            "/v1/recipients",
            &app.sender,
            json!({ "external_id": "emp-3" }),
        )
        .await;
    let r = a.body["id"].as_str().unwrap().to_string();
    let s = app.send("e-1", &r, "payroll", "salary").await;
    assert_eq!(s.status, StatusCode::ACCEPTED, "{}", s.text);
    assert_eq!(s.body["outcome"], "escalate");
    assert_eq!(s.body["status"], "escalated");
    let audit = app.audit().await;
    let d = audit.iter().find(|e| e["kind"] == "decision").unwrap();
    assert_eq!(d["details"]["outcome"], "escalate");
    assert!(
        d["details"]["recipient"]
            .as_str()
            .unwrap()
            .starts_with("p:")
    );
    app.stop().await;
}

async fn concurrent_retries_of_one_key_make_one_message(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = app.recipient("emp-1").await;
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let app = app.clone();
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            app.send("race", &r, "transactional", "once").await
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        let a = t.await.unwrap();
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
        ids.push(a.body["id"].as_str().unwrap().to_string());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry names the same message: {ids:?}");
    app.wait_status(&ids[0], "sent").await;
    assert_eq!(app.deliveries(&ids[0]).await.len(), 1);
    let decisions = app
        .audit()
        .await
        .into_iter()
        .filter(|e| e["kind"] == "decision")
        .count();
    assert_eq!(decisions, 1);
    std::sync::Arc::into_inner(app).unwrap().stop().await;
}

/// Payroll went in-app, end to end encrypted. Then the in-app provider
/// starts rejecting: the next payroll notice is decided in-app, fails, and
/// the re-decision lands on the portal — below what the thread showed. The
/// message waits for the sender, who fetches a fresh token (nobody was
/// waiting on the first answer) and confirms.
async fn downgrade_after_a_failure_waits_for_a_fresh_confirmation_token(backend: Backend) {
    let Some(mut app) = TestApp::start(backend).await else {
        return;
    };
    let r = app.recipient("emp-1").await;
    let (device, key) = app.enrol(&r, 19).await;
    app.handshake(&device, &key).await;
    let s = app.send("c-1", &r, "payroll", "salary").await;
    assert_eq!(s.status, StatusCode::ACCEPTED, "{}", s.text);
    let first = s.body["id"].as_str().unwrap().to_string();
    let m = app.wait_status(&first, "sent").await;
    assert_eq!(m["decision"]["outcome"]["route"]["container"], "in_app");
    assert_eq!(m["thread"]["last_delivered_assurance"], "e2ee", "{m:#}");

    app.restart(|c| {
        c.channels
            .sandbox
            .fail
            .insert(Channel::InApp, Failure::Permanent);
    })
    .await;
    let s = app.send("c-2", &r, "payroll", "salary 2").await;
    assert_eq!(s.status, StatusCode::ACCEPTED, "{}", s.text);
    let id = s.body["id"].as_str().unwrap().to_string();
    let m = app.wait_status(&id, "awaiting_confirmation").await;
    assert_eq!(
        m["decision"]["outcome"]["route"]["container"], "portal",
        "{m:#}"
    );
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|e| e["kind"] == "fallback" && e["subject"] == id.as_str())
    );

    let none = app
        .post(
            &format!("/v1/messages/{first}/confirmation-token"),
            &app.sender,
            json!({}),
        )
        .await;
    assert_eq!(none.status, StatusCode::CONFLICT, "{}", none.text);
    let t = app
        .post(
            &format!("/v1/messages/{id}/confirmation-token"),
            &app.sender,
            json!({}),
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    let token = t.body["confirmation_token"].as_str().unwrap();
    let ok = app
        .post(
            &format!("/v1/messages/{id}/confirm"),
            &app.sender,
            json!({ "token": token }),
        )
        .await;
    assert_eq!(ok.status, StatusCode::ACCEPTED, "{}", ok.text);
    let m = app.wait_status(&id, "sent").await;
    assert_eq!(
        m["decision"]["outcome"]["route"]["container"], "portal",
        "{m:#}"
    );
    // The failure is remembered: the confirmed decision did not go back to it.
    assert_eq!(m["failed"][0]["channel"], "in_app", "{m:#}");
    app.stop().await;
}

/// Two nodes on one PostgreSQL database: work is claimed by one node only
/// (each message attempted once), and an override set through one node
/// applies to the other's next decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_postgres_database() {
    let Some(app) = TestApp::start(Backend::Postgres).await else {
        return;
    };
    let mut config = app.config.clone();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = app.dir.path().join("node-b");
    config.keyring = Some(app.state().keyring.path().to_path_buf());
    // The keyring file is owned by node A's process here; node B reads the
    // same keys, as a copied keyring would give it.
    let b = ladder_server::start(config).await.unwrap();
    assert!(b.demo.is_none(), "node B joins the existing tenant");
    let b_base = format!("http://{}", b.addr);

    let r = app.recipient("emp-1").await;
    let (device, key) = app.enrol(&r, 23).await;
    app.handshake(&device, &key).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let base = if i % 2 == 0 {
            app.base.clone()
        } else {
            b_base.clone()
        };
        let resp = app
            .client
            .post(format!("{base}/v1/messages"))
            .header("authorization", format!("Bearer {}", app.sender))
            .header("idempotency-key", format!("n-{i}"))
            .json(&json!({ "recipient": r, "class": "transactional", "body": "multi-node" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        let body: serde_json::Value = resp.json().await.unwrap();
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        let m = app.wait_status(id, "sent").await;
        let attempts = m["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "delivery_attempt")
            .count();
        // in_app payload + push notice: two provider calls, each once.
        assert_eq!(attempts, 2, "{m:#}");
    }

    // An override set through node B steers node A's next decision.
    let o = app
        .client
        .post(format!("{b_base}/v1/overrides"))
        .header("authorization", format!("Bearer {}", app.admin))
        .json(&json!({ "id": "inapp-off", "channel": "in_app", "effect": "disable", "reason": "drill", "expires_in": "1h" }))
        .send()
        .await
        .unwrap();
    assert_eq!(o.status(), StatusCode::CREATED);
    let a = app.send("n-after", &r, "transactional", "after").await;
    assert_eq!(
        a.body["decision"]["outcome"]["route"]["container"], "portal",
        "{}",
        a.text
    );
    b.shutdown().await;
    app.stop().await;
}

/// The in-app container took the payload and only the push wake-up failed:
/// the message is with the recipient and is not sent again down the ladder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_wake_up_does_not_resend_a_delivered_payload() {
    let Some(app) = TestApp::builder(Backend::Sqlite)
        .config(|c| {
            c.channels
                .sandbox
                .fail
                .insert(Channel::Push, Failure::Permanent);
        })
        .start()
        .await
    else {
        return;
    };
    let r = app.recipient("emp-1").await;
    let (device, key) = app.enrol(&r, 29).await;
    app.handshake(&device, &key).await;
    let s = app.send("w-1", &r, "transactional", "statement").await;
    let id = s.body["id"].as_str().unwrap().to_string();
    let m = app.wait_status(&id, "sent").await;
    assert_eq!(
        m["decision"]["outcome"]["route"]["container"], "in_app",
        "{m:#}"
    );
    assert!(m["failed"].as_array().unwrap().is_empty());
    // One sealed copy for the one device; the failed wake-up sent nothing else.
    let copies: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE message_id = $1")
        .bind(&id)
        .fetch_one(app.state().store.pool())
        .await
        .unwrap();
    assert_eq!(copies, 1);
    assert!(
        app.deliveries(&id).await.is_empty(),
        "no other channel was used"
    );
    app.stop().await;
}
