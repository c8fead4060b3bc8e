//! Driving the real `ladder` binary: start `serve`, read its banner, call
//! its API, and tell PostgreSQL tests where their server is.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// Installs the TLS provider reqwest needs (once per test process).
pub fn tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn ladder() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ladder"))
}

pub struct Served {
    pub child: Child,
    pub base: String,
    pub sender: String,
    pub admin: String,
    pub stdout: BufReader<std::process::ChildStdout>,
    pub stderr_path: PathBuf,
}

/// Starts `ladder serve` on a free loopback port with `store` (e.g.
/// `--data-dir DIR`), debug JSON logs to `log`, and reads its banner.
pub fn serve(store: &[String], log: &Path) -> Served {
    serve_with(
        store,
        log,
        &[
            ("LADDER_LOG", Some("debug")),
            ("LADDER_LOG_FORMAT", Some("json")),
        ],
    )
}

/// [`serve`] with the environment `env` sets (`None` removes a variable).
pub fn serve_with(store: &[String], log: &Path, env: &[(&str, Option<&str>)]) -> Served {
    let stderr = std::fs::File::create(log).unwrap();
    let mut command = ladder();
    for (name, value) in env {
        match value {
            Some(v) => command.env(name, v),
            None => command.env_remove(name),
        };
    }
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(store)
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
    assert!(banner.contains("database: "), "{banner}");
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

impl Served {
    /// Sends SIGTERM and waits: the server must exit 0 (graceful shutdown).
    pub fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }
}

/// Polls message `id` until its status is `want` (or fails after ~10 s).
pub fn wait_status(s: &Served, id: &str, want: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        let (_, m) = call(
            "GET",
            &format!("{}/v1/messages/{id}", s.base),
            &s.sender,
            None,
            None,
        );
        if m["status"] == want {
            return m;
        }
        last = m;
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("message {id} never reached `{want}`: {last:#}");
}

pub fn call(
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
    tls();
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
pub fn files(dir: &Path) -> Vec<PathBuf> {
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

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh schema on the PostgreSQL server of `LADDER_TEST_POSTGRES_URL`,
/// as `(server url, schema, url scoped to the schema)`; `None` (with the
/// reason printed) when the variable is unset.
pub fn pg_schema(prefix: &str) -> Option<(String, String, String)> {
    let Ok(url) = std::env::var("LADDER_TEST_POSTGRES_URL") else {
        println!("skipping postgres: LADDER_TEST_POSTGRES_URL not set");
        return None;
    };
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let schema = format!("{prefix}_{}_{n}", std::process::id());
    pg_exec(
        &url,
        &format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"),
    );
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    Some((url, schema, scoped))
}

pub fn pg_exec(url: &str, sql: &str) {
    pg_rows(url, sql);
}

/// Runs `sql` and returns the first column of every row as text.
pub fn pg_rows(url: &str, sql: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Row};
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(url)
            .await
            .expect("LADDER_TEST_POSTGRES_URL is set but PostgreSQL is not reachable");
        let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_all(&mut c)
            .await
            .unwrap();
        rows.iter()
            .filter_map(|r| r.try_get::<String, _>(0).ok())
            .collect()
    })
}
