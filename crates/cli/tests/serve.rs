//! The `ladder` binary as operators run it: `serve` on the embedded
//! default, the canary that must never appear in plaintext, graceful
//! shutdown, and the operator commands (`tenant`, `override`, `keys`,
//! `audit`) on SQLite and, when `LADDER_TEST_POSTGRES_URL` is set,
//! PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

fn ladder() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ladder"))
}

struct Served {
    child: Child,
    base: String,
    sender: String,
    admin: String,
    stdout: BufReader<std::process::ChildStdout>,
    stderr_path: PathBuf,
}

fn serve(data: &Path, log: &Path) -> Served {
    let stderr = std::fs::File::create(log).unwrap();
    let mut child = ladder()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("LADDER_LOG", "debug")
        .env("LADDER_LOG_FORMAT", "json")
        .env_remove("LADDER_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut base, mut sender, mut admin) = (String::new(), String::new(), String::new());
    let mut banner = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "serve exited early:\n{banner}"
        );
        banner.push_str(&line);
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("ladder is serving on ") {
            base = rest.to_string();
        } else if let Some(k) = t.strip_prefix("sender ") {
            sender = k.trim().to_string();
        } else if let Some(k) = t.strip_prefix("admin ") {
            admin = k.trim().to_string();
        } else if t.starts_with("docs:") {
            break;
        }
    }
    assert!(banner.contains("database: sqlite://"), "{banner}");
    assert!(banner.contains("keyring:"), "{banner}");
    assert!(!sender.is_empty() && !admin.is_empty(), "{banner}");
    Served {
        child,
        base,
        sender,
        admin,
        stdout,
        stderr_path: log.to_path_buf(),
    }
}

