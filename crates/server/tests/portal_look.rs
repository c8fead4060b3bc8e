//! What the recipient portal looks like and speaks, over HTTP on both
//! databases: the language (the recipient's own over the browser's, else
//! English), times in the recipient's zone, the tenant's branding inside
//! a strict content security policy, the code's destination only masked,
//! the download only within a live session — and the recipient fields and
//! policy checks these rest on.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use serde_json::{Value, json};
use support::portal::*;
use support::{Backend, StatusCode, TestApp};

both_backends!(
    pages_speak_the_recipients_language_else_the_browsers,
    recipient_language_and_time_zone_are_checked_and_returned,
    times_show_in_the_recipients_zone,
    the_code_destination_is_only_ever_masked,
    the_tenants_branding_is_on_the_page_under_a_strict_policy,
    unreadable_branding_colours_are_refused_at_policy_check,
    the_download_needs_a_live_session_and_is_audited,
);

/// Registers `who` with both addresses and the given extra fields.
async fn register(app: &TestApp, who: &str, extra: Value) -> String {
    let mut body = json!({
        "external_id": who,
        "email": format!("{who}@example.com"),
        "phone": "+15550100042",
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let a = app.post("/v1/recipients", &app.sender, body).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

/// A portal message for `recipient`: its id and link path.
async fn message_for(app: &TestApp, recipient: &str, body: &str) -> (String, String) {
    let a = app
        .send(
            &format!("look-{recipient}"),
            recipient,
            "transactional",
            body,
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let id = a.body["id"].as_str().unwrap().to_string();
    let path = link_of(app, &id).await;
    (id, path)
}

/// Sends `code` with the code form `form` of the link at `path`.
async fn enter(app: &TestApp, path: &str, form: &Page, code: &str) -> Page {
    let csrf = form.csrf();
    post(
        app,
        &format!("{path}/code"),
        None,
        &[("csrf", &csrf), ("code", code)],
    )
    .await
}

async fn pages_speak_the_recipients_language_else_the_browsers(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let plain = register(&app, "emp-lang", json!({})).await;
    let (_, path) = message_for(&app, &plain, "hallo").await;
    let de = get_in(&app, &path, None, "de-DE,de;q=0.9,en;q=0.5").await;
    assert_eq!(de.status, StatusCode::OK);
    assert!(de.text.contains("<html lang=\"de\">"), "{}", de.text);
    assert!(
        de.text.contains("Ihre sichere Nachricht öffnen"),
        "{}",
        de.text
    );
    assert!(de.text.contains("Code senden"), "{}", de.text);
    assert!(!de.text.contains("Send me a code"), "{}", de.text);
    let es = get_in(&app, &path, None, "it-IT, es;q=0.7").await;
    assert!(es.text.contains("<html lang=\"es\">"), "{}", es.text);
    assert!(es.text.contains("Enviarme un código"), "{}", es.text);
    let fallback = get_in(&app, &path, None, "ja").await;
    assert!(fallback.text.contains("<html lang=\"en\">"));
    assert!(fallback.text.contains("Send me a code"));

    // The recipient's own language wins over the browser's, on every page
    // of the walk, error pages included.
    let french = register(&app, "emp-fr", json!({ "language": "fr" })).await;
    let (id, path) = message_for(&app, &french, "bonjour").await;
    let start = get_in(&app, &path, None, "de").await;
    assert!(start.text.contains("<html lang=\"fr\">"), "{}", start.text);
    assert!(start.text.contains("M’envoyer un code"), "{}", start.text);
    let form = post(&app, &path, None, &[("csrf", &start.csrf())]).await;
    assert!(form.text.contains("Saisissez votre code"), "{}", form.text);
    let (code, _) = latest_code(&app, &id).await;
    let wrong_code = enter(&app, &path, &form, wrong(&code)).await;
    assert!(
        wrong_code.text.contains("Il vous reste 4 essais"),
        "{}",
        wrong_code.text
    );
    let ended = get_in(&app, &format!("{path}/message"), None, "de").await;
    assert_eq!(ended.status, StatusCode::UNAUTHORIZED);
    assert!(
        ended.text.contains("Votre session est terminée"),
        "{}",
        ended.text
    );
    // Before a link is known, only the browser speaks.
    let unknown = get_in(&app, "/portal/nothing-here", None, "de").await;
    assert!(unknown.text.contains("Dieser Link ist abgelaufen"));

    // A link that no longer opens (here: withdrawn) looks exactly like an
    // unknown one — the browser's language, no tenant look — so an old
    // link in someone else's hands tells them neither the sender nor the
    // recipient's language (regression: review of issue 11).
    let revoked = app
        .post(&format!("/v1/messages/{id}/revoke"), &app.sender, json!({}))
        .await;
    assert!(revoked.status.is_success(), "{}", revoked.text);
    let gone = get_in(&app, &path, None, "de").await;
    assert!(gone.text.contains("<html lang=\"de\">"), "{}", gone.text);
    let unknown = get_in(&app, "/portal/nothing-here", None, "de").await;
    let strip = |t: &str| t.replace("nothing-here", "");
    assert!(!gone.text.contains("Acme"), "{}", gone.text);
    assert_eq!(
        gone.text.contains("<img"),
        strip(&unknown.text).contains("<img"),
        "no logo beyond what an unknown link shows"
    );
}

async fn recipient_language_and_time_zone_are_checked_and_returned(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let id = register(
        &app,
        "emp-zone",
        json!({ "language": "de-CH", "time_zone": "Europe/Zurich" }),
    )
    .await;
    let shown = app.get(&format!("/v1/recipients/{id}"), &app.sender).await;
    assert_eq!(shown.body["language"], "de-CH", "{}", shown.text);
    assert_eq!(shown.body["time_zone"], "Europe/Zurich", "{}", shown.text);
    // The search answers them too.
    let found = app
        .get("/v1/recipients?external_id=emp-zone", &app.sender)
        .await;
    assert_eq!(
        found.body["recipients"][0]["language"], "de-CH",
        "{}",
        found.text
    );
    assert_eq!(found.body["recipients"][0]["time_zone"], "Europe/Zurich");
    let plain = register(&app, "emp-nozone", json!({})).await;
    let shown = app
        .get(&format!("/v1/recipients/{plain}"), &app.sender)
        .await;
    assert_eq!(shown.body["language"], Value::Null, "{}", shown.text);
    assert_eq!(shown.body["time_zone"], Value::Null, "{}", shown.text);

    let before = app.written_rows().await;
    for (field, value, code) in [
        ("language", "it", "invalid_language"),
        ("language", "not a language", "invalid_language"),
        ("time_zone", "Mars/Olympus_Mons", "invalid_time_zone"),
        ("time_zone", "../../etc/localtime", "invalid_time_zone"),
    ] {
        let mut body = json!({ "external_id": "emp-bad", "email": "x@example.com" });
        body[field] = json!(value);
        let a = app.post("/v1/recipients", &app.sender, body).await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
        assert_eq!(a.body["error"]["code"], code, "{}", a.text);
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("field `{field}`")),
            "{}",
            a.text
        );
    }
    assert_eq!(app.written_rows().await, before, "nothing changed");
}

async fn times_show_in_the_recipients_zone(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    // Tokyo keeps no daylight saving time: always JST, UTC+9.
    let tokyo = register(&app, "emp-tokyo", json!({ "time_zone": "Asia/Tokyo" })).await;
    let (id, path) = message_for(&app, &tokyo, "konnichiwa").await;
    let cookie = sign_in(&app, &id, &path).await;
    let page = get(&app, &format!("{path}/message"), Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains(" JST"), "{}", page.text);
    assert!(!page.text.contains(" UTC"), "{}", page.text);
    let opened = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get("Asia/Tokyo").unwrap())
        .strftime("%Y-%m-%d")
        .to_string();
    assert!(page.text.contains(&opened), "{opened}: {}", page.text);

    // The same moment for a German reader in Berlin, in German order.
    let berlin = register(
        &app,
        "emp-berlin",
        json!({ "language": "de", "time_zone": "Europe/Berlin" }),
    )
    .await;
    let (id, path) = message_for(&app, &berlin, "guten Tag").await;
    let start = get(&app, &path, None).await;
    let form = post(&app, &path, None, &[("csrf", &start.csrf())]).await;
    let (code, _) = latest_code(&app, &id).await;
    let signed_in = enter(&app, &path, &form, &code).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.text
    );
    let cookie = signed_in.cookie();
    let page = get(&app, &format!("{path}/message"), Some(&cookie)).await;
    let day = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get("Europe/Berlin").unwrap())
        .strftime("%d.%m.%Y, ")
        .to_string();
    assert!(page.text.contains(&day), "{day}: {}", page.text);
    assert!(page.text.contains("Sichere Nachricht von Acme Corp"));
    assert!(
        page.text.contains("für Dienstleister lesbar"),
        "{}",
        page.text
    );
}

