//! One session after its handshake, as a state machine without I/O: idle, queued, matched.
//!
//! [`Machine::handle`] takes an [`Input`] (a client's frame, an envelope routed to it, what the
//! store answered, a timer, the end of the connection) and the time, and returns the
//! [`Output`]s: frames to send, envelopes to route, store operations, counters, a close. The
//! driver (`session/mod.rs`) does the awaiting and feeds each store answer back at once, so
//! races — a cancel against a match, a block or an expiry during a match — are plain unit
//! tests here. Randomness, the wall clock and the receipts' cryptography come from an [`Env`].

use std::time::{Duration, Instant};

use anonchat_protocol::rendezvous::{
    ClientMessage, ErrorCode, IceServer, PartnerInfo, Profile, Role, ServerMessage, Transport,
    Want, parse_client,
};
use anonchat_protocol::signaling::{SignalBudget, SignalLimits};
use anonchat_protocol::token::Gender;

use super::super::route::Envelope;
use crate::matcher;
use crate::secrets::Receipt;
use crate::store::{JoinOutcome, LiveSession, Rejoin, Rematch, ReportOutcome, StoreError, Ticket};

/// Close codes: policy violation (refused, ended), going away (shutdown).
pub const CLOSE_POLICY: u16 = 1008;
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// A waiting ticket looks again at those behind it after [`Settings::look_again_after`], then
/// twice as long each time, at most every minute: a bounded scan never leaves two compatible
/// people waiting for each other for good, and a long queue does not spend Redis on it.
const LOOK_AGAIN_MAX: Duration = Duration::from_secs(60);

/// How long a waiting ticket that the queue no longer holds waits for the match that took it
/// (an envelope already on its way) before it joins again: the queue may have lost it.
const GONE_GRACE: Duration = Duration::from_secs(5);

/// How long a match made on this side waits for the partner's session to take it before it is
/// undone (cross-instance, it takes two pub/sub hops: milliseconds).
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(3);

/// What a client is told to wait when the store does not answer.
pub const STORE_RETRY_AFTER_SECONDS: u64 = 2;

/// The refusal of what the store could not answer (a join, a login): `unavailable`, with when
/// to try again.
pub fn store_unavailable(what: &str) -> ServerMessage {
    ServerMessage::Error {
        code: ErrorCode::Unavailable,
        message: format!("the matchmaker is unavailable; {what} again in a moment"),
        retry_after: Some(STORE_RETRY_AFTER_SECONDS),
        field: None,
    }
}

/// What the machine needs from the world besides time.
pub trait Env {
    /// A fresh random id (a match's).
    fn new_id(&mut self) -> String;
    /// `d` to `2d`, at random: people who queued together must not all look again at once
    /// (the bench's 5,000 waiting users did, and joins' p99 went from 1.4 to 4 ms for it).
    fn jitter(&mut self, d: Duration) -> Duration;
    /// Wall-clock milliseconds, for tickets.
    fn now_ms(&self) -> u64;
    fn seal(&self, receipt: &Receipt) -> String;
    /// Opens a receipt this session holds; the error says why it is refused.
    fn open(&self, receipt: &str, holder: &str) -> Result<Receipt, String>;
    fn ice_servers(&self) -> Vec<IceServer>;
}

/// The service's settings a session follows.
#[derive(Debug, Clone)]
pub struct Settings {
    pub signal_limits: SignalLimits,
    pub look_again_after: Duration,
    /// How long a ban lasts (what a banned session is told to wait).
    pub ban: Duration,
}

/// Who is on the other end (from the handshake).
#[derive(Debug, Clone)]
pub struct Identity {
    pub pseudonym: String,
    pub gender: Gender,
}

#[derive(Debug)]
pub enum Input {
    /// A text frame from the client.
    Text(String),
    /// A binary frame (not part of the protocol).
    Binary,
    /// A frame past the per-second limit.
    TooFast,
    Envelope(Envelope),
    Joined {
        ticket: Ticket,
        outcome: Result<JoinOutcome, StoreError>,
    },
    Rematched(Result<Rematch, StoreError>),
    Rejoined(Result<Rejoin, StoreError>),
    Reported {
        target: String,
        outcome: Result<ReportOutcome, StoreError>,
    },
    Blocked {
        match_id: String,
        outcome: Result<(), StoreError>,
    },
    /// The live session of a device this session's report banned.
    LiveSession(Option<LiveSession>),
    /// Whether the partner's side heard of the match ([`Op::Hand`]).
    Handed {
        heard: bool,
    },
    /// The store forgot this instance (it restarted, or was out of reach for longer than the
    /// heartbeat TTL): a waiting ticket may be gone, and joins again.
    StoreForgot,
    /// Time passed (see [`Machine::next_timeout`]).
    Timeout,
    /// The token lapsed.
    Lapsed,
    ShuttingDown,
    /// No frame for too long.
    Idle,
    /// The connection is over: leave the queue or the match.
    Closed,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Send(ServerMessage),
    Route {
        instance: String,
        envelope: Envelope,
    },
    Store(Op),
    Count(Count),
    /// Close the connection with this code and reason, after the frames before it.
    Close {
        code: u16,
        reason: &'static str,
    },
}

/// A store operation (or a delivery that must be answered); the driver hands its answer back
/// as the matching [`Input`], if any.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Answered by [`Input::Joined`].
    Join { ticket: Ticket, now_ms: u64 },
    /// Answered by [`Input::Rejoined`].
    Rejoin { ticket: Ticket, now_ms: u64 },
    /// Answered by [`Input::Rematched`].
    Rematch {
        ticket: Ticket,
        look: usize,
        now_ms: u64,
    },
    /// Not answered.
    Cancel,
    /// Undoes a match that did not stand, with `partner` (see `Store::undo`). Not answered.
    Undo {
        partner: String,
        partner_session: String,
        now_ms: u64,
    },
    /// Answered by [`Input::Reported`].
    Report { target: String },
    /// Answered by [`Input::Blocked`].
    Block { target: String, match_id: String },
    /// Answered by [`Input::LiveSession`].
    LiveSessionOf { pseudonym: String },
    /// Routes a match to the partner's session and answers [`Input::Handed`]: whether anyone
    /// heard it (an instance that died still has tickets in the queue for a few seconds).
    Hand {
        instance: String,
        envelope: Envelope,
    },
}

/// Counters beside the `errors` one, which the driver counts from every error frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Match,
    SignalForwarded,
    NotSignaling(&'static str),
    Report,
    Ban,
    /// A match undone because the partner's side did not hear of it or did not take it.
    Unreachable,
}

#[derive(Debug)]
struct Waiting {
    ticket: Ticket,
    /// When to look again (none while a join again is on its way to the store).
    next: Option<Instant>,
    every: Duration,
    /// Looks taken so far: each one looks at the next slice of the queue behind this ticket.
    looks: usize,
    /// The next look joins again: the queue may have lost the ticket.
    rejoin: bool,
    /// The ticket was queued again: a match that reaches it by envelope (for the first one)
    /// takes the second out of the queue.
    rejoined: bool,
}

