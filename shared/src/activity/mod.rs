//! Activity: what happened, when, and how it went.
//!
//! Every HTTP request, WebSocket connect and disconnect, ingestion and chat query becomes an
//! [`ActivityEvent`]. The [`ActivityRecorder`] persists them without blocking the request and without
//! losing any; the store keeps [`ActivityTotals`] counters up to date in the same write, so the
//! metrics never scan the log.

mod recorder;
mod spill;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

pub use recorder::{ActivityRecorder, NotDurable, RecorderMode, RecorderStatus};

/// What kind of thing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    HttpRequest,
    WebsocketConnect,
    WebsocketDisconnect,
    Ingestion,
    ChatQuery,
    ClientEvent,
    System,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        EventType::HttpRequest,
        EventType::WebsocketConnect,
        EventType::WebsocketDisconnect,
        EventType::Ingestion,
        EventType::ChatQuery,
        EventType::ClientEvent,
        EventType::System,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::HttpRequest => "http_request",
            EventType::WebsocketConnect => "websocket_connect",
            EventType::WebsocketDisconnect => "websocket_disconnect",
            EventType::Ingestion => "ingestion",
            EventType::ChatQuery => "chat_query",
            EventType::ClientEvent => "client_event",
            EventType::System => "system",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        EventType::ALL.into_iter().find(|kind| kind.as_str() == value).ok_or_else(|| {
            let names: Vec<&str> = EventType::ALL.iter().map(|kind| kind.as_str()).collect();
            format!("unknown event type `{value}`; expected one of {}", names.join(", "))
        })
    }
}

/// Whether it went well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    Success,
    Error,
}

/// Who produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    Http,
    Websocket,
    Client,
    System,
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActivityEvent {
    /// Time-ordered unique id (UUID v7).
    pub id: Uuid,
    /// When it happened (RFC 3339 UTC).
    #[serde(with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: DateTime<Utc>,
    pub event_type: EventType,
    /// The route template (`/api/v1/lineage/{node}`), WebSocket path, or a name for the operation.
    pub endpoint: String,
    /// HTTP method, for HTTP requests.
    pub method: Option<String>,
    pub status: EventStatus,
    /// HTTP status code, or the WebSocket close code for disconnects.
    pub status_code: Option<u16>,
    /// How long it took, in milliseconds.
    pub latency_ms: Option<f64>,
    pub source: EventSource,
    /// Anything else worth keeping (request id, client IP, error code, ...).
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

impl ActivityEvent {
    /// A new event happening now.
    pub fn new(event_type: EventType, source: EventSource, endpoint: impl Into<String>, status: EventStatus) -> Self {
        ActivityEvent {
            id: Uuid::now_v7(),
            timestamp: crate::time::now(),
            event_type,
            endpoint: endpoint.into(),
            method: None,
            status,
            status_code: None,
            latency_ms: None,
            source,
            metadata: Map::new(),
        }
    }

    /// An HTTP request that was answered with `status_code`.
    pub fn http_request(method: &str, endpoint: impl Into<String>, status_code: u16, latency_ms: f64) -> Self {
        let status = if status_code < 400 { EventStatus::Success } else { EventStatus::Error };
        let mut event = ActivityEvent::new(EventType::HttpRequest, EventSource::Http, endpoint, status);
        // Methods are client-chosen tokens: keep a bounded amount of one.
        event.method = Some(method.chars().take(16).collect());
        event.status_code = Some(status_code);
        event.latency_ms = Some(latency_ms);
        event
    }

    pub fn with_metadata(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.to_owned(), value.into());
        self
    }

    /// A one-line summary for people, shown in the dashboard's activity feed.
    pub fn message(&self) -> String {
        let text = |key: &str| self.metadata.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
        match self.event_type {
            EventType::HttpRequest => format!(
                "{} {} → {} in {:.1} ms",
                self.method.as_deref().unwrap_or("?"),
                self.endpoint,
                self.status_code.map(|code| code.to_string()).unwrap_or_else(|| "?".into()),
                self.latency_ms.unwrap_or_default()
            ),
            EventType::WebsocketConnect => format!("Dashboard connected from {}", text("client_ip")),
            EventType::WebsocketDisconnect => {
                format!("Dashboard disconnected from {} ({})", text("client_ip"), text("reason"))
            }
            EventType::ClientEvent => {
                let message = text("message");
                if message.is_empty() { format!("Client event {}", text("client_type")) } else { message }
            }
            EventType::Ingestion | EventType::ChatQuery | EventType::System => {
                let message = text("message");
                if message.is_empty() { format!("{} {}", self.event_type, self.endpoint) } else { message }
            }
        }
    }

    /// The error code to count this event under, for failed events.
    fn error_code(&self) -> Option<String> {
        if self.status != EventStatus::Error {
            return None;
        }
        let code = self.metadata.get("error").and_then(Value::as_str).map(str::to_owned);
        Some(code.unwrap_or_else(|| match self.status_code {
            Some(status) => format!("http_{status}"),
            None => "unknown".to_owned(),
        }))
    }

    /// The counters this event adds to, and by how much. Shared by every backend so they count alike.
    pub fn counter_increments(&self) -> Vec<(String, i64)> {
        let mut increments = vec![(counters::EVENTS.to_owned(), 1)];
        match self.event_type {
            EventType::HttpRequest => {
                increments.push((counters::REQUESTS.to_owned(), 1));
                let outcome = if self.status == EventStatus::Success { counters::REQUESTS_OK } else { counters::REQUESTS_FAILED };
                increments.push((outcome.to_owned(), 1));
                let micros = (self.latency_ms.unwrap_or_default().max(0.0) * 1000.0).round() as i64;
                increments.push((counters::LATENCY_US.to_owned(), micros));
                increments.push((format!("{}{} {}", counters::ENDPOINT_PREFIX, counted_method(self.method.as_deref()), self.endpoint), 1));
            }
            EventType::ChatQuery => increments.push((counters::QUERIES.to_owned(), 1)),
            EventType::Ingestion => increments.push((counters::INGESTIONS.to_owned(), 1)),
            _ => {}
        }
        if let Some(code) = self.error_code() {
            increments.push((format!("{}{code}", counters::ERROR_PREFIX), 1));
        }
        increments
    }
}

