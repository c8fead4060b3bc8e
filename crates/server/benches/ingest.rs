#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Ingest throughput, measured side by side in one run:
//!
//! 1. **ingest** — `POST /v1/messages` against the real server started
//!    in-process (SQLite in a temp dir, delivery workers off). Each 202/409/
//!    422 answer means the message, its sealed payload, outbox work and audit
//!    entry are committed.
//!    Then the same at concurrency 64 on the same node, and at concurrency
//!    16 on a node with `[api] group_commit_max = 1` (every message its own
//!    commit, as before group commit), for the ratio. The ingest rows and
//!    the storage ceiling run in three interleaved rounds, so that the
//!    machine's other load hurts them alike.
//! 2. **HTTP ceiling** — `GET /healthz` on the same server, same client,
//!    same concurrency: what the HTTP stack alone allows on this machine.
//! 3. **storage ceiling** — the rows one accepted message writes (message,
//!    payload, thread floor, event, outbox, audit entry), one transaction per
//!    message, straight into a separate SQLite store: no HTTP, no auth, no
//!    decision, no crypto.
//! 4. **end to end, RCS** — a second in-process node with delivery workers
//!    on and a fake RCS provider (`ladder_fakes::rcs`) on loopback: class
//!    `payroll` to recipients whose phone reports verified RCS E2EE in a
//!    signed handshake. Latency runs from the moment the `202` arrives
//!    (acceptance) to the moment the fake has recorded the agent message;
//!    throughput is the batch size over the time from the first request to
//!    the last arrival. The fake answers every message with DELIVERED and
//!    READ receipts by webhook, which the node verifies and applies while
//!    the batch runs.
//! 5. **end to end, in-app** — the same node, class `payroll` to recipients
//!    whose device enrolled an X25519 key and reports verified in-app E2EE
//!    and push reachability: the payload is sealed with HPKE into the
//!    device inbox and a content-free wake-up goes to a fake push provider
//!    (FCM style). "The provider has it" is the sealed row in `inbox` (its
//!    `created_at` is in whole seconds, too coarse: the bench stamps the
//!    moment it first sees the row).
//!
//! Both end-to-end scenarios run a batch at the same concurrency as the
//! ingest scenario (queueing included), then messages one at a time, each
//! sent only once the previous one arrived (the latency floor). Arrivals
//! are seen by polling the fake's record and the `inbox` table (on a
//! read-only connection of its own, so the node's single SQLite
//! connection is not shared with the probe) every 2 ms: an arrival is
//! stamped a few milliseconds late at most. Between phases the node is let settle
//! (outbox drained, every receipt acknowledged).
//!
//! 6. **scale out** — with `LADDER_TEST_POSTGRES_URL` set, ingest on
//!    PostgreSQL (a fresh schema) through one node, then through two nodes
//!    on the same database, each at the same concurrency (requests
//!    alternate between them).
//!
//! Run with `cargo bench -p ladder-server --bench ingest`. Tunables:
//! `LADDER_BENCH_REQUESTS` (default 3000), `LADDER_BENCH_CONCURRENCY`
//! (default 16), `LADDER_BENCH_E2E_MESSAGES` (batch, default 500),
//! `LADDER_BENCH_E2E_SERIAL` (one at a time, default 100) and
//! `LADDER_BENCH_WORKERS` (delivery workers, default 2),
//! `LADDER_BENCH_CLAIM_BATCH` and `LADDER_BENCH_SLOTS` (`delivery.claim_batch`
//! and `delivery.concurrency`, default the node's defaults); the poll is the
//! node's default. Everything runs on
//! loopback and stops by itself.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use ladder_channels::push::{FcmConfig, PushConfig};
use ladder_channels::rcs::RcsConfig;
use ladder_core::{Decision, Outcome};
use ladder_fakes::{push, rcs};
use ladder_store::audit::{self, AuditEvent};
use ladder_store::messages::{self, Message, Status, StoredPayload};
use ladder_store::outbox::{self, Kind};
use ladder_store::recipients::{self, Recipient};
use ladder_store::threads::{self, Thread};
use ladder_store::{Store, ids, sealed, tenants};
use serde_json::{Value, json};
use sqlx::Connection as _;

const RECIPIENTS: usize = 50;
const WARMUP: usize = 200;
const BODY_LEN: usize = 256;
const DEFAULT_REQUESTS: usize = 3000;
const DEFAULT_CONCURRENCY: usize = 16;
/// The second ingest row: as many clients as a busy sender farm.
const WIDE_CONCURRENCY: usize = 64;
/// Ingest rows and the storage ceiling are measured in this many
/// interleaved rounds.
const ROUNDS: usize = 3;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What one scenario measured.
#[derive(Debug)]
struct Run {
    requests: usize,
    wall: Duration,
    /// Sorted.
    latencies: Vec<Duration>,
    /// Accepted answers by label (HTTP status, or `committed`).
    outcomes: BTreeMap<&'static str, usize>,
    errors: Vec<String>,
}

impl Run {
    fn empty() -> Run {
        Run {
            requests: 0,
            wall: Duration::ZERO,
            latencies: Vec::new(),
            outcomes: BTreeMap::new(),
            errors: Vec::new(),
        }
    }

    /// Two runs of one scenario as one: requests over their summed wall
    /// time, latencies pooled.
    fn merge(mut self, other: Run) -> Run {
        self.requests += other.requests;
        self.wall += other.wall;
        self.latencies.extend(other.latencies);
        self.latencies.sort_unstable();
        for (k, v) in other.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
        self.errors.extend(other.errors);
        self
    }

    fn throughput(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64()
    }

    /// Nearest-rank percentile, in milliseconds.
    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let n = self.latencies.len();
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        let idx = rank.clamp(1, n) - 1;
        self.latencies[idx].as_secs_f64() * 1000.0
    }

    fn max_ms(&self) -> f64 {
        self.latencies
            .last()
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }
}

/// Runs `op(0..count)` with at most `concurrency` in flight; each worker
/// takes the next index as soon as its previous request finished.
async fn drive<F, Fut>(count: usize, concurrency: usize, op: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<&'static str, String>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let op = Arc::clone(&op);
        let next = Arc::clone(&next);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut outcomes: BTreeMap<&'static str, usize> = BTreeMap::new();
            let mut errors = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let t = Instant::now();
                let result = op(i).await;
                latencies.push(t.elapsed());
                match result {
                    Ok(label) => *outcomes.entry(label).or_default() += 1,
                    Err(e) => errors.push(e),
                }
            }
            (latencies, outcomes, errors)
        }));
    }
    let mut run = Run {
        requests: count,
        wall: Duration::ZERO,
        latencies: Vec::with_capacity(count),
        outcomes: BTreeMap::new(),
        errors: Vec::new(),
    };
    for w in workers {
        let (latencies, outcomes, errors) = w.await.expect("load worker panicked");
        run.latencies.extend(latencies);
        for (k, v) in outcomes {
            *run.outcomes.entry(k).or_default() += v;
        }
        run.errors.extend(errors);
    }
    run.wall = started.elapsed();
    run.latencies.sort_unstable();
    run
}

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => panic!("{name}=`{v}` is not a positive whole number"),
        },
        Err(_) => default,
    }
}

