//! Dashboard aggregates: counters per tenant, granularity and bucket,
//! keyed by a [`Metric`] and its [`Dims`].
//!
//! The service calls [`bump`] inside the transaction that records the event
//! (a decision, a fallback, a lockout…), so a counter moves exactly when
//! its fact commits and never otherwise; one call adds to the minute, hour
//! and day rows at once. Dashboards then read a few hundred rows by primary
//! key prefix ([`range`]) instead of scanning messages.
//!
//! Dimensions are vocabularies (class names, route names, outcome codes,
//! channels, causes): never ids, addresses or content.

use sqlx::{AnyConnection, Row as _};

use crate::error::StoreError;

/// What is counted. Each metric documents what its [`Dims`] hold; a
/// dimension a metric does not use is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// A decision kept about a message (acceptance, re-decision,
    /// confirmation). `d1` route name (empty without a route), `d2` outcome
    /// code, `d3` mode.
    Decision,
    /// An observe-mode decision. `d1` the route used (the legacy route, or
    /// the outcome code without one), `d2` what enforcement would have
    /// done, in the same terms.
    Observe,
    /// A re-decision after a failure. `d1` the failed channel, `d2` the new
    /// route's container channel or the outcome code without a route,
    /// `d3` the cause (provider code, `timeout`, `retries_exhausted`…).
    Fallback,
    /// A transient provider failure, retried with backoff (or, the last
    /// time, counted as a fallback too). `d1` channel, `d2` cause.
    Retry,
    /// A provider call or receipt that failed. `d1` channel.
    ProviderFailure,
    /// A decision asking the sender to confirm a downgrade.
    ConfirmationAsked,
    /// A confirmation accepted.
    ConfirmationGiven,
    /// A message revoked while it awaited confirmation (confirmations
    /// have no expiry of their own).
    ConfirmationAbandoned,
    /// A thread's floor dropped. `class` is empty when no message caused
    /// it (a device revoked).
    ThreadDowngrade,
    /// A thread's floor raised after a full verified handshake (`class`
    /// empty: threads have no class).
    ThreadElevation,
    /// A portal session opened (right code, or a step without one).
    PortalOpen,
    /// A portal link locked after too many wrong codes.
    PortalLockout,
}

impl Metric {
    pub const ALL: [Metric; 12] = [
        Metric::Decision,
        Metric::Observe,
        Metric::Fallback,
        Metric::Retry,
        Metric::ProviderFailure,
        Metric::ConfirmationAsked,
        Metric::ConfirmationGiven,
        Metric::ConfirmationAbandoned,
        Metric::ThreadDowngrade,
        Metric::ThreadElevation,
        Metric::PortalOpen,
        Metric::PortalLockout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Decision => "decision",
            Metric::Observe => "observe",
            Metric::Fallback => "fallback",
            Metric::Retry => "retry",
            Metric::ProviderFailure => "provider_failure",
            Metric::ConfirmationAsked => "confirmation_asked",
            Metric::ConfirmationGiven => "confirmation_given",
            Metric::ConfirmationAbandoned => "confirmation_abandoned",
            Metric::ThreadDowngrade => "thread_downgrade",
            Metric::ThreadElevation => "thread_elevation",
            Metric::PortalOpen => "portal_open",
            Metric::PortalLockout => "portal_lockout",
        }
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// The width of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    Minute,
    Hour,
    Day,
}

impl Granularity {
    pub const ALL: [Granularity; 3] = [Granularity::Minute, Granularity::Hour, Granularity::Day];

    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Minute => "minute",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }

    pub fn seconds(self) -> i64 {
        match self {
            Granularity::Minute => 60,
            Granularity::Hour => 3_600,
            Granularity::Day => 86_400,
        }
    }

    /// The start of the bucket holding `at` (UTC; days start at midnight).
    pub fn floor(self, at_unix_s: i64) -> i64 {
        at_unix_s - at_unix_s.rem_euclid(self.seconds())
    }
}

/// A metric's dimensions: the class and up to three more, whose meaning
/// [`Metric`] documents per metric.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dims {
    pub class: String,
    pub d1: String,
    pub d2: String,
    pub d3: String,
}

