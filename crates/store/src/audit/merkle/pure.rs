//! The Merkle tree without a database: leaf hashing, proof checking, and an
//! in-memory tree for offline verification (an export, a proof bundle).

use tlog_tiles::tlog::{self, Hash, HashReader};

use super::{EMPTY_ROOT, ProofFailure};
use crate::audit::{AuditEntry, canonical_bytes};

// ---------------------------------------------------------------------------
// Pure: hashing and verification.

/// The RFC 9162 leaf hash of `data`: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> [u8; 32] {
    tlog::record_hash(data).0
}

/// The leaf hash of an audit entry: [`leaf_hash`] of [`canonical_bytes`].
/// The entry with `seq` is leaf `seq - 1`.
pub fn entry_leaf_hash(entry: &AuditEntry) -> [u8; 32] {
    leaf_hash(&canonical_bytes(entry))
}

/// Checks that `proof` shows the leaf with hash `leaf_hash` at `index` to be
/// in the tree of `size` leaves whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: [u8; 32],
    index: u64,
    size: u64,
    proof: &[[u8; 32]],
    root: [u8; 32],
) -> Result<(), ProofFailure> {
    if index >= size {
        return Err(ProofFailure::OutOfRange { index, size });
    }
    tlog::check_record(&to_hashes(proof), size, Hash(root), index, Hash(leaf_hash))
        .map_err(|_| ProofFailure::Inclusion { index, size })
}

/// Checks that `proof` shows the tree of `from` leaves with root `from_root`
/// to be a prefix of the tree of `to` leaves with root `to_root` (RFC 9162
/// §2.1.4.2). Every tree extends the empty one (`from = 0`, root
/// [`EMPTY_ROOT`], empty proof); a tree extends itself only with an empty
/// proof and equal roots.
pub fn verify_consistency(
    from: u64,
    from_root: [u8; 32],
    to: u64,
    to_root: [u8; 32],
    proof: &[[u8; 32]],
) -> Result<(), ProofFailure> {
    if from > to {
        return Err(ProofFailure::OutOfRange {
            index: from,
            size: to,
        });
    }
    let failure = ProofFailure::Consistency { from, to };
    if from == 0 {
        let to_ok = to > 0 || to_root == EMPTY_ROOT;
        return if from_root == EMPTY_ROOT && proof.is_empty() && to_ok {
            Ok(())
        } else {
            Err(failure)
        };
    }
    tlog::check_tree(&to_hashes(proof), to, Hash(to_root), from, Hash(from_root))
        .map_err(|_| failure)
}

/// The size and root of the tree over `leaves` (leaf hashes, in order).
pub fn root_of(leaves: impl IntoIterator<Item = [u8; 32]>) -> (u64, [u8; 32]) {
    let mut builder = TreeBuilder::new();
    for leaf in leaves {
        builder.push(leaf);
    }
    (builder.len(), builder.root())
}

/// A tree built in memory, leaf by leaf, with the same stored hashes the
/// database keeps: any earlier root and any proof stay available. About 64
/// bytes per leaf.
///
/// ```
/// use ladder_store::audit::merkle::{TreeBuilder, leaf_hash, verify_inclusion};
/// let mut tree = TreeBuilder::new();
/// for data in [&b"a"[..], b"b", b"c"] {
///     tree.push(leaf_hash(data));
/// }
/// let proof = tree.inclusion_proof(1, 3).unwrap();
/// assert!(verify_inclusion(leaf_hash(b"b"), 1, 3, &proof, tree.root()).is_ok());
/// ```
#[derive(Debug, Clone, Default)]
pub struct TreeBuilder {
    /// Stored hashes, `tlog::stored_hash_index` order; always exactly
    /// `stored_hash_count(size)` of them.
    hashes: Vec<Hash>,
    size: u64,
}

impl TreeBuilder {
    pub fn new() -> TreeBuilder {
        TreeBuilder::default()
    }

    /// Leaves pushed so far.
    pub fn len(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Appends a leaf hash (see [`leaf_hash`], [`entry_leaf_hash`]) and
    /// returns its index.
    pub fn push(&mut self, leaf_hash: [u8; 32]) -> u64 {
        let index = self.size;
        let reader = MemReader(&self.hashes);
        if let Ok(new) = tlog::stored_hashes_for_record_hash(index, Hash(leaf_hash), &reader) {
            self.hashes.extend(new);
        }
        self.size = index.saturating_add(1);
        index
    }

    /// The root of all leaves pushed so far ([`EMPTY_ROOT`] for none).
    pub fn root(&self) -> [u8; 32] {
        self.root_at(self.size).unwrap_or(EMPTY_ROOT)
    }

    /// The root of the first `size` leaves, if that many were pushed.
    pub fn root_at(&self, size: u64) -> Option<[u8; 32]> {
        if size > self.size {
            return None;
        }
        tlog::tree_hash(size, &MemReader(&self.hashes))
            .ok()
            .map(|h| h.0)
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size`
    /// leaves; `None` unless `index < size <= len()`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Option<Vec<[u8; 32]>> {
        if index >= size || size > self.size {
            return None;
        }
        tlog::prove_record(size, index, &MemReader(&self.hashes))
            .ok()
            .map(from_hashes)
    }

    /// The consistency proof from the first `from` leaves to the first `to`;
    /// `None` unless `from <= to <= len()`. Empty when `from` is 0 or `to`.
    pub fn consistency_proof(&self, from: u64, to: u64) -> Option<Vec<[u8; 32]>> {
        if from > to || to > self.size {
            return None;
        }
        if from == 0 {
            return Some(Vec::new());
        }
        tlog::prove_tree(to, from, &MemReader(&self.hashes))
            .ok()
            .map(from_hashes)
    }
}

/// A [`HashReader`] over a [`TreeBuilder`]'s stored hashes. It is asked only
/// for hashes of leaves already pushed, which it always holds; were it asked
/// for another, it would answer a zero hash, giving a root that matches
/// nothing (fail closed) rather than a panic.
struct MemReader<'a>(&'a [Hash]);

impl HashReader for MemReader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog::Error> {
        Ok(indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.0.get(i))
                    .copied()
                    .unwrap_or_default()
            })
            .collect())
    }
}

pub(super) fn to_hashes(proof: &[[u8; 32]]) -> Vec<Hash> {
    proof.iter().copied().map(Hash).collect()
}

pub(super) fn from_hashes(proof: Vec<Hash>) -> Vec<[u8; 32]> {
    proof.into_iter().map(|h| h.0).collect()
}
