//! Rendezvous load generator: real WebSocket clients with real tokens against the real
//! `anonchat-rendezvous` binary, run as its own process so its memory can be read.
//!
//! `cargo build --release -p anonchat-rendezvous && cargo run --release --example bench_rendezvous -- [OPTIONS]`
//!   --store memory|redis|sentinel|cluster
//!                          the store: redis, a private redis-server on a Unix socket; sentinel,
//!                          the same server (on a port too) found through three Redis Sentinels;
//!                          cluster, a Redis Cluster of three primaries (testkit's)
//!   --pairs N              pairs matched at once for the throughput run (default 5000)
//!   --rate R --seconds S   paced run: R matches/s for S s, join→matched latency (default 1000, 10)
//!   --idle N,N,...         idle authenticated connections for the memory run (default 10000)
//!   --only RUN             just one run: idle, throughput or paced (default all three); or
//!                          crowd: 1,000 men who want women wait, and --rate more a second
//!                          join (scanning them all, fitting none), queue and cancel; or
//!                          floor: Redis' own cost of an empty script and of one making a
//!                          join's 19 calls, at --rate for --seconds (needs --store redis)
//!   --bin PATH             the server binary (default target/release/anonchat-rendezvous)
//!   --hostile N            instead of the runs above: join cost under a hostile queue. Honest
//!                          clients loop join→queued→cancel at --rate joins/s for --seconds,
//!                          first alone, then beside N sockets of one device looping join/cancel;
//!                          join→queued p50/p99 and (Redis) µs per call of each Lua script
//!   --rate-limit N         the server's RATE_LIMIT_PER_MINUTE (connections per source address;
//!                          default 0, off: the load comes from a few loopback addresses)
//!   --scripts DIR          where the server's Lua scripts are, to name them (default
//!                          rendezvous/src/store; give the old tree's with an old --bin)
//!   --per-script           paced run: each script's time from Redis' slow log, told to log
//!                          every command (which costs Redis time itself: 20-40 µs a match
//!                          here), instead of `INFO commandstats` alone

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anonchat_protocol::token::Gender;
use anonchat_testkit::ws::{self, Ws};
use anonchat_testkit::{Device, TestVerifier};
use anyhow::{Context, bail};
use serde_json::{Value, json};

struct Opts {
    store: String,
    pairs: usize,
    rate: u64,
    seconds: u64,
    idle: Vec<usize>,
    bin: String,
    hostile: Option<usize>,
    scripts: std::path::PathBuf,
    rate_limit: u32,
    only: Option<String>,
    per_script: bool,
}

fn opts() -> anyhow::Result<Opts> {
    let mut o = Opts {
        store: "memory".into(),
        pairs: 5000,
        rate: 1000,
        seconds: 10,
        idle: vec![10_000],
        bin: "target/release/anonchat-rendezvous".into(),
        hostile: None,
        scripts: "rendezvous/src/store".into(),
        rate_limit: 0,
        only: None,
        per_script: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--store" => o.store = val()?,
            "--pairs" => o.pairs = val()?.parse()?,
            "--rate" => o.rate = val()?.parse()?,
            "--seconds" => o.seconds = val()?.parse()?,
            "--idle" => {
                o.idle = val()?
                    .split(',')
                    .map(|n| n.parse())
                    .collect::<Result<_, _>>()?
            }
            "--bin" => o.bin = val()?,
            "--hostile" => o.hostile = Some(val()?.parse()?),
            "--scripts" => o.scripts = val()?.into(),
            "--rate-limit" => o.rate_limit = val()?.parse()?,
            "--per-script" => o.per_script = true,
            "--only" => match val()?.as_str() {
                run @ ("idle" | "throughput" | "paced" | "crowd" | "floor") => {
                    o.only = Some(run.into())
                }
                other => {
                    bail!("--only {other}: the runs are idle, throughput, paced, crowd and floor")
                }
            },
            other => bail!("unknown option {other}"),
        }
    }
    Ok(o)
}

