//! What a chat session takes and tells: the commands and events of `anonchat chat --json`, one
//! JSON object per line. The terminal UI and the quickstart drive the session with the same
//! types.

use std::path::PathBuf;

use anonchat_protocol::rendezvous::{self, PartnerInfo, Want};
use serde::{Deserialize, Serialize};

/// What the user asks for. Unknown commands and fields are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Wait for a partner; kept, so that `next` and a reconnect join again the same way.
    Join(JoinRequest),
    Send {
        text: String,
        /// Send even though the text looks like it carries contact details.
        #[serde(default)]
        force: bool,
        /// The message's id (echoed by `sent` and `ack`); one is made up when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    Typing {
        on: bool,
    },
    Image {
        path: PathBuf,
    },
    /// Save a received image of this chat (`id`; the last one when absent).
    Save {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// End this chat (or stop waiting) and wait for someone else.
    Next,
    /// End this chat, or stop waiting.
    Leave,
    /// Report the current (or last) partner.
    Report {
        #[serde(default)]
        reason: String,
    },
    /// Never be matched with the current (or last) partner again; ends the chat.
    Block,
    Quit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    pub nickname: String,
    pub bio: String,
    #[serde(default = "any")]
    pub want: Want,
    #[serde(default)]
    pub interests: Vec<String>,
}

fn any() -> Want {
    Want::Any
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Logged in to the rendezvous.
    Ready {
        daily_remaining: u32,
    },
    Queued {
        waiting: u64,
    },
    Matched {
        partner: PartnerInfo,
    },
    /// The peer-to-peer channel is open; `setup_ms` counts from `matched`. `fallback` says why
    /// libp2p was given up for WebRTC, when it was; `path` whether a relay carries it.
    Connected {
        transport: String,
        setup_ms: f64,
        safety_code: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fallback: Option<String>,
        /// `direct`, or `relayed` through a TURN server (the partner does not see this
        /// side's address then).
        path: String,
        /// The chosen ICE pair's candidate types (`host`, `srflx`, `prflx`, `relay`), this
        /// side's and the partner's; none for libp2p.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        local_candidate: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remote_candidate: Option<String>,
    },
    /// A message or image went out on the channel (not yet delivered: see `ack`).
    Sent {
        id: String,
    },
    Message {
        id: String,
        text: String,
        /// It looks like it carries an e-mail address or a phone number.
        flagged: bool,
    },
    /// The partner received message (or image) `id`.
    Ack {
        id: String,
    },
    Typing {
        on: bool,
    },
    /// A received image, checked by decoding it. It is kept in memory for `save`; `path` is
    /// where it was saved when every image is saved as it comes (`--save-images`).
    Image {
        id: String,
        mime: String,
        bytes: usize,
        width: u32,
        height: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<PathBuf>,
    },
    /// Image `id` was saved at `path` (mode 0600).
    Saved {
        id: String,
        path: PathBuf,
    },
    PartnerLeft,
    /// This side left the chat or the queue.
    Left,
    Reported,
    Blocked,
    /// The rendezvous connection dropped; trying again in `in_ms`.
    Reconnecting {
        attempt: u32,
        in_ms: u64,
    },
    Error {
        code: EventCode,
        message: String,
    },
}

/// What went wrong, as an `error` event names it: the rendezvous' own code, passed on, or one
/// of this client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EventCode {
    Rendezvous(rendezvous::ErrorCode),
    Client(ClientCode),
}

/// This client's own error codes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::EnumIter, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ClientCode {
    /// A `--json` line that is not a command.
    BadCommand,
    /// `next` or a reconnect with no profile joined yet.
    NotJoined,
    /// Report or block before any partner.
    NoMatch,
    /// The rendezvous could not be reached (the client tries again).
    RendezvousUnavailable,
    /// The connection to the rendezvous dropped (the client connects again).
    RendezvousLost,
    /// The rendezvous refused the login for a reason that is not one of its codes.
    RendezvousRefused,
    /// Relay-only, and no TURN server on offer.
    NoRelay,
    ConnectTimeout,
    /// Every path to the partner needs UDP, and UDP is blocked here.
    UdpBlocked,
    /// The TURN server refused the credentials.
    RelayRefused,
    ConnectFailed,
    /// Sending with nobody to send to.
    NotInChat,
    Empty,
    TooLong,
    /// Looks like an e-mail address or a phone number (send it anyway with force).
    ContactDetails,
    SendFailed,
    BadImage,
    /// A frame from the partner that the chat protocol refuses.
    BadFrame,
    /// The chat's share of received images is used up.
    ImageQuota,
    ImageNotSaved,
    NoSuchImage,
}

