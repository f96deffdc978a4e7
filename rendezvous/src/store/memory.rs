//! The in-memory store: the default when no Redis is configured. One process, any number of
//! server instances inside it; state is lost on restart. Expired entries are dropped when they
//! are next looked at and swept on every heartbeat.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::*;
use crate::matcher::{self, Seat};

/// What one look at the queue found (see [`MemoryStore::look`]).
enum Look {
    Matched(Ticket, Vec<String>),
    Waiting(u64),
    Banned(u64),
    DailyLimit,
    Gone,
    /// A join again found its ticket still queued.
    Stays,
    /// A join again found its ticket taken by a partner moments ago.
    Taken,
}

#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    config: StoreConfig,
}

struct Expiring<T> {
    value: T,
    until: Instant,
}

impl<T> Expiring<T> {
    fn live(&self, now: Instant) -> bool {
        self.until > now
    }
}

#[derive(Default)]
struct Inner {
    /// Oldest first: (joined at, ms; ticket).
    queue: Vec<(u64, Ticket)>,
    /// Whom each device blocked; the whole set lives until its last block's TTL, like the
    /// Redis store's set (`SADD` then `EXPIRE`).
    blocks: HashMap<String, Expiring<HashSet<String>>>,
    last_partner: HashMap<String, Expiring<String>>,
    counts: HashMap<(String, i64), Expiring<u32>>,
    bans: HashMap<String, Expiring<()>>,
    reports: HashMap<String, Expiring<HashSet<String>>>,
    instances: HashMap<String, Expiring<u64>>,
    channels: HashMap<String, mpsc::Sender<Inbox>>,
    live: HashMap<String, Expiring<LiveSession>>,
    /// Waiting tickets a partner took moments ago (see `Store::rejoin`).
    taken: HashMap<String, Expiring<()>>,
}

impl MemoryStore {
    pub fn new(config: StoreConfig) -> Self {
        MemoryStore {
            inner: Arc::default(),
            config,
        }
    }