/// Lets this process and the server it starts hold many sockets.
fn raise_fd_limit(n: u64) {
    let lim = libc::rlimit {
        rlim_cur: n,
        rlim_max: n,
    };
    // SAFETY: setrlimit only reads the struct; failure just leaves the old limit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        eprintln!("could not raise the file limit to {n}; large runs may fail");
    }
}

/// One Lua script's share of Redis' time.
struct ScriptCost {
    script: String,
    calls: u64,
    micros: u64,
}

struct Server {
    child: Child,
    redis: Option<Child>,
    redis_sock: Option<std::path::PathBuf>,
    /// The sentinels of `--store sentinel`.
    sentinels: Vec<Child>,
    _cluster: Option<anonchat_testkit::RedisCluster>,
    addr: SocketAddr,
    dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for r in self.redis.iter_mut().chain(self.sentinels.iter_mut()) {
            let _ = r.kill();
            let _ = r.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    /// `redis-cli` against the bench's Redis; `None` with the memory store.
    fn redis_cli(&self, args: &[&str]) -> anyhow::Result<Option<Vec<u8>>> {
        let Some(sock) = &self.redis_sock else {
            return Ok(None);
        };
        let out = Command::new("redis-cli")
            .arg("-s")
            .arg(sock)
            .args(args)
            .output()
            .context("redis-cli")?;
        if !out.status.success() {
            bail!(
                "redis-cli {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(Some(out.stdout))
    }

    /// From now on Redis logs every command in its slow log, which starts empty: what
    /// [`Self::script_costs`] reads.
    fn start_script_log(&self) -> anyhow::Result<()> {
        self.redis_cli(&["CONFIG", "SET", "slowlog-log-slower-than", "0"])?;
        self.redis_cli(&["CONFIG", "SET", "slowlog-max-len", "5000000"])?;
        self.redis_cli(&["SLOWLOG", "RESET"])?;
        Ok(())
    }

    /// Per-script Redis cost: every `EVALSHA` since [`Self::start_script_log`], grouped by the
    /// script it ran — named by hashing the `.lua` files in `scripts` as redis-rs does. `None`
    /// with the memory store.
    fn script_costs(&self, scripts: &std::path::Path) -> anyhow::Result<Option<Vec<ScriptCost>>> {
        if self.redis_sock.is_none() {
            return Ok(None);
        }
        let log = self.slow_log()?;
        // A script is its own file, or (since issue 12) lua/prelude.lua, maybe lua/rules.lua,
        // then its own file: each file is named by the hash of any of those.
        let dir = if scripts.join("lua").is_dir() {
            scripts.join("lua")
        } else {
            scripts.to_owned()
        };
        let sha1 = |files: &[std::path::PathBuf]| -> anyhow::Result<String> {
            let out = Command::new("sh")
                .args(["-c", "cat \"$@\" | sha1sum", "sh"])
                .args(files)
                .output()?;
            Ok(String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned())
        };
        let (prelude, rules) = (dir.join("prelude.lua"), dir.join("rules.lua"));
        let mut names = std::collections::HashMap::new();
        for entry in std::fs::read_dir(&dir).with_context(|| dir.display().to_string())? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "lua") {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                for files in [
                    vec![path.clone()],
                    vec![prelude.clone(), path.clone()],
                    vec![prelude.clone(), rules.clone(), path.clone()],
                ] {
                    names.insert(sha1(&files)?, name.to_string());
                }
            }
        }
        let mut costs: Vec<ScriptCost> = Vec::new();
        for entry in &log {
            let args = &entry[3];
            if !args[0]
                .as_str()
                .is_some_and(|c| c.eq_ignore_ascii_case("evalsha"))
            {
                continue;
            }
            let sha = args[1].as_str().unwrap_or_default();
            let name = names.get(sha).cloned().unwrap_or_else(|| sha.to_owned());
            let micros = entry[2].as_u64().unwrap_or(0);
            match costs.iter_mut().find(|c| c.script == name) {
                Some(c) => {
                    c.calls += 1;
                    c.micros += micros;
                }
                None => costs.push(ScriptCost {
                    script: name,
                    calls: 1,
                    micros,
                }),
            }
        }
        costs.sort_by_key(|c| std::cmp::Reverse(c.calls));
        Ok(Some(costs))
    }

    /// Redis' own time per match since [`Self::start_script_log`]: each script's (from the
    /// slow log: a script's run, its inner calls included; Redis 7 logs those inner calls too,
    /// so the log's other entries are not summed) and the process's CPU (`INFO cpu`, from
    /// `cpu_before`: everything, the network included).
    fn cost_per_match(
        &self,
        scripts: &std::path::Path,
        matches: u64,
        cpu_before: f64,
    ) -> anyhow::Result<String> {
        let Some(costs) = self.script_costs(scripts)? else {
            return Ok("no Redis".into());
        };
        let per = |micros: u64| micros as f64 / matches.max(1) as f64;
        let mut parts: Vec<String> = costs
            .iter()
            .map(|c| {
                format!(
                    "{} {:.1} µs/match ({} calls)",
                    c.script,
                    per(c.micros),
                    c.calls
                )
            })
            .collect();
        let cpu = self.cpu_seconds()? - cpu_before;
        parts.push(format!(
            "Redis process CPU {:.1} µs/match",
            cpu * 1e6 / matches.max(1) as f64
        ));
        Ok(parts.join(", "))
    }

    /// From now on `INFO commandstats` counts from zero: what [`Self::command_cost_per_match`]
    /// reads. Unlike the slow log, this costs Redis nothing measurable.
    fn start_command_stats(&self) -> anyhow::Result<()> {
        self.redis_cli(&["CONFIG", "RESETSTAT"])?;
        Ok(())
    }

    /// Redis' own time per match since [`Self::start_command_stats`], from `INFO commandstats`:
    /// every script run (`EVALSHA`, its inner calls included; Redis 7 counts those calls under
    /// their own names too, which gives how many a match makes), the pub/sub hand-overs, and
    /// the process's CPU (everything, the network and background work included).
    fn command_cost_per_match(&self, matches: u64, cpu_before: f64) -> anyhow::Result<String> {
        let Some(stats) = self.command_stats()? else {
            return Ok("no Redis".into());
        };
        let per = |x: f64| x / matches.max(1) as f64;
        let of = |names: &[&str]| {
            stats
                .iter()
                .filter(|s| names.contains(&s.0.as_str()))
                .fold((0, 0), |(c, u), s| (c + s.1, u + s.2))
        };
        let (scripts, script_usec) = of(&["evalsha", "eval"]);
        let (hands, hand_usec) = of(&["publish", "spublish"]);
        let direct = ["evalsha", "eval", "publish", "spublish", "config", "info"];
        let inner: u64 = stats
            .iter()
            .filter(|s| !direct.contains(&s.0.as_str()))
            .map(|s| s.1)
            .sum();
        let cpu = self.cpu_seconds()? - cpu_before;
        Ok(format!(
            "scripts {:.1} µs/match ({scripts} runs; {:.1} other commands a match, mostly the scripts' own calls), publish {:.1} µs/match ({hands} calls), Redis process CPU {:.1} µs/match",
            per(script_usec as f64),
            per(inner as f64),
            per(hand_usec as f64),
            per(cpu * 1e6),
        ))
    }

    /// `INFO commandstats` as (command, calls, µs); `None` with the memory store.
    fn command_stats(&self) -> anyhow::Result<Option<Vec<(String, u64, u64)>>> {
        let Some(info) = self.redis_cli(&["INFO", "commandstats"])? else {
            return Ok(None);
        };
        // cmdstat_get:calls=1,usec=2,usec_per_call=2.00,rejected_calls=0,failed_calls=0
        Ok(Some(
            String::from_utf8_lossy(&info)
                .lines()
                .filter_map(|l| {
                    let (name, fields) = l.trim().strip_prefix("cmdstat_")?.split_once(':')?;
                    let field = |key: &str| {
                        fields
                            .split(',')
                            .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
                            .and_then(|v| v.parse::<u64>().ok())
                    };
                    Some((name.to_owned(), field("calls")?, field("usec")?))
                })
                .collect(),
        ))
    }

    /// Redis' slow log, oldest entries last: `[id, time, µs, [command, args…], …]` each.
    fn slow_log(&self) -> anyhow::Result<Vec<Value>> {
        match self.redis_cli(&["--json", "SLOWLOG", "GET", "-1"])? {
            Some(log) => Ok(serde_json::from_slice(&log)?),
            None => Ok(Vec::new()),
        }
    }

    /// Redis' CPU time so far (user + system), in seconds; 0 with the memory store.
    fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let Some(info) = self.redis_cli(&["INFO", "cpu"])? else {
            return Ok(0.0);
        };
        Ok(String::from_utf8_lossy(&info)
            .lines()
            .filter_map(|l| {
                let (k, v) = l.trim().split_once(':')?;
                matches!(k, "used_cpu_user" | "used_cpu_sys").then(|| v.parse::<f64>().ok())?
            })
            .sum())
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

async fn start_server(o: &Opts, verifier: &TestVerifier) -> anyhow::Result<Server> {
    static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("anonchat-bench-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, serde_json::to_vec(&verifier.jwks())?)?;
    let mut redis = None;
    let mut redis_sock = None;
    let mut sentinels = Vec::new();
    let mut cluster = None;
    let mut cmd = Command::new(&o.bin);
    let free_port = || -> anyhow::Result<u16> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    };
    if o.store == "redis" || o.store == "sentinel" {
        let sock = dir.join("redis.sock");
        let port = free_port()?;
        redis = Some(
            Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--unixsocket",
                ])
                .arg(&sock)
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .spawn()
                .context("redis-server")?,
        );
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            std::thread::sleep(Duration::from_millis(10));
        }
        if o.store == "redis" {
            cmd.env("REDIS_URL", format!("redis+unix://{}", sock.display()));
        } else {
            let mut at = Vec::new();
            for i in 0..3 {
                let sentinel_port = free_port()?;
                let conf = dir.join(format!("sentinel{i}.conf"));
                std::fs::write(
                    &conf,
                    format!(
                        "port {sentinel_port}\nbind 127.0.0.1\nsentinel monitor bench 127.0.0.1 {port} 2\n"
                    ),
                )?;
                sentinels.push(
                    Command::new("redis-server")
                        .arg(&conf)
                        .arg("--sentinel")
                        .stdout(Stdio::null())
                        .spawn()
                        .context("redis-server --sentinel")?,
                );
                at.push(format!("127.0.0.1:{sentinel_port}"));
            }
            cmd.env("REDIS_SENTINELS", at.join(","))
                .env("REDIS_SENTINEL_MASTER", "bench");
        }
        redis_sock = Some(sock);
    }
    if o.store == "cluster" {
        let c = anonchat_testkit::RedisCluster::start();
        cmd.env("REDIS_CLUSTER_NODES", c.nodes().join(","));
        cluster = Some(c);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = cmd
        .arg("serve")
        .env("RENDEZVOUS_ADDR", format!("127.0.0.1:{port}"))
        .env("VERIFIER_JWKS_FILE", &jwks)
        .env("SERVER_SECRET", "bench secret")
        .env("RATE_LIMIT_PER_MINUTE", o.rate_limit.to_string())
        .env("DAILY_MATCH_LIMIT", "1000000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (build it with cargo build --release -p anonchat-rendezvous)",
                o.bin
            )
        })?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    // Ready, not just listening: its store found (through the sentinels, or the cluster).
    loop {
        let ready = reqwest::get(format!("http://{addr}/readyz"))
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            break;
        }
        if Instant::now() > deadline {
            bail!("the server did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Server {
        child,
        redis,
        redis_sock,
        sentinels,
        _cluster: cluster,
        addr,
        dir,
    })
}

