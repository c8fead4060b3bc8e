//! What the reference page shows, read out of the OpenAPI document as a
//! `serde_json::Value`: operations grouped by tag, their parameters, bodies
//! and answers, and every component.
//!
//! The page is built from the document's JSON only (never from the
//! handlers), so whatever produces the document — the hand-written file
//! today, generated types tomorrow — the page shows exactly what clients
//! are generated from. Schemas are rendered as readable type expressions
//! (`array of Message`, `string (one of "a", "b")`, `Decision | null`) with
//! a `$ref` becoming a link to its component; inline objects are flattened
//! into dotted field names (`recipients[].id`) instead of nested tables.

use serde_json::{Map, Value};

use super::markdown;

/// The keys of an OpenAPI path item that are operations, in page order.
const METHODS: [&str; 8] = [
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];

/// Inline objects nested deeper than this are shown as `object` only.
const MAX_DEPTH: usize = 6;

/// One piece of a type expression: text, a link to a component when `href`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seg {
    pub text: String,
    pub href: Option<String>,
}

/// A field of an object, flattened: `name` is its dotted path.
#[derive(Debug)]
pub struct Field {
    pub name: String,
    pub ty: Vec<Seg>,
    pub required: bool,
    pub description: String,
}

/// A schema as the page shows it: its type, and the fields of its inline
/// objects.
#[derive(Debug)]
pub struct Shape {
    pub ty: Vec<Seg>,
    pub fields: Vec<Field>,
}

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

/// The schema's type and, for inline objects, its flattened fields.
pub fn shape(schema: &Value) -> Shape {
    let mut fields = Vec::new();
    flatten(schema, "", 0, &mut fields);
    Shape {
        ty: ty(schema),
        fields,
    }
}

fn flatten(schema: &Value, prefix: &str, depth: usize, out: &mut Vec<Field>) {
    if depth > MAX_DEPTH || schema.get("$ref").is_some() {
        return;
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(props) = schema["properties"].as_object() {
        for (name, sub) in props {
            let path = format!("{prefix}{name}");
            out.push(Field {
                name: path.clone(),
                ty: ty(sub),
                required: required.contains(&name.as_str()),
                description: markdown(&text(&sub["description"])),
            });
            flatten(sub, &format!("{path}."), depth + 1, out);
            flatten(&sub["items"], &format!("{path}[]."), depth + 1, out);
        }
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        for sub in schema[key].as_array().into_iter().flatten() {
            flatten(sub, prefix, depth + 1, out);
        }
    }
}

/// A schema as a type expression.
pub fn ty(schema: &Value) -> Vec<Seg> {
    ty_at(schema, 0)
}

fn ty_at(schema: &Value, depth: usize) -> Vec<Seg> {
    if depth > MAX_DEPTH {
        return vec![plain("…")];
    }
    if let Some((kind, name)) = ref_name(schema) {
        return vec![link(kind, name)];
    }
    if !schema.is_object() {
        return vec![plain("any")];
    }
    for (key, sep) in [("oneOf", " | "), ("anyOf", " | "), ("allOf", " & ")] {
        if let Some(parts) = schema[key].as_array() {
            return join(parts.iter().map(|p| ty_at(p, depth + 1)), sep);
        }
    }
    let mut out = match &schema["type"] {
        Value::Array(types) => join(
            types
                .iter()
                .map(|t| one_type(schema, t.as_str().unwrap_or("any"), depth)),
            " | ",
        ),
        Value::String(t) => one_type(schema, t, depth),
        _ if schema.get("properties").is_some() => vec![plain("object")],
        _ => vec![plain("any")],
    };
    if let Some(values) = schema["enum"].as_array() {
        out.push(plain(format!(" (one of {})", list(values))));
    }
    if let Some(value) = schema.get("const") {
        out.push(plain(format!(" (always {value})")));
    }
    out
}

fn one_type(schema: &Value, t: &str, depth: usize) -> Vec<Seg> {
    match t {
        "array" => {
            let mut out = vec![plain("array of ")];
            out.extend(ty_at(&schema["items"], depth + 1));
            out
        }
        "object" => match &schema["additionalProperties"] {
            extra @ Value::Object(_) if schema.get("properties").is_none() => {
                let mut out = vec![plain("map of string to ")];
                out.extend(ty_at(extra, depth + 1));
                out
            }
            _ => vec![plain("object")],
        },
        "null" => vec![plain("null")],
        other => match schema["format"].as_str() {
            Some(format) => vec![plain(format!("{other} ({format})"))],
            None => vec![plain(other)],
        },
    }
}

fn join(parts: impl Iterator<Item = Vec<Seg>>, sep: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for (i, part) in parts.enumerate() {
        if i > 0 {
            out.push(plain(sep));
        }
        out.extend(part);
    }
    out
}

fn list(values: &[Value]) -> String {
    values
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `#/components/{kind}/{name}` as `(kind, name)`.
fn ref_name(v: &Value) -> Option<(&str, &str)> {
    let target = v.get("$ref")?.as_str()?.strip_prefix("#/components/")?;
    target.split_once('/')
}

/// What a `$ref` points at, or `v` itself when it is none (or dangling).
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    v.get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|pointer| doc.pointer(pointer))
        .unwrap_or(v)
}

