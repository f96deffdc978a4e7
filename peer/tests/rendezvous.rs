//! The peer's rendezvous client against a real rendezvous (in-memory store) over real sockets.

use anonchat_peer::identity::Identity;
use anonchat_peer::rendezvous::{ClientError, RendezvousClient};
use anonchat_rendezvous::config::Config;
use anonchat_rendezvous::proto::{
    ClientMessage, ErrorCode, Profile, Role, ServerMessage, Transport, Want,
};
use anonchat_rendezvous::server::{self, Keys};
use anonchat_rendezvous::store::memory::MemoryStore;
use anonchat_verifier::token::{Gender, Jwks, KeySet, SigningKey, unix_now};

fn identity(name: &str) -> Identity {
    let dir = std::env::temp_dir().join(format!("anonchat-rc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Identity::load_or_create(&dir).unwrap()
}

fn join(nickname: &str) -> ClientMessage {
    ClientMessage::Join {
        profile: Profile {
            nickname: nickname.into(),
            bio: "just here to talk".into(),
        },
        want: Want::Any,
        interests: vec![],
        transports: vec![Transport::Webrtc, Transport::Libp2p],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_log_in_match_and_signal() {
    let verifier = SigningKey::generate();
    let keys = KeySet::from_jwks(&Jwks {
        keys: vec![verifier.public_jwk()],
    })
    .unwrap();
    let config = Config {
        rate_limit_per_minute: 0,
        ..Config::local()
    };
    let store = MemoryStore::new(config.store_config());
    let rdv = server::start(config, store, Keys::Fixed(keys), std::future::pending())
        .await
        .unwrap();
    let url = format!("ws://{}/v1/ws", rdv.addr);
    let token = |id: &Identity, g: Gender, ttl: i64| {
        verifier
            .issue("t", &id.verifying_key(), g, unix_now() - 60, ttl)
            .unwrap()
            .0
    };

    let (ia, ib) = (identity("a"), identity("b"));
    let mut a = RendezvousClient::connect(&url, &ia, &token(&ia, Gender::Female, 3600))
        .await
        .unwrap();
    let mut b = RendezvousClient::connect(&url, &ib, &token(&ib, Gender::Male, 3600))
        .await
        .unwrap();
    assert_eq!(a.welcome.daily_remaining, 100);
    a.send(&join("alice")).await.unwrap();
    assert!(matches!(
        a.recv().await.unwrap(),
        ServerMessage::Queued { waiting: 1 }
    ));
    b.send(&join("bobby")).await.unwrap();
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

    // An expired token is refused with its own code; no rendezvous at all is a clear error.
    let ic = identity("c");
    let refused = RendezvousClient::connect(&url, &ic, &token(&ic, Gender::Male, 1)).await;
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
