#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The audit log's Merkle tree: against `ct-merkle` (an independent RFC 6962
//! implementation) over many tree sizes, against the published RFC 6962
//! test vectors, and stored in real databases — SQLite always, PostgreSQL
//! when `LADDER_TEST_POSTGRES_URL` is set (each test in a fresh schema).

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use ladder_store::audit::merkle::{
    self, EMPTY_ROOT, ProofError, ProofFailure, TreeBuilder, TreeHead, entry_leaf_hash, leaf_hash,
    root_of, verify_consistency, verify_inclusion,
};
use ladder_store::audit::{self, AuditEntry, AuditEvent, canonical_bytes};
use ladder_store::{Dialect, Store, StoreError};
use serde_json::json;
use sha2::Sha256;

// ---------------------------------------------------------------------------
// Against ct-merkle.

type CtTree = MemoryBackedTree<Sha256, Vec<u8>>;

/// Leaf data of varying length, the empty string included.
fn data(i: u64) -> Vec<u8> {
    (0..i % 37)
        .map(|k| (i.wrapping_mul(31) ^ k) as u8)
        .collect()
}

fn ct_root(root: [u8; 32], size: u64) -> RootHash<Sha256> {
    RootHash::new(root.into(), size)
}

fn concat(proof: &[[u8; 32]]) -> Vec<u8> {
    proof.iter().flatten().copied().collect()
}

fn split(bytes: &[u8]) -> Vec<[u8; 32]> {
    assert_eq!(bytes.len() % 32, 0);
    bytes
        .chunks(32)
        .map(|c| <[u8; 32]>::try_from(c).unwrap())
        .collect()
}

/// Indexes worth proving in a tree of `size`: all of them for small trees,
/// the edges, powers of two around them and a spread for large ones.
fn sample(size: u64) -> Vec<u64> {
    if size <= 70 {
        return (0..size).collect();
    }
    let mut out: Vec<u64> = vec![0, 1, size / 2, size - 2, size - 1];
    let mut p = 1;
    while p < size {
        out.extend([p - 1, p, (p + 1).min(size - 1)]);
        p *= 2;
    }
    out.extend((0..size).step_by(97));
    out.sort_unstable();
    out.dedup();
    out.retain(|&i| i < size);
    out
}

fn check_against_ct(ct: &CtTree, ours: &TreeBuilder, size: u64) {
    assert_eq!(ct.len(), size);
    assert_eq!(ours.len(), size);
    let root = ours.root();
    let ct_current = ct.root();
    assert_eq!(
        ct_current.as_bytes().as_slice(),
        root.as_slice(),
        "root of {size}"
    );
    assert_eq!(ours.root_at(size), Some(root));

    for index in sample(size) {
        let leaf_data = ct.get(usize::try_from(index).unwrap()).unwrap();
        let leaf = leaf_hash(leaf_data);
        let our_proof = ours.inclusion_proof(index, size).unwrap();
        let their_proof = ct.prove_inclusion(usize::try_from(index).unwrap());
        assert_eq!(
            concat(&our_proof),
            their_proof.as_bytes(),
            "inclusion proof of {index} in {size}"
        );
        // Ours, checked by ct-merkle.
        ct_current
            .verify_inclusion(
                leaf_data,
                index,
                &InclusionProof::<Sha256>::try_from_bytes(concat(&our_proof)).unwrap(),
            )
            .unwrap();
        // Theirs, checked by ours.
        verify_inclusion(leaf, index, size, &split(their_proof.as_bytes()), root).unwrap();
        // And a wrong leaf, index or root does not verify.
        let other = leaf_hash(b"not this leaf");
        assert_eq!(
            verify_inclusion(other, index, size, &our_proof, root),
            Err(ProofFailure::Inclusion { index, size })
        );
        if size > 1 {
            let wrong = (index + 1) % size;
            assert!(verify_inclusion(leaf, wrong, size, &our_proof, root).is_err());
        }
        assert!(verify_inclusion(leaf, index, size, &our_proof, EMPTY_ROOT).is_err());
    }

    for from in sample(size).into_iter().map(|i| i + 1) {
        let from_root = ours.root_at(from).unwrap();
        let our_proof = ours.consistency_proof(from, size).unwrap();
        let their_proof = ct.prove_consistency(usize::try_from(size - from).unwrap());
        assert_eq!(
            concat(&our_proof),
            their_proof.as_bytes(),
            "consistency proof {from} -> {size}"
        );
        ct_current
            .verify_consistency(
                &ct_root(from_root, from),
                &ConsistencyProof::<Sha256>::try_from_bytes(concat(&our_proof)).unwrap(),
            )
            .unwrap();
        verify_consistency(from, from_root, size, root, &split(their_proof.as_bytes())).unwrap();
        if from < size {
            assert_eq!(
                verify_consistency(from, root, size, root, &our_proof),
                Err(ProofFailure::Consistency { from, to: size }),
                "a root of {size} posing as the root of {from}"
            );
        }
        if !our_proof.is_empty() {
            let mut bent = our_proof.clone();
            bent[0][0] ^= 1;
            assert!(verify_consistency(from, from_root, size, root, &bent).is_err());
        }
    }
}

