//! The contract check every test answer goes through: the answer's status
//! must be documented for its operation in the server's own OpenAPI
//! document, and a JSON body must validate against that status's schema.
//! An undocumented route, status or field shape fails the test that saw it,
//! so the document cannot drift from what the server answers.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};

/// The operations each test binary saw answer, as `(method, path template,
/// status)`: `tests/contract.rs` checks every route was called.
pub fn seen() -> &'static Mutex<BTreeSet<(String, String, u16)>> {
    static SEEN: OnceLock<Mutex<BTreeSet<(String, String, u16)>>> = OnceLock::new();
    SEEN.get_or_init(|| Mutex::new(BTreeSet::new()))
}

fn document() -> &'static Value {
    ladder_server::openapi::document()
}

/// The documented path template `path` (without its query) matches: a
/// literal path first, else the one whose `{parameters}` match (an empty
/// segment too, but for the last: the router takes those, and the handler
/// refuses them).
pub fn template(method: &str, path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path);
    let paths = document()["paths"].as_object()?;
    if paths
        .get(path)
        .is_some_and(|item| item.get(method).is_some())
    {
        return Some(path.to_string());
    }
    let given: Vec<&str> = path.split('/').collect();
    paths
        .iter()
        .filter(|(_, item)| item.get(method).is_some())
        .map(|(t, _)| t)
        .find(|t| {
            let parts: Vec<&str> = t.split('/').collect();
            let last = given.len().saturating_sub(1);
            parts.len() == given.len()
                && parts.iter().zip(&given).enumerate().all(|(i, (p, g))| {
                    (p.starts_with('{') && p.ends_with('}') && (i < last || !g.is_empty()))
                        || p == g
                })
        })
        .cloned()
}

/// A validator for the schema at `pointer` in the document, with the
/// document's components beside it so `$ref`s resolve.
fn validator(pointer: &str) -> &'static jsonschema::Validator {
    static CACHE: OnceLock<Mutex<HashMap<String, &'static jsonschema::Validator>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(v) = cache.lock().unwrap().get(pointer) {
        return v;
    }
    // Compiled without the lock held: tests running beside this one wait
    // for nothing (two may compile the same schema once each).
    let schema = document()
        .pointer(pointer)
        .unwrap_or_else(|| panic!("no schema at {pointer}"));
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document()["components"],
        "allOf": [schema],
    });
    let v: &'static jsonschema::Validator = Box::leak(Box::new(
        jsonschema::validator_for(&root)
            .unwrap_or_else(|e| panic!("the schema at {pointer} does not compile: {e}")),
    ));
    cache.lock().unwrap().insert(pointer.to_string(), v);
    v
}

fn escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Checks one answer against the document; panics naming what differs.
pub fn check(method: &str, path: &str, status: u16, content_type: &str, text: &str) {
    let method = method.to_ascii_lowercase();
    let bare = path.split('?').next().unwrap_or(path);
    let documented =
        bare.starts_with("/v1/") || ["/healthz", "/readyz", "/metrics"].contains(&bare);
    let Some(template) = template(&method, path) else {
        if !documented {
            return; // the portal's and the console's pages: HTML, not the API
        }
        // No such operation: the router's own 404/405, in the envelope.
        assert!(
            matches!(status, 404 | 405),
            "{} {bare} is not in the OpenAPI document but answered {status}",
            method.to_uppercase()
        );
        let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        if let Err(e) = validator("/components/schemas/Error").validate(&body) {
            panic!(
                "{} {bare} {status}: not the error envelope: {e}\n{text}",
                method.to_uppercase()
            );
        }
        return;
    };
    seen()
        .lock()
        .unwrap()
        .insert((method.clone(), template.clone(), status));
    let at = format!("/paths/{}/{method}/responses/{status}", escape(&template));
    let Some(answer) = document().pointer(&at) else {
        panic!(
            "{} {template} answered {status}, which the OpenAPI document does not list:\n{text}",
            method.to_uppercase()
        );
    };
    let is_json = content_type.starts_with("application/json");
    if is_json {
        assert!(
            answer["content"].get("application/json").is_some(),
            "{} {template} {status} answered JSON, documented as {}",
            method.to_uppercase(),
            answer["content"]
        );
        let body: Value = serde_json::from_str(text).unwrap_or_else(|e| {
            panic!(
                "{} {template} {status}: the body is not JSON ({e})",
                method.to_uppercase()
            )
        });
        let v = validator(&format!("{at}/content/application~1json/schema"));
        let errors: Vec<String> = v
            .iter_errors(&body)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} {template} {status} does not match its documented schema:\n  {}\nbody: {text}",
            method.to_uppercase(),
            errors.join("\n  ")
        );
    } else if !content_type.is_empty() {
        let mime = content_type.split(';').next().unwrap_or_default().trim();
        assert!(
            answer["content"].get(mime).is_some(),
            "{} {template} {status} answered `{mime}`, documented as {}",
            method.to_uppercase(),
            answer["content"]
        );
    }
}
