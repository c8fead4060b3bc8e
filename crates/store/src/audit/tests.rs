#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use ed25519_dalek::SigningKey;
use serde_json::json;

use super::*;

fn entry(tenant: &str, seq: i64, prev_hash: &str, details: serde_json::Value) -> AuditEntry {
    let mut e = AuditEntry {
        tenant_id: tenant.to_string(),
        seq,
        at: 1_700_000_000 + seq,
        kind: "decision".to_string(),
        actor: "worker".to_string(),
        subject: Some(format!("msg-{seq}")),
        details,
        prev_hash: prev_hash.to_string(),
        hash: String::new(),
    };
    e.hash = entry_hash(&e);
    e
}

fn chain(tenant: &str, n: i64) -> Vec<AuditEntry> {
    let mut out: Vec<AuditEntry> = Vec::new();
    for seq in 1..=n {
        let prev = out
            .last()
            .map_or(GENESIS_HASH.to_string(), |e| e.hash.clone());
        out.push(entry(
            tenant,
            seq,
            &prev,
            json!({ "step": seq, "route": "rcs" }),
        ));
    }
    out
}

fn key(byte: u8) -> SigningKey {
    SigningKey::from_bytes(&[byte; 32])
}

fn cp(entries: &[AuditEntry], seq: i64, k: &SigningKey) -> Checkpoint {
    let e = &entries[usize::try_from(seq - 1).unwrap()];
    sign_checkpoint(&e.tenant_id, seq, &e.hash, 1_800_000_000, "audit-1", k)
}

fn rehash(e: &mut AuditEntry) {
    e.hash = entry_hash(e);
}

