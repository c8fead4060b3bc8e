//! End-to-end tests of the `ladder` binary: exit codes, error locations and
//! the exact text users see, for `policy check` and `simulate`.
//!
//! Every run happens in the workspace root with relative paths, so the
//! snapshots hold no machine-specific path. Broken inputs live in
//! `tests/fixtures/`; the shipped examples must always pass.

use std::path::{Path, PathBuf};
use std::process::Command;

const POLICIES: &str = "crates/cli/tests/fixtures/policies";
const SCENARIOS: &str = "crates/cli/tests/fixtures/scenarios";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The whole run as one stable text, for snapshots.
    fn transcript(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `ladder` with `args` from the workspace root. Whatever the input,
/// the binary must exit with a code (never a signal) and must not panic.
fn ladder(args: &[&str]) -> Run {
    let run = match Command::new(env!("CARGO_BIN_EXE_ladder"))
        .args(args)
        .current_dir(workspace_root())
        .env("RUST_BACKTRACE", "1")
        .env_remove("RUST_LOG")
        .output()
    {
        Ok(out) => Run {
            // `None` when killed by a signal: never a valid exit.
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        Err(e) => Run {
            code: -1,
            stdout: String::new(),
            stderr: format!("the test could not start the ladder binary: {e}"),
        },
    };
    assert_no_panic(args, &run);
    run
}

fn assert_no_panic(args: &[&str], run: &Run) {
    let shown = format!("`ladder {}`", args.join(" "));
    assert!(
        run.code >= 0 && run.code != 101,
        "{shown} did not exit normally (101 is a panic):\n{}",
        run.transcript()
    );
    for text in [&run.stdout, &run.stderr] {
        assert!(
            !text.contains('\u{fffd}'),
            "{shown} printed invalid UTF-8:\n{}",
            run.transcript()
        );
        for marker in [
            "panicked",
            "RUST_BACKTRACE",
            "stack backtrace",
            "internal error",
        ] {
            assert!(
                !text.contains(marker),
                "{shown} printed `{marker}`:\n{}",
                run.transcript()
            );
        }
    }
}

/// Every diagnostic about `file` on stderr names it as `file:line:column:`,
/// and there is at least one.
fn assert_located(run: &Run, file: &str, severity: &str) {
    let mut found = 0;
    for (line, rest) in run
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix(file).map(|rest| (l, rest)))
    {
        let mut parts = rest.splitn(4, ':');
        assert_eq!(parts.next(), Some(""), "no `:` after the file in {line:?}");
        let line_no = parts.next().unwrap_or_default();
        let column = parts.next().unwrap_or_default();
        let message = parts.next().unwrap_or_default();
        for (what, n) in [("line", line_no), ("column", column)] {
            assert!(
                !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) && n != "0",
                "no 1-based {what} in {line:?}"
            );
        }
        assert!(
            message.starts_with(&format!(" {severity}: ")),
            "not `{severity}: ` after the location in {line:?}"
        );
        found += 1;
    }
    assert!(
        found > 0,
        "no `{file}:line:column: {severity}:` diagnostic on stderr:\n{}",
        run.transcript()
    );
}

// ---------------------------------------------------------------------------
// policy check

