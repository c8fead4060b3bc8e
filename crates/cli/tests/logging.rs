//! `ladder serve`'s logs as an operator's collector reads them: with
//! `log_format = "json"` every stderr line is one JSON object, and the
//! access line and the delivery worker's line of a message both carry the
//! `X-Request-Id` of the request that sent it; with text (here chosen by
//! `LADDER_LOG_FORMAT` over the file's `json`) stderr, a file and not a
//! terminal, holds no ANSI escape codes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::{Served, call, serve_with, tls, wait_status};

/// Sends a message to a new recipient with `X-Request-Id: request_id`,
/// waits until it is sent, and stops the server; answers its stderr.
fn send_and_stop(mut s: Served, request_id: &str) -> String {
    let (st, r) = call(
        "POST",
        &format!("{}/v1/recipients", s.base),
        &s.sender,
        Some(
            json!({ "external_id": "emp-log", "email": "log@example.com", "phone": "+15550102020" }),
        ),
        None,
    );
    assert_eq!(st, 201, "{r}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tls();
    let (returned, id) = rt.block_on(async {
        let answer = reqwest::Client::new()
            .post(format!("{}/v1/messages", s.base))
            .header("authorization", format!("Bearer {}", s.sender))
            .header("idempotency-key", "log-1")
            .header("x-request-id", request_id)
            .json(&json!({ "recipient": r["id"], "class": "transactional", "body": "hello" }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202);
        let returned = answer.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        let body: Value = answer.json().await.unwrap();
        (returned, body["id"].as_str().unwrap().to_string())
    });
    assert_eq!(returned, request_id);
    wait_status(&s, &id, "sent");
    s.terminate();
    std::fs::read_to_string(&s.stderr_path).unwrap()
}

fn start(tmp: &Path, file_format: &str, env_format: Option<&str>) -> Served {
    let config = tmp.join("ladder.toml");
    std::fs::write(&config, format!("log_format = \"{file_format}\"\n")).unwrap();
    let store = vec![
        "--config".to_string(),
        config.display().to_string(),
        "--data-dir".to_string(),
        tmp.join("data").display().to_string(),
    ];
    serve_with(
        &store,
        &tmp.join("server.log"),
        &[
            ("LADDER_LOG", Some("info")),
            ("LADDER_LOG_FORMAT", env_format),
            ("LADDER_CONFIG", None),
        ],
    )
}

#[test]
fn json_log_format_from_the_config_file_gives_one_object_per_line() {
    let tmp = tempfile::tempdir().unwrap();
    let s = start(tmp.path(), "json", None);
    let log = send_and_stop(s, "cli-json-1");
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 3, "{log}");
    let access = lines
        .iter()
        .find(|l| l["target"] == "ladder::access" && l["fields"]["request_id"] == "cli-json-1")
        .unwrap_or_else(|| panic!("no access line for the request: {log}"));
    assert_eq!(access["fields"]["route"], "/v1/messages");
    assert_eq!(access["fields"]["status"], 202);
    let worker = lines
        .iter()
        .find(|l| l["span"]["name"] == "work" && l["span"]["request_id"] == "cli-json-1");
    assert!(
        worker.is_some(),
        "no worker line carries the request id: {log}"
    );
}

#[test]
fn text_log_format_has_no_colour_when_stderr_is_not_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    // The environment overrides the file.
    let s = start(tmp.path(), "json", Some("text"));
    let log = send_and_stop(s, "cli-text-1");
    assert!(
        !log.contains("\u{1b}["),
        "ANSI escape codes in a file: {log}"
    );
    assert!(!log.trim_start().starts_with('{'), "not text: {log}");
    let access: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ladder::access") && l.contains("cli-text-1"))
        .collect();
    assert_eq!(access.len(), 1, "{log}");
    assert!(access[0].contains("route=/v1/messages"), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("work{") && l.contains("request_id=cli-text-1")),
        "no worker line carries the request id: {log}"
    );
}
