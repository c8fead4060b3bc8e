//! The decision: one pure function from (message metadata, policy, evidence,
//! thread floor, overrides, failures, now) to a [`Decision`] that carries its
//! own reasons.
//!
//! Deny by default: a step qualifies only when verified evidence lifts it to
//! the class minimum (or the step's own `require`), under the thread's floor,
//! with no override or earlier failure against it. When none qualifies the
//! class's `on_exhausted` outcome applies; nothing ever falls below the
//! minimum. In `observe` mode the message follows the legacy route — if that
//! route itself meets the minimum — and the decision records what
//! enforcement would have done.

mod explain;
mod permit;
mod steering;
mod steps;

use serde::{Deserialize, Serialize};

use crate::assurance::{AssuranceLevel, Channel, Container, Mode, Notifier};
use crate::evidence::{CreditTable, RecipientEvidence};
use crate::overrides::{Override, OverrideSet};
use crate::policy::{AfterHold, Class, Exhausted, Policy, PolicyVersion};
use crate::reason::SkipReason;
use crate::step_up::SecondFactor;
use crate::thread::{FloorDrop, ThreadFloor};
use crate::time::Timestamp;

pub use explain::explain;
pub use permit::{Refusal, permitted};
use steering::{Steering, steering};
use steps::Context;

/// The sender's confirmation of a downgrade, bound to one message, the
/// container the sender was shown and the level the sender accepted. It
/// covers that container at that level or better, and nothing else: a
/// confirmation for the portal does not authorise RCS without E2EE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub message_id: String,
    pub container: Container,
    pub assurance: AssuranceLevel,
}

/// What the core knows about a message: never its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMeta {
    pub id: String,
    pub class: String,
    pub accepted_at: Timestamp,
    pub confirmation: Option<Confirmation>,
}

/// A delivery attempt that failed: at ladder step `step` (`None` for the
/// legacy route), on `channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedAttempt {
    pub step: Option<usize>,
    pub channel: Channel,
}

/// Everything a decision depends on besides the policy.
#[derive(Debug, Clone, Copy)]
pub struct DecisionInput<'a> {
    pub message: &'a MessageMeta,
    pub recipient: &'a RecipientEvidence,
    pub thread: &'a ThreadFloor,
    /// Run-time overrides; the policy's own are always included.
    pub overrides: &'a [Override],
    pub failed: &'a [FailedAttempt],
    pub now: Timestamp,
}

/// The path a payload takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Ladder index; `None` for the legacy route of an observing class.
    pub step: Option<usize>,
    pub container: Container,
    pub notifier: Option<Notifier>,
    pub assurance: AssuranceLevel,
    /// For a portal: where its one-time code goes, as the decision counted
    /// on it. The portal sends the code there (`crate::step_up`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_factor: Option<SecondFactor>,
}

impl Route {
    /// `portal+email_notice`, as scenarios name a route.
    pub fn name(&self) -> String {
        match self.notifier {
            Some(n) => format!("{}+{}", self.container, n),
            None => self.container.to_string(),
        }
    }
}

/// What happens to the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    Deliver {
        route: Route,
    },
    /// The route is below what the thread last showed; the sender must confirm.
    ConfirmationRequired {
        route: Route,
        label: AssuranceLevel,
    },
    Hold {
        until: Timestamp,
    },
    Escalate,
    Block,
}

impl Outcome {
    /// Every [`Outcome::code`], for callers that filter or count by them.
    pub const CODES: [&'static str; 5] = [
        "deliver",
        "confirmation_required",
        "hold",
        "escalate",
        "block",
    ];

    pub fn code(&self) -> &'static str {
        match self {
            Outcome::Deliver { .. } => "deliver",
            Outcome::ConfirmationRequired { .. } => "confirmation_required",
            Outcome::Hold { .. } => "hold",
            Outcome::Escalate => "escalate",
            Outcome::Block => "block",
        }
    }

    pub fn route(&self) -> Option<&Route> {
        match self {
            Outcome::Deliver { route } | Outcome::ConfirmationRequired { route, .. } => Some(route),
            _ => None,
        }
    }
}

