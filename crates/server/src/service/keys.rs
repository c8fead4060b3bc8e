//! Key events: crypto-shredding a payload (retention expiry, revocation,
//! an undeliverable message) and rotating a tenant's key-encryption key.
//! Shredding destroys the payload's wrapped data key and its ciphertext
//! together; nothing can open it afterwards, and the event is audited.

use ladder_store::keyring::WrappedKey;
use ladder_store::messages::{self, Status};
use ladder_store::{StoreError, Tx, recipients, tenants};
use serde::Serialize;
use serde_json::json;

use crate::service::audit;
use crate::service::devices::unwrap_contact;
use crate::service::error::ServiceError;
use crate::state::{AppState, now};

/// Shreds one payload inside the caller's transaction; audited when
/// something was destroyed.
pub async fn shred_in(
    tx: &mut Tx,
    state: &AppState,
    tenant_id: &str,
    message_id: &str,
    reason: &str,
    actor: &str,
) -> Result<bool, ServiceError> {
    let done = messages::shred(tx, tenant_id, message_id, reason, now().0).await?;
    // Copies sealed to devices go too: a withdrawn or expired message is not
    // served from any inbox.
    ladder_store::inbox::remove_message(tx, tenant_id, message_id).await?;
    if done {
        audit::record(
            tx,
            state,
            tenant_id,
            actor,
            "payload_shredded",
            Some(message_id),
            json!({ "reason": reason }),
        )
        .await?;
        metrics::counter!("ladder_payloads_shredded_total", "reason" => reason.to_string())
            .increment(1);
    }
    Ok(done)
}

/// Destroys the server's copy of a payload that now exists only sealed to
/// the recipient's devices: an end-to-end encrypted message must not stay
/// readable to whoever holds the database and the keyring. The devices'
/// copies are kept.
pub async fn drop_server_copy(
    tx: &mut Tx,
    state: &AppState,
    tenant_id: &str,
    message_id: &str,
    actor: &str,
) -> Result<bool, ServiceError> {
    let done = messages::shred(tx, tenant_id, message_id, "sealed_to_devices", now().0).await?;
    if done {
        audit::record(
            tx,
            state,
            tenant_id,
            actor,
            "payload_shredded",
            Some(message_id),
            json!({ "reason": "sealed_to_devices" }),
        )
        .await?;
    }
    Ok(done)
}

