//! Comparing a decision with what the scenario expects, and the table row
//! `simulate` prints for it.

use super::run::{Row, StepResult, mismatch};
use super::{Expect, ScenarioStep};
use crate::decision::{Decision, Outcome};

fn outcome_text(o: &Outcome) -> (String, String, String) {
    match o.route() {
        Some(r) => (o.code().to_owned(), r.name(), r.assurance.to_string()),
        None => (o.code().to_owned(), "-".into(), "-".into()),
    }
}

pub(super) fn row(step: usize, d: &Decision) -> Row {
    let (outcome, route, assurance) = outcome_text(&d.outcome);
    let skips: Vec<String> = d
        .steps
        .iter()
        .filter(|v| !v.skipped.is_empty())
        .map(|v| {
            let codes: Vec<&str> = v.skipped.iter().map(|r| r.code()).collect();
            format!("{}:{}", v.route, codes.join("/"))
        })
        .collect();
    Row {
        step,
        message: d.message_id.clone(),
        class: d.class.clone(),
        outcome,
        route,
        assurance,
        floor: d.thread.after.floor,
        downgrade: d.downgrade.is_some(),
        enforced: d.enforced.as_ref().map(|e| match e.route() {
            Some(r) if matches!(e, Outcome::Deliver { .. }) => r.name(),
            _ => e.code().to_owned(),
        }),
        skips: skips.join(" "),
    }
}

fn route_matches(want: &str, o: &Outcome) -> bool {
    match o.route() {
        Some(r) => r.name() == want || r.container.as_str() == want,
        None => false,
    }
}

pub(super) fn check(step: &ScenarioStep, e: &Expect, d: &Decision) -> StepResult {
    let fail = |field: &str, expected: String, actual: String| {
        let mut m = mismatch(step, field, expected, actual);
        m.explanation = Some(crate::decision::explain(d));
        Err(m)
    };
    let (outcome, route, assurance) = outcome_text(&d.outcome);
    if let Some(want) = &e.outcome
        && *want != outcome
    {
        return fail("outcome", want.clone(), outcome);
    }
    if let Some(want) = &e.route
        && !route_matches(want, &d.outcome)
    {
        return fail("route", want.clone(), route);
    }
    if let Some(want) = e.assurance
        && want.as_str() != assurance
    {
        return fail("assurance", want.to_string(), assurance);
    }
    if let Some(want) = e.downgrade
        && want != d.downgrade.is_some()
    {
        return fail(
            "downgrade",
            want.to_string(),
            d.downgrade.is_some().to_string(),
        );
    }
    if let Some(want) = e.floor
        && want != d.thread.after.floor
    {
        return fail("floor", want.to_string(), d.thread.after.floor.to_string());
    }
    if let Some(want) = &e.enforced {
        let actual = d.enforced.as_ref();
        let ok = actual.is_some_and(|o| o.code() == want || route_matches(want, o));
        if !ok {
            return fail(
                "enforced",
                want.clone(),
                actual.map_or("(not observing)".into(), |o| outcome_text(o).1),
            );
        }
    }
    for (key, codes) in &e.skips {
        let verdict = d
            .steps
            .iter()
            .find(|v| v.route == *key || v.route.split('+').next() == Some(key.as_str()));
        let actual: Vec<&str> = verdict
            .map(|v| v.skipped.iter().map(|r| r.code()).collect())
            .unwrap_or_default();
        for code in codes {
            if !actual.contains(&code.as_str()) {
                let got = match verdict {
                    None => "step not evaluated".to_owned(),
                    Some(_) if actual.is_empty() => "chosen, not skipped".to_owned(),
                    Some(_) => actual.join(", "),
                };
                return fail(&format!("skips.{key}"), code.clone(), got);
            }
        }
    }
    Ok(())
}
