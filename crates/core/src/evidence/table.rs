//! One decision's credit table: every transport of every active device,
//! credited once.
//!
//! The floor assessment needs each device's in-app, RCS and SMS credit; the
//! ladder needs one transport per step, over every device, and the
//! notifiers theirs. Computed on demand that is the same credit several
//! times over, each time looking up the device's overrides and its client's
//! minimum again. The table does the per-device work once (which overrides
//! match its labels, whether its client is stale), credits its four
//! transports, and answers the assessment and the ladder from there. Rows
//! for the first few devices live inline, so building it allocates nothing
//! for an ordinary recipient.

use crate::assurance::{AssuranceLevel, Channel, Transport};
use crate::overrides::{Override, OverrideEffect};
use crate::thread::{Assessment, FloorCause};
use crate::time::Timestamp;

use super::grade::{ChannelOverrides, Grade, Shortfall, best, grade};
use super::terms::Terms;
use super::{DeviceEvidence, RecipientEvidence};

/// How many devices' rows live inline; a recipient with more spills to
/// the heap.
const INLINE: usize = 4;

/// One active device's grades, by transport.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row<'a> {
    pub device: &'a DeviceEvidence,
    rcs: Grade<'a>,
    in_app: Grade<'a>,
    sms: Grade<'a>,
    push: Grade<'a>,
}

impl<'a> Row<'a> {
    /// Credits every transport of `device` under `overrides` (the policy's
    /// and the run-time ones, in order).
    pub(crate) fn new(
        terms: &Terms<'a>,
        device: &'a DeviceEvidence,
        overrides: impl Iterator<Item = &'a Override> + Clone,
        now: Timestamp,
    ) -> Row<'a> {
        let mut by_channel = [ChannelOverrides::default(); 4];
        for o in overrides {
            let Some(entry) = transport_slot_of(o.channel).and_then(|s| by_channel.get_mut(s))
            else {
                continue;
            };
            let first = match o.effect {
                OverrideEffect::Disable => &mut entry.disable,
                OverrideEffect::DistrustE2ee => &mut entry.distrust,
                OverrideEffect::ForceStep(_) => continue,
            };
            // The first override of an effect that applies wins; labels are
            // matched only for those that could.
            if first.is_none() && o.applies(o.channel, &device.labels, now) {
                *first = Some(o);
            }
        }
        let client = terms.client_staleness(device.client.as_ref());
        let at = |t: Transport| {
            let ov = by_channel
                .get(transport_slot(t))
                .copied()
                .unwrap_or_default();
            grade(
                terms,
                device,
                t,
                device.transports.get(&t),
                ov,
                || client,
                now,
            )
        };
        Row {
            device,
            rcs: at(Transport::Rcs),
            in_app: at(Transport::InApp),
            sms: at(Transport::Sms),
            push: at(Transport::Push),
        }
    }

    pub(crate) fn get(&self, transport: Transport) -> Grade<'a> {
        match transport {
            Transport::Rcs => self.rcs,
            Transport::InApp => self.in_app,
            Transport::Sms => self.sms,
            Transport::Push => self.push,
        }
    }

    /// The device's best level and why it is no higher.
    pub(crate) fn best(&self) -> (AssuranceLevel, Option<Shortfall<'a>>) {
        best(|t| self.get(t))
    }
}

fn transport_slot(t: Transport) -> usize {
    match t {
        Transport::Rcs => 0,
        Transport::InApp => 1,
        Transport::Sms => 2,
        Transport::Push => 3,
    }
}

/// The slot of the transport a channel is, if it is one.
fn transport_slot_of(c: Channel) -> Option<usize> {
    match c {
        Channel::Rcs => Some(0),
        Channel::InApp => Some(1),
        Channel::Sms => Some(2),
        Channel::Push => Some(3),
        Channel::Portal | Channel::Email => None,
    }
}

/// Every active device's grades, in the recipient's device order: inline
/// when the recipient has at most [`INLINE`] devices, else on the heap.
#[derive(Debug)]
pub(crate) struct CreditTable<'a> {
    inline: [Option<Row<'a>>; INLINE],
    /// Empty (and unallocated) unless the rows did not fit inline.
    spilled: Vec<Row<'a>>,
}

impl<'a> CreditTable<'a> {
    pub(crate) fn new(
        terms: &Terms<'a>,
        recipient: &'a RecipientEvidence,
        overrides: impl Iterator<Item = &'a Override> + Clone,
        now: Timestamp,
    ) -> CreditTable<'a> {
        let mut active = recipient.active_devices();
        let mut row = |d| Row::new(terms, d, overrides.clone(), now);
        if recipient.devices.len() <= INLINE {
            CreditTable {
                inline: std::array::from_fn(|_| active.next().map(&mut row)),
                spilled: Vec::new(),
            }
        } else {
            CreditTable {
                inline: [None; INLINE],
                spilled: active.map(row).collect(),
            }
        }
    }

    pub(crate) fn rows(&self) -> impl Iterator<Item = &Row<'a>> + Clone {
        self.inline.iter().flatten().chain(&self.spilled)
    }

    /// The level the recipient's devices verifiably support now: the
    /// minimum over active devices of each one's best; `None` without one.
    pub(crate) fn floor_level(&self) -> Option<AssuranceLevel> {
        self.rows().map(|r| r.best().0).min()
    }

    /// The floor causes at `level`: every device whose best is `level`,
    /// with why it is no higher. Owned: a drop records them.
    pub(crate) fn causes_at(&self, level: Option<AssuranceLevel>) -> Vec<FloorCause> {
        let Some(level) = level else {
            return vec![FloorCause::NoActiveDevice];
        };
        self.rows()
            .filter_map(|r| match r.best() {
                (l, Some(why)) if l == level => Some(FloorCause::Device {
                    device: r.device.id.clone(),
                    reason: why.to_reason(),
                }),
                _ => None,
            })
            .collect()
    }

    /// The whole assessment, owned, for [`crate::thread::assess`].
    pub(crate) fn assessment(&self) -> Assessment {
        let level = self.floor_level();
        Assessment {
            level: level.unwrap_or(AssuranceLevel::None),
            causes: self.causes_at(level),
        }
    }
}
