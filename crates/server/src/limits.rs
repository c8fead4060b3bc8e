//! Rate limits on what anyone on the network can make the server do for
//! free: ask for portal codes (each one an SMS or e-mail someone pays for),
//! guess portal codes, and send forged webhooks or device requests (each
//! one an audit entry written for ever).
//!
//! Portal code requests and code attempts count every request, per link
//! and per client address, before anything is read. Webhooks and device
//! requests count only the ones refused (per source address, and per
//! device): a provider or device behind a busy address keeps being served
//! as long as its signatures verify, while a forger soon gets a 429 instead
//! of an audit entry per try. A limit that bites is audited once per key
//! and minute, not once per refused request, so the audit log cannot be
//! flooded through the limit either.
//!
//! Limits are per node and in memory (GCRA via `governor`): several nodes
//! multiply them, a restart resets them. Client addresses are the TCP
//! peer's: behind a reverse proxy every client shares the proxy's address
//! and limit, so size the per-address limits for that or put the proxy's
//! own limits in front.

use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use serde::Deserialize;

use crate::config::ConfigError;

/// How many requests may come at once (`burst`), and how often one more is
/// allowed after that (`every_ms`): `{ burst = 5, every_ms = 60000 }` is 5
/// at once, then one a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub burst: u32,
    pub every_ms: u64,
}

impl Rate {
    const fn new(burst: u32, every_ms: u64) -> Rate {
        Rate { burst, every_ms }
    }

    fn quota(self) -> Option<Quota> {
        let burst = NonZeroU32::new(self.burst)?;
        Some(Quota::with_period(Duration::from_millis(self.every_ms))?.allow_burst(burst))
    }
}

/// `[limits]` settings. The defaults leave people room for typos and
/// retries and stop scripts within seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// `POST /portal/{token}` (send me a code) per link. Default 5, then one per 20 s.
    pub code_requests_per_link: Rate,
    /// The same per client address, over all links. Default 10, then one per 30 s.
    pub code_requests_per_address: Rate,
    /// `POST /portal/{token}/code` per link. Default 10, then one per 10 s.
    pub code_attempts_per_link: Rate,
    /// The same per client address, over all links. Default 20, then one per 6 s.
    pub code_attempts_per_address: Rate,
    /// Webhooks refused (bad signature, malformed) per source address.
    /// Default 20, then one per 3 s.
    pub webhook_rejections_per_address: Rate,
    /// Device requests refused (bad signature, stale, revoked, unknown
    /// device) per device id. Default 10, then one per 6 s.
    pub device_rejections_per_device: Rate,
    /// The same per source address. Default 20, then one per 3 s.
    pub device_rejections_per_address: Rate,
    /// Console sign-ins refused (no such admin key) per source address.
    /// Default 10, then one per 6 s.
    pub console_sign_in_failures_per_address: Rate,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            code_requests_per_link: Rate::new(5, 20_000),
            code_requests_per_address: Rate::new(10, 30_000),
            code_attempts_per_link: Rate::new(10, 10_000),
            code_attempts_per_address: Rate::new(20, 6_000),
            webhook_rejections_per_address: Rate::new(20, 3_000),
            device_rejections_per_device: Rate::new(10, 6_000),
            device_rejections_per_address: Rate::new(20, 3_000),
            console_sign_in_failures_per_address: Rate::new(10, 6_000),
        }
    }
}

impl LimitsConfig {
    fn all(&self) -> [(&'static str, Rate); 8] {
        [
            ("limits.code_requests_per_link", self.code_requests_per_link),
            (
                "limits.code_requests_per_address",
                self.code_requests_per_address,
            ),
            ("limits.code_attempts_per_link", self.code_attempts_per_link),
            (
                "limits.code_attempts_per_address",
                self.code_attempts_per_address,
            ),
            (
                "limits.webhook_rejections_per_address",
                self.webhook_rejections_per_address,
            ),
            (
                "limits.device_rejections_per_device",
                self.device_rejections_per_device,
            ),
            (
                "limits.device_rejections_per_address",
                self.device_rejections_per_address,
            ),
            (
                "limits.console_sign_in_failures_per_address",
                self.console_sign_in_failures_per_address,
            ),
        ]
    }

    /// Refuses a limit that allows nothing or never refills (a zero burst
    /// or period), or one so loose it is no limit (a burst over 10 000 or
    /// a period over a day).
    pub fn check(&self) -> Result<(), ConfigError> {
        for (key, rate) in self.all() {
            if rate.burst == 0 || rate.every_ms == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "needs `burst` and `every_ms` of at least 1".into(),
                });
            }
            if rate.burst > 10_000 || rate.every_ms > 86_400_000 {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "allows at most `burst` = 10000 and `every_ms` = 86400000".into(),
                });
            }
        }
        Ok(())
    }
}

