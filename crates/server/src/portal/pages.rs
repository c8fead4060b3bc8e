//! The portal's pages: small, accessible HTML without scripts or styles,
//! every value HTML-escaped, and the headers every portal response
//! carries. Error pages name the state (expired, withdrawn, locked) and
//! never a detail: no content, no token, no internal error.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderName, HeaderValue, LOCATION,
    PRAGMA, REFERRER_POLICY, SET_COOKIE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// No scripts, styles, images, fonts or connections; forms post only to
/// this origin; never framed; no `<base>` rewriting.
pub(super) const CSP: &str =
    "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the portal's headers to every response it gives.
pub(super) async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    let set = |h: &mut HeaderMap, name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, CACHE_CONTROL, "no-store");
    set(h, PRAGMA, "no-cache");
    set(h, X_FRAME_OPTIONS, "DENY");
    set(h, REFERRER_POLICY, "no-referrer");
    set(h, X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, CONTENT_SECURITY_POLICY, CSP);
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("x-robots-tag"),
        "noindex, nofollow",
    );
    res
}

/// Escapes text for HTML element content and quoted attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page. `title` is text; `main` is HTML the caller built from
/// escaped parts.
pub(super) fn page(status: StatusCode, title: &str, main: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <meta name=\"robots\" content=\"noindex, nofollow\">\n\
         <title>{title}</title>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n{main}\n</main>\n</body>\n</html>\n",
        title = escape(title),
    );
    (
        status,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        html,
    )
        .into_response()
}

/// Unknown, expired or used-up links look alike: nobody learns which
/// tokens ever existed.
pub(super) fn expired() -> Response {
    page(
        StatusCode::GONE,
        "This link has expired",
        "<p>This link is no longer valid: it has expired or has been used as often as allowed.</p>\n\
         <p>If you still need the message, ask the sender to send it again.</p>",
    )
}

pub(super) fn withdrawn() -> Response {
    page(
        StatusCode::GONE,
        "Message withdrawn",
        "<p>This message was withdrawn by the sender and can no longer be read.</p>",
    )
}

pub(super) fn locked(until: &str) -> Response {
    page(
        StatusCode::LOCKED,
        "This link is locked",
        &format!(
            "<p>A wrong verification code was entered too many times, so this link is locked \
             until {} for your protection.</p>\n\
             <p>Try again after that time. If you did not try to open this message, \
             tell the sender.</p>",
            escape(until)
        ),
    )
}

pub(super) fn too_many_codes() -> Response {
    page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many codes requested",
        "<p>As many verification codes as allowed have been sent for this link.</p>\n\
         <p>Ask the sender to send the message again.</p>",
    )
}

/// Too many requests from this address or on this link for now: try again
/// in `retry_after_s` seconds (also in the `Retry-After` header).
pub(super) fn rate_limited(retry_after_s: u64) -> Response {
    let mut res = page(
        StatusCode::TOO_MANY_REQUESTS,
        "Please wait a moment",
        &format!(
            "<p>There were too many requests for this message in a short time. \
             Please try again in {}.</p>",
            escape(&super::describe_wait(retry_after_s))
        ),
    );
    res.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from(retry_after_s),
    );
    res
}

pub(super) fn no_second_factor() -> Response {
    page(
        StatusCode::FORBIDDEN,
        "This message cannot be opened here",
        "<p>There is no phone number or e-mail address on file to send you a verification code.</p>\n\
         <p>Please contact the sender.</p>",
    )
}

pub(super) fn code_not_sent(token: &str) -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "We could not send your code",
        &format!(
            "<p>Sending your verification code failed. Please \
             <a href=\"/portal/{}\">try again</a> in a minute.</p>",
            escape(token)
        ),
    )
}

pub(super) fn session_ended(token: &str) -> Response {
    page(
        StatusCode::UNAUTHORIZED,
        "Your session has ended",
        &format!(
            "<p>For your protection, the message closes after a few minutes without activity, \
             or when you close it.</p>\n\
             <p><a href=\"/portal/{}\">Open it again</a> with a new verification code.</p>",
            escape(token)
        ),
    )
}

