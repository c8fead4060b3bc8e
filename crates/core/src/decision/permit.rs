//! Whether one named route may carry a message *now*: the question an
//! operator's "send by this route" puts to the core when a message waits in
//! the escalation queue.
//!
//! The answer is the decision's own judgement of that ladder step — the
//! same floor, evidence, overrides, steering and failures, at the same
//! instant — so an operator can pick any route the ladder would accept at
//! this moment, never one it would skip, never the legacy route of an
//! observing class, and never one below the class minimum.

use serde::Serialize;

use super::{
    Context, DecisionInput, Judge, Route, UnknownClass, class_of, lowest_failed, ratchet, steering,
};
use crate::assurance::AssuranceLevel;
use crate::evidence::CreditTable;
use crate::overrides::OverrideSet;
use crate::policy::Policy;
use crate::reason::SkipReason;

/// Why a named route may not carry the message now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "refusal")]
pub enum Refusal {
    /// The route's container can never reach the class minimum (an `sms`
    /// route for a class that needs `transport`).
    BelowMinimum {
        ceiling: AssuranceLevel,
        minimum: AssuranceLevel,
    },
    /// No step of the class's ladder is this route.
    NotInLadder { route: String },
    /// The ladder has this route, but the decision would skip it now.
    #[serde(rename = "route_skipped")]
    Skipped {
        step: usize,
        reasons: Vec<SkipReason>,
    },
    /// The step qualifies, but by another notifier than the one named.
    OtherNotifier { step: usize, route: String },
}

impl Refusal {
    /// A stable code for answers and audit entries.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::BelowMinimum { .. } => "below_minimum",
            Refusal::NotInLadder { .. } => "not_in_ladder",
            Refusal::Skipped { .. } => "route_skipped",
            Refusal::OtherNotifier { .. } => "other_notifier",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::BelowMinimum { ceiling, minimum } => write!(
                f,
                "the route carries at most {ceiling}, below the class minimum {minimum}"
            ),
            Refusal::NotInLadder { route } => {
                write!(f, "`{route}` is not a step of the class's ladder")
            }
            Refusal::Skipped { step, reasons } => {
                write!(f, "ladder step {step} does not qualify now: ")?;
                let all: Vec<String> = reasons.iter().map(ToString::to_string).collect();
                write!(f, "{}", all.join("; "))
            }
            Refusal::OtherNotifier { step, route } => {
                write!(f, "ladder step {step} qualifies now only as `{route}`")
            }
        }
    }
}

/// The route named `route` (`portal+email_notice`), if the class's ladder
/// permits it for this message at `input.now`, judged exactly as
/// [`super::decide`] judges that step; otherwise why not. The route is
/// never below the class minimum: a step qualifies only at or above it.
pub fn permitted(
    policy: &Policy,
    input: &DecisionInput<'_>,
    route: &str,
) -> Result<Result<Route, Refusal>, UnknownClass> {
    let (class_index, class) = class_of(policy, input)?;
    let container = route.split('+').next().unwrap_or(route);
    if let Some(c) = crate::assurance::Container::ALL
        .into_iter()
        .find(|c| c.as_str() == container)
        && c.ceiling() < class.minimum
    {
        return Ok(Err(Refusal::BelowMinimum {
            ceiling: c.ceiling(),
            minimum: class.minimum,
        }));
    }
    let overrides = OverrideSet::of_decision(policy.overrides(), input.overrides);
    let credits = CreditTable::new(policy.terms(), input.recipient, overrides, input.now);
    let (after, _) = ratchet(input, &credits);
    let ctx = Context {
        policy,
        recipient: input.recipient,
        credits: &credits,
        overrides,
        failed: input.failed,
        floor: after.floor,
        now: input.now,
    };
    let steering = steering(&ctx, class, &mut Vec::new());
    let judge = Judge {
        ctx: &ctx,
        steering: &steering,
        class,
        routes: policy.route_names(class_index),
        lowest_failed: lowest_failed(input),
    };
    let mut refusal = Refusal::NotInLadder {
        route: route.to_string(),
    };
    for (index, step) in class.ladder.iter().enumerate() {
        let names_it = step.container.as_str() == container
            && match route.split_once('+') {
                None => step.notifiers.is_empty(),
                Some((_, n)) => step.notifiers.iter().any(|s| s.as_str() == n),
            };
        if !names_it {
            continue;
        }
        let (verdict, chosen) = judge.step(index, step);
        match chosen {
            Some(r) if r.name() == route => return Ok(Ok(r)),
            Some(r) => {
                refusal = Refusal::OtherNotifier {
                    step: index,
                    route: r.name(),
                }
            }
            None => {
                refusal = Refusal::Skipped {
                    step: index,
                    reasons: verdict.skipped,
                }
            }
        }
    }
    Ok(Err(refusal))
}
