//! `ladder audit`: export a tenant's log, verify it (a database or an
//! export), prove one entry, check such a proof offline, print the log's
//! verifier key, and witness a running log — keeping the last checkpoint
//! seen and refusing, loudly, any later one that does not extend it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use ladder_store::audit::signed::SignedCheckpoint;
use ladder_store::audit::{self, AuditEntry, merkle, signed};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::service::{StoreArgs, pretty, run_err, runtime, tenant_id};
use crate::{CliError, read};

mod witness;
use witness::witness;

/// Signed tree checkpoints in an export directory, one JSON object a line.
pub const TREE_CHECKPOINTS_FILE: &str = "tree-checkpoints.jsonl";

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify a tenant's log: the hash chain, the Merkle tree, and every signed checkpoint.
    Verify {
        /// An export directory (from `ladder audit export`); omit to read the database.
        dir: Option<PathBuf>,
        /// The tenant, when reading a database.
        #[arg(long)]
        tenant: Option<String>,
        /// Trusted checkpoint verifier keys (`origin+id+key`); default: the keyring's.
        #[arg(long = "trust-vkey")]
        trust_vkeys: Vec<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Export a tenant's audit entries and checkpoints to a directory.
    Export {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print a proof that one entry is in the log, against its latest signed checkpoint (JSON).
    Prove {
        #[arg(long)]
        tenant: String,
        /// The entry's index in the log (its sequence number minus one).
        #[arg(long)]
        index: u64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Check a proof printed by `prove`, offline, against a trusted verifier key.
    CheckProof {
        file: PathBuf,
        #[arg(long = "trust-vkey")]
        trust_vkey: String,
    },
    /// Print a tenant log's origin and checkpoint verifier key.
    Key {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Check a running log's latest checkpoint extends the last one witnessed.
    Witness {
        /// The server, e.g. http://127.0.0.1:7878.
        #[arg(long)]
        url: String,
        /// An API key of the tenant whose log to witness.
        #[arg(long, env = "LADDER_API_KEY", hide_env_values = true)]
        key: String,
        /// Where the last witnessed checkpoint is kept.
        #[arg(long)]
        state: PathBuf,
        /// The log's verifier key; default: the one remembered in the state
        /// file (trusted on first use).
        #[arg(long = "trust-vkey")]
        trust_vkey: Option<String>,
    },
}

/// A proof that one entry is in a tenant's log.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProofBundle {
    pub origin: String,
    pub index: u64,
    pub size: u64,
    pub entry: AuditEntry,
    pub leaf_hash: String,
    pub proof: Vec<String>,
    /// The signed checkpoint (C2SP note) the proof is against.
    pub checkpoint: String,
}

pub fn run(cmd: &AuditCommand) -> Result<ExitCode, CliError> {
    runtime()?.block_on(async move {
        match cmd {
            AuditCommand::Verify {
                dir: Some(dir),
                trust_vkeys,
                ..
            } => {
                let (entries, chain) = audit::read_export(dir).map_err(run_err)?;
                let tree = read_tree_checkpoints(dir)?;
                if tree.is_empty() {
                    eprintln!("warning: {} holds no signed tree checkpoints", dir.display());
                }
                if trust_vkeys.is_empty() && !tree.is_empty() {
                    return Err(CliError::Run(
                        "give `--trust-vkey` (from `ladder audit key`) to check the export's checkpoints".into(),
                    ));
                }
                report(dir.display().to_string(), verify_all(entries, &chain, &tree, None, trust_vkeys))
            }
            AuditCommand::Verify {
                dir: None,
                tenant,
                trust_vkeys,
                store,
            } => {
                let Some(tenant) = tenant else {
                    return Err(CliError::Run(
                        "give an export directory, or `--tenant NAME` to verify a database".into(),
                    ));
                };
                let config = store.config()?;
                let deployment = config.audit.deployment.clone();
                let state = ladder_server::app::offline_state(config).await.map_err(run_err)?;
                let id = tenant_id(&state, tenant).await?;
                let (_, key) = state.keyring.checkpoint_signer(&id).map_err(run_err)?;
                let chain_keys = vec![hex::encode(key.verifying_key().to_bytes())];
                let origin = signed::origin(&deployment, &id);
                let vkeys = if trust_vkeys.is_empty() {
                    vec![signed::verifier_key(&origin, &key)]
                } else {
                    trust_vkeys.clone()
                };
                let entries = all_entries(&state.store, &id).await?;
                let chain = audit::checkpoints(&state.store, &id).await.map_err(run_err)?;
                let tree = signed::all(&state.store, &id).await.map_err(run_err)?;
                let mut result = verify_all(entries, &chain, &tree, Some(&chain_keys), &vkeys);
                if let Ok(summary) = &result {
                    // The stored tree must agree with the entries too.
                    let head = merkle::head(&state.store, &id).await.map_err(run_err)?;
                    if head.size > 0 && hex::encode(head.root) != summary.root_at(head.size) {
                        result = Err(format!(
                            "the stored Merkle tree at size {} does not match the entries (tree hashes altered)",
                            head.size
                        ));
                    }
                }
                report(format!("tenant `{tenant}`"), result)
            }
            AuditCommand::Export { tenant, out, store } => {
                let state = ladder_server::app::offline_state(store.config()?)
                    .await
                    .map_err(run_err)?;
                let id = tenant_id(&state, tenant).await?;
                let entries = all_entries(&state.store, &id).await?;
                let checkpoints = audit::checkpoints(&state.store, &id).await.map_err(run_err)?;
                let tree = signed::all(&state.store, &id).await.map_err(run_err)?;
                audit::write_export(out, &entries, &checkpoints).map_err(run_err)?;
                write_tree_checkpoints(out, &tree)?;
                out!(
                    "exported {} entries, {} chain checkpoints and {} signed tree checkpoints of tenant `{tenant}` to {}",
                    entries.len(),
                    checkpoints.len(),
                    tree.len(),
                    out.display()
                );
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::Prove { tenant, index, store } => {
                let config = store.config()?;
                let deployment = config.audit.deployment.clone();
                let state = ladder_server::app::offline_state(config).await.map_err(run_err)?;
                let id = tenant_id(&state, tenant).await?;
                merkle::integrate(&state.store, &id, 100_000).await.map_err(run_err)?;
                let checkpoint = signed::latest(&state.store, &id)
                    .await
                    .map_err(run_err)?
                    .filter(|c| c.size > *index)
                    .ok_or_else(|| {
                        CliError::Run(format!(
                            "no signed checkpoint covers entry {index} yet; sign one (POST /v1/audit/checkpoints) or wait for the next"
                        ))
                    })?;
                let proof = merkle::inclusion_proof(&state.store, &id, *index, checkpoint.size)
                    .await
                    .map_err(run_err)?;
                let seq = i64::try_from(*index).map_err(run_err)?;
                let entry = audit::page(&state.store, &id, seq, 1)
                    .await
                    .map_err(run_err)?
                    .into_iter()
                    .next()
                    .ok_or_else(|| CliError::Run(format!("no entry {index}")))?;
                let bundle = ProofBundle {
                    origin: signed::origin(&deployment, &id),
                    index: *index,
                    size: checkpoint.size,
                    leaf_hash: hex::encode(merkle::leaf_hash(&audit::canonical_bytes(&entry))),
                    entry,
                    proof: proof.iter().map(hex::encode).collect(),
                    checkpoint: checkpoint.note,
                };
                out!("{}", pretty(&json!(bundle)));
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::CheckProof { file, trust_vkey } => {
                let bundle: ProofBundle = serde_json::from_str(&read(file)?)
                    .map_err(|e| CliError::Run(format!("{}: not a proof: {e}", file.display())))?;
                report_proof(file, check_proof(&bundle, trust_vkey))
            }
            AuditCommand::Key { tenant, store } => {
                let config = store.config()?;
                let deployment = config.audit.deployment.clone();
                let state = ladder_server::app::offline_state(config).await.map_err(run_err)?;
                let id = tenant_id(&state, tenant).await?;
                let (key_id, key) = state.keyring.checkpoint_signer(&id).map_err(run_err)?;
                let origin = signed::origin(&deployment, &id);
                out!(
                    "{}",
                    pretty(&json!({
                        "origin": origin,
                        "verifier_key": signed::verifier_key(&origin, &key),
                        "chain_key_id": key_id,
                        "chain_public_key": hex::encode(key.verifying_key().to_bytes()),
                    }))
                );
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::Witness {
                url,
                key,
                state,
                trust_vkey,
            } => witness(url, key, state, trust_vkey.as_deref()).await,
        }
    })
}

async fn all_entries(
    store: &ladder_store::Store,
    tenant: &str,
) -> Result<Vec<AuditEntry>, CliError> {
    let mut entries = Vec::new();
    let mut after = 0;
    loop {
        let page = audit::page(store, tenant, after, 1000)
            .await
            .map_err(run_err)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        entries.extend(page);
    }
    Ok(entries)
}

fn write_tree_checkpoints(dir: &Path, tree: &[SignedCheckpoint]) -> Result<(), CliError> {
    let mut text = String::new();
    for c in tree {
        text.push_str(&serde_json::to_string(c).map_err(run_err)?);
        text.push('\n');
    }
    let path = dir.join(TREE_CHECKPOINTS_FILE);
    std::fs::write(&path, text).map_err(|source| CliError::Write {
        path: path.display().to_string(),
        source,
    })
}

fn read_tree_checkpoints(dir: &Path) -> Result<Vec<SignedCheckpoint>, CliError> {
    let path = dir.join(TREE_CHECKPOINTS_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    read(&path)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                CliError::Run(format!(
                    "{}:{}: not a checkpoint: {e}",
                    path.display(),
                    i + 1
                ))
            })
        })
        .collect()
}

/// What a successful verification saw.
pub struct Verified {
    entries: usize,
    chain_checkpoints: usize,
    tree_checkpoints: usize,
    tree: merkle::TreeBuilder,
}

impl Verified {
    fn root_at(&self, size: u64) -> String {
        self.tree.root_at(size).map(hex::encode).unwrap_or_default()
    }
}

/// Checks the hash chain, recomputes the Merkle tree over every entry, and
/// checks every signed checkpoint's signature and root. The error names
/// the first entry or checkpoint that does not verify.
pub fn verify_all(
    entries: Vec<AuditEntry>,
    chain: &[audit::Checkpoint],
    tree: &[SignedCheckpoint],
    chain_keys: Option<&[String]>,
    vkeys: &[String],
) -> Result<Verified, String> {
    let mut builder = merkle::TreeBuilder::new();
    for e in &entries {
        builder.push(merkle::leaf_hash(&audit::canonical_bytes(e)));
    }
    let count = entries.len();
    audit::verify(entries, chain, chain_keys).map_err(|e| e.to_string())?;
    let mut sorted: Vec<&SignedCheckpoint> = tree.iter().collect();
    sorted.sort_by_key(|c| c.size);
    for c in sorted {
        let opened = signed::open(&c.note, vkeys, None)
            .map_err(|e| format!("signed checkpoint at size {}: {e}", c.size))?;
        if opened.size != c.size {
            return Err(format!(
                "signed checkpoint filed at size {} signs size {} (altered)",
                c.size, opened.size
            ));
        }
        if opened.size > builder.len() {
            return Err(format!(
                "signed checkpoint at size {} but the log holds {} entries (truncated or rolled back)",
                opened.size,
                builder.len()
            ));
        }
        if builder.root_at(opened.size) != Some(opened.root) {
            return Err(format!(
                "signed checkpoint at size {}: its root does not match entries 0..{} (history rewritten)",
                opened.size, opened.size
            ));
        }
    }
    Ok(Verified {
        entries: count,
        chain_checkpoints: chain.len(),
        tree_checkpoints: tree.len(),
        tree: builder,
    })
}

fn report(what: String, r: Result<Verified, String>) -> Result<ExitCode, CliError> {
    match r {
        Ok(v) => {
            let size = v.tree.len();
            out!(
                "ok: {what}: {} entries (tree root {}), {} chain checkpoints and {} signed checkpoints verify",
                v.entries,
                if size == 0 {
                    "-".to_string()
                } else {
                    v.root_at(size)
                },
                v.chain_checkpoints,
                v.tree_checkpoints
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {what}: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Checks a proof bundle offline: the checkpoint's signature under the
/// trusted key, the leaf recomputed from the entry, and the inclusion path.
pub fn check_proof(bundle: &ProofBundle, trusted: &str) -> Result<String, String> {
    let opened = signed::open(
        &bundle.checkpoint,
        &[trusted.to_string()],
        Some(&bundle.origin),
    )
    .map_err(|e| format!("checkpoint: {e}"))?;
    if opened.size != bundle.size {
        return Err(format!(
            "the proof is for size {}, the checkpoint for size {}",
            bundle.size, opened.size
        ));
    }
    let leaf = merkle::leaf_hash(&audit::canonical_bytes(&bundle.entry));
    if hex::encode(leaf) != bundle.leaf_hash {
        return Err("the entry does not hash to the proof's leaf (entry altered)".into());
    }
    if u64::try_from(bundle.entry.seq - 1).ok() != Some(bundle.index) {
        return Err(format!(
            "the entry is number {}, the proof is for index {}",
            bundle.entry.seq - 1,
            bundle.index
        ));
    }
    let proof = bundle
        .proof
        .iter()
        .map(|h| {
            hex::decode(h)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
                .ok_or_else(|| format!("proof hash `{h}` is not 32 bytes of hex"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    merkle::verify_inclusion(leaf, bundle.index, bundle.size, &proof, opened.root)
        .map_err(|e| format!("inclusion: {e}"))?;
    Ok(format!(
        "entry {} (`{}`) is in log {} at size {}",
        bundle.index, bundle.entry.kind, bundle.origin, bundle.size
    ))
}

fn report_proof(file: &Path, r: Result<String, String>) -> Result<ExitCode, CliError> {
    match r {
        Ok(m) => {
            out!("ok: {m}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            Ok(ExitCode::from(1))
        }
    }
}
