//! The HTTP accept loop both services share, so that no client can hold the process's
//! descriptors or memory by sending slowly: a cap on open connections kept below the process's
//! open-file limit (WebSockets count until their socket closes), a deadline for each request's
//! headers (and for a TLS handshake) that is also the longest a kept-alive connection may sit
//! idle, and a cap on the bytes of a request head. hyper's own HTTP/1 server does the parsing;
//! nothing here reads HTTP. With `TLS_CERT_FILE` and `TLS_KEY_FILE` it speaks HTTPS ([`tls`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

pub mod redis;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;

pub use tls::{Tls, TlsError};

/// Descriptors kept free for everything that is not a client: log files, the store, models,
/// the accept itself.
const RESERVED_DESCRIPTORS: u64 = 64;

/// How a service bounds its HTTP connections; each setting has an environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct HttpLimits {
    /// Open client connections at most (WebSockets included); past it a new connection is
    /// closed at once. Unset: the process's open-file limit (`ulimit -n`) less 64.
    #[arg(long, env = "MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a client has to send a request's headers; also how long a kept-alive
    /// connection may wait for its next request.
    #[arg(long = "header-timeout-seconds", env = "HTTP_HEADER_TIMEOUT_SECONDS", default_value = "10", value_name = "SECONDS", value_parser = seconds)]
    pub header_timeout: Duration,
    /// Largest request head (request line and headers), in bytes; larger ones get 431.
    #[arg(long, env = "MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,
    /// Addresses of reverse proxies or load balancers in front of this service,
    /// comma-separated: a request from one of them is counted against the client address it
    /// puts in X-Forwarded-For (the last one no trusted proxy added), so that per-address
    /// limits apply to clients, not to the proxy. Unset: X-Forwarded-For is ignored (anyone
    /// could write it).
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// PEM certificate chain to serve HTTPS with (with TLS_KEY_FILE). Read again when the file
    /// changes or on SIGHUP. Unset: plain HTTP, for localhost or behind a TLS-terminating proxy.
    #[arg(
        long,
        env = "TLS_CERT_FILE",
        value_name = "PATH",
        requires = "tls_key_file"
    )]
    pub tls_cert_file: Option<std::path::PathBuf>,
    /// PEM private key of TLS_CERT_FILE's certificate.
    #[arg(
        long,
        env = "TLS_KEY_FILE",
        value_name = "PATH",
        requires = "tls_cert_file"
    )]
    pub tls_key_file: Option<std::path::PathBuf>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        defaults()
    }
}

/// An IPv4 address mapped into IPv6 as the IPv4 address itself.
fn canonical(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    }
}

/// Resolves when the process is asked to stop (Ctrl-C, or SIGTERM from a service manager),
/// saying in the log what stopping means for the service's clients.
pub async fn shutdown_signal(what_happens: &'static str) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: {what_happens}");
}

/// A setting in whole seconds, at least one, as a `Duration`: parsed once, where it is read,
/// so that a zero or a typo is refused at start with the setting's name instead of being
/// floored somewhere later.
pub fn seconds(value: &str) -> Result<Duration, String> {
    match value.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1 (seconds)".into()),
        Ok(n) => Ok(Duration::from_secs(n)),
        Err(_) => Err(format!("{value:?} is not a whole number of seconds")),
    }
}

/// A configuration's defaults as its clap attributes state them, with the environment ignored:
/// each default has one home (its `#[arg]`), and a variable a developer exported (a
/// `REDIS_URL`, say) cannot leak into a test's or a `local()` configuration.
pub fn defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("defaults")).mut_args(|arg| arg.env(None));
    let matches = command
        .try_get_matches_from(["defaults"])
        .expect("every option of a configuration has a default or is optional");
    T::from_arg_matches(&matches).expect("the defaults parse")
}

