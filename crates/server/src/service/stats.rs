//! Dashboard aggregates: what the service counts as it writes, and the
//! dashboard read over those counts (`GET /v1/stats`, the console).
//!
//! Every `record_*` function here runs inside the transaction of the event
//! it counts, through `ladder_store::stats::bump`, so a figure moves if and
//! only if its fact commits. [`dashboard`] reads the tenant's counters of
//! one granularity over a window: at most [`MAX_BUCKETS`] buckets of a few
//! rows each, never the messages.
//!
//! `rates` are counts of decisions (every decision kept about a message is
//! counted once, re-decisions of held, failed or confirmed messages too, as
//! `ladder_decisions_total` counts them): divide by `total` for a rate.

use std::collections::BTreeMap;

use ladder_core::{Channel, Decision, Outcome};
use ladder_store::stats::{self, Counter, Dims, Granularity, Metric};
use ladder_store::{StoreError, Tx};
use serde::Serialize;

use crate::service::error::ServiceError;
use crate::state::{AppState, now};

/// The most buckets one answer covers: a day by minute, two months by
/// hour, about four years by day.
pub const MAX_BUCKETS: i64 = 1_440;

/// The route an outcome took, or its code when it has none: how observe
/// figures name what happened.
fn outcome_label(outcome: &Outcome) -> String {
    outcome
        .route()
        .map_or_else(|| outcome.code().to_string(), |r| r.name())
}

async fn bump(
    tx: &mut Tx,
    tenant_id: &str,
    at: i64,
    metric: Metric,
    dims: Dims,
) -> Result<(), ServiceError> {
    stats::bump(tx, tenant_id, at, metric, &dims, 1).await?;
    Ok(())
}

/// Counts a decision that is kept (acceptance, re-decision, confirmation),
/// with what it implies: a confirmation asked, a thread's floor dropped,
/// and in observe mode the legacy route beside the would-have one.
pub async fn record_decision(
    tx: &mut Tx,
    tenant_id: &str,
    decision: &Decision,
) -> Result<(), ServiceError> {
    let at = decision.decided_at.0;
    let class = &decision.class;
    let dims = Dims {
        class: class.clone(),
        d1: decision
            .outcome
            .route()
            .map(|r| r.name())
            .unwrap_or_default(),
        d2: decision.outcome.code().to_string(),
        d3: decision.mode.as_str().to_string(),
    };
    bump(tx, tenant_id, at, Metric::Decision, dims).await?;
    if let Some(enforced) = &decision.enforced {
        let dims = Dims {
            class: class.clone(),
            d1: outcome_label(&decision.outcome),
            d2: outcome_label(enforced),
            d3: String::new(),
        };
        bump(tx, tenant_id, at, Metric::Observe, dims).await?;
    }
    if matches!(decision.outcome, Outcome::ConfirmationRequired { .. }) {
        bump(
            tx,
            tenant_id,
            at,
            Metric::ConfirmationAsked,
            Dims::class(class),
        )
        .await?;
    }
    if decision.thread.drop.is_some() {
        bump(
            tx,
            tenant_id,
            at,
            Metric::ThreadDowngrade,
            Dims::class(class),
        )
        .await?;
    }
    Ok(())
}

/// Counts a fallback: `decision`, taken after `from` failed with `cause`.
pub async fn record_fallback(
    tx: &mut Tx,
    tenant_id: &str,
    from: Channel,
    cause: &str,
    decision: &Decision,
) -> Result<(), ServiceError> {
    let to = decision.outcome.route().map_or_else(
        || decision.outcome.code().to_string(),
        |r| r.container.channel().to_string(),
    );
    let dims = Dims {
        class: decision.class.clone(),
        d1: from.to_string(),
        d2: to,
        d3: cause.to_string(),
    };
    bump(tx, tenant_id, now().0, Metric::Fallback, dims).await
}

