//! Crashes during dispatch, on SQLite and PostgreSQL: the real `ladder
//! serve` binary, its channels pointed at fake RCS, SMS, SMTP and push
//! providers on loopback (running in this test process, so they outlive
//! the node), 1,000 accepted messages spread over every channel in a
//! realistic mix, and the node killed with SIGKILL right after accepting
//! them and three more times during dispatch, restarted each time on the
//! same data until every message is sent.
//!
//! Then every provider is counted per message and per recipient: no
//! message lost, none shown as two different copies. Providers that
//! deduplicate on ladder's idempotency key (RCS `messageId`, SMS
//! `Idempotency-Key`) and the in-app inbox (one row per device and
//! message) hold exactly one copy; SMTP and push cannot deduplicate, so a
//! hand-over cut off by the kill may arrive twice there — and then
//! byte-identical (same Message-ID, Date, link; same `apns-id` and body).
//! The counts are printed (`cargo test -p ladder --test crash -- --nocapture`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use ladder_fakes::{push, rcs, sms, smtp};
use serde_json::{Value, json};
use support::{hex, ladder, pg_exec, pg_schema};

/// Messages accepted per run.
const MESSAGES: usize = 1000;
/// Recipients per kind; messages go to them round-robin.
const PER_KIND: usize = 8;
/// Kills during dispatch (after the one right after acceptance).
const KILLS: usize = 3;

#[test]
fn crashes_during_dispatch_on_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let db = format!("sqlite://{}", data.join("ladder.db").display());
    let store = vec!["--data-dir".to_string(), data.display().to_string()];
    crash_run("sqlite", &store, &db, tmp.path());
}

#[test]
fn crashes_during_dispatch_on_postgres() {
    let Some((url, schema, scoped)) = pg_schema("crash_test") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let store = vec![
        "--database".to_string(),
        scoped.clone(),
        "--data-dir".to_string(),
        data.display().to_string(),
    ];
    crash_run("postgres", &store, &scoped, tmp.path());
    pg_exec(&url, &format!("DROP SCHEMA {schema} CASCADE"));
}

/// What a recipient is set up to receive, and the route that must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Transactional over RCS (payload).
    Rcs,
    /// Transactional sealed in-app, with a push wake-up.
    InApp,
    /// Transactional on the portal behind an e-mail notice (SMTP).
    Email,
    /// Transactional on the portal behind an SMS notice.
    SmsNotice,
    /// Marketing as an SMS (payload).
    Sms,
}

impl Kind {
    /// Out of ten messages, how many go to this kind.
    const MIX: [(Kind, usize); 5] = [
        (Kind::Rcs, 3),
        (Kind::InApp, 2),
        (Kind::Email, 2),
        (Kind::SmsNotice, 2),
        (Kind::Sms, 1),
    ];

    fn class(self) -> &'static str {
        if self == Kind::Sms {
            "marketing"
        } else {
            "transactional"
        }
    }

    fn route(self) -> &'static str {
        match self {
            Kind::Rcs => "rcs",
            Kind::InApp => "in_app+push_notice",
            Kind::Email => "portal+email_notice",
            Kind::SmsNotice => "portal+sms_notice",
            Kind::Sms => "sms",
        }
    }
}

struct Recipient {
    id: String,
    kind: Kind,
    /// The enrolled device, for kinds that need one.
    device: Option<String>,
    phone: String,
    email: Option<String>,
}

/// The fakes, on a runtime of their own that outlives every node.
struct Fakes {
    rt: tokio::runtime::Runtime,
    rcs: rcs::FakeRcs,
    sms: sms::FakeSms,
    smtp: smtp::FakeSmtp,
    push: push::FakePush,
}

impl Fakes {
    fn start() -> Fakes {
        support::tls();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (rcs, sms, smtp, push) = rt.block_on(async {
            (
                rcs::start(rcs::FakeRcsConfig::default()).await.unwrap(),
                sms::start(sms::FakeSmsConfig {
                    auto_receipts: None,
                    ..Default::default()
                })
                .await
                .unwrap(),
                smtp::start(smtp::FakeSmtpConfig::default()).await.unwrap(),
                push::start(push::FakePushConfig::default()).await.unwrap(),
            )
        });
        Fakes {
            rt,
            rcs,
            sms,
            smtp,
            push,
        }
    }

