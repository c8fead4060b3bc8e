//! The in-app channel end to end over HTTP, on SQLite and PostgreSQL: a
//! payload sealed with HPKE to every enrolled device, only ciphertext in
//! the database, fetched with device-signed requests and opened in the test
//! as the device would; revoked devices, moved or relabelled ciphertexts,
//! stale and forged requests all fail.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::SigningKey;
use ladder_channels::inapp::{
    AgreementKey, Binding, Hpke, Sealed, Sealer as _, generate_agreement_key,
};
use ladder_channels::{Content, DeliveryError, Destination, DeviceTarget, Dispatch};
use ladder_core::{AssuranceLevel, Channel};
use serde_json::{Value, json};
use sqlx::Row as _;
use support::{Answer, Backend, StatusCode, TestApp, hex, now_s as now};

both_backends!(
    sealed_to_every_device_and_the_database_holds_no_plaintext,
    a_revoked_device_gets_401_and_nothing,
    a_moved_or_relabelled_ciphertext_does_not_open,
    device_requests_must_be_fresh_and_signed_by_the_device,
    a_recipient_without_an_in_app_key_falls_back,
    the_adapter_dedupes_and_takes_no_notices,
    forged_device_requests_past_the_limit_get_429_and_are_not_audited,
);

/// A device as its client holds it.
struct Device {
    id: String,
    identity: SigningKey,
    agreement: AgreementKey,
}

async fn enrol(app: &TestApp, recipient: &str, seed: u8) -> Device {
    let identity = SigningKey::from_bytes(&[seed; 32]);
    let agreement = generate_agreement_key().unwrap();
    let a = app
        .post(
            &format!("/v1/recipients/{recipient}/devices"),
            &app.sender,
            json!({
                "identity_key": hex(&identity.verifying_key().to_bytes()),
                "agreement_key": hex(&agreement.public),
                "labels": { "os": "ios", "os_version": "26.3", "client": "acme-app", "client_version": "5.3" },
            }),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.body["agreement_key"], hex(&agreement.public));
    let d = Device {
        id: a.body["id"].as_str().unwrap().to_string(),
        identity,
        agreement,
    };
    let h = app.handshake(&d.id, &d.identity).await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.text);
    d
}

/// A device-signed request: `sign_path` and `timestamp` let tests forge.
async fn signed_as(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    device_id: &str,
    key: &SigningKey,
    sign_path: &str,
    timestamp: i64,
) -> Answer {
    app.device_request(method, path, device_id, key, sign_path, timestamp)
        .await
}

async fn signed(app: &TestApp, method: reqwest::Method, path: &str, d: &Device) -> Answer {
    signed_as(app, method, path, &d.id, &d.identity, path, now()).await
}

async fn inbox(app: &TestApp, d: &Device) -> Vec<Value> {
    let a = signed(app, reqwest::Method::GET, "/v1/device/inbox", d).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["device"], d.id.as_str());
    a.body["entries"].as_array().unwrap().clone()
}

/// Opens an entry as the device client does: the binding is rebuilt from
/// the values served beside the ciphertext.
fn open(tenant: &str, e: &Value, secret: &[u8; 32]) -> Option<String> {
    let sealed = Sealed {
        enc: B64.decode(e["enc"].as_str().unwrap()).unwrap(),
        ciphertext: B64.decode(e["ciphertext"].as_str().unwrap()).unwrap(),
    };
    let binding = Binding {
        tenant_id: tenant.to_string(),
        thread_id: e["thread_id"].as_str().unwrap().to_string(),
        message_id: e["message_id"].as_str().unwrap().to_string(),
        assurance: e["assurance"].as_str().unwrap().parse().ok()?,
        expires_at: e["expires_at"].as_i64().unwrap(),
    };
    Hpke.open(secret, &binding, &sealed)
        .ok()
        .map(|p| String::from_utf8(p.to_vec()).unwrap())
}

fn entry<'a>(entries: &'a [Value], message: &str) -> &'a Value {
    entries
        .iter()
        .find(|e| e["message_id"] == message)
        .unwrap_or_else(|| panic!("no entry for {message}: {entries:#?}"))
}

