//! The Redis store: several rendezvous instances share one Redis.
//!
//! Every key is named in [`super::keys`], under one hash tag, so every script runs on one Redis
//! Cluster slot. The queue is a sorted set ordered by a strict arrival sequence; each ticket is a
//! hash of the fields a join's scan reads. A join is one Lua script, one round trip
//! (`lua/join.lua`): it scans the oldest waiting tickets with the matcher's rules, mirrored in
//! `lua/rules.lua` (held to [`crate::matcher`] by `lua_mirror.rs`), and either takes the
//! partner out of the queue or enqueues. Each instance keeps a heartbeat key alive; a ticket
//! whose instance is not alive (its heartbeat gone, or nobody listening on its channel: killed) is
//! a ghost, never matched, and cleaned when seen.
//! Instances reach each other through one pub/sub channel each: a sharded channel (`SPUBLISH`,
//! `SSUBSCRIBE`, in the keys' slot) on a Redis Cluster, where a plain channel's listeners are
//! counted only on the node one is connected to.

use std::time::Duration;

use anonchat_serve::redis::{LazyRedis, Server, Target};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::keys;
use super::*;
use crate::matcher;

const TICKET_TTL_SECONDS: u64 = 86_400;

/// How long a start waits for Redis before it goes on without it.
const START_WAIT: Duration = Duration::from_secs(1);

/// A script as Redis runs it: `prelude.lua` (named arguments), then the files given.
macro_rules! script {
    ($($file:literal),+) => {
        Arc::new(::redis::Script::new(concat!(
            include_str!("lua/prelude.lua"),
            $(include_str!(concat!("lua/", $file))),+
        )))
    };
}

/// An invocation of `script` with every key name (see [`keys::script_args`]), whether channels
/// are sharded, and `named`, as name/value pairs. The queue is its one declared key, for
/// Cluster routing.
fn invoke<'a>(
    script: &'a ::redis::Script,
    sharded: bool,
    named: &[(&'static str, String)],
) -> ::redis::ScriptInvocation<'a> {
    let mut invocation = script.key(keys::queue());
    for (name, value) in keys::script_args() {
        invocation.arg(name).arg(value);
    }
    invocation
        .arg("sharded")
        .arg(if sharded { "1" } else { "0" });
    for (name, value) in named {
        invocation.arg(*name).arg(value);
    }
    invocation
}

/// What a queue score says of its ticket below the arrival sequence (`join.lua` writes and
/// reads it): score = seq · 8192 + tag · 8 + class. A scan passes over a ticket whose class the
/// joiner's preferences rule out (`fits`) without reading it, unless its tag is the joiner's
/// (it may be the joiner's own ticket, which the rules drop rather than pass over).
mod score {
    use crate::matcher;
    use anonchat_protocol::rendezvous::Want;
    use anonchat_protocol::token::Gender;

    const GENDERS: [Gender; 3] = [Gender::Male, Gender::Female, Gender::Undisclosed];
    const WANTS: [Want; 3] = [Want::Any, Want::M, Want::F];
    /// The classes a queue holds (an undisclosed gender wants anyone): 0-6, as `join.lua`
    /// decodes them (gender · 3 + want, in the orders above); 7 is none of them.
    const CLASSES: u8 = 7;

    /// The gender and want of class `c` (0-6).
    fn decode(c: u8) -> (Gender, Want) {
        (GENDERS[usize::from(c / 3)], WANTS[usize::from(c % 3)])
    }

    pub fn class(gender: Gender, want: Want) -> u8 {
        let g = GENDERS.iter().position(|g| *g == gender).unwrap_or(0);
        let w = WANTS.iter().position(|w| *w == want).unwrap_or(0);
        ((g * 3 + w) as u8).min(CLASSES)
    }

    /// Ten bits of the pseudonym: equal tags are read in full.
    pub fn tag(pseudonym: &str) -> u32 {
        pseudonym
            .bytes()
            .fold(0, |h: u32, b| (h * 31 + u32::from(b)) % 1024)
    }

