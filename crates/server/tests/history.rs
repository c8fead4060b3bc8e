//! The operator's lists of what changed over time, on SQLite and
//! PostgreSQL: threads with their floors and last drop, published policy
//! versions with their sources and diffs, the override history and the
//! audit log's filters — each paged without repeats, filters and foreign
//! cursors refused, today's default answers unchanged, and another tenant
//! seeing none of it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use serde_json::{Value, json};
use support::{Backend, StatusCode, TestApp};

const ACME: &str = include_str!("../../../examples/policies/acme.toml");

/// Follows `next_cursor` from `path` (which has a query already); answers
/// every page's rows under `key`.
async fn pages(app: &TestApp, path: &str, key: &str, auth: &str) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let url = match &cursor {
            None => path.to_string(),
            Some(c) => format!("{path}&cursor={c}"),
        };
        let a = app.get(&url, auth).await;
        assert_eq!(a.status, StatusCode::OK, "{url}: {}", a.text);
        out.push(a.body[key].as_array().unwrap().clone());
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
    panic!("more than 20 pages of {path}");
}

fn field(rows: &[Value], name: &str) -> Vec<Value> {
    rows.iter().map(|r| r[name].clone()).collect()
}

async fn bad_requests(app: &TestApp, auth: &str, paths: &[String]) {
    for p in paths {
        let a = app.get(p, auth).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{p}: {}", a.text);
    }
}

/// Tenant B with the demo policy; answers its sender and admin keys.
async fn tenant_b(app: &TestApp) -> (String, String) {
    let policy = ACME.replace("tenant = \"acme\"", "tenant = \"globex\"");
    app.other_tenant_keys("globex", &policy).await
}

async fn threads_are_listed_with_their_floor_and_last_drop(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .config(|c| c.delivery.workers = 0)
        .start()
        .await
    else {
        return;
    };
    // One thread whose floor drops: opened over a verified device, which
    // is then revoked.
    let ana = app.recipient("emp-ana").await;
    let (device, key) = app.enrol(&ana, 7).await;
    let h = app.handshake(&device, &key).await;
    assert!(h.status.is_success(), "{}", h.text);
    let first = app.send("t-0", &ana, "payroll", "b").await;
    let dropping = first.body["thread"].as_str().unwrap().to_string();
    let revoked = app
        .post(
            &format!("/v1/devices/{device}/revoke"),
            &app.sender,
            json!({}),
        )
        .await;
    assert!(revoked.status.is_success(), "{}", revoked.text);
    app.send("t-1", &ana, "payroll", "b").await;
    for (i, name) in ["emp-bo", "emp-cy"].iter().enumerate() {
        let r = app.recipient(name).await;
        app.send(&format!("t-{}", i + 2), &r, "payroll", "b").await;
    }

    let all = pages(&app, "/v1/threads?limit=2", "threads", &app.sender).await;
    assert_eq!(all.len(), 2);
    let ids: Vec<Value> = all.concat().iter().map(|t| t["id"].clone()).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    let mut sorted = ids.clone();
    sorted.sort_by_key(|v| std::cmp::Reverse(v.as_str().unwrap().to_string()));
    assert_eq!(ids, sorted, "newest first, no repeat");
    let dropped = all
        .concat()
        .into_iter()
        .find(|t| t["id"] == dropping.as_str())
        .unwrap();
    assert!(dropped["dropped_at"].is_i64(), "{dropped:#}");
    assert_eq!(dropped["last_drop"]["from"], "e2ee", "{dropped:#}");
    assert_eq!(dropped["floor"], "none", "{dropped:#}");
    let others: Vec<Value> = all
        .concat()
        .into_iter()
        .filter(|t| t["id"] != dropping.as_str())
        .collect();
    assert!(others.iter().all(|t| t["dropped_at"].is_null()));

    let none = pages(&app, "/v1/threads?floor=none", "threads", &app.sender).await;
    assert!(field(&none.concat(), "floor").iter().all(|f| f == "none"));
    assert!(none.concat().iter().any(|t| t["id"] == dropping.as_str()));
    let attested = app
        .get("/v1/threads?floor=e2ee_attested", &app.sender)
        .await;
    assert_eq!(attested.body["threads"], json!([]), "{}", attested.text);
    let labelled = app.get("/v1/threads?label=transport", &app.sender).await;
    assert_eq!(labelled.status, StatusCode::OK, "{}", labelled.text);

    let messages = app.get("/v1/messages?limit=1", &app.sender).await;
    let foreign = messages.body["next_cursor"].as_str().unwrap();
    bad_requests(
        &app,
        &app.sender,
        &[
            format!("/v1/threads?cursor={foreign}"),
            "/v1/threads?floor=e2e".into(),
            "/v1/threads?label=".into(),
            "/v1/threads?limit=0".into(),
            "/v1/threads?name=x".into(),
        ],
    )
    .await;
    let (b_sender, _) = tenant_b(&app).await;
    let b = app.get("/v1/threads", &b_sender).await;
    assert_eq!(b.body["threads"], json!([]), "{}", b.text);
    app.stop().await;
}

