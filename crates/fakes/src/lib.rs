//! # ladder-fakes
//!
//! Stand-ins for the providers ladder cannot reach in tests and demos, each
//! a real server on a loopback port speaking the protocol ladder's adapter
//! speaks: an RCS business-messaging API ([`rcs`]), an SMS API ([`sms`]),
//! APNs- and FCM-style push ([`push`]) and an SMTP sink ([`smtp`]). Each
//! records what it received, sends receipts back by signed webhook where
//! its real counterpart does, and can be told to fail.
//!
//! Test and demo tooling: the product never depends on this crate.

pub mod push;
pub mod rcs;
pub mod sms;
pub mod smtp;
