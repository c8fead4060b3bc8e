//! What the reference page shows, read out of the OpenAPI document as a
//! `serde_json::Value`: operations grouped by tag, their parameters, bodies
//! and answers, and every component.
//!
//! The page is built from the document's JSON only (never from the
//! handlers), so whatever produces the document — the hand-written file
//! today, generated types tomorrow — the page shows exactly what clients
//! are generated from. Schemas are rendered by [`super::schema`].

use serde_json::{Map, Value};

use super::markdown;
use super::schema::{Seg, Shape, anchor, link, plain, ref_name, shape, text, ty};

/// The keys of an OpenAPI path item that are operations, in page order.
const METHODS: [&str; 8] = [
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];

#[derive(Debug)]
pub struct Parameter {
    pub name: String,
    pub location: String,
    pub required: bool,
    pub ty: Vec<Seg>,
    pub description: String,
}

/// A body in one content type.
#[derive(Debug)]
pub struct Content {
    pub media_type: String,
    pub shape: Shape,
}

#[derive(Debug)]
pub struct Answer {
    pub status: String,
    /// `s2xx`, `s4xx`…: the status family, for the stylesheet.
    pub family: String,
    /// The shared response it refers to, if any, with its anchor.
    pub shared: Option<Seg>,
    pub description: String,
    pub contents: Vec<Content>,
}

#[derive(Debug)]
pub struct Operation {
    pub anchor: String,
    pub method: String,
    pub path: String,
    pub summary: String,
    pub description: String,
    /// Whether an API key is needed, and of which scope.
    pub needs_key: bool,
    pub scope: Option<String>,
    pub parameters: Vec<Parameter>,
    pub body_required: bool,
    pub body: Vec<Content>,
    pub answers: Vec<Answer>,
}

#[derive(Debug)]
pub struct Tag {
    pub name: String,
    pub anchor: String,
    pub description: String,
    pub operations: Vec<Operation>,
}

/// A named component: a schema, a shared response, parameter or header.
#[derive(Debug)]
pub struct Component {
    pub name: String,
    pub anchor: String,
    pub description: String,
    pub shape: Shape,
}

/// The whole page.
#[derive(Debug)]
pub struct Reference {
    pub title: String,
    pub version: String,
    pub summary: String,
    pub intro: String,
    pub auth: Vec<Component>,
    pub tags: Vec<Tag>,
    pub schemas: Vec<Component>,
    pub responses: Vec<Component>,
    pub parameters: Vec<Component>,
    pub headers: Vec<Component>,
}

impl Reference {
    pub fn from_document(doc: &Value) -> Reference {
        let info = &doc["info"];
        let components = doc["components"].as_object();
        let section = |kind: &str, read: fn(&str, &Value) -> Component| -> Vec<Component> {
            components
                .and_then(|c| c.get(kind))
                .and_then(Value::as_object)
                .map(|m| m.iter().map(|(name, v)| read(name, v)).collect())
                .unwrap_or_default()
        };
        Reference {
            title: text(&info["title"]),
            version: text(&info["version"]),
            summary: text(&info["summary"]),
            intro: markdown(&text(&info["description"])),
            auth: section("securitySchemes", security_scheme),
            tags: tags(doc),
            schemas: section("schemas", schema_component),
            responses: section("responses", |name, v| {
                let answer = answer(name, v, &Value::Null);
                Component {
                    name: name.to_string(),
                    anchor: anchor("response", name),
                    description: answer.description,
                    shape: Shape {
                        ty: answer
                            .contents
                            .iter()
                            .flat_map(|c| c.shape.ty.clone())
                            .collect(),
                        fields: Vec::new(),
                    },
                }
            }),
            parameters: section("parameters", |name, v| {
                let p = parameter(v, &Value::Null);
                Component {
                    name: name.to_string(),
                    anchor: anchor("parameter", name),
                    description: format!(
                        "<p><code>{}</code> in {}{}</p>{}",
                        escape(&p.name),
                        escape(&p.location),
                        if p.required { ", required" } else { "" },
                        p.description
                    ),
                    shape: Shape {
                        ty: p.ty,
                        fields: Vec::new(),
                    },
                }
            }),
            headers: section("headers", |name, v| Component {
                name: name.to_string(),
                anchor: anchor("header", name),
                description: markdown(&text(&v["description"])),
                shape: shape(&v["schema"]),
            }),
        }
    }
}

