//! The audit log over HTTP: entries by range, the tenant log's identity and
//! verifier key, signed checkpoints (C2SP note text), and inclusion and
//! consistency proofs answered from the stored tree hashes.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ladder_store::audit::{self, merkle, signed};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::wire::ErrorEnvelope;
use crate::auth::{Admin, Sender};
use crate::service::error::ServiceError;
use crate::state::{AppState, now};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    #[serde(default)]
    pub after: i64,
    #[serde(default = "default_limit")]
    pub limit: i64,
    /// `next_cursor` of the previous page (instead of `after`).
    pub cursor: Option<String>,
    /// Only entries of this kind (`decision`, `escalation_sent`…).
    pub kind: Option<String>,
    /// Only entries about this message.
    pub message: Option<String>,
}

fn default_limit() -> i64 {
    100
}

/// A page of audit entries.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AuditPage)]
pub struct Entries {
    #[schema(value_type = Vec<Object>)]
    pub entries: Vec<audit::AuditEntry>,
    /// The last entry's sequence number, for `after`.
    pub next_after: Option<i64>,
    pub next_cursor: Option<String>,
}

/// Entries in order, `after` a sequence number (index + 1).
#[utoipa::path(get, path = "/v1/audit", tag = "audit", operation_id = "readAudit",
    security(("bearer" = ["admin"])),
    params(Page),
    responses(
        (status = 200, description = "A page of entries.", body = Entries),
        (status = 400, description = "A malformed page or filter.", body = ErrorEnvelope),
    ))]
pub async fn entries(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Query(page): Query<Page>,
) -> Result<Json<Entries>, ServiceError> {
    let limit = match u16::try_from(page.limit) {
        Ok(l) if (1..=1000).contains(&l) && page.after >= 0 => l,
        _ => {
            return Err(ServiceError::bad_request(
                "invalid_page",
                "query `limit` must be 1-1000 and `after` a sequence number (0 for the start)",
            ));
        }
    };
    let cursor = crate::api::lists::after(page.cursor.as_deref(), |s| {
        s.parse::<i64>().ok().filter(|n| *n >= 0)
    })?;
    let after = match (cursor, page.after) {
        (Some(_), a) if a != 0 => {
            return Err(ServiceError::bad_request(
                "invalid_page",
                "give query `cursor` or `after`, not both",
            ));
        }
        (Some(c), _) => c,
        (None, a) => a,
    };
    let kind = page.kind.as_deref();
    if kind.is_some_and(|k| {
        k.is_empty() || k.len() > 64 || !k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    }) {
        return Err(ServiceError::bad_request(
            "invalid_filter",
            "query `kind` must be an audit entry kind: lowercase letters and `_`",
        ));
    }
    let message = page
        .message
        .as_deref()
        .map(|m| ladder_store::ids::MessageId::parse(m, "query `message`"))
        .transpose()?;
    let filter = audit::Filter {
        kind,
        subject: message.as_ref().map(ladder_store::ids::MessageId::as_str),
    };
    let entries = audit::page_filtered(
        &state.store,
        &caller.tenant_id,
        after,
        &filter,
        i64::from(limit) + 1,
    )
    .await?;
    let mut keyed: Vec<(String, audit::AuditEntry)> = entries
        .into_iter()
        .map(|e| (e.seq.to_string(), e))
        .collect();
    let next_cursor = crate::api::lists::cut(&mut keyed, limit, |(seq, _)| seq);
    let entries: Vec<audit::AuditEntry> = keyed.into_iter().map(|(_, e)| e).collect();
    let next = entries.last().map(|e| e.seq);
    Ok(Json(Entries {
        entries,
        next_after: next,
        next_cursor,
    }))
}

/// Every checkpoint of the chain and of the tree.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CheckpointList)]
pub struct Checkpoints {
    /// Ed25519 statements of the chain head.
    #[schema(value_type = Vec<Object>)]
    pub checkpoints: Vec<audit::Checkpoint>,
    /// C2SP signed notes over the tree head.
    #[schema(value_type = Vec<Object>)]
    pub tree_checkpoints: Vec<signed::SignedCheckpoint>,
}

