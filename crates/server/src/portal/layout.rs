//! The frame every portal page shares, and what it is dressed in: the
//! tenant's name, logo and colours from its policy's `[branding]`, the
//! recipient's language and time zone, one stylesheet the server serves
//! itself, and the headers every portal response carries.
//!
//! A page that looks like the sender's is what tells a recipient it is not
//! phishing, but it must not loosen the page: the colours are validated
//! `#rrggbb` values set as CSS custom properties in one small `<style>`
//! whose SHA-256 the page's content security policy names (no
//! `unsafe-inline`), the logo is a validated `data:` image (the only
//! images allowed), and there are still no scripts, fonts, frames or
//! third-party requests.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderName, HeaderValue, PRAGMA,
    REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ladder_core::policy::branding::Branding;
use ladder_store::portal::Link;
use ladder_store::{Tx, recipients};
use sha2::{Digest, Sha256};

use super::locale::{self, Arg, Lang};
use crate::service::error::ServiceError;
use crate::state::AppState;

/// For responses that are not pages (the stylesheet, a download) and
/// pages that set none: nothing may load at all.
pub(super) const CSP: &str =
    "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The portal's one stylesheet, served from this origin.
pub(super) const STYLESHEET: &str = include_str!("../../assets/portal.css");
/// Where the stylesheet is served.
pub(super) const STYLESHEET_PATH: &str = "/portal/assets/portal.css";

/// Who a page speaks to and for: the language, the zone times are shown
/// in, and the tenant's look (`None` before the link is known: a neutral
/// page that names no tenant).
#[derive(Debug, Clone)]
pub(crate) struct Look {
    pub lang: Lang,
    pub zone: jiff::tz::TimeZone,
    pub brand: Option<Brand>,
}

/// The tenant as the portal shows it.
#[derive(Debug, Clone)]
pub(crate) struct Brand {
    pub name: String,
    pub branding: Branding,
}

impl Look {
    /// Before the link is known: the browser's language, UTC, no tenant.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Look {
        Look {
            lang: locale::negotiate(None, headers),
            zone: jiff::tz::TimeZone::UTC,
            brand: None,
        }
    }

    /// Once the link is known: the recipient's language (over the
    /// browser's) and zone, and the tenant's branding.
    pub(crate) async fn settle(
        &mut self,
        state: &AppState,
        tx: &mut Tx,
        headers: &HeaderMap,
        link: &Link,
    ) -> Result<(), ServiceError> {
        let recipient = recipients::get(tx, &link.tenant_id, &link.recipient_id).await?;
        if let Some(r) = &recipient {
            self.lang = locale::negotiate(r.language.as_deref(), headers);
            self.zone = locale::zone(r.time_zone.as_deref());
        }
        self.brand = match state.active_policy(tx, &link.tenant_id).await {
            Ok(policy) => Some(Brand {
                name: policy.portal_name().to_string(),
                branding: policy.branding(),
            }),
            Err(_) => None,
        };
        Ok(())
    }

    pub(crate) fn t(&self, id: &str) -> String {
        self.lang.t(id)
    }

    pub(crate) fn ta(&self, id: &str, args: &[(&'static str, Arg)]) -> String {
        self.lang.ta(id, args)
    }

    /// A moment in the recipient's zone and language.
    pub(crate) fn time(&self, ms: i64) -> String {
        self.lang.time(ms, &self.zone)
    }

    fn branding(&self) -> Branding {
        self.brand
            .as_ref()
            .map(|b| b.branding.clone())
            .unwrap_or_default()
    }
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

/// The only inline style: the tenant's validated colours.
fn theme(b: &Branding) -> String {
    format!(":root{{--accent:{};--on-accent:{}}}", b.accent(), b.text())
}

/// The page's policy: this origin's stylesheet and the one inline style
/// by its hash; `data:` images only when there is a logo.
fn page_csp(style: &str, logo: bool) -> String {
    use base64::Engine;
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(style.as_bytes()));
    let images = if logo { " img-src data:;" } else { "" };
    format!(
        "default-src 'none'; style-src 'self' 'sha256-{hash}';{images} form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// A padlock, drawn inline (no image request).
const LOCK: &str = "<svg viewBox=\"0 0 16 16\" aria-hidden=\"true\" focusable=\"false\">\
     <path d=\"M4 7V5a4 4 0 1 1 8 0v2h.5A1.5 1.5 0 0 1 14 8.5v6A1.5 1.5 0 0 1 12.5 16h-9A1.5 \
     1.5 0 0 1 2 14.5v-6A1.5 1.5 0 0 1 3.5 7H4zm2 0h4V5a2 2 0 1 0-4 0v2z\"/></svg>";

/// A whole page. `title` is text; `main` is HTML the caller built from
/// escaped parts.
pub(super) fn page(look: &Look, status: StatusCode, title: &str, main: &str) -> Response {
    let branding = look.branding();
    let style = theme(&branding);
    let csp = page_csp(&style, branding.logo().is_some());
    let (name, contact) = match &look.brand {
        Some(b) => (
            escape(&b.name),
            look.ta("footer-contact", &[("sender", b.name.as_str().into())]),
        ),
        None => (escape(&look.t("service-name")), look.t("footer-neutral")),
    };
    let logo = branding.logo().map_or(String::new(), |l| {
        format!(
            "<img class=\"logo\" src=\"{}\" alt=\"\" width=\"32\" height=\"32\">",
            l.data_uri()
        )
    });
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <meta name=\"robots\" content=\"noindex, nofollow\">\n\
         <meta name=\"color-scheme\" content=\"light\">\n\
         <title>{title} · {name}</title>\n\
         <link rel=\"stylesheet\" href=\"{STYLESHEET_PATH}\">\n\
         <style>{style}</style>\n</head>\n<body>\n\
         <header class=\"brand\">\n<div class=\"brand-inner\">\n\
         <span class=\"brand-id\">{logo}<span class=\"brand-name\">{name}</span></span>\n\
         <span class=\"secure\">{LOCK}{secure}</span>\n</div>\n</header>\n\
         <main class=\"sheet\">\n<h1>{title}</h1>\n{main}\n</main>\n\
         <footer class=\"foot\">\n<p>{safety} {contact}</p>\n<p>{service}</p>\n</footer>\n\
         </body>\n</html>\n",
        lang = look.lang.tag(),
        title = escape(title),
        secure = escape(&look.t("secure-connection")),
        safety = escape(&look.t("footer-safety")),
        contact = escape(&contact),
        service = escape(&look.t("service-name")),
    );
    let mut res = (
        status,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        html,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        res.headers_mut().insert(CONTENT_SECURITY_POLICY, v);
    }
    res
}

/// `GET /portal/assets/portal.css`.
pub(super) async fn stylesheet() -> Response {
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        STYLESHEET,
    )
        .into_response()
}

/// Adds the portal's headers to every response it gives; a page's own
/// content security policy (naming its style's hash) is kept, any other
/// response gets the strictest.
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
    if !h.contains_key(CONTENT_SECURITY_POLICY) {
        set(h, CONTENT_SECURITY_POLICY, CSP);
    }
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
    fn the_page_policy_names_its_one_style_by_hash() {
        let style = theme(&Branding::default());
        assert_eq!(style, ":root{--accent:#1f3a5f;--on-accent:#ffffff}");
        let csp = page_csp(&style, false);
        assert!(csp.starts_with("default-src 'none'; style-src 'self' 'sha256-"));
        assert!(!csp.contains("unsafe") && !csp.contains("img-src"), "{csp}");
        assert!(page_csp(&style, true).contains("img-src data:;"));
    }
}
