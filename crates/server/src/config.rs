//! Server configuration: defaults, then a TOML file, then `LADDER_*`
//! environment variables, then command-line flags — each overriding the
//! one before. With nothing set, ladder runs on the embedded default: a
//! SQLite database and keyring under `./ladder-data`, listening on
//! 127.0.0.1:7878, with sandbox channels.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ladder_channels::sandbox::Failures;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://…`; default `sqlite://{data_dir}/ladder.db`.
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    /// Default `{data_dir}/keyring.json`.
    pub keyring: Option<PathBuf>,
    /// The address recipients reach this node at, for links in notices;
    /// default `http://{listen}`.
    pub public_url: Option<String>,
    /// When set, `/metrics` answers only `Authorization: Bearer {token}`:
    /// class labels are tenant-defined names.
    pub metrics_token: Option<String>,
    /// Load a demo tenant from the example policy when the database has no
    /// tenant yet.
    pub demo_tenant: bool,
    /// How `ladder serve` writes its logs to stderr (`LADDER_LOG_FORMAT`).
    pub log_format: LogFormat,
    pub delivery: DeliveryConfig,
    pub handshake: HandshakeConfig,
    pub audit: AuditConfig,
    pub channels: ChannelsConfig,
    pub portal: crate::portal::PortalConfig,
    pub limits: crate::limits::LimitsConfig,
    pub console: crate::console::ConsoleConfig,
    pub events: EventsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            database_url: None,
            data_dir: PathBuf::from("ladder-data"),
            keyring: None,
            public_url: None,
            metrics_token: None,
            demo_tenant: true,
            log_format: LogFormat::Text,
            delivery: DeliveryConfig::default(),
            handshake: HandshakeConfig::default(),
            audit: AuditConfig::default(),
            channels: ChannelsConfig::default(),
            portal: crate::portal::PortalConfig::default(),
            limits: crate::limits::LimitsConfig::default(),
            console: crate::console::ConsoleConfig::default(),
            events: EventsConfig::default(),
        }
    }
}

/// The shape of log lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event, with its spans' fields (the
    /// request id among them); ANSI colour only when stderr is a terminal.
    Text,
    /// One JSON object per line, with the current span and the span list.
    Json,
}

impl LogFormat {
    fn parse(raw: &str) -> Option<LogFormat> {
        match raw {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Delivery workers per node; 0 accepts messages without sending them.
    pub workers: usize,
    /// Attempts on one route before a transient failure counts as a timeout.
    pub max_attempts: i64,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// How long one provider call may take before it counts as a timeout.
    pub timeout_ms: u64,
    /// How long a claimed item stays with its worker before another may take it.
    pub lease_ms: i64,
    /// How often idle workers look for due work.
    pub poll_ms: u64,
    /// How often a held message is decided again.
    pub hold_recheck_s: i64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            workers: 2,
            max_attempts: 5,
            backoff_base_ms: 500,
            backoff_max_ms: 60_000,
            timeout_ms: 10_000,
            lease_ms: 60_000,
            poll_ms: 200,
            hold_recheck_s: 60,
        }
    }
}

/// How many due events an event worker claims at once.
pub const EVENT_BATCH: u64 = 4;

/// Outbound event webhooks to tenants' own endpoints (`[events]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Event workers per node; 0 records events without sending them.
    pub workers: usize,
    /// How long one POST to an endpoint may take.
    pub timeout_ms: u64,
    /// Attempts per event before it is marked failed.
    pub max_attempts: i64,
    /// The first retry's delay; each next one doubles, up to `backoff_max_ms`.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// How often idle workers look for due events.
    pub poll_ms: u64,
    /// How long a claimed event stays with its worker; above the timeout.
    pub lease_ms: i64,
    /// How long the previous secret still signs after a rotation.
    pub secret_grace_s: u64,
    /// Accept `http://` endpoints on a loopback address (tests, local demos);
    /// otherwise only `https://`.
    pub allow_http_loopback: bool,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            workers: 1,
            timeout_ms: 10_000,
            max_attempts: 12,
            backoff_base_ms: 10_000,
            backoff_max_ms: 3_600_000,
            poll_ms: 500,
            lease_ms: 60_000,
            secret_grace_s: 86_400,
            allow_http_loopback: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HandshakeConfig {
    /// Seconds a challenge stays valid.
    pub challenge_ttl_s: i64,
}

