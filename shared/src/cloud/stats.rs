//! The scheduled stats function: one run per minute sends a `stats_update` to every connection every
//! `STATS_INTERVAL_SECONDS` (12 ticks at 5 s), stopping safely before its time runs out.
//!
//! Each tick computes the stats once, serializes them once, and fans them out through
//! `@connections` (page by page, bounded concurrency, Gone connections removed, first-time
//! connections acknowledged), then logs one structured summary.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::broadcaster::{ApiGatewayBroadcaster, FanOut};
use crate::http::AppState;
use crate::realtime::ServerMessage;

/// The most a tick may take: no tick starts later than this before the deadline.
const TICK_BUDGET: Duration = Duration::from_secs(3);

/// One tick's summary.
#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    pub tick: u32,
    #[serde(flatten)]
    pub fan_out: FanOut,
}

/// What one run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatsRun {
    pub ticks: Vec<Tick>,
    /// Ticks skipped because the stats or the connection list could not be read.
    pub failed_ticks: u32,
}

/// Sends up to `STATS_TICKS` ticks, `STATS_INTERVAL_SECONDS` apart, none starting within
/// [`TICK_BUDGET`] of `deadline`.
pub async fn run(state: &AppState, broadcaster: &ApiGatewayBroadcaster, deadline: Instant) -> StatsRun {
    let interval = state.settings.stats_interval();
    let started = Instant::now();
    let mut run = StatsRun::default();
    for tick in 0..state.settings.stats_ticks {
        let at = started + interval * tick;
        if at + TICK_BUDGET > deadline {
            tracing::info!(tick, "stopping before the invocation's deadline");
            break;
        }
        tokio::time::sleep_until(at).await;
        let stats = match state.stats.dashboard().await {
            Ok(stats) => stats,
            Err(error) => {
                tracing::warn!(tick, %error, "stats could not be computed; tick skipped");
                run.failed_ticks += 1;
                continue;
            }
        };
        match broadcaster.fan_out(&ServerMessage::stats_update(&stats).to_frame(), true).await {
            Ok(fan_out) => {
                tracing::info!(
                    tick,
                    delivered = fan_out.delivered,
                    gone = fan_out.gone,
                    failed = fan_out.failed,
                    acknowledged = fan_out.acknowledged,
                    duration_ms = fan_out.duration_ms,
                    "stats tick"
                );
                run.ticks.push(Tick { tick, fan_out });
            }
            Err(error) => {
                tracing::warn!(tick, %error, "connections could not be listed; tick skipped");
                run.failed_ticks += 1;
            }
        }
        if tick == 0
            && let Err(error) = state.stats.snapshot_if_due(&stats).await
        {
            tracing::warn!(%error, "could not store a stats snapshot");
        }
    }
    run
}
