//! Unit tests of the decision beside it. Each builds a small policy from
//! text, so the tests go through the same validation as tenants' files.

use std::collections::BTreeMap;

use super::*;
use crate::assurance::{E2eeState, EvidenceSource, Transport};
use crate::evidence::{ClientInfo, DeviceEvidence, PlatformLabels, TransportEvidence};
use crate::overrides::{LabelMatch, OverrideEffect};

const POLICY: &str = r#"
tenant = "t"
display_name = "T"
revision = 2
[evidence]
min_client_version = { "app" = "2.0" }
[[evidence.source]]
source = "signed_device_report"
verifies = ["reachable", "e2ee", "attestation"]
fresh_for = "7d"
[[evidence.source]]
source = "provider_check"
verifies = ["reachable"]
fresh_for = "1d"
[[notice]]
name = "default"
text = "New secure message from {tenant}: {link}"
[[class]]
name = "notice"
minimum = "transport"
retention = "30d"
on_exhausted = "block"
ladder = [{ container = "rcs" }, { container = "portal", notifiers = ["email_notice", "sms_notice"], step_up = "any_channel" }]
[[class]]
name = "payroll"
minimum = "transport"
confirm_downgrade = true
retention = "30d"
on_exhausted = "escalate"
ladder = [
  { container = "rcs", require = "e2ee" },
  { container = "in_app", require = "e2ee" },
  { container = "portal", notifiers = ["email_notice", "sms_notice"], step_up = "any_channel" },
]
[[class]]
name = "secret"
minimum = "e2ee"
retention = "30d"
on_exhausted = "hold"
hold_for = "1h"
ladder = [{ container = "in_app", notifiers = ["push_notice"] }]
[[class]]
name = "rollout"
minimum = "transport"
mode = "observe"
legacy = { container = "rcs" }
retention = "30d"
on_exhausted = "block"
ladder = [{ container = "in_app", require = "e2ee" }, { container = "portal", notifiers = ["sms_notice"], step_up = "any_channel" }]
"#;

const NOW: Timestamp = Timestamp(1_000_000);

fn policy() -> Policy {
    Policy::parse(POLICY, "test.toml").unwrap().policy
}

fn signed(e2ee: E2eeState, attested: bool, at: Timestamp) -> TransportEvidence {
    TransportEvidence {
        client: None,
        reachable: true,
        e2ee,
        attested,
        source: EvidenceSource::SignedDeviceReport,
        observed_at: at,
    }
}

fn phone(rcs: Option<TransportEvidence>, in_app: Option<TransportEvidence>) -> DeviceEvidence {
    let mut d = DeviceEvidence::new(
        "phone",
        PlatformLabels {
            os: Some("ios".into()),
            os_version: Some("26.2".parse().unwrap()),
            ..Default::default()
        },
        Timestamp(0),
    );
    d.client = Some(ClientInfo {
        name: "app".into(),
        version: "2.1".parse().unwrap(),
        policy_revision: 2,
    });
    let mut t = BTreeMap::new();
    if let Some(r) = rcs {
        t.insert(Transport::Rcs, r);
    }
    if let Some(i) = in_app {
        t.insert(Transport::InApp, i);
    }
    t.insert(
        Transport::Sms,
        TransportEvidence {
            client: None,
            reachable: true,
            e2ee: E2eeState::Absent,
            attested: false,
            source: EvidenceSource::ProviderCheck,
            observed_at: NOW,
        },
    );
    d.transports = t;
    d
}

fn recipient(devices: Vec<DeviceEvidence>) -> RecipientEvidence {
    // A phone number on file: the portals above (`any_channel`) send their
    // one-time code by SMS. Step-up itself is tested on its own policy.
    RecipientEvidence {
        devices,
        email: None,
        phone: Some(crate::evidence::ContactEvidence {
            source: EvidenceSource::ProviderCheck,
            observed_at: NOW,
        }),
    }
}

fn msg(class: &str) -> MessageMeta {
    MessageMeta {
        id: "m1".into(),
        class: class.into(),
        accepted_at: NOW,
        confirmation: None,
    }
}

fn thread(floor: AssuranceLevel, label: Option<AssuranceLevel>) -> ThreadFloor {
    ThreadFloor {
        floor,
        since: Timestamp(0),
        label,
    }
}

