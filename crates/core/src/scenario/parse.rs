//! Scenario text → [`Scenario`], with every error pinned to file, line and
//! column.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::fields::{expect, handshake, labels};
use super::{Action, Scenario, ScenarioStep, SendStep};
use crate::assurance::{AssuranceLevel, Channel, Transport};
use crate::policy::raw::RawOverride;
use crate::policy::{
    Checker, Location, PolicyErrorKind, SourceMap, parse_override, syntax_message,
};
use crate::time::{Duration, Timestamp};

pub(super) type S<T> = Spanned<T>;

/// Where the scenario's policy comes from.
#[derive(Debug, Clone)]
pub enum PolicyRef {
    /// A path relative to the scenario file; the caller reads it.
    Path(String),
    /// Policy text embedded in the scenario, with the map that reports its
    /// errors at the scenario file's lines.
    Inline { text: String, map: SourceMap },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioErrorKind {
    #[error("{0}")]
    Syntax(String),
    #[error(transparent)]
    Invalid(#[from] PolicyErrorKind),
    #[error("set exactly one of `policy` (a path) or `policy_inline` (the policy text)")]
    PolicySource,
    #[error("step {step} names no action; use one of: {actions}")]
    NoAction { step: usize, actions: String },
    #[error("step {step}: a send needs `expect = {{ outcome = \"...\" }}`, or it checks nothing")]
    MissingOutcome { step: usize },
    #[error("the scenario has no `send` step, so it would check nothing")]
    NoSends,
    #[error("step {step} names two actions, `{first}` and `{second}`; split it into two steps")]
    TwoActions {
        step: usize,
        first: &'static str,
        second: &'static str,
    },
    #[error("step {step}: `{field}` does not apply to `{action}`; it takes: {allowed}")]
    FieldNotForAction {
        step: usize,
        field: &'static str,
        action: &'static str,
        allowed: String,
    },
    #[error("step {step}: `{field}` must be {expected}, not `{given}`")]
    BadValue {
        step: usize,
        field: String,
        given: String,
        expected: String,
    },
    #[error("step {step}: set at most one of `signed = false`, `forged`, `replay`, `late`")]
    TwoDeliveries { step: usize },
}

/// A scenario error with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub source_name: String,
    pub location: Location,
    pub kind: ScenarioErrorKind,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: error: {}",
            self.source_name, self.location, self.kind
        )
    }
}

impl std::error::Error for ScenarioError {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    description: Option<String>,
    policy: Option<S<String>>,
    policy_inline: Option<S<String>>,
    start: Option<S<toml::value::Datetime>>,
    #[serde(default)]
    recipient: RawRecipient,
    #[serde(default)]
    step: Vec<S<RawStep>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipient {
    #[serde(default)]
    email: bool,
    #[serde(default)]
    phone: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    pub(super) add_device: Option<S<String>>,
    pub(super) update_device: Option<S<String>>,
    pub(super) handshake: Option<S<String>>,
    pub(super) provider_check: Option<S<String>>,
    pub(super) revoke_device: Option<S<String>>,
    pub(super) remove_device: Option<S<String>>,
    pub(super) advance: Option<S<String>>,
    pub(super) set_override: Option<S<RawOverride>>,
    pub(super) clear_override: Option<S<String>>,
    pub(super) provider_down: Option<S<String>>,
    pub(super) provider_up: Option<S<String>>,
    pub(super) send: Option<S<String>>,
    pub(super) confirm: Option<S<String>>,

    pub(super) os: Option<S<String>>,
    pub(super) os_version: Option<S<String>>,
    pub(super) client: Option<S<String>>,
    pub(super) client_version: Option<S<String>>,
    pub(super) carrier: Option<S<String>>,

    pub(super) rcs: Option<S<String>>,
    pub(super) in_app: Option<S<String>>,
    pub(super) sms: Option<S<String>>,
    pub(super) push: Option<S<String>>,
    pub(super) attested: Option<S<bool>>,
    pub(super) policy_revision: Option<S<u32>>,
    pub(super) signed: Option<S<bool>>,
    pub(super) forged: Option<S<bool>>,
    pub(super) replay: Option<S<bool>>,
    pub(super) late: Option<S<bool>>,
    pub(super) expect_rejected: Option<S<String>>,

    pub(super) id: Option<S<String>>,
    pub(super) confirmation_of: Option<S<String>>,
    pub(super) expect: Option<S<RawExpect>>,
    pub(super) expect_floor: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    pub(super) outcome: Option<S<String>>,
    pub(super) route: Option<S<String>>,
    pub(super) assurance: Option<S<String>>,
    pub(super) downgrade: Option<bool>,
    pub(super) floor: Option<S<String>>,
    pub(super) enforced: Option<S<String>>,
    #[serde(default)]
    pub(super) skips: BTreeMap<String, S<toml::Value>>,
}

const ACTIONS: &str = "add_device, update_device, handshake, provider_check, revoke_device, remove_device, advance, set_override, clear_override, provider_down, provider_up, send, confirm";
const LABELS: &[&str] = &["os", "os_version", "client", "client_version", "carrier"];
pub(super) const OUTCOMES: [&str; 5] = [
    "deliver",
    "confirmation_required",
    "hold",
    "escalate",
    "block",
];

pub(super) struct Ctx<'a> {
    name: &'a str,
    pub(super) map: SourceMap,
    pub(super) errors: Vec<ScenarioError>,
}