fn err<E: Display>(e: E) -> String {
    e.to_string()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    getrandom::fill(&mut v).expect("OS random number generator");
    v
}

/// A node for the ingest scenarios (delivery workers off) with the demo
/// tenant, `RECIPIENTS` registered recipients and a client for them;
/// `group_commit_max` 1 commits every message on its own.
async fn ingest_node(
    dir: &std::path::Path,
    group_commit_max: usize,
    concurrency: usize,
    body: String,
) -> Result<(ladder_server::Running, Arc<HttpCtx>), BoxError> {
    ingest_node_on(dir, None, group_commit_max, concurrency, body).await
}

/// As [`ingest_node`], on the database at `database_url` (SQLite in `dir`
/// when `None`).
async fn ingest_node_on(
    dir: &std::path::Path,
    database_url: Option<String>,
    group_commit_max: usize,
    concurrency: usize,
    body: String,
) -> Result<(ladder_server::Running, Arc<HttpCtx>), BoxError> {
    let mut config = ladder_server::Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.to_path_buf(),
        database_url,
        ..Default::default()
    };
    config.delivery.workers = 0;
    config.api.group_commit_max = group_commit_max;
    let running = ladder_server::start(config).await?;
    let addr = running.addr;
    let demo = running
        .demo
        .as_ref()
        .expect("a fresh data dir creates the demo tenant");
    let token = demo.keys[0].token.clone();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let base = format!("http://{addr}");
    let mut recipient_ids = Vec::with_capacity(RECIPIENTS);
    for n in 0..RECIPIENTS {
        let resp = client
            .post(format!("{base}/v1/recipients"))
            .bearer_auth(&token)
            .json(
                // A phone for the portal's one-time code: with an e-mail
                // alone the portal step cannot be opened and is skipped.
                &json!({ "external_id": format!("emp-{n}"), "email": format!("{n}@example.com"), "phone": format!("+1555{n:07}") }),
            )
            .send()
            .await?;
        let status = resp.status();
        let v: Value = resp.json().await?;
        assert!(
            status.is_success(),
            "registering recipient {n}: {status} {v}"
        );
        recipient_ids.push(v["id"].as_str().expect("recipient id").to_string());
    }
    let ctx = Arc::new(HttpCtx {
        client,
        messages_url: format!("{base}/v1/messages"),
        healthz_url: format!("{base}/healthz"),
        token,
        recipients: recipient_ids,
        body,
    });
    Ok((running, ctx))
}

/// Ingest on PostgreSQL with one node, then with two nodes on the same
/// database (same tenant, a shared keyring file), each driven at
/// `concurrency`: the scale-out rows. `None` without
/// `LADDER_TEST_POSTGRES_URL`.
async fn scale_out(
    dir: &std::path::Path,
    requests: usize,
    concurrency: usize,
    body: &str,
) -> Result<Option<(Run, Run)>, BoxError> {
    let Ok(url) = std::env::var("LADDER_TEST_POSTGRES_URL") else {
        return Ok(None);
    };
    let schema = format!(
        "bench_ingest_{}_{}",
        std::process::id(),
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos()
    );
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await?;
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let (one, ctx) = ingest_node_on(
        &dir.join("pg1"),
        Some(scoped.clone()),
        1,
        concurrency,
        body.to_string(),
    )
    .await?;
    // The second node: same database, same keyring file, no demo tenant
    // of its own (the database has one).
    let mut config = ladder_server::Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.join("pg2"),
        database_url: Some(scoped),
        keyring: Some(one.keyring.clone().into()),
        ..Default::default()
    };
    config.delivery.workers = 0;
    let two = ladder_server::start(config).await?;
    let ctx2 = Arc::new(HttpCtx {
        client: ctx.client.clone(),
        messages_url: format!("http://{}/v1/messages", two.addr),
        healthz_url: format!("http://{}/healthz", two.addr),
        token: ctx.token.clone(),
        recipients: ctx.recipients.clone(),
        body: ctx.body.clone(),
    });
    for (n, node) in [&ctx, &ctx2].into_iter().enumerate() {
        let c = Arc::clone(node);
        let warm = drive(WARMUP, concurrency, move |i| {
            send_one(Arc::clone(&c), format!("bench-pg-warm-{n}-{i}"), i)
        })
        .await;
        report_errors("PostgreSQL warm-up", &warm);
    }
    let c = Arc::clone(&ctx);
    let single = drive(requests, concurrency, move |i| {
        send_one(Arc::clone(&c), format!("bench-pg-one-{i}"), i)
    })
    .await;
    // Two nodes: requests alternate between them, `concurrency` in flight
    // at each.
    let (a, b) = (Arc::clone(&ctx), Arc::clone(&ctx2));
    let pair = drive(requests, 2 * concurrency, move |i| {
        let node = if i % 2 == 0 { &a } else { &b };
        send_one(Arc::clone(node), format!("bench-pg-two-{i}"), i)
    })
    .await;
    two.shutdown().await;
    one.shutdown().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(Some((single, pair)))
}

// ---------------------------------------------------------------- HTTP ---

#[derive(Debug)]
struct HttpCtx {
    client: reqwest::Client,
    messages_url: String,
    healthz_url: String,
    token: String,
    recipients: Vec<String>,
    body: String,
}

fn send_request(ctx: &HttpCtx, key: &str, i: usize) -> reqwest::RequestBuilder {
    let recipient = &ctx.recipients[i % ctx.recipients.len()];
    ctx.client
        .post(&ctx.messages_url)
        .bearer_auth(&ctx.token)
        .header("Idempotency-Key", key)
        .json(&json!({
            "recipient": recipient,
            "class": "transactional",
            "body": ctx.body,
        }))
}