/// A match made on this side, until the partner's side has heard of it.
#[derive(Debug)]
struct Handing {
    /// What this side's client is told once the partner's side heard.
    matched: ServerMessage,
    made: Match,
    /// This side's ticket, to join again with if nobody heard.
    ticket: Ticket,
    /// Until when it waits for the partner's session to accept, once its instance heard.
    deadline: Option<Instant>,
    /// The partner's pseudonym, to undo the match by.
    partner: String,
}

#[derive(Debug)]
struct Match {
    id: String,
    partner_session: String,
    partner_instance: String,
    started: Instant,
    budget: SignalBudget,
}

#[derive(Debug)]
enum Phase {
    Idle,
    Queued(Box<Waiting>),
    Handing(Box<Handing>),
    Matched(Box<Match>),
}

pub struct Machine {
    session: String,
    instance: String,
    me: Identity,
    settings: Settings,
    phase: Phase,
}

/// The outputs of one input, built in order.
#[derive(Default)]
struct Out(Vec<Output>);

impl Out {
    fn send(&mut self, msg: ServerMessage) {
        self.0.push(Output::Send(msg));
    }
    fn error(&mut self, code: ErrorCode, message: impl Into<String>) {
        self.send(ServerMessage::error(code, message));
    }
    fn route(&mut self, instance: &str, envelope: Envelope) {
        self.0.push(Output::Route {
            instance: instance.to_owned(),
            envelope,
        });
    }
    fn store(&mut self, op: Op) {
        self.0.push(Output::Store(op));
    }
    fn count(&mut self, c: Count) {
        self.0.push(Output::Count(c));
    }
    /// Says why in an `error` frame, then closes.
    fn end(
        &mut self,
        code: ErrorCode,
        message: impl Into<String>,
        retry_after: Option<u64>,
        close: u16,
    ) {
        self.send(ServerMessage::Error {
            code,
            message: message.into(),
            retry_after,
            field: None,
        });
        self.0.push(Output::Close {
            code: close,
            reason: code.as_str(),
        });
    }
}

impl Machine {
    pub fn new(session: String, instance: String, me: Identity, settings: Settings) -> Self {
        Machine {
            session,
            instance,
            me,
            settings,
            phase: Phase::Idle,
        }
    }

    pub fn session(&self) -> &str {
        &self.session
    }

    pub fn pseudonym(&self) -> &str {
        &self.me.pseudonym
    }

