//! Writing audit entries from the service. Every entry goes into the
//! caller's transaction, so the thing audited and its entry commit together.
//! Details hold ids, codes, levels and pseudonyms — never content or a raw
//! address. Each entry's index in the tenant's Merkle log is returned, so a
//! decision's answer can name it for inclusion proofs.

use ladder_store::Tx;
use ladder_store::audit::{self, AuditEvent};
use serde_json::Value;

use crate::service::error::ServiceError;
use crate::state::{AppState, now};

pub async fn record(
    tx: &mut Tx,
    state: &AppState,
    tenant_id: &str,
    actor: &str,
    kind: &str,
    subject: Option<&str>,
    details: Value,
) -> Result<u64, ServiceError> {
    let event = AuditEvent {
        kind: kind.to_string(),
        actor: actor.to_string(),
        subject: subject.map(str::to_string),
        details,
    };
    let entry = audit::append(tx, state.store.dialect(), tenant_id, now().0, &event).await?;
    metrics::counter!("ladder_audit_entries_total", "kind" => kind.to_string()).increment(1);
    // The event this fact announces to the tenant's endpoints, owed in the
    // same transaction.
    if let Some((event_type, data)) =
        crate::service::events::from_audit(kind, subject, &event.details)
    {
        crate::service::events::record(tx, tenant_id, event_type, data).await?;
    }
    // The entry's index in the tenant's Merkle log (sequence numbers start at 1).
    Ok(u64::try_from(entry.seq - 1).unwrap_or_default())
}
