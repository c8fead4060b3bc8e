//! `ladder health`: asks a running node whether it is ready, for container
//! health checks and scripts (the runtime image carries no curl). Exit 0 when
//! `/readyz` answers 200, 1 when the node answers that it is not ready, 2
//! when it cannot be reached at all.

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
        let answer = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .map_err(|e| CliError::Run(format!("`{base}` did not answer: {e}")))?;
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
