//! The rendezvous' JSON WebSocket protocol, spoken by hand: a fallible core (for benchmarks and
//! for tests that send what no real client would) and [`Client`], whose helpers panic with the
//! frame they did not expect (for tests that read as a conversation).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::tokens::Device;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long [`Client`]'s helpers wait for a frame.
pub const WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error("connecting: {0}")]
    Connect(#[from] std::io::Error),
    #[error("websocket: {0}")]
    Ws(#[from] tungstenite::Error),
    #[error("a frame that is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no frame within {0:?}")]
    Timeout(Duration),
    #[error("the socket closed")]
    Closed,
    #[error("expected {expected}, got {got}")]
    Unexpected { expected: &'static str, got: Value },
}

/// Opens `ws://ADDR/v1/ws`, from `source` when given (many loopback sources spread the ports),
/// and reads the challenge: the socket and its nonce.
pub async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> Result<(Ws, String), WsError> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    if let Some(source) = source {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    let stream = socket.connect(addr).await?;
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/v1/ws"), stream).await?;
    let challenge = next(&mut ws, WAIT).await?.ok_or(WsError::Closed)?;
    match challenge["nonce"].as_str() {
        Some(nonce) if challenge["type"] == "challenge" => {
            let nonce = nonce.to_owned();
            Ok((ws, nonce))
        }
        _ => Err(WsError::Unexpected {
            expected: "a challenge",
            got: challenge,
        }),
    }
}

/// Answers the challenge as `device` and returns the welcome.
pub async fn hello(ws: &mut Ws, device: &Device, nonce: &str) -> Result<Value, WsError> {
    send(
        ws,
        &json!({"type": "hello", "token": device.token, "signature": device.sign(nonce)}),
    )
    .await?;
    let welcome = next(ws, WAIT).await?.ok_or(WsError::Closed)?;
    if welcome["type"] != "welcome" {
        return Err(WsError::Unexpected {
            expected: "a welcome",
            got: welcome,
        });
    }
    Ok(welcome)
}

/// [`connect`], then [`hello`].
pub async fn login(
    addr: SocketAddr,
    source: Option<IpAddr>,
    device: &Device,
) -> Result<(Ws, Value), WsError> {
    let (mut ws, nonce) = connect(addr, source).await?;
    let welcome = hello(&mut ws, device, &nonce).await?;
    Ok((ws, welcome))
}

pub async fn send(ws: &mut Ws, v: &Value) -> Result<(), WsError> {
    Ok(ws.send(Message::Text(v.to_string().into())).await?)
}

/// The next text frame as JSON within `within`, skipping pings; `None` once the socket closed.
pub async fn next(ws: &mut Ws, within: Duration) -> Result<Option<Value>, WsError> {
    loop {
        let frame = tokio::time::timeout(within, ws.next())
            .await
            .map_err(|_| WsError::Timeout(within))?;
        match frame {
            Some(Ok(Message::Text(t))) => return Ok(Some(serde_json::from_str(&t)?)),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None => return Ok(None),
            // A reset or a dropped connection is the end of the socket too.
            Some(Err(
                tungstenite::Error::ConnectionClosed
                | tungstenite::Error::AlreadyClosed
                | tungstenite::Error::Io(_)
                | tungstenite::Error::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                ),
            )) => return Ok(None),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(other)) => {
                return Err(WsError::Unexpected {
                    expected: "a text frame",
                    got: json!(format!("{other:?}")),
                });
            }
        }
    }
}

/// A join frame with a plain profile, wanting `want` (`"any"`, `"m"`, `"f"`).
pub fn join_frame(nickname: &str, want: &str) -> Value {
    json!({"type": "join", "profile": {"nickname": nickname, "bio": "here to chat a bit"}, "want": want})
}

/// A logged-in test client whose helpers panic on what they did not expect.
pub struct Client {
    pub ws: Ws,
    pub session: String,
}

impl Client {
    /// Connects and reads the challenge; returns the socket and the nonce.
    pub async fn connect(addr: SocketAddr) -> (Ws, String) {
        connect(addr, None)
            .await
            .expect("connect and get a challenge")
    }

    /// Connects and authenticates; panics unless welcomed.
    pub async fn login(addr: SocketAddr, device: &Device) -> (Client, Value) {
        Self::login_from(addr, None, device).await
    }

    /// [`Client::login`] from the loopback address `source`.
    pub async fn login_from(
        addr: SocketAddr,
        source: Option<IpAddr>,
        device: &Device,
    ) -> (Client, Value) {
        let (ws, welcome) = login(addr, source, device).await.expect("welcomed");
        let session = welcome["session"]
            .as_str()
            .expect("a session id")
            .to_owned();
        (Client { ws, session }, welcome)
    }

    pub async fn send(&mut self, v: Value) {
        send(&mut self.ws, &v).await.expect("send")
    }

    /// The next frame (5 s at most).
    pub async fn recv(&mut self) -> Value {
        next(&mut self.ws, WAIT)
            .await
            .expect("a frame within 5 s")
            .expect("a frame before the socket closed")
    }

    /// The next frame, which must be of `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let v = self.recv().await;
        assert_eq!(v["type"], kind, "expected {kind}, got {v}");
        v
    }

    /// The next frame, which must be an error with `code`.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let v = self.expect("error").await;
        assert_eq!(v["code"], code, "{v}");
        v
    }

    pub async fn join(&mut self, nickname: &str, want: &str) {
        self.send(join_frame(nickname, want)).await
    }

    /// Nothing arrives within `ms` milliseconds.
    pub async fn quiet(&mut self, ms: u64) {
        if let Ok(Ok(Some(v))) =
            tokio::time::timeout(Duration::from_millis(ms), next(&mut self.ws, WAIT)).await
        {
            panic!("unexpected frame {v}");
        }
    }
}