#[test]
fn canonical_bytes_are_pinned() {
    let e = AuditEntry {
        tenant_id: "t1".into(),
        seq: 1,
        at: 1_700_000_000,
        kind: "decision".into(),
        actor: "api-key:k1".into(),
        subject: Some("msg-1".into()),
        details: json!({ "z": [1, true, null], "a": "é\n\"q\"", "m": { "y": -3, "b": "x" } }),
        prev_hash: GENESIS_HASH.into(),
        hash: String::new(),
    };
    let expected = concat!(
        "ladder audit entry v1\n",
        r#"{"actor":"api-key:k1","at":1700000000,"details":{"a":"é\n\"q\"","m":{"b":"x","y":-3},"#,
        r#""z":[1,true,null]},"kind":"decision","prev_hash":"#,
        r#""0000000000000000000000000000000000000000000000000000000000000000","seq":1,"#,
        r#""subject":"msg-1","tenant_id":"t1"}"#
    );
    assert_eq!(String::from_utf8(canonical_bytes(&e)).unwrap(), expected);
    // Computed once from the encoding above; a change here breaks every
    // existing log.
    assert_eq!(
        entry_hash(&e),
        "92bfae33584fa79c91caaa8870f0f0a9480b4d74e8cea8a436437b7b1d1fd7cf"
    );
    let mut none = e.clone();
    none.subject = None;
    assert!(
        String::from_utf8(canonical_bytes(&none))
            .unwrap()
            .contains(r#""subject":null"#)
    );
}

#[test]
fn canonical_json_escapes_like_serde_json_and_sorts_keys() {
    let mut s = String::new();
    for c in 0u8..0x80 {
        s.push(char::from(c));
    }
    s.push_str("é\u{2028}😀");
    let v = json!({ "b": s, "a": 1, "B": u64::MAX, "": i64::MIN });
    let ours = String::from_utf8(canonical_json(&v)).unwrap();
    assert_eq!(ours, serde_json::to_string(&v).unwrap());
    assert!(ours.starts_with(r#"{"":"#));
    // Parsing our text back and re-encoding is a fixed point.
    let back: serde_json::Value = serde_json::from_str(&ours).unwrap();
    assert_eq!(String::from_utf8(canonical_json(&back)).unwrap(), ours);
}

#[test]
fn hash_covers_every_field_but_hash() {
    let base = entry("t1", 3, &"ab".repeat(32), json!({ "k": 1 }));
    let variants: [fn(&mut AuditEntry); 8] = [
        |e| e.tenant_id.push('x'),
        |e| e.seq += 1,
        |e| e.at += 1,
        |e| e.kind.push('x'),
        |e| e.actor.push('x'),
        |e| e.subject = None,
        |e| e.details = json!({ "k": 2 }),
        |e| e.prev_hash = GENESIS_HASH.into(),
    ];
    for change in variants {
        let mut e = base.clone();
        change(&mut e);
        assert_ne!(entry_hash(&e), base.hash);
    }
    let mut e = base.clone();
    e.hash = "00".into();
    assert_eq!(entry_hash(&e), base.hash);
}

#[test]
fn fractional_details_are_refused_with_their_place() {
    assert!(chain::check_details(&json!({ "a": [1, { "b": "0.5" }], "c": u64::MAX })).is_ok());
    let err = chain::check_details(&json!({ "a": [1, { "b/c": 0.5 }] })).unwrap_err();
    assert!(err.contains("/a/1/b~1c"), "{err}");
}

#[test]
fn a_good_chain_verifies() {
    let entries = chain("t1", 10);
    let k = key(1);
    let cps = vec![cp(&entries, 4, &k), cp(&entries, 10, &k)];
    let trusted = vec![hex::encode(k.verifying_key().to_bytes())];
    let report = verify(entries.clone(), &cps, Some(&trusted)).unwrap();
    assert_eq!(report.entries, 10);
    assert_eq!(report.checkpoints, 2);
    assert_eq!(report.head, Some((10, entries[9].hash.clone())));
    let empty = verify(Vec::new(), &[], None).unwrap();
    assert_eq!(empty.entries, 0);
    assert_eq!(empty.head, None);
}

#[test]
fn each_kind_of_tampering_is_named() {
    let entries = chain("t1", 6);
    let k = key(1);

    let mut altered = entries.clone();
    altered[2].details = json!({ "step": 3, "route": "sms" });
    assert_eq!(
        verify(altered, &[], None),
        Err(ChainBreak::EntryHash { seq: 3 })
    );

    let mut deleted = entries.clone();
    deleted.remove(3);
    assert_eq!(
        verify(deleted.clone(), &[], None),
        Err(ChainBreak::Gap {
            expected: 4,
            found: 5
        })
    );
    // Deleted, then renumbered and rehashed: the link is broken.
    for e in deleted.iter_mut().skip(3) {
        e.seq -= 1;
        rehash(e);
    }
    assert_eq!(verify(deleted, &[], None), Err(ChainBreak::Link { seq: 4 }));

    let mut reordered = entries.clone();
    reordered.swap(1, 4);
    assert_eq!(
        verify(reordered, &[], None),
        Err(ChainBreak::Gap {
            expected: 2,
            found: 5
        })
    );

    let mut inserted = entries.clone();
    let forged = entry("t1", 7, &"ff".repeat(32), json!({}));
    inserted.push(forged);
    assert_eq!(
        verify(inserted, &[], None),
        Err(ChainBreak::Link { seq: 7 })
    );

    let mut first = entries.clone();
    first.remove(0);
    assert_eq!(
        verify(first, &[], None),
        Err(ChainBreak::Gap {
            expected: 1,
            found: 2
        })
    );

    let mut mixed = entries.clone();
    mixed[5].tenant_id = "t2".into();
    rehash(&mut mixed[5]);
    assert_eq!(
        verify(mixed, &[], None),
        Err(ChainBreak::MixedTenants { seq: 6 })
    );

    // Checkpoint at 6, then the tail is rewritten consistently.
    let cps = vec![cp(&entries, 6, &k)];
    let mut rewritten = entries.clone();
    rewritten.truncate(4);
    let regrown = chain("t1", 6);
    let mut prev = rewritten[3].hash.clone();
    for seq in 5..=6 {
        let e = entry("t1", seq, &prev, json!({ "forged": true }));
        prev = e.hash.clone();
        rewritten.push(e);
    }
    assert_eq!(regrown.len(), 6);
    assert_eq!(
        verify(rewritten, &cps, None),
        Err(ChainBreak::CheckpointMismatch { seq: 6 })
    );
    let truncated: Vec<_> = entries.iter().take(4).cloned().collect();
    assert_eq!(
        verify(truncated, &cps, None),
        Err(ChainBreak::CheckpointBeyondLog { seq: 6, len: 4 })
    );
}

#[test]
fn checkpoints_are_checked_for_signature_key_and_tenant() {
    let entries = chain("t1", 3);
    let k = key(1);
    let trusted = vec![hex::encode(k.verifying_key().to_bytes()).to_uppercase()];

    let mut bad_sig = cp(&entries, 2, &k);
    bad_sig.at += 1;
    assert_eq!(
        verify(entries.clone(), &[bad_sig], None),
        Err(ChainBreak::CheckpointSignature { seq: 2 })
    );
    let mut garbage = cp(&entries, 2, &k);
    garbage.public_key = "zz".into();
    assert_eq!(
        verify(entries.clone(), &[garbage], None),
        Err(ChainBreak::CheckpointSignature { seq: 2 })
    );

    let other = cp(&entries, 2, &key(2));
    assert!(verify(entries.clone(), std::slice::from_ref(&other), None).is_ok());
    assert_eq!(
        verify(entries.clone(), &[other], Some(&trusted)),
        Err(ChainBreak::UntrustedKey {
            seq: 2,
            key_id: "audit-1".into()
        })
    );

    let foreign_entries = chain("t2", 3);
    let foreign = cp(&foreign_entries, 2, &k);
    assert_eq!(
        verify(entries.clone(), &[foreign], Some(&trusted)),
        Err(ChainBreak::CheckpointTenant { seq: 2 })
    );

    // A checkpoint signing a head that was never in the log.
    let forged = sign_checkpoint("t1", 2, &"ab".repeat(32), 5, "audit-1", &k);
    assert_eq!(
        verify(entries.clone(), &[forged], Some(&trusted)),
        Err(ChainBreak::CheckpointMismatch { seq: 2 })
    );
    let zero = sign_checkpoint("t1", 0, GENESIS_HASH, 5, "audit-1", &k);
    assert_eq!(
        verify(entries.clone(), &[zero], Some(&trusted)),
        Err(ChainBreak::CheckpointMismatch { seq: 0 })
    );
    // The first failure in log order wins.
    let mut altered = entries.clone();
    altered[0].actor = "cli".into();
    assert_eq!(
        verify(altered, &[cp(&entries, 3, &key(9))], Some(&trusted)),
        Err(ChainBreak::EntryHash { seq: 1 })
    );
}

#[test]
fn checkpoint_bytes_are_pinned() {
    assert_eq!(
        checkpoint_signed_bytes("t1", 42, "abcd", 1_700_000_000),
        b"ladder audit checkpoint v1\nt1\n42\nabcd\n1700000000\n".to_vec()
    );
}

#[test]
fn messages_name_the_failure() {
    assert_eq!(
        ChainBreak::EntryHash { seq: 4 }.to_string(),
        "entry 4: hash does not match its contents (altered)"
    );
    assert_eq!(
        ChainBreak::Link { seq: 4 }.to_string(),
        "entry 4: prev_hash does not match entry 3's hash (deleted, inserted or reordered)"
    );
    assert_eq!(
        ChainBreak::CheckpointMismatch { seq: 9 }.to_string(),
        "checkpoint at 9 signs a head that is not entry 9's hash (history rewritten)"
    );
    assert_eq!(
        ChainBreak::CheckpointBeyondLog { seq: 9, len: 5 }.to_string(),
        "checkpoint at 9 but the log ends at 5 (truncated or rolled back)"
    );
}

#[test]
fn entries_round_trip_through_json() {
    let entries = chain("t1", 2);
    let line = serde_json::to_string(&entries[1]).unwrap();
    let back: AuditEntry = serde_json::from_str(&line).unwrap();
    assert_eq!(back, entries[1]);
    let mut v: serde_json::Value = serde_json::from_str(&line).unwrap();
    v["extra"] = json!(1);
    assert!(serde_json::from_value::<AuditEntry>(v).is_err());
}
