//! The contract walk, on SQLite and PostgreSQL: every route of
//! `api::ROUTES` is called, with a success and an error answer, and every
//! answer is checked against the OpenAPI document by the test app
//! (`support::contract`). The walk then asserts it covered every route, so
//! a route added without contract coverage fails here.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Answer, Backend, StatusCode, TestApp, now_s};

both_backends!(every_route_answers_as_documented);

/// Routes whose success is covered by another suite: a provider webhook
/// is signed by that provider's fake (`tests/channels.rs`).
const SUCCESS_ELSEWHERE: [(&str, &str); 2] = [
    ("post", "/v1/webhooks/{channel}/{tenant}"),
    ("post", "/v1/webhooks/{channel}"),
];

/// Routes nothing can make fail: liveness, readiness with a database up,
/// metrics without a token, and this document.
const NEVER_FAIL: [(&str, &str); 6] = [
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/v1/openapi.json"),
    ("get", "/v1/docs"),
    ("get", "/v1/docs/reference.css"),
];

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> Answer {
    app.request(method, path, key, body, &[]).await
}

async fn signed(
    app: &TestApp,
    method: Method,
    path: &str,
    device: &str,
    key: &ed25519_dalek::SigningKey,
) -> Answer {
    app.device_request(method, path, device, key, path, now_s())
        .await
}

fn ok(a: &Answer) {
    assert!(a.status.is_success(), "{}: {}", a.status, a.text);
}