    /// One look at the queue for `ticket`: a join (from the oldest ticket on, queued when
    /// nobody fits), a join again, or a waiting ticket's look at a slice of those queued
    /// after it.
    fn look(&self, ticket: &Ticket, now_ms: u64, mode: Mode) -> Look {
        let mut inner = self.lock();
        let now = Instant::now();
        if let Mode::Rejoin = mode {
            if inner
                .taken
                .get(&ticket.session)
                .is_some_and(|t| t.live(now))
            {
                return Look::Taken;
            } else if inner.queue.iter().any(|(_, t)| t.session == ticket.session) {
                return Look::Stays;
            }
        }
        let again = mode.again();
        let today = day((now_ms / 1000) as i64);
        let limit = self.config.daily_match_limit;
        match inner.admission(&ticket.pseudonym, today, limit, now) {
            Admission::Banned { retry_after } => return Look::Banned(retry_after),
            Admission::Welcome { daily_remaining: 0 } => return Look::DailyLimit,
            Admission::Welcome { .. } => {}
        }
        let (start, scan) = match again {
            Some(skip) => match inner
                .queue
                .iter()
                .position(|(_, t)| t.session == ticket.session)
            {
                // Within the oldest `scan`, every join sees it already.
                Some(mine) if mine < self.config.scan => return Look::Waiting(0),
                Some(mine) => {
                    let behind = inner.queue.len() - mine - 1;
                    (mine + 1 + skip % behind.max(1), self.config.rescan)
                }
                None => return Look::Gone,
            },
            None => (0, self.config.scan),
        };
        // Borrowed, not copied, and looked up only as far as the matcher reads (it usually
        // stops after a few tickets).
        let none = HashSet::new();
        let me = inner.seat(ticket, &none, now);
        let waiting = inner.queue[start.min(inner.queue.len())..]
            .iter()
            .map(|(joined_ms, t)| matcher::Waiting {
                joined_ms: *joined_ms,
                seat: inner.seat(t, &none, now),
                alive: inner.alive(&t.instance, now),
                banned: inner.ban_left_ms(&t.pseudonym, now).is_some(),
                exhausted: inner.count(&t.pseudonym, today, now) >= limit,
            });
        let choice = matcher::choose(&me, waiting, scan);
        for &i in choice.dropped.iter().rev() {
            inner.queue.remove(start + i);
        }
        // The chosen ticket moves down by the dropped ones before it.
        let partner = choice
            .partner
            .map(|i| start + i - choice.dropped.iter().filter(|&&d| d < i).count());
        let Some(index) = partner else {
            if again.is_none() && !inner.queue.iter().any(|(_, t)| t.session == ticket.session) {
                inner.queue.push((now_ms, ticket.clone()));
            }
            return Look::Waiting(inner.queue.len() as u64);
        };
        let (_, partner) = inner.queue.remove(index);
        inner.queue.retain(|(_, t)| t.session != ticket.session);
        let taken = Expiring {
            value: (),
            until: now + TAKEN_TTL,
        };
        inner.taken.insert(partner.session.clone(), taken);
        let common_interests = matcher::common_interests(&ticket.interests, &partner.interests);
        let until = now + self.config.match_count_ttl;
        for (who, other) in [
            (&ticket.pseudonym, &partner.pseudonym),
            (&partner.pseudonym, &ticket.pseudonym),
        ] {
            let entry = inner
                .counts
                .entry((who.clone(), today))
                .or_insert(Expiring { value: 0, until });
            entry.value += 1;
            entry.until = until;
            let last = Expiring {
                value: other.clone(),
                until: now + self.config.last_partner_ttl,
            };
            inner.last_partner.insert(who.clone(), last);
        }
        Look::Matched(partner, common_interests)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    fn ban_left_ms(&self, who: &str, now: Instant) -> Option<u64> {
        self.bans
            .get(who)
            .filter(|b| b.live(now))
            .map(|b| (b.until - now).as_millis() as u64)
    }

    fn admission(&self, who: &str, day: i64, limit: u32, now: Instant) -> Admission {
        matcher::admission(self.ban_left_ms(who, now), self.count(who, day, now), limit)
    }

    fn count(&self, who: &str, day: i64, now: Instant) -> u32 {
        self.counts
            .get(&(who.to_owned(), day))
            .filter(|c| c.live(now))
            .map_or(0, |c| c.value)
    }

    fn blocked_by(&self, who: &str, now: Instant) -> Option<&HashSet<String>> {
        self.blocks
            .get(who)
            .filter(|b| b.live(now))
            .map(|b| &b.value)
    }

    fn last(&self, who: &str, now: Instant) -> Option<&str> {
        self.last_partner
            .get(who)
            .filter(|l| l.live(now))
            .map(|l| l.value.as_str())
    }

    /// A ticket as the matcher sees it, borrowing this store's blocks and last partners.
    fn seat<'a>(&'a self, t: &'a Ticket, none: &'a HashSet<String>, now: Instant) -> Seat<'a> {
        Seat {
            pseudonym: &t.pseudonym,
            gender: t.gender,
            want: t.want,
            interests: &t.interests,
            last_partner: self.last(&t.pseudonym, now),
            blocked: self.blocked_by(&t.pseudonym, now).unwrap_or(none),
        }
    }

    /// As `instance_alive` in the Redis scripts: its heartbeat runs and its channel is read.
    fn alive(&self, instance: &str, now: Instant) -> bool {
        self.instances.get(instance).is_some_and(|i| i.live(now))
            && self
                .channels
                .get(instance)
                .is_some_and(|tx| !tx.is_closed())
    }

    fn sweep(&mut self, now: Instant) {
        self.last_partner.retain(|_, v| v.live(now));
        self.counts.retain(|_, v| v.live(now));
        self.bans.retain(|_, v| v.live(now));
        self.reports.retain(|_, v| v.live(now));
        self.blocks.retain(|_, v| v.live(now));
        self.live.retain(|_, v| v.live(now));
        self.taken.retain(|_, v| v.live(now));
        let dead: Vec<String> = self
            .instances
            .iter()
            .filter(|(_, i)| !i.live(now))
            .map(|(k, _)| k.clone())
            .collect();
        for d in &dead {
            self.instances.remove(d);
            self.channels.remove(d);
        }
        let alive: HashSet<String> = (self.instances.keys())
            .filter(|i| self.alive(i, now))
            .cloned()
            .collect();
        self.queue.retain(|(_, t)| alive.contains(&t.instance));
    }
}

