//! The Redis store: several rendezvous instances share one Redis.
//!
//! Every key lives under one hash tag (`{ac}:…`), so every script runs on one Redis Cluster
//! slot. The queue is a sorted set ordered by a strict arrival sequence; each ticket is a hash
//! (`json`, `joined` in ms). A join is one Lua script, one round trip: it scans the oldest waiting tickets, applies
//! the matcher's rules (the same as [`crate::matcher`], held to the same tests) and either takes
//! the partner out of the queue or enqueues. Each instance keeps a heartbeat key alive; a ticket
//! whose instance's heartbeat is gone is a ghost, never matched, and cleaned when seen.
//! Instances reach each other through one pub/sub channel each.

use std::time::Duration;

use ::redis::AsyncCommands;
use ::redis::aio::ConnectionManager;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::*;
use crate::matcher;

const PREFIX: &str = "{ac}:";
const TICKET_TTL_SECONDS: u64 = 86_400;

#[derive(Clone)]
pub struct RedisStore {
    client: ::redis::Client,
    conn: ConnectionManager,
    config: StoreConfig,
    join: Arc<::redis::Script>,
    report: Arc<::redis::Script>,
    sweep: Arc<::redis::Script>,
    release: Arc<::redis::Script>,
}

use std::sync::Arc;

fn key(rest: &str) -> String {
    format!("{PREFIX}{rest}")
}

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
        let client = match ca_pem {
            Some(root_cert) => ::redis::Client::build_with_tls(
                url,
                ::redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                },
            )?,
            None => ::redis::Client::open(url)?,
        };
        // Every call fails within a few seconds instead of hanging a session when Redis stops
        // answering; the manager keeps reconnecting in the background.
        let manager = ::redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(3)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client.clone(), manager).await?;
        Ok(RedisStore {
            client,
            conn,
            config,
            join: Arc::new(::redis::Script::new(include_str!("join.lua"))),
            report: Arc::new(::redis::Script::new(include_str!("report.lua"))),
            sweep: Arc::new(::redis::Script::new(include_str!("sweep.lua"))),
            release: Arc::new(::redis::Script::new(include_str!("release.lua"))),
        })
    }

    /// One run of `join.lua`: a join, or with `again = Some(skip)` a waiting ticket's look at
    /// a slice of those behind it.
    async fn look(&self, ticket: &Ticket, now_ms: u64, again: Option<usize>) -> Result<JoinReply> {
        let mut c = self.conn.clone();
        let json = serde_json::to_string(ticket).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let reply: String = self
            .join
            .key(key("queue"))
            .arg(json)
            .arg(now_ms)
            .arg(if again.is_some() {
                self.config.rescan
            } else {
                self.config.scan
            })
            .arg(self.config.daily_match_limit)
            .arg(day((now_ms / 1000) as i64))
            .arg(Self::secs(self.config.match_count_ttl))
            .arg(Self::secs(self.config.last_partner_ttl))
            .arg(TICKET_TTL_SECONDS)
            .arg(matcher::TIE_WINDOW_MS)
            .arg(if again.is_some() { "again" } else { "join" })
            .arg(again.unwrap_or(0))
            .arg(self.config.scan)
            .invoke_async(&mut c)
            .await?;
        serde_json::from_str(&reply).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    fn partner(ticket: &Ticket, raw: &str) -> Result<(Ticket, Vec<String>)> {
        let partner: Ticket =
            serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let common = matcher::common_interests(&ticket.interests, &partner.interests);
        Ok((partner, common))
    }

    fn secs(d: Duration) -> u64 {
        d.as_secs().max(1)
    }
}

