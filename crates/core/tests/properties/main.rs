//! Property tests of `DESIGN.md` invariants 1–3 over generated policies,
//! evidence, threads, failures and overrides.
//!
//! Policies are generated as TOML text from structured strategies (classes
//! with random minimums, ladders of containers that can reach them, notifiers
//! where a container accepts them, observing classes with legacy routes,
//! overrides) and parsed with `Policy::parse`, so the validator is part of
//! what is tested: a policy it rejects is skipped, and a separate test makes
//! sure most generated policies are accepted. Every decision is held to
//! `ladder_core::invariants::check_decision`, every elevation to
//! `check_elevation`.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::fmt::Write;

use ed25519_dalek::SigningKey;
use ladder_core::assurance::{
    AssuranceLevel, Channel, Container, E2eeState, EvidenceSource, Notifier, Transport,
};
use ladder_core::decision::{Confirmation, DecisionInput, FailedAttempt, MessageMeta, decide};
use ladder_core::evidence::{
    ClientInfo, ContactEvidence, DeviceEvidence, PlatformLabels, RecipientEvidence,
    TransportEvidence,
};
use ladder_core::handshake::{self, Challenge, DeviceReport, ReportedTransport};
use ladder_core::invariants::{all_overrides, check_decision, check_elevation};
use ladder_core::overrides::{LabelMatch, Override, OverrideEffect};
use ladder_core::thread::{ThreadFloor, assess};
use ladder_core::{Policy, Timestamp};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

/// 2027-01-01T00:00:00Z.
const NOW: i64 = 1_798_761_600;
const HOUR: i64 = 3600;

const CLASS_NAMES: [&str; 8] = [
    "marketing",
    "notice",
    "payroll",
    "legal_notice",
    "hr_case",
    "support",
    "alerts",
    "statements",
];

mod evidence;
mod policies;

use evidence::*;
use policies::*;

// ---------------------------------------------------------------- properties

#[test]
fn most_generated_policies_are_accepted() {
    let mut runner = TestRunner::new(Config {
        rng_seed: proptest::test_runner::RngSeed::Fixed(7),
        ..Config::default()
    });
    let strategy = policy_spec();
    let total = 400;
    let mut accepted = 0;
    let mut first_refusal = None;
    for _ in 0..total {
        let spec = strategy.new_tree(&mut runner).unwrap().current();
        match Policy::parse(&spec.toml(), "generated.toml") {
            Ok(_) => accepted += 1,
            Err(e) => {
                first_refusal.get_or_insert_with(|| format!("{e}\n{}", spec.toml()));
            }
        }
    }
    assert!(
        accepted * 100 >= total * 60,
        "only {accepted} of {total} generated policies parse; first refusal:\n{}",
        first_refusal.unwrap_or_default()
    );
    // …and the generator does produce refusals, so the validator is exercised.
    assert!(accepted < total, "every generated policy parsed");
}

proptest! {
    #![proptest_config(config())]

    /// Invariants 1–3 over one decision (and its confirmation, when the
    /// sender confirms) and over an elevation attempt, for every generated
    /// policy, recipient, thread, failure set and override set.
    #[test]
    fn every_decision_keeps_invariants_1_to_3(
        (spec, recipient) in policy_and_recipient(),
        class_pick in any::<prop::sample::Index>(),
        thread in thread(),
        failed in failures(),
        runtime in runtime_overrides(),
        confirmation in confirmation(),
        later in select(vec![0i64, 1, HOUR]),
    ) {
        let policy = parse(&spec);
        prop_assume!(policy.is_some());
        let policy = policy.unwrap();
        let class = class_pick.get(policy.classes());
        let now = Timestamp(NOW + later);
        let message = MessageMeta {
            id: "m1".into(),
            class: class.name.clone(),
            accepted_at: Timestamp(NOW),
            confirmation,
        };
        let input = DecisionInput {
            message: &message,
            recipient: &recipient,
            thread: &thread,
            overrides: &runtime,
            failed: &failed,
            now,
        };
        let decision = decide(&policy, &input).unwrap();
        if let Err(v) = check_decision(&policy, &input, &decision) {
            prop_assert!(
                false,
                "{v}\n\n{}\n{}",
                ladder_core::decision::explain(&decision),
                spec.toml()
            );
        }
        if let Some(route) = decision.outcome.route()
            && matches!(decision.outcome, ladder_core::Outcome::ConfirmationRequired { .. })
        {
            let confirmed = MessageMeta {
                confirmation: Some(Confirmation {
                    message_id: "m1".into(),
                    container: route.container,
                    assurance: route.assurance,
                }),
                ..message.clone()
            };
            let input = DecisionInput { message: &confirmed, ..input };
            let again = decide(&policy, &input).unwrap();
            let delivered = matches!(again.outcome, ladder_core::Outcome::Deliver { .. });
            prop_assert!(delivered, "a confirmed downgrade was not delivered");
            if let Err(v) = check_decision(&policy, &input, &again) {
                prop_assert!(false, "after confirmation: {v}\n{}", spec.toml());
            }
        }
        let overrides = all_overrides(&policy, &runtime);
        if let Err(v) = check_elevation(policy.evidence(), &recipient, &overrides, &thread, now) {
            prop_assert!(false, "{v}\n{}", spec.toml());
        }
    }
}