impl Ctx<'_> {
    pub(super) fn err(&mut self, span: &Range<usize>, kind: ScenarioErrorKind) {
        self.errors.push(ScenarioError {
            source_name: self.name.to_owned(),
            location: self.map.locate_span(span),
            kind,
        });
    }

    pub(super) fn level(
        &mut self,
        step: usize,
        field: &str,
        v: &S<String>,
    ) -> Option<AssuranceLevel> {
        match v.get_ref().parse() {
            Ok(l) => Some(l),
            Err(_) => {
                self.bad(
                    step,
                    field,
                    v,
                    "one of: none, transport, e2ee, e2ee_attested",
                );
                None
            }
        }
    }

    pub(super) fn bad(&mut self, step: usize, field: &str, v: &S<String>, expected: &str) {
        self.err(
            &v.span(),
            ScenarioErrorKind::BadValue {
                step,
                field: field.to_owned(),
                given: v.get_ref().clone(),
                expected: expected.to_owned(),
            },
        );
    }

    pub(super) fn parsed<T: std::str::FromStr>(&mut self, v: &S<String>) -> Option<T>
    where
        PolicyErrorKind: From<T::Err>,
    {
        match v.get_ref().parse::<T>() {
            Ok(x) => Some(x),
            Err(e) => {
                self.err(
                    &v.span(),
                    ScenarioErrorKind::Invalid(PolicyErrorKind::from(e)),
                );
                None
            }
        }
    }
}

/// Parses scenario text. `source_name` prefixes every error.
pub fn parse_scenario(text: &str, source_name: &str) -> Result<Scenario, Vec<ScenarioError>> {
    let mut cx = Ctx {
        name: source_name,
        map: SourceMap::new(text),
        errors: Vec::new(),
    };
    let raw: RawScenario = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            cx.err(
                &e.span().unwrap_or(0..0),
                ScenarioErrorKind::Syntax(syntax_message(&e, &cx.map)),
            );
            return Err(cx.errors);
        }
    };
    let policy = match (&raw.policy, &raw.policy_inline) {
        (Some(p), None) => Some(PolicyRef::Path(p.get_ref().clone())),
        (None, Some(inline)) => Some(PolicyRef::Inline {
            text: inline.get_ref().clone(),
            map: SourceMap::embedded(text, inline_offset(text, &inline.span())),
        }),
        (p, i) => {
            let span = p.as_ref().or(i.as_ref()).map_or(0..0, |s| s.span());
            cx.err(&span, ScenarioErrorKind::PolicySource);
            None
        }
    };
    let start = match &raw.start {
        None => Some(Timestamp(1_798_761_600)), // 2027-01-01T00:00:00Z
        Some(dt) => match Timestamp::parse_rfc3339(&dt.get_ref().to_string()) {
            Ok(t) => Some(t),
            Err(e) => {
                cx.err(&dt.span(), ScenarioErrorKind::Invalid(e.into()));
                None
            }
        },
    };
    let mut steps = Vec::new();
    let mut clock = start.unwrap_or(Timestamp(0));
    for (i, s) in raw.step.iter().enumerate() {
        if let Some(step) = step(&mut cx, i + 1, s, &mut clock) {
            steps.push(step);
        }
    }
    if cx.errors.is_empty() && !steps.iter().any(|s| matches!(s.action, Action::Send(_))) {
        cx.err(&(0..0), ScenarioErrorKind::NoSends);
    }
    match (policy, start) {
        (Some(policy), Some(start)) if cx.errors.is_empty() => Ok(Scenario {
            name: raw.name,
            description: raw.description,
            policy,
            start,
            email: raw.recipient.email,
            phone: raw.recipient.phone,
            steps,
        }),
        _ => Err(cx.errors),
    }
}

