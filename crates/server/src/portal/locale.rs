//! The portal in the recipient's language and time zone.
//!
//! Every string a recipient reads is a Fluent message in
//! `crates/server/locales/{en,de,fr,es}/portal.ftl`, compiled into the
//! binary. The language is the recipient record's `language` when it is
//! set, else the best match for the browser's `Accept-Language`, else
//! English; times are shown in the record's `time_zone` (an IANA name,
//! UTC when unset), in the language's own format. The recipient fields are
//! checked here too, so that the API accepts only what the portal can use.

use std::borrow::Cow;
use std::collections::HashMap;

use axum::http::HeaderMap;
use axum::http::header::ACCEPT_LANGUAGE;
use fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader};

use super::TimeUnit;

// INVARIANT: the `.ftl` files are compiled in and parse (the loader would
// panic on first use otherwise); `every_language_has_every_message` loads
// them all, so a broken file fails the tests, never a recipient's page.
fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "en",
        // Plain text out: the pages escape it, and bidi isolation marks
        // would only break copy-and-paste of codes and times.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

/// The languages the portal speaks, by their primary subtag.
pub const SUPPORTED: [&str; 4] = ["en", "de", "fr", "es"];

/// A language the portal has messages for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    De,
    Fr,
    Es,
}

impl Lang {
    fn from_primary(primary: &str) -> Option<Lang> {
        match primary {
            "en" => Some(Lang::En),
            "de" => Some(Lang::De),
            "fr" => Some(Lang::Fr),
            "es" => Some(Lang::Es),
            _ => None,
        }
    }

    /// The `lang` attribute of the page.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
            Lang::Fr => "fr",
            Lang::Es => "es",
        }
    }

    fn id(self) -> LanguageIdentifier {
        let tag = self.tag();
        tag.parse().unwrap_or_default()
    }

    /// Message `id` with no arguments.
    pub(crate) fn t(self, id: &str) -> String {
        LOCALES.lookup(&self.id(), id)
    }

    /// Message `id` with `args` (names without the `$`).
    pub(crate) fn ta(self, id: &str, args: &[(&'static str, Arg)]) -> String {
        let args: HashMap<Cow<'static, str>, FluentValue> = args
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Arg::Text(s) => FluentValue::from(s.clone()),
                    Arg::Number(n) => FluentValue::from(*n),
                };
                (Cow::Borrowed(*k), value)
            })
            .collect();
        LOCALES.lookup_with_args(&self.id(), id, &args)
    }

    /// A span of seconds in words, at most two units, rounded down (as
    /// [`super::describe_duration`], in this language).
    pub(crate) fn duration(self, seconds: i64) -> String {
        if seconds < 60 {
            return self.t("duration-under-a-minute");
        }
        super::duration_parts(seconds)
            .into_iter()
            .map(|(n, unit)| {
                let id = match unit {
                    TimeUnit::Day => "duration-days",
                    TimeUnit::Hour => "duration-hours",
                    TimeUnit::Minute => "duration-minutes",
                };
                self.ta(id, &[("n", Arg::Number(n))])
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A short wait: seconds under a minute, else as [`Lang::duration`].
    pub(crate) fn wait(self, seconds: u64) -> String {
        match i64::try_from(seconds).unwrap_or(i64::MAX) {
            s if s < 60 => self.ta("duration-seconds", &[("n", Arg::Number(s))]),
            s => self.duration(s),
        }
    }

    /// A moment as this language writes it, in `zone`, naming the zone:
    /// `2026-03-01 15:05 CET`, `01.03.2026, 15:05 CET`, `01/03/2026 15:05 CET`.
    pub(crate) fn time(self, ms: i64, zone: &jiff::tz::TimeZone) -> String {
        let pattern = match self {
            Lang::En => "%Y-%m-%d %H:%M %Z",
            Lang::De => "%d.%m.%Y, %H:%M %Z",
            Lang::Fr | Lang::Es => "%d/%m/%Y %H:%M %Z",
        };
        match jiff::Timestamp::from_millisecond(ms) {
            Ok(t) => t.to_zoned(zone.clone()).strftime(pattern).to_string(),
            Err(_) => String::new(),
        }
    }
}

/// A Fluent argument.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Number(i64),
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Text(s.to_string())
    }
}

impl From<i64> for Arg {
    fn from(n: i64) -> Self {
        Arg::Number(n)
    }
}

