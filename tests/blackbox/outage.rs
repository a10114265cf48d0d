//! Store outages: the store stops taking writes for 10 s while clients keep asking. Requests keep
//! being answered, `/health` says degraded and then healthy again by itself, and once the store is
//! back it holds every request's activity event exactly once.
//!
//! * SQLite: another process holds the database's write lock (as a backup tool or a stuck
//!   migration would). The test runs as root in CI, where file permissions would not stop a write.
//! * DynamoDB: the real local server, behind a relay the test cuts, so it is unreachable for 10 s
//!   and then comes back with everything it held.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{NodeOptions, Relay, TestNode};

const OUTAGE: Duration = Duration::from_secs(10);

/// What the clients saw while the traffic ran.
struct Traffic {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    statuses: Arc<std::sync::Mutex<std::collections::BTreeMap<u16, u64>>>,
    unanswered: Arc<std::sync::Mutex<Vec<String>>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    /// Two clients asking for the stats, each as fast as it is answered, with a short pause.
    fn start(node: &TestNode) -> Traffic {
        let traffic = Traffic {
            stop: Arc::default(),
            answered: Arc::default(),
            statuses: Arc::default(),
            unanswered: Arc::default(),
            workers: Vec::new(),
        };
        let workers = (0..2)
            .map(|_| {
                let (stop, answered, statuses, unanswered, url) = (
                    traffic.stop.clone(),
                    traffic.answered.clone(),
                    traffic.statuses.clone(),
                    traffic.unanswered.clone(),
                    node.url("/api/v1/stats"),
                );
                tokio::spawn(async move {
                    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
                    while !stop.load(Ordering::SeqCst) {
                        match client.get(&url).send().await {
                            Ok(response) => {
                                answered.fetch_add(1, Ordering::SeqCst);
                                *statuses.lock().unwrap().entry(response.status().as_u16()).or_default() += 1;
                            }
                            Err(error) => unanswered.lock().unwrap().push(error.to_string()),
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                })
            })
            .collect();
        Traffic { workers, ..traffic }
    }

    /// Stops the clients; returns how many requests were answered.
    async fn stop(self) -> (u64, std::collections::BTreeMap<u16, u64>) {
        self.stop.store(true, Ordering::SeqCst);
        for worker in self.workers {
            worker.await.unwrap();
        }
        let unanswered = self.unanswered.lock().unwrap().clone();
        assert!(unanswered.is_empty(), "requests went unanswered: {unanswered:?}");
        let statuses = self.statuses.lock().unwrap().clone();
        (self.answered.load(Ordering::SeqCst), statuses)
    }
}

async fn health(node: &TestNode) -> Value {
    reqwest::get(node.url("/health")).await.unwrap().json().await.unwrap()
}

/// Waits, for at most `within`, until `/health` says `status`; returns the report.
async fn health_becomes(node: &TestNode, status: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let report = health(node).await;
        if report["status"] == status {
            return report;
        }
        assert!(Instant::now() < deadline, "/health never said {status} within {within:?}; last: {report}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Once the clients have stopped: the store ends up with one activity event per answered request,
/// never more on the way.
async fn every_request_is_stored_once(node: &TestNode, answered: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics: Value = reqwest::get(node.url("/api/v1/metrics/activity")).await.unwrap().json().await.unwrap();
        let stored = metrics["top_endpoints"]["GET /api/v1/stats"].as_u64().unwrap_or(0);
        assert!(stored <= answered, "{stored} events stored for {answered} requests: some were stored twice");
        if stored == answered {
            return;
        }
        assert!(Instant::now() < deadline, "{stored} of {answered} events stored 30 s after the outage");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn sqlite_locked_for_ten_seconds_loses_no_activity() {
    let folder = tempfile::tempdir().unwrap();
    let db = folder.path().join("outage.db");
    let node = TestNode::start_with(NodeOptions::default().db(&db)).await;
    assert_eq!(health(&node).await["status"], "healthy");
    let traffic = Traffic::start(&node);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Another process's write transaction: the node can read, but not write, until it ends.
    let (locked, release) = (tokio::sync::oneshot::channel(), tokio::sync::oneshot::channel::<()>());
    let ((locked_tx, locked_rx), (release_tx, release_rx)) = (locked, release);
    let holder = tokio::task::spawn_blocking(move || {
        let connection = rusqlite::Connection::open(&db).unwrap();
        connection.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked_tx.send(()).unwrap();
        let _ = release_rx.blocking_recv();
        connection.execute_batch("ROLLBACK").unwrap();
    });
    locked_rx.await.unwrap();
    let outage_started = Instant::now();

    let degraded = health_becomes(&node, "degraded", OUTAGE).await;
    assert_eq!(degraded["services"]["activity"]["status"], "degraded", "{degraded}");
    assert_eq!(degraded["services"]["store"]["status"], "up", "reads still work: {degraded}");
    tokio::time::sleep(OUTAGE.saturating_sub(outage_started.elapsed())).await;
    release_tx.send(()).unwrap();
    holder.await.unwrap();

    health_becomes(&node, "healthy", Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (answered, statuses) = traffic.stop().await;
    // Reads never needed the lock: every request was answered in full.
    assert_eq!(statuses.keys().copied().collect::<Vec<_>>(), vec![200], "{statuses:?}");
    assert!(answered > 100, "the traffic ran through the outage ({answered} requests)");
    every_request_is_stored_once(&node, answered).await;
}

#[tokio::test]
async fn dynamodb_unreachable_for_ten_seconds_loses_no_activity() {
    let relay = Relay::start(support::aws::dynamodb_endpoint().trim_start_matches("http://")).await;
    let table = support::aws::fresh_table();
    let node = TestNode::start_with(NodeOptions::default().dynamodb(&table).env("AWS_ENDPOINT_URL_DYNAMODB", relay.url())).await;
    assert_eq!(health(&node).await["status"], "healthy");
    let traffic = Traffic::start(&node);
    tokio::time::sleep(Duration::from_millis(500)).await;

    relay.cut();
    let outage_started = Instant::now();
    let degraded = health_becomes(&node, "degraded", OUTAGE).await;
    assert_eq!(degraded["services"]["store"]["status"], "down", "{degraded}");
    tokio::time::sleep(OUTAGE.saturating_sub(outage_started.elapsed())).await;
    relay.restore();

    health_becomes(&node, "healthy", Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (answered, statuses) = traffic.stop().await;
    assert!(answered > 100, "the traffic ran through the outage ({answered} requests: {statuses:?})");
    // Statistics come from the store: while it is away they are the last ones read, not an error.
    assert_eq!(statuses.keys().copied().collect::<Vec<_>>(), vec![200], "{statuses:?}");
    every_request_is_stored_once(&node, answered).await;
}