async fn send_in(app: &TestApp, idem: &str, r: &str, thread: &str, body: &str) -> String {
    let a = app
        .request(
            reqwest::Method::POST,
            "/v1/messages",
            Some(app.sender.as_str()),
            Some(
                json!({ "recipient": r, "class": "transactional", "thread": thread, "body": body }),
            ),
            &[("idempotency-key", idem)],
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(
        a.body["decision"]["outcome"]["route"]["container"], "in_app",
        "{}",
        a.text
    );
    let id = a.body["id"].as_str().unwrap().to_string();
    app.wait_status(&id, "sent").await;
    id
}

async fn exec(app: &TestApp, sql: &str, binds: &[&str]) {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
    for b in binds {
        q = q.bind(b.to_string());
    }
    q.execute(app.state().store.pool()).await.unwrap();
}

fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn sealed_to_every_device_and_the_database_holds_no_plaintext(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = app.recipient("emp-1").await;
    let phone = enrol(&app, &r, 1).await;
    let tablet = enrol(&app, &r, 2).await;
    let body = "payroll-canary-5c1e: net salary 4200.17 EUR";
    let id = send_in(&app, "ia-1", &r, "payroll", body).await;

    // One ciphertext per device, and no plaintext in any column.
    let rows = sqlx::query(
        "SELECT device_id, message_id, thread_id, assurance, enc, ciphertext, fetched_at FROM inbox ORDER BY device_id",
    )
    .fetch_all(app.state().store.pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    let mut devices: Vec<String> = rows.iter().map(|r| r.get("device_id")).collect();
    devices.sort();
    let mut want = vec![phone.id.clone(), tablet.id.clone()];
    want.sort();
    assert_eq!(devices, want);
    for row in &rows {
        assert_eq!(row.get::<String, _>("message_id"), id);
        assert_eq!(row.get::<String, _>("assurance"), "e2ee");
        let enc: Vec<u8> = row.get("enc");
        let ct: Vec<u8> = row.get("ciphertext");
        assert_eq!(enc.len(), 32);
        assert_eq!(ct.len(), body.len() + 16, "ChaCha20-Poly1305 tag");
        assert!(!contains(&ct, b"payroll-canary"));
        assert!(row.get::<Option<i64>, _>("fetched_at").is_none());
    }
    if backend == Backend::Sqlite {
        // Every byte the server wrote: database, WAL, keyring.
        for f in files(app.dir.path()) {
            let bytes = std::fs::read(&f).unwrap();
            assert!(
                !contains(&bytes, b"payroll-canary"),
                "plaintext in {}",
                f.display()
            );
        }
    }

    // Each device fetches and opens its own copy.
    for d in [&phone, &tablet] {
        let entries = inbox(&app, d).await;
        assert_eq!(entries.len(), 1, "{entries:#?}");
        let e = &entries[0];
        assert_eq!(e["message_id"], id.as_str());
        assert_eq!(e["assurance"], "e2ee");
        assert_eq!(e["label"], "end-to-end encrypted");
        assert!(e["fetched_at"].is_null(), "first fetch");
        assert_eq!(
            open(&app.tenant, e, &d.agreement.secret).as_deref(),
            Some(body)
        );
    }
    // One device's copy does not open with another's key.
    let phone_copy = inbox(&app, &phone).await;
    assert!(phone_copy[0]["fetched_at"].is_i64(), "fetch is recorded");
    assert_eq!(
        open(&app.tenant, &phone_copy[0], &tablet.agreement.secret),
        None
    );

    // The device identifies itself.
    let me = signed(&app, reqwest::Method::GET, "/v1/device/me", &phone).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["id"], phone.id.as_str());
    assert_eq!(me.body["recipient"], r.as_str());
    assert_eq!(me.body["tenant"], app.tenant.as_str());
    assert_eq!(me.body["labels"]["os"], "ios");

    // Acknowledged: delivered, and the server forgets that device's copy.
    let ack = signed(
        &app,
        reqwest::Method::POST,
        &format!("/v1/device/inbox/{id}/ack"),
        &phone,
    )
    .await;
    assert_eq!(ack.status, StatusCode::OK, "{}", ack.text);
    let m = app.wait_status(&id, "delivered").await;
    assert!(
        m["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "receipt_delivered"),
        "{m:#}"
    );
    assert!(inbox(&app, &phone).await.is_empty());
    assert_eq!(inbox(&app, &tablet).await.len(), 1);
    let again = signed(
        &app,
        reqwest::Method::POST,
        &format!("/v1/device/inbox/{id}/ack"),
        &phone,
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.text);
    assert_eq!(again.body["error"]["code"], "not_found");

    // A revoked message is no longer served.
    let rv = app
        .post(&format!("/v1/messages/{id}/revoke"), &app.sender, json!({}))
        .await;
    assert_eq!(rv.status, StatusCode::OK, "{}", rv.text);
    assert!(inbox(&app, &tablet).await.is_empty());
    app.stop().await;
}

async fn a_revoked_device_gets_401_and_nothing(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = app.recipient("emp-1").await;
    let lost = enrol(&app, &r, 3).await;
    let kept = enrol(&app, &r, 4).await;
    let first = send_in(&app, "rv-1", &r, "hr", "before the phone was lost").await;
    let rv = app
        .post(
            &format!("/v1/devices/{}/revoke", lost.id),
            &app.sender,
            json!({}),
        )
        .await;
    assert_eq!(rv.status, StatusCode::OK, "{}", rv.text);

    for path in ["/v1/device/inbox", "/v1/device/me"] {
        let a = signed(&app, reqwest::Method::GET, path, &lost).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
        assert_eq!(a.body["error"]["code"], "device_revoked", "{}", a.text);
        assert!(a.body.get("entries").is_none());
        assert!(!a.text.contains("ciphertext"));
    }
    let ack = signed(
        &app,
        reqwest::Method::POST,
        &format!("/v1/device/inbox/{first}/ack"),
        &lost,
    )
    .await;
    assert_eq!(ack.status, StatusCode::UNAUTHORIZED, "{}", ack.text);
    let audit = app.audit().await;
    assert!(
        audit.iter().any(|e| e["kind"] == "device_request_rejected"
            && e["details"]["code"] == "device_revoked"
            && e["subject"] == lost.id.as_str()),
        "{audit:#?}"
    );

    // The remaining device still reads; nothing new is sealed to the lost one.
    assert_eq!(inbox(&app, &kept).await.len(), 1);
    let h = app.handshake(&kept.id, &kept.identity).await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.text);
    let second = send_in(&app, "rv-2", &r, "hr2", "after").await;
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE device_id = $1 AND message_id = $2")
            .bind(&lost.id)
            .bind(&second)
            .fetch_one(app.state().store.pool())
            .await
            .unwrap();
    assert_eq!(n, 0);
    let entries = inbox(&app, &kept).await;
    assert_eq!(
        open(
            &app.tenant,
            entry(&entries, &second),
            &kept.agreement.secret
        )
        .as_deref(),
        Some("after")
    );
    app.stop().await;
}

async fn a_moved_or_relabelled_ciphertext_does_not_open(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = app.recipient("emp-1").await;
    let d = enrol(&app, &r, 5).await;
    let a = send_in(&app, "mv-1", &r, "payroll", "salary for March").await;
    let b = send_in(&app, "mv-2", &r, "support", "your ticket was closed").await;
    let entries = inbox(&app, &d).await;
    let secret = &d.agreement.secret;
    assert_eq!(
        open(&app.tenant, entry(&entries, &a), secret).as_deref(),
        Some("salary for March")
    );
    assert_eq!(
        open(&app.tenant, entry(&entries, &b), secret).as_deref(),
        Some("your ticket was closed")
    );
    let thread_a = entry(&entries, &a)["thread_id"]
        .as_str()
        .unwrap()
        .to_string();
    let thread_b = entry(&entries, &b)["thread_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(thread_a, thread_b);

    // Moved into the other thread.
    exec(
        &app,
        "UPDATE inbox SET thread_id = $1 WHERE message_id = $2",
        &[&thread_b, &a],
    )
    .await;
    let entries = inbox(&app, &d).await;
    assert_eq!(entry(&entries, &a)["thread_id"], thread_b.as_str());
    assert_eq!(open(&app.tenant, entry(&entries, &a), secret), None);
    assert!(open(&app.tenant, entry(&entries, &b), secret).is_some());
    exec(
        &app,
        "UPDATE inbox SET thread_id = $1 WHERE message_id = $2",
        &[&thread_a, &a],
    )
    .await;
    assert!(open(&app.tenant, entry(&inbox(&app, &d).await, &a), secret).is_some());

    // Relabelled as a stronger assurance, or with another expiry.
    exec(
        &app,
        "UPDATE inbox SET assurance = 'e2ee_attested' WHERE message_id = $1",
        &[&a],
    )
    .await;
    let entries = inbox(&app, &d).await;
    assert_eq!(
        entry(&entries, &a)["label"],
        AssuranceLevel::E2eeAttested.label()
    );
    assert_eq!(open(&app.tenant, entry(&entries, &a), secret), None);
    exec(
        &app,
        "UPDATE inbox SET assurance = 'e2ee', expires_at = expires_at + 3600 WHERE message_id = $1",
        &[&a],
    )
    .await;
    assert_eq!(
        open(&app.tenant, entry(&inbox(&app, &d).await, &a), secret),
        None
    );

    // Moved into the other message's row (and thread).
    let row = sqlx::query("SELECT enc, ciphertext FROM inbox WHERE message_id = $1")
        .bind(&a)
        .fetch_one(app.state().store.pool())
        .await
        .unwrap();
    let enc: Vec<u8> = row.get("enc");
    let ct: Vec<u8> = row.get("ciphertext");
    sqlx::query("UPDATE inbox SET enc = $1, ciphertext = $2 WHERE message_id = $3")
        .bind(enc)
        .bind(ct)
        .bind(&b)
        .execute(app.state().store.pool())
        .await
        .unwrap();
    let entries = inbox(&app, &d).await;
    assert_eq!(open(&app.tenant, entry(&entries, &b), secret), None);
    // And under another tenant's name it would not open either.
    exec(
        &app,
        "UPDATE inbox SET expires_at = expires_at - 3600 WHERE message_id = $1",
        &[&a],
    )
    .await;
    let entries = inbox(&app, &d).await;
    assert!(open(&app.tenant, entry(&entries, &a), secret).is_some());
    assert_eq!(open("ten_other", entry(&entries, &a), secret), None);
    app.stop().await;
}

async fn device_requests_must_be_fresh_and_signed_by_the_device(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = app.recipient("emp-1").await;
    let d = enrol(&app, &r, 6).await;
    send_in(&app, "sig-1", &r, "t", "signed requests only").await;
    let get = reqwest::Method::GET;
    let path = "/v1/device/inbox";
    let unauthorized = |a: &Answer, code: &str| {
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
        assert_eq!(a.body["error"]["code"], code, "{}", a.text);
        assert!(a.body["error"]["message"].is_string(), "{}", a.text);
        assert!(!a.text.contains("ciphertext"), "{}", a.text);
    };

    // No device headers, or an API key instead.
    let a = app.request(get.clone(), path, None, None, &[]).await;
    unauthorized(&a, "unauthenticated");
    let a = app
        .request(get.clone(), path, Some(app.sender.as_str()), None, &[])
        .await;
    unauthorized(&a, "unauthenticated");

    // Old, or from the future, even when correctly signed.
    for skew in [-120, 120, -61] {
        let a = signed_as(
            &app,
            get.clone(),
            path,
            &d.id,
            &d.identity,
            path,
            now() + skew,
        )
        .await;
        unauthorized(&a, "stale_request");
    }
    // Within the window: fine.
    let a = signed_as(
        &app,
        get.clone(),
        path,
        &d.id,
        &d.identity,
        path,
        now() - 30,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);

    // Signed by another key, for another path, or with a tampered query;
    // and an unknown device: one indistinguishable answer.
    let other = SigningKey::from_bytes(&[99; 32]);
    let forged = signed_as(&app, get.clone(), path, &d.id, &other, path, now()).await;
    unauthorized(&forged, "unauthenticated");
    let a = signed_as(
        &app,
        get.clone(),
        path,
        &d.id,
        &d.identity,
        "/v1/device/me",
        now(),
    )
    .await;
    unauthorized(&a, "unauthenticated");
    let a = signed_as(
        &app,
        get.clone(),
        "/v1/device/inbox?limit=2",
        &d.id,
        &d.identity,
        "/v1/device/inbox?limit=1",
        now(),
    )
    .await;
    unauthorized(&a, "unauthenticated");
    let a = signed_as(
        &app,
        reqwest::Method::POST,
        "/v1/device/inbox/msg_x/ack",
        &d.id,
        &d.identity,
        "/v1/device/inbox/msg_y/ack",
        now(),
    )
    .await;
    unauthorized(&a, "unauthenticated");
    let unknown = signed_as(&app, get.clone(), path, "dev_nope", &other, path, now()).await;
    unauthorized(&unknown, "unauthenticated");
    assert_eq!(unknown.body, forged.body);
    let a = app
        .request(
            get.clone(),
            path,
            None,
            None,
            &[
                ("x-ladder-device", &d.id),
                ("x-ladder-timestamp", &now().to_string()),
                ("x-ladder-signature", "not-hex"),
            ],
        )
        .await;
    unauthorized(&a, "unauthenticated");

    // A bad query is named; the valid one works.
    let a = signed(&app, get.clone(), "/v1/device/inbox?limit=0", &d).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(a.body["error"]["code"], "invalid_query");
    let a = signed(&app, get.clone(), "/v1/device/inbox?limit=1", &d).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["entries"].as_array().unwrap().len(), 1);

    let audit = app.audit().await;
    for code in ["bad_signature", "stale_timestamp"] {
        assert!(
            audit.iter().any(|e| e["kind"] == "device_request_rejected"
                && e["details"]["code"] == code
                && e["actor"] == format!("device:{}", d.id)),
            "{code}: {audit:#?}"
        );
    }
    app.stop().await;
}

/// A device without an agreement key cannot take an in-app payload: the
/// container fails permanently and the message goes down the ladder.
async fn a_recipient_without_an_in_app_key_falls_back(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = app.recipient("emp-1").await;
    // Enrolled with an identity key only: no X25519 key to seal to.
    let key = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
    let e = app
        .post(
            &format!("/v1/recipients/{r}/devices"),
            &app.sender,
            serde_json::json!({ "identity_key": support::hex(&key.verifying_key().to_bytes()) }),
        )
        .await;
    assert_eq!(e.status, StatusCode::CREATED, "{}", e.text);
    let device = e.body["id"].as_str().unwrap().to_string();
    let h = app.handshake(&device, &key).await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.text);
    let a = app.send("nk-1", &r, "transactional", "no key").await;
    assert_eq!(
        a.body["decision"]["outcome"]["route"]["container"], "in_app",
        "{}",
        a.text
    );
    let id = a.body["id"].as_str().unwrap();
    let m = app.wait_status(id, "sent").await;
    assert_eq!(
        m["decision"]["outcome"]["route"]["container"], "portal",
        "{m:#}"
    );
    assert_eq!(m["failed"][0]["channel"], "in_app", "{m:#}");
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|e| e["kind"] == "fallback" && e["details"]["reason"] == "no_in_app_device"),
        "{audit:#?}"
    );
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox")
        .fetch_one(app.state().store.pool())
        .await
        .unwrap();
    assert_eq!(n, 0);
    app.stop().await;
}

