//! `anonchat chat --json`: commands in on stdin, events out on stdout, one JSON object per line.

use anonchat_peer::session::{self, Command, Event, SessionConfig, parse_command};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

pub async fn run(config: SessionConfig) -> anyhow::Result<()> {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (events, mut event_rx) = mpsc::unbounded_channel();
    let (refusals, mut refusal_rx) = mpsc::unbounded_channel();
    let mut session = tokio::spawn(session::run(config, command_rx, events));

    tokio::spawn(async move {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.trim().is_empty() {
                continue;
            }
            match parse_command(&line) {
                Ok(command) => {
                    if commands.send(command).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = refusals.send(Event::error(
                        anonchat_peer::session::ClientCode::BadCommand,
                        e,
                    ));
                }
            }
        }
        // End of input is a quit.
        let _ = commands.send(Command::Quit);
    });

    let mut stdout = tokio::io::stdout();
    loop {
        let event = tokio::select! {
            biased;
            Some(event) = event_rx.recv() => event,
            Some(event) = refusal_rx.recv() => event,
            _ = &mut session => break,
        };
        print(&mut stdout, &event).await?;
    }
    while let Ok(event) = event_rx.try_recv() {
        print(&mut stdout, &event).await?;
    }
    Ok(())
}

async fn print(stdout: &mut tokio::io::Stdout, event: &Event) -> std::io::Result<()> {
    let mut line = event.to_json();
    line.push('\n');
    stdout.write_all(line.as_bytes()).await?;
    stdout.flush().await
}
