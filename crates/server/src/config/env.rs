//! Every configuration key from the environment, secrets from files.
//!
//! Why: containers and orchestrators configure through environment
//! variables and mount secrets as files; a provider's auth token should not
//! have to sit in a TOML file baked into an image.
//!
//! The mapping is mechanical, so it never lags behind the config: the key
//! path in lower case, sections joined by a double underscore, behind
//! `LADDER_`. `delivery.workers` is `LADDER_DELIVERY__WORKERS`,
//! `channels.sms.token` is `LADDER_CHANNELS__SMS__TOKEN`. A variable
//! ending in `_FILE` names a file whose content (one final line break
//! dropped) is the value: `LADDER_CHANNELS__SMS__TOKEN_FILE`. A section
//! whose keys only make sense together (a provider account) is read once
//! all its variables are in.
//! Values are read as the key needs them: text as text, `8` as a number
//! for a number, `{ mode = "permanent" }` as a TOML inline table.
//!
//! A `LADDER_` variable that names no key is refused, with the variable's
//! name, rather than silently ignored: a misspelt secret must not leave a
//! node running on its default. Variables read by other parts of ladder
//! are listed in [`NOT_CONFIG`].

use std::path::PathBuf;

use super::ConfigError;

/// The prefix of every configuration variable.
const PREFIX: &str = "LADDER_";

/// Variables with other readers: the command line (`LADDER_CONFIG`,
/// `LADDER_API_KEY`), the log filter (`LADDER_LOG`), and the test and
/// benchmark harnesses.
const NOT_CONFIG: [&str; 3] = ["LADDER_CONFIG", "LADDER_LOG", "LADDER_API_KEY"];
const NOT_CONFIG_PREFIXES: [&str; 3] = ["LADDER_TEST_", "LADDER_BENCH_", "LADDER_HOSTILE_"];

/// Kubernetes gives every pod `{SERVICE}_SERVICE_HOST`, `…_SERVICE_PORT…`,
/// `…_PORT` and `…_PORT_{n}_{PROTO}…` for each Service in its namespace
/// (a Service named `ladder` makes `LADDER_SERVICE_HOST`, `LADDER_PORT`):
/// those are not config and must not stop a node. Service names hold no
/// `__`, so a sectioned key such as `LADDER_CHANNELS__EMAIL__PORT` is
/// never taken for one.
fn is_service_link(name: &str) -> bool {
    if name.contains("__") {
        return false;
    }
    if name.ends_with("_SERVICE_HOST") || name.ends_with("_PORT") || name.contains("_SERVICE_PORT")
    {
        return true;
    }
    // `…_PORT_7878_TCP`, `…_PORT_7878_TCP_ADDR`, `_PORT`, `_PROTO`.
    name.split("_PORT_").skip(1).any(|rest| {
        let mut parts = rest.split('_');
        let number = parts
            .next()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        number
            && parts
                .next()
                .is_some_and(|p| matches!(p, "TCP" | "UDP" | "SCTP"))
    })
}

/// Short names kept from before every key had its variable.
const ALIASES: [(&str, &str); 1] = [("LADDER_WORKERS", "delivery.workers")];

/// One variable that sets one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Setting {
    /// The variable, as the operator wrote it (for errors).
    pub(super) variable: String,
    /// The key's path, e.g. `["channels", "sms", "token"]`.
    pub(super) path: Vec<String>,
    /// The value, read from the file for `_FILE` variables.
    pub(super) value: String,
    /// Whether the value must never appear in an error (read from a file,
    /// or a key that names a secret).
    pub(super) secret: bool,
}

impl Setting {
    /// The key as the TOML file spells it.
    pub(super) fn key(&self) -> String {
        self.path.join(".")
    }
}

