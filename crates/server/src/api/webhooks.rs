//! `POST /v1/webhooks/{channel}/{tenant}`: delivery receipts from providers.
//! Each provider signs its webhooks; the channel's verifier checks the
//! signature before anything is read. A forged or malformed webhook changes
//! nothing, answers 401 or 400, and is audited in the tenant's log — until
//! its source address has sent too many (`[limits]`): then it answers 429
//! and is not audited one by one (one `webhook_rate_limited` entry a
//! minute stands for them). Webhooks that verify are never limited.

use axum::Json;
use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, OriginalUri, Path, State};
use axum::http::HeaderMap;
use ladder_channels::webhook::{WebhookError, WebhookRequest};
use ladder_core::Channel;
use ladder_store::{StoreError, tenants};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::api::input::path_name;
use crate::api::wire::ErrorEnvelope;
use crate::service::error::{Invalidity, ServiceError};
use crate::service::{audit, receipts};
use crate::state::AppState;

/// The request's headers as the channel verifiers take them.
fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

/// The answer to a webhook the verifier refused.
fn refusal(e: WebhookError) -> ServiceError {
    match e {
        WebhookError::BadSignature => ServiceError::Invalid {
            kind: Invalidity::Unverified,
            code: "bad_signature",
            message: "the webhook signature is missing or does not verify".into(),
            details: Value::Null,
        },
        other => ServiceError::bad_request("invalid_webhook", other.to_string()),
    }
}

/// The path names no channel ladder takes receipts for (the text is not
/// echoed: it is whatever the caller sent).
fn unknown_channel() -> ServiceError {
    ServiceError::Invalid {
        kind: Invalidity::Unknown,
        code: "not_found",
        message: "path segment `channel` names no channel that takes webhooks".into(),
        details: Value::Null,
    }
}

/// What a webhook carried and what of it was applied.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Received {
    pub received: usize,
    pub applied: usize,
}

/// Delivery receipts for a tenant's own provider account. Public: the
/// provider's signature, checked by the channel's verifier, authenticates.
#[utoipa::path(post, path = "/v1/webhooks/{channel}/{tenant}", tag = "channels", operation_id = "providerWebhook",
    params(("channel" = String, Path, description = "the channel: `rcs`, `sms`, `email`, `push`"),
        ("tenant" = String, Path, description = "the tenant's name")),
    request_body(content = String, content_type = "application/json", description = "The provider's own webhook body, signed as that provider signs."),
    responses(
        (status = 200, description = "Applied.", body = Received),
        (status = 400, description = "A malformed webhook (`invalid_webhook`) or path.", body = ErrorEnvelope),
        (status = 401, description = "The provider's signature is missing or does not verify (`bad_signature`).", body = ErrorEnvelope),
        (status = 404, description = "No such channel, tenant or webhook.", body = ErrorEnvelope),
        (status = 409, description = "A receipt names a hand-over not recorded yet (`unknown_reference`): the provider retries.", body = ErrorEnvelope),
        (status = 429, description = "Too many refused webhooks from this address (`rate_limited`, `Retry-After`).", body = ErrorEnvelope),
    ))]
