//! One test per bug found, named after it. Each replays the reproduction
//! as a scenario through the real parser, handshake, ratchet and decision.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ladder_core::Policy;
use ladder_core::scenario::{PolicyRef, ScenarioReport, parse_scenario, run};

const ACME: &str = include_str!("../../../examples/policies/acme.toml");

fn replay(steps: &str) -> ScenarioReport {
    let text = format!("policy = \"acme.toml\"\nstart = 2027-01-01T09:00:00Z\n{steps}");
    let scenario = parse_scenario(&text, "regression.toml").unwrap();
    assert!(matches!(scenario.policy, PolicyRef::Path(_)));
    let policy = Policy::parse(ACME, "acme.toml").unwrap().policy;
    run(&scenario, &policy)
}

fn assert_matches(report: &ScenarioReport) {
    if let Some(m) = &report.mismatch {
        panic!(
            "step {} ({}): {}: expected `{}`, got `{}`\n{}",
            m.step,
            m.label,
            m.field,
            m.expected,
            m.actual,
            m.explanation.clone().unwrap_or_default()
        );
    }
}

#[test]
fn regression_held_message_deadline_restarted_on_every_retry() {
    assert_matches(&replay(
        r#"
[[step]]
add_device = "phone"
[[step]]
send = "transactional"
id = "t1"
expect = { outcome = "hold" }
[[step]]
advance = "7h"
[[step]]
send = "transactional"
id = "t1"
expect = { outcome = "block" }
"#,
    ));
}

#[test]
fn regression_revoked_device_handshake_never_reached_verification() {
    assert_matches(&replay(
        r#"
[[step]]
add_device = "tablet"
client = "acme-app"
client_version = "5.3"
[[step]]
handshake = "tablet"
in_app = "verified"
[[step]]
revoke_device = "tablet"
[[step]]
handshake = "tablet"
in_app = "verified"
expect_rejected = "device_revoked"
[[step]]
send = "payroll"
# The rejected report recorded nothing: no device can carry payroll.
expect = { outcome = "escalate", skips = { in_app = "device_revoked" } }
"#,
    ));
}

#[test]
fn regression_floor_rose_after_a_handshake_that_reproved_only_one_transport() {
    assert_matches(&replay(
        r#"
[[step]]
add_device = "phone"
os = "android"
client = "acme-app"
client_version = "5.3"
[[step]]
handshake = "phone"
rcs = "verified"
sms = "reachable"
[[step]]
send = "payroll"
expect = { outcome = "deliver", route = "rcs", floor = "e2ee" }
[[step]]
set_override = { id = "x", channel = "rcs", os = "android", effect = "distrust_e2ee", reason = "r", author = "a", expires_in = "1h" }
expect_floor = "transport"
[[step]]
advance = "2h"
[[step]]
# Re-proves SMS only: its older RCS claim is gone, not carried forward.
handshake = "phone"
sms = "reachable"
expect_floor = "none"
[[step]]
advance = "1m"
[[step]]
handshake = "phone"
rcs = "verified"
sms = "reachable"
expect_floor = "e2ee"
"#,
    ));
}

#[test]
fn regression_unsigned_report_overwrote_signed_evidence() {
    assert_matches(&replay(
        r#"
[[step]]
add_device = "phone"
os = "android"
client = "acme-app"
client_version = "5.3"
[[step]]
handshake = "phone"
rcs = "verified"
sms = "reachable"
[[step]]
send = "payroll"
expect = { outcome = "deliver", route = "rcs", floor = "e2ee" }
[[step]]
handshake = "phone"
signed = false
rcs = "absent"
expect_rejected = "unsigned"
expect_floor = "e2ee"
[[step]]
send = "payroll"
expect = { outcome = "deliver", route = "rcs", assurance = "e2ee" }
"#,
    ));
}

#[test]
fn a_mismatch_is_reported_with_step_and_values() {
    let report = replay(
        r#"
[[step]]
add_device = "phone"
[[step]]
send = "marketing"
expect = { outcome = "deliver" }
"#,
    );
    let m = report
        .mismatch
        .expect("marketing to an unverified phone cannot be delivered");
    assert_eq!(
        (
            m.step,
            m.field.as_str(),
            m.expected.as_str(),
            m.actual.as_str()
        ),
        (2, "outcome", "deliver", "block")
    );
}

/// Issue 9, defect 1: a recipient with only an e-mail address got payroll
/// on the portal behind an e-mail notice, and could never open it: the
/// one-time code must go by another channel, and there was none.
#[test]
fn regression_portal_nobody_could_open_was_accepted_and_marked_delivered() {
    assert_matches(&replay(
        r#"
[recipient]
email = true

[[step]]
send = "payroll"
id = "p1"
expect = { outcome = "escalate", skips = { portal = "no_step_up_channel" } }
"#,
    ));
    // With a phone number too, the portal qualifies: notice by e-mail, code by SMS.
    assert_matches(&replay(
        r#"
[recipient]
email = true
phone = true

[[step]]
send = "payroll"
id = "p1"
expect = { outcome = "deliver", route = "portal+email_notice", assurance = "transport" }
"#,
    ));
}
