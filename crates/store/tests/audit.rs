#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The audit chain against real databases: SQLite always, PostgreSQL when
//! `LADDER_TEST_POSTGRES_URL` is set (each test in a fresh schema).
//!
//! Tampering is done the way an intruder with database access would: with
//! plain SQL, after dropping the append-only triggers.

use ed25519_dalek::SigningKey;
use ladder_store::audit::{
    self, AuditEntry, AuditEvent, ChainBreak, ExportError, GENESIS_HASH, VerifyError,
};
use ladder_store::{Dialect, StoreError};
use serde_json::json;

mod support;

use support::{Db, OTHER, TENANT};

/// What these tests do with a database: append, verify, and tamper the
/// way an intruder with database access would.
trait AuditDb {
    async fn sql(&self, sql: &'static str);
    async fn drop_triggers(&self);
    async fn append_one(&self, tenant: &str, at: i64, event: &AuditEvent) -> AuditEntry;
    async fn append_n(&self, tenant: &str, n: i64, tag: &str) -> Vec<AuditEntry>;
    async fn verify(&self) -> Result<audit::VerifyReport, ChainBreak>;
}

impl AuditDb for Db {
    /// Runs tampering SQL with the pool (no transaction is open).
    async fn sql(&self, sql: &'static str) {
        sqlx::raw_sql(sql).execute(self.store.pool()).await.unwrap();
    }

    /// What an intruder does first: drop the append-only triggers.
    async fn drop_triggers(&self) {
        match self.store.dialect() {
            Dialect::Sqlite => {
                self.sql(
                    "DROP TRIGGER audit_entries_no_update; DROP TRIGGER audit_entries_no_delete; \
                     DROP TRIGGER audit_checkpoints_no_update; DROP TRIGGER audit_checkpoints_no_delete;",
                )
                .await
            }
            Dialect::Postgres => {
                self.sql(
                    "DROP TRIGGER audit_entries_append_only ON audit_entries; \
                     DROP TRIGGER audit_entries_no_truncate ON audit_entries; \
                     DROP TRIGGER audit_checkpoints_append_only ON audit_checkpoints; \
                     DROP TRIGGER audit_checkpoints_no_truncate ON audit_checkpoints;",
                )
                .await
            }
        }
    }

    async fn append_one(&self, tenant: &str, at: i64, event: &AuditEvent) -> AuditEntry {
        let mut tx = self.store.begin().await.unwrap();
        let entry = audit::append(&mut tx, self.store.dialect(), tenant, at, event)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        entry
    }

    /// Appends `n` events, one transaction each.
    async fn append_n(&self, tenant: &str, n: i64, tag: &str) -> Vec<AuditEntry> {
        let mut out = Vec::new();
        for i in 0..n {
            out.push(
                self.append_one(tenant, 1_700_000_000 + i, &event(tag, i))
                    .await,
            );
        }
        out
    }

    async fn verify(&self) -> Result<audit::VerifyReport, ChainBreak> {
        match audit::verify_store(&self.store, TENANT).await {
            Ok(report) => Ok(report),
            Err(VerifyError::Chain(b)) => Err(b),
            Err(VerifyError::Store(e)) => panic!("store error while verifying: {e}"),
        }
    }
}

fn event(tag: &str, i: i64) -> AuditEvent {
    AuditEvent {
        kind: "decision".into(),
        actor: "api-key:k1".into(),
        subject: Some(format!("msg-{tag}-{i}")),
        details: json!({ "route": "rcs", "n": i, "recipient": "psn:4f2a", "tag": tag }),
    }
}

fn key(byte: u8) -> SigningKey {
    SigningKey::from_bytes(&[byte; 32])
}

fn hex_key(k: &SigningKey) -> String {
    let bytes = k.verifying_key().to_bytes();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Each suite runs once on SQLite and once on PostgreSQL (if configured).
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let db = super::Db::sqlite().await;
                super::$name(&db).await;
                db.cleanup().await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(db) = super::Db::postgres("audit_test").await else {
                    return;
                };
                super::$name(&db).await;
                db.cleanup().await;
            }
        }
    )*};
}

