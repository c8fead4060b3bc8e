//! The Merkle tree over each tenant's audit log: RFC 9162 (RFC 6962) shape,
//! stored hashes in the database, inclusion and consistency proofs.
//!
//! # Why a tree as well as the chain
//!
//! The hash chain ([`super::verify`]) shows tampering only to someone who
//! rereads the whole log. A Merkle tree lets anyone holding one signed root
//! check a single entry (an *inclusion proof*, `log₂ n` hashes) or that a
//! later root extends an earlier one without rewriting it (a *consistency
//! proof*), which is what transparency logs (Certificate Transparency, the
//! C2SP checkpoint and witness ecosystem) are built on.
//!
//! # Shape
//!
//! Leaf `i` of tenant `t`'s tree is the audit entry with `seq = i + 1`, and
//! its leaf data is exactly [`canonical_bytes`] of that entry. Hashing is
//! RFC 9162 §2.1 with SHA-256 and domain separation between leaves and
//! interior nodes — leaf hash `SHA-256(0x00 || data)`, node hash
//! `SHA-256(0x01 || left || right)` — so no leaf can pose as a subtree and
//! no two trees of different shape share a root. The hashing rules, tree
//! shape and proof algorithms are those of the `tlog_tiles` crate (a port of
//! Go's `golang.org/x/mod/sumdb/tlog`); nothing here hashes by hand. The
//! tests check them against `ct-merkle`, an independent RFC 6962
//! implementation, and against the published RFC 6962 test vectors.
//!
//! # Storage
//!
//! `merkle_hashes` holds the tlog *stored hashes*: every leaf hash and the
//! hash of every complete power-of-two subtree, about two per entry,
//! numbered by `tlog_tiles::stored_hash_index`. Any root, inclusion proof or
//! consistency proof needs only `O(log n)` of them, so proofs never reread
//! (or re-hash) the log. `merkle_heads` holds each tenant's tree size and
//! root, and its row lock serialises integration.
//!
//! # Integration is off the request path
//!
//! The audit entries themselves commit with the request that caused them
//! ([`super::append`], DESIGN.md invariant 4), so an accepted message's
//! entries are durable before the API answers. Adding them to the tree is a
//! separate step, [`integrate`], run in batches by a background task (and on
//! demand, e.g. before a checkpoint or an export): it takes the entries
//! after the tree's size, checks each one's hash and link, writes their
//! stored hashes and moves the head, in one transaction. It is idempotent
//! and safe to run from several nodes at once.
//!
//! # Offline
//!
//! [`leaf_hash`], [`verify_inclusion`], [`verify_consistency`], [`root_of`]
//! and [`TreeBuilder`] touch no database: the CLI uses them to check proofs
//! and to recompute a whole tree from an export.

use std::cell::Cell;
use std::collections::HashMap;

use sqlx::AnyConnection;
use tlog_tiles::tlog::{self, Hash, HashReader};

use super::rows;
use super::{GENESIS_HASH, canonical_bytes, entry_hash};
use crate::db::{Dialect, Store};
use crate::error::StoreError;

/// The root of the empty tree: SHA-256 of the empty string (RFC 9162
/// §2.1.1).
pub const EMPTY_ROOT: [u8; 32] = tlog::EMPTY_HASH.0;

/// Rounds of "run, fetch what was missing, rerun" before giving up: every
/// tlog function reads its hashes in one call, so two rounds are the norm.
const MAX_ROUNDS: usize = 64;

/// Stored hashes fetched per query (one query per round unless more).
const FETCH_CHUNK: usize = 1_000;

/// Stored hashes inserted per statement (3 parameters each).
const INSERT_CHUNK: usize = 500;

/// Audit entries read per round trip while integrating.
const INTEGRATE_PAGE: i64 = 1_000;

