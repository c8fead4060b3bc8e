//! Turning a violating state into a counterexample: shrink it, write it as
//! a scenario, and replay that scenario to say whether it reproduces.

use super::scenario_text::scenario_text;
use super::*;

pub(super) fn counterexample(
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
pub(super) fn natural_thread(policy: &Policy, setting: &Setting, state: &State) -> ThreadFloor {
    let recipient = setting.recipient(&state.devices, state.email, state.phone);
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
pub(super) fn reproduction(
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
    let holder = |rcs, in_app| DeviceSpec::plain(rcs, in_app, false);
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
pub(super) fn candidates(policy: &Policy, setting: &Setting, s: &State) -> Vec<State> {
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
    if s.phone {
        with(&|c| c.phone = false);
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

pub(super) fn shrink(policy: &Policy, setting: &Setting, mut state: State) -> State {
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