/// The method as counters name it: the standard ones, or `OTHER`, so that made-up methods cannot
/// grow the counter set.
fn counted_method(method: Option<&str>) -> &'static str {
    const STANDARD: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];
    STANDARD.into_iter().find(|standard| Some(*standard) == method).unwrap_or("OTHER")
}

/// Names of the activity counters.
pub mod counters {
    pub const EVENTS: &str = "events";
    pub const REQUESTS: &str = "requests";
    pub const REQUESTS_OK: &str = "requests.ok";
    pub const REQUESTS_FAILED: &str = "requests.failed";
    pub const LATENCY_US: &str = "requests.latency_us";
    pub const QUERIES: &str = "queries";
    pub const INGESTIONS: &str = "ingestions";
    pub const ENDPOINT_PREFIX: &str = "endpoint:";
    pub const ERROR_PREFIX: &str = "error:";
}

/// Totals since the store was created, read from the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityTotals {
    pub total_events: u64,
    pub total_requests: u64,
    pub successful_requests: u64,
    pub failed_requests: u64,
    pub latency_sum_us: u64,
    pub total_queries: u64,
    pub total_ingestions: u64,
    /// Requests per `METHOD /route`.
    pub endpoints: BTreeMap<String, u64>,
    /// Failures per error code.
    pub error_types: BTreeMap<String, u64>,
}

impl ActivityTotals {
    /// Builds the totals from `(counter name, value)` pairs as a store reads them.
    pub fn from_counters(counters: impl IntoIterator<Item = (String, i64)>) -> Self {
        let mut totals = ActivityTotals::default();
        for (name, value) in counters {
            let value = value.max(0) as u64;
            match name.as_str() {
                counters::EVENTS => totals.total_events = value,
                counters::REQUESTS => totals.total_requests = value,
                counters::REQUESTS_OK => totals.successful_requests = value,
                counters::REQUESTS_FAILED => totals.failed_requests = value,
                counters::LATENCY_US => totals.latency_sum_us = value,
                counters::QUERIES => totals.total_queries = value,
                counters::INGESTIONS => totals.total_ingestions = value,
                other => {
                    if let Some(endpoint) = other.strip_prefix(counters::ENDPOINT_PREFIX) {
                        totals.endpoints.insert(endpoint.to_owned(), value);
                    } else if let Some(code) = other.strip_prefix(counters::ERROR_PREFIX) {
                        totals.error_types.insert(code.to_owned(), value);
                    }
                }
            }
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_request_counts_as_request_failure_endpoint_and_error_code() {
        let event = ActivityEvent::http_request("GET", "/api/v1/lineage/{node}", 404, 1.5).with_metadata("error", "not_found");
        let totals = ActivityTotals::from_counters(event.counter_increments());
        assert_eq!(totals.total_events, 1);
        assert_eq!(totals.total_requests, 1);
        assert_eq!(totals.failed_requests, 1);
        assert_eq!(totals.successful_requests, 0);
        assert_eq!(totals.latency_sum_us, 1500);
        assert_eq!(totals.endpoints.get("GET /api/v1/lineage/{node}"), Some(&1));
        assert_eq!(totals.error_types.get("not_found"), Some(&1));
    }

    #[test]
    fn made_up_methods_share_one_counter() {
        let counted = |method: &str| ActivityEvent::http_request(method, "unmatched", 405, 0.1).counter_increments();
        let name = |increments: Vec<(String, i64)>| increments.into_iter().find(|(name, _)| name.starts_with("endpoint:")).unwrap().0;
        assert_eq!(name(counted("FOO1")), "endpoint:OTHER unmatched");
        assert_eq!(name(counted("FOO2")), "endpoint:OTHER unmatched");
        assert_eq!(name(counted("PATCH")), "endpoint:PATCH unmatched");
    }

    #[test]
    fn event_types_round_trip_through_their_names() {
        for kind in EventType::ALL {
            assert_eq!(kind.as_str().parse::<EventType>().unwrap(), kind);
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert!("nonsense".parse::<EventType>().unwrap_err().contains("http_request"));
    }

    #[test]
    fn events_round_trip_through_json() {
        let event = ActivityEvent::http_request("POST", "/api/v1/activity", 201, 0.25).with_metadata("request_id", "r-1");
        let text = serde_json::to_string(&event).unwrap();
        assert_eq!(serde_json::from_str::<ActivityEvent>(&text).unwrap(), event);
    }
}
