//! The RCS adapter and webhook verifier against the fake RCS provider, over
//! real loopback sockets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::HeaderMap;
use ladder_channels::rcs::{self, RcsAdapter, RcsConfig, RcsWebhooks};
use ladder_channels::webhook::{
    Receipt, ReceiptStatus, WebhookError, WebhookRequest, WebhookVerifier,
};
use ladder_channels::{
    Accepted, Adapter, Channels, Content, DeliveryError, Destination, Dispatch, Revoked,
};
use ladder_core::{AssuranceLevel, Channel, Timestamp};
use ladder_fakes::rcs::{self as fake, Expiry, FakeRcs, FakeRcsConfig, RcsEvent};

const PHONE: &str = "+15550001111";
const SECRET: &str = "rcs-webhook-secret-for-tests";
const TOKEN: &str = "rcs-api-token-for-tests";
const AGENT: &str = "ladder-test-agent";

fn provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn fake_config(auto_receipts: bool, webhook_url: Option<String>) -> FakeRcsConfig {
    FakeRcsConfig {
        token: TOKEN.into(),
        agent_id: AGENT.into(),
        webhook_url,
        webhook_secret: SECRET.into(),
        auto_receipts,
    }
}

async fn start_fake(auto_receipts: bool) -> FakeRcs {
    provider();
    fake::start(fake_config(auto_receipts, None)).await.unwrap()
}

fn config(endpoint: &str) -> RcsConfig {
    RcsConfig {
        endpoint: endpoint.into(),
        token: TOKEN.into(),
        agent_id: AGENT.into(),
        webhook_secret: SECRET.into(),
        timeout_ms: 2_000,
        message_ttl_s: None,
        required_features: Vec::new(),
    }
}

fn adapter(config: &RcsConfig) -> RcsAdapter {
    provider();
    RcsAdapter::new(config).unwrap()
}

fn dispatch(key: &str, phone: Option<&str>, content: Content, expires_at: i64) -> Dispatch {
    Dispatch {
        tenant_id: "t-1".into(),
        message_id: "m-1".into(),
        recipient_id: "r-1".into(),
        thread_id: "th-1".into(),
        channel: Channel::Rcs,
        idempotency_key: key.into(),
        content,
        to: Destination {
            phone: phone.map(str::to_string),
            email: None,
            devices: Vec::new(),
        },
        assurance: AssuranceLevel::Transport,
        expires_at,
        handed_over_ms: 1_764_547_200_000,
    }
}

fn payload(text: &str) -> Content {
    Content::Payload(zeroize::Zeroizing::new(text.as_bytes().to_vec()))
}

fn payroll(key: &str) -> Dispatch {
    dispatch(
        key,
        Some(PHONE),
        payload("Your payslip for May is ready"),
        now() + 3_600,
    )
}

fn permanent(code: &str) -> DeliveryError {
    DeliveryError::Permanent { code: code.into() }
}

fn transient(code: &str) -> DeliveryError {
    DeliveryError::Transient { code: code.into() }
}

#[tokio::test]
async fn send_delivers_the_text_with_the_idempotency_key_as_message_id() {
    let fake = start_fake(false).await;
    let rcs = adapter(&config(&fake.base_url()));
    // The server's keys contain slashes: they must survive the URL.
    let key = "0193f1c2-msg/2/rcs";
    let d = payroll(key);

    let accepted = rcs.send(&d).await.unwrap();
    assert_eq!(
        accepted,
        Accepted {
            provider_ref: key.into(),
            duplicate: false
        }
    );
    let received = fake.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].msisdn, PHONE);
    assert_eq!(received[0].message_id, key);
    assert_eq!(received[0].text, "Your payslip for May is ready");
    assert_eq!(
        received[0].expire,
        Some(Expiry::Time(Timestamp(d.expires_at).to_string()))
    );

    // A retry of the same route: the provider already has it.
    let again = rcs.send(&payroll(key)).await.unwrap();
    assert_eq!(
        again,
        Accepted {
            provider_ref: key.into(),
            duplicate: true
        }
    );
    assert_eq!(fake.received().len(), 1, "the recipient sees nothing new");
    fake.shutdown().await;
}

