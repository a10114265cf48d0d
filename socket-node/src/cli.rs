//! The node's command line. Every flag is also an environment variable; `--help` lists both.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use tributary_core::config::Settings;

use crate::hub::HubConfig;
use crate::ticker::TickerConfig;
use crate::ws::WebsocketConfig;

/// Tributary's socket node: every HTTP route plus the dashboard WebSockets, on the embedded store.
#[derive(Debug, Clone, Parser)]
#[command(name = "tributary-node", version, about)]
pub struct Cli {
    /// Address to listen on.
    #[arg(long, env = "TRIBUTARY_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,

    /// What `POST /admin/restart` does once drained: `exec` replaces the process in place (same PID,
    /// same port); `exit` exits 0 for a container restart policy or systemd to start it again.
    #[arg(long, env = "RESTART_MODE", default_value = "exec")]
    pub restart_mode: RestartMode,

    /// Bytes of messages one WebSocket client may leave unread before it is closed (1008). Memory
    /// protection only: a client is slow when a send to it waits past the send timeout, not when a
    /// burst queues many messages.
    #[arg(long, env = "WEBSOCKET_QUEUE_MAX_BYTES", default_value_t = 4 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(64 * 1024..=1024 * 1024 * 1024))]
    pub websocket_queue_max_bytes: u64,

    /// Seconds one message may take to leave before the client counts as stalled and is closed (1008).
    #[arg(long, env = "WEBSOCKET_SEND_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub websocket_send_timeout_seconds: u64,

    /// Largest message (and frame) a client may send, in bytes (1009 past it).
    #[arg(long, env = "WEBSOCKET_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024, value_parser = clap::value_parser!(u32).range(128..))]
    pub websocket_max_message_bytes: u32,

    /// Seconds between two WebSocket pings; a client silent for three of them is closed (1001).
    #[arg(long, env = "WEBSOCKET_HEARTBEAT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub websocket_heartbeat_seconds: u64,

    /// Within this window only the latest high-frequency event of a kind is sent (milliseconds).
    #[arg(long, env = "WEBSOCKET_THROTTLE_MS", default_value_t = 250)]
    pub websocket_throttle_ms: u64,

    /// Messages per second one client may send (twice that in a burst); past it they are refused.
    #[arg(long, env = "WEBSOCKET_CLIENT_MESSAGES_PER_SECOND", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub websocket_client_messages_per_second: u32,

    /// Print the OpenAPI document of every route the node serves, and exit.
    #[arg(long)]
    pub print_openapi: bool,

    /// Seconds in-flight HTTP requests get to finish on shutdown or restart.
    #[arg(long, env = "SHUTDOWN_DRAIN_SECONDS", default_value_t = 10)]
    pub shutdown_drain_seconds: u64,

    #[command(flatten)]
    pub settings: Settings,
}

/// How the node comes back from a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RestartMode {
    /// Re-execute the binary in place, handing the listening socket over.
    Exec,
    /// Exit with status 0 and let the supervisor start it again.
    Exit,
}

impl RestartMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartMode::Exec => "exec",
            RestartMode::Exit => "exit",
        }
    }
}

impl Cli {
    pub fn hub_config(&self) -> HubConfig {
        HubConfig {
            max_connections: self.settings.websocket_max_connections,
            max_per_ip: self.settings.websocket_max_connections_per_ip,
            queue_max_bytes: usize::try_from(self.websocket_queue_max_bytes).unwrap_or(usize::MAX),
            throttle: Duration::from_millis(self.websocket_throttle_ms),
        }
    }

    pub fn websocket_config(&self) -> WebsocketConfig {
        WebsocketConfig {
            send_timeout: Duration::from_secs(self.websocket_send_timeout_seconds),
            max_message_bytes: self.websocket_max_message_bytes as usize,
            client_messages_per_second: self.websocket_client_messages_per_second,
        }
    }

    pub fn ticker_config(&self) -> TickerConfig {
        let heartbeat = Duration::from_secs(self.websocket_heartbeat_seconds);
        TickerConfig { stats_interval: self.settings.stats_interval(), heartbeat, idle_timeout: heartbeat * 3 }
    }

    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_drain_seconds)
    }
}
