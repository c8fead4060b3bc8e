//! The recipient portal end to end over HTTP, as a recipient's browser
//! would use it: the one-time link from the e-mail notice, the one-time
//! code from the code notice (both read from the sandbox mailbox), the
//! code form, the session cookie (kept by hand: this reqwest has no cookie
//! store) and the message page. Lockout, expiry, revocation, view limits,
//! idle sessions, the headers on every response, and what the database
//! and audit log hold afterwards.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use reqwest::header::SET_COOKIE;
use serde_json::json;
use support::portal::*;
use support::{Backend, StatusCode, TestApp};

both_backends!(
    portal_link_get_sends_no_code,
    code_requests_are_rate_limited_per_link_and_the_limit_resets,
    code_attempts_are_rate_limited_per_address_and_refusals_count_nothing,
    wrong_codes_lock_the_link_and_it_stays_locked,
    right_code_opens_the_message_with_its_label_until_the_view_limit,
    expired_link_shows_the_expired_page,
    revoked_message_shows_the_withdrawn_page,
    idle_session_ends,
    https_deployments_get_a_host_only_secure_cookie,
    forged_forms_and_unknown_links_change_nothing,
    database_and_audit_hold_no_token_code_or_content,
    lockout_ends_after_its_period,
    codes_go_to_the_phone_and_are_limited,
    other_paths_and_in_app_notices_get_portal_pages,
    regression_portal_nobody_could_open_was_accepted_and_marked_delivered,
    payroll_for_phone_and_email_opens_with_a_code_by_sms,
    a_portal_without_step_up_opens_without_a_code,
    a_link_keeps_the_second_factor_of_the_route_that_sent_it,
);

async fn wrong_codes_lock_the_link_and_it_stays_locked(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let (id, path) = portal_message(&app, "emp-lock", "salary review outcome").await;
    let notice = notices(&app, &id).await;
    assert!(
        notice[0].contains("valid for 7 days"),
        "the notice states the link's real validity: {notice:?}"
    );

    let form = request_code(&app, &path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    // The link came by e-mail: the code goes to the other factor, the phone.
    assert!(
        form.text.contains("by text message to your phone"),
        "{}",
        form.text
    );
    let (code, sent) = latest_code(&app, &id).await;
    assert_eq!(sent, 1);
    // Asking again at once sends no second code.
    let again = request_code(&app, &path).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(latest_code(&app, &id).await.1, 1);

    let csrf = form.csrf();
    for attempt in 1..=4 {
        let p = post(
            &app,
            &format!("{path}/code"),
            None,
            &[("csrf", &csrf), ("code", wrong(&code))],
        )
        .await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.text);
        assert!(p.text.contains("not correct"), "{}", p.text);
        assert!(
            p.text.contains(&format!("{} tr", 5 - attempt)),
            "attempt {attempt}: {}",
            p.text
        );
        assert!(p.headers.get(SET_COOKIE).is_none());
    }
    let locked = post(
        &app,
        &format!("{path}/code"),
        None,
        &[("csrf", &csrf), ("code", wrong(&code))],
    )
    .await;
    assert_eq!(locked.status, StatusCode::LOCKED, "{}", locked.text);
    assert!(locked.text.contains("locked"), "{}", locked.text);

    // It stays locked: the right code, the link and the message page are refused.
    let right = post(
        &app,
        &format!("{path}/code"),
        None,
        &[("csrf", &csrf), ("code", &code)],
    )
    .await;
    assert_eq!(right.status, StatusCode::LOCKED, "{}", right.text);
    assert!(right.headers.get(SET_COOKIE).is_none());
    assert_eq!(get(&app, &path, None).await.status, StatusCode::LOCKED);
    assert_eq!(
        get(&app, &format!("{path}/message"), None).await.status,
        StatusCode::LOCKED
    );
    assert_eq!(
        latest_code(&app, &id).await.1,
        1,
        "no code sent while locked"
    );

    let audit = app.audit().await;
    let failed = audit_of(&audit, "portal_code_failed");
    assert_eq!(failed.len(), 5, "{failed:#?}");
    assert!(failed.iter().all(|e| e["subject"] == id.as_str()));
    let lock = audit_of(&audit, "portal_locked");
    assert_eq!(lock.len(), 1, "{lock:#?}");
    assert_eq!(lock[0]["subject"], id.as_str());
    assert!(
        lock[0]["details"]["link"]
            .as_str()
            .unwrap()
            .starts_with("pln_")
    );
    assert!(lock[0]["details"]["locked_until"].as_i64().is_some());
    let refused = audit_of(&audit, "portal_access_refused");
    assert!(
        refused.iter().any(|e| e["details"]["reason"] == "locked"),
        "{refused:#?}"
    );
    let text = serde_json::to_string(&audit).unwrap();
    assert!(!text.contains(&code), "the code is never audited");
    assert!(!text.contains(&path[8..]), "the token is never audited");

    // Another message has its own link, with its own attempts.
    let (id2, path2) = portal_message(&app, "emp-lock-2", "second notice").await;
    let cookie = sign_in(&app, &id2, &path2).await;
    let m = get(&app, &format!("{path2}/message"), Some(&cookie)).await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.text);
    // The dashboard (its default window, the last 24 hours) counts the
    // lockout and the one session opened.
    let s = app.get("/v1/stats", &app.sender).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    assert_eq!(s.body["portal"], json!({ "opens": 1, "lockouts": 1 }));
    app.stop().await;
}

