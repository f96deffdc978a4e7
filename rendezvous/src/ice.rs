//! The ICE servers handed to clients: static entries (`ICE_SERVERS`), STUN URLs, and TURN
//! servers with short-lived credentials for coturn's `use-auth-secret` mode (the "TURN REST API"):
//! username `<unix expiry>:<random opaque id>`, password `base64(HMAC-SHA1(secret, username))`.
//! coturn checks the HMAC with the same shared secret and refuses a username whose expiry has
//! passed, so a credential leaked by a client is worth `TURN_TTL_SECONDS` at most.
//!
//! Pure: the time and the opaque id are parameters, so the minting is tested without a clock.

use base64::Engine;
use hmac::{Hmac, Mac};

use anonchat_protocol::rendezvous::IceServer;

/// What the operator configured, checked once at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IcePlan {
    /// Entries given as they are (ICE_SERVERS).
    pub fixed: Vec<IceServer>,
    /// `stun:` URLs (STUN_URLS, or derived from TURN_URLS).
    pub stun: Vec<String>,
    /// `turn:` / `turns:` URLs that get minted credentials.
    pub turn: Vec<String>,
    /// Shared secrets; the first signs (the others are accepted by coturn during a rotation).
    pub turn_secret: Option<String>,
    /// How long a minted credential lives, in seconds.
    pub ttl_seconds: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IceConfigError {
    #[error(
        "TURN_URLS needs TURN_SECRET (the static-auth-secret of coturn's use-auth-secret mode)"
    )]
    MissingSecret,
    #[error("TURN_URLS entries must start with turn: or turns:, not {0:?}")]
    NotTurn(String),
    #[error("STUN_URLS entries must start with stun: or stuns:, not {0:?}")]
    NotStun(String),
    #[error("TURN_TTL_SECONDS must be between 60 and 86400, not {0}")]
    BadTtl(u64),
    #[error("ICE_SERVERS is not a JSON array of ice servers: {0}")]
    BadFixed(String),
}

