//! Two rendezvous instances on one real `redis-server`, behind a real HAProxy started from
//! `deploy/haproxy/anonchat.cfg` (only its addresses changed to this test's): clients reach
//! both through one address, and a match and its signaling cross from one instance to the other;
//! with the balancer trusted (`TRUSTED_PROXIES`), per-address limits count the clients' own
//! addresses, not the balancer's; an instance stopped (a rolling restart) or killed outright
//! behind it loses no chat and no waiting user.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anonchat_protocol::token::Gender;
use anonchat_rendezvous::store::StoreConfig;
use common::{Client, RedisServer, TestVerifier};

/// HAProxy with the deployment's configuration, killed when dropped.
struct Balancer {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The committed configuration with its listening address and its two servers replaced.
fn configuration(front: SocketAddr, one: SocketAddr, two: SocketAddr) -> String {
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/haproxy/anonchat.cfg"),
    )
    .unwrap();
    let mut replaced = 0;
    let text: Vec<String> = committed
        .lines()
        .map(|line| {
            let indent = &line[..line.len() - line.trim_start().len()];
            let words: Vec<&str> = line.split_whitespace().collect();
            let swap = |addr: SocketAddr, from: usize| {
                let mut w: Vec<String> = words.iter().map(|s| s.to_string()).collect();
                w[from] = addr.to_string();
                format!("{indent}{}", w.join(" "))
            };
            match words.as_slice() {
                ["bind", ..] => {
                    replaced += 1;
                    swap(front, 1)
                }
                ["server", "one", ..] => {
                    replaced += 1;
                    swap(one, 2)
                }
                ["server", "two", ..] => {
                    replaced += 1;
                    swap(two, 2)
                }
                _ => line.to_owned(),
            }
        })
        .collect();
    assert_eq!(
        replaced, 3,
        "the configuration has one bind and servers one and two"
    );
    text.join("\n") + "\n"
}

