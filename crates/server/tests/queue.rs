//! The escalation queue on SQLite and PostgreSQL: escalated and held
//! messages listed with their explanation and paged like every list; an
//! operator sends by a route the core permits now (and only then), blocks,
//! or moves a hold's next look, each with a reason and audited with the
//! operator's identity; another tenant sees and touches none of it.
//!
//! The demo tenant's policy (`examples/policies/acme.toml`) escalates
//! `payroll` and holds `transactional` when nothing qualifies; switching
//! SMS off with an override leaves a recipient with e-mail and phone no
//! portal they could open (the code goes by the other channel), so both
//! land in the queue.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use serde_json::{Value, json};
use support::{Backend, StatusCode, TestApp, now_s};

async fn sms_off(app: &TestApp) {
    let o = app
        .post(
            "/v1/overrides",
            &app.admin,
            json!({ "id": "sms-off", "channel": "sms", "effect": "disable", "reason": "carrier incident", "expires_in": "4h" }),
        )
        .await;
    assert_eq!(o.status, StatusCode::CREATED, "{}", o.text);
}

async fn sms_on(app: &TestApp) {
    let del = app.delete("/v1/overrides/sms-off", &app.admin).await;
    assert_eq!(del.status, StatusCode::OK, "{}", del.text);
}

