//! Generated evidence, threads, failures and overrides.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;

// ---------------------------------------------------------------- evidence

/// Ages that fall on either side of the generated freshness windows.
pub(crate) fn age() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => Just(0i64),
        1 => select(vec![
            1800i64,
            HOUR + 1,
            23 * HOUR,
            25 * HOUR,
            47 * HOUR,
            71 * HOUR,
            167 * HOUR,
            169 * HOUR,
            30 * 24 * HOUR,
        ]),
        1 => 0i64..(10 * 24 * HOUR),
    ]
}

pub(crate) fn transport_evidence() -> impl Strategy<Value = TransportEvidence> {
    (
        proptest::bool::weighted(0.85),
        select(E2eeState::ALL.to_vec()),
        any::<bool>(),
        prop_oneof![
            4 => Just(EvidenceSource::SignedDeviceReport),
            2 => Just(EvidenceSource::ProviderCheck),
            1 => Just(EvidenceSource::SelfReported),
        ],
        age(),
    )
        .prop_map(
            |(reachable, e2ee, attested, source, age)| TransportEvidence {
                client: None,
                reachable,
                e2ee,
                attested,
                source,
                observed_at: Timestamp(NOW - age),
            },
        )
}

pub(crate) fn labels() -> impl Strategy<Value = PlatformLabels> {
    (
        proptest::option::weighted(0.8, select(vec!["ios", "android", "iOS"])),
        proptest::option::weighted(0.7, select(vec!["13", "26.1", "26.2", "26.3.1", "26.4"])),
        proptest::option::weighted(0.6, select(vec!["acme-app", "google-messages"])),
        proptest::option::weighted(0.5, select(vec!["5.1", "5.3"])),
        proptest::option::weighted(0.3, select(vec!["carrier-a", "carrier-b"])),
    )
        .prop_map(
            |(os, os_version, client, client_version, carrier)| PlatformLabels {
                os: os.map(Into::into),
                os_version: os_version.map(|v| v.parse().unwrap()),
                client: client.map(Into::into),
                client_version: client_version.map(|v| v.parse().unwrap()),
                carrier: carrier.map(Into::into),
            },
        )
}

pub(crate) fn client_info() -> impl Strategy<Value = ClientInfo> {
    (
        select(vec!["acme-app", "google-messages", "ladder-sim"]),
        select(vec!["1.0", "5.1", "5.2", "5.3", "20250101"]),
        0u32..6,
    )
        .prop_map(|(name, version, policy_revision)| ClientInfo {
            name: name.into(),
            version: version.parse().unwrap(),
            policy_revision,
        })
}

pub(crate) fn device(id: usize) -> impl Strategy<Value = DeviceEvidence> {
    (
        labels(),
        proptest::option::weighted(0.8, client_info()),
        proptest::option::weighted(0.15, age()),
        proptest::collection::btree_map(
            select(Transport::ALL.to_vec()),
            transport_evidence(),
            0..=4,
        ),
    )
        .prop_map(move |(labels, client, revoked_ago, transports)| {
            let mut d =
                DeviceEvidence::new(format!("d{id}"), labels, Timestamp(NOW - 40 * 24 * HOUR));
            d.client = client;
            d.revoked_at = revoked_ago.map(|a| Timestamp(NOW - a));
            d.transports = transports;
            d
        })
}

/// A client whose reports the policy accepts.
pub(crate) fn good_client(spec: &PolicySpec) -> ClientInfo {
    let policy_revision = spec
        .min_policy_revision
        .map_or(spec.revision, |m| m.max(spec.revision));
    let (name, version) = spec.min_client.unwrap_or(("ladder-sim", "1.0"));
    ClientInfo {
        name: name.into(),
        version: version.parse().unwrap(),
        policy_revision,
    }
}

pub(crate) fn client_for(spec: &PolicySpec) -> impl Strategy<Value = ClientInfo> + use<> {
    prop_oneof![6 => Just(good_client(spec)), 1 => client_info()]
}

/// How long the policy keeps a signed report fresh, in seconds.
pub(crate) fn signed_fresh(spec: &PolicySpec) -> i64 {
    spec.sources
        .iter()
        .find(|s| s.source == EvidenceSource::SignedDeviceReport)
        .map_or(HOUR, |s| i64::from(s.fresh_hours) * HOUR)
}

