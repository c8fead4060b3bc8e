//! The SMS adapter and its status-callback verifier against the fake SMS
//! provider, over real loopback sockets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Uri};
use ladder_channels::sms::{self, SmsAdapter, SmsConfig, SmsWebhookVerifier};
use ladder_channels::webhook::{
    Receipt, ReceiptStatus, WebhookError, WebhookRequest, WebhookVerifier,
};
use ladder_channels::{Adapter, Channels, Content, DeliveryError, Destination, Dispatch};
use ladder_core::{AssuranceLevel, Channel};
use ladder_fakes::sms::{self as fake, FakeSms, FakeSmsConfig, SmsStatus};

const ACCOUNT: &str = "ACtest0123456789";
const TOKEN: &str = "sms-auth-token-for-tests";
const FROM: &str = "+15550100000";
const PHONE: &str = "+447700900123";
const NOTICE: &str = "You have a new secure message. Open https://portal.example/p/abc";

fn provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

async fn start_fake(auto: Option<SmsStatus>) -> FakeSms {
    provider();
    fake::start(FakeSmsConfig {
        account: ACCOUNT.into(),
        token: TOKEN.into(),
        auto_receipts: auto,
        receipt_delay: Duration::from_millis(20),
    })
    .await
    .unwrap()
}

fn config(endpoint: &str, status_callback: Option<String>) -> SmsConfig {
    SmsConfig {
        endpoint: endpoint.into(),
        account: ACCOUNT.into(),
        token: TOKEN.into(),
        from: FROM.into(),
        status_callback,
        timeout_ms: 2_000,
    }
}

fn adapter(config: &SmsConfig) -> SmsAdapter {
    provider();
    SmsAdapter::new(config).unwrap()
}

fn dispatch(key: &str, phone: Option<&str>, content: Content) -> Dispatch {
    Dispatch {
        tenant_id: "t-1".into(),
        message_id: "m-1".into(),
        recipient_id: "r-1".into(),
        thread_id: "th-1".into(),
        channel: Channel::Sms,
        idempotency_key: key.into(),
        content,
        to: Destination {
            phone: phone.map(str::to_string),
            email: None,
            devices: Vec::new(),
        },
        assurance: AssuranceLevel::None,
        expires_at: 4_102_444_800,
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

/// One webhook request as the server would see it.
#[derive(Debug, Clone)]
struct Captured {
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A stand-in for the server's `/v1/webhooks/sms/{tenant}` route that
/// records what arrives.
async fn receiver() -> (String, Arc<Mutex<Vec<Captured>>>) {
    let seen: Arc<Mutex<Vec<Captured>>> = Arc::default();
    let sink = seen.clone();
    let app = axum::Router::new().route(
        "/v1/webhooks/sms/{tenant}",
        axum::routing::post(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(Captured {
                    uri: uri.to_string(),
                    headers: headers
                        .iter()
                        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap().to_string()))
                        .collect(),
                    body: body.to_vec(),
                });
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), seen)
}

/// The fake's record of its callbacks and their answers, once `n` of them
/// are answered (bounded wait).
async fn fake_callbacks_answered(fake: &FakeSms, n: usize) -> Vec<(SmsStatus, Option<u16>)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got: Vec<_> = fake
            .callbacks()
            .iter()
            .map(|c| (c.status, c.answered))
            .collect();
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "the fake recorded only {} callbacks",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_for(seen: &Arc<Mutex<Vec<Captured>>>, n: usize) -> Vec<Captured> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = seen.lock().unwrap().clone();
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "only {} callbacks arrived",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn verify(
    verifier: &dyn WebhookVerifier,
    base: &str,
    c: &Captured,
) -> Result<Vec<Receipt>, WebhookError> {
    let url = format!("{base}{}", c.uri);
    verifier.receipts(&WebhookRequest {
        url: &url,
        headers: &c.headers,
        body: &c.body,
    })
}

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn signed_request(
    url: &str,
    pairs: &[(&str, &str)],
    token: &str,
) -> (Vec<(String, String)>, Vec<u8>) {
    let p = params(pairs);
    let signature = fake::sign(token, url, &p);
    (
        vec![("x-ladder-signature".to_string(), signature)],
        fake::encode_form(&p).into_bytes(),
    )
}

#[tokio::test]
async fn sends_the_notice_as_the_provider_expects() {
    let fake = start_fake(None).await;
    let callback = "https://ladder.example/v1/webhooks/sms/acme".to_string();
    let a = adapter(&config(&fake.base_url(), Some(callback.clone())));
    let accepted = a
        .send(&dispatch("m-1/0/sms", Some(PHONE), notice()))
        .await
        .unwrap();
    assert!(accepted.provider_ref.starts_with("SM"));
    assert!(!accepted.duplicate);
    let received = fake.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.sid, accepted.provider_ref);
    assert_eq!(r.to, PHONE);
    assert_eq!(r.from, FROM);
    assert_eq!(r.body, NOTICE);
    assert_eq!(r.status_callback.as_deref(), Some(callback.as_str()));
    assert_eq!(r.idempotency_key.as_deref(), Some("m-1/0/sms"));
    assert_eq!(fake.unauthorized(), 0);
}

