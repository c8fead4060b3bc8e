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

use crate::assurance::{AssuranceLevel, Channel, Claim, Container, Notifier, Transport};
use crate::decision::{Decision, DecisionInput, FailedAttempt, Outcome, Route};
use crate::evidence::{Credit, EvidenceRules, RecipientEvidence, credit};
use crate::overrides::{Override, OverrideEffect};
use crate::policy::{Class, Policy};
use crate::reason::SkipReason;
use crate::thread::ThreadFloor;
use crate::time::Timestamp;

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
            | Violation::NotifierUnusable { .. }
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
                device: d.id.clone(),
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

enum Support {
    Level(AssuranceLevel),
    NoVerifiedPath,
    Disabled(String),
}

struct World<'a> {
    rules: &'a EvidenceRules,
    recipient: &'a RecipientEvidence,
    overrides: &'a [&'a Override],
    now: Timestamp,
}

impl World<'_> {
    fn active_disable(&self, channel: Channel) -> impl Iterator<Item = &Override> {
        self.overrides.iter().copied().filter(move |o| {
            o.effect == OverrideEffect::Disable && o.channel == channel && o.is_active(self.now)
        })
    }

    /// A recipient-level channel (portal, e-mail) is off when an active
    /// override names no labels or matches any active device.
    fn recipient_disabled(&self, channel: Channel) -> Option<String> {
        self.active_disable(channel)
            .find(|o| {
                o.matcher.is_empty()
                    || self
                        .recipient
                        .active_devices()
                        .any(|d| o.matcher.matches(&d.labels))
            })
            .map(|o| o.id.clone())
    }

    /// A device channel is off when an active override matches an active
    /// device that has evidence for it.
    fn device_disabled(&self, transport: Transport) -> Option<String> {
        let channel = transport.channel();
        self.recipient
            .active_devices()
            .filter(|d| d.transports.contains_key(&transport))
            .find_map(|d| {
                self.active_disable(channel)
                    .find(|o| o.matcher.matches(&d.labels))
                    .map(|o| o.id.clone())
            })
    }

    /// Every active device that may receive over `transport` counts: a
    /// verified reachable one at its credited level, one whose evidence is
    /// stale or unverified at `transport` at best. A device with no evidence,
    /// or fresh evidence that it is unreachable, does not receive it.
    fn transport_support(&self, transport: Transport) -> Support {
        if let Some(id) = self.device_disabled(transport) {
            return Support::Disabled(id);
        }
        let mut reachable: Option<AssuranceLevel> = None;
        let mut doubtful = false;
        for d in self.recipient.active_devices() {
            match credit(self.rules, d, transport, self.overrides, self.now) {
                Credit::Reachable { level, .. } => {
                    reachable = Some(reachable.map_or(level, |r| r.min(level)));
                }
                Credit::Unusable(
                    SkipReason::EvidenceMissing { .. }
                    | SkipReason::Unreachable { .. }
                    | SkipReason::OverrideDisabled { .. },
                ) => {}
                Credit::Unusable(_) => doubtful = true,
            }
        }
        match reachable {
            None => Support::NoVerifiedPath,
            Some(l) if doubtful => Support::Level(l.min(AssuranceLevel::Transport)),
            Some(l) => Support::Level(l),
        }
    }

    fn support(&self, container: Container) -> Support {
        match container {
            Container::Rcs => self.transport_support(Transport::Rcs),
            Container::InApp => self.transport_support(Transport::InApp),
            Container::Sms => match self.transport_support(Transport::Sms) {
                Support::Level(_) => Support::Level(AssuranceLevel::None),
                other => other,
            },
            Container::Portal => match self.recipient_disabled(Channel::Portal) {
                Some(id) => Support::Disabled(id),
                None => Support::Level(AssuranceLevel::Transport),
            },
        }
    }

    /// The minimum over active devices of each device's best verified level
    /// over the payload-carrying transports; `none` without active devices.
    fn assessed_level(&self) -> AssuranceLevel {
        self.recipient
            .active_devices()
            .map(|d| {
                [Transport::InApp, Transport::Rcs, Transport::Sms]
                    .iter()
                    .filter_map(|t| credit(self.rules, d, *t, self.overrides, self.now).level())
                    .max()
                    .unwrap_or(AssuranceLevel::None)
            })
            .min()
            .unwrap_or(AssuranceLevel::None)
    }

    /// The floor a decision must apply: the thread's floor, brought down to
    /// what the devices verifiably support, and to `transport` when a device
    /// was revoked since the floor was set.
    fn effective_floor(&self, thread: &ThreadFloor) -> AssuranceLevel {
        let mut floor = thread.floor.min(self.assessed_level());
        let revoked_since = self
            .recipient
            .devices
            .iter()
            .any(|d| d.revoked_at.is_some_and(|at| at >= thread.since));
        if revoked_since && thread.floor > AssuranceLevel::Transport {
            floor = floor.min(AssuranceLevel::Transport);
        }
        floor
    }

    fn notifier_problem(&self, notifier: Notifier) -> Option<String> {
        let via = |t: Transport| {
            let ok = self.recipient.active_devices().any(|d| {
                matches!(
                    credit(self.rules, d, t, self.overrides, self.now),
                    Credit::Reachable { .. }
                )
            });
            (!ok).then(|| format!("no active device is verifiably reachable over {t}"))
        };
        match notifier {
            Notifier::RcsNotice => via(Transport::Rcs),
            Notifier::SmsNotice => via(Transport::Sms),
            Notifier::PushNotice => via(Transport::Push),
            Notifier::EmailNotice => {
                if let Some(id) = self.recipient_disabled(Channel::Email) {
                    return Some(format!("override `{id}` disables e-mail"));
                }
                let fresh = self.recipient.email.as_ref().is_some_and(|e| {
                    self.rules.sources.get(&e.source).is_some_and(|r| {
                        r.verifies.contains(&Claim::Reachable)
                            && self.now < e.observed_at.plus(r.fresh_for)
                    })
                });
                (!fresh).then(|| "no fresh, verified e-mail address on file".to_owned())
            }
        }
    }

    fn check_route(
        &self,
        class: &Class,
        failed: &[FailedAttempt],
        floor: AssuranceLevel,
        route: &Route,
        outcome: &'static str,
    ) -> Result<(), Violation> {
        let name = route.name();
        let not_in_policy = |why: String| Violation::RouteNotInPolicy {
            outcome,
            class: class.name.clone(),
            route: name.clone(),
            why,
        };
        // The step the route claims to be, and what it requires.
        let (step, required) = match route.step {
            Some(i) => match class.ladder.get(i) {
                Some(s) => (s, class.required(s)),
                None => return Err(not_in_policy(format!("the ladder has no step {i}"))),
            },
            None => match &class.legacy {
                Some(s) if class.mode == crate::assurance::Mode::Observe => (s, class.required(s)),
                _ => {
                    return Err(not_in_policy(
                        "a legacy route, but the class does not observe one".to_owned(),
                    ));
                }
            },
        };
        if step.container != route.container {
            return Err(not_in_policy(format!(
                "its step carries `{}`",
                step.container
            )));
        }
        match route.notifier {
            Some(n) if !step.notifiers.contains(&n) => {
                return Err(not_in_policy(format!("its step has no notifier `{n}`")));
            }
            None if route.container.needs_notifier() => {
                return Err(not_in_policy(format!(
                    "`{}` needs a notifier and none was chosen",
                    route.container
                )));
            }
            _ => {}
        }

        if route.assurance < required {
            return Err(Violation::BelowMinimum {
                outcome,
                class: class.name.clone(),
                route: name,
                assurance: route.assurance,
                required,
            });
        }

        let step_name = || route.step.map_or("legacy".to_owned(), |i| i.to_string());
        // After a failure a re-decision only moves down the same ladder.
        if let (Some(i), Some(failed_step)) =
            (route.step, failed.iter().filter_map(|f| f.step).max())
            && i < failed_step
        {
            return Err(Violation::AboveFailedStep {
                outcome,
                route: name,
                step: i,
                failed_step,
            });
        }
        let used =
            std::iter::once(route.container.channel()).chain(route.notifier.map(Notifier::channel));
        for channel in used {
            if failed.contains(&FailedAttempt {
                step: route.step,
                channel,
            }) {
                return Err(Violation::FailedStepReused {
                    outcome,
                    route: name,
                    step: step_name(),
                    channel,
                });
            }
        }

        let evidence = match self.support(route.container) {
            Support::Disabled(override_id) => {
                return Err(Violation::DisabledByOverride {
                    outcome,
                    route: name,
                    channel: route.container.channel(),
                    override_id,
                });
            }
            Support::NoVerifiedPath => {
                return Err(Violation::NoVerifiedPath {
                    outcome,
                    route: name,
                    container: route.container,
                });
            }
            Support::Level(l) => l,
        };
        let supported = evidence.min(floor.max(AssuranceLevel::Transport));
        if route.assurance > supported {
            return Err(Violation::AboveEvidence {
                outcome,
                route: name,
                claimed: route.assurance,
                supported,
                evidence,
                floor,
            });
        }

        if let Some(n) = route.notifier
            && let Some(why) = self.notifier_problem(n)
        {
            return Err(Violation::NotifierUnusable {
                outcome,
                route: name,
                notifier: n,
                why,
            });
        }
        Ok(())
    }
}

