//! Raw policy → [`Policy`]: every check `ladder policy check` performs.
//!
//! Validation collects every error it can find rather than stopping at the
//! first, each pinned to the span of the value at fault.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::str::FromStr;

use super::diagnostic::{Diagnostic, PolicyErrorKind as E, PolicyWarningKind as W};
use super::notice::{NoticeTemplate, NoticeVariable, TemplateProblem, parse_template};
use super::raw::{RawClass, RawEvidence, RawOverride, RawPolicy, RawStep, S};
use super::{AfterHold, Class, Exhausted, Parsed, Policy, PolicyErrors, SourceMap, Step};
use crate::assurance::{AssuranceLevel, Channel, Claim, Container, EvidenceSource, Mode, Notifier};
use crate::evidence::{EvidenceRules, SourceRule};
use crate::overrides::{LabelMatch, Override, OverrideEffect};
use crate::time::{Duration, Timestamp};
use crate::version::{PlatformVersion, VersionRange};

/// Collects diagnostics against one source.
pub(crate) struct Checker<'a> {
    name: &'a str,
    map: &'a SourceMap,
    pub errors: Vec<Diagnostic<E>>,
    pub warnings: Vec<Diagnostic<W>>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(name: &'a str, map: &'a SourceMap) -> Self {
        Checker {
            name,
            map,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub(crate) fn error(&mut self, span: &Range<usize>, kind: E) {
        self.errors.push(Diagnostic {
            source_name: self.name.to_owned(),
            location: self.map.locate_span(span),
            kind,
        });
    }

    fn warn(&mut self, span: &Range<usize>, kind: W) {
        self.warnings.push(Diagnostic {
            source_name: self.name.to_owned(),
            location: self.map.locate_span(span),
            kind,
        });
    }

    /// Parses a spanned string with `FromStr`, recording the error at its span.
    pub(crate) fn name<T>(&mut self, s: &S<String>) -> Option<T>
    where
        T: FromStr,
        E: From<T::Err>,
    {
        match s.get_ref().parse::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(&s.span(), E::from(e));
                None
            }
        }
    }

    fn non_empty(&mut self, s: &S<String>, field: &'static str) -> String {
        if s.get_ref().trim().is_empty() {
            self.error(&s.span(), E::EmptyField { field });
        }
        s.get_ref().clone()
    }
}

pub(super) fn parse(
    text: &str,
    source_name: &str,
    map: &SourceMap,
) -> Result<Parsed, PolicyErrors> {
    let raw: RawPolicy = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let mut c = Checker::new(source_name, map);
            c.error(&span, E::Syntax(e.message().trim().to_owned()));
            return Err(PolicyErrors(c.errors));
        }
    };
    let mut c = Checker::new(source_name, map);
    let policy = build(&mut c, raw);
    match policy {
        Some(p) if c.errors.is_empty() => Ok(Parsed {
            policy: p.seal(),
            warnings: c.warnings,
        }),
        _ => Err(PolicyErrors(c.errors)),
    }
}

