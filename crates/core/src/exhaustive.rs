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
//! - an e-mail address on file or not;
//! - **overrides**: none, or each policy override alone. `now` is past every
//!   policy override's expiry, and the override under test is passed as a
//!   run-time copy, so exactly one is active. With no device or one device,
//!   also each of a set of synthetic run-time overrides matching every
//!   device: disable each channel the policy uses, distrust E2EE on RCS and
//!   in-app, force each container its ladders use. For a pair of devices of
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
    /// Distinct (devices, e-mail, override, floor, label) states checked.
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

/// What a device's evidence says about RCS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rcs {
    Missing,
    ProviderReachable,
    ProviderUnreachable,
    Verified,
    Claimed,
    Absent,
}

const RCS: [Rcs; 6] = [
    Rcs::Missing,
    Rcs::ProviderReachable,
    Rcs::ProviderUnreachable,
    Rcs::Verified,
    Rcs::Claimed,
    Rcs::Absent,
];

impl Rcs {
    /// What the signed report says, if it names RCS.
    fn reported(self) -> Option<E2eeState> {
        match self {
            Rcs::Verified => Some(E2eeState::Verified),
            Rcs::Claimed => Some(E2eeState::Claimed),
            Rcs::Absent => Some(E2eeState::Absent),
            Rcs::Missing | Rcs::ProviderReachable | Rcs::ProviderUnreachable => None,
        }
    }
}

/// What a device's signed report says about the in-app channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InApp {
    Missing,
    Verified,
    Claimed,
}

const IN_APP: [InApp; 3] = [InApp::Missing, InApp::Verified, InApp::Claimed];

