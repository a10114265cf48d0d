//! A dashboard's WebSocket client.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::PATIENCE;

/// A dashboard WebSocket client.
pub struct Dashboard {
    pub socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub connection_id: String,
}

/// Why an upgrade was refused: the HTTP status and the JSON body.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: Value,
}

impl Dashboard {
    /// Connects without reading anything.
    pub async fn connect(url: &str) -> Result<Dashboard, Refused> {
        Dashboard::connect_with(url, None, None).await
    }

    /// Connects from a given local address (any 127.x.y.z works on Linux) with a given `Origin`.
    pub async fn connect_with(url: &str, from: Option<IpAddr>, origin: Option<&str>) -> Result<Dashboard, Refused> {
        let mut request = url.into_client_request().unwrap();
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", origin.parse().unwrap());
        }
        let host = request.uri().host().unwrap().to_owned();
        let port = request.uri().port_u16().unwrap();
        let target: SocketAddr = format!("{host}:{port}").parse().unwrap();
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(from) = from {
            socket.bind(SocketAddr::new(from, 0)).unwrap();
        }
        let stream = socket.connect(target).await.expect("TCP connect");
        match tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await {
            Ok((socket, _)) => Ok(Dashboard { socket, connection_id: String::new() }),
            Err(tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response.body().as_ref().and_then(|body| serde_json::from_slice(body).ok()).unwrap_or(Value::Null);
                Err(Refused { status, body })
            }
            Err(error) => panic!("WebSocket handshake failed: {error}"),
        }
    }

    /// The next text message, parsed (pings and pongs are skipped).
    pub async fn next_json(&mut self) -> Value {
        match self.next_message().await {
            Some(Message::Text(text)) => serde_json::from_str(text.as_str()).expect("messages are JSON"),
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// The next message of `kind`, skipping others (for at most three times the patience, so a
    /// message that never comes fails the test instead of hanging it between stats updates).
    pub async fn next_of_type(&mut self, kind: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE * 3;
        loop {
            let message = tokio::time::timeout_at(deadline, self.next_json())
                .await
                .unwrap_or_else(|_| panic!("no {kind} message within {:?}", PATIENCE * 3));
            if message["type"] == kind {
                return message;
            }
        }
    }

    /// The next data or close frame (`None` when the stream ends).
    pub async fn next_message(&mut self) -> Option<Message> {
        loop {
            let next = tokio::time::timeout(PATIENCE, self.socket.next()).await.expect("a message in time");
            match next {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(message)) => return Some(message),
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Reads until the server closes; returns the close frame (skipping any other messages).
    /// Like a browser, it answers the close, completing the handshake.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            match self.next_message().await {
                Some(Message::Close(frame)) => {
                    // Polling on flushes the close reply the protocol layer queued.
                    let _ = tokio::time::timeout(Duration::from_secs(1), self.socket.next()).await;
                    return frame;
                }
                Some(_) => continue,
                None => return None,
            }
        }
    }

    pub async fn send_json(&mut self, value: Value) {
        self.socket.send(Message::Text(value.to_string().into())).await.expect("send");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.socket.send(Message::Text(text.to_owned().into())).await.expect("send");
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