    /// Provider requests that reached a fake and were accepted (repeats the
    /// provider deduplicated not counted).
    fn handed_over(&self) -> usize {
        self.rcs.received().len()
            + self.sms.received().len()
            + self.smtp.received().len()
            + self.push.received().len()
    }

    fn config(&self, dir: &Path) -> std::path::PathBuf {
        let text = format!(
            r#"
public_url = "http://127.0.0.1:9"
[delivery]
workers = 4
poll_ms = 20
backoff_base_ms = 50
backoff_max_ms = 500
timeout_ms = 2000
lease_ms = 6500
[channels.rcs]
endpoint = "{rcs}"
token = "fake-rcs-token"
agent_id = "ladder-fake-agent"
webhook_secret = "fake-rcs-webhook-secret"
timeout_ms = 2000
[channels.sms]
endpoint = "{sms}"
account = "{account}"
token = "{token}"
from = "+15550000000"
timeout_ms = 2000
[channels.email]
host = "{smtp_host}"
port = {smtp_port}
tls = "none"
from = "Acme Secure Messages <secure@acme.example>"
timeout_ms = 2000
[channels.push]
timeout_ms = 2000
apns = {{ endpoint = "http://{push}", topic = "com.acme.app", token = "fake-apns-token" }}
"#,
            rcs = self.rcs.base_url(),
            sms = self.sms.base_url(),
            account = self.sms.account(),
            token = self.sms.token(),
            smtp_host = self.smtp.host(),
            smtp_port = self.smtp.port(),
            push = self.push.addr,
        );
        let path = dir.join("ladder.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// One `ladder serve` process.
struct Node {
    child: Child,
    base: String,
    /// The demo tenant's sender key (printed on first start only).
    sender: Option<String>,
    /// Kept open: the node writes to it on a graceful shutdown.
    _stdout: BufReader<ChildStdout>,
}

impl Node {
    fn start(store: &[String], config: &Path, workers: usize, log: &Path) -> Node {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut child = ladder()
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .args(store)
            .env("LADDER_WORKERS", workers.to_string())
            .env("LADDER_LOG", "warn")
            .env_remove("LADDER_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (mut base, mut sender) = (String::new(), None);
        let mut banner = String::new();
        loop {
            let mut line = String::new();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "serve exited early:\n{banner}\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            banner.push_str(&line);
            let t = line.trim();
            if let Some(rest) = t.strip_prefix("ladder is serving on ") {
                base = rest.to_string();
            } else if let Some(k) = t.strip_prefix("sender ") {
                sender = Some(k.trim().to_string());
            } else if t.starts_with("docs:") {
                break;
            }
        }
        Node {
            child,
            base,
            sender,
            _stdout: stdout,
        }
    }

    /// SIGKILL: no graceful anything.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and wait for the graceful exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}");
    }
}

/// Every row of `sql` (each column cast to text by the query) as strings.
fn rows(url: &str, sql: &str) -> Vec<Vec<String>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Row};
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(url).await.unwrap();
        let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_all(&mut c)
            .await
            .unwrap();
        let out = rows
            .iter()
            .map(|r| {
                (0..r.columns().len())
                    .map(|i| r.try_get::<String, _>(i).unwrap())
                    .collect()
            })
            .collect();
        c.close().await.unwrap();
        out
    })
}

async fn post(client: &reqwest::Client, url: String, key: &str, body: Value) -> (u16, Value) {
    post_idem(client, url, key, body, None).await
}

