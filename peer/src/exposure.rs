//! Which of this device's addresses a partner may learn: the one home of that rule, applied to
//! every ICE candidate before it leaves and to every libp2p address before it is announced.
//!
//! - **Relay-only** (the user asked to hide their address): only relay candidates, no libp2p,
//!   and no related address on any of them (a relay candidate's `raddr` is the user's public
//!   address as the TURN server saw it).
//! - **Public only**, whenever the rendezvous offers a STUN or TURN server (clients on
//!   different networks): host candidates and libp2p addresses only for addresses that can be
//!   reached from another network. Private, loopback, link-local and carrier-grade NAT
//!   addresses only help on the same LAN, and they tell a stranger how the user's LAN is laid
//!   out; two users on one LAN still meet through their router's public address or a relay.
//! - **Everything**, when there is neither (one LAN, or one machine): host addresses are all
//!   there is.
//!
//! In every mode the related address and port of a candidate are blanked: a server-reflexive
//! candidate's `raddr` is the private address behind the NAT.

use std::net::IpAddr;

use anonchat_protocol::rendezvous::IceServer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    Everything,
    PublicOnly,
    RelayOnly,
}

impl Exposure {
    /// The mode for this user's settings and the servers the rendezvous offers.
    pub fn new(relay_only: bool, servers: &[IceServer]) -> Exposure {
        if relay_only {
            Exposure::RelayOnly
        } else if crosses_networks(servers) {
            Exposure::PublicOnly
        } else {
            Exposure::Everything
        }
    }

    /// Whether an address of this device may be told to the partner.
    pub fn may_share(self, ip: IpAddr) -> bool {
        match self {
            Exposure::Everything => true,
            Exposure::PublicOnly => is_reachable_from_elsewhere(ip),
            Exposure::RelayOnly => false,
        }
    }

    /// The candidate as it may be sent to the partner, or `None` when it must not be.
    pub fn candidate(self, candidate: &str) -> Option<String> {
        let body = candidate.strip_prefix("candidate:")?;
        let mut fields: Vec<&str> = body.split(' ').collect();
        // foundation component transport priority address port "typ" type [extensions]
        if fields.len() < 8 || fields[6] != "typ" {
            return None;
        }
        let ip: Option<IpAddr> = fields[4].parse().ok();
        let shared = match (fields[7], self) {
            ("relay", _) => true,
            (_, Exposure::RelayOnly) => false,
            // Reflexive addresses are the router's: the partner sees them on every packet.
            ("srflx" | "prflx", _) => true,
            // An mDNS name says nothing of the address behind it.
            (_, _) => ip.is_none_or(|ip| self.may_share(ip)),
        };
        if !shared {
            return None;
        }
        let mut i = 8;
        while i + 1 < fields.len() {
            match fields[i] {
                "raddr" => fields[i + 1] = "0.0.0.0",
                "rport" => fields[i + 1] = "0",
                _ => {}
            }
            i += 2;
        }
        Some(format!("candidate:{}", fields.join(" ")))
    }

    /// Whether libp2p can be offered at all: never in relay-only mode, and across networks
    /// only when this device has an address another network can reach.
    pub fn offers_libp2p(self) -> bool {
        match self {
            Exposure::Everything => true,
            Exposure::PublicOnly => interface_addresses()
                .into_iter()
                .any(is_reachable_from_elsewhere),
            Exposure::RelayOnly => false,
        }
    }
}

/// True when some server can tell a client its public address or relay for it.
pub fn crosses_networks(servers: &[IceServer]) -> bool {
    servers.iter().any(IceServer::crosses_networks)
}

/// True when one of the servers is a TURN relay.
pub fn has_turn(servers: &[IceServer]) -> bool {
    servers.iter().any(IceServer::is_turn)
}

/// This machine's interface addresses (empty when they cannot be read).
fn interface_addresses() -> Vec<IpAddr> {
    if_addrs::get_if_addrs()
        .map(|all| all.into_iter().map(|i| i.ip()).collect())
        .unwrap_or_default()
}

