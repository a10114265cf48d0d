//! The dashboard WebSocket endpoints, and the task that serves one connection.
//!
//! Admission happens before the upgrade, in this order: the `Origin` must be allowed (403), the
//! client's address must be under its per-IP limit (503), and the node must be taking connections
//! (503, or the longest-idle connection is evicted at the global cap). Every refusal is a JSON error.
//!
//! Each connection is one task that waits on three things: a kick from the hub, its outbox, and the
//! socket. Sends carry a timeout (armed only when a send has to wait): a client that leaves data
//! unread that long is slow, and is closed without delaying anyone else and without a
//! per-connection timer.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tokio_util::task::TaskTracker;
use tributary_core::activity::{ActivityEvent, EventSource, EventStatus, EventType};
use tributary_core::error::{ApiError, ErrorBody};
use tributary_core::http::AppState;
use tributary_core::http::extract::ClientAddr;
use tributary_core::realtime::{ServerMessage, Severity, protocol};
use tributary_core::store::ConnectionRecord;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::hub::{CloseReason, Connection, Hub, Refusal, close};
use crate::outbox::Outbound;

/// Per-connection settings.
#[derive(Debug, Clone)]
pub struct WebsocketConfig {
    pub send_timeout: Duration,
    pub max_message_bytes: usize,
    pub client_messages_per_second: u32,
}

/// What the WebSocket routes need besides the core's state.
pub struct NodeContext {
    pub hub: Arc<Hub>,
    pub config: WebsocketConfig,
    /// Every connection task, so shutdown can wait for them to close.
    pub connections: TaskTracker,
}

/// The three paths dashboards connect on.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(dashboard)).routes(routes!(admin_dashboard)).routes(routes!(dashboard_alias))
}

/// The dashboard WebSocket. Upgrade with `GET` and the usual WebSocket headers; the server sends
/// `connection_ack` at once, then `stats_update` every interval. See docs/api.md for every message.
#[utoipa::path(
    get,
    path = "/api/v1/ws/dashboard",
    tag = "websocket",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade request", body = ErrorBody),
        (status = 403, description = "Origin not allowed", body = ErrorBody),
        (status = 503, description = "Too many connections from this address, or the node is shutting down", body = ErrorBody),
    )
)]
pub async fn dashboard(
    State(state): State<AppState>,
    Extension(node): Extension<Arc<NodeContext>>,
    parts: Parts,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    accept(state, node, parts, upgrade, "/api/v1/ws/dashboard")
}

/// Alias of `/api/v1/ws/dashboard`.
#[utoipa::path(
    get,
    path = "/admin/ws/dashboard",
    tag = "websocket",
    responses(
        (status = 101, description = "See /api/v1/ws/dashboard"),
        (status = 400, description = "Not a WebSocket upgrade request", body = ErrorBody),
        (status = 403, description = "Origin not allowed", body = ErrorBody),
        (status = 503, description = "Too many connections from this address, or the node is shutting down", body = ErrorBody),
    )
)]
pub async fn admin_dashboard(
    State(state): State<AppState>,
    Extension(node): Extension<Arc<NodeContext>>,
    parts: Parts,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    accept(state, node, parts, upgrade, "/admin/ws/dashboard")
}

/// Alias of `/api/v1/ws/dashboard`.
#[utoipa::path(
    get,
    path = "/ws/dashboard",
    tag = "websocket",
    responses(
        (status = 101, description = "See /api/v1/ws/dashboard"),
        (status = 400, description = "Not a WebSocket upgrade request", body = ErrorBody),
        (status = 403, description = "Origin not allowed", body = ErrorBody),
        (status = 503, description = "Too many connections from this address, or the node is shutting down", body = ErrorBody),
    )
)]
pub async fn dashboard_alias(
    State(state): State<AppState>,
    Extension(node): Extension<Arc<NodeContext>>,
    parts: Parts,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    accept(state, node, parts, upgrade, "/ws/dashboard")
}

