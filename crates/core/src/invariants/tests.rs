//! Tests of the invariant checks.

use std::collections::BTreeMap;

use super::*;
use crate::assurance::{E2eeState, EvidenceSource};
use crate::decision::{MessageMeta, decide};
use crate::evidence::{ClientInfo, DeviceEvidence, PlatformLabels, TransportEvidence};

const NOW: Timestamp = Timestamp(1_798_761_600);

fn policy(extra: &str) -> Policy {
    let text = format!(
        r#"
tenant = "t"
display_name = "Acme Corp."
[evidence]
[[evidence.source]]
source = "signed_device_report"
verifies = ["reachable", "e2ee", "attestation"]
fresh_for = "7d"
[[evidence.source]]
source = "provider_check"
verifies = ["reachable"]
fresh_for = "24h"
{extra}
[[class]]
name = "payroll"
minimum = "transport"
retention = "30d"
on_exhausted = "block"
ladder = [
  {{ container = "rcs", require = "e2ee" }},
  {{ container = "portal", notifiers = ["sms_notice"] }},
]
"#
    );
    Policy::parse(&text, "test.toml").unwrap().policy
}

fn phone(rcs: E2eeState) -> RecipientEvidence {
    let mut d = DeviceEvidence::new("phone", PlatformLabels::default(), Timestamp(0));
    d.client = Some(ClientInfo {
        name: "app".into(),
        version: "1.0".parse().unwrap(),
        policy_revision: 1,
    });
    let ev = |e2ee, source| TransportEvidence {
        client: None,
        reachable: true,
        e2ee,
        attested: false,
        source,
        observed_at: NOW,
    };
    d.transports = BTreeMap::from([
        (Transport::Rcs, ev(rcs, EvidenceSource::SignedDeviceReport)),
        (
            Transport::Sms,
            ev(E2eeState::Unknown, EvidenceSource::ProviderCheck),
        ),
    ]);
    // A phone number and an e-mail address on file: the portal's code can
    // go to the other inbox than an SMS notice's.
    let contact = || {
        Some(crate::evidence::ContactEvidence {
            source: EvidenceSource::ProviderCheck,
            observed_at: NOW,
        })
    };
    RecipientEvidence {
        devices: vec![d],
        email: contact(),
        phone: contact(),
    }
}

fn meta() -> MessageMeta {
    MessageMeta {
        id: "m1".into(),
        class: "payroll".into(),
        accepted_at: NOW,
        confirmation: None,
    }
}

#[test]
fn real_decisions_pass_and_tampered_ones_are_caught() {
    let p = policy("[[notice]]\nname = \"default\"\ntext = \"New message from {tenant}: {link}\"");
    let recipient = phone(E2eeState::Verified);
    let thread = ThreadFloor {
        floor: AssuranceLevel::E2ee,
        since: Timestamp(0),
        label: None,
    };
    let m = meta();
    let input = DecisionInput {
        message: &m,
        recipient: &recipient,
        thread: &thread,
        overrides: &[],
        failed: &[],
        now: NOW,
    };
    let d = decide(&p, &input).unwrap();
    assert_eq!(d.outcome.route().unwrap().assurance, AssuranceLevel::E2ee);
    check_decision(&p, &input, &d).unwrap();

    // Claiming more than the evidence supports.
    let mut forged = d.clone();
    if let Outcome::Deliver { route } = &mut forged.outcome {
        route.assurance = AssuranceLevel::E2eeAttested;
    }
    let v = check_decision(&p, &input, &forged).unwrap_err();
    assert!(matches!(v, Violation::AboveEvidence { .. }), "{v}");
    assert_eq!(v.invariant(), 1);

    // Re-using a failed step.
    let failed = [FailedAttempt {
        step: Some(0),
        channel: Channel::Rcs,
    }];
    let with_failure = DecisionInput {
        failed: &failed,
        ..input
    };
    let v = check_decision(&p, &with_failure, &d).unwrap_err();
    assert!(matches!(v, Violation::FailedStepReused { .. }), "{v}");

    // Raising the floor.
    let mut raised = d.clone();
    raised.thread.after.floor = AssuranceLevel::E2eeAttested;
    let v = check_decision(&p, &input, &raised).unwrap_err();
    assert!(matches!(v, Violation::FloorRaised { .. }), "{v}");
    assert_eq!(v.invariant(), 3);
}

#[test]
fn a_low_floor_caps_what_a_route_may_claim() {
    let p = policy("[[notice]]\nname = \"default\"\ntext = \"New message from {tenant}: {link}\"");
    let recipient = phone(E2eeState::Verified);
    let thread = ThreadFloor {
        floor: AssuranceLevel::Transport,
        since: Timestamp(0),
        label: None,
    };
    let m = meta();
    let input = DecisionInput {
        message: &m,
        recipient: &recipient,
        thread: &thread,
        overrides: &[],
        failed: &[],
        now: NOW,
    };
    let d = decide(&p, &input).unwrap();
    check_decision(&p, &input, &d).unwrap();
    assert_eq!(d.outcome.route().unwrap().name(), "portal+sms_notice");
    let mut forged = d.clone();
    forged.outcome = Outcome::Deliver {
        route: Route {
            step: Some(0),
            container: Container::Rcs,
            notifier: None,
            assurance: AssuranceLevel::E2ee,
            second_factor: None,
        },
    };
    let v = check_decision(&p, &input, &forged).unwrap_err();
    assert!(matches!(v, Violation::AboveEvidence { .. }), "{v}");
}

