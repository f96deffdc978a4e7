//! Across real NATs (`common::lab`): each user in a home network of its own behind a router
//! that NATs with nftables; the rendezvous, a real coturn (and, for browsers, the verifier
//! with the real models) on the "public" network; `anonchat chat --json` processes and Debian's
//! Chromium in the homes. Runs as root (network namespaces).

mod common;

use std::time::Duration;

use anonchat_peer::session::{ClientCode, Event, EventCode};
use common::lab::{Lab, Nat, Net, Offer, connect, path_of, queue_then_join};
use common::{Cli, Recorded};
use serde_json::json;

/// `a` waits, `b` joins; the error `code` that `a` reports after the match (within 12 s), and
/// how long after the match it came.
async fn matched_then_error(a: &mut Cli, b: &mut Cli, code: ClientCode) -> (Event, Duration) {
    queue_then_join(a, b).await;
    a.events
        .expect("matched", |e| matches!(e, Event::Matched { .. }))
        .await;
    let started = std::time::Instant::now();
    let error = a
        .events
        .expect_within(
            Duration::from_secs(12),
            code.into(),
            |e| matches!(e, Event::Error { code: c, .. } if *c == EventCode::Client(code)),
        )
        .await;
    (error, started.elapsed())
}

/// A message each way arrives.
async fn chat_both_ways(a: &mut Cli, b: &mut Cli) {
    async fn one_way(from: &mut Cli, to: &mut Cli, text: &str) {
        from.send(json!({"cmd": "send", "text": text})).await;
        to.events
            .expect(
                "the message",
                |e| matches!(e, Event::Message { text: t, .. } if t == text),
            )
            .await;
    }
    one_way(a, b, "hello over the NAT").await;
    one_way(b, a, "hi back").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_cone_nats_the_path_is_direct() {
    let net = Net::start(&[Nat::Cone, Nat::Cone], Offer::Turn).await;
    let mut a = net.terminal(0, "alice", &net.rendezvous, &[]);
    let mut b = net.terminal(1, "bobby", &net.rendezvous, &[]);
    let (ca, cb) = connect(&mut a, &mut b).await;
    for c in [&ca, &cb] {
        let (path, transport, setup_ms) = path_of(c);
        assert_eq!(path, "direct", "{c:?}");
        // Neither has an address another network can dial: libp2p is not offered, so there
        // is no 5 s libp2p attempt first.
        assert_eq!(transport, "webrtc", "{c:?}");
        assert!(
            matches!(c, Event::Connected { fallback: None, .. }),
            "{c:?}"
        );
        assert!(setup_ms < 1000.0, "matched → open in {setup_ms} ms");
    }
    chat_both_ways(&mut a, &mut b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_symmetric_nats_the_chat_goes_through_coturn() {
    let net = Net::start(&[Nat::Symmetric, Nat::Symmetric], Offer::Turn).await;
    let mut a = net.terminal(0, "alice", &net.rendezvous, &[]);
    let mut b = net.terminal(1, "bobby", &net.rendezvous, &[]);
    let (ca, cb) = connect(&mut a, &mut b).await;
    for c in [&ca, &cb] {
        assert_eq!(path_of(c).0, "relayed", "{c:?}");
    }
    chat_both_ways(&mut a, &mut b).await;
}

/// coturn checks what the rendezvous minted: a wrong secret and a lapsed username are refused,
/// and a relay-only client says so at once instead of waiting out the set-up timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coturn_refuses_a_wrong_secret_and_a_lapsed_username() {
    for offer in [Offer::WrongSecret, Offer::Expired] {
        let net = Net::start(&[Nat::Cone, Nat::Cone], offer).await;
        let mut a = net.terminal(0, "alice", &net.rendezvous, &["--relay-only"]);
        let mut b = net.terminal(1, "bobby", &net.rendezvous, &[]);
        let (error, after) = matched_then_error(&mut a, &mut b, ClientCode::RelayRefused).await;
        assert!(
            after < Duration::from_secs(8),
            "said {after:?} after the match: {error:?}"
        );
        b.events
            .expect("partner_left", |e| matches!(e, Event::PartnerLeft))
            .await;
    }
}

/// One side hides its address: only relay candidates leave it, it offers no libp2p, and no
/// signaling that crosses the rendezvous carries its LAN or public address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_hides_the_address_on_every_path() {
    let net = Net::start(&[Nat::Cone, Nat::Cone], Offer::Turn).await;
    let proxy = net.proxy().await;
    let mut a = net.terminal(0, "alice", &proxy.url, &["--relay-only"]);
    let mut b = net.terminal(1, "bobby", &proxy.url, &[]);
    let (ca, cb) = connect(&mut a, &mut b).await;
    assert_eq!(path_of(&ca).0, "relayed", "{ca:?}");
    assert_eq!(path_of(&cb).0, "relayed", "{cb:?}");
    chat_both_ways(&mut a, &mut b).await;
    let texts: Vec<String> = proxy
        .recorded()
        .into_iter()
        .filter_map(|r| match r {
            Recorded::Text(t) => Some(t),
            Recorded::Binary(_) => None,
        })
        .collect();
    let all = texts.join("\n");
    for hidden in [Lab::host_ip(0), Lab::public_ip(0)] {
        assert!(
            !all.contains(&hidden),
            "alice's address {hidden} crossed the rendezvous:\n{all}"
        );
    }
    // Chat goes through coturn as DTLS, never through the rendezvous.
    for text in ["hello over the NAT", "hi back"] {
        assert!(!all.contains(text), "{text:?} crossed the rendezvous");
    }
    // The recording saw the signaling: bobby's public address and alice's relay candidates.
    assert!(all.contains(&Lab::public_ip(1)), "{all}");
    assert!(all.contains("typ relay"), "{all}");
    assert!(!all.contains("libp2p\",\"peer_id"), "{all}");
    // Bobby's LAN address stays home too: across networks only public ones are sent.
    assert!(!all.contains(&Lab::host_ip(1)), "{all}");
    let alice_join = texts
        .iter()
        .find(|t| t.contains("\"join\"") && t.contains("alice"))
        .unwrap();
    assert!(
        alice_join.contains(r#""transports":["webrtc"]"#),
        "{alice_join}"
    );
}

/// UDP blocked: the terminal client cannot use TURN over TCP (webrtc-rs 0.17), so it says why
/// within the set-up timeout, and can go back to the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_on_a_udp_blocked_network_says_why() {
    let net = Net::start(&[Nat::NoUdp, Nat::Cone], Offer::Turn).await;
    let mut a = net.terminal(0, "alice", &net.rendezvous, &[]);
    let mut b = net.terminal(1, "bobby", &net.rendezvous, &[]);
    let (error, after) = matched_then_error(&mut a, &mut b, ClientCode::UdpBlocked).await;
    assert!(after <= Duration::from_secs(7), "{after:?}: {error:?}");
    let Event::Error { message, .. } = &error else {
        unreachable!()
    };
    assert!(message.contains("block UDP"), "{message}");
    a.send(json!({"cmd": "next"})).await;
    a.events
        .expect("queued again", |e| matches!(e, Event::Queued { .. }))
        .await;
}

/// Symmetric NATs and no relay: no path exists; both hear so within the set-up timeout (never
/// a hang) and both can go back to the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_relay_symmetric_nats_fail_clearly_and_requeue() {
    let net = Net::start(&[Nat::Symmetric, Nat::Symmetric], Offer::StunOnly).await;
    let mut a = net.terminal(0, "alice", &net.rendezvous, &[]);
    let mut b = net.terminal(1, "bobby", &net.rendezvous, &[]);
    queue_then_join(&mut a, &mut b).await;
    let ended = |e: &Event| {
        matches!(e, Event::PartnerLeft)
            || matches!(e, Event::Error { code, .. } if matches!(code, EventCode::Client(ClientCode::ConnectTimeout | ClientCode::ConnectFailed)))
    };
    let limit = Duration::from_secs(13);
    let (ea, eb) = tokio::join!(
        a.events
            .expect_within(limit, "an error or partner_left", ended),
        b.events
            .expect_within(limit, "an error or partner_left", ended)
    );
    assert!(
        [&ea, &eb].iter().any(|e| matches!(e, Event::Error { .. })),
        "{ea:?} {eb:?}"
    );
    for cli in [&mut a, &mut b] {
        cli.send(json!({"cmd": "next"})).await;
        cli.events
            .expect("queued again", |e| matches!(e, Event::Queued { .. }))
            .await;
    }
}

