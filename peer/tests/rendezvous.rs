//! The peer's rendezvous client against a real rendezvous (in-memory store) over real sockets.

mod common;

use anonchat_peer::rendezvous::{ClientError, RendezvousClient};
use anonchat_protocol::rendezvous::{ClientMessage, ErrorCode, Role, ServerMessage, Transport};
use anonchat_protocol::token::Gender;
use common::{Rendezvous, identity, join};

const BOTH: [Transport; 2] = [Transport::Webrtc, Transport::Libp2p];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_log_in_match_and_signal() {
    let rdv = Rendezvous::start().await;
    let (ia, ib) = (identity("rc-a"), identity("rc-b"));
    let mut a = rdv.login(&ia, Gender::Female).await;
    let mut b = rdv.login(&ib, Gender::Male).await;
    assert_eq!(a.welcome.daily_remaining, 100);
    a.send(&join("alice", &BOTH)).await.unwrap();
    assert!(matches!(
        a.recv().await.unwrap(),
        ServerMessage::Queued { waiting: 1 }
    ));
    b.send(&join("bobby", &BOTH)).await.unwrap();
    let ServerMessage::Matched {
        match_id,
        role,
        partner,
        transport,
        ..
    } = b.recv().await.unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (role, transport, partner.nickname.as_str()),
        (Role::Answerer, Transport::Libp2p, "alice")
    );
    assert!(matches!(
        a.recv().await.unwrap(),
        ServerMessage::Matched {
            role: Role::Offerer,
            ..
        }
    ));
    let data = serde_json::json!({"kind": "libp2p", "peer_id": ia.peer_id, "addrs": ["/ip4/127.0.0.1/tcp/4001"]});
    a.send(&ClientMessage::Signal {
        match_id: match_id.clone(),
        data: data.clone(),
    })
    .await
    .unwrap();
    let ServerMessage::Signal { data: got, .. } = b.recv().await.unwrap() else {
        panic!()
    };
    assert_eq!(got, data);
    // Errors arrive as typed errors.
    a.send(&ClientMessage::Signal {
        match_id,
        data: serde_json::json!("hello"),
    })
    .await
    .unwrap();
    assert!(matches!(
        a.recv().await,
        Err(ClientError::Server {
            code: ErrorCode::NotSignaling,
            ..
        })
    ));

    // A token expired for longer than the leeway is refused with its own code; no rendezvous at
    // all is a clear error.
    let ic = identity("rc-c");
    let refused =
        RendezvousClient::connect(&rdv.url, &ic, &rdv.token(&ic, Gender::Male, -60)).await;
    assert!(
        matches!(
            refused,
            Err(ClientError::Server {
                code: ErrorCode::TokenExpired,
                ..
            })
        ),
        "{:?}",
        refused.err()
    );
    let nowhere = RendezvousClient::connect("ws://127.0.0.1:9/v1/ws", &ic, "x").await;
    assert!(matches!(nowhere, Err(ClientError::Unreachable { .. })));
}