/// One ladder step as the decision saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepVerdict {
    pub index: usize,
    pub route: String,
    pub required: AssuranceLevel,
    /// What the container could carry the payload at, under the floor.
    pub assurance: Option<AssuranceLevel>,
    /// Empty for the chosen step.
    pub skipped: Vec<SkipReason>,
}

/// How the thread changes if the caller applies this decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadUpdate {
    pub before: ThreadFloor,
    pub after: ThreadFloor,
    pub drop: Option<FloorDrop>,
}

/// A route below what the thread last showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Downgrade {
    pub from: AssuranceLevel,
    pub to: AssuranceLevel,
}

/// Things worth telling a support agent that are not skip reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "note")]
pub enum Note {
    ConfirmationAccepted {
        assurance: AssuranceLevel,
    },
    /// A confirmation for another message was presented and ignored.
    ConfirmationForOtherMessage {
        bound_to: String,
    },
    /// The confirmation accepted a higher level than this route carries.
    ConfirmationBelowRoute {
        confirmed: AssuranceLevel,
        route: AssuranceLevel,
    },
    /// The confirmation was for another container.
    ConfirmationForOtherContainer {
        confirmed: Container,
        route: Container,
    },
    /// An emergency override forces this observing class off its legacy
    /// route; enforcement applied.
    LegacyOverridden {
        override_id: String,
    },
    /// The legacy route could not carry the payload at the class minimum,
    /// so the observing class followed enforcement for this message.
    LegacyRouteUnavailable {
        reasons: Vec<SkipReason>,
    },
    ForceNotInLadder {
        override_id: String,
        container: Container,
    },
    HoldExpired {
        since: Timestamp,
    },
    /// An operator chose this route for an escalated or held message
    /// ([`permitted`] allowed it): it stands while that step still
    /// qualifies, even when a step above it would too.
    OperatorChoseRoute {
        step: usize,
    },
}

/// A decision with its reasons. Serialises to the JSON the API returns and
/// the audit log records (no content, no addresses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub message_id: String,
    pub class: String,
    pub policy_version: PolicyVersion,
    pub mode: Mode,
    pub decided_at: Timestamp,
    pub outcome: Outcome,
    /// In observe mode, what enforcement would have done.
    pub enforced: Option<Outcome>,
    /// Every step evaluated, top of the ladder first, down to the chosen one.
    pub steps: Vec<StepVerdict>,
    pub thread: ThreadUpdate,
    pub downgrade: Option<Downgrade>,
    pub notes: Vec<Note>,
}

/// The input named a class the policy does not define: a caller's mistake,
/// answered before anything is routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown class `{class}` in policy {version}")]
pub struct UnknownClass {
    pub class: String,
    pub version: PolicyVersion,
}

