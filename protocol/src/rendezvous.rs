//! The rendezvous wire protocol (DESIGN.md §5): JSON text frames tagged by `type`.
//!
//! The server, the terminal client and the tests share these types. Parsing is
//! strict — unknown types, unknown or missing fields and over-long values are refused — because
//! everything here comes from the network.

use serde::{Deserialize, Serialize};

/// Version of this protocol, announced in `welcome`; the WebSocket path carries it too (`/v1/ws`).
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest frame either side accepts.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// The string a client signs, followed by the challenge nonce, to prove it holds its device key.
pub const HELLO_CONTEXT: &str = "anonchat-rendezvous-v1:";

/// Who a user wants to talk to.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Want {
    Any,
    M,
    F,
}

impl Want {
    /// As the wire spells it (a test holds serde's and strum's names equal).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// How two peers can connect once matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Webrtc,
    Libp2p,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub nickname: String,
    pub bio: String,
}

/// What a partner is shown of the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerInfo {
    pub nickname: String,
    pub bio: String,
    /// `M`, `F` or `U` (undisclosed), from the partner's token.
    pub gender: String,
    pub common_interests: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Offerer,
    Answerer,
}

/// Frames a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    Hello {
        token: String,
        signature: String,
    },
    Join {
        profile: Profile,
        want: Want,
        #[serde(default)]
        interests: Vec<String>,
        #[serde(default = "default_transports")]
        transports: Vec<Transport>,
    },
    /// `data` stays raw JSON here: deciding whether it is signaling is the signaling
    /// validator's job, and it answers `not_signaling`, not `bad_message`.
    Signal {
        match_id: String,
        data: serde_json::Value,
    },
    Leave {
        match_id: String,
    },
    /// A struct variant, not a unit one, so that extra fields are refused like anywhere else.
    Cancel {},
    Report {
        receipt: String,
        #[serde(default)]
        reason: String,
    },
    Block {
        receipt: String,
    },
}

fn default_transports() -> Vec<Transport> {
    vec![Transport::Webrtc]
}

/// An ICE server the operator configured, as WebRTC's `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl IceServer {
    /// A TURN relay (`turn:` or `turns:`).
    pub fn is_turn(&self) -> bool {
        self.urls
            .iter()
            .any(|u| u.starts_with("turn:") || u.starts_with("turns:"))
    }

    /// A server that can tell a client its public address (STUN) or relay for it (TURN):
    /// without one, clients on different networks cannot reach each other.
    pub fn crosses_networks(&self) -> bool {
        self.is_turn()
            || self
                .urls
                .iter()
                .any(|u| u.starts_with("stun:") || u.starts_with("stuns:"))
    }
}

/// Frames the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerMessage {
    Challenge {
        nonce: String,
    },
    Welcome {
        session: String,
        daily_remaining: u32,
        ice_servers: Vec<IceServer>,
        protocol: u32,
    },
    Queued {
        waiting: u64,
    },
    Matched {
        match_id: String,
        role: Role,
        partner: PartnerInfo,
        receipt: String,
        transport: Transport,
        /// ICE servers for this match, with TURN credentials minted now: the ones in `welcome`
        /// may have lapsed while the client waited.
        #[serde(default)]
        ice_servers: Vec<IceServer>,
    },
    Signal {
        match_id: String,
        data: serde_json::Value,
    },
    PartnerLeft {
        match_id: String,
    },
    Cancelled {},
    Reported {},
    Blocked {},
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
        /// The profile field at fault, for `invalid_profile`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
    },
}

/// Machine-readable error codes. (`EnumIter` lets clients' tests check that they explain every
/// code.)
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ErrorCode {
    BadMessage,
    InvalidToken,
    TokenExpired,
    BadSignature,
    Banned,
    Timeout,
    NotAuthenticated,
    InvalidProfile,
    DailyLimit,
    AlreadyQueued,
    NotInMatch,
    NotSignaling,
    InvalidReceipt,
    RateLimited,
    ShuttingDown,
    /// The same device connected again elsewhere; this connection is closed.
    Replaced,
    Internal,
    /// Not ready yet (the verifier's keys have not been fetched): connect again later.
    Unavailable,
}

