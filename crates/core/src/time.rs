//! Time as an input. The core never reads a clock: callers pass `now` as a
//! [`Timestamp`], and policy durations (`"7d"`, `"36h"`) parse into
//! [`Duration`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Seconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Saturates instead of overflowing: a far-future expiry stays far future.
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add_unsigned(d.0))
    }

    /// The earliest instant any input may name: the Unix epoch.
    pub const EARLIEST: Timestamp = Timestamp(0);
    /// The latest instant any input may name: 2100-01-01T00:00:00Z. Nothing
    /// ladder schedules (an expiry, a hold, an override) has a use for a
    /// later one, and a date in the year 9999 is a way to say "never".
    pub const LATEST: Timestamp = Timestamp(4_102_444_800);

    /// Parses an RFC 3339 timestamp with an offset (`2026-12-31T00:00:00Z`),
    /// between [`Timestamp::EARLIEST`] and [`Timestamp::LATEST`].
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp, TimeError> {
        let t = OffsetDateTime::parse(s, &Rfc3339)
            .map(|t| Timestamp(t.unix_timestamp()))
            .map_err(|_| TimeError::Timestamp(s.to_owned()))?;
        if t < Timestamp::EARLIEST || t > Timestamp::LATEST {
            return Err(TimeError::TimestampOutOfRange(s.to_owned()));
        }
        Ok(t)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
        {
            Some(s) => f.write_str(&s),
            None => write!(f, "@{}", self.0),
        }
    }
}

/// A span of whole seconds, written in policies as `90s`, `15m`, `36h`, `7d`,
/// `2w`, `1y` (365 days) or a sum such as `1d12h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Duration(pub u64);

impl Duration {
    /// The longest span any input may write: 100 years. Longer is a way to
    /// say "never" (an override that never expires), which no field means.
    pub const MAX: Duration = Duration(100 * 31_536_000);

    pub const fn seconds(s: u64) -> Duration {
        Duration(s)
    }
    pub const fn hours(h: u64) -> Duration {
        Duration(h.saturating_mul(3600))
    }
    pub const fn days(d: u64) -> Duration {
        Duration(d.saturating_mul(86_400))
    }
}

impl FromStr for Duration {
    type Err = TimeError;

    fn from_str(s: &str) -> Result<Duration, TimeError> {
        let bad = || TimeError::Duration(s.to_owned());
        let mut total: u64 = 0;
        let mut digits = String::new();
        let mut saw_unit = false;
        for ch in s.trim().chars() {
            if ch.is_ascii_digit() {
                digits.push(ch);
                continue;
            }
            let unit: u64 = match ch {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 604_800,
                'y' => 31_536_000,
                _ => return Err(bad()),
            };
            let n: u64 = digits.parse().map_err(|_| bad())?;
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(bad)?;
            digits.clear();
            saw_unit = true;
        }
        if !digits.is_empty() || !saw_unit {
            return Err(bad());
        }
        if total > Duration::MAX.0 {
            return Err(TimeError::DurationTooLong(s.to_owned()));
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        if rest == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error(
        "invalid duration `{0}`; write a number and a unit (s, m, h, d, w, y), e.g. `7d` or `1d12h`"
    )]
    Duration(String),
    #[error("invalid timestamp `{0}`; write RFC 3339 with an offset, e.g. `2026-12-31T00:00:00Z`")]
    Timestamp(String),
    #[error("duration `{0}` is longer than 100 years; no setting takes one that long")]
    DurationTooLong(String),
    #[error("timestamp `{0}` is outside 1970-01-01 to 2100-01-01")]
    TimestampOutOfRange(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_units_and_sums() {
        assert_eq!("90s".parse(), Ok(Duration(90)));
        assert_eq!("1d12h".parse(), Ok(Duration(36 * 3600)));
        assert_eq!("2w".parse(), Ok(Duration::days(14)));
        assert!("12".parse::<Duration>().is_err());
        assert!("h".parse::<Duration>().is_err());
        assert!("7 days".parse::<Duration>().is_err());
        assert!("99999999999999999999d".parse::<Duration>().is_err());
    }

    #[test]
    fn unbounded_durations_and_timestamps_are_refused() {
        assert_eq!(
            "99999999999999d".parse::<Duration>(),
            Err(TimeError::DurationTooLong("99999999999999d".into()))
        );
        assert_eq!("100y".parse::<Duration>(), Ok(Duration::MAX));
        assert!("100y1s".parse::<Duration>().is_err());
        assert!(matches!(
            Timestamp::parse_rfc3339("9999-12-31T23:59:59Z"),
            Err(TimeError::TimestampOutOfRange(_))
        ));
        assert!(Timestamp::parse_rfc3339("1969-12-31T23:59:59Z").is_err());
        assert_eq!(
            Timestamp::parse_rfc3339("2100-01-01T00:00:00Z"),
            Ok(Timestamp::LATEST)
        );
    }

    #[test]
    fn durations_display_in_largest_units() {
        assert_eq!(Duration(36 * 3600 + 61).to_string(), "1d12h1m1s");
        assert_eq!(Duration(0).to_string(), "0s");
    }

    #[test]
    fn timestamps_round_trip_through_rfc3339() {
        let t = Timestamp::parse_rfc3339("2026-11-27T09:00:00Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-27T09:00:00Z");
        assert!(Timestamp::parse_rfc3339("2026-11-27 09:00").is_err());
        assert_eq!(Timestamp(i64::MAX).plus(Duration(5)), Timestamp(i64::MAX));
    }
}
