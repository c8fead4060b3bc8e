//! `ladder demo`: the story that motivates the product, told by a real
//! node talking to fake providers on loopback, one checked step at a time.
//!
//! Two employees get a marketing message and a payroll notice over RCS, end
//! to end encrypted. Then the iPhone's RCS E2EE disappears after an OS
//! update: the thread drops, the next payroll notice is below what the
//! thread showed, so the sender must confirm, and it goes to the portal
//! behind a content-free e-mail notice; a third employee's phone gets a
//! content-free SMS notice, its one-time code to go by e-mail; a fourth, with
//! only an e-mail address, is escalated to a human rather than sent a portal
//! link he could never open (its code must go by another channel than the
//! notice, and he has none). The recipient opens the portal with a one-time
//! code. At the end the audit log is verified and one decision is proved
//! to be in it. Exit 0 when every step behaved as the story says.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args as ClapArgs;
use ladder_fakes::{push, rcs, sms, smtp};
use serde_json::{Value, json};

use crate::CliError;
use crate::service::run_err;

mod portal;
mod tour;

use tour::{Tour, free_port, route_of, show};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Keep the server (and the fake providers) running afterwards.
    #[arg(long)]
    serve: bool,
    /// Run on this database (`postgres://…`) instead of a fresh SQLite file.
    #[arg(long)]
    database: Option<String>,
    /// Where the demo keeps its data; default: a fresh temporary directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    crate::service::runtime()?.block_on(tour(args))
}

