//! The channels through the real server against fake providers on
//! loopback: an RCS message not delivered in time is revoked before it falls
//! back; receipts move messages along only with a valid signature (a forged
//! one is refused and audited); and a message body reaches only the
//! containers its decision chose — never an e-mail or push notice, the
//! database, or the audit log.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use ladder_channels::email::{EmailConfig, EmailTls};
use ladder_channels::push::{ApnsConfig, PushConfig};
use ladder_channels::rcs::RcsConfig;
use ladder_fakes::{push, rcs, smtp};
use serde_json::{Value, json};
use support::{Backend, StatusCode, TestApp};

struct Fakes {
    rcs: rcs::FakeRcs,
    smtp: smtp::FakeSmtp,
    push: push::FakePush,
}

async fn fakes() -> Fakes {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Fakes {
        rcs: rcs::start(rcs::FakeRcsConfig::default()).await.unwrap(),
        smtp: smtp::start(smtp::FakeSmtpConfig::default()).await.unwrap(),
        push: push::start(push::FakePushConfig::default()).await.unwrap(),
    }
}

async fn app_with(backend: Backend, f: &Fakes, rcs_timeout: Option<u64>) -> Option<TestApp> {
    app_configured(backend, f, |c| {
        c.channels.rcs_delivery_timeout_s = rcs_timeout
    })
    .await
}

async fn app_configured(
    backend: Backend,
    f: &Fakes,
    tweak: impl FnOnce(&mut ladder_server::Config),
) -> Option<TestApp> {
    let rcs_config = RcsConfig {
        endpoint: f.rcs.base_url(),
        token: "fake-rcs-token".into(),
        agent_id: "ladder-fake-agent".into(),
        webhook_secret: "fake-rcs-webhook-secret".into(),
        timeout_ms: 2000,
        ..Default::default()
    };
    let email = EmailConfig {
        host: f.smtp.host(),
        port: Some(f.smtp.port()),
        tls: EmailTls::None,
        user: None,
        password: None,
        from: "Acme <secure@acme.example>".into(),
        timeout_ms: 5000,
    };
    let push_config = PushConfig {
        apns: Some(ApnsConfig {
            endpoint: format!("http://{}", f.push.addr),
            topic: "com.acme.app".into(),
            token: "fake-apns-token".into(),
        }),
        fcm: None,
        timeout_ms: 5000,
    };
    let app = TestApp::builder(backend)
        .config(|c| {
            c.channels.rcs = Some(rcs_config);
            c.channels.email = Some(email);
            c.channels.push = Some(push_config);
            tweak(c);
        })
        .start()
        .await?;
    f.rcs
        .set_webhook_url(Some(format!("{}/v1/webhooks/rcs/acme", app.base)));
    Some(app)
}

/// A recipient with a phone and e-mail, and a device proving RCS and
/// in-app E2EE and push reachability, with a push token.
async fn employee(app: &TestApp, ext: &str, phone: &str, seed: u8, rcs: bool) -> String {
    let r = app
        .post(
            "/v1/recipients",
            &app.sender,
            json!({ "external_id": ext, "email": format!("{ext}@example.com"), "phone": phone }),
        )
        .await;
    let r = r.body["id"].as_str().unwrap().to_string();
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let d = app
        .post(
            &format!("/v1/recipients/{r}/devices"),
            &app.sender,
            json!({
                "identity_key": support::hex(&key.verifying_key().to_bytes()),
                "agreement_key": support::hex(&ladder_channels::inapp::agreement_public(&[seed; 32]).unwrap()),
                "labels": { "os": "android", "client": "acme-app", "client_version": "5.3" },
                "push": { "platform": "apns", "token": format!("token-{seed}") },
            }),
        )
        .await;
    assert_eq!(d.status, StatusCode::CREATED, "{}", d.text);
    let device = d.body["id"].as_str().unwrap().to_string();
    let c = app.challenge(&device).await;
    let mut transports = json!({
        "in_app": { "reachable": true, "e2ee": "verified" },
        "push": { "reachable": true, "e2ee": "absent" },
    });
    if rcs {
        transports["rcs"] = json!({ "reachable": true, "e2ee": "verified" });
    }
    let report: ladder_core::handshake::DeviceReport = serde_json::from_value(json!({
        "device": device,
        "nonce": c["nonce"],
        "client": { "name": "acme-app", "version": "5.3", "policy_revision": 4 },
        "transports": transports,
    }))
    .unwrap();
    let signed = ladder_core::handshake::sign(&key, report).unwrap();
    let h = app
        .post(
            &format!("/v1/devices/{device}/handshake"),
            &app.sender,
            serde_json::to_value(signed).unwrap(),
        )
        .await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.text);
    r
}

