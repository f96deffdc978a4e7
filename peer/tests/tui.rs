//! The terminal UI in a real pseudo-terminal, chatting with a partner session.

mod common;

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anonchat_peer::identity::Identity;
use anonchat_peer::session::Event;
use anonchat_protocol::token::Gender;
use common::{Peer, Rendezvous, home};

/// A pseudo-terminal of 100×30: (the side a terminal emulator holds, the side the program uses).
fn open_pty() -> (std::fs::File, OwnedFd) {
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize {
        ws_row: 30,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two fresh descriptors, which are owned from here on.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    unsafe {
        (
            std::fs::File::from_raw_fd(master),
            OwnedFd::from_raw_fd(slave),
        )
    }
}

/// What the screen has shown so far, escape sequences removed, and the bytes as they came.
struct Screen {
    text: std::sync::Arc<std::sync::Mutex<String>>,
    raw: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Screen {
    fn watch(mut master: std::fs::File) -> Screen {
        let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let raw = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (shared, bytes) = (text.clone(), raw.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut raw = bytes.lock().unwrap();
                raw.extend_from_slice(&buf[..n]);
                *shared.lock().unwrap() = strip_escapes(&String::from_utf8_lossy(&raw));
            }
        });
        Screen { text, raw }
    }

    async fn wait_for(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.text.lock().unwrap().contains(what) {
            assert!(
                Instant::now() < deadline,
                "{what:?} never appeared; the screen showed:\n{}",
                self.text.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Drops CSI sequences (cursor moves, colours); a cursor move becomes a space.
fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        if c == 'H' {
                            out.push(' ');
                        }
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `anonchat chat` in a pseudo-terminal, as user `name`, waiting in the queue.
async fn start_tui(rdv: &Rendezvous, name: &str) -> (std::process::Child, std::fs::File, Screen) {
    let dir = home(name);
    rdv.verify(&Identity::load_or_create(&dir).unwrap(), Gender::Female);
    let (master, slave) = open_pty();
    let input = master.try_clone().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_anonchat"))
        .args(["chat", "--loopback-only", "--rendezvous", &rdv.url])
        .args([
            "--nickname",
            "terminal",
            "--bio",
            "typing in a real terminal",
        ])
        .args(["--interests", "chess,jazz"])
        .env("ANONCHAT_HOME", &dir)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(slave);
    let screen = Screen::watch(master);
    screen.wait_for("in the queue").await;
    (child, input, screen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_ui_chats_with_a_partner() {
    let rdv = Rendezvous::start().await;
    let (mut child, mut input, screen) = start_tui(&rdv, "tui-user").await;

    let mut partner = Peer::start(&rdv, "tui-partner", Gender::Male);
    partner.send(anonchat_peer::session::Command::Join(
        anonchat_peer::session::JoinRequest {
            interests: vec!["jazz".into()],
            ..common::join_request("partner")
        },
    ));
    let code = partner.connected().await;
    screen.wait_for("matched with partner (m)").await;
    screen.wait_for("you both like jazz").await;
    screen.wait_for(&code).await;

    partner.say("hello from the other side");
    screen.wait_for("hello from the other side").await;

    input.write_all(b"hi").unwrap();
    partner
        .expect("typing", |e| *e == Event::Typing { on: true })
        .await;
    input.write_all(b" there\r").unwrap();
    partner
        .expect(
            "message",
            |e| matches!(e, Event::Message { text, .. } if text == "hi there"),
        )
        .await;
    screen.wait_for("you: hi there").await;

    input.write_all(b"/code\r").unwrap();
    screen.wait_for("if your partner sees another one").await;
    input.write_all(b"/quit\r").unwrap();
    partner
        .expect("partner_left", |e| *e == Event::PartnerLeft)
        .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the UI did not quit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success());
}

/// A partner's message full of escape sequences (window title, clipboard, a cursor jump to
/// draw a fake safety code over the header) reaches the screen as inert text: not one of its
/// escapes reaches the terminal, and the header keeps the real code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_sequences_from_a_partner_never_reach_the_terminal() {
    let rdv = Rendezvous::start().await;
    let (mut child, _input, screen) = start_tui(&rdv, "tui-target").await;
    let mut partner = Peer::start(&rdv, "tui-attacker", Gender::Male);
    partner.send(anonchat_peer::session::Command::Join(common::join_request(
        "attacker",
    )));
    let code = partner.connected().await;
    screen.wait_for(&code).await;
    // The sender's client sends whatever it is given: the defence belongs to the receiver.
    // (Forced: the fake code's digits look like a phone number to the contact filter.)
    partner.send(anonchat_peer::session::Command::Send {
        text: "\u{1b}]0;pwned-title\u{7}\u{1b}]52;c;cHduZWQ=\u{7}\u{1b}[1;1Hcode 1111 2222 3333\u{1b}[2Jafter".into(),
        force: true,
        id: None,
    });
    partner
        .expect("the ack", |e| matches!(e, Event::Ack { .. }))
        .await;
    screen.wait_for("pwned-title").await;
    screen.wait_for("after").await;
    let raw = String::from_utf8_lossy(&screen.raw.lock().unwrap()).into_owned();
    for escape in [
        "\u{1b}]0;pwned",
        "\u{1b}]52;",
        "\u{1b}[1;1Hcode 1111",
        "\u{1b}[2Jafter",
    ] {
        assert!(!raw.contains(escape), "{escape:?} reached the terminal");
    }
    assert!(raw.contains("\u{fffd}]0;pwned-title"), "shown, inert");
    assert!(
        screen
            .text
            .lock()
            .unwrap()
            .contains(&format!("code {code}"))
    );
    let _ = child.kill();
}