/// The settings among `vars`, sorted by variable name so that the order of
/// the environment never changes the outcome. `read_file` reads a
/// `_FILE` variable's file.
pub(super) fn settings(
    vars: impl IntoIterator<Item = (String, String)>,
    read_file: impl Fn(&PathBuf) -> std::io::Result<String>,
) -> Result<Vec<Setting>, ConfigError> {
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(name, _)| is_config_variable(name))
        .collect();
    vars.sort();
    let mut out: Vec<Setting> = Vec::with_capacity(vars.len());
    for (name, raw) in vars {
        let (key_name, from_file) = match name.strip_suffix("_FILE") {
            Some(stem) => (stem.to_owned(), true),
            None => (name.clone(), false),
        };
        let path =
            key_path(&key_name).ok_or_else(|| ConfigError::EnvName { name: name.clone() })?;
        let value = if from_file {
            let file = PathBuf::from(&raw);
            let mut text = read_file(&file).map_err(|source| ConfigError::EnvFile {
                name: name.clone(),
                path: file,
                source,
            })?;
            if text.ends_with('\n') {
                text.pop();
                if text.ends_with('\r') {
                    text.pop();
                }
            }
            text
        } else {
            raw
        };
        if let Some(twin) = out.iter().find(|s| s.path == path) {
            return Err(ConfigError::EnvTwice {
                first: twin.variable.clone(),
                second: name,
            });
        }
        let secret = from_file || names_a_secret(&key_name);
        out.push(Setting {
            variable: name,
            path,
            value,
            secret,
        });
    }
    Ok(out)
}

fn is_config_variable(name: &str) -> bool {
    name.starts_with(PREFIX)
        && !NOT_CONFIG.contains(&name)
        && !NOT_CONFIG_PREFIXES.iter().any(|p| name.starts_with(p))
        && !is_service_link(name)
}

/// `LADDER_CHANNELS__SMS__TOKEN` → `["channels", "sms", "token"]`;
/// `None` for a name no key could have (empty segments, odd characters).
fn key_path(name: &str) -> Option<Vec<String>> {
    if let Some((_, key)) = ALIASES.iter().find(|(alias, _)| *alias == name) {
        return Some(key.split('.').map(str::to_owned).collect());
    }
    let rest = name.strip_prefix(PREFIX)?;
    let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    let valid = path.iter().all(|segment| {
        !segment.is_empty()
            && !segment.starts_with('_')
            && !segment.ends_with('_')
            && segment
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    });
    valid.then_some(path)
}

/// Keys whose values are credentials: their values never appear in errors.
fn names_a_secret(name: &str) -> bool {
    ["TOKEN", "SECRET", "PASSWORD", "KEY", "KEK"]
        .iter()
        .any(|word| name.contains(word))
}

/// Put `setting` into `table` as `value`, creating sections on the way.
/// Fails with the name of the section that is not a table.
pub(super) fn insert(
    table: &mut toml::Table,
    setting: &Setting,
    value: toml::Value,
) -> Result<(), ConfigError> {
    let Some((last, sections)) = setting.path.split_last() else {
        return Err(ConfigError::EnvName {
            name: setting.variable.clone(),
        });
    };
    let mut here = table;
    for section in sections {
        let entry = here
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        here = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(ConfigError::EnvName {
                    name: setting.variable.clone(),
                });
            }
        };
    }
    here.insert(last.clone(), value);
    Ok(())
}

/// Every way of choosing one value from each list (the first of each
/// first), at most `limit` of them.
pub(super) fn combinations(choices: &[Vec<toml::Value>], limit: usize) -> Vec<Vec<toml::Value>> {
    let mut out: Vec<Vec<toml::Value>> = vec![Vec::new()];
    for options in choices {
        let mut next = Vec::new();
        for prefix in &out {
            for option in options {
                if next.len() >= limit {
                    break;
                }
                let mut picked = prefix.clone();
                picked.push(option.clone());
                next.push(picked);
            }
        }
        out = next;
    }
    out
}