async fn tour(args: &Args) -> Result<ExitCode, CliError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tmp = std::env::temp_dir().join(format!("ladder-demo-{}", std::process::id()));
    let data_dir = args.data_dir.clone().unwrap_or(tmp);
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");

    let rcs = rcs::start(rcs::FakeRcsConfig {
        token: "demo-rcs-token".into(),
        agent_id: "acme-agent".into(),
        webhook_url: Some(format!("{base}/v1/webhooks/rcs/acme")),
        webhook_secret: "demo-rcs-secret".into(),
        ..Default::default()
    })
    .await
    .map_err(run_err)?;
    let sms = sms::start(sms::FakeSmsConfig {
        account: "ACdemo".into(),
        token: "demo-sms-token".into(),
        ..Default::default()
    })
    .await
    .map_err(run_err)?;
    let smtp = smtp::start(smtp::FakeSmtpConfig::default())
        .await
        .map_err(run_err)?;
    let fake_push = push::start(push::FakePushConfig::default())
        .await
        .map_err(run_err)?;

    let config_text = format!(
        r#"
listen = "127.0.0.1:{port}"
public_url = "{base}"
[delivery]
poll_ms = 50
backoff_base_ms = 50
backoff_max_ms = 500
[channels]
rcs_delivery_timeout_s = 30
[channels.rcs]
endpoint = "{rcs_url}"
token = "demo-rcs-token"
agent_id = "acme-agent"
webhook_secret = "demo-rcs-secret"
timeout_ms = 2000
[channels.sms]
endpoint = "{sms_url}"
account = "ACdemo"
token = "demo-sms-token"
from = "+15550000000"
status_callback = "{base}/v1/webhooks/sms/acme"
[channels.email]
host = "{smtp_host}"
port = {smtp_port}
tls = "none"
from = "Acme Secure Messages <secure@acme.example>"
"#,
        rcs_url = rcs.base_url(),
        sms_url = sms.base_url(),
        smtp_host = smtp.host(),
        smtp_port = smtp.port(),
    );
    let mut config: ladder_server::Config =
        toml::from_str(&config_text).map_err(|e| CliError::Run(format!("demo config: {e}")))?;
    config.data_dir = data_dir.clone();
    config.database_url = args.database.clone();
    let running = ladder_server::start(config).await.map_err(run_err)?;
    let Some(demo) = running.demo.as_ref() else {
        return Err(CliError::Run(format!(
            "the demo needs a fresh database; `{}` already has tenants",
            running.database
        )));
    };
    let mut t = Tour {
        base: base.clone(),
        sender: demo
            .keys
            .first()
            .map(|k| k.token.clone())
            .unwrap_or_default(),
        admin: demo
            .keys
            .get(1)
            .map(|k| k.token.clone())
            .unwrap_or_default(),
        client: reqwest::Client::new(),
        rcs,
        sms,
        smtp,
        _push: fake_push,
        step: 0,
        failures: 0,
    };
    out!(
        "ladder demo: a node on {base} ({}), fake RCS, SMS, push and SMTP providers on loopback",
        running.database
    );

    t.say("Two employees with phones that prove their capabilities in signed handshakes");
    let ana = t
        .recipient("emp-ana", Some("ana@example.com"), Some("+15550101001"))
        .await;
    let ben = t
        .recipient("emp-ben", Some("ben@example.com"), Some("+15550101002"))
        .await;
    let e2ee_rcs = json!({ "rcs": { "reachable": true, "e2ee": "verified" }, "sms": { "reachable": true, "e2ee": "absent" } });
    t.phone(&ana, 31, json!({ "os": "android", "os_version": "15", "client": "acme-lite", "client_version": "1.4" }), ("acme-lite", "1.4"), e2ee_rcs.clone()).await;
    let (ben_phone, ben_key) = t
        .phone(&ben, 32, json!({ "os": "ios", "os_version": "26.1", "client": "acme-lite", "client_version": "1.4" }), ("acme-lite", "1.4"), e2ee_rcs)
        .await;
    t.check(
        !ana.is_empty() && !ben.is_empty() && !ben_phone.is_empty(),
        "Ana (Android) and Ben (iPhone, iOS 26.1) enrolled; RCS E2EE verified by signed reports",
    );

    t.say("A marketing message to both: RCS");
    for (who, id) in [("Ana", &ana), ("Ben", &ben)] {
        let (st, a) = t
            .send(
                &format!("mkt-{who}"),
                id,
                "marketing",
                "Spring sale: 20% off in the canteen",
            )
            .await;
        show(&a);
        t.check(
            st == 202 && route_of(&a) == "rcs",
            &format!("{who}: 202, over RCS"),
        );
    }

    t.say("A payroll notice to both: RCS, end to end encrypted (the class needs E2EE on RCS)");
    let mut payroll = Vec::new();
    for (who, id) in [("Ana", &ana), ("Ben", &ben)] {
        let (st, a) = t
            .send(
                &format!("pay-1-{who}"),
                id,
                "payroll",
                "Your November payslip: net 3,120.00",
            )
            .await;
        show(&a);
        let assurance = a
            .pointer("/decision/outcome/route/assurance")
            .and_then(Value::as_str)
            .unwrap_or("");
        t.check(
            st == 202 && route_of(&a) == "rcs" && assurance == "e2ee",
            &format!("{who}: over RCS at e2ee"),
        );
        payroll.push(
            a.get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        );
    }
    for id in &payroll {
        let m = t.settle(id, &["delivered", "read"]).await;
        let status = m
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_string();
        t.check(
            status == "read" || status == "delivered",
            &format!("receipt by signed webhook: {status}"),
        );
    }
    t.check(
        t.rcs.received().len() >= 4,
        &format!("the RCS provider holds {} messages", t.rcs.received().len()),
    );

    t.say("Ben updates his iPhone: its RCS client no longer verifies E2EE");
    let ok = t
        .handshake(&ben_phone, &ben_key, ("acme-lite", "1.4"), json!({ "rcs": { "reachable": true, "e2ee": "absent" }, "sms": { "reachable": true, "e2ee": "absent" } }))
        .await;
    t.check(ok, "the new signed report is accepted");

    t.say(
        "The next payroll notice to Ben: below what his thread showed, so the sender must confirm",
    );
    let (st, a) = t
        .send(
            "pay-2-ben",
            &ben,
            "payroll",
            "Your December payslip: net 3,120.00",
        )
        .await;
    show(&a);
    let explanation = a
        .get("explanation")
        .and_then(Value::as_str)
        .unwrap_or_default();
    for line in explanation.lines().take(8) {
        out!("   | {line}");
    }
    t.check(
        st == 409 && a.get("outcome").and_then(Value::as_str) == Some("confirmation_required"),
        "409 confirmation_required",
    );
    let drop = a
        .pointer("/decision/thread/drop")
        .is_some_and(|d| !d.is_null());
    t.check(drop, "the thread floor dropped, with the reason recorded");
    let id = a
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let token = a
        .get("confirmation_token")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let (st, c) = t
        .call(
            "POST",
            &format!("/v1/messages/{id}/confirm"),
            &t.sender.clone(),
            Some(json!({ "token": token })),
            None,
        )
        .await;
    show(&c);
    t.check(
        st == 202 && route_of(&c).starts_with("portal"),
        "confirmed: the payload waits on the portal, provider-readable",
    );
    t.settle(&id, &["sent", "delivered", "read"]).await;
    let notice = t
        .smtp
        .received()
        .into_iter()
        .map(|m| quoted_printable(m.body()))
        .find(|b| b.contains("/portal/"))
        .unwrap_or_default();
    t.check(
        !notice.is_empty() && !notice.contains("payslip") && !notice.contains("payroll"),
        "the e-mail notice holds a link and no content, subject or class",
    );
    out!("   e-mail notice: {}", notice.trim());

    t.say("Cara's phone gets a content-free SMS notice; her one-time code would go by e-mail");
    let cara = t
        .recipient("emp-cara", Some("cara@example.com"), Some("+15550101003"))
        .await;
    t.phone(
        &cara,
        33,
        json!({ "os": "android", "client": "acme-lite", "client_version": "1.4" }),
        ("acme-lite", "1.4"),
        json!({ "sms": { "reachable": true, "e2ee": "absent" } }),
    )
    .await;
    let (st, a) = t
        .send(
            "tx-cara",
            &cara,
            "transactional",
            "Your expense claim 4711 was approved",
        )
        .await;
    show(&a);
    let factor = a
        .pointer("/decision/outcome/route/second_factor")
        .and_then(Value::as_str)
        .unwrap_or("-");
    t.check(
        st == 202 && route_of(&a) == "portal+sms_notice" && factor == "email",
        "portal + SMS notice, the code to go by the other channel: e-mail",
    );
    let cid = a
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    t.settle(&cid, &["sent", "delivered", "read"]).await;
    let texts: Vec<String> = t.sms.received().into_iter().map(|s| s.body).collect();
    let sms_notice = texts
        .iter()
        .find(|b| b.contains("/portal/"))
        .cloned()
        .unwrap_or_default();
    t.check(
        !sms_notice.is_empty() && !sms_notice.contains("expense"),
        "the SMS carries the notice only",
    );
    out!("   SMS: {sms_notice}");

    t.say("Dan has only an e-mail address: no portal link he could never open");
    let dan = t.recipient("emp-dan", Some("dan@example.com"), None).await;
    let (st, a) = t
        .send(
            "pay-1-dan",
            &dan,
            "payroll",
            "Your November payslip: net 2,870.00",
        )
        .await;
    show(&a);
    let explanation = a
        .get("explanation")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(line) = explanation
        .lines()
        .find(|l| l.contains("no_step_up_channel"))
    {
        out!("   | {}", line.trim());
    }
    t.check(
        st == 202
            && a.get("outcome").and_then(Value::as_str) == Some("escalate")
            && explanation.contains("[no_step_up_channel]"),
        "escalated to a human: the portal's code would need a second channel, and he has none",
    );
    let dan_mail = t
        .smtp
        .received()
        .iter()
        .any(|m| m.to.iter().any(|to| to.contains("dan@example.com")));
    t.check(!dan_mail, "no link in his mailbox that would answer 403");

    t.say("Ben opens the portal: one-time link, one-time code by SMS, the payslip and its honest label");
    let link = notice
        .split_whitespace()
        .find(|w| w.contains("/portal/"))
        .map(|w| w.trim_end_matches(['.', ',', ')']).to_string())
        .unwrap_or_default();
    let opened = portal::open(&t.client, &link, || {
        t.sms.received().into_iter().map(|s| s.body).collect()
    })
    .await;
    match &opened {
        Ok(page) => {
            t.check(
                page.contains("December payslip"),
                "after the code, the page shows the payslip",
            );
            t.check(
                page.contains("provider-readable"),
                "and labels it honestly: provider-readable",
            );
        }
        Err(e) => t.check(false, &format!("portal: {e}")),
    }

    t.say("The audit log: verified, and the confirmed decision proved to be in it");
    let (st, cp) = t
        .call(
            "POST",
            "/v1/audit/checkpoints",
            &t.admin.clone(),
            None,
            None,
        )
        .await;
    t.check(st == 201 || st == 200, "a signed checkpoint of the log");
    let state = &running.state;
    let tenant = demo.tenant.id.clone();
    let verified = match state.keyring.checkpoint_signer(&tenant) {
        Ok((_, key)) => {
            let keys = vec![hex::encode(key.verifying_key().to_bytes())];
            ladder_store::audit::verify_store_with_keys(&state.store, &tenant, Some(&keys)).await
        }
        Err(e) => Err(ladder_store::audit::VerifyError::Store(e.into())),
    };
    t.check(
        verified.is_ok(),
        &match &verified {
            Ok(r) => format!(
                "hash chain and chain checkpoints verify ({} entries)",
                r.entries
            ),
            Err(e) => format!("hash chain and chain checkpoints verify: {e}"),
        },
    );
    let index = c
        .get("audit_index")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    let size = cp
        .pointer("/tree_checkpoint/size")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let (st, proof) = t
        .call(
            "GET",
            &format!("/v1/audit/proof/inclusion?index={index}&size={size}"),
            &t.sender.clone(),
            None,
            None,
        )
        .await;
    let proved = st == 200 && proof_verifies(&proof);
    t.check(
        proved,
        &format!("inclusion proof of entry {index} against the signed tree of {size} entries"),
    );
    let (_, log) = t
        .call("GET", "/v1/audit/log", &t.sender.clone(), None, None)
        .await;
    out!(
        "   log {} · verifier key {}",
        log.get("origin").and_then(Value::as_str).unwrap_or("-"),
        log.get("verifier_key")
            .and_then(Value::as_str)
            .unwrap_or("-")
    );

    out!(
        "\nOpen: {base}/console (sign in with the admin key) · {base}/v1/openapi.json · {base}/metrics · the portal link above"
    );
    let code = if t.failures == 0 {
        out!("demo: every step behaved as the story says");
        ExitCode::SUCCESS
    } else {
        out!(
            "demo: {} step(s) did not behave as the story says",
            t.failures
        );
        ExitCode::from(1)
    };
    if args.serve {
        out!(
            "serving on {base} with sender key {} and admin key {}; Ctrl-C to stop",
            t.sender,
            t.admin
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    running.shutdown().await;
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    Ok(code)
}

/// Undoes the quoted-printable transfer encoding of a plain-text mail body
/// (soft line breaks and `=XX` escapes).
fn quoted_printable(body: &str) -> String {
    let joined = body.replace("=\r\n", "").replace("=\n", "");
    let mut out = Vec::with_capacity(joined.len());
    let bytes = joined.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b, hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'=', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn proof_verifies(proof: &Value) -> bool {
    let hash = |v: Option<&Value>| -> Option<[u8; 32]> {
        let b = hex::decode(v?.as_str()?).ok()?;
        <[u8; 32]>::try_from(b.as_slice()).ok()
    };
    let (Some(leaf), Some(root)) = (hash(proof.get("leaf_hash")), hash(proof.get("root"))) else {
        return false;
    };
    let path: Option<Vec<[u8; 32]>> = proof
        .get("proof")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|h| hash(Some(h))).collect::<Option<Vec<_>>>())
        .unwrap_or(None);
    let (Some(index), Some(size), Some(path)) = (
        proof.get("index").and_then(Value::as_u64),
        proof.get("size").and_then(Value::as_u64),
        path,
    ) else {
        return false;
    };
    ladder_store::audit::merkle::verify_inclusion(leaf, index, size, &path, root).is_ok()
}
