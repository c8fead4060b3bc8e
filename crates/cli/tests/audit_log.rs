//! The tamper-evident audit log end to end, on SQLite and PostgreSQL: a real
//! node writes entries and signs checkpoints; `ladder audit prove` and
//! `check-proof` show one decision is in the log; `ladder audit verify`
//! names where history was altered, deleted, reordered, inserted or
//! rewritten; `ladder audit witness` refuses a log rolled back or forked.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;

use ladder_store::audit::{self, AuditEntry};
use ladder_store::{Dialect, Store};
use serde_json::{Value, json};
use support::{ladder, pg_exec, pg_schema};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

struct Env {
    running: Option<ladder_server::Running>,
    config: ladder_server::Config,
    base: String,
    sender: String,
    admin: String,
    tenant: String,
    store_args: Vec<String>,
    dir: tempfile::TempDir,
    pg: Option<(String, String)>,
    client: reqwest::Client,
}

impl Env {
    async fn start(backend: Backend) -> Option<Env> {
        support::tls();
        let dir = tempfile::tempdir().unwrap();
        let mut config = ladder_server::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().join("data"),
            ..Default::default()
        };
        config.delivery.workers = 0;
        let mut store_args = vec![
            "--data-dir".to_string(),
            config.data_dir.display().to_string(),
        ];
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let prefix = format!("audit_log_{}", std::process::id());
                let (url, schema, scoped) = tokio::task::spawn_blocking(move || pg_schema(&prefix))
                    .await
                    .unwrap()?;
                config.database_url = Some(scoped.clone());
                store_args.extend(["--database".to_string(), scoped]);
                Some((url, schema))
            }
        };
        let running = ladder_server::start(config.clone()).await.unwrap();
        let demo = running.demo.as_ref().unwrap();
        let sender = demo.keys[0].token.clone();
        let admin = demo.keys[1].token.clone();
        let tenant = demo.tenant.id.clone();
        config.listen = running.addr;
        Some(Env {
            base: format!("http://{}", running.addr),
            running: Some(running),
            config,
            sender,
            admin,
            tenant,
            store_args,
            dir,
            pg,
            client: reqwest::Client::new(),
        })
    }

    fn store(&self) -> &Store {
        &self.running.as_ref().unwrap().state.store
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
        idem: Option<&str>,
    ) -> (u16, String) {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {key}"));
        if let Some(k) = idem {
            req = req.header("idempotency-key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Sends `n` messages (each audited), then signs checkpoints; returns the
    /// decision answers.
    async fn grow(&self, tag: &str, n: usize) -> Vec<Value> {
        let (_, r) = self
            .call(
                "POST",
                "/v1/recipients",
                &self.sender,
                Some(json!({ "external_id": format!("emp-{tag}"), "email": "e@example.com", "phone": "+15550103000" })),
                None,
            )
            .await;
        let r: Value = serde_json::from_str(&r).unwrap();
        let mut answers = Vec::new();
        for i in 0..n {
            let (st, a) = self
                .call(
                    "POST",
                    "/v1/messages",
                    &self.sender,
                    Some(json!({ "recipient": r["id"], "class": "transactional", "body": "x" })),
                    Some(&format!("{tag}-{i}")),
                )
                .await;
            assert_eq!(st, 202, "{a}");
            answers.push(serde_json::from_str(&a).unwrap());
        }
        let (st, c) = self
            .call("POST", "/v1/audit/checkpoints", &self.admin, None, None)
            .await;
        assert!(st == 201 || st == 200, "{c}");
        answers
    }

    async fn restart(&mut self) {
        self.running.take().unwrap().shutdown().await;
        let running = ladder_server::start(self.config.clone()).await.unwrap();
        self.base = format!("http://{}", running.addr);
        self.running = Some(running);
    }

    async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        if let Some((url, schema)) = self.pg.take() {
            tokio::task::spawn_blocking(move || {
                pg_exec(&url, &format!("DROP SCHEMA {schema} CASCADE"))
            })
            .await
            .unwrap();
        }
    }

    /// Runs the `ladder` binary with this node's store flags appended.
    async fn ladder(&self, args: &[&str], with_store: bool) -> (bool, String, String) {
        let mut cmd = ladder();
        cmd.args(args)
            .env_remove("LADDER_DATABASE_URL")
            .env_remove("LADDER_API_KEY");
        if with_store {
            cmd.args(&self.store_args);
        }
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn sql(&self, sql: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(self.store().pool())
            .await
            .unwrap();
    }

    /// What someone with write access to the database does first.
    async fn drop_guards(&self) {
        let drops = match self.store().dialect() {
            Dialect::Sqlite => vec![
                "DROP TRIGGER IF EXISTS audit_entries_no_update",
                "DROP TRIGGER IF EXISTS audit_entries_no_delete",
                "DROP TRIGGER IF EXISTS audit_checkpoints_no_delete",
                "DROP TRIGGER IF EXISTS merkle_hashes_no_update",
                "DROP TRIGGER IF EXISTS merkle_hashes_no_delete",
            ],
            Dialect::Postgres => vec![
                "DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries",
                "DROP TRIGGER IF EXISTS audit_checkpoints_append_only ON audit_checkpoints",
                "DROP TRIGGER IF EXISTS merkle_hashes_append_only ON merkle_hashes",
            ],
        };
        for d in drops {
            self.sql(d).await;
        }
    }

    async fn entries(&self) -> Vec<AuditEntry> {
        audit::page(self.store(), &self.tenant, 0, 100_000)
            .await
            .unwrap()
    }

    /// Rewrites history from entry `from` (1-based seq) on, keeping the hash
    /// chain intact: `change` edits entries, then every hash is recomputed
    /// and the chain head, the tree and all checkpoints are replaced, as a
    /// careful insider would.
    async fn rewrite(&self, keep: usize, change: impl Fn(&mut Vec<AuditEntry>)) {
        self.drop_guards().await;
        let mut entries = self.entries().await;
        entries.truncate(keep);
        change(&mut entries);
        let mut prev = audit::GENESIS_HASH.to_string();
        for (i, e) in entries.iter_mut().enumerate() {
            e.seq = i64::try_from(i).unwrap() + 1;
            e.prev_hash = prev.clone();
            e.hash = audit::entry_hash(e);
            prev = e.hash.clone();
        }
        let t = &self.tenant;
        for table in [
            "audit_entries",
            "audit_checkpoints",
            "merkle_hashes",
            "merkle_heads",
            "merkle_checkpoints",
            "audit_heads",
        ] {
            self.sql(&format!("DELETE FROM {table} WHERE tenant_id = '{t}'"))
                .await;
        }
        for e in &entries {
            sqlx::query("INSERT INTO audit_entries (tenant_id, seq, at, kind, actor, subject, details, prev_hash, hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)")
                .bind(t).bind(e.seq).bind(e.at).bind(&e.kind).bind(&e.actor).bind(&e.subject)
                .bind(String::from_utf8(audit::canonical_json(&e.details)).unwrap())
                .bind(&e.prev_hash).bind(&e.hash)
                .execute(self.store().pool()).await.unwrap();
        }
        sqlx::query("INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, $2, $3)")
            .bind(t)
            .bind(i64::try_from(entries.len()).unwrap())
            .bind(&prev)
            .execute(self.store().pool())
            .await
            .unwrap();
    }
}

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

both_backends!(
    a_decision_is_proved_in_the_log_offline,
    verify_names_altered_deleted_reordered_and_inserted_entries,
    verify_catches_history_rewritten_behind_a_signed_checkpoint,
    witness_refuses_a_rolled_back_or_forked_log,
);

async fn a_decision_is_proved_in_the_log_offline(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let answers = env.grow("p", 3).await;
    let index = answers[1]["audit_index"].as_u64().unwrap();
    let id = answers[1]["id"].as_str().unwrap();

    // The message names its entries; the decision is one of them.
    let (_, m) = env
        .call(
            "GET",
            &format!("/v1/messages/{id}"),
            &env.sender,
            None,
            None,
        )
        .await;
    let m: Value = serde_json::from_str(&m).unwrap();
    assert!(
        m["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["index"] == index && a["kind"] == "decision"),
        "{m:#}"
    );

    let (ok, key, err) = env
        .ladder(&["audit", "key", "--tenant", "acme"], true)
        .await;
    assert!(ok, "{err}");
    let key: Value = serde_json::from_str(&key).unwrap();
    let vkey = key["verifier_key"].as_str().unwrap();
    let (_, log) = env
        .call("GET", "/v1/audit/log", &env.sender, None, None)
        .await;
    let log: Value = serde_json::from_str(&log).unwrap();
    assert_eq!(
        log["verifier_key"], vkey,
        "the server publishes the key the CLI prints"
    );

    let (ok, bundle, err) = env
        .ladder(
            &[
                "audit",
                "prove",
                "--tenant",
                "acme",
                "--index",
                &index.to_string(),
            ],
            true,
        )
        .await;
    assert!(ok, "{err}");
    let proof_file = env.dir.path().join("proof.json");
    std::fs::write(&proof_file, &bundle).unwrap();
    let b: Value = serde_json::from_str(&bundle).unwrap();
    assert_eq!(b["entry"]["kind"], "decision");
    assert_eq!(b["entry"]["subject"], id);
    let path = proof_file.to_str().unwrap();
    let (ok, out, err) = env
        .ladder(&["audit", "check-proof", path, "--trust-vkey", vkey], false)
        .await;
    assert!(ok, "{err}");
    assert!(
        out.starts_with(&format!("ok: entry {index} (`decision`)")),
        "{out}"
    );

    // An altered entry, another key, a bent path: each refused, named.
    let altered = bundle.replacen("\"outcome\": \"deliver\"", "\"outcome\": \"block\"", 1);
    assert_ne!(altered, bundle);
    std::fs::write(&proof_file, &altered).unwrap();
    let (ok, _, err) = env
        .ladder(&["audit", "check-proof", path, "--trust-vkey", vkey], false)
        .await;
    assert!(!ok && err.contains("entry altered"), "{err}");
    std::fs::write(&proof_file, &bundle).unwrap();
    let other = ladder_store::audit::signed::verifier_key(
        b["origin"].as_str().unwrap(),
        &ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
    );
    let (ok, _, err) = env
        .ladder(
            &["audit", "check-proof", path, "--trust-vkey", &other],
            false,
        )
        .await;
    assert!(!ok && err.contains("checkpoint"), "{err}");

    // Consistency between the first and a later checkpoint, over HTTP.
    let first: Value = serde_json::from_str(
        &env.call("GET", "/v1/audit/log", &env.sender, None, None)
            .await
            .1,
    )
    .unwrap();
    let size1 = first["checkpoint"]["size"].as_u64().unwrap();
    env.grow("q", 2).await;
    let second: Value = serde_json::from_str(
        &env.call("GET", "/v1/audit/log", &env.sender, None, None)
            .await
            .1,
    )
    .unwrap();
    let size2 = second["checkpoint"]["size"].as_u64().unwrap();
    assert!(size2 > size1);
    let (st, c) = env
        .call(
            "GET",
            &format!("/v1/audit/proof/consistency?from={size1}&to={size2}"),
            &env.sender,
            None,
            None,
        )
        .await;
    assert_eq!(st, 200, "{c}");
    let c: Value = serde_json::from_str(&c).unwrap();
    let hex32 = |v: &Value| {
        <[u8; 32]>::try_from(hex::decode(v.as_str().unwrap()).unwrap().as_slice()).unwrap()
    };
    let proof: Vec<[u8; 32]> = c["proof"].as_array().unwrap().iter().map(hex32).collect();
    ladder_store::audit::merkle::verify_consistency(
        size1,
        hex32(&first["checkpoint"]["root"]),
        size2,
        hex32(&second["checkpoint"]["root"]),
        &proof,
    )
    .unwrap();
    let (st, _) = env
        .call(
            "GET",
            &format!("/v1/audit/proof/inclusion?index={size2}&size={size2}"),
            &env.sender,
            None,
            None,
        )
        .await;
    assert_eq!(st, 422, "an index beyond the tree is refused");
    env.stop().await;
}

async fn verify_names_altered_deleted_reordered_and_inserted_entries(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    env.grow("v", 4).await;
    let (ok, out, err) = env
        .ladder(&["audit", "verify", "--tenant", "acme"], true)
        .await;
    assert!(ok, "{err}");
    assert!(out.contains("signed checkpoints verify"), "{out}");
    env.drop_guards().await;
    let t = env.tenant.clone();
    let n = i64::try_from(env.entries().await.len()).unwrap();

    // Altered: one entry's details.
    env.sql(&format!("UPDATE audit_entries SET details = '{{\"outcome\":\"block\"}}' WHERE tenant_id = '{t}' AND seq = 5")).await;
    let (ok, _, err) = env
        .ladder(&["audit", "verify", "--tenant", "acme"], true)
        .await;
    assert!(!ok && err.contains("entry 5"), "{err}");

    // Reordered: two entries swap places.
    env.sql(&format!(
        "UPDATE audit_entries SET seq = -1 WHERE tenant_id = '{t}' AND seq = 3"
    ))
    .await;
    env.sql(&format!(
        "UPDATE audit_entries SET seq = 3 WHERE tenant_id = '{t}' AND seq = 4"
    ))
    .await;
    env.sql(&format!(
        "UPDATE audit_entries SET seq = 4 WHERE tenant_id = '{t}' AND seq = -1"
    ))
    .await;
    let (ok, _, err) = env
        .ladder(&["audit", "verify", "--tenant", "acme"], true)
        .await;
    assert!(!ok && err.contains("entry 3"), "{err}");

    // Deleted: entry 2 gone.
    env.sql(&format!(
        "DELETE FROM audit_entries WHERE tenant_id = '{t}' AND seq = 2"
    ))
    .await;
    let (ok, _, err) = env
        .ladder(&["audit", "verify", "--tenant", "acme"], true)
        .await;
    assert!(!ok && err.contains('2'), "{err}");

    // Inserted: an entry appended past the head.
    env.sql(&format!(
        "INSERT INTO audit_entries (tenant_id, seq, at, kind, actor, subject, details, prev_hash, hash) \
         VALUES ('{t}', {}, 0, 'decision', 'x', NULL, '{{}}', 'bogus', 'bogus')",
        n + 1
    ))
    .await;
    let (ok, _, err) = env
        .ladder(&["audit", "verify", "--tenant", "acme"], true)
        .await;
    assert!(!ok, "{err}");
    env.stop().await;
}

async fn verify_catches_history_rewritten_behind_a_signed_checkpoint(backend: Backend) {
    let Some(mut env) = Env::start(backend).await else {
        return;
    };
    env.grow("w", 3).await;
    let export = env.dir.path().join("before");
    let (ok, _, err) = env
        .ladder(
            &[
                "audit",
                "export",
                "--tenant",
                "acme",
                "--out",
                export.to_str().unwrap(),
            ],
            true,
        )
        .await;
    assert!(ok, "{err}");
    let signed_size = env.entries().await.len();
    // The insider rewrites a decision and rebuilds chain, tree and checkpoints
    // — but the checkpoints exported before still stand.
    env.rewrite(signed_size, |entries| {
        let d = entries.iter_mut().find(|e| e.kind == "decision").unwrap();
        d.details = json!({ "outcome": "block" });
    })
    .await;
    env.restart().await;
    env.call("POST", "/v1/audit/checkpoints", &env.admin, None, None)
        .await;
    let after = env.dir.path().join("after");
    let (ok, _, err) = env
        .ladder(
            &[
                "audit",
                "export",
                "--tenant",
                "acme",
                "--out",
                after.to_str().unwrap(),
            ],
            true,
        )
        .await;
    assert!(ok, "{err}");
    // The rewritten log is self-consistent…
    let (ok, key, _) = env
        .ladder(&["audit", "key", "--tenant", "acme"], true)
        .await;
    assert!(ok);
    let key: Value = serde_json::from_str(&key).unwrap();
    let vkey = key["verifier_key"].as_str().unwrap().to_string();
    let (ok, _, err) = env
        .ladder(
            &[
                "audit",
                "verify",
                after.to_str().unwrap(),
                "--trust-vkey",
                &vkey,
            ],
            false,
        )
        .await;
    assert!(ok, "{err}");
    // …but not with the checkpoints signed before: put them back beside it.
    std::fs::copy(before_file(&export), before_file(&after)).unwrap();
    let (ok, _, err) = env
        .ladder(
            &[
                "audit",
                "verify",
                after.to_str().unwrap(),
                "--trust-vkey",
                &vkey,
            ],
            false,
        )
        .await;
    assert!(!ok, "a rewrite behind a signed checkpoint must not verify");
    assert!(
        err.contains(&format!("signed checkpoint at size {signed_size}"))
            && err.contains("history rewritten"),
        "{err}"
    );
    env.stop().await;
}

fn before_file(dir: &Path) -> std::path::PathBuf {
    dir.join("tree-checkpoints.jsonl")
}

async fn witness_refuses_a_rolled_back_or_forked_log(backend: Backend) {
    let Some(mut env) = Env::start(backend).await else {
        return;
    };
    env.grow("x", 2).await;
    let state = env.dir.path().join("witness.json");
    let (ok, key, _) = env
        .ladder(&["audit", "key", "--tenant", "acme"], true)
        .await;
    assert!(ok);
    let key: Value = serde_json::from_str(&key).unwrap();
    let vkey = key["verifier_key"].as_str().unwrap().to_string();
    let witness = |env_base: String, sender: String| {
        let state = state.clone();
        let vkey = vkey.clone();
        async move {
            let out = tokio::task::spawn_blocking(move || {
                ladder()
                    .args([
                        "audit", "witness", "--url", &env_base, "--key", &sender, "--state",
                    ])
                    .arg(&state)
                    .args(["--trust-vkey", &vkey])
                    .output()
                    .unwrap()
            })
            .await
            .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let (ok, out, err) = witness(env.base.clone(), env.sender.clone()).await;
    assert!(ok && out.contains("witnessing"), "{out}{err}");
    env.grow("y", 2).await;
    let (ok, out, err) = witness(env.base.clone(), env.sender.clone()).await;
    assert!(ok && out.contains("grew consistently"), "{out}{err}");
    let witnessed = env.entries().await.len();

    // Fork: history rewritten from entry 3 on, then regrown past the
    // witnessed size and signed with the log's own key.
    env.rewrite(witnessed, |entries| {
        entries[2].details = json!({ "forged": true });
    })
    .await;
    env.restart().await;
    env.grow("z", 2).await;
    let (ok, out, err) = witness(env.base.clone(), env.sender.clone()).await;
    assert!(!ok, "a forked log must be refused: {out}");
    assert!(err.contains("REFUSED: FORK"), "{err}");

    // Rollback: the log cut back below what was witnessed.
    env.rewrite(3, |_| {}).await;
    env.restart().await;
    env.call("POST", "/v1/audit/checkpoints", &env.admin, None, None)
        .await;
    let (ok, _, err) = witness(env.base.clone(), env.sender.clone()).await;
    assert!(!ok && err.contains("REFUSED: ROLLBACK"), "{err}");
    env.stop().await;
}
