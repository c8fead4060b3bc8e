//! Placeholder: the sms provider adapter (the channels work fills it in).
//!
//! Contract: `SmsConfig` (serde, `deny_unknown_fields`) is the `[channels.sms]`
//! table of the server config (and `[channels.tenants.<name>.sms]` for a
//! tenant's own account); `install` adds this channel's adapter (and, for
//! providers that send receipts, its webhook verifier) to `channels`.

use crate::Channels;

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {}

/// Adds the adapter configured by `config`, for `tenant` only when given.
pub fn install(
    _config: &SmsConfig,
    _tenant: Option<&str>,
    channels: Channels,
) -> Result<Channels, crate::ConfigError> {
    Ok(channels)
}