async fn post_idem(
    client: &reqwest::Client,
    url: String,
    key: &str,
    body: Value,
    idem: Option<String>,
) -> (u16, Value) {
    let mut req = client.post(url).bearer_auth(key).json(&body);
    if let Some(k) = idem {
        req = req.header("idempotency-key", k);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A recipient of `kind` with, where the kind needs one, a device that
/// proved its transports in a signed handshake.
async fn recipient(
    client: &reqwest::Client,
    base: &str,
    sender: &str,
    kind: Kind,
    n: usize,
) -> Recipient {
    let phone = format!("+1555030{:04}", n);
    // A portal notice needs a second inbox for the portal's one-time code
    // (the decision skips a portal nobody could open): the SMS-notice
    // recipients have an e-mail address too.
    let email =
        matches!(kind, Kind::Email | Kind::SmsNotice).then(|| format!("crash-{n}@example.com"));
    let (st, r) = post(
        client,
        format!("{base}/v1/recipients"),
        sender,
        json!({ "external_id": format!("crash-{n}"), "email": email, "phone": phone }),
    )
    .await;
    assert_eq!(st, 201, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    let transports = match kind {
        Kind::Email => None,
        Kind::Rcs => Some(json!({ "rcs": { "reachable": true, "e2ee": "verified" } })),
        Kind::InApp => Some(json!({
            "in_app": { "reachable": true, "e2ee": "verified" },
            "push": { "reachable": true, "e2ee": "absent" },
        })),
        Kind::SmsNotice | Kind::Sms => {
            Some(json!({ "sms": { "reachable": true, "e2ee": "absent" } }))
        }
    };
    let mut enrolled = None;
    if let Some(transports) = transports {
        let seed = [u8::try_from(n + 1).unwrap(); 32];
        let key = SigningKey::from_bytes(&seed);
        let mut device = json!({
            "identity_key": hex(&key.verifying_key().to_bytes()),
            "labels": { "os": "android", "client": "acme-app", "client_version": "5.3" },
        });
        if kind == Kind::InApp {
            device["agreement_key"] = json!(hex(
                &ladder_channels::inapp::agreement_public(&seed).unwrap()
            ));
            device["push"] = json!({ "platform": "apns", "token": format!("token-{n}") });
        }
        let (st, d) = post(
            client,
            format!("{base}/v1/recipients/{id}/devices"),
            sender,
            device,
        )
        .await;
        assert_eq!(st, 201, "{d}");
        let device = d["id"].as_str().unwrap().to_string();
        let (_, c) = post(
            client,
            format!("{base}/v1/devices/{device}/challenge"),
            sender,
            json!({}),
        )
        .await;
        let report: ladder_core::handshake::DeviceReport = serde_json::from_value(json!({
            "device": device, "nonce": c["nonce"],
            "client": { "name": "acme-app", "version": "5.3", "policy_revision": 4 },
            "transports": transports,
        }))
        .unwrap();
        let signed = ladder_core::handshake::sign(&key, report).unwrap();
        let (st, h) = post(
            client,
            format!("{base}/v1/devices/{device}/handshake"),
            sender,
            serde_json::to_value(signed).unwrap(),
        )
        .await;
        assert_eq!(st, 200, "{h}");
        enrolled = Some(device);
    }
    Recipient {
        id,
        kind,
        device: enrolled,
        phone,
        email,
    }
}

fn route_of(answer: &Value) -> String {
    let route = &answer["decision"]["outcome"]["route"];
    match route["notifier"].as_str() {
        Some(n) => format!("{}+{n}", route["container"].as_str().unwrap_or("")),
        None => route["container"].as_str().unwrap_or("").to_string(),
    }
}

/// One accepted message: who, which kind, its body.
struct Sent {
    id: String,
    recipient: usize,
    body: String,
}

/// Sets up recipients and accepts [`MESSAGES`] messages over the mix, at
/// concurrency 8; every answer must be 202 with the kind's route.
fn accept_all(fakes: &Fakes, base: &str, sender: &str) -> (Vec<Recipient>, Vec<Sent>) {
    fakes.rt.block_on(async {
        let client = reqwest::Client::new();
        let mut recipients = Vec::new();
        for (kind, _) in Kind::MIX {
            for _ in 0..PER_KIND {
                let n = recipients.len();
                recipients.push(recipient(&client, base, sender, kind, n).await);
            }
        }
        // The mix, in order: of every ten messages, 3 RCS, 2 in-app, ...
        let mut plan = Vec::new();
        let mut next = BTreeMap::new();
        for i in 0..MESSAGES {
            let slot = i % 10;
            let mut acc = 0;
            let kind = Kind::MIX
                .iter()
                .find(|(_, share)| {
                    acc += share;
                    slot < acc
                })
                .map(|(k, _)| *k)
                .unwrap();
            let first = recipients.iter().position(|r| r.kind == kind).unwrap();
            let turn: &mut usize = next.entry(kind).or_default();
            plan.push((i, first + *turn % PER_KIND, kind));
            *turn += 1;
        }
        let plan = std::sync::Arc::new(plan);
        let ids = recipients.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        let ids = std::sync::Arc::new(ids);
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..8 {
            let (client, plan, ids) = (client.clone(), plan.clone(), ids.clone());
            let (base, sender) = (base.to_string(), sender.to_string());
            tasks.spawn(async move {
                let mut out = Vec::new();
                for &(i, r, kind) in plan.iter().skip(worker).step_by(8) {
                    let body = format!("crash test message {i} for recipient {r}");
                    let (st, a) = post_idem(
                        &client,
                        format!("{base}/v1/messages"),
                        &sender,
                        json!({ "recipient": ids[r], "class": kind.class(), "body": body }),
                        Some(format!("crash-{i}")),
                    )
                    .await;
                    assert_eq!(st, 202, "{a}");
                    assert_eq!(route_of(&a), kind.route(), "{a}");
                    out.push(Sent {
                        id: a["id"].as_str().unwrap().to_string(),
                        recipient: r,
                        body,
                    });
                }
                out
            });
        }
        let mut sent = Vec::new();
        while let Some(part) = tasks.join_next().await {
            sent.extend(part.unwrap());
        }
        (recipients, sent)
    })
}

/// Waits (bounded) until the fakes hold at least `n` hand-overs.
fn wait_handed_over(fakes: &Fakes, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while fakes.handed_over() < n {
        assert!(
            Instant::now() < deadline,
            "dispatch stalled at {} hand-overs",
            fakes.handed_over()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (bounded) until no message is left to send.
fn wait_all_sent(db: &str) {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let open = rows(
            db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM messages WHERE status NOT IN ('sent', 'delivered', 'read')",
        );
        if open[0][0] == "0" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} messages never sent",
            open[0][0]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Per channel: messages sent, copies the recipients got, of which
/// byte-identical repeats, different copies, and messages lost.
#[derive(Debug, Default)]
struct Count {
    messages: usize,
    copies: usize,
    identical_repeats: usize,
    different: usize,
    lost: usize,
}

impl Count {
    /// `copies`: per message, the copies that reached the recipient.
    fn of<T: PartialEq>(expected: &BTreeSet<String>, copies: &BTreeMap<String, Vec<T>>) -> Count {
        let mut c = Count {
            messages: expected.len(),
            ..Count::default()
        };
        for m in expected {
            match copies.get(m).map(Vec::as_slice) {
                None | Some([]) => c.lost += 1,
                Some([first, rest @ ..]) => {
                    c.copies += 1 + rest.len();
                    for other in rest {
                        if other == first {
                            c.identical_repeats += 1;
                        } else {
                            c.different += 1;
                        }
                    }
                }
            }
        }
        // Anything that reached a provider for a message not sent there.
        c.different += copies.keys().filter(|k| !expected.contains(*k)).count();
        c
    }
}

fn message_of(idempotency_key: &str) -> String {
    idempotency_key
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

fn crash_run(backend: &str, store: &[String], db: &str, tmp: &Path) {
    let started = Instant::now();
    let fakes = Fakes::start();
    let config = fakes.config(tmp);
    let log = tmp.join("server.log");

    // Accept everything with no workers, then die at once: acceptance is
    // durable, nothing has left yet.
    let node = Node::start(store, &config, 0, &log);
    let sender = node.sender.clone().expect("first start prints the keys");
    let (recipients, sent) = accept_all(&fakes, &node.base, &sender);
    assert_eq!(sent.len(), MESSAGES);
    node.kill();
    assert_eq!(fakes.handed_over(), 0);

    // Kill during dispatch, each time a further part has been handed over,
    // and at a moment an e-mail is with the relay but not yet acknowledged
    // (the relay holds its `250`): that hand-over is certainly sent again.
    for k in 1..=KILLS {
        let node = Node::start(store, &config, 4, &log);
        wait_handed_over(&fakes, MESSAGES * k / (KILLS + 1));
        let mails = fakes.smtp.received().len();
        fakes.smtp.set_reply_delay(Duration::from_millis(1500));
        let deadline = Instant::now() + Duration::from_secs(30);
        while fakes.smtp.received().len() == mails && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        node.kill();
        fakes.smtp.set_reply_delay(Duration::ZERO);
    }
    let node = Node::start(store, &config, 4, &log);
    wait_all_sent(db);
    node.stop();

    let by_kind = |kind: Kind| -> BTreeSet<String> {
        sent.iter()
            .filter(|s| recipients[s.recipient].kind == kind)
            .map(|s| s.id.clone())
            .collect()
    };
    let body_of: BTreeMap<&str, &str> = sent
        .iter()
        .map(|s| (s.id.as_str(), s.body.as_str()))
        .collect();

    // RCS: one accepted agent message per messageId; repeats answered 409.
    let mut rcs: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for m in fakes.rcs.received() {
        rcs.entry(message_of(&m.message_id))
            .or_default()
            .push((m.msisdn, m.text));
    }
    for (id, copies) in &rcs {
        for (msisdn, text) in copies {
            assert_eq!(Some(&text.as_str()), body_of.get(id.as_str()), "{id}");
            let s = sent.iter().find(|s| &s.id == id).unwrap();
            assert_eq!(msisdn, &recipients[s.recipient].phone);
        }
    }
    let rcs = Count::of(&by_kind(Kind::Rcs), &rcs);

    // SMS, payloads and notices: one message per Idempotency-Key.
    let mut sms_payload: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut sms_notice: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for m in fakes.sms.received() {
        let key = m.idempotency_key.clone().unwrap_or_default();
        let id = message_of(&key);
        let into = if m.body.contains("/portal/") {
            &mut sms_notice
        } else {
            &mut sms_payload
        };
        into.entry(id).or_default().push((m.to, m.body));
    }
    for (id, copies) in &sms_payload {
        for (_, body) in copies {
            assert_eq!(Some(&body.as_str()), body_of.get(id.as_str()), "{id}");
        }
    }
    let sms = Count::of(&by_kind(Kind::Sms), &sms_payload);
    let sms_notice = Count::of(&by_kind(Kind::SmsNotice), &sms_notice);

    // SMTP: by Message-ID, which ladder derives from the hand-over's
    // idempotency key (message, step 2 — the portal —, e-mail).
    let adapter = ladder_channels::email::EmailAdapter::new(&ladder_channels::email::EmailConfig {
        host: fakes.smtp.host(),
        port: Some(fakes.smtp.port()),
        tls: ladder_channels::email::EmailTls::None,
        user: None,
        password: None,
        from: "secure@acme.example".into(),
        timeout_ms: 2000,
    })
    .unwrap();
    let message_of_mail: BTreeMap<String, String> = by_kind(Kind::Email)
        .into_iter()
        .map(|id| (adapter.message_id(&format!("{id}/2/email")), id))
        .collect();
    let mut email: BTreeMap<String, Vec<(Vec<String>, String)>> = BTreeMap::new();
    for m in fakes.smtp.received() {
        let message_id = m.header("Message-ID").unwrap_or_default();
        let id = message_of_mail
            .get(&message_id)
            .cloned()
            .unwrap_or(message_id);
        if let Some(s) = sent.iter().find(|s| s.id == id) {
            let address = recipients[s.recipient].email.clone().unwrap();
            assert_eq!(m.to, vec![address]);
        }
        email.entry(id).or_default().push((m.to, m.data));
    }
    let email = Count::of(&by_kind(Kind::Email), &email);

    // Push: one wake-up per in-app message (one device each), by its
    // `apns-id`, derived from the idempotency key and the device.
    let message_of_push: BTreeMap<String, String> = sent
        .iter()
        .filter(|s| recipients[s.recipient].kind == Kind::InApp)
        .map(|s| {
            let device = recipients[s.recipient].device.clone().unwrap();
            (
                ladder_channels::push::apns_id(&format!("{}/1/push", s.id), &device),
                s.id.clone(),
            )
        })
        .collect();
    let mut pushes: BTreeMap<String, Vec<(String, Option<String>, String)>> = BTreeMap::new();
    for p in fakes.push.received() {
        assert_eq!(p.status, 200);
        let apns_id = p.header("apns-id").unwrap_or_default().to_string();
        let id = message_of_push.get(&apns_id).cloned().unwrap_or(apns_id);
        pushes.entry(id).or_default().push((
            p.device_token.clone(),
            p.header("apns-expiration").map(str::to_string),
            p.body.clone(),
        ));
    }
    let expected_in_app = by_kind(Kind::InApp);
    let push = Count::of(&expected_in_app, &pushes);

    // In-app: the sealed rows devices fetch, one per (device, message).
    let mut inbox: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows(db, "SELECT message_id, device_id FROM inbox") {
        inbox
            .entry(row[0].clone())
            .or_default()
            .push(row[1].clone());
    }
    let in_app = Count::of(&expected_in_app, &inbox);

    let statuses = rows(
        db,
        "SELECT status, CAST(COUNT(*) AS TEXT) FROM messages GROUP BY status ORDER BY status",
    );
    let report = [
        ("rcs", &rcs),
        ("sms (payload)", &sms),
        ("sms notice", &sms_notice),
        ("email notice (smtp)", &email),
        ("push notice", &push),
        ("in-app inbox", &in_app),
    ];
    println!(
        "crash test on {backend}: {MESSAGES} messages, {} kills (1 after acceptance, {KILLS} during dispatch), {:.1} s; statuses {statuses:?}",
        KILLS + 1,
        started.elapsed().as_secs_f64()
    );
    // Hand-overs sent again after a kill (audited as resumed), and the
    // repeats the SMS provider answered with the original message.
    let resumed = rows(
        db,
        "SELECT CAST(COUNT(*) AS TEXT) FROM audit_entries \
         WHERE kind = 'delivery_attempt' AND details LIKE '%\"resumed_handover\":true%'",
    );
    println!(
        "  resumed hand-overs {}; repeats the SMS provider deduplicated {}",
        resumed[0][0],
        fakes.sms.replayed()
    );
    for (name, c) in report {
        println!(
            "  {name:<20} messages {:>4}  copies {:>4}  identical repeats {:>2}  different {}  lost {}",
            c.messages, c.copies, c.identical_repeats, c.different, c.lost
        );
    }
    for (name, c) in report {
        assert_eq!(c.lost, 0, "{backend}: {name} lost messages: {c:?}");
        assert_eq!(c.different, 0, "{backend}: {name} different copies: {c:?}");
    }
    // Only SMTP and push cannot deduplicate.
    for (name, c) in [
        ("rcs", &rcs),
        ("sms", &sms),
        ("sms notice", &sms_notice),
        ("in-app", &in_app),
    ] {
        assert_eq!(c.identical_repeats, 0, "{backend}: {name}: {c:?}");
    }
    assert_eq!(
        statuses,
        vec![vec!["sent".to_string(), MESSAGES.to_string()]]
    );
    // The kills did cut hand-overs off: the relay held a mail it had not
    // acknowledged at each, and got it again.
    assert!(email.identical_repeats >= 1, "{email:?}");
    assert_ne!(resumed[0][0], "0");
}