impl Default for HandshakeConfig {
    fn default() -> Self {
        HandshakeConfig {
            challenge_ttl_s: 120,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Names this deployment in every tenant log's origin,
    /// `{deployment}/audit/{tenant}`: a host name you own.
    pub deployment: String,
    /// Sign a checkpoint once this many entries are unsigned…
    pub checkpoint_every: i64,
    /// …or this many seconds passed with unsigned entries.
    pub checkpoint_interval_s: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            deployment: "ladder.localhost".into(),
            checkpoint_every: 256,
            checkpoint_interval_s: 60,
        }
    }
}

/// `[channels]`: the sandbox (the default for every channel), the
/// deployment's provider accounts, and tenants' own accounts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelsConfig {
    pub sandbox: SandboxConfig,
    pub rcs: Option<ladder_channels::rcs::RcsConfig>,
    pub sms: Option<ladder_channels::sms::SmsConfig>,
    pub email: Option<ladder_channels::email::EmailConfig>,
    pub push: Option<ladder_channels::push::PushConfig>,
    /// `[channels.tenants.<tenant name>.rcs]` and so on.
    pub tenants: std::collections::BTreeMap<String, ladder_channels::ProviderSettings>,
    /// Seconds an RCS message may stay undelivered before it is revoked and
    /// the message falls back down its ladder.
    pub rcs_delivery_timeout_s: Option<u64>,
}