fn accept(
    state: AppState,
    node: Arc<NodeContext>,
    parts: Parts,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    path: &'static str,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return ApiError::new(rejection.status(), "websocket_upgrade_required", rejection.body_text())
                .with_hint("open this path with a WebSocket client")
                .into_response();
        }
    };
    if let Some(origin) = parts.headers.get(header::ORIGIN) {
        let host = parts.headers.get(header::HOST).and_then(|value| value.to_str().ok());
        let allowed = origin.to_str().is_ok_and(|origin| state.settings.allowed_origins.allows(origin, host));
        if !allowed {
            tracing::warn!(origin = ?origin, "refused a WebSocket from an origin that is not allowed");
            return ApiError::forbidden("origin_not_allowed", "this origin may not open the dashboard WebSocket")
                .with_hint("add the origin to ALLOWED_ORIGINS on the server")
                .into_response();
        }
    }
    let addresses = ClientAddr::from_parts(&parts, state.settings.trust_forwarded_for);
    let ip = addresses.client.or(addresses.peer).unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let reservation = match node.hub.reserve(ip) {
        Ok(reservation) => reservation,
        Err(refusal) => return refuse(refusal, ip),
    };
    let config = &node.config;
    let tracked = node.clone();
    upgrade
        .max_message_size(config.max_message_bytes)
        .max_frame_size(config.max_message_bytes)
        // Small buffers: an idle connection should cost a few KiB, not the 128 KiB defaults. Clients
        // send short JSON; a longer message grows the buffer while it is read.
        .read_buffer_size(512)
        .write_buffer_size(0)
        .max_write_buffer_size(config.max_message_bytes.max(1024 * 1024))
        .on_failed_upgrade(|error| tracing::debug!(%error, "WebSocket upgrade failed"))
        .on_upgrade(move |socket| {
            let connection = reservation.register();
            let node = tracked.clone();
            tracked.connections.track_future(serve(socket, connection, state, node, path))
        })
}

fn refuse(refusal: Refusal, ip: IpAddr) -> Response {
    let error = match refusal {
        Refusal::TooManyFromIp { limit } => {
            tracing::warn!(client_ip = %ip, limit, "refused a WebSocket: per-IP limit reached");
            ApiError::unavailable(
                "websocket",
                "too_many_connections",
                format!("this address already has {limit} open dashboard connections"),
            )
            .with_hint("close another dashboard tab, or raise WEBSOCKET_MAX_CONNECTIONS_PER_IP")
        }
        Refusal::AtCapacity { limit } => ApiError::unavailable(
            "websocket",
            "server_at_capacity",
            format!("the server holds its maximum of {limit} connections and none can be evicted"),
        ),
        Refusal::ShuttingDown => ApiError::unavailable("websocket", "shutting_down", "the server is restarting or shutting down"),
    };
    let mut response = error.into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// Removes a connection from the hub when dropped.
struct Registration {
    hub: Arc<Hub>,
    id: tributary_core::realtime::ConnectionId,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.unregister(&self.id);
    }
}

/// How a connection ended.
struct Ending {
    code: Option<u16>,
    reason: String,
    by_server: bool,
}

impl Ending {
    fn server(reason: &CloseReason) -> Self {
        Ending { code: Some(reason.code), reason: reason.reason.to_string(), by_server: true }
    }

    fn client(code: Option<u16>, reason: impl Into<String>) -> Self {
        Ending { code, reason: reason.into(), by_server: false }
    }
}

/// Serves one connection from its upgrade to its close.
async fn serve(mut socket: WebSocket, connection: Arc<Connection>, state: AppState, node: Arc<NodeContext>, path: &'static str) {
    let started = Instant::now();
    tracing::info!(connection_id = %connection.id, client_ip = %connection.ip, path, "dashboard connected");
    let connected = ActivityEvent::new(EventType::WebsocketConnect, EventSource::Websocket, path, EventStatus::Success)
        .with_metadata("connection_id", connection.id.as_str())
        .with_metadata("client_ip", connection.ip.to_string());
    state.activity.record(connected).await;
    register_in_store(&state, &connection).await;

    // Unregistered however the conversation ends, a panic included, so no phantom holds a slot.
    let registration = Registration { hub: node.hub.clone(), id: connection.id.clone() };
    let ending = converse(&mut socket, &connection, &state, &node).await;
    drop(registration);
    // Nothing more is queued for it, and what waited is freed now.
    connection.outbox.close();

    if let Err(error) = state.stores.connections.remove_connection(&connection.id).await {
        tracing::warn!(connection_id = %connection.id, %error, "could not remove the connection from the store; its TTL will");
    }

    let duration_s = started.elapsed().as_secs_f64();
    tracing::info!(
        connection_id = %connection.id,
        client_ip = %connection.ip,
        code = ending.code,
        reason = %ending.reason,
        by_server = ending.by_server,
        duration_s,
        "dashboard disconnected"
    );
    let failed = matches!(ending.code, Some(1002 | 1003 | 1007 | 1008 | 1009 | 1011));
    let mut disconnected = ActivityEvent::new(
        EventType::WebsocketDisconnect,
        EventSource::Websocket,
        path,
        if failed { EventStatus::Error } else { EventStatus::Success },
    )
    .with_metadata("connection_id", connection.id.as_str())
    .with_metadata("client_ip", connection.ip.to_string())
    .with_metadata("reason", ending.reason)
    .with_metadata("closed_by", if ending.by_server { "server" } else { "client" })
    .with_metadata("duration_s", (duration_s * 1000.0).round() / 1000.0);
    disconnected.status_code = ending.code;
    state.activity.record(disconnected).await;
}

