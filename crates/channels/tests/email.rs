//! The e-mail notice adapter against the SMTP sink, over real loopback
//! sockets: only the notice under a neutral subject, SMTP replies mapped to
//! transient or permanent failures, authentication, transport security,
//! and a resent hand-over that is the same e-mail byte for byte.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use ladder_channels::email::{self, EmailAdapter, EmailConfig, EmailTls, SUBJECT};
use ladder_channels::{Adapter, Channels, Content, DeliveryError, Destination, Dispatch};
use ladder_core::{AssuranceLevel, Channel};
use ladder_fakes::smtp::{self as fake, FakeSmtp, FakeSmtpConfig, ReceivedMail};

const FROM: &str = "notify@bank.example";
const TO: &str = "alice@example.com";
const NOTICE: &str = "You have a new secure message from Example Bank. Open it here: https://portal.example/p/Zm9vYmFy";
/// What must never appear in a notice e-mail: the class, the message's
/// subject, the payload.
const CLASS: &str = "payroll";
const MESSAGE_SUBJECT: &str = "Your salary statement for March";
const PAYLOAD: &str = "Net pay: 4,211.07 EUR";

fn provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

async fn sink(auth: Option<(&str, &str)>) -> FakeSmtp {
    fake::start(FakeSmtpConfig {
        auth: auth.map(|(u, p)| (u.to_string(), p.to_string())),
    })
    .await
    .unwrap()
}

fn config(sink: &FakeSmtp) -> EmailConfig {
    EmailConfig {
        host: sink.host(),
        port: Some(sink.port()),
        tls: EmailTls::None,
        user: None,
        password: None,
        from: FROM.into(),
        timeout_ms: 2_000,
    }
}

fn adapter(config: &EmailConfig) -> EmailAdapter {
    provider();
    EmailAdapter::new(config).unwrap()
}

fn dispatch(key: &str, email: Option<&str>, content: Content) -> Dispatch {
    Dispatch {
        tenant_id: "t-1".into(),
        message_id: "m-1".into(),
        recipient_id: "r-1".into(),
        thread_id: "th-1".into(),
        channel: Channel::Email,
        idempotency_key: key.into(),
        content,
        to: Destination {
            phone: None,
            email: email.map(str::to_string),
            devices: Vec::new(),
        },
        assurance: AssuranceLevel::Transport,
        expires_at: 4_102_444_800,
        handed_over_ms: 1_764_547_200_000,
    }
}

fn notice() -> Content {
    Content::Notice(NOTICE.into())
}

/// The body as the recipient reads it (quoted-printable undone).
fn text_of(mail: &ReceivedMail) -> String {
    let body = mail.body();
    match mail.header("Content-Transfer-Encoding").as_deref() {
        Some("quoted-printable") => {
            let joined = body.replace("=\r\n", "");
            let mut out = Vec::new();
            let mut bytes = joined.bytes();
            while let Some(b) = bytes.next() {
                if b == b'=' {
                    let hex: String = [bytes.next().unwrap(), bytes.next().unwrap()]
                        .iter()
                        .map(|&c| char::from(c))
                        .collect();
                    out.push(u8::from_str_radix(&hex, 16).unwrap());
                } else {
                    out.push(b);
                }
            }
            String::from_utf8(out).unwrap()
        }
        Some("7bit" | "8bit") | None => body.to_string(),
        Some(other) => panic!("unexpected transfer encoding {other}"),
    }
}

fn transient(code: &str) -> DeliveryError {
    DeliveryError::Transient { code: code.into() }
}

fn permanent(code: &str) -> DeliveryError {
    DeliveryError::Permanent { code: code.into() }
}

/// A hand-over sent again (a retry after a crash) is the same e-mail byte
/// for byte: Message-ID from the idempotency key, `Date` from when the
/// hand-over was first recorded — not from the clock of the attempt.
#[tokio::test]
async fn a_resent_hand_over_is_byte_identical() {
    let sink = sink(None).await;
    let a = adapter(&config(&sink));
    let d = dispatch("m-1/2/email", Some(TO), notice());
    a.send(&d).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    a.send(&d).await.unwrap();
    let received = sink.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].data, received[1].data);
    assert_eq!(
        received[0].header("Date").as_deref(),
        Some("Mon, 01 Dec 2025 00:00:00 +0000")
    );
}