pub async fn receive(
    State(state): State<AppState>,
    Path((channel, tenant)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Received>, ServiceError> {
    let tenant = path_name("tenant", &tenant)?;
    let channel: Channel = channel.parse().map_err(|_| unknown_channel())?;
    let t = {
        let mut conn = state
            .store
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        tenants::find_by_name(&mut conn, tenant).await?
    }
    .ok_or_else(|| ServiceError::not_found("webhook", format!("{channel}/{tenant}")))?;
    let verifier = state
        .channels
        .verifier_for(&t.name, channel)
        .ok_or_else(|| ServiceError::not_found("webhook", format!("{channel}/{tenant}")))?;
    let headers = header_list(&headers);
    let url = format!("{}{}", state.config.public_url(), uri);
    let request = WebhookRequest {
        url: &url,
        headers: &headers,
        body: &body,
    };
    match verifier.receipts(&request) {
        Ok(list) => {
            let done = receipts::apply(&state, &t.id, channel, &list).await?;
            if done.unknown > 0 {
                // Not an error of the provider's: the hand-over may not be
                // recorded yet. A non-2xx answer makes it retry.
                return Err(ServiceError::conflict(
                    "unknown_reference",
                    format!(
                        "{} receipt(s) name a message not recorded (yet); retry",
                        done.unknown
                    ),
                ));
            }
            Ok(Json(Received {
                received: list.len(),
                applied: done.applied,
            }))
        }
        Err(e) => {
            metrics::counter!("ladder_webhooks_rejected_total", "channel" => channel.to_string())
                .increment(1);
            if let Err(refused) = state.limits.webhook_rejected(peer.ip()) {
                let key = format!("{}/{}", t.id, peer.ip());
                if state.limits.audit_due(refused.surface, &key) {
                    let mut tx = state.store.begin().await?;
                    audit::record(
                        &mut tx,
                        &state,
                        &t.id,
                        "provider",
                        "webhook_rate_limited",
                        None,
                        json!({ "channel": channel, "limit": refused.by }),
                    )
                    .await?;
                    tx.commit().await.map_err(StoreError::from)?;
                }
                return Err(refused.into());
            }
            let mut tx = state.store.begin().await?;
            audit::record(
                &mut tx,
                &state,
                &t.id,
                "provider",
                "webhook_rejected",
                None,
                json!({ "channel": channel, "reason": match &e {
                    WebhookError::BadSignature => "bad_signature",
                    WebhookError::Malformed(_) => "malformed",
                    WebhookError::Unsupported => "unsupported",
                } }),
            )
            .await?;
            tx.commit().await.map_err(StoreError::from)?;
            Err(refusal(e))
        }
    }
}

/// `POST /v1/webhooks/{channel}`: receipts for the deployment's own provider
/// account, which serves every tenant without one of its own. Each receipt
/// finds its tenant through the hand-over it names; a reference no tenant
/// (or more than one) recorded is answered 409 so the provider retries.
/// Delivery receipts for the deployment's own provider account. Public:
/// the provider's signature authenticates.
#[utoipa::path(post, path = "/v1/webhooks/{channel}", tag = "channels", operation_id = "deploymentProviderWebhook",
    params(("channel" = String, Path, description = "the channel: `rcs`, `sms`, `email`, `push`")),
    request_body(content = String, content_type = "application/json", description = "The provider's own webhook body, signed as that provider signs."),
    responses(
        (status = 200, description = "Applied.", body = Received),
        (status = 400, description = "A malformed webhook (`invalid_webhook`) or path.", body = ErrorEnvelope),
        (status = 401, description = "The provider's signature is missing or does not verify (`bad_signature`).", body = ErrorEnvelope),
        (status = 404, description = "No such channel, tenant or webhook.", body = ErrorEnvelope),
        (status = 409, description = "A receipt names a hand-over not recorded yet (`unknown_reference`): the provider retries.", body = ErrorEnvelope),
        (status = 429, description = "Too many refused webhooks from this address (`rate_limited`, `Retry-After`).", body = ErrorEnvelope),
    ))]
pub async fn receive_deployment(
    State(state): State<AppState>,
    Path(channel): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Received>, ServiceError> {
    let channel: Channel = channel.parse().map_err(|_| unknown_channel())?;
    let verifier = state
        .channels
        .deployment_verifier(channel)
        .ok_or_else(|| ServiceError::not_found("webhook", channel.to_string()))?;
    let headers = header_list(&headers);
    let url = format!("{}{}", state.config.public_url(), uri);
    let request = WebhookRequest {
        url: &url,
        headers: &headers,
        body: &body,
    };
    let list = verifier.receipts(&request).map_err(|e| {
        metrics::counter!("ladder_webhooks_rejected_total", "channel" => channel.to_string())
            .increment(1);
        // No tenant to audit in; past the limit, not even a log line each.
        if let Err(refused) = state.limits.webhook_rejected(peer.ip()) {
            return ServiceError::from(refused);
        }
        tracing::warn!(%channel, error = %e, "deployment webhook refused");
        refusal(e)
    })?;
    let mut applied = 0;
    let mut unknown = 0;
    for receipt in &list {
        let tenants = {
            let mut conn = state
                .store
                .pool()
                .acquire()
                .await
                .map_err(StoreError::from)?;
            ladder_store::deliveries::tenants_of_ref(
                &mut conn,
                &channel.to_string(),
                &receipt.provider_ref,
            )
            .await?
        };
        match tenants.as_slice() {
            [tenant] => {
                let done =
                    receipts::apply(&state, tenant, channel, std::slice::from_ref(receipt)).await?;
                applied += done.applied;
                unknown += done.unknown;
            }
            _ => unknown += 1,
        }
    }
    if unknown > 0 {
        return Err(ServiceError::conflict(
            "unknown_reference",
            format!("{unknown} receipt(s) name a message not recorded (yet); retry"),
        ));
    }
    Ok(Json(Received {
        received: list.len(),
        applied,
    }))
}