/// Mostly within the signed freshness window, sometimes anywhere.
pub(crate) fn age_for(spec: &PolicySpec) -> impl Strategy<Value = i64> + use<> {
    let fresh = signed_fresh(spec);
    prop_oneof![
        4 => Just(0i64),
        4 => 0i64..(fresh - 60).max(1),
        1 => Just(fresh),
        2 => age(),
    ]
}

/// A device as the product records one: one signed report (one age, one
/// client), provider checks beside it.
pub(crate) fn coherent_device(
    spec: &PolicySpec,
    id: usize,
) -> impl Strategy<Value = DeviceEvidence> + use<> {
    let e2ee = prop_oneof![
        5 => Just(E2eeState::Verified),
        1 => Just(E2eeState::Claimed),
        1 => Just(E2eeState::Absent),
        1 => Just(E2eeState::Unknown),
    ];
    let signed_entry = (proptest::bool::weighted(0.9), e2ee, any::<bool>())
        .prop_map(|(reachable, e2ee, attested)| (reachable, e2ee, attested));
    (
        labels(),
        client_for(spec),
        age_for(spec),
        proptest::option::weighted(0.1, age()),
        // RCS: none, signed, or a provider check (reachable or not).
        prop_oneof![
            1 => Just(None),
            3 => signed_entry.clone().prop_map(|e| Some((EvidenceSource::SignedDeviceReport, e))),
            2 => any::<bool>().prop_map(|r| Some((EvidenceSource::ProviderCheck, (r, E2eeState::Unknown, false)))),
        ],
        proptest::option::weighted(0.6, signed_entry),
        proptest::bool::weighted(0.6),
        proptest::bool::weighted(0.6),
        // Provider checks are mostly fresh, sometimes of any age.
        prop_oneof![3 => Just(0i64), 1 => age()],
    )
        .prop_map(
            move |(labels, client, signed_age, revoked_ago, rcs, in_app, sms, push, provider_age)| {
                let mut d = DeviceEvidence::new(
                    format!("d{id}"),
                    labels,
                    Timestamp(NOW - 40 * 24 * HOUR),
                );
                let ev = |(reachable, e2ee, attested), source, at| TransportEvidence {
 client: None,
                    reachable,
                    e2ee,
                    attested,
                    source,
                    observed_at: Timestamp(at),
                };
                let signed_at = NOW - signed_age;
                let provider_at = NOW - provider_age;
                if let Some((source, e)) = rcs {
                    let at = if source == EvidenceSource::ProviderCheck {
                        provider_at
                    } else {
                        signed_at
                    };
                    d.transports.insert(Transport::Rcs, ev(e, source, at));
                }
                if let Some(e) = in_app {
                    d.transports.insert(
                        Transport::InApp,
                        ev(e, EvidenceSource::SignedDeviceReport, signed_at),
                    );
                }
                if sms {
                    d.transports.insert(
                        Transport::Sms,
                        ev(
                            (true, E2eeState::Unknown, false),
                            EvidenceSource::ProviderCheck,
                            provider_at,
                        ),
                    );
                }
                if push {
                    d.transports.insert(
                        Transport::Push,
                        ev((true, E2eeState::Absent, false), EvidenceSource::SignedDeviceReport, signed_at),
                    );
                }
                if d
                    .transports
                    .values()
                    .any(|t| t.source == EvidenceSource::SignedDeviceReport)
                {
                    d.client = Some(client);
                }
                d.revoked_at = revoked_ago.map(|a| Timestamp(NOW - a));
                d
            },
        )
}

