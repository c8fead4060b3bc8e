//! The service's operations, independent of HTTP: what the API handlers,
//! the workers and the CLI call. Each operation that changes state does so
//! in one transaction together with its audit entry.

pub mod audit;
pub mod confirm;
pub mod deliver;
pub mod devices;
pub mod error;
pub mod escalations;
pub mod events;
mod handover;
pub mod keys;
pub mod overrides;
pub mod policy;
pub mod receipts;
pub mod redecide;
pub mod send;
pub mod stats;
pub mod tenants;

use ladder_core::evidence::{ContactEvidence, RecipientEvidence};
use ladder_core::{Timestamp, assurance::EvidenceSource};
use ladder_store::recipients::{self, Device, Recipient};
use sqlx::AnyConnection;

use crate::service::error::ServiceError;

/// A recipient with everything the core needs to decide for them.
#[derive(Debug, Clone)]
pub struct RecipientState {
    pub recipient: Recipient,
    pub devices: Vec<Device>,
    pub evidence: RecipientEvidence,
}

/// Loads a recipient of `tenant_id` with its devices; 404 for anything not
/// this tenant's.
pub async fn load_recipient(
    conn: &mut AnyConnection,
    tenant_id: &str,
    recipient_id: &str,
) -> Result<RecipientState, ServiceError> {
    let recipient = recipients::get(conn, tenant_id, recipient_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("recipient", recipient_id))?;
    let devices = recipients::devices_of(conn, tenant_id, recipient_id).await?;
    let evidence = RecipientEvidence {
        devices: devices.iter().map(|d| d.evidence.clone()).collect(),
        // The providers accepted the addresses when they were registered:
        // provider observations, as fresh as the policy says. The phone
        // number is what a portal's one-time code goes to by SMS, so the
        // decision knows whether the portal could be opened.
        email: recipient.has_email.then_some(ContactEvidence {
            source: EvidenceSource::ProviderCheck,
            observed_at: Timestamp(recipient.created_at),
        }),
        phone: recipient.has_phone.then_some(ContactEvidence {
            source: EvidenceSource::ProviderCheck,
            observed_at: Timestamp(recipient.created_at),
        }),
    };
    Ok(RecipientState {
        recipient,
        devices,
        evidence,
    })
}

/// Opens a payload at rest: unwraps its data key with the tenant key and
/// decrypts it, bound to its tenant and message. `None` once shredded.
pub fn open_payload(
    state: &crate::state::AppState,
    tenant_id: &str,
    message_id: &str,
    stored: ladder_store::messages::StoredPayload,
) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, ServiceError> {
    let (Some(kek_id), Some(bytes), Some(ciphertext)) =
        (stored.kek_id, stored.wrapped_key, stored.ciphertext)
    else {
        return Ok(None);
    };
    let key = state.keyring.unwrap(
        tenant_id,
        &ladder_store::keyring::WrappedKey { kek_id, bytes },
    )?;
    let plain = ladder_store::sealed::open(&key, &payload_aad(tenant_id, message_id), &ciphertext)
        .map_err(|e| {
            ServiceError::Internal(format!("payload of {message_id} does not open: {e}"))
        })?;
    Ok(Some(plain))
}

/// The associated data that binds a sealed payload to its tenant and
/// message, so a ciphertext moved to another row does not open.
pub fn payload_aad(tenant_id: &str, message_id: &str) -> Vec<u8> {
    let mut aad = b"ladder payload v1\0".to_vec();
    aad.extend_from_slice(tenant_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(message_id.as_bytes());
    aad
}

/// The associated data for a recipient's sealed contact addresses.
pub fn contact_aad(tenant_id: &str, recipient_id: &str) -> Vec<u8> {
    let mut aad = b"ladder contact v1\0".to_vec();
    aad.extend_from_slice(tenant_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(recipient_id.as_bytes());
    aad
}
