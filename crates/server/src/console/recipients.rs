//! Recipient search and the recipient page: the devices with the evidence
//! the core judges them by (and how old it is), the contact points on
//! file (whether, never the address), and the threads with their floors
//! and the recorded causes of their last drops.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use ladder_core::Timestamp;
use ladder_store::ids::RecipientId;
use ladder_store::{StoreError, audit, messages::MessageFilter, threads};
use serde::Deserialize;

use super::messages::{Row, row};
use super::{ConsoleError, Frame, Operator, Section, ok, when};
use crate::api::lists::{RecipientQuery, find_recipients};
use crate::service::error::ServiceError;
use crate::service::load_recipient;
use crate::state::{AppState, now};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchForm {
    #[serde(default)]
    pub external_id: String,
    #[serde(default)]
    pub cursor: String,
}

#[derive(Debug)]
struct PersonRow {
    id: String,
    external_id: String,
    email: bool,
    phone: bool,
    created: String,
}

#[derive(Template)]
#[template(path = "console/recipients.html")]
struct SearchPage {
    frame: Frame,
    external_id: String,
    rows: Vec<PersonRow>,
    next: Option<String>,
}

/// `GET /console/recipients`.
pub async fn search(
    State(state): State<AppState>,
    op: Operator,
    Query(form): Query<SearchForm>,
) -> Result<Response, ConsoleError> {
    let external = form.external_id.trim();
    let cursor = form.cursor.trim();
    let q = RecipientQuery {
        external_id: (!external.is_empty()).then(|| external.to_string()),
        cursor: (!cursor.is_empty()).then(|| cursor.to_string()),
        limit: Some(50),
    };
    let (people, next) = find_recipients(&state, &op.caller.tenant_id, q).await?;
    let next = next.map(|c| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if !external.is_empty() {
            q.append_pair("external_id", external);
        }
        q.append_pair("cursor", &c);
        q.finish()
    });
    Ok(ok(&SearchPage {
        frame: Frame::new(&op, Section::Recipients, "Recipients"),
        external_id: external.to_string(),
        rows: people
            .into_iter()
            .map(|r| PersonRow {
                id: r.id,
                external_id: r.external_id,
                email: r.has_email,
                phone: r.has_phone,
                created: when(r.created_at),
            })
            .collect(),
        next,
    }))
}

/// One transport's evidence on one device.
#[derive(Debug)]
struct EvidenceRow {
    transport: String,
    reachable: bool,
    e2ee: String,
    attested: bool,
    source: String,
    observed: String,
    age: String,
}

#[derive(Debug)]
struct DeviceRow {
    id: String,
    platform: String,
    client: String,
    enrolled: String,
    revoked: Option<String>,
    evidence: Vec<EvidenceRow>,
}

