//! The test app: a real `ladder` node on a loopback port, on SQLite (a temp
//! file) or PostgreSQL (a fresh schema on the server named by
//! `LADDER_TEST_POSTGRES_URL`), driven over HTTP like any client.
//!
//! Without `LADDER_TEST_POSTGRES_URL` the PostgreSQL variants print why and
//! return; with it set and no server listening, they fail.

#![allow(dead_code)]

pub mod contract;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use ladder_server::{Config, Running};
use serde_json::{Value, json};

pub mod portal;

pub use reqwest::StatusCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs `$case` once per backend, as two tests.
#[macro_export]
macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::support::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::support::Backend::Postgres).await;
                }
            )*
        }
    };
}

pub struct TestApp {
    pub running: Option<Running>,
    pub base: String,
    pub client: reqwest::Client,
    pub sender: String,
    pub admin: String,
    /// The demo tenant's id.
    pub tenant: String,
    pub config: Config,
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

pub struct Builder {
    backend: Backend,
    config: Config,
}

impl Builder {
    /// The window within which an `Idempotency-Key` replays its answer.
    pub fn idempotency_window_s(mut self, seconds: u64) -> Builder {
        self.config.api.idempotency_window = ladder_core::Duration::seconds(seconds);
        self
    }

    pub fn config(mut self, f: impl FnOnce(&mut Config)) -> Builder {
        f(&mut self.config);
        self
    }

    /// Starts the app, or `None` for PostgreSQL without a URL (skipped).
    pub async fn start(self) -> Option<TestApp> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let mut config = self.config;
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.data_dir = dir.path().join("data");
        let pg = match self.backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let Ok(url) = std::env::var("LADDER_TEST_POSTGRES_URL") else {
                    println!("skipping postgres: LADDER_TEST_POSTGRES_URL not set");
                    return None;
                };
                let schema = fresh_schema(&url).await;
                let sep = if url.contains('?') { '&' } else { '?' };
                config.database_url =
                    Some(format!("{url}{sep}options=-c%20search_path%3D{schema}"));
                Some((url, schema))
            }
        };
        let running = ladder_server::start(config.clone()).await.unwrap();
        let demo = running
            .demo
            .as_ref()
            .expect("a fresh database gets the demo tenant");
        let sender = demo
            .keys
            .iter()
            .find(|k| k.scope.as_str() == "sender")
            .unwrap()
            .token
            .clone();
        let admin = demo
            .keys
            .iter()
            .find(|k| k.scope.as_str() == "admin")
            .unwrap()
            .token
            .clone();
        let tenant = demo.tenant.id.clone();
        // Restarts must reuse the same port-independent state: pin the port.
        config.listen = running.addr;
        Some(TestApp {
            base: format!("http://{}", running.addr),
            running: Some(running),
            client: reqwest::Client::new(),
            sender,
            admin,
            tenant,
            config,
            dir,
            pg,
        })
    }
}

