//! A tenant's policy: the validated model, and the only way to build one.
//!
//! Parse, don't validate: [`Policy::parse`] turns TOML text into a `Policy`
//! or a list of located errors, and every function that routes takes a
//! `&Policy`, so a decision can never see an unchecked policy. A policy's
//! version is the SHA-256 of its canonical JSON, so reformatting or
//! re-commenting the file keeps the version; changing any rule changes it.

pub mod branding;
mod compiled;
mod diagnostic;
mod notice;
pub(crate) mod raw;
pub mod rollout;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use diagnostic::{
    Diagnostic, Location, PolicyError, PolicyErrorKind, PolicyErrors, PolicyWarning,
    PolicyWarningKind, SourceMap,
};
pub use notice::{NoticeTemplate, NoticeVariable, RenderedNotice};
pub(crate) use validate::{Checker, parse_override, syntax_message};

use crate::assurance::{AssuranceLevel, Container, Mode, Notifier, StepUp};
use crate::evidence::EvidenceRules;
use crate::overrides::Override;
use crate::time::Duration;

/// One rung of a ladder: a container that carries the payload, and the
/// notifiers that tell the recipient to go and look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub container: Container,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifiers: Vec<Notifier>,
    /// A level this step demands above the class minimum (e.g. RCS only when E2EE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require: Option<AssuranceLevel>,
    /// For a portal: where its one-time code may go. A portal step only
    /// qualifies when the recipient can receive that code, so it is part of
    /// the decision, not only of the portal. Left out of the canonical form
    /// at its default, so policies that do not set it keep their version.
    #[serde(default, skip_serializing_if = "StepUp::is_default")]
    pub step_up: StepUp,
}

impl Step {
    /// `portal+email_notice+sms_notice`, the way scenarios and tables name a step.
    pub fn route_name(&self) -> String {
        std::iter::once(self.container.as_str())
            .chain(self.notifiers.iter().map(|n| n.as_str()))
            .collect::<Vec<_>>()
            .join("+")
    }
}

/// What happens when no step qualifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Exhausted {
    Block,
    Escalate,
    /// Wait for a capability to appear; at the deadline, `then`.
    Hold {
        hold_for: Duration,
        then: AfterHold,
    },
}

/// What a hold turns into at its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterHold {
    Block,
    Escalate,
}

/// A tenant-defined sensitivity class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Class {
    pub name: String,
    /// 0 for the least sensitive class; file order.
    pub rank: usize,
    pub minimum: AssuranceLevel,
    pub ladder: Vec<Step>,
    pub on_exhausted: Exhausted,
    pub mode: Mode,
    /// The route followed in `observe` mode (always set when observing).
    pub legacy: Option<Step>,
    pub confirm_downgrade: bool,
    pub retention: Duration,
    /// Name of the notice template its notifiers use.
    pub notice: Option<String>,
}

impl Class {
    /// The level a step must reach to carry this class's payload.
    pub fn required(&self, step: &Step) -> AssuranceLevel {
        step.require.map_or(self.minimum, |r| r.max(self.minimum))
    }
}

/// The content hash that names a policy version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PolicyVersion(Arc<str>);

impl PolicyVersion {
    /// The first 12 hex digits, for tables and logs.
    pub fn short(&self) -> &str {
        self.0.get(7..19).unwrap_or(&self.0)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PolicyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How long an override may live when the policy does not say.
pub const DEFAULT_OVERRIDE_MAX_LIFETIME: Duration = Duration::days(30);

/// An override set to expire beyond the policy's maximum lifetime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "override `{id}` expires at {expires}, more than {max} from now (the policy's `override_max_lifetime`); set a nearer expiry and renew it while the emergency lasts"
)]
pub struct OverrideTooLong {
    pub id: String,
    pub expires: crate::time::Timestamp,
    pub max: Duration,
}

/// A validated tenant policy. Only [`Policy::parse`] makes one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    tenant: String,
    display_name: String,
    revision: u32,
    /// Unset means the default, so policies that do not set it keep the
    /// version they had before the setting existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    override_max_lifetime: Option<Duration>,
    evidence: EvidenceRules,
    notices: BTreeMap<String, NoticeTemplate>,
    classes: Vec<Class>,
    overrides: Vec<Override>,
    /// Unset means the neutral default look, and keeps the version
    /// policies had before branding existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    branding: Option<branding::Branding>,
    #[serde(skip)]
    version: PolicyVersion,
    /// Lookups a decision would otherwise redo per message; derived from
    /// the fields above when the policy is sealed.
    #[serde(skip)]
    compiled: compiled::Compiled,
}

/// A parsed policy and the warnings it raised.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub policy: Policy,
    pub warnings: Vec<PolicyWarning>,
}

