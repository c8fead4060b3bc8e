//! Provider webhooks: delivery receipts arriving from RCS and SMS
//! providers. Each channel module parses and signature-checks its own
//! provider's format into [`Receipt`]s; the server looks the provider
//! reference up, moves the message along (sent → delivered → read, or
//! failed / expired) and audits it. A receipt whose signature does not
//! verify changes nothing and is audited as forged.

use serde::{Deserialize, Serialize};

/// What a provider says happened to a message it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Delivered,
    Read,
    Failed,
    Expired,
}

/// One receipt: the provider's reference for the message (as returned in
/// `Accepted::provider_ref`) and its new status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub provider_ref: String,
    pub status: ReceiptStatus,
}

/// A webhook request as received: the full URL the provider called, its
/// headers (names lowercase) and body.
#[derive(Debug, Clone)]
pub struct WebhookRequest<'a> {
    pub url: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl WebhookRequest<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a webhook was refused. Both change nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the webhook signature is missing or does not verify")]
    BadSignature,
    #[error("the webhook body is malformed: {0}")]
    Malformed(String),
    #[error("this channel takes no webhooks")]
    Unsupported,
}

/// A channel that receives provider webhooks.
pub trait WebhookVerifier: Send + Sync + std::fmt::Debug {
    /// Checks the signature, then parses the receipts.
    fn receipts(&self, request: &WebhookRequest<'_>) -> Result<Vec<Receipt>, WebhookError>;
}
