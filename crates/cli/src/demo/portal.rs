//! The demo's portal visit, as a recipient's browser makes it: open the
//! one-time link, press "send me a code", read the one-time code from the phone, post it with the
//! form's CSRF token, follow the redirect with the session cookie, and
//! return the message page.

use std::time::Duration;

/// The value of `name="…" value="…"` in a page's hidden input.
fn hidden(page: &str, name: &str) -> Option<String> {
    let at = page.find(&format!("name=\"{name}\" value=\""))?;
    let rest = page.get(at + name.len() + 15..)?;
    Some(rest.split('"').next()?.to_string())
}

/// The last six-digit code among the phone's texts.
fn code(texts: &[String]) -> Option<String> {
    texts.iter().rev().find_map(|t| {
        t.split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .map(str::to_string)
    })
}

/// Opens `link`, passes the one-time code read from `codes` (the phone's
/// texts), and returns the message page.
pub async fn open(
    _client: &reqwest::Client,
    link: &str,
    codes: impl Fn() -> Vec<String>,
) -> Result<String, String> {
    if link.is_empty() {
        return Err("no portal link in the notice".into());
    }
    // A browser keeps the cookie across the redirect; do it by hand.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    // Opening the link sends nothing (link scanners open links too); the
    // page's button asks for the code.
    let first = client.get(link).send().await.map_err(|e| e.to_string())?;
    if !first.status().is_success() {
        return Err(format!("the link answered {}", first.status()));
    }
    let page = first.text().await.map_err(|e| e.to_string())?;
    let csrf = hidden(&page, "csrf").ok_or("no \"send me a code\" button on the portal page")?;
    let asked = client
        .post(link)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !asked.status().is_success() {
        return Err(format!("asking for a code answered {}", asked.status()));
    }
    let page = asked.text().await.map_err(|e| e.to_string())?;
    let csrf = hidden(&page, "csrf").ok_or("no code form on the portal page")?;
    // The code travels as a content-free SMS; give it a moment.
    let mut found = None;
    for _ in 0..50 {
        if let Some(c) = code(&codes()) {
            found = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let code = found.ok_or("no one-time code arrived by SMS")?;
    out!("   one-time code by SMS: {code}");
    let posted = client
        .post(format!("{link}/code"))
        .form(&[("csrf", csrf.as_str()), ("code", code.as_str())])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let cookie = posted
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
        .ok_or_else(|| format!("the code was not accepted ({})", posted.status()))?;
    let message = client
        .get(format!("{link}/message"))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !message.status().is_success() {
        return Err(format!("the message page answered {}", message.status()));
    }
    message.text().await.map_err(|e| e.to_string())
}
