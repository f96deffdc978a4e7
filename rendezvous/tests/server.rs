//! The rendezvous over real WebSockets with real tokens, message by message, on both stores.

mod common;

use std::future::Future;
use std::time::Duration;

use anonchat_protocol::token::Gender;
use anonchat_rendezvous::config::Config;
use anonchat_rendezvous::server::Running;
use anonchat_rendezvous::store::{Store, StoreConfig};
use common::{CANDIDATE, Client, OFFER, TestVerifier, recv, send};
use futures_util::SinkExt;
use serde_json::{Value, json};

/// Starts one instance with `tune`d settings on a store made for those settings.
async fn boot<S: Store, F: Future<Output = S>>(
    mk: &impl Fn(StoreConfig) -> F,
    verifier: &TestVerifier,
    tune: impl FnOnce(&mut Config),
) -> (Running, S) {
    let mut config = common::config();
    tune(&mut config);
    let store = mk(config.store_config()).await;
    let running = anonchat_rendezvous::server::start(
        config,
        store.clone(),
        anonchat_rendezvous::server::Keys::Fixed(verifier.keys()),
        std::future::pending(),
    )
    .await
    .unwrap();
    (running, store)
}

/// Logs in two users and matches them; returns (waiting one, joiner, their `matched` frames).
async fn pair(addr: std::net::SocketAddr, v: &TestVerifier) -> (Client, Client, Value, Value) {
    pair_of(addr, &v.device(Gender::Female), &v.device(Gender::Male)).await
}

/// As [`pair`], for given devices: `first` waits, `second` joins.
async fn pair_of(
    addr: std::net::SocketAddr,
    first: &common::Device,
    second: &common::Device,
) -> (Client, Client, Value, Value) {
    let (mut a, _) = Client::login(addr, first).await;
    let (mut b, _) = Client::login(addr, second).await;
    a.join("alice", "any").await;
    a.expect("queued").await;
    b.join("bobby", "any").await;
    let mb = b.expect("matched").await;
    let ma = a.expect("matched").await;
    (a, b, ma, mb)
}

async fn handshake_and_welcome<S: Store, F: Future<Output = S>>(mk: impl Fn(StoreConfig) -> F) {
    let v = TestVerifier::new();
    let (server, _) = boot(&mk, &v, |_| {}).await;
    let (_ws, nonce) = Client::connect(server.addr).await;
    assert_eq!(nonce.len(), 43, "base64url of 32 bytes, no padding");
    let (_, welcome) = Client::login(server.addr, &v.device(Gender::Female)).await;
    assert_eq!(welcome["daily_remaining"], 100);
    assert_eq!(welcome["protocol"], 1);
    assert_eq!(welcome["ice_servers"], json!([]));
}

/// With TURN configured, `welcome` and every `matched` carry credentials minted at that moment
/// for coturn's use-auth-secret mode, under a random name that is not the device's.
async fn turn_credentials_are_fresh_per_match<S: Store, F: Future<Output = S>>(
    mk: impl Fn(StoreConfig) -> F,
) {
    let v = TestVerifier::new();
    let (server, _) = boot(&mk, &v, |c| {
        c.turn_urls = vec!["turn:203.0.113.1:3478".into()];
        c.turn_secret = vec!["rotating-new".into(), "rotating-old".into()];
        c.turn_ttl = Duration::from_secs(300);
    })
    .await;
    let device = v.device(Gender::Female);
    let (_, welcome) = Client::login(server.addr, &device).await;
    let servers = welcome["ice_servers"].as_array().unwrap();
    assert_eq!(servers[0]["urls"], json!(["stun:203.0.113.1:3478"]));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let check = |turn: &Value| -> String {
        assert_eq!(turn["urls"], json!(["turn:203.0.113.1:3478"]));
        let username = turn["username"].as_str().unwrap().to_owned();
        let (expiry, opaque) = username.split_once(':').unwrap();
        let expiry: u64 = expiry.parse().unwrap();
        assert!(
            (now + 295..=now + 310).contains(&expiry),
            "{expiry} vs {now}"
        );
        assert!(
            !device.peer_id.contains(opaque) && opaque.len() >= 16,
            "{opaque}"
        );
        assert_eq!(
            turn["credential"].as_str().unwrap(),
            anonchat_rendezvous::ice::credential("rotating-new", &username)
        );
        username
    };
    let first = check(&servers[1]);
    let (_a, _b, ma, mb) = pair(server.addr, &v).await;
    let names = [
        check(&ma["ice_servers"][1]),
        check(&mb["ice_servers"][1]),
        first,
    ];
    assert!(
        names[0] != names[1] && names[1] != names[2],
        "every client gets its own: {names:?}"
    );
}

