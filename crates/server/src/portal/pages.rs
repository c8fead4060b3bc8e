//! The portal's pages: small, accessible HTML without scripts, in the
//! recipient's language, every value HTML-escaped, inside the frame of
//! `layout.rs`. Error pages name the state (expired, withdrawn, locked)
//! and never a detail: no content, no token, no internal error.

use axum::http::header::{HeaderValue, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::layout::page;
pub(super) use super::layout::{Look, escape};
use super::locale::Arg;
use crate::service::error::ServiceError;

/// A page of paragraphs (text, escaped here) and, optionally, one action
/// link (`(href, label)`) shown as a button.
fn simple(
    look: &Look,
    status: StatusCode,
    title: &str,
    paragraphs: &[String],
    action: Option<(&str, &str)>,
) -> Response {
    let mut main: String = paragraphs
        .iter()
        .map(|p| format!("<p>{}</p>\n", escape(p)))
        .collect();
    if let Some((href, label)) = action {
        main.push_str(&format!(
            "<div class=\"actions\"><a class=\"button\" href=\"{}\">{}</a></div>",
            escape(href),
            escape(label)
        ));
    }
    page(look, status, &look.t(title), &main)
}

/// Unknown, expired or used-up links look alike: nobody learns which
/// tokens ever existed.
pub(super) fn expired(look: &Look) -> Response {
    let p = [look.t("expired-body"), look.t("expired-next")];
    simple(look, StatusCode::GONE, "expired-title", &p, None)
}

pub(super) fn withdrawn(look: &Look) -> Response {
    let p = [look.t("withdrawn-body")];
    simple(look, StatusCode::GONE, "withdrawn-title", &p, None)
}

pub(super) fn locked(look: &Look, until_ms: i64) -> Response {
    let until = look.time(until_ms);
    let p = [
        look.ta("locked-body", &[("until", until.as_str().into())]),
        look.t("locked-next"),
    ];
    simple(look, StatusCode::LOCKED, "locked-title", &p, None)
}

pub(super) fn too_many_codes(look: &Look) -> Response {
    let p = [look.t("too-many-codes-body"), look.t("too-many-codes-next")];
    let status = StatusCode::TOO_MANY_REQUESTS;
    simple(look, status, "too-many-codes-title", &p, None)
}

/// Too many requests from this address or on this link for now: try again
/// in `retry_after_s` seconds (also in the `Retry-After` header).
pub(super) fn rate_limited(look: &Look, retry_after_s: u64) -> Response {
    let wait = look.lang.wait(retry_after_s);
    let p = [look.ta("rate-limited-body", &[("wait", wait.as_str().into())])];
    let status = StatusCode::TOO_MANY_REQUESTS;
    let mut res = simple(look, status, "rate-limited-title", &p, None);
    res.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from(retry_after_s),
    );
    res
}

pub(super) fn no_second_factor(look: &Look) -> Response {
    let p = [look.t("no-factor-body"), look.t("no-factor-next")];
    simple(look, StatusCode::FORBIDDEN, "no-factor-title", &p, None)
}

pub(super) fn code_not_sent(look: &Look, token: &str) -> Response {
    let p = [look.t("not-sent-body")];
    let again = format!("/portal/{token}");
    let action = Some((again.as_str(), look.t("try-again")));
    let status = StatusCode::SERVICE_UNAVAILABLE;
    simple(
        look,
        status,
        "not-sent-title",
        &p,
        action.as_ref().map(|(h, l)| (*h, l.as_str())),
    )
}

pub(super) fn session_ended(look: &Look, token: &str) -> Response {
    let p = [look.t("session-ended-body")];
    let again = format!("/portal/{token}");
    let label = look.t("open-again");
    let status = StatusCode::UNAUTHORIZED;
    simple(
        look,
        status,
        "session-ended-title",
        &p,
        Some((&again, &label)),
    )
}

pub(super) fn stale_form(look: &Look, token: &str) -> Response {
    let p = [look.t("stale-body")];
    let again = format!("/portal/{token}");
    let label = look.t("start-again");
    simple(
        look,
        StatusCode::FORBIDDEN,
        "stale-title",
        &p,
        Some((&again, &label)),
    )
}

/// A 303 to `location` (with a cookie to set, if any), with a link for
/// anything that does not follow redirects.
pub(super) fn see_other(look: &Look, location: &str, cookie: Option<String>) -> Response {
    let label = look.t("continue");
    let mut res = simple(
        look,
        StatusCode::SEE_OTHER,
        "continue",
        &[],
        Some((location, &label)),
    );
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(LOCATION, v);
    }
    if let Some(v) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().insert(SET_COOKIE, v);
    }
    res
}

pub(super) fn closed(look: &Look) -> Response {
    let p = [look.t("closed-body")];
    simple(look, StatusCode::OK, "closed-title", &p, None)
}

/// Where the code went: the channel, and the address masked
/// (`mask.rs`) — never the address itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SentTo {
    Phone(String),
    Email(String),
}

