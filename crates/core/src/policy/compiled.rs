//! What validation compiles a policy into for deciding: lookups resolved
//! once per policy instead of once per message.
//!
//! A decision names its class by string, reads the evidence rules for every
//! credit, and names every step it evaluates. None of that changes between
//! messages, so [`Compiled`] holds the class names sorted for a binary
//! search, the evidence rules as flat tables ([`CompiledEvidence`]), and
//! each ladder step's route name. It is derived from the rest of the
//! policy, never serialised, and so never part of its version.

use std::cmp::Ordering;

use crate::evidence::{CompiledEvidence, EvidenceRules};

use super::Class;

/// See the module doc.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Compiled {
    /// Every class name and its index, by length then bytes: most probes
    /// of a search compare two lengths and no text.
    classes: Box<[(Box<str>, usize)]>,
    /// Per class (by index), per ladder step: `Step::route_name`.
    routes: Box<[Box<[String]>]>,
    pub(crate) evidence: CompiledEvidence,
}

fn by_length(name: &str, other: &str) -> Ordering {
    name.len()
        .cmp(&other.len())
        .then_with(|| name.as_bytes().cmp(other.as_bytes()))
}

impl Compiled {
    pub(crate) fn new(classes: &[Class], evidence: &EvidenceRules) -> Compiled {
        let mut names: Vec<(Box<str>, usize)> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.as_str().into(), i))
            .collect();
        // Stable: equal names (validation refuses them) keep file order.
        names.sort_by(|a, b| by_length(&a.0, &b.0));
        Compiled {
            classes: names.into(),
            routes: classes
                .iter()
                .map(|c| c.ladder.iter().map(|s| s.route_name()).collect())
                .collect(),
            evidence: CompiledEvidence::new(evidence),
        }
    }

    /// The index of the (first) class named `name`.
    pub(crate) fn class_index(&self, name: &str) -> Option<usize> {
        let at = self
            .classes
            .partition_point(|(n, _)| by_length(n, name) == Ordering::Less);
        self.classes
            .get(at)
            .filter(|(n, _)| **n == *name)
            .map(|(_, i)| *i)
    }

    /// The route names of class `index`'s ladder steps.
    pub(crate) fn routes(&self, index: usize) -> &[String] {
        self.routes.get(index).map_or(&[], |r| r)
    }
}
