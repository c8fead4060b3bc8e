//! A class's page, with the rollout panel: its ladder and minimum under the
//! active policy, its figures over a window, and — while it observes — how
//! often enforcement would have routed differently, the exact policy
//! change that enforces it, and a button that publishes that change as a
//! new revision through the same path as `PUT /v1/policy` (audited).

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use ladder_core::policy::rollout;
use ladder_store::{StoreError, policies};
use serde::Deserialize;

use super::overview::{Panels, WINDOWS, WindowForm, panels, window};
use super::policy::{DiffLine, marked};
use super::{ConsoleError, Frame, Operator, Section, fields, name_in_path, ok};
use crate::service::error::ServiceError;
use crate::service::policy::{self as publication, Direction};
use crate::service::stats::dashboard;
use crate::state::AppState;

#[derive(Debug)]
struct StepRow {
    route: String,
    require: String,
}

/// Legacy route against the would-have route, for one observed class.
#[derive(Debug)]
struct WouldHave {
    legacy: String,
    enforced: String,
    count: i64,
    differs: bool,
}

#[derive(Template)]
#[template(path = "console/class.html")]
struct ClassPage {
    frame: Frame,
    name: String,
    minimum: String,
    mode: String,
    on_exhausted: String,
    legacy: Option<String>,
    steps: Vec<StepRow>,
    window: &'static str,
    windows: Vec<&'static str>,
    panels: Panels,
    would_have: Vec<WouldHave>,
    /// The unified diff that enforces the class, when it observes.
    diff: Option<Vec<DiffLine>>,
    revision: u32,
}

/// The active policy's text and its enforced rewrite for `class`.
async fn proposal(
    state: &AppState,
    tenant_id: &str,
    class: &str,
) -> Result<(String, Result<String, rollout::RolloutError>), ServiceError> {
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let active = policies::active(&mut conn, tenant_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("policy", "active"))?;
    let enforced = rollout::enforce(&active.source, class);
    Ok((active.source, enforced))
}

/// `GET /console/classes/{name}`.
pub async fn show(
    State(state): State<AppState>,
    op: Operator,
    Path(name): Path<String>,
    Query(form): Query<WindowForm>,
) -> Result<Response, ConsoleError> {
    name_in_path(&name, "class")?;
    let tenant = &op.caller.tenant_id;
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let policy = state.active_policy(&mut conn, tenant).await?;
    drop(conn);
    let class = policy
        .class(&name)
        .ok_or_else(|| ServiceError::not_found("class", name.clone()))?;
    let (label, q) = window(
        if form.window.is_empty() {
            "7d"
        } else {
            &form.window
        },
        Some(&name),
    )?;
    let d = dashboard(&state, tenant, &q).await?;
    let diff = if class.mode == ladder_core::Mode::Observe {
        let (source, enforced) = proposal(&state, tenant, &name).await?;
        Some(marked(&publication::diff(
            &source,
            &enforced.map_err(|e| ServiceError::Internal(e.to_string()))?,
        )))
    } else {
        None
    };
    let step_name = |s: &ladder_core::Step| {
        std::iter::once(s.container.to_string())
            .chain(s.notifiers.iter().map(ToString::to_string))
            .collect::<Vec<_>>()
            .join("+")
    };
    Ok(ok(&ClassPage {
        frame: Frame::new(&op, Section::Overview, format!("Class {name}")),
        minimum: class.minimum.to_string(),
        mode: class.mode.to_string(),
        on_exhausted: format!("{:?}", class.on_exhausted).to_lowercase(),
        legacy: class.legacy.as_ref().map(step_name),
        steps: class
            .ladder
            .iter()
            .map(|s| StepRow {
                route: step_name(s),
                require: s
                    .require
                    .map_or_else(|| class.minimum.to_string(), |r| r.to_string()),
            })
            .collect(),
        window: label,
        windows: WINDOWS.iter().map(|(n, _, _)| *n).collect(),
        would_have: d
            .observe
            .iter()
            .map(|o| WouldHave {
                differs: o.legacy_route != o.would_have_route,
                legacy: o.legacy_route.clone(),
                enforced: o.would_have_route.clone(),
                count: o.count,
            })
            .collect(),
        panels: panels(&d),
        diff,
        revision: policy.revision(),
        name,
    }))
}

#[derive(Debug, Deserialize)]
pub struct EnforceForm {
    csrf: String,
    /// The revision the operator saw the diff against: a policy published
    /// since makes the shown diff stale, and nothing is published.
    revision: u32,
}

/// `POST /console/classes/{name}/enforce`: publishes the shown change.
pub async fn enforce(
    State(state): State<AppState>,
    op: Operator,
    Path(name): Path<String>,
    form: Result<Form<EnforceForm>, FormRejection>,
) -> Result<Response, ConsoleError> {
    let f = fields(form, "rollout")?;
    op.check_csrf(&f.csrf)?;
    name_in_path(&name, "class")?;
    let tenant = &op.caller.tenant_id;
    let (_, enforced) = proposal(&state, tenant, &name).await?;
    let text = enforced.map_err(|e| ServiceError::conflict("rollout_refused", e.to_string()))?;
    let mut tx = state.store.begin().await?;
    let current = state.active_policy(&mut tx, tenant).await?;
    if current.revision() != f.revision {
        return Err(ServiceError::conflict(
            "stale_rollout",
            format!(
                "the policy is at revision {} now, not {}; review the change again",
                current.revision(),
                f.revision
            ),
        )
        .into());
    }
    publication::publish(
        &mut tx,
        &state,
        tenant,
        &op.tenant_name,
        &text,
        &op.actor(),
        Direction::Forward,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Redirect::to(&format!("/console/classes/{name}")).into_response())
}