impl Dims {
    /// Only a class.
    pub fn class(class: &str) -> Dims {
        Dims {
            class: class.to_string(),
            ..Dims::default()
        }
    }
}

/// One counter as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub bucket_start: i64,
    pub metric: Metric,
    pub dims: Dims,
    pub count: i64,
}

/// Adds `n` to the minute, hour and day counters of `metric` with `dims`
/// for the buckets holding `at_unix_s`. Call it inside the transaction
/// that records the event.
pub async fn bump(
    conn: &mut AnyConnection,
    tenant_id: &str,
    at_unix_s: i64,
    metric: Metric,
    dims: &Dims,
    n: i64,
) -> Result<(), StoreError> {
    // One statement for every granularity: a bump is part of accepting a
    // message, where each round trip to the database counts.
    let rows: Vec<String> = (0..Granularity::ALL.len())
        .map(|i| {
            let p = i * 9;
            format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5,
                p + 6,
                p + 7,
                p + 8,
                p + 9
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO stats_counters \
         (tenant_id, granularity, bucket_start, metric, class, d1, d2, d3, count) \
         VALUES {} \
         ON CONFLICT (tenant_id, granularity, bucket_start, metric, class, d1, d2, d3) \
         DO UPDATE SET count = stats_counters.count + excluded.count",
        rows.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for g in Granularity::ALL {
        query = query
            .bind(tenant_id)
            .bind(g.as_str())
            .bind(g.floor(at_unix_s))
            .bind(metric.as_str())
            .bind(dims.class.as_str())
            .bind(dims.d1.as_str())
            .bind(dims.d2.as_str())
            .bind(dims.d3.as_str())
            .bind(n);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// The tenant's counters of `granularity` whose bucket starts in
/// `[since, until)`, for one class or all, ordered by bucket then key.
pub async fn range(
    conn: &mut AnyConnection,
    tenant_id: &str,
    granularity: Granularity,
    since: i64,
    until: i64,
    class: Option<&str>,
) -> Result<Vec<Counter>, StoreError> {
    let sql = match class {
        Some(_) => {
            "SELECT bucket_start, metric, class, d1, d2, d3, count FROM stats_counters \
             WHERE tenant_id = $1 AND granularity = $2 AND bucket_start >= $3 \
             AND bucket_start < $4 AND class = $5 \
             ORDER BY bucket_start, metric, class, d1, d2, d3"
        }
        None => {
            "SELECT bucket_start, metric, class, d1, d2, d3, count FROM stats_counters \
             WHERE tenant_id = $1 AND granularity = $2 AND bucket_start >= $3 \
             AND bucket_start < $4 \
             ORDER BY bucket_start, metric, class, d1, d2, d3"
        }
    };
    let mut q = sqlx::query(sql)
        .bind(tenant_id)
        .bind(granularity.as_str())
        .bind(since)
        .bind(until);
    if let Some(c) = class {
        q = q.bind(c);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            let name: String = r.try_get("metric")?;
            let metric = Metric::from_name(&name).ok_or_else(|| {
                StoreError::corrupt("stats_counters.metric", format!("unknown metric `{name}`"))
            })?;
            Ok(Counter {
                bucket_start: r.try_get("bucket_start")?,
                metric,
                dims: Dims {
                    class: r.try_get("class")?,
                    d1: r.try_get("d1")?,
                    d2: r.try_get("d2")?,
                    d3: r.try_get("d3")?,
                },
                count: r.try_get("count")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_start_on_utc_boundaries() {
        // 2026-12-04T18:29:49Z
        let at = 1_796_408_989;
        assert_eq!(Granularity::Minute.floor(at), 1_796_408_940);
        assert_eq!(Granularity::Hour.floor(at), 1_796_407_200);
        assert_eq!(Granularity::Day.floor(at), 1_796_342_400);
        assert_eq!(Granularity::Day.floor(-1), -86_400);
    }

    #[test]
    fn metric_names_round_trip() {
        for m in Metric::ALL {
            assert_eq!(Metric::from_name(m.as_str()), Some(m));
        }
        assert_eq!(Metric::from_name("nope"), None);
    }
}
