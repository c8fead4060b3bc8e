//! Tests of the keyring file: permissions, persistence, rotation, errors.
use super::*;
use ed25519_dalek::{Signer, Verifier};
use std::fs;
use std::os::unix::fs::PermissionsExt;

fn keyring_in(dir: &tempfile::TempDir) -> (PathBuf, Keyring) {
    let path = dir.path().join("keys").join("keyring.json");
    let keyring = Keyring::open_or_create(&path).unwrap();
    (path, keyring)
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn is_clone_send_sync() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<Keyring>();
}

#[test]
fn created_owner_only_and_reopens_with_same_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (path, keyring) = keyring_in(&dir);
    assert_eq!(keyring.path(), path);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert!(keyring.tenants().is_empty());

    assert!(keyring.ensure_tenant("acme").unwrap());
    assert!(!keyring.ensure_tenant("acme").unwrap());
    assert_eq!(mode(&path), 0o600);

    let dek = DataKey::generate().unwrap();
    let wrapped = keyring.wrap("acme", &dek).unwrap();
    assert!(wrapped.kek_id.starts_with("kek-") && wrapped.kek_id.len() == 12);
    assert_eq!(wrapped.bytes.len(), 32 + sealed::OVERHEAD);
    let pseudonym = keyring.pseudonym("acme", "alice@example.com").unwrap();
    let (key_id, signer) = keyring.checkpoint_signer("acme").unwrap();
    drop(keyring);

    let again = Keyring::open_or_create(&path).unwrap();
    assert_eq!(again.tenants(), vec!["acme".to_owned()]);
    assert_eq!(
        again.pseudonym("acme", "alice@example.com").unwrap(),
        pseudonym
    );
    assert_eq!(
        again.unwrap("acme", &wrapped).unwrap().as_bytes(),
        dek.as_bytes()
    );
    let (key_id_again, signer_again) = again.checkpoint_signer("acme").unwrap();
    assert_eq!(key_id_again, key_id);
    assert_eq!(signer_again.to_bytes(), signer.to_bytes());

    // Only the keyring itself is left in the directory: no temp files.
    let names: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("keyring.json")]);
}

#[test]
fn group_readable_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, keyring) = keyring_in(&dir);
    keyring.ensure_tenant("acme").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let err = Keyring::open_or_create(&path).unwrap_err();
    assert!(
        matches!(err, KeyringError::Permissions { mode: 0o640, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("mode 640"), "{message}");

    fs::set_permissions(&path, fs::Permissions::from_mode(0o604)).unwrap();
    assert!(matches!(
        Keyring::open_or_create(&path),
        Err(KeyringError::Permissions { .. })
    ));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        Keyring::open_or_create(&path).unwrap().tenants(),
        vec!["acme"]
    );
}

#[test]
fn rotate_keeps_old_keks_until_retired() {
    let dir = tempfile::tempdir().unwrap();
    let (path, keyring) = keyring_in(&dir);
    keyring.ensure_tenant("acme").unwrap();
    let first = keyring.current_kek_id("acme").unwrap();
    let old_dek = DataKey::generate().unwrap();
    let old = keyring.wrap("acme", &old_dek).unwrap();
    assert_eq!(old.kek_id, first);

    let second = keyring.rotate("acme").unwrap();
    assert_ne!(second, first);
    assert_eq!(keyring.current_kek_id("acme").unwrap(), second);
    assert_eq!(
        keyring.unwrap("acme", &old).unwrap().as_bytes(),
        old_dek.as_bytes()
    );

    // Rewrap under the current KEK.
    let rewrapped = keyring
        .wrap("acme", &keyring.unwrap("acme", &old).unwrap())
        .unwrap();
    assert_eq!(rewrapped.kek_id, second);

    // Keeping anything but the current KEK is refused.
    let err = keyring.retire("acme", &first).unwrap_err();
    assert!(matches!(err, KeyringError::KekNotCurrent { .. }), "{err:?}");
    let err = keyring.retire("acme", "kek-nope").unwrap_err();
    assert!(matches!(err, KeyringError::UnknownKek { .. }), "{err:?}");

    assert_eq!(
        keyring.retire("acme", &second).unwrap(),
        vec![first.clone()]
    );
    assert!(keyring.retire("acme", &second).unwrap().is_empty());
    let err = keyring.unwrap("acme", &old).unwrap_err();
    assert!(
        matches!(&err, KeyringError::UnknownKek { tenant, kek_id } if tenant == "acme" && *kek_id == first),
        "{err:?}"
    );
    assert_eq!(
        keyring.unwrap("acme", &rewrapped).unwrap().as_bytes(),
        old_dek.as_bytes()
    );

    // The retirement was saved.
    let again = Keyring::open_or_create(&path).unwrap();
    assert_eq!(again.current_kek_id("acme").unwrap(), second);
    assert!(matches!(
        again.unwrap("acme", &old),
        Err(KeyringError::UnknownKek { .. })
    ));
    assert_eq!(
        again.unwrap("acme", &rewrapped).unwrap().as_bytes(),
        old_dek.as_bytes()
    );
    assert!(!fs::read_to_string(&path).unwrap().contains(&first));
}