/// A browser that ticks "Hide my IP address" meets a terminal client across two NATs: only
/// relay candidates leave the page, none of what it sends carries its addresses, and both
/// sides say the chat is relayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_hiding_its_address_meets_a_terminal_through_the_relay() {
    let net = Net::with_browsers(&[Nat::Cone, Nat::Cone], Offer::Turn).await;
    let mut terminal = net.terminal(1, "bobby", &net.rendezvous, &[]);
    terminal.join("bobby").await;
    terminal
        .events
        .expect("queued", |e| matches!(e, Event::Queued { .. }))
        .await;
    let mut browser = net.browser(0, "lab-hidden", true, "hello terminal", "hello browser");
    let connected = browser.expect("connected").await;
    let ct = terminal
        .events
        .expect("connected", |e| matches!(e, Event::Connected { .. }))
        .await;
    assert_eq!(path_of(&ct).0, "relayed", "{ct:?}");
    assert_eq!(
        connected["safety_code"],
        match &ct {
            Event::Connected { safety_code, .. } => safety_code.as_str(),
            _ => unreachable!(),
        }
    );
    let path = connected["path"].as_str().unwrap();
    assert!(path.starts_with("relayed relay "), "{connected}");
    assert!(
        connected["shown"]
            .as_str()
            .unwrap()
            .contains("your address is hidden"),
        "{connected}"
    );
    terminal
        .send(json!({"cmd": "send", "text": "hello browser"}))
        .await;
    terminal
        .events
        .expect(
            "the browser's message",
            |e| matches!(e, Event::Message { text, .. } if text == "hello terminal"),
        )
        .await;
    let heard = browser.expect("heard").await;
    let sent = heard["sent"].to_string();
    assert!(sent.contains("typ relay"), "{sent}");
    for hidden in [Lab::host_ip(0), Lab::public_ip(0)] {
        assert!(!sent.contains(&hidden), "the page sent {hidden}: {sent}");
    }
}

