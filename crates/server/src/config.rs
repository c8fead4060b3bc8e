//! Server configuration: defaults, then a TOML file, then `LADDER_*`
//! environment variables (every key, secrets also from files: [`env`]),
//! then command-line flags — each overriding the one before. With nothing
//! set, ladder runs on the embedded default: a SQLite database and keyring
//! under `./ladder-data`, listening on 127.0.0.1:7878, with sandbox
//! channels.

mod env;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ladder_channels::sandbox::Failures;
use serde::Deserialize;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://…`; default `sqlite://{data_dir}/ladder.db`.
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    /// Default `{data_dir}/keyring.json`.
    pub keyring: Option<PathBuf>,
    /// The key-encryption key that seals the keyring file, as base64 of 32
    /// bytes — best given as `LADDER_KEYRING_KEK_FILE` (a mounted secret)
    /// so it never sits in the data directory or the config file.
    pub keyring_kek: Option<SecretText>,
    /// A file holding [`Config::keyring_kek`] (for the TOML file).
    pub keyring_kek_file: Option<PathBuf>,
    /// Seal a plain keyring file found where a sealed one belongs, once
    /// (moving an existing deployment to a key-encryption key). Without
    /// it such a file is refused: it may not be this deployment's.
    pub keyring_seal_plain: bool,
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
    pub api: ApiConfig,
    pub delivery: DeliveryConfig,
    pub handshake: HandshakeConfig,
    pub audit: AuditConfig,
    pub channels: ChannelsConfig,
    pub portal: crate::portal::PortalConfig,
    pub limits: crate::limits::LimitsConfig,
    pub console: crate::console::ConsoleConfig,
    pub events: EventsConfig,
}

/// Secrets (the database URL's password, the metrics token, the KEK) are
/// never shown: a `{:?}` of the state in a log line must not leak them.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |set: bool| if set { Some("<redacted>") } else { None };
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field(
                "database_url",
                &self.database_url.as_deref().map(ladder_store::db::redact),
            )
            .field("data_dir", &self.data_dir)
            .field("keyring", &self.keyring)
            .field("keyring_kek", &redacted(self.keyring_kek.is_some()))
            .field("keyring_kek_file", &self.keyring_kek_file)
            .field("keyring_seal_plain", &self.keyring_seal_plain)
            .field("public_url", &self.public_url)
            .field("metrics_token", &redacted(self.metrics_token.is_some()))
            .field("demo_tenant", &self.demo_tenant)
            .field("log_format", &self.log_format)
            .field("api", &self.api)
            .field("delivery", &self.delivery)
            .field("handshake", &self.handshake)
            .field("audit", &self.audit)
            .field("channels", &self.channels)
            .field("portal", &self.portal)
            .field("limits", &self.limits)
            .field("console", &self.console)
            .field("events", &self.events)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            database_url: None,
            data_dir: PathBuf::from("ladder-data"),
            keyring: None,
            keyring_kek: None,
            keyring_kek_file: None,
            keyring_seal_plain: false,
            public_url: None,
            metrics_token: None,
            demo_tenant: true,
            log_format: LogFormat::Text,
            api: ApiConfig::default(),
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

/// A configured secret: read like text, never shown by `Debug`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretText(String);

impl SecretText {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(<redacted>)")
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

/// `[api]`: how the HTTP API treats its callers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// How long an `Idempotency-Key` of `POST /v1/messages` is remembered,
    /// written like a policy's durations (`24h`, `90m`, `7d`): within it a
    /// retry gets the stored answer, after it the same key sends a new
    /// message.
    #[serde(deserialize_with = "duration_text")]
    pub idempotency_window: ladder_core::Duration,
    /// On SQLite, the most accepted messages made durable by one commit
    /// (`ladder_store::commit`): requests that arrive while a commit syncs
    /// are written together and each answered once its batch is on disk.
    /// 1 gives every message its own commit. PostgreSQL commits each
    /// message on its own connection and ignores it.
    pub group_commit_max: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            idempotency_window: ladder_core::Duration::hours(24),
            group_commit_max: 256,
        }
    }
}

/// A duration written as text (`24h`), parsed as policies parse theirs.
fn duration_text<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<ladder_core::Duration, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
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
    /// How long a claimed item stays with its worker before another may
    /// take it. A worker renews the leases of the items it holds every
    /// third of this while they run (or wait for a provider slot).
    pub lease_ms: i64,
    /// The safety net: how often idle workers look for due work without
    /// being woken. New work due now wakes a worker at once (in-process,
    /// and on PostgreSQL by `NOTIFY` from any node); the poll finds work
    /// whose time has come (retries, re-checks, delivery deadlines), work
    /// written by another process, and anything a lost notification did
    /// not announce.
    pub poll_ms: u64,
    /// Most items one worker holds at once: it claims up to this many in
    /// one statement, runs them concurrently (items of one message one
    /// after another), and claims more as they finish.
    pub claim_batch: usize,
    /// Most provider calls this node's delivery work makes at once on one
    /// channel (RCS, SMS, e-mail, push, in-app each have their own); the
    /// rest of the claimed items wait their turn.
    pub concurrency: usize,
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
            claim_batch: 16,
            concurrency: 8,
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
    /// otherwise only `https://`. Loopback addresses are allowed with it.
    pub allow_http_loopback: bool,
    /// Let endpoints resolve to private, loopback or link-local addresses
    /// (receivers on the deployment's own network); by default only public
    /// addresses, checked at every connection.
    pub allow_private_networks: bool,
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
            allow_private_networks: false,
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
    #[error(
        "environment variable `{name}` names no config key (sections are joined by `__`, e.g. `LADDER_DELIVERY__WORKERS`)"
    )]
    EnvName { name: String },
    #[error("environment variable `{name}`: cannot read `{}`: {source}", path.display())]
    EnvFile {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("environment variables `{first}` and `{second}` set the same key; keep one")]
    EnvTwice { first: String, second: String },
    #[error("environment variable `{name}` holds bytes that are not UTF-8")]
    EnvNotUnicode { name: String },
    #[error("environment variable {name} (config {key}): {reason}")]
    EnvValue {
        name: String,
        key: String,
        reason: String,
    },
    #[error("cannot read the keyring's key-encryption key: {0}")]
    Kek(String),
}

