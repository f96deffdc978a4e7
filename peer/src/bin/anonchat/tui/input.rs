//! What a line typed in the terminal UI means.

use std::path::PathBuf;

use anonchat_peer::session::Command;

#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Session(Command),
    ShowCode,
    Help,
    Nothing,
    Invalid(String),
}

pub const HELP: &str = "/next  someone else · /leave  stop · /report [reason] · /block · \
/image PATH · /save  keep the last image · /code  safety code · /send! TEXT  send despite contact details · /quit · /help";

/// Parses a typed line: a `/command`, or a message (a leading `//` sends a literal `/`).
pub fn parse_line(line: &str) -> Action {
    let line = line.trim_end();
    if line.trim().is_empty() {
        return Action::Nothing;
    }
    let message = |text: &str, force| {
        Action::Session(Command::Send {
            text: text.to_owned(),
            force,
            id: None,
        })
    };
    if let Some(literal) = line.strip_prefix("//") {
        return message(&format!("/{literal}"), false);
    }
    let Some(command) = line.strip_prefix('/') else {
        return message(line, false);
    };
    let (name, rest) = command
        .split_once(char::is_whitespace)
        .map(|(n, r)| (n, r.trim()))
        .unwrap_or((command, ""));
    match (name, rest) {
        ("next", "") => Action::Session(Command::Next),
        ("leave", "") => Action::Session(Command::Leave),
        ("block", "") => Action::Session(Command::Block),
        ("quit" | "exit", "") => Action::Session(Command::Quit),
        ("code", "") => Action::ShowCode,
        ("help", "") => Action::Help,
        ("report", reason) => Action::Session(Command::Report {
            reason: reason.to_owned(),
        }),
        ("image", "") => Action::Invalid("usage: /image PATH".into()),
        ("save", "") => Action::Session(Command::Save { id: None }),
        ("image", path) => Action::Session(Command::Image {
            path: PathBuf::from(path),
        }),
        ("send!", "") => Action::Invalid("usage: /send! TEXT".into()),
        ("send!", text) => message(text, true),
        ("next" | "leave" | "block" | "quit" | "code" | "help" | "save", _) => {
            Action::Invalid(format!("/{name} takes no arguments"))
        }
        _ => Action::Invalid(format!("unknown command /{name}; /help lists them")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(text: &str, force: bool) -> Action {
        Action::Session(Command::Send {
            text: text.into(),
            force,
            id: None,
        })
    }

    #[test]
    fn lines_and_commands() {
        assert_eq!(parse_line("hello there"), send("hello there", false));
        assert_eq!(parse_line("   "), Action::Nothing);
        assert_eq!(parse_line("/next"), Action::Session(Command::Next));
        assert_eq!(parse_line("/leave"), Action::Session(Command::Leave));
        assert_eq!(
            parse_line("/report  spam and insults "),
            Action::Session(Command::Report {
                reason: "spam and insults".into()
            })
        );
        assert_eq!(
            parse_line("/report"),
            Action::Session(Command::Report { reason: "".into() })
        );
        assert_eq!(
            parse_line("/image /tmp/a cat.png"),
            Action::Session(Command::Image {
                path: "/tmp/a cat.png".into()
            })
        );
        assert_eq!(
            parse_line("/send! mail me at a@b.io"),
            send("mail me at a@b.io", true)
        );
        assert_eq!(parse_line("//shrug"), send("/shrug", false));
        assert_eq!(parse_line("/code"), Action::ShowCode);
        assert_eq!(
            parse_line("/save"),
            Action::Session(Command::Save { id: None })
        );
        assert!(matches!(parse_line("/image"), Action::Invalid(_)));
        assert!(matches!(parse_line("/next please"), Action::Invalid(_)));
        assert!(matches!(parse_line("/dance"), Action::Invalid(m) if m.contains("/help")));
    }
}
