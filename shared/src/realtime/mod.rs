//! Real-time messaging: the envelope every WebSocket message uses, the client protocol, and the one
//! [`Broadcaster`] API all code uses to reach dashboards.
//!
//! Two implementations exist: the socket node's hub (its own sockets) and, in the cloud, the API
//! Gateway Management API. Callers never know which one they talk to.

mod message;
pub mod protocol;

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use message::{Delivery, EnvelopeError, Frame, MessageType, ServerMessage, Severity};

/// Identifies one WebSocket connection (the node's own id, or API Gateway's `connectionId`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct ConnectionId(String);

impl ConnectionId {
    pub fn new(id: impl Into<String>) -> Self {
        ConnectionId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a broadcast reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BroadcastReport {
    /// Connections the message was handed to.
    pub delivered: u64,
    /// Connections closed because they could not keep up (or had gone).
    pub dropped: u64,
    /// Whether the message was held back by throttling (a later one of the same kind will carry it).
    pub deferred: bool,
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum BroadcastError {
    #[error("no open connection with id {0}")]
    UnknownConnection(ConnectionId),
    #[error("the connection {0} could not keep up and was closed")]
    Overflowed(ConnectionId),
    #[error("the broadcaster is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
}

/// Sends messages to dashboards: to all of them, or to one.
#[async_trait]
pub trait Broadcaster: Send + Sync + 'static {
    /// Sends `message` to every open connection.
    async fn broadcast(&self, message: ServerMessage) -> Result<BroadcastReport, BroadcastError>;

    /// Sends `message` to one connection only.
    async fn send_to(&self, connection: &ConnectionId, message: ServerMessage) -> Result<(), BroadcastError>;

    /// Connections open right now.
    async fn connection_count(&self) -> Result<u64, BroadcastError>;
}

/// Tells every dashboard about something that happened: the caller's work never fails because of it
/// (a broadcaster failure is logged; a message failing its envelope checks is a bug, logged too).
pub async fn announce(broadcaster: &dyn Broadcaster, kind: MessageType, data: serde_json::Value) {
    match ServerMessage::new(kind, data) {
        Ok(message) => {
            if let Err(error) = broadcaster.broadcast(message).await {
                tracing::warn!(%error, "could not broadcast {}", kind.as_str());
            }
        }
        Err(error) => tracing::error!(%error, "invalid {} message", kind.as_str()),
    }
}

/// For hosts with no dashboards to tell (the CLI writing to a database file): every message reaches
/// nobody, and that is not an error.
pub struct NoListeners;

#[async_trait]
impl Broadcaster for NoListeners {
    async fn broadcast(&self, _message: ServerMessage) -> Result<BroadcastReport, BroadcastError> {
        Ok(BroadcastReport::default())
    }

    async fn send_to(&self, connection: &ConnectionId, _message: ServerMessage) -> Result<(), BroadcastError> {
        Err(BroadcastError::UnknownConnection(connection.clone()))
    }

    async fn connection_count(&self) -> Result<u64, BroadcastError> {
        Ok(0)
    }
}
