//! A tenant's event subscriptions: create, change, delete, rotate the
//! signing secret — each audited in the transaction that does it.
//!
//! The secret is `whsec_` and the base64 of 32 bytes derived from the
//! tenant's keyring over a random salt the subscription keeps
//! ([`ladder_store::keyring::Keyring::derive`]): the database alone cannot
//! sign, nothing needs rewrapping when key-encryption keys rotate, and the
//! secret is handed out once (on creation and rotation) and never logged or
//! audited. After a rotation the previous secret keeps signing, beside the
//! new one, until its grace period ends.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ladder_store::event_hooks::{self, Subscription};
use ladder_store::{StoreError, ids};
use serde_json::json;
use zeroize::Zeroizing;

use super::TYPES;
use crate::config::EventsConfig;
use crate::service::audit;
use crate::service::error::ServiceError;
use crate::state::{AppState, now};

/// The keyring purpose secrets are derived for.
const PURPOSE: &str = "event subscription secret";
/// The longest endpoint URL accepted.
const MAX_URL: usize = 2048;

/// What a caller may set on a subscription; `None` leaves a field as it is
/// (or at its default on creation).
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// A subscription's signing key bytes for a salt.
fn key(state: &AppState, tenant_id: &str, salt: &str) -> Result<Zeroizing<[u8; 32]>, ServiceError> {
    Ok(state.keyring.derive(tenant_id, PURPOSE, salt)?)
}

/// The secret as the caller receives it: `whsec_` + base64.
fn secret(state: &AppState, tenant_id: &str, salt: &str) -> Result<String, ServiceError> {
    Ok(format!(
        "whsec_{}",
        B64.encode(key(state, tenant_id, salt)?.as_slice())
    ))
}

/// The keys that sign a delivery now: the current secret's, and the
/// previous one's during its grace period.
pub fn signing_keys(
    state: &AppState,
    s: &Subscription,
    at: i64,
) -> Result<Vec<Zeroizing<[u8; 32]>>, ServiceError> {
    let mut keys = vec![key(state, &s.tenant_id, &s.secret_salt)?];
    if let (Some(salt), Some(until)) = (&s.previous_salt, s.previous_until)
        && at < until
    {
        keys.push(key(state, &s.tenant_id, salt)?);
    }
    Ok(keys)
}