both_backends!(
    forged_webhooks_past_the_limit_get_429_and_are_not_audited,
    an_unreachable_number_becomes_evidence,
    a_revoked_message_is_withdrawn_from_the_provider,
    rcs_not_delivered_in_time_is_revoked_before_it_falls_back,
    receipts_need_a_valid_signature,
    a_body_reaches_only_its_container,
);

async fn rcs_not_delivered_in_time_is_revoked_before_it_falls_back(backend: Backend) {
    let f = fakes().await;
    let Some(app) = app_with(backend, &f, Some(1)).await else {
        return;
    };
    let r = employee(&app, "emp-1", "+15550102001", 41, true).await;
    f.rcs.set_offline("+15550102001", true);
    let a = app.send("late-1", &r, "payroll", "salary").await;
    assert_eq!(
        a.body["decision"]["outcome"]["route"]["container"], "rcs",
        "{}",
        a.text
    );
    let id = a.body["id"].as_str().unwrap().to_string();
    let mut m = Value::Null;
    for _ in 0..100 {
        m = app
            .get(&format!("/v1/messages/{id}"), &app.sender)
            .await
            .body;
        if m["decision"]["outcome"]["route"]["container"] == "in_app" && m["status"] == "sent" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        m["decision"]["outcome"]["route"]["container"], "in_app",
        "{m:#}"
    );
    assert_eq!(f.rcs.revoked().len(), 1, "withdrawn before falling back");
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|e| e["kind"] == "fallback" && e["details"]["reason"] == "not_delivered_in_time"),
        "{audit:#?}"
    );
    app.stop().await;
}