/// Where a character of a rendered notice came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The template's own text.
    Literal,
    /// A substituted variable (tenant name, link, expiry).
    Variable,
}

/// A rendered notice, lower-cased char by char, with each char's origin.
struct RenderedChars {
    chars: Vec<(char, Origin)>,
    original: String,
}

const TENANT_MARK: char = '\u{E000}';
const LINK_MARK: char = '\u{E001}';
const EXPIRES_MARK: char = '\u{E002}';

impl RenderedChars {
    fn render(template: &crate::policy::NoticeTemplate, tenant: &str) -> RenderedChars {
        let marked = template
            .render(
                &TENANT_MARK.to_string(),
                &LINK_MARK.to_string(),
                &EXPIRES_MARK.to_string(),
            )
            .0;
        let mut chars = Vec::new();
        for c in marked.chars() {
            let (value, origin) = match c {
                TENANT_MARK => (tenant, Origin::Variable),
                LINK_MARK => (CHECK_LINK, Origin::Variable),
                EXPIRES_MARK => (CHECK_EXPIRES_IN, Origin::Variable),
                _ => {
                    chars.extend(c.to_lowercase().map(|l| (l, Origin::Literal)));
                    continue;
                }
            };
            for v in value.chars() {
                chars.extend(v.to_lowercase().map(|l| (l, origin)));
            }
        }
        RenderedChars {
            chars,
            original: template.render(tenant, CHECK_LINK, CHECK_EXPIRES_IN).0,
        }
    }