fn call(
    method: &str,
    url: &str,
    key: &str,
    body: Option<Value>,
    idem: Option<&str>,
) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let mut req = client
            .request(method.parse().unwrap(), url)
            .header("authorization", format!("Bearer {key}"));
        if let Some(k) = idem {
            req = req.header("idempotency-key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    })
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn canary_body_never_lands_in_plaintext_and_serve_shuts_down_gracefully() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut s = serve(&data, &tmp.path().join("server.log"));
    let canary = format!("CANARY-{}-payroll-secret", std::process::id());
    let email = "canary.person@example.com";

    let (st, r) = call(
        "POST",
        &format!("{}/v1/recipients", s.base),
        &s.sender,
        Some(json!({ "external_id": "emp-canary", "email": email, "phone": "+15550001111" })),
        None,
    );
    assert_eq!(st, 201, "{r}");
    let rid = r["id"].as_str().unwrap().to_string();
    // A device with verified in-app E2EE, so payloads go to every container kind.
    let key = SigningKey::from_bytes(&[21; 32]);
    let (st, d) = call(
        "POST",
        &format!("{}/v1/recipients/{rid}/devices", s.base),
        &s.sender,
        Some(
            json!({ "identity_key": hex(&key.verifying_key().to_bytes()),
                     "labels": { "os": "ios", "client": "acme-app", "client_version": "5.3" } }),
        ),
        None,
    );
    assert_eq!(st, 201, "{d}");
    let device = d["id"].as_str().unwrap().to_string();
    let (_, c) = call(
        "POST",
        &format!("{}/v1/devices/{device}/challenge", s.base),
        &s.sender,
        Some(json!({})),
        None,
    );
    let report: ladder_core::handshake::DeviceReport = serde_json::from_value(json!({
        "device": device, "nonce": c["nonce"],
        "client": { "name": "acme-app", "version": "5.3", "policy_revision": 4 },
        "transports": { "in_app": { "reachable": true, "e2ee": "verified" }, "push": { "reachable": true, "e2ee": "absent" } },
    })).unwrap();
    let signed = ladder_core::handshake::sign(&key, report).unwrap();
    let (st, h) = call(
        "POST",
        &format!("{}/v1/devices/{device}/handshake", s.base),
        &s.sender,
        Some(serde_json::to_value(signed).unwrap()),
        None,
    );
    assert_eq!(st, 200, "{h}");

    let mut ids = Vec::new();
    for (i, class) in [
        "transactional",
        "payroll",
        "hr_case",
        "marketing",
        "support_escalation",
        "legal_notice",
    ]
    .iter()
    .enumerate()
    {
        let (st, a) = call(
            "POST",
            &format!("{}/v1/messages", s.base),
            &s.sender,
            Some(json!({ "recipient": rid, "class": class, "body": canary })),
            Some(&format!("canary-{i}")),
        );
        assert!([202, 409, 422].contains(&st), "{class}: {st} {a}");
        if let Some(id) = a["id"].as_str() {
            ids.push(id.to_string());
        }
    }
    // Bad input carrying the canary: the error must not echo it.
    let (st, e) = call(
        "POST",
        &format!("{}/v1/messages", s.base),
        &s.sender,
        Some(
            json!({ "recipient": rid, "class": "payroll", "body": canary, "thread": 5, "extra": canary }),
        ),
        Some("canary-bad"),
    );
    assert_eq!(st, 400, "{e}");
    assert!(!e.to_string().contains(&canary), "{e}");
    let (st, e) = call(
        "POST",
        &format!("{}/v1/messages", s.base),
        &s.sender,
        Some(json!({ "recipient": canary, "class": "payroll", "body": "x" })),
        Some("canary-bad-2"),
    );
    assert_eq!(st, 404, "{e}");
    // Let the workers deliver what was accepted.
    std::thread::sleep(Duration::from_millis(1500));
    let (_, m) = call(
        "GET",
        &format!("{}/v1/messages/{}", s.base, ids[0]),
        &s.sender,
        None,
        None,
    );
    assert_eq!(m["status"], "sent", "{m}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let metrics = rt.block_on(async {
        reqwest::get(format!("{}/metrics", s.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(metrics.contains("ladder_decisions_total"), "{metrics}");
    let (_, audit) = call(
        "GET",
        &format!("{}/v1/audit?limit=1000", s.base),
        &s.admin,
        None,
        None,
    );
    assert!(audit["entries"].as_array().unwrap().len() > 10);

    // Graceful shutdown on SIGTERM: exits 0 after finishing in-flight work.
    let pid = s.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = s.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut s.stdout, &mut rest).unwrap();
    assert!(rest.contains("shutting down"), "{rest}");

    let export = tmp.path().join("export");
    let out = ladder()
        .args(["audit", "export", "--tenant", "acme", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verify = ladder()
        .args(["audit", "verify"])
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // The scan: database (with WAL), keyring, logs, audit export, metrics.
    let mut scanned: Vec<(String, Vec<u8>)> = Vec::new();
    for f in files(&data).into_iter().chain(files(&export)) {
        scanned.push((f.display().to_string(), std::fs::read(&f).unwrap()));
    }
    scanned.push(("server log".into(), std::fs::read(&s.stderr_path).unwrap()));
    scanned.push(("metrics".into(), metrics.into_bytes()));
    scanned.push(("audit API".into(), audit.to_string().into_bytes()));
    assert!(
        scanned.iter().any(|(n, _)| n.ends_with("ladder.db")),
        "the database was scanned"
    );
    let log = &scanned.iter().find(|(n, _)| n == "server log").unwrap().1;
    assert!(contains(log, "ladder is serving"), "the log was captured");
    for (name, bytes) in &scanned {
        assert!(
            !contains(bytes, &canary),
            "the canary body is in plaintext in {name}"
        );
        assert!(
            !contains(bytes, email),
            "the raw recipient address is in plaintext in {name}"
        );
    }
    // The scanner finds what is there (so the absence above means something).
    assert!(contains(format!("xx{canary}yy").as_bytes(), &canary));
}

fn policy_for(tenant: &str, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/policies/acme.toml"
    ))
    .unwrap()
    .replace("tenant = \"acme\"", &format!("tenant = \"{tenant}\""));
    let p = dir.join(format!("{tenant}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

fn run(args: &[&str], store: &[String]) -> (bool, String, String) {
    let out = ladder()
        .args(args)
        .args(store)
        .env_remove("LADDER_DATABASE_URL")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn operator_commands(store: Vec<String>, tmp: &Path) {
    let policy = policy_for("globex", tmp);
    let (ok, out, err) = run(
        &[
            "tenant",
            "create",
            "--name",
            "globex",
            "--policy",
            policy.to_str().unwrap(),
        ],
        &store,
    );
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["tenant"]["name"], "globex");
    let scopes: Vec<&str> = created["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["scope"].as_str().unwrap())
        .collect();
    assert_eq!(scopes, ["sender", "admin"]);
    assert!(
        created["keys"][0]["token"]
            .as_str()
            .unwrap()
            .starts_with("ldr_sender_")
    );

    let (ok, _, err) = run(
        &[
            "tenant",
            "create",
            "--name",
            "globex",
            "--policy",
            policy.to_str().unwrap(),
        ],
        &store,
    );
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    let wrong = policy_for("initech", tmp);
    let (ok, _, err) = run(
        &[
            "tenant",
            "create",
            "--name",
            "hooli",
            "--policy",
            wrong.to_str().unwrap(),
        ],
        &store,
    );
    assert!(!ok);
    assert!(err.contains("`initech`"), "{err}");

    let o = tmp.join("override.toml");
    std::fs::write(&o, "id = \"rcs-ios\"\nchannel = \"rcs\"\nos = \"ios\"\nos_version = \">=26.2,<26.4\"\neffect = \"distrust_e2ee\"\nreason = \"E2EE regression\"\nauthor = \"secops\"\nexpires_in = \"7d\"\n").unwrap();
    let (ok, out, err) = run(
        &["override", "set", "--tenant", "globex", o.to_str().unwrap()],
        &store,
    );
    assert!(ok, "{err}");
    assert!(out.contains("\"state\": \"active\""), "{out}");
    let bad = tmp.join("bad.toml");
    std::fs::write(&bad, "id = \"x\"\nchannel = \"rcs\"\neffect = \"explode\"\nreason = \"r\"\nauthor = \"a\"\nexpires_in = \"1h\"\n").unwrap();
    let (ok, _, err) = run(
        &[
            "override",
            "set",
            "--tenant",
            "globex",
            bad.to_str().unwrap(),
        ],
        &store,
    );
    assert!(!ok);
    assert!(err.contains("explode"), "{err}");
    let (ok, out, _) = run(&["override", "list", "--tenant", "globex"], &store);
    assert!(ok && out.contains("rcs-ios"), "{out}");
    let (ok, _, err) = run(
        &["override", "clear", "--tenant", "globex", "rcs-ios"],
        &store,
    );
    assert!(ok, "{err}");
    let (ok, _, _) = run(
        &["override", "clear", "--tenant", "globex", "rcs-ios"],
        &store,
    );
    assert!(!ok, "clearing twice fails");

    let (ok, out, err) = run(&["keys", "rotate"], &store);
    assert!(ok, "{err}");
    assert!(out.contains("\"new_key\""), "{out}");
    let (ok, out, err) = run(&["audit", "verify", "--tenant", "globex"], &store);
    assert!(ok, "{err}");
    assert!(out.starts_with("ok: tenant `globex`"), "{out}");

    let export = tmp.join("globex-audit");
    let (ok, _, err) = run(
        &[
            "audit",
            "export",
            "--tenant",
            "globex",
            "--out",
            export.to_str().unwrap(),
        ],
        &store,
    );
    assert!(ok, "{err}");
    let entries = export.join("entries.jsonl");
    let text = std::fs::read_to_string(&entries).unwrap();
    assert!(
        text.contains("override_set")
            && text.contains("override_cleared")
            && text.contains("key_rotated")
    );
    let tampered = text.replacen("E2EE regression", "nothing happened", 1);
    assert_ne!(tampered, text);
    std::fs::write(&entries, tampered).unwrap();
    let (ok, _, err) = run(&["audit", "verify", export.to_str().unwrap()], &[]);
    assert!(!ok, "a tampered export must not verify");
    assert!(err.contains("entry"), "{err}");
}

#[test]
fn operator_commands_on_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let store = vec![
        "--data-dir".to_string(),
        tmp.path().join("data").display().to_string(),
    ];
    operator_commands(store, tmp.path());
}

#[test]
fn operator_commands_on_postgres() {
    let Ok(url) = std::env::var("LADDER_TEST_POSTGRES_URL") else {
        println!("skipping postgres: LADDER_TEST_POSTGRES_URL not set");
        return;
    };
    let schema = format!("cli_test_{}", std::process::id());
    let psql = |sql: &str| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sqlx::Connection;
            sqlx::any::install_default_drivers();
            let mut c = sqlx::AnyConnection::connect(&url)
                .await
                .expect("LADDER_TEST_POSTGRES_URL is set but PostgreSQL is not reachable");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&mut c)
                .await
                .unwrap();
        });
    };
    psql(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ));
    let tmp = tempfile::tempdir().unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let store = vec![
        "--database".to_string(),
        format!("{url}{sep}options=-c%20search_path%3D{schema}"),
        "--keyring".to_string(),
        tmp.path().join("keyring.json").display().to_string(),
    ];
    operator_commands(store, tmp.path());
    psql(&format!("DROP SCHEMA {schema} CASCADE"));
}
