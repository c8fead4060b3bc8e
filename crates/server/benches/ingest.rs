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
//! 2. **HTTP ceiling** — `GET /healthz` on the same server, same client,
//!    same concurrency: what the HTTP stack alone allows on this machine.
//! 3. **storage ceiling** — the rows one accepted message writes (message,
//!    payload, thread floor, event, outbox, audit entry), one transaction per
//!    message, straight into a separate SQLite store: no HTTP, no auth, no
//!    decision, no crypto.
//!
//! Run with `cargo bench -p ladder-server --bench ingest`. Tunables:
//! `LADDER_BENCH_REQUESTS` (default 3000) and `LADDER_BENCH_CONCURRENCY`
//! (default 16). Everything runs on loopback and stops by itself.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ladder_core::{Decision, Outcome};
use ladder_store::audit::{self, AuditEvent};
use ladder_store::messages::{self, Message, Status, StoredPayload};
use ladder_store::outbox::{self, Kind};
use ladder_store::recipients::{self, Recipient};
use ladder_store::threads::{self, Thread};
use ladder_store::{Store, ids, sealed, tenants};
use serde_json::{Value, json};

const RECIPIENTS: usize = 50;
const WARMUP: usize = 200;
const BODY_LEN: usize = 256;
const DEFAULT_REQUESTS: usize = 3000;
const DEFAULT_CONCURRENCY: usize = 16;

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
            has_phone: false,
            created_at: at,
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
    let requests = env_usize("LADDER_BENCH_REQUESTS", DEFAULT_REQUESTS);
    let concurrency = env_usize("LADDER_BENCH_CONCURRENCY", DEFAULT_CONCURRENCY);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let body: String = "benchmark payload "
        .chars()
        .cycle()
        .take(BODY_LEN)
        .collect();

    // ------------------------------------------------- the real server ---
    let data = tempfile::tempdir()?;
    let mut config = ladder_server::Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: data.path().join("node"),
        database_url: None,
        ..Default::default()
    };
    config.delivery.workers = 0;
    let db_url = config.database_url();
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
                &json!({ "external_id": format!("emp-{n}"), "email": format!("{n}@example.com") }),
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

    // ------------------------------------------------------- 1. ingest ---
    let c = Arc::clone(&ctx);
    let warm = drive(WARMUP, concurrency, move |i| {
        send_one(Arc::clone(&c), format!("bench-warm-{i}"), i)
    })
    .await;
    report_errors("ingest warm-up", &warm);
    let c = Arc::clone(&ctx);
    let ingest = drive(requests, concurrency, move |i| {
        send_one(Arc::clone(&c), format!("bench-{i}"), i)
    })
    .await;

    // ------------------------------------------------- 2. HTTP ceiling ---
    let c = Arc::clone(&ctx);
    let _ = drive(WARMUP, concurrency, move |_| healthz_one(Arc::clone(&c))).await;
    let c = Arc::clone(&ctx);
    let http = drive(requests, concurrency, move |_| healthz_one(Arc::clone(&c))).await;

    running.shutdown().await;
    let served = Store::open(&db_url).await?;
    let served_counts = row_counts(&served).await?;
    served.close().await;

    // ---------------------------------------------- 3. storage ceiling ---
    let raw_url = format!("sqlite://{}", data.path().join("raw.db").display());
    let raw = Arc::new(raw_store(&raw_url, &decision, &captured, i64::from(capture_status)).await?);
    let c = Arc::clone(&raw);
    let warm = drive(WARMUP, concurrency, move |i| store_one(Arc::clone(&c), i)).await;
    report_errors("storage warm-up", &warm);
    let c = Arc::clone(&raw);
    let storage = drive(requests, concurrency, move |i| {
        store_one(Arc::clone(&c), WARMUP + i)
    })
    .await;
    let raw_counts = row_counts(&raw.store).await?;
    raw.store.close().await;

    // ----------------------------------------------------------- table ---
    println!();
    println!(
        "  {:<36} {:>8} {:>7} {:>10} {:>9} {:>9} {:>9}",
        "scenario", "requests", "errors", "msgs/s", "p50 ms", "p99 ms", "max ms"
    );
    let rows = [
        ("ingest: POST /v1/messages (durable)", &ingest),
        ("HTTP ceiling: GET /healthz", &http),
        ("storage ceiling: raw SQLite tx/msg", &storage),
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
    println!();
    println!(
        "  ingest / HTTP ceiling    = {:>5.1} % of throughput",
        100.0 * ingest.throughput() / http.throughput()
    );
    println!(
        "  ingest / storage ceiling = {:>5.1} % of throughput",
        100.0 * ingest.throughput() / storage.throughput()
    );
    println!();
    println!("  answers: ingest {}", outcomes(&ingest));
    println!(
        "  rows in the server's database after the run (incl. 1 capture + {WARMUP} warm-up): {served_counts}"
    );
    println!("  rows in the raw store (incl. {WARMUP} warm-up): {raw_counts}");
    for (name, run) in rows {
        report_errors(name, run);
    }
    println!();
    Ok(())
}