impl ErrorCode {
    /// The code as the wire spells it (serde's name, through strum's; a test holds them equal).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl ErrorCode {
    /// Whether connecting again cannot help: a refused token or a ban will be refused again, and
    /// a replaced connection (another window of the device took over) fighting back would only
    /// disconnect that one in turn. Clients stop reconnecting on these.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ErrorCode::InvalidToken
                | ErrorCode::TokenExpired
                | ErrorCode::BadSignature
                | ErrorCode::Banned
                | ErrorCode::Replaced
        )
    }

    /// Whether the token itself was refused: the client forgets it and verifies again.
    pub fn needs_verification(self) -> bool {
        matches!(
            self,
            ErrorCode::InvalidToken | ErrorCode::TokenExpired | ErrorCode::BadSignature
        )
    }

    /// What the code means to a person; the page shows it (through its generated constants).
    pub fn explain(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "The server did not understand a message. Reload the page.",
            ErrorCode::InvalidToken => "Your verification is not valid any more. Verify again.",
            ErrorCode::TokenExpired => "Your verification has expired. Verify again.",
            ErrorCode::BadSignature => {
                "This browser could not prove it holds its key. Verify again."
            }
            ErrorCode::Banned => {
                "You have been reported by several people and cannot chat for a while."
            }
            ErrorCode::Timeout => "The connection timed out. Try again.",
            ErrorCode::NotAuthenticated => "Not logged in. Reload the page.",
            ErrorCode::InvalidProfile => "Please check your profile.",
            ErrorCode::DailyLimit => {
                "You have met as many people as allowed today. Come back tomorrow."
            }
            ErrorCode::AlreadyQueued => "You are already waiting for a match.",
            ErrorCode::NotInMatch => "That chat is already over.",
            ErrorCode::NotSignaling => "A connection message was refused.",
            ErrorCode::InvalidReceipt => "That chat can no longer be reported or blocked.",
            ErrorCode::RateLimited => "Too many tries. Wait a minute and try again.",
            ErrorCode::ShuttingDown => "The server is restarting. Try again in a moment.",
            ErrorCode::Replaced => {
                "You connected again from another window or device, so this one was disconnected."
            }
            ErrorCode::Internal => "Something went wrong on the server. Try again in a moment.",
            ErrorCode::Unavailable => "The server is not ready yet. Try again in a moment.",
        }
    }
}

/// How long a client waits before its `attempt`-th reconnection (0 first): doubling from
/// [`RECONNECT_BASE_MS`] up to [`RECONNECT_MAX_MS`], spread by ±1/8 with `jitter` (any random
/// number), so that clients dropped together do not all come back together.
pub fn reconnect_delay_ms(attempt: u32, jitter: u64) -> u64 {
    let base = RECONNECT_BASE_MS
        .saturating_mul(1 << attempt.min(RECONNECT_DOUBLINGS))
        .min(RECONNECT_MAX_MS);
    base - base / 8 + jitter % (base / 4 + 1)
}

/// The first reconnection delay.
pub const RECONNECT_BASE_MS: u64 = 250;
/// The longest reconnection delay (before jitter).
pub const RECONNECT_MAX_MS: u64 = 10_000;
/// Doublings after which the delay stops growing (250 ms · 2⁶ is over the cap anyway).
pub const RECONNECT_DOUBLINGS: u32 = 6;

impl ServerMessage {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
            retry_after: None,
            field: None,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }
}

/// Why a frame was refused; always answered with `bad_message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("frame of {0} bytes is over the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("invalid message: {0}")]
    Invalid(String),
    #[error("{field} is too long (at most {max})")]
    FieldTooLong { field: &'static str, max: usize },
}

/// Hard caps on field sizes, checked before any other rule.
pub mod limits {
    pub const TOKEN: usize = 4096;
    pub const SIGNATURE: usize = 128;
    pub const NICKNAME_BYTES: usize = 256;
    pub const BIO_BYTES: usize = 1024;
    pub const INTERESTS: usize = 10;
    pub const INTEREST_BYTES: usize = 64;
    pub const MATCH_ID: usize = 64;
    pub const RECEIPT: usize = 1024;
    pub const REASON: usize = 500;

