//! The audit log as an operator checks it: the log's identity, the latest
//! signed checkpoint as witnesses see it, whether that checkpoint's
//! signature verifies and whether today's tree still extends it, and the
//! newest entries.
//!
//! Checks here are the same a client makes with the API's proofs
//! (`ladder audit verify`): the checkpoint note is opened with the log's
//! verifier key, and inclusion and consistency proofs computed from the
//! stored tree are verified against the signed root, so an edited entry
//! or tree row shows as a failed check, not as a quiet pass.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use ladder_store::audit::{self, merkle, signed};
use serde::Deserialize;

use super::{ConsoleError, Frame, Operator, Section, ok, when};
use crate::service::error::ServiceError;
use crate::state::AppState;

/// An audit entry about something, with its inclusion checked.
#[derive(Debug)]
pub struct ProofCheck {
    pub index: u64,
    pub kind: String,
    pub verdict: Verdict,
}

/// What the check of one entry's inclusion found.
#[derive(Debug)]
pub enum Verdict {
    /// In the tree the latest signed checkpoint commits to.
    Included { size: u64 },
    /// Appended after the latest signed checkpoint: provable at the next.
    Pending,
    /// The proof did not verify: the log or its checkpoint was altered.
    Failed(String),
}

impl Verdict {
    pub fn text(&self) -> String {
        match self {
            Verdict::Included { size } => format!("included in signed checkpoint of size {size}"),
            Verdict::Pending => "after the latest checkpoint; provable at the next".into(),
            Verdict::Failed(why) => format!("verification failed: {why}"),
        }
    }

    pub fn tone(&self) -> &'static str {
        match self {
            Verdict::Included { .. } => "ok",
            Verdict::Pending => "warn",
            Verdict::Failed(_) => "bad",
        }
    }
}

/// The latest signed checkpoint, opened with the log's own verifier key.
async fn opened_checkpoint(
    state: &AppState,
    tenant_id: &str,
) -> Result<Option<Result<signed::OpenedCheckpoint, String>>, ServiceError> {
    let Some(latest) = signed::latest(&state.store, tenant_id).await? else {
        return Ok(None);
    };
    let origin = signed::origin(&state.config.audit.deployment, tenant_id);
    let (_, key) = state.keyring.checkpoint_signer(tenant_id)?;
    let verifier = signed::verifier_key(&origin, &key);
    Ok(Some(
        signed::open(&latest.note, &[verifier], Some(&origin)).map_err(|e| e.to_string()),
    ))
}

/// Checks that entry `index` is in the tree of the latest signed checkpoint.
pub async fn check_inclusion(
    state: &AppState,
    tenant_id: &str,
    index: u64,
    kind: String,
) -> Result<ProofCheck, ServiceError> {
    let verdict = match opened_checkpoint(state, tenant_id).await? {
        None => Verdict::Pending,
        Some(Err(why)) => Verdict::Failed(why),
        Some(Ok(cp)) if index >= cp.size => Verdict::Pending,
        Some(Ok(cp)) => inclusion(state, tenant_id, index, &cp).await?,
    };
    Ok(ProofCheck {
        index,
        kind,
        verdict,
    })
}