fn run(
    class: &str,
    r: &RecipientEvidence,
    t: &ThreadFloor,
    overrides: &[Override],
    failed: &[FailedAttempt],
) -> Decision {
    let m = msg(class);
    decide(
        &policy(),
        &DecisionInput {
            message: &m,
            recipient: r,
            thread: t,
            overrides,
            failed,
            now: NOW,
        },
    )
    .unwrap()
}

fn codes(d: &Decision, index: usize) -> Vec<&'static str> {
    d.steps[index]
        .skipped
        .iter()
        .map(SkipReason::code)
        .collect()
}

#[test]
fn verified_rcs_e2ee_carries_payroll_over_rcs() {
    let r = recipient(vec![phone(
        Some(signed(E2eeState::Verified, false, NOW)),
        None,
    )]);
    let d = run("payroll", &r, &thread(AssuranceLevel::E2ee, None), &[], &[]);
    let route = d.outcome.route().unwrap();
    assert_eq!(
        (route.container, route.assurance),
        (Container::Rcs, AssuranceLevel::E2ee)
    );
    assert!(d.steps.iter().all(|s| s.skipped.is_empty()));
}

#[test]
fn claimed_e2ee_is_not_credited_and_the_reason_says_so() {
    let r = recipient(vec![phone(
        Some(signed(E2eeState::Claimed, false, NOW)),
        None,
    )]);
    let d = run(
        "payroll",
        &r,
        &thread(AssuranceLevel::Transport, None),
        &[],
        &[],
    );
    assert_eq!(codes(&d, 0), ["e2ee_only_claimed"]);
    assert_eq!(codes(&d, 1), ["evidence_missing"]);
    // Nothing verified, and no e-mail on file: only the SMS notice reaches.
    assert_eq!(d.outcome.route().unwrap().name(), "portal+sms_notice");
}

#[test]
fn provider_checks_make_rcs_reachable_but_never_e2ee() {
    let pc = TransportEvidence {
        client: None,
        reachable: true,
        e2ee: E2eeState::Verified,
        attested: true,
        source: EvidenceSource::ProviderCheck,
        observed_at: NOW,
    };
    let r = recipient(vec![phone(Some(pc), None)]);
    let d = run(
        "notice",
        &r,
        &thread(AssuranceLevel::Transport, None),
        &[],
        &[],
    );
    assert_eq!(
        d.outcome.route().unwrap().assurance,
        AssuranceLevel::Transport
    );
    let d = run("payroll", &r, &thread(AssuranceLevel::E2ee, None), &[], &[]);
    assert_eq!(codes(&d, 0), ["e2ee_only_claimed"]);
}

#[test]
fn stale_evidence_and_outdated_clients_do_not_count() {
    let old = Timestamp(NOW.0 - 8 * 86_400);
    let r = recipient(vec![phone(
        Some(signed(E2eeState::Verified, false, old)),
        None,
    )]);
    let d = run("payroll", &r, &thread(AssuranceLevel::E2ee, None), &[], &[]);
    assert_eq!(codes(&d, 0), ["evidence_stale"]);

    let mut p = phone(Some(signed(E2eeState::Verified, false, NOW)), None);
    p.client = Some(ClientInfo {
        name: "app".into(),
        version: "1.9".parse().unwrap(),
        policy_revision: 2,
    });
    let d = run(
        "payroll",
        &recipient(vec![p]),
        &thread(AssuranceLevel::E2ee, None),
        &[],
        &[],
    );
    assert!(matches!(
        &d.steps[0].skipped[0],
        SkipReason::EvidenceStale { staleness, .. }
            if matches!(**staleness, crate::reason::Staleness::ClientBehindMinimum { .. })
    ));
}

#[test]
fn a_floor_below_the_evidence_caps_e2ee_until_elevation() {
    let r = recipient(vec![phone(
        Some(signed(E2eeState::Verified, false, NOW)),
        None,
    )]);
    let d = run(
        "payroll",
        &r,
        &thread(AssuranceLevel::Transport, None),
        &[],
        &[],
    );
    assert_eq!(codes(&d, 0), ["below_thread_floor"]);
    assert_eq!(d.thread.after.floor, AssuranceLevel::Transport);
}