async fn publish(app: &TestApp, text: &str) {
    let a = app
        .client
        .put(format!("{}/v1/policy", app.base))
        .bearer_auth(&app.admin)
        .body(text.to_string())
        .send()
        .await
        .unwrap();
    let a = support::checked("PUT", "/v1/policy", a).await;
    assert!(a.status.is_success(), "{}", a.text);
}

async fn policy_versions_are_listed_read_and_diffed(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .config(|c| c.delivery.workers = 0)
        .start()
        .await
    else {
        return;
    };
    let enforce = ACME
        .replace("revision = 4", "revision = 5")
        .replace("mode = \"observe\"\nlegacy", "mode = \"enforce\"\nlegacy");
    assert_ne!(enforce, ACME);
    publish(&app, &enforce).await;

    let all = pages(&app, "/v1/policy/versions?limit=1", "versions", &app.sender).await;
    assert_eq!(all.len(), 2);
    let rows = all.concat();
    assert_eq!(field(&rows, "revision"), [json!(5), json!(4)]);
    assert_eq!(field(&rows, "active"), [json!(true), json!(false)]);
    assert!(
        rows[0]["published_by"]
            .as_str()
            .unwrap()
            .starts_with("api-key:")
    );

    let four = app.get("/v1/policy/versions/4", &app.sender).await;
    assert_eq!(four.status, StatusCode::OK, "{}", four.text);
    assert_eq!(four.body["source"], ACME);
    let diff = app.get("/v1/policy/diff?from=4&to=5", &app.sender).await;
    assert_eq!(diff.status, StatusCode::OK, "{}", diff.text);
    let text = diff.body["diff"].as_str().unwrap();
    assert!(text.contains("-revision = 4\n+revision = 5\n"), "{text}");
    assert!(
        text.contains("-mode = \"observe\"\n+mode = \"enforce\"\n"),
        "{text}"
    );
    assert_eq!(diff.body["from"]["revision"], 4);
    assert_eq!(
        app.get("/v1/policy/diff?from=5&to=5", &app.sender)
            .await
            .body["diff"],
        ""
    );
    for missing in ["/v1/policy/versions/9", "/v1/policy/diff?from=4&to=9"] {
        let a = app.get(missing, &app.sender).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{missing}: {}", a.text);
    }
    bad_requests(
        &app,
        &app.sender,
        &[
            "/v1/policy/versions/four".into(),
            "/v1/policy/diff?from=4".into(),
            "/v1/policy/diff?from=-1&to=4".into(),
            "/v1/policy/versions?cursor=bXNn".into(),
            "/v1/policy/versions?since=1".into(),
        ],
    )
    .await;
    let (b_sender, _) = tenant_b(&app).await;
    let b = app.get("/v1/policy/versions", &b_sender).await;
    assert_eq!(
        field(b.body["versions"].as_array().unwrap(), "revision"),
        [json!(4)]
    );
    assert_eq!(
        app.get("/v1/policy/versions/5", &b_sender).await.status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

async fn override_history_pages_and_the_default_answer_is_unchanged(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .config(|c| c.delivery.workers = 0)
        .start()
        .await
    else {
        return;
    };
    let set = |id: &str| json!({ "id": id, "channel": "rcs", "effect": "disable", "reason": "incident", "expires_in": "1h" });
    assert_eq!(
        app.post("/v1/overrides", &app.admin, set("old"))
            .await
            .status,
        StatusCode::CREATED
    );
    let cleared = app.delete("/v1/overrides/old", &app.admin).await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text);
    assert_eq!(
        app.post("/v1/overrides", &app.admin, set("new"))
            .await
            .status,
        StatusCode::CREATED
    );
    let renewed = app
        .post(
            "/v1/overrides/new/renew",
            &app.admin,
            json!({ "expires_in": "2h" }),
        )
        .await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.text);

    let default = app.get("/v1/overrides", &app.sender).await;
    assert_eq!(default.status, StatusCode::OK);
    let keys: Vec<&String> = default.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["overrides"], "today's answer: {}", default.text);
    // A renewal closes the row and opens a new one: three rows.
    assert_eq!(default.body["overrides"].as_array().unwrap().len(), 3);

    let all = pages(
        &app,
        "/v1/overrides?state=all&limit=2",
        "overrides",
        &app.sender,
    )
    .await;
    assert_eq!(all.len(), 2, "{all:#?}");
    let rows = all.concat();
    assert_eq!(
        rows.iter()
            .map(|r| r["override"]["id"].clone())
            .collect::<Vec<_>>(),
        [json!("new"), json!("new"), json!("old")]
    );
    assert_eq!(
        field(&rows, "state"),
        [json!("active"), json!("renewed"), json!("cleared")]
    );
    assert_eq!(
        field(&rows, "opened_by"),
        [json!("renewal"), json!("set"), json!("set")]
    );
    let active = app.get("/v1/overrides?state=active", &app.sender).await;
    let active = active.body["overrides"].as_array().unwrap().clone();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["override"]["id"], "new");
    assert_eq!(active[0]["opened_by"], "renewal");

    bad_requests(
        &app,
        &app.sender,
        &[
            "/v1/overrides?state=expired".into(),
            "/v1/overrides?limit=500".into(),
            "/v1/overrides?cursor=bXNnXzAx".into(),
            "/v1/overrides?channel=rcs".into(),
        ],
    )
    .await;
    let (b_sender, _) = tenant_b(&app).await;
    let b = app.get("/v1/overrides?state=all", &b_sender).await;
    assert_eq!(b.body["overrides"], json!([]), "{}", b.text);
    app.stop().await;
}

