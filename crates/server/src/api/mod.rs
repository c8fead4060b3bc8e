//! The HTTP API, versioned under `/v1`. Handlers are thin: they parse the
//! request, call the service, and shape the answer. Every error leaves
//! through [`crate::service::error::ServiceError`].

pub(crate) mod admin;
pub(crate) mod audit;
pub(crate) mod device;
pub(crate) mod events;
pub(crate) mod history;
pub(crate) mod input;
pub(crate) mod lists;
pub(crate) mod messages;
pub(crate) mod ops;
pub(crate) mod queue;
pub(crate) mod recipients;
pub(crate) mod stats;
pub(crate) mod views;
pub(crate) mod webhooks;
pub(crate) mod wire;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};

use crate::state::AppState;

/// Every route, as `(method, path)`: the OpenAPI document is checked
/// against this list by a test.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/v1/openapi.json"),
    ("get", "/v1/docs"),
    ("get", "/v1/docs/reference.css"),
    ("post", "/v1/messages"),
    ("get", "/v1/messages"),
    ("get", "/v1/messages/{id}"),
    ("get", "/v1/messages/{id}/explain"),
    ("post", "/v1/messages/{id}/confirm"),
    ("post", "/v1/messages/{id}/confirmation-token"),
    ("post", "/v1/messages/{id}/revoke"),
    ("post", "/v1/recipients"),
    ("get", "/v1/recipients"),
    ("get", "/v1/recipients/{id}"),
    ("post", "/v1/recipients/{id}/devices"),
    ("post", "/v1/devices/{id}/challenge"),
    ("post", "/v1/devices/{id}/handshake"),
    ("post", "/v1/devices/{id}/revoke"),
    ("get", "/v1/threads/{id}"),
    ("get", "/v1/policy"),
    ("put", "/v1/policy"),
    ("get", "/v1/overrides"),
    ("post", "/v1/overrides"),
    ("delete", "/v1/overrides/{id}"),
    ("post", "/v1/overrides/{id}/renew"),
    ("get", "/v1/audit"),
    ("get", "/v1/audit/checkpoints"),
    ("post", "/v1/audit/checkpoints"),
    ("get", "/v1/audit/log"),
    ("get", "/v1/audit/checkpoint"),
    ("get", "/v1/audit/proof/inclusion"),
    ("get", "/v1/audit/proof/consistency"),
    ("get", "/v1/sandbox/deliveries"),
    ("get", "/v1/stats"),
    ("get", "/v1/stats/classes/{class}"),
    ("get", "/v1/escalations"),
    ("post", "/v1/escalations/{message_id}/send"),
    ("post", "/v1/escalations/{message_id}/block"),
    ("post", "/v1/escalations/{message_id}/extend"),
    ("get", "/v1/threads"),
    ("get", "/v1/policy/versions"),
    ("get", "/v1/policy/versions/{revision}"),
    ("get", "/v1/policy/diff"),
    ("post", "/v1/webhooks/{channel}/{tenant}"),
    ("post", "/v1/webhooks/{channel}"),
    ("get", "/v1/device/me"),
    ("get", "/v1/device/inbox"),
    ("post", "/v1/device/inbox/{message_id}/ack"),
    ("post", "/v1/event-subscriptions"),
    ("get", "/v1/event-subscriptions"),
    ("get", "/v1/event-subscriptions/{id}"),
    ("patch", "/v1/event-subscriptions/{id}"),
    ("delete", "/v1/event-subscriptions/{id}"),
    ("post", "/v1/event-subscriptions/{id}/rotate-secret"),
    ("get", "/v1/event-subscriptions/{id}/attempts"),
    (
        "post",
        "/v1/event-subscriptions/{id}/attempts/{attempt_or_event_id}/retry",
    ),
];

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/v1/openapi.json", get(ops::openapi))
        .route("/v1/messages", post(messages::send).get(lists::messages))
        .route("/v1/messages/{id}", get(messages::status))
        .route("/v1/messages/{id}/explain", get(messages::explain))
        .route("/v1/messages/{id}/confirm", post(messages::confirm))
        .route(
            "/v1/messages/{id}/confirmation-token",
            post(messages::confirmation_token),
        )
        .route("/v1/messages/{id}/revoke", post(messages::revoke))
        .route(
            "/v1/recipients",
            post(recipients::register).get(lists::recipients),
        )
        .route("/v1/recipients/{id}", get(recipients::show))
        .route("/v1/recipients/{id}/devices", post(recipients::enrol))
        .route("/v1/devices/{id}/challenge", post(recipients::challenge))
        .route("/v1/devices/{id}/handshake", post(recipients::handshake))
        .route("/v1/devices/{id}/revoke", post(recipients::revoke))
        .route("/v1/threads/{id}", get(recipients::thread))
        .route("/v1/policy", get(admin::policy).put(admin::publish))
        .route(
            "/v1/overrides",
            get(admin::overrides).post(admin::set_override),
        )
        .route("/v1/overrides/{id}", delete(admin::clear_override))
        .route("/v1/overrides/{id}/renew", post(admin::renew_override))
        .route("/v1/audit", get(audit::entries))
        .route(
            "/v1/audit/checkpoints",
            get(audit::chain_checkpoints).post(audit::checkpoint_now),
        )
        .route("/v1/audit/log", get(audit::log))
        .route("/v1/audit/checkpoint", get(audit::checkpoint_note))
        .route("/v1/audit/proof/inclusion", get(audit::inclusion))
        .route("/v1/audit/proof/consistency", get(audit::consistency))
        .route("/v1/sandbox/deliveries", get(ops::sandbox))
        .route("/v1/stats", get(stats::all))
        .route("/v1/stats/classes/{class}", get(stats::class))
        .route("/v1/escalations", get(queue::list))
        .route("/v1/escalations/{message_id}/send", post(queue::send))
        .route("/v1/escalations/{message_id}/block", post(queue::block))
        .route("/v1/escalations/{message_id}/extend", post(queue::extend))
        .route("/v1/threads", get(history::threads))
        .route("/v1/policy/versions", get(history::versions))
        .route("/v1/policy/versions/{revision}", get(history::version))
        .route("/v1/policy/diff", get(history::diff))
        .route("/v1/webhooks/{channel}/{tenant}", post(webhooks::receive))
        .route("/v1/webhooks/{channel}", post(webhooks::receive_deployment))
        .route(
            "/v1/event-subscriptions",
            post(events::create).get(events::list),
        )
        .route(
            "/v1/event-subscriptions/{id}",
            get(events::show)
                .patch(events::update)
                .delete(events::delete),
        )
        .route(
            "/v1/event-subscriptions/{id}/rotate-secret",
            post(events::rotate_secret),
        )
        .route(
            "/v1/event-subscriptions/{id}/attempts",
            get(events::attempts),
        )
        .route(
            "/v1/event-subscriptions/{id}/attempts/{attempt_or_event_id}/retry",
            post(events::retry),
        )
        .merge(device::routes())
        .merge(crate::portal::routes())
        .merge(crate::console::routes())
        .merge(crate::reference::routes())
        .fallback(ops::not_found);
    layered(routes).with_state(state)
}

