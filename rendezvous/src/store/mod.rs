//! Where the rendezvous keeps its shared state: the queue, blocks, last partners, daily counts,
//! reports, bans, instance heartbeats, and the channels between instances. Everything is keyed by
//! pseudonym, never by device id, and everything expires.
//!
//! Two stores behind one trait, held to one test suite: [`memory::MemoryStore`] (one process) and
//! [`redis::RedisStore`] (several instances sharing one Redis).

mod keys;
#[cfg(test)]
mod lua_mirror;
pub mod memory;
pub mod redis;

pub use crate::matcher::Admission;

use std::future::Future;
use std::time::Duration;

use anonchat_protocol::token::Gender;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use anonchat_protocol::rendezvous::{Transport, Want};

/// Limits and lifetimes (DESIGN.md §5 and §7).
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub daily_match_limit: u32,
    pub report_threshold: u32,
    pub report_ttl: Duration,
    pub ban: Duration,
    pub match_count_ttl: Duration,
    pub block_ttl: Duration,
    pub last_partner_ttl: Duration,
    /// An instance whose heartbeat is older than this is dead; its tickets are never matched.
    pub heartbeat_ttl: Duration,
    /// Waiting users a join looks at, at most.
    pub scan: usize,
    /// Tickets a waiting one looks at when it looks again (see [`Store::rematch`]).
    pub rescan: usize,
}

/// How long "no immediate rematch" remembers a user's last partner.
pub const LAST_PARTNER_TTL: Duration = Duration::from_secs(3600);

impl Default for StoreConfig {
    /// The service's defaults (from its configuration's clap attributes, the one home of each).
    fn default() -> Self {
        crate::config::Config::local().store_config()
    }
}

/// A waiting user, as stored in the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub session: String,
    pub instance: String,
    pub pseudonym: String,
    pub gender: Gender,
    pub want: Want,
    pub interests: Vec<String>,
    pub nickname: String,
    pub bio: String,
    pub transports: Vec<Transport>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    /// Nobody compatible is waiting: the ticket is queued.
    Queued {
        waiting: u64,
    },
    /// A partner was found and taken out of the queue, in the same atomic step.
    Matched {
        partner: Ticket,
        common_interests: Vec<String>,
    },
    Banned {
        retry_after: u64,
    },
    DailyLimit,
}

/// Where a device's live session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    pub session: String,
    pub instance: String,
}

/// How long a claim outlives its last renewal: sessions end with their token (a day at most
/// by default), and a crashed instance's claims must not stay forever.
pub const LIVE_SESSION_TTL: Duration = Duration::from_secs(2 * 86_400);

/// What a waiting ticket's second look at the queue found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rematch {
    /// A partner was found among those who queued after it; both tickets are gone.
    Matched {
        partner: Ticket,
        common_interests: Vec<String>,
    },
    StillWaiting,
    /// The ticket is no longer queued (matched by someone else, cancelled, or dropped).
    Gone,
}

/// What a look at the queue is for: `join.lua`'s modes, and the memory store's.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    Join,
    Rejoin,
    /// A waiting ticket's look at a slice of those behind it, from the `skip`th.
    Again(usize),
}

impl Mode {
    /// The mode's name in `join.lua`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Join => "join",
            Mode::Rejoin => "rejoin",
            Mode::Again(_) => "again",
        }
    }

    /// Where a look again starts, for a look again.
    pub(crate) fn again(self) -> Option<usize> {
        match self {
            Mode::Again(skip) => Some(skip),
            Mode::Join | Mode::Rejoin => None,
        }
    }
}

/// What a join again found (see [`Store::rejoin`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejoin {
    StillWaiting,
    /// A partner took the ticket within [`TAKEN_TTL`]: its match is on its way.
    Taken,
    /// The ticket was lost: this was a join, with its outcome.
    Joined(JoinOutcome),
}

