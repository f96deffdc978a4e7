//! Attacks on an HTTP server for tests: the services' tests run them against their own
//! binaries, so each attack is written once.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The start of a request whose headers never end.
pub const HALF_A_HEADER: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";

/// Opens `n` connections to `addr`, each sending half a request head and then nothing.
/// Connections the server refuses at once are still returned (their reads end).
pub async fn slowloris(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let Ok(mut tcp) = TcpStream::connect(addr).await else {
            continue;
        };
        let _ = tcp.write_all(HALF_A_HEADER).await;
        held.push(tcp);
    }
    held
}

/// How long until the server closes `tcp` (its read ends, with or without an error), or
/// `None` if it is still open after `within`. Whatever the server sends first is skipped.
pub async fn closed_after(tcp: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.checked_sub(start.elapsed())?;
        match tokio::time::timeout(left, tcp.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

/// Sends one `GET path` on a new connection and returns the status line, or why not.
pub async fn get(addr: SocketAddr, path: &str, within: Duration) -> Result<String, String> {
    let attempt = async {
        let mut tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        tcp.read_to_end(&mut response)
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&response);
        text.lines()
            .next()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| "closed without an answer".to_owned())
    };
    tokio::time::timeout(within, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {within:?}")))
}

/// The attack the outside review ran on both services: `connections` half-sent heads at once.
/// Passes when `/healthz` answers again within the header deadline (plus a second) and every
/// half-sent head is dropped by then: the server neither runs out of descriptors nor keeps
/// what a client never finishes.
pub async fn outlasts_slowloris(
    addr: SocketAddr,
    connections: usize,
    header_timeout: Duration,
) -> Result<(), String> {
    let start = Instant::now();
    let mut held = slowloris(addr, connections).await;
    let deadline = header_timeout + Duration::from_secs(1);
    loop {
        match get(addr, "/healthz", Duration::from_millis(500)).await {
            Ok(status) if status.starts_with("HTTP/1.1 200") => break,
            other if start.elapsed() > deadline => {
                return Err(format!(
                    "/healthz still failing {:?} into the attack: {other:?}",
                    start.elapsed()
                ));
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    for (i, tcp) in held.iter_mut().enumerate() {
        let left = deadline.saturating_sub(start.elapsed()) + Duration::from_millis(200);
        if closed_after(tcp, left).await.is_none() {
            return Err(format!(
                "half-sent head {i} still held {:?} into the attack",
                start.elapsed()
            ));
        }
    }
    Ok(())
}

/// Makes a child process start with at most `n` open files (`ulimit -n n`).
pub fn limit_open_files(command: &mut std::process::Command, n: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe and touches only the child, between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Waits until `/healthz` on `addr` answers 200, up to `within`.
pub async fn wait_healthy(addr: SocketAddr, within: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        match get(addr, "/healthz", Duration::from_millis(500)).await {
            Ok(status) if status.starts_with("HTTP/1.1 200") => return Ok(()),
            other if start.elapsed() > within => return Err(format!("{other:?}")),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
