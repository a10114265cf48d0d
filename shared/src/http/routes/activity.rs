//! Activity area: the activity feed, client-side events, and metrics.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::activity::{ActivityEvent, EventSource, EventStatus, EventType};
use crate::error::{ApiError, ErrorBody, FieldError};
use crate::http::AppState;
use crate::http::extract::{ApiJson, ApiQuery, ClientAddr};

/// Largest `POST /api/v1/activity` body.
pub const CLIENT_EVENT_MAX_BYTES: usize = 16 * 1024;
/// Largest serialized `metadata` of a client event.
pub const CLIENT_METADATA_MAX_BYTES: usize = 4 * 1024;
const RECENT_MAX: usize = 500;
const EVENTS_MAX: usize = 1000;
const TOP_ENDPOINTS: usize = 10;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(recent_activity))
        .routes(routes!(record_client_event))
        .routes(routes!(activity_metrics))
        .routes(routes!(activity_events))
}

/// One entry of the activity feed: the event, plus `type` and a readable `message`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActivityItem {
    /// The event type (same as `event_type`).
    #[serde(rename = "type")]
    pub kind: EventType,
    /// One line for people.
    pub message: String,
    #[serde(flatten)]
    pub event: ActivityEvent,
}

impl From<ActivityEvent> for ActivityItem {
    fn from(event: ActivityEvent) -> Self {
        ActivityItem { kind: event.event_type, message: event.message(), event }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecentQuery {
    /// How many items, newest first (1 to 500, default 20).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
    /// Only events of this type.
    #[serde(rename = "type")]
    #[param(rename = "type", value_type = Option<EventType>)]
    pub kind: Option<String>,
}

/// The newest activity from the store, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/activity/recent",
    tag = "activity",
    params(RecentQuery),
    responses(
        (status = 200, body = Vec<ActivityItem>),
        (status = 422, description = "A parameter is out of range", body = ErrorBody),
    )
)]
pub async fn recent_activity(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RecentQuery>,
) -> Result<Json<Vec<ActivityItem>>, ApiError> {
    let limit = bounded("limit", query.limit.unwrap_or(20), RECENT_MAX)?;
    let kind = query
        .kind
        .as_deref()
        .map(str::parse::<EventType>)
        .transpose()
        .map_err(|message| ApiError::validation(vec![FieldError::new("type", message)]))?;
    let events = state.stores.activity.recent_activity(limit, kind).await?;
    Ok(Json(events.into_iter().map(ActivityItem::from).collect()))
}

fn bounded(field: &str, value: usize, max: usize) -> Result<usize, ApiError> {
    if (1..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::validation(vec![FieldError::new(field, format!("must be between 1 and {max}"))]))
    }
}

/// An event the frontend saw (a page view, a click, an error in the browser).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientEvent {
    /// What happened: 1 to 64 characters of letters, digits, `_`, `-`, `.` or `:`.
    #[serde(rename = "type")]
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    pub kind: String,
    /// A line for people (at most 500 characters).
    #[schema(max_length = 500)]
    pub message: Option<String>,
    /// Details, at most 4 KiB as JSON.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
}

impl ClientEvent {
    fn validate(&self) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        let kind_ok =
            (1..=64).contains(&self.kind.len()) && self.kind.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"_-.:".contains(&byte));
        if !kind_ok {
            errors.push(FieldError::new("type", "must be 1 to 64 characters of letters, digits, `_`, `-`, `.` or `:`"));
        }
        if self.message.as_ref().is_some_and(|message| message.chars().count() > 500) {
            errors.push(FieldError::new("message", "must be at most 500 characters"));
        }
        if let Some(metadata) = &self.metadata {
            let size = serde_json::to_vec(metadata).map(|bytes| bytes.len()).unwrap_or(usize::MAX);
            if size > CLIENT_METADATA_MAX_BYTES {
                errors.push(FieldError::new("metadata", format!("must be at most {CLIENT_METADATA_MAX_BYTES} bytes as JSON")));
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(ApiError::validation(errors)) }
    }
}