// ------------------------------------------------------------ sequences

/// Something that happens to a recipient between decisions.
#[derive(Debug, Clone)]
enum Event {
    /// A verified handshake (really signed and verified) from device `device`.
    Handshake {
        device: usize,
        transports: BTreeMap<Transport, ReportedTransport>,
        client: ClientInfo,
    },
    /// A provider capability check.
    ProviderCheck {
        device: usize,
        transport: Transport,
        reachable: bool,
    },
    AddDevice(PlatformLabels),
    Revoke(usize),
    Advance(i64),
    SetOverride(Override),
    ClearOverrides,
    Send {
        class: prop::sample::Index,
        failed: Vec<FailedAttempt>,
    },
    /// The caller tries to elevate the thread (a server does after every
    /// verified handshake).
    Elevate,
}

fn event() -> impl Strategy<Value = Event> {
    let reported = (
        proptest::bool::weighted(0.85),
        select(E2eeState::ALL.to_vec()),
        any::<bool>(),
    )
        .prop_map(|(reachable, e2ee, attested)| ReportedTransport {
            reachable,
            e2ee,
            attested,
        });
    prop_oneof![
        4 => (
            0usize..4,
            proptest::collection::btree_map(select(Transport::ALL.to_vec()), reported, 1..=3),
            client_info(),
        )
            .prop_map(|(device, transports, client)| Event::Handshake { device, transports, client }),
        2 => (0usize..4, select(vec![Transport::Rcs, Transport::Sms]), any::<bool>())
            .prop_map(|(device, transport, reachable)| Event::ProviderCheck { device, transport, reachable }),
        1 => labels().prop_map(Event::AddDevice),
        1 => (0usize..4).prop_map(Event::Revoke),
        2 => select(vec![1i64, HOUR, 25 * HOUR, 8 * 24 * HOUR]).prop_map(Event::Advance),
        1 => runtime_override(0).prop_map(Event::SetOverride),
        1 => Just(Event::ClearOverrides),
        5 => (any::<prop::sample::Index>(), failures())
            .prop_map(|(class, failed)| Event::Send { class, failed }),
        3 => Just(Event::Elevate),
    ]
}

fn key(device: usize) -> SigningKey {
    SigningKey::from_bytes(&[u8::try_from(device).unwrap_or(0).wrapping_add(1); 32])
}

