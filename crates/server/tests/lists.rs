//! `GET /v1/messages` and `GET /v1/recipients` on SQLite and PostgreSQL:
//! newest first, cursor pages that never repeat or skip, filters, hostile
//! filters refused, and another tenant's rows never listed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use serde_json::{Value, json};
use support::{Backend, StatusCode, TestApp};

fn ids(body: &Value, key: &str) -> Vec<String> {
    body[key]
        .as_array()
        .unwrap_or_else(|| panic!("no `{key}` in {body:#}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every page of `path` (which has a query already), following cursors.
async fn all_pages(app: &TestApp, path: &str, key: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let url = match &cursor {
            None => path.to_string(),
            Some(c) => format!("{path}&cursor={c}"),
        };
        let a = app.get(&url, &app.sender.clone()).await;
        assert_eq!(a.status, StatusCode::OK, "{url}: {}", a.text);
        pages.push(ids(&a.body, key));
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return pages,
        }
    }
    panic!("more than 50 pages of {path}");
}

async fn messages_are_listed_newest_first_in_pages_and_filtered(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .config(|c| c.delivery.workers = 0)
        .start()
        .await
    else {
        return;
    };
    let ana = app.recipient("emp-ana").await;
    let bo = app.recipient("emp-bo").await;
    let mut sent = Vec::new();
    for i in 0..7 {
        let (r, class) = if i % 2 == 0 {
            (&ana, "payroll")
        } else {
            (&bo, "marketing")
        };
        let a = app.send(&format!("list-{i}"), r, class, "hello").await;
        assert!(
            a.status.is_success() || a.status == StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            a.text
        );
        sent.push(a.body["id"].as_str().unwrap().to_string());
    }
    let pages = all_pages(&app, "/v1/messages?limit=3", "messages").await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 3, 1]
    );
    let listed: Vec<String> = pages.concat();
    let mut newest_first = sent.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first, "every message once, newest first");

    let by_person = app.get("/v1/messages?recipient=emp-ana", &app.sender).await;
    assert_eq!(
        ids(&by_person.body, "messages").len(),
        4,
        "{}",
        by_person.text
    );
    let by_class = app.get("/v1/messages?class=marketing", &app.sender).await;
    assert_eq!(
        ids(&by_class.body, "messages").len(),
        3,
        "{}",
        by_class.text
    );
    assert!(
        by_class.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["class"] == "marketing")
    );
    let one = &by_person.body["messages"][0];
    assert!(
        one["outcome"].is_string() && one["mode"].is_string(),
        "{one:#}"
    );
    let by_status = app.get("/v1/messages?status=queued", &app.sender).await;
    assert!(
        by_status.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["status"] == "queued")
    );
    // What the decision said: outcome, route and mode, as lists keep them.
    let delivered = app.get("/v1/messages?outcome=deliver", &app.sender).await;
    let listed = delivered.body["messages"].as_array().unwrap();
    assert!(!listed.is_empty(), "{}", delivered.text);
    assert!(
        listed.iter().all(|m| m["outcome"] == "deliver"),
        "{}",
        delivered.text
    );
    let route = listed[0]["route"].as_str().unwrap().to_string();
    let by_route = app
        // `+` is a space in a query string: it is sent as `%2B`.
        .get(
            &format!("/v1/messages?route={}", route.replace('+', "%2B")),
            &app.sender,
        )
        .await;
    let on_route = by_route.body["messages"].as_array().unwrap();
    assert!(!on_route.is_empty() && on_route.iter().all(|m| m["route"] == route.as_str()));
    let enforce = app.get("/v1/messages?mode=enforce", &app.sender).await;
    let observe = app.get("/v1/messages?mode=observe", &app.sender).await;
    assert_eq!(
        ids(&enforce.body, "messages").len() + ids(&observe.body, "messages").len(),
        7,
        "every message is in one mode or the other"
    );
    let nobody = app
        .get("/v1/messages?recipient=emp-nobody", &app.sender)
        .await;
    assert_eq!(ids(&nobody.body, "messages").len(), 0);
    assert!(nobody.body["next_cursor"].is_null());
    app.stop().await;
}