pub(super) fn stale_form(token: &str) -> Response {
    page(
        StatusCode::FORBIDDEN,
        "This form is out of date",
        &format!(
            "<p>Please <a href=\"/portal/{}\">start again</a>.</p>",
            escape(token)
        ),
    )
}

/// A 303 to `location` (with a cookie to set, if any), with a link for
/// anything that does not follow redirects.
pub(super) fn see_other(location: &str, cookie: Option<String>) -> Response {
    let mut res = page(
        StatusCode::SEE_OTHER,
        "Continue",
        &format!("<p><a href=\"{}\">Continue</a></p>", escape(location)),
    );
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(LOCATION, v);
    }
    if let Some(v) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().insert(SET_COOKIE, v);
    }
    res
}

pub(super) fn closed() -> Response {
    page(
        StatusCode::OK,
        "Message closed",
        "<p>You closed the message. You can close this window.</p>",
    )
}

/// Where the code went, without the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SentTo {
    Phone,
    Email,
}

impl SentTo {
    fn words(self) -> &'static str {
        match self {
            SentTo::Phone => "by text message to your phone",
            SentTo::Email => "to your e-mail address",
        }
    }
}

/// The page a link opens on: what happens next, and a button that sends
/// the code. Opening a link sends nothing: mail security gateways fetch
/// the links in the mail they scan, and each fetch would spend a code (and
/// an SMS) before the recipient ever clicked. Only the form's POST does.
pub(super) fn start(token: &str, csrf: &str, to: SentTo) -> Response {
    page(
        StatusCode::OK,
        "Open your secure message",
        &format!(
            "<p>To open this message, we send you a 6-digit verification code {}.</p>\n\
             {}",
            to.words(),
            send_code_form(token, csrf, "Send me a code"),
        ),
    )
}

/// The link's page for a step that opens without a code (`step_up =
/// "none"`): a button, so that a mail scanner fetching the link opens
/// nothing and spends no view.
pub(super) fn start_without_code(token: &str, csrf: &str) -> Response {
    page(
        StatusCode::OK,
        "Open your secure message",
        &format!(
            "<p>This message opens without a verification code.</p>\n{}",
            send_code_form(token, csrf, "Open the message"),
        ),
    )
}

/// A form that asks for a code (a new one, if one was sent before).
fn send_code_form(token: &str, csrf: &str, button: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/portal/{token}\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <p><button type=\"submit\">{button}</button></p>\n\
         </form>",
        token = escape(token),
        csrf = escape(csrf),
        button = escape(button),
    )
}

/// What the code form says above the form.
pub(super) enum FormNote {
    Sent { valid_for: String },
    Wrong { tries_left: i64 },
    CodeExpired,
}

pub(super) fn code_form(token: &str, csrf: &str, to: SentTo, note: &FormNote) -> Response {
    let again = send_code_form(token, csrf, "Send a new code");
    let token = escape(token);
    let note = match note {
        FormNote::Sent { valid_for } => format!(
            "<p>We sent a 6-digit verification code {}. It is valid for {}.</p>",
            to.words(),
            escape(valid_for)
        ),
        FormNote::Wrong { tries_left } => format!(
            "<p role=\"alert\">That code is not correct. You have {tries_left} {} left before this \
             link locks.</p>",
            if *tries_left == 1 { "try" } else { "tries" }
        ),
        FormNote::CodeExpired => {
            "<p role=\"alert\">That code has expired. Ask for a new code below.</p>".to_string()
        }
    };
    page(
        StatusCode::OK,
        "Enter your verification code",
        &format!(
            "{note}\n\
             <form method=\"post\" action=\"/portal/{token}/code\">\n\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
             <p><label for=\"code\">Verification code</label><br>\n\
             <input id=\"code\" name=\"code\" type=\"text\" inputmode=\"numeric\" \
             autocomplete=\"one-time-code\" pattern=\"[0-9]{{6}}\" minlength=\"6\" maxlength=\"6\" \
             required autofocus></p>\n\
             <p><button type=\"submit\">Open the message</button></p>\n\
             </form>\n\
             <p>No code? You can ask for a new one once a minute.</p>\n\
             {again}",
            csrf = escape(csrf),
        ),
    )
}

