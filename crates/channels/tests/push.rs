//! The push adapter against the fake APNs/FCM provider, over real loopback
//! sockets: content-free wake-ups only, per-device outcomes, failures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use ladder_channels::push::{self, APNS_BODY, ApnsConfig, FcmConfig, PushAdapter, PushConfig};
use ladder_channels::{
    Adapter, Channels, Content, DeliveryError, Destination, DeviceTarget, Dispatch, PushPlatform,
    PushTarget,
};
use ladder_core::{AssuranceLevel, Channel};
use ladder_fakes::push::{self as fake, FakePush, FakePushConfig, Platform};
use serde_json::{Value, json};

const APNS_TOKEN: &str = "apns-provider-token-for-tests";
const FCM_TOKEN: &str = "fcm-oauth-token-for-tests";
const TOPIC: &str = "com.example.ladder";
const PROJECT: &str = "ladder-test";
const IPHONE: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const ANDROID: &str = "fcm-registration-token-1";
const NOTICE: &str = "You have a new secure message. Open https://portal.example/p/abc";
const EXPIRES: i64 = 4_102_444_800;

fn provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

async fn start_fake() -> FakePush {
    fake::start(FakePushConfig {
        apns_token: APNS_TOKEN.into(),
        fcm_token: FCM_TOKEN.into(),
        apns_topic: Some(TOPIC.into()),
    })
    .await
    .unwrap()
}

fn config(endpoint: &str) -> PushConfig {
    PushConfig {
        apns: Some(ApnsConfig {
            endpoint: endpoint.into(),
            topic: TOPIC.into(),
            token: APNS_TOKEN.into(),
        }),
        fcm: Some(FcmConfig {
            endpoint: endpoint.into(),
            project: PROJECT.into(),
            token: FCM_TOKEN.into(),
        }),
        timeout_ms: 2_000,
    }
}

fn adapter(config: &PushConfig) -> PushAdapter {
    provider();
    PushAdapter::new(config).unwrap()
}

fn device(id: &str, push: Option<(PushPlatform, &str)>) -> DeviceTarget {
    DeviceTarget {
        id: id.into(),
        agreement_key: Some([7u8; 32]),
        push: push.map(|(platform, token)| PushTarget {
            platform,
            token: token.into(),
        }),
    }
}

fn phones() -> Vec<DeviceTarget> {
    vec![
        device("dev-iphone", Some((PushPlatform::Apns, IPHONE))),
        device("dev-laptop", None),
        device("dev-android", Some((PushPlatform::Fcm, ANDROID))),
    ]
}

fn dispatch(key: &str, devices: Vec<DeviceTarget>, content: Content) -> Dispatch {
    Dispatch {
        tenant_id: "t-1".into(),
        message_id: "m-1".into(),
        recipient_id: "r-1".into(),
        thread_id: "th-1".into(),
        channel: Channel::Push,
        idempotency_key: key.into(),
        content,
        to: Destination {
            phone: Some("+15550001111".into()),
            email: Some("alice@example.com".into()),
            devices,
        },
        assurance: AssuranceLevel::E2ee,
        expires_at: EXPIRES,
        handed_over_ms: 1_764_547_200_000,
    }
}

fn notice() -> Content {
    Content::Notice(NOTICE.into())
}

fn transient(code: &str) -> DeliveryError {
    DeliveryError::Transient { code: code.into() }
}

fn permanent(code: &str) -> DeliveryError {
    DeliveryError::Permanent { code: code.into() }
}