impl Policy {
    /// Parses and validates policy text. `source_name` (usually the file
    /// path) prefixes every diagnostic.
    pub fn parse(text: &str, source_name: &str) -> Result<Parsed, PolicyErrors> {
        Self::parse_mapped(text, source_name, &SourceMap::new(text))
    }

    /// As [`Policy::parse`], for text embedded in a larger file.
    pub fn parse_mapped(
        text: &str,
        source_name: &str,
        map: &SourceMap,
    ) -> Result<Parsed, PolicyErrors> {
        validate::parse(text, source_name, map)
    }

    /// Parses one emergency override given on its own — by the API or
    /// `ladder override set` — as a TOML table with the fields of a policy
    /// file's `[[override]]`; `expires_in` counts from `now`. Validated
    /// exactly as overrides inside a policy are.
    pub fn parse_override(
        text: &str,
        source_name: &str,
        now: crate::time::Timestamp,
    ) -> Result<crate::overrides::Override, PolicyErrors> {
        validate::parse_override_text(text, source_name, now)
    }

    fn seal(mut self) -> Result<Policy, serde_json::Error> {
        let canonical = serde_json::to_vec(&self)?;
        let digest = Sha256::digest(&canonical);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.version = PolicyVersion(format!("sha256:{hex}").into());
        self.compiled = compiled::Compiled::new(&self.classes, &self.evidence);
        Ok(self)
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }
    pub fn display_name(&self) -> &str {
        &self.display_name
    }
    /// How the portal looks for this tenant: the policy's `[branding]`,
    /// or the neutral default.
    pub fn branding(&self) -> branding::Branding {
        self.branding.clone().unwrap_or_default()
    }
    /// The name the portal shows: `branding.name`, else `display_name`.
    pub fn portal_name(&self) -> &str {
        self.branding
            .as_ref()
            .and_then(|b| b.name())
            .unwrap_or(&self.display_name)
    }
    /// The tenant's own revision counter; device reports name the revision
    /// they support.
    pub fn revision(&self) -> u32 {
        self.revision
    }
    /// How far ahead of the moment it is set an emergency override may
    /// expire: the policy's `override_max_lifetime`, 30 days by default.
    /// Longer emergencies renew the override, audited each time.
    pub fn override_max_lifetime(&self) -> Duration {
        self.override_max_lifetime
            .unwrap_or(DEFAULT_OVERRIDE_MAX_LIFETIME)
    }

    /// Checks that `rule`, set at `now`, expires within
    /// [`Policy::override_max_lifetime`] of it.
    pub fn check_override_lifetime(
        &self,
        rule: &Override,
        now: crate::time::Timestamp,
    ) -> Result<(), OverrideTooLong> {
        let max = self.override_max_lifetime();
        if rule.expires > now.plus(max) {
            return Err(OverrideTooLong {
                id: rule.id.clone(),
                expires: rule.expires,
                max,
            });
        }
        Ok(())
    }

    pub fn version(&self) -> &PolicyVersion {
        &self.version
    }
    pub fn evidence(&self) -> &EvidenceRules {
        &self.evidence
    }
    pub fn classes(&self) -> &[Class] {
        &self.classes
    }
    pub fn class(&self, name: &str) -> Option<&Class> {
        self.class_index(name).and_then(|i| self.classes.get(i))
    }
    /// The index in [`Policy::classes`] of the class named `name`.
    pub(crate) fn class_index(&self, name: &str) -> Option<usize> {
        self.compiled.class_index(name)
    }
    /// The route names of class `index`'s ladder steps, in ladder order.
    pub(crate) fn route_names(&self, index: usize) -> &[String] {
        self.compiled.routes(index)
    }
    /// The evidence rules as a decision reads them.
    pub(crate) fn terms(&self) -> crate::evidence::Terms<'_> {
        crate::evidence::Terms::compiled(&self.evidence, &self.compiled.evidence)
    }
    pub fn overrides(&self) -> &[Override] {
        &self.overrides
    }
    pub fn notice(&self, name: &str) -> Option<&NoticeTemplate> {
        self.notices.get(name)
    }
    pub fn notices(&self) -> impl Iterator<Item = &NoticeTemplate> {
        self.notices.values()
    }

    /// The template a class's notifiers use.
    pub fn notice_for(&self, class: &Class) -> Option<&NoticeTemplate> {
        self.notices
            .get(class.notice.as_deref().unwrap_or("default"))
    }

    /// One line for `ladder policy check`.
    pub fn summary(&self) -> String {
        let observing = self
            .classes
            .iter()
            .filter(|c| c.mode == Mode::Observe)
            .count();
        format!(
            "tenant `{}` revision {}: {} classes ({} observing), {} notice templates, {} overrides; version {}",
            self.tenant,
            self.revision,
            self.classes.len(),
            observing,
            self.notices.len(),
            self.overrides.len(),
            self.version
        )
    }
}

#[cfg(test)]
mod tests;
