//! The kill switch: emergency overrides set, renewed and cleared from the
//! console through the same service as `POST /v1/overrides`, with the
//! traffic each active override touches (the classes and ladder steps on
//! its channel under the active policy) and the full history.

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::response::Response;
use ladder_core::{Channel, Policy, Timestamp};
use ladder_store::StoreError;
use ladder_store::overrides as stored;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::session::Csrf;
use super::{ConsoleError, Frame, Operator, Section, fields, name_in_path, ok, when};
use crate::service::overrides;
use crate::state::{AppState, now};

#[derive(Debug)]
struct OverrideRow {
    id: String,
    channel: String,
    matcher: String,
    effect: String,
    reason: String,
    author: String,
    expires: String,
    state: &'static str,
    affects: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/overrides.html")]
struct OverridesPage {
    frame: Frame,
    active: Vec<OverrideRow>,
    history: Vec<OverrideRow>,
    channels: Vec<&'static str>,
    containers: Vec<&'static str>,
}

/// Where an override on `channel` bites under `policy`: each class with
/// the ladder steps (1-based) that use the channel as container or notifier.
fn affected(policy: &Policy, channel: Channel) -> Vec<String> {
    policy
        .classes()
        .iter()
        .filter_map(|c| {
            let steps: Vec<String> = c
                .ladder
                .iter()
                .enumerate()
                .filter(|(_, s)| {
                    s.container.channel() == channel
                        || s.notifiers.iter().any(|n| n.channel() == channel)
                })
                .map(|(i, _)| (i + 1).to_string())
                .collect();
            (!steps.is_empty())
                .then(|| format!("{} ({} mode): step {}", c.name, c.mode, steps.join(", ")))
        })
        .collect()
}

/// `GET /console/overrides`.
pub async fn list(State(state): State<AppState>, op: Operator) -> Result<Response, ConsoleError> {
    render(&state, &op, None).await
}

async fn render(
    state: &AppState,
    op: &Operator,
    flash: Option<String>,
) -> Result<Response, ConsoleError> {
    let tenant = &op.caller.tenant_id;
    let at = now();
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let policy = state.active_policy(&mut conn, tenant).await?;
    let all = stored::list(&mut conn, tenant).await?;
    drop(conn);
    let (mut active, mut history) = (Vec::new(), Vec::new());
    for o in all.into_iter().rev() {
        let r = &o.rule;
        let live = o.cleared_at.is_none() && r.is_active(at);
        let row = OverrideRow {
            id: r.id.clone(),
            channel: r.channel.to_string(),
            matcher: serde_json::to_value(&r.matcher)
                .ok()
                .filter(|v| v.as_object().is_some_and(|m| !m.is_empty()))
                .map_or_else(|| "every device".into(), |v| v.to_string()),
            effect: match &r.effect {
                ladder_core::overrides::OverrideEffect::ForceStep(c) => format!("force_step → {c}"),
                e => e.as_str().to_string(),
            },
            reason: r.reason.clone(),
            author: r.author.clone(),
            expires: when(r.expires.0),
            state: if o.cleared_at.is_some() {
                "cleared"
            } else if live {
                "active"
            } else {
                "expired"
            },
            affects: if live {
                affected(&policy, r.channel)
            } else {
                Vec::new()
            },
        };
        if live {
            active.push(row);
        } else {
            history.push(row);
        }
    }
    let mut frame = Frame::new(op, Section::Overrides, "Overrides");
    frame.flash = flash;
    Ok(ok(&OverridesPage {
        frame,
        active,
        history,
        channels: Channel::ALL.iter().map(|c| c.as_str()).collect(),
        containers: ladder_core::Container::ALL
            .iter()
            .map(|c| c.as_str())
            .collect(),
    }))
}

/// The set form. Empty fields are left out; the rest goes through the
/// same validation as a policy file's `[[override]]`.
#[derive(Debug, Deserialize)]
pub struct SetForm {
    csrf: String,
    id: String,
    channel: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    os_version: String,
    #[serde(default)]
    client: String,
    #[serde(default)]
    client_version: String,
    effect: String,
    #[serde(default)]
    force: String,
    reason: String,
    /// Hours from now until it expires.
    expires_in_hours: u32,
}

/// `POST /console/overrides`.
pub async fn set(
    State(state): State<AppState>,
    op: Operator,
    form: Result<Form<SetForm>, FormRejection>,
) -> Result<Response, ConsoleError> {
    let f = fields(form, "override")?;
    op.check_csrf(&f.csrf)?;
    let hours = i64::from(f.expires_in_hours.clamp(1, 24 * 365));
    let expires = Timestamp(now().0.saturating_add(hours * 3600));
    let mut fields = Map::new();
    for (k, v) in [
        ("id", &f.id),
        ("channel", &f.channel),
        ("os", &f.os),
        ("os_version", &f.os_version),
        ("client", &f.client),
        ("client_version", &f.client_version),
        ("effect", &f.effect),
        ("force", &f.force),
        ("reason", &f.reason),
    ] {
        if !v.trim().is_empty() {
            fields.insert(k.into(), Value::String(v.trim().to_string()));
        }
    }
    fields.insert("author".into(), Value::String(op.actor()));
    fields.insert("expires".into(), Value::String(expires.to_string()));
    let text = overrides::toml_from_json(&Value::Object(fields))?;
    let o = overrides::set(&state, &op.caller.tenant_id, &op.actor(), &text).await?;
    render(
        &state,
        &op,
        Some(format!(
            "Override `{}` is active until {}; the next decision applies it.",
            o.rule.id,
            when(o.rule.expires.0)
        )),
    )
    .await
}

/// `POST /console/overrides/{id}/clear`.
pub async fn clear(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Form(f): Form<Csrf>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(&f.csrf)?;
    name_in_path(&id, "override id")?;
    overrides::clear(&state, &op.caller.tenant_id, &op.actor(), &id).await?;
    render(&state, &op, Some(format!("Override `{id}` is cleared."))).await
}

#[derive(Debug, Deserialize)]
pub struct RenewForm {
    csrf: String,
    expires_in_hours: u32,
}

/// `POST /console/overrides/{id}/renew`.
pub async fn renew(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Form(f): Form<RenewForm>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(&f.csrf)?;
    name_in_path(&id, "override id")?;
    let hours = i64::from(f.expires_in_hours.clamp(1, 24 * 365));
    let expires = Timestamp(now().0.saturating_add(hours * 3600));
    let o = overrides::renew(&state, &op.caller.tenant_id, &op.actor(), &id, expires).await?;
    render(
        &state,
        &op,
        Some(format!(
            "Override `{id}` now lasts until {}.",
            when(o.rule.expires.0)
        )),
    )
    .await
}