fn link(kind: &str, name: &str) -> Seg {
    let prefix = match kind {
        "schemas" => "schema",
        "responses" => "response",
        "parameters" => "parameter",
        "headers" => "header",
        _ => "component",
    };
    Seg {
        text: name.to_string(),
        href: Some(format!("#{}", anchor(prefix, name))),
    }
}

fn plain(text: impl Into<String>) -> Seg {
    Seg {
        text: text.into(),
        href: None,
    }
}

/// An element id: the prefix, then the name with anything but ASCII
/// letters, digits, `-` and `_` replaced by `-`.
pub fn anchor(prefix: &str, name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{prefix}-{name}")
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn escape(s: &str) -> String {
    askama::filters::escape(s, askama::filters::Html)
        .map(|e| e.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Seg, shape, ty};

    fn show(segs: &[Seg]) -> String {
        segs.iter()
            .map(|s| match &s.href {
                Some(h) => format!("[{}]({h})", s.text),
                None => s.text.clone(),
            })
            .collect()
    }

    #[test]
    fn types_read_as_expressions_with_links_to_components() {
        assert_eq!(
            show(&ty(
                &json!({ "type": "array", "items": { "$ref": "#/components/schemas/Message" } })
            )),
            "array of [Message](#schema-Message)"
        );
        assert_eq!(
            show(&ty(
                &json!({ "anyOf": [{ "$ref": "#/components/schemas/Thread" }, { "type": "null" }] })
            )),
            "[Thread](#schema-Thread) | null"
        );
        assert_eq!(
            show(&ty(&json!({ "type": "string", "enum": ["a", "b"] }))),
            "string (one of \"a\", \"b\")"
        );
        assert_eq!(
            show(&ty(
                &json!({ "type": ["integer", "null"], "format": "int64" })
            )),
            "integer (int64) | null"
        );
        assert_eq!(
            show(&ty(
                &json!({ "type": "object", "additionalProperties": { "type": "integer" } })
            )),
            "map of string to integer"
        );
    }

    #[test]
    fn inline_objects_flatten_into_dotted_fields() {
        let s = shape(&json!({
            "type": "object",
            "required": ["items"],
            "properties": {
                "items": { "type": "array", "items": {
                    "type": "object", "required": ["id"],
                    "properties": { "id": { "type": "string" }, "at": { "type": "integer" } } } },
                "next": { "$ref": "#/components/schemas/Cursor" }
            }
        }));
        let fields: Vec<(String, bool, String)> = s
            .fields
            .iter()
            .map(|f| (f.name.clone(), f.required, show(&f.ty)))
            .collect();
        assert_eq!(
            fields,
            [
                ("items".into(), true, "array of object".into()),
                ("items[].at".into(), false, "integer".into()),
                ("items[].id".into(), true, "string".into()),
                ("next".into(), false, "[Cursor](#schema-Cursor)".into()),
            ]
        );
    }
}
