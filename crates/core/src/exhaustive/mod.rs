//! Exhaustive invariant checking over a policy: `ladder simulate --exhaustive`.
//!
//! [`check`] enumerates a bounded but meaningful state space, calls
//! [`decide`] on every state and holds each decision to invariants 1–3 with
//! [`crate::invariants`]:
//!
//! - **devices**: none, one, or an unordered pair (repeats allowed) drawn
//!   from a catalogue of per-device evidence states. A device's signed
//!   evidence is one report (a report replaces the device's whole signed
//!   state), so it has one age and, in the scenario language, one
//!   `attested` flag. The catalogue crosses every RCS state (missing,
//!   provider check reachable or unreachable, signed verified, claimed,
//!   absent) with every in-app state (missing, signed verified, claimed),
//!   each with and without attestation where something is verified. SMS
//!   reachability (provider check), push reachability (in the report) and
//!   labels matching each policy override are spread over that grid so that
//!   each of their values meets every RCS and every in-app state. On top
//!   come devices whose whole signed report is stale, two whose report
//!   attests one transport and not the other (the API allows it, scenarios
//!   cannot say it), devices whose client the policy treats as stale (when
//!   it names minimums), and devices revoked recently (since the thread's
//!   floor was set) or long ago.
//! - contact points on file: none, an e-mail address, a phone number, or
//!   both (what a portal's one-time code can go to);
//! - **overrides**: none, or each policy override alone. `now` is past every
//!   policy override's expiry, and the override under test is passed as a
//!   run-time copy, so exactly one is active. With no device or one device,
//!   also each of a set of synthetic run-time overrides matching every
//!   device: disable each channel the policy uses, distrust E2EE on RCS and
//!   in-app, steer RCS and in-app traffic to each container on another channel. For a pair of devices of
//!   which exactly one has the neutral labels, also RCS and in-app disabled
//!   for that one device only;
//! - every thread floor, and every thread label (none or each level);
//! - every class, and every single failure: none, each ladder step failing
//!   on its container's channel, and an observing class's legacy route
//!   failing.
//!
//! Follow-ups: a decision that needs the sender's confirmation is decided
//! again with it, and a delivery that names a notifier is decided again with
//! that notifier failed. Each recipient state is also checked for
//! [`ThreadFloor::elevate`] under every floor and four `since` times: before
//! everything fresh, between the provider checks (half an hour before `now`)
//! and the signed reports (at `now`), at `now`, and just before stale
//! reports.
//!
//! On the first violation the state is shrunk (a natural thread, fewer
//! devices, simpler evidence, no failure, no override…) while it still
//! violates an invariant, and written out as a ready-to-run scenario file
//! that rebuilds it as closely as the scenario language allows. The scenario
//! is replayed here and says whether it reproduces the violating decision.

use std::fmt::Write;

use crate::assurance::{
    AssuranceLevel, Channel, Container, E2eeState, EvidenceSource, Mode, Transport,
};
use crate::decision::{
    Confirmation, Decision, DecisionInput, FailedAttempt, MessageMeta, Outcome, decide,
};
use crate::evidence::{
    ClientInfo, ContactEvidence, Credit, DeviceEvidence, PlatformLabels, RecipientEvidence,
    TransportEvidence, credit,
};
use crate::invariants::{self, Violation};
use crate::overrides::{LabelMatch, Override, OverrideEffect};
use crate::policy::Policy;
use crate::reason::SkipReason;
use crate::scenario::{parse_scenario, run};
use crate::thread::{ThreadFloor, assess};
use crate::time::{Duration, Timestamp};
use crate::version::{PlatformVersion, VersionRange};

/// What an exhaustive run found.
#[derive(Debug, Clone)]
pub struct ExhaustiveReport {
    /// Distinct (devices, contacts, override, floor, label) states checked.
    pub states: u64,
    /// Decisions made and checked, follow-ups included.
    pub decisions: u64,
    pub counterexample: Option<Counterexample>,
}

/// A state that violates an invariant, as a ready-to-run scenario file.
#[derive(Debug, Clone)]
pub struct Counterexample {
    pub violation: String,
    pub scenario: String,
}

/// 2027-01-01T00:00:00Z, the scenario language's default start.
const DEFAULT_NOW: Timestamp = Timestamp(1_798_761_600);
/// How long the run-time copy of an override lasts.
const OVERRIDE_FOR: Duration = Duration::days(365);
const MESSAGE_ID: &str = "x1";
/// The OS label of devices that no policy override matches.
const NEUTRAL_OS: &str = "neutral-os";

mod catalogue;
mod counterexample;
mod scenario_text;

use catalogue::*;
use counterexample::counterexample;