async fn handshake_refusals<S: Store, F: Future<Output = S>>(mk: impl Fn(StoreConfig) -> F) {
    let v = TestVerifier::new();
    let (server, _) = boot(&mk, &v, |c| c.hello_timeout = Duration::from_secs(1)).await;
    let addr = server.addr;
    let refuse = |hello: Value| async move {
        let (mut ws, _) = Client::connect(addr).await;
        send(&mut ws, hello).await;
        let err = recv(&mut ws).await.unwrap();
        assert!(recv(&mut ws).await.is_none(), "closed after the refusal");
        err
    };
    let device = v.device(Gender::Male);
    let other = v.device(Gender::Male);
    // A token from an unknown verifier key.
    let stranger = TestVerifier::new().device(Gender::Male);
    let expired = v.device_with_ttl(Gender::Male, -3600);
    // The trusted key, but a token that names another issuer (VERIFIER_ISSUER).
    let impostor = v.device_from("someone-else", Gender::Male, 3600);
    let cases = [
        (
            json!({"type": "hello", "token": impostor.token, "signature": "AAAA"}),
            "invalid_token",
        ),
        (
            json!({"type": "hello", "token": "garbage", "signature": "AAAA"}),
            "invalid_token",
        ),
        (
            json!({"type": "hello", "token": stranger.token, "signature": "AAAA"}),
            "invalid_token",
        ),
        (
            json!({"type": "hello", "token": expired.token, "signature": "AAAA"}),
            "token_expired",
        ),
        (
            json!({"type": "hello", "token": device.token, "signature": other.sign("wrong nonce")}),
            "bad_signature",
        ),
        (
            json!({"type": "hello", "token": device.token, "signature": "not base64 !!"}),
            "bad_signature",
        ),
        (
            json!({"type": "join", "profile": {"nickname": "x", "bio": "y"}, "want": "any"}),
            "not_authenticated",
        ),
        (json!({"type": "hello"}), "bad_message"),
    ];
    for (hello, code) in cases {
        let err = refuse(hello.clone()).await;
        assert_eq!(
            (err["type"].as_str(), err["code"].as_str()),
            (Some("error"), Some(code)),
            "{hello}: {err}"
        );
    }
    // A stolen token is useless without the device key: signing the right nonce with another key.
    let (mut ws, nonce) = Client::connect(addr).await;
    send(
        &mut ws,
        json!({"type": "hello", "token": device.token, "signature": other.sign(&nonce)}),
    )
    .await;
    assert_eq!(recv(&mut ws).await.unwrap()["code"], "bad_signature");
    // Silence: timeout after hello_timeout.
    let (mut ws, _) = Client::connect(addr).await;
    let err = recv(&mut ws).await.unwrap();
    assert_eq!(err["code"], "timeout");
}

async fn whole_protocol<S: Store, F: Future<Output = S>>(mk: impl Fn(StoreConfig) -> F) {
    let v = TestVerifier::new();
    let (server, _) = boot(&mk, &v, |_| {}).await;
    let (mut a, _) = Client::login(server.addr, &v.device(Gender::Female)).await;
    let (mut b, _) = Client::login(server.addr, &v.device(Gender::Male)).await;
    a.send(json!({"type": "join", "profile": {"nickname": "alice", "bio": "likes jazz and chess"}, "want": "m",
                  "interests": ["Jazz", "chess", "cats"], "transports": ["webrtc"]}))
        .await;
    assert_eq!(a.expect("queued").await["waiting"], 1);
    let stats: Value = common::get_json(server.addr, "/v1/stats").await;
    assert_eq!(stats["waiting"], 1, "{stats}");
    b.send(json!({"type": "join", "profile": {"nickname": "bobby", "bio": "here for jazz talk"}, "want": "f",
                  "interests": ["chess", "JAZZ "], "transports": ["webrtc", "libp2p"]}))
        .await;
    let mb = b.expect("matched").await;
    let ma = a.expect("matched").await;
    assert_eq!(ma["match_id"], mb["match_id"]);
    assert_eq!(
        (ma["role"].as_str(), mb["role"].as_str()),
        (Some("offerer"), Some("answerer"))
    );
    assert_eq!(ma["transport"], "webrtc", "only one side offers libp2p");
    assert_eq!(
        ma["partner"],
        json!({"nickname": "bobby", "bio": "here for jazz talk", "gender": "M", "common_interests": ["chess", "jazz"]})
    );
    assert_eq!(mb["partner"]["nickname"], "alice");
    assert_eq!(mb["partner"]["gender"], "F");
    assert_ne!(ma["receipt"], mb["receipt"]);
    for m in [&ma, &mb] {
        let text = m.to_string();
        assert!(
            !text.contains("12D3KooW"),
            "no device id is ever shown to a partner: {text}"
        );
    }
    let id = ma["match_id"].as_str().unwrap();
    // Signals go to the partner only, re-encoded from what was validated.
    a.send(json!({"type": "signal", "match_id": id, "data": {"kind": "offer", "sdp": OFFER}}))
        .await;
    let got = b.expect("signal").await;
    assert_eq!(got["data"], json!({"kind": "offer", "sdp": OFFER}));
    b.send(json!({"type": "signal", "match_id": id, "data": {"kind": "candidate", "candidate": CANDIDATE, "sdp_mid": "0", "sdp_m_line_index": 0}})).await;
    assert_eq!(a.expect("signal").await["data"]["candidate"], CANDIDATE);
    // A wrong match id is not relayed.
    a.send(json!({"type": "signal", "match_id": "nope", "data": {"kind": "offer", "sdp": OFFER}}))
        .await;
    a.expect_error("not_in_match").await;
    // Leave: the partner hears it.
    a.send(json!({"type": "leave", "match_id": id})).await;
    assert_eq!(b.expect("partner_left").await["match_id"], id);
    // No immediate rematch with the previous partner: both wait.
    a.join("alice", "any").await;
    a.expect("queued").await;
    b.join("bobby", "any").await;
    b.expect("queued").await;
    // Cancel.
    b.send(json!({"type": "cancel"})).await;
    b.expect("cancelled").await;
    // Joining twice.
    a.join("alice", "any").await;
    a.expect_error("already_queued").await;
    // Profiles are checked field by field.
    b.send(json!({"type": "join", "profile": {"nickname": "bo", "bio": "here for jazz talk"}, "want": "any"})).await;
    let err = b.expect_error("invalid_profile").await;
    assert_eq!(err["field"], "nickname");
}

