//! `ladder demo` doubles as a smoke test: it walks the whole story against
//! fake providers and exits 0 only if every step behaved as told — on
//! SQLite, and on PostgreSQL when `LADDER_TEST_POSTGRES_URL` is set.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

fn demo(extra: &[String]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = support::ladder()
        .arg("demo")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(extra)
        .env_remove("LADDER_DATABASE_URL")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_demo_story_behaves_on_sqlite() {
    let (ok, out) = demo(&[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("every step behaved as the story says"),
        "{out}"
    );
    assert!(!out.contains("FAIL"), "{out}");
    assert!(out.contains("409 confirmation_required"), "{out}");
}

#[test]
fn the_demo_story_behaves_on_postgres() {
    let Some((url, schema, scoped)) = support::pg_schema("demo_test") else {
        return;
    };
    let (ok, out) = demo(&["--database".to_string(), scoped]);
    support::pg_exec(&url, &format!("DROP SCHEMA {schema} CASCADE"));
    assert!(ok, "{out}");
    assert!(
        out.contains("every step behaved as the story says"),
        "{out}"
    );
}
