//! Deciding that a `signal` payload is signaling and nothing else (DESIGN.md §1, promise 1).
//!
//! The rendezvous forwards a payload only if it is an SDP offer or answer whose media sections
//! are all data channels, an ICE candidate, or a libp2p peer id with addresses — each bounded in
//! size, and all of them bounded in count and time per match. Whatever fits through is far too
//! small and short-lived to carry a chat. Pure: no I/O, no clock (the caller passes the age).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits per match and per side.
#[derive(Debug, Clone, Copy)]
pub struct SignalLimits {
    pub max_sdp_bytes: usize,
    pub max_candidate_bytes: usize,
    pub max_candidates: u32,
    pub max_descriptions: u32,
    pub max_libp2p: u32,
    pub max_addrs: usize,
    pub max_addr_bytes: usize,
    /// How long after the match signals are accepted.
    pub window: Duration,
}

impl Default for SignalLimits {
    fn default() -> Self {
        SignalLimits {
            max_sdp_bytes: 16 * 1024,
            max_candidate_bytes: 1024,
            max_candidates: 64,
            max_descriptions: 4,
            max_libp2p: 4,
            max_addrs: 16,
            max_addr_bytes: 256,
            window: Duration::from_secs(60),
        }
    }
}

/// A validated signaling payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SignalData {
    Offer {
        sdp: String,
    },
    Answer {
        sdp: String,
    },
    Candidate {
        candidate: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mid: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_m_line_index: Option<u16>,
    },
    Libp2p {
        peer_id: String,
        addrs: Vec<String>,
    },
}