#[test]
fn tree_builder_agrees_with_ct_merkle() {
    let mut ct = CtTree::new();
    let mut ours = TreeBuilder::new();
    assert_eq!(ours.root(), EMPTY_ROOT);
    assert_eq!(ct.root().as_bytes().as_slice(), EMPTY_ROOT.as_slice());
    for i in 0..1000_u64 {
        let d = data(i);
        ct.push(d.clone());
        assert_eq!(ours.push(leaf_hash(&d)), i);
        let size = i + 1;
        if size <= 70 || matches!(size, 127 | 128 | 129 | 255 | 256 | 257 | 1000) {
            check_against_ct(&ct, &ours, size);
        }
    }
    // Every earlier root is still available, and root_of agrees.
    let mut again = CtTree::new();
    for size in 1..=300_u64 {
        again.push(data(size - 1));
        assert_eq!(
            again.root().as_bytes().as_slice(),
            ours.root_at(size).unwrap().as_slice()
        );
    }
    assert_eq!(
        root_of((0..1000).map(|i| leaf_hash(&data(i)))),
        (1000, ours.root())
    );
    assert_eq!(root_of([]), (0, EMPTY_ROOT));
}

#[test]
fn tree_builder_refuses_out_of_range() {
    let mut tree = TreeBuilder::new();
    for i in 0..5 {
        tree.push(leaf_hash(&data(i)));
    }
    assert_eq!(tree.root_at(0), Some(EMPTY_ROOT));
    assert_eq!(tree.root_at(6), None);
    assert_eq!(tree.inclusion_proof(5, 5), None);
    assert_eq!(tree.inclusion_proof(0, 6), None);
    assert_eq!(tree.consistency_proof(3, 2), None);
    assert_eq!(tree.consistency_proof(3, 6), None);
    assert_eq!(tree.consistency_proof(0, 5), Some(Vec::new()));
    assert_eq!(tree.consistency_proof(5, 5), Some(Vec::new()));
}

#[test]
fn verification_edge_cases() {
    let mut tree = TreeBuilder::new();
    for i in 0..9 {
        tree.push(leaf_hash(&data(i)));
    }
    let root = tree.root();
    // Out of range.
    assert_eq!(
        verify_inclusion(leaf_hash(&data(0)), 9, 9, &[], root),
        Err(ProofFailure::OutOfRange { index: 9, size: 9 })
    );
    assert_eq!(
        verify_consistency(10, root, 9, root, &[]),
        Err(ProofFailure::OutOfRange { index: 10, size: 9 })
    );
    // From the empty tree: only the empty root and an empty proof.
    verify_consistency(0, EMPTY_ROOT, 9, root, &[]).unwrap();
    verify_consistency(0, EMPTY_ROOT, 0, EMPTY_ROOT, &[]).unwrap();
    assert!(verify_consistency(0, root, 9, root, &[]).is_err());
    assert!(verify_consistency(0, EMPTY_ROOT, 9, root, &[root]).is_err());
    assert!(verify_consistency(0, EMPTY_ROOT, 0, root, &[]).is_err());
    // A tree is consistent with itself only with an empty proof.
    verify_consistency(9, root, 9, root, &[]).unwrap();
    assert!(verify_consistency(9, root, 9, root, &[root]).is_err());
    assert!(verify_consistency(9, root, 9, EMPTY_ROOT, &[]).is_err());
    // Proofs with a hash too many or too few.
    let proof = tree.inclusion_proof(3, 9).unwrap();
    let leaf = leaf_hash(&data(3));
    verify_inclusion(leaf, 3, 9, &proof, root).unwrap();
    let mut longer = proof.clone();
    longer.push(root);
    assert!(verify_inclusion(leaf, 3, 9, &longer, root).is_err());
    assert!(verify_inclusion(leaf, 3, 9, &proof[..proof.len() - 1], root).is_err());
    // Huge sizes are refused, not a panic.
    assert!(verify_inclusion(leaf, 3, u64::MAX, &proof, root).is_err());
    assert!(verify_consistency(3, root, u64::MAX, root, &proof).is_err());
}