/// What the message page shows.
pub(super) struct MessageView<'a> {
    pub token: &'a str,
    pub csrf: &'a str,
    pub sender: &'a str,
    pub body: &'a str,
    pub label: ladder_core::AssuranceLevel,
    pub previous_access: Option<String>,
    pub view: i64,
    pub max_views: i64,
    pub link_expires: String,
}

pub(super) fn message(v: &MessageView<'_>) -> Response {
    use ladder_core::AssuranceLevel;
    let explain = match v.label {
        AssuranceLevel::None => "it may have been readable to the carriers that handled it",
        AssuranceLevel::Transport => {
            "it is encrypted in transit, but the sender and its service providers can read it"
        }
        AssuranceLevel::E2ee | AssuranceLevel::E2eeAttested => {
            "only the recipient's verified devices can read it"
        }
    };
    let previous = match &v.previous_access {
        Some(at) => format!("Your previous access: {}.", escape(at)),
        None => "This is your first access to a message here.".to_string(),
    };
    let body = escape(v.body).replace('\n', "<br>\n");
    let left = v.max_views - v.view;
    page(
        StatusCode::OK,
        &format!("Secure message from {}", v.sender),
        &format!(
            "<p><strong>Security: {label}</strong> — {explain}.</p>\n\
             <p>{previous}</p>\n\
             <section aria-labelledby=\"message-heading\">\n\
             <h2 id=\"message-heading\">Message</h2>\n\
             <p>{body}</p>\n\
             </section>\n\
             <p>This is view {view} of {max}; {left} {views} left. The link expires {expires}.</p>\n\
             <form method=\"post\" action=\"/portal/{token}/end\">\n\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
             <p><button type=\"submit\">Close the message</button></p>\n\
             </form>",
            label = escape(v.label.label()),
            view = v.view,
            max = v.max_views,
            views = if left == 1 { "view" } else { "views" },
            expires = escape(&v.link_expires),
            token = escape(v.token),
            csrf = escape(v.csrf),
        ),
    )
}

/// A time as recipients read it: `2026-03-01 14:05 UTC`.
pub(super) fn time(ms: i64) -> String {
    let t = ladder_core::Timestamp(ms.div_euclid(1000)).to_string();
    // RFC 3339 from the core: `2026-03-01T14:05:09Z`.
    match (t.get(..10), t.get(11..16)) {
        (Some(day), Some(hm)) if t.len() >= 16 => format!("{day} {hm} UTC"),
        _ => t,
    }
}

/// Where a notice for an in-app message points: the message is in the app.
pub(super) async fn in_app() -> Response {
    page(
        StatusCode::OK,
        "Open the app",
        "<p>This message was delivered to your app. Open the app on your phone to read it; \
         the app shows how it is protected.</p>",
    )
}

/// Nothing under `/portal` by this name.
pub(super) async fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "<p>There is no page here. Please use the link from your message notice.</p>",
    )
}

/// A method the portal does not serve on this path.
pub(super) async fn method_not_allowed() -> Response {
    page(
        StatusCode::METHOD_NOT_ALLOWED,
        "Not available",
        "<p>This page cannot be used this way.</p>",
    )
}

/// The page for a failure inside the portal: logged with its detail (which
/// never holds content), shown without it.
pub(super) fn failure(e: &ApiError) -> Response {
    match e {
        ApiError::Contention => page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Please try again",
            "<p>The service is busy. Please reload this page in a moment.</p>",
        ),
        other => {
            tracing::error!(error = %other, "portal request failed");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "<p>The message could not be shown. Please try again later.</p>",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn times_read_as_utc_minutes() {
        assert_eq!(time(0), "1970-01-01 00:00 UTC");
        assert_eq!(time(1_772_373_909_000), "2026-03-01 14:05 UTC");
    }
}
