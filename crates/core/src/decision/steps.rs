//! Evaluating one ladder step against the evidence: what it could carry the
//! payload at, which notifier would tell the recipient, where a portal's
//! one-time code would go, and every reason it does not qualify.
//!
//! Device evidence is read from the decision's credit table, never credited
//! again here; a reason is made owned only when it is recorded.

use crate::assurance::{AssuranceLevel, Channel, Container, Notifier, Transport};
use crate::evidence::{Cell, ContactEvidence, CreditTable, RecipientEvidence, Row, Shortfall};
use crate::overrides::{Override, OverrideEffect, OverrideSet};
use crate::policy::{Policy, Step};
use crate::reason::SkipReason;
use crate::step_up::{CodeChannels, SecondFactor, second_factor};
use crate::time::Timestamp;

use super::FailedAttempt;

/// Everything a step evaluation needs that does not change between steps.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub policy: &'a Policy,
    pub recipient: &'a RecipientEvidence,
    /// Every transport of every active device, credited once.
    pub credits: &'a CreditTable<'a>,
    pub overrides: OverrideSet<'a>,
    pub failed: &'a [FailedAttempt],
    pub floor: AssuranceLevel,
    pub now: Timestamp,
}

/// A reason not made yet: one cell of the credit table (made again in full
/// only if it is recorded), or one at hand.
#[derive(Debug, Clone, Copy)]
enum Why<'a> {
    Cell(&'a Row<'a>, Transport),
    Made(Shortfall<'a>),
}

/// The verdict on one step.
#[derive(Debug, Clone)]
pub(crate) struct StepEval {
    /// What the container could carry the payload at, after the floor cap;
    /// `None` when it cannot carry it at all.
    pub assurance: Option<AssuranceLevel>,
    pub notifier: Option<Notifier>,
    /// For a portal: where its one-time code would go.
    pub second_factor: Option<SecondFactor>,
    pub reasons: Vec<SkipReason>,
}

