//! Generated hostile requests against every route of the API, on SQLite
//! and PostgreSQL: ids, bodies and headers drawn from NUL and control
//! characters, unicode, extremes, wrong kinds and wrong types. Whatever
//! comes in, the server answers no 5xx, every 4xx is the one JSON error
//! envelope with no control character in its message, and a refused
//! request writes nothing (the audit log aside, which records refusals of
//! forged requests on purpose).
//!
//! The cases are drawn by proptest's deterministic runner, so a failure
//! repeats; the loop is bounded ([`cases`] requests per backend).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Map, Value, json};
use support::{Backend, TestApp};

/// Requests per backend; `LADDER_HOSTILE_CASES` raises it for a longer hunt.
fn cases() -> usize {
    std::env::var("LADDER_HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250)
}

/// Text a caller could send anywhere: empty, control bytes, unicode,
/// ids of every kind, injection-shaped, very long.
fn hostile_text() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        Just("\u{0}".to_string()),
        "[\\x00-\\x1f\\x7f]{1,6}",
        "[a-z_]{0,6}\\x00[a-z]{0,4}",
        "\\PC{0,24}",
        Just("msg_0196f0c4a2b37d1e8f00112233445566".to_string()),
        Just("rcp_0196f0c4a2b37d1e8f00112233445566".to_string()),
        Just("dev_0196f0c4a2b37d1e8f00112233445566".to_string()),
        Just("' OR 1=1 --".to_string()),
        Just("../../etc/passwd".to_string()),
        Just("\u{202e}gnp.exe".to_string()),
        Just("payroll".to_string()),
        Just("99999999999999d".to_string()),
        Just("9999-12-31T23:59:59Z".to_string()),
        Just("x".repeat(5000)),
        any::<String>(),
    ]
    .boxed()
}

const FIELDS: &[&str] = &[
    "external_id",
    "email",
    "phone",
    "recipient",
    "class",
    "body",
    "thread",
    "token",
    "identity_key",
    "agreement_key",
    "labels",
    "push",
    "id",
    "channel",
    "effect",
    "reason",
    "expires_in",
    "expires",
    "os",
    "device",
    "nonce",
    "report",
    "signature",
];

fn json_leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        any::<f64>().prop_map(|f| json!(f)),
        hostile_text().prop_map(Value::String),
    ]
    .boxed()
}

fn json_value() -> BoxedStrategy<Value> {
    json_leaf()
        .prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(FIELDS), inner), 0..6).prop_map(
                    |pairs| {
                        Value::Object(
                            pairs
                                .into_iter()
                                .map(|(k, v)| (k.to_string(), v))
                                .collect::<Map<_, _>>(),
                        )
                    }
                ),
            ]
        })
        .boxed()
}

/// A request body: nothing, JSON of the shape routes take with hostile
/// values, any JSON, or raw bytes.
#[derive(Debug, Clone)]
enum Body {
    None,
    Json(Value),
    Raw(Vec<u8>),
}

fn body() -> BoxedStrategy<Body> {
    prop_oneof![
        Just(Body::None),
        prop::collection::btree_map(prop::sample::select(FIELDS), json_value(), 0..6).prop_map(
            |m| Body::Json(Value::Object(
                m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            ))
        ),
        json_value().prop_map(Body::Json),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Body::Raw),
    ]
    .boxed()
}

/// Which key a request carries.
#[derive(Debug, Clone, Copy)]
enum Auth {
    None,
    Sender,
    Admin,
    Forged,
}

