//! Raw policy → [`Policy`]: every check `ladder policy check` performs.
//!
//! Validation collects every error it can find rather than stopping at the
//! first, each pinned to the span of the value at fault. `class.rs` checks
//! classes and their ladders, `overrides.rs` emergency overrides; this file
//! holds the checker, the top level and the evidence rules.

mod class;
mod overrides;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::str::FromStr;

use super::diagnostic::{Diagnostic, PolicyErrorKind as E, PolicyWarningKind as W};
use super::notice::{NoticeTemplate, NoticeVariable, TemplateProblem, parse_template};
use super::raw::{RawEvidence, RawPolicy, S};
use super::{Class, Parsed, Policy, PolicyErrors, SourceMap};
use crate::assurance::{AssuranceLevel, Claim, EvidenceSource};
use crate::evidence::{EvidenceRules, SourceRule};
use crate::overrides::Override;
use crate::time::{Duration, Timestamp};
use crate::version::PlatformVersion;

use class::{class, rank_warnings};
pub(crate) use overrides::parse_override;

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

    /// A name others refer to (tenant, class, template, override id): it
    /// shows up in tables, logs and the audit log, so it is kept plain.
    fn identifier(&mut self, s: &S<String>, what: &'static str) -> String {
        let v = s.get_ref();
        let mut chars = v.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && v.len() <= 64;
        if !ok {
            self.error(
                &s.span(),
                E::InvalidName {
                    what,
                    given: v.clone(),
                },
            );
        }
        v.clone()
    }

    /// A duration that must be longer than zero.
    fn positive(&mut self, s: &S<String>, field: &'static str) -> Option<Duration> {
        let d = self.name::<Duration>(s)?;
        if d.0 == 0 {
            self.error(&s.span(), E::ZeroDuration { field });
            return None;
        }
        Some(d)
    }
}

/// A TOML error's message, naming the key where toml does not.
pub(crate) fn syntax_message(e: &toml::de::Error, map: &SourceMap) -> String {
    let message = e.message().trim();
    match (message, e.span().and_then(|s| map.snippet(&s))) {
        ("duplicate key", Some(key)) => format!("duplicate key `{}`", key.trim()),
        _ => message.to_owned(),
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
            c.error(&span, E::Syntax(syntax_message(&e, map)));
            return Err(PolicyErrors(c.errors));
        }
    };
    let mut c = Checker::new(source_name, map);
    let policy = build(&mut c, raw);
    match policy {
        Some(p) if c.errors.is_empty() => match p.seal() {
            Ok(policy) => Ok(Parsed {
                policy,
                warnings: c.warnings,
            }),
            Err(e) => {
                c.error(
                    &(0..0),
                    E::Internal(format!("the policy could not be encoded canonically: {e}")),
                );
                Err(PolicyErrors(c.errors))
            }
        },
        _ => Err(PolicyErrors(c.errors)),
    }
}

/// What a policy may set `override_max_lifetime` to: an override is an
/// emergency measure, renewed while the emergency lasts, never a
/// permanent setting.
const OVERRIDE_LIFETIME_RANGE: (Duration, Duration) = (Duration::hours(1), Duration::days(365));

