//! The message envelope: `{"type", "data", "timestamp"}`, validated when built, serialized once.

use std::fmt;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::stats::DashboardStats;

/// The largest message we send, serialized.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Keys that would carry a stack trace; no message may contain them, at any depth.
const TRACE_KEYS: &[&str] = &["stack", "stacktrace", "stack_trace", "traceback", "backtrace"];

/// Keys that would carry a user's question; `query_complete` must not contain them.
const QUERY_TEXT_KEYS: &[&str] = &["query", "query_text", "question", "prompt", "text"];

/// Every type of message the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageType {
    /// Sent once, as soon as a connection opens.
    ConnectionAck,
    /// The dashboard stats, every interval, and on `get_stats`.
    StatsUpdate,
    IngestionStarted,
    /// Throttled: only the latest within the throttle window is sent.
    IngestionProgress,
    IngestionComplete,
    /// A chat answer was produced (mode, latency, model; never the question).
    QueryComplete,
    /// Something failed (type, severity, component; never a stack trace).
    Error,
    /// The server is about to restart; reconnect shortly.
    Restarting,
    /// The answer to `ping`.
    Pong,
    /// A message for one connection only.
    Notification,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::ConnectionAck => "connection_ack",
            MessageType::StatsUpdate => "stats_update",
            MessageType::IngestionStarted => "ingestion_started",
            MessageType::IngestionProgress => "ingestion_progress",
            MessageType::IngestionComplete => "ingestion_complete",
            MessageType::QueryComplete => "query_complete",
            MessageType::Error => "error",
            MessageType::Restarting => "restarting",
            MessageType::Pong => "pong",
            MessageType::Notification => "notification",
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent an `error` message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

/// How a message may be treated on its way out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Always sent, in order; never dropped or merged.
    Critical,
    /// High-frequency: within the throttle window only the latest message with this key is sent.
    Coalesce(String),
}

/// A validated server-to-client message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServerMessage {
    #[serde(rename = "type")]
    kind: MessageType,
    #[schema(value_type = Object)]
    data: Map<String, Value>,
    #[serde(with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    timestamp: DateTime<Utc>,
}

/// Why a message was refused before sending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("`data` of a {0} message must be a JSON object")]
    NotAnObject(MessageType),
    #[error("a {kind} message needs `data.{field}`")]
    MissingField { kind: MessageType, field: &'static str },
    #[error("`data.{field}` of a {kind} message {problem}")]
    InvalidField { kind: MessageType, field: String, problem: &'static str },
    #[error("a {kind} message may not carry `{field}`")]
    Forbidden { kind: MessageType, field: String },
    #[error("the message is {size} bytes, over the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge { size: usize },
}

impl ServerMessage {
    /// A message of `kind` carrying `data` (anything that serializes to a JSON object), timestamped
    /// now. Refused if it breaks the rules for its type.
    pub fn new(kind: MessageType, data: impl Serialize) -> Result<Self, EnvelopeError> {
        let data = match serde_json::to_value(data) {
            Ok(Value::Object(map)) => map,
            _ => return Err(EnvelopeError::NotAnObject(kind)),
        };
        let message = ServerMessage { kind, data, timestamp: crate::time::now() };
        message.validate()?;
        Ok(message)
    }

    /// `connection_ack`, sent when a connection opens.
    pub fn connection_ack(connection_id: &str, stats_interval_seconds: u64) -> Self {
        Self::new(
            MessageType::ConnectionAck,
            json!({
                "message": "Connected to dashboard",
                "connection_id": connection_id,
                "stats_interval_seconds": stats_interval_seconds,
            }),
        )
        .expect("a well-formed ack")
    }

    /// `stats_update` carrying `stats`.
    pub fn stats_update(stats: &DashboardStats) -> Self {
        Self::new(MessageType::StatsUpdate, stats).expect("stats serialize to an object")
    }

    /// `pong`.
    pub fn pong() -> Self {
        Self::new(MessageType::Pong, json!({})).expect("an empty object")
    }

    /// `error`: `error_type` names what happened, `component` what failed.
    pub fn error(error_type: &str, severity: Severity, component: &str, message: &str) -> Self {
        Self::new(MessageType::Error, json!({ "type": error_type, "severity": severity, "component": component, "message": message }))
            .expect("a well-formed error")
    }

    /// `restarting`, broadcast before a restart or shutdown.
    pub fn restarting(reason: &str, reconnect_after_ms: u64) -> Self {
        Self::new(
            MessageType::Restarting,
            json!({ "message": "Server is restarting", "reason": reason, "reconnect_after_ms": reconnect_after_ms }),
        )
        .expect("a well-formed restart notice")
    }

    pub fn kind(&self) -> MessageType {
        self.kind
    }

    pub fn data(&self) -> &Map<String, Value> {
        &self.data
    }

    pub fn timestamp(&self) -> DateTime<Utc> {
        self.timestamp
    }

    /// How this message may be throttled.
    pub fn delivery(&self) -> Delivery {
        match self.kind {
            MessageType::StatsUpdate => Delivery::Coalesce("stats_update".to_owned()),
            MessageType::IngestionProgress => {
                let id = self.data.get("ingestion_id").and_then(Value::as_str).unwrap_or_default();
                Delivery::Coalesce(format!("ingestion_progress:{id}"))
            }
            _ => Delivery::Critical,
        }
    }

    /// Serializes the message once, for sending to any number of connections.
    pub fn to_frame(&self) -> Frame {
        let text = serde_json::to_string(self).expect("a JSON object always serializes");
        Frame { kind: self.kind, text: Bytes::from(text) }
    }

    fn validate(&self) -> Result<(), EnvelopeError> {
        let kind = self.kind;
        if let Some(field) = find_key(&self.data, TRACE_KEYS) {
            return Err(EnvelopeError::Forbidden { kind, field });
        }
        let require_str = |field: &'static str| match self.data.get(field) {
            None => Err(EnvelopeError::MissingField { kind, field }),
            Some(Value::String(text)) if !text.is_empty() => Ok(()),
            Some(_) => Err(EnvelopeError::InvalidField { kind, field: field.to_owned(), problem: "must be a non-empty string" }),
        };
        match kind {
            MessageType::ConnectionAck => {
                require_str("message")?;
                require_str("connection_id")?;
            }
            MessageType::StatsUpdate => {
                for field in ["totalNodes", "totalEdges", "filesProcessed", "databaseTables", "activeQueries", "activeConnections"] {
                    match self.data.get(field) {
                        Some(Value::Number(_)) => {}
                        Some(_) => return Err(EnvelopeError::InvalidField { kind, field: field.to_owned(), problem: "must be a number" }),
                        None => return Err(EnvelopeError::MissingField { kind, field }),
                    }
                }
            }
            MessageType::IngestionStarted | MessageType::IngestionProgress | MessageType::IngestionComplete => {
                require_str("ingestion_id")?;
            }
            MessageType::QueryComplete => {
                require_str("mode")?;
                if let Some(field) = QUERY_TEXT_KEYS.iter().find(|key| self.data.contains_key(**key)) {
                    return Err(EnvelopeError::Forbidden { kind, field: (*field).to_owned() });
                }
            }
            MessageType::Error => {
                require_str("type")?;
                require_str("component")?;
                match self.data.get("severity") {
                    None => return Err(EnvelopeError::MissingField { kind, field: "severity" }),
                    Some(value) if serde_json::from_value::<Severity>(value.clone()).is_err() => {
                        return Err(EnvelopeError::InvalidField {
                            kind,
                            field: "severity".to_owned(),
                            problem: "must be info, warning, error or critical",
                        });
                    }
                    Some(_) => {}
                }
            }
            MessageType::Restarting | MessageType::Pong | MessageType::Notification => {}
        }
        let size = serde_json::to_vec(&self.data).map(|bytes| bytes.len()).unwrap_or(usize::MAX);
        if size > MAX_MESSAGE_BYTES {
            return Err(EnvelopeError::TooLarge { size });
        }
        Ok(())
    }
}