async fn right_code_opens_the_message_with_its_label_until_the_view_limit(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let body = "Your payslip <b>is</b> ready & \"waiting\"\nsecond line";
    let (id, path) = portal_message(&app, "emp-read", body).await;
    let form = request_code(&app, &path).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.text.contains("autocomplete=\"one-time-code\""));
    assert!(form.text.contains("<label for=\"code\">"));
    assert!(!form.text.contains("payslip"), "no content before step-up");
    let (code, _) = latest_code(&app, &id).await;

    // Without a session the message page refuses and counts nothing.
    let anon = get(&app, &format!("{path}/message"), None).await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED, "{}", anon.text);
    assert!(!anon.text.contains("payslip"));

    let done = post(
        &app,
        &format!("{path}/code"),
        None,
        &[
            ("csrf", &form.csrf()),
            ("code", &format!("{} {}", &code[..3], &code[3..])),
        ],
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let set = done.headers.get(SET_COOKIE).unwrap().to_str().unwrap();
    assert!(set.starts_with("ladder_portal="), "{set}");
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(set.contains("Path=/"), "{set}");
    assert!(!set.contains("Secure"), "plain-HTTP public_url: {set}");
    let cookie = done.cookie();

    // The code is one-time.
    let reuse = post(
        &app,
        &format!("{path}/code"),
        None,
        &[("csrf", &form.csrf()), ("code", &code)],
    )
    .await;
    assert!(reuse.headers.get(SET_COOKIE).is_none(), "{}", reuse.text);

    let first = get(&app, &format!("{path}/message"), Some(&cookie)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert!(
        first
            .text
            .contains("Your payslip &lt;b&gt;is&lt;/b&gt; ready &amp; &quot;waiting&quot;<br>"),
        "{}",
        first.text
    );
    assert!(!first.text.contains("<b>is</b>"));
    assert!(first.text.contains("provider-readable"), "{}", first.text);
    assert!(first.text.contains("Acme Corp"), "{}", first.text);
    assert!(first.text.contains("first access"), "{}", first.text);
    assert!(first.text.contains("view 1 of 3"), "{}", first.text);
    app.wait_status(&id, "read").await;

    let second = get(&app, &format!("{path}/message"), Some(&cookie)).await;
    assert_eq!(second.status, StatusCode::OK);
    assert!(
        second.text.contains("previous access: 20"),
        "{}",
        second.text
    );
    assert!(second.text.contains(" UTC"), "{}", second.text);
    let third = get(&app, &format!("{path}/message"), Some(&cookie)).await;
    assert_eq!(third.status, StatusCode::OK);
    assert!(third.text.contains("view 3 of 3"), "{}", third.text);
    let fourth = get(&app, &format!("{path}/message"), Some(&cookie)).await;
    assert_eq!(fourth.status, StatusCode::GONE, "{}", fourth.text);
    assert!(fourth.text.contains("expired"), "{}", fourth.text);
    assert!(!fourth.text.contains("payslip"));
    // The link itself is used up too.
    assert_eq!(get(&app, &path, None).await.status, StatusCode::GONE);

    let audit = app.audit().await;
    let views = audit_of(&audit, "portal_viewed");
    assert_eq!(views.len(), 3, "{views:#?}");
    assert_eq!(views[2]["details"]["view"], 3);
    assert_eq!(views[0]["details"]["label"], "transport");
    assert_eq!(audit_of(&audit, "portal_code_verified").len(), 1);
    assert!(!audit_of(&audit, "portal_link_issued").is_empty());
    let text = serde_json::to_string(&audit).unwrap();
    assert!(!text.contains("payslip"), "content is never audited");
    app.stop().await;
}

async fn expired_link_shows_the_expired_page(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .config(|c| c.portal.link_ttl_s = 1)
        .start()
        .await
    else {
        return;
    };
    let (id, path) = portal_message(&app, "emp-late", "too late").await;
    assert!(
        notices(&app, &id).await[0].contains("valid for less than a minute"),
        "the notice tells the truth about a short link"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let p = get(&app, &path, None).await;
    assert_eq!(p.status, StatusCode::GONE, "{}", p.text);
    assert!(p.text.contains("expired"), "{}", p.text);
    assert!(
        notices(&app, &id)
            .await
            .iter()
            .all(|t| !t.contains("verification code"))
    );
    let audit = app.audit().await;
    assert!(
        audit_of(&audit, "portal_access_refused")
            .iter()
            .any(|e| e["details"]["reason"] == "expired")
    );
    app.stop().await;
}

async fn revoked_message_shows_the_withdrawn_page(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let (id, path) = portal_message(&app, "emp-revoke", "offer letter").await;
    let cookie = sign_in(&app, &id, &path).await;
    let r = app
        .post(
            &format!("/v1/messages/{id}/revoke"),
            &app.sender.clone(),
            serde_json::json!({}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    for p in [
        get(&app, &path, None).await,
        get(&app, &format!("{path}/message"), Some(&cookie)).await,
    ] {
        assert_eq!(p.status, StatusCode::GONE, "{}", p.text);
        assert!(p.text.contains("withdrawn by the sender"), "{}", p.text);
        assert!(!p.text.contains("offer letter"));
    }
    let audit = app.audit().await;
    assert!(
        audit_of(&audit, "portal_access_refused")
            .iter()
            .any(|e| e["details"]["reason"] == "withdrawn")
    );
    app.stop().await;
}

async fn idle_session_ends(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .config(|c| c.portal.idle_timeout_s = 1)
        .start()
        .await
    else {
        return;
    };
    let (id, path) = portal_message(&app, "emp-idle", "idle body").await;
    let cookie = sign_in(&app, &id, &path).await;
    let m = get(&app, &format!("{path}/message"), Some(&cookie)).await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.text);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let idle = get(&app, &format!("{path}/message"), Some(&cookie)).await;
    assert_eq!(idle.status, StatusCode::UNAUTHORIZED, "{}", idle.text);
    assert!(idle.text.contains("session has ended"), "{}", idle.text);
    assert!(!idle.text.contains("idle body"));

    // Closing a session ends it at once and clears the cookie.
    let cookie = sign_in(&app, &id, &path).await;
    let m = get(&app, &format!("{path}/message"), Some(&cookie)).await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.text);
    let closed = post(
        &app,
        &format!("{path}/end"),
        Some(&cookie),
        &[("csrf", &m.csrf())],
    )
    .await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.text);
    assert!(
        closed
            .headers
            .get(SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = get(&app, &format!("{path}/message"), Some(&cookie)).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.text);
    app.stop().await;
}

async fn https_deployments_get_a_host_only_secure_cookie(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .config(|c| c.public_url = Some("https://portal.example.test".into()))
        .start()
        .await
    else {
        return;
    };
    let (id, path) = portal_message(&app, "emp-tls", "tls body").await;
    assert!(
        notices(&app, &id)
            .await
            .iter()
            .any(|t| t.contains(&format!("https://portal.example.test{path}")))
    );
    let form = request_code(&app, &path).await;
    let (code, _) = latest_code(&app, &id).await;
    let done = post(
        &app,
        &format!("{path}/code"),
        None,
        &[("csrf", &form.csrf()), ("code", &code)],
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let set = done.headers.get(SET_COOKIE).unwrap().to_str().unwrap();
    assert!(set.starts_with("__Host-ladder_portal="), "{set}");
    for attr in ["Path=/", "HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert!(!set.contains("Domain"), "{set}");
    let m = get(&app, &format!("{path}/message"), Some(&done.cookie())).await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.text);
    assert!(m.text.contains("tls body"));
    app.stop().await;
}

async fn forged_forms_and_unknown_links_change_nothing(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    for bogus in [
        "/portal/nope".to_string(),
        format!("/portal/{}", "A".repeat(43)),
    ] {
        let p = get(&app, &bogus, None).await;
        assert_eq!(p.status, StatusCode::GONE, "{}", p.text);
        let p = get(&app, &format!("{bogus}/message"), None).await;
        assert_eq!(p.status, StatusCode::GONE, "{}", p.text);
    }
    let (id, path) = portal_message(&app, "emp-csrf", "csrf body").await;
    let form = request_code(&app, &path).await;
    let (code, _) = latest_code(&app, &id).await;
    // No or a wrong CSRF token: refused, not counted as an attempt.
    for csrf in ["", "0000"] {
        let p = post(
            &app,
            &format!("{path}/code"),
            None,
            &[("csrf", csrf), ("code", &code)],
        )
        .await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{}", p.text);
        assert!(p.headers.get(SET_COOKIE).is_none());
    }
    // Asking for a code without or with a wrong CSRF token: refused, no code.
    for csrf in ["", "0000"] {
        let p = post(&app, &path, None, &[("csrf", csrf)]).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{}", p.text);
    }
    assert_eq!(latest_code(&app, &id).await.1, 1);
    // A wrong method gets a portal page too.
    let resp = browser()
        .delete(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    let p = page(resp, &path).await;
    assert_eq!(p.status, StatusCode::METHOD_NOT_ALLOWED, "{}", p.text);
    // A session cookie for another link opens nothing here.
    let (id2, path2) = portal_message(&app, "emp-csrf-2", "other body").await;
    let other = sign_in(&app, &id2, &path2).await;
    let p = get(&app, &format!("{path}/message"), Some(&other)).await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED, "{}", p.text);
    // The code still works: nothing above counted.
    let done = post(
        &app,
        &format!("{path}/code"),
        None,
        &[("csrf", &form.csrf()), ("code", &code)],
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let audit = app.audit().await;
    assert!(audit_of(&audit, "portal_code_failed").is_empty());
    app.stop().await;
}

/// Every value of every column of every table, as text.
async fn dump(app: &TestApp, backend: Backend) -> Vec<(String, String)> {
    let pool = app.state().store.pool();
    let tables: Vec<String> = match backend {
        Backend::Sqlite => sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        ),
        Backend::Postgres => sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
        ),
    }
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(tables.iter().any(|t| t == "portal_links"), "{tables:?}");
    let mut out = Vec::new();
    for t in tables {
        let cols: Vec<String> = match backend {
            Backend::Sqlite => sqlx::query_scalar("SELECT name FROM pragma_table_info($1)"),
            Backend::Postgres => sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1",
            ),
        }
        .bind(&t)
        .fetch_all(pool)
        .await
        .unwrap();
        for c in cols {
            let sql = match backend {
                Backend::Sqlite => format!(
                    "SELECT CASE WHEN typeof(\"{c}\") = 'blob' THEN lower(hex(\"{c}\")) \
                     ELSE CAST(\"{c}\" AS TEXT) END FROM \"{t}\""
                ),
                Backend::Postgres => format!("SELECT CAST(\"{c}\" AS TEXT) FROM \"{t}\""),
            };
            let values: Vec<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await
                .unwrap();
            for v in values.into_iter().flatten() {
                out.push((format!("{t}.{c}"), v));
            }
        }
    }
    out
}

async fn database_and_audit_hold_no_token_code_or_content(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let body = "CANARY-portal-body-7731";
    let (id, path) = portal_message(&app, "emp-db", body).await;
    let token = path.trim_start_matches("/portal/").to_string();
    let form = request_code(&app, &path).await;
    let (code, _) = latest_code(&app, &id).await;
    let done = post(
        &app,
        &format!("{path}/code"),
        None,
        &[("csrf", &form.csrf()), ("code", &code)],
    )
    .await;
    let cookie = done.cookie();
    let session = cookie.split_once('=').unwrap().1.to_string();
    let m = get(&app, &format!("{path}/message"), Some(&cookie)).await;
    assert!(m.text.contains(body));

    let rows = dump(&app, backend).await;
    for (column, value) in &rows {
        // The sandbox mailbox stands for the recipient's inbox and phone:
        // it holds the notices as delivered, link and code included.
        if column.starts_with("sandbox_inbox.") {
            continue;
        }
        assert!(!value.contains(&token), "link token in {column}");
        assert!(!value.contains(&session), "session cookie in {column}");
        assert!(!value.contains(body), "content in {column}");
        assert!(
            !value.contains(&support::hex(body.as_bytes())),
            "content as bytes in {column}"
        );
        if column.starts_with("portal_") {
            assert!(!value.contains(&code), "code in {column}: {value}");
        }
    }
    let stored: Vec<&String> = rows
        .iter()
        .filter(|(c, _)| c == "portal_links.token_hash")
        .map(|(_, v)| v)
        .collect();
    assert!(stored.contains(&&support::hex(&sha256(token.as_bytes()))));
    let audit = serde_json::to_string(&app.audit().await).unwrap();
    for secret in [token.as_str(), session.as_str(), code.as_str(), body] {
        assert!(!audit.contains(secret), "audit holds a secret");
    }
    app.stop().await;
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).to_vec()
}

