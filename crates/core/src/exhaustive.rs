//! Exhaustive invariant checking over a policy (placeholder being written).

use crate::policy::Policy;

/// What an exhaustive run found.
#[derive(Debug, Clone)]
pub struct ExhaustiveReport {
    pub states: u64,
    pub decisions: u64,
    pub counterexample: Option<Counterexample>,
}

/// A state that violates an invariant, as a ready-to-run scenario file.
#[derive(Debug, Clone)]
pub struct Counterexample {
    pub violation: String,
    pub scenario: String,
}

pub fn check(_policy: &Policy, _policy_path: &str) -> ExhaustiveReport {
    ExhaustiveReport {
        states: 0,
        decisions: 0,
        counterexample: None,
    }
}
