//! The console and the portal in a real browser: headless Chromium driven
//! over WebDriver (chromedriver), on both databases.
//!
//! An operator signs in, reads the dashboard, finds a message by the
//! person's own id, reads why it went the way it did, blocks an escalated
//! message, reads a class's rollout panel and the policy versions,
//! switches a channel off and sees the next decision change, clears it,
//! reads the audit log and signs out; another tenant's admin sees none of
//! it. A recipient opens a portal link, asks
//! for a code and reads the message. Every view is saved as a screenshot
//! at desktop width and at 390 px (`target/browser-screenshots/`), and
//! every page must load without a console error or a failed request.
//!
//! Needs `LADDER_TEST_CHROMEDRIVER` (the chromedriver binary; `.ci/run`
//! installs Debian's `chromium` and `chromium-driver` and sets it).
//! Without it the suite says so and passes nothing off as run: each test
//! prints that it was skipped, as the PostgreSQL variants do without a
//! database URL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use support::{Backend, StatusCode, TestApp};

const WIDTHS: [(u32, &str); 2] = [(1280, "desktop"), (390, "phone")];

/// A chromedriver of our own on a free loopback port, and a browser session.
struct Browser {
    driver: tokio::process::Child,
    client: Client,
    port: u16,
    shots: PathBuf,
    base: String,
}