#[test]
fn a_weaker_device_drops_the_floor_at_once_and_records_why() {
    let good = phone(Some(signed(E2eeState::Verified, false, NOW)), None);
    let mut weak = phone(Some(signed(E2eeState::Absent, false, NOW)), None);
    weak.id = "tablet".into();
    let d = run(
        "payroll",
        &recipient(vec![good, weak]),
        &thread(AssuranceLevel::E2ee, None),
        &[],
        &[],
    );
    let drop = d.thread.drop.as_ref().unwrap();
    assert_eq!(
        (drop.from, drop.to),
        (AssuranceLevel::E2ee, AssuranceLevel::Transport)
    );
    assert!(
        matches!(&drop.causes[0], crate::thread::FloorCause::Device { device, .. } if device == "tablet")
    );
}

#[test]
fn a_downgrade_below_the_last_label_needs_confirmation_bound_to_the_message() {
    let r = recipient(vec![phone(
        Some(signed(E2eeState::Absent, false, NOW)),
        None,
    )]);
    let t = thread(AssuranceLevel::Transport, Some(AssuranceLevel::E2ee));
    let d = run("payroll", &r, &t, &[], &[]);
    assert_eq!(d.outcome.code(), "confirmation_required");
    assert_eq!(
        d.thread.after.label,
        Some(AssuranceLevel::E2ee),
        "nothing delivered, label unchanged"
    );

    let p = policy();
    let mut other = msg("payroll");
    other.confirmation = Some(Confirmation {
        message_id: "m0".into(),
        container: Container::Portal,
        assurance: AssuranceLevel::None,
    });
    let d = decide_in(&p, &other, &r, &t);
    assert_eq!(d.outcome.code(), "confirmation_required");
    assert!(d.notes.contains(&Note::ConfirmationForOtherMessage {
        bound_to: "m0".into()
    }));

    let mut mine = msg("payroll");
    mine.confirmation = Some(Confirmation {
        message_id: "m1".into(),
        container: Container::Portal,
        assurance: AssuranceLevel::None,
    });
    let d = decide_in(&p, &mine, &r, &t);
    assert_eq!(d.outcome.code(), "deliver");
    assert_eq!(
        d.downgrade,
        Some(Downgrade {
            from: AssuranceLevel::E2ee,
            to: AssuranceLevel::Transport
        })
    );
}

#[test]
fn overrides_distrust_or_disable_matching_devices_only_while_active() {
    let r = recipient(vec![phone(
        Some(signed(E2eeState::Verified, false, NOW)),
        None,
    )]);
    let mut o = Override {
        id: "ios".into(),
        channel: Channel::Rcs,
        matcher: LabelMatch {
            os: Some("ios".into()),
            os_version: Some(">=26.2,<26.4".parse().unwrap()),
            ..Default::default()
        },
        effect: OverrideEffect::DistrustE2ee,
        reason: "advisory".into(),
        author: "sec".into(),
        expires: Timestamp(NOW.0 + 60),
    };
    let t = thread(AssuranceLevel::E2ee, None);
    let d = run("payroll", &r, &t, std::slice::from_ref(&o), &[]);
    assert_eq!(codes(&d, 0), ["override_distrusts_e2ee"]);
    o.effect = OverrideEffect::Disable;
    let d = run("notice", &r, &t, std::slice::from_ref(&o), &[]);
    assert_eq!(codes(&d, 0), ["override_disabled"]);
    o.expires = NOW;
    let d = run("notice", &r, &t, std::slice::from_ref(&o), &[]);
    assert_eq!(d.outcome.route().unwrap().container, Container::Rcs);
}

#[test]
fn a_failed_step_moves_down_the_same_ladder_never_below_the_minimum() {
    let r = recipient(vec![phone(
        Some(signed(E2eeState::Verified, false, NOW)),
        None,
    )]);
    let t = thread(AssuranceLevel::E2ee, None);
    let failed = [FailedAttempt {
        step: Some(0),
        channel: Channel::Rcs,
    }];
    let d = run("notice", &r, &t, &[], &failed);
    assert_eq!(codes(&d, 0), ["step_failed"]);
    assert_eq!(d.outcome.route().unwrap().name(), "portal+sms_notice");
    let failed = [
        failed[0],
        FailedAttempt {
            step: Some(1),
            channel: Channel::Sms,
        },
    ];
    let d = run("notice", &r, &t, &[], &failed);
    assert_eq!(d.outcome, Outcome::Block);
}

