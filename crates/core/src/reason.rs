//! Machine-readable reasons: why a ladder step was skipped, why a thread's
//! floor dropped. Support agents read them through the explanation; scenario
//! files and dashboards match on their [`SkipReason::code`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::assurance::{
    AssuranceLevel, Channel, Container, EvidenceSource, Notifier, StepUp, Transport,
};
use crate::evidence::DeviceId;
use crate::time::{Duration, Timestamp};
use crate::version::PlatformVersion;

/// Why fresh-looking evidence no longer counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "cause")]
pub enum Staleness {
    /// Older than the policy lets this source stay fresh.
    Expired {
        observed_at: Timestamp,
        fresh_for: Duration,
    },
    /// The reporting client is older than the policy's minimum for it.
    ClientBehindMinimum {
        client: String,
        version: PlatformVersion,
        minimum: PlatformVersion,
    },
    /// Signed evidence that names no client, under a policy with minimums.
    ClientUnknown,
    /// The policy sets minimum client versions and does not name this client.
    ClientNotListed { client: String },
    /// The client supports an older policy revision than the policy requires.
    PolicyRevisionBehind { supported: u32, minimum: u32 },
}

/// Why a step did not qualify (or why a device pulls a thread's floor down).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum SkipReason {
    /// No device has any evidence for this transport.
    EvidenceMissing { transport: Transport },
    EvidenceStale {
        device: DeviceId,
        transport: Transport,
        #[serde(flatten)]
        /// Boxed: rare, and it would triple the size of every reason.
        staleness: Box<Staleness>,
    },
    /// The evidence comes from a source the policy does not trust for this claim.
    EvidenceUnverified {
        device: DeviceId,
        transport: Transport,
        source: EvidenceSource,
    },
    /// Fresh evidence says the device cannot be reached this way.
    Unreachable {
        device: DeviceId,
        transport: Transport,
    },
    /// Every device that had this transport is revoked.
    DeviceRevoked { device: DeviceId },
    E2eeOnlyClaimed {
        device: DeviceId,
        transport: Transport,
    },
    E2eeAbsent {
        device: DeviceId,
        transport: Transport,
    },
    E2eeUnknown {
        device: DeviceId,
        transport: Transport,
    },
    AttestationMissing {
        device: DeviceId,
        transport: Transport,
    },
    /// The device's enrolment is older than the policy credits with
    /// `e2ee_attested`.
    EnrolmentStale {
        device: DeviceId,
        enrolled_at: Timestamp,
    },
    OverrideDisabled {
        override_id: String,
        channel: Channel,
    },
    OverrideDistrustsE2ee {
        override_id: String,
        channel: Channel,
    },
    OverrideForcedStep {
        override_id: String,
        container: Container,
    },
    /// The evidence would qualify, but the thread's floor caps it.
    BelowThreadFloor {
        floor: AssuranceLevel,
        evidence: AssuranceLevel,
    },
    /// The container cannot reach what the class (or step) requires.
    BelowMinimum {
        assurance: AssuranceLevel,
        required: AssuranceLevel,
    },
    /// This step already failed for this message.
    StepFailed { channel: Channel },
    /// A later step failed for this message; a re-decision never climbs back.
    AboveFailedStep { failed_step: usize },
    /// A portal needs someone to tell the recipient; none of its notifiers can.
    NoNotifierReachable { notifiers: Vec<Notifier> },
    /// A portal's one-time code could go by no verified contact channel the
    /// step's `step_up` accepts: the recipient could never open it.
    NoStepUpChannel { step_up: StepUp },
}