/// Why a payload is not forwarded (`not_signaling`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotSignaling {
    #[error("not a signaling payload: {0}")]
    Shape(String),
    #[error("SDP refused: {0}")]
    Sdp(&'static str),
    #[error("ICE candidate refused: {0}")]
    Candidate(&'static str),
    #[error("libp2p address refused: {0}")]
    Libp2p(&'static str),
    #[error("too many {0} for this match")]
    Budget(&'static str),
    #[error("the signaling window of this match has closed")]
    WindowClosed,
}

impl NotSignaling {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            NotSignaling::Shape(_) => "shape",
            NotSignaling::Sdp(_) => "sdp",
            NotSignaling::Candidate(_) => "candidate",
            NotSignaling::Libp2p(_) => "libp2p",
            NotSignaling::Budget(_) => "budget",
            NotSignaling::WindowClosed => "window",
        }
    }
}

/// What one side has sent during one match.
#[derive(Debug, Clone, Default)]
pub struct SignalBudget {
    descriptions: u32,
    candidates: u32,
    libp2p: u32,
}

impl SignalBudget {
    /// Validates `data`, sent `age` after the match, and counts it against this side's budget.
    pub fn admit(
        &mut self,
        data: &serde_json::Value,
        age: Duration,
        limits: &SignalLimits,
    ) -> Result<SignalData, NotSignaling> {
        if age > limits.window {
            return Err(NotSignaling::WindowClosed);
        }
        let signal = validate(data, limits)?;
        let (count, max, what) = match signal {
            SignalData::Offer { .. } | SignalData::Answer { .. } => (
                &mut self.descriptions,
                limits.max_descriptions,
                "descriptions",
            ),
            SignalData::Candidate { .. } => {
                (&mut self.candidates, limits.max_candidates, "candidates")
            }
            SignalData::Libp2p { .. } => {
                (&mut self.libp2p, limits.max_libp2p, "libp2p announcements")
            }
        };
        if *count >= max {
            return Err(NotSignaling::Budget(what));
        }
        *count += 1;
        Ok(signal)
    }
}

/// Checks one payload's shape and content, without counting it.
pub fn validate(
    data: &serde_json::Value,
    limits: &SignalLimits,
) -> Result<SignalData, NotSignaling> {
    let signal: SignalData = serde_json::from_value(data.clone())
        .map_err(|e| NotSignaling::Shape(e.to_string().chars().take(120).collect()))?;
    match &signal {
        SignalData::Offer { sdp } | SignalData::Answer { sdp } => check_sdp(sdp, limits)?,
        SignalData::Candidate {
            candidate,
            sdp_mid,
            sdp_m_line_index,
        } => {
            check_candidate(candidate, limits)?;
            let token = |m: &String| {
                m.len() <= 32
                    && m.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_{}".contains(&b))
            };
            if sdp_mid.as_ref().is_some_and(|m| !token(m)) {
                return Err(NotSignaling::Candidate("sdp_mid is not a short token"));
            }
            if sdp_m_line_index.is_some_and(|i| i > 16) {
                return Err(NotSignaling::Candidate("sdp_m_line_index is out of range"));
            }
        }
        SignalData::Libp2p { peer_id, addrs } => check_libp2p(peer_id, addrs, limits)?,
    }
    Ok(signal)
}

fn printable(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// An SDP that starts with `v=0`, whose every line is `<letter>=<printable text>`, with at
/// least one media section, all of them `m=application` (data channels: no audio, no video).
fn check_sdp(sdp: &str, limits: &SignalLimits) -> Result<(), NotSignaling> {
    if sdp.len() > limits.max_sdp_bytes {
        return Err(NotSignaling::Sdp("larger than allowed"));
    }
    if !sdp.starts_with("v=0\r\n") && !sdp.starts_with("v=0\n") {
        return Err(NotSignaling::Sdp("does not start with v=0"));
    }
    let mut media = 0;
    for line in sdp
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty())
    {
        let b = line.as_bytes();
        if b.len() < 2 || !b[0].is_ascii_lowercase() || b[1] != b'=' || !printable(line) {
            return Err(NotSignaling::Sdp("a line is not of the form x=value"));
        }
        if let Some(m) = line.strip_prefix("m=") {
            if !m.starts_with("application ") {
                return Err(NotSignaling::Sdp(
                    "only data-channel (m=application) sections are relayed",
                ));
            }
            media += 1;
        }
    }
    if media == 0 {
        return Err(NotSignaling::Sdp("no data-channel section"));
    }
    Ok(())
}

/// `candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...`,
/// or the empty end-of-candidates marker.
fn check_candidate(candidate: &str, limits: &SignalLimits) -> Result<(), NotSignaling> {
    if candidate.is_empty() {
        return Ok(());
    }
    if candidate.len() > limits.max_candidate_bytes {
        return Err(NotSignaling::Candidate("larger than allowed"));
    }
    if !printable(candidate) {
        return Err(NotSignaling::Candidate("not printable ASCII"));
    }
    let body = candidate
        .strip_prefix("candidate:")
        .ok_or(NotSignaling::Candidate("does not start with candidate:"))?;
    let fields: Vec<&str> = body.split(' ').collect();
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let ok = fields.len() >= 8
        && numeric(fields[1])
        && ["udp", "tcp"].contains(&fields[2].to_ascii_lowercase().as_str())
        && numeric(fields[3])
        && numeric(fields[5])
        && fields[6] == "typ"
        && ["host", "srflx", "prflx", "relay"].contains(&fields[7]);
    if ok {
        Ok(())
    } else {
        Err(NotSignaling::Candidate("not an ICE candidate line"))
    }
}

/// A libp2p peer id (base58btc) and multiaddresses (`/ip4/…/tcp/…`).
fn check_libp2p(
    peer_id: &str,
    addrs: &[String],
    limits: &SignalLimits,
) -> Result<(), NotSignaling> {
    const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    if !(40..=64).contains(&peer_id.len()) || !peer_id.bytes().all(|b| BASE58.contains(&b)) {
        return Err(NotSignaling::Libp2p("peer_id is not a base58 peer id"));
    }
    if addrs.is_empty() || addrs.len() > limits.max_addrs {
        return Err(NotSignaling::Libp2p(
            "between 1 and 16 addresses are allowed",
        ));
    }
    for a in addrs {
        let proto_ok = ["/ip4/", "/ip6/", "/dns/", "/dns4/", "/dns6/"]
            .iter()
            .any(|p| a.starts_with(p));
        if a.len() > limits.max_addr_bytes || !proto_ok || !printable(a) || a.contains(' ') {
            return Err(NotSignaling::Libp2p("not a multiaddress"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OFFER: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
        a=msid-semantic: WMS\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
        a=ice-ufrag:abcd\r\na=ice-pwd:aaaaaaaaaaaaaaaaaaaaaa\r\na=ice-options:trickle\r\n\
        a=fingerprint:sha-256 AA:BB:CC\r\na=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\n\
        a=max-message-size:262144\r\n";
    const CANDIDATE: &str = "candidate:842163049 1 udp 1677729535 192.0.2.10 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0";

    fn limits() -> SignalLimits {
        SignalLimits::default()
    }

    #[test]
    fn real_signaling_passes() {
        for data in [
            json!({"kind": "offer", "sdp": OFFER}),
            json!({"kind": "answer", "sdp": OFFER.replace("\r\n", "\n")}),
            json!({"kind": "candidate", "candidate": CANDIDATE, "sdp_mid": "0", "sdp_m_line_index": 0}),
            json!({"kind": "candidate", "candidate": ""}),
            json!({"kind": "libp2p", "peer_id": "12D3KooWBnnQLdVDbf3psY7AzXwYKTxKKYtpUdVaY9FAUKG2BCec",
                   "addrs": ["/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"]}),
        ] {
            validate(&data, &limits()).unwrap_or_else(|e| panic!("{data}: {e}"));
        }
    }

    #[test]
    fn anything_else_is_refused() {
        let audio = OFFER.replace(
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        );
        let with_video = format!("{OFFER}m=video 9 UDP/TLS/RTP/SAVPF 96\r\n");
        for data in [
            json!("hello, this is a chat message"),
            json!({"text": "hi"}),
            json!({"kind": "msg", "text": "hi"}),
            json!({"kind": "offer", "sdp": "hello there"}),
            json!({"kind": "offer", "sdp": audio}),
            json!({"kind": "offer", "sdp": with_video}),
            json!({"kind": "offer", "sdp": "v=0\r\ns=-\r\n"}),
            json!({"kind": "offer", "sdp": format!("{OFFER}this is a sentence\r\n")}),
            json!({"kind": "offer", "sdp": format!("{OFFER}a={}\r\n", "x".repeat(20_000))}),
            json!({"kind": "offer", "sdp": OFFER, "text": "smuggled"}),
            json!({"kind": "candidate", "candidate": "hello, how are you?"}),
            json!({"kind": "candidate", "candidate": format!("{CANDIDATE} {}", "x".repeat(1100))}),
            json!({"kind": "candidate", "candidate": CANDIDATE, "sdp_mid": "a long chat message hidden here"}),
            json!({"kind": "libp2p", "peer_id": "hello", "addrs": ["/ip4/1.2.3.4/tcp/1"]}),
            json!({"kind": "libp2p", "peer_id": "12D3KooWBnnQLdVDbf3psY7AzXwYKTxKKYtpUdVaY9FAUKG2BCec", "addrs": ["hi there"]}),
            json!({"kind": "libp2p", "peer_id": "12D3KooWBnnQLdVDbf3psY7AzXwYKTxKKYtpUdVaY9FAUKG2BCec",
                   "addrs": vec!["/ip4/1.2.3.4/tcp/1"; 17]}),
        ] {
            assert!(validate(&data, &limits()).is_err(), "accepted {data}");
        }
    }

    #[test]
    fn budget_caps_candidates_and_the_window_closes() {
        let mut budget = SignalBudget::default();
        let c = json!({"kind": "candidate", "candidate": CANDIDATE});
        for _ in 0..64 {
            budget.admit(&c, Duration::from_secs(1), &limits()).unwrap();
        }
        assert_eq!(
            budget.admit(&c, Duration::from_secs(1), &limits()),
            Err(NotSignaling::Budget("candidates"))
        );
        let mut fresh = SignalBudget::default();
        let offer = json!({"kind": "offer", "sdp": OFFER});
        assert_eq!(
            fresh.admit(&offer, Duration::from_secs(61), &limits()),
            Err(NotSignaling::WindowClosed)
        );
        for _ in 0..4 {
            fresh
                .admit(&offer, Duration::from_secs(2), &limits())
                .unwrap();
        }
        assert!(
            fresh
                .admit(&offer, Duration::from_secs(2), &limits())
                .is_err()
        );
    }
}
