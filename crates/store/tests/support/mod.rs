//! A fresh database for a test: a temporary SQLite file, or a schema of its
//! own on the PostgreSQL server of `LADDER_TEST_POSTGRES_URL` (skipped, with
//! the reason printed, when it is unset), holding two tenants.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use ladder_store::{Dialect, Store};
use sqlx::Connection;

pub const TENANT: &str = "tenant-a";
pub const OTHER: &str = "tenant-b";

pub struct Db {
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
    /// PostgreSQL: the server URL and the schema this test owns.
    pg: Option<(String, String)>,
}

impl Db {
    pub async fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ladder.db");
        let store = Store::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        Db::with_tenants(store, Some(dir), None).await
    }

    pub async fn postgres(prefix: &str) -> Option<Db> {
        let Ok(url) = std::env::var("LADDER_TEST_POSTGRES_URL") else {
            println!("skipping postgres: LADDER_TEST_POSTGRES_URL not set");
            return None;
        };
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let schema = format!(
            "{prefix}_{}_{}_{}",
            std::process::id(),
            nanos,
            N.fetch_add(1, Ordering::Relaxed)
        );
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
        let store = Store::open(&scoped).await.unwrap();
        assert_eq!(store.dialect(), Dialect::Postgres);
        Some(Db::with_tenants(store, None, Some((url, schema))).await)
    }

    async fn with_tenants(
        store: Store,
        dir: Option<tempfile::TempDir>,
        pg: Option<(String, String)>,
    ) -> Db {
        for (id, name) in [(TENANT, "Acme"), (OTHER, "Globex")] {
            sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(name)
                .bind(1_700_000_000_i64)
                .execute(store.pool())
                .await
                .unwrap();
        }
        Db {
            store,
            _dir: dir,
            pg,
        }
    }

    pub async fn cleanup(self) {
        self.store.close().await;
        if let Some((url, schema)) = self.pg {
            let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
    }
}