#[test]
fn nothing_qualifies_so_the_class_holds_until_its_deadline() {
    let r = recipient(vec![]);
    let t = thread(AssuranceLevel::None, None);
    let d = run("secret", &r, &t, &[], &[]);
    assert_eq!(
        d.outcome,
        Outcome::Hold {
            until: Timestamp(NOW.0 + 3600)
        }
    );
    let p = policy();
    let mut m = msg("secret");
    m.accepted_at = Timestamp(NOW.0 - 3600);
    let d = decide_in(&p, &m, &r, &t);
    assert_eq!(d.outcome, Outcome::Escalate);
}

#[test]
fn observe_mode_follows_the_legacy_route_and_records_enforcement() {
    let r = recipient(vec![phone(
        Some(signed(E2eeState::Absent, false, NOW)),
        Some(signed(E2eeState::Verified, false, NOW)),
    )]);
    let d = run("rollout", &r, &thread(AssuranceLevel::E2ee, None), &[], &[]);
    assert_eq!(d.outcome.route().unwrap().container, Container::Rcs);
    assert_eq!(
        d.enforced.as_ref().unwrap().route().unwrap().container,
        Container::InApp
    );
}

#[test]
fn observe_mode_never_hands_the_payload_below_the_minimum() {
    // Legacy RCS is unreachable here: enforcement applies instead.
    let mut p = phone(None, Some(signed(E2eeState::Verified, false, NOW)));
    p.transports.remove(&Transport::Sms);
    let d = run(
        "rollout",
        &recipient(vec![p]),
        &thread(AssuranceLevel::E2ee, None),
        &[],
        &[],
    );
    assert_eq!(d.outcome.route().unwrap().container, Container::InApp);
    assert!(matches!(d.notes[0], Note::LegacyRouteUnavailable { .. }));
}

#[test]
fn unknown_classes_are_an_error_not_a_route() {
    let r = recipient(vec![]);
    let m = msg("nope");
    let err = decide(
        &policy(),
        &DecisionInput {
            message: &m,
            recipient: &r,
            thread: &thread(AssuranceLevel::None, None),
            overrides: &[],
            failed: &[],
            now: NOW,
        },
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("unknown class `nope` in policy sha256:")
    );
}

#[test]
fn explanation_names_every_skipped_step_and_its_code() {
    let r = recipient(vec![phone(
        Some(signed(E2eeState::Absent, false, NOW)),
        None,
    )]);
    let d = run(
        "payroll",
        &r,
        &thread(AssuranceLevel::Transport, Some(AssuranceLevel::E2ee)),
        &[],
        &[],
    );
    let text = explain(&d);
    insta::assert_snapshot!(text.replace(d.policy_version.short(), "<version>"));
}

fn decide_in(p: &Policy, m: &MessageMeta, r: &RecipientEvidence, t: &ThreadFloor) -> Decision {
    decide(
        p,
        &DecisionInput {
            message: m,
            recipient: r,
            thread: t,
            overrides: &[],
            failed: &[],
            now: NOW,
        },
    )
    .unwrap()
}

fn decide_with(
    m: &MessageMeta,
    r: &RecipientEvidence,
    t: &ThreadFloor,
    overrides: &[Override],
    failed: &[FailedAttempt],
) -> Decision {
    decide(
        &policy(),
        &DecisionInput {
            message: m,
            recipient: r,
            thread: t,
            overrides,
            failed,
            now: NOW,
        },
    )
    .unwrap()
}

fn force(channel: Channel, to: Container) -> Override {
    Override {
        id: "force".into(),
        channel,
        matcher: LabelMatch {
            os: Some("ios".into()),
            ..Default::default()
        },
        effect: OverrideEffect::ForceStep(to),
        reason: "r".into(),
        author: "a".into(),
        expires: Timestamp(NOW.0 + 60),
    }
}

