//! The recipient portal as a browser without scripts uses it, for the
//! portal's tests: one-time links from the sandbox's notices, codes from
//! its code notices, the forms, the session cookie (kept by hand: this
//! reqwest has no cookie store), and the headers every portal answer must
//! carry.

use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::Value;

use super::{StatusCode, TestApp};

/// One portal answer.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Page {
    /// The session cookie this answer sets, as `name=value`.
    pub fn cookie(&self) -> String {
        let set = self.headers.get(SET_COOKIE).expect("a Set-Cookie header");
        set.to_str().unwrap().split(';').next().unwrap().to_string()
    }

    pub fn csrf(&self) -> String {
        let (_, rest) = self
            .text
            .split_once("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no csrf field in {}", self.text));
        rest.split('"').next().unwrap().to_string()
    }
}

/// A browser without a cookie jar and without following redirects, so
/// every answer (a 303 with its Set-Cookie too) is seen.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Asserts the portal's headers on one answer.
pub fn assert_portal_headers(p: &Page, what: &str) {
    let h = |name: &str| {
        p.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no `{name}` header on {} {:?}", p.status, p.headers))
            .to_string()
    };
    assert_eq!(h("cache-control"), "no-store", "{what}");
    assert_eq!(h("pragma"), "no-cache", "{what}");
    assert_eq!(h("x-frame-options"), "DENY", "{what}");
    assert_eq!(h("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    let csp = h("content-security-policy");
    for directive in [
        "default-src 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(
            csp.contains(directive),
            "{what}: CSP `{csp}` lacks {directive}"
        );
    }
    assert!(!csp.contains("script-src"), "{what}: {csp}");
    assert!(!csp.contains("unsafe"), "{what}: {csp}");
    assert!(
        h("content-type").starts_with("text/html"),
        "{what}: {}",
        h("content-type")
    );
    assert!(!p.text.contains("<script"), "{what}");
}

pub async fn get(app: &TestApp, path: &str, cookie: Option<&str>) -> Page {
    let mut req = browser().get(format!("{}{path}", app.base));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    page(req.send().await.unwrap(), path).await
}

/// [`get`] from a browser that asks for `language` (`Accept-Language`).
pub async fn get_in(app: &TestApp, path: &str, cookie: Option<&str>, language: &str) -> Page {
    let mut req = browser()
        .get(format!("{}{path}", app.base))
        .header("accept-language", language);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    page(req.send().await.unwrap(), path).await
}

pub async fn post(app: &TestApp, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Page {
    let mut req = browser().post(format!("{}{path}", app.base)).form(form);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    page(req.send().await.unwrap(), path).await
}

pub async fn page(resp: reqwest::Response, path: &str) -> Page {
    let p = Page {
        status: resp.status(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap(),
    };
    assert_portal_headers(&p, path);
    p
}

/// Sends a `transactional` message (portal + e-mail notice for a recipient
/// with only an e-mail address), waits until it is sent, and returns its
/// id and the portal path of the link its notice carries.
pub async fn portal_message(app: &TestApp, who: &str, body: &str) -> (String, String) {
    let r = app.recipient(who).await;
    let a = app
        .send(&format!("idem-{who}"), &r, "transactional", body)
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(
        a.body["decision"]["outcome"]["route"]["container"], "portal",
        "{}",
        a.text
    );
    let id = a.body["id"].as_str().unwrap().to_string();
    let path = link_of(app, &id).await;
    (id, path)
}

/// Waits until `message` is sent and answers the portal path its notice
/// carries.
pub async fn link_of(app: &TestApp, message: &str) -> String {
    app.wait_status(message, "sent").await;
    let notice = notices(app, message).await;
    let link = notice
        .iter()
        .find(|t| t.contains("/portal/"))
        .unwrap_or_else(|| panic!("no portal link in {notice:?}"));
    portal_path(link)
}

/// The code notices the sandbox delivered for `message`.
pub async fn code_notices(app: &TestApp, message: &str) -> Vec<Value> {
    app.deliveries(message)
        .await
        .into_iter()
        .filter(|d| {
            d["notice_text"]
                .as_str()
                .unwrap_or("")
                .contains("verification code")
        })
        .collect()
}

/// `/portal/{token}` out of a notice text.
pub fn portal_path(notice: &str) -> String {
    let at = notice.find("/portal/").unwrap();
    let token: String = notice[at + "/portal/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert_eq!(token.len(), 43, "{notice}");
    format!("/portal/{token}")
}

pub async fn notices(app: &TestApp, message: &str) -> Vec<String> {
    app.deliveries(message)
        .await
        .iter()
        .filter_map(|d| d["notice_text"].as_str().map(str::to_string))
        .collect()
}

/// The latest one-time code the sandbox delivered for `message`, and how
/// many code notices there were.
pub async fn latest_code(app: &TestApp, message: &str) -> (String, usize) {
    let codes: Vec<String> = notices(app, message)
        .await
        .into_iter()
        .filter(|t| t.contains("verification code is"))
        .collect();
    let last = codes.last().expect("a code notice");
    assert!(
        last.starts_with("Your Acme Corp verification code is "),
        "{last}"
    );
    let code = last.rsplit(' ').next().unwrap().to_string();
    assert_eq!(code.len(), 6, "{last}");
    assert!(code.bytes().all(|b| b.is_ascii_digit()), "{last}");
    (code, codes.len())
}

pub fn wrong(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

/// Opens the link (a page with a button and no code sent), presses the
/// button, and returns the code form (or whatever the button answered).
pub async fn request_code(app: &TestApp, path: &str) -> Page {
    let start = get(app, path, None).await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.text);
    assert!(start.text.contains("Send me a code"), "{}", start.text);
    assert!(!start.text.contains("name=\"code\""), "{}", start.text);
    post(app, path, None, &[("csrf", &start.csrf())]).await
}

/// Opens the link, enters the right code, and returns the session cookie.
pub async fn sign_in(app: &TestApp, message: &str, path: &str) -> String {
    let form = request_code(app, path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    let (code, _) = latest_code(app, message).await;
    let done = post(
        app,
        &format!("{path}/code"),
        None,
        &[("csrf", &form.csrf()), ("code", &code)],
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    assert_eq!(
        done.headers.get("location").unwrap(),
        &format!("{path}/message")
    );
    done.cookie()
}

pub fn audit_of<'a>(audit: &'a [Value], kind: &str) -> Vec<&'a Value> {
    audit.iter().filter(|e| e["kind"] == kind).collect()
}
