//! # ladder-channels
//!
//! Where messages leave the building. Every channel implements one
//! [`Adapter`] interface: take a [`Dispatch`] (the payload for a container,
//! or a rendered notice for a notifier) with a provider idempotency key, and
//! answer accepted, transiently failed (retry later) or permanently failed
//! (re-decide without this step).
//!
//! Only the [`sandbox`] adapters exist so far: the zero-configuration
//! default, which records what the recipient would receive and can be told
//! to fail, for tests and demos. Real providers (RCS, SMS, SMTP, push,
//! in-app) come with their own modules behind the same interface.

pub mod sandbox;

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
    pub channel: Channel,
    /// Stable across retries of the same route, so a provider that already
    /// has it shows the recipient nothing new.
    pub idempotency_key: String,
    pub content: Content,
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
}

/// The adapters of one deployment, one per channel.
#[derive(Debug, Clone, Default)]
pub struct Channels {
    adapters: BTreeMap<Channel, Arc<dyn Adapter>>,
}

impl Channels {
    pub fn with(mut self, adapter: Arc<dyn Adapter>) -> Channels {
        self.adapters.insert(adapter.channel(), adapter);
        self
    }

    pub fn get(&self, channel: Channel) -> Option<&Arc<dyn Adapter>> {
        self.adapters.get(&channel)
    }
}