    /// When the machine next wants [`Input::Timeout`]: a waiting ticket's next look.
    pub fn next_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Queued(w) => w.next,
            Phase::Handing(h) => h.deadline,
            _ => None,
        }
    }

    pub fn handle(&mut self, input: Input, now: Instant, env: &mut impl Env) -> Vec<Output> {
        let mut out = Out::default();
        match input {
            Input::Text(text) => match parse_client(&text) {
                Ok(msg) => self.on_frame(msg, now, env, &mut out),
                Err(e) => out.error(ErrorCode::BadMessage, e.to_string()),
            },
            Input::Binary => out.error(
                ErrorCode::BadMessage,
                "binary frames are not part of the protocol",
            ),
            Input::TooFast => out.error(ErrorCode::RateLimited, "too many frames; slow down"),
            Input::Envelope(envelope) => self.on_envelope(envelope, now, env, &mut out),
            Input::Joined { ticket, outcome } => self.joined(ticket, outcome, now, env, &mut out),
            Input::Rematched(outcome) => self.rematched(outcome, now, env, &mut out),
            Input::Reported { target, outcome } => match outcome {
                Ok(outcome) => {
                    out.count(Count::Report);
                    if outcome.banned {
                        // The device just banned loses its open session at once.
                        out.count(Count::Ban);
                        out.store(Op::LiveSessionOf { pseudonym: target });
                    }
                    out.send(ServerMessage::Reported {});
                }
                Err(_) => out.error(
                    ErrorCode::Internal,
                    "could not record the report; try again",
                ),
            },
            Input::LiveSession(Some(live)) => out.route(
                &live.instance,
                Envelope::Ended {
                    to: live.session,
                    code: ErrorCode::Banned,
                    message: "this device was reported by several people and is banned for now"
                        .into(),
                    retry_after: Some(self.settings.ban.as_secs()),
                },
            ),
            Input::LiveSession(None) => {}
            Input::Handed { heard } => self.handed(heard, now, env, &mut out),
            Input::StoreForgot => {
                if let Phase::Queued(w) = &mut self.phase {
                    w.rejoin = false;
                    out.store(Op::Rejoin {
                        ticket: w.ticket.clone(),
                        now_ms: env.now_ms(),
                    });
                }
            }
            Input::Rejoined(outcome) => self.rejoined(outcome, now, env, &mut out),
            Input::Blocked { match_id, outcome } => match outcome {
                Err(_) => out.error(ErrorCode::Internal, "could not record the block; try again"),
                Ok(()) => {
                    // Blocking the current partner ends the match.
                    self.leave_if(|m| m.id == match_id, &mut out);
                    out.send(ServerMessage::Blocked {});
                }
            },
            Input::Timeout => {
                // Never accepted: undone, and the partner told in case it still comes.
                if let Some(h) = self.take_handing(|h| h.deadline.is_some_and(|at| now >= at)) {
                    Self::tell_partner_left(&h.made, &mut out);
                    self.undo(h, env, &mut out);
                } else {
                    self.look_again(now, env, &mut out);
                }
            }
            Input::Lapsed => out.end(
                ErrorCode::TokenExpired,
                "your verification has expired; verify again",
                None,
                CLOSE_POLICY,
            ),
            Input::ShuttingDown => {
                // A chat goes on peer to peer without this server: its partner is not told the
                // chat ended (it would close it), only this side's server connection ends. (A
                // set-up still signaling fails on the partner's side by its own timeout.)
                if let Phase::Matched(_) | Phase::Handing(_) = self.phase {
                    self.phase = Phase::Idle;
                }
                out.end(
                    ErrorCode::ShuttingDown,
                    "the server is restarting; reconnect in a moment",
                    Some(1),
                    CLOSE_GOING_AWAY,
                )
            }
            Input::Idle => out.end(
                ErrorCode::Timeout,
                "no frame for too long",
                None,
                CLOSE_POLICY,
            ),
            Input::Closed => match std::mem::replace(&mut self.phase, Phase::Idle) {
                Phase::Queued(_) => out.store(Op::Cancel),
                Phase::Matched(m) => Self::tell_partner_left(&m, &mut out),
                Phase::Handing(h) => Self::tell_partner_left(&h.made, &mut out),
                Phase::Idle => {}
            },
        }
        out.0
    }

    fn on_frame(&mut self, msg: ClientMessage, now: Instant, env: &mut impl Env, out: &mut Out) {
        match msg {
            ClientMessage::Hello { .. } => {
                out.error(ErrorCode::BadMessage, "already authenticated")
            }
            ClientMessage::Join {
                profile,
                want,
                interests,
                transports,
            } => self.join(profile, want, interests, transports, env, out),
            ClientMessage::Signal { match_id, data } => self.signal(match_id, data, now, out),
            ClientMessage::Leave { match_id } => {
                if !self.leave_if(|m| m.id == match_id, out) {
                    out.error(ErrorCode::NotInMatch, "no such match");
                }
            }
            ClientMessage::Cancel {} => match self.phase {
                Phase::Matched(_) => out.error(
                    ErrorCode::NotInMatch,
                    "you are in a match: leave it instead",
                ),
                _ => {
                    match std::mem::replace(&mut self.phase, Phase::Idle) {
                        Phase::Queued(_) => out.store(Op::Cancel),
                        // A match its client has not heard of yet: the partner is told, and
                        // it leaves no trace.
                        Phase::Handing(h) => {
                            Self::tell_partner_left(&h.made, out);
                            Self::forget_match(&h, env, out);
                        }
                        Phase::Idle | Phase::Matched(_) => {}
                    }
                    // A match racing with the cancel finds the session idle and is bounced.
                    out.send(ServerMessage::Cancelled {});
                }
            },
            ClientMessage::Report { receipt, reason: _ } => {
                match env.open(&receipt, &self.me.pseudonym) {
                    Ok(r) => out.store(Op::Report { target: r.partner }),
                    Err(e) => out.error(ErrorCode::InvalidReceipt, e),
                }
            }
            ClientMessage::Block { receipt } => match env.open(&receipt, &self.me.pseudonym) {
                Ok(r) => out.store(Op::Block {
                    target: r.partner,
                    match_id: r.match_id,
                }),
                Err(e) => out.error(ErrorCode::InvalidReceipt, e),
            },
        }
    }

    /// Leaves the current match if `which` holds for it, telling the partner; whether it did.
    fn leave_if(&mut self, which: impl Fn(&Match) -> bool, out: &mut Out) -> bool {
        if !matches!(&self.phase, Phase::Matched(m) if which(m)) {
            return false;
        }
        if let Phase::Matched(m) = std::mem::replace(&mut self.phase, Phase::Idle) {
            Self::tell_partner_left(&m, out);
        }
        true
    }

    fn tell_partner_left(m: &Match, out: &mut Out) {
        let envelope = Envelope::PartnerLeft {
            to: m.partner_session.clone(),
            match_id: m.id.clone(),
        };
        out.route(&m.partner_instance, envelope);
    }

    fn join(
        &mut self,
        profile: Profile,
        want: Want,
        interests: Vec<String>,
        transports: Vec<Transport>,
        env: &mut impl Env,
        out: &mut Out,
    ) {
        // (A match its client has not heard of yet is, to the client, still waiting.)
        if matches!(self.phase, Phase::Queued(_) | Phase::Handing(_)) {
            return out.error(ErrorCode::AlreadyQueued, "already waiting for a match");
        }
        // Joining again from a match is "next": the partner is told.
        self.leave_if(|_| true, out);
        let invalid = |message: String, field: &str| ServerMessage::Error {
            code: ErrorCode::InvalidProfile,
            message,
            retry_after: None,
            field: Some(field.into()),
        };
        let profile = match crate::profile::validate(&profile) {
            Ok(p) => p,
            Err(e) => return out.send(invalid(e.to_string(), e.field)),
        };
        if self.me.gender == Gender::Undisclosed && want != Want::Any {
            let why = "with an undisclosed gender, you can only look for anyone";
            return out.send(invalid(why.into(), "want"));
        }
        let mut seen = std::collections::HashSet::new();
        let interests: Vec<String> = interests
            .iter()
            .map(|i| matcher::normalise(i))
            .filter(|i| !i.is_empty() && seen.insert(i.clone()))
            .collect();
        let ticket = Ticket {
            session: self.session.clone(),
            instance: self.instance.clone(),
            pseudonym: self.me.pseudonym.clone(),
            gender: self.me.gender,
            want,
            interests,
            nickname: profile.nickname,
            bio: profile.bio,
            transports,
        };
        out.store(Op::Join {
            ticket,
            now_ms: env.now_ms(),
        });
    }

    fn joined(
        &mut self,
        ticket: Ticket,
        outcome: Result<JoinOutcome, StoreError>,
        now: Instant,
        env: &mut impl Env,
        out: &mut Out,
    ) {
        // A waiting session that joined again (its queue was lost) says nothing new to its
        // client unless the outcome is news.
        let again = matches!(self.phase, Phase::Queued(_));
        match outcome {
            Ok(JoinOutcome::Queued { waiting }) => {
                let every = self.settings.look_again_after;
                self.phase = Phase::Queued(Box::new(Waiting {
                    ticket,
                    next: Some(now + env.jitter(every)),
                    every,
                    looks: 0,
                    rejoin: false,
                    rejoined: again,
                }));
                if !again {
                    out.send(ServerMessage::Queued { waiting });
                }
            }
            Ok(JoinOutcome::Matched {
                partner,
                common_interests,
            }) => self.make_match(ticket, partner, common_interests, now, env, out),
            Ok(JoinOutcome::Banned { retry_after }) => {
                self.phase = Phase::Idle;
                out.end(
                    ErrorCode::Banned,
                    "this device is banned for now",
                    Some(retry_after),
                    CLOSE_POLICY,
                )
            }
            Ok(JoinOutcome::DailyLimit) => {
                self.phase = Phase::Idle;
                out.error(
                    ErrorCode::DailyLimit,
                    "today's matches are used up; come back tomorrow",
                )
            }
            Err(e) => {
                // Debug only: in an outage every join fails at once; the Redis handle logs
                // the outage once and `errors{code="unavailable"}` counts the refusals.
                tracing::debug!(error = %e, "join failed");
                out.send(store_unavailable("join"));
            }
        }
    }

    /// A queued session, when its time comes, looks again among those who joined after it.
    fn look_again(&mut self, now: Instant, env: &mut impl Env, out: &mut Out) {
        let Phase::Queued(w) = &mut self.phase else {
            return;
        };
        if w.next.is_none_or(|at| now < at) {
            return;
        }
        if w.rejoin {
            w.rejoin = false;
            w.next = None;
            return out.store(Op::Rejoin {
                ticket: w.ticket.clone(),
                now_ms: env.now_ms(),
            });
        }
        let look = w.looks;
        w.looks += 1;
        out.store(Op::Rematch {
            ticket: w.ticket.clone(),
            look,
            now_ms: env.now_ms(),
        });
    }

    fn rematched(
        &mut self,
        outcome: Result<Rematch, StoreError>,
        now: Instant,
        env: &mut impl Env,
        out: &mut Out,
    ) {
        let Phase::Queued(w) = &mut self.phase else {
            return;
        };
        match outcome {
            Ok(Rematch::Matched {
                partner,
                common_interests,
            }) => {
                let Phase::Queued(w) = std::mem::replace(&mut self.phase, Phase::Idle) else {
                    return;
                };
                self.make_match(w.ticket, partner, common_interests, now, env, out);
            }
            // Matched by someone else (the envelope is on its way), or lost by the store: if
            // no match arrives meanwhile, it joins again.
            Ok(Rematch::Gone) => {
                w.rejoin = true;
                w.next = Some(now + GONE_GRACE);
            }
            Ok(Rematch::StillWaiting) | Err(_) => {
                w.every = (w.every * 2).min(LOOK_AGAIN_MAX);
                w.next = Some(now + env.jitter(w.every));
            }
        }
    }

    /// What a join again found: the ticket still queued (looks go on), taken by a partner (the
    /// match is on its way: wait for it, and ask again if it never comes), or lost and joined
    /// again.
    fn rejoined(
        &mut self,
        outcome: Result<Rejoin, StoreError>,
        now: Instant,
        env: &mut impl Env,
        out: &mut Out,
    ) {
        let Phase::Queued(w) = &mut self.phase else {
            return;
        };
        match outcome {
            Ok(Rejoin::StillWaiting) => w.next = Some(now + env.jitter(w.every)),
            Ok(Rejoin::Taken) => {
                w.rejoin = true;
                w.next = Some(now + GONE_GRACE);
            }
            Ok(Rejoin::Joined(joined)) => {
                w.rejoined = true;
                let ticket = w.ticket.clone();
                self.joined(ticket, Ok(joined), now, env, out);
            }
            Err(e) => {
                tracing::debug!(error = %e, "join again failed");
                w.rejoin = true;
                w.next = Some(now + env.jitter(self.settings.look_again_after));
            }
        }
    }

    /// This side found `partner` waiting: both get `matched`, each with a receipt naming the
    /// other that only the server can open. The one who waited makes the offer.
    fn make_match(
        &mut self,
        mine: Ticket,
        partner: Ticket,
        common: Vec<String>,
        now: Instant,
        env: &mut impl Env,
        out: &mut Out,
    ) {
        let match_id = env.new_id();
        let issued = i64::try_from(env.now_ms() / 1000).unwrap_or(i64::MAX);
        let seal = |holder: &str, other: &str| {
            env.seal(&Receipt {
                match_id: match_id.clone(),
                holder: holder.into(),
                partner: other.into(),
                issued,
            })
        };
        let (my_receipt, their_receipt) = (
            seal(&mine.pseudonym, &partner.pseudonym),
            seal(&partner.pseudonym, &mine.pseudonym),
        );
        let both_libp2p = mine.transports.contains(&Transport::Libp2p)
            && partner.transports.contains(&Transport::Libp2p);
        let transport = if both_libp2p {
            Transport::Libp2p
        } else {
            Transport::Webrtc
        };
        let info = |t: &Ticket| PartnerInfo {
            nickname: t.nickname.clone(),
            bio: t.bio.clone(),
            gender: t.gender.as_str().into(),
            common_interests: common.clone(),
        };
        let to_partner = Envelope::Matched {
            to: partner.session.clone(),
            match_id: match_id.clone(),
            role: Role::Offerer,
            partner: info(&mine),
            receipt: their_receipt,
            transport,
            partner_session: self.session.clone(),
            partner_instance: self.instance.clone(),
            made_ms: env.now_ms(),
        };
        let matched = ServerMessage::Matched {
            match_id: match_id.clone(),
            role: Role::Answerer,
            partner: info(&partner),
            receipt: my_receipt,
            transport,
            ice_servers: env.ice_servers(),
        };
        out.store(Op::Hand {
            instance: partner.instance.clone(),
            envelope: to_partner,
        });
        self.phase = Phase::Handing(Box::new(Handing {
            matched,
            made: Match {
                id: match_id,
                partner_session: partner.session,
                partner_instance: partner.instance,
                started: now,
                budget: SignalBudget::default(),
            },
            ticket: mine,
            deadline: None,
            partner: partner.pseudonym,
        }));
    }

    /// The partner's instance heard of the match (now its session accepts it, or leaves, or
    /// the wait runs out) or did not (its instance is gone: the match is undone).
    fn handed(&mut self, heard: bool, now: Instant, env: &mut impl Env, out: &mut Out) {
        if heard {
            if let Phase::Handing(h) = &mut self.phase {
                h.deadline = Some(now + ACCEPT_TIMEOUT);
            }
        } else if let Some(h) = self.take_handing(|_| true) {
            self.undo(h, env, out);
        }
    }

    /// The match being handed over, if `which` holds for it; the session is idle after.
    fn take_handing(&mut self, which: impl Fn(&Handing) -> bool) -> Option<Box<Handing>> {
        if !matches!(&self.phase, Phase::Handing(h) if which(h)) {
            return None;
        }
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Handing(h) => Some(h),
            _ => None,
        }
    }

    /// A match this side made that the partner's side did not take: this side joins again,
    /// and its client never hears of it; the store forgets the match (the partner's ticket is
    /// free to join again at once, not "taken" for a while).
    fn undo(&mut self, handing: Box<Handing>, env: &mut impl Env, out: &mut Out) {
        out.count(Count::Unreachable);
        Self::forget_match(&handing, env, out);
        out.store(Op::Join {
            ticket: handing.ticket,
            now_ms: env.now_ms(),
        });
    }

    /// The store forgets a match that did not stand (see `Store::undo`).
    fn forget_match(handing: &Handing, env: &mut impl Env, out: &mut Out) {
        out.store(Op::Undo {
            partner: handing.partner.clone(),
            partner_session: handing.made.partner_session.clone(),
            now_ms: env.now_ms(),
        });
    }

    /// The partner's session took the match: this side's client is told now, so the offer it
    /// will get has a match to go to.
    fn accepted(&mut self, match_id: &str, out: &mut Out) {
        if let Some(h) = self.take_handing(|h| h.made.id == match_id) {
            out.count(Count::Match);
            out.send(h.matched);
            self.phase = Phase::Matched(Box::new(h.made));
        }
    }

    fn on_envelope(&mut self, envelope: Envelope, now: Instant, env: &mut impl Env, out: &mut Out) {
        match envelope {
            Envelope::Matched {
                match_id,
                role,
                partner,
                receipt,
                transport,
                partner_session,
                partner_instance,
                made_ms,
                ..
            } => {
                let stale = made_ms != 0
                    && env.now_ms() > made_ms.saturating_add(ACCEPT_TIMEOUT.as_millis() as u64);
                let Phase::Queued(w) = &self.phase else {
                    // Cancelled or gone meanwhile: the other side must not wait for us.
                    let back = Envelope::PartnerLeft {
                        to: partner_session,
                        match_id,
                    };
                    return out.route(&partner_instance, back);
                };
                if stale {
                    // Its maker gave up on it already (and told us so, on the same route).
                    return;
                }
                if w.rejoined {
                    // The match took the first ticket: the second must not match again.
                    out.store(Op::Cancel);
                }
                let accepted = Envelope::Accepted {
                    to: partner_session.clone(),
                    match_id: match_id.clone(),
                };
                out.route(&partner_instance, accepted);
                self.phase = Phase::Matched(Box::new(Match {
                    id: match_id.clone(),
                    partner_session,
                    partner_instance,
                    started: now,
                    budget: SignalBudget::default(),
                }));
                out.send(ServerMessage::Matched {
                    match_id,
                    role,
                    partner,
                    receipt,
                    transport,
                    ice_servers: env.ice_servers(),
                });
            }
            Envelope::Signal { match_id, data, .. } => {
                if matches!(&self.phase, Phase::Matched(m) if m.id == match_id) {
                    out.send(ServerMessage::Signal { match_id, data });
                }
            }
            Envelope::Accepted { match_id, .. } => self.accepted(&match_id, out),
            Envelope::PartnerLeft { match_id, .. } => match &self.phase {
                Phase::Matched(m) if m.id == match_id => {
                    self.phase = Phase::Idle;
                    out.send(ServerMessage::PartnerLeft { match_id });
                }
                // Left (or cancelled) before taking the match: undone, never told.
                Phase::Handing(h) if h.made.id == match_id => {
                    if let Some(h) = self.take_handing(|_| true) {
                        self.undo(h, env, out);
                    }
                }
                _ => {}
            },
            Envelope::Ended {
                code,
                message,
                retry_after,
                ..
            } => out.end(code, message, retry_after, CLOSE_POLICY),
        }
    }

    /// Relays a payload to the partner only if it is signaling, within the budget and window.
    fn signal(&mut self, match_id: String, data: serde_json::Value, now: Instant, out: &mut Out) {
        let Phase::Matched(m) = &mut self.phase else {
            return out.error(ErrorCode::NotInMatch, "not in a match");
        };
        if m.id != match_id {
            return out.error(ErrorCode::NotInMatch, "not your current match");
        }
        let age = now.saturating_duration_since(m.started);
        match m.budget.admit(&data, age, &self.settings.signal_limits) {
            Ok(signal) => match serde_json::to_value(signal) {
                Ok(data) => {
                    // Only what was validated travels on, re-encoded.
                    let envelope = Envelope::Signal {
                        to: m.partner_session.clone(),
                        match_id,
                        data,
                    };
                    let instance = m.partner_instance.clone();
                    out.count(Count::SignalForwarded);
                    out.route(&instance, envelope);
                }
                Err(e) => out.error(ErrorCode::Internal, e.to_string()),
            },
            Err(refusal) => {
                out.count(Count::NotSignaling(refusal.label()));
                out.error(ErrorCode::NotSignaling, refusal.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ReportOutcome;

    /// Ids counted from 1, no jitter, a fixed clock, and receipts sealed as plain JSON.
    struct TestEnv {
        ids: u32,
    }

    impl Env for TestEnv {
        fn new_id(&mut self) -> String {
            self.ids += 1;
            format!("id{}", self.ids)
        }
        fn jitter(&mut self, d: Duration) -> Duration {
            d
        }
        fn now_ms(&self) -> u64 {
            1_000_000
        }
        fn seal(&self, receipt: &Receipt) -> String {
            serde_json::to_string(receipt).unwrap()
        }
        fn open(&self, receipt: &str, holder: &str) -> Result<Receipt, String> {
            let r: Receipt = serde_json::from_str(receipt).map_err(|e| e.to_string())?;
            if r.holder != holder {
                return Err("not yours".into());
            }
            Ok(r)
        }
        fn ice_servers(&self) -> Vec<IceServer> {
            Vec::new()
        }
    }

    const AFTER: Duration = Duration::from_secs(5);

    struct Rig {
        machine: Machine,
        env: TestEnv,
        t0: Instant,
    }

    impl Rig {
        fn new() -> Rig {
            let me = Identity {
                pseudonym: "me".into(),
                gender: Gender::Male,
            };
            let settings = Settings {
                signal_limits: SignalLimits::default(),
                look_again_after: AFTER,
                ban: Duration::from_secs(600),
            };
            Rig {
                machine: Machine::new("s-me".into(), "here".into(), me, settings),
                env: TestEnv { ids: 0 },
                t0: Instant::now(),
            }
        }

        fn at(&mut self, input: Input, secs: u64) -> Vec<Output> {
            let now = self.t0 + Duration::from_secs(secs);
            self.machine.handle(input, now, &mut self.env)
        }

        fn text(&mut self, json: serde_json::Value) -> Vec<Output> {
            self.at(Input::Text(json.to_string()), 0)
        }

        /// Joins and gets queued; returns the ticket.
        fn queue(&mut self) -> Ticket {
            let out = self.text(serde_json::json!({"type": "join", "profile": {"nickname": "Sam", "bio": "likes long walks"}, "want": "any", "interests": [" Jazz ", "jazz"]}));
            let [Output::Store(Op::Join { ticket, .. })] = out.as_slice() else {
                panic!("{out:?}");
            };
            assert_eq!(ticket.interests, vec!["jazz"], "normalised, once");
            let ticket = ticket.clone();
            let out = self.at(
                Input::Joined {
                    ticket: ticket.clone(),
                    outcome: Ok(JoinOutcome::Queued { waiting: 1 }),
                },
                0,
            );
            assert_eq!(
                out,
                vec![Output::Send(ServerMessage::Queued { waiting: 1 })]
            );
            ticket
        }

        /// Looks again (at `at` s) and finds `partner`, whose ticket is `mine`'s but for its
        /// session, instance and pseudonym; what the machine answers.
        fn finds(&mut self, mine: &Ticket, who: (&str, &str, &str), at: u64) -> Vec<Output> {
            let (session, instance, pseudonym) = who;
            self.at(Input::Timeout, at);
            let partner = Ticket {
                session: session.into(),
                instance: instance.into(),
                pseudonym: pseudonym.into(),
                ..mine.clone()
            };
            let found = Rematch::Matched {
                partner,
                common_interests: vec!["jazz".into()],
            };
            self.at(Input::Rematched(Ok(found)), at)
        }

        /// Queued, then matched by a partner's instance; returns the match id.
        fn matched(&mut self) -> String {
            self.queue();
            let out = self.at(Input::Envelope(matched_envelope("m1")), 0);
            assert!(
                matches!(
                    out.as_slice(),
                    [
                        Output::Route {
                            envelope: Envelope::Accepted { .. },
                            ..
                        },
                        Output::Send(ServerMessage::Matched { .. })
                    ]
                ),
                "{out:?}"
            );
            "m1".into()
        }
    }

    fn matched_envelope(match_id: &str) -> Envelope {
        Envelope::Matched {
            to: "s-me".into(),
            match_id: match_id.into(),
            role: Role::Offerer,
            partner: PartnerInfo {
                nickname: "Alex".into(),
                bio: String::new(),
                gender: "F".into(),
                common_interests: vec![],
            },
            receipt: serde_json::to_string(&Receipt {
                match_id: match_id.into(),
                holder: "me".into(),
                partner: "them".into(),
                issued: 1000,
            })
            .unwrap(),
            transport: Transport::Webrtc,
            partner_session: "s-them".into(),
            partner_instance: "there".into(),
            made_ms: 1_000_000,
        }
    }

    fn left(match_id: &str) -> Output {
        Output::Route {
            instance: "there".into(),
            envelope: Envelope::PartnerLeft {
                to: "s-them".into(),
                match_id: match_id.into(),
            },
        }
    }

    fn error_code(out: &[Output]) -> Option<ErrorCode> {
        out.iter().find_map(|o| match o {
            Output::Send(ServerMessage::Error { code, .. }) => Some(*code),
            _ => None,
        })
    }

    #[test]
    fn a_match_arriving_after_a_cancel_is_bounced_to_the_partner() {
        let mut rig = Rig::new();
        rig.queue();
        let out = rig.text(serde_json::json!({"type": "cancel"}));
        assert_eq!(
            out,
            vec![
                Output::Store(Op::Cancel),
                Output::Send(ServerMessage::Cancelled {})
            ]
        );
        let out = rig.at(Input::Envelope(matched_envelope("m1")), 0);
        assert_eq!(out, vec![left("m1")], "the partner must not wait for us");
        // And nothing of that match reaches the client later.
        let signal = Envelope::Signal {
            to: "s-me".into(),
            match_id: "m1".into(),
            data: serde_json::json!({}),
        };
        assert_eq!(rig.at(Input::Envelope(signal), 1), vec![]);
    }

    /// A match that arrives after its maker stopped waiting for the answer (a partition that
    /// healed, a slow route) is not taken: the session goes on waiting.
    #[test]
    fn a_stale_match_is_not_taken() {
        let mut rig = Rig::new();
        rig.queue();
        let Envelope::Matched {
            to,
            match_id,
            role,
            partner,
            receipt,
            transport,
            partner_session,
            partner_instance,
            ..
        } = matched_envelope("m1")
        else {
            unreachable!()
        };
        let stale = Envelope::Matched {
            to,
            match_id,
            role,
            partner,
            receipt,
            transport,
            partner_session,
            partner_instance,
            made_ms: 1_000_000 - ACCEPT_TIMEOUT.as_millis() as u64 - 1,
        };
        assert_eq!(rig.at(Input::Envelope(stale), 1), vec![]);
        assert!(rig.machine.next_timeout().is_some(), "still waiting");
        assert!(matches!(
            rig.at(Input::Envelope(matched_envelope("m2")), 1)
                .as_slice(),
            [
                Output::Route { .. },
                Output::Send(ServerMessage::Matched { .. })
            ]
        ));
    }

    #[test]
    fn blocking_the_partner_during_a_match_ends_it() {
        let mut rig = Rig::new();
        let id = rig.matched();
        let receipt = serde_json::to_string(&Receipt {
            match_id: id.clone(),
            holder: "me".into(),
            partner: "them".into(),
            issued: 1000,
        })
        .unwrap();
        let out = rig.text(serde_json::json!({"type": "block", "receipt": receipt}));
        assert_eq!(
            out,
            vec![Output::Store(Op::Block {
                target: "them".into(),
                match_id: id.clone()
            })]
        );
        let out = rig.at(
            Input::Blocked {
                match_id: id.clone(),
                outcome: Ok(()),
            },
            0,
        );
        assert_eq!(
            out,
            vec![left(&id), Output::Send(ServerMessage::Blocked {})]
        );
        let out = rig.text(serde_json::json!({"type": "signal", "match_id": id, "data": {}}));
        assert_eq!(error_code(&out), Some(ErrorCode::NotInMatch));
    }

    #[test]
    fn a_block_that_failed_keeps_the_match_and_says_so() {
        let mut rig = Rig::new();
        let id = rig.matched();
        let out = rig.at(
            Input::Blocked {
                match_id: id.clone(),
                outcome: Err(StoreError::Corrupt("down".into())),
            },
            0,
        );
        assert_eq!(error_code(&out), Some(ErrorCode::Internal));
        assert!(!out.contains(&left(&id)));
        let out = rig.at(Input::Closed, 1);
        assert_eq!(out, vec![left(&id)], "still in the match until the end");
    }

    /// A cancel while the partner's side has not yet accepted: the partner is told, the store
    /// forgets the match, and a late acceptance changes nothing.
    #[test]
    fn a_cancel_during_a_hand_over_frees_the_partner() {
        let mut rig = Rig::new();
        let ticket = rig.queue();
        rig.finds(&ticket, ("s-them", "there", "them"), 5);
        rig.at(Input::Handed { heard: true }, 5);
        let out = rig.text(serde_json::json!({"type": "join", "profile": {"nickname": "Sam", "bio": "likes long walks"}, "want": "any"}));
        assert_eq!(error_code(&out), Some(ErrorCode::AlreadyQueued));
        let out = rig.text(serde_json::json!({"type": "cancel"}));
        assert_eq!(
            out,
            vec![
                left("id1"),
                Output::Store(Op::Undo {
                    partner: "them".into(),
                    partner_session: "s-them".into(),
                    now_ms: 1_000_000
                }),
                Output::Send(ServerMessage::Cancelled {})
            ]
        );
        let late = Envelope::Accepted {
            to: "s-me".into(),
            match_id: "id1".into(),
        };
        assert!(rig.at(Input::Envelope(late), 6).is_empty());
    }

    #[test]
    fn a_restart_ends_the_connection_but_not_the_partners_chat() {
        let mut rig = Rig::new();
        rig.matched();
        let out = rig.at(Input::ShuttingDown, 1);
        assert_eq!(error_code(&out), Some(ErrorCode::ShuttingDown));
        assert!(
            !out.iter().any(|o| matches!(o, Output::Route { .. })),
            "{out:?}"
        );
        assert_eq!(rig.at(Input::Closed, 1), vec![], "nobody told partner_left");
        // A waiting ticket still leaves the queue.
        let mut waiting = Rig::new();
        waiting.queue();
        waiting.at(Input::ShuttingDown, 1);
        assert_eq!(
            waiting.at(Input::Closed, 1),
            vec![Output::Store(Op::Cancel)]
        );
    }

    #[test]
    fn a_token_lapsing_during_a_match_ends_the_session_and_frees_the_partner() {
        let mut rig = Rig::new();
        let id = rig.matched();
        let out = rig.at(Input::Lapsed, 30);
        assert_eq!(error_code(&out), Some(ErrorCode::TokenExpired));
        assert_eq!(
            out.last(),
            Some(&Output::Close {
                code: CLOSE_POLICY,
                reason: "token_expired"
            })
        );
        assert_eq!(rig.at(Input::Closed, 30), vec![left(&id)]);
        assert_eq!(rig.at(Input::Closed, 30), vec![], "told once");
    }

    #[test]
    fn a_waiting_ticket_looks_again_later_and_less_often() {
        let mut rig = Rig::new();
        let ticket = rig.queue();
        assert_eq!(rig.machine.next_timeout(), Some(rig.t0 + AFTER));
        assert_eq!(rig.at(Input::Timeout, 4), vec![], "not yet");
        let out = rig.at(Input::Timeout, 5);
        assert_eq!(
            out,
            vec![Output::Store(Op::Rematch {
                ticket: ticket.clone(),
                look: 0,
                now_ms: 1_000_000
            })]
        );
        assert!(
            rig.at(Input::Rematched(Ok(Rematch::StillWaiting)), 5)
                .is_empty()
        );
        assert_eq!(
            rig.machine.next_timeout(),
            Some(rig.t0 + Duration::from_secs(15)),
            "twice as long"
        );
        let out = rig.at(Input::Timeout, 15);
        assert!(matches!(
            out.as_slice(),
            [Output::Store(Op::Rematch { look: 1, .. })]
        ));
        // Someone else matched it: no more looks, and the match comes as an envelope.
        assert!(rig.at(Input::Rematched(Ok(Rematch::Gone)), 15).is_empty());
        let out = rig.at(Input::Envelope(matched_envelope("m2")), 16);
        assert!(matches!(
            out.as_slice(),
            [
                Output::Route {
                    envelope: Envelope::Accepted { .. },
                    ..
                },
                Output::Send(ServerMessage::Matched { .. })
            ]
        ));
        assert_eq!(rig.machine.next_timeout(), None);
    }

    #[test]
    fn a_ticket_the_queue_lost_joins_again_unless_its_match_arrives() {
        let mut rig = Rig::new();
        let ticket = rig.queue();
        rig.at(Input::Timeout, 5);
        assert!(rig.at(Input::Rematched(Ok(Rematch::Gone)), 5).is_empty());
        // The grace for a match on its way.
        assert_eq!(
            rig.machine.next_timeout(),
            Some(rig.t0 + AFTER + GONE_GRACE)
        );
        let rejoin = Output::Store(Op::Rejoin {
            ticket: ticket.clone(),
            now_ms: 1_000_000,
        });
        assert_eq!(rig.at(Input::Timeout, 10), vec![rejoin.clone()]);
        // A partner took it moments ago: the match is still on its way, so it waits again.
        assert!(rig.at(Input::Rejoined(Ok(Rejoin::Taken)), 10).is_empty());
        assert_eq!(
            rig.machine.next_timeout(),
            Some(rig.t0 + AFTER * 2 + GONE_GRACE)
        );
        assert_eq!(rig.at(Input::Timeout, 15), vec![rejoin]);
        // Lost after all: queued again without a word to the client, looking again as new.
        let queued = Rejoin::Joined(JoinOutcome::Queued { waiting: 3 });
        assert_eq!(rig.at(Input::Rejoined(Ok(queued)), 15), vec![]);
        assert_eq!(rig.machine.next_timeout(), Some(rig.t0 + AFTER * 4));
        // The first ticket's match arrives late after all: the second ticket leaves the queue.
        let out = rig.at(Input::Envelope(matched_envelope("m1")), 16);
        assert!(
            matches!(
                out.as_slice(),
                [
                    Output::Store(Op::Cancel),
                    Output::Route { .. },
                    Output::Send(ServerMessage::Matched { .. })
                ]
            ),
            "{out:?}"
        );
    }

    #[test]
    fn when_the_store_forgot_the_instance_a_waiting_session_joins_again() {
        let mut rig = Rig::new();
        let ticket = rig.queue();
        let rejoin = Output::Store(Op::Rejoin {
            ticket: ticket.clone(),
            now_ms: 1_000_000,
        });
        assert_eq!(rig.at(Input::StoreForgot, 1), vec![rejoin.clone()]);
        // The store is still down: it tries again at its next look, silently.
        let down = Err(StoreError::Corrupt("down".into()));
        assert_eq!(rig.at(Input::Rejoined(down), 1), vec![]);
        assert_eq!(rig.at(Input::Timeout, 6), vec![rejoin.clone()]);
        // The ticket was there all along: nothing changes.
        assert_eq!(rig.at(Input::Rejoined(Ok(Rejoin::StillWaiting)), 6), vec![]);
        assert_eq!(
            rig.machine.next_timeout(),
            Some(rig.t0 + Duration::from_secs(6) + AFTER)
        );
        // Lost, and this time the join matches.
        assert_eq!(rig.at(Input::StoreForgot, 7), vec![rejoin]);
        let partner = Ticket {
            session: "s-them".into(),
            instance: "there".into(),
            pseudonym: "them".into(),
            ..ticket.clone()
        };
        let matched = Rejoin::Joined(JoinOutcome::Matched {
            partner,
            common_interests: vec![],
        });
        let out = rig.at(Input::Rejoined(Ok(matched)), 7);
        assert!(matches!(out.as_slice(), [Output::Store(Op::Hand { .. })]));
        // A session that is not waiting has nothing to join again.
        let mut idle = Rig::new();
        assert_eq!(idle.at(Input::StoreForgot, 0), vec![]);
    }

    #[test]
    fn a_join_the_store_cannot_answer_is_unavailable_with_a_retry_after() {
        let mut rig = Rig::new();
        let out = rig.text(serde_json::json!({"type": "join", "profile": {"nickname": "Sam", "bio": "likes long walks"}, "want": "any"}));
        let [Output::Store(Op::Join { ticket, .. })] = out.as_slice() else {
            panic!("{out:?}");
        };
        let out = rig.at(
            Input::Joined {
                ticket: ticket.clone(),
                outcome: Err(StoreError::Corrupt("down".into())),
            },
            0,
        );
        let [
            Output::Send(ServerMessage::Error {
                code: ErrorCode::Unavailable,
                retry_after: Some(STORE_RETRY_AFTER_SECONDS),
                ..
            }),
        ] = out.as_slice()
        else {
            panic!("{out:?}");
        };
        assert_eq!(rig.machine.next_timeout(), None, "not waiting");
    }

    #[test]
    fn a_match_nobody_hears_is_undone_and_this_side_joins_again() {
        let mut rig = Rig::new();
        let ticket = rig.queue();
        let out = rig.finds(&ticket, ("s-ghost", "dead", "ghost"), 5);
        let [Output::Store(Op::Hand { instance, .. })] = out.as_slice() else {
            panic!("{out:?}");
        };
        assert_eq!(instance, "dead");
        let out = rig.at(Input::Handed { heard: false }, 5);
        assert_eq!(
            out,
            vec![
                Output::Count(Count::Unreachable),
                Output::Store(Op::Undo {
                    partner: "ghost".into(),
                    partner_session: "s-ghost".into(),
                    now_ms: 1_000_000
                }),
                Output::Store(Op::Join {
                    ticket: ticket.clone(),
                    now_ms: 1_000_000
                })
            ],
            "the client never hears of it"
        );
        let out = rig.text(serde_json::json!({"type": "signal", "match_id": "id1", "data": {}}));
        assert_eq!(error_code(&out), Some(ErrorCode::NotInMatch));
    }

    /// The partner's instance heard, but its session never takes the match (an instance cut
    /// off from Redis still counts as a listener there), or has left: undone all the same.
    #[test]
    fn a_match_its_partner_never_accepts_is_undone() {
        let mut rig = Rig::new();
        let ticket = rig.queue();
        let found = |rig: &mut Rig, at| {
            rig.finds(&ticket, ("s-them", "there", "them"), at);
            assert!(rig.at(Input::Handed { heard: true }, at).is_empty());
        };
        found(&mut rig, 5);
        assert_eq!(
            rig.machine.next_timeout(),
            Some(rig.t0 + Duration::from_secs(5) + ACCEPT_TIMEOUT)
        );
        let out = rig.at(Input::Timeout, 8);
        assert_eq!(
            out,
            vec![
                left("id1"),
                Output::Count(Count::Unreachable),
                Output::Store(Op::Undo {
                    partner: "them".into(),
                    partner_session: "s-them".into(),
                    now_ms: 1_000_000
                }),
                Output::Store(Op::Join {
                    ticket: ticket.clone(),
                    now_ms: 1_000_000
                })
            ]
        );
        // Accepted too late: nothing (the partner was told it left).
        let late = Envelope::Accepted {
            to: "s-me".into(),
            match_id: "id1".into(),
        };
        assert!(rig.at(Input::Envelope(late), 9).is_empty());

        // Queued again; this time the partner bounces the match: undone, never told.
        rig.at(
            Input::Joined {
                ticket: ticket.clone(),
                outcome: Ok(JoinOutcome::Queued { waiting: 2 }),
            },
            9,
        );
        found(&mut rig, 20);
        let bounced = Envelope::PartnerLeft {
            to: "s-me".into(),
            match_id: "id2".into(),
        };
        let out = rig.at(Input::Envelope(bounced), 20);
        assert!(
            matches!(
                out.as_slice(),
                [
                    Output::Count(Count::Unreachable),
                    Output::Store(Op::Undo { .. }),
                    Output::Store(Op::Join { .. })
                ]
            ),
            "{out:?}"
        );
    }

    #[test]
    fn a_second_look_that_finds_a_partner_matches_both() {
        let mut rig = Rig::new();
        let ticket = rig.queue();
        let out = rig.finds(&ticket, ("s-them", "there", "them"), 5);
        // The partner's side hears first; then this side's client is told.
        let [
            Output::Store(Op::Hand {
                instance,
                envelope:
                    Envelope::Matched {
                        to,
                        role: Role::Offerer,
                        partner_session,
                        ..
                    },
            }),
        ] = out.as_slice()
        else {
            panic!("{out:?}");
        };
        let (instance, to, partner_session) =
            (instance.clone(), to.clone(), partner_session.clone());
        // Its instance heard; the client is told once the partner's session accepts.
        assert_eq!(rig.at(Input::Handed { heard: true }, 5), vec![]);
        let accepted = Envelope::Accepted {
            to: "s-me".into(),
            match_id: "id1".into(),
        };
        let out = rig.at(Input::Envelope(accepted), 5);
        let [
            Output::Count(Count::Match),
            Output::Send(ServerMessage::Matched {
                role: Role::Answerer,
                receipt,
                ..
            }),
        ] = out.as_slice()
        else {
            panic!("{out:?}");
        };
        assert_eq!((instance.as_str(), to.as_str()), ("there", "s-them"));
        assert_eq!(partner_session, "s-me");
        let r = rig.env.open(receipt, "me").unwrap();
        assert_eq!(r.partner, "them");
        assert_eq!(rig.machine.next_timeout(), None);
    }

    #[test]
    fn joining_from_a_match_is_next_and_joining_twice_is_refused() {
        let mut rig = Rig::new();
        let id = rig.matched();
        let out = rig.text(serde_json::json!({"type": "join", "profile": {"nickname": "Sam", "bio": "likes long walks"}, "want": "any"}));
        assert_eq!(out.first(), Some(&left(&id)));
        assert!(matches!(out.get(1), Some(Output::Store(Op::Join { .. }))));
        rig.queue();
        let out = rig.text(serde_json::json!({"type": "join", "profile": {"nickname": "Sam", "bio": "likes long walks"}, "want": "any"}));
        assert_eq!(error_code(&out), Some(ErrorCode::AlreadyQueued));
    }

    #[test]
    fn signals_pass_only_in_the_current_match_and_leave_is_told_once() {
        let mut rig = Rig::new();
        let id = rig.matched();
        let out = rig.text(serde_json::json!({"type": "signal", "match_id": "other", "data": {}}));
        assert_eq!(error_code(&out), Some(ErrorCode::NotInMatch));
        let out = rig
            .text(serde_json::json!({"type": "signal", "match_id": id, "data": {"kind": "video"}}));
        assert_eq!(error_code(&out), Some(ErrorCode::NotSignaling));
        assert!(out.contains(&Output::Count(Count::NotSignaling("shape"))));
        let out = rig.text(serde_json::json!({"type": "leave", "match_id": id}));
        assert_eq!(out, vec![left(&id)]);
        let out = rig.text(serde_json::json!({"type": "leave", "match_id": id}));
        assert_eq!(error_code(&out), Some(ErrorCode::NotInMatch));
        // The partner's own departure from the match we left is nothing to us.
        let gone = Envelope::PartnerLeft {
            to: "s-me".into(),
            match_id: id,
        };
        assert_eq!(rig.at(Input::Envelope(gone), 1), vec![]);
    }

    #[test]
    fn a_report_that_bans_ends_the_banned_device_wherever_it_is() {
        let mut rig = Rig::new();
        rig.matched();
        let out = rig.at(
            Input::Reported {
                target: "them".into(),
                outcome: Ok(ReportOutcome {
                    reporters: 3,
                    banned: true,
                }),
            },
            0,
        );
        assert_eq!(
            out,
            vec![
                Output::Count(Count::Report),
                Output::Count(Count::Ban),
                Output::Store(Op::LiveSessionOf {
                    pseudonym: "them".into()
                }),
                Output::Send(ServerMessage::Reported {}),
            ]
        );
        let live = LiveSession {
            session: "s-them".into(),
            instance: "there".into(),
        };
        let out = rig.at(Input::LiveSession(Some(live)), 0);
        assert!(matches!(
            out.as_slice(),
            [Output::Route { instance, envelope: Envelope::Ended { code: ErrorCode::Banned, retry_after: Some(600), .. } }] if instance == "there"
        ));
    }

    #[test]
    fn a_banned_join_ends_the_session_and_bad_frames_are_errors() {
        let mut rig = Rig::new();
        let out = rig.text(serde_json::json!({"type": "hello", "token": "t", "signature": "s"}));
        assert_eq!(error_code(&out), Some(ErrorCode::BadMessage));
        assert_eq!(
            error_code(&rig.at(Input::Text("{".into()), 0)),
            Some(ErrorCode::BadMessage)
        );
        assert_eq!(
            error_code(&rig.at(Input::TooFast, 0)),
            Some(ErrorCode::RateLimited)
        );
        let out = rig.text(serde_json::json!({"type": "join", "profile": {"nickname": "Sam", "bio": "likes long walks"}, "want": "any"}));
        let [Output::Store(Op::Join { ticket, .. })] = out.as_slice() else {
            panic!("{out:?}");
        };
        let out = rig.at(
            Input::Joined {
                ticket: ticket.clone(),
                outcome: Ok(JoinOutcome::Banned { retry_after: 60 }),
            },
            0,
        );
        assert_eq!(error_code(&out), Some(ErrorCode::Banned));
        assert!(matches!(
            out.last(),
            Some(Output::Close {
                code: CLOSE_POLICY,
                ..
            })
        ));
        assert_eq!(rig.at(Input::Closed, 0), vec![], "never queued");
    }
}
