//! Tests of the exhaustive checker.

use super::counterexample::natural_thread;
use super::scenario_text::scenario_text;
use super::*;

const POLICY: &str = r#"
tenant = "t"
display_name = "Test Co"
[evidence]
min_client_version = { "app" = "2.0" }
[[evidence.source]]
source = "signed_device_report"
verifies = ["reachable", "e2ee", "attestation"]
fresh_for = "7d"
[[evidence.source]]
source = "provider_check"
verifies = ["reachable"]
fresh_for = "24h"
[[notice]]
name = "default"
text = "New secure message from {tenant}: {link}"
[[class]]
name = "payroll"
minimum = "transport"
confirm_downgrade = true
retention = "30d"
on_exhausted = "block"
ladder = [
  { container = "rcs", require = "e2ee" },
  { container = "portal", notifiers = ["email_notice", "sms_notice"] },
]
[[override]]
id = "ios-rcs"
channel = "rcs"
os = "ios"
os_version = ">=26.2,<26.4"
effect = "distrust_e2ee"
reason = "advisory"
author = "sec"
expires = 2027-03-31T00:00:00Z
"#;

fn policy() -> Policy {
    Policy::parse(POLICY, "small.toml").unwrap().policy
}

#[test]
fn a_small_policy_holds_every_invariant_over_every_state() {
    let p = policy();
    let report = check(&p, "small.toml");
    assert!(report.states > 0);
    assert!(report.decisions >= report.states);
    if let Some(c) = &report.counterexample {
        panic!("{}\n{}", c.violation, c.scenario);
    }
}

#[test]
fn labels_match_exactly_the_override_they_stand_for() {
    let p = policy();
    let s = Setting::new(&p);
    let o = &p.overrides()[0];
    assert!(!o.matcher.matches(&s.labels[0]));
    assert!(o.matcher.matches(&s.labels[1]));
    assert!(s.now >= o.expires, "policy overrides are expired at `now`");
    assert!(s.runtime[0].is_active(s.now));
    assert_eq!(s.client_behind.as_ref().unwrap().version.to_string(), "1");
}

fn synthetic_state(p: &Policy) -> State {
    State {
        devices: vec![
            DeviceSpec {
                rcs: Rcs::Verified,
                in_app: InApp::Verified,
                rcs_attested: true,
                in_app_attested: true,
                stale: true,
                provider_stale: false,
                sms: true,
                push: true,
                client_behind: false,
                labels: 1,
                revoked: None,
            },
            DeviceSpec {
                rcs: Rcs::ProviderReachable,
                in_app: InApp::Missing,
                rcs_attested: false,
                in_app_attested: false,
                stale: false,
                provider_stale: false,
                sms: false,
                push: false,
                client_behind: false,
                labels: 0,
                revoked: Some(Revoked::Recently),
            },
        ],
        email: true,
        phone: true,
        override_: Some(0),
        thread: ThreadFloor {
            floor: AssuranceLevel::E2ee,
            since: Timestamp(0),
            label: Some(AssuranceLevel::E2ee),
        },
        class: p.classes().len() - 1,
        failed: vec![FailedAttempt {
            step: Some(0),
            channel: crate::assurance::Channel::Rcs,
        }],
        confirmed: false,
        elevation: false,
        floor_holder: false,
    }
}

#[test]
fn a_counterexample_scenario_parses_and_rebuilds_the_state() {
    let p = policy();
    let s = Setting::new(&p);
    let violation = Violation::FloorRaised {
        before: AssuranceLevel::None,
        after: AssuranceLevel::E2ee,
    };
    let decided = |state: &State| {
        let recipient = s.recipient(&state.devices, state.email, state.phone);
        let meta = message("payroll", s.now, None);
        let input = DecisionInput {
            message: &meta,
            recipient: &recipient,
            thread: &state.thread,
            overrides: s.overrides(state.override_),
            failed: &state.failed,
            now: s.now,
        };
        Finding {
            violation: violation.clone(),
            decisions: vec![decide(&p, &input).unwrap()],
        }
    };

    let mut state = synthetic_state(&p);
    let text = scenario_text(&p, &s, "small.toml", &state, &decided(&state));
    let scenario =
        parse_scenario(&text, "counterexample.toml").unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    assert!(matches!(
        &scenario.policy,
        crate::scenario::PolicyRef::Path(path) if path == "small.toml"
    ));
    assert!(scenario.email && scenario.phone);
    assert!(text.contains("provider_down = \"rcs\""), "{text}");
    assert!(text.contains("set_override = {"), "{text}");
    assert!(text.contains("revoke_device = \"d2\""), "{text}");
    assert!(text.contains("advance = \"6d22h\""), "{text}");

    // With the thread the scenario opens by itself and no failure, the
    // replay rebuilds exactly the state that was decided.
    state.failed.clear();
    state.email = false;
    state.thread = natural_thread(&p, &s, &state);
    let text = scenario_text(&p, &s, "small.toml", &state, &decided(&state));
    assert!(
        text.starts_with("# Replay: this scenario reproduces the violating decision"),
        "{text}"
    );
}