/// Decides one message. Pure and deterministic.
///
/// Every transport of every device is credited once, into a table the
/// floor assessment and the ladder share; reasons borrow from the input
/// until one is recorded, so a message whose first step qualifies
/// allocates only what the returned `Decision` owns.
pub fn decide(policy: &Policy, input: &DecisionInput<'_>) -> Result<Decision, UnknownClass> {
    let (class_index, class) = class_of(policy, input)?;
    let overrides = OverrideSet::of_decision(policy.overrides(), input.overrides);
    let now = input.now;
    let credits = CreditTable::new(policy.terms(), input.recipient, overrides, now);
    if let Some(t) = class.ladder.first().and_then(|s| s.container.transport()) {
        credits.credit_all(t);
    }

    // The ratchet first: a floor that drops now caps every step below.
    let (mut after, drop) = ratchet(input, &credits);

    let ctx = Context {
        policy,
        recipient: input.recipient,
        credits: &credits,
        overrides,
        failed: input.failed,
        floor: after.floor,
        now,
    };
    let mut notes = Vec::new();
    let steering = steering(&ctx, class, &mut notes);
    let judge = Judge {
        ctx: &ctx,
        steering: &steering,
        class,
        routes: policy.route_names(class_index),
        lowest_failed: lowest_failed(input),
    };

    let mut steps = Vec::with_capacity(class.ladder.len());
    let mut chosen: Option<Route> = None;
    for (index, step) in class.ladder.iter().enumerate() {
        let (verdict, route) = judge.step(index, step);
        steps.push(verdict);
        if route.is_some() {
            chosen = route;
            break;
        }
    }

    let label = input.thread.label;
    let downgrade_of = |r: &Route| {
        label.filter(|l| r.assurance < *l).map(|from| Downgrade {
            from,
            to: r.assurance,
        })
    };
    // A route below the thread's last label needs the sender's confirmation
    // when the class asks for it, unless this message already carries one.
    let deliver_or_confirm = |route: Route, notes: &mut Vec<Note>| match downgrade_of(&route) {
        Some(d) if class.confirm_downgrade && !confirmed(input.message, &route, notes) => {
            Outcome::ConfirmationRequired {
                route,
                label: d.from,
            }
        }
        _ => Outcome::Deliver { route },
    };
    // Notes about enforcement's own route are kept only if it is followed.
    let mut enforced_notes = Vec::new();
    let enforced = match chosen {
        Some(route) => deliver_or_confirm(route, &mut enforced_notes),
        None => exhausted(class, input.message, now, &mut enforced_notes),
    };

    let (outcome, enforced) = match (class.mode, &class.legacy) {
        (Mode::Observe, Some(legacy)) => {
            let eval = ctx.evaluate(None, legacy, class.required(legacy));
            match (steering.steers_off(legacy), eval.assurance) {
                (Some(id), _) => {
                    notes.push(Note::LegacyOverridden {
                        override_id: id.to_owned(),
                    });
                    notes.append(&mut enforced_notes);
                    (enforced.clone(), Some(enforced))
                }
                (None, Some(assurance)) if eval.reasons.is_empty() => {
                    let route = Route {
                        step: None,
                        container: legacy.container,
                        notifier: eval.notifier,
                        assurance,
                        second_factor: eval.second_factor,
                    };
                    (deliver_or_confirm(route, &mut notes), Some(enforced))
                }
                (None, _) => {
                    notes.push(Note::LegacyRouteUnavailable {
                        reasons: eval.reasons,
                    });
                    notes.append(&mut enforced_notes);
                    (enforced.clone(), Some(enforced))
                }
            }
        }
        _ => {
            notes.append(&mut enforced_notes);
            (enforced, None)
        }
    };

    let downgrade = outcome.route().and_then(downgrade_of);
    if let Outcome::Deliver { route } = &outcome {
        after.label = Some(route.assurance);
    }
    Ok(Decision {
        message_id: input.message.id.clone(),
        class: class.name.clone(),
        policy_version: policy.version().clone(),
        mode: class.mode,
        decided_at: now,
        outcome,
        enforced,
        steps,
        thread: ThreadUpdate {
            before: input.thread.clone(),
            after,
            drop,
        },
        downgrade,
        notes,
    })
}

/// The class a message names (its index and itself), or the caller's
/// mistake.
fn class_of<'p>(
    policy: &'p Policy,
    input: &DecisionInput<'_>,
) -> Result<(usize, &'p Class), UnknownClass> {
    policy
        .class_index(&input.message.class)
        .and_then(|i| policy.classes().get(i).map(|c| (i, c)))
        .ok_or_else(|| UnknownClass {
            class: input.message.class.clone(),
            version: policy.version().clone(),
        })
}

