//! The session's connection to the rendezvous: a task owns the WebSocket, so the session can
//! send and receive from one `select!` without holding the socket across awaits.

use std::time::Duration;

use anonchat_rendezvous::proto::{ClientMessage, ServerMessage};
use tokio::sync::mpsc;

use crate::identity::Identity;
use crate::rendezvous::{ClientError, RendezvousClient, Welcome};

pub struct Link {
    tx: mpsc::UnboundedSender<ClientMessage>,
    rx: mpsc::UnboundedReceiver<Result<ServerMessage, ClientError>>,
    pub welcome: Welcome,
}

impl Link {
    pub async fn connect(url: &str, identity: &Identity, token: &str) -> Result<Link, ClientError> {
        let mut client = RendezvousClient::connect(url, identity, token).await?;
        let welcome = client.welcome.clone();
        let (tx, mut outgoing) = mpsc::unbounded_channel();
        let (incoming, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    msg = outgoing.recv() => match msg {
                        Some(msg) => if let Err(e) = client.send(&msg).await {
                            let _ = incoming.send(Err(e));
                            return;
                        },
                        None => {
                            client.close().await;
                            return;
                        }
                    },
                    msg = client.recv() => {
                        // The server's error frames are answers, not the end of the connection.
                        let fatal = matches!(&msg, Err(e) if !matches!(e, ClientError::Server { .. }));
                        if incoming.send(msg).is_err() || fatal {
                            return;
                        }
                    }
                }
            }
        });
        Ok(Link { tx, rx, welcome })
    }

    /// Queues `msg`; false when the connection is gone.
    pub fn send(&self, msg: ClientMessage) -> bool {
        self.tx.send(msg).is_ok()
    }

    /// The next message; `None` or a non-server error when the connection is gone.
    pub async fn recv(&mut self) -> Option<Result<ServerMessage, ClientError>> {
        self.rx.recv().await
    }
}

/// Whether connecting again could help: a refused token or a ban will be refused again.
pub fn worth_retrying(error: &ClientError) -> bool {
    use anonchat_rendezvous::proto::ErrorCode::*;
    match error {
        ClientError::Server { code, .. } => {
            // Replaced: another window of this device took over; fighting it back would
            // only disconnect that one in turn.
            !matches!(
                code,
                InvalidToken | TokenExpired | BadSignature | Banned | Replaced
            )
        }
        _ => true,
    }
}

/// Exponential backoff with jitter: 250 ms, 500 ms, 1 s, … up to 10 s.
pub fn backoff(attempt: u32) -> Duration {
    let base = 250u64.saturating_mul(1 << attempt.min(6)).min(10_000);
    let jitter = rand::random::<u64>() % (base / 4 + 1);
    Duration::from_millis(base - base / 8 + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let first = backoff(0);
        assert!(first >= Duration::from_millis(218) && first <= Duration::from_millis(282));
        assert!(backoff(3) > backoff(0));
        for attempt in [10, 100, u32::MAX] {
            assert!(backoff(attempt) <= Duration::from_millis(11_250));
        }
    }
}