#[derive(Debug, Clone)]
struct Case {
    route: usize,
    /// Swap the route's method for another (405 must be an envelope too).
    other_method: Option<&'static str>,
    /// A segment per path parameter: hostile text, or an index into the
    /// real ids made before the run.
    segments: Vec<Result<String, usize>>,
    body: Body,
    auth: Auth,
    idempotency_key: Option<Vec<u8>>,
    /// A query string of parameters the routes take, with hostile or
    /// extreme values.
    query: Vec<(&'static str, String)>,
    device_headers: Option<(String, String, String)>,
}

fn case() -> BoxedStrategy<Case> {
    let routes = ladder_server::api::ROUTES.len();
    (
        0..routes,
        prop::option::weighted(
            0.1,
            prop::sample::select(vec!["get", "post", "put", "delete", "patch"]),
        ),
        prop::collection::vec(
            prop_oneof![hostile_text().prop_map(Ok), (0usize..8).prop_map(Err)],
            2,
        ),
        body(),
        prop_oneof![
            Just(Auth::None),
            Just(Auth::Sender),
            Just(Auth::Admin),
            Just(Auth::Forged)
        ],
        prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
        prop::option::weighted(0.3, (hostile_text(), hostile_text(), hostile_text())),
        prop::collection::vec(
            (
                prop::sample::select(vec![
                    "after", "limit", "index", "size", "from", "to", "message", "rollback",
                ]),
                prop_oneof![
                    hostile_text(),
                    Just("-1".to_string()),
                    Just("0".to_string()),
                    Just(i64::MIN.to_string()),
                    Just(u64::MAX.to_string()),
                    Just("18446744073709551616".to_string()),
                    (0u64..50).prop_map(|n| n.to_string()),
                ],
            ),
            0..3,
        ),
    )
        .prop_map(
            |(
                route,
                other_method,
                segments,
                body,
                auth,
                idempotency_key,
                device_headers,
                query,
            )| {
                Case {
                    route,
                    other_method,
                    segments,
                    body,
                    auth,
                    idempotency_key,
                    query,
                    device_headers,
                }
            },
        )
        .boxed()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn hostile_requests_never_reach_a_500(backend: Backend) {
    // No delivery workers: nothing changes rows behind the requests' backs.
    let Some(app) = TestApp::builder(backend)
        .config(|c| c.delivery.workers = 0)
        .start()
        .await
    else {
        return;
    };
    // Real ids, so generated requests also reach past the id parsers.
    let recipient = app.recipient("emp-hostile").await;
    let (device, _) = app.enrol(&recipient, 7).await;
    let sent = app.send("hostile-1", &recipient, "payroll", "hello").await;
    let message = sent.body["id"].as_str().unwrap().to_string();
    let thread = app
        .get(&format!("/v1/messages/{message}"), &app.sender)
        .await
        .body["thread"]["id"]
        .as_str()
        .unwrap_or("thr_0196f0c4a2b37d1e8f00112233445566")
        .to_string();
    let real = [
        recipient,
        device,
        message,
        thread,
        "acme".to_string(),
        "sms".to_string(),
        "rcs".to_string(),
        "rcs-ios".to_string(),
    ];

    let mut runner = TestRunner::deterministic();
    let strategy = case();
    let mut refused = 0;
    let total = cases();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for n in 0..total {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let (method, template) = ladder_server::api::ROUTES[case.route];
        let method = case.other_method.unwrap_or(method);
        let mut path = String::new();
        let mut segments = case.segments.iter();
        for part in template.split('/').filter(|p| !p.is_empty()) {
            path.push('/');
            if part.starts_with('{') {
                match segments.next() {
                    Some(Ok(text)) => path.push_str(&percent_encode(text)),
                    Some(Err(i)) => path.push_str(&real[*i % real.len()]),
                    None => path.push('x'),
                }
            } else {
                path.push_str(part);
            }
        }
        for (i, (name, value)) in case.query.iter().enumerate() {
            path.push(if i == 0 { '?' } else { '&' });
            path.push_str(name);
            path.push('=');
            path.push_str(&percent_encode(value));
        }
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut req = app
            .client
            .request(method.clone(), format!("{}{path}", app.base));
        match case.auth {
            Auth::None => {}
            Auth::Sender => req = req.bearer_auth(&app.sender),
            Auth::Admin => req = req.bearer_auth(&app.admin),
            Auth::Forged => req = req.bearer_auth("ldr_admin_0000"),
        }
        if let Some(key) = &case.idempotency_key
            && let Ok(v) = reqwest::header::HeaderValue::from_bytes(key)
        {
            req = req.header("idempotency-key", v);
        }
        if let Some((d, t, s)) = &case.device_headers {
            for (name, value) in [
                ("x-ladder-device", d),
                ("x-ladder-timestamp", t),
                ("x-ladder-signature", s),
            ] {
                if let Ok(v) = reqwest::header::HeaderValue::from_bytes(value.as_bytes()) {
                    req = req.header(name, v);
                }
            }
        }
        req = match &case.body {
            Body::None => req,
            Body::Json(v) => req.json(v),
            Body::Raw(bytes) => req.body(bytes.clone()),
        };
        let before = app.written_rows().await;
        let resp = req.send().await.unwrap();
        let status = resp.status();
        *statuses.entry(status.as_u16()).or_default() += 1;
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let text = resp.text().await.unwrap();
        let after = app.written_rows().await;
        let what = format!("case {n}: {method} {path} -> {status}: {text:.300}\n{case:?}");
        // Whatever the input, the answer is one the document describes.
        let checked = std::panic::catch_unwind(|| {
            support::contract::check(
                method.as_str(),
                &path,
                status.as_u16(),
                &content_type,
                &text,
            )
        });
        assert!(checked.is_ok(), "{what}");
        assert!(!status.is_server_error(), "{what}");
        if status.is_client_error() {
            refused += 1;
            assert!(content_type.starts_with("application/json"), "{what}");
            let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}"));
            let code = body["error"]["code"].as_str();
            let message = body["error"]["message"].as_str();
            assert!(code.is_some_and(|c| !c.is_empty()), "{what}");
            assert!(
                message.is_some_and(|m| !m.chars().any(char::is_control)),
                "{what}"
            );
            assert_eq!(after, before, "a refused request wrote rows: {what}");
        }
    }
    // The generator reaches refusals on most routes; a run that refused
    // almost nothing did not test what it claims.
    println!("{backend:?}: statuses {statuses:?}");
    assert!(refused > total / 2, "only {refused} of {total} refused");
    app.stop().await;
}

both_backends!(hostile_requests_never_reach_a_500);
