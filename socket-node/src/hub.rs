//! The hub: every open dashboard connection, and the fan-out to them.
//!
//! A broadcast is serialized once into a [`Frame`]; the hub hands the same bytes to every
//! connection's [`Outbox`] without waiting, so a slow client can never delay the others. Whether a
//! client is slow is judged by time, by its task (a send that cannot finish within the send
//! timeout); the outbox's byte bound is memory protection only, and a client that passes it is
//! closed with 1008. High-frequency messages ([`Delivery::Coalesce`]) are throttled, latest wins,
//! and in each outbox a newer one replaces an unsent older one; critical ones are never merged or
//! dropped, and flush any held-back message first so order is kept.
//!
//! Admission happens before the WebSocket upgrade: [`Hub::reserve`] enforces the per-IP limit and the
//! global cap (evicting the connection idle the longest) and holds a slot until the upgrade finishes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tributary_core::realtime::{BroadcastError, BroadcastReport, Broadcaster, ConnectionId, Delivery, Frame, ServerMessage, Severity};

use crate::outbox::{Outbound, Outbox, Refused};

/// Limits the hub enforces.
#[derive(Debug, Clone)]
pub struct HubConfig {
    pub max_connections: u32,
    pub max_per_ip: u32,
    /// Bytes one client may leave unread before it is closed (memory protection).
    pub queue_max_bytes: usize,
    pub throttle: Duration,
}

/// A WebSocket close code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    pub code: u16,
    pub reason: Cow<'static, str>,
}

impl CloseReason {
    pub const fn new(code: u16, reason: &'static str) -> Self {
        CloseReason { code, reason: Cow::Borrowed(reason) }
    }
}

/// Close codes the node uses (RFC 6455 §7.4, IANA registry).
pub mod close {
    use super::CloseReason;

    pub const GOING_AWAY: CloseReason = CloseReason::new(1001, "server shutting down");
    pub const HEARTBEAT_TIMEOUT: CloseReason = CloseReason::new(1001, "no answer to pings");
    pub const SLOW_CONSUMER: CloseReason = CloseReason::new(1008, "slow consumer: too much data waiting");
    pub const STALLED: CloseReason = CloseReason::new(1008, "slow consumer: stopped reading");
    pub const RATE_LIMITED: CloseReason = CloseReason::new(1008, "too many messages from this client");
    pub const EVICTED: CloseReason = CloseReason::new(1013, "server at connection capacity; evicted as the longest idle");
    pub const RESTART: CloseReason = CloseReason::new(1012, "server restarting");
    pub const DELETED: CloseReason = CloseReason::new(1000, "closed through the @connections API");
}

/// The hub's handle on one connection; its task reads the outbox and writes to the socket.
pub struct Connection {
    pub id: ConnectionId,
    pub ip: IpAddr,
    pub connected_at: DateTime<Utc>,
    /// Milliseconds since the hub's epoch of the last frame of any kind from the client (liveness).
    last_seen: AtomicU64,
    /// ... and of the last message the client sent on purpose (for eviction: "idle").
    last_active: AtomicU64,
    pub outbox: Outbox,
    kick: Notify,
    kick_reason: OnceLock<CloseReason>,
    epoch: Instant,
    epoch_utc: DateTime<Utc>,
}

impl Connection {
    /// When the client last sent a message on purpose (or connected).
    pub fn last_active_at(&self) -> DateTime<Utc> {
        self.epoch_utc + chrono::Duration::milliseconds(self.last_active.load(Ordering::Relaxed) as i64)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Notes a frame from the client (pongs included).
    pub fn seen(&self) {
        self.last_seen.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Notes a message the client sent on purpose.
    pub fn active(&self) {
        let now = self.now_ms();
        self.last_seen.store(now, Ordering::Relaxed);
        self.last_active.store(now, Ordering::Relaxed);
    }

    /// Ends the connection now, dropping whatever is queued (for clients that cannot keep up).
    pub fn kick(&self, reason: CloseReason) {
        let _ = self.kick_reason.set(reason);
        self.kick.notify_one();
    }

    /// Closes the connection after the messages already queued; kicks it if the outbox is full.
    pub fn close_after_queued(&self, reason: CloseReason) {
        if let Err(Refused::Full) = self.outbox.push(Outbound::Close(reason.clone())) {
            self.kick(reason);
        }
    }

    /// Resolves once the connection has been kicked; returns why.
    pub async fn kicked(&self) -> CloseReason {
        self.kick.notified().await;
        self.kick_reason.get().cloned().unwrap_or(close::GOING_AWAY)
    }

    fn idle_for_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_active.load(Ordering::Relaxed))
    }