/// `POST /v1/messages/{id}/revoke`: the sender withdraws a message. Its
/// payload is destroyed; queued work finds nothing to send.
pub async fn revoke_message(
    state: &AppState,
    tenant_id: &str,
    message_id: &str,
    actor: &str,
) -> Result<bool, ServiceError> {
    let mut tx = state.store.begin().await?;
    let mut message =
        messages::get_for_update(&mut tx, state.store.dialect(), tenant_id, message_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("message", message_id))?;
    let shredded = shred_in(&mut tx, state, tenant_id, message_id, "revoked", actor).await?;
    audit::record(
        &mut tx,
        state,
        tenant_id,
        actor,
        "message_revoked",
        Some(message_id),
        json!({ "status_before": message.status.as_str(), "payload_destroyed": shredded }),
    )
    .await?;
    // Revoked is final whatever the message had reached: a read receipt
    // arriving after revocation must not make it look read.
    if message.status == Status::AwaitingConfirmation {
        crate::service::stats::record(
            &mut tx,
            tenant_id,
            ladder_store::stats::Metric::ConfirmationAbandoned,
            &message.class,
        )
        .await?;
    }
    if message.status != Status::Revoked {
        message.status = Status::Revoked;
        message.confirmation_hash = None;
        message.updated_at = now().0;
        messages::update(&mut tx, &message).await?;
    }
    // What a provider already holds undelivered is taken back too.
    ladder_store::outbox::enqueue(
        &mut tx,
        tenant_id,
        message_id,
        ladder_store::outbox::Kind::Withdraw,
        crate::state::now_ms(),
    )
    .await?;
    messages::add_event(
        &mut tx,
        tenant_id,
        message_id,
        &messages::Event {
            at: now().0,
            kind: "revoked".into(),
            detail: json!({ "payload_destroyed": shredded }),
        },
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    state.wake.one();
    Ok(shredded)
}

/// Shreds payloads whose retention has ended. Returns how many.
pub async fn shred_expired(state: &AppState) -> Result<usize, ServiceError> {
    let due = {
        let mut conn = state
            .store
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        messages::expired_payloads(&mut conn, now().0, 200).await?
    };
    let mut n = 0;
    for (tenant_id, message_id) in due {
        let mut tx = state.store.begin().await?;
        if shred_in(
            &mut tx,
            state,
            &tenant_id,
            &message_id,
            "retention_expired",
            "system",
        )
        .await?
        {
            n += 1;
        }
        tx.commit().await.map_err(StoreError::from)?;
    }
    Ok(n)
}

#[derive(Debug, Serialize)]
pub struct Rotation {
    pub tenant: String,
    pub new_key: String,
    /// Payload data keys rewrapped under the new key.
    pub rewrapped: usize,
    /// Recipient contact keys rewrapped under the new key.
    pub contacts: usize,
    /// Old keys removed from the keyring: nothing references them any more.
    pub retired: Vec<String>,
    /// Old keys kept because something still referenced them when checked
    /// (a payload accepted during the rotation); run the rotation again.
    pub kept: Vec<String>,
}

/// `ladder keys rotate`: a new key-encryption key for every tenant, every
/// live payload's data key and every sealed contact rewrapped under it, and
/// the old keys retired once nothing references them. Payload ciphertexts do
/// not change; only the wrapped data keys do. A running node picks up the
/// new keyring on its next use of it.
pub async fn rotate_all(state: &AppState) -> Result<Vec<Rotation>, ServiceError> {
    let all = {
        let mut conn = state
            .store
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        tenants::list(&mut conn).await?
    };
    let mut out = Vec::new();
    for tenant in all {
        state.keyring.ensure_tenant(&tenant.id)?;
        let new_key = state.keyring.rotate(&tenant.id)?;
        let mut tx = state.store.begin().await?;
        let stale = messages::payloads_not_wrapped_by(&mut tx, &tenant.id, &new_key).await?;
        let mut rewrapped = 0;
        let mut old_keys = std::collections::BTreeSet::new();
        for p in stale {
            let (Some(kek_id), Some(bytes)) = (p.kek_id, p.wrapped_key) else {
                continue;
            };
            old_keys.insert(kek_id.clone());
            let key = state
                .keyring
                .unwrap(&tenant.id, &WrappedKey { kek_id, bytes })?;
            let wrapped = state.keyring.wrap(&tenant.id, &key)?;
            messages::rewrap_payload(
                &mut tx,
                &tenant.id,
                &p.message_id,
                &wrapped.kek_id,
                &wrapped.bytes,
            )
            .await?;
            rewrapped += 1;
        }
        let mut contacts = 0;
        for (recipient_id, blob) in recipients::sealed_contacts(&mut tx, &tenant.id).await? {
            let (key, mut sealed) = unwrap_contact(state, &tenant.id, &blob)?;
            if sealed.kek_id == new_key {
                continue;
            }
            old_keys.insert(sealed.kek_id.clone());
            let wrapped = state.keyring.wrap(&tenant.id, &key)?;
            sealed.kek_id = wrapped.kek_id;
            sealed.wrapped = hex::encode(wrapped.bytes);
            let blob =
                serde_json::to_vec(&sealed).map_err(|e| ServiceError::Internal(e.to_string()))?;
            recipients::update_sealed_contact(&mut tx, &tenant.id, &recipient_id, &blob).await?;
            contacts += 1;
        }
        audit::record(
            &mut tx,
            state,
            &tenant.id,
            "cli",
            "key_rotated",
            Some(&new_key),
            json!({ "rewrapped": rewrapped, "contacts": contacts }),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        // Retire only what nothing references any more.
        let mut conn = state
            .store
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        let mut kept = Vec::new();
        for old in &old_keys {
            if messages::count_wrapped_by(&mut conn, &tenant.id, old).await? > 0 {
                kept.push(old.clone());
            }
        }
        drop(conn);
        let retired = if kept.is_empty() {
            state.keyring.retire(&tenant.id, &new_key)?
        } else {
            Vec::new()
        };
        out.push(Rotation {
            tenant: tenant.name,
            new_key,
            rewrapped,
            contacts,
            retired,
            kept,
        });
    }
    Ok(out)
}
