//! Prometheus metrics. The recorder is process-global (one per process,
//! installed on first use); every label is a class, route, channel, code or
//! outcome — never an id, an address or content.

use std::sync::OnceLock;

use metrics::{describe_counter, describe_gauge, describe_histogram};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// What kind of series a metric is, for its description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric ladder records, with the `# HELP` text an operator reads.
/// A test checks that every name the code records is listed here.
const DESCRIPTIONS: &[(&str, Kind, &str)] = &[
    (
        "ladder_audit_entries_total",
        Kind::Counter,
        "Audit log entries appended.",
    ),
    (
        "ladder_blocks_total",
        Kind::Counter,
        "Messages blocked, by class.",
    ),
    (
        "ladder_commit_batch_seconds",
        Kind::Histogram,
        "Group commit on SQLite: time from a batch's first statement to its durable commit.",
    ),
    (
        "ladder_commit_batch_units",
        Kind::Histogram,
        "Group commit on SQLite: units of work (accepted messages and other writes) per commit.",
    ),
    (
        "ladder_confirmations_accepted_total",
        Kind::Counter,
        "Downgrade confirmations accepted from senders.",
    ),
    (
        "ladder_confirmations_requested_total",
        Kind::Counter,
        "Messages that needed the sender's confirmation of a downgrade.",
    ),
    (
        "ladder_decision_seconds",
        Kind::Histogram,
        "Time the core takes to decide one message (re-checks before hand-over included).",
    ),
    (
        "ladder_decisions_total",
        Kind::Counter,
        "Decisions kept about messages (acceptance, fallback, confirmation), by class, outcome and route.",
    ),
    (
        "ladder_delivery_attempts_total",
        Kind::Counter,
        "Provider calls, by channel and outcome.",
    ),
    (
        "ladder_delivery_outcomes_total",
        Kind::Counter,
        "Messages handed over or given up, by outcome and container.",
    ),
    (
        "ladder_device_requests_total",
        Kind::Counter,
        "Device-signed requests, by outcome.",
    ),
    (
        "ladder_downgrades_total",
        Kind::Counter,
        "Decisions that lowered a thread's floor or label, by class.",
    ),
    (
        "ladder_event_deliveries_total",
        Kind::Counter,
        "Outbound event webhook attempts, by outcome (delivered, retry, failed, dropped).",
    ),
    (
        "ladder_events_recorded_total",
        Kind::Counter,
        "Outbound events owed to tenants' endpoints, by event type.",
    ),
    (
        "ladder_fallbacks_total",
        Kind::Counter,
        "Messages re-decided down their ladder after a failure.",
    ),
    (
        "ladder_handshakes_total",
        Kind::Counter,
        "Capability handshakes, by outcome.",
    ),
    (
        "ladder_idempotent_replays_total",
        Kind::Counter,
        "Send requests answered from a stored answer (same Idempotency-Key).",
    ),
    (
        "ladder_observe_decisions_total",
        Kind::Counter,
        "Observe-mode decisions: the route used beside the one enforcement would have taken, and whether they differ.",
    ),
    (
        "ladder_outbox_pending",
        Kind::Gauge,
        "Outbox work not yet done.",
    ),
    (
        "ladder_overrides_total",
        Kind::Counter,
        "Emergency overrides set, renewed and cleared.",
    ),
    (
        "ladder_payloads_shredded_total",
        Kind::Counter,
        "Payload data keys destroyed, by reason.",
    ),
    (
        "ladder_portal_codes_total",
        Kind::Counter,
        "One-time portal codes sent.",
    ),
    (
        "ladder_portal_events_total",
        Kind::Counter,
        "Portal links issued, viewed and locked, by event.",
    ),
    (
        "ladder_portal_refusals_total",
        Kind::Counter,
        "Portal requests refused, by reason.",
    ),
    (
        "ladder_rate_limited_total",
        Kind::Counter,
        "Requests refused by a rate limit, by surface (portal code requests and attempts, refused webhooks, refused device requests, failed console sign-ins).",
    ),
    (
        "ladder_console_sign_ins_total",
        Kind::Counter,
        "Console sign-ins, by result (accepted, refused).",
    ),
    (
        "ladder_handovers_resumed_total",
        Kind::Counter,
        "Hand-overs attempted again (after a crash, a lost answer or a transient failure) with the same idempotency key and identical content, by channel.",
    ),
    (
        "ladder_receipts_total",
        Kind::Counter,
        "Provider receipts applied, by channel and status.",
    ),
    (
        "ladder_request_seconds",
        Kind::Histogram,
        "HTTP request latency, by matched route and method.",
    ),
    (
        "ladder_requests_total",
        Kind::Counter,
        "HTTP requests, by matched route, method and status.",
    ),
    (
        "ladder_webhooks_rejected_total",
        Kind::Counter,
        "Provider webhooks refused (bad signature, malformed), by channel.",
    ),
];

/// Installs the recorder if no other is installed, and describes every
/// metric. Idempotent.
pub fn install() {
    HANDLE.get_or_init(|| {
        let latency = [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        let handle = PrometheusBuilder::new()
            .set_buckets(&latency)
            .ok()
            .and_then(|b| b.install_recorder().ok());
        for (name, kind, help) in DESCRIPTIONS {
            match kind {
                Kind::Counter => describe_counter!(*name, *help),
                Kind::Gauge => describe_gauge!(*name, *help),
                Kind::Histogram => describe_histogram!(*name, *help),
            }
        }
        handle
    });
}

/// The text exposition of everything recorded so far.
pub fn render() -> String {
    match HANDLE.get() {
        Some(Some(h)) => h.render(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::DESCRIPTIONS;

    /// Every `"ladder_…"` metric name in the server's sources.
    fn recorded_names() -> std::collections::BTreeSet<String> {
        let mut names = std::collections::BTreeSet::new();
        let mut dirs = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("metrics.rs")
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for part in text.split('"').skip(1).step_by(2) {
                        let is_metric = part.starts_with("ladder_")
                            && ["_total", "_seconds", "_pending"]
                                .iter()
                                .any(|s| part.ends_with(s))
                            && part.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
                        if is_metric {
                            names.insert(part.to_string());
                        }
                    }
                }
            }
        }
        names
    }

    #[test]
    fn every_recorded_metric_has_help_text() {
        let described: Vec<&str> = DESCRIPTIONS.iter().map(|d| d.0).collect();
        let names = recorded_names();
        assert!(names.len() > 10, "{names:?}");
        for name in names {
            assert!(
                described.contains(&name.as_str()),
                "`{name}` has no # HELP text in DESCRIPTIONS"
            );
        }
    }
}