impl ChannelsConfig {
    pub fn deployment(&self) -> ladder_channels::ProviderSettings {
        ladder_channels::ProviderSettings {
            rcs: self.rcs.clone(),
            sms: self.sms.clone(),
            email: self.email.clone(),
            push: self.push.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// Per channel, how the sandbox fails: `{ mode = "permanent" }`,
    /// `{ mode = "transient", times = 2 }`, `{ mode = "hang", seconds = 30 }`.
    pub fail: Failures,
}

/// A configuration that could not be used; names the file, variable or
/// value at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file `{path}`: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config `{key}` {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error("environment variable `{name}`: `{value}` is not {expected}")]
    Env {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl Config {
    /// Defaults, overlaid by `file` (if any) and then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?
            }
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    /// Overlays `LADDER_LISTEN`, `LADDER_DATABASE_URL`, `LADDER_DATA_DIR`,
    /// `LADDER_KEYRING`, `LADDER_METRICS_TOKEN`, `LADDER_PUBLIC_URL`,
    /// `LADDER_WORKERS` and `LADDER_LOG_FORMAT`.
    pub fn apply_env(
        &mut self,
        get: impl Fn(&'static str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        if let Some(v) = get("LADDER_LISTEN") {
            self.listen = v.parse().map_err(|_| ConfigError::Env {
                name: "LADDER_LISTEN",
                value: v.clone(),
                expected: "an address like 127.0.0.1:7878",
            })?;
        }
        if let Some(v) = get("LADDER_DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = get("LADDER_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("LADDER_KEYRING") {
            self.keyring = Some(PathBuf::from(v));
        }
        if let Some(v) = get("LADDER_METRICS_TOKEN") {
            self.metrics_token = Some(v);
        }
        if let Some(v) = get("LADDER_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = get("LADDER_WORKERS") {
            self.delivery.workers = v.parse().map_err(|_| ConfigError::Env {
                name: "LADDER_WORKERS",
                value: v.clone(),
                expected: "a number of workers",
            })?;
        }
        if let Some(v) = get("LADDER_LOG_FORMAT") {
            self.log_format = LogFormat::parse(&v).ok_or_else(|| ConfigError::Env {
                name: "LADDER_LOG_FORMAT",
                value: v.clone(),
                expected: "`text` or `json`",
            })?;
        }
        Ok(())
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("ladder.db").display()))
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// Whether people reach this node over HTTPS: what decides whether its
    /// cookies (portal and console) may be `Secure` and `__Host-`.
    pub fn public_url_is_https(&self) -> bool {
        self.public_url()
            .to_ascii_lowercase()
            .starts_with("https://")
    }

    /// Refuses settings that cannot work together, and durations and counts
    /// outside what they can sensibly mean.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.portal.check()?;
        self.check_ranges()?;
        self.limits.check()?;
        // A claimed item may make two provider calls; its lease must outlast
        // both, or another worker takes it over mid-delivery.
        let needed = i64::try_from(self.delivery.timeout_ms.saturating_mul(3)).unwrap_or(i64::MAX);
        if self.delivery.lease_ms <= needed {
            return Err(ConfigError::Invalid {
                key: "delivery.lease_ms",
                reason: format!(
                    "must exceed three provider timeouts ({needed} ms with delivery.timeout_ms = {})",
                    self.delivery.timeout_ms
                ),
            });
        }
        // An event worker sends a claimed batch one by one within the lease.
        let needed = i64::try_from(self.events.timeout_ms.saturating_mul(EVENT_BATCH + 1))
            .unwrap_or(i64::MAX);
        if self.events.lease_ms <= needed {
            return Err(ConfigError::Invalid {
                key: "events.lease_ms",
                reason: format!(
                    "must exceed {} endpoint timeouts ({needed} ms with events.timeout_ms = {})",
                    EVENT_BATCH + 1,
                    self.events.timeout_ms
                ),
            });
        }
        Ok(())
    }

    /// Every duration and count in range: a zero poll interval spins, a
    /// lease of years strands work behind a crashed node, a link valid for
    /// a century is a link that never expires.
    fn check_ranges(&self) -> Result<(), ConfigError> {
        const DAY_S: u64 = 86_400;
        const HOUR_MS: u64 = 3_600_000;
        let d = &self.delivery;
        let p = &self.portal;
        let as_u64 = |v: i64| u64::try_from(v).unwrap_or(0);
        let e = &self.events;
        let ranges: [(&'static str, u64, u64, u64); 27] = [
            ("events.workers", e.workers as u64, 0, 64),
            ("events.timeout_ms", e.timeout_ms, 100, 60_000),
            ("events.max_attempts", as_u64(e.max_attempts), 1, 50),
            ("events.backoff_base_ms", e.backoff_base_ms, 1, HOUR_MS),
            ("events.backoff_max_ms", e.backoff_max_ms, 1, 24 * HOUR_MS),
            ("events.poll_ms", e.poll_ms, 1, 60_000),
            ("events.lease_ms", as_u64(e.lease_ms), 1, HOUR_MS),
            ("events.secret_grace_s", e.secret_grace_s, 0, 30 * DAY_S),
            ("delivery.workers", d.workers as u64, 0, 256),
            ("delivery.max_attempts", as_u64(d.max_attempts), 1, 100),
            ("delivery.backoff_base_ms", d.backoff_base_ms, 1, HOUR_MS),
            ("delivery.backoff_max_ms", d.backoff_max_ms, 1, 24 * HOUR_MS),
            ("delivery.timeout_ms", d.timeout_ms, 1, HOUR_MS),
            ("delivery.lease_ms", as_u64(d.lease_ms), 1, 24 * HOUR_MS),
            ("delivery.poll_ms", d.poll_ms, 1, 60_000),
            (
                "delivery.hold_recheck_s",
                as_u64(d.hold_recheck_s),
                1,
                DAY_S,
            ),
            (
                "handshake.challenge_ttl_s",
                as_u64(self.handshake.challenge_ttl_s),
                1,
                DAY_S,
            ),
            (
                "audit.checkpoint_every",
                as_u64(self.audit.checkpoint_every),
                1,
                1_000_000,
            ),
            (
                "audit.checkpoint_interval_s",
                self.audit.checkpoint_interval_s,
                1,
                DAY_S,
            ),
            ("portal.link_ttl_s", p.link_ttl_s, 1, 90 * DAY_S),
            ("portal.lockout_s", p.lockout_s, 1, 30 * DAY_S),
            ("portal.idle_timeout_s", p.idle_timeout_s, 1, DAY_S),
            ("portal.session_max_s", p.session_max_s, 1, 7 * DAY_S),
            ("portal.code_ttl_s", p.code_ttl_s, 1, DAY_S),
            ("portal.code_resend_s", p.code_resend_s, 0, DAY_S),
            (
                "console.idle_timeout_s",
                self.console.idle_timeout_s,
                60,
                DAY_S,
            ),
            (
                "console.session_max_s",
                self.console.session_max_s,
                60,
                7 * DAY_S,
            ),
        ];
        for (key, value, min, max) in ranges {
            if value < min || value > max {
                return Err(ConfigError::Invalid {
                    key,
                    reason: format!("is {value}; it must be between {min} and {max}"),
                });
            }
        }
        if let Some(t) = self.channels.rcs_delivery_timeout_s
            && !(1..=7 * DAY_S).contains(&t)
        {
            return Err(ConfigError::Invalid {
                key: "channels.rcs_delivery_timeout_s",
                reason: format!("is {t}; it must be between 1 and {}", 7 * DAY_S),
            });
        }
        Ok(())
    }

    pub fn keyring_path(&self) -> PathBuf {
        self.keyring
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keyring.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_values_and_bad_values_are_named() {
        let mut c: Config = toml::from_str("listen = \"127.0.0.1:9000\"\n").unwrap();
        assert_eq!(c.listen.port(), 9000);
        c.apply_env(|n| (n == "LADDER_LISTEN").then(|| "127.0.0.1:9100".to_string()))
            .unwrap();
        assert_eq!(c.listen.port(), 9100);
        let err = c
            .apply_env(|n| (n == "LADDER_WORKERS").then(|| "many".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("LADDER_WORKERS"), "{err}");
    }

    #[test]
    fn durations_out_of_range_are_named() {
        let c: Config = toml::from_str("[delivery]\nlease_ms = 99999999999999\n").unwrap();
        let err = c.check().unwrap_err().to_string();
        assert!(err.contains("delivery.lease_ms"), "{err}");
        let c: Config = toml::from_str("[portal]\nlink_ttl_s = 3153600000\n").unwrap();
        let err = c.check().unwrap_err().to_string();
        assert!(err.contains("portal.link_ttl_s"), "{err}");
        assert!(Config::default().check().is_ok());
    }

    #[test]
    fn event_settings_are_checked() {
        let c: Config = toml::from_str("[events]\nmax_attempts = 0\n").unwrap();
        let err = c.check().unwrap_err().to_string();
        assert!(err.contains("events.max_attempts"), "{err}");
        // A claimed batch must fit in the lease.
        let c: Config = toml::from_str("[events]\ntimeout_ms = 20000\nlease_ms = 60000\n").unwrap();
        let err = c.check().unwrap_err().to_string();
        assert!(err.contains("events.lease_ms"), "{err}");
        let c: Config =
            toml::from_str("[events]\nallow_http_loopback = true\nbackoff_base_ms = 50\n").unwrap();
        assert!(c.check().is_ok());
        assert!(!Config::default().events.allow_http_loopback);
    }

    #[test]
    fn log_format_comes_from_the_file_and_the_environment_overrides_it() {
        assert_eq!(Config::default().log_format, LogFormat::Text);
        let mut c: Config = toml::from_str("log_format = \"json\"\n").unwrap();
        assert_eq!(c.log_format, LogFormat::Json);
        c.apply_env(|n| (n == "LADDER_LOG_FORMAT").then(|| "text".to_string()))
            .unwrap();
        assert_eq!(c.log_format, LogFormat::Text);
        let err = c
            .apply_env(|n| (n == "LADDER_LOG_FORMAT").then(|| "xml".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("LADDER_LOG_FORMAT"), "{err}");
        assert_eq!(
            c.log_format,
            LogFormat::Text,
            "a refused value changes nothing"
        );
        let err = toml::from_str::<Config>("log_format = \"yaml\"\n").unwrap_err();
        assert!(err.to_string().contains("yaml"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<Config>("lisen = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn sandbox_failures_parse_per_channel() {
        let c: Config = toml::from_str(
            "[channels.sandbox.fail]\nrcs = { mode = \"permanent\" }\nsms = { mode = \"transient\", times = 2 }\n",
        )
        .unwrap();
        assert_eq!(c.channels.sandbox.fail.len(), 2);
    }
}