/// The layers every route sits in, innermost first.
fn layered<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    routes
        .layer(DefaultBodyLimit::max(256 * 1024))
        // A panic is an internal bug: it leaves as the generic 500
        // envelope, its payload (which could hold anything) logged only by
        // its type, never echoed.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            ops::panicked,
        ))
        // Outermost, so every answer (a caught panic's too) gets a request
        // id and exactly one access log line.
        .layer(axum::middleware::from_fn(ops::observe))
}

/// Parses a JSON body into `T`, naming the field and problem on failure
/// (axum's own rejection would answer in plain text). A body any string of
/// which holds a control character is refused first, naming the field.
/// The typed parse reads the bytes again rather than the value: it keeps
/// serde's refusal of duplicate fields, which a JSON value would hide.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, crate::service::error::ServiceError> {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        input::refuse_control_characters(&value)?;
    }
    serde_json::from_slice(bytes).map_err(|e| {
        crate::service::error::ServiceError::bad_request(
            "invalid_json",
            format!(
                "the request body is not valid: {}",
                redact_values(&e.to_string())
            ),
        )
    })
}

/// serde_json quotes offending string values (`invalid type: string "…"`),
/// and a value may be message content: keep field names (in backticks),
/// drop quoted values.
fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut in_quotes = false;
    for c in message.chars() {
        match (c, in_quotes) {
            ('"', false) => {
                in_quotes = true;
                out.push_str("\"…");
            }
            ('"', true) => {
                in_quotes = false;
                out.push('"');
            }
            (_, true) => {}
            (c, false) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_values;

    /// A handler that panics still answers with a request id: the id layer
    /// sits outside the panic catcher (it used to sit inside, and a panic
    /// skipped the request metrics).
    #[tokio::test]
    async fn a_panicking_handler_still_answers_with_a_request_id() {
        let routes = axum::Router::new().route(
            "/boom",
            axum::routing::get(|| async {
                if std::hint::black_box(true) {
                    panic!("boom");
                }
            }),
        );
        let app = super::layered(routes);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let answer = reqwest::Client::new()
            .get(format!("http://{addr}/boom"))
            .header("x-request-id", "panic-probe-1")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 500);
        assert_eq!(answer.headers()["x-request-id"], "panic-probe-1");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "internal", "{body}");
    }

    #[test]
    fn quoted_values_never_reach_an_error_message() {
        let m = redact_values(
            "invalid type: string \"payroll secret\", expected u16 at line 1 column 9",
        );
        assert!(!m.contains("payroll secret"), "{m}");
        assert!(m.contains("line 1 column 9"));
        assert_eq!(redact_values("unknown field `bdy`"), "unknown field `bdy`");
    }
}