async fn fresh_schema(url: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let schema = format!(
        "srv_test_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    );
    sqlx::any::install_default_drivers();
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .expect("LADDER_TEST_POSTGRES_URL is set but PostgreSQL is not reachable");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    schema
}

/// Reads an answer to `method path` (sent any way a test likes), checked
/// against the OpenAPI document ([`contract::check`]).
pub async fn checked(method: &str, path: &str, resp: reqwest::Response) -> Answer {
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let content_type = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    contract::check(method, path, status.as_u16(), content_type, &text);
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        body,
        text,
        headers,
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl TestApp {
    pub fn builder(backend: Backend) -> Builder {
        let mut config = Config::default();
        config.delivery.poll_ms = 20;
        config.delivery.backoff_base_ms = 20;
        config.delivery.backoff_max_ms = 100;
        Builder { backend, config }
    }

    pub async fn start(backend: Backend) -> Option<TestApp> {
        Self::builder(backend).start().await
    }

    /// An app whose sandbox `channel` fails as `failure` says.
    pub async fn failing(
        backend: Backend,
        channel: ladder_core::Channel,
        failure: ladder_channels::sandbox::Failure,
    ) -> Option<TestApp> {
        Self::builder(backend)
            .config(|c| {
                c.channels.sandbox.fail.insert(channel, failure);
            })
            .start()
            .await
    }

    pub fn state(&self) -> &ladder_server::state::AppState {
        &self.running.as_ref().unwrap().state
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let req_method = method.clone();
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        for (h, v) in headers {
            req = req.header(*h, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        checked(req_method.as_str(), path, req.send().await.unwrap()).await
    }

    /// A device-signed request (`/v1/device/…`) as `device_id` with `key`:
    /// `sign_path` and `timestamp` are what is signed, so tests can forge.
    pub async fn device_request(
        &self,
        method: reqwest::Method,
        path: &str,
        device_id: &str,
        key: &SigningKey,
        sign_path: &str,
        timestamp: i64,
    ) -> Answer {
        use ed25519_dalek::Signer;
        let sig = key.sign(&ladder_channels::inapp::device_request_signing_bytes(
            method.as_str(),
            sign_path,
            timestamp,
            b"",
        ));
        let ts = timestamp.to_string();
        let sig = hex(&sig.to_bytes());
        self.request(
            method,
            path,
            None,
            None,
            &[
                ("x-ladder-device", device_id),
                ("x-ladder-timestamp", &ts),
                ("x-ladder-signature", &sig),
            ],
        )
        .await
    }

    /// Rows in the tables a request could write, the audit log aside (it
    /// records refusals of forged requests on purpose): what a refused
    /// request must leave unchanged.
    pub async fn written_rows(&self) -> i64 {
        use sqlx::Row;
        let mut conn = self.state().store.pool().acquire().await.unwrap();
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM messages) + (SELECT COUNT(*) FROM recipients) \
             + (SELECT COUNT(*) FROM devices) + (SELECT COUNT(*) FROM overrides) \
             + (SELECT COUNT(*) FROM policies) + (SELECT COUNT(*) FROM threads) \
             + (SELECT COUNT(*) FROM outbox) + (SELECT COUNT(*) FROM payloads) \
             + (SELECT COUNT(*) FROM challenges) + (SELECT COUNT(*) FROM events) \
             + (SELECT COUNT(*) FROM api_keys) + (SELECT COUNT(*) FROM tenants) AS n",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        row.try_get::<i64, _>("n").unwrap()
    }

    /// A second tenant from `policy`; answers its sender key.
    pub async fn other_tenant(&self, name: &str, policy: &str) -> String {
        let created = ladder_server::service::tenants::create(self.state(), name, policy, "test")
            .await
            .unwrap();
        created
            .keys
            .iter()
            .find(|k| k.scope.as_str() == "sender")
            .unwrap()
            .token
            .clone()
    }

    /// A second tenant from `policy`; answers its sender and admin keys.
    pub async fn other_tenant_keys(&self, name: &str, policy: &str) -> (String, String) {
        let created = ladder_server::service::tenants::create(self.state(), name, policy, "test")
            .await
            .unwrap();
        let key = |scope: &str| {
            created
                .keys
                .iter()
                .find(|k| k.scope.as_str() == scope)
                .unwrap()
                .token
                .clone()
        };
        (key("sender"), key("admin"))
    }

    pub async fn delete(&self, path: &str, key: &str) -> Answer {
        self.request(reqwest::Method::DELETE, path, Some(key), None, &[])
            .await
    }

    pub async fn get(&self, path: &str, key: &str) -> Answer {
        self.request(reqwest::Method::GET, path, Some(key), None, &[])
            .await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Answer {
        self.request(reqwest::Method::POST, path, Some(key), Some(body), &[])
            .await
    }

    pub async fn recipient(&self, external_id: &str) -> String {
        let a = self
            .post(
                "/v1/recipients",
                &self.sender.clone(),
                json!({
                    "external_id": external_id,
                    "email": format!("{external_id}@example.com"),
                    "phone": format!("+1555{:07}", external_id.bytes().map(u32::from).sum::<u32>()),
                }),
            )
            .await;
        assert!(a.status.is_success(), "{}", a.text);
        a.body["id"].as_str().unwrap().to_string()
    }

    pub async fn send(&self, idem: &str, recipient: &str, class: &str, body: &str) -> Answer {
        self.request(
            reqwest::Method::POST,
            "/v1/messages",
            Some(&self.sender.clone()),
            Some(json!({ "recipient": recipient, "class": class, "body": body })),
            &[("idempotency-key", idem)],
        )
        .await
    }

    /// Enrols a device for `recipient` and returns its id and signing key.
    pub async fn enrol(&self, recipient: &str, seed: u8) -> (String, SigningKey) {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let a = self
            .post(
                &format!("/v1/recipients/{recipient}/devices"),
                &self.sender.clone(),
                json!({
                    "identity_key": hex(&key.verifying_key().to_bytes()),
                    "agreement_key": hex(&ladder_channels::inapp::agreement_public(&[seed; 32]).unwrap()),
                    "labels": { "os": "android", "os_version": "15", "client": "acme-app", "client_version": "5.3" },
                }),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        (a.body["id"].as_str().unwrap().to_string(), key)
    }

    /// A fresh challenge for `device`.
    pub async fn challenge(&self, device: &str) -> Value {
        let a = self
            .post(
                &format!("/v1/devices/{device}/challenge"),
                &self.sender.clone(),
                json!({}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        a.body
    }

    /// A signed report of the tenant app with verified in-app E2EE and push.
    pub fn report(device: &str, nonce: &str, key: &SigningKey) -> Value {
        let report: ladder_core::handshake::DeviceReport = serde_json::from_value(json!({
            "device": device,
            "nonce": nonce,
            "client": { "name": "acme-app", "version": "5.3", "policy_revision": 4 },
            "transports": {
                "in_app": { "reachable": true, "e2ee": "verified" },
                "push": { "reachable": true, "e2ee": "absent" },
            },
        }))
        .unwrap();
        let signed = ladder_core::handshake::sign(key, report).unwrap();
        serde_json::to_value(signed).unwrap()
    }

    /// Challenge, sign and report: a complete, valid handshake.
    pub async fn handshake(&self, device: &str, key: &SigningKey) -> Answer {
        let c = self.challenge(device).await;
        let nonce = c["nonce"].as_str().unwrap();
        self.post(
            &format!("/v1/devices/{device}/handshake"),
            &self.sender.clone(),
            Self::report(device, nonce, key),
        )
        .await
    }

    /// Polls a message until its status is `want` (or fails after ~10 s).
    pub async fn wait_status(&self, id: &str, want: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..200 {
            let a = self
                .get(&format!("/v1/messages/{id}"), &self.sender.clone())
                .await;
            if a.body["status"] == want {
                return a.body;
            }
            last = a.body;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("message {id} never reached `{want}`: {last:#}");
    }

    pub async fn audit(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let a = self
                .get(
                    &format!("/v1/audit?after={after}&limit=1000"),
                    &self.admin.clone(),
                )
                .await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.text);
            let entries = a.body["entries"].as_array().unwrap().clone();
            if entries.is_empty() {
                return out;
            }
            after = entries.last().unwrap()["seq"].as_i64().unwrap();
            out.extend(entries);
        }
    }

    pub async fn deliveries(&self, message: &str) -> Vec<Value> {
        let a = self
            .get(
                &format!("/v1/sandbox/deliveries?message={message}"),
                &self.sender.clone(),
            )
            .await;
        a.body["deliveries"].as_array().unwrap().clone()
    }

    /// Stops the node (gracefully) and starts it again on the same data,
    /// after `f` changed the configuration.
    pub async fn restart(&mut self, f: impl FnOnce(&mut Config)) {
        self.running.take().unwrap().shutdown().await;
        f(&mut self.config);
        let running = ladder_server::start(self.config.clone()).await.unwrap();
        assert!(
            running.demo.is_none(),
            "the demo tenant is made on first start only"
        );
        self.base = format!("http://{}", running.addr);
        self.running = Some(running);
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        if let Some((url, schema)) = self.pg.take() {
            use sqlx::Connection;
            let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
    }
}

/// The clock as the server reads it: Unix seconds.
pub fn now_s() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