async fn dropped_socket_tells_the_partner<S: Store, F: Future<Output = S>>(
    mk: impl Fn(StoreConfig) -> F,
) {
    let v = TestVerifier::new();
    let (server, _) = boot(&mk, &v, |_| {}).await;
    let (a, mut b, ma, _) = pair(server.addr, &v).await;
    drop(a);
    assert_eq!(b.expect("partner_left").await["match_id"], ma["match_id"]);
    // A waiting user whose socket drops leaves no ghost in the queue.
    let (mut c, _) = Client::login(server.addr, &v.device(Gender::Male)).await;
    c.join("carol", "any").await;
    c.expect("queued").await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats: Value = common::get_json(server.addr, "/v1/stats").await;
    assert_eq!(stats["waiting"], 0);
}

async fn undisclosed_users_only_want_any<S: Store, F: Future<Output = S>>(
    mk: impl Fn(StoreConfig) -> F,
) {
    let v = TestVerifier::new();
    let (server, _) = boot(&mk, &v, |_| {}).await;
    let (mut u, _) = Client::login(server.addr, &v.device(Gender::Undisclosed)).await;
    u.join("unnamed", "f").await;
    assert_eq!(u.expect_error("invalid_profile").await["field"], "want");
    let (mut m, _) = Client::login(server.addr, &v.device(Gender::Male)).await;
    m.join("marco", "f").await;
    m.expect("queued").await;
    u.join("unnamed", "any").await;
    u.expect("queued").await;
    let (mut w, _) = Client::login(server.addr, &v.device(Gender::Female)).await;
    w.join("wanda", "any").await;
    assert_eq!(
        w.expect("matched").await["partner"]["nickname"],
        "marco",
        "the longest waiting compatible user"
    );
}

async fn receipts_report_and_block<S: Store, F: Future<Output = S>>(mk: impl Fn(StoreConfig) -> F) {
    let v = TestVerifier::new();
    let (server, _) = boot(&mk, &v, |c| c.report_threshold = 2).await;
    let addr = server.addr;
    let target = v.device(Gender::Male);
    // Forged, foreign and missing receipts have no effect.
    let (mut x, _) = Client::login(addr, &v.device(Gender::Female)).await;
    for bad in [
        "",
        "forged",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        x.send(json!({"type": "report", "receipt": bad, "reason": "spam"}))
            .await;
        x.expect_error("invalid_receipt").await;
    }
    x.send(json!({"type": "report"})).await;
    x.expect_error("bad_message").await;
    // A real match; the target's own receipt cannot be used by someone else.
    let (mut t, mut r1, mt, m1) = pair_of(addr, &target, &v.device(Gender::Female)).await;
    x.send(json!({"type": "report", "receipt": m1["receipt"], "reason": "stolen"}))
        .await;
    x.expect_error("invalid_receipt").await;
    // One reporter, however often, bans no one.
    for _ in 0..3 {
        r1.send(json!({"type": "report", "receipt": m1["receipt"], "reason": "rude"}))
            .await;
        r1.expect("reported").await;
    }
    t.send(json!({"type": "leave", "match_id": mt["match_id"]}))
        .await;
    r1.expect("partner_left").await;
    // The target still gets in: a second, different reporter is needed.
    let (mut t2, mut r2, _, m2) = pair_of(addr, &target, &v.device(Gender::Female)).await;
    // Block: ends the current match, and the pair is never matched again.
    r2.send(json!({"type": "block", "receipt": m2["receipt"]}))
        .await;
    r2.expect("blocked").await;
    t2.expect("partner_left").await;
    r2.send(json!({"type": "report", "receipt": m2["receipt"], "reason": "rude"}))
        .await;
    r2.expect("reported").await;
    // The ban ends the target's open session at once.
    t2.expect_error("banned").await;
    assert!(recv(&mut t2.ws).await.is_none(), "closed after the ban");
    // Two unique reporters: banned at the next connection.
    let (mut ws, nonce) = Client::connect(addr).await;
    send(
        &mut ws,
        json!({"type": "hello", "token": target.token, "signature": target.sign(&nonce)}),
    )
    .await;
    let err = recv(&mut ws).await.unwrap();
    assert_eq!(err["code"], "banned", "{err}");
    assert!(err["retry_after"].as_u64().unwrap() > 0);
    // The block outlives the match: r2 and a fresh session of the blocked device never meet.
    // (The device is banned now, so show it with another blocked pair.)
    let (b1, b2) = (v.device(Gender::Female), v.device(Gender::Male));
    let (mut c1, mut c2, mc1, _) = pair_of(addr, &b1, &b2).await;
    c1.send(json!({"type": "block", "receipt": mc1["receipt"]}))
        .await;
    c1.expect("blocked").await;
    c2.expect("partner_left").await;
    c1.send(json!({"type": "join", "profile": {"nickname": "blocker", "bio": "here to chat a bit"}, "want": "any"})).await;
    c1.expect("queued").await;
    c2.join("blocked", "any").await;
    c2.expect("queued").await;
}