on_both!(
    appends_chain_page_and_checkpoint,
    rolled_back_appends_leave_no_gap,
    concurrent_appends_stay_linear,
    entries_and_checkpoints_are_append_only,
    fractional_details_are_refused,
    altered_details_are_named,
    deleted_entries_are_named,
    reordered_entries_are_named,
    forged_entries_are_named,
    rewritten_history_is_caught_by_checkpoints,
    export_round_trips_and_verifies,
);

async fn appends_chain_page_and_checkpoint(db: &Db) {
    let store = &db.store;
    assert_eq!(db.verify().await.unwrap().entries, 0);
    assert_eq!(
        audit::entries_since_checkpoint(store, TENANT)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        audit::checkpoint(store, TENANT, 1, "audit-1", &key(1))
            .await
            .unwrap(),
        None
    );

    // Two tenants interleaved: each has its own chain from 1.
    let mut a = Vec::new();
    for i in 0..25 {
        a.push(
            db.append_one(TENANT, 1_700_000_000 + i, &event("a", i))
                .await,
        );
        if i % 3 == 0 {
            db.append_one(OTHER, 1_700_000_000 + i, &event("b", i))
                .await;
        }
    }
    assert_eq!(a[0].seq, 1);
    assert_eq!(a[0].prev_hash, GENESIS_HASH);
    for pair in a.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1);
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    // Several appends in one transaction.
    let mut tx = store.begin().await.unwrap();
    for i in 25..28 {
        let e = audit::append(
            &mut tx,
            store.dialect(),
            TENANT,
            1_700_000_100,
            &event("a", i),
        )
        .await
        .unwrap();
        a.push(e);
    }
    tx.commit().await.unwrap();
    assert_eq!(a.last().unwrap().seq, 28);

    let first = audit::page(store, TENANT, 0, 10).await.unwrap();
    assert_eq!(first, a[..10].to_vec());
    let tail = audit::page(store, TENANT, 20, 100).await.unwrap();
    assert_eq!(tail, a[20..].to_vec());
    assert!(audit::page(store, TENANT, 28, 10).await.unwrap().is_empty());
    assert!(audit::page(store, TENANT, 0, 0).await.unwrap().is_empty());
    let other = audit::page(store, OTHER, 0, 100).await.unwrap();
    assert_eq!(other.len(), 9);
    assert!(other.iter().all(|e| e.tenant_id == OTHER));

    let report = db.verify().await.unwrap();
    assert_eq!(report.entries, 28);
    assert_eq!(report.checkpoints, 0);
    assert_eq!(report.head, Some((28, a[27].hash.clone())));
    assert_eq!(audit::verify_store(store, OTHER).await.unwrap().entries, 9);

    // Checkpoints.
    let k = key(1);
    assert_eq!(
        audit::entries_since_checkpoint(store, TENANT)
            .await
            .unwrap(),
        28
    );
    let cp = audit::checkpoint(store, TENANT, 1_700_000_200, "audit-1", &k)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((cp.seq, cp.head_hash.as_str()), (28, a[27].hash.as_str()));
    assert_eq!(cp.public_key, hex_key(&k));
    assert_eq!(
        audit::checkpoint(store, TENANT, 1_700_000_201, "audit-1", &k)
            .await
            .unwrap(),
        None,
        "the head is already checkpointed"
    );
    assert_eq!(
        audit::entries_since_checkpoint(store, TENANT)
            .await
            .unwrap(),
        0
    );
    db.append_n(TENANT, 3, "c").await;
    assert_eq!(
        audit::entries_since_checkpoint(store, TENANT)
            .await
            .unwrap(),
        3
    );
    let cp2 = audit::checkpoint(store, TENANT, 1_700_000_300, "audit-1", &k)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cp2.seq, 31);
    assert_eq!(
        audit::checkpoints(store, TENANT).await.unwrap(),
        vec![cp.clone(), cp2.clone()]
    );
    assert_eq!(
        audit::latest_checkpoint(store, TENANT).await.unwrap(),
        Some(cp2)
    );
    assert_eq!(audit::latest_checkpoint(store, OTHER).await.unwrap(), None);

    let report = db.verify().await.unwrap();
    assert_eq!((report.entries, report.checkpoints), (31, 2));
    let trusted = vec![hex_key(&k)];
    audit::verify_store_with_keys(store, TENANT, Some(&trusted))
        .await
        .unwrap();
    let wrong = vec![hex_key(&key(2))];
    match audit::verify_store_with_keys(store, TENANT, Some(&wrong)).await {
        Err(VerifyError::Chain(ChainBreak::UntrustedKey { seq: 28, key_id })) => {
            assert_eq!(key_id, "audit-1")
        }
        other => panic!("expected an untrusted key at 28, got {other:?}"),
    }
}

