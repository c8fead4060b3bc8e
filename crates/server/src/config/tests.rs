//! Tests of the configuration: files, environment variables, ranges.
use super::*;

fn from(file: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let vars = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect::<Vec<_>>();
    Config::from_sources(Some((Path::new("ladder.toml"), file)), vars, |p| {
        Ok(format!("from {}\n", p.display()))
    })
}

#[test]
fn env_overrides_file_values_and_bad_values_are_named() {
    let c = from("listen = \"127.0.0.1:9000\"\n", &[]).unwrap();
    assert_eq!(c.listen.port(), 9000);
    let c = from(
        "listen = \"127.0.0.1:9000\"\n",
        &[("LADDER_LISTEN", "127.0.0.1:9100")],
    )
    .unwrap();
    assert_eq!(c.listen.port(), 9100);
    let err = from("", &[("LADDER_WORKERS", "many")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("LADDER_WORKERS") && err.contains("delivery.workers"),
        "{err}"
    );
}

#[test]
fn every_key_has_a_variable_and_secrets_come_from_files() {
    let c = from(
        "[delivery]\nworkers = 3\n",
        &[
            ("LADDER_DELIVERY__WORKERS", "7"),
            ("LADDER_PORTAL__LINK_TTL_S", "600"),
            ("LADDER_AUDIT__DEPLOYMENT", "ladder.example.com"),
            ("LADDER_METRICS_TOKEN_FILE", "/run/secrets/metrics"),
            ("LADDER_DEMO_TENANT", "false"),
            (
                "LADDER_CHANNELS__SANDBOX__FAIL__RCS",
                "{ mode = \"permanent\" }",
            ),
        ],
    )
    .unwrap();
    assert_eq!(c.delivery.workers, 7);
    assert_eq!(c.portal.link_ttl_s, 600);
    assert_eq!(c.audit.deployment, "ladder.example.com");
    assert_eq!(
        c.metrics_token.as_deref(),
        Some("from /run/secrets/metrics")
    );
    assert!(!c.demo_tenant);
    assert_eq!(c.channels.sandbox.fail.len(), 1);
    // A number-looking text for a text key stays text.
    let c = from("", &[("LADDER_METRICS_TOKEN", "12345")]).unwrap();
    assert_eq!(c.metrics_token.as_deref(), Some("12345"));
}

#[test]
fn an_unknown_variable_is_refused_and_a_secret_is_never_echoed() {
    let err = from("", &[("LADDER_DELIVERY__WORKRES", "2")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("LADDER_DELIVERY__WORKRES") && err.contains("workres"),
        "{err}"
    );
    let err = from("", &[("LADDER_LISTEN__PORT", "2")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("LADDER_LISTEN__PORT"), "{err}");
    let err = from("", &[("LADDER_DELIVERY__TIMEOUT_MS_FILE", "/s")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("LADDER_DELIVERY__TIMEOUT_MS_FILE") && !err.contains("from /s"),
        "{err}"
    );
    // Other readers' variables are not config.
    assert!(from("", &[("LADDER_LOG", "debug"), ("LADDER_TEST_X", "1")]).is_ok());
}

#[test]
fn the_keyring_kek_comes_from_one_place_and_must_be_a_key() {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD.encode([5u8; 32]);
    let c = from("", &[("LADDER_KEYRING_KEK", &key)]).unwrap();
    assert!(format!("{c:?}").contains("redacted") && !format!("{c:?}").contains(&key));
    assert!(c.keyring_sealer().unwrap().is_some());
    let c = from("", &[("LADDER_KEYRING_KEK", "short")]).unwrap();
    let err = c.keyring_sealer().err().unwrap().to_string();
    assert!(
        err.contains("base64 of 32 bytes") && !err.contains("short"),
        "{err}"
    );
    let c = from(
        "keyring_kek_file = \"/k\"\n",
        &[("LADDER_KEYRING_KEK", &key)],
    )
    .unwrap();
    assert!(c.keyring_sealer().is_err());
    assert!(from("", &[]).unwrap().keyring_sealer().unwrap().is_none());
}

#[test]
fn durations_out_of_range_are_named() {
    let c: Config = toml::from_str("[delivery]\nlease_ms = 99999999999999\n").unwrap();
    let err = c.check().unwrap_err().to_string();
    assert!(err.contains("delivery.lease_ms"), "{err}");
    let c: Config = toml::from_str("[portal]\nlink_ttl_s = 3153600000\n").unwrap();
    let err = c.check().unwrap_err().to_string();
    assert!(err.contains("portal.link_ttl_s"), "{err}");
    let c: Config = toml::from_str("[api]\nidempotency_window = \"31d\"\n").unwrap();
    let err = c.check().unwrap_err().to_string();
    assert!(err.contains("api.idempotency_window"), "{err}");
    let c: Config = toml::from_str("[api]\nidempotency_window = \"90m\"\n").unwrap();
    assert_eq!(c.api.idempotency_window.0, 5400);
    assert_eq!(Config::default().api.idempotency_window.0, 86_400);
    let err = toml::from_str::<Config>("[api]\nidempotency_window = \"soon\"\n").unwrap_err();
    assert!(err.to_string().contains("soon"), "{err}");
    let c = from("", &[("LADDER_API__IDEMPOTENCY_WINDOW", "2h")]).unwrap();
    assert_eq!(c.api.idempotency_window.0, 7200);
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
    let c = from("log_format = \"json\"\n", &[]).unwrap();
    assert_eq!(c.log_format, LogFormat::Json);
    let c = from("log_format = \"json\"\n", &[("LADDER_LOG_FORMAT", "text")]).unwrap();
    assert_eq!(c.log_format, LogFormat::Text);
    let err = from("", &[("LADDER_LOG_FORMAT", "xml")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("LADDER_LOG_FORMAT") && err.contains("xml"),
        "{err}"
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

#[test]
fn a_provider_account_can_come_from_variables_alone() {
    let c = from(
        "",
        &[
            ("LADDER_CHANNELS__SMS__ENDPOINT", "https://sms.example.com"),
            ("LADDER_CHANNELS__SMS__ACCOUNT", "AC123"),
            ("LADDER_CHANNELS__SMS__TOKEN_FILE", "/run/secrets/sms"),
            ("LADDER_CHANNELS__SMS__FROM", "+15550100"),
            ("LADDER_CHANNELS__SMS__TIMEOUT_MS", "2500"),
        ],
    )
    .unwrap();
    let sms = c.channels.sms.unwrap();
    assert_eq!(sms.account, "AC123");
    assert_eq!(sms.token, "from /run/secrets/sms");
    assert_eq!(sms.timeout_ms, 2500);
    // A section left incomplete names the variables that were given, and
    // shows no secret.
    let err = from(
        "",
        &[
            ("LADDER_CHANNELS__SMS__ACCOUNT", "AC123"),
            ("LADDER_CHANNELS__SMS__TOKEN", "hunter2"),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("LADDER_CHANNELS__SMS__ACCOUNT")
            && err.contains("LADDER_CHANNELS__SMS__TOKEN"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn kubernetes_service_links_do_not_stop_a_node() {
    let c = from(
        "",
        &[
            ("LADDER_SERVICE_HOST", "10.0.0.1"),
            ("LADDER_SERVICE_PORT", "7878"),
            ("LADDER_PORT", "tcp://10.0.0.1:7878"),
            ("LADDER_PORT_7878_TCP_ADDR", "10.0.0.1"),
        ],
    )
    .unwrap();
    assert_eq!(c.listen.port(), 7878);
}

#[test]
fn debug_output_shows_no_secret() {
    let c = from(
        "",
        &[
            (
                "LADDER_DATABASE_URL",
                "postgres://ladder:s3cret-pw@db:5432/ladder",
            ),
            ("LADDER_METRICS_TOKEN", "metrics-s3cret"),
        ],
    )
    .unwrap();
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("s3cret-pw") && !shown.contains("metrics-s3cret"),
        "{shown}"
    );
    assert!(
        shown.contains("db:5432") && shown.contains("<redacted>"),
        "{shown}"
    );
}

#[test]
fn delivery_batch_and_slots_have_variables_and_ranges() {
    let c = from(
        "",
        &[
            ("LADDER_DELIVERY__CLAIM_BATCH", "4"),
            ("LADDER_DELIVERY__CONCURRENCY", "3"),
        ],
    )
    .unwrap();
    assert_eq!((c.delivery.claim_batch, c.delivery.concurrency), (4, 3));
    c.check().unwrap();
    let d = Config::default();
    assert_eq!((d.delivery.claim_batch, d.delivery.concurrency), (16, 8));
    for (toml, key) in [
        ("[delivery]\nclaim_batch = 0\n", "delivery.claim_batch"),
        ("[delivery]\nclaim_batch = 257\n", "delivery.claim_batch"),
        ("[delivery]\nconcurrency = 0\n", "delivery.concurrency"),
        ("[delivery]\nconcurrency = 1025\n", "delivery.concurrency"),
    ] {
        let c: Config = toml::from_str(toml).unwrap();
        let err = c.check().unwrap_err().to_string();
        assert!(err.contains(key), "{toml}: {err}");
    }
}