impl<'a> Context<'a> {
    /// A device-independent override (portal, email) applies when it names
    /// no labels or matches any active device.
    fn recipient_override(
        &self,
        channel: Channel,
        want: fn(&OverrideEffect) -> bool,
    ) -> Option<&'a Override> {
        self.overrides.iter().find(|o| {
            want(&o.effect) && o.channel == channel && o.covers_recipient(self.recipient, self.now)
        })
    }

    fn failed_on(&self, step: Option<usize>, channel: Channel) -> bool {
        // A legacy route's failure (`step: None`) rules its channel out for
        // every step: that provider just failed this message.
        self.failed
            .iter()
            .any(|f| (f.step == step || f.step.is_none()) && f.channel == channel)
    }

    /// The container's level over one device transport: the minimum over
    /// every active device that has evidence for it. A device whose evidence
    /// is stale or unverified might still receive the payload, so it caps
    /// the path at `transport`; a device fresh evidence calls unreachable
    /// does not receive it and does not count.
    fn transport_level(
        &self,
        transport: Transport,
    ) -> Result<(AssuranceLevel, Option<Why<'a>>), Why<'a>> {
        // The first weakest reachable device, and why it is no higher.
        let mut weakest: Option<(AssuranceLevel, Option<Why<'a>>)> = None;
        let mut doubtful: Option<Why<'a>> = None;
        let mut unreachable: Option<Why<'a>> = None;
        let mut any = false;
        for row in self.credits.rows() {
            let here = Why::Cell(row, transport);
            match self.credits.cell(row, transport) {
                Cell::Missing => continue,
                Cell::Disabled => {
                    if row.device.transports.contains_key(&transport) {
                        return Err(here);
                    }
                }
                Cell::Unreachable => {
                    any = true;
                    unreachable.get_or_insert(here);
                }
                Cell::Doubtful => {
                    any = true;
                    doubtful.get_or_insert(here);
                }
                Cell::Reachable { level, short } => {
                    any = true;
                    if weakest.is_none_or(|(w, _)| level < w) {
                        weakest = Some((level, short.then_some(here)));
                    }
                }
            }
        }
        if !any {
            let revoked = self
                .recipient
                .devices
                .iter()
                .find(|d| d.is_revoked() && d.transports.contains_key(&transport));
            return Err(Why::Made(match revoked {
                Some(d) => Shortfall::DeviceRevoked { device: &d.id },
                None => Shortfall::EvidenceMissing { transport },
            }));
        }
        let Some(weakest) = weakest else {
            return Err(doubtful
                .or(unreachable)
                .unwrap_or(Why::Made(Shortfall::EvidenceMissing { transport })));
        };
        match doubtful {
            Some(r) if weakest.0 > AssuranceLevel::Transport => {
                Ok((AssuranceLevel::Transport, Some(r)))
            }
            _ => Ok(weakest),
        }
    }

    /// The owned form of a reason, made now because it is recorded.
    fn reason(&self, why: Why<'a>) -> SkipReason {
        match why {
            Why::Cell(row, transport) => self.credits.reason(row, transport),
            Why::Made(r) => r.to_reason(),
        }
    }

    fn notifier_reachable(&self, notifier: Notifier) -> bool {
        let via = |t: Transport| {
            self.credits
                .rows()
                .any(|r| matches!(self.credits.cell(r, t), Cell::Reachable { .. }))
        };
        match notifier {
            Notifier::RcsNotice => via(Transport::Rcs),
            Notifier::SmsNotice => via(Transport::Sms),
            Notifier::PushNotice => via(Transport::Push),
            Notifier::EmailNotice => {
                self.contact_reachable(self.recipient.email.as_ref(), Channel::Email)
            }
        }
    }

    /// A contact point on file that the policy counts as reachable now, on
    /// a channel no override switches off for this recipient.
    fn contact_reachable(&self, contact: Option<&ContactEvidence>, channel: Channel) -> bool {
        contact.is_some_and(|c| c.verified(self.policy.evidence(), self.now))
            && !self.channel_off(channel)
    }

    fn channel_off(&self, channel: Channel) -> bool {
        self.recipient_override(channel, |e| matches!(e, OverrideEffect::Disable))
            .is_some()
    }

    /// Which contact channels could carry a portal's one-time code: a
    /// contact point from a source the policy trusts (fresh or not, see
    /// `ContactEvidence::trusted`), on a channel no override switches off.
    fn code_channels(&self) -> CodeChannels {
        let rules = self.policy.evidence();
        let can = |contact: Option<&ContactEvidence>, channel| {
            contact.is_some_and(|c| c.trusted(rules)) && !self.channel_off(channel)
        };
        CodeChannels {
            sms: can(self.recipient.phone.as_ref(), Channel::Sms),
            email: can(self.recipient.email.as_ref(), Channel::Email),
        }
    }

    /// Evaluates `step` (at ladder index `index`, `None` for a legacy route)
    /// against `required`.
    pub(crate) fn evaluate(
        &self,
        index: Option<usize>,
        step: &Step,
        required: AssuranceLevel,
    ) -> StepEval {
        let mut reasons = Vec::new();
        let container = step.container;
        if self.failed_on(index, container.channel()) {
            reasons.push(SkipReason::StepFailed {
                channel: container.channel(),
            });
        }
        let level = match container {
            Container::Rcs => self.transport_level(Transport::Rcs),
            Container::InApp => self.transport_level(Transport::InApp),
            Container::Sms => self
                .transport_level(Transport::Sms)
                .map(|(_, s)| (AssuranceLevel::None, s)),
            Container::Portal => {
                match self
                    .recipient_override(Channel::Portal, |e| matches!(e, OverrideEffect::Disable))
                {
                    Some(o) => Err(Why::Made(Shortfall::OverrideDisabled {
                        override_id: &o.id,
                        channel: Channel::Portal,
                    })),
                    None => Ok((AssuranceLevel::Transport, None)),
                }
            }
        };
        let assurance = match level {
            Err(r) => {
                reasons.push(self.reason(r));
                None
            }
            Ok((evidence, shortfall)) => {
                let capped = evidence.min(self.floor.max(AssuranceLevel::Transport));
                if capped < required {
                    reasons.push(if evidence >= required {
                        SkipReason::BelowThreadFloor {
                            floor: self.floor,
                            evidence,
                        }
                    } else {
                        shortfall.map_or(
                            SkipReason::BelowMinimum {
                                assurance: evidence,
                                required,
                            },
                            |why| self.reason(why),
                        )
                    });
                }
                Some(capped)
            }
        };
        let mut notifier = None;
        let mut factor = None;
        if !step.notifiers.is_empty() {
            let mut usable = step
                .notifiers
                .iter()
                .copied()
                .filter(|n| !self.failed_on(index, n.channel()) && self.notifier_reachable(*n))
                .peekable();
            let any_usable = usable.peek().is_some();
            if container == Container::Portal {
                // The first notifier after which the recipient can still
                // receive the code: a link they could never open is no route.
                let can = self.code_channels();
                let found = usable.find_map(|n| {
                    second_factor(step.step_up, Some(n.channel()), can).map(|f| (n, f))
                });
                if let Some((n, f)) = found {
                    notifier = Some(n);
                    factor = Some(f);
                } else if any_usable {
                    reasons.push(SkipReason::NoStepUpChannel {
                        step_up: step.step_up,
                    });
                }
            } else {
                notifier = usable.next();
            }
            if !any_usable && container.needs_notifier() {
                let failed = step
                    .notifiers
                    .iter()
                    .find(|n| self.failed_on(index, n.channel()));
                reasons.push(match failed {
                    Some(n) => SkipReason::StepFailed {
                        channel: n.channel(),
                    },
                    None => SkipReason::NoNotifierReachable {
                        notifiers: step.notifiers.clone(),
                    },
                });
            }
        }
        StepEval {
            assurance,
            notifier,
            second_factor: factor,
            reasons,
        }
    }
}
