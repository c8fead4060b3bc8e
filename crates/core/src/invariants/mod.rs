//! Pure checks of `DESIGN.md` invariants 1–3 over one decision.
//!
//! The checks do not trust the decision's own reasons: they recompute what the
//! evidence supports from [`crate::evidence::credit`] over the recipient's
//! active devices, and what the thread's floor allows as documented in
//! [`crate::thread`] (`effective = min(level, max(floor, transport))`), and
//! hold the decision to that.
//!
//! 1. **No payload below the class minimum** — whenever an outcome hands the
//!    payload to a route (`deliver`, in any mode, observe included, after any
//!    failure; and the route a `confirmation_required` proposes), the route
//!    meets what its class (and step) requires, claims no more than the
//!    evidence independently supports under the thread's floor, is not a
//!    step that already failed for this message nor above one (a re-decision
//!    only moves down the ladder), and is not switched off by an active
//!    override. The would-have outcome an observing class records
//!    is held to the same rules: it is what enforcement would deliver.
//!    And no payload is handed to a portal that cannot be opened: a portal
//!    route names where its one-time code goes, that channel is one the
//!    step's `step_up` accepts (by default not the inbox the notice went
//!    to) and a contact point the evidence verifies, unless the step opens
//!    without a code — which only a class with minimum `none` may.
//! 2. **A notice carries nothing about the message** — for every notifier a
//!    route names, the class's notice template rendered with the tenant's
//!    display name and a link names no class of the policy in its own text
//!    and contains none of the caller's canary strings (stand-ins for the
//!    subject and body); notifiers appear only on containers that accept
//!    them.
//! 3. **The floor never rises without a complete fresh handshake** — a
//!    decision never raises a thread's floor (and lowers it at once to what
//!    the evidence verifiably supports), and [`ThreadFloor::elevate`]
//!    succeeds only when every active device has signed evidence observed
//!    after the floor's `since` (strictly: a tie does not count in trust's
//!    favour), and never above what the evidence observed since then
//!    supports.

use crate::assurance::{AssuranceLevel, Channel, Claim, Container, Notifier, StepUp, Transport};
use crate::decision::{Decision, DecisionInput, FailedAttempt, Outcome, Route};
use crate::evidence::{Credit, EvidenceRules, RecipientEvidence, credit};
use crate::overrides::{Override, OverrideEffect};
use crate::policy::{Class, Policy};
use crate::reason::SkipReason;
use crate::step_up::SecondFactor;
use crate::thread::ThreadFloor;
use crate::time::Timestamp;

mod rendered;
mod support;

use rendered::*;
use support::*;

/// The link a notice is rendered with when it is checked.
pub const CHECK_LINK: &str = "https://portal.invalid/s/4f1c2a9e";
/// The expiry a notice is rendered with when it is checked.
pub const CHECK_EXPIRES_IN: &str = "72h";

/// Strings that stand for a message's content. The core never sees content,
/// so a notice that contained one would have had to get it from somewhere it
/// must not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Canaries<'a> {
    pub subject: &'a str,
    pub body: &'a str,
}

impl Default for Canaries<'static> {
    fn default() -> Self {
        Canaries {
            subject: "LADDER-CANARY-SUBJECT-7f3a",
            body: "ladder canary body 9c41 payload",
        }
    }
}

