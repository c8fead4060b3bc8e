//! One decision on the shipped example policy, for a recipient with three
//! devices. Run with `cargo bench -p ladder-core --bench decide`.
//!
//! `payroll_over_rcs` takes the first step; `payroll_down_to_portal` walks
//! the whole ladder (every step skipped but the last); `hr_case_blocked`
//! exhausts it. `policy_parse` is there for scale: parsing and hashing a
//! policy happens once per publication, deciding once per message.

// Benchmark set-up on fixed, known-good inputs: a failure here is a bug in
// the benchmark, and panicking is the right report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use divan::counter::ItemsCount;
use ladder_core::assurance::{E2eeState, EvidenceSource, Transport};
use ladder_core::evidence::{
    ClientInfo, DeviceEvidence, PlatformLabels, RecipientEvidence, TransportEvidence,
};
use ladder_core::{
    AssuranceLevel, DecisionInput, MessageMeta, Policy, ThreadFloor, Timestamp, decide,
};

const POLICY: &str = include_str!("../../../examples/policies/acme.toml");
const NOW: Timestamp = Timestamp(1_798_761_600);

fn main() {
    divan::main();
}

fn device(id: &str, os: &str, rcs: E2eeState, in_app: bool) -> DeviceEvidence {
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

fn three_devices(rcs: E2eeState) -> RecipientEvidence {
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

fn bench_decision(b: divan::Bencher, class: &str, rcs: E2eeState, floor: AssuranceLevel) {
    let policy = Policy::parse(POLICY, "acme.toml").unwrap().policy;
    let recipient = three_devices(rcs);
    let thread = ThreadFloor {
        floor,
        since: Timestamp(0),
        label: Some(floor),
    };
    let message = MessageMeta {
        id: "m1".into(),
        class: class.into(),
        accepted_at: NOW,
        confirmation: None,
    };
    b.counter(ItemsCount::new(1usize)).bench(|| {
        let input = DecisionInput {
            message: &message,
            recipient: &recipient,
            thread: &thread,
            overrides: &[],
            failed: &[],
            now: NOW,
        };
        decide(divan::black_box(&policy), divan::black_box(&input))
    });
}

#[divan::bench]
fn payroll_over_rcs(b: divan::Bencher) {
    bench_decision(b, "payroll", E2eeState::Verified, AssuranceLevel::E2ee);
}

#[divan::bench]
fn payroll_down_to_portal(b: divan::Bencher) {
    bench_decision(b, "payroll", E2eeState::Absent, AssuranceLevel::Transport);
}

#[divan::bench]
fn hr_case_blocked(b: divan::Bencher) {
    bench_decision(b, "hr_case", E2eeState::Absent, AssuranceLevel::Transport);
}

#[divan::bench]
fn policy_parse(b: divan::Bencher) {
    b.bench(|| {
        Policy::parse(divan::black_box(POLICY), "acme.toml").map(|p| p.policy.version().clone())
    });
}

/// The thread-floor assessment alone, which every decision starts with.
#[divan::bench]
fn floor_assessment(b: divan::Bencher) {
    let policy = Policy::parse(POLICY, "acme.toml").unwrap().policy;
    let recipient = three_devices(E2eeState::Verified);
    let overrides: Vec<_> = policy.overrides().iter().collect();
    b.bench(|| {
        ladder_core::thread::assess(
            policy.evidence(),
            divan::black_box(&recipient),
            &overrides,
            NOW,
        )
    });
}