/// Devices (mostly coherent, sometimes arbitrary) and an e-mail address.
pub(crate) fn recipient_for(spec: &PolicySpec) -> impl Strategy<Value = RecipientEvidence> + use<> {
    let spec = spec.clone();
    let devices = prop_oneof![
        1 => Just(0usize),
        5 => Just(1usize),
        3 => Just(2usize),
        1 => Just(3usize),
    ]
    .prop_flat_map(move |n| {
        (0..n)
            .map(|i| prop_oneof![5 => coherent_device(&spec, i).boxed(), 1 => device(i).boxed()])
            .collect::<Vec<_>>()
    });
    let email = prop_oneof![
        2 => Just(None),
        3 => Just(Some(ContactEvidence {
            source: EvidenceSource::ProviderCheck,
            observed_at: Timestamp(NOW),
        })),
        1 => (select(EvidenceSource::ALL.to_vec()), age())
            .prop_map(|(source, age)| Some(ContactEvidence {
                source,
                observed_at: Timestamp(NOW - age),
            })),
    ];
    let phone = prop_oneof![
        2 => Just(None),
        3 => Just(Some(ContactEvidence {
            source: EvidenceSource::ProviderCheck,
            observed_at: Timestamp(NOW),
        })),
        1 => (select(EvidenceSource::ALL.to_vec()), age())
            .prop_map(|(source, age)| Some(ContactEvidence {
                source,
                observed_at: Timestamp(NOW - age),
            })),
    ];
    (devices, email, phone).prop_map(|(devices, email, phone)| RecipientEvidence {
        devices,
        email,
        phone,
    })
}

/// A policy with a world to decide in.
pub(crate) fn policy_and_recipient() -> impl Strategy<Value = (PolicySpec, RecipientEvidence)> {
    policy_spec().prop_flat_map(|spec| {
        let r = recipient_for(&spec);
        (Just(spec), r)
    })
}

pub(crate) fn thread() -> impl Strategy<Value = ThreadFloor> {
    let floor = prop_oneof![
        1 => Just(AssuranceLevel::None),
        2 => Just(AssuranceLevel::Transport),
        3 => Just(AssuranceLevel::E2ee),
        3 => Just(AssuranceLevel::E2eeAttested),
    ];
    (floor, age(), proptest::option::of(level())).prop_map(|(floor, age, label)| ThreadFloor {
        floor,
        since: Timestamp(NOW - age),
        label,
    })
}

pub(crate) fn runtime_override(i: usize) -> impl Strategy<Value = Override> {
    override_spec().prop_map(move |o| Override {
        id: format!("r{i}"),
        channel: o.channel,
        matcher: LabelMatch {
            os: o.os.map(Into::into),
            os_version: o.os_version.map(|r| r.parse().unwrap()),
            client: o.client.map(Into::into),
            client_version: None,
            carrier: o.carrier.map(Into::into),
        },
        effect: o.effect,
        reason: "generated".into(),
        author: "proptest".into(),
        expires: Timestamp(NOW + o.expires_hours * HOUR),
    })
}

/// Mostly none; otherwise up to three (step, channel) failures.
pub(crate) fn failures() -> impl Strategy<Value = Vec<FailedAttempt>> {
    let some = proptest::collection::vec(
        (
            proptest::option::weighted(0.9, 0usize..4),
            select(Channel::ALL.to_vec()),
        )
            .prop_map(|(step, channel)| FailedAttempt { step, channel }),
        1..=3,
    );
    prop_oneof![3 => Just(Vec::new()), 2 => some]
}

/// Mostly none, sometimes one or two run-time overrides.
pub(crate) fn runtime_overrides() -> impl Strategy<Value = Vec<Override>> {
    prop_oneof![6 => Just(0usize), 3 => Just(1usize), 1 => Just(2usize)]
        .prop_flat_map(|n| (0..n).map(runtime_override).collect::<Vec<_>>())
}

pub(crate) fn confirmation() -> impl Strategy<Value = Option<Confirmation>> {
    proptest::option::weighted(
        0.3,
        (
            select(vec!["m1", "other"]),
            select(Container::ALL.to_vec()),
            level(),
        )
            .prop_map(|(id, container, assurance)| Confirmation {
                message_id: id.into(),
                container,
                assurance,
            }),
    )
}

pub(crate) fn parse(spec: &PolicySpec) -> Option<Policy> {
    Policy::parse(&spec.toml(), "generated.toml")
        .ok()
        .map(|p| p.policy)
}

pub(crate) fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        // Refused policies are skipped; with many cases (PROPTEST_CASES)
        // their count grows with it.
        max_global_rejects: 1_000_000,
        ..ProptestConfig::default()
    }
}
