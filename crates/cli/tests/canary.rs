//! The canary: a message body and a recipient's addresses that must never
//! appear in plaintext anywhere but in the recipient's hands. Sent through
//! the real `ladder serve` on SQLite and PostgreSQL, then searched for in
//! the database (files, or every row of every table), the keyring, the
//! debug-level JSON log (with the access lines of paths that hold the
//! canary and a portal link token), the audit export and API, and
//! `/metrics` — with an event subscription, so the outbound events the
//! sends cause are in the database and their attempts in the log. Also:
//! graceful shutdown on SIGTERM, and a tenant created by the CLI while the
//! server runs is served without a restart.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use serde_json::json;
use support::{call, contains, files, hex, ladder, pg_exec, pg_rows, pg_schema, serve_with};

#[test]
fn canary_on_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let store = vec!["--data-dir".to_string(), data.display().to_string()];
    canary(&store, tmp.path(), &data, None);
}

#[test]
fn canary_on_postgres() {
    let Some((url, schema, scoped)) = pg_schema("canary_test") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let store = vec![
        "--database".to_string(),
        scoped,
        "--data-dir".to_string(),
        data.display().to_string(),
    ];
    canary(&store, tmp.path(), &data, Some((&url, &schema)));
    pg_exec(&url, &format!("DROP SCHEMA {schema} CASCADE"));
}

/// Every row of every table in `schema` as text, binary columns decoded
/// byte for byte (so plaintext stored as bytes would show).
fn dump_schema(url: &str, schema: &str) -> Vec<u8> {
    let tables = pg_rows(
        url,
        &format!(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = '{schema}'"
        ),
    );
    assert!(tables.len() > 5, "{tables:?}");
    let mut out = Vec::new();
    for t in tables {
        let cols = pg_rows(
            url,
            &format!(
                "SELECT CASE WHEN data_type = 'bytea' THEN 'encode(' || quote_ident(column_name) || ', ''escape'')' \
                 ELSE quote_ident(column_name) || '::text' END \
                 FROM information_schema.columns WHERE table_schema = '{schema}' AND table_name = '{t}'"
            ),
        );
        let select = cols
            .iter()
            .map(|c| format!("coalesce({c}, '')"))
            .collect::<Vec<_>>()
            .join(" || ' ' || ");
        for row in pg_rows(url, &format!("SELECT {select} FROM {schema}.{t}")) {
            out.extend_from_slice(row.as_bytes());
            out.push(b'\n');
        }
    }
    out
}

