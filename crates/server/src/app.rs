//! Starting and stopping a node: open the store and keyring, load the demo
//! tenant on a first start, bind the listener, spawn the workers, and on
//! shutdown let in-flight requests and claimed work finish.

use std::net::SocketAddr;

use ladder_store::keyring::Keyring;
use ladder_store::{Store, StoreError, tenants};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::service::error::ServiceError;
use crate::service::tenants::{CreatedTenant, create};
use crate::state::AppState;

/// The example policy the demo tenant starts with.
pub const DEMO_POLICY: &str = include_str!("../../../examples/policies/acme.toml");

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data directory `{path}`: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot open the keyring: {0}")]
    Keyring(#[from] ladder_store::keyring::KeyringError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("invalid channel settings: {0}")]
    Channels(#[from] ladder_channels::ConfigError),
    #[error("cannot create the demo tenant: {0}")]
    Demo(ServiceError),
}

/// Opens the store and keyring a configuration names, creating the data
/// directory (owner-only) when the defaults point into it.
pub async fn open(config: &Config) -> Result<(Store, Keyring), StartError> {
    // Provider adapters speak HTTPS through rustls with the ring provider;
    // it must be installed once per process before any client is built.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = config.database_url();
    if url.starts_with("sqlite:") || config.keyring.is_none() {
        create_private_dir(&config.data_dir)?;
    }
    let sealer = config.keyring_sealer()?;
    let store = Store::open(&url).await?;
    let keyring = Keyring::open_sealed(&config.keyring_path(), sealer, config.keyring_seal_plain)?;
    Ok((store, keyring))
}

fn create_private_dir(path: &std::path::Path) -> Result<(), StartError> {
    use std::os::unix::fs::DirBuilderExt;
    if path.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| StartError::DataDir {
            path: path.display().to_string(),
            source,
        })
}

/// A node that is up.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub database: String,
    pub keyring: String,
    /// Set when this start created the demo tenant: its keys are shown once.
    pub demo: Option<CreatedTenant>,
    /// The node's shared state: for operators' tools and tests that need
    /// the same store and keyring the node uses.
    pub state: AppState,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting requests, lets in-flight requests and claimed work
    /// finish, and waits for everything to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts a node with `config`.
pub async fn start(config: Config) -> Result<Running, StartError> {
    config.check()?;
    crate::metrics::install();
    let (store, keyring) = open(&config).await?;
    let channels = build_channels(&store, &config)?;
    let listen = config.listen;
    let database = ladder_store::db::redact(&config.database_url());
    let keyring_path = keyring.path().display().to_string();
    let state = AppState::new(store, keyring, channels, config);

    let demo = if state.config.demo_tenant {
        let mut conn = state
            .store
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        let empty = tenants::list(&mut conn).await?.is_empty();
        drop(conn);
        if empty {
            Some(
                create(&state, "acme", DEMO_POLICY, "system")
                    .await
                    .map_err(StartError::Demo)?,
            )
        } else {
            None
        }
    } else {
        None
    };

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: listen,
        source,
    })?;
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    let app = crate::api::router(state.clone());
    let mut http_stop = stopped.clone();
    tasks.push(tokio::spawn(async move {
        let shutdown = async move {
            let _ = http_stop.changed().await;
        };
        // Per-client-address rate limits need the TCP peer's address.
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "http server failed");
        }
    }));
    for _ in 0..state.config.delivery.workers {
        tasks.push(tokio::spawn(crate::worker::delivery(
            state.clone(),
            stopped.clone(),
        )));
    }
    // Work accepted on any node wakes this node's workers (PostgreSQL
    // `NOTIFY`); a node without workers has no one to wake.
    if state.store.dialect() == ladder_store::Dialect::Postgres && state.config.delivery.workers > 0
    {
        tasks.push(tokio::spawn(crate::wake::listen(
            state.config.database_url(),
            state.wake.clone(),
            stopped.clone(),
        )));
    }
    for _ in 0..state.config.events.workers {
        tasks.push(tokio::spawn(crate::worker::outbound_events(
            state.clone(),
            stopped.clone(),
        )));
    }
    tasks.push(tokio::spawn(crate::worker::maintenance(
        state.clone(),
        stopped.clone(),
    )));
    tracing::info!(%addr, database = %database, "ladder is serving");
    Ok(Running {
        addr,
        database,
        keyring: keyring_path,
        demo,
        state,
        stop,
        tasks,
    })
}

/// The state a CLI command works with: the same store and keyring a server
/// would open, no listener, no workers.
pub async fn offline_state(config: Config) -> Result<AppState, StartError> {
    let (store, keyring) = open(&config).await?;
    let channels = build_channels(&store, &config)?;
    Ok(AppState::new(store, keyring, channels, config))
}

/// The sandbox for every channel, replaced where the deployment or a
/// tenant configured a real provider, and the in-app channel (ladder's own).
fn build_channels(store: &Store, config: &Config) -> Result<ladder_channels::Channels, StartError> {
    let mut channels = ladder_channels::sandbox::channels(store);
    channels = config.channels.deployment().install(None, channels)?;
    for (tenant, providers) in &config.channels.tenants {
        channels = providers.install(Some(tenant), channels)?;
    }
    channels = ladder_channels::inapp::install(store, channels);
    // Configured failures apply to whichever adapter serves the channel.
    for (channel, failure) in &config.channels.sandbox.fail {
        channels = channels.with_failure(*channel, *failure);
    }
    Ok(channels)
}