async fn lockout_ends_after_its_period(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .config(|c| {
            c.portal.lockout_s = 1;
            c.portal.max_attempts = 2;
        })
        .start()
        .await
    else {
        return;
    };
    let (id, path) = portal_message(&app, "emp-unlock", "unlock body").await;
    let form = request_code(&app, &path).await;
    let (code, _) = latest_code(&app, &id).await;
    let csrf = form.csrf();
    let first = post(
        &app,
        &format!("{path}/code"),
        None,
        &[("csrf", &csrf), ("code", wrong(&code))],
    )
    .await;
    assert!(first.text.contains("1 try left"), "{}", first.text);
    let locked = post(
        &app,
        &format!("{path}/code"),
        None,
        &[("csrf", &csrf), ("code", "12")],
    )
    .await;
    assert_eq!(locked.status, StatusCode::LOCKED, "{}", locked.text);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Unlocked: the old code died with the lockout; opening the link sends a new one.
    let old = post(
        &app,
        &format!("{path}/code"),
        None,
        &[("csrf", &csrf), ("code", &code)],
    )
    .await;
    assert_eq!(old.status, StatusCode::OK, "{}", old.text);
    assert!(old.text.contains("expired"), "{}", old.text);
    let cookie = sign_in(&app, &id, &path).await;
    assert_eq!(latest_code(&app, &id).await.1, 2);
    let m = get(&app, &format!("{path}/message"), Some(&cookie)).await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.text);
    app.stop().await;
}