#[tokio::test]
async fn carries_a_payload_only_as_text_and_only_when_handed_one() {
    let fake = start_fake(None).await;
    let a = adapter(&config(&fake.base_url(), None));
    let payload = Content::Payload(zeroize::Zeroizing::new(
        b"Your parcel arrives on Tuesday".to_vec(),
    ));
    a.send(&dispatch("m-2/0/sms", Some(PHONE), payload))
        .await
        .unwrap();
    let received = fake.received();
    assert_eq!(received[0].body, "Your parcel arrives on Tuesday");
    assert_eq!(received[0].status_callback, None);

    let binary = Content::Payload(zeroize::Zeroizing::new(vec![0xff, 0xfe, 0x00]));
    let err = a
        .send(&dispatch("m-3/0/sms", Some(PHONE), binary))
        .await
        .unwrap_err();
    assert_eq!(err, permanent("sms_payload_not_text"));
    // A payload labelled above what SMS can give is refused outright.
    let mut labelled = dispatch(
        "m-3/1/sms",
        Some(PHONE),
        Content::Payload(zeroize::Zeroizing::new(b"Net pay: 4,211.07".to_vec())),
    );
    labelled.assurance = AssuranceLevel::Transport;
    let err = a.send(&labelled).await.unwrap_err();
    assert_eq!(err, permanent("sms_payload_above_none"));
    assert_eq!(fake.received().len(), 1);
    // A notice may travel on a route of any level: it carries no content.
    let mut notice_on_e2ee = dispatch("m-3/2/sms", Some(PHONE), notice());
    notice_on_e2ee.assurance = AssuranceLevel::E2ee;
    a.send(&notice_on_e2ee).await.unwrap();
    assert_eq!(fake.received().len(), 2);
}

#[tokio::test]
async fn a_repeated_idempotency_key_is_a_duplicate_of_the_same_message() {
    let fake = start_fake(None).await;
    let a = adapter(&config(&fake.base_url(), None));
    let first = a
        .send(&dispatch("m-4/0/sms", Some(PHONE), notice()))
        .await
        .unwrap();
    let again = a
        .send(&dispatch("m-4/0/sms", Some(PHONE), notice()))
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(again.provider_ref, first.provider_ref);
    assert_eq!(fake.received().len(), 1);
    assert_eq!(fake.replayed(), 1);

    let other = a
        .send(&dispatch("m-4/1/sms", Some(PHONE), notice()))
        .await
        .unwrap();
    assert!(!other.duplicate);
    assert_ne!(other.provider_ref, first.provider_ref);
    assert_eq!(fake.received().len(), 2);
}