fn build(c: &mut Checker<'_>, raw: RawPolicy) -> Option<Policy> {
    let tenant = c.non_empty(&raw.tenant, "tenant");
    let display_name = c.non_empty(&raw.display_name, "display_name");
    let revision = raw.revision.map_or(1, |r| *r.get_ref());
    let evidence = evidence_rules(c, raw.evidence.get_ref(), &raw.evidence.span());

    let mut notices = BTreeMap::new();
    let mut defined: BTreeSet<String> = BTreeSet::new();
    for n in &raw.notice {
        let n = n.get_ref();
        let name = c.non_empty(&n.name, "name");
        defined.insert(name.clone());
        if notices.contains_key(&name) {
            c.error(&n.name.span(), E::DuplicateTemplate { name: name.clone() });
            continue;
        }
        let allowed = NoticeVariable::allowed_list();
        match parse_template(n.text.get_ref()) {
            Ok(parts) => {
                notices.insert(name.clone(), NoticeTemplate::new(name, parts));
            }
            Err(TemplateProblem::Unclosed) => {
                c.error(&n.text.span(), E::UnclosedVariable { template: name })
            }
            Err(TemplateProblem::Forbidden { variable, what }) => c.error(
                &n.text.span(),
                E::ForbiddenVariable {
                    template: name,
                    variable,
                    what,
                    allowed,
                },
            ),
            Err(TemplateProblem::Unknown { variable }) => c.error(
                &n.text.span(),
                E::UnknownVariable {
                    template: name,
                    variable,
                    allowed,
                },
            ),
        }
    }

    if raw.class.is_empty() {
        c.error(&(0..0), E::NoClasses);
    }
    let mut classes: Vec<Class> = Vec::new();
    let mut first_seen: BTreeMap<String, Range<usize>> = BTreeMap::new();
    for (rank, rc) in raw.class.iter().enumerate() {
        let name_span = rc.get_ref().name.span();
        let name = rc.get_ref().name.get_ref().clone();
        if let Some(first) = first_seen.get(&name) {
            let first = c.map.locate_span(first);
            c.error(&name_span, E::DuplicateClass { name, first });
            continue;
        }
        first_seen.insert(name.clone(), name_span);
        if let Some(class) = class(c, rc.get_ref(), rank, &evidence, &defined) {
            classes.push(class);
        }
    }
    rank_warnings(c, &raw.class, &classes);

    // A template may not name a class in its literal text either.
    for n in &raw.notice {
        let n = n.get_ref();
        if let Some(t) = notices.get(n.name.get_ref()) {
            let text = t.literal_text().to_lowercase();
            for class in &classes {
                if contains_word(&text, &class.name.to_lowercase()) {
                    c.error(
                        &n.text.span(),
                        E::TemplateMentionsClass {
                            template: t.name.clone(),
                            class: class.name.clone(),
                        },
                    );
                }
            }
        }
    }

    let mut overrides = Vec::new();
    let mut ids = BTreeSet::new();
    for ro in &raw.overrides {
        let id = ro.get_ref().id.get_ref().clone();
        if !ids.insert(id.clone()) {
            c.error(&ro.get_ref().id.span(), E::DuplicateOverride { id });
            continue;
        }
        if let Some(o) = parse_override(c, ro.get_ref(), None) {
            overrides.push(o);
        }
    }

    Some(Policy {
        tenant,
        display_name,
        revision,
        evidence,
        notices,
        classes,
        overrides,
        version: super::PolicyVersion("".into()),
    })
}

/// Whole-word match, so a class named `hr` does not trip on "three".
fn contains_word(haystack: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    haystack.match_indices(word).any(|(i, _)| {
        let before = haystack.get(..i).and_then(|h| h.chars().next_back());
        let after = haystack
            .get(i + word.len()..)
            .and_then(|h| h.chars().next());
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

fn evidence_rules(c: &mut Checker<'_>, raw: &RawEvidence, span: &Range<usize>) -> EvidenceRules {
    let mut rules = EvidenceRules::default();
    for rs in &raw.source {
        let rs = rs.get_ref();
        let Some(source) = c.name::<EvidenceSource>(&rs.source) else {
            continue;
        };
        if rules.sources.contains_key(&source) {
            c.error(&rs.source.span(), E::DuplicateSource { origin: source });
            continue;
        }
        let mut verifies = BTreeSet::new();
        for v in &rs.verifies {
            let Some(claim) = c.name::<Claim>(v) else {
                continue;
            };
            if source != EvidenceSource::SignedDeviceReport && claim != Claim::Reachable {
                let what = match claim {
                    Claim::Attestation => "device attestation",
                    _ => "end-to-end encryption (business RCS APIs report none)",
                };
                c.error(
                    &v.span(),
                    E::UntrustedSourceVerifies {
                        origin: source,
                        claim,
                        what,
                    },
                );
                continue;
            }
            verifies.insert(claim);
        }
        let Some(fresh_for) = c.name::<Duration>(&rs.fresh_for) else {
            continue;
        };
        if fresh_for.0 == 0 {
            c.error(&rs.fresh_for.span(), E::ZeroFreshness { origin: source });
        }
        if source == EvidenceSource::SelfReported && verifies.contains(&Claim::Reachable) {
            c.warn(
                &rs.source.span(),
                W::SelfReportedReachability { origin: source },
            );
        }
        if fresh_for > Duration::days(30) {
            c.warn(
                &rs.fresh_for.span(),
                W::LongFreshness {
                    origin: source,
                    fresh_for,
                },
            );
        }
        rules.sources.insert(
            source,
            SourceRule {
                verifies,
                fresh_for,
            },
        );
    }
    for (client, v) in &raw.min_client_version {
        if let Some(version) = c.name::<PlatformVersion>(v) {
            rules.min_client_version.insert(client.clone(), version);
        }
    }
    rules.min_policy_revision = raw.min_policy_revision.as_ref().map(|r| *r.get_ref());
    if rules.e2ee_ceiling() < AssuranceLevel::E2ee {
        c.warn(span, W::NoE2eeSource);
    }
    rules
}

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
    let container = container?;
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
    })
}