    /// The classes whose preferences agree with this side's, one bit each.
    pub fn fits(gender: Gender, want: Want) -> u8 {
        let mut bits = 0;
        for c in 0..CLASSES {
            if matcher::classes_agree((gender, want), decode(c)) {
                bits |= 1 << c;
            }
        }
        bits
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn classes_number_every_gender_and_want_once_and_fit_as_the_matcher_says() {
            let mut seen = std::collections::HashSet::new();
            for g in GENDERS {
                for w in WANTS {
                    let c = class(g, w);
                    if g == Gender::Undisclosed && w != Want::Any {
                        assert_eq!(c, CLASSES, "no such ticket: none of the classes");
                        continue;
                    }
                    assert!(seen.insert(c), "{g:?} {w:?}");
                    assert_eq!(
                        (GENDERS[usize::from(c / 3)], WANTS[usize::from(c % 3)]),
                        (g, w)
                    );
                }
            }
            assert_eq!(seen.len(), usize::from(CLASSES));
            // A man who wants a woman fits women who want a man or anyone, and nobody else.
            let bits = fits(Gender::Male, Want::F);
            let f = |w| 1 << class(Gender::Female, w);
            assert_eq!(bits, f(Want::M) | f(Want::Any));
            // Tags are ten bits, and tell pseudonyms apart (not always: equal ones are read).
            let tags: std::collections::HashSet<u32> =
                (0..100).map(|i| tag(&format!("pseudonym-{i}"))).collect();
            assert!(tags.iter().all(|t| *t < 1024));
            assert!(tags.len() > 90, "{} tags for 100 pseudonyms", tags.len());
        }
    }
}

#[derive(Clone)]
pub struct RedisStore {
    conn: LazyRedis,
    config: StoreConfig,
    /// On a Redis Cluster: sharded channels.
    sharded: bool,
    join: Arc<::redis::Script>,
    report: Arc<::redis::Script>,
    sweep: Arc<::redis::Script>,
    stats: Arc<::redis::Script>,
    undo: Arc<::redis::Script>,
    reset: Arc<::redis::Script>,
    release: Arc<::redis::Script>,
}

use std::sync::Arc;

impl RedisStore {
    /// Connects (and reconnects by itself later on). `redis://` or `rediss://` (TLS, checked
    /// against the system's roots), with the password in the URL (`rediss://:PASSWORD@host`).
    pub async fn connect(url: &str, config: StoreConfig) -> Result<Self> {
        Self::connect_with_ca(url, None, config).await
    }

