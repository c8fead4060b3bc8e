//! `ladder simulate`: replay scenario files, or check a policy exhaustively.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ladder_core::Policy;
use ladder_core::decision::explain;
use ladder_core::exhaustive;
use ladder_core::scenario::{PolicyRef, ScenarioReport, parse_scenario, run as run_scenario};

use crate::{CliError, read};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Scenario files, or directories of them (every `*.toml` inside, sorted).
    /// With --exhaustive: one policy file.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Check invariants 1-3 over every combination of evidence, class, floor,
    /// override and single failure for the given policy.
    #[arg(long)]
    exhaustive: bool,
    /// Print the explanation of every decision and every timeline event.
    #[arg(long, short)]
    verbose: bool,
}

pub(crate) fn run(args: &Args) -> Result<ExitCode, CliError> {
    if args.exhaustive {
        return run_exhaustive(args);
    }
    let files = expand(&args.files)?;
    if files.is_empty() {
        eprintln!("error: no scenario files found (looked for `*.toml` in the given directories)");
        return Ok(ExitCode::from(2));
    }
    let mut sends = 0;
    for file in &files {
        match run_file(file, args.verbose)? {
            Some(n) => sends += n,
            None => return Ok(ExitCode::from(1)),
        }
    }
    out!(
        "all {} scenario file(s) matched: {sends} send(s) behaved as expected{}",
        files.len(),
        if args.verbose {
            ""
        } else {
            " (add -v for each decision's explanation)"
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let entries = std::fs::read_dir(p).map_err(|source| CliError::Read {
                path: p.display().to_string(),
                source,
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "toml"))
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Runs one file; `None` when it failed (already printed).
fn run_file(file: &Path, verbose: bool) -> Result<Option<usize>, CliError> {
    let name = file.display().to_string();
    let text = read(file)?;
    let scenario = match parse_scenario(&text, &name) {
        Ok(s) => s,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("error: scenario `{name}` is invalid; nothing was run");
            return Ok(None);
        }
    };
    let parsed = match &scenario.policy {
        PolicyRef::Path(rel) => {
            let path = file.parent().unwrap_or(Path::new(".")).join(rel);
            let ptext = read(&path)?;
            Policy::parse(&ptext, &path.display().to_string())
        }
        PolicyRef::Inline { text: ptext, map } => Policy::parse_mapped(ptext, &name, map),
    };
    let policy = match parsed {
        Ok(p) => p.policy,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("error: the policy of scenario `{name}` is invalid; nothing was run");
            return Ok(None);
        }
    };
    let report = run_scenario(&scenario, &policy);
    print_report(&name, scenario.name.as_deref(), &policy, &report, verbose);
    match &report.mismatch {
        None => Ok(Some(report.rows.len())),
        Some(m) => {
            eprintln!(
                "MISMATCH {name}: step {} (`{}`): {}: expected `{}`, got `{}`",
                m.step, m.label, m.field, m.expected, m.actual
            );
            if let Some(x) = &m.explanation {
                eprintln!("{x}");
            }
            Ok(None)
        }
    }
}

fn print_report(
    name: &str,
    title: Option<&str>,
    policy: &Policy,
    report: &ScenarioReport,
    verbose: bool,
) {
    out!(
        "== {name}{} (policy {} rev {})",
        title.map(|t| format!(" — {t}")).unwrap_or_default(),
        policy.version().short(),
        policy.revision()
    );
    let header = [
        "step",
        "message",
        "class",
        "outcome",
        "route",
        "assurance",
        "floor",
        "downgrade",
        "enforced",
        "skipped",
    ];
    let rows: Vec<[String; 10]> = report
        .rows
        .iter()
        .map(|r| {
            [
                r.step.to_string(),
                r.message.clone(),
                r.class.clone(),
                r.outcome.clone(),
                r.route.clone(),
                r.assurance.clone(),
                r.floor.to_string(),
                if r.downgrade {
                    "yes".into()
                } else {
                    "-".into()
                },
                r.enforced.clone().unwrap_or_else(|| "-".into()),
                if r.skips.is_empty() {
                    "-".into()
                } else {
                    r.skips.clone()
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths.iter())
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out!("  {}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
    if verbose {
        for e in &report.events {
            out!("  step {}: {}", e.step, e.text);
        }
        for d in &report.decisions {
            for l in explain(d).lines() {
                out!("    {l}");
            }
        }
    }
}

fn run_exhaustive(args: &Args) -> Result<ExitCode, CliError> {
    let [file] = args.files.as_slice() else {
        eprintln!(
            "error: --exhaustive takes exactly one policy file, got {}",
            args.files.len()
        );
        return Ok(ExitCode::from(2));
    };
    let name = file.display().to_string();
    let text = read(file)?;
    let policy = match Policy::parse(&text, &name) {
        Ok(p) => p.policy,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::from(1));
        }
    };
    let report = exhaustive::check(&policy, &name);
    let summary = format!(
        "checked {} states ({} decisions) of policy {} against invariants 1-3",
        report.states,
        report.decisions,
        policy.version().short()
    );
    match report.counterexample {
        None => {
            out!("{summary}\nno counterexample found");
            Ok(ExitCode::SUCCESS)
        }
        Some(c) => {
            // stdout carries only the scenario, so it can be saved and run.
            eprintln!("{summary}\nCOUNTEREXAMPLE: {}", c.violation);
            out!("{}", c.scenario);
            Ok(ExitCode::from(1))
        }
    }
}