    fn silent_for_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_seen.load(Ordering::Relaxed))
    }
}

/// Why a connection is refused before the upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    TooManyFromIp { limit: u32 },
    AtCapacity { limit: u32 },
    ShuttingDown,
}

#[derive(Default)]
struct Registry {
    connections: HashMap<ConnectionId, Arc<Connection>>,
    per_ip: HashMap<IpAddr, u32>,
    /// Slots held by upgrades in progress.
    reserved: u32,
    closed: bool,
}

impl Registry {
    fn release_ip(&mut self, ip: IpAddr) {
        if let Some(count) = self.per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    fn remove(&mut self, id: &ConnectionId) -> Option<Arc<Connection>> {
        let connection = self.connections.remove(id)?;
        self.release_ip(connection.ip);
        Some(connection)
    }
}

/// A held-back high-frequency message.
struct Throttled {
    last_sent: Instant,
    pending: Option<Frame>,
}

/// The registry of open connections and the fan-out to them.
pub struct Hub {
    config: HubConfig,
    registry: Mutex<Registry>,
    throttled: Mutex<HashMap<String, Throttled>>,
    epoch: Instant,
    epoch_utc: DateTime<Utc>,
    me: Weak<Hub>,
    ids: AtomicU64,
}

impl Hub {
    pub fn new(config: HubConfig) -> Arc<Self> {
        Arc::new_cyclic(|me| Hub {
            config,
            registry: Mutex::new(Registry::default()),
            throttled: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
            epoch_utc: tributary_core::time::now(),
            me: me.clone(),
            ids: AtomicU64::new(0),
        })
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.registry().connections.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Holds a slot for a client at `ip`, evicting the longest-idle connection if the node is full.
    pub fn reserve(&self, ip: IpAddr) -> Result<Reservation, Refusal> {
        let evicted = {
            let mut registry = self.registry();
            if registry.closed {
                return Err(Refusal::ShuttingDown);
            }
            if registry.per_ip.get(&ip).copied().unwrap_or(0) >= self.config.max_per_ip {
                return Err(Refusal::TooManyFromIp { limit: self.config.max_per_ip });
            }
            let in_use = registry.connections.len() as u32 + registry.reserved;
            let evicted = if in_use >= self.config.max_connections {
                let now_ms = self.epoch.elapsed().as_millis() as u64;
                let idlest = registry.connections.values().max_by_key(|connection| connection.idle_for_ms(now_ms)).map(|c| c.id.clone());
                match idlest.and_then(|id| registry.remove(&id)) {
                    Some(connection) => Some(connection),
                    None => return Err(Refusal::AtCapacity { limit: self.config.max_connections }),
                }
            } else {
                None
            };
            *registry.per_ip.entry(ip).or_default() += 1;
            registry.reserved += 1;
            evicted
        };
        if let Some(connection) = evicted {
            tracing::info!(connection_id = %connection.id, client_ip = %connection.ip, "evicting the longest-idle connection to admit a new one");
            let notice = ServerMessage::error(
                "connection_evicted",
                Severity::Warning,
                "websocket",
                "The server reached its connection limit and closed this idle connection; reconnect when needed.",
            );
            if let Ok(text) = Utf8Bytes::try_from(notice.to_frame().bytes().clone()) {
                let _ = connection.outbox.push(Outbound::Text(text));
            }
            connection.close_after_queued(close::EVICTED);
        }
        Ok(Reservation { hub: self.me.upgrade().expect("the hub outlives its calls"), ip, registered: false })
    }

    /// The open connection with this id.
    pub fn get(&self, id: &ConnectionId) -> Option<Arc<Connection>> {
        self.registry().connections.get(id).cloned()
    }

    /// Queues `text` for one connection; a full outbox closes it (1008).
    pub fn send_text(&self, id: &ConnectionId, text: Utf8Bytes) -> Result<(), BroadcastError> {
        let connection = self.get(id).ok_or_else(|| BroadcastError::UnknownConnection(id.clone()))?;
        match connection.outbox.push(Outbound::Text(text)) {
            Ok(()) => Ok(()),
            Err(Refused::Full) => {
                self.drop_slow(id, close::SLOW_CONSUMER);
                Err(BroadcastError::Overflowed(id.clone()))
            }
            Err(Refused::Closed) => Err(BroadcastError::UnknownConnection(id.clone())),
        }
    }

    /// Closes one connection after what is queued for it. Returns whether it was open.
    pub fn disconnect(&self, id: &ConnectionId, reason: CloseReason) -> bool {
        let removed = self.registry().remove(id);
        match removed {
            Some(connection) => {
                connection.close_after_queued(reason);
                true
            }
            None => false,
        }
    }

    /// Removes a connection (its task calls this when it ends). Harmless if already removed.
    pub fn unregister(&self, id: &ConnectionId) {
        self.registry().remove(id);
    }

    /// Refuses new connections from now on (shutdown).
    pub fn close_admission(&self) {
        self.registry().closed = true;
    }

    /// Closes every connection with `reason` after what is already queued for it. Returns how many.
    pub fn close_all(&self, reason: CloseReason) -> usize {
        let connections: Vec<Arc<Connection>> = {
            let mut registry = self.registry();
            registry.closed = true;
            registry.per_ip.clear();
            registry.connections.drain().map(|(_, connection)| connection).collect()
        };
        for connection in &connections {
            connection.close_after_queued(reason.clone());
        }
        connections.len()
    }

    /// Sends a ping to every connection and closes those silent for longer than `idle_timeout`.
    pub fn heartbeat(&self, idle_timeout: Duration) -> usize {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        let silent: Vec<Arc<Connection>> = {
            let mut registry = self.registry();
            let ids: Vec<ConnectionId> = registry
                .connections
                .values()
                .filter(|connection| connection.silent_for_ms(now_ms) > idle_timeout.as_millis() as u64)
                .map(|connection| connection.id.clone())
                .collect();
            ids.iter().filter_map(|id| registry.remove(id)).collect()
        };
        for connection in &silent {
            tracing::info!(connection_id = %connection.id, "closing a connection that stopped answering pings");
            connection.kick(close::HEARTBEAT_TIMEOUT);
        }
        self.fan_out(Outbound::Ping);
        silent.len()
    }

    /// Hands `item` to every connection's outbox; closes the ones that are full.
    fn fan_out(&self, item: Outbound) -> BroadcastReport {
        let mut report = BroadcastReport::default();
        let mut overflowed = Vec::new();
        {
            let registry = self.registry();
            for connection in registry.connections.values() {
                match connection.outbox.push(item.clone()) {
                    Ok(()) => report.delivered += 1,
                    Err(Refused::Full) => overflowed.push(connection.id.clone()),
                    Err(Refused::Closed) => {}
                }
            }
        }
        report.dropped = overflowed.len() as u64;
        for id in overflowed {
            self.drop_slow(&id, close::SLOW_CONSUMER);
        }
        report
    }

    fn drop_slow(&self, id: &ConnectionId, reason: CloseReason) {
        if let Some(connection) = self.registry().remove(id) {
            tracing::warn!(connection_id = %id, client_ip = %connection.ip, reason = %reason.reason, "closing a WebSocket client that cannot keep up");
            connection.kick(reason);
        }
    }

    /// Removes and closes a connection that left data unread for the whole send timeout.
    pub fn drop_stalled(&self, connection: &Connection) {
        self.drop_slow(&connection.id, close::STALLED);
    }

    /// Hands `frame` to every connection; one with `latest` replaces an unsent one of that key.
    fn send_frame(&self, frame: &Frame, latest: Option<&str>) -> BroadcastReport {
        let Ok(text) = Utf8Bytes::try_from(frame.bytes().clone()) else { unreachable!("frames are serialized JSON, hence UTF-8") };
        match latest {
            Some(key) => self.fan_out(Outbound::Latest { key: Arc::from(key), text }),
            None => self.fan_out(Outbound::Text(text)),
        }
    }

    /// Sends every held-back message now (before a critical one, to keep order).
    fn flush_throttled(&self) {
        let pending: Vec<(String, Frame)> = {
            let mut throttled = self.throttled.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            throttled
                .iter_mut()
                .filter_map(|(key, slot)| {
                    let frame = slot.pending.take()?;
                    slot.last_sent = now;
                    Some((key.clone(), frame))
                })
                .collect()
        };
        for (key, frame) in pending {
            self.send_frame(&frame, Some(&key));
        }
    }

    /// Sends `frame` now if its kind has not been sent within the throttle window; otherwise holds
    /// it (replacing any older held one) and schedules it for the end of the window.
    fn send_throttled(&self, key: String, frame: Frame) -> BroadcastReport {
        let now = Instant::now();
        let send_now = {
            let mut throttled = self.throttled.lock().unwrap_or_else(|p| p.into_inner());
            match throttled.get_mut(&key) {
                Some(slot) if now.duration_since(slot.last_sent) < self.config.throttle || slot.pending.is_some() => {
                    let first_held = slot.pending.replace(frame.clone()).is_none();
                    if first_held {
                        let wait = self.config.throttle.saturating_sub(now.duration_since(slot.last_sent));
                        self.schedule_release(key.clone(), wait);
                    }
                    false
                }
                Some(slot) => {
                    slot.last_sent = now;
                    true
                }
                None => {
                    // Keys come and go (one per ingestion): forget the idle ones before adding.
                    if throttled.len() >= 64 {
                        let window = self.config.throttle;
                        throttled.retain(|_, slot| slot.pending.is_some() || now.duration_since(slot.last_sent) < window);
                    }
                    throttled.insert(key.clone(), Throttled { last_sent: now, pending: None });
                    true
                }
            }
        };
        if send_now { self.send_frame(&frame, Some(&key)) } else { BroadcastReport { deferred: true, ..Default::default() } }
    }

    fn schedule_release(&self, key: String, wait: Duration) {
        let hub = self.me.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let Some(hub) = hub.upgrade() else { return };
            let frame = {
                let mut throttled = hub.throttled.lock().unwrap_or_else(|p| p.into_inner());
                throttled.get_mut(&key).and_then(|slot| {
                    let frame = slot.pending.take()?;
                    slot.last_sent = Instant::now();
                    Some(frame)
                })
            };
            if let Some(frame) = frame {
                hub.send_frame(&frame, Some(&key));
            }
        });
    }

