//! The operator console over HTTP, on both databases: sign-in and the
//! session cookie, every view, CSRF on every form, the kill switch
//! changing the next decision, and tenant isolation exactly as in the API.
//! (The browser suite in `crates/cli/tests/browser.rs` drives the same
//! pages in Chromium.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use serde_json::json;
use support::{Backend, TestApp};

/// A browser-like client of the console: no redirects followed, the
/// session cookie carried by hand.
struct Console {
    client: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Console {
    fn new(app: &TestApp) -> Console {
        Console {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.base.clone(),
            cookie: None,
        }
    }

    async fn sign_in(&mut self, key: &str) -> reqwest::Response {
        let res = self
            .client
            .post(format!("{}/console/login", self.base))
            .form(&[("key", key)])
            .send()
            .await
            .unwrap();
        if let Some(c) = res.headers().get(SET_COOKIE) {
            let c = c.to_str().unwrap().to_string();
            self.cookie = Some(c.split(';').next().unwrap().to_string());
        }
        res
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.text().await.unwrap())
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let mut req = self.client.post(format!("{}{path}", self.base)).form(form);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.text().await.unwrap())
    }

    /// The CSRF token the console's pages carry in their forms.
    async fn csrf(&self) -> String {
        let (_, html) = self.get("/console/overrides").await;
        let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
        html[at..].split('"').next().unwrap().to_string()
    }
}

/// A second tenant with the demo policy; answers its admin key.
async fn other_admin(app: &TestApp) -> String {
    let policy = ladder_server::app::DEMO_POLICY.replace("tenant = \"acme\"", "tenant = \"beta\"");
    let created = ladder_server::service::tenants::create(app.state(), "beta", &policy, "test")
        .await
        .unwrap();
    created
        .keys
        .iter()
        .find(|k| k.scope.as_str() == "admin")
        .unwrap()
        .token
        .clone()
}