async fn codes_go_to_the_phone_and_are_limited(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .config(|c| {
            c.portal.code_resend_s = 0;
            c.portal.max_codes = 2;
        })
        .start()
        .await
    else {
        return;
    };
    let r = app
        .post(
            "/v1/recipients",
            &app.sender.clone(),
            serde_json::json!({ "external_id": "emp-phone", "email": "p@example.com", "phone": "+15550002222" }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let a = app
        .send(
            "idem-phone",
            r.body["id"].as_str().unwrap(),
            "transactional",
            "phone body",
        )
        .await;
    let id = a.body["id"].as_str().unwrap().to_string();
    let path = link_of(&app, &id).await;
    let form = request_code(&app, &path).await;
    assert!(
        form.text.contains("text message to your phone"),
        "{}",
        form.text
    );
    let codes = code_notices(&app, &id).await;
    assert_eq!(codes.len(), 1);
    assert_eq!(codes[0]["channel"], "sms", "{codes:#?}");
    // A second code replaces the first; a third is refused.
    let (first, _) = latest_code(&app, &id).await;
    assert_eq!(request_code(&app, &path).await.status, StatusCode::OK);
    let (second, n) = latest_code(&app, &id).await;
    assert_eq!(n, 2);
    let limited = request_code(&app, &path).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.text
    );
    if first != second {
        let p = post(
            &app,
            &format!("{path}/code"),
            None,
            &[("csrf", &form.csrf()), ("code", &first)],
        )
        .await;
        assert!(p.text.contains("not correct"), "{}", p.text);
    }
    let done = post(
        &app,
        &format!("{path}/code"),
        None,
        &[("csrf", &form.csrf()), ("code", &second)],
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    app.stop().await;
}

async fn other_paths_and_in_app_notices_get_portal_pages(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    for path in ["/portal", "/portal/", "/portal/x/y", "/portal/x/code/more"] {
        let p = get(&app, path, None).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{path}: {}", p.text);
    }
    let p = get(&app, "/portal/app", None).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    // A message delivered in the app: its push notice links to no portal
    // page, and no portal link exists for it.
    let r = app.recipient("emp-app").await;
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let d = app
        .post(
            &format!("/v1/recipients/{r}/devices"),
            &app.sender.clone(),
            serde_json::json!({
                "identity_key": support::hex(&key.verifying_key().to_bytes()),
                "agreement_key": support::hex(&[9; 32]),
                "labels": { "os": "android", "os_version": "15", "client": "acme-app", "client_version": "5.3" },
                "push": { "platform": "fcm", "token": "push-token-1" },
            }),
        )
        .await;
    assert_eq!(d.status, StatusCode::CREATED, "{}", d.text);
    let device = d.body["id"].as_str().unwrap().to_string();
    let h = app.handshake(&device, &key).await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.text);
    let a = app.send("idem-app", &r, "transactional", "app body").await;
    assert_eq!(
        a.body["decision"]["outcome"]["route"]["container"], "in_app",
        "{}",
        a.text
    );
    let id = a.body["id"].as_str().unwrap().to_string();
    let m = app.wait_status(&id, "sent").await;
    assert_eq!(
        m["decision"]["outcome"]["route"]["container"], "in_app",
        "{m:#}"
    );
    let texts = notices(&app, &id).await;
    assert!(!texts.is_empty(), "{m:#}");
    for t in &texts {
        if let Some(at) = t.find("/portal/") {
            assert!(t[at..].starts_with("/portal/app"), "{t}");
        }
    }
    let links: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM portal_links WHERE message_id = $1")
        .bind(&id)
        .fetch_one(app.state().store.pool())
        .await
        .unwrap();
    assert_eq!(links, 0);
    app.stop().await;
}

/// Issue 9, defect 1: a recipient with only an e-mail address got payroll
/// on the portal behind an e-mail notice (202, then `delivered`), and the
/// link answered 403: the code must go by another channel, and there was
/// none. The decision now knows: the portal is skipped and the class
/// escalates; no link is ever sent.
async fn regression_portal_nobody_could_open_was_accepted_and_marked_delivered(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = app
        .post(
            "/v1/recipients",
            &app.sender.clone(),
            serde_json::json!({ "external_id": "emp-1042", "email": "ana@example.com" }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let a = app
        .send(
            "payslip-2026-11",
            r.body["id"].as_str().unwrap(),
            "payroll",
            "Your November payslip is ready",
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(a.body["outcome"], "escalate", "{}", a.text);
    assert_eq!(a.body["status"], "escalated", "{}", a.text);
    assert!(
        a.body["decision"]["outcome"]["route"].is_null(),
        "{}",
        a.text
    );
    let portal = a.body["decision"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["route"].as_str().unwrap().starts_with("portal"))
        .unwrap_or_else(|| panic!("no portal step in {}", a.text));
    assert_eq!(
        portal["skipped"][0]["code"], "no_step_up_channel",
        "{portal:#}"
    );
    let id = a.body["id"].as_str().unwrap();
    let explained = app
        .get(&format!("/v1/messages/{id}/explain"), &app.sender.clone())
        .await;
    assert!(
        explained.text.contains("no_step_up_channel"),
        "{}",
        explained.text
    );
    assert!(notices(&app, id).await.is_empty());
    app.stop().await;
}

/// The same payroll notice to a recipient with a phone number and an
/// e-mail address: portal behind the e-mail notice, the code by SMS, and
/// the payslip behind it.
async fn payroll_for_phone_and_email_opens_with_a_code_by_sms(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = app.recipient("emp-both").await;
    let a = app
        .send("idem-both", &r, "payroll", "Your November payslip is ready")
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let route = &a.body["decision"]["outcome"]["route"];
    assert_eq!(route["container"], "portal", "{}", a.text);
    assert_eq!(route["notifier"], "email_notice", "{}", a.text);
    assert_eq!(route["second_factor"], "sms", "{}", a.text);
    let id = a.body["id"].as_str().unwrap().to_string();
    let path = link_of(&app, &id).await;
    let form = request_code(&app, &path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    assert!(
        form.text.contains("text message to your phone"),
        "{}",
        form.text
    );
    let codes = code_notices(&app, &id).await;
    assert_eq!(codes.len(), 1, "{codes:#?}");
    assert_eq!(codes[0]["channel"], "sms", "{codes:#?}");
    let cookie = sign_in(&app, &id, &path).await;
    let m = get(&app, &format!("{path}/message"), Some(&cookie)).await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.text);
    assert!(m.text.contains("November payslip"), "{}", m.text);
    app.stop().await;
}

/// `step_up = "none"` (allowed for a class whose minimum is `none`): the
/// decision names no code channel to find, and the portal's button opens
/// the message without one, audited, for a recipient with nothing but an
/// e-mail address.
async fn a_portal_without_step_up_opens_without_a_code(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let policy = ladder_server::app::DEMO_POLICY
        .replacen(
            "  { container = \"rcs\" },\n  { container = \"sms\" },",
            "  { container = \"portal\", notifiers = [\"email_notice\"], step_up = \"none\" },",
            1,
        )
        .replace("revision = 4", "revision = 5");
    assert_ne!(policy, ladder_server::app::DEMO_POLICY);
    let put = app
        .client
        .put(format!("{}/v1/policy", app.base))
        .header("authorization", format!("Bearer {}", app.admin))
        .body(policy)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());
    let r = app
        .post(
            "/v1/recipients",
            &app.sender.clone(),
            serde_json::json!({ "external_id": "emp-mail", "email": "m@example.com" }),
        )
        .await;
    let a = app
        .send(
            "idem-none",
            r.body["id"].as_str().unwrap(),
            "marketing",
            "canteen offer",
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(
        a.body["decision"]["outcome"]["route"]["second_factor"], "none",
        "{}",
        a.text
    );
    let id = a.body["id"].as_str().unwrap().to_string();
    let path = link_of(&app, &id).await;
    // Opening the link shows a button and opens nothing (a scanner
    // fetching it spends no view); the button opens the message.
    let page = get(&app, &path, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("Open the message"), "{}", page.text);
    assert!(!page.text.contains("canteen offer"), "{}", page.text);
    let opened = post(&app, &path, None, &[("csrf", &page.csrf())]).await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.text);
    let m = get(&app, &format!("{path}/message"), Some(&opened.cookie())).await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.text);
    assert!(m.text.contains("canteen offer"), "{}", m.text);
    let audit = app.audit().await;
    assert_eq!(audit_of(&audit, "portal_opened_without_code").len(), 1);
    assert!(audit_of(&audit, "portal_code_issued").is_empty());
    app.stop().await;
}

/// A link keeps the second factor of the route that sent it, so a later
/// route of the message (another notifier) never changes what opening an
/// earlier link takes. (The server's fallback leaves a failed step
/// altogether today; the link's own factor keeps "link and code never in
/// one inbox" true even if that ever changes.)
async fn a_link_keeps_the_second_factor_of_the_route_that_sent_it(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = app.recipient("emp-fixed").await;
    let a = app.send("idem-fixed", &r, "payroll", "fixed payslip").await;
    let route = &a.body["decision"]["outcome"]["route"];
    assert_eq!(route["notifier"], "email_notice", "{}", a.text);
    assert_eq!(route["second_factor"], "sms", "{}", a.text);
    let id = a.body["id"].as_str().unwrap().to_string();
    app.wait_status(&id, "sent").await;
    let stored: Vec<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT second_factor, step FROM portal_links WHERE message_id = $1")
            .bind(&id)
            .fetch_all(app.state().store.pool())
            .await
            .unwrap();
    assert_eq!(
        stored,
        vec![(Some("sms".to_string()), Some("2/email".to_string()))],
        "one link for (step, notifier), with its factor"
    );
    let page = get(&app, &link_of(&app, &id).await, None).await;
    assert!(
        page.text.contains("by text message to your phone"),
        "{}",
        page.text
    );
    app.stop().await;
}

/// `(codes_sent, attempts)` of the message's portal link.
async fn link_counters(app: &TestApp, message: &str) -> (i64, i64) {
    sqlx::query_as("SELECT codes_sent, attempts FROM portal_links WHERE message_id = $1")
        .bind(message)
        .fetch_one(app.state().store.pool())
        .await
        .unwrap()
}

/// Regression: opening a link (`GET`/`HEAD /portal/{token}`) sent a fresh
/// one-time code, so a mail security gateway fetching the link spent the
/// recipient's codes (and SMS) before they ever clicked. Now only the
/// page's POST button sends one.
async fn portal_link_get_sends_no_code(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let (id, path) = portal_message(&app, "emp-scanner", "scanned body").await;
    for _ in 0..3 {
        let p = get(&app, &path, None).await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.text);
        assert!(p.text.contains("Send me a code"), "{}", p.text);
        assert!(p.text.contains(&format!("action=\"{path}\"")), "{}", p.text);
        assert!(p.text.contains("method=\"post\""), "{}", p.text);
        assert!(!p.text.contains("name=\"code\""), "{}", p.text);
        assert!(!p.text.contains("scanned body"));
        let head = browser()
            .head(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), StatusCode::OK);
        // This origin's stylesheet, the one hashed inline style (the
        // tenant's colours) and `data:` images (its logo): no scripts, no
        // inline styles otherwise.
        let csp = head
            .headers()
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap();
        let (before, hash) = csp.split_once("'sha256-").unwrap();
        let (_, after) = hash.split_once('\'').unwrap();
        assert_eq!(before, "default-src 'none'; style-src 'self' ", "{csp}");
        assert_eq!(
            after, "; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "{csp}"
        );
    }
    let texts = notices(&app, &id).await;
    assert!(
        texts.iter().all(|t| !t.contains("verification code")),
        "{texts:?}"
    );
    assert_eq!(link_counters(&app, &id).await, (0, 0));
    let audit = app.audit().await;
    assert!(audit_of(&audit, "portal_code_issued").is_empty());

    // The button sends exactly one.
    let form = request_code(&app, &path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    assert!(form.text.contains("name=\"code\""), "{}", form.text);
    assert_eq!(latest_code(&app, &id).await.1, 1);
    assert_eq!(link_counters(&app, &id).await, (1, 0));
    app.stop().await;
}

async fn code_requests_are_rate_limited_per_link_and_the_limit_resets(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .config(|c| {
            c.portal.code_resend_s = 0;
            c.limits.code_requests_per_link = ladder_server::limits::Rate {
                burst: 2,
                every_ms: 1500,
            };
        })
        .start()
        .await
    else {
        return;
    };
    let (id, path) = portal_message(&app, "emp-rl-send", "rate body").await;
    let start = get(&app, &path, None).await;
    let csrf = start.csrf();
    for n in 1..=2 {
        let p = post(&app, &path, None, &[("csrf", &csrf)]).await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.text);
        assert_eq!(latest_code(&app, &id).await.1, n);
    }
    for _ in 0..2 {
        let p = post(&app, &path, None, &[("csrf", &csrf)]).await;
        assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS, "{}", p.text);
        let wait: u64 = p.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=2).contains(&wait), "{wait}");
        assert!(p.text.contains("try again in"), "{}", p.text);
    }
    // Refused requests sent nothing and changed nothing.
    assert_eq!(latest_code(&app, &id).await.1, 2);
    assert_eq!(link_counters(&app, &id).await, (2, 0));
    let audit = app.audit().await;
    assert_eq!(audit_of(&audit, "portal_code_issued").len(), 2);
    let limited = audit_of(&audit, "portal_rate_limited");
    assert_eq!(
        limited.len(),
        1,
        "audited once, not per refusal: {limited:#?}"
    );
    assert_eq!(limited[0]["subject"], id.as_str());
    assert_eq!(limited[0]["details"]["request"], "portal_code_request");
    assert_eq!(limited[0]["details"]["limit"], "link");
    let text = serde_json::to_string(&audit).unwrap();
    assert!(!text.contains(&path[8..]), "the token is never audited");
    assert!(!text.contains("127.0.0.1"), "the address is never audited");
    let metrics = app
        .request(reqwest::Method::GET, "/metrics", None, None, &[])
        .await;
    assert!(
        metrics
            .text
            .contains("ladder_rate_limited_total{surface=\"portal_code_request\"}"),
        "{}",
        metrics.text
    );
    // The limit resets.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let p = post(&app, &path, None, &[("csrf", &csrf)]).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    assert_eq!(latest_code(&app, &id).await.1, 3);
    app.stop().await;
}

