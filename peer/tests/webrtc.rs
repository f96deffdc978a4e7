//! Two peers matched by a real rendezvous open a WebRTC data channel on loopback, with their
//! signaling relayed (and checked) by the rendezvous, and talk over it directly.

mod common;

use std::time::Duration;

use anonchat_peer::webrtc_session::{self, Options, SessionError};
use anonchat_protocol::rendezvous::{IceServer, Role, ServerMessage, Transport};
use anonchat_protocol::token::Gender;
use common::{Rendezvous, connect_through, identity, join};
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_channel_opens_between_matched_peers() {
    let rdv = Rendezvous::start().await;
    let mut a = rdv.login(&identity("rtc-a"), Gender::Female).await;
    let mut b = rdv.login(&identity("rtc-b"), Gender::Male).await;
    a.send(&join("alice", &[Transport::Webrtc])).await.unwrap();
    a.recv().await.unwrap();
    b.send(&join("bobby", &[Transport::Webrtc])).await.unwrap();
    let ServerMessage::Matched {
        match_id,
        role: role_b,
        ..
    } = b.recv().await.unwrap()
    else {
        panic!()
    };
    let ServerMessage::Matched { role: role_a, .. } = a.recv().await.unwrap() else {
        panic!()
    };
    assert_eq!((role_a, role_b), (Role::Offerer, Role::Answerer));

    let (ca, cb) = tokio::join!(
        connect_through(&mut a, match_id.clone(), role_a),
        connect_through(&mut b, match_id.clone(), role_b)
    );
    let (ca, cb) = (
        ca.expect("offerer connected"),
        cb.expect("answerer connected"),
    );
    println!(
        "data channel open after {:?} (offerer) / {:?} (answerer)",
        ca.setup, cb.setup
    );
    assert_eq!(ca.channel.label(), "anonchat");
    assert!(ca.channel.ordered(), "reliable, ordered");

    let (got_tx, mut got) = mpsc::unbounded_channel();
    cb.channel.on_message(Box::new(move |m| {
        let _ = got_tx.send(String::from_utf8_lossy(&m.data).into_owned());
        Box::pin(async {})
    }));
    ca.channel
        .send_text("hello over the data channel")
        .await
        .unwrap();
    let text = tokio::time::timeout(Duration::from_secs(5), got.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text, "hello over the data channel");

    // Hanging up on one side is seen on the other: the partner's channel closes.
    let (closed_tx, closed) = tokio::sync::oneshot::channel();
    let closed_tx = std::sync::Mutex::new(Some(closed_tx));
    cb.channel.on_close(Box::new(move || {
        if let Some(tx) = closed_tx.lock().unwrap().take() {
            let _ = tx.send(());
        }
        Box::pin(async {})
    }));
    ca.pc.close().await.expect("the first side closes cleanly");
    tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .expect("the partner sees the channel close")
        .unwrap();
    // The association is already gone, so webrtc-rs may report that it could not send its
    // own reset: that is the expected end of the second side, not a failure (the product
    // ignores it too, see `webrtc_session`).
    let _ = cb.pc.close().await;
}

#[tokio::test]
async fn relay_only_without_a_turn_server_fails_at_once() {
    let (out_tx, _out_rx) = mpsc::unbounded_channel();
    let (_in_tx, in_rx) = mpsc::unbounded_channel();
    let options = Options {
        relay_only: true,
        ice_servers: vec![IceServer {
            urls: vec!["stun:127.0.0.1:3478".into()],
            username: None,
            credential: None,
        }],
        ..Options::default()
    };
    let started = std::time::Instant::now();
    let result = webrtc_session::connect(Role::Offerer, &options, out_tx, in_rx).await;
    assert!(
        matches!(result, Err(SessionError::NoRelay)),
        "{:?}",
        result.err()
    );
    assert!(started.elapsed() < Duration::from_secs(1), "no hang");
}