/// An invariant a decision (or an elevation) broke, with what it saw.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error(
        "invariant 1: {outcome} route `{route}` of class `{class}` carries the payload at `{assurance}`, below the `{required}` it requires"
    )]
    BelowMinimum {
        outcome: &'static str,
        class: String,
        route: String,
        assurance: AssuranceLevel,
        required: AssuranceLevel,
    },
    #[error(
        "invariant 1: {outcome} route `{route}` claims `{claimed}`, but the evidence independently supports at most `{supported}` (container evidence `{evidence}`, thread floor `{floor}`)"
    )]
    AboveEvidence {
        outcome: &'static str,
        route: String,
        claimed: AssuranceLevel,
        supported: AssuranceLevel,
        evidence: AssuranceLevel,
        floor: AssuranceLevel,
    },
    #[error(
        "invariant 1: {outcome} route `{route}` hands the payload to `{container}`, but no active device has verified, fresh evidence that it is reachable there"
    )]
    NoVerifiedPath {
        outcome: &'static str,
        route: String,
        container: Container,
    },
    #[error(
        "invariant 1: {outcome} route `{route}` uses step {step} on `{channel}`, which already failed for this message"
    )]
    FailedStepReused {
        outcome: &'static str,
        route: String,
        step: String,
        channel: Channel,
    },
    #[error(
        "invariant 1: {outcome} route `{route}` uses `{channel}`, which active override `{override_id}` disables"
    )]
    DisabledByOverride {
        outcome: &'static str,
        route: String,
        channel: Channel,
        override_id: String,
    },
    #[error(
        "invariant 1: {outcome} route `{route}` carries the payload over `{channel}`, which active override `{override_id}` steers traffic off"
    )]
    SteeredOff {
        outcome: &'static str,
        route: String,
        channel: Channel,
        override_id: String,
    },
    #[error(
        "invariant 1: {outcome} route `{route}` names notifier `{notifier}`, which cannot reach the recipient ({why})"
    )]
    NotifierUnusable {
        outcome: &'static str,
        route: String,
        notifier: Notifier,
        why: String,
    },
    #[error(
        "invariant 1: {outcome} route `{route}` climbs back to step {step} after step {failed_step} failed; a re-decision only moves down the ladder"
    )]
    AboveFailedStep {
        outcome: &'static str,
        route: String,
        step: usize,
        failed_step: usize,
    },
    #[error(
        "invariant 1: {outcome} route `{route}` hands the payload to a portal the recipient cannot open: {why}"
    )]
    PortalCannotBeOpened {
        outcome: &'static str,
        route: String,
        why: String,
    },
    #[error("invariant 1: {outcome} route `{route}` is not a route of class `{class}`: {why}")]
    RouteNotInPolicy {
        outcome: &'static str,
        class: String,
        route: String,
        why: String,
    },
    #[error("invariant 1: the decision is for class `{decided}`, but the message is `{asked}`")]
    WrongClass { asked: String, decided: String },
    #[error(
        "invariant 2: notifier `{notifier}` on `{container}`, a container that accepts no notifiers"
    )]
    NotifierNotAccepted {
        container: Container,
        notifier: Notifier,
    },
    #[error("invariant 2: class `{class}` uses notifier `{notifier}` but has no notice template")]
    NoNoticeTemplate { class: String, notifier: Notifier },
    #[error(
        "invariant 2: notice template `{template}` used by class `{class}` names class `{named}` in its text: {rendered:?}"
    )]
    NoticeNamesClass {
        class: String,
        template: String,
        named: String,
        rendered: String,
    },
    #[error(
        "invariant 2: notice template `{template}` used by class `{class}` contains the content canary {canary:?}: {rendered:?}"
    )]
    NoticeCarriesContent {
        class: String,
        template: String,
        canary: String,
        rendered: String,
    },
    #[error("invariant 3: the decision raised the thread's floor from `{before}` to `{after}`")]
    FloorRaised {
        before: AssuranceLevel,
        after: AssuranceLevel,
    },
    #[error(
        "invariant 3: the decision left the thread's floor at `{after}`, but the evidence verifiably supports only `{supported}`; the ratchet must come down at once"
    )]
    FloorNotLowered {
        after: AssuranceLevel,
        supported: AssuranceLevel,
    },
    #[error(
        "invariant 3: the floor was elevated from `{from}` to `{to}` although device `{device}` has no signed evidence observed after {since}"
    )]
    ElevatedWithoutHandshake {
        from: AssuranceLevel,
        to: AssuranceLevel,
        device: String,
        since: Timestamp,
    },
    #[error(
        "invariant 3: the floor was elevated from `{from}` to `{to}`, but the evidence observed since the floor was set supports `{supported}`"
    )]
    ElevatedBeyondEvidence {
        from: AssuranceLevel,
        to: AssuranceLevel,
        supported: AssuranceLevel,
    },
    #[error(
        "invariant 3: the floor was elevated for a recipient with no active device (from `{from}` to `{to}`)"
    )]
    ElevatedWithoutDevices {
        from: AssuranceLevel,
        to: AssuranceLevel,
    },
}