async fn the_adapter_dedupes_and_takes_no_notices(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = app.recipient("emp-1").await;
    let d = enrol(&app, &r, 9).await;
    let id = send_in(&app, "ad-1", &r, "t", "first").await;
    let thread = inbox(&app, &d).await[0]["thread_id"]
        .as_str()
        .unwrap()
        .to_string();
    let adapter = app.state().channels.get(Channel::InApp).unwrap().clone();
    assert_eq!(adapter.channel(), Channel::InApp);
    let dispatch = |content: Content, devices: Vec<DeviceTarget>| Dispatch {
        tenant_id: app.tenant.clone(),
        message_id: id.clone(),
        recipient_id: r.clone(),
        thread_id: thread.clone(),
        channel: Channel::InApp,
        idempotency_key: format!("{id}/0/in_app"),
        content,
        to: Destination {
            phone: None,
            email: None,
            devices,
        },
        assurance: AssuranceLevel::E2ee,
        expires_at: now() + 3600,
        handed_over_ms: now() * 1000,
    };
    let target = DeviceTarget {
        id: d.id.clone(),
        agreement_key: Some(d.agreement.public),
        push: None,
    };
    let payload = || Content::Payload(zeroize::Zeroizing::new(b"again".to_vec()));

    // The same message to the same device again: a duplicate, nothing new.
    let again = adapter
        .send(&dispatch(payload(), vec![target.clone()]))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.provider_ref, id);
    let entries = inbox(&app, &d).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        open(&app.tenant, &entries[0], &d.agreement.secret).as_deref(),
        Some("first")
    );

    // No device with a key; a notice.
    let keyless = DeviceTarget {
        agreement_key: None,
        ..target.clone()
    };
    assert_eq!(
        adapter.send(&dispatch(payload(), vec![keyless])).await,
        Err(DeliveryError::Permanent {
            code: "no_in_app_device".into()
        })
    );
    assert_eq!(
        adapter.send(&dispatch(payload(), vec![])).await,
        Err(DeliveryError::Permanent {
            code: "no_in_app_device".into()
        })
    );
    assert!(matches!(
        adapter
            .send(&dispatch(
                Content::Notice("hello".into()),
                vec![target.clone()]
            ))
            .await,
        Err(DeliveryError::Permanent { .. })
    ));
    app.stop().await;
}

