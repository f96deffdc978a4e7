//! A Redis connection the services can start without, and that follows a Sentinel failover: a
//! background task connects (the connection manager reconnects by itself afterwards) while every
//! operation before the first connection fails at once with a clear error instead of waiting on
//! a connect; with Sentinel, the task asks the sentinels every second which server is the
//! primary and moves to the new one after a failover; with a Redis Cluster, the cluster
//! connection routes each command to the node that holds its key and follows the cluster's
//! changes by itself. So a service whose Redis is not up yet starts, answers `/readyz` with 503,
//! and serves what needs no Redis.

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};
use tokio::sync::watch;

/// How long a command may take: every call fails within a few seconds instead of hanging a
/// request or a session when Redis stops answering.
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(3)))
        .set_number_of_retries(2)
}

/// TCP tuned to notice a Redis that went silent (a partition drops packets without a reset):
/// the kernel gives up on data unacknowledged for 5 s (`TCP_USER_TIMEOUT`) and probes an idle
/// connection after 5 s (keepalive, 3 probes 1 s apart), so the connection manager reconnects
/// instead of waiting out minutes of retransmissions, and a silent pub/sub connection is
/// noticed too.
fn tcp_settings() -> redis::io::tcp::TcpSettings {
    use redis::io::tcp::{TcpSettings, socket2::TcpKeepalive};
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(5))
        .with_interval(Duration::from_secs(1))
        .with_retries(3);
    TcpSettings::default()
        .set_nodelay(true)
        .set_keepalive(keepalive)
        .set_user_timeout(Duration::from_secs(5))
}

/// The connection settings of `url` (`redis://`, `rediss://`, `redis+unix://`), with
/// [`tcp_settings`].
pub fn connection_info(url: &str) -> redis::RedisResult<redis::ConnectionInfo> {
    use redis::IntoConnectionInfo;
    Ok(url.into_connection_info()?.set_tcp_settings(tcp_settings()))
}

/// Which Redis to use.
pub enum Target {
    /// One server.
    Client(redis::Client),
    /// The primary that the sentinels (`host:port`, or a `redis://` URL with the sentinels' own
    /// password, each) know as `master`, reached with `password` when the servers ask for one.
    Sentinel {
        sentinels: Vec<String>,
        master: String,
        password: Option<String>,
    },
    /// A Redis Cluster, reached through any of these nodes (`redis://host:port` each).
    Cluster { nodes: Vec<String> },
}

/// The server in use, as a connection of its own needs it (pub/sub).
#[derive(Clone)]
pub enum Server {
    One(Box<redis::Client>),
    Cluster(Vec<String>),
}

