//! `ladder health`: asks a running node whether it is ready, for container
//! health checks and scripts (the runtime image carries no curl). Exit 0 when
//! `/readyz` answers 200, 1 otherwise — not ready, or not answering at all
//! (Docker reserves a health check's exit code 2).

use std::process::ExitCode;

use clap::Args;

use crate::CliError;
use crate::service::runtime;

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The node's base URL; default the address `LADDER_LISTEN` (or the
    /// config's `listen`) names, reached on loopback when it binds every
    /// interface.
    #[arg(long)]
    url: Option<String>,
    /// Configuration file (TOML), for the default URL.
    #[arg(long, env = "LADDER_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 3)]
    timeout: u64,
}

pub fn run(args: &HealthArgs) -> Result<ExitCode, CliError> {
    let base = match &args.url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let config = ladder_server::Config::load(args.config.as_deref())
                .map_err(|e| CliError::Run(e.to_string()))?;
            let mut addr = config.listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}")
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    runtime()?.block_on(async move {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(args.timeout))
            .build()
            .map_err(|e| CliError::Run(format!("cannot build an HTTP client: {e}")))?;
        let answer = match client.get(format!("{base}/readyz")).send().await {
            Ok(answer) => answer,
            Err(e) => {
                eprintln!("error: `{base}` did not answer: {e}");
                return Ok(ExitCode::from(1));
            }
        };
        let ready = answer.status().is_success();
        let body = answer.text().await.unwrap_or_default();
        out!("{}", body.trim());
        Ok(if ready {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