/// Sends and checks the outcome; answers the message id.
async fn queued(app: &TestApp, idem: &str, r: &str, class: &str, outcome: &str) -> String {
    let a = app.send(idem, r, class, "confidential body").await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(a.body["outcome"], outcome, "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

fn ids(body: &Value) -> Vec<String> {
    body["escalations"]
        .as_array()
        .unwrap_or_else(|| panic!("no `escalations` in {body:#}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

fn entries<'a>(audit: &'a [Value], kind: &str, subject: &str) -> Vec<&'a Value> {
    audit
        .iter()
        .filter(|e| e["kind"] == kind && e["subject"] == subject)
        .collect()
}

/// The admin key's identity as the audit log records it.
fn admin_actor(audit: &[Value]) -> String {
    audit.iter().find(|e| e["kind"] == "override_set").unwrap()["actor"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn an_operator_sends_an_escalated_message_only_by_a_route_the_core_permits_now(
    backend: Backend,
) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = app.recipient("emp-esc").await;
    sms_off(&app).await;
    let id = queued(&app, "esc-1", &r, "payroll", "escalate").await;

    let list = app.get("/v1/escalations", &app.sender).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let item = &list.body["escalations"][0];
    assert_eq!(item["id"], id.as_str());
    assert_eq!(item["kind"], "escalated");
    assert_eq!(item["next_look_at"], Value::Null);
    let explanation = item["explanation"].as_str().unwrap();
    assert!(
        explanation.contains("[no_step_up_channel]"),
        "{explanation}"
    );
    assert!(!list.text.contains("confidential body"));
    assert!(!list.text.contains("@example.com"));

    let path = format!("/v1/escalations/{id}/send");
    let body = json!({ "route": "portal+email_notice", "reason": "payroll deadline" });
    let as_sender = app.post(&path, &app.sender, body.clone()).await;
    assert_eq!(
        as_sender.status,
        StatusCode::FORBIDDEN,
        "{}",
        as_sender.text
    );
    let before = app.written_rows().await;
    for bad in [
        json!({ "route": "portal+email_notice" }),
        json!({ "route": "portal+email_notice", "reason": "" }),
        json!({ "route": "portal+email_notice", "reason": "   " }),
        json!({ "route": "portal+email_notice", "reason": "x".repeat(501) }),
        json!({ "route": "portal+email_notice", "reason": "line\nbreak" }),
        json!({ "route": "Portal!", "reason": "r" }),
    ] {
        let a = app.post(&path, &app.admin, bad.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
    }
    // While the override stands, the core skips the portal: refused, with why.
    let refused = app.post(&path, &app.admin, body.clone()).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert_eq!(refused.body["error"]["code"], "route_not_permitted");
    assert_eq!(
        refused.body["error"]["details"]["refusal"]["refusal"],
        "route_skipped"
    );
    // Never below the class minimum.
    let below = app
        .post(
            &path,
            &app.admin,
            json!({ "route": "sms", "reason": "just send it" }),
        )
        .await;
    assert_eq!(below.status, StatusCode::CONFLICT, "{}", below.text);
    assert_eq!(
        below.body["error"]["details"]["refusal"]["refusal"],
        "below_minimum"
    );
    assert!(below.text.contains("minimum"), "{}", below.text);
    let not_in_ladder = app
        .post(
            &path,
            &app.admin,
            json!({ "route": "in_app+email_notice", "reason": "r" }),
        )
        .await;
    assert_eq!(not_in_ladder.status, StatusCode::CONFLICT);
    assert_eq!(
        not_in_ladder.body["error"]["details"]["refusal"]["refusal"],
        "not_in_ladder"
    );
    assert_eq!(app.written_rows().await, before, "refusals change nothing");

    sms_on(&app).await;
    let sent = app.post(&path, &app.admin, body.clone()).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    assert_eq!(sent.body["action"], "sent");
    assert_eq!(sent.body["route"], "portal+email_notice");
    app.wait_status(&id, "sent").await;
    let channels: Vec<String> = app
        .deliveries(&id)
        .await
        .iter()
        .map(|d| d["channel"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(channels, ["email"], "the chosen route's notice only");

    let again = app.post(&path, &app.admin, body).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert_eq!(again.body["error"]["code"], "not_in_queue");
    assert!(ids(&app.get("/v1/escalations", &app.sender).await.body).is_empty());

    let audit = app.audit().await;
    let actor = admin_actor(&audit);
    let e = entries(&audit, "escalation_sent", &id);
    assert_eq!(e.len(), 1, "{audit:#?}");
    assert_eq!(e[0]["actor"], actor.as_str());
    assert_eq!(e[0]["details"]["reason"], "payroll deadline");
    assert_eq!(e[0]["details"]["route"], "portal+email_notice");
    let status = app
        .get(&format!("/v1/messages/{id}/explain"), &app.sender)
        .await;
    assert!(status.text.contains("operator"), "{}", status.text);
    app.stop().await;
}

async fn a_hold_is_extended_or_blocked_and_a_blocked_message_never_leaves(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = app.recipient("emp-hold").await;
    sms_off(&app).await;
    let held = queued(&app, "hold-1", &r, "transactional", "hold").await;
    let escalated = queued(&app, "esc-2", &r, "payroll", "escalate").await;

    let list = app.get("/v1/escalations?kind=held", &app.sender).await;
    assert_eq!(ids(&list.body), std::slice::from_ref(&held));
    assert!(list.body["escalations"][0]["next_look_at"].is_i64());
    assert!(list.body["escalations"][0]["hold_until"].is_i64());
    let list = app.get("/v1/escalations?kind=escalated", &app.sender).await;
    assert_eq!(ids(&list.body), std::slice::from_ref(&escalated));

    let now = now_s();
    let extend = |id: &str| format!("/v1/escalations/{id}/extend");
    for until in [now - 10, now + 31 * 86_400] {
        let a = app
            .post(
                &extend(&held),
                &app.admin,
                json!({ "until": until, "reason": "r" }),
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
        assert!(a.text.contains("`until`"), "{}", a.text);
    }
    let not_held = app
        .post(
            &extend(&escalated),
            &app.admin,
            json!({ "until": now + 3600, "reason": "r" }),
        )
        .await;
    assert_eq!(not_held.status, StatusCode::CONFLICT, "{}", not_held.text);
    assert_eq!(not_held.body["error"]["code"], "not_held");
    let ok = app
        .post(
            &extend(&held),
            &app.admin,
            json!({ "until": now + 3600, "reason": "waiting for the app" }),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.body["next_look_at"], now + 3600);
    let list = app.get("/v1/escalations?kind=held", &app.sender).await;
    assert_eq!(list.body["escalations"][0]["next_look_at"], now + 3600);

    let blocked = app
        .post(
            &format!("/v1/escalations/{held}/block"),
            &app.admin,
            json!({ "reason": "sent by post instead" }),
        )
        .await;
    assert_eq!(blocked.status, StatusCode::OK, "{}", blocked.text);
    assert_eq!(blocked.body["status"], "blocked");
    // The route opens again; the blocked message still never leaves.
    sms_on(&app).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    app.wait_status(&held, "blocked").await;
    assert!(app.deliveries(&held).await.is_empty());
    let again = app
        .post(
            &format!("/v1/escalations/{held}/block"),
            &app.admin,
            json!({ "reason": "r" }),
        )
        .await;
    assert_eq!(
        again.body["error"]["code"], "not_in_queue",
        "{}",
        again.text
    );

    let audit = app.audit().await;
    let actor = admin_actor(&audit);
    for (kind, id, reason) in [
        ("hold_extended", &held, "waiting for the app"),
        ("escalation_blocked", &held, "sent by post instead"),
    ] {
        let e = entries(&audit, kind, id);
        assert_eq!(e.len(), 1, "{kind}");
        assert_eq!(e[0]["actor"], actor.as_str(), "{kind}");
        assert_eq!(e[0]["details"]["reason"], reason, "{kind}");
    }
    app.stop().await;
}

async fn the_queue_pages_like_every_list_and_refuses_foreign_cursors(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .config(|c| c.delivery.workers = 0)
        .start()
        .await
    else {
        return;
    };
    let r = app.recipient("emp-pages").await;
    sms_off(&app).await;
    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(queued(&app, &format!("p-{i}"), &r, "payroll", "escalate").await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &cursor {
            None => "/v1/escalations?limit=2".to_string(),
            Some(c) => format!("/v1/escalations?limit=2&cursor={c}"),
        };
        let a = app.get(&url, &app.sender).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        seen.extend(ids(&a.body));
        pages += 1;
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    sent.reverse();
    assert_eq!(seen, sent, "newest first, no repeat, none missed");

    let recipients = app.get("/v1/recipients?limit=1", &app.sender).await;
    let foreign = recipients.body["next_cursor"].as_str().map_or_else(
        || {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&r)
        },
        str::to_string,
    );
    for bad in [
        format!("/v1/escalations?cursor={foreign}"),
        "/v1/escalations?cursor=not-a-cursor".to_string(),
        "/v1/escalations?kind=sent".to_string(),
        "/v1/escalations?limit=0".to_string(),
        "/v1/escalations?limit=201".to_string(),
        "/v1/escalations?status=held".to_string(),
    ] {
        let a = app.get(&bad, &app.sender).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
    }
    app.stop().await;
}

async fn another_tenant_sees_and_touches_none_of_the_queue(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .config(|c| c.delivery.workers = 0)
        .start()
        .await
    else {
        return;
    };
    let r = app.recipient("emp-iso").await;
    sms_off(&app).await;
    let id = queued(&app, "iso-1", &r, "payroll", "escalate").await;
    let policy = include_str!("../../../examples/policies/acme.toml")
        .replace("tenant = \"acme\"", "tenant = \"globex\"");
    let (b_sender, b_admin) = app.other_tenant_keys("globex", &policy).await;
    let list = app.get("/v1/escalations", &b_sender).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert!(ids(&list.body).is_empty(), "{}", list.text);
    let before = app.written_rows().await;
    for (action, body) in [
        (
            "send",
            json!({ "route": "portal+email_notice", "reason": "r" }),
        ),
        ("block", json!({ "reason": "r" })),
        ("extend", json!({ "until": now_s() + 3600, "reason": "r" })),
    ] {
        let a = app
            .post(&format!("/v1/escalations/{id}/{action}"), &b_admin, body)
            .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{action}: {}", a.text);
    }
    assert_eq!(app.written_rows().await, before);
    let mine = app.get("/v1/escalations", &app.sender).await;
    assert_eq!(ids(&mine.body), [id]);
    app.stop().await;
}

both_backends!(
    an_operator_sends_an_escalated_message_only_by_a_route_the_core_permits_now,
    a_hold_is_extended_or_blocked_and_a_blocked_message_never_leaves,
    the_queue_pages_like_every_list_and_refuses_foreign_cursors,
    another_tenant_sees_and_touches_none_of_the_queue,
);
