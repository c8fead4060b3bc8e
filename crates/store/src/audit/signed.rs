//! Signed checkpoints of a tenant's Merkle log, in the C2SP formats that
//! transparency logs share: a [tlog-checkpoint] body (origin, tree size,
//! base64 root) inside a [signed-note] with an Ed25519 signature. Anyone
//! holding the log's verifier key can check a checkpoint, an inclusion proof
//! against it, and that a later checkpoint extends it (a witness).
//!
//! The origin names the deployment and the tenant (`{deployment}/audit/{tenant}`)
//! and is also the signing key's name, as the checkpoint spec recommends.
//! The key is the tenant's checkpoint key from the keyring.
//!
//! [tlog-checkpoint]: https://c2sp.org/tlog-checkpoint
//! [signed-note]: https://c2sp.org/signed-note

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use signed_note::{Note, StandardSigner, StandardVerifier, VerifierList};
use sqlx::Row;
use tlog_tiles::{Checkpoint, Hash};

use crate::audit::merkle;
use crate::db::Store;
use crate::error::StoreError;

/// The signature algorithm byte of Ed25519 in signed notes.
const ALG_ED25519: u8 = 1;

/// A log's identity in checkpoints: `{deployment}/audit/{tenant_id}`.
pub fn origin(deployment: &str, tenant_id: &str) -> String {
    format!("{deployment}/audit/{tenant_id}")
}

/// The verifier key others use to check this log's checkpoints, in the
/// signed-note encoding `name+id+base64(alg||public key)`.
pub fn verifier_key(origin: &str, key: &SigningKey) -> String {
    let public = public_key_bytes(key);
    format!(
        "{origin}+{:08x}+{}",
        signed_note::key_id(origin, &public),
        STANDARD.encode(&public)
    )
}

fn public_key_bytes(key: &SigningKey) -> Vec<u8> {
    let mut public = vec![ALG_ED25519];
    public.extend_from_slice(&key.verifying_key().to_bytes());
    public
}

/// Why a checkpoint note was refused.
#[derive(Debug, thiserror::Error)]
pub enum NoteFailure {
    #[error("the checkpoint note is malformed: {0}")]
    Malformed(String),
    #[error("the verifier key `{key}` is malformed")]
    BadVerifierKey { key: String },
    #[error("no trusted key signed this checkpoint (or a signature does not verify): {0}")]
    Unverified(String),
    #[error("the checkpoint is for log `{found}`, not `{expected}`")]
    WrongOrigin { expected: String, found: String },
}

/// A checkpoint whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedCheckpoint {
    pub origin: String,
    pub size: u64,
    pub root: [u8; 32],
}

/// Signs the checkpoint (origin, size, root) with `key`.
pub fn sign(
    origin: &str,
    size: u64,
    root: [u8; 32],
    key: &SigningKey,
) -> Result<String, NoteFailure> {
    let body = Checkpoint::new(origin, size, Hash(root), "")
        .map_err(|e| NoteFailure::Malformed(e.to_string()))?
        .to_bytes();
    let mut secret = vec![ALG_ED25519];
    secret.extend_from_slice(&key.to_bytes());
    let skey = format!(
        "PRIVATE+KEY+{origin}+{:08x}+{}",
        signed_note::key_id(origin, &public_key_bytes(key)),
        STANDARD.encode(&secret)
    );
    let signer =
        StandardSigner::new(&skey).map_err(|e| NoteFailure::Malformed(format!("signer: {e}")))?;
    let mut note = Note::new(&body, &[]).map_err(|e| NoteFailure::Malformed(e.to_string()))?;
    note.add_sigs(&[&signer])
        .map_err(|e| NoteFailure::Malformed(e.to_string()))?;
    String::from_utf8(note.to_bytes()).map_err(|e| NoteFailure::Malformed(e.to_string()))
}

/// Verifies a checkpoint note against trusted verifier keys, and that it is
/// for `expected_origin` when given.
pub fn open(
    note: &str,
    trusted: &[String],
    expected_origin: Option<&str>,
) -> Result<OpenedCheckpoint, NoteFailure> {
    let mut verifiers: Vec<Box<dyn signed_note::Verifier>> = Vec::new();
    for key in trusted {
        verifiers
            .push(Box::new(StandardVerifier::new(key).map_err(|_| {
                NoteFailure::BadVerifierKey { key: key.clone() }
            })?));
    }
    let parsed =
        Note::from_bytes(note.as_bytes()).map_err(|e| NoteFailure::Malformed(e.to_string()))?;
    parsed
        .verify(&VerifierList::new(verifiers))
        .map_err(|e| NoteFailure::Unverified(e.to_string()))?;
    let cp =
        Checkpoint::from_bytes(parsed.text()).map_err(|e| NoteFailure::Malformed(e.to_string()))?;
    if let Some(expected) = expected_origin
        && cp.origin() != expected
    {
        return Err(NoteFailure::WrongOrigin {
            expected: expected.to_string(),
            found: cp.origin().to_string(),
        });
    }
    Ok(OpenedCheckpoint {
        origin: cp.origin().to_string(),
        size: cp.size(),
        root: cp.hash().0,
    })
}

/// A signed checkpoint as stored and served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    pub size: u64,
    /// The root, hex.
    pub root: String,
    /// The whole signed note, as text.
    pub note: String,
    pub at: i64,
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<SignedCheckpoint, StoreError> {
    let size: i64 = row.try_get("size")?;
    let root: Vec<u8> = row.try_get("root")?;
    Ok(SignedCheckpoint {
        size: u64::try_from(size).map_err(|_| StoreError::corrupt("checkpoint size", size))?,
        root: hex::encode(root),
        note: row.try_get("note")?,
        at: row.try_get("at")?,
    })
}

