//! Replays a [`Scenario`] with the real handshake, ratchet and decision code,
//! checking each send against what the file expects.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

mod handshake_step;

use super::check::{check, row};
use super::{Action, Expect, Scenario, ScenarioStep};
use crate::assurance::{AssuranceLevel, Channel, Container, E2eeState, EvidenceSource};
use crate::decision::{
    Confirmation, Decision, DecisionInput, FailedAttempt, MessageMeta, Outcome, decide,
};
use crate::evidence::{ContactEvidence, DeviceEvidence, RecipientEvidence, TransportEvidence};
use crate::handshake::SignedReport;
use crate::overrides::Override;
use crate::policy::Policy;
use crate::thread::{Assessment, ThreadFloor, assess};
use crate::time::{Duration, Timestamp};

/// One row of the `simulate` table: a send and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub step: usize,
    pub message: String,
    pub class: String,
    pub outcome: String,
    pub route: String,
    pub assurance: String,
    pub floor: AssuranceLevel,
    pub downgrade: bool,
    pub enforced: Option<String>,
    pub skips: String,
}

/// Something that happened on the timeline besides a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEvent {
    pub step: usize,
    pub text: String,
}

/// The first step that did not behave as the file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub step: usize,
    pub label: String,
    pub field: String,
    pub expected: String,
    pub actual: String,
    /// The decision's explanation, when a send mismatched.
    pub explanation: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ScenarioReport {
    pub rows: Vec<Row>,
    pub events: Vec<RunEvent>,
    pub decisions: Vec<Decision>,
    pub mismatch: Option<Mismatch>,
}

const CHALLENGE_TTL: Duration = Duration::seconds(300);

struct Sim<'a> {
    policy: &'a Policy,
    now: Timestamp,
    recipient: RecipientEvidence,
    keys: BTreeMap<String, SigningKey>,
    last_signed: BTreeMap<String, SignedReport>,
    thread: Option<ThreadFloor>,
    overrides: Vec<Override>,
    down: BTreeSet<Channel>,
    nonces: u64,
    /// Messages awaiting the sender's confirmation, with what was shown.
    pending: BTreeMap<String, (MessageMeta, Container, AssuranceLevel)>,
    /// Every message sent, by id: a send that reuses an id re-decides that
    /// message (a held message retried), keeping its acceptance time.
    accepted: BTreeMap<String, (String, Timestamp)>,
    report: ScenarioReport,
}

fn device_key(name: &str, purpose: &str) -> SigningKey {
    let seed: [u8; 32] = Sha256::digest(format!("ladder simulate {purpose}\n{name}")).into();
    SigningKey::from_bytes(&seed)
}

/// Runs a scenario against an already-parsed policy. Stops at the first
/// mismatch.
pub fn run(scenario: &Scenario, policy: &Policy) -> ScenarioReport {
    let mut sim = Sim {
        policy,
        now: scenario.start,
        recipient: RecipientEvidence {
            devices: Vec::new(),
            email: scenario.email.then_some(ContactEvidence {
                source: EvidenceSource::ProviderCheck,
                observed_at: scenario.start,
            }),
            phone: scenario.phone.then_some(ContactEvidence {
                source: EvidenceSource::ProviderCheck,
                observed_at: scenario.start,
            }),
        },
        keys: BTreeMap::new(),
        last_signed: BTreeMap::new(),
        thread: None,
        overrides: Vec::new(),
        down: BTreeSet::new(),
        nonces: 0,
        pending: BTreeMap::new(),
        accepted: BTreeMap::new(),
        report: ScenarioReport {
            rows: Vec::new(),
            events: Vec::new(),
            decisions: Vec::new(),
            mismatch: None,
        },
    };
    for step in &scenario.steps {
        if let Err(m) = sim.step(step) {
            sim.report.mismatch = Some(*m);
            break;
        }
    }
    sim.report
}

pub(super) type StepResult = Result<(), Box<Mismatch>>;

pub(super) fn mismatch(
    step: &ScenarioStep,
    field: &str,
    expected: impl ToString,
    actual: impl ToString,
) -> Box<Mismatch> {
    Box::new(Mismatch {
        step: step.number,
        label: step.action.label(),
        field: field.to_owned(),
        expected: expected.to_string(),
        actual: actual.to_string(),
        explanation: None,
    })
}