#[tokio::test]
async fn wakes_every_device_with_nothing_but_a_wake_up() {
    let fake = start_fake().await;
    let a = adapter(&config(&fake.base_url()));
    let accepted = a
        .send(&dispatch("m-1/0/push", phones(), notice()))
        .await
        .unwrap();
    assert!(!accepted.duplicate);

    let received = fake.received();
    assert_eq!(
        received.len(),
        2,
        "one request per device with a push target"
    );
    let apns = &received[0];
    let fcm = &received[1];

    // APNs: the exact content-free body and the background headers.
    assert_eq!(apns.platform, Platform::Apns);
    assert_eq!(apns.status, 200);
    assert_eq!(apns.path, format!("/3/device/{IPHONE}"));
    assert_eq!(apns.device_token, IPHONE);
    assert_eq!(apns.body, r#"{"aps":{"content-available":1}}"#);
    assert_eq!(apns.body, APNS_BODY);
    assert_eq!(apns.header("apns-push-type"), Some("background"));
    assert_eq!(apns.header("apns-priority"), Some("5"));
    assert_eq!(apns.header("apns-topic"), Some(TOPIC));
    let apns_id = push::apns_id("m-1/0/push", "dev-iphone");
    assert_eq!(apns.header("apns-id"), Some(apns_id.as_str()));
    assert_eq!(
        apns.header("apns-expiration"),
        Some(EXPIRES.to_string().as_str())
    );
    assert_eq!(
        apns.header("authorization"),
        Some(format!("Bearer {APNS_TOKEN}").as_str())
    );

    // FCM: a data-only wake-up at high priority.
    assert_eq!(fcm.platform, Platform::Fcm);
    assert_eq!(fcm.status, 200);
    assert_eq!(fcm.path, format!("/v1/projects/{PROJECT}/messages:send"));
    assert_eq!(
        serde_json::from_str::<Value>(&fcm.body).unwrap(),
        json!({ "message": {
            "token": ANDROID,
            "data": { "kind": "wake" },
            "android": { "priority": "high" },
        }})
    );
    assert_eq!(
        fcm.header("authorization"),
        Some(format!("Bearer {FCM_TOKEN}").as_str())
    );

    // provider_ref: the providers' ids, joined.
    assert_eq!(
        accepted.provider_ref,
        format!("{apns_id},{}", fcm.id.as_deref().unwrap())
    );

    // Nothing about the message in any request: not the notice, not the
    // link, not the ids, not the recipient's addresses.
    for r in &received {
        let everything = format!("{} {:?} {}", r.path, r.headers, r.body);
        for forbidden in [
            NOTICE,
            "portal.example",
            "secure message",
            "m-1",
            "th-1",
            "alice@example.com",
            "+15550001111",
        ] {
            assert!(!everything.contains(forbidden), "{forbidden:?} leaked");
        }
    }
}

#[tokio::test]
async fn retries_carry_the_same_apns_id() {
    let fake = start_fake().await;
    let a = adapter(&config(&fake.base_url()));
    let first = a
        .send(&dispatch("m-2/0/push", phones(), notice()))
        .await
        .unwrap();
    let again = a
        .send(&dispatch("m-2/0/push", phones(), notice()))
        .await
        .unwrap();
    let apns: Vec<_> = fake
        .received()
        .into_iter()
        .filter(|r| r.platform == Platform::Apns)
        .map(|r| r.header("apns-id").unwrap().to_string())
        .collect();
    assert_eq!(apns.len(), 2);
    assert_eq!(apns[0], apns[1]);
    assert_eq!(
        first.provider_ref.split(',').next(),
        again.provider_ref.split(',').next()
    );
    // Wake-ups are not deduplicated by providers.
    assert!(!again.duplicate);
}

#[tokio::test]
async fn no_push_target_is_permanent_and_sends_nothing() {
    let fake = start_fake().await;
    let a = adapter(&config(&fake.base_url()));
    for devices in [
        Vec::new(),
        vec![device("dev-laptop", None)],
        vec![device("dev-x", Some((PushPlatform::Fcm, "")))],
    ] {
        let err = a
            .send(&dispatch("m-3/0/push", devices, notice()))
            .await
            .unwrap_err();
        assert_eq!(err, permanent("no_push_target"));
    }
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn a_payload_is_refused() {
    let fake = start_fake().await;
    let a = adapter(&config(&fake.base_url()));
    let payload = Content::Payload(zeroize::Zeroizing::new(b"secret".to_vec()));
    let err = a
        .send(&dispatch("m-4/0/push", phones(), payload))
        .await
        .unwrap_err();
    assert_eq!(err, permanent("payload_not_allowed_by_push"));
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn unregistered_devices_are_skipped() {
    let fake = start_fake().await;
    let a = adapter(&config(&fake.base_url()));
    fake.unregister(IPHONE);
    let accepted = a
        .send(&dispatch("m-5/0/push", phones(), notice()))
        .await
        .unwrap();
    let received = fake.received();
    assert_eq!(received[0].status, 410);
    assert_eq!(received[1].status, 200);
    assert_eq!(accepted.provider_ref, received[1].id.clone().unwrap());

    // Every device gone: nothing to wake.
    fake.unregister(ANDROID);
    let err = a
        .send(&dispatch("m-5/1/push", phones(), notice()))
        .await
        .unwrap_err();
    assert_eq!(err, permanent("push_unregistered"));
}

#[tokio::test]
async fn all_devices_failing_with_5xx_is_transient() {
    let fake = start_fake().await;
    let a = adapter(&config(&fake.base_url()));
    fake.fail_next(2, 503);
    let err = a
        .send(&dispatch("m-6/0/push", phones(), notice()))
        .await
        .unwrap_err();
    assert_eq!(err, transient("apns_http_503"));

    fake.fail_next(1, 500);
    let only_android = vec![device("dev-android", Some((PushPlatform::Fcm, ANDROID)))];
    let err = a
        .send(&dispatch("m-6/1/push", only_android, notice()))
        .await
        .unwrap_err();
    assert_eq!(err, transient("fcm_http_500"));

    fake.fail_next(1, 429);
    let only_iphone = vec![device("dev-iphone", Some((PushPlatform::Apns, IPHONE)))];
    let err = a
        .send(&dispatch("m-6/2/push", only_iphone, notice()))
        .await
        .unwrap_err();
    assert_eq!(err, transient("apns_http_429"));
}

#[tokio::test]
async fn one_device_accepting_is_enough() {
    let fake = start_fake().await;
    let a = adapter(&config(&fake.base_url()));
    fake.fail_next(1, 503);
    let accepted = a
        .send(&dispatch("m-7/0/push", phones(), notice()))
        .await
        .unwrap();
    let received = fake.received();
    assert_eq!(received[0].status, 503);
    assert_eq!(received[1].status, 200);
    assert_eq!(accepted.provider_ref, received[1].id.clone().unwrap());
}

#[tokio::test]
async fn client_errors_are_permanent() {
    let fake = start_fake().await;
    let mut c = config(&fake.base_url());
    c.apns.as_mut().unwrap().token = "wrong".into();
    c.fcm.as_mut().unwrap().token = "wrong".into();
    let a = adapter(&c);
    let err = a
        .send(&dispatch("m-8/0/push", phones(), notice()))
        .await
        .unwrap_err();
    assert_eq!(err, permanent("apns_http_403"));
    let statuses: Vec<_> = fake.received().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![403, 401]);

    // A topic the provider does not allow.
    let mut c = config(&fake.base_url());
    c.apns.as_mut().unwrap().topic = "com.example.other".into();
    let only_iphone = vec![device("dev-iphone", Some((PushPlatform::Apns, IPHONE)))];
    let err = adapter(&c)
        .send(&dispatch("m-8/1/push", only_iphone, notice()))
        .await
        .unwrap_err();
    assert_eq!(err, permanent("apns_http_400"));

    // A device token that cannot go in a URL path is refused locally.
    let bad = vec![device("dev-x", Some((PushPlatform::Apns, "../../etc")))];
    let before = fake.received().len();
    let err = adapter(&config(&fake.base_url()))
        .send(&dispatch("m-8/2/push", bad, notice()))
        .await
        .unwrap_err();
    assert_eq!(err, permanent("apns_bad_device_token"));
    assert_eq!(fake.received().len(), before);
}

#[tokio::test]
async fn a_platform_without_an_account_is_permanent() {
    let fake = start_fake().await;
    let mut c = config(&fake.base_url());
    c.apns = None;
    let a = adapter(&c);
    let only_iphone = vec![device("dev-iphone", Some((PushPlatform::Apns, IPHONE)))];
    let err = a
        .send(&dispatch("m-9/0/push", only_iphone, notice()))
        .await
        .unwrap_err();
    assert_eq!(err, permanent("push_platform_not_configured"));
    assert!(fake.received().is_empty());
    // The Android phone still gets its wake-up.
    a.send(&dispatch("m-9/1/push", phones(), notice()))
        .await
        .unwrap();
    assert_eq!(fake.received().len(), 1);
    assert_eq!(fake.received()[0].platform, Platform::Fcm);
}

#[tokio::test]
async fn a_hanging_provider_times_out() {
    let fake = start_fake().await;
    fake.set_hang(Duration::from_secs(3));
    let mut c = config(&fake.base_url());
    c.timeout_ms = 300;
    let only_iphone = vec![device("dev-iphone", Some((PushPlatform::Apns, IPHONE)))];
    let started = Instant::now();
    let err = adapter(&c)
        .send(&dispatch("m-10/0/push", only_iphone, notice()))
        .await
        .unwrap_err();
    assert_eq!(err, transient("apns_timeout"));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn an_unreachable_provider_is_transient() {
    provider();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let a = adapter(&config(&format!("http://{addr}")));
    let only_android = vec![device("dev-android", Some((PushPlatform::Fcm, ANDROID)))];
    let err = a
        .send(&dispatch("m-11/0/push", only_android, notice()))
        .await
        .unwrap_err();
    assert_eq!(err, transient("fcm_unreachable"));
}

#[tokio::test]
async fn install_adds_the_adapter_where_asked() {
    provider();
    let c = config("https://push.example");
    let deployment = push::install(&c, None, Channels::default()).unwrap();
    assert!(deployment.get(Channel::Push).is_some());
    assert!(deployment.verifier_for("acme", Channel::Push).is_none());
    let tenant = push::install(&c, Some("acme"), Channels::default()).unwrap();
    assert!(tenant.get(Channel::Push).is_none());
    assert!(tenant.for_tenant("acme", Channel::Push).is_some());
    let shown = format!("{c:?}");
    assert!(!shown.contains(APNS_TOKEN) && !shown.contains(FCM_TOKEN));
}

#[test]
fn install_rejects_bad_config_naming_the_field() {
    provider();
    type Edit = fn(&mut PushConfig);
    let cases: Vec<(&str, Edit)> = vec![
        ("apns", |c| {
            c.apns = None;
            c.fcm = None;
        }),
        ("apns.endpoint", |c| {
            c.apns.as_mut().unwrap().endpoint = "http://api.push.apple.com".into();
        }),
        ("apns.endpoint", |c| {
            c.apns.as_mut().unwrap().endpoint = "push.example".into();
        }),
        ("apns.topic", |c| {
            c.apns.as_mut().unwrap().topic = String::new()
        }),
        ("apns.token", |c| {
            c.apns.as_mut().unwrap().token = String::new()
        }),
        ("fcm.endpoint", |c| {
            c.fcm.as_mut().unwrap().endpoint = "http://fcm.googleapis.com".into();
        }),
        ("fcm.project", |c| {
            c.fcm.as_mut().unwrap().project = "a/../b".into();
        }),
        ("fcm.token", |c| {
            c.fcm.as_mut().unwrap().token = String::new()
        }),
        ("timeout_ms", |c| c.timeout_ms = 0),
    ];
    for (field, edit) in cases {
        let mut c = config("https://push.example");
        edit(&mut c);
        let err = push::install(&c, None, Channels::default()).unwrap_err();
        assert_eq!(err.channel, "push");
        assert!(
            err.reason.contains(&format!("`{field}`")),
            "{field}: {}",
            err.reason
        );
    }
}

#[test]
fn config_parses_strictly_with_defaults() {
    let c: PushConfig = serde_json::from_value(json!({
        "fcm": { "endpoint": "https://fcm.googleapis.com", "project": "p", "token": "t" },
    }))
    .unwrap();
    assert!(c.apns.is_none());
    assert_eq!(c.timeout_ms, 10_000);
    for bad in [
        json!({ "gcm": {} }),
        json!({ "apns": { "endpoint": "https://a", "topic": "t", "token": "t", "sound": "x" } }),
    ] {
        assert!(serde_json::from_value::<PushConfig>(bad).is_err());
    }
}
