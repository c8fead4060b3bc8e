//! The OpenAPI 3.1 document of the HTTP API, served at `/v1/openapi.json`.
//!
//! It is the contract integrators read and generate clients from, and it is
//! generated from the handlers' own types: each handler carries its
//! `#[utoipa::path]` (parameters, body, every answer), each answer and
//! request body derives `ToSchema`, and [`Api`] lists the handlers. An
//! answer is serialised from the type the document describes, so a field
//! added to it is in the document; the server tests validate every answer
//! they see against it (`tests/support/mod.rs`), and `tests/contract.rs`
//! calls every route.
//!
//! What every operation shares is added here once, after generation: the
//! error answers that come from the layers rather than the handler (401 and
//! 403 by the operation's scope, 413 for a body, 500 everywhere), each with
//! the one error envelope. The tests below fail when the documented
//! operations differ from [`crate::api::ROUTES`], when a `$ref` points
//! nowhere, or when an operation that needs an API key does not say so.

use std::sync::OnceLock;

use serde_json::{Value, json};
use utoipa::OpenApi;

use crate::api::{
    admin, audit, device, events, history, lists, messages, ops, queue, recipients, stats,
    webhooks, wire,
};

/// The human introduction at the top of the document.
const INTRO: &str = "\
ladder routes sensitive messages over a secure fallback ladder and answers each send with the \
decision it took.

**Authentication.** Most operations take an API key: `Authorization: Bearer <key>`. A key has a \
scope, `sender` (send and follow messages, register recipients and devices) or `admin` (also \
policy, overrides, the audit log, statistics and the escalation queue); the scope an operation \
needs is named in its security requirement. A missing or unknown key answers 401, a key without \
the scope 403. Public operations need no key: operations endpoints, this document, provider \
webhooks (checked by the provider's signature) and the device inbox (checked by the device key's \
signature over the request).

**Errors.** Every failure answers with one JSON envelope, `{\"error\": {\"code\", \"message\", \
\"details\"?}}`: `code` is stable and machine-readable, `message` names the field or header at \
fault, `details` carries more where the code has it. Bad input changes nothing. A 500 answers a \
generic message; the server log has the detail.

**Decisions.** `POST /v1/messages`, `POST /v1/messages/{id}/confirm` and \
`GET /v1/messages/{id}` carry a typed `outcome` (an error never does): `deliver`, `hold` and \
`escalate` answer 202; `confirmation_required` answers 409 with a one-time `confirmation_token` \
(confirm the downgrade with it, or let the message wait); `block` answers 422. A 409 or 422 with \
`outcome` is a decision, one with `error` is a request error.

**Idempotency.** `POST /v1/messages` requires `Idempotency-Key`. A retry with the same key and \
request within the idempotency window (24 hours by default, `[api] idempotency_window`) gets \
the stored answer again, marked `Idempotent-Replayed: true`, and sends nothing twice; the same \
key with a different request answers 409 `idempotency_key_reused`. After the window the key is \
free: the same key sends a new message, and the old one keeps existing.";

/// The generated part of the document: every handler of
/// [`crate::api::ROUTES`], in its order.
#[derive(OpenApi)]
#[openapi(
    info(title = "ladder", description = "", license(name = "Apache-2.0")),
    paths(
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::openapi,
        crate::reference::page,
        crate::reference::stylesheet,
        messages::send,
        lists::messages,
        messages::status,
        messages::explain,
        messages::confirm,
        messages::confirmation_token,
        messages::revoke,
        recipients::register,
        lists::recipients,
        recipients::show,
        recipients::enrol,
        recipients::challenge,
        recipients::handshake,
        recipients::revoke,
        recipients::thread,
        admin::policy,
        admin::publish,
        admin::overrides,
        admin::set_override,
        admin::clear_override,
        admin::renew_override,
        audit::entries,
        audit::chain_checkpoints,
        audit::checkpoint_now,
        audit::log,
        audit::checkpoint_note,
        audit::inclusion,
        audit::consistency,
        ops::sandbox,
        stats::all,
        stats::class,
        queue::list,
        queue::send,
        queue::block,
        queue::extend,
        history::threads,
        history::versions,
        history::version,
        history::diff,
        webhooks::receive,
        webhooks::receive_deployment,
        device::me,
        device::list,
        device::ack,
        events::create,
        events::list,
        events::show,
        events::update,
        events::delete,
        events::rotate_secret,
        events::attempts,
        events::retry,
    ),
    components(schemas(wire::ErrorEnvelope, wire::ErrorBody, wire::DecisionOutcome))
)]
#[derive(Debug)]
pub struct Api;

