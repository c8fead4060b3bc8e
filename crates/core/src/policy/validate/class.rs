//! Checks of one class: its minimum, ladder, exhausted outcome, mode and
//! legacy route, and notice template.

use std::collections::BTreeSet;

use super::Checker;
use crate::assurance::{AssuranceLevel, Container, Mode, Notifier, StepUp};
use crate::evidence::EvidenceRules;
use crate::policy::diagnostic::{PolicyErrorKind as E, PolicyWarningKind as W};
use crate::policy::raw::{RawClass, RawStep, S};
use crate::policy::{AfterHold, Class, Exhausted, Step};

fn step(c: &mut Checker<'_>, raw: &RawStep) -> Option<Step> {
    let container = c.name::<Container>(&raw.container);
    let require = raw
        .require
        .as_ref()
        .and_then(|r| c.name::<AssuranceLevel>(r));
    let mut notifiers: Vec<Notifier> = Vec::new();
    for n in &raw.notifiers {
        if let Some(notifier) = c.name::<Notifier>(n) {
            if notifiers.contains(&notifier) {
                c.error(
                    &n.span(),
                    E::DuplicateNotifier {
                        notifier: notifier.as_str().into(),
                    },
                );
            } else {
                notifiers.push(notifier);
            }
        }
    }
    let step_up = raw
        .step_up
        .as_ref()
        .and_then(|s| c.name::<StepUp>(s))
        .unwrap_or_default();
    let container = container?;
    if let Some(s) = &raw.step_up
        && container != Container::Portal
    {
        c.error(&s.span(), E::StepUpWithoutPortal { container });
    }
    if !notifiers.is_empty() && !container.accepts_notifiers() {
        c.error(&raw.container.span(), E::NotifierNotAccepted { container });
    }
    if container.needs_notifier() && raw.notifiers.is_empty() {
        c.error(&raw.container.span(), E::PortalWithoutNotifier);
    }
    Some(Step {
        container,
        notifiers,
        require,
        step_up,
    })
}

/// A portal's step-up setting against what the step must carry: no code at
/// all only where the payload may travel in plaintext anyway; anything
/// weaker than the default is worth a warning.
fn step_up(c: &mut Checker<'_>, raw: &RawStep, s: &Step, class: &str, required: AssuranceLevel) {
    let Some(span) = &raw.step_up else { return };
    match s.step_up {
        StepUp::None if required > AssuranceLevel::None => c.error(
            &span.span(),
            E::StepUpOffAboveNone {
                class: class.to_owned(),
                required,
            },
        ),
        StepUp::None => c.warn(
            &span.span(),
            W::NoStepUp {
                class: class.to_owned(),
            },
        ),
        StepUp::AnyChannel => c.warn(
            &span.span(),
            W::StepUpAnyChannel {
                class: class.to_owned(),
            },
        ),
        StepUp::OtherChannel => {}
    }
}

