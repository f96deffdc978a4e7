//! libp2p between terminal clients' sessions, with a rendezvous in the middle that tampers with
//! the announcements: a wrong peer id is refused by Noise, unreachable addresses fail the dial,
//! and both sides fall back to WebRTC and say so.

mod common;

use anonchat_peer::libp2p_session;
use anonchat_peer::session::Event;
use anonchat_verifier::token::Gender;
use common::{Peer, RecordingProxy, Rendezvous};

/// Rewrites the `libp2p` announcements that pass through with `tamper`.
fn rewriting(tamper: fn(&mut serde_json::Value)) -> impl Fn(&str) -> String + Send + Sync {
    move |text| {
        let Ok(mut frame) = serde_json::from_str::<serde_json::Value>(text) else {
            return text.to_owned();
        };
        if frame["type"] == "signal" && frame["data"]["kind"] == "libp2p" {
            tamper(&mut frame["data"]);
        }
        frame.to_string()
    }
}

/// A (direct) and B (behind `proxy`) both offer libp2p; A joins first and dials.
async fn pair_through(rdv: &Rendezvous, proxy: &RecordingProxy, name: &str) -> (Peer, Peer) {
    let with_libp2p = |url: Option<String>| {
        move |c: &mut anonchat_peer::session::SessionConfig| {
            c.libp2p = Some(libp2p_session::Options::new(true));
            if let Some(url) = url {
                c.rendezvous = url;
            }
        }
    };
    let mut a = Peer::start_with(rdv, &format!("{name}-a"), Gender::Female, with_libp2p(None));
    let b = Peer::start_with(
        rdv,
        &format!("{name}-b"),
        Gender::Male,
        with_libp2p(Some(proxy.url.clone())),
    );
    a.join();
    a.expect("queued", |e| matches!(e, Event::Queued { .. }))
        .await;
    b.join();
    (a, b)
}

async fn connected(peer: &mut Peer) -> Event {
    peer.expect("connected", |e| matches!(e, Event::Connected { .. }))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libp2p_is_used_when_both_offer_it() {
    let rdv = Rendezvous::start().await;
    let proxy = RecordingProxy::start(&rdv.url).await;
    let (mut a, mut b) = pair_through(&rdv, &proxy, "lp-plain").await;
    let (ea, eb) = (connected(&mut a).await, connected(&mut b).await);
    for e in [&ea, &eb] {
        assert!(
            matches!(e, Event::Connected { transport, fallback: None, .. } if transport == "libp2p"),
            "{e:?}"
        );
    }
    let code = |e: &Event| match e {
        Event::Connected { safety_code, .. } => safety_code.clone(),
        _ => unreachable!(),
    };
    assert_eq!(code(&ea), code(&eb));
    a.say("over a libp2p stream");
    b.expect(
        "message",
        |e| matches!(e, Event::Message { text, .. } if text == "over a libp2p stream"),
    )
    .await;
    a.expect("ack", |e| matches!(e, Event::Ack { .. })).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_announcing_another_peer_id_is_refused() {
    let rdv = Rendezvous::start().await;
    let proxy = RecordingProxy::tampering(
        &rdv.url,
        rewriting(|data| {
            let someone_else = libp2p::identity::Keypair::generate_ed25519()
                .public()
                .to_peer_id();
            data["peer_id"] = someone_else.to_string().into();
        }),
    )
    .await;
    let (mut a, mut b) = pair_through(&rdv, &proxy, "lp-wrongid").await;
    let ea = connected(&mut a).await;
    let Event::Connected {
        transport,
        fallback: Some(why),
        ..
    } = &ea
    else {
        panic!("no fallback: {ea:?}")
    };
    println!("refused: {ea:?}");
    assert_eq!(transport, "webrtc", "the libp2p connection was refused");
    assert!(why.to_lowercase().contains("peer"), "{why}");
    let eb = connected(&mut b).await;
    assert!(
        matches!(&eb, Event::Connected { transport, fallback: Some(_), .. } if transport == "webrtc"),
        "{eb:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_addresses_fall_back_to_webrtc_within_five_seconds() {
    let rdv = Rendezvous::start().await;
    let proxy = RecordingProxy::tampering(
        &rdv.url,
        rewriting(|data| {
            data["addrs"] =
                serde_json::json!(["/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/udp/1/quic-v1"]);
        }),
    )
    .await;
    let started = std::time::Instant::now();
    let (mut a, mut b) = pair_through(&rdv, &proxy, "lp-unreach").await;
    let (ea, eb) = (connected(&mut a).await, connected(&mut b).await);
    for e in [&ea, &eb] {
        assert!(
            matches!(e, Event::Connected { transport, fallback: Some(_), .. } if transport == "webrtc"),
            "{e:?}"
        );
    }
    println!("fell back after {:?}: {ea:?} / {eb:?}", started.elapsed());
    assert!(
        started.elapsed().as_secs_f64() < 6.0,
        "{:?}",
        started.elapsed()
    );
    b.say("still talking");
    a.expect(
        "message",
        |e| matches!(e, Event::Message { text, .. } if text == "still talking"),
    )
    .await;
}
