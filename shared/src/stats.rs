//! Dashboard and graph statistics, computed from the store and live state.
//!
//! Nothing here is a constant: graph counts are queries over the stored graph, connections come from
//! whoever holds the sockets (the node's hub, or the cloud's connection table), queries in flight
//! from a live gauge, and trends compare with a stored snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::realtime::Broadcaster;
use crate::store::{GraphCounts, StatsSnapshot, StoreError, Stores};

/// What the dashboard's tiles show; also the `data` of every `stats_update` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DashboardStats {
    /// Nodes in the lineage graph.
    pub total_nodes: u64,
    /// Edges in the lineage graph.
    pub total_edges: u64,
    /// SQL files ingested.
    pub files_processed: u64,
    /// Nodes of type `Table`.
    pub database_tables: u64,
    /// Chat queries being answered right now.
    pub active_queries: u64,
    /// Dashboard WebSocket connections open right now.
    pub active_connections: u64,
    /// Nodes per type.
    pub node_types: BTreeMap<String, u64>,
    pub trends: Trends,
}

/// Change against the stats snapshot taken a trend window ago.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Trends {
    pub nodes: Trend,
    pub files: Trend,
}

/// A percentage change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Trend {
    /// Percent change since the baseline snapshot, one decimal (100.0 when growing from zero).
    pub value: f64,
    /// Whether the change is zero or growth.
    pub is_positive: bool,
}

impl Trend {
    /// The change from `baseline` to `current`; no baseline yet means no change.
    pub fn between(baseline: Option<u64>, current: u64) -> Trend {
        let value = match baseline {
            None => 0.0,
            Some(0) if current == 0 => 0.0,
            Some(0) => 100.0,
            Some(baseline) => ((current as f64 - baseline as f64) / baseline as f64 * 1000.0).round() / 10.0,
        };
        Trend { value, is_positive: value >= 0.0 }
    }
}

/// `GET /api/v1/graph/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GraphStats {
    pub nodes: u64,
    pub edges: u64,
    pub node_types: BTreeMap<String, u64>,
    pub relationship_types: BTreeMap<String, u64>,
}

/// Queries being answered right now; the chat routes hold a [`QueryGuard`] while they work.
#[derive(Debug, Default)]
pub struct LiveGauges {
    active_queries: AtomicU64,
}

impl LiveGauges {
    pub fn active_queries(&self) -> u64 {
        self.active_queries.load(Ordering::Relaxed)
    }

    /// Counts a query as active until the guard drops.
    pub fn begin_query(self: &Arc<Self>) -> QueryGuard {
        self.active_queries.fetch_add(1, Ordering::Relaxed);
        QueryGuard { gauges: self.clone() }
    }
}

/// Holds one active query; see [`LiveGauges::begin_query`].
#[derive(Debug)]
pub struct QueryGuard {
    gauges: Arc<LiveGauges>,
}

