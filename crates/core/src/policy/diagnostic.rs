//! Errors and warnings about a policy, each pinned to a line and column.
//!
//! Everything a tenant can get wrong in a policy file is a [`PolicyErrorKind`]
//! with a message in the project's style: lowercase, user input in backticks.
//! The file name is carried by the caller-supplied source name, so the core
//! never touches a file.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use crate::assurance::{AssuranceLevel, Claim, Container, EvidenceSource, UnknownName};
use crate::time::{Duration, TimeError};
use crate::version::VersionError;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Maps byte offsets in a source text to lines and columns (columns count
/// characters, not bytes, so they match what an editor shows).
#[derive(Debug, Clone)]
pub struct SourceMap {
    text: Arc<str>,
    line_starts: Vec<usize>,
    /// Added to every offset, for a policy embedded in a scenario file.
    base: usize,
}

impl SourceMap {
    pub fn new(text: &str) -> SourceMap {
        SourceMap::embedded(text, 0)
    }

    /// For text that sits at byte `base` inside `outer`: locations are
    /// reported in `outer`'s lines and columns.
    pub fn embedded(outer: &str, base: usize) -> SourceMap {
        SourceMap {
            text: outer.into(),
            line_starts: line_starts(outer),
            base,
        }
    }

    pub fn locate(&self, offset: usize) -> Location {
        let offset = offset + self.base;
        let line = self.line_starts.partition_point(|s| *s <= offset).max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset.min(self.text.len()))
            .map_or(offset - start, |t| t.chars().count());
        Location {
            line,
            column: column + 1,
        }
    }

    pub fn locate_span(&self, span: &Range<usize>) -> Location {
        self.locate(span.start)
    }

    /// The source text under a span, for messages that must name it.
    pub fn snippet(&self, span: &Range<usize>) -> Option<&str> {
        self.text.get(span.start + self.base..span.end + self.base)
    }
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// What is wrong with a policy. Each variant but `Internal` is a distinct
/// mistake a tenant can make.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyErrorKind {
    #[error("{0}")]
    Syntax(String),
    #[error(
        "client `{client}` has more than one minimum version (client names compare without case)"
    )]
    DuplicateClient { client: String },
    /// A bug in ladder, not in the policy.
    #[error("internal error: {0}; please report this bug")]
    Internal(String),
    #[error(transparent)]
    UnknownName(#[from] UnknownName),
    #[error(transparent)]
    Time(#[from] TimeError),
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error(
        "{what} `{given}` is not valid: use up to 64 ASCII letters, digits, `_`, `-` or `.`, starting with a letter or digit"
    )]
    InvalidName { what: &'static str, given: String },
    #[error("`{field}` must be longer than zero")]
    ZeroDuration { field: &'static str },
    #[error("`{field}` is {given}; it must be between {min} and {max}")]
    DurationOutOfRange {
        field: &'static str,
        given: Duration,
        min: Duration,
        max: Duration,
    },
    #[error("`{field}` must not be empty")]
    EmptyField { field: &'static str },
    #[error("`{field}` {reason}")]
    InvalidBranding { field: &'static str, reason: String },
    #[error(
        "`branding.text` `{text}` on `branding.accent` `{accent}` has a contrast of {ratio}:1; it must be at least 4.5:1 so that recipients can read it"
    )]
    LowContrast {
        accent: String,
        text: String,
        ratio: String,
    },
    #[error("the policy defines no class; add at least one `[[class]]`")]
    NoClasses,
    #[error("duplicate class `{name}` (first defined at {first})")]
    DuplicateClass { name: String, first: Location },
    #[error("class `{class}` has an empty ladder; list at least one step")]
    EmptyLadder { class: String },
    #[error(
        "class `{class}` can never be satisfied: its minimum is `{minimum}`, but no step can carry more than `{best}` under this policy's evidence rules"
    )]
    ClassUnsatisfiable {
        class: String,
        minimum: AssuranceLevel,
        best: AssuranceLevel,
    },
    #[error(
        "step `{container}` of class `{class}` can never reach `{required}`: it carries `{ceiling}` at best under this policy's evidence rules"
    )]
    StepBelowMinimum {
        class: String,
        container: Container,
        ceiling: AssuranceLevel,
        required: AssuranceLevel,
    },
    #[error("container `{container}` delivers by itself and takes no notifiers")]
    NotifierNotAccepted { container: Container },
    #[error(
        "container `portal` needs at least one notifier, or the recipient never learns of the message"
    )]
    PortalWithoutNotifier,
    #[error("`step_up` is a portal setting; container `{container}` sends no one-time code")]
    StepUpWithoutPortal { container: Container },
    #[error(
        "class `{class}` must reach `{required}`, so its portal needs a one-time code: `step_up = \"none\"` is allowed only where the minimum is `none`"
    )]
    StepUpOffAboveNone {
        class: String,
        required: AssuranceLevel,
    },
    #[error("notifier `{notifier}` is listed twice in this step")]
    DuplicateNotifier { notifier: String },
    #[error(
        "notice template `{template}` uses `{{{variable}}}`, which would put {what} in a notice; notices may use only {allowed}"
    )]
    ForbiddenVariable {
        template: String,
        variable: String,
        what: &'static str,
        allowed: String,
    },
    #[error(
        "notice template `{template}` uses unknown variable `{{{variable}}}`; notices may use only {allowed}"
    )]
    UnknownVariable {
        template: String,
        variable: String,
        allowed: String,
    },
    #[error("notice template `{template}` has an unclosed `{{`")]
    UnclosedVariable { template: String },
    #[error(
        "notice template `{template}` mentions class `{class}`; a notice must not reveal the message's class"
    )]
    TemplateMentionsClass { template: String, class: String },
    #[error("duplicate notice template `{name}`")]
    DuplicateTemplate { name: String },
    #[error("class `{class}` uses notice template `{template}`, which is not defined")]
    UnknownTemplate { class: String, template: String },
    #[error(
        "class `{class}` has notifiers but no notice template; set `notice` or define a template named `default`"
    )]
    MissingTemplate { class: String },
    #[error("class `{class}` is in `observe` mode but has no `legacy` route to follow meanwhile")]
    ObserveWithoutLegacy { class: String },
    #[error("class `{class}` holds when no step qualifies but sets no `hold_for` deadline")]
    HoldWithoutDeadline { class: String },
    #[error("`after_hold` must be `block` or `escalate`, not `{given}`")]
    BadAfterHold { given: String },
    #[error("`on_exhausted` must be `block`, `escalate` or `hold`, not `{given}`")]
    BadOnExhausted { given: String },
    #[error("duplicate override `{id}`")]
    DuplicateOverride { id: String },
    #[error("override `{id}` has effect `force_step` but no `force` container")]
    ForceWithoutContainer { id: String },
    #[error("override `{id}` sets `force` but its effect is `{effect}`, not `force_step`")]
    ForceWithoutEffect { id: String, effect: String },
    #[error(
        "unknown override effect `{given}`; expected one of: disable, distrust_e2ee, force_step"
    )]
    UnknownEffect { given: String },
    #[error(
        "override `{id}` steers traffic off channel `{container}` onto `{container}` and could never apply; set `channel` to the channel to steer away from"
    )]
    ForceOntoOwnChannel { id: String, container: Container },
    #[error("override `{id}` needs an expiry: set `expires` to a date-time with an offset")]
    OverrideWithoutExpiry { id: String },
    #[error("override `{id}` sets both `expires` and `expires_in`; keep one")]
    OverrideTwoExpiries { id: String },
    #[error(
        "evidence source `{origin}` cannot verify `{claim}`: only a signed device report proves {what}"
    )]
    UntrustedSourceVerifies {
        origin: EvidenceSource,
        claim: Claim,
        what: &'static str,
    },
    #[error("evidence source `{origin}` has more than one rule")]
    DuplicateSource { origin: EvidenceSource },
    #[error(
        "evidence source `{origin}` has `fresh_for = \"0s\"`; evidence from it would never count"
    )]
    ZeroFreshness { origin: EvidenceSource },
}

