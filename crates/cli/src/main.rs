//! `ladder`: the command-line face of ladder. Thin by design: it reads
//! files, calls `ladder-core`, and prints. Every subcommand exits 0 on
//! success, 1 when the input is wrong (a policy error, a scenario mismatch),
//! and 2 when it cannot run at all (unreadable file, bad arguments).

/// `println!` that does not panic when stdout is closed (`ladder … | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod audit;
#[cfg(feature = "demo")]
mod demo;

mod device;
mod health;
mod service;
mod simulate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ladder_core::Policy;

#[derive(Debug, Parser)]
#[command(
    name = "ladder",
    version,
    about = "Route sensitive messages over a verified, secure fallback ladder."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate and inspect tenant policies.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Replay scenario files against their policies and check every expected outcome.
    Simulate(simulate::Args),
    /// Run the service: HTTP API, delivery workers, audit checkpoints.
    Serve(service::ServeArgs),
    /// Create tenants and issue their API keys.
    Tenant {
        #[command(subcommand)]
        command: service::TenantCommand,
    },
    /// Set, clear and list emergency overrides.
    Override {
        #[command(subcommand)]
        command: service::OverrideCommand,
    },
    /// Manage the keyring.
    Keys {
        #[command(subcommand)]
        command: service::KeysCommand,
    },
    /// Export, verify, prove and witness the audit log.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Walk through the story that motivates ladder, against fake providers; exit 0 if it all behaved.
    #[cfg(feature = "demo")]
    Demo(demo::Args),
    /// Walk through the story that motivates ladder (not in this build: it was built without the `demo` feature).
    #[cfg(not(feature = "demo"))]
    Demo {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
    /// The in-app device client: enrol a device, hand-shake, read its end-to-end encrypted inbox.
    Device {
        #[command(subcommand)]
        command: device::DeviceCommand,
    },
    /// Ask a running node whether it is ready (database and keyring); exit 0 if so.
    Health(health::HealthArgs),
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Validate a policy file; print a one-line summary with its version, or every error with its line and column.
    Check {
        /// The policy file (TOML).
        file: PathBuf,
        /// Treat warnings as errors.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Publish a policy file as a tenant's active policy (its `revision` must
    /// be above the active one's, unless `--rollback`).
    Publish(service::PublishArgs),
}

/// Why the CLI could not do its job.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Run(String),
}

pub(crate) fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn main() -> ExitCode {
    // HTTPS clients (provider adapters, `audit witness`, the device client)
    // use rustls with the ring provider, installed once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy {
            command:
                PolicyCommand::Check {
                    file,
                    deny_warnings,
                },
        } => policy_check(&file, deny_warnings),
        Command::Policy {
            command: PolicyCommand::Publish(args),
        } => service::policy_publish(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Serve(args) => service::serve(&args),
        Command::Tenant { command } => service::tenant(&command),
        Command::Override { command } => service::override_cmd(&command),
        Command::Keys { command } => service::keys_cmd(&command),
        Command::Audit { command } => audit::run(&command),
        Command::Device { command } => device::run(&command),
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo::run(&args),
        #[cfg(not(feature = "demo"))]
        Command::Demo { .. } => Err(CliError::Run(
            "this build of ladder has no demo: it was built without the `demo` feature, which keeps \
             the fake providers out of production builds; `cargo run -p ladder -- demo` has it"
                .into(),
        )),
        Command::Health(args) => health::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Wall-clock time, read here and passed into the core as an input.
fn now() -> ladder_core::Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    ladder_core::Timestamp(secs)
}

fn policy_check(file: &Path, deny_warnings: bool) -> Result<ExitCode, CliError> {
    let text = read(file)?;
    let name = file.display().to_string();
    match Policy::parse(&text, &name) {
        Ok(parsed) => {
            for w in &parsed.warnings {
                eprintln!("{w}");
            }
            // The core has no clock; the CLI does, so it can say which
            // shipped overrides have already lapsed.
            let now = now();
            let mut expired = 0;
            for o in parsed
                .policy
                .overrides()
                .iter()
                .filter(|o| !o.is_active(now))
            {
                eprintln!(
                    "{name}: warning: override `{}` expired at {}; it no longer applies",
                    o.id, o.expires
                );
                expired += 1;
            }
            out!("ok: {}", parsed.policy.summary());
            if deny_warnings && parsed.warnings.len() + expired > 0 {
                eprintln!(
                    "error: {} warning(s) and --deny-warnings is set",
                    parsed.warnings.len()
                );
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            eprintln!(
                "error: `{name}` has {} error(s); nothing was loaded",
                errors.0.len()
            );
            Ok(ExitCode::from(1))
        }
    }
}
