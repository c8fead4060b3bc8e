//! Group commit: many requests' writes made durable by one commit.
//!
//! SQLite has one writer and fsyncs every commit (`synchronous = FULL`), so
//! one transaction per accepted message caps ingest at the disk's sync rate.
//! [`GroupCommit`] runs each unit of work in a savepoint of a shared
//! transaction: one committer task takes whatever work arrived while the
//! previous batch was syncing, runs it in arrival order, commits once, and
//! only then answers each caller. Nothing is acknowledged before it is on
//! disk, and a unit that fails is rolled back to its savepoint without
//! touching the others. Order within a batch is commit order, so the audit
//! chain (each append reads the head the previous one wrote) stays linear.
//!
//! On PostgreSQL each unit of work runs in its own transaction on one of the
//! pool's connections, as before: the server merges concurrent commits'
//! WAL flushes itself, and a batch would hold a tenant's audit head while
//! later units lock their threads — the opposite order of every
//! single-message transaction, so batches could deadlock with them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::db::{Dialect, Store, Tx};
use crate::error::StoreError;

/// A boxed future borrowing the transaction it runs in.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Tells a unit's caller its result, given how its batch's commit went.
type Answer = Box<dyn FnOnce(Result<(), Arc<StoreError>>) + Send>;

/// What a unit of work leaves for the committer: whether its writes stay,
/// and how to answer its caller once the batch's commit is known.
struct Ran {
    keep: bool,
    answer: Answer,
}

type Unit = Box<dyn for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Ran> + Send>;

/// Called after every batch with its number of units and the time from
/// its first statement to the end of its commit (for metrics).
pub type BatchObserver = Arc<dyn Fn(usize, Duration) + Send + Sync>;

/// The committer's handle. Cheap to clone; the committer task stops when
/// the last handle is dropped, after finishing the batch in hand.
#[derive(Clone)]
pub struct GroupCommit {
    store: Store,
    /// `None` on PostgreSQL: every unit runs in its own transaction.
    units: Option<mpsc::Sender<Unit>>,
    stats: Arc<Counts>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("dialect", &self.store.dialect())
            .field("stats", &self.stats())
            .finish()
    }
}

/// How much a committer has done since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitStats {
    /// Transactions committed (or attempted) by the committer.
    pub batches: u64,
    /// Units of work run in them.
    pub units: u64,
    /// Time spent running and committing batches: what the committer's
    /// one connection was busy with.
    pub busy: Duration,
}

#[derive(Debug, Default)]
struct Counts {
    batches: AtomicU64,
    units: AtomicU64,
    busy_us: AtomicU64,
}

/// Batches at most this many units: bounds how long the first caller of a
/// batch waits behind the others.
const DEFAULT_MAX_BATCH: usize = 256;

impl GroupCommit {
    /// Starts the committer for `store` (a task on the current Tokio
    /// runtime on SQLite; nothing to start on PostgreSQL).
    pub fn start(store: Store) -> GroupCommit {
        GroupCommit::with_options(store, DEFAULT_MAX_BATCH, None)
    }

    /// As [`GroupCommit::start`], with at most `max_batch` units (at least
    /// one) per commit, and an observer told about every batch.
    pub fn with_options(
        store: Store,
        max_batch: usize,
        observer: Option<BatchObserver>,
    ) -> GroupCommit {
        let stats = Arc::new(Counts::default());
        let units = match store.dialect() {
            Dialect::Postgres => None,
            Dialect::Sqlite => {
                let (tx, rx) = mpsc::channel(max_batch.max(1).saturating_mul(4));
                let committer = Committer {
                    store: store.clone(),
                    max_batch: max_batch.max(1),
                    stats: stats.clone(),
                    observer,
                };
                tokio::spawn(committer.run(rx));
                Some(tx)
            }
        };
        GroupCommit {
            store,
            units,
            stats,
        }
    }

    /// Batches and units so far (both zero on PostgreSQL).
    pub fn stats(&self) -> CommitStats {
        CommitStats {
            batches: self.stats.batches.load(Ordering::Relaxed),
            units: self.stats.units.load(Ordering::Relaxed),
            busy: Duration::from_micros(self.stats.busy_us.load(Ordering::Relaxed)),
        }
    }

