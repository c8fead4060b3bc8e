//! README's curl session runs as pasted: the block after
//! `<!-- readme-session -->` is run with bash against a fresh `ladder serve`
//! in the same directory, with only the two lines that say where ladder is
//! pointed at this test's binary and port. Every `curl -f` in it must
//! succeed, the wait for delivery must end, and the answers must be the
//! ones the comments promise.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use support::ladder;

const MARKER: &str = "<!-- readme-session -->\n```sh\n";
const LADDER_LINE: &str = "ladder() { cargo run -q -p ladder -- \"$@\"; }";
const URL_LINE: &str = "L=http://127.0.0.1:7878";

fn session() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme.find(MARKER).expect("README has the session marker") + MARKER.len();
    let len = readme[start..].find("```").unwrap();
    let block = &readme[start..start + len];
    assert!(
        block.contains(LADDER_LINE),
        "the session defines `ladder` as README says"
    );
    assert!(
        block.contains(URL_LINE),
        "the session points at the default address"
    );
    block
        .replace(LADDER_LINE, "ladder() { \"$README_LADDER_BIN\" \"$@\"; }")
        .replace(URL_LINE, "L=$README_URL")
}

#[test]
fn the_readme_session_runs_as_pasted() {
    let script = session();
    let dir = tempfile::tempdir().unwrap();
    let mut server = ladder()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("LADDER_DATABASE_URL")
        .env_remove("LADDER_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(server.stdout.take().unwrap());
    let mut base = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "serve exited early"
        );
        if let Some(rest) = line.trim().strip_prefix("ladder is serving on ") {
            base = rest.to_owned();
        }
        if line.trim().starts_with("docs:") {
            break;
        }
    }

    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .env("README_LADDER_BIN", env!("CARGO_BIN_EXE_ladder"))
        .env("README_URL", &base)
        .env_remove("LADDER_DATABASE_URL")
        .output()
        .unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the session failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The message was found by the sender's own id, explained, delivered
    // as a notice, and the override set and cleared.
    assert!(
        text.contains("\"messages\":[{"),
        "the search found it: {text}"
    );
    assert!(
        text.contains("outcome: deliver over portal+email_notice"),
        "{text}"
    );
    assert!(text.contains("You have a new secure message"), "{text}");
    assert!(text.contains("\"id\":\"rcs-ios\""), "{text}");
    assert!(text.contains("\"kind\":\"override_set\""), "{text}");
    assert!(text.contains("\"kind\":\"override_cleared\""), "{text}");
    assert!(
        !text.contains("Your November payslip"),
        "the payload never comes back: {text}"
    );
}