/// The latest checkpoints of the chain and of the tree.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CheckpointAnswer)]
pub struct LatestCheckpoints {
    #[schema(value_type = Option<Object>)]
    pub checkpoint: Option<audit::Checkpoint>,
    #[schema(value_type = Option<Object>)]
    pub tree_checkpoint: Option<signed::SignedCheckpoint>,
}

/// The chain checkpoints (Ed25519 over the chain head).
#[utoipa::path(get, path = "/v1/audit/checkpoints", tag = "audit", operation_id = "listCheckpoints",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "Every checkpoint.", body = Checkpoints)))]
pub async fn chain_checkpoints(
    State(state): State<AppState>,
    Admin(caller): Admin,
) -> Result<Json<Checkpoints>, ServiceError> {
    let cps = audit::checkpoints(&state.store, &caller.tenant_id).await?;
    let tree = signed::all(&state.store, &caller.tenant_id).await?;
    Ok(Json(Checkpoints {
        checkpoints: cps,
        tree_checkpoints: tree,
    }))
}

/// Signs checkpoints of the chain and of the tree now (on demand).
#[utoipa::path(post, path = "/v1/audit/checkpoints", tag = "audit", operation_id = "checkpointNow",
    security(("bearer" = ["admin"])),
    responses(
        (status = 201, description = "Signed new checkpoints.", body = LatestCheckpoints),
        (status = 200, description = "Nothing new to sign: the latest ones.", body = LatestCheckpoints),
    ))]
pub async fn checkpoint_now(
    State(state): State<AppState>,
    Admin(caller): Admin,
) -> Result<(StatusCode, Json<LatestCheckpoints>), ServiceError> {
    let (key_id, key) = state.keyring.checkpoint_signer(&caller.tenant_id)?;
    let chain = audit::checkpoint(&state.store, &caller.tenant_id, now().0, &key_id, &key).await?;
    let origin = signed::origin(&state.config.audit.deployment, &caller.tenant_id);
    let tree = signed::sign_head(&state.store, &caller.tenant_id, &origin, &key, now().0).await?;
    let created = chain.is_some() || tree.is_some();
    let chain = match chain {
        Some(c) => Some(c),
        None => audit::latest_checkpoint(&state.store, &caller.tenant_id).await?,
    };
    let tree = match tree {
        Some(t) => Some(t),
        None => signed::latest(&state.store, &caller.tenant_id).await?,
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(LatestCheckpoints {
            checkpoint: chain,
            tree_checkpoint: tree,
        }),
    ))
}

/// The log's identity: origin, verifier key, current tree head and the
/// latest signed checkpoint.
#[utoipa::path(get, path = "/v1/audit/log", tag = "audit", operation_id = "auditLog",
    security(("bearer" = ["sender"])),
    responses((status = 200, description = "The log.", body = Log)))]
pub async fn log(
    State(state): State<AppState>,
    Sender(caller): Sender,
) -> Result<Json<Log>, ServiceError> {
    let origin = signed::origin(&state.config.audit.deployment, &caller.tenant_id);
    let (key_id, key) = state.keyring.checkpoint_signer(&caller.tenant_id)?;
    let head = merkle::head(&state.store, &caller.tenant_id).await?;
    let latest = signed::latest(&state.store, &caller.tenant_id).await?;
    Ok(Json(Log {
        verifier_key: signed::verifier_key(&origin, &key),
        origin,
        key_id,
        tree: TreeHead {
            size: head.size,
            root: hex::encode(head.root),
        },
        checkpoint: latest,
    }))
}

/// The tenant log's identity.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AuditLog)]
pub struct Log {
    pub origin: String,
    /// The C2SP verifier key of the log's checkpoints.
    pub verifier_key: String,
    pub key_id: String,
    pub tree: TreeHead,
    /// The latest signed checkpoint, if any.
    #[schema(value_type = Option<Object>)]
    pub checkpoint: Option<signed::SignedCheckpoint>,
}

/// The tree's current size and root (hex).
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TreeHead {
    pub size: u64,
    pub root: String,
}

/// The latest signed checkpoint as the C2SP note text witnesses consume.
#[utoipa::path(get, path = "/v1/audit/checkpoint", tag = "audit", operation_id = "latestCheckpoint",
    security(("bearer" = ["sender"])),
    responses(
        (status = 200, description = "The note.", body = String, content_type = "text/plain"),
        (status = 404, description = "No checkpoint signed yet.", body = ErrorEnvelope),
    ))]