    /// As [`connect`](Self::connect), trusting only the CA certificates in `ca_pem` for a
    /// `rediss://` server (a private CA, as Redis deployments usually have).
    pub async fn connect_with_ca(
        url: &str,
        ca_pem: Option<Vec<u8>>,
        config: StoreConfig,
    ) -> Result<Self> {
        // rustls picks no cryptography by itself when a build holds two (the workspace's
        // WebRTC brings ring, reqwest aws-lc-rs): name one, once per process.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let info = anonchat_serve::redis::connection_info(url)?;
        let client = match ca_pem {
            Some(root_cert) => ::redis::Client::build_with_tls(
                info,
                ::redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                },
            )?,
            None => ::redis::Client::open(info)?,
        };
        // A Redis that is not up yet is waited for a moment, then in the background: the
        // instance starts unready, and its operations fail at once meanwhile.
        Ok(Self::on(Target::Client(client), "REDIS_URL", config).await)
    }

    /// As [`connect`](Self::connect), to the primary that the Redis Sentinels at `sentinels`
    /// (`host:port`, or `redis://:PASSWORD@host:port`, each) know as `master`, with `password`
    /// for the servers they name, following it through a failover.
    pub async fn connect_sentinel(
        sentinels: Vec<String>,
        master: String,
        password: Option<String>,
        config: StoreConfig,
    ) -> Result<Self> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let target = Target::Sentinel {
            sentinels,
            master,
            password,
        };
        Ok(Self::on(target, "REDIS_SENTINELS", config).await)
    }

    /// As [`connect`](Self::connect), to a Redis Cluster through any of `nodes`
    /// (`redis://host:port` each). Every key shares one hash tag, so one slot, one node, holds
    /// them all, and every script runs there.
    pub async fn connect_cluster(nodes: Vec<String>, config: StoreConfig) -> Result<Self> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        Ok(Self::on(Target::Cluster { nodes }, "REDIS_CLUSTER_NODES", config).await)
    }

    async fn on(target: Target, what: &'static str, config: StoreConfig) -> Self {
        let sharded = matches!(target, Target::Cluster { .. });
        let conn = LazyRedis::connect(target, what, START_WAIT).await;
        RedisStore {
            conn,
            config,
            sharded,
            join: script!("rules.lua", "join.lua"),
            report: script!("rules.lua", "report.lua"),
            sweep: script!("sweep.lua"),
            stats: script!("stats.lua"),
            undo: script!("undo.lua"),
            reset: script!("reset.lua"),
            // Positional: one key and one argument.
            release: Arc::new(::redis::Script::new(include_str!("lua/release.lua"))),
        }
    }

    /// One run of `join.lua`.
    async fn look(&self, ticket: &Ticket, now_ms: u64, mode: Mode) -> Result<Reply> {
        let again = mode.again();
        let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
        let c = &self.config;
        let named = [
            ("session", ticket.session.clone()),
            ("pseudonym", ticket.pseudonym.clone()),
            ("instance_id", ticket.instance.clone()),
            ("gender", ticket.gender.as_str().into()),
            ("want", ticket.want.as_str().into()),
            (
                "interests",
                serde_json::to_string(&ticket.interests).map_err(corrupt)?,
            ),
            (
                "ticket_json",
                serde_json::to_string(ticket).map_err(corrupt)?,
            ),
            ("now", now_ms.to_string()),
            (
                "count_suffix",
                keys::count_suffix(day((now_ms / 1000) as i64)),
            ),
            (
                "scan",
                if again.is_some() { c.rescan } else { c.scan }.to_string(),
            ),
            ("limit", c.daily_match_limit.to_string()),
            ("tie_ms", matcher::TIE_WINDOW_MS.to_string()),
            ("ttl_ticket", TICKET_TTL_SECONDS.to_string()),
            ("ttl_count", Self::secs(c.match_count_ttl).to_string()),
            ("ttl_last", Self::secs(c.last_partner_ttl).to_string()),
            ("mode", mode.name().into()),
            ("ttl_taken", Self::secs(TAKEN_TTL).to_string()),
            ("skip", again.unwrap_or(0).to_string()),
            ("join_scan", c.scan.to_string()),
            (
                "class",
                score::class(ticket.gender, ticket.want).to_string(),
            ),
            ("tag", score::tag(&ticket.pseudonym).to_string()),
            ("fits", score::fits(ticket.gender, ticket.want).to_string()),
        ];
        let reply: Vec<String> = invoke(&self.join, self.sharded, &named)
            .invoke_async(&mut self.conn.get()?)
            .await?;
        Reply::parse(reply)
    }

    fn partner(ticket: &Ticket, raw: &str) -> Result<(Ticket, Vec<String>)> {
        let partner: Ticket =
            serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let common = matcher::common_interests(&ticket.interests, &partner.interests);
        Ok((partner, common))
    }

    /// A join's answer, as its outcome.
    fn joined(ticket: &Ticket, reply: Reply) -> Result<JoinOutcome> {
        Ok(match reply {
            Reply::Banned(retry_after) => JoinOutcome::Banned { retry_after },
            Reply::DailyLimit => JoinOutcome::DailyLimit,
            Reply::Matched(raw) => {
                let (partner, common_interests) = Self::partner(ticket, &raw)?;
                JoinOutcome::Matched {
                    partner,
                    common_interests,
                }
            }
            Reply::Queued(waiting) => JoinOutcome::Queued { waiting },
            Reply::StillWaiting | Reply::Gone | Reply::Taken => {
                return Err(StoreError::Corrupt(
                    "join.lua answered a join as a look again".into(),
                ));
            }
        })
    }

    fn secs(d: Duration) -> u64 {
        d.as_secs().max(1)
    }
}

/// What `join.lua` answered.
enum Reply {
    Taken,
    Banned(u64),
    DailyLimit,
    /// The partner's ticket, as JSON.
    Matched(String),
    Queued(u64),
    StillWaiting,
    Gone,
}

impl Reply {
    fn parse(reply: Vec<String>) -> Result<Reply> {
        let number = |v: &str| {
            v.parse()
                .map_err(|_| StoreError::Corrupt(format!("join.lua answered {reply:?}")))
        };
        Ok(match reply.as_slice() {
            [w, n] if w == "banned" => Reply::Banned(number(n)?),
            [w] if w == "daily_limit" => Reply::DailyLimit,
            [w, raw] if w == "matched" => Reply::Matched(raw.clone()),
            [w, n] if w == "queued" => Reply::Queued(number(n)?),
            [w] if w == "still_waiting" => Reply::StillWaiting,
            [w] if w == "gone" => Reply::Gone,
            [w] if w == "taken" => Reply::Taken,
            _ => return Err(StoreError::Corrupt(format!("join.lua answered {reply:?}"))),
        })
    }
}