    fn text(&self) -> String {
        self.original.clone()
    }

    fn windows_of<'s>(&'s self, needle: &str) -> impl Iterator<Item = usize> + 's {
        let needle: Vec<char> = needle.chars().flat_map(char::to_lowercase).collect();
        let n = needle.len();
        (0..self.chars.len()).filter(move |&i| {
            n > 0
                && self
                    .chars
                    .get(i..i + n)
                    .is_some_and(|w| w.iter().map(|(c, _)| *c).eq(needle.iter().copied()))
        })
    }

    /// Whether `word` appears as a whole word (not inside a longer run of
    /// letters and digits) with at least one char from the template's own
    /// text. A class name that appears only inside the tenant's name or the
    /// link says nothing about the message.
    fn names_word_in_literal(&self, word: &str) -> bool {
        let n: usize = word.chars().flat_map(char::to_lowercase).count();
        self.windows_of(word).any(|i| {
            let before = i
                .checked_sub(1)
                .and_then(|b| self.chars.get(b))
                .is_some_and(|(c, _)| c.is_alphanumeric());
            let after = self
                .chars
                .get(i + n)
                .is_some_and(|(c, _)| c.is_alphanumeric());
            let literal = self
                .chars
                .get(i..i + n)
                .is_some_and(|w| w.iter().any(|(_, o)| *o == Origin::Literal));
            !before && !after && literal
        })
    }

    fn contains(&self, needle: &str) -> bool {
        self.windows_of(needle).next().is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::assurance::{E2eeState, EvidenceSource};
    use crate::decision::{MessageMeta, decide};
    use crate::evidence::{ClientInfo, DeviceEvidence, PlatformLabels, TransportEvidence};

    const NOW: Timestamp = Timestamp(1_798_761_600);

    fn policy(extra: &str) -> Policy {
        let text = format!(
            r#"
tenant = "t"
display_name = "Acme Corp."
[evidence]
[[evidence.source]]
source = "signed_device_report"
verifies = ["reachable", "e2ee", "attestation"]
fresh_for = "7d"
[[evidence.source]]
source = "provider_check"
verifies = ["reachable"]
fresh_for = "24h"
{extra}
[[class]]
name = "payroll"
minimum = "transport"
retention = "30d"
on_exhausted = "block"
ladder = [
  {{ container = "rcs", require = "e2ee" }},
  {{ container = "portal", notifiers = ["sms_notice"] }},
]
"#
        );
        Policy::parse(&text, "test.toml").unwrap().policy
    }

    fn phone(rcs: E2eeState) -> RecipientEvidence {
        let mut d = DeviceEvidence::new("phone", PlatformLabels::default(), Timestamp(0));
        d.client = Some(ClientInfo {
            name: "app".into(),
            version: "1.0".parse().unwrap(),
            policy_revision: 1,
        });
        let ev = |e2ee, source| TransportEvidence {
            reachable: true,
            e2ee,
            attested: false,
            source,
            observed_at: NOW,
        };
        d.transports = BTreeMap::from([
            (Transport::Rcs, ev(rcs, EvidenceSource::SignedDeviceReport)),
            (
                Transport::Sms,
                ev(E2eeState::Unknown, EvidenceSource::ProviderCheck),
            ),
        ]);
        RecipientEvidence {
            devices: vec![d],
            email: None,
        }
    }

    fn meta() -> MessageMeta {
        MessageMeta {
            id: "m1".into(),
            class: "payroll".into(),
            accepted_at: NOW,
            confirmation: None,
        }
    }

    #[test]
    fn real_decisions_pass_and_tampered_ones_are_caught() {
        let p =
            policy("[[notice]]\nname = \"default\"\ntext = \"New message from {tenant}: {link}\"");
        let recipient = phone(E2eeState::Verified);
        let thread = ThreadFloor {
            floor: AssuranceLevel::E2ee,
            since: Timestamp(0),
            label: None,
        };
        let m = meta();
        let input = DecisionInput {
            message: &m,
            recipient: &recipient,
            thread: &thread,
            overrides: &[],
            failed: &[],
            now: NOW,
        };
        let d = decide(&p, &input).unwrap();
        assert_eq!(d.outcome.route().unwrap().assurance, AssuranceLevel::E2ee);
        check_decision(&p, &input, &d).unwrap();

        // Claiming more than the evidence supports.
        let mut forged = d.clone();
        if let Outcome::Deliver { route } = &mut forged.outcome {
            route.assurance = AssuranceLevel::E2eeAttested;
        }
        let v = check_decision(&p, &input, &forged).unwrap_err();
        assert!(matches!(v, Violation::AboveEvidence { .. }), "{v}");
        assert_eq!(v.invariant(), 1);

        // Re-using a failed step.
        let failed = [FailedAttempt {
            step: Some(0),
            channel: Channel::Rcs,
        }];
        let with_failure = DecisionInput {
            failed: &failed,
            ..input
        };
        let v = check_decision(&p, &with_failure, &d).unwrap_err();
        assert!(matches!(v, Violation::FailedStepReused { .. }), "{v}");

        // Raising the floor.
        let mut raised = d.clone();
        raised.thread.after.floor = AssuranceLevel::E2eeAttested;
        let v = check_decision(&p, &input, &raised).unwrap_err();
        assert!(matches!(v, Violation::FloorRaised { .. }), "{v}");
        assert_eq!(v.invariant(), 3);
    }

    #[test]
    fn a_low_floor_caps_what_a_route_may_claim() {
        let p =
            policy("[[notice]]\nname = \"default\"\ntext = \"New message from {tenant}: {link}\"");
        let recipient = phone(E2eeState::Verified);
        let thread = ThreadFloor {
            floor: AssuranceLevel::Transport,
            since: Timestamp(0),
            label: None,
        };
        let m = meta();
        let input = DecisionInput {
            message: &m,
            recipient: &recipient,
            thread: &thread,
            overrides: &[],
            failed: &[],
            now: NOW,
        };
        let d = decide(&p, &input).unwrap();
        check_decision(&p, &input, &d).unwrap();
        assert_eq!(d.outcome.route().unwrap().name(), "portal+sms_notice");
        let mut forged = d.clone();
        forged.outcome = Outcome::Deliver {
            route: Route {
                step: Some(0),
                container: Container::Rcs,
                notifier: None,
                assurance: AssuranceLevel::E2ee,
            },
        };
        let v = check_decision(&p, &input, &forged).unwrap_err();
        assert!(matches!(v, Violation::AboveEvidence { .. }), "{v}");
    }

    #[test]
    fn a_notice_may_not_name_a_class_even_across_a_variable() {
        // The literal text is "Secure{tenant}payroll": validation sees
        // "Securepayroll", but rendered with "Acme Corp." it reads
        // "SecureAcme Corp.payroll".
        let p = policy("[[notice]]\nname = \"default\"\ntext = \"Secure{tenant}payroll {link}\"");
        let class = p.class("payroll").unwrap();
        let v = check_notice(&p, class, Notifier::SmsNotice, &Canaries::default()).unwrap_err();
        assert!(matches!(v, Violation::NoticeNamesClass { .. }), "{v}");
        assert_eq!(v.invariant(), 2);
    }

    #[test]
    fn a_class_name_inside_the_tenant_name_or_link_is_not_a_leak() {
        let text = RenderedChars {
            chars: "from payroll inc"
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    (
                        c,
                        if i < 5 {
                            Origin::Literal
                        } else {
                            Origin::Variable
                        },
                    )
                })
                .collect(),
            original: String::new(),
        };
        assert!(!text.names_word_in_literal("payroll"));
        assert!(text.names_word_in_literal("from"));
        assert!(!text.names_word_in_literal("fro"));
        assert!(text.contains("ROLL INC"));
    }

    #[test]
    fn elevation_requires_a_fresh_signed_report_from_every_device() {
        let p =
            policy("[[notice]]\nname = \"default\"\ntext = \"New message from {tenant}: {link}\"");
        let recipient = phone(E2eeState::Verified);
        let thread = ThreadFloor {
            floor: AssuranceLevel::Transport,
            since: Timestamp(NOW.0 - 10),
            label: None,
        };
        // The real elevate refuses or succeeds correctly either way.
        check_elevation(p.evidence(), &recipient, &[], &thread, NOW).unwrap();
        assert!(thread.elevate(p.evidence(), &recipient, &[], NOW).is_ok());
    }
}