/// Where the text of a TOML string starts, given the span of the string
/// (quotes included). Exact for literal strings; basic strings with escapes
/// report positions as if each escape were one character.
fn inline_offset(text: &str, span: &Range<usize>) -> usize {
    let at = text.get(span.start..).unwrap_or("");
    let mut skip = if at.starts_with("'''") || at.starts_with("\"\"\"") {
        3
    } else {
        1
    };
    let rest = at.get(skip..).unwrap_or("");
    if skip == 3 {
        if rest.starts_with("\r\n") {
            skip += 2;
        } else if rest.starts_with('\n') {
            skip += 1;
        }
    }
    span.start + skip
}

fn step(cx: &mut Ctx<'_>, n: usize, s: &S<RawStep>, clock: &mut Timestamp) -> Option<ScenarioStep> {
    let r = s.get_ref();
    let str_actions: [(&'static str, &Option<S<String>>); 12] = [
        ("add_device", &r.add_device),
        ("update_device", &r.update_device),
        ("handshake", &r.handshake),
        ("provider_check", &r.provider_check),
        ("revoke_device", &r.revoke_device),
        ("remove_device", &r.remove_device),
        ("advance", &r.advance),
        ("clear_override", &r.clear_override),
        ("provider_down", &r.provider_down),
        ("provider_up", &r.provider_up),
        ("send", &r.send),
        ("confirm", &r.confirm),
    ];
    let mut named: Vec<&'static str> = str_actions
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| *k)
        .collect();
    if r.set_override.is_some() {
        named.push("set_override");
    }
    let action_name = match named.as_slice() {
        [] => {
            cx.err(
                &s.span(),
                ScenarioErrorKind::NoAction {
                    step: n,
                    actions: ACTIONS.into(),
                },
            );
            return None;
        }
        [one] => *one,
        [first, second, ..] => {
            cx.err(
                &s.span(),
                ScenarioErrorKind::TwoActions {
                    step: n,
                    first,
                    second,
                },
            );
            return None;
        }
    };
    let value = str_actions
        .iter()
        .find(|(k, _)| *k == action_name)
        .and_then(|(_, v)| v.as_ref());
    if let Some(v) = value
        && v.get_ref().trim().is_empty()
    {
        cx.bad(n, action_name, v, "a non-empty name");
        return None;
    }

    // Which optional fields each action takes.
    let allowed: &[&str] = match action_name {
        "add_device" | "update_device" => LABELS,
        "handshake" => &[
            "rcs",
            "in_app",
            "sms",
            "push",
            "attested",
            "client",
            "client_version",
            "policy_revision",
            "signed",
            "forged",
            "replay",
            "late",
            "expect_rejected",
        ],
        "provider_check" => &["rcs", "sms"],
        "send" => &["id", "confirmation_of", "expect"],
        "confirm" => &["expect"],
        _ => &[],
    };
    let present: [(&'static str, Option<Range<usize>>); 20] = [
        ("os", r.os.as_ref().map(|v| v.span())),
        ("os_version", r.os_version.as_ref().map(|v| v.span())),
        ("client", r.client.as_ref().map(|v| v.span())),
        (
            "client_version",
            r.client_version.as_ref().map(|v| v.span()),
        ),
        ("carrier", r.carrier.as_ref().map(|v| v.span())),
        ("rcs", r.rcs.as_ref().map(|v| v.span())),
        ("in_app", r.in_app.as_ref().map(|v| v.span())),
        ("sms", r.sms.as_ref().map(|v| v.span())),
        ("push", r.push.as_ref().map(|v| v.span())),
        ("attested", r.attested.as_ref().map(|v| v.span())),
        (
            "policy_revision",
            r.policy_revision.as_ref().map(|v| v.span()),
        ),
        ("signed", r.signed.as_ref().map(|v| v.span())),
        ("forged", r.forged.as_ref().map(|v| v.span())),
        ("replay", r.replay.as_ref().map(|v| v.span())),
        ("late", r.late.as_ref().map(|v| v.span())),
        (
            "expect_rejected",
            r.expect_rejected.as_ref().map(|v| v.span()),
        ),
        ("id", r.id.as_ref().map(|v| v.span())),
        (
            "confirmation_of",
            r.confirmation_of.as_ref().map(|v| v.span()),
        ),
        ("expect", r.expect.as_ref().map(|v| v.span())),
        ("expect_floor", None),
    ];
    let before = cx.errors.len();
    for (field, span) in present.iter() {
        if let Some(span) = span
            && !allowed.contains(field)
        {
            let allowed_list = if allowed.is_empty() {
                "nothing else but `expect_floor`".to_owned()
            } else {
                allowed
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            cx.err(
                span,
                ScenarioErrorKind::FieldNotForAction {
                    step: n,
                    field,
                    action: action_name,
                    allowed: allowed_list,
                },
            );
        }
    }
    if cx.errors.len() > before {
        return None;
    }
    let expect_floor = r
        .expect_floor
        .as_ref()
        .and_then(|v| cx.level(n, "expect_floor", v));
    // The action's own value: a device, class, message or override name.
    let action_value = || value.map(|v| v.get_ref().clone()).unwrap_or_default();

    let action = match action_name {
        "add_device" | "update_device" => {
            let labels = labels(cx, r)?;
            if action_name == "add_device" {
                Action::AddDevice {
                    device: action_value(),
                    labels,
                }
            } else {
                Action::UpdateDevice {
                    device: action_value(),
                    labels,
                }
            }
        }
        "handshake" => Action::Handshake(handshake(cx, n, r, &s.span(), action_value())?),
        "provider_check" => {
            let mut transports = BTreeMap::new();
            for (t, v) in [(Transport::Rcs, &r.rcs), (Transport::Sms, &r.sms)] {
                if let Some(v) = v {
                    match v.get_ref().as_str() {
                        "reachable" => transports.insert(t, true),
                        "unreachable" => transports.insert(t, false),
                        _ => {
                            cx.bad(n, t.as_str(), v, "one of: reachable, unreachable");
                            return None;
                        }
                    };
                }
            }
            Action::ProviderCheck {
                device: action_value(),
                transports,
            }
        }
        "revoke_device" => Action::RevokeDevice {
            device: action_value(),
        },
        "remove_device" => Action::RemoveDevice {
            device: action_value(),
        },
        "advance" => {
            let d: Duration = cx.parsed(value?)?;
            *clock = clock.plus(d);
            Action::Advance(d)
        }
        "set_override" => {
            let raw = r.set_override.as_ref()?;
            let mut checker = Checker::new(cx.name, &cx.map);
            let o = parse_override(&mut checker, raw.get_ref(), Some(*clock));
            let errors = checker.errors;
            for e in errors {
                cx.errors.push(ScenarioError {
                    source_name: e.source_name,
                    location: e.location,
                    kind: e.kind.into(),
                });
            }
            Action::SetOverride(Box::new(o?))
        }
        "clear_override" => Action::ClearOverride(action_value()),
        "provider_down" | "provider_up" => {
            let c: Channel = cx.parsed(value?)?;
            if action_name == "provider_down" {
                Action::ProviderDown(c)
            } else {
                Action::ProviderUp(c)
            }
        }
        "send" => Action::Send(SendStep {
            class: action_value(),
            id: r.id.as_ref().map(|v| v.get_ref().clone()),
            confirmation_of: r.confirmation_of.as_ref().map(|v| v.get_ref().clone()),
            expect: expect(cx, n, &s.span(), r.expect.as_ref())?,
        }),
        "confirm" => Action::Confirm {
            id: action_value(),
            expect: expect(cx, n, &s.span(), r.expect.as_ref())?,
        },
        _ => return None,
    };
    Some(ScenarioStep {
        number: n,
        location: cx.map.locate_span(&s.span()),
        action,
        expect_floor,
    })
}