proptest! {
    #![proptest_config(config())]

    /// Over a timeline of evidence changes, sends and elevation attempts
    /// (each decision's `thread.after` applied), the floor never rises
    /// except by a successful `elevate`, every decision keeps invariants
    /// 1–3, and every successful elevation rests on a fresh signed report
    /// from every active device.
    #[test]
    fn the_floor_rises_only_by_elevation(
        (spec, start) in policy_and_recipient(),
        events in proptest::collection::vec(event(), 1..24),
    ) {
        let policy = parse(&spec);
        prop_assume!(policy.is_some());
        let policy = policy.unwrap();
        let mut now = Timestamp(NOW);
        let mut recipient = start;
        let mut runtime: Vec<Override> = Vec::new();
        let opened = {
            let overrides = all_overrides(&policy, &runtime);
            assess(policy.evidence(), &recipient, &overrides, now)
        };
        let mut thread = ThreadFloor::open(&opened, now);
        let mut nonce = 0u64;
        let mut sent = 0usize;
        for (n, e) in events.iter().enumerate() {
            let before = thread.clone();
            let mut elevated = false;
            match e {
                Event::Handshake { device, transports, client } => {
                    let Some(d) = recipient.devices.get_mut(*device) else { continue };
                    nonce += 1;
                    let challenge = Challenge {
                        nonce: format!("{nonce:064x}"),
                        device: d.id.to_string(),
                        issued_at: now,
                        expires_at: now.plus(ladder_core::time::Duration(300)),
                    };
                    let report = DeviceReport {
                        device: d.id.to_string(),
                        nonce: challenge.nonce.clone(),
                        client: client.clone(),
                        transports: transports.clone(),
                    };
                    let k = key(*device);
                    let signed = handshake::sign(&k, report).unwrap();
                    let pk = k.verifying_key().to_bytes();
                    match handshake::verify(Some(&challenge), &pk, d, &signed, now) {
                        Ok(v) => v.apply(d),
                        // Revoked devices are refused; nothing changes.
                        Err(r) => prop_assert!(d.is_revoked(), "refused: {r}"),
                    }
                }
                Event::ProviderCheck { device, transport, reachable } => {
                    let Some(d) = recipient.devices.get_mut(*device) else { continue };
                    d.transports.insert(*transport, TransportEvidence {
 client: None,
                        reachable: *reachable,
                        e2ee: E2eeState::Unknown,
                        attested: false,
                        source: EvidenceSource::ProviderCheck,
                        observed_at: now,
                    });
                }
                Event::AddDevice(labels) => {
                    let id = recipient.devices.len();
                    recipient.devices.push(DeviceEvidence::new(format!("d{id}"), labels.clone(), now));
                }
                Event::Revoke(i) => {
                    if let Some(d) = recipient.devices.get_mut(*i)
                        && d.revoked_at.is_none()
                    {
                        d.revoked_at = Some(now);
                    }
                }
                Event::Advance(s) => now = Timestamp(now.0 + s),
                Event::SetOverride(o) => {
                    runtime.retain(|x| x.id != o.id);
                    runtime.push(Override { expires: Timestamp(now.0 + (o.expires.0 - NOW)), ..o.clone() });
                }
                Event::ClearOverrides => runtime.clear(),
                Event::Send { class, failed } => {
                    sent += 1;
                    let class = class.get(policy.classes());
                    let message = MessageMeta {
                        id: format!("m{sent}"),
                        class: class.name.clone(),
                        accepted_at: now,
                        confirmation: None,
                    };
                    let input = DecisionInput {
                        message: &message,
                        recipient: &recipient,
                        thread: &thread,
                        overrides: &runtime,
                        failed,
                        now,
                    };
                    let d = decide(&policy, &input).unwrap();
                    if let Err(v) = check_decision(&policy, &input, &d) {
                        prop_assert!(false, "event {n}: {v}\n{}", spec.toml());
                    }
                    prop_assert_eq!(&d.thread.before, &thread);
                    thread = d.thread.after.clone();
                }
                Event::Elevate => {
                    let overrides = all_overrides(&policy, &runtime);
                    if let Err(v) = check_elevation(policy.evidence(), &recipient, &overrides, &thread, now) {
                        prop_assert!(false, "event {n}: {v}\n{}", spec.toml());
                    }
                    if let Ok(el) = thread.elevate(policy.evidence(), &recipient, &overrides, now) {
                        prop_assert_eq!(el.from, thread.floor);
                        thread.apply_elevation(&el);
                        elevated = true;
                    }
                }
            }
            prop_assert!(
                thread.floor <= before.floor || elevated,
                "event {n} ({e:?}) raised the floor from {} to {} without an elevation",
                before.floor,
                thread.floor
            );
        }
    }
}
