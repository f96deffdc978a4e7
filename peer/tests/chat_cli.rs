//! `anonchat chat --json` as separate processes: real rendezvous (on Redis), real WebRTC.

mod common;

use anonchat_peer::identity::Identity;
use anonchat_peer::session::Event;
use anonchat_protocol::token::Gender;
use common::{Cli, Recorded, RecordingProxy, RedisServer, Rendezvous, home};
use serde_json::json;

/// A verified device home for `name`.
fn verified_home(rdv: &Rendezvous, name: &str, gender: Gender) -> std::path::PathBuf {
    let dir = home(name);
    rdv.verify(&Identity::load_or_create(&dir).unwrap(), gender);
    dir
}

/// Two processes chat through a rendezvous on Redis over WebRTC, with a recording proxy in front
/// of the rendezvous: the chat works, and nothing of it crosses the rendezvous. Then one process
/// is killed, and the other hears that its partner left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_chat_and_nothing_of_it_crosses_the_rendezvous() {
    chat_through_a_recording_proxy("webrtc", &["--no-libp2p"], "cli").await;
}

/// The same between two terminal clients that both offer libp2p: over TCP, then over QUIC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_chat_over_libp2p_on_tcp_and_on_quic() {
    chat_through_a_recording_proxy(
        "libp2p",
        &["--libp2p-listen", "/ip4/127.0.0.1/tcp/0"],
        "tcp",
    )
    .await;
    chat_through_a_recording_proxy(
        "libp2p",
        &["--libp2p-listen", "/ip4/127.0.0.1/udp/0/quic-v1"],
        "quic",
    )
    .await;
}

async fn chat_through_a_recording_proxy(transport: &str, args: &[&str], name: &str) {
    let redis = RedisServer::start();
    let rdv = Rendezvous::start_on_redis(&redis).await;
    let proxy = RecordingProxy::start(&rdv.url).await;
    let (home_a, home_b) = (
        verified_home(&rdv, &format!("{name}-a"), Gender::Female),
        verified_home(&rdv, &format!("{name}-b"), Gender::Male),
    );
    let mut a = Cli::start_with(&format!("{name}-a"), &home_a, &proxy.url, args);
    let mut b = Cli::start_with(&format!("{name}-b"), &home_b, &proxy.url, args);

    a.join("alice").await;
    a.events
        .expect("queued", |e| matches!(e, Event::Queued { .. }))
        .await;
    b.join("bobby").await;
    let matched = b
        .events
        .expect("matched", |e| matches!(e, Event::Matched { .. }))
        .await;
    assert!(
        matches!(matched, Event::Matched { partner } if partner.nickname == "alice" && partner.gender == "F")
    );
    let (code_a, code_b) = tokio::join!(a.events.connected(), b.events.connected());
    assert_eq!(code_a, code_b);
    let connected = a.events.seen.last().cloned();
    println!("set-up: {connected:?}");
    assert!(
        matches!(&connected, Some(Event::Connected { transport: t, fallback: None, .. }) if t == transport),
        "{connected:?}"
    );

    const SECRET: &str = "the password is pineapple-42";
    a.send(json!({"cmd": "send", "text": SECRET})).await;
    b.events
        .expect(
            "message",
            |e| matches!(e, Event::Message { text, .. } if text == SECRET),
        )
        .await;
    a.events
        .expect("ack", |e| matches!(e, Event::Ack { .. }))
        .await;
    b.send(json!({"cmd": "typing", "on": true})).await;
    a.events
        .expect("typing", |e| *e == Event::Typing { on: true })
        .await;
    let png = common::noise_png();
    let path = home_a.join("noise.png");
    std::fs::write(&path, &png).unwrap();
    a.send(json!({"cmd": "image", "path": path})).await;
    let image = b
        .events
        .expect("image", |e| matches!(e, Event::Image { .. }))
        .await;
    let Event::Image { path: None, .. } = image else {
        panic!("an image written unasked: {image:?}")
    };
    assert!(
        !home_b.join("images").exists(),
        "nothing is written before the user asks"
    );
    b.send(json!({"cmd": "save"})).await;
    let Event::Saved { path, .. } = b
        .events
        .expect("saved", |e| matches!(e, Event::Saved { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(std::fs::read(&path).unwrap(), png);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "only this user may read a saved image");

    let recorded = proxy.recorded();
    let texts: Vec<&str> = recorded
        .iter()
        .filter_map(|r| match r {
            Recorded::Text(t) => Some(t.as_str()),
            Recorded::Binary(_) => None,
        })
        .collect();
    assert!(
        texts
            .iter()
            .filter(|t| t.contains(r#""type":"signal""#))
            .count()
            >= 4,
        "the proxy did see the signaling: {texts:?}"
    );
    assert!(
        !recorded.iter().any(|r| matches!(r, Recorded::Binary(_))),
        "no binary frames"
    );
    assert!(
        !texts.iter().any(|t| t.contains("pineapple")),
        "no message text"
    );
    assert!(
        !texts.iter().any(|t| t.contains("typing")),
        "no typing state"
    );
    let total: usize = texts.iter().map(|t| t.len()).sum();
    assert!(
        total < 100_000,
        "{total} bytes crossed the rendezvous; the image alone is {}",
        png.len()
    );

    // Killing a process tells its partner, through the rendezvous, at once.
    b.child.kill().await.unwrap();
    a.events
        .expect("partner_left", |e| *e == Event::PartnerLeft)
        .await;
    a.send(json!({"cmd": "quit"})).await;
    assert_eq!(a.exit_code().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_mode_answers_bad_input_with_errors_and_quits_at_end_of_input() {
    let rdv = Rendezvous::start().await;
    let dir = verified_home(&rdv, "cli-bad", Gender::Male);
    let mut cli = Cli::start("cli-bad", &dir, &rdv.url);
    for line in [
        "not json",
        r#"{"cmd":"dance"}"#,
        r#"{"cmd":"send"}"#,
        r#"{"cmd":"join","nickname":"x","bio":"too short"}"#,
        r#"{"cmd":"send","text":"nobody to talk to"}"#,
    ] {
        cli.send_line(line).await;
    }
    let mut codes = Vec::new();
    while codes.len() < 5 {
        if let Event::Error { code, .. } = cli
            .events
            .expect("errors", |e| matches!(e, Event::Error { .. }))
            .await
        {
            codes.push(code.as_str());
        }
    }
    // Each line gets its answer; answers that take a round trip may come in any order.
    codes.sort();
    assert_eq!(
        codes,
        [
            "bad_command",
            "bad_command",
            "bad_command",
            "invalid_profile",
            "not_in_chat"
        ]
    );
    drop(cli.stdin.take());
    assert_eq!(cli.exit_code().await, Some(0), "end of input is a quit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_without_a_token_says_what_to_do() {
    let dir = home("cli-unverified");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_anonchat"))
        .args(["chat", "--json"])
        .env("ANONCHAT_HOME", &dir)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("anonchat verify"), "{stderr}");
}
