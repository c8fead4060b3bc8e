//! What a caller sends, parsed at the edge before any service or query sees
//! it: ids by kind ([`ladder_store::ids`]), JSON bodies free of control
//! characters, headers in the encoding HTTP promises.
//!
//! The promise is that no input reaches storage unparsed: a NUL byte in an
//! id or a field is a 400 naming the field, never a database error (which
//! PostgreSQL raises for NUL in text and which would otherwise leave as a
//! 500), and nothing is written.

use axum::http::HeaderMap;
use ladder_store::ids::IdError;
use serde_json::Value;

use crate::service::error::ServiceError;

impl From<IdError> for ServiceError {
    fn from(e: IdError) -> Self {
        ServiceError::bad_request("invalid_id", e.to_string())
    }
}

/// Which path segment an id came from, for the error.
pub(crate) const PATH_ID: &str = "path segment `id`";

/// A control character other than tab, line feed and carriage return: no
/// field of any request has a use for one, and NUL breaks PostgreSQL text.
fn forbidden_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// The first string (or key) in `value` with a forbidden control character,
/// as a JSON pointer, and the character.
fn find_control(value: &Value, at: &mut String) -> Option<char> {
    match value {
        Value::String(s) => s.chars().find(|c| forbidden_control(*c)),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| {
            let len = at.len();
            at.push_str(&format!("/{i}"));
            let found = find_control(v, at);
            if found.is_none() {
                at.truncate(len);
            }
            found
        }),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let len = at.len();
            // A key's own characters are escaped below so the error never
            // carries the control character it complains about.
            at.push('/');
            at.push_str(&k.escape_default().to_string());
            if let Some(c) = k.chars().find(|c| forbidden_control(*c)) {
                return Some(c);
            }
            let found = find_control(v, at);
            if found.is_none() {
                at.truncate(len);
            }
            found
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

/// Refuses a JSON document any string of which holds a control character
/// (other than tab and line breaks), naming where (`/external_id`).
pub(crate) fn refuse_control_characters(value: &Value) -> Result<(), ServiceError> {
    let mut at = String::new();
    match find_control(value, &mut at) {
        None => Ok(()),
        Some(c) => Err(ServiceError::bad_request(
            "control_character",
            format!(
                "field `{}` contains a control character (U+{:04X}); no field accepts one",
                if at.is_empty() { "/" } else { at.as_str() },
                u32::from(c)
            ),
        )),
    }
}

/// A name from a path segment, or a 400 naming the segment (the text is
/// not echoed).
pub(crate) fn path_name<'a>(segment: &'static str, raw: &'a str) -> Result<&'a str, ServiceError> {
    if crate::service::send::valid_name(raw) {
        Ok(raw)
    } else {
        Err(ServiceError::bad_request(
            "invalid_name",
            format!("path segment `{segment}` must be 1-128 letters, digits, `-`, `_`, `.` or `:`"),
        ))
    }
}

/// A header's value as text: `Ok(None)` when absent, an error naming the
/// header when its bytes are not visible ASCII (HTTP allows other bytes,
/// ladder's headers do not), so "not UTF-8" is never mistaken for "missing".
pub(crate) fn header_text<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<Option<&'a str>, ServiceError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| {
            ServiceError::bad_request(
                "invalid_header_encoding",
                format!("header `{name}` must be visible ASCII text; it holds other bytes"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_in_a_field_is_named_by_its_path() {
        let e = refuse_control_characters(&json!({"external_id": "a\u{0}b"})).unwrap_err();
        assert!(e.to_string().contains("`/external_id`"), "{e}");
        assert!(e.to_string().contains("U+0000"), "{e}");
        let e =
            refuse_control_characters(&json!({"labels": {"os": ["ios", "x\u{1b}"]}})).unwrap_err();
        assert!(e.to_string().contains("`/labels/os/1`"), "{e}");
    }

    #[test]
    fn a_control_character_in_a_key_is_refused_without_echo() {
        let e = refuse_control_characters(&json!({"ex\u{0}t": 1})).unwrap_err();
        assert!(!e.to_string().contains('\u{0}'), "{e}");
    }

    #[test]
    fn line_breaks_and_tabs_in_text_are_fine() {
        assert!(refuse_control_characters(&json!({"body": "a\n\tb\r\n", "n": [1, null]})).is_ok());
    }
}
