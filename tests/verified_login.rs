//! Across crates, end to end: the real verifier (real models, real photos) issues tokens to the
//! peer's verifier client; the rendezvous fetches the verifier's JWKS over HTTP, lets the
//! verified devices in through the peer's rendezvous client, and matches them with the genders
//! their selfies established.

use anonchat_peer::identity::Identity;
use anonchat_peer::rendezvous::{ClientError, RendezvousClient};
use anonchat_peer::verify;
use anonchat_protocol::rendezvous::{
    ClientMessage, ErrorCode, Profile, ServerMessage, Transport, Want,
};
use anonchat_protocol::token::Gender;
use anonchat_rendezvous::config::Config;
use anonchat_rendezvous::server::{self, Keys};
use anonchat_testkit::TestVerifier;
use anonchat_testkit::fixtures::{face, models_dir};
use anonchat_verifier::service::{self as verifier, ServiceConfig};

fn identity(name: &str) -> Identity {
    let dir = std::env::temp_dir().join(format!("anonchat-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Identity::load_or_create(&dir).unwrap()
}

fn join(nickname: &str, want: Want) -> ClientMessage {
    ClientMessage::Join {
        profile: Profile {
            nickname: nickname.into(),
            bio: "verified and here to chat".into(),
        },
        want,
        interests: vec![],
        transports: vec![Transport::Webrtc],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selfie_verified_devices_meet_at_the_rendezvous() {
    let mut vc = ServiceConfig::local(models_dir());
    vc.rate_limit_per_minute = 0;
    // The devices verify with a still photo (`anonchat verify PHOTO`).
    vc.verify_mode = verifier::VerifyMode::Photo;
    let verifier = verifier::start(vc)
        .await
        .expect("the verifier starts (models/install.sh)");
    let base = format!("http://{}", verifier.addr);
    let mut rc = Config::local();
    rc.verifier_jwks_url = Some(format!("{base}/.well-known/jwks.json"));
    let keys = Keys::from_config(&rc).unwrap();
    let rendezvous = server::start_from_config(rc.clone(), keys, std::future::pending())
        .await
        .unwrap();
    let url = format!("ws://{}/v1/ws", rendezvous.addr);

    let (she, he) = (identity("she"), identity("he"));
    let her_token = verify::verify(&base, &she, face("real_f_silentface_T1.jpg"), false)
        .await
        .unwrap();
    let his_token = verify::verify(&base, &he, face("m_obama_official.jpg"), false)
        .await
        .unwrap();
    assert_eq!(
        (her_token.gender, his_token.gender),
        (Gender::Female, Gender::Male)
    );
    let mut her = RendezvousClient::connect(&url, &she, &her_token.token)
        .await
        .unwrap();
    let mut him = RendezvousClient::connect(&url, &he, &his_token.token)
        .await
        .unwrap();
    her.send(&join("sofia", Want::M)).await.unwrap();
    assert!(matches!(
        her.recv().await.unwrap(),
        ServerMessage::Queued { .. }
    ));
    him.send(&join("barack", Want::F)).await.unwrap();
    let ServerMessage::Matched { partner, .. } = him.recv().await.unwrap() else {
        panic!("not matched")
    };
    assert_eq!(
        partner.gender, "F",
        "the gender the verifier found in her selfie"
    );
    let ServerMessage::Matched { partner, .. } = her.recv().await.unwrap() else {
        panic!("not matched")
    };
    assert_eq!(partner.gender, "M");

    // A token from another verifier is refused by this rendezvous.
    let stranger = identity("stranger");
    let (token, _) =
        TestVerifier::new().mint_as("elsewhere", &stranger.verifying_key(), Gender::Male, 60);
    let refused = RendezvousClient::connect(&url, &stranger, &token).await;
    assert!(
        matches!(
            refused,
            Err(ClientError::Server {
                code: ErrorCode::InvalidToken,
                ..
            })
        ),
        "{:?}",
        refused.err()
    );
}