/// Counts a provider failure on `channel`, and when it is `transient` a
/// retry with its cause.
pub async fn record_provider_failure(
    tx: &mut Tx,
    tenant_id: &str,
    class: &str,
    channel: Channel,
    transient_cause: Option<&str>,
) -> Result<(), ServiceError> {
    let at = now().0;
    let dims = Dims {
        class: class.to_string(),
        d1: channel.to_string(),
        ..Dims::default()
    };
    bump(tx, tenant_id, at, Metric::ProviderFailure, dims.clone()).await?;
    if let Some(cause) = transient_cause {
        let dims = Dims {
            d2: cause.to_string(),
            ..dims
        };
        bump(tx, tenant_id, at, Metric::Retry, dims).await?;
    }
    Ok(())
}

/// Counts an event that has only a class (empty when it has none): a
/// confirmation given or abandoned, a thread elevated or dropped outside a
/// decision, a portal opened or locked.
pub async fn record(
    tx: &mut Tx,
    tenant_id: &str,
    metric: Metric,
    class: &str,
) -> Result<(), ServiceError> {
    bump(tx, tenant_id, now().0, metric, Dims::class(class)).await
}

/// The width of the buckets an answer is cut into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Minute,
    Hour,
    Day,
}

impl Bucket {
    pub const NAMES: [&str; 3] = ["minute", "hour", "day"];

    pub fn from_name(name: &str) -> Option<Bucket> {
        match name {
            "minute" => Some(Bucket::Minute),
            "hour" => Some(Bucket::Hour),
            "day" => Some(Bucket::Day),
            _ => None,
        }
    }

    fn granularity(self) -> Granularity {
        match self {
            Bucket::Minute => Granularity::Minute,
            Bucket::Hour => Granularity::Hour,
            Bucket::Day => Granularity::Day,
        }
    }

    pub fn seconds(self) -> i64 {
        self.granularity().seconds()
    }
}

/// A dashboard window: `[since, until)` in Unix seconds, cut into
/// `bucket`s (the first one starting at or before `since`), for one class
/// or all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    pub since: i64,
    pub until: i64,
    pub bucket: Bucket,
    pub class: Option<String>,
}

impl StatsQuery {
    /// The last 24 hours by hour, up to now.
    pub fn last_day() -> StatsQuery {
        let until = now().0;
        StatsQuery {
            since: until - 86_400,
            until,
            bucket: Bucket::Hour,
            class: None,
        }
    }

    /// Refuses a window that is empty, starts before 1970, or spans more
    /// than [`MAX_BUCKETS`] buckets, and a class that is not a name.
    pub fn check(&self) -> Result<(), ServiceError> {
        if self.since < 0 {
            return Err(ServiceError::bad_request(
                "invalid_window",
                "query `since` must be Unix seconds, 0 or more",
            ));
        }
        if self.until <= self.since {
            return Err(ServiceError::bad_request(
                "invalid_window",
                "query `until` must be after `since`",
            ));
        }
        let g = self.bucket.granularity();
        let span = self.until - g.floor(self.since);
        let buckets = span / g.seconds() + i64::from(span % g.seconds() != 0);
        if buckets > MAX_BUCKETS {
            return Err(ServiceError::bad_request(
                "invalid_window",
                format!(
                    "query `since`..`until` spans {buckets} buckets of a {}; at most {MAX_BUCKETS}: shorten the window or widen `bucket`",
                    g.as_str()
                ),
            ));
        }
        if self
            .class
            .as_deref()
            .is_some_and(|c| !crate::service::send::valid_name(c))
        {
            return Err(ServiceError::bad_request(
                "invalid_class",
                "`class` must be 1-128 letters, digits, `-`, `_`, `.` or `:`",
            ));
        }
        Ok(())
    }
}

