//! The OpenAPI 3.1 document of the HTTP API, served at `/v1/openapi.json`.
//!
//! It is the contract integrators read and generate clients from: every
//! route with its parameters, bodies and answers, the decision answers of
//! `POST /v1/messages` (202 decision, 409 `confirmation_required` with a
//! one-time token, 422 blocked with reasons), the one error envelope, and
//! which routes need which API-key scope. The document is hand-written JSON
//! (`openapi.json`, next to this file) and compiled in, so the server serves
//! exactly what was reviewed.
//!
//! A hand-written document drifts unless something holds it in place: the
//! tests below fail when its paths and methods differ from
//! [`crate::api::ROUTES`] (the list the router is built beside), when a
//! `$ref` points nowhere, or when an operation that needs an API key does
//! not say so.

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// The document as JSON: the one source the reference page (`/v1/docs`)
/// renders from, whatever produces the document.
pub fn document_json() -> serde_json::Value {
    // INVARIANT: `DOCUMENT` is valid JSON (checked by the tests below); a
    // broken build would render an empty page rather than panic.
    serde_json::from_str(DOCUMENT).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::DOCUMENT;

    /// The operations called without an API key: operations endpoints,
    /// provider webhooks (authenticated by the provider's signature) and the
    /// device inbox (authenticated by the device key).
    const PUBLIC: [(&str, &str); 11] = [
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/v1/openapi.json"),
        ("get", "/v1/docs"),
        ("get", "/v1/docs/reference.css"),
        ("post", "/v1/webhooks/{channel}/{tenant}"),
        ("post", "/v1/webhooks/{channel}"),
        ("get", "/v1/device/me"),
        ("get", "/v1/device/inbox"),
        ("post", "/v1/device/inbox/{message_id}/ack"),
    ];

    /// The keys of an OpenAPI path item that are operations.
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    fn document() -> Value {
        serde_json::from_str(DOCUMENT).expect("openapi.json is not valid JSON")
    }

    /// Every operation as `(method, path, operation)`.
    fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
        let paths = doc["paths"].as_object().expect("`paths` is not an object");
        let mut out = Vec::new();
        for (path, item) in paths {
            let item = item
                .as_object()
                .unwrap_or_else(|| panic!("path item `{path}` is not an object"));
            for (key, op) in item {
                if METHODS.contains(&key.as_str()) {
                    out.push((key.clone(), path.clone(), op));
                }
            }
        }
        out
    }

    fn collect_refs<'a>(value: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "$ref" {
                        let target = v
                            .as_str()
                            .unwrap_or_else(|| panic!("`$ref` at {at} is not a string"));
                        out.push((at.clone(), target));
                    } else {
                        let key = k.replace('~', "~0").replace('/', "~1");
                        collect_refs(v, format!("{at}/{key}"), out);
                    }
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    collect_refs(v, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn the_document_is_openapi_3_1_and_every_ref_resolves() {
        let doc = document();
        let version = doc["openapi"].as_str().unwrap_or_default();
        assert!(
            version.starts_with("3.1"),
            "`openapi` is `{version}`, not 3.1.x"
        );
        assert_eq!(doc["info"]["title"], "ladder");
        assert!(doc["info"]["version"].is_string(), "`info.version` missing");

        let mut refs = Vec::new();
        collect_refs(&doc, String::new(), &mut refs);
        assert!(!refs.is_empty(), "the document has no `$ref` at all");
        let broken: Vec<String> = refs
            .iter()
            .filter(|(_, target)| {
                !target.starts_with("#/components/")
                    || target
                        .strip_prefix('#')
                        .and_then(|pointer| doc.pointer(pointer))
                        .is_none()
            })
            .map(|(at, target)| format!("{at}: {target}"))
            .collect();
        assert!(
            broken.is_empty(),
            "`$ref`s that resolve to no component:\n  {}",
            broken.join("\n  ")
        );
    }

    #[test]
    fn the_documented_operations_are_exactly_the_routes() {
        let routes: BTreeSet<(String, String)> = crate::api::ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(
            routes.len(),
            crate::api::ROUTES.len(),
            "`api::ROUTES` lists a route twice"
        );
        let doc = document();
        let documented: BTreeSet<(String, String)> = operations(&doc)
            .into_iter()
            .map(|(m, p, _)| (m, p))
            .collect();

        let show = |set: BTreeSet<&(String, String)>| -> String {
            if set.is_empty() {
                "(none)".to_string()
            } else {
                set.iter()
                    .map(|(m, p)| format!("{} {p}", m.to_uppercase()))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let undocumented = routes.difference(&documented).collect();
        let unrouted = documented.difference(&routes).collect();
        assert!(
            routes == documented,
            "openapi.json and api::ROUTES disagree.\n  routes missing from openapi.json: {}\n  operations in openapi.json missing from api::ROUTES: {}",
            show(undocumented),
            show(unrouted),
        );
    }

    #[test]
    fn every_operation_but_the_public_ones_needs_a_bearer_key() {
        let doc = document();
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer",
            "`components.securitySchemes.bearer` is not an HTTP bearer scheme"
        );
        let mut problems = Vec::new();
        for (method, path, op) in operations(&doc) {
            let name = format!("{} {path}", method.to_uppercase());
            let bearer = op["security"].as_array().is_some_and(|reqs| {
                reqs.iter()
                    .any(|r| r.as_object().is_some_and(|o| o.contains_key("bearer")))
            });
            let responses = &op["responses"];
            if PUBLIC.contains(&(method.as_str(), path.as_str())) {
                if bearer {
                    problems.push(format!("{name} is public but declares bearer security"));
                }
                continue;
            }
            if !bearer {
                problems.push(format!("{name} does not declare bearer security"));
            }
            if responses.get("401").is_none() {
                problems.push(format!("{name} does not document 401"));
            }
            if op["x-ladder-scope"] == "admin" && responses.get("403").is_none() {
                problems.push(format!(
                    "{name} needs admin scope but does not document 403"
                ));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