#[test]
fn wrapped_keys_are_bound_to_tenant_and_intact() {
    let dir = tempfile::tempdir().unwrap();
    let (_, keyring) = keyring_in(&dir);
    keyring.ensure_tenant("a").unwrap();
    keyring.ensure_tenant("b").unwrap();
    let wrapped = keyring.wrap("a", &DataKey::generate().unwrap()).unwrap();

    // Another tenant does not have that KEK.
    assert!(matches!(
        keyring.unwrap("b", &wrapped),
        Err(KeyringError::UnknownKek { .. })
    ));
    // Even under the other tenant's KEK id, it does not authenticate.
    let moved = WrappedKey {
        kek_id: keyring.current_kek_id("b").unwrap(),
        bytes: wrapped.bytes.clone(),
    };
    assert!(matches!(
        keyring.unwrap("b", &moved),
        Err(KeyringError::Seal(SealError::Forged))
    ));
    // Tampered bytes.
    let mut tampered = wrapped.clone();
    tampered.bytes[30] ^= 1;
    assert!(matches!(
        keyring.unwrap("a", &tampered),
        Err(KeyringError::Seal(SealError::Forged))
    ));
}

#[test]
fn pseudonyms_are_stable_per_tenant_and_normalised() {
    let dir = tempfile::tempdir().unwrap();
    let (path, keyring) = keyring_in(&dir);
    keyring.ensure_tenant("a").unwrap();
    keyring.ensure_tenant("b").unwrap();

    let p = keyring.pseudonym("a", "alice@example.com").unwrap();
    assert!(p.starts_with("p:"));
    assert_eq!(p.len(), 2 + 64);
    assert!(p[2..].bytes().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(keyring.pseudonym("a", "alice@example.com").unwrap(), p);
    assert_eq!(keyring.pseudonym("a", "  Alice@Example.COM\n").unwrap(), p);
    assert_ne!(keyring.pseudonym("b", "alice@example.com").unwrap(), p);
    assert_ne!(keyring.pseudonym("a", "bob@example.com").unwrap(), p);
    assert!(!p.contains("alice"));

    let again = Keyring::open_or_create(&path).unwrap();
    assert_eq!(again.pseudonym("a", "ALICE@example.com").unwrap(), p);
}

#[test]
fn unknown_tenant_gets_nothing_and_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let (path, keyring) = keyring_in(&dir);
    keyring.ensure_tenant("acme").unwrap();
    let before = fs::read(&path).unwrap();

    let dek = DataKey::generate().unwrap();
    let err = keyring.pseudonym("ghost", "x@y").unwrap_err();
    assert_eq!(err.to_string(), "no keys for tenant `ghost` in the keyring");
    assert!(matches!(
        keyring.wrap("ghost", &dek),
        Err(KeyringError::UnknownTenant { .. })
    ));
    assert!(matches!(
        keyring.current_kek_id("ghost"),
        Err(KeyringError::UnknownTenant { .. })
    ));
    assert!(matches!(
        keyring.rotate("ghost"),
        Err(KeyringError::UnknownTenant { .. })
    ));
    assert!(matches!(
        keyring.retire("ghost", "kek-00000000"),
        Err(KeyringError::UnknownTenant { .. })
    ));
    assert!(matches!(
        keyring.checkpoint_signer("ghost"),
        Err(KeyringError::UnknownTenant { .. })
    ));
    let wrapped = keyring.wrap("acme", &dek).unwrap();
    assert!(matches!(
        keyring.unwrap("ghost", &wrapped),
        Err(KeyringError::UnknownTenant { .. })
    ));

    assert_eq!(keyring.tenants(), vec!["acme"]);
    let after = fs::read(&path).unwrap();
    assert_eq!(after, before);
    assert!(!String::from_utf8(after).unwrap().contains("ghost"));
}