/// A tenant's tree: how many audit entries it holds and its root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    /// Entries in the tree: entries `seq = 1..=size`.
    pub size: u64,
    /// The RFC 9162 root hash of those entries ([`EMPTY_ROOT`] for none).
    pub root: [u8; 32],
}

/// Why a proof or root could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The index (or, for a consistency proof, the smaller size) is not
    /// below the size it is asked against.
    #[error("index {index} is out of range for a tree of {size} entries")]
    OutOfRange { index: u64, size: u64 },
    /// The tree asked about is larger than the tenant's tree is so far
    /// (entries may exist but are not integrated yet).
    #[error("the log holds {tree} entries, not {size}")]
    BeyondTree { size: u64, tree: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a proof did not verify ([`verify_inclusion`], [`verify_consistency`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofFailure {
    /// The index (or, for a consistency proof, the smaller size) is not
    /// below the size it is checked against.
    #[error("index {index} is out of range for a tree of {size} entries")]
    OutOfRange { index: u64, size: u64 },
    #[error(
        "the inclusion proof for index {index} does not lead to the given root of a tree of {size} entries"
    )]
    Inclusion { index: u64, size: u64 },
    #[error(
        "the consistency proof does not show the tree of {from} entries to be a prefix of the tree of {to}"
    )]
    Consistency { from: u64, to: u64 },
}

mod pure;
use pure::from_hashes;
pub use pure::{
    TreeBuilder, entry_leaf_hash, leaf_hash, root_of, verify_consistency, verify_inclusion,
};

// ---------------------------------------------------------------------------
// Database: running tlog's synchronous functions over stored hashes.

/// Stored hashes known so far, in memory, over the database's: a
/// [`HashReader`] that answers from memory and notes what it lacked, so that
/// [`run`] can fetch exactly that and try again.
#[derive(Default)]
struct Overlay {
    known: HashMap<u64, Hash>,
    missing: Cell<Vec<u64>>,
}