/// One `POST /v1/messages`; accepted answers are 202 (queued or held), 409
/// (confirmation required) and 422 (blocked) — all committed.
async fn send_one(ctx: Arc<HttpCtx>, key: String, i: usize) -> Result<&'static str, String> {
    let resp = send_request(&ctx, &key, i)
        .send()
        .await
        .map_err(|e| format!("transport: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("reading body: {e}"))?;
    match status {
        202 => Ok("202"),
        409 => Ok("409"),
        422 => Ok("422"),
        200..=299 => Ok("2xx"),
        _ => Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        )),
    }
}

async fn healthz_one(ctx: Arc<HttpCtx>) -> Result<&'static str, String> {
    let resp = ctx
        .client
        .get(&ctx.healthz_url)
        .send()
        .await
        .map_err(|e| format!("transport: {e}"))?;
    let status = resp.status().as_u16();
    resp.bytes()
        .await
        .map_err(|e| format!("reading body: {e}"))?;
    if status == 200 {
        Ok("200")
    } else {
        Err(format!("HTTP {status}"))
    }
}

// ------------------------------------------------------------- storage ---

#[derive(Debug)]
struct RawCtx {
    store: Store,
    tenant_id: String,
    /// `(recipient_id, pseudonym, thread_id)`, one default thread each.
    threads: Vec<(String, String, String)>,
    decision: Decision,
    response: Value,
    response_status: i64,
    ciphertext_len: usize,
    wrapped_len: usize,
}

/// The audit details `service::send::audit_decision` records for a decision.
fn decision_details(decision: &Decision, pseudonym: &str, thread_id: &str) -> Value {
    let skipped: Vec<Value> = decision
        .steps
        .iter()
        .filter(|s| !s.skipped.is_empty())
        .map(|s| {
            json!({
                "step": s.index,
                "route": s.route,
                "reasons": s.skipped.iter().map(|r| r.code()).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "class": decision.class,
        "policy_version": decision.policy_version,
        "mode": decision.mode,
        "outcome": decision.outcome.code(),
        "route": decision.outcome.route().map(|r| r.name()),
        "assurance": decision.outcome.route().map(|r| r.assurance),
        "enforced": decision.enforced.as_ref().map(|o| o.code()),
        "skipped": skipped,
        "recipient": pseudonym,
        "thread": thread_id,
    })
}

/// The writes of one accepted message, in one transaction.
async fn store_one(ctx: Arc<RawCtx>, i: usize) -> Result<&'static str, String> {
    let (recipient_id, pseudonym, thread_id) = &ctx.threads[i % ctx.threads.len()];
    let message_id = ids::new_id("msg");
    let at_ms = now_ms();
    let at = at_ms / 1000;
    let mut decision = ctx.decision.clone();
    decision.message_id.clone_from(&message_id);
    decision.decided_at = ladder_core::Timestamp(at);
    let mut response = ctx.response.clone();
    if let Some(obj) = response.as_object_mut() {
        obj.insert("id".into(), json!(message_id));
        obj.insert("thread".into(), json!(thread_id));
        obj.insert("decision".into(), json!(decision));
    }
    let (status, work) = match &decision.outcome {
        Outcome::Deliver { .. } => (Status::Queued, Some((Kind::Deliver, at_ms))),
        Outcome::ConfirmationRequired { .. } => (Status::AwaitingConfirmation, None),
        Outcome::Hold { .. } => (Status::Held, Some((Kind::Redecide, at_ms + 60_000))),
        Outcome::Escalate => (Status::Escalated, None),
        Outcome::Block => (Status::Blocked, None),
    };
    let ciphertext = random_bytes(ctx.ciphertext_len);
    let wrapped = random_bytes(ctx.wrapped_len);
    let details = decision_details(&decision, pseudonym, thread_id);

    let mut tx = ctx.store.begin().await.map_err(err)?;
    messages::insert(
        &mut tx,
        &Message {
            id: message_id.clone(),
            tenant_id: ctx.tenant_id.clone(),
            idempotency_key: format!("raw-{i}-{message_id}"),
            request_hash: hex_of(&random_bytes(32)),
            recipient_id: recipient_id.clone(),
            thread_id: thread_id.clone(),
            class: decision.class.clone(),
            status,
            decision: decision.clone(),
            failed: Vec::new(),
            response_status: ctx.response_status,
            response_body: response,
            confirmation_hash: None,
            accepted_at: at,
            updated_at: at,
            expires_at: at + 90 * 86_400,
        },
    )
    .await
    .map_err(err)?;
    if status != Status::Blocked {
        messages::insert_payload(
            &mut tx,
            &ctx.tenant_id,
            &StoredPayload {
                message_id: message_id.clone(),
                kek_id: Some("kek_bench".into()),
                wrapped_key: Some(wrapped),
                ciphertext: Some(ciphertext),
                shredded_at: None,
                shred_reason: None,
            },
        )
        .await
        .map_err(err)?;
    }
    threads::update(
        &mut tx,
        &Thread {
            id: thread_id.clone(),
            tenant_id: ctx.tenant_id.clone(),
            recipient_id: recipient_id.clone(),
            name: "default".into(),
            floor: decision.thread.after.clone(),
            updated_at: at,
        },
    )
    .await
    .map_err(err)?;
    messages::add_event(
        &mut tx,
        &ctx.tenant_id,
        &message_id,
        &messages::Event {
            at,
            kind: "decided".into(),
            detail: json!({
                "outcome": decision.outcome.code(),
                "route": decision.outcome.route().map(|r| r.name()),
            }),
        },
    )
    .await
    .map_err(err)?;
    if let Some((kind, due)) = work {
        outbox::enqueue(&mut tx, &ctx.tenant_id, &message_id, kind, due)
            .await
            .map_err(err)?;
    }
    audit::append(
        &mut tx,
        ctx.store.dialect(),
        &ctx.tenant_id,
        at,
        &AuditEvent {
            kind: "decision".into(),
            actor: "api-key:key_bench".into(),
            subject: Some(message_id),
            details,
        },
    )
    .await
    .map_err(err)?;
    tx.commit().await.map_err(err)?;
    Ok("committed")
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh store with one tenant and `RECIPIENTS` recipients, each with a
/// default thread at the floor the captured decision leaves.
async fn raw_store(
    url: &str,
    decision: &Decision,
    response: &Value,
    response_status: i64,
) -> Result<RawCtx, BoxError> {
    let store = Store::open(url).await?;
    let at = now_ms() / 1000;
    let mut tx = store.begin().await?;
    let tenant = tenants::create(&mut tx, "bench", at).await?;
    let mut rows = Vec::with_capacity(RECIPIENTS);
    for n in 0..RECIPIENTS {
        let r = Recipient {
            id: ids::new_id("rcp"),
            tenant_id: tenant.id.clone(),
            external_id: format!("emp-{n}"),
            pseudonym: hex_of(&random_bytes(32)),
            contact_sealed: random_bytes(96),
            has_email: true,
            has_phone: true,
            created_at: at,
            language: None,
            time_zone: None,
        };
        recipients::insert(&mut tx, &r).await?;
        let t = Thread {
            id: ids::new_id("thr"),
            tenant_id: tenant.id.clone(),
            recipient_id: r.id.clone(),
            name: "default".into(),
            floor: decision.thread.after.clone(),
            updated_at: at,
        };
        threads::insert(&mut tx, &t).await?;
        rows.push((r.id, r.pseudonym, t.id));
    }
    tx.commit().await?;
    Ok(RawCtx {
        store,
        tenant_id: tenant.id,
        threads: rows,
        decision: decision.clone(),
        response: response.clone(),
        response_status,
        ciphertext_len: BODY_LEN + sealed::OVERHEAD,
        wrapped_len: 32 + sealed::OVERHEAD,
    })
}

async fn count_rows(store: &Store, table: &'static str) -> Result<i64, BoxError> {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(store.pool())
        .await?;
    Ok(n)
}

async fn row_counts(store: &Store) -> Result<String, BoxError> {
    let mut parts = Vec::new();
    for table in ["messages", "payloads", "outbox", "events", "audit_entries"] {
        parts.push(format!("{table} {}", count_rows(store, table).await?));
    }
    Ok(parts.join(", "))
}

// ---------------------------------------------------------- end to end ---

const E2E_RECIPIENTS: usize = 50;
const E2E_WARMUP: usize = 50;
const DEFAULT_E2E_MESSAGES: usize = 500;
const DEFAULT_E2E_SERIAL: usize = 100;
const DEFAULT_WORKERS: usize = 2;
/// Both channels carry it: RCS when the phone proves RCS E2EE, in-app when
/// the device proves in-app E2EE.
const E2E_CLASS: &str = "payroll";
/// How often the bench looks at what the providers hold.
const OBSERVE_EVERY: Duration = Duration::from_millis(2);
/// How long accepted messages may take to reach the provider; later ones
/// count as errors.
const E2E_DEADLINE: Duration = Duration::from_secs(60);
/// How long the node may take to drain its outbox and receipts between
/// phases.
const SETTLE_DEADLINE: Duration = Duration::from_secs(20);
const RCS_TOKEN: &str = "bench-rcs-token";
const RCS_AGENT: &str = "bench-agent";
const RCS_SECRET: &str = "bench-rcs-webhook-secret";
const FCM_TOKEN: &str = "bench-fcm-token";

/// The container an end-to-end scenario delivers through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Rcs,
    InApp,
}

impl Via {
    /// The container's name in a decision.
    fn container(self) -> &'static str {
        match self {
            Via::Rcs => "rcs",
            Via::InApp => "in_app",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Via::Rcs => "rcs",
            Via::InApp => "inapp",
        }
    }

    fn code(self) -> u8 {
        match self {
            Via::Rcs => 1,
            Via::InApp => 2,
        }
    }
}