/// Records an event from the frontend. It is stored like any other activity (source `client`).
#[utoipa::path(
    post,
    path = "/api/v1/activity",
    tag = "activity",
    request_body = ClientEvent,
    responses(
        (status = 201, description = "Recorded: the event is committed (or kept in the spill file the next write replays) before this answer", body = ActivityItem),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
        (status = 503, description = "Neither the store nor the spill file took the event", body = ErrorBody),
    )
)]
pub async fn record_client_event(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(body): ApiJson<ClientEvent>,
) -> Result<(StatusCode, Json<ActivityItem>), ApiError> {
    body.validate()?;
    let mut event = ActivityEvent::new(EventType::ClientEvent, EventSource::Client, "/api/v1/activity", EventStatus::Success)
        .with_metadata("client_type", body.kind.clone());
    if let Some(message) = body.message {
        event = event.with_metadata("message", message);
    }
    if let Some(metadata) = body.metadata {
        event = event.with_metadata("client_metadata", Value::Object(metadata));
    }
    if let Some(ip) = client.client {
        event = event.with_metadata("client_ip", ip.to_string());
    }
    // 201 promises the stored item: answered once the event is committed (or in the spill file the
    // next write replays), never before.
    state.activity.record_durably(event.clone()).await.map_err(|error| {
        ApiError::unavailable("activity", "activity_not_stored", "the event could not be stored; send it again").with_source(error)
    })?;
    Ok((StatusCode::CREATED, Json(ActivityItem::from(event))))
}

/// `GET /api/v1/metrics/activity`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActivityMetrics {
    pub total_requests: u64,
    pub successful_requests: u64,
    pub failed_requests: u64,
    /// Percent of requests answered below 400 (100.0 before the first request), two decimals.
    pub success_rate: f64,
    /// Mean request latency in milliseconds, two decimals.
    pub avg_latency_ms: f64,
    pub total_queries: u64,
    pub total_ingestions: u64,
    /// All events of every type.
    pub total_events: u64,
    /// The 10 busiest `METHOD /route`s.
    pub top_endpoints: BTreeMap<String, u64>,
    /// Failures per error code.
    pub error_types: BTreeMap<String, u64>,
    pub uptime_seconds: u64,
}

/// Request, query and ingestion totals since the store was created.
#[utoipa::path(
    get,
    path = "/api/v1/metrics/activity",
    tag = "activity",
    responses((status = 200, body = ActivityMetrics), (status = 503, body = ErrorBody))
)]
pub async fn activity_metrics(State(state): State<AppState>) -> Result<Json<ActivityMetrics>, ApiError> {
    let totals = state.stores.activity.activity_totals().await?;
    let two_decimals = |value: f64| (value * 100.0).round() / 100.0;
    let success_rate = if totals.total_requests == 0 {
        100.0
    } else {
        two_decimals(totals.successful_requests as f64 / totals.total_requests as f64 * 100.0)
    };
    let avg_latency_ms =
        if totals.total_requests == 0 { 0.0 } else { two_decimals(totals.latency_sum_us as f64 / 1000.0 / totals.total_requests as f64) };
    let mut endpoints: Vec<(String, u64)> = totals.endpoints.into_iter().collect();
    endpoints.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    endpoints.truncate(TOP_ENDPOINTS);
    Ok(Json(ActivityMetrics {
        total_requests: totals.total_requests,
        successful_requests: totals.successful_requests,
        failed_requests: totals.failed_requests,
        success_rate,
        avg_latency_ms,
        total_queries: totals.total_queries,
        total_ingestions: totals.total_ingestions,
        total_events: totals.total_events,
        top_endpoints: endpoints.into_iter().collect(),
        error_types: totals.error_types,
        uptime_seconds: state.uptime_seconds(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// How many events, newest first (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// `GET /api/v1/metrics/events`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActivityEvents {
    pub events: Vec<ActivityEvent>,
    /// Events stored in all.
    pub total_events: u64,
}

/// The raw newest events, and how many there are in all.
#[utoipa::path(
    get,
    path = "/api/v1/metrics/events",
    tag = "activity",
    params(EventsQuery),
    responses((status = 200, body = ActivityEvents), (status = 422, body = ErrorBody))
)]
pub async fn activity_events(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<ActivityEvents>, ApiError> {
    let limit = bounded("limit", query.limit.unwrap_or(100), EVENTS_MAX)?;
    let (events, totals) = tokio::join!(state.stores.activity.recent_activity(limit, None), state.stores.activity.activity_totals());
    Ok(Json(ActivityEvents { events: events?, total_events: totals?.total_events }))
}