impl Violation {
    /// The number of the `DESIGN.md` invariant broken.
    pub fn invariant(&self) -> u8 {
        match self {
            Violation::BelowMinimum { .. }
            | Violation::AboveEvidence { .. }
            | Violation::NoVerifiedPath { .. }
            | Violation::FailedStepReused { .. }
            | Violation::AboveFailedStep { .. }
            | Violation::DisabledByOverride { .. }
            | Violation::SteeredOff { .. }
            | Violation::NotifierUnusable { .. }
            | Violation::PortalCannotBeOpened { .. }
            | Violation::RouteNotInPolicy { .. }
            | Violation::WrongClass { .. } => 1,
            Violation::NotifierNotAccepted { .. }
            | Violation::NoNoticeTemplate { .. }
            | Violation::NoticeNamesClass { .. }
            | Violation::NoticeCarriesContent { .. } => 2,
            Violation::FloorRaised { .. }
            | Violation::FloorNotLowered { .. }
            | Violation::ElevatedWithoutHandshake { .. }
            | Violation::ElevatedBeyondEvidence { .. }
            | Violation::ElevatedWithoutDevices { .. } => 3,
        }
    }
}

/// Checks invariants 1–3 over one decision, with the default canaries.
pub fn check_decision(
    policy: &Policy,
    input: &DecisionInput<'_>,
    decision: &Decision,
) -> Result<(), Violation> {
    check_decision_with(policy, input, decision, &Canaries::default())
}

/// Checks invariants 1–3 over one decision; `canaries` stand for the
/// message's subject and body.
pub fn check_decision_with(
    policy: &Policy,
    input: &DecisionInput<'_>,
    decision: &Decision,
    canaries: &Canaries<'_>,
) -> Result<(), Violation> {
    let Some(class) = policy.class(&input.message.class) else {
        // `decide` refuses unknown classes; a decision for one is itself wrong.
        return Err(Violation::WrongClass {
            asked: input.message.class.clone(),
            decided: decision.class.clone(),
        });
    };
    if decision.class != class.name {
        return Err(Violation::WrongClass {
            asked: class.name.clone(),
            decided: decision.class.clone(),
        });
    }
    let overrides = all_overrides(policy, input.overrides);
    let world = World {
        rules: policy.evidence(),
        recipient: input.recipient,
        overrides: &overrides,
        now: input.now,
    };
    let floor = world.effective_floor(input.thread);

    // Invariant 3 first: everything below is capped by the floor.
    check_floor_update(decision, floor)?;

    let outcomes = std::iter::once(("", &decision.outcome)).chain(
        decision
            .enforced
            .iter()
            .map(|o| ("would-have (enforced) ", o)),
    );
    for (prefix, outcome) in outcomes {
        let Some(route) = outcome.route() else {
            continue;
        };
        let label = match (prefix.is_empty(), outcome) {
            (true, Outcome::Deliver { .. }) => "delivered",
            (true, _) => "proposed (confirmation_required)",
            (false, Outcome::Deliver { .. }) => "would-have delivered",
            (false, _) => "would-have proposed",
        };
        world.check_route(class, input.failed, floor, route, label)?;
        check_route_notice(policy, class, route, canaries)?;
    }
    Ok(())
}

