#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The audit log's throughput and proof costs, SQLite and PostgreSQL side by
//! side in one run:
//!
//! 1. **appends** — `LADDER_BENCH_ENTRIES` (default 5,000) audit entries,
//!    each appended with `audit::append` in its own transaction, as the
//!    service does (head row, hash chain, entry row, head update, commit).
//! 2. **Merkle integration** — after every 1,000 appends,
//!    `merkle::integrate(store, tenant, 1000)`, as the server's maintenance
//!    loop does, timed on its own.
//! 3. **raw insert ceiling** — the very same rows (same columns, same
//!    canonical `details` text, same hashes) into a plain table with the same
//!    primary key but no chain logic, foreign key or trigger, one transaction
//!    each. Each append is followed by the raw insert of the same row, so
//!    that a noisy machine (and the WAL's checkpoints) hurt both alike.
//! 4. **proofs** — 1,000 inclusion proofs of random indexes against the
//!    final tree and 1,000 consistency proofs between random sizes, from the
//!    stored hashes (`merkle::inclusion_proof`, `merkle::consistency_proof`),
//!    each checked (outside the timing) against an in-memory `TreeBuilder`;
//!    and the same proofs from that `TreeBuilder`, for comparison.
//! 5. **checkpoint** — `signed::sign_head` with a fixed Ed25519 key, once.
//! 6. **group commit** — the same entries appended by 64 concurrent
//!    writers through `GroupCommit` (as the server accepts messages): on
//!    SQLite one transaction per batch of whatever arrived while the last
//!    one synced; on PostgreSQL one transaction per append on the pool's
//!    connections. Wall time, then the chain is verified.
//!
//! SQLite runs on a temp file (WAL, `synchronous = FULL`, as the store opens
//! it). PostgreSQL runs only when `LADDER_TEST_POSTGRES_URL` is set, in a
//! fresh schema dropped at the end. Run with
//! `cargo bench -p ladder-store --bench audit_log`.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use ladder_store::audit::merkle::{self, TreeBuilder, entry_leaf_hash};
use ladder_store::audit::{self, AuditEntry, AuditEvent, signed};
use ladder_store::{Dialect, GroupCommit, Store};
use serde_json::{Value, json};
use sqlx::Connection;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, BoxError>;

const TENANT: &str = "tnt_bench";
/// The tenant of the group-commit phase.
const GROUP_TENANT: &str = "tnt_group";
/// Concurrent appenders in the group-commit phase.
const GROUP_WRITERS: usize = 64;
const WARMUP_TENANT: &str = "tnt_warmup";
const DEFAULT_ENTRIES: u64 = 5_000;
const MAX_ENTRIES: u64 = 1_000_000;
/// Appends between two integrations, and integration's `max`.
const BATCH: u64 = 1_000;
/// Proofs of each kind.
const PROOFS: usize = 1_000;
/// Appends and raw inserts on another tenant before measuring.
const WARMUP: u64 = 100;
/// In-memory checkpoint signatures timed, for the mean.
const SIGNS: usize = 100;
const BASE_AT: i64 = 1_700_000_000;
const DEPLOYMENT: &str = "bench.ladder.invalid";

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run())
}

