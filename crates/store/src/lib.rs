//! # ladder-store
//!
//! Everything ladder keeps: tenants and API keys, policies, recipients and
//! their devices, overrides, threads, messages with their sealed payloads,
//! the delivery outbox and the audit chain — one interface over SQLite (the
//! embedded default) and PostgreSQL (several nodes, one database).
//!
//! Functions that must commit together take a [`Tx`]: accepting a message
//! writes the message, its sealed payload, its outbox work and its audit
//! entry in one transaction, so an accepted message is never lost.
//!
//! Nothing here stores message content in plaintext: payloads are sealed
//! with a per-message data key ([`sealed`]) wrapped by a tenant key from the
//! local [`keyring`], and recipient addresses appear in the audit log only
//! as keyed pseudonyms.

pub mod audit;
pub mod commit;
pub mod console;
pub mod db;
pub mod deliveries;
pub mod error;
pub mod event_hooks;
pub mod handovers;
pub mod ids;
pub mod inbox;
pub mod keyring;
pub mod messages;
mod migrate;
pub mod outbox;
pub mod overrides;
pub mod policies;
pub mod portal;
pub mod queue;
pub mod recipients;
pub mod sandbox;
pub mod sealed;
pub mod stats;
pub mod tenants;
pub mod threads;

pub use commit::GroupCommit;
pub use db::{Dialect, Store, Tx};
pub use error::StoreError;
