//! What validation compiles a policy into for deciding: lookups resolved
//! once per policy instead of once per message.
//!
//! A decision names its class by string, reads the evidence rules for every
//! credit, and names every step it evaluates. None of that changes between
//! messages, so [`Compiled`] holds the class names side by side, the
//! evidence rules as flat tables ([`CompiledEvidence`]), and each ladder
//! step's route name. It is derived from the rest of the
//! policy, never serialised, and so never part of its version.

use crate::evidence::{CompiledEvidence, EvidenceRules};

use super::Class;

/// See the module doc.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Compiled {
    /// Every class name, in file order (so its position is the class's
    /// index), side by side: a search reads one small array, comparing
    /// lengths first and text only where they match. Faster than a map or
    /// a binary search for the handful of classes a policy has.
    classes: Box<[Box<str>]>,
    /// Per class (by index), per ladder step: `Step::route_name`.
    routes: Box<[Box<[String]>]>,
    pub(crate) evidence: CompiledEvidence,
}

impl Compiled {
    pub(crate) fn new(classes: &[Class], evidence: &EvidenceRules) -> Compiled {
        Compiled {
            classes: classes.iter().map(|c| c.name.as_str().into()).collect(),
            routes: classes
                .iter()
                .map(|c| c.ladder.iter().map(|s| s.route_name()).collect())
                .collect(),
            evidence: CompiledEvidence::new(evidence),
        }
    }

    /// The index of the (first) class named `name`.
    pub(crate) fn class_index(&self, name: &str) -> Option<usize> {
        self.classes.iter().position(|n| **n == *name)
    }

    /// The route names of class `index`'s ladder steps.
    pub(crate) fn routes(&self, index: usize) -> &[String] {
        self.routes.get(index).map_or(&[], |r| r)
    }
}