/// A logged-in client of a fresh device, connecting from `source` (a 127.0.0.x address, to
/// spread the ports).
async fn login(
    addr: SocketAddr,
    source: IpAddr,
    verifier: &TestVerifier,
    gender: Gender,
) -> anyhow::Result<Ws> {
    Ok(ws::login(addr, Some(source), &verifier.device(gender))
        .await?
        .0)
}

/// The next frame, `error` frames included; a closed socket is an error.
async fn next_any(ws: &mut Ws) -> anyhow::Result<Value> {
    ws::next(ws, Duration::from_secs(60))
        .await?
        .context("closed")
}

/// The next frame; an `error` frame is an error.
async fn next(ws: &mut Ws) -> anyhow::Result<Value> {
    let v = next_any(ws).await?;
    if v["type"] == "error" {
        bail!("the server answered {v}");
    }
    Ok(v)
}

fn join_frame(want: &str) -> Value {
    ws::join_frame("bencher", want)
}

#[path = "support/stats.rs"]
mod stats;
use stats::percentile_ms as percentile;

/// `n` loopback source addresses, `127.0.<subnet>.1` on (many sources spread the ports).
fn loopback_sources(subnet: u8, n: u8) -> Vec<IpAddr> {
    (1..=n)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, subnet, i)))
        .collect()
}

