//! Placeholder: the rcs provider adapter (the channels work fills it in).
//!
//! Contract: `RcsConfig` (serde, `deny_unknown_fields`) is the `[channels.rcs]`
//! table of the server config (and `[channels.tenants.<name>.rcs]` for a
//! tenant's own account); `install` adds this channel's adapter (and, for
//! providers that send receipts, its webhook verifier) to `channels`.

use crate::Channels;

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RcsConfig {}

/// Adds the adapter configured by `config`, for `tenant` only when given.
pub fn install(
    _config: &RcsConfig,
    _tenant: Option<&str>,
    channels: Channels,
) -> Result<Channels, crate::ConfigError> {
    Ok(channels)
}