#[tokio::test]
async fn a_notice_is_sent_and_ttl_is_capped_by_the_message_expiry() {
    let fake = start_fake(false).await;
    let mut c = config(&fake.base_url());
    c.message_ttl_s = Some(86_400);
    let rcs = adapter(&c);

    let d = dispatch(
        "k-notice",
        Some(PHONE),
        Content::Notice("You have a new secure message from Acme".into()),
        now() + 600,
    );
    rcs.send(&d).await.unwrap();
    let got = &fake.received()[0];
    assert_eq!(got.text, "You have a new secure message from Acme");
    let Some(Expiry::Ttl(ttl)) = &got.expire else {
        panic!("expected a ttl, got {:?}", got.expire);
    };
    let secs: u64 = ttl.strip_suffix('s').unwrap().parse().unwrap();
    assert!(
        (590..=600).contains(&secs),
        "ttl {ttl} is capped by the expiry"
    );

    // Short configured ttl wins over a far expiry.
    c.message_ttl_s = Some(300);
    let rcs = adapter(&c);
    rcs.send(&payroll("k-ttl")).await.unwrap();
    assert_eq!(fake.received()[1].expire, Some(Expiry::Ttl("300s".into())));
}

#[tokio::test]
async fn an_unreachable_number_is_a_permanent_failure_and_nothing_is_sent() {
    let fake = start_fake(false).await;
    let rcs = adapter(&config(&fake.base_url()));
    fake.set_reachable(PHONE, false);

    let err = rcs.send(&payroll("k-1")).await.unwrap_err();
    assert_eq!(err, permanent("rcs_unreachable"));
    assert!(fake.received().is_empty());
    assert!(!format!("{err} {err:?}").contains("5550001111"));

    // A capability flip back: the number takes RCS again.
    fake.set_reachable(PHONE, true);
    rcs.send(&payroll("k-1")).await.unwrap();
    assert_eq!(fake.received().len(), 1);
}

#[tokio::test]
async fn a_missing_required_feature_is_a_permanent_failure() {
    let fake = start_fake(false).await;
    let mut c = config(&fake.base_url());
    c.required_features = vec!["RICHCARD_STANDALONE".into()];
    let rcs = adapter(&c);

    rcs.send(&payroll("k-rich")).await.unwrap();
    fake.set_features(PHONE, &["ACTION_DIAL"]);
    assert_eq!(
        rcs.send(&payroll("k-plain")).await.unwrap_err(),
        permanent("rcs_feature_missing")
    );
    assert_eq!(fake.received().len(), 1);
}

#[tokio::test]
async fn a_destination_without_a_usable_phone_is_refused_before_any_request() {
    let fake = start_fake(false).await;
    let rcs = adapter(&config(&fake.base_url()));
    let no_phone = dispatch("k", None, payload("x"), now() + 60);
    assert_eq!(
        rcs.send(&no_phone).await.unwrap_err(),
        permanent("no_phone")
    );
    let bad = dispatch("k", Some("+1 555/../x"), payload("x"), now() + 60);
    assert_eq!(
        rcs.send(&bad).await.unwrap_err(),
        permanent("invalid_phone")
    );
    let expired = dispatch("k", Some(PHONE), payload("x"), now() - 1);
    assert_eq!(rcs.send(&expired).await.unwrap_err(), permanent("expired"));
    let binary = dispatch(
        "k",
        Some(PHONE),
        Content::Payload(zeroize::Zeroizing::new(vec![0xff, 0xfe])),
        now() + 60,
    );
    assert_eq!(
        rcs.send(&binary).await.unwrap_err(),
        permanent("payload_not_utf8")
    );
    assert!(fake.received().is_empty());
    assert_eq!(fake.unauthorized(), 0);
}

#[tokio::test]
async fn a_5xx_is_transient_and_the_retry_goes_through() {
    let fake = start_fake(false).await;
    let rcs = adapter(&config(&fake.base_url()));

    fake.fail_next(1, 503);
    assert_eq!(
        rcs.send(&payroll("k-1")).await.unwrap_err(),
        transient("rcs_http_503")
    );
    assert!(fake.received().is_empty());
    // Two failures in a row (capability check, then a retry's check).
    fake.fail_next(2, 500);
    for _ in 0..2 {
        assert_eq!(
            rcs.send(&payroll("k-1")).await.unwrap_err(),
            transient("rcs_http_500")
        );
    }
    rcs.send(&payroll("k-1")).await.unwrap();
    assert_eq!(fake.received().len(), 1);

    fake.fail_next(1, 429);
    assert_eq!(
        rcs.send(&payroll("k-2")).await.unwrap_err(),
        transient("rcs_rate_limited")
    );
    fake.fail_next(1, 400);
    assert_eq!(
        rcs.send(&payroll("k-2")).await.unwrap_err(),
        permanent("rcs_http_400")
    );
}

