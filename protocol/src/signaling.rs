//! Deciding that a `signal` payload is signaling and nothing else (DESIGN.md §1, promise 1).
//!
//! The rendezvous forwards a payload only if it is an SDP offer or answer whose media sections
//! are all data channels, an ICE candidate, or a libp2p peer id with addresses — each bounded in
//! size, and all of them bounded in count and time per match. Whatever fits through is far too
//! small and short-lived to carry a chat. Pure: no I/O, no clock (the caller passes the age).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Signaling one side may send per match. Measured (BENCHMARKS.md): a Chromium offer or answer
/// is about 560 bytes and each candidate about 150; in the suite's matches (terminal and
/// Chromium, loopback and the NAT lab) one side sent 119 to 1,104 bytes in all. Room for many
/// interfaces and a restart, not for prose.
pub const MAX_SIGNAL_BYTES_PER_MATCH: usize = 8 * 1024;

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
    /// Bytes of signaling one side may send per match, all payloads together (as re-encoded).
    pub max_bytes: usize,
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
            max_bytes: MAX_SIGNAL_BYTES_PER_MATCH,
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
    /// Every [`NotSignaling::label`], for metrics to start at zero.
    pub const LABELS: [&'static str; 6] =
        ["shape", "sdp", "candidate", "libp2p", "budget", "window"];

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
    bytes: usize,
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
        let size = serde_json::to_string(&signal).map_or(usize::MAX, |j| j.len());
        if self.bytes.saturating_add(size) > limits.max_bytes {
            return Err(NotSignaling::Budget("bytes of signaling"));
        }
        *count += 1;
        self.bytes += size;
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

fn digits(s: &str, max_len: usize) -> bool {
    !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())
}

/// ICE's `ice-char`: letters, digits, `+` and `/` (RFC 8839).
fn ice_chars(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// A short identifier (`mid`, bundle tags, the `o=` user name): no spaces, at most 32 bytes.
fn token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.{}".contains(&b))
}

/// An IP address, or the mDNS name a browser puts in place of its host address
/// (`<uuid>.local`).
fn address(s: &str) -> bool {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    s.strip_suffix(".local").is_some_and(|name| {
        (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
    })
}

fn port(s: &str) -> bool {
    digits(s, 5) && s.parse::<u32>().is_ok_and(|p| p <= 65_535)
}

/// An SDP that a data-channel offer or answer is made of, line by line: the session lines
/// (`v o s t c`), data-channel media sections only, and the attributes such a description needs,
/// each with the value grammar it has. Nothing free-form passes: no `i=`, no unknown attribute,
/// no trailing words.
fn check_sdp(sdp: &str, limits: &SignalLimits) -> Result<(), NotSignaling> {
    if sdp.len() > limits.max_sdp_bytes {
        return Err(NotSignaling::Sdp("larger than allowed"));
    }
    if !sdp.starts_with("v=0\r\n") && !sdp.starts_with("v=0\n") {
        return Err(NotSignaling::Sdp("does not start with v=0"));
    }
    let mut media = 0;
    let (mut mids, mut bundled) = (Vec::new(), Vec::new());
    for line in sdp
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty())
    {
        if let Some(mid) = line.strip_prefix("a=mid:") {
            mids.push(mid);
        }
        if let Some(group) = line.strip_prefix("a=group:BUNDLE ") {
            bundled.extend(group.split(' '));
        }
        if !printable(line) {
            return Err(NotSignaling::Sdp("a line is not printable ASCII"));
        }
        let (kind, value) = line
            .split_once('=')
            .filter(|(k, _)| k.len() == 1)
            .ok_or(NotSignaling::Sdp("a line is not of the form x=value"))?;
        let fields: Vec<&str> = value.split(' ').collect();
        let ok = match kind {
            "v" => value == "0",
            "o" => {
                fields.len() == 6
                    && token(fields[0])
                    && digits(fields[1], 20)
                    && digits(fields[2], 20)
                    && fields[3] == "IN"
                    && ["IP4", "IP6"].contains(&fields[4])
                    && address(fields[5])
            }
            "s" => value == "-",
            "t" => value == "0 0",
            "c" => {
                fields.len() == 3
                    && fields[0] == "IN"
                    && ["IP4", "IP6"].contains(&fields[1])
                    && address(fields[2])
            }
            "m" => {
                media += 1;
                fields.len() == 4
                    && fields[0] == "application"
                    && port(fields[1])
                    && ["UDP/DTLS/SCTP", "TCP/DTLS/SCTP"].contains(&fields[2])
                    && fields[3] == "webrtc-datachannel"
            }
            "a" => check_attribute(value, limits),
            _ => false,
        };
        if !ok {
            return Err(match kind {
                "m" => NotSignaling::Sdp("only data-channel (m=application) sections are relayed"),
                "a" => NotSignaling::Sdp("an attribute a data channel does not need, or malformed"),
                _ => NotSignaling::Sdp(
                    "a session line that is not part of a data-channel description",
                ),
            });
        }
    }
    if media == 0 {
        return Err(NotSignaling::Sdp("no data-channel section"));
    }
    if media > MAX_MEDIA_SECTIONS || mids.len() > media {
        return Err(NotSignaling::Sdp("more sections than a data channel needs"));
    }
    // A bundle names sections of this very description, each once.
    let mut seen = Vec::new();
    for tag in bundled {
        if !mids.contains(&tag) || seen.contains(&tag) {
            return Err(NotSignaling::Sdp(
                "a bundle names a section that is not there",
            ));
        }
        seen.push(tag);
    }
    Ok(())
}