/// Decisions of one bucket with one (class, route, outcome, mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionCount {
    pub bucket_start: i64,
    pub class: String,
    /// `None` for an outcome without a route (hold, escalate, block).
    pub route: Option<String>,
    pub outcome: String,
    pub mode: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FallbackCount {
    pub from: String,
    /// The new route's container channel, or the outcome code without one.
    pub to: String,
    pub cause: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetryCount {
    pub channel: String,
    pub cause: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureCount {
    pub channel: String,
    pub count: i64,
}

/// Decisions over the window by outcome: divide by `total` for a rate.
/// `delivered` counts decisions to deliver (a route chosen), not receipts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Rates {
    pub total: i64,
    pub delivered: i64,
    pub blocked: i64,
    pub escalated: i64,
    pub held: i64,
    pub confirmation_required: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Confirmations {
    pub asked: i64,
    pub given: i64,
    /// Revoked while awaiting confirmation.
    pub abandoned: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Threads {
    pub downgrades: i64,
    pub elevations: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Portal {
    /// Sessions opened (a right code, or a step without one).
    pub opens: i64,
    pub lockouts: i64,
}

/// Observe-mode decisions of a class by the route used and the one
/// enforcement would have taken (outcome codes where there is no route).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObserveCount {
    pub class: String,
    pub legacy_route: String,
    pub would_have_route: String,
    pub count: i64,
}

/// What share of a class's observe-mode decisions enforcing would change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObserveShare {
    pub class: String,
    pub total: i64,
    pub differ: i64,
    /// `differ / total`, 0 to 1.
    pub share: f64,
}

/// The dashboard's figures over one window.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Dashboard {
    pub since: i64,
    pub until: i64,
    /// `hour` or `day`.
    #[schema(value_type = String)]
    pub bucket: Bucket,
    #[schema(value_type = Vec<Object>)]
    pub decisions: Vec<DecisionCount>,
    #[schema(value_type = Vec<Object>)]
    pub fallbacks: Vec<FallbackCount>,
    #[schema(value_type = Vec<Object>)]
    pub retries: Vec<RetryCount>,
    #[schema(value_type = Vec<Object>)]
    pub provider_failures: Vec<FailureCount>,
    #[schema(value_type = Object)]
    pub rates: Rates,
    #[schema(value_type = Object)]
    pub confirmations: Confirmations,
    #[schema(value_type = Object)]
    pub threads: Threads,
    #[schema(value_type = Object)]
    pub portal: Portal,
    #[schema(value_type = Vec<Object>)]
    pub observe: Vec<ObserveCount>,
    #[schema(value_type = Vec<Object>)]
    pub observe_share: Vec<ObserveShare>,
}

/// The figures of `tenant_id` over `q`'s window. Tenant-scoped: another
/// tenant's counters are never read.
pub async fn dashboard(
    state: &AppState,
    tenant_id: &str,
    q: &StatsQuery,
) -> Result<Dashboard, ServiceError> {
    q.check()?;
    let g = q.bucket.granularity();
    let counters = {
        let mut conn = state
            .store
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        stats::range(
            &mut conn,
            tenant_id,
            g,
            g.floor(q.since),
            q.until,
            q.class.as_deref(),
        )
        .await?
    };
    Ok(summarise(q, &counters))
}

/// Folds counters (ordered by bucket) into the answer.
fn summarise(q: &StatsQuery, counters: &[Counter]) -> Dashboard {
    let mut d = Dashboard {
        since: q.since,
        until: q.until,
        bucket: q.bucket,
        decisions: Vec::new(),
        fallbacks: Vec::new(),
        retries: Vec::new(),
        provider_failures: Vec::new(),
        rates: Rates::default(),
        confirmations: Confirmations::default(),
        threads: Threads::default(),
        portal: Portal::default(),
        observe: Vec::new(),
        observe_share: Vec::new(),
    };
    // Summed over the window, keyed by the dimensions each list shows.
    let mut fallbacks: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    let mut retries: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut failures: BTreeMap<String, i64> = BTreeMap::new();
    let mut observe: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    for c in counters {
        let n = c.count;
        let k = &c.dims;
        match c.metric {
            Metric::Decision => {
                d.rates.total += n;
                match k.d2.as_str() {
                    "deliver" => d.rates.delivered += n,
                    "block" => d.rates.blocked += n,
                    "escalate" => d.rates.escalated += n,
                    "hold" => d.rates.held += n,
                    "confirmation_required" => d.rates.confirmation_required += n,
                    // INVARIANT: `record_decision` writes `Outcome::code()`
                    // here, and every code is matched above; a row that says
                    // otherwise still counts in `total` and in `decisions`.
                    _ => {}
                }
                d.decisions.push(DecisionCount {
                    bucket_start: c.bucket_start,
                    class: k.class.clone(),
                    route: (!k.d1.is_empty()).then(|| k.d1.clone()),
                    outcome: k.d2.clone(),
                    mode: k.d3.clone(),
                    count: n,
                });
            }
            Metric::Observe => {
                *observe
                    .entry((k.class.clone(), k.d1.clone(), k.d2.clone()))
                    .or_default() += n;
            }
            Metric::Fallback => {
                *fallbacks
                    .entry((k.d1.clone(), k.d2.clone(), k.d3.clone()))
                    .or_default() += n;
            }
            Metric::Retry => *retries.entry((k.d1.clone(), k.d2.clone())).or_default() += n,
            Metric::ProviderFailure => *failures.entry(k.d1.clone()).or_default() += n,
            Metric::ConfirmationAsked => d.confirmations.asked += n,
            Metric::ConfirmationGiven => d.confirmations.given += n,
            Metric::ConfirmationAbandoned => d.confirmations.abandoned += n,
            Metric::ThreadDowngrade => d.threads.downgrades += n,
            Metric::ThreadElevation => d.threads.elevations += n,
            Metric::PortalOpen => d.portal.opens += n,
            Metric::PortalLockout => d.portal.lockouts += n,
        }
    }
    d.fallbacks = fallbacks
        .into_iter()
        .map(|((from, to, cause), count)| FallbackCount {
            from,
            to,
            cause,
            count,
        })
        .collect();
    d.retries = retries
        .into_iter()
        .map(|((channel, cause), count)| RetryCount {
            channel,
            cause,
            count,
        })
        .collect();
    d.provider_failures = failures
        .into_iter()
        .map(|(channel, count)| FailureCount { channel, count })
        .collect();
    let mut shares: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for ((class, legacy, would), count) in observe {
        let s = shares.entry(class.clone()).or_default();
        s.0 += count;
        if legacy != would {
            s.1 += count;
        }
        d.observe.push(ObserveCount {
            class,
            legacy_route: legacy,
            would_have_route: would,
            count,
        });
    }
    d.observe_share = shares
        .into_iter()
        .map(|(class, (total, differ))| ObserveShare {
            class,
            total,
            differ,
            // A class is in `shares` only with an observe counter, which the
            // service bumps by 1 at a time; `max(1)` only keeps a counter a
            // hand edited to 0 from making the share NaN.
            #[allow(clippy::cast_precision_loss)]
            share: differ as f64 / total.max(1) as f64,
        })
        .collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(metric: Metric, class: &str, d1: &str, d2: &str, n: i64) -> Counter {
        Counter {
            bucket_start: 0,
            metric,
            dims: Dims {
                class: class.into(),
                d1: d1.into(),
                d2: d2.into(),
                d3: String::new(),
            },
            count: n,
        }
    }

    #[test]
    fn observe_share_counts_only_differing_routes() {
        let q = StatsQuery {
            since: 0,
            until: 60,
            bucket: Bucket::Minute,
            class: None,
        };
        let d = summarise(
            &q,
            &[
                counter(Metric::Observe, "a", "sms", "sms", 3),
                counter(Metric::Observe, "a", "sms", "rcs", 1),
                counter(Metric::Observe, "b", "sms", "block", 2),
            ],
        );
        assert_eq!(d.observe_share.len(), 2);
        assert_eq!(
            (d.observe_share[0].total, d.observe_share[0].differ),
            (4, 1)
        );
        assert!((d.observe_share[0].share - 0.25).abs() < f64::EPSILON);
        assert!((d.observe_share[1].share - 1.0).abs() < f64::EPSILON);
    }

    #[test]
    fn windows_over_the_bucket_limit_are_refused() {
        let mut q = StatsQuery {
            since: 0,
            until: 1_440 * 60,
            bucket: Bucket::Minute,
            class: None,
        };
        assert!(q.check().is_ok());
        q.until += 1;
        assert!(q.check().is_err());
        q.bucket = Bucket::Hour;
        assert!(q.check().is_ok());
        q.until = 0;
        assert!(q.check().is_err());
    }
}
