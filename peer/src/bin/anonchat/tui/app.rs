//! The terminal UI's state and how it is drawn; no I/O, so it is tested by rendering into a
//! buffer.

use std::collections::HashMap;

use anonchat_peer::session::Event;
use anonchat_protocol::chat;
use anonchat_protocol::rendezvous::PartnerInfo;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Connecting,
    Waiting { waiting: u64 },
    Matched { partner: PartnerInfo },
    Chatting { partner: PartnerInfo, code: String },
    Idle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Me,
    Partner,
    System,
    Error,
}

struct Entry {
    who: Who,
    text: String,
    /// For my messages: sent, then delivered.
    delivered: Option<bool>,
}

pub struct App {
    pub status: Status,
    pub input: String,
    pub partner_typing: bool,
    log: Vec<Entry>,
    /// My messages by id, as indices into `log`.
    mine: HashMap<String, usize>,
    spinner: usize,
}

impl App {
    pub fn new() -> Self {
        App {
            status: Status::Connecting,
            input: String::new(),
            partner_typing: false,
            log: Vec::new(),
            mine: HashMap::new(),
            spinner: 0,
        }
    }

    pub fn tick(&mut self) {
        self.spinner = (self.spinner + 1) % SPINNER.len();
    }

    pub fn system(&mut self, text: impl Into<String>) {
        self.push(Who::System, text.into(), None);
    }

    pub fn problem(&mut self, text: impl Into<String>) {
        self.push(Who::Error, text.into(), None);
    }

    /// A message this side sent under `id`, marked when acknowledged.
    pub fn outgoing(&mut self, id: String, text: String) {
        self.push(Who::Me, text, Some(false));
        self.mine.insert(id, self.log.len() - 1);
    }

    pub fn safety_code(&self) -> Option<&str> {
        match &self.status {
            Status::Chatting { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Every line of the log goes through here, made inert: messages, and system lines and
    /// errors that quote what a partner chose (its nickname, bio, a refused frame).
    fn push(&mut self, who: Who, text: String, delivered: Option<bool>) {
        self.log.push(Entry {
            who,
            text: chat::inert(&text),
            delivered,
        });
    }

    pub fn on_event(&mut self, event: &Event) {
        match event {
            Event::Ready { daily_remaining } => {
                self.system(format!("connected · {daily_remaining} matches left today"))
            }
            Event::Queued { waiting } => {
                self.status = Status::Waiting { waiting: *waiting };
            }
            Event::Matched { partner } => {
                self.partner_typing = false;
                let mut about = format!(
                    "matched with {} ({}): {}",
                    partner.nickname,
                    gender(&partner.gender),
                    partner.bio
                );
                if !partner.common_interests.is_empty() {
                    about += &format!(" · you both like {}", partner.common_interests.join(", "));
                }
                self.system(about);
                // The header shows these beside the safety code: inert there too.
                self.status = Status::Matched {
                    partner: PartnerInfo {
                        nickname: chat::inert(&partner.nickname),
                        bio: chat::inert(&partner.bio),
                        gender: chat::inert(&partner.gender),
                        common_interests: partner
                            .common_interests
                            .iter()
                            .map(|i| chat::inert(i))
                            .collect(),
                    },
                };
            }
            Event::Connected {
                transport,
                setup_ms,
                safety_code,
                fallback,
                path,
                ..
            } => {
                if let Status::Matched { partner } = &self.status {
                    self.status = Status::Chatting {
                        partner: partner.clone(),
                        code: safety_code.clone(),
                    };
                }
                if let Some(why) = fallback {
                    self.system(format!(
                        "libp2p did not connect ({why}); using WebRTC instead"
                    ));
                }
                let path = if path == "relayed" {
                    "through a relay (your address is hidden from your partner)"
                } else {
                    "direct"
                };
                self.system(format!(
                    "connected peer-to-peer over {transport}, {path}, in {setup_ms:.0} ms · safety code {safety_code} (compare it with your partner's)"
                ));
            }
            Event::Sent { .. } => {}
            Event::Ack { id } => {
                if let Some(&i) = self.mine.get(id) {
                    self.log[i].delivered = Some(true);
                }
            }
            Event::Message { text, flagged, .. } => {
                self.partner_typing = false;
                let text = if *flagged {
                    format!("{text}  ⚠ contains contact details: be careful")
                } else {
                    text.clone()
                };
                self.push(Who::Partner, text, None);
            }
            Event::Typing { on } => self.partner_typing = *on,
            Event::Image {
                mime,
                bytes,
                width,
                height,
                path,
                ..
            } => {
                self.partner_typing = false;
                let kind = mime.trim_start_matches("image/").to_uppercase();
                let kept = match path {
                    Some(path) => format!("saved to {}", path.display()),
                    None => "/save to keep it".to_owned(),
                };
                self.push(
                    Who::Partner,
                    format!(
                        "[image: {kind}, {width}×{height}, {} KiB · {kept}]",
                        bytes.div_ceil(1024)
                    ),
                    None,
                );
            }
            Event::Saved { path, .. } => self.system(format!("image saved to {}", path.display())),
            Event::PartnerLeft => {
                self.partner_typing = false;
                self.status = Status::Idle;
                self.system("your partner left · /next to meet someone else, /quit to stop");
            }
            Event::Left => {
                self.status = Status::Idle;
                self.system("you left · /next to meet someone else, /quit to stop");
            }
            Event::Reported => self.system("report received by the rendezvous"),
            Event::Blocked => self.system("blocked: you will not be matched again"),
            Event::Reconnecting { attempt, in_ms } => {
                self.status = Status::Connecting;
                self.system(format!(
                    "reconnecting to the rendezvous in {:.1} s (attempt {attempt})",
                    *in_ms as f64 / 1000.0
                ));
            }
            Event::Error { message, .. } => self.problem(message.clone()),
        }
    }

    fn header(&self) -> Line<'_> {
        match &self.status {
            Status::Connecting => Line::from("connecting to the rendezvous…"),
            Status::Waiting { waiting } => Line::from(format!(
                "{} waiting for a partner · {waiting} in the queue",
                SPINNER[self.spinner]
            )),
            Status::Matched { partner } => Line::from(format!(
                "{} connecting to {}…",
                SPINNER[self.spinner], partner.nickname
            )),
            Status::Chatting { partner, code } => Line::from(vec![
                Span::from(partner.nickname.clone()).bold(),
                Span::from(format!(
                    " ({}) · {} · code {code}",
                    gender(&partner.gender),
                    partner.bio
                )),
            ]),
            Status::Idle => Line::from("not chatting · /next to meet someone"),
        }
    }

    pub fn render(&self, frame: &mut Frame) {
        let [header, log, typing, input] = Layout::vertical([
            Constraint::Length(3),
            Constraint::Min(1),
            Constraint::Length(1),
            Constraint::Length(3),
        ])
        .areas(frame.area());
        frame.render_widget(
            Paragraph::new(self.header()).block(Block::bordered().title(" AnonChat ")),
            header,
        );

        let lines: Vec<Line> = self.log.iter().map(entry_line).collect();
        // Show the end of the conversation: scroll past what does not fit.
        let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false });
        let total = paragraph.line_count(log.width) as u16;
        let scroll = total.saturating_sub(log.height);
        frame.render_widget(paragraph.scroll((scroll, 0)), log);

        if self.partner_typing
            && let Status::Chatting { partner, .. } = &self.status
        {
            frame.render_widget(
                Paragraph::new(format!("{} is typing…", partner.nickname))
                    .italic()
                    .dark_gray(),
                typing,
            );
        }
        frame.render_widget(
            Paragraph::new(format!("> {}", self.input)).block(Block::bordered()),
            input,
        );
        let width = unicode_width::UnicodeWidthStr::width(self.input.as_str()) as u16;
        frame.set_cursor_position((input.x + 3 + width, input.y + 1));
    }
}

