//! Event-driven delivery through the real server: new outbox work wakes a
//! worker at once, so with the workers' poll set to a minute a message
//! still reaches its provider within moments; on PostgreSQL a message
//! accepted on one node (no workers) is delivered by another node's
//! workers, woken by `NOTIFY`; the per-channel limit on provider calls
//! holds while the claimed items run concurrently; and claimed items that
//! wait for a provider slot longer than their lease keep it (renewed), so
//! no other worker takes them over and sends them twice.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::{Duration, Instant};

use ladder_channels::push::{ApnsConfig, PushConfig};
use ladder_fakes::push;
use serde_json::json;
use support::{Backend, StatusCode, TestApp};

/// The workers' poll in these tests: far longer than any wait below, so a
/// message that arrives in time was not found by polling.
const LONG_POLL_MS: u64 = 60_000;
/// How long a woken delivery may take on a loaded machine.
const PROMPTLY: Duration = Duration::from_secs(10);
/// Messages sent one after another, each once the previous one was sent:
/// only the first could be found by a worker's look at start-up.
const ROUNDS: usize = 3;

both_backends!(
    new_work_wakes_a_worker_without_waiting_for_the_poll,
    provider_calls_stay_within_the_per_channel_limit,
    claimed_items_waiting_for_a_slot_keep_their_leases,
);