/// An environment file for a configuration, written from its clap attributes (the settings'
/// one home): every setting that has a variable, with its help and its default, commented out,
/// for an operator to copy and change (`deploy/*.env`; a test keeps them in step).
pub fn env_file<T: clap::Args>(title: &str) -> String {
    let command = T::augment_args(clap::Command::new("env"));
    let mut out = format!(
        "# {title}\n# Every setting with its default; uncomment and change what you need.\n\n"
    );
    for arg in command.get_arguments() {
        let Some(name) = arg.get_env() else { continue };
        if let Some(help) = arg.get_help() {
            for line in help.to_string().lines() {
                out.push_str(&format!("# {line}\n"));
            }
        }
        let default: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        out.push_str(&format!(
            "#{}={}\n\n",
            name.to_string_lossy(),
            default.join(",")
        ));
    }
    out
}

impl HttpLimits {
    /// The address a request comes from: `peer`, or when `peer` is a trusted proxy, the
    /// nearest address in X-Forwarded-For that no trusted proxy wrote (read from the right,
    /// since each proxy appends what it saw and only the trusted ones can be believed).
    pub fn client_ip(
        &self,
        peer: std::net::IpAddr,
        headers: &axum::http::HeaderMap,
    ) -> std::net::IpAddr {
        let trusted = |ip: &std::net::IpAddr| self.trusted_proxies.contains(&canonical(*ip));
        if !trusted(&peer) {
            return peer;
        }
        let mut hops: Vec<std::net::IpAddr> = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let Ok(text) = value.to_str() else {
                return peer;
            };
            for hop in text.split(',') {
                match hop.trim().parse::<std::net::IpAddr>() {
                    Ok(ip) => hops.push(canonical(ip)),
                    // A hop that is not an address: nothing left of it can be trusted.
                    Err(_) => hops.clear(),
                }
            }
        }
        hops.into_iter()
            .rev()
            .find(|ip| !trusted(ip))
            .unwrap_or(peer)
    }

    /// The TLS configuration the settings ask for, read now: `None` for plain HTTP.
    pub fn tls(&self) -> Result<Option<Arc<Tls>>, TlsError> {
        Tls::from_files(self.tls_cert_file.as_deref(), self.tls_key_file.as_deref())
    }

    /// The connection cap in force: the setting, never above what the descriptors allow.
    pub fn connections(&self) -> usize {
        let room = open_file_limit().map_or(usize::MAX, |n| {
            usize::try_from(n.saturating_sub(RESERVED_DESCRIPTORS).max(1)).unwrap_or(usize::MAX)
        });
        self.max_connections.unwrap_or(room).min(room).max(1)
    }
}

/// The soft limit on open files, if the system says.
fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and reads nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Options beyond the limits.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Turn Nagle's algorithm off (many small frames, each waited for).
    pub nodelay: bool,
}

/// Serves `app` on `listener` (over TLS when `tls` is given, reloading its files as they
/// change) until `shutdown` resolves, then stops accepting, lets every connection finish its
/// request in flight, and returns. Handlers see the client's address as axum's
/// `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &HttpLimits,
    options: Options,
    tls: Option<Arc<Tls>>,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let reloading = tls.clone().map(|t| tokio::spawn(t.watch(tls::POLL)));
    let slots = Arc::new(Semaphore::new(limits.connections()));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(64 * 1024));
    let http = Arc::new(http);
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let refused = Refusals::default();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or memory, or a connection reset before it was
                    // taken: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refused.note();
            drop(tcp);
            continue;
        };
        if options.nodelay {
            let _ = tcp.set_nodelay(true);
        }
        let counted = Counted { tcp, _slot: slot };
        let app = app.clone();
        let http = http.clone();
        let stopping = stopping.clone();
        let handshake = tls.as_ref().map(|t| t.acceptor());
        let deadline = limits.header_timeout;
        connections.spawn(async move {
            let Some(acceptor) = handshake else {
                return connection(counted, peer, app, &http, stopping).await;
            };
            // A handshake is bounded like a request's headers: a client that stalls in it
            // gives its slot back.
            match tokio::time::timeout(deadline, acceptor.accept(counted)).await {
                Ok(Ok(stream)) => connection(stream, peer, app, &http, stopping).await,
                Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    if let Some(r) = reloading {
        r.abort();
    }
    Ok(())
}

/// One client connection, plain or TLS, served until it ends or the server stops (then the
/// request in flight finishes first).
async fn connection<S>(
    stream: S,
    peer: std::net::SocketAddr,
    app: Router,
    http: &hyper::server::conn::http1::Builder,
    mut stopping: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(request)
    });
    let connection = http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = async { let _ = stopping.wait_for(|s| *s).await; } => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, %peer, "connection ended with an error");
    }
}