/// A connection to the server in use: one server (or the sentinels' primary), or a cluster.
/// Either runs the same commands and scripts.
#[derive(Clone)]
pub enum Conn {
    One(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::One(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::One(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::One(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// How often the sentinels are asked which server is the primary.
const SENTINEL_EVERY: Duration = Duration::from_secs(1);
/// The first wait between connection attempts, doubled after each failure up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(250);
const MAX_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct Current {
    server: Server,
    conn: Conn,
}

struct Shared {
    current: RwLock<Option<Current>>,
    /// Counts the servers connected to: changes when the first connection is made, and after
    /// each failover.
    changes: watch::Sender<u64>,
}

#[derive(Clone)]
pub struct LazyRedis {
    shared: Arc<Shared>,
}

impl LazyRedis {
    /// Starts connecting to `target` (`what` names the setting, for the log) and waits up to
    /// `wait` for the first connection; past that it goes on trying in the background, backing
    /// off to every 10 s, until it connects or the handle is dropped.
    pub async fn connect(target: Target, what: &'static str, wait: Duration) -> LazyRedis {
        let shared = Arc::new(Shared {
            current: RwLock::new(None),
            changes: watch::Sender::new(0),
        });
        let mut changes = shared.changes.subscribe();
        tokio::spawn(keep_connected(target, Arc::downgrade(&shared), what));
        let first = tokio::time::timeout(wait, changes.wait_for(|n| *n > 0)).await;
        if first.is_err() {
            tracing::warn!("{what} does not answer yet: starting anyway, not ready until it does");
        }
        LazyRedis { shared }
    }

    fn current(&self) -> Option<Current> {
        (self.shared.current.read())
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The connection, or an I/O error when there has never been one yet.
    pub fn get(&self) -> Result<Conn, RedisError> {
        self.current()
            .map(|c| c.conn)
            .ok_or_else(|| RedisError::from((ErrorKind::Io, "not connected to Redis yet")))
    }

    /// The server in use now (for what needs a connection of its own: pub/sub).
    pub fn server(&self) -> Option<Server> {
        self.current().map(|c| c.server)
    }

    /// Changes when the server in use changes (a failover): a pub/sub connection to the old
    /// one must move.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }
}

/// Where a server is, for comparing servers and for the log (never a password).
fn address(server: &Server) -> String {
    match server {
        Server::One(client) => client.get_connection_info().addr().to_string(),
        Server::Cluster(nodes) => format!("the cluster of {}", nodes.len()),
    }
}

/// A cluster connection with the same bounds as [`manager_config`] and [`tcp_settings`].
async fn cluster_connection(nodes: &[String]) -> redis::RedisResult<ClusterConnection> {
    redis::cluster::ClusterClientBuilder::new(nodes.to_vec())
        .connection_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(3))
        .retries(2)
        .tcp_settings(tcp_settings())
        .build()?
        .get_async_connection()
        .await
}

/// Where the server to use comes from: one client, the sentinels' answer, or a cluster.
// One value per connection task, never moved around: its variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Source {
    One(Server),
    Sentinel {
        sentinel: redis::sentinel::Sentinel,
        master: String,
        node: redis::sentinel::SentinelNodeConnectionInfo,
    },
}

impl Source {
    fn new(target: Target) -> redis::RedisResult<Source> {
        Ok(match target {
            Target::Client(c) => Source::One(Server::One(Box::new(c))),
            Target::Cluster { nodes } => Source::One(Server::Cluster(nodes)),
            Target::Sentinel {
                sentinels,
                master,
                password,
            } => {
                let nodes: Vec<String> = sentinels
                    .iter()
                    .map(|s| match s.contains("://") {
                        true => s.clone(),
                        false => format!("redis://{s}"),
                    })
                    .collect();
                let mut node = redis::sentinel::SentinelNodeConnectionInfo::default()
                    .set_tcp_settings(tcp_settings());
                if let Some(password) = password {
                    node = node.set_redis_connection_info(
                        redis::RedisConnectionInfo::default().set_password(password),
                    );
                }
                Source::Sentinel {
                    sentinel: redis::sentinel::Sentinel::build(nodes)?,
                    master,
                    node,
                }
            }
        })
    }

    /// The server to use now.
    async fn resolve(&mut self) -> redis::RedisResult<Server> {
        match self {
            Source::One(s) => Ok(s.clone()),
            Source::Sentinel {
                sentinel,
                master,
                node,
            } => Ok(Server::One(Box::new(
                sentinel.async_master_for(master, Some(node)).await?,
            ))),
        }
    }
}

impl Shared {
    /// Makes `server` the server in use, unless it already is.
    async fn use_server(&self, server: Server, what: &str) -> redis::RedisResult<()> {
        let to = address(&server);
        let in_use = (self.current.read())
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|c| address(&c.server));
        if in_use.as_deref() == Some(to.as_str()) {
            return Ok(());
        }
        let conn = match &server {
            Server::One(client) => Conn::One(
                ConnectionManager::new_with_config(client.as_ref().clone(), manager_config())
                    .await?,
            ),
            Server::Cluster(nodes) => Conn::Cluster(cluster_connection(nodes).await?),
        };
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Current { server, conn });
        self.changes.send_modify(|n| *n += 1);
        if in_use.is_some() {
            tracing::info!(server = %to, "{what}: moved to the new primary");
        }
        Ok(())
    }
}

async fn keep_connected(target: Target, shared: Weak<Shared>, what: &'static str) {
    let mut source = match Source::new(target) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "{what}: the sentinels' addresses are not usable");
            return;
        }
    };
    let mut wait = FIRST_WAIT;
    let mut failing = false;
    loop {
        let resolved = source.resolve().await;
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let step = match resolved {
            Ok(server) => strong.use_server(server, what).await,
            Err(e) => Err(e),
        };
        drop(strong);
        match step {
            Ok(()) => {
                if failing {
                    tracing::info!("{what} answers: connected");
                }
                failing = false;
                wait = FIRST_WAIT;
                if let Source::One(_) = source {
                    // One server or a cluster: the connection reconnects by itself.
                    return;
                }
                tokio::time::sleep(SENTINEL_EVERY).await;
            }
            Err(e) => {
                // The URL may hold a password: the error's text, never the URL.
                if !failing {
                    tracing::warn!(error = %e, "cannot connect to {what} yet; trying again");
                }
                failing = true;
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_WAIT);
            }
        }
    }
}