async fn run() -> ExitCode {
    let entries = match entries_wanted() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("audit_log bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let events: Vec<AuditEvent> = (0..entries).map(event).collect();
    let sizes: Vec<usize> = events
        .iter()
        .map(|e| audit::canonical_json(&e.details).len())
        .collect();
    println!(
        "ladder audit log benchmark: {} entries, one transaction each; Merkle integration every {}; \
         {} proofs of each kind",
        thousands(entries),
        thousands(BATCH),
        thousands(PROOFS as u64),
    );
    println!(
        "entry `details`: {} to {} bytes of canonical JSON, {:.0} on average (decisions, delivery \
         attempts and outcomes, as the service writes them)",
        sizes.iter().min().copied().unwrap_or_default(),
        sizes.iter().max().copied().unwrap_or_default(),
        sizes.iter().sum::<usize>() as f64 / sizes.len().max(1) as f64,
    );

    let mut failed = false;
    println!("\nSQLite (temp file): running…");
    let sqlite = match Db::sqlite().await {
        Ok(db) => db.measure(&events).await,
        Err(e) => Err(e),
    };
    if let Err(e) = &sqlite {
        eprintln!("SQLite failed: {e}");
        failed = true;
    }

    let postgres = match std::env::var("LADDER_TEST_POSTGRES_URL") {
        Err(_) => {
            println!("PostgreSQL: skipped (LADDER_TEST_POSTGRES_URL is not set)");
            Outcome::Skipped
        }
        Ok(url) => {
            println!("PostgreSQL: running…");
            let result = match Db::postgres(&url).await {
                Ok(db) => db.measure(&events).await,
                Err(e) => Err(e),
            };
            if let Err(e) = &result {
                eprintln!("PostgreSQL failed: {e}");
                failed = true;
            }
            Outcome::Ran(result)
        }
    };
    let sqlite = Outcome::Ran(sqlite);

    // Both backends store the same entries, so they must agree on the tree.
    if let (Outcome::Ran(Ok(a)), Outcome::Ran(Ok(b))) = (&sqlite, &postgres)
        && a.root != b.root
    {
        eprintln!("SQLite and PostgreSQL disagree on the root of the same entries");
        failed = true;
    }

    let memory = match &sqlite {
        Outcome::Ran(Ok(report)) => Some(in_memory(&report.entries)),
        _ => None,
    };

    print_reports(entries, &sqlite, &postgres);
    if let Some(memory) = memory {
        match memory {
            Ok(memory) => print_memory(&memory),
            Err(e) => {
                eprintln!("in-memory comparison failed: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn entries_wanted() -> Result<u64> {
    let Ok(text) = std::env::var("LADDER_BENCH_ENTRIES") else {
        return Ok(DEFAULT_ENTRIES);
    };
    let n: u64 = text
        .trim()
        .parse()
        .map_err(|e| format!("LADDER_BENCH_ENTRIES=`{text}`: {e}"))?;
    if !(1..=MAX_ENTRIES).contains(&n) {
        return Err(format!("LADDER_BENCH_ENTRIES must be 1 to {MAX_ENTRIES}, not {n}").into());
    }
    Ok(n)
}

// ---------------------------------------------------------------------------
// Workload.

/// The `i`th event: half decisions, a quarter delivery attempts, a quarter
/// outcomes, with ids and pseudonyms of realistic length.
fn event(i: u64) -> AuditEvent {
    let message = format!("msg_{:026x}", mix(i));
    let recipient = format!(
        "rcp_{:032x}",
        u128::from(mix(i % 500)) << 64 | u128::from(i % 500)
    );
    let thread = format!("thr_{:026x}", mix(i % 500 + 1_000_000));
    let route = ["rcs", "sms", "email", "in_app"][(i / 4 % 4) as usize];
    let (kind, details) = match i % 4 {
        0 | 1 => (
            "decision",
            json!({
                "class": if i.is_multiple_of(3) { "otp" } else { "transactional" },
                "policy_version": 3 + i % 5,
                "mode": "enforce",
                "outcome": "route",
                "route": route,
                "assurance": 1 + i % 4,
                "enforced": Value::Null,
                "skipped": if i.is_multiple_of(2) {
                    json!([{ "step": 0, "route": "in_app", "reasons": ["no_device"] }])
                } else {
                    json!([])
                },
                "recipient": recipient,
                "thread": thread,
            }),
        ),
        2 => (
            "delivery_attempt",
            json!({ "route": "rcs", "assurance": 3, "attempt": 1 + i % 3, "provider_status": 202 }),
        ),
        _ => (
            "delivery_outcome",
            json!({ "route": "sms", "code": if i % 8 == 3 { "delivered" } else { "failed_permanent" } }),
        ),
    };
    AuditEvent {
        kind: kind.to_string(),
        actor: format!("api-key:key_{:022x}", mix(i % 3)),
        subject: Some(message),
        details,
    }
}

/// splitmix64's finaliser: a fixed, well-spread function of `x`.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small deterministic generator: the same indexes on every backend.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(1);
        mix(self.0) % n.max(1)
    }
}

/// Random leaf indexes and `(from, to)` pairs (`1 <= from <= to <= size`).
fn proof_targets(size: u64) -> (Vec<u64>, Vec<(u64, u64)>) {
    let mut rng = Rng(0x1adde5);
    let indexes = (0..PROOFS).map(|_| rng.below(size)).collect();
    let pairs = (0..PROOFS)
        .map(|_| {
            let a = 1 + rng.below(size);
            let b = 1 + rng.below(size);
            (a.min(b), a.max(b))
        })
        .collect();
    (indexes, pairs)
}

// ---------------------------------------------------------------------------
// Databases.

struct Db {
    store: Store,
    _dir: Option<tempfile::TempDir>,
    /// PostgreSQL: the server URL and the schema this run owns.
    pg: Option<(String, String)>,
}

impl Db {
    async fn sqlite() -> Result<Db> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("ladder.db");
        let store = Store::open(&format!("sqlite://{}", path.display())).await?;
        Ok(Db {
            store,
            _dir: Some(dir),
            pg: None,
        })
    }

    async fn postgres(url: &str) -> Result<Db> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let schema = format!("bench_audit_{}_{}", std::process::id(), nanos);
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(url).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let sep = if url.contains('?') { '&' } else { '?' };
        let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
        let store = match Store::open(&scoped).await {
            Ok(store) => store,
            Err(e) => {
                drop_schema(url, &schema).await?;
                return Err(e.into());
            }
        };
        let db = Db {
            store,
            _dir: None,
            pg: Some((url.to_string(), schema)),
        };
        if db.store.dialect() != Dialect::Postgres {
            db.cleanup().await?;
            return Err("LADDER_TEST_POSTGRES_URL did not open a PostgreSQL store".into());
        }
        Ok(db)
    }

    /// Runs every measurement, then drops what the run created (the temp
    /// directory, or the PostgreSQL schema) whether or not it succeeded.
    async fn measure(self, events: &[AuditEvent]) -> Result<Box<Report>> {
        let result = measure(&self.store, events).await;
        let cleaned = self.cleanup().await;
        let report = result?;
        cleaned?;
        Ok(Box::new(report))
    }

    async fn cleanup(self) -> Result<()> {
        self.store.close().await;
        if let Some((url, schema)) = &self.pg {
            drop_schema(url, schema).await?;
        }
        Ok(())
    }
}

async fn drop_schema(url: &str, schema: &str) -> Result<()> {
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

/// The ceiling's table: `audit_entries`' columns and primary key, without
/// its foreign key and append-only triggers.
fn raw_table(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "CREATE TABLE raw_audit (tenant_id TEXT NOT NULL, seq INTEGER NOT NULL, \
             at INTEGER NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL, subject TEXT, \
             details TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, \
             PRIMARY KEY (tenant_id, seq))"
        }
        Dialect::Postgres => {
            "CREATE TABLE raw_audit (tenant_id TEXT NOT NULL, seq BIGINT NOT NULL, \
             at BIGINT NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL, subject TEXT, \
             details TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, \
             PRIMARY KEY (tenant_id, seq))"
        }
    }
}

