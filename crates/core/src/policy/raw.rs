//! The policy file as written: TOML deserialised with every value's span, and
//! nothing checked beyond its shape. [`super::validate`] turns it into a
//! [`super::Policy`]; nothing else reads these types.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub(crate) type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub tenant: S<String>,
    pub display_name: S<String>,
    pub revision: Option<S<u32>>,
    pub override_max_lifetime: Option<S<String>>,
    pub evidence: S<RawEvidence>,
    #[serde(default)]
    pub notice: Vec<S<RawNotice>>,
    #[serde(default)]
    pub class: Vec<S<RawClass>>,
    #[serde(default, rename = "override")]
    pub overrides: Vec<S<RawOverride>>,
    pub branding: Option<S<RawBranding>>,
}

/// `[branding]`: how the portal looks to this tenant's recipients.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBranding {
    pub name: Option<S<String>>,
    pub logo: Option<S<String>>,
    pub accent: Option<S<String>>,
    pub text: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEvidence {
    #[serde(default)]
    pub min_client_version: BTreeMap<String, S<String>>,
    pub min_policy_revision: Option<S<u32>>,
    pub enrolment_fresh_for: Option<S<String>>,
    #[serde(default)]
    pub source: Vec<S<RawSource>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSource {
    pub source: S<String>,
    #[serde(default)]
    pub verifies: Vec<S<String>>,
    pub fresh_for: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotice {
    pub name: S<String>,
    pub text: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClass {
    pub name: S<String>,
    pub minimum: S<String>,
    pub mode: Option<S<String>>,
    pub legacy: Option<S<RawStep>>,
    #[serde(default)]
    pub confirm_downgrade: bool,
    pub retention: S<String>,
    pub on_exhausted: S<String>,
    pub hold_for: Option<S<String>>,
    pub after_hold: Option<S<String>>,
    pub notice: Option<S<String>>,
    pub ladder: S<Vec<S<RawStep>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStep {
    pub container: S<String>,
    #[serde(default)]
    pub notifiers: Vec<S<String>>,
    pub require: Option<S<String>>,
    pub step_up: Option<S<String>>,
}

/// Shared by policy files (absolute `expires`) and scenarios, which may also
/// say `expires_in` relative to the scenario clock.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOverride {
    pub id: S<String>,
    pub channel: S<String>,
    pub os: Option<S<String>>,
    pub os_version: Option<S<String>>,
    pub client: Option<S<String>>,
    pub client_version: Option<S<String>>,
    pub carrier: Option<S<String>>,
    pub effect: S<String>,
    pub force: Option<S<String>>,
    pub reason: S<String>,
    pub author: S<String>,
    pub expires: Option<S<toml::value::Datetime>>,
    pub expires_in: Option<S<String>>,
}
