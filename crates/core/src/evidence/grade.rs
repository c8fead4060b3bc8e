//! Crediting one device's evidence for one transport, without allocating.
//!
//! A decision credits every transport of every device and keeps only a few
//! of the reasons it finds — none at all when the first step qualifies and
//! the floor holds. So the credit is computed as a [`Grade`] whose reasons
//! ([`Shortfall`]) borrow the device and the override they name, and a
//! reason becomes an owned [`SkipReason`] only where a decision records it
//! ([`Shortfall::to_reason`]). [`super::credit`] is this, made owned.

use crate::assurance::{AssuranceLevel, Channel, E2eeState, EvidenceSource, Transport};
use crate::overrides::{Override, OverrideEffect};
use crate::reason::{SkipReason, Staleness};
use crate::time::{Duration, Timestamp};
use crate::version::PlatformVersion;

use super::terms::Terms;
use super::{ClientInfo, DeviceEvidence, DeviceId};

/// Why fresh-looking evidence no longer counts: a [`Staleness`] that
/// borrows the client it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StaleRef<'a> {
    Expired {
        observed_at: Timestamp,
        fresh_for: Duration,
    },
    ClientBehindMinimum {
        client: &'a ClientInfo,
        minimum: &'a PlatformVersion,
    },
    ClientUnknown,
    ClientNotListed {
        client: &'a ClientInfo,
    },
    PolicyRevisionBehind {
        supported: u32,
        minimum: u32,
    },
}

impl StaleRef<'_> {
    fn to_staleness(self) -> Staleness {
        match self {
            StaleRef::Expired {
                observed_at,
                fresh_for,
            } => Staleness::Expired {
                observed_at,
                fresh_for,
            },
            StaleRef::ClientBehindMinimum { client, minimum } => Staleness::ClientBehindMinimum {
                client: client.name.clone(),
                version: client.version.clone(),
                minimum: minimum.clone(),
            },
            StaleRef::ClientUnknown => Staleness::ClientUnknown,
            StaleRef::ClientNotListed { client } => Staleness::ClientNotListed {
                client: client.name.clone(),
            },
            StaleRef::PolicyRevisionBehind { supported, minimum } => {
                Staleness::PolicyRevisionBehind { supported, minimum }
            }
        }
    }
}

/// The reasons a credit can give, each the [`SkipReason`] variant of the
/// same name, borrowing what the owned one copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shortfall<'a> {
    EvidenceMissing {
        transport: Transport,
    },
    EvidenceStale {
        device: &'a DeviceId,
        transport: Transport,
        staleness: StaleRef<'a>,
    },
    EvidenceUnverified {
        device: &'a DeviceId,
        transport: Transport,
        source: EvidenceSource,
    },
    Unreachable {
        device: &'a DeviceId,
        transport: Transport,
    },
    DeviceRevoked {
        device: &'a DeviceId,
    },
    E2eeOnlyClaimed {
        device: &'a DeviceId,
        transport: Transport,
    },
    E2eeAbsent {
        device: &'a DeviceId,
        transport: Transport,
    },
    E2eeUnknown {
        device: &'a DeviceId,
        transport: Transport,
    },
    AttestationMissing {
        device: &'a DeviceId,
        transport: Transport,
    },
    EnrolmentStale {
        device: &'a DeviceId,
        enrolled_at: Timestamp,
    },
    OverrideDisabled {
        override_id: &'a str,
        channel: Channel,
    },
    OverrideDistrustsE2ee {
        override_id: &'a str,
        channel: Channel,
    },
}

impl Shortfall<'_> {
    /// The owned reason, for a decision, a floor cause or a caller.
    pub(crate) fn to_reason(self) -> SkipReason {
        match self {
            Shortfall::EvidenceMissing { transport } => SkipReason::EvidenceMissing { transport },
            Shortfall::EvidenceStale {
                device,
                transport,
                staleness,
            } => SkipReason::EvidenceStale {
                device: device.clone(),
                transport,
                staleness: Box::new(staleness.to_staleness()),
            },
            Shortfall::EvidenceUnverified {
                device,
                transport,
                source,
            } => SkipReason::EvidenceUnverified {
                device: device.clone(),
                transport,
                source,
            },
            Shortfall::Unreachable { device, transport } => SkipReason::Unreachable {
                device: device.clone(),
                transport,
            },
            Shortfall::DeviceRevoked { device } => SkipReason::DeviceRevoked {
                device: device.clone(),
            },
            Shortfall::E2eeOnlyClaimed { device, transport } => SkipReason::E2eeOnlyClaimed {
                device: device.clone(),
                transport,
            },
            Shortfall::E2eeAbsent { device, transport } => SkipReason::E2eeAbsent {
                device: device.clone(),
                transport,
            },
            Shortfall::E2eeUnknown { device, transport } => SkipReason::E2eeUnknown {
                device: device.clone(),
                transport,
            },
            Shortfall::AttestationMissing { device, transport } => SkipReason::AttestationMissing {
                device: device.clone(),
                transport,
            },
            Shortfall::EnrolmentStale {
                device,
                enrolled_at,
            } => SkipReason::EnrolmentStale {
                device: device.clone(),
                enrolled_at,
            },
            Shortfall::OverrideDisabled {
                override_id,
                channel,
            } => SkipReason::OverrideDisabled {
                override_id: override_id.to_owned(),
                channel,
            },
            Shortfall::OverrideDistrustsE2ee {
                override_id,
                channel,
            } => SkipReason::OverrideDistrustsE2ee {
                override_id: override_id.to_owned(),
                channel,
            },
        }
    }
}