    /// The profile's lengths as a person counts them (characters, after trimming): the
    /// rendezvous enforces them, the page checks them as the person types.
    pub const NICKNAME_CHARS: std::ops::RangeInclusive<usize> = 3..=24;
    pub const BIO_CHARS: std::ops::RangeInclusive<usize> = 10..=140;
    /// Emoji in nickname and bio together (as [`super::count_emoji`] counts them).
    pub const MAX_EMOJI: usize = 5;
    /// The pictographic blocks whose characters count as emoji (inclusive code point ranges).
    pub const EMOJI_RANGES: [(u32, u32); 8] = [
        (0x1F300, 0x1F3FA),
        (0x1F400, 0x1F5FF),
        (0x1F600, 0x1F64F),
        (0x1F680, 0x1F6FF),
        (0x1F900, 0x1F9FF),
        (0x1FA70, 0x1FAFF),
        (0x2600, 0x26FF),
        (0x2700, 0x27BF),
    ];
    /// Regional indicators: two of them make a flag, which counts once.
    pub const REGIONAL_INDICATORS: (u32, u32) = (0x1F1E6, 0x1F1FF);
}

/// Emoji, counted as pictographic base characters: skin-tone modifiers and joiners do not
/// count, and a flag (a pair of regional indicators) counts once.
pub fn count_emoji(s: &str) -> usize {
    use limits::{EMOJI_RANGES, REGIONAL_INDICATORS};
    let within = |c: char, (lo, hi): (u32, u32)| (lo..=hi).contains(&(c as u32));
    let flags = s
        .chars()
        .filter(|&c| within(c, REGIONAL_INDICATORS))
        .count()
        .div_ceil(2);
    let pictographic = s
        .chars()
        .filter(|&c| EMOJI_RANGES.iter().any(|&r| within(c, r)))
        .count();
    pictographic + flags
}

fn cap(field: &'static str, value: &str, max: usize) -> Result<(), ProtoError> {
    if value.len() > max {
        Err(ProtoError::FieldTooLong { field, max })
    } else {
        Ok(())
    }
}

/// Parses one client frame, strictly.
pub fn parse_client(frame: &str) -> Result<ClientMessage, ProtoError> {
    if frame.len() > MAX_FRAME_BYTES {
        return Err(ProtoError::TooLarge(frame.len()));
    }
    let msg: ClientMessage =
        serde_json::from_str(frame).map_err(|e| ProtoError::Invalid(short(&e.to_string())))?;
    use limits::*;
    match &msg {
        ClientMessage::Hello { token, signature } => {
            cap("token", token, TOKEN)?;
            cap("signature", signature, SIGNATURE)?;
        }
        ClientMessage::Join {
            profile,
            interests,
            transports,
            ..
        } => {
            cap("profile.nickname", &profile.nickname, NICKNAME_BYTES)?;
            cap("profile.bio", &profile.bio, BIO_BYTES)?;
            if interests.len() > INTERESTS {
                return Err(ProtoError::FieldTooLong {
                    field: "interests",
                    max: INTERESTS,
                });
            }
            for i in interests {
                cap("interests[]", i, INTEREST_BYTES)?;
            }
            if transports.is_empty() || transports.len() > 2 {
                return Err(ProtoError::Invalid(
                    "transports must name webrtc and/or libp2p".into(),
                ));
            }
        }
        ClientMessage::Signal { match_id, .. } | ClientMessage::Leave { match_id } => {
            cap("match_id", match_id, MATCH_ID)?
        }
        ClientMessage::Report { receipt, reason } => {
            cap("receipt", receipt, RECEIPT)?;
            cap("reason", reason, REASON)?;
        }
        ClientMessage::Block { receipt } => cap("receipt", receipt, RECEIPT)?,
        ClientMessage::Cancel {} => {}
    }
    Ok(msg)
}

/// Parses one server frame (for clients).
pub fn parse_server(frame: &str) -> Result<ServerMessage, ProtoError> {
    if frame.len() > MAX_FRAME_BYTES {
        return Err(ProtoError::TooLarge(frame.len()));
    }
    serde_json::from_str(frame).map_err(|e| ProtoError::Invalid(short(&e.to_string())))
}

