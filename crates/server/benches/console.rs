#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! What the console's pages cost at scale (issue 10, "Figures"): the
//! dashboard's aggregate query and the message search over 1 M messages,
//! on SQLite and — when `LADDER_TEST_POSTGRES_URL` is set — PostgreSQL,
//! beside the time it took to insert those messages.
//!
//! Per backend: a node starts in-process (delivery workers off) and real
//! decisions are captured by sending one message of each kind over HTTP
//! (delivered by portal, observed, escalated, blocked, held). Then
//! `LADDER_BENCH_MESSAGES` messages (default 1 000 000) are written
//! through the store in batches of 1 000 per transaction, spread evenly
//! over the last 30 days across 10 000 recipients: each a real `messages`
//! row (its decision, the stored answer, the list columns) plus the stats
//! bumps the service makes for that decision
//! (`service::stats::record_decision`, same transaction). Sealed payloads,
//! outbox work, events and audit entries are not written: no page read
//! here touches them. That is the insert time reported.
//!
//! Then, each query 5 times to warm up and 50 times measured (p50, p99):
//! the dashboard (`service::stats::dashboard`) for 24 h by hour and 30
//! days by day, and `messages::list` (a page of 50) by the recipient's
//! external id, by class and status, and unfiltered.
//!
//! Run with `cargo bench -p ladder-server --bench console`
//! (`LADDER_BENCH_MESSAGES=200000` for a shorter run).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ladder_core::{Decision, Timestamp};
use ladder_server::service::stats::{Bucket, StatsQuery, dashboard, record_decision};
use ladder_server::state::AppState;
use ladder_store::ids;
use ladder_store::messages::{self, Message, MessageFilter, Status};
use ladder_store::recipients::{self, Recipient};
use ladder_store::threads::{self, Thread};
use serde_json::{Value, json};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const RECIPIENTS: usize = 10_000;
const BATCH: usize = 1_000;
const WINDOW_S: i64 = 30 * 86_400;
const WARMUP: usize = 5;
const RUNS: usize = 50;

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A message of each kind, sent for real: the decisions (and answers) the
/// bulk rows copy, with the status each leaves.
async fn capture(base: &str, token: &str) -> Result<Vec<(Decision, Value, i64, Status)>, BoxError> {
    let client = reqwest::Client::new();
    let register = |body: Value| {
        let client = client.clone();
        async move {
            let v: Value = client
                .post(format!("{base}/v1/recipients"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await?
                .json()
                .await?;
            Ok::<String, BoxError>(v["id"].as_str().expect("recipient id").to_string())
        }
    };
    let full = register(
        json!({ "external_id": "cap-1", "email": "c@example.com", "phone": "+15550000001" }),
    )
    .await?;
    let bare = register(json!({ "external_id": "cap-2" })).await?;
    let mut out = Vec::new();
    for (i, (who, class)) in [
        (&full, "transactional"),
        (&full, "support_escalation"),
        (&bare, "payroll"),
        (&bare, "hr_case"),
        (&bare, "transactional"),
    ]
    .into_iter()
    .enumerate()
    {
        let resp = client
            .post(format!("{base}/v1/messages"))
            .bearer_auth(token)
            .header("idempotency-key", format!("capture-{i}"))
            .json(&json!({ "recipient": who, "class": class, "body": "benchmark" }))
            .send()
            .await?;
        let code = i64::from(resp.status().as_u16());
        let body: Value = resp.json().await?;
        let decision: Decision = serde_json::from_value(body["decision"].clone())?;
        let status = Status::from_name(body["status"].as_str().expect("status")).expect("status");
        out.push((decision, body, code, status));
    }
    Ok(out)
}

/// Writes `n` messages in batches, with the stats bumps the service makes.
async fn fill(
    state: &AppState,
    tenant: &str,
    kinds: &[(Decision, Value, i64, Status)],
    n: usize,
    start: i64,
) -> Result<Duration, BoxError> {
    let store = &state.store;
    let mut people = Vec::with_capacity(RECIPIENTS);
    let mut tx = store.begin().await?;
    for i in 0..RECIPIENTS {
        let r = Recipient {
            id: ids::new_id("rcp"),
            tenant_id: tenant.to_string(),
            external_id: format!("emp-{i}"),
            pseudonym: format!("p:{i:064}"),
            contact_sealed: vec![0; 96],
            has_email: true,
            has_phone: true,
            created_at: start,
            language: None,
            time_zone: None,
        };
        recipients::insert(&mut tx, &r).await?;
        let t = Thread {
            id: ids::new_id("thr"),
            tenant_id: tenant.to_string(),
            recipient_id: r.id.clone(),
            name: "default".into(),
            floor: kinds[0].0.thread.after.clone(),
            updated_at: start,
        };
        threads::insert(&mut tx, &t).await?;
        people.push((r.id, t.id));
    }
    tx.commit().await?;
    let step = (WINDOW_S as f64 / n.max(1) as f64).max(0.0);
    let started = Instant::now();
    let mut i = 0;
    while i < n {
        let mut tx = store.begin().await?;
        for _ in 0..BATCH.min(n - i) {
            let (template, answer, code, status) = &kinds[i % kinds.len()];
            let (recipient, thread) = &people[(i * 7919) % RECIPIENTS];
            let at = start + (i as f64 * step) as i64;
            let id = ids::new_id("msg");
            let mut decision = template.clone();
            decision.message_id = id.clone();
            decision.decided_at = Timestamp(at);
            let mut body = answer.clone();
            body["id"] = json!(id);
            let m = Message {
                id: id.clone(),
                tenant_id: tenant.to_string(),
                idempotency_key: format!("bulk-{i}"),
                request_hash: format!("{i:064}"),
                recipient_id: recipient.clone(),
                thread_id: thread.clone(),
                class: decision.class.clone(),
                status: *status,
                decision,
                failed: Vec::new(),
                response_status: *code,
                response_body: body,
                confirmation_hash: None,
                accepted_at: at,
                updated_at: at,
                expires_at: at + 86_400 * 90,
            };
            messages::insert(&mut tx, &m).await?;
            record_decision(&mut tx, tenant, &m.decision)
                .await
                .map_err(|e| format!("{e:?}"))?;
            i += 1;
        }
        tx.commit().await?;
        if i % 100_000 == 0 {
            eprintln!("  … {i} messages, {:.0} s", started.elapsed().as_secs_f64());
        }
    }
    Ok(started.elapsed())
}

/// p50 and p99 of `op`, in milliseconds, after a warm-up.
async fn measure<F, Fut>(mut op: F) -> Result<(f64, f64), BoxError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, BoxError>>,
{
    for _ in 0..WARMUP {
        op().await?;
    }
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        let rows = op().await?;
        times.push(t.elapsed());
        assert!(rows > 0, "a query under measure found nothing");
    }
    times.sort();
    let at = |p: f64| {
        let rank = ((p / 100.0) * times.len() as f64).ceil() as usize;
        times[rank.clamp(1, times.len()) - 1].as_secs_f64() * 1000.0
    };
    Ok((at(50.0), at(99.0)))
}

async fn list(state: &AppState, tenant: &str, filter: &MessageFilter) -> Result<usize, BoxError> {
    let mut conn = state.store.pool().acquire().await?;
    Ok(messages::list(&mut conn, tenant, filter, None, 50)
        .await?
        .len())
}

async fn board(state: &AppState, tenant: &str, q: &StatsQuery) -> Result<usize, BoxError> {
    let d = dashboard(state, tenant, q)
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(d.decisions.len())
}

async fn run(label: &str, database_url: Option<String>, n: usize) -> Result<Vec<String>, BoxError> {
    let data = tempfile::tempdir()?;
    let mut config = ladder_server::Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: data.path().join("node"),
        database_url,
        ..Default::default()
    };
    config.delivery.workers = 0;
    let running = ladder_server::start(config).await?;
    let demo = running
        .demo
        .as_ref()
        .expect("a fresh database gets the demo tenant");
    let token = demo
        .keys
        .iter()
        .find(|k| k.scope.as_str() == "sender")
        .expect("a sender key")
        .token
        .clone();
    let tenant = demo.tenant.id.clone();
    let state = running.state.clone();
    let kinds = capture(&format!("http://{}", running.addr), &token).await?;
    let now = now_s();
    eprintln!("{label}: inserting {n} messages …");
    let insert = fill(&state, &tenant, &kinds, n, now - WINDOW_S).await?;

    let day = StatsQuery {
        since: now - 86_400,
        until: now + 60,
        bucket: Bucket::Hour,
        class: None,
    };
    let month = StatsQuery {
        since: now - WINDOW_S,
        until: now + 60,
        bucket: Bucket::Day,
        class: None,
    };
    let by_person = MessageFilter {
        external_id: Some("emp-4242".into()),
        ..MessageFilter::default()
    };
    let by_class = MessageFilter {
        class: Some("payroll".into()),
        status: Some(Status::Escalated),
        ..MessageFilter::default()
    };
    let all = MessageFilter::default();
    let mut rows = vec![format!(
        "{label:<10} insert {n} messages: {:.1} s ({:.0} msg/s)",
        insert.as_secs_f64(),
        n as f64 / insert.as_secs_f64()
    )];
    let cases: [(&str, Measured); 5] = [
        (
            "dashboard 24 h by hour",
            measure(|| board(&state, &tenant, &day)).await?,
        ),
        (
            "dashboard 30 d by day",
            measure(|| board(&state, &tenant, &month)).await?,
        ),
        (
            "search by recipient",
            measure(|| list(&state, &tenant, &by_person)).await?,
        ),
        (
            "search class+status",
            measure(|| list(&state, &tenant, &by_class)).await?,
        ),
        (
            "search unfiltered",
            measure(|| list(&state, &tenant, &all)).await?,
        ),
    ];
    for (name, (p50, p99)) in cases {
        rows.push(format!(
            "{label:<10} {name:<24} p50 {p50:>8.2} ms   p99 {p99:>8.2} ms"
        ));
    }
    running.shutdown().await;
    Ok(rows)
}

type Measured = (f64, f64);

async fn pg_schema(url: &str) -> Result<(String, String), BoxError> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let schema = format!("bench_console_{}", std::process::id());
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok((
        schema.clone(),
        format!("{url}{sep}options=-c%20search_path%3D{schema}"),
    ))
}

async fn drop_schema(url: &str, schema: &str) -> Result<(), BoxError> {
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let n = std::env::var("LADDER_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut table = run("sqlite", None, n).await?;
    match std::env::var("LADDER_TEST_POSTGRES_URL") {
        Ok(url) => {
            let (schema, scoped) = pg_schema(&url).await?;
            let result = run("postgres", Some(scoped), n).await;
            drop_schema(&url, &schema).await?;
            table.extend(result?);
        }
        Err(_) => table.push("postgres   skipped: LADDER_TEST_POSTGRES_URL not set".into()),
    }
    println!();
    println!(
        "ladder console benchmark: {n} messages over 30 days, {RECIPIENTS} recipients, {cores} cores"
    );
    println!("  each query {WARMUP} warm-up + {RUNS} measured; search pages hold 50 rows");
    for row in table {
        println!("  {row}");
    }
    Ok(())
}
