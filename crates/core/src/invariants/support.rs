//! An independent recomputation of what the evidence supports for each
//! route, which the invariant checks hold decisions to.

use super::*;

pub(super) enum Support {
    Level(AssuranceLevel),
    NoVerifiedPath,
    Disabled(String),
}

pub(super) struct World<'a> {
    pub(super) rules: &'a EvidenceRules,
    pub(super) recipient: &'a RecipientEvidence,
    pub(super) overrides: &'a [&'a Override],
    pub(super) now: Timestamp,
}

impl World<'_> {
    pub(super) fn active_disable(&self, channel: Channel) -> impl Iterator<Item = &Override> {
        self.overrides.iter().copied().filter(move |o| {
            o.effect == OverrideEffect::Disable && o.channel == channel && o.is_active(self.now)
        })
    }

    /// A recipient-level channel (portal, e-mail) is off when an active
    /// override names no labels or matches any active device.
    pub(super) fn recipient_disabled(&self, channel: Channel) -> Option<String> {
        self.active_disable(channel)
            .find(|o| o.covers_recipient(self.recipient, self.now))
            .map(|o| o.id.clone())
    }

    /// A device channel is off when an active override matches an active
    /// device that has evidence for it.
    pub(super) fn device_disabled(&self, transport: Transport) -> Option<String> {
        let channel = transport.channel();
        self.recipient
            .active_devices()
            .filter(|d| d.transports.contains_key(&transport))
            .find_map(|d| {
                self.active_disable(channel)
                    .find(|o| o.matcher.matches(&d.labels))
                    .map(|o| o.id.clone())
            })
    }

    /// Every active device that may receive over `transport` counts: a
    /// verified reachable one at its credited level, one whose evidence is
    /// stale or unverified at `transport` at best. A device with no evidence,
    /// or fresh evidence that it is unreachable, does not receive it.
    pub(super) fn transport_support(&self, transport: Transport) -> Support {
        if let Some(id) = self.device_disabled(transport) {
            return Support::Disabled(id);
        }
        let mut reachable: Option<AssuranceLevel> = None;
        let mut doubtful = false;
        for d in self.recipient.active_devices() {
            match credit(self.rules, d, transport, self.overrides, self.now) {
                Credit::Reachable { level, .. } => {
                    reachable = Some(reachable.map_or(level, |r| r.min(level)));
                }
                Credit::Unusable(
                    SkipReason::EvidenceMissing { .. }
                    | SkipReason::Unreachable { .. }
                    | SkipReason::OverrideDisabled { .. },
                ) => {}
                Credit::Unusable(_) => doubtful = true,
            }
        }
        match reachable {
            None => Support::NoVerifiedPath,
            Some(l) if doubtful => Support::Level(l.min(AssuranceLevel::Transport)),
            Some(l) => Support::Level(l),
        }
    }

    pub(super) fn support(&self, container: Container) -> Support {
        match container {
            Container::Rcs => self.transport_support(Transport::Rcs),
            Container::InApp => self.transport_support(Transport::InApp),
            Container::Sms => match self.transport_support(Transport::Sms) {
                Support::Level(_) => Support::Level(AssuranceLevel::None),
                other => other,
            },
            Container::Portal => match self.recipient_disabled(Channel::Portal) {
                Some(id) => Support::Disabled(id),
                None => Support::Level(AssuranceLevel::Transport),
            },
        }
    }

    /// The minimum over active devices of each device's best verified level
    /// over the payload-carrying transports; `none` without active devices.
    pub(super) fn assessed_level(&self) -> AssuranceLevel {
        self.recipient
            .active_devices()
            .map(|d| {
                [Transport::InApp, Transport::Rcs, Transport::Sms]
                    .iter()
                    .filter_map(|t| credit(self.rules, d, *t, self.overrides, self.now).level())
                    .max()
                    .unwrap_or(AssuranceLevel::None)
            })
            .min()
            .unwrap_or(AssuranceLevel::None)
    }

    /// The floor a decision must apply: the thread's floor, brought down to
    /// what the devices verifiably support, and to `transport` when a device
    /// was revoked since the floor was set.
    pub(super) fn effective_floor(&self, thread: &ThreadFloor) -> AssuranceLevel {
        let mut floor = thread.floor.min(self.assessed_level());
        let revoked_since = self
            .recipient
            .devices
            .iter()
            .any(|d| d.revoked_at.is_some_and(|at| at >= thread.since));
        if revoked_since && thread.floor > AssuranceLevel::Transport {
            floor = floor.min(AssuranceLevel::Transport);
        }
        floor
    }

    pub(super) fn notifier_problem(&self, notifier: Notifier) -> Option<String> {
        let via = |t: Transport| {
            let ok = self.recipient.active_devices().any(|d| {
                matches!(
                    credit(self.rules, d, t, self.overrides, self.now),
                    Credit::Reachable { .. }
                )
            });
            (!ok).then(|| format!("no active device is verifiably reachable over {t}"))
        };
        match notifier {
            Notifier::RcsNotice => via(Transport::Rcs),
            Notifier::SmsNotice => via(Transport::Sms),
            Notifier::PushNotice => via(Transport::Push),
            Notifier::EmailNotice => self.contact_problem(Channel::Email, true),
        }
    }

    /// Why the recipient's contact point on `channel` (e-mail, or the phone
    /// number for SMS) cannot be used now, if it cannot. A notice needs the
    /// evidence `fresh`; a one-time code, sent whenever the link is opened,
    /// a source the policy trusts for reachability.
    pub(super) fn contact_problem(&self, channel: Channel, fresh: bool) -> Option<String> {
        let (contact, what) = match channel {
            Channel::Sms => (self.recipient.phone.as_ref(), "phone number"),
            _ => (self.recipient.email.as_ref(), "e-mail address"),
        };
        if let Some(id) = self.recipient_disabled(channel) {
            return Some(format!("override `{id}` disables {channel}"));
        }
        let usable = contact.is_some_and(|e| {
            self.rules.sources.get(&e.source).is_some_and(|r| {
                r.verifies.contains(&Claim::Reachable)
                    && (!fresh || self.now < e.observed_at.plus(r.fresh_for))
            })
        });
        match (usable, fresh) {
            (true, _) => None,
            (false, true) => Some(format!("no fresh, verified {what} on file")),
            (false, false) => Some(format!("no verified {what} on file")),
        }
    }

    /// Why a portal route could not be opened, if it could not: the code
    /// must go somewhere the step accepts and the evidence verifies.
    pub(super) fn portal_problem(
        &self,
        step: &crate::policy::Step,
        route: &Route,
        required: AssuranceLevel,
    ) -> Option<String> {
        if route.container != Container::Portal {
            return None;
        }
        let factor = match (step.step_up, route.second_factor) {
            (_, None) => return Some("the route names no channel for its one-time code".into()),
            (StepUp::None, Some(SecondFactor::None)) if required == AssuranceLevel::None => {
                return None;
            }
            (StepUp::None, Some(SecondFactor::None)) => {
                return Some(format!(
                    "it opens without a one-time code, but must reach `{required}`"
                ));
            }
            (_, Some(SecondFactor::None)) => {
                return Some(format!(
                    "it opens without a one-time code, but its step says `step_up = \"{}\"`",
                    step.step_up
                ));
            }
            (_, Some(f)) => f,
        };
        let channel = match factor {
            SecondFactor::Sms => Channel::Sms,
            _ => Channel::Email,
        };
        // The phone takes SMS, RCS and push notices; the mailbox e-mail.
        let notice_in_mailbox = route.notifier == Some(Notifier::EmailNotice);
        let same_inbox = notice_in_mailbox == (channel == Channel::Email);
        if step.step_up == StepUp::OtherChannel && route.notifier.is_some() && same_inbox {
            return Some(format!(
                "its code goes by {channel}, to the same inbox as its notice, and the step needs another"
            ));
        }
        self.contact_problem(channel, false)
            .map(|why| format!("its code goes by {channel}, but there is {why}"))
    }

    pub(super) fn check_route(
        &self,
        class: &Class,
        failed: &[FailedAttempt],
        floor: AssuranceLevel,
        route: &Route,
        outcome: &'static str,
    ) -> Result<(), Violation> {
        let name = route.name();
        let not_in_policy = |why: String| Violation::RouteNotInPolicy {
            outcome,
            class: class.name.clone(),
            route: name.clone(),
            why,
        };
        // The step the route claims to be, and what it requires.
        let (step, required) = match route.step {
            Some(i) => match class.ladder.get(i) {
                Some(s) => (s, class.required(s)),
                None => return Err(not_in_policy(format!("the ladder has no step {i}"))),
            },
            None => match &class.legacy {
                Some(s) if class.mode == crate::assurance::Mode::Observe => (s, class.required(s)),
                _ => {
                    return Err(not_in_policy(
                        "a legacy route, but the class does not observe one".to_owned(),
                    ));
                }
            },
        };
        if step.container != route.container {
            return Err(not_in_policy(format!(
                "its step carries `{}`",
                step.container
            )));
        }
        match route.notifier {
            Some(n) if !step.notifiers.contains(&n) => {
                return Err(not_in_policy(format!("its step has no notifier `{n}`")));
            }
            None if route.container.needs_notifier() => {
                return Err(not_in_policy(format!(
                    "`{}` needs a notifier and none was chosen",
                    route.container
                )));
            }
            _ => {}
        }

        if route.assurance < required {
            return Err(Violation::BelowMinimum {
                outcome,
                class: class.name.clone(),
                route: name,
                assurance: route.assurance,
                required,
            });
        }

        let step_name = || route.step.map_or("legacy".to_owned(), |i| i.to_string());
        // After a failure a re-decision only moves down the same ladder.
        if let (Some(i), Some(failed_step)) =
            (route.step, failed.iter().filter_map(|f| f.step).max())
            && i < failed_step
        {
            return Err(Violation::AboveFailedStep {
                outcome,
                route: name,
                step: i,
                failed_step,
            });
        }
        let used =
            std::iter::once(route.container.channel()).chain(route.notifier.map(Notifier::channel));
        for channel in used {
            if failed.contains(&FailedAttempt {
                step: route.step,
                channel,
            }) {
                return Err(Violation::FailedStepReused {
                    outcome,
                    route: name,
                    step: step_name(),
                    channel,
                });
            }
        }

        // A force override steers payload off its channel for every matching
        // recipient (any recipient when it names no labels).
        let steered = self.overrides.iter().find(|o| {
            matches!(o.effect, OverrideEffect::ForceStep(_))
                && o.channel == route.container.channel()
                && o.covers_recipient(self.recipient, self.now)
        });
        if let Some(o) = steered {
            return Err(Violation::SteeredOff {
                outcome,
                route: name,
                channel: o.channel,
                override_id: o.id.clone(),
            });
        }

        let evidence = match self.support(route.container) {
            Support::Disabled(override_id) => {
                return Err(Violation::DisabledByOverride {
                    outcome,
                    route: name,
                    channel: route.container.channel(),
                    override_id,
                });
            }
            Support::NoVerifiedPath => {
                return Err(Violation::NoVerifiedPath {
                    outcome,
                    route: name,
                    container: route.container,
                });
            }
            Support::Level(l) => l,
        };
        let supported = evidence.min(floor.max(AssuranceLevel::Transport));
        if route.assurance > supported {
            return Err(Violation::AboveEvidence {
                outcome,
                route: name,
                claimed: route.assurance,
                supported,
                evidence,
                floor,
            });
        }

        if let Some(n) = route.notifier
            && let Some(why) = self.notifier_problem(n)
        {
            return Err(Violation::NotifierUnusable {
                outcome,
                route: name,
                notifier: n,
                why,
            });
        }
        if let Some(why) = self.portal_problem(step, route, required) {
            return Err(Violation::PortalCannotBeOpened {
                outcome,
                route: name,
                why,
            });
        }
        Ok(())
    }
}
