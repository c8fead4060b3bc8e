//! The connection: one [`Store`] over SQLite or PostgreSQL, chosen by URL.
//!
//! Both backends run the same queries through sqlx's `Any` driver; where the
//! dialects differ (row locks, upserts) the caller asks [`Store::dialect`]
//! and picks the statement. Placeholders are `$1, $2, …` everywhere: sqlx
//! maps them on SQLite too.
//!
//! SQLite is the embedded, single-node default. It writes through one
//! pooled connection, so transactions never contend inside a process, and
//! reads that need no transaction may use read-only connections beside it
//! ([`Store::read`]); WAL and a
//! busy timeout let a CLI command share the file with a running server.
//! PostgreSQL is the multi-node store: many connections, row locks.

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor};

use crate::error::StoreError;
use crate::migrate;

/// Which SQL dialect a store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// What to append to a `SELECT` that must lock its rows for the rest of
    /// the transaction: `FOR UPDATE` on PostgreSQL; nothing on SQLite, where
    /// one writer at a time is the lock.
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Postgres => " FOR UPDATE",
            Dialect::Sqlite => "",
        }
    }

    /// What to append to the inner `SELECT` of a work-queue claim so that
    /// concurrent claimers get disjoint rows: `FOR UPDATE SKIP LOCKED` on
    /// PostgreSQL; nothing on SQLite, where the claim is one statement.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        }
    }
}

/// A column list (`id, tenant_id, …`) with every column qualified by a
/// table alias (`t.id, t.tenant_id, …`), for queries that join or
/// correlate another table.
pub(crate) fn qualified(columns: &str, alias: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An open, migrated database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// Read-only connections for reads outside any transaction; on
    /// PostgreSQL the same pool.
    reader: AnyPool,
    dialect: Dialect,
}

/// Read-only connections beside SQLite's one writer.
const SQLITE_READERS: u32 = 4;

/// A transaction on either backend.
pub type Tx = sqlx::Transaction<'static, Any>;

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates the database at
    /// `url`: `sqlite://PATH` or `postgres://…`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (dialect, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let mut u = format!("sqlite:{rest}");
            if !u.contains("mode=") {
                u.push_str(if u.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
            (Dialect::Sqlite, u)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Dialect::Postgres, url.to_string())
        } else {
            return Err(StoreError::BadUrl {
                url: redact(url),
                reason: "expected a `sqlite://` or `postgres://` URL",
            });
        };
        let connect_error = |source| StoreError::Connect {
            url: redact(&url),
            source,
        };
        let options: AnyConnectOptions = url.parse().map_err(connect_error)?;
        let pool = match dialect {
            Dialect::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(1)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA busy_timeout = 5000").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            Ok(())
                        })
                    })
                    .connect_with(options.clone())
                    .await
            }
            Dialect::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options.clone())
                    .await
            }
        }
        .map_err(connect_error)?;
        let mut store = Store {
            reader: pool.clone(),
            pool,
            dialect,
        };
        migrate::run(&store).await?;
        if dialect == Dialect::Sqlite {
            // WAL lets readers run beside the writer, each seeing the last
            // commit; opened after the migrations, so the file exists.
            store.reader = AnyPoolOptions::new()
                .max_connections(SQLITE_READERS)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA query_only = ON").await?;
                        Ok(())
                    })
                })
                .connect_with(options)
                .await
                .map_err(connect_error)?;
        }
        Ok(store)
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// A connection for reads of committed data that need no transaction
    /// and should not queue behind writes (authentication): on SQLite one
    /// of the read-only connections beside the single writer, so such a
    /// read never waits for a group commit to finish; on PostgreSQL a
    /// connection of the pool.
    pub async fn read(&self) -> Result<sqlx::pool::PoolConnection<Any>, StoreError> {
        Ok(self.reader.acquire().await?)
    }

    /// A read-only transaction beside the writer (see [`Store::read`]):
    /// one consistent snapshot of committed state for several reads.
    pub async fn begin_read(&self) -> Result<Tx, StoreError> {
        Ok(self.reader.begin().await?)
    }

    /// One connection from the pool, outside any transaction.
    pub async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<Any>, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    /// Whether the database answers: for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.pool.close().await;
    }
}

/// A URL safe to print: the password, if any, replaced.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = url.get(scheme + 3..at).unwrap_or_default();
            match userinfo.split_once(':') {
                Some((user, _)) => format!(
                    "{}{user}:***{}",
                    url.get(..scheme + 3).unwrap_or_default(),
                    url.get(at..).unwrap_or_default()
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}

#[cfg(test)]
mod pg_tests {
    use super::Store;

    /// Regression: the migration lock was taken on one pooled connection
    /// and released on another, so it leaked and a second node (or a CLI
    /// command) opening the same database hung.
    #[tokio::test]
    async fn two_stores_open_one_postgres_database_in_turn() {
        let Ok(url) = std::env::var("LADDER_TEST_POSTGRES_URL") else {
            println!("skipping postgres: LADDER_TEST_POSTGRES_URL not set");
            return;
        };
        let first = Store::open(&url).await.unwrap();
        // Keep the first store busy on its other connections.
        for _ in 0..4 {
            first.ping().await.unwrap();
        }
        let second = tokio::time::timeout(std::time::Duration::from_secs(20), Store::open(&url))
            .await
            .expect("the second open must not wait on a leaked lock")
            .unwrap();
        second.ping().await.unwrap();
        first.close().await;
        second.close().await;
    }
}