#[test]
fn a_confirmation_covers_only_the_container_it_was_given_for() {
    let r = recipient(vec![phone(
        Some(signed(E2eeState::Absent, false, NOW)),
        None,
    )]);
    let t = thread(AssuranceLevel::Transport, Some(AssuranceLevel::E2ee));
    let mut m = msg("payroll");
    m.confirmation = Some(Confirmation {
        message_id: "m1".into(),
        container: Container::Rcs,
        assurance: AssuranceLevel::Transport,
    });
    let d = decide_with(&m, &r, &t, &[], &[]);
    assert_eq!(d.outcome.code(), "confirmation_required");
    assert!(d.notes.contains(&Note::ConfirmationForOtherContainer {
        confirmed: Container::Rcs,
        route: Container::Portal
    }));
}

#[test]
fn force_step_steers_only_classes_that_use_the_overrides_channel() {
    let r = recipient(vec![phone(
        Some(signed(E2eeState::Verified, false, NOW)),
        None,
    )]);
    let t = thread(AssuranceLevel::E2ee, None);
    // Steer iOS traffic off RCS: the notice class goes to the portal.
    let d = run(
        "notice",
        &r,
        &t,
        &[force(Channel::Rcs, Container::Portal)],
        &[],
    );
    assert_eq!(codes(&d, 0), ["override_forced_step"]);
    assert_eq!(d.outcome.route().unwrap().container, Container::Portal);
    // An override about push does not touch a ladder that never uses push.
    let d = run(
        "notice",
        &r,
        &t,
        &[force(Channel::Push, Container::Portal)],
        &[],
    );
    assert_eq!(d.outcome.route().unwrap().container, Container::Rcs);
}

#[test]
fn a_re_decision_after_a_failure_never_climbs_back_up() {
    let r = recipient(vec![phone(
        Some(signed(E2eeState::Verified, false, NOW)),
        None,
    )]);
    let t = thread(AssuranceLevel::E2ee, None);
    // The portal's SMS notice failed; RCS (above it) would qualify again.
    let failed = [FailedAttempt {
        step: Some(1),
        channel: Channel::Sms,
    }];
    let d = run("notice", &r, &t, &[], &failed);
    assert_eq!(codes(&d, 0), ["above_failed_step"]);
    assert_eq!(d.outcome, Outcome::Block);
}

#[test]
fn observe_mode_obeys_force_overrides_and_downgrade_confirmation() {
    let r = recipient(vec![phone(
        Some(signed(E2eeState::Absent, false, NOW)),
        Some(signed(E2eeState::Verified, false, NOW)),
    )]);
    let t = thread(AssuranceLevel::E2ee, None);
    // Steering traffic off RCS takes the class off its RCS legacy route.
    let d = run(
        "rollout",
        &r,
        &t,
        &[force(Channel::Rcs, Container::Portal)],
        &[],
    );
    assert!(matches!(&d.notes[..], [Note::LegacyOverridden { .. }]));
    assert_eq!(d.outcome.route().unwrap().container, Container::InApp);
    // Steering off in-app leaves the legacy route alone; enforcement would
    // have gone to the portal.
    let d = run(
        "rollout",
        &r,
        &t,
        &[force(Channel::InApp, Container::Portal)],
        &[],
    );
    assert_eq!(d.outcome.route().unwrap().container, Container::Rcs);
    assert_eq!(
        d.enforced.as_ref().unwrap().route().unwrap().container,
        Container::Portal
    );

    let text = POLICY.replace(
        "mode = \"observe\"",
        "mode = \"observe\"\nconfirm_downgrade = true",
    );
    let p = Policy::parse(&text, "t.toml").unwrap().policy;
    let labelled = thread(AssuranceLevel::E2ee, Some(AssuranceLevel::E2ee));
    let m = msg("rollout");
    let d = decide_in(&p, &m, &r, &labelled);
    assert_eq!(d.outcome.code(), "confirmation_required");
    assert_eq!(d.outcome.route().unwrap().container, Container::Rcs);
}

#[test]
fn clients_the_policy_does_not_name_count_as_stale() {
    let mut p = phone(Some(signed(E2eeState::Verified, false, NOW)), None);
    p.client = Some(ClientInfo {
        name: "APP".into(),
        version: "2.1".parse().unwrap(),
        policy_revision: 2,
    });
    let d = run(
        "payroll",
        &recipient(vec![p.clone()]),
        &thread(AssuranceLevel::E2ee, None),
        &[],
        &[],
    );
    assert_eq!(
        d.outcome.route().unwrap().container,
        Container::Rcs,
        "names compare without case"
    );
    p.client = Some(ClientInfo {
        name: "other".into(),
        version: "9.0".parse().unwrap(),
        policy_revision: 2,
    });
    let d = run(
        "payroll",
        &recipient(vec![p]),
        &thread(AssuranceLevel::E2ee, None),
        &[],
        &[],
    );
    assert!(matches!(
        &d.steps[0].skipped[0],
        SkipReason::EvidenceStale { staleness, .. }
            if matches!(**staleness, crate::reason::Staleness::ClientNotListed { .. })
    ));
}

