//! The overview dashboard: what share of traffic went which way, how often
//! ladder fell back, blocked, escalated or held, and — for classes still
//! in observe mode — how often enforcement would have routed differently.
//!
//! Figures come from `service::stats::dashboard`, the same counters
//! `GET /v1/stats` answers from (kept as the service writes, never a scan
//! of messages); charts are drawn here as SVG ([`super::chart`]).

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::chart::{self, Series};
use super::{ConsoleError, Frame, Operator, Section, ok, when};
use crate::service::error::ServiceError;
use crate::service::stats::{Bucket, Dashboard, StatsQuery, dashboard};
use crate::state::{AppState, now};

/// The windows the dashboard offers: name, length and bucket.
pub const WINDOWS: [(&str, i64, Bucket); 4] = [
    ("1h", 3600, Bucket::Minute),
    ("24h", 86_400, Bucket::Hour),
    ("7d", 7 * 86_400, Bucket::Day),
    ("30d", 30 * 86_400, Bucket::Day),
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowForm {
    #[serde(default)]
    pub window: String,
}

/// The stats query for a window name (default the last 24 h), for one
/// class or all.
pub fn window(name: &str, class: Option<&str>) -> Result<(&'static str, StatsQuery), ServiceError> {
    let name = if name.is_empty() { "24h" } else { name };
    let (label, span, bucket) = WINDOWS
        .iter()
        .find(|(n, _, _)| *n == name)
        .copied()
        .ok_or_else(|| {
            ServiceError::bad_request(
                "invalid_window",
                "query `window` must be one of 1h, 24h, 7d, 30d",
            )
        })?;
    let until = now().0 + 1;
    Ok((
        label,
        StatsQuery {
            since: until - span,
            until,
            bucket,
            class: class.map(str::to_string),
        },
    ))
}

/// A figure card: a number and what it counts.
#[derive(Debug)]
pub struct Figure {
    pub value: String,
    pub label: &'static str,
}

/// One observe-mode class: how often enforcement would have differed.
#[derive(Debug)]
pub struct ObserveRow {
    pub class: String,
    pub total: i64,
    pub differ: i64,
    pub share: String,
}

/// What a dashboard's answer shows, in the console's words: figure cards,
/// the route-share chart, the rate bars and the observe table.
#[derive(Debug)]
pub struct Panels {
    pub figures: Vec<Figure>,
    pub routes_svg: String,
    /// Each series' name and its colour's index (`.c0`–`.c7` in the stylesheet).
    pub legend: Vec<(String, usize)>,
    pub rates_svg: String,
    pub observe: Vec<ObserveRow>,
    pub observe_svg: String,
    pub fallbacks: Vec<(String, String, String, i64)>,
    pub failures: Vec<(String, i64)>,
}

fn percent(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        0.0
    } else {
        (part as f64) * 100.0 / (whole as f64)
    }
}

/// Bucket labels as people read them: the hour, or the day.
fn bucket_label(start: i64, bucket: Bucket) -> String {
    let t = when(start);
    match bucket {
        Bucket::Day => t.get(5..10).unwrap_or(&t).to_string(),
        Bucket::Hour | Bucket::Minute => t.get(11..16).unwrap_or(&t).to_string(),
    }
}

