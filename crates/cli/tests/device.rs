//! The in-app device client driven as a user would: the real `ladder
//! serve`, then `ladder device enrol | handshake | inbox` keeping keys in a
//! local state file, on SQLite and PostgreSQL. The client decrypts what was
//! sent to it and shows the thread's label; a revoked device gets nothing;
//! a ciphertext moved to another thread in the database fails to open.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};
use support::{
    Served, call, contains, files, ladder, pg_exec, pg_rows, pg_schema, serve, wait_status,
};

#[test]
fn device_client_on_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let store = vec!["--data-dir".to_string(), data.display().to_string()];
    let db = format!("sqlite://{}", data.join("ladder.db").display());
    device_client(&store, tmp.path(), &db);
    // Nothing the server wrote holds the body.
    for f in files(&data) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !contains(&bytes, "payslip-canary"),
            "plaintext in {}",
            f.display()
        );
    }
}

#[test]
fn device_client_on_postgres() {
    let Some((url, schema, scoped)) = pg_schema("device_cli_test") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let store = vec![
        "--database".to_string(),
        scoped.clone(),
        "--data-dir".to_string(),
        data.display().to_string(),
    ];
    device_client(&store, tmp.path(), &scoped);
    pg_exec(&url, &format!("DROP SCHEMA {schema} CASCADE"));
}

fn run(args: &[&str]) -> Output {
    ladder().args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn send(s: &Served, idem: &str, r: &str, class: &str, thread: &str, body: &str) -> String {
    let (st, a) = call(
        "POST",
        &format!("{}/v1/messages", s.base),
        &s.sender,
        Some(json!({ "recipient": r, "class": class, "thread": thread, "body": body })),
        Some(idem),
    );
    assert_eq!(st, 202, "{a}");
    assert_eq!(
        a["decision"]["outcome"]["route"]["container"], "in_app",
        "{a}"
    );
    let id = a["id"].as_str().unwrap().to_string();
    wait_status(s, &id, "sent");
    id
}

fn enrol_and_handshake(s: &Served, r: &str, state: &Path, os: &str) -> String {
    let state = state.to_str().unwrap();
    let out = run(&[
        "device",
        "enrol",
        "--url",
        &s.base,
        "--key",
        &s.sender,
        "--recipient",
        r,
        "--state",
        state,
        "--os",
        os,
        "--client",
        "acme-app",
        "--client-version",
        "5.3",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let device = stdout
        .split_whitespace()
        .find(|w| w.starts_with("dev_"))
        .unwrap_or_else(|| panic!("{stdout}"))
        .to_string();
    let out = run(&[
        "device",
        "handshake",
        "--url",
        &s.base,
        "--key",
        &s.sender,
        "--state",
        state,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("handshake verified"),
        "{}",
        text(&out.stdout)
    );
    device
}

fn inbox(s: &Served, state: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "device",
        "inbox",
        "--url",
        &s.base,
        "--state",
        state.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn device_client(store: &[String], tmp: &Path, db: &str) {
    // The test's own HTTP client (support::call) needs a TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut s = serve(store, &tmp.join("server.log"));
    let (st, r) = call(
        "POST",
        &format!("{}/v1/recipients", s.base),
        &s.sender,
        Some(json!({ "external_id": "emp-cli", "email": "emp-cli@example.com" })),
        None,
    );
    assert_eq!(st, 201, "{r}");
    let rid = r["id"].as_str().unwrap().to_string();

    // Enrol: keys in an owner-only file, never overwritten.
    let phone = tmp.join("phone.json");
    let phone_id = enrol_and_handshake(&s, &rid, &phone, "ios");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&phone).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let kept = std::fs::read(&phone).unwrap();
    let saved: Value = serde_json::from_slice(&kept).unwrap();
    assert_eq!(saved["device_id"], phone_id.as_str());
    let again = run(&[
        "device",
        "enrol",
        "--url",
        &s.base,
        "--key",
        &s.sender,
        "--recipient",
        &rid,
        "--state",
        phone.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again.stderr));
    assert!(text(&again.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(&phone).unwrap(), kept);
    // The server knows the public keys only.
    let (_, view) = call(
        "GET",
        &format!("{}/v1/recipients/{rid}", s.base),
        &s.sender,
        None,
        None,
    );
    let d = &view["devices"][0];
    assert_eq!(d["agreement_key"], saved["agreement_key"]);
    assert!(
        !view
            .to_string()
            .contains(saved["agreement_secret"].as_str().unwrap())
    );
    assert_eq!(d["transports"]["in_app"]["e2ee"], "verified", "{view:#}");

    let tablet = tmp.join("tablet.json");
    let tablet_id = enrol_and_handshake(&s, &rid, &tablet, "android");

    // A payroll notice and a transactional message, each in its thread.
    let body = "payslip-canary: March net 4200.17 EUR";
    let pay = send(&s, "dev-1", &rid, "payroll", "payroll", body);
    let other = send(
        &s,
        "dev-2",
        &rid,
        "transactional",
        "orders",
        "order 1138 shipped",
    );

    let out = inbox(&s, &phone, &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("2 message(s)"), "{stdout}");
    assert!(stdout.contains(&format!("message {pay}")), "{stdout}");
    assert!(stdout.contains(body), "{stdout}");
    assert!(stdout.contains("order 1138 shipped"), "{stdout}");
    assert!(stdout.contains("label: end-to-end encrypted"), "{stdout}");
    let out = inbox(&s, &tablet, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(body));

    // A revoked device gets nothing.
    let (st, v) = call(
        "POST",
        &format!("{}/v1/devices/{tablet_id}/revoke", s.base),
        &s.sender,
        Some(json!({})),
        None,
    );
    assert_eq!(st, 200, "{v}");
    let out = inbox(&s, &tablet, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(!text(&out.stdout).contains(body));
    assert!(
        text(&out.stderr).contains("device_revoked"),
        "{}",
        text(&out.stderr)
    );

    // A ciphertext moved into another thread does not open; the client
    // says which, shows the rest, and exits 1.
    let pay_thread = pg_rows(
        db,
        &format!(
            "SELECT thread_id FROM inbox WHERE message_id = '{pay}' AND device_id = '{phone_id}'"
        ),
    );
    assert_eq!(pay_thread.len(), 1);
    pg_exec(
        db,
        &format!(
            "UPDATE inbox SET thread_id = (SELECT thread_id FROM messages WHERE id = '{other}') WHERE message_id = '{pay}'"
        ),
    );
    let out = inbox(&s, &phone, &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!stdout.contains(body), "{stdout}");
    assert!(stdout.contains("order 1138 shipped"), "{stdout}");
    assert!(stderr.contains(&pay), "{stderr}");
    assert!(stderr.contains("does not open"), "{stderr}");
    pg_exec(
        db,
        &format!(
            "UPDATE inbox SET thread_id = '{}' WHERE message_id = '{pay}'",
            pay_thread[0]
        ),
    );

    // Read and acknowledged: delivered, and gone from the server.
    let out = inbox(&s, &phone, &["--ack"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains(body) && stdout.contains("acknowledged: 2"),
        "{stdout}"
    );
    wait_status(&s, &pay, "delivered");
    wait_status(&s, &other, "delivered");
    let out = inbox(&s, &phone, &[]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("0 message(s)"),
        "{}",
        text(&out.stdout)
    );

    s.terminate();
    // The debug log never saw the body either.
    let log = std::fs::read(tmp.join("server.log")).unwrap();
    assert!(!contains(&log, "payslip-canary"));
}