/// Forged requests for a device are answered (and audited) one by one
/// until they pass `[limits]`; then 429, audited once, nothing else
/// written — while the device's own signed requests still work — and the
/// limit resets.
async fn forged_device_requests_past_the_limit_get_429_and_are_not_audited(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .config(|c| {
            c.limits.device_rejections_per_device = ladder_server::limits::Rate {
                burst: 2,
                every_ms: 1500,
            };
        })
        .start()
        .await
    else {
        return;
    };
    let r = app.recipient("emp-dev-limit").await;
    let d = enrol(&app, &r, 61).await;
    let other = SigningKey::from_bytes(&[62; 32]);
    let path = "/v1/device/inbox";
    let forge = || signed_as(&app, reqwest::Method::GET, path, &d.id, &other, path, now());
    let rejected = |audit: &[Value]| {
        audit
            .iter()
            .filter(|e| e["kind"] == "device_request_rejected" && e["subject"] == d.id.as_str())
            .count()
    };
    for _ in 0..2 {
        let a = forge().await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
    }
    let before = app.audit().await;
    assert_eq!(rejected(&before), 2);
    for _ in 0..3 {
        let a = forge().await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.text);
        assert_eq!(a.body["error"]["code"], "rate_limited", "{}", a.text);
    }
    let audit = app.audit().await;
    assert_eq!(
        rejected(&audit),
        2,
        "refusals past the limit are not audited"
    );
    let limited: Vec<&Value> = audit
        .iter()
        .filter(|e| e["kind"] == "device_request_rate_limited")
        .collect();
    assert_eq!(limited.len(), 1, "{limited:#?}");
    assert_eq!(limited[0]["subject"], d.id.as_str());
    assert_eq!(limited[0]["details"]["limit"], "device");
    assert_eq!(audit.len(), before.len() + 1);
    // The device itself is still served.
    assert!(inbox(&app, &d).await.is_empty());
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let a = forge().await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
    assert_eq!(rejected(&app.audit().await), 3);
    app.stop().await;
}
