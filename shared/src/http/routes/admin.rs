//! Admin area: health, the WebSocket configuration a frontend needs, and restart.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::activity::{ActivityEvent, EventSource, EventStatus, EventType};
use crate::error::{ApiError, ErrorBody, FieldError};
use crate::http::AppState;
use crate::http::extract::{AdminAccess, ApiJson};
use crate::http::middleware::defer_after_response;
use crate::realtime::{BroadcastError, BroadcastReport, ConnectionId, MessageType, ServerMessage, Severity};
use crate::restart::RestartResponse;

/// The path dashboards open their WebSocket on.
pub const WEBSOCKET_PATH: &str = "/api/v1/ws/dashboard";

/// How long `/health` waits for the store before calling it down.
const STORE_PING_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(websocket_config))
        .routes(routes!(restart, restart_options))
        .routes(routes!(broadcast))
}

/// Overall state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Healthy,
    Degraded,
}

/// State of one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    Up,
    Degraded,
    Down,
}

/// One component's health.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceHealth {
    pub status: ServiceState,
    /// Round trip of the check, when it makes one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Why it is not up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Component-specific figures.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub info: Map<String, Value>,
}

/// `GET /health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthReport {
    pub status: HealthStatus,
    /// `store`, `activity` and `realtime`.
    pub services: BTreeMap<String, ServiceHealth>,
    pub version: String,
    pub uptime_seconds: u64,
    #[serde(with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: DateTime<Utc>,
}

/// Each component's state; 503 when any is not up.
#[utoipa::path(
    get,
    path = "/health",
    tag = "admin",
    responses(
        (status = 200, description = "Everything is up", body = HealthReport),
        (status = 503, description = "Degraded: see `services`", body = HealthReport),
    )
)]
pub async fn health(State(state): State<AppState>) -> Response {
    let mut services = BTreeMap::new();

    let started = Instant::now();
    let ping = tokio::time::timeout(STORE_PING_TIMEOUT, state.stores.health.ping()).await;
    let latency_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    // The body says what is wrong in general terms; the specifics (paths, driver messages) go to the logs.
    let (status, detail) = match ping {
        Ok(Ok(())) => (ServiceState::Up, None),
        Ok(Err(error)) => {
            tracing::warn!(%error, "health check: the store failed its ping");
            (ServiceState::Down, Some("the store failed its health check; see the logs".to_owned()))
        }
        Err(_) => (ServiceState::Down, Some(format!("the store did not answer within {} s", STORE_PING_TIMEOUT.as_secs()))),
    };
    let backend = json!({ "backend": state.stores.health.backend() });
    services.insert("store".to_owned(), ServiceHealth { status, latency_ms, detail, info: object(backend) });

    let recorder = state.activity.status();
    let status = if recorder.failing { ServiceState::Degraded } else { ServiceState::Up };
    let detail = recorder.failing.then(|| "activity writes are failing; events spill to disk until the store recovers".to_owned());
    let info = object(json!({
        "mode": recorder.mode,
        "queued": recorder.queued,
        "spilled": recorder.spilled,
        "persisted": recorder.persisted,
    }));
    services.insert("activity".to_owned(), ServiceHealth { status, latency_ms: None, detail, info });

    let realtime = match state.broadcaster.connection_count().await {
        Ok(connections) => {
            ServiceHealth { status: ServiceState::Up, latency_ms: None, detail: None, info: object(json!({ "connections": connections })) }
        }
        Err(error) => {
            tracing::warn!(%error, "health check: live connections cannot be counted");
            ServiceHealth {
                status: ServiceState::Down,
                latency_ms: None,
                detail: Some("live connections cannot be counted".to_owned()),
                info: Map::new(),
            }
        }
    };
    services.insert("realtime".to_owned(), realtime);

    let healthy = services.values().all(|service| service.status == ServiceState::Up);
    let report = HealthReport {
        status: if healthy { HealthStatus::Healthy } else { HealthStatus::Degraded },
        services,
        version: crate::VERSION.to_owned(),
        uptime_seconds: state.uptime_seconds(),
        timestamp: crate::time::now(),
    };
    if healthy {
        return (StatusCode::OK, Json(report)).into_response();
    }
    // Like every 503: when to look again.
    let retry = [(header::RETRY_AFTER, HeaderValue::from_static(crate::error::DEFAULT_RETRY_AFTER_SECONDS))];
    (StatusCode::SERVICE_UNAVAILABLE, retry, Json(report)).into_response()
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `GET /api/v1/config/websocket`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebsocketConfig {
    /// The URL to open the dashboard WebSocket on.
    pub websocket_url: String,
    /// Seconds between two `stats_update` messages.
    pub stats_interval_seconds: u64,
}

/// Where the frontend should open its WebSocket: `PUBLIC_WEBSOCKET_URL` when set, else this host.
#[utoipa::path(get, path = "/api/v1/config/websocket", tag = "admin", responses((status = 200, body = WebsocketConfig)))]
pub async fn websocket_config(State(state): State<AppState>, headers: HeaderMap) -> Json<WebsocketConfig> {
    let websocket_url = state.settings.public_websocket_url.clone().unwrap_or_else(|| {
        let host = headers.get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or("127.0.0.1:8000");
        let secure = state.settings.trust_forwarded_for
            && headers
                .get("x-forwarded-proto")
                .and_then(|value| value.to_str().ok())
                .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
        format!("{}://{host}{WEBSOCKET_PATH}", if secure { "wss" } else { "ws" })
    });
    Json(WebsocketConfig { websocket_url, stats_interval_seconds: state.settings.stats_interval_seconds })
}

/// Restarts the service. The answer comes first; then connected dashboards get `restarting` and the
/// host restarts (the node: sockets closed with 1012, requests drained, activity flushed, back on
/// the same port). Needs the admin token, except from loopback while none is set.
#[utoipa::path(
    post,
    path = "/admin/restart",
    tag = "admin",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The restart has begun", body = RestartResponse),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "No admin token is set and the caller is not on loopback", body = ErrorBody),
    )
)]
pub async fn restart(State(state): State<AppState>, access: AdminAccess) -> Result<Response, ApiError> {
    let plan = state.restarter.restart(access.granted_by).await?;
    let event = ActivityEvent::new(EventType::System, EventSource::System, "/admin/restart", EventStatus::Success)
        .with_metadata("message", format!("Restart requested ({} mode, authorised by {})", plan.mode, access.granted_by))
        .with_metadata("mode", plan.mode);
    state.activity.record(event).await;
    tracing::warn!(mode = plan.mode, granted_by = access.granted_by, "restart requested");
    let mut response = Json(RestartResponse { status: "restarting", mode: plan.mode }).into_response();
    if let Some(hook) = plan.after_response {
        defer_after_response(&mut response, hook);
    }
    Ok(response)
}

