//! An operator's "send by this route" (issue 10): the core permits a named
//! route only when the decision would accept that ladder step now, and
//! never below the class minimum.

use super::*;

fn permit(
    class: &str,
    r: &RecipientEvidence,
    overrides: &[Override],
    route: &str,
) -> Result<Route, Refusal> {
    let m = msg(class);
    let t = thread(AssuranceLevel::E2ee, None);
    permitted(
        &policy(),
        &DecisionInput {
            message: &m,
            recipient: r,
            thread: &t,
            overrides,
            failed: &[],
            now: NOW,
        },
        route,
    )
    .unwrap()
}

fn verified_phone() -> RecipientEvidence {
    recipient(vec![phone(
        Some(signed(E2eeState::Verified, false, NOW)),
        None,
    )])
}

#[test]
fn a_lower_step_the_ladder_accepts_now_is_permitted_though_not_the_first_choice() {
    let r = verified_phone();
    let d = run("payroll", &r, &thread(AssuranceLevel::E2ee, None), &[], &[]);
    assert_eq!(d.outcome.route().unwrap().name(), "rcs");
    let route = permit("payroll", &r, &[], "portal+sms_notice").unwrap();
    assert_eq!(route.step, Some(2));
    assert_eq!(route.assurance, AssuranceLevel::Transport);
    assert_eq!(permit("payroll", &r, &[], "rcs").unwrap().step, Some(0));
}

#[test]
fn a_route_whose_container_cannot_reach_the_minimum_is_refused_as_below_it() {
    let refusal = permit("payroll", &verified_phone(), &[], "sms").unwrap_err();
    assert_eq!(
        refusal,
        Refusal::BelowMinimum {
            ceiling: AssuranceLevel::None,
            minimum: AssuranceLevel::Transport
        }
    );
    assert_eq!(refusal.code(), "below_minimum");
}

#[test]
fn a_route_the_ladder_does_not_have_is_refused() {
    let refusal = permit("payroll", &verified_phone(), &[], "in_app+push_notice").unwrap_err();
    assert_eq!(refusal.code(), "not_in_ladder");
}

#[test]
fn a_step_the_decision_would_skip_is_refused_with_its_reasons() {
    let r = verified_phone();
    let off = Override {
        id: "rcs-off".into(),
        channel: Channel::Rcs,
        matcher: LabelMatch::default(),
        effect: OverrideEffect::Disable,
        reason: "incident".into(),
        author: "sec".into(),
        expires: Timestamp(NOW.0 + 60),
    };
    let refusal = permit("payroll", &r, std::slice::from_ref(&off), "rcs").unwrap_err();
    let Refusal::Skipped { step: 0, reasons } = &refusal else {
        panic!("{refusal:?}");
    };
    assert_eq!(
        reasons.iter().map(SkipReason::code).collect::<Vec<_>>(),
        ["override_disabled"]
    );
    assert!(refusal.to_string().contains("rcs-off"), "{refusal}");
    let claimed = recipient(vec![phone(
        Some(signed(E2eeState::Claimed, false, NOW)),
        None,
    )]);
    assert_eq!(
        permit("payroll", &claimed, &[], "rcs").unwrap_err().code(),
        "route_skipped"
    );
}

#[test]
fn a_step_that_qualifies_by_another_notifier_names_the_one_it_would_use() {
    // No e-mail address on file: the portal step qualifies by SMS only.
    let refusal = permit("payroll", &verified_phone(), &[], "portal+email_notice").unwrap_err();
    assert_eq!(
        refusal,
        Refusal::OtherNotifier {
            step: 2,
            route: "portal+sms_notice".into()
        }
    );
}

#[test]
fn an_unknown_class_is_the_callers_mistake() {
    let m = msg("nope");
    let t = thread(AssuranceLevel::E2ee, None);
    let r = verified_phone();
    let input = DecisionInput {
        message: &m,
        recipient: &r,
        thread: &t,
        overrides: &[],
        failed: &[],
        now: NOW,
    };
    assert!(permitted(&policy(), &input, "rcs").is_err());
}

#[test]
fn a_refusal_serialises_under_its_code() {
    let r = verified_phone();
    for (route, code) in [
        ("sms", "below_minimum"),
        ("in_app+push_notice", "not_in_ladder"),
        ("portal+email_notice", "other_notifier"),
    ] {
        let refusal = permit("payroll", &r, &[], route).unwrap_err();
        assert_eq!(
            serde_json::to_value(&refusal).unwrap()["refusal"],
            refusal.code()
        );
        assert_eq!(refusal.code(), code);
    }
    let claimed = recipient(vec![phone(
        Some(signed(E2eeState::Claimed, false, NOW)),
        None,
    )]);
    let refusal = permit("payroll", &claimed, &[], "rcs").unwrap_err();
    assert_eq!(
        serde_json::to_value(&refusal).unwrap()["refusal"],
        refusal.code()
    );
}