async fn rolled_back_appends_leave_no_gap(db: &Db) {
    let store = &db.store;
    // Rolled back before the tenant ever had a head row, and after.
    let mut tx = store.begin().await.unwrap();
    audit::append(&mut tx, store.dialect(), TENANT, 1, &event("x", 0))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    db.append_n(TENANT, 2, "a").await;
    let mut tx = store.begin().await.unwrap();
    audit::append(&mut tx, store.dialect(), TENANT, 1, &event("x", 1))
        .await
        .unwrap();
    drop(tx);
    let e = db.append_one(TENANT, 5, &event("a", 2)).await;
    assert_eq!(e.seq, 3);
    assert_eq!(db.verify().await.unwrap().entries, 3);
}

async fn concurrent_appends_stay_linear(db: &Db) {
    let mut tasks = Vec::new();
    for t in 0..6 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..8 {
                let mut tx = store.begin().await.unwrap();
                audit::append(
                    &mut tx,
                    store.dialect(),
                    TENANT,
                    10,
                    &event(&format!("t{t}"), i),
                )
                .await
                .unwrap();
                tokio::task::yield_now().await;
                tx.commit().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let report = db.verify().await.unwrap();
    assert_eq!(report.entries, 48);
}

async fn entries_and_checkpoints_are_append_only(db: &Db) {
    db.append_n(TENANT, 3, "a").await;
    audit::checkpoint(&db.store, TENANT, 5, "audit-1", &key(1))
        .await
        .unwrap()
        .unwrap();
    for sql in [
        "UPDATE audit_entries SET actor = 'cli' WHERE seq = 2",
        "DELETE FROM audit_entries WHERE seq = 3",
        "UPDATE audit_checkpoints SET at = 6",
        "DELETE FROM audit_checkpoints",
    ] {
        let err = sqlx::raw_sql(sql)
            .execute(db.store.pool())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    if db.store.dialect() == Dialect::Postgres {
        let err = sqlx::raw_sql("TRUNCATE audit_entries")
            .execute(db.store.pool())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }
    assert_eq!(db.verify().await.unwrap().entries, 3);
}

async fn fractional_details_are_refused(db: &Db) {
    let store = &db.store;
    let mut tx = store.begin().await.unwrap();
    let mut ev = event("a", 0);
    ev.details = json!({ "score": 0.5 });
    let err = audit::append(&mut tx, store.dialect(), TENANT, 1, &ev)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }));
    assert!(err.to_string().contains("/score"), "{err}");
    // The transaction is still usable.
    audit::append(&mut tx, store.dialect(), TENANT, 1, &event("a", 1))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(db.verify().await.unwrap().entries, 1);
}

