//! The scheduled stats function: one run per minute sends a `stats_update` to every connection every
//! `STATS_INTERVAL_SECONDS` (12 ticks at 5 s, so the runs tile the minutes), stopping safely before
//! its time runs out.
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

/// Sends the run's ticks, `STATS_INTERVAL_SECONDS` apart, none starting within [`TICK_BUDGET`] of
/// `deadline`, and none outliving it.
pub async fn run(state: &AppState, broadcaster: &ApiGatewayBroadcaster, deadline: Instant) -> StatsRun {
    let interval = state.settings.stats_interval();
    let started = Instant::now();
    let mut run = StatsRun::default();
    for tick in 0..state.settings.stats_ticks_per_run() {
        let at = started + interval * tick;
        // A tick that is late starts now, not at its planned time: check the later of the two.
        if at.max(Instant::now()) + TICK_BUDGET > deadline {
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
        let frame = ServerMessage::stats_update(&stats).to_frame();
        let fan_out = broadcaster.fan_out(&frame, true);
        // Whatever happens, the run ends before Lambda would cut it off.
        let Ok(fan_out) = tokio::time::timeout_at(deadline - TICK_BUDGET / 3, fan_out).await else {
            tracing::warn!(tick, "stats tick abandoned at the invocation's deadline");
            run.failed_ticks += 1;
            break;
        };
        match fan_out {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::activity::ActivityRecorder;
    use crate::config::Settings;
    use crate::restart::RestartUnsupported;
    use crate::store::{SqliteStore, Stores};

    async fn host(interval: &str) -> (AppState, ApiGatewayBroadcaster, tempfile::TempDir) {
        let folder = tempfile::tempdir().unwrap();
        let db = folder.path().join("stats.db");
        let settings = Settings::from_args(["--db", db.to_str().unwrap(), "--stats-interval-seconds", interval]).unwrap();
        let stores = Stores::sqlite(SqliteStore::open(&db).unwrap());
        // No @connections endpoint is needed: with no connections registered nothing is posted.
        let broadcaster = ApiGatewayBroadcaster::new(Some("http://127.0.0.1:9"), None, stores.connections.clone(), 8, 100, 1).await;
        let recorder = ActivityRecorder::inline(stores.activity.clone(), folder.path().join("spill.jsonl"));
        let state = AppState::new(settings, stores, recorder, Arc::new(NoConnections), Arc::new(RestartUnsupported));
        (state, broadcaster, folder)
    }

    struct NoConnections;

    #[async_trait::async_trait]
    impl crate::realtime::Broadcaster for NoConnections {
        async fn broadcast(&self, _: ServerMessage) -> Result<crate::realtime::BroadcastReport, crate::realtime::BroadcastError> {
            Ok(Default::default())
        }
        async fn send_to(&self, id: &crate::realtime::ConnectionId, _: ServerMessage) -> Result<(), crate::realtime::BroadcastError> {
            Err(crate::realtime::BroadcastError::UnknownConnection(id.clone()))
        }
        async fn connection_count(&self) -> Result<u64, crate::realtime::BroadcastError> {
            Ok(0)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_stops_before_its_deadline() {
        let (state, broadcaster, _folder) = host("1").await;
        // 60 ticks would fill the minute; with 5.5 s left, only those starting 3 s before the end run.
        let run = run(&state, &broadcaster, Instant::now() + Duration::from_millis(5_500)).await;
        assert_eq!(run.ticks.len(), 3, "ticks at 0, 1 and 2 s: {run:?}");
        assert_eq!(run.failed_ticks, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_fills_the_minute() {
        let (state, broadcaster, _folder) = host("5").await;
        let run = run(&state, &broadcaster, Instant::now() + Duration::from_secs(70)).await;
        assert_eq!(run.ticks.iter().map(|tick| tick.tick).collect::<Vec<_>>(), (0..12).collect::<Vec<_>>());
    }
}