async fn only_signaling_is_relayed<S: Store, F: Future<Output = S>>(mk: impl Fn(StoreConfig) -> F) {
    let v = TestVerifier::new();
    let (server, _) = boot(&mk, &v, |_| {}).await;
    let (mut a, mut b, ma, _) = pair(server.addr, &v).await;
    let id = ma["match_id"].as_str().unwrap();
    let audio = OFFER.replace(
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
    );
    for data in [
        json!("hi! how are you? this is a chat message"),
        json!({"kind": "msg", "text": "hello"}),
        json!({"kind": "offer", "sdp": audio}),
        json!({"kind": "offer", "sdp": format!("{OFFER}a=x-chat:hello there\r\nhow are you\r\n")}),
        json!({"kind": "candidate", "candidate": "hello there"}),
        json!({"kind": "libp2p", "peer_id": "hello", "addrs": ["/ip4/127.0.0.1/tcp/1"]}),
        json!({"kind": "offer", "sdp": format!("{OFFER}a=x:{}\r\n", "y".repeat(20_000))}),
    ] {
        a.send(json!({"type": "signal", "match_id": id, "data": data}))
            .await;
        a.expect_error("not_signaling").await;
    }
    // 64 candidates pass, the 65th does not.
    for _ in 0..64 {
        a.send(json!({"type": "signal", "match_id": id, "data": {"kind": "candidate", "candidate": CANDIDATE}})).await;
    }
    for _ in 0..64 {
        b.expect("signal").await;
    }
    a.send(json!({"type": "signal", "match_id": id, "data": {"kind": "candidate", "candidate": CANDIDATE}})).await;
    a.expect_error("not_signaling").await;
    b.quiet(300).await;
    // A 100 KiB blob is over the frame limit: refused, and the socket is closed.
    let blob = json!({"type": "signal", "match_id": id, "data": {"kind": "offer", "sdp": "x".repeat(100 * 1024)}});
    a.ws.send(tokio_tungstenite::tungstenite::Message::Text(
        blob.to_string().into(),
    ))
    .await
    .ok();
    assert!(
        recv(&mut a.ws)
            .await
            .is_none_or(|v| v["code"] == "bad_message")
    );
    let metrics = common::get_text(server.addr, "/metrics").await;
    assert!(
        metrics.contains("rendezvous_not_signaling_total{label=\"sdp\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rendezvous_signals_forwarded_total 64"),
        "{metrics}"
    );
}

async fn signaling_window_closes<S: Store, F: Future<Output = S>>(mk: impl Fn(StoreConfig) -> F) {
    let v = TestVerifier::new();
    let (server, _) = boot(&mk, &v, |c| c.signal_window = Duration::from_secs(1)).await;
    let (mut a, mut b, ma, _) = pair(server.addr, &v).await;
    let id = ma["match_id"].as_str().unwrap();
    a.send(json!({"type": "signal", "match_id": id, "data": {"kind": "offer", "sdp": OFFER}}))
        .await;
    b.expect("signal").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    a.send(json!({"type": "signal", "match_id": id, "data": {"kind": "answer", "sdp": OFFER}}))
        .await;
    let err = a.expect_error("not_signaling").await;
    assert!(err["message"].as_str().unwrap().contains("window"), "{err}");
    b.quiet(200).await;
}

async fn malformed_frames_never_break_the_server<S: Store, F: Future<Output = S>>(
    mk: impl Fn(StoreConfig) -> F,
) {
    use tokio_tungstenite::tungstenite::Message;
    let v = TestVerifier::new();
    let (server, _) = boot(&mk, &v, |_| {}).await;
    let (mut a, _) = Client::login(server.addr, &v.device(Gender::Female)).await;
    for frame in [
        "not json",
        "{}",
        r#"{"type":"dance"}"#,
        r#"{"type":"join"}"#,
        r#"{"type":"hello","token":"t","signature":"s"}"#,
        "[1,2,3]",
        "null",
    ] {
        a.ws.send(Message::Text(frame.into())).await.unwrap();
        a.expect_error("bad_message").await;
    }
    a.ws.send(Message::Binary(vec![1u8, 2, 3].into()))
        .await
        .unwrap();
    a.expect_error("bad_message").await;
    // Still usable after all that.
    a.join("alice", "any").await;
    a.expect("queued").await;
    // A 1 MiB frame closes that socket, and only that one.
    let (mut big, _) = Client::login(server.addr, &v.device(Gender::Male)).await;
    big.ws
        .send(Message::Text("x".repeat(1 << 20).into()))
        .await
        .ok();
    assert!(
        recv(&mut big.ws)
            .await
            .is_none_or(|v| v["code"] == "bad_message")
    );
    // A garbage hello on a fresh socket.
    let (mut ws, _) = Client::connect(server.addr).await;
    ws.send(Message::Text("\u{0}\u{1}garbage".into()))
        .await
        .unwrap();
    assert_eq!(recv(&mut ws).await.unwrap()["code"], "bad_message");
    // Meanwhile others are served.
    let (mut b, _) = Client::login(server.addr, &v.device(Gender::Male)).await;
    b.join("bobby", "any").await;
    b.expect("matched").await;
    a.expect("matched").await;
}

async fn silent_sockets_are_closed<S: Store, F: Future<Output = S>>(mk: impl Fn(StoreConfig) -> F) {
    let v = TestVerifier::new();
    let (server, store) = boot(&mk, &v, |c| c.idle_timeout = Duration::from_secs(1)).await;
    let (mut a, _) = Client::login(server.addr, &v.device(Gender::Female)).await;
    a.join("alice", "any").await;
    a.expect("queued").await;
    // Not reading means not answering the server's pings either: a dead client.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(store.stats().await.unwrap().waiting, 0, "out of the queue");
    let metrics = common::get_text(server.addr, "/metrics").await;
    assert!(
        metrics.contains("rendezvous_errors_total{label=\"timeout\"} 1"),
        "{metrics}"
    );
    // The socket is closed (the client's late pongs may meet a closed socket first).
    while recv(&mut a.ws).await.is_some() {}
}

async fn rate_limits<S: Store, F: Future<Output = S>>(mk: impl Fn(StoreConfig) -> F) {
    let v = TestVerifier::new();
    let (server, _) = boot(&mk, &v, |c| {
        c.rate_limit_per_minute = 3;
        c.frames_per_second = 2;
    })
    .await;
    let (mut a, _) = Client::login(server.addr, &v.device(Gender::Female)).await;
    for _ in 0..6 {
        a.send(json!({"type": "cancel"})).await;
    }
    let mut limited = 0;
    for _ in 0..6 {
        let f = a.recv().await;
        if f["code"] == "rate_limited" {
            limited += 1;
        }
    }
    assert!(limited >= 1, "a burst over the frame rate is refused");
    // New sockets per IP: the 4th within the minute gets 429.
    let _b = Client::login(server.addr, &v.device(Gender::Male)).await;
    let _c = Client::login(server.addr, &v.device(Gender::Male)).await;
    let err = tokio_tungstenite::connect_async(format!("ws://{}/v1/ws", server.addr))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("429"), "{err}");
}

