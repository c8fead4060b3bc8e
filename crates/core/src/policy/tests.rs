//! Validation tests: each mistake a tenant can make, and where it is reported.

use super::*;
use crate::assurance::Claim;

const BASE: &str = r#"
tenant = "t"
display_name = "T"
[evidence]
[[evidence.source]]
source = "signed_device_report"
verifies = ["reachable", "e2ee"]
fresh_for = "7d"
[[notice]]
name = "default"
text = "Secure message from {tenant}: {link}"
"#;

fn with(extra: &str) -> Result<Parsed, PolicyErrors> {
    Policy::parse(&format!("{BASE}{extra}"), "p.toml")
}

fn first_error(extra: &str) -> (PolicyErrorKind, Location) {
    let e = with(extra).unwrap_err();
    let first = e.0.into_iter().next().unwrap();
    (first.kind, first.location)
}

const CLASS: &str = r#"
[[class]]
name = "notice"
minimum = "transport"
retention = "30d"
on_exhausted = "block"
ladder = [{ container = "portal", notifiers = ["email_notice"] }]
"#;

#[test]
fn a_valid_policy_parses_with_a_stable_content_version() {
    let a = with(CLASS).unwrap().policy;
    let reformatted = format!("# a comment\n{BASE}\n\n{CLASS}").replace(" = ", "=");
    let b = Policy::parse(&reformatted, "q.toml").unwrap().policy;
    assert_eq!(a.version(), b.version());
    assert!(a.version().as_str().starts_with("sha256:"));
    let changed = with(&CLASS.replace("30d", "31d")).unwrap().policy;
    assert_ne!(a.version(), changed.version());
}

#[test]
fn unknown_container_is_reported_at_its_value() {
    let class = CLASS.replace("\"portal\"", "\"email\"");
    let (kind, at) = first_error(&class);
    assert_eq!(
        kind.to_string(),
        "unknown container `email`; expected one of: rcs, in_app, portal, sms"
    );
    let text = format!("{BASE}{class}");
    let line = text.lines().position(|l| l.contains("\"email\"")).unwrap() + 1;
    let column = text
        .lines()
        .nth(line - 1)
        .unwrap()
        .find("\"email\"")
        .unwrap()
        + 1;
    assert_eq!((at.line, at.column), (line, column));
}