fn canary(store: &[String], tmp: &Path, data: &Path, pg: Option<(&str, &str)>) {
    // Its event subscription points at loopback (nothing listens there).
    let mut s = serve_with(
        store,
        &tmp.join("server.log"),
        &[
            ("LADDER_LOG", Some("debug")),
            ("LADDER_LOG_FORMAT", Some("json")),
            ("LADDER_EVENTS__ALLOW_PRIVATE_NETWORKS", Some("true")),
        ],
    );
    let canary = format!("CANARY-{}-payroll-secret", std::process::id());
    let email = "canary.person@example.com";
    let phone = "+15550001111";

    let (st, r) = call(
        "POST",
        &format!("{}/v1/recipients", s.base),
        &s.sender,
        Some(json!({ "external_id": "emp-canary", "email": email, "phone": phone })),
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

    // An event subscription, so every event the sends below cause is owed
    // (rows in the database dump) and attempted (lines in the log): nothing
    // listens there, and none of it may carry the canary.
    let (st, sub) = call(
        "POST",
        &format!("{}/v1/event-subscriptions", s.base),
        &s.admin,
        Some(json!({ "url": "https://127.0.0.1:9/ladder-events" })),
        None,
    );
    assert_eq!(st, 201, "{sub}");

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
    // Not a recipient id: refused at the edge, without echoing it.
    assert_eq!(st, 400, "{e}");
    assert!(!e.to_string().contains(&canary), "{e}");
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
    support::tls();
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

    // Paths that carry secrets: a real portal link token, and the canary in
    // a path and a query string. The access log names route templates only.
    let (_, mailbox) = call(
        "GET",
        &format!("{}/v1/sandbox/deliveries", s.base),
        &s.sender,
        None,
        None,
    );
    let notice = mailbox["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["notice_text"].as_str())
        .find(|t| t.contains("/portal/"))
        .unwrap_or_else(|| panic!("no portal link was sent: {mailbox:#}"))
        .to_string();
    let at = notice.find("/portal/").unwrap() + "/portal/".len();
    let link_token: String = notice[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert_eq!(link_token.len(), 43, "{notice}");
    for path in [
        format!("/portal/{link_token}"),
        format!("/portal/{canary}"),
        format!("/v1/messages/{canary}?q={canary}"),
        format!("/no/such/{canary}"),
    ] {
        let (st, _) = call("GET", &format!("{}{path}", s.base), &s.sender, None, None);
        assert!([200, 400, 404, 410].contains(&st), "{path}: {st}");
    }

    // A tenant created by the CLI while the server runs is served at once:
    // the server picks up the keyring the CLI changed.
    let policy = tmp.join("globex.toml");
    std::fs::write(
        &policy,
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/policies/acme.toml"
        ))
        .unwrap()
        .replace("tenant = \"acme\"", "tenant = \"globex\""),
    )
    .unwrap();
    let out = ladder()
        .args(["tenant", "create", "--name", "globex", "--policy"])
        .arg(&policy)
        .args(store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let globex = created["keys"][0]["token"].as_str().unwrap();
    let (st, g) = call(
        "POST",
        &format!("{}/v1/recipients", s.base),
        globex,
        Some(json!({ "external_id": "g-1", "email": "g@example.com", "phone": "+15550103001" })),
        None,
    );
    assert_eq!(st, 201, "{g}");
    let (st, g) = call(
        "POST",
        &format!("{}/v1/messages", s.base),
        globex,
        Some(json!({ "recipient": g["id"], "class": "transactional", "body": canary })),
        Some("g-1"),
    );
    assert_eq!(st, 202, "{g}");

    // Graceful shutdown on SIGTERM: exits 0 after finishing in-flight work.
    s.terminate();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut s.stdout, &mut rest).unwrap();
    assert!(rest.contains("shutting down"), "{rest}");

    let export = tmp.join("export");
    let out = ladder()
        .args(["audit", "export", "--tenant", "acme", "--out"])
        .arg(&export)
        .args(store)
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

    // The scan: database, keyring, logs, audit export and API, metrics.
    let mut scanned: Vec<(String, Vec<u8>)> = Vec::new();
    for f in files(data).into_iter().chain(files(&export)) {
        scanned.push((f.display().to_string(), std::fs::read(&f).unwrap()));
    }
    match pg {
        None => assert!(
            scanned.iter().any(|(n, _)| n.ends_with("ladder.db")),
            "the database file was scanned"
        ),
        Some((url, schema)) => {
            let dump = dump_schema(url, schema);
            assert!(
                contains(&dump, "decision"),
                "the dump holds the audit entries"
            );
            scanned.push(("postgres rows".into(), dump));
        }
    }
    assert!(
        scanned.iter().any(|(n, _)| n.ends_with("keyring.json")),
        "the keyring was scanned"
    );
    scanned.push(("server log".into(), std::fs::read(&s.stderr_path).unwrap()));
    scanned.push(("metrics".into(), metrics.into_bytes()));
    scanned.push(("audit API".into(), audit.to_string().into_bytes()));
    let log = &scanned.iter().find(|(n, _)| n == "server log").unwrap().1;
    assert!(contains(log, "ladder is serving"), "the log was captured");
    assert!(
        contains(log, "\"route\":\"/portal/{token}\""),
        "the access log was captured"
    );
    assert!(
        !contains(log, &link_token),
        "a portal link token is in the server log"
    );
    for (name, bytes) in &scanned {
        assert!(
            !contains(bytes, &canary),
            "the canary body is in plaintext in {name}"
        );
        for address in [email, phone, &phone[1..]] {
            assert!(
                !contains(bytes, address),
                "the raw address `{address}` is in plaintext in {name}"
            );
        }
    }
    // The scanner finds what is there (so the absence above means something).
    assert!(contains(format!("xx{canary}yy").as_bytes(), &canary));
}
