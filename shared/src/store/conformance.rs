//! The conformance suite every store backend passes: the same calls, the same answers.
//!
//! `conformance_suite!(name, factory)` expands to one test per behaviour, where `factory` is an async
//! expression giving a fresh, empty [`Stores`] (and anything that must live as long as it).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Admission, ConnectionRecord, StatsSnapshot, Stores};
use crate::activity::{ActivityEvent, EventSource, EventStatus, EventType};
use crate::realtime::ConnectionId;

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
    // The same event twice in one batch is one event.
    let with_repeat = [events.clone(), vec![events[0].clone()]].concat();
    assert_eq!(stores.activity.append_activity(&with_repeat).await.unwrap(), 3);
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
    let stored = stores.activity.recent_activity(1000, None).await.unwrap().len();
    let totals = stores.activity.activity_totals().await.unwrap();
    assert_eq!((stored, totals.total_requests), (400, 400), "every event stored and counted once");
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

fn connection(id: &str, ip: &str) -> ConnectionRecord {
    let now = crate::time::now();
    ConnectionRecord {
        id: ConnectionId::new(id),
        client_ip: ip.to_owned(),
        connected_at: now,
        expires_at: now + chrono::Duration::hours(2),
        acknowledged: false,
    }
}

pub async fn connections_respect_the_per_ip_limit(stores: &Stores) {
    let registry = &stores.connections;
    for n in 0..3 {
        assert_eq!(registry.admit_connection(&connection(&format!("a{n}"), "10.0.0.1"), 3).await.unwrap(), Admission::Admitted);
    }
    assert_eq!(registry.admit_connection(&connection("a3", "10.0.0.1"), 3).await.unwrap(), Admission::TooManyFromIp { limit: 3 });
    assert_eq!(registry.get_connection(&ConnectionId::new("a3")).await.unwrap(), None, "a refused connection leaves nothing");
    assert_eq!(registry.admit_connection(&connection("b0", "10.0.0.2"), 3).await.unwrap(), Admission::Admitted);
    assert!(registry.remove_connection(&ConnectionId::new("a0")).await.unwrap());
    assert!(!registry.remove_connection(&ConnectionId::new("a0")).await.unwrap(), "already gone");
    assert_eq!(registry.admit_connection(&connection("a4", "10.0.0.1"), 3).await.unwrap(), Admission::Admitted);
    assert_eq!(registry.count_connections().await.unwrap(), 4);
}

pub async fn concurrent_admissions_never_exceed_the_limit(stores: &Stores) {
    let attempts: Vec<_> = (0..12)
        .map(|n| {
            let registry = stores.connections.clone();
            tokio::spawn(async move { registry.admit_connection(&connection(&format!("race{n:02}"), "10.9.9.9"), 4).await.unwrap() })
        })
        .collect();
    let mut admitted = 0;
    for attempt in attempts {
        if attempt.await.unwrap() == Admission::Admitted {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 4, "exactly the limit is admitted, however the admissions interleave");
    assert_eq!(stores.connections.count_connections().await.unwrap(), admitted);
}

pub async fn connections_that_expired_without_a_disconnect_free_their_slots(stores: &Stores) {
    for n in 0..2 {
        let mut stale = connection(&format!("stale-{n}"), "10.7.7.7");
        stale.expires_at = crate::time::now() - chrono::Duration::seconds(1);
        assert_eq!(stores.connections.admit_connection(&stale, 2).await.unwrap(), Admission::Admitted);
    }
    assert_eq!(stores.connections.admit_connection(&connection("fresh", "10.7.7.7"), 2).await.unwrap(), Admission::Admitted);
    assert_eq!(stores.connections.count_connections().await.unwrap(), 1);
}

pub async fn connections_list_page_by_page_and_skip_expired_ones(stores: &Stores) {
    let registry = &stores.connections;
    let mut expected = std::collections::BTreeSet::new();
    for n in 0..25 {
        let id = format!("conn-{n:02}");
        registry.admit_connection(&connection(&id, &format!("10.1.0.{n}")), 10).await.unwrap();
        expected.insert(id);
    }
    let mut expired = connection("conn-expired", "10.1.1.1");
    expired.expires_at = crate::time::now() - chrono::Duration::seconds(5);
    registry.admit_connection(&expired, 10).await.unwrap();

    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = registry.list_connections(cursor, 7).await.unwrap();
        pages += 1;
        seen.extend(page.connections.into_iter().map(|listed| listed.id.as_str().to_owned()));
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
        assert!(pages < 100, "pagination terminates");
    }
    assert!(pages >= 4, "25 connections in pages of 7 take several pages");
    assert_eq!(seen.len(), 25, "each connection once");
    assert_eq!(seen.into_iter().collect::<std::collections::BTreeSet<_>>(), expected);
    assert_eq!(registry.count_connections().await.unwrap(), 25);
    assert_eq!(registry.get_connection(&ConnectionId::new("conn-expired")).await.unwrap(), None);
}