impl SentTo {
    fn words(
        &self,
        look: &Look,
        phone: &str,
        email: &str,
        extra: &[(&'static str, Arg)],
    ) -> String {
        let (id, to) = match self {
            SentTo::Phone(m) => (phone, m),
            SentTo::Email(m) => (email, m),
        };
        let mut args = vec![("to", Arg::from(to.as_str()))];
        args.extend_from_slice(extra);
        look.ta(id, &args)
    }
}

/// The page a link opens on: who sent it, what happens next, and a button
/// that sends the code. Opening a link sends nothing: mail security
/// gateways fetch the links in the mail they scan, and each fetch would
/// spend a code (and an SMS) before the recipient ever clicked. Only the
/// form's POST does.
pub(super) fn start(look: &Look, token: &str, csrf: &str, to: &SentTo) -> Response {
    let main = format!(
        "{from}<p>{how}</p>\n<p class=\"muted\">{why}</p>\n{form}",
        from = sender_line(look),
        how = escape(&to.words(look, "start-phone", "start-email", &[])),
        why = escape(&look.t("start-why")),
        form = send_code_form(token, csrf, &look.t("send-code"), true),
    );
    page(look, StatusCode::OK, &look.t("start-title"), &main)
}

/// "Acme Corp sent you a secure message.", when the tenant is known.
fn sender_line(look: &Look) -> String {
    look.brand.as_ref().map_or(String::new(), |b| {
        format!(
            "<p class=\"lead\">{}</p>\n",
            escape(&look.ta("start-from", &[("sender", b.name.as_str().into())]))
        )
    })
}

/// The link's page for a step that opens without a code (`step_up =
/// "none"`): a button, so that a mail scanner fetching the link opens
/// nothing and spends no view.
pub(super) fn start_without_code(look: &Look, token: &str, csrf: &str) -> Response {
    let main = format!(
        "{from}<p>{text}</p>\n{form}",
        from = sender_line(look),
        text = escape(&look.t("start-no-code")),
        form = send_code_form(token, csrf, &look.t("open-message"), true),
    );
    page(look, StatusCode::OK, &look.t("start-title"), &main)
}

/// A form that asks for a code (a new one, if one was sent before).
fn send_code_form(token: &str, csrf: &str, button: &str, primary: bool) -> String {
    format!(
        "<form method=\"post\" action=\"/portal/{token}\" class=\"actions\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <button type=\"submit\"{class}>{button}</button>\n\
         </form>",
        token = escape(token),
        csrf = escape(csrf),
        button = escape(button),
        class = if primary { "" } else { " class=\"secondary\"" },
    )
}

/// What the code form says above the form.
pub(super) enum FormNote {
    Sent { valid_for_s: i64 },
    Wrong { tries_left: i64 },
    CodeExpired,
}

pub(super) fn code_form(
    look: &Look,
    token: &str,
    csrf: &str,
    to: &SentTo,
    note: &FormNote,
) -> Response {
    let again = send_code_form(token, csrf, &look.t("send-new-code"), false);
    let note = match note {
        FormNote::Sent { valid_for_s } => {
            let valid = look.lang.duration(*valid_for_s);
            format!(
                "<p class=\"notice info\" role=\"status\">{}</p>",
                escape(&to.words(
                    look,
                    "code-sent-phone",
                    "code-sent-email",
                    &[("valid", valid.as_str().into())]
                ))
            )
        }
        FormNote::Wrong { tries_left } => format!(
            "<p class=\"notice alert\" role=\"alert\">{}</p>",
            escape(&look.ta("code-wrong", &[("left", Arg::Number(*tries_left))]))
        ),
        FormNote::CodeExpired => format!(
            "<p class=\"notice alert\" role=\"alert\">{}</p>",
            escape(&look.t("code-expired"))
        ),
    };
    let main = format!(
        "{note}\n\
         <form method=\"post\" action=\"/portal/{token}/code\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <label for=\"code\">{label}</label>\n\
         <p class=\"hint\" id=\"code-hint\">{hint}</p>\n\
         <input id=\"code\" class=\"code\" name=\"code\" type=\"text\" inputmode=\"numeric\" \
         autocomplete=\"one-time-code\" pattern=\"[0-9]{{6}}\" minlength=\"6\" maxlength=\"6\" \
         aria-describedby=\"code-hint\" required autofocus>\n\
         <div class=\"actions\"><button type=\"submit\">{open}</button></div>\n\
         </form>\n\
         <p class=\"muted\">{no_code}</p>\n\
         {again}",
        token = escape(token),
        csrf = escape(csrf),
        label = escape(&look.t("code-label")),
        hint = escape(&look.t("code-hint")),
        open = escape(&look.t("open-message")),
        no_code = escape(&look.t("no-code")),
    );
    page(look, StatusCode::OK, &look.t("code-title"), &main)
}

/// What the message page shows.
pub(super) struct MessageView<'a> {
    pub token: &'a str,
    pub csrf: &'a str,
    pub sender: &'a str,
    pub body: &'a str,
    pub label: ladder_core::AssuranceLevel,
    pub opened_ms: i64,
    pub previous_access_ms: Option<i64>,
    pub view: i64,
    pub max_views: i64,
    pub link_expires_ms: i64,
}

/// The honest label's message ids and its style: (label, explanation, class).
pub(super) fn label_ids(
    level: ladder_core::AssuranceLevel,
) -> (&'static str, &'static str, &'static str) {
    use ladder_core::AssuranceLevel;
    match level {
        AssuranceLevel::None => ("label-none", "label-none-explain", "none"),
        AssuranceLevel::Transport => ("label-transport", "label-transport-explain", "transport"),
        AssuranceLevel::E2ee => ("label-e2ee", "label-e2ee-explain", "e2ee"),
        AssuranceLevel::E2eeAttested => ("label-e2ee-attested", "label-e2ee-explain", "e2ee"),
    }
}

pub(super) fn message(look: &Look, v: &MessageView<'_>) -> Response {
    let (label, explain, class) = label_ids(v.label);
    let previous = match v.previous_access_ms {
        Some(at) => look.ta("previous-access", &[("at", look.time(at).as_str().into())]),
        None => look.t("first-access"),
    };
    let body = escape(v.body).replace('\n', "<br>\n");
    let views = look.ta(
        "views-left",
        &[
            ("view", Arg::Number(v.view)),
            ("max", Arg::Number(v.max_views)),
            ("left", Arg::Number(v.max_views - v.view)),
            ("expires", look.time(v.link_expires_ms).as_str().into()),
        ],
    );
    let main = format!(
        "<section class=\"assurance {class}\" aria-labelledby=\"security-heading\">\n\
         <h2 id=\"security-heading\">{heading}</h2>\n\
         <p class=\"level\">{label}</p>\n<p>{explain}</p>\n</section>\n\
         <dl class=\"meta\">\n<dt>{from_l}</dt><dd>{sender}</dd>\n\
         <dt>{opened_l}</dt><dd>{opened}</dd>\n</dl>\n\
         <section aria-labelledby=\"message-heading\">\n\
         <h2 id=\"message-heading\">{message_h}</h2>\n\
         <div class=\"message-body\"><p>{body}</p></div>\n\
         </section>\n\
         <p class=\"muted\">{previous} {views}</p>\n\
         <div class=\"actions\">\n\
         <a class=\"button secondary\" href=\"/portal/{token}/download\">{download}</a>\n\
         <form method=\"post\" action=\"/portal/{token}/end\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <button type=\"submit\">{close}</button>\n\
         </form>\n</div>\n\
         <p class=\"hint no-print\">{close_hint} {print_hint}</p>",
        heading = escape(&look.t("security-heading")),
        label = escape(&look.t(label)),
        explain = escape(&look.t(explain)),
        from_l = escape(&look.t("from-label")),
        sender = escape(v.sender),
        opened_l = escape(&look.t("opened-label")),
        opened = escape(&look.time(v.opened_ms)),
        message_h = escape(&look.t("message-heading")),
        previous = escape(&previous),
        views = escape(&views),
        token = escape(v.token),
        download = escape(&look.t("download")),
        csrf = escape(v.csrf),
        close = escape(&look.t("close-message")),
        close_hint = escape(&look.t("close-hint")),
        print_hint = escape(&look.t("print-hint")),
    );
    let title = look.ta("message-title", &[("sender", v.sender.into())]);
    page(look, StatusCode::OK, &title, &main)
}

/// Where a notice for an in-app message points: the message is in the app.
pub(super) async fn in_app(headers: HeaderMap) -> Response {
    let look = Look::from_headers(&headers);
    let p = [look.t("in-app-body")];
    simple(&look, StatusCode::OK, "in-app-title", &p, None)
}

/// Nothing under `/portal` by this name.
pub(super) async fn not_found(headers: HeaderMap) -> Response {
    let look = Look::from_headers(&headers);
    let p = [look.t("not-found-body")];
    simple(&look, StatusCode::NOT_FOUND, "not-found-title", &p, None)
}

/// A method the portal does not serve on this path.
pub(super) async fn method_not_allowed(headers: HeaderMap) -> Response {
    let look = Look::from_headers(&headers);
    let p = [look.t("not-allowed-body")];
    let status = StatusCode::METHOD_NOT_ALLOWED;
    simple(&look, status, "not-allowed-title", &p, None)
}

/// The page for a failure inside the portal: logged with its detail (which
/// never holds content), shown without it.
pub(super) fn failure(look: &Look, e: &ServiceError) -> Response {
    match e {
        ServiceError::Contention => {
            let p = [look.t("busy-body")];
            simple(
                look,
                StatusCode::SERVICE_UNAVAILABLE,
                "busy-title",
                &p,
                None,
            )
        }
        other => {
            tracing::error!(error = %other, "portal request failed");
            let p = [look.t("failure-body")];
            let status = StatusCode::INTERNAL_SERVER_ERROR;
            simple(look, status, "failure-title", &p, None)
        }
    }
}
