//! Dashboard aggregates (`GET /v1/stats`): the counters the service keeps
//! as it writes must equal the facts. Every figure is checked against what
//! the audit log says happened — decisions, fallbacks, retries, provider
//! failures, confirmations, thread changes, portal events — after a run that
//! delivers, falls back, retries, blocks, escalates, asks for confirmation
//! (given once, abandoned once) and observes. Also: bucket boundaries,
//! the sum of decisions over buckets, tenant isolation, refused parameters,
//! and the answer's shape.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use ladder_channels::sandbox::Failure;
use ladder_core::Channel;
use ladder_store::stats::{self, Dims, Metric};
use serde_json::{Value, json};
use support::{Backend, StatusCode, TestApp};

both_backends!(
    figures_equal_what_the_audit_log_says_happened,
    decisions_summed_over_buckets_equal_messages_sent,
    buckets_start_on_minute_hour_and_day_boundaries,
    another_tenant_sees_none_of_the_figures,
    bad_parameters_are_refused_naming_the_parameter,
    one_answer_has_the_documented_shape,
);

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

/// `GET /v1/stats` over the last hour (by minute) unless `query` says.
async fn figures(app: &TestApp, key: &str, path: &str) -> Value {
    let a = app.get(path, key).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.body
}

fn last_hour() -> String {
    let n = now();
    format!(
        "/v1/stats?since={}&until={}&bucket=minute",
        n - 3_600,
        n + 60
    )
}

/// What the answer says, with decisions summed over buckets: comparable
/// with [`facts`].
fn collapse(s: &Value) -> Value {
    let mut decisions: BTreeMap<String, i64> = BTreeMap::new();
    for d in s["decisions"].as_array().unwrap() {
        let k = format!(
            "{}|{}|{}|{}",
            d["class"], d["route"], d["outcome"], d["mode"]
        );
        *decisions.entry(k).or_default() += d["count"].as_i64().unwrap();
    }
    let observed: BTreeMap<String, i64> =
        s["observe"]
            .as_array()
            .unwrap()
            .iter()
            .fold(BTreeMap::new(), |mut m, o| {
                *m.entry(o["class"].as_str().unwrap().to_string())
                    .or_default() += o["count"].as_i64().unwrap();
                m
            });
    json!({
        "decisions": decisions,
        "observed": observed,
        "fallbacks": s["fallbacks"],
        "retries": s["retries"],
        "provider_failures": s["provider_failures"],
        "confirmations": s["confirmations"],
        "threads": s["threads"],
        "portal": s["portal"],
    })
}