/// What one device's evidence for one transport is worth right now: a
/// [`super::Credit`] with borrowed reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grade<'a> {
    Unusable(Shortfall<'a>),
    Reachable {
        level: AssuranceLevel,
        shortfall: Option<Shortfall<'a>>,
    },
}

impl Grade<'_> {
    pub(crate) fn to_credit(self) -> super::Credit {
        match self {
            Grade::Unusable(r) => super::Credit::Unusable(r.to_reason()),
            Grade::Reachable { level, shortfall } => super::Credit::Reachable {
                level,
                shortfall: shortfall.map(Shortfall::to_reason),
            },
        }
    }
}

/// Credits `ev`, `device`'s evidence for `transport` (`None`: it has none).
///
/// Deny by default: missing, stale, unverified or overridden evidence is
/// unusable, and E2EE counts only when a source the policy trusts for the
/// `e2ee` claim says `verified`. `overrides` are the ones in force, in
/// order; `device_client` is the staleness of the device's own client
/// ([`Terms::client_staleness`]), asked only for a signed report that
/// names no client of its own.
pub(crate) fn grade<'a>(
    terms: &Terms<'a>,
    device: &'a DeviceEvidence,
    transport: Transport,
    overrides: impl Iterator<Item = &'a Override> + Clone,
    device_client: impl FnOnce() -> Option<StaleRef<'a>>,
    now: Timestamp,
) -> Grade<'a> {
    let dev = &device.id;
    let channel = transport.channel();
    let applicable = |effect: fn(&OverrideEffect) -> bool| {
        overrides
            .clone()
            .find(|o| effect(&o.effect) && o.applies(channel, &device.labels, now))
    };
    if device.is_revoked() {
        return Grade::Unusable(Shortfall::DeviceRevoked { device: dev });
    }
    if let Some(o) = applicable(|e| matches!(e, OverrideEffect::Disable)) {
        return Grade::Unusable(Shortfall::OverrideDisabled {
            override_id: &o.id,
            channel,
        });
    }
    let Some(ev) = device.transports.get(&transport) else {
        return Grade::Unusable(Shortfall::EvidenceMissing { transport });
    };
    let unverified = Shortfall::EvidenceUnverified {
        device: dev,
        transport,
        source: ev.source,
    };
    let Some(rule) = terms.source(ev.source) else {
        return Grade::Unusable(unverified);
    };
    if ev.observed_at.plus(rule.fresh_for) <= now {
        return Grade::Unusable(Shortfall::EvidenceStale {
            device: dev,
            transport,
            staleness: StaleRef::Expired {
                observed_at: ev.observed_at,
                fresh_for: rule.fresh_for,
            },
        });
    }
    if ev.source == EvidenceSource::SignedDeviceReport {
        let staleness = match &ev.client {
            Some(own) => terms.client_staleness(Some(own)),
            None => device_client(),
        };
        if let Some(staleness) = staleness {
            return Grade::Unusable(Shortfall::EvidenceStale {
                device: dev,
                transport,
                staleness,
            });
        }
    }
    if !rule.reachable {
        return Grade::Unusable(unverified);
    }
    if !ev.reachable {
        return Grade::Unusable(Shortfall::Unreachable {
            device: dev,
            transport,
        });
    }
    if !transport.can_carry_e2ee() {
        let level = match transport {
            Transport::Sms | Transport::Push => AssuranceLevel::None,
            Transport::Rcs | Transport::InApp => AssuranceLevel::Transport,
        };
        return Grade::Reachable {
            level,
            shortfall: None,
        };
    }
    let e2ee = |state| match state {
        E2eeState::Verified if rule.e2ee => {
            if ev.attested && rule.attestation {
                (AssuranceLevel::E2eeAttested, None)
            } else {
                (
                    AssuranceLevel::E2ee,
                    Some(Shortfall::AttestationMissing {
                        device: dev,
                        transport,
                    }),
                )
            }
        }
        E2eeState::Verified | E2eeState::Claimed => (
            AssuranceLevel::Transport,
            Some(Shortfall::E2eeOnlyClaimed {
                device: dev,
                transport,
            }),
        ),
        E2eeState::Absent => (
            AssuranceLevel::Transport,
            Some(Shortfall::E2eeAbsent {
                device: dev,
                transport,
            }),
        ),
        E2eeState::Unknown => (
            AssuranceLevel::Transport,
            Some(Shortfall::E2eeUnknown {
                device: dev,
                transport,
            }),
        ),
    };
    let (mut level, mut shortfall) = e2ee(ev.e2ee);
    if level == AssuranceLevel::E2eeAttested
        && let Some(fresh_for) = terms.rules.enrolment_fresh_for
        && device.enrolled_at.plus(fresh_for) <= now
    {
        level = AssuranceLevel::E2ee;
        shortfall = Some(Shortfall::EnrolmentStale {
            device: dev,
            enrolled_at: device.enrolled_at,
        });
    }
    if level > AssuranceLevel::Transport
        && let Some(o) = applicable(|e| matches!(e, OverrideEffect::DistrustE2ee))
    {
        level = AssuranceLevel::Transport;
        shortfall = Some(Shortfall::OverrideDistrustsE2ee {
            override_id: &o.id,
            channel,
        });
    }
    Grade::Reachable { level, shortfall }
}