/// How long the store remembers that a partner took a waiting ticket (long enough for the
/// match to reach its session, however slow the route).
pub const TAKEN_TTL: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportOutcome {
    /// Unique reporters of the target within the report TTL.
    pub reporters: u32,
    /// Whether this report banned the target.
    pub banned: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stats {
    pub online: u64,
    pub waiting: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("store data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The operations the server needs. Every method is one atomic step in the store.
pub trait Store: Clone + Send + Sync + 'static {
    /// Whether `pseudonym` may connect, and how many matches it has left today.
    fn admit(
        &self,
        pseudonym: &str,
        now_unix: i64,
    ) -> impl Future<Output = Result<Admission>> + Send;
    /// Finds a compatible waiting partner and takes both out of the queue, or queues the ticket.
    /// Bans and the daily limit are checked first; a match counts for both and records each as
    /// the other's last partner.
    fn join(
        &self,
        ticket: &Ticket,
        now_ms: u64,
    ) -> impl Future<Output = Result<JoinOutcome>> + Send;
    /// Looks again for a partner of a ticket that is already waiting, among `rescan` of the
    /// tickets queued after it: look number `look` (from 0) starts `look × rescan` tickets
    /// behind it (counted round: past the last, it starts over right behind the ticket). So a
    /// bounded scan never means "never": a join looks at the oldest tickets, a waiting one at a
    /// new slice of those behind it at each look, for a small cost per look. Atomic, like
    /// `join`, and with the same rules; nothing is queued again.
    fn rematch(
        &self,
        ticket: &Ticket,
        look: usize,
        now_ms: u64,
    ) -> impl Future<Output = Result<Rematch>> + Send;
    /// Joins again for a session that should be waiting, when the queue may have lost its
    /// ticket (the store restarted without its data, or took the instance for dead and swept
    /// its tickets): nothing if the ticket is still queued, nothing if a partner took it
    /// moments ago (the match is on its way: joining again would let a second partner take
    /// it), else a join. Atomic.
    fn rejoin(&self, ticket: &Ticket, now_ms: u64) -> impl Future<Output = Result<Rejoin>> + Send;
    /// Undoes a match that did not stand (the partner's side never took it): the partner's
    /// ticket is no longer taken (its session's next join again must not wait for it), and
    /// neither `me` nor `partner` keeps the other as last partner or as one of today's matches.
    fn undo(
        &self,
        me: &str,
        partner: &str,
        partner_session: &str,
        now_ms: u64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Takes a session's ticket out of the queue; false if it was not there (already matched).
    fn cancel(&self, session: &str) -> impl Future<Output = Result<bool>> + Send;
    fn block(&self, blocker: &str, blocked: &str) -> impl Future<Output = Result<()>> + Send;
    /// Counts `reporter` once against `target`; bans the target at the threshold.
    fn report(
        &self,
        reporter: &str,
        target: &str,
    ) -> impl Future<Output = Result<ReportOutcome>> + Send;
    fn unban(&self, pseudonym: &str) -> impl Future<Output = Result<bool>> + Send;
    /// Forgets everything (admin reset).
    fn reset(&self) -> impl Future<Output = Result<()>> + Send;
    /// Records `session` (on `instance`) as the one live session of `pseudonym`, and returns
    /// the one it replaces, if any: one device, one session, whatever the number of sockets.
    fn claim(
        &self,
        pseudonym: &str,
        session: &str,
        instance: &str,
    ) -> impl Future<Output = Result<Option<LiveSession>>> + Send;
    /// Forgets `session` as `pseudonym`'s live session, unless another has replaced it since.
    fn release(&self, pseudonym: &str, session: &str) -> impl Future<Output = Result<()>> + Send;
    /// The live session of `pseudonym`, if any (to end it when the device is banned).
    fn live_session(
        &self,
        pseudonym: &str,
    ) -> impl Future<Output = Result<Option<LiveSession>>> + Send;
    /// Keeps `instance` alive for another heartbeat TTL, with its number of connected clients.
    /// Answers whether the store still knew the instance: false on the first beat, and after
    /// the store lost its data (a Redis restarted without persistence) or let the instance
    /// expire (an outage longer than the TTL): then its waiting tickets may be gone, or swept
    /// as a dead instance's, and its waiting sessions must join again.
    fn heartbeat(&self, instance: &str, online: u64) -> impl Future<Output = Result<bool>> + Send;
    /// An instance stopping cleanly: its heartbeat and its tickets go at once.
    fn retire(&self, instance: &str) -> impl Future<Output = Result<()>> + Send;
    /// Online and waiting users across all live instances.
    fn stats(&self) -> impl Future<Output = Result<Stats>> + Send;
    /// Whether the store answers (readiness).
    fn ping(&self) -> impl Future<Output = Result<()>> + Send;
    /// Sends a payload to `instance`'s channel; answers how many listeners heard it (0: the
    /// instance is gone, whatever its heartbeat still says).
    fn publish(&self, instance: &str, payload: String) -> impl Future<Output = Result<u64>> + Send;
    /// The channel of `instance`: what other instances publish to it.
    fn subscribe(
        &self,
        instance: &str,
    ) -> impl Future<Output = Result<mpsc::Receiver<Inbox>>> + Send;
}

/// What arrives on an instance's channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbox {
    /// A payload another instance published.
    Payload(String),
    /// The channel is listened to (first, and again after [`Inbox::Lost`]): until then the
    /// instance counted as dead, so joins may have swept its waiting tickets.
    Listening,
    /// The channel was lost (the connection to the store dropped).
    Lost,
}

/// The UTC day number, for daily counts.
pub fn day(now_unix: i64) -> i64 {
    now_unix.div_euclid(86_400)
}