/// Records the connection in the store's registry (whatever the backend), so hosts that share the
/// store (the cloud's stats function, through this node's `@connections` API) can reach it. It is
/// written before the `connection_ack`, so an acknowledged client is reachable. The node enforces
/// its own limits, so the registry's per-IP limit is not applied here.
async fn register_in_store(state: &AppState, connection: &Connection) {
    let record = ConnectionRecord {
        id: connection.id.clone(),
        client_ip: connection.ip.to_string(),
        connected_at: connection.connected_at,
        // The node has no 2-hour cap on connections, so neither has its record; a crashed node's
        // records answer Gone on the next stats tick and are removed then.
        expires_at: connection.connected_at + chrono::Duration::days(7),
        // The node sends the acknowledgement itself, at once.
        acknowledged: true,
    };
    if let Err(error) = state.stores.connections.admit_connection(&record, u32::MAX).await {
        tracing::warn!(connection_id = %connection.id, %error, "could not record the connection in the store");
    }
}

/// The conversation: acknowledge, then relay the outbox and answer the client until one side ends it.
async fn converse(socket: &mut WebSocket, connection: &Connection, state: &AppState, node: &NodeContext) -> Ending {
    let config = &node.config;
    let ack = ServerMessage::connection_ack(connection.id.as_str(), state.settings.stats_interval_seconds);
    if let Err(ending) = send(socket, text_of(&ack), config.send_timeout, connection, &node.hub).await {
        return ending;
    }
    let mut budget = MessageBudget::new(config.client_messages_per_second);
    loop {
        tokio::select! {
            biased;
            reason = connection.kicked() => {
                close_now(socket, &reason).await;
                return Ending::server(&reason);
            }
            item = connection.outbox.next() => match item {
                Outbound::Text(text) | Outbound::Latest { text, .. } => {
                    if let Err(ending) = send(socket, Message::Text(text), config.send_timeout, connection, &node.hub).await {
                        return ending;
                    }
                }
                Outbound::Ping => {
                    if let Err(ending) = send(socket, Message::Ping(Default::default()), config.send_timeout, connection, &node.hub).await {
                        return ending;
                    }
                }
                Outbound::Close(reason) => {
                    close_gracefully(socket, &reason).await;
                    return Ending::server(&reason);
                }
            },
            incoming = socket.recv() => {
                let message = match incoming {
                    None => return Ending::client(None, "connection dropped without a close frame"),
                    Some(Err(error)) => {
                        let reason = protocol_violation(&error);
                        close_now(socket, &reason).await;
                        return Ending { code: Some(reason.code), reason: format!("{}: {error}", reason.reason), by_server: true };
                    }
                    Some(Ok(message)) => message,
                };
                connection.seen();
                if let Message::Close(frame) = message {
                    let (code, reason) = frame.map(|f| (Some(f.code), f.reason.to_string())).unwrap_or((None, String::new()));
                    // Reading on lets the protocol layer answer the close, completing the handshake.
                    let _ = tokio::time::timeout(CLOSE_REPLY_WAIT, socket.recv()).await;
                    return Ending::client(code, if reason.is_empty() { "closed by the client".to_owned() } else { reason });
                }
                // Every frame the client sends costs the same: text, binary, ping or pong. A flood of
                // any kind is refused, then closed.
                if matches!(message, Message::Text(_)) {
                    connection.active();
                }
                let reply = match budget.spend() {
                    Spend::Allowed => match message {
                        Message::Text(text) => Some(protocol::respond(text.as_str(), &state.stats).await),
                        Message::Binary(_) => Some(protocol::invalid_message("binary frames are not supported; send JSON text")),
                        // Pings are answered by the protocol layer; pongs only prove liveness.
                        _ => None,
                    },
                    Spend::RefusedFirst => Some(ServerMessage::error(
                        "rate_limited",
                        Severity::Warning,
                        "websocket",
                        "too many messages; some were ignored",
                    )),
                    Spend::Refused => None,
                    Spend::Exhausted => {
                        close_now(socket, &close::RATE_LIMITED).await;
                        return Ending::server(&close::RATE_LIMITED);
                    }
                };
                if let Some(reply) = reply
                    && let Err(ending) = send(socket, text_of(&reply), config.send_timeout, connection, &node.hub).await
                {
                    return ending;
                }
            }
        }
    }
}

