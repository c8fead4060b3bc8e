//! Capability evidence and how the policy credits it.
//!
//! Evidence is what a device proved (a signed report over a one-time
//! challenge) or what a provider observed (a capability check), each with
//! where it came from and when. [`credit`] turns one device's evidence for one
//! transport into an assurance level, given the policy's [`EvidenceRules`],
//! the active overrides and `now`. Platform labels never enter that
//! computation except through an override, which can only lower trust.

mod grade;
mod table;
mod terms;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::assurance::{AssuranceLevel, Claim, E2eeState, EvidenceSource, Transport};
use crate::overrides::{Override, OverrideSet};
use crate::reason::SkipReason;
use crate::time::{Duration, Timestamp};
use crate::version::PlatformVersion;

pub(crate) use grade::Shortfall;
pub(crate) use table::{Cell, CreditTable, Row};
pub(crate) use terms::{CompiledEvidence, Terms};

/// A device's identifier. Cheap to clone: decisions copy it into every
/// reason and floor cause that names the device.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeviceId(Arc<str>);

impl DeviceId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for DeviceId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for DeviceId {
    fn from(s: &str) -> Self {
        DeviceId(s.into())
    }
}

impl From<String> for DeviceId {
    fn from(s: String) -> Self {
        DeviceId(s.into())
    }
}

impl From<&String> for DeviceId {
    fn from(s: &String) -> Self {
        DeviceId(s.as_str().into())
    }
}

impl PartialEq<str> for DeviceId {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for DeviceId {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for DeviceId {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

/// Descriptive labels: matched by overrides, never counted as evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformLabels {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_version: Option<PlatformVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_version: Option<PlatformVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
}

/// The client that signed a device's last report, as it stated inside the
/// signed bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    pub name: String,
    pub version: PlatformVersion,
    /// The policy revision the client knows how to honour.
    pub policy_revision: u32,
}

/// One observation of one transport on one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportEvidence {
    pub reachable: bool,
    pub e2ee: E2eeState,
    /// Whether the device's attestation accompanied this observation.
    pub attested: bool,
    pub source: EvidenceSource,
    pub observed_at: Timestamp,
    /// The client that signed this observation, for signed reports. Each
    /// piece of evidence is judged by the client that made it, so two
    /// clients on one device (an RCS client and the tenant's app) neither
    /// erase nor vouch for each other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientInfo>,
}

/// Everything known about one enrolled device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceEvidence {
    pub id: DeviceId,
    pub labels: PlatformLabels,
    pub enrolled_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// The client of the last accepted signed report, for display. Evidence
    /// that does not name its own client is judged by this one.
    pub client: Option<ClientInfo>,
    pub transports: BTreeMap<Transport, TransportEvidence>,
}

impl DeviceEvidence {
    pub fn new(id: impl Into<DeviceId>, labels: PlatformLabels, enrolled_at: Timestamp) -> Self {
        DeviceEvidence {
            id: id.into(),
            labels,
            enrolled_at,
            revoked_at: None,
            client: None,
            transports: BTreeMap::new(),
        }
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

/// A recipient-level contact point (an e-mail address or a phone number on
/// file): that one exists and who vouched for it when, never the address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactEvidence {
    pub source: EvidenceSource,
    pub observed_at: Timestamp,
}

impl ContactEvidence {
    /// Whether the policy counts this contact as reachable now: its source
    /// verifies reachability and the observation is still fresh. What a
    /// notice, sent now, needs.
    pub fn verified(&self, rules: &EvidenceRules, now: Timestamp) -> bool {
        self.trusted(rules)
            && rules
                .sources
                .get(&self.source)
                .is_some_and(|r| now < self.observed_at.plus(r.fresh_for))
    }