async fn every_route_answers_as_documented(backend: Backend) {
    // The event subscription below points at loopback, where nothing
    // listens: the deployment must allow private networks for it.
    let Some(app) = TestApp::builder(backend)
        .config(|c| c.events.allow_private_networks = true)
        .start()
        .await
    else {
        return;
    };
    let (s, adm) = (app.sender.clone(), app.admin.clone());
    let (s, adm) = (Some(s.as_str()), Some(adm.as_str()));

    // Operations.
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/openapi.json",
        "/v1/docs",
        "/v1/docs/reference.css",
    ] {
        ok(&call(&app, Method::GET, path, None, None).await);
    }

    // An event subscription, before anything happens that it hears of.
    // Nothing listens on its port: every delivery attempt fails, which is
    // what gives the attempts list and the retry something to show.
    let created = call(
        &app,
        Method::POST,
        "/v1/event-subscriptions",
        adm,
        Some(json!({ "url": "https://127.0.0.1:9/hooks", "event_types": ["message.accepted"] })),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let sub = created.body["subscription"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sub_path = format!("/v1/event-subscriptions/{sub}");
    ok(&call(&app, Method::GET, "/v1/event-subscriptions", adm, None).await);
    ok(&call(&app, Method::GET, &sub_path, adm, None).await);
    ok(&call(
        &app,
        Method::PATCH,
        &sub_path,
        adm,
        Some(json!({ "enabled": true })),
    )
    .await);
    ok(&call(
        &app,
        Method::POST,
        &format!("{sub_path}/rotate-secret"),
        adm,
        None,
    )
    .await);

    // Recipients, devices, a handshake.
    let r = app.recipient("contract-1").await;
    ok(&call(&app, Method::GET, "/v1/recipients", s, None).await);
    ok(&call(&app, Method::GET, &format!("/v1/recipients/{r}"), s, None).await);
    let (device, key) = app.enrol(&r, 11).await;
    let h = app.handshake(&device, &key).await;
    ok(&h);

    // A message by the in-app route, fetched and acknowledged by the device.
    let sent = app.send("c-1", &r, "payroll", "salary").await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    let id = sent.body["id"].as_str().unwrap().to_string();
    let thread = sent.body["thread"].as_str().unwrap().to_string();
    app.wait_status(&id, "sent").await;
    ok(&call(&app, Method::GET, "/v1/messages", s, None).await);
    ok(&call(
        &app,
        Method::GET,
        &format!("/v1/messages/{id}/explain"),
        s,
        None,
    )
    .await);
    ok(&signed(&app, Method::GET, "/v1/device/me", &device, &key).await);
    let inbox = signed(&app, Method::GET, "/v1/device/inbox", &device, &key).await;
    ok(&inbox);
    let ack = format!("/v1/device/inbox/{id}/ack");
    ok(&signed(&app, Method::POST, &ack, &device, &key).await);
    assert!(
        !signed(&app, Method::POST, &ack, &device, &key)
            .await
            .status
            .is_success()
    );
    ok(&call(&app, Method::GET, &format!("/v1/threads/{thread}"), s, None).await);
    ok(&call(&app, Method::GET, "/v1/threads", s, None).await);
    ok(&call(&app, Method::GET, "/v1/sandbox/deliveries", s, None).await);

    // A downgrade: confirmation required, a fresh token, a confirmation.
    let o = app
        .post(
            "/v1/overrides",
            &app.admin,
            json!({ "id": "inapp-distrust", "channel": "in_app", "effect": "distrust_e2ee", "reason": "incident", "expires_in": "4h" }),
        )
        .await;
    assert_eq!(o.status, StatusCode::CREATED, "{}", o.text);
    let pending = app.send("c-2", &r, "payroll", "salary 2").await;
    assert_eq!(pending.status, StatusCode::CONFLICT, "{}", pending.text);
    assert_eq!(pending.body["outcome"], "confirmation_required");
    let pid = pending.body["id"].as_str().unwrap().to_string();
    let fresh = call(
        &app,
        Method::POST,
        &format!("/v1/messages/{pid}/confirmation-token"),
        s,
        None,
    )
    .await;
    ok(&fresh);
    let token = fresh.body["confirmation_token"]
        .as_str()
        .unwrap()
        .to_string();
    let confirmed = call(
        &app,
        Method::POST,
        &format!("/v1/messages/{pid}/confirm"),
        s,
        Some(json!({ "token": token })),
    )
    .await;
    ok(&confirmed);
    assert!(confirmed.body["outcome"].is_string(), "{}", confirmed.text);
    let status = call(&app, Method::GET, &format!("/v1/messages/{pid}"), s, None).await;
    ok(&status);
    assert!(status.body["outcome"].is_string(), "{}", status.text);
    ok(&call(&app, Method::GET, "/v1/overrides", s, None).await);
    ok(&call(
        &app,
        Method::POST,
        "/v1/overrides/inapp-distrust/renew",
        adm,
        Some(json!({ "expires_in": "2h" })),
    )
    .await);
    ok(&call(
        &app,
        Method::DELETE,
        "/v1/overrides/inapp-distrust",
        adm,
        None,
    )
    .await);

    // The escalation queue: SMS off leaves payroll nothing to go by.
    let off = app
        .post(
            "/v1/overrides",
            &app.admin,
            json!({ "id": "sms-off", "channel": "sms", "effect": "disable", "reason": "carrier incident", "expires_in": "4h" }),
        )
        .await;
    assert_eq!(off.status, StatusCode::CREATED, "{}", off.text);
    let r2 = app.recipient("contract-2").await;
    let esc = |idem: &'static str, class: &'static str| {
        let app = &app;
        let r2 = r2.clone();
        async move {
            let a = app.send(idem, &r2, class, "confidential").await;
            assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
            a.body["id"].as_str().unwrap().to_string()
        }
    };
    let held = esc("c-h", "transactional").await;
    let escalated = esc("c-e1", "payroll").await;
    let escalated2 = esc("c-e2", "payroll").await;
    ok(&call(&app, Method::GET, "/v1/escalations", s, None).await);
    ok(&call(
        &app,
        Method::POST,
        &format!("/v1/escalations/{held}/extend"),
        adm,
        Some(json!({ "until": now_s() + 3600, "reason": "waiting" })),
    )
    .await);
    ok(&call(
        &app,
        Method::POST,
        &format!("/v1/escalations/{escalated2}/block"),
        adm,
        Some(json!({ "reason": "not now" })),
    )
    .await);
    ok(&call(&app, Method::DELETE, "/v1/overrides/sms-off", adm, None).await);
    ok(&call(
        &app,
        Method::POST,
        &format!("/v1/escalations/{escalated}/send"),
        adm,
        Some(json!({ "route": "portal+email_notice", "reason": "deadline" })),
    )
    .await);

    // Policy and its history.
    let p = call(&app, Method::GET, "/v1/policy", s, None).await;
    ok(&p);
    let rev = p.body["revision"].as_i64().unwrap();
    let put = app
        .client
        .put(format!("{}/v1/policy", app.base))
        .bearer_auth(&app.admin)
        .body(ladder_server::app::DEMO_POLICY)
        .send()
        .await
        .unwrap();
    ok(&support::checked("PUT", "/v1/policy", put).await);
    ok(&call(&app, Method::GET, "/v1/policy/versions", s, None).await);
    ok(&call(
        &app,
        Method::GET,
        &format!("/v1/policy/versions/{rev}"),
        s,
        None,
    )
    .await);
    ok(&call(
        &app,
        Method::GET,
        &format!("/v1/policy/diff?from={rev}&to={rev}"),
        s,
        None,
    )
    .await);

    // Statistics.
    ok(&call(&app, Method::GET, "/v1/stats", s, None).await);
    ok(&call(&app, Method::GET, "/v1/stats/classes/payroll", s, None).await);

    // The audit log, its checkpoints and proofs.
    ok(&call(&app, Method::GET, "/v1/audit", adm, None).await);
    let cp = call(&app, Method::POST, "/v1/audit/checkpoints", adm, None).await;
    ok(&cp);
    ok(&call(&app, Method::GET, "/v1/audit/checkpoints", adm, None).await);
    let log = call(&app, Method::GET, "/v1/audit/log", s, None).await;
    ok(&log);
    ok(&call(&app, Method::GET, "/v1/audit/checkpoint", s, None).await);
    let size = log.body["checkpoint"]["size"].as_u64().unwrap();
    ok(&call(
        &app,
        Method::GET,
        "/v1/audit/proof/inclusion?index=0",
        s,
        None,
    )
    .await);
    ok(&call(
        &app,
        Method::GET,
        &format!("/v1/audit/proof/consistency?from=1&to={size}"),
        s,
        None,
    )
    .await);

    // The subscription heard of the message; its failed attempt is listed
    // and can be owed again.
    let attempts_path = format!("{sub_path}/attempts");
    let mut attempt = None;
    for _ in 0..100 {
        let page = call(&app, Method::GET, &attempts_path, adm, None).await;
        ok(&page);
        if let Some(a) = page.body["attempts"][0]["id"].as_str() {
            attempt = Some(a.to_string());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let attempt = attempt.expect("a delivery attempt within 5 s");
    let retried = call(
        &app,
        Method::POST,
        &format!("{attempts_path}/{attempt}/retry"),
        adm,
        None,
    )
    .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.text);
    ok(&call(&app, Method::DELETE, &sub_path, adm, None).await);

    // Revocations last: they change what the rest could use.
    ok(&call(
        &app,
        Method::POST,
        &format!("/v1/messages/{id}/revoke"),
        s,
        None,
    )
    .await);
    ok(&call(
        &app,
        Method::POST,
        &format!("/v1/devices/{device}/revoke"),
        s,
        None,
    )
    .await);

    // An error answer for every route that can fail: without a key for
    // the API, unsigned for the device, an unknown channel for webhooks.
    let mut errors = 0;
    for (method, path) in ladder_server::api::ROUTES {
        if NEVER_FAIL.contains(&(*method, *path)) {
            continue;
        }
        let concrete = path
            .replace("{channel}", "pigeon")
            .replace("{tenant}", "acme")
            .replace("{class}", "payroll")
            .replace("{revision}", "1")
            .replace("{message_id}", &id)
            .replace("{attempt_or_event_id}", "x")
            .replace("{id}", "x");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let a = call(&app, method, &concrete, None, None).await;
        assert!(
            a.status.is_client_error(),
            "{path}: {} {}",
            a.status,
            a.text
        );
        assert!(a.body["error"]["code"].is_string(), "{path}: {}", a.text);
        assert!(
            a.body.get("outcome").is_none(),
            "an error carries no outcome"
        );
        errors += 1;
    }
    assert!(errors > 40);

    // The check itself can fail: a body off its schema, an undocumented
    // status, an undocumented route.
    for (path, status, body) in [
        ("/healthz", 200, r#"{"status":1}"#),
        ("/healthz", 200, r#"{"status":"ok","extra":true}"#),
        ("/healthz", 418, r#"{"status":"ok"}"#),
        ("/v1/nowhere", 200, r#"{}"#),
    ] {
        let refused = std::panic::catch_unwind(|| {
            support::contract::check("GET", path, status, "application/json", body)
        });
        assert!(
            refused.is_err(),
            "{path} {status} {body} passed the contract check"
        );
    }

    // Every route was called, with a success and an error.
    let seen = support::contract::seen().lock().unwrap().clone();
    let mut missing = Vec::new();
    for (method, path) in ladder_server::api::ROUTES {
        let statuses: Vec<u16> = seen
            .iter()
            .filter(|(m, p, _)| m == method && p == path)
            .map(|(_, _, s)| *s)
            .collect();
        let success = statuses.iter().any(|s| (200..300).contains(s));
        let error = statuses.iter().any(|s| (400..500).contains(s));
        if !success && !SUCCESS_ELSEWHERE.contains(&(*method, *path)) {
            missing.push(format!("{} {path}: no success", method.to_uppercase()));
        }
        if !error && !NEVER_FAIL.contains(&(*method, *path)) {
            missing.push(format!("{} {path}: no error", method.to_uppercase()));
        }
    }
    assert!(
        missing.is_empty(),
        "routes without contract coverage (add them to tests/contract.rs):\n  {}",
        missing.join("\n  ")
    );
    app.stop().await;
}
