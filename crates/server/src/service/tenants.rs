//! Creating tenants: a tenant row, its keys in the keyring, its first
//! policy and one API key per scope, all or nothing.

use ladder_store::tenants::{self, IssuedKey, Scope, Tenant};

use crate::service::error::ServiceError;
use crate::service::{audit, policy};
use crate::state::{AppState, now};

#[derive(Debug, serde::Serialize)]
pub struct CreatedTenant {
    pub tenant: Tenant,
    pub policy_version: String,
    pub keys: Vec<IssuedKey>,
}

pub async fn create(
    state: &AppState,
    name: &str,
    policy_text: &str,
    actor: &str,
) -> Result<CreatedTenant, ServiceError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(ServiceError::invalid(
            "invalid_tenant_name",
            format!("tenant name `{name}` must be 1-64 letters, digits, `-` or `_`"),
        ));
    }
    let mut tx = state.store.begin().await?;
    if tenants::find_by_name(&mut tx, name).await?.is_some() {
        return Err(ServiceError::conflict(
            "tenant_exists",
            format!("a tenant named `{name}` already exists"),
        ));
    }
    let at = now().0;
    let tenant = tenants::create(&mut tx, name, at).await?;
    state.keyring.ensure_tenant(&tenant.id)?;
    let stored = policy::publish(
        &mut tx,
        state,
        &tenant.id,
        name,
        policy_text,
        actor,
        policy::Direction::Forward,
    )
    .await?;
    let mut keys = Vec::new();
    for scope in [Scope::Sender, Scope::Admin] {
        let key = tenants::issue_key(&mut tx, &tenant.id, scope, at).await?;
        audit::record(
            &mut tx,
            state,
            &tenant.id,
            actor,
            "api_key_issued",
            Some(&key.id),
            serde_json::json!({ "scope": scope.as_str() }),
        )
        .await?;
        keys.push(key);
    }
    tx.commit().await.map_err(ladder_store::StoreError::from)?;
    let tenant = Tenant {
        active_policy: Some(stored.version.clone()),
        ..tenant
    };
    Ok(CreatedTenant {
        tenant,
        policy_version: stored.version,
        keys,
    })
}