impl HashReader for Overlay {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog::Error> {
        let mut found = Vec::with_capacity(indexes.len());
        let mut missing = Vec::new();
        for index in indexes {
            match self.known.get(index) {
                Some(hash) => found.push(*hash),
                None => missing.push(*index),
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let mut all = self.missing.take();
        all.extend(missing);
        self.missing.set(all);
        Err(tlog::Error::IndexesNotInTree)
    }
}

impl Overlay {
    /// Fetches the stored hashes at `indexes` into memory; each must exist.
    async fn load(
        &mut self,
        conn: &mut AnyConnection,
        tenant_id: &str,
        mut indexes: Vec<u64>,
    ) -> Result<(), StoreError> {
        indexes.sort_unstable();
        indexes.dedup();
        for chunk in indexes.chunks(FETCH_CHUNK) {
            let mut sql = String::from(
                "SELECT idx, hash FROM merkle_hashes WHERE tenant_id = $1 AND idx IN (",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('$');
                sql.push_str(&i.saturating_add(2).to_string());
            }
            sql.push(')');
            // Only placeholders were added to the text.
            let mut query =
                sqlx::query_as::<_, (i64, Vec<u8>)>(sqlx::AssertSqlSafe(sql)).bind(tenant_id);
            for &index in chunk {
                query = query.bind(to_i64(index)?);
            }
            for (index, hash) in query.fetch_all(&mut *conn).await? {
                self.known.insert(to_u64(index)?, to_hash(hash)?);
            }
        }
        if let Some(index) = indexes.iter().find(|i| !self.known.contains_key(i)) {
            return Err(StoreError::corrupt(
                "merkle tree",
                format!("stored hash {index} of tenant `{tenant_id}` is missing"),
            ));
        }
        Ok(())
    }
}

/// Runs a tlog function against the stored hashes: in memory first; what
/// was missing is fetched from `merkle_hashes` in one query and the
/// function rerun, at most [`MAX_ROUNDS`] times.
async fn run<T>(
    conn: &mut AnyConnection,
    tenant_id: &str,
    overlay: &mut Overlay,
    mut f: impl FnMut(&Overlay) -> Result<T, tlog::Error>,
) -> Result<T, StoreError> {
    for _ in 0..MAX_ROUNDS {
        let result = f(overlay);
        let missing = overlay.missing.take();
        match result {
            Ok(value) => return Ok(value),
            Err(e) if missing.is_empty() => return Err(StoreError::corrupt("merkle tree", e)),
            Err(_) => overlay.load(conn, tenant_id, missing).await?,
        }
    }
    Err(StoreError::corrupt(
        "merkle tree",
        format!("stored hashes still missing after {MAX_ROUNDS} rounds"),
    ))
}

// ---------------------------------------------------------------------------
// Database: integration and proofs.

/// Adds up to `max` audit entries that are not yet in `tenant_id`'s tree
/// (those with `seq > size`), in one transaction, and returns the new head.
///
/// Locks the tenant's `merkle_heads` row (creating it on first use;
/// `FOR UPDATE` on PostgreSQL, the write lock on SQLite), so concurrent
/// runs — from several nodes too — take turns and the second finds the
/// entries already integrated. Idempotent: with nothing new it returns the
/// head unchanged.
///
/// Before extending, it checks that the stored hashes still give the
/// recorded root, and it refuses ([`StoreError::Corrupt`]) an entry whose
/// hash does not match its contents or whose `prev_hash` does not link to
/// the entry before it: an altered entry never enters the tree.
///
/// Run it off the request path, in batches: the entries are already
/// durable. Takes its own transaction, so do not call it while holding one
/// on SQLite (one pooled connection).
pub async fn integrate(store: &Store, tenant_id: &str, max: i64) -> Result<TreeHead, StoreError> {
    if max < 1 {
        return head(store, tenant_id).await;
    }
    let mut tx = store.begin().await?;
    // On error the transaction is dropped, which rolls it back.
    let head = integrate_in(&mut tx, store.dialect(), tenant_id, max).await?;
    tx.commit().await?;
    Ok(head)
}

async fn integrate_in(
    conn: &mut AnyConnection,
    dialect: Dialect,
    tenant_id: &str,
    max: i64,
) -> Result<TreeHead, StoreError> {
    sqlx::query(
        "INSERT INTO merkle_heads (tenant_id, size, root) VALUES ($1, 0, $2) \
         ON CONFLICT (tenant_id) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(EMPTY_ROOT.to_vec())
    .execute(&mut *conn)
    .await?;
    let lock = match dialect {
        Dialect::Postgres => "SELECT size, root FROM merkle_heads WHERE tenant_id = $1 FOR UPDATE",
        Dialect::Sqlite => "SELECT size, root FROM merkle_heads WHERE tenant_id = $1",
    };
    let (stored_size, stored_root): (i64, Vec<u8>) = sqlx::query_as(lock)
        .bind(tenant_id)
        .fetch_one(&mut *conn)
        .await?;
    let start = to_u64(stored_size)?;
    let stored_root = to_hash(stored_root)?;

    let mut overlay = Overlay::default();
    // Also loads the hashes the next leaves combine with.
    let root = run(conn, tenant_id, &mut overlay, |r| tlog::tree_hash(start, r)).await?;
    if root != stored_root {
        return Err(StoreError::corrupt(
            "merkle head",
            format!(
                "tenant `{tenant_id}`: the stored hashes of the first {start} entries do not \
                 give the recorded root"
            ),
        ));
    }

    let mut prev_hash = if start == 0 {
        GENESIS_HASH.to_string()
    } else {
        let seq = to_i64(start)?;
        sqlx::query_scalar::<_, String>(
            "SELECT hash FROM audit_entries WHERE tenant_id = $1 AND seq = $2",
        )
        .bind(tenant_id)
        .bind(seq)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| {
            StoreError::corrupt(
                "audit entry",
                format!("entry {seq} is in the Merkle tree but not in the log"),
            )
        })?
    };

    let mut size = start;
    let mut new_hashes: Vec<(u64, Hash)> = Vec::new();
    let mut remaining = max;
    while remaining > 0 {
        let limit = remaining.min(INTEGRATE_PAGE);
        let batch = rows::page(&mut *conn, tenant_id, to_i64(size)?, i64::MAX, limit).await?;
        let got = i64::try_from(batch.len()).unwrap_or(i64::MAX);
        for row in batch {
            let entry = row.into_entry().map_err(|e| e.into_store_error())?;
            let expected = to_i64(size)?.saturating_add(1);
            if entry.seq != expected {
                return Err(StoreError::corrupt(
                    "audit entry",
                    format!("expected entry {expected} but found entry {}", entry.seq),
                ));
            }
            if entry_hash(&entry) != entry.hash {
                return Err(StoreError::corrupt(
                    "audit entry",
                    format!("entry {}: hash does not match its contents", entry.seq),
                ));
            }
            if entry.prev_hash != prev_hash {
                return Err(StoreError::corrupt(
                    "audit entry",
                    format!(
                        "entry {}: prev_hash does not match entry {}'s hash",
                        entry.seq,
                        entry.seq.saturating_sub(1)
                    ),
                ));
            }
            let leaf = tlog::record_hash(&canonical_bytes(&entry));
            let index = size;
            let hashes = run(conn, tenant_id, &mut overlay, |r| {
                tlog::stored_hashes_for_record_hash(index, leaf, r)
            })
            .await?;
            let base = tlog::stored_hash_index(0, index);
            for (offset, hash) in (0_u64..).zip(hashes) {
                let at = base.saturating_add(offset);
                overlay.known.insert(at, hash);
                new_hashes.push((at, hash));
            }
            prev_hash = entry.hash;
            size = size.saturating_add(1);
        }
        remaining = remaining.saturating_sub(got);
        if got < limit {
            break;
        }
    }
    if size == start {
        return Ok(TreeHead { size, root: root.0 });
    }

    insert_hashes(&mut *conn, tenant_id, &new_hashes).await?;
    let root = run(conn, tenant_id, &mut overlay, |r| tlog::tree_hash(size, r)).await?;
    let updated = sqlx::query(
        "UPDATE merkle_heads SET size = $2, root = $3 WHERE tenant_id = $1 AND size = $4",
    )
    .bind(tenant_id)
    .bind(to_i64(size)?)
    .bind(root.0.to_vec())
    .bind(stored_size)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(StoreError::corrupt(
            "merkle head",
            format!("tenant `{tenant_id}`: the head moved while integrating"),
        ));
    }
    Ok(TreeHead { size, root: root.0 })
}

async fn insert_hashes(
    conn: &mut AnyConnection,
    tenant_id: &str,
    hashes: &[(u64, Hash)],
) -> Result<(), StoreError> {
    for chunk in hashes.chunks(INSERT_CHUNK) {
        let mut sql = String::from("INSERT INTO merkle_hashes (tenant_id, idx, hash) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            let p = i.saturating_mul(3);
            sql.push_str(&format!(
                "(${}, ${}, ${})",
                p.saturating_add(1),
                p.saturating_add(2),
                p.saturating_add(3)
            ));
        }
        // Only placeholders were added to the text.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for &(index, hash) in chunk {
            query = query
                .bind(tenant_id)
                .bind(to_i64(index)?)
                .bind(hash.0.to_vec());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// `tenant_id`'s tree as last integrated: size 0 and [`EMPTY_ROOT`] before
/// the first [`integrate`].
pub async fn head(store: &Store, tenant_id: &str) -> Result<TreeHead, StoreError> {
    let mut conn = store.pool().acquire().await?;
    head_in(&mut conn, tenant_id).await
}

/// [`head`] over a connection or inside a transaction (`&mut tx`), e.g. to
/// sign a checkpoint of the head in the same transaction that reads it.
pub async fn head_in(conn: &mut AnyConnection, tenant_id: &str) -> Result<TreeHead, StoreError> {
    let row: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT size, root FROM merkle_heads WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_optional(conn)
            .await?;
    match row {
        None => Ok(TreeHead {
            size: 0,
            root: EMPTY_ROOT,
        }),
        Some((size, root)) => Ok(TreeHead {
            size: to_u64(size)?,
            root: to_hash(root)?.0,
        }),
    }
}

/// The inclusion proof of leaf `index` (the entry with `seq = index + 1`)
/// in `tenant_id`'s tree of `size` entries, leaf to root (RFC 9162
/// §2.1.3.1), from stored hashes only. `size` may be any size up to the
/// current head's, e.g. that of a checkpoint the asker holds.
pub async fn inclusion_proof(
    store: &Store,
    tenant_id: &str,
    index: u64,
    size: u64,
) -> Result<Vec<[u8; 32]>, ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange { index, size });
    }
    let mut conn = store.pool().acquire().await.map_err(StoreError::from)?;
    within_tree(&mut conn, tenant_id, size).await?;
    let mut overlay = Overlay::default();
    let proof = run(&mut conn, tenant_id, &mut overlay, |r| {
        tlog::prove_record(size, index, r)
    })
    .await?;
    Ok(from_hashes(proof))
}

