//! What a dashboard may send, and what it gets back. Shared by the node's sockets and the cloud's
//! `$default` route, so both answer alike.

use serde::Deserialize;

use super::{ServerMessage, Severity};
use crate::stats::StatsService;

/// A message from a client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Answered with `pong`.
    Ping,
    /// Answered with a `stats_update` for this client alone.
    GetStats,
}

/// Parses a text frame, or says why it is not a message we understand.
pub fn parse(text: &str) -> Result<ClientMessage, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| "message is not valid JSON".to_owned())?;
    let kind = value.get("type").and_then(serde_json::Value::as_str).ok_or("message has no string `type`")?;
    // Echo a bounded amount of what the client sent.
    let kind: String = kind.chars().take(64).collect();
    serde_json::from_value(value).map_err(|_| format!("unknown message type `{kind}`; expected `ping` or `get_stats`"))
}

/// The answer to one text frame from a client. Never fails: problems become `error` messages.
pub async fn respond(text: &str, stats: &StatsService) -> ServerMessage {
    match parse(text) {
        Ok(ClientMessage::Ping) => ServerMessage::pong(),
        Ok(ClientMessage::GetStats) => match stats.dashboard().await {
            Ok(stats) => ServerMessage::stats_update(&stats),
            Err(error) => {
                tracing::warn!(%error, "get_stats failed");
                ServerMessage::error("stats_unavailable", Severity::Error, "store", "stats cannot be computed right now; retry shortly")
            }
        },
        Err(reason) => invalid_message(&reason),
    }
}

/// The `error` message for a client message we cannot use.
pub fn invalid_message(reason: &str) -> ServerMessage {
    ServerMessage::error("invalid_message", Severity::Warning, "websocket", reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_messages_and_explains_the_rest() {
        assert_eq!(parse(r#"{"type":"ping"}"#), Ok(ClientMessage::Ping));
        assert_eq!(parse(r#"{"type":"get_stats","extra":1}"#), Ok(ClientMessage::GetStats));
        assert!(parse("not json").unwrap_err().contains("not valid JSON"));
        assert!(parse(r#"{"kind":"ping"}"#).unwrap_err().contains("no string `type`"));
        assert!(parse(r#"{"type":"subscribe"}"#).unwrap_err().contains("`subscribe`"));
    }
}
