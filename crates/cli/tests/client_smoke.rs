//! A Python client generated from the live OpenAPI document, run against
//! the real `ladder serve` on SQLite and PostgreSQL (`clients/python/`).
//!
//! Integrators generate clients from `/v1/openapi.json`; a document that
//! disagrees with the answers breaks them, not us, unless a generated client
//! runs here. With `LADDER_TEST_PYTHON` naming an interpreter that has
//! `openapi-python-client` (and the smoke script's `cryptography` and
//! `jsonschema`), each test generates the client from the node's own
//! document into a temp dir and runs `clients/python/smoke.py` with it,
//! which must pass. Without it the tests say they skipped the client and
//! still check that the node serves a document that parses as OpenAPI 3.1.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{Served, pg_exec, pg_schema, serve, tls};

#[test]
fn generated_client_on_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let store = vec![
        "--data-dir".to_string(),
        tmp.path().join("data").display().to_string(),
    ];
    smoke(&store, tmp.path());
}

#[test]
fn generated_client_on_postgres() {
    let Some((url, schema, scoped)) = pg_schema("client_smoke") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let store = vec![
        "--database".to_string(),
        scoped,
        "--data-dir".to_string(),
        tmp.path().join("data").display().to_string(),
    ];
    smoke(&store, tmp.path());
    pg_exec(&url, &format!("DROP SCHEMA {schema} CASCADE"));
}

/// The document the node serves, without a key; it must be OpenAPI 3.1
/// with the routes the smoke script calls.
fn document(s: &Served) -> String {
    tls();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answer = rt.block_on(async {
        let r = reqwest::get(format!("{}/v1/openapi.json", s.base))
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    assert_eq!(answer.0, 200, "{}", answer.1);
    let doc: Value = serde_json::from_str(&answer.1).expect("the document is not JSON");
    assert!(
        doc["openapi"].as_str().unwrap_or("").starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/v1/recipients",
        "/v1/recipients/{id}/devices",
        "/v1/devices/{id}/handshake",
        "/v1/messages",
        "/v1/messages/{id}",
        "/v1/messages/{id}/confirm",
    ] {
        assert!(doc["paths"].get(path).is_some(), "`{path}` undocumented");
    }
    answer.1
}

fn run(python: &str, args: &[&str], env: &[(&str, &str)], what: &str) -> String {
    let out = Command::new(python)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run `{python}`: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}

fn smoke(store: &[String], tmp: &Path) {
    let mut s = serve(store, &tmp.join("server.log"));
    let doc = document(&s);
    let Ok(python) = std::env::var("LADDER_TEST_PYTHON") else {
        println!(
            "skipping the generated client: LADDER_TEST_PYTHON (a Python with openapi-python-client) is not set; the document was fetched and parses"
        );
        s.terminate();
        return;
    };
    let doc_path = tmp.join("openapi.json");
    std::fs::write(&doc_path, doc).unwrap();
    let generated = tmp.join("generated");
    let package = generated.join("ladder_client");
    run(
        &python,
        &[
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            doc_path.to_str().unwrap(),
            "--meta",
            "none",
            "--output-path",
            package.to_str().unwrap(),
        ],
        &[],
        "generating the client",
    );
    assert!(package.join("client.py").is_file(), "nothing generated");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../clients/python/smoke.py");
    let out = run(
        &python,
        &[script, "--base", &s.base],
        &[
            ("PYTHONPATH", generated.to_str().unwrap()),
            ("LADDER_SMOKE_KEY", &s.sender),
            ("LADDER_SMOKE_ADMIN_KEY", &s.admin),
            ("PYTHONDONTWRITEBYTECODE", "1"),
        ],
        "the smoke script",
    );
    println!("{out}");
    assert!(
        out.contains("smoke: 0 mismatches"),
        "the script did not finish:\n{out}"
    );
    s.terminate();
}