// ---------------------------------------------------------------------------
// Known answers.

// RFC 6962 test leaves and the roots of the trees of their first 0..=8,
// as published by transparency-dev/merkle (the Certificate Transparency
// reference code), testonly/constants.go: LeafInputs() and RootHashes().
const KAT_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];
const KAT_ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

// (index, size, proof) from transparency-dev/merkle,
// testonly/reference_test.go, TestRefInclusionProof.
const KAT_INCLUSION: &[(u64, u64, &[&str])] = &[
    (0, 1, &[]),
    (
        0,
        2,
        &["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"],
    ),
    (
        1,
        2,
        &["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

// (size1, size2, proof) from transparency-dev/merkle,
// testonly/reference_test.go, TestRefConsistencyProof.
const KAT_CONSISTENCY: &[(u64, u64, &[&str])] = &[
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn h32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn kat_tree() -> TreeBuilder {
    let mut tree = TreeBuilder::new();
    for leaf in KAT_LEAVES {
        tree.push(leaf_hash(&hex::decode(leaf).unwrap()));
    }
    tree
}

#[test]
fn rfc6962_known_roots() {
    let tree = kat_tree();
    for (size, root) in KAT_ROOTS.iter().enumerate() {
        assert_eq!(
            tree.root_at(size as u64),
            Some(h32(root)),
            "root of the first {size} test leaves"
        );
    }
    assert_eq!(EMPTY_ROOT, h32(KAT_ROOTS[0]));
    assert_eq!(
        root_of(
            KAT_LEAVES
                .iter()
                .map(|l| leaf_hash(&hex::decode(l).unwrap()))
        ),
        (8, h32(KAT_ROOTS[8]))
    );
}

#[test]
fn rfc6962_known_proofs() {
    let tree = kat_tree();
    for &(index, size, want) in KAT_INCLUSION {
        let want: Vec<[u8; 32]> = want.iter().map(|h| h32(h)).collect();
        assert_eq!(
            tree.inclusion_proof(index, size).unwrap(),
            want,
            "{index} in {size}"
        );
        let leaf = leaf_hash(&hex::decode(KAT_LEAVES[index as usize]).unwrap());
        verify_inclusion(leaf, index, size, &want, h32(KAT_ROOTS[size as usize])).unwrap();
    }
    for &(from, to, want) in KAT_CONSISTENCY {
        let want: Vec<[u8; 32]> = want.iter().map(|h| h32(h)).collect();
        assert_eq!(
            tree.consistency_proof(from, to).unwrap(),
            want,
            "{from} -> {to}"
        );
        verify_consistency(
            from,
            h32(KAT_ROOTS[from as usize]),
            to,
            h32(KAT_ROOTS[to as usize]),
            &want,
        )
        .unwrap();
    }
}

// ---------------------------------------------------------------------------
// Stored in a database.

mod support;

use support::{Db, OTHER, TENANT};

fn event(i: u64) -> AuditEvent {
    AuditEvent {
        kind: if i.is_multiple_of(3) {
            "decision"
        } else {
            "delivery_attempt"
        }
        .to_string(),
        actor: "api-key:k1".to_string(),
        subject: (!i.is_multiple_of(4)).then(|| format!("msg-{i}")),
        details: json!({ "n": i, "recipient": format!("pseudo-{}", i % 7), "ok": i.is_multiple_of(2) }),
    }
}

/// Appends `n` events to `tenant`, several per transaction.
async fn append(store: &Store, tenant: &str, n: u64) {
    let mut i = 0;
    while i < n {
        let batch = (i % 4 + 1).min(n - i);
        let mut tx = store.begin().await.unwrap();
        for k in 0..batch {
            audit::append(
                &mut tx,
                store.dialect(),
                tenant,
                1_700_000_000 + (i + k) as i64,
                &event(i + k),
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        i += batch;
    }
}

async fn entries(store: &Store, tenant: &str) -> Vec<AuditEntry> {
    audit::page(store, tenant, 0, audit::MAX_PAGE)
        .await
        .unwrap()
}

/// The tree recomputed from the entries, independently of the stored
/// hashes.
async fn rebuilt(store: &Store, tenant: &str) -> TreeBuilder {
    let mut tree = TreeBuilder::new();
    for entry in entries(store, tenant).await {
        assert_eq!(leaf_hash(&canonical_bytes(&entry)), entry_leaf_hash(&entry));
        let index = tree.push(entry_leaf_hash(&entry));
        assert_eq!(index, entry.seq as u64 - 1);
    }
    tree
}

async fn stored_hash_rows(store: &Store, tenant: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM merkle_hashes WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

async fn integrate_in_batches(db: Db) {
    let store = &db.store;
    assert_eq!(
        merkle::head(store, TENANT).await.unwrap(),
        TreeHead {
            size: 0,
            root: EMPTY_ROOT
        }
    );
    // Nothing to integrate yet.
    assert_eq!(merkle::integrate(store, TENANT, 10).await.unwrap().size, 0);
    assert_eq!(merkle::root_at(store, TENANT, 0).await.unwrap(), EMPTY_ROOT);

    append(store, TENANT, 37).await;
    append(store, OTHER, 5).await;
    let mut heads = vec![merkle::head(store, TENANT).await.unwrap()];
    for max in [1, 5, 0, 13, 2, 100] {
        let head = merkle::integrate(store, TENANT, max).await.unwrap();
        assert_eq!(merkle::head(store, TENANT).await.unwrap(), head);
        heads.push(head);
    }
    let sizes: Vec<u64> = heads.iter().map(|h| h.size).collect();
    assert_eq!(sizes, [0, 1, 6, 6, 19, 21, 37]);
    // Idempotent.
    assert_eq!(
        merkle::integrate(store, TENANT, 100).await.unwrap(),
        heads[6]
    );

    append(store, TENANT, 40).await;
    for max in [7, 3, 1000] {
        heads.push(merkle::integrate(store, TENANT, max).await.unwrap());
    }
    let sizes: Vec<u64> = heads.iter().map(|h| h.size).collect();
    assert_eq!(sizes, [0, 1, 6, 6, 19, 21, 37, 44, 47, 77]);
    assert_eq!(
        stored_hash_rows(store, TENANT).await as u64,
        tlog_tiles::tlog::stored_hash_count(77)
    );

    // Every head's root is the root of the entries, recomputed.
    let tree = rebuilt(store, TENANT).await;
    assert_eq!(tree.len(), 77);
    for head in &heads {
        assert_eq!(Some(head.root), tree.root_at(head.size), "head {head:?}");
    }
    for size in 0..=77 {
        assert_eq!(
            merkle::root_at(store, TENANT, size).await.unwrap(),
            tree.root_at(size).unwrap()
        );
    }

    // Every inclusion proof against every head verifies.
    let all = entries(store, TENANT).await;
    for head in heads.iter().filter(|h| h.size > 0) {
        for index in 0..head.size {
            let proof = merkle::inclusion_proof(store, TENANT, index, head.size)
                .await
                .unwrap();
            assert_eq!(
                Some(&proof),
                tree.inclusion_proof(index, head.size).as_ref()
            );
            let leaf = entry_leaf_hash(&all[index as usize]);
            verify_inclusion(leaf, index, head.size, &proof, head.root).unwrap();
        }
    }
    // Consistency between every pair of heads.
    for (i, old) in heads.iter().enumerate() {
        for new in &heads[i..] {
            let proof = merkle::consistency_proof(store, TENANT, old.size, new.size)
                .await
                .unwrap();
            assert_eq!(
                Some(&proof),
                tree.consistency_proof(old.size, new.size).as_ref()
            );
            verify_consistency(old.size, old.root, new.size, new.root, &proof).unwrap();
        }
    }

    // The other tenant's tree is its own.
    assert_eq!(merkle::head(store, OTHER).await.unwrap().size, 0);
    let other = merkle::integrate(store, OTHER, 100).await.unwrap();
    let other_tree = rebuilt(store, OTHER).await;
    assert_eq!(
        other,
        TreeHead {
            size: 5,
            root: other_tree.root()
        }
    );
    assert_eq!(merkle::head(store, TENANT).await.unwrap(), heads[9]);
    db.cleanup().await;
}

#[tokio::test]
async fn sqlite_integrate_in_batches() {
    integrate_in_batches(Db::sqlite().await).await;
}

#[tokio::test]
async fn postgres_integrate_in_batches() {
    if let Some(db) = Db::postgres("merkle_test").await {
        integrate_in_batches(db).await;
    }
}

async fn out_of_range(db: Db) {
    let store = &db.store;
    append(store, TENANT, 10).await;
    merkle::integrate(store, TENANT, 8).await.unwrap();
    let tree = 8;
    let err = merkle::inclusion_proof(store, TENANT, 8, 8)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProofError::OutOfRange { index: 8, size: 8 }),
        "{err}"
    );
    let err = merkle::inclusion_proof(store, TENANT, 0, 0)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProofError::OutOfRange { index: 0, size: 0 }),
        "{err}"
    );
    // Entry 9 exists but is not in the tree yet.
    let err = merkle::inclusion_proof(store, TENANT, 8, 9)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProofError::BeyondTree { size: 9, tree: 8 }),
        "{err}"
    );
    assert_eq!(err.to_string(), "the log holds 8 entries, not 9");
    let err = merkle::consistency_proof(store, TENANT, 5, 4)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProofError::OutOfRange { index: 5, size: 4 }),
        "{err}"
    );
    let err = merkle::consistency_proof(store, TENANT, 5, 11)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProofError::BeyondTree { size: 11, tree }if tree == 8),
        "{err}"
    );
    let err = merkle::root_at(store, TENANT, 9).await.unwrap_err();
    assert!(
        matches!(err, ProofError::BeyondTree { size: 9, tree: 8 }),
        "{err}"
    );
    // A tenant without a tree.
    let err = merkle::inclusion_proof(store, OTHER, 0, 1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProofError::BeyondTree { size: 1, tree: 0 }),
        "{err}"
    );
    assert_eq!(
        merkle::consistency_proof(store, TENANT, 0, tree)
            .await
            .unwrap(),
        Vec::<[u8; 32]>::new()
    );
    assert_eq!(
        merkle::consistency_proof(store, TENANT, tree, tree)
            .await
            .unwrap(),
        Vec::<[u8; 32]>::new()
    );
    // A max below 1 integrates nothing and creates nothing.
    assert_eq!(merkle::integrate(store, OTHER, 0).await.unwrap().size, 0);
    assert_eq!(merkle::integrate(store, TENANT, -1).await.unwrap().size, 8);
    db.cleanup().await;
}