/// A client socket holding one connection slot until it is dropped, even after an upgrade
/// hands it to a WebSocket.
struct Counted {
    tcp: TcpStream,
    _slot: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

/// Connections closed for want of a slot: counted, and logged at most every 10 seconds.
#[derive(Default)]
struct Refusals {
    count: AtomicU64,
    last_logged: AtomicU64,
}

impl Refusals {
    fn note(&self) {
        let count = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_logged.load(Ordering::Relaxed);
        if now >= last + 10
            && self
                .last_logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                refused = count,
                "connection limit reached (MAX_CONNECTIONS): closing new connections"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, FromArgMatches};

    #[test]
    fn the_client_is_the_last_address_no_trusted_proxy_wrote() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let limits = HttpLimits {
            trusted_proxies: vec![ip("10.0.0.1"), ip("10.0.0.2")],
            ..HttpLimits::default()
        };
        let headers = |values: &[&str]| {
            let mut h = axum::http::HeaderMap::new();
            for v in values {
                h.append("x-forwarded-for", v.parse().unwrap());
            }
            h
        };
        let client = |peer: &str, values: &[&str]| limits.client_ip(ip(peer), &headers(values));
        // Not from a proxy: the header is anyone's to write, and ignored.
        assert_eq!(client("203.0.113.9", &["198.51.100.1"]), ip("203.0.113.9"));
        // Through one proxy, or two; a client's own forged entries are left of the real one.
        assert_eq!(client("10.0.0.1", &["198.51.100.1"]), ip("198.51.100.1"));
        assert_eq!(
            client("10.0.0.1", &["6.6.6.6, 198.51.100.1, 10.0.0.2"]),
            ip("198.51.100.1")
        );
        assert_eq!(
            client("10.0.0.1", &["6.6.6.6", "198.51.100.1"]),
            ip("198.51.100.1")
        );
        assert_eq!(
            client("10.0.0.1", &["::ffff:198.51.100.1"]),
            ip("198.51.100.1")
        );
        // Nothing usable: the proxy itself.
        assert_eq!(client("10.0.0.1", &[]), ip("10.0.0.1"));
        assert_eq!(client("10.0.0.1", &["10.0.0.2"]), ip("10.0.0.1"));
        assert_eq!(
            client("10.0.0.1", &["198.51.100.1, garbage"]),
            ip("10.0.0.1")
        );
        // Nothing trusted: the peer, always.
        let open = HttpLimits::default();
        assert_eq!(
            open.client_ip(ip("10.0.0.1"), &headers(&["198.51.100.1"])),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn seconds_are_whole_and_at_least_one() {
        assert_eq!(seconds("90"), Ok(Duration::from_secs(90)));
        assert!(seconds("0").unwrap_err().contains("at least 1"));
        assert!(seconds("1.5").is_err() && seconds("-3").is_err() && seconds("").is_err());
        // As a setting: refused at start, naming it.
        let command =
            HttpLimits::augment_args(clap::Command::new("serve")).mut_args(|arg| arg.env(None));
        let err = command
            .try_get_matches_from(["serve", "--header-timeout-seconds", "0"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("header-timeout-seconds") && err.contains("at least 1"),
            "{err}"
        );
        let ok = HttpLimits::augment_args(clap::Command::new("serve"))
            .mut_args(|arg| arg.env(None))
            .try_get_matches_from(["serve", "--header-timeout-seconds", "3"])
            .unwrap();
        let limits = HttpLimits::from_arg_matches(&ok).unwrap();
        assert_eq!(limits.header_timeout, Duration::from_secs(3));
    }
}