pub async fn checkpoint_note(
    State(state): State<AppState>,
    Sender(caller): Sender,
) -> Result<Response, ServiceError> {
    let latest = signed::latest(&state.store, &caller.tenant_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("checkpoint", "latest"))?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        latest.note,
    )
        .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    pub index: u64,
    /// Tree size to prove against; default the latest signed checkpoint's.
    #[serde(default)]
    pub size: Option<u64>,
}

fn proof_error(e: merkle::ProofError) -> ServiceError {
    match e {
        merkle::ProofError::Store(s) => s.into(),
        other => ServiceError::invalid("proof_out_of_range", other.to_string()),
    }
}

/// An inclusion proof of one entry.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    pub leaf_hash: String,
    pub root: String,
    pub proof: Vec<String>,
    #[schema(value_type = Object)]
    pub entry: audit::AuditEntry,
}

/// A consistency proof between two tree sizes.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    pub from_root: String,
    pub to_root: String,
    pub proof: Vec<String>,
}

/// Proves an entry is in the tree of a size (RFC 9162).
#[utoipa::path(get, path = "/v1/audit/proof/inclusion", tag = "audit", operation_id = "inclusionProof",
    security(("bearer" = ["sender"])),
    params(InclusionQuery),
    responses(
        (status = 200, description = "The proof.", body = InclusionProof),
        (status = 400, description = "A malformed query.", body = ErrorEnvelope),
        (status = 404, description = "No checkpoint signed yet.", body = ErrorEnvelope),
        (status = 422, description = "`proof_out_of_range`.", body = ErrorEnvelope),
    ))]
pub async fn inclusion(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Query(q): Query<InclusionQuery>,
) -> Result<Json<InclusionProof>, ServiceError> {
    let size = match q.size {
        Some(s) => s,
        None => {
            signed::latest(&state.store, &caller.tenant_id)
                .await?
                .ok_or_else(|| ServiceError::not_found("checkpoint", "latest"))?
                .size
        }
    };
    let proof = merkle::inclusion_proof(&state.store, &caller.tenant_id, q.index, size)
        .await
        .map_err(proof_error)?;
    let root = merkle::root_at(&state.store, &caller.tenant_id, size)
        .await
        .map_err(proof_error)?;
    let seq = i64::try_from(q.index).unwrap_or(i64::MAX);
    let entry = audit::page(&state.store, &caller.tenant_id, seq, 1)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ServiceError::Internal(format!("entry {} is missing", q.index)))?;
    let leaf = merkle::leaf_hash(&audit::canonical_bytes(&entry));
    Ok(Json(InclusionProof {
        index: q.index,
        size,
        leaf_hash: hex::encode(leaf),
        root: hex::encode(root),
        proof: proof.iter().map(hex::encode).collect(),
        entry,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    pub from: u64,
    pub to: u64,
}

/// Proves the tree of size `to` extends the one of size `from`.
#[utoipa::path(get, path = "/v1/audit/proof/consistency", tag = "audit", operation_id = "consistencyProof",
    security(("bearer" = ["sender"])),
    params(ConsistencyQuery),
    responses(
        (status = 200, description = "The proof.", body = ConsistencyProof),
        (status = 400, description = "A malformed query.", body = ErrorEnvelope),
        (status = 422, description = "`proof_out_of_range`.", body = ErrorEnvelope),
    ))]
pub async fn consistency(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<ConsistencyProof>, ServiceError> {
    if q.from > q.to {
        return Err(ServiceError::invalid(
            "proof_out_of_range",
            format!("`from` ({}) must not exceed `to` ({})", q.from, q.to),
        ));
    }
    let proof = merkle::consistency_proof(&state.store, &caller.tenant_id, q.from, q.to)
        .await
        .map_err(proof_error)?;
    let from_root = merkle::root_at(&state.store, &caller.tenant_id, q.from)
        .await
        .map_err(proof_error)?;
    let to_root = merkle::root_at(&state.store, &caller.tenant_id, q.to)
        .await
        .map_err(proof_error)?;
    Ok(Json(ConsistencyProof {
        from: q.from,
        to: q.to,
        from_root: hex::encode(from_root),
        to_root: hex::encode(to_root),
        proof: proof.iter().map(hex::encode).collect(),
    }))
}
