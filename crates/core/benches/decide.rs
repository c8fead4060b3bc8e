//! One decision on the shipped example policy, for a recipient with three
//! devices, next to a plain hand-written if-chain of the same rules. Run
//! with `cargo bench -p ladder-core --bench decide`.
//!
//! `payroll_over_rcs` takes the first step; `payroll_down_to_portal` walks
//! the whole ladder (every step skipped: the recipient has no contact point
//! for the portal's one-time code); `hr_case_blocked` exhausts it. Each has
//! an `if_chain_*` twin: the baseline in `support/if_chain.rs`, checked at
//! set-up (and by `tests/if_chain.rs`) to pick the same route, so the ratio
//! of the two rows is what the policy engine costs. `policy_parse` is there
//! for scale: parsing and hashing a policy happens once per publication,
//! deciding once per message.
//!
//! Every row but `policy_parse` times samples of 100 calls: left to itself
//! divan times some rows call by call, where the timer's own cost (15 ns
//! here) is a tenth of a decision, and rows stop being comparable.

// Benchmark set-up on fixed, known-good inputs: a failure here is a bug in
// the benchmark, and panicking is the right report.
#![allow(clippy::unwrap_used, clippy::panic)]

mod support;

use divan::counter::ItemsCount;
use ladder_core::assurance::E2eeState;
use ladder_core::{DecisionInput, Policy, decide};
use support::if_chain::Acme;
use support::{CASES, Case, NOW, POLICY, message, thread, three_devices};

fn main() {
    divan::main();
}

fn case(name: &str) -> Case {
    CASES.into_iter().find(|c| c.name == name).unwrap()
}

fn bench_decision(b: divan::Bencher, name: &str) {
    let c = case(name);
    let policy = Policy::parse(POLICY, "acme.toml").unwrap().policy;
    let recipient = three_devices(c.rcs);
    let thread = thread(c.floor);
    let message = message(c.class);
    b.counter(ItemsCount::new(1usize)).bench(|| {
        let input = DecisionInput {
            message: &message,
            recipient: &recipient,
            thread: &thread,
            overrides: &[],
            failed: &[],
            now: NOW,
        };
        decide(divan::black_box(&policy), divan::black_box(&input))
    });
}

/// The same case through the if-chain, after checking it agrees with
/// `decide` on it.
fn bench_if_chain(b: divan::Bencher, name: &str) {
    let c = case(name);
    let policy = Policy::parse(POLICY, "acme.toml").unwrap().policy;
    let recipient = three_devices(c.rcs);
    let thread = thread(c.floor);
    let message = message(c.class);
    let acme = Acme::default();
    let input = DecisionInput {
        message: &message,
        recipient: &recipient,
        thread: &thread,
        overrides: &[],
        failed: &[],
        now: NOW,
    };
    let decided = decide(&policy, &input).unwrap();
    let chosen = acme.decide(c.class, &recipient, &thread, NOW);
    if chosen != Some(support::if_chain::choice_of(&decided.outcome)) {
        panic!(
            "{name}: the if-chain chose {chosen:?}, decide {:?}",
            decided.outcome
        );
    }
    b.counter(ItemsCount::new(1usize)).bench(|| {
        divan::black_box(&acme).decide(
            divan::black_box(c.class),
            divan::black_box(&recipient),
            divan::black_box(&thread),
            NOW,
        )
    });
}

#[divan::bench(sample_count = 500, sample_size = 100)]
fn payroll_over_rcs(b: divan::Bencher) {
    bench_decision(b, "payroll_over_rcs");
}

#[divan::bench(sample_count = 500, sample_size = 100)]
fn payroll_down_to_portal(b: divan::Bencher) {
    bench_decision(b, "payroll_down_to_portal");
}

#[divan::bench(sample_count = 500, sample_size = 100)]
fn hr_case_blocked(b: divan::Bencher) {
    bench_decision(b, "hr_case_blocked");
}

#[divan::bench(sample_count = 500, sample_size = 100)]
fn if_chain_payroll_over_rcs(b: divan::Bencher) {
    bench_if_chain(b, "payroll_over_rcs");
}

#[divan::bench(sample_count = 500, sample_size = 100)]
fn if_chain_payroll_down_to_portal(b: divan::Bencher) {
    bench_if_chain(b, "payroll_down_to_portal");
}

#[divan::bench(sample_count = 500, sample_size = 100)]
fn if_chain_hr_case_blocked(b: divan::Bencher) {
    bench_if_chain(b, "hr_case_blocked");
}

#[divan::bench]
fn policy_parse(b: divan::Bencher) {
    b.bench(|| {
        Policy::parse(divan::black_box(POLICY), "acme.toml").map(|p| p.policy.version().clone())
    });
}

/// The public `thread::assess`: every device's best path and the floor's
/// causes, owned — what the server asks when it opens a thread. A decision
/// reads the floor from its credit table instead, and stops as soon as the
/// devices hold it.
#[divan::bench(sample_count = 500, sample_size = 100)]
fn floor_assessment(b: divan::Bencher) {
    let policy = Policy::parse(POLICY, "acme.toml").unwrap().policy;
    let recipient = three_devices(E2eeState::Verified);
    let overrides: Vec<_> = policy.overrides().iter().collect();
    b.bench(|| {
        ladder_core::thread::assess(
            policy.evidence(),
            divan::black_box(&recipient),
            &overrides,
            NOW,
        )
    });
}
