//! Outbound event webhooks: what ladder tells a tenant's own endpoints, as
//! the Standard Webhooks specification shapes it
//! (<https://www.standardwebhooks.com>).
//!
//! Events are derived where the service already writes audit entries
//! ([`crate::service::audit::record`] calls [`from_audit`]), so each one is
//! owed — a row in `event_deliveries` per subscription that wants it — in
//! the same transaction as the fact it reports. [`outbound`] delivers them
//! off the request path; [`subscriptions`] manages the endpoints.
//!
//! An event's data holds ids, the class, route and assurance labels and
//! cause codes, built field by field here from the audit details: never
//! message content, an address, a phone number, a token or a key.

pub mod destination;
pub mod outbound;
pub mod subscriptions;

use ladder_store::event_hooks::{self, NewEvent};
use ladder_store::{Tx, ids};
use serde_json::{Map, Value, json};

use crate::service::error::ServiceError;
use crate::state::{now, now_ms};

/// Every event type, as a subscription's filter names them.
pub const TYPES: &[&str] = &[
    "message.accepted",
    "message.confirmation_required",
    "message.delivered",
    "message.read",
    "message.fallback",
    "message.escalated",
    "message.held",
    "message.blocked",
    "message.expired",
    "message.revoked",
    "thread.downgraded",
    "thread.elevated",
    "override.set",
    "override.cleared",
];

/// Copies the named fields of `details` that are present (and not null).
fn pick(details: &Value, fields: &[&str], into: &mut Map<String, Value>) {
    for f in fields {
        if let Some(v) = details.get(*f).filter(|v| !v.is_null()) {
            into.insert((*f).to_string(), v.clone());
        }
    }
}

/// Data naming the subject as `{id_field}` plus the picked fields and any
/// fixed ones.
fn data(
    id_field: &str,
    subject: Option<&str>,
    details: &Value,
    fields: &[&str],
    fixed: Value,
) -> Value {
    let mut out = Map::new();
    if let Some(s) = subject {
        out.insert(id_field.to_string(), json!(s));
    }
    pick(details, fields, &mut out);
    if let Value::Object(extra) = fixed {
        out.extend(extra);
    }
    Value::Object(out)
}

/// The event an audit entry announces, if any: its type and data.
pub fn from_audit(
    kind: &str,
    subject: Option<&str>,
    details: &Value,
) -> Option<(&'static str, Value)> {
    let status = details.get("status").and_then(Value::as_str);
    let reason = details.get("reason").and_then(Value::as_str);
    let message =
        |fields: &[&str], fixed: Value| data("message_id", subject, details, fields, fixed);
    let decided: &[&str] = &[
        "class",
        "mode",
        "route",
        "assurance",
        "policy_version",
        "thread",
    ];
    Some(match kind {
        "decision" => {
            let t = match details.get("outcome").and_then(Value::as_str)? {
                "confirmation_required" => "message.confirmation_required",
                "escalate" => "message.escalated",
                "hold" => "message.held",
                "block" => "message.blocked",
                _ => return None,
            };
            let mut d = message(decided, json!({}));
            if let Some(o) = d.as_object_mut()
                && let Some(thread) = o.remove("thread")
            {
                o.insert("thread_id".into(), thread);
            }
            (t, d)
        }
        "escalation_blocked" => ("message.blocked", message(&[], json!({ "by": "operator" }))),
        "delivered" => (
            "message.delivered",
            message(
                &["route", "assurance"],
                json!({ "confirmed_by": "hand_over" }),
            ),
        ),
        "delivery_receipt" if status == Some("delivered") => (
            "message.delivered",
            message(&["channel"], json!({ "confirmed_by": "receipt" })),
        ),
        "delivery_receipt" if status == Some("read") => {
            ("message.read", message(&["channel"], json!({})))
        }
        // The recipient opened it on the portal: the first view is the
        // read; later views of the same link announce nothing new.
        "portal_viewed" if details.get("view").and_then(Value::as_i64) == Some(1) => {
            ("message.read", message(&[], json!({ "channel": "portal" })))
        }
        "payload_shredded" if reason == Some("retention_expired") => (
            "message.expired",
            message(&[], json!({ "cause": "retention_expired" })),
        ),
        "fallback" => (
            "message.fallback",
            message(
                &[],
                json!({
                    "from": { "step": details.get("failed_step"), "channel": details.get("failed_channel") },
                    "to": details.get("next_route"),
                    "next": details.get("next"),
                    "cause": details.get("reason"),
                }),
            ),
        ),
        "message_revoked" => ("message.revoked", message(&["status_before"], json!({}))),
        "thread_downgraded" => (
            "thread.downgraded",
            data(
                "thread_id",
                subject,
                details,
                &["from", "to", "causes"],
                json!({ "message_id": details.get("message") }),
            ),
        ),
        "thread_elevated" => (
            "thread.elevated",
            data("thread_id", subject, details, &["from", "to"], json!({})),
        ),
        "override_set" => {
            let rule = details.get("rule")?;
            (
                "override.set",
                data(
                    "override_id",
                    subject,
                    rule,
                    &["channel", "effect", "to", "expires"],
                    json!({}),
                ),
            )
        }
        "override_cleared" | "override_expired" => (
            "override.cleared",
            data(
                "override_id",
                subject,
                details,
                &[],
                json!({ "cause": kind.trim_start_matches("override_") }),
            ),
        ),
        _ => return None,
    })
}

