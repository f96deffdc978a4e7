//! `anonchat chat`: the interactive terminal UI around a chat session.

mod app;
mod input;

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use anonchat_peer::session::{self, Command, Event, JoinRequest, SessionConfig};
use crossterm::event::{Event as TermEvent, EventStream, KeyCode, KeyEventKind, KeyModifiers};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use app::App;
use input::{Action, HELP};

/// After this long without a keystroke, the partner is told that typing stopped.
const TYPING_PAUSE: Duration = Duration::from_secs(4);

pub async fn run(config: SessionConfig, join: JoinRequest) -> anyhow::Result<()> {
    let join = complete_profile(join)?;
    let mut terminal = ratatui::init();
    let result = event_loop(&mut terminal, config, join).await;
    ratatui::restore();
    result
}

/// Asks for whatever of the profile was not given on the command line.
fn complete_profile(mut join: JoinRequest) -> anyhow::Result<JoinRequest> {
    let ask = |question: &str| -> anyhow::Result<String> {
        print!("{question}: ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line)? == 0 {
            anyhow::bail!("no profile given (use --nickname and --bio)");
        }
        Ok(line.trim().to_owned())
    };
    if join.nickname.is_empty() {
        join.nickname = ask("nickname (3–24 characters)")?;
    }
    if join.bio.is_empty() {
        join.bio = ask("a line about you (10–140 characters)")?;
    }
    Ok(join)
}

struct Typing {
    on: bool,
    last_key: Instant,
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    config: SessionConfig,
    join: JoinRequest,
) -> anyhow::Result<()> {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (events, mut event_rx) = mpsc::unbounded_channel();
    let mut session = tokio::spawn(session::run(config, command_rx, events));
    let _ = commands.send(Command::Join(join));

    let mut app = App::new();
    app.system("/help lists the commands");
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut typing = Typing {
        on: false,
        last_key: Instant::now(),
    };
    let mut sent = 0u64;
    let mut unsent = std::collections::HashMap::new();
    loop {
        terminal.draw(|frame| app.render(frame))?;
        tokio::select! {
            _ = &mut session => return Ok(()),
            Some(event) = event_rx.recv() => {
                // A message is shown once it went out; a refused one is only explained.
                if let Event::Sent { id } = &event
                    && let Some(text) = unsent.remove(id)
                {
                    app.outgoing(id.clone(), text);
                }
                app.on_event(&event);
            }
            _ = tick.tick() => {
                app.tick();
                if typing.on && typing.last_key.elapsed() > TYPING_PAUSE {
                    typing.on = false;
                    let _ = commands.send(Command::Typing { on: false });
                }
            }
            key = keys.next() => {
                let Some(Ok(TermEvent::Key(key))) = key else { continue };
                if key.kind != KeyEventKind::Press {
                    continue;
                }
                let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
                match key.code {
                    KeyCode::Char('c' | 'd') if ctrl => {
                        let _ = commands.send(Command::Quit);
                    }
                    KeyCode::Char(c) => app.input.push(c),
                    KeyCode::Backspace => {
                        app.input.pop();
                    }
                    KeyCode::Enter => {
                        let line = std::mem::take(&mut app.input);
                        match input::parse_line(&line) {
                            Action::Session(Command::Send { text, force, .. }) => {
                                sent += 1;
                                let id = format!("t{sent}");
                                unsent.insert(id.clone(), text.clone());
                                let _ = commands.send(Command::Send { text, force, id: Some(id) });
                            }
                            Action::Session(command) => {
                                let _ = commands.send(command);
                            }
                            Action::ShowCode => match app.safety_code() {
                                Some(code) => app.system(format!("safety code {code}: if your partner sees another one, someone is in the middle")),
                                None => app.problem("no chat, no safety code"),
                            },
                            Action::Help => app.system(HELP),
                            Action::Invalid(message) => app.problem(message),
                            Action::Nothing => {}
                        }
                    }
                    _ => continue,
                }
                // Typing state follows the input line.
                let now_on = !app.input.is_empty();
                typing.last_key = Instant::now();
                if now_on != typing.on {
                    typing.on = now_on;
                    let _ = commands.send(Command::Typing { on: now_on });
                }
            }
        }
    }
}
