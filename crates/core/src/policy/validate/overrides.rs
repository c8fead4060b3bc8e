//! Checks of one emergency override, shared by policy files (absolute
//! `expires`) and scenarios (which may say `expires_in`).

use super::Checker;
use crate::assurance::{Channel, Container};
use crate::overrides::{LabelMatch, Override, OverrideEffect};
use crate::policy::diagnostic::{PolicyErrorKind as E, PolicyWarningKind as W};
use crate::policy::raw::{RawOverride, S};
use crate::time::{Duration, Timestamp};
use crate::version::VersionRange;

/// Parses one override. `now` is the scenario clock for `expires_in`; policy
/// files have no clock and must give an absolute `expires`.
pub(crate) fn parse_override(
    c: &mut Checker<'_>,
    raw: &RawOverride,
    now: Option<Timestamp>,
) -> Option<Override> {
    let id = c.identifier(&raw.id, "override id");
    let channel = c.name::<Channel>(&raw.channel);
    let reason = c.non_empty(&raw.reason, "reason");
    let author = c.non_empty(&raw.author, "author");
    let text = |v: &Option<S<String>>| v.as_ref().map(|s| s.get_ref().trim().to_owned());
    let mut range = |v: &Option<S<String>>| -> Result<Option<VersionRange>, ()> {
        match v {
            None => Ok(None),
            Some(s) => c.name::<VersionRange>(s).map(Some).ok_or(()),
        }
    };
    let os_version = range(&raw.os_version);
    let client_version = range(&raw.client_version);
    let matcher = LabelMatch {
        os: text(&raw.os),
        os_version: os_version.ok()?,
        client: text(&raw.client),
        client_version: client_version.ok()?,
        carrier: text(&raw.carrier),
    };
    let effect = match (raw.effect.get_ref().as_str(), &raw.force) {
        ("disable", None) => Some(OverrideEffect::Disable),
        ("distrust_e2ee", None) => Some(OverrideEffect::DistrustE2ee),
        ("force_step", Some(f)) => match (c.name::<Container>(f), channel) {
            (Some(container), Some(ch)) if container.channel() == ch => {
                c.error(
                    &f.span(),
                    E::ForceOntoOwnChannel {
                        id: id.clone(),
                        container,
                    },
                );
                None
            }
            (container, _) => container.map(OverrideEffect::ForceStep),
        },
        ("force_step", None) => {
            c.error(
                &raw.effect.span(),
                E::ForceWithoutContainer { id: id.clone() },
            );
            None
        }
        ("disable" | "distrust_e2ee", Some(f)) => {
            c.error(
                &f.span(),
                E::ForceWithoutEffect {
                    id: id.clone(),
                    effect: raw.effect.get_ref().clone(),
                },
            );
            None
        }
        (other, _) => {
            c.error(
                &raw.effect.span(),
                E::UnknownEffect {
                    given: other.into(),
                },
            );
            None
        }
    };
    let expires = match (&raw.expires, &raw.expires_in, now) {
        (Some(_), Some(s), _) => {
            c.error(&s.span(), E::OverrideTwoExpiries { id: id.clone() });
            None
        }
        (Some(dt), None, _) => match Timestamp::parse_rfc3339(&dt.get_ref().to_string()) {
            Ok(t) => Some(t),
            Err(e) => {
                c.error(&dt.span(), E::Time(e));
                None
            }
        },
        (None, Some(s), Some(now)) => c.name::<Duration>(s).map(|d| now.plus(d)),
        (None, _, _) => {
            c.error(&raw.id.span(), E::OverrideWithoutExpiry { id: id.clone() });
            None
        }
    };
    if matcher.is_empty() {
        c.warn(&raw.id.span(), W::OverrideMatchesAll { id: id.clone() });
    }
    Some(Override {
        id,
        channel: channel?,
        matcher,
        effect: effect?,
        reason,
        author,
        expires: expires?,
    })
}
