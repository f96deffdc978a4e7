//! libp2p between terminal clients' sessions, with a rendezvous in the middle that tampers with
//! the announcements: a wrong peer id is refused by Noise, unreachable addresses fail the dial,
//! and both sides fall back to WebRTC and say so.

mod common;

use anonchat_peer::libp2p_session;
use anonchat_peer::session::Event;
use anonchat_protocol::token::Gender;
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

/// Two bare libp2p sessions, their announcements passed straight across.
async fn bare_pair() -> (libp2p_session::Connected, libp2p_session::Connected) {
    use anonchat_protocol::rendezvous::Role;
    let (a_out, b_in) = tokio::sync::mpsc::unbounded_channel();
    let (b_out, a_in) = tokio::sync::mpsc::unbounded_channel();
    let options = libp2p_session::Options::new(true);
    let (a, b) = tokio::join!(
        libp2p_session::connect(Role::Offerer, &options, a_out, a_in),
        libp2p_session::connect(Role::Answerer, &options, b_out, b_in),
    );
    (a.expect("offerer"), b.expect("answerer"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_lets_the_last_frames_leave_first() {
    use anonchat_peer::transport::Inbound;
    for round in 0..10 {
        let (a, mut b) = bare_pair().await;
        let image_chunk = vec![round as u8; 16 * 1024];
        a.send_binary(&image_chunk);
        a.send_text(r#"{"type":"bye"}"#.into());
        // A closes as the session does (and stops its swarm right after) while B reads.
        let closing = tokio::spawn(async move { a.close().await });
        let mut next = async || {
            tokio::time::timeout(std::time::Duration::from_secs(5), b.inbound.recv())
                .await
                .expect("the stream ends rather than hangs")
        };
        assert!(
            matches!(next().await, Some(Inbound::Binary(c)) if c[..] == image_chunk[..]),
            "round {round}: the chunk"
        );
        assert!(
            matches!(next().await, Some(Inbound::Text(t)) if t == r#"{"type":"bye"}"#),
            "round {round}: the bye"
        );
        assert!(
            matches!(next().await, Some(Inbound::Closed)),
            "round {round}: then the end"
        );
        drop(b);
        closing.await.unwrap();
    }
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

/// An independent implementation, js-libp2p from npm, dials a terminal client's listener: Noise,
/// Yamux, identify and ping complete, and a chat frame on `/anonchat/chat/1` arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_libp2p_talks_to_a_terminal_client() {
    use anonchat_peer::transport::Inbound;
    use anonchat_protocol::rendezvous::Role;
    use anonchat_protocol::signaling::SignalData;
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    assert!(
        dir.join("node_modules/libp2p").exists(),
        "run `npm ci` in {} (.ci/run does)",
        dir.display()
    );
    let mut node = tokio::process::Command::new("node")
        .arg(dir.join("dial.mjs"))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs the js-libp2p dialer");
    let mut stdin = node.stdin.take().unwrap();
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let mut next = async || -> serde_json::Value {
        let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
            .await
            .expect("js-libp2p answers")
            .unwrap()
            .expect("js-libp2p is still running");
        println!("js-libp2p: {line}");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(
            value.get("failed").is_none(),
            "js-libp2p failed: {}",
            value["failed"]
        );
        value
    };
    let js_peer = next().await["peer_id"].as_str().unwrap().to_owned();

    // The terminal client's side: a per-match listener that expects the js node as its partner.
    let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel();
    let (in_tx, in_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut options = libp2p_session::Options::new(true);
    options.listen.truncate(1); // TCP: what js-libp2p speaks here
    options.timeout = std::time::Duration::from_secs(20);
    let session = tokio::spawn(async move {
        libp2p_session::connect(Role::Answerer, &options, out_tx, in_rx).await
    });
    let Some(SignalData::Libp2p { peer_id, addrs }) = out_rx.recv().await else {
        panic!("no announcement")
    };
    in_tx
        .send(SignalData::Libp2p {
            peer_id: js_peer.clone(),
            addrs: vec!["/ip4/127.0.0.1/tcp/9".into()],
        })
        .unwrap();
    stdin
        .write_all(format!("{}/p2p/{peer_id}\n", addrs[0]).as_bytes())
        .await
        .unwrap();

    let connected = next().await;
    assert_eq!(
        connected["connected"],
        peer_id.as_str(),
        "Noise proved the announced id"
    );
    assert_eq!(connected["encryption"], "/noise");
    assert_eq!(connected["multiplexer"], "/yamux/1.0.0");
    let identify = next().await;
    let protocols = identify["identify"]["protocols"].as_array().unwrap();
    for p in ["/anonchat/chat/1", "/ipfs/ping/1.0.0", "/ipfs/id/1.0.0"] {
        assert!(protocols.iter().any(|x| x == p), "{p} in {protocols:?}");
    }
    assert_eq!(identify["identify"]["protocol_version"], "/anonchat/1.0.0");
    assert!(next().await["ping_ms"].as_f64().is_some());

    let mut chat = session.await.unwrap().expect("the chat stream opened");
    assert_eq!(chat.remote.to_string(), js_peer);
    match tokio::time::timeout(std::time::Duration::from_secs(5), chat.inbound.recv()).await {
        Ok(Some(Inbound::Text(text))) => assert!(text.contains("hello from js-libp2p"), "{text}"),
        other => panic!("no chat frame: {other:?}"),
    }
    assert_eq!(next().await["sent"], true);
}