fn short(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reconnect_delay_doubles_within_its_jitter_and_is_capped() {
        assert_eq!(reconnect_delay_ms(0, 0), 219);
        assert_eq!(reconnect_delay_ms(0, 62), 281);
        assert_eq!(reconnect_delay_ms(0, 63), 219);
        assert_eq!(reconnect_delay_ms(1, 0), 438);
        for attempt in [6, 10, u32::MAX] {
            assert_eq!(reconnect_delay_ms(attempt, 0), 8750);
            assert_eq!(reconnect_delay_ms(attempt, 2500), 11_250);
        }
    }

    #[test]
    fn every_code_is_named_as_serde_names_it_and_explained_in_a_sentence() {
        use strum::IntoEnumIterator;
        for code in ErrorCode::iter() {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
            assert!(crate::verify::is_a_sentence(code.explain()), "{code:?}");
        }
        for want in Want::iter() {
            assert_eq!(serde_json::to_value(want).unwrap(), want.as_str());
        }
        use crate::token::Gender;
        for gender in [Gender::Male, Gender::Female, Gender::Undisclosed] {
            assert_eq!(serde_json::to_value(gender).unwrap(), gender.as_str());
        }
    }

    #[test]
    fn messages_round_trip_in_the_documented_shape() {
        let join = json!({"type": "join", "profile": {"nickname": "ann", "bio": "hello there"}, "want": "any",
                          "interests": ["jazz"], "transports": ["webrtc", "libp2p"]});
        let msg = parse_client(&join.to_string()).unwrap();
        assert_eq!(serde_json::to_value(&msg).unwrap(), join);
        let cancel = parse_client(r#"{"type":"cancel"}"#).unwrap();
        assert_eq!(cancel, ClientMessage::Cancel {});
        let m = ServerMessage::Matched {
            match_id: "m1".into(),
            role: Role::Offerer,
            partner: PartnerInfo {
                nickname: "bob".into(),
                bio: "b".into(),
                gender: "U".into(),
                common_interests: vec![],
            },
            receipt: "r".into(),
            transport: Transport::Webrtc,
            ice_servers: vec![],
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["type"], "matched");
        assert_eq!(v["role"], "offerer");
        assert_eq!(parse_server(&v.to_string()).unwrap(), m);
        assert_eq!(
            ServerMessage::error(ErrorCode::NotSignaling, "x").to_json(),
            r#"{"type":"error","code":"not_signaling","message":"x"}"#
        );
    }

    #[test]
    fn defaults_apply_to_optional_fields() {
        let msg = parse_client(
            r#"{"type":"join","profile":{"nickname":"ann","bio":"hello there"},"want":"f"}"#,
        )
        .unwrap();
        let ClientMessage::Join {
            interests,
            transports,
            want,
            ..
        } = msg
        else {
            panic!()
        };
        assert!(interests.is_empty());
        assert_eq!(transports, vec![Transport::Webrtc]);
        assert_eq!(want, Want::F);
    }

    #[test]
    fn strictness() {
        for bad in [
            "",
            "not json",
            "[]",
            r#"{"type":"dance"}"#,
            r#"{"type":"hello","token":"t"}"#,
            r#"{"type":"hello","token":"t","signature":"s","extra":1}"#,
            r#"{"type":"join","profile":{"nickname":"a","bio":"b","age":3},"want":"any"}"#,
            r#"{"type":"join","profile":{"nickname":"a","bio":"b"},"want":"robots"}"#,
            r#"{"type":"join","profile":{"nickname":"a","bio":"b"},"want":"any","transports":[]}"#,
            r#"{"type":"join","profile":{"nickname":"a","bio":"b"},"want":"any","transports":["carrier-pigeon"]}"#,
            r#"{"type":"cancel","x":1}"#,
            r#"{"type":"leave"}"#,
            r#"{"token":"t","signature":"s"}"#,
        ] {
            assert!(parse_client(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn size_caps() {
        let big = "x".repeat(MAX_FRAME_BYTES + 1);
        assert!(matches!(parse_client(&big), Err(ProtoError::TooLarge(_))));
        let long_token =
            json!({"type": "hello", "token": "t".repeat(5000), "signature": "s"}).to_string();
        assert!(matches!(
            parse_client(&long_token),
            Err(ProtoError::FieldTooLong { field: "token", .. })
        ));
        let many = json!({"type": "join", "profile": {"nickname": "ann", "bio": "hello there"}, "want": "any",
                          "interests": vec!["a"; 11]})
        .to_string();
        assert!(parse_client(&many).is_err());
    }

    #[test]
    fn signal_data_is_kept_raw_for_the_validator() {
        let msg =
            parse_client(r#"{"type":"signal","match_id":"m","data":"hello, plain text"}"#).unwrap();
        assert_eq!(
            msg,
            ClientMessage::Signal {
                match_id: "m".into(),
                data: json!("hello, plain text")
            }
        );
    }
}