#[tokio::test]
async fn no_phone_is_permanent_and_sends_nothing() {
    let fake = start_fake(None).await;
    let a = adapter(&config(&fake.base_url(), None));
    for phone in [None, Some(""), Some("  ")] {
        let err = a
            .send(&dispatch("m-5/0/sms", phone, notice()))
            .await
            .unwrap_err();
        assert_eq!(err, permanent("no_phone"));
    }
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn provider_failures_map_to_transient_or_permanent() {
    let fake = start_fake(None).await;
    let a = adapter(&config(&fake.base_url(), None));
    let d = dispatch("m-6/0/sms", Some(PHONE), notice());

    for (status, expected) in [
        (500, transient("sms_http_500")),
        (503, transient("sms_http_503")),
        (429, transient("sms_http_429")),
        (400, permanent("sms_http_400")),
        (403, permanent("sms_http_403")),
        (404, permanent("sms_http_404")),
    ] {
        fake.fail_next(1, status);
        assert_eq!(a.send(&d).await.unwrap_err(), expected, "status {status}");
    }
    assert!(fake.received().is_empty());
    // The failures did nothing: the retry is a first send.
    let ok = a.send(&d).await.unwrap();
    assert!(!ok.duplicate);

    // The provider's own validation codes come along.
    let err = a
        .send(&dispatch("m-7/0/sms", Some("12345"), notice()))
        .await
        .unwrap_err();
    assert_eq!(err, permanent("sms_http_400_21211"));
    let empty = a
        .send(&dispatch(
            "m-8/0/sms",
            Some(PHONE),
            Content::Notice(String::new()),
        ))
        .await
        .unwrap_err();
    assert_eq!(empty, permanent("sms_http_400_21602"));
}

#[tokio::test]
async fn wrong_credentials_are_permanent() {
    let fake = start_fake(None).await;
    let mut c = config(&fake.base_url(), None);
    c.token = "not-the-token".into();
    let err = adapter(&c)
        .send(&dispatch("m-9/0/sms", Some(PHONE), notice()))
        .await
        .unwrap_err();
    assert_eq!(err, permanent("sms_http_401_20003"));
    assert_eq!(fake.unauthorized(), 1);
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn a_hanging_provider_times_out_and_the_retry_is_a_duplicate() {
    let fake = start_fake(None).await;
    let mut c = config(&fake.base_url(), None);
    c.timeout_ms = 300;
    let a = adapter(&c);
    fake.set_hang(Duration::from_secs(3));
    let d = dispatch("m-10/0/sms", Some(PHONE), notice());
    let started = Instant::now();
    assert_eq!(a.send(&d).await.unwrap_err(), transient("sms_timeout"));
    assert!(started.elapsed() < Duration::from_secs(2));
    // The provider took it before its answer was lost: the retry with the
    // same key shows the recipient nothing new.
    fake.set_hang(Duration::ZERO);
    let retry = a.send(&d).await.unwrap();
    assert!(retry.duplicate);
    assert_eq!(fake.received().len(), 1);
    assert_eq!(retry.provider_ref, fake.received()[0].sid);
}

#[tokio::test]
async fn an_unreachable_provider_is_transient() {
    provider();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let a = adapter(&config(&format!("http://{addr}"), None));
    let err = a
        .send(&dispatch("m-11/0/sms", Some(PHONE), notice()))
        .await
        .unwrap_err();
    assert_eq!(err, transient("sms_unreachable"));
}

#[tokio::test]
async fn signed_status_callbacks_verify_and_become_receipts() {
    let fake = start_fake(Some(SmsStatus::Delivered)).await;
    let (base, seen) = receiver().await;
    // A query string is part of the signed URL.
    let callback = format!("{base}/v1/webhooks/sms/acme?v=1");
    let channels = sms::install(
        &config(&fake.base_url(), Some(callback)),
        Some("acme"),
        Channels::default(),
    )
    .unwrap();
    let a = channels.for_tenant("acme", Channel::Sms).unwrap().clone();
    let verifier = channels.verifier_for("acme", Channel::Sms).unwrap().clone();
    let accepted = a
        .send(&dispatch("m-12/0/sms", Some(PHONE), notice()))
        .await
        .unwrap();

    let callbacks = wait_for(&seen, 2).await;
    assert_eq!(callbacks[0].uri, "/v1/webhooks/sms/acme?v=1");
    // `sent` is progress: verified, no receipt.
    assert_eq!(verify(verifier.as_ref(), &base, &callbacks[0]), Ok(vec![]));
    assert_eq!(
        verify(verifier.as_ref(), &base, &callbacks[1]),
        Ok(vec![Receipt {
            provider_ref: accepted.provider_ref.clone(),
            status: ReceiptStatus::Delivered,
        }])
    );
    // The fake records a callback once it has read the answer, which can be
    // after our receiver has seen the request.
    let sent = fake_callbacks_answered(&fake, 2).await;
    assert_eq!(
        sent,
        vec![
            (SmsStatus::Sent, Some(200)),
            (SmsStatus::Delivered, Some(200))
        ]
    );

    // Undelivered and failed both fail the message.
    for (status, n) in [(SmsStatus::Undelivered, 3), (SmsStatus::Failed, 4)] {
        assert_eq!(
            fake.send_status(&accepted.provider_ref, status)
                .await
                .unwrap(),
            200
        );
        let callbacks = wait_for(&seen, n).await;
        assert_eq!(
            verify(verifier.as_ref(), &base, &callbacks[n - 1]),
            Ok(vec![Receipt {
                provider_ref: accepted.provider_ref.clone(),
                status: ReceiptStatus::Failed,
            }])
        );
    }
}

#[tokio::test]
async fn dropped_receipts_never_arrive() {
    let fake = start_fake(Some(SmsStatus::Delivered)).await;
    let (base, seen) = receiver().await;
    fake.drop_receipts(true);
    let a = adapter(&config(
        &fake.base_url(),
        Some(format!("{base}/v1/webhooks/sms/acme")),
    ));
    a.send(&dispatch("m-13/0/sms", Some(PHONE), notice()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(seen.lock().unwrap().is_empty());
    assert!(fake.callbacks().is_empty());
}

#[tokio::test]
async fn forged_and_tampered_callbacks_are_rejected() {
    let fake = start_fake(None).await;
    let url = "https://ladder.example/v1/webhooks/sms/acme".to_string();
    let a = adapter(&config(&fake.base_url(), Some(url.clone())));
    let accepted = a
        .send(&dispatch("m-14/0/sms", Some(PHONE), notice()))
        .await
        .unwrap();
    let genuine = fake
        .signed_callback(&accepted.provider_ref, SmsStatus::Delivered)
        .unwrap();
    assert_eq!(genuine.url, url);
    let verifier = SmsWebhookVerifier::new(TOKEN);
    let headers = vec![("x-ladder-signature".to_string(), genuine.signature.clone())];
    let check = |url: &str, headers: &[(String, String)], body: &[u8]| {
        verifier.receipts(&WebhookRequest { url, headers, body })
    };

    // The genuine one, header name in any case.
    let upper = vec![("X-Ladder-Signature".to_string(), genuine.signature.clone())];
    for h in [&headers, &upper] {
        assert_eq!(
            check(&url, h, &genuine.body),
            Ok(vec![Receipt {
                provider_ref: accepted.provider_ref.clone(),
                status: ReceiptStatus::Delivered,
            }])
        );
    }

    // Tampered: the status flipped, the signature kept.
    let tampered = String::from_utf8(genuine.body.clone())
        .unwrap()
        .replace("MessageStatus=delivered", "MessageStatus=failed");
    assert_ne!(tampered.as_bytes(), genuine.body.as_slice());
    assert_eq!(
        check(&url, &headers, tampered.as_bytes()),
        Err(WebhookError::BadSignature)
    );
    // Another message's sid.
    let other = String::from_utf8(genuine.body.clone())
        .unwrap()
        .replace(&accepted.provider_ref, "SM00000000000000000000000000000000");
    assert_eq!(
        check(&url, &headers, other.as_bytes()),
        Err(WebhookError::BadSignature)
    );
    // Replayed to another tenant's URL.
    assert_eq!(
        check(
            "https://ladder.example/v1/webhooks/sms/other",
            &headers,
            &genuine.body
        ),
        Err(WebhookError::BadSignature)
    );
    // No signature, an empty one, garbage, and one made with another key.
    assert_eq!(
        check(&url, &[], &genuine.body),
        Err(WebhookError::BadSignature)
    );
    for bad in ["", "!!!not base64!!!", "AAAA"] {
        let h = vec![("x-ladder-signature".to_string(), bad.to_string())];
        assert_eq!(
            check(&url, &h, &genuine.body),
            Err(WebhookError::BadSignature),
            "{bad:?}"
        );
    }
    let pairs = [
        ("MessageSid", accepted.provider_ref.as_str()),
        ("MessageStatus", "delivered"),
    ];
    let (forged_headers, forged_body) = signed_request(&url, &pairs, "a-guessed-token");
    assert_eq!(
        check(&url, &forged_headers, &forged_body),
        Err(WebhookError::BadSignature)
    );
    // The same, signed with the right key, passes: the scheme is the same.
    let (h, b) = signed_request(&url, &pairs, TOKEN);
    assert!(check(&url, &h, &b).is_ok());
    // And the channel crate's signer agrees with the fake's.
    assert_eq!(sms::sign(TOKEN, &url, &params(&pairs)), h[0].1);
}

#[tokio::test]
async fn malformed_callbacks_are_rejected() {
    let verifier = SmsWebhookVerifier::new(TOKEN);
    let url = "https://ladder.example/v1/webhooks/sms/acme";
    let check = |pairs: &[(&str, &str)]| {
        let (h, b) = signed_request(url, pairs, TOKEN);
        verifier.receipts(&WebhookRequest {
            url,
            headers: &h,
            body: &b,
        })
    };
    let malformed = |r: Result<Vec<Receipt>, WebhookError>| {
        assert!(matches!(r, Err(WebhookError::Malformed(_))), "{r:?}");
    };
    malformed(check(&[("MessageStatus", "delivered")]));
    malformed(check(&[("MessageSid", ""), ("MessageStatus", "delivered")]));
    malformed(check(&[("MessageSid", "SM1")]));
    malformed(check(&[
        ("MessageSid", "SM1"),
        ("MessageStatus", "exploded"),
    ]));
    malformed(check(&[
        ("MessageSid", "SM1"),
        ("MessageSid", "SM2"),
        ("MessageStatus", "delivered"),
    ]));
    // Not form-encoded at all.
    let h = vec![("x-ladder-signature".to_string(), "AAAA".to_string())];
    for body in [&b"MessageSid=%zz"[..], &[0xff, 0xfe][..]] {
        malformed(verifier.receipts(&WebhookRequest {
            url,
            headers: &h,
            body,
        }));
    }
    // Every known status.
    for (status, expected) in [
        ("queued", None),
        ("sent", None),
        ("delivered", Some(ReceiptStatus::Delivered)),
        ("undelivered", Some(ReceiptStatus::Failed)),
        ("failed", Some(ReceiptStatus::Failed)),
    ] {
        let got = check(&[("MessageSid", "SM1"), ("MessageStatus", status)]).unwrap();
        let expected: Vec<Receipt> = expected
            .into_iter()
            .map(|status| Receipt {
                provider_ref: "SM1".into(),
                status,
            })
            .collect();
        assert_eq!(got, expected, "{status}");
    }
}

#[tokio::test]
async fn install_adds_the_adapter_and_verifier_where_asked() {
    provider();
    let c = config("https://api.sms.example", None);
    let deployment = sms::install(&c, None, Channels::default()).unwrap();
    assert!(deployment.get(Channel::Sms).is_some());
    assert!(deployment.verifier_for("anyone", Channel::Sms).is_some());

    let tenant = sms::install(&c, Some("acme"), Channels::default()).unwrap();
    assert!(tenant.get(Channel::Sms).is_none());
    assert!(tenant.for_tenant("acme", Channel::Sms).is_some());
    assert!(tenant.for_tenant("other", Channel::Sms).is_none());
    assert!(tenant.verifier_for("acme", Channel::Sms).is_some());
    assert!(tenant.verifier_for("other", Channel::Sms).is_none());
    // Debug never shows the token.
    assert!(!format!("{c:?}").contains(TOKEN));
}

#[test]
fn install_rejects_bad_config_naming_the_field() {
    provider();
    type Edit = fn(&mut SmsConfig);
    let cases: Vec<(&str, Edit)> = vec![
        ("endpoint", |c| c.endpoint = "not a url".into()),
        ("endpoint", |c| c.endpoint = "http://api.sms.example".into()),
        ("endpoint", |c| c.endpoint = "ftp://127.0.0.1".into()),
        ("account", |c| c.account = String::new()),
        ("account", |c| c.account = "AC/../x".into()),
        ("token", |c| c.token = String::new()),
        ("from", |c| c.from = " ".into()),
        ("status_callback", |c| {
            c.status_callback = Some("/relative".into())
        }),
        ("status_callback", |c| {
            c.status_callback = Some("http://ladder.example/cb".into());
        }),
        ("timeout_ms", |c| c.timeout_ms = 0),
        ("timeout_ms", |c| c.timeout_ms = 3_600_000),
    ];
    for (field, edit) in cases {
        let mut c = config("https://api.sms.example", None);
        edit(&mut c);
        let err = sms::install(&c, None, Channels::default()).unwrap_err();
        assert_eq!(err.channel, "sms");
        assert!(
            err.reason.contains(&format!("`{field}`")),
            "{field}: {}",
            err.reason
        );
    }
    // Loopback may be plain http (tests, a local relay).
    for ok in ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"] {
        assert!(sms::install(&config(ok, None), None, Channels::default()).is_ok());
    }
}

#[test]
fn config_parses_strictly_with_defaults() {
    let c: SmsConfig = serde_json::from_value(serde_json::json!({
        "endpoint": "https://api.sms.example",
        "account": ACCOUNT,
        "token": TOKEN,
        "from": FROM,
    }))
    .unwrap();
    assert_eq!(c.timeout_ms, 10_000);
    assert_eq!(c.status_callback, None);
    let unknown = serde_json::from_value::<SmsConfig>(serde_json::json!({
        "endpoint": "https://api.sms.example",
        "account": ACCOUNT,
        "token": TOKEN,
        "from": FROM,
        "sender": FROM,
    }));
    assert!(unknown.unwrap_err().to_string().contains("sender"));
}
