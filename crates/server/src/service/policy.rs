//! Publishing a tenant's policy: validated exactly as `ladder policy
//! check` validates it; on any error nothing changes and the previous
//! version stays active.

use ladder_core::Policy;
use ladder_core::policy::PolicyErrors;
use ladder_store::Tx;
use ladder_store::policies::{self, StoredPolicy};
use serde_json::{Value, json};

use crate::service::audit;
use crate::service::error::ServiceError;
use crate::state::{AppState, now};

/// Diagnostics as JSON: line, column and message for each.
pub fn diagnostics(errors: &PolicyErrors) -> Value {
    Value::Array(
        errors
            .0
            .iter()
            .map(|e| {
                json!({
                    "line": e.location.line,
                    "column": e.location.column,
                    "message": e.kind.to_string(),
                })
            })
            .collect(),
    )
}

/// A unified line diff from `old` to `new` (hunks with three lines of
/// context, no file header; empty when they are equal): what the console
/// and `GET /v1/policy/diff` show before an observe → enforce switch.
pub fn diff(old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .to_string()
}

/// Which way a publication may move the tenant's revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The usual case: the new policy's `revision` is above the active
    /// one's (or it is the active version itself, republished).
    Forward,
    /// Back to a version that was once published, at a revision not above
    /// the active one; asked for explicitly and audited as a rollback.
    Rollback,
}

/// Validates `text` and makes it the tenant's active policy.
///
/// Revisions only move forward unless `direction` asks for a rollback:
/// devices report the revision they support and `min_policy_revision`
/// counts on it, so an older file published by mistake (an old checkout, a
/// stale CI artefact) must not silently replace a newer one.
pub async fn publish(
    tx: &mut Tx,
    state: &AppState,
    tenant_id: &str,
    tenant_name: &str,
    text: &str,
    actor: &str,
    direction: Direction,
) -> Result<StoredPolicy, ServiceError> {
    if let Some((at, c)) = text
        .char_indices()
        .find(|(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        let line = text
            .get(..at)
            .map_or(0, |before| before.matches('\n').count())
            + 1;
        return Err(ServiceError::bad_request(
            "control_character",
            format!(
                "the policy text holds a control character (U+{:04X}) on line {line}",
                u32::from(c)
            ),
        ));
    }
    let parsed = Policy::parse(text, "policy").map_err(|e| {
        ServiceError::invalid(
            "invalid_policy",
            format!("the policy does not validate: {e}"),
        )
        .with_details(diagnostics(&e))
    })?;
    let policy = parsed.policy;
    if policy.tenant() != tenant_name {
        return Err(ServiceError::invalid(
            "policy_for_other_tenant",
            format!(
                "the policy names tenant `{}`, but it is being published for tenant `{tenant_name}`",
                policy.tenant()
            ),
        ));
    }
    let stored = StoredPolicy {
        version: policy.version().to_string(),
        revision: i64::from(policy.revision()),
        source: text.to_string(),
        published_at: now().0,
        published_by: actor.to_string(),
    };
    policies::lock_tenant(tx, state.store.dialect(), tenant_id).await?;
    let active = policies::active(tx, tenant_id).await?;
    check_direction(tx, tenant_id, active.as_ref(), &stored, direction).await?;
    policies::publish(tx, tenant_id, &stored).await?;
    let kind = match direction {
        Direction::Forward => "policy_published",
        Direction::Rollback => "policy_rolled_back",
    };
    audit::record(
        tx,
        state,
        tenant_id,
        actor,
        kind,
        Some(&stored.version),
        json!({
            "version": stored.version,
            "revision": stored.revision,
            "previous_version": active.as_ref().map(|a| &a.version),
            "previous_revision": active.as_ref().map(|a| a.revision),
            "warnings": parsed.warnings.len(),
        }),
    )
    .await?;
    Ok(stored)
}

/// Refuses a publication that moves the revision the wrong way for
/// `direction`.
async fn check_direction(
    tx: &mut Tx,
    tenant_id: &str,
    active: Option<&StoredPolicy>,
    new: &StoredPolicy,
    direction: Direction,
) -> Result<(), ServiceError> {
    let Some(active) = active else {
        return match direction {
            Direction::Forward => Ok(()),
            Direction::Rollback => Err(ServiceError::invalid(
                "nothing_to_roll_back",
                "the tenant has no active policy to roll back from",
            )),
        };
    };
    let forward = new.revision > active.revision || new.version == active.version;
    match (direction, forward) {
        (Direction::Forward, true) => Ok(()),
        (Direction::Forward, false) => Err(ServiceError::conflict(
            "revision_not_newer",
            format!(
                "the policy's revision {} is not above the active revision {}; raise `revision`, or publish with rollback to return to an earlier version on purpose",
                new.revision, active.revision
            ),
        )),
        (Direction::Rollback, true) => Err(ServiceError::invalid(
            "not_a_rollback",
            format!(
                "revision {} is not below the active revision {}; publish it without rollback",
                new.revision, active.revision
            ),
        )),
        (Direction::Rollback, false) => {
            if policies::was_published(tx, tenant_id, &new.version).await? {
                Ok(())
            } else {
                Err(ServiceError::invalid(
                    "unknown_rollback_target",
                    format!(
                        "version {} was never published for this tenant; a rollback returns to a version that was in force",
                        new.version
                    ),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::diff;

    #[test]
    fn a_diff_shows_changed_lines_with_context_and_nothing_for_equal_texts() {
        let old = "a = 1\nmode = \"observe\"\nb = 2\n";
        let new = "a = 1\nmode = \"enforce\"\nb = 2\n";
        let d = diff(old, new);
        assert!(d.starts_with("@@ -1,3 +1,3 @@\n"), "{d}");
        assert!(
            d.contains("-mode = \"observe\"\n+mode = \"enforce\"\n"),
            "{d}"
        );
        assert!(d.contains(" a = 1\n") && d.contains(" b = 2\n"), "{d}");
        assert_eq!(diff(old, old), "");
    }
}