fn start_balancer(front: SocketAddr, one: SocketAddr, two: SocketAddr) -> Balancer {
    // One directory per balancer: the tests of this file run at the same time.
    let dir = std::env::temp_dir().join(format!(
        "anonchat-haproxy-{}-{}",
        std::process::id(),
        front.port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("anonchat.cfg");
    std::fs::write(&cfg, configuration(front, one, two)).unwrap();
    let check = Command::new("haproxy")
        .args(["-c", "-f"])
        .arg(&cfg)
        .output()
        .expect("haproxy (Debian's haproxy; .ci/run installs it)");
    assert!(check.status.success(), "{check:?}");
    let child = Command::new("haproxy")
        .args(["-db", "-f"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Balancer { child, dir }
}

/// Waits until the balancer answers and has seen both instances ready (its checks run every
/// second).
async fn balancer_up(front: SocketAddr) {
    let t0 = Instant::now();
    loop {
        let ok = reqwest::get(format!("http://{front}/readyz"))
            .await
            .is_ok_and(|r| r.status() == 200);
        if ok && t0.elapsed() > Duration::from_millis(1500) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "HAProxy never came up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// This instance's authenticated sockets, from its own metrics.
async fn sockets(addr: SocketAddr) -> u64 {
    let metrics = common::get_text(addr, "/metrics").await;
    metrics
        .lines()
        .find(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|n| n.ends_with("connections"))
        })
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no connections gauge in {metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_behind_haproxy_meet_across_two_instances() {
    let redis = RedisServer::start();
    let v = TestVerifier::new();
    // One login a minute per address, and the balancer (HAProxy connects from 127.0.0.1)
    // trusted to say whose each connection is.
    let behind = |c: &mut anonchat_rendezvous::config::Config| {
        c.rate_limit_per_minute = 1;
        c.http.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    };
    let one = common::start(
        common::redis(&redis, StoreConfig::default()).await,
        &v,
        behind,
    )
    .await;
    let two = common::start(
        common::redis(&redis, StoreConfig::default()).await,
        &v,
        behind,
    )
    .await;
    let front: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let _balancer = start_balancer(front, one.addr, two.addr);
    balancer_up(front).await;

    // Round robin: two logins through one address land on the two instances. They come from
    // two addresses, so one a minute each lets both in.
    let (alice_ip, bob_ip) = ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
    let (mut a, _) = Client::login_from(front, Some(alice_ip), &v.device(Gender::Female)).await;
    let (mut b, _) = Client::login_from(front, Some(bob_ip), &v.device(Gender::Male)).await;
    assert_eq!(
        (sockets(one.addr).await, sockets(two.addr).await),
        (1, 1),
        "one client on each instance"
    );
    common::meet_and_signal(&mut a, &mut b).await;
    // Two more clients from two more addresses: each instance now has two clients from
    // different addresses, which only the trusted X-Forwarded-For tells apart (the balancer
    // connects from 127.0.0.1 for all of them; untrusted, the second on each would get 429).
    let mut more = Vec::new();
    for source in ["127.0.0.4", "127.0.0.5"] {
        let source = Some(source.parse().unwrap());
        more.push(Client::login_from(front, source, &v.device(Gender::Male)).await);
    }
    assert_eq!((sockets(one.addr).await, sockets(two.addr).await), (2, 2));
    // Alice's address twice more: wherever they land, one instance has seen it already.
    let mut refused = 0;
    for _ in 0..2 {
        match anonchat_testkit::ws::connect(front, Some(alice_ip)).await {
            Err(e) if e.to_string().contains("429") => refused += 1,
            Err(e) => panic!("{e}"),
            Ok(_) => {}
        }
    }
    assert!(
        refused >= 1,
        "the per-address limit counts the client's address"
    );
    // The page comes through the balancer too.
    assert!(common::get_text(front, "/").await.contains("AnonChat"));
    drop(b);
    a.expect("partner_left").await;
}

/// A rolling restart: one instance stops gracefully (what SIGTERM does) while a chat crosses to
/// the other instance and a user waits on it. The chat's partner is not told it ended (the chat
/// goes on peer to peer); the waiting user, told `shutting_down` with `retry_after`, connects
/// again through the balancer after the protocol's first backoff, lands on the other instance,
/// and is queued and matched there; the stopped instance comes back into the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_loses_no_chat_and_no_waiting_user() {
    use anonchat_protocol::rendezvous::reconnect_delay_ms;
    let redis = RedisServer::start();
    let v = TestVerifier::new();
    let store = || common::redis(&redis, StoreConfig::default());
    let one = common::start(store().await, &v, |_| {}).await;
    let two = common::start(store().await, &v, |_| {}).await;
    let (one_addr, two_addr) = (one.addr, two.addr);
    let front: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let _balancer = start_balancer(front, one_addr, two_addr);
    balancer_up(front).await;
    let (mut a, _) = Client::login(one_addr, &v.device(Gender::Female)).await;
    let (mut b, _) = Client::login(two_addr, &v.device(Gender::Male)).await;
    common::meet_and_signal(&mut a, &mut b).await;
    let walt = v.device(Gender::Male);
    let (mut w, _) = Client::login(one_addr, &walt).await;
    w.join("walt", "f").await;
    w.expect("queued").await;

    let stopped = Instant::now();
    let stopping = tokio::spawn(one.shutdown());
    let bye = w.expect_error("shutting_down").await;
    let retry_after = bye["retry_after"].as_u64().expect("a retry_after");
    a.expect_error("shutting_down").await;
    // As a client does: connect again after the first backoff, through the one address.
    let backoff = Duration::from_millis(reconnect_delay_ms(0, rand::random()));
    tokio::time::sleep(backoff.saturating_sub(stopped.elapsed())).await;
    let (mut w, _) = Client::login(front, &walt).await;
    w.join("walt", "f").await;
    w.expect("queued").await;
    let waited = stopped.elapsed();
    let (mut eve, _) = Client::login(front, &v.device(Gender::Female)).await;
    eve.join("eve", "m").await;
    let me = eve.expect("matched").await;
    assert_eq!(w.expect("matched").await["match_id"], me["match_id"]);
    b.quiet(1000).await; // no partner_left: the chat is not over
    stopping.await.unwrap().unwrap();
    println!(
        "rolling restart: the waiting user queued again {waited:?} after the stop began (told retry_after {retry_after} s, first backoff {backoff:?})"
    );
    assert!(
        waited < Duration::from_secs(retry_after.max(1)) + Duration::from_secs(1),
        "waited {waited:?}"
    );

    // The instance comes back on its address and into the pool.
    let back = common::start(store().await, &v, |c| c.addr = one_addr).await;
    assert_eq!(back.addr, one_addr);
    balancer_up(front).await;
    let mut on = std::collections::HashSet::new();
    for _ in 0..4 {
        let (c, _) = Client::login(front, &v.device(Gender::Male)).await;
        on.insert((sockets(one_addr).await, sockets(two_addr).await));
        drop(c);
    }
    assert!(
        on.iter().any(|&(one, _)| one > 0),
        "the restarted instance takes clients again: {on:?}"
    );
    b.quiet(200).await;
}

/// An instance killed outright (SIGKILL: the `anonchat-rendezvous` binary) behind HAProxy while
/// a chat crosses it and ten men wait on it. The chat's partner on the other instance is not
/// told it ended (it goes on peer to peer); each man's socket closes, and he connects again
/// through the balancer after the protocol's first backoff, lands on the other instance and is
/// queued; the dead instance's tickets, still in Redis, are never matched: ten women joining
/// through the balancer meet the men's new sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_behind_haproxy_loses_no_chat_and_no_waiting_user() {
    use anonchat_protocol::rendezvous::reconnect_delay_ms;
    use anonchat_testkit::ws;
    let redis = RedisServer::start();
    let v = TestVerifier::new();
    let dir = std::env::temp_dir().join(format!("anonchat-balancer-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut doomed = common::Process::start(&redis, &v, &dir);
    let alive = common::start(
        common::redis(&redis, StoreConfig::default()).await,
        &v,
        |_| {},
    )
    .await;
    let front: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let _balancer = start_balancer(front, doomed.addr, alive.addr);
    balancer_up(front).await;
    // A chat across the two instances, and ten men waiting on the one that dies.
    let (mut anna, _) = Client::login(doomed.addr, &v.device(Gender::Female)).await;
    let (mut beth, _) = Client::login(alive.addr, &v.device(Gender::Female)).await;
    anna.join("anna", "f").await;
    anna.expect("queued").await;
    beth.join("beth", "f").await;
    beth.expect("matched").await;
    anna.expect("matched").await;
    let devices: Vec<_> = (0..10).map(|_| v.device(Gender::Male)).collect();
    let mut men = Vec::new();
    for d in &devices {
        let (mut c, _) = Client::login(doomed.addr, d).await;
        c.join("man", "f").await;
        c.expect("queued").await;
        men.push(c);
    }

    doomed.kill();
    let killed = Instant::now();
    for c in &mut men {
        assert!(ws::next(&mut c.ws, ws::WAIT).await.unwrap().is_none());
    }
    // As a client does: connect again after the first backoff, through the one address (the
    // balancer retries a refused connection on the other server, and soon takes the dead one
    // out of the pool).
    let backoff = Duration::from_millis(reconnect_delay_ms(0, rand::random()));
    tokio::time::sleep(backoff.saturating_sub(killed.elapsed())).await;
    for (c, d) in men.iter_mut().zip(&devices) {
        let (mut again, _) = Client::login(front, d).await;
        again.join("man", "f").await;
        again.expect("queued").await;
        *c = again;
    }
    let requeued = killed.elapsed();
    // Beth and the ten men, all on the instance that lives.
    assert_eq!(sockets(alive.addr).await, 11);
    for c in &mut men {
        c.quiet(50).await;
    }
    let mut women = Vec::new();
    for _ in 0..10 {
        let (mut c, _) = Client::login(front, &v.device(Gender::Female)).await;
        c.join("woman", "m").await;
        women.push(c.expect("matched").await["match_id"].clone());
    }
    let mut men_matched = std::collections::HashSet::new();
    for c in &mut men {
        men_matched.insert(c.expect("matched").await["match_id"].to_string());
    }
    let women_matched: std::collections::HashSet<String> =
        women.iter().map(|m| m.to_string()).collect();
    assert_eq!(
        men_matched, women_matched,
        "the women met the men's new sessions"
    );
    beth.quiet(500).await; // no partner_left: the chat is not over
    println!(
        "instance killed behind HAProxy: its ten waiting users queued again through the balancer {requeued:?} after the kill (first backoff {backoff:?})"
    );
    std::fs::remove_dir_all(dir).ok();
}