/// Media sections a description may hold (a chat needs one data channel).
const MAX_MEDIA_SECTIONS: usize = 2;

/// One `a=` line of a data-channel description.
fn check_attribute(value: &str, limits: &SignalLimits) -> bool {
    let (name, rest) = value.split_once(':').unwrap_or((value, ""));
    let fields: Vec<&str> = rest.split(' ').collect();
    match name {
        // Flags: no value at all.
        "extmap-allow-mixed" | "end-of-candidates" | "sendrecv" | "ice-lite" | "rtcp-mux" => {
            rest.is_empty() && !value.contains(':')
        }
        "ice-ufrag" => ice_chars(rest, 4, 256),
        "ice-pwd" => ice_chars(rest, 22, 256),
        "ice-options" => fields
            .iter()
            .all(|o| ["trickle", "ice2", "renomination"].contains(o)),
        "fingerprint" => {
            fields.len() == 2
                && ["sha-1", "sha-224", "sha-256", "sha-384", "sha-512"]
                    .contains(&fields[0].to_ascii_lowercase().as_str())
                && fields[1]
                    .split(':')
                    .all(|h| h.len() == 2 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                && (20..=64).contains(&fields[1].split(':').count())
        }
        "setup" => ["actpass", "active", "passive", "holdconn"].contains(&rest),
        "mid" => token(rest),
        "sctp-port" => port(rest),
        "max-message-size" => digits(rest, 10),
        "group" => {
            fields.len() >= 2
                && fields.len() <= 17
                && fields[0] == "BUNDLE"
                && fields[1..].iter().all(|m| token(m))
        }
        // Chrome writes `msid-semantic: WMS`, others `msid-semantic:WMS *`.
        "msid-semantic" => {
            let words: Vec<&str> = rest.split(' ').filter(|w| !w.is_empty()).collect();
            words.first() == Some(&"WMS")
                && words.len() <= 2
                && words.get(1).is_none_or(|w| *w == "*" || token(w))
        }
        "candidate" => check_candidate(&format!("candidate:{rest}"), limits).is_ok(),
        _ => false,
    }
}

/// `candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type>`, then
/// only the extensions an ICE agent writes (`raddr`, `rport`, `tcptype`, `generation`, `ufrag`,
/// `network-id`, `network-cost`), each once with its value, and nothing after them; or the
/// empty end-of-candidates marker.
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
    let head_ok = fields.len() >= 8
        && ice_chars(fields[0], 1, 32)
        && digits(fields[1], 3)
        && ["udp", "tcp"].contains(&fields[2].to_ascii_lowercase().as_str())
        && digits(fields[3], 10)
        && address(fields[4])
        && port(fields[5])
        && fields[6] == "typ"
        && ["host", "srflx", "prflx", "relay"].contains(&fields[7]);
    if !head_ok {
        return Err(NotSignaling::Candidate("not an ICE candidate line"));
    }
    let extensions = &fields[8..];
    if !extensions.len().is_multiple_of(2) {
        return Err(NotSignaling::Candidate(
            "words after the candidate's fields",
        ));
    }
    let mut seen: Vec<&str> = Vec::new();
    for pair in extensions.chunks(2) {
        let (name, value) = (pair[0], pair[1]);
        let ok = !seen.contains(&name)
            && match name {
                "raddr" => address(value),
                "rport" => port(value),
                "tcptype" => ["active", "passive", "so"].contains(&value),
                "generation" | "network-id" | "network-cost" => digits(value, 10),
                "ufrag" => ice_chars(value, 4, 256),
                _ => false,
            };
        if !ok {
            return Err(NotSignaling::Candidate(
                "words after the candidate's fields",
            ));
        }
        seen.push(name);
    }
    Ok(())
}

