//! The vocabulary of routing: assurance levels, containers, notifiers and the
//! channels they leave by.
//!
//! Everything here is a closed set. Names are parsed from policy and scenario
//! text with [`std::str::FromStr`], so a typo becomes an error that lists the
//! accepted names instead of a silently ignored step.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Who can read a payload on a path. A total order: `none` < `transport` <
/// `e2ee` < `e2ee_attested`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssuranceLevel {
    /// Plaintext at the carrier (SMS).
    None,
    /// TLS to a provider that can read it: RCS without E2EE, e-mail, a portal page.
    Transport,
    /// Encrypted to the recipient's devices, on verified evidence only.
    E2ee,
    /// E2EE to devices whose enrolment and attestation are fresh.
    E2eeAttested,
}

impl AssuranceLevel {
    /// Every level, lowest first.
    pub const ALL: [AssuranceLevel; 4] = [
        AssuranceLevel::None,
        AssuranceLevel::Transport,
        AssuranceLevel::E2ee,
        AssuranceLevel::E2eeAttested,
    ];

    /// The name used in policy files, scenarios and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AssuranceLevel::None => "none",
            AssuranceLevel::Transport => "transport",
            AssuranceLevel::E2ee => "e2ee",
            AssuranceLevel::E2eeAttested => "e2ee_attested",
        }
    }

    /// The honest label a recipient or sender sees for a thread at this level.
    pub fn label(self) -> &'static str {
        match self {
            AssuranceLevel::None => "not encrypted",
            AssuranceLevel::Transport => "provider-readable",
            AssuranceLevel::E2ee => "end-to-end encrypted",
            AssuranceLevel::E2eeAttested => "end-to-end encrypted, attested devices",
        }
    }
}

/// Where a payload travels. Portal is the server's own pages; the others are
/// the recipient's phone or app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Container {
    Rcs,
    InApp,
    Portal,
    Sms,
}

impl Container {
    pub const ALL: [Container; 4] = [
        Container::Rcs,
        Container::InApp,
        Container::Portal,
        Container::Sms,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Container::Rcs => "rcs",
            Container::InApp => "in_app",
            Container::Portal => "portal",
            Container::Sms => "sms",
        }
    }

    /// The highest level this container can ever carry a payload at, whatever
    /// the evidence. Policy validation uses it to reject ladders that can never
    /// meet their class minimum.
    pub fn ceiling(self) -> AssuranceLevel {
        match self {
            Container::Rcs | Container::InApp => AssuranceLevel::E2eeAttested,
            Container::Portal => AssuranceLevel::Transport,
            Container::Sms => AssuranceLevel::None,
        }
    }

    /// Whether the container reaches the recipient by itself. A portal does
    /// not: someone has to tell the recipient to go and look.
    pub fn needs_notifier(self) -> bool {
        matches!(self, Container::Portal)
    }

    /// Whether notifiers make sense on this container at all.
    pub fn accepts_notifiers(self) -> bool {
        matches!(self, Container::Portal | Container::InApp)
    }

    pub fn channel(self) -> Channel {
        match self {
            Container::Rcs => Channel::Rcs,
            Container::InApp => Channel::InApp,
            Container::Portal => Channel::Portal,
            Container::Sms => Channel::Sms,
        }
    }

    /// The device transport that carries the container; `None` for the
    /// portal, which is the server's own.
    pub fn transport(self) -> Option<Transport> {
        match self {
            Container::Rcs => Some(Transport::Rcs),
            Container::InApp => Some(Transport::InApp),
            Container::Sms => Some(Transport::Sms),
            Container::Portal => None,
        }
    }
}

/// A content-free notice that tells the recipient to go and look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notifier {
    RcsNotice,
    SmsNotice,
    EmailNotice,
    PushNotice,
}

impl Notifier {
    pub const ALL: [Notifier; 4] = [
        Notifier::RcsNotice,
        Notifier::SmsNotice,
        Notifier::EmailNotice,
        Notifier::PushNotice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Notifier::RcsNotice => "rcs_notice",
            Notifier::SmsNotice => "sms_notice",
            Notifier::EmailNotice => "email_notice",
            Notifier::PushNotice => "push_notice",
        }
    }

    pub fn channel(self) -> Channel {
        match self {
            Notifier::RcsNotice => Channel::Rcs,
            Notifier::SmsNotice => Channel::Sms,
            Notifier::EmailNotice => Channel::Email,
            Notifier::PushNotice => Channel::Push,
        }
    }
}

/// A way out of the building, one per provider. Overrides and provider
/// failures name channels; a channel switched off takes every container and
/// notifier that leaves by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Rcs,
    InApp,
    Portal,
    Sms,
    Email,
    Push,
}

impl Channel {
    pub const ALL: [Channel; 6] = [
        Channel::Rcs,
        Channel::InApp,
        Channel::Portal,
        Channel::Sms,
        Channel::Email,
        Channel::Push,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Rcs => "rcs",
            Channel::InApp => "in_app",
            Channel::Portal => "portal",
            Channel::Sms => "sms",
            Channel::Email => "email",
            Channel::Push => "push",
        }
    }
}

/// A path a device can be reached on, as recorded in its capability evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Rcs,
    InApp,
    Sms,
    Push,
}