#[tokio::test]
async fn sends_only_the_notice_under_a_neutral_subject() {
    let sink = sink(None).await;
    let a = adapter(&config(&sink));
    let accepted = a
        .send(&dispatch("m-1/0/email", Some(TO), notice()))
        .await
        .unwrap();
    assert!(!accepted.duplicate);
    assert_eq!(accepted.provider_ref, a.message_id("m-1/0/email"));
    assert!(accepted.provider_ref.ends_with("@bank.example>"));

    let received = sink.received();
    assert_eq!(received.len(), 1);
    let mail = &received[0];
    assert_eq!(mail.from, FROM);
    assert_eq!(mail.to, vec![TO.to_string()]);
    assert_eq!(mail.auth_user, None);
    assert_eq!(mail.header("Subject").as_deref(), Some(SUBJECT));
    assert_eq!(SUBJECT, "New secure message");
    assert_eq!(
        mail.header("Message-ID").as_deref(),
        Some(accepted.provider_ref.as_str())
    );
    assert_eq!(mail.header("From").as_deref(), Some(FROM));
    assert_eq!(mail.header("To").as_deref(), Some(TO));
    assert!(
        mail.header("Content-Type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(mail.header("Date").is_some());
    assert_eq!(text_of(mail).trim_end(), NOTICE);
    // Nothing else: no class, no subject, no payload, no ids.
    for seen in [mail.data.to_lowercase(), text_of(mail).to_lowercase()] {
        for forbidden in [CLASS, MESSAGE_SUBJECT, PAYLOAD, "m-1/0/email", "th-1"] {
            assert!(
                !seen.contains(&forbidden.to_lowercase()),
                "{forbidden:?} leaked"
            );
        }
    }
}

#[tokio::test]
async fn the_message_id_is_stable_across_retries() {
    let sink = sink(None).await;
    let a = adapter(&config(&sink));
    let first = a
        .send(&dispatch("m-2/0/email", Some(TO), notice()))
        .await
        .unwrap();
    let again = a
        .send(&dispatch("m-2/0/email", Some(TO), notice()))
        .await
        .unwrap();
    assert_eq!(first.provider_ref, again.provider_ref);
    let other = a
        .send(&dispatch("m-2/1/email", Some(TO), notice()))
        .await
        .unwrap();
    assert_ne!(other.provider_ref, first.provider_ref);
    let ids: Vec<_> = sink
        .received()
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            first.provider_ref.clone(),
            first.provider_ref,
            other.provider_ref
        ]
    );
}

