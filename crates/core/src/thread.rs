//! The downgrade ratchet.
//!
//! Every thread keeps the *lowest* assurance verified since its last full
//! handshake ([`ThreadFloor::floor`]). Any downgrade cause — a less capable
//! device, expired evidence, E2EE reported off, an override that distrusts a
//! path, a revoked device — lowers it at once and records why
//! ([`FloorDrop`]). Only [`ThreadFloor::elevate`] raises it, and only after
//! every active device has completed a fresh, verified handshake since the
//! floor was last set. Oscillating clients therefore never raise trust.
//!
//! The floor caps the E2EE credit of every step in the thread: evidence may
//! say `e2ee`, but a thread whose floor is `transport` carries payloads at
//! `transport` until it is elevated.

use serde::{Deserialize, Serialize};

use crate::assurance::{AssuranceLevel, EvidenceSource};
use crate::evidence::{CreditTable, DeviceId, EvidenceRules, RecipientEvidence, Terms};
use crate::overrides::{Override, OverrideSet};
use crate::reason::SkipReason;
use crate::time::Timestamp;

/// A thread's ratchet state. Persisted by the caller between decisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadFloor {
    pub floor: AssuranceLevel,
    /// When the floor was last set (opened, dropped or elevated). A handshake
    /// counts towards elevation only if it is strictly more recent.
    pub since: Timestamp,
    /// The assurance of the last message delivered in the thread: what the
    /// recipient was last shown.
    pub label: Option<AssuranceLevel>,
}

/// Why a floor came down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "cause")]
pub enum FloorCause {
    /// This device cannot verifiably receive above the new floor.
    Device {
        device: DeviceId,
        reason: SkipReason,
    },
    DeviceRevoked {
        device: DeviceId,
        at: Timestamp,
    },
    NoActiveDevice,
}

/// A recorded downgrade of a thread's floor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloorDrop {
    pub from: AssuranceLevel,
    pub to: AssuranceLevel,
    pub at: Timestamp,
    pub causes: Vec<FloorCause>,
}

/// A recorded, explicit elevation after a complete fresh handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Elevation {
    pub from: AssuranceLevel,
    pub to: AssuranceLevel,
    pub at: Timestamp,
    /// Every device whose fresh handshake the elevation rests on.
    pub devices: Vec<DeviceId>,
}

/// Why a floor could not be raised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum ElevationRefused {
    #[error("the recipient has no active device")]
    NoActiveDevice,
    #[error(
        "device `{device}` has not completed a verified handshake since the floor was set at {since}"
    )]
    HandshakeNotFresh { device: DeviceId, since: Timestamp },
    #[error("verified evidence supports `{level}`, not above the floor `{floor}`")]
    NotHigher {
        floor: AssuranceLevel,
        level: AssuranceLevel,
    },
}

/// The level the recipient's devices verifiably support right now: the
/// minimum over active devices of each device's best verified path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub level: AssuranceLevel,
    pub causes: Vec<FloorCause>,
}

pub fn assess(
    rules: &EvidenceRules,
    recipient: &RecipientEvidence,
    overrides: &[&Override],
    now: Timestamp,
) -> Assessment {
    CreditTable::new(
        Terms::new(rules),
        recipient,
        OverrideSet::listed(overrides),
        now,
    )
    .assessment()
}

impl ThreadFloor {
    /// A new thread starts at what its recipient verifiably supports now.
    pub fn open(assessment: &Assessment, now: Timestamp) -> ThreadFloor {
        ThreadFloor {
            floor: assessment.level,
            since: now,
            label: None,
        }
    }

    /// Whether the current evidence pulls the floor down; never raises it.
    pub fn observe(
        &self,
        assessment: &Assessment,
        recipient: &RecipientEvidence,
        now: Timestamp,
    ) -> Option<FloorDrop> {
        self.observe_level(
            assessment.level,
            || assessment.causes.clone(),
            recipient,
            now,
        )
    }

    /// [`ThreadFloor::observe`] for an assessment whose causes are only
    /// worked out (`causes`) when the floor drops below what it was —
    /// which a decision rarely needs.
    pub(crate) fn observe_level(
        &self,
        level: AssuranceLevel,
        causes: impl FnOnce() -> Vec<FloorCause>,
        recipient: &RecipientEvidence,
        now: Timestamp,
    ) -> Option<FloorDrop> {
        let mut to = self.floor.min(level);
        let mut causes = if level < self.floor {
            causes()
        } else {
            Vec::new()
        };
        // A device revoked since the floor was set takes E2EE trust with it:
        // the remaining devices must prove themselves again.
        for d in &recipient.devices {
            if let Some(at) = d.revoked_at
                && at >= self.since
                && self.floor > AssuranceLevel::Transport
            {
                to = to.min(AssuranceLevel::Transport);
                causes.push(FloorCause::DeviceRevoked {
                    device: d.id.clone(),
                    at,
                });
            }
        }
        (to < self.floor).then_some(FloorDrop {
            from: self.floor,
            to,
            at: now,
            causes,
        })
    }

    pub fn apply_drop(&mut self, drop: &FloorDrop) {
        self.floor = self.floor.min(drop.to);
        self.since = drop.at;
    }

    /// Raises the floor when every active device has completed a verified
    /// handshake after [`ThreadFloor::since`] and the evidence now
    /// supports a higher level.
    pub fn elevate(
        &self,
        rules: &EvidenceRules,
        recipient: &RecipientEvidence,
        overrides: &[&Override],
        now: Timestamp,
    ) -> Result<Elevation, ElevationRefused> {
        // Only what was observed after the floor was set may raise it: a
        // device that re-proved one transport does not bring its older
        // claims about the others back with it. Strictly after: time has a
        // one-second grain, and a tie must not count in trust's favour.
        let mut fresh = recipient.clone();
        fresh.devices.retain(|d| !d.is_revoked());
        let mut devices = Vec::new();
        for d in &mut fresh.devices {
            d.transports.retain(|_, t| t.observed_at > self.since);
            let handshaken = d
                .transports
                .values()
                .any(|t| t.source == EvidenceSource::SignedDeviceReport);
            if !handshaken {
                return Err(ElevationRefused::HandshakeNotFresh {
                    device: d.id.clone(),
                    since: self.since,
                });
            }
            devices.push(d.id.clone());
        }
        if devices.is_empty() {
            return Err(ElevationRefused::NoActiveDevice);
        }
        let level = assess(rules, &fresh, overrides, now).level;
        if level <= self.floor {
            return Err(ElevationRefused::NotHigher {
                floor: self.floor,
                level,
            });
        }
        Ok(Elevation {
            from: self.floor,
            to: level,
            at: now,
            devices,
        })
    }

    pub fn apply_elevation(&mut self, e: &Elevation) {
        self.floor = e.to;
        self.since = e.at;
    }
}