/// Polls `id` on `app` until it is `sent`; answers how long that took, or
/// fails after [`PROMPTLY`].
async fn sent_within(app: &TestApp, id: &str) -> Duration {
    let started = Instant::now();
    loop {
        let a = app.get(&format!("/v1/messages/{id}"), &app.sender).await;
        if a.body["status"] == "sent" {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < PROMPTLY,
            "message {id} not sent after {PROMPTLY:?} with a {LONG_POLL_MS} ms poll: {:#}",
            a.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn new_work_wakes_a_worker_without_waiting_for_the_poll(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .config(|c| c.delivery.poll_ms = LONG_POLL_MS)
        .start()
        .await
    else {
        return;
    };
    let r = app.recipient("emp-wake").await;
    for round in 0..ROUNDS {
        // Let the workers finish looking and go to sleep on the poll.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let a = app
            .send(&format!("wake-{round}"), &r, "transactional", "hello")
            .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
        let took = sent_within(&app, a.body["id"].as_str().unwrap()).await;
        println!("{backend:?} round {round}: sent after {took:?}");
    }
    assert_eq!(
        ladder_store::outbox::pending(&app.state().store)
            .await
            .unwrap(),
        0
    );
    app.stop().await;
}

/// PostgreSQL, two nodes on one database: node A accepts with no workers,
/// node B (workers on, a one-minute poll) delivers — woken by the `NOTIFY`
/// A's accepting transaction sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_accepted_on_one_node_wakes_another_nodes_workers() {
    let Some(a) = TestApp::builder(Backend::Postgres)
        .config(|c| c.delivery.workers = 0)
        .start()
        .await
    else {
        return;
    };
    let mut config = a.config.clone();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.demo_tenant = false;
    config.delivery.workers = 2;
    config.delivery.poll_ms = LONG_POLL_MS;
    let b = ladder_server::start(config).await.unwrap();
    let r = a.recipient("emp-two-nodes").await;
    for round in 0..ROUNDS {
        // Let B's workers look once at start-up (and after each message)
        // and go to sleep on the poll, and its listener subscribe.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let sent = a
            .send(&format!("two-nodes-{round}"), &r, "transactional", "hello")
            .await;
        assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
        let took = sent_within(&a, sent.body["id"].as_str().unwrap()).await;
        println!("round {round}: accepted on A, sent by B after {took:?}");
    }
    b.shutdown().await;
    a.stop().await;
}

/// A recipient whose one device proves in-app E2EE and push reachability
/// and has an APNs token: `transactional` goes in-app with a push notice.
async fn app_user(app: &TestApp, n: u8) -> String {
    let ext = format!("emp-slots-{n}");
    let r = app.recipient(&ext).await;
    let seed = 100 + n;
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
    let h = app.handshake(&device, &key).await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.text);
    r
}

/// A node whose push notices go to `fake`, configured further by `tweak`.
async fn push_app(
    backend: Backend,
    fake: &push::FakePush,
    tweak: impl FnOnce(&mut ladder_server::Config),
) -> Option<TestApp> {
    TestApp::builder(backend)
        .config(|c| {
            c.channels.push = Some(PushConfig {
                apns: Some(ApnsConfig {
                    endpoint: fake.base_url(),
                    topic: "com.acme.app".into(),
                    token: "fake-apns-token".into(),
                }),
                fcm: None,
                timeout_ms: 8000,
            });
            tweak(c);
        })
        .start()
        .await
}

/// Sends `transactional` to each of `recipients` (in-app with a push
/// notice) and waits until every one is sent (bounded).
async fn send_all_and_wait(app: &TestApp, tag: &str, recipients: &[String]) {
    let mut ids = Vec::new();
    for (n, r) in recipients.iter().enumerate() {
        let a = app
            .send(&format!("{tag}-{n}"), r, "transactional", "hello")
            .await;
        assert_eq!(
            a.body["decision"]["outcome"]["route"]["notifier"], "push_notice",
            "{}",
            a.text
        );
        ids.push(a.body["id"].as_str().unwrap().to_string());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in &ids {
        loop {
            let m = app.get(&format!("/v1/messages/{id}"), &app.sender).await;
            if m.body["status"] == "sent" {
                break;
            }
            assert!(Instant::now() < deadline, "{id} not sent: {:#}", m.body);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn provider_calls_stay_within_the_per_channel_limit(backend: Backend) {
    const LIMIT: usize = 2;
    const MESSAGES: u8 = 6;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = push::start(push::FakePushConfig::default()).await.unwrap();
    let Some(app) = push_app(backend, &fake, |c| {
        c.delivery.concurrency = LIMIT;
        c.delivery.workers = 2;
        c.delivery.claim_batch = 16;
    })
    .await
    else {
        return;
    };
    let mut recipients = Vec::new();
    for n in 0..MESSAGES {
        recipients.push(app_user(&app, n).await);
    }
    // Every push takes a while: the items the workers run concurrently
    // pile up at the push channel's slots.
    fake.set_hang(Duration::from_millis(1500));
    send_all_and_wait(&app, "slots", &recipients).await;
    let most = fake.max_in_flight();
    println!("{backend:?}: at most {most} push calls at once (limit {LIMIT})");
    assert_eq!(fake.received().len(), usize::from(MESSAGES));
    assert!(most <= LIMIT, "{most} push calls at once, limit {LIMIT}");
    assert!(
        most > 1,
        "the claimed items ran one at a time ({most} push call at once)"
    );
    app.stop().await;
    fake.shutdown().await;
}

async fn claimed_items_waiting_for_a_slot_keep_their_leases(backend: Backend) {
    const MESSAGES: u8 = 12;
    const HANG_MS: u64 = 400;
    const LEASE_MS: i64 = 3500;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = push::start(push::FakePushConfig::default()).await.unwrap();
    // One push at a time, each taking HANG_MS: the last of the items one
    // worker claimed waits about MESSAGES × HANG_MS — longer than the
    // lease — for its slot, while a second worker polls every 20 ms for
    // lapsed leases to take over. The provider timeout leaves the hang a
    // wide margin (the lease must exceed three of them).
    let Some(app) = push_app(backend, &fake, |c| {
        c.delivery.concurrency = 1;
        c.delivery.workers = 2;
        c.delivery.claim_batch = 16;
        c.delivery.timeout_ms = 1100;
        c.delivery.lease_ms = LEASE_MS;
    })
    .await
    else {
        return;
    };
    let mut recipients = Vec::new();
    for n in 0..MESSAGES {
        recipients.push(app_user(&app, 20 + n).await);
    }
    fake.set_hang(Duration::from_millis(HANG_MS));
    let started = Instant::now();
    send_all_and_wait(&app, "lease", &recipients).await;
    let took = started.elapsed();
    println!(
        "{backend:?}: {MESSAGES} messages through one push slot in {took:?}, lease {LEASE_MS} ms"
    );
    // Push cannot deduplicate: an item taken over by the other worker
    // would have been pushed a second time.
    assert_eq!(fake.received().len(), usize::from(MESSAGES));
    let attempts: Vec<bool> = app
        .audit()
        .await
        .iter()
        .filter(|e| e["kind"] == "delivery_attempt")
        .map(|e| e["details"]["resumed_handover"].as_bool().unwrap())
        .collect();
    // One in-app and one push attempt per message, none a resend.
    assert_eq!(attempts.len(), 2 * usize::from(MESSAGES));
    assert!(
        attempts.iter().all(|resumed| !resumed),
        "no hand-over was taken over and resent"
    );
    app.stop().await;
    fake.shutdown().await;
}