async fn http_endpoints_and_admin<S: Store, F: Future<Output = S>>(mk: impl Fn(StoreConfig) -> F) {
    let v = TestVerifier::new();
    let (server, _) = boot(&mk, &v, |c| {
        c.admin_token = Some("s3cret-admin".into());
        c.report_threshold = 1;
    })
    .await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let (mut a, mut b, ma, _) = pair(server.addr, &v).await;
    let stats: Value = http
        .get(format!("{base}/v1/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["waiting"], 0);
    for (auth, status) in [
        (None, 401),
        (Some("Bearer wrong"), 401),
        (Some("s3cret-admin"), 401),
        (Some("Bearer s3cret-admin"), 200),
    ] {
        let mut req = http.get(format!("{base}/v1/admin/metrics"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        assert_eq!(req.send().await.unwrap().status(), status, "{auth:?}");
    }
    // Ban b through a report (threshold 1), then unban by peer id.
    let b_device = v.device(Gender::Male);
    let (mut c, _) = Client::login(server.addr, &b_device).await;
    a.send(json!({"type": "leave", "match_id": ma["match_id"]}))
        .await;
    b.expect("partner_left").await;
    a.join("alice", "any").await;
    a.expect("queued").await;
    c.join("carol", "any").await;
    c.expect("matched").await;
    let m = a.expect("matched").await;
    a.send(json!({"type": "report", "receipt": m["receipt"], "reason": "abuse"}))
        .await;
    a.expect("reported").await;
    let (mut ws, nonce) = Client::connect(server.addr).await;
    send(
        &mut ws,
        json!({"type": "hello", "token": b_device.token, "signature": b_device.sign(&nonce)}),
    )
    .await;
    assert_eq!(recv(&mut ws).await.unwrap()["code"], "banned");
    let unban = |auth: &'static str| {
        http.post(format!("{base}/v1/admin/unban"))
            .header("authorization", auth)
            .json(&json!({"peer_id": b_device.peer_id}))
            .send()
    };
    assert_eq!(unban("Bearer nope").await.unwrap().status(), 401);
    let r: Value = unban("Bearer s3cret-admin")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["unbanned"], true);
    Client::login(server.addr, &b_device).await;
    let reset = http
        .post(format!("{base}/v1/admin/reset"))
        .header("authorization", "Bearer s3cret-admin")
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
}

async fn admin_is_off_without_a_token<S: Store, F: Future<Output = S>>(
    mk: impl Fn(StoreConfig) -> F,
) {
    let v = TestVerifier::new();
    let (server, _) = boot(&mk, &v, |_| {}).await;
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/admin/reset", server.addr))
        .header("authorization", "Bearer ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

async fn shutdown_tells_clients<S: Store, F: Future<Output = S>>(mk: impl Fn(StoreConfig) -> F) {
    let v = TestVerifier::new();
    let (server, store) = boot(&mk, &v, |_| {}).await;
    let (mut a, _) = Client::login(server.addr, &v.device(Gender::Female)).await;
    a.join("alice", "any").await;
    a.expect("queued").await;
    server.shutdown().await.unwrap();
    let bye = a.expect_error("shutting_down").await;
    assert_eq!(bye["retry_after"], 1);
    assert_eq!(
        store.stats().await.unwrap().waiting,
        0,
        "its tickets left with it"
    );
}

async fn two_instances_share_one_store<S: Store, F: Future<Output = S>>(
    mk: impl Fn(StoreConfig) -> F,
) {
    let v = TestVerifier::new();
    let (one, store) = boot(&mk, &v, |c| c.heartbeat_ttl = Duration::from_secs(1)).await;
    let two = common::start(store.clone(), &v, |c| {
        c.heartbeat_ttl = Duration::from_secs(1)
    })
    .await;
    let (mut a, _) = Client::login(one.addr, &v.device(Gender::Female)).await;
    let (mut b, _) = Client::login(two.addr, &v.device(Gender::Male)).await;
    common::meet_and_signal(&mut a, &mut b).await;
    // Online counts travel with the heartbeats (every 250 ms here).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let stats: Value = common::get_json(two.addr, "/v1/stats").await;
    assert_eq!(
        stats["online"], 2,
        "online is counted across instances: {stats}"
    );
    drop(b);
    a.expect("partner_left").await;
    // An instance that stops cleanly takes its waiting users' tickets with it.
    let (mut w, _) = Client::login(two.addr, &v.device(Gender::Male)).await;
    w.join("walter", "m").await;
    w.expect("queued").await;
    two.shutdown().await.unwrap();
    w.expect_error("shutting_down").await;
    assert_eq!(store.stats().await.unwrap().waiting, 0);
}

/// The review's wall, at the session level: one token on many sockets. Each new socket of the
/// device replaces the previous one (on any instance), which is told and closed, and its place
/// in the queue goes with it.
async fn one_live_session_per_device<S: Store, F: Future<Output = S>>(
    mk: impl Fn(StoreConfig) -> F,
) {
    let v = TestVerifier::new();
    let (one, store) = boot(&mk, &v, |_| {}).await;
    let two = common::start(store.clone(), &v, |_| {}).await;
    let device = v.device(Gender::Female);
    let mut sockets: Vec<Client> = Vec::new();
    for i in 0..6 {
        let addr = if i % 2 == 0 { one.addr } else { two.addr };
        let (mut c, _) = Client::login(addr, &device).await;
        c.join(&format!("wall{i}"), "m").await;
        c.expect("queued").await;
        if let Some(mut previous) = sockets.pop() {
            let err = previous.expect_error("replaced").await;
            assert!(err["message"].as_str().unwrap().contains("connected again"));
            assert!(
                recv(&mut previous.ws).await.is_none(),
                "the older socket is closed"
            );
        }
        sockets.push(c);
    }
    // One place in the queue, not six.
    let mut waiting = u64::MAX;
    for _ in 0..50 {
        waiting = store.stats().await.unwrap().waiting;
        if waiting == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(waiting, 1);
    // The last socket still works: a man who joins meets it.
    let (mut man, _) = Client::login(one.addr, &v.device(Gender::Male)).await;
    man.join("mark", "any").await;
    man.expect("matched").await;
    sockets[0].expect("matched").await;
    two.shutdown().await.unwrap();
}

async fn sessions_end_when_the_token_lapses<S: Store, F: Future<Output = S>>(
    mk: impl Fn(StoreConfig) -> F,
) {
    let v = TestVerifier::new();
    let (server, store) = boot(&mk, &v, |_| {}).await;
    let device = v.device_with_ttl(Gender::Male, 2);
    let (mut c, _) = Client::login(server.addr, &device).await;
    c.join("brief", "any").await;
    c.expect("queued").await;
    c.expect_error("token_expired").await;
    assert!(
        recv(&mut c.ws).await.is_none(),
        "closed when the token lapsed"
    );
    assert_eq!(
        store.stats().await.unwrap().waiting,
        0,
        "and out of the queue"
    );
}

/// What another instance publishes is checked again: prose dressed as signaling, or a partner
/// card outside the profile rules, never reaches a client even when it comes through the store.
async fn envelopes_from_other_instances_are_checked_again<S: Store, F: Future<Output = S>>(
    mk: impl Fn(StoreConfig) -> F,
) {
    let v = TestVerifier::new();
    let (server, store) = boot(&mk, &v, |_| {}).await;
    let (_a, mut b, _, mb) = pair(server.addr, &v).await;
    let match_id = mb["match_id"].as_str().unwrap();
    let to = b.session.clone();
    let publish = |data: Value| {
        let envelope = json!({"kind": "signal", "to": to, "match_id": match_id, "data": data});
        let store = store.clone();
        let instance = server.instance.clone();
        async move {
            store
                .publish(&instance, envelope.to_string())
                .await
                .unwrap()
        }
    };
    publish(
        json!({"kind": "offer", "sdp": format!("{OFFER}i=meet me at the station at nine\r\n")}),
    )
    .await;
    publish(json!({"kind": "candidate", "candidate": format!("{CANDIDATE} call me")})).await;
    publish(json!({"kind": "chat", "text": "hello"})).await;
    b.quiet(300).await;
    // The same way, real signaling still arrives.
    publish(json!({"kind": "candidate", "candidate": CANDIDATE})).await;
    assert_eq!(b.expect("signal").await["data"]["candidate"], CANDIDATE);
}

/// The review's starvation: with MATCH_SCAN=8, eight waiting people nobody here wants fill
/// every join's scan, so two newcomers who want each other both queue, and used to wait
/// forever. Now the one who waited looks again and finds the other.
async fn a_bounded_scan_does_not_mean_never<S: Store, F: Future<Output = S>>(
    mk: impl Fn(StoreConfig) -> F,
) {
    let v = TestVerifier::new();
    let (server, _) = boot(&mk, &v, |c| {
        c.match_scan = 8;
        c.match_rescan_after = Duration::from_secs(1);
    })
    .await;
    let mut wall = Vec::new();
    for i in 0..8 {
        let (mut c, _) = Client::login(server.addr, &v.device(Gender::Female)).await;
        c.join(&format!("wall{i}"), "m").await;
        c.expect("queued").await;
        wall.push(c);
    }
    let (mut a, _) = Client::login(server.addr, &v.device(Gender::Female)).await;
    let (mut b, _) = Client::login(server.addr, &v.device(Gender::Female)).await;
    a.join("annie", "any").await;
    a.expect("queued").await;
    b.join("betty", "any").await;
    b.expect("queued").await;
    let (ma, mb) = tokio::join!(a.expect("matched"), b.expect("matched"));
    assert_eq!(ma["match_id"], mb["match_id"]);
}

/// A nickname that carries a number in consonants: digits can spell things a profanity filter
/// rightly refuses ("user0069" was one).
fn nickname(i: usize) -> String {
    let digits: String = format!("{i:04}")
        .bytes()
        .map(|d| b"bdhjlmnqvz"[(d - b'0') as usize] as char)
        .collect();
    format!("user{digits}")
}

fn index(nickname: &str) -> usize {
    nickname[4..].bytes().fold(0, |n, c| {
        n * 10 + b"bdhjlmnqvz".iter().position(|&x| x == c).unwrap()
    })
}

/// 2,000 real WebSocket clients with random genders and preferences join at once.
async fn two_thousand_clients<S: Store, F: Future<Output = S>>(mk: impl Fn(StoreConfig) -> F) {
    use rand::Rng;
    let v = TestVerifier::new();
    let (server, _) = boot(&mk, &v, |_| {}).await;
    let n = 2000;
    let mut rng = rand::thread_rng();
    let people: Vec<(Gender, &str)> = (0..n)
        .map(|_| {
            let g = [Gender::Male, Gender::Female, Gender::Undisclosed][rng.gen_range(0..3)];
            let w = if g == Gender::Undisclosed {
                "any"
            } else {
                ["any", "m", "f"][rng.gen_range(0..3)]
            };
            (g, w)
        })
        .collect();
    let mut clients = Vec::new();
    for (g, _) in &people {
        clients.push(Client::login(server.addr, &v.device(*g)).await.0);
    }
    let tasks: Vec<_> = clients
        .into_iter()
        .zip(people.clone())
        .enumerate()
        .map(|(i, (mut c, (_, want)))| {
            tokio::spawn(async move {
                c.join(&nickname(i), want).await;
                let first = c.recv().await;
                (i, c, first)
            })
        })
        .collect();
    let mut waiting = Vec::new();
    let mut partner_of = std::collections::HashMap::new();
    for t in tasks {
        let (i, c, first) = t.await.unwrap();
        match first["type"].as_str().unwrap() {
            "matched" => {
                partner_of.insert(i, index(first["partner"]["nickname"].as_str().unwrap()));
            }
            "queued" => waiting.push((i, c)),
            other => panic!("{other}: {first}"),
        }
    }
    // Those who were queued may have been matched since: read what they got.
    let mut still = Vec::new();
    for (i, mut c) in waiting {
        match tokio::time::timeout(Duration::from_millis(100), recv(&mut c.ws)).await {
            Ok(Some(m)) if m["type"] == "matched" => {
                partner_of.insert(i, index(m["partner"]["nickname"].as_str().unwrap()));
            }
            Ok(other) => panic!("{other:?}"),
            Err(_) => still.push(i),
        }
    }
    let accepts = |want: &str, g: Gender| {
        want == "any" || (want == "m" && g == Gender::Male) || (want == "f" && g == Gender::Female)
    };
    let compatible =
        |a: usize, b: usize| accepts(people[a].1, people[b].0) && accepts(people[b].1, people[a].0);
    for (&a, &b) in &partner_of {
        assert_eq!(
            partner_of.get(&b),
            Some(&a),
            "{a} and {b} disagree about their match"
        );
        assert!(compatible(a, b), "{a} and {b} broke a preference");
    }
    for (k, &a) in still.iter().enumerate() {
        for &b in &still[k + 1..] {
            assert!(!compatible(a, b), "{a} and {b} were both left waiting");
        }
    }
    assert_eq!(
        partner_of.len() + still.len(),
        n,
        "everyone was matched once or is waiting"
    );
}

macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(|c| async move { crate::common::memory(c) }).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let server = crate::common::RedisServer::start();
                    let url = server.url.clone();
                    super::$name(move |c| {
                        let url = url.clone();
                        async move { anonchat_rendezvous::store::redis::RedisStore::connect(&url, c).await.unwrap() }
                    })
                    .await;
                }
            )*
        }
    };
}