#[tokio::test]
async fn a_wrong_token_is_refused_by_the_provider() {
    let fake = start_fake(false).await;
    let mut c = config(&fake.base_url());
    c.token = "not-the-token".into();
    let rcs = adapter(&c);
    assert_eq!(
        rcs.send(&payroll("k-1")).await.unwrap_err(),
        permanent("rcs_unauthorized")
    );
    assert_eq!(fake.unauthorized(), 1);
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn a_hanging_provider_times_out_transiently() {
    let fake = start_fake(false).await;
    let mut c = config(&fake.base_url());
    c.timeout_ms = 200;
    let rcs = adapter(&c);
    fake.set_hang(Duration::from_secs(5));

    let started = Instant::now();
    let err = rcs.send(&payroll("k-1")).await.unwrap_err();
    assert_eq!(err, transient("timeout"));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    fake.set_hang(Duration::ZERO);
    rcs.send(&payroll("k-1")).await.unwrap();
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    provider();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let rcs = adapter(&config(&format!("http://127.0.0.1:{port}")));
    assert_eq!(
        rcs.send(&payroll("k-1")).await.unwrap_err(),
        transient("connect")
    );
}

#[tokio::test]
async fn revoke_withdraws_an_undelivered_message_but_not_a_delivered_one() {
    let fake = start_fake(false).await;
    let rcs = adapter(&config(&fake.base_url()));

    let key = "m-1/0/rcs";
    let d = payroll(key);
    let accepted = rcs.send(&d).await.unwrap();
    assert_eq!(
        rcs.revoke(&d, &accepted.provider_ref).await.unwrap(),
        Revoked::Revoked
    );
    assert_eq!(fake.revoked(), vec![key.to_string()]);
    // Withdrawing again is harmless.
    assert_eq!(rcs.revoke(&d, key).await.unwrap(), Revoked::Revoked);
    assert_eq!(fake.revoked().len(), 1);

    // Delivered (receipt sent; no webhook is listening here): too late.
    let d2 = payroll("m-2/0/rcs");
    rcs.send(&d2).await.unwrap();
    let _ = fake.send_receipt("m-2/0/rcs", RcsEvent::Delivered).await;
    assert_eq!(
        rcs.revoke(&d2, "m-2/0/rcs").await.unwrap(),
        Revoked::AlreadyDelivered
    );
    assert_eq!(fake.revoked().len(), 1);
    fake.shutdown().await;

    // With automatic receipts the phone has it at once; an offline phone
    // does not, so its message can still be withdrawn.
    let fake = start_fake(true).await;
    let rcs = adapter(&config(&fake.base_url()));
    let d = payroll("m-3/0/rcs");
    rcs.send(&d).await.unwrap();
    assert_eq!(
        rcs.revoke(&d, "m-3/0/rcs").await.unwrap(),
        Revoked::AlreadyDelivered
    );
    fake.set_offline(PHONE, true);
    let d = payroll("m-4/0/rcs");
    rcs.send(&d).await.unwrap();
    assert_eq!(rcs.revoke(&d, "m-4/0/rcs").await.unwrap(), Revoked::Revoked);
    assert_eq!(fake.revoked(), vec!["m-4/0/rcs".to_string()]);

    // Revoke failures are codes too.
    fake.fail_next(1, 502);
    assert_eq!(
        rcs.revoke(&d, "m-4/0/rcs").await.unwrap_err(),
        transient("rcs_http_502")
    );
}

/// A webhook endpoint on loopback that records what it was sent.
type Captured = Arc<Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>>;

async fn webhook_sink() -> (String, Captured) {
    let captured: Captured = Arc::default();
    let sink = captured.clone();
    let app = axum::Router::new().route(
        "/v1/webhooks/rcs/acme",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                let headers = headers
                    .iter()
                    .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap().to_string()))
                    .collect();
                sink.lock().unwrap().push((headers, body.to_vec()));
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/v1/webhooks/rcs/acme",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, captured)
}