/// Browser ↔ browser across the lab: one behind a network that drops all UDP reaches coturn
/// over TCP, the other sits behind a symmetric NAT; both chat through the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_on_a_udp_blocked_network_chats_through_turn_over_tcp() {
    let net = Net::with_browsers(&[Nat::NoUdp, Nat::Symmetric], Offer::Turn).await;
    let mut first = net.browser(
        0,
        "lab-no-udp",
        false,
        "hello from behind the firewall",
        "hello from the symmetric NAT",
    );
    let mut second = net.browser(
        1,
        "lab-symmetric",
        false,
        "hello from the symmetric NAT",
        "hello from behind the firewall",
    );
    let (a, b) = tokio::join!(first.expect("connected"), second.expect("connected"));
    assert_eq!(a["safety_code"], b["safety_code"]);
    for c in [&a, &b] {
        assert!(c["path"].as_str().unwrap().starts_with("relayed"), "{c}");
    }
    // Each script reports `heard` only once the other's message is on its screen.
    tokio::join!(first.expect("heard"), second.expect("heard"));
}

/// "Hide my IP address" with no relay on offer: refused on the profile screen before the
/// queue, with a sentence that says why, and the choice kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_hiding_its_address_is_refused_without_a_relay() {
    let net = Net::with_browsers(&[Nat::Cone], Offer::StunOnly).await;
    let mut browser = net.browser_with(0, "lab-refused", true, "", "", &[("EXPECT_REFUSAL", "1")]);
    let refused = browser.expect("refused").await;
    assert!(
        refused["refused"]
            .as_str()
            .unwrap()
            .contains("offers no relay"),
        "{refused}"
    );
    assert_eq!(refused["hide_ip_kept"], true);
    browser.done().await;
}