pub fn panels(d: &Dashboard) -> Panels {
    let r = &d.rates;
    // Routes over time: one series per route (or outcome without one).
    let step = d.bucket.seconds();
    let first = d.since - d.since.rem_euclid(step);
    let starts: Vec<i64> = (0..)
        .map(|i| first + i * step)
        .take_while(|s| *s < d.until)
        .take(1440)
        .collect();
    let mut by_route: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for c in &d.decisions {
        let name = c.route.clone().unwrap_or_else(|| c.outcome.clone());
        let values = by_route
            .entry(name)
            .or_insert_with(|| vec![0; starts.len()]);
        if let Some(i) = starts.iter().position(|s| *s == c.bucket_start)
            && let Some(v) = values.get_mut(i)
        {
            *v += u64::try_from(c.count).unwrap_or(0);
        }
    }
    let series: Vec<Series> = by_route
        .into_iter()
        .map(|(name, values)| Series { name, values })
        .collect();
    let labels: Vec<String> = starts.iter().map(|s| bucket_label(*s, d.bucket)).collect();
    let legend = series
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.clone(), i % chart::PALETTE.len()))
        .collect();
    let rates = [
        ("delivered", r.delivered),
        ("confirmation required", r.confirmation_required),
        ("held", r.held),
        ("escalated", r.escalated),
        ("blocked", r.blocked),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), percent(v, r.total)))
    .collect::<Vec<_>>();
    let observe: Vec<ObserveRow> = d
        .observe_share
        .iter()
        .map(|o| ObserveRow {
            class: o.class.clone(),
            total: o.total,
            differ: o.differ,
            share: format!("{:.1} %", o.share * 100.0),
        })
        .collect();
    let observe_svg = chart::share_bars(
        "share of observed messages enforcement would have routed differently",
        &d.observe_share
            .iter()
            .map(|o| (o.class.clone(), o.share * 100.0))
            .collect::<Vec<_>>(),
    );
    let fallbacks: i64 = d.fallbacks.iter().map(|f| f.count).sum();
    let failures: i64 = d.provider_failures.iter().map(|f| f.count).sum();
    Panels {
        figures: vec![
            Figure {
                value: r.total.to_string(),
                label: "decisions",
            },
            Figure {
                value: format!("{:.1} %", percent(r.delivered, r.total)),
                label: "delivered by a route",
            },
            Figure {
                value: fallbacks.to_string(),
                label: "fallbacks after a failure",
            },
            Figure {
                value: format!("{} / {}", d.threads.downgrades, d.threads.elevations),
                label: "thread downgrades / elevations",
            },
            Figure {
                value: format!(
                    "{} / {} / {}",
                    d.confirmations.asked, d.confirmations.given, d.confirmations.abandoned
                ),
                label: "confirmations asked / given / abandoned",
            },
            Figure {
                value: format!("{} / {}", d.portal.opens, d.portal.lockouts),
                label: "portal opens / lockouts",
            },
            Figure {
                value: failures.to_string(),
                label: "provider failures",
            },
        ],
        routes_svg: chart::stacked_bars("decisions by route over time", &labels, &series),
        legend,
        rates_svg: chart::share_bars("outcome rates", &rates),
        observe,
        observe_svg,
        fallbacks: d
            .fallbacks
            .iter()
            .map(|f| (f.from.clone(), f.to.clone(), f.cause.clone(), f.count))
            .collect(),
        failures: d
            .provider_failures
            .iter()
            .map(|f| (f.channel.clone(), f.count))
            .collect(),
    }
}

/// A class of the active policy, for the list beside the dashboard.
#[derive(Debug)]
struct ClassRow {
    name: String,
    minimum: String,
    mode: String,
    steps: usize,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    frame: Frame,
    window: &'static str,
    windows: Vec<&'static str>,
    panels: Panels,
    classes: Vec<ClassRow>,
    revision: u32,
}

/// `GET /console`.
pub async fn show(
    State(state): State<AppState>,
    op: Operator,
    Query(form): Query<WindowForm>,
) -> Result<Response, ConsoleError> {
    let (label, q) = window(&form.window, None)?;
    let d = dashboard(&state, &op.caller.tenant_id, &q).await?;
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(ladder_store::StoreError::from)?;
    let policy = state.active_policy(&mut conn, &op.caller.tenant_id).await?;
    drop(conn);
    Ok(ok(&OverviewPage {
        frame: Frame::new(&op, Section::Overview, "Overview"),
        window: label,
        windows: WINDOWS.iter().map(|(n, _, _)| *n).collect(),
        panels: panels(&d),
        classes: policy
            .classes()
            .iter()
            .map(|c| ClassRow {
                name: c.name.clone(),
                minimum: c.minimum.to_string(),
                mode: c.mode.to_string(),
                steps: c.ladder.len(),
            })
            .collect(),
        revision: policy.revision(),
    }))
}
