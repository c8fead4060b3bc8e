//! Signed checkpoints: an Ed25519 signature over a tenant's head (`seq`,
//! `hash`) at a moment. A verifier that trusts the key detects any later
//! rewrite, truncation or rollback of the entries up to that head.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sqlx::AnyConnection;

use super::chain::{GENESIS_HASH, Verifier};
use super::rows;
use crate::db::Store;
use crate::error::StoreError;

/// A signed statement that `tenant_id`'s log had `head_hash` as the hash of
/// entry `seq` at time `at`. Serialised as it is exported, in
/// `checkpoints.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub tenant_id: String,
    pub seq: i64,
    pub head_hash: String,
    /// When it was signed, Unix seconds.
    pub at: i64,
    /// The signing key's name in the keyring, for people; trust is decided
    /// on `public_key`.
    pub key_id: String,
    /// Hex Ed25519 public key (32 bytes).
    pub public_key: String,
    /// Hex Ed25519 signature (64 bytes) over [`checkpoint_signed_bytes`].
    pub signature: String,
}

/// The bytes a checkpoint's signature covers:
/// `"ladder audit checkpoint v1\n{tenant_id}\n{seq}\n{head_hash}\n{at}\n"`.
pub fn checkpoint_signed_bytes(tenant_id: &str, seq: i64, head_hash: &str, at: i64) -> Vec<u8> {
    format!("ladder audit checkpoint v1\n{tenant_id}\n{seq}\n{head_hash}\n{at}\n").into_bytes()
}

/// Signs a head. Pure: [`checkpoint`] stores what this returns.
pub fn sign_checkpoint(
    tenant_id: &str,
    seq: i64,
    head_hash: &str,
    at: i64,
    key_id: &str,
    key: &SigningKey,
) -> Checkpoint {
    let signature = key.sign(&checkpoint_signed_bytes(tenant_id, seq, head_hash, at));
    Checkpoint {
        tenant_id: tenant_id.to_string(),
        seq,
        head_hash: head_hash.to_string(),
        at,
        key_id: key_id.to_string(),
        public_key: hex::encode(key.verifying_key().to_bytes()),
        signature: hex::encode(signature.to_bytes()),
    }
}

/// Whether the checkpoint's signature verifies (strictly) under the public
/// key it carries. Which keys to trust is the verifier's business.
pub(super) fn signature_valid(cp: &Checkpoint) -> bool {
    let Ok(public) = hex::decode(&cp.public_key) else {
        return false;
    };
    let Ok(public) = <[u8; 32]>::try_from(public.as_slice()) else {
        return false;
    };
    let Ok(public) = VerifyingKey::from_bytes(&public) else {
        return false;
    };
    let Ok(signature) = hex::decode(&cp.signature) else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(&signature) else {
        return false;
    };
    let signed = checkpoint_signed_bytes(&cp.tenant_id, cp.seq, &cp.head_hash, cp.at);
    public.verify_strict(&signed, &signature).is_ok()
}

/// Signs and stores a checkpoint of `tenant_id`'s current head. `None` when
/// the log is empty or its head is already checkpointed (also when another
/// node checkpointed the same head first).
///
/// Before signing, the entries since the previous checkpoint are verified
/// (hashes and links, up to the head row), so a checkpoint never vouches for
/// a chain that is already broken: that is refused as
/// [`StoreError::Corrupt`] naming the break.
pub async fn checkpoint(
    store: &Store,
    tenant_id: &str,
    at: i64,
    key_id: &str,
    key: &SigningKey,
) -> Result<Option<Checkpoint>, StoreError> {
    let mut tx = store.begin().await?;
    let conn: &mut AnyConnection = &mut tx;
    let Some((head_seq, head_hash)) = rows::head(&mut *conn, tenant_id).await? else {
        return Ok(None);
    };
    if head_seq < 1 {
        return Ok(None);
    }
    let latest = latest_in(&mut *conn, tenant_id).await?;
    let (from_seq, from_hash) = match &latest {
        Some(cp) if cp.seq == head_seq => return Ok(None),
        Some(cp) if cp.seq > head_seq => {
            return Err(StoreError::corrupt(
                "audit chain",
                format!(
                    "checkpoint at {} but the tenant head is at {head_seq} (truncated or rolled back)",
                    cp.seq
                ),
            ));
        }
        Some(cp) => (cp.seq, cp.head_hash.clone()),
        None => (0, GENESIS_HASH.to_string()),
    };
    verify_tail(
        &mut *conn, tenant_id, from_seq, from_hash, head_seq, &head_hash,
    )
    .await?;
    let cp = sign_checkpoint(tenant_id, head_seq, &head_hash, at, key_id, key);
    let inserted = sqlx::query(
        "INSERT INTO audit_checkpoints \
         (tenant_id, seq, head_hash, at, key_id, public_key, signature) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, seq) DO NOTHING",
    )
    .bind(cp.tenant_id.as_str())
    .bind(cp.seq)
    .bind(cp.head_hash.as_str())
    .bind(cp.at)
    .bind(cp.key_id.as_str())
    .bind(cp.public_key.as_str())
    .bind(cp.signature.as_str())
    .execute(&mut *conn)
    .await?;
    tx.commit().await?;
    Ok((inserted.rows_affected() == 1).then_some(cp))
}