async fn register(app: &TestApp, external: &str) -> String {
    let a = app
        .post(
            "/v1/recipients",
            &app.sender,
            json!({ "external_id": external, "email": "p@example.com", "phone": "+15550100" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

async fn signed_out_pages_lead_to_sign_in(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let mut c = Console::new(&app);
    for path in ["/console", "/console/messages", "/console/audit"] {
        let res = c
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(res.headers()[LOCATION], "/console/login");
    }
    // A cookie that is no session of ours is the same as none.
    c.cookie = Some(format!("ladder_console=ldr_console_{}", "a".repeat(64)));
    assert_eq!(c.get("/console").await.0, StatusCode::SEE_OTHER);
    let before = app.written_rows().await;
    // A sender key opens no console; nothing is written, no cookie given.
    let res = c.sign_in(&app.sender).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().get(SET_COOKIE).is_none());
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("not a live admin API key")
    );
    assert_eq!(app.written_rows().await, before);
    // The sign-in page itself is served with the strict headers.
    let (status, html) = c.get("/console/login").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Admin API key"));
}

async fn an_admin_reads_every_view(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let rid = register(&app, "emp-4711").await;
    let sent = app.send("console-1", &rid, "payroll", "payslip").await;
    let mid = sent.body["id"].as_str().unwrap().to_string();
    app.post("/v1/audit/checkpoints", &app.admin, json!({}))
        .await;

    let mut c = Console::new(&app);
    let res = c.sign_in(&app.admin).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/console");
    let cookie = res.headers()[SET_COOKIE].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    // Plain-HTTP public address: no `Secure`, no `__Host-` prefix.
    assert!(
        cookie.starts_with("ladder_console=ldr_console_"),
        "{cookie}"
    );

    for path in [
        "/console",
        "/console/messages",
        "/console/recipients",
        "/console/overrides",
        "/console/audit",
    ] {
        let res = c
            .client
            .get(format!("{}{path}", app.base))
            .header("cookie", c.cookie.as_deref().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let csp = res.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert_eq!(res.headers()["x-frame-options"], "DENY");
        assert_eq!(res.headers()["cache-control"], "no-store");
        let html = res.text().await.unwrap();
        assert!(!html.contains("payslip"), "content on {path}");
    }

    // The dashboard counts the decision (from the stats the service keeps).
    let (_, home) = c.get("/console?window=1h").await;
    assert!(
        home.contains("<div class=\"figure\">1</div><div class=\"figure-label\">decisions</div>"),
        "{home}"
    );
    assert!(home.contains("<svg"), "charts are drawn server-side");
    let (status, _) = c.get("/console?window=1y").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Find the message by the person's own id, then read why.
    let (_, found) = c.get("/console/messages?recipient=emp-4711").await;
    assert!(found.contains(&mid), "{found}");
    let (_, none) = c.get("/console/messages?recipient=emp-0000").await;
    assert!(!none.contains(&mid));
    let (status, page) = c.get(&format!("/console/messages/{mid}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"explanation\""));
    assert!(page.contains("id=\"steps\""));
    assert!(
        page.contains("included in signed checkpoint"),
        "the decision's audit entry is proven against the checkpoint"
    );
    assert!(!page.contains("payslip"));
    // Bad filters are the API's own errors, shown as a page.
    let (status, page) = c.get("/console/messages?status=lost").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("query `status` must be one of"), "{page}");

    let (status, person) = c.get(&format!("/console/recipients/{rid}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(person.contains("emp-4711") && person.contains(&mid));
    assert!(!person.contains("p@example.com") && !person.contains("+15550100"));

    let (_, audit) = c.get("/console/audit").await;
    assert!(audit.contains("id=\"signature\""));
    assert!(!audit.contains("verification failed"), "{audit}");
    assert!(audit.contains("console_signed_in"));
}

async fn forms_without_the_session_csrf_change_nothing(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let mut c = Console::new(&app);
    c.sign_in(&app.admin).await;
    let before = app.written_rows().await;
    let form = [
        ("id", "rcs-off"),
        ("channel", "rcs"),
        ("effect", "disable"),
        ("reason", "test"),
        ("expires_in_hours", "4"),
    ];
    for csrf in [None, Some("forged")] {
        let mut f = form.to_vec();
        if let Some(t) = csrf {
            f.push(("csrf", t));
        }
        let (status, _) = c.post("/console/overrides", &f).await;
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::BAD_REQUEST,
            "{status}"
        );
    }
    assert_eq!(app.written_rows().await, before);
    // Another session's token is not this session's.
    let mut other = Console::new(&app);
    other.sign_in(&app.admin).await;
    let theirs = other.csrf().await;
    assert_ne!(theirs, c.csrf().await);
    let mut f = form.to_vec();
    f.push(("csrf", &theirs));
    assert_eq!(
        c.post("/console/overrides", &f).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.written_rows().await, before);
}

async fn the_kill_switch_changes_the_next_decision(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let rid = register(&app, "emp-1").await;
    let route = |a: &support::Answer| a.body["decision"]["outcome"]["route"].clone();
    let first = app.send("ks-1", &rid, "payroll", "one").await;
    let before = route(&first);
    let notifier = before["notifier"].as_str().unwrap().to_string();
    let channel = notifier.trim_end_matches("_notice").to_string();

    let mut c = Console::new(&app);
    c.sign_in(&app.admin).await;
    let csrf = c.csrf().await;
    let (status, page) = c
        .post(
            "/console/overrides",
            &[
                ("csrf", &csrf),
                ("id", "notice-off"),
                ("channel", &channel),
                ("effect", "disable"),
                ("reason", "provider incident"),
                ("expires_in_hours", "4"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Override `notice-off` is active"));
    assert!(page.contains("Affects now"));
    let second = app.send("ks-2", &rid, "payroll", "two").await;
    assert_ne!(route(&second), before, "{}", second.text);

    let (status, _) = c
        .post("/console/overrides/notice-off/clear", &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::OK);
    let third = app.send("ks-3", &rid, "payroll", "three").await;
    assert_eq!(route(&third), before);

    let audit = app.audit().await;
    let set = audit
        .iter()
        .find(|e| e["kind"] == "override_set")
        .expect("audited");
    assert!(
        set["actor"].as_str().unwrap().ends_with("(console)"),
        "{set}"
    );
    assert!(audit.iter().any(|e| e["kind"] == "override_cleared"));
}

async fn another_tenants_admin_sees_nothing(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let rid = register(&app, "emp-secret").await;
    let sent = app.send("iso-1", &rid, "payroll", "x").await;
    let mid = sent.body["id"].as_str().unwrap().to_string();
    let mut b = Console::new(&app);
    let res = b.sign_in(&other_admin(&app).await).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        b.get(&format!("/console/messages/{mid}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        b.get(&format!("/console/recipients/{rid}")).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, list) = b.get("/console/messages").await;
    assert!(!list.contains(&mid));
    let (_, people) = b.get("/console/recipients?external_id=emp-secret").await;
    assert!(!people.contains(&rid));
    let (_, home) = b.get("/console").await;
    assert!(home.contains("beta") && !home.contains("acme"));
}

async fn signing_out_ends_the_session(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let mut c = Console::new(&app);
    c.sign_in(&app.admin).await;
    let csrf = c.csrf().await;
    assert_eq!(c.get("/console").await.0, StatusCode::OK);
    let (status, _) = c.post("/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // The old cookie, replayed, opens nothing.
    assert_eq!(c.get("/console").await.0, StatusCode::SEE_OTHER);
    let audit = app.audit().await;
    assert!(audit.iter().any(|e| e["kind"] == "console_signed_out"));
}

/// An e-mail-only person: payroll escalates (no channel for the portal's
/// code). Answers the recipient and the escalated message.
async fn escalated_payroll(app: &TestApp, external: &str, idem: &str) -> (String, String) {
    let a = app
        .post(
            "/v1/recipients",
            &app.sender,
            json!({ "external_id": external, "email": "e@example.com" }),
        )
        .await;
    let rid = a.body["id"].as_str().unwrap().to_string();
    let sent = app.send(idem, &rid, "payroll", "payslip").await;
    assert_eq!(sent.body["outcome"], "escalate", "{}", sent.text);
    (rid, sent.body["id"].as_str().unwrap().to_string())
}

async fn the_escalation_queue_is_worked_from_the_console(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let (rid, stuck) = escalated_payroll(&app, "emp-q1", "q-1").await;
    let (_, doomed) = escalated_payroll(&app, "emp-q2", "q-2").await;
    let mut c = Console::new(&app);
    c.sign_in(&app.admin).await;
    let csrf = c.csrf().await;
    let (status, queue) = c.get("/console/escalations").await;
    assert_eq!(status, StatusCode::OK);
    assert!(queue.contains(&stuck) && queue.contains(&doomed));
    assert!(
        queue.contains("no_step_up_channel"),
        "the explanation is shown"
    );

    // Nothing qualifies yet: the core refuses the operator's route, and
    // nothing changes.
    let (status, page) = c
        .post(
            &format!("/console/escalations/{stuck}/send"),
            &[
                ("csrf", &csrf),
                ("route", "in_app+push_notice"),
                ("reason", "urgent"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    // A reason is required.
    let (status, _) = c
        .post(
            &format!("/console/escalations/{doomed}/block"),
            &[("csrf", &csrf), ("reason", "")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The person's app proves itself (strictly after the thread's floor
    // was set, at the clock's one-second resolution): now in-app is
    // permitted.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (device, key) = app.enrol(&rid, 3).await;
    app.handshake(&device, &key).await;
    let (status, page) = c
        .post(
            &format!("/console/escalations/{stuck}/send"),
            &[
                ("csrf", &csrf),
                ("route", "in_app+push_notice"),
                ("reason", "payroll deadline"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("queued for delivery by in_app+push_notice"),
        "{page}"
    );
    app.wait_status(&stuck, "sent").await;

    let (status, page) = c
        .post(
            &format!("/console/escalations/{doomed}/block"),
            &[("csrf", &csrf), ("reason", "wrong person")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("blocked"));
    let (_, queue) = c.get("/console/escalations").await;
    assert!(!queue.contains(&stuck) && !queue.contains(&doomed));
    let audit = app.audit().await;
    for (kind, reason) in [
        ("escalation_sent", "payroll deadline"),
        ("escalation_blocked", "wrong person"),
    ] {
        let e = audit.iter().find(|e| e["kind"] == kind).expect(kind);
        assert!(e["actor"].as_str().unwrap().starts_with("api-key:"), "{e}");
        assert_eq!(e["details"]["reason"], reason, "{e}");
    }
}

async fn the_rollout_panel_publishes_enforcement(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let mut c = Console::new(&app);
    c.sign_in(&app.admin).await;
    let csrf = c.csrf().await;
    let (status, page) = c.get("/console/classes/support_escalation").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"rollout\""), "{page}");
    assert!(page.contains("-mode = &#34;observe&#34;"), "{page}");
    assert!(page.contains("+mode = &#34;enforce&#34;"), "{page}");
    // An enforced class has no rollout panel; an unknown one is a 404.
    let (_, payroll) = c.get("/console/classes/payroll").await;
    assert!(!payroll.contains("id=\"rollout\""));
    assert_eq!(
        c.get("/console/classes/nope").await.0,
        StatusCode::NOT_FOUND
    );

    // A diff reviewed against an older revision publishes nothing.
    let before = app.written_rows().await;
    let (status, _) = c
        .post(
            "/console/classes/support_escalation/enforce",
            &[("csrf", &csrf), ("revision", "3")],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(app.written_rows().await, before);

    let (status, _) = c
        .post(
            "/console/classes/support_escalation/enforce",
            &[("csrf", &csrf), ("revision", "4")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let policy = app.get("/v1/policy", &app.sender).await;
    assert_eq!(policy.body["revision"], 5);
    assert!(
        policy.body["source"]
            .as_str()
            .unwrap()
            .contains("name = \"support_escalation\"\nminimum = \"transport\"\nmode = \"enforce\"")
    );
    let (_, page) = c.get("/console/classes/support_escalation").await;
    assert!(!page.contains("id=\"rollout\""));
    let audit = app.audit().await;
    let published = audit
        .iter()
        .rfind(|e| e["kind"] == "policy_published")
        .unwrap();
    assert!(published["actor"].as_str().unwrap().ends_with("(console)"));

    // The versions page shows both revisions and what changed.
    let (status, versions) = c.get("/console/policy").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        versions.contains("<span class=\"add\">+mode = &#34;enforce&#34;</span>"),
        "{versions}"
    );
    let (status, _) = c.get("/console/policy?from=99&to=5").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

both_backends!(
    signed_out_pages_lead_to_sign_in,
    an_admin_reads_every_view,
    forms_without_the_session_csrf_change_nothing,
    the_kill_switch_changes_the_next_decision,
    another_tenants_admin_sees_nothing,
    signing_out_ends_the_session,
    the_escalation_queue_is_worked_from_the_console,
    the_rollout_panel_publishes_enforcement,
);