/// When the bench first saw each message (by id) at its provider.
type Seen = Arc<Mutex<HashMap<String, Instant>>>;

#[derive(Debug)]
struct E2eCtx {
    client: reqwest::Client,
    base: String,
    token: String,
    recipients: Vec<String>,
    body: String,
    via: Via,
    /// `(message id, when its 202 arrived)` of the phase in progress.
    accepted: Mutex<Vec<(String, Instant)>>,
}

/// A POST with the API key; the answer's status and JSON body.
async fn post_json(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Value,
) -> Result<(u16, Value), BoxError> {
    let resp = client
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

fn success(what: &str, (status, body): (u16, Value)) -> Result<Value, BoxError> {
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        Err(format!("{what}: HTTP {status} {body}").into())
    }
}

fn id_of(v: &Value) -> Result<String, BoxError> {
    v.get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("no `id` in {v}").into())
}

/// One recipient with a phone and one device, enrolled over the API and
/// proven by a signed handshake: verified RCS E2EE (`Via::Rcs`), or an
/// X25519 agreement key, a push token and verified in-app E2EE with push
/// reachability (`Via::InApp`).
async fn enrol_e2e(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    via: Via,
    n: usize,
) -> Result<String, BoxError> {
    let ext = format!("{}-{n}", via.tag());
    let recipient = id_of(&success(
        "registering a recipient",
        post_json(
            client,
            &format!("{base}/v1/recipients"),
            token,
            &json!({
                "external_id": ext,
                "email": format!("{ext}@example.com"),
                "phone": format!("+1555{}{n:06}", via.code()),
            }),
        )
        .await?,
    )?)?;

    let mut seed = [0x5au8; 32];
    seed[0] = via.code();
    seed[1..9].copy_from_slice(&(n as u64).to_le_bytes());
    let key = SigningKey::from_bytes(&seed);
    let mut device = json!({
        "identity_key": hex_of(&key.verifying_key().to_bytes()),
        "labels": { "os": "android", "os_version": "15", "client": "acme-app", "client_version": "5.3" },
    });
    let transports = match via {
        Via::Rcs => json!({ "rcs": { "reachable": true, "e2ee": "verified" } }),
        Via::InApp => {
            let mut secret = seed;
            secret[31] = 0xa5;
            let public = ladder_channels::inapp::agreement_public(&secret)?;
            device["agreement_key"] = json!(hex_of(&public));
            device["push"] = json!({ "platform": "fcm", "token": format!("bench-push-{n}") });
            json!({
                "in_app": { "reachable": true, "e2ee": "verified" },
                "push": { "reachable": true, "e2ee": "absent" },
            })
        }
    };
    let device = id_of(&success(
        "enrolling a device",
        post_json(
            client,
            &format!("{base}/v1/recipients/{recipient}/devices"),
            token,
            &device,
        )
        .await?,
    )?)?;
    let challenge = success(
        "asking for a challenge",
        post_json(
            client,
            &format!("{base}/v1/devices/{device}/challenge"),
            token,
            &json!({}),
        )
        .await?,
    )?;
    let report: ladder_core::handshake::DeviceReport = serde_json::from_value(json!({
        "device": device,
        "nonce": challenge.get("nonce").cloned().unwrap_or_default(),
        "client": { "name": "acme-app", "version": "5.3", "policy_revision": 4 },
        "transports": transports,
    }))?;
    let signed = ladder_core::handshake::sign(&key, report)
        .map_err(|e| format!("signing the handshake: {e:?}"))?;
    success(
        "handshake",
        post_json(
            client,
            &format!("{base}/v1/devices/{device}/handshake"),
            token,
            &serde_json::to_value(signed)?,
        )
        .await?,
    )?;
    Ok(recipient)
}