/// The page's language: the recipient's own if set, else the best
/// supported match for the browser's `Accept-Language`, else English.
pub(crate) fn negotiate(recipient: Option<&str>, headers: &HeaderMap) -> Lang {
    if let Some(lang) = recipient
        .and_then(primary)
        .and_then(|p| Lang::from_primary(&p))
    {
        return lang;
    }
    let header = headers
        .get(ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let requested = fluent_langneg::parse_accepted_languages(header);
    let available: Vec<LanguageIdentifier> =
        SUPPORTED.iter().filter_map(|t| t.parse().ok()).collect();
    let default: LanguageIdentifier = "en".parse().unwrap_or_default();
    fluent_langneg::negotiate_languages(
        &requested,
        &available,
        Some(&default),
        fluent_langneg::NegotiationStrategy::Lookup,
    )
    .first()
    .and_then(|l| Lang::from_primary(l.language.as_str()))
    .unwrap_or(Lang::En)
}

fn primary(tag: &str) -> Option<String> {
    tag.parse::<LanguageIdentifier>()
        .ok()
        .map(|l| l.language.as_str().to_string())
}

/// A recipient's `language` as the API takes it: a well-formed BCP 47
/// tag whose language the portal speaks; returned in canonical form.
pub fn recipient_language(tag: &str) -> Option<String> {
    if tag.len() > 35 {
        return None;
    }
    let id: LanguageIdentifier = tag.parse().ok()?;
    Lang::from_primary(id.language.as_str())?;
    Some(id.to_string())
}

/// A recipient's `time_zone` as the API takes it: an IANA name the
/// bundled time zone database knows; returned as written there.
pub fn recipient_time_zone(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 64 {
        return None;
    }
    let zone = jiff::tz::TimeZone::get(name).ok()?;
    zone.iana_name().map(str::to_string)
}

/// The zone times are shown in: the recipient's, or UTC.
pub(crate) fn zone(name: Option<&str>) -> jiff::tz::TimeZone {
    name.and_then(|n| jiff::tz::TimeZone::get(n).ok())
        .unwrap_or(jiff::tz::TimeZone::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_LANGUAGE, value.parse().unwrap());
        h
    }

    #[test]
    fn the_recipient_language_wins_then_the_browser_then_english() {
        assert_eq!(
            negotiate(None, &accept("de-DE,de;q=0.9,en;q=0.5")),
            Lang::De
        );
        assert_eq!(negotiate(Some("fr"), &accept("de-DE")), Lang::Fr);
        assert_eq!(negotiate(None, &accept("it-IT,es;q=0.8")), Lang::Es);
        assert_eq!(negotiate(None, &accept("ja")), Lang::En);
        assert_eq!(negotiate(None, &HeaderMap::new()), Lang::En);
    }

    #[test]
    fn every_language_has_every_message() {
        let en = include_str!("../../locales/en/portal.ftl");
        let ids: Vec<&str> = en
            .lines()
            .filter_map(|l| l.split_once(" ="))
            .map(|(id, _)| id.trim())
            .filter(|id| !id.is_empty() && !id.starts_with('#') && !id.starts_with(' '))
            .collect();
        assert!(ids.len() > 40, "{}", ids.len());
        let args: HashMap<Cow<'static, str>, FluentValue> = [
            "sender", "to", "valid", "left", "n", "view", "max", "expires", "until", "wait", "at",
        ]
        .into_iter()
        .map(|k| (Cow::Borrowed(k), FluentValue::from(2)))
        .collect();
        for lang in [Lang::En, Lang::De, Lang::Fr, Lang::Es] {
            for id in &ids {
                assert!(
                    LOCALES
                        .lookup_single_language(&lang.id(), id, Some(&args))
                        .is_ok(),
                    "{} lacks {id}",
                    lang.tag()
                );
            }
        }
    }

    #[test]
    fn times_follow_the_language_and_the_zone() {
        let at = 1_772_373_909_000; // 2026-03-01T14:05:09Z
        assert_eq!(
            Lang::En.time(at, &jiff::tz::TimeZone::UTC),
            "2026-03-01 14:05 UTC"
        );
        let berlin = zone(Some("Europe/Berlin"));
        assert_eq!(Lang::De.time(at, &berlin), "01.03.2026, 15:05 CET");
        assert_eq!(Lang::Fr.time(at, &berlin), "01/03/2026 15:05 CET");
    }

    #[test]
    fn recipient_fields_are_checked() {
        assert_eq!(recipient_language("de-CH").as_deref(), Some("de-CH"));
        assert_eq!(recipient_language("fr").as_deref(), Some("fr"));
        assert_eq!(recipient_language("it"), None);
        assert_eq!(recipient_language("not a tag"), None);
        assert_eq!(
            recipient_time_zone("Europe/Berlin").as_deref(),
            Some("Europe/Berlin")
        );
        assert_eq!(recipient_time_zone("Mars/Olympus"), None);
        assert_eq!(recipient_time_zone("../../etc/passwd"), None);
    }

    #[test]
    fn durations_and_plurals_read_naturally() {
        assert_eq!(Lang::En.duration(7 * 86_400), "7 days");
        assert_eq!(Lang::En.duration(3_600 + 60), "1 hour 1 minute");
        assert_eq!(Lang::De.duration(15 * 60), "15 Minuten");
        assert_eq!(Lang::En.wait(1), "1 second");
        assert_eq!(Lang::Es.wait(30), "30 segundos");
    }
}