async fn altered_details_are_named(db: &Db) {
    db.append_n(TENANT, 8, "a").await;
    db.drop_triggers().await;
    db.sql(r#"UPDATE audit_entries SET details = '{"route":"sms"}' WHERE seq = 5"#)
        .await;
    assert_eq!(db.verify().await, Err(ChainBreak::EntryHash { seq: 5 }));
    db.sql("UPDATE audit_entries SET details = 'not json' WHERE seq = 3")
        .await;
    assert_eq!(db.verify().await, Err(ChainBreak::EntryHash { seq: 3 }));
    db.sql("UPDATE audit_entries SET at = at + 1 WHERE seq = 2")
        .await;
    assert_eq!(db.verify().await, Err(ChainBreak::EntryHash { seq: 2 }));
    // page() reports unparsable rows as corrupt, naming the entry.
    let err = audit::page(&db.store, TENANT, 0, 10).await.unwrap_err();
    assert!(err.to_string().contains("entry 3"), "{err}");
}

async fn deleted_entries_are_named(db: &Db) {
    db.append_n(TENANT, 8, "a").await;
    db.drop_triggers().await;
    db.sql("DELETE FROM audit_entries WHERE seq = 8").await;
    assert_eq!(
        db.verify().await,
        Err(ChainBreak::HeadMismatch {
            head_seq: 8,
            len: 7
        })
    );
    db.sql("DELETE FROM audit_entries WHERE seq = 4").await;
    assert_eq!(
        db.verify().await,
        Err(ChainBreak::Gap {
            expected: 4,
            found: 5
        })
    );
    // Closing the gap by renumbering breaks the hash of the moved entry.
    db.sql("UPDATE audit_entries SET seq = seq - 1 WHERE seq > 4")
        .await;
    assert_eq!(db.verify().await, Err(ChainBreak::EntryHash { seq: 4 }));
}

async fn reordered_entries_are_named(db: &Db) {
    db.append_n(TENANT, 8, "a").await;
    db.drop_triggers().await;
    db.sql("UPDATE audit_entries SET seq = -1 WHERE seq = 3")
        .await;
    db.sql("UPDATE audit_entries SET seq = 3 WHERE seq = 6")
        .await;
    db.sql("UPDATE audit_entries SET seq = 6 WHERE seq = -1")
        .await;
    assert_eq!(db.verify().await, Err(ChainBreak::EntryHash { seq: 3 }));
}

async fn forged_entries_are_named(db: &Db) {
    let entries = db.append_n(TENANT, 8, "a").await;
    let store = &db.store;
    db.drop_triggers().await;
    let insert = |e: AuditEntry| async move {
        sqlx::query(
            "INSERT INTO audit_entries \
             (tenant_id, seq, at, kind, actor, subject, details, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(e.tenant_id)
        .bind(e.seq)
        .bind(e.at)
        .bind(e.kind)
        .bind(e.actor)
        .bind(e.subject)
        .bind(e.details.to_string())
        .bind(e.prev_hash)
        .bind(e.hash)
        .execute(store.pool())
        .await
        .unwrap();
    };
    let mut forged = AuditEntry {
        tenant_id: TENANT.into(),
        seq: 9,
        at: 1_700_000_009,
        kind: "override_set".into(),
        actor: "cli".into(),
        subject: Some("ovr-1".into()),
        details: json!({ "rule": "rcs off" }),
        prev_hash: "ab".repeat(32),
        hash: String::new(),
    };
    // A made-up hash.
    forged.hash = "cd".repeat(32);
    insert(forged.clone()).await;
    assert_eq!(db.verify().await, Err(ChainBreak::EntryHash { seq: 9 }));
    // A correct hash over a made-up link.
    db.sql("DELETE FROM audit_entries WHERE seq = 9").await;
    forged.hash = audit::entry_hash(&forged);
    insert(forged.clone()).await;
    assert_eq!(db.verify().await, Err(ChainBreak::Link { seq: 9 }));
    // A perfectly chained forgery, behind the head's back.
    db.sql("DELETE FROM audit_entries WHERE seq = 9").await;
    forged.prev_hash = entries[7].hash.clone();
    forged.hash = audit::entry_hash(&forged);
    insert(forged.clone()).await;
    assert_eq!(
        db.verify().await,
        Err(ChainBreak::HeadMismatch {
            head_seq: 8,
            len: 9
        })
    );
    // A forgery in the middle, shifting the tail up.
    db.sql("DELETE FROM audit_entries WHERE seq = 9").await;
    db.sql("UPDATE audit_entries SET seq = seq + 100 WHERE seq > 4")
        .await;
    db.sql("UPDATE audit_entries SET seq = seq - 99 WHERE seq > 100")
        .await;
    forged.seq = 5;
    forged.prev_hash = entries[3].hash.clone();
    forged.hash = audit::entry_hash(&forged);
    insert(forged).await;
    assert_eq!(db.verify().await, Err(ChainBreak::EntryHash { seq: 6 }));
}

async fn rewritten_history_is_caught_by_checkpoints(db: &Db) {
    let store = &db.store;
    let k = key(1);
    let entries = db.append_n(TENANT, 10, "a").await;
    audit::checkpoint(store, TENANT, 1_700_000_100, "audit-1", &k)
        .await
        .unwrap()
        .unwrap();
    db.append_n(TENANT, 2, "b").await;
    db.drop_triggers().await;

    // Truncate to 5 and move the head back: consistent, except for the
    // checkpoint at 10.
    db.sql("DELETE FROM audit_entries WHERE seq > 5").await;
    sqlx::query("UPDATE audit_heads SET seq = 5, hash = $1 WHERE tenant_id = $2")
        .bind(entries[4].hash.as_str())
        .bind(TENANT)
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(
        db.verify().await,
        Err(ChainBreak::CheckpointBeyondLog { seq: 10, len: 5 })
    );
    assert_eq!(
        audit::entries_since_checkpoint(store, TENANT)
            .await
            .unwrap(),
        0
    );

    // Regrow a different history through the ordinary code path.
    db.append_n(TENANT, 5, "forged").await;
    assert_eq!(
        db.verify().await,
        Err(ChainBreak::CheckpointMismatch { seq: 10 })
    );
    // checkpoint() refuses to vouch for a tail that does not continue the
    // last checkpoint.
    db.append_n(TENANT, 1, "forged-2").await;
    let err = audit::checkpoint(store, TENANT, 1_700_000_200, "audit-1", &k)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("entry 11"), "{err}");

    // A checkpoint whose signature was altered.
    db.sql("UPDATE audit_checkpoints SET at = at + 1").await;
    assert_eq!(
        db.verify().await,
        Err(ChainBreak::CheckpointSignature { seq: 10 })
    );
}

async fn export_round_trips_and_verifies(db: &Db) {
    let store = &db.store;
    let k = key(3);
    db.append_n(TENANT, 7, "a").await;
    audit::checkpoint(store, TENANT, 1_700_000_100, "audit-3", &k)
        .await
        .unwrap()
        .unwrap();
    db.append_n(TENANT, 2, "b").await;
    let entries = audit::page(store, TENANT, 0, 1000).await.unwrap();
    let cps = audit::checkpoints(store, TENANT).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("export");
    audit::write_export(&out, &entries, &cps).unwrap();
    let (read, read_cps) = audit::read_export(&out).unwrap();
    assert_eq!(read, entries);
    assert_eq!(read_cps, cps);
    let trusted = vec![hex_key(&k)];
    let report = audit::verify(read, &read_cps, Some(&trusted)).unwrap();
    assert_eq!((report.entries, report.checkpoints), (9, 1));

    // Each line is one entry.
    let text = std::fs::read_to_string(out.join(audit::ENTRIES_FILE)).unwrap();
    assert_eq!(text.lines().count(), 9);

    // An edited line: still well-formed, caught by the chain.
    let edited = text.replacen("\"rcs\"", "\"sms\"", 1);
    std::fs::write(out.join(audit::ENTRIES_FILE), &edited).unwrap();
    let (read, read_cps) = audit::read_export(&out).unwrap();
    assert_eq!(
        audit::verify(read, &read_cps, Some(&trusted)),
        Err(ChainBreak::EntryHash { seq: 1 })
    );

    // A malformed line is named by file and line.
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = "{\"tenant_id\": \"tenant-a\", \"seq\": 3";
    std::fs::write(out.join(audit::ENTRIES_FILE), lines.join("\n")).unwrap();
    let err = audit::read_export(&out).unwrap_err();
    assert!(matches!(err, ExportError::Line { line: 3, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("entries.jsonl:3:"), "{msg}");

    // A missing checkpoints file is an error, not an empty list.
    std::fs::write(out.join(audit::ENTRIES_FILE), &text).unwrap();
    std::fs::remove_file(out.join(audit::CHECKPOINTS_FILE)).unwrap();
    let err = audit::read_export(&out).unwrap_err();
    assert!(matches!(err, ExportError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("checkpoints.json"), "{err}");
}