/// Issue 9, defect 1: a portal whose one-time code has nowhere to go was
/// accepted and marked delivered. The invariant catches such a route.
#[test]
fn no_payload_handed_to_a_portal_that_cannot_be_opened() {
    let p = policy("[[notice]]\nname = \"default\"\ntext = \"New message from {tenant}: {link}\"");
    let recipient = phone(E2eeState::Absent);
    let thread = ThreadFloor {
        floor: AssuranceLevel::Transport,
        since: Timestamp(0),
        label: None,
    };
    let m = meta();
    let input = DecisionInput {
        message: &m,
        recipient: &recipient,
        thread: &thread,
        overrides: &[],
        failed: &[],
        now: NOW,
    };
    let d = decide(&p, &input).unwrap();
    check_decision(&p, &input, &d).unwrap();
    let route = d.outcome.route().unwrap().clone();
    assert_eq!(route.second_factor, Some(SecondFactor::Email));

    let forged = |second_factor| {
        let mut f = d.clone();
        f.outcome = Outcome::Deliver {
            route: Route {
                second_factor,
                ..route.clone()
            },
        };
        check_decision(&p, &input, &f).unwrap_err()
    };
    // The notice went by SMS: a code by SMS lands in the same inbox.
    let v = forged(Some(SecondFactor::Sms));
    assert!(matches!(v, Violation::PortalCannotBeOpened { .. }), "{v}");
    assert_eq!(v.invariant(), 1);
    let v = forged(Some(SecondFactor::None));
    assert!(v.to_string().contains("without a one-time code"), "{v}");
    let v = forged(None);
    assert!(matches!(v, Violation::PortalCannotBeOpened { .. }), "{v}");

    // Without an e-mail address the code could only go by SMS: the
    // decision skips the portal, and the forged route breaks the invariant.
    let no_mail = RecipientEvidence {
        email: None,
        ..recipient.clone()
    };
    let input = DecisionInput {
        recipient: &no_mail,
        ..input
    };
    let d2 = decide(&p, &input).unwrap();
    assert_eq!(d2.outcome, Outcome::Block);
    assert!(
        d2.steps
            .iter()
            .any(|s| s.skipped.iter().any(|r| r.code() == "no_step_up_channel"))
    );
    let mut f = d2.clone();
    f.outcome = Outcome::Deliver {
        route: Route {
            second_factor: Some(SecondFactor::Email),
            ..route
        },
    };
    let v = check_decision(&p, &input, &f).unwrap_err();
    assert!(v.to_string().contains("e-mail address"), "{v}");
}

#[test]
fn a_notice_may_not_name_a_class_even_across_a_variable() {
    // "Secure{tenant}payroll" renders as "SecureAcme Corp.payroll": the
    // literal "payroll" starts a word once the variable is filled in. The
    // validator refuses the template; the check sees it in rendered text.
    let text = "Secure{tenant}payroll {link}";
    let refused = Policy::parse(
        &format!(
            "tenant = \"t\"\ndisplay_name = \"T\"\n[evidence]\n[[notice]]\nname = \"default\"\ntext = \"{text}\"\n[[class]]\nname = \"payroll\"\nminimum = \"none\"\nretention = \"1d\"\non_exhausted = \"block\"\nladder = [{{ container = \"sms\" }}]\n"
        ),
        "t.toml",
    );
    assert!(refused.is_err());
    let rendered = RenderedChars {
        chars: "Secure"
            .chars()
            .map(|c| (c, Origin::Literal))
            .chain("Acme Corp.".chars().map(|c| (c, Origin::Variable)))
            .chain("payroll".chars().map(|c| (c, Origin::Literal)))
            .collect(),
        original: String::new(),
    };
    assert!(rendered.names_word_in_literal("payroll"));
}

#[test]
fn a_class_name_inside_the_tenant_name_or_link_is_not_a_leak() {
    let text = RenderedChars {
        chars: "from payroll inc"
            .chars()
            .enumerate()
            .map(|(i, c)| {
                (
                    c,
                    if i < 5 {
                        Origin::Literal
                    } else {
                        Origin::Variable
                    },
                )
            })
            .collect(),
        original: String::new(),
    };
    assert!(!text.names_word_in_literal("payroll"));
    assert!(text.names_word_in_literal("from"));
    assert!(!text.names_word_in_literal("fro"));
    assert!(text.contains("ROLL INC"));
}

#[test]
fn elevation_requires_a_fresh_signed_report_from_every_device() {
    let p = policy("[[notice]]\nname = \"default\"\ntext = \"New message from {tenant}: {link}\"");
    let recipient = phone(E2eeState::Verified);
    let thread = ThreadFloor {
        floor: AssuranceLevel::Transport,
        since: Timestamp(NOW.0 - 10),
        label: None,
    };
    // The real elevate refuses or succeeds correctly either way.
    check_elevation(p.evidence(), &recipient, &[], &thread, NOW).unwrap();
    assert!(thread.elevate(p.evidence(), &recipient, &[], NOW).is_ok());
}
