//! Notice templates: the fixed, metadata-minimal text a notifier sends
//! ("You have a new secure message from Acme").
//!
//! The set of variables is closed and contains nothing about the message:
//! no class, subject, body or label can be named, so invariant 2 (a notice
//! never carries content) holds by construction of [`NoticeTemplate`].

use serde::{Deserialize, Serialize};

/// The only things a notice may say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeVariable {
    /// The tenant's display name.
    Tenant,
    /// The retrieval link (portal or app deep link).
    Link,
    /// How long the link stays valid, e.g. `72h`.
    ExpiresIn,
}

impl NoticeVariable {
    pub const ALL: [NoticeVariable; 3] = [
        NoticeVariable::Tenant,
        NoticeVariable::Link,
        NoticeVariable::ExpiresIn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeVariable::Tenant => "tenant",
            NoticeVariable::Link => "link",
            NoticeVariable::ExpiresIn => "expires_in",
        }
    }

    pub(crate) fn allowed_list() -> String {
        NoticeVariable::ALL
            .iter()
            .map(|v| format!("`{{{}}}`", v.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Variables someone will try, and what each would leak.
pub(crate) fn forbidden_variable(name: &str) -> Option<&'static str> {
    match name {
        "class" | "sensitivity" | "label" => Some("the message's class"),
        "subject" | "title" => Some("the message's subject"),
        "body" | "payload" | "content" | "message" | "text" => Some("the message's content"),
        "recipient" | "name" | "phone" | "email" | "address" => Some("the recipient's identity"),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "part", content = "value")]
pub(crate) enum Part {
    Text(String),
    Var(NoticeVariable),
}

/// A validated notice template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeTemplate {
    pub name: String,
    pub(crate) parts: Vec<Part>,
}

/// A notice ready to send: its text holds only the tenant's name, a link and
/// an expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedNotice(pub String);

impl NoticeTemplate {
    pub(crate) fn new(name: String, parts: Vec<Part>) -> Self {
        NoticeTemplate { name, parts }
    }

    pub fn render(&self, tenant: &str, link: &str, expires_in: &str) -> RenderedNotice {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(NoticeVariable::Tenant) => out.push_str(tenant),
                Part::Var(NoticeVariable::Link) => out.push_str(link),
                Part::Var(NoticeVariable::ExpiresIn) => out.push_str(expires_in),
            }
        }
        RenderedNotice(out)
    }

    /// The template's fixed text, for checks that it names no class. Each
    /// variable stands as a space: whatever it renders to may end a word, so
    /// `from{tenant}payroll` must read as naming `payroll`.
    pub fn literal_text(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.as_str(),
                Part::Var(_) => " ",
            })
            .collect()
    }
}

/// Why a template's text did not split into parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplateProblem {
    Unclosed,
    Forbidden {
        variable: String,
        what: &'static str,
    },
    Unknown {
        variable: String,
    },
}

/// Splits `Hello from {tenant}: {link}` into parts; `{{` and `}}` are literal
/// braces.
pub(crate) fn parse_template(text: &str) -> Result<Vec<Part>, TemplateProblem> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '{' => {
                let mut name = String::new();
                let mut closed = false;
                for n in chars.by_ref() {
                    if n == '}' {
                        closed = true;
                        break;
                    }
                    name.push(n);
                }
                if !closed {
                    return Err(TemplateProblem::Unclosed);
                }
                let name = name.trim().to_owned();
                let var = NoticeVariable::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == name);
                match var {
                    Some(v) => {
                        if !lit.is_empty() {
                            parts.push(Part::Text(std::mem::take(&mut lit)));
                        }
                        parts.push(Part::Var(v));
                    }
                    None => {
                        return Err(match forbidden_variable(&name) {
                            Some(what) => TemplateProblem::Forbidden {
                                variable: name,
                                what,
                            },
                            None => TemplateProblem::Unknown { variable: name },
                        });
                    }
                }
            }
            other => lit.push(other),
        }
    }
    if !lit.is_empty() {
        parts.push(Part::Text(lit));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_only_the_closed_set_of_variables() {
        let parts =
            parse_template("New secure message from {tenant}: {link} ({expires_in}) {{ok}}")
                .unwrap();
        let t = NoticeTemplate::new("default".into(), parts);
        assert_eq!(
            t.render("Acme", "https://x/p/abc", "72h").0,
            "New secure message from Acme: https://x/p/abc (72h) {ok}"
        );
    }

    #[test]
    fn rejects_content_variables_and_unknown_ones() {
        assert_eq!(
            parse_template("{subject}"),
            Err(TemplateProblem::Forbidden {
                variable: "subject".into(),
                what: "the message's subject"
            })
        );
        assert_eq!(
            parse_template("{weather}"),
            Err(TemplateProblem::Unknown {
                variable: "weather".into()
            })
        );
        assert_eq!(parse_template("hi {tenant"), Err(TemplateProblem::Unclosed));
    }
}
