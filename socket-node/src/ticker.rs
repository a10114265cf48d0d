//! The node's one periodic task: a `stats_update` to every connection each interval (computed and
//! serialized once), a stats snapshot when one is due, and the heartbeat that pings connections and
//! closes the silent ones. No connection has a timer of its own.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tributary_core::http::AppState;
use tributary_core::realtime::{Broadcaster, ServerMessage};

use crate::hub::Hub;

#[derive(Debug, Clone)]
pub struct TickerConfig {
    pub stats_interval: Duration,
    pub heartbeat: Duration,
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
}

/// Runs until `stop` changes (it only ever turns true).
pub async fn run(state: AppState, hub: Arc<Hub>, config: TickerConfig, mut stop: watch::Receiver<bool>) {
    // The first update goes out one interval after start, like every later one: a client that
    // connects right after start (or a restart) gets its ack, then the regular cadence, never a
    // stray update computed while the node was still starting.
    let mut stats = tokio::time::interval_at(tokio::time::Instant::now() + config.stats_interval, config.stats_interval);
    stats.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + config.heartbeat, config.heartbeat);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = stats.tick() => {
                match state.stats.dashboard().await {
                    Ok(current) => {
                        if failing {
                            tracing::info!("stats can be computed again");
                            failing = false;
                        }
                        if !hub.is_empty() {
                            let _ = hub.broadcast(ServerMessage::stats_update(&current)).await;
                        }
                        if let Err(error) = state.stats.snapshot_if_due(&current).await {
                            tracing::warn!(%error, "could not store a stats snapshot");
                        }
                    }
                    Err(error) if !failing => {
                        tracing::warn!(%error, "stats could not be computed; stats_update skipped until they can");
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
            _ = heartbeat.tick() => {
                hub.heartbeat(config.idle_timeout);
            }
        }
    }
}
