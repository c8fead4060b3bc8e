//! The decide benchmark's baseline (`benches/support/if_chain.rs`) picks
//! the same route as `decide` for every benchmarked input — so the ratio
//! the benchmark shows compares like with like — and for variations of
//! them that exercise the rules it writes out (attestation, an old
//! enrolment, the iOS override, stale and unlisted clients, contact points
//! for the portal's code).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

#[path = "../benches/support/mod.rs"]
mod support;

use ladder_core::assurance::{E2eeState, EvidenceSource, Transport};
use ladder_core::evidence::{ContactEvidence, RecipientEvidence};
use ladder_core::{DecisionInput, Policy, ThreadFloor, Timestamp, decide};
use support::if_chain::{Acme, choice_of};
use support::{CASES, NOW, POLICY, message, thread, three_devices};

fn agree(policy: &Policy, class: &str, recipient: &RecipientEvidence, thread: &ThreadFloor) {
    let message = message(class);
    let input = DecisionInput {
        message: &message,
        recipient,
        thread,
        overrides: &[],
        failed: &[],
        now: NOW,
    };
    let decided = decide(policy, &input).unwrap();
    let chosen = Acme::default().decide(class, recipient, thread, NOW);
    assert_eq!(
        chosen,
        Some(choice_of(&decided.outcome)),
        "{class} for {recipient:#?} under {thread:?}"
    );
}

#[test]
fn the_if_chain_picks_what_decide_picks_for_every_benchmarked_input() {
    let policy = Policy::parse(POLICY, "acme.toml").unwrap().policy;
    for c in CASES {
        agree(&policy, c.class, &three_devices(c.rcs), &thread(c.floor));
    }
}

#[test]
fn the_if_chain_follows_the_rules_it_writes_out() {
    let policy = Policy::parse(POLICY, "acme.toml").unwrap().policy;
    let contact = |source, age: i64| ContactEvidence {
        source,
        observed_at: Timestamp(NOW.0 - age),
    };
    let mut variants: Vec<RecipientEvidence> = Vec::new();
    for rcs in E2eeState::ALL {
        let base = three_devices(rcs);
        variants.push(base.clone());
        let mut attested = base.clone();
        for d in &mut attested.devices {
            for t in d.transports.values_mut() {
                t.attested = true;
            }
        }
        variants.push(attested.clone());
        let mut old = attested.clone();
        old.devices[0].enrolled_at = Timestamp(NOW.0 - 400 * 86_400);
        variants.push(old);
        let mut ios = attested.clone();
        ios.devices[1].labels.os = Some("iOS".into());
        ios.devices[1].labels.os_version = Some("26.3".parse().unwrap());
        variants.push(ios);
        let mut stale = base.clone();
        stale.devices[2]
            .transports
            .get_mut(&Transport::Rcs)
            .unwrap()
            .observed_at = Timestamp(NOW.0 - 8 * 86_400);
        variants.push(stale);
        let mut lite = base.clone();
        for d in &mut lite.devices {
            if let Some(c) = d.client.as_mut() {
                c.name = "ACME-Lite".into();
            }
        }
        variants.push(lite.clone());
        let mut unlisted = lite;
        unlisted.devices[0].client.as_mut().unwrap().name = "other".into();
        variants.push(unlisted);
        let mut unreachable = base.clone();
        unreachable.devices[2]
            .transports
            .get_mut(&Transport::Rcs)
            .unwrap()
            .reachable = false;
        variants.push(unreachable);
        let mut revoked = base.clone();
        revoked.devices[2].revoked_at = Some(Timestamp(NOW.0 - 60));
        variants.push(revoked);
        for (email, phone) in [
            (Some(contact(EvidenceSource::ProviderCheck, 60)), None),
            (None, Some(contact(EvidenceSource::ProviderCheck, 60))),
            (
                Some(contact(EvidenceSource::ProviderCheck, 60)),
                Some(contact(EvidenceSource::ProviderCheck, 3 * 86_400)),
            ),
            (
                Some(contact(EvidenceSource::ProviderCheck, 3 * 86_400)),
                Some(contact(EvidenceSource::SelfReported, 60)),
            ),
        ] {
            let mut with = base.clone();
            with.email = email;
            with.phone = phone;
            variants.push(with);
        }
    }
    for recipient in &variants {
        for class in ["payroll", "hr_case"] {
            for floor in ladder_core::AssuranceLevel::ALL {
                agree(&policy, class, recipient, &thread(floor));
            }
        }
    }
}
