//! `ladder device`: the in-app device client, as a recipient's app would
//! be. It keeps the device's private keys (Ed25519 identity, X25519
//! agreement) in a local state file readable by its owner only, enrols the
//! device, proves its state in a signed handshake, and fetches, verifies and
//! decrypts its inbox, showing each message with its thread's label.
//!
//! The label shown is derived from the assurance bound into the
//! ciphertext's associated data, so a server that relabels a message, or
//! moves a ciphertext to another thread or message, makes it fail to open:
//! such a message is reported and the command exits 1.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use clap::Subcommand;
use ed25519_dalek::{Signer as _, SigningKey};
use ladder_channels::inapp::{
    Binding, Hpke, Sealed, Sealer as _, agreement_public, device_request_signing_bytes,
    generate_agreement_key,
};
use ladder_core::AssuranceLevel;
use ladder_core::handshake::{self, DeviceReport};
use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::CliError;
use crate::service::{run_err, runtime};

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Generate this device's keys, keep them in a new state file (mode 0600), and enrol the device for a recipient.
    Enrol {
        /// The ladder server, e.g. http://127.0.0.1:7878.
        #[arg(long)]
        url: String,
        /// A sender API key of the recipient's tenant.
        #[arg(long, env = "LADDER_API_KEY", hide_env_values = true)]
        key: String,
        /// The recipient this device belongs to (`rcp_…`).
        #[arg(long)]
        recipient: String,
        /// Where to keep the device's keys; must not exist yet.
        #[arg(long)]
        state: PathBuf,
        /// Platform labels (descriptive only, never evidence).
        #[arg(long)]
        os: Option<String>,
        #[arg(long)]
        os_version: Option<String>,
        #[arg(long, default_value = "acme-app")]
        client: String,
        #[arg(long, default_value = "5.3")]
        client_version: String,
    },
    /// Prove the device's state: answer a one-time challenge with a report signed by the device key (in-app reachable with verified E2EE, push reachable).
    Handshake {
        #[arg(long)]
        url: String,
        #[arg(long, env = "LADDER_API_KEY", hide_env_values = true)]
        key: String,
        #[arg(long)]
        state: PathBuf,
        #[arg(long, default_value = "acme-app")]
        client: String,
        #[arg(long, default_value = "5.3")]
        client_version: String,
        /// The policy revision the client honours.
        #[arg(long, default_value_t = 4)]
        policy_revision: u32,
    },
    /// Fetch the device's inbox with a device-signed request, verify and decrypt each message, and print it with its thread's label. Exits 1 if any ciphertext does not open.
    Inbox {
        #[arg(long)]
        url: String,
        #[arg(long)]
        state: PathBuf,
        /// Acknowledge each message that opened, so the server forgets its ciphertext.
        #[arg(long)]
        ack: bool,
        /// At most this many messages (1-500).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

mod state;
use state::*;

pub fn run(cmd: &DeviceCommand) -> Result<ExitCode, CliError> {
    // reqwest is built without a default TLS provider (an https URL needs one).
    let _ = rustls::crypto::ring::default_provider().install_default();
    runtime()?.block_on(async move {
        let client = reqwest::Client::new();
        match cmd {
            DeviceCommand::Enrol {
                url,
                key,
                recipient,
                state,
                os,
                os_version,
                client: name,
                client_version,
            } => {
                let labels = Labels {
                    os: os.as_deref(),
                    os_version: os_version.as_deref(),
                    client: name,
                    client_version,
                };
                enrol(&client, url, key, recipient, state, &labels).await
            }
            DeviceCommand::Handshake {
                url,
                key,
                state,
                client: name,
                client_version,
                policy_revision,
            } => {
                let s = DeviceState::load(state)?;
                handshake(
                    &client,
                    url,
                    key,
                    &s,
                    name,
                    client_version,
                    *policy_revision,
                )
                .await
            }
            DeviceCommand::Inbox {
                url,
                state,
                ack,
                limit,
            } => {
                let s = DeviceState::load(state)?;
                inbox(&client, url, &s, *ack, *limit).await
            }
        }
    })
}

/// An HTTP answer: status and JSON body (or the text as a JSON string).
struct Answer {
    status: reqwest::StatusCode,
    body: Value,
}

impl Answer {
    /// The error line for a refused request: the envelope's code and message.
    fn refusal(&self, what: &str) -> String {
        let e = self.body.get("error");
        match (text_at(e, "code"), text_at(e, "message")) {
            (Some(code), Some(message)) => {
                format!(
                    "{what}: the server answered {}: {code}: {message}",
                    self.status
                )
            }
            _ => format!("{what}: the server answered {}: {}", self.status, self.body),
        }
    }
}

/// A text field of a JSON object, if there is one.
fn text_at<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a str> {
    v.and_then(|v| v.get(key)).and_then(Value::as_str)
}

async fn send(req: reqwest::RequestBuilder, url: &str) -> Result<Answer, CliError> {
    let r = req
        .send()
        .await
        .map_err(|e| CliError::Run(format!("cannot reach `{url}`: {e}")))?;
    let status = r.status();
    let text = r
        .text()
        .await
        .map_err(|e| CliError::Run(format!("`{url}`: {e}")))?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Answer { status, body })
}

