//! # ladder-channels
//!
//! Where messages leave the building. Every channel implements one
//! [`Adapter`] interface: take a [`Dispatch`] (the payload for a container,
//! or a rendered notice for a notifier) with a provider idempotency key, and
//! answer accepted, transiently failed (retry later) or permanently failed
//! (re-decide without this step).
//!
//! The [`sandbox`] adapters are the zero-configuration default: they record
//! what the recipient would receive and can be told to fail, for tests and
//! demos. Real providers have one module each — [`rcs`], [`sms`],
//! [`email`], [`push`], [`inapp`] — configured per deployment and, where a
//! tenant brings its own accounts, per tenant ([`Channels::for_tenant`]).

pub mod email;
pub mod inapp;
pub mod push;
pub mod rcs;
pub mod sandbox;
pub mod sms;
pub mod webhook;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ladder_core::Channel;

/// What travels: the payload (only ever to a container the decision chose)
/// or a content-free notice.
pub enum Content {
    Payload(zeroize::Zeroizing<Vec<u8>>),
    Notice(String),
}

impl std::fmt::Debug for Content {
    // Never prints a payload.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Content::Payload(p) => write!(f, "Payload({} bytes)", p.len()),
            Content::Notice(_) => write!(f, "Notice"),
        }
    }
}

/// One hand-over to a provider.
#[derive(Debug)]
pub struct Dispatch {
    pub tenant_id: String,
    pub message_id: String,
    pub recipient_id: String,
    pub thread_id: String,
    pub channel: Channel,
    /// Stable across retries of the same route, so a provider that already
    /// has it shows the recipient nothing new.
    pub idempotency_key: String,
    pub content: Content,
    /// Where it goes: the recipient's addresses and devices.
    pub to: Destination,
    /// The level the route carries the payload at (bound into in-app
    /// ciphertexts, shown as the thread's label).
    pub assurance: ladder_core::AssuranceLevel,
    /// When the message stops being deliverable (Unix seconds).
    pub expires_at: i64,
    /// When this hand-over was first recorded (Unix milliseconds), fixed
    /// before the first provider call and the same on every retry: what an
    /// adapter would otherwise take from the clock (the e-mail `Date`
    /// header) comes from here, so a resend is byte-identical.
    pub handed_over_ms: i64,
}

/// A recipient's reachable endpoints, opened from their sealed contact
/// only for the hand-over. `Debug` never prints an address.
#[derive(Clone, Default)]
pub struct Destination {
    pub phone: Option<String>,
    pub email: Option<String>,
    /// Active (non-revoked) devices.
    pub devices: Vec<DeviceTarget>,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("phone", &self.phone.as_ref().map(|_| "…"))
            .field("email", &self.email.as_ref().map(|_| "…"))
            .field("devices", &self.devices.len())
            .finish()
    }
}

/// One enrolled device, as channels need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceTarget {
    pub id: String,
    /// X25519 public key for in-app sealing.
    pub agreement_key: Option<[u8; 32]>,
    pub push: Option<PushTarget>,
}

/// Where a device receives content-free wake-ups.
#[derive(Clone, PartialEq, Eq)]
pub struct PushTarget {
    pub platform: PushPlatform,
    pub token: String,
}

impl std::fmt::Debug for PushTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PushTarget({:?}, …)", self.platform)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushPlatform {
    Apns,
    Fcm,
}

/// A provider's answer to "take back a message not yet delivered".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// Withdrawn: the recipient will not get it.
    Revoked,
    /// Too late: the provider already delivered it.
    AlreadyDelivered,
    /// This channel cannot withdraw messages.
    Unsupported,
}

/// The provider took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The provider's reference for it.
    pub provider_ref: String,
    /// The provider had already seen this idempotency key.
    pub duplicate: bool,
}

/// Why a provider did not take it. Codes only: never content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying with backoff (a 5xx, a refused connection).
    #[error("transient provider failure: {code}")]
    Transient { code: String },
    /// Retrying will not help (unknown recipient, channel off): re-decide.
    #[error("permanent provider failure: {code}")]
    Permanent { code: String },
}

/// A boxed future, so adapters can live behind `dyn Adapter`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A channel's provider.
pub trait Adapter: Send + Sync + std::fmt::Debug {
    fn channel(&self) -> Channel;

    fn send<'a>(&'a self, dispatch: &'a Dispatch)
    -> BoxFuture<'a, Result<Accepted, DeliveryError>>;

    /// Withdraws a message the provider accepted but has not delivered
    /// (`provider_ref` from [`Accepted`]): before falling back from it, so
    /// the recipient never gets the same message twice.
    fn revoke<'a>(
        &'a self,
        _dispatch: &'a Dispatch,
        _provider_ref: &'a str,
    ) -> BoxFuture<'a, Result<Revoked, DeliveryError>> {
        Box::pin(async { Ok(Revoked::Unsupported) })
    }
}