#[derive(serde::Deserialize)]
struct JoinReply {
    banned: Option<u64>,
    daily_limit: Option<bool>,
    matched: Option<String>,
    queued: Option<u64>,
    gone: Option<bool>,
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
        let mut c = self.conn.clone();
        // SET … GET: the claim and the previous holder in one atomic step.
        let old: Option<String> = ::redis::cmd("SET")
            .arg(key(&format!("live:{pseudonym}")))
            .arg(format!("{instance} {session}"))
            .arg("EX")
            .arg(Self::secs(LIVE_SESSION_TTL))
            .arg("GET")
            .query_async(&mut c)
            .await?;
        Ok(parse_live(old).filter(|l| l.session != session))
    }

    async fn release(&self, pseudonym: &str, session: &str) -> Result<()> {
        let mut c = self.conn.clone();
        let _: i64 = self
            .release
            .key(key(&format!("live:{pseudonym}")))
            .arg(session)
            .invoke_async(&mut c)
            .await?;
        Ok(())
    }

    async fn live_session(&self, pseudonym: &str) -> Result<Option<LiveSession>> {
        let mut c = self.conn.clone();
        let value: Option<String> = ::redis::cmd("GET")
            .arg(key(&format!("live:{pseudonym}")))
            .query_async(&mut c)
            .await?;
        Ok(parse_live(value))
    }

    async fn admit(&self, pseudonym: &str, now_unix: i64) -> Result<Admission> {
        let mut c = self.conn.clone();
        let (ban_ms, used): (i64, Option<u32>) = ::redis::pipe()
            .pttl(key(&format!("ban:{pseudonym}")))
            .get(key(&format!("count:{pseudonym}:{}", day(now_unix))))
            .query_async(&mut c)
            .await?;
        if ban_ms > 0 || ban_ms == -1 {
            return Ok(Admission::Banned {
                retry_after: (ban_ms.max(1000) as u64).div_ceil(1000),
            });
        }
        Ok(Admission::Welcome {
            daily_remaining: self
                .config
                .daily_match_limit
                .saturating_sub(used.unwrap_or(0)),
        })
    }

    async fn join(&self, ticket: &Ticket, now_ms: u64) -> Result<JoinOutcome> {
        let reply = self.look(ticket, now_ms, None).await?;
        if let Some(retry_after) = reply.banned {
            return Ok(JoinOutcome::Banned { retry_after });
        }
        if reply.daily_limit == Some(true) {
            return Ok(JoinOutcome::DailyLimit);
        }
        if let Some(raw) = reply.matched {
            let (partner, common_interests) = Self::partner(ticket, &raw)?;
            return Ok(JoinOutcome::Matched {
                partner,
                common_interests,
            });
        }
        Ok(JoinOutcome::Queued {
            waiting: reply.queued.unwrap_or(0),
        })
    }

    async fn rematch(&self, ticket: &Ticket, look: usize, now_ms: u64) -> Result<Rematch> {
        let skip = look.saturating_mul(self.config.rescan);
        let reply = self.look(ticket, now_ms, Some(skip)).await?;
        if reply.gone == Some(true) {
            return Ok(Rematch::Gone);
        }
        if let Some(raw) = reply.matched {
            let (partner, common_interests) = Self::partner(ticket, &raw)?;
            return Ok(Rematch::Matched {
                partner,
                common_interests,
            });
        }
        Ok(Rematch::StillWaiting)
    }

    async fn cancel(&self, session: &str) -> Result<bool> {
        let mut c = self.conn.clone();
        let (removed, _): (u32, u32) = ::redis::pipe()
            .atomic()
            .zrem(key("queue"), session)
            .del(key(&format!("t:{session}")))
            .query_async(&mut c)
            .await?;
        Ok(removed > 0)
    }

    async fn block(&self, blocker: &str, blocked: &str) -> Result<()> {
        let mut c = self.conn.clone();
        let k = key(&format!("blocks:{blocker}"));
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
        let mut c = self.conn.clone();
        let (reporters, banned): (u32, u32) = self
            .report
            .key(key("queue"))
            .arg(reporter)
            .arg(target)
            .arg(self.config.report_threshold)
            .arg(Self::secs(self.config.report_ttl))
            .arg(Self::secs(self.config.ban))
            .invoke_async(&mut c)
            .await?;
        Ok(ReportOutcome {
            reporters,
            banned: banned == 1,
        })
    }

    async fn unban(&self, pseudonym: &str) -> Result<bool> {
        let mut c = self.conn.clone();
        let (bans, _): (u32, u32) = ::redis::pipe()
            .del(key(&format!("ban:{pseudonym}")))
            .del(key(&format!("reports:{pseudonym}")))
            .query_async(&mut c)
            .await?;
        Ok(bans > 0)
    }

    async fn reset(&self) -> Result<()> {
        let mut c = self.conn.clone();
        let mut keys: Vec<String> = Vec::new();
        {
            let mut iter: ::redis::AsyncIter<String> = c.scan_match(format!("{PREFIX}*")).await?;
            while let Some(k) = iter.next_item().await {
                let k = k?;
                if !k.starts_with(&key("inst:")) && k != key("instances") {
                    keys.push(k);
                }
            }
        }
        for chunk in keys.chunks(500) {
            let _: () = c.del(chunk).await?;
        }
        Ok(())
    }

    async fn heartbeat(&self, instance: &str, online: u64) -> Result<()> {
        let mut c = self.conn.clone();
        let _: () = ::redis::pipe()
            .pset_ex(
                key(&format!("inst:{instance}")),
                online,
                self.config.heartbeat_ttl.as_millis() as u64,
            )
            .ignore()
            .sadd(key("instances"), instance)
            .ignore()
            .expire(key("instances"), 86_400)
            .ignore()
            .query_async(&mut c)
            .await?;
        let _: u32 = self
            .sweep
            .key(key("queue"))
            .arg(1000)
            .arg("")
            .invoke_async(&mut c)
            .await?;
        Ok(())
    }

    async fn retire(&self, instance: &str) -> Result<()> {
        let mut c = self.conn.clone();
        let _: () = ::redis::pipe()
            .del(key(&format!("inst:{instance}")))
            .ignore()
            .srem(key("instances"), instance)
            .ignore()
            .query_async(&mut c)
            .await?;
        let _: u32 = self
            .sweep
            .key(key("queue"))
            .arg(100_000)
            .arg(instance)
            .invoke_async(&mut c)
            .await?;
        Ok(())
    }

    async fn stats(&self) -> Result<Stats> {
        let mut c = self.conn.clone();
        let instances: Vec<String> = c.smembers(key("instances")).await?;
        let mut online = 0;
        for i in &instances {
            match c.get::<_, Option<u64>>(key(&format!("inst:{i}"))).await? {
                Some(n) => online += n,
                None => {
                    let _: () = c.srem(key("instances"), i).await?;
                }
            }
        }
        let waiting: u64 = c.zcard(key("queue")).await?;
        Ok(Stats { online, waiting })
    }

    async fn ping(&self) -> Result<()> {
        let mut c = self.conn.clone();
        let _: String = ::redis::cmd("PING").query_async(&mut c).await?;
        Ok(())
    }

    async fn publish(&self, instance: &str, payload: String) -> Result<()> {
        let mut c = self.conn.clone();
        let _: () = c.publish(key(&format!("ch:{instance}")), payload).await?;
        Ok(())
    }

    async fn subscribe(&self, instance: &str) -> Result<mpsc::Receiver<String>> {
        let channel = key(&format!("ch:{instance}"));
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(&channel).await?;
        let (tx, rx) = mpsc::channel(1024);
        let client = self.client.clone();
        tokio::spawn(async move {
            let mut stream = pubsub.into_on_message();
            loop {
                while let Some(msg) = stream.next().await {
                    let Ok(payload) = msg.get_payload::<String>() else {
                        continue;
                    };
                    if tx.send(payload).await.is_err() {
                        return; // the instance is gone
                    }
                }
                // The connection dropped: subscribe again, with a pause between attempts.
                tracing::warn!("pub/sub connection lost; resubscribing");
                loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if tx.is_closed() {
                        return;
                    }
                    let Ok(mut p) = client.get_async_pubsub().await else {
                        continue;
                    };
                    if p.subscribe(&channel).await.is_ok() {
                        stream = p.into_on_message();
                        break;
                    }
                }
            }
        });
        Ok(rx)
    }
}
