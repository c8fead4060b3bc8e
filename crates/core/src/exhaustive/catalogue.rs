//! The per-device evidence catalogue and the settings (time, clients,
//! overrides) each exhaustive state is built from.

use super::*;

/// What a device's evidence says about RCS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rcs {
    Missing,
    ProviderReachable,
    ProviderUnreachable,
    Verified,
    Claimed,
    Absent,
}

pub(super) const RCS: [Rcs; 6] = [
    Rcs::Missing,
    Rcs::ProviderReachable,
    Rcs::ProviderUnreachable,
    Rcs::Verified,
    Rcs::Claimed,
    Rcs::Absent,
];

impl Rcs {
    /// What the signed report says, if it names RCS.
    pub(super) fn reported(self) -> Option<E2eeState> {
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
pub(super) enum InApp {
    Missing,
    Verified,
    Claimed,
}

pub(super) const IN_APP: [InApp; 3] = [InApp::Missing, InApp::Verified, InApp::Claimed];

impl InApp {
    pub(super) fn reported(self) -> Option<E2eeState> {
        match self {
            InApp::Verified => Some(E2eeState::Verified),
            InApp::Claimed => Some(E2eeState::Claimed),
            InApp::Missing => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Revoked {
    /// At `now`: after the thread's floor was set.
    Recently,
    /// Before the thread's floor was set.
    LongAgo,
}

/// One device's evidence, in the catalogue's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DeviceSpec {
    pub(super) rcs: Rcs,
    pub(super) in_app: InApp,
    /// Attestation accompanied the signed report's RCS / in-app entries.
    pub(super) rcs_attested: bool,
    pub(super) in_app_attested: bool,
    /// The whole signed report is older than the policy keeps it fresh.
    pub(super) stale: bool,
    /// The provider checks (RCS, SMS) are older than the policy keeps them
    /// fresh.
    pub(super) provider_stale: bool,
    pub(super) sms: bool,
    pub(super) push: bool,
    pub(super) client_behind: bool,
    /// 0: labels no policy override matches; `i + 1`: override `i` matches.
    pub(super) labels: usize,
    pub(super) revoked: Option<Revoked>,
}

impl DeviceSpec {
    /// A device with these RCS and in-app states and nothing else special:
    /// fresh, no SMS or push, current client, neutral labels, not revoked.
    pub(super) fn plain(rcs: Rcs, in_app: InApp, attested: bool) -> DeviceSpec {
        DeviceSpec {
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
        }
    }
}

/// Times, labels and clients derived from the policy.
#[derive(Debug, Clone)]
pub(super) struct Setting {
    pub(super) now: Timestamp,
    /// The thread's `since` in enumerated states.
    pub(super) since: Timestamp,
    /// When stale signed evidence was observed.
    pub(super) stale_at: Timestamp,
    /// When a revoked device's evidence was observed.
    pub(super) revoked_evidence_at: Timestamp,
    /// When an active device's provider checks were observed: half an hour
    /// before its signed report, so that an elevation can tell them apart.
    pub(super) provider_at: Timestamp,
    /// When stale provider checks were observed.
    pub(super) provider_stale_at: Timestamp,
    pub(super) revoked_long_ago: Timestamp,
    /// Run-time copies of the policy's overrides, then the synthetic ones.
    pub(super) runtime: Vec<Override>,
    /// How many of `runtime` are copies of the policy's overrides.
    pub(super) policy_overrides: usize,
    /// Where the synthetic overrides for device pairs start in `runtime`.
    pub(super) pair_overrides: usize,
    /// Index 0: neutral labels; `i + 1`: labels matching override `i`.
    pub(super) labels: Vec<PlatformLabels>,
    pub(super) client_ok: ClientInfo,
    pub(super) client_behind: Option<ClientInfo>,
}

pub(super) fn minus(t: Timestamp, d: Duration) -> Timestamp {
    Timestamp(t.0.saturating_sub_unsigned(d.0))
}

/// Parts of a version, through its text (the parts themselves are private).
pub(super) fn parts(v: &PlatformVersion) -> Vec<u32> {
    v.to_string()
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// A version strictly below `v`, if there is one.
pub(super) fn predecessor(v: &PlatformVersion) -> Option<PlatformVersion> {
    let mut p = parts(v);
    while p.last() == Some(&0) {
        p.pop();
    }
    let last = p.last_mut()?;
    *last = last.checked_sub(1)?;
    Some(PlatformVersion::from_parts(&p))
}

/// Versions around every bound a range names, plus extremes.
pub(super) fn version_candidates(ranges: &[&VersionRange]) -> Vec<PlatformVersion> {
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
    pub(super) fn new(policy: &Policy) -> Setting {
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

    pub(super) fn overrides(&self, ov: Option<usize>) -> &[Override] {
        ov.and_then(|i| self.runtime.get(i..=i)).unwrap_or(&[])
    }

    /// The catalogue of per-device states.
    pub(super) fn catalogue(&self) -> Vec<DeviceSpec> {
        let label_choices = self.labels.len().max(1);
        let base = |rcs, in_app, attested| DeviceSpec::plain(rcs, in_app, attested);
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
    pub(super) fn times(&self, spec: &DeviceSpec) -> (Timestamp, Timestamp) {
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

    pub(super) fn device(&self, id: &str, spec: &DeviceSpec) -> DeviceEvidence {
        let (provider_at, signed_at) = self.times(spec);
        let provider = |reachable| TransportEvidence {
            client: None,
            reachable,
            e2ee: E2eeState::Unknown,
            attested: false,
            source: EvidenceSource::ProviderCheck,
            observed_at: provider_at,
        };
        let signed = |e2ee, attested| TransportEvidence {
            client: None,
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

    pub(super) fn client(&self, spec: &DeviceSpec) -> &ClientInfo {
        match (&self.client_behind, spec.client_behind) {
            (Some(behind), true) => behind,
            _ => &self.client_ok,
        }
    }

    pub(super) fn recipient(
        &self,
        devices: &[DeviceSpec],
        email: bool,
        phone: bool,
    ) -> RecipientEvidence {
        let contact = |on_file: bool| {
            on_file.then_some(ContactEvidence {
                source: EvidenceSource::ProviderCheck,
                observed_at: self.now,
            })
        };
        RecipientEvidence {
            devices: devices
                .iter()
                .enumerate()
                .map(|(i, s)| self.device(&device_id(i), s))
                .collect(),
            email: contact(email),
            phone: contact(phone),
        }
    }
}

/// A client whose signed reports count, and one whose reports the policy
/// treats as stale (behind a minimum version or policy revision, or not
/// listed), when there is one. Candidates are tried against
/// [`credit`] itself, so the choice follows the policy's own rules.
pub(super) fn clients(policy: &Policy, now: Timestamp) -> (ClientInfo, Option<ClientInfo>) {
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
                client: None,
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
pub(super) fn synthetic_overrides(policy: &Policy, expires: Timestamp) -> Vec<Override> {
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
            OverrideEffect::ForceStep(c) => format!("exhaustive-force-{channel}-to-{c}"),
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
    // Steer traffic off each E2EE-capable channel the ladders use, down to
    // each container they use on another channel.
    for ch in [Channel::Rcs, Channel::InApp] {
        if !channels.contains(&ch) {
            continue;
        }
        for c in containers.iter().filter(|c| c.channel() != ch) {
            out.push(make(ch, OverrideEffect::ForceStep(*c)));
        }
    }
    out
}