/// Not private, loopback, link-local, carrier-grade NAT, unique-local or unspecified.
fn is_reachable_from_elsewhere(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            let cgnat = a == 100 && (64..128).contains(&b);
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || cgnat)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            let unique_local = first & 0xfe00 == 0xfc00;
            let link_local = first & 0xffc0 == 0xfe80;
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_reachable_from_elsewhere(IpAddr::V4(v4));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || unique_local
                || link_local)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST_LAN: &str = "candidate:1 1 udp 2130706431 192.168.1.20 50000 typ host";
    const HOST_PUBLIC: &str = "candidate:2 1 udp 2130706431 198.51.100.7 50001 typ host";
    const SRFLX: &str =
        "candidate:3 1 udp 1694498815 203.0.113.9 61000 typ srflx raddr 192.168.1.20 rport 50000";
    const RELAY: &str =
        "candidate:4 1 udp 16777215 203.0.113.1 49200 typ relay raddr 203.0.113.9 rport 61000";

    fn turn() -> Vec<IceServer> {
        vec![IceServer {
            urls: vec!["turn:203.0.113.1:3478".into()],
            username: Some("u".into()),
            credential: Some("p".into()),
        }]
    }

    /// The shared vectors (`protocol/vectors/signaling.json`), which the page's
    /// `shareableCandidate` is held to as well: on one network, hiding the address or not.
    #[test]
    fn candidates_leave_as_the_shared_vectors_say() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../protocol/vectors/signaling.json"
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let cases = v["candidates"].as_array().unwrap();
        assert!(cases.len() >= 8);
        for case in cases {
            let mode = match case["relay_only"].as_bool().unwrap() {
                true => Exposure::RelayOnly,
                false => Exposure::Everything,
            };
            let candidate = case["candidate"].as_str().unwrap();
            assert_eq!(
                mode.candidate(candidate).as_deref(),
                case["shared"].as_str(),
                "{candidate} ({mode:?})"
            );
        }
    }

    #[test]
    fn the_mode_follows_the_settings_and_the_servers() {
        assert_eq!(Exposure::new(false, &[]), Exposure::Everything);
        assert_eq!(Exposure::new(false, &turn()), Exposure::PublicOnly);
        assert_eq!(Exposure::new(true, &turn()), Exposure::RelayOnly);
        assert!(has_turn(&turn()) && !has_turn(&[]));
    }

    #[test]
    fn relay_only_sends_relay_candidates_without_the_users_address() {
        let e = Exposure::RelayOnly;
        assert_eq!(e.candidate(HOST_LAN), None);
        assert_eq!(e.candidate(HOST_PUBLIC), None);
        assert_eq!(e.candidate(SRFLX), None);
        let relay = e.candidate(RELAY).unwrap();
        assert!(
            !relay.contains("203.0.113.9") && !relay.contains("61000"),
            "{relay}"
        );
        assert!(relay.contains("203.0.113.1 49200 typ relay raddr 0.0.0.0 rport 0"));
        assert!(!e.offers_libp2p());
    }

    #[test]
    fn across_networks_lan_addresses_stay_home() {
        let e = Exposure::PublicOnly;
        assert_eq!(e.candidate(HOST_LAN), None);
        assert_eq!(e.candidate(HOST_PUBLIC).as_deref(), Some(HOST_PUBLIC));
        let srflx = e.candidate(SRFLX).unwrap();
        assert!(!srflx.contains("192.168.1.20"), "{srflx}");
        for lan in [
            "10.1.0.2",
            "172.16.4.4",
            "100.64.0.1",
            "169.254.1.1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(!e.may_share(lan.parse().unwrap()), "{lan}");
        }
        for public in ["198.51.100.7", "2001:db8::1", "8.8.8.8"] {
            assert!(e.may_share(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn on_one_network_everything_goes_but_related_addresses() {
        let e = Exposure::Everything;
        assert_eq!(e.candidate(HOST_LAN).as_deref(), Some(HOST_LAN));
        assert!(!e.candidate(SRFLX).unwrap().contains("192.168.1.20"));
        assert!(e.offers_libp2p());
        // Not a candidate at all.
        assert_eq!(e.candidate("candidate:1 1 udp"), None);
        assert_eq!(e.candidate("hello"), None);
    }
}