/// Checks an endpoint URL: `https://`, or `http://` to a loopback address
/// when the configuration allows it; no credentials in it. The URL itself
/// is never echoed (it may carry a token of the tenant's).
pub fn check_url(config: &EventsConfig, raw: &str) -> Result<String, ServiceError> {
    let bad = |why: &str| ServiceError::invalid("invalid_url", format!("field `url` {why}"));
    if raw.len() > MAX_URL || raw.chars().any(char::is_control) {
        return Err(bad(&format!(
            "must be at most {MAX_URL} characters of visible text"
        )));
    }
    let url = reqwest::Url::parse(raw).map_err(|_| bad("is not an absolute URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    let Some(host) = url.host_str() else {
        return Err(bad("must name a host"));
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !super::destination::Destinations::of(config).allows_url(url.as_str()) {
        return Err(bad(
            "must not point at a loopback, private or link-local address (the deployment allows that with `events.allow_private_networks`)",
        ));
    }
    match url.scheme() {
        "https" => Ok(url.to_string()),
        "http" if config.allow_http_loopback && loopback => Ok(url.to_string()),
        "http" if loopback => Err(bad(
            "must be https (http to a loopback address needs `events.allow_http_loopback`)",
        )),
        _ => Err(bad("must be https")),
    }
}

/// Checks a list of event types: each a known type, no repeats.
pub fn check_types(types: &[String]) -> Result<Vec<String>, ServiceError> {
    let mut out: Vec<String> = Vec::new();
    for (i, t) in types.iter().enumerate() {
        if !TYPES.contains(&t.as_str()) {
            return Err(ServiceError::invalid(
                "invalid_event_type",
                format!(
                    "field `event_types/{i}` is not an event type; known types: {}",
                    TYPES.join(", ")
                ),
            ));
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// Subscriptions one tenant may hold: every audited fact writes one row
/// per subscription that wants it, inside the request's transaction.
pub const MAX_PER_TENANT: usize = 20;

/// A transaction holding the tenant's row (PostgreSQL; SQLite has one
/// writer): changes to a tenant's subscriptions happen one after another,
/// so a rotation is never undone by a concurrent change written back from
/// an older read, and the count checked on creation stays true.
async fn begin_locked(state: &AppState, tenant_id: &str) -> Result<ladder_store::Tx, ServiceError> {
    let mut tx = state.store.begin().await?;
    ladder_store::policies::lock_tenant(&mut tx, state.store.dialect(), tenant_id).await?;
    Ok(tx)
}

fn salt() -> Result<String, ServiceError> {
    Ok(ids::random_hex(32)?)
}

/// Creates a subscription; answers it with its secret (the only time the
/// secret is shown, until a rotation).
pub async fn create(
    state: &AppState,
    tenant_id: &str,
    actor: &str,
    changes: Changes,
) -> Result<(Subscription, String), ServiceError> {
    let Some(raw) = changes.url.as_deref() else {
        return Err(ServiceError::invalid(
            "invalid_url",
            "field `url` is required",
        ));
    };
    let url = check_url(&state.config.events, raw)?;
    let event_types = check_types(changes.event_types.as_deref().unwrap_or_default())?;
    let at = now().0;
    let s = Subscription {
        id: ids::new_id(ids::SubscriptionId::PREFIX),
        tenant_id: tenant_id.to_string(),
        url,
        event_types,
        enabled: changes.enabled.unwrap_or(true),
        secret_salt: salt()?,
        previous_salt: None,
        previous_until: None,
        created_at: at,
        updated_at: at,
    };
    let secret = secret(state, tenant_id, &s.secret_salt)?;
    let mut tx = begin_locked(state, tenant_id).await?;
    let held = event_hooks::list(
        &mut tx,
        tenant_id,
        None,
        i64::try_from(MAX_PER_TENANT).unwrap_or(i64::MAX),
    )
    .await?;
    if held.len() >= MAX_PER_TENANT {
        return Err(ServiceError::conflict(
            "too_many_subscriptions",
            format!(
                "a tenant holds at most {MAX_PER_TENANT} event subscriptions; delete one first"
            ),
        ));
    }
    event_hooks::insert(&mut tx, &s).await?;
    audit::record(
        &mut tx,
        state,
        tenant_id,
        actor,
        "event_subscription_created",
        Some(&s.id),
        json!({ "event_types": s.event_types, "enabled": s.enabled }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok((s, secret))
}

/// One of the tenant's subscriptions; 404 for anything else.
pub async fn get(
    state: &AppState,
    tenant_id: &str,
    id: &ids::SubscriptionId,
) -> Result<Subscription, ServiceError> {
    let mut conn = state.store.acquire().await?;
    owned(&mut conn, tenant_id, id).await
}

/// [`get`] on a connection (or in a transaction).
async fn owned(
    conn: &mut sqlx::AnyConnection,
    tenant_id: &str,
    id: &ids::SubscriptionId,
) -> Result<Subscription, ServiceError> {
    event_hooks::get(conn, tenant_id, id.as_str())
        .await?
        .ok_or_else(|| ServiceError::not_found("event subscription", id.as_str()))
}

/// Changes what was given; audited with which fields changed (never the URL).
pub async fn update(
    state: &AppState,
    tenant_id: &str,
    actor: &str,
    id: &ids::SubscriptionId,
    changes: Changes,
) -> Result<Subscription, ServiceError> {
    let url = changes
        .url
        .as_deref()
        .map(|u| check_url(&state.config.events, u))
        .transpose()?;
    let types = changes
        .event_types
        .as_deref()
        .map(check_types)
        .transpose()?;
    let mut tx = begin_locked(state, tenant_id).await?;
    let mut s = owned(&mut tx, tenant_id, id).await?;
    let url_changed = url.as_ref().is_some_and(|u| *u != s.url);
    if let Some(u) = url {
        s.url = u;
    }
    if let Some(t) = types {
        s.event_types = t;
    }
    if let Some(e) = changes.enabled {
        s.enabled = e;
    }
    s.updated_at = now().0;
    let details =
        json!({ "url_changed": url_changed, "event_types": s.event_types, "enabled": s.enabled });
    save(tx, state, actor, &s, "event_subscription_updated", details).await?;
    Ok(s)
}

/// Writes back a changed subscription with its audit entry, and commits.
async fn save(
    mut tx: ladder_store::Tx,
    state: &AppState,
    actor: &str,
    s: &Subscription,
    kind: &str,
    details: serde_json::Value,
) -> Result<(), ServiceError> {
    event_hooks::update(&mut tx, s).await?;
    audit::record(
        &mut tx,
        state,
        &s.tenant_id,
        actor,
        kind,
        Some(&s.id),
        details,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// Deletes a subscription; the events still owed to it are given up.
pub async fn delete(
    state: &AppState,
    tenant_id: &str,
    actor: &str,
    id: &ids::SubscriptionId,
) -> Result<(), ServiceError> {
    let mut tx = state.store.begin().await?;
    if !event_hooks::delete(&mut tx, tenant_id, id.as_str(), now().0).await? {
        return Err(ServiceError::not_found("event subscription", id.as_str()));
    }
    audit::record(
        &mut tx,
        state,
        tenant_id,
        actor,
        "event_subscription_deleted",
        Some(id.as_str()),
        json!({}),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// A new secret; the previous one keeps signing for the configured grace
/// period. Answers the new secret and when the previous one stops signing.
pub async fn rotate(
    state: &AppState,
    tenant_id: &str,
    actor: &str,
    id: &ids::SubscriptionId,
) -> Result<(String, i64), ServiceError> {
    let mut tx = begin_locked(state, tenant_id).await?;
    let mut s = owned(&mut tx, tenant_id, id).await?;
    let at = now().0;
    let until =
        at.saturating_add(i64::try_from(state.config.events.secret_grace_s).unwrap_or(i64::MAX));
    s.previous_salt = Some(std::mem::replace(&mut s.secret_salt, salt()?));
    s.previous_until = Some(until);
    s.updated_at = at;
    let details = json!({ "previous_valid_until": until });
    save(
        tx,
        state,
        actor,
        &s,
        "event_subscription_secret_rotated",
        details,
    )
    .await?;
    Ok((secret(state, tenant_id, &s.secret_salt)?, until))
}

/// Owes an event again from now with a fresh run of attempts, named by its
/// id or by the id of one of its attempts. Answers the event's id.
pub async fn retry(
    state: &AppState,
    tenant_id: &str,
    actor: &str,
    id: &ids::SubscriptionId,
    attempt_or_event: &str,
) -> Result<String, ServiceError> {
    let mut tx = state.store.begin().await?;
    owned(&mut tx, tenant_id, id).await?;
    let event = event_hooks::event_named(&mut tx, tenant_id, id.as_str(), attempt_or_event)
        .await?
        .ok_or_else(|| ServiceError::not_found("event or delivery attempt", attempt_or_event))?;
    if !event_hooks::requeue(&mut tx, tenant_id, &event, crate::state::now_ms()).await? {
        return Err(ServiceError::conflict(
            "attempt_in_flight",
            format!("event `{event}` is being delivered now; retry when the attempt has ended"),
        ));
    }
    audit::record(
        &mut tx,
        state,
        tenant_id,
        actor,
        "event_retry_requested",
        Some(&event),
        json!({ "subscription": id.as_str() }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(event)
}