impl EventCode {
    /// The code as an `error` event spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventCode::Rendezvous(c) => c.as_str(),
            EventCode::Client(c) => c.into(),
        }
    }
}

impl From<ClientCode> for EventCode {
    fn from(c: ClientCode) -> Self {
        EventCode::Client(c)
    }
}

impl From<rendezvous::ErrorCode> for EventCode {
    fn from(c: rendezvous::ErrorCode) -> Self {
        EventCode::Rendezvous(c)
    }
}

/// So that a test or a UI can say `code == "no_relay"`.
impl PartialEq<str> for EventCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for EventCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for EventCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Event {
    pub fn error(code: impl Into<EventCode>, message: impl Into<String>) -> Event {
        Event::Error {
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events serialize")
    }
}

/// Parses one line of `--json` input.
pub fn parse_command(line: &str) -> Result<Command, String> {
    serde_json::from_str(line).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    #[test]
    fn every_error_code_is_spelt_once_and_reads_back() {
        let mut seen = std::collections::HashSet::new();
        let all = rendezvous::ErrorCode::iter()
            .map(EventCode::from)
            .chain(ClientCode::iter().map(EventCode::from));
        for code in all {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(
                json,
                format!("\"{}\"", code.as_str()),
                "serde and strum agree"
            );
            assert!(seen.insert(code.as_str()), "{code} is spelt twice");
            assert_eq!(serde_json::from_str::<EventCode>(&json).unwrap(), code);
        }
    }

    #[test]
    fn commands_in_the_documented_shape() {
        assert_eq!(
            parse_command(
                r#"{"cmd":"join","nickname":"alice","bio":"hello there all","want":"f","interests":["chess"]}"#
            ),
            Ok(Command::Join(JoinRequest {
                nickname: "alice".into(),
                bio: "hello there all".into(),
                want: Want::F,
                interests: vec!["chess".into()],
            }))
        );
        assert_eq!(
            parse_command(r#"{"cmd":"send","text":"hi"}"#),
            Ok(Command::Send {
                text: "hi".into(),
                force: false,
                id: None
            })
        );
        assert_eq!(
            parse_command(r#"{"cmd":"send","text":"mail me","force":true}"#),
            Ok(Command::Send {
                text: "mail me".into(),
                force: true,
                id: None
            })
        );
        assert_eq!(parse_command(r#"{"cmd":"next"}"#), Ok(Command::Next));
        assert_eq!(
            parse_command(r#"{"cmd":"report","reason":"rude"}"#),
            Ok(Command::Report {
                reason: "rude".into()
            })
        );
        assert!(parse_command(r#"{"cmd":"send"}"#).is_err(), "text missing");
        assert!(parse_command(r#"{"cmd":"send","text":"x","colour":1}"#).is_err());
        assert!(parse_command(r#"{"cmd":"dance"}"#).is_err());
        assert!(parse_command("not json").is_err());
    }

    #[test]
    fn events_in_the_documented_shape() {
        assert_eq!(Event::PartnerLeft.to_json(), r#"{"event":"partner_left"}"#);
        assert_eq!(
            Event::Message {
                id: "m1".into(),
                text: "hi".into(),
                flagged: false
            }
            .to_json(),
            r#"{"event":"message","id":"m1","text":"hi","flagged":false}"#
        );
        assert_eq!(
            Event::error(ClientCode::BadImage, "nope").to_json(),
            r#"{"event":"error","code":"bad_image","message":"nope"}"#
        );
        let queued = Event::Queued { waiting: 3 };
        assert_eq!(
            serde_json::from_str::<Event>(&queued.to_json()).unwrap(),
            queued
        );
    }
}