async fn code_attempts_are_rate_limited_per_address_and_refusals_count_nothing(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .config(|c| {
            c.limits.code_attempts_per_address = ladder_server::limits::Rate {
                burst: 2,
                every_ms: 1500,
            };
        })
        .start()
        .await
    else {
        return;
    };
    let (id, path) = portal_message(&app, "emp-rl-try", "attempt body").await;
    let form = request_code(&app, &path).await;
    let (code, _) = latest_code(&app, &id).await;
    let csrf = form.csrf();
    let attempt = |code: String| {
        let (app, path, csrf) = (&app, &path, &csrf);
        async move {
            post(
                app,
                &format!("{path}/code"),
                None,
                &[("csrf", csrf), ("code", &code)],
            )
            .await
        }
    };
    for _ in 0..2 {
        let p = attempt(wrong(&code).to_string()).await;
        assert!(p.text.contains("not correct"), "{}", p.text);
    }
    // Past the limit even the right code is refused, and nothing counts.
    let p = attempt(code.clone()).await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS, "{}", p.text);
    assert!(p.headers.get("retry-after").is_some());
    assert!(p.headers.get(SET_COOKIE).is_none());
    let p = attempt(wrong(&code).to_string()).await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS, "{}", p.text);
    assert_eq!(link_counters(&app, &id).await, (1, 2));
    let audit = app.audit().await;
    assert_eq!(audit_of(&audit, "portal_code_failed").len(), 2);
    let limited = audit_of(&audit, "portal_rate_limited");
    assert_eq!(limited.len(), 1, "{limited:#?}");
    assert_eq!(limited[0]["details"]["limit"], "address");
    assert_eq!(limited[0]["details"]["request"], "portal_code_attempt");
    // After the period the right code opens the message.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let done = attempt(code.clone()).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    app.stop().await;
}