    /// Registers the connection a reservation was held for.
    fn register(&self, reservation: &mut Reservation) -> Arc<Connection> {
        let sequence = self.ids.fetch_add(1, Ordering::Relaxed);
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        let connection = Arc::new(Connection {
            id: ConnectionId::new(format!("{}-{sequence}", uuid_prefix())),
            ip: reservation.ip,
            connected_at: tributary_core::time::now(),
            last_seen: AtomicU64::new(now_ms),
            last_active: AtomicU64::new(now_ms),
            outbox: Outbox::new(self.config.queue_max_bytes),
            kick: Notify::new(),
            kick_reason: OnceLock::new(),
            epoch: self.epoch,
            epoch_utc: self.epoch_utc,
        });
        let mut registry = self.registry();
        registry.reserved -= 1;
        reservation.registered = true;
        if registry.closed {
            // Shutting down: the slot was cleared by `close_all`; close this one straight away.
            connection.close_after_queued(close::GOING_AWAY);
        } else {
            registry.connections.insert(connection.id.clone(), connection.clone());
        }
        connection
    }
}

/// A per-process prefix so connection ids stay unique across restarts.
fn uuid_prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned())
}

/// A slot held for a client between admission and the end of the upgrade; released if dropped
/// unused.
pub struct Reservation {
    hub: Arc<Hub>,
    ip: IpAddr,
    registered: bool,
}

