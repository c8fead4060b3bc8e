//! The human-readable explanation of a [`Decision`], rendered from the same
//! data the machine-readable reasons carry, for the support agent who asks
//! "why did payroll notice X not go over RCS?".

use std::fmt::Write;

use super::{Decision, Note, Outcome, Route};
use crate::assurance::Mode;
use crate::step_up::SecondFactor;
use crate::thread::FloorCause;

/// How a portal route's recipient proves who they are, after its name.
fn step_up(route: &Route) -> String {
    match route.second_factor {
        Some(SecondFactor::None) => ", opened without a one-time code".to_owned(),
        Some(f) => format!(", one-time code by {f}"),
        None => String::new(),
    }
}

fn outcome_line(o: &Outcome) -> String {
    match o {
        Outcome::Deliver { route } => format!(
            "deliver over {} at {} ({}){}",
            route.name(),
            route.assurance,
            route.assurance.label(),
            step_up(route)
        ),
        Outcome::ConfirmationRequired { route, label } => format!(
            "confirmation required: the best route is {} at {} ({}){}, below the thread's last label {} ({}); the sender must confirm this message",
            route.name(),
            route.assurance,
            route.assurance.label(),
            step_up(route),
            label,
            label.label()
        ),
        Outcome::Hold { until } => {
            format!("hold until {until}: no step qualifies yet; re-decided when evidence changes")
        }
        Outcome::Escalate => "escalate to a human: no step qualifies".to_owned(),
        Outcome::Block => "block: no step qualifies".to_owned(),
    }
}

/// Renders a decision as text. Contains identifiers and reasons only: no
/// content, no addresses.
pub fn explain(d: &Decision) -> String {
    let mut s = String::new();
    // `write!` to a String cannot fail; results are ignored on purpose.
    let _ = writeln!(
        s,
        "message `{}` (class `{}`, {} mode, policy {}) decided at {}",
        d.message_id,
        d.class,
        d.mode,
        d.policy_version.short(),
        d.decided_at
    );
    let _ = writeln!(s, "outcome: {}", outcome_line(&d.outcome));
    if d.mode == Mode::Observe
        && let Some(e) = &d.enforced
    {
        let _ = writeln!(s, "enforcement would have chosen: {}", outcome_line(e));
    }
    if let Some(g) = &d.downgrade {
        let _ = writeln!(
            s,
            "downgrade: the thread last showed {} and this route carries {}",
            g.from, g.to
        );
    }
    let t = &d.thread;
    match &t.drop {
        Some(drop) => {
            let _ = writeln!(
                s,
                "thread floor: dropped from {} to {} because:",
                drop.from, drop.to
            );
            for c in &drop.causes {
                let _ = match c {
                    FloorCause::Device { device, reason } => {
                        writeln!(s, "  - device `{device}`: {reason} [{}]", reason.code())
                    }
                    FloorCause::DeviceRevoked { device, at } => {
                        writeln!(s, "  - device `{device}` was revoked at {at}")
                    }
                    FloorCause::NoActiveDevice => {
                        writeln!(s, "  - the recipient has no active device")
                    }
                };
            }
        }
        None => {
            let _ = writeln!(s, "thread floor: {} (unchanged)", t.after.floor);
        }
    }
    let _ = writeln!(s, "ladder:");
    for v in &d.steps {
        let _ = write!(
            s,
            "  {}. {} (requires {}): ",
            v.index + 1,
            v.route,
            v.required
        );
        if v.skipped.is_empty() {
            let at = v.assurance.map_or("-".to_owned(), |a| a.to_string());
            let _ = writeln!(s, "chosen, carries {at}");
        } else {
            let _ = writeln!(s, "skipped");
            for r in &v.skipped {
                let _ = writeln!(s, "     - {r} [{}]", r.code());
            }
        }
    }
    if !d.notes.is_empty() {
        let _ = writeln!(s, "notes:");
        for n in &d.notes {
            let _ = match n {
                Note::ConfirmationAccepted { assurance } => {
                    writeln!(
                        s,
                        "  - the sender confirmed delivery at {assurance} for this message"
                    )
                }
                Note::ConfirmationForOtherMessage { bound_to } => writeln!(
                    s,
                    "  - a confirmation bound to message `{bound_to}` was presented and ignored"
                ),
                Note::ConfirmationBelowRoute { confirmed, route } => writeln!(
                    s,
                    "  - the sender confirmed {confirmed}, but this route carries only {route}"
                ),
                Note::LegacyRouteUnavailable { reasons } => {
                    let rs: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
                    writeln!(
                        s,
                        "  - the legacy route cannot carry this class at its minimum ({}); enforcement applied",
                        rs.join("; ")
                    )
                }
                Note::ConfirmationForOtherContainer { confirmed, route } => writeln!(
                    s,
                    "  - the sender confirmed delivery over {confirmed}, not {route}; a new confirmation is needed"
                ),
                Note::LegacyOverridden { override_id } => writeln!(
                    s,
                    "  - override `{override_id}` forces this class off its legacy route; enforcement applied"
                ),
                Note::ForceNotInLadder {
                    override_id,
                    container,
                } => writeln!(
                    s,
                    "  - override `{override_id}` forces {container}, which this class's ladder does not contain; the class only avoids the override's channel"
                ),
                Note::HoldExpired { since } => writeln!(s, "  - the hold expired at {since}"),
                Note::OperatorChoseRoute { step } => writeln!(
                    s,
                    "  - an operator sent it from the escalation queue by ladder step {step}, which the policy permitted at that moment"
                ),
            };
        }
    }
    s
}
