//! `GET /v1/messages` and `GET /v1/recipients`: what a support agent needs
//! to find a message or a person without holding an id already.
//!
//! Lists are tenant-scoped like every read, newest first, and paged by an
//! opaque cursor: the last id of the page, which the next page continues
//! strictly below. Ids are time-ordered and unique, so pages never repeat
//! a row; one committed late (its id made before the page was read) can be
//! missed by a walk already past it. `limit` is 1 to 200 (default
//! 50). Every filter is parsed like any other input; an unknown filter is
//! refused, never ignored.

use axum::Json;
use axum::extract::{Query, State};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ladder_store::ids::{MessageId, RecipientId, ThreadId};
use ladder_store::messages::{self, MessageFilter, Status};
use ladder_store::{StoreError, recipients};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::wire::{DecisionOutcome, ErrorEnvelope};
use crate::auth::Sender;
use crate::service::error::ServiceError;
use crate::state::AppState;

const DEFAULT_LIMIT: u16 = 50;
const MAX_LIMIT: u16 = 200;

/// The page size asked for, 1 to [`MAX_LIMIT`].
pub(super) fn limit(given: Option<i64>) -> Result<u16, ServiceError> {
    match given.map(u16::try_from) {
        None => Ok(DEFAULT_LIMIT),
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ServiceError::bad_request(
            "invalid_limit",
            format!("query `limit` must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// Cuts a page fetched with one row more than `limit` to `limit` rows;
/// the cursor of the next page when that extra row was there.
pub(super) fn cut<T>(page: &mut Vec<T>, limit: u16, id: impl Fn(&T) -> &str) -> Option<String> {
    let more = page.len() > usize::from(limit);
    page.truncate(usize::from(limit));
    more.then(|| page.last().map(|row| B64.encode(id(row))))
        .flatten()
}

/// The id a cursor stands for, parsed as `parse` says; a cursor that is
/// not one ladder gave out is a 400.
pub(super) fn after<T>(
    cursor: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, ServiceError> {
    let Some(c) = cursor else { return Ok(None) };
    B64.decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| parse(&s))
        .map(Some)
        .ok_or_else(|| {
            ServiceError::bad_request(
                "invalid_cursor",
                "query `cursor` is not a cursor from a previous page; start without one",
            )
        })
}

/// A sender's own id for a person, as a filter: text without control
/// characters, at most 128 bytes.
fn external_id(name: &'static str, given: Option<String>) -> Result<Option<String>, ServiceError> {
    // Registration stores the id trimmed; so is the filter.
    match given.map(|g| g.trim().to_string()) {
        Some(e) if e.is_empty() || e.len() > 128 || e.chars().any(char::is_control) => {
            Err(ServiceError::bad_request(
                "invalid_filter",
                format!(
                    "query `{name}` must be 1-128 characters, none of them a control character"
                ),
            ))
        }
        other => Ok(other),
    }
}

/// Whether `r` has the shape of a route name: one or two lowercase words
/// joined by `+` (`rcs`, `portal+email_notice`).
fn is_route_name(r: &str) -> bool {
    let mut parts = r.split('+');
    let word = |w: Option<&str>| {
        w.is_some_and(|w| {
            !w.is_empty() && w.len() <= 32 && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
    };
    word(parts.next()) && parts.next().is_none_or(|w| word(Some(w))) && parts.next().is_none()
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// The sender's own id for the recipient (`external_id`).
    pub recipient: Option<String>,
    pub recipient_id: Option<String>,
    pub class: Option<String>,
    pub status: Option<String>,
    pub thread: Option<String>,
    /// Accepted at or after, Unix seconds.
    pub since: Option<i64>,
    /// Accepted before, Unix seconds.
    pub until: Option<i64>,
    /// The decision's outcome: `deliver`, `confirmation_required`, `hold`,
    /// `escalate`, `block`.
    pub outcome: Option<String>,
    /// The decided route, as `portal+email_notice`.
    pub route: Option<String>,
    /// `observe` or `enforce`.
    pub mode: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

impl MessageQuery {
    /// Whether any filter narrows the search (paging aside).
    pub fn has_filter(&self) -> bool {
        self.recipient.is_some()
            || self.recipient_id.is_some()
            || self.class.is_some()
            || self.status.is_some()
            || self.thread.is_some()
            || self.since.is_some()
            || self.until.is_some()
            || self.outcome.is_some()
            || self.route.is_some()
            || self.mode.is_some()
    }
}

/// A filter that must be one of `known`, named in the error if not.
fn one_of(
    name: &'static str,
    given: Option<String>,
    known: &[&str],
) -> Result<Option<String>, ServiceError> {
    match given {
        Some(g) if !known.contains(&g.as_str()) => Err(ServiceError::bad_request(
            "invalid_filter",
            format!("query `{name}` must be one of {}", known.join(", ")),
        )),
        other => Ok(other),
    }
}

/// One page of a message search, newest first.
#[derive(Debug)]
pub(crate) struct MessagePage {
    pub messages: Vec<ladder_store::messages::Message>,
    pub next_cursor: Option<String>,
}

/// One message in a search: what it is and where it stands, no content.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageRow {
    pub id: String,
    #[schema(value_type = String)]
    pub status: Status,
    pub class: String,
    /// The recipient id.
    pub recipient: String,
    /// The thread id.
    pub thread: String,
    pub accepted_at: i64,
    pub updated_at: i64,
    /// `observe` or `enforce`.
    #[schema(value_type = String)]
    pub mode: ladder_core::Mode,
    pub outcome: DecisionOutcome,
    /// The decided route, as `portal+email_notice`.
    pub route: Option<String>,
}

/// A page of messages, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Messages {
    pub messages: Vec<MessageRow>,
    pub next_cursor: Option<String>,
}

/// Searches the tenant's messages, newest first.
#[utoipa::path(get, path = "/v1/messages", tag = "messages", operation_id = "listMessages",
    security(("bearer" = ["sender"])),
    params(MessageQuery),
    responses(
        (status = 200, description = "A page.", body = Messages),
        (status = 400, description = "A malformed filter, cursor or limit, named.", body = ErrorEnvelope),
    ))]
pub async fn messages(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Query(q): Query<MessageQuery>,
) -> Result<Json<Messages>, ServiceError> {
    let MessagePage {
        messages: page,
        next_cursor: next,
    } = find_messages(&state, &caller.tenant_id, q).await?;
    Ok(Json(Messages {
        messages: page
            .into_iter()
            .map(|m| MessageRow {
                outcome: DecisionOutcome::of(&m.decision.outcome),
                route: m.decision.outcome.route().map(|r| r.name()),
                mode: m.decision.mode,
                id: m.id,
                status: m.status,
                class: m.class,
                recipient: m.recipient_id,
                thread: m.thread_id,
                accepted_at: m.accepted_at,
                updated_at: m.updated_at,
            })
            .collect(),
        next_cursor: next,
    }))
}

/// The search behind `GET /v1/messages`, for the API and the console
/// alike: every filter parsed as the API documents it.
pub(crate) async fn find_messages(
    state: &AppState,
    tenant_id: &str,
    q: MessageQuery,
) -> Result<MessagePage, ServiceError> {
    let limit = limit(q.limit)?;
    if q.class
        .as_deref()
        .is_some_and(|c| !crate::service::send::valid_name(c))
    {
        return Err(ServiceError::bad_request(
            "invalid_filter",
            "query `class` must be 1-128 letters, digits, `-`, `_`, `.` or `:`",
        ));
    }
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(Status::from_name(s).ok_or_else(|| {
            let known: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
            ServiceError::bad_request(
                "invalid_filter",
                format!("query `status` must be one of {}", known.join(", ")),
            )
        })?),
    };
    let filter = MessageFilter {
        recipient_id: q
            .recipient_id
            .as_deref()
            .map(|r| RecipientId::parse(r, "query `recipient_id`"))
            .transpose()?
            .map(|r| r.as_str().to_string()),
        external_id: external_id("recipient", q.recipient)?,
        class: q.class,
        status,
        thread_id: q
            .thread
            .as_deref()
            .map(|t| ThreadId::parse(t, "query `thread`"))
            .transpose()?
            .map(|t| t.as_str().to_string()),
        since: q.since,
        until: q.until,
        outcome: one_of("outcome", q.outcome, &ladder_core::Outcome::CODES)?,
        route: match q.route {
            Some(r) if !is_route_name(&r) => {
                return Err(ServiceError::bad_request(
                    "invalid_filter",
                    "query `route` must name a route as `container` or `container+notifier`, e.g. `portal+email_notice`",
                ));
            }
            other => other,
        },
        mode: one_of(
            "mode",
            q.mode,
            &ladder_core::Mode::ALL.map(ladder_core::Mode::as_str),
        )?,
    };
    let before = after(q.cursor.as_deref(), |s| MessageId::parse(s, "cursor").ok())?;
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let mut page = messages::list(
        &mut conn,
        tenant_id,
        &filter,
        before.as_ref().map(MessageId::as_str),
        i64::from(limit) + 1,
    )
    .await?;
    let next_cursor = cut(&mut page, limit, |m| &m.id);
    Ok(MessagePage {
        messages: page,
        next_cursor,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecipientQuery {
    /// The sender's own id for the person.
    pub external_id: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// One recipient in a search: contact points on file, never addresses.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientRow {
    pub id: String,
    pub external_id: String,
    pub pseudonym: String,
    pub has_email: bool,
    pub has_phone: bool,
    pub created_at: i64,
    /// The portal's language for them (BCP 47), if set.
    pub language: Option<String>,
    /// Their IANA time zone for times on the portal, if set.
    pub time_zone: Option<String>,
}

/// A page of recipients, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipients {
    pub recipients: Vec<RecipientRow>,
    pub next_cursor: Option<String>,
}

/// Searches the tenant's recipients, newest first.
#[utoipa::path(get, path = "/v1/recipients", tag = "recipients", operation_id = "listRecipients",
    security(("bearer" = ["sender"])),
    params(RecipientQuery),
    responses(
        (status = 200, description = "A page.", body = Recipients),
        (status = 400, description = "A malformed filter, cursor or limit, named.", body = ErrorEnvelope),
    ))]
pub async fn recipients(
    State(state): State<AppState>,
    Sender(caller): Sender,
    Query(q): Query<RecipientQuery>,
) -> Result<Json<Recipients>, ServiceError> {
    let (page, next) = find_recipients(&state, &caller.tenant_id, q).await?;
    Ok(Json(Recipients {
        recipients: page
            .into_iter()
            .map(|r| RecipientRow {
                id: r.id,
                external_id: r.external_id,
                pseudonym: r.pseudonym,
                has_email: r.has_email,
                has_phone: r.has_phone,
                created_at: r.created_at,
                language: r.language,
                time_zone: r.time_zone,
            })
            .collect(),
        next_cursor: next,
    }))
}

/// The search behind `GET /v1/recipients`: one page and the next cursor.
pub(crate) async fn find_recipients(
    state: &AppState,
    tenant_id: &str,
    q: RecipientQuery,
) -> Result<(Vec<recipients::Recipient>, Option<String>), ServiceError> {
    let limit = limit(q.limit)?;
    let external = external_id("external_id", q.external_id)?;
    let before = after(q.cursor.as_deref(), |s| {
        RecipientId::parse(s, "cursor").ok()
    })?;
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let mut page = recipients::list(
        &mut conn,
        tenant_id,
        external.as_deref(),
        before.as_ref().map(RecipientId::as_str),
        i64::from(limit) + 1,
    )
    .await?;
    let next = cut(&mut page, limit, |r| &r.id);
    Ok((page, next))
}