#[test]
fn checkpoint_signer_is_stable_and_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let (path, keyring) = keyring_in(&dir);
    keyring.ensure_tenant("a").unwrap();
    keyring.ensure_tenant("b").unwrap();
    let (id_a, key_a) = keyring.checkpoint_signer("a").unwrap();
    let (id_b, key_b) = keyring.checkpoint_signer("b").unwrap();
    assert_ne!(id_a, id_b);
    assert_ne!(key_a.to_bytes(), key_b.to_bytes());
    assert_eq!(id_a.len(), 8);
    let digest = Sha256::digest(key_a.verifying_key().to_bytes());
    assert_eq!(id_a, hex::encode(&digest[..4]));

    // Rotating KEKs does not touch the checkpoint key.
    keyring.rotate("a").unwrap();
    let again = Keyring::open_or_create(&path).unwrap();
    let (id_again, key_again) = again.checkpoint_signer("a").unwrap();
    assert_eq!(id_again, id_a);
    let signature = key_again.sign(b"checkpoint");
    key_a
        .verifying_key()
        .verify(b"checkpoint", &signature)
        .unwrap();
}

#[test]
fn debug_and_errors_show_no_key_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (path, keyring) = keyring_in(&dir);
    keyring.ensure_tenant("acme").unwrap();
    let text = fs::read_to_string(&path).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tenant = &doc["tenants"]["acme"];
    let secrets = [
        tenant["keks"][0]["key"].as_str().unwrap(),
        tenant["pseudonym_key"].as_str().unwrap(),
        tenant["checkpoint"]["seed"].as_str().unwrap(),
    ];
    let shown = format!("{keyring:?}");
    assert!(shown.contains("acme"), "{shown}");
    for secret in secrets {
        assert_eq!(secret.len(), 64);
        assert!(!shown.contains(secret) && !shown.contains(&secret[..8]));
    }

    // A damaged file whose key landed in the wrong field: the error
    // locates the problem without quoting it.
    let mut broken = doc.clone();
    broken["tenants"]["acme"]["keks"][0]["created_at"] = secrets[0].into();
    let broken = serde_json::to_string_pretty(&broken).unwrap();
    fs::write(&path, broken).unwrap();
    let err = Keyring::open_or_create(&path).unwrap_err();
    assert!(matches!(err, KeyringError::Corrupt { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("line"), "{message}");
    for secret in secrets {
        assert!(!message.contains(&secret[..8]), "{message}");
    }
}

#[test]
fn corrupt_files_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (path, keyring) = keyring_in(&dir);
    keyring.ensure_tenant("acme").unwrap();
    let good = fs::read_to_string(&path).unwrap();

    let cases = [
        ("{ not json", "not valid JSON"),
        (
            &good.replace("\"version\": 1", "\"version\": 9"),
            "format version 9",
        ),
        (&good.replacen("\"key\": \"", "\"key\": \"zz", 1), "line"),
    ];
    for (text, expected) in cases {
        fs::write(&path, text).unwrap();
        let err = Keyring::open_or_create(&path).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, KeyringError::Corrupt { .. }), "{err:?}");
        assert!(message.contains(expected), "{message}");
    }
}