impl MemoryStore {
    /// A join's look, as its outcome.
    fn joined(look: Look) -> JoinOutcome {
        match look {
            Look::Matched(partner, common_interests) => JoinOutcome::Matched {
                partner,
                common_interests,
            },
            Look::Waiting(waiting) => JoinOutcome::Queued { waiting },
            Look::Banned(retry_after) => JoinOutcome::Banned { retry_after },
            Look::DailyLimit => JoinOutcome::DailyLimit,
            // Only a second look finds its own ticket gone, or a join again one that stays.
            Look::Gone | Look::Stays | Look::Taken => JoinOutcome::Queued { waiting: 0 },
        }
    }
}

impl Store for MemoryStore {
    async fn claim(
        &self,
        pseudonym: &str,
        session: &str,
        instance: &str,
    ) -> Result<Option<LiveSession>> {
        let mut inner = self.lock();
        let now = Instant::now();
        let mine = Expiring {
            value: LiveSession {
                session: session.to_owned(),
                instance: instance.to_owned(),
            },
            until: now + LIVE_SESSION_TTL,
        };
        Ok(inner
            .live
            .insert(pseudonym.to_owned(), mine)
            .filter(|old| old.live(now) && old.value.session != session)
            .map(|old| old.value))
    }

    async fn release(&self, pseudonym: &str, session: &str) -> Result<()> {
        let mut inner = self.lock();
        if inner
            .live
            .get(pseudonym)
            .is_some_and(|l| l.value.session == session)
        {
            inner.live.remove(pseudonym);
        }
        Ok(())
    }

    async fn live_session(&self, pseudonym: &str) -> Result<Option<LiveSession>> {
        let inner = self.lock();
        let now = Instant::now();
        Ok(inner
            .live
            .get(pseudonym)
            .filter(|l| l.live(now))
            .map(|l| l.value.clone()))
    }

    async fn admit(&self, pseudonym: &str, now_unix: i64) -> Result<Admission> {
        let inner = self.lock();
        let limit = self.config.daily_match_limit;
        Ok(inner.admission(pseudonym, day(now_unix), limit, Instant::now()))
    }

    async fn join(&self, ticket: &Ticket, now_ms: u64) -> Result<JoinOutcome> {
        Ok(Self::joined(self.look(ticket, now_ms, Mode::Join)))
    }

    async fn rejoin(&self, ticket: &Ticket, now_ms: u64) -> Result<Rejoin> {
        Ok(match self.look(ticket, now_ms, Mode::Rejoin) {
            Look::Stays => Rejoin::StillWaiting,
            Look::Taken => Rejoin::Taken,
            look => Rejoin::Joined(Self::joined(look)),
        })
    }

    async fn rematch(&self, ticket: &Ticket, look: usize, now_ms: u64) -> Result<Rematch> {
        let skip = look.saturating_mul(self.config.rescan);
        Ok(match self.look(ticket, now_ms, Mode::Again(skip)) {
            Look::Matched(partner, common_interests) => Rematch::Matched {
                partner,
                common_interests,
            },
            Look::Waiting(_) | Look::Banned(_) | Look::DailyLimit | Look::Stays | Look::Taken => {
                Rematch::StillWaiting
            }
            Look::Gone => Rematch::Gone,
        })
    }

    async fn undo(
        &self,
        me: &str,
        partner: &str,
        partner_session: &str,
        now_ms: u64,
    ) -> Result<()> {
        let mut inner = self.lock();
        let today = day((now_ms / 1000) as i64);
        inner.taken.remove(partner_session);
        for (who, other) in [(me, partner), (partner, me)] {
            if inner
                .last_partner
                .get(who)
                .is_some_and(|l| l.value == other)
            {
                inner.last_partner.remove(who);
            }
            if let Some(count) = inner.counts.get_mut(&(who.to_owned(), today)) {
                count.value = count.value.saturating_sub(1);
            }
        }
        Ok(())
    }

    async fn cancel(&self, session: &str) -> Result<bool> {
        let mut inner = self.lock();
        let before = inner.queue.len();
        inner.queue.retain(|(_, t)| t.session != session);
        Ok(inner.queue.len() != before)
    }