/// Checks entries `from_seq+1 ..= head_seq` chain on from `from_hash` and
/// end at the head row's hash.
async fn verify_tail(
    conn: &mut AnyConnection,
    tenant_id: &str,
    from_seq: i64,
    from_hash: String,
    head_seq: i64,
    head_hash: &str,
) -> Result<(), StoreError> {
    let broken = |reason: String| StoreError::corrupt("audit chain", reason);
    let mut verifier = Verifier::resume(&[], None, from_seq, from_hash);
    let mut after = from_seq;
    while after < head_seq {
        let batch = rows::page(&mut *conn, tenant_id, after, head_seq, 1_000).await?;
        if batch.is_empty() {
            break;
        }
        for row in batch {
            let entry = row.into_entry().map_err(|e| e.into_store_error())?;
            after = entry.seq;
            verifier.push(&entry).map_err(|e| broken(e.to_string()))?;
        }
    }
    let report = verifier.finish().map_err(|e| broken(e.to_string()))?;
    match &report.head {
        Some((seq, hash)) if *seq == head_seq && hash == head_hash => Ok(()),
        head => Err(broken(format!(
            "the log ends at entry {} but the tenant head records entry {head_seq}",
            head.as_ref().map_or(from_seq, |(seq, _)| *seq)
        ))),
    }
}

type CheckpointTuple = (String, i64, String, i64, String, String, String);

fn from_tuple(
    (tenant_id, seq, head_hash, at, key_id, public_key, signature): CheckpointTuple,
) -> Checkpoint {
    Checkpoint {
        tenant_id,
        seq,
        head_hash,
        at,
        key_id,
        public_key,
        signature,
    }
}

/// All checkpoints of a tenant, by seq.
pub(super) async fn load(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<Checkpoint>, StoreError> {
    let rows: Vec<CheckpointTuple> = sqlx::query_as(
        "SELECT tenant_id, seq, head_hash, at, key_id, public_key, signature \
         FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY seq",
    )
    .bind(tenant_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(from_tuple).collect())
}

async fn latest_in(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Option<Checkpoint>, StoreError> {
    let row: Option<CheckpointTuple> = sqlx::query_as(
        "SELECT tenant_id, seq, head_hash, at, key_id, public_key, signature \
         FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(tenant_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(from_tuple))
}

/// All checkpoints of `tenant_id`, oldest first.
pub async fn checkpoints(store: &Store, tenant_id: &str) -> Result<Vec<Checkpoint>, StoreError> {
    let mut conn = store.pool().acquire().await?;
    load(&mut conn, tenant_id).await
}

/// The newest checkpoint of `tenant_id`, if any.
pub async fn latest_checkpoint(
    store: &Store,
    tenant_id: &str,
) -> Result<Option<Checkpoint>, StoreError> {
    let mut conn = store.pool().acquire().await?;
    latest_in(&mut conn, tenant_id).await
}

/// How many entries `tenant_id` has appended since its newest checkpoint
/// (all of them if there is none), so the server can checkpoint every N.
pub async fn entries_since_checkpoint(store: &Store, tenant_id: &str) -> Result<i64, StoreError> {
    let mut conn = store.pool().acquire().await?;
    let head = rows::head(&mut conn, tenant_id)
        .await?
        .map_or(0, |(seq, _)| seq);
    let last = latest_in(&mut conn, tenant_id)
        .await?
        .map_or(0, |cp| cp.seq);
    Ok(head.saturating_sub(last).max(0))
}
