//! Connections: a deadpool PostgreSQL pool and a NATS client, both built from [`Settings`].

use crate::settings::Settings;
use deadpool_postgres::{ManagerConfig, RecyclingMethod};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid database url: {0}")]
    Url(#[from] tokio_postgres::Error),
    #[error("cannot build the database pool: {0}")]
    Pool(#[from] deadpool_postgres::BuildError),
    #[error("cannot connect to NATS at {url}: {source}")]
    Nats { url: String, source: async_nats::ConnectError },
}

/// A pool of PostgreSQL connections.
///
/// # Errors
/// An unparsable database URL.
pub fn pg_pool(settings: &Settings) -> Result<deadpool_postgres::Pool, ConnectError> {
    pg_pool_for(settings.database_url.expose(), settings.database_pool)
}

/// # Errors
/// An unparsable database URL.
pub fn pg_pool_for(url: &str, size: usize) -> Result<deadpool_postgres::Pool, ConnectError> {
    let config: tokio_postgres::Config = url.parse()?;
    let manager = deadpool_postgres::Manager::from_config(
        config,
        tokio_postgres::NoTls,
        ManagerConfig { recycling_method: RecyclingMethod::Fast },
    );
    Ok(deadpool_postgres::Pool::builder(manager)
        .max_size(size.max(2))
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()?)
}

/// A NATS client that reconnects forever in the background.
///
/// # Errors
/// The first connection attempt failed.
pub async fn nats(settings: &Settings) -> Result<async_nats::Client, ConnectError> {
    let mut options = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .name("cairn");
    if let (Some(user), Some(password)) = (&settings.nats_user, &settings.nats_password) {
        options = options.user_and_password(user.clone(), password.expose().to_string());
    }
    // retry_on_initial_connect makes connect return at once; the client connects in the background.
    options
        .connect(settings.nats_url.as_str())
        .await
        .map_err(|source| ConnectError::Nats { url: settings.nats_url.clone(), source })
}