/// The thread's floor once what the devices verifiably support now (read
/// from the credit table) is observed, and the drop that caused, if any.
/// Why each device is no higher is worked out only for a drop.
fn ratchet(
    input: &DecisionInput<'_>,
    credits: &CreditTable<'_>,
) -> (ThreadFloor, Option<FloorDrop>) {
    let level = credits.floor_level(input.thread.floor);
    let drop = input.thread.observe_level(
        level.unwrap_or(AssuranceLevel::None),
        || credits.causes_at(level),
        input.recipient,
        input.now,
    );
    let mut after = input.thread.clone();
    if let Some(d) = &drop {
        after.apply_drop(d);
    }
    (after, drop)
}

/// The highest step index that failed: a re-decision after a failure only
/// moves down the ladder, below it.
fn lowest_failed(input: &DecisionInput<'_>) -> Option<usize> {
    input.failed.iter().filter_map(|f| f.step).max()
}

/// Judges ladder steps of one class under one decision's context.
struct Judge<'a> {
    ctx: &'a Context<'a>,
    steering: &'a Steering,
    class: &'a Class,
    /// The class's step route names, compiled with the policy.
    routes: &'a [String],
    lowest_failed: Option<usize>,
}

impl Judge<'_> {
    /// The verdict on step `index`, and the route it gives when it
    /// qualifies (no reason against it, and a level to carry the payload).
    fn step(&self, index: usize, step: &crate::policy::Step) -> (StepVerdict, Option<Route>) {
        let required = self.class.required(step);
        let mut eval = self.ctx.evaluate(Some(index), step, required);
        if let Some(reason) = self.steering.skip(self.class, index, step.container) {
            eval.reasons.insert(0, reason);
        }
        if let Some(failed) = self.lowest_failed
            && index < failed
        {
            eval.reasons.insert(
                0,
                SkipReason::AboveFailedStep {
                    failed_step: failed,
                },
            );
        }
        let route = match (eval.reasons.is_empty(), eval.assurance) {
            (true, Some(assurance)) => Some(Route {
                step: Some(index),
                container: step.container,
                notifier: eval.notifier,
                assurance,
                second_factor: eval.second_factor,
            }),
            _ => None,
        };
        let verdict = StepVerdict {
            index,
            route: self
                .routes
                .get(index)
                .map_or_else(|| step.route_name(), Clone::clone),
            required,
            assurance: eval.assurance,
            skipped: eval.reasons,
        };
        (verdict, route)
    }
}

/// Whether the message carries a confirmation that covers this route.
fn confirmed(message: &MessageMeta, route: &Route, notes: &mut Vec<Note>) -> bool {
    let Some(c) = &message.confirmation else {
        return false;
    };
    if c.message_id != message.id {
        notes.push(Note::ConfirmationForOtherMessage {
            bound_to: c.message_id.clone(),
        });
        return false;
    }
    if route.container != c.container {
        notes.push(Note::ConfirmationForOtherContainer {
            confirmed: c.container,
            route: route.container,
        });
        return false;
    }
    if route.assurance < c.assurance {
        notes.push(Note::ConfirmationBelowRoute {
            confirmed: c.assurance,
            route: route.assurance,
        });
        return false;
    }
    notes.push(Note::ConfirmationAccepted {
        assurance: route.assurance,
    });
    true
}

fn exhausted(
    class: &Class,
    message: &MessageMeta,
    now: Timestamp,
    notes: &mut Vec<Note>,
) -> Outcome {
    match class.on_exhausted {
        Exhausted::Block => Outcome::Block,
        Exhausted::Escalate => Outcome::Escalate,
        Exhausted::Hold { hold_for, then } => {
            let until = message.accepted_at.plus(hold_for);
            if now < until {
                Outcome::Hold { until }
            } else {
                notes.push(Note::HoldExpired { since: until });
                match then {
                    AfterHold::Block => Outcome::Block,
                    AfterHold::Escalate => Outcome::Escalate,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