    /// Whether the contact comes from a source the policy trusts for
    /// reachability, however long ago. What a portal's one-time code needs:
    /// the code is sent when the recipient opens the link, up to the link's
    /// lifetime after the decision, so freshness at decision time would say
    /// nothing about then — and contact points on file are not re-observed.
    pub fn trusted(&self, rules: &EvidenceRules) -> bool {
        rules
            .sources
            .get(&self.source)
            .is_some_and(|r| r.verifies.contains(&Claim::Reachable))
    }
}

/// All evidence about one recipient: their devices and their contact
/// points. The e-mail address carries e-mail notices and portal codes; the
/// phone number carries portal codes by SMS (SMS notices and payloads go by
/// what the devices proved).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientEvidence {
    pub devices: Vec<DeviceEvidence>,
    pub email: Option<ContactEvidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<ContactEvidence>,
}

impl RecipientEvidence {
    pub fn active_devices(&self) -> impl Iterator<Item = &DeviceEvidence> {
        self.devices.iter().filter(|d| !d.is_revoked())
    }
}

/// How much one evidence source is trusted, and for how long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRule {
    pub verifies: BTreeSet<Claim>,
    pub fresh_for: Duration,
}

/// The policy's evidence rules. A source without a rule verifies nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRules {
    pub sources: BTreeMap<EvidenceSource, SourceRule>,
    /// Per client name: reports from older clients count as stale.
    pub min_client_version: BTreeMap<String, PlatformVersion>,
    pub min_policy_revision: Option<u32>,
    /// How long after enrolment a device can still be credited
    /// `e2ee_attested`: an old enrolment must be renewed for the top level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolment_fresh_for: Option<Duration>,
}

impl EvidenceRules {
    pub fn verifies(&self, source: EvidenceSource, claim: Claim) -> bool {
        self.sources
            .get(&source)
            .is_some_and(|r| r.verifies.contains(&claim))
    }

    /// The highest level any evidence could ever earn on an E2EE-capable
    /// container under these rules.
    pub fn e2ee_ceiling(&self) -> AssuranceLevel {
        let any = |c| EvidenceSource::ALL.iter().any(|s| self.verifies(*s, c));
        if any(Claim::E2ee) && any(Claim::Attestation) {
            AssuranceLevel::E2eeAttested
        } else if any(Claim::E2ee) {
            AssuranceLevel::E2ee
        } else {
            AssuranceLevel::Transport
        }
    }
}

/// What one device's evidence for one transport is worth right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credit {
    /// Cannot be used; the reason says why.
    Unusable(SkipReason),
    /// Reachable at `level`; `shortfall` says why it is not higher, where it
    /// could have been.
    Reachable {
        level: AssuranceLevel,
        shortfall: Option<SkipReason>,
    },
}

impl Credit {
    pub fn level(&self) -> Option<AssuranceLevel> {
        match self {
            Credit::Unusable(_) => None,
            Credit::Reachable { level, .. } => Some(*level),
        }
    }
}

/// Credits one device's evidence for one transport.
///
/// Deny by default: missing, stale, unverified or overridden evidence is
/// unusable, and E2EE counts only when a source the policy trusts for the
/// `e2ee` claim says `verified`. The same computation a decision makes
/// (`grade.rs`), with owned reasons.
pub fn credit(
    rules: &EvidenceRules,
    device: &DeviceEvidence,
    transport: Transport,
    overrides: &[&Override],
    now: Timestamp,
) -> Credit {
    let terms = Terms::new(rules);
    grade::grade(
        &terms,
        device,
        transport,
        overrides.iter().copied(),
        || terms.client_staleness(device.client.as_ref()),
        now,
    )
    .to_credit()
}

/// The best level a device can verifiably receive a payload at right now,
/// with why it is no higher. This is what a thread's floor is made of.
pub fn device_best(
    rules: &EvidenceRules,
    device: &DeviceEvidence,
    overrides: &[&Override],
    now: Timestamp,
) -> (AssuranceLevel, Option<SkipReason>) {
    let (level, why) = table::device_best(
        Terms::new(rules),
        device,
        OverrideSet::listed(overrides),
        now,
    );
    (level, why.map(Shortfall::to_reason))
}