fn build(c: &mut Checker<'_>, raw: RawPolicy) -> Option<Policy> {
    let tenant = c.identifier(&raw.tenant, "tenant");
    let display_name = c.non_empty(&raw.display_name, "display_name");
    let revision = raw.revision.map_or(1, |r| *r.get_ref());
    let override_max_lifetime = raw.override_max_lifetime.as_ref().and_then(|s| {
        let d = c.positive(s, "override_max_lifetime")?;
        let (min, max) = OVERRIDE_LIFETIME_RANGE;
        if d < min || d > max {
            c.error(
                &s.span(),
                E::DurationOutOfRange {
                    field: "override_max_lifetime",
                    given: d,
                    min,
                    max,
                },
            );
            return None;
        }
        Some(d)
    });
    let evidence = evidence_rules(c, raw.evidence.get_ref(), &raw.evidence.span());

    let mut notices = BTreeMap::new();
    let mut defined: BTreeSet<String> = BTreeSet::new();
    for n in &raw.notice {
        let n = n.get_ref();
        let name = c.identifier(&n.name, "notice template name");
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

    // A template may not name a class in its literal text either, however
    // it is spelt (see `names`).
    for n in &raw.notice {
        let n = n.get_ref();
        if let Some(t) = notices.get(n.name.get_ref()) {
            let text = words(&t.literal_text());
            for class in &classes {
                if names(&text, &class.name) {
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
    // Different wording per class lets whoever carries the notice tell the
    // classes apart.
    let used: BTreeSet<&str> = classes
        .iter()
        .filter(|cl| {
            cl.ladder
                .iter()
                .chain(&cl.legacy)
                .any(|s| !s.notifiers.is_empty())
        })
        .map(|cl| cl.notice.as_deref().unwrap_or("default"))
        .collect();
    if used.len() > 1 {
        let names: Vec<String> = used.iter().map(|n| format!("`{n}`")).collect();
        let span = raw.notice.first().map_or(0..0, |n| n.span());
        c.warn(
            &span,
            W::DistinctNoticeTemplates {
                templates: names.join(", "),
            },
        );
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

    let branding = raw
        .branding
        .as_ref()
        .and_then(|b| super::branding::branding(c, b.get_ref()));

    Some(Policy {
        tenant,
        display_name,
        revision,
        override_max_lifetime,
        evidence,
        notices,
        classes,
        overrides,
        branding,
        version: super::PolicyVersion("".into()),
        compiled: super::compiled::Compiled::default(),
    })
}

/// Words of a text: runs of letters and digits, lowercased, split also
/// where a lowercase letter meets an uppercase one (`LegalNotice`).
fn words(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase() && prev_lower && !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            prev_lower = c.is_lowercase();
            current.extend(c.to_lowercase());
        } else {
            prev_lower = false;
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Whether `text` names `name`: some run of consecutive words, glued
/// together, spells the name with its separators removed (or its plural).
/// "legal notice", "Legal.Notice", "LegalNotice", "legalnotices" and
/// "l-e-g-a-l notice" all name `legal_notice`; "three" does not name `hr`,
/// since a match must start and end on word boundaries.
fn names(text: &[String], name: &str) -> bool {
    let target: String = words(name).concat();
    if target.is_empty() {
        return false;
    }
    let plural = format!("{target}s");
    (0..text.len()).any(|start| {
        let mut glued = String::new();
        text.iter().skip(start).any(|w| {
            glued.push_str(w);
            glued == target || glued == plural
        }) && !glued.is_empty()
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
        let key = client.to_lowercase();
        if rules.min_client_version.contains_key(&key) {
            c.error(
                &v.span(),
                E::DuplicateClient {
                    client: client.clone(),
                },
            );
            continue;
        }
        if let Some(version) = c.name::<PlatformVersion>(v) {
            rules.min_client_version.insert(key, version);
        }
    }
    rules.min_policy_revision = raw.min_policy_revision.as_ref().map(|r| *r.get_ref());
    rules.enrolment_fresh_for = raw
        .enrolment_fresh_for
        .as_ref()
        .and_then(|d| c.positive(d, "enrolment_fresh_for"));
    if rules.e2ee_ceiling() < AssuranceLevel::E2ee {
        c.warn(span, W::NoE2eeSource);
    }
    rules
}

/// Parses one emergency override given on its own (by the API or the CLI),
/// as a TOML table with the fields of a policy file's `[[override]]`.
/// `expires_in` is measured from `now`.
pub(super) fn parse_override_text(
    text: &str,
    source_name: &str,
    now: Timestamp,
) -> Result<Override, PolicyErrors> {
    let map = SourceMap::new(text);
    let raw: crate::policy::raw::RawOverride = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let mut c = Checker::new(source_name, &map);
            c.error(&span, E::Syntax(syntax_message(&e, &map)));
            return Err(PolicyErrors(c.errors));
        }
    };
    let mut c = Checker::new(source_name, &map);
    match overrides::parse_override(&mut c, &raw, Some(now)) {
        Some(o) if c.errors.is_empty() => Ok(o),
        _ => Err(PolicyErrors(c.errors)),
    }
}