impl Transport {
    pub const ALL: [Transport; 4] = [
        Transport::Rcs,
        Transport::InApp,
        Transport::Sms,
        Transport::Push,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Rcs => "rcs",
            Transport::InApp => "in_app",
            Transport::Sms => "sms",
            Transport::Push => "push",
        }
    }

    pub fn channel(self) -> Channel {
        match self {
            Transport::Rcs => Channel::Rcs,
            Transport::InApp => Channel::InApp,
            Transport::Sms => Channel::Sms,
            Transport::Push => Channel::Push,
        }
    }

    /// Whether E2EE on this transport can ever be credited.
    pub fn can_carry_e2ee(self) -> bool {
        matches!(self, Transport::Rcs | Transport::InApp)
    }
}

/// What a device (or a provider) says about end-to-end encryption on a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum E2eeState {
    /// The client verified the conversation's keys.
    Verified,
    /// The client's interface says encrypted, but nothing was verified.
    Claimed,
    Absent,
    Unknown,
}

impl E2eeState {
    pub const ALL: [E2eeState; 4] = [
        E2eeState::Verified,
        E2eeState::Claimed,
        E2eeState::Absent,
        E2eeState::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            E2eeState::Verified => "verified",
            E2eeState::Claimed => "claimed",
            E2eeState::Absent => "absent",
            E2eeState::Unknown => "unknown",
        }
    }
}

/// Where a piece of evidence came from. The policy decides which sources
/// count as verified for which claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceSource {
    /// A report signed by the device's enrolled key over a one-time challenge.
    SignedDeviceReport,
    /// A provider's capability check (e.g. the RCS business API).
    ProviderCheck,
    /// The client said so, unsigned.
    SelfReported,
}

impl EvidenceSource {
    pub const ALL: [EvidenceSource; 3] = [
        EvidenceSource::SignedDeviceReport,
        EvidenceSource::ProviderCheck,
        EvidenceSource::SelfReported,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceSource::SignedDeviceReport => "signed_device_report",
            EvidenceSource::ProviderCheck => "provider_check",
            EvidenceSource::SelfReported => "self_reported",
        }
    }
}

/// What a piece of evidence can vouch for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Claim {
    Reachable,
    E2ee,
    Attestation,
}

impl Claim {
    pub const ALL: [Claim; 3] = [Claim::Reachable, Claim::E2ee, Claim::Attestation];

    pub fn as_str(self) -> &'static str {
        match self {
            Claim::Reachable => "reachable",
            Claim::E2ee => "e2ee",
            Claim::Attestation => "attestation",
        }
    }
}

/// How a class's decisions take effect while a policy is rolled out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Follow the legacy route; record what enforcement would have done.
    Observe,
    Enforce,
}

impl Mode {
    pub const ALL: [Mode; 2] = [Mode::Observe, Mode::Enforce];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Observe => "observe",
            Mode::Enforce => "enforce",
        }
    }
}

/// How a portal step proves that whoever opened its link is the recipient:
/// the one-time code it sends before showing the payload.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum StepUp {
    /// The code goes by another channel than the notice that carried the
    /// link (notice by e-mail, code by SMS, and the other way round), so
    /// whoever holds one inbox does not hold both halves.
    #[default]
    OtherChannel,
    /// The code may go by the notice's own channel: weaker, since one inbox
    /// then holds the link and the code.
    AnyChannel,
    /// No code: whoever has the link reads the message. Only for classes
    /// whose payload may travel in plaintext anyway (minimum `none`).
    None,
}

impl StepUp {
    pub const ALL: [StepUp; 3] = [StepUp::OtherChannel, StepUp::AnyChannel, StepUp::None];

    pub fn as_str(self) -> &'static str {
        match self {
            StepUp::OtherChannel => "other_channel",
            StepUp::AnyChannel => "any_channel",
            StepUp::None => "none",
        }
    }

    /// The default, which policies and their canonical form leave unsaid.
    pub fn is_default(&self) -> bool {
        *self == StepUp::OtherChannel
    }
}

/// Error for a name that is not in one of the closed sets above.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{given}`; expected one of: {expected}")]
pub struct UnknownName {
    pub kind: &'static str,
    pub given: String,
    pub expected: String,
}

macro_rules! closed_set {
    ($ty:ty, $kind:literal) => {
        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$ty>::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownName {
                        kind: $kind,
                        given: s.to_owned(),
                        expected: <$ty>::ALL
                            .iter()
                            .map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

closed_set!(AssuranceLevel, "assurance level");
closed_set!(Container, "container");
closed_set!(Notifier, "notifier");
closed_set!(Channel, "channel");
closed_set!(Transport, "transport");
closed_set!(E2eeState, "e2ee state");
closed_set!(EvidenceSource, "evidence source");
closed_set!(Claim, "claim");
closed_set!(Mode, "mode");
closed_set!(StepUp, "step-up setting");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assurance_levels_are_totally_ordered_lowest_first() {
        let mut sorted = AssuranceLevel::ALL;
        sorted.sort();
        assert_eq!(sorted, AssuranceLevel::ALL);
        assert!(AssuranceLevel::None < AssuranceLevel::Transport);
        assert!(AssuranceLevel::E2ee < AssuranceLevel::E2eeAttested);
    }

    #[test]
    fn names_round_trip_and_unknown_names_list_the_choices() {
        for c in Container::ALL {
            assert_eq!(c.as_str().parse::<Container>(), Ok(c));
        }
        let err = "email".parse::<Container>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown container `email`; expected one of: rcs, in_app, portal, sms"
        );
    }

    #[test]
    fn only_rcs_and_in_app_can_carry_e2ee() {
        assert_eq!(Container::Portal.ceiling(), AssuranceLevel::Transport);
        assert_eq!(Container::Sms.ceiling(), AssuranceLevel::None);
        assert!(Transport::InApp.can_carry_e2ee());
        assert!(!Transport::Sms.can_carry_e2ee());
    }
}