async fn inclusion(
    state: &AppState,
    tenant_id: &str,
    index: u64,
    cp: &signed::OpenedCheckpoint,
) -> Result<Verdict, ServiceError> {
    let proof = match merkle::inclusion_proof(&state.store, tenant_id, index, cp.size).await {
        Ok(p) => p,
        Err(e) => return Ok(Verdict::Failed(e.to_string())),
    };
    let seq = i64::try_from(index).map_or(i64::MAX, |i| i.saturating_add(1));
    let Some(entry) = audit::page(&state.store, tenant_id, seq.saturating_sub(1), 1)
        .await?
        .into_iter()
        .next()
    else {
        return Ok(Verdict::Failed(format!("entry {index} is missing")));
    };
    let leaf = merkle::leaf_hash(&audit::canonical_bytes(&entry));
    Ok(
        match merkle::verify_inclusion(leaf, index, cp.size, &proof, cp.root) {
            Ok(()) => Verdict::Included { size: cp.size },
            Err(e) => Verdict::Failed(e.to_string()),
        },
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Show entries after this sequence number; default the newest 50.
    pub after: Option<i64>,
}

#[derive(Debug)]
struct EntryRow {
    seq: i64,
    at: String,
    kind: String,
    actor: String,
    subject: String,
    details: String,
}

#[derive(Debug)]
struct CheckpointRow {
    size: u64,
    at: String,
    root: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    frame: Frame,
    origin: String,
    verifier_key: String,
    tree_size: u64,
    tree_root: String,
    unsigned: i64,
    note: Option<String>,
    signature: Verdict,
    consistency: Verdict,
    checkpoints: Vec<CheckpointRow>,
    entries: Vec<EntryRow>,
    older: Option<i64>,
    newer: Option<i64>,
}

const PAGE: i64 = 50;

/// `GET /console/audit`.
pub async fn show(
    State(state): State<AppState>,
    op: Operator,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ConsoleError> {
    let tenant = &op.caller.tenant_id;
    let origin = signed::origin(&state.config.audit.deployment, tenant);
    let (_, key) = state.keyring.checkpoint_signer(tenant)?;
    let head = merkle::head(&state.store, tenant).await?;
    let latest = signed::latest(&state.store, tenant).await?;
    let (signature, consistency) = match opened_checkpoint(&state, tenant).await? {
        None => (Verdict::Pending, Verdict::Pending),
        Some(Err(why)) => (Verdict::Failed(why.clone()), Verdict::Failed(why)),
        Some(Ok(cp)) => {
            let extends =
                match merkle::consistency_proof(&state.store, tenant, cp.size, head.size).await {
                    Ok(proof) => match merkle::verify_consistency(
                        cp.size, cp.root, head.size, head.root, &proof,
                    ) {
                        Ok(()) => Verdict::Included { size: head.size },
                        Err(e) => Verdict::Failed(e.to_string()),
                    },
                    Err(e) => Verdict::Failed(e.to_string()),
                };
            (Verdict::Included { size: cp.size }, extends)
        }
    };
    let size = i64::try_from(head.size).unwrap_or(i64::MAX);
    let after = match q.after {
        Some(a) if (0..=size).contains(&a) => a,
        Some(_) => {
            return Err(ServiceError::bad_request(
                "invalid_page",
                format!("query `after` must be a sequence number from 0 to {size}"),
            )
            .into());
        }
        None => (size - PAGE).max(0),
    };
    let mut entries = audit::page(&state.store, tenant, after, PAGE).await?;
    entries.reverse();
    let mut checkpoints = signed::all(&state.store, tenant).await?;
    checkpoints.reverse();
    checkpoints.truncate(10);
    Ok(ok(&AuditPage {
        frame: Frame::new(&op, Section::Audit, "Audit log"),
        verifier_key: signed::verifier_key(&origin, &key),
        origin,
        tree_size: head.size,
        tree_root: hex::encode(head.root),
        unsigned: signed::unsigned_entries(&state.store, tenant).await?,
        note: latest.map(|l| l.note),
        signature,
        consistency,
        checkpoints: checkpoints
            .into_iter()
            .map(|c| CheckpointRow {
                size: c.size,
                at: when(c.at),
                root: c.root,
            })
            .collect(),
        entries: entries
            .into_iter()
            .map(|e| EntryRow {
                seq: e.seq,
                at: when(e.at),
                kind: e.kind,
                actor: e.actor,
                subject: e.subject.unwrap_or_default(),
                details: e.details.to_string(),
            })
            .collect(),
        older: (after > 0).then(|| (after - PAGE).max(0)),
        newer: (after + PAGE < size).then_some(after + PAGE),
    }))
}