impl InApp {
    fn reported(self) -> Option<E2eeState> {
        match self {
            InApp::Verified => Some(E2eeState::Verified),
            InApp::Claimed => Some(E2eeState::Claimed),
            InApp::Missing => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Revoked {
    /// At `now`: after the thread's floor was set.
    Recently,
    /// Before the thread's floor was set.
    LongAgo,
}

/// One device's evidence, in the catalogue's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DeviceSpec {
    rcs: Rcs,
    in_app: InApp,
    /// Attestation accompanied the signed report's RCS / in-app entries.
    rcs_attested: bool,
    in_app_attested: bool,
    /// The whole signed report is older than the policy keeps it fresh.
    stale: bool,
    /// The provider checks (RCS, SMS) are older than the policy keeps them
    /// fresh.
    provider_stale: bool,
    sms: bool,
    push: bool,
    client_behind: bool,
    /// 0: labels no policy override matches; `i + 1`: override `i` matches.
    labels: usize,
    revoked: Option<Revoked>,
}

/// Times, labels and clients derived from the policy.
#[derive(Debug, Clone)]
struct Setting {
    now: Timestamp,
    /// The thread's `since` in enumerated states.
    since: Timestamp,
    /// When stale signed evidence was observed.
    stale_at: Timestamp,
    /// When a revoked device's evidence was observed.
    revoked_evidence_at: Timestamp,
    /// When an active device's provider checks were observed: half an hour
    /// before its signed report, so that an elevation can tell them apart.
    provider_at: Timestamp,
    /// When stale provider checks were observed.
    provider_stale_at: Timestamp,
    revoked_long_ago: Timestamp,
    /// Run-time copies of the policy's overrides, then the synthetic ones.
    runtime: Vec<Override>,
    /// How many of `runtime` are copies of the policy's overrides.
    policy_overrides: usize,
    /// Where the synthetic overrides for device pairs start in `runtime`.
    pair_overrides: usize,
    /// Index 0: neutral labels; `i + 1`: labels matching override `i`.
    labels: Vec<PlatformLabels>,
    client_ok: ClientInfo,
    client_behind: Option<ClientInfo>,
}

fn minus(t: Timestamp, d: Duration) -> Timestamp {
    Timestamp(t.0.saturating_sub_unsigned(d.0))
}

/// Parts of a version, through its text (the parts themselves are private).
fn parts(v: &PlatformVersion) -> Vec<u32> {
    v.to_string()
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// A version strictly below `v`, if there is one.
fn predecessor(v: &PlatformVersion) -> Option<PlatformVersion> {
    let mut p = parts(v);
    while p.last() == Some(&0) {
        p.pop();
    }
    let last = p.last_mut()?;
    *last = last.checked_sub(1)?;
    Some(PlatformVersion::from_parts(&p))
}

/// Versions around every bound a range names, plus extremes.
fn version_candidates(ranges: &[&VersionRange]) -> Vec<PlatformVersion> {
    let mut out = vec![
        PlatformVersion::from_parts(&[0]),
        PlatformVersion::from_parts(&[99_999]),
    ];
    for r in ranges {
        for bound in r.to_string().split(',') {
            let digits = bound.trim().trim_start_matches(['<', '>', '=']);
            let Ok(v) = digits.parse::<PlatformVersion>() else {
                continue;
            };
            let mut above = parts(&v);
            if above.len() < 4 {
                above.push(1);
            } else if let Some(l) = above.last_mut() {
                *l = l.saturating_add(1);
            }
            out.push(PlatformVersion::from_parts(&above));
            if let Some(p) = predecessor(&v) {
                out.push(p);
            }
            out.push(v);
        }
    }
    out
}

impl Setting {
    fn new(policy: &Policy) -> Setting {
        let last_expiry = policy.overrides().iter().map(|o| o.expires).max();
        let now = last_expiry.map_or(DEFAULT_NOW, |e| e.max(DEFAULT_NOW));
        let signed_fresh = policy
            .evidence()
            .sources
            .get(&EvidenceSource::SignedDeviceReport)
            .map_or(Duration::days(1), |r| r.fresh_for);
        let mut runtime: Vec<Override> = policy
            .overrides()
            .iter()
            .map(|o| Override {
                expires: now.plus(OVERRIDE_FOR),
                ..o.clone()
            })
            .collect();
        let policy_overrides = runtime.len();
        runtime.extend(synthetic_overrides(policy, now.plus(OVERRIDE_FOR)));
        let pair_overrides = runtime.len();
        for ch in [Channel::Rcs, Channel::InApp] {
            runtime.push(Override {
                id: format!("exhaustive-disable-{ch}-neutral-os"),
                channel: ch,
                matcher: LabelMatch {
                    os: Some(NEUTRAL_OS.into()),
                    ..LabelMatch::default()
                },
                effect: OverrideEffect::Disable,
                reason: "synthetic override of the exhaustive check".into(),
                author: "ladder simulate --exhaustive".into(),
                expires: now.plus(OVERRIDE_FOR),
            });
        }

        let os_ranges: Vec<&VersionRange> = policy
            .overrides()
            .iter()
            .filter_map(|o| o.matcher.os_version.as_ref())
            .collect();
        let client_ranges: Vec<&VersionRange> = policy
            .overrides()
            .iter()
            .filter_map(|o| o.matcher.client_version.as_ref())
            .collect();
        let os_candidates = version_candidates(&os_ranges);
        let client_candidates = version_candidates(&client_ranges);
        let outside = |candidates: &[PlatformVersion], ranges: &[&VersionRange]| {
            candidates
                .iter()
                .find(|v| !ranges.iter().any(|r| r.contains(v)))
                .or(candidates.first())
                .cloned()
        };
        let neutral = PlatformLabels {
            os: Some(NEUTRAL_OS.into()),
            os_version: outside(&os_candidates, &os_ranges),
            client: Some("neutral-client".into()),
            client_version: outside(&client_candidates, &client_ranges),
            carrier: Some("neutral-carrier".into()),
        };
        let inside = |candidates: &[PlatformVersion], r: &VersionRange| {
            candidates.iter().find(|v| r.contains(v)).cloned()
        };
        let mut labels = vec![neutral.clone()];
        for o in policy.overrides() {
            let m = &o.matcher;
            let mut l = neutral.clone();
            if let Some(os) = &m.os {
                l.os = Some(os.clone());
            }
            if let Some(r) = &m.os_version {
                l.os_version = inside(&os_candidates, r);
            }
            if let Some(c) = &m.client {
                l.client = Some(c.clone());
            }
            if let Some(r) = &m.client_version {
                l.client_version = inside(&client_candidates, r);
            }
            if let Some(c) = &m.carrier {
                l.carrier = Some(c.clone());
            }
            labels.push(l);
        }
        if labels.len() == 1 {
            // Without policy overrides, a second set of labels still lets
            // the pair overrides tell two devices apart.
            labels.push(PlatformLabels {
                os: Some("other-os".into()),
                ..neutral.clone()
            });
        }

        let (client_ok, client_behind) = clients(policy, now);
        let provider_fresh = policy
            .evidence()
            .sources
            .get(&EvidenceSource::ProviderCheck)
            .map_or(Duration(0), |r| r.fresh_for);
        let provider_at = if provider_fresh > Duration::hours(1) {
            minus(now, Duration::seconds(1800))
        } else {
            now
        };

        Setting {
            now,
            since: minus(now, Duration::hours(1)),
            stale_at: minus(now, signed_fresh),
            revoked_evidence_at: minus(now, Duration::hours(2)),
            provider_at,
            provider_stale_at: minus(now, provider_fresh.max(Duration(1))),
            revoked_long_ago: minus(now, Duration::seconds(3601)),
            runtime,
            policy_overrides,
            pair_overrides,
            labels,
            client_ok,
            client_behind,
        }
    }

    fn overrides(&self, ov: Option<usize>) -> &[Override] {
        ov.and_then(|i| self.runtime.get(i..=i)).unwrap_or(&[])
    }

    /// The catalogue of per-device states.
    fn catalogue(&self) -> Vec<DeviceSpec> {
        let label_choices = self.labels.len().max(1);
        let base = |rcs, in_app, attested| DeviceSpec {
            rcs,
            in_app,
            rcs_attested: attested,
            in_app_attested: attested,
            stale: false,
            provider_stale: false,
            sms: false,
            push: false,
            client_behind: false,
            labels: 0,
            revoked: None,
        };
        let mut out = Vec::new();
        for (i, rcs) in RCS.iter().enumerate() {
            for (j, in_app) in IN_APP.iter().enumerate() {
                let verified = *rcs == Rcs::Verified || *in_app == InApp::Verified;
                for a in [0, 1].into_iter().take(if verified { 2 } else { 1 }) {
                    let k = i + j + a;
                    out.push(DeviceSpec {
                        sms: k % 2 == 0,
                        push: (i + 2 * j + a) % 3 != 0,
                        labels: (i / 2 + j + a) % label_choices,
                        ..base(*rcs, *in_app, a == 1)
                    });
                }
            }
        }
        for (rcs, in_app, attested, sms, push) in [
            (Rcs::Verified, InApp::Missing, false, true, false),
            (Rcs::Missing, InApp::Verified, false, false, true),
            (Rcs::ProviderReachable, InApp::Verified, false, true, true),
            (Rcs::Verified, InApp::Verified, true, false, true),
        ] {
            out.push(DeviceSpec {
                stale: true,
                sms,
                push,
                ..base(rcs, in_app, attested)
            });
        }
        // A fresh report beside a provider check gone stale: the stale path
        // may still deliver, so it caps what the others can claim.
        for (rcs, in_app, attested, sms, push) in [
            (Rcs::ProviderReachable, InApp::Verified, false, false, true),
            (Rcs::ProviderReachable, InApp::Verified, true, true, false),
            (Rcs::Verified, InApp::Missing, true, true, true),
        ] {
            out.push(DeviceSpec {
                provider_stale: true,
                sms,
                push,
                ..base(rcs, in_app, attested)
            });
        }
        out.push(DeviceSpec {
            rcs_attested: false,
            sms: true,
            push: true,
            ..base(Rcs::Verified, InApp::Verified, true)
        });
        out.push(DeviceSpec {
            in_app_attested: false,
            labels: label_choices - 1,
            ..base(Rcs::Verified, InApp::Verified, true)
        });
        if self.client_behind.is_some() {
            out.push(DeviceSpec {
                client_behind: true,
                sms: true,
                push: true,
                ..base(Rcs::Verified, InApp::Verified, true)
            });
            out.push(DeviceSpec {
                client_behind: true,
                push: true,
                labels: label_choices - 1,
                ..base(Rcs::Verified, InApp::Missing, false)
            });
        }
        out.push(DeviceSpec {
            sms: true,
            push: true,
            revoked: Some(Revoked::Recently),
            ..base(Rcs::Verified, InApp::Verified, true)
        });
        out.push(DeviceSpec {
            sms: true,
            revoked: Some(Revoked::LongAgo),
            ..base(Rcs::ProviderReachable, InApp::Verified, false)
        });
        out
    }

    /// When a device's provider checks and signed report were observed.
    fn times(&self, spec: &DeviceSpec) -> (Timestamp, Timestamp) {
        if spec.revoked.is_some() {
            return (self.revoked_evidence_at, self.revoked_evidence_at);
        }
        let provider = if spec.provider_stale {
            self.provider_stale_at
        } else {
            self.provider_at
        };
        let signed = if spec.stale { self.stale_at } else { self.now };
        (provider, signed)
    }

    fn device(&self, id: &str, spec: &DeviceSpec) -> DeviceEvidence {
        let (provider_at, signed_at) = self.times(spec);
        let provider = |reachable| TransportEvidence {
            reachable,
            e2ee: E2eeState::Unknown,
            attested: false,
            source: EvidenceSource::ProviderCheck,
            observed_at: provider_at,
        };
        let signed = |e2ee, attested| TransportEvidence {
            reachable: true,
            e2ee,
            attested,
            source: EvidenceSource::SignedDeviceReport,
            observed_at: signed_at,
        };
        let mut d = DeviceEvidence::new(
            id,
            self.labels.get(spec.labels).cloned().unwrap_or_default(),
            minus(self.stale_at, Duration::hours(1)),
        );
        let rcs = match spec.rcs {
            Rcs::ProviderReachable => Some(provider(true)),
            Rcs::ProviderUnreachable => Some(provider(false)),
            other => other.reported().map(|e| signed(e, spec.rcs_attested)),
        };
        let in_app = spec
            .in_app
            .reported()
            .map(|e| signed(e, spec.in_app_attested));
        let sms = spec.sms.then(|| provider(true));
        let push = spec.push.then(|| signed(E2eeState::Absent, false));
        for (t, e) in [
            (Transport::Rcs, rcs),
            (Transport::InApp, in_app),
            (Transport::Sms, sms),
            (Transport::Push, push),
        ] {
            if let Some(e) = e {
                d.transports.insert(t, e);
            }
        }
        if d.transports
            .values()
            .any(|t| t.source == EvidenceSource::SignedDeviceReport)
        {
            d.client = Some(self.client(spec).clone());
        }
        d.revoked_at = spec.revoked.map(|r| match r {
            Revoked::Recently => self.now,
            Revoked::LongAgo => self.revoked_long_ago,
        });
        d
    }

    fn client(&self, spec: &DeviceSpec) -> &ClientInfo {
        match (&self.client_behind, spec.client_behind) {
            (Some(behind), true) => behind,
            _ => &self.client_ok,
        }
    }

    fn recipient(&self, devices: &[DeviceSpec], email: bool) -> RecipientEvidence {
        RecipientEvidence {
            devices: devices
                .iter()
                .enumerate()
                .map(|(i, s)| self.device(&device_id(i), s))
                .collect(),
            email: email.then_some(ContactEvidence {
                source: EvidenceSource::ProviderCheck,
                observed_at: self.now,
            }),
        }
    }
}

/// A client whose signed reports count, and one whose reports the policy
/// treats as stale (behind a minimum version or policy revision, or not
/// listed), when there is one. Candidates are tried against
/// [`credit`] itself, so the choice follows the policy's own rules.
fn clients(policy: &Policy, now: Timestamp) -> (ClientInfo, Option<ClientInfo>) {
    let rules = policy.evidence();
    let revision = rules
        .min_policy_revision
        .map_or(policy.revision(), |m| m.max(policy.revision()));
    let client = |name: &str, version: PlatformVersion, policy_revision| ClientInfo {
        name: name.to_owned(),
        version,
        policy_revision,
    };
    let one = PlatformVersion::from_parts(&[1, 0]);
    let mut ok = Vec::new();
    let mut behind = Vec::new();
    for (name, min) in &rules.min_client_version {
        ok.push(client(name, min.clone(), revision));
        if let Some(p) = predecessor(min) {
            behind.push(client(name, p, revision));
        }
    }
    ok.push(client("ladder-sim", one.clone(), revision));
    behind.push(client("ladder-sim", one, revision));
    if let Some(r) = rules.min_policy_revision.and_then(|m| m.checked_sub(1))
        && let Some(first) = ok.first()
    {
        behind.push(ClientInfo {
            policy_revision: r,
            ..first.clone()
        });
    }
    // A probe: a fresh, signed, reachable report from the candidate client.
    let stale = |c: &ClientInfo| {
        let mut d = DeviceEvidence::new("probe", PlatformLabels::default(), now);
        d.client = Some(c.clone());
        d.transports.insert(
            Transport::InApp,
            TransportEvidence {
                reachable: true,
                e2ee: E2eeState::Absent,
                attested: false,
                source: EvidenceSource::SignedDeviceReport,
                observed_at: now,
            },
        );
        matches!(
            credit(rules, &d, Transport::InApp, &[], now),
            Credit::Unusable(SkipReason::EvidenceStale { .. })
        )
    };
    let client_ok = ok
        .iter()
        .find(|c| !stale(c))
        .or(ok.first())
        .cloned()
        .unwrap_or_else(|| client("ladder-sim", PlatformVersion::from_parts(&[1, 0]), revision));
    let client_behind = behind.into_iter().find(|c| stale(c));
    (client_ok, client_behind)
}

/// Run-time overrides that match every device: disable each channel the
/// policy uses, distrust E2EE where it can be credited, force each container
/// a ladder uses.
fn synthetic_overrides(policy: &Policy, expires: Timestamp) -> Vec<Override> {
    let steps = || {
        policy
            .classes()
            .iter()
            .flat_map(|c| c.ladder.iter().chain(c.legacy.as_ref()))
    };
    let containers: Vec<Container> = Container::ALL
        .into_iter()
        .filter(|c| steps().any(|s| s.container == *c))
        .collect();
    let channels: Vec<Channel> = Channel::ALL
        .into_iter()
        .filter(|ch| {
            steps().any(|s| {
                s.container.channel() == *ch || s.notifiers.iter().any(|n| n.channel() == *ch)
            })
        })
        .collect();
    let make = |channel: Channel, effect: OverrideEffect| Override {
        id: match &effect {
            OverrideEffect::ForceStep(c) => format!("exhaustive-force-{c}"),
            e => format!("exhaustive-{}-{channel}", e.as_str().replace('_', "-")),
        },
        channel,
        matcher: LabelMatch::default(),
        effect,
        reason: "synthetic override of the exhaustive check".into(),
        author: "ladder simulate --exhaustive".into(),
        expires,
    };
    let mut out: Vec<Override> = channels
        .iter()
        .map(|ch| make(*ch, OverrideEffect::Disable))
        .collect();
    for ch in [Channel::Rcs, Channel::InApp] {
        if channels.contains(&ch) {
            out.push(make(ch, OverrideEffect::DistrustE2ee));
        }
    }
    for c in containers {
        out.push(make(c.channel(), OverrideEffect::ForceStep(c)));
    }
    out
}

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
    let recipient = setting.recipient(&state.devices, state.email);
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
        for email in [false, true] {
            let override_options = match devices.len() {
                0 | 1 => &single_options,
                _ if one_neutral => &pair_options,
                _ => &policy_options,
            };
            let recipient = setting.recipient(devices, email);
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
                    override_: *ov,
                    thread,
                    class,
                    failed,
                    confirmed,
                    elevation,
                    floor_holder: false,
                };
                if !email {
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

fn counterexample(
    policy: &Policy,
    setting: &Setting,
    policy_path: &str,
    state: State,
) -> Counterexample {
    let state = shrink(policy, setting, state);
    match evaluate(policy, setting, &state) {
        Some(finding) => {
            let scenario = match reproduction(policy, setting, &state, &finding) {
                Some((repro, found)) => scenario_text(policy, setting, policy_path, &repro, &found),
                None => scenario_text(policy, setting, policy_path, &state, &finding),
            };
            Counterexample {
                violation: finding.violation.to_string(),
                scenario,
            }
        }
        // Unreachable: shrinking keeps a state only while it still fails.
        None => Counterexample {
            violation: "a violation that did not reproduce on re-evaluation".into(),
            scenario: String::new(),
        },
    }
}

/// The thread a scenario opens at its first send: the floor the evidence
/// supports now, no label.
fn natural_thread(policy: &Policy, setting: &Setting, state: &State) -> ThreadFloor {
    let recipient = setting.recipient(&state.devices, state.email);
    let overrides = invariants::all_overrides(policy, setting.overrides(state.override_));
    let a = assess(policy.evidence(), &recipient, &overrides, setting.now);
    ThreadFloor::open(&a, setting.now)
}

/// The scenario language cannot set a thread's floor, but a device holds it
/// down: one without evidence holds it at `none`; one whose evidence reaches
/// only the floor, on a transport another device already reaches, holds it
/// there without opening a path the state did not have. Returns a state with
/// such a device and the thread a scenario would open, when it decides the
/// same way and still violates an invariant.
fn reproduction(
    policy: &Policy,
    setting: &Setting,
    state: &State,
    finding: &Finding,
) -> Option<(State, Finding)> {
    if state.elevation
        || state.thread.label.is_some()
        || state.thread == natural_thread(policy, setting, state)
    {
        return None;
    }
    let holder = |rcs, in_app| DeviceSpec {
        rcs,
        in_app,
        rcs_attested: false,
        in_app_attested: false,
        stale: false,
        provider_stale: false,
        sms: false,
        push: false,
        client_behind: false,
        labels: 0,
        revoked: None,
    };
    let holders = [
        holder(Rcs::Missing, InApp::Missing),
        holder(Rcs::Claimed, InApp::Missing),
        holder(Rcs::Missing, InApp::Claimed),
        holder(Rcs::Verified, InApp::Missing),
        holder(Rcs::Missing, InApp::Verified),
    ];
    let want = finding.decisions.last()?;
    holders.into_iter().find_map(|h| {
        let mut repro = state.clone();
        repro.devices.push(h);
        repro.floor_holder = true;
        repro.thread = natural_thread(policy, setting, &repro);
        if repro.thread.floor != state.thread.floor {
            return None;
        }
        let found = evaluate(policy, setting, &repro)?;
        let got = found.decisions.last()?;
        (got.outcome == want.outcome && got.enforced == want.enforced).then_some((repro, found))
    })
}

/// Simpler variants of a state, most valuable first.
fn candidates(policy: &Policy, setting: &Setting, s: &State) -> Vec<State> {
    let mut out = Vec::new();
    let mut with = |f: &dyn Fn(&mut State)| {
        let mut c = s.clone();
        f(&mut c);
        out.push(c);
    };
    let natural = natural_thread(policy, setting, s);
    if !s.elevation && s.thread != natural {
        with(&|c| c.thread = natural.clone());
    }
    if s.thread.label.is_some() {
        with(&|c| c.thread.label = None);
    }
    for i in 0..s.failed.len() {
        with(&|c| {
            c.failed.remove(i);
        });
    }
    if s.confirmed {
        with(&|c| c.confirmed = false);
    }
    if s.override_.is_some() {
        with(&|c| c.override_ = None);
    }
    if s.email {
        with(&|c| c.email = false);
    }
    for i in 0..s.devices.len() {
        with(&|c| {
            c.devices.remove(i);
        });
    }
    for i in 0..s.devices.len() {
        let Some(d) = s.devices.get(i) else { continue };
        let mut simpler: Vec<DeviceSpec> = Vec::new();
        let mut variant = |f: &dyn Fn(&mut DeviceSpec)| {
            let mut v = d.clone();
            f(&mut v);
            if v != *d {
                simpler.push(v);
            }
        };
        variant(&|v| v.revoked = None);
        variant(&|v| v.client_behind = false);
        variant(&|v| v.labels = 0);
        variant(&|v| v.sms = false);
        variant(&|v| v.push = false);
        variant(&|v| v.stale = false);
        variant(&|v| v.provider_stale = false);
        variant(&|v| {
            v.rcs_attested = false;
            v.in_app_attested = false;
        });
        variant(&|v| v.rcs = Rcs::Missing);
        variant(&|v| v.in_app = InApp::Missing);
        for v in simpler {
            with(&|c| {
                if let Some(slot) = c.devices.get_mut(i) {
                    *slot = v.clone();
                }
            });
        }
    }
    out
}

fn shrink(policy: &Policy, setting: &Setting, mut state: State) -> State {
    // Each accepted step removes something or settles the thread; the bound
    // only guards against a cycle between the two.
    for _ in 0..256 {
        let next = candidates(policy, setting, &state)
            .into_iter()
            .find(|c| evaluate(policy, setting, c).is_some());
        match next {
            Some(c) => state = c,
            None => break,
        }
    }
    state
}

/// A TOML basic string.
fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn comment(s: &str) -> String {
    s.lines()
        .map(|l| format!("# {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn describe_device(setting: &Setting, policy: &Policy, spec: &DeviceSpec) -> String {
    let attested = |a: bool| if a { " (attested)" } else { "" };
    let age = if spec.stale { "stale signed" } else { "signed" };
    let rcs = match spec.rcs {
        Rcs::Missing => "missing".to_owned(),
        Rcs::ProviderReachable => format!(
            "{} reachable",
            if spec.provider_stale {
                "stale provider check"
            } else {
                "provider check"
            }
        ),
        Rcs::ProviderUnreachable => format!(
            "{} unreachable",
            if spec.provider_stale {
                "stale provider check"
            } else {
                "provider check"
            }
        ),
        other => format!(
            "{age} {}{}",
            other.reported().map_or("", E2eeState::as_str),
            attested(spec.rcs_attested && other == Rcs::Verified)
        ),
    };
    let in_app = match spec.in_app.reported() {
        None => "missing".to_owned(),
        Some(e) => format!(
            "{age} {}{}",
            e.as_str(),
            attested(spec.in_app_attested && spec.in_app == InApp::Verified)
        ),
    };
    let labels = match spec.labels.checked_sub(1) {
        None => "labels matching no override".to_owned(),
        Some(i) => match policy.overrides().get(i) {
            Some(o) => format!("labels matching override `{}`", o.id),
            None => "other labels".to_owned(),
        },
    };
    let signed = spec.rcs.reported().is_some() || spec.in_app.reported().is_some() || spec.push;
    let client = setting.client(spec);
    let client = if !signed {
        "no signed report".to_owned()
    } else {
        format!(
            "client {} {} (policy revision {}){}",
            client.name,
            client.version,
            client.policy_revision,
            if spec.client_behind {
                ", which the policy treats as stale"
            } else {
                ""
            }
        )
    };
    let provider = if spec.provider_stale {
        "stale provider check"
    } else {
        "provider check"
    };
    let sms = if spec.sms {
        format!("reachable ({provider})")
    } else {
        "no evidence".to_owned()
    };
    let push = if spec.push {
        format!("reachable ({age})")
    } else {
        "no evidence".to_owned()
    };
    let status = match spec.revoked {
        None => "active",
        Some(Revoked::Recently) => "revoked at `now`, after the floor was set",
        Some(Revoked::LongAgo) => "revoked before the floor was set",
    };
    format!("rcs {rcs}; in_app {in_app}; sms {sms}; push {push}; {client}; {labels}; {status}")
}

fn outcome_expect(o: &Outcome) -> String {
    match o.route() {
        Some(r) => format!(
            "{{ outcome = {}, route = {}, assurance = {} }}",
            q(o.code()),
            q(&r.name()),
            q(r.assurance.as_str())
        ),
        None => format!("{{ outcome = {} }}", q(o.code())),
    }
}

/// A scenario step: when it happens and its TOML body.
struct Event {
    at: Timestamp,
    body: Vec<String>,
}

fn scenario_text(
    policy: &Policy,
    setting: &Setting,
    policy_path: &str,
    state: &State,
    finding: &Finding,
) -> String {
    let now = setting.now;
    let mut events: Vec<Event> = Vec::new();
    let mut add = |at: Timestamp, body: Vec<String>| events.push(Event { at, body });

    for (i, spec) in state.devices.iter().enumerate() {
        let id = device_id(i);
        let labels = setting.labels.get(spec.labels).cloned().unwrap_or_default();
        let mut body = vec![format!("add_device = {}", q(&id))];
        let fields = [
            ("os", labels.os.clone()),
            (
                "os_version",
                labels.os_version.as_ref().map(|v| v.to_string()),
            ),
            ("client", labels.client.clone()),
            (
                "client_version",
                labels.client_version.as_ref().map(|v| v.to_string()),
            ),
            ("carrier", labels.carrier.clone()),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                body.push(format!("{k} = {}", q(&v)));
            }
        }
        add(Timestamp(i64::MIN), body);

        let (provider_at, signed_at) = setting.times(spec);
        // Provider checks: RCS reachability without E2EE, and SMS.
        let mut check = Vec::new();
        match spec.rcs {
            Rcs::ProviderReachable => check.push("rcs = \"reachable\"".to_owned()),
            Rcs::ProviderUnreachable => check.push("rcs = \"unreachable\"".to_owned()),
            _ => {}
        }
        if spec.sms {
            check.push("sms = \"reachable\"".to_owned());
        }
        if !check.is_empty() {
            let mut body = vec![format!("provider_check = {}", q(&id))];
            body.extend(check);
            add(provider_at, body);
        }
        // The signed report: one handshake, which replaces the device's
        // whole signed state. The language has one `attested` flag.
        let mut lines = Vec::new();
        if let Some(e) = spec.rcs.reported() {
            lines.push(format!("rcs = {}", q(e.as_str())));
        }
        if let Some(e) = spec.in_app.reported() {
            lines.push(format!("in_app = {}", q(e.as_str())));
        }
        if spec.push {
            lines.push("push = \"reachable\"".to_owned());
        }
        if !lines.is_empty() {
            let client = setting.client(spec);
            let mut body = vec![format!("handshake = {}", q(&id))];
            body.extend(lines);
            let attested = (spec.rcs == Rcs::Verified && spec.rcs_attested)
                || (spec.in_app == InApp::Verified && spec.in_app_attested);
            if attested {
                body.push("attested = true".into());
            }
            body.push(format!("client = {}", q(&client.name)));
            body.push(format!(
                "client_version = {}",
                q(&client.version.to_string())
            ));
            body.push(format!("policy_revision = {}", client.policy_revision));
            add(signed_at, body);
        }
        if let Some(r) = spec.revoked {
            let at = match r {
                Revoked::Recently => now,
                Revoked::LongAgo => setting.revoked_long_ago,
            };
            add(at, vec![format!("revoke_device = {}", q(&id))]);
        }
    }

    if let Some(o) = state
        .override_
        .and_then(|i| setting.runtime.get(i))
        .cloned()
    {
        let mut fields = vec![
            format!("id = {}", q(&o.id)),
            format!("channel = {}", q(o.channel.as_str())),
        ];
        let m = &o.matcher;
        let texts = [
            ("os", m.os.clone()),
            ("os_version", m.os_version.as_ref().map(|r| r.to_string())),
            ("client", m.client.clone()),
            (
                "client_version",
                m.client_version.as_ref().map(|r| r.to_string()),
            ),
            ("carrier", m.carrier.clone()),
        ];
        for (k, v) in texts {
            if let Some(v) = v {
                fields.push(format!("{k} = {}", q(&v)));
            }
        }
        fields.push(format!("effect = {}", q(o.effect.as_str())));
        if let OverrideEffect::ForceStep(c) = o.effect {
            fields.push(format!("force = {}", q(c.as_str())));
        }
        fields.push(format!("reason = {}", q(&o.reason)));
        fields.push(format!("author = {}", q(&o.author)));
        fields.push(format!("expires_in = {}", q(&OVERRIDE_FOR.to_string())));
        add(
            now,
            vec![format!("set_override = {{ {} }}", fields.join(", "))],
        );
    }
    for f in &state.failed {
        add(
            now,
            vec![format!("provider_down = {}", q(f.channel.as_str()))],
        );
    }

    let class_name = policy
        .classes()
        .get(state.class)
        .map_or(String::new(), |c| c.name.clone());
    if !state.elevation {
        let first = finding.decisions.first().map(|d| &d.outcome);
        let mut body = vec![
            format!("send = {}", q(&class_name)),
            format!("id = {}", q(MESSAGE_ID)),
        ];
        if let Some(o) = first {
            body.push(format!("expect = {}", outcome_expect(o)));
        }
        add(now, body);
        if state.confirmed
            && let Some(d) = finding.decisions.get(1)
        {
            add(
                now,
                vec![
                    format!("confirm = {}", q(MESSAGE_ID)),
                    format!("expect = {}", outcome_expect(&d.outcome)),
                ],
            );
        }
    }

    events.sort_by_key(|e| e.at);
    let start = events
        .iter()
        .map(|e| e.at)
        .find(|t| *t != Timestamp(i64::MIN))
        .unwrap_or(now)
        .min(now);

    // The header: what was checked, and how the scenario relates to it.
    let natural = natural_thread(policy, setting, state);
    let thread_note = if state.elevation {
        format!(
            "ThreadFloor::elevate on a thread at floor `{}` since {} (the scenario runner tries to elevate after every verified handshake; this timeline sets up the evidence)",
            state.thread.floor, state.thread.since
        )
    } else if state.thread == natural {
        format!(
            "thread floor `{}` since {now}, no label: the thread this scenario opens at its send",
            state.thread.floor
        )
    } else {
        let above = if state.thread.floor > natural.floor {
            "; a scenario's thread never reaches a send above what the evidence supports (the runner lowers the floor after every step), so the checked thread exists only inside a single decision"
        } else {
            ""
        };
        format!(
            "thread floor `{}` since {}, label {}; the scenario language cannot set a thread's floor or label directly, so this scenario's thread opens at its send with floor `{}` and no label{above}",
            state.thread.floor,
            state.thread.since,
            state
                .thread
                .label
                .map_or("none".to_owned(), |l| format!("`{l}`")),
            natural.floor
        )
    };
    let mut header = vec![
        format!("Counterexample found by `ladder simulate --exhaustive {policy_path}`"),
        format!("(policy version {}).", policy.version()),
        String::new(),
        format!("Violation: {}", finding.violation),
        String::new(),
        format!("State checked at now = {now}:"),
    ];
    if !state.elevation {
        header.push(format!("- class `{class_name}`"));
    }
    if state.devices.is_empty() {
        header.push("- no devices".into());
    }
    for (i, spec) in state.devices.iter().enumerate() {
        let holds = state.floor_holder && i + 1 == state.devices.len();
        header.push(format!(
            "- device {}: {}{}",
            device_id(i),
            describe_device(setting, policy, spec),
            if holds {
                format!(
                    " -- added by the scenario to hold the thread's floor at `{}`, which the checked state set directly and the scenario language cannot",
                    state.thread.floor
                )
            } else {
                String::new()
            }
        ));
    }
    header.push(format!(
        "- e-mail address on file: {}",
        if state.email { "yes" } else { "no" }
    ));
    header.push(match state.override_ {
        Some(i) if i < setting.policy_overrides => format!(
            "- override `{}` active (set at run time; the policy's own copies have expired)",
            setting.runtime.get(i).map_or("?", |o| o.id.as_str())
        ),
        Some(i) => format!(
            "- synthetic run-time override `{}` active; the policy's own overrides have expired",
            setting.runtime.get(i).map_or("?", |o| o.id.as_str())
        ),
        None => "- no override active (the policy's own have expired)".into(),
    });
    for f in &state.failed {
        header.push(format!(
            "- failed: {} on `{}`",
            f.step
                .map_or("the legacy route".to_owned(), |s| format!("step {s}")),
            f.channel
        ));
    }
    if state.confirmed {
        header.push("- the decision after the sender confirmed the downgrade".into());
    }
    header.push(format!("- {thread_note}"));
    if state.email && start < now {
        header.push(format!(
            "- the scenario records the e-mail address at its start ({start}), the checked state at `now`"
        ));
    }
    header.push(
        "The `expect` lines record the violating decision: this file passes while the bug is there."
            .into(),
    );
    header.push(format!(
        "`policy` is relative to this file: save it where `{policy_path}` resolves, or edit the path."
    ));

    let mut out = String::new();
    let _ = writeln!(out, "{}", comment(&header.join("\n")));
    let _ = writeln!(
        out,
        "name = {}",
        q(&format!(
            "exhaustive counterexample (invariant {})",
            finding.violation.invariant()
        ))
    );
    let _ = writeln!(out, "policy = {}", q(policy_path));
    let _ = writeln!(out, "start = {start}");
    let _ = writeln!(out, "\n[recipient]\nemail = {}", state.email);
    let mut clock = start;
    for e in &events {
        let at = e.at.max(start);
        if at > clock {
            let gap = Duration(at.0.abs_diff(clock.0));
            let _ = writeln!(out, "\n[[step]]\nadvance = {}", q(&gap.to_string()));
            clock = at;
        }
        let _ = writeln!(out, "\n[[step]]\n{}", e.body.join("\n"));
    }

    let replayed = replay(policy, &out, finding);
    format!("{}\n{out}", comment(&format!("Replay: {replayed}")))
}

/// Replays a counterexample scenario and says whether its final decision is
/// the violating one.
fn replay(policy: &Policy, text: &str, finding: &Finding) -> String {
    let scenario = match parse_scenario(text, "counterexample.toml") {
        Ok(s) => s,
        Err(errors) => {
            let first = errors.first().map(ToString::to_string).unwrap_or_default();
            return format!("the generated scenario does not parse ({first})");
        }
    };
    let report = run(&scenario, policy);
    let Some(want) = finding.decisions.last() else {
        return "the scenario rebuilds the evidence; the elevation itself is checked by `ThreadFloor::elevate`, not by a send".into();
    };
    let same_thread = |got: &Decision| {
        got.thread.before.floor == want.thread.before.floor
            && got.thread.before.label == want.thread.before.label
    };
    match (report.decisions.last(), &report.mismatch) {
        (Some(got), None)
            if got.outcome == want.outcome && got.enforced == want.enforced && same_thread(got) =>
        {
            "this scenario reproduces the violating decision".into()
        }
        (Some(got), None) if !same_thread(got) => format!(
            "this scenario's send decides the same way, but on a thread at floor `{}`, label {}, not the checked floor `{}`, label {}: it does not reproduce the violation",
            got.thread.before.floor,
            got.thread
                .before
                .label
                .map_or("none".into(), |l| format!("`{l}`")),
            want.thread.before.floor,
            want.thread
                .before
                .label
                .map_or("none".into(), |l| format!("`{l}`")),
        ),
        (_, Some(m)) => format!(
            "this scenario does not reproduce the state exactly: step {} `{}`: expected {} `{}`, got `{}`",
            m.step, m.label, m.field, m.expected, m.actual
        ),
        _ => {
            "this scenario does not reproduce the state exactly (its final decision differs)".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
tenant = "t"
display_name = "Test Co"
[evidence]
min_client_version = { "app" = "2.0" }
[[evidence.source]]
source = "signed_device_report"
verifies = ["reachable", "e2ee", "attestation"]
fresh_for = "7d"
[[evidence.source]]
source = "provider_check"
verifies = ["reachable"]
fresh_for = "24h"
[[notice]]
name = "default"
text = "New secure message from {tenant}: {link}"
[[class]]
name = "payroll"
minimum = "transport"
confirm_downgrade = true
retention = "30d"
on_exhausted = "block"
ladder = [
  { container = "rcs", require = "e2ee" },
  { container = "portal", notifiers = ["email_notice", "sms_notice"] },
]
[[override]]
id = "ios-rcs"
channel = "rcs"
os = "ios"
os_version = ">=26.2,<26.4"
effect = "distrust_e2ee"
reason = "advisory"
author = "sec"
expires = 2027-03-31T00:00:00Z
"#;

    fn policy() -> Policy {
        Policy::parse(POLICY, "small.toml").unwrap().policy
    }

    #[test]
    fn a_small_policy_holds_every_invariant_over_every_state() {
        let p = policy();
        let report = check(&p, "small.toml");
        assert!(report.states > 0);
        assert!(report.decisions >= report.states);
        if let Some(c) = &report.counterexample {
            panic!("{}\n{}", c.violation, c.scenario);
        }
    }

    #[test]
    fn labels_match_exactly_the_override_they_stand_for() {
        let p = policy();
        let s = Setting::new(&p);
        let o = &p.overrides()[0];
        assert!(!o.matcher.matches(&s.labels[0]));
        assert!(o.matcher.matches(&s.labels[1]));
        assert!(s.now >= o.expires, "policy overrides are expired at `now`");
        assert!(s.runtime[0].is_active(s.now));
        assert_eq!(s.client_behind.as_ref().unwrap().version.to_string(), "1");
    }

    fn synthetic_state(p: &Policy) -> State {
        State {
            devices: vec![
                DeviceSpec {
                    rcs: Rcs::Verified,
                    in_app: InApp::Verified,
                    rcs_attested: true,
                    in_app_attested: true,
                    stale: true,
                    provider_stale: false,
                    sms: true,
                    push: true,
                    client_behind: false,
                    labels: 1,
                    revoked: None,
                },
                DeviceSpec {
                    rcs: Rcs::ProviderReachable,
                    in_app: InApp::Missing,
                    rcs_attested: false,
                    in_app_attested: false,
                    stale: false,
                    provider_stale: false,
                    sms: false,
                    push: false,
                    client_behind: false,
                    labels: 0,
                    revoked: Some(Revoked::Recently),
                },
            ],
            email: true,
            override_: Some(0),
            thread: ThreadFloor {
                floor: AssuranceLevel::E2ee,
                since: Timestamp(0),
                label: Some(AssuranceLevel::E2ee),
            },
            class: p.classes().len() - 1,
            failed: vec![FailedAttempt {
                step: Some(0),
                channel: crate::assurance::Channel::Rcs,
            }],
            confirmed: false,
            elevation: false,
            floor_holder: false,
        }
    }

    #[test]
    fn a_counterexample_scenario_parses_and_rebuilds_the_state() {
        let p = policy();
        let s = Setting::new(&p);
        let violation = Violation::FloorRaised {
            before: AssuranceLevel::None,
            after: AssuranceLevel::E2ee,
        };
        let decided = |state: &State| {
            let recipient = s.recipient(&state.devices, state.email);
            let meta = message("payroll", s.now, None);
            let input = DecisionInput {
                message: &meta,
                recipient: &recipient,
                thread: &state.thread,
                overrides: s.overrides(state.override_),
                failed: &state.failed,
                now: s.now,
            };
            Finding {
                violation: violation.clone(),
                decisions: vec![decide(&p, &input).unwrap()],
            }
        };

        let mut state = synthetic_state(&p);
        let text = scenario_text(&p, &s, "small.toml", &state, &decided(&state));
        let scenario = parse_scenario(&text, "counterexample.toml")
            .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert!(matches!(
            &scenario.policy,
            crate::scenario::PolicyRef::Path(path) if path == "small.toml"
        ));
        assert!(scenario.email);
        assert!(text.contains("provider_down = \"rcs\""), "{text}");
        assert!(text.contains("set_override = {"), "{text}");
        assert!(text.contains("revoke_device = \"d2\""), "{text}");
        assert!(text.contains("advance = \"6d22h\""), "{text}");

        // With the thread the scenario opens by itself and no failure, the
        // replay rebuilds exactly the state that was decided.
        state.failed.clear();
        state.email = false;
        state.thread = natural_thread(&p, &s, &state);
        let text = scenario_text(&p, &s, "small.toml", &state, &decided(&state));
        assert!(
            text.starts_with("# Replay: this scenario reproduces the violating decision"),
            "{text}"
        );
    }
}
