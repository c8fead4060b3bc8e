//! How many provider calls this node's delivery work makes at once, per
//! channel (`delivery.concurrency`): a semaphore per channel, taken
//! around each hand-over (`Adapter::send`) and withdrawal
//! (`Adapter::revoke`) the outbox work makes.
//!
//! The workers run the items they claim concurrently; these slots are what
//! keeps a burst of work from opening more connections to one provider
//! than its account allows, while the other channels carry on. A slot is
//! taken only around the call itself — never while a database connection
//! is held (SQLite has one), and the call's timeout starts once the slot
//! is held. The portal's one-time codes, sent while a recipient waits, do
//! not queue behind them.

use std::sync::Arc;

use ladder_core::Channel;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::service::error::ServiceError;

/// One semaphore per channel, `per_channel` permits each.
#[derive(Debug, Clone)]
pub struct ProviderSlots {
    channels: Arc<[(Channel, Semaphore)]>,
}

impl ProviderSlots {
    pub fn new(per_channel: usize) -> ProviderSlots {
        let permits = per_channel.clamp(1, Semaphore::MAX_PERMITS);
        ProviderSlots {
            channels: Channel::ALL
                .iter()
                .map(|c| (*c, Semaphore::new(permits)))
                .collect(),
        }
    }

    /// Waits for a free slot on `channel`; the call it covers must end
    /// before the permit is dropped.
    pub async fn acquire(&self, channel: Channel) -> Result<SemaphorePermit<'_>, ServiceError> {
        let semaphore = self
            .channels
            .iter()
            .find(|(c, _)| *c == channel)
            .map(|(_, s)| s)
            .ok_or_else(|| ServiceError::Internal(format!("no provider slots for {channel}")))?;
        semaphore
            .acquire()
            .await
            .map_err(|_| ServiceError::Internal(format!("provider slots for {channel} closed")))
    }
}