/// Provider settings that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("channel `{channel}`: {reason}")]
pub struct ConfigError {
    pub channel: &'static str,
    pub reason: String,
}

/// Every provider's settings, as one table of the server config
/// (`[channels.rcs]`, `[channels.sms]`, …).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderSettings {
    pub rcs: Option<rcs::RcsConfig>,
    pub sms: Option<sms::SmsConfig>,
    pub email: Option<email::EmailConfig>,
    pub push: Option<push::PushConfig>,
}

impl ProviderSettings {
    /// Adds every configured provider to `channels`, for `tenant` only when
    /// given.
    pub fn install(
        &self,
        tenant: Option<&str>,
        mut channels: Channels,
    ) -> Result<Channels, ConfigError> {
        if let Some(c) = &self.rcs {
            channels = rcs::install(c, tenant, channels)?;
        }
        if let Some(c) = &self.sms {
            channels = sms::install(c, tenant, channels)?;
        }
        if let Some(c) = &self.email {
            channels = email::install(c, tenant, channels)?;
        }
        if let Some(c) = &self.push {
            channels = push::install(c, tenant, channels)?;
        }
        Ok(channels)
    }
}

/// The adapters of one deployment, one per channel, and per-tenant ones
/// for tenants that bring their own provider accounts; and the webhook
/// verifiers of providers that send receipts.
#[derive(Debug, Clone, Default)]
pub struct Channels {
    adapters: BTreeMap<Channel, Arc<dyn Adapter>>,
    tenants: BTreeMap<String, BTreeMap<Channel, Arc<dyn Adapter>>>,
    verifiers: BTreeMap<(Option<String>, Channel), Arc<dyn webhook::WebhookVerifier>>,
}

impl Channels {
    pub fn with(mut self, adapter: Arc<dyn Adapter>) -> Channels {
        self.adapters.insert(adapter.channel(), adapter);
        self
    }

    /// Adds an adapter used only for the tenant named `tenant`, or for the
    /// whole deployment when `None`.
    pub fn with_for(mut self, tenant: Option<&str>, adapter: Arc<dyn Adapter>) -> Channels {
        match tenant {
            None => {
                self.adapters.insert(adapter.channel(), adapter);
            }
            Some(t) => {
                self.tenants
                    .entry(t.to_string())
                    .or_default()
                    .insert(adapter.channel(), adapter);
            }
        }
        self
    }

    /// Adds the webhook verifier of `channel` (for `tenant` only, when given).
    pub fn with_verifier(
        mut self,
        tenant: Option<&str>,
        channel: Channel,
        verifier: Arc<dyn webhook::WebhookVerifier>,
    ) -> Channels {
        self.verifiers
            .insert((tenant.map(str::to_string), channel), verifier);
        self
    }

    pub fn get(&self, channel: Channel) -> Option<&Arc<dyn Adapter>> {
        self.adapters.get(&channel)
    }

    /// Wraps every adapter (deployment and tenants') of `channel` so it
    /// fails as `failure` says first (see [`sandbox::faulty`]).
    pub fn with_failure(mut self, channel: Channel, failure: sandbox::Failure) -> Channels {
        if let Some(a) = self.adapters.remove(&channel) {
            self.adapters.insert(channel, sandbox::faulty(a, failure));
        }
        for m in self.tenants.values_mut() {
            if let Some(a) = m.remove(&channel) {
                m.insert(channel, sandbox::faulty(a, failure));
            }
        }
        self
    }

    /// The tenant's own adapter for `channel`, else the deployment's.
    pub fn for_tenant(&self, tenant: &str, channel: Channel) -> Option<&Arc<dyn Adapter>> {
        self.tenants
            .get(tenant)
            .and_then(|m| m.get(&channel))
            .or_else(|| self.adapters.get(&channel))
    }

    /// The verifier for webhooks of the deployment's own account on `channel`.
    pub fn deployment_verifier(
        &self,
        channel: Channel,
    ) -> Option<&Arc<dyn webhook::WebhookVerifier>> {
        self.verifiers.get(&(None, channel))
    }

    /// The verifier for webhooks of `channel` sent for `tenant`: the
    /// tenant's own provider account's, else the deployment's.
    pub fn verifier_for(
        &self,
        tenant: &str,
        channel: Channel,
    ) -> Option<&Arc<dyn webhook::WebhookVerifier>> {
        self.verifiers
            .get(&(Some(tenant.to_string()), channel))
            .or_else(|| self.verifiers.get(&(None, channel)))
    }
}