/// A request with the tenant's API key.
async fn api(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> Result<Answer, CliError> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let req = client
        .post(&url)
        .header("authorization", format!("Bearer {key}"))
        .json(body);
    send(req, &url).await
}

/// A request signed by the device's identity key.
async fn signed(
    client: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    state: &DeviceState,
    key: &SigningKey,
) -> Result<Answer, CliError> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let timestamp = crate::now().0;
    let body: &[u8] = b"";
    let sig = key.sign(&device_request_signing_bytes(
        method.as_str(),
        path,
        timestamp,
        body,
    ));
    let req = client
        .request(method, &url)
        .header("x-ladder-device", &state.device_id)
        .header("x-ladder-timestamp", timestamp.to_string())
        .header("x-ladder-signature", hex::encode(sig.to_bytes()))
        .body(body.to_vec());
    send(req, &url).await
}

struct Labels<'a> {
    os: Option<&'a str>,
    os_version: Option<&'a str>,
    client: &'a str,
    client_version: &'a str,
}

async fn enrol(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    recipient: &str,
    path: &Path,
    labels: &Labels<'_>,
) -> Result<ExitCode, CliError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut_slice())
        .map_err(|e| CliError::Run(format!("the system random number generator failed: {e}")))?;
    let identity = SigningKey::from_bytes(&seed);
    let agreement = generate_agreement_key().map_err(run_err)?;
    // Claim the file first: never enrol keys that could not be kept.
    let mut file = create_private(path)?;
    let mut l = serde_json::Map::new();
    if let Some(os) = labels.os {
        l.insert("os".into(), json!(os));
    }
    if let Some(v) = labels.os_version {
        l.insert("os_version".into(), json!(v));
    }
    l.insert("client".into(), json!(labels.client));
    l.insert("client_version".into(), json!(labels.client_version));
    let body = json!({
        "identity_key": hex::encode(identity.verifying_key().to_bytes()),
        "agreement_key": hex::encode(agreement.public),
        "labels": l,
    });
    let answer = match api(
        client,
        url,
        &format!("/v1/recipients/{recipient}/devices"),
        key,
        &body,
    )
    .await
    {
        Ok(a) if a.status.is_success() => a,
        other => {
            drop(file);
            let _ = std::fs::remove_file(path);
            let a = other?;
            eprintln!("error: {}", a.refusal("enrolment"));
            return Ok(ExitCode::from(1));
        }
    };
    let Some(device_id) = text_at(Some(&answer.body), "id").map(str::to_string) else {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(CliError::Run(format!(
            "the enrolment answer names no device: {}",
            answer.body
        )));
    };
    let state = DeviceState {
        format: STATE_FORMAT.into(),
        url: url.to_string(),
        device_id: device_id.clone(),
        recipient_id: recipient.to_string(),
        identity_secret: hex::encode(seed.as_slice()),
        agreement_secret: hex::encode(agreement.secret.as_slice()),
        identity_key: hex::encode(identity.verifying_key().to_bytes()),
        agreement_key: hex::encode(agreement.public),
    };
    let text = Zeroizing::new(serde_json::to_string_pretty(&state).map_err(run_err)?);
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all());
    if let Err(source) = written {
        return Err(CliError::Write {
            path: path.display().to_string(),
            source,
        });
    }
    out!("enrolled device {device_id} for recipient {recipient}");
    out!("keys kept in {} (owner-only)", path.display());
    out!(
        "next: ladder device handshake --url {url} --key … --state {}",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn handshake(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    state: &DeviceState,
    name: &str,
    version: &str,
    policy_revision: u32,
) -> Result<ExitCode, CliError> {
    let device = &state.device_id;
    let c = api(
        client,
        url,
        &format!("/v1/devices/{device}/challenge"),
        key,
        &json!({}),
    )
    .await?;
    if !c.status.is_success() {
        eprintln!("error: {}", c.refusal("challenge"));
        return Ok(ExitCode::from(1));
    }
    let Some(nonce) = text_at(Some(&c.body), "nonce") else {
        return Err(CliError::Run(format!(
            "the challenge answer has no nonce: {}",
            c.body
        )));
    };
    let report: DeviceReport = serde_json::from_value(json!({
        "device": device,
        "nonce": nonce,
        "client": { "name": name, "version": version, "policy_revision": policy_revision },
        "transports": {
            "in_app": { "reachable": true, "e2ee": "verified" },
            "push": { "reachable": true, "e2ee": "absent" },
        },
    }))
    .map_err(|e| CliError::Run(format!("--client-version `{version}`: {e}")))?;
    let signed = handshake::sign(&state.signing_key()?, report).map_err(run_err)?;
    let body = serde_json::to_value(&signed).map_err(run_err)?;
    let h = api(
        client,
        url,
        &format!("/v1/devices/{device}/handshake"),
        key,
        &body,
    )
    .await?;
    if !h.status.is_success() {
        eprintln!("error: {}", h.refusal("handshake"));
        return Ok(ExitCode::from(1));
    }
    let elevated = h
        .body
        .get("elevations")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    out!(
        "handshake verified for device {device}: in_app reachable, e2ee verified; push reachable ({name} {version}, policy revision {policy_revision})"
    );
    out!("threads elevated: {elevated}");
    Ok(ExitCode::SUCCESS)
}

/// One inbox entry as served.
#[derive(Debug, Deserialize)]
struct Entry {
    message_id: String,
    thread_id: String,
    assurance: String,
    expires_at: i64,
    enc: String,
    ciphertext: String,
}

async fn inbox(
    client: &reqwest::Client,
    url: &str,
    state: &DeviceState,
    ack: bool,
    limit: u32,
) -> Result<ExitCode, CliError> {
    let key = state.signing_key()?;
    let secret = state.agreement_secret()?;
    let public = agreement_public(&secret).map_err(run_err)?;
    if hex::encode(public) != state.agreement_key {
        return Err(CliError::Run(
            "the state file's agreement keys do not match each other".into(),
        ));
    }
    let me = signed(
        client,
        url,
        reqwest::Method::GET,
        "/v1/device/me",
        state,
        &key,
    )
    .await?;
    if !me.status.is_success() {
        eprintln!("error: {}", me.refusal("device"));
        return Ok(ExitCode::from(1));
    }
    let (Some(tenant), Some(id)) = (
        text_at(Some(&me.body), "tenant"),
        text_at(Some(&me.body), "id"),
    ) else {
        return Err(CliError::Run(format!(
            "unexpected answer from /v1/device/me: {}",
            me.body
        )));
    };
    if id != state.device_id {
        return Err(CliError::Run(format!(
            "the server answered for device `{id}`, not `{}`",
            state.device_id
        )));
    }
    let listed = signed(
        client,
        url,
        reqwest::Method::GET,
        &format!("/v1/device/inbox?limit={limit}"),
        state,
        &key,
    )
    .await?;
    if !listed.status.is_success() {
        eprintln!("error: {}", listed.refusal("inbox"));
        return Ok(ExitCode::from(1));
    }
    let entries: Vec<Entry> =
        serde_json::from_value(listed.body.get("entries").cloned().unwrap_or_default())
            .map_err(|e| CliError::Run(format!("unexpected inbox answer: {e}")))?;
    out!("device {}: {} message(s)", state.device_id, entries.len());
    let mut failed = 0usize;
    let mut opened = Vec::new();
    for e in &entries {
        match open_entry(tenant, e, &secret) {
            Ok((assurance, body)) => {
                // The label comes from the assurance the ciphertext is bound
                // to, never from the server's say-so.
                let label = assurance.label();
                out!("message {}", e.message_id);
                out!("  thread: {}", e.thread_id);
                out!("  label: {label}");
                let text = String::from_utf8_lossy(&body);
                let mut lines = text.lines();
                out!("  body: {}", lines.next().unwrap_or_default());
                for line in lines {
                    out!("        {line}");
                }
                opened.push(e.message_id.clone());
            }
            Err(why) => {
                failed += 1;
                eprintln!(
                    "error: message {} (thread {}): {why}",
                    e.message_id, e.thread_id
                );
            }
        }
    }
    if ack {
        for id in &opened {
            let a = signed(
                client,
                url,
                reqwest::Method::POST,
                &format!("/v1/device/inbox/{id}/ack"),
                state,
                &key,
            )
            .await?;
            if !a.status.is_success() {
                eprintln!("error: {}", a.refusal(&format!("acknowledging {id}")));
                failed += 1;
            }
        }
        out!("acknowledged: {}", opened.len());
    }
    if failed > 0 {
        eprintln!("error: {failed} message(s) did not open or could not be acknowledged");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Verifies and decrypts one entry against the values served beside it.
fn open_entry(
    tenant: &str,
    e: &Entry,
    secret: &[u8; 32],
) -> Result<(AssuranceLevel, Zeroizing<Vec<u8>>), String> {
    let assurance: AssuranceLevel = e.assurance.parse().map_err(|err| format!("{err}"))?;
    let sealed = Sealed {
        enc: B64
            .decode(&e.enc)
            .map_err(|err| format!("`enc` is not base64: {err}"))?,
        ciphertext: B64
            .decode(&e.ciphertext)
            .map_err(|err| format!("`ciphertext` is not base64: {err}"))?,
    };
    let binding = Binding {
        tenant_id: tenant.to_string(),
        thread_id: e.thread_id.clone(),
        message_id: e.message_id.clone(),
        assurance,
        expires_at: e.expires_at,
    };
    let body = Hpke
        .open(secret, &binding, &sealed)
        .map_err(|err| err.to_string())?;
    Ok((assurance, body))
}
