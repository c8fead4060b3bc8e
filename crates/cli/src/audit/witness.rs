//! `ladder audit witness`: keep the last checkpoint seen of a tenant's log
//! in a local file, and refuse — loudly, exit 1 — any later checkpoint that
//! does not extend it: a log that shrank (rollback) or signed a different
//! history (fork).

use std::path::Path;
use std::process::ExitCode;

use ladder_store::audit::{merkle, signed};
use serde::{Deserialize, Serialize};

use crate::service::run_err;
use crate::{CliError, read};

/// `GET /v1/audit/log`, the part a witness reads.
#[derive(Debug, Deserialize)]
struct LogInfo {
    origin: String,
    verifier_key: String,
}

/// `GET /v1/audit/proof/consistency`, the part a witness reads.
#[derive(Debug, Deserialize)]
struct ConsistencyAnswer {
    proof: Vec<String>,
}

/// What a witness remembers.
#[derive(Debug, Serialize, Deserialize)]
struct Witnessed {
    origin: String,
    verifier_key: String,
    size: u64,
    root: String,
    note: String,
}

async fn get(client: &reqwest::Client, url: &str, key: &str) -> Result<String, CliError> {
    let r = client
        .get(url)
        .header("authorization", format!("Bearer {key}"))
        .send()
        .await
        .map_err(|e| CliError::Run(format!("cannot reach `{url}`: {e}")))?;
    let status = r.status();
    let text = r
        .text()
        .await
        .map_err(|e| CliError::Run(format!("`{url}`: {e}")))?;
    if !status.is_success() {
        return Err(CliError::Run(format!("`{url}` answered {status}: {text}")));
    }
    Ok(text)
}

fn hash32(hex_text: &str, what: &str) -> Result<[u8; 32], CliError> {
    hex::decode(hex_text)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| CliError::Run(format!("{what} `{hex_text}` is not 32 bytes of hex")))
}

pub(super) async fn witness(
    url: &str,
    key: &str,
    state_path: &Path,
    trust_vkey: Option<&str>,
) -> Result<ExitCode, CliError> {
    let client = reqwest::Client::new();
    let base = url.trim_end_matches('/');
    let log: LogInfo =
        serde_json::from_str(&get(&client, &format!("{base}/v1/audit/log"), key).await?)
            .map_err(run_err)?;
    let origin = log.origin.clone();
    let previous: Option<Witnessed> = if state_path.exists() {
        Some(serde_json::from_str(&read(state_path)?).map_err(|e| {
            CliError::Run(format!(
                "{}: not a witness state file: {e}",
                state_path.display()
            ))
        })?)
    } else {
        None
    };
    let vkey = match (trust_vkey, &previous) {
        (Some(k), _) => k.to_string(),
        (None, Some(p)) => p.verifier_key.clone(),
        (None, None) => {
            let k = log.verifier_key.clone();
            eprintln!(
                "warning: first use: trusting the log's own verifier key {k}; pin it with --trust-vkey"
            );
            k
        }
    };
    if let Some(p) = &previous
        && p.origin != origin
    {
        eprintln!(
            "REFUSED: the server now serves log `{origin}`, but this state witnessed `{}`",
            p.origin
        );
        return Ok(ExitCode::from(1));
    }
    let note = get(&client, &format!("{base}/v1/audit/checkpoint"), key).await?;
    let opened = match signed::open(&note, std::slice::from_ref(&vkey), Some(&origin)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("REFUSED: the latest checkpoint of `{origin}` does not verify: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    if let Some(p) = &previous {
        let old_root = hash32(&p.root, "witnessed root")?;
        if opened.size < p.size {
            eprintln!(
                "REFUSED: ROLLBACK: log `{origin}` now has {} entries, but {} were witnessed",
                opened.size, p.size
            );
            return Ok(ExitCode::from(1));
        }
        if opened.size == p.size && opened.root != old_root {
            eprintln!(
                "REFUSED: FORK: log `{origin}` signed two different roots for size {}",
                p.size
            );
            return Ok(ExitCode::from(1));
        }
        if opened.size > p.size {
            let proof: ConsistencyAnswer = serde_json::from_str(
                &get(
                    &client,
                    &format!(
                        "{base}/v1/audit/proof/consistency?from={}&to={}",
                        p.size, opened.size
                    ),
                    key,
                )
                .await?,
            )
            .map_err(run_err)?;
            let hashes = proof
                .proof
                .iter()
                .map(|h| hash32(h, "proof hash"))
                .collect::<Result<Vec<_>, _>>()?;
            if let Err(e) =
                merkle::verify_consistency(p.size, old_root, opened.size, opened.root, &hashes)
            {
                eprintln!(
                    "REFUSED: FORK: the checkpoint at size {} of `{origin}` does not extend the one witnessed at size {}: {e}",
                    opened.size, p.size
                );
                return Ok(ExitCode::from(1));
            }
        }
    }
    let next = Witnessed {
        origin: origin.clone(),
        verifier_key: vkey,
        size: opened.size,
        root: hex::encode(opened.root),
        note,
    };
    let tmp = state_path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&next).map_err(run_err)?).map_err(
        |source| CliError::Write {
            path: tmp.display().to_string(),
            source,
        },
    )?;
    std::fs::rename(&tmp, state_path).map_err(|source| CliError::Write {
        path: state_path.display().to_string(),
        source,
    })?;
    match previous {
        Some(p) if p.size == opened.size => {
            out!("ok: `{origin}` unchanged at size {}", opened.size)
        }
        Some(p) => out!(
            "ok: `{origin}` grew consistently from size {} to {}",
            p.size,
            opened.size
        ),
        None => out!("ok: witnessing `{origin}` from size {}", opened.size),
    }
    Ok(ExitCode::SUCCESS)
}