/// The consistency proof that `tenant_id`'s tree of `from` entries is a
/// prefix of its tree of `to` entries (RFC 9162 §2.1.4.1), from stored
/// hashes only. Empty when `from` is 0 or equals `to`.
pub async fn consistency_proof(
    store: &Store,
    tenant_id: &str,
    from: u64,
    to: u64,
) -> Result<Vec<[u8; 32]>, ProofError> {
    if from > to {
        return Err(ProofError::OutOfRange {
            index: from,
            size: to,
        });
    }
    let mut conn = store.pool().acquire().await.map_err(StoreError::from)?;
    within_tree(&mut conn, tenant_id, to).await?;
    if from == 0 {
        return Ok(Vec::new());
    }
    let mut overlay = Overlay::default();
    let proof = run(&mut conn, tenant_id, &mut overlay, |r| {
        tlog::prove_tree(to, from, r)
    })
    .await?;
    Ok(from_hashes(proof))
}

/// The root of `tenant_id`'s tree of its first `size` entries, from stored
/// hashes only ([`EMPTY_ROOT`] for 0).
pub async fn root_at(store: &Store, tenant_id: &str, size: u64) -> Result<[u8; 32], ProofError> {
    let mut conn = store.pool().acquire().await.map_err(StoreError::from)?;
    within_tree(&mut conn, tenant_id, size).await?;
    let mut overlay = Overlay::default();
    let root = run(&mut conn, tenant_id, &mut overlay, |r| {
        tlog::tree_hash(size, r)
    })
    .await?;
    Ok(root.0)
}

/// Refuses a size beyond the tenant's current tree.
async fn within_tree(
    conn: &mut AnyConnection,
    tenant_id: &str,
    size: u64,
) -> Result<(), ProofError> {
    let tree = head_in(conn, tenant_id).await?.size;
    if size > tree {
        return Err(ProofError::BeyondTree { size, tree });
    }
    Ok(())
}

fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::corrupt("merkle tree", format!("{n} is too large")))
}

fn to_u64(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::corrupt("merkle tree", format!("{n} is negative")))
}

fn to_hash(bytes: Vec<u8>) -> Result<Hash, StoreError> {
    let len = bytes.len();
    <[u8; 32]>::try_from(bytes).map(Hash).map_err(|_| {
        StoreError::corrupt(
            "merkle tree",
            format!("a stored hash is {len} bytes, not 32"),
        )
    })
}