/// Brings the tenant's tree up to date and signs a checkpoint of its head,
/// unless that head is already signed (or the log is empty). Returns the
/// new checkpoint.
pub async fn sign_head(
    store: &Store,
    tenant_id: &str,
    origin: &str,
    key: &SigningKey,
    at: i64,
) -> Result<Option<SignedCheckpoint>, StoreError> {
    let head = merkle::integrate(store, tenant_id, 100_000).await?;
    if head.size == 0 {
        return Ok(None);
    }
    if latest(store, tenant_id)
        .await?
        .is_some_and(|c| c.size >= head.size)
    {
        return Ok(None);
    }
    let note = sign(origin, head.size, head.root, key)
        .map_err(|e| StoreError::corrupt("checkpoint", e))?;
    let size = i64::try_from(head.size).map_err(|_| StoreError::corrupt("tree size", head.size))?;
    let r = sqlx::query(
        "INSERT INTO merkle_checkpoints (tenant_id, size, root, note, at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, size) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(size)
    .bind(head.root.to_vec())
    .bind(&note)
    .bind(at)
    .execute(store.pool())
    .await?;
    if r.rows_affected() == 0 {
        return Ok(None);
    }
    Ok(Some(SignedCheckpoint {
        size: head.size,
        root: hex::encode(head.root),
        note,
        at,
    }))
}

/// The latest signed checkpoint of a tenant's log.
pub async fn latest(
    store: &Store,
    tenant_id: &str,
) -> Result<Option<SignedCheckpoint>, StoreError> {
    let row = sqlx::query(
        "SELECT size, root, note, at FROM merkle_checkpoints WHERE tenant_id = $1 ORDER BY size DESC LIMIT 1",
    )
    .bind(tenant_id)
    .fetch_optional(store.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every signed checkpoint of a tenant's log, smallest first.
pub async fn all(store: &Store, tenant_id: &str) -> Result<Vec<SignedCheckpoint>, StoreError> {
    let rows = sqlx::query(
        "SELECT size, root, note, at FROM merkle_checkpoints WHERE tenant_id = $1 ORDER BY size",
    )
    .bind(tenant_id)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// How many entries the log holds beyond its latest signed checkpoint.
pub async fn unsigned_entries(store: &Store, tenant_id: &str) -> Result<i64, StoreError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COALESCE((SELECT MAX(seq) FROM audit_entries WHERE tenant_id = $1), 0) \
         - COALESCE((SELECT MAX(size) FROM merkle_checkpoints WHERE tenant_id = $1), 0)",
    )
    .bind(tenant_id)
    .fetch_one(store.pool())
    .await?;
    Ok(n)
}

/// The log indexes and kinds of the entries about `subject` (a message id,
/// a device id): what a sender can ask inclusion proofs for.
pub async fn indexes_about(
    conn: &mut sqlx::AnyConnection,
    tenant_id: &str,
    subject: &str,
) -> Result<Vec<(u64, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, kind FROM audit_entries WHERE tenant_id = $1 AND subject = $2 ORDER BY seq",
    )
    .bind(tenant_id)
    .bind(subject)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let seq: i64 = r.try_get("seq")?;
            Ok((
                u64::try_from(seq - 1).unwrap_or_default(),
                r.try_get("kind")?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answer from the signed-note specification's example
    /// (c2sp.org/signed-note and Go's golang.org/x/mod/sumdb/note docs): the
    /// PeterNeumann key signs the quoted text to exactly this signature.
    #[test]
    fn signed_note_known_answer() {
        let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
        let note = format!(
            "{text}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
        );
        let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW".to_string();
        let parsed = Note::from_bytes(note.as_bytes()).unwrap();
        parsed
            .verify(&VerifierList::new(vec![Box::new(
                StandardVerifier::new(&vkey).unwrap(),
            )]))
            .unwrap();
        let skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
        let signer = StandardSigner::new(skey).unwrap();
        let mut fresh = Note::new(text.as_bytes(), &[]).unwrap();
        fresh.add_sigs(&[&signer]).unwrap();
        assert_eq!(String::from_utf8(fresh.to_bytes()).unwrap(), note);
    }

    #[test]
    fn checkpoints_sign_and_open_only_under_the_trusted_key_and_origin() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let origin = origin("ladder.test", "tnt_1");
        let note = sign(&origin, 42, [9; 32], &key).unwrap();
        assert!(note.starts_with("ladder.test/audit/tnt_1\n42\n"), "{note}");
        let vkey = verifier_key(&origin, &key);
        let opened = open(&note, std::slice::from_ref(&vkey), Some(&origin)).unwrap();
        assert_eq!((opened.size, opened.root), (42, [9; 32]));
        let wrong = verifier_key(&origin, &other);
        assert!(matches!(
            open(&note, &[wrong], None),
            Err(NoteFailure::Unverified(_))
        ));
        assert!(matches!(
            open(
                &note,
                std::slice::from_ref(&vkey),
                Some("ladder.test/audit/tnt_2")
            ),
            Err(NoteFailure::WrongOrigin { .. })
        ));
        let forged = note.replacen("\n42\n", "\n43\n", 1);
        assert!(open(&forged, &[vkey], None).is_err());
    }
}
