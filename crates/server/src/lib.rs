//! # ladder-server
//!
//! The service around the pure core: an HTTP JSON API under `/v1`
//! ([`api`]), the operations it runs ([`service`]: accept a message, run a
//! handshake, set an override…), the background [`worker`]s that drain the
//! outbox through the channel adapters, the operators' [`console`], and
//! start-up and shutdown ([`app`]).
//!
//! Follow a message: `api::messages::send` → `service::send::accept`
//! (decide with `ladder_core::decide`, store message + sealed payload +
//! outbox work + audit entry in one transaction) → `worker::delivery` →
//! `service::deliver::run` → a `ladder_channels::Adapter` (the worker woken
//! at once by [`wake`], the call within its channel's [`slots`]).

pub mod api;
pub mod app;
mod auth;
pub mod config;
pub mod console;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod portal;
mod reference;
pub mod service;
pub mod slots;
pub mod state;
pub mod wake;
pub mod worker;

pub use app::{Running, StartError, start};
pub use config::Config;
