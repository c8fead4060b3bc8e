//! The fields of single steps: device labels, handshake reports and send
//! expectations.

use std::collections::BTreeMap;
use std::ops::Range;

use super::parse::{Ctx, OUTCOMES, RawExpect, RawStep, S, ScenarioErrorKind};
use super::{Delivery, Expect, HandshakeStep, Reported};
use crate::assurance::{E2eeState, Transport};
use crate::evidence::PlatformLabels;
use crate::reason::SkipReason;
use crate::version::PlatformVersion;

pub(super) fn labels(cx: &mut Ctx<'_>, r: &RawStep) -> Option<PlatformLabels> {
    let text = |v: &Option<S<String>>| v.as_ref().map(|s| s.get_ref().clone());
    let mut version = |v: &Option<S<String>>| -> Result<Option<PlatformVersion>, ()> {
        match v {
            None => Ok(None),
            Some(s) => cx.parsed::<PlatformVersion>(s).map(Some).ok_or(()),
        }
    };
    let os_version = version(&r.os_version);
    let client_version = version(&r.client_version);
    Some(PlatformLabels {
        os: text(&r.os),
        os_version: os_version.ok()?,
        client: text(&r.client),
        client_version: client_version.ok()?,
        carrier: text(&r.carrier),
    })
}

pub(super) fn handshake(
    cx: &mut Ctx<'_>,
    n: usize,
    r: &RawStep,
    span: &Range<usize>,
    device: String,
) -> Option<HandshakeStep> {
    let mut transports = BTreeMap::new();
    for (t, v) in [
        (Transport::Rcs, &r.rcs),
        (Transport::InApp, &r.in_app),
        (Transport::Sms, &r.sms),
        (Transport::Push, &r.push),
    ] {
        let Some(v) = v else { continue };
        let reported = match v.get_ref().as_str() {
            "reachable" if !t.can_carry_e2ee() => Reported::Reachable,
            "unreachable" => Reported::Unreachable,
            s if t.can_carry_e2ee() => match s.parse::<E2eeState>() {
                Ok(e) => Reported::E2ee(e),
                Err(_) => {
                    cx.bad(
                        n,
                        t.as_str(),
                        v,
                        "one of: verified, claimed, absent, unknown, unreachable",
                    );
                    return None;
                }
            },
            _ => {
                cx.bad(n, t.as_str(), v, "one of: reachable, unreachable");
                return None;
            }
        };
        transports.insert(t, reported);
    }
    let flag = |v: &Option<S<bool>>| v.as_ref().is_some_and(|b| *b.get_ref());
    let mut deliveries = Vec::new();
    if r.signed.as_ref().is_some_and(|b| !*b.get_ref()) {
        deliveries.push(Delivery::Unsigned);
    }
    if flag(&r.forged) {
        deliveries.push(Delivery::Forged);
    }
    if flag(&r.replay) {
        deliveries.push(Delivery::Replay);
    }
    if flag(&r.late) {
        deliveries.push(Delivery::Late);
    }
    let delivery = match deliveries.as_slice() {
        [] => Delivery::Signed,
        [one] => *one,
        _ => {
            cx.err(span, ScenarioErrorKind::TwoDeliveries { step: n });
            return None;
        }
    };
    let client_version = match &r.client_version {
        Some(v) => Some(cx.parsed::<PlatformVersion>(v)?),
        None => None,
    };
    Some(HandshakeStep {
        device,
        transports,
        attested: flag(&r.attested),
        client: r.client.as_ref().map(|v| v.get_ref().clone()),
        client_version,
        policy_revision: r.policy_revision.as_ref().map(|v| *v.get_ref()),
        delivery,
        expect_rejected: r.expect_rejected.as_ref().map(|v| v.get_ref().clone()),
    })
}

/// A send's expectation. `outcome` is required: a send that checks nothing
/// would count as "behaved as expected".
pub(super) fn expect(
    cx: &mut Ctx<'_>,
    n: usize,
    step_span: &Range<usize>,
    raw: Option<&S<RawExpect>>,
) -> Option<Expect> {
    let Some(raw) = raw.filter(|r| r.get_ref().outcome.is_some()) else {
        let span = raw.map_or(step_span.clone(), |r| r.span());
        cx.err(&span, ScenarioErrorKind::MissingOutcome { step: n });
        return None;
    };
    let r = raw.get_ref();
    let before = cx.errors.len();
    if let Some(o) = &r.outcome
        && !OUTCOMES.contains(&o.get_ref().as_str())
    {
        cx.bad(
            n,
            "expect.outcome",
            o,
            &format!("one of: {}", OUTCOMES.join(", ")),
        );
    }
    let assurance = r
        .assurance
        .as_ref()
        .and_then(|v| cx.level(n, "expect.assurance", v));
    let floor = r
        .floor
        .as_ref()
        .and_then(|v| cx.level(n, "expect.floor", v));
    let mut skips = BTreeMap::new();
    for (key, v) in &r.skips {
        let strings = |a: &Vec<toml::Value>| -> Option<Vec<String>> {
            a.iter().map(|x| x.as_str().map(str::to_owned)).collect()
        };
        let codes: Vec<String> = match v.get_ref() {
            toml::Value::String(s) => vec![s.clone()],
            toml::Value::Array(a) if strings(a).is_some_and(|c| !c.is_empty()) => {
                strings(a).unwrap_or_default()
            }
            other => {
                cx.err(
                    &v.span(),
                    ScenarioErrorKind::BadValue {
                        step: n,
                        field: format!("expect.skips.{key}"),
                        given: other.to_string(),
                        expected: "a skip-reason code or a non-empty list of them".into(),
                    },
                );
                continue;
            }
        };
        for code in &codes {
            if !SkipReason::CODES.contains(&code.as_str()) {
                cx.err(
                    &v.span(),
                    ScenarioErrorKind::BadValue {
                        step: n,
                        field: format!("expect.skips.{key}"),
                        given: code.clone(),
                        expected: format!("one of: {}", SkipReason::CODES.join(", ")),
                    },
                );
            }
        }
        skips.insert(key.clone(), codes);
    }
    (cx.errors.len() == before).then(|| Expect {
        outcome: r.outcome.as_ref().map(|v| v.get_ref().clone()),
        route: r.route.as_ref().map(|v| v.get_ref().clone()),
        assurance,
        downgrade: r.downgrade,
        floor,
        enforced: r.enforced.as_ref().map(|v| v.get_ref().clone()),
        skips,
    })
}