#[tokio::test]
async fn a_payload_is_refused_without_connecting() {
    let sink = sink(None).await;
    let a = adapter(&config(&sink));
    let payload = Content::Payload(zeroize::Zeroizing::new(PAYLOAD.as_bytes().to_vec()));
    let err = a
        .send(&dispatch("m-3/0/email", Some(TO), payload))
        .await
        .unwrap_err();
    assert_eq!(err, permanent("payload_not_allowed_by_email"));
    assert_eq!(sink.connections(), 0);
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn a_missing_or_invalid_address_is_permanent() {
    let sink = sink(None).await;
    let a = adapter(&config(&sink));
    for email in [None, Some(""), Some("   ")] {
        let err = a
            .send(&dispatch("m-4/0/email", email, notice()))
            .await
            .unwrap_err();
        assert_eq!(err, permanent("no_email"));
    }
    let err = a
        .send(&dispatch("m-4/0/email", Some("not an address"), notice()))
        .await
        .unwrap_err();
    assert_eq!(err, permanent("invalid_email"));
    assert_eq!(sink.connections(), 0);
}

#[tokio::test]
async fn smtp_4xx_is_transient_and_5xx_permanent() {
    let sink = sink(None).await;
    let a = adapter(&config(&sink));
    let d = dispatch("m-5/0/email", Some(TO), notice());

    sink.fail_rcpt(1, 450);
    assert_eq!(a.send(&d).await.unwrap_err(), transient("smtp_450"));
    sink.fail_rcpt(1, 550);
    assert_eq!(a.send(&d).await.unwrap_err(), permanent("smtp_550"));
    sink.fail_data(1, 451);
    assert_eq!(a.send(&d).await.unwrap_err(), transient("smtp_451"));
    sink.fail_data(1, 554);
    assert_eq!(a.send(&d).await.unwrap_err(), permanent("smtp_554"));
    assert!(sink.received().is_empty());
    // The server recovers; so does the adapter.
    a.send(&d).await.unwrap();
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn authenticates_when_configured() {
    let sink = sink(Some(("ladder", "s3cret"))).await;
    let mut c = config(&sink);
    c.user = Some("ladder".into());
    c.password = Some("s3cret".into());
    adapter(&c)
        .send(&dispatch("m-6/0/email", Some(TO), notice()))
        .await
        .unwrap();
    assert_eq!(sink.received()[0].auth_user.as_deref(), Some("ladder"));

    c.password = Some("wrong".into());
    let err = adapter(&c)
        .send(&dispatch("m-7/0/email", Some(TO), notice()))
        .await
        .unwrap_err();
    assert_eq!(err, permanent("smtp_535"));
    assert_eq!(sink.auth_failures(), 1);

    // No credentials where the server requires them.
    let err = adapter(&config(&sink))
        .send(&dispatch("m-8/0/email", Some(TO), notice()))
        .await
        .unwrap_err();
    assert_eq!(err, permanent("smtp_530"));
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn a_hanging_server_times_out() {
    let sink = sink(None).await;
    sink.set_hang(Duration::from_secs(3));
    let mut c = config(&sink);
    c.timeout_ms = 300;
    let started = Instant::now();
    let err = adapter(&c)
        .send(&dispatch("m-9/0/email", Some(TO), notice()))
        .await
        .unwrap_err();
    assert_eq!(err, transient("smtp_timeout"));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn an_unreachable_server_is_transient() {
    provider();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let c = EmailConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        tls: EmailTls::None,
        user: None,
        password: None,
        from: FROM.into(),
        timeout_ms: 2_000,
    };
    let err = adapter(&c)
        .send(&dispatch("m-10/0/email", Some(TO), notice()))
        .await
        .unwrap_err();
    assert_eq!(err, transient("smtp_unavailable"));
}

#[tokio::test]
async fn required_starttls_is_never_skipped() {
    // The sink offers no STARTTLS: nothing is sent, credentials included.
    let sink = sink(Some(("ladder", "s3cret"))).await;
    let mut c = config(&sink);
    c.tls = EmailTls::Starttls;
    c.user = Some("ladder".into());
    c.password = Some("s3cret".into());
    let err = adapter(&c)
        .send(&dispatch("m-11/0/email", Some(TO), notice()))
        .await
        .unwrap_err();
    assert_eq!(err, transient("smtp_starttls_unavailable"));
    assert_eq!(sink.connections(), 1);
    assert!(sink.received().is_empty());
    assert_eq!(sink.auth_failures(), 0);
}

#[tokio::test]
async fn implicit_tls_against_a_plaintext_server_fails() {
    let sink = sink(None).await;
    let mut c = config(&sink);
    c.tls = EmailTls::Tls;
    let err = adapter(&c)
        .send(&dispatch("m-12/0/email", Some(TO), notice()))
        .await
        .unwrap_err();
    assert_eq!(err, transient("smtp_tls"));
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn install_adds_the_adapter_where_asked() {
    provider();
    let c = EmailConfig {
        host: "smtp.example.com".into(),
        port: None,
        tls: EmailTls::Starttls,
        user: Some("ladder".into()),
        password: Some("s3cret".into()),
        from: "Secure messages <no-reply@example.com>".into(),
        timeout_ms: 15_000,
    };
    let deployment = email::install(&c, None, Channels::default()).unwrap();
    assert!(deployment.get(Channel::Email).is_some());
    // E-mail notices take no webhooks.
    assert!(deployment.verifier_for("acme", Channel::Email).is_none());
    let tenant = email::install(&c, Some("acme"), Channels::default()).unwrap();
    assert!(tenant.get(Channel::Email).is_none());
    assert!(tenant.for_tenant("acme", Channel::Email).is_some());
    assert!(!format!("{c:?}").contains("s3cret"));
}

#[test]
fn install_rejects_bad_config_naming_the_field() {
    provider();
    let base = || EmailConfig {
        host: "smtp.example.com".into(),
        port: None,
        tls: EmailTls::Starttls,
        user: None,
        password: None,
        from: FROM.into(),
        timeout_ms: 15_000,
    };
    type Edit = fn(&mut EmailConfig);
    let cases: Vec<(&str, Edit)> = vec![
        // Plaintext only to loopback.
        ("tls", |c| c.tls = EmailTls::None),
        ("tls", |c| {
            c.tls = EmailTls::None;
            c.host = "10.0.0.25".into();
        }),
        ("host", |c| c.host = String::new()),
        ("host", |c| c.host = "smtp.example.com:25".into()),
        ("host", |c| c.host = "smtp://smtp.example.com".into()),
        ("port", |c| c.port = Some(0)),
        ("from", |c| c.from = "not an address".into()),
        ("password", |c| c.user = Some("ladder".into())),
        ("user", |c| c.password = Some("s3cret".into())),
        ("user", |c| {
            c.user = Some(String::new());
            c.password = Some("s3cret".into());
        }),
        ("timeout_ms", |c| c.timeout_ms = 0),
    ];
    for (field, edit) in cases {
        let mut c = base();
        edit(&mut c);
        let err = email::install(&c, None, Channels::default()).unwrap_err();
        assert_eq!(err.channel, "email");
        assert!(
            err.reason.contains(&format!("`{field}`")),
            "{field}: {}",
            err.reason
        );
    }
    for host in ["127.0.0.1", "localhost", "::1", "[::1]"] {
        let mut c = base();
        c.tls = EmailTls::None;
        c.host = host.into();
        assert!(
            email::install(&c, None, Channels::default()).is_ok(),
            "{host}"
        );
    }
}

#[test]
fn config_parses_strictly_with_defaults() {
    let c: EmailConfig = serde_json::from_value(serde_json::json!({
        "host": "smtp.example.com",
        "from": FROM,
    }))
    .unwrap();
    assert_eq!(c.tls, EmailTls::Starttls);
    assert_eq!(c.port, None);
    assert_eq!(c.timeout_ms, 15_000);
    let tls: EmailConfig = serde_json::from_value(serde_json::json!({
        "host": "smtp.example.com",
        "from": FROM,
        "tls": "tls",
    }))
    .unwrap();
    assert_eq!(tls.tls, EmailTls::Tls);
    for bad in [
        serde_json::json!({ "host": "h", "from": FROM, "tls": "ssl" }),
        serde_json::json!({ "host": "h", "from": FROM, "subject": "Payroll" }),
    ] {
        assert!(serde_json::from_value::<EmailConfig>(bad).is_err());
    }
}
