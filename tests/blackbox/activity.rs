//! Activity: every request is recorded and persisted, and served back by the activity and metrics
//! routes, on every host. What the node alone does (spilling to a local file while its SQLite file
//! is locked) is tested on the node.

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Deployment, HostKind, NodeOptions, TestNode, open_store};

on_every_host!(
    every_request_is_recorded_and_counted,
    recent_activity_is_newest_first_with_readable_messages,
    client_events_are_validated_and_stored,
    metrics_events_are_bounded_and_totalled,
);

async fn every_request_is_recorded_and_counted(kind: HostKind) {
    let node = Deployment::start(kind, NodeOptions::default()).await;
    let client = reqwest::Client::new();
    for n in 0..5 {
        client.get(node.url("/api/v1/stats")).header("x-request-id", format!("stats-{n}")).send().await.unwrap();
    }
    for _ in 0..2 {
        client.get(node.url("/no/such/route")).send().await.unwrap();
    }
    client.get(node.url("/api/v1/activity/recent?limit=0")).send().await.unwrap();

    let metrics = node
        .poll_json("/api/v1/metrics/activity", |metrics| {
            metrics["top_endpoints"]["GET /api/v1/stats"] == 5
                && metrics["error_types"]["not_found"] == 2
                && metrics["error_types"]["validation_error"] == 1
        })
        .await;
    // The polls themselves are requests too: count only what this test knows it sent.
    assert_eq!(metrics["top_endpoints"]["GET /api/v1/stats"], 5);
    assert_eq!(metrics["top_endpoints"]["GET unmatched"], 2);
    assert_eq!(metrics["error_types"]["not_found"], 2);
    assert_eq!(metrics["error_types"]["validation_error"], 1);
    let total = metrics["total_requests"].as_u64().unwrap();
    assert_eq!(metrics["failed_requests"], 3);
    assert_eq!(metrics["successful_requests"].as_u64().unwrap(), total - 3);
    let rate = metrics["success_rate"].as_f64().unwrap();
    assert!((rate - (total - 3) as f64 / total as f64 * 100.0).abs() < 0.01, "success_rate {rate}");
    assert!(metrics["avg_latency_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(metrics["total_queries"], 0);
    assert_eq!(metrics["total_ingestions"], 0);

    // Stored, with the request ids we sent.
    let page: Value = reqwest::get(node.url("/api/v1/metrics/events?limit=1000")).await.unwrap().json().await.unwrap();
    let tagged = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["metadata"]["request_id"].as_str().is_some_and(|id| id.starts_with("stats-")))
        .count();
    assert_eq!(tagged, 5);
}

async fn recent_activity_is_newest_first_with_readable_messages(kind: HostKind) {
    let node = Deployment::start(kind, NodeOptions::default()).await;
    let client = reqwest::Client::new();
    client.get(node.url("/health")).send().await.unwrap();
    client.get(node.url("/api/v1/graph/stats")).send().await.unwrap();

    let items = node
        .poll_json("/api/v1/activity/recent?limit=50&type=http_request", |items| {
            items.as_array().is_some_and(|items| items.iter().any(|item| item["endpoint"] == "/api/v1/graph/stats"))
        })
        .await;
    let items = items.as_array().unwrap();
    let position = |endpoint: &str| items.iter().position(|item| item["endpoint"] == endpoint).unwrap();
    assert!(position("/api/v1/graph/stats") < position("/health"), "newest first");
    let item = &items[position("/health")];
    assert_eq!(item["type"], "http_request");
    assert_eq!(item["event_type"], "http_request");
    assert_eq!(item["method"], "GET");
    assert_eq!(item["status"], "success");
    assert_eq!(item["status_code"], 200);
    assert_eq!(item["source"], "http");
    assert!(item["message"].as_str().unwrap().starts_with("GET /health → 200"));
    assert!(item["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(item["id"].as_str().unwrap().len() == 36);

    let limited: Value = client.get(node.url("/api/v1/activity/recent?limit=1")).send().await.unwrap().json().await.unwrap();
    assert_eq!(limited.as_array().unwrap().len(), 1);
    for bad in ["limit=0", "limit=501", "type=nonsense"] {
        let response = client.get(node.url(&format!("/api/v1/activity/recent?{bad}"))).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

async fn client_events_are_validated_and_stored(kind: HostKind) {
    let node = Deployment::start(kind, NodeOptions::default()).await;
    let client = reqwest::Client::new();
    let response = client
        .post(node.url("/api/v1/activity"))
        .json(&json!({"type": "page_view", "message": "Opened the lineage view", "metadata": {"page": "lineage"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["type"], "client_event");
    assert_eq!(created["source"], "client");
    assert_eq!(created["message"], "Opened the lineage view");
    assert_eq!(created["metadata"]["client_type"], "page_view");
    assert_eq!(created["metadata"]["client_metadata"], json!({"page": "lineage"}));

    let items =
        node.poll_json("/api/v1/activity/recent?type=client_event", |items| items.as_array().is_some_and(|items| !items.is_empty())).await;
    assert_eq!(items[0]["id"], created["id"]);

    let invalid = [
        (json!({"type": "has spaces"}), "type"),
        (json!({"type": "ok", "message": "x".repeat(501)}), "message"),
        (json!({"type": "ok", "metadata": {"blob": "y".repeat(5000)}}), "metadata"),
    ];
    for (body, field) in invalid {
        let response = client.post(node.url("/api/v1/activity")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["errors"][0]["field"], field, "{error}");
    }
    let unknown = client.post(node.url("/api/v1/activity")).json(&json!({"type": "ok", "stack": "boom"})).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn metrics_events_are_bounded_and_totalled(kind: HostKind) {
    let node = Deployment::start(kind, NodeOptions::default()).await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        client.get(node.url("/health")).send().await.unwrap();
    }
    let page = node.poll_json("/api/v1/metrics/events?limit=2", |page| page["total_events"].as_u64() >= Some(3)).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert!(page["events"][0]["event_type"].is_string());
    let ok = client.get(node.url("/api/v1/metrics/events?limit=1000")).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let too_many = client.get(node.url("/api/v1/metrics/events?limit=1001")).send().await.unwrap();
    assert_eq!(too_many.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn health_degrades_while_the_store_cannot_be_written_and_no_activity_is_lost() {
    // A tiny queue, so that events pile into the spill file while the store is locked.
    let node = TestNode::start_with(NodeOptions::default().env("ACTIVITY_QUEUE_CAPACITY", 1)).await;
    let client = reqwest::Client::new();
    // Another process takes the write lock: reads go on (WAL), writes wait and then fail as busy.
    let locker = rusqlite::Connection::open(&node.db).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    for n in 0..5 {
        let response = client.get(node.url("/api/v1/stats")).header("x-request-id", format!("locked-{n}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "requests keep being answered");
    }
    let spill = node.db.with_file_name("activity-spill.jsonl");
    let spilled = std::fs::read_to_string(&spill).expect("events spilled to disk while the store is locked");
    assert!(spilled.contains("locked-"), "the spill holds the requests' events");
    let health = node.poll_json("/health", |health| health["status"] == "degraded").await;
    assert_eq!(health["services"]["activity"]["status"], "degraded");
    assert!(health["services"]["activity"]["detail"].as_str().unwrap().contains("spill"));
    assert_eq!(client.get(node.url("/health")).send().await.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);

    locker.execute_batch("COMMIT").unwrap();
    node.poll_json("/health", |health| health["status"] == "healthy").await;
    let count_locked = || -> i64 {
        open_store(&node.db)
            .query_row("SELECT COUNT(*) FROM activity_events WHERE json_extract(metadata, '$.request_id') LIKE 'locked-%'", [], |row| {
                row.get(0)
            })
            .unwrap()
    };
    let deadline = std::time::Instant::now() + support::PATIENCE;
    while count_locked() < 5 {
        assert!(std::time::Instant::now() < deadline, "activity from the outage never arrived");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(count_locked(), 5, "each event stored exactly once");
    let replayed = node.poll_json("/health", |health| health["services"]["activity"]["spilled"] == 0).await;
    assert_eq!(replayed["services"]["activity"]["spilled"], 0, "the spill file was replayed");
}