/// Logs in `n` clients, 256 handshakes at a time.
async fn login_many(
    addr: SocketAddr,
    verifier: &TestVerifier,
    n: usize,
    gender: Gender,
    sources: &[IpAddr],
) -> anyhow::Result<Vec<Ws>> {
    let mut out = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(256) {
        let logins = chunk
            .iter()
            .map(|&i| login(addr, sources[i % sources.len()], verifier, gender));
        for ws in futures_util::future::join_all(logins).await {
            out.push(ws?);
        }
    }
    Ok(out)
}

/// All pairs join at once: waiting side first, then the joiners; matches per second.
async fn throughput(server: &Server, verifier: &TestVerifier, pairs: usize) -> anyhow::Result<()> {
    let sources = loopback_sources(0, 4);
    let waiting = login_many(server.addr, verifier, pairs, Gender::Female, &sources).await?;
    let joiners = login_many(server.addr, verifier, pairs, Gender::Male, &sources).await?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (mut w, mut j) in waiting.into_iter().zip(joiners) {
        tasks.push(tokio::spawn(async move {
            ws::send(&mut w, &join_frame("m")).await?;
            ws::send(&mut j, &join_frame("f")).await?;
            // Both sides must hear `matched`; with all pairs in flight any partner will do.
            for ws in [&mut w, &mut j] {
                loop {
                    let m = next(ws).await?;
                    if m["type"] == "matched" {
                        break;
                    }
                }
            }
            Ok::<_, anyhow::Error>((w, j))
        }));
    }
    let mut keep = Vec::new();
    for t in tasks {
        keep.push(t.await??);
    }
    let elapsed = started.elapsed();
    println!(
        "| throughput | {pairs} pairs at once | {:.0} matches/s | all matched in {:.0} ms |",
        pairs as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0
    );
    Ok(())
}

