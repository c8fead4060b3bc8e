//! `GET /v1/docs`: the API reference as one server-rendered page.
//!
//! Integrators read the contract before they generate a client from it, and
//! a JSON document is not for reading. This page renders the very document
//! served at `/v1/openapi.json` ([`crate::openapi::document_json`], its one
//! source) into HTML: the introduction, a table of contents by tag, every
//! operation with its method, path, summary, description, the API-key scope
//! it needs, its parameters, request body and answers per status, and every
//! component with its fields, types, required marks and enums; a `$ref` is a
//! link to its component.
//!
//! Like the console it is public-facing HTML, so it carries the console's
//! strict headers (no scripts, no third-party assets, never framed) and one
//! stylesheet served from here. The document is compiled in, so the page is
//! rendered once and kept.

mod schema;
mod view;

use std::sync::OnceLock;

use askama::Template;
use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use pulldown_cmark::{Event, Parser};

use crate::service::error::ServiceError;
use crate::state::AppState;
use view::Reference;

const STYLESHEET: &str = include_str!("../../assets/reference.css");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/docs", get(page))
        .route("/v1/docs/reference.css", get(stylesheet))
        .layer(axum::middleware::map_response(
            crate::console::security_headers,
        ))
}

#[derive(Template)]
#[template(path = "reference.html")]
struct Page<'a> {
    r: &'a Reference,
}

/// The page for a document, as HTML.
pub fn render(document: &serde_json::Value) -> Result<String, askama::Error> {
    Page {
        r: &Reference::from_document(document),
    }
    .render()
}

/// The API reference: the OpenAPI document rendered as one page.
#[utoipa::path(get, path = "/v1/docs", tag = "operations", operation_id = "reference",
    responses((status = 200, description = "The page.", body = String, content_type = "text/html")))]
pub(crate) async fn page() -> Result<Response, ServiceError> {
    static PAGE: OnceLock<String> = OnceLock::new();
    let html = match PAGE.get() {
        Some(html) => html,
        None => {
            let html = render(&crate::openapi::document_json())
                .map_err(|e| ServiceError::Internal(format!("the reference page: {e}")))?;
            PAGE.get_or_init(|| html)
        }
    };
    Ok(([(CACHE_CONTROL, "max-age=300")], Html(html.as_str())).into_response())
}

/// The reference page's one stylesheet.
#[utoipa::path(get, path = "/v1/docs/reference.css", tag = "operations", operation_id = "referenceStylesheet",
    responses((status = 200, description = "The stylesheet.", body = String, content_type = "text/css")))]
pub(crate) async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "max-age=300"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// A description (CommonMark) as HTML. Raw HTML in it is shown as text,
/// never passed through: the page's markup is the template's alone.
fn markdown(text: &str) -> String {
    let events = Parser::new(text).map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        other => other,
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

#[cfg(test)]
mod tests {
    use super::markdown;

    #[test]
    fn descriptions_render_as_markdown_without_raw_html() {
        let html = markdown("**202** with `id`\n\n- one\n- two <script>x</script>");
        assert!(html.contains("<strong>202</strong>"), "{html}");
        assert!(html.contains("<code>id</code>"), "{html}");
        assert!(html.contains("<li>one</li>"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn the_served_document_renders_every_path_and_component() {
        let doc = crate::openapi::document_json();
        let html = super::render(&doc).unwrap();
        for path in doc["paths"].as_object().unwrap().keys() {
            let escaped = path.replace('&', "&amp;");
            assert!(html.contains(&escaped), "path `{path}` missing");
        }
        for (kind, names) in doc["components"].as_object().unwrap() {
            for name in names.as_object().unwrap().keys() {
                assert!(
                    html.contains(&format!(
                        "id=\"{}\"",
                        super::schema::anchor(
                            match kind.as_str() {
                                "schemas" => "schema",
                                "responses" => "response",
                                "parameters" => "parameter",
                                "headers" => "header",
                                _ => "security",
                            },
                            name
                        )
                    )),
                    "component `{kind}/{name}` has no section"
                );
            }
        }
        assert!(!html.contains("<script"), "the page holds a script");
    }
}
