//! What every handler and worker shares: the store, the keyring, the
//! channels, the configuration and a cache of parsed policies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use ladder_channels::Channels;
use ladder_core::{Policy, Timestamp};
use ladder_store::keyring::Keyring;
use ladder_store::{GroupCommit, Store, policies};
use sqlx::AnyConnection;

use crate::config::Config;
use crate::service::error::ServiceError;

#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    /// Writes that answer only once durable, batched on SQLite
    /// ([`ladder_store::commit`]).
    pub commit: GroupCommit,
    pub keyring: Keyring,
    pub channels: Channels,
    pub config: Arc<Config>,
    /// Parsed policies by version: the text is parsed once per node.
    policies: Arc<Mutex<HashMap<String, Arc<Policy>>>>,
    /// This node's name for outbox leases.
    pub node: String,
    /// This node's rate limits (`[limits]`).
    pub limits: Arc<crate::limits::Limits>,
    /// Wakes this node's delivery workers when work due now is committed.
    pub wake: crate::wake::Wakeup,
    /// Provider calls of delivery work in flight, per channel
    /// (`delivery.concurrency`).
    pub provider_slots: crate::slots::ProviderSlots,
}

impl AppState {
    /// A token keyed under the tenant's pseudonym key over `what` (its
    /// HMAC, hex): CSRF tokens bound to a link or session, needing no
    /// storage and meaning nothing for another tenant.
    pub fn keyed_token(&self, tenant_id: &str, what: &str) -> Result<String, ServiceError> {
        let p = self.keyring.pseudonym(tenant_id, what)?;
        Ok(p.trim_start_matches("p:").to_string())
    }

    /// Needs a Tokio runtime: it starts the group committer.
    pub fn new(store: Store, keyring: Keyring, channels: Channels, config: Config) -> AppState {
        AppState {
            commit: GroupCommit::with_options(
                store.clone(),
                config.api.group_commit_max,
                Some(Arc::new(|units, took| {
                    metrics::histogram!("ladder_commit_batch_units").record(units as f64);
                    metrics::histogram!("ladder_commit_batch_seconds").record(took.as_secs_f64());
                })),
            ),
            store,
            keyring,
            channels,
            limits: Arc::new(crate::limits::Limits::new(&config.limits)),
            wake: crate::wake::Wakeup::default(),
            provider_slots: crate::slots::ProviderSlots::new(config.delivery.concurrency),
            config: Arc::new(config),
            policies: Arc::default(),
            node: ladder_store::ids::new_id("node"),
        }
    }

    /// The tenant's active policy, parsed. A tenant without one cannot send.
    pub async fn active_policy(
        &self,
        conn: &mut AnyConnection,
        tenant_id: &str,
    ) -> Result<Arc<Policy>, ServiceError> {
        // The version alone first: a parsed policy is kept per version, so
        // the text is read only when this node has not parsed it yet.
        if let Some(version) = policies::active_version(conn, tenant_id).await?
            && let Some(p) = self.cached(&version)
        {
            return Ok(p);
        }
        let stored = policies::active(conn, tenant_id).await?.ok_or_else(|| {
            ServiceError::conflict(
                "no_active_policy",
                "this tenant has no published policy; PUT /v1/policy first",
            )
        })?;
        if let Some(p) = self.cached(&stored.version) {
            return Ok(p);
        }
        let parsed = Policy::parse(&stored.source, "stored policy").map_err(|e| {
            ServiceError::Internal(format!(
                "stored policy {} no longer parses: {e}",
                stored.version
            ))
        })?;
        let policy = Arc::new(parsed.policy);
        if let Ok(mut cache) = self.policies.lock() {
            cache.insert(stored.version, policy.clone());
        }
        Ok(policy)
    }

    fn cached(&self, version: &str) -> Option<Arc<Policy>> {
        self.policies.lock().ok()?.get(version).cloned()
    }
}

/// The wall clock, read here and passed into the core as a value.
pub fn now() -> Timestamp {
    Timestamp(now_ms() / 1000)
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
