//! The `ladder` binary as operators run it: the operator commands
//! (`tenant`, `policy publish`, `override`, `keys`, `audit`) on SQLite and, when
//! `LADDER_TEST_POSTGRES_URL` is set, PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::ladder;

fn policy_for(tenant: &str, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/policies/acme.toml"
    ))
    .unwrap()
    .replace("tenant = \"acme\"", &format!("tenant = \"{tenant}\""));
    let p = dir.join(format!("{tenant}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

fn run(args: &[&str], store: &[String]) -> (bool, String, String) {
    let out = ladder()
        .args(args)
        .args(store)
        .env_remove("LADDER_DATABASE_URL")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn operator_commands(store: Vec<String>, tmp: &Path) {
    let policy = policy_for("globex", tmp);
    let (ok, out, err) = run(
        &[
            "tenant",
            "create",
            "--name",
            "globex",
            "--policy",
            policy.to_str().unwrap(),
        ],
        &store,
    );
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["tenant"]["name"], "globex");
    let scopes: Vec<&str> = created["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["scope"].as_str().unwrap())
        .collect();
    assert_eq!(scopes, ["sender", "admin"]);
    assert!(
        created["keys"][0]["token"]
            .as_str()
            .unwrap()
            .starts_with("ldr_sender_")
    );

    let (ok, _, err) = run(
        &[
            "tenant",
            "create",
            "--name",
            "globex",
            "--policy",
            policy.to_str().unwrap(),
        ],
        &store,
    );
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    let wrong = policy_for("initech", tmp);
    let (ok, _, err) = run(
        &[
            "tenant",
            "create",
            "--name",
            "hooli",
            "--policy",
            wrong.to_str().unwrap(),
        ],
        &store,
    );
    assert!(!ok);
    assert!(err.contains("`initech`"), "{err}");

    let o = tmp.join("override.toml");
    std::fs::write(&o, "id = \"rcs-ios\"\nchannel = \"rcs\"\nos = \"ios\"\nos_version = \">=26.2,<26.4\"\neffect = \"distrust_e2ee\"\nreason = \"E2EE regression\"\nauthor = \"secops\"\nexpires_in = \"7d\"\n").unwrap();
    let (ok, out, err) = run(
        &["override", "set", "--tenant", "globex", o.to_str().unwrap()],
        &store,
    );
    assert!(ok, "{err}");
    assert!(out.contains("\"state\": \"active\""), "{out}");
    let bad = tmp.join("bad.toml");
    std::fs::write(&bad, "id = \"x\"\nchannel = \"rcs\"\neffect = \"explode\"\nreason = \"r\"\nauthor = \"a\"\nexpires_in = \"1h\"\n").unwrap();
    let (ok, _, err) = run(
        &[
            "override",
            "set",
            "--tenant",
            "globex",
            bad.to_str().unwrap(),
        ],
        &store,
    );
    assert!(!ok);
    assert!(err.contains("explode"), "{err}");
    let (ok, out, _) = run(&["override", "list", "--tenant", "globex"], &store);
    assert!(ok && out.contains("rcs-ios"), "{out}");
    let renew = |days: &str| {
        run(
            &[
                "override",
                "renew",
                "--tenant",
                "globex",
                "rcs-ios",
                "--expires-in",
                days,
            ],
            &store,
        )
    };
    let (ok, out, err) = renew("20d");
    assert!(ok, "{err}");
    assert!(out.contains("\"state\": \"active\""), "{out}");
    let (ok, _, err) = renew("31d");
    assert!(!ok, "beyond the policy's maximum lifetime");
    assert!(err.contains("override_max_lifetime"), "{err}");

    // Revisions only move forward, unless rolled back on purpose.
    let newer = tmp.join("globex-5.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(&newer, text.replace("revision = 4", "revision = 5")).unwrap();
    let publish = |file: &Path, rollback: bool| {
        let mut args = vec![
            "policy",
            "publish",
            "--tenant",
            "globex",
            file.to_str().unwrap(),
        ];
        if rollback {
            args.push("--rollback");
        }
        run(&args, &store)
    };
    let (ok, out, err) = publish(&newer, false);
    assert!(ok, "{err}");
    assert!(out.contains("\"revision\": 5"), "{out}");
    let (ok, _, err) = publish(&policy, false);
    assert!(!ok, "revision 4 over 5 without --rollback");
    assert!(err.contains("not above the active revision 5"), "{err}");
    let (ok, out, err) = publish(&policy, true);
    assert!(ok, "{err}");
    assert!(out.contains("\"rollback\": true"), "{out}");
    let (ok, _, err) = run(
        &["override", "clear", "--tenant", "globex", "rcs-ios"],
        &store,
    );
    assert!(ok, "{err}");
    let (ok, _, _) = run(
        &["override", "clear", "--tenant", "globex", "rcs-ios"],
        &store,
    );
    assert!(!ok, "clearing twice fails");

    let (ok, out, err) = run(&["keys", "rotate"], &store);
    assert!(ok, "{err}");
    assert!(out.contains("\"new_key\""), "{out}");
    let (ok, out, err) = run(&["audit", "verify", "--tenant", "globex"], &store);
    assert!(ok, "{err}");
    assert!(out.starts_with("ok: tenant `globex`"), "{out}");

    let export = tmp.join("globex-audit");
    let (ok, _, err) = run(
        &[
            "audit",
            "export",
            "--tenant",
            "globex",
            "--out",
            export.to_str().unwrap(),
        ],
        &store,
    );
    assert!(ok, "{err}");
    let entries = export.join("entries.jsonl");
    let text = std::fs::read_to_string(&entries).unwrap();
    assert!(
        text.contains("override_set")
            && text.contains("override_renewed")
            && text.contains("override_cleared")
            && text.contains("policy_rolled_back")
            && text.contains("key_rotated")
    );
    let tampered = text.replacen("E2EE regression", "nothing happened", 1);
    assert_ne!(tampered, text);
    std::fs::write(&entries, tampered).unwrap();
    let (ok, _, err) = run(&["audit", "verify", export.to_str().unwrap()], &[]);
    assert!(!ok, "a tampered export must not verify");
    assert!(err.contains("entry"), "{err}");
}

#[test]
fn operator_commands_on_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let store = vec![
        "--data-dir".to_string(),
        tmp.path().join("data").display().to_string(),
    ];
    operator_commands(store, tmp.path());
}

#[test]
fn operator_commands_on_postgres() {
    let Some((url, schema, scoped)) = support::pg_schema("cli_test") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let store = vec![
        "--database".to_string(),
        scoped,
        "--keyring".to_string(),
        tmp.path().join("keyring.json").display().to_string(),
    ];
    operator_commands(store, tmp.path());
    support::pg_exec(&url, &format!("DROP SCHEMA {schema} CASCADE"));
}
