//! Writing an exhaustive state as a ready-to-run scenario file.

use super::counterexample::natural_thread;
use super::*;

/// A TOML basic string.
pub(super) fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(super) fn comment(s: &str) -> String {
    s.lines()
        .map(|l| format!("# {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn describe_device(setting: &Setting, policy: &Policy, spec: &DeviceSpec) -> String {
    let attested = |a: bool| if a { " (attested)" } else { "" };
    let age = if spec.stale { "stale signed" } else { "signed" };
    let rcs = match spec.rcs {
        Rcs::Missing => "missing".to_owned(),
        Rcs::ProviderReachable => format!(
            "{} reachable",
            if spec.provider_stale {
                "stale provider check"
            } else {
                "provider check"
            }
        ),
        Rcs::ProviderUnreachable => format!(
            "{} unreachable",
            if spec.provider_stale {
                "stale provider check"
            } else {
                "provider check"
            }
        ),
        other => format!(
            "{age} {}{}",
            other.reported().map_or("", E2eeState::as_str),
            attested(spec.rcs_attested && other == Rcs::Verified)
        ),
    };
    let in_app = match spec.in_app.reported() {
        None => "missing".to_owned(),
        Some(e) => format!(
            "{age} {}{}",
            e.as_str(),
            attested(spec.in_app_attested && spec.in_app == InApp::Verified)
        ),
    };
    let labels = match spec.labels.checked_sub(1) {
        None => "labels matching no override".to_owned(),
        Some(i) => match policy.overrides().get(i) {
            Some(o) => format!("labels matching override `{}`", o.id),
            None => "other labels".to_owned(),
        },
    };
    let signed = spec.rcs.reported().is_some() || spec.in_app.reported().is_some() || spec.push;
    let client = setting.client(spec);
    let client = if !signed {
        "no signed report".to_owned()
    } else {
        format!(
            "client {} {} (policy revision {}){}",
            client.name,
            client.version,
            client.policy_revision,
            if spec.client_behind {
                ", which the policy treats as stale"
            } else {
                ""
            }
        )
    };
    let provider = if spec.provider_stale {
        "stale provider check"
    } else {
        "provider check"
    };
    let sms = if spec.sms {
        format!("reachable ({provider})")
    } else {
        "no evidence".to_owned()
    };
    let push = if spec.push {
        format!("reachable ({age})")
    } else {
        "no evidence".to_owned()
    };
    let status = match spec.revoked {
        None => "active",
        Some(Revoked::Recently) => "revoked at `now`, after the floor was set",
        Some(Revoked::LongAgo) => "revoked before the floor was set",
    };
    format!("rcs {rcs}; in_app {in_app}; sms {sms}; push {push}; {client}; {labels}; {status}")
}

pub(super) fn outcome_expect(o: &Outcome) -> String {
    match o.route() {
        Some(r) => format!(
            "{{ outcome = {}, route = {}, assurance = {} }}",
            q(o.code()),
            q(&r.name()),
            q(r.assurance.as_str())
        ),
        None => format!("{{ outcome = {} }}", q(o.code())),
    }
}

/// A scenario step: when it happens and its TOML body.
pub(super) struct Event {
    pub(super) at: Timestamp,
    pub(super) body: Vec<String>,
}

pub(super) fn scenario_text(
    policy: &Policy,
    setting: &Setting,
    policy_path: &str,
    state: &State,
    finding: &Finding,
) -> String {
    let now = setting.now;
    let mut events: Vec<Event> = Vec::new();
    let mut add = |at: Timestamp, body: Vec<String>| events.push(Event { at, body });

    for (i, spec) in state.devices.iter().enumerate() {
        let id = device_id(i);
        let labels = setting.labels.get(spec.labels).cloned().unwrap_or_default();
        let mut body = vec![format!("add_device = {}", q(&id))];
        let fields = [
            ("os", labels.os.clone()),
            (
                "os_version",
                labels.os_version.as_ref().map(|v| v.to_string()),
            ),
            ("client", labels.client.clone()),
            (
                "client_version",
                labels.client_version.as_ref().map(|v| v.to_string()),
            ),
            ("carrier", labels.carrier.clone()),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                body.push(format!("{k} = {}", q(&v)));
            }
        }
        add(Timestamp(i64::MIN), body);

        let (provider_at, signed_at) = setting.times(spec);
        // Provider checks: RCS reachability without E2EE, and SMS.
        let mut check = Vec::new();
        match spec.rcs {
            Rcs::ProviderReachable => check.push("rcs = \"reachable\"".to_owned()),
            Rcs::ProviderUnreachable => check.push("rcs = \"unreachable\"".to_owned()),
            _ => {}
        }
        if spec.sms {
            check.push("sms = \"reachable\"".to_owned());
        }
        if !check.is_empty() {
            let mut body = vec![format!("provider_check = {}", q(&id))];
            body.extend(check);
            add(provider_at, body);
        }
        // The signed report: one handshake, which replaces the device's
        // whole signed state. The language has one `attested` flag.
        let mut lines = Vec::new();
        if let Some(e) = spec.rcs.reported() {
            lines.push(format!("rcs = {}", q(e.as_str())));
        }
        if let Some(e) = spec.in_app.reported() {
            lines.push(format!("in_app = {}", q(e.as_str())));
        }
        if spec.push {
            lines.push("push = \"reachable\"".to_owned());
        }
        if !lines.is_empty() {
            let client = setting.client(spec);
            let mut body = vec![format!("handshake = {}", q(&id))];
            body.extend(lines);
            let attested = (spec.rcs == Rcs::Verified && spec.rcs_attested)
                || (spec.in_app == InApp::Verified && spec.in_app_attested);
            if attested {
                body.push("attested = true".into());
            }
            body.push(format!("client = {}", q(&client.name)));
            body.push(format!(
                "client_version = {}",
                q(&client.version.to_string())
            ));
            body.push(format!("policy_revision = {}", client.policy_revision));
            add(signed_at, body);
        }
        if let Some(r) = spec.revoked {
            let at = match r {
                Revoked::Recently => now,
                Revoked::LongAgo => setting.revoked_long_ago,
            };
            add(at, vec![format!("revoke_device = {}", q(&id))]);
        }
    }

    if let Some(o) = state
        .override_
        .and_then(|i| setting.runtime.get(i))
        .cloned()
    {
        let mut fields = vec![
            format!("id = {}", q(&o.id)),
            format!("channel = {}", q(o.channel.as_str())),
        ];
        let m = &o.matcher;
        let texts = [
            ("os", m.os.clone()),
            ("os_version", m.os_version.as_ref().map(|r| r.to_string())),
            ("client", m.client.clone()),
            (
                "client_version",
                m.client_version.as_ref().map(|r| r.to_string()),
            ),
            ("carrier", m.carrier.clone()),
        ];
        for (k, v) in texts {
            if let Some(v) = v {
                fields.push(format!("{k} = {}", q(&v)));
            }
        }
        fields.push(format!("effect = {}", q(o.effect.as_str())));
        if let OverrideEffect::ForceStep(c) = o.effect {
            fields.push(format!("force = {}", q(c.as_str())));
        }
        fields.push(format!("reason = {}", q(&o.reason)));
        fields.push(format!("author = {}", q(&o.author)));
        fields.push(format!("expires_in = {}", q(&OVERRIDE_FOR.to_string())));
        add(
            now,
            vec![format!("set_override = {{ {} }}", fields.join(", "))],
        );
    }
    for f in &state.failed {
        add(
            now,
            vec![format!("provider_down = {}", q(f.channel.as_str()))],
        );
    }

    let class_name = policy
        .classes()
        .get(state.class)
        .map_or(String::new(), |c| c.name.clone());
    if !state.elevation {
        let first = finding.decisions.first().map(|d| &d.outcome);
        let mut body = vec![
            format!("send = {}", q(&class_name)),
            format!("id = {}", q(MESSAGE_ID)),
        ];
        if let Some(o) = first {
            body.push(format!("expect = {}", outcome_expect(o)));
        }
        add(now, body);
        if state.confirmed
            && let Some(d) = finding.decisions.get(1)
        {
            add(
                now,
                vec![
                    format!("confirm = {}", q(MESSAGE_ID)),
                    format!("expect = {}", outcome_expect(&d.outcome)),
                ],
            );
        }
    }

    events.sort_by_key(|e| e.at);
    let start = events
        .iter()
        .map(|e| e.at)
        .find(|t| *t != Timestamp(i64::MIN))
        .unwrap_or(now)
        .min(now);

    // The header: what was checked, and how the scenario relates to it.
    let natural = natural_thread(policy, setting, state);
    let thread_note = if state.elevation {
        format!(
            "ThreadFloor::elevate on a thread at floor `{}` since {} (the scenario runner tries to elevate after every verified handshake; this timeline sets up the evidence)",
            state.thread.floor, state.thread.since
        )
    } else if state.thread == natural {
        format!(
            "thread floor `{}` since {now}, no label: the thread this scenario opens at its send",
            state.thread.floor
        )
    } else {
        let above = if state.thread.floor > natural.floor {
            "; a scenario's thread never reaches a send above what the evidence supports (the runner lowers the floor after every step), so the checked thread exists only inside a single decision"
        } else {
            ""
        };
        format!(
            "thread floor `{}` since {}, label {}; the scenario language cannot set a thread's floor or label directly, so this scenario's thread opens at its send with floor `{}` and no label{above}",
            state.thread.floor,
            state.thread.since,
            state
                .thread
                .label
                .map_or("none".to_owned(), |l| format!("`{l}`")),
            natural.floor
        )
    };
    let mut header = vec![
        format!("Counterexample found by `ladder simulate --exhaustive {policy_path}`"),
        format!("(policy version {}).", policy.version()),
        String::new(),
        format!("Violation: {}", finding.violation),
        String::new(),
        format!("State checked at now = {now}:"),
    ];
    if !state.elevation {
        header.push(format!("- class `{class_name}`"));
    }
    if state.devices.is_empty() {
        header.push("- no devices".into());
    }
    for (i, spec) in state.devices.iter().enumerate() {
        let holds = state.floor_holder && i + 1 == state.devices.len();
        header.push(format!(
            "- device {}: {}{}",
            device_id(i),
            describe_device(setting, policy, spec),
            if holds {
                format!(
                    " -- added by the scenario to hold the thread's floor at `{}`, which the checked state set directly and the scenario language cannot",
                    state.thread.floor
                )
            } else {
                String::new()
            }
        ));
    }
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    header.push(format!(
        "- e-mail address on file: {}; phone number on file: {}",
        yes_no(state.email),
        yes_no(state.phone)
    ));
    header.push(match state.override_ {
        Some(i) if i < setting.policy_overrides => format!(
            "- override `{}` active (set at run time; the policy's own copies have expired)",
            setting.runtime.get(i).map_or("?", |o| o.id.as_str())
        ),
        Some(i) => format!(
            "- synthetic run-time override `{}` active; the policy's own overrides have expired",
            setting.runtime.get(i).map_or("?", |o| o.id.as_str())
        ),
        None => "- no override active (the policy's own have expired)".into(),
    });
    for f in &state.failed {
        header.push(format!(
            "- failed: {} on `{}`",
            f.step
                .map_or("the legacy route".to_owned(), |s| format!("step {s}")),
            f.channel
        ));
    }
    if state.confirmed {
        header.push("- the decision after the sender confirmed the downgrade".into());
    }
    header.push(format!("- {thread_note}"));
    if (state.email || state.phone) && start < now {
        header.push(format!(
            "- the scenario records the contact points at its start ({start}), the checked state at `now`"
        ));
    }
    header.push(
        "The `expect` lines record the violating decision: this file passes while the bug is there."
            .into(),
    );
    header.push(format!(
        "`policy` is relative to this file: save it where `{policy_path}` resolves, or edit the path."
    ));

    let mut out = String::new();
    let _ = writeln!(out, "{}", comment(&header.join("\n")));
    let _ = writeln!(
        out,
        "name = {}",
        q(&format!(
            "exhaustive counterexample (invariant {})",
            finding.violation.invariant()
        ))
    );
    let _ = writeln!(out, "policy = {}", q(policy_path));
    let _ = writeln!(out, "start = {start}");
    let _ = writeln!(
        out,
        "\n[recipient]\nemail = {}\nphone = {}",
        state.email, state.phone
    );
    let mut clock = start;
    for e in &events {
        let at = e.at.max(start);
        if at > clock {
            let gap = Duration(at.0.abs_diff(clock.0));
            let _ = writeln!(out, "\n[[step]]\nadvance = {}", q(&gap.to_string()));
            clock = at;
        }
        let _ = writeln!(out, "\n[[step]]\n{}", e.body.join("\n"));
    }

    let replayed = replay(policy, &out, finding);
    format!("{}\n{out}", comment(&format!("Replay: {replayed}")))
}

/// Replays a counterexample scenario and says whether its final decision is
/// the violating one.
pub(super) fn replay(policy: &Policy, text: &str, finding: &Finding) -> String {
    let scenario = match parse_scenario(text, "counterexample.toml") {
        Ok(s) => s,
        Err(errors) => {
            let first = errors.first().map(ToString::to_string).unwrap_or_default();
            return format!("the generated scenario does not parse ({first})");
        }
    };
    let report = run(&scenario, policy);
    let Some(want) = finding.decisions.last() else {
        return "the scenario rebuilds the evidence; the elevation itself is checked by `ThreadFloor::elevate`, not by a send".into();
    };
    let same_thread = |got: &Decision| {
        got.thread.before.floor == want.thread.before.floor
            && got.thread.before.label == want.thread.before.label
    };
    match (report.decisions.last(), &report.mismatch) {
        (Some(got), None)
            if got.outcome == want.outcome && got.enforced == want.enforced && same_thread(got) =>
        {
            "this scenario reproduces the violating decision".into()
        }
        (Some(got), None) if !same_thread(got) => format!(
            "this scenario's send decides the same way, but on a thread at floor `{}`, label {}, not the checked floor `{}`, label {}: it does not reproduce the violation",
            got.thread.before.floor,
            got.thread
                .before
                .label
                .map_or("none".into(), |l| format!("`{l}`")),
            want.thread.before.floor,
            want.thread
                .before
                .label
                .map_or("none".into(), |l| format!("`{l}`")),
        ),
        (_, Some(m)) => format!(
            "this scenario does not reproduce the state exactly: step {} `{}`: expected {} `{}`, got `{}`",
            m.step, m.label, m.field, m.expected, m.actual
        ),
        _ => {
            "this scenario does not reproduce the state exactly (its final decision differs)".into()
        }
    }
}
