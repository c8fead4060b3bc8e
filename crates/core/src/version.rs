//! Dotted numeric versions (`26.2`, `5.10.1`) and the ranges overrides and
//! minimums are written with (`>=26.2,<26.4`).
//!
//! OS and client versions are not semver: they have one to four parts and no
//! pre-release rules, so comparison is part by part with missing parts as 0.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A version such as `26.2` or `5.10.1`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct PlatformVersion(Vec<u32>);

impl PlatformVersion {
    pub fn from_parts(parts: &[u32]) -> PlatformVersion {
        PlatformVersion(parts.to_vec())
    }

    fn part(&self, i: usize) -> u32 {
        self.0.get(i).copied().unwrap_or(0)
    }
}

impl PartialEq for PlatformVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for PlatformVersion {}

impl PartialOrd for PlatformVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PlatformVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let len = self.0.len().max(other.0.len());
        (0..len)
            .map(|i| self.part(i).cmp(&other.part(i)))
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    }
}

impl FromStr for PlatformVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Result<Vec<u32>, _> = s.trim().split('.').map(str::parse::<u32>).collect();
        match parts {
            Ok(p) if !p.is_empty() && p.len() <= 4 => Ok(PlatformVersion(p)),
            _ => Err(VersionError::Version(s.to_owned())),
        }
    }
}

impl TryFrom<String> for PlatformVersion {
    type Error = VersionError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PlatformVersion> for String {
    fn from(v: PlatformVersion) -> String {
        v.to_string()
    }
}

impl fmt::Display for PlatformVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

/// A range limit and whether it is inclusive.
type Bound<'a> = (&'a PlatformVersion, bool);

/// A comparison in a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Op {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
}

/// A conjunction of comparisons, e.g. `>=26.2,<26.4`. Parsing rejects empty
/// and inverted ranges, so a range that parses matches at least one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct VersionRange {
    text: String,
    bounds: Vec<(Op, PlatformVersion)>,
}

impl VersionRange {
    pub fn contains(&self, v: &PlatformVersion) -> bool {
        self.bounds.iter().all(|(op, b)| match op {
            Op::Ge => v >= b,
            Op::Gt => v > b,
            Op::Le => v <= b,
            Op::Lt => v < b,
            Op::Eq => v == b,
        })
    }

    /// The tightest lower and upper bound, each with whether it is inclusive.
    fn limits(&self) -> (Option<Bound<'_>>, Option<Bound<'_>>) {
        let mut lower: Option<Bound<'_>> = None;
        let mut upper: Option<Bound<'_>> = None;
        for (op, b) in &self.bounds {
            let (lo, hi) = match op {
                Op::Ge => (Some((b, true)), None),
                Op::Gt => (Some((b, false)), None),
                Op::Le => (None, Some((b, true))),
                Op::Lt => (None, Some((b, false))),
                Op::Eq => (Some((b, true)), Some((b, true))),
            };
            if let Some(new) = lo {
                lower = Some(match lower {
                    Some(old) if old.0 > new.0 || (old.0 == new.0 && !old.1) => old,
                    _ => new,
                });
            }
            if let Some(new) = hi {
                upper = Some(match upper {
                    Some(old) if old.0 < new.0 || (old.0 == new.0 && !old.1) => old,
                    _ => new,
                });
            }
        }
        (lower, upper)
    }
}

impl FromStr for VersionRange {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bounds = Vec::new();
        for raw in s.split(',') {
            let c = raw.trim();
            let (op, rest) = if let Some(r) = c.strip_prefix(">=") {
                (Op::Ge, r)
            } else if let Some(r) = c.strip_prefix("<=") {
                (Op::Le, r)
            } else if let Some(r) = c.strip_prefix('>') {
                (Op::Gt, r)
            } else if let Some(r) = c.strip_prefix('<') {
                (Op::Lt, r)
            } else if let Some(r) = c.strip_prefix('=') {
                (Op::Eq, r)
            } else {
                return Err(VersionError::Comparator {
                    range: s.to_owned(),
                    comparator: c.to_owned(),
                });
            };
            let v = rest.parse().map_err(|_| VersionError::Comparator {
                range: s.to_owned(),
                comparator: c.to_owned(),
            })?;
            bounds.push((op, v));
        }
        let range = VersionRange {
            text: s.trim().to_owned(),
            bounds,
        };
        if let (Some((lo, lo_incl)), Some((hi, hi_incl))) = range.limits() {
            if lo > hi {
                return Err(VersionError::Inverted(s.to_owned()));
            }
            if lo == hi && !(lo_incl && hi_incl) {
                return Err(VersionError::Empty(s.to_owned()));
            }
        }
        Ok(range)
    }
}

impl TryFrom<String> for VersionRange {
    type Error = VersionError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<VersionRange> for String {
    fn from(r: VersionRange) -> String {
        r.text
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("invalid version `{0}`; write one to four dot-separated numbers, e.g. `26.2`")]
    Version(String),
    #[error(
        "invalid comparison `{comparator}` in version range `{range}`; write e.g. `>=26.2,<26.4`"
    )]
    Comparator { range: String, comparator: String },
    #[error("version range `{0}` is inverted: its lower bound is above its upper bound")]
    Inverted(String),
    #[error("version range `{0}` is empty: no version can satisfy it")]
    Empty(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> PlatformVersion {
        s.parse().unwrap()
    }

    #[test]
    fn versions_compare_part_by_part_with_missing_parts_as_zero() {
        assert!(v("26.10") > v("26.9"));
        assert_eq!(v("26.2"), v("26.2.0"));
        assert!(v("26.2.1") > v("26.2"));
        assert!("26.x".parse::<PlatformVersion>().is_err());
        assert!("".parse::<PlatformVersion>().is_err());
    }

    #[test]
    fn ranges_match_half_open_intervals() {
        let r: VersionRange = ">=26.2,<26.4".parse().unwrap();
        assert!(!r.contains(&v("26.1.9")));
        assert!(r.contains(&v("26.2")));
        assert!(r.contains(&v("26.3.5")));
        assert!(!r.contains(&v("26.4")));
    }

    #[test]
    fn inverted_and_empty_ranges_are_rejected() {
        assert_eq!(
            ">=26.4,<26.2".parse::<VersionRange>(),
            Err(VersionError::Inverted(">=26.4,<26.2".into()))
        );
        assert_eq!(
            ">=26.2,<26.2".parse::<VersionRange>(),
            Err(VersionError::Empty(">=26.2,<26.2".into()))
        );
        assert!("=26.2".parse::<VersionRange>().is_ok());
        assert!("~26.2".parse::<VersionRange>().is_err());
    }
}