fn class(
    c: &mut Checker<'_>,
    raw: &RawClass,
    rank: usize,
    rules: &EvidenceRules,
    notices: &BTreeSet<String>,
) -> Option<Class> {
    let name = c.non_empty(&raw.name, "name");
    let minimum = c.name::<AssuranceLevel>(&raw.minimum);
    let mode = match &raw.mode {
        Some(m) => c.name::<Mode>(m),
        None => Some(Mode::Enforce),
    };
    let retention = c.name::<Duration>(&raw.retention);
    let hold_for = raw.hold_for.as_ref().and_then(|h| c.name::<Duration>(h));
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
    if let (Some(span), Some(Exhausted::Block | Exhausted::Escalate)) =
        (&raw.hold_for, &on_exhausted)
    {
        c.warn(
            &span.span(),
            W::HoldForUnused {
                class: name.clone(),
            },
        );
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

fn rank_warnings(c: &mut Checker<'_>, raw: &[S<RawClass>], classes: &[Class]) {
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

/// Parses one override. `now` is the scenario clock for `expires_in`; policy
/// files have no clock and must give an absolute `expires`.
pub(crate) fn parse_override(
    c: &mut Checker<'_>,
    raw: &RawOverride,
    now: Option<Timestamp>,
) -> Option<Override> {
    let id = c.non_empty(&raw.id, "id");
    let channel = c.name::<Channel>(&raw.channel);
    let reason = c.non_empty(&raw.reason, "reason");
    let author = c.non_empty(&raw.author, "author");
    let text = |v: &Option<S<String>>| v.as_ref().map(|s| s.get_ref().trim().to_owned());
    let mut range = |v: &Option<S<String>>| -> Result<Option<VersionRange>, ()> {
        match v {
            None => Ok(None),
            Some(s) => c.name::<VersionRange>(s).map(Some).ok_or(()),
        }
    };
    let os_version = range(&raw.os_version);
    let client_version = range(&raw.client_version);
    let matcher = LabelMatch {
        os: text(&raw.os),
        os_version: os_version.ok()?,
        client: text(&raw.client),
        client_version: client_version.ok()?,
        carrier: text(&raw.carrier),
    };
    let effect = match (raw.effect.get_ref().as_str(), &raw.force) {
        ("disable", None) => Some(OverrideEffect::Disable),
        ("distrust_e2ee", None) => Some(OverrideEffect::DistrustE2ee),
        ("force_step", Some(f)) => c.name::<Container>(f).map(OverrideEffect::ForceStep),
        ("force_step", None) => {
            c.error(
                &raw.effect.span(),
                E::ForceWithoutContainer { id: id.clone() },
            );
            None
        }
        ("disable" | "distrust_e2ee", Some(f)) => {
            c.error(
                &f.span(),
                E::ForceWithoutEffect {
                    id: id.clone(),
                    effect: raw.effect.get_ref().clone(),
                },
            );
            None
        }
        (other, _) => {
            c.error(
                &raw.effect.span(),
                E::UnknownEffect {
                    given: other.into(),
                },
            );
            None
        }
    };
    let expires = match (&raw.expires, &raw.expires_in, now) {
        (Some(_), Some(s), _) => {
            c.error(&s.span(), E::OverrideTwoExpiries { id: id.clone() });
            None
        }
        (Some(dt), None, _) => match Timestamp::parse_rfc3339(&dt.get_ref().to_string()) {
            Ok(t) => Some(t),
            Err(e) => {
                c.error(&dt.span(), E::Time(e));
                None
            }
        },
        (None, Some(s), Some(now)) => c.name::<Duration>(s).map(|d| now.plus(d)),
        (None, _, _) => {
            c.error(&raw.id.span(), E::OverrideWithoutExpiry { id: id.clone() });
            None
        }
    };
    if matcher.is_empty() {
        c.warn(&raw.id.span(), W::OverrideMatchesAll { id: id.clone() });
    }
    Some(Override {
        id,
        channel: channel?,
        matcher,
        effect: effect?,
        reason,
        author,
        expires: expires?,
    })
}