#[derive(Debug)]
struct ThreadRow {
    id: String,
    name: String,
    floor: String,
    since: String,
    label: String,
    drops: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/recipient.html")]
struct PersonPage {
    frame: Frame,
    id: String,
    external_id: String,
    pseudonym: String,
    email: String,
    phone: String,
    devices: Vec<DeviceRow>,
    threads: Vec<ThreadRow>,
    recent: Vec<Row>,
}

/// What a `thread_downgraded` audit entry records.
#[derive(Debug, Deserialize)]
struct DropDetails {
    from: ladder_core::AssuranceLevel,
    to: ladder_core::AssuranceLevel,
    causes: Vec<serde_json::Value>,
}

/// How long ago `at` was, in the largest whole unit.
fn age(at: Timestamp, now: Timestamp) -> String {
    let s = now.0.saturating_sub(at.0).max(0);
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

fn contact(e: Option<&ladder_core::evidence::ContactEvidence>, at: Timestamp) -> String {
    e.map_or_else(
        || "none on file".to_string(),
        |c| {
            format!(
                "on file ({:?}, observed {})",
                c.source,
                age(c.observed_at, at)
            )
        },
    )
}

/// `GET /console/recipients/{id}`.
pub async fn show(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let id = RecipientId::parse(&id, "the recipient id in the address")?;
    let tenant = &op.caller.tenant_id;
    let at = now();
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let r = load_recipient(&mut conn, tenant, id.as_str()).await?;
    let threads =
        threads::list_for_recipient(&mut conn, state.store.dialect(), false, tenant, id.as_str())
            .await?;
    let filter = MessageFilter {
        recipient_id: Some(id.as_str().to_string()),
        ..MessageFilter::default()
    };
    let recent = ladder_store::messages::list(&mut conn, tenant, &filter, None, 10).await?;
    drop(conn);
    // The audit reads below take their own connection (one, on SQLite).
    let mut thread_rows = Vec::with_capacity(threads.len());
    for t in &threads {
        // The thread's recorded drops, oldest first; the page shows the last three.
        let recorded = audit::page_filtered(
            &state.store,
            tenant,
            0,
            &audit::Filter {
                kind: Some("thread_downgraded"),
                subject: Some(&t.id),
            },
            1000,
        )
        .await?;
        let mut drops = Vec::new();
        for e in recorded.iter().rev().take(3) {
            let d: DropDetails = serde_json::from_value(e.details.clone()).map_err(|err| {
                ServiceError::Internal(format!("audit entry {} is not a thread drop: {err}", e.seq))
            })?;
            drops.push(format!(
                "{}: {} → {} ({})",
                when(e.at),
                d.from,
                d.to,
                serde_json::Value::from(d.causes)
            ));
        }
        thread_rows.push(ThreadRow {
            id: t.id.clone(),
            name: t.name.clone(),
            floor: t.floor.floor.to_string(),
            since: when(t.floor.since.0),
            label: t
                .floor
                .label
                .map_or_else(|| "nothing delivered yet".into(), |l| l.to_string()),
            drops,
        });
    }
    let devices = r
        .devices
        .iter()
        .map(|d| {
            let e = &d.evidence;
            let labels = &e.labels;
            DeviceRow {
                id: d.id.clone(),
                platform: [labels.os.as_deref(), labels.client.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" · "),
                client: e.client.as_ref().map_or_else(
                    || "no signed report yet".into(),
                    |c| format!("{} {}", c.name, c.version),
                ),
                enrolled: when(e.enrolled_at.0),
                revoked: e.revoked_at.map(|t| when(t.0)),
                evidence: e
                    .transports
                    .iter()
                    .map(|(t, ev)| EvidenceRow {
                        transport: t.to_string(),
                        reachable: ev.reachable,
                        e2ee: format!("{:?}", ev.e2ee).to_lowercase(),
                        attested: ev.attested,
                        source: format!("{:?}", ev.source),
                        observed: when(ev.observed_at.0),
                        age: age(ev.observed_at, at),
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(ok(&PersonPage {
        frame: Frame::new(&op, Section::Recipients, r.recipient.external_id.clone()),
        id: r.recipient.id.clone(),
        external_id: r.recipient.external_id.clone(),
        pseudonym: r.recipient.pseudonym.clone(),
        email: contact(r.evidence.email.as_ref(), at),
        phone: contact(r.evidence.phone.as_ref(), at),
        devices,
        threads: thread_rows,
        recent: recent.iter().map(row).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::age;
    use ladder_core::Timestamp;

    #[test]
    fn ages_read_in_the_largest_whole_unit() {
        let now = Timestamp(1_000_000);
        assert_eq!(age(Timestamp(999_990), now), "10 s ago");
        assert_eq!(age(Timestamp(1_000_000 - 7200), now), "2 h ago");
        assert_eq!(age(Timestamp(1_000_000 - 3 * 86_400), now), "3 days ago");
        assert_eq!(age(Timestamp(1_000_100), now), "0 s ago");
    }
}
