//! The dashboard WebSocket on API Gateway: `$connect`, `$disconnect` and `$default`, with the same
//! rules as the socket node.
//!
//! * `$connect` checks the `Origin` against `ALLOWED_ORIGINS` (403) and admits the client through
//!   the connection registry, which enforces `WEBSOCKET_MAX_CONNECTIONS_PER_IP` exactly (503).
//!   API Gateway cannot send to a connection before `$connect` returns, so its `connection_ack`
//!   comes with the first stats tick or the client's first message, whichever is first.
//! * `$disconnect` removes it.
//! * `$default` answers `ping` and `get_stats` to that connection only, and anything else with an
//!   `error` message.

use std::time::Instant;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use http::{HeaderMap, HeaderValue, header};
use serde_json::json;

use super::broadcaster::{ApiGatewayBroadcaster, PostOutcome};
use crate::activity::{ActivityEvent, EventSource, EventStatus, EventType};
use crate::http::AppState;
use crate::realtime::{ConnectionId, ServerMessage, protocol};
use crate::store::{Admission, ConnectionRecord};

/// Handles one WebSocket event from API Gateway.
pub async fn handle(
    state: &AppState,
    broadcaster: &ApiGatewayBroadcaster,
    event: ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let context = &event.request_context;
    let route = context.route_key.clone().unwrap_or_default();
    let Some(id) = context.connection_id.clone().map(ConnectionId::new) else {
        return reply(400, json!({"detail": "the event carries no connection id", "error": "bad_request"}));
    };
    let client_ip = context.identity.source_ip.clone().unwrap_or_else(|| "unknown".to_owned());
    match route.as_str() {
        "$connect" => connect(state, &event.headers, id, client_ip).await,
        "$disconnect" => disconnect(state, id, client_ip).await,
        _ => default(state, broadcaster, id, event.body.as_deref().unwrap_or_default()).await,
    }
}

async fn connect(state: &AppState, headers: &HeaderMap, id: ConnectionId, client_ip: String) -> ApiGatewayProxyResponse {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|value| value.to_str().ok())
        && !state.settings.allowed_origins.allows(origin, None)
    {
        tracing::warn!(origin, client_ip, "refused a WebSocket from an origin that is not allowed");
        return refuse(403, "origin_not_allowed", "this origin may not open the dashboard WebSocket", None);
    }
    let now = crate::time::now();
    let ttl = chrono::Duration::from_std(state.settings.connection_ttl()).unwrap_or(chrono::Duration::hours(2));
    let record =
        ConnectionRecord { id: id.clone(), client_ip: client_ip.clone(), connected_at: now, expires_at: now + ttl, acknowledged: false };
    let limit = state.settings.websocket_max_connections_per_ip;
    match state.stores.connections.admit_connection(&record, limit).await {
        Ok(Admission::Admitted) => {}
        Ok(Admission::TooManyFromIp { limit }) => {
            tracing::warn!(client_ip, limit, "refused a WebSocket: per-IP limit reached");
            return refuse(
                503,
                "too_many_connections",
                &format!("this address already has {limit} open dashboard connections"),
                Some("websocket"),
            );
        }
        Err(error) => {
            tracing::error!(%error, "could not record a WebSocket connection");
            return refuse(503, "store_unavailable", "the store is unavailable right now; retry shortly", Some("store"));
        }
    }
    tracing::info!(connection_id = %id, client_ip, "dashboard connected");
    let event = ActivityEvent::new(EventType::WebsocketConnect, EventSource::Websocket, "$connect", EventStatus::Success)
        .with_metadata("connection_id", id.as_str())
        .with_metadata("client_ip", client_ip);
    state.activity.record(event).await;
    reply(200, json!({}))
}

async fn disconnect(state: &AppState, id: ConnectionId, client_ip: String) -> ApiGatewayProxyResponse {
    if let Err(error) = state.stores.connections.remove_connection(&id).await {
        // The record's TTL and the stats function's Gone handling clean up after us.
        tracing::warn!(connection_id = %id, %error, "could not remove a disconnected WebSocket");
    }
    tracing::info!(connection_id = %id, client_ip, "dashboard disconnected");
    let event = ActivityEvent::new(EventType::WebsocketDisconnect, EventSource::Websocket, "$disconnect", EventStatus::Success)
        .with_metadata("connection_id", id.as_str())
        .with_metadata("client_ip", client_ip)
        .with_metadata("reason", "disconnected")
        .with_metadata("closed_by", "client");
    state.activity.record(event).await;
    reply(200, json!({}))
}

async fn default(state: &AppState, broadcaster: &ApiGatewayBroadcaster, id: ConnectionId, body: &str) -> ApiGatewayProxyResponse {
    let started = Instant::now();
    // A client that speaks before the first stats tick gets its acknowledgement first.
    if let Ok(Some(record)) = state.stores.connections.get_connection(&id).await
        && !record.acknowledged
    {
        let ack = ServerMessage::connection_ack(id.as_str(), state.settings.stats_interval_seconds).to_frame();
        if broadcaster.post(&id, ack.bytes()).await == PostOutcome::Delivered {
            let _ = state.stores.connections.mark_acknowledged(&id).await;
        }
    }
    let answer = protocol::respond(body, &state.stats).await;
    let outcome = broadcaster.post(&id, answer.to_frame().bytes()).await;
    if let PostOutcome::Failed(error) = &outcome {
        tracing::warn!(connection_id = %id, %error, "could not answer a WebSocket message");
    }
    tracing::debug!(connection_id = %id, answer = %answer.kind(), took_ms = started.elapsed().as_millis() as u64, "answered a WebSocket message");
    reply(200, json!({}))
}

fn refuse(status: i64, code: &str, detail: &str, component: Option<&str>) -> ApiGatewayProxyResponse {
    let mut body = json!({ "detail": detail, "error": code, "request_id": uuid::Uuid::new_v4().to_string() });
    if let Some(component) = component {
        body["component"] = json!(component);
    }
    reply(status, body)
}

fn reply(status: i64, body: serde_json::Value) -> ApiGatewayProxyResponse {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = status;
    response.headers = headers;
    response.body = Some(Body::Text(body.to_string()));
    response
}