#[tokio::test]
async fn sqlite_out_of_range() {
    out_of_range(Db::sqlite().await).await;
}

#[tokio::test]
async fn postgres_out_of_range() {
    if let Some(db) = Db::postgres("merkle_test").await {
        out_of_range(db).await;
    }
}

/// Two integrators (two nodes) and a writer, all at once: one tree, every
/// entry in it once.
async fn concurrent_integrate(db: Db) {
    let store = db.store.clone();
    append(&store, TENANT, 30).await;
    let total = 150_u64;
    let writer = {
        let store = store.clone();
        tokio::spawn(async move { append(&store, TENANT, total - 30).await })
    };
    let integrator = |max: i64| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                let head = merkle::integrate(&store, TENANT, max).await.unwrap();
                assert!(head.size >= last, "the head went back");
                last = head.size;
                if head.size == total {
                    return;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let a = integrator(7);
    let b = integrator(11);
    writer.await.unwrap();
    a.await.unwrap();
    b.await.unwrap();

    let head = merkle::head(&store, TENANT).await.unwrap();
    let tree = rebuilt(&store, TENANT).await;
    assert_eq!(
        head,
        TreeHead {
            size: total,
            root: tree.root()
        }
    );
    assert_eq!(
        stored_hash_rows(&store, TENANT).await as u64,
        tlog_tiles::tlog::stored_hash_count(total)
    );
    let all = entries(&store, TENANT).await;
    for size in [1, 2, 3, 64, 65, 100, total] {
        for index in [0, size / 2, size - 1] {
            let proof = merkle::inclusion_proof(&store, TENANT, index, size)
                .await
                .unwrap();
            let leaf = entry_leaf_hash(&all[index as usize]);
            verify_inclusion(leaf, index, size, &proof, tree.root_at(size).unwrap()).unwrap();
        }
        let proof = merkle::consistency_proof(&store, TENANT, size, total)
            .await
            .unwrap();
        verify_consistency(size, tree.root_at(size).unwrap(), total, head.root, &proof).unwrap();
    }
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_concurrent_integrate() {
    concurrent_integrate(Db::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_integrate() {
    if let Some(db) = Db::postgres("merkle_test").await {
        concurrent_integrate(db).await;
    }
}

/// Integration checks what it builds on: an altered stored root or an
/// altered entry is refused, not folded into the tree.
async fn integrate_refuses_corruption(db: Db) {
    let store = &db.store;
    append(store, TENANT, 6).await;
    let head = merkle::integrate(store, TENANT, 4).await.unwrap();
    assert_eq!(head.size, 4);

    // Someone rewrites the recorded root.
    sqlx::query("UPDATE merkle_heads SET root = $1 WHERE tenant_id = $2")
        .bind(vec![7_u8; 32])
        .bind(TENANT)
        .execute(store.pool())
        .await
        .unwrap();
    let err = merkle::integrate(store, TENANT, 10).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                what: "merkle head",
                ..
            }
        ),
        "{err}"
    );
    sqlx::query("UPDATE merkle_heads SET root = $1 WHERE tenant_id = $2")
        .bind(head.root.to_vec())
        .bind(TENANT)
        .execute(store.pool())
        .await
        .unwrap();

    // Someone alters entry 5 before it is integrated.
    let drop = match store.dialect() {
        Dialect::Sqlite => "DROP TRIGGER audit_entries_no_update",
        Dialect::Postgres => "DROP TRIGGER audit_entries_append_only ON audit_entries",
    };
    sqlx::raw_sql(drop).execute(store.pool()).await.unwrap();
    sqlx::query("UPDATE audit_entries SET actor = 'someone-else' WHERE tenant_id = $1 AND seq = 5")
        .bind(TENANT)
        .execute(store.pool())
        .await
        .unwrap();
    let err = merkle::integrate(store, TENANT, 10).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { what: "audit entry", ref reason } if reason.contains("entry 5")),
        "{err}"
    );
    // Nothing moved.
    assert_eq!(merkle::head(store, TENANT).await.unwrap(), head);
    assert_eq!(
        stored_hash_rows(store, TENANT).await as u64,
        tlog_tiles::tlog::stored_hash_count(4)
    );

    // Stored hashes are append-only.
    let err = sqlx::query("DELETE FROM merkle_hashes WHERE tenant_id = $1")
        .bind(TENANT)
        .execute(store.pool())
        .await;
    assert!(err.is_err(), "deleting stored hashes must be refused");
    db.cleanup().await;
}

#[tokio::test]
async fn sqlite_integrate_refuses_corruption() {
    integrate_refuses_corruption(Db::sqlite().await).await;
}

#[tokio::test]
async fn postgres_integrate_refuses_corruption() {
    if let Some(db) = Db::postgres("merkle_test").await {
        integrate_refuses_corruption(db).await;
    }
}

#[test]
fn futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let store: Option<Store> = None;
    if let Some(store) = &store {
        send(&merkle::integrate(store, TENANT, 1));
        send(&merkle::head(store, TENANT));
        send(&merkle::inclusion_proof(store, TENANT, 0, 1));
        send(&merkle::consistency_proof(store, TENANT, 0, 1));
        send(&merkle::root_at(store, TENANT, 1));
    }
}