impl IcePlan {
    /// Builds the plan from the raw settings. `stun` empty means: the hosts of the UDP TURN URLs,
    /// as `stun:` URLs (coturn answers STUN on its TURN port).
    pub fn new(
        fixed: Option<&str>,
        stun: &[String],
        turn: &[String],
        turn_secret: &[String],
        ttl_seconds: u64,
    ) -> Result<IcePlan, IceConfigError> {
        let fixed = parse_fixed(fixed)?;
        let clean = |v: &[String]| -> Vec<String> {
            v.iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let turn = clean(turn);
        if let Some(bad) = turn
            .iter()
            .find(|u| !u.starts_with("turn:") && !u.starts_with("turns:"))
        {
            return Err(IceConfigError::NotTurn(bad.clone()));
        }
        let secret = clean(turn_secret).into_iter().next();
        if !turn.is_empty() && secret.is_none() {
            return Err(IceConfigError::MissingSecret);
        }
        if !(60..=86_400).contains(&ttl_seconds) {
            return Err(IceConfigError::BadTtl(ttl_seconds));
        }
        let mut stun = clean(stun);
        if let Some(bad) = stun
            .iter()
            .find(|u| !u.starts_with("stun:") && !u.starts_with("stuns:"))
        {
            return Err(IceConfigError::NotStun(bad.clone()));
        }
        if stun.is_empty() {
            for url in &turn {
                if let Some(s) = stun_for(url)
                    && !stun.contains(&s)
                {
                    stun.push(s);
                }
            }
        }
        Ok(IcePlan {
            fixed,
            stun,
            turn,
            turn_secret: secret,
            ttl_seconds,
        })
    }

    /// True when some server can tell a client its public address or relay for it: without one,
    /// clients on different networks cannot reach each other.
    pub fn crosses_networks(&self) -> bool {
        !self.stun.is_empty()
            || !self.turn.is_empty()
            || self.fixed.iter().any(IceServer::crosses_networks)
    }

    /// The servers for one client at `now` (unix seconds): TURN credentials minted with
    /// `opaque`, a random id that says nothing about the device.
    pub fn servers(&self, now: u64, opaque: &str) -> Vec<IceServer> {
        let mut out = self.fixed.clone();
        if !self.stun.is_empty() {
            out.push(IceServer {
                urls: self.stun.clone(),
                username: None,
                credential: None,
            });
        }
        if let (false, Some(secret)) = (self.turn.is_empty(), &self.turn_secret) {
            let username = format!("{}:{opaque}", now + self.ttl_seconds);
            out.push(IceServer {
                urls: self.turn.clone(),
                credential: Some(credential(secret, &username)),
                username: Some(username),
            });
        }
        out
    }
}

/// coturn's REST-API password for `username`: base64 of HMAC-SHA1 under the shared secret.
pub fn credential(secret: &str, username: &str) -> String {
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `turn:host:port[?transport=udp]` → `stun:host:port`; TCP and TLS TURN URLs give none.
fn stun_for(turn_url: &str) -> Option<String> {
    let rest = turn_url.strip_prefix("turn:")?;
    let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !query.is_empty() && query != "transport=udp" {
        return None;
    }
    Some(format!("stun:{hostport}"))
}

fn parse_fixed(raw: Option<&str>) -> Result<Vec<IceServer>, IceConfigError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(Vec::new());
    };
    if raw.starts_with('[') {
        return serde_json::from_str(raw).map_err(|e| IceConfigError::BadFixed(e.to_string()));
    }
    Ok(raw
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| IceServer {
            urls: vec![u.to_owned()],
            username: None,
            credential: None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn credentials_are_coturns_hmac_of_the_username() {
        // Computed independently: python3 -c 'import hmac,hashlib,base64;
        // print(base64.b64encode(hmac.new(b"north", b"1700000600:abc", hashlib.sha1).digest()))'
        assert_eq!(
            credential("north", "1700000600:abc"),
            "cn17rOcIFYzHsN4D2xqDw8sMqrc="
        );
    }

    #[test]
    fn minted_servers_expire_after_the_ttl_and_sign_with_the_first_secret() {
        let plan = IcePlan::new(
            None,
            &[],
            &strings(&[
                "turn:203.0.113.1:3478",
                "turns:turn.example:443?transport=tcp",
            ]),
            &strings(&["new", "old"]),
            600,
        )
        .unwrap();
        assert_eq!(plan.stun, strings(&["stun:203.0.113.1:3478"]));
        let servers = plan.servers(1_000, "xyz");
        assert_eq!(servers.len(), 2);
        let turn = &servers[1];
        assert_eq!(turn.username.as_deref(), Some("1600:xyz"));
        assert_eq!(
            turn.credential.as_deref(),
            Some(credential("new", "1600:xyz").as_str())
        );
        assert_ne!(turn.credential, Some(credential("old", "1600:xyz")));
        assert!(plan.crosses_networks());
    }

    #[test]
    fn bad_settings_are_refused() {
        let turn = strings(&["turn:a:3478"]);
        assert_eq!(
            IcePlan::new(None, &[], &turn, &[], 600),
            Err(IceConfigError::MissingSecret)
        );
        assert!(matches!(
            IcePlan::new(None, &[], &strings(&["stun:a"]), &strings(&["s"]), 600),
            Err(IceConfigError::NotTurn(_))
        ));
        assert!(matches!(
            IcePlan::new(None, &strings(&["turn:a"]), &[], &[], 600),
            Err(IceConfigError::NotStun(_))
        ));
        assert_eq!(
            IcePlan::new(None, &[], &turn, &strings(&["s"]), 5),
            Err(IceConfigError::BadTtl(5))
        );
    }

    #[test]
    fn nothing_configured_crosses_no_network() {
        let plan = IcePlan::new(None, &[], &[], &[], 600).unwrap();
        assert!(!plan.crosses_networks());
        assert!(plan.servers(0, "x").is_empty());
        let fixed = IcePlan::new(Some("stun:s:3478"), &[], &[], &[], 600).unwrap();
        assert!(fixed.crosses_networks());
    }
}
