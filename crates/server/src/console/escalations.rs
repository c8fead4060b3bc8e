//! The escalation queue: escalated and held messages with their
//! explanation, and what an operator may do about each — send by a route
//! the core still permits for the class now (never below its minimum;
//! decided again when the operator acts), block, or extend a hold. Every
//! action needs a reason and goes through `service::escalations`, the
//! same path as `POST /v1/escalations/{id}/…`, audited with the
//! operator's key.

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::response::Response;
use ladder_store::StoreError;
use ladder_store::ids::MessageId;
use serde::Deserialize;

use super::{ConsoleError, Frame, Operator, Section, fields, ok, when};
use crate::service::error::ServiceError;
use crate::service::escalations::{self, Action, QueueKind};
use crate::state::{AppState, now};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueForm {
    #[serde(default)]
    pub kind: String,
}

#[derive(Debug)]
struct Item {
    id: String,
    kind: &'static str,
    class: String,
    recipient: String,
    accepted: String,
    next_look: Option<String>,
    explanation: String,
    /// The class's ladder routes, for the operator to choose from; the
    /// core decides again whether the chosen one is permitted.
    routes: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/escalations.html")]
struct QueuePage {
    frame: Frame,
    kind: String,
    items: Vec<Item>,
}

/// `GET /console/escalations`.
pub async fn list(
    State(state): State<AppState>,
    op: Operator,
    Query(form): Query<QueueForm>,
) -> Result<Response, ConsoleError> {
    render(&state, &op, &form.kind, None).await
}

async fn render(
    state: &AppState,
    op: &Operator,
    kind: &str,
    flash: Option<String>,
) -> Result<Response, ConsoleError> {
    let tenant = &op.caller.tenant_id;
    let filter = match kind {
        "" => None,
        k => Some(QueueKind::from_name(k).ok_or_else(|| {
            ServiceError::bad_request(
                "invalid_filter",
                "query `kind` must be `escalated` or `held`",
            )
        })?),
    };
    let items = escalations::queue(state, tenant, filter, None, 100).await?;
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let policy = state.active_policy(&mut conn, tenant).await?;
    drop(conn);
    let mut frame = Frame::new(op, Section::Escalations, "Escalation queue");
    frame.flash = flash;
    Ok(ok(&QueuePage {
        frame,
        kind: kind.to_string(),
        items: items
            .into_iter()
            .map(|q| Item {
                routes: policy
                    .class(&q.class)
                    .map(|c| {
                        c.ladder
                            .iter()
                            .flat_map(|s| {
                                // A step with notifiers is sent with one of them.
                                if s.notifiers.is_empty() {
                                    vec![s.container.to_string()]
                                } else {
                                    s.notifiers
                                        .iter()
                                        .map(|n| format!("{}+{n}", s.container))
                                        .collect()
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                id: q.id,
                kind: q.kind.as_str(),
                class: q.class,
                recipient: q.recipient,
                accepted: when(q.accepted_at),
                next_look: q.next_look_at.map(when),
                explanation: q.explanation,
            })
            .collect(),
    }))
}

/// One form for every action: which one, the reason, and its parameters.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: String,
    reason: String,
    #[serde(default)]
    route: String,
    /// For `extend`: hours from now.
    #[serde(default)]
    hours: Option<u32>,
}

/// `POST /console/escalations/{id}/{action}` with `action` one of `send`,
/// `block`, `extend`.
pub async fn act(
    State(state): State<AppState>,
    op: Operator,
    Path((id, action)): Path<(String, String)>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, ConsoleError> {
    let f = fields(form, "action")?;
    op.check_csrf(&f.csrf)?;
    let id = MessageId::parse(&id, "the message id in the address")?;
    let done = match action.as_str() {
        "send" => escalations::send_by(&state, &op.caller, &id, f.route.trim(), &f.reason).await?,
        "block" => escalations::block(&state, &op.caller, &id, &f.reason).await?,
        "extend" => {
            let hours = i64::from(f.hours.unwrap_or(24));
            escalations::extend(&state, &op.caller, &id, now().0 + hours * 3600, &f.reason).await?
        }
        _ => {
            return Err(ServiceError::not_found("queue action", action).into());
        }
    };
    let what = match done.action {
        Action::Sent => format!(
            "queued for delivery by {}",
            done.route.as_deref().unwrap_or("the chosen route")
        ),
        Action::Blocked => "blocked; it will never be delivered".to_string(),
        Action::Extended => format!(
            "held until {}",
            done.next_look_at.map_or_else(String::new, when)
        ),
    };
    render(
        &state,
        &op,
        "",
        Some(format!(
            "Message {} is {what} (audit entry {}).",
            done.id, done.audit_index
        )),
    )
    .await
}