/// One `POST /v1/messages` that must be answered 202 with a delivery over
/// the scenario's container; records the message id and the moment the
/// answer arrived.
async fn send_tracked(ctx: Arc<E2eCtx>, key: String, i: usize) -> Result<&'static str, String> {
    let recipient = &ctx.recipients[i % ctx.recipients.len()];
    let resp = ctx
        .client
        .post(format!("{}/v1/messages", ctx.base))
        .bearer_auth(&ctx.token)
        .header("Idempotency-Key", &key)
        .json(&json!({ "recipient": recipient, "class": E2E_CLASS, "body": ctx.body }))
        .send()
        .await
        .map_err(|e| format!("transport: {e}"))?;
    let at = Instant::now();
    let status = resp.status().as_u16();
    let text = resp
        .text()
        .await
        .map_err(|e| format!("reading body: {e}"))?;
    if status != 202 {
        return Err(format!(
            "HTTP {status}: {}",
            text.chars().take(300).collect::<String>()
        ));
    }
    let v: Value = serde_json::from_str(&text).map_err(err)?;
    let container = v
        .pointer("/decision/outcome/route/container")
        .and_then(Value::as_str)
        .unwrap_or("-");
    if container != ctx.via.container() {
        return Err(format!(
            "decided `{container}`, not `{}`",
            ctx.via.container()
        ));
    }
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .ok_or("202 without a message id")?
        .to_string();
    ctx.accepted.lock().expect("accepted").push((id, at));
    Ok("202")
}

/// Polls the fake RCS provider's record of agent messages until `stop`.
async fn watch_rcs(fake: Arc<rcs::FakeRcs>, seen: Seen, stop: Arc<AtomicBool>) {
    let mut next = 0;
    while !stop.load(Ordering::Relaxed) {
        let got = fake.received();
        let at = Instant::now();
        if got.len() > next {
            let mut seen = seen.lock().expect("seen");
            for r in &got[next..] {
                // Our idempotency key: `{message id}/{step}/rcs`.
                let id = r.message_id.split('/').next().unwrap_or_default();
                seen.entry(id.to_string()).or_insert(at);
            }
            next = got.len();
        }
        tokio::time::sleep(OBSERVE_EVERY).await;
    }
}

/// Polls the node's `inbox` table for new sealed rows until `stop`, on a
/// connection of its own; answers how many polls failed.
async fn watch_inbox(mut conn: sqlx::AnyConnection, seen: Seen, stop: Arc<AtomicBool>) -> usize {
    let mut last: i64 = 0;
    let mut failures = 0;
    while !stop.load(Ordering::Relaxed) {
        let rows = sqlx::query_as::<_, (i64, String)>(
            "SELECT rowid, message_id FROM inbox WHERE rowid > $1 ORDER BY rowid",
        )
        .bind(last)
        .fetch_all(&mut conn)
        .await;
        let at = Instant::now();
        match rows {
            Ok(rows) => {
                if let Some((rowid, _)) = rows.last() {
                    last = *rowid;
                }
                let mut seen = seen.lock().expect("seen");
                for (_, id) in rows {
                    seen.entry(id).or_insert(at);
                }
            }
            Err(_) => failures += 1,
        }
        tokio::time::sleep(OBSERVE_EVERY).await;
    }
    let _ = conn.close().await;
    failures
}

fn all_seen(seen: &Seen, accepted: &[(String, Instant)]) -> bool {
    let seen = seen.lock().expect("seen");
    accepted.iter().all(|(id, _)| seen.contains_key(id))
}

/// Acceptance → arrival of every accepted message. `requests` counts the
/// messages that arrived; `wall` runs from `started` to the last arrival.
fn arrivals(
    seen: &Seen,
    accepted: &[(String, Instant)],
    started: Instant,
    mut errors: Vec<String>,
) -> Run {
    let seen = seen.lock().expect("seen");
    let mut latencies = Vec::with_capacity(accepted.len());
    let mut last = started;
    for (id, at) in accepted {
        match seen.get(id) {
            Some(t) => {
                // A worker may hand a message over before its 202 reaches
                // the client: that counts as zero.
                latencies.push(t.saturating_duration_since(*at));
                last = last.max(*t);
            }
            None => errors.push(format!(
                "{id} accepted but not at the provider after {} s",
                E2E_DEADLINE.as_secs()
            )),
        }
    }
    latencies.sort_unstable();
    let mut outcomes = BTreeMap::new();
    outcomes.insert("arrived", latencies.len());
    Run {
        requests: latencies.len(),
        wall: last.duration_since(started),
        latencies,
        outcomes,
        errors,
    }
}

/// `count` messages at `concurrency`, then waits (bounded) until every
/// accepted one is at the provider: the acceptance run and the end-to-end
/// run.
async fn e2e_batch(
    ctx: &Arc<E2eCtx>,
    seen: &Seen,
    tag: &str,
    count: usize,
    concurrency: usize,
) -> (Run, Run) {
    ctx.accepted.lock().expect("accepted").clear();
    let started = Instant::now();
    let c = Arc::clone(ctx);
    let prefix = format!("{}-{tag}", ctx.via.tag());
    let accept = drive(count, concurrency, move |i| {
        send_tracked(Arc::clone(&c), format!("{prefix}-{i}"), i)
    })
    .await;
    let accepted = std::mem::take(&mut *ctx.accepted.lock().expect("accepted"));
    let deadline = Instant::now() + E2E_DEADLINE;
    while Instant::now() < deadline && !all_seen(seen, &accepted) {
        tokio::time::sleep(OBSERVE_EVERY).await;
    }
    let run = arrivals(seen, &accepted, started, accept.errors.clone());
    (accept, run)
}