async fn hostile_list_queries_are_refused_with_the_parameter_named(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    for (query, names) in [
        ("limit=0", "`limit`"),
        ("limit=100000", "`limit`"),
        ("limit=-1", "`limit`"),
        ("cursor=%00", "`cursor`"),
        ("cursor=bXNnX25vcGU", "`cursor`"),
        ("status=lost", "`status`"),
        ("class=%00", "`class`"),
        ("recipient=%00", "`recipient`"),
        ("thread=thr_%00", "`thread`"),
        (
            "recipient_id=msg_0196f0c4a2b37d1e8f00112233445566",
            "`recipient_id`",
        ),
        ("outcome=sent", "`outcome`"),
        ("mode=loud", "`mode`"),
        ("route=portal%2B%2Bemail", "`route`"),
        ("route=%00", "`route`"),
    ] {
        let a = app.get(&format!("/v1/messages?{query}"), &app.sender).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{query}: {}", a.text);
        assert!(
            a.body["error"]["message"].as_str().unwrap().contains(names),
            "{query}: {}",
            a.text
        );
    }
    let a = app.get("/v1/messages?colour=red", &app.sender).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert!(a.body["error"]["code"].is_string(), "{}", a.text);
    let a = app.get("/v1/recipients?external_id=%00", &app.sender).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    let a = app
        .request(reqwest::Method::GET, "/v1/messages", None, None, &[])
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
    app.stop().await;
}

async fn lists_never_show_another_tenants_rows(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let mine = app.recipient("emp-mine").await;
    app.send("iso-1", &mine, "payroll", "hello").await;
    let policy =
        ladder_server::app::DEMO_POLICY.replace("tenant = \"acme\"", "tenant = \"globex\"");
    let theirs = app.other_tenant("globex", &policy).await;
    let a = app.get("/v1/messages", &theirs).await;
    assert_eq!(ids(&a.body, "messages").len(), 0, "{}", a.text);
    let a = app.get("/v1/recipients", &theirs).await;
    assert_eq!(ids(&a.body, "recipients").len(), 0, "{}", a.text);
    let a = app.get("/v1/messages?recipient=emp-mine", &theirs).await;
    assert_eq!(ids(&a.body, "messages").len(), 0, "{}", a.text);
    // A cursor from one tenant's list shows nothing of it to another.
    let page = app.get("/v1/recipients?limit=1", &app.sender).await;
    assert_eq!(ids(&page.body, "recipients"), vec![mine.clone()]);
    let r = app
        .post(
            "/v1/recipients",
            &theirs,
            json!({"external_id": "g-1", "email": "g@example.com"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let a = app.get("/v1/recipients", &app.sender).await;
    assert_eq!(ids(&a.body, "recipients"), vec![mine]);
    app.stop().await;
}

async fn recipients_are_found_by_external_id(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(app.recipient(&format!("emp-{i}")).await);
    }
    let pages = all_pages(&app, "/v1/recipients?limit=2", "recipients").await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![2, 2, 1]
    );
    made.reverse();
    assert_eq!(pages.concat(), made);
    let one = app
        .get("/v1/recipients?external_id=emp-3", &app.sender)
        .await;
    let list = one.body["recipients"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", one.text);
    assert_eq!(list[0]["external_id"], "emp-3");
    assert_eq!(list[0]["has_email"], true);
    assert!(
        !one.text.contains("example.com"),
        "addresses are never listed: {}",
        one.text
    );
    app.stop().await;
}

both_backends!(
    messages_are_listed_newest_first_in_pages_and_filtered,
    hostile_list_queries_are_refused_with_the_parameter_named,
    lists_never_show_another_tenants_rows,
    recipients_are_found_by_external_id,
);
