//! Schema migrations, embedded in the binary, one SQL file per dialect and
//! version. Each runs in its own transaction and is recorded in
//! `schema_migrations`; a database newer than this binary is refused.

use crate::db::{Dialect, Store};
use crate::error::StoreError;

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "service",
        sqlite: include_str!("../migrations/sqlite/0001_service.sql"),
        postgres: include_str!("../migrations/postgres/0001_service.sql"),
    },
    Migration {
        version: 2,
        name: "audit",
        sqlite: include_str!("../migrations/sqlite/0002_audit.sql"),
        postgres: include_str!("../migrations/postgres/0002_audit.sql"),
    },
    Migration {
        version: 3,
        name: "merkle",
        sqlite: include_str!("../migrations/sqlite/0003_merkle.sql"),
        postgres: include_str!("../migrations/postgres/0003_merkle.sql"),
    },
    Migration {
        version: 4,
        name: "signed checkpoints",
        sqlite: include_str!("../migrations/sqlite/0004_checkpoints.sql"),
        postgres: include_str!("../migrations/postgres/0004_checkpoints.sql"),
    },
    Migration {
        version: 5,
        name: "channels",
        sqlite: include_str!("../migrations/sqlite/0005_channels.sql"),
        postgres: include_str!("../migrations/postgres/0005_channels.sql"),
    },
    Migration {
        version: 6,
        name: "in-app inbox",
        sqlite: include_str!("../migrations/sqlite/0006_inbox.sql"),
        postgres: include_str!("../migrations/postgres/0006_inbox.sql"),
    },
    Migration {
        version: 7,
        name: "portal",
        sqlite: include_str!("../migrations/sqlite/0007_portal.sql"),
        postgres: include_str!("../migrations/postgres/0007_portal.sql"),
    },
    Migration {
        version: 8,
        name: "hand-overs",
        sqlite: include_str!("../migrations/sqlite/0008_handovers.sql"),
        postgres: include_str!("../migrations/postgres/0008_handovers.sql"),
    },
    Migration {
        version: 9,
        name: "message lists",
        sqlite: include_str!("../migrations/sqlite/0009_message_lists.sql"),
        postgres: include_str!("../migrations/postgres/0009_message_lists.sql"),
    },
    Migration {
        version: 10,
        name: "stats",
        sqlite: include_str!("../migrations/sqlite/0010_stats.sql"),
        postgres: include_str!("../migrations/postgres/0010_stats.sql"),
    },
    Migration {
        version: 11,
        name: "operator lists",
        sqlite: include_str!("../migrations/sqlite/0011_operator_lists.sql"),
        postgres: include_str!("../migrations/postgres/0011_operator_lists.sql"),
    },
    Migration {
        version: 12,
        name: "request ids",
        sqlite: include_str!("../migrations/sqlite/0012_request_ids.sql"),
        postgres: include_str!("../migrations/postgres/0012_request_ids.sql"),
    },
    Migration {
        version: 13,
        name: "console sessions",
        sqlite: include_str!("../migrations/sqlite/0013_console.sql"),
        postgres: include_str!("../migrations/postgres/0013_console.sql"),
    },
    Migration {
        version: 14,
        name: "event hooks",
        sqlite: include_str!("../migrations/sqlite/0014_event_hooks.sql"),
        postgres: include_str!("../migrations/postgres/0014_event_hooks.sql"),
    },
    Migration {
        version: 15,
        name: "recipient language and time zone",
        sqlite: include_str!("../migrations/sqlite/0015_recipient_locale.sql"),
        postgres: include_str!("../migrations/postgres/0015_recipient_locale.sql"),
    },
    Migration {
        version: 16,
        name: "portal session views",
        sqlite: include_str!("../migrations/sqlite/0016_portal_session_views.sql"),
        postgres: include_str!("../migrations/postgres/0016_portal_session_views.sql"),
    },
];

pub(crate) async fn run(store: &Store) -> Result<(), StoreError> {
    // One connection for the whole run: a session-level advisory lock
    // belongs to the connection that took it, and must be released there.
    let mut conn = store.pool().acquire().await?;
    if store.dialect() == Dialect::Postgres {
        // Several nodes may start at once: one migrates, the others wait.
        sqlx::query("SELECT pg_advisory_lock(7468723)")
            .execute(&mut *conn)
            .await?;
    }
    let result = apply(&mut conn, store.dialect()).await;
    if store.dialect() == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_unlock(7468723)")
            .execute(&mut *conn)
            .await?;
    }
    result
}

async fn apply(conn: &mut sqlx::AnyConnection, dialect: Dialect) -> Result<(), StoreError> {
    use sqlx::Connection;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
        .fetch_one(&mut *conn)
        .await?;
    let current = current.unwrap_or(0);
    let latest = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > latest {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: latest,
        });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let sql = match dialect {
            Dialect::Sqlite => m.sqlite,
            Dialect::Postgres => m.postgres,
        };
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .map_err(|source| StoreError::Migrate {
                version: m.version,
                name: m.name,
                source,
            })?;
        sqlx::query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)")
            .bind(m.version)
            .bind(m.name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}
