//! Publishing a tenant's policy: validated exactly as `ladder policy
//! check` validates it; on any error nothing changes and the previous
//! version stays active.

use ladder_core::Policy;
use ladder_core::policy::PolicyErrors;
use ladder_store::Tx;
use ladder_store::policies::{self, StoredPolicy};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::service::audit;
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

/// Validates `text` and makes it the tenant's active policy.
pub async fn publish(
    tx: &mut Tx,
    state: &AppState,
    tenant_id: &str,
    tenant_name: &str,
    text: &str,
    actor: &str,
) -> Result<StoredPolicy, ApiError> {
    let parsed = Policy::parse(text, "policy").map_err(|e| {
        ApiError::invalid(
            "invalid_policy",
            format!("the policy does not validate: {e}"),
        )
        .with_details(diagnostics(&e))
    })?;
    let policy = parsed.policy;
    if policy.tenant() != tenant_name {
        return Err(ApiError::invalid(
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
    policies::publish(tx, tenant_id, &stored).await?;
    audit::record(
        tx,
        state,
        tenant_id,
        actor,
        "policy_published",
        Some(&stored.version),
        json!({
            "version": stored.version,
            "revision": stored.revision,
            "warnings": parsed.warnings.len(),
        }),
    )
    .await?;
    Ok(stored)
}
