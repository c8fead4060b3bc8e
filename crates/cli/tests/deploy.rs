//! The real binary configured the way a container is: every setting from
//! `LADDER_*` variables, the keyring's key-encryption key from a mounted
//! file outside the data directory, `ladder health` as the health check,
//! and a misspelt variable refused at start rather than ignored.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use base64::Engine as _;
use support::{ladder, serve_with};

#[test]
fn a_node_configured_only_by_environment_seals_its_keyring_and_reports_ready() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let secrets = tmp.path().join("run-secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let kek = secrets.join("ladder_kek");
    let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    std::fs::write(&kek, format!("{key}\n")).unwrap();
    let token = secrets.join("metrics_token");
    std::fs::write(&token, "metrics-secret-from-file\n").unwrap();

    let mut served = serve_with(
        &[],
        &tmp.path().join("serve.log"),
        &[
            ("LADDER_DATA_DIR", Some(data.to_str().unwrap())),
            ("LADDER_KEYRING_KEK_FILE", Some(kek.to_str().unwrap())),
            ("LADDER_METRICS_TOKEN_FILE", Some(token.to_str().unwrap())),
            ("LADDER_DELIVERY__WORKERS", Some("1")),
            ("LADDER_AUDIT__DEPLOYMENT", Some("ladder.example.test")),
        ],
    );

    let keyring = std::fs::read_to_string(data.join("keyring.json")).unwrap();
    assert!(keyring.contains("\"sealed\": 1"), "{keyring}");

    let health = ladder()
        .args(["health", "--url", &served.base])
        .output()
        .unwrap();
    assert!(health.status.success(), "{health:?}");
    let body: serde_json::Value = serde_json::from_slice(&health.stdout).unwrap();
    assert_eq!(body["keyring"], "ok");
    assert_eq!(body["database"], "ok");

    // The token read from the file guards /metrics.
    let (status, _) = support::call(
        "GET",
        &format!("{}/metrics", served.base),
        "wrong",
        None,
        None,
    );
    assert_eq!(status, 401);
    let (status, _) = support::call(
        "GET",
        &format!("{}/metrics", served.base),
        "metrics-secret-from-file",
        None,
        None,
    );
    assert_eq!(status, 200);
    // The deployment name from the environment is the audit log's origin.
    let (status, made) = support::call(
        "POST",
        &format!("{}/v1/audit/checkpoints", served.base),
        &served.admin,
        None,
        None,
    );
    assert!(status < 300, "{made}");
    let (status, note) = support::call(
        "GET",
        &format!("{}/v1/audit/checkpoint", served.base),
        &served.admin,
        None,
        None,
    );
    assert_eq!(status, 200, "{note}");
    assert!(
        note.as_str()
            .unwrap_or_default()
            .starts_with("ladder.example.test/audit/"),
        "{note}"
    );
    served.terminate();

    let log = std::fs::read_to_string(tmp.path().join("serve.log")).unwrap();
    assert!(!log.contains(&key) && !log.contains("metrics-secret-from-file"));

    // Nothing answers any more: `ladder health` says so and exits 1 (a
    // health check's 2 is reserved by Docker).
    let down = ladder()
        .args(["health", "--url", &served.base, "--timeout", "1"])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1), "{down:?}");
    assert!(String::from_utf8_lossy(&down.stderr).contains("did not answer"));
}

#[test]
fn a_misspelt_variable_stops_the_node_before_it_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ladder()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("data"))
        .env("LADDER_DELIVRY__WORKERS", "4")
        .env_remove("LADDER_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("LADDER_DELIVRY__WORKERS") && err.contains("delivry"),
        "{err}"
    );
    assert!(!tmp.path().join("data").exists(), "nothing was created");

    let out = ladder()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("data"))
        .env("LADDER_CHANNELS__SMS__TOKEN_FILE", "/does/not/exist")
        .env_remove("LADDER_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("LADDER_CHANNELS__SMS__TOKEN_FILE") && err.contains("/does/not/exist"),
        "{err}"
    );
}
