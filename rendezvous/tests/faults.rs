//! Faults survived with real processes: Redis killed (SIGKILL) and restarted, with and without
//! its data, under waiting users and an open chat; a rendezvous instance killed outright while
//! users wait on it. Each test is bounded in time; each measures its recovery and prints it.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anonchat_protocol::token::Gender;
use anonchat_rendezvous::store::StoreConfig;
use anonchat_testkit::ws;
use common::{CANDIDATE, Client, Process, RedisServer, TestVerifier};
use serde_json::{Value, json};

/// A nickname the profile rules accept, distinct per `i`.
fn nick(prefix: &str, i: usize) -> String {
    format!("{prefix}{}", (b'a' + i as u8) as char)
}

/// Frames until one of `kind` (within `within`); the frames of other kinds it passed.
async fn until(c: &mut Client, kind: &str, within: Duration) -> (Value, Vec<Value>) {
    let deadline = Instant::now() + within;
    let mut passed = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = ws::next(&mut c.ws, left)
            .await
            .unwrap_or_else(|e| panic!("no {kind} within {within:?} ({e}); got {passed:?}"))
            .unwrap_or_else(|| panic!("closed before {kind}; got {passed:?}"));
        if frame["type"] == kind {
            return (frame, passed);
        }
        passed.push(frame);
    }
}