fn gender(g: &str) -> &'static str {
    match g {
        "M" => "m",
        "F" => "f",
        _ => "undisclosed",
    }
}

fn entry_line(entry: &Entry) -> Line<'_> {
    match entry.who {
        Who::Me => Line::from(vec![
            Span::styled(
                "you: ",
                Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            ),
            Span::from(entry.text.as_str()),
            Span::from(if entry.delivered == Some(true) {
                " ✓"
            } else {
                " ·"
            })
            .dark_gray(),
        ]),
        Who::Partner => Line::from(vec![
            Span::styled(
                "them: ",
                Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD),
            ),
            Span::from(entry.text.as_str()),
        ]),
        Who::System => Line::from(format!("— {}", entry.text)).dark_gray(),
        Who::Error => Line::from(format!("! {}", entry.text)).red(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn screen(app: &App) -> String {
        let mut terminal = Terminal::new(TestBackend::new(80, 16)).unwrap();
        terminal.draw(|f| app.render(f)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol().to_owned())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn partner() -> PartnerInfo {
        PartnerInfo {
            nickname: "alice".into(),
            bio: "likes long walks".into(),
            gender: "F".into(),
            common_interests: vec!["chess".into()],
        }
    }

    #[test]
    fn a_chat_as_the_user_sees_it() {
        let mut app = App::new();
        app.on_event(&Event::Queued { waiting: 4 });
        assert!(screen(&app).contains("4 in the queue"), "{}", screen(&app));

        app.on_event(&Event::Matched { partner: partner() });
        app.on_event(&Event::Connected {
            transport: "webrtc".into(),
            setup_ms: 12.0,
            safety_code: "1234 5678 9012".into(),
            fallback: None,
            path: "relayed".into(),
            local_candidate: Some("relay".into()),
            remote_candidate: Some("srflx".into()),
        });
        let s = screen(&app);
        assert!(s.contains("through a relay (your address is hidden"), "{s}");
        assert!(s.contains("you both like chess"), "{s}");
        assert!(s.contains("code 1234 5678 9012"), "{s}");

        app.outgoing("t1".into(), "hello!".into());
        assert!(screen(&app).contains("you: hello! ·"));
        app.on_event(&Event::Ack { id: "t1".into() });
        assert!(screen(&app).contains("you: hello! ✓"));

        app.on_event(&Event::Typing { on: true });
        assert!(screen(&app).contains("alice is typing…"));
        app.on_event(&Event::Message {
            id: "x".into(),
            text: "call me on 0612345678".into(),
            flagged: true,
        });
        let s = screen(&app);
        assert!(!s.contains("is typing"), "{s}");
        assert!(s.contains("contains contact details"), "{s}");

        app.on_event(&Event::PartnerLeft);
        assert!(screen(&app).contains("your partner left"));
        assert_eq!(app.safety_code(), None);
    }

    #[test]
    fn the_newest_lines_stay_in_view() {
        let mut app = App::new();
        for i in 0..100 {
            app.system(format!("line {i}"));
        }
        let s = screen(&app);
        assert!(s.contains("line 99") && !s.contains("line 50"), "{s}");
    }
}