/// What a limit protects, as the `surface` label of
/// `ladder_rate_limited_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Surface {
    PortalCodeRequest,
    PortalCodeAttempt,
    Webhook,
    Device,
    ConsoleSignIn,
}

impl Surface {
    pub fn label(self) -> &'static str {
        match self {
            Surface::PortalCodeRequest => "portal_code_request",
            Surface::PortalCodeAttempt => "portal_code_attempt",
            Surface::Webhook => "webhook",
            Surface::Device => "device",
            Surface::ConsoleSignIn => "console_sign_in",
        }
    }
}

/// A request refused by a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub surface: Surface,
    /// Which limit bit: `link`, `address` or `device` (for the audit entry).
    pub by: &'static str,
    /// Whole seconds until the limit allows one more (at least 1).
    pub retry_after_s: u64,
}

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

/// One keyed limiter.
struct Limiter<K: Hash + Eq + Clone> {
    inner: Keyed<K>,
    clock: DefaultClock,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(rate: Rate) -> Limiter<K> {
        // `check` refused zeros; a fallback that still limits keeps this
        // total for a configuration built without it.
        let quota = rate
            .quota()
            .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN));
        Limiter {
            inner: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one from `key`'s allowance; when none is left, the wait in
    /// whole seconds (rounded up, at least 1).
    fn take(&self, key: &K) -> Result<(), u64> {
        self.inner.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            (wait.as_millis().div_ceil(1000))
                .try_into()
                .unwrap_or(u64::MAX)
                .max(1)
        })
    }
}

/// Every limit of one node.
pub struct Limits {
    code_requests_per_link: Limiter<String>,
    code_requests_per_address: Limiter<IpAddr>,
    code_attempts_per_link: Limiter<String>,
    code_attempts_per_address: Limiter<IpAddr>,
    webhook_rejections_per_address: Limiter<IpAddr>,
    device_rejections_per_device: Limiter<String>,
    device_rejections_per_address: Limiter<IpAddr>,
    console_sign_in_failures_per_address: Limiter<IpAddr>,
    /// One audit entry per surface and key a minute for a limit that bites.
    audited: Limiter<(Surface, String)>,
}

impl fmt::Debug for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limits").finish_non_exhaustive()
    }
}

impl Limits {
    pub fn new(cfg: &LimitsConfig) -> Limits {
        Limits {
            code_requests_per_link: Limiter::new(cfg.code_requests_per_link),
            code_requests_per_address: Limiter::new(cfg.code_requests_per_address),
            code_attempts_per_link: Limiter::new(cfg.code_attempts_per_link),
            code_attempts_per_address: Limiter::new(cfg.code_attempts_per_address),
            webhook_rejections_per_address: Limiter::new(cfg.webhook_rejections_per_address),
            device_rejections_per_device: Limiter::new(cfg.device_rejections_per_device),
            device_rejections_per_address: Limiter::new(cfg.device_rejections_per_address),
            console_sign_in_failures_per_address: Limiter::new(
                cfg.console_sign_in_failures_per_address,
            ),
            audited: Limiter::new(Rate::new(1, 60_000)),
        }
    }

    /// A portal code request on the link whose token hashes to `link`
    /// (`None` for a string that is no token), from `addr`.
    pub fn code_request(&self, link: Option<&str>, addr: IpAddr) -> Result<(), Refused> {
        both(
            Surface::PortalCodeRequest,
            &self.code_requests_per_address,
            addr,
            &self.code_requests_per_link,
            link,
            "link",
        )
    }

    /// A portal code attempt, as [`Limits::code_request`].
    pub fn code_attempt(&self, link: Option<&str>, addr: IpAddr) -> Result<(), Refused> {
        both(
            Surface::PortalCodeAttempt,
            &self.code_attempts_per_address,
            addr,
            &self.code_attempts_per_link,
            link,
            "link",
        )
    }