fn find_key(map: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    for (key, value) in map {
        if keys.contains(&key.to_ascii_lowercase().as_str()) {
            return Some(key.clone());
        }
        let nested = match value {
            Value::Object(inner) => find_key(inner, keys),
            Value::Array(items) => items.iter().find_map(|item| item.as_object().and_then(|inner| find_key(inner, keys))),
            _ => None,
        };
        if nested.is_some() {
            return nested;
        }
    }
    None
}

/// A message serialized once; cloning shares the bytes.
#[derive(Debug, Clone)]
pub struct Frame {
    kind: MessageType,
    text: Bytes,
}

impl Frame {
    pub fn kind(&self) -> MessageType {
        self.kind
    }

    /// The JSON text (always valid UTF-8).
    pub fn bytes(&self) -> &Bytes {
        &self.text
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text).expect("frames are serialized JSON")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_serialize_as_type_data_timestamp() {
        let frame = ServerMessage::pong().to_frame();
        let value: Value = serde_json::from_str(frame.as_str()).unwrap();
        assert_eq!(value["type"], "pong");
        assert_eq!(value["data"], json!({}));
        let timestamp = value["timestamp"].as_str().unwrap();
        assert!(timestamp.ends_with('Z'));
        assert!(DateTime::parse_from_rfc3339(timestamp).is_ok());
    }

    #[test]
    fn invalid_envelopes_are_refused() {
        assert_eq!(ServerMessage::new(MessageType::Pong, json!([1, 2])), Err(EnvelopeError::NotAnObject(MessageType::Pong)));
        assert!(matches!(
            ServerMessage::new(MessageType::Error, json!({"type": "x", "component": "store"})),
            Err(EnvelopeError::MissingField { field: "severity", .. })
        ));
        assert!(matches!(
            ServerMessage::new(MessageType::Error, json!({"type": "x", "component": "store", "severity": "loud"})),
            Err(EnvelopeError::InvalidField { .. })
        ));
        assert!(matches!(
            ServerMessage::new(
                MessageType::Error,
                json!({"type": "x", "component": "store", "severity": "error", "detail": {"Traceback": "..."}})
            ),
            Err(EnvelopeError::Forbidden { .. })
        ));
        assert!(matches!(
            ServerMessage::new(MessageType::QueryComplete, json!({"mode": "deep", "query": "what feeds sales?"})),
            Err(EnvelopeError::Forbidden { .. })
        ));
        assert!(matches!(ServerMessage::new(MessageType::StatsUpdate, json!({"totalNodes": 1})), Err(EnvelopeError::MissingField { .. })));
        let huge = "x".repeat(MAX_MESSAGE_BYTES + 1);
        assert!(matches!(ServerMessage::new(MessageType::Notification, json!({ "text": huge })), Err(EnvelopeError::TooLarge { .. })));
    }

    #[test]
    fn progress_coalesces_per_ingestion_and_the_rest_is_critical() {
        let progress = ServerMessage::new(MessageType::IngestionProgress, json!({"ingestion_id": "i-1", "percent": 10})).unwrap();
        assert_eq!(progress.delivery(), Delivery::Coalesce("ingestion_progress:i-1".into()));
        assert_eq!(ServerMessage::restarting("admin", 1000).delivery(), Delivery::Critical);
    }
}
