//! The terminal UI in a real pseudo-terminal, chatting with a partner session.

mod common;

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anonchat_peer::identity::Identity;
use anonchat_peer::session::Event;
use anonchat_verifier::token::Gender;
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

/// What the screen has shown so far, escape sequences removed.
struct Screen {
    text: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Screen {
    fn watch(mut master: std::fs::File) -> Screen {
        let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let shared = text.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut raw = Vec::new();
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buf[..n]);
                *shared.lock().unwrap() = strip_escapes(&String::from_utf8_lossy(&raw));
            }
        });
        Screen { text }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_ui_chats_with_a_partner() {
    let rdv = Rendezvous::start().await;
    let dir = home("tui-user");
    rdv.verify(&Identity::load_or_create(&dir).unwrap(), Gender::Female);
    let (master, slave) = open_pty();
    let mut input = master.try_clone().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_anonchat"))
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