/// The same on a real Redis Cluster (three primaries): what crosses instances, and what
/// walks the keys (the admin reset).
macro_rules! on_a_cluster {
    ($($name:ident),* $(,)?) => {
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let cluster = crate::common::RedisCluster::start();
                    let nodes = cluster.nodes();
                    super::$name(move |c| {
                        let nodes = nodes.clone();
                        async move { anonchat_rendezvous::store::redis::RedisStore::connect_cluster(nodes, c).await.unwrap() }
                    })
                    .await;
                }
            )*
        }
    };
}

on_a_cluster! {
    whole_protocol,
    dropped_socket_tells_the_partner,
    receipts_report_and_block,
    http_endpoints_and_admin,
    two_instances_share_one_store,
    one_live_session_per_device,
    envelopes_from_other_instances_are_checked_again,
}

both_stores! {
    handshake_and_welcome,
    turn_credentials_are_fresh_per_match,
    handshake_refusals,
    whole_protocol,
    dropped_socket_tells_the_partner,
    undisclosed_users_only_want_any,
    receipts_report_and_block,
    only_signaling_is_relayed,
    signaling_window_closes,
    malformed_frames_never_break_the_server,
    rate_limits,
    silent_sockets_are_closed,
    http_endpoints_and_admin,
    admin_is_off_without_a_token,
    shutdown_tells_clients,
    two_instances_share_one_store,
    two_thousand_clients,
    one_live_session_per_device,
    sessions_end_when_the_token_lapses,
    envelopes_from_other_instances_are_checked_again,
    a_bounded_scan_does_not_mean_never,
}