impl Reservation {
    /// The upgrade succeeded: the client becomes a connection.
    pub fn register(mut self) -> Arc<Connection> {
        let hub = self.hub.clone();
        hub.register(&mut self)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.registered {
            let mut registry = self.hub.registry();
            registry.reserved -= 1;
            registry.release_ip(self.ip);
        }
    }
}

#[async_trait]
impl Broadcaster for Hub {
    async fn broadcast(&self, message: ServerMessage) -> Result<BroadcastReport, BroadcastError> {
        let frame = message.to_frame();
        Ok(match message.delivery() {
            Delivery::Critical => {
                self.flush_throttled();
                self.send_frame(&frame, None)
            }
            Delivery::Coalesce(key) if !self.config.throttle.is_zero() => self.send_throttled(key, frame),
            Delivery::Coalesce(key) => self.send_frame(&frame, Some(&key)),
        })
    }

    async fn send_to(&self, id: &ConnectionId, message: ServerMessage) -> Result<(), BroadcastError> {
        self.send_text(id, Utf8Bytes::try_from(message.to_frame().bytes().clone()).expect("frames are UTF-8"))
    }

    async fn connection_count(&self) -> Result<u64, BroadcastError> {
        Ok(self.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tributary_core::realtime::MessageType;

    fn hub(max_connections: u32, max_per_ip: u32, queue_max_bytes: usize) -> Arc<Hub> {
        Hub::new(HubConfig { max_connections, max_per_ip, queue_max_bytes, throttle: Duration::from_millis(50) })
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn texts(connection: &Connection) -> Vec<serde_json::Value> {
        connection
            .outbox
            .drain()
            .into_iter()
            .filter_map(|item| match item {
                Outbound::Text(text) | Outbound::Latest { text, .. } => Some(serde_json::from_str(text.as_str()).unwrap()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_per_ip_limit_counts_upgrades_in_progress_and_frees_on_drop() {
        let hub = hub(100, 2, 1024);
        let first = hub.reserve(ip(1)).unwrap();
        let _second = hub.reserve(ip(1)).unwrap();
        assert_eq!(hub.reserve(ip(1)).err(), Some(Refusal::TooManyFromIp { limit: 2 }));
        assert!(hub.reserve(ip(2)).is_ok(), "other addresses are not affected");
        drop(first);
        assert!(hub.reserve(ip(1)).is_ok(), "a failed upgrade gives its slot back");
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_is_told_and_closed() {
        let hub = hub(2, 10, 1024);
        let idle = hub.reserve(ip(1)).unwrap().register();
        std::thread::sleep(Duration::from_millis(5));
        let busy = hub.reserve(ip(2)).unwrap().register();
        busy.active();
        let _newcomer = hub.reserve(ip(3)).unwrap().register();
        assert_eq!(hub.len(), 2);
        assert!(!hub.registry().connections.contains_key(&idle.id));
        let told = idle.outbox.drain();
        assert!(matches!(&told[0], Outbound::Text(text) if text.as_str().contains("connection_evicted")));
        assert!(matches!(&told[1], Outbound::Close(reason) if reason.code == 1013));
    }

    #[tokio::test]
    async fn a_client_that_leaves_too_much_unread_is_closed_and_the_others_are_spared() {
        // The bound is in bytes: two of these messages do not fit.
        let hub = hub(10, 10, 100);
        let slow = hub.reserve(ip(1)).unwrap().register();
        let fast = hub.reserve(ip(2)).unwrap().register();
        for n in 0..3 {
            let message = ServerMessage::new(MessageType::Notification, json!({ "n": n, "padding": "x".repeat(40) })).unwrap();
            hub.broadcast(message).await.unwrap();
            assert_eq!(texts(&fast).len(), 1, "the reader that keeps up gets every message");
        }
        assert_eq!(hub.len(), 1);
        assert_eq!(slow.kick_reason.get(), Some(&close::SLOW_CONSUMER));
    }

    #[tokio::test]
    async fn a_burst_of_critical_messages_waits_for_a_reader_however_many() {
        let hub = hub(10, 10, 4 * 1024 * 1024);
        let reader = hub.reserve(ip(1)).unwrap().register();
        for n in 0..2_000 {
            let complete = ServerMessage::new(MessageType::IngestionComplete, json!({"ingestion_id": format!("i-{n}")})).unwrap();
            hub.broadcast(complete).await.unwrap();
        }
        assert_eq!(hub.len(), 1, "a burst the server produced closes no one");
        let sent = texts(&reader);
        assert_eq!(sent.len(), 2_000);
        assert!(sent.iter().enumerate().all(|(n, message)| message["data"]["ingestion_id"] == format!("i-{n}")), "in order");
    }

    #[tokio::test]
    async fn high_frequency_messages_coalesce_and_critical_ones_keep_order() {
        let hub = hub(10, 10, 64 * 1024);
        let connection = hub.reserve(ip(1)).unwrap().register();
        let progress =
            |percent: u32| ServerMessage::new(MessageType::IngestionProgress, json!({"ingestion_id": "i-1", "percent": percent})).unwrap();
        let kinds = |connection: &Connection| -> Vec<(String, serde_json::Value)> {
            texts(connection).iter().map(|m| (m["type"].as_str().unwrap().to_owned(), m["data"]["percent"].clone())).collect()
        };
        hub.broadcast(progress(10)).await.unwrap();
        assert_eq!(kinds(&connection), [("ingestion_progress".to_owned(), json!(10))]);
        // Within the throttle window: held back, latest wins, released before the critical one.
        for percent in [20, 30, 40] {
            hub.broadcast(progress(percent)).await.unwrap();
        }
        let complete = ServerMessage::new(MessageType::IngestionComplete, json!({"ingestion_id": "i-1"})).unwrap();
        hub.broadcast(complete).await.unwrap();
        assert_eq!(kinds(&connection), [("ingestion_progress".to_owned(), json!(40)), ("ingestion_complete".to_owned(), json!(null))]);
    }

    #[tokio::test]
    async fn a_client_behind_gets_the_newest_stats_once_not_every_stale_one() {
        let hub = Hub::new(HubConfig { max_connections: 10, max_per_ip: 10, queue_max_bytes: 1024 * 1024, throttle: Duration::ZERO });
        let behind = hub.reserve(ip(1)).unwrap().register();
        let stats = |nodes: u32| {
            let data = json!({"totalNodes": nodes, "totalEdges": 0, "filesProcessed": 0, "databaseTables": 0, "activeQueries": 0, "activeConnections": 1});
            ServerMessage::new(MessageType::StatsUpdate, data).unwrap()
        };
        for nodes in 0..50 {
            hub.broadcast(stats(nodes)).await.unwrap();
        }
        let sent = texts(&behind);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["data"]["totalNodes"], 49);
    }

    #[tokio::test]
    async fn a_held_back_message_is_released_at_the_end_of_the_window() {
        let hub = hub(10, 10, 64 * 1024);
        let connection = hub.reserve(ip(1)).unwrap().register();
        let progress =
            |percent: u32| ServerMessage::new(MessageType::IngestionProgress, json!({"ingestion_id": "i-2", "percent": percent})).unwrap();
        hub.broadcast(progress(1)).await.unwrap();
        assert!(hub.broadcast(progress(2)).await.unwrap().deferred);
        assert_eq!(texts(&connection).len(), 1);
        let released = tokio::time::timeout(Duration::from_secs(5), connection.outbox.next()).await.unwrap();
        assert!(matches!(released, Outbound::Latest { text, .. } if text.as_str().contains("\"percent\":2")));
    }

    #[tokio::test]
    async fn personal_messages_reach_only_their_connection() {
        let hub = hub(10, 10, 64 * 1024);
        let one = hub.reserve(ip(1)).unwrap().register();
        let other = hub.reserve(ip(2)).unwrap().register();
        hub.send_to(&one.id, ServerMessage::pong()).await.unwrap();
        assert_eq!(texts(&one).len(), 1);
        assert!(texts(&other).is_empty());
        let missing = ConnectionId::new("nope");
        assert!(matches!(hub.send_to(&missing, ServerMessage::pong()).await, Err(BroadcastError::UnknownConnection(_))));
    }
}