async fn receipts_need_a_valid_signature(backend: Backend) {
    let f = fakes().await;
    f.rcs.drop_receipts(true);
    let Some(app) = app_with(backend, &f, None).await else {
        return;
    };
    let r = employee(&app, "emp-2", "+15550102002", 42, true).await;
    let a = app.send("rcpt-1", &r, "marketing", "sale").await;
    let id = a.body["id"].as_str().unwrap().to_string();
    app.wait_status(&id, "sent").await;
    let message_id = f.rcs.received()[0].message_id.clone();
    let url = format!("{}/v1/webhooks/rcs/acme", app.base);

    let good = f.rcs.signed_receipt(&message_id, rcs::RcsEvent::Delivered);
    let forged = app
        .client
        .post(&url)
        .header("x-goog-signature", "AAAA")
        .body(good.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let m = app.get(&format!("/v1/messages/{id}"), &app.sender).await;
    assert_eq!(m.body["status"], "sent", "a forged receipt changes nothing");
    assert!(
        app.audit()
            .await
            .iter()
            .any(|e| e["kind"] == "webhook_rejected" && e["details"]["reason"] == "bad_signature")
    );

    let ok = app
        .client
        .post(&url)
        .header("x-goog-signature", &good.signature)
        .body(good.body)
        .send()
        .await
        .unwrap();
    // The contract walk (`tests/contract.rs`) leaves a signed webhook's
    // success to this suite: its answer is checked against the document.
    let ok = support::checked("POST", "/v1/webhooks/rcs/acme", ok).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.body["applied"], 1, "{}", ok.text);
    app.wait_status(&id, "delivered").await;
    let read = f.rcs.signed_receipt(&message_id, rcs::RcsEvent::Read);
    app.client
        .post(&url)
        .header("x-goog-signature", &read.signature)
        .body(read.body)
        .send()
        .await
        .unwrap();
    let m = app.wait_status(&id, "read").await;
    assert!(
        m["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "receipt_delivered")
    );
    let metrics = app
        .request(reqwest::Method::GET, "/metrics", None, None, &[])
        .await;
    assert!(
        metrics.text.contains("ladder_receipts_total"),
        "{}",
        metrics.text
    );
    app.stop().await;
}

async fn a_body_reaches_only_its_container(backend: Backend) {
    let f = fakes().await;
    let Some(app) = app_with(backend, &f, None).await else {
        return;
    };
    let canary = format!("CANARY-{}-{:?}", std::process::id(), backend);
    // In-app with a push wake-up.
    let r = employee(&app, "emp-3", "+15550102003", 43, false).await;
    let a = app.send("c-inapp", &r, "transactional", &canary).await;
    assert_eq!(
        a.body["decision"]["outcome"]["route"]["notifier"], "push_notice",
        "{}",
        a.text
    );
    let m = app
        .wait_status(a.body["id"].as_str().unwrap(), "sent")
        .await;
    // Regression: the server kept a readable copy of in-app payloads until
    // retention ended; once sealed to the devices, it is destroyed.
    assert_eq!(m["payload"], "shredded", "{m:#}");
    // The portal behind an e-mail notice: a recipient without devices.
    let e = app.recipient("emp-4").await;
    let b = app.send("c-portal", &e, "transactional", &canary).await;
    assert_eq!(
        b.body["decision"]["outcome"]["route"]["notifier"], "email_notice",
        "{}",
        b.text
    );
    app.wait_status(b.body["id"].as_str().unwrap(), "sent")
        .await;

    let pushes = f.push.received();
    assert!(!pushes.is_empty(), "the wake-up went out");
    for p in &pushes {
        assert_eq!(
            p.body,
            ladder_channels::push::APNS_BODY,
            "a push is content-free"
        );
        assert!(!p.body.contains(&canary));
    }
    let mails = f.smtp.received();
    assert!(!mails.is_empty(), "the e-mail notice went out");
    for m in &mails {
        assert!(
            !m.data.contains(&canary),
            "an e-mail notice never carries the body"
        );
        assert!(!m.data.contains("transactional"), "nor the class");
    }
    // Sealed in the inbox, absent in plaintext from every table and file.
    let rows: Vec<Vec<u8>> = sqlx::query_scalar("SELECT ciphertext FROM inbox")
        .fetch_all(app.state().store.pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(
        !rows[0]
            .windows(canary.len())
            .any(|w| w == canary.as_bytes())
    );
    let audit = serde_json::to_string(&app.audit().await).unwrap();
    assert!(!audit.contains(&canary));
    if backend == Backend::Sqlite {
        for entry in std::fs::read_dir(app.dir.path().join("data")).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(!bytes.windows(canary.len()).any(|w| w == canary.as_bytes()));
        }
    }
    app.stop().await;
}

/// Regression: revoking a message shredded its payload but left it with
/// the RCS provider, which delivered it once the phone came online.
async fn a_revoked_message_is_withdrawn_from_the_provider(backend: Backend) {
    let f = fakes().await;
    let Some(app) = app_with(backend, &f, None).await else {
        return;
    };
    let r = employee(&app, "emp-5", "+15550102005", 45, true).await;
    f.rcs.set_offline("+15550102005", true);
    let a = app.send("wd-1", &r, "payroll", "salary").await;
    let id = a.body["id"].as_str().unwrap().to_string();
    app.wait_status(&id, "sent").await;
    let rv = app
        .post(&format!("/v1/messages/{id}/revoke"), &app.sender, json!({}))
        .await;
    assert_eq!(rv.status, StatusCode::OK, "{}", rv.text);
    let mut withdrawn = false;
    for _ in 0..50 {
        if f.rcs.revoked().len() == 1 {
            withdrawn = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(withdrawn, "the provider was asked to take it back");
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|e| e["kind"] == "provider_withdrawal" && e["details"]["outcome"] == "withdrawn"),
        "{audit:#?}"
    );
    app.stop().await;
}

/// The provider's capability check says the number cannot get RCS: the
/// message falls back, and the observation becomes the devices' RCS
/// evidence, so the next message does not try RCS at all.
async fn an_unreachable_number_becomes_evidence(backend: Backend) {
    let f = fakes().await;
    let Some(app) = app_with(backend, &f, None).await else {
        return;
    };
    let r = employee(&app, "emp-6", "+15550102006", 46, true).await;
    f.rcs.set_reachable("+15550102006", false);
    let a = app.send("ur-1", &r, "payroll", "salary").await;
    assert_eq!(
        a.body["decision"]["outcome"]["route"]["container"], "rcs",
        "{}",
        a.text
    );
    let id = a.body["id"].as_str().unwrap().to_string();
    let mut m = Value::Null;
    for _ in 0..100 {
        m = app
            .get(&format!("/v1/messages/{id}"), &app.sender)
            .await
            .body;
        if m["status"] == "sent" && m["decision"]["outcome"]["route"]["container"] == "in_app" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        m["decision"]["outcome"]["route"]["container"], "in_app",
        "{m:#}"
    );
    assert!(
        app.audit()
            .await
            .iter()
            .any(|e| e["kind"] == "capability_observed")
    );
    let b = app.send("ur-2", &r, "payroll", "salary 2").await;
    assert_eq!(
        b.body["decision"]["outcome"]["route"]["container"], "in_app",
        "{}",
        b.text
    );
    let rcs_step = &b.body["decision"]["steps"][0];
    assert!(
        !rcs_step["skipped"].as_array().unwrap().is_empty(),
        "{}",
        b.text
    );
    app.stop().await;
}

/// Regression: a notice reported failed after it was accepted was ignored,
/// so the recipient was never told to look and the message sat `sent`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_notice_fails_its_route() {
    let Some(app) = TestApp::start(Backend::Sqlite).await else {
        return;
    };
    let r = app.recipient("emp-7").await;
    let a = app.send("nf-1", &r, "transactional", "statement").await;
    assert_eq!(
        a.body["decision"]["outcome"]["route"]["notifier"], "email_notice",
        "{}",
        a.text
    );
    let id = a.body["id"].as_str().unwrap().to_string();
    app.wait_status(&id, "sent").await;
    let reference: String = sqlx::query_scalar(
        "SELECT provider_ref FROM deliveries WHERE message_id = $1 AND channel = 'email'",
    )
    .bind(&id)
    .fetch_one(app.state().store.pool())
    .await
    .unwrap();
    let done = ladder_server::service::receipts::apply(
        app.state(),
        &app.tenant,
        ladder_core::Channel::Email,
        &[ladder_channels::webhook::Receipt {
            provider_ref: reference,
            status: ladder_channels::webhook::ReceiptStatus::Failed,
        }],
    )
    .await
    .unwrap();
    assert_eq!(done.applied, 1);
    let mut fell_back = false;
    for _ in 0..50 {
        let audit = app.audit().await;
        if audit.iter().any(|e| {
            e["kind"] == "fallback"
                && e["subject"] == id.as_str()
                && e["details"]["failed_channel"] == "email"
        }) {
            fell_back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(fell_back, "the failed e-mail notice re-decided the message");
    app.stop().await;
}

/// Receipts on the deployment's own account find their tenant through the
/// hand-over they name (one callback URL serves every tenant).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_account_receipts_find_their_tenant() {
    let f = fakes().await;
    let Some(app) = app_with(Backend::Sqlite, &f, None).await else {
        return;
    };
    f.rcs
        .set_webhook_url(Some(format!("{}/v1/webhooks/rcs", app.base)));
    let r = employee(&app, "emp-8", "+15550102008", 48, true).await;
    let a = app.send("dep-1", &r, "marketing", "sale").await;
    let id = a.body["id"].as_str().unwrap().to_string();
    let m = app.wait_status(&id, "read").await;
    assert!(
        m["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "receipt_read")
    );
    let forged = app
        .client
        .post(format!("{}/v1/webhooks/rcs", app.base))
        .header("x-goog-signature", "AAAA")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

/// Forged webhooks from one address are answered (and audited) one by one
/// until they pass `[limits]`; then 429 with `Retry-After`, audited once,
/// nothing else written — while webhooks that verify still pass — and the
/// limit resets.
async fn forged_webhooks_past_the_limit_get_429_and_are_not_audited(backend: Backend) {
    let f = fakes().await;
    f.rcs.drop_receipts(true);
    let Some(app) = app_configured(backend, &f, |c| {
        c.limits.webhook_rejections_per_address = ladder_server::limits::Rate {
            burst: 2,
            every_ms: 1500,
        };
    })
    .await
    else {
        return;
    };
    let r = employee(&app, "emp-wh-limit", "+15550102077", 77, true).await;
    let a = app.send("rl-wh-1", &r, "marketing", "sale").await;
    let id = a.body["id"].as_str().unwrap().to_string();
    app.wait_status(&id, "sent").await;
    let message_id = f.rcs.received()[0].message_id.clone();
    let url = format!("{}/v1/webhooks/rcs/acme", app.base);
    let good = f.rcs.signed_receipt(&message_id, rcs::RcsEvent::Delivered);
    let forge = || {
        app.client
            .post(&url)
            .header("x-goog-signature", "AAAA")
            .body(good.body.clone())
            .send()
    };
    let rejected = |audit: &[Value]| {
        audit
            .iter()
            .filter(|e| e["kind"] == "webhook_rejected")
            .count()
    };
    for _ in 0..2 {
        assert_eq!(forge().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    let before = app.audit().await;
    assert_eq!(rejected(&before), 2);
    for _ in 0..3 {
        let resp = forge().await.unwrap();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait: u64 = resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=2).contains(&wait), "{wait}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    }
    let audit = app.audit().await;
    assert_eq!(
        rejected(&audit),
        2,
        "refusals past the limit are not audited"
    );
    let limited: Vec<&Value> = audit
        .iter()
        .filter(|e| e["kind"] == "webhook_rate_limited")
        .collect();
    assert_eq!(limited.len(), 1, "{limited:#?}");
    assert_eq!(limited[0]["details"]["channel"], "rcs");
    assert_eq!(audit.len(), before.len() + 1);
    assert!(!serde_json::to_string(&audit).unwrap().contains("127.0.0.1"));
    let m = app.get(&format!("/v1/messages/{id}"), &app.sender).await;
    assert_eq!(
        m.body["status"], "sent",
        "a refused webhook changes nothing"
    );
    let metrics = app
        .request(reqwest::Method::GET, "/metrics", None, None, &[])
        .await;
    assert!(
        metrics
            .text
            .contains("ladder_rate_limited_total{surface=\"webhook\"}"),
        "{}",
        metrics.text
    );

    // A webhook that verifies is never limited.
    let ok = app
        .client
        .post(&url)
        .header("x-goog-signature", &good.signature)
        .body(good.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    app.wait_status(&id, "delivered").await;

    // The limit resets.
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    assert_eq!(forge().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(rejected(&app.audit().await), 3);
    app.stop().await;
}
