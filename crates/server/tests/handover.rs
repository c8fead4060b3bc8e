//! Hand-overs retried after a crash, at the service level, on both
//! backends: the node hands a portal notice to the SMTP relay and dies
//! before its bookkeeping commits; the work is claimed again and sent
//! again. The recipient must then hold one link, in a second copy that is
//! byte-identical to the first (SMTP cannot deduplicate; mail clients
//! collapse copies with one Message-ID) — never a second, different link.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use ladder_channels::email::{EmailConfig, EmailTls};
use ladder_fakes::smtp;
use support::{Backend, StatusCode, TestApp};

both_backends!(retry_after_crash_reuses_portal_link);

async fn app_with(backend: Backend, sink: &smtp::FakeSmtp) -> Option<TestApp> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let email = EmailConfig {
        host: sink.host(),
        port: Some(sink.port()),
        tls: EmailTls::None,
        user: None,
        password: None,
        from: "Acme <secure@acme.example>".into(),
        timeout_ms: 5000,
    };
    TestApp::builder(backend)
        .config(|c| c.channels.email = Some(email))
        .start()
        .await
}

/// Puts a delivered message back where a node killed after the provider
/// call and before its bookkeeping left it: still queued, its delivery work
/// not done (and, the lease of the dead worker having run out, claimable).
async fn undo_bookkeeping(app: &TestApp, message: &str) {
    let pool = app.state().store.pool();
    sqlx::query("UPDATE messages SET status = 'queued' WHERE id = $1")
        .bind(message)
        .execute(pool)
        .await
        .unwrap();
    let reopened = sqlx::query(
        "UPDATE outbox SET done_at = NULL, lease_until = NULL, lease_owner = NULL, next_at_ms = 0 \
         WHERE message_id = $1 AND kind = 'deliver'",
    )
    .bind(message)
    .execute(pool)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(reopened, 1);
}

/// Regression (issue 9, defect 2): after a crash during dispatch, recipients
/// got the e-mail notice twice, each copy with a different valid portal
/// link — the link was minted afresh on every attempt, and the `Date`
/// header came from the clock.
async fn retry_after_crash_reuses_portal_link(backend: Backend) {
    let sink = smtp::start(smtp::FakeSmtpConfig::default()).await.unwrap();
    let Some(app) = app_with(backend, &sink).await else {
        return;
    };
    let r = app.recipient("emp-crash").await;
    let a = app
        .send("crash-1", &r, "transactional", "Your claim was approved")
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(
        a.body["decision"]["outcome"]["route"]["notifier"], "email_notice",
        "{}",
        a.text
    );
    let id = a.body["id"].as_str().unwrap().to_string();
    app.wait_status(&id, "sent").await;
    assert_eq!(sink.received().len(), 1);

    // Long enough for a clock-dated header to change.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    undo_bookkeeping(&app, &id).await;
    app.wait_status(&id, "sent").await;

    let mails = sink.received();
    assert_eq!(mails.len(), 2, "SMTP cannot deduplicate: a second copy");
    assert_eq!(
        mails[0].data, mails[1].data,
        "the second copy is byte-identical: same link, Date and Message-ID"
    );
    let links: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM portal_links WHERE message_id = $1")
        .bind(&id)
        .fetch_one(app.state().store.pool())
        .await
        .unwrap();
    assert_eq!(links, 1, "one link per (message, step)");
    let issued = app
        .audit()
        .await
        .into_iter()
        .filter(|e| e["kind"] == "portal_link_issued")
        .count();
    assert_eq!(issued, 1, "the link is issued (and audited) once");
    let attempts: Vec<bool> = app
        .audit()
        .await
        .into_iter()
        .filter(|e| e["kind"] == "delivery_attempt")
        .map(|e| e["details"]["resumed_handover"].as_bool().unwrap())
        .collect();
    assert_eq!(
        attempts,
        [false, true],
        "the second attempt is audited as a resend of the same hand-over"
    );

    // The link the recipient holds works.
    let body = mails[0].body().replace("=\r\n", "");
    let at = body.find("/portal/").expect("a portal link");
    let token: String = body[at + "/portal/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert_eq!(token.len(), 43, "{body}");
    let page = app
        .client
        .get(format!("{}/portal/{token}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    app.stop().await;
}
