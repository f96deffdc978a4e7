//! The session's connection to the rendezvous: a task owns the WebSocket, so the session can
//! send and receive from one `select!` without holding the socket across awaits.

use anonchat_protocol::rendezvous::{ClientMessage, ServerMessage};
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

/// Whether connecting again could help (a final refusal will be refused again).
pub fn worth_retrying(error: &ClientError) -> bool {
    match error {
        ClientError::Server { code, .. } => !code.is_final(),
        _ => true,
    }
}
