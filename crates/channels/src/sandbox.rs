//! Sandbox adapters: every channel, no provider. Each delivery is recorded
//! in the sandbox mailbox (`ladder_store::sandbox`), deduplicated by the
//! provider idempotency key as a real provider would, and readable through
//! the API. Failures can be configured per channel so tests and demos can
//! watch retries and fallbacks happen.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ladder_core::Channel;
use ladder_store::Store;
use ladder_store::sandbox::{self, Delivery};
use serde::{Deserialize, Serialize};

use crate::{Accepted, Adapter, BoxFuture, Channels, Content, DeliveryError, Dispatch};

/// How a sandbox channel misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Failure {
    #[default]
    Never,
    /// Every send fails permanently.
    Permanent,
    /// The first `times` sends of each message fail transiently.
    Transient { times: u32 },
    /// Every send hangs for `seconds`, beyond any sensible timeout.
    Hang { seconds: u64 },
}

/// Failure settings per channel (`[channels.sandbox.fail]` in the config).
pub type Failures = BTreeMap<Channel, Failure>;

/// One sandbox channel. Failures are injected by [`faulty`], the same way
/// for sandbox and real adapters.
#[derive(Debug)]
pub struct SandboxAdapter {
    channel: Channel,
    store: Store,
}

impl SandboxAdapter {
    async fn record(&self, d: &Dispatch) -> Result<Accepted, DeliveryError> {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let (kind, notice_text) = match &d.content {
            Content::Payload(_) => ("payload", None),
            Content::Notice(text) => ("notice", Some(text.clone())),
        };
        let delivery = Delivery {
            idempotency_key: d.idempotency_key.clone(),
            message_id: d.message_id.clone(),
            recipient_id: d.recipient_id.clone(),
            channel: self.channel.to_string(),
            kind: kind.to_string(),
            notice_text,
            at_ms,
        };
        let unavailable = |_| DeliveryError::Transient {
            code: "sandbox_unavailable".into(),
        };
        let mut conn = self.store.pool().acquire().await.map_err(unavailable)?;
        let fresh = sandbox::record(&mut conn, &d.tenant_id, &delivery)
            .await
            .map_err(|_| DeliveryError::Transient {
                code: "sandbox_unavailable".into(),
            })?;
        Ok(Accepted {
            provider_ref: format!("sandbox:{}", d.idempotency_key),
            duplicate: !fresh,
        })
    }
}

impl Adapter for SandboxAdapter {
    fn channel(&self) -> Channel {
        self.channel
    }

    fn send<'a>(&'a self, d: &'a Dispatch) -> BoxFuture<'a, Result<Accepted, DeliveryError>> {
        Box::pin(self.record(d))
    }
}

/// Sandbox adapters for every channel.
pub fn channels(store: &Store) -> Channels {
    Channel::ALL
        .iter()
        .fold(Channels::default(), |acc, &channel| {
            acc.with(Arc::new(SandboxAdapter {
                channel,
                store: store.clone(),
            }))
        })
}

/// Wraps any adapter so it fails as configured before reaching its
/// provider: `[channels.sandbox.fail]` applies to real adapters too (the
/// in-app channel is always real), for tests and demos of fallbacks.
pub fn faulty(inner: Arc<dyn Adapter>, failure: Failure) -> Arc<dyn Adapter> {
    Arc::new(Faulty {
        inner,
        failure,
        seen: Mutex::new(HashMap::new()),
    })
}

#[derive(Debug)]
struct Faulty {
    inner: Arc<dyn Adapter>,
    failure: Failure,
    seen: Mutex<HashMap<String, u32>>,
}

impl Adapter for Faulty {
    fn channel(&self) -> Channel {
        self.inner.channel()
    }

    fn send<'a>(&'a self, d: &'a Dispatch) -> BoxFuture<'a, Result<Accepted, DeliveryError>> {
        Box::pin(async move {
            match self.failure {
                Failure::Never => {}
                Failure::Permanent => {
                    return Err(DeliveryError::Permanent {
                        code: "sandbox_rejected".into(),
                    });
                }
                Failure::Transient { times } => {
                    let n = {
                        let mut seen = match self.seen.lock() {
                            Ok(s) => s,
                            Err(poisoned) => poisoned.into_inner(),
                        };
                        let n = seen.entry(d.idempotency_key.clone()).or_insert(0);
                        *n += 1;
                        *n
                    };
                    if n <= times {
                        return Err(DeliveryError::Transient {
                            code: "sandbox_unavailable".into(),
                        });
                    }
                }
                Failure::Hang { seconds } => {
                    tokio::time::sleep(Duration::from_secs(seconds)).await;
                    return Err(DeliveryError::Transient {
                        code: "sandbox_hung".into(),
                    });
                }
            }
            self.inner.send(d).await
        })
    }

    fn revoke<'a>(
        &'a self,
        d: &'a Dispatch,
        provider_ref: &'a str,
    ) -> BoxFuture<'a, Result<crate::Revoked, DeliveryError>> {
        self.inner.revoke(d, provider_ref)
    }
}