/// The same figures, recounted from the audit log.
fn facts(audit: &[Value]) -> Value {
    let of = |kind: &'static str| audit.iter().filter(move |e| e["kind"] == kind);
    let mut decisions: BTreeMap<String, i64> = BTreeMap::new();
    let mut observed: BTreeMap<String, i64> = BTreeMap::new();
    let mut asked = 0;
    for e in of("decision") {
        let d = &e["details"];
        let k = format!(
            "{}|{}|{}|{}",
            d["class"], d["route"], d["outcome"], d["mode"]
        );
        *decisions.entry(k).or_default() += 1;
        if d["mode"] == "observe" {
            *observed
                .entry(d["class"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        if d["outcome"] == "confirmation_required" {
            asked += 1;
        }
    }
    let mut fallbacks: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    for e in of("fallback") {
        let d = &e["details"];
        let to = match d["next_route"].as_str() {
            Some(route) => route.split('+').next().unwrap().to_string(),
            None => d["next"].as_str().unwrap().to_string(),
        };
        let key = (
            d["failed_channel"].as_str().unwrap().to_string(),
            to,
            d["reason"].as_str().unwrap().to_string(),
        );
        *fallbacks.entry(key).or_default() += 1;
    }
    let mut retries: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut failures: BTreeMap<String, i64> = BTreeMap::new();
    for e in of("delivery_attempt") {
        let d = &e["details"];
        let channel = d["channel"].as_str().unwrap().to_string();
        if d["outcome"] == "transient_failure" {
            let code = d["code"].as_str().unwrap().to_string();
            *retries.entry((channel.clone(), code)).or_default() += 1;
        }
        if d["outcome"] != "accepted" {
            *failures.entry(channel).or_default() += 1;
        }
    }
    for e in of("delivery_receipt") {
        let d = &e["details"];
        if d["status"] == "failed" || d["status"] == "expired" {
            *failures
                .entry(d["channel"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    let abandoned = of("message_revoked")
        .filter(|e| e["details"]["status_before"] == "awaiting_confirmation")
        .count();
    json!({
        "decisions": decisions,
        "observed": observed,
        "fallbacks": fallbacks.into_iter().map(|((from, to, cause), count)| json!({"from": from, "to": to, "cause": cause, "count": count})).collect::<Vec<_>>(),
        "retries": retries.into_iter().map(|((channel, cause), count)| json!({"channel": channel, "cause": cause, "count": count})).collect::<Vec<_>>(),
        "provider_failures": failures.into_iter().map(|(channel, count)| json!({"channel": channel, "count": count})).collect::<Vec<_>>(),
        "confirmations": {
            "asked": asked,
            "given": of("confirmation_accepted").count(),
            "abandoned": abandoned,
        },
        "threads": {
            "downgrades": of("thread_downgraded").count(),
            "elevations": of("thread_elevated").count(),
        },
        "portal": {
            "opens": of("portal_code_verified").count() + of("portal_opened_without_code").count(),
            "lockouts": of("portal_locked").count(),
        },
    })
}

/// Waits until the figures and the audit log agree and stay agreed while
/// the workers settle (about 10 s at most), and returns the figures.
async fn settled(app: &TestApp) -> Value {
    let mut agreed = 0;
    let mut last = (Value::Null, Value::Null);
    for _ in 0..100 {
        let s = figures(app, &app.sender, &last_hour()).await;
        let (got, want) = (collapse(&s), facts(&app.audit().await));
        if got == want {
            agreed += 1;
            if agreed == 3 {
                return s;
            }
        } else {
            agreed = 0;
        }
        last = (got, want);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "figures never matched the audit log:\nfigures {:#}\nfacts   {:#}",
        last.0, last.1
    );
}

async fn confirmation_token(app: &TestApp, id: &str) -> String {
    let t = app
        .post(
            &format!("/v1/messages/{id}/confirmation-token"),
            &app.sender,
            json!({}),
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    t.body["confirmation_token"].as_str().unwrap().to_string()
}

async fn bare_recipient(app: &TestApp, external_id: &str) -> String {
    let a = app
        .post(
            "/v1/recipients",
            &app.sender,
            json!({ "external_id": external_id }),
        )
        .await;
    assert!(a.status.is_success(), "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

/// A recipient with no way to reach them (returned), sent one payroll
/// notice (escalated) and one HR case (blocked).
async fn escalate_and_block(app: &TestApp, external_id: &str) -> String {
    let bare = bare_recipient(app, external_id).await;
    let e = app
        .send(&format!("{external_id}-e"), &bare, "payroll", "x")
        .await;
    assert_eq!(e.body["outcome"], "escalate", "{}", e.text);
    let b = app
        .send(&format!("{external_id}-b"), &bare, "hr_case", "x")
        .await;
    assert_eq!(b.body["outcome"], "block", "{}", b.text);
    bare
}

async fn figures_equal_what_the_audit_log_says_happened(backend: Backend) {
    let Some(mut app) = TestApp::start(backend).await else {
        return;
    };
    // Delivered end to end encrypted, escalated, blocked, observed.
    let r = app.recipient("emp-1").await;
    let (device, key) = app.enrol(&r, 23).await;
    assert_eq!(app.handshake(&device, &key).await.status, StatusCode::OK);
    // A second person the same way: one confirmation is given, the other
    // abandoned, and a confirmed portal delivery lowers its thread's label.
    let r2 = app.recipient("emp-2").await;
    let (device2, key2) = app.enrol(&r2, 29).await;
    assert_eq!(app.handshake(&device2, &key2).await.status, StatusCode::OK);
    for (idem, who) in [("p-1", &r), ("p-2", &r2)] {
        let p = app.send(idem, who, "payroll", "salary 1").await;
        assert_eq!(p.status, StatusCode::ACCEPTED, "{}", p.text);
        assert_eq!(
            p.body["decision"]["outcome"]["route"]["container"],
            "in_app"
        );
        app.wait_status(p.body["id"].as_str().unwrap(), "sent")
            .await;
    }
    escalate_and_block(&app, "emp-bare").await;
    // Observed on another recipient: its legacy route must not lower the
    // label of the thread the payroll confirmations below depend on.
    let watched = app.recipient("emp-watched").await;
    let o = app
        .send("o-1", &watched, "support_escalation", "ticket")
        .await;
    assert_eq!(o.body["decision"]["mode"], "observe", "{}", o.text);

    // In-app now fails for good and e-mail once: payroll falls back to the
    // portal below what the thread showed and waits for confirmation.
    app.restart(|c| {
        let fail = &mut c.channels.sandbox.fail;
        fail.insert(Channel::InApp, Failure::Permanent);
        fail.insert(Channel::Email, Failure::Transient { times: 1 });
    })
    .await;
    let given = app.send("c-1", &r, "payroll", "salary 2").await;
    let given = given.body["id"].as_str().unwrap().to_string();
    app.wait_status(&given, "awaiting_confirmation").await;
    let token = confirmation_token(&app, &given).await;
    let ok = app
        .post(
            &format!("/v1/messages/{given}/confirm"),
            &app.sender,
            json!({ "token": token }),
        )
        .await;
    assert_eq!(ok.status, StatusCode::ACCEPTED, "{}", ok.text);
    app.wait_status(&given, "sent").await;
    let abandoned = app.send("c-2", &r2, "payroll", "salary 3").await;
    let abandoned = abandoned.body["id"].as_str().unwrap().to_string();
    app.wait_status(&abandoned, "awaiting_confirmation").await;
    let revoked = app
        .post(
            &format!("/v1/messages/{abandoned}/revoke"),
            &app.sender,
            json!({}),
        )
        .await;
    assert!(revoked.status.is_success(), "{}", revoked.text);

    // An override distrusting in-app E2EE drops the thread's floor; once
    // cleared, a fresh handshake may raise it again.
    let set = app
        .post(
            "/v1/overrides",
            &app.admin,
            json!({ "id": "inapp-distrust", "channel": "in_app", "effect": "distrust_e2ee", "reason": "incident", "expires_in": "4h" }),
        )
        .await;
    assert_eq!(set.status, StatusCode::CREATED, "{}", set.text);
    let d = app.send("d-1", &r2, "payroll", "salary 4").await;
    assert_eq!(d.body["outcome"], "confirmation_required", "{}", d.text);
    let cleared = app
        .request(
            reqwest::Method::DELETE,
            "/v1/overrides/inapp-distrust",
            Some(&app.admin.clone()),
            None,
            &[],
        )
        .await;
    assert!(cleared.status.is_success(), "{}", cleared.text);
    assert_eq!(app.handshake(&device2, &key2).await.status, StatusCode::OK);

    let s = settled(&app).await;
    // The run did what it set out to: each kind of figure is non-zero.
    assert!(!s["fallbacks"].as_array().unwrap().is_empty(), "{s:#}");
    assert!(!s["retries"].as_array().unwrap().is_empty(), "{s:#}");
    assert!(!s["provider_failures"].as_array().unwrap().is_empty());
    assert_eq!(s["confirmations"]["given"], 1, "{s:#}");
    assert_eq!(s["confirmations"]["abandoned"], 1, "{s:#}");
    assert!(s["confirmations"]["asked"].as_i64().unwrap() >= 3, "{s:#}");
    assert!(s["threads"]["downgrades"].as_i64().unwrap() >= 1, "{s:#}");
    let rates = &s["rates"];
    assert!(rates["escalated"].as_i64().unwrap() >= 1, "{s:#}");
    assert!(rates["blocked"].as_i64().unwrap() >= 1, "{s:#}");
    assert!(rates["delivered"].as_i64().unwrap() >= 1, "{s:#}");
    let by_outcome: i64 = [
        "delivered",
        "blocked",
        "escalated",
        "held",
        "confirmation_required",
    ]
    .iter()
    .map(|k| rates[*k].as_i64().unwrap())
    .sum();
    assert_eq!(rates["total"], by_outcome, "{s:#}");
    // Observe: the route used beside the one enforcement would have taken,
    // as the message's own decision records them.
    let m = app
        .get(
            &format!("/v1/messages/{}", o.body["id"].as_str().unwrap()),
            &app.sender,
        )
        .await;
    let label = |o: &Value| match o["route"]["container"].as_str() {
        Some(c) => match o["route"]["notifier"].as_str() {
            Some(n) => format!("{c}+{n}"),
            None => c.to_string(),
        },
        None => o["outcome"].as_str().unwrap().to_string(),
    };
    let decision = &m.body["decision"];
    let (legacy, would) = (label(&decision["outcome"]), label(&decision["enforced"]));
    assert_eq!(
        s["observe"],
        json!([{ "class": "support_escalation", "legacy_route": legacy, "would_have_route": would, "count": 1 }])
    );
    let differ = i64::from(legacy != would);
    assert_eq!(
        s["observe_share"],
        json!([{ "class": "support_escalation", "total": 1, "differ": differ, "share": differ as f64 }])
    );
    // The class view is the same figures for one class only.
    let n = now();
    let c = figures(
        &app,
        &app.sender,
        &format!(
            "/v1/stats/classes/payroll?since={}&until={}&bucket=hour",
            n - 3_600,
            n + 60
        ),
    )
    .await;
    let decisions = c["decisions"].as_array().unwrap();
    assert!(!decisions.is_empty());
    assert!(decisions.iter().all(|d| d["class"] == "payroll"), "{c:#}");
    assert!(c["observe"].as_array().unwrap().is_empty(), "{c:#}");
    app.stop().await;
}

async fn decisions_summed_over_buckets_equal_messages_sent(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = app.recipient("emp-sum").await;
    let bare = bare_recipient(&app, "emp-sum-bare").await;
    // Each of these is decided once: delivered, escalated, blocked.
    let sends = [
        (&r, "payroll"),
        (&r, "marketing"),
        (&bare, "payroll"),
        (&bare, "hr_case"),
    ];
    let mut sent = 0;
    for round in 0..3 {
        for (i, (who, class)) in sends.iter().enumerate() {
            let a = app.send(&format!("s-{round}-{i}"), who, class, "x").await;
            assert!(
                a.status.is_success() || a.status == StatusCode::UNPROCESSABLE_ENTITY,
                "{}",
                a.text
            );
            sent += 1;
        }
    }
    let n = now();
    for bucket in ["minute", "hour", "day"] {
        let s = figures(
            &app,
            &app.sender,
            &format!(
                "/v1/stats?since={}&until={}&bucket={bucket}",
                n - 3_600,
                n + 60
            ),
        )
        .await;
        let sum: i64 = s["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["count"].as_i64().unwrap())
            .sum();
        assert_eq!(sum, sent, "{bucket}: {s:#}");
        assert_eq!(s["rates"]["total"], sent, "{bucket}");
    }
    app.stop().await;
}

/// Midnight UTC, 2023-11-15.
const DAY: i64 = 1_700_006_400;

async fn buckets_start_on_minute_hour_and_day_boundaries(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let store = &app.state().store;
    let dims = Dims {
        class: "payroll".into(),
        d1: String::new(),
        d2: "escalate".into(),
        d3: "enforce".into(),
    };
    for at in [DAY - 1, DAY, DAY + 59, DAY + 60, DAY + 3_599, DAY + 3_600] {
        let mut tx = store.begin().await.unwrap();
        stats::bump(&mut tx, &app.tenant, at, Metric::Decision, &dims, 1)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let buckets = |s: &Value| -> Vec<(i64, i64)> {
        s["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                assert_eq!(d["route"], Value::Null);
                (
                    d["bucket_start"].as_i64().unwrap(),
                    d["count"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let get = |since: i64, until: i64, bucket: &str| {
        format!("/v1/stats?since={since}&until={until}&bucket={bucket}")
    };
    let s = figures(&app, &app.sender, &get(DAY - 60, DAY + 3_660, "minute")).await;
    assert_eq!(
        buckets(&s),
        [
            (DAY - 60, 1),
            (DAY, 2),
            (DAY + 60, 1),
            (DAY + 3_540, 1),
            (DAY + 3_600, 1)
        ]
    );
    let s = figures(&app, &app.sender, &get(DAY - 3_600, DAY + 7_200, "hour")).await;
    assert_eq!(buckets(&s), [(DAY - 3_600, 1), (DAY, 4), (DAY + 3_600, 1)]);
    let s = figures(&app, &app.sender, &get(DAY - 86_400, DAY + 86_400, "day")).await;
    assert_eq!(buckets(&s), [(DAY - 86_400, 1), (DAY, 5)]);
    // `until` is exclusive; `since` inside a bucket takes the whole bucket.
    let s = figures(&app, &app.sender, &get(DAY + 30, DAY + 60, "minute")).await;
    assert_eq!(buckets(&s), [(DAY, 2)]);
    assert_eq!(s["since"], DAY + 30);
    app.stop().await;
}

async fn another_tenant_sees_none_of_the_figures(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    escalate_and_block(&app, "emp-iso").await;
    let mut tx = app.state().store.begin().await.unwrap();
    stats::bump(
        &mut tx,
        &app.tenant,
        now(),
        Metric::PortalLockout,
        &Dims::class("payroll"),
        1,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let theirs = figures(&app, &app.sender, &last_hour()).await;
    assert_eq!(theirs["rates"]["total"], 2, "{theirs:#}");
    assert_eq!(theirs["portal"]["lockouts"], 1, "{theirs:#}");

    let policy = ladder_server::app::DEMO_POLICY.replace("tenant = \"acme\"", "tenant = \"beta\"");
    let beta = app.other_tenant("beta", &policy).await;
    let n = now();
    for path in [
        last_hour(),
        format!(
            "/v1/stats/classes/payroll?since={}&until={}",
            n - 3_600,
            n + 60
        ),
        format!(
            "/v1/stats?since={}&until={}&bucket=day",
            n - 86_400 * 30,
            n + 60
        ),
    ] {
        let s = figures(&app, &beta, &path).await;
        for list in [
            "decisions",
            "fallbacks",
            "retries",
            "provider_failures",
            "observe",
            "observe_share",
        ] {
            assert_eq!(s[list], json!([]), "{path}: {s:#}");
        }
        assert_eq!(s["rates"]["total"], 0, "{path}");
        assert_eq!(s["portal"]["lockouts"], 0, "{path}");
    }
    // And A's figures did not move.
    assert_eq!(
        figures(&app, &app.sender, &last_hour()).await["rates"],
        theirs["rates"]
    );
    app.stop().await;
}

async fn bad_parameters_are_refused_naming_the_parameter(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let before = app.written_rows().await;
    let n = now();
    for (query, param) in [
        ("since=yesterday".to_string(), "`since`"),
        ("until=1.5".to_string(), "`until`"),
        ("bucket=week".to_string(), "`bucket`"),
        ("since=-5".to_string(), "`since`"),
        (format!("since={n}&until={n}"), "`until`"),
        (
            format!("since={}&until={n}&bucket=minute", n - 86_401),
            "`bucket`",
        ),
        (format!("since=0&until={n}&bucket=hour"), "`since`"),
        ("class=no%20spaces".to_string(), "`class`"),
    ] {
        let a = app.get(&format!("/v1/stats?{query}"), &app.sender).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{query}: {}", a.text);
        let message = a.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(param), "{query}: {message}");
    }
    let unknown = app.get("/v1/stats?clas=payroll", &app.sender).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.text);
    let path_and_query = app
        .get("/v1/stats/classes/payroll?class=payroll", &app.sender)
        .await;
    assert_eq!(path_and_query.status, StatusCode::BAD_REQUEST);
    let no_key = app
        .request(reqwest::Method::GET, "/v1/stats", None, None, &[])
        .await;
    assert_eq!(no_key.status, StatusCode::UNAUTHORIZED, "{}", no_key.text);
    assert_eq!(app.written_rows().await, before);
    app.stop().await;
}

async fn one_answer_has_the_documented_shape(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let bare = escalate_and_block(&app, "emp-shape").await;
    app.send("sh-3", &bare, "support_escalation", "x").await;
    // By day: three sends never straddle a bucket (but at midnight).
    let n = now();
    let mut s = figures(
        &app,
        &app.sender,
        &format!("/v1/stats?since={}&until={}&bucket=day", n - 3_600, n + 60),
    )
    .await;
    s["since"] = json!("[since]");
    s["until"] = json!("[until]");
    for d in s["decisions"].as_array_mut().unwrap() {
        d["bucket_start"] = json!("[bucket_start]");
    }
    // One snapshot for both backends: they must answer alike.
    insta::assert_json_snapshot!("stats_answer", s);
    app.stop().await;
}