#[test]
fn an_old_enrolment_is_not_credited_attested() {
    let text = POLICY.replace(
        "min_client_version",
        "enrolment_fresh_for = \"30d\"\nmin_client_version",
    );
    let p = Policy::parse(&text, "t.toml").unwrap().policy;
    let mut dev = phone(None, Some(signed(E2eeState::Verified, true, NOW)));
    let m = msg("secret");
    let t = thread(AssuranceLevel::E2eeAttested, None);
    let fresh = recipient(vec![dev.clone()]);
    let d = decide_in(&p, &m, &fresh, &t);
    assert_eq!(
        d.outcome.route().unwrap().assurance,
        AssuranceLevel::E2eeAttested
    );
    dev.enrolled_at = Timestamp(NOW.0 - 31 * 86_400);
    let old = recipient(vec![dev]);
    let d = decide_in(&p, &m, &old, &t);
    assert_eq!(d.outcome.route().unwrap().assurance, AssuranceLevel::E2ee);
    assert_eq!(
        d.thread.after.floor,
        AssuranceLevel::E2ee,
        "an old enrolment pulls the floor down"
    );
}

#[test]
fn force_overrides_fail_closed_and_the_lowest_forced_step_wins() {
    let r = recipient(vec![phone(
        Some(signed(E2eeState::Verified, false, NOW)),
        Some(signed(E2eeState::Verified, false, NOW)),
    )]);
    let t = thread(AssuranceLevel::E2ee, None);
    // `secret` has no portal step: steering off in-app still keeps the
    // payload off in-app, so the class holds rather than ignoring the override.
    let d = run(
        "secret",
        &r,
        &t,
        &[force(Channel::InApp, Container::Portal)],
        &[],
    );
    assert_eq!(codes(&d, 0), ["override_forced_step"]);
    assert!(matches!(d.outcome, Outcome::Hold { .. }));
    assert!(matches!(&d.notes[..], [Note::ForceNotInLadder { .. }]));
    // Two overrides: RCS -> in_app and in_app -> portal. The payroll ladder
    // ends at the portal.
    let mut second = force(Channel::InApp, Container::Portal);
    second.id = "second".into();
    let d = run(
        "payroll",
        &r,
        &t,
        &[force(Channel::Rcs, Container::InApp), second],
        &[],
    );
    assert_eq!(d.outcome.route().unwrap().container, Container::Portal);
}

#[test]
fn a_failed_legacy_route_rules_its_channel_out_of_enforcement() {
    let r = recipient(vec![phone(
        Some(signed(E2eeState::Verified, false, NOW)),
        None,
    )]);
    let t = thread(AssuranceLevel::E2ee, None);
    let text = POLICY.replace(
        "ladder = [{ container = \"in_app\", require = \"e2ee\" }",
        "ladder = [{ container = \"rcs\" }, { container = \"in_app\", require = \"e2ee\" }",
    );
    let p = Policy::parse(&text, "t.toml").unwrap().policy;
    let m = msg("rollout");
    let input = |failed| DecisionInput {
        message: &m,
        recipient: &r,
        thread: &t,
        overrides: &[],
        failed,
        now: NOW,
    };
    // Without a failure the legacy RCS route is taken, and enforcement's
    // first step is RCS too.
    let d = decide(&p, &input(&[])).unwrap();
    assert_eq!(d.outcome.route().unwrap().container, Container::Rcs);
    // After the legacy RCS attempt failed, enforcement does not go straight
    // back to RCS.
    let failed = [FailedAttempt {
        step: None,
        channel: Channel::Rcs,
    }];
    let d = decide(&p, &input(&failed)).unwrap();
    assert_eq!(codes(&d, 0), ["step_failed"]);
    assert_ne!(d.outcome.route().map(|r| r.container), Some(Container::Rcs));
}

mod permit;
mod step_up;