#[test]
fn failed_write_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, keyring) = keyring_in(&dir);
    keyring.ensure_tenant("acme").unwrap();
    // Make the rename fail, even for root: a non-empty directory where
    // the file was.
    let saved = fs::read(&path).unwrap();
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    fs::write(path.join("x"), b"x").unwrap();

    let err = keyring.ensure_tenant("other").unwrap_err();
    assert!(matches!(err, KeyringError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("keyring.json"), "{err}");
    assert_eq!(keyring.tenants(), vec!["acme"]);
    let names: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "temp file left behind: {names:?}");

    fs::remove_dir_all(&path).unwrap();
    fs::write(&path, saved).unwrap();
    assert!(keyring.rotate("acme").is_ok());
    assert!(keyring.ensure_tenant("other").unwrap());
}

#[test]
fn a_keyring_replaced_by_another_process_is_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let server = Keyring::open_or_create(&path).unwrap();
    // Another process (the CLI) opens the same file and adds a tenant, then
    // rotates its key.
    let cli = Keyring::open_or_create(&path).unwrap();
    cli.ensure_tenant("t-new").unwrap();
    let dek = DataKey::generate().unwrap();
    let wrapped = cli.wrap("t-new", &dek).unwrap();
    assert_eq!(
        server.unwrap("t-new", &wrapped).unwrap().as_bytes(),
        dek.as_bytes()
    );
    let new = cli.rotate("t-new").unwrap();
    assert_eq!(server.current_kek_id("t-new").unwrap(), new);
    assert_eq!(server.wrap("t-new", &dek).unwrap().kek_id, new);
}

/// Regression: a write (which changes the file) and a read that noticed the
/// change took the state and file-stamp locks in opposite orders, and a
/// node could hang for good — a delivery opening a payload while a tenant
/// was created.
#[test]
fn reads_during_writes_never_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let (_, keyring) = keyring_in(&dir);
    keyring.ensure_tenant("acme").unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (k, stop) = (keyring.clone(), stop.clone());
        readers.push(std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                k.pseudonym("acme", "a@example.com").unwrap();
            }
        }));
    }
    let writer = keyring.clone();
    std::thread::spawn(move || {
        for i in 0..100 {
            writer.ensure_tenant(&format!("t-{i}")).unwrap();
        }
        let _ = done_tx.send(());
    });
    let finished = done_rx.recv_timeout(std::time::Duration::from_secs(60));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(finished.is_ok(), "writer and readers deadlocked");
    for r in readers {
        r.join().unwrap();
    }
}

#[test]
fn derived_secrets_are_stable_per_tenant_purpose_and_input() {
    let dir = tempfile::tempdir().unwrap();
    let (path, keyring) = keyring_in(&dir);
    keyring.ensure_tenant("acme").unwrap();
    keyring.ensure_tenant("globex").unwrap();
    let a = keyring.derive("acme", "portal link", "msg-1/2").unwrap();
    assert_eq!(
        *a,
        *keyring.derive("acme", "portal link", "msg-1/2").unwrap()
    );
    assert_ne!(
        *a,
        *keyring.derive("acme", "portal link", "msg-1/3").unwrap()
    );
    assert_ne!(*a, *keyring.derive("acme", "other", "msg-1/2").unwrap());
    assert_ne!(
        *a,
        *keyring.derive("globex", "portal link", "msg-1/2").unwrap()
    );
    // The same after a reopen: nothing but the keyring file is needed.
    let reopened = Keyring::open_or_create(&path).unwrap();
    assert_eq!(
        *a,
        *reopened.derive("acme", "portal link", "msg-1/2").unwrap()
    );
    assert!(reopened.derive("nobody", "portal link", "x").is_err());
}