impl Config {
    /// Defaults, overlaid by `file` (if any) and then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let text = match file {
            Some(path) => {
                Some(
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                        path: path.to_path_buf(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let mut vars = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Ok(name) = name.into_string() else {
                continue;
            };
            match value.into_string() {
                Ok(value) => vars.push((name, value)),
                Err(_) if name.starts_with("LADDER_") => {
                    return Err(ConfigError::EnvNotUnicode { name });
                }
                Err(_) => {}
            }
        }
        let file = file.zip(text.as_deref());
        Config::from_sources(file, vars, |path| std::fs::read_to_string(path))
    }

    /// Defaults, overlaid by the TOML text `file` (its path for errors),
    /// then by the `LADDER_*` variables among `vars` (see [`env`]);
    /// `read_file` reads the files `_FILE` variables name.
    pub fn from_sources(
        file: Option<(&Path, &str)>,
        vars: impl IntoIterator<Item = (String, String)>,
        read_file: impl Fn(&PathBuf) -> std::io::Result<String>,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some((path, text)) => {
                let parse_error = |e: toml::de::Error| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                };
                // Typed first, so a mistake in the file is reported with
                // its line and column.
                toml::from_str::<Config>(text).map_err(parse_error)?;
                toml::from_str::<toml::Table>(text).map_err(parse_error)?
            }
            None => toml::Table::new(),
        };
        let settings = env::settings(vars, read_file)?;
        // Each variable on its own first: a value that fits its key alone
        // is read the way that fits (text, or a TOML number, boolean,
        // table). A variable that fits nothing alone may be one part of a
        // section that needs several (`channels.sms` needs its endpoint,
        // account, token and sender together): it waits for the others.
        let mut waiting: Vec<&env::Setting> = Vec::new();
        for setting in &settings {
            let mut fitted = false;
            for value in env::candidates(setting) {
                let mut next = table.clone();
                env::insert(&mut next, setting, value)?;
                if toml::Value::Table(next.clone())
                    .try_into::<Config>()
                    .is_ok()
                {
                    table = next;
                    fitted = true;
                    break;
                }
            }
            if !fitted {
                waiting.push(setting);
            }
        }
        if waiting.is_empty() {
            return toml::Value::Table(table).try_into::<Config>().map_err(|e| {
                ConfigError::Invalid {
                    key: "environment",
                    reason: e.message().trim().to_owned(),
                }
            });
        }
        // The waiting ones together: every way of reading them (text or
        // TOML each), few as they are.
        let choices: Vec<Vec<toml::Value>> = waiting.iter().map(|s| env::candidates(s)).collect();
        let mut refusal = None;
        for pick in env::combinations(&choices, 256) {
            let mut next = table.clone();
            for (setting, value) in waiting.iter().zip(pick) {
                env::insert(&mut next, setting, value)?;
            }
            match toml::Value::Table(next).try_into::<Config>() {
                Ok(config) => return Ok(config),
                Err(e) => {
                    refusal.get_or_insert(e);
                }
            }
        }
        let names: Vec<String> = waiting
            .iter()
            .map(|s| format!("`{}`", s.variable))
            .collect();
        let keys: Vec<String> = waiting.iter().map(|s| format!("`{}`", s.key())).collect();
        let reason = match refusal {
            Some(e) if !waiting.iter().any(|s| s.secret) => e.message().trim().to_owned(),
            _ => {
                "not valid values for these keys (a value is a secret and is not shown)".to_owned()
            }
        };
        Err(ConfigError::EnvValue {
            name: names.join(", "),
            key: keys.join(", "),
            reason,
        })
    }

    /// What seals the keyring file: the key-encryption key from
    /// `keyring_kek` or the file `keyring_kek_file` names (one of them),
    /// or `None` for a plain keyring file.
    pub fn keyring_sealer(
        &self,
    ) -> Result<Option<std::sync::Arc<dyn ladder_store::keyring::KeyringSealer>>, ConfigError> {
        use ladder_store::keyring::LocalKek;
        let text = match (&self.keyring_kek, &self.keyring_kek_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    key: "keyring_kek",
                    reason: "and `keyring_kek_file` are both set; keep one".to_owned(),
                });
            }
            (Some(kek), None) => zeroize::Zeroizing::new(kek.expose().to_owned()),
            (None, Some(path)) => {
                zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::Kek(format!("cannot read `{}`: {e}", path.display()))
                })?)
            }
            (None, None) => return Ok(None),
        };
        let kek = LocalKek::from_base64(&text).map_err(|e| ConfigError::Kek(e.to_string()))?;
        Ok(Some(std::sync::Arc::new(kek)))
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
        let ranges: [(&'static str, u64, u64, u64); 31] = [
            (
                "api.idempotency_window",
                self.api.idempotency_window.0,
                1,
                30 * DAY_S,
            ),
            (
                "api.group_commit_max",
                self.api.group_commit_max as u64,
                1,
                4096,
            ),
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
            ("delivery.claim_batch", d.claim_batch as u64, 1, 256),
            ("delivery.concurrency", d.concurrency as u64, 1, 1024),
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
mod tests;