/// `count` messages one at a time, each sent once the previous one is at
/// the provider: the latency of an idle node.
async fn e2e_serial(ctx: &Arc<E2eCtx>, seen: &Seen, count: usize) -> Run {
    ctx.accepted.lock().expect("accepted").clear();
    let started = Instant::now();
    let mut errors = Vec::new();
    for i in 0..count {
        let key = format!("{}-serial-{i}", ctx.via.tag());
        if let Err(e) = send_tracked(Arc::clone(ctx), key, i).await {
            errors.push(e);
            continue;
        }
        let last = ctx.accepted.lock().expect("accepted").last().cloned();
        let Some((id, _)) = last else { continue };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !seen.lock().expect("seen").contains_key(&id) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let accepted = std::mem::take(&mut *ctx.accepted.lock().expect("accepted"));
    arrivals(seen, &accepted, started, errors)
}

/// Waits (bounded) until the node has no unfinished outbox work and the
/// fake RCS provider had every receipt acknowledged; answers whether it
/// did.
async fn settle(conn: &mut sqlx::AnyConnection, fake: &rcs::FakeRcs) -> Result<bool, BoxError> {
    let t = Instant::now();
    while t.elapsed() < SETTLE_DEADLINE {
        let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE done_at IS NULL")
            .fetch_one(&mut *conn)
            .await?;
        let received = fake.received().len();
        let acked = fake
            .sent_receipts()
            .iter()
            .filter(|r| r.status.is_some_and(|s| (200..300).contains(&s)))
            .count();
        if pending == 0 && acked >= 2 * received {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(false)
}

/// A read-only connection to the node's SQLite file, beside the node's
/// own (WAL: readers do not hold up its writer).
async fn read_only(db_url: &str) -> Result<sqlx::AnyConnection, BoxError> {
    let mut conn = sqlx::AnyConnection::connect(&format!("{db_url}?mode=ro")).await?;
    sqlx::query("PRAGMA busy_timeout = 5000")
        .execute(&mut conn)
        .await?;
    Ok(conn)
}

/// What the end-to-end node measured.
#[derive(Debug)]
struct E2e {
    workers: usize,
    rcs_accept: Run,
    rcs: Run,
    rcs_serial: Run,
    inapp_accept: Run,
    inapp: Run,
    inapp_serial: Run,
    /// Statuses of the node's messages at the end.
    statuses: String,
    /// What the fakes and the inbox hold at the end.
    providers: String,
    notes: Vec<String>,
}

/// The second node: delivery workers on, fake RCS and push providers on
/// loopback, one RCS and one in-app scenario.
async fn end_to_end(
    dir: &std::path::Path,
    body: &str,
    concurrency: usize,
    messages: usize,
    serial: usize,
    delivery: &ladder_server::config::DeliveryConfig,
) -> Result<E2e, BoxError> {
    let fake_rcs = Arc::new(
        rcs::start(rcs::FakeRcsConfig {
            token: RCS_TOKEN.into(),
            agent_id: RCS_AGENT.into(),
            webhook_url: None,
            webhook_secret: RCS_SECRET.into(),
            auto_receipts: true,
        })
        .await?,
    );
    let fake_push = push::start(push::FakePushConfig {
        fcm_token: FCM_TOKEN.into(),
        ..Default::default()
    })
    .await?;

    let mut config = ladder_server::Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.to_path_buf(),
        database_url: None,
        ..Default::default()
    };
    // Workers, claim batch and slots as set; the rest the defaults (the
    // poll among them: new work wakes a worker; the poll is the safety
    // net, not what the latency measures).
    config.delivery = delivery.clone();
    config.channels.rcs = Some(RcsConfig {
        endpoint: fake_rcs.base_url(),
        token: RCS_TOKEN.into(),
        agent_id: RCS_AGENT.into(),
        webhook_secret: RCS_SECRET.into(),
        timeout_ms: 5000,
        ..Default::default()
    });
    config.channels.push = Some(PushConfig {
        apns: None,
        fcm: Some(FcmConfig {
            endpoint: fake_push.base_url(),
            project: "ladder-bench".into(),
            token: FCM_TOKEN.into(),
        }),
        timeout_ms: 5000,
    });
    let db_url = config.database_url();
    let running = ladder_server::start(config).await?;
    let base = format!("http://{}", running.addr);
    fake_rcs.set_webhook_url(Some(format!("{base}/v1/webhooks/rcs/acme")));
    let token = running
        .demo
        .as_ref()
        .expect("a fresh data dir creates the demo tenant")
        .keys[0]
        .token
        .clone();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;

    // Read-only connections beside the node's own: this one for settling
    // and the final counts, another for the inbox probe.
    let mut conn = read_only(&db_url).await?;

    let mut notes = Vec::new();
    let mut runs = Vec::new();
    for via in [Via::Rcs, Via::InApp] {
        let mut recipients = Vec::with_capacity(E2E_RECIPIENTS);
        for n in 0..E2E_RECIPIENTS {
            recipients.push(enrol_e2e(&client, &base, &token, via, n).await?);
        }
        let ctx = Arc::new(E2eCtx {
            client: client.clone(),
            base: base.clone(),
            token: token.clone(),
            recipients,
            body: body.to_string(),
            via,
            accepted: Mutex::new(Vec::new()),
        });
        let seen: Seen = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (rcs_watch, inbox_watch) = match via {
            Via::Rcs => (
                Some(tokio::spawn(watch_rcs(
                    Arc::clone(&fake_rcs),
                    Arc::clone(&seen),
                    Arc::clone(&stop),
                ))),
                None,
            ),
            Via::InApp => (
                None,
                Some(tokio::spawn(watch_inbox(
                    read_only(&db_url).await?,
                    Arc::clone(&seen),
                    Arc::clone(&stop),
                ))),
            ),
        };

        let (_, warm) = e2e_batch(&ctx, &seen, "warm", E2E_WARMUP, concurrency).await;
        report_errors(&format!("{} warm-up", via.tag()), &warm);
        if !settle(&mut conn, &fake_rcs).await? {
            notes.push(format!("{} warm-up did not settle", via.tag()));
        }
        let (accept, batch) = e2e_batch(&ctx, &seen, "batch", messages, concurrency).await;
        if !settle(&mut conn, &fake_rcs).await? {
            notes.push(format!("{} batch did not settle", via.tag()));
        }
        let one = e2e_serial(&ctx, &seen, serial).await;
        if !settle(&mut conn, &fake_rcs).await? {
            notes.push(format!("{} one-at-a-time run did not settle", via.tag()));
        }

        stop.store(true, Ordering::Relaxed);
        if let Some(w) = rcs_watch {
            w.await?;
        }
        if let Some(w) = inbox_watch {
            let failures = w.await?;
            if failures > 0 {
                notes.push(format!("{failures} inbox polls failed"));
            }
        }
        runs.push((accept, batch, one));
    }
    running.shutdown().await;
    let statuses: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM messages GROUP BY status ORDER BY status")
            .fetch_all(&mut conn)
            .await?;
    let statuses = statuses
        .iter()
        .map(|(s, n)| format!("{s}×{n}"))
        .collect::<Vec<_>>()
        .join(" ");
    let inbox_rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox")
        .fetch_one(&mut conn)
        .await?;
    let _ = conn.close().await;
    let acked = fake_rcs
        .sent_receipts()
        .iter()
        .filter(|r| r.status.is_some_and(|s| (200..300).contains(&s)))
        .count();
    let providers = format!(
        "fake RCS {} agent messages, {acked} receipts acknowledged; inbox {inbox_rows} sealed rows; fake push {} wake-ups",
        fake_rcs.received().len(),
        fake_push.received().len(),
    );
    fake_push.shutdown().await;
    drop(fake_rcs);

    let mut runs = runs.into_iter();
    let (rcs_accept, rcs, rcs_serial) = runs.next().expect("the RCS scenario ran");
    let (inapp_accept, inapp, inapp_serial) = runs.next().expect("the in-app scenario ran");
    Ok(E2e {
        workers: delivery.workers,
        rcs_accept,
        rcs,
        rcs_serial,
        inapp_accept,
        inapp,
        inapp_serial,
        statuses,
        providers,
        notes,
    })
}

// ---------------------------------------------------------------- main ---

fn report_errors(name: &str, run: &Run) {
    if let Some(first) = run.errors.first() {
        println!(
            "  !! {name}: {} of {} requests failed; first: {first}",
            run.errors.len(),
            run.requests
        );
    }
}

fn outcomes(run: &Run) -> String {
    run.outcomes
        .iter()
        .map(|(k, v)| format!("{k}×{v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // reqwest and the fakes are built on rustls without a default provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let requests = env_usize("LADDER_BENCH_REQUESTS", DEFAULT_REQUESTS);
    let concurrency = env_usize("LADDER_BENCH_CONCURRENCY", DEFAULT_CONCURRENCY);
    let e2e_messages = env_usize("LADDER_BENCH_E2E_MESSAGES", DEFAULT_E2E_MESSAGES);
    let e2e_serial = env_usize("LADDER_BENCH_E2E_SERIAL", DEFAULT_E2E_SERIAL);
    let workers = env_usize("LADDER_BENCH_WORKERS", DEFAULT_WORKERS);
    let mut delivery = ladder_server::config::DeliveryConfig {
        workers,
        ..Default::default()
    };
    delivery.claim_batch = env_usize("LADDER_BENCH_CLAIM_BATCH", delivery.claim_batch);
    delivery.concurrency = env_usize("LADDER_BENCH_SLOTS", delivery.concurrency);
    let (claim_batch, slots) = (delivery.claim_batch, delivery.concurrency);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let body: String = "benchmark payload "
        .chars()
        .cycle()
        .take(BODY_LEN)
        .collect();

    // ------------------------------------------------- the real server ---
    let data = tempfile::tempdir()?;
    let (running, ctx) =
        ingest_node(&data.path().join("node"), 256, concurrency, body.clone()).await?;
    let db_url = running.state.config.database_url();
    let base = format!("http://{}", running.addr);

    // One real answer: its decision and body shape feed the storage ceiling.
    let resp = send_request(&ctx, "bench-capture", 0).send().await?;
    let capture_status = resp.status().as_u16();
    let captured: Value = resp.json().await?;
    assert!(
        matches!(capture_status, 202 | 409 | 422),
        "first send answered {capture_status}: {captured}"
    );
    let decision: Decision = serde_json::from_value(captured["decision"].clone())?;

    println!();
    println!("ladder ingest benchmark");
    println!(
        "  machine: {cores} cores · {requests} requests per scenario after {WARMUP} warm-up · concurrency {concurrency}"
    );
    println!(
        "  server: in-process, {base}, SQLite (WAL, synchronous=FULL, 1 connection), delivery workers 0"
    );
    println!(
        "  message: class `transactional`, {BODY_LEN}-byte body, {RECIPIENTS} recipients; decided: HTTP {capture_status}, outcome `{}`{}",
        decision.outcome.code(),
        decision
            .outcome
            .route()
            .map(|r| format!(", route `{}`", r.name()))
            .unwrap_or_default()
    );
    println!(
        "  end to end: a second in-process node, SQLite, {workers} delivery workers woken by new work (claim batch {claim_batch}, {slots} provider calls per channel, safety-net poll {} ms); fake RCS and push (FCM) providers on loopback",
        delivery.poll_ms
    );
    println!(
        "  end to end: class `{E2E_CLASS}`, {E2E_RECIPIENTS} recipients per channel, one device each; {e2e_messages} messages at concurrency {concurrency} after {E2E_WARMUP} warm-up, then {e2e_serial} one at a time"
    );

    // ------------------------------------ 1.-3. ingest and its ceilings ---
    // Two nodes (group commit, and one commit per message as before it)
    // and the raw store, measured in interleaved rounds, so that whatever
    // else the machine does hurts every row alike.
    let (single, single_ctx) =
        ingest_node(&data.path().join("single"), 1, concurrency, body.clone()).await?;
    let single_url = single.state.config.database_url();
    let raw_url = format!("sqlite://{}", data.path().join("raw.db").display());
    let raw = Arc::new(raw_store(&raw_url, &decision, &captured, i64::from(capture_status)).await?);
    for (name, node) in [
        ("ingest", &ctx),
        ("ingest, one commit per message", &single_ctx),
    ] {
        let c = Arc::clone(node);
        let warm = drive(WARMUP, concurrency, move |i| {
            send_one(Arc::clone(&c), format!("bench-warm-{i}"), i)
        })
        .await;
        report_errors(&format!("{name} warm-up"), &warm);
    }
    let c = Arc::clone(&raw);
    let warm = drive(WARMUP, concurrency, move |i| store_one(Arc::clone(&c), i)).await;
    report_errors("storage warm-up", &warm);

    let per_round = (requests / ROUNDS).max(1);
    let (mut ingest, mut ingest_wide, mut ingest_single, mut storage) =
        (Run::empty(), Run::empty(), Run::empty(), Run::empty());
    for round in 0..ROUNDS {
        let c = Arc::clone(&ctx);
        ingest = ingest.merge(
            drive(per_round, concurrency, move |i| {
                send_one(Arc::clone(&c), format!("bench-{round}-{i}"), i)
            })
            .await,
        );
        let c = Arc::clone(&single_ctx);
        ingest_single = ingest_single.merge(
            drive(per_round, concurrency, move |i| {
                send_one(Arc::clone(&c), format!("bench-{round}-{i}"), i)
            })
            .await,
        );
        let c = Arc::clone(&raw);
        let first = WARMUP + round * per_round;
        storage = storage.merge(
            drive(per_round, concurrency, move |i| {
                store_one(Arc::clone(&c), first + i)
            })
            .await,
        );
        let c = Arc::clone(&ctx);
        ingest_wide = ingest_wide.merge(
            drive(per_round, WIDE_CONCURRENCY, move |i| {
                send_one(Arc::clone(&c), format!("bench-wide-{round}-{i}"), i)
            })
            .await,
        );
    }

    // ------------------------------------------------- 2. HTTP ceiling ---
    let c = Arc::clone(&ctx);
    let _ = drive(WARMUP, concurrency, move |_| healthz_one(Arc::clone(&c))).await;
    let c = Arc::clone(&ctx);
    let http = drive(requests, concurrency, move |_| healthz_one(Arc::clone(&c))).await;

    let batching = running.state.commit.stats();
    running.shutdown().await;
    single.shutdown().await;
    let served = Store::open(&db_url).await?;
    let served_counts = row_counts(&served).await?;
    served.close().await;
    let served = Store::open(&single_url).await?;
    let single_counts = row_counts(&served).await?;
    served.close().await;
    let raw_counts = row_counts(&raw.store).await?;
    raw.store.close().await;

    // ----------------------------------- 6. scale out on PostgreSQL ---
    let pg = scale_out(data.path(), requests, concurrency, &ctx.body).await?;

    // ------------------------------------------------ 4./5. end to end ---
    let e2e = end_to_end(
        &data.path().join("e2e"),
        &ctx.body,
        concurrency,
        e2e_messages,
        e2e_serial,
        &delivery,
    )
    .await?;

    // ----------------------------------------------------------- table ---
    println!();
    println!(
        "  {:<36} {:>8} {:>7} {:>10} {:>9} {:>9} {:>9}",
        "scenario", "requests", "errors", "msgs/s", "p50 ms", "p99 ms", "max ms"
    );
    let wide = format!("ingest, concurrency {WIDE_CONCURRENCY}");
    let (pg_one, pg_two) = match &pg {
        Some((one, two)) => (Some(one), Some(two)),
        None => (None, None),
    };
    let pg_rows: Vec<(&str, &Run)> = [
        ("PostgreSQL ingest, 1 node", pg_one),
        ("PostgreSQL ingest, 2 nodes", pg_two),
    ]
    .into_iter()
    .filter_map(|(name, run)| run.map(|r| (name, r)))
    .collect();
    let rows = [
        ("ingest: POST /v1/messages (durable)", &ingest),
        (wide.as_str(), &ingest_wide),
        ("ingest, one commit per message", &ingest_single),
        ("HTTP ceiling: GET /healthz", &http),
        ("storage ceiling: raw SQLite tx/msg", &storage),
        ("e2e RCS: 202 → fake RCS has it", &e2e.rcs),
        ("e2e in-app: 202 → sealed inbox row", &e2e.inapp),
        ("e2e RCS, one at a time", &e2e.rcs_serial),
        ("e2e in-app, one at a time", &e2e.inapp_serial),
    ];
    for (name, run) in rows {
        println!(
            "  {:<36} {:>8} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>9.2}",
            name,
            run.requests,
            run.errors.len(),
            run.throughput(),
            run.percentile_ms(50.0),
            run.percentile_ms(99.0),
            run.max_ms(),
        );
    }
    for (name, run) in &pg_rows {
        println!(
            "  {:<36} {:>8} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>9.2}",
            name,
            run.requests,
            run.errors.len(),
            run.throughput(),
            run.percentile_ms(50.0),
            run.percentile_ms(99.0),
            run.max_ms(),
        );
    }
    if pg_rows.is_empty() {
        println!("  PostgreSQL scale-out: skipped (LADDER_TEST_POSTGRES_URL is not set)");
    }
    println!();
    if let (Some(one), Some(two)) = (pg_one, pg_two) {
        println!(
            "  PostgreSQL, 2 nodes / 1 node = {:>5.2} × throughput; 1 node / SQLite ingest = {:.2}",
            two.throughput() / one.throughput(),
            one.throughput() / ingest.throughput()
        );
    }
    println!(
        "  ingest / HTTP ceiling    = {:>5.1} % of throughput",
        100.0 * ingest.throughput() / http.throughput()
    );
    println!(
        "  ingest / storage ceiling = {:>5.1} % of throughput",
        100.0 * ingest.throughput() / storage.throughput()
    );
    println!(
        "  ingest / one commit per message = {:>5.2} × throughput",
        ingest.throughput() / ingest_single.throughput()
    );
    println!(
        "  group commit: {} messages (incl. warm-up and capture) in {} commits, {:.1} per commit; committer busy {:.0} µs per message",
        batching.units,
        batching.batches,
        batching.units as f64 / batching.batches.max(1) as f64,
        batching.busy.as_secs_f64() * 1e6 / batching.units.max(1) as f64
    );
    println!(
        "  e2e RCS / ingest         = {:>5.1} % of throughput",
        100.0 * e2e.rcs.throughput() / ingest.throughput()
    );
    println!(
        "  e2e in-app / ingest      = {:>5.1} % of throughput",
        100.0 * e2e.inapp.throughput() / ingest.throughput()
    );
    println!();
    println!(
        "  e2e rows: latency from the 202 reaching the client to the provider holding the message (seen every {} ms);",
        OBSERVE_EVERY.as_millis()
    );
    println!(
        "    msgs/s = messages that arrived / (first request → last arrival); batch latencies include queueing behind the batch"
    );
    for (name, run) in [("RCS", &e2e.rcs_accept), ("in-app", &e2e.inapp_accept)] {
        println!(
            "  acceptance during the {name} batch ({} delivery workers on): {:.0} msgs/s, p50 {:.2} ms, p99 {:.2} ms",
            e2e.workers,
            run.throughput(),
            run.percentile_ms(50.0),
            run.percentile_ms(99.0),
        );
    }
    println!();
    println!("  answers: ingest {}", outcomes(&ingest));
    println!(
        "  rows in the server's database after the run (incl. 1 capture + {WARMUP} warm-up): {served_counts}"
    );
    println!(
        "  rows in the one-commit-per-message node's database (incl. {WARMUP} warm-up): {single_counts}"
    );
    println!("  rows in the raw store (incl. {WARMUP} warm-up): {raw_counts}");
    println!(
        "  end-to-end node after the run (incl. {E2E_WARMUP} warm-up per channel): messages {}; {}",
        e2e.statuses, e2e.providers
    );
    for note in &e2e.notes {
        println!("  !! {note}");
    }
    for (name, run) in rows.into_iter().chain(pg_rows.iter().copied()) {
        report_errors(name, run);
    }
    report_errors("acceptance during the RCS batch", &e2e.rcs_accept);
    report_errors("acceptance during the in-app batch", &e2e.inapp_accept);
    println!();
    Ok(())
}
