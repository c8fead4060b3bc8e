//! Message search and the message page: what a support agent needs to
//! answer "why did this payslip not go over RCS?".
//!
//! The search is `GET /v1/messages`'s own (same filters, same parsing,
//! same cursor); an empty form field means "any". The message page shows
//! the decision with its explanation, every step with its skip reasons,
//! the events, the provider hand-overs, and each audit entry about the
//! message with its inclusion proof checked against the latest signed
//! checkpoint.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use ladder_store::ids::MessageId;
use ladder_store::messages::{self, Status};
use ladder_store::{StoreError, deliveries, threads};
use serde::Deserialize;

use super::audit::{ProofCheck, check_inclusion};
use super::{ConsoleError, Frame, Operator, Section, ok, when};
use crate::api::lists::{MessagePage, MessageQuery, find_messages};
use crate::state::AppState;

/// The search form: every field optional, empty meaning "any".
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchForm {
    #[serde(default)]
    pub recipient: String,
    #[serde(default)]
    pub class: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub outcome: String,
    #[serde(default)]
    pub route: String,
    #[serde(default)]
    pub mode: String,
    #[serde(default)]
    pub thread: String,
    #[serde(default)]
    pub cursor: String,
}

fn given(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

impl SearchForm {
    fn query(&self) -> MessageQuery {
        MessageQuery {
            recipient: given(&self.recipient),
            recipient_id: None,
            class: given(&self.class),
            status: given(&self.status),
            thread: given(&self.thread),
            since: None,
            until: None,
            outcome: given(&self.outcome),
            route: given(&self.route),
            mode: given(&self.mode),
            cursor: given(&self.cursor),
            limit: Some(50),
        }
    }

    /// The query string of the next page: these filters and `cursor`.
    fn next_page(&self, cursor: &str) -> String {
        let mut pairs = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("recipient", &self.recipient),
            ("class", &self.class),
            ("status", &self.status),
            ("outcome", &self.outcome),
            ("route", &self.route),
            ("mode", &self.mode),
            ("thread", &self.thread),
        ] {
            if !v.trim().is_empty() {
                pairs.append_pair(k, v.trim());
            }
        }
        pairs.append_pair("cursor", cursor);
        pairs.finish()
    }
}

/// One row of the result table.
#[derive(Debug)]
pub struct Row {
    pub id: String,
    pub accepted: String,
    pub class: String,
    pub status: &'static str,
    pub outcome: &'static str,
    pub route: String,
    pub mode: &'static str,
    pub tone: &'static str,
}

/// How a status reads at a glance: settled well, needs a look, or stopped.
pub fn tone(status: Status) -> &'static str {
    match status {
        Status::Delivered | Status::Read => "ok",
        Status::Blocked | Status::Failed | Status::Expired | Status::Revoked => "bad",
        Status::Escalated | Status::Held | Status::AwaitingConfirmation => "warn",
        Status::Queued | Status::Sent => "",
    }
}

pub fn row(m: &messages::Message) -> Row {
    Row {
        id: m.id.clone(),
        accepted: when(m.accepted_at),
        class: m.class.clone(),
        status: m.status.as_str(),
        outcome: m.decision.outcome.code(),
        route: m
            .decision
            .outcome
            .route()
            .map_or_else(|| "—".to_string(), |r| r.name()),
        mode: m.decision.mode.as_str(),
        tone: tone(m.status),
    }
}