fn text_of(message: &ServerMessage) -> Message {
    Message::Text(Utf8Bytes::try_from(message.to_frame().bytes().clone()).expect("frames are UTF-8"))
}

/// Sends one message; a send that cannot finish within `timeout` means the client stopped reading.
/// A kick from the hub (the outbox overflowed meanwhile) ends the wait at once.
async fn send(socket: &mut WebSocket, message: Message, timeout: Duration, connection: &Connection, hub: &Hub) -> Result<(), Ending> {
    let outcome = tokio::select! {
        sent = tokio::time::timeout(timeout, socket.send(message)) => sent,
        reason = connection.kicked() => {
            close_now(socket, &reason).await;
            return Err(Ending::server(&reason));
        }
    };
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(Ending::client(None, format!("send failed: {error}"))),
        Err(_) => {
            hub.drop_stalled(connection);
            let reason = close::STALLED;
            close_now(socket, &reason).await;
            Err(Ending::server(&reason))
        }
    }
}

/// How long a client gets to answer our close frame before we drop the connection anyway.
const CLOSE_REPLY_WAIT: Duration = Duration::from_millis(500);

/// Sends a close frame and waits briefly for the client's answer.
async fn close_gracefully(socket: &mut WebSocket, reason: &CloseReason) {
    let frame = CloseFrame { code: reason.code, reason: Utf8Bytes::from(reason.reason.to_string()) };
    if tokio::time::timeout(CLOSE_REPLY_WAIT, socket.send(Message::Close(Some(frame)))).await.is_ok() {
        let _ = tokio::time::timeout(CLOSE_REPLY_WAIT, async {
            while let Some(Ok(message)) = socket.recv().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

/// Tries to send a close frame without waiting on a client that may not be reading.
async fn close_now(socket: &mut WebSocket, reason: &CloseReason) {
    let frame = CloseFrame { code: reason.code, reason: Utf8Bytes::from(reason.reason.to_string()) };
    let _ = tokio::time::timeout(Duration::from_millis(200), socket.send(Message::Close(Some(frame)))).await;
}

/// The close code for a frame the client should not have sent.
fn protocol_violation(error: &axum::Error) -> CloseReason {
    let text = error.to_string().to_ascii_lowercase();
    if text.contains("space limit exceeded") || text.contains("too long") || text.contains("too big") || text.contains("capacity") {
        CloseReason::new(1009, "message too big")
    } else if text.contains("utf-8") || text.contains("utf8") {
        CloseReason::new(1007, "invalid UTF-8 in a text frame")
    } else {
        CloseReason::new(1002, "protocol error")
    }
}

/// A token bucket for the messages one client sends: `rate` per second, bursts of twice that.
/// Refusals are answered once per run; a client that keeps sending far past it is closed.
struct MessageBudget {
    rate: f64,
    tokens: f64,
    last: Instant,
    refused_in_a_row: u32,
}

enum Spend {
    Allowed,
    RefusedFirst,
    Refused,
    Exhausted,
}

impl MessageBudget {
    fn new(per_second: u32) -> Self {
        let rate = f64::from(per_second);
        MessageBudget { rate, tokens: rate * 2.0, last: Instant::now(), refused_in_a_row: 0 }
    }

    fn spend(&mut self) -> Spend {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.rate * 2.0);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused_in_a_row = 0;
            return Spend::Allowed;
        }
        self.refused_in_a_row += 1;
        match self.refused_in_a_row {
            1 => Spend::RefusedFirst,
            // Ten seconds' worth of messages refused in a row: this is a flood, not a burst.
            n if f64::from(n) > self.rate * 10.0 => Spend::Exhausted,
            _ => Spend::Refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_allows_a_burst_then_refuses_then_gives_up_on_a_flood() {
        let mut budget = MessageBudget::new(5);
        for _ in 0..10 {
            assert!(matches!(budget.spend(), Spend::Allowed));
        }
        assert!(matches!(budget.spend(), Spend::RefusedFirst));
        for _ in 0..49 {
            assert!(matches!(budget.spend(), Spend::Refused));
        }
        assert!(matches!(budget.spend(), Spend::Exhausted));
    }
}
