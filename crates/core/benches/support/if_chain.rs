//! The baseline: the example policy's rules (`examples/policies/acme.toml`)
//! for the benchmarked classes, `payroll` and `hr_case`, written by hand as
//! a plain if-chain — what a team would write without a policy engine.
//!
//! It reads the same evidence and applies the same rules as `decide`: the
//! policy's evidence sources and freshness, its client minimums (names
//! without case) and policy revision, the enrolment age for attested
//! delivery, the shipped iOS override, the thread's floor (every active
//! device's best path) and the two ladders with their notifiers and the
//! portal's second factor. It answers only the route: no reasons, no
//! explanation, no thread update, no other class. It is a yardstick, not
//! a second implementation to maintain; `tests/if_chain.rs` checks it
//! picks what `decide` picks for every benchmarked input.

use ladder_core::assurance::{E2eeState, EvidenceSource, Transport};
use ladder_core::evidence::{ContactEvidence, DeviceEvidence, RecipientEvidence};
use ladder_core::version::{PlatformVersion, VersionRange};
use ladder_core::{AssuranceLevel, Container, Duration, Notifier, ThreadFloor, Timestamp};

/// What the if-chain decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Deliver {
        container: Container,
        notifier: Option<Notifier>,
        assurance: AssuranceLevel,
    },
    ConfirmationRequired {
        container: Container,
        notifier: Option<Notifier>,
        assurance: AssuranceLevel,
    },
    Escalate,
    Block,
}

/// The policy's version numbers, parsed once (they are not `const`).
#[derive(Debug)]
pub struct Acme {
    acme_app: PlatformVersion,
    acme_lite: PlatformVersion,
    google_messages: PlatformVersion,
    ios_advisory: VersionRange,
}

impl Default for Acme {
    fn default() -> Self {
        Acme {
            acme_app: PlatformVersion::from_parts(&[5, 2]),
            acme_lite: PlatformVersion::from_parts(&[1, 0]),
            google_messages: PlatformVersion::from_parts(&[20_250_101]),
            ios_advisory: ">=26.2,<26.4".parse().unwrap(),
        }
    }
}

/// `2027-03-31T00:00:00Z`, when the shipped override expires.
const IOS_ADVISORY_EXPIRES: Timestamp = Timestamp(1_806_451_200);

/// One device's evidence for one transport, as the policy credits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credit {
    Missing,
    /// Present but not usable (stale, unverified source, old client).
    Doubtful,
    Unreachable,
    Reachable(AssuranceLevel),
}

impl Acme {
    fn credit(&self, d: &DeviceEvidence, t: Transport, now: Timestamp) -> Credit {
        let Some(ev) = d.transports.get(&t) else {
            return Credit::Missing;
        };
        // [[evidence.source]]: what each source verifies, and for how long.
        let (reachable, e2ee, attestation, fresh_for) = match ev.source {
            EvidenceSource::SignedDeviceReport => (true, true, true, Duration::days(7)),
            EvidenceSource::ProviderCheck => (true, false, false, Duration::hours(24)),
            EvidenceSource::SelfReported => (false, false, false, Duration::hours(1)),
        };
        if ev.observed_at.plus(fresh_for) <= now {
            return Credit::Doubtful;
        }
        if ev.source == EvidenceSource::SignedDeviceReport {
            // min_client_version (any other client is stale), min_policy_revision = 3.
            let Some(client) = ev.client.as_ref().or(d.client.as_ref()) else {
                return Credit::Doubtful;
            };
            let name = client.name.as_str();
            let minimum = if name.eq_ignore_ascii_case("acme-app") {
                &self.acme_app
            } else if name.eq_ignore_ascii_case("acme-lite") {
                &self.acme_lite
            } else if name.eq_ignore_ascii_case("google-messages") {
                &self.google_messages
            } else {
                return Credit::Doubtful;
            };
            if client.version < *minimum || client.policy_revision < 3 {
                return Credit::Doubtful;
            }
        }
        if !reachable {
            return Credit::Doubtful;
        }
        if !ev.reachable {
            return Credit::Unreachable;
        }
        if matches!(t, Transport::Sms | Transport::Push) {
            return Credit::Reachable(AssuranceLevel::None);
        }
        let mut level = if ev.e2ee == E2eeState::Verified && e2ee {
            if ev.attested && attestation {
                AssuranceLevel::E2eeAttested
            } else {
                AssuranceLevel::E2ee
            }
        } else {
            AssuranceLevel::Transport
        };
        // enrolment_fresh_for = "365d"
        if level == AssuranceLevel::E2eeAttested && d.enrolled_at.plus(Duration::days(365)) <= now {
            level = AssuranceLevel::E2ee;
        }
        // [[override]] ios-26.2-rcs-e2ee: distrust RCS E2EE on iOS 26.2–26.3
        // (a device that does not say matches).
        if t == Transport::Rcs
            && level > AssuranceLevel::Transport
            && now < IOS_ADVISORY_EXPIRES
            && d.labels
                .os
                .as_ref()
                .is_none_or(|os| os.eq_ignore_ascii_case("ios"))
            && d.labels
                .os_version
                .as_ref()
                .is_none_or(|v| self.ios_advisory.contains(v))
        {
            level = AssuranceLevel::Transport;
        }
        Credit::Reachable(level)
    }