impl SkipReason {
    /// The stable code matched by scenario files and dashboards.
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::EvidenceMissing { .. } => "evidence_missing",
            SkipReason::EvidenceStale { .. } => "evidence_stale",
            SkipReason::EvidenceUnverified { .. } => "evidence_unverified",
            SkipReason::Unreachable { .. } => "unreachable",
            SkipReason::DeviceRevoked { .. } => "device_revoked",
            SkipReason::E2eeOnlyClaimed { .. } => "e2ee_only_claimed",
            SkipReason::E2eeAbsent { .. } => "e2ee_absent",
            SkipReason::E2eeUnknown { .. } => "e2ee_unknown",
            SkipReason::AttestationMissing { .. } => "attestation_missing",
            SkipReason::EnrolmentStale { .. } => "enrolment_stale",
            SkipReason::OverrideDisabled { .. } => "override_disabled",
            SkipReason::OverrideDistrustsE2ee { .. } => "override_distrusts_e2ee",
            SkipReason::OverrideForcedStep { .. } => "override_forced_step",
            SkipReason::BelowThreadFloor { .. } => "below_thread_floor",
            SkipReason::BelowMinimum { .. } => "below_minimum",
            SkipReason::StepFailed { .. } => "step_failed",
            SkipReason::AboveFailedStep { .. } => "above_failed_step",
            SkipReason::NoNotifierReachable { .. } => "no_notifier_reachable",
            SkipReason::NoStepUpChannel { .. } => "no_step_up_channel",
        }
    }

    /// Every code, for validating scenario expectations.
    pub const CODES: [&'static str; 19] = [
        "evidence_missing",
        "evidence_stale",
        "evidence_unverified",
        "unreachable",
        "device_revoked",
        "e2ee_only_claimed",
        "e2ee_absent",
        "e2ee_unknown",
        "attestation_missing",
        "enrolment_stale",
        "override_disabled",
        "override_distrusts_e2ee",
        "override_forced_step",
        "below_thread_floor",
        "below_minimum",
        "step_failed",
        "above_failed_step",
        "no_notifier_reachable",
        "no_step_up_channel",
    ];
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::EvidenceMissing { transport } => {
                write!(f, "no device has any {transport} evidence")
            }
            SkipReason::EvidenceStale {
                device,
                transport,
                staleness,
            } => match &**staleness {
                Staleness::Expired {
                    observed_at,
                    fresh_for,
                } => write!(
                    f,
                    "{transport} evidence from device `{device}` observed at {observed_at} expired (fresh for {fresh_for})"
                ),
                Staleness::ClientBehindMinimum {
                    client,
                    version,
                    minimum,
                } => write!(
                    f,
                    "device `{device}` runs {client} {version}, behind the policy's minimum {minimum}; its {transport} evidence counts as stale"
                ),
                Staleness::ClientUnknown => write!(
                    f,
                    "device `{device}`'s {transport} evidence names no client, and the policy sets client minimums; it counts as stale"
                ),
                Staleness::ClientNotListed { client } => write!(
                    f,
                    "device `{device}` runs {client}, which the policy's minimum client versions do not name; its {transport} evidence counts as stale"
                ),
                Staleness::PolicyRevisionBehind { supported, minimum } => write!(
                    f,
                    "device `{device}` supports policy revision {supported}, behind the minimum {minimum}; its {transport} evidence counts as stale"
                ),
            },
            SkipReason::EvidenceUnverified {
                device,
                transport,
                source,
            } => write!(
                f,
                "{transport} reachability of device `{device}` comes from {source}, which the policy does not trust for it"
            ),
            SkipReason::Unreachable { device, transport } => {
                write!(f, "device `{device}` is not reachable over {transport}")
            }
            SkipReason::DeviceRevoked { device } => write!(f, "device `{device}` is revoked"),
            SkipReason::E2eeOnlyClaimed { device, transport } => write!(
                f,
                "{transport} E2EE on device `{device}` is only claimed, not verified by a signed device report"
            ),
            SkipReason::E2eeAbsent { device, transport } => {
                write!(f, "device `{device}` reports no E2EE on {transport}")
            }
            SkipReason::E2eeUnknown { device, transport } => {
                write!(
                    f,
                    "the E2EE state of {transport} on device `{device}` is unknown"
                )
            }
            SkipReason::AttestationMissing { device, transport } => write!(
                f,
                "device `{device}` has verified {transport} E2EE but no fresh attestation"
            ),
            SkipReason::EnrolmentStale {
                device,
                enrolled_at,
            } => write!(
                f,
                "device `{device}` was enrolled at {enrolled_at}, too long ago for attested delivery; it must re-enrol"
            ),
            SkipReason::OverrideDisabled {
                override_id,
                channel,
            } => {
                write!(f, "override `{override_id}` disables {channel}")
            }
            SkipReason::OverrideDistrustsE2ee {
                override_id,
                channel,
            } => {
                write!(f, "override `{override_id}` distrusts E2EE on {channel}")
            }
            SkipReason::OverrideForcedStep {
                override_id,
                container,
            } => {
                write!(
                    f,
                    "override `{override_id}` forces the route down to {container}"
                )
            }
            SkipReason::BelowThreadFloor { floor, evidence } => write!(
                f,
                "evidence shows {evidence}, but the thread's floor is {floor} until every device completes a fresh handshake"
            ),
            SkipReason::BelowMinimum {
                assurance,
                required,
            } => {
                write!(
                    f,
                    "carries {assurance} at best, below the required {required}"
                )
            }
            SkipReason::StepFailed { channel } => {
                write!(f, "already failed on {channel} for this message")
            }
            SkipReason::AboveFailedStep { failed_step } => write!(
                f,
                "step {} already failed for this message; a re-decision only moves down the ladder",
                failed_step + 1
            ),
            SkipReason::NoNotifierReachable { notifiers } => {
                let names: Vec<&str> = notifiers.iter().map(|n| n.as_str()).collect();
                write!(
                    f,
                    "none of its notifiers ({}) can reach the recipient",
                    names.join(", ")
                )
            }
            SkipReason::NoStepUpChannel { step_up } => match step_up {
                StepUp::AnyChannel | StepUp::None => write!(
                    f,
                    "the portal's one-time code could go nowhere: the recipient has no verified phone number or e-mail address (step_up `{step_up}`)"
                ),
                StepUp::OtherChannel => write!(
                    f,
                    "the portal's one-time code could go nowhere: it must go by another channel than the notice's, and the recipient has no verified one (step_up `{step_up}`)"
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `CODES` is written by hand; this keeps it in step with `code()`.
    #[test]
    fn codes_list_every_reason_exactly_once() {
        let t = Transport::Rcs;
        let d = || DeviceId::from("d");
        let all = [
            SkipReason::EvidenceMissing { transport: t },
            SkipReason::EvidenceStale {
                device: d(),
                transport: t,
                staleness: Box::new(Staleness::PolicyRevisionBehind {
                    supported: 1,
                    minimum: 2,
                }),
            },
            SkipReason::EvidenceUnverified {
                device: d(),
                transport: t,
                source: EvidenceSource::SelfReported,
            },
            SkipReason::Unreachable {
                device: d(),
                transport: t,
            },
            SkipReason::DeviceRevoked { device: d() },
            SkipReason::E2eeOnlyClaimed {
                device: d(),
                transport: t,
            },
            SkipReason::E2eeAbsent {
                device: d(),
                transport: t,
            },
            SkipReason::E2eeUnknown {
                device: d(),
                transport: t,
            },
            SkipReason::AttestationMissing {
                device: d(),
                transport: t,
            },
            SkipReason::EnrolmentStale {
                device: d(),
                enrolled_at: Timestamp(0),
            },
            SkipReason::OverrideDisabled {
                override_id: "o".into(),
                channel: Channel::Rcs,
            },
            SkipReason::OverrideDistrustsE2ee {
                override_id: "o".into(),
                channel: Channel::Rcs,
            },
            SkipReason::OverrideForcedStep {
                override_id: "o".into(),
                container: Container::Portal,
            },
            SkipReason::BelowThreadFloor {
                floor: AssuranceLevel::None,
                evidence: AssuranceLevel::E2ee,
            },
            SkipReason::BelowMinimum {
                assurance: AssuranceLevel::None,
                required: AssuranceLevel::E2ee,
            },
            SkipReason::StepFailed {
                channel: Channel::Rcs,
            },
            SkipReason::AboveFailedStep { failed_step: 1 },
            SkipReason::NoNotifierReachable {
                notifiers: vec![Notifier::SmsNotice],
            },
            SkipReason::NoStepUpChannel {
                step_up: StepUp::OtherChannel,
            },
        ];
        let codes: Vec<&str> = all.iter().map(SkipReason::code).collect();
        assert_eq!(codes, SkipReason::CODES);
        for r in &all {
            let json = serde_json::to_value(r).unwrap();
            assert_eq!(json["code"], r.code(), "serialised code of {r:?}");
            assert!(!r.to_string().is_empty());
        }
    }
}
