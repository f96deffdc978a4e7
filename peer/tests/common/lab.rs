//! A network lab made of Linux network namespaces: a "public" network (a bridge, with the
//! servers on 203.0.113.1) and one home network per user, each behind a router namespace that
//! NATs with nftables like a home router or a corporate firewall does.
//!
//! ```text
//!   home i: host 10.<i+1>.0.2 ──lan── router i ──wan 203.0.113.<10+i>── bridge ── servers 203.0.113.1
//! ```
//!
//! Every address lives inside namespaces this lab made (203.0.113.0/24 is TEST-NET-3, which
//! routes nowhere); no namespace has a link to the machine's own network, so nothing can route
//! out. Dropping the lab deletes its namespaces, on a failing test too, and a new lab first
//! deletes the namespaces of earlier test processes that died before they could.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anonchat_peer::identity::Identity;
use anonchat_peer::session::Event;
use anonchat_protocol::token::{Gender, KeySet};
use anonchat_rendezvous::config::Config;
use anonchat_rendezvous::server::{self, Keys};
use serde_json::json;

use anonchat_testkit::netns::{exec as run, ip, nft};

use super::browser::Script;
use super::{Cli, RecordingProxy};

/// The servers' address on the public network.
pub const SERVERS: &str = "203.0.113.1";
const PREFIX: &str = "anonchat-lab-";

/// How a home network's router treats traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nat {
    /// `masquerade`: the same public port for one inside port whatever the destination
    /// (endpoint-independent mapping), only answers from where a packet went let in
    /// (address-and-port-dependent filtering): a port-restricted cone NAT.
    Cone,
    /// `masquerade fully-random`: a new public port for every destination, so the port a STUN
    /// server saw is useless to anybody else: a symmetric NAT.
    Symmetric,
    /// A cone NAT that drops all UDP (a corporate network): TCP only.
    NoUdp,
}

pub struct Lab {
    pub id: String,
    homes: Vec<Nat>,
    namespaces: Vec<String>,
    /// Stop signals of the runtimes living in lab namespaces.
    runtimes: Vec<std::sync::mpsc::Sender<()>>,
}