impl Drop for QueryGuard {
    fn drop(&mut self) {
        self.gauges.active_queries.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long figures are reused, and when trends and snapshots look back.
#[derive(Debug, Clone, Copy)]
pub struct StatsTiming {
    /// Store-derived figures are reused for this long (zero: never).
    pub cache_for: Duration,
    /// Trends compare with the newest snapshot at least this old.
    pub trend_window: Duration,
    /// A snapshot is stored when the newest is older than this.
    pub snapshot_every: Duration,
}

/// What the stats need from the store: the graph's counts and the trends' baseline.
#[derive(Debug, Clone)]
struct StoreFigures {
    counts: GraphCounts,
    baseline: Option<StatsSnapshot>,
}

/// Computes statistics; cheap to clone.
///
/// The store-derived part is computed by one caller at a time and reused for `cache_for`, so any
/// number of dashboards and requests cost the store one query set per window; live figures
/// (connections, queries in flight) are read fresh every time. When the store fails, the last
/// figures it gave are served (stale-if-error) and it is asked again at most once a second; with
/// nothing to fall back on, the failure is the answer (503).
#[derive(Clone)]
pub struct StatsService {
    stores: Stores,
    broadcaster: Arc<dyn Broadcaster>,
    gauges: Arc<LiveGauges>,
    timing: StatsTiming,
    cache: Arc<tokio::sync::Mutex<Option<CachedFigures>>>,
}

/// The last figures the store gave.
#[derive(Debug)]
struct CachedFigures {
    /// When they were computed; `None` once a writer has changed the graph.
    computed: Option<Instant>,
    figures: StoreFigures,
    /// The store failed since: these are served until it answers again.
    stale: bool,
}

/// While the store fails, how often the stats ask it again.
const STALE_RETRY: Duration = Duration::from_secs(1);

impl StatsService {
    pub fn new(stores: Stores, broadcaster: Arc<dyn Broadcaster>, gauges: Arc<LiveGauges>, timing: StatsTiming) -> Self {
        StatsService { stores, broadcaster, gauges, timing, cache: Arc::new(tokio::sync::Mutex::new(None)) }
    }

    /// Forgets the reused figures: writers of the graph call this so the next stats see their change.
    pub async fn invalidate(&self) {
        // The figures stay as the fallback for an outage, but are no longer reused.
        if let Some(cached) = self.cache.lock().await.as_mut() {
            cached.computed = None;
        }
    }

    async fn store_figures(&self) -> Result<StoreFigures, ApiError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && let Some(computed) = cached.computed
            && computed.elapsed() < self.timing.cache_for.max(if cached.stale { STALE_RETRY } else { Duration::ZERO })
        {
            return Ok(cached.figures.clone());
        }
        let now = crate::time::now();
        let window = chrono::Duration::from_std(self.timing.trend_window).unwrap_or(chrono::Duration::hours(24));
        let (counts, baseline) = tokio::join!(self.stores.lineage.graph_counts(), self.stores.snapshots.baseline_snapshot(now - window));
        match (counts, baseline) {
            (Ok(counts), Ok(baseline)) => {
                let figures = StoreFigures { counts, baseline };
                *cache = Some(CachedFigures { computed: Some(Instant::now()), figures: figures.clone(), stale: false });
                Ok(figures)
            }
            (Err(error), _) | (_, Err(error)) => match cache.as_mut() {
                // The store is away: the last figures it gave are better than no tiles, and
                // `/health` says the store is down. Asking again at most every STALE_RETRY keeps
                // an outage from queueing every request behind the store's timeouts.
                Some(cached) => {
                    tracing::warn!(%error, "stats: the store cannot answer; serving the last figures it gave");
                    cached.computed = Some(Instant::now());
                    cached.stale = true;
                    Ok(cached.figures.clone())
                }
                None => Err(error.into()),
            },
        }
    }

    pub fn gauges(&self) -> &Arc<LiveGauges> {
        &self.gauges
    }

    /// The dashboard stats as of now.
    pub async fn dashboard(&self) -> Result<DashboardStats, ApiError> {
        let (figures, connections) = tokio::join!(self.store_figures(), self.broadcaster.connection_count());
        let StoreFigures { counts, baseline } = figures?;
        let connections = connections.map_err(|error| {
            ApiError::unavailable("broadcaster", "broadcaster_unavailable", "live connections cannot be counted right now")
                .with_source(error)
        })?;
        Ok(DashboardStats {
            total_nodes: counts.nodes,
            total_edges: counts.edges,
            files_processed: counts.files,
            database_tables: counts.node_types.get("Table").copied().unwrap_or(0),
            active_queries: self.gauges.active_queries(),
            active_connections: connections,
            trends: Trends {
                nodes: Trend::between(baseline.map(|snapshot| snapshot.total_nodes), counts.nodes),
                files: Trend::between(baseline.map(|snapshot| snapshot.files_processed), counts.files),
            },
            node_types: counts.node_types,
        })
    }

    /// The graph's size by type.
    pub async fn graph(&self) -> Result<GraphStats, ApiError> {
        let GraphCounts { nodes, edges, node_types, relationship_types, .. } = self.store_figures().await?.counts;
        Ok(GraphStats { nodes, edges, node_types, relationship_types })
    }

    /// Stores a snapshot of `stats` when the newest one is older than the snapshot interval.
    /// Returns whether one was stored.
    pub async fn snapshot_if_due(&self, stats: &DashboardStats) -> Result<bool, StoreError> {
        let now = crate::time::now();
        let every = chrono::Duration::from_std(self.timing.snapshot_every).unwrap_or(chrono::Duration::hours(1));
        let due = match self.stores.snapshots.latest_snapshot().await? {
            Some(latest) => now - latest.taken_at >= every,
            None => true,
        };
        if due {
            let snapshot = StatsSnapshot {
                taken_at: now,
                total_nodes: stats.total_nodes,
                total_edges: stats.total_edges,
                files_processed: stats.files_processed,
            };
            self.stores.snapshots.save_snapshot(&snapshot).await?;
        }
        Ok(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trends_are_percent_changes_with_one_decimal() {
        assert_eq!(Trend::between(None, 10), Trend { value: 0.0, is_positive: true });
        assert_eq!(Trend::between(Some(0), 0), Trend { value: 0.0, is_positive: true });
        assert_eq!(Trend::between(Some(0), 5), Trend { value: 100.0, is_positive: true });
        assert_eq!(Trend::between(Some(3), 4), Trend { value: 33.3, is_positive: true });
        assert_eq!(Trend::between(Some(8), 6), Trend { value: -25.0, is_positive: false });
    }

    #[test]
    fn the_query_gauge_counts_guards_alive() {
        let gauges = Arc::new(LiveGauges::default());
        let first = gauges.begin_query();
        let second = gauges.begin_query();
        assert_eq!(gauges.active_queries(), 2);
        drop(first);
        assert_eq!(gauges.active_queries(), 1);
        drop(second);
        assert_eq!(gauges.active_queries(), 0);
    }
}
