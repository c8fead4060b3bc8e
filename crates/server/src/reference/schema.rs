//! Schemas as the reference page shows them: a type expression
//! (`array of Message`, `string (one of "a", "b")`, `Decision | null`) in
//! which a `$ref` becomes a link to its component, and the fields of inline
//! objects flattened into dotted names (`recipients[].id`) instead of nested
//! tables. Reads the JSON only, so it serves whatever produces the document.

use serde_json::Value;

use super::markdown;

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
pub fn ref_name(v: &Value) -> Option<(&str, &str)> {
    let target = v.get("$ref")?.as_str()?.strip_prefix("#/components/")?;
    target.split_once('/')
}

pub fn link(kind: &str, name: &str) -> Seg {
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

pub fn plain(text: impl Into<String>) -> Seg {
    Seg {
        text: text.into(),
        href: None,
    }
}

/// A string value, or empty.
pub fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
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
