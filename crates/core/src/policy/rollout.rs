//! Rollout: a class moves from `observe` to `enforce` by a policy change,
//! never by a switch beside the policy, so the published revision always
//! says how every class is routed and the audit log records who moved it.
//!
//! [`enforce`] rewrites the policy file's text for one class: `mode`
//! becomes `enforce`, the `legacy` route (ignored under enforcement) is
//! removed, and `revision` rises by one, since publication accepts only a
//! higher revision. Everything else — comments, order, formatting — stays
//! as the security team wrote it, so the diff shows exactly the change.
//! The result is text to be published like any other; publication parses
//! and validates it again.

use toml_edit::{DocumentMut, Item, value};

/// Why a class could not be moved to enforcement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolloutError {
    #[error("the active policy is not valid TOML: {0}")]
    NotToml(String),
    #[error("the policy defines no class `{0}`")]
    NoSuchClass(String),
    #[error("class `{0}` is already enforced")]
    AlreadyEnforced(String),
    #[error("the policy's `revision` is not a whole number below 4294967295")]
    BadRevision,
}

/// The policy text with class `class` enforced and the revision raised.
pub fn enforce(source: &str, class: &str) -> Result<String, RolloutError> {
    let mut doc: DocumentMut = source
        .parse()
        .map_err(|e: toml_edit::TomlError| RolloutError::NotToml(e.message().to_string()))?;
    let revision = match doc.get("revision") {
        None => 0,
        Some(item) => item
            .as_integer()
            .and_then(|r| u32::try_from(r).ok())
            .ok_or(RolloutError::BadRevision)?,
    };
    let next = revision.checked_add(1).ok_or(RolloutError::BadRevision)?;
    let classes = doc
        .get_mut("class")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| RolloutError::NoSuchClass(class.to_string()))?;
    let table = classes
        .iter_mut()
        .find(|t| t.get("name").and_then(Item::as_str) == Some(class))
        .ok_or_else(|| RolloutError::NoSuchClass(class.to_string()))?;
    if table.get("mode").and_then(Item::as_str) != Some("observe") {
        return Err(RolloutError::AlreadyEnforced(class.to_string()));
    }
    table.insert("mode", value("enforce"));
    table.remove("legacy");
    doc.insert("revision", value(i64::from(next)));
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::{Mode, Policy};

    const ACME: &str = include_str!("../../../../examples/policies/acme.toml");

    #[test]
    fn enforcing_an_observed_class_changes_only_that_class_and_the_revision() {
        let before = Policy::parse(ACME, "acme.toml").unwrap().policy;
        let text = enforce(ACME, "support_escalation").unwrap();
        let after = Policy::parse(&text, "acme.toml").unwrap().policy;
        assert_eq!(after.revision(), before.revision() + 1);
        let class = after.class("support_escalation").unwrap();
        assert_eq!(class.mode, Mode::Enforce);
        assert!(class.legacy.is_none());
        for c in before.classes() {
            if c.name != "support_escalation" {
                assert_eq!(after.class(&c.name), Some(c), "{} unchanged", c.name);
            }
        }
        // Comments and layout survive: the diff is the change, nothing else.
        let removed: Vec<&str> = ACME.lines().filter(|l| !text.contains(*l)).collect();
        assert_eq!(
            removed,
            vec![
                "revision = 4",
                "mode = \"observe\"",
                "legacy = { container = \"rcs\" }"
            ]
        );
    }

    #[test]
    fn an_enforced_or_unknown_class_is_refused() {
        assert_eq!(
            enforce(ACME, "payroll"),
            Err(RolloutError::AlreadyEnforced("payroll".into()))
        );
        assert_eq!(
            enforce(ACME, "nope"),
            Err(RolloutError::NoSuchClass("nope".into()))
        );
        assert!(matches!(
            enforce("revision = [", "x"),
            Err(RolloutError::NotToml(_))
        ));
    }
}
