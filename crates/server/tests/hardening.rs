//! Regression tests for the edge defects of issue 9, one per bug, each on
//! SQLite and PostgreSQL: NUL and control characters answered 500 or
//! stored, an idempotency key that is not UTF-8 called "missing", an
//! override that never expires, a policy revision going backwards, a
//! revoked message still reporting `read`, decisions counted twice in
//! `/metrics`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use serde_json::{Value, json};
use support::{Backend, StatusCode, TestApp};

/// The one error envelope, with a code.
fn error_code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no envelope: {body:#}"))
}

async fn nul_in_ids_and_fields_is_a_400_not_a_500(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let before = app.written_rows().await;
    for path in [
        "/v1/messages/msg_%00",
        "/v1/messages/msg_%00/explain",
        "/v1/recipients/rcp_%00",
        "/v1/threads/%00",
        "/v1/messages/msg_0196f0c4a2b37d1e8f00112233445566%00",
    ] {
        let a = app.get(path, &app.sender).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}: {}", a.text);
        assert_eq!(error_code(&a.body), "invalid_id", "{path}");
        assert!(!a.text.contains('\u{0}'), "{path}: {}", a.text);
    }
    for (path, body) in [
        (
            "/v1/recipients",
            json!({"external_id": "a\u{0}b", "email": "a@example.com"}),
        ),
        (
            "/v1/recipients",
            json!({"external_id": "ok-1", "email": "a\u{0}b@example.com"}),
        ),
        (
            "/v1/recipients",
            json!({"external_id": "ok-2", "phone": "+1555\u{0}0100"}),
        ),
        (
            "/v1/messages/msg_0196f0c4a2b37d1e8f00112233445566/confirm",
            json!({"token": "\u{0}"}),
        ),
        ("/v1/devices/dev_%00/challenge", json!({})),
    ] {
        let a = app.post(path, &app.sender, body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}: {}", a.text);
        assert!(!a.text.contains('\u{0}'), "{path}: {}", a.text);
    }
    let a = app
        .request(
            reqwest::Method::POST,
            "/v1/messages",
            Some(&app.sender),
            Some(json!({"recipient": "rcp_\u{0}", "class": "payroll", "body": "x"})),
            &[("idempotency-key", "nul-1")],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert!(a.text.contains("`/recipient`"), "{}", a.text);
    // A well-formed recipient id of the wrong kind names the field.
    let a = app
        .request(
            reqwest::Method::POST,
            "/v1/messages",
            Some(&app.sender),
            Some(json!({"recipient": "msg_0196f0c4a2b37d1e8f00112233445566", "class": "payroll", "body": "x"})),
            &[("idempotency-key", "nul-2")],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert!(
        a.text.contains("field `recipient` is not a recipient id"),
        "{}",
        a.text
    );
    assert_eq!(app.written_rows().await, before, "a refusal wrote rows");
    app.stop().await;
}

async fn non_utf8_idempotency_key_names_its_encoding(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = app.recipient("emp-utf8").await;
    let resp = app
        .client
        .post(format!("{}/v1/messages", app.base))
        .bearer_auth(&app.sender)
        .header(
            "idempotency-key",
            reqwest::header::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        )
        .json(&json!({"recipient": r, "class": "payroll", "body": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "invalid_header_encoding", "{body:#}");
    assert!(body.to_string().contains("idempotency-key"), "{body:#}");
    // A body over the limit leaves in the same envelope.
    let big = "x".repeat(300 * 1024);
    let a = app
        .request(
            reqwest::Method::POST,
            "/v1/recipients",
            Some(&app.sender),
            Some(json!({ "external_id": big })),
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.text);
    assert_eq!(error_code(&a.body), "payload_too_large");
    app.stop().await;
}

async fn override_without_end_is_refused_and_renewal_is_bounded(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let before = app.written_rows().await;
    let base = json!({"id": "rcs-ios", "channel": "rcs", "os": "ios", "effect": "distrust_e2ee", "reason": "E2EE regression"});
    let with = |k: &str, v: &str| {
        let mut b = base.clone();
        b[k] = json!(v);
        b
    };
    for (body, code) in [
        (with("expires_in", "99999999999999d"), "invalid_override"),
        (with("expires", "9999-12-31T23:59:59Z"), "invalid_override"),
        (with("expires_in", "31d"), "override_too_long"),
    ] {
        let a = app.post("/v1/overrides", &app.admin, body).await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
        assert_eq!(error_code(&a.body), code, "{}", a.text);
    }
    assert_eq!(app.written_rows().await, before, "a refusal wrote rows");
    let a = app
        .post("/v1/overrides", &app.admin, with("expires_in", "24h"))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let first = a.body["override"]["expires"].as_i64().unwrap();
    let a = app
        .post(
            "/v1/overrides/rcs-ios/renew",
            &app.admin,
            json!({"expires_in": "31d"}),
        )
        .await;
    assert_eq!(error_code(&a.body), "override_too_long", "{}", a.text);
    let a = app
        .post(
            "/v1/overrides/rcs-ios/renew",
            &app.admin,
            json!({"expires_in": "20d"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(a.body["override"]["expires"].as_i64().unwrap() > first + 86_400 * 18);
    let a = app
        .post(
            "/v1/overrides/rcs-ios/renew",
            &app.sender,
            json!({"expires_in": "1d"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let kinds: Vec<String> = app
        .audit()
        .await
        .iter()
        .filter_map(|e| e["kind"].as_str().map(String::from))
        .collect();
    assert!(kinds.iter().any(|k| k == "override_renewed"), "{kinds:?}");
    let list = app.get("/v1/overrides", &app.admin).await;
    let states: Vec<&str> = list.body["overrides"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["state"].as_str())
        .collect();
    assert_eq!(
        states.iter().filter(|s| **s == "active").count(),
        1,
        "{states:?}"
    );
    app.stop().await;
}

async fn policy_revision_cannot_go_backwards_without_rollback(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let put = |body: String, query: &'static str| {
        let client = app.client.clone();
        let url = format!("{}/v1/policy{query}", app.base);
        let key = app.admin.clone();
        async move {
            let r = client
                .put(url)
                .bearer_auth(key)
                .body(body)
                .send()
                .await
                .unwrap();
            let a = support::checked("PUT", &format!("/v1/policy{query}"), r).await;
            (a.status, a.body)
        }
    };
    let v4 = ladder_server::app::DEMO_POLICY.to_string();
    let v5 = v4.replace("revision = 4", "revision = 5");
    let v3 = v4.replace("revision = 4", "revision = 3");
    let (status, body) = put(v5.clone(), "").await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let five = body["version"].as_str().unwrap().to_string();
    let (status, body) = put(v4.clone(), "").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body:#}");
    assert_eq!(error_code(&body), "revision_not_newer");
    assert_eq!(
        app.get("/v1/policy", &app.sender).await.body["version"],
        five.as_str()
    );
    // Rollback goes only to a version that was once in force.
    let (status, body) = put(v3, "?rollback=true").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:#}");
    assert_eq!(error_code(&body), "unknown_rollback_target");
    let (status, body) = put(v4, "?rollback=true").await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["revision"], 4);
    let (status, body) = put(v5, "?rollback=true").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:#}");
    assert_eq!(error_code(&body), "not_a_rollback");
    let rolled: Vec<Value> = app
        .audit()
        .await
        .into_iter()
        .filter(|e| e["kind"] == "policy_rolled_back")
        .collect();
    assert_eq!(rolled.len(), 1, "{rolled:#?}");
    app.stop().await;
}

async fn revoked_message_reports_revoked_not_read(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = app.recipient("emp-revoke").await;
    let sent = app.send("revoke-1", &r, "payroll", "Your payslip").await;
    let id = sent.body["id"].as_str().unwrap().to_string();
    app.wait_status(&id, "sent").await;
    let a = app
        .post(&format!("/v1/messages/{id}/revoke"), &app.sender, json!({}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let m = app.get(&format!("/v1/messages/{id}"), &app.sender).await;
    assert_eq!(m.body["status"], "revoked", "{:#}", m.body);
    app.stop().await;
}

/// Review finding: revoking a held message left its re-check queued, and
/// the re-check decided the message again (queued, escalated, a new
/// confirmation token) although it was revoked.
async fn a_revoked_held_message_is_never_decided_again(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .config(|c| c.delivery.hold_recheck_s = 1)
        .start()
        .await
    else {
        return;
    };
    // E-mail only: the portal step cannot be opened, so `transactional` holds.
    let r = app
        .post(
            "/v1/recipients",
            &app.sender,
            json!({"external_id": "emp-held", "email": "held@example.com"}),
        )
        .await;
    let r = r.body["id"].as_str().unwrap().to_string();
    let held = app.send("held-1", &r, "transactional", "Your shift").await;
    assert_eq!(held.body["status"], "held", "{}", held.text);
    let id = held.body["id"].as_str().unwrap().to_string();
    let a = app
        .post(&format!("/v1/messages/{id}/revoke"), &app.sender, json!({}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    // Past the hold's re-check (1 s): still revoked, never decided again.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let m = app.get(&format!("/v1/messages/{id}"), &app.sender).await;
    assert_eq!(m.body["status"], "revoked", "{:#}", m.body);
    let after_revocation: Vec<String> = app
        .audit()
        .await
        .iter()
        .filter(|e| e["subject"] == id.as_str())
        .filter_map(|e| e["kind"].as_str().map(String::from))
        .skip_while(|k| k != "message_revoked")
        .collect();
    assert!(
        !after_revocation
            .iter()
            .any(|k| k == "redecided" || k == "decided"),
        "{after_revocation:?}"
    );
    app.stop().await;
}

/// Counts one labelled series in the text exposition.
fn series(metrics: &str, name: &str, label: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn decisions_are_counted_once_per_message(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    // A tenant of its own whose class names no other test uses, so the
    // process-wide counters can be read exactly.
    let class = format!(
        "once_{}",
        if backend == Backend::Sqlite {
            "sqlite"
        } else {
            "postgres"
        }
    );
    let policy = ladder_server::app::DEMO_POLICY
        .replace("tenant = \"acme\"", "tenant = \"counted\"")
        .replace("name = \"marketing\"", &format!("name = \"{class}\""));
    let key = app.other_tenant("counted", &policy).await;
    let r = app
        .post(
            "/v1/recipients",
            &key,
            json!({"external_id": "c-1", "email": "c@example.com"}),
        )
        .await;
    let r = r.body["id"].as_str().unwrap().to_string();
    let a = app
        .request(
            reqwest::Method::POST,
            "/v1/messages",
            Some(&key),
            Some(json!({"recipient": r, "class": class, "body": "hello"})),
            &[("idempotency-key", "once-1")],
        )
        .await;
    let id = a.body["id"].as_str().unwrap().to_string();
    let status = app.get(&format!("/v1/messages/{id}"), &key).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut now = status.body["status"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    while now == "queued" && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        now = app.get(&format!("/v1/messages/{id}"), &key).await.body["status"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    }
    assert_ne!(now, "queued", "the message was never handed over");
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let label = format!("class=\"{class}\"");
    assert_eq!(
        series(&text, "ladder_decisions_total", &label),
        1.0,
        "{text}"
    );
    assert!(text.contains("# HELP ladder_decisions_total"), "{text}");
    app.stop().await;
}

both_backends!(
    nul_in_ids_and_fields_is_a_400_not_a_500,
    non_utf8_idempotency_key_names_its_encoding,
    override_without_end_is_refused_and_renewal_is_bounded,
    policy_revision_cannot_go_backwards_without_rollback,
    revoked_message_reports_revoked_not_read,
    a_revoked_held_message_is_never_decided_again,
    decisions_are_counted_once_per_message,
);