/// Invariant 2 for one notifier of one class: the rendered notice names no
/// class of the policy and carries no canary.
pub fn check_notice(
    policy: &Policy,
    class: &Class,
    notifier: Notifier,
    canaries: &Canaries<'_>,
) -> Result<(), Violation> {
    let Some(template) = policy.notice_for(class) else {
        return Err(Violation::NoNoticeTemplate {
            class: class.name.clone(),
            notifier,
        });
    };
    let text = RenderedChars::render(template, policy.display_name());
    for named in policy.classes() {
        if text.names_word_in_literal(&named.name) {
            return Err(Violation::NoticeNamesClass {
                class: class.name.clone(),
                template: template.name.clone(),
                named: named.name.clone(),
                rendered: text.text(),
            });
        }
    }
    for canary in [canaries.subject, canaries.body] {
        if text.contains(canary) {
            return Err(Violation::NoticeCarriesContent {
                class: class.name.clone(),
                template: template.name.clone(),
                canary: canary.to_owned(),
                rendered: text.text(),
            });
        }
    }
    Ok(())
}

/// Invariant 3 for an elevation: calls [`ThreadFloor::elevate`] and, if it
/// succeeds, checks that every active device has signed evidence observed
/// after `thread.since` and that the new floor is above the old one and no
/// higher than the evidence observed after `thread.since` supports.
pub fn check_elevation(
    rules: &EvidenceRules,
    recipient: &RecipientEvidence,
    overrides: &[&Override],
    thread: &ThreadFloor,
    now: Timestamp,
) -> Result<(), Violation> {
    let Ok(elevation) = thread.elevate(rules, recipient, overrides, now) else {
        return Ok(());
    };
    let (from, to) = (thread.floor, elevation.to);
    let mut any = false;
    for d in recipient.active_devices() {
        any = true;
        let fresh = d.transports.values().any(|t| {
            t.source == crate::assurance::EvidenceSource::SignedDeviceReport
                && t.observed_at > thread.since
        });
        if !fresh {
            return Err(Violation::ElevatedWithoutHandshake {
                from,
                to,
                device: d.id.to_string(),
                since: thread.since,
            });
        }
    }
    if !any {
        return Err(Violation::ElevatedWithoutDevices { from, to });
    }
    // Only what was observed after the floor was set may raise it.
    let mut recent = recipient.clone();
    for d in &mut recent.devices {
        d.transports.retain(|_, t| t.observed_at > thread.since);
    }
    let world = World {
        rules,
        recipient: &recent,
        overrides,
        now,
    };
    let supported = world.assessed_level();
    if to <= from || to > supported || elevation.from != from {
        return Err(Violation::ElevatedBeyondEvidence {
            from,
            to,
            supported,
        });
    }
    Ok(())
}

/// The policy's own overrides and the run-time ones, as `decide` sees them.
pub fn all_overrides<'a>(policy: &'a Policy, runtime: &'a [Override]) -> Vec<&'a Override> {
    policy.overrides().iter().chain(runtime).collect()
}

/// What the evidence independently supports for a container, before the
/// thread's floor: `None` when no active device has verified, fresh evidence
/// that the container reaches it.
pub fn container_support(
    rules: &EvidenceRules,
    recipient: &RecipientEvidence,
    overrides: &[&Override],
    container: Container,
    now: Timestamp,
) -> Option<AssuranceLevel> {
    let world = World {
        rules,
        recipient,
        overrides,
        now,
    };
    match world.support(container) {
        Support::Level(l) => Some(l),
        Support::NoVerifiedPath | Support::Disabled(_) => None,
    }
}

fn check_floor_update(decision: &Decision, floor: AssuranceLevel) -> Result<(), Violation> {
    let (before, after) = (decision.thread.before.floor, decision.thread.after.floor);
    if after > before {
        return Err(Violation::FloorRaised { before, after });
    }
    if after > floor {
        return Err(Violation::FloorNotLowered {
            after,
            supported: floor,
        });
    }
    Ok(())
}

fn check_route_notice(
    policy: &Policy,
    class: &Class,
    route: &Route,
    canaries: &Canaries<'_>,
) -> Result<(), Violation> {
    let Some(notifier) = route.notifier else {
        return Ok(());
    };
    if !route.container.accepts_notifiers() {
        return Err(Violation::NotifierNotAccepted {
            container: route.container,
            notifier,
        });
    }
    check_notice(policy, class, notifier, canaries)
}

#[cfg(test)]
mod tests;
