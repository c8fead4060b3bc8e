//! The benchmark's inputs — the shipped example policy and a recipient with
//! three devices — and the plain if-chain it is measured against
//! ([`if_chain`]). Shared by `benches/decide.rs` and `tests/if_chain.rs`,
//! which checks that the if-chain and `decide` pick the same route for every
//! benchmarked input, so the ratio compares like with like.

// Fixed, known-good inputs: a failure here is a bug in the benchmark.
#![allow(clippy::unwrap_used, dead_code)]

pub mod if_chain;

use std::collections::BTreeMap;

use ladder_core::assurance::{E2eeState, EvidenceSource, Transport};
use ladder_core::evidence::{
    ClientInfo, DeviceEvidence, PlatformLabels, RecipientEvidence, TransportEvidence,
};
use ladder_core::{AssuranceLevel, MessageMeta, ThreadFloor, Timestamp};

pub const POLICY: &str = include_str!("../../../../examples/policies/acme.toml");
/// 2027-01-01T00:00:00Z: the policy's shipped override is still active.
pub const NOW: Timestamp = Timestamp(1_798_761_600);

/// One benchmarked decision: a class, every device's RCS E2EE state, and
/// the thread's floor (and last label).
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    pub class: &'static str,
    pub rcs: E2eeState,
    pub floor: AssuranceLevel,
}

/// `payroll_over_rcs` takes the first step; `payroll_down_to_portal` walks
/// the whole ladder (the portal too is skipped: the recipient has no
/// contact point for its one-time code, so payroll escalates);
/// `hr_case_blocked` exhausts a one-step ladder.
pub const CASES: [Case; 3] = [
    Case {
        name: "payroll_over_rcs",
        class: "payroll",
        rcs: E2eeState::Verified,
        floor: AssuranceLevel::E2ee,
    },
    Case {
        name: "payroll_down_to_portal",
        class: "payroll",
        rcs: E2eeState::Absent,
        floor: AssuranceLevel::Transport,
    },
    Case {
        name: "hr_case_blocked",
        class: "hr_case",
        rcs: E2eeState::Absent,
        floor: AssuranceLevel::Transport,
    },
];

pub fn device(id: &str, os: &str, rcs: E2eeState, in_app: bool) -> DeviceEvidence {
    let labels = PlatformLabels {
        os: Some(os.into()),
        os_version: Some("26.1".parse().unwrap()),
        client: Some("acme-app".into()),
        client_version: Some("5.3".parse().unwrap()),
        carrier: Some("carrier-a".into()),
    };
    let mut d = DeviceEvidence::new(id, labels, Timestamp(NOW.0 - 86_400));
    d.client = Some(ClientInfo {
        name: "acme-app".into(),
        version: "5.3".parse().unwrap(),
        policy_revision: 4,
    });
    let signed = |e2ee| TransportEvidence {
        client: None,
        reachable: true,
        e2ee,
        attested: false,
        source: EvidenceSource::SignedDeviceReport,
        observed_at: Timestamp(NOW.0 - 3600),
    };
    let mut t = BTreeMap::new();
    t.insert(Transport::Rcs, signed(rcs));
    t.insert(Transport::Sms, signed(E2eeState::Absent));
    if in_app {
        t.insert(Transport::InApp, signed(E2eeState::Verified));
        t.insert(Transport::Push, signed(E2eeState::Absent));
    }
    d.transports = t;
    d
}

pub fn three_devices(rcs: E2eeState) -> RecipientEvidence {
    RecipientEvidence {
        devices: vec![
            device("phone", "android", rcs, true),
            device("tablet", "android", rcs, true),
            device("laptop", "macos", rcs, false),
        ],
        email: None,
        phone: None,
    }
}

pub fn thread(floor: AssuranceLevel) -> ThreadFloor {
    ThreadFloor {
        floor,
        since: Timestamp(0),
        label: Some(floor),
    }
}

pub fn message(class: &str) -> MessageMeta {
    MessageMeta {
        id: "m1".into(),
        class: class.into(),
        accepted_at: NOW,
        confirmation: None,
    }
}