impl Lab {
    /// The public network with the servers' namespace, and a home behind a router per `homes`.
    pub fn new(homes: &[Nat]) -> Lab {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        anonchat_testkit::netns::sweep_dead(PREFIX);
        let id = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        );
        let mut lab = Lab {
            id,
            homes: homes.to_vec(),
            namespaces: Vec::new(),
            runtimes: Vec::new(),
        };
        lab.build();
        lab
    }

    /// The namespace of the servers (and the public network's bridge).
    pub fn servers(&self) -> String {
        format!("{}-pub", self.id)
    }

    /// The namespace of home `i`'s user.
    pub fn home(&self, i: usize) -> String {
        format!("{}-h{i}", self.id)
    }

    fn router(&self, i: usize) -> String {
        format!("{}-r{i}", self.id)
    }

    /// Home `i`'s user's address on its LAN.
    pub fn host_ip(i: usize) -> String {
        format!("10.{}.0.2", i + 1)
    }

    /// Home `i`'s router's public address (what the servers and partners see).
    pub fn public_ip(i: usize) -> String {
        format!("203.0.113.{}", 10 + i)
    }

    fn build(&mut self) {
        let public = self.servers();
        self.add_namespace(&public);
        ip(&public, "link add br0 type bridge");
        ip(&public, &format!("addr add {SERVERS}/24 dev br0"));
        ip(&public, "link set br0 up");
        for (i, nat) in self.homes.clone().into_iter().enumerate() {
            let (router, host) = (self.router(i), self.home(i));
            self.add_namespace(&router);
            self.add_namespace(&host);
            // The router's WAN port, plugged into the public bridge.
            ip(
                &router,
                &format!("link add wan type veth peer name p{i} netns {public}"),
            );
            ip(&public, &format!("link set p{i} master br0"));
            ip(&public, &format!("link set p{i} up"));
            ip(
                &router,
                &format!("addr add {}/24 dev wan", Lab::public_ip(i)),
            );
            ip(&router, "link set wan up");
            // The home LAN: the router's LAN port and the user's machine.
            ip(
                &router,
                &format!("link add lan type veth peer name eth0 netns {host}"),
            );
            ip(&router, &format!("addr add 10.{}.0.1/24 dev lan", i + 1));
            ip(&router, "link set lan up");
            ip(&host, &format!("addr add {}/24 dev eth0", Lab::host_ip(i)));
            ip(&host, "link set eth0 up");
            ip(&host, &format!("route add default via 10.{}.0.1", i + 1));
            run(&router, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
            nft(&router, &router_rules(nat));
        }
    }

    fn add_namespace(&mut self, name: &str) {
        anonchat_testkit::netns::add(name);
        self.namespaces.push(name.to_owned());
    }

    /// `program` to run inside namespace `ns`.
    pub fn command(
        &self,
        ns: &str,
        program: impl AsRef<std::ffi::OsStr>,
    ) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("ip");
        command.args(["netns", "exec", ns]).arg(program);
        command.kill_on_drop(true);
        command
    }

    /// A tokio runtime whose threads live in namespace `ns`: sockets made by tasks spawned on it
    /// are that namespace's. It stops with the lab.
    pub fn runtime(&mut self, ns: &str) -> tokio::runtime::Handle {
        let (handle, stop) = anonchat_testkit::netns::runtime_in(ns);
        self.runtimes.push(stop);
        handle
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.runtimes.clear();
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// The router's rules: forward from the LAN out, let in only what answers it, NAT on the way out.
/// Unsolicited packets are dropped on input too, as a home router's firewall does: accepted
/// there, a partner's first hole-punching packet would leave a conntrack entry on the router
/// that makes masquerade move the user's next mapping to another port, and no direct path
/// would ever form (measured: two cone NATs then always ended up relayed).
fn router_rules(nat: Nat) -> String {
    let random = if nat == Nat::Symmetric {
        " fully-random"
    } else {
        ""
    };
    let udp = if nat == Nat::NoUdp {
        "        meta l4proto udp drop\n"
    } else {
        ""
    };
    format!(
        "table inet lab {{
    chain input {{
        type filter hook input priority 0; policy accept;
        iifname \"wan\" ct state != {{ established, related }} drop
    }}
    chain forward {{
        type filter hook forward priority 0; policy drop;
{udp}        ct state established,related accept
        iifname \"lan\" oifname \"wan\" accept
    }}
}}
table ip labnat {{
    chain postrouting {{
        type nat hook postrouting priority 100;
        oifname \"wan\" masquerade{random}
    }}
}}
"
    )
}

// --- the servers on the public network --------------------------------------------------------

/// coturn's shared secret in the lab.
pub const SECRET: &str = "lab-turn-secret";

/// What the rendezvous offers for crossing networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// TURN with minted credentials (and STUN from the same server).
    Turn,
    /// STUN only: coturn runs, but no relay is handed out.
    StunOnly,
    /// TURN whose credentials are minted with a secret coturn does not know.
    WrongSecret,
    /// A static TURN entry whose username's expiry has passed (with a correct HMAC).
    Expired,
}

/// The lab with coturn and a rendezvous on the public network.
pub struct Net {
    pub lab: Lab,
    servers: tokio::runtime::Handle,
    verifier: Arc<super::TestVerifier>,
    /// The rendezvous, `ws://…/v1/ws`.
    pub rendezvous: String,
    dir: PathBuf,
    /// The page, when the verifier runs too (for browsers).
    page: Option<String>,
    _coturn: tokio::process::Child,
    _running: server::Running,
    _verifier: Option<anonchat_verifier::service::Running>,
}

impl Net {
    pub async fn start(homes: &[Nat], offer: Offer) -> Net {
        Self::launch(homes, offer, false).await
    }

    /// With the verifier too, and the page served, for browsers.
    pub async fn with_browsers(homes: &[Nat], offer: Offer) -> Net {
        Self::launch(homes, offer, true).await
    }