/// Sends each socket a join wanting `want` and reads its answer, which must be one of `answers`.
async fn queue_all(sockets: &mut [Ws], want: &str, answers: &[&str]) -> anyhow::Result<()> {
    for w in sockets.iter_mut() {
        ws::send(w, &join_frame(want)).await?;
        let q = next(w).await?;
        if !answers.iter().any(|a| q["type"] == *a) {
            bail!("{q}");
        }
    }
    Ok(())
}

/// Starts `each` on one joiner every 1/`rate` s, from now; returns the times they measured,
/// and their sockets (kept open by the caller until it has read what it measures).
async fn pace<F, Fut>(
    joiners: Vec<Ws>,
    rate: u64,
    each: F,
) -> anyhow::Result<(Vec<Duration>, Vec<Ws>)>
where
    F: Fn(Ws) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(Duration, Ws)>> + Send + 'static,
{
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(joiners.len());
    for (i, j) in joiners.into_iter().enumerate() {
        tokio::time::sleep_until(start + interval * i as u32).await;
        tasks.push(tokio::spawn(each(j)));
    }
    let (mut times, mut sockets) = (Vec::new(), Vec::new());
    for t in tasks {
        let (d, j) = t.await??;
        times.push(d);
        sockets.push(j);
    }
    Ok((times, sockets))
}