#[tokio::test]
async fn the_web_page_and_its_config_are_served_with_a_strict_policy() {
    let v = TestVerifier::new();
    let server = common::start(common::memory(StoreConfig::default()), &v, |c| {
        c.verifier_jwks_url = Some("http://verifier.example:8000/.well-known/jwks.json".into());
    })
    .await;
    let page = reqwest::get(format!("http://{}/", server.addr))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(
        csp.contains("http://verifier.example:8000"),
        "the verifier may be called: {csp}"
    );
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.text()
            .await
            .unwrap()
            .contains(r#"<script type="module" src="/js/main.js">"#)
    );
    for script in [
        "main",
        "identity",
        "verify",
        "rendezvous",
        "chat",
        "messages",
    ] {
        let js = reqwest::get(format!("http://{}/js/{script}.js", server.addr))
            .await
            .unwrap();
        assert_eq!(js.status(), 200, "{script}.js");
        assert!(
            js.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/javascript")
        );
    }
    for icon in ["/favicon.ico", "/favicon.svg"] {
        let got = reqwest::get(format!("http://{}{icon}", server.addr))
            .await
            .unwrap();
        assert_eq!(got.status(), 200, "{icon}");
        assert_eq!(got.headers()["content-type"], "image/svg+xml");
        assert!(got.text().await.unwrap().starts_with("<svg"));
    }
    let config: Value = common::get_json(server.addr, "/config.json").await;
    assert_eq!(config["verifier_url"], "http://verifier.example:8000");
    let missing = reqwest::get(format!("http://{}/js/nope.js", server.addr))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

/// The binary says at start, in one line, when no STUN or TURN server is configured, and
/// refuses TURN without its secret; with TURN configured it does not warn.
#[tokio::test]
async fn the_binary_warns_when_nothing_crosses_networks() {
    let v = TestVerifier::new();
    let dir = std::env::temp_dir().join(format!("rdv-ice-warning-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks = common::jwks_file(&dir, &v);
    // Runs the binary until it listens (or exits); returns what it printed.
    let run = |settings: &[(&str, &str)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_anonchat-rendezvous"));
        command
            .arg("serve")
            .env("RENDEZVOUS_ADDR", "127.0.0.1:0")
            .env("VERIFIER_JWKS_FILE", &jwks)
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, val) in settings {
            command.env(k, val);
        }
        let mut child = command.spawn().unwrap();
        let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let readers: Vec<_> = [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ]
        .into_iter()
        .map(|pipe| {
            let printed = printed.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut p = printed.lock().unwrap();
                    p.push_str(&line);
                    p.push('\n');
                }
            })
        })
        .collect();
        // Until it listens (logged after any warning about the settings) or exits.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none()
            && !printed.lock().unwrap().contains("rendezvous listening")
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        for r in readers {
            r.join().unwrap();
        }
        printed.lock().unwrap().clone()
    };
    let bare = run(&[]);
    let warnings: Vec<&str> = bare
        .lines()
        .filter(|l| l.contains("will not be able to connect"))
        .collect();
    assert_eq!(warnings.len(), 1, "{bare}");
    assert!(warnings[0].contains("WARN"), "{bare}");
    let turn = run(&[("TURN_URLS", "turn:203.0.113.1:3478"), ("TURN_SECRET", "s")]);
    assert!(turn.contains("rendezvous listening"), "{turn}");
    assert!(!turn.contains("will not be able to connect"), "{turn}");
    let no_secret = run(&[("TURN_URLS", "turn:203.0.113.1:3478")]);
    assert!(
        no_secret.contains("TURN_URLS needs TURN_SECRET"),
        "{no_secret}"
    );
}