    async fn launch(homes: &[Nat], offer: Offer, browsers: bool) -> Net {
        let mut lab = Lab::new(homes);
        let servers = lab.runtime(&lab.servers());
        let dir = super::home(&lab.id);
        let coturn = start_coturn(&lab, &servers, &dir).await;
        let verifier = Arc::new(super::TestVerifier::new());
        let mut jwks = verifier.jwks();
        let page = format!("http://{SERVERS}:3002");
        let service = if browsers {
            let mut config =
                anonchat_verifier::service::ServiceConfig::local(super::browser::models_dir());
            config.addr = format!("{SERVERS}:8000").parse().unwrap();
            config.rate_limit_per_minute = 0;
            // The lab is about networks: its browsers verify with one still (photo mode).
            config.verify_mode = anonchat_verifier::service::VerifyMode::Photo;
            config.client_origins = vec![page.clone()];
            let running = servers
                .spawn(anonchat_verifier::service::start(config))
                .await
                .unwrap()
                .expect("the verifier starts in the lab");
            jwks.keys.extend(running.jwks.keys.iter().cloned());
            Some(running)
        } else {
            None
        };
        let keys = KeySet::from_jwks(&jwks).unwrap();
        let turn = format!("turn:{SERVERS}:3478");
        let mut config = Config {
            addr: format!("{SERVERS}:3002").parse().unwrap(),
            rate_limit_per_minute: 0,
            server_secret: Some("lab-secret".into()),
            verifier_url: browsers.then(|| format!("http://{SERVERS}:8000")),
            ..Config::local()
        };
        match offer {
            Offer::Turn => {
                // Over TCP too, for browsers on networks that block UDP (the terminal client
                // skips it: webrtc-rs speaks TURN over UDP only).
                config.turn_urls = vec![turn.clone(), format!("{turn}?transport=tcp")];
                config.turn_secret = vec![SECRET.into()];
            }
            Offer::WrongSecret => {
                config.turn_urls = vec![turn];
                config.turn_secret = vec!["not-the-secret".into()];
            }
            Offer::StunOnly => config.stun_urls = vec![format!("stun:{SERVERS}:3478")],
            Offer::Expired => {
                let username = "1000000000:lapsed";
                config.ice_servers = Some(
                    json!([{"urls": [turn], "username": username,
                            "credential": anonchat_rendezvous::ice::credential(SECRET, username)}])
                    .to_string(),
                );
            }
        }
        let running = servers
            .spawn(async move {
                server::start_from_config(config, Keys::Fixed(keys), std::future::pending()).await
            })
            .await
            .unwrap()
            .expect("the rendezvous starts in the lab");
        Net {
            rendezvous: format!("ws://{}/v1/ws", running.addr),
            lab,
            servers,
            verifier,
            dir,
            page: browsers.then_some(page),
            _coturn: coturn,
            _running: running,
            _verifier: service,
        }
    }

    /// A browser in home `i` running `lab.mjs`: verifies with the camera, joins, connects,
    /// says `say`, waits to hear `hear`.
    pub fn browser(&self, i: usize, name: &str, hide_ip: bool, say: &str, hear: &str) -> Script {
        self.browser_with(i, name, hide_ip, say, hear, &[])
    }

    /// As [`Net::browser`], with more settings for the script.
    pub fn browser_with(
        &self,
        i: usize,
        name: &str,
        hide_ip: bool,
        say: &str,
        hear: &str,
        settings: &[(&str, &str)],
    ) -> Script {
        let page = self.page.as_deref().expect("started with_browsers");
        let camera = self.dir.join(format!("{name}.y4m"));
        super::browser::camera_file(&super::browser::face("real_f_silentface_T1.jpg"), &camera);
        let mut node = self.lab.command(&self.lab.home(i), "node");
        node.envs(settings.iter().copied());
        node.env("NAME", name)
            .env("HIDE_IP", if hide_ip { "1" } else { "0" })
            .env("SAY", say)
            .env("HEAR", hear)
            .env("SECURE_ORIGINS", format!("{page},http://{SERVERS}:8000"));
        Script::spawn("lab.mjs", page, &[("CAMERA", &camera)], node)
    }