/// A paced run: `rate` matches per second; latency from the joiner's `join` to its `matched`.
async fn paced(
    server: &Server,
    o: &Opts,
    verifier: &TestVerifier,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<()> {
    let n = (rate * seconds) as usize;
    let sources = loopback_sources(0, 4);
    let mut waiting = login_many(server.addr, verifier, n, Gender::Female, &sources).await?;
    let joiners = login_many(server.addr, verifier, n, Gender::Male, &sources).await?;
    // The waiting side queues first (not measured).
    queue_all(&mut waiting, "m", &["queued", "matched"]).await?;
    if o.per_script {
        server.start_script_log()?;
    } else {
        server.start_command_stats()?;
    }
    let cpu_before = server.cpu_seconds()?;
    let start = tokio::time::Instant::now();
    let (mut lat, _keep) = pace(joiners, rate, |mut j| async move {
        let t = Instant::now();
        ws::send(&mut j, &join_frame("f")).await?;
        loop {
            if next(&mut j).await?["type"] == "matched" {
                return Ok((t.elapsed(), j));
            }
        }
    })
    .await?;
    let achieved = n as f64 / start.elapsed().as_secs_f64();
    let redis = if o.per_script {
        server.cost_per_match(&o.scripts, n as u64, cpu_before)?
    } else {
        server.command_cost_per_match(n as u64, cpu_before)?
    };
    println!(
        "| paced | {rate}/s for {seconds} s ({achieved:.0}/s achieved) | p50 {:.2} ms, p99 {:.2} ms | {redis} |",
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.99)
    );
    drop(waiting);
    Ok(())
}

/// RSS of the server per idle authenticated connection.
async fn idle(server: &Server, verifier: &TestVerifier, n: usize) -> anyhow::Result<()> {
    let sources = loopback_sources(1, 8);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss_kib();
    let clients = login_many(server.addr, verifier, n, Gender::Female, &sources).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server.rss_kib();
    println!(
        "| idle | {n} authenticated connections | RSS {before} → {after} KiB | {:.1} KiB per connection |",
        (after.saturating_sub(before)) as f64 / n as f64
    );
    drop(clients);
    Ok(())
}

fn cancel_frame() -> Value {
    json!({"type": "cancel"})
}

/// What the hostile device achieved.
#[derive(Default)]
struct Attack {
    logins: u64,
    joins: u64,
    replaced: u64,
    refused: u64,
}

/// One socket of the hostile device: logs in, then loops join/cancel just under the frame rate
/// limit (9 cycles, 18 frames a second) until told to stop; when the server closes it (another of
/// the device's sockets replaced it), it logs in again at once.
async fn attacker(
    addr: SocketAddr,
    source: IpAddr,
    device: std::sync::Arc<Device>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Attack {
    use std::sync::atomic::Ordering;
    let mut a = Attack::default();
    let cycle = Duration::from_millis(1000 / 9);
    while !stop.load(Ordering::Relaxed) {
        let Ok((mut ws, _)) = ws::login(addr, Some(source), &device).await else {
            a.refused += 1;
            tokio::time::sleep(cycle).await;
            continue;
        };
        a.logins += 1;
        let mut tick = tokio::time::interval(cycle);
        'socket: while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            for frame in [join_frame("m"), cancel_frame()] {
                if ws::send(&mut ws, &frame).await.is_err() {
                    break 'socket;
                }
                match next_any(&mut ws).await {
                    Ok(v) if v["type"] == "queued" => a.joins += 1,
                    Ok(v) if v["type"] == "error" && v["code"] == "replaced" => {
                        a.replaced += 1;
                        break 'socket;
                    }
                    Ok(_) => {}
                    Err(_) => break 'socket,
                }
            }
        }
    }
    a
}