    /// A webhook from `addr` was refused: may it still be answered (and
    /// audited) one by one?
    pub fn webhook_rejected(&self, addr: IpAddr) -> Result<(), Refused> {
        self.webhook_rejections_per_address
            .take(&addr)
            .map_err(|s| refused(Surface::Webhook, "address", s))
    }

    /// A device request from `addr`, naming `device` if it named a known
    /// one, was refused: may it still be answered (and audited) one by one?
    pub fn device_rejected(&self, device: Option<&str>, addr: IpAddr) -> Result<(), Refused> {
        both(
            Surface::Device,
            &self.device_rejections_per_address,
            addr,
            &self.device_rejections_per_device,
            device,
            "device",
        )
    }

    /// A console sign-in from `addr` failed: may it still try again now?
    pub fn sign_in_failed(&self, addr: IpAddr) -> Result<(), Refused> {
        self.console_sign_in_failures_per_address
            .take(&addr)
            .map_err(|s| refused(Surface::ConsoleSignIn, "address", s))
    }

    /// Whether this refusal is the first for `key` on `surface` this
    /// minute, and so the one to audit.
    pub fn audit_due(&self, surface: Surface, key: &str) -> bool {
        self.audited.take(&(surface, key.to_string())).is_ok()
    }

    /// Forgets keys whose allowance is full again, so the memory held is
    /// bounded by the keys seen recently. Called by the maintenance loop.
    pub fn tidy(&self) {
        self.code_requests_per_link.inner.retain_recent();
        self.code_requests_per_address.inner.retain_recent();
        self.code_attempts_per_link.inner.retain_recent();
        self.code_attempts_per_address.inner.retain_recent();
        self.webhook_rejections_per_address.inner.retain_recent();
        self.device_rejections_per_device.inner.retain_recent();
        self.console_sign_in_failures_per_address
            .inner
            .retain_recent();
        self.device_rejections_per_address.inner.retain_recent();
        self.audited.inner.retain_recent();
    }
}

fn refused(surface: Surface, by: &'static str, retry_after_s: u64) -> Refused {
    metrics::counter!("ladder_rate_limited_total", "surface" => surface.label()).increment(1);
    Refused {
        surface,
        by,
        retry_after_s,
    }
}

/// The address limit, then (if there is a key) the other one.
fn both(
    surface: Surface,
    by_address: &Limiter<IpAddr>,
    addr: IpAddr,
    by_key: &Limiter<String>,
    key: Option<&str>,
    key_name: &'static str,
) -> Result<(), Refused> {
    by_address
        .take(&addr)
        .map_err(|s| refused(surface, "address", s))?;
    if let Some(key) = key {
        by_key
            .take(&key.to_string())
            .map_err(|s| refused(surface, key_name, s))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_bites_after_its_burst_and_names_itself() {
        let cfg = LimitsConfig {
            code_requests_per_link: Rate::new(2, 60_000),
            ..LimitsConfig::default()
        };
        let limits = Limits::new(&cfg);
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(limits.code_request(Some("a"), addr).is_ok());
        assert!(limits.code_request(Some("a"), addr).is_ok());
        let refused = limits.code_request(Some("a"), addr).unwrap_err();
        assert_eq!(refused.by, "link");
        assert_eq!(refused.surface, Surface::PortalCodeRequest);
        assert!((1..=60).contains(&refused.retry_after_s), "{refused:?}");
        // Another link is its own key.
        assert!(limits.code_request(Some("b"), addr).is_ok());
        assert!(limits.audit_due(Surface::PortalCodeRequest, "a"));
        assert!(!limits.audit_due(Surface::PortalCodeRequest, "a"));
        assert!(limits.audit_due(Surface::PortalCodeAttempt, "a"));
    }

    #[test]
    fn zero_and_huge_limits_are_refused() {
        assert!(LimitsConfig::default().check().is_ok());
        let zero: LimitsConfig =
            toml::from_str("webhook_rejections_per_address = { burst = 0, every_ms = 10 }\n")
                .unwrap();
        let err = zero.check().unwrap_err().to_string();
        assert!(
            err.contains("limits.webhook_rejections_per_address"),
            "{err}"
        );
        let huge: LimitsConfig =
            toml::from_str("code_attempts_per_link = { burst = 5, every_ms = 999999999999 }\n")
                .unwrap();
        assert!(huge.check().is_err());
        assert!(toml::from_str::<LimitsConfig>("code_attempts = 1\n").is_err());
    }
}