impl Browser {
    async fn start(app: &TestApp, backend: Backend) -> Option<Browser> {
        let Ok(driver) = std::env::var("LADDER_TEST_CHROMEDRIVER") else {
            println!("skipping browser test: LADDER_TEST_CHROMEDRIVER not set");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let binary = std::env::var("LADDER_TEST_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
        let caps = json!({
            "goog:chromeOptions": {
                "binary": binary,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-extensions", "--hide-scrollbars",
                    "--window-size=1280,900",
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let caps = caps.as_object().cloned().unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let mut client = None;
        for _ in 0..100 {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/browser-screenshots")
            .join(match backend {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgres",
            });
        std::fs::create_dir_all(&shots).unwrap();
        Some(Browser {
            driver: child,
            client: client.expect("a chromedriver session"),
            port,
            shots,
            base: app.base.clone(),
        })
    }

    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    /// Waits (up to 5 s) for the page at `want` after a click that navigates.
    async fn wait_path(&self, want: &str) {
        for _ in 0..50 {
            if self.path().await == want
                && self
                    .client
                    .execute("return document.readyState;", vec![])
                    .await
                    .unwrap()
                    == "complete"
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let text = self.text("body").await;
        panic!("still at {} instead of {want}: {text}", self.path().await);
    }

    /// The text of the first element matching `css`, waiting (up to 5 s)
    /// for a page that is still loading after a form was sent.
    async fn text(&self, css: &str) -> String {
        let mut last = String::new();
        for _ in 0..50 {
            match self.client.find(Locator::Css(css)).await {
                Ok(e) => match e.text().await {
                    Ok(t) => return t,
                    Err(err) => last = err.to_string(),
                },
                Err(err) => last = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("`{css}`: {last}");
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("`{css}`: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// The browser's console entries since the last call: errors (a
    /// refused stylesheet, a CSP violation, a failed request) fail the page.
    async fn console_errors(&self) -> Vec<String> {
        let sid = self.client.session_id().await.unwrap().unwrap();
        let logs: Value = reqwest::Client::new()
            .post(format!(
                "http://127.0.0.1:{}/session/{sid}/se/log",
                self.port
            ))
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        logs["value"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Resources the page loaded that answered an error.
    async fn failed_requests(&self) -> Vec<String> {
        let v = self
            .client
            .execute(
                "return performance.getEntriesByType('resource')\
                 .filter(e => e.responseStatus >= 400 || e.responseStatus === 0)\
                 .map(e => e.name + ' ' + e.responseStatus);",
                vec![],
            )
            .await
            .unwrap();
        serde_json::from_value(v).unwrap()
    }

    /// Checks a console page loaded cleanly and saves it at both widths.
    async fn view(&self, name: &str) {
        self.check_and_save(name, "").await;
    }

    /// [`Browser::view`] for a portal page in `lang`: its own stylesheet
    /// and the tenant's colours applied, and at 390 px every control at
    /// least 44 px in both directions. Saved as `{name}-{width}-{lang}`.
    async fn view_portal(&self, name: &str, lang: &str) {
        self.view_portal_in(name, lang, "rgb(11, 79, 138)").await;
    }

    /// [`Browser::view_portal`] for a page whose band is `accent` (the
    /// neutral one where no tenant is known).
    async fn view_portal_in(&self, name: &str, lang: &str, accent: &str) {
        let applied = self
            .client
            .execute(
                "return getComputedStyle(document.querySelector('header.brand')).backgroundColor;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(applied, accent, "{name}: the band's colour");
        assert_eq!(
            self.client
                .execute("return document.documentElement.lang;", vec![])
                .await
                .unwrap(),
            lang,
            "{name}"
        );
        self.check_and_save(name, &format!("-{lang}")).await;
    }

    async fn check_and_save(&self, name: &str, suffix: &str) {
        let errors = self.console_errors().await;
        assert!(errors.is_empty(), "{name}: console errors {errors:?}");
        let failed = self.failed_requests().await;
        assert!(failed.is_empty(), "{name}: failed requests {failed:?}");
        // A stylesheet applied: the page is not unstyled default HTML.
        let styled = self
            .client
            .execute(
                "return document.styleSheets.length > 0 \
                 && getComputedStyle(document.body).fontFamily.includes('system-ui');",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(styled, Value::Bool(true), "{name}: stylesheet");
        for (width, label) in WIDTHS {
            // Measure the page at this width, then grow the window to it.
            self.client.set_window_size(width, 900).await.unwrap();
            let height: u32 = self
                .client
                .execute(
                    "return Math.min(document.documentElement.scrollHeight, 4000);",
                    vec![],
                )
                .await
                .unwrap()
                .as_u64()
                .unwrap()
                .try_into()
                .unwrap();
            self.client
                .set_window_size(width, height.max(600))
                .await
                .unwrap();
            // Nothing wider than the window at 390 px: no sideways scroll
            // of the page itself (tables scroll in their own box).
            if width == 390 {
                let wide = self
                    .client
                    .execute(
                        "return document.documentElement.scrollWidth > window.innerWidth + 1;",
                        vec![],
                    )
                    .await
                    .unwrap();
                if wide != Value::Bool(false) {
                    let culprits = self
                        .client
                        .execute(
                            "return [...document.querySelectorAll('body *')]\
                             .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1\
                               && !e.closest('.scroll, nav'))\
                             .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' \
                               + Math.round(e.getBoundingClientRect().right));",
                            vec![],
                        )
                        .await
                        .unwrap();
                    panic!("{name}: wider than 390 px: {culprits}");
                }
                if !suffix.is_empty() {
                    // Portal pages: every control a thumb can hit.
                    let small = self
                        .client
                        .execute(
                            "return [...document.querySelectorAll('main a, main button, \
                               main input:not([type=hidden])')]\
                             .map(e => [e.tagName + ' ' + e.textContent.trim(), \
                               e.getBoundingClientRect()])\
                             .filter(([_, r]) => r.height < 44 || r.width < 44)\
                             .map(([n, r]) => n + ' ' + Math.round(r.width) + 'x' \
                               + Math.round(r.height));",
                            vec![],
                        )
                        .await
                        .unwrap();
                    assert_eq!(small, json!([]), "{name}: touch targets under 44 px");
                }
            }
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(self.shots.join(format!("{name}-{label}{suffix}.png")), png).unwrap();
        }
        self.client.set_window_size(1280, 900).await.unwrap();
    }

    async fn sign_in(&self, key: &str) {
        self.goto("/console/login").await;
        self.fill("#key", key).await;
        self.click("#sign-in").await;
        self.wait_path("/console").await;
    }

    async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill().await;
    }
}

async fn register(app: &TestApp, external: &str, email: bool, phone: bool) -> String {
    let mut body = json!({ "external_id": external });
    if email {
        body["email"] = json!(format!("{external}@example.com"));
    }
    if phone {
        body["phone"] = json!("+15550100");
    }
    let a = app.post("/v1/recipients", &app.sender, body).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

fn route(a: &support::Answer) -> Value {
    a.body["decision"]["outcome"]["route"].clone()
}

async fn an_operator_works_through_the_console(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let Some(b) = Browser::start(&app, backend).await else {
        return;
    };
    // Traffic worth looking at: a person with a phone and e-mail, a few
    // classes, a device that completed a handshake, a checkpoint.
    let rid = register(&app, "emp-4711", true, true).await;
    let (device, key) = app.enrol(&rid, 7).await;
    app.handshake(&device, &key).await;
    let first = app.send("b-1", &rid, "payroll", "payslip").await;
    let mid = first.body["id"].as_str().unwrap().to_string();
    for (i, class) in [
        "transactional",
        "marketing",
        "payroll",
        "support_escalation",
    ]
    .iter()
    .enumerate()
    {
        app.send(&format!("b-more-{i}"), &rid, class, "more").await;
    }
    app.post("/v1/audit/checkpoints", &app.admin, json!({}))
        .await;

    b.goto("/console").await;
    assert_eq!(b.path().await, "/console/login");
    b.view("sign-in").await;
    b.sign_in(&app.admin).await;
    b.view("overview").await;

    // Find the payslip by the person's own id and read why.
    b.click("nav a[href='/console/messages']").await;
    b.wait_path("/console/messages").await;
    b.fill("#recipient", "emp-4711").await;
    b.click("#search").await;
    b.wait_path("/console/messages").await;
    b.view("messages").await;
    b.click(&format!("a[href='/console/messages/{mid}']")).await;
    b.wait_path(&format!("/console/messages/{mid}")).await;
    let why = b.text("#explanation").await;
    assert!(why.contains("payroll"), "{why}");
    assert!(b.text("#steps").await.contains("chosen"));
    assert!(
        b.text("#proofs")
            .await
            .contains("included in signed checkpoint")
    );
    b.view("message").await;

    b.click(&format!("a[href='/console/recipients/{rid}']"))
        .await;
    b.wait_path(&format!("/console/recipients/{rid}")).await;
    assert!(b.text("main").await.contains(&device));
    b.view("recipient").await;

    // The escalation queue: an e-mail-only colleague's payslip waits for a
    // human, who blocks it with a reason.
    let lone = register(&app, "emp-mail-only", true, false).await;
    let waiting = app.send("b-esc", &lone, "payroll", "payslip").await;
    assert_eq!(waiting.body["outcome"], "escalate", "{}", waiting.text);
    let waiting = waiting.body["id"].as_str().unwrap().to_string();
    b.click("nav a[href='/console/escalations']").await;
    b.wait_path("/console/escalations").await;
    assert!(
        b.text(&format!("#item-{waiting} pre"))
            .await
            .contains("escalate")
    );
    b.view("escalations").await;
    b.fill(
        &format!("#item-{waiting} form[action$='/block'] input[name=reason]"),
        "sent to the wrong person",
    )
    .await;
    b.click(&format!("#item-{waiting} button.block")).await;
    b.wait_path(&format!("/console/escalations/{waiting}/block"))
        .await;
    assert!(b.text(".flash").await.contains("blocked"));
    app.wait_status(&waiting, "blocked").await;

    // The rollout panel of the class still observing, and policy versions.
    b.goto("/console").await;
    b.click("a[href='/console/classes/support_escalation']")
        .await;
    b.wait_path("/console/classes/support_escalation").await;
    assert!(b.text("#diff").await.contains("+mode = \"enforce\""));
    b.view("class-rollout").await;
    b.click("nav a[href='/console/policy']").await;
    b.wait_path("/console/policy").await;
    assert!(b.text("#versions").await.contains("active"));
    b.view("policy").await;

    // The kill switch: the channel the last payroll message used is
    // switched off, the next decision goes elsewhere; cleared, it returns.
    let before = route(&app.send("b-ks-0", &rid, "payroll", "x").await);
    let container = before["container"].as_str().unwrap().to_string();
    let channel = match container.as_str() {
        "in_app" => "in_app".to_string(),
        "rcs" => "rcs".to_string(),
        _ => before["notifier"]
            .as_str()
            .unwrap()
            .trim_end_matches("_notice")
            .to_string(),
    };
    b.goto("/console/overrides").await;
    b.view("overrides-none").await;
    b.fill("#o-id", "switch-off").await;
    b.client
        .execute(
            "document.getElementById('o-channel').value = arguments[0];",
            vec![json!(channel)],
        )
        .await
        .unwrap();
    b.fill("#o-reason", "provider incident").await;
    b.click("#set").await;
    assert!(b.text(".flash").await.contains("switch-off"));
    b.view("overrides-active").await;
    let during = route(&app.send("b-ks-1", &rid, "payroll", "x").await);
    assert_ne!(during, before, "the override changed the next decision");
    b.click("#clear-switch-off").await;
    b.wait_path("/console/overrides/switch-off/clear").await;
    assert!(b.text(".flash").await.contains("cleared"));
    // The recipient page names the drop the override caused.
    b.goto(&format!("/console/recipients/{rid}")).await;
    let person = b.text("main").await;
    assert!(
        person.contains("e2ee → none") && person.contains("override_disabled"),
        "{person}"
    );

    // The thread stays at the lower floor it dropped to until a fresh
    // handshake shows the device again; then the route returns.
    let after = route(&app.send("b-ks-2", &rid, "payroll", "x").await);
    assert_eq!(after, during, "no elevation without a fresh handshake");
    // Strictly newer than the drop, at the clock's one-second resolution.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.handshake(&device, &key).await;
    let elevated = route(&app.send("b-ks-3", &rid, "payroll", "x").await);
    assert_eq!(elevated, before);

    b.goto("/console/audit").await;
    assert!(b.text("#signature").await.contains("included"));
    b.view("audit").await;

    b.click("#sign-out").await;
    b.wait_path("/console/login").await;
    b.goto("/console/messages").await;
    assert_eq!(b.path().await, "/console/login", "signed out for good");

    // Another tenant's admin sees none of it.
    let policy = ladder_server::app::DEMO_POLICY.replace("tenant = \"acme\"", "tenant = \"beta\"");
    let beta = ladder_server::service::tenants::create(app.state(), "beta", &policy, "test")
        .await
        .unwrap();
    let beta_admin = beta
        .keys
        .iter()
        .find(|k| k.scope.as_str() == "admin")
        .unwrap()
        .token
        .clone();
    b.sign_in(&beta_admin).await;
    b.goto("/console/messages").await;
    assert!(!b.text("main").await.contains(&mid));
    b.goto(&format!("/console/messages/{mid}")).await;
    assert!(b.text("main").await.contains("no message"));
    b.close().await;
}

async fn a_recipient_reads_a_portal_message(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let Some(b) = Browser::start(&app, backend).await else {
        return;
    };
    // No device: a transactional message goes to the portal with its
    // notices; the one-time code goes by the other channel. The browser
    // asks for English; the second recipient reads German, by their own
    // record.
    let english = register(&app, "emp-portal", true, true).await;
    read_on_the_portal(&app, &b, &english, "Your new contract is ready.", "en").await;
    let german = app
        .post(
            "/v1/recipients",
            &app.sender,
            json!({
                "external_id": "emp-portal-de",
                "email": "emp-portal-de@example.com",
                "phone": "+15550100",
                "language": "de",
                "time_zone": "Europe/Berlin",
            }),
        )
        .await;
    assert_eq!(german.status, StatusCode::CREATED, "{}", german.text);
    let german = german.body["id"].as_str().unwrap().to_string();
    read_on_the_portal(&app, &b, &german, "Ihr neuer Vertrag liegt bereit.", "de").await;
    b.close().await;
}

/// One recipient's walk: the link, the code, the message, each page saved.
async fn read_on_the_portal(app: &TestApp, b: &Browser, rid: &str, body: &str, lang: &str) {
    let sent = app
        .send(&format!("p-{lang}"), rid, "transactional", body)
        .await;
    assert_eq!(route(&sent)["container"], "portal", "{}", sent.text);
    let id = sent.body["id"].as_str().unwrap().to_string();
    app.wait_status(&id, "sent").await;
    let notices: Vec<String> = app
        .deliveries(&id)
        .await
        .iter()
        .filter_map(|d| d["notice_text"].as_str().map(str::to_string))
        .collect();
    let link = notices
        .iter()
        .find_map(|t| {
            t.find("/portal/")
                .map(|at| t[at..].split_whitespace().next().unwrap().to_string())
        })
        .expect("a portal link in the notice");
    b.goto(&link).await;
    b.view_portal("portal-start", lang).await;
    b.click("button[type=submit]").await;
    b.text("input[name=code]").await;
    // The code field has the focus and shows it.
    let focus = b
        .client
        .execute(
            "const e = document.activeElement; \
             return [e.id, getComputedStyle(e).outlineStyle, e.labels.length, \
               e.getAttribute('autocomplete'), e.getAttribute('inputmode')];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        focus,
        json!(["code", "solid", 1, "one-time-code", "numeric"]),
        "{lang}"
    );
    let main = b.text("main").await.replace('\u{a0}', " ");
    assert!(main.contains("•••• 00"), "{lang}: {main}");
    b.view_portal("portal-code", lang).await;
    let code = app
        .deliveries(&id)
        .await
        .iter()
        .filter_map(|d| d["notice_text"].as_str().map(str::to_string))
        .rfind(|t| t.contains("verification code is"))
        .map(|t| t.rsplit(' ').next().unwrap().to_string())
        .expect("a code notice");
    b.fill("input[name=code]", &code).await;
    b.click("form[action$='/code'] button[type=submit]").await;
    b.wait_path(&format!("{link}/message")).await;
    assert!(b.text("main").await.contains(body));
    b.view_portal("portal-message", lang).await;
    // Closing ends the session: the page says so, still in the tenant's
    // colours; a link nobody issued gets the neutral look.
    b.click("form[action$='/end'] button[type=submit]").await;
    b.wait_path(&format!("{link}/end")).await;
    b.view_portal("portal-closed", lang).await;
    b.goto("/portal/no-such-link").await;
    // The page itself answers 410 Gone, which the browser logs: nothing else.
    let errors = b.console_errors().await;
    assert!(
        errors.len() == 1
            && errors[0].contains("/portal/no-such-link - ")
            && errors[0].contains("410"),
        "{errors:?}"
    );
    b.view_portal_in("portal-unknown", "en", "rgb(31, 58, 95)")
        .await;
}

both_backends!(
    an_operator_works_through_the_console,
    a_recipient_reads_a_portal_message,
);