fn device_id(i: usize) -> String {
    format!("d{}", i + 1)
}

fn message(class: &str, now: Timestamp, confirmation: Option<Confirmation>) -> MessageMeta {
    MessageMeta {
        id: MESSAGE_ID.into(),
        class: class.into(),
        accepted_at: now,
        confirmation,
    }
}

/// The single failures each class is checked under.
fn failures(policy: &Policy) -> Vec<Vec<Vec<FailedAttempt>>> {
    policy
        .classes()
        .iter()
        .map(|c| {
            let mut out = vec![Vec::new()];
            for (i, s) in c.ladder.iter().enumerate() {
                out.push(vec![FailedAttempt {
                    step: Some(i),
                    channel: s.container.channel(),
                }]);
            }
            if let (Mode::Observe, Some(l)) = (c.mode, &c.legacy) {
                out.push(vec![FailedAttempt {
                    step: None,
                    channel: l.container.channel(),
                }]);
            }
            out
        })
        .collect()
}

/// One fully described state, for shrinking and for the scenario.
#[derive(Debug, Clone)]
struct State {
    devices: Vec<DeviceSpec>,
    email: bool,
    phone: bool,
    override_: Option<usize>,
    thread: ThreadFloor,
    class: usize,
    failed: Vec<FailedAttempt>,
    /// The decision checked is the one after the sender confirmed.
    confirmed: bool,
    /// The violation is in `ThreadFloor::elevate`, not a decision.
    elevation: bool,
    /// The last device was added to hold a natural thread's floor where the
    /// checked state set it directly.
    floor_holder: bool,
}

/// What went wrong in a state: the violation and, for a decision, the
/// decision that broke it (after confirmation, when confirmed) and the
/// first decision.
struct Finding {
    violation: Violation,
    decisions: Vec<Decision>,
}

fn evaluate(policy: &Policy, setting: &Setting, state: &State) -> Option<Finding> {
    let recipient = setting.recipient(&state.devices, state.email, state.phone);
    let runtime = setting.overrides(state.override_);
    if state.elevation {
        let overrides = invariants::all_overrides(policy, runtime);
        return invariants::check_elevation(
            policy.evidence(),
            &recipient,
            &overrides,
            &state.thread,
            setting.now,
        )
        .err()
        .map(|violation| Finding {
            violation,
            decisions: Vec::new(),
        });
    }
    let class = policy.classes().get(state.class)?;
    let meta = message(&class.name, setting.now, None);
    let input = DecisionInput {
        message: &meta,
        recipient: &recipient,
        thread: &state.thread,
        overrides: runtime,
        failed: &state.failed,
        now: setting.now,
    };
    let first = decide(policy, &input).ok()?;
    if !state.confirmed {
        return invariants::check_decision(policy, &input, &first)
            .err()
            .map(|violation| Finding {
                violation,
                decisions: vec![first],
            });
    }
    let Outcome::ConfirmationRequired { route, .. } = &first.outcome else {
        return None;
    };
    let confirmed = message(
        &class.name,
        setting.now,
        Some(Confirmation {
            message_id: MESSAGE_ID.into(),
            container: route.container,
            assurance: route.assurance,
        }),
    );
    let input = DecisionInput {
        message: &confirmed,
        ..input
    };
    let second = decide(policy, &input).ok()?;
    invariants::check_decision(policy, &input, &second)
        .err()
        .map(|violation| Finding {
            violation,
            decisions: vec![first, second],
        })
}