fn local_kek(byte: u8) -> Arc<dyn KeyringSealer> {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
    Arc::new(LocalKek::from_base64(&text).unwrap())
}

#[test]
fn a_sealed_keyring_holds_no_key_in_the_clear_and_opens_only_with_its_kek() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let keyring = Keyring::open_sealed(&path, Some(local_kek(1)), false).unwrap();
    keyring.ensure_tenant("acme").unwrap();
    let dek = DataKey::generate().unwrap();
    let wrapped = keyring.wrap("acme", &dek).unwrap();
    let (_, signer) = keyring.checkpoint_signer("acme").unwrap();
    drop(keyring);

    let on_disk = fs::read_to_string(&path).unwrap();
    assert!(on_disk.contains("\"sealed\": 1"), "{on_disk}");
    assert!(!on_disk.contains("acme"), "tenant names are sealed too");
    assert!(!on_disk.contains(&hex::encode(signer.to_bytes())));
    assert_eq!(mode(&path), 0o600);

    let err = Keyring::open_or_create(&path).unwrap_err().to_string();
    assert!(
        err.contains("sealed by `local:") && err.contains("keyring_kek_file"),
        "{err}"
    );
    let err = Keyring::open_sealed(&path, Some(local_kek(2)), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not open"), "{err}");

    let again = Keyring::open_sealed(&path, Some(local_kek(1)), false).unwrap();
    assert_eq!(
        again.unwrap("acme", &wrapped).unwrap().as_bytes(),
        dek.as_bytes()
    );
    assert!(again.check().is_ok());
    assert!(again.sealed_by().unwrap().starts_with("local:"));
}

#[test]
fn a_plain_keyring_is_sealed_in_place_only_when_the_operator_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (path, plain) = keyring_in(&dir);
    plain.ensure_tenant("acme").unwrap();
    let pseudonym = plain.pseudonym("acme", "a@example.com").unwrap();
    drop(plain);
    assert!(fs::read_to_string(&path).unwrap().contains("acme"));

    // Not without the operator saying so: a plain file where a sealed one
    // belongs may have been put there by someone without the key.
    let err = Keyring::open_sealed(&path, Some(local_kek(9)), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("keyring_seal_plain"), "{err}");
    assert!(
        fs::read_to_string(&path).unwrap().contains("acme"),
        "untouched"
    );
    let sealed = Keyring::open_sealed(&path, Some(local_kek(9)), true).unwrap();
    assert!(!fs::read_to_string(&path).unwrap().contains("acme"));
    assert_eq!(
        sealed.pseudonym("acme", "a@example.com").unwrap(),
        pseudonym
    );
}

#[test]
fn check_reports_a_keyring_that_went_missing_or_stopped_opening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let keyring = Keyring::open_sealed(&path, Some(local_kek(4)), false).unwrap();
    assert!(keyring.check().is_ok());
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    assert!(keyring.check().is_err(), "readable by others");
    fs::remove_file(&path).unwrap();
    let err = keyring.check().unwrap_err().to_string();
    assert!(err.contains("gone"), "{err}");
}

#[test]
fn a_plain_file_swapped_in_under_a_sealed_keyring_is_never_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let sealed = Keyring::open_sealed(&path, Some(local_kek(5)), false).unwrap();
    sealed.ensure_tenant("acme").unwrap();
    let ours = sealed.pseudonym("acme", "a@example.com").unwrap();

    // Someone with write access to the volume, but not the key, puts a
    // plain keyring of their own in its place.
    let other = dir.path().join("other.json");
    let theirs = Keyring::open_or_create(&other).unwrap();
    theirs.ensure_tenant("acme").unwrap();
    drop(theirs);
    fs::rename(&other, &path).unwrap();

    assert!(sealed.check().is_err(), "readiness reports it");
    assert_eq!(
        sealed.pseudonym("acme", "a@example.com").unwrap(),
        ours,
        "the running node keeps its own keys"
    );
    assert!(Keyring::open_sealed(&path, Some(local_kek(5)), false).is_err());
}