fn check(
    verifier: &dyn WebhookVerifier,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Vec<Receipt>, WebhookError> {
    verifier.receipts(&WebhookRequest {
        url: "https://ladder.example/v1/webhooks/rcs/acme",
        headers,
        body,
    })
}

#[tokio::test]
async fn the_verifier_accepts_the_fakes_signed_receipts_and_rejects_forgeries() {
    provider();
    let (url, captured) = webhook_sink().await;
    let fake = fake::start(fake_config(true, Some(url))).await.unwrap();
    let channels =
        rcs::install(&config(&fake.base_url()), Some("acme"), Channels::default()).unwrap();
    let verifier = channels.verifier_for("acme", Channel::Rcs).unwrap().clone();
    let adapter = channels.for_tenant("acme", Channel::Rcs).unwrap().clone();

    let key = "m-9/1/rcs";
    adapter.send(&payroll(key)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while captured.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "no receipts arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let webhooks = captured.lock().unwrap().clone();
    let statuses: Vec<_> = webhooks
        .iter()
        .map(|(headers, body)| check(verifier.as_ref(), headers, body).unwrap())
        .collect();
    assert_eq!(
        statuses,
        vec![
            vec![Receipt {
                provider_ref: key.into(),
                status: ReceiptStatus::Delivered
            }],
            vec![Receipt {
                provider_ref: key.into(),
                status: ReceiptStatus::Read
            }],
        ]
    );
    assert!(fake.sent_receipts().iter().all(|r| r.status == Some(200)));

    let (headers, body) = &webhooks[0];
    // A forged signature.
    let forged: Vec<_> = headers
        .iter()
        .map(|(n, v)| {
            if n == "x-goog-signature" {
                (n.clone(), fake::sign(b"someone else's secret", body))
            } else {
                (n.clone(), v.clone())
            }
        })
        .collect();
    assert_eq!(
        check(verifier.as_ref(), &forged, body),
        Err(WebhookError::BadSignature)
    );
    // A tampered body: DELIVERED turned into FAILED under the same signature.
    let tampered = String::from_utf8(body.clone())
        .unwrap()
        .replace("DELIVERED", "FAILED");
    assert_eq!(
        check(verifier.as_ref(), headers, tampered.as_bytes()),
        Err(WebhookError::BadSignature)
    );
    // No signature at all, or one that is not base64.
    let unsigned: Vec<_> = headers
        .iter()
        .filter(|(n, _)| n != "x-goog-signature")
        .cloned()
        .collect();
    assert_eq!(
        check(verifier.as_ref(), &unsigned, body),
        Err(WebhookError::BadSignature)
    );
    let garbled = vec![("x-goog-signature".to_string(), "%%%".to_string())];
    assert_eq!(
        check(verifier.as_ref(), &garbled, body),
        Err(WebhookError::BadSignature)
    );

    // Correctly signed, but not a receipt.
    let signed = |body: &[u8]| {
        vec![(
            "x-goog-signature".to_string(),
            fake::sign(SECRET.as_bytes(), body),
        )]
    };
    for bad in [&b"not json"[..], br#"{"messageId": "m-9/1/rcs"}"#] {
        assert!(matches!(
            check(verifier.as_ref(), &signed(bad), bad),
            Err(WebhookError::Malformed(_))
        ));
    }
    // Signed for another agent.
    let other = br#"{"agentId":"other","messageId":"m-9/1/rcs","eventType":"READ","sendTime":"2026-01-01T00:00:00Z"}"#;
    assert!(matches!(
        check(verifier.as_ref(), &signed(other), other),
        Err(WebhookError::Malformed(_))
    ));
    // An event that moves nothing.
    let typing = format!(
        r#"{{"agentId":"{AGENT}","messageId":"m-9/1/rcs","eventType":"IS_TYPING","sendTime":"2026-01-01T00:00:00Z"}}"#
    );
    assert_eq!(
        check(
            verifier.as_ref(),
            &signed(typing.as_bytes()),
            typing.as_bytes()
        ),
        Ok(Vec::new())
    );

    // The fake's expiry and failure receipts, signed on demand.
    for (event, status) in [
        (RcsEvent::Expired, ReceiptStatus::Expired),
        (RcsEvent::Failed, ReceiptStatus::Failed),
    ] {
        let r = fake.signed_receipt(key, event);
        let headers = vec![("X-Goog-Signature".to_string(), r.signature)];
        assert_eq!(
            check(verifier.as_ref(), &headers, &r.body).unwrap(),
            vec![Receipt {
                provider_ref: key.into(),
                status
            }]
        );
    }
}

#[tokio::test]
async fn dropped_receipts_are_not_sent_but_the_message_is_delivered() {
    provider();
    let (url, captured) = webhook_sink().await;
    let fake = fake::start(fake_config(true, Some(url))).await.unwrap();
    let rcs = adapter(&config(&fake.base_url()));
    fake.drop_receipts(true);
    let d = payroll("m-5/0/rcs");
    rcs.send(&d).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(captured.lock().unwrap().is_empty());
    assert_eq!(
        rcs.revoke(&d, "m-5/0/rcs").await.unwrap(),
        Revoked::AlreadyDelivered
    );
    // Sent by hand, it arrives.
    assert_eq!(
        fake.send_receipt("m-5/0/rcs", RcsEvent::Read)
            .await
            .unwrap(),
        200
    );
    assert_eq!(captured.lock().unwrap().len(), 1);
}

#[test]
fn install_rejects_bad_config_naming_the_field() {
    provider();
    let good = config("https://rcs.example.com/rbm");
    type Change = Box<dyn Fn(&mut RcsConfig)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "`endpoint` must not be empty",
            Box::new(|c| c.endpoint = " ".into()),
        ),
        (
            "`token` must not be empty",
            Box::new(|c| c.token = String::new()),
        ),
        (
            "`agent_id` must not be empty",
            Box::new(|c| c.agent_id = String::new()),
        ),
        (
            "`webhook_secret` must not be empty",
            Box::new(|c| c.webhook_secret = String::new()),
        ),
        (
            "`endpoint` is not a valid URL",
            Box::new(|c| c.endpoint = "rcs.example.com".into()),
        ),
        (
            "`endpoint` must use https",
            Box::new(|c| c.endpoint = "http://rcs.example.com".into()),
        ),
        (
            "`endpoint` must be an https URL",
            Box::new(|c| c.endpoint = "ftp://rcs.example.com".into()),
        ),
        (
            "`endpoint` must be a base URL",
            Box::new(|c| c.endpoint = "https://rcs.example.com/?key=1".into()),
        ),
        (
            "`endpoint` must not carry credentials",
            Box::new(|c| c.endpoint = "https://user:pw@rcs.example.com".into()),
        ),
        (
            "`timeout_ms` must be positive",
            Box::new(|c| c.timeout_ms = 0),
        ),
        (
            "`message_ttl_s` must be positive",
            Box::new(|c| c.message_ttl_s = Some(0)),
        ),
    ];
    for (expected, change) in cases {
        let mut c = good.clone();
        change(&mut c);
        let err = rcs::install(&c, None, Channels::default()).unwrap_err();
        assert_eq!(err.channel, "rcs");
        assert!(err.reason.contains(expected), "{expected}: got {err}");
    }
    let mut c = good.clone();
    c.token = String::new();
    let err = rcs::install(&c, Some("acme"), Channels::default()).unwrap_err();
    assert!(err.to_string().contains("tenant `acme`"), "{err}");
    assert!(err.to_string().contains("`token`"), "{err}");

    // Loopback may use plain http (the fake providers).
    for ok in [
        "http://127.0.0.1:9",
        "http://localhost:9/x",
        "http://[::1]:9",
    ] {
        rcs::install(&config(ok), None, Channels::default()).unwrap();
    }

    // Deployment-wide install: adapter and verifier for every tenant.
    let channels = rcs::install(&good, None, Channels::default()).unwrap();
    assert_eq!(channels.get(Channel::Rcs).unwrap().channel(), Channel::Rcs);
    assert!(channels.verifier_for("anyone", Channel::Rcs).is_some());
    // Per tenant: only that tenant.
    let channels = rcs::install(&good, Some("acme"), Channels::default()).unwrap();
    assert!(channels.get(Channel::Rcs).is_none());
    assert!(channels.for_tenant("acme", Channel::Rcs).is_some());
    assert!(channels.for_tenant("other", Channel::Rcs).is_none());
    assert!(channels.verifier_for("other", Channel::Rcs).is_none());
}

#[test]
fn config_parses_strictly_and_never_prints_secrets() {
    let c: RcsConfig = serde_json::from_str(&format!(
        r#"{{"endpoint":"https://rcs.example.com","token":"{TOKEN}","agent_id":"a","webhook_secret":"{SECRET}"}}"#
    ))
    .unwrap();
    assert_eq!(c.timeout_ms, 10_000);
    assert_eq!(c.message_ttl_s, None);
    let shown = format!("{c:?}");
    assert!(!shown.contains(TOKEN) && !shown.contains(SECRET), "{shown}");
    provider();
    let adapter = RcsAdapter::new(&c).unwrap();
    let verifier = RcsWebhooks::new(&c).unwrap();
    let shown = format!("{adapter:?} {verifier:?}");
    assert!(!shown.contains(TOKEN) && !shown.contains(SECRET), "{shown}");

    let unknown = serde_json::from_str::<RcsConfig>(
        r#"{"endpoint":"https://x","token":"t","agent_id":"a","webhook_secret":"s","api_key":"k"}"#,
    );
    assert!(unknown.unwrap_err().to_string().contains("api_key"));
}
