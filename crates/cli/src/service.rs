//! The service commands: `serve`, and the operator commands that work on a
//! database directly (`tenant`, `override`, `keys`, `audit`). They open the
//! same store and keyring a server would, from the same configuration.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use ladder_server::Config;
use ladder_server::app::offline_state;
use ladder_server::config::LogFormat;
use ladder_server::service::{keys, overrides, policy, tenants as tenant_service};
use ladder_store::tenants;
use serde_json::json;

use crate::{CliError, read};

/// Where the state lives; each flag overrides the config file and the
/// environment.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Configuration file (TOML); `LADDER_*` variables override it.
    #[arg(long, env = "LADDER_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL: `sqlite://PATH` or `postgres://…`.
    #[arg(long)]
    database: Option<String>,
    /// Data directory for the default SQLite database and keyring.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keyring file.
    #[arg(long)]
    keyring: Option<PathBuf>,
}

impl StoreArgs {
    pub(crate) fn config(&self) -> Result<Config, CliError> {
        let mut c =
            Config::load(self.config.as_deref()).map_err(|e| CliError::Run(e.to_string()))?;
        if let Some(d) = &self.data_dir {
            c.data_dir = d.clone();
        }
        if let Some(u) = &self.database {
            c.database_url = Some(u.clone());
        }
        if let Some(k) = &self.keyring {
            c.keyring = Some(k.clone());
        }
        Ok(c)
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to listen on, e.g. 127.0.0.1:7878.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant from a policy file; prints the tenant and its API keys as JSON (shown once).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        policy: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Issue a new API key for an existing tenant; prints it as JSON (shown once).
    Key {
        #[arg(long)]
        name: String,
        /// `sender` or `admin`.
        #[arg(long, default_value = "sender")]
        scope: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List tenants.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum OverrideCommand {
    /// Set an emergency override from a TOML file holding one override's fields.
    Set {
        #[arg(long)]
        tenant: String,
        /// TOML with `id`, `channel`, `effect`, `reason`, `expires_in` or `expires`, and label matchers.
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Give an active override a new expiry (within the policy's
    /// `override_max_lifetime` from now), audited as a renewal.
    Renew {
        #[arg(long)]
        tenant: String,
        id: String,
        /// How long from now, e.g. `24h`.
        #[arg(long)]
        expires_in: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Clear an active override.
    Clear {
        #[arg(long)]
        tenant: String,
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List a tenant's overrides with their state.
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Rotate every tenant's key-encryption key and rewrap all live payloads.
    Rotate {
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Runtime::new()
        .map_err(|e| CliError::Run(format!("cannot start the runtime: {e}")))
}

pub(crate) fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

pub(crate) fn run_err(e: impl std::fmt::Display) -> CliError {
    CliError::Run(e.to_string())
}

pub fn serve(args: &ServeArgs) -> Result<ExitCode, CliError> {
    let mut config = args.store.config()?;
    if let Some(l) = args.listen {
        config.listen = l;
    }
    init_logging(config.log_format);
    runtime()?.block_on(async move {
        let data_dir = config.data_dir.clone();
        let running = ladder_server::start(config).await.map_err(run_err)?;
        let base = format!("http://{}", running.addr);
        out!("ladder is serving on {base}");
        out!("  database: {}", running.database);
        out!("  keyring:  {}", running.keyring);
        match &running.demo {
            Some(demo) => {
                out!(
                    "  demo tenant `{}` created from examples/policies/acme.toml; its API keys are shown only now:",
                    demo.tenant.name
                );
                for k in &demo.keys {
                    out!("    {:<6} {}", k.scope.as_str(), k.token);
                }
                if let Some(k) = demo.keys.first() {
                    out!("  try:  curl -s {base}/v1/policy -H 'Authorization: Bearer {}'", k.token);
                }
            }
            None => out!(
                "  existing data in {}; new keys: ladder tenant key --name acme --scope admin",
                data_dir.display()
            ),
        }
        out!("  console: {base}/console (sign in with an admin key)");
        out!(
            "  docs: {base}/v1/docs (the document: {base}/v1/openapi.json) · metrics: {base}/metrics · stop with Ctrl-C"
        );
        shutdown_signal().await;
        out!("shutting down: finishing in-flight requests and claimed deliveries");
        running.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Logs to stderr in the configured format. Text is coloured only on a
/// terminal: escape codes in a file or a log collector are noise that
/// breaks `grep`. JSON is one object per line, each event with its span
/// fields (the request id among them).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LADDER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

pub(crate) async fn tenant_id(
    state: &ladder_server::state::AppState,
    name: &str,
) -> Result<String, CliError> {
    let mut conn = state.store.pool().acquire().await.map_err(run_err)?;
    tenants::find_by_name(&mut conn, name)
        .await
        .map_err(run_err)?
        .map(|t| t.id)
        .ok_or_else(|| CliError::Run(format!("no tenant named `{name}`")))
}

pub fn tenant(cmd: &TenantCommand) -> Result<ExitCode, CliError> {
    runtime()?.block_on(async move {
        match cmd {
            TenantCommand::Create {
                name,
                policy,
                store,
            } => {
                let text = read(policy)?;
                let state = offline_state(store.config()?).await.map_err(run_err)?;
                let created = tenant_service::create(&state, name, &text, "cli")
                    .await
                    .map_err(run_err)?;
                out!("{}", pretty(&json!(created)));
            }
            TenantCommand::Key { name, scope, store } => {
                let scope = match scope.as_str() {
                    "sender" => tenants::Scope::Sender,
                    "admin" => tenants::Scope::Admin,
                    other => {
                        return Err(CliError::Run(format!(
                            "scope `{other}` is not `sender` or `admin`"
                        )));
                    }
                };
                let state = offline_state(store.config()?).await.map_err(run_err)?;
                let id = tenant_id(&state, name).await?;
                let mut tx = state.store.begin().await.map_err(run_err)?;
                let key = tenants::issue_key(&mut tx, &id, scope, ladder_server::state::now().0)
                    .await
                    .map_err(run_err)?;
                ladder_server::service::audit::record(
                    &mut tx,
                    &state,
                    &id,
                    "cli",
                    "api_key_issued",
                    Some(&key.id),
                    json!({ "scope": scope.as_str() }),
                )
                .await
                .map_err(run_err)?;
                tx.commit().await.map_err(run_err)?;
                out!("{}", pretty(&json!(key)));
            }
            TenantCommand::List { store } => {
                let state = offline_state(store.config()?).await.map_err(run_err)?;
                let mut conn = state.store.pool().acquire().await.map_err(run_err)?;
                let all = tenants::list(&mut conn).await.map_err(run_err)?;
                out!("{}", pretty(&json!(all)));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn override_cmd(cmd: &OverrideCommand) -> Result<ExitCode, CliError> {
    runtime()?.block_on(async move {
        match cmd {
            OverrideCommand::Set {
                tenant,
                file,
                store,
            } => {
                let text = read(file)?;
                let state = offline_state(store.config()?).await.map_err(run_err)?;
                let id = tenant_id(&state, tenant).await?;
                match overrides::set(&state, &id, "cli", &text).await {
                    Ok(o) => out!(
                        "{}",
                        pretty(&json!({ "override": o.rule, "state": "active" }))
                    ),
                    Err(e) => {
                        eprintln!("error: {}: {e}", file.display());
                        return Ok(ExitCode::from(1));
                    }
                }
            }
            OverrideCommand::Renew {
                tenant,
                id,
                expires_in,
                store,
            } => {
                let expires = match expires_in.parse::<ladder_core::Duration>() {
                    Ok(d) => ladder_server::state::now().plus(d),
                    Err(e) => {
                        eprintln!("error: --expires-in: {e}");
                        return Ok(ExitCode::from(1));
                    }
                };
                let state = offline_state(store.config()?).await.map_err(run_err)?;
                let tid = tenant_id(&state, tenant).await?;
                match overrides::renew(&state, &tid, "cli", id, expires).await {
                    Ok(o) => out!(
                        "{}",
                        pretty(&json!({ "override": o.rule, "state": "active" }))
                    ),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return Ok(ExitCode::from(1));
                    }
                }
            }
            OverrideCommand::Clear { tenant, id, store } => {
                let state = offline_state(store.config()?).await.map_err(run_err)?;
                let tid = tenant_id(&state, tenant).await?;
                match overrides::clear(&state, &tid, "cli", id).await {
                    Ok(o) => out!(
                        "{}",
                        pretty(&json!({ "override": o.rule, "state": "cleared" }))
                    ),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return Ok(ExitCode::from(1));
                    }
                }
            }
            OverrideCommand::List { tenant, store } => {
                let state = offline_state(store.config()?).await.map_err(run_err)?;
                let tid = tenant_id(&state, tenant).await?;
                let list = overrides::list(&state.store, &tid).await.map_err(run_err)?;
                out!("{}", pretty(&json!({ "overrides": list })));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    #[arg(long)]
    tenant: String,
    /// The policy file (TOML).
    file: PathBuf,
    /// Return to an earlier, once-published version on purpose (audited
    /// as a rollback).
    #[arg(long)]
    rollback: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// `ladder policy publish`: exit 1 when the policy is refused (invalid,
/// for another tenant, or a revision going the wrong way).
pub fn policy_publish(args: &PublishArgs) -> Result<ExitCode, CliError> {
    let text = read(&args.file)?;
    runtime()?.block_on(async move {
        let state = offline_state(args.store.config()?).await.map_err(run_err)?;
        let id = tenant_id(&state, &args.tenant).await?;
        let direction = if args.rollback {
            policy::Direction::Rollback
        } else {
            policy::Direction::Forward
        };
        let mut tx = state.store.begin().await.map_err(run_err)?;
        match policy::publish(&mut tx, &state, &id, &args.tenant, &text, "cli", direction).await {
            Ok(stored) => {
                tx.commit().await.map_err(run_err)?;
                out!(
                    "{}",
                    pretty(&json!({
                        "version": stored.version,
                        "revision": stored.revision,
                        "rollback": args.rollback,
                    }))
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("error: {}: {e}", args.file.display());
                Ok(ExitCode::from(1))
            }
        }
    })
}

pub fn keys_cmd(cmd: &KeysCommand) -> Result<ExitCode, CliError> {
    let KeysCommand::Rotate { store } = cmd;
    runtime()?.block_on(async move {
        let state = offline_state(store.config()?).await.map_err(run_err)?;
        let rotations = keys::rotate_all(&state).await.map_err(run_err)?;
        out!("{}", pretty(&json!({ "rotated": rotations })));
        Ok(ExitCode::SUCCESS)
    })
}