/// The verifier's key set as a file, for the binary's VERIFIER_JWKS_FILE.

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_outlasts_a_slowloris_attack_with_few_descriptors() {
    use anonchat_serve::testing::{free_port, limit_open_files, outlasts_slowloris, wait_healthy};
    let v = TestVerifier::new();
    let dir = std::env::temp_dir().join(format!("rdv-slowloris-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks = common::jwks_file(&dir, &v);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_anonchat-rendezvous"));
    command
        .arg("serve")
        .env("RENDEZVOUS_ADDR", addr.to_string())
        .env("VERIFIER_JWKS_FILE", &jwks)
        .env("HTTP_HEADER_TIMEOUT_SECONDS", "2")
        .env("RATE_LIMIT_PER_MINUTE", "0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // As the review ran it: `ulimit -n 256`, then 246 half-sent heads.
    limit_open_files(&mut command, 256);
    let mut child = command.spawn().unwrap();
    let result = async {
        wait_healthy(addr, Duration::from_secs(10)).await?;
        outlasts_slowloris(addr, 246, Duration::from_secs(2)).await
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&dir).ok();
    result.unwrap();
}

#[tokio::test]
async fn the_verifiers_keys_come_over_https_within_a_size_limit_and_are_waited_for() {
    use anonchat_rendezvous::server::{self, Keys};
    use anonchat_rendezvous::store::memory::MemoryStore;
    use common::config;
    let v = TestVerifier::new();
    let start = |url: String| async move {
        let mut c = config();
        c.verifier_jwks_url = Some(url);
        let keys = Keys::from_config(&c)?;
        server::start(
            c,
            MemoryStore::new(StoreConfig::default()),
            keys,
            std::future::pending(),
        )
        .await
    };
    // Plain http to anything but loopback is refused before a byte is sent.
    let refused = start("http://verifier.example/.well-known/jwks.json".into())
        .await
        .err()
        .unwrap();
    assert!(refused.to_string().contains("must be https"), "{refused:#}");

    // A loopback "verifier" serving a document far larger than any key set.
    let real = serde_json::to_string(&anonchat_protocol::token::Jwks {
        keys: vec![v.key.public_jwk()],
    })
    .unwrap();
    let padded = format!(
        "{{\"pad\": \"{}\", {}",
        "x".repeat(2 * anonchat_rendezvous::server::MAX_JWKS_BYTES),
        &real[1..]
    );
    let documents = [real, padded];
    // A port with nobody on it yet (connections are refused), the verifier's address later.
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let app = axum::Router::new()
        .route(
            "/small",
            axum::routing::get({
                let d = documents[0].clone();
                move || async move { d }
            }),
        )
        .route(
            "/huge",
            axum::routing::get({
                let d = documents[1].clone();
                move || async move { d }
            }),
        );
    // Not yet listening: the rendezvous starts anyway, unready, and waits for the verifier.
    let early = start(format!("http://{addr}/small")).await.unwrap();
    let huge = start(format!("http://{addr}/huge")).await.unwrap();
    let ready = |addr: std::net::SocketAddr| async move {
        reqwest::get(format!("http://{addr}/readyz"))
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(ready(early.addr).await, 503);
    let device = v.device(Gender::Female);
    let refused = anonchat_testkit::ws::login(early.addr, None, &device)
        .await
        .err()
        .unwrap();
    assert!(refused.to_string().contains("unavailable"), "{refused}");
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    // Retried with backoff from 250 ms: ready within seconds once the verifier answers.
    let t0 = std::time::Instant::now();
    while ready(early.addr).await != 200 {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "never ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Client::login(early.addr, &device).await;
    // A document past the size limit is never taken: still unready.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(ready(huge.addr).await, 503, "the huge key set was refused");
    let running = start(format!("http://{addr}/small")).await.unwrap();
    assert_eq!(
        ready(running.addr).await,
        200,
        "keys at start: ready at once"
    );
    for r in [early, huge, running] {
        r.shutdown().await.unwrap();
    }
}