/// Owes an event of `event_type` to every enabled subscription of the
/// tenant that wants it, in the caller's transaction. Message events get
/// the message's class when the audit details did not carry it.
pub async fn record(
    tx: &mut Tx,
    tenant_id: &str,
    event_type: &'static str,
    mut data: Value,
) -> Result<usize, ServiceError> {
    let subscribers = event_hooks::listening(tx, tenant_id, event_type).await?;
    if subscribers.is_empty() {
        return Ok(0);
    }
    let message_id = data
        .get("message_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let (Some(id), Some(obj)) = (message_id, data.as_object_mut())
        && !obj.contains_key("class")
        && let Some(class) = event_hooks::message_class(tx, tenant_id, &id).await?
    {
        obj.insert("class".into(), json!(class));
    }
    let at = now();
    let payload = json!({ "type": event_type, "timestamp": at.to_string(), "data": data });
    let payload =
        serde_json::to_string(&payload).map_err(|e| ServiceError::Internal(e.to_string()))?;
    for s in &subscribers {
        let id = ids::new_id(ids::EventId::PREFIX);
        event_hooks::enqueue(
            tx,
            &NewEvent {
                id: &id,
                tenant_id,
                subscription_id: &s.id,
                event_type,
                payload: &payload,
                created_at: at.0,
                due_ms: now_ms(),
            },
        )
        .await?;
    }
    metrics::counter!("ladder_events_recorded_total", "type" => event_type).increment(1);
    Ok(subscribers.len())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{TYPES, from_audit};

    #[test]
    fn audit_entries_map_to_their_events_with_ids_and_codes_only() {
        let rule = json!({ "rule": {
            "id": "sms-off", "channel": "sms", "effect": "disable",
            "reason": "carrier incident at +15550001111", "author": "ops@example.com",
            "expires": 1_800_000_000, "match": {}
        }});
        let (t, d) = from_audit("override_set", Some("sms-off"), &rule).unwrap();
        assert_eq!(t, "override.set");
        assert_eq!(
            d,
            json!({ "override_id": "sms-off", "channel": "sms", "effect": "disable", "expires": 1_800_000_000 })
        );
        let (t, d) = from_audit(
            "override_expired",
            Some("sms-off"),
            &json!({ "expired_at": 5 }),
        )
        .unwrap();
        assert_eq!(
            (t, d),
            (
                "override.cleared",
                json!({ "override_id": "sms-off", "cause": "expired" })
            )
        );
        let (t, d) = from_audit(
            "override_cleared",
            Some("sms-off"),
            &json!({ "reason": "free text" }),
        )
        .unwrap();
        assert_eq!(
            (t, d),
            (
                "override.cleared",
                json!({ "override_id": "sms-off", "cause": "cleared" })
            )
        );

        let decision = json!({
            "class": "payroll", "mode": "enforce", "outcome": "escalate", "route": null,
            "policy_version": "v1", "recipient": "p:abc", "thread": "thr_1", "skipped": []
        });
        let (t, d) = from_audit("decision", Some("msg_1"), &decision).unwrap();
        assert_eq!(t, "message.escalated");
        assert_eq!(
            d,
            json!({ "message_id": "msg_1", "class": "payroll", "mode": "enforce", "policy_version": "v1", "thread_id": "thr_1" })
        );
        let deliver = json!({ "outcome": "deliver", "class": "payroll" });
        assert_eq!(from_audit("decision", Some("msg_1"), &deliver), None);

        let fallback = json!({ "reason": "retries_exhausted", "failed_step": 0, "failed_channel": "rcs",
                               "next": "deliver", "next_route": "portal+sms" });
        let (t, d) = from_audit("fallback", Some("msg_1"), &fallback).unwrap();
        assert_eq!(t, "message.fallback");
        assert_eq!(
            d,
            json!({ "message_id": "msg_1", "from": { "step": 0, "channel": "rcs" }, "to": "portal+sms",
                    "next": "deliver", "cause": "retries_exhausted" })
        );
        let receipt = |status: &str| json!({ "channel": "rcs", "status": status });
        assert_eq!(
            from_audit("delivery_receipt", Some("msg_1"), &receipt("read")).map(|e| e.0),
            Some("message.read")
        );
        assert_eq!(
            from_audit("delivery_receipt", Some("msg_1"), &receipt("failed")),
            None
        );
        let shredded = |reason: &str| json!({ "reason": reason });
        assert_eq!(
            from_audit(
                "payload_shredded",
                Some("msg_1"),
                &shredded("retention_expired")
            )
            .map(|e| e.0),
            Some("message.expired")
        );
        assert_eq!(
            from_audit("payload_shredded", Some("msg_1"), &shredded("revoked")),
            None
        );
        let viewed = |view: i64| json!({ "link": "lnk_1", "view": view, "label": "transport" });
        assert_eq!(
            from_audit("portal_viewed", Some("msg_1"), &viewed(1)),
            Some((
                "message.read",
                json!({ "message_id": "msg_1", "channel": "portal" })
            ))
        );
        assert_eq!(from_audit("portal_viewed", Some("msg_1"), &viewed(2)), None);
        assert_eq!(from_audit("portal_viewed", Some("msg_1"), &json!({})), None);
    }

    #[test]
    fn every_type_mapped_is_a_known_type() {
        let samples = [
            ("decision", json!({ "outcome": "confirmation_required" })),
            ("decision", json!({ "outcome": "hold" })),
            ("decision", json!({ "outcome": "block" })),
            ("escalation_blocked", json!({})),
            ("delivered", json!({})),
            ("delivery_receipt", json!({ "status": "delivered" })),
            ("message_revoked", json!({})),
            ("thread_downgraded", json!({})),
            ("thread_elevated", json!({})),
        ];
        for (kind, details) in samples {
            let (t, _) = from_audit(kind, Some("x"), &details).unwrap();
            assert!(TYPES.contains(&t), "{t}");
        }
    }
}
