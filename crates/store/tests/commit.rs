#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Group commit against real databases: concurrent units share commits on
//! SQLite, each answered only after its batch is durable; a failing unit
//! loses only its own writes; the audit chain stays linear across a batch;
//! PostgreSQL runs each unit in its own transaction.

use ladder_store::audit::{self, AuditEvent};
use ladder_store::{Dialect, GroupCommit, Store, StoreError};
use serde_json::json;

mod support;

use support::{Db, TENANT};

fn event(n: usize) -> AuditEvent {
    AuditEvent {
        kind: "decision".into(),
        actor: "api-key:k1".into(),
        subject: Some(format!("msg-{n}")),
        details: json!({ "n": n }),
    }
}

/// Appends audit entry `n` through the committer; unit `n` fails after
/// its append when `fail(n)`.
async fn append(
    commit: &GroupCommit,
    dialect: Dialect,
    n: usize,
    fail: bool,
) -> Result<i64, StoreError> {
    commit
        .run(move |tx| {
            Box::pin(async move {
                let entry = audit::append(tx, dialect, TENANT, 1_700_000_000, &event(n)).await?;
                if fail {
                    return Err(StoreError::CommitterStopped);
                }
                Ok(entry.seq)
            })
        })
        .await
}

async fn entries(store: &Store) -> Vec<String> {
    let rows: Vec<(Option<String>,)> =
        sqlx::query_as("SELECT subject FROM audit_entries WHERE tenant_id = $1 ORDER BY seq")
            .bind(TENANT)
            .fetch_all(store.pool())
            .await
            .unwrap();
    rows.into_iter().map(|r| r.0.unwrap()).collect()
}

/// 200 concurrent units, every seventh failing: the others are all kept,
/// in a linear chain that verifies, the failing ones leave nothing, and on
/// SQLite they shared commits.
async fn concurrent_units_share_commits_and_failures_stay_their_own(db: Db) {
    let dialect = db.store.dialect();
    let commit = GroupCommit::start(db.store.clone());
    let mut tasks = Vec::new();
    for n in 0..200 {
        let commit = commit.clone();
        tasks.push(tokio::spawn(async move {
            (n, append(&commit, dialect, n, n % 7 == 0).await)
        }));
    }
    let mut kept = Vec::new();
    for t in tasks {
        let (n, result) = t.await.unwrap();
        match result {
            Ok(seq) => kept.push((seq, n)),
            Err(e) => {
                assert_eq!(n % 7, 0, "unit {n} failed: {e}");
                assert!(matches!(e, StoreError::CommitterStopped), "{e}");
            }
        }
    }
    assert_eq!(kept.len(), 200 - 29);
    // Every answered seq is the one stored for that unit: what a caller was
    // told is what is on disk.
    kept.sort();
    let stored = entries(&db.store).await;
    assert_eq!(stored.len(), kept.len());
    for (i, (seq, n)) in kept.iter().enumerate() {
        assert_eq!(*seq, i64::try_from(i).unwrap() + 1);
        assert_eq!(stored[i], format!("msg-{n}"));
    }
    let report = audit::verify_store(&db.store, TENANT).await.unwrap();
    assert_eq!(report.entries, 171);
    let stats = commit.stats();
    match dialect {
        Dialect::Sqlite => {
            assert_eq!(stats.units, 200);
            assert!(
                stats.batches < 200,
                "no two units shared a commit: {stats:?}"
            );
        }
        Dialect::Postgres => assert_eq!(stats.batches, 0),
    }
    drop(commit);
    db.cleanup().await;
}

#[tokio::test]
async fn group_commit_sqlite() {
    concurrent_units_share_commits_and_failures_stay_their_own(Db::sqlite().await).await;
}

#[tokio::test]
async fn group_commit_postgres() {
    if let Some(db) = Db::postgres("commit").await {
        concurrent_units_share_commits_and_failures_stay_their_own(db).await;
    }
}

/// An answered unit is on disk: another connection to the same file (a
/// second process would see the same) reads it right after the answer.
#[tokio::test]
async fn an_answer_means_durable_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ladder.db").display());
    let store = Store::open(&url).await.unwrap();
    sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, 'Acme', 0)")
        .bind(TENANT)
        .execute(store.pool())
        .await
        .unwrap();
    let commit = GroupCommit::start(store.clone());
    let observer = Store::open(&url).await.unwrap();
    for n in 0..20 {
        let seq = append(&commit, Dialect::Sqlite, n, false).await.unwrap();
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM audit_entries WHERE tenant_id = $1")
                .bind(TENANT)
                .fetch_one(observer.pool())
                .await
                .unwrap();
        assert_eq!(count, seq, "answered seq {seq} but {count} entries on disk");
    }
}

/// A unit that panics costs its own batch, not the committer: the next
/// unit is committed as usual.
#[tokio::test]
async fn a_panicking_unit_does_not_stop_the_committer() {
    let db = Db::sqlite().await;
    let commit = GroupCommit::with_options(db.store.clone(), 1, None);
    let panicked: Result<(), StoreError> = commit
        .run(|_tx| Box::pin(async { panic!("a bug in one unit") }))
        .await;
    assert!(matches!(panicked, Err(StoreError::CommitterStopped)));
    let seq = append(&commit, Dialect::Sqlite, 1, false).await.unwrap();
    assert_eq!(seq, 1);
    assert_eq!(entries(&db.store).await, ["msg-1"]);
    drop(commit);
    db.cleanup().await;
}