    /// A container's level over one transport: the weakest reachable
    /// device; one with doubtful evidence caps it at `transport`.
    fn container(
        &self,
        r: &RecipientEvidence,
        t: Transport,
        now: Timestamp,
    ) -> Option<AssuranceLevel> {
        let mut weakest: Option<AssuranceLevel> = None;
        let mut doubtful = false;
        for d in r.devices.iter().filter(|d| d.revoked_at.is_none()) {
            match self.credit(d, t, now) {
                Credit::Reachable(l) => weakest = Some(weakest.map_or(l, |w| w.min(l))),
                Credit::Doubtful => doubtful = true,
                Credit::Unreachable | Credit::Missing => {}
            }
        }
        let level = weakest?;
        if doubtful && level > AssuranceLevel::Transport {
            Some(AssuranceLevel::Transport)
        } else {
            Some(level)
        }
    }

    fn any_reachable(&self, r: &RecipientEvidence, t: Transport, now: Timestamp) -> bool {
        r.devices
            .iter()
            .filter(|d| d.revoked_at.is_none())
            .any(|d| matches!(self.credit(d, t, now), Credit::Reachable(_)))
    }

    /// The thread's floor after this decision: the minimum over active
    /// devices of each one's best path; a device revoked since the floor
    /// was set takes E2EE with it. Never raised.
    fn floor(&self, r: &RecipientEvidence, thread: &ThreadFloor, now: Timestamp) -> AssuranceLevel {
        let mut floor = thread.floor;
        let mut any = false;
        for d in &r.devices {
            match d.revoked_at {
                Some(at) => {
                    if at >= thread.since && floor > AssuranceLevel::Transport {
                        floor = AssuranceLevel::Transport;
                    }
                }
                None => {
                    any = true;
                    let mut best = AssuranceLevel::None;
                    for t in [Transport::InApp, Transport::Rcs, Transport::Sms] {
                        if let Credit::Reachable(l) = self.credit(d, t, now) {
                            best = best.max(l);
                        }
                    }
                    floor = floor.min(best);
                }
            }
        }
        if any { floor } else { AssuranceLevel::None }
    }

    /// The payroll and hr_case classes of the example policy.
    pub fn decide(
        &self,
        class: &str,
        r: &RecipientEvidence,
        thread: &ThreadFloor,
        now: Timestamp,
    ) -> Option<Choice> {
        let floor = self.floor(r, thread, now);
        // A container's level under the floor (which never caps below transport).
        let capped = |t| {
            self.container(r, t, now)
                .map(|l| l.min(floor.max(AssuranceLevel::Transport)))
        };
        let push = || {
            self.any_reachable(r, Transport::Push, now)
                .then_some(Notifier::PushNotice)
        };
        // confirm_downgrade = true for both classes.
        let deliver = |container, notifier, assurance| match thread.label {
            Some(label) if assurance < label => Choice::ConfirmationRequired {
                container,
                notifier,
                assurance,
            },
            _ => Choice::Deliver {
                container,
                notifier,
                assurance,
            },
        };
        match class {
            "payroll" => {
                // { container = "rcs", require = "e2ee" }
                if let Some(l) = capped(Transport::Rcs)
                    && l >= AssuranceLevel::E2ee
                {
                    return Some(deliver(Container::Rcs, None, l));
                }
                // { container = "in_app", notifiers = ["push_notice"], require = "e2ee" }
                if let Some(l) = capped(Transport::InApp)
                    && l >= AssuranceLevel::E2ee
                {
                    return Some(deliver(Container::InApp, push(), l));
                }
                // { container = "portal", notifiers = ["email_notice", "sms_notice"] },
                // the code by the other inbox than the notice's.
                let verified = |c: &Option<ContactEvidence>, source_ok: bool| {
                    c.as_ref().is_some_and(|c| self.contact(c, now, source_ok))
                };
                let email_notice = verified(&r.email, false);
                let sms_notice = self.any_reachable(r, Transport::Sms, now);
                let code_by_sms = verified(&r.phone, true);
                let code_by_email = verified(&r.email, true);
                if email_notice && code_by_sms {
                    return Some(deliver(
                        Container::Portal,
                        Some(Notifier::EmailNotice),
                        AssuranceLevel::Transport,
                    ));
                }
                if sms_notice && code_by_email {
                    return Some(deliver(
                        Container::Portal,
                        Some(Notifier::SmsNotice),
                        AssuranceLevel::Transport,
                    ));
                }
                // on_exhausted = "escalate"
                Some(Choice::Escalate)
            }
            "hr_case" => {
                // { container = "in_app", notifiers = ["push_notice"] }, minimum e2ee_attested
                if let Some(l) = capped(Transport::InApp)
                    && l >= AssuranceLevel::E2eeAttested
                {
                    return Some(deliver(Container::InApp, push(), l));
                }
                // on_exhausted = "block"
                Some(Choice::Block)
            }
            _ => None,
        }
    }

    /// A contact point on file from a source that verifies reachability;
    /// fresh too, unless `any_age` (a portal's code is sent later).
    fn contact(&self, c: &ContactEvidence, now: Timestamp, any_age: bool) -> bool {
        let fresh_for = match c.source {
            EvidenceSource::SignedDeviceReport => Duration::days(7),
            EvidenceSource::ProviderCheck => Duration::hours(24),
            EvidenceSource::SelfReported => return false,
        };
        any_age || now < c.observed_at.plus(fresh_for)
    }
}

/// What `decide`'s outcome says in the if-chain's terms.
pub fn choice_of(o: &ladder_core::Outcome) -> Choice {
    use ladder_core::Outcome;
    match o {
        Outcome::Deliver { route } => Choice::Deliver {
            container: route.container,
            notifier: route.notifier,
            assurance: route.assurance,
        },
        Outcome::ConfirmationRequired { route, .. } => Choice::ConfirmationRequired {
            container: route.container,
            notifier: route.notifier,
            assurance: route.assurance,
        },
        Outcome::Escalate => Choice::Escalate,
        Outcome::Block => Choice::Block,
        Outcome::Hold { .. } => unreachable!("neither benchmarked class holds"),
    }
}