/// Join cost under a hostile queue: `honest` clients loop join→queued→cancel at `rate` joins a
/// second for `seconds`, beside `sockets` sockets of one device looping join/cancel. Everyone is
/// a woman who wants a man, so nobody matches: every join scans the queue and queues.
async fn hostile(
    o: &Opts,
    verifier: &TestVerifier,
    sockets: usize,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let server = start_server(o, verifier).await?;
    let sources = loopback_sources(0, 4);
    // Each honest socket joins twice a second at most.
    let n_honest = (rate as usize / 2).max(1);
    let honest = login_many(server.addr, verifier, n_honest, Gender::Female, &sources).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let device = Arc::new(verifier.device(Gender::Female));
    let attack_sources = loopback_sources(2, 16);
    let attackers: Vec<_> = (0..sockets)
        .map(|i| {
            tokio::spawn(attacker(
                server.addr,
                attack_sources[i % attack_sources.len()],
                device.clone(),
                stop.clone(),
            ))
        })
        .collect();
    // Let the attack settle before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.start_script_log()?;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let total = (rate * seconds) as usize;
    let start = tokio::time::Instant::now();
    let tasks: Vec<_> = honest
        .into_iter()
        .enumerate()
        .map(|(k, mut ws)| {
            tokio::spawn(async move {
                let mut lat = Vec::new();
                for i in (k..total).step_by(n_honest) {
                    tokio::time::sleep_until(start + interval * i as u32).await;
                    let t = Instant::now();
                    ws::send(&mut ws, &join_frame("m")).await?;
                    let q = next(&mut ws).await?;
                    if q["type"] != "queued" {
                        bail!("an honest join got {q}");
                    }
                    lat.push(t.elapsed());
                    ws::send(&mut ws, &cancel_frame()).await?;
                    next(&mut ws).await?;
                }
                Ok::<_, anyhow::Error>(lat)
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let achieved = lat.len() as f64 / start.elapsed().as_secs_f64();
    let costs = server.script_costs(&o.scripts)?;
    stop.store(true, Ordering::Relaxed);
    let mut attack = Attack::default();
    for a in attackers {
        let a = a.await?;
        attack.logins += a.logins;
        attack.joins += a.joins;
        attack.replaced += a.replaced;
        attack.refused += a.refused;
    }
    let evalsha = match costs {
        Some(costs) => costs
            .iter()
            .map(|c| {
                format!(
                    "{} {:.1} µs/call ({} calls)",
                    c.script,
                    c.micros as f64 / c.calls as f64,
                    c.calls
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        None => "no Redis".into(),
    };
    println!(
        "| hostile | {sockets} sockets of one device: {} logins, {} joins queued, {} replaced, {} refused; honest {rate}/s for {seconds} s ({achieved:.0}/s achieved) | join→queued p50 {:.2} ms, p99 {:.2} ms | {evalsha} |",
        attack.logins,
        attack.joins,
        attack.replaced,
        attack.refused,
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.99),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = opts()?;
    raise_fd_limit(300_000); // refused in sandboxes without CAP_SYS_RESOURCE: then the hard limit holds
    let verifier = TestVerifier::new();
    println!(
        "store: {}\n\n| run | load | result | detail |\n|---|---|---|---|",
        o.store
    );
    if let Some(sockets) = o.hostile {
        hostile(&o, &verifier, 0, o.rate, o.seconds).await?;
        return hostile(&o, &verifier, sockets, o.rate, o.seconds).await;
    }
    let run = |name: &str| o.only.as_deref().is_none_or(|only| only == name);
    if run("idle") {
        for &n in &o.idle {
            let server = start_server(&o, &verifier).await?;
            idle(&server, &verifier, n).await?;
        }
    }
    if run("throughput") {
        let server = start_server(&o, &verifier).await?;
        throughput(&server, &verifier, o.pairs).await?;
    }
    if run("paced") {
        let server = start_server(&o, &verifier).await?;
        paced(&server, &o, &verifier, o.rate, o.seconds).await?;
    }
    if o.only.as_deref() == Some("crowd") {
        let server = start_server(&o, &verifier).await?;
        crowd(&server, &verifier, o.rate, o.seconds).await?;
    }
    if o.only.as_deref() == Some("floor") {
        let server = start_server(&o, &verifier).await?;
        floor(&server, o.rate, o.seconds)?;
    }
    Ok(())
}

/// A crowded queue, as when one side far outnumbers the other: 1,000 men who want women wait;
/// then `rate` more men a second join (each scans the crowd's oldest `MATCH_SCAN`, none of whom
/// fits, and queues) and cancel at once. Join → `queued` latency, and Redis' time per join.
async fn crowd(
    server: &Server,
    verifier: &TestVerifier,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<()> {
    const CROWD: usize = 1000;
    let sources = loopback_sources(0, 4);
    let mut crowd = login_many(server.addr, verifier, CROWD, Gender::Male, &sources).await?;
    queue_all(&mut crowd, "f", &["queued"]).await?;
    let n = (rate * seconds) as usize;
    let joiners = login_many(server.addr, verifier, n, Gender::Male, &sources).await?;
    server.start_command_stats()?;
    let (mut lat, _keep) = pace(joiners, rate, |mut j| async move {
        let t = Instant::now();
        ws::send(&mut j, &join_frame("f")).await?;
        let q = next(&mut j).await?;
        let took = t.elapsed();
        if q["type"] != "queued" {
            bail!("{q}");
        }
        ws::send(&mut j, &serde_json::json!({"type": "cancel"})).await?;
        next(&mut j).await?; // cancelled
        Ok((took, j))
    })
    .await?;
    let stats = server.command_stats()?.unwrap_or_default();
    let (runs, usec) = stats
        .iter()
        .filter(|s| s.0 == "evalsha")
        .fold((0, 0), |(c, u), s| (c + s.1, u + s.2));
    println!(
        "| crowd | {CROWD} waiting who fit nobody joining; {rate} joins/s for {seconds} s | join→queued p50 {:.2} ms, p99 {:.2} ms | scripts {:.1} µs a join ({runs} runs), `INFO commandstats` |",
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.99),
        usec as f64 / n.max(1) as f64
    );
    drop(crowd);
    Ok(())
}

/// Redis' own floor at a rate: what a script run costs Redis when it does nothing, and when it
/// makes only as many calls as a matching join does (19 reads of missing keys), paced like the
/// paced run's joins, from `INFO commandstats`. At a low rate every run finds Redis' caches
/// cold, which is why a join costs Redis more per match at 50/s than at 3,000/s.
fn floor(server: &Server, rate: u64, seconds: u64) -> anyhow::Result<()> {
    const CALLS: usize = 19;
    let Some(sock) = &server.redis_sock else {
        bail!("--only floor needs Redis: --store redis");
    };
    let mut c = redis::Client::open(format!("unix://{}", sock.display()))?.get_connection()?;
    let reads = format!("for i = 1, {CALLS} do redis.call('GET', KEYS[1] .. i) end return 1");
    for (name, body) in [
        ("an empty script", "return 1"),
        ("19 reads", reads.as_str()),
    ] {
        let script = redis::Script::new(body);
        let _: i64 = script.key("{ac}:floor:").invoke(&mut c)?; // loads it
        server.start_command_stats()?;
        let n = rate * seconds;
        let interval = Duration::from_secs_f64(1.0 / rate as f64);
        let start = Instant::now();
        for i in 1..=n {
            let _: i64 = script.key("{ac}:floor:").invoke(&mut c)?;
            let due = start + interval.mul_f64(i as f64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        let stats = server.command_stats()?.unwrap_or_default();
        let (calls, usec) = stats
            .iter()
            .find(|s| s.0 == "evalsha")
            .map_or((0, 0), |s| (s.1, s.2));
        println!(
            "| floor | {rate}/s for {seconds} s | {name}: {:.1} µs a run | {calls} runs, `INFO commandstats` |",
            usec as f64 / calls.max(1) as f64
        );
    }
    Ok(())
}