pub async fn connection_records_round_trip_and_acknowledge(stores: &Stores) {
    let record = connection("round-trip", "2001:db8::7");
    stores.connections.admit_connection(&record, 10).await.unwrap();
    let stored = stores.connections.get_connection(&record.id).await.unwrap().unwrap();
    assert_eq!(stored.client_ip, "2001:db8::7");
    assert_eq!(stored.connected_at.timestamp_millis(), record.connected_at.timestamp_millis());
    assert_eq!(stored.expires_at.timestamp(), record.expires_at.timestamp());
    assert!(!stored.acknowledged);
    stores.connections.mark_acknowledged(&record.id).await.unwrap();
    assert!(stores.connections.get_connection(&record.id).await.unwrap().unwrap().acknowledged);
    // Marking a connection that is gone is not an error.
    stores.connections.mark_acknowledged(&ConnectionId::new("never-there")).await.unwrap();
}

pub async fn the_store_answers_pings(stores: &Stores) {
    tokio::time::timeout(Duration::from_secs(5), stores.health.ping()).await.expect("ping in time").unwrap();
}

/// Expands to the whole suite for one backend.
/// Expands to the whole suite for one backend. The factory gives `Some((stores, guard))`, or
/// `None` when the backend is not available here (the test then says so and passes, unless
/// `TRIBUTARY_REQUIRE_DYNAMODB` is set, as the project's test command does).
macro_rules! conformance_suite {
    ($backend:ident, $factory:expr) => {
        mod $backend {
            use super::*;

            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let Some((stores, _keep)) = $factory.await else { return };
                        $crate::store::conformance::$name(&stores).await;
                    }
                };
            }

            case!(appends_are_idempotent_and_counted_once);
            case!(recent_activity_is_newest_first_bounded_and_filterable);
            case!(counters_stay_right_under_concurrent_writers);
            case!(an_empty_graph_counts_zero);
            case!(snapshots_give_the_latest_and_the_baseline);
            case!(connections_respect_the_per_ip_limit);
            case!(concurrent_admissions_never_exceed_the_limit);
            case!(connections_that_expired_without_a_disconnect_free_their_slots);
            case!(connections_list_page_by_page_and_skip_expired_ones);
            case!(connection_records_round_trip_and_acknowledge);
            case!(the_store_answers_pings);
        }
    };
}

async fn fresh_sqlite() -> Option<(Stores, tempfile::TempDir)> {
    let folder = tempfile::tempdir().unwrap();
    let store = super::SqliteStore::open(folder.path().join("conformance.db")).unwrap();
    Some((Stores::sqlite(store), folder))
}

/// A fresh table on the local DynamoDB-compatible server named by `TRIBUTARY_TEST_DYNAMODB_ENDPOINT`.
async fn fresh_dynamodb() -> Option<(Stores, ())> {
    let Ok(endpoint) = std::env::var("TRIBUTARY_TEST_DYNAMODB_ENDPOINT") else {
        assert!(
            std::env::var_os("TRIBUTARY_REQUIRE_DYNAMODB").is_none(),
            "TRIBUTARY_REQUIRE_DYNAMODB is set but TRIBUTARY_TEST_DYNAMODB_ENDPOINT is not: run the tests with scripts/test"
        );
        eprintln!("skipped: no local DynamoDB server (TRIBUTARY_TEST_DYNAMODB_ENDPOINT); scripts/test starts one");
        return None;
    };
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "conformance"))
        .build();
    let table = format!("conformance-{}", uuid::Uuid::new_v4().simple());
    let store = super::DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), table);
    store.create_table_if_missing().await.expect("creating the test table");
    Some((Stores::dynamodb(store), ()))
}

conformance_suite!(sqlite, fresh_sqlite());
conformance_suite!(dynamodb, fresh_dynamodb());
