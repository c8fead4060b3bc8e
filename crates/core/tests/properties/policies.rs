//! Generated policies: structured specs rendered as TOML text.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;

// ---------------------------------------------------------------- policies

#[derive(Debug, Clone)]
pub(crate) struct SourceSpec {
    pub(crate) source: EvidenceSource,
    pub(crate) verifies: Vec<&'static str>,
    pub(crate) fresh_hours: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct StepSpec {
    pub(crate) container: Container,
    pub(crate) notifiers: Vec<Notifier>,
    pub(crate) require: Option<AssuranceLevel>,
}

#[derive(Debug, Clone)]
pub(crate) enum ExhaustedSpec {
    Block,
    Escalate,
    Hold { hours: u32, then_block: bool },
}

#[derive(Debug, Clone)]
pub(crate) struct ClassSpec {
    pub(crate) name: &'static str,
    pub(crate) minimum: AssuranceLevel,
    pub(crate) ladder: Vec<StepSpec>,
    pub(crate) exhausted: ExhaustedSpec,
    pub(crate) legacy: Option<StepSpec>,
    pub(crate) confirm_downgrade: bool,
    pub(crate) notice: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub(crate) struct OverrideSpec {
    pub(crate) channel: Channel,
    pub(crate) os: Option<&'static str>,
    pub(crate) os_version: Option<&'static str>,
    pub(crate) client: Option<&'static str>,
    pub(crate) carrier: Option<&'static str>,
    pub(crate) effect: OverrideEffect,
    /// Expiry relative to `NOW`, in hours; negative: already expired.
    pub(crate) expires_hours: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct PolicySpec {
    pub(crate) display_name: &'static str,
    pub(crate) revision: u32,
    pub(crate) sources: Vec<SourceSpec>,
    pub(crate) min_client: Option<(&'static str, &'static str)>,
    pub(crate) min_policy_revision: Option<u32>,
    /// (name, text)
    pub(crate) notices: Vec<(&'static str, String)>,
    pub(crate) classes: Vec<ClassSpec>,
    pub(crate) overrides: Vec<OverrideSpec>,
}

pub(crate) fn q(s: &str) -> String {
    format!("{s:?}")
}

pub(crate) fn step_toml(s: &StepSpec) -> String {
    let mut out = format!("{{ container = {}", q(s.container.as_str()));
    if !s.notifiers.is_empty() {
        let n: Vec<String> = s.notifiers.iter().map(|n| q(n.as_str())).collect();
        let _ = write!(out, ", notifiers = [{}]", n.join(", "));
    }
    if let Some(r) = s.require {
        let _ = write!(out, ", require = {}", q(r.as_str()));
    }
    out.push_str(" }");
    out
}

pub(crate) fn rfc3339(t: i64) -> String {
    Timestamp(t).to_string()
}

impl PolicySpec {
    pub(crate) fn toml(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "tenant = \"t\"\ndisplay_name = {}", q(self.display_name));
        let _ = writeln!(t, "revision = {}\n\n[evidence]", self.revision);
        if let Some((client, v)) = self.min_client {
            let _ = writeln!(t, "min_client_version = {{ {} = {} }}", q(client), q(v));
        }
        if let Some(r) = self.min_policy_revision {
            let _ = writeln!(t, "min_policy_revision = {r}");
        }
        for s in &self.sources {
            let v: Vec<String> = s.verifies.iter().map(|c| q(c)).collect();
            let _ = writeln!(
                t,
                "\n[[evidence.source]]\nsource = {}\nverifies = [{}]\nfresh_for = \"{}h\"",
                q(s.source.as_str()),
                v.join(", "),
                s.fresh_hours
            );
        }
        for (name, text) in &self.notices {
            let _ = writeln!(t, "\n[[notice]]\nname = {}\ntext = {}", q(name), q(text));
        }
        for c in &self.classes {
            let _ = writeln!(
                t,
                "\n[[class]]\nname = {}\nminimum = {}\nretention = \"30d\"",
                q(c.name),
                q(c.minimum.as_str())
            );
            match &c.exhausted {
                ExhaustedSpec::Block => t.push_str("on_exhausted = \"block\"\n"),
                ExhaustedSpec::Escalate => t.push_str("on_exhausted = \"escalate\"\n"),
                ExhaustedSpec::Hold { hours, then_block } => {
                    let _ = writeln!(
                        t,
                        "on_exhausted = \"hold\"\nhold_for = \"{hours}h\"\nafter_hold = {}",
                        if *then_block {
                            "\"block\""
                        } else {
                            "\"escalate\""
                        }
                    );
                }
            }
            if let Some(l) = &c.legacy {
                let _ = writeln!(t, "mode = \"observe\"\nlegacy = {}", step_toml(l));
            }
            if c.confirm_downgrade {
                t.push_str("confirm_downgrade = true\n");
            }
            if let Some(n) = c.notice {
                let _ = writeln!(t, "notice = {}", q(n));
            }
            let steps: Vec<String> = c.ladder.iter().map(step_toml).collect();
            let _ = writeln!(t, "ladder = [\n  {},\n]", steps.join(",\n  "));
        }
        for (i, o) in self.overrides.iter().enumerate() {
            let _ = writeln!(
                t,
                "\n[[override]]\nid = \"o{i}\"\nchannel = {}",
                q(o.channel.as_str())
            );
            for (k, v) in [
                ("os", o.os),
                ("os_version", o.os_version),
                ("client", o.client),
                ("carrier", o.carrier),
            ] {
                if let Some(v) = v {
                    let _ = writeln!(t, "{k} = {}", q(v));
                }
            }
            let _ = writeln!(t, "effect = {}", q(o.effect.as_str()));
            if let OverrideEffect::ForceStep(c) = &o.effect {
                let _ = writeln!(t, "force = {}", q(c.as_str()));
            }
            let _ = writeln!(
                t,
                "reason = \"generated\"\nauthor = \"proptest\"\nexpires = {}",
                rfc3339(NOW + o.expires_hours * HOUR)
            );
        }
        t
    }
}

pub(crate) fn level() -> impl Strategy<Value = AssuranceLevel> {
    select(AssuranceLevel::ALL.to_vec())
}

pub(crate) fn sources() -> impl Strategy<Value = Vec<SourceSpec>> {
    let signed = (
        prop_oneof![
            4 => Just(vec!["reachable", "e2ee", "attestation"]),
            2 => Just(vec!["reachable", "e2ee"]),
            1 => Just(vec!["reachable"]),
            1 => Just(vec!["e2ee", "attestation"]),
        ],
        select(vec![1u32, 24, 72, 168]),
    )
        .prop_map(|(verifies, fresh_hours)| SourceSpec {
            source: EvidenceSource::SignedDeviceReport,
            verifies,
            fresh_hours,
        });
    let provider = (
        prop_oneof![
            60 => Just(vec!["reachable"]),
            20 => Just(vec![]),
            // Business RCS APIs report no E2EE: the validator refuses this.
            1 => Just(vec!["reachable", "e2ee"]),
        ],
        select(vec![1u32, 24, 48]),
    )
        .prop_map(|(verifies, fresh_hours)| SourceSpec {
            source: EvidenceSource::ProviderCheck,
            verifies,
            fresh_hours,
        });
    let self_reported = (
        prop_oneof![3 => Just(vec![]), 1 => Just(vec!["reachable"])],
        select(vec![1u32, 24]),
    )
        .prop_map(|(verifies, fresh_hours)| SourceSpec {
            source: EvidenceSource::SelfReported,
            verifies,
            fresh_hours,
        });
    (
        proptest::option::weighted(0.95, signed),
        proptest::option::weighted(0.8, provider),
        proptest::option::weighted(0.5, self_reported),
    )
        .prop_map(|(a, b, c)| [a, b, c].into_iter().flatten().collect())
}

/// The best a container can reach under these sources, as the validator
/// computes it.
pub(crate) fn ceiling(sources: &[SourceSpec], container: Container) -> AssuranceLevel {
    let signed = sources
        .iter()
        .find(|s| s.source == EvidenceSource::SignedDeviceReport);
    let claims = |c: &str| signed.is_some_and(|s| s.verifies.contains(&c));
    match container {
        Container::Sms => AssuranceLevel::None,
        Container::Portal => AssuranceLevel::Transport,
        Container::Rcs | Container::InApp => {
            if claims("e2ee") && claims("attestation") {
                AssuranceLevel::E2eeAttested
            } else if claims("e2ee") {
                AssuranceLevel::E2ee
            } else {
                AssuranceLevel::Transport
            }
        }
    }
}

pub(crate) fn step(container: Container, top: AssuranceLevel) -> impl Strategy<Value = StepSpec> {
    // Shuffled: the first reachable notifier is the one chosen.
    let notifiers = match container {
        Container::Portal => subsequence(Notifier::ALL.to_vec(), 1..=3)
            .prop_shuffle()
            .boxed(),
        Container::InApp => subsequence(Notifier::ALL.to_vec(), 0..=2)
            .prop_shuffle()
            .boxed(),
        // Notifiers on RCS or SMS are refused by the validator; rarely try.
        Container::Rcs | Container::Sms => prop_oneof![
            199 => Just(Vec::new()),
            1 => subsequence(Notifier::ALL.to_vec(), 1..=1),
        ]
        .boxed(),
    };
    let requires: Vec<Option<AssuranceLevel>> = std::iter::once(None)
        .chain(
            AssuranceLevel::ALL
                .iter()
                .copied()
                .filter(|l| *l <= top)
                .map(Some),
        )
        .collect();
    (
        notifiers,
        prop_oneof![3 => Just(None), 1 => select(requires)],
    )
        .prop_map(move |(notifiers, require)| StepSpec {
            container,
            notifiers,
            require,
        })
}

pub(crate) fn class(
    name: &'static str,
    sources: Vec<SourceSpec>,
) -> impl Strategy<Value = ClassSpec> {
    let best = ceiling(&sources, Container::Rcs);
    let minimums: Vec<AssuranceLevel> = AssuranceLevel::ALL
        .iter()
        .copied()
        .filter(|l| *l <= best)
        .collect();
    select(minimums).prop_flat_map(move |minimum| {
        let allowed: Vec<(Container, AssuranceLevel)> = Container::ALL
            .iter()
            .map(|c| (*c, ceiling(&sources, *c)))
            .filter(|(_, top)| *top >= minimum)
            .collect();
        let any_step: Vec<(Container, AssuranceLevel)> = Container::ALL
            .iter()
            .map(|c| (*c, ceiling(&sources, *c)))
            .collect();
        let ladder = proptest::collection::vec(
            select(allowed).prop_flat_map(|(c, top)| step(c, top)),
            1..=4,
        );
        let legacy = proptest::option::weighted(
            0.3,
            select(any_step).prop_flat_map(|(c, top)| step(c, top)),
        );
        let exhausted = prop_oneof![
            Just(ExhaustedSpec::Block),
            Just(ExhaustedSpec::Escalate),
            (select(vec![1u32, 6, 48]), any::<bool>())
                .prop_map(|(hours, then_block)| ExhaustedSpec::Hold { hours, then_block }),
        ];
        (
            ladder,
            exhausted,
            legacy,
            any::<bool>(),
            prop_oneof![4 => Just(None), 1 => Just(Some("short"))],
        )
            .prop_map(
                move |(ladder, exhausted, legacy, confirm_downgrade, notice)| ClassSpec {
                    name,
                    minimum,
                    ladder,
                    exhausted,
                    legacy,
                    confirm_downgrade,
                    notice,
                },
            )
    })
}

/// Notice text from fragments, some of which name a class; the validator
/// must refuse every template that does.
pub(crate) fn notice_text() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        40 => select(vec![
            "You have a new secure message from ",
            "{tenant}",
            ". Open it here: ",
            "{link}",
            " (valid for {expires_in})",
            " Secure",
            "message",
            "!",
            " {{braces}} ",
        ]),
        1 => select(vec![" payroll", " Notice"]),
    ];
    proptest::collection::vec(fragment, 1..=6).prop_map(|parts| parts.concat())
}

pub(crate) fn override_spec() -> impl Strategy<Value = OverrideSpec> {
    (
        select(Channel::ALL.to_vec()),
        proptest::option::of(select(vec!["ios", "android"])),
        proptest::option::of(select(vec![">=26.2,<26.4", ">=26", "<14"])),
        proptest::option::of(select(vec!["acme-app", "google-messages"])),
        proptest::option::weighted(0.2, Just("carrier-a")),
        prop_oneof![
            2 => Just(OverrideEffect::Disable),
            2 => Just(OverrideEffect::DistrustE2ee),
            1 => select(Container::ALL.to_vec()).prop_map(OverrideEffect::ForceStep),
        ],
        select(vec![-48i64, -1, 1, 24, 24 * 365]),
    )
        .prop_map(
            |(channel, os, os_version, client, carrier, effect, expires_hours)| OverrideSpec {
                // Forcing traffic off a channel onto that same channel could
                // never apply; the validator refuses it.
                channel: match effect {
                    OverrideEffect::ForceStep(c) if c.channel() == channel => {
                        if c == Container::Rcs {
                            Channel::Sms
                        } else {
                            Channel::Rcs
                        }
                    }
                    _ => channel,
                },
                os,
                os_version,
                client,
                carrier,
                effect,
                expires_hours,
            },
        )
}

pub(crate) fn policy_spec() -> impl Strategy<Value = PolicySpec> {
    sources().prop_flat_map(|sources| {
        let names = subsequence(CLASS_NAMES.to_vec(), 1..=4).prop_shuffle();
        let s2 = sources.clone();
        let classes = names.prop_flat_map(move |names| {
            names
                .into_iter()
                .map(|n| class(n, s2.clone()))
                .collect::<Vec<_>>()
        });
        let notices = (
            proptest::option::weighted(0.95, notice_text()),
            proptest::option::weighted(0.9, notice_text()),
        )
            .prop_map(|(d, s)| {
                let mut out = Vec::new();
                if let Some(d) = d {
                    out.push(("default", d));
                }
                if let Some(s) = s {
                    out.push(("short", s));
                }
                out
            });
        (
            select(vec![
                "Acme Corp",
                "Acme Corp.",
                "Payroll Partners",
                "Globex",
            ]),
            1u32..6,
            Just(sources),
            proptest::option::weighted(
                0.4,
                select(vec![("acme-app", "5.2"), ("google-messages", "20250101")]),
            ),
            proptest::option::weighted(0.3, 1u32..5),
            notices,
            classes,
            prop_oneof![
                3 => Just(Vec::new()),
                2 => proptest::collection::vec(override_spec(), 1..=3),
            ],
        )
            .prop_map(
                |(
                    display_name,
                    revision,
                    sources,
                    min_client,
                    min_policy_revision,
                    notices,
                    classes,
                    overrides,
                )| PolicySpec {
                    display_name,
                    revision,
                    sources,
                    min_client,
                    min_policy_revision,
                    notices,
                    classes,
                    overrides,
                },
            )
    })
}