async fn the_audit_log_filters_by_kind_and_message_and_pages_by_cursor(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .config(|c| c.delivery.workers = 0)
        .start()
        .await
    else {
        return;
    };
    let r = app.recipient("emp-audit").await;
    let mut sent = Vec::new();
    for i in 0..3 {
        let a = app.send(&format!("a-{i}"), &r, "payroll", "b").await;
        sent.push(a.body["id"].as_str().unwrap().to_string());
    }
    let decisions = pages(
        &app,
        "/v1/audit?kind=decision&limit=2",
        "entries",
        &app.admin,
    )
    .await;
    assert_eq!(decisions.len(), 2);
    let rows = decisions.concat();
    assert!(field(&rows, "kind").iter().all(|k| k == "decision"));
    assert_eq!(
        field(&rows, "subject"),
        sent.iter().map(|s| json!(s)).collect::<Vec<_>>(),
        "oldest first, no repeat"
    );
    let about = app
        .get(&format!("/v1/audit?message={}", sent[1]), &app.admin)
        .await;
    let about = about.body["entries"].as_array().unwrap().clone();
    assert!(!about.is_empty());
    assert!(
        field(&about, "subject")
            .iter()
            .all(|s| s == sent[1].as_str())
    );

    // Today's answer: `after`, `limit` and `next_after` as before.
    let plain = app.get("/v1/audit?after=0&limit=1000", &app.admin).await;
    assert!(plain.body["next_after"].is_i64(), "{}", plain.text);
    assert!(plain.body["next_cursor"].is_null());
    let threads = app.get("/v1/threads?limit=1", &app.sender).await;
    let foreign = threads.body["next_cursor"].as_str().unwrap_or("dGhyXzAx");
    bad_requests(
        &app,
        &app.admin,
        &[
            format!("/v1/audit?cursor={foreign}"),
            "/v1/audit?cursor=MQ&after=3".into(),
            "/v1/audit?kind=Decision;".into(),
            "/v1/audit?message=rcp_1".into(),
            "/v1/audit?subject=x".into(),
        ],
    )
    .await;
    let (_, b_admin) = tenant_b(&app).await;
    let b = app
        .get(&format!("/v1/audit?message={}", sent[0]), &b_admin)
        .await;
    assert_eq!(b.body["entries"], json!([]), "{}", b.text);
    app.stop().await;
}

both_backends!(
    threads_are_listed_with_their_floor_and_last_drop,
    policy_versions_are_listed_read_and_diffed,
    override_history_pages_and_the_default_answer_is_unchanged,
    the_audit_log_filters_by_kind_and_message_and_pages_by_cursor,
);
