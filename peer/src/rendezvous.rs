//! The rendezvous client: the challenge-response login with the device key, then typed
//! protocol messages over the WebSocket.

use anonchat_protocol::rendezvous::{
    ClientMessage, ErrorCode, HELLO_CONTEXT, ServerMessage, parse_server,
};
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::identity::Identity;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the rendezvous at {url} could not be reached: {reason}")]
    Unreachable { url: String, reason: String },
    /// The server's refusal or error frame.
    #[error("{message} ({})", code.as_str())]
    Server {
        code: ErrorCode,
        message: String,
        retry_after: Option<u64>,
    },
    #[error("the rendezvous closed the connection")]
    Closed,
    #[error("the rendezvous sent something unexpected: {0}")]
    Protocol(String),
}

/// What `welcome` told us.
#[derive(Debug, Clone)]
pub struct Welcome {
    pub session: String,
    pub daily_remaining: u32,
    pub ice_servers: Vec<anonchat_protocol::rendezvous::IceServer>,
}

pub struct RendezvousClient {
    ws: Ws,
    pub welcome: Welcome,
}

impl RendezvousClient {
    /// Connects to `url` (`ws://host:port/v1/ws`) and logs in with `token`, proving the device key.
    pub async fn connect(url: &str, identity: &Identity, token: &str) -> Result<Self, ClientError> {
        let unreachable = |reason: String| ClientError::Unreachable {
            url: url.to_owned(),
            reason,
        };
        // wss:// trusts the system's roots (and SSL_CERT_FILE's), as https:// does.
        crate::tls::crypto_provider();
        // No Nagle: signaling is small frames, each waited for.
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let mut client = RendezvousClient {
            ws,
            welcome: Welcome {
                session: String::new(),
                daily_remaining: 0,
                ice_servers: vec![],
            },
        };
        let ServerMessage::Challenge { nonce } = client.recv().await? else {
            return Err(ClientError::Protocol(
                "the first frame was not a challenge".into(),
            ));
        };
        let signature = identity.sign(format!("{HELLO_CONTEXT}{nonce}").as_bytes());
        let signature =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature.to_bytes());
        client
            .send(&ClientMessage::Hello {
                token: token.to_owned(),
                signature,
            })
            .await?;
        match client.recv().await? {
            ServerMessage::Welcome {
                session,
                daily_remaining,
                ice_servers,
                ..
            } => {
                client.welcome = Welcome {
                    session,
                    daily_remaining,
                    ice_servers,
                };
                Ok(client)
            }
            other => Err(ClientError::Protocol(format!(
                "expected welcome, got {other:?}"
            ))),
        }
    }

    pub async fn send(&mut self, msg: &ClientMessage) -> Result<(), ClientError> {
        let json = serde_json::to_string(msg).expect("client messages serialize");
        self.ws
            .send(Message::Text(json.into()))
            .await
            .map_err(|_| ClientError::Closed)
    }

    /// Says goodbye and closes the socket.
    pub async fn close(&mut self) {
        let _ = self.ws.close(None).await;
    }

    /// The next message; an `error` frame comes back as [`ClientError::Server`].
    pub async fn recv(&mut self) -> Result<ServerMessage, ClientError> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    return match parse_server(&t)
                        .map_err(|e| ClientError::Protocol(e.to_string()))?
                    {
                        ServerMessage::Error {
                            code,
                            message,
                            retry_after,
                            ..
                        } => Err(ClientError::Server {
                            code,
                            message,
                            retry_after,
                        }),
                        msg => Ok(msg),
                    };
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => {
                    return Err(ClientError::Protocol("a binary frame".into()));
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    return Err(ClientError::Closed);
                }
            }
        }
    }
}