/// Allowed methods of `/admin/restart`.
#[utoipa::path(options, path = "/admin/restart", tag = "admin", responses((status = 204, description = "Allowed: POST, OPTIONS")))]
pub async fn restart_options() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
    response
}

/// `POST /admin/broadcast`: an operator's message to every dashboard, or to one connection.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastRequest {
    /// `notification` or `error`; the other types belong to the server.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// The message's `data`: an object, checked against the rules of its type.
    pub data: Value,
    /// Send to this connection only.
    pub connection_id: Option<String>,
}

// Written by hand: which `data` a message needs depends on its `type`, which the derive cannot say.
impl PartialSchema for BroadcastRequest {
    fn schema() -> RefOr<Schema> {
        let string = |min_length: usize| ObjectBuilder::new().schema_type(Type::String).min_length(Some(min_length));
        let message = |kind: &str, data: ObjectBuilder| {
            ObjectBuilder::new()
                .property("type", ObjectBuilder::new().schema_type(Type::String).enum_values(Some([kind])))
                .property("data", data)
                .property(
                    "connection_id",
                    ObjectBuilder::new()
                        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                        .description(Some("Send to this connection only")),
                )
                .required("type")
                .required("data")
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        };
        let free_form = ObjectBuilder::new().schema_type(Type::Object).description(Some("Any object: the notification"));
        let error = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("What the dashboard shows: the error's `type`, `severity` and failing `component`"))
            .property("type", string(1))
            .property("severity", Ref::from_schema_name(Severity::name()))
            .property("component", string(1))
            .property("message", string(0))
            .required("type")
            .required("severity")
            .required("component");
        OneOfBuilder::new()
            .description(Some("A `notification` (any object as `data`) or an `error` (its `data` in the `error` message's shape)"))
            .item(message("notification", free_form))
            .item(message("error", error))
            .into()
    }
}

impl ToSchema for BroadcastRequest {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((Severity::name().into_owned(), Severity::schema()));
    }
}

/// `POST /admin/broadcast`'s answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BroadcastOutcome {
    /// Connections the message was handed to.
    pub delivered: u64,
    /// Connections closed because they could not keep up.
    pub dropped: u64,
    /// Whether throttling held the message back for a moment.
    pub deferred: bool,
}

/// Sends an operator's message through the same broadcaster every event uses: to all connections,
/// or to one. The envelope is validated before anything is sent.
#[utoipa::path(
    post,
    path = "/admin/broadcast",
    tag = "admin",
    request_body = BroadcastRequest,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Handed to the connections", body = BroadcastOutcome),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "No admin token is set and the caller is not on this machine", body = ErrorBody),
        (status = 404, description = "No open connection with that id", body = ErrorBody),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = ErrorBody),
        (status = 415, description = "Not `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "The message breaks the envelope rules", body = ErrorBody),
        (status = 503, description = "The broadcaster cannot send", body = ErrorBody),
    )
)]
pub async fn broadcast(
    State(state): State<AppState>,
    _access: AdminAccess,
    ApiJson(request): ApiJson<BroadcastRequest>,
) -> Result<Json<BroadcastOutcome>, ApiError> {
    if !matches!(request.kind, MessageType::Notification | MessageType::Error) {
        return Err(ApiError::validation(vec![FieldError::new("type", "must be `notification` or `error`")]));
    }
    // Dashboards show an error's `message` as text; the envelope rules do not check it.
    if request.kind == MessageType::Error && request.data.get("message").is_some_and(|message| !message.is_string()) {
        return Err(ApiError::validation(vec![FieldError::new("data.message", "must be a string")]));
    }
    let message = ServerMessage::new(request.kind, request.data)
        .map_err(|error| ApiError::validation(vec![FieldError::new("data", error.to_string())]))?;
    let unavailable = |error: BroadcastError| {
        ApiError::unavailable("broadcaster", "broadcaster_unavailable", "the message could not be sent").with_source(error)
    };
    let report = match request.connection_id {
        None => state.broadcaster.broadcast(message).await.map_err(unavailable)?,
        Some(id) => match state.broadcaster.send_to(&ConnectionId::new(id), message).await {
            Ok(()) => BroadcastReport { delivered: 1, ..Default::default() },
            Err(BroadcastError::UnknownConnection(id)) => return Err(ApiError::not_found(format!("no open connection with id {id}"))),
            Err(BroadcastError::Overflowed(_)) => BroadcastReport { dropped: 1, ..Default::default() },
            Err(error) => return Err(unavailable(error)),
        },
    };
    Ok(Json(BroadcastOutcome { delivered: report.delivered, dropped: report.dropped, deferred: report.deferred }))
}
