//! Deployment promises on SQLite and PostgreSQL: a keyring sealed by a
//! key-encryption key mounted from outside the data directory (nothing
//! readable in the file, a node without the key refuses to start, the same
//! node with it carries on), and readiness that answers for the database
//! and the keyring, not only for the process.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::os::unix::fs::PermissionsExt;

use base64::Engine as _;
use support::{Backend, StatusCode, TestApp};

/// A KEK file in a directory of its own, as a container secret would be.
fn kek_file(dir: &std::path::Path, byte: u8) -> std::path::PathBuf {
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let path = secrets.join(format!("kek-{byte}"));
    let text = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
    std::fs::write(&path, format!("{text}\n")).unwrap();
    path
}

async fn a_keyring_sealed_by_a_mounted_kek_opens_only_with_it(backend: Backend) {
    let secrets = tempfile::tempdir().unwrap();
    let kek = kek_file(secrets.path(), 7);
    let Some(mut app) = TestApp::builder(backend)
        .config(|c| c.keyring_kek_file = Some(kek.clone()))
        .start()
        .await
    else {
        return;
    };
    let recipient = app.recipient("kek-person").await;
    let sent = app.send("kek-1", &recipient, "payroll", "payslip").await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    let id = sent.body["id"].as_str().unwrap().to_owned();

    let keyring = app.config.keyring_path();
    assert!(!keyring.starts_with(secrets.path()));
    let on_disk = std::fs::read_to_string(&keyring).unwrap();
    assert!(on_disk.contains("\"sealed\": 1"), "{on_disk}");
    assert!(
        !on_disk.contains(&app.tenant),
        "the tenant's keys are sealed"
    );

    let ready = app.get("/readyz", "").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.body["keyring"], "ok");

    // Without the key, or with another one, the node does not start.
    app.running.take().unwrap().shutdown().await;
    for wrong in [None, Some(kek_file(secrets.path(), 8))] {
        let mut config = app.config.clone();
        config.keyring_kek_file = wrong.clone();
        let err = ladder_server::start(config).await.unwrap_err().to_string();
        let expected = if wrong.is_none() {
            "no key-encryption key is configured"
        } else {
            "does not open"
        };
        assert!(err.contains(expected), "{err}");
        assert!(!err.contains(&std::fs::read_to_string(kek_file(secrets.path(), 8)).unwrap()));
    }

    // With it, the node carries on where it stopped.
    let running = ladder_server::start(app.config.clone()).await.unwrap();
    app.base = format!("http://{}", running.addr);
    app.running = Some(running);
    let status = app.get(&format!("/v1/messages/{id}"), &app.sender).await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.text);
    let again = app.send("kek-2", &recipient, "payroll", "second").await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.text);
    app.stop().await;
}

async fn readiness_answers_for_the_database_and_the_keyring(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ready = app.get("/readyz", "").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["database"], "ok");
    assert_eq!(ready.body["keyring"], "ok");

    // A keyring others may read is one this node must not trust.
    let keyring = app.config.keyring_path();
    std::fs::set_permissions(&keyring, std::fs::Permissions::from_mode(0o644)).unwrap();
    let unready = app.get("/readyz", "").await;
    assert_eq!(unready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(unready.body["status"], "unavailable");
    assert_eq!(unready.body["keyring"], "unusable");
    assert_eq!(unready.body["database"], "ok");
    assert!(
        !unready.text.contains(keyring.to_str().unwrap()),
        "no paths in the answer"
    );
    // Liveness is not readiness: the process still answers.
    assert_eq!(app.get("/healthz", "").await.status, StatusCode::OK);

    std::fs::set_permissions(&keyring, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(app.get("/readyz", "").await.status, StatusCode::OK);

    // A database that stopped answering.
    app.state().store.pool().close().await;
    let unready = app.get("/readyz", "").await;
    assert_eq!(unready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(unready.body["database"], "unreachable");
    assert_eq!(unready.body["keyring"], "ok");
    app.stop().await;
}

both_backends!(
    a_keyring_sealed_by_a_mounted_kek_opens_only_with_it,
    readiness_answers_for_the_database_and_the_keyring,
);
