//! A Redis connection the services can start without: a background task connects (and the
//! connection manager reconnects by itself afterwards), while every operation before the first
//! connection fails at once with a clear error instead of waiting on a connect. So a service
//! whose Redis is not up yet starts, answers `/readyz` with 503 and serves what needs no Redis.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError};

/// How long a command may take: every call fails within a few seconds instead of hanging a
/// request or a session when Redis stops answering.
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(3)))
        .set_number_of_retries(2)
}

/// The connection settings of `url` (`redis://`, `rediss://`, `redis+unix://`) with TCP tuned
/// to notice a Redis that went silent (a partition drops packets without a reset): the kernel
/// gives up on data unacknowledged for 5 s (`TCP_USER_TIMEOUT`) and probes an idle connection
/// after 5 s (keepalive, 3 probes 1 s apart), so the connection manager reconnects instead of
/// waiting out minutes of retransmissions, and a silent pub/sub connection is noticed too.
pub fn connection_info(url: &str) -> redis::RedisResult<redis::ConnectionInfo> {
    use redis::IntoConnectionInfo;
    use redis::io::tcp::{TcpSettings, socket2::TcpKeepalive};
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(5))
        .with_interval(Duration::from_secs(1))
        .with_retries(3);
    let tcp = TcpSettings::default()
        .set_nodelay(true)
        .set_keepalive(keepalive)
        .set_user_timeout(Duration::from_secs(5));
    Ok(url.into_connection_info()?.set_tcp_settings(tcp))
}

/// The first wait between connection attempts, doubled after each failure up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(250);
const MAX_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct LazyRedis {
    conn: Arc<OnceLock<ConnectionManager>>,
}

impl LazyRedis {
    /// Starts connecting to `client` (`what` names the setting, for the log) and waits up to
    /// `wait` for the first connection; past that it goes on trying in the background, backing
    /// off to every 10 s, until it connects or the handle is dropped.
    pub async fn connect(client: redis::Client, what: &'static str, wait: Duration) -> LazyRedis {
        let conn = Arc::new(OnceLock::new());
        let (done, connected) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(keep_connecting(client, Arc::downgrade(&conn), what, done));
        if tokio::time::timeout(wait, connected).await.is_err() {
            tracing::warn!("{what} does not answer yet: starting anyway, not ready until it does");
        }
        LazyRedis { conn }
    }

    /// The connection, or an I/O error when there has never been one yet.
    pub fn get(&self) -> Result<ConnectionManager, RedisError> {
        self.conn
            .get()
            .cloned()
            .ok_or_else(|| RedisError::from((ErrorKind::Io, "not connected to Redis yet")))
    }
}

async fn keep_connecting(
    client: redis::Client,
    cell: Weak<OnceLock<ConnectionManager>>,
    what: &'static str,
    done: tokio::sync::oneshot::Sender<()>,
) {
    let mut wait = FIRST_WAIT;
    let mut failed = false;
    loop {
        match ConnectionManager::new_with_config(client.clone(), manager_config()).await {
            Ok(conn) => {
                let Some(cell) = cell.upgrade() else { return };
                let _ = cell.set(conn);
                if failed {
                    tracing::info!("{what} answers: connected");
                }
                let _ = done.send(());
                return;
            }
            Err(e) => {
                if cell.strong_count() == 0 {
                    return;
                }
                // The URL may hold a password: the error's text, never the URL.
                tracing::warn!(error = %e, ?wait, "cannot connect to {what} yet; trying again");
                failed = true;
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_WAIT);
            }
        }
    }
}