/// Legal, but probably not what the tenant meant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyWarningKind {
    #[error(
        "observe class `{class}` has legacy route `{container}`, which can never reach its minimum `{minimum}`; those messages will follow enforcement instead"
    )]
    LegacyBelowMinimum {
        class: String,
        container: Container,
        minimum: AssuranceLevel,
    },
    #[error("class `{class}` is in `enforce` mode; its `legacy` route is ignored")]
    LegacyIgnored { class: String },
    #[error(
        "class `{class}` ranks above `{lower}` but requires less (`{minimum}` < `{lower_minimum}`); classes are ranked in file order, least sensitive first"
    )]
    RankInversion {
        class: String,
        minimum: AssuranceLevel,
        lower: String,
        lower_minimum: AssuranceLevel,
    },
    #[error("`{origin}` verifies reachability: unsigned claims will route messages")]
    SelfReportedReachability { origin: EvidenceSource },
    #[error(
        "evidence from `{origin}` stays fresh for {fresh_for}; stale E2EE claims outlive client and OS changes"
    )]
    LongFreshness {
        origin: EvidenceSource,
        fresh_for: Duration,
    },
    #[error("`{field}` is set but class `{class}` does not hold")]
    HoldSettingUnused { class: String, field: &'static str },
    #[error("override `{id}` matches no platform label: it applies to every device on its channel")]
    OverrideMatchesAll { id: String },
    #[error(
        "class `{class}` lists step `{container}` with the same notifiers twice; the second can only be reached after the first failed"
    )]
    DuplicateStep { class: String, container: Container },
    #[error(
        "step `require = \"{require}\"` is not above class `{class}`'s minimum `{minimum}` and has no effect"
    )]
    RedundantRequire {
        class: String,
        require: AssuranceLevel,
        minimum: AssuranceLevel,
    },
    #[error(
        "class `{class}` has minimum `{minimum}` and a `sms` step: its payload may travel in plaintext"
    )]
    PlaintextPayload {
        class: String,
        minimum: AssuranceLevel,
    },
    #[error(
        "class `{class}` lets its portal send the one-time code by the notice's own channel: whoever holds that inbox gets both the link and the code"
    )]
    StepUpAnyChannel { class: String },
    #[error(
        "class `{class}` has a portal that opens without a one-time code: whoever has the link reads the message"
    )]
    NoStepUp { class: String },
    #[error("no evidence source verifies `e2ee`: every payload will travel at `transport` at best")]
    NoE2eeSource,
    #[error(
        "classes use different notice templates ({templates}); whoever carries a notice can tell those classes apart by its wording"
    )]
    DistinctNoticeTemplates { templates: String },
}

/// A diagnostic pinned to a place in a named source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic<K> {
    pub source_name: String,
    pub location: Location,
    pub kind: K,
}

pub type PolicyError = Diagnostic<PolicyErrorKind>;
pub type PolicyWarning = Diagnostic<PolicyWarningKind>;

impl fmt::Display for Diagnostic<PolicyErrorKind> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: error: {}",
            self.source_name, self.location, self.kind
        )
    }
}

impl fmt::Display for Diagnostic<PolicyWarningKind> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: warning: {}",
            self.source_name, self.location, self.kind
        )
    }
}

impl std::error::Error for Diagnostic<PolicyErrorKind> {}

/// Every error found in a policy (validation does not stop at the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}