    /// Runs `work` inside a transaction and answers its result once that
    /// transaction is durable. An `Err` from `work` rolls back only its own
    /// writes; a failed commit answers every unit of the batch with the
    /// commit's error (`E::from`, as [`StoreError::BatchCommit`]).
    ///
    /// `work` must do all its database work through the transaction it is
    /// given: on SQLite the committer holds the only connection, so asking
    /// the pool for another would wait for ever.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let Some(units) = &self.units else {
            let mut tx = self.store.begin().await?;
            let value = work(&mut tx).await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(value);
        };
        let (answer_tx, answer_rx) = oneshot::channel::<Result<T, E>>();
        // The unit runs on the committer's task: it takes the caller's
        // request (outbox rows it queues are stamped with it) and span
        // (its log lines read as the caller's) along.
        let request = crate::outbox::current_request();
        let span = tracing::Span::current();
        let unit: Unit = Box::new(move |tx: &mut Tx| {
            Box::pin(async move {
                let result = crate::outbox::for_request(request, work(tx))
                    .instrument(span)
                    .await;
                Ran {
                    keep: result.is_ok(),
                    answer: Box::new(move |committed: Result<(), Arc<StoreError>>| {
                        let answer = match committed {
                            Ok(()) => result,
                            Err(e) => Err(E::from(StoreError::BatchCommit(e))),
                        };
                        // The caller may have gone (a dropped request); its
                        // writes are committed all the same, as they would
                        // be in its own transaction.
                        let _ = answer_tx.send(answer);
                    }),
                }
            })
        });
        units
            .send(unit)
            .await
            .map_err(|_| StoreError::CommitterStopped)?;
        answer_rx
            .await
            .unwrap_or_else(|_| Err(E::from(StoreError::CommitterStopped)))
    }
}

/// The committer task's own state.
struct Committer {
    store: Store,
    max_batch: usize,
    stats: Arc<Counts>,
    observer: Option<BatchObserver>,
}

impl Committer {
    /// One batch at a time, as long as a handle exists: whatever arrived
    /// while the previous batch ran and synced, up to `max_batch`.
    async fn run(self, mut units: mpsc::Receiver<Unit>) {
        let mut batch = Vec::with_capacity(self.max_batch);
        while units.recv_many(&mut batch, self.max_batch).await > 0 {
            let size = batch.len();
            let started = Instant::now();
            // Its own task, so a panic in one unit costs that batch (its
            // callers see `CommitterStopped`) and not the committer.
            let store = self.store.clone();
            let units = std::mem::take(&mut batch);
            if let Err(e) = tokio::spawn(async move { run_batch(&store, units).await }).await {
                tracing::error!(error = %e, "a group-commit batch panicked; its writes were rolled back");
            }
            self.stats.batches.fetch_add(1, Ordering::Relaxed);
            self.stats
                .units
                .fetch_add(u64::try_from(size).unwrap_or(u64::MAX), Ordering::Relaxed);
            let took = started.elapsed();
            self.stats.busy_us.fetch_add(
                u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            if let Some(observe) = &self.observer {
                observe(size, took);
            }
        }
    }
}

/// Runs every unit of `batch` in its own savepoint of one transaction and
/// commits once. If the transaction itself breaks (a savepoint statement or
/// the commit fails), every unit is answered with that error and nothing of
/// the batch is kept.
async fn run_batch(store: &Store, batch: Vec<Unit>) {
    let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
    let committed = async {
        // IMMEDIATE: the batch takes SQLite's write lock before its first
        // read, so a unit that only reads cannot leave later units a
        // snapshot another process (a CLI command) has since written past.
        let mut tx = store.pool().begin_with("BEGIN IMMEDIATE").await?;
        for unit in batch {
            sqlx::query("SAVEPOINT unit").execute(&mut *tx).await?;
            let ran = unit(&mut tx).await;
            answers.push(ran.answer);
            if !ran.keep {
                sqlx::query("ROLLBACK TO SAVEPOINT unit")
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("RELEASE SAVEPOINT unit")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok::<(), StoreError>(())
    }
    .await
    .map_err(Arc::new);
    // Units never reached (the transaction broke before them) were dropped
    // with their answer channels: their callers see `CommitterStopped`.
    for answer in answers {
        answer(committed.clone());
    }
}
