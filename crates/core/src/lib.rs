//! # ladder-core
//!
//! The pure heart of ladder: given a tenant's [`Policy`], a recipient's
//! verified capability evidence, the thread's floor, the active overrides and
//! the time, [`decide`] says which rung of the secure fallback ladder carries
//! a message — or that it must be confirmed, held, escalated or blocked — and
//! why every rung above it was skipped.
//!
//! No I/O, no async, no clock: time is an input, files are read by the
//! caller. Everything here is deterministic, which is what lets
//! `ladder simulate` replay a timeline and `--exhaustive` check the
//! invariants of `DESIGN.md` over every state.
//!
//! Reading order: [`assurance`] (the vocabulary), [`policy`] (parse, don't
//! validate), [`evidence`] (what counts as proof), [`thread`] (the downgrade
//! ratchet), [`decision`] (the decision and its explanation),
//! [`handshake`] (how devices prove their state), [`scenario`] (timelines),
//! [`invariants`] and [`exhaustive`] (the checks).

pub mod assurance;
pub mod decision;
pub mod evidence;
pub mod exhaustive;
pub mod handshake;
pub mod invariants;
pub mod overrides;
pub mod policy;
pub mod reason;
pub mod scenario;
pub mod step_up;
pub mod thread;
pub mod time;
pub mod version;

pub use assurance::{AssuranceLevel, Channel, Container, Mode, Notifier, StepUp, Transport};
pub use decision::{Decision, DecisionInput, MessageMeta, Outcome, decide};
pub use policy::{Class, Policy, PolicyVersion, Step};
pub use reason::SkipReason;
pub use step_up::SecondFactor;
pub use thread::ThreadFloor;
pub use time::{Duration, Timestamp};