#[test]
fn duplicate_classes_point_at_the_first_definition() {
    let (kind, _) = first_error(&format!("{CLASS}{CLASS}"));
    let text = format!("{BASE}{CLASS}");
    let first_line = text
        .lines()
        .position(|l| l.starts_with("name = \"notice\""))
        .unwrap()
        + 1;
    match kind {
        PolicyErrorKind::DuplicateClass { name, first } => {
            assert_eq!((name.as_str(), first.line), ("notice", first_line))
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_container_that_cannot_reach_the_minimum_is_an_error() {
    let (kind, _) = first_error(&CLASS.replace("minimum = \"transport\"", "minimum = \"e2ee\""));
    assert!(matches!(
        kind,
        PolicyErrorKind::StepBelowMinimum {
            container: Container::Portal,
            ..
        }
    ));
    let all = with(&CLASS.replace("minimum = \"transport\"", "minimum = \"e2ee\"")).unwrap_err();
    assert!(
        all.0
            .iter()
            .any(|e| matches!(e.kind, PolicyErrorKind::ClassUnsatisfiable { .. }))
    );
}

#[test]
fn only_signed_reports_may_verify_e2ee() {
    let text = BASE.replace(
        "[[notice]]",
        "[[evidence.source]]\nsource = \"provider_check\"\nverifies = [\"reachable\", \"e2ee\"]\nfresh_for = \"1d\"\n[[notice]]",
    );
    let e = Policy::parse(&format!("{text}{CLASS}"), "p.toml").unwrap_err();
    assert!(matches!(
        e.0[0].kind,
        PolicyErrorKind::UntrustedSourceVerifies {
            claim: Claim::E2ee,
            ..
        }
    ));
}

#[test]
fn notice_templates_cannot_name_content_or_a_class() {
    let (kind, _) = first_error(&format!(
        "[[notice]]\nname = \"x\"\ntext = \"{{subject}} from {{tenant}}\"\n{CLASS}"
    ));
    assert!(
        matches!(kind, PolicyErrorKind::ForbiddenVariable { ref variable, .. } if variable == "subject")
    );
    let (kind, _) = first_error(&format!(
        "[[notice]]\nname = \"x\"\ntext = \"Your Notice is ready\"\n{CLASS}"
    ));
    assert!(
        matches!(kind, PolicyErrorKind::TemplateMentionsClass { ref class, .. } if class == "notice")
    );
}

#[test]
fn observe_mode_needs_a_legacy_route() {
    let (kind, _) = first_error(&CLASS.replace("on_exhausted", "mode = \"observe\"\non_exhausted"));
    assert!(matches!(kind, PolicyErrorKind::ObserveWithoutLegacy { .. }));
}

#[test]
fn overrides_reject_inverted_ranges_and_need_an_expiry() {
    let o = "[[override]]\nid = \"o\"\nchannel = \"rcs\"\nos = \"ios\"\nos_version = \">=26.4,<26.2\"\neffect = \"disable\"\nreason = \"r\"\nauthor = \"a\"\nexpires = 2027-01-01T00:00:00Z\n";
    let (kind, _) = first_error(&format!("{CLASS}{o}"));
    assert!(matches!(
        kind,
        PolicyErrorKind::Version(crate::version::VersionError::Inverted(_))
    ));
    let no_expiry = o
        .replace(">=26.4,<26.2", ">=26.2")
        .replace("expires = 2027-01-01T00:00:00Z\n", "");
    let (kind, _) = first_error(&format!("{CLASS}{no_expiry}"));
    assert!(matches!(
        kind,
        PolicyErrorKind::OverrideWithoutExpiry { .. }
    ));
}

#[test]
fn syntax_errors_carry_a_location() {
    let e = Policy::parse("tenant = \n", "p.toml").unwrap_err();
    assert_eq!(e.0[0].location.line, 1);
    assert!(e.0[0].to_string().starts_with("p.toml:1:"));
}

#[test]
fn warnings_flag_legal_but_suspicious_choices() {
    let legacy = CLASS.replace(
        "on_exhausted",
        "legacy = { container = \"sms\" }\non_exhausted",
    );
    let w = with(&legacy).unwrap().warnings;
    assert!(
        w.iter()
            .any(|w| matches!(w.kind, PolicyWarningKind::LegacyIgnored { .. }))
    );
}

#[test]
fn templates_cannot_name_a_class_with_spaces_for_underscores() {
    let class = CLASS.replace("name = \"notice\"", "name = \"legal_notice\"");
    let (kind, _) = first_error(&format!(
        "[[notice]]\nname = \"x\"\ntext = \"{{tenant}}: a new Legal Notice. {{link}}\"\n{class}"
    ));
    assert!(
        matches!(kind, PolicyErrorKind::TemplateMentionsClass { ref class, .. } if class == "legal_notice")
    );
}

#[test]
fn names_are_plain_identifiers_and_durations_positive() {
    let (kind, _) = first_error(&CLASS.replace("name = \"notice\"", "name = \"no tice\""));
    assert_eq!(
        kind.to_string(),
        "class name `no tice` is not valid: use up to 64 ASCII letters, digits, `_`, `-` or `.`, starting with a letter or digit"
    );
    let (kind, _) = first_error(&CLASS.replace("retention = \"30d\"", "retention = \"0s\""));
    assert_eq!(kind, PolicyErrorKind::ZeroDuration { field: "retention" });
}

#[test]
fn a_force_override_must_steer_off_another_channel() {
    let o = "[[override]]\nid = \"o\"\nchannel = \"portal\"\neffect = \"force_step\"\nforce = \"portal\"\nreason = \"r\"\nauthor = \"a\"\nexpires = 2027-01-01T00:00:00Z\n";
    let (kind, _) = first_error(&format!("{CLASS}{o}"));
    assert!(matches!(kind, PolicyErrorKind::ForceOntoOwnChannel { .. }));
}

#[test]
fn distinct_templates_per_class_are_flagged() {
    let second = CLASS
        .replace("name = \"notice\"", "name = \"other\"")
        .replace("on_exhausted", "notice = \"alt\"\non_exhausted");
    let text = format!(
        "[[notice]]\nname = \"alt\"\ntext = \"From {{tenant}}: {{link}}\"\n{CLASS}{second}"
    );
    let w = with(&text).unwrap().warnings;
    assert!(
        w.iter()
            .any(|w| matches!(w.kind, PolicyWarningKind::DistinctNoticeTemplates { .. }))
    );
}

#[test]
fn error_columns_count_characters_not_bytes() {
    let e = Policy::parse("display_name = \"é\" x\n", "p.toml").unwrap_err();
    assert_eq!(
        e.0[0].location,
        Location {
            line: 1,
            column: 20
        }
    );
}

#[test]
fn regression_class_name_glued_to_a_variable_escaped_the_template_check() {
    let (kind, _) = first_error(&format!(
        "[[notice]]\nname = \"x\"\ntext = \"New secure message from{{tenant}}notice: {{link}}\"\n{CLASS}"
    ));
    assert!(
        matches!(kind, PolicyErrorKind::TemplateMentionsClass { ref class, .. } if class == "notice")
    );
}

#[test]
fn a_class_is_named_however_it_is_spelt() {
    let class = CLASS.replace("name = \"notice\"", "name = \"legal_notice\"");
    for text in [
        "a legal  notice",
        "a Legal.Notice",
        "a LegalNotice",
        "your legalnotices",
        "l-e-g-a-l notice",
        "legal\tnotice",
    ] {
        let e = with(&format!(
            "[[notice]]\nname = \"x\"\ntext = \"{{tenant}}: {text} {{link}}\"\n{class}"
        ));
        assert!(
            e.is_err_and(|e| e
                .0
                .iter()
                .any(|d| matches!(d.kind, PolicyErrorKind::TemplateMentionsClass { .. }))),
            "{text:?} passed"
        );
    }
    // Word boundaries still count: `hr` is not named by "three".
    let hr = CLASS.replace("name = \"notice\"", "name = \"hr\"");
    assert!(
        with(&format!(
            "[[notice]]\nname = \"x\"\ntext = \"{{tenant}}: three new items {{link}}\"\n{hr}"
        ))
        .is_ok()
    );
}

#[test]
fn client_minimums_cannot_be_listed_twice_under_different_case() {
    let text = BASE.replace(
        "[evidence]",
        "[evidence]\nmin_client_version = { \"Acme-App\" = \"1.0\", \"acme-app\" = \"5.2\" }",
    );
    let e = Policy::parse(&format!("{text}{CLASS}"), "p.toml").unwrap_err();
    assert!(
        e.0.iter()
            .any(|d| matches!(d.kind, PolicyErrorKind::DuplicateClient { .. }))
    );
}

#[test]
fn a_portal_opens_without_a_code_only_where_the_minimum_is_none() {
    let off = CLASS.replace(
        "notifiers = [\"email_notice\"] }",
        "notifiers = [\"email_notice\"], step_up = \"none\" }",
    );
    let (kind, at) = first_error(&off);
    assert!(
        matches!(kind, PolicyErrorKind::StepUpOffAboveNone { .. }),
        "{kind}"
    );
    assert_eq!(
        kind.to_string(),
        "class `notice` must reach `transport`, so its portal needs a one-time code: `step_up = \"none\"` is allowed only where the minimum is `none`"
    );
    // Pinned to the setting: line and column of `step_up`'s value.
    let text = format!("{BASE}{off}");
    let line = text.lines().position(|l| l.contains("step_up")).unwrap() + 1;
    assert_eq!(at.line, line);
    let column = text
        .lines()
        .nth(line - 1)
        .unwrap()
        .find("\"none\"")
        .unwrap()
        + 1;
    assert_eq!(at.column, column);

    // Allowed for a class whose payload may travel in plaintext, with a warning.
    let parsed = with(&off.replace("minimum = \"transport\"", "minimum = \"none\"")).unwrap();
    let step = &parsed.policy.classes()[0].ladder[0];
    assert_eq!(step.step_up, crate::assurance::StepUp::None);
    assert!(
        parsed
            .warnings
            .iter()
            .any(|w| matches!(w.kind, PolicyWarningKind::NoStepUp { .. })),
        "{:?}",
        parsed.warnings
    );
}

#[test]
fn weakened_step_up_is_flagged_and_only_portals_take_it() {
    let any = CLASS.replace(
        "notifiers = [\"email_notice\"] }",
        "notifiers = [\"email_notice\"], step_up = \"any_channel\" }",
    );
    let parsed = with(&any).unwrap();
    let w: Vec<String> = parsed.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.iter().any(|w| w.contains("by the notice's own channel")),
        "{w:?}"
    );
    // The default is left out of the canonical form: the version stays.
    let explicit = CLASS.replace(
        "notifiers = [\"email_notice\"] }",
        "notifiers = [\"email_notice\"], step_up = \"other_channel\" }",
    );
    assert_eq!(
        with(&explicit).unwrap().policy.version(),
        with(CLASS).unwrap().policy.version()
    );
    assert_ne!(
        parsed.policy.version(),
        with(CLASS).unwrap().policy.version()
    );

    let (kind, _) = first_error(&CLASS.replace(
        "ladder = [",
        "ladder = [{ container = \"rcs\", step_up = \"any_channel\" }, ",
    ));
    assert!(
        matches!(kind, PolicyErrorKind::StepUpWithoutPortal { .. }),
        "{kind}"
    );
    let (kind, _) = first_error(&CLASS.replace(
        "notifiers = [\"email_notice\"] }",
        "notifiers = [\"email_notice\"], step_up = \"sometimes\" }",
    ));
    assert_eq!(
        kind.to_string(),
        "unknown step-up setting `sometimes`; expected one of: other_channel, any_channel, none"
    );
}

#[test]
fn branding_is_checked_and_defaults_when_absent() {
    let plain = with(CLASS).unwrap().policy;
    assert_eq!(plain.portal_name(), "T");
    assert_eq!(plain.branding(), branding::Branding::default());
    let branded = with(&format!(
        "{CLASS}[branding]\nname = \"Acme Bank\"\naccent = \"#0B5CAD\"\ntext = \"#ffffff\"\n\
         logo = \"data:image/png;base64,iVBORw0KGgo=\"\n"
    ))
    .unwrap()
    .policy;
    assert_eq!(branded.portal_name(), "Acme Bank");
    assert_eq!(branded.branding().accent().to_string(), "#0b5cad");
    assert_ne!(branded.version(), plain.version());
}

#[test]
fn unreadable_branding_colours_are_refused_where_written() {
    let (kind, at) = first_error(&format!(
        "{CLASS}[branding]\naccent = \"#ffff00\"\ntext = \"#ffffff\"\n"
    ));
    assert!(
        matches!(kind, PolicyErrorKind::LowContrast { .. }),
        "{kind}"
    );
    assert!(kind.to_string().contains("4.5:1"), "{kind}");
    assert_eq!(at.column, 8, "{at}");
    let (kind, _) = first_error(&format!("{CLASS}[branding]\naccent = \"blue\"\n"));
    assert!(kind.to_string().contains("`branding.accent`"), "{kind}");
    let (kind, _) = first_error(&format!(
        "{CLASS}[branding]\nlogo = \"https://x.example/l.png\"\n"
    ));
    assert!(kind.to_string().contains("`branding.logo`"), "{kind}");
}
