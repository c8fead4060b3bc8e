//! The policy's evidence rules in the form every credit reads them.
//!
//! [`EvidenceRules`] is the model: maps and sets, as the policy file says
//! them and as its canonical JSON hashes them. Crediting one transport of
//! one device asks it the same questions every time — what does this source
//! verify, for how long, what is this client's minimum version — so a
//! policy compiles them once, at validation ([`CompiledEvidence`], kept in
//! the `Policy`), into a table by source and a flat list of client
//! minimums. [`Terms`] reads either that or, for callers that hold only the
//! rules, the rules themselves: the answers are the same.

use std::collections::BTreeMap;

use crate::assurance::{Claim, EvidenceSource};
use crate::time::Duration;
use crate::version::PlatformVersion;

use super::grade::StaleRef;
use super::{ClientInfo, EvidenceRules};

/// What one evidence source is trusted for, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SourceTerms {
    pub reachable: bool,
    pub e2ee: bool,
    pub attestation: bool,
    pub fresh_for: Duration,
}

/// The terms of each source, by [`source_slot`]; `None` for a source the
/// policy has no rule for (it verifies nothing).
type SourceTable = [Option<SourceTerms>; 3];

/// Where a source's terms sit in a [`SourceTable`].
fn source_slot(source: EvidenceSource) -> usize {
    match source {
        EvidenceSource::SignedDeviceReport => 0,
        EvidenceSource::ProviderCheck => 1,
        EvidenceSource::SelfReported => 2,
    }
}

fn source_terms(rules: &EvidenceRules, source: EvidenceSource) -> Option<SourceTerms> {
    rules.sources.get(&source).map(|r| SourceTerms {
        reachable: r.verifies.contains(&Claim::Reachable),
        e2ee: r.verifies.contains(&Claim::E2ee),
        attestation: r.verifies.contains(&Claim::Attestation),
        fresh_for: r.fresh_for,
    })
}

fn source_table(rules: &EvidenceRules) -> SourceTable {
    [
        source_terms(rules, EvidenceSource::SignedDeviceReport),
        source_terms(rules, EvidenceSource::ProviderCheck),
        source_terms(rules, EvidenceSource::SelfReported),
    ]
}

/// One client the policy sets a minimum version for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientMinimum {
    /// As validation stored it: lowercased, unique.
    pub name: Box<str>,
    pub minimum: PlatformVersion,
}

/// The evidence rules compiled at validation; see the module doc.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CompiledEvidence {
    sources: SourceTable,
    clients: Box<[ClientMinimum]>,
    /// No two client names are equal without (ASCII) case — validation
    /// stores them lowercased — so a name spelled exactly as listed is the
    /// one match, found without the slower comparison.
    exact_first: bool,
}

impl CompiledEvidence {
    pub(crate) fn new(rules: &EvidenceRules) -> CompiledEvidence {
        let clients: Box<[ClientMinimum]> = rules
            .min_client_version
            .iter()
            .map(|(name, minimum)| ClientMinimum {
                name: name.as_str().into(),
                minimum: minimum.clone(),
            })
            .collect();
        let exact_first = clients.iter().enumerate().all(|(i, a)| {
            clients
                .iter()
                .skip(i + 1)
                .all(|b| !a.name.eq_ignore_ascii_case(&b.name))
        });
        CompiledEvidence {
            sources: source_table(rules),
            clients,
            exact_first,
        }
    }
}

/// The client minimums a [`Terms`] reads.
#[derive(Debug, Clone, Copy)]
enum Clients<'a> {
    Compiled {
        clients: &'a [ClientMinimum],
        exact_first: bool,
    },
    Rules(&'a BTreeMap<String, PlatformVersion>),
}

/// The evidence rules as one decision (or one public credit) reads them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Terms<'a> {
    pub rules: &'a EvidenceRules,
    /// Compiled; `None`: read from `rules` at each use (a caller with the
    /// rules alone often credits one transport, not a table of them).
    sources: Option<SourceTable>,
    clients: Clients<'a>,
}

impl<'a> Terms<'a> {
    /// From the rules alone, for callers without a compiled policy.
    pub(crate) fn new(rules: &'a EvidenceRules) -> Terms<'a> {
        Terms {
            rules,
            sources: None,
            clients: Clients::Rules(&rules.min_client_version),
        }
    }

    /// From a policy's compiled form of `rules`.
    pub(crate) fn compiled(rules: &'a EvidenceRules, compiled: &'a CompiledEvidence) -> Terms<'a> {
        Terms {
            rules,
            sources: Some(compiled.sources),
            clients: Clients::Compiled {
                clients: &compiled.clients,
                exact_first: compiled.exact_first,
            },
        }
    }

    pub(crate) fn source(&self, source: EvidenceSource) -> Option<SourceTerms> {
        match &self.sources {
            Some(table) => table.get(source_slot(source)).copied().flatten(),
            None => source_terms(self.rules, source),
        }
    }

    fn lists_clients(&self) -> bool {
        match self.clients {
            Clients::Compiled { clients, .. } => !clients.is_empty(),
            Clients::Rules(r) => !r.is_empty(),
        }
    }

    /// The minimum the policy sets for a client, names compared without
    /// (ASCII) case.
    fn minimum_for(&self, name: &str) -> Option<&'a PlatformVersion> {
        match self.clients {
            Clients::Compiled {
                clients,
                exact_first,
            } => exact_first
                .then(|| clients.iter().find(|m| *m.name == *name))
                .flatten()
                .or_else(|| clients.iter().find(|m| m.name.eq_ignore_ascii_case(name)))
                .map(|m| &m.minimum),
            Clients::Rules(r) => r
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v),
        }
    }

    /// Whether a fresh signed report is still usable on its own terms.
    /// Once the policy names minimum client versions, a client it does not
    /// name is stale too: deny by default, names compared without case.
    pub(crate) fn client_staleness(&self, client: Option<&'a ClientInfo>) -> Option<StaleRef<'a>> {
        let Some(client) = client else {
            let demands = self.lists_clients() || self.rules.min_policy_revision.is_some();
            return demands.then_some(StaleRef::ClientUnknown);
        };
        if self.lists_clients() {
            match self.minimum_for(&client.name) {
                None => return Some(StaleRef::ClientNotListed { client }),
                Some(minimum) if client.version < *minimum => {
                    return Some(StaleRef::ClientBehindMinimum { client, minimum });
                }
                Some(_) => {}
            }
        }
        match self.rules.min_policy_revision {
            Some(minimum) if client.policy_revision < minimum => {
                Some(StaleRef::PolicyRevisionBehind {
                    supported: client.policy_revision,
                    minimum,
                })
            }
            _ => None,
        }
    }
}