/// The ways `setting`'s text can be read, in the order to try them: as
/// text, then as a TOML value (number, boolean, array, inline table).
pub(super) fn candidates(setting: &Setting) -> Vec<toml::Value> {
    let mut out = vec![toml::Value::String(setting.value.clone())];
    if let Ok(mut parsed) = toml::from_str::<toml::Table>(&format!("v = {}", setting.value))
        && let Some(value) = parsed.remove("v")
    {
        out.push(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn no_files(_: &PathBuf) -> std::io::Result<String> {
        Err(std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    #[test]
    fn names_map_to_key_paths_and_other_readers_are_left_alone() {
        let got = settings(
            vars(&[
                ("LADDER_DELIVERY__WORKERS", "4"),
                ("LADDER_CHANNELS__SMS__TOKEN", "t"),
                ("LADDER_WORKERS_X", "1"),
                ("LADDER_LOG", "debug"),
                ("LADDER_TEST_POSTGRES_URL", "x"),
                ("PATH", "/bin"),
            ]),
            no_files,
        )
        .unwrap();
        let keys: Vec<String> = got.iter().map(Setting::key).collect();
        assert_eq!(
            keys,
            ["channels.sms.token", "delivery.workers", "workers_x"]
        );
        assert!(
            got.iter()
                .find(|s| s.key() == "channels.sms.token")
                .unwrap()
                .secret
        );
        assert!(
            !got.iter()
                .find(|s| s.key() == "delivery.workers")
                .unwrap()
                .secret
        );
    }

    #[test]
    fn file_variables_read_the_file_and_drop_one_line_break() {
        let got = settings(
            vars(&[("LADDER_METRICS_TOKEN_FILE", "/run/secrets/m")]),
            |p| {
                assert_eq!(p, &PathBuf::from("/run/secrets/m"));
                Ok("s3cret\n".to_owned())
            },
        )
        .unwrap();
        assert_eq!(got[0].key(), "metrics_token");
        assert_eq!(got[0].value, "s3cret");
        assert!(got[0].secret);
        let err = settings(vars(&[("LADDER_METRICS_TOKEN_FILE", "/nope")]), no_files)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("LADDER_METRICS_TOKEN_FILE") && err.contains("/nope"),
            "{err}"
        );
    }

    #[test]
    fn a_key_set_twice_and_malformed_names_are_refused() {
        let err = settings(
            vars(&[("LADDER_WORKERS", "1"), ("LADDER_DELIVERY__WORKERS", "2")]),
            no_files,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("LADDER_WORKERS") && err.contains("LADDER_DELIVERY__WORKERS"),
            "{err}"
        );
        for bad in [
            "LADDER_",
            "LADDER_DELIVERY____WORKERS",
            "LADDER_A-B",
            "LADDER_X___Y",
        ] {
            let err = settings(vars(&[(bad, "1")]), no_files)
                .unwrap_err()
                .to_string();
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn kubernetes_service_links_are_not_config() {
        for link in [
            "LADDER_SERVICE_HOST",
            "LADDER_SERVICE_PORT",
            "LADDER_SERVICE_PORT_HTTP",
            "LADDER_PORT",
            "LADDER_PORT_7878_TCP",
            "LADDER_PORT_7878_TCP_ADDR",
            "LADDER_POSTGRES_SERVICE_HOST",
            "LADDER_POSTGRES_PORT_5432_TCP_PROTO",
        ] {
            assert!(!is_config_variable(link), "{link}");
        }
        for key in [
            "LADDER_LISTEN",
            "LADDER_DELIVERY__WORKERS",
            "LADDER_CHANNELS__EMAIL__PORT",
            "LADDER_CHANNELS__TENANTS__X__SMS__PORT_7_TCP",
        ] {
            assert!(is_config_variable(key), "{key}");
        }
    }

    #[test]
    fn combinations_are_bounded_and_start_with_the_first_choices() {
        let two = vec![toml::Value::Integer(1), toml::Value::Integer(2)];
        let all = combinations(&[two.clone(), two.clone(), two.clone()], 256);
        assert_eq!(all.len(), 8);
        assert_eq!(all[0], vec![toml::Value::Integer(1); 3]);
        assert_eq!(combinations(&vec![two; 12], 256).len(), 256);
    }

    #[test]
    fn values_are_offered_as_text_first_then_as_toml() {
        let s = |v: &str| Setting {
            variable: "LADDER_X".into(),
            path: vec!["x".into()],
            value: v.into(),
            secret: false,
        };
        assert_eq!(candidates(&s("8")).len(), 2);
        assert_eq!(candidates(&s("8"))[1], toml::Value::Integer(8));
        assert_eq!(candidates(&s("hello world")).len(), 1);
        assert!(candidates(&s("{ mode = \"permanent\" }"))[1].is_table());
    }
}