/// An entry as the raw table gets it: `details` already encoded (as
/// `append` stores it), so the ceiling times the database alone.
struct RawRow<'a> {
    entry: &'a AuditEntry,
    details: String,
}

impl<'a> RawRow<'a> {
    fn new(entry: &'a AuditEntry) -> Result<RawRow<'a>> {
        Ok(RawRow {
            entry,
            details: String::from_utf8(audit::canonical_json(&entry.details))?,
        })
    }
}

async fn raw_insert(store: &Store, tenant_id: &str, row: &RawRow<'_>) -> Result<()> {
    let e = row.entry;
    let mut tx = store.begin().await?;
    sqlx::query(
        "INSERT INTO raw_audit (tenant_id, seq, at, kind, actor, subject, details, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(tenant_id)
    .bind(e.seq)
    .bind(e.at)
    .bind(e.kind.as_str())
    .bind(e.actor.as_str())
    .bind(e.subject.as_deref())
    .bind(row.details.as_str())
    .bind(e.prev_hash.as_str())
    .bind(e.hash.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// One append in its own transaction, as the service writes an entry.
async fn append_one(
    store: &Store,
    tenant_id: &str,
    at: i64,
    event: &AuditEvent,
) -> Result<AuditEntry> {
    let mut tx = store.begin().await?;
    let entry = audit::append(&mut tx, store.dialect(), tenant_id, at, event).await?;
    tx.commit().await?;
    Ok(entry)
}

/// Appends `events` to [`GROUP_TENANT`] from [`GROUP_WRITERS`] concurrent
/// writers through one [`GroupCommit`]; the wall time and the number of
/// commits. The chain is verified afterwards, outside the timing.
async fn group_appends(store: &Store, events: &[AuditEvent]) -> Result<(Duration, u64)> {
    let group = GroupCommit::start(store.clone());
    let events = std::sync::Arc::new(events.to_vec());
    let dialect = store.dialect();
    let started = Instant::now();
    let mut writers = Vec::with_capacity(GROUP_WRITERS);
    for w in 0..GROUP_WRITERS {
        let (group, events) = (group.clone(), events.clone());
        writers.push(tokio::spawn(async move {
            for i in (w..events.len()).step_by(GROUP_WRITERS) {
                let event = events.get(i).cloned().ok_or("no event")?;
                let at = BASE_AT + i as i64;
                group
                    .run(move |tx| {
                        Box::pin(async move {
                            audit::append(tx, dialect, GROUP_TENANT, at, &event).await
                        })
                    })
                    .await?;
            }
            Ok::<(), BoxError>(())
        }));
    }
    for w in writers {
        w.await??;
    }
    let took = started.elapsed();
    let report = audit::verify_store(store, GROUP_TENANT).await?;
    if report.entries != events.len() as i64 {
        return Err(format!(
            "group commit left {} entries, not {}",
            report.entries,
            events.len()
        )
        .into());
    }
    Ok((took, group.stats().batches))
}

// ---------------------------------------------------------------------------
// Measuring.

/// Timings of one kind of operation, sorted.
struct Series(Vec<Duration>);

impl Series {
    fn new(mut samples: Vec<Duration>) -> Series {
        samples.sort_unstable();
        Series(samples)
    }

    fn total(&self) -> Duration {
        self.0.iter().sum()
    }

    /// Operations per second of their summed time.
    fn per_sec(&self) -> f64 {
        per_sec(self.0.len() as u64, self.total())
    }

    /// Nearest-rank percentile.
    fn pct(&self, p: usize) -> Duration {
        let rank = (p * self.0.len()).div_ceil(100).max(1);
        self.0.get(rank - 1).copied().unwrap_or_default()
    }

    fn mean(&self) -> Duration {
        let n = u32::try_from(self.0.len()).unwrap_or(u32::MAX).max(1);
        self.total() / n
    }

    fn max(&self) -> Duration {
        self.0.last().copied().unwrap_or_default()
    }
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-12)
}

/// What one backend measured.
struct Report {
    entries: Vec<AuditEntry>,
    root: [u8; 32],
    appends: Series,
    raw: Series,
    /// One sample per `integrate` call.
    batches: Series,
    inclusion: Series,
    consistency: Series,
    inclusion_hashes: f64,
    consistency_hashes: f64,
    stored_hashes: i64,
    sign_head: Duration,
    checkpoint_bytes: usize,
    /// Wall time of the group-commit phase, and its commits (SQLite).
    grouped: Duration,
    grouped_batches: u64,
}

async fn measure(store: &Store, events: &[AuditEvent]) -> Result<Report> {
    let n = events.len() as u64;
    for (id, name) in [
        (TENANT, "Bench"),
        (WARMUP_TENANT, "Warm-up"),
        (GROUP_TENANT, "Group"),
    ] {
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(name)
            .bind(BASE_AT)
            .execute(store.pool())
            .await?;
    }
    sqlx::query(raw_table(store.dialect()))
        .execute(store.pool())
        .await?;

    // Warm-up, on another tenant: connections, caches, statement caches.
    for (i, event) in (0..WARMUP).zip(events.iter().cycle()) {
        let entry = append_one(store, WARMUP_TENANT, BASE_AT + i as i64, event).await?;
        raw_insert(store, WARMUP_TENANT, &RawRow::new(&entry)?).await?;
    }
    merkle::integrate(store, WARMUP_TENANT, BATCH as i64).await?;

    // 1–3: appends with their raw twins, and integration after every BATCH.
    let mut entries: Vec<AuditEntry> = Vec::with_capacity(events.len());
    let mut appends = Vec::with_capacity(events.len());
    let mut raw = Vec::with_capacity(events.len());
    let mut batches = Vec::new();
    let mut head = merkle::head(store, TENANT).await?;
    for round in events.chunks(BATCH as usize) {
        for event in round {
            let at = BASE_AT + entries.len() as i64;
            let started = Instant::now();
            let entry = append_one(store, TENANT, at, event).await?;
            appends.push(started.elapsed());
            // The same row into the plain table, right after: both see the
            // same machine, WAL and cache state.
            let row = RawRow::new(&entry)?;
            let started = Instant::now();
            raw_insert(store, TENANT, &row).await?;
            raw.push(started.elapsed());
            entries.push(entry);
        }

        let started = Instant::now();
        head = merkle::integrate(store, TENANT, BATCH as i64).await?;
        batches.push(started.elapsed());
        if head.size != entries.len() as u64 {
            return Err(format!(
                "integrate left the tree at {} entries, not {}",
                head.size,
                entries.len()
            )
            .into());
        }
    }

    // The tree, recomputed in memory from the entries, to check everything
    // the database answers (outside the timings).
    let mut tree = TreeBuilder::new();
    for entry in &entries {
        tree.push(entry_leaf_hash(entry));
    }
    if tree.root() != head.root {
        return Err("the stored tree's root differs from the entries' root".into());
    }
    let stored_hashes: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM merkle_hashes WHERE tenant_id = $1")
            .bind(TENANT)
            .fetch_one(store.pool())
            .await?;

    // 4: proofs from the stored hashes.
    let (indexes, pairs) = proof_targets(n);
    let mut inclusion = Vec::with_capacity(PROOFS);
    let mut inclusion_hashes = 0_usize;
    for &index in &indexes {
        let started = Instant::now();
        let proof = merkle::inclusion_proof(store, TENANT, index, n).await?;
        inclusion.push(started.elapsed());
        inclusion_hashes += proof.len();
        if Some(&proof) != tree.inclusion_proof(index, n).as_ref() {
            return Err(format!(
                "inclusion proof of {index} in {n} differs from the in-memory one"
            )
            .into());
        }
        merkle::verify_inclusion(
            entry_leaf_hash(&entries[index as usize]),
            index,
            n,
            &proof,
            head.root,
        )?;
    }
    let mut consistency = Vec::with_capacity(PROOFS);
    let mut consistency_hashes = 0_usize;
    for &(from, to) in &pairs {
        let started = Instant::now();
        let proof = merkle::consistency_proof(store, TENANT, from, to).await?;
        consistency.push(started.elapsed());
        consistency_hashes += proof.len();
        if Some(&proof) != tree.consistency_proof(from, to).as_ref() {
            return Err(
                format!("consistency proof {from} -> {to} differs from the in-memory one").into(),
            );
        }
        let roots = tree.root_at(from).zip(tree.root_at(to));
        let (from_root, to_root) = roots.ok_or("no in-memory root")?;
        merkle::verify_consistency(from, from_root, to, to_root, &proof)?;
    }

    // 5: a signed checkpoint of the head.
    let key = SigningKey::from_bytes(&[0x42; 32]);
    let origin = signed::origin(DEPLOYMENT, TENANT);
    let started = Instant::now();
    let checkpoint = signed::sign_head(store, TENANT, &origin, &key, BASE_AT + n as i64)
        .await?
        .ok_or("sign_head signed nothing")?;
    let sign_head = started.elapsed();
    let opened = signed::open(
        &checkpoint.note,
        &[signed::verifier_key(&origin, &key)],
        Some(&origin),
    )?;
    if (opened.size, opened.root) != (n, head.root) {
        return Err("the signed checkpoint is not of the head".into());
    }

    // 6: the same entries through group commit, from concurrent writers.
    let (grouped, grouped_batches) = group_appends(store, events).await?;

    Ok(Report {
        grouped,
        grouped_batches,
        entries,
        root: head.root,
        appends: Series::new(appends),
        raw: Series::new(raw),
        batches: Series::new(batches),
        inclusion: Series::new(inclusion),
        consistency: Series::new(consistency),
        inclusion_hashes: inclusion_hashes as f64 / PROOFS as f64,
        consistency_hashes: consistency_hashes as f64 / PROOFS as f64,
        stored_hashes,
        sign_head,
        checkpoint_bytes: checkpoint.note.len(),
    })
}

/// The same work without a database: building the tree from the entries,
/// the same proofs from it, and signing a checkpoint.
struct Memory {
    leaves: u64,
    build: Duration,
    inclusion: Series,
    consistency: Series,
    sign: Series,
}

fn in_memory(entries: &[AuditEntry]) -> Result<Memory> {
    let n = entries.len() as u64;
    let started = Instant::now();
    let mut tree = TreeBuilder::new();
    for entry in entries {
        tree.push(entry_leaf_hash(entry));
    }
    let build = started.elapsed();

    let (indexes, pairs) = proof_targets(n);
    let mut inclusion = Vec::with_capacity(PROOFS);
    for &index in &indexes {
        let started = Instant::now();
        let proof = tree.inclusion_proof(index, n);
        inclusion.push(started.elapsed());
        proof.ok_or("no in-memory inclusion proof")?;
    }
    let mut consistency = Vec::with_capacity(PROOFS);
    for &(from, to) in &pairs {
        let started = Instant::now();
        let proof = tree.consistency_proof(from, to);
        consistency.push(started.elapsed());
        proof.ok_or("no in-memory consistency proof")?;
    }

    let key = SigningKey::from_bytes(&[0x42; 32]);
    let origin = signed::origin(DEPLOYMENT, TENANT);
    let root = tree.root();
    let mut sign = Vec::with_capacity(SIGNS);
    for _ in 0..SIGNS {
        let started = Instant::now();
        let note = signed::sign(&origin, n, root, &key)?;
        sign.push(started.elapsed());
        std::hint::black_box(note);
    }
    Ok(Memory {
        leaves: n,
        build,
        inclusion: Series::new(inclusion),
        consistency: Series::new(consistency),
        sign: Series::new(sign),
    })
}

// ---------------------------------------------------------------------------
// Printing.

enum Outcome {
    Skipped,
    Ran(Result<Box<Report>>),
}

fn print_reports(n: u64, sqlite: &Outcome, postgres: &Outcome) {
    type Cell = fn(u64, &Report) -> String;
    let rows: [(&str, Cell); 19] = [
        ("appends, group commit, 64 writers (entries/s)", |n, r| {
            rate(per_sec(n, r.grouped))
        }),
        ("  commits (SQLite batches)", |n, r| {
            if r.grouped_batches == 0 {
                "one per append".to_string()
            } else {
                format!(
                    "{} ({:.0} entries each)",
                    thousands(r.grouped_batches),
                    n as f64 / r.grouped_batches as f64
                )
            }
        }),
        ("appends, 1 tx each (entries/s)", |_, r| {
            rate(r.appends.per_sec())
        }),
        ("  per append p50 / p99", |_, r| p50_p99(&r.appends)),
        ("raw insert ceiling, 1 tx each (rows/s)", |_, r| {
            rate(r.raw.per_sec())
        }),
        ("  per insert p50 / p99", |_, r| p50_p99(&r.raw)),
        ("appends / raw", |_, r| {
            format!("{:.2}", r.appends.per_sec() / r.raw.per_sec())
        }),
        ("Merkle integration, 1,000/batch (leaves/s)", |n, r| {
            rate(per_sec(n, r.batches.total()))
        }),
        ("  per batch mean / max", |_, r| {
            format!("{} / {}", dur(r.batches.mean()), dur(r.batches.max()))
        }),
        ("appends + integration (entries/s)", |n, r| {
            rate(per_sec(n, r.appends.total() + r.batches.total()))
        }),
        ("  stored hashes per entry", |n, r| {
            format!("{:.2}", r.stored_hashes as f64 / n as f64)
        }),
        ("inclusion proofs, stored (proofs/s)", |_, r| {
            rate(r.inclusion.per_sec())
        }),
        ("  per proof p50 / p99", |_, r| p50_p99(&r.inclusion)),
        ("  hashes per proof (mean)", |_, r| {
            format!("{:.1}", r.inclusion_hashes)
        }),
        ("consistency proofs, stored (proofs/s)", |_, r| {
            rate(r.consistency.per_sec())
        }),
        ("  per proof p50 / p99", |_, r| p50_p99(&r.consistency)),
        ("  hashes per proof (mean)", |_, r| {
            format!("{:.1}", r.consistency_hashes)
        }),
        ("sign_head: checkpoint of the head, once", |_, r| {
            dur(r.sign_head)
        }),
        ("  signed note size", |_, r| {
            format!("{} bytes", r.checkpoint_bytes)
        }),
    ];
    let cell = |outcome: &Outcome, f: Cell| match outcome {
        Outcome::Skipped => "skipped".to_string(),
        Outcome::Ran(Err(_)) => "failed".to_string(),
        Outcome::Ran(Ok(r)) => f(n, r),
    };
    let mut table = Table::new(["", "SQLite (temp file)", "PostgreSQL"]);
    for (label, f) in rows {
        table.row([label.to_string(), cell(sqlite, f), cell(postgres, f)]);
    }
    println!(
        "\n{} entries, tenant `{TENANT}` (rates are over the summed time of the operations named)\n",
        thousands(n)
    );
    print!("{}", table.render());
}

fn print_memory(m: &Memory) {
    let mut table = Table::new(["in memory, no database (TreeBuilder)", "per second", "time"]);
    table.row([
        format!("build tree from {} entries (leaves/s)", thousands(m.leaves)),
        rate(per_sec(m.leaves, m.build)),
        dur(m.build),
    ]);
    table.row([
        "inclusion proofs (proofs/s, p50 / p99)".to_string(),
        rate(m.inclusion.per_sec()),
        p50_p99(&m.inclusion),
    ]);
    table.row([
        "consistency proofs (proofs/s, p50 / p99)".to_string(),
        rate(m.consistency.per_sec()),
        p50_p99(&m.consistency),
    ]);
    table.row([
        format!("sign checkpoint note (signs/s, mean of {SIGNS})"),
        rate(m.sign.per_sec()),
        dur(m.sign.mean()),
    ]);
    println!();
    print!("{}", table.render());
}

struct Table {
    rows: Vec<[String; 3]>,
}

impl Table {
    fn new(header: [&str; 3]) -> Table {
        Table {
            rows: vec![header.map(str::to_string)],
        }
    }

    fn row(&mut self, cells: [String; 3]) {
        self.rows.push(cells);
    }

    fn render(&self) -> String {
        let mut widths = [0_usize; 3];
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let rule: String = widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-");
        let mut out = String::new();
        for (i, row) in self.rows.iter().enumerate() {
            let [label, a, b] = row;
            let _ = writeln!(
                out,
                "{label:<w0$} | {a:>w1$} | {b:>w2$}",
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
            );
            if i == 0 {
                let _ = writeln!(out, "{rule}");
            }
        }
        out
    }
}

fn p50_p99(s: &Series) -> String {
    format!("{} / {}", dur(s.pct(50)), dur(s.pct(99)))
}

fn rate(per_sec: f64) -> String {
    if per_sec >= 100.0 {
        thousands(per_sec.round() as u64)
    } else {
        format!("{per_sec:.1}")
    }
}

fn dur(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