async fn the_code_destination_is_only_ever_masked(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let who = register(&app, "jane.doe", json!({})).await;
    let (id, path) = message_for(&app, &who, "your letter").await;
    let mut pages = Vec::new();
    let start = get(&app, &path, None).await;
    pages.push(start.text.clone());
    let form = post(&app, &path, None, &[("csrf", &start.csrf())]).await;
    pages.push(form.text.clone());
    // The code went to the phone: named by its last two digits only.
    assert!(form.text.contains("••••\u{a0}42"), "{}", form.text);
    let (code, _) = latest_code(&app, &id).await;
    pages.push(enter(&app, &path, &form, wrong(&code)).await.text);
    let cookie = sign_in(&app, &id, &path).await;
    let message = get(&app, &format!("{path}/message"), Some(&cookie)).await;
    pages.push(message.text);
    let download = download(&app, &path, Some(&cookie)).await;
    pages.push(download.2);
    for text in &pages {
        for secret in [
            "jane.doe@example.com",
            "jane.doe",
            "example.com",
            "15550100042",
            "5550100",
        ] {
            assert!(!text.contains(secret), "`{secret}` in {text}");
        }
    }
}

async fn the_tenants_branding_is_on_the_page_under_a_strict_policy(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let who = register(&app, "emp-brand", json!({})).await;
    let (_, path) = message_for(&app, &who, "branded").await;
    let start = get(&app, &path, None).await;
    assert!(
        start
            .text
            .contains("<span class=\"brand-name\">Acme Corp</span>"),
        "{}",
        start.text
    );
    assert!(
        start.text.contains("Acme Corp sent you a secure message."),
        "{}",
        start.text
    );
    assert!(
        start
            .text
            .contains("<img class=\"logo\" src=\"data:image/svg+xml;base64,"),
        "{}",
        start.text
    );
    let style = ":root{--accent:#0b4f8a;--on-accent:#ffffff}";
    assert!(
        start.text.contains(&format!("<style>{style}</style>")),
        "{}",
        start.text
    );
    assert!(start.text.contains("href=\"/portal/assets/portal.css\""));
    // The policy names exactly that style by its hash, and data: images.
    use base64::Engine;
    use sha2::Digest;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(style));
    let csp = start.headers["content-security-policy"].to_str().unwrap();
    assert_eq!(
        csp,
        format!(
            "default-src 'none'; style-src 'self' 'sha256-{hash}'; img-src data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
    );
    assert_eq!(start.text.matches("<style").count(), 1);
    assert!(!start.text.contains("style=\""), "no style attributes");

    // The stylesheet itself: from this origin, with the portal's headers.
    let css = reqwest::get(format!("{}/portal/assets/portal.css", app.base))
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(css.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        css.headers()["content-security-policy"],
        "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    let css = css.text().await.unwrap();
    assert!(css.contains("@media print") && css.contains("min-height: 48px"));
    assert!(
        !css.contains("http") && !css.contains("@import"),
        "no third party"
    );
}

async fn unreadable_branding_colours_are_refused_at_policy_check(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let active = app.get("/v1/policy", &app.sender).await;
    let version = active.body["version"].as_str().unwrap().to_string();
    let policy = ladder_server::app::DEMO_POLICY.replace(
        "accent = \"#0b4f8a\"\ntext = \"#ffffff\"",
        "accent = \"#0b4f8a\"\ntext = \"#3a6ea5\"",
    );
    let line = policy
        .lines()
        .position(|l| l.starts_with("text = \"#3a6ea5\""))
        .unwrap()
        + 1;
    let r = app
        .client
        .put(format!("{}/v1/policy", app.base))
        .header("authorization", format!("Bearer {}", app.admin))
        .body(policy)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = r.json().await.unwrap();
    let first = &body["error"]["details"][0];
    assert_eq!(first["line"].as_u64().unwrap() as usize, line, "{body:#}");
    assert_eq!(first["column"], 8, "{body:#}");
    let message = first["message"].as_str().unwrap();
    assert!(
        message.contains("`branding.text`") && message.contains("4.5:1"),
        "{message}"
    );
    let still = app.get("/v1/policy", &app.sender).await;
    assert_eq!(still.body["version"], version.as_str());
}

/// `GET {path}/download`: status, headers, body.
async fn download(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut req = browser().get(format!("{}{path}/download", app.base));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let r = req.send().await.unwrap();
    (r.status(), r.headers().clone(), r.text().await.unwrap())
}

async fn the_download_needs_a_live_session_and_is_audited(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let who = register(&app, "emp-dl", json!({})).await;
    let (id, path) = message_for(&app, &who, "Your tax form\nis attached.").await;

    let (status, headers, body) = download(&app, &path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(headers.get("content-disposition").is_none());
    assert!(!body.contains("tax form"), "{body}");

    let cookie = sign_in(&app, &id, &path).await;
    // A download is part of a view: a session that has not shown the
    // message gets nothing (regression: review of issue 11 — the download
    // ignored the view limit and needed no counted view).
    let (status, headers, body) = download(&app, &path, Some(&cookie)).await;
    assert_ne!(status, StatusCode::OK, "{body}");
    assert!(headers.get("content-disposition").is_none());
    assert!(!body.contains("tax form"), "{body}");
    let viewed = get(&app, &format!("{path}/message"), Some(&cookie)).await;
    assert_eq!(viewed.status, StatusCode::OK);
    let (status, headers, body) = download(&app, &path, Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"message.txt\""
    );
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(body.contains("Your tax form\nis attached."), "{body}");
    assert!(body.contains("Protection: provider-readable"), "{body}");
    assert!(
        body.starts_with("Secure message from Acme Corp\n"),
        "{body}"
    );

    // Another link's session opens nothing here.
    let other = register(&app, "emp-dl-2", json!({})).await;
    let (other_id, other_path) = message_for(&app, &other, "other").await;
    let other_cookie = sign_in(&app, &other_id, &other_path).await;
    let (status, _, body) = download(&app, &path, Some(&other_cookie)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!body.contains("tax form"));

    // Closed, the session downloads nothing more.
    let message = get(&app, &format!("{path}/message"), Some(&cookie)).await;
    let closed = post(
        &app,
        &format!("{path}/end"),
        Some(&cookie),
        &[("csrf", &message.csrf())],
    )
    .await;
    assert_eq!(closed.status, StatusCode::OK);
    let (status, _, body) = download(&app, &path, Some(&cookie)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!body.contains("tax form"));

    let audit = app.audit().await;
    let downloads: Vec<&Value> = audit
        .iter()
        .filter(|e| e["kind"] == "portal_downloaded")
        .collect();
    assert_eq!(downloads.len(), 1, "{audit:#?}");
    assert!(!downloads[0].to_string().contains("tax form"));
    let refused = audit
        .iter()
        .filter(|e| e["kind"] == "portal_access_refused")
        .filter(|e| e.to_string().contains("download"))
        .count();
    assert_eq!(refused, 4, "{audit:#?}");
    assert!(
        audit
            .iter()
            .any(|e| e["kind"] == "portal_access_refused" && e.to_string().contains("not_viewed")),
        "{audit:#?}"
    );
}