/// A libp2p peer id and multiaddresses, both parsed: IP or DNS, then TCP or UDP (QUIC), and
/// at most this peer's own `/p2p/` id at the end.
fn check_libp2p(
    peer_id: &str,
    addrs: &[String],
    limits: &SignalLimits,
) -> Result<(), NotSignaling> {
    use multiaddr::{Multiaddr, PeerId, Protocol};
    let id: PeerId = peer_id
        .parse()
        .map_err(|_| NotSignaling::Libp2p("peer_id is not a libp2p peer id"))?;
    if addrs.is_empty() || addrs.len() > limits.max_addrs {
        return Err(NotSignaling::Libp2p(
            "between 1 and 16 addresses are allowed",
        ));
    }
    for a in addrs {
        if a.len() > limits.max_addr_bytes {
            return Err(NotSignaling::Libp2p("an address is too long"));
        }
        let parsed: Multiaddr = a
            .parse()
            .map_err(|_| NotSignaling::Libp2p("not a multiaddress"))?;
        let allowed = parsed.iter().all(|p| match p {
            Protocol::Ip4(_) | Protocol::Ip6(_) | Protocol::Tcp(_) | Protocol::Udp(_) => true,
            Protocol::QuicV1 => true,
            Protocol::Dns(n) | Protocol::Dns4(n) | Protocol::Dns6(n) => token_host(&n),
            Protocol::P2p(p) => p == id,
            _ => false,
        });
        if !allowed {
            return Err(NotSignaling::Libp2p(
                "only ip/dns, tcp, udp, quic-v1 and this peer's own p2p id",
            ));
        }
    }
    Ok(())
}

