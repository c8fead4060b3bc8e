//! What can go wrong in storage. Misuse (a bad URL, a schema from the
//! future) is kept apart from database failures and from corrupt rows,
//! which are internal bugs or tampering.

/// A storage failure. Messages never carry row contents.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL `{url}` is not usable: {reason}")]
    BadUrl { url: String, reason: &'static str },
    #[error("cannot connect to `{url}`: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("migration {version} ({name}) failed: {source}")]
    Migrate {
        version: i64,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the database schema is at version {found}, newer than this build supports ({supported}); upgrade ladder"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt { what: &'static str, reason: String },
    #[error("the system random number generator failed: {0}")]
    Random(String),
    #[error(transparent)]
    Keyring(#[from] crate::keyring::KeyringError),
    /// The shared transaction of a group commit failed
    /// ([`crate::commit`]): nothing of its batch was kept.
    #[error("the batch this write was committed in failed: {0}")]
    BatchCommit(std::sync::Arc<StoreError>),
    /// The group committer is gone (shutting down, or a batch panicked
    /// before this write ran): nothing of this write was kept.
    #[error("the group committer stopped before this write was committed")]
    CommitterStopped,
}

impl StoreError {
    pub(crate) fn corrupt(what: &'static str, reason: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            what,
            reason: reason.to_string(),
        }
    }

    /// Whether this is a unique-constraint violation (a lost insert race).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => e.is_unique_violation(),
            StoreError::BatchCommit(e) => e.is_unique_violation(),
            _ => false,
        }
    }

    /// Whether a concurrent transaction caused this (a lost insert race, a
    /// serialisation failure or deadlock on PostgreSQL, a busy SQLite file):
    /// the operation may succeed if retried.
    pub fn is_contention(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => {
                e.is_unique_violation()
                    || matches!(
                        e.code().as_deref(),
                        Some("40001" | "40P01" | "5" | "6" | "517")
                    )
            }
            StoreError::BatchCommit(e) => e.is_contention(),
            _ => false,
        }
    }
}