pub(super) fn class(
    c: &mut Checker<'_>,
    raw: &RawClass,
    rank: usize,
    rules: &EvidenceRules,
    notices: &BTreeSet<String>,
) -> Option<Class> {
    let name = c.identifier(&raw.name, "class name");
    let minimum = c.name::<AssuranceLevel>(&raw.minimum);
    let mode = match &raw.mode {
        Some(m) => c.name::<Mode>(m),
        None => Some(Mode::Enforce),
    };
    let retention = c.positive(&raw.retention, "retention");
    let hold_for = raw
        .hold_for
        .as_ref()
        .and_then(|h| c.positive(h, "hold_for"));
    let after_hold = match raw.after_hold.as_ref().map(|a| (a, a.get_ref().as_str())) {
        None | Some((_, "escalate")) => Some(AfterHold::Escalate),
        Some((_, "block")) => Some(AfterHold::Block),
        Some((span, other)) => {
            c.error(
                &span.span(),
                E::BadAfterHold {
                    given: other.into(),
                },
            );
            None
        }
    };
    let on_exhausted = match raw.on_exhausted.get_ref().as_str() {
        "block" => Some(Exhausted::Block),
        "escalate" => Some(Exhausted::Escalate),
        "hold" => match (hold_for, &raw.hold_for) {
            (Some(hold_for), _) => after_hold.map(|then| Exhausted::Hold { hold_for, then }),
            (None, None) => {
                c.error(
                    &raw.on_exhausted.span(),
                    E::HoldWithoutDeadline {
                        class: name.clone(),
                    },
                );
                None
            }
            (None, Some(_)) => None,
        },
        other => {
            c.error(
                &raw.on_exhausted.span(),
                E::BadOnExhausted {
                    given: other.into(),
                },
            );
            None
        }
    };
    if let Some(Exhausted::Block | Exhausted::Escalate) = &on_exhausted {
        for (span, field) in [(&raw.hold_for, "hold_for"), (&raw.after_hold, "after_hold")] {
            if let Some(span) = span {
                c.warn(
                    &span.span(),
                    W::HoldSettingUnused {
                        class: name.clone(),
                        field,
                    },
                );
            }
        }
    }

    // The best a container can ever do under this policy's evidence rules.
    let ceiling = |container: Container| {
        if container.ceiling() > AssuranceLevel::Transport {
            rules.e2ee_ceiling()
        } else {
            container.ceiling()
        }
    };
    let mut ladder = Vec::new();
    let mut seen: Vec<(Container, Vec<Notifier>)> = Vec::new();
    for rs in raw.ladder.get_ref() {
        let Some(s) = step(c, rs.get_ref()) else {
            continue;
        };
        if let Some(min) = minimum {
            let required = s.require.map_or(min, |r| r.max(min));
            step_up(c, rs.get_ref(), &s, &name, required);
            let top = ceiling(s.container);
            if top < required {
                c.error(
                    &rs.get_ref().container.span(),
                    E::StepBelowMinimum {
                        class: name.clone(),
                        container: s.container,
                        ceiling: top,
                        required,
                    },
                );
            }
            if let (Some(r), Some(span)) = (s.require, &rs.get_ref().require)
                && r <= min
            {
                c.warn(
                    &span.span(),
                    W::RedundantRequire {
                        class: name.clone(),
                        require: r,
                        minimum: min,
                    },
                );
            }
            if s.container == Container::Sms && min > AssuranceLevel::None {
                // Already an error above: sms can never reach the minimum.
            } else if s.container == Container::Sms && rank > 0 {
                c.warn(
                    &rs.get_ref().container.span(),
                    W::PlaintextPayload {
                        class: name.clone(),
                        minimum: min,
                    },
                );
            }
        }
        let key = (s.container, s.notifiers.clone());
        if seen.contains(&key) {
            c.warn(
                &rs.get_ref().container.span(),
                W::DuplicateStep {
                    class: name.clone(),
                    container: s.container,
                },
            );
        }
        seen.push(key);
        ladder.push(s);
    }
    if raw.ladder.get_ref().is_empty() {
        c.error(
            &raw.ladder.span(),
            E::EmptyLadder {
                class: name.clone(),
            },
        );
    } else if let Some(min) = minimum {
        let best = ladder.iter().map(|s| ceiling(s.container)).max();
        if let Some(best) = best
            && best < min
            && ladder.len() == raw.ladder.get_ref().len()
        {
            c.error(
                &raw.minimum.span(),
                E::ClassUnsatisfiable {
                    class: name.clone(),
                    minimum: min,
                    best,
                },
            );
        }
    }

    let legacy = raw
        .legacy
        .as_ref()
        .and_then(|l| step(c, l.get_ref()).map(|s| (s, l)));
    match (mode, &legacy) {
        (Some(Mode::Observe), None) if raw.legacy.is_none() => {
            let span = raw.mode.as_ref().map_or(raw.name.span(), |m| m.span());
            c.error(
                &span,
                E::ObserveWithoutLegacy {
                    class: name.clone(),
                },
            );
        }
        (Some(Mode::Observe), Some((s, span))) => {
            if let Some(min) = minimum {
                let required = s.require.map_or(min, |r| r.max(min));
                step_up(c, span.get_ref(), s, &name, required);
            }
            if let Some(min) = minimum
                && ceiling(s.container) < min
            {
                c.warn(
                    &span.span(),
                    W::LegacyBelowMinimum {
                        class: name.clone(),
                        container: s.container,
                        minimum: min,
                    },
                );
            }
        }
        (Some(Mode::Enforce), Some((_, span))) => {
            c.warn(
                &span.span(),
                W::LegacyIgnored {
                    class: name.clone(),
                },
            );
        }
        _ => {}
    }

    let uses_notifiers = ladder
        .iter()
        .chain(legacy.as_ref().map(|(s, _)| s))
        .any(|s| !s.notifiers.is_empty());
    match &raw.notice {
        Some(t) if !notices.contains(t.get_ref()) => c.error(
            &t.span(),
            E::UnknownTemplate {
                class: name.clone(),
                template: t.get_ref().clone(),
            },
        ),
        None if uses_notifiers && !notices.contains("default") => {
            c.error(
                &raw.name.span(),
                E::MissingTemplate {
                    class: name.clone(),
                },
            );
        }
        _ => {}
    }

    Some(Class {
        name,
        rank,
        minimum: minimum?,
        ladder,
        on_exhausted: on_exhausted?,
        mode: mode?,
        legacy: legacy.map(|(s, _)| s),
        confirm_downgrade: raw.confirm_downgrade,
        retention: retention?,
        notice: raw.notice.as_ref().map(|t| t.get_ref().clone()),
    })
}

pub(super) fn rank_warnings(c: &mut Checker<'_>, raw: &[S<RawClass>], classes: &[Class]) {
    let mut strictest: Option<&Class> = None;
    for class in classes {
        if let Some(lower) = strictest
            && class.minimum < lower.minimum
            && let Some(rc) = raw
                .iter()
                .find(|r| r.get_ref().name.get_ref() == &class.name)
        {
            c.warn(
                &rc.get_ref().minimum.span(),
                W::RankInversion {
                    class: class.name.clone(),
                    minimum: class.minimum,
                    lower: lower.name.clone(),
                    lower_minimum: lower.minimum,
                },
            );
        }
        if strictest.is_none_or(|s| class.minimum > s.minimum) {
            strictest = Some(class);
        }
    }
}
