//! Chat sessions end to end: real rendezvous, real WebRTC on loopback, the session driver that
//! the terminal client runs.

mod common;

use std::time::Duration;

use anonchat_peer::session::{Command, Event};
use anonchat_protocol::token::Gender;
use common::{Peer, RedisServer, Rendezvous, chatting_pair, chatting_pair_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_acks_typing_and_a_1_mib_image() {
    let rdv = Rendezvous::start().await;
    let (mut a, mut b) = chatting_pair(&rdv, "chat-a", "chat-b").await;

    a.say("hello from a");
    let Event::Sent { id } = a.expect("sent", |e| matches!(e, Event::Sent { .. })).await else {
        unreachable!()
    };
    let got = b
        .expect("message", |e| matches!(e, Event::Message { .. }))
        .await;
    assert_eq!(
        got,
        Event::Message {
            id: id.clone(),
            text: "hello from a".into(),
            flagged: false
        }
    );
    a.expect("ack", |e| *e == Event::Ack { id: id.clone() })
        .await;

    b.send(Command::Typing { on: true });
    a.expect("typing", |e| *e == Event::Typing { on: true })
        .await;
    b.send(Command::Typing { on: false });
    a.expect("typing off", |e| *e == Event::Typing { on: false })
        .await;

    let png = common::noise_png();
    let path = a.home.join("noise.png");
    std::fs::write(&path, &png).unwrap();
    a.send(Command::Image { path });
    let Event::Image {
        id, bytes, path, ..
    } = b
        .expect("image", |e| matches!(e, Event::Image { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(bytes, png.len());
    assert_eq!(path, None, "not written unasked");
    assert!(!b.home.join("images").exists());
    b.send(Command::Save {
        id: Some(id.clone()),
    });
    let saved = b
        .expect("saved", |e| matches!(e, Event::Saved { .. }))
        .await;
    let Event::Saved { id: saved_id, path } = saved else {
        unreachable!()
    };
    assert_eq!(saved_id, id);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        png,
        "the image arrives intact"
    );
    assert!(path.starts_with(b.home.join("images")));
    a.expect(
        "image ack",
        |e| matches!(e, Event::Ack { id } if id.starts_with('i')),
    )
    .await;

    // Ordered and reliable under a burst.
    for i in 0..200 {
        b.say(&format!("burst {i}"));
    }
    for i in 0..200 {
        let want = format!("burst {i}");
        a.expect(
            "burst message",
            |e| matches!(e, Event::Message { text, .. } if *text == want),
        )
        .await;
    }
    assert!(
        a.seen
            .iter()
            .filter(|e| matches!(e, Event::Message { text, .. } if text.starts_with("burst")))
            .count()
            == 200,
        "no message lost or repeated"
    );

    a.send(Command::Leave);
    a.expect("left", |e| *e == Event::Left).await;
    b.expect("partner_left", |e| *e == Event::PartnerLeft).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_details_are_refused_unless_forced_and_flagged_on_arrival() {
    let rdv = Rendezvous::start().await;
    let (mut a, mut b) = chatting_pair(&rdv, "pii-a", "pii-b").await;

    a.say("write to me at jane.doe@example.org");
    let refused = a
        .expect("error", |e| matches!(e, Event::Error { .. }))
        .await;
    assert!(
        matches!(&refused, Event::Error { code, .. } if code == "contact_details"),
        "{refused:?}"
    );
    a.say("or call +44 20 7946 0958");
    a.expect(
        "error",
        |e| matches!(e, Event::Error { code, .. } if code == "contact_details"),
    )
    .await;

    a.send(Command::Send {
        text: "fine: jane.doe@example.org".into(),
        force: true,
        id: None,
    });
    let got = b
        .expect("message", |e| matches!(e, Event::Message { .. }))
        .await;
    assert!(
        matches!(got, Event::Message { flagged: true, ref text, .. } if text == "fine: jane.doe@example.org")
    );
    assert!(
        !b.seen
            .iter()
            .any(|e| matches!(e, Event::Message { text, .. } if text.contains("7946"))),
        "the refused messages never left"
    );

    a.say("meet you on 2024-05-01?");
    let got = b
        .expect("message", |e| matches!(e, Event::Message { .. }))
        .await;
    assert!(
        matches!(got, Event::Message { flagged: false, .. }),
        "a date is not a phone number"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_images_are_refused_with_a_clear_error() {
    let rdv = Rendezvous::start().await;
    let (mut a, mut b) = chatting_pair(&rdv, "img-a", "img-b").await;

    let cases = [
        ("too-big.png", vec![0u8; 1024 * 1024 + 1], "at most"),
        ("text.png", b"this is not an image at all".to_vec(), "image"),
        (
            "truncated.png",
            common::noise_png()[..4096].to_vec(),
            "decoded",
        ),
    ];
    for (name, bytes, says) in cases {
        let path = a.home.join(name);
        std::fs::write(&path, bytes).unwrap();
        a.send(Command::Image { path });
        let e = a
            .expect("error", |e| matches!(e, Event::Error { .. }))
            .await;
        let Event::Error { code, message } = e else {
            unreachable!()
        };
        assert_eq!(code, "bad_image");
        assert!(
            message.contains(name) && message.contains(says),
            "{name}: {message}"
        );
    }
    a.send(Command::Image {
        path: a.home.join("missing.png"),
    });
    a.expect("error", |e| matches!(e, Event::Error { code, message } if code == "bad_image" && message.contains("missing.png")))
        .await;
    b.expect_none(Duration::from_millis(300), "image", |e| {
        matches!(e, Event::Image { .. })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_and_block_through_receipts_and_a_blocked_pair_is_never_matched_again() {
    let rdv = Rendezvous::start().await;
    let (mut a, mut b) = chatting_pair(&rdv, "blk-a", "blk-b").await;

    a.send(Command::Report {
        reason: "rude".into(),
    });
    a.expect("reported", |e| *e == Event::Reported).await;
    a.send(Command::Block);
    a.expect("blocked", |e| *e == Event::Blocked).await;
    b.expect("partner_left", |e| *e == Event::PartnerLeft).await;

    // Both meet someone else, so that the no-immediate-rematch rule no longer keeps them apart.
    let mut c = Peer::start(&rdv, "blk-c", Gender::Male);
    let mut d = Peer::start(&rdv, "blk-d", Gender::Female);
    a.send(Command::Next);
    a.expect("queued", |e| matches!(e, Event::Queued { .. }))
        .await;
    c.join();
    a.connected().await;
    c.connected().await;
    b.send(Command::Next);
    b.expect("queued", |e| matches!(e, Event::Queued { .. }))
        .await;
    d.join();
    b.connected().await;
    d.connected().await;

    // Now a and b wait at the same time, and stay waiting.
    a.send(Command::Next);
    c.expect("partner_left", |e| *e == Event::PartnerLeft).await;
    b.send(Command::Next);
    d.expect("partner_left", |e| *e == Event::PartnerLeft).await;
    a.expect_none(
        Duration::from_secs(1),
        "a match with the blocked partner",
        |e| matches!(e, Event::Matched { .. }),
    )
    .await;
    b.expect_none(Duration::from_millis(10), "a match with the blocker", |e| {
        matches!(e, Event::Matched { .. })
    })
    .await;

    // Reports and blocks need a match: without one, a clear error.
    let mut e = Peer::start(&rdv, "blk-e", Gender::Male);
    e.send(Command::Block);
    e.expect(
        "error",
        |ev| matches!(ev, Event::Error { code, .. } if code == "no_match"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_survives_the_rendezvous_being_killed() {
    let mut rdv = Rendezvous::start().await;
    let (mut a, mut b) = chatting_pair(&rdv, "kill-a", "kill-b").await;
    rdv.kill();

    a.say("still there?");
    b.expect(
        "message",
        |e| matches!(e, Event::Message { text, .. } if text == "still there?"),
    )
    .await;
    b.say("yes, peer to peer");
    a.expect(
        "message",
        |e| matches!(e, Event::Message { text, .. } if text == "yes, peer to peer"),
    )
    .await;
    assert!(
        !a.seen
            .iter()
            .chain(&b.seen)
            .any(|e| *e == Event::PartnerLeft),
        "losing the rendezvous did not end the chat"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_peers_reconnect_and_join_again_after_a_restart() {
    let mut rdv = Rendezvous::start().await;
    let mut a = Peer::start(&rdv, "re-a", Gender::Female);
    a.join();
    a.expect("queued", |e| matches!(e, Event::Queued { .. }))
        .await;

    rdv.restart().await;
    a.expect("reconnecting", |e| matches!(e, Event::Reconnecting { .. }))
        .await;
    a.expect("queued again", |e| matches!(e, Event::Queued { .. }))
        .await;

    let mut b = Peer::start(&rdv, "re-b", Gender::Male);
    b.join();
    a.connected().await;
    b.connected().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_without_a_turn_server_is_refused_before_joining() {
    let rdv = Rendezvous::start().await;
    let mut a = Peer::start_with(&rdv, "relay-a", Gender::Female, |c| {
        c.webrtc.relay_only = true
    });
    let mut b = Peer::start(&rdv, "relay-b", Gender::Male);
    a.join();
    let e = a
        .expect("error", |e| matches!(e, Event::Error { .. }))
        .await;
    assert!(
        matches!(&e, Event::Error { code, message } if code == "no_relay" && message.contains("TURN")),
        "{e:?}"
    );
    // Refused before the queue: no partner's match is used up on it.
    b.join();
    b.expect("queued", |e| matches!(e, Event::Queued { .. }))
        .await;
    b.expect_none(Duration::from_millis(500), "a match", |e| {
        matches!(e, Event::Matched { .. })
    })
    .await;
    assert!(
        !a.seen.iter().any(|e| matches!(e, Event::Queued { .. })),
        "{:?}",
        a.seen
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_left_and_next_on_the_redis_store() {
    let redis = RedisServer::start();
    let rdv = Rendezvous::start_on_redis(&redis).await;
    let (mut a, mut b) = chatting_pair(&rdv, "redis-a", "redis-b").await;
    a.say("over redis-matched webrtc");
    b.expect("message", |e| matches!(e, Event::Message { .. }))
        .await;
    b.send(Command::Next);
    a.expect("partner_left", |e| *e == Event::PartnerLeft).await;
    b.expect("queued", |e| matches!(e, Event::Queued { .. }))
        .await;
    // No immediate rematch: a joins too, and the two keep waiting.
    a.send(Command::Next);
    a.expect_none(Duration::from_millis(800), "a rematch", |e| {
        matches!(e, Event::Matched { .. })
    })
    .await;
}

/// A partner that does not play by the rules: raw frames straight onto the data channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_frames_from_the_partner_are_refused_and_the_chat_goes_on() {
    use anonchat_protocol::rendezvous::{ServerMessage, Transport};
    let rdv = Rendezvous::start().await;
    let mut victim = Peer::start(&rdv, "hostile-victim", Gender::Female);
    victim.join();
    victim
        .expect("queued", |e| matches!(e, Event::Queued { .. }))
        .await;
    let mut raw = rdv
        .login(&common::identity("hostile-raw"), Gender::Male)
        .await;
    raw.send(&common::join("mallory", &[Transport::Webrtc]))
        .await
        .unwrap();
    let ServerMessage::Matched { match_id, role, .. } = raw.recv().await.unwrap() else {
        panic!("not matched")
    };
    let conn = common::connect_through(&mut raw, match_id, role)
        .await
        .unwrap();
    victim.connected().await;
    let channel = conn.channel.clone();
    let text = |t: &str| {
        let channel = channel.clone();
        let t = t.to_owned();
        async move { channel.send_text(t).await.unwrap() }
    };
    let binary = |b: Vec<u8>| {
        let channel = channel.clone();
        async move { channel.send(&bytes::Bytes::from(b)).await.unwrap() }
    };

    // An announced image over the limit: refused, and its chunks ignored.
    text(r#"{"type":"image","id":"x1","mime":"image/png","size":2097152,"chunks":128}"#).await;
    for _ in 0..3 {
        binary(vec![7u8; 16384]).await;
    }
    refused(&mut victim, "at most").await;
    // Garbage with a PNG signature, and garbage without one.
    text(r#"{"type":"image","id":"x2","mime":"image/png","size":5000,"chunks":1}"#).await;
    let mut garbage = common::noise_png()[..8].to_vec();
    garbage.resize(5000, 0x89);
    binary(garbage).await;
    refused(&mut victim, "decoded").await;
    text(r#"{"type":"image","id":"x2","mime":"image/png","size":5000,"chunks":1}"#).await;
    binary(vec![0x89u8; 5000]).await;
    refused(&mut victim, "JPEG, PNG and WebP").await;
    // A real PNG announced as a JPEG.
    let png = common::noise_png();
    let header = format!(
        r#"{{"type":"image","id":"x3","mime":"image/jpeg","size":{},"chunks":{}}}"#,
        png.len(),
        png.len().div_ceil(16384)
    );
    text(&header).await;
    for chunk in png.chunks(16384) {
        binary(chunk.to_vec()).await;
    }
    refused(&mut victim, "JPEG, PNG and WebP").await;
    // Chunks nobody announced, JSON that is not a frame, a message over the limit.
    binary(vec![1, 2, 3]).await;
    text(r#"{"type":"msg","id":"m","text":"hi","extra":1}"#).await;
    text(&format!(
        r#"{{"type":"msg","id":"m","text":"{}"}}"#,
        "a".repeat(2001)
    ))
    .await;
    for _ in 0..3 {
        victim
            .expect(
                "a refusal",
                |e| matches!(e, Event::Error { code, .. } if code == "bad_frame"),
            )
            .await;
    }

    // The chat goes on, and nothing bad reached the disk.
    text(r#"{"type":"msg","id":"ok","text":"sorry about that"}"#).await;
    victim
        .expect(
            "message",
            |e| matches!(e, Event::Message { id, .. } if id == "ok"),
        )
        .await;
    assert!(!victim.seen.iter().any(|e| matches!(e, Event::Image { .. })));
    assert!(!victim.home.join("images").exists());
    conn.close().await;
    victim
        .expect("partner_left", |e| *e == Event::PartnerLeft)
        .await;
}

async fn refused(victim: &mut Peer, says: &'static str) {
    victim
        .expect("a refusal", move |e| {
            matches!(e, Event::Error { code, message } if code == "bad_frame" && message.contains(says))
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_save_images_every_image_is_saved_until_the_chats_quota() {
    use std::os::unix::fs::PermissionsExt;
    let rdv = Rendezvous::start().await;
    let dir = common::home("quota-saved").join("saved");
    let keep = dir.clone();
    let (a, mut b) = chatting_pair_with(&rdv, "quota-a", "quota-b", move |c| {
        c.save_images = Some(keep);
    })
    .await;
    let picture = a.home.join("small.png");
    image::RgbImage::from_pixel(8, 8, image::Rgb([200, 10, 10]))
        .save(&picture)
        .unwrap();
    let quota = anonchat_peer::session::MAX_IMAGES_PER_CHAT;
    for _ in 0..quota {
        a.send(Command::Image {
            path: picture.clone(),
        });
        let got = b
            .expect("image", |e| matches!(e, Event::Image { .. }))
            .await;
        let Event::Image {
            path: Some(path),
            width: 8,
            height: 8,
            ..
        } = got
        else {
            panic!("{got:?}")
        };
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // One more than the quota: refused, and nothing more on disk.
    a.send(Command::Image { path: picture });
    b.expect(
        "quota error",
        |e| matches!(e, Event::Error { code, .. } if code == "image_quota"),
    )
    .await;
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), quota);
}

/// A join the matchmaker cannot take (its Redis is down) is refused as `unavailable` with a
/// `retry_after`; the client joins again by itself when told, and is queued once Redis is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_refused_during_a_redis_outage_is_tried_again() {
    let mut redis = RedisServer::start();
    let rdv = Rendezvous::start_on_redis(&redis).await;
    let mut a = Peer::start(&rdv, "outage-a", Gender::Female);
    a.join();
    a.expect("queued", |e| matches!(e, Event::Queued { .. }))
        .await;
    a.send(Command::Leave);
    a.expect("left", |e| *e == Event::Left).await;

    redis.kill();
    a.send(Command::Next);
    a.expect(
        "unavailable",
        |e| matches!(e, Event::Error { code, .. } if code == "unavailable"),
    )
    .await;
    redis.restart();
    a.expect("queued again", |e| matches!(e, Event::Queued { .. }))
        .await;
    let mut b = Peer::start(&rdv, "outage-b", Gender::Male);
    b.join();
    a.connected().await;
    b.connected().await;
}