#[derive(Template)]
#[template(path = "console/messages.html")]
struct SearchPage {
    frame: Frame,
    form: SearchForm,
    statuses: Vec<&'static str>,
    outcomes: [&'static str; 5],
    searched: bool,
    rows: Vec<Row>,
    next: Option<String>,
}

/// `GET /console/messages`.
pub async fn search(
    State(state): State<AppState>,
    op: Operator,
    Query(form): Query<SearchForm>,
) -> Result<Response, ConsoleError> {
    let MessagePage {
        messages,
        next_cursor,
    } = find_messages(&state, &op.caller.tenant_id, form.query()).await?;
    let next = next_cursor.map(|c| form.next_page(&c));
    Ok(ok(&SearchPage {
        frame: Frame::new(&op, Section::Messages, "Messages"),
        statuses: Status::ALL.iter().map(|s| s.as_str()).collect(),
        outcomes: ladder_core::Outcome::CODES,
        searched: form.query().has_filter(),
        rows: messages.iter().map(row).collect(),
        next,
        form,
    }))
}

/// One ladder step as the decision saw it.
#[derive(Debug)]
struct StepRow {
    index: usize,
    route: String,
    required: String,
    assurance: String,
    chosen: bool,
    reasons: Vec<String>,
}

#[derive(Debug)]
struct EventRow {
    at: String,
    kind: String,
    detail: String,
}

#[derive(Debug)]
struct DeliveryRow {
    channel: String,
    status: String,
    created: String,
    updated: String,
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePageView {
    frame: Frame,
    row: Row,
    recipient: String,
    thread: String,
    thread_label: String,
    expires: String,
    enforced: Option<&'static str>,
    explanation: String,
    steps: Vec<StepRow>,
    events: Vec<EventRow>,
    deliveries: Vec<DeliveryRow>,
    proofs: Vec<ProofCheck>,
}

/// An event's detail as `key value · key value`, nulls left out: read by
/// people, not parsed.
fn facts(detail: &serde_json::Value) -> String {
    match detail {
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k} {s}"),
                other => format!("{k} {other}"),
            })
            .collect::<Vec<_>>()
            .join(" · "),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `GET /console/messages/{id}`.
pub async fn show(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let id = MessageId::parse(&id, "the message id in the address")?;
    let tenant = &op.caller.tenant_id;
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let m = messages::get(&mut conn, tenant, id.as_str())
        .await?
        .ok_or_else(|| crate::service::error::ServiceError::not_found("message", id.as_str()))?;
    let events = messages::events(&mut conn, tenant, &m.id).await?;
    let handed = deliveries::of_message(&mut conn, tenant, &m.id).await?;
    let thread = threads::get(&mut conn, tenant, &m.thread_id).await?;
    let about = ladder_store::audit::signed::indexes_about(&mut conn, tenant, &m.id).await?;
    drop(conn);
    let mut proofs = Vec::with_capacity(about.len());
    for (index, kind) in about {
        proofs.push(check_inclusion(&state, tenant, index, kind).await?);
    }
    let d = &m.decision;
    let chosen = d.outcome.route().and_then(|r| r.step);
    let steps = d
        .steps
        .iter()
        .map(|s| StepRow {
            index: s.index,
            route: s.route.clone(),
            required: s.required.to_string(),
            assurance: s.assurance.map_or_else(|| "—".into(), |a| a.to_string()),
            chosen: chosen == Some(s.index) && s.skipped.is_empty(),
            reasons: s.skipped.iter().map(ToString::to_string).collect(),
        })
        .collect();
    Ok(ok(&MessagePageView {
        frame: Frame::new(&op, Section::Messages, format!("Message {}", m.id)),
        recipient: m.recipient_id.clone(),
        thread: m.thread_id.clone(),
        thread_label: thread.map_or_else(
            || "—".to_string(),
            |t| format!("{} (floor {})", t.name, t.floor.floor),
        ),
        expires: when(m.expires_at),
        enforced: d.enforced.as_ref().map(|o| o.code()),
        explanation: ladder_core::decision::explain(d),
        steps,
        events: events
            .into_iter()
            .map(|e| EventRow {
                at: when(e.at),
                kind: e.kind,
                detail: facts(&e.detail),
            })
            .collect(),
        deliveries: handed
            .into_iter()
            .map(|h| DeliveryRow {
                channel: h.channel,
                status: h.status,
                created: when(h.created_at),
                updated: when(h.updated_at),
            })
            .collect(),
        proofs,
        row: row(&m),
    }))
}