/// A claim as Redis holds it: `instance session` (both are base64url, without spaces).
fn parse_live(value: Option<String>) -> Option<LiveSession> {
    let value = value?;
    let (instance, session) = value.split_once(' ')?;
    Some(LiveSession {
        session: session.to_owned(),
        instance: instance.to_owned(),
    })
}

impl Store for RedisStore {
    async fn claim(
        &self,
        pseudonym: &str,
        session: &str,
        instance: &str,
    ) -> Result<Option<LiveSession>> {
        let mut c = self.conn.get()?;
        // SET … GET: the claim and the previous holder in one atomic step.
        let old: Option<String> = ::redis::cmd("SET")
            .arg(keys::live(pseudonym))
            .arg(format!("{instance} {session}"))
            .arg("EX")
            .arg(Self::secs(LIVE_SESSION_TTL))
            .arg("GET")
            .query_async(&mut c)
            .await?;
        Ok(parse_live(old).filter(|l| l.session != session))
    }

    async fn release(&self, pseudonym: &str, session: &str) -> Result<()> {
        let mut c = self.conn.get()?;
        let _: i64 = self
            .release
            .key(keys::live(pseudonym))
            .arg(session)
            .invoke_async(&mut c)
            .await?;
        Ok(())
    }

    async fn live_session(&self, pseudonym: &str) -> Result<Option<LiveSession>> {
        let mut c = self.conn.get()?;
        let value: Option<String> = ::redis::cmd("GET")
            .arg(keys::live(pseudonym))
            .query_async(&mut c)
            .await?;
        Ok(parse_live(value))
    }

    async fn admit(&self, pseudonym: &str, now_unix: i64) -> Result<Admission> {
        let mut c = self.conn.get()?;
        let (pttl, used): (i64, Option<u32>) = ::redis::pipe()
            .pttl(keys::ban(pseudonym))
            .get(keys::count(pseudonym, day(now_unix)))
            .query_async(&mut c)
            .await?;
        // As rules.lua's ban_left_ms: -2 is no ban, -1 a ban without an expiry.
        let ban_left_ms = (pttl != -2).then(|| pttl.max(0) as u64);
        Ok(matcher::admission(
            ban_left_ms,
            used.unwrap_or(0),
            self.config.daily_match_limit,
        ))
    }

    async fn join(&self, ticket: &Ticket, now_ms: u64) -> Result<JoinOutcome> {
        let reply = self.look(ticket, now_ms, Mode::Join).await?;
        Self::joined(ticket, reply)
    }

    async fn rejoin(&self, ticket: &Ticket, now_ms: u64) -> Result<Rejoin> {
        Ok(match self.look(ticket, now_ms, Mode::Rejoin).await? {
            Reply::StillWaiting => Rejoin::StillWaiting,
            Reply::Taken => Rejoin::Taken,
            reply => Rejoin::Joined(Self::joined(ticket, reply)?),
        })
    }

    async fn rematch(&self, ticket: &Ticket, look: usize, now_ms: u64) -> Result<Rematch> {
        let skip = look.saturating_mul(self.config.rescan);
        Ok(match self.look(ticket, now_ms, Mode::Again(skip)).await? {
            Reply::Matched(raw) => {
                let (partner, common_interests) = Self::partner(ticket, &raw)?;
                Rematch::Matched {
                    partner,
                    common_interests,
                }
            }
            Reply::Gone => Rematch::Gone,
            // Banned or out of matches since it queued: it waits, and its next join says so.
            Reply::StillWaiting
            | Reply::Taken
            | Reply::Queued(_)
            | Reply::Banned(_)
            | Reply::DailyLimit => Rematch::StillWaiting,
        })
    }

    async fn undo(
        &self,
        me: &str,
        partner: &str,
        partner_session: &str,
        now_ms: u64,
    ) -> Result<()> {
        let named = [
            ("me", me.to_owned()),
            ("partner", partner.to_owned()),
            ("partner_session", partner_session.to_owned()),
            (
                "count_suffix",
                keys::count_suffix(day((now_ms / 1000) as i64)),
            ),
        ];
        let _: i64 = invoke(&self.undo, self.sharded, &named)
            .invoke_async(&mut self.conn.get()?)
            .await?;
        Ok(())
    }

