//! The API reference page (`GET /v1/docs`) on SQLite and PostgreSQL: public,
//! HTML, with the console's strict headers, showing every path and every
//! component of the document the same node serves at `/v1/openapi.json`,
//! with every in-page link landing on an element of the page.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::{Backend, StatusCode, TestApp};

/// The console's policy: this origin's stylesheet only, nothing else.
const CSP: &str = "default-src 'none'; style-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// The values of `attr="…"` on the page.
fn attribute_values(html: &str, attr: &str) -> Vec<String> {
    let needle = format!(" {attr}=\"");
    html.split(needle.as_str())
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect()
}

async fn the_reference_page_shows_the_whole_document(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let doc: Value = app
        .client
        .get(format!("{}/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // No API key: the page is public.
    let answer = app
        .client
        .get(format!("{}/v1/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let headers = answer.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{headers:?}"
    );
    assert_eq!(headers["content-security-policy"], CSP);
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let html = answer.text().await.unwrap();
    assert!(!html.contains("<script"), "the page holds a script");
    assert!(!html.contains("style=\""), "the page holds an inline style");

    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/v1/docs"), "the page is not documented");
    for path in paths.keys() {
        assert!(
            html.contains(&format!("<code class=\"path\">{path}</code>")),
            "path `{path}` is not on the page"
        );
    }
    let mut components = 0;
    for (kind, named) in doc["components"].as_object().unwrap() {
        for name in named.as_object().unwrap().keys() {
            components += 1;
            assert!(
                html.contains(&format!("<code>{name}</code>")),
                "component `{kind}/{name}` is not on the page"
            );
        }
    }
    assert!(components > 60, "only {components} components");

    // Every in-page link (table of contents, `$ref`s, shared answers)
    // lands on an element; every stylesheet is this origin's one.
    let ids: BTreeSet<String> = attribute_values(&html, "id").into_iter().collect();
    let dangling: Vec<String> = attribute_values(&html, "href")
        .into_iter()
        .filter_map(|h| h.strip_prefix('#').map(str::to_string))
        .filter(|h| !ids.contains(h))
        .collect();
    assert!(dangling.is_empty(), "links to no element: {dangling:?}");
    assert!(html.contains("href=\"#schema-SendAnswer\""));
    assert_eq!(
        html.matches("rel=\"stylesheet\"").count(),
        1,
        "one stylesheet"
    );

    let css = app
        .client
        .get(format!("{}/v1/docs/reference.css", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert_eq!(css.headers()["content-security-policy"], CSP);
    app.stop().await;
}

both_backends!(the_reference_page_shows_the_whole_document);
