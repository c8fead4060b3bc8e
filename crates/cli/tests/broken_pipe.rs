//! Regression: `ladder simulate … | head` panicked with "failed printing to
//! stdout: Broken pipe" once the reader went away.

use std::process::{Command, Stdio};

#[test]
fn regression_broken_pipe_on_stdout_does_not_panic() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ladder"))
        .current_dir(root)
        .args(["simulate", "examples/scenarios"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before the binary writes anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
}