/// The document as a JSON value, built once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

/// An owned copy of the document, for a reader that changes it.
pub fn document_json() -> Value {
    document().clone()
}

/// The document as served.
pub fn json() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| document().to_string())
}

/// The JSON of one error answer, pointing at the envelope.
fn error_answer(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn build() -> Value {
    let mut doc = serde_json::to_value(Api::openapi()).unwrap_or(Value::Null);
    if let Some(info) = doc.get_mut("info").and_then(Value::as_object_mut) {
        info.insert("description".into(), Value::String(INTRO.into()));
        info.insert(
            "version".into(),
            Value::String(env!("CARGO_PKG_VERSION").into()),
        );
    }
    if let Some(components) = doc.get_mut("components").and_then(Value::as_object_mut) {
        components.insert(
            "securitySchemes".into(),
            json!({ "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key. Its scope (`sender` or `admin`) is named in each operation's requirement; `admin` allows everything `sender` does."
            }}),
        );
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return doc;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            add_layer_answers(op);
        }
    }
    doc
}

/// The API-key scopes an operation's security requirement names; none for
/// a public one.
pub fn scopes(op: &Value) -> Vec<&str> {
    op.get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("bearer").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// The error answers of the layers every operation sits in.
fn add_layer_answers(op: &mut Value) {
    let scopes: Vec<String> = scopes(op).into_iter().map(str::to_string).collect();
    let has_body = op.get("requestBody").is_some();
    // The scope an API key needs, also as a plain field for readers that
    // do not walk security requirements (the reference page, the tests).
    if let Some(obj) = op.as_object_mut() {
        let scope = if scopes.iter().any(|s| s == "admin") {
            Some("admin")
        } else if scopes.is_empty() {
            None
        } else {
            Some("sender")
        };
        if let Some(scope) = scope {
            obj.insert("x-ladder-scope".into(), Value::String(scope.into()));
        }
    }
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status)
            .or_insert_with(|| error_answer(description));
    };
    if !scopes.is_empty() {
        add("401", "Missing or unknown API key (`unauthenticated`).");
    }
    if scopes.iter().any(|s| s == "admin") {
        add("403", "The key's scope is not `admin` (`forbidden`).");
    }
    if has_body {
        add(
            "413",
            "The body is larger than 256 KiB (`payload_too_large`).",
        );
    }
    add(
        "500",
        "Internal error; the server log has the detail (`internal`).",
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::scopes;

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
        let doc = super::document().clone();
        assert!(doc.is_object(), "the document did not build");
        doc
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
            "the document and api::ROUTES disagree.\n  routes missing from the document (add the handler to `Api`'s paths): {}\n  operations in the document missing from api::ROUTES: {}",
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
            let scopes = scopes(op);
            let responses = &op["responses"];
            if responses.get("500").is_none() {
                problems.push(format!("{name} does not document 500"));
            }
            if PUBLIC.contains(&(method.as_str(), path.as_str())) {
                if !scopes.is_empty() {
                    problems.push(format!("{name} is public but declares bearer security"));
                }
                continue;
            }
            if scopes.is_empty() {
                problems.push(format!(
                    "{name} does not declare bearer security with a scope"
                ));
            }
            if scopes.iter().any(|s| !matches!(*s, "sender" | "admin")) {
                problems.push(format!(
                    "{name} names a scope that is not `sender` or `admin`"
                ));
            }
            if responses.get("401").is_none() {
                problems.push(format!("{name} does not document 401"));
            }
            let named = op["x-ladder-scope"].as_str().unwrap_or_default();
            if !scopes.contains(&named) {
                problems.push(format!(
                    "{name}: `x-ladder-scope` `{named}` is not its security scope"
                ));
            }
            if scopes.contains(&"admin") && responses.get("403").is_none() {
                problems.push(format!(
                    "{name} needs admin scope but does not document 403"
                ));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    /// Every answer of every operation is described by a schema (JSON) or
    /// a content type (text), and every error answer is the one envelope.
    #[test]
    fn every_answer_has_content_and_errors_are_the_envelope() {
        let doc = document();
        let mut problems = Vec::new();
        for (method, path, op) in operations(&doc) {
            let name = format!("{} {path}", method.to_uppercase());
            let Some(responses) = op["responses"].as_object() else {
                problems.push(format!("{name} has no responses"));
                continue;
            };
            for (status, answer) in responses {
                let Some(content) = answer["content"].as_object() else {
                    problems.push(format!("{name} {status} has no content"));
                    continue;
                };
                let error = status.starts_with('4') || status.starts_with('5');
                let schema = &content
                    .get("application/json")
                    .map_or(&Value::Null, |c| &c["schema"]);
                // One level of `$ref` followed: a union names the envelope
                // in its component.
                let target = schema["$ref"]
                    .as_str()
                    .and_then(|r| r.strip_prefix('#'))
                    .and_then(|p| doc.pointer(p))
                    .unwrap_or(schema);
                let text = format!("{schema}{target}");
                if error && !text.contains("#/components/schemas/Error") && status != "503" {
                    problems.push(format!("{name} {status} is not the error envelope"));
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    /// Clients generated from the document name methods by operation id.
    #[test]
    fn operation_ids_are_unique() {
        let doc = document();
        let mut seen = BTreeSet::new();
        for (method, path, op) in operations(&doc) {
            let id = op["operationId"].as_str().unwrap_or_default().to_string();
            assert!(!id.is_empty(), "{method} {path} has no operationId");
            assert!(seen.insert(id.clone()), "operationId `{id}` is used twice");
        }
    }

    /// The introduction says how auth, errors, decisions and idempotency
    /// work, and the decision outcome is a typed enum.
    #[test]
    fn the_document_introduces_itself_and_types_the_outcome() {
        let doc = document();
        let intro = doc["info"]["description"].as_str().unwrap_or_default();
        for word in ["Bearer", "envelope", "outcome", "Idempotent-Replayed"] {
            assert!(intro.contains(word), "the intro does not mention `{word}`");
        }
        let outcome = &doc["components"]["schemas"]["DecisionOutcome"]["enum"];
        assert_eq!(
            outcome,
            &serde_json::json!([
                "deliver",
                "confirmation_required",
                "hold",
                "escalate",
                "block"
            ])
        );
        let send = &doc["paths"]["/v1/messages"]["post"]["responses"]["202"];
        assert!(
            send["headers"]["Idempotent-Replayed"].is_object(),
            "the replay header is not documented: {send}"
        );
    }

    /// The contract at a glance: every operation with its scope and the
    /// statuses it answers. A change to it shows in review as a snapshot
    /// diff.
    #[test]
    fn the_contract_at_a_glance() {
        let doc = document();
        let mut lines = Vec::new();
        for (method, path, op) in operations(&doc) {
            let scope = scopes(op);
            let scope = if scope.is_empty() {
                "public".to_string()
            } else {
                scope.join(",")
            };
            let statuses: Vec<&String> = op["responses"]
                .as_object()
                .map(|r| r.keys().collect())
                .unwrap_or_default();
            let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
            lines.push(format!(
                "{:6} {path} [{scope}] {}",
                method.to_uppercase(),
                statuses.join(" ")
            ));
        }
        insta::assert_snapshot!(lines.join("\n"));
    }
}