    /// A verified `anonchat chat --json` in home `i`, through `via` (a rendezvous URL).
    pub fn terminal(&self, i: usize, name: &str, via: &str, extra: &[&str]) -> Cli {
        let home = self.dir.join(name);
        std::fs::create_dir_all(&home).unwrap();
        let id = Identity::load_or_create(&home).unwrap();
        super::save_token(&self.verifier, &id, Gender::Female);
        let mut command = self
            .lab
            .command(&self.lab.home(i), env!("CARGO_BIN_EXE_anonchat"));
        command.arg("chat").args(extra);
        Cli::spawn(name, &home, via, command)
    }

    /// A recording proxy in front of the rendezvous, on the public network.
    pub async fn proxy(&self) -> RecordingProxy {
        let upstream = self.rendezvous.clone();
        self.servers
            .spawn(async move {
                RecordingProxy::listen(&format!("{SERVERS}:0"), &upstream, |t| t.to_owned()).await
            })
            .await
            .unwrap()
    }
}

/// coturn from `deploy/coturn/turnserver.conf` (the file operators copy), with the lab's
/// secret, address and files; TLS is left out (no certificate in the lab).
async fn start_coturn(
    lab: &Lab,
    servers: &tokio::runtime::Handle,
    dir: &std::path::Path,
) -> tokio::process::Child {
    let shipped = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/coturn/turnserver.conf"),
    )
    .unwrap();
    let mut conf: Vec<String> = shipped
        .lines()
        .filter(|l| {
            !["cert=", "pkey=", "tls-listening-port=", "no-tlsv1"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(|l| match l {
            "static-auth-secret=CHANGE-ME" => format!("static-auth-secret={SECRET}"),
            l => l.to_owned(),
        })
        .collect();
    assert!(conf.iter().any(|l| l == "use-auth-secret"));
    conf.extend([
        format!("listening-ip={SERVERS}"),
        format!("relay-ip={SERVERS}"),
        "no-tls".into(),
        "no-dtls".into(),
        "verbose".into(),
        format!("pidfile={}", dir.join("turnserver.pid").display()),
        format!("userdb={}", dir.join("turndb").display()),
    ]);
    let path = dir.join("turnserver.conf");
    std::fs::write(&path, conf.join("\n")).unwrap();
    let log = std::fs::File::create(dir.join("turnserver.log")).unwrap();
    let child = lab
        .command(&lab.servers(), "turnserver")
        .args(["-c"])
        .arg(&path)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("coturn (Debian's `coturn`) is the lab's TURN server; .ci/run installs it");
    // Ready when its TCP listener answers.
    let ready = servers
        .spawn(async {
            for _ in 0..100 {
                if tokio::net::TcpStream::connect((SERVERS, 3478))
                    .await
                    .is_ok()
                {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        })
        .await
        .unwrap();
    assert!(ready, "coturn did not start; see {}", dir.display());
    child
}

/// `a` joins and waits in the queue; then `b` joins (and so meets `a`).
pub async fn queue_then_join(a: &mut Cli, b: &mut Cli) {
    a.join("alice").await;
    a.events
        .expect("queued", |e| matches!(e, Event::Queued { .. }))
        .await;
    b.join("bobby").await;
}

/// Both join (`a` first) and both report `connected`; returns the two events.
pub async fn connect(a: &mut Cli, b: &mut Cli) -> (Event, Event) {
    queue_then_join(a, b).await;
    let connected = |e: &Event| matches!(e, Event::Connected { .. });
    let (ca, cb) = tokio::join!(
        a.events.expect("connected", connected),
        b.events.expect("connected", connected)
    );
    (ca, cb)
}

pub fn path_of(e: &Event) -> (&str, &str, f64) {
    match e {
        Event::Connected {
            path,
            transport,
            setup_ms,
            ..
        } => (path.as_str(), transport.as_str(), *setup_ms),
        _ => unreachable!(),
    }
}