/// The operations grouped by tag: the document's tags in their order, then
/// tags only operations name, then the untagged.
fn tags(doc: &Value) -> Vec<Tag> {
    let mut out: Vec<Tag> = doc["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .map(|t| new_tag(&text(&t["name"]), &text(&t["description"])))
                .collect()
        })
        .unwrap_or_default();
    let empty = Map::new();
    for (path, item) in doc["paths"].as_object().unwrap_or(&empty) {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let name = op["tags"]
                .get(0)
                .and_then(Value::as_str)
                .unwrap_or("other")
                .to_string();
            let operation = operation(doc, method, path, item, op);
            match out.iter_mut().find(|t| t.name == name) {
                Some(tag) => tag.operations.push(operation),
                None => {
                    let mut tag = new_tag(&name, "");
                    tag.operations.push(operation);
                    out.push(tag);
                }
            }
        }
    }
    out.retain(|t| !t.operations.is_empty());
    out
}

fn new_tag(name: &str, description: &str) -> Tag {
    Tag {
        name: name.to_string(),
        anchor: anchor("tag", name),
        description: markdown(description),
        operations: Vec::new(),
    }
}

fn operation(doc: &Value, method: &str, path: &str, item: &Value, op: &Value) -> Operation {
    let id = op["operationId"]
        .as_str()
        .map_or_else(|| format!("{method} {path}"), str::to_string);
    let mut parameters: Vec<Parameter> = Vec::new();
    for p in [&item["parameters"], &op["parameters"]]
        .into_iter()
        .filter_map(Value::as_array)
        .flatten()
    {
        let p = parameter(resolve(doc, p), p);
        // An operation's parameter replaces the path item's of the same name.
        parameters.retain(|q| (q.name.as_str(), q.location.as_str()) != (&p.name, &p.location));
        parameters.push(p);
    }
    let body = resolve(doc, &op["requestBody"]);
    let answers = op["responses"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(status, r)| {
                    let mut a = answer(status, resolve(doc, r), r);
                    a.shared = ref_name(r).map(|(kind, name)| link(kind, name));
                    a
                })
                .collect()
        })
        .unwrap_or_default();
    Operation {
        anchor: anchor("op", &id),
        method: method.to_uppercase(),
        path: path.to_string(),
        summary: text(&op["summary"]),
        description: markdown(&text(&op["description"])),
        needs_key: op["security"]
            .as_array()
            .is_some_and(|reqs| reqs.iter().any(|r| r.get("bearer").is_some())),
        scope: op["x-ladder-scope"].as_str().map(str::to_string),
        parameters,
        body_required: body["required"].as_bool().unwrap_or(false),
        body: contents(&body["content"]),
        answers,
    }
}

fn parameter(p: &Value, at_use: &Value) -> Parameter {
    let description = match at_use["description"].as_str() {
        Some(d) => d.to_string(),
        None => text(&p["description"]),
    };
    Parameter {
        name: text(&p["name"]),
        location: text(&p["in"]),
        required: p["required"].as_bool().unwrap_or(false),
        ty: ty(&p["schema"]),
        description: markdown(&description),
    }
}

/// A response; `at_use` is where it was referred to, whose `description`
/// (allowed beside a `$ref` in 3.1) wins.
fn answer(status: &str, r: &Value, at_use: &Value) -> Answer {
    let description = match at_use["description"].as_str() {
        Some(d) => d.to_string(),
        None => text(&r["description"]),
    };
    Answer {
        status: status.to_string(),
        family: format!("s{}xx", status.chars().next().unwrap_or('x')),
        shared: None,
        description: markdown(&description),
        contents: contents(&r["content"]),
    }
}

fn contents(content: &Value) -> Vec<Content> {
    content
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(media_type, c)| Content {
                    media_type: media_type.clone(),
                    shape: shape(&c["schema"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn security_scheme(name: &str, v: &Value) -> Component {
    let kind = [&v["type"], &v["scheme"]]
        .into_iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    Component {
        name: name.to_string(),
        anchor: anchor("security", name),
        description: markdown(&text(&v["description"])),
        shape: Shape {
            ty: vec![plain(kind)],
            fields: Vec::new(),
        },
    }
}

fn schema_component(name: &str, v: &Value) -> Component {
    Component {
        name: name.to_string(),
        anchor: anchor("schema", name),
        description: markdown(&text(&v["description"])),
        shape: shape(v),
    }
}

/// What a `$ref` points at, or `v` itself when it is none (or dangling).
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    v.get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|pointer| doc.pointer(pointer))
        .unwrap_or(v)
}

fn escape(s: &str) -> String {
    askama::filters::escape(s, askama::filters::Html)
        .map(|e| e.to_string())
        .unwrap_or_default()
}