/// A DNS name: labels of letters, digits and hyphens.
fn token_host(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name.split('.').all(|l| {
            (1..=63).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusals_label_is_listed() {
        for refusal in [
            NotSignaling::Shape(String::new()),
            NotSignaling::Sdp(""),
            NotSignaling::Candidate(""),
            NotSignaling::Libp2p(""),
            NotSignaling::Budget(""),
            NotSignaling::WindowClosed,
        ] {
            assert!(
                NotSignaling::LABELS.contains(&refusal.label()),
                "{refusal:?}"
            );
        }
    }
    use serde_json::json;

    const OFFER: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
        a=msid-semantic: WMS\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
        a=ice-ufrag:abcd\r\na=ice-pwd:aaaaaaaaaaaaaaaaaaaaaa\r\na=ice-options:trickle\r\n\
        a=fingerprint:sha-256 AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB\r\na=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\n\
        a=max-message-size:262144\r\n";
    const CANDIDATE: &str = "candidate:842163049 1 udp 1677729535 192.0.2.10 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0";

    /// What Chromium 14x sends for a data channel (captured, keys and ids changed).
    const CHROMIUM_OFFER: &str = "v=0\r\no=- 8300590696296626312 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:jpDE\r\n\
        a=ice-pwd:L7rNSfnKhMj/x2e/SUqQsSKq\r\na=ice-options:trickle\r\n\
        a=fingerprint:sha-256 92:D8:5E:9B:B6:44:88:DF:D8:E9:E0:5C:13:77:D7:EC:E5:CF:A2:14:74:A3:E1:C4:17:F4:79:B9:93:DB:4A:00\r\n\
        a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n";
    const CHROMIUM_CANDIDATE: &str = "candidate:3109873718 1 udp 2113937151 fb38cb10-3971-4317-9e8b-3dd7d1cfb5dc.local 34505 typ host generation 0 ufrag jpDE network-cost 999";
    const PEER_ID: &str = "12D3KooWBnnQLdVDbf3psY7AzXwYKTxKKYtpUdVaY9FAUKG2BCec";

    fn limits() -> SignalLimits {
        SignalLimits::default()
    }

    #[test]
    fn what_chromium_sends_passes_and_any_word_added_to_it_does_not() {
        let offer = json!({"kind": "offer", "sdp": CHROMIUM_OFFER});
        validate(&offer, &limits()).unwrap();
        let answer = CHROMIUM_OFFER.replace("setup:actpass", "setup:active");
        validate(&json!({"kind": "answer", "sdp": answer}), &limits()).unwrap();
        let c = json!({"kind": "candidate", "candidate": CHROMIUM_CANDIDATE, "sdp_mid": "0"});
        validate(&c, &limits()).unwrap();
        let smuggled_sdp = [
            "i=meet me at the station at nine\r\n",
            "a=tool:meet me at the station\r\n",
            "a=x-note:call me\r\n",
            "a=mid:0 and some words\r\n",
            "a=setup:actpass please\r\n",
            "a=fingerprint:sha-256 hello\r\n",
            "a=ice-options:trickle call me\r\n",
            "a=group:BUNDLE 0 meet-me-at-nine please\r\n",
            "a=msid-semantic: WMS meet me\r\n",
            "a=sctp-port:5000 5001\r\n",
            "a=extmap-allow-mixed:yes\r\n",
            "s=hello there\r\n",
            "b=AS:30\r\n",
        ];
        for extra in smuggled_sdp {
            let sdp = format!("{CHROMIUM_OFFER}{extra}");
            let got = validate(&json!({"kind": "offer", "sdp": sdp}), &limits());
            assert!(got.is_err(), "accepted {extra:?}");
        }
        let smuggled_candidates = [
            format!("{CHROMIUM_CANDIDATE} meet me"),
            format!("{CHROMIUM_CANDIDATE} generation 1"),
            CHROMIUM_CANDIDATE.replace("network-cost 999", "network-cost lots"),
            CHROMIUM_CANDIDATE.replace(".local", ".example"),
            CHROMIUM_CANDIDATE.replace("3109873718", "hello-there"),
            CHROMIUM_CANDIDATE.replace("34505", "99999"),
            "candidate:1 1 udp 1 call-me-maybe 1 typ host".to_owned(),
        ];
        for candidate in smuggled_candidates {
            let got = validate(
                &json!({"kind": "candidate", "candidate": candidate}),
                &limits(),
            );
            assert!(got.is_err(), "accepted {candidate:?}");
        }
    }

    #[test]
    fn libp2p_addresses_are_parsed_not_pattern_matched() {
        let ok = json!({"kind": "libp2p", "peer_id": PEER_ID, "addrs": [
            "/ip4/203.0.113.7/tcp/4001", "/ip6/2001:db8::1/udp/4001/quic-v1",
            format!("/dns4/peer.example/tcp/4001/p2p/{PEER_ID}"),
        ]});
        validate(&ok, &limits()).unwrap();
        for addr in [
            "/ip4/203.0.113.7/tcp/4001/meet/me".to_owned(),
            "/ip4/meet-me-at-nine/tcp/1".to_owned(),
            "/dns4/meet me at nine/tcp/1".to_owned(),
            "/ip4/203.0.113.7/tcp/4001/ws".to_owned(),
            "/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq"
                .to_owned(),
        ] {
            let data = json!({"kind": "libp2p", "peer_id": PEER_ID, "addrs": [addr]});
            assert!(validate(&data, &limits()).is_err(), "accepted {addr}");
        }
        let bad_id = json!({"kind": "libp2p", "peer_id": "QmNotARealPeerIdButLongEnoughToPassALengthCheck1234", "addrs": ["/ip4/1.2.3.4/tcp/1"]});
        assert!(validate(&bad_id, &limits()).is_err());
    }

    #[test]
    fn one_side_signals_a_few_kilobytes_per_match_at_most() {
        let mut budget = SignalBudget::default();
        let c = json!({"kind": "candidate", "candidate": CHROMIUM_CANDIDATE});
        let mut sent = 0;
        let refusal = loop {
            match budget.admit(&c, Duration::from_secs(1), &limits()) {
                Ok(_) => sent += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(refusal, NotSignaling::Budget("bytes of signaling"));
        // About 160 bytes each as re-encoded: far more than a real set-up needs, far less
        // than a chat.
        assert!((40..60).contains(&sent), "{sent} candidates");
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
        // Counts alone (the byte cap has its own test).
        let limits = || SignalLimits {
            max_bytes: usize::MAX,
            ..SignalLimits::default()
        };
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
