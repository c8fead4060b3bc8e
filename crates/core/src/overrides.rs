//! Emergency overrides: rules that match a channel and platform labels and
//! switch a path off, stop trusting its E2EE, or force a route.
//!
//! Labels are matched here and only here. They are descriptive: an override
//! can *lower* trust in a platform, nothing can raise it. A device that did
//! not report a label an override names is matched (fail closed), so an
//! override for `ios >=26.2,<26.4` also covers a phone that hides its OS.

use serde::{Deserialize, Serialize};

use crate::assurance::{Channel, Container};
use crate::evidence::{PlatformLabels, RecipientEvidence};
use crate::time::Timestamp;
use crate::version::VersionRange;

/// What an override does to the paths it matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "effect", content = "container")]
pub enum OverrideEffect {
    /// The channel is off for matching devices.
    Disable,
    /// E2EE evidence on the channel does not count; the path is `transport` at best.
    DistrustE2ee,
    /// Steers traffic off the override's channel: for a class whose ladder
    /// uses that channel above the first step with this container, every
    /// step above that one is skipped. The forced step must still qualify.
    ForceStep(Container),
}

impl OverrideEffect {
    pub fn as_str(&self) -> &'static str {
        match self {
            OverrideEffect::Disable => "disable",
            OverrideEffect::DistrustE2ee => "distrust_e2ee",
            OverrideEffect::ForceStep(_) => "force_step",
        }
    }
}

/// Which devices an override applies to. Every field set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelMatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_version: Option<VersionRange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_version: Option<VersionRange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
}

impl LabelMatch {
    pub fn is_empty(&self) -> bool {
        self.os.is_none()
            && self.os_version.is_none()
            && self.client.is_none()
            && self.client_version.is_none()
            && self.carrier.is_none()
    }

    pub fn matches(&self, labels: &PlatformLabels) -> bool {
        fn text(want: &Option<String>, have: &Option<String>) -> bool {
            match (want, have) {
                (None, _) | (Some(_), None) => true,
                (Some(w), Some(h)) => w.eq_ignore_ascii_case(h),
            }
        }
        fn range(
            want: &Option<VersionRange>,
            have: &Option<crate::version::PlatformVersion>,
        ) -> bool {
            match (want, have) {
                (None, _) | (Some(_), None) => true,
                (Some(w), Some(h)) => w.contains(h),
            }
        }
        text(&self.os, &labels.os)
            && range(&self.os_version, &labels.os_version)
            && text(&self.client, &labels.client)
            && range(&self.client_version, &labels.client_version)
            && text(&self.carrier, &labels.carrier)
    }
}

/// An emergency override, from the policy file or set at run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub id: String,
    pub channel: Channel,
    #[serde(rename = "match")]
    pub matcher: LabelMatch,
    #[serde(flatten)]
    pub effect: OverrideEffect,
    pub reason: String,
    pub author: String,
    pub expires: Timestamp,
}

impl Override {
    /// An override stops applying at its expiry, on every node at once.
    pub fn is_active(&self, now: Timestamp) -> bool {
        now < self.expires
    }

    /// Whether this override covers a recipient as a whole (for recipient-level
    /// channels and for force overrides): it does when it names no labels, or
    /// when any active device matches, so having no devices escapes nothing.
    pub fn covers_recipient(&self, recipient: &RecipientEvidence, now: Timestamp) -> bool {
        self.is_active(now)
            && (self.matcher.is_empty()
                || recipient
                    .active_devices()
                    .any(|d| self.matcher.matches(&d.labels)))
    }

    /// Whether this override applies to a device reached over `channel`.
    pub fn applies(&self, channel: Channel, labels: &PlatformLabels, now: Timestamp) -> bool {
        self.is_active(now) && self.channel == channel && self.matcher.matches(labels)
    }
}

/// The overrides one decision applies — the policy's own, then the
/// run-time ones, in that order (the first that applies wins) — read in
/// place rather than collected. `listed` serves callers that hold them as
/// a list of references already.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OverrideSet<'a> {
    policy: &'a [Override],
    runtime: &'a [Override],
    listed: &'a [&'a Override],
}

impl<'a> OverrideSet<'a> {
    pub(crate) fn of_decision(policy: &'a [Override], runtime: &'a [Override]) -> Self {
        OverrideSet {
            policy,
            runtime,
            listed: &[],
        }
    }

    pub(crate) fn listed(listed: &'a [&'a Override]) -> Self {
        OverrideSet {
            policy: &[],
            runtime: &[],
            listed,
        }
    }

    pub(crate) fn iter(self) -> impl Iterator<Item = &'a Override> + Clone {
        self.policy
            .iter()
            .chain(self.runtime)
            .chain(self.listed.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ios(version: &str) -> PlatformLabels {
        PlatformLabels {
            os: Some("iOS".into()),
            os_version: Some(version.parse().unwrap()),
            ..PlatformLabels::default()
        }
    }

    fn distrust() -> Override {
        Override {
            id: "ios-26.2".into(),
            channel: Channel::Rcs,
            matcher: LabelMatch {
                os: Some("ios".into()),
                os_version: Some(">=26.2,<26.4".parse().unwrap()),
                ..LabelMatch::default()
            },
            effect: OverrideEffect::DistrustE2ee,
            reason: "vendor advisory".into(),
            author: "sec-oncall".into(),
            expires: Timestamp(1000),
        }
    }

    #[test]
    fn matches_os_case_insensitively_within_the_range() {
        let o = distrust();
        assert!(o.applies(Channel::Rcs, &ios("26.3"), Timestamp(0)));
        assert!(!o.applies(Channel::Rcs, &ios("26.4"), Timestamp(0)));
        assert!(!o.applies(Channel::InApp, &ios("26.3"), Timestamp(0)));
    }

    #[test]
    fn a_recipient_is_covered_by_a_label_free_override_even_without_devices() {
        let nobody = RecipientEvidence::default();
        let mut o = distrust();
        assert!(
            !o.covers_recipient(&nobody, Timestamp(0)),
            "labels need a matching device"
        );
        o.matcher = LabelMatch::default();
        assert!(o.covers_recipient(&nobody, Timestamp(0)));
        assert!(!o.covers_recipient(&nobody, Timestamp(1000)), "expired");
    }

    #[test]
    fn expired_overrides_do_not_apply() {
        assert!(!distrust().applies(Channel::Rcs, &ios("26.3"), Timestamp(1000)));
    }

    #[test]
    fn missing_labels_match_so_hiding_the_os_does_not_escape_an_override() {
        assert!(distrust().applies(Channel::Rcs, &PlatformLabels::default(), Timestamp(0)));
        let android = PlatformLabels {
            os: Some("android".into()),
            ..PlatformLabels::default()
        };
        assert!(!distrust().applies(Channel::Rcs, &android, Timestamp(0)));
    }
}