impl Sim<'_> {
    fn event(&mut self, step: usize, text: String) {
        self.report.events.push(RunEvent { step, text });
    }

    fn device_mut(
        &mut self,
        step: &ScenarioStep,
        id: &str,
    ) -> Result<&mut DeviceEvidence, Box<Mismatch>> {
        self.device_even_revoked(step, id).and_then(|d| {
            if d.is_revoked() {
                Err(mismatch(
                    step,
                    "device",
                    format!("an active device `{id}`"),
                    "it is revoked",
                ))
            } else {
                Ok(d)
            }
        })
    }

    /// Handshakes reach revoked devices too, so that verification can
    /// reject (and the audit record) them.
    fn device_even_revoked(
        &mut self,
        step: &ScenarioStep,
        id: &str,
    ) -> Result<&mut DeviceEvidence, Box<Mismatch>> {
        self.recipient
            .devices
            .iter_mut()
            .find(|d| d.id == id)
            .ok_or_else(|| {
                mismatch(
                    step,
                    "device",
                    format!("an active device `{id}`"),
                    "no such device (add it first)",
                )
            })
    }

    fn all_overrides(&self) -> Vec<&Override> {
        self.policy
            .overrides()
            .iter()
            .chain(&self.overrides)
            .collect()
    }

    fn step(&mut self, step: &ScenarioStep) -> StepResult {
        let n = step.number;
        match &step.action {
            Action::AddDevice { device, labels } => {
                if self.recipient.devices.iter().any(|d| d.id == *device) {
                    return Err(mismatch(
                        step,
                        "device",
                        "a new device id",
                        format!("`{device}` already exists"),
                    ));
                }
                self.keys
                    .insert(device.clone(), device_key(device, "device key"));
                self.recipient.devices.push(DeviceEvidence::new(
                    device.clone(),
                    labels.clone(),
                    self.now,
                ));
            }
            Action::UpdateDevice { device, labels } => {
                let d = self.device_mut(step, device)?;
                let l = labels.clone();
                d.labels.os = l.os.or(d.labels.os.take());
                d.labels.os_version = l.os_version.or(d.labels.os_version.take());
                d.labels.client = l.client.or(d.labels.client.take());
                d.labels.client_version = l.client_version.or(d.labels.client_version.take());
                d.labels.carrier = l.carrier.or(d.labels.carrier.take());
            }
            Action::Handshake(h) => self.handshake(step, h)?,
            Action::ProviderCheck { device, transports } => {
                let now = self.now;
                let d = self.device_mut(step, device)?;
                for (t, reachable) in transports {
                    // A provider check never overrides signed evidence about
                    // E2EE; it can only report the number unreachable.
                    let keep_signed = d.transports.get(t).is_some_and(|e| {
                        e.source == EvidenceSource::SignedDeviceReport && *reachable
                    });
                    if !keep_signed {
                        d.transports.insert(
                            *t,
                            TransportEvidence {
                                client: None,
                                reachable: *reachable,
                                e2ee: E2eeState::Unknown,
                                attested: false,
                                source: EvidenceSource::ProviderCheck,
                                observed_at: now,
                            },
                        );
                    }
                }
            }
            Action::RevokeDevice { device } | Action::RemoveDevice { device } => {
                let now = self.now;
                self.device_mut(step, device)?.revoked_at = Some(now);
            }
            Action::Advance(d) => self.now = self.now.plus(*d),
            Action::SetOverride(o) => {
                self.overrides.retain(|x| x.id != o.id);
                self.overrides.push((**o).clone());
            }
            Action::ClearOverride(id) => {
                let before = self.overrides.len();
                self.overrides.retain(|x| x.id != *id);
                if before == self.overrides.len() {
                    return Err(mismatch(
                        step,
                        "override",
                        format!("a run-time override `{id}`"),
                        "none is set",
                    ));
                }
            }
            Action::ProviderDown(c) => {
                self.down.insert(*c);
            }
            Action::ProviderUp(c) => {
                self.down.remove(c);
            }
            Action::Send(s) => {
                let id = s.id.clone().unwrap_or_else(|| format!("m{n}"));
                // A confirmation token issued for another message.
                let confirmation = s.confirmation_of.as_ref().map(|other| {
                    let shown = self.pending.get(other);
                    Confirmation {
                        message_id: other.clone(),
                        container: shown.map_or(Container::Portal, |p| p.1),
                        assurance: shown.map_or(AssuranceLevel::None, |p| p.2),
                    }
                });
                let accepted_at = match self.accepted.get(&id) {
                    Some((class, _)) if *class != s.class => {
                        return Err(mismatch(
                            step,
                            "id",
                            format!("message `{id}` re-sent with its class `{class}`"),
                            format!("class `{}`", s.class),
                        ));
                    }
                    Some((_, at)) => *at,
                    None => self.now,
                };
                self.accepted
                    .insert(id.clone(), (s.class.clone(), accepted_at));
                let meta = MessageMeta {
                    id,
                    class: s.class.clone(),
                    accepted_at,
                    confirmation,
                };
                self.send(step, meta, &s.expect)?;
            }
            Action::Confirm { id, expect } => {
                let Some((mut meta, container, assurance)) = self.pending.get(id).cloned() else {
                    return Err(mismatch(
                        step,
                        "confirm",
                        format!("message `{id}` awaiting confirmation"),
                        "no such message",
                    ));
                };
                meta.confirmation = Some(Confirmation {
                    message_id: id.clone(),
                    container,
                    assurance,
                });
                self.send(step, meta, expect)?;
            }
        }
        self.observe_floor(n);
        match (step.expect_floor, &self.thread) {
            (Some(want), Some(t)) if t.floor != want => {
                return Err(mismatch(step, "floor", want, t.floor));
            }
            (Some(want), None) => {
                return Err(mismatch(
                    step,
                    "floor",
                    want,
                    "no thread yet (a thread opens at its first send)",
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// What the recipient's devices verifiably support right now.
    fn assessment(&self) -> Assessment {
        let overrides = self.all_overrides();
        assess(
            self.policy.evidence(),
            &self.recipient,
            &overrides,
            self.now,
        )
    }

    /// Drops the floor at once when evidence changed for the worse.
    fn observe_floor(&mut self, n: usize) {
        let Some(thread) = &self.thread else { return };
        let a = self.assessment();
        if let Some(drop) = thread.observe(&a, &self.recipient, self.now) {
            let mut t = thread.clone();
            t.apply_drop(&drop);
            self.thread = Some(t);
            self.event(
                n,
                format!("thread floor dropped {} -> {}", drop.from, drop.to),
            );
        }
    }

    fn send(&mut self, step: &ScenarioStep, meta: MessageMeta, expect: &Expect) -> StepResult {
        if self.policy.class(&meta.class).is_none() {
            return Err(mismatch(
                step,
                "class",
                "a class defined by the policy",
                format!("unknown class `{}`", meta.class),
            ));
        }
        let thread = match &self.thread {
            Some(t) => t.clone(),
            None => ThreadFloor::open(&self.assessment(), self.now),
        };
        let mut failed: Vec<FailedAttempt> = Vec::new();
        let ladder_len = self.policy.class(&meta.class).map_or(0, |c| c.ladder.len());
        let mut decision = None;
        // Each failure excludes one (step, channel); the loop is bounded by
        // the number of channels a ladder can name.
        for _ in 0..(ladder_len + 2) * 6 {
            let input = DecisionInput {
                message: &meta,
                recipient: &self.recipient,
                thread: &thread,
                overrides: &self.overrides,
                failed: &failed,
                now: self.now,
            };
            let d = match decide(self.policy, &input) {
                Ok(d) => d,
                Err(e) => return Err(mismatch(step, "class", "a class defined by the policy", e)),
            };
            let failure = match &d.outcome {
                Outcome::Deliver { route } => {
                    let on = [
                        Some(route.container.channel()),
                        route.notifier.map(|n| n.channel()),
                    ]
                    .into_iter()
                    .flatten()
                    .find(|c| self.down.contains(c));
                    on.map(|channel| FailedAttempt {
                        step: route.step,
                        channel,
                    })
                }
                _ => None,
            };
            match failure {
                Some(f) if !failed.contains(&f) => {
                    self.event(
                        step.number,
                        format!(
                            "provider down: delivery of `{}` failed on {}; re-deciding",
                            meta.id, f.channel
                        ),
                    );
                    failed.push(f);
                }
                _ => {
                    decision = Some(d);
                    break;
                }
            }
        }
        let Some(d) = decision else {
            return Err(mismatch(
                step,
                "decision",
                "a final decision",
                "the failure loop did not settle",
            ));
        };
        self.thread = Some(d.thread.after.clone());
        if let Some(drop) = &d.thread.drop {
            self.event(
                step.number,
                format!("thread floor dropped {} -> {}", drop.from, drop.to),
            );
        }
        if let Outcome::ConfirmationRequired { route, .. } = &d.outcome {
            self.pending.insert(
                meta.id.clone(),
                (meta.clone(), route.container, route.assurance),
            );
        } else {
            self.pending.remove(&meta.id);
        }
        let row = row(step.number, &d);
        self.report.rows.push(row);
        let checked = check(step, expect, &d);
        self.report.decisions.push(d);
        checked
    }
}
