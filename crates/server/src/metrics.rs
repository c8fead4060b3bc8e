//! Prometheus metrics. The recorder is process-global (one per process,
//! installed on first use); every label is a class, route, channel, code or
//! outcome — never an id, an address or content.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder if no other is installed. Idempotent.
pub fn install() {
    HANDLE.get_or_init(|| {
        let latency = [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        PrometheusBuilder::new()
            .set_buckets(&latency)
            .ok()
            .and_then(|b| b.install_recorder().ok())
    });
}

/// The text exposition of everything recorded so far.
pub fn render() -> String {
    match HANDLE.get() {
        Some(Some(h)) => h.render(),
        _ => String::new(),
    }
}