#[test]
fn policy_check_prints_a_one_line_summary() {
    let run = ladder(&["policy", "check", &format!("{POLICIES}/valid.toml")]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(run.stdout.lines().count(), 1);
    assert_eq!(run.stderr, "");
    insta::assert_snapshot!("policy_check_summary", run.transcript());
}

#[test]
fn the_shipped_policy_checks_clean_even_with_warnings_denied() {
    let run = ladder(&[
        "policy",
        "check",
        "--deny-warnings",
        "examples/policies/acme.toml",
    ]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.starts_with("ok: tenant `acme` revision "),
        "{}",
        run.transcript()
    );
    assert!(
        run.stdout.contains("version sha256:"),
        "{}",
        run.transcript()
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn warnings_are_located_and_fail_only_with_deny_warnings() {
    let file = format!("{POLICIES}/warnings.toml");
    let lenient = ladder(&["policy", "check", &file]);
    assert_eq!(lenient.code, 0, "{}", lenient.transcript());
    assert_located(&lenient, &file, "warning");

    let strict = ladder(&["policy", "check", "--deny-warnings", &file]);
    assert_eq!(strict.code, 1, "{}", strict.transcript());
    assert_located(&strict, &file, "warning");
    insta::assert_snapshot!("policy_check_deny_warnings", strict.transcript());
}

/// One test per broken policy: exit 1, every error at `file:line:column`,
/// nothing loaded, and the exact text in a snapshot.
macro_rules! broken_policy {
    ($($test:ident => $fixture:literal,)*) => {$(
        #[test]
        fn $test() {
            let file = format!("{POLICIES}/{}.toml", $fixture);
            let run = ladder(&["policy", "check", &file]);
            assert_eq!(run.code, 1, "{}", run.transcript());
            assert_eq!(run.stdout, "", "a broken policy prints no summary");
            assert_located(&run, &file, "error");
            assert!(
                run.stderr
                    .trim_end()
                    .ends_with("error(s); nothing was loaded"),
                "{}",
                run.transcript()
            );
            insta::assert_snapshot!(concat!("policy_", $fixture), run.transcript());
        }
    )*};
}

broken_policy! {
    policy_with_unknown_container_is_rejected => "unknown-container",
    policy_with_unknown_notifier_is_rejected => "unknown-notifier",
    policy_with_duplicate_class_is_rejected => "duplicate-class",
    policy_with_unsatisfiable_class_is_rejected => "unsatisfiable-class",
    policy_with_container_below_class_minimum_is_rejected => "container-below-minimum",
    policy_with_subject_in_a_notice_is_rejected => "forbidden-notice-variable",
    policy_with_observe_class_without_legacy_is_rejected => "observe-without-legacy",
    policy_with_inverted_and_empty_override_ranges_is_rejected => "override-bad-ranges",
    policy_with_toml_syntax_error_is_rejected => "syntax-error",
    empty_policy_is_rejected => "empty",
    policy_with_portal_without_step_up_above_minimum_none_is_rejected => "step-up-off-above-minimum",
}

#[test]
fn weakened_step_up_is_warned_at_its_setting() {
    let file = format!("{POLICIES}/weakened-step-up.toml");
    let run = ladder(&["policy", "check", &file]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_located(&run, &file, "warning");
    assert_eq!(
        run.stderr
            .lines()
            .filter(|l| l.contains(": warning: "))
            .count(),
        2,
        "{}",
        run.transcript()
    );
    insta::assert_snapshot!("policy_check_weakened_step_up", run.transcript());
}

#[test]
fn broken_policies_report_every_error_not_just_the_first() {
    let file = format!("{POLICIES}/override-bad-ranges.toml");
    let run = ladder(&["policy", "check", &file]);
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with(&file))
        .collect();
    assert_eq!(errors.len(), 2, "{}", run.transcript());
    assert!(errors.iter().any(|l| l.contains("is inverted")));
    assert!(errors.iter().any(|l| l.contains("is empty")));
}

#[test]
fn a_notice_error_names_the_forbidden_variable_and_what_it_would_leak() {
    let run = ladder(&[
        "policy",
        "check",
        &format!("{POLICIES}/forbidden-notice-variable.toml"),
    ]);
    assert!(run.stderr.contains("`{subject}`"), "{}", run.transcript());
    assert!(
        run.stderr.contains("the message's subject in a notice"),
        "{}",
        run.transcript()
    );
}

// ---------------------------------------------------------------------------
// simulate

#[test]
fn every_shipped_example_scenario_passes() {
    let dir = workspace_root().join("examples/scenarios");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("examples/scenarios is readable")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let name = p.file_name().expect("a file name").to_string_lossy();
            format!("examples/scenarios/{name}")
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "expected the full set of examples: {files:?}"
    );

    let run = ladder(&["simulate", "examples/scenarios"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(run.stderr, "", "{}", run.transcript());
    let last = run.stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("all {} scenario file(s) matched: ", files.len())),
        "{last}"
    );

    // Each one also passes on its own, verbosely, and tells its story.
    for file in &files {
        let run = ladder(&["simulate", "-v", file]);
        assert_eq!(run.code, 0, "{file}:\n{}", run.transcript());
        assert!(
            run.stdout.contains("message `"),
            "{file} explains decisions"
        );
        let text = std::fs::read_to_string(workspace_root().join(file)).expect("readable");
        assert!(text.starts_with("name = "), "{file} starts with its name");
        assert!(
            text.contains("\ndescription = "),
            "{file} has a description"
        );
        assert!(text.contains("expect = {"), "{file} asserts outcomes");
    }
}

#[test]
fn a_passing_scenario_prints_its_table_and_exits_zero() {
    let run = ladder(&["simulate", &format!("{SCENARIOS}/valid.toml")]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    insta::assert_snapshot!("simulate_pass", run.transcript());
}

#[test]
fn a_wrong_expectation_is_a_mismatch_naming_file_step_and_field() {
    let file = format!("{SCENARIOS}/mismatch.toml");
    let run = ladder(&["simulate", &file]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.starts_with(&format!(
            "MISMATCH {file}: step 4 (`send confidential`): outcome: expected `deliver`, got `escalate`"
        )),
        "{}",
        run.transcript()
    );
    assert!(
        !run.stdout.contains("all 1 scenario file(s) matched"),
        "{}",
        run.transcript()
    );
    insta::assert_snapshot!("simulate_mismatch", run.transcript());
}

#[test]
fn simulate_stops_at_the_first_failing_file() {
    let run = ladder(&[
        "simulate",
        &format!("{SCENARIOS}/mismatch.toml"),
        &format!("{SCENARIOS}/valid.toml"),
    ]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(!run.stdout.contains("valid.toml"), "{}", run.transcript());
}

#[test]
fn a_send_of_an_undefined_class_is_a_mismatch() {
    let run = ladder(&["simulate", &format!("{SCENARIOS}/unknown-class.toml")]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains("unknown class `payroll`"),
        "{}",
        run.transcript()
    );
}

/// One test per invalid scenario: exit 1, the error at `file:line:column`,
/// nothing run, and the exact text in a snapshot.
macro_rules! invalid_scenario {
    ($($test:ident => $fixture:literal,)*) => {$(
        #[test]
        fn $test() {
            let file = format!("{SCENARIOS}/{}.toml", $fixture);
            let run = ladder(&["simulate", &file]);
            assert_eq!(run.code, 1, "{}", run.transcript());
            assert_eq!(run.stdout, "", "an invalid scenario runs nothing");
            assert_located(&run, &file, "error");
            assert!(
                run.stderr.trim_end().ends_with("is invalid; nothing was run"),
                "{}",
                run.transcript()
            );
            insta::assert_snapshot!(concat!("scenario_", $fixture), run.transcript());
        }
    )*};
}

invalid_scenario! {
    scenario_with_unknown_action_key_is_rejected => "unknown-action",
    scenario_step_with_two_actions_is_rejected => "two-actions",
    scenario_field_not_for_its_action_is_rejected => "field-not-for-action",
    scenario_with_toml_syntax_error_is_rejected => "syntax-error",
    scenario_with_broken_inline_policy_is_rejected => "inline-policy-error",
}

#[test]
fn inline_policy_errors_point_into_the_scenario_file() {
    let file = format!("{SCENARIOS}/inline-policy-error.toml");
    let run = ladder(&["simulate", &file]);
    // `minimum = "transprot"` is on line 16 of the scenario file, its value
    // at column 11.
    assert!(
        run.stderr.starts_with(&format!("{file}:16:11: error: ")),
        "{}",
        run.transcript()
    );
}

#[test]
fn a_policy_is_not_a_scenario_and_a_scenario_is_not_a_policy() {
    for file in ["valid.toml", "syntax-error.toml", "empty.toml"] {
        let policy = format!("{POLICIES}/{file}");
        let run = ladder(&["simulate", &policy]);
        assert_eq!(run.code, 1, "{}", run.transcript());
        assert_located(&run, &policy, "error");
    }
    for file in ["valid.toml", "mismatch.toml", "two-actions.toml"] {
        let scenario = format!("{SCENARIOS}/{file}");
        let run = ladder(&["policy", "check", &scenario]);
        assert_eq!(run.code, 1, "{}", run.transcript());
        assert_located(&run, &scenario, "error");
    }
}

#[test]
fn no_fixture_makes_the_binary_panic() {
    for dir in [POLICIES, SCENARIOS] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(workspace_root().join(dir))
            .expect("fixtures are readable")
            .map(|e| e.expect("a directory entry").path())
            .collect();
        files.sort();
        for path in files {
            let name = path.file_name().expect("a file name").to_string_lossy();
            let rel = format!("{dir}/{name}");
            for args in [
                vec!["policy", "check", rel.as_str()],
                vec!["policy", "check", "--deny-warnings", rel.as_str()],
                vec!["simulate", rel.as_str()],
                vec!["simulate", "-v", rel.as_str()],
            ] {
                let run = ladder(&args);
                assert!(
                    [0, 1, 2].contains(&run.code),
                    "`ladder {}` exited {}",
                    args.join(" "),
                    run.code
                );
            }
        }
    }
    // A whole directory of scenarios that mostly fail.
    let run = ladder(&["simulate", "-v", SCENARIOS]);
    assert_eq!(run.code, 1, "{}", run.transcript());
}

// ---------------------------------------------------------------------------
// exit code 2: cannot run at all

#[test]
fn an_unreadable_policy_file_exits_two() {
    let missing = format!("{POLICIES}/no-such-file.toml");
    let run = ladder(&["policy", "check", &missing]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert!(
        run.stderr
            .starts_with(&format!("error: cannot read `{missing}`: ")),
        "{}",
        run.transcript()
    );

    let run = ladder(&["policy", "check", POLICIES]);
    assert_eq!(
        run.code,
        2,
        "a directory is not a policy: {}",
        run.transcript()
    );

    let run = ladder(&["policy", "check", &format!("{POLICIES}/not-utf8.toml")]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert!(
        run.stderr.starts_with("error: cannot read `"),
        "{}",
        run.transcript()
    );
}

#[test]
fn an_unreadable_scenario_or_scenario_policy_exits_two() {
    let missing = format!("{SCENARIOS}/no-such-file.toml");
    let run = ladder(&["simulate", &missing]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert!(
        run.stderr
            .starts_with(&format!("error: cannot read `{missing}`: ")),
        "{}",
        run.transcript()
    );

    let run = ladder(&["simulate", &format!("{SCENARIOS}/missing-policy.toml")]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert!(
        run.stderr.contains("no-such-policy.toml"),
        "the error names the missing policy: {}",
        run.transcript()
    );
}

#[test]
fn bad_arguments_exit_two() {
    for args in [
        vec![],
        vec!["frobnicate"],
        vec!["policy"],
        vec!["policy", "check"],
        vec!["policy", "check", "--no-such-flag", "x.toml"],
        vec!["simulate"],
        vec![
            "simulate",
            "--exhaustive",
            "examples/policies/acme.toml",
            "examples/policies/acme.toml",
        ],
    ] {
        let run = ladder(&args);
        assert_eq!(
            run.code,
            2,
            "`ladder {}`:\n{}",
            args.join(" "),
            run.transcript()
        );
        assert!(
            !run.stderr.is_empty(),
            "`ladder {}` says why",
            args.join(" ")
        );
    }
}

#[test]
fn help_and_version_exit_zero() {
    for args in [
        vec!["--help"],
        vec!["--version"],
        vec!["simulate", "--help"],
    ] {
        let run = ladder(&args);
        assert_eq!(run.code, 0, "{}", run.transcript());
        assert!(!run.stdout.is_empty());
    }
}

#[test]
fn policy_check_warns_about_overrides_that_already_expired() {
    let file = format!("{POLICIES}/expired-override.toml");
    let run = ladder(&["policy", "check", &file]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stderr.contains(
            "warning: override `old-advisory` expired at 2020-06-30T00:00:00Z; it no longer applies"
        ),
        "{}",
        run.transcript()
    );
    let strict = ladder(&["policy", "check", "--deny-warnings", &file]);
    assert_eq!(strict.code, 1, "{}", strict.transcript());
}

#[test]
fn exhaustive_check_of_a_valid_policy_counts_states_and_finds_nothing() {
    let file = format!("{POLICIES}/valid.toml");
    let run = ladder(&["simulate", "--exhaustive", &file]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let states: u64 = run
        .stdout
        .strip_prefix("checked ")
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(states > 10_000, "{}", run.transcript());
    assert!(
        run.stdout.contains("no counterexample found"),
        "{}",
        run.transcript()
    );
    let two = ladder(&["simulate", "--exhaustive", &file, &file]);
    assert_eq!(two.code, 2, "{}", two.transcript());
}

#[test]
fn scenarios_that_would_check_nothing_are_rejected() {
    let none = ladder(&["simulate", &format!("{SCENARIOS}/no-sends.toml")]);
    assert_eq!(none.code, 1, "{}", none.transcript());
    assert!(
        none.stderr.contains("the scenario has no `send` step"),
        "{}",
        none.transcript()
    );
    let bare = ladder(&[
        "simulate",
        &format!("{SCENARIOS}/send-without-outcome.toml"),
    ]);
    assert_eq!(bare.code, 1, "{}", bare.transcript());
    assert!(
        bare.stderr.contains("send-without-outcome.toml:9:10: error: step 2: a send needs `expect = { outcome = \"...\" }`"),
        "{}",
        bare.transcript()
    );
}

/// Regression: `audit witness --help` printed the API key it had taken
/// from `LADDER_API_KEY` as the argument's default.
#[test]
fn help_never_prints_an_api_key_from_the_environment() {
    let secret = "ldr_sender_do_not_print_me";
    for args in [
        &["audit", "witness", "--help"][..],
        &["device", "enrol", "--help"][..],
        &["device", "handshake", "--help"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_ladder"))
            .args(args)
            .env("LADDER_API_KEY", secret)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{args:?}: {text}");
        assert!(text.contains("LADDER_API_KEY"), "{args:?}: {text}");
        assert!(!text.contains(secret), "{args:?} printed the key: {text}");
    }
}
