//! Tenants and their API keys.
//!
//! A key is shown once, when issued; the database holds only its SHA-256.
//! Scopes: `sender` may send and read its tenant's messages, threads and
//! recipients; `admin` may also publish policy, set overrides and read the
//! audit log.

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use crate::error::StoreError;
use crate::ids::{new_id, new_token, token_hash};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub active_policy: Option<String>,
    pub created_at: i64,
}

/// What an API key may do. `Admin` includes `Sender`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Sender,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Sender => "sender",
            Scope::Admin => "admin",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Scope, StoreError> {
        match s {
            "sender" => Ok(Scope::Sender),
            "admin" => Ok(Scope::Admin),
            other => Err(StoreError::corrupt("api key scope", format!("`{other}`"))),
        }
    }

    /// Whether a key of this scope may act where `needed` is required.
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }
}

/// A freshly issued key: the token is in the clear here and nowhere else.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedKey {
    pub id: String,
    pub scope: Scope,
    pub token: String,
}

/// The caller an API key identifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant_id: String,
    pub key_id: String,
    pub scope: Scope,
}

fn tenant_from(row: &sqlx::any::AnyRow) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        active_policy: row.try_get("active_policy")?,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn create(conn: &mut AnyConnection, name: &str, now: i64) -> Result<Tenant, StoreError> {
    let tenant = Tenant {
        id: new_id("tnt"),
        name: name.to_string(),
        active_policy: None,
        created_at: now,
    };
    sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(&tenant.id)
        .bind(&tenant.name)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(tenant)
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<Tenant>, StoreError> {
    let row = sqlx::query("SELECT id, name, active_policy, created_at FROM tenants WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(tenant_from).transpose()
}

pub async fn find_by_name(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Option<Tenant>, StoreError> {
    let row =
        sqlx::query("SELECT id, name, active_policy, created_at FROM tenants WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    row.as_ref().map(tenant_from).transpose()
}

pub async fn list(conn: &mut AnyConnection) -> Result<Vec<Tenant>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, name, active_policy, created_at FROM tenants ORDER BY created_at, id",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(tenant_from).collect()
}

pub async fn issue_key(
    conn: &mut AnyConnection,
    tenant_id: &str,
    scope: Scope,
    now: i64,
) -> Result<IssuedKey, StoreError> {
    let key = IssuedKey {
        id: new_id("key"),
        scope,
        token: new_token(&format!("ldr_{}", scope.as_str()))?,
    };
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, token_hash, scope, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&key.id)
    .bind(tenant_id)
    .bind(token_hash(&key.token))
    .bind(scope.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(key)
}

/// The caller a presented token identifies, if it is a live key.
pub async fn authenticate(
    conn: &mut AnyConnection,
    token: &str,
) -> Result<Option<Caller>, StoreError> {
    let row = sqlx::query(
        "SELECT id, tenant_id, scope FROM api_keys WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(token_hash(token))
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let scope: String = row.try_get("scope")?;
    Ok(Some(Caller {
        tenant_id: row.try_get("tenant_id")?,
        key_id: row.try_get("id")?,
        scope: Scope::parse(&scope)?,
    }))
}