/// Checks invariants 1–3 over every state of the enumeration described in
/// the module documentation. `policy_path` is what the counterexample
/// scenario names as its policy.
pub fn check(policy: &Policy, policy_path: &str) -> ExhaustiveReport {
    let setting = Setting::new(policy);
    let catalogue = setting.catalogue();
    let failures = failures(policy);
    let metas: Vec<MessageMeta> = policy
        .classes()
        .iter()
        .map(|c| message(&c.name, setting.now, None))
        .collect();
    let mut report = ExhaustiveReport {
        states: 0,
        decisions: 0,
        counterexample: None,
    };

    let mut configs: Vec<Vec<DeviceSpec>> = vec![Vec::new()];
    for (i, a) in catalogue.iter().enumerate() {
        configs.push(vec![a.clone()]);
        for b in catalogue.iter().skip(i) {
            configs.push(vec![a.clone(), b.clone()]);
        }
    }
    let policy_options: Vec<Option<usize>> = std::iter::once(None)
        .chain((0..setting.policy_overrides).map(Some))
        .collect();
    let pair_options: Vec<Option<usize>> = policy_options
        .iter()
        .copied()
        .chain((setting.pair_overrides..setting.runtime.len()).map(Some))
        .collect();
    let single_options: Vec<Option<usize>> = std::iter::once(None)
        .chain((0..setting.pair_overrides).map(Some))
        .collect();
    let labels: Vec<Option<AssuranceLevel>> = std::iter::once(None)
        .chain(AssuranceLevel::ALL.iter().copied().map(Some))
        .collect();
    let elevation_since = [
        setting.since,
        minus(setting.now, Duration::seconds(900)),
        setting.now,
        minus(setting.stale_at, Duration(1)),
    ];

    for devices in &configs {
        // The pair overrides switch off exactly one device of a pair: the
        // one with neutral labels when the other's differ.
        let one_neutral =
            matches!(devices.as_slice(), [a, b] if (a.labels == 0) != (b.labels == 0));
        for (email, phone) in [(false, false), (true, false), (false, true), (true, true)] {
            let override_options = match devices.len() {
                0 | 1 => &single_options,
                _ if one_neutral => &pair_options,
                _ => &policy_options,
            };
            let recipient = setting.recipient(devices, email, phone);
            for ov in override_options {
                let runtime = setting.overrides(*ov);
                let all = invariants::all_overrides(policy, runtime);
                let found = |thread: ThreadFloor,
                             class: usize,
                             failed: Vec<FailedAttempt>,
                             confirmed: bool,
                             elevation: bool| State {
                    devices: devices.clone(),
                    email,
                    phone,
                    override_: *ov,
                    thread,
                    class,
                    failed,
                    confirmed,
                    elevation,
                    floor_holder: false,
                };
                // Contact points do not enter an elevation: check it once.
                if !email && !phone {
                    for floor in AssuranceLevel::ALL {
                        for since in elevation_since {
                            let thread = ThreadFloor {
                                floor,
                                since,
                                label: None,
                            };
                            let checked = invariants::check_elevation(
                                policy.evidence(),
                                &recipient,
                                &all,
                                &thread,
                                setting.now,
                            );
                            if checked.is_err() {
                                let state = found(thread, 0, Vec::new(), false, true);
                                report.counterexample =
                                    Some(counterexample(policy, &setting, policy_path, state));
                                return report;
                            }
                        }
                    }
                }
                for floor in AssuranceLevel::ALL {
                    for label in &labels {
                        report.states += 1;
                        let thread = ThreadFloor {
                            floor,
                            since: setting.since,
                            label: *label,
                        };
                        for (class, (meta, class_failures)) in
                            metas.iter().zip(&failures).enumerate()
                        {
                            for failed in class_failures {
                                let input = DecisionInput {
                                    message: meta,
                                    recipient: &recipient,
                                    thread: &thread,
                                    overrides: runtime,
                                    failed,
                                    now: setting.now,
                                };
                                let Ok(d) = decide(policy, &input) else {
                                    continue;
                                };
                                report.decisions += 1;
                                if invariants::check_decision(policy, &input, &d).is_err() {
                                    let state =
                                        found(thread.clone(), class, failed.clone(), false, false);
                                    report.counterexample =
                                        Some(counterexample(policy, &setting, policy_path, state));
                                    return report;
                                }
                                // Follow-ups: the sender confirms; the notifier fails.
                                let follow_up = match &d.outcome {
                                    Outcome::ConfirmationRequired { route, .. } => Some((
                                        Some((route.container, route.assurance)),
                                        failed.clone(),
                                    )),
                                    Outcome::Deliver { route } if failed.is_empty() => {
                                        route.notifier.map(|n| {
                                            (
                                                None,
                                                vec![FailedAttempt {
                                                    step: route.step,
                                                    channel: n.channel(),
                                                }],
                                            )
                                        })
                                    }
                                    _ => None,
                                };
                                let Some((confirm, failed2)) = follow_up else {
                                    continue;
                                };
                                let meta2 = MessageMeta {
                                    confirmation: confirm.map(|(container, assurance)| {
                                        Confirmation {
                                            message_id: MESSAGE_ID.into(),
                                            container,
                                            assurance,
                                        }
                                    }),
                                    ..meta.clone()
                                };
                                let input = DecisionInput {
                                    message: &meta2,
                                    failed: &failed2,
                                    ..input
                                };
                                let Ok(d2) = decide(policy, &input) else {
                                    continue;
                                };
                                report.decisions += 1;
                                if invariants::check_decision(policy, &input, &d2).is_err() {
                                    let state = found(
                                        thread.clone(),
                                        class,
                                        failed2,
                                        confirm.is_some(),
                                        false,
                                    );
                                    report.counterexample =
                                        Some(counterexample(policy, &setting, policy_path, state));
                                    return report;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    report
}

#[cfg(test)]
mod tests;