    async fn cancel(&self, session: &str) -> Result<bool> {
        let mut c = self.conn.get()?;
        let (removed, _): (u32, u32) = ::redis::pipe()
            .atomic()
            .zrem(keys::queue(), session)
            .del(keys::ticket(session))
            .query_async(&mut c)
            .await?;
        Ok(removed > 0)
    }

    async fn block(&self, blocker: &str, blocked: &str) -> Result<()> {
        let mut c = self.conn.get()?;
        let k = keys::blocks(blocker);
        let _: () = ::redis::pipe()
            .atomic()
            .sadd(&k, blocked)
            .ignore()
            .expire(&k, Self::secs(self.config.block_ttl) as i64)
            .ignore()
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    async fn report(&self, reporter: &str, target: &str) -> Result<ReportOutcome> {
        let mut c = self.conn.get()?;
        let c_ = &self.config;
        let named = [
            ("reporter", reporter.to_owned()),
            ("target", target.to_owned()),
            ("threshold", c_.report_threshold.to_string()),
            ("ttl_reports", Self::secs(c_.report_ttl).to_string()),
            ("ttl_ban", Self::secs(c_.ban).to_string()),
        ];
        let (reporters, banned): (u32, u32) = invoke(&self.report, self.sharded, &named)
            .invoke_async(&mut c)
            .await?;
        Ok(ReportOutcome {
            reporters,
            banned: banned == 1,
        })
    }

    async fn unban(&self, pseudonym: &str) -> Result<bool> {
        let mut c = self.conn.get()?;
        let (bans, _): (u32, u32) = ::redis::pipe()
            .del(keys::ban(pseudonym))
            .del(keys::reports(pseudonym))
            .query_async(&mut c)
            .await?;
        Ok(bans > 0)
    }

    async fn reset(&self) -> Result<()> {
        let named = [("prefix", keys::PREFIX.to_owned())];
        let _: u64 = invoke(&self.reset, self.sharded, &named)
            .invoke_async(&mut self.conn.get()?)
            .await?;
        Ok(())
    }

    async fn heartbeat(&self, instance: &str, online: u64) -> Result<bool> {
        let mut c = self.conn.get()?;
        // SET … GET: the beat and whether the key was still there, in one step.
        let (before,): (Option<String>,) = ::redis::pipe()
            .cmd("SET")
            .arg(keys::instance(instance))
            .arg(online)
            .arg("PX")
            .arg(self.config.heartbeat_ttl.as_millis() as u64)
            .arg("GET")
            .sadd(keys::instances(), instance)
            .ignore()
            .expire(keys::instances(), 86_400)
            .ignore()
            .query_async(&mut c)
            .await?;
        let named = [("max", "1000".into()), ("retiring", String::new())];
        let _: u32 = invoke(&self.sweep, self.sharded, &named)
            .invoke_async(&mut c)
            .await?;
        Ok(before.is_some())
    }

    async fn retire(&self, instance: &str) -> Result<()> {
        let mut c = self.conn.get()?;
        let _: () = ::redis::pipe()
            .del(keys::instance(instance))
            .ignore()
            .srem(keys::instances(), instance)
            .ignore()
            .query_async(&mut c)
            .await?;
        let named = [("max", "100000".into()), ("retiring", instance.to_owned())];
        let _: u32 = invoke(&self.sweep, self.sharded, &named)
            .invoke_async(&mut c)
            .await?;
        Ok(())
    }

    async fn stats(&self) -> Result<Stats> {
        let (online, waiting): (u64, u64) = invoke(&self.stats, self.sharded, &[])
            .invoke_async(&mut self.conn.get()?)
            .await?;
        Ok(Stats { online, waiting })
    }

    async fn ping(&self) -> Result<()> {
        let mut c = self.conn.get()?;
        let _: String = ::redis::cmd("PING").query_async(&mut c).await?;
        Ok(())
    }

    async fn publish(&self, instance: &str, payload: String) -> Result<u64> {
        let mut c = self.conn.get()?;
        let command = if self.sharded { "SPUBLISH" } else { "PUBLISH" };
        Ok(::redis::cmd(command)
            .arg(keys::channel(instance))
            .arg(payload)
            .query_async(&mut c)
            .await?)
    }

    async fn subscribe(&self, instance: &str) -> Result<mpsc::Receiver<Inbox>> {
        let channel = keys::channel(instance);
        let (tx, rx) = mpsc::channel(1024);
        let conn = self.conn.clone();
        tokio::spawn(async move {
            let mut unheard = false;
            let mut wait = Duration::from_millis(50);
            let mut changes = conn.changes();
            loop {
                changes.borrow_and_update();
                let listened = match conn.server() {
                    None => Err(::redis::RedisError::from((
                        ::redis::ErrorKind::Io,
                        "not connected yet",
                    ))),
                    Some(Server::One(client)) => {
                        listen(&client, &channel, &tx, &mut changes, &mut unheard).await
                    }
                    Some(Server::Cluster(nodes)) => {
                        listen_sharded(&nodes, &channel, &tx, &mut unheard).await
                    }
                };
                match listened {
                    // The instance is gone.
                    Ok(Ended::Closed) => return,
                    Ok(Ended::Lost) => {
                        tracing::warn!(
                            "pub/sub connection lost (or the primary changed); resubscribing"
                        );
                        wait = Duration::from_millis(50);
                        unheard = true;
                        if tx.send(Inbox::Lost).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        if !unheard {
                            tracing::warn!(error = %e, "cannot listen on this instance's channel; trying again");
                        }
                        unheard = true;
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(1));
                        if tx.is_closed() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(rx)
    }
}

/// How listening on a channel ended.
enum Ended {
    /// The receiving side is gone: stop.
    Closed,
    /// The subscription was lost (connection, failover): subscribe again.
    Lost,
}

/// Passes what `channel` (a plain one, on one server) carries to `tx`, saying `Listening` first,
/// until the connection ends or the server in use changes.
async fn listen(
    client: &::redis::Client,
    channel: &str,
    tx: &mpsc::Sender<Inbox>,
    changes: &mut tokio::sync::watch::Receiver<u64>,
    unheard: &mut bool,
) -> ::redis::RedisResult<Ended> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    if !listening(tx, unheard).await {
        return Ok(Ended::Closed);
    }
    let mut stream = pubsub.into_on_message();
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else { return Ok(Ended::Lost) };
                let Ok(payload) = msg.get_payload::<String>() else {
                    continue;
                };
                if tx.send(Inbox::Payload(payload)).await.is_err() {
                    return Ok(Ended::Closed);
                }
            }
            // A failover: the channel moves to the new primary.
            Ok(()) = changes.changed() => return Ok(Ended::Lost),
        }
    }
}

/// Subscribed: says so to the instance (logged if it was unheard meanwhile); false when nobody
/// reads the inbox any more.
async fn listening(tx: &mpsc::Sender<Inbox>, unheard: &mut bool) -> bool {
    if std::mem::take(unheard) {
        tracing::info!("listening on this instance's channel again");
    }
    tx.send(Inbox::Listening).await.is_ok()
}

/// The same for a sharded channel on a Redis Cluster (RESP3 pushes). The cluster connection
/// subscribes again by itself after a disconnection: `Lost` then `Listening` are said as the
/// pushes tell.
async fn listen_sharded(
    nodes: &[String],
    channel: &str,
    tx: &mpsc::Sender<Inbox>,
    unheard: &mut bool,
) -> ::redis::RedisResult<Ended> {
    use ::redis::PushKind;
    let (pushes_tx, mut pushes) = mpsc::unbounded_channel();
    let client = ::redis::cluster::ClusterClientBuilder::new(nodes.to_vec())
        .use_protocol(::redis::ProtocolVersion::RESP3)
        .push_sender(pushes_tx)
        .connection_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(3))
        .build()?;
    let mut conn = client.get_async_connection().await?;
    conn.ssubscribe(channel).await?;
    if !listening(tx, unheard).await {
        return Ok(Ended::Closed);
    }
    let mut lost = false;
    while let Some(push) = pushes.recv().await {
        let said = match push.kind {
            PushKind::SMessage => match push
                .data
                .last()
                .map(::redis::from_redis_value_ref::<String>)
            {
                Some(Ok(payload)) => Inbox::Payload(payload),
                _ => continue,
            },
            PushKind::Disconnection if !lost => {
                lost = true;
                Inbox::Lost
            }
            PushKind::SSubscribe if lost => {
                lost = false;
                Inbox::Listening
            }
            _ => continue,
        };
        if tx.send(said).await.is_err() {
            return Ok(Ended::Closed);
        }
    }
    // The connection is dropped with `conn` only when this returns.
    drop(conn);
    Ok(Ended::Lost)
}
