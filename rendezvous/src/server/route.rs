//! Getting an event to a session, wherever it is: a local session's channel, or another
//! instance's pub/sub channel. Only these envelopes travel between instances — matches, signals
//! already checked by the sender's instance, departures, and the end of a session's right to
//! go on; never a chat message.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use anonchat_protocol::rendezvous::{ErrorCode, PartnerInfo, Role, Transport};
use anonchat_protocol::signaling::SignalLimits;

/// An event for one session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Envelope {
    Matched {
        to: String,
        match_id: String,
        role: Role,
        partner: PartnerInfo,
        receipt: String,
        transport: Transport,
        partner_session: String,
        partner_instance: String,
        /// When it was made (wall-clock ms; 0: unknown): one that arrives later than the wait
        /// for its acceptance (a partition that healed) is stale, and bounced.
        #[serde(default)]
        made_ms: u64,
    },
    Signal {
        to: String,
        match_id: String,
        data: serde_json::Value,
    },
    PartnerLeft {
        to: String,
        match_id: String,
    },
    /// The partner's session took the match (the answer to `Matched`): only now is the side
    /// that made it told, so that a match whose other side never hears of it (an instance
    /// killed or cut off from Redis) is undone instead of leaving someone waiting for an offer.
    Accepted {
        to: String,
        match_id: String,
    },
    /// The session's right to go on ended (its device connected again elsewhere, or was
    /// banned): it says why and closes.
    Ended {
        to: String,
        code: ErrorCode,
        message: String,
        retry_after: Option<u64>,
    },
}

impl Envelope {
    pub fn to(&self) -> &str {
        match self {
            Envelope::Matched { to, .. }
            | Envelope::Signal { to, .. }
            | Envelope::PartnerLeft { to, .. }
            | Envelope::Accepted { to, .. }
            | Envelope::Ended { to, .. } => to,
        }
    }

    /// What the sender of a `Matched` must hear when its partner turned out to be gone.
    pub fn bounce(&self) -> Option<(String, Envelope)> {
        match self {
            Envelope::Matched {
                match_id,
                partner_session,
                partner_instance,
                ..
            } => Some((
                partner_instance.clone(),
                Envelope::PartnerLeft {
                    to: partner_session.clone(),
                    match_id: match_id.clone(),
                },
            )),
            _ => None,
        }
    }
}

/// Largest envelope read from another instance; real ones are a few KiB.
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;

impl Envelope {
    /// Reads an envelope that another instance published, and checks it again as if a client
    /// had sent it: a Redis that someone else can write to must not become a way around the
    /// signaling and profile rules.
    pub fn from_instance(payload: &str, limits: &SignalLimits) -> Result<Envelope, String> {
        if payload.len() > MAX_ENVELOPE_BYTES {
            return Err(format!("over {MAX_ENVELOPE_BYTES} bytes"));
        }
        let envelope: Envelope = serde_json::from_str(payload).map_err(|e| e.to_string())?;
        match &envelope {
            Envelope::Signal { data, .. } => {
                anonchat_protocol::signaling::validate(data, limits).map_err(|e| e.to_string())?;
            }
            Envelope::Matched { partner, .. } => {
                let profile = anonchat_protocol::rendezvous::Profile {
                    nickname: partner.nickname.clone(),
                    bio: partner.bio.clone(),
                };
                crate::profile::validate(&profile).map_err(|e| e.to_string())?;
                let interests = &partner.common_interests;
                if interests.len() > anonchat_protocol::rendezvous::limits::INTERESTS
                    || interests
                        .iter()
                        .any(|i| i.len() > anonchat_protocol::rendezvous::limits::INTEREST_BYTES)
                    || !["M", "F", "U"].contains(&partner.gender.as_str())
                {
                    return Err("a partner card outside the profile rules".into());
                }
            }
            Envelope::PartnerLeft { .. } | Envelope::Accepted { .. } | Envelope::Ended { .. } => {}
        }
        Ok(envelope)
    }
}

/// This instance's connected sessions. Envelopes travel boxed: a channel allocates a block of
/// slots up front, and an idle socket should not hold a block of full-size envelopes.
#[derive(Default)]
pub struct Hub {
    sessions: Mutex<HashMap<String, mpsc::Sender<Box<Envelope>>>>,
}

impl Hub {
    pub fn insert(&self, session: String, tx: mpsc::Sender<Box<Envelope>>) {
        self.lock().insert(session, tx);
    }

    pub fn remove(&self, session: &str) {
        self.lock().remove(session);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hands the envelope to a local session; gives it back if the session is gone or stuck.
    pub fn deliver(&self, envelope: Envelope) -> Result<(), Box<Envelope>> {
        let tx = self.lock().get(envelope.to()).cloned();
        match tx {
            Some(tx) => tx.try_send(Box::new(envelope)).map_err(|e| match e {
                mpsc::error::TrySendError::Full(e) | mpsc::error::TrySendError::Closed(e) => e,
            }),
            None => Err(Box::new(envelope)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<Box<Envelope>>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}