/// The match ids of `matched` frames: each once, and only `queued` frames besides them.
fn match_ids(results: &[(Value, Vec<Value>)]) -> HashSet<String> {
    for (_, passed) in results {
        assert!(
            passed.iter().all(|f| f["type"] == "queued"),
            "only queued before the match: {passed:?}"
        );
    }
    let ids: HashSet<String> = results
        .iter()
        .map(|(m, _)| m["match_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), results.len(), "nobody shares a match id");
    ids
}

/// `/v1/stats` of `addr` until it says `online` and `waiting` (5 s at most).
async fn stats_become(addr: SocketAddr, online: u64, waiting: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = common::get_json(addr, "/v1/stats").await;
        if stats["online"] == online && stats["waiting"] == waiting {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "stats {stats}, expected online {online} waiting {waiting}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Redis dies (SIGKILL) while ten men wait for a woman on two instances, two women are in a
/// chat, and 200 other users join, chat and leave in a loop; it comes back, with or without its
/// data.
async fn redis_killed_and_restarted(persistent: bool) {
    // The services' log, shown when the test fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_test_writer()
        .try_init();
    let mut redis = if persistent {
        RedisServer::start_persistent()
    } else {
        RedisServer::start()
    };
    let v = TestVerifier::new();
    // The churning users match hundreds of times a day.
    let config = StoreConfig {
        daily_match_limit: 1_000_000,
        ..StoreConfig::default()
    };
    let store = || common::redis(&redis, config.clone());
    let one = common::start(store().await, &v, |_| {}).await;
    let two = common::start(store().await, &v, |_| {}).await;
    let at = [one.addr, two.addr];
    let churn = common::Churn::start(&at, &v, CHURN).await;
    // A chat across the instances, its signaling still going on.
    let mut anna = common::login(one.addr, &v.device(Gender::Female)).await;
    let mut beth = common::login(two.addr, &v.device(Gender::Female)).await;
    anna.join("anna", "f").await;
    anna.expect("queued").await;
    beth.join("beth", "f").await;
    let chat = beth.expect("matched").await["match_id"].clone();
    anna.expect("matched").await;
    let mut men = Vec::new();
    for i in 0..10 {
        let mut c = common::login(at[i % 2], &v.device(Gender::Male)).await;
        c.join(&nick("man", i), "f").await;
        c.expect("queued").await;
        men.push(c);
    }
    let mut late = common::login(one.addr, &v.device(Gender::Male)).await;

    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed_at = churn.elapsed();
    redis.kill();
    // A join during the outage: refused at once, clearly, with when to try again.
    let asked = Instant::now();
    late.join("latecomer", "f").await;
    let refusal = late.expect_error("unavailable").await;
    assert!(refusal["retry_after"].as_u64().is_some(), "{refusal}");
    let refused_in = asked.elapsed();
    assert!(refused_in < Duration::from_secs(5), "{refused_in:?}");
    // A login too (the client connects again after retry_after).
    let (mut ws, nonce) = ws::connect(two.addr, None).await.unwrap();
    match ws::hello(&mut ws, &v.device(Gender::Male), &nonce).await {
        Err(ws::WsError::Unexpected { got, .. }) => assert_eq!(got["code"], "unavailable"),
        other => panic!("{other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    redis.restart();
    let back = Instant::now();
    let back_at = churn.elapsed();
    // Ten women join: every man who waited at the kill is matched, each once.
    let mut women = Vec::new();
    for i in 0..10 {
        let mut c = common::login(at[i % 2], &v.device(Gender::Female)).await;
        c.join(&nick("woman", i), "m").await;
        women.push(c);
    }
    let within = Duration::from_secs(10);
    let mut men_matched = Vec::new();
    for c in &mut men {
        men_matched.push(until(c, "matched", within).await);
    }
    let all_matched_in = back.elapsed();
    let mut women_matched = Vec::new();
    for c in &mut women {
        women_matched.push(until(c, "matched", within).await);
    }
    assert_eq!(
        match_ids(&men_matched),
        match_ids(&women_matched),
        "the men and the women matched each other"
    );
    println!(
        "redis restart (persistent: {persistent}): join refused in {refused_in:?}; every waiting user matched {all_matched_in:?} after redis was back"
    );
    assert!(
        all_matched_in < Duration::from_secs(5),
        "waiting users matched again within 5 s, took {all_matched_in:?}"
    );
    // Nobody is matched twice.
    for c in men.iter_mut().chain(women.iter_mut()) {
        c.quiet(200).await;
    }
    // The chat's signaling crosses the instances again (it may take a moment to resubscribe).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        anna.send(json!({"type": "signal", "match_id": chat, "data": {"kind": "candidate", "candidate": CANDIDATE}}))
            .await;
        match ws::next(&mut beth.ws, Duration::from_millis(200)).await {
            Ok(Some(f)) if f["type"] == "signal" => break,
            Ok(Some(f)) => panic!("{f}"),
            _ => assert!(
                Instant::now() < deadline,
                "no signal crosses after the restart"
            ),
        }
    }
    // The churn: every match two-sided, nobody matched twice; matching again soon after.
    churn.matching_after(back_at, Duration::from_secs(10)).await;
    // A hand-over in flight when Redis died: its accept timeout (3 s) before the kill.
    let logs = churn
        .stop(killed_at.saturating_sub(Duration::from_secs(3))..back_at + Duration::from_secs(1))
        .await;
    let times = common::match_times(&logs);
    let before = times.iter().filter(|t| **t < killed_at).count();
    let first_after = times.iter().filter(|t| **t > back_at).min().copied();
    let refused: usize = logs.iter().map(|l| l.refused).sum();
    println!(
        "churn of {CHURN}: {before} match sides before the kill, {refused} joins refused during the outage, first match {:?} after redis was back, {} sides in all",
        first_after.map(|t| t - back_at),
        times.len()
    );
    assert!(
        before > CHURN,
        "the churn was matching before the kill ({before})"
    );
    let first_after = first_after.expect("the churn matched again after the restart");
    assert!(first_after - back_at < Duration::from_secs(5));
    // The latecomer, told to try again, does; and the counts are true again (the churning
    // users gone: no session leaked).
    late.join("latecomer", "f").await;
    late.expect("queued").await;
    stats_become(one.addr, 23, 1).await;
}

/// Users joining, chatting and leaving in a loop while a fault happens.
const CHURN: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_without_its_data() {
    redis_killed_and_restarted(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_with_its_data() {
    redis_killed_and_restarted(true).await;
}

/// An instance killed outright (SIGKILL) while ten men wait on it: within its heartbeat's TTL
/// (10 s, still running in Redis), ten women joining on the other instance are never matched
/// with its tickets, while 200 other users join, chat and leave there in a loop; the men
/// connect again (to the other instance, as a balancer would send them) and are matched at
/// once; the counts come back to the truth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instances_tickets_never_match_anyone() {
    let redis = RedisServer::start();
    let v = TestVerifier::new();
    let dir = std::env::temp_dir().join(format!("anonchat-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut doomed = Process::start(&redis, &v, &dir);
    let config = StoreConfig {
        daily_match_limit: 1_000_000,
        ..StoreConfig::default()
    };
    let alive = common::start(common::redis(&redis, config).await, &v, |_| {}).await;
    let devices: Vec<_> = (0..10).map(|_| v.device(Gender::Male)).collect();
    let mut men = Vec::new();
    for (i, d) in devices.iter().enumerate() {
        let (mut c, _) = Client::login(doomed.addr, d).await;
        c.join(&nick("man", i), "f").await;
        c.expect("queued").await;
        men.push(c);
    }
    stats_become(alive.addr, 10, 10).await;

    doomed.kill();
    let killed = Instant::now();
    let churn = common::Churn::start(&[alive.addr], &v, CHURN).await;
    let mut women = Vec::new();
    for i in 0..10 {
        let (mut c, _) = Client::login(alive.addr, &v.device(Gender::Female)).await;
        c.join(&nick("woman", i), "m").await;
        c.expect("queued").await;
        women.push(c);
    }
    for c in &mut women {
        c.quiet(100).await;
    }
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "all of it within the dead instance's heartbeat TTL"
    );
    let logs = churn.stop(Duration::ZERO..Duration::ZERO).await;
    let sides: usize = logs.iter().map(|l| l.matches.len()).sum();
    println!("churn of {CHURN} beside the dead instance's tickets: {sides} match sides");
    assert!(sides > CHURN, "the churn was matching ({sides})");
    stats_become(alive.addr, 10, 10).await;
    // Its clients see the socket close and connect again: each is matched at once.
    for c in &mut men {
        assert!(ws::next(&mut c.ws, ws::WAIT).await.unwrap().is_none());
    }
    let mut again = Vec::new();
    for (i, d) in devices.iter().enumerate() {
        let (mut c, _) = Client::login(alive.addr, d).await;
        c.join(&nick("man", i), "f").await;
        again.push(until(&mut c, "matched", ws::WAIT).await);
        men[i] = c;
    }
    let all_matched_in = killed.elapsed();
    let mut women_matched = Vec::new();
    for c in &mut women {
        women_matched.push(until(c, "matched", ws::WAIT).await);
    }
    assert_eq!(match_ids(&again), match_ids(&women_matched));
    println!(
        "instance killed: all its waiting users matched again {all_matched_in:?} after the kill"
    );
    stats_become(alive.addr, 20, 0).await;
    std::fs::remove_dir_all(dir).ok();
}

/// `/readyz` of `addr`: its status.
async fn readyz(addr: SocketAddr) -> u16 {
    reqwest::get(format!("http://{addr}/readyz"))
        .await
        .map_or(0, |r| r.status().as_u16())
}

/// The services start in any order: a rendezvous whose Redis is not up yet starts anyway,
/// unready, refusing logins as `unavailable`; once Redis is up it is ready and matches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rendezvous_started_before_its_redis_waits_for_it() {
    let mut redis = RedisServer::start();
    redis.kill();
    let v = TestVerifier::new();
    let dir = std::env::temp_dir().join(format!("anonchat-faults-order-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rendezvous = Process::start(&redis, &v, &dir);
    assert_eq!(readyz(rendezvous.addr).await, 503);
    let (mut ws, nonce) = ws::connect(rendezvous.addr, None).await.unwrap();
    match ws::hello(&mut ws, &v.device(Gender::Male), &nonce).await {
        Err(ws::WsError::Unexpected { got, .. }) => {
            assert_eq!(got["code"], "unavailable", "{got}");
            assert!(got["retry_after"].as_u64().is_some(), "{got}");
        }
        other => panic!("{other:?}"),
    }

    redis.restart();
    let up = Instant::now();
    while readyz(rendezvous.addr).await != 200 {
        assert!(up.elapsed() < Duration::from_secs(15), "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "rendezvous started before redis: ready {:?} after redis was up",
        up.elapsed()
    );
    let (mut a, _) = Client::login(rendezvous.addr, &v.device(Gender::Female)).await;
    let (mut b, _) = Client::login(rendezvous.addr, &v.device(Gender::Male)).await;
    common::meet_and_signal(&mut a, &mut b).await;
    std::fs::remove_dir_all(dir).ok();
}

/// A `redis-server` inside namespace `ns`, on TCP port [`NS_REDIS_PORT`] of 127.0.0.1 and
/// 127.0.0.2 (one instance is cut off through the first, the other uses the second), killed
/// when dropped.
struct NsRedis(std::process::Child);

const NS_REDIS_PORT: u16 = 6390;

impl NsRedis {
    fn start(ns: &str) -> NsRedis {
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", ns, "redis-server", "--port"])
            .arg(NS_REDIS_PORT.to_string())
            .args([
                "--bind",
                "127.0.0.1",
                "127.0.0.2",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run installs it)");
        NsRedis(child)
    }
}

impl Drop for NsRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One instance loses Redis (its packets dropped by nftables inside a namespace this test made:
/// no reset, the connection just goes silent) while another keeps it: the cut-off instance turns
/// unready and refuses joins instead of matching wrongly; nobody on the other instance is told of
/// a match with its waiting user, while 200 other users join, chat and leave there in a loop;
/// when the partition heals it is ready again and its waiting user is matched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_cut_off_from_redis_matches_nobody_until_it_heals() {
    use anonchat_testkit::netns::{Namespace, nft};
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_test_writer()
        .try_init();
    let mut ns = Namespace::new("anonchat-part-");
    let runtime = ns.runtime();
    let _redis = NsRedis::start(&ns.name);
    let name = ns.name.clone();
    let lab = runtime.spawn(async move {
        let url = |host: &str| format!("redis://{host}:{NS_REDIS_PORT}");
        let t0 = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.2", NS_REDIS_PORT))
            .await
            .is_err()
        {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let store = |host| {
            let url = url(host);
            async move {
                let config = StoreConfig {
                    daily_match_limit: 1_000_000,
                    ..StoreConfig::default()
                };
                anonchat_rendezvous::store::redis::RedisStore::connect(&url, config)
                    .await
                    .unwrap()
            }
        };
        let v = TestVerifier::new();
        let cut = common::start(store("127.0.0.1").await, &v, |_| {}).await;
        let other = common::start(store("127.0.0.2").await, &v, |_| {}).await;
        let (mut adam, _) = Client::login(cut.addr, &v.device(Gender::Male)).await;
        adam.join("adam", "f").await;
        adam.expect("queued").await;
        let (mut abel, _) = Client::login(cut.addr, &v.device(Gender::Male)).await;
        let churn = common::Churn::start(&[other.addr], &v, CHURN).await;

        // Packets to and from Redis's first address are dropped: only `cut` uses it.
        let port = NS_REDIS_PORT;
        nft(
            &name,
            &format!(
                "table inet partition {{\n chain out {{\n  type filter hook output priority 0;\n  \
                 ip daddr 127.0.0.1 tcp dport {port} drop\n  \
                 ip saddr 127.0.0.1 tcp sport {port} drop\n }}\n}}\n"
            ),
        );
        let partitioned = Instant::now();
        while readyz(cut.addr).await != 503 {
            assert!(
                partitioned.elapsed() < Duration::from_secs(20),
                "still ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let unready_in = partitioned.elapsed();
        assert_eq!(readyz(other.addr).await, 200, "the other instance is fine");
        // A join on the cut-off instance is refused, within seconds.
        let asked = Instant::now();
        abel.join("abel", "f").await;
        let (refusal, _) = until(&mut abel, "error", Duration::from_secs(20)).await;
        assert_eq!(refusal["code"], "unavailable", "{refusal}");
        let refused_in = asked.elapsed();
        // A woman on the other instance: Adam's ticket is still in Redis, but she is never told
        // of a match with him (his instance never accepts it): she is queued.
        let (mut eve, _) = Client::login(other.addr, &v.device(Gender::Female)).await;
        eve.join("eve", "m").await;
        let (_, before) = until(&mut eve, "queued", Duration::from_secs(10)).await;
        assert!(before.is_empty(), "{before:?}");
        eve.quiet(500).await;

        // Healed: the instance is ready again, and Adam, who waited all along, meets Eve.
        nft(&name, "delete table inet partition");
        let healed = Instant::now();
        while readyz(cut.addr).await != 200 {
            assert!(
                healed.elapsed() < Duration::from_secs(30),
                "never ready again"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ready_in = healed.elapsed();
        let (adam_matched, passed) = until(&mut adam, "matched", Duration::from_secs(20)).await;
        assert!(passed.is_empty(), "{passed:?}");
        let (eve_matched, _) = until(&mut eve, "matched", Duration::from_secs(5)).await;
        assert_eq!(adam_matched["match_id"], eve_matched["match_id"]);
        let matched_in = healed.elapsed();
        adam.quiet(500).await;
        let logs = churn.stop(Duration::ZERO..Duration::ZERO).await;
        let sides: usize = logs.iter().map(|l| l.matches.len()).sum();
        println!("churn of {CHURN} on the other instance: {sides} match sides");
        assert!(sides > CHURN, "the churn was matching ({sides})");
        println!(
            "partition: unready {unready_in:?} after the cut, a join refused in {refused_in:?}; \
             ready {ready_in:?} after healing, its waiting user matched {matched_in:?} after"
        );
    });
    lab.await.unwrap();
}

/// A process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis_server(args: &[&str]) -> Child {
    Child(
        std::process::Command::new("redis-server")
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run installs it)"),
    )
}

/// The Sentinel test's passwords: the Redis servers' (`requirepass`, `masterauth`) and the
/// sentinels' own.
const SERVERS: &str = "servers-secret";
const SENTINELS: &str = "sentinels-secret";

/// `redis-cli -p PORT ARGS…`'s output, empty when it cannot connect; `auth`, the server's
/// password.
fn cli(port: u16, auth: &str, args: &[&str]) -> String {
    std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .env("REDISCLI_AUTH", auth)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Polls `ok` every 100 ms for `within`; panics with `what` if it never holds.
async fn eventually(what: &str, within: Duration, ok: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < within, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Redis Sentinel: a primary, a replica and three sentinels (quorum two), the servers and the
/// sentinels each with a password, as a deployment has them. The primary is killed (SIGKILL)
/// while a user waits; the sentinels promote the replica, the rendezvous (configured with
/// `REDIS_SENTINELS` and the passwords, never told an address) moves to it, and the waiting user
/// is matched with the next joiner; 200 other users join, chat and leave in a loop throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_keeps_the_queue_working() {
    let dir = std::env::temp_dir().join(format!("anonchat-sentinel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (primary_port, replica_port) = (common::free_port(), common::free_port());
    // Replication writes a snapshot to disk: in the test's directory, never the working tree.
    let base = |port: u16| {
        vec![
            "--dir".to_owned(),
            dir.display().to_string(),
            "--dbfilename".into(),
            format!("{port}.rdb"),
            "--port".to_owned(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
            "--requirepass".into(),
            SERVERS.into(),
            "--masterauth".into(),
            SERVERS.into(),
        ]
    };
    let primary_args = base(primary_port);
    let mut primary = redis_server(&primary_args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut replica_args = base(replica_port);
    replica_args.extend([
        "--replicaof".into(),
        "127.0.0.1".into(),
        primary_port.to_string(),
    ]);
    let _replica = redis_server(&replica_args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut sentinels = Vec::new();
    let mut ports = Vec::new();
    for i in 0..3 {
        let port = common::free_port();
        let conf = dir.join(format!("sentinel{i}.conf"));
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor m 127.0.0.1 {primary_port} 2\n\
                 sentinel down-after-milliseconds m 1000\nsentinel failover-timeout m 5000\n\
                 sentinel auth-pass m {SERVERS}\nrequirepass {SENTINELS}\nsentinel sentinel-pass {SENTINELS}\n",
                dir.display()
            ),
        )
        .unwrap();
        sentinels.push(redis_server(&[conf.to_str().unwrap(), "--sentinel"]));
        ports.push(port);
    }
    let replication = || cli(replica_port, SERVERS, &["info", "replication"]);
    eventually("the replica in sync", Duration::from_secs(20), || {
        replication().contains("master_link_status:up")
    })
    .await;
    eventually(
        "the sentinels know the replica and each other",
        Duration::from_secs(30),
        || {
            ports.iter().all(|&p| {
                cli(p, SENTINELS, &["sentinel", "replicas", "m"])
                    .contains(&replica_port.to_string())
                    && cli(p, SENTINELS, &["sentinel", "sentinels", "m"])
                        .matches("runid")
                        .count()
                        == 2
            })
        },
    )
    .await;

    let v = TestVerifier::new();
    let mut config = common::config();
    config.redis_sentinels = ports
        .iter()
        .map(|p| format!("redis://:{SENTINELS}@127.0.0.1:{p}"))
        .collect();
    config.redis_sentinel_master = Some("m".into());
    config.redis_sentinel_master_password = Some(SERVERS.into());
    // The churning users match many times.
    config.daily_match_limit = 1_000_000;
    let rendezvous = anonchat_rendezvous::server::start_from_config(
        config,
        anonchat_rendezvous::server::Keys::Fixed(v.keys()),
        std::future::pending(),
    )
    .await
    .unwrap();
    let (mut adam, _) = Client::login(rendezvous.addr, &v.device(Gender::Male)).await;
    adam.join("adam", "f").await;
    adam.expect("queued").await;
    // Replicated before the primary dies (asynchronous replication: a write in its last
    // moment can be lost, which is why waiting sessions join again after a failover).
    eventually("the ticket replicated", Duration::from_secs(5), || {
        cli(replica_port, SERVERS, &["zcard", "{ac}:queue"]).trim() == "1"
    })
    .await;

    let churn = common::Churn::start(&[rendezvous.addr], &v, CHURN).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let _ = primary.0.kill();
    let _ = primary.0.wait();
    let killed = Instant::now();
    let killed_at = churn.elapsed();
    eventually("the replica promoted", Duration::from_secs(30), || {
        replication().contains("role:master")
    })
    .await;
    let promoted_in = killed.elapsed();
    // Eve joins (again, while the rendezvous is still moving to the new primary).
    let eve_device = v.device(Gender::Female);
    let (eve_matched, matched_in) = loop {
        assert!(
            killed.elapsed() < Duration::from_secs(40),
            "no match after the failover"
        );
        let Ok((mut ws, _)) = ws::login(rendezvous.addr, None, &eve_device).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        ws::send(&mut ws, &ws::join_frame("eve", "m"))
            .await
            .unwrap();
        let mut eve = Client {
            ws,
            session: String::new(),
        };
        let mut matched = None;
        while let Ok(Some(frame)) = ws::next(&mut eve.ws, Duration::from_secs(3)).await {
            match frame["type"].as_str() {
                Some("matched") => {
                    matched = Some(frame);
                    break;
                }
                Some("queued") => continue,
                _ => break, // unavailable: connect and join again
            }
        }
        if let Some(m) = matched {
            break (m, killed.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (adam_matched, _) = until(&mut adam, "matched", Duration::from_secs(10)).await;
    assert_eq!(adam_matched["match_id"], eve_matched["match_id"]);
    println!(
        "sentinel failover: replica promoted {promoted_in:?} after the primary was killed; first match {matched_in:?} after"
    );
    // The churn matches again after the failover (its users, refused meanwhile, try again
    // after the `retry_after` they were told); the fault lasts until then. Every match checked.
    let promoted_at = killed_at + promoted_in;
    let recovered_at = churn
        .matching_after(promoted_at, Duration::from_secs(30))
        .await;
    let logs = churn
        .stop(killed_at.saturating_sub(Duration::from_secs(3))..recovered_at)
        .await;
    let times = common::match_times(&logs);
    let before = times.iter().filter(|t| **t < killed_at).count();
    let first_after = times
        .iter()
        .filter(|t| **t > promoted_at)
        .min()
        .map(|t| *t - killed_at);
    let after = times.iter().filter(|t| **t > promoted_at).count();
    let refused: usize = logs.iter().map(|l| l.refused).sum();
    println!(
        "churn of {CHURN} during the failover: {before} match sides before the kill, {refused} joins refused, first match {first_after:?} after the kill, {} sides in all",
        times.len()
    );
    assert!(
        before > CHURN / 2,
        "the churn was matching before the kill ({before})"
    );
    assert!(after > 0, "the churn matched again after the failover");
    drop(sentinels);
    std::fs::remove_dir_all(dir).ok();
}
