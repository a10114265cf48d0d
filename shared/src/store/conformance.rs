//! The conformance suite every store backend passes: the same calls, the same answers.
//!
//! `conformance_suite!(name, factory)` expands to one test per behaviour, where `factory` is an async
//! expression giving a fresh, empty [`Stores`] (and anything that must live as long as it).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{StatsSnapshot, Stores};
use crate::activity::{ActivityEvent, EventSource, EventStatus, EventType};

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
}

fn request(seconds: i64, endpoint: &str, status_code: u16) -> ActivityEvent {
    let mut event = ActivityEvent::http_request("GET", endpoint, status_code, 2.0);
    event.timestamp = at(seconds);
    event
}

pub async fn appends_are_idempotent_and_counted_once(stores: &Stores) {
    let events = vec![request(1, "/a", 200), request(2, "/a", 500).with_metadata("error", "internal_error"), request(3, "/b", 404)];
    assert_eq!(stores.activity.append_activity(&events).await.unwrap(), 3);
    // A retried batch, overlapping the first one.
    let retry = vec![events[2].clone(), request(4, "/b", 200)];
    assert_eq!(stores.activity.append_activity(&retry).await.unwrap(), 1);

    let totals = stores.activity.activity_totals().await.unwrap();
    assert_eq!(totals.total_events, 4);
    assert_eq!(totals.total_requests, 4);
    assert_eq!(totals.successful_requests, 2);
    assert_eq!(totals.failed_requests, 2);
    assert_eq!(totals.latency_sum_us, 8_000);
    assert_eq!(totals.endpoints.get("GET /a"), Some(&2));
    assert_eq!(totals.endpoints.get("GET /b"), Some(&2));
    assert_eq!(totals.error_types.get("internal_error"), Some(&1));
    assert_eq!(totals.error_types.get("http_404"), Some(&1));
}

pub async fn recent_activity_is_newest_first_bounded_and_filterable(stores: &Stores) {
    let mut events: Vec<ActivityEvent> = (0..20).map(|n| request(n, "/r", 200)).collect();
    let mut connect = ActivityEvent::new(EventType::WebsocketConnect, EventSource::Websocket, "/ws/dashboard", EventStatus::Success)
        .with_metadata("client_ip", "127.0.0.1");
    connect.timestamp = at(10);
    events.push(connect.clone());
    stores.activity.append_activity(&events).await.unwrap();

    let recent = stores.activity.recent_activity(5, None).await.unwrap();
    assert_eq!(recent.len(), 5);
    assert_eq!(recent[0], events[19]);
    assert!(recent.windows(2).all(|pair| pair[0].timestamp >= pair[1].timestamp));

    let connects = stores.activity.recent_activity(50, Some(EventType::WebsocketConnect)).await.unwrap();
    assert_eq!(connects, vec![connect]);
}

pub async fn counters_stay_right_under_concurrent_writers(stores: &Stores) {
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let activity = stores.activity.clone();
            tokio::spawn(async move {
                for batch in 0..5 {
                    let events: Vec<_> = (0..10).map(|n| request(writer * 100 + batch * 10 + n, "/c", 200)).collect();
                    activity.append_activity(&events).await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let totals = stores.activity.activity_totals().await.unwrap();
    assert_eq!(totals.total_requests, 400);
    assert_eq!(totals.endpoints.get("GET /c"), Some(&400));
}

pub async fn an_empty_graph_counts_zero(stores: &Stores) {
    let counts = stores.graph.graph_counts().await.unwrap();
    assert_eq!((counts.nodes, counts.edges, counts.files), (0, 0, 0));
    assert!(counts.node_types.is_empty() && counts.relationship_types.is_empty());
}

pub async fn snapshots_give_the_latest_and_the_baseline(stores: &Stores) {
    assert_eq!(stores.snapshots.latest_snapshot().await.unwrap(), None);
    assert_eq!(stores.snapshots.baseline_snapshot(at(0)).await.unwrap(), None);
    let snapshot =
        |seconds, nodes| StatsSnapshot { taken_at: at(seconds), total_nodes: nodes, total_edges: 0, files_processed: nodes / 10 };
    for (seconds, nodes) in [(100, 10), (200, 20), (300, 30)] {
        stores.snapshots.save_snapshot(&snapshot(seconds, nodes)).await.unwrap();
    }
    assert_eq!(stores.snapshots.latest_snapshot().await.unwrap(), Some(snapshot(300, 30)));
    assert_eq!(stores.snapshots.baseline_snapshot(at(250)).await.unwrap(), Some(snapshot(200, 20)));
    assert_eq!(stores.snapshots.baseline_snapshot(at(300)).await.unwrap(), Some(snapshot(300, 30)));
    // Nothing that old: the oldest there is.
    assert_eq!(stores.snapshots.baseline_snapshot(at(50)).await.unwrap(), Some(snapshot(100, 10)));
}

pub async fn the_store_answers_pings(stores: &Stores) {
    tokio::time::timeout(Duration::from_secs(5), stores.health.ping()).await.expect("ping in time").unwrap();
}

/// Expands to the whole suite for one backend.
macro_rules! conformance_suite {
    ($backend:ident, $factory:expr) => {
        mod $backend {
            use super::*;

            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let (stores, _keep) = $factory.await;
                        $crate::store::conformance::$name(&stores).await;
                    }
                };
            }

            case!(appends_are_idempotent_and_counted_once);
            case!(recent_activity_is_newest_first_bounded_and_filterable);
            case!(counters_stay_right_under_concurrent_writers);
            case!(an_empty_graph_counts_zero);
            case!(snapshots_give_the_latest_and_the_baseline);
            case!(the_store_answers_pings);
        }
    };
}

async fn fresh_sqlite() -> (Stores, tempfile::TempDir) {
    let folder = tempfile::tempdir().unwrap();
    let store = super::SqliteStore::open(folder.path().join("conformance.db")).unwrap();
    (Stores::sqlite(store), folder)
}

conformance_suite!(sqlite, fresh_sqlite());