    async fn block(&self, blocker: &str, blocked: &str) -> Result<()> {
        let now = Instant::now();
        let until = now + self.config.block_ttl;
        let mut inner = self.lock();
        let entry = inner.blocks.entry(blocker.to_owned()).or_insert(Expiring {
            value: HashSet::new(),
            until,
        });
        if !entry.live(now) {
            entry.value.clear();
        }
        entry.value.insert(blocked.to_owned());
        entry.until = until;
        Ok(())
    }

    async fn report(&self, reporter: &str, target: &str) -> Result<ReportOutcome> {
        let mut inner = self.lock();
        let now = Instant::now();
        let until = now + self.config.report_ttl;
        let entry = inner.reports.entry(target.to_owned()).or_insert(Expiring {
            value: HashSet::new(),
            until,
        });
        if !entry.live(now) {
            entry.value.clear();
        }
        entry.until = until;
        entry.value.insert(reporter.to_owned());
        let reporters = entry.value.len() as u32;
        let already = inner.ban_left_ms(target, now).is_some();
        let banned = matcher::report_bans(reporters, self.config.report_threshold, already);
        if banned {
            // A ban consumes the reports behind it: after it, it takes new reporters again.
            inner.bans.insert(
                target.to_owned(),
                Expiring {
                    value: (),
                    until: now + self.config.ban,
                },
            );
            inner.reports.remove(target);
        }
        Ok(ReportOutcome { reporters, banned })
    }

    async fn unban(&self, pseudonym: &str) -> Result<bool> {
        let mut inner = self.lock();
        inner.reports.remove(pseudonym);
        Ok(inner.bans.remove(pseudonym).is_some())
    }

    async fn reset(&self) -> Result<()> {
        let mut inner = self.lock();
        let (instances, channels) = (
            std::mem::take(&mut inner.instances),
            std::mem::take(&mut inner.channels),
        );
        *inner = Inner {
            instances,
            channels,
            ..Inner::default()
        };
        Ok(())
    }

    async fn heartbeat(&self, instance: &str, online: u64) -> Result<bool> {
        let mut inner = self.lock();
        let now = Instant::now();
        let knew = inner.instances.get(instance).is_some_and(|i| i.live(now));
        inner.instances.insert(
            instance.to_owned(),
            Expiring {
                value: online,
                until: now + self.config.heartbeat_ttl,
            },
        );
        inner.sweep(now);
        Ok(knew)
    }

    async fn retire(&self, instance: &str) -> Result<()> {
        let mut inner = self.lock();
        inner.instances.remove(instance);
        inner.channels.remove(instance);
        inner.queue.retain(|(_, t)| t.instance != instance);
        Ok(())
    }

    async fn stats(&self) -> Result<Stats> {
        let inner = self.lock();
        let now = Instant::now();
        let online = inner
            .instances
            .values()
            .filter(|i| i.live(now))
            .map(|i| i.value)
            .sum();
        let waiting = inner
            .queue
            .iter()
            .filter(|(_, t)| inner.alive(&t.instance, now))
            .count() as u64;
        Ok(Stats { online, waiting })
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn publish(&self, instance: &str, payload: String) -> Result<u64> {
        let tx = self.lock().channels.get(instance).cloned();
        Ok(match tx {
            Some(tx) => u64::from(tx.send(Inbox::Payload(payload)).await.is_ok()),
            None => 0,
        })
    }

    async fn subscribe(&self, instance: &str) -> Result<mpsc::Receiver<Inbox>> {
        let (tx, rx) = mpsc::channel(1024);
        tx.try_send(Inbox::Listening)
            .expect("a new channel has room");
        self.lock().channels.insert(instance.to_owned(), tx);
        Ok(rx)
    }
}

/// For tests of expiry: a store whose lifetimes are all `ttl`.
pub fn short_lived(ttl: Duration) -> StoreConfig {
    StoreConfig {
        report_ttl: ttl,
        ban: ttl,
        match_count_ttl: ttl,
        block_ttl: ttl,
        last_partner_ttl: ttl,
        heartbeat_ttl: ttl,
        ..StoreConfig::default()
    }
}
