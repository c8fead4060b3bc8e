//! The portal's step-up factor is part of the decision (issue 9, defect 1):
//! a portal step qualifies only when its one-time code can reach the
//! recipient by a channel its `step_up` setting accepts.

use super::*;
use crate::evidence::ContactEvidence;
use crate::step_up::SecondFactor;

const STEP_UP: &str = r#"
tenant = "t"
display_name = "T"
[evidence]
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
name = "marketing"
minimum = "none"
retention = "30d"
on_exhausted = "block"
ladder = [{ container = "portal", notifiers = ["email_notice"], step_up = "none" }]
[[class]]
name = "notice"
minimum = "transport"
retention = "30d"
on_exhausted = "block"
ladder = [{ container = "portal", notifiers = ["sms_notice", "email_notice"], step_up = "any_channel" }]
[[class]]
name = "payroll"
minimum = "transport"
retention = "30d"
on_exhausted = "escalate"
ladder = [
  { container = "rcs", require = "e2ee" },
  { container = "portal", notifiers = ["email_notice", "sms_notice"] },
]
"#;

fn contact() -> Option<ContactEvidence> {
    Some(ContactEvidence {
        source: EvidenceSource::ProviderCheck,
        observed_at: NOW,
    })
}

fn decide_for(class: &str, r: &RecipientEvidence) -> Decision {
    let p = Policy::parse(STEP_UP, "step-up.toml").unwrap().policy;
    let m = msg(class);
    let t = thread(AssuranceLevel::Transport, None);
    decide(
        &p,
        &DecisionInput {
            message: &m,
            recipient: r,
            thread: &t,
            overrides: &[],
            failed: &[],
            now: NOW,
        },
    )
    .unwrap()
}

fn codes(d: &Decision) -> Vec<&'static str> {
    d.steps
        .iter()
        .flat_map(|s| s.skipped.iter().map(SkipReason::code))
        .collect()
}

#[test]
fn an_email_only_recipient_gets_no_portal_it_cannot_open() {
    let r = RecipientEvidence {
        devices: Vec::new(),
        email: contact(),
        phone: None,
    };
    let d = decide_for("payroll", &r);
    assert_eq!(d.outcome, Outcome::Escalate);
    assert!(codes(&d).contains(&"no_step_up_channel"), "{d:?}");
    assert!(explain(&d).contains("[no_step_up_channel]"));
}

#[test]
fn phone_and_email_get_the_notice_by_email_and_the_code_by_sms() {
    let r = RecipientEvidence {
        devices: Vec::new(),
        email: contact(),
        phone: contact(),
    };
    let d = decide_for("payroll", &r);
    let route = d.outcome.route().unwrap();
    assert_eq!(route.name(), "portal+email_notice");
    assert_eq!(route.second_factor, Some(SecondFactor::Sms));
    assert!(explain(&d).contains("one-time code by sms"));
}

#[test]
fn a_notifier_is_passed_over_when_its_code_could_go_nowhere() {
    // Phone and e-mail, e-mail notice first: when e-mail fails, the SMS
    // notice is left, and its code goes by e-mail.
    let mut phone = phone(None, None);
    phone.transports.retain(|t, _| *t == Transport::Sms);
    let r = RecipientEvidence {
        devices: vec![phone],
        email: contact(),
        phone: contact(),
    };
    let p = Policy::parse(STEP_UP, "step-up.toml").unwrap().policy;
    let m = msg("payroll");
    let t = thread(AssuranceLevel::Transport, None);
    let failed = [FailedAttempt {
        step: Some(1),
        channel: Channel::Email,
    }];
    let d = decide(
        &p,
        &DecisionInput {
            message: &m,
            recipient: &r,
            thread: &t,
            overrides: &[],
            failed: &failed,
            now: NOW,
        },
    )
    .unwrap();
    // The e-mail notice failed and a code by e-mail is still fine: it is
    // another inbox than the SMS notice's.
    let route = d.outcome.route().unwrap();
    assert_eq!(route.name(), "portal+sms_notice");
    assert_eq!(route.second_factor, Some(SecondFactor::Email));

    // A phone number only the recipient vouched for: the e-mail notice
    // comes first, but its code would need the phone, so it is passed
    // over...
    let unverified = RecipientEvidence {
        phone: Some(ContactEvidence {
            source: EvidenceSource::SelfReported,
            observed_at: NOW,
        }),
        ..r.clone()
    };
    let d = decide_for("payroll", &unverified);
    // ...so the SMS notice carries the link and the code goes by e-mail.
    let route = d.outcome.route().unwrap();
    assert_eq!(route.name(), "portal+sms_notice");
    assert_eq!(route.second_factor, Some(SecondFactor::Email));

    // A phone number verified long ago still takes the code: it is sent
    // when the link is opened, not now.
    let old = RecipientEvidence {
        phone: Some(ContactEvidence {
            source: EvidenceSource::ProviderCheck,
            observed_at: Timestamp(NOW.0 - 30 * 86_400),
        }),
        ..r
    };
    let route = decide_for("payroll", &old)
        .outcome
        .route()
        .cloned()
        .unwrap();
    assert_eq!(route.second_factor, Some(SecondFactor::Sms));
}

#[test]
fn any_channel_lets_the_code_follow_the_notice() {
    let mut phone = phone(None, None);
    phone.transports.retain(|t, _| *t == Transport::Sms);
    let r = RecipientEvidence {
        devices: vec![phone],
        email: None,
        phone: contact(),
    };
    let d = decide_for("notice", &r);
    let route = d.outcome.route().unwrap();
    assert_eq!(route.name(), "portal+sms_notice");
    assert_eq!(route.second_factor, Some(SecondFactor::Sms));
    // Without the phone number on file, no code: blocked.
    let d = decide_for(
        "notice",
        &RecipientEvidence {
            phone: None,
            ..r.clone()
        },
    );
    assert_eq!(d.outcome, Outcome::Block);
    assert_eq!(codes(&d), ["no_step_up_channel"]);
    // The same recipient under the default setting: also blocked.
    let d = decide_for("payroll", &r);
    assert!(codes(&d).contains(&"no_step_up_channel"), "{d:?}");
}

#[test]
fn a_portal_without_step_up_opens_without_a_code() {
    let r = RecipientEvidence {
        devices: Vec::new(),
        email: contact(),
        phone: None,
    };
    let d = decide_for("marketing", &r);
    let route = d.outcome.route().unwrap();
    assert_eq!(route.second_factor, Some(SecondFactor::None));
    assert!(explain(&d).contains("opened without a one-time code"));
}

#[test]
fn an_override_that_disables_sms_takes_the_code_channel_too() {
    let r = RecipientEvidence {
        devices: Vec::new(),
        email: contact(),
        phone: contact(),
    };
    let p = Policy::parse(STEP_UP, "step-up.toml").unwrap().policy;
    let m = msg("payroll");
    let t = thread(AssuranceLevel::Transport, None);
    let off = Override {
        id: "sms-off".into(),
        channel: Channel::Sms,
        matcher: LabelMatch::default(),
        effect: OverrideEffect::Disable,
        reason: "outage".into(),
        author: "ops".into(),
        expires: Timestamp(NOW.0 + 60),
    };
    let d = decide(
        &p,
        &DecisionInput {
            message: &m,
            recipient: &r,
            thread: &t,
            overrides: &[off],
            failed: &[],
            now: NOW,
        },
    )
    .unwrap();
    assert_eq!(d.outcome, Outcome::Escalate);
    assert!(codes(&d).contains(&"no_step_up_channel"));
}
