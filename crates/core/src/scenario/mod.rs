//! Scenario files: a policy and a timeline of what happens to one recipient
//! (devices, handshakes, provider checks, time, overrides, provider outages)
//! with sends whose expected outcome is written down. `ladder simulate`
//! replays them with the real decision, handshake and ratchet code.
//!
//! The format, one `[[step]]` per event, each naming exactly one action:
//!
//! ```toml
//! policy = "../policies/acme.toml"   # or: policy_inline = '''...'''
//! start = 2026-11-27T09:00:00Z       # optional
//! [recipient]
//! email = true                        # a verified e-mail address on file
//! phone = true                        # a verified phone number on file (portal codes by SMS)
//!
//! [[step]]
//! add_device = "iphone"
//! os = "ios"
//! os_version = "26.1"
//! client = "acme-app"
//! client_version = "5.3"
//!
//! [[step]]
//! handshake = "iphone"                # a signed report over a fresh challenge
//! rcs = "verified"                    # verified | claimed | absent | unknown | unreachable
//! in_app = "verified"
//! push = "reachable"                  # reachable | unreachable
//! attested = true
//! # signed = false      -> unsigned: rejected ("unsigned"), nothing recorded
//! # forged = true       -> signed with the wrong key; rejected ("bad_signature")
//! # replay = true       -> resends the device's last signed report ("unknown_challenge")
//! # late = true         -> answers after the challenge expired ("challenge_expired")
//! # expect_rejected = "bad_signature"   -> the step fails unless rejected so
//!
//! [[step]]
//! send = "payroll"
//! id = "m1"
//! expect = { outcome = "deliver", route = "rcs", assurance = "e2ee", skips = { } }
//! ```
//!
//! Other actions: `provider_check`, `update_device`, `revoke_device`,
//! `remove_device`, `advance = "8d"`, `set_override = { ... expires_in }`,
//! `clear_override`, `provider_down`/`provider_up = "rcs"`, and
//! Every `send` and `confirm` must expect at least an `outcome`, and a file
//! with no `send` is an error: a scenario always checks something.
//! `confirm = "m1"` (the sender confirms that message, for the container and
//! level it was shown). A `send` that reuses a message id re-decides that
//! message (a held message retried) and keeps its acceptance time. A send
//! may present `confirmation_of = "m0"`, a confirmation bound to another
//! message, which is never accepted. Any step may carry `expect_floor`
//! (checked once a thread exists, at the first send). `[recipient] email =
//! true` records a verified address observed by a provider check at
//! `start`, fresh for as long as the policy trusts provider checks; `phone
//! = true` records a phone number the same way. They are the contact points
//! a portal's one-time code can go to: a portal step qualifies only when its
//! `step_up` setting finds one (by default, another than the notice's), and
//! is otherwise skipped with `no_step_up_channel`.

mod check;
mod fields;
mod parse;
mod run;

use std::collections::BTreeMap;

use crate::assurance::{AssuranceLevel, Channel, E2eeState, Transport};
use crate::evidence::PlatformLabels;
use crate::overrides::Override;
use crate::policy::Location;
use crate::time::{Duration, Timestamp};
use crate::version::PlatformVersion;

pub use parse::{PolicyRef, ScenarioError, ScenarioErrorKind, parse_scenario};
pub use run::{Mismatch, Row, RunEvent, ScenarioReport, run};

/// A parsed scenario, before its policy is loaded.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: Option<String>,
    pub description: Option<String>,
    pub policy: PolicyRef,
    pub start: Timestamp,
    pub email: bool,
    /// A verified phone number on file, which can take a portal's code.
    pub phone: bool,
    pub steps: Vec<ScenarioStep>,
}

/// One timeline entry, with where it was written.
#[derive(Debug, Clone)]
pub struct ScenarioStep {
    /// 1-based, as written in the file.
    pub number: usize,
    pub location: Location,
    pub action: Action,
    pub expect_floor: Option<AssuranceLevel>,
}

/// What a device's handshake says about one transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    E2ee(E2eeState),
    Reachable,
    Unreachable,
}

/// How a handshake is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Signed,
    Unsigned,
    Forged,
    Replay,
    Late,
}

#[derive(Debug, Clone)]
pub struct HandshakeStep {
    pub device: String,
    pub transports: BTreeMap<Transport, Reported>,
    pub attested: bool,
    pub client: Option<String>,
    pub client_version: Option<PlatformVersion>,
    pub policy_revision: Option<u32>,
    pub delivery: Delivery,
    pub expect_rejected: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SendStep {
    pub class: String,
    pub id: Option<String>,
    pub confirmation_of: Option<String>,
    pub expect: Expect,
}

/// What a send (or confirm) must come to. Unset fields are not checked.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub outcome: Option<String>,
    pub route: Option<String>,
    pub assurance: Option<AssuranceLevel>,
    pub downgrade: Option<bool>,
    pub floor: Option<AssuranceLevel>,
    pub enforced: Option<String>,
    pub skips: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone)]
pub enum Action {
    AddDevice {
        device: String,
        labels: PlatformLabels,
    },
    UpdateDevice {
        device: String,
        labels: PlatformLabels,
    },
    Handshake(HandshakeStep),
    ProviderCheck {
        device: String,
        transports: BTreeMap<Transport, bool>,
    },
    RevokeDevice {
        device: String,
    },
    RemoveDevice {
        device: String,
    },
    Advance(Duration),
    SetOverride(Box<Override>),
    ClearOverride(String),
    ProviderDown(Channel),
    ProviderUp(Channel),
    Send(SendStep),
    Confirm {
        id: String,
        expect: Expect,
    },
}

impl Action {
    /// A short label for tables and mismatch messages.
    pub fn label(&self) -> String {
        match self {
            Action::AddDevice { device, .. } => format!("add_device {device}"),
            Action::UpdateDevice { device, .. } => format!("update_device {device}"),
            Action::Handshake(h) => format!("handshake {}", h.device),
            Action::ProviderCheck { device, .. } => format!("provider_check {device}"),
            Action::RevokeDevice { device } => format!("revoke_device {device}"),
            Action::RemoveDevice { device } => format!("remove_device {device}"),
            Action::Advance(d) => format!("advance {d}"),
            Action::SetOverride(o) => format!("set_override {}", o.id),
            Action::ClearOverride(id) => format!("clear_override {id}"),
            Action::ProviderDown(c) => format!("provider_down {c}"),
            Action::ProviderUp(c) => format!("provider_up {c}"),
            Action::Send(s) => format!("send {}", s.class),
            Action::Confirm { id, .. } => format!("confirm {id}"),
        }
    }
}
